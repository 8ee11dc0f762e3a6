//! The voucher workload of the write benchmarks: many firms, each submitting several compute
//! vouchers (M2.compute_voucher, 20% of a contract) in one fiscal year, each reviewed by a
//! responsible bureau and approved by another officer, under the 1,000,000-yuan yearly firm
//! cap and a measure budget that runs short near the end.
//!
//! So the writer meets what a real one meets: accepted submissions, submissions refused by
//! the yearly cap (recorded as `application_refused`), negative reviews (not approved),
//! approvals committing budget, and approvals refused for `insufficient_budget` once the
//! budget is spent (recorded nowhere). Everything is drawn from a seeded generator, so a seed
//! and a firm index always give the same commands.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use fundledger_ledger::{uscc, Command, Ledger, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The characters of a USCC (GB 32100-2015), in value order.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Fiscal years the firms apply in (each firm in one of them).
pub const FISCAL_YEARS: [i32; 2] = [2025, 2026];
/// Vouchers a firm submits: a uniform count in this range. Their mean (4.5 × 250,000) passes
/// the 1,000,000 cap, so about one firm in two has a submission refused by it.
const VOUCHERS_PER_FIRM: std::ops::RangeInclusive<u32> = 3..=6;
/// Voucher amounts: 100,000 to 400,000 yuan in steps of 10,000.
const VOUCHER_STEPS: std::ops::RangeInclusive<u32> = 10..=40;
/// Share of reviews that do not recommend (those applications are not approved).
const NEGATIVE_REVIEW_SHARE: f64 = 0.05;
/// Budget per firm and fiscal year: below the ~850,000 a firm is approved on average, so the
/// budget runs out near the end of a full run and the last approvals are refused.
const BUDGET_PER_FIRM_YUAN: u64 = 800_000;
/// Commands a firm sends on average: 4.5 submissions, ~94% accepted (the rest refused by the
/// cap), each reviewed, 95% of those approved — about 4.5 × (1 + 0.94 × 1.95).
pub const COMMANDS_PER_FIRM_ESTIMATE: f64 = 12.7;

/// Officers of the responsible bureaus of M2 (责任单位: 市工信局, 市大数据局, 市科技局).
const REVIEWERS: [(&str, &str); 3] = [
    ("rev.gxj.zhang", "市工信局"),
    ("rev.dsj.sun", "市大数据局"),
    ("rev.kjj.liu", "市科技局"),
];
const APPROVERS: [(&str, &str); 3] = [
    ("appr.gxj.zhou", "市工信局"),
    ("appr.dsj.zheng", "市大数据局"),
    ("appr.kjj.wu", "市科技局"),
];

/// The valid USCC of bench firm `index`: 郑州 (410100), a company (91…MA), the index in base 31.
pub fn firm_uscc(index: u64) -> String {
    let mut tail = [b'0'; 7];
    let mut rest = index;
    for slot in tail.iter_mut().rev() {
        *slot = USCC_ALPHABET[(rest % 31) as usize];
        rest /= 31;
    }
    let first17 = format!(
        "91410100MA{}",
        std::str::from_utf8(&tail).unwrap_or("0000000")
    );
    uscc::complete(&first17).unwrap_or(first17)
}

/// A UUID-shaped command id (version 4 layout) from the generator.
pub fn command_id(rng: &mut StdRng) -> String {
    let high: u64 = rng.gen();
    let low: u64 = rng.gen();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        8 + (low >> 62),
        (low >> 48) & 0xfff,
        low & 0xffff_ffff_ffff
    )
}

/// One voucher: its submission, and the review and approval that follow an accepted one.
pub struct Voucher {
    pub submit: Command,
    pub review: Command,
    /// None when the review does not recommend it.
    pub approve: Option<Command>,
}

/// What one firm does.
pub struct FirmScript {
    pub vouchers: Vec<Voucher>,
}

/// The budget allocations that must precede the firms: one per fiscal year, sized for
/// `firms` firms.
pub fn budget_commands(seed: u64, firms: u64) -> anyhow::Result<Vec<Command>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00b0_d6e7);
    let per_year = firms.div_ceil(FISCAL_YEARS.len() as u64).max(1) * BUDGET_PER_FIRM_YUAN;
    FISCAL_YEARS
        .iter()
        .map(|year| {
            parse(json!({
                "command_id": command_id(&mut rng),
                "actor": {"id": "fin.wang", "role": "finance", "unit": "市财政局"},
                "type": "allocate_budget", "measure": "M2", "fiscal_year": year,
                "amount": format!("{per_year}.00"),
                "at": format!("{}-01-06T09:00:00+08:00", year),
            }))
        })
        .collect()
}

