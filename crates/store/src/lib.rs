//! The append-only event store of fundledger (DESIGN §3, §5, §8).
//!
//! - [`EventStore`] is the one trait the ledger writes through: [`EventStore::head`],
//!   [`EventStore::append`] (a whole batch, atomically, only if the stored head is the one the
//!   caller expects) and [`EventStore::read`] (records in seq order). [`stream()`] pages through
//!   the whole log in constant memory.
//! - [`open`] turns a `--store` URL into a store, creating the ledger (schema and origin) when the
//!   place is empty; [`open_existing`] opens only what is already there, for `verify` and
//!   `export`, which must not create anything.
//! - Backends: [`SqliteStore`] (`sqlite://PATH`, one file, the embedded default) and
//!   [`PostgresStore`] (`postgres://…`); with the cargo feature `eventstore`,
//!   `EventStoreDbStore` (`esdb://…` / `kurrentdb://…`, the ledger as one stream of an
//!   EventStoreDB/KurrentDB server or cluster).
//! - [`StoreError`] says what went wrong and what to do about it; [`testing`] makes scratch
//!   databases for this crate's tests and for other crates' tests.
//!
//! Invariants, held by every backend and checked by one conformance suite:
//! - **Append-only, enforced by the database.** Triggers refuse `UPDATE` and `DELETE` (and
//!   `TRUNCATE` on PostgreSQL) of records, and refuse inserting a record that does not hang from
//!   the previous one (`seq` + 1, `prev` = its hash; the first one from the genesis of the
//!   origin), including SQLite's `INSERT OR REPLACE`; the origin in the meta table is
//!   write-once. Nothing in this crate ever changes a stored record: corrections are new events.
//!   (Triggers stop mistakes and ordinary SQL, not an owner who drops them: the hash chain and
//!   `fundledger verify` are what make tampering evident.)
//! - **Expected-head append.** An append names the head it was decided on; it writes the whole
//!   batch or nothing, and only if that head is still the stored head, else
//!   [`StoreError::Conflict`]. With several processes on one database exactly one appender wins
//!   each head, so the single-writer rule of DESIGN §3 holds across processes.
//! - **Stored bytes are hashed bytes.** A body is stored as its RFC 8785 (JCS) canonical text,
//!   the exact bytes its hash covers, never re-serialised JSON. Before writing, the store checks
//!   each record's hash against its `prev` and body, so it never stores a broken chain.

use std::path::Path;

use async_trait::async_trait;
use fundledger_events::chain::{check_body, record_hash};
use fundledger_events::{jcs, Head, Record};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};

#[cfg(feature = "eventstore")]
mod eventstore;
mod postgres;
mod sqlite;
pub mod testing;

#[cfg(test)]
mod conformance;

#[cfg(feature = "eventstore")]
pub use crate::eventstore::EventStoreDbStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The most records one [`EventStore::append`] takes. A limit on every batch keeps a runaway
/// caller from holding the write lock (and the memory) without bound; the writer's group commit
/// stays far below it.
pub const MAX_BATCH_RECORDS: usize = 100_000;

/// The forms of `--store` URL that [`open`] accepts, for error messages.
pub const ACCEPTED_URLS: &str =
    "accepted store URLs: sqlite://PATH (a relative or absolute file path, \
     e.g. sqlite://data/fundledger.db or sqlite:///var/lib/fundledger/ledger.db), \
     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or postgresql://…), \
     and, in a build with the `eventstore` cargo feature, \
     esdb://[USER:PASSWORD@]HOST:2113[,HOST:PORT…][?tls=false][&stream=NAME] \
     (also esdb+discover://, kurrentdb://, kurrentdb+discover://)";

/// What can go wrong in a store. Every message says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stored head is not the one the append expected; nothing was written.
    #[error(
        "append conflict: expected the head at seq {} ({}), but the ledger's head is seq {} ({}); \
         nothing was written: read the new records, decide again and append on the new head",
        expected.seq, expected.hash, actual.seq, actual.hash
    )]
    Conflict { expected: Head, actual: Head },
    /// The batch itself is wrong (empty, not chained onto the expected head, broken inside, or
    /// a body that does not meet DESIGN §5); nothing was written.
    #[error("invalid batch, nothing was written: {0}")]
    InvalidBatch(String),
    /// The store URL cannot be used; the message lists the accepted forms.
    #[error("bad store URL: {0}")]
    BadUrl(String),
    /// The database cannot be reached (connection refused or lost, file cannot be opened).
    #[error("store unreachable: {0}")]
    Unreachable(String),
    /// There is no ledger at the place named (for commands that must not create one).
    #[error("no ledger found: {0}")]
    NotFound(String),
    /// A stored record cannot be read back; the database was changed outside fundledger.
    #[error(
        "stored record seq {seq} cannot be read back ({reason}); the database was changed outside \
         fundledger: run `fundledger verify` and restore from a backup or an export"
    )]
    Corrupt { seq: u64, reason: String },
    /// Anything else the database refused or failed at.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// An append-only, hash-chained log of records. Object safe: the ledger holds a
