//! Property test of the rules: random sequences of commands by a small cast of actors. After
//! every step the invariants of the projections hold and the aggregates the rules rely on equal
//! what the applications say; at the end, replaying the sealed records from scratch gives the
//! same read models, and the chain verifies.

mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;

use chrono::{Datelike, Duration};
use fundledger_events::ChainVerifier;
use fundledger_ledger::{cst_date, Code};
use fundledger_policy::Limit;
use fundledger_projections::{invariants, ApplicationStatus, LedgerState, PayoutStatus};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use support::*;

/// Cases run; each is up to `STEPS_MAX` commands.
const CASES: u32 = 200;
const STEPS_MAX: usize = 100;

const MEASURES: [&str; 8] = ["M2", "M4", "M5", "M6", "M7", "M8", "M9", "M10"];
const PROVISIONS: [&str; 14] = [
    "M2.compute_voucher",
    "M2.compute_voucher",
    "M2.compute_voucher",
    "M4.major_project",
    "M4.case_by_case",
    "M5.model_scenario",
    "M6.key_lab_lead",
    "M6.key_lab_programme",
    "M6.key_lab_programme",
    "M6.key_lab_programme",
    "M7.scenario_project",
    "M8.unicorn",
    "M8.potential_unicorn",
    "M10.event",
];
/// Reviewers and approvers: (id, unit). `rev.a` also approves (segregation), `off.x` of the
/// finance bureau reviews, approves and pays (segregation again); 市审计局 is responsible for
/// nothing here, 市工信局 not for measure 4, 市科技局 not for measures 8 and 9, 市财政局 for
/// every measure that pays.
const REVIEWERS: [(&str, &str); 5] = [
    ("rev.a", GXJ),
    ("rev.b", KJJ),
    ("rev.c", SJJ),
    ("off.x", CZJ),
    ("rev.d", CZJ),
];
const APPROVERS: [(&str, &str); 6] = [
    ("apr.a", GXJ),
    ("apr.b", KJJ),
    ("rev.a", GXJ),
    ("off.x", CZJ),
    ("apr.c", CZJ),
    ("apr.d", CZJ),
];
const FINANCE: [&str; 3] = ["fin.a", "fin.b", "off.x"];

#[derive(Clone, Debug)]
enum Op {
    Allocate {
        measure: usize,
        year: i32,
        amount: usize,
    },
    Submit {
        firm: u32,
        provision: usize,
        amount: usize,
        key: usize,
        flags: u8,
        next_year: bool,
        by_reviewer: bool,
        reuse_id: bool,
    },
    Review {
        app: usize,
        who: usize,
        recommend: bool,
    },
    Endorse {
        app: usize,
    },
    Approve {
        app: usize,
        who: usize,
        part: usize,
    },
    Reject {
        app: usize,
        who: usize,
    },
    Withdraw {
        app: usize,
        own: bool,
    },
    OrderPayout {
        app: usize,
        who: usize,
        part: usize,
    },
    Confirm {
        payout: usize,
        who: usize,
    },
    Fail {
        payout: usize,
    },
    Clawback {
        app: usize,
        part: usize,
    },
    Repay {
        clawback: usize,
        part: usize,
    },
    Advance {
        days: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let index = || 0usize..64;
    prop_oneof![
        2 => (0..MEASURES.len(), 2024i32..=2029, 0usize..3)
            .prop_map(|(measure, year, amount)| Op::Allocate { measure, year, amount }),
        10 => (1u32..=4, 0..PROVISIONS.len(), 0usize..5, index(), any::<u8>(), prop::bool::weighted(0.1),
              prop::bool::weighted(0.15), prop::bool::weighted(0.04))
            .prop_map(|(firm, provision, amount, key, flags, next_year, by_reviewer, reuse_id)| Op::Submit {
                firm, provision, amount, key, flags, next_year, by_reviewer, reuse_id,
            }),
        6 => (index(), 0..REVIEWERS.len(), prop::bool::weighted(0.85))
            .prop_map(|(app, who, recommend)| Op::Review { app, who, recommend }),
        1 => index().prop_map(|app| Op::Endorse { app }),
        6 => (index(), 0..APPROVERS.len(), 0usize..5)
            .prop_map(|(app, who, part)| Op::Approve { app, who, part }),
        1 => (index(), 0..REVIEWERS.len()).prop_map(|(app, who)| Op::Reject { app, who }),
        1 => (index(), prop::bool::weighted(0.9)).prop_map(|(app, own)| Op::Withdraw { app, own }),
        4 => (index(), 0..FINANCE.len(), 0usize..4)
            .prop_map(|(app, who, part)| Op::OrderPayout { app, who, part }),
        4 => (index(), 0..FINANCE.len()).prop_map(|(payout, who)| Op::Confirm { payout, who }),
        1 => index().prop_map(|payout| Op::Fail { payout }),
        2 => (index(), 0usize..3).prop_map(|(app, part)| Op::Clawback { app, part }),
        2 => (index(), 0usize..3).prop_map(|(clawback, part)| Op::Repay { clawback, part }),
        1 => (0i64..400).prop_map(|days| Op::Advance { days }),
    ]
}

/// Ids handed out so far, so that later commands mostly name things that exist.
#[derive(Default)]
struct Ids {
    apps: Vec<String>,
    payouts: Vec<String>,
    clawbacks: Vec<String>,
    next: u64,
}

impl Ids {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}", self.next)
    }
}

