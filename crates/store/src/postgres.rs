//! The server backend: PostgreSQL (`postgres://…`), for several server processes on one log.
//!
//! Appends serialise on the head with a transaction-scoped advisory lock: the transaction takes
//! the lock, reads the head, compares it with the expected one and inserts, so of two appenders
//! on the same head exactly one wins and the other reads the new head and gets a conflict, on
//! any number of connections and processes. A unique violation on `seq` (a writer that skipped
//! the lock) is a conflict too. Rows go in with one `INSERT … SELECT unnest(…)` per chunk, four
//! array parameters whatever the chunk's size.
//!
//! Bodies are `TEXT` (not `jsonb`, which reorders keys): the stored bytes are the hashed bytes.
//! Triggers refuse `UPDATE`, `DELETE` and `TRUNCATE` of records, and any insert that does not
//! hang from the previous record. Writes and reads use separate connections, each reconnected
//! on the next call after it was lost. TLS is not built in (`NoTls`): reach a remote server
//! through a private network or a local proxy.

use std::time::Duration;

use async_trait::async_trait;
use fundledger_events::{genesis, Hash, Head, Record};
use futures::StreamExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Mutex;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, Config, GenericClient, NoTls, Statement};

use crate::{
    check_origin, error_chain, prepare_batch, row_to_record, AppendNotifications, EventStore, Row,
    StoreError, ACCEPTED_URLS, SCHEMA_VERSION,
};

/// Connect timeout when the URL sets none: an unreachable server is reported in seconds.
const DEFAULT_CONNECT_TIMEOUT_S: u64 = 10;

/// Rows per INSERT statement: bounds one message to a few megabytes while a 10,000-record batch
/// still takes only a few round trips.
const INSERT_CHUNK_ROWS: usize = 2_000;

/// Advisory lock keys (per database). Arbitrary constants: "fundledg" in ASCII, and one more.
const SCHEMA_LOCK_KEY: i64 = 0x6675_6e64_6c65_6467;
const APPEND_LOCK_KEY: i64 = SCHEMA_LOCK_KEY + 1;

const SCHEMA_SQL: &str = r#"
CREATE TABLE fundledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE records (
    seq  BIGINT PRIMARY KEY CHECK (seq >= 1),
    prev TEXT NOT NULL CHECK (length(prev) = 64),
    hash TEXT NOT NULL CHECK (length(hash) = 64),
    body TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION fundledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: % is refused', TG_ARGV[0], TG_OP;
END
$$;
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION fundledger_refuse_change(
        'fundledger records are append-only, record a correcting event instead');
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change(
        'fundledger records are append-only, record a correcting event instead');
CREATE TRIGGER meta_write_once BEFORE UPDATE OR DELETE ON fundledger_meta
    FOR EACH ROW EXECUTE FUNCTION fundledger_refuse_change(
        'fundledger_meta is write-once, the origin of a ledger never changes');
CREATE TRIGGER meta_no_truncate BEFORE TRUNCATE ON fundledger_meta
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change(
        'fundledger_meta is write-once, the origin of a ledger never changes');
-- An AFTER row trigger runs at the end of the statement and sees all its rows, so a
-- multi-row insert is checked whatever order its rows were inserted in.
CREATE OR REPLACE FUNCTION fundledger_check_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq = 1 THEN
        IF NEW.prev IS DISTINCT FROM (SELECT value FROM fundledger_meta WHERE key = 'genesis') THEN
            RAISE EXCEPTION 'fundledger records are a chain: seq 1 must hang from the genesis of the origin';
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM records WHERE seq = NEW.seq - 1 AND hash = NEW.prev) THEN
        RAISE EXCEPTION 'fundledger records are a chain: seq % must follow seq % (prev = its hash)',
            NEW.seq, NEW.seq - 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER records_chained AFTER INSERT ON records
    FOR EACH ROW EXECUTE FUNCTION fundledger_check_link();
"#;

const HEAD_SQL: &str = "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1";
const READ_SQL: &str =
    "SELECT seq, prev, hash, body FROM records WHERE seq >= $1 ORDER BY seq LIMIT $2";
const INSERT_SQL: &str = "INSERT INTO records (seq, prev, hash, body) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])";
/// The channel on which every append announces its new head seq (delivered at commit, so a
/// listener never hears of rows it cannot read yet); see [`EventStore::notifications`].
pub const APPENDED_CHANNEL: &str = "fundledger_appended";
const NOTIFY_SQL: &str = "SELECT pg_notify('fundledger_appended', $1)";

/// One connection and its prepared statements.
struct Connection {
    client: Client,
    head: Statement,
    read: Statement,
    insert: Statement,
    notify: Statement,
}

