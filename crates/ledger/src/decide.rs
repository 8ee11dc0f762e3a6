//! `decide(state, command, now) → Decision`: every rule of 郑政文〔2024〕62号 that a command must
//! pass, as a pure function. No IO, no clock: `now` arrives as a value.
//!
//! The helpers return `Result<_, Decision>` so that `?` stops at the first rule broken; the
//! `Err` side is the final answer, built once per command, so its size does not matter.
#![allow(clippy::result_large_err)]

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use fundledger_events::{Actor, ApplicationFacts, Event, Role};
use fundledger_policy::{Catalogue, Limit, Provision};
use fundledger_projections::{Application, ApplicationStatus, Lab, LedgerState, PayoutStatus};
use rust_decimal::Decimal;

use crate::code::Code;
use crate::command::{Command, Payload, SubmitApplication};
use crate::uscc;

/// The finance bureau: the unit that allocates budgets and pays.
pub const FINANCE_UNIT: &str = "市财政局";
/// Largest amount accepted anywhere (a trillion yuan): beyond it an amount is a typo.
const AMOUNT_MAX_YUAN: i64 = 1_000_000_000_000;
/// Fiscal years a budget may be allocated for beyond the policy's last year: lab programmes
/// run up to five years after a recognition inside the window.
const PROGRAMME_YEARS_AFTER_POLICY: i32 = 5;

/// What decide made of a command. `Refuse` carries a whole event; boxing it would buy nothing,
/// as a decision lives only until the writer seals it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Accepted: these events are appended.
    Accept { events: Vec<Event> },
    /// A submission refused by a rule: the refusal itself is recorded (the application exists,
    /// rejected, with its code).
    Refuse {
        event: Event,
        code: Code,
        message: String,
    },
    /// Refused; nothing is recorded.
    Reject { code: Code, message: String },
}

fn reject<T>(code: Code, message: impl Into<String>) -> Result<T, Decision> {
    Err(Decision::Reject {
        code,
        message: message.into(),
    })
}

/// The calendar date of `now` in China Standard Time.
pub fn cst_date(now: DateTime<FixedOffset>) -> NaiveDate {
    match FixedOffset::east_opt(8 * 3600) {
        Some(cst) => now.with_timezone(&cst).date_naive(),
        None => now.date_naive(),
    }
}

/// Decides one command against the state, at business time `now`.
pub fn decide(state: &LedgerState, command: &Command, now: DateTime<FixedOffset>) -> Decision {
    match decide_inner(state, command, now) {
        Ok(events) => Decision::Accept { events },
        Err(decision) => decision,
    }
}

