//! Inputs that cannot be used: each gets a clear `error:` message and exit 2 (exit 1 is kept
//! for "the data was read and is bad"), never a panic, and nothing is created on the way.

mod common;

use common::*;

#[test]
fn unusable_export_files_are_exit_2_with_one_clear_message() {
    let dir = tempdir();
    let d = dir.path();
    let empty = d.join("empty.jsonl");
    write(&empty, b"");
    let cases: &[(&str, &str)] = &[
        ("missing.jsonl", "error: cannot open"),
        (
            "empty.jsonl",
            "is empty; an export starts with the header line",
        ),
        (".", "is a directory, not an export file"),
    ];
    for (name, needle) in cases {
        let path = d.join(name);
        let run = fundledger(d, &["verify", "--file", path_str(&path)]).fails(2, needle);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[test]
fn unusable_stores_are_exit_2_and_nothing_is_created() {
    let dir = tempdir();
    let d = dir.path();
    let missing = format!("sqlite://{}", d.join("nowhere/ledger.db").display());
    let out = d.join("out.jsonl");
    let unreachable = "postgres://postgres@127.0.0.1:1/x";
    let cases: &[(&[&str], &str)] = &[
        (
            &["verify", "--store", "mysql://localhost/x"],
            "is not a store URL",
        ),
        (
            &["export", "--store", "mysql://localhost/x"],
            "is not a store URL",
        ),
        (&["verify", "--store", "sqlite://"], "names no file"),
        (&["verify", "--store", unreachable], "unreachable"),
        (&["export", "--store", unreachable], "unreachable"),
        (
            &["checkpoint", "--store", unreachable, "--key", "k.key"],
            "cannot open the key file",
        ),
        (
            &["prove", "inclusion", "--store", unreachable, "--seq", "1"],
            "unreachable",
        ),
        (&["verify", "--store", &missing], "does not exist"),
        (
            &["export", "--store", &missing, "--out", path_str(&out)],
            "does not exist",
        ),
        (
            &[
                "prove",
                "consistency",
                "--store",
                &missing,
                "--old",
                "1",
                "--new",
                "2",
            ],
            "does not exist",
        ),
        // The default store, data/fundledger.db under the working directory, is not there.
        (&["verify"], "data/fundledger.db does not exist"),
        (&["export"], "data/fundledger.db does not exist"),
    ];
    for (args, needle) in cases {
        let run = fundledger(d, args).fails(2, needle);
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Neither export nor verify made a ledger, a directory or an output file.
    assert!(!d.join("nowhere").exists());
    assert!(!d.join("data").exists());
    assert!(!out.exists());
}

#[test]
fn a_failed_export_keeps_the_previous_file_and_leaves_no_partial_one() {
    let dir = tempdir();
    let d = dir.path();
    let out = d.join("export.jsonl");
    write(&out, b"the previous export\n");
    let missing = format!("sqlite://{}", d.join("missing.db").display());
    fundledger(d, &["export", "--store", &missing, "--out", path_str(&out)])
        .fails(2, "does not exist");
    assert_eq!(read(&out), b"the previous export\n");
    let entries = std::fs::read_dir(d).map(Iterator::count).unwrap_or(0);
    assert_eq!(entries, 1, "no temporary file is left behind");
    fundledger(d, &["export", "--store", &missing, "--out", path_str(d)])
        .fails(2, "is a directory");
}

#[test]
fn formats_and_argument_mistakes_are_usage_errors() {
    let dir = tempdir();
    let d = dir.path();
    let (url, _) = sqlite_ledger(d, "ledger.db", 3, note);
    // The reports fold the log into the ledger's projections; these test bodies are no
    // fundledger events, which is a finding about the data (exit 1), not a usage error.
    for format in ["payments-csv", "360giving"] {
        fundledger(d, &["export", "--store", &url, "--format", format])
            .fails(1, "export: FAILED at seq 1: the record cannot be folded");
    }
    fundledger(d, &["export", "--store", &url, "--format", "xml"]).fails(2, "invalid value 'xml'");
    fundledger(d, &["verify", "--store", &url, "--file", "x.jsonl"])
        .fails(2, "cannot be used with");
    fundledger(d, &["frobnicate"]).fails(2, "unrecognized subcommand");
    // FUNDLEDGER_STORE stands in for --store.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(["verify"])
        .current_dir(d)
        .env("FUNDLEDGER_STORE", &url)
        .output()
        .unwrap_or_else(|error| panic!("{error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("records: 3"), "{stdout}");
}