/// A ledger in a PostgreSQL database.
pub struct PostgresStore {
    origin: String,
    config: Config,
    /// user@host:port/database, for messages; never the password.
    described: String,
    writer: Mutex<Option<Connection>>,
    reader: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("origin", &self.origin)
            .field("database", &self.described)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the ledger in the database at `url`, creating the schema and the origin
    /// (`origin_if_new`) when the database holds none; an existing ledger keeps its origin.
    /// The database itself must exist.
    pub async fn open(url: &str, origin_if_new: &str) -> Result<Self, StoreError> {
        let (config, described) = parse_config(url)?;
        let mut client = connect(&config, &described).await?;
        let origin = create_or_read_origin(&mut client, &described, origin_if_new).await?;
        Self::finish_open(config, described, origin, client).await
    }

    /// Opens the ledger in the database at `url` only if there is one; creates nothing.
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        let (config, described) = parse_config(url)?;
        let client = connect(&config, &described).await?;
        let origin = read_meta(&client, &described, "origin")
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                "the database {described} holds no fundledger ledger; check --store, or create \
                 a ledger first (e.g. with `fundledger apply` or `fundledger serve`)"
            ))
            })?;
        check_schema_version(&client, &described).await?;
        Self::finish_open(config, described, origin, client).await
    }

    async fn finish_open(
        config: Config,
        described: String,
        origin: String,
        client: Client,
    ) -> Result<Self, StoreError> {
        let writer = prepare(client, &described).await?;
        let reader = prepare(connect(&config, &described).await?, &described).await?;
        Ok(PostgresStore {
            origin,
            config,
            described,
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(Some(reader)),
        })
    }

    /// The connection in `slot`, connecting again when it is missing or was lost.
    async fn connection<'a>(
        &self,
        slot: &'a mut Option<Connection>,
    ) -> Result<&'a mut Connection, StoreError> {
        if slot
            .as_ref()
            .is_some_and(|connection| connection.client.is_closed())
        {
            *slot = None;
        }
        if slot.is_none() {
            let client = connect(&self.config, &self.described).await?;
            *slot = Some(prepare(client, &self.described).await?);
        }
        slot.as_mut()
            .ok_or_else(|| StoreError::Backend("no PostgreSQL connection".into()))
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    fn origin(&self) -> &str {
        &self.origin
    }

    async fn head(&self) -> Result<Head, StoreError> {
        let mut slot = self.reader.lock().await;
        let connection = self.connection(&mut slot).await?;
        read_head(
            &connection.client,
            &connection.head,
            &self.origin,
            &self.described,
        )
        .await
    }

    async fn append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        let rows = prepare_batch(&expected, batch)?;
        let new_head = batch.last().map(Record::head).unwrap_or(expected);
        let mut slot = self.writer.lock().await;
        let connection = self.connection(&mut slot).await?;
        let outcome = append_rows(connection, &self.origin, &self.described, expected, &rows).await;
        outcome.map(|()| new_head)
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
        let mut slot = self.reader.lock().await;
        let connection = self.connection(&mut slot).await?;
        let rows = connection
            .client
            .query(&connection.read, &[&from_seq, &limit])
            .await
            .map_err(|error| pg_error(&self.described, error))?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row
                .try_get(0)
                .map_err(|error| pg_error(&self.described, error))?;
            let text = |index| {
                row.try_get::<_, String>(index)
                    .map_err(|error| StoreError::Corrupt {
                        seq: u64::try_from(seq).unwrap_or(0),
                        reason: format!("column {index} is not text: {error}"),
                    })
            };
            records.push(row_to_record(seq, &text(1)?, &text(2)?, &text(3)?)?);
        }
        Ok(records)
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    /// LISTENs on [`APPENDED_CHANNEL`] on a connection of its own.
    async fn notifications(&self) -> Result<Option<AppendNotifications>, StoreError> {
        let (client, mut connection) = self.config.connect(NoTls).await.map_err(|error| {
            StoreError::Unreachable(format!(
                "cannot connect to PostgreSQL at {} to listen for appends: {}",
                self.described,
                error_chain(&error)
            ))
        })?;
        let (sender, receiver) = tokio::sync::mpsc::channel(AppendNotifications::BUFFER);
        let described = self.described.clone();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(notification)) => {
                        let seq = notification.payload().parse::<u64>().unwrap_or(0);
                        // Full: an undelivered item already says "catch up".
                        if let Err(TrySendError::Closed(_)) = sender.try_send(seq) {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(database = %described, %error, "the connection listening for appends was lost");
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {APPENDED_CHANNEL}"))
            .await
            .map_err(|error| pg_error(&self.described, error))?;
        // The client keeps the connection (and so the subscription) alive.
        Ok(Some(AppendNotifications::new(receiver, Box::new(client))))
    }
}

