//! The event vocabulary: every fact the ledger records, as the body of a record.
//!
//! A body is the envelope of DESIGN §5 (`seq`, `type`, `recorded_at`, `command_id`, `actor`)
//! flattened together with the event's own fields. Amounts are decimal strings; dates are
//! calendar dates in China Standard Time.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who may do what (DESIGN §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Applicant,
    Reviewer,
    Approver,
    Finance,
    Government,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Applicant,
        Role::Reviewer,
        Role::Approver,
        Role::Finance,
        Role::Government,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Applicant => "applicant",
            Role::Reviewer => "reviewer",
            Role::Approver => "approver",
            Role::Finance => "finance",
            Role::Government => "government",
            Role::Auditor => "auditor",
        }
    }
}

/// The person or system behind a command: `{"id","role","unit"?,"firm"?}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The USCC of the applicant's firm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firm: Option<String>,
}

impl Actor {
    /// The actor of records the ledger writes itself (the built-in catalogue at creation).
    pub fn system() -> Actor {
        Actor {
            id: "fundledger".to_string(),
            role: Role::Admin,
            unit: None,
            firm: None,
        }
    }
}

/// A firm as it names itself on an application: its unified social credit code and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firm {
    pub uscc: String,
    pub name: String,
}

/// An application's facts, shared by a submission and by a submission refused under the rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationFacts {
    pub application_id: String,
    pub firm: Firm,
    pub provision: String,
    /// Measure of the provision (`"M2"` …), from the catalogue in force.
    pub measure: String,
    pub fiscal_year: i32,
    /// The amount asked; for fixed awards without an amount, the fixed amount.
    pub amount: Decimal,
    pub basis: Map<String, Value>,
    /// Submission date in China Standard Time.
    pub submitted_on: NaiveDate,
    /// Seq of the `policy_registered` record whose catalogue judges this application.
    pub policy_seq: u64,
}

/// Every kind of event, tagged by `type` in the body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A rules catalogue comes into force (the first record of every ledger, and amendments).
    PolicyRegistered {
        /// The catalogue file's text, so the rules in force are part of the chain.
        catalogue: String,
        /// The catalogue's own version label.
        version: String,
    },
    BudgetAllocated {
        measure: String,
        fiscal_year: i32,
        amount: Decimal,
    },
    ApplicationSubmitted {
        #[serde(flatten)]
        application: ApplicationFacts,
    },
    /// A submission refused by a rule: the application exists, rejected, with its code.
    ApplicationRefused {
        #[serde(flatten)]
        application: ApplicationFacts,
        code: String,
        message: String,
    },
    ApplicationReviewed {
        application_id: String,
        recommend: bool,
        note: String,
    },
    ApplicationEndorsed {
        application_id: String,
        note: String,
    },
    ApplicationApproved {
        application_id: String,
        amount: Decimal,
    },
    ApplicationRejected {
        application_id: String,
        reason: String,
    },
    ApplicationWithdrawn {
        application_id: String,
    },
    PayoutOrdered {
        payout_id: String,
        application_id: String,
        amount: Decimal,
    },
    PayoutConfirmed {
        payout_id: String,
        bank_reference: String,
        value_date: NaiveDate,
    },
    PayoutFailed {
        payout_id: String,
        reason: String,
    },
    ClawbackOrdered {
        clawback_id: String,
        application_id: String,
        amount: Decimal,
        reason: String,
    },
    RepaymentRecorded {
        clawback_id: String,
        amount: Decimal,
        bank_reference: String,
    },
}

impl Event {
    /// The snake_case `type` of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::PolicyRegistered { .. } => "policy_registered",
            Event::BudgetAllocated { .. } => "budget_allocated",
            Event::ApplicationSubmitted { .. } => "application_submitted",
            Event::ApplicationRefused { .. } => "application_refused",
            Event::ApplicationReviewed { .. } => "application_reviewed",
            Event::ApplicationEndorsed { .. } => "application_endorsed",
            Event::ApplicationApproved { .. } => "application_approved",
            Event::ApplicationRejected { .. } => "application_rejected",
            Event::ApplicationWithdrawn { .. } => "application_withdrawn",
            Event::PayoutOrdered { .. } => "payout_ordered",
            Event::PayoutConfirmed { .. } => "payout_confirmed",
            Event::PayoutFailed { .. } => "payout_failed",
            Event::ClawbackOrdered { .. } => "clawback_ordered",
            Event::RepaymentRecorded { .. } => "repayment_recorded",
        }
    }
}

/// A whole body: the envelope of DESIGN §5 and the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventBody {
    pub seq: u64,
    pub recorded_at: DateTime<FixedOffset>,
    pub command_id: String,
    /// BLAKE3 (hex) of the command's canonical JSON, so that idempotency — the same
    /// `command_id` with other content is a conflict — survives a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_digest: Option<String>,
    pub actor: Actor,
    #[serde(flatten)]
    pub event: Event,
}

/// Why a body is not one of our events.
#[derive(Debug, thiserror::Error)]
#[error("seq {seq}: the body is not a fundledger event: {source}")]
pub struct SchemaError {
    pub seq: u64,
    #[source]
    pub source: serde_json::Error,
}

impl EventBody {
    /// The body as JSON, ready to be sealed.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a body back into an event.
    pub fn from_value(seq: u64, body: &Value) -> Result<EventBody, SchemaError> {
        EventBody::deserialize(body).map_err(|source| SchemaError { seq, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_round_trip_through_json() {
        let body = json!({
            "seq": 7, "type": "application_submitted", "recorded_at": "2024-06-02T09:00:00+08:00",
            "command_id": "c-7", "command_digest": "ab", "actor": {"id": "app.li", "role": "applicant", "firm": "X"},
            "application_id": "A-1", "firm": {"uscc": "X", "name": "郑州甲"}, "provision": "M2.compute_voucher",
            "measure": "M2", "fiscal_year": 2024, "amount": "200000.00",
            "basis": {"contract_amount": "1000000.00"}, "submitted_on": "2024-06-02", "policy_seq": 1
        });
        let parsed = EventBody::from_value(7, &body).expect("an application_submitted body");
        assert_eq!(parsed.event.type_name(), "application_submitted");
        assert_eq!(parsed.to_value(), body);
        let wrong = json!({"seq": 1, "type": "no_such_event", "recorded_at": "2024-06-02T09:00:00+08:00",
                           "command_id": "c", "actor": {"id": "a", "role": "admin"}});
        assert!(EventBody::from_value(1, &wrong).is_err());
    }
}
