//! In-process harness for the HTTP service: a SQLite ledger in a temporary directory, opened
//! with a fixed clock (2024-06-01T10:00:00+08:00), a principal per role with a known token,
//! and helpers that drive `app(state)` with `tower::ServiceExt::oneshot`.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::DateTime;
use fundledger_api::{app, token_hash_hex, AppState, Limits, Principal};
use fundledger_events::{Head, Record, Role};
use fundledger_ledger::{uscc, Ledger, WriterOptions};
use fundledger_store::{EventStore, SqliteStore, StoreError};
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

pub const FIXED_NOW: &str = "2024-06-01T10:00:00+08:00";
pub const ORIGIN: &str = "api-test";

pub const ADMIN: &str = "tok-admin";
pub const FIN_WANG: &str = "tok-fin-wang";
pub const FIN_ZHAO: &str = "tok-fin-zhao";
pub const REVIEWER: &str = "tok-rev-gxj";
pub const APPROVER: &str = "tok-appr-gxj";
pub const APP_A: &str = "tok-app-a";
pub const APP_B: &str = "tok-app-b";
pub const AUDITOR: &str = "tok-audit";

pub fn firm_a() -> String {
    uscc::complete("91410100MA4700001").expect("valid USCC prefix")
}

pub fn firm_b() -> String {
    uscc::complete("91410100MA4700002").expect("valid USCC prefix")
}

fn principal(
    id: &str,
    role: Role,
    unit: Option<&str>,
    firm: Option<String>,
    token: &str,
) -> Principal {
    Principal {
        id: id.to_string(),
        role,
        unit: unit.map(str::to_string),
        firm,
        token_blake3: token_hash_hex(token),
    }
}

pub fn principals() -> Vec<Principal> {
    vec![
        principal("adm.root", Role::Admin, None, None, ADMIN),
        principal("fin.wang", Role::Finance, Some("市财政局"), None, FIN_WANG),
        principal("fin.zhao", Role::Finance, Some("市财政局"), None, FIN_ZHAO),
        principal("rev.gxj", Role::Reviewer, Some("市工信局"), None, REVIEWER),
        principal("appr.gxj", Role::Approver, Some("市工信局"), None, APPROVER),
        principal("app.a", Role::Applicant, None, Some(firm_a()), APP_A),
        principal("app.b", Role::Applicant, None, Some(firm_b()), APP_B),
        principal("audit.qian", Role::Auditor, Some("市审计局"), None, AUDITOR),
    ]
}

/// A store whose appends can be held at a gate, to fill the writer's queue deterministically.
pub struct GatedStore {
    inner: SqliteStore,
    closed: AtomicBool,
    /// When set, appends fail as a broken database would.
    pub fail: AtomicBool,
    /// Signalled when an append reaches the closed gate.
    pub entered: Notify,
    /// Permits let held appends through.
    pub release: Semaphore,
}

impl GatedStore {
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.release.add_permits(1_000);
    }
}

#[async_trait]
impl EventStore for GatedStore {
    fn origin(&self) -> &str {
        self.inner.origin()
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.inner.head().await
    }

    async fn append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(
                "disk on fire at /var/lib/secret".into(),
            ));
        }
        if self.closed.load(Ordering::SeqCst) {
            self.entered.notify_one();
            let permit = self
                .release
                .acquire()
                .await
                .map_err(|_| StoreError::Backend("gate dropped".into()))?;
            permit.forget();
        }
        self.inner.append(expected, batch).await
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.read(from_seq, limit).await
    }

    fn backend(&self) -> &'static str {
        "gated-sqlite"
    }
}

pub struct Harness {
    pub app: Router,
    pub state: AppState,
    pub ledger: Ledger,
    pub gate: Option<Arc<GatedStore>>,
    _dir: tempfile::TempDir,
}

pub fn fixed_options() -> WriterOptions {
    WriterOptions {
        clock: Arc::new(|| DateTime::parse_from_rfc3339(FIXED_NOW).expect("a valid fixed time")),
        ..Default::default()
    }
}

pub async fn harness() -> Harness {
    build(fixed_options(), Limits::default(), false).await
}

