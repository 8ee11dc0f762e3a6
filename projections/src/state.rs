//! [`LedgerState`]: every read model, folded one record at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use fundledger_events::{
    Actor, ApplicationFacts, Event, EventBody, Firm, Hash, Record, SchemaError,
};
use fundledger_policy::{Catalogue, CatalogueError, Limit};
use imbl::{HashMap, OrdMap};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::id::Id;

/// Where an application stands. A submission refused by a rule is `Rejected` with its `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    Submitted,
    Reviewed,
    Approved,
    Rejected,
    Withdrawn,
}

impl ApplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Submitted => "submitted",
            ApplicationStatus::Reviewed => "reviewed",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
            ApplicationStatus::Withdrawn => "withdrawn",
        }
    }

    /// Still waiting for a decision: it counts against caps as a claim.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ApplicationStatus::Submitted | ApplicationStatus::Reviewed
        )
    }
}

/// One line of an application's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub seq: u64,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub actor: String,
    pub recorded_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    pub application_id: String,
    pub provision: String,
    pub measure: String,
    pub firm: Firm,
    pub fiscal_year: i32,
    /// The amount asked for (for fixed awards, the fixed amount).
    pub requested: Decimal,
    pub approved: Option<Decimal>,
    pub status: ApplicationStatus,
    pub basis: Arc<Map<String, Value>>,
    pub submitted_on: NaiveDate,
    pub submitted_seq: u64,
    pub policy_seq: u64,
    pub submitted_by: String,
    pub reviewed_by: Option<String>,
    pub recommend: Option<bool>,
    pub endorsed_by: Option<String>,
    pub approved_by: Option<String>,
    pub approved_on: Option<NaiveDate>,
    /// For a rule refusal, its code; for a rejection, `None`.
    pub code: Option<String>,
    /// The refusal's message or the rejection's reason.
    pub reason: Option<String>,
    /// Sum of payouts ordered or confirmed (failed ones excluded).
    pub paid: Decimal,
    pub clawed_back: Decimal,
    pub repaid: Decimal,
    /// Holds a provincial compute voucher: first in the review queue.
    pub priority: bool,
    pub history: Vec<HistoryEntry>,
}

impl Application {
    /// What this application counts against caps: the approved amount once approved, the
    /// requested amount while open, nothing once rejected or withdrawn.
    pub fn claimed(&self) -> Decimal {
        match self.status {
            ApplicationStatus::Approved => self.approved.unwrap_or(Decimal::ZERO),
            status if status.is_open() => self.requested,
            _ => Decimal::ZERO,
        }
    }

    pub fn basis_text(&self, name: &str) -> Option<&str> {
        self.basis.get(name).and_then(Value::as_str)
    }
}

/// Budget of one measure in one fiscal year. remaining = allocated − committed − paid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    pub allocated: Decimal,
    /// Approved and not yet paid out.
    pub committed: Decimal,
    /// Paid out (ordered or confirmed), less repayments of clawbacks.
    pub paid: Decimal,
}

impl Budget {
    pub fn remaining(&self) -> Decimal {
        self.allocated - self.committed - self.paid
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FirmState {
    pub uscc: String,
    pub name: String,
    /// Compute vouchers claimed (open or approved) per fiscal year.
    pub voucher_claimed: BTreeMap<i32, Decimal>,
    /// Provisions awarded (approved applications), in order of award.
    pub awards: Vec<String>,
}

/// One programme year of a lab: planned, approved and paid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrancheYear {
    #[serde(with = "crate::yuan")]
    pub planned: Decimal,
    #[serde(with = "crate::yuan")]
    pub approved: Decimal,
    #[serde(with = "crate::yuan")]
    pub paid: Decimal,
}

/// A national key lab's programme envelope, opened by its approved `M6.key_lab_lead`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lab {
    /// Application id of the approved lead award.
    pub lab: String,
    pub firm: Firm,
    pub recognition_date: NaiveDate,
    /// Last day (inclusive) on which a tranche may be submitted.
    pub window_end: NaiveDate,
    pub envelope: Decimal,
    /// Whether the envelope was opened while the policy was in force.
    pub opened_in_policy_window: bool,
    /// Open and approved tranches.
    pub claimed: Decimal,
    pub approved: Decimal,
    pub paid: Decimal,
    pub years: BTreeMap<i32, TrancheYear>,
}

