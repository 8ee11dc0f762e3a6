//! One conformance suite, run against every backend: each check is a generic function over a
//! [`Harness`] (a fresh, empty place for a ledger plus raw SQL access to the database behind
//! it), and `suite!` makes one test per check per backend.

use async_trait::async_trait;
use fundledger_events::export::ChainVerifier;
use fundledger_events::{jcs, seal_batch, Head, Record};
use futures::TryStreamExt;
use serde_json::{json, Value};

use crate::{open, open_existing, stream, EventStore, StoreError};

const ORIGIN: &str = "conformance-ledger";

/// A fresh place for a ledger, and the database behind it.
#[async_trait]
pub(crate) trait Harness: Send + Sync + Sized {
    /// A place with no ledger yet.
    async fn new() -> Self;
    fn url(&self) -> &str;
    /// Runs SQL straight against the database, bypassing the store.
    async fn exec_raw(&self, sql: &str) -> Result<(), String>;
    /// The first column of the first row of `sql`, as text.
    async fn query_text(&self, sql: &str) -> Result<Option<String>, String>;
    /// SQL installing a trigger that fails any insert of record `seq`, and removing it.
    fn install_fault_sql(&self, seq: u64) -> String;
    fn remove_fault_sql(&self) -> String;
    /// Backend-specific statements that must be refused, with a word the refusal must contain,
    /// given the records stored (seq 1 onwards).
    fn more_refused_sql(&self, stored: &[Record]) -> Vec<(String, &'static str)>;
    async fn finish(self);
}

macro_rules! suite {
    ($harness:ty: $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = <$harness as $crate::conformance::Harness>::new().await;
                $crate::conformance::$check(&harness).await;
                $crate::conformance::Harness::finish(harness).await;
            }
        )*
    };
}

