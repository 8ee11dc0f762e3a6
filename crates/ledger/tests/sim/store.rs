//! The simulated store: [`MemStore`], an in-memory [`EventStore`] that keeps the store
//! contract (expected-head appends, all-or-nothing batches, the same checks as the SQL
//! backends' `prepare_batch`, bodies kept as their JCS text), and [`ProcessStore`], one
//! process's view of it through a seeded fault injector:
//!
//! - `append_error`: the append fails before anything is written;
//! - `rival`: another process (the [`Rival`], which decides and seals on its own state) appends
//!   first, so the append meets a conflict;
//! - `slow`: the append sleeps on the paused tokio clock first, so the other process and the
//!   clients run meanwhile (and real conflicts happen);
//! - `crash`: the append lands and the process dies before it can reply: the caller gets an
//!   error and the view answers nothing more, until the simulation opens a new process;
//! - `lost_reply`: the append lands and the reply is lost, the process lives on;
//! - `read_error`: a read (catch-up) fails.
//!
//! The store methods are written out by hand in the shape `#[async_trait]` gives them, so the
//! test needs no dependency of its own.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fundledger_events::chain::{check_body, record_hash};
use fundledger_events::{jcs, EventBody, Head, Record};
use fundledger_ledger::{decide, Command, Decision, Outcome};
use fundledger_projections::LedgerState;
use fundledger_store::{EventStore, StoreError, MAX_BATCH_RECORDS};
use serde_json::Value;

use super::check::{Ack, Landed};
use super::clock::VirtualClock;
use super::rng::Rng;

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Locks a mutex, going on with the data even if a panicking seed poisoned it (the panic is
/// reported on its own).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One stored record: the body as the canonical text its hash covers.
#[derive(Clone)]
struct Row {
    seq: u64,
    prev: fundledger_events::Hash,
    hash: fundledger_events::Hash,
    canonical_body: String,
}

/// An append-only log in memory.
pub struct MemStore {
    origin: String,
    rows: Mutex<Vec<Row>>,
}

impl MemStore {
    pub fn new(origin: &str) -> MemStore {
        MemStore {
            origin: origin.to_string(),
            rows: Mutex::new(Vec::new()),
        }
    }

    pub fn head_now(&self) -> Head {
        match lock(&self.rows).last() {
            Some(row) => Head {
                seq: row.seq,
                hash: row.hash,
            },
            None => Head::empty(&self.origin),
        }
    }

    /// The checks of `fundledger_store::prepare_batch`, then the head comparison and the write,
    /// all under one lock: the whole batch or nothing.
    pub fn append_now(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        let rows = prepare(&expected, batch)?;
        let mut stored = lock(&self.rows);
        let actual = match stored.last() {
            Some(row) => Head {
                seq: row.seq,
                hash: row.hash,
            },
            None => Head::empty(&self.origin),
        };
        if actual != expected {
            return Err(StoreError::Conflict { expected, actual });
        }
        let head = rows.last().map(|row| Head {
            seq: row.seq,
            hash: row.hash,
        });
        stored.extend(rows);
        head.ok_or_else(|| StoreError::InvalidBatch("the batch is empty".into()))
    }

    pub fn read_now(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let stored = lock(&self.rows);
        let start = usize::try_from(from_seq.max(1) - 1).unwrap_or(usize::MAX);
        stored
            .iter()
            .skip(start)
            .take(limit)
            .map(|row| {
                let body = serde_json::from_str(&row.canonical_body).map_err(|error| {
                    StoreError::Corrupt {
                        seq: row.seq,
                        reason: format!("the body is not JSON: {error}"),
                    }
                })?;
                Ok(Record {
                    seq: row.seq,
                    prev: row.prev,
                    hash: row.hash,
                    body,
                })
            })
            .collect()
    }

    /// Every record, in seq order.
    pub fn all(&self) -> Vec<Record> {
        self.read_now(1, usize::MAX)
            .expect("the memory store holds only bodies it wrote as JSON")
    }
}

fn prepare(expected: &Head, batch: &[Record]) -> Result<Vec<Row>, StoreError> {
    let invalid = |message: String| Err(StoreError::InvalidBatch(message));
    let Some(first) = batch.first() else {
        return invalid("the batch is empty".into());
    };
    if batch.len() > MAX_BATCH_RECORDS {
        return invalid(format!("{} records in one batch", batch.len()));
    }
    let Some(next_seq) = expected.seq.checked_add(1) else {
        return invalid("the expected head is at the largest seq".into());
    };
    if first.seq != next_seq || first.prev != expected.hash {
        return invalid(format!(
            "the first record (seq {}) does not follow the expected head (seq {})",
            first.seq, expected.seq
        ));
    }
    let mut rows = Vec::with_capacity(batch.len());
    let mut previous = *expected;
    for record in batch {
        if record.seq != previous.seq.wrapping_add(1) || record.prev != previous.hash {
            return invalid(format!(
                "record seq {} does not follow seq {}: the batch must be contiguous",
                record.seq, previous.seq
            ));
        }
        if let Err(error) = check_body(&record.body, record.seq) {
            return invalid(format!("record seq {}: {error}", record.seq));
        }
        let canonical = jcs::canonicalize(&record.body);
        if record_hash(&record.prev, &canonical) != record.hash {
            return invalid(format!("record seq {}: reseal it", record.seq));
        }
        let Ok(canonical_body) = String::from_utf8(canonical) else {
            return invalid(format!("record seq {}: not UTF-8", record.seq));
        };
        rows.push(Row {
            seq: record.seq,
            prev: record.prev,
            hash: record.hash,
            canonical_body,
        });
        previous = record.head();
    }
    Ok(rows)
}

impl EventStore for MemStore {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn head<'life0, 'async_trait>(&'life0 self) -> StoreFuture<'async_trait, Head>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { Ok(self.head_now()) })
    }

    fn append<'life0, 'life1, 'async_trait>(
        &'life0 self,
        expected: Head,
        batch: &'life1 [Record],
    ) -> StoreFuture<'async_trait, Head>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.append_now(expected, batch) })
    }

    fn read<'life0, 'async_trait>(
        &'life0 self,
        from_seq: u64,
        limit: usize,
    ) -> StoreFuture<'async_trait, Vec<Record>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.read_now(from_seq, limit) })
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

