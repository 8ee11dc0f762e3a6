//! Scratch databases for tests, this crate's and other crates' (ledger, cli, api).
//!
//! ```no_run
//! # async fn example() -> Result<(), fundledger_store::StoreError> {
//! let db = fundledger_store::testing::scratch_postgres().await?; // a fresh, empty database
//! let store = fundledger_store::open(db.url(), "test-ledger").await?;
//! // … use the store …
//! drop(store);
//! db.cleanup().await?; // or just drop `db`: its Drop removes the database too
//! # Ok(()) }
//! ```
//!
//! PostgreSQL tests read the admin URL from `FUNDLEDGER_TEST_PG` (default
//! [`DEFAULT_PG_ADMIN_URL`]); the role must be allowed to create databases. When the server
//! cannot be reached, [`scratch_postgres`] fails with [`StoreError::Unreachable`] saying how to
//! start it: a test must fail then, not pass without having run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use crate::StoreError;

/// The environment variable holding the admin URL of the test PostgreSQL server.
pub const PG_ENV: &str = "FUNDLEDGER_TEST_PG";
/// The admin URL used when [`PG_ENV`] is not set.
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How to start the machine's PostgreSQL, for the message of a failed test.
pub const START_PG_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect \
     $(ls /etc/postgresql) main start`, or set FUNDLEDGER_TEST_PG to the admin URL of a server \
     where this user may create databases";

/// Connect timeout of the admin connection: a test must fail fast when the server is down.
const ADMIN_CONNECT_TIMEOUT_S: u64 = 5;

/// Makes scratch names unique within one process; the pid and the clock make them unique
/// across processes.
static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The admin URL of the test PostgreSQL server: `$FUNDLEDGER_TEST_PG` or the default.
pub fn pg_admin_url() -> String {
    std::env::var(PG_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_ADMIN_URL.to_string())
}

/// A database made for one test, dropped by [`ScratchDb::cleanup`] or, failing that (a test
/// that panicked), by `Drop`.
#[derive(Debug)]
pub struct ScratchDb {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl ScratchDb {
    /// The `postgres://` URL of the scratch database, for [`crate::open`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of another database on the same server (which may not exist), e.g. to test
    /// what happens with a missing database.
    pub fn sibling_url(&self, database: &str) -> Result<String, StoreError> {
        with_database(&self.admin_url, database)
    }

    /// Drops the database, ending any connection still open on it.
    pub async fn cleanup(mut self) -> Result<(), StoreError> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop cannot await, and may run inside a runtime (where blocking on it is not
        // allowed) or during a panic: a thread with its own small runtime does the work.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| {
                    StoreError::Backend(format!("no runtime to drop the database: {error}"))
                })?;
            runtime.block_on(drop_database(&admin_url, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("scratch database {} was not dropped: {error}", self.name),
            Err(_) => eprintln!(
                "scratch database {} was not dropped: the thread panicked",
                self.name
            ),
        }
    }
}

/// Creates an empty database with a unique name (`fundledger_test_<pid>_<counter>_<nanos>`) on
/// the test server (see [`pg_admin_url`]).
pub async fn scratch_postgres() -> Result<ScratchDb, StoreError> {
    let admin_url = pg_admin_url();
    let counter = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let name = format!("fundledger_test_{}_{counter}_{nanos}", std::process::id());
    let url = with_database(&admin_url, &name)?;
    let admin = admin_client(&admin_url).await?;
    // The name is made of [a-z0-9_] only, so quoting it is enough.
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|error| {
            StoreError::Backend(format!(
                "cannot create the scratch database {name}: {}",
                pg_message(&error)
            ))
        })?;
    Ok(ScratchDb {
        admin_url,
        name,
        url,
        dropped: false,
    })
}

/// A scratch SQLite ledger location: a temporary directory (removed on drop) and the URL of a
/// file in it that does not exist yet.
#[derive(Debug)]
pub struct ScratchSqlite {
    dir: tempfile::TempDir,
    path: PathBuf,
    url: String,
}

impl ScratchSqlite {
    /// The `sqlite://` URL of the (not yet created) ledger file.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ledger file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory holding it, removed when this is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A fresh temporary directory and the URL of a ledger file inside it.
pub fn scratch_sqlite() -> Result<ScratchSqlite, StoreError> {
    let dir = tempfile::Builder::new()
        .prefix("fundledger-test-")
        .tempdir()
        .map_err(|error| {
            StoreError::Backend(format!("cannot create a temporary directory: {error}"))
        })?;
    let path = dir.path().join("fundledger.db");
    let url = format!("sqlite://{}", path.display());
    Ok(ScratchSqlite { dir, path, url })
}

async fn admin_client(admin_url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let mut config: tokio_postgres::Config = admin_url.parse().map_err(|error| {
        StoreError::BadUrl(format!(
            "{PG_ENV} is not a PostgreSQL URL ({error}): {admin_url:?}"
        ))
    })?;
    config.connect_timeout(Duration::from_secs(ADMIN_CONNECT_TIMEOUT_S));
    let (client, connection) = config.connect(NoTls).await.map_err(|error| {
        StoreError::Unreachable(format!(
            "the test PostgreSQL server ({PG_ENV}, here {}) cannot be reached: {}; {START_PG_HINT}",
            crate::redact_url(admin_url),
            pg_message(&error)
        ))
    })?;
    tokio::spawn(async move {
        // The admin connection lives only for one statement; its end is of no interest.
        let _ = connection.await;
    });
    Ok(client)
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let admin = admin_client(admin_url).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map_err(|error| {
            StoreError::Backend(format!(
                "cannot drop the scratch database {name}: {}",
                pg_message(&error)
            ))
        })
}

fn pg_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => crate::error_chain(error),
    }
}

/// `url` with its database (the path) replaced by `database`, query parameters kept.
fn with_database(url: &str, database: &str) -> Result<String, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let Some((scheme, rest)) = base.split_once("://") else {
        return Err(StoreError::BadUrl(format!(
            "{PG_ENV} must be a postgres:// URL, got {:?}",
            crate::redact_url(url)
        )));
    };
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_urls_name_the_scratch_database() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            ("postgres://u:p@h", "postgres://u:p@h/x"),
            (
                "postgresql://u@h:1/db?connect_timeout=3",
                "postgresql://u@h:1/x?connect_timeout=3",
            ),
        ];
        for (admin, expected) in cases {
            assert_eq!(with_database(admin, "x").unwrap(), expected);
        }
        assert!(with_database("host=localhost", "x").is_err());
        assert_eq!(
            crate::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(crate::redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[tokio::test]
    async fn scratch_databases_are_created_and_dropped() {
        let db = match scratch_postgres().await {
            Ok(db) => db,
            Err(error) => panic!("{error}"),
        };
        let name = db.name().to_string();
        let exists = |name: String| async move {
            let admin = admin_client(&pg_admin_url()).await.unwrap();
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_database WHERE datname = $1",
                    &[&name],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 1
        };
        assert!(exists(name.clone()).await);
        db.cleanup().await.unwrap();
        assert!(!exists(name.clone()).await);

        // Dropped without cleanup (as when a test panics): Drop removes it.
        let db = scratch_postgres().await.unwrap();
        let name = db.name().to_string();
        drop(db);
        assert!(!exists(name).await);
    }
}