/// `Box<dyn EventStore>` chosen by URL at run time.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The ledger's name, set at creation and stored with it.
    fn origin(&self) -> &str;

    /// (seq, hash) of the last record; `Head::empty(origin)` for an empty ledger.
    async fn head(&self) -> Result<Head, StoreError>;

    /// Appends the whole batch atomically iff the stored head equals `expected`, and returns
    /// the new head. `Err(StoreError::Conflict{expected, actual})` when the head moved (nothing
    /// written). Rejects (`StoreError::InvalidBatch`) an empty batch, a batch whose first record
    /// is not seq `expected.seq + 1` with `prev == expected.hash`, a batch that is not
    /// contiguous (each `prev` = the previous hash, seq + 1), a record whose hash is not the
    /// hash of its `prev` and body, a body that does not meet DESIGN §5, and a batch of more
    /// than [`MAX_BATCH_RECORDS`].
    ///
    /// After any other error (e.g. the connection was lost during commit) the outcome may be
    /// unknown: read the head before deciding again.
    async fn append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError>;

    /// Up to `limit` records with seq >= `from_seq`, in seq order (empty when none).
    /// Each body is parsed from its stored canonical text, so it equals the appended body
    /// whenever that body's numbers were already in canonical form (integers; events hold no
    /// floats), and it always hashes to the stored hash. A row that cannot be read back is
    /// [`StoreError::Corrupt`].
    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// A short label like "sqlite" / "postgres" for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Word of appends made by any process (this one included), for followers: several server
    /// processes on one ledger each learn promptly that the head moved and catch up. `Ok(None)`
    /// when the backend has no such channel; callers then poll [`EventStore::head`] (and
    /// should poll anyway, slowly, since a notification can be lost with its connection).
    async fn notifications(&self) -> Result<Option<AppendNotifications>, StoreError> {
        Ok(None)
    }
}

/// A subscription to appends (see [`EventStore::notifications`]): each item is the seq of a
/// head that was appended. Bursts are coalesced (a slow follower sees fewer items, never a
/// stale "nothing new"); `None` from [`AppendNotifications::next`] means the subscription was
/// lost and must be made again.
pub struct AppendNotifications {
    receiver: tokio::sync::mpsc::Receiver<u64>,
    /// Whatever keeps the subscription alive (a listening connection); dropped with it.
    _subscription: Box<dyn std::any::Any + Send + Sync>,
}

impl AppendNotifications {
    /// Bound on undelivered notifications: one pending item already says "catch up", so a
    /// small buffer loses nothing a follower needs.
    pub const BUFFER: usize = 16;

    /// A subscription fed by `receiver`, alive while `subscription` is.
    pub fn new(
        receiver: tokio::sync::mpsc::Receiver<u64>,
        subscription: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        AppendNotifications {
            receiver,
            _subscription: subscription,
        }
    }

    /// The highest appended seq announced since the last call (waiting for at least one), or
    /// `None` once the subscription is lost.
    pub async fn next(&mut self) -> Option<u64> {
        let mut highest = self.receiver.recv().await?;
        while let Ok(seq) = self.receiver.try_recv() {
            highest = highest.max(seq);
        }
        Some(highest)
    }
}

impl std::fmt::Debug for AppendNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendNotifications")
            .finish_non_exhaustive()
    }
}

/// Every record with seq >= `from_seq`, in seq order, read `page_records` at a time (at least
/// one), so memory stays bounded by one page however long the log is. The stream ends after
/// the last record stored when it reaches it; the first error ends it too.
pub fn stream(
    store: &dyn EventStore,
    from_seq: u64,
    page_records: usize,
) -> impl Stream<Item = Result<Record, StoreError>> + Send + '_ {
    let page_records = page_records.max(1);
    // State: the next seq to read, or None once a short page showed the end of the log.
    stream::try_unfold(Some(from_seq), move |next_seq| async move {
        let Some(next_seq) = next_seq else {
            return Ok(None);
        };
        let page = store.read(next_seq, page_records).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        // A backend that returned records out of order would make this loop repeat or skip;
        // refuse rather than hand out a wrong log.
        if page.first().map(|first| first.seq) < Some(next_seq) || last.seq < next_seq {
            return Err(StoreError::Backend(format!(
                "the {} store returned records before seq {next_seq} when asked to read from it",
                store.backend()
            )));
        }
        let following = if page.len() < page_records {
            None
        } else {
            last.seq.checked_add(1)
        };
        Ok(Some((stream::iter(page.into_iter().map(Ok)), following)))
    })
    .try_flatten()
    .boxed()
}

