//! The embedded backend: one SQLite file (`sqlite://PATH`).
//!
//! WAL journal with `synchronous=FULL`, so an acknowledged append survives a power cut; a
//! busy timeout, so several processes on one file wait for each other instead of failing.
//! An append runs in a `BEGIN IMMEDIATE` transaction, which takes the file's write lock before
//! the head is read: of two processes appending on the same head, the second reads the head the
//! first wrote and gets a conflict.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool. Writes and reads use
//! separate connections: WAL lets a reader go on while an append waits for its fsync.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use fundledger_events::{genesis, Hash, Head, Record};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::{check_origin, prepare_batch, row_to_record, EventStore, StoreError, SCHEMA_VERSION};

/// How long a connection waits for another process's write lock before giving up. Appends are
/// short; a wait this long means something holds the file.
const BUSY_TIMEOUT_MS: u64 = 10_000;

/// The schema, created in one transaction with the origin. The triggers make the file itself
/// refuse edits, whoever holds it (the sqlite3 shell included).
const SCHEMA_SQL: &str = r#"
CREATE TABLE fundledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE records (
    seq  INTEGER PRIMARY KEY CHECK (seq >= 1),
    prev TEXT NOT NULL CHECK (length(prev) = 64),
    hash TEXT NOT NULL CHECK (length(hash) = 64),
    body TEXT NOT NULL
);
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN
    SELECT RAISE(ABORT, 'fundledger records are append-only: UPDATE is refused; record a correcting event instead');
END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN
    SELECT RAISE(ABORT, 'fundledger records are append-only: DELETE is refused; record a correcting event instead');
END;
-- INSERT OR REPLACE deletes the old row without firing delete triggers (unless
-- recursive_triggers is on), so an insert onto an existing seq is refused here, before it.
CREATE TRIGGER records_no_replace BEFORE INSERT ON records
WHEN EXISTS (SELECT 1 FROM records WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'fundledger records are append-only: seq exists, it cannot be replaced');
END;
CREATE TRIGGER records_chained BEFORE INSERT ON records
WHEN NOT (
    (NEW.seq = 1 AND NEW.prev = (SELECT value FROM fundledger_meta WHERE key = 'genesis'))
    OR EXISTS (SELECT 1 FROM records WHERE seq = NEW.seq - 1 AND hash = NEW.prev)
)
BEGIN
    SELECT RAISE(ABORT, 'fundledger records are a chain: a record must follow the last one (seq + 1, prev = its hash)');
END;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON fundledger_meta
BEGIN
    SELECT RAISE(ABORT, 'fundledger_meta is write-once: the origin of a ledger never changes');
END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON fundledger_meta
BEGIN
    SELECT RAISE(ABORT, 'fundledger_meta is write-once: the origin of a ledger never changes');
END;
CREATE TRIGGER meta_no_replace BEFORE INSERT ON fundledger_meta
WHEN EXISTS (SELECT 1 FROM fundledger_meta WHERE key = NEW.key)
BEGIN
    SELECT RAISE(ABORT, 'fundledger_meta is write-once: the origin of a ledger never changes');
END;
"#;

const HEAD_SQL: &str = "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1";
const READ_SQL: &str =
    "SELECT seq, prev, hash, body FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2";
const INSERT_SQL: &str = "INSERT INTO records (seq, prev, hash, body) VALUES (?1, ?2, ?3, ?4)";

