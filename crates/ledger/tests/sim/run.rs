//! One simulated run: a seed picks the configuration (processes, batch size, queue size,
//! fault chances), the schedule of commands and the faults. Everything runs on one
//! single-threaded tokio runtime with a paused clock, built for the seed, so a seed always
//! replays the same way.
//!
//! Clients send commands to one or two writer processes (`Ledger`s) on one store, without
//! waiting for each answer, so batches form; an answer that is an error is retried later with
//! the same command (same `command_id`, same content). A process whose store view crashed is
//! dropped and a new one opened on the same store, and its commands are retried there. At the
//! end, with faults off, every process catches up and the checker looks at everything.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fundledger_events::Record;
use fundledger_ledger::{Command, Ledger, LedgerError, Outcome, SubmitError, WriterOptions};
use fundledger_projections::LedgerState;
use serde_json::Value;
use tokio::sync::mpsc;

use super::check::{self, Ack, Opened};
use super::clock::{self, VirtualClock};
use super::commands::Generator;
use super::rng::Rng;
use super::store::{lock, FaultCounts, FaultPlan, Faults, MemStore, ProcessStore, Rival, World};

pub const ORIGIN: &str = "simulation.example/zhengzhou-2024-62";

/// The shape of one run, drawn from its seed.
#[derive(Clone, Debug)]
pub struct SeedConfig {
    pub processes: usize,
    pub batch_max: usize,
    pub queue_capacity: usize,
    pub commands: usize,
    pub plan: FaultPlan,
    /// Chance (per mille) that a command of the schedule goes to the rival process.
    pub rival_share: u32,
}

impl SeedConfig {
    pub fn draw(rng: &mut Rng) -> SeedConfig {
        // One run in eight has no faults at all, so the clean path is simulated too.
        let faulty = !rng.chance(125);
        let mut chance = |high: u64| if faulty { rng.range(0, high) as u32 } else { 0 };
        let plan = FaultPlan {
            append_error: chance(60),
            rival: chance(80),
            slow: chance(300),
            crash: chance(40),
            lost_reply: chance(50),
            read_error: chance(60),
        };
        SeedConfig {
            processes: if rng.chance(700) { 2 } else { 1 },
            batch_max: *rng.pick(&[1, 2, 4, 8, 16, 64]),
            queue_capacity: *rng.pick(&[2, 4, 16, 256]),
            commands: rng.range(30, 60) as usize,
            plan,
            rival_share: rng.range(0, 60) as u32,
        }
    }
}

/// What one run did, for the totals printed at the end.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub faults: FaultCounts,
    pub restarts_after_crash: u64,
    pub graceful_restarts: u64,
    pub failed_opens: u64,
    pub retries: u64,
    /// Retried commands (an earlier attempt got an error) whose answer names records.
    pub retries_answered_from_log: u64,
    pub busy: u64,
    pub commands: u64,
    pub parse_rejections: u64,
    pub acks: u64,
    pub records: u64,
    pub writer_conflicts: u64,
    pub faults_switched_off: u64,
    /// Commands made, by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Outcomes given by the writers: "type: accepted" or "type: code".
    pub outcomes: BTreeMap<String, u64>,
}

/// A run's report, what the checker found, and the log it left.
pub struct RunResult {
    pub config: SeedConfig,
    pub report: RunReport,
    pub violations: Vec<String>,
    pub records: Vec<Record>,
}

/// Runs seed `seed` on its own paused, single-threaded runtime.
pub fn run_seed(seed: u64) -> RunResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    runtime.block_on(Simulation::new(seed).run())
}

struct Ticket {
    json: Value,
    command: Command,
    slot: usize,
    enqueued_at: u64,
    attempts: u32,
    retried: bool,
    answered: bool,
}

struct Process {
    store: Arc<ProcessStore>,
    ledger: Option<Ledger>,
}

type Answer = (usize, u64, Result<Outcome, SubmitError>);

