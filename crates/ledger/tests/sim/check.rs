//! The checker: what must hold after every simulated run, as pure functions of the stored
//! records, the states the processes published and the outcomes the clients were given. Each
//! returns the violations it finds, described; the unit tests in `simulation.rs` feed it
//! broken inputs to show that it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use fundledger_events::{ChainVerifier, Head, Record};
use fundledger_ledger::{Code, Outcome};
use fundledger_policy::Limit;
use fundledger_projections::{invariants, ApplicationStatus, LedgerState, PayoutStatus};
use rust_decimal::Decimal;

/// An outcome a client was given.
#[derive(Clone, Debug)]
pub struct Ack {
    pub command_id: String,
    /// The command's idempotency digest (`Command::digest`).
    pub digest: String,
    pub outcome: Outcome,
    /// The process instance that answered; `None` for the rival and the parser.
    pub instance: Option<u64>,
    /// Driver ticks: when the command was queued, when the answer arrived.
    pub enqueued_at: u64,
    pub received_at: u64,
    /// An earlier attempt of this command got an error instead of an outcome.
    pub retried: bool,
}

/// An append that reached the store but was answered with an error (a crash or a lost reply).
#[derive(Clone, Debug)]
pub struct Landed {
    pub instance: u64,
    pub seqs: Vec<u64>,
    pub tick: u64,
}

/// A process instance opened on the store, and the head it read when it opened.
#[derive(Clone, Debug)]
pub struct Opened {
    pub instance: u64,
    pub head_seq: u64,
}

fn shown(value: &impl Debug) -> String {
    let text = format!("{value:?}");
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}…")
    } else {
        text
    }
}

// ---------------------------------------------------------------------------------------------
// The chain