fn decide_inner(
    state: &LedgerState,
    command: &Command,
    now: DateTime<FixedOffset>,
) -> Result<Vec<Event>, Decision> {
    let actor = &command.actor;
    check_actor(actor)?;
    if let Payload::RegisterPolicy(p) = &command.payload {
        require_role(actor, &[Role::Admin], "register a policy catalogue")?;
        let catalogue = match Catalogue::from_toml(&p.catalogue) {
            Ok(catalogue) => catalogue,
            Err(error) => {
                return reject(
                    Code::Malformed,
                    format!("the catalogue does not load: {error}"),
                )
            }
        };
        return Ok(vec![Event::PolicyRegistered {
            catalogue: p.catalogue.clone(),
            version: catalogue.version,
        }]);
    }
    let Some((policy_seq, catalogue)) = state.current_policy() else {
        return reject(
            Code::NoPolicy,
            "no rules catalogue is registered; register_policy first",
        );
    };
    let today = cst_date(now);
    match &command.payload {
        Payload::RegisterPolicy(_) => reject(Code::Malformed, "register_policy is decided above"),
        Payload::AllocateBudget(p) => {
            require_finance(actor, "allocate budgets")?;
            let Some(measure) = catalogue.measure(&p.measure) else {
                return reject(
                    Code::Malformed,
                    format!("unknown measure {:?}; measures are M1 … M10", p.measure),
                );
            };
            if !measure.carries_money {
                return reject(
                    Code::Malformed,
                    format!(
                        "measure {} carries no money; it takes no budget",
                        measure.id
                    ),
                );
            }
            let first_year = catalogue.valid_from.year();
            let last_year = catalogue.valid_until.year() + PROGRAMME_YEARS_AFTER_POLICY;
            if !(first_year..=last_year).contains(&p.fiscal_year) {
                return reject(
                    Code::OutsidePolicyWindow,
                    format!(
                        "fiscal year {} is outside {first_year}–{last_year}",
                        p.fiscal_year
                    ),
                );
            }
            let amount = parse_amount(&p.amount, "amount")?;
            Ok(vec![Event::BudgetAllocated {
                measure: measure.id.clone(),
                fiscal_year: p.fiscal_year,
                amount,
            }])
        }
        Payload::SubmitApplication(p) => submit(state, policy_seq, catalogue, actor, p, today),
        Payload::ReviewApplication(p) => {
            require_role(actor, &[Role::Reviewer], "review applications")?;
            let app = application(state, &p.application_id)?;
            require_responsible(state, actor, app)?;
            if actor.id == app.submitted_by {
                return reject(
                    Code::SegregationOfDuties,
                    format!(
                        "{} submitted {}; another reviewer must review it",
                        actor.id, app.application_id
                    ),
                );
            }
            if app.status != ApplicationStatus::Submitted {
                return reject(
                    Code::InvalidState,
                    format!(
                        "application {} is {}; only a submitted application is reviewed",
                        app.application_id,
                        app.status.as_str()
                    ),
                );
            }
            Ok(vec![Event::ApplicationReviewed {
                application_id: app.application_id.clone(),
                recommend: p.recommend,
                note: p.note.clone(),
            }])
        }
        Payload::EndorseApplication(p) => {
            require_role(actor, &[Role::Government], "endorse applications")?;
            let app = application(state, &p.application_id)?;
            let provision = app_provision(state, app)?;
            if provision.requires_endorsement_by.is_none() {
                return reject(
                    Code::InvalidState,
                    format!(
                        "{} ({}) takes no endorsement",
                        app.application_id, app.provision
                    ),
                );
            }
            require_open(app)?;
            if app.endorsed_by.is_some() {
                return reject(
                    Code::InvalidState,
                    format!("application {} is already endorsed", app.application_id),
                );
            }
            Ok(vec![Event::ApplicationEndorsed {
                application_id: app.application_id.clone(),
                note: p.note.clone(),
            }])
        }
        Payload::ApproveApplication(p) => approve(state, actor, &p.application_id, &p.amount),
        Payload::RejectApplication(p) => {
            require_role(
                actor,
                &[Role::Reviewer, Role::Approver],
                "reject applications",
            )?;
            let app = application(state, &p.application_id)?;
            require_responsible(state, actor, app)?;
            let revocable = app.status == ApplicationStatus::Approved
                && app.paid.is_zero()
                && app.clawed_back.is_zero();
            if !app.status.is_open() && !revocable {
                return reject(
                    Code::InvalidState,
                    format!(
                        "application {} is {}{}",
                        app.application_id,
                        app.status.as_str(),
                        if app.status == ApplicationStatus::Approved {
                            " and has payouts"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Ok(vec![Event::ApplicationRejected {
                application_id: app.application_id.clone(),
                reason: p.reason.clone(),
            }])
        }
        Payload::WithdrawApplication(p) => {
            require_role(actor, &[Role::Applicant], "withdraw applications")?;
            let app = application(state, &p.application_id)?;
            if actor.firm.as_deref() != Some(app.firm.uscc.as_str()) {
                return reject(
                    Code::Forbidden,
                    format!("application {} is not your firm's", app.application_id),
                );
            }
            if !app.status.is_open() {
                return reject(
                    Code::InvalidState,
                    format!(
                        "application {} is {}; only an undecided application can be withdrawn",
                        app.application_id,
                        app.status.as_str()
                    ),
                );
            }
            Ok(vec![Event::ApplicationWithdrawn {
                application_id: app.application_id.clone(),
            }])
        }
        Payload::OrderPayout(p) => {
            require_finance(actor, "order payouts")?;
            non_empty(&p.payout_id, "payout_id")?;
            if state.payouts.contains_key(&p.payout_id) {
                return reject(
                    Code::DuplicateId,
                    format!("payout {} exists already", p.payout_id),
                );
            }
            let app = approved_application(state, &p.application_id, "paid")?;
            if app.approved_by.as_deref() == Some(actor.id.as_str()) {
                return reject(
                    Code::SegregationOfDuties,
                    format!(
                        "{} approved {}; another officer must order its payout",
                        actor.id, app.application_id
                    ),
                );
            }
            let amount = parse_amount(&p.amount, "amount")?;
            let approved = app.approved.unwrap_or(Decimal::ZERO);
            if app.paid + amount > approved {
                return reject(
                    Code::ExceedsApproved,
                    format!(
                        "{} would bring payouts of {} to {}, over the approved {}",
                        yuan(amount),
                        app.application_id,
                        yuan(app.paid + amount),
                        yuan(approved)
                    ),
                );
            }
            Ok(vec![Event::PayoutOrdered {
                payout_id: p.payout_id.clone(),
                application_id: app.application_id.clone(),
                amount,
            }])
        }
        Payload::ConfirmPayout(p) => {
            require_finance(actor, "confirm payouts")?;
            let payout = state
                .payouts
                .get(&p.payout_id)
                .ok_or_else(|| Decision::Reject {
                    code: Code::UnknownPayout,
                    message: format!("no payout {:?}", p.payout_id),
                })?;
            if payout.status != PayoutStatus::Ordered {
                return reject(
                    Code::InvalidState,
                    format!("payout {} is {}", payout.payout_id, payout.status.as_str()),
                );
            }
            if payout.ordered_by == actor.id {
                return reject(
                    Code::SegregationOfDuties,
                    format!(
                        "{} ordered payout {}; another officer must confirm it",
                        actor.id, payout.payout_id
                    ),
                );
            }
            non_empty(&p.bank_reference, "bank_reference")?;
            Ok(vec![Event::PayoutConfirmed {
                payout_id: payout.payout_id.clone(),
                bank_reference: p.bank_reference.clone(),
                value_date: p.value_date,
            }])
        }
        Payload::FailPayout(p) => {
            require_finance(actor, "record failed payouts")?;
            let payout = state
                .payouts
                .get(&p.payout_id)
                .ok_or_else(|| Decision::Reject {
                    code: Code::UnknownPayout,
                    message: format!("no payout {:?}", p.payout_id),
                })?;
            if payout.status != PayoutStatus::Ordered {
                return reject(
                    Code::InvalidState,
                    format!("payout {} is {}", payout.payout_id, payout.status.as_str()),
                );
            }
            Ok(vec![Event::PayoutFailed {
                payout_id: payout.payout_id.clone(),
                reason: p.reason.clone(),
            }])
        }
        Payload::OrderClawback(p) => {
            require_finance(actor, "order clawbacks")?;
            non_empty(&p.clawback_id, "clawback_id")?;
            if state.clawbacks.contains_key(&p.clawback_id) {
                return reject(
                    Code::DuplicateId,
                    format!("clawback {} exists already", p.clawback_id),
                );
            }
            let app = approved_application(state, &p.application_id, "clawed back")?;
            let amount = parse_amount(&p.amount, "amount")?;
            // Only money that reached the firm (confirmed payouts) can be clawed back: a payout
            // still in flight may fail, and a repayment of it would return money never paid.
            let confirmed: Decimal = state
                .payouts
                .values()
                .filter(|payout| {
                    payout.application_id == app.application_id
                        && payout.status == PayoutStatus::Confirmed
                })
                .map(|payout| payout.amount)
                .sum();
            let recoverable = confirmed - app.clawed_back;
            if amount > recoverable {
                return reject(
                    Code::ExceedsApproved,
                    format!(
                        "{} exceeds what was paid (confirmed) on {} and not yet clawed back ({})",
                        yuan(amount),
                        app.application_id,
                        yuan(recoverable)
                    ),
                );
            }
            Ok(vec![Event::ClawbackOrdered {
                clawback_id: p.clawback_id.clone(),
                application_id: app.application_id.clone(),
                amount,
                reason: p.reason.clone(),
            }])
        }
        Payload::RecordRepayment(p) => {
            require_finance(actor, "record repayments")?;
            let clawback = state
                .clawbacks
                .get(&p.clawback_id)
                .ok_or_else(|| Decision::Reject {
                    code: Code::UnknownClawback,
                    message: format!("no clawback {:?}", p.clawback_id),
                })?;
            let amount = parse_amount(&p.amount, "amount")?;
            if amount > clawback.outstanding() {
                return reject(
                    Code::InvalidAmount,
                    format!(
                        "{} exceeds the {} outstanding on clawback {}",
                        yuan(amount),
                        yuan(clawback.outstanding()),
                        clawback.clawback_id
                    ),
                );
            }
            non_empty(&p.bank_reference, "bank_reference")?;
            Ok(vec![Event::RepaymentRecorded {
                clawback_id: clawback.clawback_id.clone(),
                amount,
                bank_reference: p.bank_reference.clone(),
            }])
        }
    }
}

fn submit(
    state: &LedgerState,
    policy_seq: u64,
    catalogue: &Catalogue,
    actor: &Actor,
    p: &SubmitApplication,
    today: NaiveDate,
) -> Result<Vec<Event>, Decision> {
    require_role(
        actor,
        &[Role::Applicant, Role::Reviewer],
        "submit applications",
    )?;
    non_empty(&p.application_id, "application_id")?;
    let Some(provision) = catalogue.provision(&p.provision) else {
        return reject(
            Code::UnknownProvision,
            format!("no provision {:?} in the catalogue in force", p.provision),
        );
    };
    match actor.role {
        Role::Applicant if actor.firm.as_deref() != Some(p.firm.uscc.as_str()) => {
            return reject(
                Code::Forbidden,
                "an applicant submits only for its own firm (actor.firm must equal firm.uscc)",
            );
        }
        Role::Reviewer if !unit_is_responsible(catalogue, actor, &p.provision) => {
            return reject(
                Code::Forbidden,
                format!(
                    "{} is not a responsible unit (责任单位) of {}",
                    actor.unit.as_deref().unwrap_or("(no unit)"),
                    p.provision
                ),
            );
        }
        _ => {}
    }
    if !uscc::is_valid(&p.firm.uscc) {
        return reject(
            Code::InvalidUscc,
            format!(
                "{:?} is not a valid unified social credit code (GB 32100-2015 check digit)",
                p.firm.uscc
            ),
        );
    }
    non_empty(&p.firm.name, "firm.name")?;
    if state.applications.contains_key(&p.application_id) {
        return reject(
            Code::DuplicateId,
            format!("application {} exists already", p.application_id),
        );
    }
    if !(2000..=2100).contains(&p.fiscal_year) {
        return reject(
            Code::Malformed,
            format!("fiscal_year {} is not a plausible year", p.fiscal_year),
        );
    }
    let basis = provision
        .check_basis(&p.basis)
        .map_err(|error| Decision::Reject {
            code: Code::Malformed,
            message: format!("basis: {error}"),
        })?;
    let requested = match &p.amount {
        Some(text) => Some(parse_amount(text, "amount")?),
        None => None,
    };
    // From here on the application is well formed: a refusal is recorded.
    let recorded_amount = requested
        .or(provision.fixed_amount())
        .unwrap_or(Decimal::ZERO);
    let facts = ApplicationFacts {
        application_id: p.application_id.clone(),
        firm: p.firm.clone(),
        provision: provision.id.clone(),
        measure: provision.measure.clone(),
        fiscal_year: p.fiscal_year,
        amount: recorded_amount,
        basis: p.basis.clone(),
        submitted_on: today,
        policy_seq,
    };
    let refuse = |code: Code, message: String| Decision::Refuse {
        event: Event::ApplicationRefused {
            application: facts.clone(),
            code: code.as_str().to_string(),
            message: message.clone(),
        },
        code,
        message,
    };
    if let Some(date) = basis.date("recognition_date") {
        if date > today {
            return reject(
                Code::Malformed,
                format!("recognition_date {date} is after the submission date {today}"),
            );
        }
    }
    // The window: the policy's, or for a lab programme tranche, the programme's own.
    let lab = match &provision.limit {
        Limit::Envelope { lab_field, .. } => {
            let lab_id = basis.text(lab_field).unwrap_or_default();
            let Some(lab) = open_lab(state, lab_id) else {
                return reject(
                    Code::UnknownLab,
                    format!("{lab_field} {lab_id:?} is not an approved lab lead award"),
                );
            };
            if lab.firm.uscc != p.firm.uscc {
                return reject(
                    Code::UnknownLab,
                    format!("lab {lab_id} belongs to another firm"),
                );
            }
            if !lab.opened_in_policy_window {
                return Err(refuse(
                    Code::OutsidePolicyWindow,
                    format!(
                        "lab {lab_id}'s programme was not opened while the policy was in force"
                    ),
                ));
            }
            if today < lab.recognition_date || today > lab.window_end {
                return Err(refuse(
                    Code::OutsideProgrammeWindow,
                    format!(
                        "{today} is outside lab {lab_id}'s programme window {} – {}",
                        lab.recognition_date, lab.window_end
                    ),
                ));
            }
            if p.fiscal_year < lab.recognition_date.year() || p.fiscal_year > lab.window_end.year()
            {
                return Err(refuse(
                    Code::OutsideProgrammeWindow,
                    format!(
                        "fiscal year {} is outside lab {lab_id}'s programme years {}–{}",
                        p.fiscal_year,
                        lab.recognition_date.year(),
                        lab.window_end.year()
                    ),
                ));
            }
            Some(lab)
        }
        _ => {
            if !catalogue.in_window(today) {
                return Err(refuse(
                    Code::OutsidePolicyWindow,
                    format!(
                        "{today} is outside the policy's validity {} – {}",
                        catalogue.valid_from, catalogue.valid_until
                    ),
                ));
            }
            let (first, last) = (catalogue.valid_from.year(), catalogue.valid_until.year());
            if !(first..=last).contains(&p.fiscal_year) {
                return Err(refuse(
                    Code::OutsidePolicyWindow,
                    format!(
                        "fiscal year {} is outside the policy's years {first}–{last}",
                        p.fiscal_year
                    ),
                ));
            }
            None
        }
    };
    let amount = match provision.evaluate(requested, &basis) {
        Ok(amount) => amount,
        Err(violation) => {
            let code = Code::parse(violation.code()).unwrap_or(Code::InvalidAmount);
            return Err(refuse(code, violation.message().to_string()));
        }
    };
    let facts_amount = amount;
    if provision.once {
        if let Some(held) = state
            .firm_applications(&p.firm.uscc, &provision.id)
            .find(|app| app.status == ApplicationStatus::Approved || app.status.is_open())
        {
            return Err(refuse(
                Code::AlreadyAwarded,
                format!(
                    "{} already has {} under {} ({}); it is awarded once",
                    p.firm.uscc,
                    held.application_id,
                    provision.id,
                    held.status.as_str()
                ),
            ));
        }
    }
    for other in catalogue.excluded_with(&provision.id) {
        if let Some(held) = state
            .firm_applications(&p.firm.uscc, other)
            .find(|app| app.status == ApplicationStatus::Approved || app.status.is_open())
        {
            return Err(refuse(
                Code::AlreadyAwarded,
                format!(
                    "{} holds {} under {other}, which excludes {}",
                    p.firm.uscc, held.application_id, provision.id
                ),
            ));
        }
    }
    if let Some(cap) = provision.firm_annual_cap {
        let claimed = state.voucher_claimed(&p.firm.uscc, p.fiscal_year);
        if claimed + amount > cap {
            return Err(refuse(
                Code::ExceedsFirmAnnualCap,
                format!(
                    "{} has claimed {} under {} in {}; {} more would pass the yearly cap of {}",
                    p.firm.uscc,
                    yuan(claimed),
                    provision.id,
                    p.fiscal_year,
                    yuan(amount),
                    yuan(cap)
                ),
            ));
        }
    }
    if let (Some(key_field), Limit::Cap { amount: cap }) = (&provision.cap_per, &provision.limit) {
        let key = basis.text(key_field).unwrap_or_default().to_string();
        let claimed = state
            .keyed_claims
            .get(&(provision.id.clone(), key.clone()))
            .copied()
            .unwrap_or(Decimal::ZERO);
        if claimed + amount > *cap {
            return Err(refuse(
                Code::ExceedsProvisionCap,
                format!(
                    "{key_field} {key:?} has {} claimed under {}; {} more would pass the cap of {}",
                    yuan(claimed),
                    provision.id,
                    yuan(amount),
                    yuan(*cap)
                ),
            ));
        }
    }
    if let Some(lab) = lab {
        if lab.claimed + amount > lab.envelope {
            return Err(refuse(
                Code::ExceedsEnvelope,
                format!(
                    "lab {} has {} claimed of its {} envelope; {} more would pass it",
                    lab.lab,
                    yuan(lab.claimed),
                    yuan(lab.envelope),
                    yuan(amount)
                ),
            ));
        }
    }
    let mut facts = facts;
    facts.amount = facts_amount;
    Ok(vec![Event::ApplicationSubmitted { application: facts }])
}

fn approve(
    state: &LedgerState,
    actor: &Actor,
    application_id: &str,
    amount_text: &str,
) -> Result<Vec<Event>, Decision> {
    require_role(actor, &[Role::Approver], "approve applications")?;
    let app = application(state, application_id)?;
    require_responsible(state, actor, app)?;
    if actor.id == app.submitted_by || app.reviewed_by.as_deref() == Some(actor.id.as_str()) {
        return reject(
            Code::SegregationOfDuties,
            format!(
                "{} submitted or reviewed {}; another approver must decide it",
                actor.id, app.application_id
            ),
        );
    }
    require_open(app)?;
    if app.recommend != Some(true) {
        return reject(
            Code::InvalidState,
            format!(
                "application {} needs a positive review before approval",
                app.application_id
            ),
        );
    }
    let provision = app_provision(state, app)?;
    if let Some(role) = &provision.requires_endorsement_by {
        if app.endorsed_by.is_none() {
            return reject(
                Code::MissingEndorsement,
                format!(
                    "{} ({}) needs an endorsement by role {role} before approval (一事一议)",
                    app.application_id, app.provision
                ),
            );
        }
    }
    let amount = parse_amount(amount_text, "amount")?;
    if amount > app.requested {
        return reject(
            Code::InvalidAmount,
            format!(
                "approving {} is more than the {} requested",
                yuan(amount),
                yuan(app.requested)
            ),
        );
    }
    let basis = provision
        .check_basis(&app.basis)
        .map_err(|error| Decision::Reject {
            code: Code::Malformed,
            message: format!("stored basis: {error}"),
        })?;
    if let Err(violation) = provision.evaluate(Some(amount), &basis) {
        return reject(
            Code::parse(violation.code()).unwrap_or(Code::InvalidAmount),
            violation.message().to_string(),
        );
    }
    if provision.once {
        if let Some(held) = state
            .firm_applications(&app.firm.uscc, &provision.id)
            .find(|other| other.status == ApplicationStatus::Approved)
        {
            return reject(
                Code::AlreadyAwarded,
                format!(
                    "{} already holds {} under {}",
                    app.firm.uscc, held.application_id, provision.id
                ),
            );
        }
    }
    if let Limit::Envelope { lab_field, .. } = &provision.limit {
        let lab_id = app.basis_text(lab_field).unwrap_or_default();
        let Some(lab) = open_lab(state, lab_id) else {
            return reject(Code::UnknownLab, format!("lab {lab_id:?} is not open"));
        };
        if lab.approved + amount > lab.envelope {
            return reject(
                Code::ExceedsEnvelope,
                format!(
                    "lab {lab_id} has {} approved of {}; {} more would pass it",
                    yuan(lab.approved),
                    yuan(lab.envelope),
                    yuan(amount)
                ),
            );
        }
    }
    let budget = state.budget(&app.measure, app.fiscal_year);
    if budget.remaining() < amount {
        return reject(
            Code::InsufficientBudget,
            format!(
                "{} {} has {} remaining; {} cannot be committed",
                app.measure,
                app.fiscal_year,
                yuan(budget.remaining()),
                yuan(amount)
            ),
        );
    }
    Ok(vec![Event::ApplicationApproved {
        application_id: app.application_id.clone(),
        amount,
    }])
}

fn check_actor(actor: &Actor) -> Result<(), Decision> {
    if actor.id.trim().is_empty() {
        return reject(Code::Unauthorized, "the actor has no id");
    }
    if actor.role == Role::Applicant && actor.firm.is_none() {
        return reject(
            Code::Malformed,
            "an applicant actor names its firm (USCC) in actor.firm",
        );
    }
    Ok(())
}

fn require_role(actor: &Actor, roles: &[Role], what: &str) -> Result<(), Decision> {
    if roles.contains(&actor.role) {
        return Ok(());
    }
    let allowed: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    reject(
        Code::Forbidden,
        format!(
            "role {} may not {what} (allowed: {})",
            actor.role.as_str(),
            allowed.join(", ")
        ),
    )
}

fn require_finance(actor: &Actor, what: &str) -> Result<(), Decision> {
    require_role(actor, &[Role::Finance], what)?;
    match actor.unit.as_deref() {
        None | Some(FINANCE_UNIT) => Ok(()),
        Some(unit) => reject(
            Code::Forbidden,
            format!("only {FINANCE_UNIT} may {what}; the actor is of {unit}"),
        ),
    }
}

fn unit_is_responsible(catalogue: &Catalogue, actor: &Actor, provision: &str) -> bool {
    actor
        .unit
        .as_ref()
        .is_some_and(|unit| catalogue.responsible_units(provision).contains(unit))
}

fn require_responsible(
    state: &LedgerState,
    actor: &Actor,
    app: &Application,
) -> Result<(), Decision> {
    let catalogue = state
        .policy_at(app.policy_seq)
        .ok_or_else(|| Decision::Reject {
            code: Code::NoPolicy,
            message: format!("the catalogue of seq {} is missing", app.policy_seq),
        })?;
    if unit_is_responsible(catalogue, actor, &app.provision) {
        return Ok(());
    }
    reject(
        Code::Forbidden,
        format!(
            "{} is not a responsible unit (责任单位) of {}",
            actor.unit.as_deref().unwrap_or("(no unit)"),
            app.provision
        ),
    )
}

/// The lab opened by lead award `lab_id`, while that award stands: a lead approval revoked
/// later opens nothing (else a re-approved lead would open a second envelope).
fn open_lab<'a>(state: &'a LedgerState, lab_id: &str) -> Option<&'a Lab> {
    let lead_stands = state
        .applications
        .get(lab_id)
        .is_some_and(|lead| lead.status == ApplicationStatus::Approved);
    state
        .labs
        .get(lab_id)
        .map(|lab| lab.as_ref())
        .filter(|_| lead_stands)
}

fn application<'a>(state: &'a LedgerState, id: &str) -> Result<&'a Application, Decision> {
    state
        .applications
        .get(id)
        .map(|app| app.as_ref())
        .ok_or_else(|| Decision::Reject {
            code: Code::UnknownApplication,
            message: format!("no application {id:?}"),
        })
}

