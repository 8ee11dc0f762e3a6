//! Tamper tests (issue 7, part 3): whatever is changed in an export or a store, `verify` finds
//! it and names the first bad seq — unless the change leaves the export the same under DESIGN
//! §5, and exactly which changes those are is asserted too.
//!
//! What this file covers, and where the rest is:
//! - here, (a): EVERY single-byte edit of a small export — at every byte, a substitution by
//!   each of a dozen chosen bytes plus seeded random ones, a deletion, and insertions of a
//!   dozen chosen bytes plus seeded random ones (`FUNDLEDGER_TAMPER_FULL=1`: all 255
//!   substitutions and all 256 insertions at every byte) — judged against an independent rule
//!   of which edits are harmless. The export holds lines written as our exporter, PHP's
//!   `json_encode` and Python's `json.dumps` write JSON, since `verify` takes §5 exports from
//!   any writer. The sweep runs the verifier's own functions in-process (`parse_header`,
//!   `ChainVerifier::check_line`, line by line as `verify --file` reads); a seeded sample
//!   of the same edits, the harmless ones included, goes through the real binary.
//! - here, (b): every deleted, duplicated, swapped and moved line, through the binary.
//! - here, (c): records forged onto the end of an export, correctly chained, caught by a
//!   signed checkpoint taken before the forgery; forged checkpoints refused.
//! - here, (d): PostgreSQL refusing UPDATE, DELETE and TRUNCATE; with its triggers dropped,
//!   `verify --store` names the edited seq, and a checkpoint catches truncation and a
//!   re-hashed rewrite. SQLite refusing UPDATE and DELETE of a ledger the binary wrote.
//! - export_verify.rs: one example of each kind of tampering with its exact message.
//! - checkpoints.rs: SQLite rewrites re-hashed into a consistent chain, truncation, checkpoints
//!   by other keys or edited, `--since` rollbacks and forks.
//! - audit_e2e.rs: the whole audit on the demo ledger, and the independent Python verifier.
//! - store_tamper.rs: a SQLite ledger edited with its triggers dropped (verify, checkpoint,
//!   prove and export all name the seq).
//! - crates/store/src/conformance.rs (`the_database_refuses_edits`): every UPDATE, DELETE,
//!   REPLACE, upsert and (PostgreSQL) TRUNCATE refused by both databases.
//!
//! Exit codes, as `verify` documents them: 1 for any finding about the data (a bad header
//! included), 2 only when the file cannot be used at all (missing, empty, a directory). A
//! single-byte edit never empties an export, so every finding here is exit 1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use fundledger_audit::{Checkpoint, MerkleTree, SigningKey};
use fundledger_events::{parse_header, record_line, ChainVerifier, Head, Record};
use serde_json::Value;

/// A ledger name with a '/', which JSON may write as "\/": one of the harmless edits.
const TAMPER_ORIGIN: &str = "fundledger.example/zhengzhou-2024-62";
/// Records in the small export of (a) and (b).
const SMALL_RECORDS: u64 = 5;
/// The seed of the random part of the sweep; `FUNDLEDGER_TAMPER_SEED` picks another.
const DEFAULT_SEED: u64 = 0x6220_2405_2200_0062;
/// One edit in this many is also verified from the first line, to check that resuming the
/// verifier at the edited line (which the sweep does for speed) decides the same.
const FULL_RECHECK_EVERY: usize = 16;
/// Edits run through the binary in (a), besides the named examples.
const BINARY_SAMPLE_ACCEPTED: usize = 40;
const BINARY_SAMPLE_REFUSED: usize = 120;

// ---------------------------------------------------------------------------------------------
// The small export

/// How a line of the export is written: as `fundledger export` writes it, or as two common
/// JSON writers of other languages do by default.
#[derive(Clone, Copy, Debug)]
enum Writer {
    /// PHP `json_encode`: no spaces, non-ASCII as `\uXXXX`, and '/' escaped as `\/`.
    Php,
    /// Python `json.dumps`: `", "` and `": "` between items, non-ASCII as `\uXXXX`.
    Python,
}

fn write_json(out: &mut String, value: &Value, writer: Writer) {
    let (comma, colon) = match writer {
        Writer::Php => (",", ":"),
        Writer::Python => (", ", ": "),
    };
    match value {
        Value::Object(members) => {
            out.push('{');
            for (index, (name, item)) in members.iter().enumerate() {
                if index > 0 {
                    out.push_str(comma);
                }
                write_string(out, name, writer);
                out.push_str(colon);
                write_json(out, item, writer);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(comma);
                }
                write_json(out, item, writer);
            }
            out.push(']');
        }
        Value::String(text) => write_string(out, text, writer),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(out: &mut String, text: &str, writer: Writer) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if matches!(writer, Writer::Php) => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An export line written by `writer`: the record's four fields in the contract's order.
fn foreign_line(record: &Record, writer: Writer) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    object.insert("seq".into(), Value::from(record.seq));
    object.insert("prev".into(), Value::String(record.prev.to_hex()));
    object.insert("hash".into(), Value::String(record.hash.to_hex()));
    object.insert("body".into(), record.body.clone());
    // serde_json's map keeps its keys sorted; the record's field order is written by hand.
    let mut out = String::from("{");
    for (index, key) in ["seq", "prev", "hash", "body"].into_iter().enumerate() {
        if index > 0 {
            out.push_str(match writer {
                Writer::Php => ",",
                Writer::Python => ", ",
            });
        }
        write_string(&mut out, key, writer);
        out.push_str(match writer {
            Writer::Php => ":",
            Writer::Python => ": ",
        });
        write_json(&mut out, &object[key], writer);
    }
    out.push('}');
    out.into_bytes()
}

