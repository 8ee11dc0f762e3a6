//! The built-in catalogue against the policy text, and the loader's validation errors.

use chrono::NaiveDate;
use fundledger_policy::{Catalogue, CatalogueError, Limit, BUILTIN_CATALOGUE, POLICY_TEXT_ZH};

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

const PROVISION_IDS: [&str; 22] = [
    "M2.compute_voucher",
    "M4.major_project",
    "M4.case_by_case",
    "M5.model_scenario",
    "M6.key_lab_lead",
    "M6.key_lab_programme",
    "M6.key_lab_cobuilder",
    "M6.innovation_center_lead",
    "M7.scenario_project",
    "M7.national_demo_factory",
    "M7.national_excellent_scenario",
    "M7.provincial_benchmark",
    "M7.provincial_smart_factory",
    "M7.provincial_smart_workshop",
    "M8.unicorn",
    "M8.potential_unicorn",
    "M8.little_giant",
    "M8.hidden_champion",
    "M8.benchmark_enterprise",
    "M9.national_demo_base",
    "M9.provincial_demo_base",
    "M10.event",
];

#[test]
fn builtin_loads() {
    // `Catalogue::builtin` relies on this: the embedded text must parse and validate.
    let parsed = Catalogue::from_toml(BUILTIN_CATALOGUE).unwrap();
    let builtin = Catalogue::builtin();
    assert_eq!(parsed, builtin);

    assert_eq!(builtin.document, "郑政文〔2024〕62号");
    assert_eq!(builtin.title, "郑州市支持人工智能创新发展若干政策措施");
    assert_eq!(builtin.version, "62号-2024-05-22-v1");
    assert_eq!(builtin.published_on, date("2024-05-22"));
    assert_eq!(builtin.valid_from, date("2024-05-22"));
    assert_eq!(builtin.valid_until, date("2027-05-21"));
    assert!(!builtin.options.stack_unicorn_on_potential_unicorn);
    assert!(!builtin.options.province_city_cofunding);

    let ids: Vec<&str> = builtin.provisions.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, PROVISION_IDS);
    let measures: Vec<&str> = builtin.measures.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        measures,
        ["M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9", "M10"]
    );
    let unpaid: Vec<&str> = builtin
        .measures
        .iter()
        .filter(|m| !m.carries_money)
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(unpaid, ["M1", "M3"]);
}

