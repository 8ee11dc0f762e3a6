//! The JSON Lines export of DESIGN §5 and its streaming verifier.
//!
//! [`ChainVerifier`] checks one line at a time and keeps only the running head, so verifying an
//! export of any length takes constant memory. It needs nothing but §5: it never looks at an
//! event's type, so it verifies exports written by any implementation.
//!
//! Verifying fast: [`precheck_line`] (and [`precheck_lines`], for a run of lines) does
//! everything about one line that does not depend on the lines before it (the record's form,
//! the body's §5 fields, `hash = H(prev ‖ JCS(body))`) without building a
//! `serde_json::Value`: when the body text is already canonical, which it is in every export
//! fundledger writes, its own bytes are the bytes to hash. Lines are independent, so callers
//! may precheck them on several threads; [`ChainVerifier::check_line_with`] then links them in
//! order (seq, prev) and hands any line the precheck refused to the full
//! [`ChainVerifier::check_line`], so verdicts and error messages are exactly the full check's.

use std::ops::Range;

use crate::chain::{check_body, genesis, record_hash, BodyError, Hash, Head, Record};
use crate::jcs;
use crate::lanes::{self, Input, Mode};
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

/// One line of a run of lines (`bytes[start..end]`, without its newline) and what
/// [`precheck_lines`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrecheckedLine {
    pub start: usize,
    pub end: usize,
    /// `None`: the line fails on its own (see [`precheck_line`]).
    pub digest: Option<LineDigest>,
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
    let line = trim_line_end(line);
    match plain_line_at(line, 0, &mut GoodTimestamps::default()) {
        Some(plain) if plain.end == line.len() => {
            let computed = record_hash(&plain.prev, &line[plain.body.clone()]);
            plain.digest_if(computed)
        }
        _ => parsed_line_digest(line),
    }
}

/// [`precheck_line`] for every line of `bytes`, which holds whole lines (the last may lack
/// its newline), appended to `out` in order. Faster than one line at a time: lines in the
/// plain form are found without searching for their newline, and their hashes are computed
/// several at once (the `lanes` module).
pub fn precheck_lines(bytes: &[u8], out: &mut Vec<PrecheckedLine>) {
    Prechecker::default().precheck_lines(bytes, out);
}

/// [`precheck_lines`] with its working memory kept between calls, for a thread that
/// prechecks chunk after chunk.
#[derive(Debug, Default)]
pub struct Prechecker {
    /// Plain lines waiting for their hash: (index in `out`, the line as read).
    waiting: Vec<(usize, PlainLine)>,
    computed: Vec<Hash>,
    lanes: lanes::Lanes,
}

/// Plain lines hashed together: enough for full groups of lanes at every length, few enough
/// that their bytes are still in the CPU's cache from reading them.
const HASH_BATCH_LINES: usize = 1024;

impl Prechecker {
    /// [`precheck_lines`].
    pub fn precheck_lines(&mut self, bytes: &[u8], out: &mut Vec<PrecheckedLine>) {
        let mut good_timestamps = GoodTimestamps::default();
        let mut start = 0;
        while start < bytes.len() {
            let (end, digest) = match plain_line_at(bytes, start, &mut good_timestamps) {
                Some(plain) => {
                    let end = plain.end;
                    self.waiting.push((out.len(), plain));
                    (end, None)
                }
                None => {
                    let end = find_newline(&bytes[start..]).map_or(bytes.len(), |at| start + at);
                    (end, parsed_line_digest(trim_line_end(&bytes[start..end])))
                }
            };
            out.push(PrecheckedLine { start, end, digest });
            start = end + 1;
            if self.waiting.len() == HASH_BATCH_LINES {
                self.hash_waiting(bytes, out);
            }
        }
        self.hash_waiting(bytes, out);
    }

    /// Hashes the waiting plain lines and sets the digests of those whose hash is right.
    fn hash_waiting(&mut self, bytes: &[u8], out: &mut [PrecheckedLine]) {
        let waiting = &self.waiting;
        self.computed.clear();
        self.computed.resize(waiting.len(), Hash::ZERO);
        let input = |index: usize| {
            let plain = &waiting[index].1;
            Input {
                head: &plain.prev.0,
                tail: &bytes[plain.body.clone()],
            }
        };
        self.lanes
            .hash(Mode::RecordHash, waiting.len(), input, &mut self.computed);
        for ((index, plain), computed) in waiting.iter().zip(&self.computed) {
            out[*index].digest = plain.digest_if(*computed);
        }
        self.waiting.clear();
    }
}