impl Lab {
    pub fn remaining(&self) -> Decimal {
        self.envelope - self.approved
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    Ordered,
    Confirmed,
    Failed,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Ordered => "ordered",
            PayoutStatus::Confirmed => "confirmed",
            PayoutStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Payout {
    pub payout_id: String,
    pub application_id: String,
    pub amount: Decimal,
    pub status: PayoutStatus,
    pub ordered_by: String,
    pub ordered_on: NaiveDate,
    pub ordered_seq: u64,
    pub confirmed_on: Option<NaiveDate>,
    pub value_date: Option<NaiveDate>,
    pub bank_reference: Option<String>,
    pub failure_reason: Option<String>,
    /// Seq and hash of the record that settled it (confirmed or failed).
    pub settled_seq: Option<u64>,
    pub settled_hash: Option<Hash>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clawback {
    pub clawback_id: String,
    pub application_id: String,
    pub amount: Decimal,
    pub repaid: Decimal,
    pub reason: String,
    pub ordered_seq: u64,
}

impl Clawback {
    pub fn outstanding(&self) -> Decimal {
        self.amount - self.repaid
    }
}

/// What the log says about one `command_id`, for idempotent replies after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    pub digest: Option<String>,
    pub seqs: Vec<u64>,
    /// The type of each record the command wrote, in order.
    pub event_types: Vec<&'static str>,
    /// `Some(code)` when the command was refused by a rule (recorded refusal).
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Why a record cannot be folded.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("seq {seq}: records must be applied in order; expected seq {expected}")]
    OutOfOrder { seq: u64, expected: u64 },
    #[error("seq {seq}: the registered catalogue does not load: {source}")]
    Catalogue { seq: u64, source: CatalogueError },
    #[error("seq {seq}: {what} {id:?} is not known to the projections")]
    Unknown {
        seq: u64,
        what: &'static str,
        id: String,
    },
}

/// Every projection of the ledger. Cloning is cheap (persistent maps), so a writer can decide
/// a batch on a copy and readers can hold a snapshot while the writer moves on.
#[derive(Clone, Debug, Default)]
pub struct LedgerState {
    pub last_seq: u64,
    pub last_hash: Hash,
    /// Catalogues by the seq of their `policy_registered` record.
    pub policies: OrdMap<u64, Arc<Catalogue>>,
    pub budgets: OrdMap<(String, i32), Budget>,
    pub firms: OrdMap<Id, Arc<FirmState>>,
    pub applications: HashMap<Id, Arc<Application>>,
    pub labs: OrdMap<String, Arc<Lab>>,
    pub payouts: HashMap<String, Arc<Payout>>,
    pub clawbacks: HashMap<String, Arc<Clawback>>,
    /// Sum claimed per (provision, basis key) for caps that apply across applications.
    pub keyed_claims: HashMap<(String, String), Decimal>,
    pub commands: HashMap<Id, Arc<CommandRecord>>,
    /// Open applications by (priority first, submission seq): the review queue.
    pub queue: OrdMap<(bool, u64), Id>,
}

impl LedgerState {
    /// Replays records from seq 1.
    pub fn replay<'a>(
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<LedgerState, ApplyError> {
        let mut state = LedgerState::default();
        for record in records {
            state.apply(record)?;
        }
        Ok(state)
    }

    /// The catalogue in force now (the latest registered).
    pub fn current_policy(&self) -> Option<(u64, &Arc<Catalogue>)> {
        self.policies
            .get_max()
            .map(|(seq, catalogue)| (*seq, catalogue))
    }

    /// The catalogue registered at `seq`.
    pub fn policy_at(&self, seq: u64) -> Option<&Arc<Catalogue>> {
        self.policies.get(&seq)
    }

    pub fn budget(&self, measure: &str, fiscal_year: i32) -> Budget {
        self.budgets
            .get(&(measure.to_string(), fiscal_year))
            .cloned()
            .unwrap_or_default()
    }

    /// Compute vouchers a firm has claimed in a fiscal year.
    pub fn voucher_claimed(&self, uscc: &str, fiscal_year: i32) -> Decimal {
        self.firms
            .get(uscc)
            .and_then(|firm| firm.voucher_claimed.get(&fiscal_year).copied())
            .unwrap_or(Decimal::ZERO)
    }

