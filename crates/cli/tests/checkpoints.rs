//! `keygen`, `checkpoint`, `verify --checkpoint --vkey [--since]` and `prove`: signed tree heads
//! catch what the hash chain alone cannot (a log rewritten by its own writer, a rollback, a
//! fork), and proofs verify with the audit crate's independent RFC 9162 verifiers.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use fundledger_audit::{
    check_consistent, open_checkpoint, Checkpoint, ConsistencyProof, InclusionProof, VerifierKey,
};
use fundledger_events::Record;

/// `keygen --name name --out dir/prefix`, returning the paths of the .key and .vkey files.
fn keygen(dir: &Path, name: &str, prefix: &str) -> (PathBuf, PathBuf) {
    let out = dir.join(prefix);
    let run = fundledger(dir, &["keygen", "--name", name, "--out", path_str(&out)]).ok();
    let key = dir.join(format!("{prefix}.key"));
    let vkey = dir.join(format!("{prefix}.vkey"));
    assert_eq!(
        String::from_utf8_lossy(&read(&vkey)),
        run.stdout,
        "keygen prints the verifier key it wrote"
    );
    (key, vkey)
}

/// `checkpoint --store url --key key` saved to `dir/name`.
fn checkpoint(dir: &Path, url: &str, key: &Path, name: &str) -> PathBuf {
    let run = fundledger(dir, &["checkpoint", "--store", url, "--key", path_str(key)]).ok();
    let path = dir.join(name);
    write(&path, run.stdout.as_bytes());
    path
}

fn opened(checkpoint: &Path, vkey: &Path) -> Checkpoint {
    let key = VerifierKey::parse(&String::from_utf8_lossy(&read(vkey)))
        .unwrap_or_else(|error| panic!("{error}"));
    open_checkpoint(&String::from_utf8_lossy(&read(checkpoint)), &key)
        .unwrap_or_else(|error| panic!("{error}"))
}

