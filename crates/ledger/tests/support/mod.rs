//! A pure given/when/then harness for `decide` (no IO, no clock), and builders for the JSON
//! commands of DESIGN §7.
//!
//! ```ignore
//! given([allocate("M2", 2024, "1000000"), voucher("A-1", &firm(1), "200000", "1000000")])
//!     .when(review("A-1", GXJ, true))
//!     .then_events(|events| assert_eq!(events.len(), 1));
//! ```
//!
//! Every command goes through `Command::parse` (so the JSON contract is exercised), is decided
//! at its `at` (or the world's business time), and what it records is sealed onto the head and
//! folded into the state, exactly as the writer does.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, FixedOffset};
use fundledger_events::{Actor, Event, EventBody, Head, Record};
use fundledger_ledger::{decide, uscc, Code, Command, Decision, ParseRejection};
use fundledger_policy::{Catalogue, BUILTIN_CATALOGUE};
use fundledger_projections::LedgerState;
use serde_json::{json, Map, Value};

/// The origin (ledger name) of every test ledger.
pub const ORIGIN: &str = "test-origin";
/// Business time used when a command carries no `at`: inside the policy window.
pub const DEFAULT_AT: &str = "2024-06-01T10:00:00+08:00";
/// Command id of the record registering the built-in catalogue (as the writer writes it).
pub const GENESIS_COMMAND_ID: &str = "00000000-0000-0000-0000-000000000000";

/// 责任单位 used in tests.
pub const GXJ: &str = "市工信局";
pub const KJJ: &str = "市科技局";
pub const CZJ: &str = "市财政局";
/// A unit responsible for none of the measures that pay money.
pub const SJJ: &str = "市审计局";

pub fn time(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

/// A fresh, unique command id (a valid UUID).
pub fn command_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A valid USCC for test firm `n` (GB 32100-2015 check digit computed).
pub fn firm(n: u32) -> String {
    uscc::complete(&format!("91410100MA47{n:05}")).expect("a valid USCC prefix")
}

pub fn firm_name(uscc: &str) -> String {
    format!("郑州测试企业{}", &uscc[12..17])
}

// ---------------------------------------------------------------------------------------------
// Actors

pub fn applicant(uscc: &str) -> Value {
    json!({"id": format!("app.{}", &uscc[12..17]), "role": "applicant", "firm": uscc})
}

pub fn reviewer(id: &str, unit: &str) -> Value {
    json!({"id": id, "role": "reviewer", "unit": unit})
}

pub fn approver(id: &str, unit: &str) -> Value {
    json!({"id": id, "role": "approver", "unit": unit})
}

pub fn finance(id: &str) -> Value {
    json!({"id": id, "role": "finance", "unit": CZJ})
}

pub fn government(id: &str) -> Value {
    json!({"id": id, "role": "government", "unit": "市人民政府"})
}

pub fn admin(id: &str) -> Value {
    json!({"id": id, "role": "admin"})
}

pub fn auditor(id: &str) -> Value {
    json!({"id": id, "role": "auditor", "unit": "市审计局"})
}

/// The unit that reviews and approves a provision in these tests: measure 4 belongs to
/// 市科技局 and 市财政局 only; 市工信局 is responsible for every other measure that pays.
pub fn unit_of(provision: &str) -> &'static str {
    if provision.starts_with("M4.") {
        KJJ
    } else {
        GXJ
    }
}

// ---------------------------------------------------------------------------------------------
// Commands (JSON, as a client writes them)

/// A command object: `command_id`, `type`, `actor` and the payload fields.
pub fn cmd(kind: &str, actor: Value, fields: Value) -> Value {
    let mut object = match fields {
        Value::Object(object) => object,
        Value::Null => Map::new(),
        other => panic!("payload fields must be an object, got {other}"),
    };
    object.insert("command_id".into(), Value::String(command_id()));
    object.insert("type".into(), Value::String(kind.into()));
    object.insert("actor".into(), actor);
    Value::Object(object)
}

/// The command with its business time `at` set.
pub fn with_at(mut command: Value, at: &str) -> Value {
    command["at"] = Value::String(at.into());
    command
}

/// The command with another actor (and a new command id).
pub fn with_actor(mut command: Value, actor: Value) -> Value {
    command["actor"] = actor;
    command["command_id"] = Value::String(command_id());
    command
}

