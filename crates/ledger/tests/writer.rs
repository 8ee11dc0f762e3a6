//! Tests of the single writer on real stores: the built-in catalogue as the first record,
//! idempotency by `command_id` (in memory and across a restart), group commit, and several
//! writers on one database never passing a cap (SQLite file and scratch PostgreSQL database).

mod support;

use std::sync::Arc;

use fundledger_events::{ChainVerifier, Head};
use fundledger_ledger::{Clock, Code, Command, Ledger, Outcome, WriterOptions, GENESIS_COMMAND_ID};
use fundledger_policy::BUILTIN_CATALOGUE;
use fundledger_projections::LedgerState;
use fundledger_store::EventStore;
use serde_json::{json, Value};
use support::*;

const CLOCK_AT: &str = "2024-06-01T10:00:00+08:00";

fn fixed_clock() -> Clock {
    Arc::new(|| time(CLOCK_AT))
}

fn options() -> WriterOptions {
    WriterOptions {
        clock: fixed_clock(),
        ..Default::default()
    }
}

/// A temporary directory and the URL of a ledger file in it.
fn sqlite_place() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/l.db", dir.path().display());
    (dir, url)
}

async fn open_store(url: &str) -> Arc<dyn EventStore> {
    let store = fundledger_store::open(url, ORIGIN)
        .await
        .unwrap_or_else(|error| panic!("the store at {url} opens: {error}"));
    Arc::from(store)
}

async fn open_ledger(store: &Arc<dyn EventStore>) -> Ledger {
    Ledger::open(store.clone(), options())
        .await
        .expect("the ledger opens")
}

fn parse(command: &Value) -> Command {
    Command::parse(command).unwrap_or_else(|rejection| panic!("{command}: {rejection:?}"))
}

async fn execute(ledger: &Ledger, command: &Value) -> Outcome {
    ledger
        .execute(parse(command))
        .await
        .unwrap_or_else(|error| panic!("{command}: {error}"))
}

async fn head(store: &Arc<dyn EventStore>) -> Head {
    store.head().await.expect("the head")
}

/// Every stored record, checked link by link; the state they replay to.
async fn verified_log(store: &Arc<dyn EventStore>) -> LedgerState {
    let records = store.read(1, 1_000_000).await.expect("the log reads");
    let mut verifier = ChainVerifier::new(store.origin());
    for record in &records {
        verifier.check_record(record).expect("a valid chain");
    }
    assert_eq!(verifier.head(), head(store).await);
    LedgerState::replay(&records).expect("the log replays")
}

fn code(outcome: &Outcome) -> Option<Code> {
    outcome.code()
}

