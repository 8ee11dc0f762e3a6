//! `export --format payments-csv` and `--format 360giving` on the demo ledger plus a few
//! payouts with awkward text: the register opens in Excel/WPS (BOM, CRLF, RFC 4180 quoting,
//! formula guard) and agrees with the ledger and its JSON Lines export record by record; the
//! 360Giving grants carry the standard's fields and the ledger's amounts. Neither report is
//! made over a broken chain.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::*;
use fundledger_events::Record;
use serde_json::{json, Value};

const DEMO_ORIGIN: &str = "zhengzhou-2024-62.exports-test";
/// A firm name that needs RFC 4180 quoting: a comma and double quotes.
const QUOTED_NAME: &str = "郑州\"星河\",智能科技有限公司";
/// A firm name that a spreadsheet would run as a formula.
const FORMULA_NAME: &str = "-2+3 智能科技有限公司";
/// A bank reference that a spreadsheet would run as a formula (and that needs quoting).
const FORMULA_REFERENCE: &str = "=HYPERLINK(\"http://example.invalid\",\"点击\")";

fn uscc(first17: &str) -> String {
    fundledger_ledger::uscc::complete(first17)
        .unwrap_or_else(|| panic!("{first17} is not the start of a USCC"))
}

/// The commands appended after the demo: two new firms each get a benchmark-enterprise award
/// (M8, 100,000 once); the first payout is confirmed with a formula-like bank reference, the
/// second stays ordered.
fn extra_commands() -> Vec<Value> {
    let reviewer = json!({"id": "rev.gxj.zhang", "role": "reviewer", "unit": "市工信局"});
    let approver = json!({"id": "appr.gxj.zhou", "role": "approver", "unit": "市工信局"});
    let orderer = json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"});
    let confirmer = json!({"id": "fin.zhao", "role": "finance", "unit": "市财政局"});
    let mut commands = Vec::new();
    let mut command = |actor: &Value, kind: &str, at: &str, fields: Value| {
        let mut object = json!({
            "command_id": format!("7e57e57e-0000-4000-8000-{:012}", commands.len() + 1),
            "actor": actor,
            "type": kind,
            "at": at,
        });
        if let (Some(object), Some(fields)) = (object.as_object_mut(), fields.as_object()) {
            object.extend(fields.clone());
        }
        commands.push(object);
    };
    let firms = [
        (uscc("91410100MA9XH0001"), QUOTED_NAME),
        (uscc("91410100MA9XH0002"), FORMULA_NAME),
    ];
    for (index, (uscc, name)) in firms.iter().enumerate() {
        let n = index + 1;
        let application_id = format!("X-2027-{n}");
        let applicant = json!({"id": format!("applicant.x{n}"), "role": "applicant", "firm": uscc});
        let day = 20 + index;
        command(
            &applicant,
            "submit_application",
            &format!("2027-04-{day}T09:00:00+08:00"),
            json!({
                "application_id": application_id,
                "firm": {"uscc": uscc, "name": name},
                "provision": "M8.benchmark_enterprise",
                "fiscal_year": 2026,
                "basis": {"recognition_date": "2027-03-01"},
            }),
        );
        command(
            &reviewer,
            "review_application",
            &format!("2027-04-{day}T10:00:00+08:00"),
            json!({"application_id": application_id, "recommend": true, "note": "材料齐全"}),
        );
        command(
            &approver,
            "approve_application",
            &format!("2027-04-{day}T11:00:00+08:00"),
            json!({"application_id": application_id, "amount": "100000.00"}),
        );
        command(
            &orderer,
            "order_payout",
            &format!("2027-04-{day}T14:00:00+08:00"),
            json!({"payout_id": format!("XP-{n}"), "application_id": application_id, "amount": "100000.00"}),
        );
    }
    command(
        &confirmer,
        "confirm_payout",
        "2027-04-22T09:00:00+08:00",
        json!({"payout_id": "XP-1", "bank_reference": FORMULA_REFERENCE, "value_date": "2027-04-22"}),
    );
    commands
}

