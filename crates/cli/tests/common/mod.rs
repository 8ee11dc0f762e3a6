//! Shared by the black-box tests: ledgers built straight through the store crate, and a way
//! to run the real `fundledger` binary and look at what it did.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fundledger_events::{record_line, seal_batch, Head, Record};
use fundledger_store::EventStore;
use serde_json::{json, Value};

pub const ORIGIN: &str = "zhengzhou-2024-62.test";

/// Records per append when building a test ledger.
const BATCH_RECORDS: u64 = 100;

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // Every input, however bad, gets a message; a panic is always a bug.
        assert!(
            !run.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            run.stderr
        );
        run
    }

    /// Asserts exit 0 and returns self for further checks.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts exit `code` with `needle` in stderr.
    pub fn fails(self, code: i32, needle: &str) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// The value of a `key: value` line of a summary on stdout.
    pub fn field(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}: ");
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(str::to_string)
    }
}

/// Runs `fundledger args…` in `dir`, with no store configured from the environment.
pub fn fundledger(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(args)
        .current_dir(dir)
        .env_remove("FUNDLEDGER_STORE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run fundledger: {error}"));
    Run::from(output)
}

/// A body that meets DESIGN §5, with Chinese text (and a policy quotation) in it.
pub fn body(seq: u64, note: &str) -> Value {
    json!({
        "seq": seq,
        "type": "test_event",
        "recorded_at": "2024-06-01T09:00:00+08:00",
        "command_id": format!("00000000-0000-4000-8000-{seq:012}"),
        "actor": {"id": "fin.wang", "role": "finance", "unit": "市财政局"},
        "note": note,
        "amount": format!("{}.50", seq * 1000),
    })
}

/// The default note of record `seq`.
pub fn note(seq: u64) -> String {
    format!("第{seq}条：算力券 郑州市支持人工智能创新发展若干政策措施（郑政文〔2024〕62号）")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("no runtime: {error}"))
}

/// Appends records `head.seq + 1 ..= until_seq`, each body from `make_note(seq)`.
pub async fn append_records(
    store: &dyn EventStore,
    until_seq: u64,
    make_note: impl Fn(u64) -> String,
) -> Head {
    let mut head = store.head().await.unwrap_or_else(|error| panic!("{error}"));
    while head.seq < until_seq {
        let last = (head.seq + BATCH_RECORDS).min(until_seq);
        let bodies = (head.seq + 1..=last)
            .map(|seq| body(seq, &make_note(seq)))
            .collect();
        let batch: Vec<Record> =
            seal_batch(&head, bodies).unwrap_or_else(|error| panic!("{error}"));
        head = store
            .append(head, &batch)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    head
}

/// A SQLite ledger of `count` records at `dir/name`, returning its URL and head.
pub fn sqlite_ledger(
    dir: &Path,
    name: &str,
    count: u64,
    make_note: impl Fn(u64) -> String,
) -> (String, Head) {
    let url = format!("sqlite://{}", dir.join(name).display());
    let head = runtime().block_on(async {
        let store = fundledger_store::open(&url, ORIGIN)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        append_records(&*store, count, make_note).await
    });
    (url, head)
}

/// Grows an existing SQLite ledger to `count` records.
pub fn grow(url: &str, count: u64) -> Head {
    runtime().block_on(async {
        let store = fundledger_store::open_existing(url)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        append_records(&*store, count, note).await
    })
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fundledger-cli-test-")
        .tempdir()
        .unwrap_or_else(|error| panic!("no temporary directory: {error}"))
}

pub fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("test paths are UTF-8: {}", path.display()))
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()))
}

/// Exports `url` into `dir/name` with the binary and returns the path.
pub fn export_to(dir: &Path, url: &str, name: &str) -> PathBuf {
    let out = dir.join(name);
    fundledger(dir, &["export", "--store", url, "--out", path_str(&out)]).ok();
    out
}

/// The export's lines, without their newlines.
pub fn lines_of(export: &[u8]) -> Vec<Vec<u8>> {
    let text = export.strip_suffix(b"\n").unwrap_or(export);
    text.split(|&byte| byte == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Lines joined back into an export, each with its newline.
pub fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// Re-seals records `from_seq..` of an export after `edit` changed the body of `from_seq`, so
/// the chain is consistent again from there on: what a forger with write access would do.
pub fn rewrite_from(lines: &mut [Vec<u8>], from_seq: u64, edit: impl Fn(&mut serde_json::Value)) {
    let parse = |line: &[u8]| -> Record {
        serde_json::from_slice(line).unwrap_or_else(|error| panic!("{error}"))
    };
    let index = |seq: u64| usize::try_from(seq).unwrap_or_else(|error| panic!("{error}"));
    // Line 0 is the header, so the record before seq 1 is the genesis.
    let mut head = if from_seq == 1 {
        Head::empty(ORIGIN)
    } else {
        parse(&lines[index(from_seq - 1)]).head()
    };
    for seq in from_seq..lines.len() as u64 {
        let mut body = parse(&lines[index(seq)]).body;
        if seq == from_seq {
            edit(&mut body);
        }
        let record = Record::seal(&head, body).unwrap_or_else(|error| panic!("{error}"));
        head = record.head();
        lines[index(seq)] = record_line(&record).into_bytes();
    }
}
