//! `fundledger bench write|cold-start|memory|http|verify`: the benchmarks of BENCHMARKS.md.
//!
//! Each bench runs from one command, prints its figures and one ratio measured in the same run
//! (so machine noise hits both sides of it alike), and takes size flags so that CI can run a
//! smoke-sized version in seconds:
//!
//! - [`write`]: commands/s through the real writer (decide + seal + append + project) on a
//!   voucher workload, against appending the very records it wrote, in the very batch sizes it
//!   used, straight into a fresh store of the same kind (the store's own limit).
//! - [`cold_start`]: rebuilding every projection from N records against only reading them,
//!   from the store and from an export file.
//! - [`memory`]: resident memory per million records held in the projections.
//! - [`http`]: requests/s and p99 latency of a write and a read on loopback, against the same
//!   server answering `/healthz`, with a built-in keep-alive load generator.
//! - `verify` is [`crate::bench_verify`].
//!
//! Shared here: the `--store` choice of scratch stores ([`StoreChoice`]), the bench data
//! directory with its cached ledgers ([`dataset`]), a store wrapper that records batch sizes
//! ([`RecordingStore`]) and `/proc/self/status` readings.

mod cold_start;
pub(crate) mod dataset;
mod http;
mod memory;
mod workload;
mod write;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Subcommand;
use fundledger_events::{Head, Record};
use fundledger_store::{EventStore, StoreError};

/// Where generated ledgers and exports are cached (and scratch SQLite files live): under the
/// target directory, so they are never committed and `cargo clean` removes them.
pub const DEFAULT_DATA_DIR: &str = "target/bench-data";
/// Origin of every ledger the benches make.
pub const BENCH_ORIGIN: &str = "bench.fundledger.example/zhengzhou-2024-62";

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Commands/s through the writer vs appending the same records straight into the store.
    Write(write::WriteArgs),
    /// Rebuilding all projections from N records vs reading them raw (store and export file).
    ColdStart(cold_start::ColdStartArgs),
    /// Peak and resident memory per million records held in the projections.
    Memory(memory::MemoryArgs),
    /// Requests/s and p99 of POST /v1/commands and GET /v1/budgets vs GET /healthz, on loopback.
    Http(http::HttpArgs),
    /// Records/s of `fundledger verify --file` vs b3sum on the same export.
    Verify(crate::bench_verify::BenchVerifyArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Write(args) => write::run(args).await,
        BenchCommand::ColdStart(args) => cold_start::run(args).await,
        BenchCommand::Memory(args) => memory::run(args).await,
        BenchCommand::Http(args) => http::run(args).await,
        BenchCommand::Verify(args) => crate::bench_verify::run(args).await,
    }
}

/// The `--store` of a bench: which kind of scratch store to make. The bench creates its own
/// stores (a file in a temporary directory, a database with a unique name) and removes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// `sqlite` or `sqlite://DIR`: files in a temporary directory under DIR (default: the
    /// bench data directory, on the same disk as the target directory).
    Sqlite { dir: Option<PathBuf> },
    /// `postgres` or `postgres://ADMIN_URL`: scratch databases created (and dropped) on that
    /// server; `postgres` alone uses `FUNDLEDGER_TEST_PG` or postgres://postgres@127.0.0.1:5432.
    Postgres { admin_url: Option<String> },
}

