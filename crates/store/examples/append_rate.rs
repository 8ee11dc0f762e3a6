//! Append rate of each backend: N records in batches of B, into a temporary SQLite file and a
//! scratch PostgreSQL database (see `fundledger_store::testing`).
//!
//! ```text
//! cargo run --release -p fundledger-store --example append_rate -- 100000 1000
//! ```
//!
//! Only the appends are timed; sealing the batches (JCS + BLAKE3) happens before the clock
//! starts. Each append is a durable commit (SQLite `synchronous=FULL`, PostgreSQL's default
//! `synchronous_commit`), so small batches measure fsync latency and large ones throughput.

use std::error::Error;
use std::time::{Duration, Instant};

use fundledger_events::{seal_batch, Head, Record};
use fundledger_store::{open, testing, EventStore};
use serde_json::json;

const USAGE: &str = "usage: append_rate [RECORDS] [BATCH_RECORDS]   (defaults: 100000 1000)";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |index: usize, default: usize| -> Result<usize, Box<dyn Error>> {
        match args.get(index) {
            None => Ok(default),
            Some(text) => match text.parse::<usize>() {
                Ok(value) if value > 0 => Ok(value),
                _ => Err(format!("{text:?} is not a positive number; {USAGE}").into()),
            },
        }
    };
    let records = parse(0, 100_000)?;
    let batch_records = parse(1, 1_000)?.min(fundledger_store::MAX_BATCH_RECORDS);
    println!("appending {records} records in batches of {batch_records}");

    let sqlite = testing::scratch_sqlite()?;
    let store = open(sqlite.url(), "append-rate").await?;
    report(&*store, records, batch_records).await?;
    drop(store);

    match testing::scratch_postgres().await {
        Ok(db) => {
            let store = open(db.url(), "append-rate").await?;
            report(&*store, records, batch_records).await?;
            drop(store);
            db.cleanup().await?;
        }
        Err(error) => println!("postgres: skipped: {error}"),
    }
    Ok(())
}

async fn report(
    store: &dyn EventStore,
    records: usize,
    batch_records: usize,
) -> Result<(), Box<dyn Error>> {
    let sealing = Instant::now();
    let batches = seal_all(store.origin(), records, batch_records)?;
    // The store re-checks every record (JCS + BLAKE3 + §5 fields) before writing, about the
    // cost of sealing it: this rate bounds the append rate from above.
    let sealing_s = sealing.elapsed().as_secs_f64().max(f64::EPSILON);
    println!(
        "{:>8}: sealing alone: {:.0} records/s",
        store.backend(),
        records as f64 / sealing_s
    );
    let mut head = store.head().await?;
    let mut elapsed = Duration::ZERO;
    for batch in &batches {
        let started = Instant::now();
        head = store.append(head, batch).await?;
        elapsed += started.elapsed();
    }
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "{:>8}: {records} records, {} appends of <= {batch_records}: {:.2} s, {:.0} records/s, {:.2} ms per append",
        store.backend(),
        batches.len(),
        seconds,
        records as f64 / seconds,
        seconds * 1000.0 / batches.len() as f64,
    );
    Ok(())
}

/// All batches, sealed up front so that only appends are timed.
fn seal_all(
    origin: &str,
    records: usize,
    batch_records: usize,
) -> Result<Vec<Vec<Record>>, Box<dyn Error>> {
    let mut head = Head::empty(origin);
    let mut batches = Vec::new();
    let mut next_seq = 1u64;
    let last_seq = records as u64;
    while next_seq <= last_seq {
        let end = (next_seq + batch_records as u64 - 1).min(last_seq);
        let bodies = (next_seq..=end)
            .map(|seq| {
                json!({
                    "seq": seq,
                    "type": "application_submitted",
                    "recorded_at": "2024-06-01T09:00:00+08:00",
                    "command_id": format!("00000000-0000-4000-8000-{seq:012}"),
                    "actor": {"id": "firm.li", "role": "applicant", "firm": "91410100MA00000000"},
                    "application_id": format!("APP-{seq}"),
                    "provision": "M2.compute_voucher",
                    "fiscal_year": 2024,
                    "amount": "200000.00",
                    "basis": {"contract_amount": "1000000.00", "contract_id": format!("C-{seq}"), "self_built": false},
                    "note": "算力券申请",
                })
            })
            .collect();
        let batch = seal_batch(&head, bodies)?;
        if let Some(last) = batch.last() {
            head = last.head();
        }
        batches.push(batch);
        next_seq = end + 1;
    }
    Ok(batches)
}
