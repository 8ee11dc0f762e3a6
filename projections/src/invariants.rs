//! What must hold in every state the ledger can reach. The writer's decide logic is built so
//! these can never fail; tests (and the simulation) assert them after every step.

use rust_decimal::Decimal;

use crate::state::{ApplicationStatus, LedgerState, PayoutStatus};

/// Every violated invariant, described; empty when all hold.
pub fn violations(state: &LedgerState) -> Vec<String> {
    let mut found = Vec::new();
    for ((measure, year), budget) in &state.budgets {
        if budget.committed < Decimal::ZERO || budget.paid < Decimal::ZERO {
            found.push(format!(
                "budget {measure}/{year} has negative committed or paid: {budget:?}"
            ));
        }
        if budget.remaining() < Decimal::ZERO {
            found.push(format!("budget {measure}/{year} is overspent: {budget:?}"));
        }
    }
    let Some((_, catalogue)) = state.current_policy() else {
        return found;
    };
    for firm in state.firms.values() {
        for (year, claimed) in &firm.voucher_claimed {
            let cap = catalogue
                .provisions
                .iter()
                .filter_map(|p| p.firm_annual_cap)
                .max()
                .unwrap_or(Decimal::MAX);
            if *claimed > cap {
                found.push(format!(
                    "firm {} claimed {claimed} in vouchers for {year}, over the cap {cap}",
                    firm.uscc
                ));
            }
        }
        let mut awards: Vec<&String> = firm.awards.iter().collect();
        awards.sort();
        for pair in awards.windows(2) {
            let once = catalogue.provision(pair[0]).is_some_and(|p| p.once);
            if pair[0] == pair[1] && once {
                found.push(format!(
                    "firm {} holds the one-time award {} twice",
                    firm.uscc, pair[0]
                ));
            }
        }
    }
    for lab in state.labs.values() {
        if lab.approved > lab.envelope {
            found.push(format!(
                "lab {} approved {} over its envelope {}",
                lab.lab, lab.approved, lab.envelope
            ));
        }
    }
    for app in state.applications.values() {
        if let Some(approved) = app.approved {
            if app.paid > approved {
                found.push(format!(
                    "application {} paid {} over its approved {approved}",
                    app.application_id, app.paid
                ));
            }
        }
        if app.status != ApplicationStatus::Approved && app.paid > Decimal::ZERO {
            found.push(format!(
                "application {} is {:?} but has payouts",
                app.application_id, app.status
            ));
        }
    }
    for payout in state.payouts.values() {
        if payout.status == PayoutStatus::Ordered && payout.settled_seq.is_some() {
            found.push(format!("payout {} is open but settled", payout.payout_id));
        }
    }
    for clawback in state.clawbacks.values() {
        if clawback.repaid > clawback.amount {
            found.push(format!(
                "clawback {} repaid {} over {}",
                clawback.clawback_id, clawback.repaid, clawback.amount
            ));
        }
    }
    found
}
