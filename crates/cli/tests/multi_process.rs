//! Several writers, one ledger (DESIGN §3, issue 6): two `fundledger serve` processes on one
//! PostgreSQL database both accept commands. Concurrent clients claim against one firm's
//! yearly compute-voucher cap and then approve against one measure's budget through both
//! processes at once; nothing is exceeded, both processes serve the same state afterwards, and
//! the log is one valid chain.
//!
//! This test FAILS, never skips, when PostgreSQL cannot be reached: start it with
//! `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`.
//! Waits are bounded by generous safety limits; none is a timing assertion.

mod common;
mod serving;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use serving::{request, Response, Server};

/// The fiscal year the test claims in: the demo scenario allocates no M2 budget for it.
const YEAR: i64 = 2027;
const VOUCHER_YUAN: i64 = 100_000;
const CAP_YUAN: i64 = 1_000_000;
/// The M2 budget allocated for [`YEAR`]: room for exactly ten approvals of [`VOUCHER_YUAN`].
const BUDGET_YUAN: i64 = 1_000_000;
/// Client threads per phase; they alternate between the two processes.
const CLIENTS: usize = 8;
/// Longest the processes may take to agree after the last write (a safety limit).
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

static NEXT_COMMAND: AtomicU64 = AtomicU64::new(1);

fn command_id() -> String {
    format!(
        "6f1c1b1e-6666-4666-8666-{:012}",
        NEXT_COMMAND.fetch_add(1, Ordering::Relaxed)
    )
}

/// One command posted to one process.
struct Post {
    server: usize,
    token: String,
    body: Value,
}

fn post(servers: &[&Server], post: &Post) -> Response {
    request(
        &servers[post.server].address,
        "POST",
        "/v1/commands",
        Some(&post.token),
        Some(("application/json", post.body.to_string().as_bytes())),
    )
}

/// Posts every command from [`CLIENTS`] threads at once; the answers in the order given.
fn post_concurrently(servers: &[&Server], posts: &[Post]) -> Vec<Response> {
    let mut answers: Vec<Option<Response>> = (0..posts.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunks: Vec<_> = answers.chunks_mut(posts.len().div_ceil(CLIENTS)).collect();
        for (client, slots) in chunks.into_iter().enumerate() {
            let first = client * posts.len().div_ceil(CLIENTS);
            scope.spawn(move || {
                for (offset, slot) in slots.iter_mut().enumerate() {
                    *slot = Some(post(servers, &posts[first + offset]));
                }
            });
        }
    });
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| panic!("a client thread gave no answer")))
        .collect()
}

/// The token of the demo principal `id` on `server` (each process mints its own).
fn token_of(server: &Server, id: &str) -> String {
    server
        .tokens
        .iter()
        .find(|token| token.id == id)
        .unwrap_or_else(|| panic!("no demo token for {id}: {:?}", server.tokens))
        .token
        .clone()
}

fn voucher(application_id: &str, uscc: &str) -> Value {
    json!({
        "command_id": command_id(),
        "type": "submit_application",
        "application_id": application_id,
        "firm": {"uscc": uscc, "name": "多进程测试企业"},
        "provision": "M2.compute_voucher",
        "fiscal_year": YEAR,
        "amount": format!("{VOUCHER_YUAN}.00"),
        "basis": {
            "contract_amount": format!("{}.00", VOUCHER_YUAN * 5),
            "contract_id": format!("HT-{application_id}"),
            "self_built": false,
            "provincial_voucher": false,
        },
    })
}

fn code(answer: &Response) -> Value {
    answer.json()["code"].clone()
}