/// Opens the ledger at `url`, creating it (schema, and `origin_if_new` as its origin) when the
/// place is empty; an existing ledger keeps its stored origin and `origin_if_new` is ignored.
/// See [`ACCEPTED_URLS`] for the URL forms.
pub async fn open(url: &str, origin_if_new: &str) -> Result<Box<dyn EventStore>, StoreError> {
    match parse_url(url)? {
        StoreUrl::Sqlite(path) => Ok(Box::new(SqliteStore::open(path, origin_if_new).await?)),
        StoreUrl::Postgres(url) => Ok(Box::new(PostgresStore::open(&url, origin_if_new).await?)),
        #[cfg(feature = "eventstore")]
        StoreUrl::EventStore(url) => Ok(Box::new(
            EventStoreDbStore::open(*url, origin_if_new).await?,
        )),
    }
}

/// Opens the ledger at `url` only if one is already there, else [`StoreError::NotFound`]; never
/// creates a file, a table or anything else (for `verify` and `export`).
pub async fn open_existing(url: &str) -> Result<Box<dyn EventStore>, StoreError> {
    match parse_url(url)? {
        StoreUrl::Sqlite(path) => Ok(Box::new(SqliteStore::open_existing(path).await?)),
        StoreUrl::Postgres(url) => Ok(Box::new(PostgresStore::open_existing(&url).await?)),
        #[cfg(feature = "eventstore")]
        StoreUrl::EventStore(url) => Ok(Box::new(EventStoreDbStore::open_existing(*url).await?)),
    }
}

/// A parsed `--store` URL.
#[derive(Debug, PartialEq, Eq)]
enum StoreUrl {
    Sqlite(std::path::PathBuf),
    Postgres(String),
    #[cfg(feature = "eventstore")]
    EventStore(Box<crate::eventstore::EsdbUrl>),
}

fn parse_url(url: &str) -> Result<StoreUrl, StoreError> {
    let url = url.trim();
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::BadUrl(format!(
                "{url:?} names no file; {ACCEPTED_URLS}"
            )));
        }
        if path == ":memory:" || path.contains('?') {
            return Err(StoreError::BadUrl(format!(
                "{url:?}: in-memory databases and query parameters are not supported, a ledger \
                 is a file; {ACCEPTED_URLS}"
            )));
        }
        return Ok(StoreUrl::Sqlite(Path::new(path).to_path_buf()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(StoreUrl::Postgres(url.to_string()));
    }
    #[cfg(feature = "eventstore")]
    {
        if crate::eventstore::is_esdb_url(url) {
            return crate::eventstore::parse_url(url)
                .map(|url| StoreUrl::EventStore(Box::new(url)));
        }
    }
    #[cfg(not(feature = "eventstore"))]
    {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if matches!(
            scheme,
            Some("esdb" | "esdb+discover" | "kurrentdb" | "kurrentdb+discover" | "kurrent")
        ) {
            return Err(StoreError::BadUrl(format!(
                "{:?}: the EventStoreDB/KurrentDB backend is the cargo feature `eventstore`, \
                 which is not built into this binary: rebuild with `--features eventstore` \
                 (e.g. `cargo build --release --features eventstore`), or use sqlite://PATH \
                 or postgres://…",
                redact_url(url)
            )));
        }
    }
    let shown: String = url.chars().take(120).collect();
    Err(StoreError::BadUrl(format!(
        "{shown:?} is not a store URL; {ACCEPTED_URLS}"
    )))
}

/// A record as it goes into a database: seq as the databases' signed 64-bit integer, hashes as
/// lowercase hex and the body as its JCS canonical text.
#[derive(Debug, Clone)]
struct Row {
    seq: i64,
    prev: String,
    hash: String,
    body: String,
}

