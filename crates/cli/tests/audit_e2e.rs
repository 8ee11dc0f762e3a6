//! The audit, end to end, as docs/AUDITORS.md tells it: the bureau runs the demo ledger and
//! signs a checkpoint, which the auditor keeps; the ledger grows; then someone with the
//! database file rewrites an early record and re-hashes the whole chain after it. The chain
//! alone still verifies — only the auditor's old checkpoint catches the rewrite. And one
//! payout is proven to an auditor with nothing but its export line, an inclusion proof and a
//! checkpoint. docs/verify_export.py, the guide's script in another language, reaches the same
//! verdicts when Python's blake3 is installed (and says loudly that it skipped when not).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use fundledger_audit::{check_included, open_checkpoint, Checkpoint, InclusionProof, VerifierKey};
use fundledger_events::{Head, Record};
use serde_json::{json, Value};

const E2E_ORIGIN: &str = "zhengzhou-2024-62.audit-e2e";

/// The bureau's ledger: the demo, in `dir/d.db`, and its checkpoint key `dir/bureau.{key,vkey}`.
fn bureau(dir: &Path) -> String {
    let url = format!("sqlite://{}", dir.join("d.db").display());
    fundledger(dir, &["demo", "--store", &url, "--origin", E2E_ORIGIN]).ok();
    fundledger(
        dir,
        &[
            "keygen",
            "--name",
            E2E_ORIGIN,
            "--out",
            path_str(&dir.join("bureau")),
        ],
    )
    .ok();
    url
}

/// `fundledger checkpoint` of the whole log, saved as `dir/name`.
fn checkpoint(dir: &Path, url: &str, name: &str) -> PathBuf {
    let key = dir.join("bureau.key");
    let run = fundledger(
        dir,
        &["checkpoint", "--store", url, "--key", path_str(&key)],
    )
    .ok();
    let path = dir.join(name);
    write(&path, run.stdout.as_bytes());
    path
}

