//! The single writer: one task owns appends. It takes commands from a bounded queue, decides a
//! batch on a copy of the state, seals it onto the head, appends it in one store transaction
//! (group commit), publishes the new state, then answers every command of the batch.
//!
//! On an append conflict (another process moved the head) it catches up from the store and
//! decides the whole batch again, so no cap is exceeded even with several writers on one
//! database.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, FixedOffset, Offset, Utc};
use fundledger_events::{Actor, Event, EventBody, Head, Record};
use fundledger_policy::{Catalogue, BUILTIN_CATALOGUE};
use fundledger_projections::LedgerState;
use fundledger_store::{EventStore, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::code::Code;
use crate::command::Command;
use crate::decide::{decide, Decision};
use crate::outcome::Outcome;

/// The time source of the writer (the decide logic itself never reads a clock).
pub type Clock = Arc<dyn Fn() -> DateTime<FixedOffset> + Send + Sync>;

/// The wall clock, in China Standard Time.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let cst = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix());
        Utc::now().with_timezone(&cst)
    })
}

/// Command id of the record that registers the built-in catalogue in a new ledger.
pub const GENESIS_COMMAND_ID: &str = "00000000-0000-0000-0000-000000000000";
/// Records read per page when catching up.
const CATCH_UP_PAGE: usize = 2_000;
/// Rounds of conflict → catch up → decide again before a batch gives up.
const CONFLICT_ROUNDS_MAX: u32 = 64;

#[derive(Clone)]
pub struct WriterOptions {
    /// Most commands decided and appended together.
    pub batch_max: usize,
    /// Most commands waiting; beyond it callers get `SubmitError::Busy`.
    pub queue_capacity: usize,
    /// Rejections that wrote nothing are remembered (for idempotent replies) up to this many.
    pub remembered_rejections_max: usize,
    pub clock: Clock,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_max: 512,
            queue_capacity: 8_192,
            remembered_rejections_max: 100_000,
            clock: system_clock(),
        }
    }
}

/// Why a command got no outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("the writer's queue is full; retry shortly")]
    Busy,
    #[error("the ledger is shutting down")]
    Closed,
    #[error("the store failed: {0}; the command may or may not be recorded — retry with the same command_id")]
    Store(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored log is not a valid fundledger ledger at seq {seq}: {reason}")]
    BadLog { seq: u64, reason: String },
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    /// (command type, outcome code or "accepted") → count.
    pub commands: Mutex<HashMap<(&'static str, &'static str), u64>>,
    pub batches_total: AtomicU64,
    pub batch_commands_sum: AtomicU64,
    pub batch_records_sum: AtomicU64,
    pub append_micros_sum: AtomicU64,
    /// Append latency histogram: counts of appends at or under each bound.
    pub append_buckets: [AtomicU64; APPEND_BUCKETS_MS.len()],
    pub conflicts_total: AtomicU64,
    pub store_errors_total: AtomicU64,
}

/// Upper bounds (ms) of the append latency histogram.
pub const APPEND_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

/// A batch decided on a copy of the state: the state after it, the sealed records to append,
/// one outcome per command, and (command type, outcome code) pairs for the metrics.
type BatchDecision = (
    LedgerState,
    Vec<Record>,
    Vec<Outcome>,
    Vec<(&'static str, &'static str)>,
);

struct Job {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, SubmitError>>,
}

struct Shared {
    snapshot: ArcSwap<LedgerState>,
    metrics: Metrics,
    origin: String,
    backend: &'static str,
}

/// A handle on the ledger: submit commands, read the last published state.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Job>,
    refresh: mpsc::Sender<oneshot::Sender<()>>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// A command in the queue; await it for the outcome.
pub struct Pending(oneshot::Receiver<Result<Outcome, SubmitError>>);

impl Pending {
    pub async fn outcome(self) -> Result<Outcome, SubmitError> {
        self.0.await.unwrap_or(Err(SubmitError::Closed))
    }
}