#[tokio::test]
async fn a_new_ledger_starts_with_the_builtin_catalogue_once() {
    let (_dir, url) = sqlite_place();
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    let records = store.read(1, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    let body = &records[0].body;
    assert_eq!(body["type"], "policy_registered");
    assert_eq!(body["catalogue"], BUILTIN_CATALOGUE);
    assert_eq!(body["command_id"], GENESIS_COMMAND_ID);
    assert_eq!(body["recorded_at"], CLOCK_AT);
    assert_eq!(body["actor"]["id"], "fundledger");
    assert_eq!(records[0].prev, Head::empty(ORIGIN).hash);
    assert_eq!(ledger.snapshot().last_seq, 1);
    assert_eq!(ledger.origin(), ORIGIN);
    // The ledger works at once.
    let outcome = execute(&ledger, &allocate("M2", 2024, "1000000")).await;
    assert!(outcome.is_accepted(), "{outcome:?}");
    assert_eq!(outcome.seqs, vec![2]);
    ledger.close().await;
    drop(store);

    // Opening it again registers nothing more.
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    assert_eq!(head(&store).await.seq, 2);
    assert_eq!(ledger.snapshot().last_seq, 2);
    ledger.close().await;
}

#[tokio::test]
async fn the_same_command_twice_gets_the_same_outcome_and_appends_nothing() {
    let (_dir, url) = sqlite_place();
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    let uscc = firm(1);
    let allocation = allocate("M2", 2024, "1000000");
    let first = execute(&ledger, &allocation).await;
    assert!(first.is_accepted());
    assert_eq!(execute(&ledger, &allocation).await, first);
    assert_eq!(head(&store).await.seq, 2);

    // A recorded refusal too: the same code, message and seq.
    let too_much = voucher("A-1", &uscc, "200000.01", "1000000");
    let refused = execute(&ledger, &too_much).await;
    assert_eq!(code(&refused), Some(Code::ExceedsRate));
    assert_eq!(refused.seqs, vec![3]);
    assert_eq!(execute(&ledger, &too_much).await, refused);
    assert_eq!(head(&store).await.seq, 3);
    assert_eq!(refused.http_status(), 422);
    ledger.close().await;
}

#[tokio::test]
async fn the_same_id_with_other_content_is_an_idempotency_conflict() {
    let (_dir, url) = sqlite_place();
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    let uscc = firm(1);
    let accepted = allocate("M2", 2024, "1000000");
    let refused = voucher("A-1", &uscc, "200000.01", "1000000");
    let rejected = with_actor(allocate("M2", 2024, "1"), auditor("aud.qian"));
    for command in [&accepted, &refused, &rejected] {
        execute(&ledger, command).await;
    }
    let seq = head(&store).await.seq;
    assert_eq!(seq, 3);
    let mut changed = Vec::new();
    for command in [&accepted, &refused, &rejected] {
        let mut other = command.clone();
        other["at"] = json!("2024-06-02T10:00:00+08:00");
        changed.push(other);
    }
    let mut other_amount = accepted.clone();
    other_amount["amount"] = json!("2000000");
    changed.push(other_amount);
    for command in &changed {
        let outcome = execute(&ledger, command).await;
        assert_eq!(code(&outcome), Some(Code::IdempotencyConflict), "{command}");
        assert!(outcome.seqs.is_empty());
        assert_eq!(outcome.http_status(), 409);
        assert_eq!(
            outcome.command_id.as_deref(),
            command["command_id"].as_str()
        );
    }
    assert_eq!(head(&store).await.seq, seq);
    // The first outcomes still stand.
    assert!(execute(&ledger, &accepted).await.is_accepted());
    ledger.close().await;
}

#[tokio::test]
async fn a_rejected_command_repeated_gets_its_first_outcome() {
    let (_dir, url) = sqlite_place();
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    let uscc = firm(1);
    let forbidden = with_actor(allocate("M2", 2024, "1"), auditor("aud.qian"));
    let first = execute(&ledger, &forbidden).await;
    assert_eq!(code(&first), Some(Code::Forbidden));
    assert_eq!(execute(&ledger, &forbidden).await, first);

    // Even when the state has changed meanwhile: the first outcome is the answer.
    execute(&ledger, &voucher("A-1", &uscc, "200000", "1000000")).await;
    execute(&ledger, &review("A-1", GXJ, true)).await;
    let approval = approve("A-1", GXJ, "200000");
    let short = execute(&ledger, &approval).await;
    assert_eq!(code(&short), Some(Code::InsufficientBudget));
    assert!(execute(&ledger, &allocate("M2", 2024, "1000000"))
        .await
        .is_accepted());
    assert_eq!(execute(&ledger, &approval).await, short);
    let seq = head(&store).await.seq;
    // A new command id decides afresh.
    let again = execute(&ledger, &with_field(approval, "amount", json!("200000"))).await;
    assert!(again.is_accepted(), "{again:?}");
    assert_eq!(again.seqs, vec![seq + 1]);
    ledger.close().await;
}

#[tokio::test]
async fn idempotency_survives_a_restart() {
    let (_dir, url) = sqlite_place();
    let uscc = firm(1);
    let allocation = allocate("M2", 2024, "1000000");
    let submission = voucher("A-1", &uscc, "200000", "1000000");
    let refused = voucher("A-2", &uscc, "900000", "5000000");
    let (accepted_outcome, refused_outcome) = {
        let store = open_store(&url).await;
        let ledger = open_ledger(&store).await;
        execute(&ledger, &allocation).await;
        let accepted = execute(&ledger, &submission).await;
        let refusal = execute(&ledger, &refused).await;
        assert_eq!(code(&refusal), Some(Code::ExceedsFirmAnnualCap));
        ledger.close().await;
        (accepted, refusal)
    };
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    let seq = head(&store).await.seq;
    assert_eq!(seq, 4);
    let again = execute(&ledger, &submission).await;
    assert_eq!(again, accepted_outcome);
    assert_eq!(again.seqs, vec![3]);
    let again = execute(&ledger, &refused).await;
    assert_eq!(code(&again), Some(Code::ExceedsFirmAnnualCap));
    assert_eq!(again.seqs, refused_outcome.seqs);
    assert_eq!(again, refused_outcome);
    // The fingerprint is in the log: a changed command under an old id is still a conflict.
    let mut changed = submission.clone();
    changed["amount"] = json!("100000");
    let conflict = execute(&ledger, &changed).await;
    assert_eq!(code(&conflict), Some(Code::IdempotencyConflict));
    assert_eq!(head(&store).await.seq, seq);
    ledger.close().await;
}

#[tokio::test]
async fn commands_queued_together_are_decided_and_appended_as_batches() {
    let (_dir, url) = sqlite_place();
    let store = open_store(&url).await;
    let ledger = open_ledger(&store).await;
    execute(&ledger, &allocate("M2", 2024, "50000000")).await;
    let batches_before = ledger
        .metrics()
        .batches_total
        .load(std::sync::atomic::Ordering::Relaxed);
    let records_before = ledger
        .metrics()
        .batch_records_sum
        .load(std::sync::atomic::Ordering::Relaxed);

    // 60 submissions of distinct firms (two of them over the rate: recorded refusals), a
    // repeat of one of them, a forbidden command and its repeat, and a conflicting reuse of
    // an id: all queued before the writer runs (this is a single-threaded runtime, and
    // `try_enqueue` does not yield).
    let mut commands: Vec<Value> = (1..=60)
        .map(|n| {
            let amount = if n % 30 == 0 { "300000" } else { "100000" };
            voucher(&format!("A-{n}"), &firm(n), amount, "1000000")
        })
        .collect();
    commands.push(commands[0].clone());
    let forbidden = with_actor(allocate("M2", 2024, "1"), auditor("aud.qian"));
    commands.push(forbidden.clone());
    commands.push(forbidden.clone());
    let mut conflicting = commands[1].clone();
    conflicting["amount"] = json!("1000");
    commands.push(conflicting);
    let pending: Vec<_> = commands
        .iter()
        .map(|command| {
            ledger
                .try_enqueue(parse(command))
                .expect("room in the queue")
        })
        .collect();
    let mut outcomes = Vec::new();
    for waiting in pending {
        outcomes.push(waiting.outcome().await.expect("an outcome"));
    }
    assert_eq!(outcomes.len(), commands.len());
    for (command, outcome) in commands.iter().zip(&outcomes) {
        assert_eq!(
            outcome.command_id.as_deref(),
            command["command_id"].as_str()
        );
    }
    let accepted = outcomes.iter().filter(|o| o.is_accepted()).count();
    assert_eq!(accepted, 59, "58 submissions and the repeat of the first");
    assert_eq!(outcomes[60], outcomes[0]);
    assert_eq!(code(&outcomes[29]), Some(Code::ExceedsRate));
    assert_eq!(code(&outcomes[59]), Some(Code::ExceedsRate));
    assert_eq!(code(&outcomes[61]), Some(Code::Forbidden));
    assert_eq!(outcomes[62], outcomes[61]);
    assert_eq!(code(&outcomes[63]), Some(Code::IdempotencyConflict));
    // Each submission got its own seq, in queue order, with nothing in between.
    let seqs: Vec<u64> = outcomes[..60].iter().flat_map(|o| o.seqs.clone()).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + 60).collect::<Vec<_>>());

    let batches = ledger
        .metrics()
        .batches_total
        .load(std::sync::atomic::Ordering::Relaxed)
        - batches_before;
    let records = ledger
        .metrics()
        .batch_records_sum
        .load(std::sync::atomic::Ordering::Relaxed)
        - records_before;
    assert_eq!(records, 60);
    assert!(
        (1..60).contains(&batches),
        "{batches} appends for 60 records"
    );

    // The chain holds, and the log replays to the published state.
    let replayed = verified_log(&store).await;
    let snapshot = ledger.snapshot();
    assert_eq!(replayed.last_seq, snapshot.last_seq);
    assert_eq!(replayed.application_rows(), snapshot.application_rows());
    assert_eq!(replayed.queue_rows(), snapshot.queue_rows());
    assert_eq!(replayed.firm_rows(), snapshot.firm_rows());
    ledger.close().await;
}

