//! Crash test (issue 7): the real `fundledger serve` under concurrent write load, killed with
//! SIGKILL at moments drawn from a seeded RNG — at least 50 times on SQLite and 50 times on
//! PostgreSQL — and restarted on the same store each time. After every restart:
//!
//! - every command answered 200 is in the log with exactly the seqs its outcome named, and so
//!   is every rule refusal that was recorded (a 4xx whose outcome names seqs); a 4xx with no
//!   seqs left nothing in the log;
//! - no command is half-written: each command_id's records are contiguous and it appears in the
//!   log once; every command in the log after the demo was acknowledged or in flight;
//! - the chain verifies, in process after every restart, with `fundledger verify --store`
//!   every [`VERIFY_EVERY`] restarts and at the end (see [`VERIFY_EVERY`] for why);
//! - every command in flight at the kill, retried twice after the restart, gets the same
//!   answer both times, and that answer names the seqs the log holds for it;
//! - the projections hold their invariants (no budget overspent, no firm past its yearly
//!   voucher cap) and the restarted service serves exactly what a replay of the log gives;
//! - `serve --demo` does not write the demo again: it serves the existing ledger with fresh
//!   tokens.
//!
//! A third test cuts the service's PostgreSQL connections while they are inside a transaction
//! (`pg_terminate_backend`, through `psql`) under the same load, without killing the service.
//!
//! The load: two demo applicants submit compute vouchers (fiscal years 2026 and 2027, so the
//! firm's 1,000,000 yearly cap fills and later submissions are refused and recorded), a bureau
//! reviews, approves or rejects them, and finance allocates the M2 2027 budget (small, so
//! approvals race for it) and orders payouts of approved vouchers.
//!
//! Reproduce: the seed is printed; `CRASH_SEED=N cargo test -p fundledger-cli --test crash`
//! replays the same kill moments and workload choices (the interleaving of the client threads
//! is the OS's). `CRASH_KILLS=N` sets the kills per backend (default 50).

mod serving;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::process::Command as Process;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundledger_demo::cast::{FirmSpec, HUIYI, TIANSHU};
use fundledger_events::{ChainVerifier, Head, Record};
use fundledger_projections::LedgerState;
use futures_free::collect_store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use serving::{try_request, Server};

/// Kills per backend unless `CRASH_KILLS` says otherwise.
const DEFAULT_KILLS: usize = 50;
/// The kill comes 0 to this many ms after the load started.
const KILL_DELAY_MS_MAX: u64 = 400;
/// `fundledger verify --store` runs after every this many restarts and at the end. Every
/// restart already checks the chain in process with the same `ChainVerifier` the binary uses,
/// incrementally (new records, plus the old head still in place); the binary re-reads the whole
/// log from seq 1 through its own store connection, which costs a debug-build process start
/// and a full pass — ten of those per backend keep CI time bounded.
const VERIFY_EVERY: usize = 10;
/// Acknowledged commands retried after each restart (their first answer must come back).
const ACKED_RETRIES_PER_RESTART: usize = 3;
/// The yearly compute-voucher cap per firm (DESIGN §2).
const VOUCHER_CAP_YUAN: i64 = 1_000_000;
/// Connection cuts in the PostgreSQL cut test.
const CUTS: usize = 20;

/// The principals the load acts as (demo cast ids).
const REVIEWER: &str = "rev.gxj.zhang";
const APPROVER: &str = "appr.gxj.zhou";
const ALLOCATOR: &str = "fin.wang";
const PAYER: &str = "fin.chen";
const AUDITOR: &str = "audit.qian";

#[test]
fn sqlite_loses_nothing_acknowledged_across_sigkills() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let report = sigkill_run("sqlite", &url, dir.path());
    eprintln!("{report}");
}

