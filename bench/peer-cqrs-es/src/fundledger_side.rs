//! The workload on fundledger: `Ledger` (the single writer, group commit) on `PostgresStore` in
//! a scratch database. Each client parses its JSON commands with `Command::parse` and
//! submits them through `Ledger::enqueue`, one in flight per client, so the writer batches
//! whatever the clients have sent meanwhile.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use fundledger_ledger::{Command, Ledger, Outcome, WriterOptions};
use fundledger_store::testing::scratch_postgres;
use fundledger_store::{EventStore, PostgresStore};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::workload::{self, Plan, SideReport, FISCAL_YEAR, MEASURE, VOUCHER_YUAN};

async fn execute(ledger: &Ledger, value: &Value) -> anyhow::Result<Outcome> {
    let command = Command::parse(value)
        .map_err(|rejection| anyhow::anyhow!("unparsable command {value}: {rejection:?}"))?;
    let pending = ledger.enqueue(command).await?;
    Ok(pending.outcome().await?)
}

pub async fn run(plan: &Plan) -> anyhow::Result<SideReport> {
    let db = scratch_postgres().await?;
    let outcome = run_in(plan, db.url()).await;
    db.cleanup().await?;
    outcome
}

async fn run_in(plan: &Plan, url: &str) -> anyhow::Result<SideReport> {
    let store: Arc<dyn EventStore> = Arc::new(PostgresStore::open(url, "peer-bench").await?);
    // The default writer: batches of up to 512, a queue of 8,192 (more than any client count
    // this bench is run with: every client has one command in flight).
    let ledger = Ledger::open(store, WriterOptions::default()).await?;

    let allocated = execute(&ledger, &workload::allocate(plan.budget_yuan())).await?;
    if !allocated.is_accepted() {
        bail!("fundledger refused the budget: {}", allocated.message);
    }

    let started = Instant::now();
    let mut clients = Vec::with_capacity(plan.clients);
    for client in 0..plan.clients {
        let ledger = ledger.clone();
        let vouchers = plan.vouchers_of_client(client);
        clients.push(tokio::spawn(async move {
            let mut accepted = 0usize;
            let mut first_refusal: Option<String> = None;
            for voucher in &vouchers {
                for value in workload::voucher_commands(voucher) {
                    let outcome = execute(&ledger, &value).await?;
                    if outcome.is_accepted() {
                        accepted += 1;
                    } else if first_refusal.is_none() {
                        first_refusal = Some(format!("{value}: {}", outcome.message));
                    }
                }
            }
            anyhow::Ok((accepted, first_refusal))
        }));
    }
    let mut accepted = 0usize;
    let mut first_refusal = None;
    for client in clients {
        let (client_accepted, refusal) = client.await.context("a client task failed")??;
        accepted += client_accepted;
        first_refusal = first_refusal.or(refusal);
    }
    let elapsed_s = started.elapsed().as_secs_f64();

    let metrics = ledger.metrics();
    let batches = metrics.batches_total.load(Ordering::Relaxed).max(1);
    let batch_commands = metrics.batch_commands_sum.load(Ordering::Relaxed);
    let conflicts = metrics.conflicts_total.load(Ordering::Relaxed);
    let append_ms = metrics.append_micros_sum.load(Ordering::Relaxed) as f64 / 1000.0;
    let mut detail = format!(
        "{batches} appends (group commits), {:.1} commands per append, {:.2} ms per append \
         ({:.0}% of the run in appends), {conflicts} append conflicts",
        batch_commands as f64 / batches as f64,
        append_ms / batches as f64,
        100.0 * append_ms / 1000.0 / elapsed_s.max(f64::MIN_POSITIVE),
    );
    if let Some(refusal) = first_refusal {
        detail.push_str(&format!("; first refusal: {refusal}"));
    }

    let (caps_held, caps_detail) = check_caps(plan, &ledger).await?;
    ledger.close().await;
    Ok(SideReport {
        commands: plan.timed_commands(),
        accepted,
        elapsed_s,
        detail,
        caps_held,
        caps_detail,
    })
}

/// After the timed phase: the budget is spent exactly, every firm is at its cap, and one more
/// voucher of firm 0 and one more approval (for a new firm) are refused for those caps.
async fn check_caps(plan: &Plan, ledger: &Ledger) -> anyhow::Result<(bool, String)> {
    let state = ledger.snapshot();
    let budget = state.budget(MEASURE, FISCAL_YEAR);
    let firm0 = workload::firm_uscc(0);
    let firm0_claimed = state.voucher_claimed(&firm0, FISCAL_YEAR);
    let firm0_expected = Decimal::from(VOUCHER_YUAN)
        * Decimal::from(plan.vouchers.min(workload::VOUCHERS_PER_FIRM) as u64);

    let over_firm = execute(ledger, &workload::submit("V-extra-cap", &firm0, 200_000)).await?;
    let newcomer = workload::firm_uscc(plan.firms);
    let submitted = execute(
        ledger,
        &workload::submit("V-extra-budget", &newcomer, 1_000),
    )
    .await?;
    let reviewed = execute(ledger, &workload::review("V-extra-budget")).await?;
    let over_budget = execute(ledger, &workload::approve("V-extra-budget", 1_000)).await?;

    let held = budget.committed == plan.budget_yuan()
        && budget.remaining() == Decimal::ZERO
        && firm0_claimed == firm0_expected
        && over_firm.code.as_deref() == Some("exceeds_firm_annual_cap")
        && submitted.is_accepted()
        && reviewed.is_accepted()
        && over_budget.code.as_deref() == Some("insufficient_budget");
    let detail = format!(
        "budget committed {} of {}, firm 0 claimed {firm0_claimed}; one more voucher: {}; \
         approval past the budget: {}",
        budget.committed,
        budget.allocated,
        over_firm.code.as_deref().unwrap_or("accepted"),
        over_budget.code.as_deref().unwrap_or("accepted"),
    );
    Ok((held, detail))
}