/// The demo ledger plus [`extra_commands`], in `dir/d.db`; returns its URL.
fn ledger(dir: &Path) -> String {
    let url = format!("sqlite://{}", dir.join("d.db").display());
    fundledger(dir, &["demo", "--store", &url, "--origin", DEMO_ORIGIN]).ok();
    let mut input = String::new();
    for command in extra_commands() {
        input.push_str(&command.to_string());
        input.push('\n');
    }
    let commands = dir.join("extra.jsonl");
    write(&commands, input.as_bytes());
    let run = fundledger(dir, &["apply", "--store", &url, path_str(&commands)]).ok();
    for line in run.stdout.lines() {
        assert!(line.contains(r#""outcome":"accepted""#), "{line}");
    }
    assert_eq!(run.stdout.lines().count(), extra_commands().len());
    url
}

fn query(dir: &Path, url: &str, view: &str) -> Vec<Value> {
    let run = fundledger(dir, &["query", "--store", url, view]).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}"))
}

/// The JSON Lines export's records, by seq.
fn records(dir: &Path, url: &str) -> BTreeMap<u64, Record> {
    let export = export_to(dir, url, "export.jsonl");
    lines_of(&read(&export))[1..]
        .iter()
        .map(|line| {
            let record: Record =
                serde_json::from_slice(line).unwrap_or_else(|error| panic!("{error}"));
            (record.seq, record)
        })
        .collect()
}

/// RFC 4180, as a spreadsheet reads it: fields split on commas outside double quotes, `""`
/// inside quotes is one quote, records end with CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => {
                assert!(c != '\r' && c != '\n', "a bare line break outside quotes");
                assert!(c != '"', "a quote inside an unquoted field");
                field.push(c);
            }
        }
    }
    assert!(!quoted, "an unterminated quoted field");
    assert!(
        field.is_empty() && row.is_empty(),
        "the last record has no CRLF"
    );
    rows
}

const MACHINE_HEADER: [&str; 15] = [
    "payout_id",
    "application_id",
    "provision",
    "measure",
    "firm_uscc",
    "firm_name",
    "amount_yuan",
    "ordered_on",
    "confirmed_on",
    "value_date",
    "bank_reference",
    "status",
    "failure_reason",
    "settled_seq",
    "settled_hash",
];

