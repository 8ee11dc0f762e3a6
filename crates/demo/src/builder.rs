//! The scenario builder: one helper per command, business dates, seeded amounts and lags.
//!
//! Stories are written one application at a time (submit → review → approve → pay), each step
//! a few days after the one before. The builder then sorts every step by its business time,
//! makes the times strictly increasing, and only then draws the command ids, so the log reads
//! like a city's real calendar with many applications in flight at once.

use std::collections::BTreeMap;

use chrono::{
    DateTime, Datelike, Days, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Utc, Weekday,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::cast::{FirmSpec, Staff, FIN_CHEN, FIN_WANG, FIN_ZHAO, GOVERNMENT};
use crate::DemoStep;

/// Working hours in which officers and applicants act: 09:00 plus up to 8½ hours.
const WORKDAY_START_S: i64 = 9 * 3600;
const WORKDAY_SPAN_S: i64 = 8 * 3600 + 30 * 60;
/// Mixed into the seed for the stream that draws command ids, so ids and amounts are
/// independent draws.
const ID_STREAM: u64 = 0x6964_735f_6669_7865;

/// One planned command, before sorting.
struct Plan {
    at: DateTime<FixedOffset>,
    /// Order of writing, to keep steps with the same time in a stable order.
    order: usize,
    actor: Value,
    kind: &'static str,
    fields: Map<String, Value>,
    expect: Option<&'static str>,
}

/// China Standard Time.
pub(crate) fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// A calendar date; the scenario only writes real dates (the tests run every one).
pub(crate) fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// A calendar date as (year, month, day).
type Ymd = (i32, u32, u32);

/// Public holidays on which no one files or pays (劳动节, 国庆节, 春节), as inclusive ranges.
/// Make-up working weekends (调休) are ignored: the demo simply never acts on a weekend.
const HOLIDAYS: [(Ymd, Ymd); 8] = [
    ((2024, 10, 1), (2024, 10, 7)),
    ((2025, 1, 28), (2025, 2, 4)),
    ((2025, 5, 1), (2025, 5, 5)),
    ((2025, 10, 1), (2025, 10, 8)),
    ((2026, 2, 15), (2026, 2, 23)),
    ((2026, 5, 1), (2026, 5, 5)),
    ((2026, 10, 1), (2026, 10, 7)),
    ((2027, 2, 5), (2027, 2, 13)),
];
/// No run of days off is longer than this.
const DAYS_OFF_MAX: u32 = 16;

fn is_working_day(date: NaiveDate) -> bool {
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    let holiday = HOLIDAYS
        .iter()
        .any(|(from, to)| day(from.0, from.1, from.2) <= date && date <= day(to.0, to.1, to.2));
    !weekend && !holiday
}

/// `date`, or the first working day after it.
pub(crate) fn working_day(date: NaiveDate) -> NaiveDate {
    let mut date = date;
    for _ in 0..DAYS_OFF_MAX {
        if is_working_day(date) {
            break;
        }
        date = date + Days::new(1);
    }
    date
}

/// Yuan as the contract writes amounts: a decimal string with two places.
pub(crate) fn yuan(amount_yuan: i64) -> String {
    format!("{amount_yuan}.00")
}

/// The measure of a provision id: `"M2.compute_voucher"` → `"M2"`.
fn measure_of(provision: &str) -> &str {
    provision.split('.').next().unwrap_or(provision)
}

pub(crate) struct Builder {
    seed: u64,
    rng: ChaCha8Rng,
    plans: Vec<Plan>,
    /// Next application number per (fiscal year, measure).
    app_numbers: BTreeMap<(i32, String), u32>,
    payout_number: u32,
    clawback_number: u32,
}

impl Builder {
    pub(crate) fn new(seed: u64) -> Builder {
        Builder {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            plans: Vec::new(),
            app_numbers: BTreeMap::new(),
            payout_number: 0,
            clawback_number: 0,
        }
    }

    /// An amount from `low_yuan` to `high_yuan` in whole steps of `step_yuan`.
    pub(crate) fn amount(&mut self, low_yuan: i64, high_yuan: i64, step_yuan: i64) -> i64 {
        let steps = ((high_yuan - low_yuan) / step_yuan.max(1)).max(0);
        low_yuan + step_yuan * self.rng.gen_range(0..=steps)
    }

    /// A working day at least `low_days` and about `high_days` after `date` (moved on past
    /// weekends and holidays, so always strictly later when `low_days` ≥ 1).
    pub(crate) fn after(&mut self, date: NaiveDate, low_days: u64, high_days: u64) -> NaiveDate {
        working_day(date + Days::new(self.rng.gen_range(low_days..=high_days.max(low_days))))
    }

    /// A working day in `[from, to]`, or just after `to` when the draw falls on a day off.
    pub(crate) fn between(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let span = (to - from).num_days().max(0) as u64;
        working_day(from + Days::new(self.rng.gen_range(0..=span)))
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        self.rng.gen_bool(probability.clamp(0.0, 1.0))
    }

    /// One of `choices` (which must not be empty).
    pub(crate) fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.rng.gen_range(0..choices.len())]
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        use rand::seq::SliceRandom;
        items.shuffle(&mut self.rng);
    }

    /// A business time on `date`, in working hours.
    fn time(&mut self, date: NaiveDate) -> DateTime<FixedOffset> {
        let seconds = WORKDAY_START_S + self.rng.gen_range(0..=WORKDAY_SPAN_S);
        let local = date.and_time(NaiveTime::MIN) + Duration::seconds(seconds);
        let offset = cst();
        let utc = local - Duration::seconds(i64::from(offset.local_minus_utc()));
        DateTime::from_naive_utc_and_offset(utc, offset)
    }

    fn push(
        &mut self,
        date: NaiveDate,
        actor: Value,
        kind: &'static str,
        fields: Value,
        expect: Option<&'static str>,
    ) {
        let at = self.time(date);
        let fields = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let order = self.plans.len();
        self.plans.push(Plan {
            at,
            order,
            actor,
            kind,
            fields,
            expect,
        });
    }

    pub(crate) fn allocate(&mut self, date: NaiveDate, measure: &str, year: i32, amount: i64) {
        self.push(
            date,
            FIN_WANG.actor(),
            "allocate_budget",
            json!({"measure": measure, "fiscal_year": year, "amount": yuan(amount)}),
            None,
        );
    }

    /// Submits an application in the firm's name; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit(
        &mut self,
        date: NaiveDate,
        firm: &FirmSpec,
        provision: &str,
        year: i32,
        amount: Option<i64>,
        basis: Value,
        expect: Option<&'static str>,
    ) -> String {
        let measure = measure_of(provision).to_string();
        let number = self.app_numbers.entry((year, measure.clone())).or_insert(0);
        *number += 1;
        let application_id = format!("ZZAI-{year}-{measure}-{number:04}");
        let mut fields = json!({
            "application_id": application_id,
            "firm": firm.firm_object(),
            "provision": provision,
            "fiscal_year": year,
            "basis": basis,
        });
        if let (Some(amount), Some(object)) = (amount, fields.as_object_mut()) {
            object.insert("amount".to_string(), Value::String(yuan(amount)));
        }
        self.push(date, firm.applicant(), "submit_application", fields, expect);
        application_id
    }

    pub(crate) fn review(
        &mut self,
        date: NaiveDate,
        application_id: &str,
        reviewer: Staff,
        recommend: bool,
        note: &str,
    ) {
        self.push(
            date,
            reviewer.actor(),
            "review_application",
            json!({"application_id": application_id, "recommend": recommend, "note": note}),
            None,
        );
    }

    pub(crate) fn endorse(&mut self, date: NaiveDate, application_id: &str, note: &str) {
        self.push(
            date,
            GOVERNMENT.actor(),
            "endorse_application",
            json!({"application_id": application_id, "note": note}),
            None,
        );
    }

    pub(crate) fn approve(
        &mut self,
        date: NaiveDate,
        application_id: &str,
        approver: Staff,
        amount: i64,
        expect: Option<&'static str>,
    ) {
        self.push(
            date,
            approver.actor(),
            "approve_application",
            json!({"application_id": application_id, "amount": yuan(amount)}),
            expect,
        );
    }

    pub(crate) fn reject(
        &mut self,
        date: NaiveDate,
        application_id: &str,
        by: Staff,
        reason: &str,
    ) {
        self.push(
            date,
            by.actor(),
            "reject_application",
            json!({"application_id": application_id, "reason": reason}),
            None,
        );
    }

    pub(crate) fn withdraw(&mut self, date: NaiveDate, application_id: &str, firm: &FirmSpec) {
        self.push(
            date,
            firm.applicant(),
            "withdraw_application",
            json!({"application_id": application_id}),
            None,
        );
    }

    /// Orders a payout; returns its id (`ZF` + order date + a running number).
    pub(crate) fn order(
        &mut self,
        date: NaiveDate,
        application_id: &str,
        amount: i64,
        officer: Staff,
    ) -> String {
        self.payout_number += 1;
        let payout_id = format!("ZF{}{:04}", date.format("%Y%m%d"), self.payout_number);
        self.push(
            date,
            officer.actor(),
            "order_payout",
            json!({"payout_id": payout_id, "application_id": application_id, "amount": yuan(amount)}),
            None,
        );
        payout_id
    }

    pub(crate) fn confirm(
        &mut self,
        date: NaiveDate,
        payout_id: &str,
        officer: Staff,
        expect: Option<&'static str>,
    ) {
        let bank_reference = format!(
            "ZZCZ{}{:06}",
            date.format("%Y%m%d"),
            self.rng.gen_range(0..1_000_000)
        );
        self.push(
            date,
            officer.actor(),
            "confirm_payout",
            json!({
                "payout_id": payout_id,
                "bank_reference": bank_reference,
                "value_date": date.format("%Y-%m-%d").to_string(),
            }),
            expect,
        );
    }

    pub(crate) fn fail(&mut self, date: NaiveDate, payout_id: &str, officer: Staff, reason: &str) {
        self.push(
            date,
            officer.actor(),
            "fail_payout",
            json!({"payout_id": payout_id, "reason": reason}),
            None,
        );
    }

    /// Orders a clawback; returns its id (`ZH` + date + a running number).
    pub(crate) fn clawback(
        &mut self,
        date: NaiveDate,
        application_id: &str,
        amount: i64,
        reason: &str,
    ) -> String {
        self.clawback_number += 1;
        let clawback_id = format!("ZH{}{:03}", date.format("%Y%m%d"), self.clawback_number);
        self.push(
            date,
            FIN_CHEN.actor(),
            "order_clawback",
            json!({
                "clawback_id": clawback_id,
                "application_id": application_id,
                "amount": yuan(amount),
                "reason": reason,
            }),
            None,
        );
        clawback_id
    }

    pub(crate) fn repay(&mut self, date: NaiveDate, clawback_id: &str, amount: i64) {
        let bank_reference = format!(
            "ZZHK{}{:06}",
            date.format("%Y%m%d"),
            self.rng.gen_range(0..1_000_000)
        );
        self.push(
            date,
            FIN_ZHAO.actor(),
            "record_repayment",
            json!({"clawback_id": clawback_id, "amount": yuan(amount), "bank_reference": bank_reference}),
            None,
        );
    }

    /// Two finance officers for one payout: who orders it and who confirms it (never the
    /// same person).
    pub(crate) fn paying_officers(&mut self) -> (Staff, Staff) {
        let orderer = self.pick(&[FIN_WANG, FIN_CHEN]);
        let other = if orderer == FIN_WANG {
            FIN_CHEN
        } else {
            FIN_WANG
        };
        let confirmer = if self.chance(0.7) { FIN_ZHAO } else { other };
        (orderer, confirmer)
    }

    /// Orders a payout on `date` and confirms it one to four days later; returns the
    /// confirmation date.
    pub(crate) fn pay(&mut self, date: NaiveDate, application_id: &str, amount: i64) -> NaiveDate {
        let (orderer, confirmer) = self.paying_officers();
        let payout_id = self.order(date, application_id, amount, orderer);
        let confirmed = self.after(date, 1, 4);
        self.confirm(confirmed, &payout_id, confirmer, None);
        confirmed
    }

    /// Sorts the plan by business time and writes the commands.
    pub(crate) fn finish(mut self) -> Vec<DemoStep> {
        self.plans
            .sort_by(|a, b| a.at.cmp(&b.at).then(a.order.cmp(&b.order)));
        let mut ids = ChaCha8Rng::seed_from_u64(self.seed ^ ID_STREAM);
        let mut previous: Option<DateTime<FixedOffset>> = None;
        let mut steps = Vec::with_capacity(self.plans.len());
        for plan in self.plans {
            // Business time increases strictly: a tie moves one second on.
            let at = match previous {
                Some(before) if plan.at <= before => before + Duration::seconds(1),
                _ => plan.at,
            };
            previous = Some(at);
            let mut bytes = [0u8; 16];
            ids.fill_bytes(&mut bytes);
            let command_id = uuid::Builder::from_random_bytes(bytes).into_uuid();
            let mut command = Map::new();
            command.insert("command_id".to_string(), json!(command_id.to_string()));
            command.insert("actor".to_string(), plan.actor);
            command.insert("at".to_string(), json!(at.to_rfc3339()));
            command.insert("type".to_string(), json!(plan.kind));
            command.extend(plan.fields);
            steps.push(DemoStep {
                command: Value::Object(command),
                expect: plan.expect,
            });
        }
        steps
    }
}
