//! `bench memory`: resident memory per million records held in the projections.
//!
//! Replays N records of a cached ledger into a [`LedgerState`] (as a starting server does) and
//! reads `/proc/self/status`: `VmRSS` before and after (what the projections hold) and `VmHWM`
//! (the peak, reset just before the replay when the kernel allows it). The ratio is the
//! resident growth over the size of the same records as an export file (JSON text): how much
//! larger the records are held in memory than written down.
//!
//! Making a missing data set would itself raise the peak, so then the bench makes it and runs
//! itself again in a fresh process.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fundledger_projections::LedgerState;

use super::dataset::dataset;
use super::{data_dir, load_average, proc_status_bytes, thousands};

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Records replayed into the projections (made once through the writer and cached)
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub records: u64,
    /// Seed of the cached ledger's workload
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where cached ledgers live (default target/bench-data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: MemoryArgs) -> anyhow::Result<()> {
    let dir = data_dir(args.data_dir.as_deref());
    let stem = format!("ledger-r{}-s{}", args.records, args.seed);
    if !dir.join(format!("{stem}.db")).is_file() || !dir.join(format!("{stem}.jsonl")).is_file() {
        dataset(&dir, args.records, args.seed).await?;
        eprintln!("memory: the data set is made; measuring in a fresh process");
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["bench", "memory", "--records", &args.records.to_string()])
            .args(["--seed", &args.seed.to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .status()
            .context("cannot run the bench again")?;
        anyhow::ensure!(status.success(), "the measuring run failed: {status}");
        return Ok(());
    }
    let data = dataset(&dir, args.records, args.seed).await?;
    let export_bytes = std::fs::metadata(&data.export_path)?.len();
    let store = fundledger_store::open_existing(&data.store_url()).await?;
    let rss_before = proc_status_bytes("VmRSS").context("no VmRSS in /proc/self/status")?;
    // "5" resets the peak resident size to the current one (Linux ≥ 4.0).
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = Instant::now();
    let mut state = LedgerState::default();
    fundledger_ledger::catch_up(store.as_ref(), &mut state)
        .await
        .context("replaying the ledger failed")?;
    let replay_s = started.elapsed().as_secs_f64();
    let rss_after = proc_status_bytes("VmRSS").context("no VmRSS in /proc/self/status")?;
    let peak = proc_status_bytes("VmHWM").context("no VmHWM in /proc/self/status")?;
    let held = rss_after.saturating_sub(rss_before);
    let millions = state.last_seq as f64 / 1e6;
    println!(
        "bench memory: {} records replayed in {replay_s:.1} s ({} applications, {} firms, {} \
         commands indexed) ({})",
        thousands(state.last_seq),
        thousands(state.applications.len() as u64),
        thousands(state.firms.len() as u64),
        thousands(state.commands.len() as u64),
        load_average()
    );
    println!(
        "  resident: {:.0} MiB before, {:.0} MiB after = {:.0} MiB held = {:.0} MiB per million records",
        rss_before as f64 / MIB,
        rss_after as f64 / MIB,
        held as f64 / MIB,
        held as f64 / MIB / millions.max(f64::EPSILON)
    );
    println!(
        "  peak (VmHWM{}): {:.0} MiB = {:.0} MiB per million records",
        if peak_reset {
            ", reset before the replay"
        } else {
            ", since the process started"
        },
        peak as f64 / MIB,
        peak as f64 / MIB / millions.max(f64::EPSILON)
    );
    println!(
        "  ratio (resident growth ÷ export size {:.0} MiB): {:.2}",
        export_bytes as f64 / MIB,
        held as f64 / export_bytes.max(1) as f64
    );
    // Keep the state alive until measured.
    drop(state);
    Ok(())
}
