//! Given/when/then tests of `decide`: every provision of DESIGN §2 on its accepting and its
//! refusing side, every code of DESIGN §7, and the budget arithmetic. Pure: no store, no clock.

mod support;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use fundledger_events::{ChainVerifier, Event, Head};
use fundledger_ledger::{uscc, Code};
use fundledger_policy::BUILTIN_CATALOGUE;
use fundledger_projections::invariants;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::*;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

/// Budgets for every measure that pays, fiscal years 2024–2029, large enough not to bind.
fn budgets() -> Vec<Value> {
    let mut commands = Vec::new();
    for year in 2024..=2029 {
        for measure in ["M2", "M4", "M5", "M6", "M7", "M8", "M9", "M10"] {
            commands.push(allocate(measure, year, "500000000"));
        }
    }
    commands
}

fn funded() -> World {
    given(budgets())
}

/// The budget row of a measure and year: (allocated, committed, paid, remaining).
fn budget(world: &World, measure: &str, year: i32) -> (Decimal, Decimal, Decimal, Decimal) {
    let row = world
        .state
        .budget_rows()
        .into_iter()
        .find(|row| row.measure == measure && row.fiscal_year == year)
        .unwrap_or_else(|| panic!("no budget row {measure}/{year}"));
    (row.allocated, row.committed, row.paid, row.remaining)
}

fn claimed_vouchers(world: &World, uscc: &str, year: i32) -> Option<String> {
    world
        .state
        .firm_row(uscc)
        .and_then(|row| row.voucher_claimed.get(&year.to_string()).cloned())
}

fn status(world: &World, application_id: &str) -> &'static str {
    world
        .state
        .application_row(application_id)
        .unwrap_or_else(|| panic!("no application {application_id}"))
        .status
}

fn assert_invariants(world: &World) {
    let found = invariants::violations(&world.state);
    assert!(found.is_empty(), "invariants violated: {found:#?}");
}

// =============================================================================================
// The harness itself

#[test]
fn a_new_ledger_holds_the_builtin_catalogue_at_seq_1_chained_from_the_genesis() {
    let world = World::new();
    assert_eq!(world.state.last_seq, 1);
    let (seq, catalogue) = world.state.current_policy().expect("a catalogue");
    assert_eq!(seq, 1);
    assert_eq!(catalogue.valid_from, date("2024-05-22"));
    assert_eq!(catalogue.valid_until, date("2027-05-21"));
    assert_eq!(world.records[0].prev, Head::empty(ORIGIN).hash);
    assert_eq!(world.records[0].body["type"], "policy_registered");
    assert_eq!(world.records[0].body["catalogue"], BUILTIN_CATALOGUE);
    assert_eq!(world.records[0].body["actor"]["id"], "fundledger");

    let world = world.given([allocate("M2", 2024, "1000000")]);
    let mut verifier = ChainVerifier::new(ORIGIN);
    for record in &world.records {
        verifier.check_record(record).expect("a valid chain");
    }
    assert_eq!(verifier.head().seq, 2);
}

#[test]
fn recorded_bodies_carry_the_command_id_digest_actor_and_business_time() {
    let command = with_at(allocate("M2", 2024, "1000000"), "2024-07-01T09:30:00+08:00");
    let id = command["command_id"].as_str().unwrap().to_string();
    let world = World::new().when(command).then_accepted();
    let body = &world.records[1].body;
    assert_eq!(body["command_id"], id.as_str());
    assert_eq!(body["recorded_at"], "2024-07-01T09:30:00+08:00");
    assert_eq!(body["actor"]["id"], "fin.zhang");
    assert_eq!(body["amount"], "1000000.00");
    assert!(body["command_digest"]
        .as_str()
        .is_some_and(|d| d.len() == 64));
}

// =============================================================================================
// §7 malformed and unauthorized: commands that cannot be read

#[test]
fn a_command_that_is_not_an_object_is_malformed() {
    for value in [
        json!([]),
        json!("allocate_budget"),
        json!(42),
        json!(null),
        json!(true),
    ] {
        World::new().when(value).then_code(Code::Malformed);
    }
}

#[test]
fn unknown_fields_are_malformed_wherever_they_are() {
    let top = with_field(allocate("M2", 2024, "100"), "colour", json!("red"));
    World::new().when(top).then_code(Code::Malformed);

    let mut actor = finance("fin.zhang");
    actor["clearance"] = json!("top");
    let in_actor = with_actor(allocate("M2", 2024, "100"), actor);
    World::new().when(in_actor).then_code(Code::Malformed);

    let mut submission = voucher("A-1", &firm(1), "100", "1000");
    submission["firm"]["address"] = json!("郑东新区");
    World::new().when(submission).then_code(Code::Malformed);

    let in_review = with_field(review("A-1", GXJ, true), "score", json!(5));
    World::new().when(in_review).then_code(Code::Malformed);

    // An undeclared basis field is malformed too (nothing is recorded).
    let mut basis = voucher("A-1", &firm(1), "100", "1000");
    basis["basis"]["discount"] = json!("0.1");
    funded().when(basis).then_code(Code::Malformed);
}

#[test]
fn wrong_types_are_malformed() {
    let cases = [
        with_field(allocate("M2", 2024, "100"), "fiscal_year", json!("2024")),
        with_field(allocate("M2", 2024, "100"), "amount", json!(100)),
        with_field(allocate("M2", 2024, "100"), "amount", json!(100.5)),
        with_field(review("A-1", GXJ, true), "recommend", json!("yes")),
        with_field(confirm_payout("P-1"), "value_date", json!("yesterday")),
        with_field(allocate("M2", 2024, "100"), "command_id", json!(7)),
        with_field(allocate("M2", 2024, "100"), "at", json!(1717200000)),
        with_field(allocate("M2", 2024, "100"), "at", json!("2024-06-01 10:00")),
        with_actor(
            allocate("M2", 2024, "100"),
            json!({"id": "x", "role": "superuser"}),
        ),
        with_actor(allocate("M2", 2024, "100"), json!("fin.zhang")),
        with_field(
            voucher("A-1", &firm(1), "100", "1000"),
            "basis",
            json!(["contract_amount"]),
        ),
    ];
    for command in cases {
        World::new().when(command).then_code(Code::Malformed);
    }
}

#[test]
fn basis_fields_are_checked_for_presence_and_type() {
    let uscc = firm(1);
    let cases = [
        json!({"contract_id": "HT-1"}),
        json!({"contract_amount": "1000000", "contract_id": "HT-1", "self_built": "no"}),
        json!({"contract_amount": 1000000, "contract_id": "HT-1"}),
        json!({"contract_amount": "-1", "contract_id": "HT-1"}),
        json!({"contract_amount": "1000000", "contract_id": ""}),
    ];
    for basis in cases {
        let command = submit(
            "A-1",
            &uscc,
            "M2.compute_voucher",
            2024,
            Some("1000"),
            basis,
        );
        funded().when(command).then_code(Code::Malformed);
    }
    let bad_date = submit(
        "A-2",
        &uscc,
        "M8.little_giant",
        2024,
        None,
        json!({"recognition_date": "2024/05/30"}),
    );
    funded().when(bad_date).then_code(Code::Malformed);
}

#[test]
fn unknown_command_types_and_missing_envelope_fields_are_malformed() {
    let unknown = with_field(
        allocate("M2", 2024, "100"),
        "type",
        json!("delete_everything"),
    );
    World::new()
        .when(unknown)
        .then_code_saying(Code::Malformed, "unknown command type");
    let no_type = without_field(allocate("M2", 2024, "100"), "type");
    World::new().when(no_type).then_code(Code::Malformed);
    let no_id = without_field(allocate("M2", 2024, "100"), "command_id");
    World::new().when(no_id).then_code(Code::Malformed);
    let not_uuid = with_field(allocate("M2", 2024, "100"), "command_id", json!("cmd-1"));
    World::new().when(not_uuid).then_code(Code::Malformed);
    let no_amount = without_field(allocate("M2", 2024, "100"), "amount");
    World::new().when(no_amount).then_code(Code::Malformed);
}

