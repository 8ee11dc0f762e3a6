//! RFC 8785 JSON Canonicalization Scheme (JCS): writing the canonical bytes of a
//! `serde_json::Value`, and recognising text that already is canonical.
//!
//! The bytes hashed into the chain are exactly these, so every rule here is part of the contract
//! (DESIGN §5): object members sorted by the UTF-16 code units of their names, no whitespace,
//! strings with the minimal escapes of ECMAScript `JSON.stringify`, and numbers formatted as
//! ECMAScript formats an IEEE-754 double.
//!
//! - [`canonicalize`] / [`canonicalize_into`] write the canonical bytes of a parsed value.
//! - [`is_canonical`] says whether JSON text is already, byte for byte, the canonical form of
//!   the value it holds, without building that value. Verifiers use it to hash an exported
//!   body's own bytes: when it says yes, `canonicalize(parse(text)) == text`. It answers yes
//!   only within a plain subset (integers up to 2^53, member names without escapes, nesting up
//!   to [`CANONICAL_DEPTH_MAX`]); anything outside it gets no, and the caller canonicalises the
//!   parsed value instead, so "no" never means "invalid".

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// The largest integer magnitude that a double holds exactly (2^53); beyond it JCS goes through
/// the double, as any ECMAScript implementation would.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// The deepest nesting of arrays and objects [`is_canonical`] follows. serde_json refuses
/// text nested deeper than 128; staying well below it means that text this module calls
/// canonical is text serde_json parses (with room for the export line's own object around a
/// body).
pub const CANONICAL_DEPTH_MAX: u32 = 64;

/// The canonical bytes of `value`.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value);
    out
}

/// Appends the canonical bytes of `value` to `out`, for callers that reuse one buffer.
pub fn canonicalize_into(out: &mut Vec<u8>, value: &Value) {
    write_value(out, value);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => write_object(out, members),
    }
}

fn write_object(out: &mut Vec<u8>, members: &Map<String, Value>) {
    out.push(b'{');
    // serde_json's map iterates in UTF-8 byte order (or insertion order with the
    // `preserve_order` feature, which any crate in a build can switch on). Byte order is
    // already JCS order unless names mix characters above U+FFFF with U+E000..U+FFFF, so the
    // sort (and its allocation) is only paid when the names are not in order already.
    let in_order = members
        .keys()
        .zip(members.keys().skip(1))
        .all(|(a, b)| utf16_cmp(a, b) == Ordering::Less);
    if in_order {
        for (index, (name, item)) in members.iter().enumerate() {
            write_member(out, index, name, item);
        }
    } else {
        let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
        sorted.sort_by(|(a, _), (b, _)| utf16_cmp(a, b));
        for (index, (name, item)) in sorted.into_iter().enumerate() {
            write_member(out, index, name, item);
        }
    }
    out.push(b'}');
}

fn write_member(out: &mut Vec<u8>, index: usize, name: &str, item: &Value) {
    if index > 0 {
        out.push(b',');
    }
    write_string(out, name);
    out.push(b':');
    write_value(out, item);
}

/// JCS orders names by UTF-16 code units.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    byte_order(a.as_bytes(), b.as_bytes()).unwrap_or_else(|| a.encode_utf16().cmp(b.encode_utf16()))
}

/// The UTF-16 order of two UTF-8 texts when their bytes decide it, `None` when only their
/// UTF-16 forms do. UTF-16 order is UTF-8 byte order (code point order) except between a
/// character above U+FFFF (a surrogate pair, 0xD800.., in UTF-16) and one in U+E000..U+FFFF;
/// in UTF-8 both start with a byte of at least 0xEE, so only a first difference at two such
/// bytes needs the UTF-16 comparison.
fn byte_order(a: &[u8], b: &[u8]) -> Option<Ordering> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => Some(a.len().cmp(&b.len())),
        Some(index) if a[index] >= 0xEE && b[index] >= 0xEE => None,
        Some(index) => Some(a[index].cmp(&b[index])),
    }
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(n) = number.as_u64() {
        if n <= MAX_SAFE_INTEGER {
            write_integer(out, false, n);
            return;
        }
    } else if let Some(n) = number.as_i64() {
        if n.unsigned_abs() <= MAX_SAFE_INTEGER {
            write_integer(out, n < 0, n.unsigned_abs());
            return;
        }
    }
    // serde_json never holds NaN or infinities, so every number has a double.
    let double = number.as_f64().unwrap_or(0.0);
    write_double(out, double);
}