/// Refuses (`invalid_state`) an application that is no longer waiting for a decision.
fn require_open(app: &Application) -> Result<(), Decision> {
    if app.status.is_open() {
        return Ok(());
    }
    reject(
        Code::InvalidState,
        format!(
            "application {} is {}",
            app.application_id,
            app.status.as_str()
        ),
    )
}

/// The application `id`, which must be approved: only approved awards are paid or clawed back.
fn approved_application<'a>(
    state: &'a LedgerState,
    id: &str,
    what: &str,
) -> Result<&'a Application, Decision> {
    let app = application(state, id)?;
    if app.status != ApplicationStatus::Approved {
        return reject(
            Code::InvalidState,
            format!(
                "application {} is {}; only approved awards are {what}",
                app.application_id,
                app.status.as_str()
            ),
        );
    }
    Ok(app)
}

fn app_provision<'a>(state: &'a LedgerState, app: &Application) -> Result<&'a Provision, Decision> {
    state
        .policy_at(app.policy_seq)
        .and_then(|catalogue| catalogue.provision(&app.provision))
        .ok_or_else(|| Decision::Reject {
            code: Code::UnknownProvision,
            message: format!(
                "{} is not in the catalogue of seq {}",
                app.provision, app.policy_seq
            ),
        })
}

