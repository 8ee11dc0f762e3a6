//! The authorisation matrix of DESIGN §7 ("who"): every role × every command type × the
//! actor's own scope or another one, plus the same person on both sides of a step
//! (segregation of duties) and a caller with no identity — one table, run twice: through HTTP
//! (a real `fundledger serve --config FILE` with one principal per actor, tokens stored as
//! BLAKE3 hashes, DESIGN §9) and through `fundledger apply` (the actor in the JSON). Both paths
//! must give the verdict the table states, so they agree with each other cell by cell.
//!
//! Every cell gets its own items, prepared by the same fixture commands on both stores (an
//! application submitted, reviewed, approved, a payout ordered or confirmed, a clawback
//! ordered…), so that a command the table allows is *accepted* — not refused for another
//! reason — and a refusal is the authorisation rule's and nothing else's.

mod common;
mod serving;

use std::fmt;
use std::path::Path;
use std::time::Instant;

use common::{fundledger, path_str, tempdir, write};
use serde_json::{json, Value};
use serving::Server;

use Kind::*;
use Verdict::{F, S, U, Y};

/// What a cell must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Accepted.
    Y,
    /// Refused `forbidden` (403).
    F,
    /// Refused `segregation_of_duties` (403).
    S,
    /// Refused `unauthorized` (401).
    U,
}

/// The 13 command types of DESIGN §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    RegisterPolicy,
    AllocateBudget,
    SubmitApplication,
    ReviewApplication,
    EndorseApplication,
    ApproveApplication,
    RejectApplication,
    WithdrawApplication,
    OrderPayout,
    ConfirmPayout,
    FailPayout,
    OrderClawback,
    RecordRepayment,
}

/// The columns of [`MATRIX`]: a role in its own scope or in another one.
///
/// - applicant: an application of its own firm / of another firm;
/// - reviewer, approver: a unit responsible for the provision (市科技局, responsible for M2 and
///   M4) / a unit that is not (市教育局);
/// - finance: 市财政局 / another bureau (市工信局);
/// - admin, government, auditor: no rule looks at their unit; two units all the same.
const COLUMNS: [Column; 15] = [
    Column::Role(Role::Admin, Scope::Own),
    Column::Role(Role::Admin, Scope::Other),
    Column::Role(Role::Applicant, Scope::Own),
    Column::Role(Role::Applicant, Scope::Other),
    Column::Role(Role::Reviewer, Scope::Own),
    Column::Role(Role::Reviewer, Scope::Other),
    Column::Role(Role::Approver, Scope::Own),
    Column::Role(Role::Approver, Scope::Other),
    Column::Role(Role::Finance, Scope::Own),
    Column::Role(Role::Finance, Scope::Other),
    Column::Role(Role::Government, Scope::Own),
    Column::Role(Role::Government, Scope::Other),
    Column::Role(Role::Auditor, Scope::Own),
    Column::Role(Role::Auditor, Scope::Other),
    Column::Anonymous,
];

