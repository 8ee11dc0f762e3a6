//! The seeded schedule of commands: every command type of DESIGN §7 from a small cast of
//! actors, built as JSON the way a client writes it, mostly about things that exist in the
//! state (so the rules are reached), some about things that do not, some by the wrong actor,
//! some malformed, and repeats of earlier command ids with the same and with other content.
//!
//! Amounts sit near the limits that matter: compute vouchers of two firms against the
//! 1,000,000 yearly cap, lab tranches against the 10,000,000 envelope, approvals against
//! modest budgets.

use chrono::{Datelike, Duration, NaiveDate};
use fundledger_ledger::uscc;
use fundledger_policy::BUILTIN_CATALOGUE;
use fundledger_projections::{ApplicationStatus, LedgerState, PayoutStatus};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::rng::Rng;

pub const GXJ: &str = "市工信局";
pub const KJJ: &str = "市科技局";
pub const CZJ: &str = "市财政局";
/// A unit responsible for no measure that pays.
pub const SJJ: &str = "市审计局";

/// A valid USCC for firm `n`.
pub fn firm(n: u32) -> String {
    uscc::complete(&format!("91410100MA47{n:05}")).expect("a valid USCC prefix")
}

fn firm_name(uscc: &str) -> String {
    format!("郑州模拟企业{}", &uscc[12..17])
}

fn applicant(uscc: &str) -> Value {
    json!({"id": format!("app.{}", &uscc[12..17]), "role": "applicant", "firm": uscc})
}

fn officer(id: &str, role: &str, unit: &str) -> Value {
    json!({"id": id, "role": role, "unit": unit})
}

/// The unit that reviews and approves a provision here: measure 4 belongs to 市科技局 (and
/// 市财政局); 市工信局 is responsible for every other measure that pays.
fn unit_of(provision: &str) -> &'static str {
    if provision.starts_with("M4.") {
        KJJ
    } else {
        GXJ
    }
}

fn money(amount: Decimal) -> String {
    let mut amount = amount.round_dp(2);
    amount.rescale(2);
    amount.to_string()
}

fn d(yuan: i64) -> Decimal {
    Decimal::from(yuan)
}

fn cent() -> Decimal {
    Decimal::new(1, 2)
}

fn half(amount: Decimal) -> Decimal {
    (amount / Decimal::TWO).round_dp(2)
}

/// What kind of command the schedule made, for the counts printed at the end.
pub type Kind = &'static str;

pub struct Generator {
    rng: Rng,
    seed: u64,
    next_command: u64,
    next_object: u64,
    apps: Vec<String>,
    payouts: Vec<String>,
    clawbacks: Vec<String>,
    /// Commands made so far, for repeats.
    history: Vec<Value>,
}

/// The responsible unit's reviewer and approver of a provision.
fn officers_of(provision: &str) -> (Value, Value) {
    if unit_of(provision) == KJJ {
        (
            officer("rev.b", "reviewer", KJJ),
            officer("apr.b", "approver", KJJ),
        )
    } else {
        (
            officer("rev.a", "reviewer", GXJ),
            officer("apr.a", "approver", GXJ),
        )
    }
}

impl Generator {
    pub fn new(rng: Rng, seed: u64) -> Generator {
        Generator {
            rng,
            seed,
            next_command: 0,
            next_object: 0,
            apps: Vec::new(),
            payouts: Vec::new(),
            clawbacks: Vec::new(),
            history: Vec::new(),
        }
    }