#[test]
fn the_payment_register_opens_in_spreadsheets_and_matches_the_ledger() {
    let dir = tempdir();
    let d = dir.path();
    let url = ledger(d);
    let out = d.join("payments.csv");
    let run = fundledger(
        d,
        &[
            "export",
            "--store",
            &url,
            "--format",
            "payments-csv",
            "--out",
            path_str(&out),
        ],
    )
    .ok();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let bytes = read(&out);
    // stdout gets the very same bytes.
    let to_stdout = fundledger(d, &["export", "--store", &url, "--format", "payments-csv"]).ok();
    assert_eq!(to_stdout.stdout.as_bytes(), bytes.as_slice());

    // UTF-8 with a BOM, CRLF line endings (no bare LF or CR: no field here holds a break).
    let text = std::str::from_utf8(&bytes).unwrap_or_else(|error| panic!("{error}"));
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or_else(|| panic!("no byte-order mark: {:?}", &bytes[..3]));
    assert!(text.ends_with("\r\n"));
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    assert_eq!(text.matches('\r').count(), text.matches("\r\n").count());
    assert!(
        text.contains("郑州中原人工智能研究院有限公司"),
        "Chinese text as UTF-8"
    );

    let rows = parse_csv(text);
    let header: Vec<&str> = rows[0]
        .iter()
        .map(|name| name.split('(').next().unwrap_or_default())
        .collect();
    assert_eq!(header, MACHINE_HEADER);
    assert_eq!(rows[0][5], "firm_name(企业名称)");
    let body = &rows[1..];
    assert!(body.iter().all(|row| row.len() == MACHINE_HEADER.len()));
    let column = |name: &str| {
        MACHINE_HEADER
            .iter()
            .position(|header| *header == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let by_payout: HashMap<&str, &Vec<String>> = body
        .iter()
        .map(|row| (row[column("payout_id")].as_str(), row))
        .collect();

    // One row per payout: the ledger's payment register and its payout_ordered records.
    let payments = query(d, &url, "payments");
    let records = records(d, &url);
    let ordered = records
        .values()
        .filter(|record| record.body["type"] == "payout_ordered")
        .count();
    assert_eq!(body.len(), payments.len());
    assert_eq!(body.len(), ordered);
    assert_eq!(by_payout.len(), body.len(), "payout ids are unique");
    for payment in &payments {
        let id = payment["payout_id"].as_str().unwrap_or_default();
        let row = by_payout
            .get(id)
            .unwrap_or_else(|| panic!("payout {id} is not in the CSV"));
        assert_eq!(
            row[column("amount_yuan")],
            payment["amount"].as_str().unwrap_or("?")
        );
        assert_eq!(
            row[column("status")],
            payment["status"].as_str().unwrap_or("?")
        );
        assert_eq!(
            row[column("application_id")],
            payment["application_id"].as_str().unwrap_or("?")
        );
    }
    // Amounts are plain decimals with two places.
    for row in body {
        let amount = &row[column("amount_yuan")];
        let (whole, cents) = amount
            .split_once('.')
            .unwrap_or_else(|| panic!("{amount}: no decimal point"));
        assert!(
            whole.chars().all(|c| c.is_ascii_digit()) && !whole.is_empty(),
            "{amount}"
        );
        assert!(
            cents.len() == 2 && cents.chars().all(|c| c.is_ascii_digit()),
            "{amount}"
        );
    }

    // Settled rows name the record that settled them, exactly as the JSON Lines export has it.
    let mut settled = 0;
    for row in body {
        let status = row[column("status")].as_str();
        let seq = &row[column("settled_seq")];
        let hash = &row[column("settled_hash")];
        if status == "ordered" {
            assert!(seq.is_empty() && hash.is_empty(), "{row:?}");
            assert!(row[column("confirmed_on")].is_empty());
            continue;
        }
        settled += 1;
        let seq: u64 = seq.parse().unwrap_or_else(|error| panic!("{seq}: {error}"));
        let record = &records[&seq];
        assert_eq!(record.hash.to_hex(), *hash);
        assert_eq!(record.body["payout_id"], row[column("payout_id")].as_str());
        let expected_type = match status {
            "confirmed" => "payout_confirmed",
            "failed" => "payout_failed",
            other => panic!("status {other}"),
        };
        assert_eq!(record.body["type"], expected_type);
        if status == "confirmed" {
            assert_eq!(
                record.body["value_date"],
                row[column("value_date")].as_str()
            );
            assert_eq!(
                record.body["bank_reference"].as_str().map(payments_guard),
                Some(row[column("bank_reference")].clone())
            );
        } else {
            assert!(!row[column("failure_reason")].is_empty());
        }
    }
    assert!(settled >= 80, "the demo settles most payouts: {settled}");
    assert!(
        body.iter().any(|row| row[column("status")] == "failed"),
        "the demo has a failed payout"
    );

    // Quoting: the name with a comma and quotes survives the round trip, and is quoted.
    let quoted = by_payout["XP-1"];
    assert_eq!(quoted[column("firm_name")], QUOTED_NAME);
    assert!(
        text.contains(r#","郑州""星河"",智能科技有限公司","#),
        "{text}"
    );
    // Formula guard: a leading ' on text that starts a formula, and only there.
    assert_eq!(
        quoted[column("bank_reference")],
        format!("'{FORMULA_REFERENCE}")
    );
    let guarded = by_payout["XP-2"];
    assert_eq!(guarded[column("firm_name")], format!("'{FORMULA_NAME}"));
    assert_eq!(guarded[column("status")], "ordered");
    assert!(body
        .iter()
        .flat_map(|row| row.iter())
        .all(|field| !field.starts_with(['=', '+', '-', '@', '\t', '\r'])));
}

/// The CSV's formula guard, restated for the test.
fn payments_guard(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// The literal text of the JSON number that follows `"key": ` after `from` in `text`.
fn number_literal<'a>(text: &'a str, from: usize, key: &str) -> &'a str {
    let needle = format!("\"{key}\": ");
    let start = text[from..]
        .find(&needle)
        .map(|at| from + at + needle.len())
        .unwrap_or_else(|| panic!("no {key} after byte {from}"));
    let end = text[start..]
        .find([',', '\n'])
        .map(|at| start + at)
        .unwrap_or(text.len());
    &text[start..end]
}

#[test]
fn the_360giving_grants_follow_the_standard_and_the_ledger() {
    let dir = tempdir();
    let d = dir.path();
    let url = ledger(d);
    let out = d.join("grants.json");
    fundledger(
        d,
        &[
            "export",
            "--store",
            &url,
            "--format",
            "360giving",
            "--out",
            path_str(&out),
        ],
    )
    .ok();
    let text = String::from_utf8(read(&out)).unwrap_or_else(|error| panic!("{error}"));
    let document: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}"));
    let keys: Vec<&String> = document
        .as_object()
        .map(|object| object.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["grants"]);
    let grants = document["grants"].as_array().cloned().unwrap_or_default();

    // One grant per approved application, in submission order.
    let applications = query(d, &url, "applications");
    let approved: Vec<&Value> = applications
        .iter()
        .filter(|app| app["status"] == "approved")
        .collect();
    assert!(approved.len() > 50, "{}", approved.len());
    assert_eq!(grants.len(), approved.len());
    let payments = query(d, &url, "payments");
    let labs = query(d, &url, "labs");
    let records = records(d, &url);

    let mut planned = 0;
    for (grant, app) in grants.iter().zip(&approved) {
        let app_id = app["application_id"].as_str().unwrap_or_default();
        let grant_id = format!("360G-fundledger-{app_id}");
        assert_eq!(grant["id"], grant_id.as_str());
        for field in [
            "id",
            "title",
            "description",
            "currency",
            "amountAwarded",
            "awardDate",
            "recipientOrganization",
            "fundingOrganization",
            "grantProgramme",
        ] {
            assert!(!grant[field].is_null(), "{grant_id} has no {field}");
        }
        assert_eq!(grant["currency"], "CNY");
        let title = grant["title"].as_str().unwrap_or_default();
        assert!(
            title.contains(app_id) && title.chars().count() < 140,
            "{title}"
        );
        let award_date = grant["awardDate"].as_str().unwrap_or_default();
        assert!(
            chrono::NaiveDate::parse_from_str(award_date, "%Y-%m-%d").is_ok(),
            "{award_date}"
        );
        assert_eq!(
            grant["recipientOrganization"],
            json!([{"id": format!("CN-USCC-{}", app["firm"].as_str().unwrap_or("?")),
                    "name": app["firm_name"]}])
        );
        assert_eq!(grant["fundingOrganization"][0]["name"], "郑州市财政局");
        assert_eq!(grant["grantProgramme"][0]["code"], app["provision"]);

        // The amount is a JSON number whose literal is the ledger's decimal text.
        let at = text
            .find(&format!("\"id\": \"{grant_id}\""))
            .unwrap_or_else(|| panic!("{grant_id} not in the text"));
        let approved_amount = app["approved"].as_str().unwrap_or("?");
        assert_eq!(number_literal(&text, at, "amountAwarded"), approved_amount);
        assert!(grant["amountAwarded"].is_number());

        // Disbursements: the confirmed payouts of this application, each tied to its record.
        let confirmed: Vec<&Value> = payments
            .iter()
            .filter(|p| p["application_id"] == app["application_id"] && p["status"] == "confirmed")
            .collect();
        let transactions = grant["disbursementTransaction"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(transactions.len(), confirmed.len(), "{grant_id}");
        let mut paid_cents = 0i64;
        for (transaction, payout) in transactions.iter().zip(&confirmed) {
            assert_eq!(transaction["id"], payout["payout_id"]);
            assert_eq!(transaction["currency"], "CNY");
            assert_eq!(transaction["transactionDate"], payout["value_date"]);
            let seq = transaction["fundledgerRecordSeq"].as_u64().unwrap_or(0);
            assert_eq!(transaction["fundledgerRecordSeq"], payout["settled_seq"]);
            assert_eq!(
                transaction["fundledgerRecordHash"].as_str(),
                Some(records[&seq].hash.to_hex().as_str())
            );
            paid_cents += cents(payout["amount"].as_str().unwrap_or("?"));
        }
        let disbursed = number_literal(&text, at, "amountDisbursed");
        assert_eq!(cents(disbursed), paid_cents, "{grant_id}");

        // The grants of a lab programme carry its planned dates: the lead award that opened
        // the envelope, and each tranche (which also names the lead's grant).
        let provision = app["provision"].as_str().unwrap_or_default();
        let lab_id = match provision {
            "M6.key_lab_lead" => Some(app_id.to_string()),
            "M6.key_lab_programme" => {
                let lab = submitted_basis(&records, app_id)["lab"]
                    .as_str()
                    .map(str::to_string);
                assert_eq!(
                    grant["relatedActivity"],
                    json!([format!("360G-fundledger-{}", lab.as_deref().unwrap_or("?"))])
                );
                lab
            }
            _ => None,
        };
        match lab_id {
            Some(lab_id) => {
                let lab = labs
                    .iter()
                    .find(|lab| lab["lab"] == lab_id.as_str())
                    .unwrap_or_else(|| panic!("{grant_id}: no lab {lab_id}"));
                assert_eq!(
                    grant["plannedDates"],
                    json!([{"startDate": lab["recognition_date"], "endDate": lab["window_end"]}])
                );
                planned += 1;
            }
            None => assert!(grant.get("plannedDates").is_none(), "{grant_id}"),
        }
    }
    // The demo's lab: its lead award and its tranches (2025, 2026, 2027).
    assert!(planned >= 4, "{planned}");
    // An award still being paid out shows its order but no disbursement yet.
    let pending = grants
        .iter()
        .find(|grant| grant["id"] == "360G-fundledger-X-2027-2")
        .unwrap_or_else(|| panic!("no grant for X-2027-2"));
    assert_eq!(pending["disbursementTransaction"], json!([]));
    assert_eq!(pending["recipientOrganization"][0]["name"], FORMULA_NAME);
}

/// The basis of an application, from its `application_submitted` record.
fn submitted_basis(records: &BTreeMap<u64, Record>, application_id: &str) -> Value {
    records
        .values()
        .map(|record| &record.body)
        .find(|body| {
            body["type"] == "application_submitted" && body["application_id"] == application_id
        })
        .map(|body| body["basis"].clone())
        .unwrap_or_else(|| panic!("{application_id} was never submitted"))
}

/// "1234.50" → 123450.
fn cents(amount: &str) -> i64 {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, "00"));
    let whole: i64 = whole
        .parse()
        .unwrap_or_else(|error| panic!("{amount}: {error}"));
    let fraction: i64 = format!("{fraction:0<2}")[..2]
        .parse()
        .unwrap_or_else(|error| panic!("{amount}: {error}"));
    whole * 100 + fraction
}

