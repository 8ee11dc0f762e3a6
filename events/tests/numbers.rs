//! Numbers in bodies survive the round trip verification makes: a body is hashed over its
//! canonical bytes (JCS), written out, read back and canonicalised again, and the bytes must
//! be the same or an honest record fails `verify`. Found by the `command_json` fuzz target
//! (fuzz/): serde_json's default float parser is best-effort, and read "2.02e+27" (the JCS of
//! 2020000000000000000000000005) as 2.0200000000000002e+27; the crate now turns on
//! serde_json's `float_roundtrip`.

use fundledger_events::{jcs, record_line, seal_batch, ChainVerifier, Head};
use serde_json::{json, Value};

/// Numbers whose shortest decimal form a best-effort parser can misread, and a few ordinary
/// ones.
const NUMBERS: &[&str] = &[
    "2020000000000000000000000005",
    "2.02e+27",
    "2.0200000000000002e+27",
    "1.2345678901234567e-300",
    "9007199254740993",
    "18446744073709551616",
    "-0",
    "0.1",
    "5e-324",
    "1.7976931348623157e308",
    "123456789012345680000",
];

#[test]
fn canonical_numbers_read_back_to_the_same_canonical_bytes() {
    for text in NUMBERS {
        let value: Value = serde_json::from_str(text).expect("a JSON number");
        let canonical = jcs::canonicalize(&value);
        let reread: Value = serde_json::from_slice(&canonical).expect("JCS output is JSON");
        assert_eq!(
            String::from_utf8_lossy(&jcs::canonicalize(&reread)),
            String::from_utf8_lossy(&canonical),
            "{text}"
        );
        // And through serde_json's own writer, which is how an export line writes a body.
        let written: Value = serde_json::from_str(&value.to_string()).expect("JSON");
        assert_eq!(
            String::from_utf8_lossy(&jcs::canonicalize(&written)),
            String::from_utf8_lossy(&canonical),
            "{text} written by serde_json"
        );
    }
}

#[test]
fn a_body_holding_any_of_these_numbers_verifies_from_its_export_line() {
    const ORIGIN: &str = "fundledger.example/numbers";
    let bodies = NUMBERS
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let number: Value = serde_json::from_str(text).expect("a JSON number");
            json!({
                "seq": index + 1,
                "type": "test_event",
                "recorded_at": "2024-06-01T09:00:00+08:00",
                "command_id": format!("00000000-0000-4000-8000-{:012}", index + 1),
                "actor": {"id": "t", "role": "admin"},
                "number": number,
            })
        })
        .collect();
    let records = seal_batch(&Head::empty(ORIGIN), bodies).expect("bodies meet §5");
    let mut verifier = ChainVerifier::new(ORIGIN);
    for (record, text) in records.iter().zip(NUMBERS) {
        let line = record_line(record);
        verifier
            .check_line(line.as_bytes())
            .unwrap_or_else(|error| panic!("{text}: {error}\n{line}"));
    }
}
