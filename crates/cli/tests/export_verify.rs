//! `export` then `verify`, on SQLite: the untouched export verifies with the right summary, and
//! every kind of tampering is caught with exit 1, naming the first bad seq.

mod common;

use common::*;
use fundledger_audit::{empty_root, MerkleTree};
use fundledger_events::{genesis, record_line, Head, Record};

const RECORDS: u64 = 300;

#[test]
fn an_untouched_export_verifies_with_its_summary() {
    let dir = tempdir();
    let (url, head) = sqlite_ledger(dir.path(), "ledger.db", RECORDS, note);
    let export = export_to(dir.path(), &url, "export.jsonl");

    let run = fundledger(dir.path(), &["verify", "--file", path_str(&export)]).ok();
    assert_eq!(run.field("origin").as_deref(), Some(ORIGIN));
    assert_eq!(run.field("records").as_deref(), Some("300"));
    assert_eq!(run.field("head seq").as_deref(), Some("300"));
    assert_eq!(run.field("head hash"), Some(head.hash.to_hex()));
    assert_eq!(run.stdout.lines().last(), Some("verify: OK"));

    // The Merkle root is that of the audit crate's tree over the record hashes.
    let tree: MerkleTree = lines_of(&read(&export))[1..]
        .iter()
        .map(|line| {
            serde_json::from_slice::<Record>(line)
                .unwrap_or_else(|error| panic!("{error}"))
                .hash
        })
        .collect();
    assert_eq!(run.field("merkle root"), Some(tree.root().to_hex()));

    // The store itself verifies to the same summary.
    let from_store = fundledger(dir.path(), &["verify", "--store", &url]).ok();
    for key in ["origin", "records", "head hash", "merkle root"] {
        assert_eq!(from_store.field(key), run.field(key), "{key}");
    }
}

#[test]
fn export_to_stdout_equals_export_to_a_file_and_follows_design_section_5() {
    let dir = tempdir();
    let (url, _) = sqlite_ledger(dir.path(), "ledger.db", 12, note);
    let file = read(&export_to(dir.path(), &url, "export.jsonl"));
    let stdout = fundledger(dir.path(), &["export", "--store", &url])
        .ok()
        .stdout;
    assert_eq!(stdout.as_bytes(), file.as_slice());

    let lines = lines_of(&file);
    assert_eq!(lines.len(), 13);
    assert_eq!(
        String::from_utf8_lossy(&lines[0]),
        format!(r#"{{"fundledger_export":1,"origin":"{ORIGIN}"}}"#)
    );
    let first: serde_json::Value =
        serde_json::from_slice(&lines[1]).unwrap_or_else(|error| panic!("{error}"));
    let keys: Vec<&String> = first
        .as_object()
        .map(|object| object.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 4, "{first}");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], genesis(ORIGIN).to_hex());
    assert_eq!(first["body"]["note"], note(1));
    // Only the files we asked for: no temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|error| panic!("{error}"))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("ledger.db"))
        .collect();
    names.sort();
    assert_eq!(names, ["export.jsonl"]);
}

#[test]
fn an_empty_ledger_exports_a_header_that_verifies_to_the_genesis() {
    let dir = tempdir();
    let (url, head) = sqlite_ledger(dir.path(), "empty.db", 0, note);
    assert_eq!(head, Head::empty(ORIGIN));
    let export = export_to(dir.path(), &url, "empty.jsonl");
    assert_eq!(lines_of(&read(&export)).len(), 1);

    let run = fundledger(dir.path(), &["verify", "--file", path_str(&export)]).ok();
    assert_eq!(run.field("records").as_deref(), Some("0"));
    assert_eq!(run.field("head seq").as_deref(), Some("0"));
    assert_eq!(run.field("head hash"), Some(genesis(ORIGIN).to_hex()));
    assert_eq!(run.field("merkle root"), Some(empty_root().to_hex()));
}

/// Replaces the first occurrence of `from` in `line`.
fn replace(line: &mut Vec<u8>, from: &str, to: &str) {
    let text = String::from_utf8(line.clone()).unwrap_or_else(|error| panic!("{error}"));
    assert!(text.contains(from), "{from:?} is not in {text}");
    *line = text.replacen(from, to, 1).into_bytes();
}

