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
    let mut b3sum_runs = Vec::new();
    let mut verify_runs = Vec::new();
    for _ in 0..runs {
        b3sum_runs.push(run_b3sum(b3sum, export)?);
        let verified = run_verify(&fundledger, export)?;
        anyhow::ensure!(
            verified.records == records,
            "verify counted {} records, then {}",
            verified.records,
            records
        );
        verify_runs.push(verified.timing);
    }
    let b3sum = Timing::median(&mut b3sum_runs);
    let verify = Timing::median(&mut verify_runs);
    let line = |what: &str, timing: &Timing| {
        println!(
            "  {what:<26} {:>7.3} s  {:>12} records/s  {:>6.0} MB/s   CPU {:>6.3} s",
            timing.wall_s,
            per_second(records, timing.wall_s),
            export_bytes as f64 / 1e6 / timing.wall_s.max(f64::EPSILON),
            timing.cpu_s
        )
    };
    println!("  median of {runs} run(s) each, alternating (CPU: user + system, all threads):");
    line("b3sum", &b3sum);
    line("fundledger verify --file", &verify);
    let ratio = b3sum.wall_s / verify.wall_s.max(f64::EPSILON);
    println!(
        "  ratio (verify records/s ÷ b3sum records/s): {ratio:.3} (goal ≥ {GOAL_RATIO}: {})",
        if ratio >= GOAL_RATIO { "met" } else { "missed" }
    );
    if b3sum.cpu_s > 0.0 && verify.cpu_s > 0.0 {
        println!(
            "  CPU ratio (b3sum CPU ÷ verify CPU; the wall ratio on an idle machine with every \
             core free): {:.2}",
            b3sum.cpu_s / verify.cpu_s
        );
    }
    Ok(())
}

/// Wall-clock and CPU seconds of one child process.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Timing {
    wall_s: f64,
    /// 0 when unknown (not Linux).
    cpu_s: f64,
}

impl Timing {
    /// Runs `command` to its end; its timing and output.
    fn of(command: &mut Command) -> std::io::Result<(Timing, std::process::Output)> {
        let cpu_before = children_cpu_seconds();
        let started = Instant::now();
        let output = command.stdin(Stdio::null()).output()?;
        let wall_s = started.elapsed().as_secs_f64();
        let cpu_s = match (cpu_before, children_cpu_seconds()) {
            (Some(before), Some(after)) => after - before,
            _ => 0.0,
        };
        Ok((Timing { wall_s, cpu_s }, output))
    }

    /// The run of median wall time, and separately the median CPU time.
    fn median(runs: &mut [Timing]) -> Timing {
        let mut wall: Vec<f64> = runs.iter().map(|run| run.wall_s).collect();
        let mut cpu: Vec<f64> = runs.iter().map(|run| run.cpu_s).collect();
        Timing {
            wall_s: median(&mut wall),
            cpu_s: median(&mut cpu),
        }
    }
}

/// CPU seconds (user + system) of this process's children that have been waited for, from
/// `/proc/self/stat` (cutime, cstime); None off Linux.
fn children_cpu_seconds() -> Option<f64> {
    /// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ), 100 on every Linux port.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the line, 14 and 15 after the name.
    let user: f64 = fields.get(13)?.parse().ok()?;
    let system: f64 = fields.get(14)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
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

/// b3sum hashing `export` (its default: memory-mapped, one thread per core).
fn run_b3sum(b3sum: &Path, export: &Path) -> anyhow::Result<Timing> {
    let (timing, output) = Timing::of(Command::new(b3sum).arg("--no-names").arg(export))
        .with_context(|| format!("cannot run {}", b3sum.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            b3sum.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(timing)
}

struct Verified {
    records: u64,
    timing: Timing,
}

/// `fundledger verify --file EXPORT`, which must succeed; its timing and record count.
fn run_verify(fundledger: &Path, export: &Path) -> anyhow::Result<Verified> {
    let (timing, output) = Timing::of(
        Command::new(fundledger)
            .arg("verify")
            .arg("--file")
            .arg(export),
    )
    .with_context(|| format!("cannot run {}", fundledger.display()))?;
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
    Ok(Verified { records, timing })
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
