//! The same workload written the cqrs-es way, on postgres-es (sqlx) in its own scratch database
//! on the same server.
//!
//! - `FirmYear` (one aggregate per firm and fiscal year, event-sourced, `postgres_cqrs`) holds
//!   the firm's vouchers of the year and the sum claimed, so the rate, the yearly 1,000,000 cap
//!   and the review/approval state machine are checked inside one aggregate.
//! - `Budget` (one aggregate per measure and fiscal year, `postgres_aggregate_cqrs`: the state
//!   is loaded from its serialized aggregate in one query instead of replaying thousands of
//!   events) holds allocated and committed.
//! - Approving a voucher touches both: `FirmYear::handle` calls its `Services`, the
//!   [`BudgetService`], which executes `Commit` on the budget aggregate and retries on
//!   `AggregateConflict` (optimistic concurrency: the event table's primary key), then the
//!   approval is written on the firm-year. cqrs-es has no transaction spanning two aggregates:
//!   a crash between the two commits leaves budget committed without an approval, which a
//!   production system would repair with a process manager. The bench leaves that out, so the
//!   cqrs-es figure is if anything higher than a complete system would reach.
//!
//! Commands arrive as the same JSON objects as on the fundledger side and are deserialized by
//! serde (the usual front of a cqrs-es service); the aggregate id is routed by the client, as
//! a URL path would route it. Events carry the command id, the actor and the time as metadata.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, FixedOffset, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use fundledger_ledger::uscc;
use fundledger_store::testing::scratch_postgres;
use postgres_es::{postgres_aggregate_cqrs, postgres_cqrs, PostgresCqrs};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use crate::workload::{self, Plan, SideReport, FISCAL_YEAR, MEASURE, VOUCHER_YUAN};

/// The tables of postgres-es (its `db/init.sql`, without its test rows and test user).
const SCHEMA_SQL: &str = r#"
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
"#;

/// Rounds of conflict → reload → decide again before a command gives up (the same bound as
/// fundledger's writer).
const CONFLICT_ROUNDS_MAX: u32 = 64;

/// 责任单位 of measure 2 (the catalogue's `responsible_units`).
const M2_UNITS: [&str; 4] = ["市工信局", "市财政局", "市大数据局", "市科技局"];
const POLICY_FIRST_DAY: (i32, u32, u32) = (2024, 5, 22);
const POLICY_LAST_DAY: (i32, u32, u32) = (2027, 5, 21);
const BUDGET_YEARS: std::ops::RangeInclusive<i32> = 2024..=2032;
const FIRM_ANNUAL_CAP_YUAN: i64 = 1_000_000;
/// 20% of the contract amount.
const VOUCHER_RATE_PERCENT: i64 = 20;

