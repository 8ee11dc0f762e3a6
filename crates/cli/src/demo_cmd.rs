//! `fundledger demo [--store URL] [--seed N]`: writes the seeded multi-year scenario of
//! `fundledger-demo` into an empty ledger through the ordinary writer, and says what it did.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, FixedOffset};
use clap::Args;
use fundledger_ledger::{Ledger, WriterOptions, GENESIS_COMMAND_ID};

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

/// Whether a demo may be written into `ledger`: true when it holds nothing but its catalogue
/// record and commands of the scenario of `seed` — an empty ledger, or a demo that was
/// interrupted (a killed process) and is resumed after the last step the log records (the demo
/// runs one step at a time, so every step before that one was decided already).
pub fn holds_only_the_demo(ledger: &Ledger, seed: u64) -> bool {
    let snapshot = ledger.snapshot();
    if snapshot.last_seq <= 1 {
        return true;
    }
    let demo_ids: HashSet<String> = fundledger_demo::commands(seed)
        .iter()
        .filter_map(|command| command["command_id"].as_str().map(str::to_string))
        .collect();
    let only_demo = snapshot
        .commands
        .keys()
        .all(|id| id == GENESIS_COMMAND_ID || demo_ids.contains(id.as_str()));
    only_demo
}

/// Whether `ledger` holds the whole demo of `seed` (and so `populate` has nothing to write).
pub fn holds_the_whole_demo(ledger: &Ledger, seed: u64) -> bool {
    let steps = fundledger_demo::scenario(seed);
    resume_at(ledger, &steps) >= steps.len()
}

/// The first step still to run: steps up to the last recorded one were decided before an
/// interruption — the recorded ones are in the log, the others were refusals that wrote
/// nothing (and deciding them again on a later state could answer otherwise).
fn resume_at(ledger: &Ledger, steps: &[fundledger_demo::DemoStep]) -> usize {
    let snapshot = ledger.snapshot();
    steps
        .iter()
        .rposition(|step| {
            step.command["command_id"]
                .as_str()
                .is_some_and(|id| snapshot.commands.contains_key(id))
        })
        .map_or(0, |last_recorded| last_recorded + 1)
}

/// Writes the scenario into `ledger`, which must hold nothing but its catalogue record and
/// (resuming an interrupted demo) commands of the same scenario.
pub async fn populate(ledger: &Ledger, seed: u64) -> anyhow::Result<DemoSummary> {
    if !holds_only_the_demo(ledger, seed) {
        bail!(
            "the store already holds {} records that are not this demo's; the demo writes into \
             a new, empty ledger (choose another --store, e.g. sqlite://data/demo.db)",
            ledger.snapshot().last_seq
        );
    }
    let steps = fundledger_demo::scenario(seed);
    let resume_at = resume_at(ledger, &steps);
    if resume_at >= steps.len() {
        bail!(
            "the store already holds {} records: the whole demo; the demo writes into a new, \
             empty ledger (choose another --store, e.g. sqlite://data/demo.db)",
            ledger.snapshot().last_seq
        );
    }
    let run = fundledger_demo::run(ledger, &steps[resume_at..])
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
