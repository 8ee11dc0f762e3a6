//! Helpers shared by the integration tests.
#![allow(dead_code)]

use fundledger_audit::MerkleTree;
use fundledger_events::Hash;

/// The test record hash of `seq`: BLAKE3 of its decimal string, as in the committed vectors.
pub fn record_hash(seq: u64) -> Hash {
    Hash(*blake3::hash(seq.to_string().as_bytes()).as_bytes())
}

/// The record hashes of seq 1..=n.
pub fn record_hashes(n: u64) -> Vec<Hash> {
    (1..=n).map(record_hash).collect()
}

/// A tree of seq 1..=n.
pub fn tree(n: u64) -> MerkleTree {
    record_hashes(n).into_iter().collect()
}

/// `hash` with one bit flipped.
pub fn flipped(hash: &Hash) -> Hash {
    let mut bytes = hash.0;
    bytes[7] ^= 0x20;
    Hash(bytes)
}
