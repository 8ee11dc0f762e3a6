//! The JSON Lines export of DESIGN §5 and its streaming verifier.
//!
//! [`ChainVerifier`] checks one line at a time and keeps only the running head, so verifying an
//! export of any length takes constant memory. It needs nothing but §5: it never looks at an
//! event's type, so it verifies exports written by any implementation.

use crate::chain::{check_body, genesis, BodyError, Hash, Head, Record};
use serde::{Deserialize, Serialize};

/// Version number in the export's first line.
pub const EXPORT_VERSION: u64 = 1;

/// The first line of an export: `{"fundledger_export":1,"origin":"<origin>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    pub fundledger_export: u64,
    pub origin: String,
}

impl ExportHeader {
    pub fn new(origin: &str) -> ExportHeader {
        ExportHeader {
            fundledger_export: EXPORT_VERSION,
            origin: origin.to_string(),
        }
    }

    /// The header as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::json!({"fundledger_export": self.fundledger_export, "origin": self.origin})
            .to_string()
    }
}

/// One record as one export line, without the newline.
pub fn record_line(record: &Record) -> String {
    // Field order follows the contract's example; serde_json keeps struct order.
    serde_json::to_string(record).unwrap_or_default()
}

/// What is wrong with an export, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("line 1: the export header is missing or invalid ({0}); expected {{\"fundledger_export\":1,\"origin\":\"…\"}}")]
    BadHeader(String),
    #[error("line 1: export format version {0} is not supported (this verifier reads version 1)")]
    UnsupportedVersion(u64),
    #[error("wrong origin: the export names {found:?} but {expected:?} was expected")]
    WrongOrigin { expected: String, found: String },
    #[error("seq {seq} (line {line}): the line is not valid UTF-8")]
    NotUtf8 { seq: u64, line: u64 },
    #[error("seq {seq} (line {line}): torn or invalid line: {reason}")]
    InvalidLine { seq: u64, line: u64, reason: String },
    #[error("seq {seq} (line {line}): expected seq {seq} but the line holds seq {found} ({})", if *found < *seq { "duplicate or out of order" } else { "gap: records are missing" })]
    SeqOutOfOrder { seq: u64, line: u64, found: u64 },
    #[error("seq 1: prev is {found}, not the genesis of origin {origin:?} ({expected}): wrong origin, or the export does not start at the ledger's first record")]
    WrongGenesis {
        origin: String,
        expected: Hash,
        found: Hash,
    },
    #[error(
        "seq {seq}: broken link: prev is {found} but the previous record's hash is {expected}"
    )]
    BrokenLink {
        seq: u64,
        expected: Hash,
        found: Hash,
    },
    #[error("seq {seq}: hash mismatch: the record says {stated} but its prev and body hash to {computed}")]
    HashMismatch {
        seq: u64,
        stated: Hash,
        computed: Hash,
    },
    #[error("seq {seq}: the body does not meet DESIGN §5: {source}")]
    BadBody { seq: u64, source: BodyError },
}

impl VerifyError {
    /// The first seq the error concerns, where there is one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyError::BadHeader(_)
            | VerifyError::UnsupportedVersion(_)
            | VerifyError::WrongOrigin { .. } => None,
            VerifyError::WrongGenesis { .. } => Some(1),
            VerifyError::NotUtf8 { seq, .. }
            | VerifyError::InvalidLine { seq, .. }
            | VerifyError::SeqOutOfOrder { seq, .. }
            | VerifyError::BrokenLink { seq, .. }
            | VerifyError::HashMismatch { seq, .. }
            | VerifyError::BadBody { seq, .. } => Some(*seq),
        }
    }
}

/// Reads the header line of an export.
pub fn parse_header(line: &[u8]) -> Result<ExportHeader, VerifyError> {
    let header: ExportHeader = serde_json::from_slice(trim_line_end(line))
        .map_err(|error| VerifyError::BadHeader(error.to_string()))?;
    if header.fundledger_export != EXPORT_VERSION {
        return Err(VerifyError::UnsupportedVersion(header.fundledger_export));
    }
    Ok(header)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Checks records in seq order against the chain rules, holding only the running head.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    origin: String,
    head: Head,
}

impl ChainVerifier {
    /// A verifier for a ledger named `origin`, expecting seq 1 next.
    pub fn new(origin: &str) -> ChainVerifier {
        ChainVerifier {
            origin: origin.to_string(),
            head: Head::empty(origin),
        }
    }

