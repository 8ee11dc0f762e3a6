//! `fundledger demo`: three fiscal years of 郑政文〔2024〕62号 in one seeded scenario.
//!
//! The demo is nothing but ordinary commands (DESIGN §7), fed to the writer like
//! `fundledger apply` feeds them: no shortcut around decide, so it also exercises every rule.
//!
//! - [`scenario`] builds the list of [`DemoStep`]s for a seed: each holds one command object
//!   (a `command_id` drawn from the seed, an `actor`, a business time `at` in +08:00 that
//!   increases strictly through the list) and the outcome it must get — `None` for accepted,
//!   `Some(code)` for a deliberate refusal. Same seed, same commands; another seed, other ids,
//!   amounts, dates and firms in some roles, with the same outcomes.
//! - [`commands`] is the same list without the expectations.
//! - [`run`] executes steps on a [`Ledger`] and reports every step whose outcome drifted from
//!   its expectation, so the demo can never silently stop showing what it claims to show.
//! - [`demo_principals`] and [`demo_firms`] are the cast (independent of the seed): officers
//!   of the responsible units (责任单位) for each measure, 市财政局's finance officers, the city
//!   government, an auditor, and the 46 firms.
//!
//! What the scenario shows: budgets for 2024–2026 for every measure with money (M2, M4–M10,
//! and a 2027 budget for the key lab's programme); compute vouchers (M2) including a claim over
//! 20% of the contract, a firm reaching its 1,000,000 yearly cap, self-built compute, and
//! provincial-voucher holders first in the review queue; major projects (M4) including one
//! below the 10,000,000 floor and a 一事一议 project endorsed by the city government; model
//! scenarios (M5) against their per-scenario cap; a national key laboratory (M6) with its
//! five-year programme and tranches in 2025, 2026 and 2027; one-time awards under M7, M8 and M9
//! and refused second awards; events (M10); a failed payout ordered again, a clawback with a
//! partial repayment, a rejection, a withdrawal, and applications left open at the end.
//!
//! The scenario expects a fresh ledger (the built-in catalogue only). Running it again with the
//! same seed is a no-op: every command id is already in the log.

mod builder;
pub mod cast;
mod scenario;

use std::collections::BTreeMap;

use fundledger_ledger::{Command, Ledger, SubmitError};
use serde_json::Value;

pub use cast::{FirmSpec, Staff};

/// The seed `fundledger demo` uses unless told otherwise (after 郑政文〔2024〕62号).
pub const DEFAULT_SEED: u64 = 62;

/// One command of the demo and the outcome it must get.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoStep {
    /// A command object of DESIGN §7, with `command_id`, `actor` and `at`.
    pub command: Value,
    /// `None`: accepted. `Some(code)`: rejected with exactly this code (DESIGN §7).
    pub expect: Option<&'static str>,
}

/// The scenario for `seed`, in business-time order.
pub fn scenario(seed: u64) -> Vec<DemoStep> {
    scenario::build(seed)
}

/// The scenario's command objects alone, in order.
pub fn commands(seed: u64) -> Vec<Value> {
    scenario(seed)
        .into_iter()
        .map(|step| step.command)
        .collect()
}

/// The demo's firms: key, name and USCC (the same for every seed).
pub fn demo_firms() -> Vec<FirmSpec> {
    cast::FIRMS.to_vec()
}

/// The cast for demo tokens: `(id, role, unit, firm)`. Every officer of the scenario, one per
/// role at least (admin, reviewer, approver, finance, government, auditor), and the applicants
/// of two demo firms (`firm` = their USCC).
pub fn demo_principals() -> Vec<(String, String, Option<String>, Option<String>)> {
    let mut principals: Vec<(String, String, Option<String>, Option<String>)> = cast::STAFF
        .iter()
        .map(|staff| {
            (
                staff.id.to_string(),
                staff.role.to_string(),
                Some(staff.unit.to_string()),
                None,
            )
        })
        .collect();
    for firm in [cast::TIANSHU, cast::HUIYI] {
        principals.push((
            firm.applicant_id(),
            "applicant".to_string(),
            None,
            Some(firm.uscc()),
        ));
    }
    principals
}

/// A step whose outcome was not the one the scenario expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// Position in the scenario.
    pub index: usize,
    pub command_id: String,
    pub command_type: String,
    pub expected: Option<&'static str>,
    /// The code it got (`None` = accepted).
    pub got: Option<String>,
    pub message: String,
}

/// What [`run`] saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoRun {
    pub accepted: usize,
    /// Rejected commands by code (recorded refusals and rejections alike).
    pub rejected: BTreeMap<String, usize>,
    /// Steps whose outcome differed from their expectation; empty on a fresh ledger.
    pub drifted: Vec<Drift>,
}

/// Executes `steps` one after another (each waits for its outcome, as the order matters) and
/// compares every outcome with its expectation.
pub async fn run(ledger: &Ledger, steps: &[DemoStep]) -> Result<DemoRun, SubmitError> {
    let mut report = DemoRun::default();
    for (index, step) in steps.iter().enumerate() {
        let command_type = step
            .command
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (command_id, got, message) = match Command::parse(&step.command) {
            Ok(command) => {
                let command_id = command.command_id.clone();
                let outcome = ledger.execute(command).await?;
                (command_id, outcome.code, outcome.message)
            }
            Err(rejection) => (
                rejection.command_id.unwrap_or_default(),
                Some(rejection.code.as_str().to_string()),
                rejection.message,
            ),
        };
        match &got {
            None => report.accepted += 1,
            Some(code) => *report.rejected.entry(code.clone()).or_default() += 1,
        }
        if got.as_deref() != step.expect {
            report.drifted.push(Drift {
                index,
                command_id,
                command_type,
                expected: step.expect,
                got,
                message,
            });
        }
    }
    Ok(report)
}