#[test]
fn other_malformed_commands() {
    // A catalogue that does not load.
    World::new()
        .when(register_policy("version = 1"))
        .then_code(Code::Malformed);
    // Measures that carry no money, and measures that do not exist, take no budget.
    for measure in ["M1", "M3", "M11", "m2", ""] {
        World::new()
            .when(allocate(measure, 2024, "100"))
            .then_code(Code::Malformed);
    }
    // An applicant actor must name its firm.
    let no_firm = with_actor(
        voucher("A-1", &firm(1), "100", "1000"),
        json!({"id": "app.x", "role": "applicant"}),
    );
    funded().when(no_firm).then_code(Code::Malformed);
    // A recognition after the submission date is not a fact yet.
    let future = submit(
        "A-1",
        &firm(1),
        "M8.little_giant",
        2024,
        None,
        json!({"recognition_date": "2024-06-02"}),
    );
    funded().when(future).then_code(Code::Malformed);
    // Implausible fiscal years.
    for year in [1999, 2101] {
        let command = submit(
            "A-1",
            &firm(1),
            "M10.event",
            year,
            Some("1000"),
            json!({"event_name": "AI大会"}),
        );
        funded().when(command).then_code(Code::Malformed);
    }
    // Empty identifiers and bank references.
    funded()
        .when(voucher(" ", &firm(1), "100", "1000"))
        .then_code(Code::Malformed);
    let mut nameless = voucher("A-1", &firm(1), "100", "1000");
    nameless["firm"]["name"] = json!("");
    funded().when(nameless).then_code(Code::Malformed);
    let overlong = voucher(&"A".repeat(129), &firm(1), "100", "1000");
    funded().when(overlong).then_code(Code::Malformed);
    let world = paid_voucher_world();
    world
        .clone()
        .when(with_field(
            order_clawback("C-1", "A-1", "100"),
            "clawback_id",
            json!(""),
        ))
        .then_code(Code::Malformed);
    world
        .when(with_field(
            repay("C-404", "100"),
            "bank_reference",
            json!("x"),
        ))
        .then_code(Code::UnknownClawback);
}

#[test]
fn a_command_without_an_actor_is_unauthorized() {
    let no_actor = without_field(allocate("M2", 2024, "100"), "actor");
    World::new().when(no_actor).then_code(Code::Unauthorized);
    let null_actor = with_field(allocate("M2", 2024, "100"), "actor", Value::Null);
    World::new().when(null_actor).then_code(Code::Unauthorized);
    for id in ["", "   "] {
        let anonymous = with_actor(
            allocate("M2", 2024, "100"),
            json!({"id": id, "role": "finance", "unit": CZJ}),
        );
        World::new().when(anonymous).then_code(Code::Unauthorized);
    }
}

// =============================================================================================
// §7 forbidden: roles, firms and responsible units

/// One well-formed command of every type, about application A-1 / payout P-1 / clawback C-1.
fn one_of_each_type() -> Vec<Value> {
    let uscc = firm(1);
    vec![
        register_policy(BUILTIN_CATALOGUE),
        allocate("M2", 2024, "100"),
        voucher("A-9", &uscc, "100", "1000"),
        review("A-1", GXJ, true),
        endorse("A-1"),
        approve("A-1", GXJ, "100"),
        reject("A-1", GXJ),
        withdraw("A-1", &uscc),
        order_payout("P-9", "A-1", "100"),
        confirm_payout("P-1"),
        fail_payout("P-1"),
        order_clawback("C-9", "A-1", "100"),
        repay("C-1", "100"),
    ]
}

/// A world where firm 1's compute voucher A-1 (200,000) is approved, paid by P-1 (confirmed)
/// and clawed back by C-1 (50,000, nothing repaid), and its voucher A-2 (100,000) is submitted.
/// The M2 budget of 2024 is 1,000,000.
fn paid_voucher_world() -> World {
    let uscc = firm(1);
    let mut commands = vec![allocate("M2", 2024, "1000000")];
    commands.extend(awarded(
        voucher("A-1", &uscc, "200000", "1000000"),
        "200000",
    ));
    commands.push(order_payout("P-1", "A-1", "200000"));
    commands.push(confirm_payout("P-1"));
    commands.push(order_clawback("C-1", "A-1", "50000"));
    commands.push(voucher("A-2", &uscc, "100000", "1000000"));
    given(commands)
}

#[test]
fn an_auditor_may_write_nothing() {
    let world = paid_voucher_world();
    for command in one_of_each_type() {
        let kind = command["type"].as_str().unwrap().to_string();
        let as_auditor = with_actor(command, auditor("aud.qian"));
        let step = world.clone().step(&as_auditor);
        assert_eq!(step.code(), Some(Code::Forbidden), "{kind}: {step:?}");
    }
}

#[test]
fn each_command_refuses_the_wrong_roles() {
    let world = paid_voucher_world();
    let uscc = firm(1);
    let wrong: Vec<(Value, Value)> = vec![
        (register_policy(BUILTIN_CATALOGUE), finance("fin.zhang")),
        (register_policy(BUILTIN_CATALOGUE), applicant(&uscc)),
        (allocate("M2", 2024, "100"), reviewer("rev.x", CZJ)),
        (allocate("M2", 2024, "100"), admin("adm.root")),
        (
            allocate("M2", 2024, "100"),
            json!({"id": "fin.gx", "role": "finance", "unit": GXJ}),
        ),
        (
            voucher("A-9", &uscc, "100", "1000"),
            approver("apr.li", GXJ),
        ),
        (voucher("A-9", &uscc, "100", "1000"), finance("fin.zhang")),
        (voucher("A-9", &uscc, "100", "1000"), government("gov.chen")),
        (review("A-2", GXJ, true), approver("apr.li", GXJ)),
        (review("A-2", GXJ, true), applicant(&uscc)),
        (endorse("A-2"), reviewer("rev.wang", GXJ)),
        (endorse("A-2"), admin("adm.root")),
        (approve("A-2", GXJ, "100"), reviewer("rev.wang", GXJ)),
        (approve("A-2", GXJ, "100"), government("gov.chen")),
        (reject("A-2", GXJ), applicant(&uscc)),
        (reject("A-2", GXJ), finance("fin.zhang")),
        (withdraw("A-2", &uscc), reviewer("rev.wang", GXJ)),
        (order_payout("P-9", "A-1", "100"), approver("apr.li", CZJ)),
        (confirm_payout("P-1"), reviewer("rev.wang", CZJ)),
        (fail_payout("P-1"), admin("adm.root")),
        (order_clawback("C-9", "A-1", "100"), government("gov.chen")),
        (repay("C-1", "100"), approver("apr.li", CZJ)),
        (
            repay("C-1", "100"),
            json!({"id": "fin.x", "role": "finance", "unit": "市审计局"}),
        ),
    ];
    for (command, actor) in wrong {
        world
            .clone()
            .when(with_actor(command, actor))
            .then_code(Code::Forbidden);
    }
}

#[test]
fn an_applicant_acts_only_for_its_own_firm() {
    let (mine, theirs) = (firm(1), firm(2));
    let for_them = with_actor(voucher("A-1", &theirs, "100", "1000"), applicant(&mine));
    funded()
        .when(for_them)
        .then_code_saying(Code::Forbidden, "own firm");
    let world = funded().given([voucher("A-1", &theirs, "100", "1000")]);
    world
        .clone()
        .when(withdraw("A-1", &mine))
        .then_code(Code::Forbidden);
    world.when(withdraw("A-1", &theirs)).then_accepted();
}

#[test]
fn only_a_responsible_unit_reviews_approves_rejects_or_submits_for_a_firm() {
    let uscc = firm(1);
    // M4 belongs to 市科技局 and 市财政局; 市工信局 is not responsible for it.
    let major = submit(
        "A-4",
        &uscc,
        "M4.major_project",
        2024,
        Some("10000000"),
        json!({"project_id": "ZD-1"}),
    );
    let world = funded().given([voucher("A-1", &uscc, "100", "1000"), major.clone()]);
    world
        .clone()
        .when(review("A-1", SJJ, true))
        .then_code_saying(Code::Forbidden, "责任单位");
    world
        .clone()
        .when(review("A-4", GXJ, true))
        .then_code(Code::Forbidden);
    world
        .clone()
        .when(reject("A-4", GXJ))
        .then_code(Code::Forbidden);
    let reviewed = world.clone().given([review("A-4", KJJ, true)]);
    reviewed
        .clone()
        .when(approve("A-4", GXJ, "10000000"))
        .then_code(Code::Forbidden);
    reviewed
        .when(approve("A-4", CZJ, "10000000"))
        .then_accepted();
    // A reviewer of a responsible unit may submit on a firm's behalf; another may not.
    let on_behalf = |unit: &str| {
        with_actor(
            voucher("A-9", &uscc, "100", "1000"),
            reviewer("rev.gx", unit),
        )
    };
    world
        .clone()
        .when(on_behalf(SJJ))
        .then_code(Code::Forbidden);
    world.clone().when(on_behalf(GXJ)).then_accepted();
    let m4_on_behalf = with_actor(
        with_field(major, "application_id", json!("A-5")),
        reviewer("rev.gx", GXJ),
    );
    world.when(m4_on_behalf).then_code(Code::Forbidden);
}

// =============================================================================================
// §7 segregation of duties

