//! The handlers of every route. Reads take the ledger's last published snapshot (never the
//! writer); `POST /v1/commands` queues the command with `try_enqueue` and awaits its outcome.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use fundledger_events::Role;
use fundledger_ledger::{Code, Command, Outcome, SubmitError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{authenticate, Caller};
use crate::config::Principal;
use crate::error::AppError;
use crate::{AppState, CheckpointSignError};

pub(crate) type Reply = Result<Response, AppError>;

/// Default and largest page of `/v1/events`.
const EVENTS_LIMIT_DEFAULT: usize = 100;
const EVENTS_LIMIT_MAX: usize = 1_000;
/// Longest piece of client input echoed in a message.
const ECHO_CHARS_MAX: usize = 64;

/// A JSON reply with status 200.
fn json<T: Serialize>(value: &T) -> Reply {
    json_with_status(StatusCode::OK, value)
}

fn json_with_status<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    let body = serde_json::to_vec(value)
        .map_err(|error| AppError::Internal(format!("serialising a reply failed: {error}")))?;
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Client input shortened for an error message.
fn echo(text: &str) -> String {
    text.chars().take(ECHO_CHARS_MAX).collect()
}

fn path_value<T>(path: Result<Path<T>, PathRejection>) -> Result<T, AppError> {
    path.map(|Path(value)| value)
        .map_err(|rejection| AppError::Malformed(rejection.body_text()))
}

fn query_value<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| AppError::Malformed(rejection.body_text()))
}

/// Refuses applicants a view that names other firms.
fn deny_applicant(caller: &Principal, what: &str) -> Result<(), AppError> {
    if caller.role == Role::Applicant {
        return Err(AppError::Forbidden(format!(
            "applicants may not read {what}: it names other firms; an applicant reads its own \
             firm, applications, payments, labs and queue entries"
        )));
    }
    Ok(())
}