/// A ledger in one SQLite file.
pub struct SqliteStore {
    origin: String,
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("origin", &self.origin)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the ledger in the file at `path`, creating the file, its parent directories and
    /// the ledger (named `origin_if_new`) when there is none; an existing ledger keeps its origin.
    pub async fn open(path: impl Into<PathBuf>, origin_if_new: &str) -> Result<Self, StoreError> {
        let path = path.into();
        let origin_if_new = origin_if_new.to_string();
        blocking(move || {
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|error| {
                    StoreError::Unreachable(format!(
                        "cannot create the directory {} for the ledger file: {error}",
                        parent.display()
                    ))
                })?;
            }
            let mut writer = connect(&path, OpenFlags::default())?;
            // The ledger is made (or found) before the file is switched to WAL, so a file that
            // turns out not to be a ledger is left as it was.
            let origin = create_or_read_origin(&mut writer, &path, &origin_if_new)?;
            Self::finish_open(path, origin, writer)
        })
        .await
    }

    /// Opens the ledger in the file at `path` only if there is one; never creates anything,
    /// and changes nothing in a file that holds no ledger.
    pub async fn open_existing(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        blocking(move || {
            if !path.is_file() {
                return Err(StoreError::NotFound(format!(
                    "{} does not exist; check --store, or create a ledger first (e.g. with \
                     `fundledger apply` or `fundledger serve`)",
                    path.display()
                )));
            }
            // Without SQLITE_OPEN_CREATE: a file removed meanwhile is an error, not a new file.
            let flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
            let writer = connect(&path, flags)?;
            let origin = read_meta(&writer, &path, "origin")?.ok_or_else(|| {
                StoreError::NotFound(format!(
                    "{} is a SQLite file but holds no fundledger ledger; check --store",
                    path.display()
                ))
            })?;
            check_schema_version(&writer, &path)?;
            Self::finish_open(path, origin, writer)
        })
        .await
    }

    fn finish_open(path: PathBuf, origin: String, writer: Connection) -> Result<Self, StoreError> {
        configure(&writer, &path)?;
        let flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
        let reader = connect(&path, flags)?;
        configure(&reader, &path)?;
        // The reader never writes; saying so makes a bug that tries fail loudly.
        reader
            .pragma_update(None, "query_only", true)
            .map_err(|error| sql_error(&path, error))?;
        Ok(SqliteStore {
            origin,
            path,
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// The file the ledger lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    fn origin(&self) -> &str {
        &self.origin
    }

    async fn head(&self) -> Result<Head, StoreError> {
        let reader = Arc::clone(&self.reader);
        let path = self.path.clone();
        let origin = self.origin.clone();
        blocking(move || {
            let connection = lock(&reader);
            read_head(&connection, &origin).map_err(|error| sql_error(&path, error))?
        })
        .await
    }

    async fn append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        let rows = prepare_batch(&expected, batch)?;
        let new_head = batch.last().map(Record::head).unwrap_or(expected);
        let writer = Arc::clone(&self.writer);
        let path = self.path.clone();
        let origin = self.origin.clone();
        blocking(move || {
            let mut connection = lock(&writer);
            let sql = |error| sql_error(&path, error);
            // IMMEDIATE takes the write lock now, so the head read below cannot go stale
            // before the insert: another process's append waits for our commit, then conflicts.
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let actual = read_head(&transaction, &origin).map_err(sql)??;
            if actual != expected {
                // Dropping the transaction rolls it back; nothing was written.
                return Err(StoreError::Conflict { expected, actual });
            }
            {
                let mut insert = transaction.prepare_cached(INSERT_SQL).map_err(sql)?;
                for row in &rows {
                    insert
                        .execute(params![row.seq, row.prev, row.hash, row.body])
                        .map_err(sql)?;
                }
            }
            transaction.commit().map_err(sql)?;
            Ok(new_head)
        })
        .await
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        // No stored seq is beyond i64::MAX, and a limit beyond it means "all".
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reader = Arc::clone(&self.reader);
        let path = self.path.clone();
        blocking(move || {
            let connection = lock(&reader);
            let sql = |error| sql_error(&path, error);
            let mut statement = connection.prepare_cached(READ_SQL).map_err(sql)?;
            let mut rows = statement.query(params![from_seq, limit]).map_err(sql)?;
            let mut records = Vec::new();
            while let Some(row) = rows.next().map_err(sql)? {
                let seq: i64 = row.get(0).map_err(sql)?;
                let text = |index| {
                    row.get::<_, String>(index)
                        .map_err(|error| StoreError::Corrupt {
                            seq: u64::try_from(seq).unwrap_or(0),
                            reason: format!("column {index} is not text: {error}"),
                        })
                };
                records.push(row_to_record(seq, &text(1)?, &text(2)?, &text(3)?)?);
            }
            Ok(records)
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// Runs blocking SQLite work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Backend(format!("the SQLite worker task failed: {error}")))?
}

/// Locks a connection. A panic while it was held cannot leave a transaction open (rusqlite
/// rolls back on drop), so a poisoned lock still guards a usable connection.
fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens a connection that waits for other processes' locks instead of failing at once.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let connection =
        Connection::open_with_flags(path, flags).map_err(|error| sql_error(path, error))?;
    connection
        .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(|error| sql_error(path, error))?;
    Ok(connection)
}

/// The durability settings of a ledger's connection.
fn configure(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |error| sql_error(path, error);
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "{}: SQLite refused WAL mode (journal_mode is {mode}); put the ledger on a local disk",
            path.display()
        )));
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged append survives a crash.
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    Ok(())
}

