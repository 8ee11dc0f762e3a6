//! The single writer: one task owns appends. It takes commands from a bounded queue, decides a
//! batch on a copy of the state, seals it onto the head, appends it in one store transaction
//! (group commit), publishes the new state, then answers every command of the batch.
//!
//! Deciding and appending overlap: while one batch is being appended (by a task of its own),
//! the commands that arrive are decided as the next batch on the state the first one leaves.
//! The next batch goes to the store only once the first is committed, and no command is
//! answered before its own batch is committed.
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

/// A queued command. The command is boxed so that a job is small: jobs are moved through the
/// queue and into batch vectors, and a command is a few hundred bytes.
struct Job {
    command: Box<Command>,
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
            unsure: false,
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
            .send(Job {
                command: Box::new(command),
                reply,
            })
            .await
            .map_err(|_| SubmitError::Closed)?;
        Ok(Pending(receiver))
    }

    /// Queues a command, or answers `Busy` at once when the queue is full.
    pub fn try_enqueue(&self, command: Command) -> Result<Pending, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        match self.queue.try_send(Job {
            command: Box::new(command),
            reply,
        }) {
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
    /// An append ended in an error (not a conflict) and the catch-up after it failed too: the
    /// append may have landed (a lost reply), so the state may lack records this process
    /// wrote. Nothing is decided on it until a catch-up succeeds, else a retry of a command
    /// that landed would be decided again on a state without it.
    unsure: bool,
}

/// A batch being decided: commands are decided one by one, each on the state the ones before
/// it left, and their records sealed onto the head they leave.
struct Batch {
    /// The state the batch is decided on: the published state, or the state the batch in
    /// flight leaves.
    base: LedgerState,
    /// `base` with the records of this batch folded in.
    work: LedgerState,
    jobs: Vec<Job>,
    records: Vec<Record>,
    outcomes: Vec<Outcome>,
    /// (command type, outcome code) per command, for the metrics.
    counted: Vec<(&'static str, &'static str)>,
    /// Rejections that record nothing, of this batch and of the batch in flight before it
    /// (whose replies are not sent yet, so they are not remembered yet): a repeat of one of
    /// those commands gets the same answer, as it would from the remembered rejections.
    rejections: HashMap<String, (String, Outcome)>,
}

impl Batch {
    fn new(base: LedgerState, rejections: HashMap<String, (String, Outcome)>) -> Batch {
        Batch {
            work: base.clone(),
            base,
            jobs: Vec::new(),
            records: Vec::new(),
            outcomes: Vec::new(),
            counted: Vec::new(),
            rejections,
        }
    }

    /// The head the batch's records hang from: what the append expects the store's head to be.
    fn expected_head(&self) -> Head {
        Head {
            seq: self.base.last_seq,
            hash: self.base.last_hash,
        }
    }
}

/// A batch whose records are being appended by a task of their own, so that the writer can
/// decide the next batch meanwhile (on the state this one leaves).
struct InFlight {
    base_seq: u64,
    work: LedgerState,
    jobs: Vec<Job>,
    outcomes: Vec<Outcome>,
    counted: Vec<(&'static str, &'static str)>,
    rejections: HashMap<String, (String, Outcome)>,
    records: usize,
    started: Instant,
    append: tokio::task::JoinHandle<Appended>,
}

/// What an append task hands back: the store's answer and how long `append` took.
type Appended = (Result<Head, StoreError>, Duration);

/// What the writer's loop waits for while a batch is in flight.
enum Wake {
    Landed(Result<Appended, tokio::task::JoinError>),
    Job(Option<Job>),
    Refresh(Option<oneshot::Sender<()>>),
}

