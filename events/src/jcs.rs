//! RFC 8785 JSON Canonicalization Scheme (JCS) over `serde_json::Value`.
//!
//! The bytes hashed into the chain are exactly these, so every rule here is part of the contract
//! (DESIGN §5): object members sorted by the UTF-16 code units of their names, no whitespace,
//! strings with the minimal escapes of ECMAScript `JSON.stringify`, and numbers formatted as
//! ECMAScript formats an IEEE-754 double.

use serde_json::{Map, Number, Value};

/// The largest integer magnitude that a double holds exactly (2^53); beyond it JCS goes through
/// the double, as any ECMAScript implementation would.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

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
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    // JCS orders names by UTF-16 code units, which differs from UTF-8 byte order only when a
    // name holds characters above U+FFFF next to characters in U+E000..U+FFFF.
    sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push(b'{');
    for (index, (name, item)) in sorted.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, item);
    }
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(n) = number.as_u64() {
        if n <= MAX_SAFE_INTEGER {
            out.extend_from_slice(n.to_string().as_bytes());
            return;
        }
    } else if let Some(n) = number.as_i64() {
        if n.unsigned_abs() <= MAX_SAFE_INTEGER {
            out.extend_from_slice(n.to_string().as_bytes());
            return;
        }
    }
    // serde_json never holds NaN or infinities, so every number has a double.
    let double = number.as_f64().unwrap_or(0.0);
    write_double(out, double);
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
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match byte {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        match escape {
            Some(sequence) => out.extend_from_slice(sequence),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0x0f)]);
            }
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
}