    /// Applications of a firm under a provision.
    pub fn firm_applications<'a>(
        &'a self,
        uscc: &'a str,
        provision: &'a str,
    ) -> impl Iterator<Item = &'a Application> {
        // A linear scan is fine at city scale; an index would be the next step for millions.
        self.applications
            .values()
            .map(Arc::as_ref)
            .filter(move |app| app.firm.uscc == uscc && app.provision == provision)
    }

    /// Folds one record (which must be the next in seq order).
    pub fn apply(&mut self, record: &Record) -> Result<(), ApplyError> {
        let body = EventBody::from_value(record.seq, &record.body)?;
        self.apply_body(record.seq, record.hash, &body)
    }

    /// Folds one already-parsed body.
    pub fn apply_body(&mut self, seq: u64, hash: Hash, body: &EventBody) -> Result<(), ApplyError> {
        if seq != self.last_seq + 1 {
            return Err(ApplyError::OutOfOrder {
                seq,
                expected: self.last_seq + 1,
            });
        }
        let actor = &body.actor;
        let date = business_date(body);
        match &body.event {
            Event::PolicyRegistered { catalogue, .. } => {
                let parsed = Catalogue::from_toml(catalogue)
                    .map_err(|source| ApplyError::Catalogue { seq, source })?;
                self.policies.insert(seq, Arc::new(parsed));
            }
            Event::BudgetAllocated {
                measure,
                fiscal_year,
                amount,
            } => {
                self.budgets
                    .entry((measure.clone(), *fiscal_year))
                    .or_default()
                    .allocated += *amount;
            }
            Event::ApplicationSubmitted { application } => {
                self.open_application(seq, actor, application, None, None);
                self.claim(application.application_id.as_str(), Claim::Add);
            }
            Event::ApplicationRefused {
                application,
                code,
                message,
            } => {
                self.open_application(
                    seq,
                    actor,
                    application,
                    Some(code.clone()),
                    Some(message.clone()),
                );
            }
            Event::ApplicationReviewed {
                application_id,
                recommend,
                ..
            } => {
                let app = self.application_mut(seq, application_id)?;
                app.status = ApplicationStatus::Reviewed;
                app.reviewed_by = Some(actor.id.clone());
                app.recommend = Some(*recommend);
            }
            Event::ApplicationEndorsed { application_id, .. } => {
                self.application_mut(seq, application_id)?.endorsed_by = Some(actor.id.clone());
            }
            Event::ApplicationApproved {
                application_id,
                amount,
            } => {
                self.claim(application_id, Claim::Remove);
                let app = self.application_mut(seq, application_id)?;
                app.status = ApplicationStatus::Approved;
                app.approved = Some(*amount);
                app.approved_by = Some(actor.id.clone());
                app.approved_on = Some(date);
                // A second handle, not a copy: nothing below writes to the application.
                let app = self.application_arc(seq, application_id)?;
                self.claim(application_id, Claim::Add);
                self.budgets
                    .entry((app.measure.clone(), app.fiscal_year))
                    .or_default()
                    .committed += *amount;
                let firm = self.firm_mut(&app.firm);
                firm.awards.push(app.provision.clone());
                self.award_opens_or_draws_programme(&app, *amount);
            }
            Event::ApplicationRejected {
                application_id,
                reason,
            } => {
                let was = self.application_arc(seq, application_id)?;
                self.claim(application_id, Claim::Remove);
                if was.status == ApplicationStatus::Approved {
                    // Revoking an approval with nothing paid releases the commitment.
                    let approved = was.approved.unwrap_or(Decimal::ZERO);
                    self.budgets
                        .entry((was.measure.clone(), was.fiscal_year))
                        .or_default()
                        .committed -= approved;
                    let firm = self.firm_mut(&was.firm);
                    if let Some(index) = firm.awards.iter().position(|p| *p == was.provision) {
                        firm.awards.remove(index);
                    }
                    self.programme_release(&was, approved);
                }
                // Let go of the second handle first, so the write below copies nothing.
                drop(was);
                let app = self.application_mut(seq, application_id)?;
                app.status = ApplicationStatus::Rejected;
                app.reason = Some(reason.clone());
            }
            Event::ApplicationWithdrawn { application_id } => {
                self.claim(application_id, Claim::Remove);
                self.application_mut(seq, application_id)?.status = ApplicationStatus::Withdrawn;
            }
            Event::PayoutOrdered {
                payout_id,
                application_id,
                amount,
            } => {
                let app = self.application_mut(seq, application_id)?;
                app.paid += *amount;
                let (measure, fiscal_year) = (app.measure.clone(), app.fiscal_year);
                let app = self.application_arc(seq, application_id)?;
                let budget = self.budgets.entry((measure, fiscal_year)).or_default();
                budget.committed -= *amount;
                budget.paid += *amount;
                self.programme_paid(&app, *amount);
                self.payouts.insert(
                    payout_id.clone(),
                    Arc::new(Payout {
                        payout_id: payout_id.clone(),
                        application_id: application_id.clone(),
                        amount: *amount,
                        status: PayoutStatus::Ordered,
                        ordered_by: actor.id.clone(),
                        ordered_on: date,
                        ordered_seq: seq,
                        confirmed_on: None,
                        value_date: None,
                        bank_reference: None,
                        failure_reason: None,
                        settled_seq: None,
                        settled_hash: None,
                    }),
                );
            }
            Event::PayoutConfirmed {
                payout_id,
                bank_reference,
                value_date,
            } => {
                let payout = self.payout_mut(seq, payout_id)?;
                payout.status = PayoutStatus::Confirmed;
                payout.confirmed_on = Some(date);
                payout.value_date = Some(*value_date);
                payout.bank_reference = Some(bank_reference.clone());
                payout.settled_seq = Some(seq);
                payout.settled_hash = Some(hash);
            }
            Event::PayoutFailed { payout_id, reason } => {
                let payout = self.payout_mut(seq, payout_id)?;
                payout.status = PayoutStatus::Failed;
                payout.failure_reason = Some(reason.clone());
                payout.settled_seq = Some(seq);
                payout.settled_hash = Some(hash);
                let (application_id, amount) = (payout.application_id.clone(), payout.amount);
                let app = self.application_mut(seq, &application_id)?;
                app.paid -= amount;
                let app = self.application_arc(seq, &application_id)?;
                let budget = self
                    .budgets
                    .entry((app.measure.clone(), app.fiscal_year))
                    .or_default();
                budget.paid -= amount;
                budget.committed += amount;
                self.programme_paid(&app, -amount);
            }
            Event::ClawbackOrdered {
                clawback_id,
                application_id,
                amount,
                reason,
            } => {
                self.application_mut(seq, application_id)?.clawed_back += *amount;
                self.clawbacks.insert(
                    clawback_id.clone(),
                    Arc::new(Clawback {
                        clawback_id: clawback_id.clone(),
                        application_id: application_id.clone(),
                        amount: *amount,
                        repaid: Decimal::ZERO,
                        reason: reason.clone(),
                        ordered_seq: seq,
                    }),
                );
            }
            Event::RepaymentRecorded {
                clawback_id,
                amount,
                ..
            } => {
                let clawback = self
                    .clawbacks
                    .get_mut(clawback_id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| ApplyError::Unknown {
                        seq,
                        what: "clawback",
                        id: clawback_id.clone(),
                    })?;
                clawback.repaid += *amount;
                let application_id = clawback.application_id.clone();
                let app = self.application_mut(seq, &application_id)?;
                app.repaid += *amount;
                let app = self.application_arc(seq, &application_id)?;
                // Repaid money returns to the measure's budget of the award's year.
                self.budgets
                    .entry((app.measure.clone(), app.fiscal_year))
                    .or_default()
                    .paid -= *amount;
            }
        }
        if let Some(application_id) = event_application_id(&body.event) {
            if let Some(app) = self.applications.get_mut(application_id).map(Arc::make_mut) {
                app.history.push(HistoryEntry {
                    seq,
                    event_type: body.event.type_name(),
                    actor: actor.id.clone(),
                    recorded_at: body.recorded_at.to_rfc3339(),
                });
                let key = (!app.priority, app.submitted_seq);
                if app.status.is_open() {
                    self.queue.insert(key, Id::from(application_id));
                } else {
                    self.queue.remove(&key);
                }
            }
        }
        let entry = Arc::make_mut(
            self.commands
                .entry(Id::from(&body.command_id))
                .or_insert_with(|| {
                    Arc::new(CommandRecord {
                        digest: body.command_digest.clone(),
                        seqs: Vec::new(),
                        event_types: Vec::new(),
                        code: None,
                        message: None,
                    })
                }),
        );
        entry.seqs.push(seq);
        entry.event_types.push(body.event.type_name());
        if let Event::ApplicationRefused { code, message, .. } = &body.event {
            entry.code = Some(code.clone());
            entry.message = Some(message.clone());
        }
        self.last_seq = seq;
        self.last_hash = hash;
        Ok(())
    }

    fn open_application(
        &mut self,
        seq: u64,
        actor: &Actor,
        facts: &ApplicationFacts,
        code: Option<String>,
        reason: Option<String>,
    ) {
        let status = if code.is_some() {
            ApplicationStatus::Rejected
        } else {
            ApplicationStatus::Submitted
        };
        let priority = self
            .policy_at(facts.policy_seq)
            .and_then(|catalogue| catalogue.provision(&facts.provision))
            .and_then(|provision| provision.priority_if.as_deref())
            .map(|flag| {
                facts
                    .basis
                    .get(flag)
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .unwrap_or(false);
        self.firm_mut(&facts.firm);
        self.applications.insert(
            Id::from(&facts.application_id),
            Arc::new(Application {
                application_id: facts.application_id.clone(),
                provision: facts.provision.clone(),
                measure: facts.measure.clone(),
                firm: facts.firm.clone(),
                fiscal_year: facts.fiscal_year,
                requested: facts.amount,
                approved: None,
                status,
                basis: Arc::new(facts.basis.clone()),
                submitted_on: facts.submitted_on,
                submitted_seq: seq,
                policy_seq: facts.policy_seq,
                submitted_by: actor.id.clone(),
                reviewed_by: None,
                recommend: None,
                endorsed_by: None,
                approved_by: None,
                approved_on: None,
                code,
                reason,
                paid: Decimal::ZERO,
                clawed_back: Decimal::ZERO,
                repaid: Decimal::ZERO,
                priority,
                history: Vec::new(),
            }),
        );
    }

    fn firm_mut(&mut self, firm: &Firm) -> &mut FirmState {
        Arc::make_mut(self.firms.entry(Id::from(&firm.uscc)).or_insert_with(|| {
            Arc::new(FirmState {
                uscc: firm.uscc.clone(),
                name: firm.name.clone(),
                voucher_claimed: BTreeMap::new(),
                awards: Vec::new(),
            })
        }))
    }

    /// Another handle on an application (no copy). Drop it before writing to the same
    /// application, or the write copies it.
    fn application_arc(&self, seq: u64, id: &str) -> Result<Arc<Application>, ApplyError> {
        self.applications
            .get(id)
            .cloned()
            .ok_or_else(|| ApplyError::Unknown {
                seq,
                what: "application",
                id: id.to_string(),
            })
    }

    fn application_mut(&mut self, seq: u64, id: &str) -> Result<&mut Application, ApplyError> {
        self.applications
            .get_mut(id)
            .map(Arc::make_mut)
            .ok_or_else(|| ApplyError::Unknown {
                seq,
                what: "application",
                id: id.to_string(),
            })
    }

    fn payout_mut(&mut self, seq: u64, id: &str) -> Result<&mut Payout, ApplyError> {
        self.payouts
            .get_mut(id)
            .map(Arc::make_mut)
            .ok_or_else(|| ApplyError::Unknown {
                seq,
                what: "payout",
                id: id.to_string(),
            })
    }

    /// Adds or removes an application's current claim from the aggregates that cap claims:
    /// the firm's yearly voucher total, a keyed cap (per scenario, per event), a lab envelope.
    fn claim(&mut self, application_id: &str, direction: Claim) {
        let Some(app) = self.applications.get(application_id) else {
            return;
        };
        let amount = match direction {
            Claim::Add => app.claimed(),
            Claim::Remove => -app.claimed(),
        };
        if amount.is_zero() {
            return;
        }
        let app = app.clone();
        // The catalogue's handle, not a copy of the provision (its texts and lists).
        let Some(catalogue) = self.policy_at(app.policy_seq).cloned() else {
            return;
        };
        let Some(provision) = catalogue.provision(&app.provision) else {
            return;
        };
        if provision.firm_annual_cap.is_some() {
            let firm = self.firm_mut(&app.firm);
            *firm
                .voucher_claimed
                .entry(app.fiscal_year)
                .or_insert(Decimal::ZERO) += amount;
        }
        if let Some(key_field) = &provision.cap_per {
            if let Some(key) = app.basis_text(key_field) {
                *self
                    .keyed_claims
                    .entry((app.provision.clone(), key.to_string()))
                    .or_insert(Decimal::ZERO) += amount;
            }
        }
        if let Limit::Envelope { lab_field, .. } = &provision.limit {
            if let Some(lab) = app
                .basis_text(lab_field)
                .and_then(|lab| self.labs.get_mut(lab).map(Arc::make_mut))
            {
                lab.claimed += amount;
            }
        }
    }

    /// An approved lead award opens its lab's envelope; an approved tranche draws on it.
    fn award_opens_or_draws_programme(&mut self, app: &Application, amount: Decimal) {
        let Some(catalogue) = self.policy_at(app.policy_seq).cloned() else {
            return;
        };
        let Some(provision) = catalogue.provision(&app.provision) else {
            return;
        };
        if let Limit::Envelope { lab_field, .. } = &provision.limit {
            if let Some(lab) = app
                .basis_text(lab_field)
                .and_then(|lab| self.labs.get_mut(lab).map(Arc::make_mut))
            {
                lab.approved += amount;
                lab.years.entry(app.fiscal_year).or_default().approved += amount;
            }
            return;
        }
        // Does any envelope provision name this one as its opener?
        let programme = catalogue.provisions.iter().find_map(|p| match &p.limit {
            Limit::Envelope {
                total,
                years,
                opened_by,
                ..
            } if *opened_by == app.provision => Some((*total, *years, p.limit.clone())),
            _ => None,
        });
        let Some((envelope, years, limit)) = programme else {
            return;
        };
        let Some(recognition_date) = app
            .basis_text("recognition_date")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            return;
        };
        let Some(window_end) = limit.window_end(recognition_date) else {
            return;
        };
        let mut plan = BTreeMap::new();
        let per_year = (envelope / Decimal::from(years.max(1))).round_dp(2);
        for offset in 0..years {
            let year = recognition_date.year() + offset as i32;
            plan.insert(
                year,
                TrancheYear {
                    planned: per_year,
                    ..TrancheYear::default()
                },
            );
        }
        let opened_on = app.approved_on.unwrap_or(app.submitted_on);
        self.labs.insert(
            app.application_id.clone(),
            Arc::new(Lab {
                lab: app.application_id.clone(),
                firm: app.firm.clone(),
                recognition_date,
                window_end,
                envelope,
                opened_in_policy_window: catalogue.in_window(opened_on),
                claimed: Decimal::ZERO,
                approved: Decimal::ZERO,
                paid: Decimal::ZERO,
                years: plan,
            }),
        );
    }

    fn programme_release(&mut self, app: &Application, amount: Decimal) {
        if let Some(lab) = self.tranche_lab_mut(app) {
            lab.approved -= amount;
            lab.years.entry(app.fiscal_year).or_default().approved -= amount;
        }
    }

    fn programme_paid(&mut self, app: &Application, amount: Decimal) {
        if let Some(lab) = self.tranche_lab_mut(app) {
            lab.paid += amount;
            lab.years.entry(app.fiscal_year).or_default().paid += amount;
        }
    }

    fn tranche_lab_mut(&mut self, app: &Application) -> Option<&mut Lab> {
        let catalogue = self.policy_at(app.policy_seq)?;
        let lab_field = match &catalogue.provision(&app.provision)?.limit {
            Limit::Envelope { lab_field, .. } => lab_field.clone(),
            _ => return None,
        };
        let lab = app.basis_text(&lab_field)?.to_string();
        self.labs.get_mut(&lab).map(Arc::make_mut)
    }
}

#[derive(Clone, Copy)]
enum Claim {
    Add,
    Remove,
}

/// The calendar date of a record in China Standard Time (UTC+08:00).
pub fn business_date(body: &EventBody) -> NaiveDate {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).unwrap_or(*body.recorded_at.offset());
    body.recorded_at.with_timezone(&cst).date_naive()
}

fn event_application_id(event: &Event) -> Option<&str> {
    match event {
        Event::ApplicationSubmitted { application }
        | Event::ApplicationRefused { application, .. } => Some(&application.application_id),
        Event::ApplicationReviewed { application_id, .. }
        | Event::ApplicationEndorsed { application_id, .. }
        | Event::ApplicationApproved { application_id, .. }
        | Event::ApplicationRejected { application_id, .. }
        | Event::ApplicationWithdrawn { application_id }
        | Event::PayoutOrdered { application_id, .. }
        | Event::ClawbackOrdered { application_id, .. } => Some(application_id),
        _ => None,
    }
}
