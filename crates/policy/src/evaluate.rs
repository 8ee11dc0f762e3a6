//! Checking an application's basis and applying a provision's [`Limit`] to one amount.
//!
//! Everything here looks at a single application. Checks that need other applications — the
//! firm's annual cap, "once", the envelope sum and window, `cap_per` sums, budgets — belong to
//! the ledger's `decide`, which has the state.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::load::MONEY_DECIMALS_MAX;
use crate::model::{parse_iso_date, parse_plain_decimal, BasisKind, Limit, Provision};

/// One checked basis value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasisValue {
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    Amount(Decimal),
    ApplicationId(String),
}

/// An application's basis after [`Provision::check_basis`]: every required field present and
/// well typed, optional bools filled in as `false`, nothing undeclared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Basis {
    values: BTreeMap<String, BasisValue>,
}

impl Basis {
    /// The value of an amount field.
    pub fn amount(&self, name: &str) -> Option<Decimal> {
        match self.values.get(name) {
            Some(BasisValue::Amount(amount)) => Some(*amount),
            _ => None,
        }
    }

    /// The value of a date field.
    pub fn date(&self, name: &str) -> Option<NaiveDate> {
        match self.values.get(name) {
            Some(BasisValue::Date(date)) => Some(*date),
            _ => None,
        }
    }

    /// The value of a bool field; `false` when absent, as an omitted optional flag means "no".
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(BasisValue::Bool(true)))
    }

    /// The value of a text or application-id field.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(BasisValue::Text(text) | BasisValue::ApplicationId(text)) => Some(text),
            _ => None,
        }
    }

    /// Any field's value.
    pub fn get(&self, name: &str) -> Option<&BasisValue> {
        self.values.get(name)
    }

    /// All fields, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &BasisValue)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }
}

/// Why an application's basis was refused. The command is malformed: nothing was evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BasisError {
    #[error("basis field {field:?} is required ({kind})")]
    Missing { field: String, kind: BasisKind },
    #[error("basis field {field:?} must be {expected}, got {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("basis field {field:?}: {value:?} {problem}")]
    InvalidAmount {
        field: String,
        value: String,
        problem: &'static str,
    },
    #[error("basis field {field:?}: {value:?} is not a date YYYY-MM-DD")]
    InvalidDate { field: String, value: String },
    #[error("basis field {field:?} must not be empty")]
    Empty { field: String },
    #[error("unknown basis field {field:?}; this provision takes {allowed}")]
    Unknown { field: String, allowed: String },
}

impl BasisError {
    /// The basis field at fault.
    pub fn field(&self) -> &str {
        match self {
            BasisError::Missing { field, .. }
            | BasisError::WrongType { field, .. }
            | BasisError::InvalidAmount { field, .. }
            | BasisError::InvalidDate { field, .. }
            | BasisError::Empty { field }
            | BasisError::Unknown { field, .. } => field,
        }
    }

    /// The contract code (DESIGN §7) for a command whose basis is refused.
    pub fn code(&self) -> &'static str {
        "malformed"
    }
}

/// Which rule an amount broke; [`ViolationKind::code`] is the contract code of DESIGN §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    InvalidAmount,
    ExceedsRate,
    ExceedsProvisionCap,
    BelowMinimum,
    ExcludedSelfBuilt,
}

impl ViolationKind {
    pub fn code(self) -> &'static str {
        match self {
            ViolationKind::InvalidAmount => "invalid_amount",
            ViolationKind::ExceedsRate => "exceeds_rate",
            ViolationKind::ExceedsProvisionCap => "exceeds_provision_cap",
            ViolationKind::BelowMinimum => "below_minimum",
            ViolationKind::ExcludedSelfBuilt => "excluded_self_built",
        }
    }
}

/// An amount the provision's limit refuses, with a message that states the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}", code = self.kind.code())]
pub struct LimitViolation {
    pub kind: ViolationKind,
    pub message: String,
}

impl LimitViolation {
    fn new(kind: ViolationKind, message: String) -> LimitViolation {
        LimitViolation { kind, message }
    }

