//! `check_basis` and `evaluate` for every provision of the built-in catalogue.

use std::collections::BTreeSet;
use std::str::FromStr;

use fundledger_policy::{BasisError, BasisKind, Catalogue, Limit, Provision, ViolationKind};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

fn provision(id: &str) -> Provision {
    Catalogue::builtin()
        .provision(id)
        .unwrap_or_else(|| panic!("no provision {id}"))
        .clone()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("basis must be an object, got {other}"),
    }
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// Evaluates `requested` against provision `id` with `basis`; `expect` is `"ok <amount>"` or the
/// violation code.
fn check(id: &str, requested: Option<&str>, basis: Value, expect: &str) {
    let p = provision(id);
    let basis = p
        .check_basis(&object(basis))
        .unwrap_or_else(|e| panic!("{id}: basis refused: {e}"));
    let got = match p.evaluate(requested.map(dec), &basis) {
        Ok(amount) => format!("ok {amount}"),
        Err(violation) => violation.code().to_string(),
    };
    assert_eq!(got, expect, "{id} requested {requested:?}");
}

fn recognised() -> Value {
    json!({ "recognition_date": "2024-09-01" })
}

#[test]
fn every_provision_accepts_and_refuses() {
    let mut accepted = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut case = |id: &str, requested: Option<&str>, basis: Value, expect: &str| {
        check(id, requested, basis, expect);
        let seen = if expect.starts_with("ok") {
            &mut accepted
        } else {
            &mut refused
        };
        seen.insert(id.to_string());
    };

    let contract =
        |amount: &str| json!({ "contract_amount": amount, "contract_id": "HT-2024-001" });
    case(
        "M2.compute_voucher",
        Some("200000"),
        contract("1000000"),
        "ok 200000",
    );
    case(
        "M2.compute_voucher",
        Some("200000.00"),
        contract("1000000.00"),
        "ok 200000.00",
    );
    case(
        "M2.compute_voucher",
        Some("200000.01"),
        contract("1000000"),
        "exceeds_rate",
    );
    case(
        "M2.compute_voucher",
        Some("0.20"),
        contract("1.01"),
        "ok 0.20",
    );
    case(
        "M2.compute_voucher",
        Some("0.21"),
        contract("1.01"),
        "exceeds_rate",
    );
    case(
        "M2.compute_voucher",
        None,
        contract("1000000"),
        "invalid_amount",
    );
    case(
        "M2.compute_voucher",
        Some("0"),
        contract("1000000"),
        "invalid_amount",
    );
    case(
        "M2.compute_voucher",
        Some("100.001"),
        contract("1000000"),
        "invalid_amount",
    );
    case(
        "M2.compute_voucher",
        Some("1"),
        json!({ "contract_amount": "1000000", "contract_id": "x", "self_built": true }),
        "excluded_self_built",
    );
    // Excluded comes first, even when the amount is also wrong.
    case(
        "M2.compute_voucher",
        Some("-5"),
        json!({ "contract_amount": "1000000", "contract_id": "x", "self_built": true }),
        "excluded_self_built",
    );
    case(
        "M2.compute_voucher",
        Some("1"),
        json!({ "contract_amount": "1000000", "contract_id": "x", "self_built": false, "provincial_voucher": true }),
        "ok 1",
    );

    let project = json!({ "project_id": "ZX-2024-01" });
    case(
        "M4.major_project",
        Some("10000000"),
        project.clone(),
        "ok 10000000",
    );
    case(
        "M4.major_project",
        Some("25000000.50"),
        project.clone(),
        "ok 25000000.50",
    );
    case(
        "M4.major_project",
        Some("9999999.99"),
        project.clone(),
        "below_minimum",
    );
    case("M4.major_project", None, project.clone(), "invalid_amount");

    case(
        "M4.case_by_case",
        Some("123456789.12"),
        project.clone(),
        "ok 123456789.12",
    );
    case("M4.case_by_case", Some("0.01"), project.clone(), "ok 0.01");
    case(
        "M4.case_by_case",
        Some("0"),
        project.clone(),
        "invalid_amount",
    );
    case("M4.case_by_case", None, project.clone(), "invalid_amount");

    let scenario = json!({ "scenario_id": "SC-1" });
    case(
        "M5.model_scenario",
        Some("5000000"),
        scenario.clone(),
        "ok 5000000",
    );
    case(
        "M5.model_scenario",
        Some("5000000.01"),
        scenario.clone(),
        "exceeds_provision_cap",
    );
    case(
        "M5.model_scenario",
        None,
        scenario.clone(),
        "invalid_amount",
    );

    let lab = json!({ "lab": "APP-LAB-1", "rd_spend": "32000000" });
    case(
        "M6.key_lab_programme",
        Some("2000000"),
        lab.clone(),
        "ok 2000000",
    );
    case("M6.key_lab_programme", None, lab.clone(), "invalid_amount");
    case(
        "M6.key_lab_programme",
        Some("-1"),
        lab.clone(),
        "invalid_amount",
    );

    let fixed = [
        ("M6.key_lab_lead", "5000000"),
        ("M6.key_lab_cobuilder", "1000000"),
        ("M6.innovation_center_lead", "5000000"),
        ("M7.national_demo_factory", "3000000"),
        ("M7.national_excellent_scenario", "1000000"),
        ("M7.provincial_benchmark", "1000000"),
        ("M7.provincial_smart_factory", "500000"),
        ("M7.provincial_smart_workshop", "300000"),
        ("M8.unicorn", "5000000"),
        ("M8.potential_unicorn", "2000000"),
        ("M8.little_giant", "1000000"),
        ("M8.hidden_champion", "1000000"),
        ("M8.benchmark_enterprise", "100000"),
        ("M9.national_demo_base", "2000000"),
        ("M9.provincial_demo_base", "1000000"),
    ];
    for (id, amount) in fixed {
        let ok = format!("ok {amount}");
        case(id, None, recognised(), &ok);
        case(id, Some(amount), recognised(), &ok);
        // The same number written to the fen is the same amount.
        case(id, Some(&format!("{amount}.00")), recognised(), &ok);
        let less = (dec(amount) - dec("0.01")).to_string();
        case(id, Some(&less), recognised(), "invalid_amount");
        let more = (dec(amount) * Decimal::TWO).to_string();
        case(id, Some(&more), recognised(), "invalid_amount");
    }

    let invest = |amount: &str| json!({ "actual_investment": amount });
    case(
        "M7.scenario_project",
        Some("3000000"),
        invest("10000000"),
        "ok 3000000",
    );
    case(
        "M7.scenario_project",
        Some("3000000.01"),
        invest("10000000"),
        "exceeds_rate",
    );
    case(
        "M7.scenario_project",
        Some("5000000"),
        invest("20000000"),
        "ok 5000000",
    );
    case(
        "M7.scenario_project",
        Some("5000000.01"),
        invest("20000000"),
        "exceeds_provision_cap",
    );
    // Both bounds broken: the tighter one is reported.
    case(
        "M7.scenario_project",
        Some("7000000"),
        invest("20000000"),
        "exceeds_provision_cap",
    );
    case(
        "M7.scenario_project",
        Some("4000000"),
        invest("10000000"),
        "exceeds_rate",
    );
    // 30% of 16666666.67 is 5000000.001: the rate allows 5000000.00, which is also the cap.
    case(
        "M7.scenario_project",
        Some("5000000.00"),
        invest("16666666.67"),
        "ok 5000000.00",
    );
    case(
        "M7.scenario_project",
        Some("5000000.01"),
        invest("16666666.67"),
        "exceeds_rate",
    );
    // 30% of 0.05 is 0.015: nothing above 0.01 fits.
    case(
        "M7.scenario_project",
        Some("0.01"),
        invest("0.05"),
        "ok 0.01",
    );
    case(
        "M7.scenario_project",
        Some("0.02"),
        invest("0.05"),
        "exceeds_rate",
    );

    let event = json!({ "event_name": "2025 郑州人工智能大会" });
    case("M10.event", Some("300000"), event.clone(), "ok 300000");
    case(
        "M10.event",
        Some("300000.01"),
        event.clone(),
        "exceeds_provision_cap",
    );
    case(
        "M10.event",
        Some("-300000"),
        event.clone(),
        "invalid_amount",
    );

    let all: BTreeSet<String> = Catalogue::builtin()
        .provisions
        .iter()
        .map(|p| p.id.clone())
        .collect();
    assert_eq!(accepted, all, "every provision needs an accepting case");
    assert_eq!(refused, all, "every provision needs a refusing case");
}