/// An existing id most of the time; index 0 names one that does not exist.
fn pick(ids: &[String], index: usize, prefix: &str) -> String {
    if index == 0 || ids.is_empty() {
        return format!("{prefix}-404");
    }
    ids[index % ids.len()].clone()
}

/// Mostly one of the ids for which `fits` holds (so that commands meet things in the state
/// they act on); one time in eight any id, which may be in the wrong state or not exist.
fn pick_fit(ids: &[String], index: usize, prefix: &str, fits: impl Fn(&str) -> bool) -> String {
    let fitting: Vec<String> = ids.iter().filter(|id| fits(id)).cloned().collect();
    // `index` is below 64: one time in eight it is below 8.
    if index < 8 || fitting.is_empty() {
        return pick(ids, index, prefix);
    }
    fitting[index % fitting.len()].clone()
}

fn yuan(amount: Decimal) -> String {
    let mut amount = amount.round_dp(2);
    amount.rescale(2);
    amount.to_string()
}

fn half(amount: Decimal) -> Decimal {
    (amount / Decimal::TWO).round_dp(2)
}

fn cent() -> Decimal {
    Decimal::new(1, 2)
}

fn d(amount: i64) -> Decimal {
    Decimal::from(amount)
}

/// The JSON command an op stands for in this world (None when it has nothing to act on).
fn command(world: &World, ids: &mut Ids, op: &Op) -> Option<Value> {
    let state = &world.state;
    let today = cst_date(world.at);
    Some(match op {
        Op::Allocate {
            measure,
            year,
            amount,
        } => allocate(
            MEASURES[*measure],
            *year,
            ["1000000", "5000000", "20000000"][*amount],
        ),
        Op::Submit {
            firm: n,
            provision,
            amount,
            key,
            flags,
            next_year,
            by_reviewer,
            reuse_id,
        } => {
            let mut uscc = firm(*n);
            let provision = PROVISIONS[*provision];
            let id = if *reuse_id && !ids.apps.is_empty() {
                pick(&ids.apps, *key + 1, "A")
            } else {
                ids.fresh("A")
            };
            let year = today.year() + i32::from(*next_year);
            let recognised = (today - Duration::days((*key as i64) * 3)).to_string();
            let (amount, basis): (Option<Decimal>, Value) = match provision {
                "M2.compute_voucher" => {
                    // Two firms share the vouchers, so that their yearly caps bind.
                    uscc = firm(n % 2 + 1);
                    let contract = [d(500_000), d(1_000_000), d(2_000_000), d(5_000_000)][key % 4];
                    let fifth = contract / d(5);
                    let amount =
                        [fifth, half(fifth), fifth + cent(), d(300_000), d(1_000_000)][*amount];
                    let mut basis = json!({"contract_amount": yuan(contract), "contract_id": format!("HT-{id}")});
                    if *flags < 16 {
                        basis["self_built"] = json!(true);
                    }
                    if flags % 3 == 1 {
                        basis["provincial_voucher"] = json!(true);
                    }
                    (Some(amount), basis)
                }
                "M4.major_project" => (
                    Some(
                        [
                            d(10_000_000),
                            d(10_000_000) - cent(),
                            d(12_000_000),
                            d(10_000_000),
                            d(30_000_000),
                        ][*amount],
                    ),
                    json!({"project_id": format!("ZD-{key}")}),
                ),
                "M4.case_by_case" => (
                    Some(
                        [
                            d(1_000_000),
                            d(3_000_000),
                            d(25_000_000),
                            d(100_000),
                            d(2_000_000),
                        ][*amount],
                    ),
                    json!({"project_id": format!("YS-{key}")}),
                ),
                "M5.model_scenario" => (
                    Some(
                        [
                            d(1_000_000),
                            d(2_500_000),
                            d(5_000_000),
                            d(5_000_000) + cent(),
                            d(2_000_000),
                        ][*amount],
                    ),
                    json!({"scenario_id": format!("S-{}", key % 3)}),
                ),
                "M6.key_lab_programme" => {
                    // Mostly an approved lead, of the firm that holds it.
                    let lab = pick_fit(&ids.apps, *key, "A", |id| {
                        state.applications.get(id).is_some_and(|app| {
                            app.provision == "M6.key_lab_lead"
                                && app.status == ApplicationStatus::Approved
                        })
                    });
                    if let Some(lead) = state.applications.get(&lab) {
                        if *flags >= 32 {
                            uscc = lead.firm.uscc.clone();
                        }
                    }
                    (
                        Some(
                            [
                                d(2_000_000),
                                d(4_000_000),
                                d(6_000_000),
                                d(1_000_000),
                                d(3_000_000),
                            ][*amount],
                        ),
                        json!({"lab": lab, "rd_spend": "50000000"}),
                    )
                }
                "M7.scenario_project" => {
                    let investment = [d(10_000_000), d(20_000_000)][key % 2];
                    (
                        Some(
                            [
                                d(3_000_000),
                                d(5_000_000),
                                d(6_000_000),
                                d(3_000_000) + cent(),
                                d(1_000_000),
                            ][*amount],
                        ),
                        json!({"actual_investment": yuan(investment)}),
                    )
                }
                "M10.event" => (
                    Some(
                        [
                            d(100_000),
                            d(300_000),
                            d(300_000) + cent(),
                            d(150_000),
                            d(200_000),
                        ][*amount],
                    ),
                    json!({"event_name": format!("活动{}", key % 3)}),
                ),
                // Fixed awards: usually without an amount, sometimes with a wrong one.
                fixed_award => {
                    let fixed = state
                        .current_policy()
                        .and_then(|(_, catalogue)| {
                            catalogue
                                .provision(fixed_award)
                                .and_then(|p| p.fixed_amount())
                        })
                        .unwrap_or(Decimal::ONE);
                    let amount = match *amount {
                        0 => Some(fixed - cent()),
                        1 => Some(fixed),
                        _ => None,
                    };
                    (amount, json!({"recognition_date": recognised}))
                }
            };
            let amount = amount.map(yuan);
            let command = submit(&id, &uscc, provision, year, amount.as_deref(), basis);
            if !ids.apps.contains(&id) {
                ids.apps.push(id);
            }
            if *by_reviewer {
                with_actor(command, reviewer("rev.a", GXJ))
            } else {
                command
            }
        }
        Op::Review {
            app,
            who,
            recommend,
        } => {
            let (id, unit) = REVIEWERS[*who];
            let app = pick_fit(&ids.apps, *app, "A", |id| {
                status_of(state, id) == Some(ApplicationStatus::Submitted)
            });
            with_actor(review(&app, unit, *recommend), reviewer(id, unit))
        }
        Op::Endorse { app } => endorse(&pick_fit(&ids.apps, *app, "A", |id| {
            state
                .applications
                .get(id)
                .is_some_and(|app| app.provision == "M4.case_by_case" && app.status.is_open())
        })),
        Op::Approve { app, who, part } => {
            let id = pick_fit(&ids.apps, *app, "A", |id| {
                state.applications.get(id).is_some_and(|app| {
                    app.status == ApplicationStatus::Reviewed && app.recommend == Some(true)
                })
            });
            let requested = state
                .applications
                .get(&id)
                .map_or(d(1000), |app| app.requested);
            let amount = [
                requested,
                requested,
                half(requested),
                requested + cent(),
                requested - cent(),
            ][*part];
            let (actor, unit) = APPROVERS[*who];
            with_actor(approve(&id, unit, &yuan(amount)), approver(actor, unit))
        }
        Op::Reject { app, who } => {
            let (id, unit) = REVIEWERS[*who];
            let app = pick_fit(&ids.apps, *app, "A", |id| {
                state.applications.get(id).is_some_and(|app| {
                    app.status.is_open()
                        || (app.status == ApplicationStatus::Approved && app.paid.is_zero())
                })
            });
            with_actor(reject(&app, unit), reviewer(id, unit))
        }
        Op::Withdraw { app, own } => {
            let id = pick_fit(&ids.apps, *app, "A", |id| {
                status_of(state, id).is_some_and(ApplicationStatus::is_open)
            });
            let uscc = state
                .applications
                .get(&id)
                .map(|app| app.firm.uscc.clone())
                .filter(|_| *own)
                .unwrap_or_else(|| firm(9));
            withdraw(&id, &uscc)
        }
        Op::OrderPayout { app, who, part } => {
            let id = pick_fit(&ids.apps, *app, "A", |id| {
                state.applications.get(id).is_some_and(|app| {
                    app.status == ApplicationStatus::Approved
                        && app.approved.unwrap_or_default() > app.paid
                })
            });
            let open = state
                .applications
                .get(&id)
                .map_or(d(1000), |app| app.approved.unwrap_or_default() - app.paid);
            let amount = [open, half(open), open + cent(), open][*part];
            let payout = ids.fresh("P");
            ids.payouts.push(payout.clone());
            with_actor(
                order_payout(&payout, &id, &yuan(amount)),
                finance(FINANCE[*who]),
            )
        }
        Op::Confirm { payout, who } => with_actor(
            confirm_payout(&pick_fit(&ids.payouts, *payout, "P", |id| {
                payout_ordered(state, id)
            })),
            finance(FINANCE[*who]),
        ),
        Op::Fail { payout } => fail_payout(&pick_fit(&ids.payouts, *payout, "P", |id| {
            payout_ordered(state, id)
        })),
        Op::Clawback { app, part } => {
            let id = pick_fit(&ids.apps, *app, "A", |id| {
                state.payouts.values().any(|payout| {
                    payout.application_id == id && payout.status == PayoutStatus::Confirmed
                })
            });
            let held = state
                .applications
                .get(&id)
                .map_or(d(1000), |app| app.paid - app.clawed_back);
            // What reached the firm (confirmed payouts) and is not clawed back yet.
            let confirmed: Decimal = state
                .payouts
                .values()
                .filter(|p| p.application_id == id && p.status == PayoutStatus::Confirmed)
                .map(|p| p.amount)
                .sum();
            let held = state
                .applications
                .get(&id)
                .map_or(held, |app| confirmed - app.clawed_back);
            let amount = [held, half(held), held + cent()][*part];
            let clawback = ids.fresh("C");
            ids.clawbacks.push(clawback.clone());
            order_clawback(&clawback, &id, &yuan(amount))
        }
        Op::Repay { clawback, part } => {
            let id = pick_fit(&ids.clawbacks, *clawback, "C", |id| {
                state
                    .clawbacks
                    .get(id)
                    .is_some_and(|clawback| clawback.outstanding() > Decimal::ZERO)
            });
            let outstanding = state
                .clawbacks
                .get(&id)
                .map_or(d(1000), |clawback| clawback.outstanding());
            let amount = [outstanding, half(outstanding), outstanding + cent()][*part];
            repay(&id, &yuan(amount))
        }
        Op::Advance { .. } => return None,
    })
}