    /// A verifier that resumes after `head` (records up to it were checked before).
    pub fn resume(origin: &str, head: Head) -> ChainVerifier {
        ChainVerifier {
            origin: origin.to_string(),
            head,
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The head of everything checked so far.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The genesis value of this ledger.
    pub fn genesis(&self) -> Hash {
        genesis(&self.origin)
    }

    /// Checks one export line (with or without its newline).
    pub fn check_line(&mut self, line: &[u8]) -> Result<Record, VerifyError> {
        let seq = self.head.seq + 1;
        let line_number = seq + 1;
        let text = std::str::from_utf8(trim_line_end(line)).map_err(|_| VerifyError::NotUtf8 {
            seq,
            line: line_number,
        })?;
        let record: Record =
            serde_json::from_str(text).map_err(|error| VerifyError::InvalidLine {
                seq,
                line: line_number,
                reason: error.to_string(),
            })?;
        self.check_record(&record)?;
        Ok(record)
    }

    /// Checks one record: its seq follows, its prev links, its body meets §5, its hash is right.
    pub fn check_record(&mut self, record: &Record) -> Result<(), VerifyError> {
        let seq = self.head.seq + 1;
        if record.seq != seq {
            return Err(VerifyError::SeqOutOfOrder {
                seq,
                line: seq + 1,
                found: record.seq,
            });
        }
        if record.prev != self.head.hash && seq == 1 {
            let origin = self.origin.clone();
            return Err(VerifyError::WrongGenesis {
                origin,
                expected: self.head.hash,
                found: record.prev,
            });
        }
        if record.prev != self.head.hash {
            return Err(VerifyError::BrokenLink {
                seq,
                expected: self.head.hash,
                found: record.prev,
            });
        }
        check_body(&record.body, seq).map_err(|source| VerifyError::BadBody { seq, source })?;
        let computed = record.computed_hash();
        if computed != record.hash {
            return Err(VerifyError::HashMismatch {
                seq,
                stated: record.hash,
                computed,
            });
        }
        self.head = record.head();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal_batch;
    use serde_json::json;

    const ORIGIN: &str = "fundledger.example/unit";

    fn export_lines(count: u64) -> Vec<String> {
        let bodies = (1..=count)
            .map(|seq| {
                json!({"seq": seq, "type": "test", "recorded_at": "2024-06-01T09:00:00+08:00",
                       "command_id": format!("c{seq}"), "actor": {"id": "t", "role": "admin"},
                       "note": format!("第{seq}条")})
            })
            .collect();
        let records = seal_batch(&Head::empty(ORIGIN), bodies).expect("bodies meet §5");
        let mut lines = vec![ExportHeader::new(ORIGIN).to_line()];
        lines.extend(records.iter().map(record_line));
        lines
    }

    /// Runs the verifier over `lines` and returns the first error's seq and text.
    fn verify(lines: &[String]) -> Result<Head, (Option<u64>, String)> {
        let fail = |error: VerifyError| (error.seq(), error.to_string());
        let header = parse_header(lines[0].as_bytes()).map_err(fail)?;
        let mut verifier = ChainVerifier::new(&header.origin);
        for line in &lines[1..] {
            verifier.check_line(line.as_bytes()).map_err(fail)?;
        }
        Ok(verifier.head())
    }

    fn check(tamper: impl Fn(&mut Vec<String>), expect_seq: Option<u64>, expect_text: &str) {
        let mut lines = export_lines(5);
        tamper(&mut lines);
        match verify(&lines) {
            Ok(head) => panic!("tampering went unnoticed; head {head:?}"),
            Err((seq, text)) => {
                assert_eq!(seq, expect_seq, "{text}");
                assert!(
                    text.contains(expect_text),
                    "{text:?} should mention {expect_text:?}"
                );
            }
        }
    }

    #[test]
    fn an_untouched_export_verifies() {
        let head = verify(&export_lines(5)).expect("verifies");
        assert_eq!(head.seq, 5);
    }

    #[test]
    fn every_tampering_names_the_first_bad_seq() {
        check(
            |lines| lines[3] = lines[3].replace("第3条", "第9条"),
            Some(3),
            "hash mismatch",
        );
        check(
            |lines| {
                lines.remove(3);
            },
            Some(3),
            "gap",
        );
        check(
            |lines| {
                let line = lines[2].clone();
                lines.insert(3, line);
            },
            Some(3),
            "duplicate",
        );
        check(|lines| lines.swap(2, 3), Some(2), "gap");
        check(
            |lines| lines[4] = lines[4][..lines[4].len() / 2].to_string(),
            Some(4),
            "torn or invalid",
        );
        check(
            |lines| lines[0] = lines[0].replace("unit", "other"),
            Some(1),
            "wrong origin",
        );
        check(|lines| lines[0] = "{}".to_string(), None, "header");
        check(
            |lines| {
                lines[1] = lines[1].replace("\"recorded_at\":\"2024-06-01T09:00:00+08:00\",", "")
            },
            Some(1),
            "recorded_at",
        );
        check(
            |lines| {
                // Rewrites record 2 and its own hash consistently: the link from record 3 breaks.
                let mut record: Record = serde_json::from_str(&lines[2]).expect("record line");
                record.body["note"] = json!("forged");
                record.hash = record.computed_hash();
                lines[2] = record_line(&record);
            },
            Some(3),
            "broken link",
        );
    }

    #[test]
    fn a_non_utf8_line_is_reported() {
        let lines = export_lines(2);
        let header = parse_header(lines[0].as_bytes()).expect("header");
        let mut verifier = ChainVerifier::new(&header.origin);
        let mut bytes = lines[1].clone().into_bytes();
        bytes.insert(10, 0xff);
        let error = verifier.check_line(&bytes).expect_err("not UTF-8");
        assert_eq!(error.seq(), Some(1));
        assert!(error.to_string().contains("UTF-8"));
    }
}
