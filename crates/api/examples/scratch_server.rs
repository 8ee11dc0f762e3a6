//! A throwaway server for trying the HTTP service and its dashboard without the CLI: a SQLite
//! ledger in a temporary directory, a small seeded world (budgets, compute vouchers, a key
//! lab and its programme, payouts), and random demo tokens printed at start.
//!
//! ```text
//! cargo run -p fundledger-api --example scratch_server -- 127.0.0.1:8089
//! ```
//!
//! Demo only: the tokens are printed and the ledger is deleted on exit (Ctrl-C).

use std::sync::Arc;

use fundledger_api::{demo_principals, serve, AppState};
use fundledger_ledger::{uscc, Command, Ledger, WriterOptions};
use fundledger_store::{EventStore, SqliteStore};
use serde_json::{json, Value};

const CAST: [(&str, &str, Option<&str>, Option<&str>); 6] = [
    ("fin.wang", "finance", Some("市财政局"), None),
    ("fin.zhao", "finance", Some("市财政局"), None),
    ("rev.gxj", "reviewer", Some("市工信局"), None),
    ("appr.gxj", "approver", Some("市工信局"), None),
    ("audit.qian", "auditor", Some("市审计局"), None),
    ("admin.ops", "admin", None, None),
];

fn firm(n: u32) -> String {
    uscc::complete(&format!("91410100MA47{n:05}")).unwrap_or_default()
}

struct Seeder {
    ledger: Ledger,
    next_id: u64,
}

impl Seeder {
    async fn run(&mut self, actor: Value, kind: &str, mut fields: Value) {
        self.next_id += 1;
        fields["command_id"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.next_id));
        fields["type"] = json!(kind);
        fields["actor"] = actor;
        let command = match Command::parse(&fields) {
            Ok(command) => command,
            Err(rejection) => {
                eprintln!("seed command refused: {rejection:?}");
                return;
            }
        };
        match self.ledger.execute(command).await {
            Ok(outcome) if outcome.is_accepted() => {}
            Ok(outcome) => eprintln!("seed {kind}: {} {}", outcome.outcome, outcome.message),
            Err(error) => eprintln!("seed {kind}: {error}"),
        }
    }
}

fn staff(id: &str, role: &str, unit: &str) -> Value {
    json!({"id": id, "role": role, "unit": unit})
}

fn applicant(uscc: &str) -> Value {
    json!({"id": format!("app.{}", &uscc[12..17]), "role": "applicant", "firm": uscc})
}

async fn seed(ledger: Ledger) {
    let fin_wang = staff("fin.wang", "finance", "市财政局");
    let fin_zhao = staff("fin.zhao", "finance", "市财政局");
    let reviewer = staff("rev.gxj", "reviewer", "市工信局");
    let approver = staff("appr.gxj", "approver", "市工信局");
    let mut s = Seeder { ledger, next_id: 0 };
    for (measure, amount) in [("M2", "20000000"), ("M6", "30000000"), ("M8", "10000000")] {
        s.run(
            fin_wang.clone(),
            "allocate_budget",
            json!({"measure": measure, "fiscal_year": 2024, "amount": amount}),
        )
        .await;
    }
    let names = [
        "中原算力科技",
        "郑州智图",
        "黄河大模型",
        "嵩山视觉",
        "绿城数智",
        "商都机器人",
    ];
    let vouchers = [
        ("900000", "5000000"),
        ("750000", "4000000"),
        ("500000", "2500000"),
        ("320000", "1600000"),
        ("200000", "1000000"),
        ("120000", "600000"),
    ];
    for (i, ((amount, contract), name)) in vouchers.iter().zip(names).enumerate() {
        let uscc = firm(i as u32 + 1);
        let id = format!("V-{}", i + 1);
        s.run(
            applicant(&uscc),
            "submit_application",
            json!({"application_id": id, "firm": {"uscc": uscc, "name": name},
                   "provision": "M2.compute_voucher", "fiscal_year": 2024, "amount": amount,
                   "basis": {"contract_amount": contract, "contract_id": format!("HT-{id}")}}),
        )
        .await;
        if i < 4 {
            s.run(
                reviewer.clone(),
                "review_application",
                json!({"application_id": id, "recommend": true, "note": "材料齐全"}),
            )
            .await;
            s.run(
                approver.clone(),
                "approve_application",
                json!({"application_id": id, "amount": amount}),
            )
            .await;
            s.run(
                fin_wang.clone(),
                "order_payout",
                json!({"payout_id": format!("P-{id}"), "application_id": id, "amount": amount}),
            )
            .await;
            if i < 3 {
                s.run(fin_zhao.clone(), "confirm_payout", json!({"payout_id": format!("P-{id}"), "bank_reference": format!("ICBC-{id}"), "value_date": "2024-06-01"})).await;
            }
        }
    }
    let lab_firm = firm(20);
    s.run(
        applicant(&lab_firm),
        "submit_application",
        json!({"application_id": "L-1", "firm": {"uscc": lab_firm, "name": "郑州人工智能全国重点实验室"},
               "provision": "M6.key_lab_lead", "fiscal_year": 2024,
               "basis": {"recognition_date": "2024-03-01"}}),
    )
    .await;
    s.run(
        reviewer.clone(),
        "review_application",
        json!({"application_id": "L-1", "recommend": true, "note": "认定文件齐全"}),
    )
    .await;
    s.run(
        approver.clone(),
        "approve_application",
        json!({"application_id": "L-1", "amount": "5000000"}),
    )
    .await;
    s.run(
        fin_wang.clone(),
        "order_payout",
        json!({"payout_id": "P-L-1", "application_id": "L-1", "amount": "5000000"}),
    )
    .await;
    s.run(
        applicant(&lab_firm),
        "submit_application",
        json!({"application_id": "L-1-T1", "firm": {"uscc": lab_firm, "name": "郑州人工智能全国重点实验室"},
               "provision": "M6.key_lab_programme", "fiscal_year": 2024, "amount": "2000000",
               "basis": {"lab": "L-1", "rd_spend": "8000000"}}),
    )
    .await;
    s.run(
        reviewer.clone(),
        "review_application",
        json!({"application_id": "L-1-T1", "recommend": true, "note": "研发投入已审计"}),
    )
    .await;
    s.run(
        approver.clone(),
        "approve_application",
        json!({"application_id": "L-1-T1", "amount": "2000000"}),
    )
    .await;
    s.run(
        fin_wang,
        "order_payout",
        json!({"payout_id": "P-L-1-T1", "application_id": "L-1-T1", "amount": "1000000"}),
    )
    .await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8089".to_string());
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteStore::open(dir.path().join("ledger.db"), "scratch.fundledger").await?);
    let options = WriterOptions {
        clock: Arc::new(|| {
            chrono::DateTime::parse_from_rfc3339("2024-06-01T10:00:00+08:00").unwrap_or_default()
        }),
        ..Default::default()
    };
    let ledger = Ledger::open(store.clone(), options).await?;
    seed(ledger.clone()).await;

    let applicant_firm = firm(1);
    let mut cast: Vec<(&str, &str, Option<&str>, Option<&str>)> = CAST.to_vec();
    cast.push(("app.zhongyuan", "applicant", None, Some(&applicant_firm)));
    let (principals, tokens) = demo_principals(&cast)?;
    let state = AppState::new(ledger.clone(), store, principals)?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("DEMO ONLY — throwaway tokens for this process:");
    for (principal, token) in &tokens {
        println!(
            "  {:<14} {:<10} http://{listen}/#token={token}",
            principal.id,
            principal.role.as_str()
        );
    }
    serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    ledger.close().await;
    Ok(())
}