/// Checks that `batch` may be appended on `expected` (see [`EventStore::append`]) and turns it
/// into rows. Pure: the head comparison against the database happens in the backend's
/// transaction.
fn prepare_batch(expected: &Head, batch: &[Record]) -> Result<Vec<Row>, StoreError> {
    let Some(first) = batch.first() else {
        return Err(StoreError::InvalidBatch(
            "the batch is empty; an append carries at least one record".into(),
        ));
    };
    if batch.len() > MAX_BATCH_RECORDS {
        return Err(StoreError::InvalidBatch(format!(
            "{} records in one batch; at most {MAX_BATCH_RECORDS} per append, split it",
            batch.len()
        )));
    }
    let next_seq = expected.seq.checked_add(1).ok_or_else(|| {
        StoreError::InvalidBatch(
            "the expected head is at the largest seq; nothing can follow it".into(),
        )
    })?;
    if first.seq != next_seq || first.prev != expected.hash {
        return Err(StoreError::InvalidBatch(format!(
            "the first record (seq {}, prev {}) does not follow the expected head (seq {}, hash {}); \
             seal the batch on the head you expect",
            first.seq, first.prev, expected.seq, expected.hash
        )));
    }
    let mut rows = Vec::with_capacity(batch.len());
    let mut previous = *expected;
    for record in batch {
        if record.seq != previous.seq.wrapping_add(1) || record.prev != previous.hash {
            return Err(StoreError::InvalidBatch(format!(
                "record seq {} (prev {}) does not follow seq {} (hash {}): the batch must be \
                 contiguous, each prev the hash before it",
                record.seq, record.prev, previous.seq, previous.hash
            )));
        }
        let seq = i64::try_from(record.seq).map_err(|_| {
            StoreError::InvalidBatch(format!(
                "seq {} is beyond what a database stores",
                record.seq
            ))
        })?;
        check_body(&record.body, record.seq).map_err(|error| {
            StoreError::InvalidBatch(format!("record seq {}: {error}", record.seq))
        })?;
        let canonical = jcs::canonicalize(&record.body);
        let computed = record_hash(&record.prev, &canonical);
        if computed != record.hash {
            return Err(StoreError::InvalidBatch(format!(
                "record seq {} says hash {} but its prev and body hash to {computed}; reseal it",
                record.seq, record.hash
            )));
        }
        let body = String::from_utf8(canonical).map_err(|_| {
            StoreError::InvalidBatch(format!(
                "record seq {}: the canonical body is not UTF-8",
                record.seq
            ))
        })?;
        rows.push(Row {
            seq,
            prev: record.prev.to_hex(),
            hash: record.hash.to_hex(),
            body,
        });
        previous = record.head();
    }
    Ok(rows)
}

/// Turns a stored row back into a record; anything unreadable is [`StoreError::Corrupt`].
fn row_to_record(seq: i64, prev: &str, hash: &str, body: &str) -> Result<Record, StoreError> {
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        seq: 0,
        reason: format!("a stored seq is negative ({seq})"),
    })?;
    let corrupt = |reason: String| StoreError::Corrupt { seq, reason };
    let prev = prev
        .parse()
        .map_err(|error| corrupt(format!("prev: {error}")))?;
    let hash = hash
        .parse()
        .map_err(|error| corrupt(format!("hash: {error}")))?;
    let body = serde_json::from_str(body)
        .map_err(|error| corrupt(format!("the body is not JSON: {error}")))?;
    Ok(Record {
        seq,
        prev,
        hash,
        body,
    })
}

/// Checks a would-be origin: it names the ledger in checkpoints (DESIGN §6), one line of text.
fn check_origin(origin: &str) -> Result<(), StoreError> {
    if origin.trim().is_empty() || origin.contains('\n') || origin.contains('\r') {
        return Err(StoreError::Backend(format!(
            "cannot create a ledger named {origin:?}: an origin is a non-empty single line, \
             e.g. \"zhengzhou-2024-62\""
        )));
    }
    Ok(())
}