#[test]
fn postgres_loses_nothing_acknowledged_across_sigkills() {
    let runtime = runtime();
    let db = runtime
        .block_on(fundledger_store::testing::scratch_postgres())
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = sigkill_run("postgres", db.url(), dir.path());
    eprintln!("{report}");
    runtime
        .block_on(db.cleanup())
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn postgres_survives_connections_cut_mid_transaction() {
    let runtime = runtime();
    let db = runtime
        .block_on(fundledger_store::testing::scratch_postgres())
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = cut_run(db.url(), dir.path());
    eprintln!("{report}");
    runtime
        .block_on(db.cleanup())
        .unwrap_or_else(|error| panic!("{error}"));
}

// ---------------------------------------------------------------------------------------------
// The runs

/// Kills `serve` under load `CRASH_KILLS` times on the store at `url`, checking after each
/// restart; returns a one-line report.
fn sigkill_run(backend: &str, url: &str, dir: &Path) -> String {
    let seed = seed();
    let kills = kills();
    eprintln!("crash[{backend}]: CRASH_SEED={seed} CRASH_KILLS={kills}");
    let started = Instant::now();
    let runtime = runtime();
    let mut rng = StdRng::seed_from_u64(seed);
    let work = Arc::new(Work::default());
    let mut log = LogMirror::default();

    let mut server = Server::start_demo(dir, url);
    log.read_new(&runtime, url, "after the demo");
    let demo_head = log.head().seq;
    assert!(
        demo_head > 100,
        "serve --demo wrote the demo into the empty store (head {demo_head})"
    );
    log.demo_head = demo_head;
    check_service(&server, &log, "after the demo");

    let mut stats = Stats::default();
    for kill in 1..=kills {
        let at = format!("{backend}, seed {seed}, kill {kill}");
        let delay = Duration::from_millis(rng.gen_range(0..=KILL_DELAY_MS_MAX));
        let load = Load::start(&server, &work, rng.gen());
        std::thread::sleep(delay);
        let status = server.kill_hard();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{at}: the service died of SIGKILL"
        );
        load.stop();
        stats.kills += 1;

        let old_tokens: HashSet<String> = server.tokens.iter().map(|t| t.token.clone()).collect();
        server = Server::start_demo(dir, url);
        log.read_new(&runtime, url, &at);
        check_restart_banner(&server, &log, &old_tokens, &at);
        check_journal(&work, &log, false, &at);
        // Before the retries, which may append: the service's head is the one just read.
        check_service(&server, &log, &at);
        retry_in_flight(&server, &work, &log, &mut stats, &at);
        retry_acknowledged(&server, &work, &mut rng, &mut stats, &at);
        if kill % VERIFY_EVERY == 0 {
            verify_with_binary(url, log.head().seq, &at);
            stats.verified += 1;
        }
    }

    // The retries after the last restart appended too: read them, then stop cleanly.
    let at = format!("{backend}, seed {seed}, at the end");
    log.read_new(&runtime, url, &at);
    check_journal(&work, &log, true, &at);
    check_service(&server, &log, &at);
    let status = server.terminate();
    assert!(
        status.success(),
        "{at}: SIGTERM exits 0: {status}\n{}",
        server.stderr()
    );
    verify_with_binary(url, log.head().seq, &at);
    stats.verified += 1;
    assert!(
        stats.in_flight > 0,
        "{at}: no kill caught a command in flight, so nothing was retried; the test proved less \
         than it claims (raise CRASH_KILLS or KILL_DELAY_MS_MAX)"
    );
    finish_report(backend, seed, &work, &log, &stats, started)
}