struct Simulation {
    seed: u64,
    config: SeedConfig,
    world: Arc<World>,
    rng: Rng,
    generator: Generator,
    processes: Vec<Process>,
    /// Every store view ever opened, by instance number.
    stores: Vec<Arc<ProcessStore>>,
    tickets: Vec<Ticket>,
    retries: VecDeque<usize>,
    outstanding: usize,
    answers: mpsc::UnboundedSender<Answer>,
    answered: mpsc::UnboundedReceiver<Answer>,
    acks: Vec<Ack>,
    opened: Vec<Opened>,
    snapshots: Vec<(String, LedgerState)>,
    violations: Vec<String>,
    report: RunReport,
}

impl Simulation {
    fn new(seed: u64) -> Simulation {
        let root = Rng::new(seed);
        let mut config_rng = root.fork("config");
        let config = SeedConfig::draw(&mut config_rng);
        let mut start_rng = root.fork("start");
        let start = clock::start_seconds() + start_rng.range(0, 700) as i64 * 86_400;
        let world = Arc::new(World {
            store: Arc::new(MemStore::new(ORIGIN)),
            clock: VirtualClock::starting_at(start),
            tick: AtomicU64::new(0),
            faults: Mutex::new(Faults::new(root.fork("faults"), config.plan)),
            rival: Mutex::new(Rival::new(root.fork("rival"))),
            sent: Mutex::new(std::collections::HashMap::new()),
            trace: std::env::var_os("SIM_TRACE").is_some(),
        });
        let (answers, answered) = mpsc::unbounded_channel();
        Simulation {
            seed,
            config,
            world,
            rng: root.fork("schedule"),
            generator: Generator::new(root.fork("commands"), seed),
            processes: Vec::new(),
            stores: Vec::new(),
            tickets: Vec::new(),
            retries: VecDeque::new(),
            outstanding: 0,
            answers,
            answered,
            acks: Vec::new(),
            opened: Vec::new(),
            snapshots: Vec::new(),
            violations: Vec::new(),
            report: RunReport::default(),
        }
    }

    fn options(&self) -> WriterOptions {
        WriterOptions {
            batch_max: self.config.batch_max,
            queue_capacity: self.config.queue_capacity,
            clock: self.world.clock.writer_clock(),
            ..WriterOptions::default()
        }
    }

    fn set_faults(&self, enabled: bool) {
        lock(&self.world.faults).enabled = enabled;
    }

    async fn run(mut self) -> RunResult {
        self.world
            .trace(|| format!("seed {} with {:?}", self.seed, self.config));
        // Creating the ledger (the built-in catalogue as seq 1) happens before any fault.
        for slot in 0..self.config.processes {
            self.processes.push(Process {
                store: Arc::new(ProcessStore::new(self.world.clone(), u64::MAX)),
                ledger: None,
            });
            self.open(slot).await;
        }
        if let Some(ledger) = &self.processes[0].ledger {
            // The rival opens where the first process did (saves parsing the catalogue again).
            lock(&self.world.rival).start_from(ledger.snapshot().as_ref().clone());
        }
        self.set_faults(true);
        let deadline = Duration::from_secs(60 * 86_400);
        let schedule = tokio::time::timeout(deadline, self.schedule()).await;
        if schedule.is_err() {
            self.violations.push(format!(
                "the run did not finish within {} days of virtual time",
                deadline.as_secs() / 86_400
            ));
        }
        self.finish().await
    }