#[test]
fn messages_state_the_numbers() {
    let check_message = |id: &str, requested: &str, basis: Value, expect: &str| {
        let p = provision(id);
        let basis = p.check_basis(&object(basis)).unwrap();
        let violation = p.evaluate(Some(dec(requested)), &basis).unwrap_err();
        assert!(
            violation.message().contains(expect),
            "{id}: {:?} lacks {expect:?}",
            violation.message()
        );
        assert!(violation.to_string().starts_with(violation.code()));
    };
    check_message(
        "M2.compute_voucher",
        "250000",
        json!({ "contract_amount": "1000000", "contract_id": "c" }),
        "requested 250000.00 exceeds 20% of contract_amount 1000000.00 (= 200000.00)",
    );
    check_message("M7.scenario_project", "7000000", json!({ "actual_investment": "20000000" }),
        "requested 7000000.00 exceeds the cap 5000000.00 (30% of actual_investment 20000000.00 (= 6000000.00))");
    check_message(
        "M5.model_scenario",
        "5000000.01",
        json!({ "scenario_id": "s" }),
        "requested 5000000.01 exceeds the cap 5000000.00",
    );
    check_message(
        "M4.major_project",
        "9999999.99",
        json!({ "project_id": "p" }),
        "requested 9999999.99 is below the minimum 10000000.00",
    );
    check_message(
        "M8.unicorn",
        "2000000",
        recognised(),
        "requested 2000000.00 but this award is fixed at 5000000.00",
    );
    check_message(
        "M2.compute_voucher",
        "1",
        json!({ "contract_amount": "1", "contract_id": "c", "self_built": true }),
        "self_built is true",
    );
    check_message(
        "M10.event",
        "0.001",
        json!({ "event_name": "e" }),
        "more than 2 decimals",
    );
}