/// The append transaction: lock, compare heads, insert, commit.
async fn append_rows(
    connection: &mut Connection,
    origin: &str,
    described: &str,
    expected: Head,
    rows: &[Row],
) -> Result<(), StoreError> {
    let Connection {
        client,
        head,
        insert,
        notify,
        ..
    } = connection;
    let pg = |error| pg_error(described, error);
    let transaction = client.transaction().await.map_err(pg)?;
    // Held until commit or rollback: every appender reads the head only after the previous
    // appender's rows are committed and visible (READ COMMITTED takes a new snapshot per
    // statement).
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK_KEY])
        .await
        .map_err(pg)?;
    let actual = read_head(&transaction, head, origin, described).await?;
    if actual != expected {
        // Dropping the transaction rolls it back; nothing was written.
        return Err(StoreError::Conflict { expected, actual });
    }
    for chunk in rows.chunks(INSERT_CHUNK_ROWS) {
        let seqs: Vec<i64> = chunk.iter().map(|row| row.seq).collect();
        let prevs: Vec<&str> = chunk.iter().map(|row| row.prev.as_str()).collect();
        let hashes: Vec<&str> = chunk.iter().map(|row| row.hash.as_str()).collect();
        let bodies: Vec<&str> = chunk.iter().map(|row| row.body.as_str()).collect();
        if let Err(error) = transaction
            .execute(&*insert, &[&seqs, &prevs, &hashes, &bodies])
            .await
        {
            let unique_violation = error.code() == Some(&SqlState::UNIQUE_VIOLATION);
            // The failed transaction is rolled back either way; the error that matters is the
            // insert's, so a rollback error (a lost connection) only loses detail.
            let _ = transaction.rollback().await;
            if unique_violation {
                // Someone appended without taking the lock; it is still a lost race.
                let actual = read_head(&*client, head, origin, described).await?;
                return Err(StoreError::Conflict { expected, actual });
            }
            return Err(pg(error));
        }
    }
    // Other server processes on this ledger hear of the new head when this commits.
    let new_seq = rows
        .last()
        .map_or(expected.seq, |row| row.seq.unsigned_abs());
    transaction
        .execute(&*notify, &[&new_seq.to_string()])
        .await
        .map_err(pg)?;
    transaction.commit().await.map_err(|error| match pg(error) {
        StoreError::Unreachable(message) => StoreError::Unreachable(format!(
            "{message}; the connection was lost during commit, so the append may or may not have \
             been written: read the head before deciding again"
        )),
        other => other,
    })
}

async fn read_head(
    client: &impl GenericClient,
    statement: &Statement,
    origin: &str,
    described: &str,
) -> Result<Head, StoreError> {
    let pg = |error| pg_error(described, error);
    let Some(row) = client.query_opt(statement, &[]).await.map_err(pg)? else {
        return Ok(Head::empty(origin));
    };
    let seq: i64 = row.try_get(0).map_err(pg)?;
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        seq: 0,
        reason: format!("a stored seq is negative ({seq})"),
    })?;
    let hash: String = row.try_get(1).map_err(pg)?;
    let hash = hash.parse::<Hash>().map_err(|error| StoreError::Corrupt {
        seq,
        reason: format!("hash: {error}"),
    })?;
    Ok(Head { seq, hash })
}