    async fn schedule(&mut self) {
        let today = self.world.clock.today();
        for command in self.generator.opening(today) {
            self.send(command, 0);
        }
        for _ in 0..self.config.commands {
            let seconds = if self.rng.chance(300) {
                self.rng.range(0, 7_200)
            } else {
                self.rng.range(3_600, 25 * 86_400)
            };
            self.world.clock.advance(seconds as i64);
            self.restart_crashed().await;
            if self.rng.chance(15) {
                let slot = self.rng.index(self.processes.len());
                self.graceful_restart(slot).await;
            }
            let slot = self.rng.index(self.processes.len());
            let state = self.client_view(slot);
            let today = self.world.clock.today();
            if self.rng.chance(self.config.rival_share) {
                let command = self.generator.for_rival(&state, today);
                self.remember_sent(&command);
                lock(&self.world.rival).give(command);
                continue;
            }
            let (kind, command) = self.generator.next(&state, today);
            *self.report.kinds.entry(kind.to_string()).or_default() += 1;
            let mut follow_up = self.generator.follow_up(&command);
            self.send(command, slot);
            while let Some(command) = follow_up {
                *self
                    .report
                    .kinds
                    .entry("follow-up".to_string())
                    .or_default() += 1;
                follow_up = self.generator.follow_up(&command);
                self.send(command, slot);
            }
            if self.rng.chance(100) {
                self.snapshot_of(slot, "mid-run");
            }
            match self.rng.below(8) {
                0..=2 => tokio::task::yield_now().await,
                3..=4 => {
                    let pause_ms = self.rng.range(1, 60);
                    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                }
                5 => self.settle(false).await,
                _ => {}
            }
            self.take_ready_answers();
            let resend = self.rng.range(0, self.retries.len() as u64);
            self.resend(resend as usize);
        }
        self.settle(true).await;
    }

    /// What a client sees: the last published state of a process (which may lag).
    fn client_view(&self, slot: usize) -> LedgerState {
        match &self.processes[slot].ledger {
            Some(ledger) => ledger.snapshot().as_ref().clone(),
            None => lock(&self.world.rival).state().clone(),
        }
    }

    fn snapshot_of(&mut self, slot: usize, when: &str) {
        if let Some(ledger) = &self.processes[slot].ledger {
            let instance = self.processes[slot].store.instance;
            self.snapshots.push((
                format!("instance {instance} ({when})"),
                ledger.snapshot().as_ref().clone(),
            ));
        }
    }

    fn remember_sent(&self, json: &Value) {
        if let Ok(command) = Command::parse(json) {
            lock(&self.world.sent).insert(command.digest, json.clone());
        }
    }

    /// A client sends a command to the process in `slot`.
    fn send(&mut self, json: Value, slot: usize) {
        self.report.commands += 1;
        let command = match Command::parse(&json) {
            Ok(command) => command,
            Err(rejection) => {
                // Refused before any writer sees it (the service answers 400/401).
                self.report.parse_rejections += 1;
                *self
                    .report
                    .outcomes
                    .entry(format!("unparsed: {}", rejection.code.as_str()))
                    .or_default() += 1;
                return;
            }
        };
        lock(&self.world.sent).insert(command.digest.clone(), json.clone());
        self.tickets.push(Ticket {
            json,
            command,
            slot,
            enqueued_at: 0,
            attempts: 0,
            retried: false,
            answered: false,
        });
        self.submit(self.tickets.len() - 1);
    }

    fn submit(&mut self, index: usize) {
        let slot = self.tickets[index].slot;
        let process = &self.processes[slot];
        let Some(ledger) = process.ledger.as_ref().filter(|_| !process.store.is_dead()) else {
            self.retries.push_back(index);
            return;
        };
        let instance = process.store.instance;
        let ticket = &mut self.tickets[index];
        ticket.attempts += 1;
        ticket.enqueued_at = self.world.next_tick();
        let (id, kind, attempt) = (
            ticket.command.command_id.clone(),
            ticket.command.type_name(),
            ticket.attempts,
        );
        self.world.trace(|| {
            format!("send #{index} {id} {kind} to instance {instance} (attempt {attempt})")
        });
        match ledger.try_enqueue(ticket.command.clone()) {
            Ok(pending) => {
                self.outstanding += 1;
                let answers = self.answers.clone();
                tokio::spawn(async move {
                    let outcome = pending.outcome().await;
                    let _ = answers.send((index, instance, outcome));
                });
            }
            Err(SubmitError::Busy) => {
                self.report.busy += 1;
                self.retries.push_back(index);
            }
            Err(_) => self.retries.push_back(index),
        }
    }

