//! `export --format payments-csv`: the payment register (付款登记簿) as CSV, one row per payout
//! in the order the payouts were ordered, for the finance bureau's spreadsheets.
//!
//! Made to open correctly by double-click in Excel and WPS with Chinese text, and to stay
//! easy for programs:
//! - UTF-8 with a byte-order mark (without it Excel reads the file as the local ANSI code page
//!   and garbles every Chinese character), CRLF line endings, a final CRLF.
//! - RFC 4180 quoting: a field holding a comma, a double quote, CR or LF is put in double
//!   quotes, with its double quotes doubled. Nothing else is quoted.
//! - A header row of English snake_case names, each followed by its Chinese name in
//!   parentheses (`firm_name(企业名称)`); strip from `(` for the machine name.
//! - Amounts as plain decimal text with exactly two decimals (`1000000.00`): no thousands
//!   separators, no currency sign, never a float.
//! - Dates as `YYYY-MM-DD` (China Standard Time business dates); empty when not yet known.
//! - Formula injection guard: a text field that starts with `=`, `+`, `-`, `@`, a tab or a CR
//!   would be run as a formula by a spreadsheet, so it gets a leading `'` (the text shown is
//!   then the original, prefixed with `'`). It applies to the free text that comes from
//!   commands (ids, firm names, bank references, failure reasons), never to the amounts,
//!   dates, seqs and hashes the ledger writes itself. A reader that needs the exact original
//!   text removes one leading `'` from such a field when the character after it is one of
//!   those six; the JSON Lines export always holds the original.
//!
//! `settled_seq` / `settled_hash` are the seq and hash of the record that settled the payout
//! (`payout_confirmed` or `payout_failed`), empty while it is only ordered: an auditor finds
//! that record in the JSON Lines export by its seq and can have its inclusion proved with
//! `fundledger prove inclusion --seq N`.

use std::io::{self, Write};

use chrono::NaiveDate;
use fundledger_projections::{yuan, LedgerState, PaymentRow};

/// UTF-8 byte-order mark: tells Excel and WPS the file is UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
/// RFC 4180 line ending.
pub const CRLF: &str = "\r\n";

/// The header row: `english_name(中文名)`, in column order.
pub const HEADER: [&str; 15] = [
    "payout_id(付款编号)",
    "application_id(申请编号)",
    "provision(政策条款)",
    "measure(政策措施)",
    "firm_uscc(统一社会信用代码)",
    "firm_name(企业名称)",
    "amount_yuan(金额_元)",
    "ordered_on(下达日期)",
    "confirmed_on(确认日期)",
    "value_date(起息日)",
    "bank_reference(银行流水号)",
    "status(状态)",
    "failure_reason(失败原因)",
    "settled_seq(结算记录序号)",
    "settled_hash(结算记录哈希)",
];

/// Writes the BOM, the header and one row per payout; returns the number of payout rows.
pub fn write(state: &LedgerState, writer: &mut impl Write) -> io::Result<usize> {
    writer.write_all(BOM)?;
    let mut line = String::with_capacity(512);
    push_row(&mut line, HEADER.iter().map(|name| Field::Trusted(*name)));
    writer.write_all(line.as_bytes())?;
    let rows = state.payment_rows();
    for row in &rows {
        line.clear();
        push_row(&mut line, fields(row).iter().map(Field::as_ref));
        writer.write_all(line.as_bytes())?;
    }
    Ok(rows.len())
}

/// One cell. Text from commands is guarded against formula injection; what the ledger
/// formats itself (amounts, dates, seqs, hashes, statuses, the header) is trusted.
enum Field<S> {
    Text(S),
    Trusted(S),
}

impl Field<String> {
    fn as_ref(&self) -> Field<&str> {
        match self {
            Field::Text(text) => Field::Text(text),
            Field::Trusted(text) => Field::Trusted(text),
        }
    }
}