/// A line in the form [`record_line`] writes, with a canonical body that meets §5 with the
/// line's seq: everything checked but the hash.
#[derive(Clone, Debug)]
struct PlainLine {
    seq: u64,
    prev: Hash,
    hash: Hash,
    /// Where the body's text is.
    body: Range<usize>,
    /// Where the line ends: its newline, or the end of the bytes (a `\r` before either is
    /// part of the line, as `trim_line_end` takes it).
    end: usize,
}

impl PlainLine {
    /// The digest, when `computed` (the hash of prev ‖ body) is the hash the line states.
    fn digest_if(&self, computed: Hash) -> Option<LineDigest> {
        (computed == self.hash).then_some(LineDigest {
            seq: self.seq,
            prev: self.prev,
            hash: self.hash,
        })
    }
}

/// The plain line that starts at `bytes[start]`, if it is one. A plain line holds no newline
/// before its end (JSON text in canonical form has none), so its end is found by reading it.
fn plain_line_at<'a>(
    bytes: &'a [u8],
    start: usize,
    good_timestamps: &mut GoodTimestamps<'a>,
) -> Option<PlainLine> {
    let mut at = start;
    let expect = |literal: &[u8], at: &mut usize| -> Option<()> {
        bytes
            .get(*at..)?
            .starts_with(literal)
            .then(|| *at += literal.len())
    };
    expect(b"{\"seq\":", &mut at)?;
    let digits = bytes
        .get(at..)?
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    let seq = plain_u64(bytes.get(at..at + digits)?)?;
    at += digits;
    expect(b",\"prev\":\"", &mut at)?;
    let prev = lowercase_hash(bytes.get(at..at + 64)?)?;
    at += 64;
    expect(b"\",\"hash\":\"", &mut at)?;
    let hash = lowercase_hash(bytes.get(at..at + 64)?)?;
    at += 64;
    expect(b"\",\"body\":", &mut at)?;
    let body_start = at;
    at += check_canonical_body(bytes.get(at..)?, seq, good_timestamps)?;
    let body = body_start..at;
    expect(b"}", &mut at)?;
    let end = match bytes.get(at..) {
        Some([] | [b'\n', ..] | [b'\r'] | [b'\r', b'\n', ..]) => {
            at + usize::from(bytes.get(at) == Some(&b'\r'))
        }
        _ => return None,
    };
    Some(PlainLine {
        seq,
        prev,
        hash,
        body,
        end,
    })
}

/// The last few `recorded_at` texts that parsed as RFC 3339: records written together share
/// them, and parsing is the costly part of the §5 check.
#[derive(Default)]
struct GoodTimestamps<'a> {
    texts: [&'a [u8]; GOOD_TIMESTAMPS],
    next: usize,
}

const GOOD_TIMESTAMPS: usize = 4;

impl<'a> GoodTimestamps<'a> {
    fn contains(&self, text: &[u8]) -> bool {
        // An empty text never parses, so the empty slots never match a good one.
        !text.is_empty() && self.texts.contains(&text)
    }

    fn insert(&mut self, text: &'a [u8]) {
        self.texts[self.next] = text;
        self.next = (self.next + 1) % GOOD_TIMESTAMPS;
    }
}

/// [`precheck_line`] for any other line: parsed and canonicalised, as `check_line` does.
fn parsed_line_digest(line: &[u8]) -> Option<LineDigest> {
    let record: Record = serde_json::from_slice(line).ok()?;
    check_body(&record.body, record.seq).ok()?;
    (record.computed_hash() == record.hash).then_some(LineDigest {
        seq: record.seq,
        prev: record.prev,
        hash: record.hash,
    })
}

/// Reads the canonical object at the start of `bytes` and checks that it is a body meeting
/// §5 (as [`check_body`] decides) with `seq`; returns its length. `None` when it is not, or
/// when the plain check cannot tell.
fn check_canonical_body<'a>(
    bytes: &'a [u8],
    seq: u64,
    good_timestamps: &mut GoodTimestamps<'a>,
) -> Option<usize> {
    let mut body_seq = None;
    let mut type_is_string = false;
    let mut recorded_at = None;
    let mut has_command_id = false;
    let mut has_actor = false;
    let body_bytes = jcs::canonical_object_at(bytes, |member| match member.name {
        b"seq" => body_seq = Some(member.value),
        b"type" => type_is_string = member.value.first() == Some(&b'"'),
        b"recorded_at" => recorded_at = Some(member.value),
        b"command_id" => has_command_id = true,
        b"actor" => has_actor = true,
        _ => {}
    })?;
    if body_seq.and_then(plain_u64) != Some(seq) || !type_is_string {
        return None;
    }
    // A canonical string without escapes: its text is between the quotes.
    let recorded_at = recorded_at?.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if recorded_at.contains(&b'\\') {
        return None;
    }
    if !good_timestamps.contains(recorded_at) {
        let text = std::str::from_utf8(recorded_at).ok()?;
        chrono::DateTime::parse_from_rfc3339(text).ok()?;
        good_timestamps.insert(recorded_at);
    }
    (has_command_id && has_actor).then_some(body_bytes)
}

