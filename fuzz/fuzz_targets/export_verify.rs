//! The export verifier that `fundledger verify --file` runs (events' `parse_header` and
//! `ChainVerifier::check_line`, line by line as `read_until(b'\n')` cuts them, the Merkle tree
//! over the record hashes), on any bytes.
//!
//! Two halves per input:
//!
//! 1. **The input as an export.** Never panics. A failure at seq k names the *first* bad seq:
//!    the export cut before that line verifies, to seq k − 1. A success verifies one record
//!    per line, and the records written back in our own export form verify to the same head.
//! 2. **The input as record bodies.** Each line that is JSON becomes a body (the fields
//!    DESIGN §5 requires are filled in when missing), the bodies are sealed into a chain and
//!    exported. That honest export must verify (completeness: any JSON a body may hold, odd
//!    numbers, escapes and Unicode included, survives export and re-canonicalisation). Then
//!    one byte is substituted, deleted or inserted at a position chosen from the input; if
//!    the result still verifies it must denote the same records under §5 — the same seq,
//!    prev and hash and the same canonical (JCS) body for each (soundness: an edit that
//!    verify accepts changed nothing that is hashed).
#![no_main]

use fundledger_audit::{root_naive, MerkleTree};
use fundledger_events::{
    jcs, parse_header, record_line, seal_batch, ChainVerifier, ExportHeader, Hash, Head, Record,
    VerifyError,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// The origin of the sealed half; with a '/', which JSON may escape as "\/".
const ORIGIN: &str = "fuzz.example/zhengzhou-2024-62";
/// Bodies sealed per input, to bound the work of one execution.
const BODIES_MAX: usize = 32;

fuzz_target!(|data: &[u8]| {
    check_as_export(data);
    check_sealed_bodies(data);
});

/// What verifying an export gave: the header's origin and the records, or the first error.
struct Verified {
    origin: String,
    head: Head,
    records: Vec<Record>,
}

/// The lines of `bytes` as `BufRead::read_until(b'\n')` returns them (newline kept; a last
/// line without one is a line too; nothing after a final newline is a line).
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// `verify --file`'s loop. `None` for an empty file (exit 2 there, "is empty").
fn verify(bytes: &[u8]) -> Option<Result<Verified, VerifyError>> {
    let lines = lines(bytes);
    let (header, records) = lines.split_first()?;
    Some((|| {
        let header = parse_header(header)?;
        let mut verifier = ChainVerifier::new(&header.origin);
        let mut tree = MerkleTree::new();
        let mut checked = Vec::with_capacity(records.len());
        for line in records {
            let record = verifier.check_line(line)?;
            tree.push(record.hash);
            checked.push(record);
        }
        let hashes: Vec<Hash> = checked.iter().map(|record| record.hash).collect();
        assert_eq!(
            tree.root(),
            root_naive(&hashes),
            "the Merkle roots disagree"
        );
        Ok(Verified {
            origin: header.origin,
            head: verifier.head(),
            records: checked,
        })
    })())
}

fn check_as_export(data: &[u8]) {
    let Some(outcome) = verify(data) else {
        return;
    };
    let all_lines = lines(data);
    match outcome {
        Ok(verified) => {
            assert_eq!(verified.head.seq as usize, all_lines.len() - 1);
            let rewritten = export_bytes(&verified.origin, &verified.records);
            let again = verify(&rewritten)
                .expect("not empty")
                .unwrap_or_else(|error| panic!("our own export form does not verify: {error}"));
            assert_eq!(again.head, verified.head);
            assert_eq!(again.records, verified.records);
        }
        Err(error) => {
            // The first bad seq: everything before its line verifies.
            if let Some(seq) = error.seq() {
                assert!(
                    seq >= 1 && (seq as usize) < all_lines.len(),
                    "seq {seq}: {error}"
                );
                let prefix: Vec<u8> = all_lines[..seq as usize].concat();
                let before = verify(&prefix).expect("the header line is there");
                match before {
                    Ok(verified) => assert_eq!(verified.head.seq, seq - 1, "{error}"),
                    // Seq 1 is named for a header whose origin does not fit the first record.
                    Err(earlier) => panic!("{error} is named, but {earlier} comes first"),
                }
            }
        }
    }
}

fn export_bytes(origin: &str, records: &[Record]) -> Vec<u8> {
    let mut out = ExportHeader::new(origin).to_line().into_bytes();
    out.push(b'\n');
    for record in records {
        out.extend_from_slice(record_line(record).as_bytes());
        out.push(b'\n');
    }
    out
}

/// A body from one line of input: any JSON value, made into an object meeting DESIGN §5.
fn body_from(line: &[u8], seq: u64) -> Option<Value> {
    let value: Value = serde_json::from_slice(line).ok()?;
    let mut object = match value {
        Value::Object(object) => object,
        other => {
            let mut object = serde_json::Map::new();
            object.insert("value".into(), other);
            object
        }
    };
    object.insert("seq".into(), json!(seq));
    if !object.get("type").is_some_and(Value::is_string) {
        object.insert("type".into(), json!("fuzz_event"));
    }
    let timestamp_ok = object
        .get("recorded_at")
        .and_then(Value::as_str)
        .is_some_and(|text| chrono::DateTime::parse_from_rfc3339(text).is_ok());
    if !timestamp_ok {
        object.insert("recorded_at".into(), json!("2024-06-01T09:00:00+08:00"));
    }
    object
        .entry("command_id")
        .or_insert_with(|| json!("00000000-0000-4000-8000-000000000001"));
    object
        .entry("actor")
        .or_insert_with(|| json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"}));
    Some(Value::Object(object))
}

fn check_sealed_bodies(data: &[u8]) {
    let mut bodies = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if bodies.len() == BODIES_MAX {
            break;
        }
        if let Some(body) = body_from(line, bodies.len() as u64 + 1) {
            bodies.push(body);
        }
    }
    if bodies.is_empty() {
        return;
    }
    let records = seal_batch(&Head::empty(ORIGIN), bodies).expect("filled bodies meet §5");
    let export = export_bytes(ORIGIN, &records);
    let honest = verify(&export).expect("not empty").unwrap_or_else(|error| {
        panic!(
            "an honestly sealed export does not verify: {error}\n{}",
            String::from_utf8_lossy(&export)
        )
    });
    assert_eq!(honest.head, records.last().expect("not empty").head());

    // One edit, placed by the input's own hash so that every input edits somewhere else.
    let digest = blake3::hash(data);
    let pick = digest.as_bytes();
    let position = u64::from_le_bytes(pick[..8].try_into().expect("8 bytes")) as usize;
    let byte = pick[8];
    let canonical: Vec<Vec<u8>> = records
        .iter()
        .map(|record| jcs::canonicalize(&record.body))
        .collect();
    for edit in 0..3 {
        let mut mutated = export.clone();
        let at = position % (mutated.len() + usize::from(edit == 2));
        match edit {
            0 if mutated[at] != byte => mutated[at] = byte,
            0 => mutated[at] = byte.wrapping_add(1),
            1 => {
                mutated.remove(at);
            }
            _ => mutated.insert(at, byte),
        }
        let Some(Ok(accepted)) = verify(&mutated) else {
            continue;
        };
        // Accepted: the same records under §5.
        let shown = || String::from_utf8_lossy(&mutated).into_owned();
        assert_eq!(accepted.origin, ORIGIN, "{}", shown());
        assert_eq!(accepted.records.len(), records.len(), "{}", shown());
        for ((got, want), want_canonical) in accepted.records.iter().zip(&records).zip(&canonical) {
            assert_eq!(
                (got.seq, got.prev, got.hash),
                (want.seq, want.prev, want.hash),
                "{}",
                shown()
            );
            assert!(
                jcs::canonicalize(&got.body) == *want_canonical,
                "an accepted edit changed a body:\n{}",
                shown()
            );
        }
    }
}