    /// The contract code: `invalid_amount`, `exceeds_rate`, `exceeds_provision_cap`,
    /// `below_minimum` or `excluded_self_built`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The human explanation, with the numbers.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Yuan to the fen, for messages: `1000000` → `"1000000.00"`.
fn yuan(amount: Decimal) -> String {
    format!("{:.2}", amount)
}

/// A rate as a percentage for messages: `0.20` → `"20%"`.
fn percent(rate: Decimal) -> String {
    format!("{}%", (rate * Decimal::ONE_HUNDRED).normalize())
}

impl Provision {
    /// Checks an application's `basis` object against this provision's declared fields.
    pub fn check_basis(&self, basis: &Map<String, Value>) -> Result<Basis, BasisError> {
        let mut values = BTreeMap::new();
        for field in &self.basis {
            let name = field.name.as_str();
            let Some(raw) = basis.get(name) else {
                if field.required {
                    return Err(BasisError::Missing {
                        field: name.to_string(),
                        kind: field.kind,
                    });
                }
                if field.kind == BasisKind::Bool {
                    values.insert(name.to_string(), BasisValue::Bool(false));
                }
                continue;
            };
            values.insert(name.to_string(), check_value(name, field.kind, raw)?);
        }
        // Sorted so that the error is the same whatever order the client wrote the keys in.
        let mut unknown: Vec<&String> = basis
            .keys()
            .filter(|k| self.basis_field(k).is_none())
            .collect();
        unknown.sort();
        if let Some(field) = unknown.first() {
            let allowed = self
                .basis
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(BasisError::Unknown {
                field: field.to_string(),
                allowed,
            });
        }
        Ok(Basis { values })
    }

