//! Tamper evidence beyond the hash chain: a Merkle tree over the log's record hashes, proofs
//! that a record is in the log and that the log only grew, and signed checkpoints, all in the
//! formats of DESIGN §6 so that an auditor can check them in any language. No IO, no clock:
//! the CLI and the HTTP service read and write the files and pick the sizes.
//!
//! - [`merkle`]: [`MerkleTree`], grown with [`MerkleTree::push`] one record hash at a time
//!   (leaf index = seq − 1), answering [`MerkleTree::root_at`],
//!   [`MerkleTree::inclusion_proof`] and [`MerkleTree::consistency_proof`] for any earlier
//!   size from stored subtree hashes; [`root_naive`] is the RFC 9162 definition, for tests.
//! - [`proof`]: [`InclusionProof`] and [`ConsistencyProof`], the JSON of §6, with
//!   [`verify_inclusion`] and [`verify_consistency`]: the RFC 9162 §2.1.3.2 / §2.1.4.2
//!   verifiers, written apart from the tree code.
//! - [`note`]: [`SigningKey`] and [`VerifierKey`] (C2SP signed-note Ed25519 keys, the strings
//!   of Go's `golang.org/x/mod/sumdb/note`), [`Checkpoint`] with [`Checkpoint::sign`] and
//!   [`open_checkpoint`] (C2SP tlog-checkpoint), and the auditor's [`check_consistent`].
//!
//! Typical use: build the tree from the store's record hashes, then
//! `Checkpoint { origin, size: tree.len(), root: tree.root() }.sign(&key)` to publish, and
//! `open_checkpoint` + `check_consistent` to audit two published checkpoints.

pub mod merkle;
pub mod note;
pub mod proof;

pub use merkle::{empty_root, leaf_hash, node_hash, root_naive, MerkleTree, TreeError};
pub use note::{
    check_consistent, check_included, open_checkpoint, open_note, sign_note, Checkpoint,
    CheckpointError, KeyError, KeyId, NoteError, SigningKey, VerifierKey, WitnessError,
};
pub use proof::{
    verify_consistency, verify_inclusion, ConsistencyProof, InclusionProof, ProofError,
};