fn status_of(state: &LedgerState, id: &str) -> Option<ApplicationStatus> {
    state.applications.get(id).map(|app| app.status)
}

fn payout_ordered(state: &LedgerState, id: &str) -> bool {
    state
        .payouts
        .get(id)
        .is_some_and(|payout| payout.status == PayoutStatus::Ordered)
}

/// The aggregates the rules rely on, recomputed from the applications, payouts and
/// clawbacks: they must equal what the projections folded incrementally.
fn model_violations(state: &LedgerState) -> Vec<String> {
    let mut found = Vec::new();
    let Some((_, catalogue)) = state.current_policy() else {
        return found;
    };
    let mut committed: BTreeMap<(String, i32), Decimal> = BTreeMap::new();
    let mut paid: BTreeMap<(String, i32), Decimal> = BTreeMap::new();
    let mut vouchers: BTreeMap<(String, i32), Decimal> = BTreeMap::new();
    let mut keyed: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut lab_claimed: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut lab_approved: BTreeMap<String, Decimal> = BTreeMap::new();
    for app in state.applications.values() {
        let key = (app.measure.clone(), app.fiscal_year);
        if app.status == ApplicationStatus::Approved {
            *committed.entry(key.clone()).or_default() +=
                app.approved.unwrap_or_default() - app.paid;
        }
        *paid.entry(key).or_default() += app.paid - app.repaid;
        let Some(provision) = catalogue.provision(&app.provision) else {
            continue;
        };
        if provision.firm_annual_cap.is_some() {
            *vouchers
                .entry((app.firm.uscc.clone(), app.fiscal_year))
                .or_default() += app.claimed();
        }
        if let Some(field) = &provision.cap_per {
            if let Some(key) = app.basis_text(field) {
                *keyed
                    .entry((app.provision.clone(), key.to_string()))
                    .or_default() += app.claimed();
            }
        }
        if let Limit::Envelope { lab_field, .. } = &provision.limit {
            if let Some(lab) = app.basis_text(lab_field) {
                *lab_claimed.entry(lab.to_string()).or_default() += app.claimed();
                if app.status == ApplicationStatus::Approved {
                    *lab_approved.entry(lab.to_string()).or_default() +=
                        app.approved.unwrap_or_default();
                }
            }
        }
        // A payout register that agrees with the application.
        let payouts: Decimal = state
            .payouts
            .values()
            .filter(|p| p.application_id == app.application_id && p.status != PayoutStatus::Failed)
            .map(|p| p.amount)
            .sum();
        if payouts != app.paid {
            found.push(format!(
                "{}: paid {} but its live payouts sum to {payouts}",
                app.application_id, app.paid
            ));
        }
        let confirmed: Decimal = state
            .payouts
            .values()
            .filter(|p| {
                p.application_id == app.application_id && p.status == PayoutStatus::Confirmed
            })
            .map(|p| p.amount)
            .sum();
        if app.clawed_back > confirmed {
            found.push(format!(
                "{}: clawed back {} of {confirmed} confirmed",
                app.application_id, app.clawed_back
            ));
        }
    }
    for ((measure, year), budget) in &state.budgets {
        let key = (measure.clone(), *year);
        let want_committed = committed.get(&key).copied().unwrap_or_default();
        let want_paid = paid.get(&key).copied().unwrap_or_default();
        if budget.committed != want_committed || budget.paid != want_paid {
            found.push(format!(
                "budget {measure}/{year}: committed {} paid {}, applications say {want_committed} and {want_paid}",
                budget.committed, budget.paid
            ));
        }
    }
    for ((uscc, year), claimed) in &vouchers {
        if state.voucher_claimed(uscc, *year) != *claimed {
            found.push(format!(
                "{uscc}/{year}: voucher_claimed {} but open and approved vouchers sum to {claimed}",
                state.voucher_claimed(uscc, *year)
            ));
        }
        if *claimed > d(1_000_000) {
            found.push(format!("{uscc}/{year}: vouchers {claimed} over 1,000,000"));
        }
    }
    for ((provision, key), claimed) in &keyed {
        let folded = state
            .keyed_claims
            .get(&(provision.clone(), key.clone()))
            .copied()
            .unwrap_or_default();
        if folded != *claimed {
            found.push(format!(
                "{provision}/{key}: keyed claim {folded}, applications say {claimed}"
            ));
        }
        let cap = match catalogue.provision(provision).map(|p| &p.limit) {
            Some(Limit::Cap { amount }) => *amount,
            _ => Decimal::MAX,
        };
        if *claimed > cap {
            found.push(format!("{provision}/{key}: {claimed} over the cap {cap}"));
        }
    }
    for lab in state.labs.values() {
        let claimed = lab_claimed.get(&lab.lab).copied().unwrap_or_default();
        let approved = lab_approved.get(&lab.lab).copied().unwrap_or_default();
        if lab.claimed != claimed || lab.approved != approved {
            found.push(format!(
                "lab {}: claimed {} approved {}, tranches say {claimed} and {approved}",
                lab.lab, lab.claimed, lab.approved
            ));
        }
        if claimed > lab.envelope {
            found.push(format!(
                "lab {}: {claimed} claimed over the envelope",
                lab.lab
            ));
        }
    }
    found
}

