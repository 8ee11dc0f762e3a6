//! [`AppError`]: every way a request can fail, as one JSON body `{"code","message"}` with its
//! status. Internal failures are logged in full and answered with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fundledger_ledger::{Code, Outcome};
use serde_json::json;

/// Why a request failed. The `code` of each variant is part of the HTTP contract: the §7 codes
/// where one fits (`malformed`, `unauthorized`, `forbidden`, `unknown_application`), and
/// `not_found`, `method_not_allowed`, `busy`, `timeout`, `unavailable`, `internal` otherwise.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 `malformed`: a request the service cannot read (bad JSON, bad query parameters).
    #[error("{0}")]
    Malformed(String),
    /// 401 `unauthorized`: no bearer token, or one the service does not know.
    #[error(
        "a valid bearer token is required: send `Authorization: Bearer <token>` with a token \
         listed (as its BLAKE3 hash) in the service's configuration"
    )]
    Unauthorized,
    /// 403 `forbidden`: the caller's role may not read this.
    #[error("{0}")]
    Forbidden(String),
    /// 404 with a code such as `unknown_application` or `not_found`.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 405 `method_not_allowed`.
    #[error("this method is not allowed here; see /openapi.json for the methods of each path")]
    MethodNotAllowed,
    /// 413 `malformed`: the body is larger than the limit.
    #[error("the request body is larger than the limit of {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// 415 `malformed`: a command must be sent as `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503 `busy` with `Retry-After: 1`: the writer's queue is full.
    #[error("the writer's queue is full; retry shortly with the same command_id")]
    Busy,
    /// 503 `timeout`: the request took longer than the service allows.
    #[error(
        "the request took longer than {seconds} s; a command may or may not have been \
         recorded — retry with the same command_id"
    )]
    Timeout { seconds: u64 },
    /// 503 `unavailable`: the store failed or the ledger is shutting down. Logged at error
    /// level; the client gets a generic message.
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
    /// 500 `internal`: a bug. Logged at error level; the client gets a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Malformed(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Busy | AppError::Timeout { .. } | AppError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Malformed(_)
            | AppError::PayloadTooLarge { .. }
            | AppError::UnsupportedMediaType(_) => Code::Malformed.as_str(),
            AppError::Unauthorized => Code::Unauthorized.as_str(),
            AppError::Forbidden(_) => Code::Forbidden.as_str(),
            AppError::NotFound { code, .. } => code,
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Busy => "busy",
            AppError::Timeout { .. } => "timeout",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// The §7 code of this error, when it has one: such errors of `POST /v1/commands` are
    /// answered with the outcome object instead of the plain error body.
    fn outcome_code(&self) -> Option<Code> {
        match self {
            AppError::Malformed(_)
            | AppError::PayloadTooLarge { .. }
            | AppError::UnsupportedMediaType(_) => Some(Code::Malformed),
            AppError::Unauthorized => Some(Code::Unauthorized),
            AppError::Forbidden(_) => Some(Code::Forbidden),
            _ => None,
        }
    }

    /// What the client is told: the details of internal failures stay in the log.
    fn public_message(&self) -> String {
        match self {
            AppError::Unavailable(_) => "the service cannot reach its store or is shutting \
                                         down; retry shortly (commands with the same command_id)"
                .to_string(),
            AppError::Internal(_) => {
                "internal error; the details are in the service's log".to_string()
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        match self {
            AppError::Unavailable(detail) => tracing::error!(%detail, "service unavailable"),
            AppError::Internal(detail) => tracing::error!(%detail, "internal error"),
            AppError::Busy => tracing::warn!("writer queue full; answered 503 busy"),
            AppError::Timeout { seconds } => tracing::warn!(seconds, "request timed out"),
            AppError::Unauthorized => tracing::info!("request without a known bearer token"),
            other => tracing::info!(code = other.code(), message = %other, "request refused"),
        }
    }

    /// The response of `POST /v1/commands` for this error: the outcome object of §7
    /// (`{"command_id","outcome":"rejected","code","message","seqs":[]}`) when the error has a
    /// §7 code, else the plain error body.
    pub fn into_command_response(self, command_id: Option<&str>) -> Response {
        match self.outcome_code() {
            Some(code) => {
                self.log();
                let outcome = Outcome::rejected(command_id, code, self.public_message(), vec![]);
                let mut response = (self.status(), axum::Json(outcome)).into_response();
                self.add_headers(&mut response);
                response
            }
            None => self.into_response(),
        }
    }

    fn add_headers(&self, response: &mut Response) {
        match self {
            AppError::Busy | AppError::Timeout { .. } | AppError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            AppError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"fundledger\""),
                );
            }
            _ => {}
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let body = json!({"code": self.code(), "message": self.public_message()});
        let mut response = (self.status(), axum::Json(body)).into_response();
        self.add_headers(&mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_503_with_retry_after() {
        let response = AppError::Busy.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let error = AppError::Internal("secret path /var/lib/x".to_string());
        assert!(!error.public_message().contains("secret"));
        let error = AppError::Unavailable("db password wrong".to_string());
        assert!(!error.public_message().contains("password"));
    }

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (AppError::Malformed("x".into()), 400, "malformed"),
            (AppError::Unauthorized, 401, "unauthorized"),
            (AppError::Forbidden("x".into()), 403, "forbidden"),
            (
                AppError::NotFound {
                    code: "unknown_application",
                    message: "x".into(),
                },
                404,
                "unknown_application",
            ),
            (AppError::MethodNotAllowed, 405, "method_not_allowed"),
            (
                AppError::PayloadTooLarge { limit_bytes: 1 },
                413,
                "malformed",
            ),
            (AppError::UnsupportedMediaType("x".into()), 415, "malformed"),
            (AppError::Busy, 503, "busy"),
            (AppError::Timeout { seconds: 1 }, 503, "timeout"),
            (AppError::Unavailable("x".into()), 503, "unavailable"),
            (AppError::Internal("x".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