#[test]
fn reports_are_not_made_over_a_broken_chain_or_a_foreign_log() {
    let dir = tempdir();
    let d = dir.path();
    let url = format!("sqlite://{}", d.join("d.db").display());
    fundledger(d, &["demo", "--store", &url, "--origin", DEMO_ORIGIN]).ok();
    let connection =
        rusqlite::Connection::open(d.join("d.db")).unwrap_or_else(|error| panic!("{error}"));
    let bad_seq: u64 = connection
        .query_row(
            "SELECT min(seq) FROM records WHERE body LIKE '%\"fiscal_year\":2024%'",
            [],
            |row| row.get(0),
        )
        .unwrap_or_else(|error| panic!("{error}"));
    // As anyone holding the file could: drop the append-only trigger and edit a record.
    connection
        .execute_batch(&format!(
            "DROP TRIGGER records_no_update; \
             UPDATE records SET body = replace(body, '\"fiscal_year\":2024', '\"fiscal_year\":2025') \
             WHERE seq = {bad_seq};"
        ))
        .unwrap_or_else(|error| panic!("{error}"));
    drop(connection);
    for format in ["payments-csv", "360giving"] {
        let out = d.join(format!("report.{format}"));
        fundledger(
            d,
            &[
                "export",
                "--store",
                &url,
                "--format",
                format,
                "--out",
                path_str(&out),
            ],
        )
        .fails(1, &format!("export: FAILED at seq {bad_seq}: "))
        .fails(1, "hash mismatch");
        assert!(!out.exists(), "no report over a broken chain");
    }
    // The JSON Lines export still writes what the store holds, for the auditor to find.
    let export = export_to(d, &url, "export.jsonl");
    fundledger(d, &["verify", "--file", path_str(&export)])
        .fails(1, &format!("verify: FAILED at seq {bad_seq}"));

    // A log whose chain is sound but whose bodies are no fundledger events (the test ledgers
    // of the other black-box tests) cannot be folded into a register.
    let (foreign, _) = sqlite_ledger(d, "foreign.db", 5, note);
    fundledger(
        d,
        &["export", "--store", &foreign, "--format", "payments-csv"],
    )
    .fails(1, "export: FAILED at seq 1: the record cannot be folded");
}