/// DESIGN §2, row by row: (id, limit kind, amount/rate/total, once, basis fields).
#[test]
fn builtin_matches_design_table() {
    let catalogue = Catalogue::builtin();
    let check = |id: &str, expect_limit: &str, expect_once: bool, expect_basis: &[&str]| {
        let p = catalogue
            .provision(id)
            .unwrap_or_else(|| panic!("{id} missing"));
        let limit = match &p.limit {
            Limit::Fixed { amount } => format!("fixed {amount}"),
            Limit::Cap { amount } => format!("cap {amount}"),
            Limit::Rate {
                rate,
                base_field,
                cap,
            } => match cap {
                Some(cap) => format!("rate {rate} of {base_field} cap {cap}"),
                None => format!("rate {rate} of {base_field}"),
            },
            Limit::Minimum { amount } => format!("minimum {amount}"),
            Limit::Open => "open".to_string(),
            Limit::Envelope {
                total,
                years,
                opened_by,
                lab_field,
            } => {
                format!("envelope {total} {years}y {opened_by} {lab_field}")
            }
        };
        assert_eq!(limit, expect_limit, "{id}");
        assert_eq!(p.once, expect_once, "{id} once");
        let basis: Vec<&str> = p.basis.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(basis, expect_basis, "{id} basis");
    };
    let rd = &["recognition_date"];
    check(
        "M2.compute_voucher",
        "rate 0.20 of contract_amount",
        false,
        &[
            "contract_amount",
            "contract_id",
            "self_built",
            "provincial_voucher",
        ],
    );
    check(
        "M4.major_project",
        "minimum 10000000",
        false,
        &["project_id"],
    );
    check("M4.case_by_case", "open", false, &["project_id"]);
    check("M5.model_scenario", "cap 5000000", false, &["scenario_id"]);
    check("M6.key_lab_lead", "fixed 5000000", true, rd);
    check(
        "M6.key_lab_programme",
        "envelope 10000000 5y M6.key_lab_lead lab",
        false,
        &["lab", "rd_spend"],
    );
    check("M6.key_lab_cobuilder", "fixed 1000000", true, rd);
    check("M6.innovation_center_lead", "fixed 5000000", true, rd);
    check(
        "M7.scenario_project",
        "rate 0.30 of actual_investment cap 5000000",
        false,
        &["actual_investment"],
    );
    check("M7.national_demo_factory", "fixed 3000000", true, rd);
    check("M7.national_excellent_scenario", "fixed 1000000", true, rd);
    check("M7.provincial_benchmark", "fixed 1000000", true, rd);
    check("M7.provincial_smart_factory", "fixed 500000", true, rd);
    check("M7.provincial_smart_workshop", "fixed 300000", true, rd);
    check("M8.unicorn", "fixed 5000000", true, rd);
    check("M8.potential_unicorn", "fixed 2000000", true, rd);
    check("M8.little_giant", "fixed 1000000", true, rd);
    check("M8.hidden_champion", "fixed 1000000", true, rd);
    check("M8.benchmark_enterprise", "fixed 100000", true, rd);
    check("M9.national_demo_base", "fixed 2000000", true, rd);
    check("M9.provincial_demo_base", "fixed 1000000", true, rd);
    check("M10.event", "cap 300000", false, &["event_name"]);

    let voucher = catalogue.provision("M2.compute_voucher").unwrap();
    assert_eq!(
        voucher.firm_annual_cap.map(|c| c.to_string()),
        Some("1000000".to_string())
    );
    assert_eq!(voucher.excluded_if.as_deref(), Some("self_built"));
    assert_eq!(voucher.priority_if.as_deref(), Some("provincial_voucher"));
    let optional: Vec<&str> = voucher
        .basis
        .iter()
        .filter(|f| !f.required)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(optional, ["self_built", "provincial_voucher"]);
    let case = catalogue.provision("M4.case_by_case").unwrap();
    assert_eq!(case.requires_endorsement_by.as_deref(), Some("government"));
    assert_eq!(
        catalogue
            .provision("M5.model_scenario")
            .unwrap()
            .cap_per
            .as_deref(),
        Some("scenario_id")
    );
    assert_eq!(
        catalogue.provision("M10.event").unwrap().cap_per.as_deref(),
        Some("event_name")
    );
    // Nothing else carries the M2/M4/M5/M10 extras.
    for p in &catalogue.provisions {
        if p.id != "M2.compute_voucher" {
            assert!(
                p.firm_annual_cap.is_none() && p.excluded_if.is_none() && p.priority_if.is_none(),
                "{}",
                p.id
            );
        }
        if p.id != "M4.case_by_case" {
            assert!(p.requires_endorsement_by.is_none(), "{}", p.id);
        }
        assert!(p.id.starts_with(&format!("{}.", p.measure)), "{}", p.id);
    }
}

#[test]
fn embedded_policy_text_is_the_shared_copy() {
    // The crate carries its own copy so it builds from a clean clone; when the shared original
    // is present (DESIGN: ../shared/policy/), the two must be identical.
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/policy/zhengzhou-2024-62.zh.txt"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(text, POLICY_TEXT_ZH);
    }
    assert!(POLICY_TEXT_ZH.contains("郑政文〔2024〕62号"));
}

#[test]
fn every_citation_is_verbatim() {
    let catalogue = Catalogue::builtin();
    for p in &catalogue.provisions {
        assert!(
            POLICY_TEXT_ZH.contains(&p.citation),
            "{}: citation not in the policy text: {}",
            p.id,
            p.citation
        );
    }
    for m in &catalogue.measures {
        assert!(
            POLICY_TEXT_ZH.contains(&m.citation),
            "{}: citation not in the policy text: {}",
            m.id,
            m.citation
        );
        // The heading is written "N.heading。" at the start of the measure.
        let heading = format!("\n{}.{}。", m.number, m.title_zh);
        assert!(
            POLICY_TEXT_ZH.contains(&heading),
            "{}: heading {heading:?} not in the text",
            m.id
        );
    }
}

