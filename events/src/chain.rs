//! The hash chain of DESIGN §5: genesis from the ledger's origin, each record's hash over the
//! previous hash and the canonical bytes of its body, and the record as stored and exported.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use blake3::hazmat::HasherExt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::jcs;

/// BLAKE3 key-derivation context of the genesis value.
pub const GENESIS_CONTEXT: &str = "fundledger genesis v1";
/// BLAKE3 key-derivation context of every record hash.
pub const EVENT_CONTEXT: &str = "fundledger event v1";

/// A 32-byte BLAKE3 output, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// Why a string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 64 lowercase hex digits; got {0:?}")]
pub struct HashParseError(pub String);

impl FromStr for Hash {
    type Err = HashParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        crate::export::lowercase_hash(text.as_bytes()).ok_or_else(|| {
            let shown: String = text.chars().take(80).collect();
            HashParseError(shown)
        })
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<blake3::Hash> for Hash {
    fn from(hash: blake3::Hash) -> Self {
        Hash(*hash.as_bytes())
    }
}

/// `prev[1]`: BLAKE3.derive_key("fundledger genesis v1", utf8(origin)).
pub fn genesis(origin: &str) -> Hash {
    Hash(blake3::derive_key(GENESIS_CONTEXT, origin.as_bytes()))
}

/// The key BLAKE3 derives from [`EVENT_CONTEXT`], derived once: `derive_key` would hash the
/// context string again for every record.
static EVENT_CONTEXT_KEY: LazyLock<blake3::hazmat::ContextKey> =
    LazyLock::new(|| blake3::hazmat::hash_derive_key_context(EVENT_CONTEXT));

/// The BLAKE3 key of [`EVENT_CONTEXT`].
pub(crate) fn event_context_key() -> &'static blake3::hazmat::ContextKey {
    &EVENT_CONTEXT_KEY
}

/// `hash[n]`: BLAKE3.derive_key("fundledger event v1", prev ‖ canonical_body).
pub fn record_hash(prev: &Hash, canonical_body: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new_from_context_key(event_context_key());
    hasher.update(&prev.0);
    hasher.update(canonical_body);
    Hash(*hasher.finalize().as_bytes())
}

/// The position the next record will hang from: the last `seq` (0 for an empty ledger) and its
/// hash (the genesis value for an empty ledger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

impl Head {
    /// The head of an empty ledger named `origin`.
    pub fn empty(origin: &str) -> Head {
        Head {
            seq: 0,
            hash: genesis(origin),
        }
    }
}

/// One record of the log: `(seq, prev, hash, body)`, exactly the export line of DESIGN §5.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    pub prev: Hash,
    pub hash: Hash,
    pub body: Value,
}

impl Record {
    /// Chains `body` onto `head`: the body's `seq` must be `head.seq + 1`.
    pub fn seal(head: &Head, body: Value) -> Result<Record, BodyError> {
        let seq = head.seq + 1;
        check_body(&body, seq)?;
        let hash = record_hash(&head.hash, &jcs::canonicalize(&body));
        Ok(Record {
            seq,
            prev: head.hash,
            hash,
            body,
        })
    }

    /// The head this record leaves behind.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// The hash this record ought to have, from its `prev` and body.
    pub fn computed_hash(&self) -> Hash {
        record_hash(&self.prev, &jcs::canonicalize(&self.body))
    }
}

/// Chains a batch of bodies onto `head`, in order.
pub fn seal_batch(head: &Head, bodies: Vec<Value>) -> Result<Vec<Record>, BodyError> {
    let mut current = *head;
    let mut records = Vec::with_capacity(bodies.len());
    for body in bodies {
        let record = Record::seal(&current, body)?;
        current = record.head();
        records.push(record);
    }
    Ok(records)
}

/// Why a body does not meet DESIGN §5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("the body has no `{0}` field")]
    Missing(&'static str),
    #[error("the body's `{field}` is not {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("the body's seq is {found}, but the record's seq is {expected}")]
    SeqMismatch { expected: u64, found: u64 },
    #[error("the body's recorded_at {0:?} is not an RFC 3339 timestamp")]
    BadTimestamp(String),
}

/// Checks the fields DESIGN §5 requires of every body: `seq` (equal to `expected_seq`), `type`,
/// `recorded_at` (RFC 3339), `command_id` and `actor`. Everything else is the event's own.
pub fn check_body(body: &Value, expected_seq: u64) -> Result<(), BodyError> {
    let object = body.as_object().ok_or(BodyError::NotAnObject)?;
    let field = |name: &'static str| object.get(name).ok_or(BodyError::Missing(name));
    let seq = field("seq")?.as_u64().ok_or(BodyError::WrongType {
        field: "seq",
        expected: "a non-negative integer",
    })?;
    if seq != expected_seq {
        return Err(BodyError::SeqMismatch {
            expected: expected_seq,
            found: seq,
        });
    }
    field("type")?.as_str().ok_or(BodyError::WrongType {
        field: "type",
        expected: "a string",
    })?;
    let recorded_at = field("recorded_at")?.as_str().ok_or(BodyError::WrongType {
        field: "recorded_at",
        expected: "a string",
    })?;
    if chrono::DateTime::parse_from_rfc3339(recorded_at).is_err() {
        return Err(BodyError::BadTimestamp(
            recorded_at.chars().take(64).collect(),
        ));
    }
    field("command_id")?;
    field("actor")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_hash_is_blake3_derive_key_over_prev_and_body() {
        let prev = genesis("fundledger.example/unit");
        for body in [&b""[..], b"{}", &[b'x'; 1500]] {
            let mut material = prev.0.to_vec();
            material.extend_from_slice(body);
            assert_eq!(
                record_hash(&prev, body).0,
                blake3::derive_key(EVENT_CONTEXT, &material),
                "body of {} bytes",
                body.len()
            );
        }
    }
}