/// Cuts the service's PostgreSQL connections mid-transaction [`CUTS`] times under load.
fn cut_run(url: &str, dir: &Path) -> String {
    let seed = seed();
    eprintln!("crash[postgres cut]: CRASH_SEED={seed}");
    let started = Instant::now();
    let runtime = runtime();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00c0_ffee);
    let work = Arc::new(Work::default());
    let mut log = LogMirror::default();
    let server = Server::start_demo(dir, url);
    log.read_new(&runtime, url, "after the demo");
    log.demo_head = log.head().seq;

    let mut stats = Stats::default();
    let load = Load::start(&server, &work, rng.gen());
    let mut cuts_in_transaction = 0;
    for _ in 0..CUTS {
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..=150)));
        // Only sessions inside a transaction (the writer between BEGIN and COMMIT, or a read);
        // psql's own session is excluded by pid.
        let cut = psql(
            url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND xact_start IS NOT NULL",
        );
        if cut.trim() != "0" {
            cuts_in_transaction += 1;
        }
    }
    load.stop();
    let at = format!("postgres cut, seed {seed}");
    log.read_new(&runtime, url, &at);
    check_journal(&work, &log, false, &at);
    retry_in_flight(&server, &work, &log, &mut stats, &at);
    retry_acknowledged(&server, &work, &mut rng, &mut stats, &at);
    log.read_new(&runtime, url, &at);
    check_journal(&work, &log, true, &at);
    check_service(&server, &log, &at);
    verify_with_binary(url, log.head().seq, &at);
    assert!(
        cuts_in_transaction > 0,
        "{at}: no cut found a session inside a transaction; the test proved nothing"
    );
    let failed_appends = server.stderr().matches("append failed").count();
    let report = finish_report("postgres cut", seed, &work, &log, &stats, started);
    // No kills here: the service lived through every cut.
    report.replacen(
        "0 kills survived",
        &format!(
            "{CUTS} connection cuts survived ({cuts_in_transaction} found sessions inside a \
             transaction, {failed_appends} appends failed and were answered 503)"
        ),
        1,
    )
}

fn finish_report(
    backend: &str,
    seed: u64,
    work: &Work,
    log: &LogMirror,
    stats: &Stats,
    started: Instant,
) -> String {
    let journal = lock(&work.journal);
    let acknowledged = journal
        .values()
        .filter(|sent| matches!(sent.known(), Known::Logged(_) | Known::NotLogged))
        .count();
    let recorded = journal
        .values()
        .filter(|sent| matches!(sent.known(), Known::Logged(_)))
        .count();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for sent in journal.values() {
        if let Answer::Answered { body, .. } = &sent.answer {
            let code = body["code"].as_str().unwrap_or("accepted").to_string();
            *outcomes.entry(code).or_default() += 1;
        }
    }
    format!(
        "crash[{backend}]: seed {seed}: {} kills survived; {} commands sent, {} answered at once, \
         all {acknowledged} answered ones checked against the log ({recorded} recorded; \
         outcomes {outcomes:?}); {} in flight at a kill, retried twice ({} had landed before the \
         kill); {} acknowledged commands retried; {} records after the demo's {}; verify ×{}; \
         {:.1} s",
        stats.kills,
        journal.len(),
        journal.len() - stats.in_flight,
        stats.in_flight,
        stats.in_flight_landed,
        stats.acked_retried,
        log.head().seq - log.demo_head,
        log.demo_head,
        stats.verified,
        started.elapsed().as_secs_f64()
    )
}

#[derive(Default)]
struct Stats {
    kills: usize,
    in_flight: usize,
    in_flight_landed: usize,
    acked_retried: usize,
    verified: usize,
}

// ---------------------------------------------------------------------------------------------
// What the clients sent and heard

/// The answer to one posted command.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    /// Sent (or about to be); no whole answer came back.
    InFlight,
    /// A whole HTTP answer.
    Answered { status: u16, body: Value },
}

/// What the log must hold for a command, given its answer.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    /// Recorded at exactly these seqs (200, or a 4xx refusal that names seqs).
    Logged(Vec<u64>),
    /// Refused without a record (a 4xx with no seqs).
    NotLogged,
    /// In flight, or a 503: it may or may not have landed.
    Unknown,
}

#[derive(Clone, Debug)]
struct Sent {
    /// The demo principal whose token posted it.
    principal: String,
    /// The body as posted.
    command: Value,
    answer: Answer,
}

impl Sent {
    fn known(&self) -> Known {
        match &self.answer {
            Answer::InFlight => Known::Unknown,
            Answer::Answered { status, body } => known_from(*status, body),
        }
    }
}