#[test]
fn the_four_eyes_rules() {
    let uscc = firm(1);
    let by_reviewer = with_actor(
        voucher("A-1", &uscc, "200000", "1000000"),
        reviewer("rev.wang", GXJ),
    );
    let world = given([allocate("M2", 2024, "1000000"), by_reviewer]);
    // The reviewer who submitted it may not review it.
    world
        .clone()
        .when(review("A-1", GXJ, true))
        .then_code(Code::SegregationOfDuties);
    let world = world.given([with_actor(
        review("A-1", GXJ, true),
        reviewer("rev.sun", GXJ),
    )]);
    // The approver may be neither the reviewer nor the submitter (same person, other role).
    for id in ["rev.sun", "rev.wang"] {
        world
            .clone()
            .when(with_actor(approve("A-1", GXJ, "200000"), approver(id, GXJ)))
            .then_code(Code::SegregationOfDuties);
    }
    let world = world.given([with_actor(
        approve("A-1", GXJ, "200000"),
        approver("off.li", CZJ),
    )]);
    // The approver may not order the payout.
    world
        .clone()
        .when(with_actor(
            order_payout("P-1", "A-1", "200000"),
            finance("off.li"),
        ))
        .then_code(Code::SegregationOfDuties);
    let world = world.given([order_payout("P-1", "A-1", "200000")]);
    // The one who ordered the payout may not confirm it.
    world
        .clone()
        .when(with_actor(confirm_payout("P-1"), finance("fin.zhang")))
        .then_code(Code::SegregationOfDuties);
    world.when(confirm_payout("P-1")).then_accepted();
}

// =============================================================================================
// §7 duplicate_id, no_policy, unknown_*

#[test]
fn ids_are_never_reused() {
    let world = paid_voucher_world();
    let uscc = firm(1);
    world
        .clone()
        .when(voucher("A-1", &uscc, "100", "1000"))
        .then_code(Code::DuplicateId);
    world
        .clone()
        .when(order_payout("P-1", "A-1", "100"))
        .then_code(Code::DuplicateId);
    world
        .clone()
        .when(order_clawback("C-1", "A-1", "100"))
        .then_code(Code::DuplicateId);
    // A refused application keeps its id too.
    world
        .given_refused(
            voucher("A-3", &uscc, "300000", "1000000"),
            Code::ExceedsRate,
        )
        .when(voucher("A-3", &uscc, "100", "1000"))
        .then_code(Code::DuplicateId);
}

#[test]
fn without_a_catalogue_nothing_but_register_policy_is_decided() {
    let world = World::without_policy();
    for command in one_of_each_type().into_iter().skip(1) {
        world.clone().when(command).then_code(Code::NoPolicy);
    }
    world
        .when(register_policy(BUILTIN_CATALOGUE))
        .then_events(|events| {
            assert!(matches!(&events[0], Event::PolicyRegistered { version, .. } if version == "62号-2024-05-22-v1"));
        })
        .when(allocate("M2", 2024, "100"))
        .then_accepted();
}

#[test]
fn unknown_things_are_named() {
    let world = paid_voucher_world();
    let uscc = firm(1);
    for provision in [
        "M2.nope",
        "M1.compute_supply",
        "M3.data",
        "m2.compute_voucher",
    ] {
        world
            .clone()
            .when(submit(
                "A-9",
                &uscc,
                provision,
                2024,
                Some("100"),
                json!({}),
            ))
            .then_code(Code::UnknownProvision);
    }
    for command in [
        review("A-404", GXJ, true),
        endorse("A-404"),
        approve("A-404", GXJ, "100"),
        reject("A-404", GXJ),
        withdraw("A-404", &uscc),
        order_payout("P-9", "A-404", "100"),
        order_clawback("C-9", "A-404", "100"),
    ] {
        world
            .clone()
            .when(command)
            .then_code(Code::UnknownApplication);
    }
    for command in [confirm_payout("P-404"), fail_payout("P-404")] {
        world.clone().when(command).then_code(Code::UnknownPayout);
    }
    world
        .when(repay("C-404", "100"))
        .then_code(Code::UnknownClawback);
}

// =============================================================================================
// §7 invalid_state

#[test]
fn commands_out_of_their_order_are_invalid_state() {
    let uscc = firm(1);
    let world = given([
        allocate("M2", 2024, "1000000"),
        voucher("A-1", &uscc, "200000", "1000000"),
    ]);
    // Approval needs a positive review first.
    world
        .clone()
        .when(approve("A-1", GXJ, "200000"))
        .then_code_saying(Code::InvalidState, "positive review");
    let negative = world.clone().given([review("A-1", GXJ, false)]);
    negative
        .clone()
        .when(approve("A-1", GXJ, "200000"))
        .then_code(Code::InvalidState);
    // A reviewed application is not reviewed again.
    negative
        .clone()
        .when(with_actor(
            review("A-1", GXJ, true),
            reviewer("rev.sun", GXJ),
        ))
        .then_code(Code::InvalidState);
    // Only approved applications are paid or clawed back.
    negative
        .clone()
        .when(order_payout("P-1", "A-1", "100"))
        .then_code(Code::InvalidState);
    negative
        .clone()
        .when(order_clawback("C-1", "A-1", "100"))
        .then_code(Code::InvalidState);
    // Only 一事一议 applications are endorsed.
    negative
        .clone()
        .when(endorse("A-1"))
        .then_code(Code::InvalidState);
    // A negatively reviewed application can still be rejected, then nothing more.
    let rejected = negative.given([reject("A-1", GXJ)]);
    for command in [
        reject("A-1", GXJ),
        withdraw("A-1", &uscc),
        with_actor(review("A-1", GXJ, true), reviewer("rev.sun", GXJ)),
    ] {
        rejected.clone().when(command).then_code(Code::InvalidState);
    }
    // An approved application is not withdrawn, approved again, or rejected once paid.
    let approved = world.given([review("A-1", GXJ, true), approve("A-1", GXJ, "200000")]);
    approved
        .clone()
        .when(withdraw("A-1", &uscc))
        .then_code(Code::InvalidState);
    approved
        .clone()
        .when(with_actor(
            approve("A-1", GXJ, "200000"),
            approver("apr.zhou", GXJ),
        ))
        .then_code(Code::InvalidState);
    let paid = approved.given([order_payout("P-1", "A-1", "100000")]);
    paid.clone()
        .when(reject("A-1", GXJ))
        .then_code_saying(Code::InvalidState, "payouts");
    // A settled payout is settled.
    let confirmed = paid.clone().given([confirm_payout("P-1")]);
    confirmed
        .clone()
        .when(with_actor(confirm_payout("P-1"), finance("fin.sun")))
        .then_code(Code::InvalidState);
    confirmed
        .when(fail_payout("P-1"))
        .then_code(Code::InvalidState);
    let failed = paid.given([fail_payout("P-1")]);
    failed
        .clone()
        .when(fail_payout("P-1"))
        .then_code(Code::InvalidState);
    failed
        .when(confirm_payout("P-1"))
        .then_code(Code::InvalidState);
}

#[test]
fn endorsements_are_given_once_to_open_case_by_case_applications() {
    let uscc = firm(1);
    let case = submit(
        "A-1",
        &uscc,
        "M4.case_by_case",
        2024,
        Some("30000000"),
        json!({"project_id": "YS-1"}),
    );
    let world = funded().given([case]);
    let endorsed = world.clone().when(endorse("A-1")).then_events(|events| {
        assert!(matches!(&events[0], Event::ApplicationEndorsed { application_id, .. } if application_id == "A-1"));
    });
    endorsed.when(endorse("A-1")).then_code(Code::InvalidState);
    world
        .given([withdraw("A-1", &uscc)])
        .when(endorse("A-1"))
        .then_code(Code::InvalidState);
}

// =============================================================================================
// §7 invalid_amount and invalid_uscc

const BAD_AMOUNTS: [&str; 12] = [
    "1.001",
    "-5",
    "-0.01",
    "0",
    "0.00",
    "abc",
    "",
    "1e6",
    " 100",
    "1,000",
    "1000000000000.01",
    "１００",
];

#[test]
fn amounts_are_positive_yuan_with_at_most_two_decimals() {
    let uscc = firm(1);
    let world = paid_voucher_world().given([review("A-2", GXJ, true)]);
    for bad in BAD_AMOUNTS {
        let commands = [
            allocate("M2", 2024, bad),
            voucher("A-9", &uscc, bad, "1000000"),
            approve("A-2", GXJ, bad),
            order_payout("P-9", "A-1", bad),
            order_clawback("C-9", "A-1", bad),
            repay("C-1", bad),
        ];
        for command in commands {
            world.clone().when(command).then_code(Code::InvalidAmount);
        }
    }
    // Well-formed amounts are accepted and kept to the fen.
    for good in ["1", "1.5", "1.50", "0.01", "999999999999.99"] {
        world
            .clone()
            .when(allocate("M2", 2025, good))
            .then_events(|events| {
                let Event::BudgetAllocated { amount, .. } = &events[0] else {
                    panic!("{events:?}")
                };
                assert_eq!(amount.scale(), 2);
                assert_eq!(*amount, dec(good));
            });
    }
}

