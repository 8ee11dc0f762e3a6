//! `POST /v1/commands`: statuses and codes of DESIGN §7, the actor taken from the token, and
//! bad input of every kind.

mod support;

use axum::http::{header, StatusCode};
use serde_json::{json, Value};
use support::*;

/// The §7 outcome shape, with `code`.
fn assert_outcome(reply: &Reply, status: u16, code: &str) -> Value {
    let body = reply.json();
    assert_eq!(reply.status.as_u16(), status, "{body}");
    assert_eq!(body["outcome"], "rejected", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["seqs"].is_array(), "{body}");
    assert!(
        body.as_object()
            .is_some_and(|o| o.contains_key("command_id")),
        "{body}"
    );
    body
}

#[tokio::test]
async fn an_accepted_command_is_200_with_its_seqs() {
    let h = harness().await;
    let command = allocate("M2", 2024, "1000000");
    let reply = post(&h.app, FIN_WANG, &command).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["outcome"], "accepted");
    assert_eq!(body["code"], Value::Null);
    assert_eq!(body["command_id"], command["command_id"]);
    assert_eq!(body["seqs"], json!([2]));
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = harness().await;
    for body in [
        &b"{not json"[..],
        b"",
        b"[1,2]",
        b"\"text\"",
        b"{\"command_id\": 1}",
    ] {
        let reply = post_raw(
            &h.app,
            Some(FIN_WANG),
            Some("application/json"),
            body.to_vec(),
        )
        .await;
        let outcome = assert_outcome(&reply, 400, "malformed");
        assert_eq!(outcome["command_id"], Value::Null);
    }
    // Deeply nested input is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let reply = post_raw(
        &h.app,
        Some(FIN_WANG),
        Some("application/json"),
        deep.into_bytes(),
    )
    .await;
    assert_outcome(&reply, 400, "malformed");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let h = harness().await;
    let body = serde_json::to_vec(&allocate("M2", 2024, "1000000")).unwrap();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let reply = post_raw(&h.app, Some(FIN_WANG), content_type, body.clone()).await;
        assert_outcome(&reply, 415, "malformed");
    }
    let reply = post_raw(
        &h.app,
        Some(FIN_WANG),
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_huge_body_is_413() {
    let h = harness().await;
    let mut command = allocate("M2", 2024, "1000000");
    command["pad"] = json!("x".repeat(1024 * 1024 + 1));
    let reply = post(&h.app, FIN_WANG, &command).await;
    assert_outcome(&reply, 413, "malformed");
    // Nothing was recorded.
    assert_eq!(h.ledger.snapshot().last_seq, 1);
}

#[tokio::test]
async fn an_unknown_field_is_400_malformed() {
    let h = harness().await;
    let mut command = allocate("M2", 2024, "1000000");
    command["colour"] = json!("red");
    let reply = post(&h.app, FIN_WANG, &command).await;
    let body = assert_outcome(&reply, 400, "malformed");
    assert_eq!(body["command_id"], command["command_id"]);
    let mut command = allocate("M2", 2024, "1000000");
    command["type"] = json!("launch_rocket");
    assert_outcome(&post(&h.app, FIN_WANG, &command).await, 400, "malformed");
}

#[tokio::test]
async fn no_token_or_an_unknown_token_is_401() {
    let h = harness().await;
    let body = serde_json::to_vec(&allocate("M2", 2024, "1000000")).unwrap();
    for token in [
        None,
        Some("not-a-token"),
        Some(""),
        Some(&token_hash_of(FIN_WANG)[..]),
    ] {
        let reply = post_raw(&h.app, token, Some("application/json"), body.clone()).await;
        let outcome = assert_outcome(&reply, 401, "unauthorized");
        assert_eq!(outcome["command_id"], Value::Null);
        assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    // Another scheme is no bearer token.
    let reply = send(
        &h.app,
        axum::http::Request::post("/v1/commands")
            .header(header::AUTHORIZATION, format!("Basic {FIN_WANG}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .unwrap(),
    )
    .await;
    assert_outcome(&reply, 401, "unauthorized");
    assert_eq!(h.ledger.snapshot().last_seq, 1);
}

fn token_hash_of(token: &str) -> String {
    fundledger_api::token_hash_hex(token)
}

#[tokio::test]
async fn a_forged_actor_is_replaced_by_the_tokens_principal() {
    let h = harness().await;
    let mut command = allocate("M2", 2024, "1000000");
    command["actor"] = json!({"id": "evil.mallory", "role": "finance", "unit": "市财政局"});
    let body = accept(&h.app, FIN_WANG, &command).await;
    let seq = body["seqs"][0].as_u64().unwrap();
    let events = all_events(&h.app).await;
    let record = events.iter().find(|r| r["seq"] == seq).unwrap();
    assert_eq!(record["body"]["command_id"], command["command_id"]);
    assert_eq!(record["body"]["actor"]["id"], "fin.wang");
    assert_eq!(record["body"]["actor"]["role"], "finance");

    // An applicant claiming to be finance is still an applicant.
    let mut command = allocate("M2", 2024, "1000000");
    command["actor"] = json!({"id": "fin.wang", "role": "finance", "unit": "市财政局"});
    assert_outcome(&post(&h.app, APP_A, &command).await, 403, "forbidden");
}

#[tokio::test]
async fn the_body_cannot_choose_the_time() {
    let h = harness().await;
    accept(&h.app, FIN_WANG, &allocate("M2", 2024, "1000000")).await;
    // Honoured, this `at` would put the submission outside the policy window.
    let mut command = voucher("A-1", &firm_a(), "100000", "1000000");
    command["at"] = json!("2030-01-01T00:00:00+08:00");
    let body = accept(&h.app, APP_A, &command).await;
    let seq = body["seqs"][0].as_u64().unwrap();
    let events = all_events(&h.app).await;
    let record = events.iter().find(|r| r["seq"] == seq).unwrap();
    assert_eq!(record["body"]["recorded_at"], FIXED_NOW);
}

#[tokio::test]
async fn a_token_of_the_wrong_role_is_403_forbidden() {
    let h = harness().await;
    for token in [APP_A, REVIEWER, APPROVER, ADMIN] {
        let reply = post(&h.app, token, &allocate("M2", 2024, "1000000")).await;
        assert_outcome(&reply, 403, "forbidden");
    }
    assert_eq!(h.ledger.snapshot().last_seq, 1);
}

#[tokio::test]
async fn auditors_write_nothing() {
    let h = harness().await;
    seed(&h.app).await;
    let head = h.ledger.snapshot().last_seq;
    let commands = [
        allocate("M2", 2024, "1000000"),
        review("B-1"),
        approve("B-1", "50000"),
        order_payout("P-9", "A-1", "1.00"),
    ];
    for command in &commands {
        assert_outcome(&post(&h.app, AUDITOR, command).await, 403, "forbidden");
    }
    assert_eq!(h.ledger.snapshot().last_seq, head);
}

#[tokio::test]
async fn segregation_of_duties_is_403() {
    let h = harness().await;
    accept(&h.app, FIN_WANG, &allocate("M2", 2024, "5000000")).await;
    accept(
        &h.app,
        APP_A,
        &voucher("A-1", &firm_a(), "100000", "1000000"),
    )
    .await;
    accept(&h.app, REVIEWER, &review("A-1")).await;
    accept(&h.app, APPROVER, &approve("A-1", "100000")).await;
    accept(&h.app, FIN_WANG, &order_payout("P-1", "A-1", "100000")).await;
    // The one who ordered a payout may not confirm it.
    let reply = post(&h.app, FIN_WANG, &confirm_payout("P-1")).await;
    assert_outcome(&reply, 403, "segregation_of_duties");
    accept(&h.app, FIN_ZHAO, &confirm_payout("P-1")).await;
}

#[tokio::test]
async fn an_unknown_application_is_404() {
    let h = harness().await;
    let reply = post(&h.app, REVIEWER, &review("NOPE")).await;
    assert_outcome(&reply, 404, "unknown_application");
}

#[tokio::test]
async fn a_duplicate_application_id_is_409() {
    let h = harness().await;
    accept(&h.app, FIN_WANG, &allocate("M2", 2024, "5000000")).await;
    accept(
        &h.app,
        APP_A,
        &voucher("A-1", &firm_a(), "100000", "1000000"),
    )
    .await;
    let reply = post(
        &h.app,
        APP_A,
        &voucher("A-1", &firm_a(), "10000", "1000000"),
    )
    .await;
    assert_outcome(&reply, 409, "duplicate_id");
}

#[tokio::test]
async fn a_rule_rejection_is_422_and_recorded() {
    let h = harness().await;
    accept(&h.app, FIN_WANG, &allocate("M2", 2024, "5000000")).await;
    // 30% of the contract: above the 20% rate of measure 2.
    let reply = post(
        &h.app,
        APP_A,
        &voucher("A-1", &firm_a(), "300000", "1000000"),
    )
    .await;
    let body = assert_outcome(&reply, 422, "exceeds_rate");
    assert_eq!(
        body["seqs"].as_array().map(Vec::len),
        Some(1),
        "the refusal is recorded"
    );
}

#[tokio::test]
async fn repeating_a_command_returns_the_same_body() {
    let h = harness().await;
    let command = allocate("M2", 2024, "1000000");
    let first = post(&h.app, FIN_WANG, &command).await;
    let again = post(&h.app, FIN_WANG, &command).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(first.json(), again.json());
    assert_eq!(
        h.ledger.snapshot().last_seq,
        2,
        "the repeat appended nothing"
    );

    // A rejection repeats too.
    let command = review("NOPE");
    let first = post(&h.app, REVIEWER, &command).await;
    let again = post(&h.app, REVIEWER, &command).await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    assert_eq!(first.json(), again.json());

    // The same id with other content is a conflict.
    let mut other = allocate("M2", 2024, "2000000");
    other["command_id"] = allocate_id(&h).await;
    let reply = post(&h.app, FIN_WANG, &other).await;
    assert_outcome(&reply, 409, "idempotency_conflict");
}

async fn allocate_id(h: &Harness) -> Value {
    let command = allocate("M5", 2024, "1000000");
    accept(&h.app, FIN_WANG, &command).await;
    command["command_id"].clone()
}

#[tokio::test]
async fn the_same_command_from_another_principal_is_a_conflict() {
    // The actor is part of the command, so another principal reusing an id conflicts.
    let h = harness().await;
    let command = allocate("M2", 2024, "1000000");
    accept(&h.app, FIN_WANG, &command).await;
    let reply = post(&h.app, FIN_ZHAO, &command).await;
    assert_outcome(&reply, 409, "idempotency_conflict");
}

#[tokio::test]
async fn get_on_commands_is_405_json() {
    let h = harness().await;
    let reply = get(&h.app, "/v1/commands", Some(FIN_WANG)).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.code().as_deref(), Some("method_not_allowed"));
}