/// The script of firm `index` under `seed`.
pub fn firm_script(seed: u64, index: u64) -> anyhow::Result<FirmScript> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index);
    let uscc = firm_uscc(index);
    let name = format!("郑州第{index}号智算科技有限公司");
    let year = FISCAL_YEARS[(index % FISCAL_YEARS.len() as u64) as usize];
    let applicant = json!({"id": format!("app.{index}"), "role": "applicant", "firm": uscc});
    let count = rng.gen_range(VOUCHERS_PER_FIRM);
    let mut vouchers = Vec::with_capacity(count as usize);
    for number in 0..count {
        let amount_yuan = u64::from(rng.gen_range(VOUCHER_STEPS)) * 10_000;
        let application_id = format!("V{year}-{index}-{number}");
        let day = 1 + number * 4;
        let at = |hour: u32| format!("{year}-03-{day:02}T{hour:02}:00:00+08:00");
        let submit = parse(json!({
            "command_id": command_id(&mut rng),
            "actor": applicant,
            "type": "submit_application",
            "application_id": application_id,
            "firm": {"uscc": uscc, "name": name},
            "provision": "M2.compute_voucher",
            "fiscal_year": year,
            "amount": format!("{amount_yuan}.00"),
            "basis": {
                "contract_amount": format!("{}.00", amount_yuan * 5),
                "contract_id": format!("HT-{year}-{index}-{number}"),
                "self_built": false,
                "provincial_voucher": rng.gen_bool(0.3),
            },
            "at": at(9),
        }))?;
        let (reviewer, review_unit) = REVIEWERS[rng.gen_range(0..REVIEWERS.len())];
        let recommend = !rng.gen_bool(NEGATIVE_REVIEW_SHARE);
        let review = parse(json!({
            "command_id": command_id(&mut rng),
            "actor": {"id": reviewer, "role": "reviewer", "unit": review_unit},
            "type": "review_application",
            "application_id": application_id,
            "recommend": recommend,
            "note": if recommend { "合同与发票核验无误，建议支持" } else { "合同金额与发票不符，不予推荐" },
            "at": at(14),
        }))?;
        let approve = if recommend {
            let (approver, approve_unit) = APPROVERS[rng.gen_range(0..APPROVERS.len())];
            Some(parse(json!({
                "command_id": command_id(&mut rng),
                "actor": {"id": approver, "role": "approver", "unit": approve_unit},
                "type": "approve_application",
                "application_id": application_id,
                "amount": format!("{amount_yuan}.00"),
                "at": at(16),
            }))?)
        } else {
            None
        };
        vouchers.push(Voucher {
            submit,
            review,
            approve,
        });
    }
    Ok(FirmScript { vouchers })
}

fn parse(value: Value) -> anyhow::Result<Command> {
    Command::parse(&value)
        .map_err(|rejection| anyhow::anyhow!("a bench command does not parse: {rejection:?}"))
}

/// When the clients stop.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this many commands were sent.
    Commands(u64),
    /// Once the ledger's head reaches this seq (it may pass it by what is in flight).
    Records(u64),
}

/// Where the clients take firm scripts from.
pub enum Scripts {
    /// Built before the clock starts (benchmarks): building commands is not the writer's work.
    Prebuilt(Vec<Mutex<Option<FirmScript>>>),
    /// Built by the clients as they go (making data sets, where nobody times it).
    Lazy { seed: u64 },
}

/// Counts of outcomes: "accepted", or the code, with whether anything was recorded.
#[derive(Default, Debug)]
pub struct Tally {
    pub commands: u64,
    pub by_outcome: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        self.commands += 1;
        let key = match (&outcome.code, outcome.seqs.is_empty()) {
            (None, _) => std::borrow::Cow::Borrowed("accepted"),
            (Some(code), false) => format!("{code} (recorded)").into(),
            (Some(code), true) => code.as_str().into(),
        };
        // Counted without allocating a key for outcomes seen before: the clients share the
        // machine with the writer they measure.
        match self.by_outcome.get_mut(key.as_ref()) {
            Some(count) => *count += 1,
            None => {
                self.by_outcome.insert(key.into_owned(), 1);
            }
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.commands += other.commands;
        for (key, count) in other.by_outcome {
            *self.by_outcome.entry(key).or_default() += count;
        }
    }