fn non_empty(text: &str, field: &str) -> Result<(), Decision> {
    if text.trim().is_empty() {
        return reject(Code::Malformed, format!("{field} is empty"));
    }
    Ok(())
}

/// A positive amount of yuan with at most two decimals, written as a string.
pub fn parse_amount(text: &str, field: &str) -> Result<Decimal, Decision> {
    let shown: String = text.chars().take(40).collect();
    let well_formed = !text.is_empty()
        && text.len() <= 24
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    let parsed = if well_formed {
        text.parse::<Decimal>().ok()
    } else {
        None
    };
    let Some(amount) = parsed else {
        return reject(
            Code::InvalidAmount,
            format!("{field} {shown:?} is not a decimal amount of yuan like \"1000000.00\""),
        );
    };
    if amount <= Decimal::ZERO {
        return reject(
            Code::InvalidAmount,
            format!("{field} {shown} must be positive"),
        );
    }
    if amount.scale() > 2 {
        return reject(
            Code::InvalidAmount,
            format!("{field} {shown} has more than two decimals (yuan and fen only)"),
        );
    }
    if amount > Decimal::from(AMOUNT_MAX_YUAN) {
        return reject(
            Code::InvalidAmount,
            format!("{field} {shown} is beyond any budget ({AMOUNT_MAX_YUAN} yuan)"),
        );
    }
    let mut amount = amount;
    amount.rescale(2);
    Ok(amount)
}

fn yuan(amount: Decimal) -> String {
    format!("{amount:.2}")
}