/// Decimal digits of an integer, without the allocation of `to_string`.
fn write_integer(out: &mut Vec<u8>, negative: bool, mut magnitude: u64) {
    if negative {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // The remainder is below 10, so the cast keeps it whole.
        digits[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

fn write_double(out: &mut Vec<u8>, double: f64) {
    if double == 0.0 {
        // ECMAScript prints negative zero as "0".
        out.push(b'0');
        return;
    }
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(double).as_bytes());
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        // Most text has nothing to escape: skip it a word at a time.
        if let Some(word) = word_at(bytes, index) {
            if !word_may_need_care(word) {
                index += WORD_BYTES;
                continue;
            }
        }
        let byte = bytes[index];
        let escape: Option<&[u8]> = match byte {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => {
                index += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..index]);
        match escape {
            Some(sequence) => out.extend_from_slice(sequence),
            None => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX_LOWER[usize::from(byte >> 4)]);
                out.push(HEX_LOWER[usize::from(byte & 0x0f)]);
            }
        }
        index += 1;
        start = index;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const WORD_BYTES: usize = 8;

/// The 8 bytes at `index` as one little-endian word, if there are 8 left.
#[inline]
fn word_at(bytes: &[u8], index: usize) -> Option<u64> {
    let chunk: [u8; WORD_BYTES] = bytes.get(index..index + WORD_BYTES)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask with the high bit set of the first byte of `word` (in memory order) that is `"`,
/// `\` or a control character (below 0x20), the bytes a JSON string treats specially; 0 when
/// there is none. (The classic "has a zero byte" bit trick: it may also flag bytes after a
/// special one, never one before it, so the lowest set bit is exact.)
#[inline]
fn care_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    zero_byte(quote) | zero_byte(backslash) | below_space
}

/// For the 16 bytes at `index`, if there are 16: a mask of those that need care (see
/// [`care_mask`]; bit `i` for byte `index + i`) and a mask of those beyond ASCII.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn care_16(bytes: &[u8], index: usize) -> Option<(u32, u32)> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let sixteen: &[u8; 16] = bytes.get(index..index + 16)?.try_into().ok()?;
    // SAFETY: SSE2 is part of every x86-64 CPU, and the one load reads the 16 bytes of
    // `sixteen`.
    unsafe {
        let v = _mm_loadu_si128(sixteen.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Unsigned: a byte is at most 0x1f exactly when max(byte, 0x1f) is 0x1f.
        let below_space = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
        let care = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), below_space));
        Some((care as u32, _mm_movemask_epi8(v) as u32))
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn care_16(_bytes: &[u8], _index: usize) -> Option<(u32, u32)> {
    None
}

/// Whether any byte of `word` needs care (see [`care_mask`]).
#[inline]
fn word_may_need_care(word: u64) -> bool {
    care_mask(word) != 0
}

/// Whether `text` is, byte for byte, the canonical form of the JSON value it holds: the form
/// [`canonicalize`] writes for that value. See the module documentation for the subset it
/// recognises; outside it the answer is `false`, which means "canonicalise it the long way",
/// not "invalid".
pub fn is_canonical(text: &str) -> bool {
    let mut scan = CanonicalScan::new(text.as_bytes());
    scan.value(0).is_some() && scan.at_end()
}