fn known_from(status: u16, body: &Value) -> Known {
    let seqs: Vec<u64> = body
        .get("seqs")
        .and_then(Value::as_array)
        .map(|seqs| seqs.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    match status {
        200 => Known::Logged(seqs),
        503 => Known::Unknown,
        400..=499 if seqs.is_empty() => Known::NotLogged,
        400..=499 => Known::Logged(seqs),
        _ => Known::Unknown,
    }
}

/// Everything the load did, shared by its threads and kept across restarts.
#[derive(Default)]
struct Work {
    /// command_id → what was sent and heard.
    journal: Mutex<HashMap<String, Sent>>,
    /// Accepted submissions not yet reviewed: (application_id, amount in yuan).
    to_review: Mutex<VecDeque<(String, u64)>>,
    /// Approved applications not yet paid: (application_id, amount in yuan).
    to_pay: Mutex<VecDeque<(String, u64)>>,
    /// Numbers application, contract and payout ids.
    next_number: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The load's view of one running service: its address and the tokens it printed.
#[derive(Clone)]
struct Client {
    address: String,
    tokens: HashMap<String, String>,
}

impl Client {
    fn of(server: &Server) -> Client {
        Client {
            address: server.address.clone(),
            tokens: server
                .tokens
                .iter()
                .map(|t| (t.id.clone(), t.token.clone()))
                .collect(),
        }
    }

    /// Posts `command` as `principal` once; `None` when no whole answer came back.
    fn post(&self, principal: &str, command: &Value) -> Option<(u16, Value)> {
        let token = self
            .tokens
            .get(principal)
            .unwrap_or_else(|| panic!("no demo token for {principal}"));
        let body = command.to_string();
        let response = try_request(
            &self.address,
            "POST",
            "/v1/commands",
            Some(token),
            Some(("application/json", body.as_bytes())),
        )
        .ok()?;
        let answer = serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| Value::String(response.text()));
        Some((response.status, answer))
    }

    /// Journals `command`, posts it, and journals the answer.
    fn send(&self, work: &Work, principal: &str, command: Value) -> Option<(u16, Value)> {
        let command_id = command["command_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a command without command_id: {command}"))
            .to_string();
        lock(&work.journal).insert(
            command_id.clone(),
            Sent {
                principal: principal.to_string(),
                command: command.clone(),
                answer: Answer::InFlight,
            },
        );
        let answered = self.post(principal, &command)?;
        if let Some(sent) = lock(&work.journal).get_mut(&command_id) {
            sent.answer = Answer::Answered {
                status: answered.0,
                body: answered.1.clone(),
            };
        }
        Some(answered)
    }
}

// ---------------------------------------------------------------------------------------------
// The load

/// The client threads of one life of the service.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts two applicants, a bureau and finance posting against `server`.
    fn start(server: &Server, work: &Arc<Work>, seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let client = Client::of(server);
        let mut threads = Vec::new();
        let roles: [fn(&Client, &Work, &mut StdRng, &AtomicBool); 4] = [
            |c, w, r, s| applicant(c, w, r, s, &TIANSHU),
            |c, w, r, s| applicant(c, w, r, s, &HUIYI),
            bureau,
            finance,
        ];
        for (index, role) in roles.into_iter().enumerate() {
            let client = client.clone();
            let work = Arc::clone(work);
            let stop = Arc::clone(&stop);
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(index as u64));
            threads.push(std::thread::spawn(move || {
                role(&client, &work, &mut rng, &stop)
            }));
        }
        Load { stop, threads }
    }

    /// Stops the threads (they also stop on their own once the service is gone) and waits.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// A UUID (version 4 layout) from the seeded RNG.
