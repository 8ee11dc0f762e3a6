//! The voucher workload both sides run: one budget allocation (before the clock starts), then
//! per application a submission, a review and an approval, as the JSON commands of DESIGN §7.
//!
//! Every firm submits [`VOUCHERS_PER_FIRM`] vouchers of 200,000 yuan on contracts of 1,000,000
//! (the 20% rate exactly), which fills its 1,000,000 yearly cap exactly; the measure's budget
//! is allocated at exactly the sum of all vouchers, so the last approval leaves 0 remaining.
//! Both caps are at their edge by the end, so each side must really check them.
//!
//! Firm `f` belongs to client `f % clients`; a client takes its firms one after another and
//! waits for each command's answer before sending the next (a closed loop). So the two sides
//! see the same commands, in the same per-client order, with the same number in flight.

use fundledger_ledger::uscc;
use rust_decimal::Decimal;
use serde_json::{json, Value};

pub const MEASURE: &str = "M2";
pub const PROVISION: &str = "M2.compute_voucher";
pub const FISCAL_YEAR: i32 = 2025;
/// Business time of every command: inside the policy window and fiscal year 2025.
pub const BUSINESS_TIME: &str = "2025-03-01T10:00:00+08:00";
pub const VOUCHER_YUAN: i64 = 200_000;
pub const CONTRACT_YUAN: i64 = 1_000_000;
/// 5 × 200,000 = the 1,000,000 yearly cap of a firm, exactly.
pub const VOUCHERS_PER_FIRM: usize = 5;
/// submit + review + approve.
pub const COMMANDS_PER_VOUCHER: usize = 3;

pub const REVIEW_UNIT: &str = "市工信局";
pub const FINANCE_UNIT: &str = "市财政局";
pub const REVIEWER_ID: &str = "rev.wang";
pub const APPROVER_ID: &str = "apr.li";
pub const FINANCE_ID: &str = "fin.zhang";

/// One voucher application of the plan.
#[derive(Clone, Debug)]
pub struct Voucher {
    pub application_id: String,
    pub uscc: String,
}

impl Voucher {
    /// The cqrs-es aggregate that holds this voucher: the firm's fiscal year.
    pub fn firm_year_id(&self) -> String {
        firm_year_id(&self.uscc, FISCAL_YEAR)
    }
}

pub fn firm_year_id(uscc: &str, fiscal_year: i32) -> String {
    format!("{uscc}-{fiscal_year}")
}

/// A budget aggregate id of the cqrs-es side: measure and fiscal year.
pub fn budget_id(measure: &str, fiscal_year: i32) -> String {
    format!("{measure}-{fiscal_year}")
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub vouchers: usize,
    pub firms: usize,
    pub clients: usize,
}

impl Plan {
    /// About `commands` timed commands (rounded down to whole vouchers, at least one).
    pub fn new(commands: usize, clients: usize) -> Plan {
        let vouchers = (commands / COMMANDS_PER_VOUCHER).max(1);
        Plan {
            vouchers,
            firms: vouchers.div_ceil(VOUCHERS_PER_FIRM),
            clients: clients.max(1),
        }
    }

    /// Commands inside the timed phase.
    pub fn timed_commands(&self) -> usize {
        self.vouchers * COMMANDS_PER_VOUCHER
    }

    /// The budget: exactly the sum of every voucher.
    pub fn budget_yuan(&self) -> Decimal {
        Decimal::from(VOUCHER_YUAN) * Decimal::from(self.vouchers as u64)
    }

    /// The vouchers client `client` sends, in its order.
    pub fn vouchers_of_client(&self, client: usize) -> Vec<Voucher> {
        (0..self.vouchers)
            .filter(|index| (index / VOUCHERS_PER_FIRM) % self.clients == client)
            .map(|index| {
                let firm_index = index / VOUCHERS_PER_FIRM;
                Voucher {
                    application_id: format!("V-{firm_index:07}-{}", index % VOUCHERS_PER_FIRM),
                    uscc: firm_uscc(firm_index),
                }
            })
            .collect()
    }
}

/// A valid USCC (GB 32100-2015 check character) for firm `index`.
pub fn firm_uscc(index: usize) -> String {
    // 10 fixed characters + 7 digits = the 17 the check character is computed from; digits,
    // M and A are all in the USCC alphabet, so `complete` cannot fail.
    uscc::complete(&format!("91410100MA{index:07}")).unwrap_or_default()
}