/// Who may do what (DESIGN §7). Y accepted · F forbidden · S segregation_of_duties ·
/// U unauthorized. "anon" is a request with no identity: no bearer token over HTTP, no
/// `actor` in the command for `apply`.
#[rustfmt::skip]
const MATRIX: [(Kind, [Verdict; 15]); 13] = [
    //                       admin    applicant  reviewer   approver   finance    government auditor    anon
    //                       own oth  own oth    own oth    own oth    own oth    own oth    own oth
    (RegisterPolicy,      [  Y,  Y,   F,  F,     F,  F,     F,  F,     F,  F,     F,  F,     F,  F,     U ]),
    (AllocateBudget,      [  F,  F,   F,  F,     F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     U ]),
    (SubmitApplication,   [  F,  F,   Y,  F,     Y,  F,     F,  F,     F,  F,     F,  F,     F,  F,     U ]),
    (ReviewApplication,   [  F,  F,   F,  F,     Y,  F,     F,  F,     F,  F,     F,  F,     F,  F,     U ]),
    (EndorseApplication,  [  F,  F,   F,  F,     F,  F,     F,  F,     F,  F,     Y,  Y,     F,  F,     U ]),
    (ApproveApplication,  [  F,  F,   F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     F,  F,     U ]),
    (RejectApplication,   [  F,  F,   F,  F,     Y,  F,     Y,  F,     F,  F,     F,  F,     F,  F,     U ]),
    (WithdrawApplication, [  F,  F,   Y,  F,     F,  F,     F,  F,     F,  F,     F,  F,     F,  F,     U ]),
    (OrderPayout,         [  F,  F,   F,  F,     F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     U ]),
    (ConfirmPayout,       [  F,  F,   F,  F,     F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     U ]),
    (FailPayout,          [  F,  F,   F,  F,     F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     U ]),
    (OrderClawback,       [  F,  F,   F,  F,     F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     U ]),
    (RecordRepayment,     [  F,  F,   F,  F,     F,  F,     F,  F,     Y,  F,     F,  F,     F,  F,     U ]),
];

/// The same person (id) on both sides of a step: the cell's actor, in its own scope, did the
/// earlier step on this very item, in the role that step takes. DESIGN §7 forbids the first
/// five; the rest are controls where DESIGN names no such rule, so the step is allowed.
#[rustfmt::skip]
const SAME_PERSON: [(Kind, Role, Earlier, Verdict); 10] = [
    (ReviewApplication,  Role::Reviewer,  Earlier::Submitted, S), // "not the submitter"
    (ApproveApplication, Role::Approver,  Earlier::Submitted, S), // "not the submitter or reviewer"
    (ApproveApplication, Role::Approver,  Earlier::Reviewed,  S),
    (OrderPayout,        Role::Finance,   Earlier::Approved,  S), // "not the approver"
    (ConfirmPayout,      Role::Finance,   Earlier::Ordered,   S), // "not the one who ordered it"
    (RejectApplication,  Role::Reviewer,  Earlier::Submitted, Y),
    (RejectApplication,  Role::Approver,  Earlier::Reviewed,  Y),
    (FailPayout,         Role::Finance,   Earlier::Ordered,   Y),
    (OrderClawback,      Role::Finance,   Earlier::Ordered,   Y),
    (WithdrawApplication, Role::Applicant, Earlier::Submitted, Y),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Admin,
    Applicant,
    Reviewer,
    Approver,
    Finance,
    Government,
    Auditor,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Applicant => "applicant",
            Role::Reviewer => "reviewer",
            Role::Approver => "approver",
            Role::Finance => "finance",
            Role::Government => "government",
            Role::Auditor => "auditor",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Own,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Role(Role, Scope),
    Anonymous,
}

/// The step the same person did earlier, in the role that step takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Earlier {
    /// Submitted the application (as a reviewer of a responsible unit, the staff who may; as
    /// the applicant of the firm when the cell's actor is an applicant).
    Submitted,
    /// Reviewed it (as a reviewer).
    Reviewed,
    /// Approved it (as an approver).
    Approved,
    /// Ordered the payout (as finance).
    Ordered,
}

const FIRM_A: &str = "91410100MA4700001Q";
const FIRM_B: &str = "91410100MA4700002U";
const RESPONSIBLE_UNIT: &str = "市科技局";
const UNRELATED_UNIT: &str = "市教育局";
const FINANCE_UNIT: &str = "市财政局";
/// Fixture staff: reviewer and approver of another responsible unit of M2.
const FIXTURE_UNIT: &str = "市工信局";
const FISCAL_YEAR: i32 = 2025;
/// Business time of the fixtures, and of the cells on the `apply` path (the service uses its
/// own clock).
const FIXTURES_AT: &str = "2025-06-01T10:00:00+08:00";
const CELLS_AT: &str = "2025-06-02T10:00:00+08:00";
/// The policy's last day (郑政文〔2024〕62号 is valid 2024-05-22 – 2027-05-21).
const POLICY_LAST_DAY: &str = "2027-05-21";