pub async fn build(options: WriterOptions, limits: Limits, gated: bool) -> Harness {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = SqliteStore::open(dir.path().join("ledger.db"), ORIGIN)
        .await
        .expect("a SQLite store");
    let (store, gate): (Arc<dyn EventStore>, Option<Arc<GatedStore>>) = if gated {
        let gate = Arc::new(GatedStore {
            inner: sqlite,
            closed: AtomicBool::new(false),
            fail: AtomicBool::new(false),
            entered: Notify::new(),
            release: Semaphore::new(0),
        });
        (gate.clone(), Some(gate))
    } else {
        (Arc::new(sqlite), None)
    };
    let ledger = Ledger::open(store.clone(), options)
        .await
        .expect("the ledger opens");
    let state = AppState::new(ledger.clone(), store, principals())
        .expect("valid principals")
        .with_limits(limits);
    Harness {
        app: app(state.clone()),
        state,
        ledger,
        gate,
        _dir: dir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn code(&self) -> Option<String> {
        self.json()["code"].as_str().map(str::to_string)
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body")
        .to_vec();
    Reply {
        status,
        headers,
        bytes,
    }
}

pub fn request(method: Method, path: &str, token: Option<&str>) -> axum::http::request::Builder {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder
}

pub async fn get(app: &Router, path: &str, token: Option<&str>) -> Reply {
    send(
        app,
        request(Method::GET, path, token)
            .body(Body::empty())
            .expect("a request"),
    )
    .await
}

/// POSTs raw bytes to /v1/commands with a content type.
pub async fn post_raw(
    app: &Router,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut builder = request(Method::POST, "/v1/commands", token);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    send(app, builder.body(Body::from(body)).expect("a request")).await
}

pub async fn post(app: &Router, token: &str, command: &Value) -> Reply {
    post_raw(
        app,
        Some(token),
        Some("application/json"),
        serde_json::to_vec(command).expect("JSON"),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Commands (no actor: the service takes it from the token)

pub fn command_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn cmd(kind: &str, mut fields: Value) -> Value {
    fields["command_id"] = json!(command_id());
    fields["type"] = json!(kind);
    fields
}

pub fn allocate(measure: &str, year: i32, amount: &str) -> Value {
    cmd(
        "allocate_budget",
        json!({"measure": measure, "fiscal_year": year, "amount": amount}),
    )
}

pub fn voucher(application_id: &str, uscc: &str, amount: &str, contract: &str) -> Value {
    cmd(
        "submit_application",
        json!({
            "application_id": application_id,
            "firm": {"uscc": uscc, "name": format!("郑州测试企业{}", &uscc[12..17])},
            "provision": "M2.compute_voucher",
            "fiscal_year": 2024,
            "amount": amount,
            "basis": {"contract_amount": contract, "contract_id": format!("HT-{application_id}")},
        }),
    )
}

pub fn review(application_id: &str) -> Value {
    cmd(
        "review_application",
        json!({"application_id": application_id, "recommend": true, "note": "材料齐全"}),
    )
}

pub fn approve(application_id: &str, amount: &str) -> Value {
    cmd(
        "approve_application",
        json!({"application_id": application_id, "amount": amount}),
    )
}

pub fn order_payout(payout_id: &str, application_id: &str, amount: &str) -> Value {
    cmd(
        "order_payout",
        json!({"payout_id": payout_id, "application_id": application_id, "amount": amount}),
    )
}

pub fn confirm_payout(payout_id: &str) -> Value {
    cmd(
        "confirm_payout",
        json!({"payout_id": payout_id, "bank_reference": format!("BANK-{payout_id}"), "value_date": "2024-06-01"}),
    )
}

/// Posts a command and asserts it was accepted.
pub async fn accept(app: &Router, token: &str, command: &Value) -> Value {
    let reply = post(app, token, command).await;
    let body = reply.json();
    assert_eq!(reply.status, StatusCode::OK, "{command}\n→ {body}");
    assert_eq!(body["outcome"], "accepted");
    body
}

/// A small world: M2 budget for 2024, firm A's voucher approved and paid (ordered by
/// fin.wang, confirmed by fin.zhao), firm B's voucher submitted.
pub async fn seed(app: &Router) {
    accept(app, FIN_WANG, &allocate("M2", 2024, "5000000")).await;
    accept(app, APP_A, &voucher("A-1", &firm_a(), "100000", "1000000")).await;
    accept(app, REVIEWER, &review("A-1")).await;
    accept(app, APPROVER, &approve("A-1", "100000")).await;
    accept(app, FIN_WANG, &order_payout("P-1", "A-1", "100000")).await;
    accept(app, FIN_ZHAO, &confirm_payout("P-1")).await;
    accept(app, APP_B, &voucher("B-1", &firm_b(), "50000", "500000")).await;
}

/// Every record of the log, via /v1/events.
pub async fn all_events(app: &Router) -> Vec<Value> {
    let reply = get(app, "/v1/events?after=0&limit=1000", Some(AUDITOR)).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json().as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Appended for hostile.rs: a government officer's token, so that every command type has a
// principal allowed to send it (endorse_application needs role government).

pub const GOVERNMENT: &str = "tok-gov-szf";

/// [`principals`] plus a government officer (`gov.szf`, token [`GOVERNMENT`]).
pub fn principals_with_government() -> Vec<Principal> {
    let mut all = principals();
    all.push(principal(
        "gov.szf",
        Role::Government,
        Some("市人民政府"),
        None,
        GOVERNMENT,
    ));
    all
}

/// Like [`harness`] (fixed clock, default limits, plain SQLite) with these principals.
pub async fn harness_with(principals: Vec<Principal>) -> Harness {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteStore::open(dir.path().join("ledger.db"), ORIGIN)
            .await
            .expect("a SQLite store"),
    );
    let ledger = Ledger::open(store.clone(), fixed_options())
        .await
        .expect("the ledger opens");
    let state = AppState::new(ledger.clone(), store, principals).expect("valid principals");
    Harness {
        app: app(state.clone()),
        state,
        ledger,
        gate: None,
        _dir: dir,
    }
}