/// Creates the schema and origin in an empty file, or reads the origin of an existing ledger.
/// One IMMEDIATE transaction: two processes creating the same file cannot both create it.
fn create_or_read_origin(
    connection: &mut Connection,
    path: &Path,
    origin_if_new: &str,
) -> Result<String, StoreError> {
    let sql = |error| sql_error(path, error);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    if let Some(origin) = read_meta(&transaction, path, "origin")? {
        check_schema_version(&transaction, path)?;
        return Ok(origin);
    }
    // Only an empty file becomes a ledger: never add tables to another program's database.
    let objects: i64 = transaction
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(sql)?;
    if objects > 0 {
        return Err(StoreError::Backend(format!(
            "{} is a SQLite database with other tables but no fundledger ledger; use a new file",
            path.display()
        )));
    }
    check_origin(origin_if_new)?;
    transaction.execute_batch(SCHEMA_SQL).map_err(sql)?;
    let genesis_hex = genesis(origin_if_new).to_hex();
    for (key, value) in [
        ("origin", origin_if_new),
        ("schema_version", SCHEMA_VERSION),
        ("genesis", &genesis_hex),
    ] {
        transaction
            .execute(
                "INSERT INTO fundledger_meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map_err(sql)?;
    }
    transaction.commit().map_err(sql)?;
    Ok(origin_if_new.to_string())
}

/// A value of the meta table; None when the table or the key is not there.
fn read_meta(
    connection: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let sql = |error| sql_error(path, error);
    let has_table: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fundledger_meta')",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    if !has_table {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT value FROM fundledger_meta WHERE key = ?1",
            [key],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)
}

fn check_schema_version(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    match read_meta(connection, path, "schema_version")? {
        Some(version) if version == SCHEMA_VERSION => Ok(()),
        found => Err(StoreError::Backend(format!(
            "{} holds a ledger of schema version {found:?}, but this build reads version \
             {SCHEMA_VERSION}; use the fundledger release that wrote it",
            path.display()
        ))),
    }
}

/// The head, read inside whatever transaction `connection` is in. The outer error is SQLite's,
/// the inner one a stored hash that cannot be read.
fn read_head(connection: &Connection, origin: &str) -> rusqlite::Result<Result<Head, StoreError>> {
    let last: Option<(i64, String)> = connection
        .prepare_cached(HEAD_SQL)?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(match last {
        None => Ok(Head::empty(origin)),
        Some((seq, hash)) => {
            let seq_u64 = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                seq: 0,
                reason: format!("a stored seq is negative ({seq})"),
            });
            seq_u64.and_then(|seq| {
                hash.parse::<Hash>()
                    .map(|hash| Head { seq, hash })
                    .map_err(|error| StoreError::Corrupt {
                        seq,
                        reason: format!("hash: {error}"),
                    })
            })
        }
    })
}

/// Maps a SQLite error to what the caller can act on.
fn sql_error(path: &Path, error: rusqlite::Error) -> StoreError {
    let shown = path.display();
    match error.sqlite_error_code() {
        Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::PermissionDenied)
        | Some(ErrorCode::ReadOnly) => StoreError::Unreachable(format!(
            "cannot open {shown} for reading and writing: {error}"
        )),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Backend(format!(
            "{shown} stayed locked by another process for more than {BUSY_TIMEOUT_MS} ms: {error}"
        ))
        }
        Some(ErrorCode::NotADatabase) => {
            StoreError::Backend(format!("{shown} is not a SQLite database: {error}"))
        }
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Backend(format!(
            "{shown} is damaged ({error}); restore it from a backup or an export"
        )),
        Some(ErrorCode::DiskFull) => {
            StoreError::Backend(format!("{shown}: the disk is full: {error}"))
        }
        _ => StoreError::Backend(format!("{shown}: {error}")),
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The `synchronous` setting of the store's writer connection (2 = FULL).
    pub(crate) fn writer_synchronous(store: &SqliteStore) -> i64 {
        lock(&store.writer)
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap()
    }
}