/// A member of a canonical object: its name (which holds no escapes, so its text is the name)
/// and its value's canonical text.
pub(crate) struct Member<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// Reads one canonical object (as [`is_canonical`] decides) at the start of `bytes`, handing
/// its members to `on_member` in order, and returns where the object ends; `None` when the
/// bytes there are not a canonical object in the recognised subset. The object's strings are
/// checked to be UTF-8 and everything else in it is ASCII, so the object is UTF-8 text.
pub(crate) fn canonical_object_at<'a>(
    bytes: &'a [u8],
    on_member: impl FnMut(Member<'a>),
) -> Option<usize> {
    let mut scan = CanonicalScan::new(bytes);
    scan.object(1, on_member)?;
    Some(scan.pos)
}

/// What [`CanonicalScan::string`] saw in a string.
struct StringKind {
    /// It holds an escape sequence.
    escaped: bool,
    /// Every byte is ASCII.
    ascii: bool,
}

/// A cursor over bytes, checking as it goes that everything it passes is canonical JSON text
/// (UTF-8 included). Every method returns `None` at the first byte that is not.
struct CanonicalScan<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> CanonicalScan<'a> {
    fn new(bytes: &'a [u8]) -> CanonicalScan<'a> {
        CanonicalScan { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// One value at nesting `depth` (the number of arrays and objects around it).
    fn value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, |_| {}),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.pos..]
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    /// An integer as JCS writes it: no sign on zero, no leading zeros, no fraction or
    /// exponent, magnitude at most 2^53 (beyond it JCS writes the nearest double).
    fn integer(&mut self) -> Option<()> {
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let mut magnitude: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            // 17 digits exceed 2^53; stop before u64 could overflow.
            if self.pos - start >= 17 {
                return None;
            }
            magnitude = magnitude * 10 + u64::from(digit - b'0');
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        let negative_zero = negative && magnitude == 0;
        if digits.is_empty() || leading_zero || negative_zero || magnitude > MAX_SAFE_INTEGER {
            return None;
        }
        // A fraction or an exponent makes it a double, whose canonical form is another matter.
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(()),
        }
    }

    /// A string with exactly the escapes JCS writes.
    fn string(&mut self) -> Option<StringKind> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        // The high bits of every byte passed: any set means text beyond ASCII, whose UTF-8 is
        // checked once the string's end is known.
        let mut high_bits = 0u64;
        loop {
            self.skip_plain(&mut high_bits);
            match self.peek()? {
                b'"' => {
                    let text = &self.bytes[start..self.pos];
                    if high_bits != 0 && std::str::from_utf8(text).is_err() {
                        return None;
                    }
                    self.pos += 1;
                    return Some(StringKind {
                        escaped,
                        ascii: high_bits == 0,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                // A raw control character is not JSON at all.
                0x00..=0x1f => return None,
                // Anything else stands for itself (UTF-8 is checked at the end).
                byte => {
                    high_bits |= u64::from(byte & 0x80);
                    self.pos += 1;
                }
            }
        }
    }

    /// Moves over plain string text (no `"`, `\`, control character), 16 or 8 bytes at a
    /// time, to the first byte that needs care, or to where fewer than 8 bytes are left; ors
    /// the high bits of the bytes passed into `high_bits`.
    #[inline(always)]
    fn skip_plain(&mut self, high_bits: &mut u64) {
        loop {
            if let Some((care, high)) = care_16(self.bytes, self.pos) {
                if care == 0 {
                    *high_bits |= u64::from(high);
                    self.pos += 16;
                    continue;
                }
                let plain_bytes = care.trailing_zeros();
                *high_bits |= u64::from(high & ((1u32 << plain_bytes) - 1));
                self.pos += plain_bytes as usize;
                return;
            }
            let Some(word) = word_at(self.bytes, self.pos) else {
                return;
            };
            let care = care_mask(word);
            if care == 0 {
                *high_bits |= word & HIGHS;
                self.pos += WORD_BYTES;
                continue;
            }
            let plain_bytes = (care.trailing_zeros() / 8) as usize;
            // Only the plain bytes before the one that needs care.
            *high_bits |= word & HIGHS & ((1u64 << (8 * plain_bytes)) - 1);
            self.pos += plain_bytes;
            return;
        }
    }

    /// One escape sequence, at its backslash: only the short forms JCS uses, and `\u00xx`
    /// (lowercase hex) for the other control characters.
    fn escape(&mut self) -> Option<()> {
        match *self.bytes.get(self.pos + 1)? {
            b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => {
                self.pos += 2;
                Some(())
            }
            b'u' => {
                let digits = self.bytes.get(self.pos + 2..self.pos + 6)?;
                let hex_value = |digit: u8| HEX_LOWER.iter().position(|&h| h == digit);
                if digits[0] != b'0' || digits[1] != b'0' {
                    return None;
                }
                let code = hex_value(digits[2])? * 16 + hex_value(digits[3])?;
                let has_short_form = matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
                if code >= 0x20 || has_short_form {
                    return None;
                }
                self.pos += 6;
                Some(())
            }
            _ => None,
        }
    }

    fn array(&mut self, depth: u32) -> Option<()> {
        if depth > CANONICAL_DEPTH_MAX {
            return None;
        }
        self.expect(b'[')?;
        if self.expect(b']').is_some() {
            return Some(());
        }
        loop {
            self.value(depth)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object whose names are in strictly increasing JCS order (so also without
    /// duplicates) and hold no escapes.
    fn object(&mut self, depth: u32, mut on_member: impl FnMut(Member<'a>)) -> Option<()> {
        if depth > CANONICAL_DEPTH_MAX {
            return None;
        }
        self.expect(b'{')?;
        if self.expect(b'}').is_some() {
            return Some(());
        }
        // The previous name, and whether it is all ASCII.
        let mut previous_name: Option<(&'a [u8], bool)> = None;
        loop {
            let name_start = self.pos + 1;
            let kind = self.string()?;
            if kind.escaped {
                // Escaped names are rare; comparing them would need their decoded text.
                return None;
            }
            let name = &self.bytes[name_start..self.pos - 1];
            if let Some((previous, previous_ascii)) = previous_name {
                // Between ASCII names, UTF-16 order is byte order.
                let order = if previous_ascii && kind.ascii {
                    short_cmp(previous, name)
                } else {
                    names_cmp(previous, name)?
                };
                if order != Ordering::Less {
                    return None;
                }
            }
            previous_name = Some((name, kind.ascii));
            self.expect(b':')?;
            let value_start = self.pos;
            self.value(depth)?;
            on_member(Member {
                name,
                value: &self.bytes[value_start..self.pos],
            });
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Byte order of two short slices, in line: names mostly differ in their first bytes, and a
/// `memcmp` call costs more than that.
#[inline(always)]
fn short_cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// [`utf16_cmp`] of two names taken from text the caller holds as `str` (so each is UTF-8:
/// it lies between two quotes).
fn names_cmp(a: &[u8], b: &[u8]) -> Option<Ordering> {
    match byte_order(a, b) {
        Some(order) => Some(order),
        None => Some(utf16_cmp(
            std::str::from_utf8(a).ok()?,
            std::str::from_utf8(b).ok()?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(input: &str, expect: &str) {
        let value: Value = serde_json::from_str(input).expect("test input is JSON");
        let actual = String::from_utf8(canonicalize(&value)).expect("JCS output is UTF-8");
        assert_eq!(actual, expect, "input: {input}");
    }

    #[test]
    fn literals_and_whitespace() {
        check(
            r#" [ null , true , false , "" ] "#,
            r#"[null,true,false,""]"#,
        );
        check(
            r#"{ "b" : 1 , "a" : { "d" : [ ] , "c" : { } } }"#,
            r#"{"a":{"c":{},"d":[]},"b":1}"#,
        );
    }

    #[test]
    fn member_order_is_by_utf16_code_units() {
        // The sorting example of RFC 8785 §3.2.3.
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let value: Value = serde_json::from_str(input).expect("JSON");
        let canonical = String::from_utf8(canonicalize(&value)).expect("UTF-8");
        let names: Vec<String> = canonical
            .trim_start_matches('{')
            .split("\",\"")
            .map(|part| {
                part.split("\":\"")
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches('"')
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            vec![
                "\\r",
                "1",
                "\u{80}",
                "\u{f6}",
                "\u{20ac}",
                "\u{1f600}",
                "\u{fb33}"
            ]
        );
    }

    #[test]
    fn string_escapes_are_minimal() {
        check(
            r#""\u0001\b\t\n\f\r\"\\/\u007f\u00e9中文""#,
            "\"\\u0001\\b\\t\\n\\f\\r\\\"\\\\/\u{7f}é中文\"",
        );
        check(r#""\u001f""#, r#""\u001f""#);
    }

    #[test]
    fn numbers_follow_ecmascript() {
        // Values from RFC 8785 Appendix B, given as IEEE-754 bit patterns.
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x41b3de4355555553, "333333333.3333332"),
        ];
        for &(bits, expect) in cases {
            let value = json!(f64::from_bits(bits));
            assert_eq!(
                String::from_utf8(canonicalize(&value)).unwrap_or_default(),
                expect,
                "bits {bits:#x}"
            );
        }
        check(
            "[1.0, 4.50, 2e-3, 1E30, -0.0, 10]",
            "[1,4.5,0.002,1e+30,0,10]",
        );
        check("18446744073709551615", "18446744073709552000");
        check("-9007199254740993", "-9007199254740992");
    }

    /// `is_canonical(text)` answers `expect`; when it says yes, the text must be what
    /// `canonicalize` writes for the value it parses to.
    fn check_canonical(text: &str, expect: bool) {
        assert_eq!(is_canonical(text), expect, "is_canonical({text:?})");
        if expect {
            let value: Value = serde_json::from_str(text).expect("canonical text is JSON");
            assert_eq!(
                String::from_utf8(canonicalize(&value)).ok().as_deref(),
                Some(text)
            );
        }
    }

    #[test]
    fn canonical_text_is_recognised() {
        for text in [
            r#"{}"#,
            r#"[]"#,
            r#""""#,
            r#"0"#,
            r#"-1"#,
            r#"9007199254740992"#,
            r#"-9007199254740992"#,
            r#"[null,true,false,"a",{"a":[{}]}]"#,
            r#"{"a":1,"b":{"c":"d"},"ba":[]}"#,
            "\"\\u0001\\b\\t\\n\\f\\r\\\"\\\\/\u{7f}é中文\u{2028}\"",
            "{\"1\":2,\"\u{80}\":3,\"\u{f6}\":4,\"\u{20ac}\":5,\"\u{1f600}\":6,\"\u{fb33}\":7}",
        ] {
            check_canonical(text, true);
        }
    }

    #[test]
    fn anything_else_is_left_to_canonicalize() {
        for text in [
            // Whitespace, anywhere.
            r#" {}"#,
            r#"{} "#,
            r#"{"a": 1}"#,
            r#"[1, 2]"#,
            // Member order and duplicates.
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":1}"#,
            // UTF-8 byte order is not UTF-16 order here.
            "{\"\u{fb33}\":1,\"\u{1f600}\":2}",
            // Escapes JCS does not write, or writes otherwise.
            r#""\/""#,
            r#""\u0041""#,
            r#""\u000a""#,
            r#""\u001F""#,
            r#""\u00e9""#,
            r#""\ud83d\ude00""#,
            // Escaped names are outside the recognised subset, even when canonical.
            r#"{"\n":1}"#,
            // Numbers: only plain integers up to 2^53.
            "1.0",
            "1.5",
            "1e3",
            "-0",
            "01",
            "9007199254740993",
            "-9007199254740993",
            "123456789012345678901",
            // Not JSON at all.
            "",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"[1,]"#,
            r#"{"a":1,}"#,
            "\"a\u{1}\"",
            "\"abc",
            "tru",
            "nul",
            "{}{}",
        ] {
            check_canonical(text, false);
        }
        let deep_enough = "[".repeat(64) + &"]".repeat(64);
        check_canonical(&deep_enough, true);
        let too_deep = "[".repeat(65) + &"]".repeat(65);
        check_canonical(&too_deep, false);
    }

    #[test]
    fn member_names_reach_the_visitor_in_order() {
        let mut seen = Vec::new();
        let text = r#"{"a":[1,{"x":2}],"b":"c\"d","c":{"y":null}}"#;
        let end = canonical_object_at(text.as_bytes(), |member| {
            seen.push((
                String::from_utf8_lossy(member.name).into_owned(),
                String::from_utf8_lossy(member.value).into_owned(),
            ))
        });
        assert_eq!(end, Some(text.len()));
        let expect = [
            ("a", r#"[1,{"x":2}]"#),
            ("b", r#""c\"d""#),
            ("c", r#"{"y":null}"#),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        assert_eq!(seen, expect);
        assert_eq!(canonical_object_at(b"[]", |_| {}), None);
        // The object ends where it ends; what follows is the caller's business.
        assert_eq!(canonical_object_at(b"{\"a\":1} x", |_| {}), Some(7));
    }

    #[test]
    fn strings_must_be_utf8() {
        let good = "{\"a\":\"中文 and more than eight bytes\"}";
        assert_eq!(
            canonical_object_at(good.as_bytes(), |_| {}),
            Some(good.len())
        );
        for bad in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"a\":\"\xe4\xb8\"}",
            b"{\"a\":\"abcdefgh\xc0\xafabcdefgh\"}",
            b"{\"\xed\xa0\x80\":1}",
            b"{\"a\":\xe4\xb8\xad}",
        ] {
            assert_eq!(canonical_object_at(bad, |_| {}), None, "{bad:?}");
        }
    }

    /// Long strings take the 16- and 8-byte paths: put every kind of byte at every position.
    #[test]
    fn every_position_of_a_long_string_is_looked_at() {
        for len in 0..48 {
            for at in 0..=len {
                let plain = "a".repeat(len);
                for inserted in ["é", "中", "😀", "\u{1}", "\"", "\\", "\n", "\u{7f}"] {
                    let mut text = plain.clone();
                    text.insert_str(at, inserted);
                    let canonical =
                        String::from_utf8(canonicalize(&Value::String(text))).expect("UTF-8");
                    check_canonical(&canonical, true);
                }
                // A raw control character, or an escape JCS does not write, is not canonical.
                for inserted in ["\u{1}", "\\/", "\\u0041"] {
                    let mut text = plain.clone();
                    text.insert_str(at, inserted);
                    check_canonical(&format!("\"{text}\""), false);
                }
                // Bytes that are not UTF-8.
                let mut bytes = format!("{{\"k\":\"{plain}\"}}").into_bytes();
                bytes.insert(7 + at, 0xff);
                assert_eq!(
                    canonical_object_at(&bytes, |_| {}),
                    None,
                    "len {len} at {at}"
                );
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Characters that exercise escapes, multi-byte UTF-8 and the UTF-16 ordering corner.
        fn tricky_char() -> impl Strategy<Value = char> {
            prop_oneof![
                prop::char::range('a', 'e'),
                Just('"'),
                Just('\\'),
                Just('/'),
                prop::char::range('\u{0}', '\u{1f}'),
                Just('\u{7f}'),
                Just('é'),
                Just('中'),
                Just('\u{2028}'),
                Just('\u{fb33}'),
                Just('\u{ffff}'),
                Just('\u{1f600}'),
                Just('\u{10000}'),
            ]
        }

        fn tricky_string() -> impl Strategy<Value = String> {
            prop::collection::vec(tricky_char(), 0..6).prop_map(|chars| chars.into_iter().collect())
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-(1i64 << 54)..(1i64 << 54)).prop_map(|n| json!(n)),
                any::<u64>().prop_map(|n| json!(n)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| json!(f)),
                tricky_string().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 40, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map(tricky_string(), inner, 0..5)
                        .prop_map(|members| Value::Object(members.into_iter().collect())),
                ]
            })
        }

        /// Within the subset `is_canonical` recognises: no doubles, no integers past 2^53,
        /// no member names that need escapes, not too deep.
        fn in_subset(value: &Value, depth: u32) -> bool {
            match value {
                Value::Number(n) => {
                    n.as_i64()
                        .is_some_and(|n| n.unsigned_abs() <= MAX_SAFE_INTEGER)
                        || n.as_u64().is_some_and(|n| n <= MAX_SAFE_INTEGER)
                }
                Value::Array(items) => {
                    depth < CANONICAL_DEPTH_MAX
                        && items.iter().all(|item| in_subset(item, depth + 1))
                }
                Value::Object(members) => {
                    depth < CANONICAL_DEPTH_MAX
                        && members.iter().all(|(name, item)| {
                            !name.chars().any(|c| c < ' ' || c == '"' || c == '\\')
                                && in_subset(item, depth + 1)
                        })
                }
                _ => true,
            }
        }

        /// Whether some number of `value` is written with a fraction or an exponent.
        fn has_fraction_or_exponent(value: &Value) -> bool {
            match value {
                Value::Number(_) => canonicalize(value).iter().any(|b| b".eE".contains(b)),
                Value::Array(items) => items.iter().any(has_fraction_or_exponent),
                Value::Object(members) => members.values().any(has_fraction_or_exponent),
                _ => false,
            }
        }

        /// Edits that keep text JSON-like but may break canonical form.
        fn mutate(text: &str, position: usize, edit: usize) -> String {
            const INSERTS: &[&str] = &[
                " ", "\n", "0", "-", ".0", "e1", "\\", "\\u0041", "\\/", ",", ":", "\"", "{}",
                "[]", "1", "\u{1}", "é",
            ];
            let mut boundaries: Vec<usize> = text.char_indices().map(|(index, _)| index).collect();
            boundaries.push(text.len());
            let at = boundaries[position % boundaries.len()];
            let mut out = text.to_string();
            match edit % 3 {
                0 => out.insert_str(at, INSERTS[(edit / 3) % INSERTS.len()]),
                1 => {
                    if let Some(c) = out[at..].chars().next() {
                        out.replace_range(at..at + c.len_utf8(), "");
                    }
                }
                _ => {
                    // Swap two neighbouring characters (reorders names, digits, quotes).
                    let mut chars: Vec<char> = out.chars().collect();
                    let index = position % chars.len().max(1);
                    if index + 1 < chars.len() {
                        chars.swap(index, index + 1);
                    }
                    out = chars.into_iter().collect();
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn canonical_output_is_recognised_within_the_subset(value in json_value()) {
                let text = String::from_utf8(canonicalize(&value)).expect("UTF-8");
                // Outside the subset a value may still print as recognised text (the double
                // -0.0 prints as 0); a_yes_is_always_right covers those.
                if in_subset(&value, 0) {
                    prop_assert!(is_canonical(&text), "{}", text);
                }
                if has_fraction_or_exponent(&value) {
                    prop_assert!(!is_canonical(&text), "{}", text);
                }
            }

            #[test]
            fn a_yes_is_always_right(value in json_value(), position in any::<usize>(), edit in any::<usize>()) {
                let text = String::from_utf8(canonicalize(&value)).expect("UTF-8");
                for candidate in [
                    mutate(&text, position, edit),
                    serde_json::to_string(&value).expect("serialises"),
                    serde_json::to_string_pretty(&value).expect("serialises"),
                ] {
                    if is_canonical(&candidate) {
                        let parsed: Value = serde_json::from_str(&candidate)
                            .map_err(|error| TestCaseError::fail(format!("{candidate:?}: {error}")))?;
                        prop_assert_eq!(
                            String::from_utf8(canonicalize(&parsed)).expect("UTF-8"),
                            candidate
                        );
                    }
                }
            }
        }
    }
}
