//! The JSON Lines export of DESIGN §5 and its streaming verifier.
//!
//! [`ChainVerifier`] checks one line at a time and keeps only the running head, so verifying an
//! export of any length takes constant memory. It needs nothing but §5: it never looks at an
//! event's type, so it verifies exports written by any implementation.
//!
//! Verifying fast: [`precheck_line`] does everything about one line that does not depend on
//! the lines before it (the record's form, the body's §5 fields, `hash = H(prev ‖ JCS(body))`)
//! without building a `serde_json::Value`: when the body text is already canonical, which it
//! is in every export fundledger writes, its own bytes are the bytes to hash. Lines are
//! independent, so callers may precheck them on several threads; [`ChainVerifier::check_line_with`]
//! then links them in order (seq, prev) and hands any line the precheck refused to the full
//! [`ChainVerifier::check_line`], so verdicts and error messages are exactly the full check's.

use crate::chain::{check_body, genesis, record_hash, BodyError, Hash, Head, Record};
use crate::jcs;
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

/// What [`precheck_line`] found in a line that passed it: the record's seq, its prev and its
/// hash, the hash already checked against `prev ‖ JCS(body)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineDigest {
    pub seq: u64,
    pub prev: Hash,
    pub hash: Hash,
}

/// Checks one export line on its own, without the lines around it: everything
/// [`ChainVerifier::check_line`] checks except that the seq follows and prev is the previous
/// hash. That is: the line is the record object of §5, its body meets §5 with the record's
/// seq, and its hash is `H(prev ‖ JCS(body))`.
///
/// The line is first read as [`record_line`] writes it (`{"seq":…,"prev":"…","hash":"…",
/// "body":{…}}`, no whitespace) with a body that is canonical text (see
/// [`jcs::is_canonical`]): then the body's own bytes are hashed, with no `serde_json::Value`
/// built. Any other line is parsed and canonicalised as `check_line` does.
///
/// `None` means the line fails on its own, and says nothing about why: whoever gets it runs
/// [`ChainVerifier::check_line`] on the line, which names the error.
/// [`ChainVerifier::check_line_with`] does exactly that.
pub fn precheck_line(line: &[u8]) -> Option<LineDigest> {
    let text = std::str::from_utf8(trim_line_end(line)).ok()?;
    plain_line_digest(text).or_else(|| parsed_line_digest(text))
}

/// [`precheck_line`] for a line in the form [`record_line`] writes with a canonical body.
fn plain_line_digest(text: &str) -> Option<LineDigest> {
    let rest = text.strip_prefix("{\"seq\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (seq_text, rest) = rest.split_at(digits);
    let seq = plain_u64(seq_text)?;
    let rest = rest.strip_prefix(",\"prev\":\"")?;
    let prev = lowercase_hash(rest.get(..64)?)?;
    let rest = rest.get(64..)?.strip_prefix("\",\"hash\":\"")?;
    let hash = lowercase_hash(rest.get(..64)?)?;
    let body = rest
        .get(64..)?
        .strip_prefix("\",\"body\":")?
        .strip_suffix('}')?;
    check_canonical_body(body, seq)?;
    (record_hash(&prev, body.as_bytes()) == hash).then_some(LineDigest { seq, prev, hash })
}

/// [`precheck_line`] for any other line: parsed and canonicalised, as `check_line` does.
fn parsed_line_digest(text: &str) -> Option<LineDigest> {
    let record: Record = serde_json::from_str(text).ok()?;
    check_body(&record.body, record.seq).ok()?;
    (record.computed_hash() == record.hash).then_some(LineDigest {
        seq: record.seq,
        prev: record.prev,
        hash: record.hash,
    })
}

/// `Some` when `body` is one canonical object that meets §5 (as [`check_body`] decides) with
/// `seq`; `None` when it is not, or when the plain check cannot tell.
fn check_canonical_body(body: &str, seq: u64) -> Option<()> {
    let mut body_seq = None;
    let mut type_is_string = false;
    let mut recorded_at = None;
    let mut has_command_id = false;
    let mut has_actor = false;
    jcs::canonical_object_members(body, |member| match member.name {
        b"seq" => body_seq = Some(member.value),
        b"type" => type_is_string = member.value.first() == Some(&b'"'),
        b"recorded_at" => recorded_at = Some(member.value),
        b"command_id" => has_command_id = true,
        b"actor" => has_actor = true,
        _ => {}
    })?;
    let body_seq = body_seq.and_then(|text| std::str::from_utf8(text).ok());
    if body_seq.and_then(plain_u64) != Some(seq) || !type_is_string {
        return None;
    }
    // A canonical string without escapes: its text is between the quotes.
    let recorded_at = recorded_at?.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if recorded_at.contains(&b'\\') {
        return None;
    }
    let recorded_at = std::str::from_utf8(recorded_at).ok()?;
    chrono::DateTime::parse_from_rfc3339(recorded_at).ok()?;
    (has_command_id && has_actor).then_some(())
}

/// A u64 written as serde_json reads one: digits, no leading zero.
fn plain_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.parse().ok()
}