impl StoreChoice {
    pub fn parse(text: &str) -> anyhow::Result<StoreChoice> {
        let text = text.trim();
        if text == "sqlite" {
            return Ok(StoreChoice::Sqlite { dir: None });
        }
        if let Some(dir) = text.strip_prefix("sqlite://") {
            if dir.is_empty() {
                anyhow::bail!("--store sqlite://DIR names no directory");
            }
            return Ok(StoreChoice::Sqlite {
                dir: Some(PathBuf::from(dir)),
            });
        }
        if text == "postgres" || text == "postgresql" {
            return Ok(StoreChoice::Postgres { admin_url: None });
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreChoice::Postgres {
                admin_url: Some(text.to_string()),
            });
        }
        anyhow::bail!(
            "--store {text:?}: a bench takes `sqlite`, `sqlite://DIR` (scratch files in DIR), \
             `postgres` or `postgres://ADMIN_URL` (scratch databases made and dropped on that \
             server)"
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            StoreChoice::Sqlite { .. } => "sqlite",
            StoreChoice::Postgres { .. } => "postgres",
        }
    }

    /// A fresh, empty scratch store location of this kind.
    pub async fn scratch(&self, data_dir: &Path) -> anyhow::Result<Scratch> {
        match self {
            StoreChoice::Sqlite { dir } => {
                let parent = dir.clone().unwrap_or_else(|| data_dir.join("tmp"));
                std::fs::create_dir_all(&parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
                let dir = tempfile::Builder::new()
                    .prefix("bench-")
                    .tempdir_in(&parent)
                    .with_context(|| {
                        format!("cannot make a temporary directory in {}", parent.display())
                    })?;
                let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
                Ok(Scratch {
                    url,
                    guard: ScratchGuard::Sqlite(dir),
                })
            }
            StoreChoice::Postgres { admin_url } => {
                if let Some(url) = admin_url {
                    // `testing::scratch_postgres` reads the admin URL from this variable. Set
                    // before any scratch database is made, from the bench's only task.
                    std::env::set_var(fundledger_store::testing::PG_ENV, url);
                }
                let db = fundledger_store::testing::scratch_postgres()
                    .await
                    .context("cannot create a scratch PostgreSQL database")?;
                Ok(Scratch {
                    url: db.url().to_string(),
                    guard: ScratchGuard::Postgres(db),
                })
            }
        }
    }
}

/// A scratch store location; [`Scratch::cleanup`] (or dropping it) removes it.
pub struct Scratch {
    pub url: String,
    guard: ScratchGuard,
}

enum ScratchGuard {
    Sqlite(tempfile::TempDir),
    Postgres(fundledger_store::testing::ScratchDb),
}

impl Scratch {
    /// Removes the file or drops the database. Close every store on it first.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        match self.guard {
            ScratchGuard::Sqlite(dir) => dir.close().context("cannot remove a scratch directory"),
            ScratchGuard::Postgres(db) => {
                db.cleanup().await.context("cannot drop a scratch database")
            }
        }
    }
}

/// The bench data directory: `--data-dir`, else under `CARGO_TARGET_DIR` when set, else
/// [`DEFAULT_DATA_DIR`].
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) if !target.is_empty() => PathBuf::from(target).join("bench-data"),
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// A store that forwards everything and writes down the size of every successful append, so
/// that the raw-append side of `bench write` can replay the writer's own batch sizes.
pub struct RecordingStore {
    inner: Arc<dyn EventStore>,
    batch_sizes: Mutex<Vec<usize>>,
}

impl RecordingStore {
    pub fn new(inner: Arc<dyn EventStore>) -> RecordingStore {
        RecordingStore {
            inner,
            batch_sizes: Mutex::new(Vec::new()),
        }
    }

    /// Sizes of the successful appends so far, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes
            .lock()
            .map(|sizes| sizes.clone())
            .unwrap_or_default()
    }
}

/// A boxed future as `#[async_trait]` methods return them (the trait is implemented by hand
/// here, so the CLI needs no proc-macro crate of its own for one wrapper).
type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

impl EventStore for RecordingStore {
    fn origin(&self) -> &str {
        self.inner.origin()
    }

