//! `fundledger bench verify [--records N] [--export FILE]`: records/s of
//! `fundledger verify --file` against `b3sum` hashing the same file, measured in one run.
//!
//! b3sum (the BLAKE3 team's own tool, memory-mapped and multi-threaded) only hashes the
//! bytes: it is the floor of any verifier that must at least read and hash every record.
//! `verify --file` does much more per record — UTF-8, the record's form, JCS of the body, §5
//! fields, one BLAKE3 per record, the link, the Merkle root — so the ratio says how close
//! the whole check comes to the bare hash.
//!
//! The export is the cached data set of the other benches ([`crate::bench::dataset`]): N
//! records of the voucher workload written through the real writer (decide + seal + append)
//! and exported, so the bodies are the real ones. `--export FILE` times any export instead.
//!
//! Both sides run as child processes, exactly as a user runs them (`fundledger verify --file
//! EXPORT` is this very binary), alternately, after one untimed read of the file so the page
//! cache holds it for both; the median of `--runs` runs of each gives the figures.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::bench::dataset::dataset;
use crate::bench::{data_dir, load_average, per_second, thousands};

#[derive(Debug, Args)]
pub struct BenchVerifyArgs {
    /// Records in the export (the cached data set, made once through the writer)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        conflicts_with = "export"
    )]
    pub records: u64,
    /// Time this export instead of the cached data set
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Timed runs of each side; the median counts
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// Seed of the cached data set's workload
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where cached data sets live (default target/bench-data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The goal of issue 6: verify at least this share of b3sum's records/s.
const GOAL_RATIO: f64 = 0.3;

pub async fn run(args: BenchVerifyArgs) -> anyhow::Result<()> {
    let b3sum = find_b3sum()?;
    let export = match &args.export {
        Some(path) => path.clone(),
        None => {
            dataset(&data_dir(args.data_dir.as_deref()), args.records, args.seed)
                .await?
                .export_path
        }
    };
    // The rest is blocking: child processes and file reads.
    tokio::task::spawn_blocking(move || measure(&b3sum, &export, args.runs))
        .await
        .context("the bench thread failed")?
}

fn measure(b3sum: &Path, export: &Path, runs: u32) -> anyhow::Result<()> {
    let export_bytes = std::fs::metadata(export)
        .with_context(|| format!("cannot open {}", export.display()))?
        .len();
    let fundledger = std::env::current_exe().context("cannot find the fundledger binary")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // Warm the page cache (and learn the record count from a first, untimed verify).
    let records = run_verify(&fundledger, export)?.records;
    println!(
        "bench verify: {} records, export {} ({:.1} MB), {cores} cores ({})",
        thousands(records),
        export.display(),
        export_bytes as f64 / 1e6,
        load_average()
    );
    let mut b3sum_s = Vec::new();
    let mut verify_s = Vec::new();
    for _ in 0..runs {
        b3sum_s.push(run_b3sum(b3sum, export)?);
        let verified = run_verify(&fundledger, export)?;
        anyhow::ensure!(
            verified.records == records,
            "verify counted {} records, then {}",
            verified.records,
            records
        );
        verify_s.push(verified.seconds);
    }
    let b3sum_s = median(&mut b3sum_s);
    let verify_s = median(&mut verify_s);
    let line = |what: &str, seconds: f64| {
        println!(
            "  {what:<38} {seconds:>7.3} s  {:>12} records/s  {:>7.0} MB/s",
            per_second(records, seconds),
            export_bytes as f64 / 1e6 / seconds.max(f64::EPSILON)
        )
    };
    println!("  median of {runs} run(s) each, alternating:");
    line(&format!("b3sum {}", export.display()), b3sum_s);
    line(
        &format!("fundledger verify --file {}", export.display()),
        verify_s,
    );
    let ratio = b3sum_s / verify_s.max(f64::EPSILON);
    println!(
        "  ratio (verify records/s ÷ b3sum records/s): {ratio:.2} (goal ≥ {GOAL_RATIO}: {})",
        if ratio >= GOAL_RATIO { "met" } else { "missed" }
    );
    Ok(())
}

/// b3sum on PATH, else in ~/.cargo/bin (where `cargo install` puts it).
fn find_b3sum() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|cargo_home| cargo_home.join("bin"));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("b3sum"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "b3sum is not on PATH or in ~/.cargo/bin; install it with `cargo install b3sum` \
                 (the BLAKE3 team's tool from crates.io) and run the bench again"
            )
        })
}

/// Seconds b3sum takes to hash `export` (its default: memory-mapped, one thread per core).
fn run_b3sum(b3sum: &Path, export: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = Command::new(b3sum)
        .arg("--no-names")
        .arg(export)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", b3sum.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            b3sum.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(seconds)
}

struct Verified {
    records: u64,
    seconds: f64,
}

/// `fundledger verify --file EXPORT`, which must succeed; its time and record count.
fn run_verify(fundledger: &Path, export: &Path) -> anyhow::Result<Verified> {
    let started = Instant::now();
    let output = Command::new(fundledger)
        .arg("verify")
        .arg("--file")
        .arg(export)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", fundledger.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !stdout.contains("verify: OK") {
        bail!(
            "fundledger verify --file {} failed ({}): {}",
            export.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let records = stdout
        .lines()
        .find_map(|line| line.strip_prefix("records: "))
        .and_then(|count| count.trim().parse().ok())
        .context("verify printed no record count")?;
    Ok(Verified { records, seconds })
}

fn median(seconds: &mut [f64]) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [5.0]), 5.0);
        assert_eq!(median(&mut [4.0, 1.0]), 4.0);
    }
}
