//! `bench write`: the write path against the store's own limit, in one run.
//!
//! 1. The writer: a fresh ledger (via a [`RecordingStore`], which notes the size of every
//!    append), budgets allocated, then `--clients` concurrent clients play the voucher
//!    workload until `--commands` commands were sent. Timed from the first command to the
//!    last outcome: decide + seal + append + project + reply.
//! 2. The limit: the records that run wrote, read back (so pre-serialised, sealed and hashed),
//!    appended into a fresh store of the same kind and origin with `EventStore::append` in the
//!    very batch sizes the writer used. Timed around the appends only.
//!
//! The ratio is the writer's records/s over the raw append's records/s: the share of the
//! store's own speed that the ledger keeps. Goal ≥ 0.5.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fundledger_ledger::{Ledger, WriterOptions};
use fundledger_store::EventStore;

use super::workload::{self, Scripts, Stop};
use super::{
    data_dir, load_average, per_second, process_cpu_seconds, read_all, thousands, RecordingStore,
    StoreChoice, BENCH_ORIGIN,
};

#[derive(Debug, Args)]
pub struct WriteArgs {
    /// sqlite, sqlite://DIR, postgres or postgres://ADMIN_URL (scratch stores, removed after)
    #[arg(long, value_name = "STORE", default_value = "sqlite")]
    pub store: String,
    /// Commands sent through the writer
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub commands: u64,
    /// Most commands the writer decides and appends together (its group commit)
    #[arg(long, value_name = "B", default_value_t = WriterOptions::default().batch_max)]
    pub batch_max: usize,
    /// Concurrent clients, each waiting for its outcome before its next command
    #[arg(long, value_name = "C", default_value_t = 1_024)]
    pub clients: usize,
    /// Seed of the workload
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rounds (each a fresh writer run and its raw replay); the median ratio is the result
    #[arg(long, value_name = "R", default_value_t = 3)]
    pub rounds: u32,
    /// Where scratch SQLite files go (default target/bench-data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: WriteArgs) -> anyhow::Result<()> {
    let choice = StoreChoice::parse(&args.store)?;
    let data_dir = data_dir(args.data_dir.as_deref());
    anyhow::ensure!(args.commands > 0, "--commands must be at least 1");
    anyhow::ensure!(args.batch_max > 0, "--batch-max must be at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    println!(
        "bench write: {} store, {} commands, batch_max {}, {} clients, seed {}, {} round(s) ({})",
        choice.label(),
        thousands(args.commands),
        args.batch_max,
        args.clients,
        args.seed,
        args.rounds,
        load_average()
    );
    let mut ratios = Vec::new();
    for round in 1..=args.rounds {
        println!(" round {round}:");
        ratios.push(run_round(&args, &choice, &data_dir).await?);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let shown: Vec<String> = ratios.iter().map(|ratio| format!("{ratio:.2}")).collect();
    println!(
        "  ratio (writer records/s ÷ raw append records/s), median of {}: {median:.2} [{}] \
         (goal ≥ 0.50: {})",
        ratios.len(),
        shown.join(", "),
        if median >= 0.5 { "met" } else { "missed" }
    );
    println!("  ({})", load_average());
    Ok(())
}

/// One writer run and its raw replay; returns the round's ratio.
async fn run_round(args: &WriteArgs, choice: &StoreChoice, data_dir: &Path) -> anyhow::Result<f64> {
    // 1. The writer.
    let firms = workload::firms_for(args.commands);
    let scripts: Vec<Mutex<Option<workload::FirmScript>>> = (0..firms)
        .map(|index| workload::firm_script(args.seed, index).map(|script| Mutex::new(Some(script))))
        .collect::<anyhow::Result<_>>()?;
    let scripts = Arc::new(Scripts::Prebuilt(scripts));
    let writer_scratch = choice.scratch(data_dir).await?;
    let inner: Arc<dyn EventStore> = Arc::from(
        fundledger_store::open(&writer_scratch.url, BENCH_ORIGIN)
            .await
            .context("cannot open the writer's scratch store")?,
    );
    let recording = Arc::new(RecordingStore::new(inner));
    let options = WriterOptions {
        batch_max: args.batch_max,
        queue_capacity: args.clients.max(args.batch_max) * 2,
        ..WriterOptions::default()
    };
    let ledger = Ledger::open(recording.clone(), options)
        .await
        .context("cannot open the ledger")?;
    for command in workload::budget_commands(args.seed, workload::firms_reached(args.commands))? {
        let outcome = ledger.execute(command).await?;
        anyhow::ensure!(outcome.is_accepted(), "a budget was refused: {outcome:?}");
    }
    let untimed_batches = recording.batch_sizes().len();
    let head_before = ledger.snapshot().last_seq;
    let append_micros_before = ledger.metrics().append_micros_sum.load(Ordering::Relaxed);

    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let tally = workload::run_clients(
        &ledger,
        scripts,
        args.clients,
        Stop::Commands(args.commands),
    )
    .await?;
    let writer_s = started.elapsed().as_secs_f64();
    let writer_cpu_s = cpu_seconds_since(cpu_before);

    let head_after = ledger.snapshot().last_seq;
    let append_s = (ledger.metrics().append_micros_sum.load(Ordering::Relaxed)
        - append_micros_before) as f64
        / 1e6;
    ledger.close().await;
    let batch_sizes = recording.batch_sizes();
    let timed_batches = &batch_sizes[untimed_batches..];
    let writer_records = head_after - head_before;
    println!(
        "  writer: {} commands in {writer_s:.2} s = {} commands/s; {} records = {} records/s; \
         {} appends, {:.1} records per append (largest {}); {append_s:.2} s of it inside \
         store.append",
        thousands(tally.commands),
        per_second(tally.commands, writer_s),
        thousands(writer_records),
        per_second(writer_records, writer_s),
        thousands(timed_batches.len() as u64),
        writer_records as f64 / timed_batches.len().max(1) as f64,
        timed_batches.iter().max().copied().unwrap_or(0),
    );
    println!("  outcomes: {}", tally.summary());
    println!(
        "  writer CPU (all threads, clients included): {writer_cpu_s:.2} s = {:.0} µs per record",
        writer_cpu_s * 1e6 / writer_records.max(1) as f64
    );

    // 2. The store's own limit, on the same records in the same batch sizes.
    let records = read_all(recording.as_ref(), head_after).await?;
    drop(recording);
    writer_scratch.cleanup().await?;
    let raw_scratch = choice.scratch(data_dir).await?;
    let raw_store = fundledger_store::open(&raw_scratch.url, BENCH_ORIGIN)
        .await
        .context("cannot open the raw-append scratch store")?;
    let mut batches = Vec::with_capacity(batch_sizes.len());
    let mut rest = records.as_slice();
    for size in &batch_sizes {
        let (batch, tail) = rest.split_at((*size).min(rest.len()));
        batches.push(batch);
        rest = tail;
    }
    anyhow::ensure!(
        rest.is_empty(),
        "the recorded batch sizes do not cover the records read back"
    );
    let mut head = raw_store.head().await?;
    for batch in &batches[..untimed_batches] {
        head = raw_store.append(head, batch).await?;
    }
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    for batch in &batches[untimed_batches..] {
        head = raw_store.append(head, batch).await?;
    }
    let raw_s = started.elapsed().as_secs_f64();
    let raw_cpu_s = cpu_seconds_since(cpu_before);
    anyhow::ensure!(
        head.seq == head_after && head.hash == records.last().map(|r| r.hash).unwrap_or(head.hash),
        "the raw append did not rebuild the same chain"
    );
    drop(raw_store);
    raw_scratch.cleanup().await?;
    println!(
        "  raw append: the same {} records in the same {} batches in {raw_s:.2} s = {} records/s",
        thousands(writer_records),
        thousands(timed_batches.len() as u64),
        per_second(writer_records, raw_s),
    );
    println!(
        "  raw append CPU: {raw_cpu_s:.2} s = {:.0} µs per record",
        raw_cpu_s * 1e6 / writer_records.max(1) as f64
    );
    let ratio = raw_s / writer_s.max(f64::EPSILON);
    println!("  round ratio: {ratio:.2} ({})", load_average());
    Ok(ratio)
}

/// CPU seconds used since `before` (0 when unknown).
fn cpu_seconds_since(before: Option<f64>) -> f64 {
    match (before, process_cpu_seconds()) {
        (Some(before), Some(now)) => now - before,
        _ => 0.0,
    }
}