/// Chances, per mille, of each fault at each append (read errors: at each read).
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultPlan {
    pub append_error: u32,
    pub rival: u32,
    pub slow: u32,
    pub crash: u32,
    pub lost_reply: u32,
    pub read_error: u32,
}

/// Faults injected (and what they caused), by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub append_error: u64,
    pub rival_append: u64,
    pub slow: u64,
    pub crash: u64,
    pub crash_landed: u64,
    pub lost_reply: u64,
    pub read_error: u64,
    /// Appends the store refused with a conflict (rival appends and real races alike).
    pub conflicts: u64,
}

impl FaultCounts {
    pub fn add(&mut self, other: &FaultCounts) {
        for ((_, total), (_, more)) in self.fields_mut().into_iter().zip(other.fields()) {
            *total += more;
        }
    }

    pub fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("append_error", self.append_error),
            ("rival_append", self.rival_append),
            ("slow", self.slow),
            ("crash", self.crash),
            ("crash_landed", self.crash_landed),
            ("lost_reply", self.lost_reply),
            ("read_error", self.read_error),
            ("conflicts", self.conflicts),
        ]
    }

    fn fields_mut(&mut self) -> [(&'static str, &mut u64); 8] {
        [
            ("append_error", &mut self.append_error),
            ("rival_append", &mut self.rival_append),
            ("slow", &mut self.slow),
            ("crash", &mut self.crash),
            ("crash_landed", &mut self.crash_landed),
            ("lost_reply", &mut self.lost_reply),
            ("read_error", &mut self.read_error),
            ("conflicts", &mut self.conflicts),
        ]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AppendFault {
    None,
    Error,
    Rival,
    Crash,
    LostReply,
}

/// What the processes share: the store, the fault injector, the clock, the rival, and the
/// driver's logical time (`tick`, which orders enqueues and replies for the checker).
pub struct World {
    pub store: Arc<MemStore>,
    pub clock: VirtualClock,
    pub tick: AtomicU64,
    pub faults: Mutex<Faults>,
    pub rival: Mutex<Rival>,
    /// Every command sent so far, by digest, so the rival can run one that is in flight.
    pub sent: Mutex<HashMap<String, Value>>,
    /// `SIM_TRACE` set: print what happens, to follow a failing seed.
    pub trace: bool,
}

pub struct Faults {
    rng: Rng,
    pub plan: FaultPlan,
    pub enabled: bool,
    pub counts: FaultCounts,
    /// Appends that landed but were answered with an error.
    pub landed: Vec<Landed>,
    /// A connection that lost a reply often fails the next read too (the catch-up after it).
    read_after_lost_reply: bool,
}

impl Faults {
    pub fn new(rng: Rng, plan: FaultPlan) -> Faults {
        Faults {
            rng,
            plan,
            enabled: false,
            counts: FaultCounts::default(),
            landed: Vec::new(),
            read_after_lost_reply: false,
        }
    }

    /// The slow-down (ms) and the fault for one append.
    fn draw_append(&mut self) -> (Option<u64>, AppendFault) {
        if !self.enabled {
            return (None, AppendFault::None);
        }
        let plan = self.plan;
        let slow = self.rng.chance(plan.slow).then(|| self.rng.range(1, 400));
        if slow.is_some() {
            self.counts.slow += 1;
        }
        let fault = if self.rng.chance(plan.append_error) {
            self.counts.append_error += 1;
            AppendFault::Error
        } else if self.rng.chance(plan.rival) {
            AppendFault::Rival
        } else if self.rng.chance(plan.crash) {
            self.counts.crash += 1;
            AppendFault::Crash
        } else if self.rng.chance(plan.lost_reply) {
            AppendFault::LostReply
        } else {
            AppendFault::None
        };
        (slow, fault)
    }

    fn draw_read_error(&mut self) -> bool {
        let after_lost_reply = std::mem::take(&mut self.read_after_lost_reply);
        let hit = self.enabled
            && (self.rng.chance(self.plan.read_error)
                || (after_lost_reply && self.rng.chance(500)));
        if hit {
            self.counts.read_error += 1;
        }
        hit
    }
}

impl World {
    /// Prints one line of the trace (`SIM_TRACE=1`), stamped with the driver's tick.
    pub fn trace(&self, line: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("[tick {:>5}] {}", self.now_tick(), line());
        }
    }

    pub fn now_tick(&self) -> u64 {
        self.tick.load(Ordering::SeqCst)
    }

    /// The driver's logical time moves on (an enqueue or a reply).
    pub fn next_tick(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn inner_append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        let appended = self.store.append_now(expected, batch);
        if matches!(appended, Err(StoreError::Conflict { .. })) {
            lock(&self.faults).counts.conflicts += 1;
        }
        appended
    }

    /// The rival process appends something of its own before `batch` reaches the store.
    fn rival_appends_first(&self, batch: &[Record]) {
        let in_flight: Vec<Value> = {
            let sent = lock(&self.sent);
            batch
                .iter()
                .filter_map(|record| record.body["command_digest"].as_str())
                .filter_map(|digest| sent.get(digest).cloned())
                .collect()
        };
        let wrote = lock(&self.rival).act(self, &in_flight);
        if wrote {
            lock(&self.faults).counts.rival_append += 1;
        }
    }
}

/// One process's view of the store. Once it crashed it answers nothing but errors: the
/// simulation then opens a new process (a new view) on the same store.
pub struct ProcessStore {
    world: Arc<World>,
    pub instance: u64,
    dead: AtomicBool,
}

impl ProcessStore {
    pub fn new(world: Arc<World>, instance: u64) -> ProcessStore {
        ProcessStore {
            world,
            instance,
            dead: AtomicBool::new(false),
        }
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    fn dead_error(&self) -> StoreError {
        StoreError::Unreachable(format!(
            "simulated process {} crashed; it writes and reads nothing more",
            self.instance
        ))
    }

    fn landed(&self, batch: &[Record]) {
        let landed = Landed {
            instance: self.instance,
            seqs: batch.iter().map(|record| record.seq).collect(),
            tick: self.world.now_tick(),
        };
        lock(&self.world.faults).landed.push(landed);
    }

    async fn faulty_append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        let appended = self.faulty_append_inner(expected, batch).await;
        self.world.trace(|| {
            let commands: Vec<String> = batch
                .iter()
                .map(|record| {
                    let id = record.body["command_id"].as_str().unwrap_or("?");
                    format!("{}:{}", record.seq, &id[id.len().saturating_sub(4)..])
                })
                .collect();
            format!(
                "instance {} append on seq {} [{}] -> {:?}",
                self.instance,
                expected.seq,
                commands.join(" "),
                appended.as_ref().map(|head| head.seq)
            )
        });
        if std::env::var_os("SIM_TRACE").is_some_and(|level| level == "2") {
            for record in batch {
                self.world.trace(|| format!("  {}", record.body));
            }
        }
        appended
    }

    async fn faulty_append_inner(
        &self,
        expected: Head,
        batch: &[Record],
    ) -> Result<Head, StoreError> {
        if self.is_dead() {
            return Err(self.dead_error());
        }
        let (slow_ms, fault) = lock(&self.world.faults).draw_append();
        if let Some(slow_ms) = slow_ms {
            tokio::time::sleep(Duration::from_millis(slow_ms)).await;
        }
        if fault != AppendFault::None {
            self.world
                .trace(|| format!("instance {} fault {fault:?}", self.instance));
        }
        match fault {
            AppendFault::None => self.world.inner_append(expected, batch),
            AppendFault::Error => Err(StoreError::Backend(
                "injected fault: the connection dropped before the commit; nothing was written"
                    .into(),
            )),
            AppendFault::Rival => {
                self.world.rival_appends_first(batch);
                self.world.inner_append(expected, batch)
            }
            AppendFault::Crash => {
                self.dead.store(true, Ordering::SeqCst);
                if self.world.inner_append(expected, batch).is_ok() {
                    lock(&self.world.faults).counts.crash_landed += 1;
                    self.landed(batch);
                }
                Err(StoreError::Backend(
                    "injected fault: the process died after the commit, before the reply".into(),
                ))
            }
            AppendFault::LostReply => {
                self.world.inner_append(expected, batch)?;
                {
                    let mut faults = lock(&self.world.faults);
                    faults.counts.lost_reply += 1;
                    faults.read_after_lost_reply = true;
                }
                self.landed(batch);
                Err(StoreError::Backend(
                    "injected fault: the reply of the commit was lost".into(),
                ))
            }
        }
    }

    fn faulty_read(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        if self.is_dead() {
            return Err(self.dead_error());
        }
        if lock(&self.world.faults).draw_read_error() {
            self.world.trace(|| {
                format!(
                    "instance {} fault read_error from seq {from_seq}",
                    self.instance
                )
            });
            return Err(StoreError::Unreachable(
                "injected fault: the connection dropped during a read".into(),
            ));
        }
        self.world.store.read_now(from_seq, limit)
    }
}

impl EventStore for ProcessStore {
    fn origin(&self) -> &str {
        self.world.store.origin()
    }

    fn head<'life0, 'async_trait>(&'life0 self) -> StoreFuture<'async_trait, Head>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if self.is_dead() {
                return Err(self.dead_error());
            }
            Ok(self.world.store.head_now())
        })
    }

    fn append<'life0, 'life1, 'async_trait>(
        &'life0 self,
        expected: Head,
        batch: &'life1 [Record],
    ) -> StoreFuture<'async_trait, Head>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.faulty_append(expected, batch))
    }

    fn read<'life0, 'async_trait>(
        &'life0 self,
        from_seq: u64,
        limit: usize,
    ) -> StoreFuture<'async_trait, Vec<Record>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.faulty_read(from_seq, limit) })
    }

    fn backend(&self) -> &'static str {
        "simulated"
    }
}

