//! Hostile input against every route of the HTTP service: deep nesting, huge numbers, bad
//! amounts, odd Unicode, invalid UTF-8, oversized bodies, wrong content types, duplicated keys,
//! trailing garbage, odd query strings and path segments, wrong methods and bad Authorization
//! headers — first a fixed list per route, then seeded random bodies and requests, then raw
//! bytes over a real socket.
//!
//! The routes come from the live `/openapi.json` (built from the same table as the router), so
//! a new route is thrown at without editing this file.
//!
//! What every answer must be: never a 5xx; an error is a 4xx whose body is JSON with a `code`
//! of DESIGN §7 or of ARCHITECTURE's "HTTP answers that are not command outcomes", and whose
//! status is the status of that code; cases marked `Refused` must be refused (4xx) and append
//! nothing. The ledger's head moves only by the seqs an answer reports as new (an accepted
//! command, or a submission refused by a rule, which is recorded). After each batch of cases the
//! service still answers `/healthz` and accepts a valid command.
//!
//! `HOSTILE_SEED=N` replays one random run (the seed is printed); `HOSTILE_CASES=N` changes
//! the number of random cases (default [`RANDOM_CASES_DEFAULT`]); `HOSTILE_VERBOSE=1` prints
//! one line per case.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use fundledger_ledger::Code;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use support::*;

/// Random cases per run unless `HOSTILE_CASES` says otherwise.
const RANDOM_CASES_DEFAULT: usize = 3_000;
/// Cases between two liveness checks (health plus one valid command).
const LIVENESS_EVERY_CASES: usize = 100;
/// A body well beyond the 1 MiB limit.
const HUGE_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Nesting depth of the deep-nesting bodies.
const DEEP_NESTING: usize = 100_000;
/// Safety limit on one raw socket exchange (not a timing assertion).
const SOCKET_IO_LIMIT: Duration = Duration::from_secs(60);

/// Codes an error answer may carry beyond DESIGN §7 (ARCHITECTURE.md, "HTTP answers that are
/// not command outcomes"), with their statuses.
const EXTRA_CODES: [(&str, u16); 6] = [
    ("not_found", 404),
    ("method_not_allowed", 405),
    ("busy", 503),
    ("timeout", 503),
    ("unavailable", 503),
    ("internal", 500),
];

/// The statuses a documented code may be answered with, or `None` for an undocumented code.
fn statuses_of(code: &str) -> Option<Vec<u16>> {
    if let Some(code) = Code::parse(code) {
        let mut statuses = vec![code.http_status()];
        if code == Code::Malformed {
            // 413 (body too large) and 415 (not JSON) carry `malformed` (ARCHITECTURE.md).
            statuses.extend([413, 415]);
        }
        return Some(statuses);
    }
    EXTRA_CODES
        .iter()
        .find(|(name, _)| *name == code)
        .map(|(_, status)| vec![*status])
}

// ---------------------------------------------------------------------------------------------
// Cases and how they are judged

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Must be refused with a 4xx and append nothing.
    Refused,
    /// Must be refused with exactly this code and append nothing.
    Code(&'static str),
    /// May be accepted or refused (by any documented 4xx); never a 5xx.
    Survives,
}

#[derive(Clone, Debug)]
struct Case {
    label: String,
    method: Method,
    uri: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    expect: Expect,
}

impl Case {
    fn new(label: impl Into<String>, method: Method, uri: impl Into<String>) -> Case {
        Case {
            label: label.into(),
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
            expect: Expect::Survives,
        }
    }

    fn get(label: impl Into<String>, uri: impl Into<String>) -> Case {
        Case::new(label, Method::GET, uri)
    }

    /// A POST of `body` to /v1/commands as `application/json` with `token`.
    fn command(label: impl Into<String>, token: Option<&str>, body: Vec<u8>) -> Case {
        Case::new(label, Method::POST, "/v1/commands")
            .token(token)
            .content_type("application/json")
            .body(body)
    }

    fn token(self, token: Option<&str>) -> Case {
        match token {
            Some(token) => self.header_bytes(header::AUTHORIZATION, format!("Bearer {token}")),
            None => self,
        }
    }

    fn content_type(self, value: &str) -> Case {
        self.header_bytes(header::CONTENT_TYPE, value)
    }

    fn header_bytes(mut self, name: HeaderName, value: impl AsRef<[u8]>) -> Case {
        let value = HeaderValue::from_bytes(value.as_ref()).unwrap_or_else(|error| {
            panic!(
                "{}: a header value the client can send: {error}",
                self.label
            )
        });
        self.headers.retain(|(existing, _)| *existing != name);
        self.headers.push((name, value));
        self
    }

    fn without_header(mut self, name: HeaderName) -> Case {
        self.headers.retain(|(existing, _)| *existing != name);
        self
    }

    fn body(mut self, body: Vec<u8>) -> Case {
        self.body = body;
        self
    }

    fn expect(mut self, expect: Expect) -> Case {
        self.expect = expect;
        self
    }

    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    fn is_command_route(&self) -> bool {
        self.method == Method::POST && self.path() == "/v1/commands"
    }

    fn request(&self) -> Request<Body> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Body::from(self.body.clone()))
            .unwrap_or_else(|error| panic!("{}: not a request: {error}", self.label))
    }
}

/// What the runs saw, for the summary line.
#[derive(Default)]
struct Tally {
    cases: usize,
    by_status: BTreeMap<u16, usize>,
    by_code: BTreeMap<String, usize>,
    records_appended: u64,
}

impl Tally {
    fn summary(&self) -> String {
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        format!(
            "{} cases; statuses {}; {} distinct codes; {} records appended by accepted or recorded commands",
            self.cases,
            statuses.join(" "),
            self.by_code.len(),
            self.records_appended
        )
    }
}