/// An actor of DESIGN §7: `{"id","role","unit"?,"firm"?}`.
#[derive(Clone, Debug, PartialEq)]
struct Actor {
    id: String,
    role: Role,
    unit: Option<&'static str>,
    firm: Option<&'static str>,
}

impl Actor {
    fn new(id: &str, role: Role, unit: Option<&'static str>, firm: Option<&'static str>) -> Actor {
        Actor {
            id: id.to_string(),
            role,
            unit,
            firm,
        }
    }

    fn json(&self) -> Value {
        let mut actor = json!({"id": self.id, "role": self.role.name()});
        if let Some(unit) = self.unit {
            actor["unit"] = json!(unit);
        }
        if let Some(firm) = self.firm {
            actor["firm"] = json!(firm);
        }
        actor
    }

    /// The same person in another role (same id, the unit that role needs).
    fn as_role(&self, role: Role, unit: &'static str) -> Actor {
        Actor::new(&self.id, role, Some(unit), None)
    }

    fn token(&self) -> String {
        format!("tok-{}", self.id)
    }
}

/// The matrix's actor of a column: one principal per column, except that an applicant is the
/// same principal (firm A) in both scopes — what changes is whose application it acts on.
fn column_actor(column: Column) -> Option<Actor> {
    let Column::Role(role, scope) = column else {
        return None;
    };
    let own = scope == Scope::Own;
    let suffix = if own { "own" } else { "other" };
    let id = format!("{}.{suffix}", role.name());
    Some(match role {
        Role::Admin => Actor::new(&id, role, (!own).then_some(UNRELATED_UNIT), None),
        Role::Applicant => Actor::new("applicant.a", role, None, Some(FIRM_A)),
        Role::Reviewer | Role::Approver => Actor::new(
            &id,
            role,
            Some(if own {
                RESPONSIBLE_UNIT
            } else {
                UNRELATED_UNIT
            }),
            None,
        ),
        Role::Finance => Actor::new(
            &id,
            role,
            Some(if own { FINANCE_UNIT } else { FIXTURE_UNIT }),
            None,
        ),
        Role::Government => Actor::new(
            &id,
            role,
            Some(if own {
                "市人民政府"
            } else {
                UNRELATED_UNIT
            }),
            None,
        ),
        Role::Auditor => Actor::new(
            &id,
            role,
            Some(if own { "市审计局" } else { UNRELATED_UNIT }),
            None,
        ),
    })
}

/// The firm whose items a column acts on.
fn column_firm(column: Column) -> &'static str {
    match column {
        Column::Role(Role::Applicant, Scope::Other) => FIRM_B,
        _ => FIRM_A,
    }
}

fn fixture_applicant(firm: &str) -> Actor {
    if firm == FIRM_A {
        Actor::new("fx.applicant.a", Role::Applicant, None, Some(FIRM_A))
    } else {
        Actor::new("fx.applicant.b", Role::Applicant, None, Some(FIRM_B))
    }
}

fn fixture_staff(role: Role) -> Actor {
    match role {
        Role::Reviewer => Actor::new("fx.reviewer", role, Some(FIXTURE_UNIT), None),
        Role::Approver => Actor::new("fx.approver", role, Some(FIXTURE_UNIT), None),
        _ => Actor::new("fx.finance.1", Role::Finance, Some(FINANCE_UNIT), None),
    }
}

fn fixture_confirmer() -> Actor {
    Actor::new("fx.finance.2", Role::Finance, Some(FINANCE_UNIT), None)
}

/// One cell of the matrix, with the commands that prepare its items.
struct Cell {
    label: String,
    kind: Kind,
    actor: Option<Actor>,
    expected: Verdict,
    /// Fixture commands (with actor and `at`), applied to both stores before any cell.
    setup: Vec<Value>,
    /// The cell's command, without actor or `at`.
    command: Value,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Y => "accepted",
            F => "forbidden",
            S => "segregation_of_duties",
            U => "unauthorized",
        };
        f.write_str(text)
    }
}

