//! The row shapes of `fundledger query` and the HTTP reads (DESIGN §8): plain serialisable
//! structs, amounts as strings with two decimals.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::state::{Application, HistoryEntry, LedgerState, TrancheYear};
use crate::yuan;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetRow {
    pub measure: String,
    pub fiscal_year: i32,
    #[serde(with = "yuan")]
    pub allocated: Decimal,
    #[serde(with = "yuan")]
    pub committed: Decimal,
    #[serde(with = "yuan")]
    pub paid: Decimal,
    #[serde(with = "yuan")]
    pub remaining: Decimal,
    /// Lab programme tranches planned for this year (measure 6 only; zero elsewhere).
    #[serde(with = "yuan")]
    pub programme_planned: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FirmRow {
    pub uscc: String,
    pub name: String,
    /// Fiscal year → compute vouchers claimed (open or approved).
    pub voucher_claimed: BTreeMap<String, String>,
    pub awards: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabRow {
    pub lab: String,
    pub firm: String,
    pub firm_name: String,
    pub recognition_date: NaiveDate,
    pub window_end: NaiveDate,
    #[serde(with = "yuan")]
    pub envelope: Decimal,
    #[serde(with = "yuan")]
    pub claimed: Decimal,
    #[serde(with = "yuan")]
    pub approved: Decimal,
    #[serde(with = "yuan")]
    pub paid: Decimal,
    #[serde(with = "yuan")]
    pub remaining: Decimal,
    /// Fiscal year → planned / approved / paid.
    pub years: BTreeMap<String, TrancheYear>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApplicationRow {
    pub application_id: String,
    pub provision: String,
    pub measure: String,
    pub firm: String,
    pub firm_name: String,
    pub fiscal_year: i32,
    pub status: &'static str,
    /// The approved amount once approved, else the amount asked for.
    #[serde(with = "yuan")]
    pub amount: Decimal,
    #[serde(with = "yuan")]
    pub requested: Decimal,
    #[serde(with = "yuan::option")]
    pub approved: Option<Decimal>,
    #[serde(with = "yuan")]
    pub paid: Decimal,
    pub submitted_on: NaiveDate,
    pub submitted_seq: u64,
    pub code: Option<String>,
    pub reason: Option<String>,
    pub history: Vec<HistoryEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PaymentRow {
    pub payout_id: String,
    pub application_id: String,
    pub provision: String,
    pub measure: String,
    pub firm: String,
    pub firm_name: String,
    #[serde(with = "yuan")]
    pub amount: Decimal,
    pub status: &'static str,
    pub ordered_on: NaiveDate,
    pub ordered_seq: u64,
    pub confirmed_on: Option<NaiveDate>,
    pub value_date: Option<NaiveDate>,
    pub bank_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub settled_seq: Option<u64>,
    pub settled_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueRow {
    pub application_id: String,
    pub provision: String,
    pub firm: String,
    pub status: &'static str,
    pub priority: bool,
    pub submitted_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClawbackRow {
    pub clawback_id: String,
    pub application_id: String,
    #[serde(with = "yuan")]
    pub amount: Decimal,
    #[serde(with = "yuan")]
    pub repaid: Decimal,
    #[serde(with = "yuan")]
    pub outstanding: Decimal,
    pub reason: String,
}

/// Orders "M2" before "M10".
fn measure_number(measure: &str) -> u32 {
    measure.trim_start_matches('M').parse().unwrap_or(u32::MAX)
}

impl LedgerState {
    pub fn budget_rows(&self) -> Vec<BudgetRow> {
        let mut planned: BTreeMap<i32, Decimal> = BTreeMap::new();
        for lab in self.labs.values() {
            for (year, tranche) in &lab.years {
                *planned.entry(*year).or_default() += tranche.planned;
            }
        }
        let mut rows: Vec<BudgetRow> = self
            .budgets
            .iter()
            .map(|((measure, fiscal_year), budget)| BudgetRow {
                measure: measure.clone(),
                fiscal_year: *fiscal_year,
                allocated: budget.allocated,
                committed: budget.committed,
                paid: budget.paid,
                remaining: budget.remaining(),
                programme_planned: if measure == "M6" {
                    planned.get(fiscal_year).copied().unwrap_or_default()
                } else {
                    Decimal::ZERO
                },
            })
            .collect();
        rows.sort_by_key(|row| (measure_number(&row.measure), row.fiscal_year));
        rows
    }

    pub fn firm_row(&self, uscc: &str) -> Option<FirmRow> {
        let firm = self.firms.get(uscc)?;
        Some(FirmRow {
            uscc: firm.uscc.clone(),
            name: firm.name.clone(),
            voucher_claimed: firm
                .voucher_claimed
                .iter()
                .filter(|(_, amount)| !amount.is_zero())
                .map(|(year, amount)| (year.to_string(), yuan::format(*amount)))
                .collect(),
            awards: firm.awards.clone(),
        })
    }

    pub fn firm_rows(&self) -> Vec<FirmRow> {
        self.firms
            .keys()
            .filter_map(|uscc| self.firm_row(uscc))
            .collect()
    }

    pub fn lab_rows(&self) -> Vec<LabRow> {
        self.labs
            .values()
            .map(|lab| LabRow {
                lab: lab.lab.clone(),
                firm: lab.firm.uscc.clone(),
                firm_name: lab.firm.name.clone(),
                recognition_date: lab.recognition_date,
                window_end: lab.window_end,
                envelope: lab.envelope,
                claimed: lab.claimed,
                approved: lab.approved,
                paid: lab.paid,
                remaining: lab.remaining(),
                years: lab
                    .years
                    .iter()
                    .map(|(year, tranche)| (year.to_string(), tranche.clone()))
                    .collect(),
            })
            .collect()
    }

    pub fn application_row(&self, application_id: &str) -> Option<ApplicationRow> {
        self.applications
            .get(application_id)
            .map(|app| application_row(app))
    }

    /// All applications in submission order.
    pub fn application_rows(&self) -> Vec<ApplicationRow> {
        let mut apps: Vec<&Application> =
            self.applications.values().map(|app| app.as_ref()).collect();
        apps.sort_by_key(|app| app.submitted_seq);
        apps.into_iter().map(application_row).collect()
    }

    /// Payouts in the order they were ordered.
    pub fn payment_rows(&self) -> Vec<PaymentRow> {
        let mut payouts: Vec<_> = self.payouts.values().collect();
        payouts.sort_by_key(|payout| payout.ordered_seq);
        payouts
            .into_iter()
            .map(|payout| {
                let app = self.applications.get(&payout.application_id);
                PaymentRow {
                    payout_id: payout.payout_id.clone(),
                    application_id: payout.application_id.clone(),
                    provision: app.map(|a| a.provision.clone()).unwrap_or_default(),
                    measure: app.map(|a| a.measure.clone()).unwrap_or_default(),
                    firm: app.map(|a| a.firm.uscc.clone()).unwrap_or_default(),
                    firm_name: app.map(|a| a.firm.name.clone()).unwrap_or_default(),
                    amount: payout.amount,
                    status: payout.status.as_str(),
                    ordered_on: payout.ordered_on,
                    ordered_seq: payout.ordered_seq,
                    confirmed_on: payout.confirmed_on,
                    value_date: payout.value_date,
                    bank_reference: payout.bank_reference.clone(),
                    failure_reason: payout.failure_reason.clone(),
                    settled_seq: payout.settled_seq,
                    settled_hash: payout.settled_hash.map(|hash| hash.to_hex()),
                }
            })
            .collect()
    }

    /// Open applications, provincial-voucher holders first, then by submission.
    pub fn queue_rows(&self) -> Vec<QueueRow> {
        self.queue
            .values()
            .filter_map(|id| self.applications.get(id))
            .map(|app| QueueRow {
                application_id: app.application_id.clone(),
                provision: app.provision.clone(),
                firm: app.firm.uscc.clone(),
                status: app.status.as_str(),
                priority: app.priority,
                submitted_seq: app.submitted_seq,
            })
            .collect()
    }

    pub fn clawback_rows(&self) -> Vec<ClawbackRow> {
        let mut clawbacks: Vec<_> = self.clawbacks.values().collect();
        clawbacks.sort_by_key(|clawback| clawback.ordered_seq);
        clawbacks
            .into_iter()
            .map(|clawback| ClawbackRow {
                clawback_id: clawback.clawback_id.clone(),
                application_id: clawback.application_id.clone(),
                amount: clawback.amount,
                repaid: clawback.repaid,
                outstanding: clawback.outstanding(),
                reason: clawback.reason.clone(),
            })
            .collect()
    }
}

fn application_row(app: &Application) -> ApplicationRow {
    ApplicationRow {
        application_id: app.application_id.clone(),
        provision: app.provision.clone(),
        measure: app.measure.clone(),
        firm: app.firm.uscc.clone(),
        firm_name: app.firm.name.clone(),
        fiscal_year: app.fiscal_year,
        status: app.status.as_str(),
        amount: app.approved.unwrap_or(app.requested),
        requested: app.requested,
        approved: app.approved,
        paid: app.paid,
        submitted_on: app.submitted_on,
        submitted_seq: app.submitted_seq,
        code: app.code.clone(),
        reason: app.reason.clone(),
        history: app.history.clone(),
    }
}