/// Two ledgers (two writers) on one database race ten vouchers of 300,000 for one firm
/// against the yearly cap of 1,000,000: exactly three get in, whatever the interleaving.
async fn race_for_the_voucher_cap(url: &str) {
    let store_a = open_store(url).await;
    let ledger_a = open_ledger(&store_a).await;
    let store_b = open_store(url).await;
    let ledger_b = open_ledger(&store_b).await;
    assert_eq!(ledger_b.snapshot().last_seq, 1, "one catalogue, not two");
    assert!(execute(&ledger_a, &allocate("M2", 2024, "10000000"))
        .await
        .is_accepted());
    let uscc = firm(7);
    let mut tasks = Vec::new();
    for n in 0..10 {
        let ledger = if n % 2 == 0 {
            ledger_a.clone()
        } else {
            ledger_b.clone()
        };
        let command = parse(&voucher(&format!("A-{n}"), &uscc, "300000", "1500000"));
        tasks.push(tokio::spawn(async move { ledger.execute(command).await }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the task ends").expect("an outcome"));
    }
    let accepted = outcomes.iter().filter(|o| o.is_accepted()).count();
    assert_eq!(accepted, 3, "{outcomes:#?}");
    for outcome in outcomes.iter().filter(|o| !o.is_accepted()) {
        assert_eq!(
            code(outcome),
            Some(Code::ExceedsFirmAnnualCap),
            "{outcome:?}"
        );
        assert_eq!(outcome.seqs.len(), 1, "a recorded refusal");
    }
    let mut seqs: Vec<u64> = outcomes.iter().flat_map(|o| o.seqs.clone()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (3..13).collect::<Vec<_>>());

    let conflicts = |ledger: &Ledger| {
        ledger
            .metrics()
            .conflicts_total
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // Informative only: how often a writer found the head moved and decided again.
    eprintln!(
        "append conflicts: {} + {}",
        conflicts(&ledger_a),
        conflicts(&ledger_b)
    );
    ledger_a.refresh().await.expect("refresh");
    ledger_b.refresh().await.expect("refresh");
    let (a, b) = (ledger_a.snapshot(), ledger_b.snapshot());
    assert_eq!(a.last_seq, 12);
    assert_eq!(a.last_seq, b.last_seq);
    assert_eq!(a.last_hash, b.last_hash);
    assert_eq!(a.firm_rows(), b.firm_rows());
    assert_eq!(a.application_rows(), b.application_rows());
    let claimed = a.firm_row(&uscc).expect("the firm").voucher_claimed;
    assert_eq!(claimed.get("2024").map(String::as_str), Some("900000.00"));
    let replayed = verified_log(&store_a).await;
    assert_eq!(replayed.firm_rows(), a.firm_rows());
    assert!(fundledger_projections::invariants::violations(&replayed).is_empty());

    // After the race both writers keep deciding on the latest state.
    let one_more = execute(&ledger_b, &voucher("A-10", &uscc, "100000", "1500000")).await;
    assert!(one_more.is_accepted(), "{one_more:?}");
    let over = execute(&ledger_a, &voucher("A-11", &uscc, "0.01", "1500000")).await;
    assert_eq!(code(&over), Some(Code::ExceedsFirmAnnualCap));
    ledger_a.close().await;
    ledger_b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_sqlite_file_never_pass_the_cap() {
    let (_dir, url) = sqlite_place();
    race_for_the_voucher_cap(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_postgres_database_never_pass_the_cap() {
    // Fails, never skips, when PostgreSQL is down: the message says how to start it.
    let db = fundledger_store::testing::scratch_postgres()
        .await
        .unwrap_or_else(|error| panic!("a scratch PostgreSQL database: {error}"));
    race_for_the_voucher_cap(db.url()).await;
    db.cleanup().await.expect("the scratch database is dropped");
}
