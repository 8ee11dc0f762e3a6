//! Commands per second through the writer (decide + seal + append + project), on SQLite and on
//! a scratch PostgreSQL database.
//!
//! `cargo run --release -p fundledger-ledger --example writer_rate -- [COMMANDS] [BATCH_MAX]`
//!
//! The workload is the compute-voucher path: one budget allocation, then COMMANDS submissions
//! of 20% vouchers by distinct firms (each decided against the firm's yearly cap), all queued
//! at once so the writer commits them in groups of up to BATCH_MAX.

use std::sync::Arc;
use std::time::Instant;

use fundledger_ledger::{uscc, Command, Ledger, WriterOptions};
use fundledger_store::EventStore;
use serde_json::json;

fn commands(count: usize) -> Vec<Command> {
    let finance = json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"});
    let mut values = vec![json!({
        "command_id": uuid::Uuid::new_v4().to_string(), "actor": finance, "type": "allocate_budget",
        "measure": "M2", "fiscal_year": 2025, "amount": "100000000000.00", "at": "2025-01-06T09:00:00+08:00"
    })];
    for index in 0..count {
        let firm = uscc::complete(&format!("91410100MA{index:07}")).unwrap_or_default();
        values.push(json!({
            "command_id": uuid::Uuid::new_v4().to_string(),
            "actor": {"id": format!("app.{index}"), "role": "applicant", "firm": firm},
            "type": "submit_application", "application_id": format!("A-{index}"),
            "firm": {"uscc": firm, "name": format!("郑州第{index}智能科技有限公司")},
            "provision": "M2.compute_voucher", "fiscal_year": 2025, "amount": "200000.00",
            "basis": {"contract_amount": "1000000.00", "contract_id": format!("HT-{index}")},
            "at": "2025-03-01T10:00:00+08:00"
        }));
    }
    values
        .iter()
        .filter_map(|value| Command::parse(value).ok())
        .collect()
}

async fn measure(label: &str, store: Box<dyn EventStore>, count: usize, batch_max: usize) {
    let store: Arc<dyn EventStore> = Arc::from(store);
    let options = WriterOptions {
        batch_max,
        queue_capacity: count + 16,
        ..WriterOptions::default()
    };
    let Ok(ledger) = Ledger::open(store, options).await else {
        eprintln!("{label}: cannot open the ledger");
        return;
    };
    let work = commands(count);
    let started = Instant::now();
    let mut pending = Vec::with_capacity(work.len());
    for command in work {
        match ledger.enqueue(command).await {
            Ok(wait) => pending.push(wait),
            Err(error) => {
                eprintln!("{label}: {error}");
                return;
            }
        }
    }
    let mut accepted = 0usize;
    for wait in pending {
        if wait
            .outcome()
            .await
            .map(|outcome| outcome.is_accepted())
            .unwrap_or(false)
        {
            accepted += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = ledger.metrics();
    let batches = metrics
        .batches_total
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    let records = metrics
        .batch_records_sum
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{label}: {accepted} of {} commands accepted in {elapsed:.2} s = {:.0} commands/s; {batches} appends, {:.1} records per append (batch_max {batch_max})",
        count + 1,
        (count + 1) as f64 / elapsed,
        records as f64 / batches as f64
    );
    ledger.close().await;
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let batch_max: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(512);
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => return eprintln!("no temp dir: {error}"),
    };
    let url = format!("sqlite://{}/rate.db", dir.path().display());
    match fundledger_store::open(&url, "bench").await {
        Ok(store) => measure("sqlite", store, count, batch_max).await,
        Err(error) => eprintln!("sqlite: {error}"),
    }
    match fundledger_store::testing::scratch_postgres().await {
        Ok(db) => {
            match fundledger_store::open(db.url(), "bench").await {
                Ok(store) => measure("postgres", store, count, batch_max).await,
                Err(error) => eprintln!("postgres: {error}"),
            }
            let _ = db.cleanup().await;
        }
        Err(error) => eprintln!("postgres: {error}"),
    }
}