/// The command with a new command id and one field replaced (which may be the id).
pub fn with_field(mut command: Value, field: &str, value: Value) -> Value {
    command["command_id"] = Value::String(command_id());
    command[field] = value;
    command
}

/// The command without a field.
pub fn without_field(mut command: Value, field: &str) -> Value {
    if let Some(object) = command.as_object_mut() {
        object.remove(field);
    }
    command
}

pub fn register_policy(catalogue: &str) -> Value {
    cmd(
        "register_policy",
        admin("adm.root"),
        json!({"catalogue": catalogue}),
    )
}

pub fn allocate(measure: &str, fiscal_year: i32, amount: &str) -> Value {
    cmd(
        "allocate_budget",
        finance("fin.zhang"),
        json!({"measure": measure, "fiscal_year": fiscal_year, "amount": amount}),
    )
}

/// A submission by the firm's own applicant.
pub fn submit(
    application_id: &str,
    uscc: &str,
    provision: &str,
    fiscal_year: i32,
    amount: Option<&str>,
    basis: Value,
) -> Value {
    let mut fields = json!({
        "application_id": application_id,
        "firm": {"uscc": uscc, "name": firm_name(uscc)},
        "provision": provision,
        "fiscal_year": fiscal_year,
        "basis": basis,
    });
    if let Some(amount) = amount {
        fields["amount"] = Value::String(amount.into());
    }
    cmd("submit_application", applicant(uscc), fields)
}

/// A compute voucher (M2) for fiscal year 2024.
pub fn voucher(application_id: &str, uscc: &str, amount: &str, contract_amount: &str) -> Value {
    submit(
        application_id,
        uscc,
        "M2.compute_voucher",
        2024,
        Some(amount),
        json!({"contract_amount": contract_amount, "contract_id": format!("HT-{application_id}")}),
    )
}

/// A fixed award with a recognition date, amount omitted.
pub fn fixed(application_id: &str, uscc: &str, provision: &str, fiscal_year: i32) -> Value {
    submit(
        application_id,
        uscc,
        provision,
        fiscal_year,
        None,
        json!({"recognition_date": "2024-05-30"}),
    )
}

pub fn review(application_id: &str, unit: &str, recommend: bool) -> Value {
    cmd(
        "review_application",
        reviewer("rev.wang", unit),
        json!({"application_id": application_id, "recommend": recommend, "note": "材料齐全"}),
    )
}

pub fn endorse(application_id: &str) -> Value {
    cmd(
        "endorse_application",
        government("gov.chen"),
        json!({"application_id": application_id, "note": "市政府常务会议同意"}),
    )
}

pub fn approve(application_id: &str, unit: &str, amount: &str) -> Value {
    cmd(
        "approve_application",
        approver("apr.li", unit),
        json!({"application_id": application_id, "amount": amount}),
    )
}

pub fn reject(application_id: &str, unit: &str) -> Value {
    cmd(
        "reject_application",
        reviewer("rev.wang", unit),
        json!({"application_id": application_id, "reason": "不符合条件"}),
    )
}

pub fn withdraw(application_id: &str, uscc: &str) -> Value {
    cmd(
        "withdraw_application",
        applicant(uscc),
        json!({"application_id": application_id}),
    )
}

pub fn order_payout(payout_id: &str, application_id: &str, amount: &str) -> Value {
    cmd(
        "order_payout",
        finance("fin.zhang"),
        json!({"payout_id": payout_id, "application_id": application_id, "amount": amount}),
    )
}

pub fn confirm_payout(payout_id: &str) -> Value {
    cmd(
        "confirm_payout",
        finance("fin.zhao"),
        json!({"payout_id": payout_id, "bank_reference": format!("BANK-{payout_id}"), "value_date": "2024-07-01"}),
    )
}

pub fn fail_payout(payout_id: &str) -> Value {
    cmd(
        "fail_payout",
        finance("fin.zhao"),
        json!({"payout_id": payout_id, "reason": "账户已注销"}),
    )
}

pub fn order_clawback(clawback_id: &str, application_id: &str, amount: &str) -> Value {
    cmd(
        "order_clawback",
        finance("fin.zhang"),
        json!({"clawback_id": clawback_id, "application_id": application_id, "amount": amount, "reason": "审计发现虚报"}),
    )
}

pub fn repay(clawback_id: &str, amount: &str) -> Value {
    cmd(
        "record_repayment",
        finance("fin.zhao"),
        json!({"clawback_id": clawback_id, "amount": amount, "bank_reference": format!("BACK-{clawback_id}")}),
    )
}

