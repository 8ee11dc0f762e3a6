//! Reads: authentication, what each role sees, paging the log, proofs and checkpoints, and the
//! service routes (health, metrics, OpenAPI, dashboard).

mod support;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use fundledger_api::routes::{route_docs, HttpMethod};
use fundledger_audit::{open_checkpoint, ConsistencyProof, InclusionProof, SigningKey};
use support::*;

fn ids(reply: &Reply, field: &str) -> Vec<String> {
    reply
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", reply.text()))
        .iter()
        .map(|row| row[field].as_str().unwrap_or_default().to_string())
        .collect()
}

const READS: [&str; 12] = [
    "/v1/me",
    "/v1/summary",
    "/v1/budgets",
    "/v1/firms",
    "/v1/labs",
    "/v1/applications",
    "/v1/applications/A-1",
    "/v1/payments",
    "/v1/clawbacks",
    "/v1/queue",
    "/v1/events",
    "/v1/checkpoint",
];

#[tokio::test]
async fn reads_need_a_known_token() {
    let h = harness().await;
    for path in READS {
        for token in [None, Some("wrong")] {
            let reply = get(&h.app, path, token).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
            let body = reply.json();
            assert_eq!(body["code"], "unauthorized", "{path}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(!reply.text().contains("wrong"), "the token is not echoed");
        }
    }
    for path in ["/", "/healthz", "/metrics", "/openapi.json"] {
        assert_eq!(
            get(&h.app, path, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn applicants_see_only_their_own_firm() {
    let h = harness().await;
    seed(&h.app).await;
    let (a, b) = (firm_a(), firm_b());

    for path in ["/v1/budgets", "/v1/events"] {
        let reply = get(&h.app, path, Some(APP_A)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(reply.code().as_deref(), Some("forbidden"));
    }
    let reply = get(&h.app, &format!("/v1/firms/{b}"), Some(APP_A)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = get(&h.app, &format!("/v1/firms/{a}"), Some(APP_A)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["uscc"], a.as_str());
    assert_eq!(reply.json()["voucher_claimed"]["2024"], "100000.00");

    assert_eq!(
        ids(&get(&h.app, "/v1/firms", Some(APP_A)).await, "uscc"),
        [a.as_str()]
    );
    assert_eq!(
        ids(
            &get(&h.app, "/v1/applications", Some(APP_A)).await,
            "application_id"
        ),
        ["A-1"]
    );
    assert_eq!(
        ids(
            &get(&h.app, "/v1/applications", Some(APP_B)).await,
            "application_id"
        ),
        ["B-1"]
    );
    assert_eq!(
        ids(&get(&h.app, "/v1/payments", Some(APP_A)).await, "payout_id"),
        ["P-1"]
    );
    assert!(ids(&get(&h.app, "/v1/payments", Some(APP_B)).await, "payout_id").is_empty());
    assert!(ids(
        &get(&h.app, "/v1/queue", Some(APP_A)).await,
        "application_id"
    )
    .is_empty());
    assert_eq!(
        ids(
            &get(&h.app, "/v1/queue", Some(APP_B)).await,
            "application_id"
        ),
        ["B-1"]
    );
    assert!(ids(&get(&h.app, "/v1/labs", Some(APP_A)).await, "lab").is_empty());

    // Another firm's application is not found, exactly like a missing one.
    let other = get(&h.app, "/v1/applications/B-1", Some(APP_A)).await;
    let missing = get(&h.app, "/v1/applications/NOPE", Some(APP_A)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.code().as_deref(), Some("unknown_application"));
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code().as_deref(), Some("unknown_application"));
    let own = get(&h.app, "/v1/applications/A-1", Some(APP_A)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.json()["status"], "approved");
    assert_eq!(own.json()["firm"], a.as_str());
}

#[tokio::test]
async fn auditors_and_officers_read_everything() {
    let h = harness().await;
    seed(&h.app).await;
    for token in [AUDITOR, FIN_WANG, REVIEWER, ADMIN] {
        let budgets = get(&h.app, "/v1/budgets", Some(token)).await;
        assert_eq!(budgets.status, StatusCode::OK);
        let row = &budgets.json()[0];
        assert_eq!(row["measure"], "M2");
        assert_eq!(row["fiscal_year"], 2024);
        assert_eq!(row["allocated"], "5000000.00");
        assert_eq!(row["paid"], "100000.00");
        assert_eq!(row["remaining"], "4900000.00");
        assert_eq!(
            ids(
                &get(&h.app, "/v1/applications", Some(token)).await,
                "application_id"
            ),
            ["A-1", "B-1"]
        );
        assert_eq!(
            ids(&get(&h.app, "/v1/firms", Some(token)).await, "uscc").len(),
            2
        );
        assert_eq!(
            get(&h.app, "/v1/applications/B-1", Some(token))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            get(&h.app, "/v1/events", Some(token)).await.status,
            StatusCode::OK
        );
        let payments = get(&h.app, "/v1/payments", Some(token)).await.json();
        assert_eq!(payments[0]["status"], "confirmed");
        assert_eq!(payments[0]["amount"], "100000.00");
    }
    let me = get(&h.app, "/v1/me", Some(AUDITOR)).await.json();
    assert_eq!(me["id"], "audit.qian");
    assert_eq!(me["role"], "auditor");
    assert!(me.get("token_blake3").is_none());
    let firm = get(&h.app, "/v1/firms/914101000000000000", Some(AUDITOR)).await;
    assert_eq!(firm.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_page_through_the_log() {
    let h = harness().await;
    seed(&h.app).await;
    let head = h.ledger.snapshot().last_seq;
    assert_eq!(head, 8);
    let seqs = |reply: &Reply| -> Vec<u64> {
        reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect()
    };
    let page = get(&h.app, "/v1/events?after=0&limit=3", Some(AUDITOR)).await;
    assert_eq!(seqs(&page), [1, 2, 3]);
    let first = &page.json()[0];
    for field in ["seq", "prev", "hash", "body"] {
        assert!(first.get(field).is_some(), "{field}");
    }
    assert_eq!(first["body"]["type"], "policy_registered");
    let page = get(&h.app, "/v1/events?after=3&limit=3", Some(AUDITOR)).await;
    assert_eq!(seqs(&page), [4, 5, 6]);
    // Each record links to the one before it.
    assert_eq!(
        page.json()[0]["prev"],
        get(&h.app, "/v1/events?after=2&limit=1", Some(AUDITOR))
            .await
            .json()[0]["hash"]
    );
    assert_eq!(
        seqs(&get(&h.app, "/v1/events?after=6", Some(AUDITOR)).await),
        [7, 8]
    );
    assert_eq!(
        seqs(&get(&h.app, "/v1/events", Some(AUDITOR)).await).len(),
        8
    );
    assert!(seqs(&get(&h.app, "/v1/events?after=100", Some(AUDITOR)).await).is_empty());
    assert!(seqs(
        &get(
            &h.app,
            &format!("/v1/events?after={}", u64::MAX),
            Some(AUDITOR)
        )
        .await
    )
    .is_empty());
    for bad in [
        "limit=0",
        "limit=1001",
        "after=abc",
        "after=-1",
        "limit=1.5",
        "colour=red",
    ] {
        let reply = get(&h.app, &format!("/v1/events?{bad}"), Some(AUDITOR)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.code().as_deref(), Some("malformed"), "{bad}");
    }
}

#[tokio::test]
async fn proofs_verify_with_the_audit_verifiers() {
    let h = harness().await;
    seed(&h.app).await;
    let events = all_events(&h.app).await;
    let head = events.len() as u64;

    for seq in 1..=head {
        let reply = get(
            &h.app,
            &format!("/v1/proofs/inclusion/{seq}"),
            Some(AUDITOR),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let proof: InclusionProof = serde_json::from_slice(&reply.bytes).unwrap();
        proof.verify().unwrap();
        assert_eq!(proof.leaf_index, seq - 1);
        assert_eq!(proof.tree_size, head);
        assert_eq!(
            proof.record_hash.to_hex(),
            events[(seq - 1) as usize]["hash"].as_str().unwrap()
        );
    }
    let reply = get(&h.app, "/v1/proofs/inclusion/2?size=3", Some(REVIEWER)).await;
    let proof: InclusionProof = serde_json::from_slice(&reply.bytes).unwrap();
    proof.verify().unwrap();
    assert_eq!(proof.tree_size, 3);

    for old in 1..=head {
        let reply = get(
            &h.app,
            &format!("/v1/proofs/consistency?old={old}&new={head}"),
            Some(AUDITOR),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let proof: ConsistencyProof = serde_json::from_slice(&reply.bytes).unwrap();
        proof.verify().unwrap();
    }
    // The tree grows with the log.
    accept(&h.app, FIN_WANG, &allocate("M5", 2024, "1000000")).await;
    let reply = get(&h.app, "/v1/proofs/consistency?old=3", Some(AUDITOR)).await;
    let proof: ConsistencyProof = serde_json::from_slice(&reply.bytes).unwrap();
    proof.verify().unwrap();
    assert_eq!(proof.new_size, head + 1);

    let cases = [
        ("/v1/proofs/inclusion/0", 400),
        ("/v1/proofs/inclusion/abc", 400),
        ("/v1/proofs/inclusion/99", 404),
        ("/v1/proofs/inclusion/3?size=2", 404),
        ("/v1/proofs/inclusion/1?size=99", 404),
        ("/v1/proofs/consistency", 400),
        ("/v1/proofs/consistency?old=0&new=3", 400),
        ("/v1/proofs/consistency?old=4&new=3", 400),
        ("/v1/proofs/consistency?old=1&new=99", 404),
        ("/v1/proofs/consistency?old=x", 400),
    ];
    for (path, status) in cases {
        let reply = get(&h.app, path, Some(AUDITOR)).await;
        assert_eq!(reply.status.as_u16(), status, "{path}: {}", reply.text());
        assert!(reply.json()["code"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn checkpoints_are_served_once_signed() {
    let h = harness().await;
    seed(&h.app).await;
    let reply = get(&h.app, "/v1/checkpoint", Some(AUDITOR)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code().as_deref(), Some("not_found"));

    let key = SigningKey::from_seed(ORIGIN, &[7u8; 32]).unwrap();
    let note = h.state.sign_checkpoint(&key).await.unwrap();
    let reply = get(&h.app, "/v1/checkpoint", Some(APP_A)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(reply.text(), note);
    let checkpoint = open_checkpoint(&reply.text(), &key.verifier()).unwrap();
    assert_eq!(checkpoint.origin, ORIGIN);
    assert_eq!(checkpoint.size, h.ledger.snapshot().last_seq);
    let proof: InclusionProof = serde_json::from_slice(
        &get(&h.app, "/v1/proofs/inclusion/1", Some(AUDITOR))
            .await
            .bytes,
    )
    .unwrap();
    assert_eq!(proof.root, checkpoint.root);
}

#[tokio::test]
async fn healthz_and_summary() {
    let h = harness().await;
    let reply = get(&h.app, "/healthz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "ok", "head_seq": 1})
    );
    seed(&h.app).await;
    let summary = get(&h.app, "/v1/summary", Some(FIN_WANG)).await.json();
    assert_eq!(summary["head_seq"], 8);
    assert_eq!(summary["record_count"], 8);
    assert_eq!(summary["origin"], ORIGIN);
    let events = all_events(&h.app).await;
    assert_eq!(summary["head_hash"], events[7]["hash"]);
}

#[tokio::test]
async fn metrics_in_prometheus_text() {
    let h = harness().await;
    seed(&h.app).await;
    let _ = post(&h.app, REVIEWER, &review("NOPE")).await;
    let reply = get(&h.app, "/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = reply.text();
    for line in [
        "# TYPE fundledger_commands_total counter",
        "fundledger_commands_total{type=\"allocate_budget\",code=\"accepted\"} 1",
        "fundledger_commands_total{type=\"review_application\",code=\"unknown_application\"} 1",
        "fundledger_batches_total ",
        "fundledger_batch_records_sum ",
        "# TYPE fundledger_append_seconds histogram",
        "fundledger_append_seconds_bucket{le=\"0.001\"} ",
        "fundledger_append_seconds_bucket{le=\"+Inf\"} ",
        "fundledger_append_seconds_sum ",
        "fundledger_append_seconds_count ",
        "fundledger_head_seq 8",
        "fundledger_conflicts_total 0",
        "fundledger_http_responses_total{status=\"200\"} ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let h = harness().await;
    seed(&h.app).await;
    let doc = get(&h.app, "/openapi.json", None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let docs = route_docs();
    assert!(docs.len() >= 20);
    let paths = doc["paths"].as_object().unwrap();
    for route in &docs {
        let method = match route.method {
            HttpMethod::Get => "get",
            HttpMethod::Post => "post",
        };
        assert!(
            paths.get(route.path).and_then(|p| p.get(method)).is_some(),
            "{} {} missing from /openapi.json",
            route.method.as_str(),
            route.path
        );
    }
    // The documented routes are exactly the design's, and each one is served (the router is
    // built from the same table: none falls through to the "no route" answer).
    for path in [
        "/",
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/commands",
        "/v1/budgets",
        "/v1/firms/{uscc}",
        "/v1/labs",
        "/v1/applications",
        "/v1/applications/{id}",
        "/v1/payments",
        "/v1/queue",
        "/v1/events",
        "/v1/checkpoint",
        "/v1/proofs/inclusion/{seq}",
        "/v1/proofs/consistency",
        "/v1/summary",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let firm = firm_a();
    for route in &docs {
        let concrete = route
            .path
            .replace("{uscc}", &firm)
            .replace("{id}", "A-1")
            .replace("{seq}", "1");
        let method = match route.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
        };
        let request = request(method, &concrete, Some(AUDITOR))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let reply = send(&h.app, request).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{concrete}");
        if reply.status == StatusCode::NOT_FOUND {
            let message = reply.json()["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(!message.starts_with("no route"), "{concrete} is not routed");
        }
    }
    // And a path outside the table is not served.
    let reply = get(&h.app, "/v1/secrets", Some(AUDITOR)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code().as_deref(), Some("not_found"));
    let reply = send(
        &h.app,
        request(Method::DELETE, "/v1/budgets", Some(AUDITOR))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.code().as_deref(), Some("method_not_allowed"));
}

#[tokio::test]
async fn the_dashboard_is_one_self_contained_page() {
    let h = harness().await;
    let reply = get(&h.app, "/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(reply.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    let page = reply.text();
    for text in [
        "预算执行",
        "Budget by measure and year",
        "算力券",
        "voucher cap",
        "重点实验室五年计划",
        "planned / approved / paid",
        "最新拨付",
        "Latest payouts",
        "id=\"budget-table\"",
        "id=\"voucher-table\"",
        "id=\"lab-timeline\"",
        "id=\"payout-table\"",
        "id=\"head-seq\"",
        "id=\"head-hash\"",
        "id=\"record-count\"",
        "id=\"token-prompt\"",
        "#token=",
        "sessionStorage",
        "Bearer ",
        "/v1/summary",
        // `hidden` must win over the sections' own display, or the prompt shows the empty page.
        "[hidden] { display: none !important; }",
    ] {
        assert!(page.contains(text), "the page lacks {text:?}");
    }
    // Nothing is loaded from elsewhere.
    for external in ["http://", "https://", "<link", "src=\""] {
        assert!(!page.contains(external), "the page refers to {external:?}");
    }
    // Everything the page fetches is a route of the service.
    let docs = route_docs();
    for path in [
        "/v1/summary",
        "/v1/me",
        "/v1/budgets",
        "/v1/firms",
        "/v1/labs",
        "/v1/payments",
    ] {
        assert!(page.contains(&format!("\"{path}\"")));
        assert!(docs.iter().any(|d| d.path == path), "{path}");
    }
}
