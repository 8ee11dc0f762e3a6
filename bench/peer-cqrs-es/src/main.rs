//! Peer benchmark: the compute-voucher workload (submit, review, approve under the 1,000,000
//! yearly firm cap and the measure's budget) on fundledger and on cqrs-es + postgres-es, on
//! the same PostgreSQL server, in one run; prints commands/s of each and the ratio.
//!
//! ```text
//! cargo run --release --manifest-path bench/peer-cqrs-es/Cargo.toml -- \
//!     [--commands N] [--clients C] [--cqrs-pool P]
//! ```
//!
//! - [`workload`]: the plan and the JSON commands (DESIGN §7) both sides receive.
//! - [`fundledger_side`]: `Ledger` on `PostgresStore`, commands through `Ledger::enqueue`.
//! - [`cqrs_side`]: a firm-year aggregate and a budget aggregate on postgres-es.
//!
//! The server is `$FUNDLEDGER_TEST_PG` (default postgres://postgres@127.0.0.1:5432/postgres);
//! each side works in its own scratch database, dropped afterwards.

mod cqrs_side;
mod fundledger_side;
mod workload;

use anyhow::{bail, Context};

use crate::workload::{Plan, SideReport};

/// About 30,000 timed commands: a few minutes in all on a 2-core machine.
const DEFAULT_COMMANDS: usize = 30_000;
/// Clients with one command in flight each, on both sides.
const DEFAULT_CLIENTS: usize = 64;
/// fundledger's PostgresStore holds two connections (the writer's and the reader's); the
/// cqrs-es pool gets as many unless told otherwise.
const DEFAULT_CQRS_POOL: u32 = 2;
/// The issue's goal: fundledger at least 10× cqrs-es's commands/s.
const GOAL_RATIO: f64 = 10.0;

struct Args {
    commands: usize,
    clients: usize,
    cqrs_pool: u32,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        commands: DEFAULT_COMMANDS,
        clients: DEFAULT_CLIENTS,
        cqrs_pool: DEFAULT_CQRS_POOL,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .with_context(|| format!("{name} needs a value"))
        };
        match word.as_str() {
            "--commands" => args.commands = value("--commands")?.parse()?,
            "--clients" => args.clients = value("--clients")?.parse()?,
            "--cqrs-pool" => args.cqrs_pool = value("--cqrs-pool")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "usage: peer-cqrs-es [--commands N (default {DEFAULT_COMMANDS})] \
                     [--clients C (default {DEFAULT_CLIENTS})] \
                     [--cqrs-pool P (default {DEFAULT_CQRS_POOL})]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.commands == 0 || args.clients == 0 || args.cqrs_pool == 0 {
        bail!("--commands, --clients and --cqrs-pool must be positive");
    }
    Ok(args)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

fn print_side(label: &str, report: &SideReport) {
    println!(
        "{label}: {} of {} commands accepted in {:.2} s = {:.0} commands/s",
        report.accepted,
        report.commands,
        report.elapsed_s,
        report.commands_per_s()
    );
    println!("    {}", report.detail);
    println!(
        "    caps {}: {}",
        if report.caps_held { "held" } else { "NOT HELD" },
        report.caps_detail
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let plan = Plan::new(args.commands, args.clients);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "peer benchmark: {} timed commands ({} vouchers × submit/review/approve, {} firms at \
         their 1,000,000 cap, budget {} allocated beforehand), {} clients with one command in \
         flight each",
        plan.timed_commands(),
        plan.vouchers,
        plan.firms,
        plan.budget_yuan(),
        plan.clients
    );
    println!(
        "machine: {cores} cores; load average before: {}",
        load_average()
    );

    let fundledger = fundledger_side::run(&plan)
        .await
        .context("the fundledger side failed")?;
    print_side(
        "fundledger (Ledger + PostgresStore, group commit)",
        &fundledger,
    );
    let load_between = load_average();

    let cqrs = cqrs_side::run(&plan, args.cqrs_pool)
        .await
        .context("the cqrs-es side failed")?;
    print_side("cqrs-es 0.5 + postgres-es 0.5 (sqlx 0.8)", &cqrs);

    let ratio = fundledger.commands_per_s() / cqrs.commands_per_s().max(f64::MIN_POSITIVE);
    println!(
        "ratio fundledger ÷ cqrs-es = {ratio:.1}× (goal ≥ {GOAL_RATIO:.0}×: {})",
        if ratio >= GOAL_RATIO { "met" } else { "missed" }
    );
    println!(
        "load average between the sides: {load_between}; after: {}",
        load_average()
    );

    let complete = |report: &SideReport| report.accepted == report.commands && report.caps_held;
    if !complete(&fundledger) || !complete(&cqrs) {
        bail!("a side refused workload commands or let a cap pass: the figures are not comparable");
    }
    Ok(())
}
