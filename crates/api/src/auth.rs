//! Bearer-token authentication: the presented token is hashed with BLAKE3 and compared with
//! every principal's hash in constant time. Tokens are never stored, logged or echoed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::config::{parse_token_hash, validate_principals, ConfigError, Principal};
use crate::error::AppError;
use crate::AppState;

/// Longest bearer token looked at; anything longer is no token of ours.
const TOKEN_LENGTH_MAX: usize = 1024;

/// The principals with their token hashes decoded.
pub(crate) struct Principals {
    entries: Vec<(Principal, [u8; 32])>,
}

impl Principals {
    pub(crate) fn new(principals: Vec<Principal>) -> Result<Principals, ConfigError> {
        validate_principals(&principals)?;
        let mut entries = Vec::with_capacity(principals.len());
        for principal in principals {
            let hash = parse_token_hash(&principal.token_blake3).ok_or_else(|| {
                ConfigError::BadTokenHash {
                    id: principal.id.clone(),
                }
            })?;
            entries.push((principal, hash));
        }
        Ok(Principals { entries })
    }

    /// The principal holding `token`. Every stored hash is compared, without an early exit,
    /// so the time taken does not depend on which principal (if any) matched.
    pub(crate) fn find(&self, token: &str) -> Option<&Principal> {
        let presented = blake3::hash(token.as_bytes());
        let mut found = None;
        for (index, (_, hash)) in self.entries.iter().enumerate() {
            let equal: bool = hash.as_slice().ct_eq(presented.as_bytes()).into();
            if equal && found.is_none() {
                found = Some(index);
            }
        }
        found
            .and_then(|index| self.entries.get(index))
            .map(|(principal, _)| principal)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > TOKEN_LENGTH_MAX
    {
        return None;
    }
    Some(token)
}

/// The principal behind the request's bearer token, if any.
pub(crate) fn authenticate(headers: &HeaderMap, state: &AppState) -> Option<Principal> {
    let token = bearer_token(headers)?;
    state.principals.find(token).cloned()
}

/// An authenticated caller; extracting it answers 401 when there is no known token.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, AppError> {
        authenticate(&parts.headers, state)
            .map(Caller)
            .ok_or(AppError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::token_hash_hex;
    use axum::http::HeaderValue;
    use fundledger_events::Role;

    fn principal(id: &str, token: &str) -> Principal {
        Principal {
            id: id.to_string(),
            role: Role::Admin,
            unit: None,
            firm: None,
            token_blake3: token_hash_hex(token),
        }
    }

    #[test]
    fn finds_by_hash_only() {
        let principals =
            Principals::new(vec![principal("a", "token-a"), principal("b", "token-b")]).unwrap();
        assert_eq!(principals.find("token-b").map(|p| p.id.as_str()), Some("b"));
        assert_eq!(principals.find("token-a").map(|p| p.id.as_str()), Some("a"));
        assert!(principals.find("token-c").is_none());
        assert!(principals.find(&token_hash_hex("token-a")).is_none());
        assert!(principals.find("").is_none());
    }

    #[test]
    fn bearer_header_forms() {
        let cases = [
            ("Bearer abc", Some("abc")),
            ("bearer   abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("abc", None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&headers), expected, "{value:?}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