/// Submission, positive review and approval at `approved`, by the responsible unit.
pub fn awarded(submission: Value, approved: &str) -> Vec<Value> {
    let application_id = submission["application_id"]
        .as_str()
        .expect("a submission")
        .to_string();
    let unit = unit_of(submission["provision"].as_str().expect("a provision"));
    vec![
        submission,
        review(&application_id, unit, true),
        approve(&application_id, unit, approved),
    ]
}

// ---------------------------------------------------------------------------------------------
// The world: a state built by deciding commands

/// What one command did.
#[derive(Clone, Debug)]
pub enum Step {
    /// `Command::parse` refused it.
    Unreadable(ParseRejection),
    /// Accepted: these events were recorded at these seqs.
    Accepted { events: Vec<Event>, seqs: Vec<u64> },
    /// A submission refused by a rule; the refusal was recorded.
    Refused {
        event: Box<Event>,
        code: Code,
        message: String,
        seq: u64,
    },
    /// Refused; nothing recorded.
    Rejected { code: Code, message: String },
}

impl Step {
    /// The outcome code, `None` when accepted.
    pub fn code(&self) -> Option<Code> {
        match self {
            Step::Unreadable(rejection) => Some(rejection.code),
            Step::Accepted { .. } => None,
            Step::Refused { code, .. } | Step::Rejected { code, .. } => Some(*code),
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, Step::Accepted { .. })
    }

    pub fn message(&self) -> &str {
        match self {
            Step::Unreadable(rejection) => &rejection.message,
            Step::Accepted { .. } => "",
            Step::Refused { message, .. } | Step::Rejected { message, .. } => message,
        }
    }
}

/// A ledger state built by deciding commands, with every sealed record.
#[derive(Clone)]
pub struct World {
    pub state: LedgerState,
    pub records: Vec<Record>,
    /// Business time of commands that carry no `at`.
    pub at: DateTime<FixedOffset>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

/// A world with the built-in catalogue and these commands, each of which must be accepted.
pub fn given(commands: impl IntoIterator<Item = Value>) -> World {
    World::new().given(commands)
}

impl World {
    /// A new ledger: the built-in catalogue registered at seq 1 by the system actor.
    pub fn new() -> World {
        let mut world = World::without_policy();
        let version = Catalogue::from_toml(BUILTIN_CATALOGUE)
            .expect("the built-in catalogue loads")
            .version;
        let at = world.at;
        world.record(
            GENESIS_COMMAND_ID,
            None,
            &Actor::system(),
            at,
            vec![Event::PolicyRegistered {
                catalogue: BUILTIN_CATALOGUE.to_string(),
                version,
            }],
        );
        world
    }

    /// An empty ledger: no catalogue registered.
    pub fn without_policy() -> World {
        let state = LedgerState {
            last_hash: Head::empty(ORIGIN).hash,
            ..LedgerState::default()
        };
        World {
            state,
            records: Vec::new(),
            at: time(DEFAULT_AT),
        }
    }