fn opened(dir: &Path, checkpoint: &Path) -> Checkpoint {
    let vkey = String::from_utf8_lossy(&read(&dir.join("bureau.vkey"))).into_owned();
    let key = VerifierKey::parse(vkey.trim()).unwrap_or_else(|error| panic!("{error}"));
    open_checkpoint(&String::from_utf8_lossy(&read(checkpoint)), &key)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// `verify --file export --checkpoint ckpt --vkey bureau.vkey [--since old]`.
fn verify_against(dir: &Path, export: &Path, checkpoint: &Path, since: Option<&Path>) -> Run {
    let vkey = dir.join("bureau.vkey");
    let mut args = vec![
        "verify",
        "--file",
        path_str(export),
        "--checkpoint",
        path_str(checkpoint),
        "--vkey",
        path_str(&vkey),
    ];
    if let Some(old) = since {
        args.extend(["--since", path_str(old)]);
    }
    fundledger(dir, &args)
}

/// Appends two budget allocations for 2027 through `fundledger apply`.
fn grow(dir: &Path, url: &str) {
    let finance = json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"});
    let commands = [
        ("M2", "00000000-0000-4000-8000-0000000e2e01"),
        ("M5", "00000000-0000-4000-8000-0000000e2e02"),
    ]
    .map(|(measure, command_id)| {
        json!({
            "command_id": command_id,
            "actor": finance,
            "type": "allocate_budget",
            "measure": measure,
            "fiscal_year": 2027,
            "amount": "5000000.00",
            "at": "2027-04-26T09:00:00+08:00",
        })
        .to_string()
    });
    let input = dir.join("more.jsonl");
    write(&input, format!("{}\n", commands.join("\n")).as_bytes());
    let run = fundledger(dir, &["apply", "--store", url, path_str(&input)]).ok();
    assert_eq!(run.stdout.lines().count(), 2);
    for line in run.stdout.lines() {
        assert!(line.contains(r#""outcome":"accepted""#), "{line}");
    }
}

/// What someone holding the SQLite file can do: drop the append-only triggers, change the
/// body of `seq` with `edit`, and re-seal every record from there on, so that each record's
/// `prev` and `hash` are right again and the chain alone verifies.
fn rewrite_history(db: &Path, seq: u64, edit: impl Fn(&mut Value)) {
    let mut connection = rusqlite::Connection::open(db).unwrap_or_else(|error| panic!("{error}"));
    let transaction = connection
        .transaction()
        .unwrap_or_else(|error| panic!("{error}"));
    transaction
        .execute_batch(
            "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;",
        )
        .unwrap_or_else(|error| panic!("{error}"));
    let rows: Vec<(u64, String, String)> = {
        let mut statement = transaction
            .prepare("SELECT seq, prev, body FROM records WHERE seq >= ?1 ORDER BY seq")
            .unwrap_or_else(|error| panic!("{error}"));
        let rows = statement
            .query_map([seq], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap_or_else(|error| panic!("{error}"));
        rows.map(|row| row.unwrap_or_else(|error| panic!("{error}")))
            .collect()
    };
    let (_, first_prev, _) = &rows[0];
    let mut head = Head {
        seq: seq - 1,
        hash: first_prev
            .parse()
            .unwrap_or_else(|error| panic!("{error:?}")),
    };
    for (row_seq, _, body) in &rows {
        let mut body: Value = serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}"));
        if *row_seq == seq {
            edit(&mut body);
        }
        let record = Record::seal(&head, body).unwrap_or_else(|error| panic!("{error}"));
        transaction
            .execute(
                "UPDATE records SET prev = ?1, hash = ?2, body = ?3 WHERE seq = ?4",
                rusqlite::params![
                    record.prev.to_hex(),
                    record.hash.to_hex(),
                    record.body.to_string(),
                    record.seq
                ],
            )
            .unwrap_or_else(|error| panic!("{error}"));
        head = record.head();
    }
    transaction
        .commit()
        .unwrap_or_else(|error| panic!("{error}"));
}

/// The export's records, in seq order.
fn records_of(export: &Path) -> Vec<Record> {
    lines_of(&read(export))[1..]
        .iter()
        .map(|line| serde_json::from_slice(line).unwrap_or_else(|error| panic!("{error}")))
        .collect()
}

#[test]
fn a_rewritten_history_is_caught_by_the_auditors_old_checkpoint() {
    let dir = tempdir();
    let d = dir.path();
    let url = bureau(d);
    let old = checkpoint(d, &url, "old.ckpt");
    let old_size = opened(d, &old).size;
    grow(d, &url);

    // Before the forgery: the grown log extends what the auditor holds.
    let honest = export_to(d, &url, "honest.jsonl");
    let honest_records = records_of(&honest);
    assert_eq!(honest_records.len() as u64, old_size + 2);
    verify_against(d, &honest, &old, None).ok();

    // The forger raises the first payout the demo ordered, long before the old checkpoint.
    let forged = honest_records
        .iter()
        .find(|record| record.body["type"] == "payout_ordered")
        .unwrap_or_else(|| panic!("the demo orders payouts"));
    let forged_seq = forged.seq;
    let payout_id = forged.body["payout_id"].as_str().unwrap_or("?").to_string();
    assert!(forged_seq < old_size);
    rewrite_history(&d.join("d.db"), forged_seq, |body| {
        body["amount"] = json!("9999999.00");
    });

    // The chain alone cannot tell: the store and its export verify, record for record.
    let store_run = fundledger(d, &["verify", "--store", &url]).ok();
    let tampered = export_to(d, &url, "tampered.jsonl");
    let chain_run = fundledger(d, &["verify", "--file", path_str(&tampered)]).ok();
    assert_eq!(chain_run.field("records"), Some((old_size + 2).to_string()));
    assert_eq!(store_run.field("head hash"), chain_run.field("head hash"));
    assert_ne!(
        records_of(&tampered).last().map(|record| record.hash),
        honest_records.last().map(|record| record.hash)
    );
    // Nor can the finance bureau's own register, folded from the forged log.
    let register = fundledger(d, &["export", "--store", &url, "--format", "payments-csv"]).ok();
    let row = register
        .stdout
        .lines()
        .find(|line| line.starts_with(&format!("{payout_id},")))
        .unwrap_or_else(|| panic!("{payout_id} is not in the register"));
    assert!(row.contains(",9999999.00,"), "{row}");

    // The auditor holding only the OLD checkpoint catches it.
    verify_against(d, &tampered, &old, None)
        .fails(1, "verify: FAILED")
        .fails(1, "they are not the records that were signed");
    // A fresh checkpoint signed over the forged log is a valid signature over the forgery —
    // a checkpoint proves what the bureau signed, not that it is true — but it does not
    // extend the one the auditor kept: a fork.
    let resigned = checkpoint(d, &url, "resigned.ckpt");
    verify_against(d, &tampered, &resigned, None).ok();
    verify_against(d, &tampered, &resigned, Some(&old))
        .fails(1, "--since: FORK")
        .fails(1, &format!("at size {old_size}"));
    // The honest export still matches both the old checkpoint and a consistent extension.
    verify_against(d, &honest, &old, None).ok();

    // The same verdicts from DESIGN §5–6 alone, in another language.
    match python_with_blake3() {
        None => eprintln!(
            "SKIPPED: the docs/verify_export.py part of this test: python3 with the blake3 \
             package is not available here (pip install blake3)"
        ),
        Some(python) => {
            python.verify(
                d,
                &[path_str(&honest), "--checkpoint", path_str(&old)],
                0,
                "verify_export: OK",
            );
            python.verify(d, &[path_str(&tampered)], 0, "verify_export: OK");
            python.verify(
                d,
                &[path_str(&tampered), "--checkpoint", path_str(&old)],
                1,
                "rewritten or forged",
            );
        }
    }
}

#[test]
fn one_payout_is_proven_with_its_record_a_proof_and_a_checkpoint() {
    let dir = tempdir();
    let d = dir.path();
    let url = bureau(d);
    let signed = checkpoint(d, &url, "now.ckpt");
    let checkpoint = opened(d, &signed);
    let export = export_to(d, &url, "export.jsonl");

    // The auditor is handed one export line: a payout's confirmation.
    let lines = lines_of(&read(&export));
    let line = lines[1..]
        .iter()
        .find(|line| String::from_utf8_lossy(line).contains(r#""type":"payout_confirmed""#))
        .unwrap_or_else(|| panic!("the demo confirms payouts"));
    let record: Record = serde_json::from_slice(line).unwrap_or_else(|error| panic!("{error}"));
    // From the line alone: its hash is that of its prev and body (DESIGN §5).
    assert_eq!(record.computed_hash(), record.hash);

    // The bureau proves it is in the tree the checkpoint signs.
    let seq = record.seq.to_string();
    let run = fundledger(d, &["prove", "inclusion", "--store", &url, "--seq", &seq]).ok();
    let proof: InclusionProof =
        serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(proof.record_hash, record.hash);
    assert_eq!(proof.leaf_index, record.seq - 1);
    assert_eq!(proof.tree_size, checkpoint.size);
    check_included(&checkpoint, &proof).unwrap_or_else(|error| panic!("{error}"));

    // The payment register names the same record for that payout.
    let register = fundledger(d, &["export", "--store", &url, "--format", "payments-csv"]).ok();
    let payout_id = record.body["payout_id"].as_str().unwrap_or("?");
    let row = register
        .stdout
        .lines()
        .find(|row| row.starts_with(&format!("{payout_id},")))
        .unwrap_or_else(|| panic!("{payout_id} is not in the register"));
    assert!(
        row.ends_with(&format!(",confirmed,,{},{}", record.seq, record.hash)),
        "{row}"
    );

    // A proof is for one record and one tree head: another record's hash fails, and so does a
    // proof for an older tree against this checkpoint.
    let other: Record = serde_json::from_slice(&lines[1]).unwrap_or_else(|error| panic!("{error}"));
    let mut wrong_record = proof.clone();
    wrong_record.record_hash = other.hash;
    assert!(check_included(&checkpoint, &wrong_record).is_err());
    let smaller = fundledger(
        d,
        &[
            "prove",
            "inclusion",
            "--store",
            &url,
            "--seq",
            &seq,
            "--size",
            &(checkpoint.size - 1).to_string(),
        ],
    )
    .ok();
    let smaller: InclusionProof =
        serde_json::from_str(&smaller.stdout).unwrap_or_else(|error| panic!("{error}"));
    assert!(smaller.verify().is_ok());
    assert!(check_included(&checkpoint, &smaller).is_err());

    // The guide's script checks the same three things without fundledger.
    match python_with_blake3() {
        None => eprintln!(
            "SKIPPED: the docs/verify_export.py --record part of this test: python3 with the \
             blake3 package is not available here (pip install blake3)"
        ),
        Some(python) => {
            let line_file = d.join("line.json");
            write(&line_file, line);
            let proof_file = d.join("proof.json");
            write(&proof_file, run.stdout.as_bytes());
            let args = [
                "--record",
                path_str(&line_file),
                "--proof",
                path_str(&proof_file),
                "--checkpoint",
                path_str(&signed),
            ];
            python.verify(d, &args, 0, "inclusion: OK");
            let smaller_file = d.join("smaller.json");
            write(
                &smaller_file,
                serde_json::to_string(&smaller)
                    .unwrap_or_else(|error| panic!("{error}"))
                    .as_bytes(),
            );
            let mut args = args;
            args[3] = path_str(&smaller_file);
            python.verify(d, &args, 1, "the checkpoint signs size");
        }
    }
}

#[test]
fn the_python_verifier_agrees_with_fundledger_on_the_demo_export() {
    let Some(python) = python_with_blake3() else {
        eprintln!(
            "SKIPPED: docs/verify_export.py was not run: python3 with the blake3 package is not \
             available here (pip install blake3)"
        );
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let url = bureau(d);
    let signed = checkpoint(d, &url, "now.ckpt");
    let export = export_to(d, &url, "export.jsonl");

    let ours = fundledger(d, &["verify", "--file", path_str(&export)]).ok();
    let theirs = python.verify(d, &[path_str(&export)], 0, "verify_export: OK");
    for key in ["origin", "records", "head hash", "merkle root"] {
        assert_eq!(theirs.field(key), ours.field(key), "{key}");
    }
    // The signature too, when the cryptography package is there.
    let vkey = d.join("bureau.vkey");
    if python.has("cryptography") {
        python.verify(
            d,
            &[
                path_str(&export),
                "--checkpoint",
                path_str(&signed),
                "--vkey",
                path_str(&vkey),
            ],
            0,
            "signature checked",
        );
        let other = d.join("other");
        fundledger(
            d,
            &["keygen", "--name", E2E_ORIGIN, "--out", path_str(&other)],
        )
        .ok();
        let other_vkey = d.join("other.vkey");
        python.verify(
            d,
            &[
                path_str(&export),
                "--checkpoint",
                path_str(&signed),
                "--vkey",
                path_str(&other_vkey),
            ],
            1,
            "carries no signature",
        );
        // A key whose base64 holds a '+', the separator of the key string's fields (a bug the
        // script once had: about half of all keys have one).
        let plus = (0..40)
            .map(|i| {
                let prefix = d.join(format!("plus{i}"));
                let run = fundledger(
                    d,
                    &["keygen", "--name", E2E_ORIGIN, "--out", path_str(&prefix)],
                )
                .ok();
                (prefix, run.stdout)
            })
            .find(|(_, vkey)| {
                vkey.trim()
                    .splitn(3, '+')
                    .nth(2)
                    .is_some_and(|b64| b64.contains('+'))
            })
            .unwrap_or_else(|| panic!("40 keys without a '+' in their base64"));
        let plus_key = format!("{}.key", plus.0.display());
        let plus_checkpoint = d.join("plus.ckpt");
        let run = fundledger(d, &["checkpoint", "--store", &url, "--key", &plus_key]).ok();
        write(&plus_checkpoint, run.stdout.as_bytes());
        python.verify(
            d,
            &[
                path_str(&export),
                "--checkpoint",
                path_str(&plus_checkpoint),
                "--vkey",
                plus.1.trim(),
            ],
            0,
            "signature checked",
        );
    } else {
        eprintln!("SKIPPED: the signature check of verify_export.py (pip install cryptography)");
    }

    // An edited body, left unsealed: both name the same seq.
    let mut lines = lines_of(&read(&export));
    let target = lines
        .iter()
        .position(|line| String::from_utf8_lossy(line).contains(r#""type":"payout_confirmed""#))
        .unwrap_or_else(|| panic!("the demo confirms payouts"));
    let edited = String::from_utf8_lossy(&lines[target]).replacen(
        r#""bank_reference":""#,
        r#""bank_reference":"X"#,
        1,
    );
    lines[target] = edited.into_bytes();
    let bad = d.join("bad.jsonl");
    write(&bad, &join_lines(&lines));
    let seq = target; // line index = seq (line 0 is the header)
    fundledger(d, &["verify", "--file", path_str(&bad)])
        .fails(1, &format!("verify: FAILED at seq {seq}"));
    python.verify(
        d,
        &[path_str(&bad)],
        1,
        &format!("verify_export: FAILED at seq {seq}: hash mismatch"),
    );
    // A truncated export against the checkpoint: a rollback for both.
    let truncated = d.join("truncated.jsonl");
    write(&truncated, &join_lines(&lines_of(&read(&export))[..10]));
    python.verify(
        d,
        &[path_str(&truncated), "--checkpoint", path_str(&signed)],
        1,
        "ROLLBACK",
    );
}

/// `python3`, when it can import blake3.
struct Python;

fn python_with_blake3() -> Option<Python> {
    Python.has("blake3").then_some(Python)
}

impl Python {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_export.py")
    }

    fn has(&self, module: &str) -> bool {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false)
    }

    /// Runs the script with `args` in `dir`; asserts the exit code and `needle` in its output.
    fn verify(&self, dir: &Path, args: &[&str], code: i32, needle: &str) -> Run {
        let output = Command::new("python3")
            .arg(Self::script())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|error| panic!("cannot run python3: {error}"));
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert_eq!(
            run.code,
            Some(code),
            "verify_export.py {args:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout.contains(needle) || run.stderr.contains(needle),
            "verify_export.py {args:?} should say {needle:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        run
    }
}