    fn take_answer(&mut self, (index, instance, result): Answer) {
        self.outstanding -= 1;
        let received_at = self.world.next_tick();
        let dead = self.stores[instance as usize].is_dead();
        let ticket = &mut self.tickets[index];
        self.world.trace(|| {
            let answer = match &result {
                Ok(outcome) => format!(
                    "{} {:?}",
                    outcome.code.as_deref().unwrap_or("accepted"),
                    outcome.seqs
                ),
                Err(error) => format!("error: {error}"),
            };
            format!(
                "answer #{index} {} from instance {instance}{}: {answer}",
                ticket.command.command_id,
                if dead { " (crashed, dropped)" } else { "" }
            )
        });
        match result {
            Ok(outcome) if !dead => {
                let label = format!(
                    "{}: {}",
                    ticket.command.type_name(),
                    outcome.code.as_deref().unwrap_or("accepted")
                );
                *self.report.outcomes.entry(label).or_default() += 1;
                if let Some(provision) = ticket.json["provision"].as_str() {
                    let label = format!(
                        "submit {provision}: {}",
                        outcome.code.as_deref().unwrap_or("accepted")
                    );
                    *self.report.outcomes.entry(label).or_default() += 1;
                }
                ticket.answered = true;
                if ticket.retried && !outcome.seqs.is_empty() {
                    self.report.retries_answered_from_log += 1;
                }
                self.acks.push(Ack {
                    command_id: ticket.command.command_id.clone(),
                    digest: ticket.command.digest.clone(),
                    outcome,
                    instance: Some(instance),
                    enqueued_at: ticket.enqueued_at,
                    received_at,
                    retried: ticket.retried,
                });
            }
            // An error, or an answer from a process that has crashed since (it never reaches
            // the client): the client retries with the same command.
            _ => {
                ticket.retried = true;
                self.report.retries += 1;
                self.retries.push_back(index);
            }
        }
    }

    fn take_ready_answers(&mut self) {
        while let Ok(answer) = self.answered.try_recv() {
            self.take_answer(answer);
        }
    }

    /// Clients retry independently, so in any order (a dependent command may come back
    /// before the one it depends on).
    fn resend(&mut self, count: usize) {
        for _ in 0..count.min(self.retries.len()) {
            let pick = self.rng.index(self.retries.len());
            if let Some(index) = self.retries.remove(pick) {
                self.submit(index);
            }
        }
    }

    /// Waits until every command has an answer, retrying errors; with `final_round`, turns
    /// the faults off when progress is slow (so the run ends), else gives up after a while.
    async fn settle(&mut self, final_round: bool) {
        for round in 0..400u32 {
            self.take_ready_answers();
            self.restart_crashed().await;
            let retrying = self.retries.len();
            self.resend(retrying);
            if self.outstanding == 0 && self.retries.is_empty() {
                return;
            }
            if round == 40 {
                if !final_round {
                    return;
                }
                self.report.faults_switched_off += 1;
                self.set_faults(false);
            }
            if self.outstanding > 0 {
                let answer =
                    tokio::time::timeout(Duration::from_secs(3_600), self.answered.recv()).await;
                match answer {
                    Ok(Some(answer)) => self.take_answer(answer),
                    Ok(None) => unreachable!("the simulation holds a sender"),
                    Err(_) => {
                        self.violations.push(format!(
                            "{} queued commands got no answer within an hour of virtual time",
                            self.outstanding
                        ));
                        return;
                    }
                }
            } else {
                tokio::task::yield_now().await;
            }
        }
        self.violations.push(format!(
            "no progress: {} commands still without an answer after 400 rounds",
            self.outstanding + self.retries.len()
        ));
    }