/// The note of record `seq`: Chinese text, a '/', and (seq 2) a tab.
fn small_note(seq: u64) -> String {
    match seq {
        2 => "第2条：算力券/compute voucher\t郑政文〔2024〕62号".to_string(),
        _ => format!("第{seq}条：算力券/voucher，郑政文〔2024〕62号"),
    }
}

/// A ledger of five records written by the store and exported by the binary; then line 2 is
/// rewritten as PHP writes JSON and line 4 as Python does. The chain is unchanged: the hashes
/// are over the canonical form, which does not depend on the writer.
struct SmallExport {
    dir: tempfile::TempDir,
    url: String,
    bytes: Vec<u8>,
    head: Head,
}

fn small_export() -> SmallExport {
    let dir = tempdir();
    let url = format!("sqlite://{}", dir.path().join("small.db").display());
    let head = runtime().block_on(async {
        let store = fundledger_store::open(&url, TAMPER_ORIGIN)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        append_records(&*store, SMALL_RECORDS, small_note).await
    });
    let exported = read(&export_to(dir.path(), &url, "exported.jsonl"));
    let mut lines = lines_of(&exported);
    for (index, writer) in [(2, Writer::Php), (4, Writer::Python)] {
        let record: Record =
            serde_json::from_slice(&lines[index]).unwrap_or_else(|error| panic!("{error}"));
        lines[index] = foreign_line(&record, writer);
    }
    let bytes = join_lines(&lines);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("\\/") && text.contains("\\u7b2c") && text.contains(", \"prev\": "));
    let path = dir.path().join("small.jsonl");
    write(&path, &bytes);
    let run = fundledger(dir.path(), &["verify", "--file", path_str(&path)]).ok();
    assert_eq!(run.field("head hash"), Some(head.hash.to_hex()));
    SmallExport {
        dir,
        url,
        bytes,
        head,
    }
}

// ---------------------------------------------------------------------------------------------
// The verifier in-process, and the rule of harmless edits

/// What `verify --file` decides about an export.
#[derive(Debug, PartialEq)]
enum Verdict {
    Accepted(Head),
    /// The seq the finding names (`None` for the header line) and its text.
    Refused(Option<u64>, String),
}

/// The lines of an export as `verify --file` reads them (`read_until(b'\n')`: a last line
/// without a newline is a line; nothing after a final newline is).
fn read_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |at| at + 1);
        lines.push(&rest[..end]);
        rest = &rest[end..];
    }
    lines
}

/// `verify --file`'s checks, in-process: the header, then each line through the chain
/// verifier, stopping at the first finding.
fn verify_in_process(bytes: &[u8]) -> Verdict {
    let lines = read_lines(bytes);
    let (header, records) = lines
        .split_first()
        .expect("an edited export is never empty");
    let refused =
        |error: fundledger_events::VerifyError| Verdict::Refused(error.seq(), error.to_string());
    let header = match parse_header(header) {
        Ok(header) => header,
        Err(error) => return refused(error),
    };
    let mut verifier = ChainVerifier::new(&header.origin);
    for line in records {
        if let Err(error) = verifier.check_line(line) {
            return refused(error);
        }
    }
    Verdict::Accepted(verifier.head())
}

/// One token of a line of JSON, as far as DESIGN §5 cares: structural characters, strings by
/// the UTF-16 code units they denote (`None`: not a valid JSON string), and bare words
/// (numbers, `true`, `false`, `null`) by their text. Whitespace between tokens is nothing.
#[derive(Debug, PartialEq)]
enum Token {
    Punct(u8),
    Text(Option<Vec<u16>>),
    Bare(Vec<u8>),
}

/// JSON's whitespace within a line (the newline ends the line).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r')
}

fn tokens(line: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < line.len() {
        let byte = line[at];
        if is_space(byte) {
            at += 1;
        } else if b"{}[]:,".contains(&byte) {
            out.push(Token::Punct(byte));
            at += 1;
        } else if byte == b'"' {
            let (text, next) = string_token(line, at + 1);
            out.push(Token::Text(text));
            at = next;
        } else {
            let start = at;
            while at < line.len() && !is_space(line[at]) && !b"{}[]:,\"".contains(&line[at]) {
                at += 1;
            }
            out.push(Token::Bare(line[start..at].to_vec()));
        }
    }
    out
}

/// The string starting after its opening quote at `start`: its code units (or `None`) and the
/// index after its closing quote.
fn string_token(line: &[u8], start: usize) -> (Option<Vec<u16>>, usize) {
    let mut units = Vec::new();
    let mut valid = true;
    let mut raw: Vec<u8> = Vec::new();
    let flush = |raw: &mut Vec<u8>, units: &mut Vec<u16>, valid: &mut bool| {
        match std::str::from_utf8(raw) {
            Ok(text) => units.extend(text.encode_utf16()),
            Err(_) => *valid = false,
        }
        raw.clear();
    };
    let mut at = start;
    while at < line.len() {
        match line[at] {
            b'"' => {
                flush(&mut raw, &mut units, &mut valid);
                return (valid.then_some(units), at + 1);
            }
            b'\\' => {
                flush(&mut raw, &mut units, &mut valid);
                let escape = line.get(at + 1).copied();
                let simple = match escape {
                    Some(b'"') => Some(0x22),
                    Some(b'\\') => Some(0x5c),
                    Some(b'/') => Some(0x2f),
                    Some(b'b') => Some(0x08),
                    Some(b'f') => Some(0x0c),
                    Some(b'n') => Some(0x0a),
                    Some(b'r') => Some(0x0d),
                    Some(b't') => Some(0x09),
                    _ => None,
                };
                if let Some(unit) = simple {
                    units.push(unit);
                    at += 2;
                } else if escape == Some(b'u') {
                    let hex = line
                        .get(at + 2..at + 6)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .and_then(|hex| u16::from_str_radix(hex, 16).ok());
                    match hex {
                        Some(unit) => units.push(unit),
                        None => valid = false,
                    }
                    at += 6;
                } else {
                    valid = false;
                    at += 2;
                }
            }
            // JSON strings hold no raw control characters.
            byte if byte < 0x20 => {
                valid = false;
                at += 1;
            }
            byte => {
                raw.push(byte);
                at += 1;
            }
        }
    }
    // No closing quote: not a string.
    (None, line.len())
}