macro_rules! all_checks {
    ($harness:ty) => {
        suite!($harness:
            round_trip,
            conflict_writes_nothing,
            invalid_batch_writes_nothing,
            a_batch_failing_in_the_database_writes_nothing,
            two_appenders_race_and_exactly_one_wins,
            many_writers_retrying_build_one_valid_chain,
            large_batch,
            reopen_keeps_origin_head_and_records,
            read_pages,
            the_database_refuses_edits,
            unreadable_rows_are_reported_as_corrupt,
            open_existing_creates_nothing,
        );
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A body meeting DESIGN §5, with text that JCS must escape and Chinese that it must not.
fn body(seq: u64, tag: &str) -> Value {
    json!({
        "seq": seq,
        "type": "test",
        "recorded_at": "2024-06-01T09:00:00+08:00",
        "command_id": format!("{tag}-{seq}"),
        "actor": {"id": "t", "role": "admin", "unit": "市财政局"},
        "note": "中文\n\"x\"\t\\ \u{1} 郑政文〔2024〕62号 🙂",
        "amount": "1000000.00",
        "z": [1, 2.5, null, true],
        // Numbers in JCS form already (DESIGN keeps floats out of events): what is read back
        // is the body parsed from its canonical text.
        "a": {"b": 1e21, "a": -7},
    })
}

fn batch_on(head: &Head, count: u64, tag: &str) -> Vec<Record> {
    let bodies = (head.seq + 1..=head.seq + count)
        .map(|seq| body(seq, tag))
        .collect();
    seal_batch(head, bodies).expect("test bodies meet §5")
}

async fn create(url: &str) -> Box<dyn EventStore> {
    match open(url, ORIGIN).await {
        Ok(store) => store,
        Err(error) => panic!("open {url}: {error}"),
    }
}

async fn append_ok(store: &dyn EventStore, count: u64, tag: &str) -> Vec<Record> {
    let head = store.head().await.unwrap();
    let batch = batch_on(&head, count, tag);
    let new_head = store.append(head, &batch).await.unwrap();
    assert_eq!(new_head, batch.last().unwrap().head());
    batch
}

async fn read_all(store: &dyn EventStore) -> Vec<Record> {
    stream(store, 1, 1000).try_collect().await.unwrap()
}

/// Checks the whole log as an auditor would (DESIGN §5) and returns it.
async fn assert_valid_chain(store: &dyn EventStore) -> Vec<Record> {
    let records = read_all(store).await;
    let mut verifier = ChainVerifier::new(store.origin());
    for record in &records {
        verifier
            .check_record(record)
            .unwrap_or_else(|error| panic!("{error}"));
    }
    assert_eq!(verifier.head(), store.head().await.unwrap());
    records
}

fn assert_refused(outcome: Result<(), String>, needle: &str, sql: &str) {
    match outcome {
        Err(message) => assert!(
            message.contains(needle),
            "{sql}: refused, but with {message:?}"
        ),
        Ok(()) => panic!("the database accepted {sql}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

pub(crate) async fn round_trip<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    assert_eq!(store.origin(), ORIGIN);
    assert_eq!(store.head().await.unwrap(), Head::empty(ORIGIN));
    assert_eq!(store.read(1, 10).await.unwrap(), vec![]);

    let first = append_ok(&*store, 3, "a").await;
    let second = append_ok(&*store, 2, "b").await;
    let all: Vec<Record> = first.iter().chain(&second).cloned().collect();
    assert_eq!(store.head().await.unwrap(), all[4].head());
    assert_eq!(store.read(1, 100).await.unwrap(), all);
    assert_eq!(store.read(6, 100).await.unwrap(), vec![]);
    assert_valid_chain(&*store).await;

    // The stored body is the canonical text, byte for byte: what was hashed is what is kept.
    for record in &all {
        let stored = harness
            .query_text(&format!(
                "SELECT body FROM records WHERE seq = {}",
                record.seq
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.as_bytes(),
            jcs::canonicalize(&record.body).as_slice()
        );
        assert!(
            stored.contains("中文"),
            "Chinese is stored as itself: {stored}"
        );
    }
    let stored_hash = harness
        .query_text("SELECT hash FROM records WHERE seq = 5")
        .await
        .unwrap();
    assert_eq!(stored_hash, Some(all[4].hash.to_hex()));
    assert_eq!(
        store.backend(),
        harness
            .url()
            .split(':')
            .next()
            .unwrap()
            .trim_end_matches("ql")
    );
}

pub(crate) async fn conflict_writes_nothing<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    let written = append_ok(&*store, 2, "a").await;
    let head = written[1].head();

    // A stale head, a head with the right seq but another hash, and a head from the future.
    let stale = written[0].head();
    let forged = Head {
        seq: 2,
        hash: written[0].hash,
    };
    let future = Head {
        seq: 5,
        hash: written[1].hash,
    };
    for expected in [stale, forged, future] {
        let batch = batch_on(&expected, 2, "late");
        match store.append(expected, &batch).await {
            Err(StoreError::Conflict {
                expected: said,
                actual,
            }) => {
                assert_eq!(said, expected);
                assert_eq!(actual, head);
            }
            other => panic!("expected a conflict on {expected:?}, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(read_all(&*store).await, written);
}

pub(crate) async fn invalid_batch_writes_nothing<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    let written = append_ok(&*store, 1, "a").await;
    let head = written[0].head();

    let good = batch_on(&head, 4, "b");
    let mut broken_inside = good.clone();
    broken_inside[2].prev = broken_inside[0].hash;
    let mut edited = good.clone();
    edited[3].body["note"] = json!("changed after sealing");
    let mut gap = good.clone();
    gap.remove(1);
    let cases: Vec<(&str, Vec<Record>)> = vec![
        ("empty", vec![]),
        ("does not follow the expected head", good[1..].to_vec()),
        ("contiguous", broken_inside),
        ("contiguous", gap),
        ("reseal", edited),
    ];
    for (needle, batch) in cases {
        match store.append(head, &batch).await {
            Err(StoreError::InvalidBatch(message)) => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("expected InvalidBatch ({needle}), got {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(read_all(&*store).await, written);
    // The good batch still goes in.
    assert_eq!(store.append(head, &good).await.unwrap(), good[3].head());
}

pub(crate) async fn a_batch_failing_in_the_database_writes_nothing<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    let written = append_ok(&*store, 1, "a").await;
    let head = written[0].head();
    // The batch is valid; the database fails its third row (seq 4) after two rows went in.
    let batch = batch_on(&head, 5, "b");
    harness
        .exec_raw(&harness.install_fault_sql(4))
        .await
        .unwrap();
    match store.append(head, &batch).await {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains("injected fault"), "{message}")
        }
        other => panic!("expected the injected fault, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(read_all(&*store).await, written);

    harness.exec_raw(&harness.remove_fault_sql()).await.unwrap();
    assert_eq!(store.append(head, &batch).await.unwrap(), batch[4].head());
    assert_eq!(assert_valid_chain(&*store).await.len(), 6);
}

pub(crate) async fn two_appenders_race_and_exactly_one_wins<H: Harness>(harness: &H) {
    let first = create(harness.url()).await;
    let second = create(harness.url()).await;
    let rounds = 12;
    let mut wins = [0u32; 2];
    for _ in 0..rounds {
        let head = first.head().await.unwrap();
        assert_eq!(second.head().await.unwrap(), head);
        let batch_first = batch_on(&head, 3, "first");
        let batch_second = batch_on(&head, 2, "second");
        let (outcome_first, outcome_second) = tokio::join!(
            first.append(head, &batch_first),
            second.append(head, &batch_second)
        );
        let (winner, new_head, conflict) = match (outcome_first, outcome_second) {
            (Ok(new_head), Err(conflict)) => (0, new_head, conflict),
            (Err(conflict), Ok(new_head)) => (1, new_head, conflict),
            other => panic!("exactly one appender must win each head, got {other:?}"),
        };
        wins[winner] += 1;
        let winning_batch = if winner == 0 {
            &batch_first
        } else {
            &batch_second
        };
        assert_eq!(new_head, winning_batch.last().unwrap().head());
        match conflict {
            StoreError::Conflict { expected, actual } => {
                assert_eq!(expected, head);
                assert_eq!(actual, new_head);
            }
            other => panic!("the loser must get a conflict, got {other:?}"),
        }
    }
    assert_eq!(wins[0] + wins[1], rounds);
    let records = assert_valid_chain(&*first).await;
    let expected_len: u64 = 3 * u64::from(wins[0]) + 2 * u64::from(wins[1]);
    assert_eq!(records.len() as u64, expected_len);
    assert_eq!(read_all(&*second).await, records);
}

pub(crate) async fn many_writers_retrying_build_one_valid_chain<H: Harness>(harness: &H) {
    const WRITERS: usize = 4;
    const APPENDS_PER_WRITER: u64 = 8;
    const MAX_ATTEMPTS: usize = 1_000;
    let mut stores = Vec::new();
    for _ in 0..WRITERS {
        stores.push(create(harness.url()).await);
    }
    let writers = stores.iter().enumerate().map(|(writer, store)| async move {
        let mut conflicts = 0usize;
        for append in 0..APPENDS_PER_WRITER {
            let tag = format!("w{writer}-{append}");
            let mut attempts = 0;
            loop {
                attempts += 1;
                assert!(attempts <= MAX_ATTEMPTS, "writer {writer} starved");
                let head = store.head().await.unwrap();
                let batch = seal_batch(&head, vec![body(head.seq + 1, &tag)]).unwrap();
                match store.append(head, &batch).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("writer {writer}: {other}"),
                }
            }
        }
        conflicts
    });
    futures::future::join_all(writers).await;
    let records = assert_valid_chain(&*stores[0]).await;
    assert_eq!(records.len() as u64, WRITERS as u64 * APPENDS_PER_WRITER);
    let mut command_ids: Vec<String> = records
        .iter()
        .map(|record| record.body["command_id"].as_str().unwrap().to_string())
        .collect();
    command_ids.sort();
    command_ids.dedup();
    assert_eq!(
        command_ids.len(),
        records.len(),
        "every append landed exactly once"
    );
}

pub(crate) async fn large_batch<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    append_ok(&*store, 1, "a").await;
    let head = store.head().await.unwrap();
    let batch = batch_on(&head, 10_000, "bulk");
    assert_eq!(
        store.append(head, &batch).await.unwrap(),
        batch.last().unwrap().head()
    );
    assert_eq!(store.head().await.unwrap().seq, 10_001);
    let read: Vec<Record> = stream(&*store, 2, 999).try_collect().await.unwrap();
    assert_eq!(read, batch);
    assert_valid_chain(&*store).await;
}

pub(crate) async fn reopen_keeps_origin_head_and_records<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    append_ok(&*store, 4, "a").await;
    let head = store.head().await.unwrap();
    let records = read_all(&*store).await;
    drop(store);

    let reopened = match open(harness.url(), "another-origin").await {
        Ok(store) => store,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(
        reopened.origin(),
        ORIGIN,
        "an existing ledger keeps its stored origin"
    );
    assert_eq!(reopened.head().await.unwrap(), head);
    assert_eq!(read_all(&*reopened).await, records);
    append_ok(&*reopened, 1, "after-reopen").await;
    drop(reopened);

    let existing = match open_existing(harness.url()).await {
        Ok(store) => store,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(existing.origin(), ORIGIN);
    assert_eq!(existing.head().await.unwrap().seq, 5);
    assert_valid_chain(&*existing).await;
}

pub(crate) async fn read_pages<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    let mut all = append_ok(&*store, 1, "a").await;
    all.extend(append_ok(&*store, 4, "b").await);
    all.extend(append_ok(&*store, 20, "c").await);
    let seqs = |records: Vec<Record>| records.iter().map(|record| record.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.read(1, 10).await.unwrap()),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(store.read(11, 10).await.unwrap()),
        (11..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(store.read(21, 10).await.unwrap()),
        (21..=25).collect::<Vec<_>>()
    );
    assert_eq!(store.read(26, 10).await.unwrap(), vec![]);
    assert_eq!(
        seqs(store.read(0, 5).await.unwrap()),
        (1..=5).collect::<Vec<_>>()
    );
    assert_eq!(store.read(5, 0).await.unwrap(), vec![]);
    assert_eq!(store.read(u64::MAX, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.read(24, usize::MAX).await.unwrap(),
        all[23..].to_vec()
    );
    let streamed: Vec<Record> = stream(&*store, 7, 4).try_collect().await.unwrap();
    assert_eq!(streamed, all[6..].to_vec());
    // A page size of 0 still makes progress (one record a page).
    let streamed: Vec<Record> = stream(&*store, 20, 0).try_collect().await.unwrap();
    assert_eq!(streamed, all[19..].to_vec());
    let past_end: Vec<Record> = stream(&*store, 100, 4).try_collect().await.unwrap();
    assert!(past_end.is_empty());
}

pub(crate) async fn the_database_refuses_edits<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    let records = append_ok(&*store, 3, "a").await;
    let head = records[2].head();
    let next = head.seq + 1;
    let prev = head.hash.to_hex();
    let other_hex = "ab".repeat(32);
    let mut refused: Vec<(String, &str)> = vec![
        (
            "UPDATE records SET body = '{}' WHERE seq = 2".into(),
            "append-only",
        ),
        ("UPDATE records SET hash = prev".into(), "append-only"),
        ("DELETE FROM records WHERE seq = 3".into(), "append-only"),
        ("DELETE FROM records".into(), "append-only"),
        (
            "UPDATE fundledger_meta SET value = 'renamed' WHERE key = 'origin'".into(),
            "write-once",
        ),
        ("DELETE FROM fundledger_meta".into(), "write-once"),
        // Inserts that do not hang from the last record: a wrong prev, a gap, an old seq.
        (
            format!("INSERT INTO records VALUES ({next}, '{other_hex}', '{other_hex}', '{{}}')"),
            "chain",
        ),
        (
            format!(
                "INSERT INTO records VALUES ({}, '{prev}', '{other_hex}', '{{}}')",
                next + 1
            ),
            "chain",
        ),
    ];
    refused.extend(harness.more_refused_sql(&records));
    for (sql, needle) in &refused {
        assert_refused(harness.exec_raw(sql).await, needle, sql);
    }
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(read_all(&*store).await, records);
    let origin = harness
        .query_text("SELECT value FROM fundledger_meta WHERE key = 'origin'")
        .await;
    assert_eq!(origin.unwrap().as_deref(), Some(ORIGIN));
}

pub(crate) async fn unreadable_rows_are_reported_as_corrupt<H: Harness>(harness: &H) {
    let store = create(harness.url()).await;
    let records = append_ok(&*store, 2, "a").await;
    let prev = records[1].hash.to_hex();
    // Rows written behind the store's back: chained, but a body that is not JSON (seq 3) and a
    // hash that is not hex (seq 4).
    let odd_hash = "ab".repeat(32);
    let bad_hex = "z".repeat(64);
    harness
        .exec_raw(&format!(
            "INSERT INTO records VALUES (3, '{prev}', '{odd_hash}', 'not json')"
        ))
        .await
        .unwrap();
    match store.read(1, 10).await {
        Err(StoreError::Corrupt { seq: 3, reason }) => {
            assert!(reason.contains("not JSON"), "{reason}")
        }
        other => panic!("expected Corrupt at seq 3, got {other:?}"),
    }
    assert_eq!(
        store.read(1, 2).await.unwrap(),
        records,
        "the rows before it still read"
    );
    harness
        .exec_raw(&format!(
            "INSERT INTO records VALUES (4, '{odd_hash}', '{bad_hex}', '{{}}')"
        ))
        .await
        .unwrap();
    match store.head().await {
        Err(StoreError::Corrupt { seq: 4, reason }) => assert!(reason.contains("hash"), "{reason}"),
        other => panic!("expected Corrupt at seq 4, got {other:?}"),
    }
    match store.read(4, 1).await {
        Err(error @ StoreError::Corrupt { seq: 4, .. }) => {
            assert!(error.to_string().contains("fundledger verify"), "{error}")
        }
        other => panic!("expected Corrupt at seq 4, got {other:?}"),
    }
}

pub(crate) async fn open_existing_creates_nothing<H: Harness>(harness: &H) {
    for _ in 0..2 {
        match open_existing(harness.url()).await {
            Err(StoreError::NotFound(message)) => {
                assert!(message.contains("check --store"), "{message}")
            }
            Err(other) => panic!("expected NotFound, got {other:?}"),
            Ok(_) => panic!("expected NotFound, got a store"),
        }
    }
    // It left nothing behind that would stop a real ledger from being created there.
    let store = create(harness.url()).await;
    assert_eq!(store.head().await.unwrap(), Head::empty(ORIGIN));
    let existing = match open_existing(harness.url()).await {
        Ok(store) => store,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(existing.origin(), ORIGIN);
}

// ---------------------------------------------------------------------------------------------
// Backends

mod sqlite {
    use super::*;
    use crate::testing::{scratch_sqlite, ScratchSqlite};
    use rusqlite::types::ValueRef;

    pub(crate) struct SqliteHarness {
        scratch: ScratchSqlite,
    }

    impl SqliteHarness {
        async fn raw<T: Send + 'static>(
            &self,
            work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        ) -> Result<T, String> {
            let path = self.scratch.path().to_path_buf();
            tokio::task::spawn_blocking(move || {
                // Never create the file: the tests look at what the store made.
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
                let connection = rusqlite::Connection::open_with_flags(&path, flags)
                    .map_err(|e| e.to_string())?;
                connection
                    .busy_timeout(std::time::Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
                work(&connection).map_err(|e| e.to_string())
            })
            .await
            .unwrap()
        }
    }

    #[async_trait]
    impl Harness for SqliteHarness {
        async fn new() -> Self {
            SqliteHarness {
                scratch: scratch_sqlite().unwrap(),
            }
        }

        fn url(&self) -> &str {
            self.scratch.url()
        }

        async fn exec_raw(&self, sql: &str) -> Result<(), String> {
            let sql = sql.to_string();
            self.raw(move |connection| connection.execute_batch(&sql))
                .await
        }

        async fn query_text(&self, sql: &str) -> Result<Option<String>, String> {
            let sql = sql.to_string();
            self.raw(move |connection| {
                let mut statement = connection.prepare(&sql)?;
                let mut rows = statement.query([])?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                Ok(match row.get_ref(0)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(number) => Some(number.to_string()),
                    ValueRef::Real(number) => Some(number.to_string()),
                    ValueRef::Text(text) | ValueRef::Blob(text) => {
                        Some(String::from_utf8_lossy(text).into_owned())
                    }
                })
            })
            .await
        }

        fn install_fault_sql(&self, seq: u64) -> String {
            format!(
                "CREATE TRIGGER test_fault BEFORE INSERT ON records WHEN NEW.seq = {seq} \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
            )
        }

        fn remove_fault_sql(&self) -> String {
            "DROP TRIGGER test_fault".into()
        }

        fn more_refused_sql(&self, stored: &[Record]) -> Vec<(String, &'static str)> {
            let hex = "cd".repeat(32);
            // Each replacement hangs from the right prev, so only the append-only rule stops it.
            let prev = |seq: usize| stored[seq - 1].prev.to_hex();
            vec![
                // REPLACE deletes without firing delete triggers; the insert trigger must stop it.
                (
                    format!(
                        "INSERT OR REPLACE INTO records VALUES (2, '{}', '{hex}', '{{}}')",
                        prev(2)
                    ),
                    "append-only",
                ),
                (
                    format!(
                        "REPLACE INTO records VALUES (3, '{}', '{hex}', '{{}}')",
                        prev(3)
                    ),
                    "append-only",
                ),
                (
                    "INSERT OR REPLACE INTO fundledger_meta VALUES ('origin', 'renamed')".into(),
                    "write-once",
                ),
                (
                    format!(
                        "INSERT INTO records VALUES (1, '{}', '{hex}', '{{}}') \
                         ON CONFLICT (seq) DO UPDATE SET body = 'x'",
                        prev(1)
                    ),
                    "append-only",
                ),
            ]
        }

        async fn finish(self) {}
    }

    all_checks!(SqliteHarness);

    #[tokio::test]
    async fn open_existing_does_not_create_the_file_or_its_directory() {
        let scratch = scratch_sqlite().unwrap();
        let nested = scratch.dir().join("missing-dir").join("ledger.db");
        for path in [scratch.path().to_path_buf(), nested.clone()] {
            let url = format!("sqlite://{}", path.display());
            assert!(matches!(
                open_existing(&url).await,
                Err(StoreError::NotFound(_))
            ));
            assert!(!path.exists());
        }
        assert!(!nested.parent().unwrap().exists());
        // An empty file is a SQLite database without a ledger.
        std::fs::write(scratch.path(), b"").unwrap();
        match open_existing(scratch.url()).await {
            Err(StoreError::NotFound(message)) => {
                assert!(message.contains("holds no fundledger ledger"), "{message}")
            }
            Err(other) => panic!("expected NotFound, got {other:?}"),
            Ok(_) => panic!("expected NotFound, got a store"),
        }
    }

    #[tokio::test]
    async fn open_creates_parent_directories_and_takes_relative_paths() {
        let scratch = scratch_sqlite().unwrap();
        // A relative path from the working directory to the scratch directory, so the test
        // neither changes the process's working directory nor writes into the source tree.
        let cwd = std::env::current_dir().unwrap();
        let ups = "../".repeat(cwd.components().count() - 1);
        let target = scratch.dir().join("a").join("b").join("ledger.db");
        let relative = format!("{ups}{}", target.strip_prefix("/").unwrap().display());
        assert!(!relative.starts_with('/'));
        let store = create(&format!("sqlite://{relative}")).await;
        append_ok(&*store, 2, "rel").await;
        assert!(target.is_file());
        let again = create(&format!("sqlite://{}", target.display())).await;
        assert_eq!(again.head().await.unwrap().seq, 2);
    }

    #[tokio::test]
    async fn the_file_is_wal_with_full_sync() {
        let scratch = scratch_sqlite().unwrap();
        let store = crate::SqliteStore::open(scratch.path(), ORIGIN)
            .await
            .unwrap();
        append_ok(&store, 1, "a").await;
        let connection = rusqlite::Connection::open(scratch.path()).unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // synchronous is per connection; check the store's own writer.
        let writer = crate::sqlite::tests_support::writer_synchronous(&store);
        assert_eq!(writer, 2, "synchronous=FULL is 2");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_ledger_is_refused() {
        let scratch = scratch_sqlite().unwrap();
        std::fs::write(
            scratch.path(),
            b"this is not a database, just text that is long enough to fill a header page ....",
        )
        .unwrap();
        assert!(matches!(
            open(scratch.url(), ORIGIN).await,
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            open_existing(scratch.url()).await,
            Err(StoreError::Backend(_))
        ));
    }
}

mod postgres {
    use super::*;
    use crate::testing::{scratch_postgres, ScratchDb};
    use tokio_postgres::{NoTls, SimpleQueryMessage};

    pub(crate) struct PostgresHarness {
        scratch: ScratchDb,
    }

    impl PostgresHarness {
        async fn client(&self) -> Result<tokio_postgres::Client, String> {
            let (client, connection) = tokio_postgres::connect(self.scratch.url(), NoTls)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Ok(client)
        }
    }

    fn message(error: tokio_postgres::Error) -> String {
        match error.as_db_error() {
            Some(db) => db.message().to_string(),
            None => error.to_string(),
        }
    }

    #[async_trait]
    impl Harness for PostgresHarness {
        async fn new() -> Self {
            match scratch_postgres().await {
                Ok(scratch) => PostgresHarness { scratch },
                Err(error) => panic!("PostgreSQL is needed for this test: {error}"),
            }
        }

        fn url(&self) -> &str {
            self.scratch.url()
        }

        async fn exec_raw(&self, sql: &str) -> Result<(), String> {
            self.client()
                .await?
                .batch_execute(sql)
                .await
                .map_err(message)
        }

        async fn query_text(&self, sql: &str) -> Result<Option<String>, String> {
            let messages = self
                .client()
                .await?
                .simple_query(sql)
                .await
                .map_err(message)?;
            Ok(messages
                .iter()
                .find_map(|message| match message {
                    SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
                    _ => None,
                })
                .flatten())
        }

        fn install_fault_sql(&self, seq: u64) -> String {
            format!(
                "CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.seq = {seq} THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER test_fault BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION test_fault();"
            )
        }

        fn remove_fault_sql(&self) -> String {
            "DROP TRIGGER test_fault ON records; DROP FUNCTION test_fault();".into()
        }

        fn more_refused_sql(&self, stored: &[Record]) -> Vec<(String, &'static str)> {
            let hex = "cd".repeat(32);
            vec![
                ("TRUNCATE records".into(), "append-only"),
                ("TRUNCATE fundledger_meta".into(), "write-once"),
                (
                    "TRUNCATE records, fundledger_meta CASCADE".into(),
                    "refused",
                ),
                (
                    format!(
                        "INSERT INTO records VALUES (1, '{}', '{hex}', '{{}}') \
                         ON CONFLICT (seq) DO UPDATE SET body = 'x'",
                        stored[0].prev.to_hex()
                    ),
                    "append-only",
                ),
            ]
        }

        async fn finish(self) {
            if let Err(error) = self.scratch.cleanup().await {
                panic!("{error}");
            }
        }
    }

    all_checks!(PostgresHarness);

    #[tokio::test]
    async fn a_missing_database_is_not_found_and_an_empty_one_stays_empty() {
        let harness = PostgresHarness::new().await;
        let missing = harness
            .scratch
            .sibling_url(&format!("{}_missing", harness.scratch.name()))
            .unwrap();
        for outcome in [open_existing(&missing).await, open(&missing, ORIGIN).await] {
            match outcome {
                Err(StoreError::NotFound(message)) => {
                    assert!(message.contains("does not exist"), "{message}")
                }
                Err(other) => panic!("expected NotFound, got {other:?}"),
                Ok(_) => panic!("expected NotFound, got a store"),
            }
        }
        assert!(matches!(
            open_existing(harness.url()).await,
            Err(StoreError::NotFound(_))
        ));
        let tables = harness
            .query_text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .await
            .unwrap();
        assert_eq!(
            tables.as_deref(),
            Some("0"),
            "open_existing created nothing"
        );
        harness.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_connection_is_reported_and_the_next_call_reconnects() {
        let harness = PostgresHarness::new().await;
        let store = create(harness.url()).await;
        append_ok(&*store, 1, "a").await;
        // Ends every other session on the database: the store's connections among them.
        harness
            .exec_raw(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
            .unwrap();
        // Wait until the server has really ended them, so the calls below meet dead connections.
        for _ in 0..100 {
            let left = harness
                .query_text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'fundledger'",
                )
                .await
                .unwrap();
            if left.as_deref() == Some("0") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // The client may learn of the end only when it next talks to the server: that call
        // fails with Unreachable, and a later one reconnects.
        let mut head = store.head().await;
        for _ in 0..3 {
            match head {
                Ok(_) => break,
                Err(StoreError::Unreachable(_)) => head = store.head().await,
                Err(other) => panic!("expected Unreachable or a reconnect, got {other:?}"),
            }
        }
        let head = head.unwrap();
        assert_eq!(head.seq, 1);
        let batch = batch_on(&head, 1, "after-reconnect");
        let mut appended = store.append(head, &batch).await;
        for _ in 0..3 {
            match appended {
                Ok(_) => break,
                Err(StoreError::Unreachable(_)) => appended = store.append(head, &batch).await,
                Err(other) => panic!("expected Unreachable or a reconnect, got {other:?}"),
            }
        }
        assert_eq!(appended.unwrap(), batch[0].head());
        assert_valid_chain(&*store).await;
        drop(store);
        harness.finish().await;
    }
}

/// EventStoreDB/KurrentDB: the checks that need no SQL, on a fresh stream each, when
/// `EVENTSTORE_URL` names a server (e.g. `esdb://127.0.0.1:2113?tls=false`; the large batch
/// needs the server's `MaxAppendSize` at 8 MiB or more, as in `ops/kurrentdb`). Without it,
/// every test says loudly that it did not run.
#[cfg(feature = "eventstore")]
mod esdb {
    use std::io::Write;

    use super::*;

    /// What every EventStoreDB test prints when it cannot run; the README says the same.
    pub(crate) const NOT_RUN: &str =
        "EVENTSTORE_URL is not set: no EventStoreDB/KurrentDB server can be installed on these \
         machines, so the EventStoreDB conformance suite was NOT run";

    fn server_url() -> Option<String> {
        std::env::var("EVENTSTORE_URL")
            .ok()
            .map(|url| url.trim().to_string())
            .filter(|url| !url.is_empty())
    }

    /// A line on the test process's stderr that `cargo test` shows even when the test passes
    /// (libtest captures `eprintln!`, not direct writes).
    fn say_not_run(test: &str) {
        let _ = writeln!(std::io::stderr(), "\nNOT RUN {test}: {NOT_RUN}");
    }

    /// `server` with `stream=NAME` added.
    fn with_stream(server: &str, stream: &str) -> String {
        let separator = if server.contains('?') { '&' } else { '?' };
        format!("{server}{separator}stream={stream}")
    }

    fn fresh_stream() -> String {
        format!("fundledger-conformance-{}", uuid::Uuid::new_v4().simple())
    }

    /// A raw client on the same server, to look at and meddle with the stream behind the
    /// store's back.
    fn raw_client(server: &str) -> ::eventstore::Client {
        let server = server
            .replacen("kurrentdb+discover://", "esdb+discover://", 1)
            .replacen("kurrentdb://", "esdb://", 1);
        let settings: ::eventstore::ClientSettings = server
            .parse()
            .expect("EVENTSTORE_URL is a connection string");
        ::eventstore::Client::new(settings).expect("a client")
    }

    async fn raw_events(server: &str, stream: &str) -> Vec<::eventstore::RecordedEvent> {
        let client = raw_client(server);
        let mut read = client
            .read_stream(stream, &Default::default())
            .await
            .expect("the stream reads");
        let mut events = Vec::new();
        while let Some(event) = read.next().await.expect("the stream reads") {
            events.extend(event.link.or(event.event));
        }
        events
    }

    pub(crate) struct EsdbHarness {
        server: String,
        stream: String,
        url: String,
    }

    impl EsdbHarness {
        fn on(server: &str) -> Self {
            let stream = fresh_stream();
            EsdbHarness {
                server: server.to_string(),
                url: with_stream(server, &stream),
                stream,
            }
        }
    }

    #[async_trait]
    impl Harness for EsdbHarness {
        async fn new() -> Self {
            match server_url() {
                Some(server) => EsdbHarness::on(&server),
                None => panic!("{NOT_RUN}"),
            }
        }

        fn url(&self) -> &str {
            &self.url
        }

        async fn exec_raw(&self, _sql: &str) -> Result<(), String> {
            Err("EventStoreDB has no SQL".into())
        }

        async fn query_text(&self, _sql: &str) -> Result<Option<String>, String> {
            Err("EventStoreDB has no SQL".into())
        }

        fn install_fault_sql(&self, _seq: u64) -> String {
            String::new()
        }

        fn remove_fault_sql(&self) -> String {
            String::new()
        }

        fn more_refused_sql(&self, _stored: &[Record]) -> Vec<(String, &'static str)> {
            Vec::new()
        }

        async fn finish(self) {
            // A scratch stream: soft-deleted so test runs do not pile up on the server.
            let _ = raw_client(&self.server)
                .delete_stream(self.stream.as_str(), &Default::default())
                .await;
        }
    }

    /// One test per check (in `run`, so a test may share its check's name), each on a fresh
    /// stream; without a server, each says it did not run.
    macro_rules! esdb_suite {
        ($($check:ident),* $(,)?) => {
            mod run {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let Some(server) = server_url() else {
                            say_not_run(concat!("esdb::", stringify!($check)));
                            return;
                        };
                        let harness = EsdbHarness::on(&server);
                        super::$check(&harness).await;
                        harness.finish().await;
                    }
                )*
            }
        };
    }

    // The SQL-shaped checks (raw SQL, injected faults, triggers) have EventStoreDB counterparts
    // below: the stored events, idempotent retries, truncation and foreign events.
    esdb_suite!(
        conflict_writes_nothing,
        invalid_batch_writes_nothing,
        two_appenders_race_and_exactly_one_wins,
        many_writers_retrying_build_one_valid_chain,
        large_batch,
        reopen_keeps_origin_head_and_records,
        read_pages,
        open_existing_creates_nothing,
        stored_events_are_the_records,
        a_retried_append_is_idempotent,
        a_truncated_stream_is_reported_and_fails_verification,
        foreign_events_are_refused,
        notifications_announce_appends_of_other_processes,
    );

    /// A subscriber hears of an append made through another store (another process).
    async fn notifications_announce_appends_of_other_processes(harness: &EsdbHarness) {
        let follower = create(harness.url()).await;
        let writer = create(harness.url()).await;
        let mut notifications = follower
            .notifications()
            .await
            .unwrap()
            .expect("EventStoreDB has notifications");
        let written = append_ok(&*writer, 3, "a").await;
        // A bound so a lost subscription fails the test instead of hanging it.
        let announced = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut highest = 0;
            while highest < 3 {
                highest = notifications
                    .next()
                    .await
                    .expect("the subscription stays up");
            }
            highest
        })
        .await
        .expect("the append was announced");
        assert_eq!(announced, written[2].seq);
        assert_eq!(follower.head().await.unwrap(), written[2].head());
    }

    /// The stream holds the origin event, then one event per record: type, id from the hash,
    /// data `{"seq","prev","hash","body"}` with the body as its canonical text.
    async fn stored_events_are_the_records(harness: &EsdbHarness) {
        let store = create(harness.url()).await;
        assert_eq!(store.backend(), "esdb");
        assert_eq!(store.head().await.unwrap(), Head::empty(ORIGIN));
        let mut all = append_ok(&*store, 3, "a").await;
        all.extend(append_ok(&*store, 2, "b").await);
        assert_eq!(store.read(1, 100).await.unwrap(), all);
        assert_valid_chain(&*store).await;

        let events = raw_events(&harness.server, &harness.stream).await;
        assert_eq!(events.len(), 6, "the origin event and five records");
        assert_eq!(events[0].revision, 0);
        assert_eq!(events[0].event_type, "fundledger_ledger");
        let origin: Value = serde_json::from_slice(&events[0].data).unwrap();
        assert_eq!(origin["origin"], json!(ORIGIN));
        for (event, record) in events[1..].iter().zip(&all) {
            assert_eq!(event.revision, record.seq);
            assert_eq!(event.event_type, "test");
            assert!(event.is_json);
            assert_eq!(event.id, crate::eventstore::event_id(&record.hash));
            let data = std::str::from_utf8(&event.data).unwrap();
            let canonical = String::from_utf8(jcs::canonicalize(&record.body)).unwrap();
            assert!(
                data.ends_with(&format!(r#","body":{canonical}}}"#)),
                "the stored body is the hashed text: {data}"
            );
            assert!(data.contains("中文"), "Chinese is stored as itself: {data}");
        }
    }

    /// The same batch on the same head again (a retry after a lost reply) writes nothing more
    /// and answers the same head, from this process or another.
    async fn a_retried_append_is_idempotent(harness: &EsdbHarness) {
        let store = create(harness.url()).await;
        let other = create(harness.url()).await;
        let head = store.head().await.unwrap();
        let batch = batch_on(&head, 4, "once");
        let new_head = store.append(head, &batch).await.unwrap();
        assert_eq!(store.append(head, &batch).await.unwrap(), new_head);
        assert_eq!(other.append(head, &batch).await.unwrap(), new_head);
        assert_eq!(read_all(&*store).await, batch);
        // Another batch on the old head is a conflict, not a retry.
        let rival = batch_on(&head, 1, "rival");
        assert!(matches!(
            other.append(head, &rival).await,
            Err(StoreError::Conflict { actual, .. }) if actual == new_head
        ));
    }

    /// An operator who truncates the stream ($tb) makes records vanish; reading says so, and
    /// an auditor's chain check would fail on what is left.
    async fn a_truncated_stream_is_reported_and_fails_verification(harness: &EsdbHarness) {
        let store = create(harness.url()).await;
        let records = append_ok(&*store, 5, "a").await;
        let metadata = ::eventstore::StreamMetadata::builder()
            .truncate_before(3)
            .build();
        raw_client(&harness.server)
            .set_stream_metadata(harness.stream.as_str(), &Default::default(), &metadata)
            .await
            .expect("the test user may write stream metadata");
        match store.read(1, 10).await {
            Err(StoreError::Corrupt { seq: 1, reason }) => {
                assert!(reason.contains("truncated"), "{reason}")
            }
            other => panic!("expected Corrupt at seq 1, got {other:?}"),
        }
        // What is left does not hang from the genesis: verification fails at the first record.
        let left = store.read(3, 10).await.unwrap();
        assert_eq!(left, records[2..].to_vec());
        let mut verifier = ChainVerifier::new(store.origin());
        assert!(verifier.check_record(&left[0]).is_err());
        // A new process cannot even open the ledger: its origin event is gone.
        assert!(matches!(
            open_existing(harness.url()).await,
            Err(StoreError::Backend(_))
        ));
    }

    /// Events written behind the store's back are not records; a stream that was not made by
    /// fundledger is not opened as a ledger.
    async fn foreign_events_are_refused(harness: &EsdbHarness) {
        let store = create(harness.url()).await;
        let records = append_ok(&*store, 2, "a").await;
        let client = raw_client(&harness.server);
        let foreign = ::eventstore::EventData::json("test", &json!({"hello": "world"})).unwrap();
        client
            .append_to_stream(
                harness.stream.as_str(),
                &::eventstore::AppendToStreamOptions::default()
                    .expected_revision(::eventstore::ExpectedRevision::Exact(2)),
                foreign,
            )
            .await
            .expect("the raw append goes in");
        match store.read(1, 10).await {
            Err(StoreError::Corrupt { seq: 3, .. }) => {}
            other => panic!("expected Corrupt at seq 3, got {other:?}"),
        }
        assert_eq!(store.read(1, 2).await.unwrap(), records);
        assert!(matches!(
            store.head().await,
            Err(StoreError::Corrupt { seq: 3, .. })
        ));

        let other_stream = fresh_stream();
        let not_a_ledger = ::eventstore::EventData::json("test", &json!({"x": 1})).unwrap();
        client
            .append_to_stream(other_stream.as_str(), &Default::default(), not_a_ledger)
            .await
            .expect("the raw append goes in");
        let url = with_stream(&harness.server, &other_stream);
        for outcome in [open(&url, ORIGIN).await, open_existing(&url).await] {
            match outcome {
                Err(StoreError::Backend(message)) => {
                    assert!(message.contains("not the origin event"), "{message}")
                }
                Err(other) => panic!("expected Backend, got {other:?}"),
                Ok(_) => panic!("a foreign stream was opened as a ledger"),
            }
        }
        let _ = client
            .delete_stream(other_stream.as_str(), &Default::default())
            .await;
    }

    /// Unlike the others, this test runs without a server: it checks that no URL means no run
    /// and that the message says so.
    #[test]
    fn without_a_server_the_suite_says_it_did_not_run() {
        assert!(NOT_RUN.contains("was NOT run"));
        assert!(NOT_RUN.contains("no EventStoreDB/KurrentDB server can be installed"));
        if server_url().is_none() {
            say_not_run("esdb (the whole suite)");
        }
    }
}