impl Writer {
    /// The writer's loop: a two-stage pipeline. A batch is decided and its append handed to a
    /// task; while the store writes it, the commands that arrive are decided as the next batch
    /// on the state the first one leaves. The next batch is appended only once the first one
    /// is committed (appends stay in order, each on the head the one before left), and no
    /// command is answered before its batch is committed. If an append fails, the batch
    /// decided behind it is decided again from what the store holds.
    async fn run(
        mut self,
        mut jobs: mpsc::Receiver<Job>,
        mut refreshes: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        let batch_max = self.options.batch_max.max(1);
        let mut in_flight: Option<InFlight> = None;
        let mut next: Option<Batch> = None;
        // Refresh requests that came while a batch was in flight: served when it lands.
        let mut refreshes_due: Vec<oneshot::Sender<()>> = Vec::new();
        let mut jobs_open = true;
        let mut refresh_open = true;
        loop {
            let Some(flight) = in_flight.as_mut() else {
                if !jobs_open {
                    break;
                }
                tokio::select! {
                    job = jobs.recv() => {
                        let Some(first) = job else {
                            jobs_open = false;
                            continue;
                        };
                        let mut waiting = vec![first];
                        while waiting.len() < batch_max {
                            match jobs.try_recv() {
                                Ok(job) => waiting.push(job),
                                Err(_) => break,
                            }
                        }
                        if let Err(error) = self.ensure_caught_up().await {
                            self.fail(waiting, error);
                            continue;
                        }
                        let mut batch = Batch::new(self.state.clone(), HashMap::new());
                        for job in waiting {
                            self.decide_into(&mut batch, job);
                        }
                        in_flight = self.launch(batch).await;
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
                continue;
            };
            let room = next
                .as_ref()
                .is_none_or(|batch| batch.jobs.len() < batch_max);
            let wake = tokio::select! {
                // The append first: its commands wait for their replies.
                biased;
                landed = &mut flight.append => Wake::Landed(landed),
                done = refreshes.recv(), if refresh_open => Wake::Refresh(done),
                job = jobs.recv(), if jobs_open && room => Wake::Job(job),
            };
            match wake {
                Wake::Refresh(None) => refresh_open = false,
                Wake::Refresh(Some(done)) => refreshes_due.push(done),
                Wake::Job(None) => jobs_open = false,
                Wake::Job(Some(job)) => {
                    let batch = next.get_or_insert_with(|| {
                        Batch::new(flight.work.clone(), flight.rejections.clone())
                    });
                    self.decide_into(batch, job);
                }
                Wake::Landed(landed) => {
                    if let Some(flight) = in_flight.take() {
                        let due = std::mem::take(&mut refreshes_due);
                        in_flight = self.land(flight, landed, next.take(), due).await;
                    }
                }
            }
        }
    }

    /// Hands a decided batch to an append task, or answers it at once when it records nothing.
    async fn launch(&mut self, batch: Batch) -> Option<InFlight> {
        if batch.records.is_empty() {
            self.finish(batch.jobs, batch.outcomes, batch.counted);
            return None;
        }
        let expected = batch.expected_head();
        let store = self.store.clone();
        let records = batch.records;
        let count = records.len();
        // The task also drops the records, off the writer's path.
        let append = tokio::spawn(async move {
            let started = Instant::now();
            let appended = store.append(expected, &records).await;
            (appended, started.elapsed())
        });
        // Let the append start now: a task spawned from a worker waits in that worker's
        // next-task slot, which no other worker may take, until this task yields, and the
        // loop deciding the next batch does not yield while commands keep arriving.
        tokio::task::yield_now().await;
        Some(InFlight {
            base_seq: expected.seq,
            work: batch.work,
            jobs: batch.jobs,
            outcomes: batch.outcomes,
            counted: batch.counted,
            rejections: batch.rejections,
            records: count,
            started: Instant::now(),
            append,
        })
    }

    /// A batch's append is over: publish and answer it, serve the refresh requests that came
    /// meanwhile, and launch the next batch; when the append failed, answer or decide again
    /// every command of both.
    async fn land(
        &mut self,
        flight: InFlight,
        landed: Result<Appended, tokio::task::JoinError>,
        next: Option<Batch>,
        refreshes_due: Vec<oneshot::Sender<()>>,
    ) -> Option<InFlight> {
        let in_flight = self
            .land_append(flight, landed, next, !refreshes_due.is_empty())
            .await;
        for done in refreshes_due {
            let _ = done.send(());
        }
        in_flight
    }

    async fn land_append(
        &mut self,
        flight: InFlight,
        landed: Result<Appended, tokio::task::JoinError>,
        next: Option<Batch>,
        refresh: bool,
    ) -> Option<InFlight> {
        let (landed, elapsed) = landed.unwrap_or_else(|error| {
            (
                Err(StoreError::Backend(format!(
                    "the append task failed: {error}"
                ))),
                flight.started.elapsed(),
            )
        });
        self.record_append(elapsed, flight.records);
        match landed {
            Ok(_) => {
                debug_assert_eq!(
                    flight.base_seq + flight.records as u64,
                    flight.work.last_seq
                );
                self.state = flight.work;
                self.publish();
                self.finish(flight.jobs, flight.outcomes, flight.counted);
                if refresh {
                    if let Err(error) = self.catch_up().await {
                        tracing::error!(%error, "catching up with the store failed");
                    }
                }
                let batch = next?;
                if batch.base.last_seq != self.state.last_seq {
                    // Other processes appended: what was decided on the old head is stale.
                    self.process_all(batch.jobs).await;
                    return None;
                }
                self.launch(batch).await
            }
            Err(StoreError::Conflict { .. }) => {
                // Another process moved the head: nothing of ours was written. Decide both
                // batches again on what the store holds now.
                self.shared
                    .metrics
                    .conflicts_total
                    .fetch_add(1, Ordering::Relaxed);
                let mut jobs = flight.jobs;
                jobs.extend(next.map(|batch| batch.jobs).unwrap_or_default());
                if let Err(error) = self.catch_up().await {
                    tracing::error!(%error, "catching up after a conflict failed");
                    self.fail(jobs, SubmitError::Store(error.to_string()));
                    return None;
                }
                self.process_all(jobs).await;
                None
            }
            Err(error) => {
                self.shared
                    .metrics
                    .store_errors_total
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "append failed");
                // The append may have landed before the error (a lost reply): catch up so
                // that a retry with the same command_id finds it.
                let caught_up = self.catch_up().await;
                if let Err(error) = &caught_up {
                    tracing::warn!(%error, "catching up after a failed append failed too");
                    self.unsure = true;
                }
                self.fail(flight.jobs, SubmitError::Store(error.to_string()));
                // The next batch was decided on a state that may not be the store's: decide
                // it again (or fail it too, when the store cannot even be read).
                if let Some(batch) = next {
                    match caught_up {
                        Ok(()) => self.process_all(batch.jobs).await,
                        Err(_) => self.fail(batch.jobs, SubmitError::Store(error.to_string())),
                    }
                }
                None
            }
        }
    }

    async fn catch_up(&mut self) -> Result<(), LedgerError> {
        let before = self.state.last_seq;
        let caught_up = catch_up(self.store.as_ref(), &mut self.state).await;
        if self.state.last_seq != before {
            self.publish();
        }
        caught_up?;
        self.unsure = false;
        Ok(())
    }

    /// After an append whose outcome is unknown, catches up before anything is decided again.
    async fn ensure_caught_up(&mut self) -> Result<(), SubmitError> {
        if !self.unsure {
            return Ok(());
        }
        self.catch_up().await.map_err(|error| {
            SubmitError::Store(format!(
                "an earlier append may have landed and the store cannot be read to learn it: \
                 {error}"
            ))
        })
    }

    /// Publishes the state for readers. The snapshot it replaces is dropped on the blocking
    /// pool: freeing the map nodes the last batch replaced is work no command waits for.
    fn publish(&self) {
        let old = self.shared.snapshot.swap(Arc::new(self.state.clone()));
        if Arc::strong_count(&old) == 1 {
            drop(tokio::task::spawn_blocking(move || drop(old)));
        }
    }

    /// Decides, appends and answers `jobs` one batch after the other, without pipelining (after
    /// a failed append, when the state is caught up).
    async fn process_all(&mut self, mut jobs: Vec<Job>) {
        let batch_max = self.options.batch_max.max(1);
        while !jobs.is_empty() {
            let rest = jobs.split_off(batch_max.min(jobs.len()));
            self.process(jobs).await;
            jobs = rest;
        }
    }

    /// Decides, appends and answers one batch, catching up and deciding it again on conflicts.
    async fn process(&mut self, mut jobs: Vec<Job>) {
        for _round in 0..CONFLICT_ROUNDS_MAX {
            if let Err(error) = self.ensure_caught_up().await {
                self.fail(jobs, error);
                return;
            }
            let mut batch = Batch::new(self.state.clone(), HashMap::new());
            for job in jobs {
                self.decide_into(&mut batch, job);
            }
            if batch.records.is_empty() {
                self.finish(batch.jobs, batch.outcomes, batch.counted);
                return;
            }
            let expected = batch.expected_head();
            let started = Instant::now();
            let appended = self.store.append(expected, &batch.records).await;
            self.record_append(started.elapsed(), batch.records.len());
            match appended {
                Ok(_) => {
                    self.state = batch.work;
                    self.publish();
                    self.finish(batch.jobs, batch.outcomes, batch.counted);
                    return;
                }
                Err(StoreError::Conflict { .. }) => {
                    self.shared
                        .metrics
                        .conflicts_total
                        .fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = self.catch_up().await {
                        tracing::error!(%error, "catching up after a conflict failed");
                        self.fail(batch.jobs, SubmitError::Store(error.to_string()));
                        return;
                    }
                    jobs = batch.jobs;
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
                        self.unsure = true;
                    }
                    self.fail(batch.jobs, SubmitError::Store(error.to_string()));
                    return;
                }
            }
        }
        self.fail(
            jobs,
            SubmitError::Store("the head kept moving; too many conflicts in a row".to_string()),
        );
    }