/// The text of measure `number`, from "N." at the start of a line to the next measure or the end.
fn measure_text(number: u8) -> &'static str {
    let start = POLICY_TEXT_ZH
        .find(&format!("\n{number}."))
        .unwrap_or_else(|| panic!("measure {number}"));
    let rest = &POLICY_TEXT_ZH[start + 1..];
    let end = rest
        .find(&format!("\n{}.", number + 1))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn responsible_units_match_the_text() {
    let catalogue = Catalogue::builtin();
    for m in &catalogue.measures {
        let text = measure_text(m.number);
        let open = "(责任单位:";
        let start = text
            .find(open)
            .unwrap_or_else(|| panic!("{}: no 责任单位", m.id));
        let end = start + text[start..].find(')').unwrap();
        let sentence = &text[start..end + ')'.len_utf8()];
        assert_eq!(m.citation, sentence, "{}", m.id);
        let units: Vec<&str> = text[start + open.len()..end]
            .split(['、', ',', '，'])
            .collect();
        assert_eq!(m.responsible_units, units, "{}", m.id);
    }
    assert_eq!(
        catalogue.responsible_units("M9.national_demo_base"),
        [
            "市工信局",
            "市财政局",
            "各开发区管委会",
            "相关区县〔市〕人民政府"
        ]
    );
    assert_eq!(
        catalogue.responsible_units("M2.compute_voucher"),
        ["市工信局", "市财政局", "市大数据局", "市科技局"]
    );
    assert!(catalogue.responsible_units("M99.nothing").is_empty());
}

#[test]
fn lookups_and_window() {
    let c = Catalogue::builtin();
    assert_eq!(c.measure("M7").unwrap().title_zh, "推动智能应用场景");
    assert!(c.measure("M11").is_none());
    assert!(c.provision("M2.compute_voucher").is_some());
    assert!(c.provision("M2").is_none());
    for (day, expect) in [
        ("2024-05-21", false),
        ("2024-05-22", true),
        ("2026-01-01", true),
        ("2027-05-21", true),
        ("2027-05-22", false),
    ] {
        assert_eq!(c.in_window(date(day)), expect, "{day}");
    }
}

#[test]
fn envelope_window_end() {
    let c = Catalogue::builtin();
    let programme = &c.provision("M6.key_lab_programme").unwrap().limit;
    for (opened, expect) in [
        ("2024-06-01", Some("2029-05-31")),
        ("2025-01-01", Some("2029-12-31")),
        // 29 February has no anniversary in 2029; the window closes the day before 28 February.
        ("2024-02-29", Some("2029-02-27")),
    ] {
        assert_eq!(
            programme.window_end(date(opened)),
            expect.map(date),
            "{opened}"
        );
    }
    assert_eq!(
        c.provision("M6.key_lab_lead")
            .unwrap()
            .limit
            .window_end(date("2024-06-01")),
        None
    );
    // The same counting gives the policy's own window: 3 years from 2024-05-22.
    let three = Limit::Envelope {
        total: 1.into(),
        years: 3,
        opened_by: String::new(),
        lab_field: String::new(),
    };
    assert_eq!(three.window_end(c.valid_from), Some(c.valid_until));
}

#[test]
fn unicorn_exclusion_follows_the_option() {
    let mut c = Catalogue::builtin();
    assert_eq!(c.excluded_with("M8.unicorn"), ["M8.potential_unicorn"]);
    assert_eq!(c.excluded_with("M8.potential_unicorn"), ["M8.unicorn"]);
    assert!(c.excluded_with("M8.little_giant").is_empty());
    assert!(c.excluded_with("M99.nothing").is_empty());
    c.options.stack_unicorn_on_potential_unicorn = true;
    assert!(c.excluded_with("M8.unicorn").is_empty());
    assert!(c.excluded_with("M8.potential_unicorn").is_empty());
}

#[test]
fn round_trips_through_json() {
    // The catalogue may travel inside events as JSON: amounts and dates stay strings.
    let c = Catalogue::builtin();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["valid_until"], "2027-05-21");
    assert_eq!(json["provisions"][0]["limit"]["rate"], "0.20");
    assert_eq!(json["provisions"][0]["firm_annual_cap"], "1000000");
    assert_eq!(json["provisions"][1]["limit"]["kind"], "minimum");
    let back: Catalogue = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
    back.validate().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Validation