/// An error and its causes, "outer: inner: …" (tokio-postgres keeps the useful part, such as
/// "Connection refused", in the source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The current schema of both SQL backends; a ledger written by a newer schema is refused.
const SCHEMA_VERSION: &str = "1";

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundledger_events::seal_batch;
    use serde_json::json;

    fn bodies(from_seq: u64, count: u64) -> Vec<serde_json::Value> {
        (from_seq..from_seq + count)
            .map(|seq| {
                json!({"seq": seq, "type": "test", "recorded_at": "2024-06-01T09:00:00+08:00",
                       "command_id": format!("c{seq}"), "actor": {"id": "t", "role": "admin"}})
            })
            .collect()
    }

    #[test]
    fn urls_are_parsed_or_refused_with_the_accepted_forms() {
        let cases: &[(&str, Result<StoreUrl, &str>)] = &[
            (
                "sqlite://data/fundledger.db",
                Ok(StoreUrl::Sqlite("data/fundledger.db".into())),
            ),
            (
                "sqlite:///var/lib/x.db",
                Ok(StoreUrl::Sqlite("/var/lib/x.db".into())),
            ),
            (
                "postgres://postgres@127.0.0.1:5432/db",
                Ok(StoreUrl::Postgres(
                    "postgres://postgres@127.0.0.1:5432/db".into(),
                )),
            ),
            (
                "postgresql://h/db",
                Ok(StoreUrl::Postgres("postgresql://h/db".into())),
            ),
            ("sqlite://", Err("names no file")),
            ("sqlite://:memory:", Err("in-memory")),
            ("mysql://localhost/db", Err("accepted store URLs")),
            ("", Err("accepted store URLs")),
            ("data/fundledger.db", Err("accepted store URLs")),
        ];
        for (url, expected) in cases {
            match (parse_url(url), expected) {
                (Ok(parsed), Ok(want)) => assert_eq!(&parsed, want, "{url}"),
                (Err(StoreError::BadUrl(message)), Err(needle)) => {
                    assert!(message.contains(needle), "{url}: {message}")
                }
                (other, _) => panic!("{url}: unexpected {other:?}"),
            }
        }
    }

    #[cfg(not(feature = "eventstore"))]
    #[test]
    fn esdb_urls_without_the_feature_say_how_to_rebuild() {
        for url in [
            "esdb://admin:s3cret@localhost:2113?tls=false",
            "kurrentdb://h1:2113,h2:2113",
            "esdb+discover://cluster.example",
        ] {
            match parse_url(url) {
                Err(StoreError::BadUrl(message)) => {
                    assert!(message.contains("--features eventstore"), "{message}");
                    assert!(!message.contains("s3cret"), "{message}");
                }
                other => panic!("{url}: expected BadUrl, got {other:?}"),
            }
        }
    }

    #[cfg(feature = "eventstore")]
    #[test]
    fn esdb_urls_with_the_feature_go_to_the_eventstore_backend() {
        for url in [
            "esdb://admin:s3cret@localhost:2113?tls=false",
            "kurrentdb://h1:2113,h2:2113?stream=ledger-2024",
            "esdb+discover://cluster.example",
        ] {
            assert!(
                matches!(parse_url(url), Ok(StoreUrl::EventStore(_))),
                "{url}"
            );
        }
        match parse_url("esdb://localhost:2113?stream=$all") {
            Err(StoreError::BadUrl(message)) => assert!(message.contains("stream"), "{message}"),
            other => panic!("expected BadUrl, got {other:?}"),
        }
    }

    #[test]
    fn prepare_batch_refuses_what_append_must_refuse() {
        let empty = Head::empty("t");
        let batch = seal_batch(&empty, bodies(1, 3)).unwrap();
        let rows = prepare_batch(&empty, &batch).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].seq, 3);
        assert_eq!(
            rows[0].body.as_bytes(),
            jcs::canonicalize(&batch[0].body).as_slice()
        );

        let invalid = |batch: &[Record], expected: &Head, needle: &str| match prepare_batch(
            expected, batch,
        ) {
            Err(StoreError::InvalidBatch(message)) => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("expected InvalidBatch({needle}), got {other:?}"),
        };
        invalid(&[], &empty, "empty");
        invalid(&batch[1..], &empty, "does not follow the expected head");
        invalid(
            &batch,
            &batch[0].head(),
            "does not follow the expected head",
        );

        let mut gap = batch.clone();
        gap.remove(1);
        invalid(&gap, &empty, "contiguous");

        let mut broken_link = batch.clone();
        broken_link[1].prev = broken_link[0].prev;
        invalid(&broken_link, &empty, "contiguous");

        let mut edited = batch.clone();
        edited[2].body["note"] = json!("edited after sealing");
        invalid(&edited, &empty, "reseal");

        let mut bad_body = batch;
        bad_body[0].body = json!({"seq": 1});
        invalid(&bad_body, &empty, "record seq 1");
    }

    #[test]
    fn unreadable_rows_are_corrupt_with_their_seq() {
        let good = "0".repeat(64);
        assert!(row_to_record(7, &good, &good, "{}").is_ok());
        for (prev, hash, body) in [
            ("zz", good.as_str(), "{}"),
            (good.as_str(), "ABC", "{}"),
            (good.as_str(), good.as_str(), "not json"),
        ] {
            match row_to_record(7, prev, hash, body) {
                Err(StoreError::Corrupt { seq: 7, .. }) => {}
                other => panic!("expected Corrupt at seq 7, got {other:?}"),
            }
        }
    }
}