fn check_replay(world: &World) -> Result<(), TestCaseError> {
    let replayed = LedgerState::replay(&world.records)
        .map_err(|error| TestCaseError::fail(format!("replay failed: {error}")))?;
    let live = &world.state;
    prop_assert_eq!(replayed.last_seq, live.last_seq);
    prop_assert_eq!(replayed.last_hash, live.last_hash);
    prop_assert_eq!(replayed.budget_rows(), live.budget_rows());
    prop_assert_eq!(replayed.firm_rows(), live.firm_rows());
    prop_assert_eq!(replayed.lab_rows(), live.lab_rows());
    prop_assert_eq!(replayed.application_rows(), live.application_rows());
    prop_assert_eq!(replayed.payment_rows(), live.payment_rows());
    prop_assert_eq!(replayed.queue_rows(), live.queue_rows());
    prop_assert_eq!(replayed.clawback_rows(), live.clawback_rows());
    prop_assert_eq!(replayed.commands.len(), live.commands.len());
    let mut verifier = ChainVerifier::new(ORIGIN);
    for record in &world.records {
        verifier
            .check_record(record)
            .map_err(|error| TestCaseError::fail(format!("chain: {error}")))?;
    }
    prop_assert_eq!(verifier.head().hash, live.last_hash);
    Ok(())
}

