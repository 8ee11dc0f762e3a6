//! `fundledger`, the command line of the fund-disbursement ledger (DESIGN §8).
//!
//! This file only parses arguments, starts the runtime, runs one subcommand and turns its
//! error into a message and an exit code. Each subcommand lives in its own module:
//!
//! - [`apply`]: `apply` — commands as JSON Lines through the writer, one outcome line each.
//! - [`query`]: `query` — a projection as a JSON array, folded from the log.
//! - [`demo_cmd`]: `demo` — the seeded multi-year scenario, written through the writer.
//! - [`serve`]: `serve` — the HTTP service and dashboard, optionally over demo data.
//! - [`ledger_args`]: `--store` and `--origin` of the subcommands that run the writer.
//! - [`export`]: `export` — the JSON Lines export of DESIGN §5, streamed page by page, and
//!   the finance bureau's reports folded from the log: [`payments_csv`] (the payment register
//!   for Excel/WPS) and [`giving360`] (approved grants as 360Giving JSON).
//! - [`verify`]: `verify` — re-checks the hash chain of an export file or a store, builds the
//!   Merkle root, and checks signed checkpoints (and their consistency) against it.
//! - [`audit_cmds`]: `keygen`, `checkpoint`, `prove inclusion|consistency` (DESIGN §6).
//! - [`bench`]: `bench write|cold-start|memory|http|verify`, the benchmarks of BENCHMARKS.md
//!   ([`bench_verify`] holds `bench verify`).
//! - [`store_args`]: the `--store URL` option every store-reading subcommand flattens in, and
//!   the paged reader they share.
//! - [`frontier`]: a Merkle root in O(log n) memory, so `verify` and `checkpoint` stay
//!   constant-memory however long the log is.
//! - [`failure`]: [`failure::DataError`], the error that means "the data is bad" (exit 1).
//! - [`output`]: stdout and stderr writes that report a closed pipe instead of panicking.
//!
//! Adding a subcommand is one [`Command`] variant (holding its `clap::Args` struct from its
//! module) and one arm in [`run`].
//!
//! Exit codes: 0 success; 1 the data is bad (tampering, a checkpoint that does not match or
//! is not signed by the key, a fork or rollback); 2 usage, input/output and store errors
//! (clap's own usage errors exit 2 as well).

mod apply;
mod audit_cmds;
mod bench;
mod bench_verify;
mod demo_cmd;
mod export;
mod failure;
mod frontier;
mod giving360;
mod ledger_args;
mod output;
mod payments_csv;
mod query;
mod serve;
mod store_args;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the write path allocates and frees many small
/// objects per command, and glibc's malloc and free took a third of its CPU samples
/// (BENCHMARKS.md, write path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The event-sourced fund-disbursement ledger of 郑政文〔2024〕62号.
#[derive(Debug, Parser)]
#[command(name = "fundledger", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply commands (JSON Lines, FILE or -); print one outcome line per input line.
    Apply(apply::ApplyArgs),
    /// Print a projection as a JSON array.
    Query(query::QueryArgs),
    /// Write the seeded multi-year demo scenario into an empty ledger.
    Demo(demo_cmd::DemoArgs),
    /// Serve the HTTP API and the dashboard (DESIGN §9).
    Serve(serve::ServeArgs),
    /// Write the whole log as JSON Lines (DESIGN §5), for auditors.
    Export(export::ExportArgs),
    /// Re-check the hash chain of an export or a store; optionally a signed checkpoint.
    Verify(verify::VerifyArgs),
    /// Make a checkpoint signing key: PREFIX.key (secret, mode 0600) and PREFIX.vkey.
    Keygen(audit_cmds::KeygenArgs),
    /// Print a signed checkpoint (C2SP tlog-checkpoint) of the whole log.
    Checkpoint(audit_cmds::CheckpointArgs),
    /// Print an inclusion or consistency proof (DESIGN §6) as JSON.
    #[command(subcommand)]
    Prove(audit_cmds::ProveCommand),
    /// Benchmarks (BENCHMARKS.md): write, cold-start, memory, http, verify.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Apply(args) => apply::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Demo(args) => demo_cmd::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Keygen(args) => audit_cmds::keygen(args),
        Command::Checkpoint(args) => audit_cmds::checkpoint(args).await,
        Command::Prove(command) => audit_cmds::prove(command).await,
        Command::Bench(command) => bench::run(command).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Multi-threaded: the PostgreSQL connection task and SQLite's blocking calls run beside
    // the command itself.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output::print_stderr(&format!("error: cannot start the async runtime: {error}"));
            return ExitCode::from(failure::EXIT_USAGE_OR_IO);
        }
    };
    let outcome = runtime.block_on(run(cli.command));
    // Stores close their connections on drop; do not wait forever for a stuck one.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(failure::exit_code(&error))
        }
    }
}

/// Prints the error chain on stderr: `error: top` then one `  caused by: …` line per cause.
/// A [`failure::DataError`] is a finding, not a malfunction, so it is printed as it is
/// (e.g. `verify: FAILED at seq 7: hash mismatch …`) without the `error:` prefix.
fn report(error: &anyhow::Error) {
    if error.is::<failure::DataError>() {
        output::print_stderr(&format!("{error}"));
    } else {
        output::print_stderr(&format!("error: {error}"));
    }
    for cause in error.chain().skip(1) {
        output::print_stderr(&format!("  caused by: {cause}"));
    }
}
