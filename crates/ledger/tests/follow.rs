//! Followers: a process that did not write a record still serves it promptly. On PostgreSQL the
//! append notification alone carries the news (the fallback poll is set to an hour, so only the
//! notification can make these tests pass); on SQLite, which has no notifications, the poll
//! does. Waits are bounded by a generous safety limit, never asserted as timings.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fundledger_ledger::{spawn_follower, Clock, Command, Ledger, WriterOptions};
use fundledger_store::EventStore;
use serde_json::Value;
use support::*;

/// Longest a follower may take to show a record written elsewhere before the test gives up.
const FOLLOW_LIMIT: Duration = Duration::from_secs(60);

fn options() -> WriterOptions {
    let clock: Clock = Arc::new(|| time("2024-06-01T10:00:00+08:00"));
    WriterOptions {
        clock,
        ..Default::default()
    }
}

async fn open(url: &str) -> (Arc<dyn EventStore>, Ledger) {
    let store: Arc<dyn EventStore> = Arc::from(
        fundledger_store::open(url, ORIGIN)
            .await
            .unwrap_or_else(|error| panic!("the store at {url} opens: {error}")),
    );
    let ledger = Ledger::open(store.clone(), options())
        .await
        .expect("the ledger opens");
    (store, ledger)
}

async fn execute(ledger: &Ledger, command: &Value) {
    let command = Command::parse(command).unwrap_or_else(|r| panic!("{command}: {r:?}"));
    let outcome = ledger.execute(command).await.expect("an outcome");
    assert!(outcome.is_accepted(), "{outcome:?}");
}

/// Waits until `ledger`'s published snapshot reaches `seq`; false after [`FOLLOW_LIMIT`].
async fn reaches(ledger: &Ledger, seq: u64) -> bool {
    let deadline = Instant::now() + FOLLOW_LIMIT;
    while Instant::now() < deadline {
        if ledger.snapshot().last_seq >= seq {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Process B writes; process A, which only follows, shows every record B wrote.
async fn a_follower_sees_what_another_writer_appends(url: &str, poll_interval: Duration) {
    let (store_a, follower_ledger) = open(url).await;
    let (_store_b, writer_ledger) = open(url).await;
    let follower = spawn_follower(follower_ledger.clone(), store_a, poll_interval);
    for (round, measure) in ["M2", "M5", "M7"].into_iter().enumerate() {
        execute(&writer_ledger, &allocate(measure, 2024, "1000000")).await;
        let written = writer_ledger.snapshot();
        assert!(
            reaches(&follower_ledger, written.last_seq).await,
            "round {round}: the follower stayed at seq {} while the writer reached {}",
            follower_ledger.snapshot().last_seq,
            written.last_seq
        );
        let followed = follower_ledger.snapshot();
        assert_eq!(followed.last_hash, written.last_hash);
        assert_eq!(followed.budget_rows(), written.budget_rows());
    }
    // The follower's own writes still decide on the latest state.
    execute(&follower_ledger, &allocate("M8", 2024, "1000000")).await;
    assert_eq!(follower_ledger.snapshot().budget_rows().len(), 4);
    follower.abort();
    let _ = follower.await;
    follower_ledger.close().await;
    writer_ledger.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_append_notification_alone_brings_the_news() {
    let db = fundledger_store::testing::scratch_postgres()
        .await
        .unwrap_or_else(|error| panic!("a scratch PostgreSQL database: {error}"));
    a_follower_sees_what_another_writer_appends(db.url(), Duration::from_secs(3_600)).await;
    db.cleanup().await.expect("the scratch database is dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_poll_brings_the_news() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/l.db", dir.path().display());
    a_follower_sees_what_another_writer_appends(&url, Duration::from_millis(20)).await;
}
