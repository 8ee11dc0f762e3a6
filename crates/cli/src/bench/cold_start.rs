//! `bench cold-start`: how long a process takes to rebuild every projection from N records
//! (what `Ledger::open` and `serve` do at start), against only reading those records.
//!
//! - Store: reading every record with `EventStore::read` in the writer's catch-up page size
//!   (the store's floor: SQL, body text → JSON) vs [`fundledger_ledger::catch_up`] (the same
//!   reads, plus each record's link and hash checked and its body folded into
//!   [`LedgerState`]).
//! - Export file: parsing every line into a record vs checking each line's chain
//!   ([`ChainVerifier::check_line`]) and folding it.
//!
//! The ratio is raw store read time ÷ rebuild time: the share of the read speed a cold start
//! keeps. The store is read once before timing so both sides find the file in the page cache.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fundledger_events::{parse_header, ChainVerifier, Record};
use fundledger_projections::LedgerState;
use fundledger_store::EventStore;

use super::dataset::dataset;
use super::{data_dir, load_average, per_second, process_cpu_seconds, thousands};

/// Records per read, as the writer's catch-up reads them.
const PAGE_RECORDS: usize = 2_000;

#[derive(Debug, Args)]
pub struct ColdStartArgs {
    /// Records in the ledger (made once through the writer and cached)
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub records: u64,
    /// Seed of the cached ledger's workload
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where cached ledgers live (default target/bench-data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: ColdStartArgs) -> anyhow::Result<()> {
    let data = dataset(&data_dir(args.data_dir.as_deref()), args.records, args.seed).await?;
    let store = fundledger_store::open_existing(&data.store_url()).await?;
    let export_bytes = std::fs::metadata(&data.export_path)?.len();
    println!(
        "bench cold-start: {} records (SQLite {}, export {} MiB) ({})",
        thousands(data.records),
        data.ledger_path.display(),
        export_bytes / (1 << 20),
        load_average()
    );

    // Warm the page cache, so neither timed side pays for the disk.
    read_raw(store.as_ref()).await?;
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let read = read_raw(store.as_ref()).await?;
    let raw_s = started.elapsed().as_secs_f64();
    println!(
        "  store, read raw: {} records in {raw_s:.2} s = {} records/s (CPU {:.2} s)",
        thousands(read),
        per_second(read, raw_s),
        cpu_since(cpu)
    );

    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let mut state = LedgerState::default();
    fundledger_ledger::catch_up(store.as_ref(), &mut state)
        .await
        .context("rebuilding the projections failed")?;
    let rebuild_s = started.elapsed().as_secs_f64();
    let rebuild_cpu_s = cpu_since(cpu);
    anyhow::ensure!(
        state.last_seq == read,
        "the rebuild stopped at seq {}",
        state.last_seq
    );
    println!(
        "  store, rebuild all projections (read + check chain + fold): {rebuild_s:.2} s = {} \
         records/s (CPU {rebuild_cpu_s:.2} s); {} applications, {} firms",
        per_second(state.last_seq, rebuild_s),
        thousands(state.applications.len() as u64),
        thousands(state.firms.len() as u64),
    );
    drop(state);
    drop(store);

    let started = Instant::now();
    let parsed = export_raw(&data.export_path)?;
    let export_raw_s = started.elapsed().as_secs_f64();
    println!(
        "  export, read raw (parse each line): {} records in {export_raw_s:.2} s = {} records/s",
        thousands(parsed),
        per_second(parsed, export_raw_s)
    );
    let started = Instant::now();
    let state = export_rebuild(&data.export_path)?;
    let export_rebuild_s = started.elapsed().as_secs_f64();
    println!(
        "  export, rebuild (check chain + fold): {export_rebuild_s:.2} s = {} records/s \
         ({:.2} of the export's raw read)",
        per_second(state.last_seq, export_rebuild_s),
        export_raw_s / export_rebuild_s.max(f64::EPSILON)
    );

    let ratio = raw_s / rebuild_s.max(f64::EPSILON);
    println!(
        "  ratio (store raw read time ÷ rebuild time): {ratio:.2}; a cold start on {} records \
         takes {rebuild_s:.1} s",
        thousands(data.records)
    );
    println!("  ({})", load_average());
    Ok(())
}

/// Reads every record, page by page; returns how many.
async fn read_raw(store: &dyn EventStore) -> anyhow::Result<u64> {
    let mut next_seq = 1;
    loop {
        let page = store.read(next_seq, PAGE_RECORDS).await?;
        let Some(last) = page.last() else {
            return Ok(next_seq - 1);
        };
        next_seq = last.seq + 1;
    }
}

fn export_lines(
    path: &std::path::Path,
) -> anyhow::Result<std::io::Lines<std::io::BufReader<std::fs::File>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(std::io::BufReader::with_capacity(1 << 20, file).lines())
}

/// Parses every record line of the export into a [`Record`]; returns how many.
fn export_raw(path: &std::path::Path) -> anyhow::Result<u64> {
    let mut lines = export_lines(path)?;
    lines.next().context("the export is empty")??;
    let mut count = 0;
    for line in lines {
        let record: Record =
            serde_json::from_str(&line?).context("an export line is not a record")?;
        count = record.seq;
    }
    Ok(count)
}

/// Checks the export's chain line by line and folds every record.
fn export_rebuild(path: &std::path::Path) -> anyhow::Result<LedgerState> {
    let mut lines = export_lines(path)?;
    let header = parse_header(lines.next().context("the export is empty")??.as_bytes())?;
    let mut verifier = ChainVerifier::new(&header.origin);
    let mut state = LedgerState::default();
    for line in lines {
        let record = verifier.check_line(line?.as_bytes())?;
        state.apply(&record)?;
    }
    Ok(state)
}

/// CPU seconds since `before` (0 when unknown).
fn cpu_since(before: Option<f64>) -> f64 {
    match (before, process_cpu_seconds()) {
        (Some(before), Some(now)) => now - before,
        _ => 0.0,
    }
}