fn uuid(serial: u64) -> String {
    format!("00000000-0000-4000-8000-{serial:012x}")
}

/// Builds commands with sequential command ids.
struct Ids {
    next: u64,
}

impl Ids {
    fn command(&mut self, kind: &str, actor: &Actor, fields: Value) -> Value {
        let mut command = fields;
        command["command_id"] = json!(uuid(self.next));
        self.next += 1;
        command["type"] = json!(kind);
        command["actor"] = actor.json();
        command["at"] = json!(FIXTURES_AT);
        command
    }
}

fn catalogue_text() -> &'static str {
    include_str!("../../policy/catalogue/zhengzhou-2024-62.toml")
}

/// The fixtures and command of one cell: `n` makes its ids unique; `firm` owns its
/// application; `earlier` says which fixture step the cell's actor did itself.
fn build_cell(
    ids: &mut Ids,
    n: usize,
    kind: Kind,
    firm: &'static str,
    actor: Option<&Actor>,
    earlier: Option<Earlier>,
) -> (Vec<Value>, Value) {
    let app = format!("APP-{n:03}");
    let payout = format!("PAY-{n:03}");
    let clawback = format!("CLW-{n:03}");
    let same_person = |step: Earlier, role: Role, unit: &'static str| -> Option<Actor> {
        match (earlier, actor) {
            (Some(done), Some(actor)) if done == step => Some(if actor.role == Role::Applicant {
                actor.clone()
            } else {
                actor.as_role(role, unit)
            }),
            _ => None,
        }
    };
    // How far the cell's item must have come for its command to be valid.
    let stage_of_kind = match kind {
        RegisterPolicy | AllocateBudget | SubmitApplication => 0,
        EndorseApplication | RejectApplication | WithdrawApplication | ReviewApplication => 1,
        ApproveApplication => 2,
        OrderPayout => 3,
        ConfirmPayout | FailPayout => 4,
        OrderClawback => 5,
        RecordRepayment => 6,
    };
    // The step the same person did must be among the fixtures.
    let stage_of_earlier = match earlier {
        None => 0,
        Some(Earlier::Submitted) => 1,
        Some(Earlier::Reviewed) => 2,
        Some(Earlier::Approved) => 3,
        Some(Earlier::Ordered) => 4,
    };
    let stage = stage_of_kind.max(stage_of_earlier);
    let mut setup = Vec::new();
    if stage >= 1 {
        let submitter = same_person(Earlier::Submitted, Role::Reviewer, RESPONSIBLE_UNIT)
            .unwrap_or_else(|| fixture_applicant(firm));
        let (provision, amount, basis) = if kind == EndorseApplication {
            (
                "M4.case_by_case",
                "20000000.00",
                json!({"project_id": format!("XM-{n:03}")}),
            )
        } else {
            (
                "M2.compute_voucher",
                "1000.00",
                json!({"contract_amount": "10000.00", "contract_id": format!("HT-{n:03}")}),
            )
        };
        setup.push(ids.command(
            "submit_application",
            &submitter,
            json!({
                "application_id": app,
                "firm": {"uscc": firm, "name": format!("郑州矩阵企业{}", &firm[16..])},
                "provision": provision,
                "fiscal_year": FISCAL_YEAR,
                "amount": amount,
                "basis": basis,
            }),
        ));
    }
    if stage >= 2 {
        let reviewer = same_person(Earlier::Reviewed, Role::Reviewer, RESPONSIBLE_UNIT)
            .unwrap_or_else(|| fixture_staff(Role::Reviewer));
        setup.push(ids.command(
            "review_application",
            &reviewer,
            json!({"application_id": app, "recommend": true, "note": "材料齐全"}),
        ));
    }
    if stage >= 3 {
        let approver = same_person(Earlier::Approved, Role::Approver, RESPONSIBLE_UNIT)
            .unwrap_or_else(|| fixture_staff(Role::Approver));
        setup.push(ids.command(
            "approve_application",
            &approver,
            json!({"application_id": app, "amount": "1000.00"}),
        ));
    }
    if stage >= 4 {
        let orderer = same_person(Earlier::Ordered, Role::Finance, FINANCE_UNIT)
            .unwrap_or_else(|| fixture_staff(Role::Finance));
        setup.push(ids.command(
            "order_payout",
            &orderer,
            json!({"payout_id": payout, "application_id": app, "amount": "1000.00"}),
        ));
    }
    if stage >= 5 {
        setup.push(ids.command(
            "confirm_payout",
            &fixture_confirmer(),
            json!({"payout_id": payout, "bank_reference": format!("BANK-{n:03}"),
                   "value_date": "2025-06-01"}),
        ));
    }
    if stage >= 6 {
        setup.push(ids.command(
            "order_clawback",
            &fixture_staff(Role::Finance),
            json!({"clawback_id": clawback, "application_id": app, "amount": "100.00",
                   "reason": "未按约定使用"}),
        ));
    }
    let command = match kind {
        RegisterPolicy => json!({"type": "register_policy", "catalogue": catalogue_text()}),
        AllocateBudget => json!({"type": "allocate_budget", "measure": "M2",
                                 "fiscal_year": FISCAL_YEAR, "amount": "1000.00"}),
        SubmitApplication => json!({
            "type": "submit_application",
            "application_id": app,
            "firm": {"uscc": firm, "name": "郑州矩阵企业"},
            "provision": "M2.compute_voucher",
            "fiscal_year": FISCAL_YEAR,
            "amount": "1000.00",
            "basis": {"contract_amount": "10000.00", "contract_id": format!("HT-{n:03}")},
        }),
        ReviewApplication => json!({"type": "review_application", "application_id": app,
                                    "recommend": true, "note": "同意"}),
        EndorseApplication => json!({"type": "endorse_application", "application_id": app,
                                     "note": "市政府同意一事一议"}),
        ApproveApplication => json!({"type": "approve_application", "application_id": app,
                                     "amount": "1000.00"}),
        RejectApplication => json!({"type": "reject_application", "application_id": app,
                                    "reason": "不符合条件"}),
        WithdrawApplication => json!({"type": "withdraw_application", "application_id": app}),
        OrderPayout => json!({"type": "order_payout", "payout_id": payout,
                              "application_id": app, "amount": "1000.00"}),
        ConfirmPayout => json!({"type": "confirm_payout", "payout_id": payout,
                                "bank_reference": format!("BANK-{n:03}"),
                                "value_date": "2025-06-02"}),
        FailPayout => json!({"type": "fail_payout", "payout_id": payout,
                             "reason": "账户信息有误"}),
        OrderClawback => json!({"type": "order_clawback", "clawback_id": clawback,
                                "application_id": app, "amount": "100.00",
                                "reason": "未按约定使用"}),
        RecordRepayment => json!({"type": "record_repayment", "clawback_id": clawback,
                                  "amount": "100.00", "bank_reference": format!("BACK-{n:03}")}),
    };
    (setup, command)
}