fn m2_budget(server: &Server, token: &str) -> Value {
    let budgets = server.get_json("/v1/budgets", token);
    budgets
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|row| row["measure"] == "M2" && row["fiscal_year"] == YEAR)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn two_server_processes_on_one_postgres_ledger_never_pass_a_cap() {
    let runtime = runtime();
    let db = runtime
        .block_on(fundledger_store::testing::scratch_postgres())
        .unwrap_or_else(|error| {
            panic!("PostgreSQL is needed for this test and cannot be used: {error}")
        });
    let url = db.url().to_string();
    let (dir_a, dir_b) = (tempdir(), tempdir());
    // A writes the demo into the empty database; B then serves the same ledger.
    let a = Server::start_demo(dir_a.path(), &url);
    let b = Server::start_demo(dir_b.path(), &url);
    let servers = [&a, &b];
    let finance = token_of(&a, "fin.wang");
    let applicant = a.token("applicant").clone();
    let firm = applicant.scope.clone();
    let other_applicant = a
        .tokens
        .iter()
        .find(|token| token.role == "applicant" && token.scope != firm)
        .unwrap_or_else(|| panic!("two demo firms: {:?}", a.tokens))
        .clone();

    let allocated = post(
        &servers,
        &Post {
            server: 0,
            token: finance.clone(),
            body: json!({"command_id": command_id(), "type": "allocate_budget",
                         "measure": "M2", "fiscal_year": YEAR,
                         "amount": format!("{BUDGET_YUAN}.00")}),
        },
    );
    assert_eq!(allocated.status, 200, "{}", allocated.text());

    // Phase 1: sixteen vouchers of 100,000 for one firm, through both processes at once,
    // against its yearly cap of 1,000,000: exactly ten get in.
    let claimed_before = a.get_json(&format!("/v1/firms/{firm}"), &finance)["voucher_claimed"]
        [YEAR.to_string()]
    .as_str()
    .map(|text| text.trim_end_matches(".00").parse::<i64>().unwrap_or(-1))
    .unwrap_or(0);
    assert_eq!(claimed_before, 0, "the demo claims nothing in {YEAR}");
    let claims: Vec<Post> = (0..16)
        .map(|n| Post {
            server: n % 2,
            token: token_of(servers[n % 2], &applicant.id),
            body: voucher(&format!("MP-{firm}-{n}"), &firm),
        })
        .collect();
    let answers = post_concurrently(&servers, &claims);
    let admitted: Vec<usize> = (0..claims.len())
        .filter(|&n| answers[n].status == 200)
        .collect();
    for (n, answer) in answers.iter().enumerate() {
        if answer.status != 200 {
            assert_eq!(answer.status, 422, "claim {n}: {}", answer.text());
            assert_eq!(code(answer), "exceeds_firm_annual_cap", "claim {n}");
        }
    }
    assert_eq!(
        admitted.len() as i64,
        CAP_YUAN / VOUCHER_YUAN,
        "the cap admits exactly ten: {:?}",
        answers.iter().map(Response::text).collect::<Vec<_>>()
    );
    for server in 0..2 {
        assert!(
            admitted.iter().any(|&n| claims[n].server == server),
            "process {server} accepted none of the claims"
        );
    }

    // Ten more from a second firm, so twenty applications compete for room for ten.
    let more: Vec<Post> = (0..10)
        .map(|n| Post {
            server: n % 2,
            token: token_of(servers[n % 2], &other_applicant.id),
            body: voucher(
                &format!("MP-{}-{n}", other_applicant.scope),
                &other_applicant.scope,
            ),
        })
        .collect();
    for (n, answer) in post_concurrently(&servers, &more).iter().enumerate() {
        assert_eq!(
            answer.status,
            200,
            "second firm, claim {n}: {}",
            answer.text()
        );
    }
    let mut open: Vec<String> = admitted
        .iter()
        .map(|&n| {
            claims[n].body["application_id"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    open.extend(
        more.iter()
            .map(|p| p.body["application_id"].as_str().unwrap_or("").to_string()),
    );

    // Phase 2: one reviewer recommends all twenty (through both processes), then two
    // approvers approve all twenty at once, one through each process: the budget holds ten.
    let reviews: Vec<Post> = open
        .iter()
        .enumerate()
        .map(|(n, id)| Post {
            server: n % 2,
            token: token_of(servers[n % 2], "rev.gxj.zhang"),
            body: json!({"command_id": command_id(), "type": "review_application",
                         "application_id": id, "recommend": true, "note": "合同真实"}),
        })
        .collect();
    for (n, answer) in post_concurrently(&servers, &reviews).iter().enumerate() {
        assert_eq!(answer.status, 200, "review {n}: {}", answer.text());
    }
    let approvals: Vec<Post> = open
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let (server, approver) = if n % 2 == 0 {
                (0, "appr.gxj.zhou")
            } else {
                (1, "appr.gxj.feng")
            };
            Post {
                server,
                token: token_of(servers[server], approver),
                body: json!({"command_id": command_id(), "type": "approve_application",
                             "application_id": id, "amount": format!("{VOUCHER_YUAN}.00")}),
            }
        })
        .collect();
    let answers = post_concurrently(&servers, &approvals);
    let approved = answers.iter().filter(|answer| answer.status == 200).count();
    for (n, answer) in answers.iter().enumerate() {
        if answer.status != 200 {
            assert_eq!(answer.status, 422, "approval {n}: {}", answer.text());
            assert_eq!(code(answer), "insufficient_budget", "approval {n}");
        }
    }
    assert_eq!(
        approved as i64,
        BUDGET_YUAN / VOUCHER_YUAN,
        "the budget holds ten"
    );

    // Both processes converge on the same state, and it is within every limit.
    let finance_b = token_of(&b, "fin.wang");
    let deadline = Instant::now() + CONVERGE_LIMIT;
    loop {
        let (summary_a, summary_b) = (
            a.get_json("/v1/summary", &finance),
            b.get_json("/v1/summary", &finance_b),
        );
        if summary_a["head_seq"] == summary_b["head_seq"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the processes did not converge: {summary_a} vs {summary_b}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let budget = m2_budget(&a, &finance);
    assert_eq!(
        budget,
        m2_budget(&b, &finance_b),
        "both serve the same budget"
    );
    assert_eq!(budget["committed"], format!("{BUDGET_YUAN}.00"), "{budget}");
    assert_eq!(budget["remaining"], "0.00", "{budget}");
    for path in ["/v1/applications", "/v1/payments", "/v1/queue"] {
        assert_eq!(
            a.get_json(path, &finance),
            b.get_json(path, &finance_b),
            "{path} differs between the processes"
        );
    }
    let firm_row = b.get_json(&format!("/v1/firms/{firm}"), &finance_b);
    assert_eq!(
        firm_row["voucher_claimed"][YEAR.to_string()],
        format!("{CAP_YUAN}.00"),
        "{firm_row}"
    );

    // One valid chain, whoever wrote each record.
    drop((a, b));
    let verified = fundledger(dir_a.path(), &["verify", "--store", &url]).ok();
    assert!(verified.field("records").is_some());
    runtime
        .block_on(db.cleanup())
        .expect("the scratch database is dropped");
}