    /// `accepted 1,234; exceeds_firm_annual_cap (recorded) 56; …`
    pub fn summary(&self) -> String {
        self.by_outcome
            .iter()
            .map(|(key, count)| format!("{key} {}", super::thousands(*count)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Runs `clients` concurrent clients against the ledger until `stop`: each takes the next
/// firm, and for each of its vouchers submits, waits for the outcome, then (if accepted)
/// reviews, and (if recommended and accepted) approves — as separate people would.
pub async fn run_clients(
    ledger: &Ledger,
    scripts: Arc<Scripts>,
    clients: usize,
    stop: Stop,
) -> anyhow::Result<Tally> {
    let next_firm = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let ledger = ledger.clone();
        let scripts = scripts.clone();
        let next_firm = next_firm.clone();
        let sent = sent.clone();
        tasks.spawn(async move { client(ledger, scripts, next_firm, sent, stop).await });
    }
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        tally.merge(joined.context("a bench client panicked")??);
    }
    Ok(tally)
}

async fn client(
    ledger: Ledger,
    scripts: Arc<Scripts>,
    next_firm: Arc<AtomicUsize>,
    sent: Arc<AtomicU64>,
    stop: Stop,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    // May this client send one more command?
    let go_on = |sent: &AtomicU64| match stop {
        Stop::Commands(most) => sent.fetch_add(1, Ordering::Relaxed) < most,
        Stop::Records(target) => ledger.snapshot().last_seq < target,
    };
    loop {
        let index = next_firm.fetch_add(1, Ordering::Relaxed);
        let script = match scripts.as_ref() {
            Scripts::Prebuilt(all) => match all.get(index) {
                Some(slot) => slot.lock().ok().and_then(|mut slot| slot.take()),
                None => None,
            },
            Scripts::Lazy { seed } => Some(firm_script(*seed, index as u64)?),
        };
        let Some(script) = script else {
            // Out of prebuilt firms: the run was sized too small for its stop condition.
            return Ok(tally);
        };
        for voucher in script.vouchers {
            if !go_on(&sent) {
                return Ok(tally);
            }
            let submitted = ledger.execute(voucher.submit).await?;
            tally.add(&submitted);
            if !submitted.is_accepted() || !go_on(&sent) {
                continue;
            }
            let reviewed = ledger.execute(voucher.review).await?;
            tally.add(&reviewed);
            let Some(approve) = voucher.approve else {
                continue;
            };
            if !reviewed.is_accepted() || !go_on(&sent) {
                continue;
            }
            tally.add(&ledger.execute(approve).await?);
        }
    }
}

/// Firms to prebuild for `commands` commands, with room to spare.
pub fn firms_for(commands: u64) -> u64 {
    ((commands as f64 / COMMANDS_PER_FIRM_ESTIMATE) * 1.5).ceil() as u64 + 16
}

/// Firms that `commands` commands reach: what a budget is sized on, so that it runs short
/// near the end of a run (about 800,000 of the ~850,000 a firm is approved, per firm).
pub fn firms_reached(commands: u64) -> u64 {
    (commands as f64 / COMMANDS_PER_FIRM_ESTIMATE).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firm_usccs_are_valid_and_distinct() {
        let codes: Vec<String> = (0..2_000).map(firm_uscc).collect();
        for code in &codes {
            assert!(uscc::is_valid(code), "{code}");
        }
        let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        assert!(uscc::is_valid(&firm_uscc(u64::from(u32::MAX))));
    }

    #[test]
    fn command_ids_are_uuids_and_scripts_are_reproducible() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let id = command_id(&mut rng);
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
        let first = firm_script(42, 3).expect("a script");
        let again = firm_script(42, 3).expect("a script");
        assert!(VOUCHERS_PER_FIRM.contains(&(first.vouchers.len() as u32)));
        let ids = |script: &FirmScript| -> Vec<String> {
            script
                .vouchers
                .iter()
                .map(|voucher| voucher.submit.command_id.clone())
                .collect()
        };
        assert_eq!(ids(&first), ids(&again));
        assert_ne!(ids(&first), ids(&firm_script(43, 3).expect("a script")));
        assert_eq!(budget_commands(42, 10).expect("budgets").len(), 2);
    }
}