fn fields(row: &PaymentRow) -> [Field<String>; 15] {
    let date = |date: Option<NaiveDate>| {
        Field::Trusted(
            date.map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        )
    };
    [
        Field::Text(row.payout_id.clone()),
        Field::Text(row.application_id.clone()),
        Field::Trusted(row.provision.clone()),
        Field::Trusted(row.measure.clone()),
        Field::Text(row.firm.clone()),
        Field::Text(row.firm_name.clone()),
        Field::Trusted(yuan::format(row.amount)),
        date(Some(row.ordered_on)),
        date(row.confirmed_on),
        date(row.value_date),
        Field::Text(row.bank_reference.clone().unwrap_or_default()),
        Field::Trusted(row.status.to_string()),
        Field::Text(row.failure_reason.clone().unwrap_or_default()),
        Field::Trusted(
            row.settled_seq
                .map(|seq| seq.to_string())
                .unwrap_or_default(),
        ),
        Field::Trusted(row.settled_hash.clone().unwrap_or_default()),
    ]
}

/// Appends the fields, comma-separated, and a CRLF.
fn push_row<'a>(line: &mut String, fields: impl Iterator<Item = Field<&'a str>>) {
    for (index, field) in fields.enumerate() {
        if index > 0 {
            line.push(',');
        }
        match field {
            Field::Text(text) => push_field(line, &guard_formula(text)),
            Field::Trusted(text) => push_field(line, text),
        }
    }
    line.push_str(CRLF);
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection
/// list): `=`, `+`, `-`, `@`, tab and carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` with a leading `'` when its first character would start a formula.
pub fn guard_formula(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some(first) if FORMULA_STARTS.contains(&first) => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// RFC 4180: quoted only when it holds a comma, a double quote, CR or LF; quotes doubled.
fn push_field(line: &mut String, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[Field<&str>]) -> String {
        let mut line = String::new();
        push_row(
            &mut line,
            fields.iter().map(|field| match field {
                Field::Text(text) => Field::Text(*text),
                Field::Trusted(text) => Field::Trusted(*text),
            }),
        );
        line
    }

    #[test]
    fn quoting_follows_rfc_4180() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain\r\n"),
            (
                "郑州天枢大模型科技有限公司",
                "郑州天枢大模型科技有限公司\r\n",
            ),
            ("a,b", "\"a,b\"\r\n"),
            ("say \"hi\"", "\"say \"\"hi\"\"\"\r\n"),
            ("two\nlines", "\"two\nlines\"\r\n"),
            ("cr\rhere", "\"cr\rhere\"\r\n"),
            ("", "\r\n"),
            (" spaced ", " spaced \r\n"),
        ];
        for (text, expected) in cases {
            assert_eq!(row(&[Field::Text(text)]), *expected, "{text:?}");
        }
        assert_eq!(
            row(&[Field::Text("a"), Field::Trusted("1.00"), Field::Text("")]),
            "a,1.00,\r\n"
        );
    }

    #[test]
    fn formula_starts_get_a_quote_mark_before_quoting() {
        let cases: &[(&str, &str)] = &[
            ("=1+2", "'=1+2"),
            ("+86 371", "'+86 371"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tX", "'\tX"),
            ("\rX", "\"'\rX\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("a=b", "a=b"),
            ("中=文", "中=文"),
            ("'already", "'already"),
        ];
        for (text, expected) in cases {
            let line = row(&[Field::Text(text)]);
            assert_eq!(line.trim_end_matches("\r\n"), *expected, "{text:?}");
        }
        // What the ledger writes itself is never altered.
        assert_eq!(row(&[Field::Trusted("-1.00")]), "-1.00\r\n");
    }

    #[test]
    fn an_empty_register_is_the_bom_and_the_header() {
        let mut out = Vec::new();
        let rows = write(&LedgerState::default(), &mut out).unwrap_or(usize::MAX);
        assert_eq!(rows, 0);
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(text.starts_with('\u{feff}'));
        assert_eq!(text.matches("\r\n").count(), 1);
        assert!(text.starts_with("\u{feff}payout_id(付款编号),application_id(申请编号),"));
        assert!(text.ends_with("settled_hash(结算记录哈希)\r\n"));
    }
}
