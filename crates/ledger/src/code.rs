//! The outcome codes of DESIGN §7 and their HTTP statuses.

use serde::Serialize;

/// Why a command was not accepted. The snake_case names are the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Malformed,
    Unauthorized,
    Forbidden,
    SegregationOfDuties,
    IdempotencyConflict,
    DuplicateId,
    NoPolicy,
    UnknownProvision,
    UnknownApplication,
    UnknownPayout,
    UnknownClawback,
    UnknownLab,
    InvalidState,
    InvalidAmount,
    InvalidUscc,
    OutsidePolicyWindow,
    ExcludedSelfBuilt,
    ExceedsRate,
    ExceedsProvisionCap,
    BelowMinimum,
    ExceedsFirmAnnualCap,
    AlreadyAwarded,
    InsufficientBudget,
    MissingEndorsement,
    OutsideProgrammeWindow,
    ExceedsEnvelope,
    ExceedsApproved,
}

impl Code {
    pub const ALL: [Code; 27] = [
        Code::Malformed,
        Code::Unauthorized,
        Code::Forbidden,
        Code::SegregationOfDuties,
        Code::IdempotencyConflict,
        Code::DuplicateId,
        Code::NoPolicy,
        Code::UnknownProvision,
        Code::UnknownApplication,
        Code::UnknownPayout,
        Code::UnknownClawback,
        Code::UnknownLab,
        Code::InvalidState,
        Code::InvalidAmount,
        Code::InvalidUscc,
        Code::OutsidePolicyWindow,
        Code::ExcludedSelfBuilt,
        Code::ExceedsRate,
        Code::ExceedsProvisionCap,
        Code::BelowMinimum,
        Code::ExceedsFirmAnnualCap,
        Code::AlreadyAwarded,
        Code::InsufficientBudget,
        Code::MissingEndorsement,
        Code::OutsideProgrammeWindow,
        Code::ExceedsEnvelope,
        Code::ExceedsApproved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "malformed",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::SegregationOfDuties => "segregation_of_duties",
            Code::IdempotencyConflict => "idempotency_conflict",
            Code::DuplicateId => "duplicate_id",
            Code::NoPolicy => "no_policy",
            Code::UnknownProvision => "unknown_provision",
            Code::UnknownApplication => "unknown_application",
            Code::UnknownPayout => "unknown_payout",
            Code::UnknownClawback => "unknown_clawback",
            Code::UnknownLab => "unknown_lab",
            Code::InvalidState => "invalid_state",
            Code::InvalidAmount => "invalid_amount",
            Code::InvalidUscc => "invalid_uscc",
            Code::OutsidePolicyWindow => "outside_policy_window",
            Code::ExcludedSelfBuilt => "excluded_self_built",
            Code::ExceedsRate => "exceeds_rate",
            Code::ExceedsProvisionCap => "exceeds_provision_cap",
            Code::BelowMinimum => "below_minimum",
            Code::ExceedsFirmAnnualCap => "exceeds_firm_annual_cap",
            Code::AlreadyAwarded => "already_awarded",
            Code::InsufficientBudget => "insufficient_budget",
            Code::MissingEndorsement => "missing_endorsement",
            Code::OutsideProgrammeWindow => "outside_programme_window",
            Code::ExceedsEnvelope => "exceeds_envelope",
            Code::ExceedsApproved => "exceeds_approved",
        }
    }

    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// 400 malformed, 401 unauthorized, 403 forbidden/segregation, 404 unknown_*,
    /// 409 idempotency/duplicate/invalid_state, 422 rule rejections.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Malformed | Code::NoPolicy => 400,
            Code::Unauthorized => 401,
            Code::Forbidden | Code::SegregationOfDuties => 403,
            Code::UnknownProvision
            | Code::UnknownApplication
            | Code::UnknownPayout
            | Code::UnknownClawback
            | Code::UnknownLab => 404,
            Code::IdempotencyConflict | Code::DuplicateId | Code::InvalidState => 409,
            _ => 422,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