    /// Opens a new process instance in `slot` on the shared store.
    async fn open(&mut self, slot: usize) {
        for attempt in 0..10u32 {
            if attempt == 6 {
                // A run that cannot reopen is not what is being tested; let it through.
                self.report.faults_switched_off += 1;
                self.set_faults(false);
            }
            let instance = self.stores.len() as u64;
            let store = Arc::new(ProcessStore::new(self.world.clone(), instance));
            self.stores.push(store.clone());
            match Ledger::open(store.clone(), self.options()).await {
                Ok(ledger) => {
                    let state = ledger.snapshot();
                    self.world.trace(|| {
                        format!(
                            "slot {slot}: instance {instance} opened at seq {}",
                            state.last_seq
                        )
                    });
                    self.opened.push(Opened {
                        instance,
                        head_seq: state.last_seq,
                    });
                    self.snapshots.push((
                        format!("instance {instance} (opened)"),
                        state.as_ref().clone(),
                    ));
                    self.processes[slot] = Process {
                        store,
                        ledger: Some(ledger),
                    };
                    return;
                }
                Err(LedgerError::BadLog { seq, reason }) => {
                    self.violations.push(format!(
                        "a process could not open the log: seq {seq}: {reason}"
                    ));
                }
                Err(LedgerError::Store(_)) => self.report.failed_opens += 1,
            }
        }
        self.violations.push(format!(
            "slot {slot}: no process could be opened in 10 attempts"
        ));
    }

    fn retire(&mut self, slot: usize, when: &str) -> Option<Ledger> {
        self.snapshot_of(slot, when);
        let ledger = self.processes[slot].ledger.take()?;
        self.report.writer_conflicts += ledger.metrics().conflicts_total.load(Ordering::Relaxed);
        Some(ledger)
    }

    /// Drops every process whose store view crashed and opens a new one in its place.
    async fn restart_crashed(&mut self) {
        for slot in 0..self.processes.len() {
            if self.processes[slot].store.is_dead() && self.processes[slot].ledger.is_some() {
                // The process is gone: its queue, its memory and its answers with it.
                drop(self.retire(slot, "before its crash"));
                self.report.restarts_after_crash += 1;
                self.open(slot).await;
            }
        }
    }

    /// Stops a process the orderly way (it finishes its queue) and opens a new one.
    async fn graceful_restart(&mut self, slot: usize) {
        if let Some(ledger) = self.retire(slot, "before a restart") {
            ledger.close().await;
            self.report.graceful_restarts += 1;
            self.open(slot).await;
        }
    }

    async fn finish(mut self) -> RunResult {
        self.set_faults(false);
        self.take_ready_answers();
        for slot in 0..self.processes.len() {
            if let Some(ledger) = &self.processes[slot].ledger {
                if ledger.refresh().await.is_err() {
                    self.violations.push(format!(
                        "slot {slot}: the process could not catch up at the end"
                    ));
                }
            }
            self.snapshot_of(slot, "at the end");
        }
        {
            let mut rival = lock(&self.world.rival);
            // A rival that acted has a state of its own, folded incrementally: check it too.
            let acted = !rival.acks.is_empty() || rival.state().last_seq > 1;
            self.acks.append(&mut rival.acks);
            if acted {
                rival.catch_up(&self.world.store);
                self.snapshots
                    .push(("the rival (at the end)".into(), rival.state().clone()));
            }
        }
        for ticket in &self.tickets {
            if !ticket.answered {
                self.violations.push(format!(
                    "command {} ({}) never got an outcome in {} attempts",
                    ticket.command.command_id, ticket.json["type"], ticket.attempts
                ));
            }
        }
        let records = self.world.store.all();
        let head = self.world.store.head_now();

        let landed = lock(&self.world.faults).landed.clone();
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(check::chain_violations(ORIGIN, &records, head));
        violations.extend(check::replay_violations(&records, &self.snapshots));
        violations.extend(check::ack_violations(
            &records,
            &self.acks,
            &self.opened,
            &landed,
        ));
        for slot in 0..self.processes.len() {
            if let Some(ledger) = self.retire(slot, "closing") {
                ledger.close().await;
            }
        }
        self.report.faults = lock(&self.world.faults).counts.clone();
        self.report.acks = self.acks.len() as u64;
        self.report.records = records.len() as u64;
        RunResult {
            config: self.config,
            report: self.report,
            violations,
            records,
        }
    }
}
