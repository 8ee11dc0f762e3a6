//! What wraps every route: the JSON 404 and 405 answers, the body limit, the request timeout,
//! response counting and one log line per request (method, path, status, latency — never
//! headers, so never a token).

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::AppError;
use crate::handlers;
use crate::AppState;

/// Longest path written to the log.
const LOGGED_PATH_CHARS_MAX: usize = 200;

pub(crate) fn wrap(router: Router<AppState>, state: AppState) -> Router {
    let limits = state.limits;
    router
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Applies the timeout, counts the response and logs the request.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path: String = request
        .uri()
        .path()
        .chars()
        .take(LOGGED_PATH_CHARS_MAX)
        .collect();
    let timeout = state.limits.request_timeout;
    let mut response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout {
            seconds: timeout.as_secs(),
        }
        .into_response(),
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let status = response.status().as_u16();
    state.http.count(status);
    let latency_us = started.elapsed().as_micros() as u64;
    tracing::debug!(%method, %path, status, latency_us, "request");
    response
}