fn verify_against(
    dir: &Path,
    export: &Path,
    checkpoint: &Path,
    vkey: &str,
    since: Option<&Path>,
) -> Run {
    let mut args = vec![
        "verify",
        "--file",
        path_str(export),
        "--checkpoint",
        path_str(checkpoint),
        "--vkey",
        vkey,
    ];
    if let Some(since) = since {
        args.extend(["--since", path_str(since)]);
    }
    fundledger(dir, &args)
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite_it() {
    let dir = tempdir();
    let (key, vkey) = keygen(dir.path(), ORIGIN, "ledger");
    let mode = std::fs::metadata(&key)
        .unwrap_or_else(|error| panic!("{error}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = read(&key);
    assert!(secret.starts_with(format!("PRIVATE+KEY+{ORIGIN}+").as_bytes()));
    let vkey_text = String::from_utf8_lossy(&read(&vkey)).into_owned();
    assert!(vkey_text.starts_with(&format!("{ORIGIN}+")) && vkey_text.ends_with('\n'));
    assert!(VerifierKey::parse(vkey_text.trim_end()).is_ok());

    let out = dir.path().join("ledger");
    fundledger(
        dir.path(),
        &["keygen", "--name", ORIGIN, "--out", path_str(&out)],
    )
    .fails(2, "already exists; refusing to overwrite");
    assert_eq!(read(&key), secret, "the existing key is untouched");

    // A name a signed note cannot carry is refused before anything is written.
    let bad = dir.path().join("bad");
    fundledger(
        dir.path(),
        &["keygen", "--name", "two words", "--out", path_str(&bad)],
    )
    .fails(2, "key name");
    assert!(!dir.path().join("bad.key").exists());
}

#[test]
fn checkpoints_catch_rewrites_truncation_other_keys_and_rollbacks() {
    let dir = tempdir();
    let d = dir.path();
    let (url, _) = sqlite_ledger(d, "ledger.db", 300, note);
    let (key, vkey) = keygen(d, ORIGIN, "ledger");
    let vkey_string = String::from_utf8_lossy(&read(&vkey)).trim_end().to_string();
    let cp300 = checkpoint(d, &url, &key, "cp300.txt");
    let export300 = export_to(d, &url, "export300.jsonl");

    // The export matches its checkpoint, with the key given as a file or as the string.
    for key_arg in [path_str(&vkey), vkey_string.as_str()] {
        let run = verify_against(d, &export300, &cp300, key_arg, None).ok();
        assert!(
            run.stdout.contains("checkpoint: OK (size 300)"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(opened(&cp300, &vkey).size, 300);
    // The store verifies against it too.
    let run = fundledger(
        d,
        &[
            "verify",
            "--store",
            &url,
            "--checkpoint",
            path_str(&cp300),
            "--vkey",
            path_str(&vkey),
        ],
    )
    .ok();
    assert!(run.stdout.contains("checkpoint: OK (size 300)"));

    // A log rewritten from seq 250 on, re-hashed so its chain is consistent: the chain
    // verifies, the checkpoint taken before the rewrite does not.
    let mut lines = lines_of(&read(&export300));
    rewrite_from(&mut lines, 250, |body| {
        body["amount"] = serde_json::json!("1.00")
    });
    let forged = d.join("forged.jsonl");
    write(&forged, &join_lines(&lines));
    verify_against(d, &forged, &cp300, path_str(&vkey), None)
        .fails(1, "verify: FAILED: the checkpoint signs root")
        .fails(1, "not the records that were signed");

    // An export cut short (still a valid chain) is below the checkpoint's size.
    let lines = lines_of(&read(&export300));
    let short = d.join("short.jsonl");
    write(&short, &join_lines(&lines[..201]));
    verify_against(d, &short, &cp300, path_str(&vkey), None).fails(1, "the log holds only 200");

    // A checkpoint by another key with the same name is refused; so is an edited checkpoint.
    let (other_key, other_vkey) = keygen(d, ORIGIN, "other");
    let by_other = checkpoint(d, &url, &other_key, "by-other.txt");
    verify_against(d, &export300, &by_other, path_str(&vkey), None)
        .fails(1, "is not a checkpoint signed by");
    verify_against(d, &export300, &cp300, path_str(&other_vkey), None)
        .fails(1, "is not a checkpoint signed by");
    let edited = d.join("edited.txt");
    let text = String::from_utf8_lossy(&read(&cp300)).replacen("\n300\n", "\n299\n", 1);
    write(&edited, text.as_bytes());
    verify_against(d, &export300, &edited, path_str(&vkey), None).fails(1, "does not verify");

    // The log grows: the new checkpoint extends the old one.
    grow(&url, 400);
    let cp400 = checkpoint(d, &url, &key, "cp400.txt");
    let export400 = export_to(d, &url, "export400.jsonl");
    let run = verify_against(d, &export400, &cp400, path_str(&vkey), Some(&cp300)).ok();
    assert!(
        run.stdout
            .contains("since: OK (size 300 is extended by size 400)"),
        "{}",
        run.stdout
    );
    // An old checkpoint at the same size is extended trivially.
    verify_against(d, &export400, &cp400, path_str(&vkey), Some(&cp400)).ok();

    // Rollback: presented with the 300-record log after having seen 400.
    verify_against(d, &export300, &cp300, path_str(&vkey), Some(&cp400))
        .fails(1, "ROLLBACK: the log shrank from 400 to 300 records");

    // Fork: another log under the same name and key, different from seq 250 on, longer
    // than the old checkpoint and of the same size.
    for (name, size) in [("fork-longer.db", 350u64), ("fork-same.db", 300)] {
        let (fork_url, _) = sqlite_ledger(d, name, size, |seq| {
            if seq >= 250 {
                format!("改写的第{seq}条")
            } else {
                note(seq)
            }
        });
        let fork_cp = checkpoint(d, &fork_url, &key, &format!("{name}.cp"));
        let fork_export = export_to(d, &fork_url, &format!("{name}.jsonl"));
        verify_against(d, &fork_export, &fork_cp, path_str(&vkey), Some(&cp300)).fails(1, "FORK");
    }
}

#[test]
fn checkpoint_and_verify_refuse_bad_keys_clearly() {
    let dir = tempdir();
    let d = dir.path();
    let (url, _) = sqlite_ledger(d, "ledger.db", 20, note);
    let (key, vkey) = keygen(d, "another-name", "ledger");

    // A key named other than the origin still signs, with a warning.
    let run = fundledger(d, &["checkpoint", "--store", &url, "--key", path_str(&key)]).ok();
    assert!(
        run.stderr
            .contains("warning: the key is named \"another-name\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.starts_with(&format!("{ORIGIN}\n20\n")),
        "{}",
        run.stdout
    );

    // A corrupted key file: one character of the key material changed.
    let corrupted = d.join("corrupted.key");
    let text = String::from_utf8_lossy(&read(&key)).into_owned();
    let last = text.trim_end().len() - 3;
    let mut bytes = text.into_bytes();
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    write(&corrupted, &bytes);
    std::fs::set_permissions(&corrupted, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|error| panic!("{error}"));
    fundledger(
        d,
        &["checkpoint", "--store", &url, "--key", path_str(&corrupted)],
    )
    .fails(2, "is not a secret key file written by `fundledger keygen`");
    let garbage = d.join("garbage.key");
    write(&garbage, &[0xff, 0xfe, 0x00, b'\n']);
    fundledger(
        d,
        &["checkpoint", "--store", &url, "--key", path_str(&garbage)],
    )
    .fails(2, "is not a secret key file");
    fundledger(
        d,
        &[
            "checkpoint",
            "--store",
            &url,
            "--key",
            path_str(&d.join("missing.key")),
        ],
    )
    .fails(2, "cannot open the key file");
    // The verifier key where the secret one belongs, and the other way round.
    fundledger(
        d,
        &["checkpoint", "--store", &url, "--key", path_str(&vkey)],
    )
    .fails(2, "is not a secret key file");
    let export = export_to(d, &url, "export.jsonl");
    let cp = checkpoint(d, &url, &key, "cp.txt");
    verify_against(d, &export, &cp, path_str(&key), None).fails(2, "holds a secret key");
    verify_against(d, &export, &cp, "not-a-key", None)
        .fails(2, "neither a readable .vkey file nor a verifier key string");
    verify_against(d, &export, &d.join("missing.txt"), path_str(&vkey), None)
        .fails(2, "cannot open");
    // --checkpoint without --vkey is a usage error.
    fundledger(
        d,
        &[
            "verify",
            "--file",
            path_str(&export),
            "--checkpoint",
            path_str(&cp),
        ],
    )
    .fails(2, "--vkey");
}

#[test]
fn proofs_verify_independently_and_match_the_checkpoints() {
    let dir = tempdir();
    let d = dir.path();
    let (url, _) = sqlite_ledger(d, "ledger.db", 150, note);
    let (key, vkey) = keygen(d, ORIGIN, "ledger");
    let old = opened(&checkpoint(d, &url, &key, "cp150.txt"), &vkey);
    grow(&url, 233);
    let new = opened(&checkpoint(d, &url, &key, "cp233.txt"), &vkey);
    let export = lines_of(&read(&export_to(d, &url, "export.jsonl")));

    let parse = |json: &str| -> InclusionProof {
        serde_json::from_str(json).unwrap_or_else(|error| panic!("{error}: {json}"))
    };
    for (seq, size) in [
        (1u64, None),
        (150, None),
        (233, None),
        (77, Some(150u64)),
        (150, Some(150)),
    ] {
        let seq_text = seq.to_string();
        let mut args = vec!["prove", "inclusion", "--store", &url, "--seq", &seq_text];
        let size_text = size.map(|size| size.to_string());
        if let Some(size_text) = &size_text {
            args.extend(["--size", size_text]);
        }
        let proof = parse(&fundledger(d, &args).ok().stdout);
        proof
            .verify()
            .unwrap_or_else(|error| panic!("seq {seq}: {error}"));
        assert_eq!(proof.leaf_index, seq - 1);
        let record: Record = serde_json::from_slice(&export[usize::try_from(seq).unwrap_or(0)])
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(proof.record_hash, record.hash);
        let checkpoint = if size == Some(150) { &old } else { &new };
        assert_eq!(
            (proof.tree_size, proof.root),
            (checkpoint.size, checkpoint.root)
        );
    }

    let run = fundledger(
        d,
        &[
            "prove",
            "consistency",
            "--store",
            &url,
            "--old",
            "150",
            "--new",
            "233",
        ],
    )
    .ok();
    let proof: ConsistencyProof =
        serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}"));
    check_consistent(&old, &new, &proof).unwrap_or_else(|error| panic!("{error}"));
    let run = fundledger(
        d,
        &[
            "prove",
            "consistency",
            "--store",
            &url,
            "--old",
            "233",
            "--new",
            "233",
        ],
    )
    .ok();
    let same: ConsistencyProof =
        serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}"));
    assert!(same.path.is_empty());

    let cases: &[(&[&str], &str)] = &[
        (&["inclusion", "--seq", "0"], "--seq 0: seqs start at 1"),
        (
            &["inclusion", "--seq", "234"],
            "--seq 234 is beyond the log, which holds 233 records",
        ),
        (
            &["inclusion", "--seq", "5", "--size", "234"],
            "--size 234 is beyond the log",
        ),
        (
            &["inclusion", "--seq", "10", "--size", "5"],
            "--seq 10 is beyond --size 5",
        ),
        (&["inclusion", "--seq", "-3"], "unexpected argument"),
        (&["inclusion", "--seq", "x"], "invalid value"),
        (&["consistency", "--old", "0", "--new", "5"], "--old 0"),
        (
            &["consistency", "--old", "9", "--new", "5"],
            "--old 9 is greater than --new 5",
        ),
        (
            &["consistency", "--old", "5", "--new", "300"],
            "--new 300 is beyond the log",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["prove", args[0], "--store", &url];
        full.extend(&args[1..]);
        fundledger(d, &full).fails(2, needle);
    }
}