/// The first `\n` in `bytes`, looking at 8 bytes at a time.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let newlines = u64::from_le_bytes(eight) ^ (ONES * u64::from(b'\n'));
        if newlines.wrapping_sub(ONES) & !newlines & HIGHS != 0 {
            break;
        }
        offset += 8;
    }
    bytes[offset..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map(|position| offset + position)
}

/// A u64 written as serde_json reads one: digits, no leading zero.
fn plain_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        let digit = u64::from(digit.checked_sub(b'0').filter(|digit| *digit < 10)?);
        value.checked_mul(10)?.checked_add(digit)
    })
}

/// 64 lowercase hex digits: [`Hash`]'s parser.
#[cfg(target_arch = "x86_64")]
pub(crate) fn lowercase_hash(text: &[u8]) -> Option<Hash> {
    use std::arch::x86_64::*;
    let digits: &[u8; 64] = text.try_into().ok()?;
    let mut bytes = [0u8; 32];
    // SAFETY: SSE2 is part of every x86-64 CPU; the loads read 16 bytes each inside the 64
    // of `digits`, the stores write 16 bytes each inside the 32 of `bytes`.
    unsafe {
        let splat = |byte: u8| _mm_set1_epi8(byte as i8);
        // Unsigned range checks: low <= v exactly when max(v, low) == v.
        let within = |v: __m128i, low: u8, high: u8| {
            _mm_and_si128(
                _mm_cmpeq_epi8(_mm_max_epu8(v, splat(low)), v),
                _mm_cmpeq_epi8(_mm_min_epu8(v, splat(high)), v),
            )
        };
        let mut all_valid = 0xffff;
        let mut pairs = [_mm_setzero_si128(); 4];
        for (index, pair) in pairs.iter_mut().enumerate() {
            let v = _mm_loadu_si128(digits[16 * index..].as_ptr().cast());
            let letter = within(v, b'a', b'f');
            all_valid &= _mm_movemask_epi8(_mm_or_si128(within(v, b'0', b'9'), letter));
            // '0'..'9' and 'a'..'f' end in 0..9 and 1..6: add 9 for letters.
            let nibbles = _mm_add_epi8(
                _mm_and_si128(v, splat(0x0f)),
                _mm_and_si128(letter, splat(9)),
            );
            // Each 16-bit lane holds the high digit (low byte) and the low digit.
            *pair = _mm_or_si128(
                _mm_slli_epi16(_mm_and_si128(nibbles, _mm_set1_epi16(0x00ff)), 4),
                _mm_srli_epi16(nibbles, 8),
            );
        }
        _mm_storeu_si128(
            bytes.as_mut_ptr().cast(),
            _mm_packus_epi16(pairs[0], pairs[1]),
        );
        _mm_storeu_si128(
            bytes[16..].as_mut_ptr().cast(),
            _mm_packus_epi16(pairs[2], pairs[3]),
        );
        (all_valid == 0xffff).then_some(Hash(bytes))
    }
}

/// 64 lowercase hex digits: [`Hash`]'s parser.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn lowercase_hash(text: &[u8]) -> Option<Hash> {
    let digits: &[u8; 64] = text.try_into().ok()?;
    let mut bytes = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        // Checked once at the end: a branch per digit costs more than the table look-ups.
        invalid |= (high | low) & NOT_HEX;
        *byte = (high << 4) | (low & 0x0f);
    }
    (invalid == 0).then_some(Hash(bytes))
}

/// Marks a byte that is not a lowercase hex digit in [`HEX_VALUE`].
#[cfg(not(target_arch = "x86_64"))]
const NOT_HEX: u8 = 0x80;