#[test]
fn approving_more_than_requested_or_repaying_more_than_outstanding_is_invalid_amount() {
    let world = paid_voucher_world().given([review("A-2", GXJ, true)]);
    world
        .clone()
        .when(approve("A-2", GXJ, "100000.01"))
        .then_code_saying(Code::InvalidAmount, "requested");
    world
        .clone()
        .when(approve("A-2", GXJ, "99999.99"))
        .then_accepted();
    world
        .clone()
        .when(repay("C-1", "50000.01"))
        .then_code(Code::InvalidAmount);
    let world = world.given([repay("C-1", "30000")]);
    world
        .clone()
        .when(repay("C-1", "20000.01"))
        .then_code(Code::InvalidAmount);
    world.when(repay("C-1", "20000")).then_accepted();
}

#[test]
fn a_firm_needs_a_valid_unified_social_credit_code() {
    let good = firm(1);
    let mut bad_check = good.clone();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    let cases = [
        bad_check,
        good[..17].to_string() + "I",
        good.to_lowercase(),
        format!("{good}0"),
        "91410100MA470000".to_string() + "1",
    ];
    for uscc in cases {
        assert!(!uscc::is_valid(&uscc), "{uscc}");
        funded()
            .when(voucher("A-1", &uscc, "100", "1000"))
            .then_code(Code::InvalidUscc);
    }
    assert!(uscc::is_valid(&good));
    funded()
        .when(voucher("A-1", &good, "100", "1000"))
        .then_accepted();
}

// =============================================================================================
// §2 the policy window

#[test]
fn submissions_are_accepted_only_from_2024_05_22_to_2027_05_21_china_time() {
    let uscc = firm(1);
    let event = |id: &str, year: i32, at: &str| {
        with_at(
            submit(
                id,
                &uscc,
                "M10.event",
                year,
                Some("1000"),
                json!({"event_name": format!("活动{id}")}),
            ),
            at,
        )
    };
    let world = funded();
    for (at, year) in [
        ("2024-05-21T23:59:59+08:00", 2024),
        ("2024-05-21T15:59:59Z", 2024),
        ("2027-05-22T00:00:00+08:00", 2027),
        ("2027-05-21T16:00:00Z", 2027),
        ("2030-01-01T10:00:00+08:00", 2027),
        ("2020-01-01T10:00:00+08:00", 2024),
    ] {
        world
            .clone()
            .when(event("A-1", year, at))
            .then_refused(Code::OutsidePolicyWindow);
    }
    for (at, year) in [
        ("2024-05-22T00:00:00+08:00", 2024),
        ("2024-05-21T16:00:00Z", 2024),
        ("2027-05-21T23:59:59+08:00", 2027),
        ("2027-05-21T15:59:59Z", 2027),
    ] {
        world.clone().when(event("A-1", year, at)).then_accepted();
    }
    // The fiscal year must be one of the policy's years too.
    for year in [2023, 2028] {
        world
            .clone()
            .when(event("A-1", year, "2025-03-01T10:00:00+08:00"))
            .then_refused(Code::OutsidePolicyWindow);
    }
    // Budgets reach five years past the policy, for lab programmes, and no further.
    world
        .clone()
        .when(allocate("M6", 2032, "100"))
        .then_accepted();
    for year in [2023, 2033] {
        world
            .clone()
            .when(allocate("M6", year, "100"))
            .then_code(Code::OutsidePolicyWindow);
    }
}

#[test]
fn the_business_time_of_the_world_is_used_when_a_command_has_no_at() {
    let uscc = firm(1);
    let world = funded().at("2027-06-01T10:00:00+08:00");
    world
        .when(fixed("A-1", &uscc, "M8.little_giant", 2027))
        .then_refused(Code::OutsidePolicyWindow);
}

// =============================================================================================
// §2 M2.compute_voucher

#[test]
fn a_voucher_is_at_most_20_percent_of_its_contract() {
    let uscc = firm(1);
    let world = funded();
    world
        .clone()
        .when(voucher("A-1", &uscc, "200000.00", "1000000.00"))
        .then_events(|events| {
            let Event::ApplicationSubmitted { application } = &events[0] else {
                panic!("{events:?}")
            };
            assert_eq!(application.amount, dec("200000"));
            assert_eq!(application.measure, "M2");
            assert_eq!(application.policy_seq, 1);
            assert_eq!(application.submitted_on, date("2024-06-01"));
        });
    world
        .clone()
        .when(voucher("A-1", &uscc, "200000.01", "1000000.00"))
        .then_refused(Code::ExceedsRate);
    // 20% of 1,234,567.89 is 246,913.578: 246,913.57 is the most.
    world
        .clone()
        .when(voucher("A-1", &uscc, "246913.57", "1234567.89"))
        .then_accepted();
    world
        .clone()
        .when(voucher("A-1", &uscc, "246913.58", "1234567.89"))
        .then_refused(Code::ExceedsRate);
    // Approval is held to the rate too (the approver cannot exceed the request anyway).
    let world = world.given([
        voucher("A-2", &uscc, "150000", "1000000"),
        review("A-2", GXJ, true),
    ]);
    world.when(approve("A-2", GXJ, "150000")).then_accepted();
}

#[test]
fn self_built_self_used_compute_is_excluded() {
    let uscc = firm(1);
    let with_flag = |flag: bool| {
        submit(
            "A-1",
            &uscc,
            "M2.compute_voucher",
            2024,
            Some("100"),
            json!({"contract_amount": "1000000", "contract_id": "HT-1", "self_built": flag}),
        )
    };
    funded()
        .when(with_flag(true))
        .then_refused(Code::ExcludedSelfBuilt);
    funded().when(with_flag(false)).then_accepted();
}

#[test]
fn a_firm_claims_at_most_1_000_000_of_vouchers_per_fiscal_year() {
    let (uscc, other) = (firm(1), firm(2));
    let world = funded().given([
        voucher("A-1", &uscc, "400000", "2000000"),
        voucher("A-2", &uscc, "400000", "2000000"),
        voucher("A-3", &uscc, "200000", "2000000"),
    ]);
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("1000000.00")
    );
    let world = world
        .when(voucher("A-4", &uscc, "0.01", "2000000"))
        .then_refused(Code::ExceedsFirmAnnualCap);
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("1000000.00")
    );
    // Another firm, or another fiscal year, has its own room.
    world
        .clone()
        .when(voucher("A-5", &other, "400000", "2000000"))
        .then_accepted();
    let next_year = with_field(
        voucher("A-6", &uscc, "400000", "2000000"),
        "fiscal_year",
        json!(2025),
    );
    world.when(next_year).then_accepted();
}

#[test]
fn refused_withdrawn_and_rejected_vouchers_free_their_room() {
    let uscc = firm(1);
    let world = funded()
        .given([
            voucher("A-1", &uscc, "600000", "3000000"),
            voucher("A-2", &uscc, "400000", "2000000"),
        ])
        .given_refused(
            voucher("A-3", &uscc, "1", "1000000"),
            Code::ExceedsFirmAnnualCap,
        )
        // A refusal by another rule claims nothing either.
        .given_refused(
            voucher("A-4", &uscc, "300000", "1000000"),
            Code::ExceedsRate,
        );
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("1000000.00")
    );
    let world = world.given([withdraw("A-2", &uscc)]);
    assert_eq!(status(&world, "A-2"), "withdrawn");
    assert_eq!(status(&world, "A-3"), "rejected");
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("600000.00")
    );
    let world = world
        .when(voucher("A-5", &uscc, "400000", "2000000"))
        .then_accepted();
    let world = world
        .when(voucher("A-6", &uscc, "0.01", "2000000"))
        .then_refused(Code::ExceedsFirmAnnualCap)
        .given([reject("A-5", GXJ)]);
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("600000.00")
    );
    world
        .when(voucher("A-7", &uscc, "400000", "2000000"))
        .then_accepted();
}

#[test]
fn an_approval_below_the_request_claims_only_what_was_approved() {
    let uscc = firm(1);
    let world = funded().given(awarded(
        voucher("A-1", &uscc, "500000", "2500000"),
        "300000",
    ));
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("300000.00")
    );
    let world = world
        .when(voucher("A-2", &uscc, "700000.01", "5000000"))
        .then_refused(Code::ExceedsFirmAnnualCap)
        .when(voucher("A-3", &uscc, "700000", "5000000"))
        .then_accepted();
    // Revoking the unpaid approval frees its room.
    let world = world.given([reject("A-1", GXJ)]);
    assert_eq!(
        claimed_vouchers(&world, &uscc, 2024).as_deref(),
        Some("700000.00")
    );
    assert_invariants(&world);
}

