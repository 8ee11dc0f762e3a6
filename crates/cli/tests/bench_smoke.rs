//! The benchmarks at smoke size, so they cannot rot: every `fundledger bench` subcommand runs
//! from its one command with tiny sizes, on SQLite and (write) on PostgreSQL, and prints its
//! figures and its ratio. Nothing here looks at how fast anything was (timing belongs in
//! BENCHMARKS.md, not in tests); what is checked is that each bench ran its whole course and
//! that the raw side replayed the writer's own records.

mod common;

use common::fundledger;

/// The line of `stdout` that starts with `prefix` (after indentation), for messages.
fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .map(str::trim_start)
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
}

/// The number in `text` right before `unit` (e.g. "1,234 records" → 1234).
fn count_before(text: &str, unit: &str) -> u64 {
    let end = text
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit:?} in {text:?}"));
    let digits: String = text[..end]
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .filter(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number before {unit:?} in {text:?}"))
}

fn check_write(store: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("bench-data");
    let run = fundledger(
        dir.path(),
        &[
            "bench",
            "write",
            "--store",
            store,
            "--commands",
            "300",
            "--clients",
            "16",
            "--batch-max",
            "32",
            "--rounds",
            "2",
            "--data-dir",
            data_dir.to_str().expect("a UTF-8 path"),
        ],
    )
    .ok();
    let writer = line(&run.stdout, "writer:");
    assert_eq!(count_before(writer, "commands in"), 300, "{writer}");
    let records = count_before(writer, "records =");
    assert!(records > 0, "{writer}");
    // The raw side appended exactly the records the writer wrote.
    let raw = line(&run.stdout, "raw append:");
    assert_eq!(count_before(raw, "records in"), records, "{raw}");
    let outcomes = line(&run.stdout, "outcomes:");
    assert!(outcomes.contains("accepted"), "{outcomes}");
    let ratio = line(
        &run.stdout,
        "ratio (writer records/s ÷ raw append records/s), median of 2",
    );
    assert!(ratio.contains("goal ≥ 0.50"), "{ratio}");
    // The scratch stores are gone.
    let left: Vec<_> = std::fs::read_dir(data_dir.join("tmp"))
        .map(|entries| entries.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
}

#[test]
fn bench_write_runs_on_sqlite() {
    check_write("sqlite");
}

#[test]
fn bench_write_runs_on_postgres() {
    check_write("postgres");
}

#[test]
fn bench_cold_start_and_memory_make_and_reuse_a_cached_ledger() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("bench-data");
    let data = data_dir.to_str().expect("a UTF-8 path");
    let cold = fundledger(
        dir.path(),
        &[
            "bench",
            "cold-start",
            "--records",
            "400",
            "--data-dir",
            data,
        ],
    )
    .ok();
    assert!(
        cold.stderr
            .contains("writing 400 records through the writer"),
        "{}",
        cold.stderr
    );
    let rebuild = line(&cold.stdout, "store, rebuild all projections");
    assert!(rebuild.contains("applications"), "{rebuild}");
    let raw = line(&cold.stdout, "store, read raw:");
    assert_eq!(count_before(raw, "records in"), 400, "{raw}");
    let export = line(&cold.stdout, "export, read raw");
    assert_eq!(count_before(export, "records in"), 400, "{export}");
    line(&cold.stdout, "ratio (store raw read time ÷ rebuild time)");
    assert!(data_dir.join("ledger-r400-s1.db").is_file());
    assert!(data_dir.join("ledger-r400-s1.jsonl").is_file());

    // The second bench finds the cached ledger instead of writing it again.
    let memory = fundledger(
        dir.path(),
        &["bench", "memory", "--records", "400", "--data-dir", data],
    )
    .ok();
    assert!(
        memory.stderr.contains("using the cached"),
        "{}",
        memory.stderr
    );
    let replayed = line(&memory.stdout, "bench memory:");
    assert_eq!(
        count_before(replayed, "records replayed"),
        400,
        "{replayed}"
    );
    line(&memory.stdout, "resident:");
    line(&memory.stdout, "ratio (resident growth ÷ export size");
    // No half-made data set is left behind.
    let making: Vec<_> = std::fs::read_dir(&data_dir)
        .expect("the data directory")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("making-"))
        .collect();
    assert!(making.is_empty(), "{making:?}");
}

#[test]
fn bench_http_drives_every_endpoint_without_failures() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("bench-data");
    let run = fundledger(
        dir.path(),
        &[
            "bench",
            "http",
            "--seconds",
            "0.3",
            "--connections",
            "4",
            "--data-dir",
            data_dir.to_str().expect("a UTF-8 path"),
        ],
    )
    .ok();
    for label in [
        "baseline GET /healthz:",
        "read GET /v1/budgets:",
        "write POST /v1/commands:",
        "baseline GET /healthz, again:",
    ] {
        let measured = line(&run.stdout, label);
        assert!(count_before(measured, "requests in") > 0, "{measured}");
        assert!(measured.contains("; 0 failed"), "{measured}");
    }
    line(
        &run.stdout,
        "ratio (write requests/s ÷ baseline requests/s)",
    );
}

#[test]
fn a_bench_store_that_is_not_a_kind_of_store_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fundledger(
        dir.path(),
        &["bench", "write", "--store", "mysql://localhost/x"],
    )
    .fails(2, "sqlite://DIR");
}