    /// A fresh command id, a UUID made of the seed and a counter (so a seed's ids, and hence
    /// its hashes, are the same on every run).
    fn command_id(&mut self) -> String {
        self.next_command += 1;
        format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            (self.seed >> 16) as u32,
            (self.seed & 0xffff) as u16,
            self.next_command
        )
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_object += 1;
        format!("{prefix}-{}", self.next_object)
    }

    fn command(&mut self, kind: &str, actor: Value, fields: Value) -> Value {
        let mut command = fields;
        command["command_id"] = Value::String(self.command_id());
        command["type"] = Value::String(kind.to_string());
        command["actor"] = actor;
        command
    }

    fn remember(&mut self, command: Value) -> Value {
        self.history.push(command.clone());
        command
    }

    /// Budgets for the opening year, so that approvals can happen from the start.
    pub fn opening(&mut self, today: NaiveDate) -> Vec<Value> {
        let year = today.year();
        let budgets = [
            ("M2", 2_500_000),
            ("M4", 15_000_000),
            ("M5", 6_000_000),
            ("M6", 22_000_000),
            ("M7", 6_000_000),
            ("M8", 9_000_000),
            ("M10", 1_000_000),
        ];
        let mut commands = Vec::new();
        for (measure, amount) in budgets {
            let amount = d(amount) * d(self.rng.range(5, 15) as i64) / d(10);
            let command = self.allocate_command(measure, year, amount, "fin.a");
            commands.push(self.remember(command));
        }
        commands
    }

    fn allocate_command(&mut self, measure: &str, year: i32, amount: Decimal, who: &str) -> Value {
        self.command(
            "allocate_budget",
            officer(who, "finance", CZJ),
            json!({"measure": measure, "fiscal_year": year, "amount": money(amount)}),
        )
    }

    /// The next command of the schedule, made against `state` (which may lag behind the
    /// ledger, as a client's view does) on business date `today`.
    pub fn next(&mut self, state: &LedgerState, today: NaiveDate) -> (Kind, Value) {
        let weights = [6, 24, 13, 2, 13, 3, 3, 9, 6, 2, 3, 3, 1, 5, 2, 3, 3];
        // A command with nothing to act on is mostly replaced by another draw, so that most
        // commands meet the rules rather than `unknown_*`.
        let mut choice = self.rng.weighted(&weights);
        for _ in 0..3 {
            if Self::has_target(choice, state) || self.rng.chance(150) {
                break;
            }
            choice = self.rng.weighted(&weights);
        }
        let (kind, command) = match choice {
            0 => ("allocate_budget", self.allocate(state, today)),
            1 => ("submit_application", self.submit(state, today)),
            2 => ("review_application", self.review(state)),
            3 => ("endorse_application", self.endorse(state)),
            4 => ("approve_application", self.approve(state)),
            5 => ("reject_application", self.reject(state)),
            6 => ("withdraw_application", self.withdraw(state)),
            7 => ("order_payout", self.order_payout(state)),
            8 => ("confirm_payout", self.confirm(state, today)),
            9 => ("fail_payout", self.fail(state)),
            10 => ("order_clawback", self.clawback(state)),
            11 => ("record_repayment", self.repay(state)),
            12 if self.rng.chance(250) => ("register_policy", self.register_policy()),
            13 => match self.repeat_same() {
                Some(command) => return ("repeat, same content", command),
                None => ("allocate_budget", self.allocate(state, today)),
            },
            14 => match self.repeat_other() {
                Some(command) => return ("repeat, other content", command),
                None => ("allocate_budget", self.allocate(state, today)),
            },
            15 => return ("malformed", self.malformed(today)),
            16 => return ("unauthorised", self.unauthorised(state)),
            _ => ("submit_application", self.submit(state, today)),
        };
        (kind, self.remember(command))
    }

    /// Whether command kind `choice` (an index of the weights in `next`) has something in the
    /// state to act on.
    fn has_target(choice: usize, state: &LedgerState) -> bool {
        let apps = || state.applications.values();
        match choice {
            2 => apps().any(|app| app.status == ApplicationStatus::Submitted),
            3 => apps().any(|app| app.provision == "M4.case_by_case" && app.status.is_open()),
            4 => apps().any(|app| {
                app.status == ApplicationStatus::Reviewed && app.recommend == Some(true)
            }),
            5 | 6 => apps().any(|app| app.status.is_open()),
            7 => apps().any(|app| {
                app.status == ApplicationStatus::Approved
                    && app.approved.unwrap_or_default() > app.paid
            }),
            8 | 9 => state
                .payouts
                .values()
                .any(|payout| payout.status == PayoutStatus::Ordered),
            10 => state
                .payouts
                .values()
                .any(|payout| payout.status == PayoutStatus::Confirmed),
            11 => state
                .clawbacks
                .values()
                .any(|clawback| clawback.outstanding() > Decimal::ZERO),
            _ => true,
        }
    }

    /// What a client that does not wait for answers sends right after `command`: the review
    /// of the application it just submitted, or the approval of the one it just recommended
    /// (so one batch holds commands that depend on each other). `None` most of the time.
    pub fn follow_up(&mut self, command: &Value) -> Option<Value> {
        if !self.rng.chance(250) {
            return None;
        }
        let id = command["application_id"].as_str()?.to_string();
        let follow_up = match command["type"].as_str()? {
            "submit_application" => {
                let (reviewer, _) = officers_of(command["provision"].as_str()?);
                self.command(
                    "review_application",
                    reviewer,
                    json!({"application_id": id, "recommend": true, "note": "同批审核"}),
                )
            }
            "review_application" if command["recommend"] == json!(true) => {
                let submitted = self.history.iter().rev().find(|earlier| {
                    earlier["type"] == "submit_application"
                        && earlier["application_id"] == id.as_str()
                })?;
                let amount = submitted["amount"].as_str()?.to_string();
                let (_, approver) = officers_of(submitted["provision"].as_str()?);
                self.command(
                    "approve_application",
                    approver,
                    json!({"application_id": id, "amount": amount}),
                )
            }
            _ => return None,
        };
        Some(self.remember(follow_up))
    }

    /// A command for another process to run (the rival), from the same cast.
    pub fn for_rival(&mut self, state: &LedgerState, today: NaiveDate) -> Value {
        let command = match self.rng.weighted(&[3, 3, 2, 2]) {
            0 => self.submit(state, today),
            1 => self.approve(state),
            2 => self.order_payout(state),
            _ => self.allocate(state, today),
        };
        self.remember(command)
    }

    // -----------------------------------------------------------------------------------------
    // Picking what a command acts on

    /// An id for which `fits` holds, mostly; one time in ten any id or one that does not exist.
    fn pick(&mut self, ids: &[String], prefix: &str, fits: impl Fn(&str) -> bool) -> String {
        let fitting: Vec<&String> = ids.iter().filter(|id| fits(id)).collect();
        if fitting.is_empty() || self.rng.chance(70) {
            if ids.is_empty() || self.rng.chance(300) {
                return format!("{prefix}-404");
            }
            return ids[self.rng.index(ids.len())].clone();
        }
        fitting[self.rng.index(fitting.len())].clone()
    }

    fn pick_app(
        &mut self,
        state: &LedgerState,
        fits: impl Fn(&fundledger_projections::Application) -> bool,
    ) -> String {
        let apps = self.apps.clone();
        self.pick(&apps, "A", |id| {
            state.applications.get(id).is_some_and(|app| fits(app))
        })
    }

    fn year(&mut self, today: NaiveDate) -> i32 {
        if self.rng.chance(50) {
            today.year() + 1
        } else {
            today.year()
        }
    }

    // -----------------------------------------------------------------------------------------
    // The command types

    fn allocate(&mut self, state: &LedgerState, today: NaiveDate) -> Value {
        // Half the time, money for an application waiting for approval, so approvals happen.
        // (Sorted: the state's maps iterate in a per-process random order, a seed must not.)
        let mut waiting: Vec<(String, i32, Decimal)> = state
            .applications
            .values()
            .filter(|app| app.status == ApplicationStatus::Reviewed)
            .map(|app| (app.measure.clone(), app.fiscal_year, app.requested))
            .collect();
        waiting.sort();
        if !waiting.is_empty() && self.rng.chance(500) {
            let (measure, year, requested) = waiting[self.rng.index(waiting.len())].clone();
            let amount = requested * d(self.rng.range(5, 20) as i64) / d(10);
            return self.allocate_command(&measure, year, amount.max(d(100_000)), "fin.a");
        }
        let measures = ["M2", "M4", "M5", "M6", "M7", "M8", "M9", "M10"];
        let measure = *self.rng.pick(&measures);
        let year = if self.rng.chance(200) {
            today.year() + self.rng.range(1, 2) as i32
        } else {
            today.year()
        };
        let amount = *self.rng.pick(&[d(500_000), d(2_000_000), d(6_000_000)]);
        self.allocate_command(measure, year, amount, "fin.a")
    }

    fn submit(&mut self, state: &LedgerState, today: NaiveDate) -> Value {
        let provisions = [
            ("M2.compute_voucher", 35),
            ("M6.key_lab_lead", 8),
            ("M6.key_lab_programme", 18),
            ("M5.model_scenario", 6),
            ("M4.major_project", 4),
            ("M4.case_by_case", 4),
            ("M7.scenario_project", 5),
            ("M8.unicorn", 2),
            ("M8.potential_unicorn", 2),
            ("M8.little_giant", 2),
            ("M9.national_demo_base", 2),
            ("M10.event", 5),
        ];
        let weights: Vec<u32> = provisions.iter().map(|(_, weight)| *weight).collect();
        let mut provision = provisions[self.rng.weighted(&weights)].0;
        let lab_open = state.applications.values().any(|app| {
            app.provision == "M6.key_lab_lead" && app.status == ApplicationStatus::Approved
        });
        if provision == "M6.key_lab_programme" && !lab_open && self.rng.chance(850) {
            provision = "M6.key_lab_lead";
        } else if lab_open && self.rng.chance(250) {
            // Tranches keep coming while a lab is open, so its envelope fills up.
            provision = "M6.key_lab_programme";
        }
        let mut uscc = firm(self.rng.range(1, 4) as u32);
        let id = if self.rng.chance(30) && !self.apps.is_empty() {
            // An id in use: duplicate_id.
            self.apps[self.rng.index(self.apps.len())].clone()
        } else {
            self.fresh("A")
        };
        let mut year = self.year(today);
        let policy_start = NaiveDate::from_ymd_opt(2024, 5, 22).expect("a date");
        let recognised = (today - Duration::days(self.rng.below(40) as i64)).max(policy_start);
        let (amount, basis): (Option<Decimal>, Value) = match provision {
            "M2.compute_voucher" => {
                // Two firms share the vouchers, so that their yearly caps bind.
                uscc = firm(self.rng.range(1, 2) as u32);
                let contract =
                    *self
                        .rng
                        .pick(&[d(1_000_000), d(2_000_000), d(2_500_000), d(5_000_000)]);
                let fifth = contract / d(5);
                let amount = *self.rng.pick(&[
                    fifth,
                    fifth,
                    half(fifth),
                    fifth + cent(),
                    d(300_000),
                    d(450_000),
                    d(600_000),
                ]);
                let mut basis =
                    json!({"contract_amount": money(contract), "contract_id": format!("HT-{id}")});
                if self.rng.chance(50) {
                    basis["self_built"] = json!(true);
                }
                if self.rng.chance(300) {
                    basis["provincial_voucher"] = json!(true);
                }
                (Some(amount), basis)
            }
            "M6.key_lab_programme" => {
                let lab = self.pick_app(state, |app| {
                    app.provision == "M6.key_lab_lead" && app.status == ApplicationStatus::Approved
                });
                if let Some(lead) = state.applications.get(&lab) {
                    if self.rng.chance(900) {
                        uscc = lead.firm.uscc.clone();
                    }
                }
                year = today.year();
                let amount = *self.rng.pick(&[
                    d(1_500_000),
                    d(2_000_000),
                    d(2_500_000),
                    d(3_000_000),
                    d(4_000_000),
                    d(10_000_000),
                ]);
                (Some(amount), json!({"lab": lab, "rd_spend": "50000000.00"}))
            }
            "M5.model_scenario" => (
                Some(*self.rng.pick(&[
                    d(1_000_000),
                    d(2_500_000),
                    d(5_000_000),
                    d(5_000_000) + cent(),
                ])),
                json!({"scenario_id": format!("S-{}", self.rng.below(3))}),
            ),
            "M4.major_project" => (
                Some(
                    *self
                        .rng
                        .pick(&[d(10_000_000), d(10_000_000) - cent(), d(12_000_000)]),
                ),
                json!({"project_id": format!("ZD-{}", self.rng.below(5))}),
            ),
            "M4.case_by_case" => (
                Some(*self.rng.pick(&[d(1_000_000), d(3_000_000)])),
                json!({"project_id": format!("YS-{}", self.rng.below(5))}),
            ),
            "M7.scenario_project" => {
                let investment = *self.rng.pick(&[d(10_000_000), d(20_000_000)]);
                (
                    Some(*self.rng.pick(&[
                        d(1_000_000),
                        d(3_000_000),
                        d(3_000_000) + cent(),
                        d(5_000_000),
                    ])),
                    json!({"actual_investment": money(investment)}),
                )
            }
            "M10.event" => (
                Some(
                    *self
                        .rng
                        .pick(&[d(100_000), d(200_000), d(300_000) + cent()]),
                ),
                json!({"event_name": format!("活动{}", self.rng.below(3))}),
            ),
            // Fixed awards: usually without an amount.
            _ => {
                let amount = if self.rng.chance(150) {
                    Some(d(1_234_567))
                } else {
                    None
                };
                (amount, json!({"recognition_date": recognised.to_string()}))
            }
        };
        let mut fields = json!({
            "application_id": id,
            "firm": {"uscc": uscc, "name": firm_name(&uscc)},
            "provision": provision,
            "fiscal_year": year,
            "basis": basis,
        });
        if let Some(amount) = amount {
            fields["amount"] = Value::String(money(amount));
        }
        if !self.apps.contains(&id) {
            self.apps.push(id);
        }
        let actor = if self.rng.chance(100) {
            // A reviewer of a responsible unit may submit on a firm's behalf.
            officer("rev.a", "reviewer", GXJ)
        } else {
            applicant(&uscc)
        };
        self.command("submit_application", actor, fields)
    }

    fn review(&mut self, state: &LedgerState) -> Value {
        let app = self.pick_app(state, |app| app.status == ApplicationStatus::Submitted);
        let provision = state
            .applications
            .get(&app)
            .map_or("M2.compute_voucher".to_string(), |app| {
                app.provision.clone()
            });
        let reviewer = match self.rng.below(20) {
            0 => officer("rev.c", "reviewer", SJJ),
            1 => officer("rev.f", "reviewer", CZJ),
            _ if unit_of(&provision) == KJJ => officer("rev.b", "reviewer", KJJ),
            _ => officer("rev.a", "reviewer", GXJ),
        };
        let recommend = self.rng.chance(880);
        self.command(
            "review_application",
            reviewer,
            json!({"application_id": app, "recommend": recommend, "note": "材料齐全"}),
        )
    }

    fn endorse(&mut self, state: &LedgerState) -> Value {
        let app = self.pick_app(state, |app| {
            app.provision == "M4.case_by_case" && app.status.is_open()
        });
        let actor = if self.rng.chance(100) {
            officer("aud.qian", "auditor", SJJ)
        } else {
            officer("gov.chen", "government", "市人民政府")
        };
        self.command(
            "endorse_application",
            actor,
            json!({"application_id": app, "note": "市政府常务会议同意"}),
        )
    }

    fn approve(&mut self, state: &LedgerState) -> Value {
        let app = self.pick_app(state, |app| {
            app.status == ApplicationStatus::Reviewed && app.recommend == Some(true)
        });
        let (requested, provision) = state
            .applications
            .get(&app)
            .map_or((d(1000), "M2.compute_voucher".to_string()), |app| {
                (app.requested, app.provision.clone())
            });
        let amount = match self.rng.below(20) {
            0..=11 => requested,
            12..=14 => half(requested),
            15..=16 => requested + cent(),
            _ => requested - cent(),
        };
        let approver = match self.rng.below(20) {
            0 => officer("rev.a", "approver", GXJ),
            1..=3 => officer("apr.c", "approver", CZJ),
            _ if unit_of(&provision) == KJJ => officer("apr.b", "approver", KJJ),
            _ => officer("apr.a", "approver", GXJ),
        };
        self.command(
            "approve_application",
            approver,
            json!({"application_id": app, "amount": money(amount)}),
        )
    }

    fn reject(&mut self, state: &LedgerState) -> Value {
        let app = self.pick_app(state, |app| {
            app.status.is_open()
                || (app.status == ApplicationStatus::Approved && app.paid.is_zero())
        });
        let provision = state
            .applications
            .get(&app)
            .map_or("M2.compute_voucher".to_string(), |app| {
                app.provision.clone()
            });
        let actor = if unit_of(&provision) == KJJ {
            officer("rev.b", "reviewer", KJJ)
        } else {
            officer("apr.a", "approver", GXJ)
        };
        self.command(
            "reject_application",
            actor,
            json!({"application_id": app, "reason": "不符合条件"}),
        )
    }

    fn withdraw(&mut self, state: &LedgerState) -> Value {
        let app = self.pick_app(state, |app| app.status.is_open());
        let uscc = match state.applications.get(&app) {
            Some(found) if self.rng.chance(900) => found.firm.uscc.clone(),
            _ => firm(9),
        };
        self.command(
            "withdraw_application",
            applicant(&uscc),
            json!({"application_id": app}),
        )
    }

    fn order_payout(&mut self, state: &LedgerState) -> Value {
        let app = self.pick_app(state, |app| {
            app.status == ApplicationStatus::Approved && app.approved.unwrap_or_default() > app.paid
        });
        let open = state
            .applications
            .get(&app)
            .map_or(d(1000), |app| app.approved.unwrap_or_default() - app.paid);
        let amount = match self.rng.below(20) {
            0..=11 => open,
            12..=16 => half(open),
            _ => open + cent(),
        };
        let payout = if self.rng.chance(30) && !self.payouts.is_empty() {
            self.payouts[self.rng.index(self.payouts.len())].clone()
        } else {
            self.fresh("P")
        };
        if !self.payouts.contains(&payout) {
            self.payouts.push(payout.clone());
        }
        let who = *self.rng.pick(&["fin.a", "fin.a", "fin.b", "apr.c"]);
        self.command(
            "order_payout",
            officer(who, "finance", CZJ),
            json!({"payout_id": payout, "application_id": app, "amount": money(amount)}),
        )
    }

    fn ordered(state: &LedgerState, id: &str) -> bool {
        state
            .payouts
            .get(id)
            .is_some_and(|payout| payout.status == PayoutStatus::Ordered)
    }

    fn confirm(&mut self, state: &LedgerState, today: NaiveDate) -> Value {
        let payouts = self.payouts.clone();
        let payout = self.pick(&payouts, "P", |id| Self::ordered(state, id));
        let ordered_by = state
            .payouts
            .get(&payout)
            .map_or("fin.a".to_string(), |payout| payout.ordered_by.clone());
        let who = if self.rng.chance(100) {
            ordered_by
        } else if ordered_by == "fin.b" {
            "fin.a".to_string()
        } else {
            "fin.b".to_string()
        };
        self.command(
            "confirm_payout",
            officer(&who, "finance", CZJ),
            json!({"payout_id": payout, "bank_reference": format!("BANK-{payout}"), "value_date": today.to_string()}),
        )
    }

    fn fail(&mut self, state: &LedgerState) -> Value {
        let payouts = self.payouts.clone();
        let payout = self.pick(&payouts, "P", |id| Self::ordered(state, id));
        self.command(
            "fail_payout",
            officer("fin.b", "finance", CZJ),
            json!({"payout_id": payout, "reason": "账户已注销"}),
        )
    }

    fn clawback(&mut self, state: &LedgerState) -> Value {
        let confirmed = |id: &str| -> Decimal {
            state
                .payouts
                .values()
                .filter(|p| p.application_id == id && p.status == PayoutStatus::Confirmed)
                .map(|p| p.amount)
                .sum()
        };
        let app = self.pick_app(state, |app| {
            confirmed(&app.application_id) > app.clawed_back
        });
        let held = state
            .applications
            .get(&app)
            .map_or(d(1000), |found| confirmed(&app) - found.clawed_back);
        let amount = match self.rng.below(10) {
            0..=5 => held,
            6..=8 => half(held),
            _ => held + cent(),
        };
        let clawback = self.fresh("C");
        self.clawbacks.push(clawback.clone());
        self.command(
            "order_clawback",
            officer("fin.a", "finance", CZJ),
            json!({"clawback_id": clawback, "application_id": app, "amount": money(amount), "reason": "审计发现虚报"}),
        )
    }

    fn repay(&mut self, state: &LedgerState) -> Value {
        let clawbacks = self.clawbacks.clone();
        let clawback = self.pick(&clawbacks, "C", |id| {
            state
                .clawbacks
                .get(id)
                .is_some_and(|clawback| clawback.outstanding() > Decimal::ZERO)
        });
        let outstanding = state
            .clawbacks
            .get(&clawback)
            .map_or(d(1000), |found| found.outstanding());
        let amount = match self.rng.below(10) {
            0..=5 => outstanding,
            6..=8 => half(outstanding),
            _ => outstanding + cent(),
        };
        self.command(
            "record_repayment",
            officer("fin.b", "finance", CZJ),
            json!({"clawback_id": clawback, "amount": money(amount), "bank_reference": format!("BACK-{clawback}")}),
        )
    }

    fn register_policy(&mut self) -> Value {
        let actor = if self.rng.chance(700) {
            json!({"id": "adm.root", "role": "admin"})
        } else {
            officer("fin.a", "finance", CZJ)
        };
        self.command(
            "register_policy",
            actor,
            json!({"catalogue": BUILTIN_CATALOGUE}),
        )
    }

    fn repeat_same(&mut self) -> Option<Value> {
        if self.history.is_empty() {
            return None;
        }
        Some(self.history[self.rng.index(self.history.len())].clone())
    }

    fn repeat_other(&mut self) -> Option<Value> {
        let mut command = self.repeat_same()?;
        if command.get("amount").is_some() {
            command["amount"] = json!("1.00");
        } else {
            command["actor"]["id"] = json!("someone.else");
        }
        Some(command)
    }

    fn malformed(&mut self, today: NaiveDate) -> Value {
        let base = self.allocate(&LedgerState::default(), today);
        let mut command = base;
        match self.rng.below(9) {
            0 => {
                if let Some(object) = command.as_object_mut() {
                    object.remove("command_id");
                }
            }
            1 => command["command_id"] = json!("not-a-uuid"),
            2 => command["type"] = json!("allocate_everything"),
            3 => command["amount"] = json!("1000.001"),
            4 => command["amount"] = json!("-5.00"),
            5 => command["unexpected"] = json!(true),
            6 => command["fiscal_year"] = json!("2025"),
            7 => {
                let mut bad = firm(3);
                bad.pop();
                bad.push(if bad.ends_with('X') { 'Y' } else { 'X' });
                command = self.command(
                    "submit_application",
                    applicant(&bad),
                    json!({"application_id": "A-bad-uscc", "firm": {"uscc": bad, "name": "无效代码企业"},
                           "provision": "M8.unicorn", "fiscal_year": today.year(),
                           "basis": {"recognition_date": today.to_string()}}),
                );
            }
            _ => {
                command = self.command(
                    "submit_application",
                    applicant(&firm(1)),
                    json!({"application_id": " ", "firm": {"uscc": firm(1), "name": firm_name(&firm(1))},
                           "provision": "M9.national_demo_base", "fiscal_year": today.year(),
                           "basis": {"recognition_date": today.to_string()}}),
                );
            }
        }
        command
    }

    fn unauthorised(&mut self, state: &LedgerState) -> Value {
        match self.rng.below(5) {
            0 => {
                let mut command =
                    self.allocate(state, NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"));
                command["actor"] = officer("aud.qian", "auditor", SJJ);
                command
            }
            1 => {
                let mut command =
                    self.allocate(state, NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"));
                command["actor"] = officer("fin.x", "finance", GXJ);
                command
            }
            2 => {
                let mut command = self.review(state);
                command["actor"] = json!({"id": "", "role": "reviewer", "unit": GXJ});
                command
            }
            3 => {
                let mut command = self.order_payout(state);
                if let Some(object) = command.as_object_mut() {
                    object.remove("actor");
                }
                command
            }
            _ => {
                let mut command = self.approve(state);
                command["actor"] = applicant(&firm(1));
                command
            }
        }
    }
}