    /// Decides one command into the batch: its outcome, and its records sealed onto the
    /// batch's head and folded into the batch's state.
    ///
    /// The batch's state is copied once per batch, not per command: copying it per command
    /// would make every map write after the copy clone the path of persistent-map nodes it
    /// touches, which costs more than the deciding itself. Should folding a decided record
    /// ever fail (a bug: decide produced an event the projections refuse), the state is
    /// rebuilt from the batch's base and the records of the commands before, and that one
    /// command is refused.
    fn decide_into(&self, batch: &mut Batch, job: Job) {
        let command = &job.command;
        let kind = command.type_name();
        if let Some(outcome) = replay_outcome(&batch.work, command)
            .or_else(|| self.remembered_outcome(command))
            .or_else(|| {
                batch
                    .rejections
                    .get(command.command_id.as_str())
                    .map(|(digest, outcome)| same_or_conflict(command, digest, outcome))
            })
        {
            batch
                .counted
                .push((kind, outcome.code().map_or("accepted", Code::as_str)));
            batch.outcomes.push(outcome);
            batch.jobs.push(job);
            return;
        }
        let now = command.at.unwrap_or_else(|| (self.options.clock)());
        let (events, outcome_code, message) = match decide(&batch.work, command, now) {
            Decision::Accept { events } => (events, None, None),
            Decision::Refuse {
                event,
                code,
                message,
            } => (vec![event], Some(code), Some(message)),
            Decision::Reject { code, message } => {
                let outcome = Outcome::rejected(Some(&command.command_id), code, message, vec![]);
                batch.rejections.insert(
                    command.command_id.clone(),
                    (command.digest.clone(), outcome.clone()),
                );
                batch.counted.push((kind, code.as_str()));
                batch.outcomes.push(outcome);
                batch.jobs.push(job);
                return;
            }
        };
        let mut seqs = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let records_before = batch.records.len();
        let mut failure = None;
        for event in events {
            let body = EventBody {
                seq: batch.work.last_seq + 1,
                recorded_at: now,
                command_id: command.command_id.clone(),
                command_digest: Some(command.digest.clone()),
                actor: command.actor.clone(),
                event,
            };
            let head = Head {
                seq: batch.work.last_seq,
                hash: batch.work.last_hash,
            };
            let work = &mut batch.work;
            let sealed = Record::seal(&head, body.to_value())
                .map_err(|error| error.to_string())
                .and_then(|record| {
                    work.apply_body(record.seq, record.hash, &body)
                        .map(|()| record)
                        .map_err(|error| error.to_string())
                });
            match sealed {
                Ok(record) => {
                    seqs.push(record.seq);
                    types.push(body.event.type_name());
                    batch.records.push(record);
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = failure {
            // decide produced an event the projections cannot fold: a bug. Refuse the
            // command rather than record it, and undo what it folded.
            tracing::error!(%error, command_id = %command.command_id, "decided events do not apply");
            batch.records.truncate(records_before);
            if !rebuild(batch) {
                // Cannot happen (folding is deterministic), but if it did, nothing of this
                // batch is recorded: every command of the batch that would have written a
                // record is refused (their replies are not sent yet), and the state stays
                // the batch's base.
                batch.work = batch.base.clone();
                batch.records.clear();
                let base_seq = batch.base.last_seq;
                for (outcome, count) in batch.outcomes.iter_mut().zip(batch.counted.iter_mut()) {
                    if outcome.seqs.iter().any(|seq| *seq > base_seq) {
                        *outcome = not_recorded(outcome.command_id.as_deref());
                        count.1 = "internal";
                    }
                }
            }
            batch.counted.push((kind, "internal"));
            batch.outcomes.push(not_recorded(Some(&command.command_id)));
            batch.jobs.push(job);
            return;
        }
        let outcome = match outcome_code {
            None => Outcome::accepted(&command.command_id, &types, seqs),
            Some(code) => Outcome::rejected(
                Some(&command.command_id),
                code,
                message.unwrap_or_default(),
                seqs,
            ),
        };
        batch
            .counted
            .push((kind, outcome.code().map_or("accepted", Code::as_str)));
        batch.outcomes.push(outcome);
        batch.jobs.push(job);
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

/// Rebuilds a batch's state from its base and its records (after dropping the records of a
/// command that did not fold); false if one of them does not fold again. Each body is read
/// back from its record: this runs only after a bug, so keeping the typed bodies of every
/// batch for it would cost every batch.
fn rebuild(batch: &mut Batch) -> bool {
    let mut work = batch.base.clone();
    for record in &batch.records {
        if let Err(error) = work.apply(record) {
            tracing::error!(%error, seq = record.seq, "a record folded before does not fold again");
            return false;
        }
    }
    batch.work = work;
    true
}

/// The answer to a command the ledger decided but could not record (a bug, logged).
fn not_recorded(command_id: Option<&str>) -> Outcome {
    Outcome::rejected(
        command_id,
        Code::InvalidState,
        "the ledger could not record this command; it was not applied",
        vec![],
    )
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
///
/// The next page is read while the current one is folded: the store turns rows into records
/// on a thread of its own (SQLite) or on the server (PostgreSQL), so reading and folding
/// overlap instead of taking turns. A failed fold stops at once (the page read meanwhile is
/// dropped); a failed read is reported after the pages before it are folded.
pub async fn catch_up(store: &dyn EventStore, state: &mut LedgerState) -> Result<(), LedgerError> {
    if state.last_seq == 0 {
        state.last_hash = Head::empty(store.origin()).hash;
    }
    let mut page = store.read(state.last_seq + 1, CATCH_UP_PAGE).await?;
    while let Some(last) = page.last() {
        let next_seq = last.seq.saturating_add(1);
        let (next, folded) = tokio::join!(store.read(next_seq, CATCH_UP_PAGE), async {
            fold_page(state, page)
        });
        folded?;
        page = next?;
    }
    Ok(())
}

/// Checks each record's link and hash and folds it.
fn fold_page(state: &mut LedgerState, records: Vec<Record>) -> Result<(), LedgerError> {
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
    Ok(())
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