fn column_label(column: Column) -> String {
    match column {
        Column::Role(role, scope) => format!("{} ({scope:?})", role.name()).to_lowercase(),
        Column::Anonymous => "anonymous".to_string(),
    }
}

/// Every cell of [`MATRIX`] and [`SAME_PERSON`], with its fixtures; the first fixture
/// allocates the budget every approval commits.
fn cells() -> (Vec<Value>, Vec<Cell>) {
    let mut ids = Ids { next: 1 };
    let budget = ids.command(
        "allocate_budget",
        &fixture_staff(Role::Finance),
        json!({"measure": "M2", "fiscal_year": FISCAL_YEAR, "amount": "50000000.00"}),
    );
    let mut cells = Vec::new();
    for (kind, row) in MATRIX {
        for (column, expected) in COLUMNS.into_iter().zip(row) {
            let actor = column_actor(column);
            let n = cells.len() + 1;
            let (setup, command) =
                build_cell(&mut ids, n, kind, column_firm(column), actor.as_ref(), None);
            cells.push(Cell {
                label: format!("#{n} {kind:?} by {}", column_label(column)),
                kind,
                actor,
                expected,
                setup,
                command,
            });
        }
    }
    for (kind, role, earlier, expected) in SAME_PERSON {
        let column = Column::Role(role, Scope::Own);
        let actor = column_actor(column);
        let n = cells.len() + 1;
        let (setup, command) = build_cell(
            &mut ids,
            n,
            kind,
            column_firm(column),
            actor.as_ref(),
            Some(earlier),
        );
        cells.push(Cell {
            label: format!(
                "#{n} {kind:?} by {} who {earlier:?} it",
                column_label(column)
            ),
            kind,
            actor,
            expected,
            setup,
            command,
        });
    }
    // Cell commands get ids after every fixture's.
    for cell in &mut cells {
        cell.command["command_id"] = json!(uuid(ids.next));
        ids.next += 1;
    }
    let mut fixtures = vec![budget];
    fixtures.extend(cells.iter().flat_map(|cell| cell.setup.iter().cloned()));
    (fixtures, cells)
}