fn uuid(rng: &mut StdRng) -> String {
    let mut bytes: [u8; 16] = rng.gen();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn yuan(amount: u64) -> String {
    format!("{amount}.00")
}

/// Submits compute vouchers for `firm` until stopped or the service is gone.
fn applicant(client: &Client, work: &Work, rng: &mut StdRng, stop: &AtomicBool, firm: &FirmSpec) {
    let principal = format!("applicant.{}", firm.key);
    while !stop.load(Ordering::SeqCst) {
        let number = work.next_number.fetch_add(1, Ordering::SeqCst);
        let application_id = format!("CRASH-{number:06}");
        let amount = rng.gen_range(5..=30) * 1_000;
        let contract = amount * rng.gen_range(5..=8);
        let command = json!({
            "command_id": uuid(rng),
            "type": "submit_application",
            "application_id": application_id,
            "firm": {"uscc": firm.uscc(), "name": firm.name},
            "provision": "M2.compute_voucher",
            "fiscal_year": if rng.gen_bool(0.5) { 2026 } else { 2027 },
            "amount": yuan(amount),
            "basis": {
                "contract_amount": yuan(contract),
                "contract_id": format!("HT-CRASH-{number:06}"),
                "self_built": false,
                "provincial_voucher": rng.gen_bool(0.3),
            },
        });
        match client.send(work, &principal, command) {
            None => return,
            Some((200, _)) => lock(&work.to_review).push_back((application_id, amount)),
            Some(_) => {}
        }
    }
}

/// Reviews, then approves or rejects, the accepted submissions (市工信局).
fn bureau(client: &Client, work: &Work, rng: &mut StdRng, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let next = lock(&work.to_review).pop_front();
        let Some((application_id, amount)) = next else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let recommend = rng.gen_bool(0.7);
        let review = json!({
            "command_id": uuid(rng),
            "type": "review_application",
            "application_id": application_id,
            "recommend": recommend,
            "note": "crash test review",
        });
        match client.send(work, REVIEWER, review) {
            None => return,
            Some((200, _)) => {}
            // Decided otherwise (e.g. refused); the application stays as it is.
            Some(_) => continue,
        }
        let decided = if recommend {
            let approve = json!({
                "command_id": uuid(rng),
                "type": "approve_application",
                "application_id": application_id,
                "amount": yuan(amount),
            });
            match client.send(work, APPROVER, approve) {
                None => return,
                Some((200, _)) => {
                    lock(&work.to_pay).push_back((application_id, amount));
                    continue;
                }
                // insufficient_budget, most likely: reject it, which releases the claim.
                Some(_) => false,
            }
        } else {
            false
        };
        if !decided {
            let reject = json!({
                "command_id": uuid(rng),
                "type": "reject_application",
                "application_id": application_id,
                "reason": "crash test: not funded",
            });
            if client.send(work, APPROVER, reject).is_none() {
                return;
            }
        }
    }
}