#[test]
fn violation_codes_are_the_contract() {
    use ViolationKind::*;
    let codes: Vec<&str> = [
        InvalidAmount,
        ExceedsRate,
        ExceedsProvisionCap,
        BelowMinimum,
        ExcludedSelfBuilt,
    ]
    .map(|k| k.code())
    .to_vec();
    assert_eq!(
        codes,
        [
            "invalid_amount",
            "exceeds_rate",
            "exceeds_provision_cap",
            "below_minimum",
            "excluded_self_built"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Basis

/// Checks `basis` against provision `id`; `expect` is `"ok"` or the error's message fragment.
fn check_basis(id: &str, basis: Value, expect: &str) {
    let p = provision(id);
    match p.check_basis(&object(basis.clone())) {
        Ok(_) => assert_eq!(expect, "ok", "{id} {basis}"),
        Err(e) => {
            assert!(
                e.to_string().contains(expect),
                "{id} {basis}: {e:?} lacks {expect:?}"
            );
            assert_eq!(e.code(), "malformed");
        }
    }
}

#[test]
fn basis_errors() {
    let v = "M2.compute_voucher";
    check_basis(
        v,
        json!({ "contract_amount": "1000000", "contract_id": "c" }),
        "ok",
    );
    check_basis(
        v,
        json!({ "contract_id": "c" }),
        "basis field \"contract_amount\" is required (amount)",
    );
    check_basis(
        v,
        json!({ "contract_amount": "1000000" }),
        "basis field \"contract_id\" is required (text)",
    );
    check_basis(
        v,
        json!({ "contract_amount": 1000000, "contract_id": "c" }),
        "must be an amount string such as \"1000000.00\", got a number",
    );
    check_basis(
        v,
        json!({ "contract_amount": 1000000.5, "contract_id": "c" }),
        "got a number",
    );
    check_basis(
        v,
        json!({ "contract_amount": "1000000.001", "contract_id": "c" }),
        "has more than 2 decimals",
    );
    check_basis(
        v,
        json!({ "contract_amount": "0", "contract_id": "c" }),
        "must be positive",
    );
    check_basis(
        v,
        json!({ "contract_amount": "-1", "contract_id": "c" }),
        "must be positive",
    );
    check_basis(
        v,
        json!({ "contract_amount": "1e6", "contract_id": "c" }),
        "is not a decimal amount",
    );
    check_basis(
        v,
        json!({ "contract_amount": " 100", "contract_id": "c" }),
        "is not a decimal amount",
    );
    check_basis(
        v,
        json!({ "contract_amount": "1_000", "contract_id": "c" }),
        "is not a decimal amount",
    );
    check_basis(
        v,
        json!({ "contract_amount": "100", "contract_id": "" }),
        "basis field \"contract_id\" must not be empty",
    );
    check_basis(
        v,
        json!({ "contract_amount": "100", "contract_id": 7 }),
        "\"contract_id\" must be a string, got a number",
    );
    check_basis(
        v,
        json!({ "contract_amount": "100", "contract_id": "c", "self_built": "yes" }),
        "\"self_built\" must be a JSON bool, got a string",
    );
    check_basis(
        v,
        json!({ "contract_amount": "100", "contract_id": "c", "provincial_voucher": null }),
        "got null",
    );
    check_basis(v, json!({ "contract_amount": "100", "contract_id": "c", "vendor": "x", "colour": "red" }),
        "unknown basis field \"colour\"; this provision takes contract_amount, contract_id, self_built, provincial_voucher");

    let lead = "M6.key_lab_lead";
    check_basis(lead, json!({ "recognition_date": "2024-09-01" }), "ok");
    check_basis(lead, json!({}), "\"recognition_date\" is required (date)");
    check_basis(
        lead,
        json!({ "recognition_date": "2024-9-1" }),
        "\"2024-9-1\" is not a date YYYY-MM-DD",
    );
    check_basis(
        lead,
        json!({ "recognition_date": "2024-02-30" }),
        "is not a date",
    );
    check_basis(
        lead,
        json!({ "recognition_date": "2024-09-01T00:00:00+08:00" }),
        "is not a date",
    );
    check_basis(
        lead,
        json!({ "recognition_date": 20240901 }),
        "got a number",
    );

    let programme = "M6.key_lab_programme";
    check_basis(
        programme,
        json!({ "lab": "APP-1", "rd_spend": "100.5" }),
        "ok",
    );
    check_basis(
        programme,
        json!({ "lab": " ", "rd_spend": "100" }),
        "\"lab\" must not be empty",
    );
    check_basis(
        programme,
        json!({ "lab": ["APP-1"], "rd_spend": "100" }),
        "got an array",
    );
}

#[test]
fn basis_gives_typed_access() {
    let voucher = provision("M2.compute_voucher");
    let basis = voucher
        .check_basis(&object(json!({ "contract_amount": "1000000.50", "contract_id": "HT-1", "provincial_voucher": true })))
        .unwrap();
    assert_eq!(basis.amount("contract_amount"), Some(dec("1000000.50")));
    assert_eq!(basis.text("contract_id"), Some("HT-1"));
    assert!(basis.flag("provincial_voucher"));
    // An omitted optional bool is present as false.
    assert!(!basis.flag("self_built"));
    assert!(basis.get("self_built").is_some());
    assert_eq!(basis.amount("contract_id"), None);
    assert_eq!(basis.iter().count(), 4);

    let programme = provision("M6.key_lab_programme");
    let basis = programme
        .check_basis(&object(json!({ "lab": "APP-1", "rd_spend": "100" })))
        .unwrap();
    assert_eq!(basis.text("lab"), Some("APP-1"));

    let lead = provision("M6.key_lab_lead");
    let basis = lead
        .check_basis(&object(json!({ "recognition_date": "2024-09-01" })))
        .unwrap();
    assert_eq!(
        basis.date("recognition_date"),
        chrono::NaiveDate::from_ymd_opt(2024, 9, 1)
    );
}

#[test]
fn rate_without_its_base_is_refused_not_panicked() {
    // A basis checked against another provision lacks the base amount.
    let voucher = provision("M2.compute_voucher");
    let other = provision("M5.model_scenario")
        .check_basis(&object(json!({ "scenario_id": "s" })))
        .unwrap();
    let violation = voucher.evaluate(Some(dec("1")), &other).unwrap_err();
    assert_eq!(violation.code(), "invalid_amount");
    assert!(violation.message().contains("contract_amount"));
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A basis for `p` with every amount field set to `base` and other fields plausible.
fn basis_for(p: &Provision, base: &str, flags: bool) -> Map<String, Value> {
    let mut map = Map::new();
    for field in &p.basis {
        let value = match field.kind {
            BasisKind::Amount => json!(base),
            BasisKind::Bool => json!(flags),
            BasisKind::Date => json!("2025-03-01"),
            BasisKind::Text | BasisKind::ApplicationId => json!("x"),
        };
        map.insert(field.name.clone(), value);
    }
    map
}

fn any_amount() -> impl Strategy<Value = Decimal> {
    // Mostly plausible yuan (where the bounds bite), some arbitrary and extreme values.
    prop_oneof![
        // Log-uniform from fen to tens of millions, so every cap and rate bound is crossed.
        6 => "-?[1-9][0-9]{0,8}(\\.[0-9]{1,2})?".prop_map(|text| dec(&text)),
        2 => (any::<i64>(), 0u32..=4).prop_map(|(m, s)| Decimal::new(m, s)),
        1 => prop_oneof![Just(Decimal::MAX), Just(Decimal::MIN), Just(Decimal::ZERO)],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn evaluate_stays_within_its_bound(
        // Weighted towards the provisions whose limit depends on the amount (not fixed).
        index in prop_oneof![1 => 0usize..22, 3 => prop::sample::select(vec![0usize, 1, 2, 3, 5, 8, 21])],
        requested in proptest::option::of(any_amount()),
        base in prop_oneof![
            6 => "[1-9][0-9]{0,8}(\\.[0-9]{1,2})?",
            1 => "-?[0-9]{1,29}(\\.[0-9]{1,3})?",
            1 => any::<String>(),
        ],
        flags in any::<bool>(),
    ) {
        let catalogue = Catalogue::builtin();
        let p = &catalogue.provisions[index];
        let Ok(basis) = p.check_basis(&basis_for(p, &base, flags)) else {
            return Ok(());
        };
        let Ok(amount) = p.evaluate(requested, &basis) else {
            return Ok(());
        };
        prop_assert!(amount > Decimal::ZERO);
        prop_assert!(amount.scale() <= 2);
        prop_assert!(!(p.excluded_if.is_some() && flags), "excluded applicant accepted");
        match &p.limit {
            Limit::Fixed { amount: fixed } => prop_assert_eq!(amount, *fixed),
            Limit::Cap { amount: cap } => prop_assert!(amount <= *cap),
            Limit::Rate { rate, base_field, cap } => {
                prop_assert!(amount <= *rate * basis.amount(base_field).unwrap());
                if let Some(cap) = cap {
                    prop_assert!(amount <= *cap);
                }
            }
            Limit::Minimum { amount: minimum } => prop_assert!(amount >= *minimum),
            Limit::Open | Limit::Envelope { .. } => prop_assert_eq!(Some(amount), requested),
        }
        if !matches!(p.limit, Limit::Fixed { .. }) {
            prop_assert_eq!(Some(amount), requested);
        }
    }

    #[test]
    fn rate_bound_is_tight(use_m7 in any::<bool>(), base in "[1-9][0-9]{0,8}(\\.[0-9]{1,2})?") {
        // The largest accepted amount is min(rate × base truncated to the fen, cap); one fen
        // more is refused.
        let p = provision(if use_m7 { "M7.scenario_project" } else { "M2.compute_voucher" });
        let basis = p.check_basis(&basis_for(&p, &base, false)).unwrap();
        let Limit::Rate { rate, cap, .. } = p.limit else { panic!("not a rate") };
        let by_rate = (rate * dec(&base)).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
        let max = cap.map_or(by_rate, |cap| cap.min(by_rate));
        let fen = dec("0.01");
        if max >= fen {
            prop_assert_eq!(p.evaluate(Some(max), &basis), Ok(max));
        }
        let code = p.evaluate(Some(max + fen), &basis).unwrap_err().code();
        let expect = if cap.is_some_and(|cap| cap < by_rate) { "exceeds_provision_cap" } else { "exceeds_rate" };
        prop_assert_eq!(code, expect);
    }

    #[test]
    fn check_basis_never_panics(value in any::<String>(), number in any::<f64>(), index in 0usize..22) {
        let catalogue = Catalogue::builtin();
        let p = &catalogue.provisions[index];
        for raw in [json!(value), json!(number), json!(null), json!([value.clone()])] {
            let mut map = Map::new();
            for field in &p.basis {
                map.insert(field.name.clone(), raw.clone());
            }
            if let Err(e) = p.check_basis(&map) {
                prop_assert!(!e.field().is_empty());
                let _ = matches!(e, BasisError::Unknown { .. });
            }
        }
    }
}
