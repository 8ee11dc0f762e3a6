//! Cached bench ledgers: exactly N records of the voucher workload, written through the real
//! writer, kept as a SQLite ledger and as its JSON Lines export under the bench data directory
//! (`ledger-r<N>-s<SEED>.db` and `.jsonl`), so that the second run of a bench on 1,000,000
//! records starts at once instead of spending minutes writing them.
//!
//! A data set is made in a temporary directory and renamed into place only when complete, so
//! an interrupted run never leaves a half-made cache behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use fundledger_events::{record_line, ExportHeader};
use fundledger_ledger::{Ledger, WriterOptions};
use fundledger_store::EventStore;

use super::workload::{self, Scripts, Stop};
use super::{load_average, per_second, thousands, BENCH_ORIGIN};

/// Records per append when copying the first N records into the cached ledger.
const COPY_BATCH_RECORDS: usize = 10_000;
/// The writer's group commit while generating (larger batches write faster; nobody times it).
const GENERATE_BATCH_MAX: usize = 2_048;
const GENERATE_CLIENTS: usize = 4_096;

/// A cached ledger of `records` records.
pub struct Dataset {
    pub records: u64,
    /// The SQLite ledger file.
    pub ledger_path: PathBuf,
    /// Its JSON Lines export (DESIGN §5).
    pub export_path: PathBuf,
}

impl Dataset {
    pub fn store_url(&self) -> String {
        format!("sqlite://{}", self.ledger_path.display())
    }
}

/// The cached data set of `records` records under `seed`, made first when missing.
pub async fn dataset(data_dir: &Path, records: u64, seed: u64) -> anyhow::Result<Dataset> {
    anyhow::ensure!(records >= 1, "a data set holds at least one record");
    let stem = format!("ledger-r{records}-s{seed}");
    let dataset = Dataset {
        records,
        ledger_path: data_dir.join(format!("{stem}.db")),
        export_path: data_dir.join(format!("{stem}.jsonl")),
    };
    if dataset.ledger_path.is_file() && dataset.export_path.is_file() {
        eprintln!(
            "data set: using the cached {} and {}",
            dataset.ledger_path.display(),
            dataset.export_path.display()
        );
        return Ok(dataset);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix("making-")
        .tempdir_in(data_dir)
        .with_context(|| {
            format!(
                "cannot make a temporary directory in {}",
                data_dir.display()
            )
        })?;
    eprintln!(
        "data set: writing {} records through the writer into {} (once; cached afterwards; {})",
        thousands(records),
        dataset.ledger_path.display(),
        load_average()
    );
    let started = Instant::now();
    let draft_url = format!("sqlite://{}", work.path().join("draft.db").display());
    let draft: Arc<dyn EventStore> =
        Arc::from(fundledger_store::open(&draft_url, BENCH_ORIGIN).await?);
    generate(draft.clone(), records, seed).await?;
    eprintln!(
        "data set: {} records written in {:.0} s ({} records/s); copying the first {} and exporting",
        thousands(draft.head().await?.seq),
        started.elapsed().as_secs_f64(),
        per_second(draft.head().await?.seq, started.elapsed().as_secs_f64()),
        thousands(records)
    );
    let ledger_tmp = work.path().join("ledger.db");
    let export_tmp = work.path().join("export.jsonl");
    copy_prefix(draft.as_ref(), &ledger_tmp, &export_tmp, records).await?;
    drop(draft);
    std::fs::rename(&export_tmp, &dataset.export_path).with_context(|| {
        format!(
            "cannot move the export to {}",
            dataset.export_path.display()
        )
    })?;
    std::fs::rename(&ledger_tmp, &dataset.ledger_path).with_context(|| {
        format!(
            "cannot move the ledger to {}",
            dataset.ledger_path.display()
        )
    })?;
    work.close()
        .context("cannot remove the temporary directory")?;
    eprintln!(
        "data set: ready in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(dataset)
}

/// Plays the voucher workload through the writer until the log holds at least `records`.
async fn generate(store: Arc<dyn EventStore>, records: u64, seed: u64) -> anyhow::Result<()> {
    let options = WriterOptions {
        batch_max: GENERATE_BATCH_MAX,
        queue_capacity: GENERATE_CLIENTS * 2,
        ..WriterOptions::default()
    };
    let ledger = Ledger::open(store, options).await?;
    // Budgets for as many firms as the run may reach.
    let firms = workload::firms_for(records);
    for command in workload::budget_commands(seed, firms)? {
        ledger.execute(command).await?;
    }
    let tally = workload::run_clients(
        &ledger,
        Arc::new(Scripts::Lazy { seed }),
        GENERATE_CLIENTS,
        Stop::Records(records),
    )
    .await?;
    ledger.close().await;
    eprintln!("data set: outcomes: {}", tally.summary());
    Ok(())
}

/// Copies records `1..=records` of `from` into a new SQLite ledger at `ledger_path` (appended
/// sealed, as they are) and writes them as an export to `export_path`.
async fn copy_prefix(
    from: &dyn EventStore,
    ledger_path: &Path,
    export_path: &Path,
    records: u64,
) -> anyhow::Result<()> {
    let to = fundledger_store::open(
        &format!("sqlite://{}", ledger_path.display()),
        from.origin(),
    )
    .await?;
    let file = std::fs::File::create(export_path)
        .with_context(|| format!("cannot create {}", export_path.display()))?;
    let mut export = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(export, "{}", ExportHeader::new(from.origin()).to_line())?;
    let mut head = to.head().await?;
    while head.seq < records {
        let want = COPY_BATCH_RECORDS.min(usize::try_from(records - head.seq).unwrap_or(1));
        let page = from.read(head.seq + 1, want).await?;
        anyhow::ensure!(
            !page.is_empty(),
            "the generated ledger ends at seq {} before {records}",
            head.seq
        );
        for record in &page {
            writeln!(export, "{}", record_line(record))?;
        }
        head = to.append(head, &page).await?;
    }
    export.flush()?;
    export
        .into_inner()
        .map_err(|error| anyhow::anyhow!("cannot write the export: {}", error.error()))?
        .sync_all()?;
    Ok(())
}
