//! `export`, `verify`, `checkpoint` and `prove` against a real PostgreSQL ledger, in a scratch
//! database made by the store crate's testing helper.
//!
//! These tests FAIL, never skip, when PostgreSQL cannot be reached: start it with
//! `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or point
//! `FUNDLEDGER_TEST_PG` at the admin URL of a server where this user may create databases.

mod common;

use common::*;
use fundledger_audit::InclusionProof;
use fundledger_store::testing;

#[test]
fn a_postgres_ledger_exports_verifies_checkpoints_and_proves() {
    let runtime = runtime();
    let db = runtime
        .block_on(testing::scratch_postgres())
        .unwrap_or_else(|error| {
            panic!("PostgreSQL is needed for this test and cannot be used: {error}")
        });
    let url = db.url().to_string();
    // More than one page of the CLI's reader (5,000 records) would make this slow for no
    // gain; paging is exercised by the SQLite tests' sizes too. A few hundred records.
    let head = runtime.block_on(async {
        let store = fundledger_store::open(&url, ORIGIN)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        append_records(&*store, 320, note).await
    });

    let dir = tempdir();
    let d = dir.path();
    let export = export_to(d, &url, "export.jsonl");
    let from_file = fundledger(d, &["verify", "--file", path_str(&export)]).ok();
    let from_store = fundledger(d, &["verify", "--store", &url]).ok();
    assert_eq!(from_file.field("records").as_deref(), Some("320"));
    assert_eq!(from_file.field("head hash"), Some(head.hash.to_hex()));
    for key in ["origin", "records", "head hash", "merkle root"] {
        assert_eq!(from_store.field(key), from_file.field(key), "{key}");
    }
    assert!(
        from_store
            .field("source")
            .is_some_and(|source| source.starts_with("store postgres://")),
        "{}",
        from_store.stdout
    );

    let out = d.join("ledger");
    fundledger(d, &["keygen", "--name", ORIGIN, "--out", path_str(&out)]).ok();
    let key = d.join("ledger.key");
    let vkey = d.join("ledger.vkey");
    let note_text = fundledger(d, &["checkpoint", "--store", &url, "--key", path_str(&key)])
        .ok()
        .stdout;
    let checkpoint = d.join("cp.txt");
    write(&checkpoint, note_text.as_bytes());
    fundledger(
        d,
        &[
            "verify",
            "--store",
            &url,
            "--checkpoint",
            path_str(&checkpoint),
            "--vkey",
            path_str(&vkey),
        ],
    )
    .ok();

    let proof = fundledger(d, &["prove", "inclusion", "--store", &url, "--seq", "200"])
        .ok()
        .stdout;
    let proof: InclusionProof =
        serde_json::from_str(&proof).unwrap_or_else(|error| panic!("{error}"));
    proof.verify().unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        proof.root.to_hex(),
        from_file.field("merkle root").unwrap_or_default()
    );

    // A database that holds no ledger is not made into one by export or verify.
    let empty = runtime
        .block_on(testing::scratch_postgres())
        .unwrap_or_else(|error| panic!("{error}"));
    fundledger(d, &["export", "--store", empty.url()]).fails(2, "holds no fundledger ledger");
    fundledger(d, &["verify", "--store", empty.url()]).fails(2, "holds no fundledger ledger");

    runtime.block_on(async {
        empty
            .cleanup()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        db.cleanup().await.unwrap_or_else(|error| panic!("{error}"));
    });
}
