//! A SQLite ledger edited behind fundledger's back (its append-only triggers dropped, as
//! anyone holding the file could): `verify --store` names the first bad seq, `checkpoint` and
//! `prove` refuse to sign or prove over it, and `export` still writes what is there, so the
//! auditor's `verify --file` finds the same seq.

mod common;

use common::*;

/// Runs `sql` on the ledger file with the append-only triggers removed.
fn tamper(path: &std::path::Path, sql: &str) {
    let connection = rusqlite::Connection::open(path).unwrap_or_else(|error| panic!("{error}"));
    connection
        .execute_batch(&format!(
            "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete; {sql}"
        ))
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn edits_inside_the_database_are_found_at_their_seq() {
    // (SQL, what every command says, what it says about the record)
    let cases: &[(&str, &str, &str)] = &[
        (
            "UPDATE records SET body = replace(body, '\"7000.50\"', '\"7001.50\"') WHERE seq = 7",
            "FAILED at seq 7",
            "hash mismatch",
        ),
        (
            "DELETE FROM records WHERE seq = 5",
            "FAILED at seq 5",
            "gap: records are missing",
        ),
        (
            "UPDATE records SET body = 'not json' WHERE seq = 3",
            "FAILED at seq 3",
            "the stored record cannot be read back",
        ),
        (
            "UPDATE records SET prev = (SELECT prev FROM records WHERE seq = 1) WHERE seq = 9",
            "FAILED at seq 9",
            "broken link",
        ),
    ];
    for (sql, at_seq, what) in cases {
        let dir = tempdir();
        let d = dir.path();
        let (url, _) = sqlite_ledger(d, "ledger.db", 12, note);
        fundledger(
            d,
            &["keygen", "--name", ORIGIN, "--out", path_str(&d.join("k"))],
        )
        .ok();
        tamper(&d.join("ledger.db"), sql);

        fundledger(d, &["verify", "--store", &url])
            .fails(1, &format!("verify: {at_seq}: "))
            .fails(1, what);
        fundledger(
            d,
            &[
                "checkpoint",
                "--store",
                &url,
                "--key",
                path_str(&d.join("k.key")),
            ],
        )
        .fails(1, &format!("checkpoint: {at_seq}: "))
        .fails(1, what);
        fundledger(
            d,
            &[
                "prove",
                "consistency",
                "--store",
                &url,
                "--old",
                "1",
                "--new",
                "12",
            ],
        )
        .fails(1, &format!("prove: {at_seq}: "))
        .fails(1, what);
        // Export writes what the store holds; a row that is not JSON cannot be written at all.
        let out = d.join("export.jsonl");
        let export = fundledger(d, &["export", "--store", &url, "--out", path_str(&out)]);
        if what.contains("cannot be read back") {
            export
                .fails(1, &format!("export: {at_seq}: "))
                .fails(1, what);
            assert!(!out.exists());
        } else {
            export.ok();
            fundledger(d, &["verify", "--file", path_str(&out)])
                .fails(1, &format!("verify: {at_seq}"))
                .fails(1, what);
        }
    }
}