/// The value of each lowercase hex digit; [`NOT_HEX`] for every other byte.
#[cfg(not(target_arch = "x86_64"))]
static HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

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
            "check_line and precheck_line disagree"
        );
        // And all lines at once, as one run of bytes.
        let mut bytes = lines[1..].join("\n").into_bytes();
        bytes.push(b'\n');
        let mut prechecked_lines = Vec::new();
        precheck_lines(&bytes, &mut prechecked_lines);
        assert_eq!(
            prechecked_lines.len(),
            lines.len() - 1,
            "one entry per line"
        );
        let in_a_run = (|| {
            let mut verifier = ChainVerifier::new(&header.origin);
            for (line, digest) in prechecked_lines.iter().zip(&digests) {
                assert_eq!(
                    line.digest, *digest,
                    "precheck_lines and precheck_line disagree"
                );
                verifier
                    .check_line_with(&bytes[line.start..line.end], line.digest.as_ref())
                    .map_err(fail)?;
            }
            Ok(verifier.head())
        })();
        assert_eq!(
            line_by_line, in_a_run,
            "check_line and precheck_lines disagree"
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
            let plain = plain_line_at(line.as_bytes(), 0, &mut GoodTimestamps::default())
                .expect("plain form");
            assert_eq!(plain.end, line.len());
            let digest = precheck_line(line.as_bytes()).expect("verifies");
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
        assert!(plain_line_at(line.as_bytes(), 0, &mut GoodTimestamps::default()).is_none());
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
    fn line_ends_and_blank_lines_are_read_as_check_line_reads_them() {
        let lines = export_lines(4);
        // CRLF, a trailing space, a trailing CR at the very end, an empty line.
        let text = format!(
            "{}\r\n{} \n{}\n\n{}\r",
            lines[1], lines[2], lines[3], lines[4]
        );
        let mut prechecked = Vec::new();
        precheck_lines(text.as_bytes(), &mut prechecked);
        let seen: Vec<(&str, bool)> = prechecked
            .iter()
            .map(|line| (&text[line.start..line.end], line.digest.is_some()))
            .collect();
        let expect = [
            (format!("{}\r", lines[1]), true),
            (format!("{} ", lines[2]), true),
            (lines[3].clone(), true),
            (String::new(), false),
            (format!("{}\r", lines[4]), true),
        ];
        let expect: Vec<(&str, bool)> = expect.iter().map(|(l, ok)| (l.as_str(), *ok)).collect();
        assert_eq!(seen, expect);
        for line in &prechecked {
            let text = &text.as_bytes()[line.start..line.end];
            assert_eq!(line.digest, precheck_line(text));
            // check_line agrees on each line alone (the empty one is torn).
            let head = line.digest.map_or(Head::empty(ORIGIN), |digest| Head {
                seq: digest.seq - 1,
                hash: digest.prev,
            });
            let mut verifier = ChainVerifier::resume(ORIGIN, head);
            assert_eq!(verifier.check_line(text).is_ok(), line.digest.is_some());
        }
    }

    #[test]
    fn each_timestamp_is_checked_even_after_a_good_one() {
        // Seals bodies whose recorded_at is good, then bad, then good again; the hashes are
        // right, so only the timestamp check can fail, at the second record.
        let times = [
            "2024-06-01T09:00:00+08:00",
            "2024-06-01T09:00:00+08:99",
            "2024-06-01T09:00:00+08:00",
        ];
        let mut head = Head::empty(ORIGIN);
        let mut lines = vec![ExportHeader::new(ORIGIN).to_line()];
        for (index, time) in times.iter().enumerate() {
            let seq = index as u64 + 1;
            let body = json!({"seq": seq, "type": "test", "recorded_at": time,
                              "command_id": format!("c{seq}"), "actor": {"id": "t", "role": "admin"}});
            let text = String::from_utf8(crate::jcs::canonicalize(&body)).expect("UTF-8");
            let hash = record_hash(&head.hash, text.as_bytes());
            lines.push(raw_line(seq, &head.hash, &hash, &text));
            head = Head { seq, hash };
        }
        let (seq, text) = verify(&lines).expect_err("a bad timestamp");
        assert_eq!(seq, Some(2));
        assert!(text.contains("RFC 3339"), "{text}");
    }

    #[test]
    fn hashes_are_64_lowercase_hex_digits() {
        let hash = genesis(ORIGIN);
        assert_eq!(lowercase_hash(hash.to_hex().as_bytes()), Some(hash));
        let all: String = "0123456789abcdef".repeat(4);
        assert_eq!(
            lowercase_hash(all.as_bytes()).map(|hash| hash.to_hex()),
            Some(all.clone())
        );
        // Every position, every byte that is not a lowercase hex digit.
        for at in 0..64 {
            for byte in (0..=255u8).filter(|byte| !b"0123456789abcdef".contains(byte)) {
                let mut text = all.clone().into_bytes();
                text[at] = byte;
                assert_eq!(lowercase_hash(&text), None, "{byte:#x} at {at}");
            }
        }
        assert_eq!(lowercase_hash(&all.as_bytes()[..63]), None);
        // It is Hash's parser.
        assert_eq!(hash.to_hex().parse::<Hash>(), Ok(hash));
        assert!(hash.to_hex().to_uppercase().parse::<Hash>().is_err());
        assert!(format!("{hash}0").parse::<Hash>().is_err());
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