/// 64 lowercase hex digits, as [`Hash`]'s parser takes them.
fn lowercase_hash(text: &str) -> Option<Hash> {
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = (lowercase_hex_digit(pair[0])? << 4) | lowercase_hex_digit(pair[1])?;
    }
    (text.len() == 64).then_some(Hash(bytes))
}

fn lowercase_hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
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

    /// Checks one export line given `digest`, what [`precheck_line`] returned for this very
    /// line: with a digest only the link remains (the seq follows, prev is the head). A line
    /// without a digest, or whose link fails, goes to [`ChainVerifier::check_line`], so the
    /// verdict, and the error, is always the full check's. Returns the line's record hash.
    pub fn check_line_with(
        &mut self,
        line: &[u8],
        digest: Option<&LineDigest>,
    ) -> Result<Hash, VerifyError> {
        if let Some(digest) = digest {
            if digest.seq == self.head.seq + 1 && digest.prev == self.head.hash {
                self.head = Head {
                    seq: digest.seq,
                    hash: digest.hash,
                };
                return Ok(digest.hash);
            }
        }
        self.check_line(line).map(|record| record.hash)
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

    /// Runs the verifier over `lines` and returns the first error's seq and text: line by
    /// line with `check_line`, and with every line prechecked first then linked by
    /// `check_line_with`, as `fundledger verify` does; the two must agree exactly.
    fn verify(lines: &[String]) -> Result<Head, (Option<u64>, String)> {
        let fail = |error: VerifyError| (error.seq(), error.to_string());
        let header = parse_header(lines[0].as_bytes()).map_err(fail)?;
        let line_by_line = (|| {
            let mut verifier = ChainVerifier::new(&header.origin);
            for line in &lines[1..] {
                verifier.check_line(line.as_bytes()).map_err(fail)?;
            }
            Ok(verifier.head())
        })();
        let digests: Vec<Option<LineDigest>> = lines[1..]
            .iter()
            .map(|line| precheck_line(line.as_bytes()))
            .collect();
        let prechecked = (|| {
            let mut verifier = ChainVerifier::new(&header.origin);
            for (line, digest) in lines[1..].iter().zip(&digests) {
                verifier
                    .check_line_with(line.as_bytes(), digest.as_ref())
                    .map_err(fail)?;
            }
            Ok(verifier.head())
        })();
        assert_eq!(
            line_by_line, prechecked,
            "the two ways of checking disagree"
        );
        line_by_line
    }

    /// A line whose body text is `body_text` verbatim, chained onto `prev` with `hash`.
    fn raw_line(seq: u64, prev: &Hash, hash: &Hash, body_text: &str) -> String {
        format!(r#"{{"seq":{seq},"prev":"{prev}","hash":"{hash}","body":{body_text}}}"#)
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
    fn exported_lines_take_the_plain_path() {
        // Every line fundledger writes is in the plain form with a canonical body, so
        // verifying it never builds a JSON value; this is what makes `verify` fast.
        for line in &export_lines(5)[1..] {
            let digest = plain_line_digest(line).expect("plain form");
            assert_eq!(precheck_line(line.as_bytes()), Some(digest));
            let record: Record = serde_json::from_str(line).expect("record line");
            assert_eq!(
                (digest.seq, digest.prev, digest.hash),
                (record.seq, record.prev, record.hash)
            );
        }
    }

    #[test]
    fn a_body_in_another_form_verifies_by_its_canonical_bytes() {
        let origin_head = Head::empty(ORIGIN);
        // Reordered members, whitespace, a needless escape, a number with a fraction: the
        // hash is over JCS(body), so the line verifies, on the parsed path.
        let body_text = r#"{ "type": "test", "seq": 1, "recorded_at": "2024-06-01T09:00:00+08:00",
            "command_id": "c\u0031", "actor": {"role": "admin", "id": "t"}, "rate": 1.50 }"#;
        let body: serde_json::Value = serde_json::from_str(body_text).expect("JSON");
        let hash = record_hash(&origin_head.hash, &crate::jcs::canonicalize(&body));
        let line = raw_line(1, &origin_head.hash, &hash, &body_text.replace('\n', ""));
        assert_eq!(plain_line_digest(&line), None);
        let lines = vec![ExportHeader::new(ORIGIN).to_line(), line];
        assert_eq!(verify(&lines).map(|head| head.hash), Ok(hash));

        // The same line hashed over its own, non-canonical bytes is caught.
        let wrong = record_hash(&origin_head.hash, body_text.replace('\n', "").as_bytes());
        let line = raw_line(1, &origin_head.hash, &wrong, &body_text.replace('\n', ""));
        let lines = vec![ExportHeader::new(ORIGIN).to_line(), line];
        let (seq, text) = verify(&lines).expect_err("not the hash of JCS(body)");
        assert_eq!(seq, Some(1));
        assert!(text.contains("hash mismatch"), "{text}");
    }

    #[test]
    fn plain_lines_that_break_a_rule_are_caught() {
        let head = Head::empty(ORIGIN);
        let header = ExportHeader::new(ORIGIN).to_line();
        // Each body is canonical text; each breaks §5 (or the seq) in one way.
        let cases: &[(&str, &str)] = &[
            (
                r#"{"actor":{},"command_id":"c","recorded_at":"2024-06-01T09:00:00+08:00","seq":2,"type":"t"}"#,
                "seq is 2",
            ),
            (
                r#"{"actor":{},"command_id":"c","recorded_at":"yesterday","seq":1,"type":"t"}"#,
                "RFC 3339",
            ),
            (
                r#"{"actor":{},"command_id":"c","recorded_at":"2024-06-01T09:00:00+08:00","seq":1,"type":7}"#,
                "`type` is not a string",
            ),
            (
                r#"{"actor":{},"recorded_at":"2024-06-01T09:00:00+08:00","seq":1,"type":"t"}"#,
                "no `command_id`",
            ),
            (
                r#"{"command_id":"c","recorded_at":"2024-06-01T09:00:00+08:00","seq":1,"type":"t"}"#,
                "no `actor`",
            ),
            (
                r#"{"actor":{},"command_id":"c","recorded_at":"2024-06-01T09:00:00+08:00","seq":-1,"type":"t"}"#,
                "non-negative integer",
            ),
        ];
        for (body_text, expect) in cases {
            assert!(crate::jcs::is_canonical(body_text), "{body_text}");
            // The hash is right for the bytes: only the §5 rule can fail.
            let hash = record_hash(&head.hash, body_text.as_bytes());
            let lines = vec![header.clone(), raw_line(1, &head.hash, &hash, body_text)];
            let (seq, text) = verify(&lines).expect_err(expect);
            assert_eq!(seq, Some(1), "{text}");
            assert!(text.contains(expect), "{text:?} should mention {expect:?}");
        }
        // Hashes in capitals are not hashes of §5, even though hex decodes them.
        let lines = export_lines(1);
        let record: Record = serde_json::from_str(&lines[1]).expect("record line");
        let upper = lines[1].replace(&record.hash.to_hex(), &record.hash.to_hex().to_uppercase());
        let (seq, text) = verify(&[lines[0].clone(), upper]).expect_err("uppercase hash");
        assert_eq!(seq, Some(1));
        assert!(text.contains("torn or invalid"), "{text}");
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