/// The stored log is one valid chain from the genesis of `origin` to `head`: every record
/// links to the one before, carries the next seq, and hashes (JCS body, BLAKE3) to its hash.
pub fn chain_violations(origin: &str, records: &[Record], head: Head) -> Vec<String> {
    let mut found = Vec::new();
    let mut verifier = ChainVerifier::new(origin);
    for (index, record) in records.iter().enumerate() {
        if record.seq != index as u64 + 1 {
            found.push(format!("record {index} has seq {}", record.seq));
        }
        if record.computed_hash() != record.hash {
            found.push(format!(
                "seq {}: the stored hash is not the hash of its prev and body",
                record.seq
            ));
        }
        if let Err(error) = verifier.check_record(record) {
            found.push(format!("seq {}: the chain breaks: {error}", record.seq));
            return found;
        }
    }
    if verifier.head() != head {
        found.push(format!(
            "the chain ends at seq {} but the store's head is seq {}",
            verifier.head().seq,
            head.seq
        ));
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Commands in the log and the outcomes given

/// The records one command left in the log.
#[derive(Clone, Debug, Default)]
pub struct CommandRun {
    pub seqs: Vec<u64>,
    pub digests: BTreeSet<String>,
}

/// Records by command id.
pub fn command_runs(records: &[Record]) -> BTreeMap<String, CommandRun> {
    let mut runs: BTreeMap<String, CommandRun> = BTreeMap::new();
    for record in records {
        let id = record.body["command_id"].as_str().unwrap_or("").to_string();
        let run = runs.entry(id).or_default();
        run.seqs.push(record.seq);
        if let Some(digest) = record.body["command_digest"].as_str() {
            run.digests.insert(digest.to_string());
        }
    }
    runs
}

/// Each command is in the log at most once: one contiguous run of records (one batch of one
/// decision), under one digest (one content).
pub fn run_violations(runs: &BTreeMap<String, CommandRun>) -> Vec<String> {
    let mut found = Vec::new();
    for (id, run) in runs {
        let contiguous = run.seqs.windows(2).all(|pair| pair[1] == pair[0] + 1);
        if !contiguous {
            found.push(format!(
                "command {id} is in the log more than once: seqs {:?}",
                run.seqs
            ));
        }
        if run.digests.len() > 1 {
            found.push(format!(
                "command {id} is in the log with {} different contents",
                run.digests.len()
            ));
        }
    }
    found
}

/// How far instance `instance` must have known the log when it decided a command queued at
/// tick `tick`: (the highest seq it had read when it opened or answered with before, the
/// highest seq of its own appends that landed although the store's answer was an error).
/// A writer that got an error from an append cannot tell whether it landed; it must find out
/// before it answers anything else, so it is held to know what it wrote.
fn known_seq(
    instance: u64,
    tick: u64,
    acks: &[Ack],
    opened: &[Opened],
    landed: &[Landed],
) -> (u64, u64) {
    let at_open = opened
        .iter()
        .filter(|open| open.instance == instance)
        .map(|open| open.head_seq);
    let answered = acks
        .iter()
        .filter(|ack| ack.instance == Some(instance) && ack.received_at < tick)
        .filter_map(|ack| ack.outcome.seqs.iter().max().copied());
    let written = landed
        .iter()
        .filter(|land| land.instance == instance && land.tick < tick)
        .filter_map(|land| land.seqs.iter().max().copied());
    (
        at_open.chain(answered).max().unwrap_or(0),
        written.max().unwrap_or(0),
    )
}

/// Every acknowledged outcome is in the log under its command id (all its seqs, nothing
/// else), and a command has one result: once a process knows a command's records, it answers
/// the same content with the recorded outcome and other content with `idempotency_conflict`;
/// a rejection that recorded nothing is answered again the same by the process that gave it.
pub fn ack_violations(
    records: &[Record],
    acks: &[Ack],
    opened: &[Opened],
    landed: &[Landed],
) -> Vec<String> {
    let runs = command_runs(records);
    let mut found = run_violations(&runs);
    // The first outcome given with seqs, per command id: the recorded result.
    let mut recorded: BTreeMap<&str, &Ack> = BTreeMap::new();
    for ack in acks {
        if !ack.outcome.seqs.is_empty() {
            recorded.entry(ack.command_id.as_str()).or_insert(ack);
        }
    }
    for ack in acks {
        let id = ack.command_id.as_str();
        let what = format!("command {id} ({})", shown(&ack.outcome));
        if ack.outcome.command_id.as_deref() != Some(id) {
            found.push(format!("{what}: the outcome names another command"));
        }
        if ack.outcome.is_accepted() && ack.outcome.seqs.is_empty() {
            found.push(format!("{what}: accepted but recorded nothing"));
        }
        if ack.outcome.code() == Some(Code::IdempotencyConflict) && !ack.outcome.seqs.is_empty() {
            found.push(format!("{what}: an idempotency conflict with seqs"));
        }
        let run = runs.get(id);
        if !ack.outcome.seqs.is_empty() {
            match run {
                None => found.push(format!("{what}: acknowledged, but not in the log")),
                Some(run) => {
                    if run.seqs != ack.outcome.seqs {
                        found.push(format!(
                            "{what}: acknowledged seqs {:?}, but the log holds it at {:?}",
                            ack.outcome.seqs, run.seqs
                        ));
                    }
                    if !run.digests.contains(&ack.digest) {
                        found.push(format!(
                            "{what}: acknowledged, but the log holds other content under its id"
                        ));
                    }
                }
            }
        }
        let (Some(instance), Some(run)) = (ack.instance, run) else {
            continue;
        };
        let Some(last_seq) = run.seqs.last().copied() else {
            continue;
        };
        let (read, written) = known_seq(instance, ack.enqueued_at, acks, opened, landed);
        if read.max(written) < last_seq {
            // The process had not read those records yet (another process wrote them): a
            // rejection decided on what it knew is all it could say.
            continue;
        }
        if run.digests.contains(&ack.digest) {
            if ack.outcome.seqs != run.seqs {
                found.push(format!(
                    "{what}{}: instance {instance} knew the command was recorded at {:?}{} but \
                     answered otherwise",
                    if ack.retried { ", a retry" } else { "" },
                    run.seqs,
                    if read < last_seq {
                        " (it appended them itself; the store's answer was an error and it \
                         answered from the state before that append)"
                    } else {
                        ""
                    }
                ));
            } else if let Some(first) = recorded.get(id) {
                if first.outcome != ack.outcome {
                    found.push(format!(
                        "{what}: the same command got two results: {} and {}",
                        shown(&first.outcome),
                        shown(&ack.outcome)
                    ));
                }
            }
        } else if ack.outcome.code() != Some(Code::IdempotencyConflict) {
            found.push(format!(
                "{what}: other content under a recorded command id must be an \
                 idempotency_conflict"
            ));
        }
    }
    // A rejection that recorded nothing is remembered by the process that gave it.
    for (index, first) in acks.iter().enumerate() {
        let Some(instance) = first.instance else {
            continue;
        };
        if !first.outcome.seqs.is_empty()
            || first.outcome.code() == Some(Code::IdempotencyConflict)
            || runs.contains_key(&first.command_id)
        {
            continue;
        }
        for later in &acks[index + 1..] {
            if later.instance == Some(instance)
                && later.command_id == first.command_id
                && later.enqueued_at > first.received_at
            {
                let same = later.digest == first.digest;
                let consistent = if same {
                    later.outcome == first.outcome
                } else {
                    later.outcome.code() == Some(Code::IdempotencyConflict)
                };
                if !consistent {
                    found.push(format!(
                        "command {}: instance {instance} answered {} and later {} ({} content)",
                        first.command_id,
                        shown(&first.outcome),
                        shown(&later.outcome),
                        if same { "the same" } else { "other" }
                    ));
                }
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// States

fn map_difference<K: Ord + Clone + Debug, V: PartialEq + Debug>(
    what: &str,
    left: impl IntoIterator<Item = (K, V)>,
    right: impl IntoIterator<Item = (K, V)>,
) -> Option<String> {
    let left: BTreeMap<K, V> = left.into_iter().collect();
    let right: BTreeMap<K, V> = right.into_iter().collect();
    let keys: BTreeSet<&K> = left.keys().chain(right.keys()).collect();
    for key in keys {
        let (a, b) = (left.get(key), right.get(key));
        if a != b {
            return Some(format!(
                "{what} differ at {key:?}: {} vs {}",
                shown(&a),
                shown(&b)
            ));
        }
    }
    None
}

/// Where two states differ (empty when they are the same state).
pub fn state_differences(left: &LedgerState, right: &LedgerState) -> Vec<String> {
    let mut found = Vec::new();
    if left.last_seq != right.last_seq || left.last_hash != right.last_hash {
        found.push(format!(
            "heads differ: seq {} ({}) vs seq {} ({})",
            left.last_seq, left.last_hash, right.last_seq, right.last_hash
        ));
    }
    let differences = [
        map_difference(
            "policies",
            left.policies.iter().map(|(k, v)| (*k, v.clone())),
            right.policies.iter().map(|(k, v)| (*k, v.clone())),
        ),
        map_difference(
            "budgets",
            left.budgets.iter().map(|(k, v)| (k.clone(), v.clone())),
            right.budgets.iter().map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "firms",
            left.firms.iter().map(|(k, v)| (k.clone(), v.clone())),
            right.firms.iter().map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "applications",
            left.applications
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
            right
                .applications
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "labs",
            left.labs.iter().map(|(k, v)| (k.clone(), v.clone())),
            right.labs.iter().map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "payouts",
            left.payouts.iter().map(|(k, v)| (k.clone(), v.clone())),
            right.payouts.iter().map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "clawbacks",
            left.clawbacks.iter().map(|(k, v)| (k.clone(), v.clone())),
            right.clawbacks.iter().map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "keyed claims",
            left.keyed_claims.iter().map(|(k, v)| (k.clone(), *v)),
            right.keyed_claims.iter().map(|(k, v)| (k.clone(), *v)),
        ),
        map_difference(
            "command index entries",
            left.commands.iter().map(|(k, v)| (k.clone(), v.clone())),
            right.commands.iter().map(|(k, v)| (k.clone(), v.clone())),
        ),
        map_difference(
            "review queues",
            left.queue.iter().map(|(k, v)| (*k, v.clone())),
            right.queue.iter().map(|(k, v)| (*k, v.clone())),
        ),
    ];
    found.extend(differences.into_iter().flatten());
    found
}

/// The log replays, and every state it passes through holds the limits
/// ([`limit_violations`]); the states published along the way equal the replay of the log up
/// to their seq (replay = incremental). One pass over the log.
pub fn replay_violations(records: &[Record], snapshots: &[(String, LedgerState)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut by_seq: BTreeMap<u64, Vec<&(String, LedgerState)>> = BTreeMap::new();
    for snapshot in snapshots {
        by_seq
            .entry(snapshot.1.last_seq)
            .or_default()
            .push(snapshot);
    }
    let compare = |replayed: &LedgerState, found: &mut Vec<String>, seq: u64| {
        for (name, snapshot) in by_seq.get(&seq).into_iter().flatten() {
            for difference in state_differences(replayed, snapshot) {
                found.push(format!(
                    "{name} at seq {seq} differs from the replayed log: {difference}"
                ));
            }
        }
    };
    let mut replayed = LedgerState::default();
    compare(&replayed, &mut found, 0);
    let mut limits_passed = false;
    for record in records {
        if let Err(error) = replayed.apply(record) {
            found.push(format!(
                "the log does not replay at seq {}: {error}",
                record.seq
            ));
            return found;
        }
        if !limits_passed {
            let passed = limit_violations(&replayed);
            limits_passed = !passed.is_empty();
            found.extend(
                passed
                    .into_iter()
                    .map(|violation| format!("after seq {}: {violation}", record.seq)),
            );
        }
        compare(&replayed, &mut found, record.seq);
    }
    if let Some((seq, _)) = by_seq.range(records.len() as u64 + 1..).next() {
        found.push(format!(
            "a published state is at seq {seq}, beyond the log's {}",
            records.len()
        ));
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Caps, envelopes, budgets

fn yuan(amount: i64) -> Decimal {
    Decimal::from(amount)
}

/// The projections' own invariants plus the limits recomputed from the applications
/// themselves, so that a projection that counted wrong cannot hide a passed limit:
/// the 1,000,000 yearly voucher cap per firm, each lab's 10,000,000 envelope (approved
/// tranches, and claims), per-key caps, once-only awards, and every budget's
/// remaining = allocated − committed − paid ≥ 0 with committed and paid recounted.
pub fn limit_violations(state: &LedgerState) -> Vec<String> {
    let mut found = invariants::violations(state);
    let mut vouchers: BTreeMap<(String, i32), (Decimal, Decimal)> = BTreeMap::new();
    let mut keyed: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    let mut lab_claimed: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut lab_approved: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut envelopes: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut committed: BTreeMap<(String, i32), Decimal> = BTreeMap::new();
    let mut paid: BTreeMap<(String, i32), Decimal> = BTreeMap::new();
    let mut held: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for app in state.applications.values() {
        let id = &app.application_id;
        let budget_key = (app.measure.clone(), app.fiscal_year);
        if app.status == ApplicationStatus::Approved {
            let approved = app.approved.unwrap_or_default();
            *committed.entry(budget_key.clone()).or_default() += approved - app.paid;
            if approved > app.requested {
                found.push(format!(
                    "{id}: approved {approved} over the {} requested",
                    app.requested
                ));
            }
            if app.paid > approved {
                found.push(format!(
                    "{id}: paid {} over the approved {approved}",
                    app.paid
                ));
            }
        }
        *paid.entry(budget_key).or_default() += app.paid - app.repaid;
        let live_payouts: Decimal = state
            .payouts
            .values()
            .filter(|payout| payout.application_id == *id && payout.status != PayoutStatus::Failed)
            .map(|payout| payout.amount)
            .sum();
        if live_payouts != app.paid {
            found.push(format!(
                "{id}: paid {} but its payouts that did not fail sum to {live_payouts}",
                app.paid
            ));
        }
        let Some(provision) = state
            .policy_at(app.policy_seq)
            .and_then(|catalogue| catalogue.provision(&app.provision))
        else {
            continue;
        };
        if let Some(cap) = provision.firm_annual_cap {
            let entry = vouchers
                .entry((app.firm.uscc.clone(), app.fiscal_year))
                .or_insert((Decimal::ZERO, cap));
            entry.0 += app.claimed();
        }
        if let (Some(field), Limit::Cap { amount }) = (&provision.cap_per, &provision.limit) {
            if let Some(key) = app.basis_text(field) {
                let entry = keyed
                    .entry((app.provision.clone(), key.to_string()))
                    .or_insert((Decimal::ZERO, *amount));
                entry.0 += app.claimed();
            }
        }
        if let Limit::Envelope {
            lab_field, total, ..
        } = &provision.limit
        {
            if let Some(lab) = app.basis_text(lab_field) {
                *lab_claimed.entry(lab.to_string()).or_default() += app.claimed();
                if app.status == ApplicationStatus::Approved {
                    *lab_approved.entry(lab.to_string()).or_default() +=
                        app.approved.unwrap_or_default();
                }
                envelopes.insert(lab.to_string(), *total);
            }
        }
        if provision.once && (app.status == ApplicationStatus::Approved || app.status.is_open()) {
            held.entry((app.firm.uscc.clone(), app.provision.clone()))
                .or_default()
                .push(id.clone());
        }
    }
    for ((uscc, year), (claimed, cap)) in &vouchers {
        if claimed > cap {
            found.push(format!(
                "firm {uscc} claims {claimed} in compute vouchers for {year}, over the {cap} cap"
            ));
        }
        if state.voucher_claimed(uscc, *year) != *claimed {
            found.push(format!(
                "firm {uscc} {year}: the projection counts {} in vouchers, the applications {claimed}",
                state.voucher_claimed(uscc, *year)
            ));
        }
    }
    for ((provision, key), (claimed, cap)) in &keyed {
        if claimed > cap {
            found.push(format!(
                "{provision} {key}: {claimed} claimed over the cap {cap}"
            ));
        }
    }
    for (lab, envelope) in &envelopes {
        let approved = lab_approved.get(lab).copied().unwrap_or_default();
        let claimed = lab_claimed.get(lab).copied().unwrap_or_default();
        if approved > *envelope || claimed > *envelope {
            found.push(format!(
                "lab {lab}: tranches approved {approved} and claimed {claimed}, over the envelope {envelope}"
            ));
        }
        if let Some(folded) = state.labs.get(lab) {
            if folded.approved != approved || folded.claimed != claimed {
                found.push(format!(
                    "lab {lab}: the projection counts approved {} claimed {}, the tranches {approved} and {claimed}",
                    folded.approved, folded.claimed
                ));
            }
        }
    }
    for lab in state.labs.values() {
        if lab.envelope > yuan(10_000_000) {
            found.push(format!(
                "lab {} has an envelope of {}",
                lab.lab, lab.envelope
            ));
        }
    }
    for ((uscc, provision), ids) in &held {
        if ids.len() > 1 {
            found.push(format!(
                "firm {uscc} holds the once-only {provision} {} times: {ids:?}",
                ids.len()
            ));
        }
    }
    for ((measure, year), budget) in &state.budgets {
        let key = (measure.clone(), *year);
        let want_committed = committed.get(&key).copied().unwrap_or_default();
        let want_paid = paid.get(&key).copied().unwrap_or_default();
        let remaining = budget.allocated - want_committed - want_paid;
        if remaining < Decimal::ZERO {
            found.push(format!(
                "budget {measure}/{year}: allocated {} but the applications commit \
                 {want_committed} and were paid {want_paid}",
                budget.allocated
            ));
        }
        if budget.committed != want_committed || budget.paid != want_paid {
            found.push(format!(
                "budget {measure}/{year}: the projection says committed {} paid {}, the \
                 applications {want_committed} and {want_paid}",
                budget.committed, budget.paid
            ));
        }
    }
    for (measure, year) in committed.keys().chain(paid.keys()) {
        let spent = committed
            .get(&(measure.clone(), *year))
            .copied()
            .unwrap_or_default()
            + paid
                .get(&(measure.clone(), *year))
                .copied()
                .unwrap_or_default();
        if spent > Decimal::ZERO && !state.budgets.contains_key(&(measure.clone(), *year)) {
            found.push(format!(
                "{measure}/{year}: {spent} committed or paid without any budget"
            ));
        }
    }
    found
}