/// What a path answered, reduced to a verdict (or the unexpected code).
fn verdict_of(outcome: &Value) -> Result<Verdict, String> {
    match (outcome["outcome"].as_str(), outcome["code"].as_str()) {
        (Some("accepted"), _) => Ok(Y),
        (_, Some("forbidden")) => Ok(F),
        (_, Some("segregation_of_duties")) => Ok(S),
        (_, Some("unauthorized")) => Ok(U),
        _ => Err(outcome.to_string()),
    }
}

fn jsonl(commands: &[Value]) -> String {
    commands
        .iter()
        .map(|command| format!("{command}\n"))
        .collect()
}

/// Applies the fixtures to a new store and checks every one was accepted.
fn prepare(dir: &Path, store: &str, fixtures: &[Value]) {
    let file = dir.join("fixtures.jsonl");
    write(&file, jsonl(fixtures).as_bytes());
    let run = fundledger(dir, &["apply", "--store", store, path_str(&file)]).ok();
    let outcomes: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(outcomes.len(), fixtures.len(), "one outcome per fixture");
    for (fixture, line) in fixtures.iter().zip(outcomes) {
        let outcome: Value = serde_json::from_str(line).expect("an outcome line");
        assert_eq!(
            outcome["outcome"], "accepted",
            "fixture {fixture}\n→ {outcome}"
        );
    }
}

/// The service's config: one principal per matrix actor, tokens as BLAKE3 hashes.
fn config(actors: &[Actor]) -> String {
    let mut text = String::new();
    for actor in actors {
        text.push_str(&format!(
            "[[principals]]\nid = {:?}\nrole = {:?}\n",
            actor.id,
            actor.role.name()
        ));
        if let Some(unit) = actor.unit {
            text.push_str(&format!("unit = {unit:?}\n"));
        }
        if let Some(firm) = actor.firm {
            text.push_str(&format!("firm = {firm:?}\n"));
        }
        text.push_str(&format!(
            "token_blake3 = {:?}\n\n",
            fundledger_api::token_hash_hex(&actor.token())
        ));
    }
    text
}

/// Whether the service's wall clock (China Standard Time) is still inside the policy window:
/// past it, the service refuses every submission with `outside_policy_window`, whoever sends it.
fn policy_in_force_today() -> bool {
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+08:00"))
        .date_naive();
    let last = chrono::NaiveDate::parse_from_str(POLICY_LAST_DAY, "%Y-%m-%d").expect("a date");
    today <= last
}