#[test]
fn provincial_voucher_holders_go_first_in_the_review_queue() {
    let (a, b, c) = (firm(1), firm(2), firm(3));
    let provincial = |id: &str, uscc: &str, flag: bool| {
        submit(
            id,
            uscc,
            "M2.compute_voucher",
            2024,
            Some("100000"),
            json!({"contract_amount": "1000000", "contract_id": format!("HT-{id}"), "provincial_voucher": flag}),
        )
    };
    let world = funded().given([
        provincial("A-1", &a, false),
        voucher("A-2", &b, "100000", "1000000"),
        provincial("A-3", &c, true),
        submit(
            "A-4",
            &a,
            "M10.event",
            2024,
            Some("1000"),
            json!({"event_name": "峰会"}),
        ),
        provincial("A-5", &b, true),
    ]);
    let order = |world: &World| -> Vec<(String, bool)> {
        world
            .state
            .queue_rows()
            .into_iter()
            .map(|row| (row.application_id, row.priority))
            .collect()
    };
    let expect = |ids: &[(&str, bool)]| -> Vec<(String, bool)> {
        ids.iter().map(|(id, p)| (id.to_string(), *p)).collect()
    };
    assert_eq!(
        order(&world),
        expect(&[
            ("A-3", true),
            ("A-5", true),
            ("A-1", false),
            ("A-2", false),
            ("A-4", false)
        ])
    );
    // Reviewed applications stay queued; decided ones leave.
    let world = world.given([
        review("A-3", GXJ, true),
        approve("A-3", GXJ, "100000"),
        review("A-1", GXJ, true),
        withdraw("A-2", &b),
    ]);
    assert_eq!(
        order(&world),
        expect(&[("A-5", true), ("A-1", false), ("A-4", false)])
    );
    assert_eq!(world.state.queue_rows()[1].status, "reviewed");
    // A refused submission never enters the queue.
    let refused = with_field(provincial("A-6", &c, true), "amount", json!("200000.01"));
    let world = world.given_refused(refused, Code::ExceedsRate);
    assert_eq!(order(&world).len(), 3);
}

// =============================================================================================
// §2 M4

#[test]
fn a_major_project_gets_at_least_10_000_000() {
    let uscc = firm(1);
    let major = |id: &str, amount: &str| {
        submit(
            id,
            &uscc,
            "M4.major_project",
            2024,
            Some(amount),
            json!({"project_id": format!("ZD-{id}")}),
        )
    };
    let world = funded();
    world
        .clone()
        .when(major("A-1", "9999999.99"))
        .then_refused(Code::BelowMinimum);
    world.clone().when(major("A-1", "10000000")).then_accepted();
    // A minimum, not a cap.
    let world = world.given([major("A-2", "12000000.00"), review("A-2", KJJ, true)]);
    // Approval is held to the minimum too.
    world
        .clone()
        .when(approve("A-2", KJJ, "9999999.99"))
        .then_code(Code::BelowMinimum);
    world.when(approve("A-2", KJJ, "10000000")).then_accepted();
}

#[test]
fn a_case_by_case_project_needs_a_government_endorsement_before_approval() {
    let uscc = firm(1);
    let case = submit(
        "A-1",
        &uscc,
        "M4.case_by_case",
        2024,
        Some("88888888.88"),
        json!({"project_id": "YS-1"}),
    );
    let world = funded().given([case, review("A-1", KJJ, true)]);
    world
        .clone()
        .when(approve("A-1", KJJ, "88888888.88"))
        .then_code_saying(Code::MissingEndorsement, "government");
    // Only the government endorses.
    world
        .clone()
        .when(with_actor(endorse("A-1"), approver("apr.li", KJJ)))
        .then_code(Code::Forbidden);
    let world = world.given([endorse("A-1")]);
    assert_eq!(
        world
            .state
            .applications
            .get("A-1")
            .unwrap()
            .endorsed_by
            .as_deref(),
        Some("gov.chen")
    );
    world
        .when(approve("A-1", KJJ, "88888888.88"))
        .then_accepted();
    // Any positive amount: no cap, no minimum.
    let small = submit(
        "A-2",
        &uscc,
        "M4.case_by_case",
        2024,
        Some("0.01"),
        json!({"project_id": "YS-2"}),
    );
    funded().when(small).then_accepted();
}

// =============================================================================================
// §2 M5, M7.scenario_project, M10

#[test]
fn a_model_scenario_gets_at_most_5_000_000_across_its_applications() {
    let (a, b) = (firm(1), firm(2));
    let scenario = |id: &str, uscc: &str, amount: &str, scenario: &str| {
        submit(
            id,
            uscc,
            "M5.model_scenario",
            2024,
            Some(amount),
            json!({"scenario_id": scenario}),
        )
    };
    let world = funded();
    world
        .clone()
        .when(scenario("A-1", &a, "5000000", "S-1"))
        .then_accepted();
    world
        .clone()
        .when(scenario("A-1", &a, "5000000.01", "S-1"))
        .then_refused(Code::ExceedsProvisionCap);
    // The catalogue caps per scenario_id: applications for one scenario share the 5M.
    let world = world.given([scenario("A-1", &a, "3000000", "S-1")]);
    world
        .clone()
        .when(scenario("A-2", &b, "2000000.01", "S-1"))
        .then_refused(Code::ExceedsProvisionCap);
    world
        .clone()
        .when(scenario("A-2", &b, "5000000", "S-2"))
        .then_accepted();
    let world = world
        .when(scenario("A-2", &b, "2000000", "S-1"))
        .then_accepted();
    // A withdrawal frees the scenario's room; an approval below the request frees the rest.
    let world = world
        .given([
            withdraw("A-2", &b),
            review("A-1", GXJ, true),
            approve("A-1", GXJ, "2500000"),
        ])
        .when(scenario("A-3", &b, "2500000.01", "S-1"))
        .then_refused(Code::ExceedsProvisionCap)
        .when(scenario("A-4", &b, "2500000", "S-1"))
        .then_accepted();
    assert_invariants(&world);
}

#[test]
fn a_scenario_project_gets_at_most_30_percent_of_its_investment_and_5_000_000() {
    let uscc = firm(1);
    let project = |amount: &str, investment: &str| {
        submit(
            "A-1",
            &uscc,
            "M7.scenario_project",
            2024,
            Some(amount),
            json!({"actual_investment": investment}),
        )
    };
    let world = funded();
    world
        .clone()
        .when(project("3000000", "10000000"))
        .then_accepted();
    world
        .clone()
        .when(project("3000000.01", "10000000"))
        .then_refused(Code::ExceedsRate);
    world
        .clone()
        .when(project("5000000", "20000000"))
        .then_accepted();
    world
        .clone()
        .when(project("5000000.01", "20000000"))
        .then_refused(Code::ExceedsProvisionCap);
    // 30% of 16,666,666.67 is 5,000,000.001: both bounds meet at 5,000,000.00.
    world
        .clone()
        .when(project("5000000", "16666666.67"))
        .then_accepted();
    // When both bounds are broken the tighter one is named.
    world
        .when(project("9000000", "20000000"))
        .then_refused(Code::ExceedsProvisionCap);
}

#[test]
fn an_event_gets_at_most_300_000() {
    let (a, b) = (firm(1), firm(2));
    let event = |id: &str, uscc: &str, amount: &str, name: &str| {
        submit(
            id,
            uscc,
            "M10.event",
            2024,
            Some(amount),
            json!({"event_name": name}),
        )
    };
    let world = funded();
    world
        .clone()
        .when(event("A-1", &a, "300000", "中原AI大会"))
        .then_accepted();
    world
        .clone()
        .when(event("A-1", &a, "300000.01", "中原AI大会"))
        .then_refused(Code::ExceedsProvisionCap);
    let world = world.given([event("A-1", &a, "200000", "中原AI大会")]);
    world
        .clone()
        .when(event("A-2", &b, "100000.01", "中原AI大会"))
        .then_refused(Code::ExceedsProvisionCap);
    world
        .clone()
        .when(event("A-2", &b, "100000", "中原AI大会"))
        .then_accepted();
    // Not a once award: the same firm may hold several events.
    world
        .when(event("A-3", &a, "300000", "算力论坛"))
        .then_accepted();
}

// =============================================================================================
// §2 fixed awards, once

