//! The vocabulary of fundledger, and the hash chain that binds it. No IO, no clock.
//!
//! - [`jcs`] turns a JSON value into its RFC 8785 canonical bytes, the bytes that are hashed,
//!   and recognises text that already is canonical.
//! - [`chain`] holds [`Hash`], [`genesis`], [`record_hash`], [`Head`] and [`Record`]: the
//!   `(seq, prev, hash, body)` of DESIGN §5, and sealing bodies onto a head.
//! - [`export`] writes and checks the JSON Lines export; [`ChainVerifier`] verifies any export
//!   that meets §5 one line at a time, without knowing our event types; [`precheck_line`]
//!   does the per-line part of that check (the hash included) on borrowed text, so callers
//!   can spread it over threads and link the lines in order afterwards.
//! - [`lanes`] computes BLAKE3 (record hashes, Merkle leaves and nodes) of many short inputs
//!   at once, eight to a SIMD register, for verifiers.
//! - [`event`] is the vocabulary: [`EventBody`] (envelope + [`Event`]), [`Actor`], [`Role`].

pub mod chain;
pub mod event;
pub mod export;
pub mod jcs;
pub mod lanes;

pub use chain::{genesis, record_hash, seal_batch, BodyError, Hash, HashParseError, Head, Record};
pub use event::{Actor, ApplicationFacts, Event, EventBody, Firm, Role, SchemaError};
pub use export::{
    parse_header, precheck_line, precheck_lines, record_line, ChainVerifier, ExportHeader,
    LineDigest, PrecheckedLine, Prechecker, VerifyError,
};