// ---------------------------------------------------------------------------------------------
// The rival process

/// Another process on the same store, written apart from the writer: it catches up by reading
/// the log, decides with `decide` on its own state, seals onto the stored head and appends.
/// It runs commands the schedule gave it, or one that is in flight in the process it races
/// (the same command sent to two processes), or a small budget allocation of its own.
pub struct Rival {
    state: LedgerState,
    queue: VecDeque<Value>,
    rng: Rng,
    /// Command ids of its own allocations: `ffffffff-…-<n>`.
    own_ids: u64,
    pub acks: Vec<Ack>,
}

impl Rival {
    pub fn new(rng: Rng) -> Rival {
        Rival {
            state: LedgerState::default(),
            queue: VecDeque::new(),
            rng,
            own_ids: 0,
            acks: Vec::new(),
        }
    }

    /// Starts from a state another process read (the rival "opened" there).
    pub fn start_from(&mut self, state: LedgerState) {
        self.state = state;
    }

    pub fn give(&mut self, command: Value) {
        self.queue.push_back(command);
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// Folds what was appended since it last looked.
    pub fn catch_up(&mut self, store: &MemStore) {
        if self.state.last_seq == 0 {
            self.state.last_hash = Head::empty(store.origin()).hash;
        }
        let records = store
            .read_now(self.state.last_seq + 1, usize::MAX)
            .expect("the memory store reads");
        for record in &records {
            assert_eq!(record.prev, self.state.last_hash, "the rival's log links");
            self.state
                .apply(record)
                .unwrap_or_else(|error| panic!("the rival folds seq {}: {error}", record.seq));
        }
    }

    /// Appends one command's records if it can; true when it wrote something.
    fn act(&mut self, world: &World, in_flight: &[Value]) -> bool {
        self.catch_up(&world.store);
        let mut candidates = Vec::new();
        if !in_flight.is_empty() && self.rng.chance(500) {
            candidates.push(in_flight[self.rng.index(in_flight.len())].clone());
        }
        if let Some(command) = self.queue.pop_front() {
            candidates.push(command);
        }
        candidates.push(self.own_allocation(world));
        for command in candidates {
            if self.execute(world, &command) {
                return true;
            }
        }
        false
    }

    fn own_allocation(&mut self, world: &World) -> Value {
        self.own_ids += 1;
        let measures = ["M2", "M5", "M6", "M7", "M8", "M10"];
        let measure = *self.rng.pick(&measures);
        let year = chrono::Datelike::year(&world.clock.today());
        serde_json::json!({
            "command_id": format!("ffffffff-ffff-4fff-8fff-{:012x}", self.own_ids),
            "type": "allocate_budget",
            "actor": {"id": "fin.rival", "role": "finance", "unit": fundledger_ledger::FINANCE_UNIT},
            "measure": measure,
            "fiscal_year": year,
            "amount": "250000.00",
        })
    }

    /// Decides and appends one command as a writer would; true when records were appended.
    fn execute(&mut self, world: &World, json: &Value) -> bool {
        let Ok(command) = Command::parse(json) else {
            return false;
        };
        if self.state.commands.contains_key(&command.command_id) {
            // Already in the log: a writer would answer from it and append nothing.
            return false;
        }
        let now = command.at.unwrap_or_else(|| world.clock.tick());
        let (events, code, message) = match decide(&self.state, &command, now) {
            Decision::Accept { events } => (events, None, String::new()),
            Decision::Refuse {
                event,
                code,
                message,
            } => (vec![event], Some(code), message),
            Decision::Reject { code, message } => {
                let tick = world.next_tick();
                self.acks.push(Ack {
                    command_id: command.command_id.clone(),
                    digest: command.digest.clone(),
                    outcome: Outcome::rejected(Some(&command.command_id), code, message, vec![]),
                    instance: None,
                    enqueued_at: tick,
                    received_at: tick,
                    retried: false,
                });
                return false;
            }
        };
        let mut work = self.state.clone();
        let mut records = Vec::new();
        let mut types = Vec::new();
        for event in events {
            let body = EventBody {
                seq: work.last_seq + 1,
                recorded_at: now,
                command_id: command.command_id.clone(),
                command_digest: Some(command.digest.clone()),
                actor: command.actor.clone(),
                event,
            };
            let head = Head {
                seq: work.last_seq,
                hash: work.last_hash,
            };
            let record = Record::seal(&head, body.to_value()).expect("decided bodies seal");
            work.apply_body(record.seq, record.hash, &body)
                .expect("decided events fold");
            types.push(body.event.type_name());
            records.push(record);
        }
        let expected = Head {
            seq: self.state.last_seq,
            hash: self.state.last_hash,
        };
        if world.inner_append(expected, &records).is_err() {
            return false;
        }
        self.state = work;
        let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        let outcome = match code {
            None => Outcome::accepted(&command.command_id, &types, seqs),
            Some(code) => Outcome::rejected(Some(&command.command_id), code, message, seqs),
        };
        let tick = world.next_tick();
        self.acks.push(Ack {
            command_id: command.command_id.clone(),
            digest: command.digest.clone(),
            outcome,
            instance: None,
            enqueued_at: tick,
            received_at: tick,
            retried: false,
        });
        true
    }
}