impl Ledger {
    /// Opens the ledger in `store`: replays (and checks) the log, registers the built-in 62号
    /// catalogue as the first record of a new ledger, and starts the writer task.
    pub async fn open(
        store: Arc<dyn EventStore>,
        options: WriterOptions,
    ) -> Result<Ledger, LedgerError> {
        let mut state = LedgerState::default();
        catch_up(store.as_ref(), &mut state).await?;
        if state.last_seq == 0 {
            register_builtin(store.as_ref(), &mut state, &options.clock).await?;
        }
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(state.clone()),
            metrics: Metrics::default(),
            origin: store.origin().to_string(),
            backend: store.backend(),
        });
        let (queue, jobs) = mpsc::channel(options.queue_capacity.max(1));
        let (refresh, refreshes) = mpsc::channel(64);
        let writer = Writer {
            store,
            state,
            shared: shared.clone(),
            options,
            remembered: HashMap::new(),
            remembered_order: VecDeque::new(),
        };
        let task = tokio::spawn(writer.run(jobs, refreshes));
        Ok(Ledger {
            shared,
            queue,
            refresh,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    pub fn backend(&self) -> &'static str {
        self.shared.backend
    }

    /// The last published state. Never waits on the writer.
    pub fn snapshot(&self) -> Arc<LedgerState> {
        self.shared.snapshot.load_full()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Queues a command, waiting for room in the queue.
    pub async fn enqueue(&self, command: Command) -> Result<Pending, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        self.queue
            .send(Job { command, reply })
            .await
            .map_err(|_| SubmitError::Closed)?;
        Ok(Pending(receiver))
    }

    /// Queues a command, or answers `Busy` at once when the queue is full.
    pub fn try_enqueue(&self, command: Command) -> Result<Pending, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        match self.queue.try_send(Job { command, reply }) {
            Ok(()) => Ok(Pending(receiver)),
            Err(mpsc::error::TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::Closed),
        }
    }

    /// Executes one command and waits for its outcome.
    pub async fn execute(&self, command: Command) -> Result<Outcome, SubmitError> {
        self.enqueue(command).await?.outcome().await
    }

    /// Asks the writer to read what other processes appended, and waits until it has.
    pub async fn refresh(&self) -> Result<(), SubmitError> {
        let (done, wait) = oneshot::channel();
        self.refresh
            .send(done)
            .await
            .map_err(|_| SubmitError::Closed)?;
        wait.await.map_err(|_| SubmitError::Closed)
    }

    /// Stops taking commands, lets the writer finish what is queued, and waits for it.
    pub async fn close(self) {
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        drop(self.queue);
        drop(self.refresh);
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Writer {
    store: Arc<dyn EventStore>,
    state: LedgerState,
    shared: Arc<Shared>,
    options: WriterOptions,
    /// Outcomes of rejected commands that wrote nothing: command id → (digest, outcome).
    remembered: HashMap<String, (String, Outcome)>,
    remembered_order: VecDeque<String>,
}

impl Writer {
    async fn run(
        mut self,
        mut jobs: mpsc::Receiver<Job>,
        mut refreshes: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        let mut refresh_open = true;
        loop {
            tokio::select! {
                job = jobs.recv() => {
                    let Some(first) = job else { break };
                    let mut batch = vec![first];
                    while batch.len() < self.options.batch_max.max(1) {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    self.process(batch).await;
                }
                done = refreshes.recv(), if refresh_open => {
                    match done {
                        Some(done) => {
                            if let Err(error) = self.catch_up().await {
                                tracing::error!(%error, "catching up with the store failed");
                            }
                            let _ = done.send(());
                        }
                        None => refresh_open = false,
                    }
                }
            }
        }
    }

    async fn catch_up(&mut self) -> Result<(), LedgerError> {
        let before = self.state.last_seq;
        catch_up(self.store.as_ref(), &mut self.state).await?;
        if self.state.last_seq != before {
            self.shared.snapshot.store(Arc::new(self.state.clone()));
        }
        Ok(())
    }

    async fn process(&mut self, batch: Vec<Job>) {
        for _round in 0..CONFLICT_ROUNDS_MAX {
            let (work, records, outcomes, counted) = self.decide_batch(&batch);
            if records.is_empty() {
                self.finish(batch, outcomes, counted);
                return;
            }
            let expected = Head {
                seq: self.state.last_seq,
                hash: self.state.last_hash,
            };
            let started = Instant::now();
            let appended = self.store.append(expected, &records).await;
            self.record_append(started.elapsed(), records.len());
            match appended {
                Ok(_) => {
                    self.state = work;
                    self.shared.snapshot.store(Arc::new(self.state.clone()));
                    self.finish(batch, outcomes, counted);
                    return;
                }
                Err(StoreError::Conflict { .. }) => {
                    self.shared
                        .metrics
                        .conflicts_total
                        .fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = self.catch_up().await {
                        tracing::error!(%error, "catching up after a conflict failed");
                        self.fail(batch, SubmitError::Store(error.to_string()));
                        return;
                    }
                }
                Err(error) => {
                    self.shared
                        .metrics
                        .store_errors_total
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, "append failed");
                    // The append may have landed before the error (a lost reply): catch up so
                    // that a retry with the same command_id finds it.
                    if let Err(error) = self.catch_up().await {
                        tracing::warn!(%error, "catching up after a failed append failed too");
                    }
                    self.fail(batch, SubmitError::Store(error.to_string()));
                    return;
                }
            }
        }
        self.fail(
            batch,
            SubmitError::Store("the head kept moving; too many conflicts in a row".to_string()),
        );
    }

    /// Decides every command of the batch on a copy of the state, sealing as it goes.
    fn decide_batch(&self, batch: &[Job]) -> BatchDecision {
        let mut work = self.state.clone();
        let mut records = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut counted = Vec::with_capacity(batch.len());
        // Rejections inside this batch, so a repeat within one batch is idempotent too.
        let mut batch_rejections: HashMap<&str, (&str, Outcome)> = HashMap::new();
        for job in batch {
            let command = &job.command;
            let kind = command.type_name();
            if let Some(outcome) = replay_outcome(&work, command)
                .or_else(|| self.remembered_outcome(command))
                .or_else(|| {
                    batch_rejections
                        .get(command.command_id.as_str())
                        .map(|(digest, outcome)| same_or_conflict(command, digest, outcome))
                })
            {
                counted.push((kind, outcome.code().map_or("accepted", Code::as_str)));
                outcomes.push(outcome);
                continue;
            }
            let now = command.at.unwrap_or_else(|| (self.options.clock)());
            let (events, outcome_code, message) = match decide(&work, command, now) {
                Decision::Accept { events } => (events, None, None),
                Decision::Refuse {
                    event,
                    code,
                    message,
                } => (vec![event], Some(code), Some(message)),
                Decision::Reject { code, message } => {
                    let outcome =
                        Outcome::rejected(Some(&command.command_id), code, message, vec![]);
                    batch_rejections
                        .insert(&command.command_id, (&command.digest, outcome.clone()));
                    counted.push((kind, code.as_str()));
                    outcomes.push(outcome);
                    continue;
                }
            };
            let mut seqs = Vec::with_capacity(events.len());
            let mut types = Vec::with_capacity(events.len());
            let mut sealed_all = true;
            let mut scratch = work.clone();
            let mut new_records = Vec::with_capacity(events.len());
            for event in events {
                let body = EventBody {
                    seq: scratch.last_seq + 1,
                    recorded_at: now,
                    command_id: command.command_id.clone(),
                    command_digest: Some(command.digest.clone()),
                    actor: command.actor.clone(),
                    event,
                };
                let head = Head {
                    seq: scratch.last_seq,
                    hash: scratch.last_hash,
                };
                let sealed = Record::seal(&head, body.to_value())
                    .map_err(|error| error.to_string())
                    .and_then(|record| {
                        scratch
                            .apply_body(record.seq, record.hash, &body)
                            .map(|()| record)
                            .map_err(|error| error.to_string())
                    });
                match sealed {
                    Ok(record) => {
                        seqs.push(record.seq);
                        types.push(body.event.type_name());
                        new_records.push(record);
                    }
                    Err(error) => {
                        // decide produced an event the projections cannot fold: a bug. Refuse
                        // the command rather than record it.
                        tracing::error!(%error, command_id = %command.command_id, "decided events do not apply");
                        sealed_all = false;
                        break;
                    }
                }
            }
            if !sealed_all {
                counted.push((kind, "internal"));
                outcomes.push(Outcome::rejected(
                    Some(&command.command_id),
                    Code::InvalidState,
                    "the ledger could not record this command; it was not applied",
                    vec![],
                ));
                continue;
            }
            work = scratch;
            records.extend(new_records);
            let outcome = match outcome_code {
                None => Outcome::accepted(&command.command_id, &types, seqs),
                Some(code) => Outcome::rejected(
                    Some(&command.command_id),
                    code,
                    message.unwrap_or_default(),
                    seqs,
                ),
            };
            counted.push((kind, outcome.code().map_or("accepted", Code::as_str)));
            outcomes.push(outcome);
        }
        (work, records, outcomes, counted)
    }

    fn remembered_outcome(&self, command: &Command) -> Option<Outcome> {
        self.remembered
            .get(&command.command_id)
            .map(|(digest, outcome)| same_or_conflict(command, digest, outcome))
    }

    fn finish(
        &mut self,
        batch: Vec<Job>,
        outcomes: Vec<Outcome>,
        counted: Vec<(&'static str, &'static str)>,
    ) {
        let metrics = &self.shared.metrics;
        metrics
            .batch_commands_sum
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Ok(mut commands) = metrics.commands.lock() {
            for key in counted {
                *commands.entry(key).or_default() += 1;
            }
        }
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            if !outcome.is_accepted()
                && outcome.seqs.is_empty()
                && outcome.code() != Some(Code::IdempotencyConflict)
            {
                self.remember(&job.command, &outcome);
            }
            let _ = job.reply.send(Ok(outcome));
        }
    }

    fn remember(&mut self, command: &Command, outcome: &Outcome) {
        if self.remembered.contains_key(&command.command_id) {
            return;
        }
        while self.remembered.len() >= self.options.remembered_rejections_max.max(1) {
            match self.remembered_order.pop_front() {
                Some(oldest) => {
                    self.remembered.remove(&oldest);
                }
                None => break,
            }
        }
        self.remembered.insert(
            command.command_id.clone(),
            (command.digest.clone(), outcome.clone()),
        );
        self.remembered_order.push_back(command.command_id.clone());
    }

    fn fail(&mut self, batch: Vec<Job>, error: SubmitError) {
        for job in batch {
            let _ = job.reply.send(Err(error.clone()));
        }
    }

    fn record_append(&self, elapsed: Duration, records: usize) {
        let metrics = &self.shared.metrics;
        metrics.batches_total.fetch_add(1, Ordering::Relaxed);
        metrics
            .batch_records_sum
            .fetch_add(records as u64, Ordering::Relaxed);
        metrics
            .append_micros_sum
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let elapsed_ms = elapsed.as_millis() as u64;
        for (bucket, bound_ms) in metrics.append_buckets.iter().zip(APPEND_BUCKETS_MS) {
            if elapsed_ms <= bound_ms {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The first outcome of a command the log already holds, or a conflict if its content differs.
fn replay_outcome(state: &LedgerState, command: &Command) -> Option<Outcome> {
    let record = state.commands.get(&command.command_id)?;
    if record
        .digest
        .as_deref()
        .is_some_and(|digest| digest != command.digest)
    {
        return Some(conflict(command));
    }
    Some(match &record.code {
        None => Outcome::accepted(
            &command.command_id,
            &record.event_types,
            record.seqs.clone(),
        ),
        Some(code) => Outcome::rejected(
            Some(&command.command_id),
            Code::parse(code).unwrap_or(Code::InvalidState),
            record.message.clone().unwrap_or_default(),
            record.seqs.clone(),
        ),
    })
}

fn same_or_conflict(command: &Command, digest: &str, outcome: &Outcome) -> Outcome {
    if digest == command.digest {
        outcome.clone()
    } else {
        conflict(command)
    }
}

fn conflict(command: &Command) -> Outcome {
    Outcome::rejected(
        Some(&command.command_id),
        Code::IdempotencyConflict,
        format!(
            "command_id {} was used before for a different command; make a new command_id",
            command.command_id
        ),
        vec![],
    )
}

/// Reads and folds every record after `state.last_seq`, checking each link and hash.
pub async fn catch_up(store: &dyn EventStore, state: &mut LedgerState) -> Result<(), LedgerError> {
    if state.last_seq == 0 {
        state.last_hash = Head::empty(store.origin()).hash;
    }
    loop {
        let records = store.read(state.last_seq + 1, CATCH_UP_PAGE).await?;
        if records.is_empty() {
            return Ok(());
        }
        for record in &records {
            if record.seq != state.last_seq + 1 || record.prev != state.last_hash {
                return Err(LedgerError::BadLog {
                    seq: record.seq,
                    reason: "the record does not link to the one before it".to_string(),
                });
            }
            if record.computed_hash() != record.hash {
                return Err(LedgerError::BadLog {
                    seq: record.seq,
                    reason: "the record's hash does not match its body".to_string(),
                });
            }
            state.apply(record).map_err(|error| LedgerError::BadLog {
                seq: record.seq,
                reason: error.to_string(),
            })?;
        }
    }
}

async fn register_builtin(
    store: &dyn EventStore,
    state: &mut LedgerState,
    clock: &Clock,
) -> Result<(), LedgerError> {
    let version = match Catalogue::from_toml(BUILTIN_CATALOGUE) {
        Ok(catalogue) => catalogue.version,
        Err(error) => {
            return Err(LedgerError::BadLog {
                seq: 1,
                reason: format!("the built-in catalogue does not load: {error}"),
            })
        }
    };
    let body = EventBody {
        seq: 1,
        recorded_at: clock(),
        command_id: GENESIS_COMMAND_ID.to_string(),
        command_digest: None,
        actor: Actor::system(),
        event: Event::PolicyRegistered {
            catalogue: BUILTIN_CATALOGUE.to_string(),
            version,
        },
    };
    let head = Head::empty(store.origin());
    let record = Record::seal(&head, body.to_value()).map_err(|error| LedgerError::BadLog {
        seq: 1,
        reason: error.to_string(),
    })?;
    match store.append(head, std::slice::from_ref(&record)).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => catch_up(store, state).await,
        Err(error) => Err(error.into()),
    }
}