/// Allocates small slices of the M2 2027 budget (smaller than a voucher, so approvals for 2027
/// race for it and some are refused and then rejected, which frees the firm's claim) and
/// orders payouts of approved vouchers.
fn finance(client: &Client, work: &Work, rng: &mut StdRng, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let payable = if rng.gen_bool(0.5) {
            lock(&work.to_pay).pop_front()
        } else {
            None
        };
        let (principal, command) = match payable {
            Some((application_id, amount)) => {
                let number = work.next_number.fetch_add(1, Ordering::SeqCst);
                (
                    PAYER,
                    json!({
                        "command_id": uuid(rng),
                        "type": "order_payout",
                        "payout_id": format!("PO-CRASH-{number:06}"),
                        "application_id": application_id,
                        "amount": yuan(amount),
                    }),
                )
            }
            None => (
                ALLOCATOR,
                json!({
                    "command_id": uuid(rng),
                    "type": "allocate_budget",
                    "measure": "M2",
                    "fiscal_year": 2027,
                    "amount": yuan(rng.gen_range(1..=8) * 1_000),
                }),
            ),
        };
        if client.send(work, principal, command).is_none() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The log, read straight from the store

/// What the test knows of the log: checked up to `verifier.head()`.
#[derive(Default)]
struct LogMirror {
    verifier: Option<ChainVerifier>,
    /// command_id → its seqs, for every command in the log.
    commands: HashMap<String, Vec<u64>>,
    /// command_id of the last record read (a command's records must be contiguous).
    last_command: Option<String>,
    /// The projections, folded from the records read.
    state: LedgerState,
    /// The demo's last seq; the test's commands come after it.
    demo_head: u64,
}

impl LogMirror {
    fn head(&self) -> Head {
        self.verifier
            .as_ref()
            .map(ChainVerifier::head)
            .unwrap_or_else(|| panic!("the log has not been read yet"))
    }

    /// Reads every record after the last one checked from the store at `url` (through a
    /// connection of the test's own, opened and closed here) and checks the chain, the
    /// records' grouping by command and the projections' invariants.
    fn read_new(&mut self, runtime: &tokio::runtime::Runtime, url: &str, at: &str) {
        let (origin, old_head_now, records) = runtime.block_on(async {
            let store = fundledger_store::open_existing(url)
                .await
                .unwrap_or_else(|error| panic!("{at}: cannot open the store: {error}"));
            let from = self.verifier.as_ref().map_or(0, |v| v.head().seq);
            let old_head_now = if from > 0 {
                store
                    .read(from, 1)
                    .await
                    .unwrap_or_else(|error| panic!("{at}: cannot read the store: {error}"))
                    .first()
                    .map(Record::head)
            } else {
                None
            };
            let records = collect_store(store.as_ref(), from + 1)
                .await
                .unwrap_or_else(|error| panic!("{at}: cannot read the store: {error}"));
            (store.origin().to_string(), old_head_now, records)
        });
        let verifier = self
            .verifier
            .get_or_insert_with(|| ChainVerifier::new(&origin));
        let old_head = verifier.head();
        if old_head.seq > 0 {
            assert_eq!(
                old_head_now,
                Some(old_head),
                "{at}: the record at the old head changed or vanished"
            );
        }
        for record in &records {
            verifier
                .check_record(record)
                .unwrap_or_else(|error| panic!("{at}: the chain is broken: {error}"));
            let command_id = record.body["command_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: seq {} has no command_id", record.seq))
                .to_string();
            if self.last_command.as_deref() == Some(command_id.as_str()) {
                if let Some(seqs) = self.commands.get_mut(&command_id) {
                    seqs.push(record.seq);
                }
            } else {
                assert!(
                    !self.commands.contains_key(&command_id),
                    "{at}: command {command_id} is in the log twice, or its records are not \
                     contiguous (again at seq {}; before at {:?})",
                    record.seq,
                    self.commands.get(&command_id)
                );
                self.commands.insert(command_id.clone(), vec![record.seq]);
                self.last_command = Some(command_id);
            }
            self.state
                .apply(record)
                .unwrap_or_else(|error| panic!("{at}: seq {} does not fold: {error}", record.seq));
        }
        let violations = fundledger_projections::invariants::violations(&self.state);
        assert!(
            violations.is_empty(),
            "{at}: the projections break their invariants: {violations:#?}"
        );
    }
}

/// Reading a whole store without the `futures` crate (not a dependency of this package).
mod futures_free {
    use fundledger_events::Record;
    use fundledger_store::{EventStore, StoreError};

    /// Records per read.
    const PAGE_RECORDS: usize = 1_000;