#[test]
fn random_command_sequences_keep_every_invariant_and_replay_to_the_same_state() {
    // Outcomes seen over all cases, to show the generator reaches the interesting rules.
    let seen: RefCell<BTreeMap<String, u32>> = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    // Modest budgets, so that insufficient_budget is reachable; allocations add more.
    let mut budgets = Vec::new();
    for measure in MEASURES {
        for year in 2024..=2029 {
            budgets.push(allocate(measure, year, "8000000"));
        }
    }
    // And one open lab, so that every case can draw on an envelope.
    budgets.extend(awarded(
        fixed("LAB-1", &firm(1), "M6.key_lab_lead", 2024),
        "5000000",
    ));
    let start = given(budgets);
    let result = runner.run(&prop::collection::vec(op(), 1..=STEPS_MAX), |ops| {
        let mut world = start.clone();
        let mut ids = Ids {
            apps: vec!["LAB-1".to_string()],
            ..Ids::default()
        };
        for op in &ops {
            if let Op::Advance { days } = op {
                world.at += Duration::days(*days);
                continue;
            }
            let Some(command) = command(&world, &mut ids, op) else {
                continue;
            };
            let before = world.state.last_seq;
            let step = world.step(&command);
            let label = match step.code() {
                None => format!("accepted {}", command["type"].as_str().unwrap_or("?")),
                Some(code) => code.as_str().to_string(),
            };
            *seen.borrow_mut().entry(label).or_default() += 1;
            if let (Step::Accepted { .. }, Some(provision)) = (&step, command["provision"].as_str())
            {
                *seen
                    .borrow_mut()
                    .entry(format!("accepted {provision}"))
                    .or_default() += 1;
            }
            match &step {
                Step::Accepted { seqs, .. } => prop_assert_eq!(seqs.len(), 1),
                Step::Refused { .. } => prop_assert_eq!(world.state.last_seq, before + 1),
                Step::Rejected { .. } | Step::Unreadable(_) => {
                    prop_assert_eq!(world.state.last_seq, before)
                }
            }
            let broken = invariants::violations(&world.state);
            prop_assert!(broken.is_empty(), "after {}: {:?}", command, broken);
            let off = model_violations(&world.state);
            prop_assert!(off.is_empty(), "after {}: {:?}", command, off);
        }
        check_replay(&world)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    let seen = seen.into_inner();
    // Outcomes each seen hundreds of times per run: their absence would mean the generator
    // no longer reaches the rule, not bad luck.
    let expected = [
        "accepted submit_application",
        "accepted review_application",
        "accepted approve_application",
        "accepted order_payout",
        "accepted confirm_payout",
        "accepted fail_payout",
        "accepted order_clawback",
        "accepted record_repayment",
        "accepted withdraw_application",
        "accepted reject_application",
        Code::Forbidden.as_str(),
        Code::SegregationOfDuties.as_str(),
        Code::UnknownApplication.as_str(),
        Code::InvalidState.as_str(),
        Code::InvalidAmount.as_str(),
        Code::ExceedsRate.as_str(),
        Code::ExceedsFirmAnnualCap.as_str(),
        Code::AlreadyAwarded.as_str(),
        Code::ExceedsApproved.as_str(),
        Code::InsufficientBudget.as_str(),
        Code::UnknownLab.as_str(),
        Code::ExceedsEnvelope.as_str(),
        "accepted M6.key_lab_programme",
        Code::ExceedsProvisionCap.as_str(),
    ];
    for label in expected {
        assert!(
            seen.get(label).copied().unwrap_or(0) > 0,
            "{label} never happened: {seen:#?}"
        );
    }
    eprintln!("outcomes over {CASES} cases: {seen:#?}");
}