/// Creates the schema and the origin in a database without a ledger, or reads the origin of
/// the ledger there. Under an advisory lock: two processes creating one ledger cannot race.
async fn create_or_read_origin(
    client: &mut Client,
    described: &str,
    origin_if_new: &str,
) -> Result<String, StoreError> {
    let pg = |error| pg_error(described, error);
    let transaction = client.transaction().await.map_err(pg)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
        .await
        .map_err(pg)?;
    if let Some(origin) = read_meta(&transaction, described, "origin").await? {
        check_schema_version(&transaction, described).await?;
        transaction.commit().await.map_err(pg)?;
        return Ok(origin);
    }
    let records_exists: bool = transaction
        .query_one("SELECT to_regclass('records') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(pg)?;
    if records_exists {
        return Err(StoreError::Backend(format!(
            "the database {described} has a records table but no fundledger ledger; it was not \
             made by fundledger: use another database"
        )));
    }
    check_origin(origin_if_new)?;
    transaction.batch_execute(SCHEMA_SQL).await.map_err(pg)?;
    let genesis_hex = genesis(origin_if_new).to_hex();
    for (key, value) in [
        ("origin", origin_if_new),
        ("schema_version", SCHEMA_VERSION),
        ("genesis", &genesis_hex),
    ] {
        transaction
            .execute(
                "INSERT INTO fundledger_meta (key, value) VALUES ($1, $2)",
                &[&key, &value],
            )
            .await
            .map_err(pg)?;
    }
    transaction.commit().await.map_err(pg)?;
    Ok(origin_if_new.to_string())
}

/// A value of the meta table; None when the table or the key is not there.
async fn read_meta(
    client: &impl GenericClient,
    described: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let pg = |error| pg_error(described, error);
    let has_table: bool = client
        .query_one("SELECT to_regclass('fundledger_meta') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(pg)?;
    if !has_table {
        return Ok(None);
    }
    let row = client
        .query_opt("SELECT value FROM fundledger_meta WHERE key = $1", &[&key])
        .await
        .map_err(pg)?;
    row.map(|row| row.try_get(0)).transpose().map_err(pg)
}

async fn check_schema_version(
    client: &impl GenericClient,
    described: &str,
) -> Result<(), StoreError> {
    match read_meta(client, described, "schema_version").await? {
        Some(version) if version == SCHEMA_VERSION => Ok(()),
        found => Err(StoreError::Backend(format!(
            "the database {described} holds a ledger of schema version {found:?}, but this build \
             reads version {SCHEMA_VERSION}; use the fundledger release that wrote it"
        ))),
    }
}

/// Parses a `postgres://` URL, and describes it for messages without its password.
fn parse_config(url: &str) -> Result<(Config, String), StoreError> {
    let mut config: Config = url.parse().map_err(|error| {
        StoreError::BadUrl(format!("not a PostgreSQL URL ({error}); {ACCEPTED_URLS}"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_S));
    }
    if config.get_application_name().is_none() {
        config.application_name("fundledger");
    }
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(index).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let described = format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("(default user)"),
        if hosts.is_empty() {
            "localhost".to_string()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or("(default database)"),
    );
    Ok((config, described))
}

/// Connects, and runs the connection on tokio until the client is dropped.
async fn connect(config: &Config, described: &str) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|error| {
        if error.as_db_error().is_some() {
            return pg_error(described, error);
        }
        StoreError::Unreachable(format!(
            "cannot connect to PostgreSQL at {described}: {}; is the server running and the \
             URL right?",
            error_chain(&error)
        ))
    })?;
    let described = described.to_string();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(database = %described, %error, "PostgreSQL connection ended with an error");
        }
    });
    Ok(client)
}

async fn prepare(client: Client, described: &str) -> Result<Connection, StoreError> {
    let pg = |error| pg_error(described, error);
    let head = client.prepare(HEAD_SQL).await.map_err(pg)?;
    let read = client.prepare(READ_SQL).await.map_err(pg)?;
    let insert = client.prepare(INSERT_SQL).await.map_err(pg)?;
    let notify = client.prepare(NOTIFY_SQL).await.map_err(pg)?;
    Ok(Connection {
        client,
        head,
        read,
        insert,
        notify,
    })
}

/// Maps a PostgreSQL error to what the caller can act on.
fn pg_error(described: &str, error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let detail = db
            .detail()
            .map(|detail| format!(" ({detail})"))
            .unwrap_or_default();
        let message = format!("{}{detail} [SQLSTATE {}]", db.message(), code.code());
        return if *code == SqlState::INVALID_CATALOG_NAME {
            StoreError::NotFound(format!(
                "{described}: {message}; create the database first (e.g. `createdb`), the store \
                 creates only the tables in it"
            ))
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            StoreError::Unreachable(format!(
                "{described}: PostgreSQL refused the login: {message}; check the user and password \
                 in the URL"
            ))
        } else if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            StoreError::Unreachable(format!("{described}: {message}"))
        } else {
            StoreError::Backend(format!("{described}: {message}"))
        };
    }
    let io = std::error::Error::source(&error).is_some_and(|source| source.is::<std::io::Error>());
    if error.is_closed() || io {
        return StoreError::Unreachable(format!(
            "the connection to {described} was lost ({}); the next call reconnects",
            error_chain(&error)
        ));
    }
    StoreError::Backend(format!("{described}: {}", error_chain(&error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_show_the_password() {
        let (_, described) =
            parse_config("postgres://alice:s3cret@db.example:6543/ledger").unwrap();
        assert_eq!(described, "alice@db.example:6543/ledger");
        assert!(matches!(
            parse_config("postgres://h:notaport/db"),
            Err(StoreError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_as_unreachable() {
        // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
        match crate::open(
            "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5",
            "t",
        )
        .await
        {
            Err(StoreError::Unreachable(message)) => {
                assert!(message.contains("127.0.0.1:1"), "{message}");
                assert!(message.contains("refused"), "the cause is shown: {message}");
                assert!(!message.contains("s3cret"));
            }
            Err(other) => panic!("expected Unreachable, got {other:?}"),
            Ok(_) => panic!("expected Unreachable, got a store"),
        }
    }
}