fn sync_error(error: CheckpointSignError) -> AppError {
    match error {
        CheckpointSignError::Store(error) => AppError::Unavailable(error.to_string()),
        other => AppError::Internal(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Public routes

pub(crate) async fn dashboard() -> Response {
    let mut response = Html(crate::dashboard::PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::dashboard::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) async fn healthz(State(state): State<AppState>) -> Reply {
    json(&json!({"status": "ok", "head_seq": state.ledger.snapshot().last_seq}))
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        crate::metrics::render(&state.ledger, &state.http),
    )
        .into_response()
}

pub(crate) async fn openapi() -> Reply {
    json(&crate::openapi::document())
}

// ---------------------------------------------------------------------------------------------
// Commands

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /v1/commands`: one command object; the actor is the token's principal.
pub(crate) async fn post_command(State(state): State<AppState>, request: Request) -> Response {
    match command_reply(&state, request).await {
        Ok(response) => response,
        Err((error, command_id)) => error.into_command_response(command_id.as_deref()),
    }
}

async fn command_reply(
    state: &AppState,
    request: Request,
) -> Result<Response, (AppError, Option<String>)> {
    let Some(principal) = authenticate(request.headers(), state) else {
        return Err((AppError::Unauthorized, None));
    };
    if !is_json(request.headers()) {
        return Err((
            AppError::UnsupportedMediaType(
                "a command is sent as one JSON object with `Content-Type: application/json`"
                    .to_string(),
            ),
            None,
        ));
    }
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let error = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge {
                    limit_bytes: state.limits.body_bytes_max,
                }
            } else {
                AppError::Malformed(format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ))
            };
            (error, None)
        })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
        (
            AppError::Malformed(format!("the body is not JSON: {error}")),
            None,
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err((
            AppError::Malformed("a command is one JSON object".to_string()),
            None,
        ));
    };
    let actor = serde_json::to_value(principal.actor()).map_err(|error| {
        (
            AppError::Internal(format!("serialising an actor: {error}")),
            None,
        )
    })?;
    // The actor is the token's principal, whatever the body says; the time is the service's.
    if let Some(named) = object.insert("actor".to_string(), actor.clone()) {
        if named != actor {
            tracing::warn!(
                principal = %principal.id,
                "the command's body named another actor; it was replaced by the token's principal"
            );
        }
    }
    object.remove("at");
    let command = match Command::parse(&Value::Object(object)) {
        Ok(command) => command,
        Err(rejection) => {
            tracing::info!(
                principal = %principal.id,
                code = rejection.code.as_str(),
                message = %rejection.message,
                "command refused before decide"
            );
            let outcome = Outcome::rejected(
                rejection.command_id.as_deref(),
                rejection.code,
                rejection.message,
                vec![],
            );
            return outcome_response(&outcome)
                .map_err(|error| (error, rejection.command_id.clone()));
        }
    };
    let command_id = command.command_id.clone();
    let kind = command.type_name();
    let pending = state
        .ledger
        .try_enqueue(command)
        .map_err(|error| (submit_error(error), Some(command_id.clone())))?;
    let outcome = pending
        .outcome()
        .await
        .map_err(|error| (submit_error(error), Some(command_id.clone())))?;
    if outcome.is_accepted() {
        tracing::debug!(principal = %principal.id, %command_id, r#type = kind, seqs = ?outcome.seqs, "command accepted");
    } else {
        tracing::info!(principal = %principal.id, %command_id, r#type = kind, code = ?outcome.code, "command rejected");
    }
    outcome_response(&outcome).map_err(|error| (error, Some(command_id)))
}

/// The outcome with its status: 200 when accepted, else the status of its code.
fn outcome_response(outcome: &Outcome) -> Reply {
    let status =
        StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_with_status(status, outcome)
}

/// What a command that got no outcome is answered with.
pub(crate) fn submit_error(error: SubmitError) -> AppError {
    match error {
        SubmitError::Busy => AppError::Busy,
        SubmitError::Closed => AppError::Unavailable("the ledger is shutting down".to_string()),
        SubmitError::Store(detail) => AppError::Unavailable(format!("the store failed: {detail}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

#[derive(Serialize)]
struct Me<'a> {
    id: &'a str,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    firm: Option<&'a str>,
}

pub(crate) async fn me(Caller(caller): Caller) -> Reply {
    json(&Me {
        id: &caller.id,
        role: caller.role,
        unit: caller.unit.as_deref(),
        firm: caller.firm.as_deref(),
    })
}

pub(crate) async fn summary(State(state): State<AppState>, Caller(_): Caller) -> Reply {
    let snapshot = state.ledger.snapshot();
    let policy_version = snapshot
        .current_policy()
        .map(|(_, catalogue)| catalogue.version.clone());
    json(&json!({
        "origin": state.ledger.origin(),
        "backend": state.ledger.backend(),
        "head_seq": snapshot.last_seq,
        "head_hash": snapshot.last_hash.to_hex(),
        "record_count": snapshot.last_seq,
        "policy_version": policy_version,
    }))
}

pub(crate) async fn budgets(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    deny_applicant(&caller, "budgets")?;
    json(&state.ledger.snapshot().budget_rows())
}

pub(crate) async fn firms(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    let snapshot = state.ledger.snapshot();
    match caller.own_firm() {
        Some(uscc) => json(&snapshot.firm_row(uscc).into_iter().collect::<Vec<_>>()),
        None => json(&snapshot.firm_rows()),
    }
}

pub(crate) async fn firm(
    State(state): State<AppState>,
    Caller(caller): Caller,
    uscc: Result<Path<String>, PathRejection>,
) -> Reply {
    let uscc = path_value(uscc)?;
    if caller.own_firm().is_some_and(|own| own != uscc) {
        return Err(AppError::Forbidden(
            "an applicant reads only its own firm".to_string(),
        ));
    }
    let row = state.ledger.snapshot().firm_row(&uscc);
    match row {
        Some(row) => json(&row),
        None => Err(AppError::NotFound {
            code: "not_found",
            message: format!("the ledger knows no firm with USCC {:?}", echo(&uscc)),
        }),
    }
}

pub(crate) async fn labs(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    let mut rows = state.ledger.snapshot().lab_rows();
    if let Some(own) = caller.own_firm() {
        rows.retain(|row| row.firm == own);
    }
    json(&rows)
}

pub(crate) async fn applications(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    let snapshot = state.ledger.snapshot();
    match caller.own_firm() {
        Some(own) => {
            let mut apps: Vec<_> = snapshot
                .applications
                .values()
                .filter(|app| app.firm.uscc == own)
                .collect();
            apps.sort_by_key(|app| app.submitted_seq);
            let rows: Vec<_> = apps
                .into_iter()
                .filter_map(|app| snapshot.application_row(&app.application_id))
                .collect();
            json(&rows)
        }
        None => json(&snapshot.application_rows()),
    }
}

pub(crate) async fn application(
    State(state): State<AppState>,
    Caller(caller): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Reply {
    let id = path_value(id)?;
    let row = state
        .ledger
        .snapshot()
        .application_row(&id)
        // Another firm's application is answered exactly like a missing one.
        .filter(|row| caller.own_firm().is_none_or(|own| row.firm == own));
    match row {
        Some(row) => json(&row),
        None => Err(AppError::NotFound {
            code: Code::UnknownApplication.as_str(),
            message: format!("no application {:?}", echo(&id)),
        }),
    }
}

pub(crate) async fn payments(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    let mut rows = state.ledger.snapshot().payment_rows();
    if let Some(own) = caller.own_firm() {
        rows.retain(|row| row.firm == own);
    }
    json(&rows)
}

pub(crate) async fn clawbacks(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    let snapshot = state.ledger.snapshot();
    let mut rows = snapshot.clawback_rows();
    if let Some(own) = caller.own_firm() {
        rows.retain(|row| {
            snapshot
                .applications
                .get(&row.application_id)
                .is_some_and(|app| app.firm.uscc == own)
        });
    }
    json(&rows)
}

pub(crate) async fn queue(State(state): State<AppState>, Caller(caller): Caller) -> Reply {
    let mut rows = state.ledger.snapshot().queue_rows();
    if let Some(own) = caller.own_firm() {
        rows.retain(|row| row.firm == own);
    }
    json(&rows)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

pub(crate) async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Reply {
    deny_applicant(&caller, "the raw event log")?;
    let query = query_value(query)?;
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(EVENTS_LIMIT_DEFAULT);
    if !(1..=EVENTS_LIMIT_MAX).contains(&limit) {
        return Err(AppError::Malformed(format!(
            "limit must be from 1 to {EVENTS_LIMIT_MAX}; got {limit}"
        )));
    }
    let Some(from_seq) = after.checked_add(1) else {
        return json(&Vec::<Value>::new());
    };
    let records = state
        .store
        .read(from_seq, limit)
        .await
        .map_err(|error| AppError::Unavailable(error.to_string()))?;
    json(&records)
}

pub(crate) async fn checkpoint(State(state): State<AppState>, Caller(_): Caller) -> Reply {
    match state.checkpoint() {
        Some(note) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            note,
        )
            .into_response()),
        None => Err(AppError::NotFound {
            code: "not_found",
            message: "no checkpoint has been signed yet; the service signs one when it is \
                      started with a checkpoint key"
                .to_string(),
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionQuery {
    size: Option<u64>,
}

fn parse_seq(text: &str) -> Result<u64, AppError> {
    match text.parse::<u64>() {
        Ok(0) => Err(AppError::Malformed(
            "seq starts at 1; there is no record 0".to_string(),
        )),
        Ok(seq) => Ok(seq),
        Err(_) => Err(AppError::Malformed(format!(
            "seq {:?} is not a positive integer",
            echo(text)
        ))),
    }
}

fn beyond_log(size: u64, head: u64) -> AppError {
    AppError::NotFound {
        code: "not_found",
        message: format!("tree size {size} is beyond the log, which holds {head} records"),
    }
}

pub(crate) async fn inclusion_proof(
    State(state): State<AppState>,
    Caller(_): Caller,
    seq: Result<Path<String>, PathRejection>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Reply {
    let seq = parse_seq(&path_value(seq)?)?;
    let query = query_value(query)?;
    let head = state.ledger.snapshot().last_seq;
    let size = query.size.unwrap_or(head);
    if size > head {
        return Err(beyond_log(size, head));
    }
    if seq > size {
        return Err(AppError::NotFound {
            code: "not_found",
            message: format!("seq {seq} is not in the tree of size {size}"),
        });
    }
    let tree = state.tree_at(size).await.map_err(sync_error)?;
    let proof = tree
        .inclusion_proof(seq - 1, size)
        .map_err(|error| AppError::Malformed(error.to_string()))?;
    drop(tree);
    json(&proof)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    old: Option<u64>,
    new: Option<u64>,
}

pub(crate) async fn consistency_proof(
    State(state): State<AppState>,
    Caller(_): Caller,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Reply {
    let query = query_value(query)?;
    let head = state.ledger.snapshot().last_seq;
    let Some(old) = query.old else {
        return Err(AppError::Malformed(
            "old (the size of the earlier tree) is required: ?old=M&new=N".to_string(),
        ));
    };
    let new = query.new.unwrap_or(head);
    if old == 0 {
        return Err(AppError::Malformed(
            "old must be at least 1: RFC 9162 defines no consistency proof from the empty tree"
                .to_string(),
        ));
    }
    if old > new {
        return Err(AppError::Malformed(format!(
            "old ({old}) must not be greater than new ({new})"
        )));
    }
    if new > head {
        return Err(beyond_log(new, head));
    }
    let tree = state.tree_at(new).await.map_err(sync_error)?;
    let proof = tree
        .consistency_proof(old, new)
        .map_err(|error| AppError::Malformed(error.to_string()))?;
    drop(tree);
    json(&proof)
}

// ---------------------------------------------------------------------------------------------
// Fallbacks

pub(crate) async fn no_route(request: Request) -> AppError {
    AppError::NotFound {
        code: "not_found",
        message: format!(
            "no route {}; see /openapi.json for the routes",
            echo(request.uri().path())
        ),
    }
}

pub(crate) async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_errors_map_to_503() {
        for error in [
            SubmitError::Busy,
            SubmitError::Closed,
            SubmitError::Store("disk full".into()),
        ] {
            let response = submit_error(error).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key(header::RETRY_AFTER));
        }
    }

    #[test]
    fn json_content_types() {
        let cases = [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), expected, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn seqs_parse() {
        assert_eq!(parse_seq("7").ok(), Some(7));
        assert!(parse_seq("0").is_err());
        assert!(parse_seq("-1").is_err());
        assert!(parse_seq("x").is_err());
        assert!(parse_seq("99999999999999999999999").is_err());
    }
}