#[test]
fn every_tampering_is_caught_at_the_first_bad_seq() {
    let dir = tempdir();
    let (url, _) = sqlite_ledger(dir.path(), "ledger.db", RECORDS, note);
    let original = read(&export_to(dir.path(), &url, "export.jsonl"));

    type Tamper = fn(&mut Vec<u8>);
    let cases: &[(&str, Tamper, &str)] = &[
        (
            "a digit of an amount",
            |export| {
                let mut lines = lines_of(export);
                replace(&mut lines[150], "\"150000.50\"", "\"150001.50\"");
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 150: hash mismatch",
        ),
        (
            "a Chinese character",
            |export| {
                let mut lines = lines_of(export);
                replace(&mut lines[77], "算力券", "算力卷");
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 77: hash mismatch",
        ),
        (
            "a deleted line",
            |export| {
                let mut lines = lines_of(export);
                lines.remove(100);
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 100 (line 101): expected seq 100 but the line holds seq 101 (gap",
        ),
        (
            "a duplicated line",
            |export| {
                let mut lines = lines_of(export);
                let copy = lines[100].clone();
                lines.insert(101, copy);
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 101 (line 102): expected seq 101 but the line holds seq 100 (duplicate",
        ),
        (
            "two swapped lines",
            |export| {
                let mut lines = lines_of(export);
                lines.swap(200, 201);
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 200 (line 201): expected seq 200 but the line holds seq 201",
        ),
        (
            "a torn last line",
            |export| {
                let mut lines = lines_of(export);
                let last = lines.len() - 1;
                let half = lines[last].len() / 2;
                lines[last].truncate(half);
                *export = join_lines(&lines);
                export.pop(); // a crash mid-write leaves no newline either
            },
            "verify: FAILED at seq 300 (line 301): torn or invalid line",
        ),
        (
            "a non-UTF-8 byte",
            |export| {
                let mut lines = lines_of(export);
                lines[42].insert(30, 0xff);
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 42 (line 43): the line is not valid UTF-8",
        ),
        (
            "a changed origin in the header",
            |export| {
                let mut lines = lines_of(export);
                replace(&mut lines[0], ORIGIN, "zhengzhou-2024-62.other");
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 1: prev is",
        ),
        (
            "a missing header",
            |export| {
                let mut lines = lines_of(export);
                lines.remove(0);
                *export = join_lines(&lines);
            },
            "verify: FAILED: line 1: the export header is missing or invalid",
        ),
        (
            "a record rewritten with its own hash fixed",
            |export| {
                let mut lines = lines_of(export);
                let mut record: Record =
                    serde_json::from_slice(&lines[120]).unwrap_or_else(|error| panic!("{error}"));
                record.body["amount"] = serde_json::json!("9999999.00");
                record.hash = record.computed_hash();
                lines[120] = record_line(&record).into_bytes();
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 121: broken link",
        ),
        (
            "an empty line in the middle",
            |export| {
                let mut lines = lines_of(export);
                lines.insert(10, Vec::new());
                *export = join_lines(&lines);
            },
            "verify: FAILED at seq 10 (line 11): torn or invalid line",
        ),
    ];
    for (what, tamper, expected) in cases {
        let mut export = original.clone();
        tamper(&mut export);
        assert_ne!(export, original, "{what}: the tampering changed nothing");
        let path = dir.path().join("tampered.jsonl");
        write(&path, &export);
        let run = fundledger(dir.path(), &["verify", "--file", path_str(&path)]);
        assert_eq!(run.code, Some(1), "{what}: expected exit 1\n{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{what}: stderr should contain {expected:?}:\n{}",
            run.stderr
        );
        assert!(!run.stdout.contains("verify: OK"), "{what}: {}", run.stdout);
    }

    // A consistently re-hashed export passes the chain check: only a checkpoint catches it
    // (see checkpoints.rs). This shows the chain alone is no proof against its own writer.
    let mut lines = lines_of(&original);
    rewrite_from(&mut lines, 250, |body| {
        body["amount"] = serde_json::json!("1.00")
    });
    let path = dir.path().join("rewritten.jsonl");
    write(&path, &join_lines(&lines));
    fundledger(dir.path(), &["verify", "--file", path_str(&path)]).ok();
}

#[test]
fn a_last_line_without_its_newline_still_verifies_when_complete() {
    let dir = tempdir();
    let (url, head) = sqlite_ledger(dir.path(), "ledger.db", 5, note);
    let mut export = read(&export_to(dir.path(), &url, "export.jsonl"));
    export.pop();
    let path = dir.path().join("no-final-newline.jsonl");
    write(&path, &export);
    let run = fundledger(dir.path(), &["verify", "--file", path_str(&path)]).ok();
    assert_eq!(run.field("head hash"), Some(head.hash.to_hex()));
}

#[test]
fn a_later_export_extends_an_earlier_one() {
    let dir = tempdir();
    let (url, _) = sqlite_ledger(dir.path(), "ledger.db", 40, note);
    let first = read(&export_to(dir.path(), &url, "first.jsonl"));
    let head = grow(&url, 45);
    let second = read(&export_to(dir.path(), &url, "second.jsonl"));
    assert!(
        second.starts_with(&first),
        "the second export extends the first"
    );
    assert_eq!(lines_of(&second).len(), 46);
    let run = fundledger(
        dir.path(),
        &[
            "verify",
            "--file",
            path_str(&dir.path().join("second.jsonl")),
        ],
    )
    .ok();
    assert_eq!(run.field("head hash"), Some(head.hash.to_hex()));
}

#[test]
fn every_page_size_gives_the_same_export_root_checkpoint_and_proof() {
    let dir = tempdir();
    let d = dir.path();
    let (url, _) = sqlite_ledger(d, "ledger.db", 23, note);
    fundledger(
        d,
        &["keygen", "--name", ORIGIN, "--out", path_str(&d.join("k"))],
    )
    .ok();
    let key = d.join("k.key");
    let run_all = |page: &str| {
        let export = fundledger(d, &["export", "--store", &url, "--page-records", page])
            .ok()
            .stdout;
        let verify = fundledger(d, &["verify", "--store", &url, "--page-records", page])
            .ok()
            .stdout;
        // Ed25519 signatures are deterministic, so the same log gives the same note.
        let checkpoint = fundledger(
            d,
            &[
                "checkpoint",
                "--store",
                &url,
                "--key",
                path_str(&key),
                "--page-records",
                page,
            ],
        )
        .ok()
        .stdout;
        let proof = fundledger(
            d,
            &[
                "prove",
                "consistency",
                "--store",
                &url,
                "--old",
                "6",
                "--new",
                "23",
                "--page-records",
                page,
            ],
        )
        .ok()
        .stdout;
        (export, verify, checkpoint, proof)
    };
    let expected = run_all("5000");
    for page in ["1", "2", "7", "22", "23", "24"] {
        assert!(
            run_all(page) == expected,
            "page size {page} changes the output"
        );
    }
    fundledger(d, &["verify", "--store", &url, "--page-records", "0"])
        .fails(2, "expected 1 to 100000");
}