const FIXED: [(&str, &str); 15] = [
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

#[test]
fn the_catalogue_holds_the_22_provisions_of_section_2_with_their_units() {
    let catalogue = fundledger_policy::Catalogue::from_toml(BUILTIN_CATALOGUE).unwrap();
    let ids: BTreeSet<&str> = catalogue.provisions.iter().map(|p| p.id.as_str()).collect();
    let mut expected: BTreeSet<&str> = FIXED.iter().map(|(id, _)| *id).collect();
    expected.extend([
        "M2.compute_voucher",
        "M4.major_project",
        "M4.case_by_case",
        "M5.model_scenario",
        "M6.key_lab_programme",
        "M7.scenario_project",
        "M10.event",
    ]);
    assert_eq!(expected.len(), 22);
    assert_eq!(ids, expected);
    // The units these tests use for review and approval are responsible where they are used.
    for id in &ids {
        let units = catalogue.responsible_units(id);
        assert!(units.iter().any(|u| u == unit_of(id)), "{id}: {units:?}");
        assert!(units.iter().any(|u| u == CZJ), "{id}: {units:?}");
        assert!(!units.iter().any(|u| u == SJJ), "{id}: {units:?}");
    }
    assert!(!catalogue
        .responsible_units("M4.major_project")
        .iter()
        .any(|u| u == GXJ));
}

#[test]
fn every_fixed_award_is_approved_at_exactly_its_amount_once() {
    let (uscc, other) = (firm(1), firm(2));
    let catalogue = fundledger_policy::Catalogue::from_toml(BUILTIN_CATALOGUE).unwrap();
    let fixed_in_catalogue: BTreeSet<&str> = catalogue
        .provisions
        .iter()
        .filter(|p| p.fixed_amount().is_some())
        .map(|p| p.id.as_str())
        .collect();
    let fixed_here: BTreeSet<&str> = FIXED.iter().map(|(id, _)| *id).collect();
    assert_eq!(fixed_in_catalogue, fixed_here);

    for (provision, amount) in FIXED {
        let unit = unit_of(provision);
        let fixed_amount = dec(amount);
        let cent_less = (fixed_amount - dec("0.01")).to_string();
        let world = funded();
        // Amount omitted: recorded at the fixed amount.
        let world = world
            .when(fixed("A-1", &uscc, provision, 2024))
            .then_events(|events| {
                let Event::ApplicationSubmitted { application } = &events[0] else {
                    panic!("{events:?}")
                };
                assert_eq!(application.amount, fixed_amount, "{provision}");
            });
        // Stated exactly: accepted; stated otherwise: refused, recorded.
        let stated = |id: &str, amount: &str, uscc: &str| {
            submit(
                id,
                uscc,
                provision,
                2024,
                Some(amount),
                json!({"recognition_date": "2024-05-30"}),
            )
        };
        world
            .clone()
            .when(stated("A-2", &cent_less, &other))
            .then_refused(Code::InvalidAmount);
        world
            .clone()
            .when(stated("A-2", &format!("{amount}.01"), &other))
            .then_refused(Code::InvalidAmount);
        world
            .clone()
            .when(stated("A-2", amount, &other))
            .then_accepted();
        // Once: a second application while the first is open is refused.
        let world = world
            .when(fixed("A-3", &uscc, provision, 2024))
            .then_refused(Code::AlreadyAwarded);
        // Approval at any other amount is invalid_amount; at exactly the amount, accepted.
        let world = world.given([review("A-1", unit, true)]);
        world
            .clone()
            .when(approve("A-1", unit, &cent_less))
            .then_code(Code::InvalidAmount);
        let world = world
            .when(approve("A-1", unit, amount))
            .then_events(|events| {
                assert!(
                    matches!(&events[0], Event::ApplicationApproved { amount: a, .. } if *a == fixed_amount)
                );
            });
        assert_eq!(
            world.state.firm_row(&uscc).unwrap().awards,
            vec![provision.to_string()]
        );
        // Once: after the award, refused again, in this or any later year.
        let world = world
            .when(fixed("A-4", &uscc, provision, 2024))
            .then_refused(Code::AlreadyAwarded)
            .when(with_at(
                fixed("A-5", &uscc, provision, 2026),
                "2026-01-05T10:00:00+08:00",
            ))
            .then_refused(Code::AlreadyAwarded);
        assert_invariants(&world);
    }
}

#[test]
fn a_rejected_or_withdrawn_fixed_award_may_be_applied_for_again() {
    let uscc = firm(1);
    let world = funded()
        .given([
            fixed("A-1", &uscc, "M8.little_giant", 2024),
            reject("A-1", GXJ),
        ])
        .when(fixed("A-2", &uscc, "M8.little_giant", 2024))
        .then_accepted()
        .given([withdraw("A-2", &uscc)])
        .when(fixed("A-3", &uscc, "M8.little_giant", 2024))
        .then_accepted();
    // An approval revoked before payment frees the award too.
    let world = world
        .given([
            review("A-3", GXJ, true),
            approve("A-3", GXJ, "1000000"),
            reject("A-3", GXJ),
        ])
        .when(fixed("A-4", &uscc, "M8.little_giant", 2024))
        .then_accepted();
    assert!(world.state.firm_row(&uscc).unwrap().awards.is_empty());
}

#[test]
fn a_unicorn_award_excludes_the_potential_unicorn_award_by_default() {
    let uscc = firm(1);
    let unicorn = |id: &str| fixed(id, &uscc, "M8.unicorn", 2024);
    let potential = |id: &str| fixed(id, &uscc, "M8.potential_unicorn", 2024);
    // Held (open), either way round.
    funded()
        .given([potential("A-1")])
        .when(unicorn("A-2"))
        .then_refused(Code::AlreadyAwarded);
    funded()
        .given([unicorn("A-1")])
        .when(potential("A-2"))
        .then_refused(Code::AlreadyAwarded);
    // Held (approved).
    funded()
        .given(awarded(potential("A-1"), "2000000"))
        .when(unicorn("A-2"))
        .then_refused(Code::AlreadyAwarded);
    // Not held any more.
    funded()
        .given([potential("A-1"), reject("A-1", GXJ)])
        .when(unicorn("A-2"))
        .then_accepted();
    // Another firm is not concerned.
    funded()
        .given([potential("A-1")])
        .when(fixed("A-2", &firm(2), "M8.unicorn", 2024))
        .then_accepted();

    // The open question is configurable: a catalogue amendment that allows stacking.
    let stacking = BUILTIN_CATALOGUE.replace(
        "stack_unicorn_on_potential_unicorn = false",
        "stack_unicorn_on_potential_unicorn = true",
    );
    assert_ne!(stacking, BUILTIN_CATALOGUE);
    let world = funded()
        .given(awarded(potential("A-1"), "2000000"))
        .given([register_policy(&stacking)]);
    let world = world.when(unicorn("A-2")).then_accepted();
    let world = world.given([review("A-2", GXJ, true), approve("A-2", GXJ, "5000000")]);
    assert_eq!(
        world.state.firm_row(&uscc).unwrap().awards,
        vec!["M8.potential_unicorn".to_string(), "M8.unicorn".to_string()]
    );
    assert_invariants(&world);
}

// =============================================================================================
// §2 M6 key labs: the lead award opens a programme envelope

/// Firm 1's lab: lead A-LAB recognised on 2024-05-30, approved on 2024-06-01.
fn lab_world() -> World {
    funded().given(awarded(
        fixed("A-LAB", &firm(1), "M6.key_lab_lead", 2024),
        "5000000",
    ))
}

fn tranche(id: &str, uscc: &str, lab: &str, year: i32, amount: &str, at: &str) -> Value {
    with_at(
        submit(
            id,
            uscc,
            "M6.key_lab_programme",
            year,
            Some(amount),
            json!({"lab": lab, "rd_spend": "30000000"}),
        ),
        at,
    )
}

#[test]
fn an_approved_lead_award_opens_a_five_year_10_000_000_envelope() {
    let world = lab_world();
    let labs = world.state.lab_rows();
    assert_eq!(labs.len(), 1);
    let lab = &labs[0];
    assert_eq!(lab.lab, "A-LAB");
    assert_eq!(lab.firm, firm(1));
    assert_eq!(lab.recognition_date, date("2024-05-30"));
    assert_eq!(lab.window_end, date("2029-05-29"));
    assert_eq!(lab.envelope, dec("10000000"));
    assert_eq!(lab.remaining, dec("10000000"));
    assert_eq!(lab.years.len(), 5);
    assert_eq!(lab.years["2024"].planned, dec("2000000"));
    // Only an approval opens it.
    let open = funded().given([fixed("A-LAB", &firm(1), "M6.key_lab_lead", 2024)]);
    assert!(open.state.lab_rows().is_empty());
}

#[test]
fn a_tranche_names_an_approved_lead_of_its_own_firm() {
    let uscc = firm(1);
    let at = "2025-03-01T10:00:00+08:00";
    let world = lab_world().given(awarded(
        fixed("A-CO", &uscc, "M6.key_lab_cobuilder", 2024),
        "1000000",
    ));
    world
        .clone()
        .when(tranche("A-1", &uscc, "A-LAB", 2025, "2000000", at))
        .then_accepted();
    for lab in ["A-NONE", "A-CO"] {
        world
            .clone()
            .when(tranche("A-1", &uscc, lab, 2025, "2000000", at))
            .then_code(Code::UnknownLab);
    }
    world
        .clone()
        .when(tranche("A-1", &firm(2), "A-LAB", 2025, "2000000", at))
        .then_code_saying(Code::UnknownLab, "another firm");
    // A lead still under review opens nothing yet.
    funded()
        .given([fixed("A-LAB", &uscc, "M6.key_lab_lead", 2024)])
        .when(tranche("A-1", &uscc, "A-LAB", 2025, "2000000", at))
        .then_code(Code::UnknownLab);
    // The basis must name the lab and the R&D spend.
    let no_spend = submit(
        "A-1",
        &uscc,
        "M6.key_lab_programme",
        2025,
        Some("100"),
        json!({"lab": "A-LAB"}),
    );
    world.when(no_spend).then_code(Code::Malformed);
}

#[test]
fn tranches_fall_within_five_years_of_the_recognition_date() {
    let uscc = firm(1);
    let world = lab_world();
    world
        .clone()
        .when(tranche(
            "A-1",
            &uscc,
            "A-LAB",
            2029,
            "100",
            "2029-05-29T23:59:59+08:00",
        ))
        .then_accepted();
    world
        .clone()
        .when(tranche(
            "A-1",
            &uscc,
            "A-LAB",
            2029,
            "100",
            "2029-05-30T00:00:00+08:00",
        ))
        .then_refused(Code::OutsideProgrammeWindow);
    // Fiscal years outside the programme's years are refused too.
    for year in [2023, 2030] {
        world
            .clone()
            .when(tranche(
                "A-1",
                &uscc,
                "A-LAB",
                year,
                "100",
                "2026-01-05T10:00:00+08:00",
            ))
            .then_refused(Code::OutsideProgrammeWindow);
    }
}

#[test]
fn a_tranche_after_the_policy_ends_is_bounded_by_the_programme_window_instead() {
    let uscc = firm(1);
    // 2028-03-01 is after the policy's last day (2027-05-21) but inside the lab's window.
    let world = lab_world()
        .when(tranche(
            "A-1",
            &uscc,
            "A-LAB",
            2028,
            "2000000",
            "2028-03-01T10:00:00+08:00",
        ))
        .then_accepted()
        .at("2028-04-01T10:00:00+08:00")
        .given([review("A-1", GXJ, true), approve("A-1", GXJ, "2000000")]);
    let lab = &world.state.lab_rows()[0];
    assert_eq!(lab.approved, dec("2000000"));
    assert_eq!(lab.years["2028"].approved, dec("2000000"));
    // Other provisions are closed then.
    world
        .when(with_at(
            fixed("A-2", &uscc, "M8.little_giant", 2027),
            "2028-03-01T10:00:00+08:00",
        ))
        .then_refused(Code::OutsidePolicyWindow);
}

#[test]
fn a_lab_opened_after_the_policy_ended_gets_no_tranche() {
    let uscc = firm(1);
    // Recognised and applied for in the window, but approved after it ended.
    let lead = with_at(
        submit(
            "A-LAB",
            &uscc,
            "M6.key_lab_lead",
            2027,
            None,
            json!({"recognition_date": "2027-05-01"}),
        ),
        "2027-05-20T10:00:00+08:00",
    );
    let world = funded()
        .given([lead])
        .at("2027-06-01T10:00:00+08:00")
        .given([review("A-LAB", GXJ, true), approve("A-LAB", GXJ, "5000000")]);
    assert_eq!(world.state.lab_rows().len(), 1);
    world
        .when(tranche(
            "A-1",
            &uscc,
            "A-LAB",
            2027,
            "100",
            "2027-07-01T10:00:00+08:00",
        ))
        .then_refused(Code::OutsidePolicyWindow);
}

#[test]
fn the_tranches_of_a_lab_sum_to_at_most_10_000_000() {
    let uscc = firm(1);
    let at = |year: i32| format!("{year}-03-01T10:00:00+08:00");
    let world = lab_world()
        .given([
            tranche("A-1", &uscc, "A-LAB", 2025, "4000000", &at(2025)),
            tranche("A-2", &uscc, "A-LAB", 2026, "4000000", &at(2026)),
        ])
        .when(tranche(
            "A-3",
            &uscc,
            "A-LAB",
            2027,
            "2000000.01",
            &at(2027),
        ))
        .then_refused(Code::ExceedsEnvelope);
    let world = world
        .when(tranche("A-4", &uscc, "A-LAB", 2027, "2000000", &at(2027)))
        .then_accepted();
    assert_eq!(world.state.lab_rows()[0].claimed, dec("10000000"));
    // A withdrawn tranche frees its part; an approval below the request frees the rest.
    let world = world
        .given([withdraw("A-4", &uscc)])
        .at(&at(2027))
        .given([review("A-1", GXJ, true), approve("A-1", GXJ, "3000000")])
        .when(tranche(
            "A-5",
            &uscc,
            "A-LAB",
            2027,
            "3000000.01",
            &at(2027),
        ))
        .then_refused(Code::ExceedsEnvelope)
        .when(tranche("A-6", &uscc, "A-LAB", 2027, "3000000", &at(2027)))
        .then_accepted();
    let lab = &world.state.lab_rows()[0];
    assert_eq!(lab.claimed, dec("10000000"));
    assert_eq!(lab.approved, dec("3000000"));
    assert_eq!(lab.remaining, dec("7000000"));
    assert_invariants(&world);
}

#[test]
fn a_second_lab_lead_for_the_same_firm_is_already_awarded() {
    let uscc = firm(1);
    lab_world()
        .when(fixed("A-2", &uscc, "M6.key_lab_lead", 2025))
        .then_refused(Code::AlreadyAwarded);
}

#[test]
fn a_revoked_lead_award_opens_nothing_any_more() {
    let uscc = firm(1);
    let at = "2025-03-01T10:00:00+08:00";
    // Revoked before any payment: the lead award and its envelope are gone, for new tranches
    // and for tranches still waiting for approval.
    let world = lab_world()
        .given([
            tranche("A-0", &uscc, "A-LAB", 2025, "1000000", at),
            review("A-0", GXJ, true),
        ])
        .given([reject("A-LAB", GXJ)]);
    assert_eq!(status(&world, "A-LAB"), "rejected");
    world
        .clone()
        .when(tranche("A-1", &uscc, "A-LAB", 2025, "2000000", at))
        .then_code(Code::UnknownLab);
    world
        .clone()
        .when(approve("A-0", GXJ, "1000000"))
        .then_code(Code::UnknownLab);
    // Re-applying and being approved opens one envelope, not a second one.
    let world = world.given(awarded(
        fixed("A-LAB2", &uscc, "M6.key_lab_lead", 2024),
        "5000000",
    ));
    let world = world
        .when(tranche("A-1", &uscc, "A-LAB2", 2025, "10000000", at))
        .then_accepted();
    world
        .when(tranche("A-2", &uscc, "A-LAB", 2025, "10000000", at))
        .then_code(Code::UnknownLab);
}

// =============================================================================================
// §7 budgets: insufficient_budget and the arithmetic of remaining

#[test]
fn approval_commits_payout_draws_failure_returns_and_revocation_releases() {
    let uscc = firm(1);
    let world = given([allocate("M2", 2024, "1000000")]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("0"), dec("0"), dec("1000000"))
    );
    let world = world.given(awarded(
        voucher("A-1", &uscc, "200000", "1000000"),
        "200000",
    ));
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("200000"), dec("0"), dec("800000"))
    );
    let world = world.given([order_payout("P-1", "A-1", "150000")]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("50000"), dec("150000"), dec("800000"))
    );
    let world = world.given([fail_payout("P-1")]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("200000"), dec("0"), dec("800000"))
    );
    let world = world.given([order_payout("P-2", "A-1", "200000"), confirm_payout("P-2")]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("0"), dec("200000"), dec("800000"))
    );
    let payments = world.state.payment_rows();
    assert_eq!(
        payments
            .iter()
            .map(|p| (p.payout_id.as_str(), p.status))
            .collect::<Vec<_>>(),
        vec![("P-1", "failed"), ("P-2", "confirmed")]
    );
    // Clawback ordered: nothing moves until money comes back; a repayment reduces paid.
    let world = world.given([order_clawback("C-1", "A-1", "50000")]);
    assert_eq!(budget(&world, "M2", 2024).2, dec("200000"));
    let world = world.given([repay("C-1", "30000")]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("0"), dec("170000"), dec("830000"))
    );
    assert_eq!(world.state.clawback_rows()[0].outstanding, dec("20000"));
    // A second award, approved then revoked before payment, releases its commitment.
    let world = world.given(awarded(
        voucher("A-2", &uscc, "300000", "2000000"),
        "300000",
    ));
    assert_eq!(budget(&world, "M2", 2024).1, dec("300000"));
    let world = world.given([reject("A-2", GXJ)]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("0"), dec("170000"), dec("830000"))
    );
    // A second allocation adds to the first.
    let world = world.given([allocate("M2", 2024, "500000")]);
    assert_eq!(budget(&world, "M2", 2024).3, dec("1330000"));
    assert_invariants(&world);
}