pub fn yuan(amount: i64) -> String {
    format!("{amount}.00")
}

fn command(kind: &str, actor: Value, fields: Value) -> Value {
    let mut object = match fields {
        Value::Object(object) => object,
        _ => serde_json::Map::new(),
    };
    object.insert(
        "command_id".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    object.insert("type".into(), Value::String(kind.into()));
    object.insert("actor".into(), actor);
    object.insert("at".into(), Value::String(BUSINESS_TIME.into()));
    Value::Object(object)
}

pub fn applicant(uscc: &str) -> Value {
    json!({"id": format!("app.{uscc}"), "role": "applicant", "firm": uscc})
}

pub fn allocate(amount: Decimal) -> Value {
    command(
        "allocate_budget",
        json!({"id": FINANCE_ID, "role": "finance", "unit": FINANCE_UNIT}),
        json!({"measure": MEASURE, "fiscal_year": FISCAL_YEAR, "amount": format!("{amount:.2}")}),
    )
}

pub fn submit(application_id: &str, uscc: &str, amount_yuan: i64) -> Value {
    command(
        "submit_application",
        applicant(uscc),
        json!({
            "application_id": application_id,
            "firm": {"uscc": uscc, "name": format!("郑州{}智能科技有限公司", &uscc[10..17])},
            "provision": PROVISION,
            "fiscal_year": FISCAL_YEAR,
            "amount": yuan(amount_yuan),
            "basis": {
                "contract_amount": yuan(CONTRACT_YUAN),
                "contract_id": format!("HT-{application_id}"),
                "self_built": false,
                "provincial_voucher": false
            }
        }),
    )
}

pub fn review(application_id: &str) -> Value {
    command(
        "review_application",
        json!({"id": REVIEWER_ID, "role": "reviewer", "unit": REVIEW_UNIT}),
        json!({"application_id": application_id, "recommend": true, "note": "材料齐全"}),
    )
}

pub fn approve(application_id: &str, amount_yuan: i64) -> Value {
    command(
        "approve_application",
        json!({"id": APPROVER_ID, "role": "approver", "unit": REVIEW_UNIT}),
        json!({"application_id": application_id, "amount": yuan(amount_yuan)}),
    )
}

/// The three commands of one voucher, in order.
pub fn voucher_commands(voucher: &Voucher) -> [Value; 3] {
    [
        submit(&voucher.application_id, &voucher.uscc, VOUCHER_YUAN),
        review(&voucher.application_id),
        approve(&voucher.application_id, VOUCHER_YUAN),
    ]
}

/// What a side reports after its run.
#[derive(Debug, Default)]
pub struct SideReport {
    pub commands: usize,
    pub accepted: usize,
    pub elapsed_s: f64,
    /// One line on how the side worked (batches, conflicts …).
    pub detail: String,
    /// Whether the end state is as planned and both caps refused one more claim.
    pub caps_held: bool,
    pub caps_detail: String,
}

impl SideReport {
    pub fn commands_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.commands as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_voucher_goes_to_exactly_one_client_and_firms_stay_whole() {
        let plan = Plan::new(200, 7);
        assert_eq!(plan.vouchers, 66);
        assert_eq!(plan.firms, 14);
        let mut seen: Vec<String> = Vec::new();
        for client in 0..plan.clients {
            let vouchers = plan.vouchers_of_client(client);
            assert!(vouchers.iter().all(|v| {
                let firm_index: usize = v.application_id[2..9].parse().expect("a firm number");
                firm_index % plan.clients == client
            }));
            seen.extend(vouchers.into_iter().map(|v| v.application_id));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), plan.vouchers);
    }

    #[test]
    fn firms_have_valid_usccs_and_the_budget_is_the_sum_of_vouchers() {
        assert!(uscc::is_valid(&firm_uscc(0)));
        assert!(uscc::is_valid(&firm_uscc(1_234_567)));
        assert_ne!(firm_uscc(1), firm_uscc(2));
        assert_eq!(Plan::new(30, 1).budget_yuan(), Decimal::from(2_000_000));
    }
}
