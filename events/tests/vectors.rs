//! The committed test vectors of DESIGN §5: an export of a few records (Chinese text, escapes,
//! nested objects, numbers) and, beside it, the canonical bytes and hashes any other
//! implementation must reproduce. Set `FUNDLEDGER_WRITE_VECTORS=1` to rewrite them after a
//! deliberate change of the contract (which should never happen to v1).

use std::path::PathBuf;

use fundledger_events::{
    genesis, jcs, parse_header, precheck_line, record_line, seal_batch, ChainVerifier,
    ExportHeader, Head,
};
use serde_json::{json, Value};

const ORIGIN: &str = "fundledger.example/test-vectors";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
}

fn bodies() -> Vec<Value> {
    let actor = json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"});
    vec![
        json!({"seq": 1, "type": "policy_registered", "recorded_at": "2024-05-22T09:00:00+08:00",
               "command_id": "00000000-0000-4000-8000-000000000001",
               "actor": {"id": "fundledger", "role": "admin"},
               "version": "v1", "catalogue": "# 郑政文〔2024〕62号\n[options]\n"}),
        json!({"seq": 2, "type": "budget_allocated", "recorded_at": "2024-06-01T10:30:00.123+08:00",
               "command_id": "00000000-0000-4000-8000-000000000002", "actor": actor,
               "measure": "M2", "fiscal_year": 2024, "amount": "30000000.00"}),
        json!({"seq": 3, "type": "application_submitted", "recorded_at": "2024-06-02T01:02:03Z",
               "command_id": "00000000-0000-4000-8000-000000000003",
               "actor": {"id": "app.li", "role": "applicant", "firm": "91410100MA9XXXXX0Y"},
               "application_id": "A-2024-0001",
               "firm": {"uscc": "91410100MA9XXXXX0Y", "name": "郑州\"智算\"科技有限公司"},
               "provision": "M2.compute_voucher", "measure": "M2", "fiscal_year": 2024,
               "amount": "200000.00",
               "basis": {"contract_amount": "1000000.00", "contract_id": "HT\\2024/001\t€😀",
                         "self_built": false, "provincial_voucher": true},
               "submitted_on": "2024-06-02", "policy_seq": 1}),
        json!({"seq": 4, "type": "application_reviewed", "recorded_at": "2024-06-03T09:00:00+08:00",
               "command_id": "00000000-0000-4000-8000-000000000004",
               "actor": {"id": "rev.zhao", "role": "reviewer", "unit": "市工信局"},
               "application_id": "A-2024-0001", "recommend": true,
               "note": "line one\nline two\u{0001}\u{001f} — ok", "z": [1, 2.5, -0.0, 1e21, {"b": null, "a": []}],
               "\u{20ac}": 1, "\r": 2, "\u{fb33}": 3, "\u{1f600}": 4}),
    ]
}

#[test]
fn committed_vectors_match() {
    let records = match seal_batch(&Head::empty(ORIGIN), bodies()) {
        Ok(records) => records,
        Err(error) => panic!("vector bodies must meet §5: {error}"),
    };
    let mut export = ExportHeader::new(ORIGIN).to_line();
    export.push('\n');
    let mut expected = vec![];
    for record in &records {
        export.push_str(&record_line(record));
        export.push('\n');
        expected.push(json!({
            "seq": record.seq,
            "prev": record.prev,
            "jcs": String::from_utf8(jcs::canonicalize(&record.body)).unwrap_or_default(),
            "hash": record.hash,
        }));
    }
    let expected = serde_json::to_string_pretty(&json!({
        "origin": ORIGIN,
        "genesis": genesis(ORIGIN),
        "records": expected,
    }))
    .unwrap_or_default()
        + "\n";

    let export_path = vectors_dir().join("chain-v1.jsonl");
    let expected_path = vectors_dir().join("chain-v1.expected.json");
    if std::env::var_os("FUNDLEDGER_WRITE_VECTORS").is_some() {
        std::fs::write(&export_path, &export).expect("write export vector");
        std::fs::write(&expected_path, &expected).expect("write expected vector");
    }
    let committed_export =
        std::fs::read_to_string(&export_path).expect("chain-v1.jsonl is committed");
    let committed_expected =
        std::fs::read_to_string(&expected_path).expect("chain-v1.expected.json is committed");
    assert_eq!(
        committed_export, export,
        "the export vector changed: the hashing contract moved"
    );
    assert_eq!(
        committed_expected, expected,
        "the expected hashes changed: the hashing contract moved"
    );

    // And the committed export verifies on its own, line by line.
    let mut lines = committed_export.lines();
    let header = parse_header(lines.next().unwrap_or_default().as_bytes()).expect("header");
    let mut verifier = ChainVerifier::new(&header.origin);
    for line in lines {
        verifier
            .check_line(line.as_bytes())
            .expect("committed export verifies");
    }
    assert_eq!(verifier.head(), records[3].head());

    // And prechecked then linked, as `fundledger verify` does on several threads. Records 1-3
    // are canonical text as exported; record 4 holds doubles and names JCS orders by UTF-16,
    // which serde_json writes otherwise, so it is canonicalised the long way.
    let mut lines = committed_export.lines();
    lines.next();
    let mut verifier = ChainVerifier::new(&header.origin);
    for (line, record) in lines.zip(&records) {
        let digest = precheck_line(line.as_bytes());
        assert_eq!(digest.map(|digest| digest.hash), Some(record.hash));
        let canonical = String::from_utf8(jcs::canonicalize(&record.body)).unwrap_or_default();
        assert_eq!(
            jcs::is_canonical(&canonical),
            record.seq != 4,
            "seq {}: {canonical}",
            record.seq
        );
        let hash = verifier
            .check_line_with(line.as_bytes(), digest.as_ref())
            .expect("committed export verifies");
        assert_eq!(hash, record.hash);
    }
    assert_eq!(verifier.head(), records[3].head());
}
