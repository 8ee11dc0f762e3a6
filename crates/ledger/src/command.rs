//! Commands as they arrive (one JSON object each, DESIGN §7), parsed strictly.

use chrono::{DateTime, FixedOffset, NaiveDate};
use fundledger_events::{jcs, Actor, Firm};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::code::Code;

/// A parsed command: the envelope and its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub command_id: String,
    pub actor: Actor,
    /// Business time, honoured by `fundledger apply`; the HTTP service uses its own clock.
    pub at: Option<DateTime<FixedOffset>>,
    pub payload: Payload,
    /// BLAKE3 (hex) of the canonical JSON of the whole command: the idempotency fingerprint.
    pub digest: String,
}

/// The 13 command types of DESIGN §7. Amounts stay strings here: decide checks them and
/// answers `invalid_amount` with what was wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    RegisterPolicy(RegisterPolicy),
    AllocateBudget(AllocateBudget),
    SubmitApplication(SubmitApplication),
    ReviewApplication(ReviewApplication),
    EndorseApplication(EndorseApplication),
    ApproveApplication(ApproveApplication),
    RejectApplication(RejectApplication),
    WithdrawApplication(WithdrawApplication),
    OrderPayout(OrderPayout),
    ConfirmPayout(ConfirmPayout),
    FailPayout(FailPayout),
    OrderClawback(OrderClawback),
    RecordRepayment(RecordRepayment),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterPolicy {
    pub catalogue: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocateBudget {
    pub measure: String,
    pub fiscal_year: i32,
    pub amount: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitApplication {
    pub application_id: String,
    pub firm: Firm,
    pub provision: String,
    pub fiscal_year: i32,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub basis: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewApplication {
    pub application_id: String,
    pub recommend: bool,
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndorseApplication {
    pub application_id: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveApplication {
    pub application_id: String,
    pub amount: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectApplication {
    pub application_id: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawApplication {
    pub application_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPayout {
    pub payout_id: String,
    pub application_id: String,
    pub amount: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayout {
    pub payout_id: String,
    pub bank_reference: String,
    pub value_date: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailPayout {
    pub payout_id: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderClawback {
    pub clawback_id: String,
    pub application_id: String,
    pub amount: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRepayment {
    pub clawback_id: String,
    pub amount: String,
    pub bank_reference: String,
}

/// The command types, as written in `type`.
pub const COMMAND_TYPES: [&str; 13] = [
    "register_policy",
    "allocate_budget",
    "submit_application",
    "review_application",
    "endorse_application",
    "approve_application",
    "reject_application",
    "withdraw_application",
    "order_payout",
    "confirm_payout",
    "fail_payout",
    "order_clawback",
    "record_repayment",
];

/// A command refused before it reached decide (it could not be read, or has no actor).
#[derive(Clone, Debug, PartialEq)]
pub struct ParseRejection {
    /// The `command_id`, when one could be read.
    pub command_id: Option<String>,
    pub code: Code,
    pub message: String,
}

/// Longest identifier (command, application, payout, clawback ids) accepted.
const ID_LENGTH_MAX: usize = 128;

impl Command {
    /// Reads one command object.
    pub fn parse(value: &Value) -> Result<Command, ParseRejection> {
        let Some(object) = value.as_object() else {
            return Err(rejection(
                None,
                Code::Malformed,
                "a command is one JSON object".to_string(),
            ));
        };
        let command_id = match object.get("command_id") {
            Some(Value::String(id)) if uuid::Uuid::parse_str(id).is_ok() => id.clone(),
            Some(Value::String(id)) => {
                let shown: String = id.chars().take(64).collect();
                return Err(rejection(
                    None,
                    Code::Malformed,
                    format!("command_id {shown:?} is not a UUID"),
                ));
            }
            Some(_) => {
                return Err(rejection(
                    None,
                    Code::Malformed,
                    "command_id must be a UUID string".to_string(),
                ))
            }
            None => {
                return Err(rejection(
                    None,
                    Code::Malformed,
                    "the command has no command_id (a client-made UUID)".to_string(),
                ))
            }
        };
        let id = Some(command_id.clone());
        let command_type = match object.get("type") {
            Some(Value::String(kind)) if COMMAND_TYPES.contains(&kind.as_str()) => kind.clone(),
            Some(Value::String(kind)) => {
                let shown: String = kind.chars().take(64).collect();
                let known = COMMAND_TYPES.join(", ");
                return Err(rejection(
                    id,
                    Code::Malformed,
                    format!("unknown command type {shown:?}; known: {known}"),
                ));
            }
            _ => {
                return Err(rejection(
                    id,
                    Code::Malformed,
                    "the command has no type (a string)".to_string(),
                ))
            }
        };
        let actor = match object.get("actor") {
            None | Some(Value::Null) => {
                return Err(rejection(
                    id,
                    Code::Unauthorized,
                    "the command names no actor".to_string(),
                ));
            }
            Some(actor) => parse_part::<Actor>(actor, "actor")
                .map_err(|message| rejection(id.clone(), Code::Malformed, message))?,
        };
        let at = match object.get("at") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(DateTime::parse_from_rfc3339(text).map_err(|error| {
                    rejection(
                        id.clone(),
                        Code::Malformed,
                        format!("at {text:?} is not an RFC 3339 time: {error}"),
                    )
                })?)
            }
            Some(_) => {
                return Err(rejection(
                    id,
                    Code::Malformed,
                    "at must be an RFC 3339 string".to_string(),
                ))
            }
        };
        let mut payload_fields = object.clone();
        for envelope in ["command_id", "actor", "at"] {
            payload_fields.remove(envelope);
        }
        let payload = parse_part::<Payload>(&Value::Object(payload_fields), &command_type)
            .map_err(|message| rejection(id.clone(), Code::Malformed, message))?;
        if let Some(field) = overlong_id(&payload) {
            return Err(rejection(
                id,
                Code::Malformed,
                format!("{field} is longer than {ID_LENGTH_MAX} characters"),
            ));
        }
        let digest = blake3::hash(&jcs::canonicalize(value)).to_hex().to_string();
        Ok(Command {
            command_id,
            actor,
            at,
            payload,
            digest,
        })
    }

    pub fn type_name(&self) -> &'static str {
        self.payload.type_name()
    }
}

impl Payload {
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::RegisterPolicy(_) => "register_policy",
            Payload::AllocateBudget(_) => "allocate_budget",
            Payload::SubmitApplication(_) => "submit_application",
            Payload::ReviewApplication(_) => "review_application",
            Payload::EndorseApplication(_) => "endorse_application",
            Payload::ApproveApplication(_) => "approve_application",
            Payload::RejectApplication(_) => "reject_application",
            Payload::WithdrawApplication(_) => "withdraw_application",
            Payload::OrderPayout(_) => "order_payout",
            Payload::ConfirmPayout(_) => "confirm_payout",
            Payload::FailPayout(_) => "fail_payout",
            Payload::OrderClawback(_) => "order_clawback",
            Payload::RecordRepayment(_) => "record_repayment",
        }
    }
}

fn rejection(command_id: Option<String>, code: Code, message: String) -> ParseRejection {
    ParseRejection {
        command_id,
        code,
        message,
    }
}

fn parse_part<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    T::deserialize(value).map_err(|error| format!("{what}: {error}"))
}

fn overlong_id(payload: &Payload) -> Option<&'static str> {
    let ids: Vec<(&'static str, &str)> = match payload {
        Payload::SubmitApplication(p) => vec![("application_id", &p.application_id)],
        Payload::OrderPayout(p) => vec![
            ("payout_id", &p.payout_id),
            ("application_id", &p.application_id),
        ],
        Payload::OrderClawback(p) => vec![("clawback_id", &p.clawback_id)],
        _ => vec![],
    };
    ids.into_iter()
        .find(|(_, id)| id.chars().count() > ID_LENGTH_MAX)
        .map(|(field, _)| field)
}