    fn head<'a, 'b>(&'a self) -> StoreFuture<'b, Head>
    where
        'a: 'b,
        Self: 'b,
    {
        self.inner.head()
    }

    fn append<'a, 'c, 'b>(&'a self, expected: Head, batch: &'c [Record]) -> StoreFuture<'b, Head>
    where
        'a: 'b,
        'c: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            let head = self.inner.append(expected, batch).await?;
            if let Ok(mut sizes) = self.batch_sizes.lock() {
                sizes.push(batch.len());
            }
            Ok(head)
        })
    }

    fn read<'a, 'b>(&'a self, from_seq: u64, limit: usize) -> StoreFuture<'b, Vec<Record>>
    where
        'a: 'b,
        Self: 'b,
    {
        self.inner.read(from_seq, limit)
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

/// Reads records `1..=last_seq` of a store, page by page.
pub async fn read_all(store: &dyn EventStore, last_seq: u64) -> anyhow::Result<Vec<Record>> {
    const PAGE_RECORDS: usize = 10_000;
    let mut records = Vec::with_capacity(usize::try_from(last_seq).unwrap_or(0));
    while (records.len() as u64) < last_seq {
        let from_seq = records.len() as u64 + 1;
        let want = PAGE_RECORDS.min(usize::try_from(last_seq - from_seq + 1).unwrap_or(1));
        let page = store
            .read(from_seq, want)
            .await
            .context("cannot read records back from the store")?;
        if page.is_empty() {
            anyhow::bail!("the store ends at seq {} before {last_seq}", from_seq - 1);
        }
        records.extend(page);
    }
    Ok(records)
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes; None off Linux.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// CPU seconds this process has used (user + system, all threads, from `/proc/self/stat`);
/// None off Linux. Beside wall-clock figures it shows how much of a run was waiting for the
/// machine (other processes) rather than working.
pub fn process_cpu_seconds() -> Option<f64> {
    /// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ), 100 on every Linux port.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

/// `1234567` → `1,234,567`, for figures people read.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    // The first group holds what is left over from the groups of three (or a whole three).
    let head = match digits.len() % 3 {
        0 => 3,
        rest => rest,
    }
    .min(digits.len());
    let mut out = digits[..head].to_string();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

/// A rate per second, rounded, with thousands separators.
pub fn per_second(count: u64, seconds: f64) -> String {
    thousands((count as f64 / seconds.max(f64::EPSILON)).round() as u64)
}

/// The machine load now (`/proc/loadavg`), so every figure says what else was running.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            format!("load average {}", fields.join(" "))
        })
        .unwrap_or_else(|_| "load average unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_choices_parse_or_say_what_is_accepted() {
        assert_eq!(
            StoreChoice::parse("sqlite").unwrap(),
            StoreChoice::Sqlite { dir: None }
        );
        assert_eq!(
            StoreChoice::parse("sqlite:///tmp/x").unwrap(),
            StoreChoice::Sqlite {
                dir: Some(PathBuf::from("/tmp/x"))
            }
        );
        assert_eq!(
            StoreChoice::parse("postgres").unwrap(),
            StoreChoice::Postgres { admin_url: None }
        );
        assert_eq!(
            StoreChoice::parse("postgres://u@h/db").unwrap(),
            StoreChoice::Postgres {
                admin_url: Some("postgres://u@h/db".into())
            }
        );
        let error = StoreChoice::parse("mysql://x").unwrap_err().to_string();
        assert!(error.contains("sqlite://DIR"), "{error}");
        assert!(StoreChoice::parse("sqlite://").is_err());
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(per_second(10, 4.0), "3");
    }

    #[test]
    fn proc_status_reads_resident_memory() {
        if cfg!(target_os = "linux") {
            let rss = proc_status_bytes("VmRSS").expect("VmRSS on Linux");
            assert!(
                rss > 1024 * 1024,
                "a test process holds more than 1 MiB: {rss}"
            );
            assert!(proc_status_bytes("NoSuchField").is_none());
            let before = process_cpu_seconds().expect("CPU time on Linux");
            let mut spin = 0u64;
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_millis(300) {
                spin = spin.wrapping_add(1);
            }
            let after = process_cpu_seconds().expect("CPU time on Linux");
            assert!(after >= before && spin > 0, "{before} → {after}");
        }
    }
}