/// The lines of an export split for the rule: on every newline, a final newline optional.
fn rule_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.split(|&b| b == b'\n').collect()
}

/// THE RULE. An edited export is the same export under DESIGN §5 exactly when it has the same
/// lines (the file's final newline is optional) and each line has the same JSON tokens, with
/// strings compared by the characters they denote. So the harmless edits are: whitespace
/// (space, tab, CR) added, removed or swapped between tokens or at either end of a line, the
/// final newline removed or turned into whitespace, and a string written with other escapes
/// for the same characters (`\/` for '/', `\u7B2C` for `\u7b2c`). Everything else changes
/// what is hashed or breaks the JSON. Returns `None` for the same export, else the index of
/// the first line that differs (0 = the header, n = seq n).
fn first_changed_line(original: &Original, edited: &[u8]) -> Option<usize> {
    let lines = rule_lines(edited);
    (0..original.tokens.len().max(lines.len())).find(|&index| {
        match (original.tokens.get(index), lines.get(index)) {
            // Equal bytes are equal tokens; only a line that changed is taken apart.
            (Some(_), Some(line)) if original.lines.get(index) == Some(line) => false,
            (Some(tokens_before), Some(line)) => *tokens_before != tokens(line),
            _ => true,
        }
    })
}

/// The small export taken apart once: its lines (for the rule and for the verifier), where
/// each starts, and the verifier's head after each.
struct Original<'a> {
    bytes: &'a [u8],
    lines: Vec<&'a [u8]>,
    tokens: Vec<Vec<Token>>,
    /// Byte offset of each line as `verify` reads them, then the file's length.
    line_starts: Vec<usize>,
    origin: String,
    /// The head after the header (the genesis) and after each record line.
    heads: Vec<Head>,
}