const MINIMAL: &str = r#"
version = "test-1"
document = "测试文件"
title = "测试"
published_on = 2024-05-22
valid_from = 2024-05-22
valid_until = 2027-05-21

[options]
stack_unicorn_on_potential_unicorn = false

[[measures]]
id = "M1"
number = 1
title_zh = "无钱"
carries_money = false
responsible_units = ["市科技局"]
citation = "(责任单位:市科技局)"

[[measures]]
id = "M2"
number = 2
title_zh = "有钱"
carries_money = true
responsible_units = ["市工信局", "市财政局"]
citation = "(责任单位:市工信局、市财政局)"

[[provisions]]
id = "M2.voucher"
measure = "M2"
title_zh = "券"
title_en = "Voucher"
limit = { kind = "rate", rate = "0.20", base_field = "contract_amount", cap = "100000.50" }
once = false
basis = [{ name = "contract_amount", kind = "amount" }, { name = "self_built", kind = "bool", required = false }]
excluded_if = "self_built"
citation = "给予不超过单个合同额20%的补助"

[[provisions]]
id = "M2.lead"
measure = "M2"
title_zh = "牵头"
title_en = "Lead"
limit = { kind = "fixed", amount = "5000000" }
once = true
excludes = ["M2.other"]
basis = [{ name = "recognition_date", kind = "date" }]
citation = "给予牵头单位500万元"

[[provisions]]
id = "M2.other"
measure = "M2"
title_zh = "其他"
title_en = "Other"
limit = { kind = "cap", amount = "300000" }
once = false
excludes = ["M2.lead"]
cap_per = "event_name"
basis = [{ name = "event_name", kind = "text" }]
citation = "不超过30万元"

[[provisions]]
id = "M2.programme"
measure = "M2"
title_zh = "持续支持"
title_en = "Programme"
limit = { kind = "envelope", total = "10000000", years = 5, opened_by = "M2.lead", lab_field = "lab" }
once = false
basis = [{ name = "lab", kind = "application_id" }, { name = "rd_spend", kind = "amount" }]
citation = "统筹给予1000万元"
"#;

/// `MINIMAL` with each `(from, to)` replaced once; `from` must occur, so a stale case fails
/// loudly instead of testing the valid catalogue.
fn edit(edits: &[(&str, &str)]) -> String {
    let mut text = MINIMAL.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "edit target {from:?} not in MINIMAL");
        text = text.replacen(from, to, 1);
    }
    text
}

/// Loads `text` and expects an error whose message contains every fragment of `expect`.
fn check_err(text: &str, expect: &[&str]) -> CatalogueError {
    let err = Catalogue::from_toml(text).expect_err("should be refused");
    let message = err.to_string();
    for fragment in expect {
        assert!(
            message.contains(fragment),
            "message {message:?} lacks {fragment:?}"
        );
    }
    err
}

#[test]
fn minimal_is_valid() {
    let c = Catalogue::from_toml(MINIMAL).unwrap();
    assert_eq!(c.provisions.len(), 4);
    // Dates may also be written as strings.
    let quoted = edit(&[("published_on = 2024-05-22", "published_on = \"2024-05-22\"")]);
    assert_eq!(
        Catalogue::from_toml(&quoted).unwrap().published_on,
        date("2024-05-22")
    );
    // Omitted options default to false.
    let no_options = edit(&[(
        "[options]\nstack_unicorn_on_potential_unicorn = false\n",
        "",
    )]);
    assert_eq!(
        Catalogue::from_toml(&no_options).unwrap().options,
        Default::default()
    );
    // A rate of exactly 100% is allowed.
    Catalogue::from_toml(&edit(&[("rate = \"0.20\"", "rate = \"1\"")])).unwrap();
}

/// (name, edits to `MINIMAL`, fragments the error message must contain).
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<&'static str>,
);

