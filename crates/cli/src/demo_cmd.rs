//! `fundledger demo [--store URL] [--seed N]`: writes the seeded multi-year scenario of
//! `fundledger-demo` into an empty ledger through the ordinary writer, and says what it did.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, FixedOffset};
use clap::Args;
use fundledger_ledger::{Ledger, WriterOptions};

use crate::ledger_args::LedgerArgs;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Seed of the scenario: the same seed gives the same ledger
    #[arg(long, default_value_t = fundledger_demo::DEFAULT_SEED)]
    pub seed: u64,
}

/// The business time of a new demo ledger's first record (the built-in catalogue): the day the
/// policy was published, so the whole demo log reads in date order.
const DEMO_GENESIS_AT: &str = "2024-05-22T09:00:00+08:00";

/// Writer options for a demo ledger: every demo command carries its own `at`; the clock only
/// dates the catalogue record of a new ledger.
pub fn demo_writer_options() -> anyhow::Result<WriterOptions> {
    let genesis: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339(DEMO_GENESIS_AT).context("the demo genesis time")?;
    Ok(WriterOptions {
        clock: Arc::new(move || genesis),
        ..WriterOptions::default()
    })
}

/// What a demo run wrote.
pub struct DemoSummary {
    pub accepted: usize,
    pub rejected: BTreeMap<String, usize>,
    pub head_seq: u64,
}

/// Writes the scenario into `ledger`, which must hold nothing but its catalogue record.
pub async fn populate(ledger: &Ledger, seed: u64) -> anyhow::Result<DemoSummary> {
    let existing = ledger.snapshot().last_seq;
    if existing > 1 {
        bail!(
            "the store already holds {existing} records; the demo writes into a new, empty ledger \
             (choose another --store, e.g. sqlite://data/demo.db)"
        );
    }
    let steps = fundledger_demo::scenario(seed);
    let run = fundledger_demo::run(ledger, &steps)
        .await
        .context("the demo could not be written")?;
    if let Some(drift) = run.drifted.first() {
        bail!(
            "the demo drifted from its script ({} steps); first: {drift:?}",
            run.drifted.len()
        );
    }
    Ok(DemoSummary {
        accepted: run.accepted,
        rejected: run.rejected,
        head_seq: ledger.snapshot().last_seq,
    })
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let ledger = args.ledger.open(demo_writer_options()?).await?;
    let summary = populate(&ledger, args.seed).await;
    ledger.close().await;
    let summary = summary?;
    let refused: Vec<String> = summary
        .rejected
        .iter()
        .map(|(code, count)| format!("{code} ×{count}"))
        .collect();
    println!(
        "demo ledger written to {}: {} records; {} commands accepted, refused as intended: {}",
        crate::store_args::redact_url(&args.ledger.store),
        summary.head_seq,
        summary.accepted,
        refused.join(", ")
    );
    println!(
        "look at it: fundledger query --store {} budgets",
        args.ledger.store
    );
    Ok(())
}