    /// Applies this provision's limit to one application and returns the amount to record.
    ///
    /// `requested` may be `None` only for a [`Limit::Fixed`] award, which is then recorded at
    /// its fixed amount. Aggregate rules (annual cap, once, envelope, `cap_per`) are not
    /// checked here.
    pub fn evaluate(
        &self,
        requested: Option<Decimal>,
        basis: &Basis,
    ) -> Result<Decimal, LimitViolation> {
        use ViolationKind::*;

        // An excluded applicant is ineligible whatever the amount, so say that first.
        if let Some(flag) = &self.excluded_if {
            if basis.flag(flag) {
                return Err(LimitViolation::new(
                    ExcludedSelfBuilt,
                    format!(
                        "{}: {flag} is true, and such use is excluded (自建自用除外)",
                        self.id
                    ),
                ));
            }
        }
        if let Some(amount) = requested {
            check_requested(amount)?;
        }
        let required = || {
            requested.ok_or_else(|| {
                LimitViolation::new(InvalidAmount, format!("{}: an amount is required", self.id))
            })
        };

        match &self.limit {
            Limit::Fixed { amount } => match requested {
                Some(r) if r != *amount => Err(LimitViolation::new(
                    InvalidAmount,
                    format!(
                        "{}: requested {} but this award is fixed at {}; \
                         omit the amount or state it exactly",
                        self.id,
                        yuan(r),
                        yuan(*amount)
                    ),
                )),
                _ => Ok(*amount),
            },
            Limit::Cap { amount } => {
                let r = required()?;
                if r > *amount {
                    return Err(LimitViolation::new(
                        ExceedsProvisionCap,
                        format!(
                            "{}: requested {} exceeds the cap {}",
                            self.id,
                            yuan(r),
                            yuan(*amount)
                        ),
                    ));
                }
                Ok(r)
            }
            Limit::Rate {
                rate,
                base_field,
                cap,
            } => {
                let r = required()?;
                let base = basis.amount(base_field).ok_or_else(|| {
                    LimitViolation::new(
                        InvalidAmount,
                        format!(
                            "{}: basis has no amount {base_field} to apply the rate to",
                            self.id
                        ),
                    )
                })?;
                // Round down: the requested amount has at most 2 decimals, so comparing with
                // the bound truncated to the fen is the same as comparing with the exact
                // product, and the message shows an amount that would actually be accepted.
                let by_rate = rate
                    .checked_mul(base)
                    .map(|b| b.round_dp_with_strategy(MONEY_DECIMALS_MAX, RoundingStrategy::ToZero))
                    .ok_or_else(|| {
                        LimitViolation::new(
                            InvalidAmount,
                            format!("{}: {base_field} is too large", self.id),
                        )
                    })?;
                let rate_text = format!(
                    "{} of {base_field} {} (= {})",
                    percent(*rate),
                    yuan(base),
                    yuan(by_rate)
                );
                // When both bounds are broken, report the tighter one: it is the real maximum.
                // If the cap does not bind (cap ≥ rate bound), passing the rate passes the cap.
                match cap {
                    Some(cap) if *cap < by_rate && r > *cap => Err(LimitViolation::new(
                        ExceedsProvisionCap,
                        format!(
                            "{}: requested {} exceeds the cap {} ({rate_text})",
                            self.id,
                            yuan(r),
                            yuan(*cap)
                        ),
                    )),
                    _ if r > by_rate => Err(LimitViolation::new(
                        ExceedsRate,
                        format!("{}: requested {} exceeds {rate_text}", self.id, yuan(r)),
                    )),
                    _ => Ok(r),
                }
            }
            Limit::Minimum { amount } => {
                let r = required()?;
                if r < *amount {
                    return Err(LimitViolation::new(
                        BelowMinimum,
                        format!(
                            "{}: requested {} is below the minimum {}",
                            self.id,
                            yuan(r),
                            yuan(*amount)
                        ),
                    ));
                }
                Ok(r)
            }
            // Positivity was checked above; the envelope sum and window need the ledger's state.
            Limit::Open | Limit::Envelope { .. } => required(),
        }
    }
}

/// A requested amount must be positive yuan with at most 2 decimals.
fn check_requested(amount: Decimal) -> Result<(), LimitViolation> {
    if amount <= Decimal::ZERO {
        return Err(LimitViolation::new(
            ViolationKind::InvalidAmount,
            format!("requested amount {amount} must be positive"),
        ));
    }
    if amount.scale() > MONEY_DECIMALS_MAX {
        return Err(LimitViolation::new(
            ViolationKind::InvalidAmount,
            format!("requested amount {amount} has more than 2 decimals"),
        ));
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_value(name: &str, kind: BasisKind, raw: &Value) -> Result<BasisValue, BasisError> {
    let wrong = |expected: &'static str| BasisError::WrongType {
        field: name.to_string(),
        expected,
        found: json_type(raw),
    };
    match kind {
        BasisKind::Bool => raw
            .as_bool()
            .map(BasisValue::Bool)
            .ok_or_else(|| wrong("a JSON bool")),
        BasisKind::Text | BasisKind::ApplicationId => {
            let text = raw.as_str().ok_or_else(|| wrong("a string"))?;
            if text.trim().is_empty() {
                return Err(BasisError::Empty {
                    field: name.to_string(),
                });
            }
            Ok(if kind == BasisKind::Text {
                BasisValue::Text(text.to_string())
            } else {
                BasisValue::ApplicationId(text.to_string())
            })
        }
        BasisKind::Date => {
            let text = raw
                .as_str()
                .ok_or_else(|| wrong("a date string \"YYYY-MM-DD\""))?;
            parse_iso_date(text)
                .map(BasisValue::Date)
                .ok_or_else(|| BasisError::InvalidDate {
                    field: name.to_string(),
                    value: text.to_string(),
                })
        }
        BasisKind::Amount => {
            // Amounts are strings so that no float ever carries money (DESIGN §3).
            let text = raw
                .as_str()
                .ok_or_else(|| wrong("an amount string such as \"1000000.00\""))?;
            let invalid = |problem| BasisError::InvalidAmount {
                field: name.to_string(),
                value: text.to_string(),
                problem,
            };
            let amount =
                parse_plain_decimal(text).ok_or_else(|| invalid("is not a decimal amount"))?;
            if amount <= Decimal::ZERO {
                return Err(invalid("must be positive"));
            }
            if amount.scale() > MONEY_DECIMALS_MAX {
                return Err(invalid("has more than 2 decimals"));
            }
            Ok(BasisValue::Amount(amount))
        }
    }
}