impl<'a> Original<'a> {
    fn new(bytes: &'a [u8]) -> Original<'a> {
        let lines = rule_lines(bytes);
        let tokens = lines.iter().map(|line| tokens(line)).collect();
        let mut line_starts = vec![0];
        for line in read_lines(bytes) {
            line_starts.push(line_starts.last().copied().unwrap_or(0) + line.len());
        }
        let origin = parse_header(lines[0])
            .unwrap_or_else(|error| panic!("{error}"))
            .origin;
        let mut verifier = ChainVerifier::new(&origin);
        let mut heads = vec![verifier.head()];
        for line in &read_lines(bytes)[1..] {
            verifier
                .check_line(line)
                .unwrap_or_else(|error| panic!("the original verifies: {error}"));
            heads.push(verifier.head());
        }
        Original {
            bytes,
            lines,
            tokens,
            line_starts,
            origin,
            heads,
        }
    }

    /// `verify_in_process(edited)`, without re-checking the lines before the edit: they are
    /// the original's bytes, so the verifier reaches them in the state it did for the
    /// original, and resumes from that head. (The test checks this against the whole run on a
    /// sample.)
    fn verify_edited(&self, edit: Edit, edited: &[u8]) -> Verdict {
        let at = match edit {
            Edit::Substitute(at, _) | Edit::Delete(at) | Edit::Insert(at, _) => at,
        };
        // The line holding the edited byte; an insertion at a line's start belongs to it.
        let line = self
            .line_starts
            .iter()
            .rposition(|&start| start <= at)
            .unwrap_or(0);
        if line == 0 {
            return verify_in_process(edited);
        }
        let mut verifier = ChainVerifier::resume(&self.origin, self.heads[line - 1]);
        for record_line in read_lines(&edited[self.line_starts[line]..]) {
            if let Err(error) = verifier.check_line(record_line) {
                return Verdict::Refused(error.seq(), error.to_string());
            }
        }
        Verdict::Accepted(verifier.head())
    }
}

/// What the rule expects of `verify` for an edit first changing line `changed`.
fn expected_verdict(changed: Option<usize>, head: Head) -> Result<Head, usize> {
    match changed {
        None => Ok(head),
        Some(line) => Err(line),
    }
}

/// Does the verdict meet what the rule expects? The header's line is 0: a header that no
/// longer parses is named without a seq, one naming another origin fails seq 1's genesis.
fn verdict_fits(verdict: &Verdict, expected: Result<Head, usize>) -> bool {
    match (verdict, expected) {
        (Verdict::Accepted(head), Ok(expected)) => *head == expected,
        (Verdict::Refused(None, _), Err(0)) => true,
        (Verdict::Refused(Some(1), text), Err(0)) => text.contains("not the genesis"),
        (Verdict::Refused(Some(seq), _), Err(line)) => *seq as usize == line,
        _ => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Edit {
    Substitute(usize, u8),
    Delete(usize),
    Insert(usize, u8),
}

impl Edit {
    fn apply(self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        match self {
            Edit::Substitute(at, byte) => out[at] = byte,
            Edit::Delete(at) => {
                out.remove(at);
            }
            Edit::Insert(at, byte) => out.insert(at, byte),
        }
        out
    }
}

/// SplitMix64: a small seeded generator, so the random part of the sweep is reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

fn seed() -> u64 {
    std::env::var("FUNDLEDGER_TAMPER_SEED")
        .ok()
        .map(|text| {
            text.parse()
                .unwrap_or_else(|_| panic!("FUNDLEDGER_TAMPER_SEED={text} is not a u64"))
        })
        .unwrap_or(DEFAULT_SEED)
}

/// Bytes every position gets: the JSON whitespace and newline, the characters that open,
/// close or escape strings, a digit, structure, and two bytes that cannot start UTF-8.
const CHOSEN: [u8; 12] = [
    b' ', b'\t', b'\r', b'\n', b'\\', b'"', b'/', b'0', b',', b'}', 0x80, 0xff,
];
/// Random extra bytes per position, for substitutions and for insertions.
const RANDOM_SUBSTITUTIONS: usize = 4;
const RANDOM_INSERTIONS: usize = 2;

/// Every edit of the sweep: at each byte the chosen and random substitutions, the byte with
/// its case and lowest bit flipped, a deletion, and the chosen and random insertions (also
/// after the last byte). With `full`, every byte value instead.
fn edits(bytes: &[u8], random: &mut SplitMix64, full: bool) -> Vec<Edit> {
    let mut all = Vec::new();
    for at in 0..=bytes.len() {
        let mut inserted: Vec<u8> = if full {
            (0..=255).collect()
        } else {
            let mut values = CHOSEN.to_vec();
            values.extend((0..RANDOM_INSERTIONS).map(|_| random.byte()));
            values
        };
        inserted.sort_unstable();
        inserted.dedup();
        all.extend(inserted.into_iter().map(|byte| Edit::Insert(at, byte)));
        let Some(&original) = bytes.get(at) else {
            continue;
        };
        all.push(Edit::Delete(at));
        let mut substituted: Vec<u8> = if full {
            (0..=255).collect()
        } else {
            let mut values = CHOSEN.to_vec();
            values.extend([original ^ 0x20, original ^ 0x01]);
            values.extend((0..RANDOM_SUBSTITUTIONS).map(|_| random.byte()));
            values
        };
        substituted.retain(|&byte| byte != original);
        substituted.sort_unstable();
        substituted.dedup();
        all.extend(
            substituted
                .into_iter()
                .map(|byte| Edit::Substitute(at, byte)),
        );
    }
    all
}

/// The named harmless edits of the rule, found in the small export: each must be accepted.
fn named_harmless_edits(bytes: &[u8]) -> Vec<(&'static str, Edit)> {
    let lines = rule_lines(bytes);
    let line_start = |index: usize| -> usize { lines[..index].iter().map(|l| l.len() + 1).sum() };
    let find = |index: usize, needle: &[u8]| -> usize {
        let line = lines[index];
        let at = line
            .windows(needle.len())
            .position(|window| window == needle)
            .unwrap_or_else(|| panic!("{needle:?} is not in line {index}"));
        line_start(index) + at
    };
    let last = bytes.len() - 1;
    vec![
        (
            "a space after a record's '{'",
            Edit::Insert(line_start(1) + 1, b' '),
        ),
        (
            "a tab before the header's ':'",
            Edit::Insert(find(0, b":1"), b'\t'),
        ),
        (
            "a CR before a line's newline",
            Edit::Insert(line_start(2) - 1, b'\r'),
        ),
        ("the final newline deleted", Edit::Delete(last)),
        (
            "the final newline turned into a space",
            Edit::Substitute(last, b' '),
        ),
        (
            "'/' escaped as \\/",
            Edit::Insert(find(3, b"/voucher"), b'\\'),
        ),
        (
            "the header origin's '/' escaped",
            Edit::Insert(find(0, b"/zhengzhou"), b'\\'),
        ),
        (
            "the '\\' of PHP's \\/ deleted",
            Edit::Delete(find(2, b"\\/compute")),
        ),
        (
            "a \\u escape's hex digit upper-cased",
            Edit::Substitute(find(2, b"u7b2c") + 2, b'B'),
        ),
        (
            "a space of Python's \", \" deleted",
            Edit::Delete(find(4, b", \"prev\"") + 1),
        ),
        (
            "a space of Python's \": \" turned into a tab",
            Edit::Substitute(find(4, b": ") + 1, b'\t'),
        ),
    ]
}

#[test]
fn every_single_byte_edit_of_a_small_export_is_found_unless_it_changes_nothing_under_section_5() {
    let small = small_export();
    let bytes = &small.bytes;
    let original = Original::new(bytes);
    assert_eq!(original.tokens.len() as u64, SMALL_RECORDS + 1);
    assert_eq!(original.heads.last(), Some(&small.head));
    assert_eq!(
        original.bytes.len(),
        *original.line_starts.last().unwrap_or(&0)
    );
    assert_eq!(verify_in_process(bytes), Verdict::Accepted(small.head));

    let seed = seed();
    let full = std::env::var_os("FUNDLEDGER_TAMPER_FULL").is_some();
    let mut random = SplitMix64(seed);
    let all = edits(bytes, &mut random, full);

    // The sweep, split over the cores: each edit judged by the verifier and by the rule.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = all.len().div_ceil(workers);
    let judged: Vec<(Edit, Option<usize>, Verdict)> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .chunks(chunk)
            .map(|edits| {
                let original = &original;
                scope.spawn(move || {
                    edits
                        .iter()
                        .enumerate()
                        .map(|(index, &edit)| {
                            let edited = edit.apply(bytes);
                            let verdict = original.verify_edited(edit, &edited);
                            if index % FULL_RECHECK_EVERY == 0 {
                                assert_eq!(
                                    verify_in_process(&edited),
                                    verdict,
                                    "{edit:?}: resuming at the edited line changed the verdict"
                                );
                            }
                            (edit, first_changed_line(original, &edited), verdict)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a sweep thread panicked"))
            .collect()
    });
    let misjudged: Vec<String> = judged
        .iter()
        .filter(|(_, changed, verdict)| {
            !verdict_fits(verdict, expected_verdict(*changed, small.head))
        })
        .take(20)
        .map(|(edit, changed, verdict)| {
            format!(
                "{edit:?}: the rule says {changed:?} (None = harmless), verify says {verdict:?}"
            )
        })
        .collect();
    assert!(
        misjudged.is_empty(),
        "seed {seed}: verify and the rule disagree on {} edits; the first:\n{}",
        judged
            .iter()
            .filter(|(_, changed, verdict)| !verdict_fits(
                verdict,
                expected_verdict(*changed, small.head)
            ))
            .count(),
        misjudged.join("\n")
    );

    let accepted: Vec<Edit> = judged
        .iter()
        .filter(|(_, changed, _)| changed.is_none())
        .map(|(edit, _, _)| *edit)
        .collect();
    let refused: Vec<&(Edit, Option<usize>, Verdict)> = judged
        .iter()
        .filter(|(_, changed, _)| changed.is_some())
        .collect();
    let count = |pick: fn(&Edit) -> bool| all.iter().filter(|edit| pick(edit)).count();
    eprintln!(
        "tamper sweep (seed {seed}{}): {} bytes, {} edits ({} substitutions, {} deletions, {} \
         insertions); {} harmless under §5 and accepted, {} found at the rule's line",
        if full { ", full" } else { "" },
        bytes.len(),
        all.len(),
        count(|edit| matches!(edit, Edit::Substitute(..))),
        count(|edit| matches!(edit, Edit::Delete(..))),
        count(|edit| matches!(edit, Edit::Insert(..))),
        accepted.len(),
        refused.len(),
    );
    // Every byte got at least one substitution, its deletion and an insertion.
    let mut covered = vec![[false; 3]; bytes.len() + 1];
    for edit in &all {
        match *edit {
            Edit::Substitute(at, _) => covered[at][0] = true,
            Edit::Delete(at) => covered[at][1] = true,
            Edit::Insert(at, _) => covered[at][2] = true,
        }
    }
    assert!(covered[..bytes.len()]
        .iter()
        .all(|kinds| kinds.iter().all(|&k| k)));

    // The named harmless edits are in the sweep and accepted; they and a seeded sample of the
    // rest go through the real binary.
    let named = named_harmless_edits(bytes);
    for (what, edit) in &named {
        assert_eq!(
            first_changed_line(&original, &edit.apply(bytes)),
            None,
            "{what}: {edit:?} should be harmless"
        );
        assert!(
            accepted.contains(edit) || full,
            "{what}: {edit:?} was not swept"
        );
    }
    let mut sample: Vec<(String, Edit, Option<usize>)> = named
        .iter()
        .map(|(what, edit)| (what.to_string(), *edit, None))
        .collect();
    for _ in 0..BINARY_SAMPLE_ACCEPTED.min(accepted.len()) {
        let edit = accepted[(random.next() % accepted.len() as u64) as usize];
        sample.push(("a sampled harmless edit".into(), edit, None));
    }
    for _ in 0..BINARY_SAMPLE_REFUSED.min(refused.len()) {
        let (edit, changed, _) = refused[(random.next() % refused.len() as u64) as usize];
        sample.push(("a sampled edit".into(), *edit, *changed));
    }
    let binary_misjudged = run_through_binary(small.dir.path(), bytes, &sample, small.head);
    assert!(
        binary_misjudged.is_empty(),
        "seed {seed}: the binary disagrees with the rule:\n{}",
        binary_misjudged.join("\n")
    );
    eprintln!(
        "tamper sweep: {} of the edits also run through the binary",
        sample.len()
    );
}

/// Runs `verify --file` on each edit (two at a time) and returns what did not fit the rule.
fn run_through_binary(
    dir: &Path,
    bytes: &[u8],
    sample: &[(String, Edit, Option<usize>)],
    head: Head,
) -> Vec<String> {
    let halves = sample.chunks(sample.len().div_ceil(2).max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .enumerate()
            .map(|(worker, edits)| {
                scope.spawn(move || {
                    let path = dir.join(format!("edited-{worker}.jsonl"));
                    let mut wrong = Vec::new();
                    for (what, edit, changed) in edits {
                        write(&path, &edit.apply(bytes));
                        let run = fundledger(dir, &["verify", "--file", path_str(&path)]);
                        if let Some(problem) = binary_misfit(&run, *changed, head) {
                            wrong.push(format!("{what} {edit:?}: {problem}"));
                        }
                    }
                    wrong
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a binary thread panicked"))
            .collect()
    })
}

/// Why the binary's answer does not fit the rule, if it does not.
fn binary_misfit(run: &Run, changed: Option<usize>, head: Head) -> Option<String> {
    let said = || format!("exit {:?}\n{}{}", run.code, run.stdout, run.stderr);
    match changed {
        None => (run.code != Some(0) || run.field("head hash") != Some(head.hash.to_hex()))
            .then(|| format!("should verify to {}: {}", head.hash, said())),
        Some(line) => {
            let fits = run.code == Some(1)
                && if line == 0 {
                    run.stderr.starts_with("verify: FAILED: line 1: ")
                        || run.stderr.starts_with("verify: FAILED at seq 1: prev is")
                } else {
                    let prefix = format!("verify: FAILED at seq {line}");
                    run.stderr
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(" ("))
                };
            (!fits || run.stdout.contains("verify: OK"))
                .then(|| format!("should fail at line {line}: {}", said()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Whole lines deleted, duplicated, swapped and moved

#[test]
fn deleted_duplicated_swapped_and_moved_lines_are_found_at_the_first_changed_line() {
    let small = small_export();
    let d = small.dir.path();
    let lines = lines_of(&small.bytes);
    let n = lines.len();
    let mut cases: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for i in 0..n {
        let mut edited = lines.clone();
        edited.remove(i);
        cases.push((format!("line {i} deleted"), edited));
        for j in i + 1..=n {
            let mut edited = lines.clone();
            edited.insert(j, lines[i].clone());
            cases.push((format!("line {i} duplicated before line {j}"), edited));
        }
        for j in i + 1..n {
            let mut edited = lines.clone();
            edited.swap(i, j);
            cases.push((format!("lines {i} and {j} swapped"), edited));
        }
        for j in (0..n).filter(|&j| j != i) {
            let mut edited = lines.clone();
            let line = edited.remove(i);
            edited.insert(j, line);
            cases.push((format!("line {i} moved to {j}"), edited));
        }
    }
    let mut reversed = lines.clone();
    reversed[1..].reverse();
    cases.push(("the records in reverse order".into(), reversed));

    let path = d.join("lines.jsonl");
    let mut checked = 0;
    for (what, edited) in &cases {
        if edited == &lines {
            continue;
        }
        checked += 1;
        let first = (0..n.max(edited.len()))
            .find(|&index| lines.get(index) != edited.get(index))
            .expect("the edit changed a line");
        write(&path, &join_lines(edited));
        let run = fundledger(d, &["verify", "--file", path_str(&path)]);
        if first == n - 1 && edited.len() == n - 1 {
            // The last record deleted: a shorter log is still a valid chain. Only a
            // checkpoint of the longer log can tell (see truncation in (c) and checkpoints.rs).
            let run = run.ok();
            assert_eq!(
                run.field("records"),
                Some((SMALL_RECORDS - 1).to_string()),
                "{what}"
            );
            continue;
        }
        let needle = if first == 0 {
            "verify: FAILED: line 1: ".to_string()
        } else {
            format!("verify: FAILED at seq {first} (line {})", first + 1)
        };
        let run = run.fails(1, &needle);
        assert!(run.stderr.starts_with(&needle), "{what}: {}", run.stderr);
        // The in-process verifier agrees, naming the same seq.
        let expected = if first == 0 { None } else { Some(first as u64) };
        match verify_in_process(&join_lines(edited)) {
            Verdict::Refused(seq, _) => assert_eq!(seq, expected, "{what}"),
            accepted => panic!("{what}: accepted in-process: {accepted:?}"),
        }
    }
    eprintln!("line edits: {checked} checked through the binary");
    assert!(checked >= 50, "{checked}");
}

// ---------------------------------------------------------------------------------------------
// (c) Records forged onto the end of an export

/// `keygen --name ORIGIN --out dir/prefix`: the .key and .vkey paths.
fn keygen(dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
    let out = dir.join(prefix);
    fundledger(dir, &["keygen", "--name", ORIGIN, "--out", path_str(&out)]).ok();
    (
        dir.join(format!("{prefix}.key")),
        dir.join(format!("{prefix}.vkey")),
    )
}

/// `checkpoint --store url --key key`, saved to `dir/name`.
fn checkpoint(dir: &Path, url: &str, key: &Path, name: &str) -> PathBuf {
    let run = fundledger(dir, &["checkpoint", "--store", url, "--key", path_str(key)]).ok();
    let path = dir.join(name);
    write(&path, run.stdout.as_bytes());
    path
}

fn verify_with(dir: &Path, export: &Path, checkpoint: &Path, vkey: &Path) -> Run {
    fundledger(
        dir,
        &[
            "verify",
            "--file",
            path_str(export),
            "--checkpoint",
            path_str(checkpoint),
            "--vkey",
            path_str(vkey),
        ],
    )
}

/// The export's lines with `count` forged records appended, each correctly chained onto the
/// one before: a payout nobody ordered, as someone holding the export file could add.
fn forge_tail(lines: &[Vec<u8>], count: u64) -> Vec<Vec<u8>> {
    let last: Record = serde_json::from_slice(lines.last().expect("records"))
        .unwrap_or_else(|error| panic!("{error}"));
    let mut head = last.head();
    let mut forged = lines.to_vec();
    for _ in 0..count {
        let seq = head.seq + 1;
        let mut body = body(seq, &format!("伪造的第{seq}条：付款"));
        body["type"] = Value::from("payout_ordered");
        body["amount"] = Value::from("9999999.00");
        let record = Record::seal(&head, body).unwrap_or_else(|error| panic!("{error}"));
        head = record.head();
        forged.push(record_line(&record).into_bytes());
    }
    forged
}

#[test]
fn records_forged_onto_the_end_are_caught_by_a_checkpoint_signed_before_the_forgery() {
    let dir = tempdir();
    let d = dir.path();
    let (url, _) = sqlite_ledger(d, "ledger.db", 30, note);
    let (key, vkey) = keygen(d, "bureau");
    // The forger holds the export of 30 records; meanwhile the bureau's ledger grows to 40
    // and it signs (publishes) a checkpoint of them.
    let export30 = lines_of(&read(&export_to(d, &url, "export30.jsonl")));
    grow(&url, 40);
    let cp40 = checkpoint(d, &url, &key, "cp40.txt");
    let export40 = export_to(d, &url, "export40.jsonl");
    verify_with(d, &export40, &cp40, &vkey).ok();

    // Forged tails of 10 (the checkpoint's size), 12 (beyond it) and 5 (short of it) records.
    for (count, finding) in [
        (10, "verify: FAILED: the checkpoint signs root"),
        (12, "verify: FAILED: the checkpoint signs root"),
        (
            5,
            "ROLLBACK or truncation: the checkpoint signs 40 records, but the log holds only 35",
        ),
    ] {
        let path = d.join(format!("forged-{count}.jsonl"));
        write(&path, &join_lines(&forge_tail(&export30, count)));
        // The chain alone cannot tell the forged records from real ones.
        let chain = fundledger(d, &["verify", "--file", path_str(&path)]).ok();
        assert_eq!(chain.field("records"), Some((30 + count).to_string()));
        verify_with(d, &path, &cp40, &vkey).fails(1, finding);
    }

    // The forger signs a checkpoint of the forged log with a key of his own under the
    // bureau's name: refused against the bureau's key (and only his own key accepts it, which
    // is why the auditor pins the bureau's .vkey). A signature line that copies the bureau's
    // key id is refused too (crates/audit/tests/note.rs, "impostor").
    let forged42 = d.join("forged-12.jsonl");
    let forged_records: MerkleTree = lines_of(&read(&forged42))[1..]
        .iter()
        .map(|line| {
            serde_json::from_slice::<Record>(line)
                .unwrap_or_else(|error| panic!("{error}"))
                .hash
        })
        .collect();
    let forger =
        SigningKey::from_seed(ORIGIN, &[0x66; 32]).unwrap_or_else(|error| panic!("{error}"));
    let forged_checkpoint = Checkpoint {
        origin: ORIGIN.to_string(),
        size: forged_records.len(),
        root: forged_records.root(),
    };
    let note = forged_checkpoint
        .sign(&forger)
        .unwrap_or_else(|error| panic!("{error}"));
    let forged_cp = d.join("forged-cp.txt");
    write(&forged_cp, note.as_bytes());
    verify_with(d, &forged42, &forged_cp, &vkey).fails(1, "is not a checkpoint signed by");
    let forger_vkey = d.join("forger.vkey");
    write(&forger_vkey, forger.verifier_key_string().as_bytes());
    verify_with(d, &forged42, &forged_cp, &forger_vkey).ok();
    // Forged records beyond the newest checkpoint are not covered by its signature: verify
    // passes the checkpoint and shows that the log is longer than what was signed. Once the
    // bureau signs its real records at those seqs, the forged ones fail.
    let beyond = d.join("beyond.jsonl");
    write(
        &beyond,
        &join_lines(&forge_tail(&lines_of(&read(&export40)), 3)),
    );
    let run = verify_with(d, &beyond, &cp40, &vkey).ok();
    assert!(
        run.stdout.contains("checkpoint: OK (size 40)"),
        "{}",
        run.stdout
    );
    assert_eq!(run.field("records").as_deref(), Some("43"));
    grow(&url, 43);
    let cp43 = checkpoint(d, &url, &key, "cp43.txt");
    verify_with(d, &beyond, &cp43, &vkey)
        .fails(1, "the checkpoint signs root")
        .fails(1, "not the records that were signed");
}

// ---------------------------------------------------------------------------------------------
// (d) The databases refuse edits; with the protection dropped, verify finds them

/// Runs `sql` on a PostgreSQL database with psql (stops at the first error).
fn psql(url: &str, sql: &str) -> Run {
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .unwrap_or_else(|error| {
            panic!("psql (PostgreSQL's client) is needed for this test and cannot run: {error}")
        });
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A scratch PostgreSQL ledger of 12 records (the same records every time).
fn postgres_ledger(runtime: &tokio::runtime::Runtime) -> fundledger_store::testing::ScratchDb {
    let db = runtime
        .block_on(fundledger_store::testing::scratch_postgres())
        .unwrap_or_else(|error| {
            panic!("PostgreSQL is needed for this test and cannot be used: {error}")
        });
    runtime.block_on(async {
        let store = fundledger_store::open(db.url(), ORIGIN)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        append_records(&*store, 12, note).await;
    });
    db
}

#[test]
fn postgres_refuses_edits_and_verify_finds_them_once_the_triggers_are_dropped() {
    let runtime = runtime();
    let dir = tempdir();
    let d = dir.path();
    let (key, vkey) = keygen(d, "bureau");

    // With the triggers in place, the database itself refuses every edit.
    let db = postgres_ledger(&runtime);
    let url = db.url().to_string();
    let cp12 = checkpoint(d, &url, &key, "cp12.txt");
    for sql in [
        "UPDATE records SET body = replace(body, '\"7000.50\"', '\"7001.50\"') WHERE seq = 7",
        "UPDATE records SET hash = prev",
        "DELETE FROM records WHERE seq = 5",
        "DELETE FROM records WHERE seq > 9",
        "TRUNCATE records",
    ] {
        let run = psql(&url, sql);
        assert_ne!(run.code, Some(0), "{sql} was not refused");
        assert!(run.stderr.contains("append-only"), "{sql}: {}", run.stderr);
    }
    let run = fundledger(d, &["verify", "--store", &url]).ok();
    assert_eq!(run.field("records").as_deref(), Some("12"));
    runtime
        .block_on(db.cleanup())
        .unwrap_or_else(|error| panic!("{error}"));

    // An operator drops the protection and edits: each edit on a fresh copy of the ledger.
    let drop_triggers =
        "DROP TRIGGER records_append_only ON records; DROP TRIGGER records_no_truncate ON records;";
    let resealed = resealed_tail_sql(10);
    // (SQL, what verify --store says, what verify --store --checkpoint cp12 says)
    let cases: Vec<(&str, ChainFinding, &str)> = vec![
        (
            "UPDATE records SET body = replace(body, '\"7000.50\"', '\"7001.50\"') WHERE seq = 7",
            Some(("verify: FAILED at seq 7: ", "hash mismatch")),
            "verify: FAILED at seq 7: ",
        ),
        (
            "DELETE FROM records WHERE seq = 5",
            Some(("verify: FAILED at seq 5: ", "gap: records are missing")),
            "verify: FAILED at seq 5: ",
        ),
        (
            "UPDATE records SET prev = (SELECT prev FROM records WHERE seq = 1) WHERE seq = 9",
            Some(("verify: FAILED at seq 9: ", "broken link")),
            "verify: FAILED at seq 9: ",
        ),
        // The chain cannot tell these from an honest log; the checkpoint can.
        (
            "DELETE FROM records WHERE seq > 9",
            None,
            "the checkpoint signs 12 records, but the log holds only 9",
        ),
        (
            "TRUNCATE records",
            None,
            "the checkpoint signs 12 records, but the log holds only 0",
        ),
        (&resealed, None, "not the records that were signed"),
    ];
    for (sql, chain_finding, checkpoint_finding) in &cases {
        let db = postgres_ledger(&runtime);
        let url = db.url().to_string();
        let run = psql(&url, &format!("{drop_triggers} {sql}"));
        assert_eq!(run.code, Some(0), "{sql}: {}", run.stderr);
        let chain = fundledger(d, &["verify", "--store", &url]);
        match chain_finding {
            Some((at_seq, what)) => {
                chain.fails(1, at_seq).fails(1, what);
                // The auditor's export of it fails at the same seq.
                let export = export_to(d, &url, "edited.jsonl");
                fundledger(d, &["verify", "--file", path_str(&export)])
                    .fails(1, at_seq.trim_end_matches(": "))
                    .fails(1, what);
                fundledger(d, &["checkpoint", "--store", &url, "--key", path_str(&key)])
                    .fails(1, &at_seq.replace("verify", "checkpoint"));
            }
            None => {
                chain.ok();
            }
        }
        fundledger(
            d,
            &[
                "verify",
                "--store",
                &url,
                "--checkpoint",
                path_str(&cp12),
                "--vkey",
                path_str(&vkey),
            ],
        )
        .fails(1, checkpoint_finding);
        runtime
            .block_on(db.cleanup())
            .unwrap_or_else(|error| panic!("{error}"));
    }
}

/// What `verify --store` says of an edit the chain shows: the `FAILED at seq N: ` prefix and
/// the kind of finding. `None`: the chain cannot tell.
type ChainFinding = Option<(&'static str, &'static str)>;

/// SQL that rewrites records `from_seq..=12` of the 12-record test ledger: the amount of
/// `from_seq` changed and every record from there re-sealed, so the chain is consistent.
fn resealed_tail_sql(from_seq: u64) -> String {
    let mut head = Head::empty(ORIGIN);
    let mut sql = String::new();
    for seq in 1..=12 {
        let mut body = body(seq, &note(seq));
        if seq == from_seq {
            body["amount"] = Value::from("1.00");
        }
        let record = Record::seal(&head, body).unwrap_or_else(|error| panic!("{error}"));
        head = record.head();
        if seq >= from_seq {
            sql.push_str(&format!(
                "UPDATE records SET prev = '{}', hash = '{}', body = '{}' WHERE seq = {seq}; ",
                record.prev,
                record.hash,
                record.body.to_string().replace('\'', "''")
            ));
        }
    }
    sql
}

#[test]
fn sqlite_refuses_update_and_delete_of_a_ledger_the_binary_wrote() {
    let small = small_export();
    let path = small.url.trim_start_matches("sqlite://");
    let connection = rusqlite::Connection::open(path).unwrap_or_else(|error| panic!("{error}"));
    for sql in [
        "UPDATE records SET body = replace(body, 'voucher', 'v0ucher') WHERE seq = 3",
        "UPDATE records SET hash = prev",
        "DELETE FROM records WHERE seq = 5",
        "DELETE FROM records",
    ] {
        let error = connection
            .execute_batch(sql)
            .expect_err("the ledger file refuses the edit");
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    drop(connection);
    let run = fundledger(small.dir.path(), &["verify", "--store", &small.url]).ok();
    assert_eq!(run.field("head hash"), Some(small.head.hash.to_hex()));
}