#[test]
fn every_role_and_command_through_http_and_apply() {
    let started = Instant::now();
    let dir = tempdir();
    let (fixtures, cells) = cells();

    // `apply`: the actor in the JSON, business time honoured.
    let apply_store = format!("sqlite://{}", dir.path().join("apply.db").display());
    prepare(dir.path(), &apply_store, &fixtures);
    let commands: Vec<Value> = cells
        .iter()
        .map(|cell| {
            let mut command = cell.command.clone();
            if let Some(actor) = &cell.actor {
                command["actor"] = actor.json();
            }
            command["at"] = json!(CELLS_AT);
            command
        })
        .collect();
    let file = dir.path().join("cells.jsonl");
    write(&file, jsonl(&commands).as_bytes());
    let run = fundledger(
        dir.path(),
        &["apply", "--store", &apply_store, path_str(&file)],
    )
    .ok();
    let by_apply: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("an outcome line"))
        .collect();
    assert_eq!(by_apply.len(), cells.len(), "one outcome per cell");

    // HTTP: the token names the actor; the service's clock dates the command.
    let http_store = format!("sqlite://{}", dir.path().join("http.db").display());
    prepare(dir.path(), &http_store, &fixtures);
    let mut actors: Vec<Actor> = Vec::new();
    for actor in cells.iter().filter_map(|cell| cell.actor.clone()) {
        if !actors.contains(&actor) {
            actors.push(actor);
        }
    }
    let config_file = dir.path().join("service.toml");
    write(&config_file, config(&actors).as_bytes());
    let mut server = Server::start_with_config(dir.path(), &config_file, &http_store);
    let in_force = policy_in_force_today();
    let mut by_http = Vec::new();
    for cell in &cells {
        let token = cell.actor.as_ref().map(Actor::token);
        let response = server.post_json("/v1/commands", token.as_deref(), &cell.command);
        let outcome = response.json();
        let expected_status = match verdict_of(&outcome) {
            Ok(Y) => 200,
            Ok(F | S) => 403,
            Ok(U) => 401,
            Err(_) => response.status,
        };
        assert_eq!(
            response.status, expected_status,
            "{}: {outcome}",
            cell.label
        );
        by_http.push(outcome);
    }
    let status = server.terminate();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status}");

    // Every cell: the table's verdict, on both paths.
    let mut failures = Vec::new();
    let mut allowed = 0;
    for ((cell, apply), http) in cells.iter().zip(&by_apply).zip(&by_http) {
        let apply_verdict = verdict_of(apply);
        let mut http_verdict = verdict_of(http);
        if !in_force
            && cell.kind == SubmitApplication
            && cell.expected == Y
            && http["code"] == "outside_policy_window"
        {
            // Past the policy's last day the service's clock refuses every submission; the
            // authorisation rule let it through, which is what this cell checks.
            http_verdict = Ok(Y);
        }
        // A refusal of authorisation records nothing; an accepted command records its events.
        for (path, outcome) in [("apply", apply), ("HTTP", http)] {
            let recorded = outcome["seqs"].as_array().map_or(0, Vec::len);
            if (recorded > 0) != (outcome["outcome"] == "accepted") {
                failures.push(format!(
                    "{}: {path} recorded {recorded}: {outcome}",
                    cell.label
                ));
            }
        }
        if apply_verdict != Ok(cell.expected) || http_verdict != Ok(cell.expected) {
            failures.push(format!(
                "{}: expected {}, apply {:?}, HTTP {:?}",
                cell.label, cell.expected, apply_verdict, http_verdict
            ));
        }
        if cell.expected == Y {
            allowed += 1;
        }
    }
    // Both ledgers still verify end to end.
    for store in [&apply_store, &http_store] {
        fundledger(dir.path(), &["verify", "--store", store]).ok();
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells disagree with DESIGN §7:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
    println!(
        "authorization matrix: {} cells ({} role × command × scope + {} same-person), \
         {allowed} allowed and {} refused, each through HTTP and apply; {} fixture commands; \
         {:.1} s",
        cells.len(),
        MATRIX.len() * COLUMNS.len(),
        SAME_PERSON.len(),
        cells.len() - allowed,
        fixtures.len(),
        started.elapsed().as_secs_f64()
    );
}