#[test]
fn validation_errors() {
    use CatalogueError as E;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("toml syntax", vec![("version = \"test-1\"", "version = test-1\"")], vec!["catalogue TOML"]),
        ("unknown top-level field", vec![("title = \"测试\"", "title = \"测试\"\ncolour = \"red\"")], vec!["unknown field `colour`"]),
        ("unknown option", vec![("stack_unicorn_on_potential_unicorn = false", "stack_everything = true")], vec!["unknown field `stack_everything`"]),
        ("unknown measure field", vec![("title_zh = \"无钱\"", "title_zh = \"无钱\"\nbudget = \"1\"")], vec!["unknown field `budget`"]),
        ("unknown provision field", vec![("title_en = \"Voucher\"", "title_en = \"Voucher\"\nmaximum = \"1\"")], vec!["unknown field `maximum`"]),
        ("unknown limit field", vec![("cap = \"100000.50\"", "ceiling = \"100000.50\"")], vec!["unknown field `ceiling`"]),
        ("unknown limit kind", vec![("kind = \"cap\"", "kind = \"percent\"")], vec!["unknown variant `percent`"]),
        ("unknown basis kind", vec![("kind = \"text\"", "kind = \"string\"")], vec!["unknown variant `string`"]),
        ("amount as float", vec![("amount = \"5000000\"", "amount = 5000000.5")], vec!["catalogue TOML", "expected a string"]),
        ("amount with exponent", vec![("amount = \"5000000\"", "amount = \"5e6\"")], vec!["not a plain decimal"]),
        ("time in a date", vec![("valid_from = 2024-05-22", "valid_from = 2024-05-22T08:00:00")], vec!["not a plain date"]),
        ("duplicate measure", vec![("id = \"M1\"\nnumber = 1", "id = \"M2\"\nnumber = 2")], vec!["duplicate measure id \"M2\""]),
        ("duplicate provision", vec![("id = \"M2.other\"", "id = \"M2.lead\"")], vec!["duplicate provision id \"M2.lead\""]),
        ("measure id not its number", vec![("id = \"M1\"\nnumber = 1", "id = \"M1\"\nnumber = 3")], vec!["measure M1", "\"M3\""]),
        ("unknown measure", vec![("measure = \"M2\"\ntitle_zh = \"券\"", "measure = \"M9\"\ntitle_zh = \"券\"")], vec!["provision M2.voucher", "unknown measure \"M9\""]),
        ("measure carries no money", vec![("id = \"M2.voucher\"\nmeasure = \"M2\"", "id = \"M1.voucher\"\nmeasure = \"M1\"")], vec!["provision M1.voucher", "measure M1 carries no money"]),
        ("id not under its measure", vec![("id = \"M2.voucher\"", "id = \"M3.voucher\"")], vec!["provision M3.voucher", "start with \"M2.\""]),
        ("negative amount", vec![("amount = \"5000000\"", "amount = \"-5000000\"")], vec!["provision M2.lead", "amount must be positive, got -5000000"]),
        ("zero amount", vec![("amount = \"300000\"", "amount = \"0\"")], vec!["provision M2.other", "must be positive"]),
        ("zero cap", vec![("cap = \"100000.50\"", "cap = \"0.00\"")], vec!["provision M2.voucher", "cap must be positive"]),
        ("zero envelope", vec![("total = \"10000000\"", "total = \"0\"")], vec!["provision M2.programme", "total must be positive"]),
        ("zero annual cap", vec![("once = false\nbasis = [{ name = \"contract_amount\"", "once = false\nfirm_annual_cap = \"0\"\nbasis = [{ name = \"contract_amount\"")], vec!["firm_annual_cap must be positive"]),
        ("3 decimals", vec![("amount = \"5000000\"", "amount = \"5000000.001\"")], vec!["provision M2.lead", "more than 2 decimals"]),
        ("3 decimals in a cap", vec![("cap = \"100000.50\"", "cap = \"100000.505\"")], vec!["provision M2.voucher", "cap = 100000.505"]),
        ("zero rate", vec![("rate = \"0.20\"", "rate = \"0\"")], vec!["provision M2.voucher", "rate 0 must be above 0"]),
        ("negative rate", vec![("rate = \"0.20\"", "rate = \"-0.20\"")], vec!["rate -0.20 must be above 0"]),
        ("rate above 100%", vec![("rate = \"0.20\"", "rate = \"20\"")], vec!["provision M2.voucher", "at most 1 (100%)"]),
        ("empty citation", vec![("citation = \"不超过30万元\"", "citation = \" \"")], vec!["provision M2.other", "citation is empty"]),
        ("no citation", vec![("citation = \"不超过30万元\"", "")], vec!["provision M2.other", "citation is empty"]),
        ("no responsible units", vec![("responsible_units = [\"市科技局\"]", "responsible_units = []")], vec!["measure M1", "responsible_units is empty"]),
        ("blank responsible unit", vec![("responsible_units = [\"市科技局\"]", "responsible_units = [\"市科技局\", \" \"]")], vec!["measure M1", "contains an empty unit"]),
        ("responsible units omitted", vec![("responsible_units = [\"市科技局\"]\n", "")], vec!["measure M1", "responsible_units is empty"]),
        ("rate base not in basis", vec![("base_field = \"contract_amount\"", "base_field = \"contract_sum\"")], vec!["provision M2.voucher", "rate base_field \"contract_sum\" is not among its basis fields"]),
        ("rate base not an amount", vec![("{ name = \"contract_amount\", kind = \"amount\" }", "{ name = \"contract_amount\", kind = \"text\" }")], vec!["provision M2.voucher", "kind text, expected amount"]),
        ("envelope lab not in basis", vec![("lab_field = \"lab\"", "lab_field = \"laboratory\"")], vec!["provision M2.programme", "envelope lab_field \"laboratory\""]),
        ("envelope opener unknown", vec![("opened_by = \"M2.lead\"", "opened_by = \"M2.leader\"")], vec!["provision M2.programme", "opened_by \"M2.leader\" is not a provision"]),
        ("envelope opener without recognition date", vec![("{ name = \"recognition_date\", kind = \"date\" }", "{ name = \"recognised_on\", kind = \"date\" }")], vec!["provision M2.lead", "\"recognition_date\""]),
        ("envelope of zero years", vec![("years = 5", "years = 0")], vec!["provision M2.programme", "years"]),
        ("excluded_if not a bool field", vec![("excluded_if = \"self_built\"", "excluded_if = \"self_build\"")], vec!["provision M2.voucher", "excluded_if \"self_build\""]),
        ("cap_per not in basis", vec![("cap_per = \"event_name\"", "cap_per = \"event\"")], vec!["provision M2.other", "cap_per \"event\""]),
        ("excludes unknown", vec![("excludes = [\"M2.other\"]", "excludes = [\"M2.others\"]")], vec!["provision M2.lead", "\"M2.others\""]),
        ("excludes one-sided", vec![("excludes = [\"M2.lead\"]", "excludes = []")], vec!["M2.lead excludes M2.other but M2.other does not exclude M2.lead"]),
        ("duplicate basis field", vec![("{ name = \"rd_spend\", kind = \"amount\" }", "{ name = \"lab\", kind = \"amount\" }")], vec!["provision M2.programme", "\"lab\" is declared twice"]),
        ("valid_until before valid_from", vec![("valid_until = 2027-05-21", "valid_until = 2024-05-21")], vec!["valid_until 2024-05-21 is before valid_from 2024-05-22"]),
        ("empty version", vec![("version = \"test-1\"", "version = \"\"")], vec!["version is empty"]),
        ("paying measure without provisions", vec![("carries_money = false", "carries_money = true")], vec!["measure M1", "no provision names it"]),
    ];
    for (name, edits, expect) in cases {
        let text = edit(&edits);
        let err = Catalogue::from_toml(&text);
        let Err(err) = err else {
            panic!("{name}: accepted")
        };
        let message = err.to_string();
        for fragment in &expect {
            assert!(
                message.contains(fragment),
                "{name}: message {message:?} lacks {fragment:?}"
            );
        }
    }

    // A few variants, for callers that match on them.
    assert!(matches!(
        check_err(
            &edit(&[("opened_by = \"M2.lead\"", "opened_by = \"M2.x\"")]),
            &[]
        ),
        E::UnknownOpener { .. }
    ));
    assert!(matches!(
        check_err(&edit(&[("rate = \"0.20\"", "rate = \"1.01\"")]), &[]),
        E::RateOutOfRange { .. }
    ));
    assert!(matches!(
        check_err(
            &edit(&[(
                "measure = \"M2\"\ntitle_zh = \"券\"",
                "measure = \"M7\"\ntitle_zh = \"券\""
            )]),
            &[]
        ),
        E::UnknownMeasure { .. }
    ));
    assert!(matches!(
        check_err("not toml at all = = =", &[]),
        E::Toml(_)
    ));
}