// ---------------------------------------------------------------------------------------------
// Commands: the JSON of DESIGN §7, read by serde.

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Actor {
    pub id: String,
    pub role: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub firm: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Firm {
    pub uscc: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Basis {
    pub contract_amount: Decimal,
    pub contract_id: String,
    #[serde(default)]
    pub self_built: bool,
    #[serde(default)]
    pub provincial_voucher: bool,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum VoucherCommand {
    #[serde(rename = "submit_application")]
    Submit {
        command_id: uuid::Uuid,
        actor: Actor,
        at: DateTime<FixedOffset>,
        application_id: String,
        firm: Firm,
        provision: String,
        fiscal_year: i32,
        amount: Decimal,
        basis: Basis,
    },
    #[serde(rename = "review_application")]
    Review {
        command_id: uuid::Uuid,
        actor: Actor,
        at: DateTime<FixedOffset>,
        application_id: String,
        recommend: bool,
        note: String,
    },
    #[serde(rename = "approve_application")]
    Approve {
        command_id: uuid::Uuid,
        actor: Actor,
        at: DateTime<FixedOffset>,
        application_id: String,
        amount: Decimal,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BudgetRequest {
    AllocateBudget {
        command_id: uuid::Uuid,
        actor: Actor,
        at: DateTime<FixedOffset>,
        measure: String,
        fiscal_year: i32,
        amount: Decimal,
    },
}

pub enum BudgetCommand {
    Allocate {
        actor: Actor,
        measure: String,
        fiscal_year: i32,
        amount: Decimal,
    },
    Commit {
        application_id: String,
        amount: Decimal,
    },
}

/// A refusal with the code fundledger would answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Result<(), Refusal> {
    Err(Refusal {
        code,
        message: message.into(),
    })
}

fn valid_amount(amount: Decimal) -> Result<(), Refusal> {
    if amount <= Decimal::ZERO || amount.normalize().scale() > 2 {
        return refuse(
            "invalid_amount",
            format!("{amount} is not a positive amount in yuan with at most 2 decimals"),
        );
    }
    Ok(())
}

fn responsible(actor: &Actor, role: &str) -> Result<(), Refusal> {
    if actor.role != role {
        return refuse("forbidden", format!("{} is not a {role}", actor.id));
    }
    match actor.unit.as_deref() {
        Some(unit) if M2_UNITS.contains(&unit) => Ok(()),
        _ => refuse(
            "forbidden",
            format!("{} is not of a unit responsible for M2", actor.id),
        ),
    }
}

fn within_rate(amount: Decimal, contract_amount: Decimal) -> Result<(), Refusal> {
    if amount * Decimal::from(100) > contract_amount * Decimal::from(VOUCHER_RATE_PERCENT) {
        return refuse(
            "exceeds_rate",
            format!("{amount} is more than 20% of the contract's {contract_amount}"),
        );
    }
    Ok(())
}

fn day(date: (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The firm-year aggregate.

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub enum Status {
    #[default]
    Submitted,
    Approved,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VoucherState {
    pub requested: Decimal,
    pub contract_amount: Decimal,
    pub submitted_by: String,
    pub reviewed_by: Option<String>,
    pub recommend: Option<bool>,
    pub approved: Option<Decimal>,
    pub status: Status,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FirmYear {
    pub uscc: String,
    pub fiscal_year: i32,
    /// Requested while open, approved once approved (the claims of DESIGN's yearly cap).
    pub claimed: Decimal,
    pub vouchers: BTreeMap<String, VoucherState>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum FirmYearEvent {
    Submitted {
        application_id: String,
        uscc: String,
        firm_name: String,
        fiscal_year: i32,
        amount: Decimal,
        contract_amount: Decimal,
        contract_id: String,
        provincial_voucher: bool,
        submitted_by: String,
    },
    Reviewed {
        application_id: String,
        recommend: bool,
        note: String,
        reviewed_by: String,
    },
    Approved {
        application_id: String,
        amount: Decimal,
        approved_by: String,
    },
}

impl DomainEvent for FirmYearEvent {
    fn event_type(&self) -> String {
        match self {
            FirmYearEvent::Submitted { .. } => "VoucherSubmitted",
            FirmYearEvent::Reviewed { .. } => "VoucherReviewed",
            FirmYearEvent::Approved { .. } => "VoucherApproved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FirmYearError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the budget could not be committed: {0}")]
    Budget(String),
}

impl FirmYear {
    fn voucher(&self, application_id: &str) -> Result<&VoucherState, Refusal> {
        self.vouchers.get(application_id).ok_or_else(|| Refusal {
            code: "unknown_application",
            message: format!("no application {application_id} in this firm's year"),
        })
    }
}

impl Aggregate for FirmYear {
    const TYPE: &'static str = "firm_year";
    type Command = VoucherCommand;
    type Event = FirmYearEvent;
    type Error = FirmYearError;
    type Services = BudgetService;

    async fn handle(
        &mut self,
        command: Self::Command,
        budget: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            VoucherCommand::Submit {
                actor,
                at,
                application_id,
                firm,
                provision,
                fiscal_year,
                amount,
                basis,
                ..
            } => {
                if actor.role != "applicant" || actor.firm.as_deref() != Some(&firm.uscc) {
                    refuse("forbidden", "only the firm's applicant submits")?;
                }
                if !uscc::is_valid(&firm.uscc) {
                    refuse("invalid_uscc", format!("{} fails GB 32100-2015", firm.uscc))?;
                }
                if provision != workload::PROVISION {
                    refuse("unknown_provision", provision)?;
                }
                let today = fundledger_ledger::cst_date(at);
                if today < day(POLICY_FIRST_DAY) || today > day(POLICY_LAST_DAY) {
                    refuse("outside_policy_window", format!("{today}"))?;
                }
                if !(POLICY_FIRST_DAY.0..=POLICY_LAST_DAY.0).contains(&fiscal_year) {
                    refuse(
                        "outside_policy_window",
                        format!("fiscal year {fiscal_year}"),
                    )?;
                }
                valid_amount(amount)?;
                valid_amount(basis.contract_amount)?;
                if basis.self_built {
                    refuse("excluded_self_built", "self-built compute is excluded")?;
                }
                within_rate(amount, basis.contract_amount)?;
                if self.vouchers.contains_key(&application_id) {
                    refuse("duplicate_id", application_id.clone())?;
                }
                if self.claimed + amount > Decimal::from(FIRM_ANNUAL_CAP_YUAN) {
                    refuse(
                        "exceeds_firm_annual_cap",
                        format!(
                            "{} has claimed {} in {fiscal_year}; {amount} more passes 1,000,000",
                            firm.uscc, self.claimed
                        ),
                    )?;
                }
                sink.write(
                    FirmYearEvent::Submitted {
                        application_id,
                        uscc: firm.uscc,
                        firm_name: firm.name,
                        fiscal_year,
                        amount,
                        contract_amount: basis.contract_amount,
                        contract_id: basis.contract_id,
                        provincial_voucher: basis.provincial_voucher,
                        submitted_by: actor.id,
                    },
                    self,
                )
                .await;
            }
            VoucherCommand::Review {
                actor,
                application_id,
                recommend,
                note,
                ..
            } => {
                responsible(&actor, "reviewer")?;
                let voucher = self.voucher(&application_id)?;
                if voucher.submitted_by == actor.id {
                    refuse("segregation_of_duties", "the submitter cannot review")?;
                }
                if voucher.status != Status::Submitted || voucher.reviewed_by.is_some() {
                    refuse("invalid_state", "only a submitted application is reviewed")?;
                }
                sink.write(
                    FirmYearEvent::Reviewed {
                        application_id,
                        recommend,
                        note,
                        reviewed_by: actor.id,
                    },
                    self,
                )
                .await;
            }
            VoucherCommand::Approve {
                command_id,
                actor,
                at,
                application_id,
                amount,
            } => {
                responsible(&actor, "approver")?;
                let voucher = self.voucher(&application_id)?;
                if voucher.submitted_by == actor.id
                    || voucher.reviewed_by.as_deref() == Some(actor.id.as_str())
                {
                    refuse("segregation_of_duties", "another approver must decide")?;
                }
                if voucher.status != Status::Submitted || voucher.recommend != Some(true) {
                    refuse(
                        "invalid_state",
                        "approval needs an open, positively reviewed application",
                    )?;
                }
                valid_amount(amount)?;
                if amount > voucher.requested {
                    refuse("invalid_amount", "more than requested")?;
                }
                within_rate(amount, voucher.contract_amount)?;
                let metadata = metadata(&command_id.to_string(), &actor, at);
                budget
                    .commit(
                        &workload::budget_id(MEASURE, self.fiscal_year),
                        &application_id,
                        amount,
                        metadata,
                    )
                    .await?;
                sink.write(
                    FirmYearEvent::Approved {
                        application_id,
                        amount,
                        approved_by: actor.id,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            FirmYearEvent::Submitted {
                application_id,
                uscc,
                fiscal_year,
                amount,
                contract_amount,
                submitted_by,
                ..
            } => {
                self.uscc = uscc;
                self.fiscal_year = fiscal_year;
                self.claimed += amount;
                self.vouchers.insert(
                    application_id,
                    VoucherState {
                        requested: amount,
                        contract_amount,
                        submitted_by,
                        ..VoucherState::default()
                    },
                );
            }
            FirmYearEvent::Reviewed {
                application_id,
                recommend,
                reviewed_by,
                ..
            } => {
                if let Some(voucher) = self.vouchers.get_mut(&application_id) {
                    voucher.reviewed_by = Some(reviewed_by);
                    voucher.recommend = Some(recommend);
                }
            }
            FirmYearEvent::Approved {
                application_id,
                amount,
                ..
            } => {
                if let Some(voucher) = self.vouchers.get_mut(&application_id) {
                    // The claim becomes the approved amount.
                    self.claimed = self.claimed - voucher.requested + amount;
                    voucher.approved = Some(amount);
                    voucher.status = Status::Approved;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The budget aggregate and the service the firm-year uses to commit to it.

/// The budget of a measure and fiscal year, kept by postgres-es's aggregate store.
///
/// Its handler writes events into a throwaway aggregate, not into `self`: in cqrs-es 0.5.0,
/// `EventSink::write` applies each event to the loaded aggregate *and*
/// `PersistedEventStore::commit` applies the same events again to that aggregate before it
/// serializes the snapshot, so with `self` every allocation and commitment would be counted
/// twice in the stored state (the end-of-run checks caught exactly that: allocated and
/// committed both doubled). The handler emits at most one event and reads nothing after it,
/// so this changes nothing else.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Budget {
    pub measure: String,
    pub fiscal_year: i32,
    pub allocated: Decimal,
    pub committed: Decimal,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum BudgetEvent {
    BudgetAllocated {
        measure: String,
        fiscal_year: i32,
        amount: Decimal,
    },
    BudgetCommitted {
        application_id: String,
        amount: Decimal,
    },
}

impl DomainEvent for BudgetEvent {
    fn event_type(&self) -> String {
        match self {
            BudgetEvent::BudgetAllocated { .. } => "BudgetAllocated",
            BudgetEvent::BudgetCommitted { .. } => "BudgetCommitted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for Budget {
    const TYPE: &'static str = "budget";
    type Command = BudgetCommand;
    type Event = BudgetEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            BudgetCommand::Allocate {
                actor,
                measure,
                fiscal_year,
                amount,
            } => {
                if actor.role != "finance" || actor.unit.as_deref() != Some(workload::FINANCE_UNIT)
                {
                    refuse("forbidden", "budgets are allocated by 市财政局 finance")?;
                }
                if measure != MEASURE {
                    refuse("unknown_provision", format!("measure {measure}"))?;
                }
                if !BUDGET_YEARS.contains(&fiscal_year) {
                    refuse(
                        "outside_policy_window",
                        format!("fiscal year {fiscal_year}"),
                    )?;
                }
                valid_amount(amount)?;
                sink.write(
                    BudgetEvent::BudgetAllocated {
                        measure,
                        fiscal_year,
                        amount,
                    },
                    &mut Budget::default(), // see `Budget`: not `self`
                )
                .await;
            }
            BudgetCommand::Commit {
                application_id,
                amount,
            } => {
                let remaining = self.allocated - self.committed;
                if remaining < amount {
                    refuse(
                        "insufficient_budget",
                        format!("{remaining} remaining; {amount} cannot be committed"),
                    )?;
                }
                sink.write(
                    BudgetEvent::BudgetCommitted {
                        application_id,
                        amount,
                    },
                    &mut Budget::default(), // see `Budget`: not `self`
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BudgetEvent::BudgetAllocated {
                measure,
                fiscal_year,
                amount,
            } => {
                self.measure = measure;
                self.fiscal_year = fiscal_year;
                self.allocated += amount;
            }
            BudgetEvent::BudgetCommitted { amount, .. } => self.committed += amount,
        }
    }
}

/// Commits approvals to the budget aggregate. Every approval of every firm meets on this one
/// aggregate, so the service serialises its commits in the process (a careful cqrs-es user's
/// answer to a hot aggregate: without it, 64 clients keep invalidating each other's optimistic
/// locks and a command can lose 64 rounds in a row) and still retries conflicts, which then
/// come only from other processes.
pub struct BudgetService {
    cqrs: Arc<PostgresCqrs<Budget>>,
    commits: tokio::sync::Mutex<()>,
    conflicts: Arc<AtomicU64>,
}

impl BudgetService {
    async fn commit(
        &self,
        budget_id: &str,
        application_id: &str,
        amount: Decimal,
        metadata: HashMap<String, String>,
    ) -> Result<(), FirmYearError> {
        let _serialised = self.commits.lock().await;
        for _ in 0..CONFLICT_ROUNDS_MAX {
            let command = BudgetCommand::Commit {
                application_id: application_id.to_string(),
                amount,
            };
            match self
                .cqrs
                .execute_with_metadata(budget_id, command, metadata.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(AggregateError::AggregateConflict) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(AggregateError::UserError(refusal)) => {
                    return Err(FirmYearError::Refused(refusal))
                }
                Err(other) => return Err(FirmYearError::Budget(other.to_string())),
            }
        }
        Err(FirmYearError::Budget(format!(
            "{CONFLICT_ROUNDS_MAX} conflicts in a row on {budget_id}"
        )))
    }
}

fn metadata(command_id: &str, actor: &Actor, at: DateTime<FixedOffset>) -> HashMap<String, String> {
    HashMap::from([
        ("command_id".to_string(), command_id.to_string()),
        ("actor".to_string(), actor.id.clone()),
        ("recorded_at".to_string(), at.to_rfc3339()),
    ])
}

impl VoucherCommand {
    /// What the events of this command carry besides their payload.
    fn metadata(&self) -> HashMap<String, String> {
        let (VoucherCommand::Submit {
            command_id,
            actor,
            at,
            ..
        }
        | VoucherCommand::Review {
            command_id,
            actor,
            at,
            ..
        }
        | VoucherCommand::Approve {
            command_id,
            actor,
            at,
            ..
        }) = self;
        metadata(&command_id.to_string(), actor, *at)
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The two frameworks of the side, on one pool.
struct Frameworks {
    firm_years: PostgresCqrs<FirmYear>,
    budgets: Arc<PostgresCqrs<Budget>>,
}

/// How a command ended on this side.
enum Answer {
    Accepted,
    Refused(&'static str, String),
}

async fn execute_voucher(
    frameworks: &Frameworks,
    firm_year_id: &str,
    value: &Value,
    firm_year_conflicts: &AtomicU64,
) -> anyhow::Result<Answer> {
    for _ in 0..CONFLICT_ROUNDS_MAX {
        let command: VoucherCommand = serde_json::from_value(value.clone())
            .with_context(|| format!("unreadable command {value}"))?;
        let metadata = command.metadata();
        match frameworks
            .firm_years
            .execute_with_metadata(firm_year_id, command, metadata)
            .await
        {
            Ok(()) => return Ok(Answer::Accepted),
            Err(AggregateError::UserError(FirmYearError::Refused(refusal))) => {
                return Ok(Answer::Refused(refusal.code, refusal.message))
            }
            // Every firm is driven by one client, so this does not happen in the workload; an
            // approval retried here could commit its budget twice, so it is counted and shown.
            Err(AggregateError::AggregateConflict) => {
                firm_year_conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err(other) => bail!("cqrs-es failed on {firm_year_id}: {other}"),
        }
    }
    bail!("{CONFLICT_ROUNDS_MAX} conflicts in a row on {firm_year_id}")
}

async fn allocate(frameworks: &Frameworks, value: &Value) -> anyhow::Result<()> {
    let BudgetRequest::AllocateBudget {
        command_id,
        actor,
        at,
        measure,
        fiscal_year,
        amount,
    } = serde_json::from_value(value.clone())?;
    let metadata = metadata(&command_id.to_string(), &actor, at);
    let budget_id = workload::budget_id(&measure, fiscal_year);
    let command = BudgetCommand::Allocate {
        actor,
        measure,
        fiscal_year,
        amount,
    };
    frameworks
        .budgets
        .execute_with_metadata(&budget_id, command, metadata)
        .await
        .map_err(|error| anyhow::anyhow!("cqrs-es refused the budget: {error}"))
}

/// The pool, as postgres-es's `default_postgress_pool` builds it but sized `pool_size` and
/// without sqlx's ping before each acquire (one round trip per acquire saved: in cqrs-es's
/// favour).
async fn pool(url: &str, pool_size: u32) -> anyhow::Result<Pool<Postgres>> {
    Ok(PgPoolOptions::new()
        .max_connections(pool_size)
        .min_connections(pool_size)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(120))
        .connect(url)
        .await?)
}

pub async fn run(plan: &Plan, pool_size: u32) -> anyhow::Result<SideReport> {
    let db = scratch_postgres().await?;
    let outcome = run_in(plan, pool_size, db.url()).await;
    db.cleanup().await?;
    outcome
}

async fn run_in(plan: &Plan, pool_size: u32, url: &str) -> anyhow::Result<SideReport> {
    let pool = pool(url, pool_size).await?;
    sqlx::raw_sql(SCHEMA_SQL).execute(&pool).await?;
    let budget_conflicts = Arc::new(AtomicU64::new(0));
    let budgets = Arc::new(postgres_aggregate_cqrs(pool.clone(), vec![], ()));
    let service = BudgetService {
        cqrs: budgets.clone(),
        commits: tokio::sync::Mutex::new(()),
        conflicts: budget_conflicts.clone(),
    };
    let frameworks = Arc::new(Frameworks {
        firm_years: postgres_cqrs(pool.clone(), vec![], service),
        budgets,
    });
    let firm_year_conflicts = Arc::new(AtomicU64::new(0));

    allocate(&frameworks, &workload::allocate(plan.budget_yuan())).await?;

    let started = Instant::now();
    let mut clients = Vec::with_capacity(plan.clients);
    for client in 0..plan.clients {
        let frameworks = frameworks.clone();
        let conflicts = firm_year_conflicts.clone();
        let vouchers = plan.vouchers_of_client(client);
        clients.push(tokio::spawn(async move {
            let mut accepted = 0usize;
            let mut first_refusal: Option<String> = None;
            for voucher in &vouchers {
                let firm_year_id = voucher.firm_year_id();
                for value in workload::voucher_commands(voucher) {
                    match execute_voucher(&frameworks, &firm_year_id, &value, &conflicts).await? {
                        Answer::Accepted => accepted += 1,
                        Answer::Refused(code, message) => {
                            if first_refusal.is_none() {
                                first_refusal = Some(format!("{value}: {code}: {message}"));
                            }
                        }
                    }
                }
            }
            anyhow::Ok((accepted, first_refusal))
        }));
    }
    let mut accepted = 0usize;
    let mut first_refusal = None;
    for client in clients {
        let (client_accepted, refusal) = client.await.context("a client task failed")??;
        accepted += client_accepted;
        first_refusal = first_refusal.or(refusal);
    }
    let elapsed_s = started.elapsed().as_secs_f64();

    let mut detail = format!(
        "pool of {pool_size} connections; {} budget conflicts retried, {} firm-year conflicts",
        budget_conflicts.load(Ordering::Relaxed),
        firm_year_conflicts.load(Ordering::Relaxed)
    );
    if let Some(refusal) = first_refusal {
        detail.push_str(&format!("; first refusal: {refusal}"));
    }
    let (caps_held, caps_detail) =
        check_caps(plan, &frameworks, &pool, &firm_year_conflicts).await?;
    pool.close().await;
    Ok(SideReport {
        commands: plan.timed_commands(),
        accepted,
        elapsed_s,
        detail,
        caps_held,
        caps_detail,
    })
}

/// The state the aggregate store keeps for the budget.
async fn stored_budget(pool: &Pool<Postgres>) -> anyhow::Result<Budget> {
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(Budget::TYPE)
    .bind(workload::budget_id(MEASURE, FISCAL_YEAR))
    .fetch_one(pool)
    .await?;
    Ok(serde_json::from_value(payload)?)
}

/// The sum of firm 0's submitted vouchers, from its events.
async fn firm0_claimed(pool: &Pool<Postgres>) -> anyhow::Result<Decimal> {
    let payloads: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(FirmYear::TYPE)
    .bind(workload::firm_year_id(&workload::firm_uscc(0), FISCAL_YEAR))
    .fetch_all(pool)
    .await?;
    let mut firm_year = FirmYear::default();
    for payload in payloads {
        firm_year.apply(serde_json::from_value(payload)?);
    }
    Ok(firm_year.claimed)
}

/// The same checks as on the fundledger side.
async fn check_caps(
    plan: &Plan,
    frameworks: &Frameworks,
    pool: &Pool<Postgres>,
    conflicts: &AtomicU64,
) -> anyhow::Result<(bool, String)> {
    let budget = stored_budget(pool).await?;
    let claimed = firm0_claimed(pool).await?;
    let firm0_expected = Decimal::from(VOUCHER_YUAN)
        * Decimal::from(plan.vouchers.min(workload::VOUCHERS_PER_FIRM) as u64);
    let firm0 = workload::firm_uscc(0);
    let over_firm = execute_voucher(
        frameworks,
        &workload::firm_year_id(&firm0, FISCAL_YEAR),
        &workload::submit("V-extra-cap", &firm0, 200_000),
        conflicts,
    )
    .await?;
    let newcomer = workload::firm_uscc(plan.firms);
    let newcomer_year = workload::firm_year_id(&newcomer, FISCAL_YEAR);
    let mut newcomer_answers = Vec::new();
    for value in [
        workload::submit("V-extra-budget", &newcomer, 1_000),
        workload::review("V-extra-budget"),
        workload::approve("V-extra-budget", 1_000),
    ] {
        newcomer_answers
            .push(execute_voucher(frameworks, &newcomer_year, &value, conflicts).await?);
    }
    let code = |answer: &Answer| match answer {
        Answer::Accepted => "accepted",
        Answer::Refused(code, _) => code,
    };
    let held = budget.committed == plan.budget_yuan()
        && budget.allocated == budget.committed
        && claimed == firm0_expected
        && code(&over_firm) == "exceeds_firm_annual_cap"
        && matches!(
            newcomer_answers[..],
            [
                Answer::Accepted,
                Answer::Accepted,
                Answer::Refused("insufficient_budget", _)
            ]
        );
    let detail = format!(
        "budget committed {} of {}, firm 0 claimed {claimed}; one more voucher: {}; approval \
         past the budget: {}",
        budget.committed,
        budget.allocated,
        code(&over_firm),
        newcomer_answers.last().map(code).unwrap_or("none"),
    );
    Ok((held, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_json_reads_as_cqrs_es_commands() {
        let voucher = workload::Plan::new(3, 1).vouchers_of_client(0).remove(0);
        for value in workload::voucher_commands(&voucher) {
            let parsed: Result<VoucherCommand, _> = serde_json::from_value(value.clone());
            assert!(parsed.is_ok(), "{value}: {parsed:?}");
        }
        let allocate: Result<BudgetRequest, _> =
            serde_json::from_value(workload::allocate(Decimal::from(1_000)));
        assert!(allocate.is_ok(), "{allocate:?}");
    }

    use cqrs_es::test::TestFramework;

    fn submitted(application_id: &str, uscc: &str, amount: i64) -> FirmYearEvent {
        FirmYearEvent::Submitted {
            application_id: application_id.into(),
            uscc: uscc.into(),
            firm_name: "郑州测试企业".into(),
            fiscal_year: FISCAL_YEAR,
            amount: Decimal::from(amount),
            contract_amount: Decimal::from(workload::CONTRACT_YUAN),
            contract_id: format!("HT-{application_id}"),
            provincial_voucher: false,
            submitted_by: format!("app.{uscc}"),
        }
    }

    /// A firm-year framework whose budget service is never reached (its pool connects lazily,
    /// and these commands do not approve).
    fn firm_year_framework() -> TestFramework<FirmYear> {
        let pool = PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool needs no server");
        TestFramework::with(BudgetService {
            cqrs: Arc::new(postgres_aggregate_cqrs(pool, vec![], ())),
            commits: tokio::sync::Mutex::new(()),
            conflicts: Arc::new(AtomicU64::new(0)),
        })
    }

    fn command(value: Value) -> VoucherCommand {
        serde_json::from_value(value).expect("a workload command")
    }

    #[tokio::test]
    async fn a_sixth_voucher_of_200000_passes_the_yearly_cap() {
        let firm = workload::firm_uscc(0);
        let given: Vec<FirmYearEvent> = (0..5)
            .map(|k| submitted(&format!("V-{k}"), &firm, workload::VOUCHER_YUAN))
            .collect();
        let result = firm_year_framework()
            .given(given.clone())
            .when_async(command(workload::submit("V-5", &firm, 200_000)))
            .await
            .inspect_result();
        assert!(
            matches!(&result, Err(FirmYearError::Refused(r)) if r.code == "exceeds_firm_annual_cap"),
            "{result:?}"
        );
        // After four, a fifth fits: 1,000,000 is allowed, only passing it is refused.
        let result = firm_year_framework()
            .given(given[..4].to_vec())
            .when_async(command(workload::submit("V-4", &firm, 200_000)))
            .await
            .inspect_result();
        assert!(matches!(
            result.as_deref(),
            Ok([FirmYearEvent::Submitted { .. }])
        ));
    }

    #[tokio::test]
    async fn the_submitter_cannot_review_and_approval_needs_a_review() {
        let firm = workload::firm_uscc(1);
        let given = vec![submitted("V-0", &firm, workload::VOUCHER_YUAN)];
        let mut self_review = workload::review("V-0");
        self_review["actor"] = workload::applicant(&firm);
        let result = firm_year_framework()
            .given(given.clone())
            .when_async(command(self_review))
            .await
            .inspect_result();
        // An applicant is not a reviewer of a responsible unit at all.
        assert!(matches!(&result, Err(FirmYearError::Refused(r)) if r.code == "forbidden"));
        let result = firm_year_framework()
            .given(given)
            .when_async(command(workload::approve("V-0", workload::VOUCHER_YUAN)))
            .await
            .inspect_result();
        assert!(matches!(&result, Err(FirmYearError::Refused(r)) if r.code == "invalid_state"));
    }

    #[test]
    fn the_budget_refuses_a_commitment_past_what_remains() {
        let allocated = BudgetEvent::BudgetAllocated {
            measure: MEASURE.into(),
            fiscal_year: FISCAL_YEAR,
            amount: Decimal::from(1_000),
        };
        let committed = BudgetEvent::BudgetCommitted {
            application_id: "V-0".into(),
            amount: Decimal::from(800),
        };
        let commit = |amount: i64| BudgetCommand::Commit {
            application_id: "V-1".into(),
            amount: Decimal::from(amount),
        };
        let result = TestFramework::<Budget>::with(())
            .given(vec![allocated.clone(), committed.clone()])
            .when(commit(201))
            .inspect_result();
        assert!(
            matches!(&result, Err(r) if r.code == "insufficient_budget"),
            "{result:?}"
        );
        TestFramework::<Budget>::with(())
            .given(vec![allocated, committed])
            .when(commit(200))
            .then_expect_events(vec![BudgetEvent::BudgetCommitted {
                application_id: "V-1".into(),
                amount: Decimal::from(200),
            }]);
    }

    #[test]
    fn rate_and_amount_rules() {
        assert!(within_rate(Decimal::from(200_000), Decimal::from(1_000_000)).is_ok());
        assert_eq!(
            within_rate(Decimal::new(20_000_001, 2), Decimal::from(1_000_000)).map_err(|r| r.code),
            Err("exceeds_rate")
        );
        assert!(valid_amount(Decimal::new(1_050, 2)).is_ok());
        assert!(valid_amount(Decimal::new(1_005, 3)).is_err());
        assert!(valid_amount(Decimal::ZERO).is_err());
    }
}