    pub async fn collect_store(
        store: &dyn EventStore,
        from_seq: u64,
    ) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        let mut next = from_seq.max(1);
        loop {
            let page = store.read(next, PAGE_RECORDS).await?;
            let Some(last) = page.last() else {
                return Ok(records);
            };
            next = last.seq + 1;
            let full = page.len() == PAGE_RECORDS;
            records.extend(page);
            if !full {
                return Ok(records);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checks

/// Every answered command is in the log as its answer says; every command of the test in the
/// log was sent. With `settled`, nothing may still be unknown.
fn check_journal(work: &Work, log: &LogMirror, settled: bool, at: &str) {
    let journal = lock(&work.journal);
    for (command_id, sent) in journal.iter() {
        if let Answer::Answered { status, body } = &sent.answer {
            assert!(
                matches!(status, 200 | 400..=499 | 503),
                "{at}: {command_id} was answered {status}: {body}"
            );
            if *status == 200 {
                assert_eq!(body["outcome"], "accepted", "{at}: {body}");
            }
            if (400..=499).contains(status) {
                assert_eq!(body["command_id"], command_id.as_str(), "{at}: {body}");
                assert!(body["code"].is_string(), "{at}: a 4xx names a code: {body}");
            }
        }
        match sent.known() {
            Known::Logged(seqs) => {
                assert!(!seqs.is_empty(), "{at}: {command_id} accepted with no seqs");
                assert_eq!(
                    log.commands.get(command_id),
                    Some(&seqs),
                    "{at}: {command_id} was answered {:?} but the log holds {:?}",
                    sent.answer,
                    log.commands.get(command_id)
                );
            }
            Known::NotLogged => assert!(
                !log.commands.contains_key(command_id),
                "{at}: {command_id} was refused without a record ({:?}) but the log holds it at {:?}",
                sent.answer,
                log.commands.get(command_id)
            ),
            Known::Unknown => assert!(
                !settled,
                "{at}: {command_id} still has no answer: {:?}",
                sent.answer
            ),
        }
    }
    for (command_id, seqs) in &log.commands {
        if seqs[0] > log.demo_head {
            assert!(
                journal.contains_key(command_id),
                "{at}: the log holds {command_id} at {seqs:?}, which no client sent"
            );
        }
    }
}

/// Retries every command whose fate is unknown twice: both answers equal, and they name the
/// seqs the log holds for it (or it was not in the log).
fn retry_in_flight(server: &Server, work: &Work, log: &LogMirror, stats: &mut Stats, at: &str) {
    let client = Client::of(server);
    let unknown: BTreeMap<String, Sent> = lock(&work.journal)
        .iter()
        .filter(|(_, sent)| sent.known() == Known::Unknown)
        .map(|(id, sent)| (id.clone(), sent.clone()))
        .collect();
    for (command_id, sent) in unknown {
        let first = client
            .post(&sent.principal, &sent.command)
            .unwrap_or_else(|| panic!("{at}: retrying {command_id} got no answer"));
        let second = client
            .post(&sent.principal, &sent.command)
            .unwrap_or_else(|| panic!("{at}: retrying {command_id} again got no answer"));
        assert_eq!(
            first, second,
            "{at}: two retries of {command_id} answered differently"
        );
        let known = known_from(first.0, &first.1);
        assert_ne!(
            known,
            Known::Unknown,
            "{at}: a retry of {command_id} on an idle service answered {first:?}"
        );
        if let Some(seqs) = log.commands.get(&command_id) {
            stats.in_flight_landed += 1;
            assert_eq!(
                known,
                Known::Logged(seqs.clone()),
                "{at}: {command_id} landed at {seqs:?} before the kill, but its retry answered \
                 {first:?}"
            );
        }
        stats.in_flight += 1;
        if let Some(entry) = lock(&work.journal).get_mut(&command_id) {
            entry.answer = Answer::Answered {
                status: first.0,
                body: first.1,
            };
        }
    }
}

/// Retries a few recorded commands: the first answer comes back, word for word.
fn retry_acknowledged(server: &Server, work: &Work, rng: &mut StdRng, stats: &mut Stats, at: &str) {
    let client = Client::of(server);
    let mut recorded: Vec<(String, Sent)> = lock(&work.journal)
        .iter()
        .filter(|(_, sent)| matches!(sent.known(), Known::Logged(_)))
        .map(|(id, sent)| (id.clone(), sent.clone()))
        .collect();
    recorded.sort_by(|a, b| a.0.cmp(&b.0));
    for _ in 0..ACKED_RETRIES_PER_RESTART.min(recorded.len()) {
        let (command_id, sent) = recorded.swap_remove(rng.gen_range(0..recorded.len()));
        let again = client
            .post(&sent.principal, &sent.command)
            .unwrap_or_else(|| panic!("{at}: retrying {command_id} got no answer"));
        let Answer::Answered { status, body } = &sent.answer else {
            continue;
        };
        assert_eq!(
            (again.0, &again.1),
            (*status, body),
            "{at}: the retry of recorded command {command_id} answered otherwise than the first time"
        );
        stats.acked_retried += 1;
    }
}

/// `serve --demo` on a non-empty store serves it as it is, with tokens minted anew.
///
/// The count it names may be below the head read afterwards: on PostgreSQL a COMMIT the killed
/// process had already sent can complete on the server after the new process read the head
/// (its writer then meets a conflict and catches up; the follower hears the NOTIFY).
fn check_restart_banner(server: &Server, log: &LogMirror, old_tokens: &HashSet<String>, at: &str) {
    let stderr = server.stderr();
    let held: Option<u64> = stderr.lines().find_map(|line| {
        line.strip_prefix("demo: the store already holds ")?
            .strip_suffix(" records; serving them as they are")?
            .parse()
            .ok()
    });
    assert!(
        held.is_some_and(|held| held > 1 && held <= log.head().seq),
        "{at}: expected \"demo: the store already holds N records; serving them as they are\" \
         with N <= {} in the log of the restarted service:\n{stderr}",
        log.head().seq
    );
    assert!(
        !server.stderr().contains("demo: wrote the demo"),
        "{at}: the demo was written again:\n{}",
        server.stderr()
    );
    for token in &server.tokens {
        assert!(
            !old_tokens.contains(&token.token),
            "{at}: {} got the same token as before the restart",
            token.id
        );
    }
}

/// The running service serves what a replay of the log gives, and its projections hold.
fn check_service(server: &Server, log: &LogMirror, at: &str) {
    let finance = &server.token_of(ALLOCATOR).token;
    let auditor = &server.token_of(AUDITOR).token;
    let summary = server.get_json("/v1/summary", auditor);
    assert_eq!(
        summary["head_seq"],
        log.head().seq,
        "{at}: the service's head is not the store's: {summary}"
    );
    let budgets = server.get_json("/v1/budgets", finance);
    let expected = serde_json::to_value(log.state.budget_rows()).expect("budget rows serialise");
    assert_eq!(
        budgets, expected,
        "{at}: the service's budgets differ from a replay of the log"
    );
    let decimal = |row: &Value, field: &str| {
        row[field]
            .as_str()
            .and_then(|text| Decimal::from_str(text).ok())
            .unwrap_or_else(|| panic!("{at}: budget row without a {field} amount: {row}"))
    };
    for row in budgets.as_array().expect("budgets are an array") {
        let remaining = decimal(row, "remaining");
        assert!(remaining >= Decimal::ZERO, "{at}: overspent budget: {row}");
        assert_eq!(
            remaining,
            decimal(row, "allocated") - decimal(row, "committed") - decimal(row, "paid"),
            "{at}: remaining ≠ allocated − committed − paid: {row}"
        );
    }
    let firms = server.get_json("/v1/firms", auditor);
    let cap = Decimal::from(VOUCHER_CAP_YUAN);
    for row in firms.as_array().expect("firms are an array") {
        for (year, claimed) in row["voucher_claimed"].as_object().into_iter().flatten() {
            let claimed = claimed
                .as_str()
                .and_then(|text| Decimal::from_str(text).ok())
                .unwrap_or_else(|| panic!("{at}: a claim that is not an amount: {row}"));
            assert!(
                claimed <= cap,
                "{at}: {} claimed {claimed} in vouchers for {year}, over the cap: {row}",
                row["uscc"]
            );
        }
    }
}

/// `fundledger verify --store URL` exits 0 over at least `head_seq` records.
fn verify_with_binary(url: &str, head_seq: u64, at: &str) {
    let output = Process::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(["verify", "--store", url])
        .env_remove("FUNDLEDGER_STORE")
        .output()
        .unwrap_or_else(|error| panic!("{at}: cannot run fundledger verify: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{at}: fundledger verify failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let verified: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("head seq: "))
        .and_then(|seq| seq.trim().parse().ok())
        .unwrap_or_else(|| panic!("{at}: verify printed no head seq:\n{stdout}"));
    assert!(
        verified >= head_seq,
        "{at}: verify checked {verified} records, the log holds at least {head_seq}"
    );
}

/// One statement through `psql` on the database at `url`; its output, trimmed.
fn psql(url: &str, sql: &str) -> String {
    let output = Process::new("psql")
        .args(["-X", "-q", "-A", "-t", "-d", url, "-c", sql])
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run psql (the PostgreSQL client; apt-get install postgresql-client): {error}")
        });
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Settings

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `CRASH_SEED`, or one drawn from the clock (printed, so a failure can be replayed).
fn seed() -> u64 {
    match std::env::var("CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CRASH_SEED must be an unsigned integer, got {text:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(62),
    }
}

/// `CRASH_KILLS`, or [`DEFAULT_KILLS`].
fn kills() -> usize {
    match std::env::var("CRASH_KILLS") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CRASH_KILLS must be an unsigned integer, got {text:?}")),
        Err(_) => DEFAULT_KILLS,
    }
}
