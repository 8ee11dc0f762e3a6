//! The JSON Lines export of DESIGN §5 and its streaming verifier.
//!
//! [`ChainVerifier`] checks one line at a time and keeps only the running head, so verifying an
//! export of any length takes constant memory. It needs nothing but §5: it never looks at an
//! event's type, so it verifies exports written by any implementation.

use serde::{Deserialize, Serialize};
use crate::chain::{check_body, genesis, BodyError, Hash, Head, Record};

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
        ExportHeader { fundledger_export: EXPORT_VERSION, origin: origin.to_string() }
    }

    /// The header as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::json!({"fundledger_export": self.fundledger_export, "origin": self.origin}).to_string()
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
    #[error("seq {seq}: broken link: prev is {found} but the previous record's hash is {expected}")]
    BrokenLink { seq: u64, expected: Hash, found: Hash },
    #[error("seq {seq}: hash mismatch: the record says {stated} but its prev and body hash to {computed}")]
    HashMismatch { seq: u64, stated: Hash, computed: Hash },
    #[error("seq {seq}: the body does not meet DESIGN §5: {source}")]
    BadBody { seq: u64, source: BodyError },
}

impl VerifyError {
    /// The first seq the error concerns, where there is one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyError::BadHeader(_) | VerifyError::UnsupportedVersion(_) | VerifyError::WrongOrigin { .. } => None,
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
        ChainVerifier { origin: origin.to_string(), head: Head::empty(origin) }
    }

    /// A verifier that resumes after `head` (records up to it were checked before).
    pub fn resume(origin: &str, head: Head) -> ChainVerifier {
        ChainVerifier { origin: origin.to_string(), head }
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
        let text = std::str::from_utf8(trim_line_end(line))
            .map_err(|_| VerifyError::NotUtf8 { seq, line: line_number })?;
        let record: Record = serde_json::from_str(text)
            .map_err(|error| VerifyError::InvalidLine { seq, line: line_number, reason: error.to_string() })?;
        self.check_record(&record)?;
        Ok(record)
    }

    /// Checks one record: its seq follows, its prev links, its body meets §5, its hash is right.
    pub fn check_record(&mut self, record: &Record) -> Result<(), VerifyError> {
        let seq = self.head.seq + 1;
        if record.seq != seq {
            return Err(VerifyError::SeqOutOfOrder { seq, line: seq + 1, found: record.seq });
        }
        if record.prev != self.head.hash {
            return Err(VerifyError::BrokenLink { seq, expected: self.head.hash, found: record.prev });
        }
        check_body(&record.body, seq).map_err(|source| VerifyError::BadBody { seq, source })?;
        let computed = record.computed_hash();
        if computed != record.hash {
            return Err(VerifyError::HashMismatch { seq, stated: record.hash, computed });
        }
        self.head = record.head();
        Ok(())
    }
}
