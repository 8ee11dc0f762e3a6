//! Back-pressure: a full writer queue is answered at once with 503 and `Retry-After`, and a
//! request that takes too long gets a JSON 503 `timeout`. The writer is held inside a store
//! append by a gate, so the queue's state is known without any timing assumption.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{header, StatusCode};
use fundledger_api::Limits;
use fundledger_ledger::{Command, WriterOptions};
use serde_json::json;
use support::*;

fn small_queue() -> WriterOptions {
    WriterOptions {
        queue_capacity: 1,
        batch_max: 1,
        ..fixed_options()
    }
}

#[tokio::test]
async fn a_full_queue_is_503_with_retry_after() {
    let h = build(small_queue(), Limits::default(), true).await;
    let gate = h.gate.clone().unwrap();
    gate.close();

    // A: taken by the writer, which then waits at the gate inside the append.
    let app = h.app.clone();
    let first =
        tokio::spawn(async move { post(&app, FIN_WANG, &allocate("M2", 2024, "1000000")).await });
    gate.entered.notified().await;

    // B: fills the one place in the queue.
    let mut b = allocate("M5", 2024, "1000000");
    b["actor"] = json!({"id": "fin.zhao", "role": "finance", "unit": "市财政局"});
    let pending = h.ledger.try_enqueue(Command::parse(&b).unwrap()).unwrap();

    // C: no room.
    let reply = post(&h.app, FIN_WANG, &allocate("M7", 2024, "1000000")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert_eq!(reply.code().as_deref(), Some("busy"));

    gate.open();
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert!(pending.outcome().await.unwrap().is_accepted());
    // C was never recorded; sent again, it is accepted.
    let reply = post(&h.app, FIN_WANG, &allocate("M7", 2024, "1000000")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_slow_request_times_out_with_json() {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let h = build(fixed_options(), limits, true).await;
    let gate = h.gate.clone().unwrap();
    gate.close();
    let command = allocate("M2", 2024, "1000000");
    let reply = post(&h.app, FIN_WANG, &command).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code().as_deref(), Some("timeout"));
    // The command was queued before the timeout; once the store answers it is recorded, and a
    // retry with the same command_id gets its outcome.
    gate.open();
    let mut retry = post(&h.app, FIN_WANG, &command).await;
    for _ in 0..50 {
        if retry.status == StatusCode::OK {
            break;
        }
        retry = post(&h.app, FIN_WANG, &command).await;
    }
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(h.ledger.snapshot().last_seq, 2);
}

#[tokio::test]
async fn a_store_failure_is_503_without_details() {
    let h = build(fixed_options(), Limits::default(), true).await;
    let gate = h.gate.clone().unwrap();
    gate.fail.store(true, Ordering::SeqCst);
    let command = allocate("M2", 2024, "1000000");
    let reply = post(&h.app, FIN_WANG, &command).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code().as_deref(), Some("unavailable"));
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    assert!(!reply.text().contains("secret"), "{}", reply.text());
    // Reads still answer from the last published snapshot.
    assert_eq!(get(&h.app, "/healthz", None).await.status, StatusCode::OK);
    // Once the store is back, the same command is accepted.
    gate.fail.store(false, Ordering::SeqCst);
    let reply = post(&h.app, FIN_WANG, &command).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