    /// Sets the business time of the commands that follow (unless they carry `at`).
    pub fn at(mut self, at: &str) -> World {
        self.at = time(at);
        self
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// Seals events onto the head and folds them, as the writer does.
    fn record(
        &mut self,
        command_id: &str,
        digest: Option<String>,
        actor: &Actor,
        at: DateTime<FixedOffset>,
        events: Vec<Event>,
    ) -> Vec<u64> {
        let mut seqs = Vec::new();
        for event in events {
            let body = EventBody {
                seq: self.state.last_seq + 1,
                recorded_at: at,
                command_id: command_id.to_string(),
                command_digest: digest.clone(),
                actor: actor.clone(),
                event,
            };
            let head = Head {
                seq: self.state.last_seq,
                hash: self.state.last_hash,
            };
            let record = Record::seal(&head, body.to_value()).expect("a sealable body");
            self.state
                .apply_body(record.seq, record.hash, &body)
                .unwrap_or_else(|error| panic!("decided events must fold: {error}"));
            seqs.push(record.seq);
            self.records.push(record);
        }
        seqs
    }

    /// Parses and decides one command, recording what it records.
    pub fn step(&mut self, command: &Value) -> Step {
        let parsed = match Command::parse(command) {
            Ok(parsed) => parsed,
            Err(rejection) => return Step::Unreadable(rejection),
        };
        let now = parsed.at.unwrap_or(self.at);
        match decide(&self.state, &parsed, now) {
            Decision::Accept { events } => {
                let seqs = self.record(
                    &parsed.command_id,
                    Some(parsed.digest.clone()),
                    &parsed.actor,
                    now,
                    events.clone(),
                );
                Step::Accepted { events, seqs }
            }
            Decision::Refuse {
                event,
                code,
                message,
            } => {
                let seqs = self.record(
                    &parsed.command_id,
                    Some(parsed.digest.clone()),
                    &parsed.actor,
                    now,
                    vec![event.clone()],
                );
                Step::Refused {
                    event: Box::new(event),
                    code,
                    message,
                    seq: seqs[0],
                }
            }
            Decision::Reject { code, message } => Step::Rejected { code, message },
        }
    }

    /// Applies commands that must all be accepted.
    pub fn given(mut self, commands: impl IntoIterator<Item = Value>) -> World {
        for command in commands {
            let step = self.step(&command);
            assert!(
                step.is_accepted(),
                "given: {command} was not accepted: {step:?}"
            );
        }
        self
    }

    /// Applies a submission that must be refused (recorded) with `code`.
    pub fn given_refused(mut self, command: Value, code: Code) -> World {
        let step = self.step(&command);
        assert!(
            matches!(step, Step::Refused { code: c, .. } if c == code),
            "given: {command} should be refused with {code}: {step:?}"
        );
        self
    }

    pub fn when(self, command: Value) -> Then {
        let before = self.clone();
        let mut after = self;
        let step = after.step(&command);
        Then {
            command,
            before,
            after,
            step,
        }
    }
}

/// The outcome of `when`, to be checked.
pub struct Then {
    pub command: Value,
    pub before: World,
    pub after: World,
    pub step: Step,
}

impl Then {
    /// Accepted: `check` sees the events. Returns the world after them.
    pub fn then_events(self, check: impl FnOnce(&[Event])) -> World {
        match &self.step {
            Step::Accepted { events, .. } => check(events),
            other => panic!("{} should be accepted: {other:?}", self.command),
        }
        self.after
    }

    pub fn then_accepted(self) -> World {
        self.then_events(|_| {})
    }

    /// Refused with `code` (unreadable, or rejected by decide) and nothing recorded. Returns
    /// the unchanged world.
    pub fn then_code(self, code: Code) -> World {
        match &self.step {
            Step::Unreadable(rejection) => assert_eq!(
                rejection.code, code,
                "{}: {}",
                self.command, rejection.message
            ),
            Step::Rejected { code: got, message } => {
                assert_eq!(*got, code, "{}: {message}", self.command)
            }
            other => panic!(
                "{} should be rejected with {code}, not recorded: {other:?}",
                self.command
            ),
        }
        assert_eq!(self.after.state.last_seq, self.before.state.last_seq);
        self.before
    }

    /// Like `then_code`, and `check` sees the message.
    pub fn then_code_saying(self, code: Code, words: &str) -> World {
        let message = self.step.message().to_string();
        assert!(
            message.contains(words),
            "{}: message {message:?} should mention {words:?}",
            self.command
        );
        self.then_code(code)
    }

    /// A submission refused by a rule, and the refusal recorded (the application exists,
    /// rejected, with its code). Returns the world after the refusal.
    pub fn then_refused(self, code: Code) -> World {
        match &self.step {
            Step::Refused {
                event,
                code: got,
                message,
                ..
            } => {
                assert_eq!(*got, code, "{}: {message}", self.command);
                match event.as_ref() {
                    Event::ApplicationRefused {
                        application,
                        code: recorded,
                        ..
                    } => {
                        assert_eq!(recorded, code.as_str());
                        let app = self
                            .after
                            .state
                            .applications
                            .get(&application.application_id)
                            .expect("a refused application exists");
                        assert_eq!(app.status.as_str(), "rejected");
                        assert_eq!(app.code.as_deref(), Some(code.as_str()));
                    }
                    other => panic!("a refusal records application_refused, not {other:?}"),
                }
            }
            other => panic!(
                "{} should be refused (recorded) with {code}: {other:?}",
                self.command
            ),
        }
        assert_eq!(self.after.state.last_seq, self.before.state.last_seq + 1);
        self.after
    }
}