/// Checks one answer; panics naming the case on any breach. Returns the number of records the
/// answer reports as newly appended.
fn judge(case: &Case, status: u16, body: &[u8], head_before: u64, head_after: u64) -> u64 {
    let label = &case.label;
    let text = || String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
    assert!(
        status < 500,
        "{label}: answered {status}, a server error: {}",
        text()
    );
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if status >= 400 {
        let json = json
            .as_ref()
            .unwrap_or_else(|| panic!("{label}: {status} without a JSON body: {:?}", text()));
        let code = json["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{label}: {status} without a code: {}", text()));
        let statuses = statuses_of(code)
            .unwrap_or_else(|| panic!("{label}: {status} with an undocumented code {code:?}"));
        assert!(
            statuses.contains(&status),
            "{label}: code {code} answered with {status}, not {statuses:?}"
        );
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{label}: {status} {code} without a message"
        );
        if case.is_command_route() && !matches!(code, "not_found" | "method_not_allowed") {
            assert_eq!(
                json["outcome"],
                "rejected",
                "{label}: a refused command is answered with the outcome object: {}",
                text()
            );
        }
    } else {
        assert!(
            (200..300).contains(&status),
            "{label}: answered {status}: {}",
            text()
        );
    }
    match case.expect {
        Expect::Survives => {}
        Expect::Refused => assert!(
            (400..500).contains(&status),
            "{label}: should be refused, answered {status}: {}",
            text()
        ),
        Expect::Code(expected) => {
            let code = json.as_ref().and_then(|j| j["code"].as_str());
            assert_eq!(
                code,
                Some(expected),
                "{label}: answered {status}: {}",
                text()
            );
        }
    }
    // Nothing lost, nothing extra: the head moved exactly by the seqs this answer reports as new.
    let reported_new: Vec<u64> = match (&json, case.is_command_route()) {
        (Some(json), true) => json["seqs"]
            .as_array()
            .map(|seqs| {
                seqs.iter()
                    .filter_map(Value::as_u64)
                    .filter(|seq| *seq > head_before)
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let expected_new: Vec<u64> = (head_before + 1..=head_after).collect();
    assert_eq!(
        reported_new,
        expected_new,
        "{label}: the head moved {head_before} → {head_after} but the answer ({status}) reports new seqs {reported_new:?}: {}",
        text()
    );
    if !reported_new.is_empty() {
        let json = json
            .as_ref()
            .map(|j| (j["outcome"].clone(), j["code"].clone()));
        let recorded_refusal = status == 422;
        assert!(
            status == 200 || recorded_refusal,
            "{label}: {status} appended records: {json:?}"
        );
        assert!(
            !matches!(case.expect, Expect::Refused | Expect::Code(_)),
            "{label}: should append nothing, appended {reported_new:?} ({status})"
        );
    }
    reported_new.len() as u64
}

struct Thrower {
    h: Harness,
    tally: Tally,
    since_liveness: usize,
    /// `HOSTILE_VERBOSE=1`: one line per case (status, code, records appended, label).
    verbose: bool,
}

impl Thrower {
    async fn new() -> Thrower {
        let h = harness_with(principals_with_government()).await;
        seed_world(&h.app).await;
        Thrower {
            h,
            tally: Tally::default(),
            since_liveness: 0,
            verbose: std::env::var_os("HOSTILE_VERBOSE").is_some(),
        }
    }

    fn head(&self) -> u64 {
        self.h.ledger.snapshot().last_seq
    }

    async fn throw(&mut self, case: &Case) {
        let before = self.head();
        let reply = send(&self.h.app, case.request()).await;
        let after = self.head();
        let status = reply.status.as_u16();
        let appended = judge(case, status, &reply.bytes, before, after);
        if self.verbose {
            let json = serde_json::from_slice::<Value>(&reply.bytes).unwrap_or_default();
            let code = json["code"].as_str().unwrap_or_default();
            let message = json["message"].as_str().unwrap_or_default();
            println!(
                "{status} {code:<24} +{appended} {:.160} → {message:.160}",
                case.label
            );
        }
        self.tally.cases += 1;
        *self.tally.by_status.entry(status).or_default() += 1;
        if status >= 400 {
            if let Some(code) = reply.json()["code"].as_str() {
                *self.tally.by_code.entry(code.to_string()).or_default() += 1;
            }
        }
        self.tally.records_appended += appended;
        self.since_liveness += 1;
        if self.since_liveness >= LIVENESS_EVERY_CASES {
            self.still_alive(&case.label).await;
        }
    }

    /// `/healthz` answers with the head, and valid commands are accepted with the next seqs:
    /// the built-in catalogue registered again (a random case may have registered a mangled
    /// one that still loads), then a budget allocated under it.
    async fn still_alive(&mut self, after: &str) {
        self.since_liveness = 0;
        let head = self.head();
        let health = get(&self.h.app, "/healthz", None).await;
        assert_eq!(health.status.as_u16(), 200, "after {after}: /healthz");
        assert_eq!(
            health.json()["head_seq"],
            head,
            "after {after}: /healthz head"
        );
        let commands = [
            (
                ADMIN,
                cmd("register_policy", json!({"catalogue": catalogue_text()})),
            ),
            (FIN_WANG, allocate("M5", 2024, "1.00")),
        ];
        for (offset, (token, command)) in (1..).zip(commands) {
            let reply = post(&self.h.app, token, &command).await;
            assert_eq!(
                reply.status.as_u16(),
                200,
                "after {after}: a valid command: {}",
                reply.text()
            );
            assert_eq!(
                reply.json()["seqs"],
                json!([head + offset]),
                "after {after}"
            );
            assert_eq!(self.head(), head + offset, "after {after}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world the commands are thrown at

/// support::seed (A-1 approved and paid, B-1 submitted) plus: A-2 approved and partly paid
/// (P-2 ordered, not confirmed), A-3 reviewed, G-1 a case-by-case project awaiting its
/// endorsement, C-1 a clawback on A-1 with money outstanding.
async fn seed_world(app: &axum::Router) {
    seed(app).await;
    accept(app, APP_A, &voucher("A-2", &firm_a(), "50000", "500000")).await;
    accept(app, REVIEWER, &review("A-2")).await;
    accept(app, APPROVER, &approve("A-2", "50000")).await;
    accept(app, FIN_WANG, &order_payout("P-2", "A-2", "100.00")).await;
    accept(app, APP_A, &voucher("A-3", &firm_a(), "20000", "200000")).await;
    accept(app, REVIEWER, &review("A-3")).await;
    accept(app, APP_A, &case_by_case("G-1")).await;
    accept(app, FIN_WANG, &clawback("C-1", "A-1", "10000.00")).await;
    accept(app, FIN_WANG, &allocate("M6", 2024, "20000000.00")).await;
    accept(
        app,
        APP_A,
        &submission(
            "L-1",
            &firm_a(),
            "M6.key_lab_lead",
            None,
            json!({"recognition_date": "2024-05-30"}),
        ),
    )
    .await;
    accept(app, REVIEWER, &review("L-1")).await;
    accept(app, APPROVER, &approve("L-1", "5000000.00")).await;
}

fn submission(
    application_id: &str,
    uscc: &str,
    provision: &str,
    amount: Option<&str>,
    basis: Value,
) -> Value {
    let mut fields = json!({
        "application_id": application_id,
        "firm": {"uscc": uscc, "name": "郑州测试企业"},
        "provision": provision,
        "fiscal_year": 2024,
        "basis": basis,
    });
    if let Some(amount) = amount {
        fields["amount"] = json!(amount);
    }
    cmd("submit_application", fields)
}

fn case_by_case(application_id: &str) -> Value {
    cmd(
        "submit_application",
        json!({
            "application_id": application_id,
            "firm": {"uscc": firm_a(), "name": "郑州测试企业甲"},
            "provision": "M4.case_by_case",
            "fiscal_year": 2024,
            "amount": "20000000.00",
            "basis": {"project_id": format!("XM-{application_id}")},
        }),
    )
}

fn clawback(clawback_id: &str, application_id: &str, amount: &str) -> Value {
    cmd(
        "order_clawback",
        json!({"clawback_id": clawback_id, "application_id": application_id,
               "amount": amount, "reason": "未按约定使用"}),
    )
}

fn catalogue_text() -> &'static str {
    include_str!("../../policy/catalogue/zhengzhou-2024-62.toml")
}

/// One valid command of every type (valid in the seeded world, with fresh ids), each with the
/// token of a principal allowed to send it.
fn templates(fresh: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            ADMIN,
            cmd("register_policy", json!({"catalogue": catalogue_text()})),
        ),
        (FIN_WANG, allocate("M2", 2024, "1000.00")),
        (
            APP_A,
            voucher(&format!("R-{fresh}"), &firm_a(), "100.00", "1000.00"),
        ),
        (
            APP_A,
            submission(
                &format!("RL-{fresh}"),
                &firm_a(),
                "M6.key_lab_programme",
                Some("1000.00"),
                json!({"lab": "L-1", "rd_spend": "100000.00"}),
            ),
        ),
        (
            APP_A,
            submission(
                &format!("RS-{fresh}"),
                &firm_a(),
                "M7.scenario_project",
                Some("1000.00"),
                json!({"actual_investment": "10000.00"}),
            ),
        ),
        (
            APP_B,
            submission(
                &format!("RF-{fresh}"),
                &firm_b(),
                "M6.key_lab_cobuilder",
                None,
                json!({"recognition_date": "2024-05-01"}),
            ),
        ),
        (
            APP_B,
            submission(
                &format!("RE-{fresh}"),
                &firm_b(),
                "M10.event",
                Some("1000.00"),
                json!({"event_name": "郑州人工智能大会"}),
            ),
        ),
        (REVIEWER, review("B-1")),
        (
            GOVERNMENT,
            cmd(
                "endorse_application",
                json!({"application_id": "G-1", "note": "同意"}),
            ),
        ),
        (APPROVER, approve("A-3", "20000.00")),
        (
            REVIEWER,
            cmd(
                "reject_application",
                json!({"application_id": "B-1", "reason": "材料不全"}),
            ),
        ),
        (
            APP_B,
            cmd("withdraw_application", json!({"application_id": "B-1"})),
        ),
        (
            FIN_ZHAO,
            order_payout(&format!("RP-{fresh}"), "A-2", "1.00"),
        ),
        (FIN_ZHAO, confirm_payout("P-2")),
        (
            FIN_ZHAO,
            cmd(
                "fail_payout",
                json!({"payout_id": "P-2", "reason": "账户冻结"}),
            ),
        ),
        (FIN_WANG, clawback(&format!("RC-{fresh}"), "A-1", "1.00")),
        (
            FIN_ZHAO,
            cmd(
                "record_repayment",
                json!({"clawback_id": "C-1", "amount": "1.00", "bank_reference": "BANK-R"}),
            ),
        ),
    ]
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}

/// `value` serialised with the string `"@@HOSTILE@@"` replaced by raw `text` (which need not be
/// valid JSON or UTF-8).
fn splice(value: &Value, raw: &[u8]) -> Vec<u8> {
    let text = to_bytes(value);
    let marker = b"\"@@HOSTILE@@\"";
    let Some(at) = text.windows(marker.len()).position(|w| w == marker) else {
        panic!("no marker in {value}");
    };
    let mut out = text[..at].to_vec();
    out.extend_from_slice(raw);
    out.extend_from_slice(&text[at + marker.len()..]);
    out
}

const MARK: &str = "@@HOSTILE@@";

// ---------------------------------------------------------------------------------------------
// Hostile material

/// Amount strings that are not a positive amount of yuan with at most two decimals, or beyond
/// any budget: each must be `invalid_amount`.
const BAD_AMOUNTS: [&str; 30] = [
    "",
    "0",
    "0.00",
    "-0",
    "-0.00",
    "-1.00",
    "-100",
    "0.001",
    "1000.001",
    "100.000",
    "1e400",
    "1E3",
    "18446744073709551616",
    "99999999999999999999.99",
    "999999999999999999999999999999",
    "79228162514264337593543950336",
    "1000000000000.01",
    " 100",
    "100 ",
    "+100",
    "1,000.00",
    "１００",
    "١٠٠",
    "NaN",
    "Infinity",
    "0x64",
    "1-1",
    "--1",
    "1..0",
    "100\u{0}",
];

/// Dates no calendar holds, or at chrono's limits, or not in `YYYY-MM-DD`.
const ODD_DATES: [&str; 14] = [
    "0000-01-01",
    "-262143-01-01",
    "+262142-12-31",
    "262142-12-31",
    "9999-12-31",
    "2024-02-30",
    "2024-13-01",
    "2024-00-10",
    "20240601",
    "2024-06-01T00:00:00Z",
    "2024-6-1",
    "１９９９-01-01",
    "2024-06-01\u{0}",
    "1970-01-01",
];

/// Amounts that are not strings (raw JSON): each must be `malformed`.
const NUMERIC_AMOUNTS: [&str; 10] = [
    "100",
    "100.50",
    "1e400",
    "18446744073709551616",
    "99999999999999999999.99",
    "-1",
    "0",
    "true",
    "[\"100\"]",
    "{\"yuan\":\"100\"}",
];

/// Fiscal years that are not plausible years as JSON (raw): each must be refused.
const BAD_YEARS: [&str; 10] = [
    "1e400",
    "18446744073709551616",
    "99999999999999999999.99",
    "-1",
    "0",
    "2024.5",
    "\"2024\"",
    "null",
    "-9223372036854775809",
    "2147483648",
];

/// Strings that are odd but valid JSON strings (Rust text, serialised properly).
fn odd_strings() -> Vec<String> {
    vec![
        String::new(),
        " ".to_string(),
        "\u{0}".to_string(),
        "A-\u{0}-1".to_string(),
        "\u{202E}1-A\u{202C}".to_string(),
        "e\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}".repeat(500),
        "😀🧧💰".to_string(),
        "𠀀𠀁𪚥".to_string(),
        "\u{FEFF}A-1".to_string(),
        "A-1\u{200B}".to_string(),
        "../../etc/passwd".to_string(),
        "<script>alert(1)</script>".to_string(),
        "'; DROP TABLE records; --".to_string(),
        "=HYPERLINK(\"http://x\")".to_string(),
        "%s%n%x".to_string(),
        "\\\"\n\r\t".to_string(),
        "A".repeat(10 * 1024),
        "é".repeat(50 * 1024),
        "\u{10FFFF}\u{FFFE}\u{FFFF}".to_string(),
        "\u{1F}\u{7F}\u{85}".to_string(),
    ]
}

/// Raw JSON text that is not valid JSON, or valid JSON serde may not take (lone surrogates,
/// numbers beyond f64, control characters inside strings, invalid UTF-8): spliced into a body,
/// each makes it unreadable.
fn unreadable_tokens() -> Vec<Vec<u8>> {
    let mut tokens: Vec<Vec<u8>> = [
        "\"\\ud800\"",
        "\"\\udfff\"",
        "\"\\ud800\\u0041\"",
        "\"\\udc00\\ud800\"",
        "\"A-\\ud83d\"",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "0x10",
        "01",
        "+1",
        ".5",
        "1.",
        "\"unterminated",
        "\"tab\there\"",
        "\"nul\u{0}here\"",
        "tru",
        "nul",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "'single'",
        "\"\\x41\"",
        "\"\\u12\"",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    tokens.push(b"\"\xff\xfe\"".to_vec());
    tokens.push(b"\"\xc0\x80\"".to_vec());
    tokens.push(b"\"\xed\xa0\x80\"".to_vec());
    tokens.push(b"\"\xf4\x90\x80\x80\"".to_vec());
    tokens.push(b"\"\x80\"".to_vec());
    tokens.push("[".repeat(200).into_bytes());
    tokens.push(format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes());
    tokens
}

/// Raw JSON that is valid and readable but hostile: huge and tiny numbers, deep-but-legal
/// nesting, duplicate keys, paired surrogates.
fn readable_tokens() -> Vec<Vec<u8>> {
    [
        "18446744073709551616",
        "-9223372036854775809",
        "99999999999999999999.99",
        "1e308",
        "-0",
        "0.001",
        "5e-324",
        "null",
        "true",
        "[]",
        "{}",
        "\"\\ud83d\\ude00\"",
        "\"\\u0000\"",
        "{\"a\":1,\"a\":2}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .chain(std::iter::once(
        format!("{}1{}", "[".repeat(120), "]".repeat(120)).into_bytes(),
    ))
    .collect()
}

/// Tokens, as `Authorization` header values (bytes), that name no principal.
fn bad_authorizations() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Bearer    ".to_vec(),
        b"Bearer not-a-token".to_vec(),
        format!("Bearer {}", token_hash_hex(FIN_WANG)).into_bytes(),
        format!("Basic {FIN_WANG}").into_bytes(),
        format!("Token {FIN_WANG}").into_bytes(),
        format!("Bearer {FIN_WANG} {FIN_WANG}").into_bytes(),
        format!("Bearer\t{FIN_WANG}").into_bytes(),
        format!("Bearer {FIN_WANG}x").into_bytes(),
        format!("Bearer {}", &FIN_WANG[..FIN_WANG.len() - 1]).into_bytes(),
        format!("Bearer {}", "x".repeat(1025)).into_bytes(),
        format!("Bearer {}", "x".repeat(100 * 1024)).into_bytes(),
        b"Bearer \xff\xfe\x80".to_vec(),
        format!("Bearer {}", FIN_WANG.to_uppercase()).into_bytes(),
        "Bearer tök-fin-wang".as_bytes().to_vec(),
    ]
}

fn token_hash_hex(token: &str) -> String {
    fundledger_api::token_hash_hex(token)
}

/// Every byte except the unreserved characters of RFC 3986, percent-encoded.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Path segments (already percent-encoded) that name nothing the ledger holds.
fn hostile_segments() -> Vec<String> {
    let mut segments: Vec<String> = [
        "%00",
        "%FF",
        "%FF%FE",
        "%C0%80",
        "%ED%A0%80",
        "%E2%80%AE1-A",
        "%F0%9F%98%80",
        "..",
        "%2E%2E",
        "%2F",
        "a%2Fb",
        "%25",
        "%",
        "%zz",
        "-1",
        "0",
        "1e9",
        "18446744073709551616",
        "99999999999999999999.99",
        "1.5",
        "%20",
        "NaN",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    segments.push("A".repeat(10 * 1024));
    segments.push(percent_encode("é".repeat(3 * 1024).as_bytes()));
    segments.push(percent_encode("e\u{301}\u{302}\u{303}".as_bytes()));
    segments.push(percent_encode("A-1\u{0}".as_bytes()));
    segments
}

/// Query strings (already encoded) of every kind; on routes that take no query they are
/// ignored, so they are judged only as surviving.
fn hostile_queries() -> Vec<String> {
    let mut queries: Vec<String> = [
        "after=-1",
        "after=1e9",
        "after=18446744073709551615",
        "after=18446744073709551616",
        "after=abc",
        "after=",
        "limit=1e9",
        "limit=0",
        "limit=-5",
        "limit=1001",
        "limit=1000",
        "limit=1&limit=2",
        "old=5&new=2",
        "old=0",
        "old=-1",
        "old=1&new=99999999",
        "new=18446744073709551616",
        "size=-1",
        "size=0",
        "size=1e9",
        "x=1",
        "%FF=%FE",
        "%",
        "&&&",
        "=",
        "a[b]=c",
        "after=%00",
        "after=1%00",
        "limit=%E2%80%AE5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    queries.push(format!("after={}", "9".repeat(10 * 1024)));
    queries.push(format!("x={}", "A".repeat(10 * 1024)));
    queries.push(
        (0..500)
            .map(|i| format!("k{i}={i}"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    queries
}

// ---------------------------------------------------------------------------------------------
// The routes, from /openapi.json

#[derive(Clone, Debug)]
struct Route {
    method: Method,
    /// `/v1/firms/{uscc}`
    template: String,
    authenticated: bool,
    path_params: Vec<String>,
    query_params: Vec<String>,
    /// Query parameters without which the route answers 400.
    required_query: Vec<String>,
    takes_body: bool,
}

impl Route {
    /// The path with every parameter replaced by `value(name)`.
    fn fill(&self, value: impl Fn(&str) -> String) -> String {
        let mut path = self.template.clone();
        for name in &self.path_params {
            path = path.replace(&format!("{{{name}}}"), &value(name));
        }
        path
    }

    /// A path naming things the seeded world holds.
    fn valid_path(&self) -> String {
        let path = self.fill(valid_param);
        if self.required_query.is_empty() {
            return path;
        }
        let query: Vec<String> = self
            .required_query
            .iter()
            .map(|name| format!("{name}={}", valid_param(name)))
            .collect();
        format!("{path}?{}", query.join("&"))
    }
}

fn valid_param(name: &str) -> String {
    match name {
        "uscc" => firm_a(),
        "id" => "A-1".to_string(),
        "seq" => "1".to_string(),
        _ => "1".to_string(),
    }
}

async fn routes(app: &axum::Router) -> Vec<Route> {
    let reply = get(app, "/openapi.json", None).await;
    assert_eq!(reply.status.as_u16(), 200);
    let document = reply.json();
    let paths = document["paths"]
        .as_object()
        .expect("/openapi.json has paths");
    let mut routes = Vec::new();
    for (template, methods) in paths {
        let methods = methods.as_object().expect("each path has methods");
        for (method, operation) in methods {
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let names = |location: &str| -> Vec<String> {
                params
                    .iter()
                    .filter(|p| p["in"] == location)
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect()
            };
            routes.push(Route {
                method: method.to_ascii_uppercase().parse().expect("an HTTP method"),
                template: template.clone(),
                authenticated: operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()),
                path_params: names("path"),
                query_params: names("query"),
                required_query: params
                    .iter()
                    .filter(|p| p["in"] == "query" && p["required"] == true)
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect(),
                takes_body: operation.get("requestBody").is_some(),
            });
        }
    }
    // The document and the router come from one table; check they agree on what exists.
    let table = fundledger_api::routes::route_docs();
    assert_eq!(routes.len(), table.len(), "/openapi.json lists every route");
    routes
}

/// Methods a client may send that a route does not take.
fn other_methods(routes: &[Route], template: &str) -> Vec<Method> {
    let taken: Vec<&Method> = routes
        .iter()
        .filter(|r| r.template == template)
        .map(|r| &r.method)
        .collect();
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::from_bytes(b"FROB").expect("an extension method"),
    ]
    .into_iter()
    .filter(|m| !taken.contains(&m))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The fixed cases

/// Requests at every route: wrong methods, bad tokens, odd path segments and query strings,
/// bodies where none is expected.
fn route_cases(routes: &[Route]) -> Vec<Case> {
    let mut cases = Vec::new();
    for route in routes {
        let name = format!("{} {}", route.method, route.template);
        let valid = route.valid_path();
        let token = route.authenticated.then_some(AUDITOR);
        for method in other_methods(routes, &route.template) {
            cases.push(
                Case::new(format!("{name}: method {method}"), method, valid.clone())
                    .token(Some(FIN_WANG))
                    .content_type("application/json")
                    .body(b"{}".to_vec())
                    .expect(Expect::Code("method_not_allowed")),
            );
        }
        if route.authenticated {
            for (index, authorization) in bad_authorizations().into_iter().enumerate() {
                let mut case = Case::new(
                    format!("{name}: bad Authorization #{index}"),
                    route.method.clone(),
                    valid.clone(),
                )
                .expect(Expect::Code("unauthorized"));
                if !authorization.is_empty() {
                    case = case.header_bytes(header::AUTHORIZATION, authorization);
                }
                if route.takes_body {
                    let command = allocate("M2", 2024, "1.00");
                    case = case
                        .content_type("application/json")
                        .body(to_bytes(&command));
                }
                cases.push(case);
            }
        }
        for param in &route.path_params {
            for segment in hostile_segments() {
                let path = route.fill(|name| {
                    if name == param {
                        segment.clone()
                    } else {
                        valid_param(name)
                    }
                });
                for token in [token, route.authenticated.then_some(APP_A)] {
                    cases.push(
                        Case::new(
                            format!("{name}: {param} = {:.60} as {token:?}", segment),
                            route.method.clone(),
                            path.clone(),
                        )
                        .token(token)
                        .expect(Expect::Refused),
                    );
                }
            }
        }
        for query in hostile_queries() {
            cases.push(
                Case::new(
                    format!("{name}: query {:.60}", query),
                    route.method.clone(),
                    format!("{}?{query}", route.fill(valid_param)),
                )
                .token(token),
            );
        }
        if !route.takes_body {
            for body in [
                b"{\"command_id\":1}".to_vec(),
                "[".repeat(DEEP_NESTING).into_bytes(),
                b"\xff\xfe\x00".to_vec(),
            ] {
                cases.push(
                    Case::new(
                        format!("{name}: an unexpected body"),
                        route.method.clone(),
                        valid.clone(),
                    )
                    .token(token)
                    .content_type("application/json")
                    .body(body),
                );
            }
        }
    }
    cases.extend(targeted_query_cases());
    cases
}

/// Query strings each of which a route must refuse.
fn targeted_query_cases() -> Vec<Case> {
    let refused = |uri: &str| {
        Case::get(format!("GET {uri}"), uri)
            .token(Some(AUDITOR))
            .expect(Expect::Refused)
    };
    let mut cases: Vec<Case> = [
        "/v1/events?after=-1",
        "/v1/events?after=1e9",
        "/v1/events?after=18446744073709551616",
        "/v1/events?after=abc",
        "/v1/events?limit=1e9",
        "/v1/events?limit=0",
        "/v1/events?limit=-5",
        "/v1/events?limit=1001",
        "/v1/events?limit=18446744073709551616",
        "/v1/events?colour=red",
        "/v1/proofs/consistency",
        "/v1/proofs/consistency?old=5&new=2",
        "/v1/proofs/consistency?old=0",
        "/v1/proofs/consistency?old=0&new=0",
        "/v1/proofs/consistency?old=-1",
        "/v1/proofs/consistency?old=1e9",
        "/v1/proofs/consistency?old=1&new=99999999",
        "/v1/proofs/consistency?old=18446744073709551615",
        "/v1/proofs/consistency?old=abc&new=2",
        "/v1/proofs/inclusion/0",
        "/v1/proofs/inclusion/-1",
        "/v1/proofs/inclusion/1e9",
        "/v1/proofs/inclusion/99999999999999999999",
        "/v1/proofs/inclusion/18446744073709551615",
        "/v1/proofs/inclusion/1?size=0",
        "/v1/proofs/inclusion/1?size=-1",
        "/v1/proofs/inclusion/1?size=99999",
        "/v1/proofs/inclusion/1?size=1e9",
        "/v1/proofs/inclusion/1?seq=2",
    ]
    .into_iter()
    .map(refused)
    .collect();
    // Applicants may not read the log at all.
    cases.push(
        Case::get("GET /v1/events as an applicant", "/v1/events?after=-1")
            .token(Some(APP_A))
            .expect(Expect::Refused),
    );
    cases
}

/// Bodies thrown at `POST /v1/commands`, each with what it must get.
fn command_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let valid = || allocate("M2", 2024, "1.00");
    let raw = |label: &str, body: Vec<u8>, expect: Expect| {
        Case::command(label, Some(FIN_WANG), body).expect(expect)
    };
    // Not a command at all.
    for (label, body) in [
        ("empty body", Vec::new()),
        ("whitespace", b"  \r\n\t ".to_vec()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("a number", b"1".to_vec()),
        ("a string", b"\"allocate_budget\"".to_vec()),
        ("an array", b"[]".to_vec()),
        (
            "an array of a command",
            format!("[{}]", valid()).into_bytes(),
        ),
        ("an empty object", b"{}".to_vec()),
        ("a NUL byte", vec![0]),
        ("deep [", "[".repeat(DEEP_NESTING).into_bytes()),
        (
            "deep [ ]",
            format!("{}{}", "[".repeat(DEEP_NESTING), "]".repeat(DEEP_NESTING)).into_bytes(),
        ),
        ("deep {\"a\":", "{\"a\":".repeat(DEEP_NESTING).into_bytes()),
        (
            "deep {\"a\": }",
            format!(
                "{}1{}",
                "{\"a\":".repeat(DEEP_NESTING),
                "}".repeat(DEEP_NESTING)
            )
            .into_bytes(),
        ),
        ("a UTF-8 BOM before the command", {
            let mut body = b"\xef\xbb\xbf".to_vec();
            body.extend(to_bytes(&valid()));
            body
        }),
        ("UTF-16LE", {
            to_bytes(&valid())
                .iter()
                .flat_map(|&b| [b, 0])
                .collect::<Vec<u8>>()
        }),
        (
            "invalid UTF-8",
            b"{\"command_id\":\"\xff\xfe\xfd\"}".to_vec(),
        ),
        ("only invalid UTF-8", b"\xff\xfe\xfd\xfc".to_vec()),
    ] {
        cases.push(raw(label, body, Expect::Code("malformed")));
    }
    // Trailing garbage after a valid command.
    for trailer in [
        &b"x"[..],
        b"{}",
        b"\0",
        b"]",
        b",",
        b"\xff",
        b"//comment",
        b"\"",
        b"1",
    ] {
        let mut body = to_bytes(&valid());
        body.extend_from_slice(trailer);
        cases.push(raw(
            &format!("trailing {:?}", String::from_utf8_lossy(trailer)),
            body,
            Expect::Code("malformed"),
        ));
    }
    let mut body = to_bytes(&valid());
    body.extend_from_slice(b" \r\n\t");
    cases.push(raw("trailing whitespace", body, Expect::Survives));
    // Two commands in one body.
    cases.push(raw(
        "two commands in one body",
        [to_bytes(&valid()), to_bytes(&valid())].concat(),
        Expect::Code("malformed"),
    ));
    // Oversized bodies.
    let mut big = valid();
    big["pad"] = json!(" ".repeat(HUGE_BODY_BYTES));
    cases.push(raw("10 MB body", to_bytes(&big), Expect::Code("malformed")));
    cases.push(raw(
        "10 MB of [",
        "[".repeat(HUGE_BODY_BYTES).into_bytes(),
        Expect::Code("malformed"),
    ));
    let mut padded = to_bytes(&valid());
    padded.resize(1024 * 1024 + 1, b' ');
    cases.push(raw(
        "a valid command padded to the limit + 1",
        padded,
        Expect::Code("malformed"),
    ));
    let mut padded = to_bytes(&valid());
    padded.resize(1024 * 1024, b' ');
    cases.push(raw(
        "a valid command padded to the limit",
        padded,
        Expect::Survives,
    ));
    // Content types.
    for content_type in [
        None,
        Some(&b"text/plain"[..]),
        Some(b"application/x-www-form-urlencoded"),
        Some(b"multipart/form-data; boundary=x"),
        Some(b"application/jsonx"),
        Some(b"application/json-seq"),
        Some(b"application/problem+json"),
        Some(b"application/json, text/plain"),
        Some(b"json"),
        Some(b""),
        Some(b"application/j\xffson"),
        Some(b"\xff\xfe"),
    ] {
        let mut case = Case::command(
            format!(
                "content type {:?}",
                content_type.map(String::from_utf8_lossy)
            ),
            Some(FIN_WANG),
            to_bytes(&valid()),
        )
        .expect(Expect::Code("malformed"));
        case = match content_type {
            Some(value) => case.header_bytes(header::CONTENT_TYPE, value),
            None => case.without_header(header::CONTENT_TYPE),
        };
        cases.push(case);
    }
    for content_type in [
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json;;;",
        "  application/json  ",
        "application/json; charset=latin1",
    ] {
        cases.push(
            Case::command(
                format!("content type {content_type:?}"),
                Some(FIN_WANG),
                to_bytes(&valid()),
            )
            .content_type(content_type),
        );
    }
    // Every command type with odd and unreadable values in every field.
    for (token, template) in templates("fixed") {
        let kind = template["type"].as_str().unwrap_or_default().to_string();
        let fields = field_paths(&template);
        if template.get("amount").is_some() {
            for amount in BAD_AMOUNTS {
                let mut command = renew(&template);
                command["amount"] = json!(amount);
                cases.push(
                    Case::command(
                        format!("{kind}: amount {amount:?}"),
                        Some(token),
                        to_bytes(&command),
                    )
                    .expect(Expect::Code("invalid_amount")),
                );
            }
            for amount in NUMERIC_AMOUNTS {
                let mut command = renew(&template);
                command["amount"] = json!(MARK);
                cases.push(
                    Case::command(
                        format!("{kind}: amount as a number {amount}"),
                        Some(token),
                        splice(&command, amount.as_bytes()),
                    )
                    .expect(Expect::Code("malformed")),
                );
            }
        }
        if template.get("fiscal_year").is_some() {
            for year in BAD_YEARS {
                let mut command = renew(&template);
                command["fiscal_year"] = json!(MARK);
                cases.push(
                    Case::command(
                        format!("{kind}: fiscal_year {year}"),
                        Some(token),
                        splice(&command, year.as_bytes()),
                    )
                    .expect(Expect::Refused),
                );
            }
        }
        for path in &fields {
            for token_text in unreadable_tokens() {
                let mut command = renew(&template);
                set_path(&mut command, path, json!(MARK));
                cases.push(
                    Case::command(
                        format!(
                            "{kind}: {} = unreadable {:?}",
                            path.join("."),
                            String::from_utf8_lossy(&token_text[..token_text.len().min(20)])
                        ),
                        Some(token),
                        splice(&command, &token_text),
                    )
                    .expect(Expect::Code("malformed")),
                );
            }
            for token_text in readable_tokens() {
                let mut command = renew(&template);
                set_path(&mut command, path, json!(MARK));
                cases.push(Case::command(
                    format!(
                        "{kind}: {} = {:?}",
                        path.join("."),
                        String::from_utf8_lossy(&token_text[..token_text.len().min(20)])
                    ),
                    Some(token),
                    splice(&command, &token_text),
                ));
            }
            if path.last().is_some_and(|key| key.ends_with("date")) {
                for date in ODD_DATES {
                    let mut command = renew(&template);
                    set_path(&mut command, path, json!(date));
                    cases.push(Case::command(
                        format!("{kind}: {} = {date:?}", path.join(".")),
                        Some(token),
                        to_bytes(&command),
                    ));
                }
            }
            if path.as_slice() == ["catalogue"] {
                continue; // Odd strings as the catalogue come below.
            }
            for odd in odd_strings() {
                let mut command = renew(&template);
                set_path(&mut command, path, json!(odd));
                cases.push(Case::command(
                    format!("{kind}: {} = odd {:.24?}", path.join("."), odd),
                    Some(token),
                    to_bytes(&command),
                ));
            }
        }
        // Duplicated keys: the same key twice with different values.
        for path in fields.iter().filter(|p| p.len() == 1) {
            let key = &path[0];
            let mut body = to_bytes(&renew(&template));
            body.pop(); // the closing brace
            body.extend_from_slice(format!(",\"{key}\":\"@dup\"}}").as_bytes());
            cases.push(Case::command(
                format!("{kind}: duplicated key {key}"),
                Some(token),
                body,
            ));
        }
        // A missing field, an unknown field, a forged actor and time.
        for path in &fields {
            let mut command = renew(&template);
            remove_path(&mut command, path);
            cases.push(Case::command(
                format!("{kind}: without {}", path.join(".")),
                Some(token),
                to_bytes(&command),
            ));
        }
        let mut command = renew(&template);
        command["colour"] = json!("red");
        cases.push(
            Case::command(
                format!("{kind}: an unknown field"),
                Some(token),
                to_bytes(&command),
            )
            .expect(Expect::Code("malformed")),
        );
        let mut command = renew(&template);
        command["actor"] = json!({"id": "adm.root", "role": "admin"});
        command["at"] = json!("2099-01-01T00:00:00+08:00");
        cases.push(Case::command(
            format!("{kind}: a forged actor and time"),
            Some(token),
            to_bytes(&command),
        ));
        // The wrong principal: auditors write nothing.
        cases.push(
            Case::command(
                format!("{kind}: as an auditor"),
                Some(AUDITOR),
                to_bytes(&renew(&template)),
            )
            .expect(Expect::Code("forbidden")),
        );
    }
    // Hostile catalogues: the TOML loader sees them.
    for (label, catalogue, expect) in [
        ("empty", String::new(), Expect::Code("malformed")),
        (
            "garbage",
            "\u{0}\u{1}garbage[[[".to_string(),
            Expect::Code("malformed"),
        ),
        (
            "deep arrays",
            format!("a = {}", "[".repeat(DEEP_NESTING)),
            Expect::Code("malformed"),
        ),
        (
            "deep balanced arrays",
            format!("a = {}1{}", "[".repeat(5_000), "]".repeat(5_000)),
            Expect::Code("malformed"),
        ),
        (
            "deep inline tables",
            format!("a = {}", "{ b = ".repeat(DEEP_NESTING)),
            Expect::Code("malformed"),
        ),
        (
            "deep dotted keys",
            format!("{} = 1", vec!["k"; 20_000].join(".")),
            Expect::Code("malformed"),
        ),
        (
            "huge numbers",
            catalogue_text()
                .replacen("\"1000000\"", "\"1e400\"", 1)
                .replacen("\"0.20\"", "\"99999999999999999999999999999.99\"", 1),
            Expect::Code("malformed"),
        ),
        (
            "a negative cap",
            catalogue_text().replacen("\"1000000\"", "\"-1000000\"", 1),
            Expect::Code("malformed"),
        ),
        (
            "truncated",
            catalogue_text()
                .chars()
                .take(catalogue_text().chars().count() / 2)
                .collect::<String>(),
            Expect::Code("malformed"),
        ),
        (
            "900 KB of keys",
            (0..60_000).map(|i| format!("k{i} = {i}\n")).collect(),
            Expect::Code("malformed"),
        ),
    ] {
        let command = cmd("register_policy", json!({"catalogue": catalogue}));
        cases.push(
            Case::command(
                format!("register_policy: catalogue {label}"),
                Some(ADMIN),
                to_bytes(&command),
            )
            .expect(expect),
        );
    }
    // Command ids and types.
    for (label, id, expect) in [
        ("empty", json!(""), Expect::Code("malformed")),
        ("not a UUID", json!("not-a-uuid"), Expect::Code("malformed")),
        (
            "10 KB",
            json!("a".repeat(10 * 1024)),
            Expect::Code("malformed"),
        ),
        ("a number", json!(1), Expect::Code("malformed")),
        ("null", Value::Null, Expect::Code("malformed")),
        ("an object", json!({"uuid": 1}), Expect::Code("malformed")),
        (
            "upper case",
            json!("00000000-0000-4000-8000-0000000000AA"),
            Expect::Survives,
        ),
        (
            "braced",
            json!("{00000000-0000-4000-8000-0000000000ab}"),
            Expect::Survives,
        ),
        (
            "a URN",
            json!("urn:uuid:00000000-0000-4000-8000-0000000000ac"),
            Expect::Survives,
        ),
        (
            "nil",
            json!("00000000-0000-0000-0000-000000000000"),
            Expect::Survives,
        ),
    ] {
        let mut command = valid();
        command["command_id"] = id;
        cases.push(raw(
            &format!("command_id {label}"),
            to_bytes(&command),
            expect,
        ));
    }
    for kind in [
        json!("launch_rocket"),
        json!(""),
        json!("ALLOCATE_BUDGET"),
        json!("allocate_budget\u{0}"),
        json!("x".repeat(10 * 1024)),
        json!(7),
        Value::Null,
        json!(["allocate_budget"]),
    ] {
        let mut command = valid();
        command["type"] = kind.clone();
        cases.push(raw(
            &format!("type {:.30}", kind.to_string()),
            to_bytes(&command),
            Expect::Code("malformed"),
        ));
    }
    // An applicant claiming to be finance is still an applicant.
    let mut command = valid();
    command["actor"] = json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"});
    cases.push(
        Case::command(
            "an applicant's forged actor",
            Some(APP_A),
            to_bytes(&command),
        )
        .expect(Expect::Code("forbidden")),
    );
    cases
}

/// A copy of a template with a fresh command_id and, for the commands that create something,
/// a fresh id for it (else every case after the first accepted one is `duplicate_id`, which is
/// decided before the rules the case is aimed at).
fn renew(template: &Value) -> Value {
    let mut command = template.clone();
    let id = command_id();
    let serial = id.rsplit('-').next().unwrap_or_default().to_string();
    command["command_id"] = json!(id);
    let created = match command["type"].as_str() {
        Some("submit_application") => "application_id",
        Some("order_payout") => "payout_id",
        Some("order_clawback") => "clawback_id",
        _ => return command,
    };
    let prefix = command[created]
        .as_str()
        .and_then(|old| old.split('-').next())
        .unwrap_or("X")
        .to_string();
    command[created] = json!(format!("{prefix}-{serial}"));
    command
}

/// The paths of every leaf field of a command (`["basis","contract_amount"]`), except
/// command_id (its own cases) and type.
fn field_paths(value: &Value) -> Vec<Vec<String>> {
    fn walk(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    prefix.push(key.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => out.push(prefix.clone()),
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out.retain(|path| !matches!(path[0].as_str(), "command_id" | "type"));
    out
}

fn set_path(value: &mut Value, path: &[String], new: Value) {
    let mut slot = value;
    for key in path {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        slot = &mut slot[key.as_str()];
    }
    *slot = new;
}

fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut slot = value;
    for key in parents {
        match slot.get_mut(key.as_str()) {
            Some(next) => slot = next,
            None => return,
        }
    }
    if let Some(map) = slot.as_object_mut() {
        map.remove(last.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// Random cases

/// The seed of this run: `HOSTILE_SEED`, or one drawn from the OS.
fn run_seed() -> u64 {
    match std::env::var("HOSTILE_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HOSTILE_SEED={text:?} is not a u64")),
        Err(_) => rand::random(),
    }
}

fn random_case_count() -> usize {
    match std::env::var("HOSTILE_CASES") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HOSTILE_CASES={text:?} is not a count")),
        Err(_) => RANDOM_CASES_DEFAULT,
    }
}

struct Generator {
    rng: StdRng,
    routes: Vec<Route>,
    /// Command ids used so far, reused now and then (replays and conflicts).
    used_ids: Vec<String>,
    odd: Vec<String>,
    unreadable: Vec<Vec<u8>>,
    readable: Vec<Vec<u8>>,
    segments: Vec<String>,
    queries: Vec<String>,
}

/// Keys of the command vocabulary, for random objects and added fields.
const KEYS: [&str; 24] = [
    "command_id",
    "type",
    "actor",
    "at",
    "catalogue",
    "measure",
    "fiscal_year",
    "amount",
    "application_id",
    "firm",
    "uscc",
    "name",
    "provision",
    "basis",
    "recommend",
    "note",
    "reason",
    "payout_id",
    "bank_reference",
    "value_date",
    "clawback_id",
    "contract_amount",
    "role",
    "id",
];

impl Generator {
    fn new(seed: u64, routes: Vec<Route>) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            routes,
            used_ids: Vec::new(),
            odd: odd_strings(),
            unreadable: unreadable_tokens(),
            readable: readable_tokens(),
            segments: hostile_segments(),
            queries: hostile_queries(),
        }
    }

    fn case(&mut self, index: usize) -> Case {
        let roll = self.rng.gen_range(0..100);
        let mut case = match roll {
            0..=34 => self.mutated_command(),
            35..=49 => self.spliced_command(),
            50..=64 => self.byte_mutated_command(),
            65..=74 => {
                let value = self.random_value(0);
                let label = "a random JSON value".to_string();
                let token = self.token();
                Case::command(label, token, to_bytes(&value)).expect(Expect::Refused)
            }
            75..=89 => self.random_read(),
            _ => self.random_headers(),
        };
        case.label = format!("random case #{index} ({})", case.label);
        case
    }

    fn template(&mut self) -> (&'static str, Value) {
        let fresh = format!("{}", self.rng.gen::<u32>());
        let mut all = templates(&fresh);
        let index = self.rng.gen_range(0..all.len());
        let (token, mut command) = all.swap_remove(index);
        // The id comes from the seed, not the harness's counter (which the other tests of this
        // binary advance too), so that HOSTILE_SEED replays the very same requests.
        let id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            self.rng.gen::<u32>(),
            self.rng.gen::<u64>() & 0xffff_ffff_ffff
        );
        command["command_id"] = json!(id);
        if self.rng.gen_bool(0.05) && !self.used_ids.is_empty() {
            let reused = self.used_ids.choose(&mut self.rng).cloned();
            command["command_id"] = json!(reused);
        }
        if let Some(id) = command["command_id"].as_str() {
            if self.used_ids.len() < 10_000 {
                self.used_ids.push(id.to_string());
            }
        }
        (token, command)
    }

    /// A mostly valid principal, sometimes the wrong one or none.
    fn token(&mut self) -> Option<&'static str> {
        let tokens = [
            Some(ADMIN),
            Some(FIN_WANG),
            Some(FIN_ZHAO),
            Some(REVIEWER),
            Some(APPROVER),
            Some(APP_A),
            Some(APP_B),
            Some(AUDITOR),
            Some(GOVERNMENT),
            Some("tok-nobody"),
            None,
        ];
        *tokens.choose(&mut self.rng).unwrap_or(&None)
    }

    fn maybe_other_token(&mut self, token: &'static str) -> Option<&'static str> {
        if self.rng.gen_bool(0.15) {
            self.token()
        } else {
            Some(token)
        }
    }

    fn random_amount(&mut self) -> String {
        let sign = if self.rng.gen_bool(0.1) { "-" } else { "" };
        let digits = self.rng.gen_range(0..=22);
        let mut text: String = (0..digits)
            .map(|_| char::from(b'0' + self.rng.gen_range(0..10u8)))
            .collect();
        if text.is_empty() {
            text.push('0');
        }
        let decimals = self.rng.gen_range(0..=4);
        if decimals > 0 {
            text.push('.');
            for _ in 0..decimals {
                text.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
            }
        }
        format!("{sign}{text}")
    }

    fn random_string(&mut self) -> String {
        match self.rng.gen_range(0..4) {
            0 => self.odd.choose(&mut self.rng).cloned().unwrap_or_default(),
            1 => self.random_amount(),
            2 => {
                let len = self.rng.gen_range(0..40);
                (0..len)
                    .map(|_| {
                        let c: u32 = match self.rng.gen_range(0..4) {
                            0 => self.rng.gen_range(0..0x80),
                            1 => self.rng.gen_range(0x80..0x800),
                            2 => self.rng.gen_range(0x4e00..0xa000),
                            _ => self.rng.gen_range(0x1_0000..0x11_0000),
                        };
                        char::from_u32(c).unwrap_or('\u{FFFD}')
                    })
                    .collect()
            }
            _ => [
                "A-1", "A-2", "A-3", "B-1", "G-1", "P-1", "P-2", "C-1", "M2", "M4",
            ]
            .choose(&mut self.rng)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        }
    }

    fn random_value(&mut self, depth: usize) -> Value {
        let leaf_only = depth >= 4;
        match self.rng.gen_range(0..if leaf_only { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.rng.gen_bool(0.5)),
            2 => match self.rng.gen_range(0..5) {
                0 => json!(i64::MIN),
                1 => json!(u64::MAX),
                2 => json!(self.rng.gen::<i32>()),
                3 => json!(self.rng.gen::<f64>() * 1e300),
                _ => json!(-0.0),
            },
            3..=5 => json!(self.random_string()),
            6 => {
                let len = self.rng.gen_range(0..5);
                Value::Array((0..len).map(|_| self.random_value(depth + 1)).collect())
            }
            _ => {
                let len = self.rng.gen_range(0..6);
                let mut map = Map::new();
                for _ in 0..len {
                    let key = KEYS.choose(&mut self.rng).copied().unwrap_or("x");
                    map.insert(key.to_string(), self.random_value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }

    /// A valid command with one to three fields removed, replaced or added.
    fn mutated_command(&mut self) -> Case {
        let (token, mut command) = self.template();
        let mutations = self.rng.gen_range(1..=3);
        let mut what = Vec::new();
        for _ in 0..mutations {
            let paths = field_paths(&command);
            let path = paths
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_else(|| vec!["note".to_string()]);
            match self.rng.gen_range(0..6) {
                0 => {
                    remove_path(&mut command, &path);
                    what.push(format!("-{}", path.join(".")));
                }
                1 => {
                    let amount = self.random_amount();
                    set_path(&mut command, &path, json!(amount));
                    what.push(format!("{}={amount}", path.join(".")));
                }
                2 => {
                    let key = KEYS.choose(&mut self.rng).copied().unwrap_or("x");
                    let value = self.random_value(1);
                    command[key] = value;
                    what.push(format!("+{key}"));
                }
                3 => {
                    let kinds = fundledger_ledger::COMMAND_TYPES;
                    let kind = kinds.choose(&mut self.rng).copied().unwrap_or("x");
                    command["type"] = json!(kind);
                    what.push(format!("type={kind}"));
                }
                _ => {
                    let value = self.random_value(1);
                    set_path(&mut command, &path, value);
                    what.push(format!("{}=?", path.join(".")));
                }
            }
        }
        let token = self.maybe_other_token(token);
        Case::command(
            format!("{} {}", command["type"], what.join(" ")),
            token,
            to_bytes(&command),
        )
    }

    /// A valid command with raw hostile JSON text in one field.
    fn spliced_command(&mut self) -> Case {
        let (token, mut command) = self.template();
        let paths = field_paths(&command);
        let path = paths
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_else(|| vec!["note".to_string()]);
        set_path(&mut command, &path, json!(MARK));
        let (raw, expect) = if self.rng.gen_bool(0.5) {
            let raw = self
                .unreadable
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_default();
            (raw, Expect::Code("malformed"))
        } else {
            let raw = self
                .readable
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_default();
            (raw, Expect::Survives)
        };
        Case::command(
            format!(
                "{} {} = {:?}",
                command["type"],
                path.join("."),
                String::from_utf8_lossy(&raw[..raw.len().min(20)])
            ),
            Some(token),
            splice(&command, &raw),
        )
        .expect(expect)
    }

    /// A valid command's bytes flipped, cut, repeated or interleaved with structural bytes.
    fn byte_mutated_command(&mut self) -> Case {
        let (token, command) = self.template();
        let mut bytes = to_bytes(&command);
        let mutations = self.rng.gen_range(1..=4);
        for _ in 0..mutations {
            if bytes.is_empty() {
                break;
            }
            let at = self.rng.gen_range(0..bytes.len());
            match self.rng.gen_range(0..5) {
                0 => bytes[at] ^= 1 << self.rng.gen_range(0..8),
                1 => {
                    let insert = [
                        b'{', b'}', b'[', b']', b'"', b'\\', b',', b':', 0, 0xff, 0xc0, b'-', b'e',
                        b'9',
                    ];
                    let byte = insert.choose(&mut self.rng).copied().unwrap_or(0);
                    bytes.insert(at, byte);
                }
                2 => {
                    let end = (at + self.rng.gen_range(1..16)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => bytes.truncate(at),
                _ => {
                    let end = (at + self.rng.gen_range(1..64)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    let to = self.rng.gen_range(0..=bytes.len());
                    bytes.splice(to..to, copy);
                }
            }
        }
        Case::command(
            format!("{} with {mutations} byte mutations", command["type"]),
            Some(token),
            bytes,
        )
    }

    fn random_read(&mut self) -> Case {
        let route = self
            .routes
            .choose(&mut self.rng)
            .cloned()
            .expect("at least one route");
        let mut path = route.template.clone();
        for name in &route.path_params {
            let value = if self.rng.gen_bool(0.3) {
                valid_param(name)
            } else {
                self.segments
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_default()
            };
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        if self.rng.gen_bool(0.7) {
            let query = if self.rng.gen_bool(0.5) {
                self.queries
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_default()
            } else {
                let name = route
                    .query_params
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_else(|| "x".to_string());
                // Short enough for a URI (the http crate refuses URIs over 64 KiB).
                let value: String = self.random_string().chars().take(2_000).collect();
                format!("{name}={}", percent_encode(value.as_bytes()))
            };
            path = format!("{path}?{query}");
        }
        let method = if self.rng.gen_bool(0.9) {
            route.method.clone()
        } else {
            [
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
                Method::GET,
                Method::POST,
            ]
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or(Method::GET)
        };
        let token = self.token();
        let mut case = Case::new(format!("{method} {path:.80}"), method, path).token(token);
        if route.takes_body {
            let (_, command) = self.template();
            case = case
                .content_type("application/json")
                .body(to_bytes(&command));
        }
        case
    }

    fn random_headers(&mut self) -> Case {
        let (token, command) = self.template();
        let mut case = Case::command(
            format!("{} with odd headers", command["type"]),
            Some(token),
            to_bytes(&command),
        );
        if self.rng.gen_bool(0.5) {
            let authorizations = bad_authorizations();
            let authorization = authorizations
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_default();
            case = if authorization.is_empty() {
                case.without_header(header::AUTHORIZATION)
            } else {
                case.header_bytes(header::AUTHORIZATION, authorization)
            };
            case = case.expect(Expect::Code("unauthorized"));
        } else {
            let content_types: [&[u8]; 5] = [
                b"text/plain",
                b"application/xml",
                b"application/json\xff",
                b"application/json; charset=utf-16",
                b"*/*",
            ];
            let content_type = content_types.choose(&mut self.rng).copied().unwrap_or(b"");
            case = case.header_bytes(header::CONTENT_TYPE, content_type);
        }
        case
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test]
async fn every_route_refuses_hostile_requests() {
    let started = Instant::now();
    let mut thrower = Thrower::new().await;
    thrower
        .h
        .state
        .set_checkpoint(Some("checkpoint note".to_string()));
    let routes = routes(&thrower.h.app).await;
    // Each route answers a valid request, so the hostile ones below reach its handler.
    for route in &routes {
        let mut case = Case::new(
            format!("{} {}: valid", route.method, route.template),
            route.method.clone(),
            route.valid_path(),
        )
        .token(route.authenticated.then_some(AUDITOR));
        if route.takes_body {
            case = case
                .token(Some(FIN_WANG))
                .content_type("application/json")
                .body(to_bytes(&allocate("M2", 2024, "1.00")));
        }
        let reply = send(&thrower.h.app, case.request()).await;
        assert_eq!(
            reply.status.as_u16(),
            200,
            "{}: {}",
            case.label,
            reply.text()
        );
    }
    let cases = [route_cases(&routes), command_cases()].concat();
    for case in &cases {
        thrower.throw(case).await;
    }
    thrower.still_alive("the fixed cases").await;
    println!(
        "hostile fixed cases over {} routes: {} in {:.1} s",
        routes.len(),
        thrower.tally.summary(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn random_bodies_and_requests_never_break_the_service() {
    let started = Instant::now();
    let seed = run_seed();
    let count = random_case_count();
    println!("hostile random cases: seed {seed} (HOSTILE_SEED={seed} replays this run)");
    let mut thrower = Thrower::new().await;
    let routes = routes(&thrower.h.app).await;
    let mut generator = Generator::new(seed, routes);
    for index in 0..count {
        let mut case = generator.case(index);
        case.label = format!("seed {seed}, {}", case.label);
        thrower.throw(&case).await;
    }
    thrower.still_alive("the random cases").await;
    println!(
        "hostile random cases, seed {seed}: {} in {:.1} s",
        thrower.tally.summary(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// Raw bytes over a real socket: what never reaches a handler in process (invalid request
// lines, truncated requests, bodies cut short, oversized headers) meets hyper here.

/// One HTTP/1 answer read off the socket.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    body: Vec<u8>,
}

/// The answers in `raw`, in order, as far as they parse as HTTP/1.
fn parse_answers(mut raw: &[u8]) -> Vec<RawAnswer> {
    let mut answers = Vec::new();
    while let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        let Ok(head) = std::str::from_utf8(&raw[..split]) else {
            break;
        };
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        if !parts.next().unwrap_or_default().starts_with("HTTP/1.") {
            break;
        }
        let Some(status) = parts.next().and_then(|s| s.parse::<u16>().ok()) else {
            break;
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let rest = &raw[split + 4..];
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (body, consumed) = if status < 200 {
            (Vec::new(), 0)
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            let mut at = 0;
            while let Some(end) = rest[at..].windows(2).position(|w| w == b"\r\n") {
                let size_text = String::from_utf8_lossy(&rest[at..at + end]).to_string();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                at += end + 2;
                if size == 0 {
                    at = (at + 2).min(rest.len());
                    break;
                }
                let stop = (at + size).min(rest.len());
                body.extend_from_slice(&rest[at..stop]);
                at = (stop + 2).min(rest.len());
            }
            (body, at)
        } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok())
        {
            let length = length.min(rest.len());
            (rest[..length].to_vec(), length)
        } else {
            (rest.to_vec(), rest.len())
        };
        if status >= 200 {
            // 1xx answers (100 Continue) precede the real one.
            answers.push(RawAnswer { status, body });
        }
        raw = &rest[consumed..];
    }
    answers
}

/// Writes `request` to a fresh connection (write errors ignored: the service may answer and
/// close before reading it all), half-closes it when asked, and reads until the service closes.
async fn exchange(address: std::net::SocketAddr, request: Vec<u8>, half_close: bool) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the service");
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        let _ = writer.write_all(&request).await;
        if half_close {
            let _ = writer.shutdown().await;
        }
        writer
    };
    let read = async move {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes).await;
        bytes
    };
    let (writer, bytes) =
        tokio::time::timeout(SOCKET_IO_LIMIT, async { tokio::join!(write, read) })
            .await
            .expect("the service answers or closes within the safety limit");
    drop(writer);
    bytes
}

/// What a raw case must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RawExpect {
    /// A 4xx JSON answer with this code (the request reached the service).
    Json(u16, &'static str),
    /// Refused by the HTTP layer (hyper) before any handler: its own answer with this status
    /// and an empty body, or (`None`) the connection closed without an answer.
    Protocol(Option<u16>),
    /// Not HTTP/1 at all: anything, as long as the service lives on.
    Anything,
}

struct RawCase {
    label: &'static str,
    request: Vec<u8>,
    half_close: bool,
    expect: RawExpect,
}

fn raw_request(method: &str, path: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} ").into_bytes();
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn raw_cases() -> Vec<RawCase> {
    let bearer = format!("Bearer {FIN_WANG}");
    let auth: (&str, &[u8]) = ("Authorization", bearer.as_bytes());
    let json_type: (&str, &[u8]) = ("Content-Type", b"application/json");
    let command = to_bytes(&allocate("M2", 2024, "1.00"));
    let length = |n: usize| n.to_string();
    let post = |body: &[u8], extra: &[(&str, &[u8])]| {
        let content_length = length(body.len());
        let mut headers = vec![
            auth,
            json_type,
            ("Content-Length", content_length.as_bytes()),
        ];
        headers.extend_from_slice(extra);
        raw_request("POST", b"/v1/commands", &headers, body)
    };
    let huge = vec![b'['; HUGE_BODY_BYTES];
    let mut chunked_huge = Vec::new();
    for chunk in huge.chunks(64 * 1024) {
        chunked_huge.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked_huge.extend_from_slice(chunk);
        chunked_huge.extend_from_slice(b"\r\n");
    }
    chunked_huge.extend_from_slice(b"0\r\n\r\n");
    let mut truncated_body = post(&command, &[]);
    truncated_body.truncate(truncated_body.len() - command.len() / 2);
    let many_headers: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("X-Junk-{i}"), b"1".to_vec()))
        .collect();
    let many_headers: Vec<(&str, &[u8])> = many_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let huge_token = format!("Bearer {}", "x".repeat(100 * 1024));
    vec![
        RawCase {
            label: "invalid UTF-8 body",
            request: post(b"{\"command_id\":\"\xff\xfe\",\"type\":\"\xc0\x80\"}", &[]),
            half_close: false,
            expect: RawExpect::Json(400, "malformed"),
        },
        RawCase {
            label: "10 MB body with Content-Length",
            request: post(&huge, &[]),
            half_close: false,
            expect: RawExpect::Json(413, "malformed"),
        },
        RawCase {
            label: "10 MB chunked body",
            request: {
                let mut request = raw_request(
                    "POST",
                    b"/v1/commands",
                    &[auth, json_type, ("Transfer-Encoding", b"chunked")],
                    b"",
                );
                request.extend_from_slice(&chunked_huge);
                request
            },
            half_close: false,
            expect: RawExpect::Json(413, "malformed"),
        },
        RawCase {
            label: "a body cut short (Content-Length larger than what is sent)",
            request: truncated_body,
            half_close: true,
            expect: RawExpect::Json(400, "malformed"),
        },
        RawCase {
            label: "headers cut short",
            request: b"POST /v1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le".to_vec(),
            half_close: true,
            expect: RawExpect::Protocol(None),
        },
        RawCase {
            label: "a request line cut short",
            request: b"POST /v1/comm".to_vec(),
            half_close: true,
            expect: RawExpect::Protocol(None),
        },
        RawCase {
            label: "a garbage request line",
            request: b"\x00\x01\x02 garbage \xff\r\n\r\n".to_vec(),
            half_close: true,
            expect: RawExpect::Protocol(Some(400)),
        },
        RawCase {
            label: "invalid UTF-8 bytes in the path",
            request: raw_request("GET", b"/v1/firms/\xff\xfe", &[auth], b""),
            half_close: false,
            expect: RawExpect::Protocol(Some(400)),
        },
        RawCase {
            label: "a NUL byte in the path",
            request: raw_request("GET", b"/v1/firms/\x00", &[auth], b""),
            half_close: false,
            expect: RawExpect::Protocol(Some(400)),
        },
        RawCase {
            label: "a 100 KB path",
            request: raw_request(
                "GET",
                format!("/v1/applications/{}", "A".repeat(100 * 1024)).as_bytes(),
                &[auth],
                b"",
            ),
            half_close: false,
            expect: RawExpect::Protocol(Some(414)),
        },
        RawCase {
            label: "a 10 KB id in the path",
            request: raw_request(
                "GET",
                format!("/v1/applications/{}", "A".repeat(10 * 1024)).as_bytes(),
                &[auth],
                b"",
            ),
            half_close: false,
            expect: RawExpect::Json(404, "unknown_application"),
        },
        RawCase {
            label: "invalid UTF-8 in the Authorization header",
            request: raw_request(
                "GET",
                b"/v1/me",
                &[("Authorization", b"Bearer \xff\xfe\x80")],
                b"",
            ),
            half_close: false,
            expect: RawExpect::Json(401, "unauthorized"),
        },
        RawCase {
            label: "a 100 KB Authorization header",
            request: raw_request(
                "GET",
                b"/v1/me",
                &[("Authorization", huge_token.as_bytes())],
                b"",
            ),
            half_close: false,
            expect: RawExpect::Json(401, "unauthorized"),
        },
        RawCase {
            label: "10,000 headers",
            request: raw_request("GET", b"/v1/me", &many_headers, b""),
            half_close: false,
            expect: RawExpect::Protocol(Some(431)),
        },
        RawCase {
            label: "Content-Length -1",
            request: raw_request(
                "POST",
                b"/v1/commands",
                &[auth, json_type, ("Content-Length", b"-1")],
                &command,
            ),
            half_close: true,
            expect: RawExpect::Protocol(Some(400)),
        },
        RawCase {
            label: "Content-Length not a number",
            request: raw_request(
                "POST",
                b"/v1/commands",
                &[auth, json_type, ("Content-Length", b"abc")],
                &command,
            ),
            half_close: true,
            expect: RawExpect::Protocol(Some(400)),
        },
        RawCase {
            label: "two different Content-Lengths",
            request: raw_request(
                "POST",
                b"/v1/commands",
                &[
                    auth,
                    json_type,
                    ("Content-Length", b"5"),
                    ("Content-Length", b"7"),
                ],
                &command,
            ),
            half_close: true,
            expect: RawExpect::Protocol(Some(400)),
        },
        RawCase {
            label: "a bad chunk size",
            request: raw_request(
                "POST",
                b"/v1/commands",
                &[auth, json_type, ("Transfer-Encoding", b"chunked")],
                b"zz\r\n{}\r\n0\r\n\r\n",
            ),
            half_close: true,
            expect: RawExpect::Json(400, "malformed"),
        },
        RawCase {
            label: "Expect: 100-continue, then no body",
            request: raw_request(
                "POST",
                b"/v1/commands",
                &[
                    auth,
                    json_type,
                    ("Content-Length", b"100"),
                    ("Expect", b"100-continue"),
                ],
                b"",
            ),
            half_close: true,
            expect: RawExpect::Json(400, "malformed"),
        },
        RawCase {
            label: "an HTTP/2 preface",
            request: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                .to_vec(),
            half_close: true,
            expect: RawExpect::Anything,
        },
        RawCase {
            label: "a lowercase method",
            request: raw_request("get", b"/healthz", &[], b""),
            half_close: false,
            expect: RawExpect::Json(405, "method_not_allowed"),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_over_a_real_socket() {
    let started = Instant::now();
    let h = harness_with(principals_with_government()).await;
    seed_world(&h.app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("the bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fundledger_api::serve(
        listener,
        h.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let head = || h.ledger.snapshot().last_seq;
    let mut protocol_answers = Vec::new();
    for case in raw_cases() {
        let before = head();
        let raw = exchange(address, case.request.clone(), case.half_close).await;
        let answers = parse_answers(&raw);
        let label = case.label;
        let shown = || String::from_utf8_lossy(&raw[..raw.len().min(400)]).into_owned();
        for answer in &answers {
            assert!(
                answer.status < 500,
                "{label}: answered {}: {}",
                answer.status,
                shown()
            );
        }
        match case.expect {
            RawExpect::Json(status, code) => {
                let answer = answers
                    .first()
                    .unwrap_or_else(|| panic!("{label}: no answer: {:?}", shown()));
                let json: Value = serde_json::from_slice(&answer.body)
                    .unwrap_or_else(|_| panic!("{label}: not JSON: {}", shown()));
                assert_eq!(
                    (answer.status, json["code"].as_str()),
                    (status, Some(code)),
                    "{label}"
                );
            }
            RawExpect::Protocol(status) => {
                let answered = answers.first().map(|answer| answer.status);
                assert_eq!(answered, status, "{label}: {}", shown());
                if let Some(answer) = answers.first() {
                    assert!(answer.body.is_empty(), "{label}: {}", shown());
                }
                protocol_answers.push(format!(
                    "{label}: {}",
                    status.map_or("closed".to_string(), |s| s.to_string())
                ));
            }
            RawExpect::Anything => {}
        }
        assert_eq!(head(), before, "{label}: nothing is appended");
        // Still alive: health over a new connection.
        let health = parse_answers(
            &exchange(address, raw_request("GET", b"/healthz", &[], b""), false).await,
        );
        assert_eq!(
            health.first().map(|a| a.status),
            Some(200),
            "after {label}: /healthz"
        );
    }
    // Three requests on one connection, the middle one malformed: three answers in order.
    let mut pipelined = Vec::new();
    for body in [&b"{"[..], b"[]", b"{}"] {
        let length = body.len().to_string();
        let mut request = raw_request(
            "POST",
            b"/v1/commands",
            &[
                ("Authorization", format!("Bearer {FIN_WANG}").as_bytes()),
                ("Content-Type", b"application/json"),
                ("Content-Length", length.as_bytes()),
            ],
            body,
        );
        // Only the last one closes the connection.
        if body != b"{}" {
            let at = request
                .windows(19)
                .position(|w| w == b"Connection: close\r\n")
                .expect("the header");
            request.drain(at..at + 19);
        }
        pipelined.extend(request);
    }
    let answers = parse_answers(&exchange(address, pipelined, false).await);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![400, 400, 400], "pipelined answers");
    // A valid command over the socket is accepted with the next seq.
    let before = head();
    let command = to_bytes(&allocate("M2", 2024, "1.00"));
    let length = command.len().to_string();
    let answers = parse_answers(
        &exchange(
            address,
            raw_request(
                "POST",
                b"/v1/commands",
                &[
                    ("Authorization", format!("Bearer {FIN_WANG}").as_bytes()),
                    ("Content-Type", b"application/json"),
                    ("Content-Length", length.as_bytes()),
                ],
                &command,
            ),
            false,
        )
        .await,
    );
    let answer = answers.first().expect("an answer to a valid command");
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let json: Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(json["seqs"], json!([before + 1]));
    assert_eq!(head(), before + 1);
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    println!(
        "hostile raw socket cases: {} in {:.1} s; refused by the HTTP layer: {}",
        raw_cases().len(),
        started.elapsed().as_secs_f64(),
        protocol_answers.join("; ")
    );
}

/// The judge itself: each breach it exists to catch makes it fail.
#[test]
fn the_judge_catches_every_breach() {
    let case =
        |expect: Expect| Case::command("judged", Some(FIN_WANG), b"{}".to_vec()).expect(expect);
    let answer = |code: Option<&str>, seqs: Vec<u64>| {
        let outcome = if code.is_some() {
            "rejected"
        } else {
            "accepted"
        };
        to_bytes(
            &json!({"command_id": null, "outcome": outcome, "code": code,
                         "message": "m", "seqs": seqs}),
        )
    };
    let passes = |case: Case, status: u16, body: Vec<u8>, before: u64, after: u64| {
        std::panic::catch_unwind(move || judge(&case, status, &body, before, after)).is_ok()
    };
    // Fine: an accepted command reporting the one record it appended; a documented refusal.
    assert!(passes(
        case(Expect::Survives),
        200,
        answer(None, vec![11]),
        10,
        11
    ));
    assert!(passes(
        case(Expect::Refused),
        400,
        answer(Some("malformed"), vec![]),
        10,
        10
    ));
    assert!(passes(
        case(Expect::Survives),
        422,
        answer(Some("exceeds_rate"), vec![11]),
        10,
        11
    ));
    // Breaches.
    let breaches = [
        (
            case(Expect::Survives),
            500,
            answer(Some("internal"), vec![]),
            10,
            10,
        ),
        (
            case(Expect::Survives),
            503,
            answer(Some("busy"), vec![]),
            10,
            10,
        ),
        (case(Expect::Survives), 400, b"plain text".to_vec(), 10, 10),
        (
            case(Expect::Survives),
            400,
            answer(Some("teapot"), vec![]),
            10,
            10,
        ),
        (
            case(Expect::Survives),
            404,
            answer(Some("malformed"), vec![]),
            10,
            10,
        ),
        (
            case(Expect::Survives),
            400,
            to_bytes(&json!({"code": "malformed", "message": "m"})),
            10,
            10,
        ),
        (case(Expect::Refused), 200, answer(None, vec![11]), 10, 11),
        (
            case(Expect::Code("forbidden")),
            403,
            answer(Some("segregation_of_duties"), vec![]),
            10,
            10,
        ),
        (case(Expect::Survives), 200, answer(None, vec![]), 10, 11),
        (case(Expect::Survives), 200, answer(None, vec![11]), 10, 10),
        (
            case(Expect::Survives),
            409,
            answer(Some("duplicate_id"), vec![11]),
            10,
            11,
        ),
        (
            case(Expect::Refused),
            422,
            answer(Some("exceeds_rate"), vec![11]),
            10,
            11,
        ),
    ];
    for (index, (case, status, body, before, after)) in breaches.into_iter().enumerate() {
        assert!(
            !passes(case, status, body, before, after),
            "breach #{index} passed the judge"
        );
    }
}
