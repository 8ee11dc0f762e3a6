//! `fundledger serve --demo` as a real process on loopback (DESIGN §9): tokens printed for the
//! demo cast, 401 without one, reads with the row shapes of `query`, applicants scoped to their
//! firm, a command whose forged actor is replaced by the token's, metrics and OpenAPI, and a
//! SIGTERM that exits 0 and leaves a ledger that verifies with the command in it.

mod common;
mod serving;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};
use serving::Server;

fn store_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("s.db").display())
}

#[test]
fn the_demo_service_authenticates_reads_and_scopes_applicants() {
    let dir = tempdir();
    let d = dir.path();
    let url = store_url(d);
    let server = Server::start_demo(d, &url);
    assert!(
        server.stdout().contains("DEMO ONLY"),
        "the tokens are marked demo-only:\n{}",
        server.stdout()
    );
    let roles: BTreeSet<&str> = server.tokens.iter().map(|t| t.role.as_str()).collect();
    for role in [
        "admin",
        "applicant",
        "approver",
        "auditor",
        "finance",
        "government",
        "reviewer",
    ] {
        assert!(roles.contains(role), "no demo token for {role}: {roles:?}");
    }
    let finance = server.token("finance").token.clone();
    assert_eq!(
        server.dashboard_url,
        format!("http://{}/#token={finance}", server.address),
        "the dashboard line points at the bound address"
    );

    // Open endpoints.
    let health = server.get("/healthz", None);
    assert_eq!(health.status, 200, "{}", health.text());
    let page = server.get("/", None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("id=\"budget-table\""));
    let metrics = server.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("fundledger_commands_total"),
        "{}",
        metrics.text()
    );
    let openapi = server.get("/openapi.json", None);
    assert_eq!(openapi.status, 200);
    let openapi = openapi.json();
    assert!(
        openapi["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3')),
        "{openapi}"
    );
    for path in [
        "/v1/commands",
        "/v1/budgets",
        "/v1/firms/{uscc}",
        "/healthz",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }

    // No token or an unknown one: 401 with a JSON body.
    for token in [None, Some("not-a-demo-token")] {
        let denied = server.get("/v1/budgets", token);
        assert_eq!(denied.status, 401, "{token:?}: {}", denied.text());
        assert_eq!(denied.json()["code"], "unauthorized");
    }

    // The finance bureau reads the demo's budgets: the rows `fundledger query` prints.
    let budgets = server.get_json("/v1/budgets", &finance);
    let rows = budgets
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {budgets}"));
    let measures: BTreeSet<&str> = rows.iter().filter_map(|b| b["measure"].as_str()).collect();
    assert_eq!(measures.len(), 8, "{measures:?}");
    let queried: Value = serde_json::from_str(
        &fundledger(d, &["query", "--store", &url, "budgets"])
            .ok()
            .stdout,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(budgets, queried);
    let me = server.get_json("/v1/me", &finance);
    assert_eq!(me["id"], server.token("finance").id);
    assert_eq!(me["role"], "finance");

    // An applicant sees its own firm only.
    let applicants: Vec<_> = server
        .tokens
        .iter()
        .filter(|t| t.role == "applicant")
        .collect();
    assert!(applicants.len() >= 2, "{applicants:?}");
    let (own, other) = (applicants[0], applicants[1]);
    let firms = server.get_json("/v1/firms", &own.token);
    let usccs: Vec<&str> = firms
        .as_array()
        .map(|rows| rows.iter().filter_map(|f| f["uscc"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(usccs, [own.scope.as_str()], "{firms}");
    let firm = server.get_json(&format!("/v1/firms/{}", own.scope), &own.token);
    assert_eq!(firm["uscc"], own.scope);
    let foreign = server.get(&format!("/v1/firms/{}", other.scope), Some(&own.token));
    assert_eq!(foreign.status, 403, "{}", foreign.text());
    let applications = server.get_json("/v1/applications", &own.token);
    let applications = applications.as_array().cloned().unwrap_or_default();
    assert!(!applications.is_empty(), "the demo firm has applications");
    assert!(
        applications.iter().all(|a| a["firm"] == own.scope),
        "{applications:?}"
    );
    let payments = server.get_json("/v1/payments", &own.token);
    assert!(
        payments
            .as_array()
            .is_some_and(|rows| rows.iter().all(|p| p["firm"] == own.scope)),
        "{payments}"
    );
    let all_firms = server.get_json("/v1/firms", &finance);
    assert!(all_firms.as_array().map_or(0, Vec::len) >= 40);
    assert_eq!(
        server.get("/v1/budgets", Some(&own.token)).status,
        403,
        "budgets are not an applicant's to read"
    );
}

#[test]
fn a_posted_command_is_the_token_holders_and_survives_sigterm() {
    let dir = tempdir();
    let d = dir.path();
    let url = store_url(d);
    let mut server = Server::start_demo(d, &url);
    let finance = server.token("finance").clone();
    let head = server.get_json("/v1/summary", &finance.token)["head_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no head_seq"));

    // The body names the admin as its actor; the service writes it as the token's principal.
    let command_id = "6f1c1b1e-2222-4222-8222-000000000001";
    let command = json!({
        "command_id": command_id,
        "actor": {"id": "admin.ops", "role": "admin", "unit": "市大数据局"},
        "type": "allocate_budget",
        "measure": "M2",
        "fiscal_year": 2030,
        "amount": "1234567.89",
    });
    let posted = server.post_json("/v1/commands", Some(&finance.token), &command);
    assert_eq!(posted.status, 200, "{}", posted.text());
    let outcome = posted.json();
    assert_eq!(outcome["outcome"], "accepted", "{outcome}");
    assert_eq!(outcome["command_id"], command_id);
    assert_eq!(outcome["seqs"], json!([head + 1]));
    // The same command again: the same outcome, nothing written.
    let repeated = server.post_json("/v1/commands", Some(&finance.token), &command);
    assert_eq!(repeated.status, 200, "{}", repeated.text());
    assert_eq!(repeated.json(), outcome);
    // Without a token nothing is written.
    let anonymous = server.post_json("/v1/commands", None, &command);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());

    let events = server.get_json(&format!("/v1/events?after={head}&limit=10"), &finance.token);
    let events = events.as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{events:?}");
    let body = &events[0]["body"];
    assert_eq!(body["command_id"], command_id);
    assert_eq!(body["actor"]["id"], finance.id, "{body}");
    assert_eq!(body["actor"]["role"], "finance", "{body}");
    let budgets = server.get_json("/v1/budgets", &finance.token);
    assert!(
        budgets
            .as_array()
            .is_some_and(|rows| rows.iter().any(|b| b["fiscal_year"] == 2030
                && b["measure"] == "M2"
                && b["allocated"] == "1234567.89")),
        "{budgets}"
    );
    let metrics = server.get("/metrics", None).text();
    assert!(
        metrics.lines().any(|line| line
            .starts_with(r#"fundledger_commands_total{type="allocate_budget",code="accepted"}"#)),
        "{metrics}"
    );

    let status = server.terminate();
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM\nstderr:\n{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("fundledger: stopped"),
        "{}",
        server.stderr()
    );
    assert!(
        !server.stderr().contains(&finance.token),
        "a token reached the log"
    );
    assert!(
        server.stderr().contains("named another actor") && !server.stderr().contains('\x1b'),
        "the log (not a terminal) is plain text with the forged-actor warning:\n{}",
        server.stderr()
    );

    // The ledger verifies, one record longer, and the record is the finance officer's.
    let verified = fundledger(d, &["verify", "--store", &url]).ok();
    assert_eq!(verified.field("records"), Some((head + 1).to_string()));
    let export = fundledger(d, &["export", "--store", &url]).ok().stdout;
    let record: Value = export
        .lines()
        .filter(|line| line.contains(command_id))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}")))
        .next()
        .unwrap_or_else(|| panic!("the command is not in the export"));
    assert_eq!(record["seq"], head + 1);
    assert_eq!(record["body"]["actor"]["id"], finance.id);
    assert_eq!(
        export
            .lines()
            .filter(|line| line.contains(command_id))
            .count(),
        1
    );
}

/// A process killed while writing the demo leaves part of it; `serve --demo` on that store
/// writes the rest (each demo command is idempotent by its `command_id`), and the result is
/// byte for byte the ledger `fundledger demo` writes in one go.
#[test]
fn serve_demo_resumes_an_interrupted_demo() {
    let dir = tempdir();
    let d = dir.path();
    let partial = format!("sqlite://{}", d.join("partial.db").display());
    let whole = format!("sqlite://{}", d.join("whole.db").display());
    let runtime = runtime();
    let written_before = runtime.block_on(async {
        let store: std::sync::Arc<dyn fundledger_store::EventStore> = std::sync::Arc::from(
            fundledger_store::open(&partial, "fundledger.example/zhengzhou-2024-62")
                .await
                .unwrap_or_else(|error| panic!("{error}")),
        );
        // The clock `serve --demo` and `demo` use for the catalogue record.
        let genesis = chrono::DateTime::parse_from_rfc3339("2024-05-22T09:00:00+08:00")
            .unwrap_or_else(|error| panic!("{error}"));
        let options = fundledger_ledger::WriterOptions {
            clock: std::sync::Arc::new(move || genesis),
            ..Default::default()
        };
        let ledger = fundledger_ledger::Ledger::open(store, options)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let steps = fundledger_demo::scenario(fundledger_demo::DEFAULT_SEED);
        let run = fundledger_demo::run(&ledger, &steps[..steps.len() / 3])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(run.drifted.is_empty(), "{:?}", run.drifted);
        let written = ledger.snapshot().last_seq;
        ledger.close().await;
        written
    });
    assert!(written_before > 10, "a third of the demo is on file");

    let mut server = Server::start_demo(d, &partial);
    assert!(
        server.stderr().contains(&format!(
            "demo: resumed an interrupted demo: the store held {written_before} records"
        )),
        "{}",
        server.stderr()
    );
    server.terminate();
    fundledger(d, &["demo", "--store", &whole]).ok();
    let resumed = fundledger(d, &["export", "--store", &partial]).ok().stdout;
    let in_one_go = fundledger(d, &["export", "--store", &whole]).ok().stdout;
    assert!(resumed.lines().count() > written_before as usize + 1);
    assert!(
        resumed == in_one_go,
        "the resumed demo differs from the demo written in one go"
    );

    // A complete demo is served as it is: nothing more is written.
    let mut again = Server::start_demo(d, &partial);
    assert!(
        again.stderr().contains("demo: the store already holds"),
        "{}",
        again.stderr()
    );
    again.terminate();
}