#[test]
fn an_approval_needs_the_budget_of_its_measure_and_fiscal_year() {
    let uscc = firm(1);
    let submitted = given([
        voucher("A-1", &uscc, "200000", "1000000"),
        review("A-1", GXJ, true),
    ]);
    // No allocation at all.
    submitted
        .clone()
        .when(approve("A-1", GXJ, "200000"))
        .then_code(Code::InsufficientBudget);
    // Another measure's or another year's money does not count.
    submitted
        .clone()
        .given([
            allocate("M5", 2024, "10000000"),
            allocate("M2", 2025, "10000000"),
        ])
        .when(approve("A-1", GXJ, "200000"))
        .then_code(Code::InsufficientBudget);
    let short = submitted.given([allocate("M2", 2024, "199999.99")]);
    short
        .clone()
        .when(approve("A-1", GXJ, "200000"))
        .then_code_saying(Code::InsufficientBudget, "199999.99");
    // Exactly the remaining amount is fine.
    let world = short
        .clone()
        .when(approve("A-1", GXJ, "199999.99"))
        .then_accepted();
    assert_eq!(budget(&world, "M2", 2024).3, dec("0"));
    // Committed money is not available to the next approval.
    let world = short.given([
        allocate("M2", 2024, "99999.99"),
        approve("A-1", GXJ, "200000"),
        voucher("A-2", &firm(2), "100000", "1000000"),
        review("A-2", GXJ, true),
    ]);
    assert_eq!(budget(&world, "M2", 2024).3, dec("99999.98"));
    world
        .clone()
        .when(approve("A-2", GXJ, "100000"))
        .then_code(Code::InsufficientBudget);
    world.when(approve("A-2", GXJ, "99999.98")).then_accepted();
}

#[test]
fn payouts_never_exceed_the_approved_amount_and_clawbacks_never_exceed_what_was_paid() {
    let uscc = firm(1);
    let world = given([allocate("M2", 2024, "1000000")]).given(awarded(
        voucher("A-1", &uscc, "200000", "1000000"),
        "180000",
    ));
    world
        .clone()
        .when(order_payout("P-1", "A-1", "180000.01"))
        .then_code(Code::ExceedsApproved);
    let world = world.given([order_payout("P-1", "A-1", "100000"), confirm_payout("P-1")]);
    world
        .clone()
        .when(order_payout("P-2", "A-1", "80000.01"))
        .then_code(Code::ExceedsApproved);
    // A failed payout does not count.
    let world = world.given([order_payout("P-2", "A-1", "80000"), fail_payout("P-2")]);
    let world = world
        .when(order_payout("P-3", "A-1", "80000"))
        .then_accepted()
        .given([confirm_payout("P-3")]);
    // Clawbacks: at most what was paid and not yet clawed back.
    world
        .clone()
        .when(order_clawback("C-1", "A-1", "180000.01"))
        .then_code(Code::ExceedsApproved);
    let world = world.given([order_clawback("C-1", "A-1", "100000")]);
    world
        .clone()
        .when(order_clawback("C-2", "A-1", "80000.01"))
        .then_code(Code::ExceedsApproved);
    let world = world
        .when(order_clawback("C-2", "A-1", "80000"))
        .then_accepted();
    // A clawed-back award is not revoked by rejection.
    world.when(reject("A-1", GXJ)).then_code(Code::InvalidState);
}

#[test]
fn only_money_that_reached_the_firm_is_clawed_back() {
    // A payout still in flight may fail; clawing it back first would let a repayment return
    // money that never left and drive the budget's paid below zero.
    let uscc = firm(1);
    let world = given([allocate("M2", 2024, "1000000")])
        .given(awarded(
            voucher("A-1", &uscc, "200000", "1000000"),
            "200000",
        ))
        .given([order_payout("P-1", "A-1", "200000")]);
    world
        .clone()
        .when(order_clawback("C-1", "A-1", "1"))
        .then_code(Code::ExceedsApproved);
    let world = world.given([
        confirm_payout("P-1"),
        order_clawback("C-1", "A-1", "200000"),
        repay("C-1", "200000"),
    ]);
    assert_eq!(
        budget(&world, "M2", 2024),
        (dec("1000000"), dec("0"), dec("0"), dec("1000000"))
    );
    assert_invariants(&world);
}

// =============================================================================================
// Every code of §7 that decide can give, reachable (idempotency_conflict is the writer's: see
// tests/writer.rs)

#[test]
fn every_code_of_section_7_is_reachable() {
    let uscc = firm(1);
    let bad_uscc = format!(
        "{}{}",
        &uscc[..17],
        if uscc.ends_with('0') { '1' } else { '0' }
    );
    assert!(!uscc::is_valid(&bad_uscc));
    let paid = paid_voucher_world;
    let lab = lab_world;
    let case = submit(
        "A-9",
        &uscc,
        "M4.case_by_case",
        2024,
        Some("100"),
        json!({"project_id": "YS"}),
    );
    let probes: Vec<(World, Value)> = vec![
        (World::new(), json!([])),
        (
            World::new(),
            without_field(allocate("M2", 2024, "1"), "actor"),
        ),
        (
            paid(),
            with_actor(allocate("M2", 2024, "1"), auditor("aud.qian")),
        ),
        (
            paid(),
            with_actor(order_payout("P-9", "A-1", "1"), finance("apr.li")),
        ),
        (paid(), order_payout("P-1", "A-1", "1")),
        (World::without_policy(), allocate("M2", 2024, "1")),
        (paid(), submit("A-9", &uscc, "M2.x", 2024, None, json!({}))),
        (paid(), review("A-404", GXJ, true)),
        (paid(), confirm_payout("P-404")),
        (paid(), repay("C-404", "1")),
        (
            lab(),
            tranche(
                "A-9",
                &uscc,
                "A-404",
                2025,
                "1",
                "2025-01-02T10:00:00+08:00",
            ),
        ),
        (paid(), withdraw("A-1", &uscc)),
        (paid(), allocate("M2", 2024, "1.001")),
        (paid(), voucher("A-9", &bad_uscc, "1", "10")),
        (
            paid(),
            with_at(
                voucher("A-9", &uscc, "1", "10"),
                "2027-05-22T00:00:00+08:00",
            ),
        ),
        (
            paid(),
            submit(
                "A-9",
                &uscc,
                "M2.compute_voucher",
                2024,
                Some("1"),
                json!({"contract_amount": "10", "contract_id": "H", "self_built": true}),
            ),
        ),
        (paid(), voucher("A-9", &uscc, "3", "10")),
        (
            paid(),
            submit(
                "A-9",
                &uscc,
                "M10.event",
                2024,
                Some("300000.01"),
                json!({"event_name": "E"}),
            ),
        ),
        (
            paid(),
            submit(
                "A-9",
                &uscc,
                "M4.major_project",
                2024,
                Some("1"),
                json!({"project_id": "P"}),
            ),
        ),
        (paid(), voucher("A-9", &uscc, "900000", "5000000")),
        (lab(), fixed("A-9", &uscc, "M6.key_lab_lead", 2024)),
        (
            funded().given([case, review("A-9", KJJ, true)]),
            approve("A-9", KJJ, "100"),
        ),
        (
            lab(),
            tranche(
                "A-9",
                &uscc,
                "A-LAB",
                2030,
                "1",
                "2029-06-01T10:00:00+08:00",
            ),
        ),
        (
            lab(),
            tranche(
                "A-9",
                &uscc,
                "A-LAB",
                2025,
                "10000000.01",
                "2025-01-02T10:00:00+08:00",
            ),
        ),
        (paid(), order_payout("P-9", "A-1", "0.01")),
    ];
    let mut reached = BTreeSet::new();
    for (mut world, command) in probes {
        let step = world.step(&command);
        let code = step
            .code()
            .unwrap_or_else(|| panic!("{command} was accepted"));
        reached.insert(code.as_str());
    }
    // insufficient_budget: paid_voucher_world's M2 2024 budget is 1,000,000 with 200,000 used.
    let mut short = paid().given([
        voucher("A-8", &firm(2), "900000", "5000000"),
        review("A-8", GXJ, true),
    ]);
    reached.insert(
        short
            .step(&approve("A-8", GXJ, "900000"))
            .code()
            .expect("refused")
            .as_str(),
    );
    let expected: BTreeSet<&str> = Code::ALL
        .into_iter()
        .filter(|code| *code != Code::IdempotencyConflict)
        .map(Code::as_str)
        .collect();
    let missing: Vec<_> = expected.difference(&reached).collect();
    assert!(missing.is_empty(), "codes not reached: {missing:?}");
    assert_eq!(reached.len(), 26);
}

#[test]
fn codes_have_their_contract_names_and_http_statuses() {
    assert_eq!(Code::ALL.len(), 27);
    for code in Code::ALL {
        assert_eq!(Code::parse(code.as_str()), Some(code));
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            Value::String(code.as_str().into())
        );
        let status = code.http_status();
        let expected = match code.as_str() {
            "malformed" => 400,
            "unauthorized" => 401,
            "forbidden" | "segregation_of_duties" => 403,
            name if name.starts_with("unknown_") => 404,
            "idempotency_conflict" | "duplicate_id" | "invalid_state" => 409,
            "no_policy" => status,
            _ => 422,
        };
        assert_eq!(status, expected, "{code}");
    }
}
