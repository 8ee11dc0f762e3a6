//! Inclusion and consistency proofs as the JSON of DESIGN §6, and their verification by the
//! RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms.
//!
//! The verifiers here follow the RFC's bit-walking algorithms step by step and share nothing
//! with the tree code that builds proofs except the two hash functions, so a bug in one side
//! shows up as a failed verification instead of cancelling out.

use fundledger_events::Hash;
use serde::{Deserialize, Serialize};

use crate::merkle::{leaf_hash, node_hash};

/// An inclusion path has one hash per level, and a `u64` tree has at most 64 levels.
pub const INCLUSION_PATH_MAX: usize = 64;
/// A consistency path is at most one hash per level plus the old subtree; a loose bound that
/// caps the work spent on a hostile proof.
pub const CONSISTENCY_PATH_MAX: usize = 128;

/// The proof that the record with `record_hash` is leaf `leaf_index` (= seq − 1) of the tree
/// of `tree_size` records whose root is `root`. `path` is RFC 9162's inclusion path, leaf end
/// first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub record_hash: Hash,
    pub path: Vec<Hash>,
    pub root: Hash,
}

impl InclusionProof {
    /// RFC 9162 §2.1.3.2 over this proof's own fields.
    pub fn verify(&self) -> Result<(), ProofError> {
        verify_inclusion(
            self.leaf_index,
            self.tree_size,
            &self.record_hash,
            &self.path,
            &self.root,
        )
    }
}

/// The proof that the tree of `old_size` records with root `old_root` is a prefix of the tree
/// of `new_size` records with root `new_root`. `path` is RFC 9162's consistency path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: Hash,
    pub new_root: Hash,
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// RFC 9162 §2.1.4.2 over this proof's own fields.
    pub fn verify(&self) -> Result<(), ProofError> {
        verify_consistency(
            self.old_size,
            self.new_size,
            &self.old_root,
            &self.new_root,
            &self.path,
        )
    }
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {leaf_index} is not below tree size {tree_size}")]
    LeafIndexOutOfRange { leaf_index: u64, tree_size: u64 },
    #[error("the path has {len} hashes, more than the {max} any proof can need")]
    PathTooLong { len: usize, max: usize },
    #[error("the path has the wrong number of hashes for these sizes")]
    WrongPathLength,
    #[error("the computed root {computed} is not the proof's root {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
    #[error("a consistency proof from the empty tree (old size 0) is not defined by RFC 9162")]
    OldSizeZero,
    #[error("old size {old_size} is greater than new size {new_size}: the log would have shrunk")]
    OldSizeExceedsNewSize { old_size: u64, new_size: u64 },
    #[error("old and new sizes are equal, so the path must be empty; it has {len} hashes")]
    EqualSizesNonEmptyPath { len: usize },
    #[error("old and new sizes are equal but the roots differ ({old_root} vs {new_root})")]
    EqualSizesDifferentRoots { old_root: Hash, new_root: Hash },
    #[error("the consistency path is empty, but the sizes differ")]
    EmptyPath,
    #[error("the path rebuilds old root {computed}, not the proof's old root {expected}")]
    OldRootMismatch { expected: Hash, computed: Hash },
    #[error("the path rebuilds new root {computed}, not the proof's new root {expected}")]
    NewRootMismatch { expected: Hash, computed: Hash },
}

/// Right-shifts `fn_` and `sn` together until the low bit of `fn_` is set or `fn_` is 0: the
/// RFC's skip over levels where the node has no right sibling (the tree's ragged right edge).
fn shift_to_set_bit(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// RFC 9162 §2.1.3.2: checks that `record_hash` is leaf `leaf_index` of the tree of
/// `tree_size` leaves with root `root`, given the inclusion `path`.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    record_hash: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1.
    if leaf_index >= tree_size {
        return Err(ProofError::LeafIndexOutOfRange {
            leaf_index,
            tree_size,
        });
    }
    if path.len() > INCLUSION_PATH_MAX {
        return Err(ProofError::PathTooLong {
            len: path.len(),
            max: INCLUSION_PATH_MAX,
        });
    }
    // Steps 2 and 3.
    let mut fn_ = leaf_index;
    let mut sn = tree_size - 1;
    let mut r = leaf_hash(record_hash);
    // Step 4.
    for p in path {
        if sn == 0 {
            return Err(ProofError::WrongPathLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                shift_to_set_bit(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(ProofError::WrongPathLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed: r,
        });
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`, given the consistency `path`.
/// Equal sizes need an empty path and equal roots; old size 0 is refused (RFC 9162 defines no
/// proof from the empty tree).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    path: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 {
        return Err(ProofError::OldSizeZero);
    }
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNewSize { old_size, new_size });
    }
    if path.len() > CONSISTENCY_PATH_MAX {
        return Err(ProofError::PathTooLong {
            len: path.len(),
            max: CONSISTENCY_PATH_MAX,
        });
    }
    if old_size == new_size {
        if !path.is_empty() {
            return Err(ProofError::EqualSizesNonEmptyPath { len: path.len() });
        }
        if old_root != new_root {
            return Err(ProofError::EqualSizesDifferentRoots {
                old_root: *old_root,
                new_root: *new_root,
            });
        }
        return Ok(());
    }
    // Step 1.
    let Some((first_in_path, rest_of_path)) = path.split_first() else {
        return Err(ProofError::EmptyPath);
    };
    // Step 2: when the old tree is a complete subtree of the new one, the proof leaves out its
    // root (the verifier has it), so the walk starts from it.
    let (start, walk) = if old_size.is_power_of_two() {
        (old_root, path)
    } else {
        (first_in_path, rest_of_path)
    };
    // Step 3.
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let mut fr = *start;
    let mut sr = *start;
    // Step 6.
    for c in walk {
        if sn == 0 {
            return Err(ProofError::WrongPathLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                shift_to_set_bit(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(ProofError::WrongPathLength);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            expected: *old_root,
            computed: fr,
        });
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch {
            expected: *new_root,
            computed: sr,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(byte: u8) -> Hash {
        Hash([byte; 32])
    }

    #[test]
    fn inclusion_json_has_the_design_shape() {
        let proof = InclusionProof {
            leaf_index: 2,
            tree_size: 5,
            record_hash: h(1),
            path: vec![h(2)],
            root: h(3),
        };
        let json = serde_json::to_string(&proof).unwrap_or_default();
        let expected = format!(
            r#"{{"leaf_index":2,"tree_size":5,"record_hash":"{}","path":["{}"],"root":"{}"}}"#,
            "01".repeat(32),
            "02".repeat(32),
            "03".repeat(32)
        );
        assert_eq!(json, expected);
        assert_eq!(
            serde_json::from_str::<InclusionProof>(&json).ok(),
            Some(proof)
        );
    }

    #[test]
    fn consistency_json_has_the_design_shape() {
        let proof = ConsistencyProof {
            old_size: 3,
            new_size: 7,
            old_root: h(0xab),
            new_root: h(4),
            path: vec![],
        };
        let json = serde_json::to_string(&proof).unwrap_or_default();
        let expected = format!(
            r#"{{"old_size":3,"new_size":7,"old_root":"{}","new_root":"{}","path":[]}}"#,
            "ab".repeat(32),
            "04".repeat(32)
        );
        assert_eq!(json, expected);
        assert_eq!(
            serde_json::from_str::<ConsistencyProof>(&json).ok(),
            Some(proof)
        );
    }

    #[test]
    fn json_rejects_uppercase_hex_and_unknown_fields() {
        let upper = format!(
            r#"{{"old_size":1,"new_size":1,"old_root":"{0}","new_root":"{0}","path":[]}}"#,
            "AB".repeat(32)
        );
        assert!(serde_json::from_str::<ConsistencyProof>(&upper).is_err());
        let extra = format!(
            r#"{{"old_size":1,"new_size":1,"old_root":"{0}","new_root":"{0}","path":[],"x":1}}"#,
            "ab".repeat(32)
        );
        assert!(serde_json::from_str::<ConsistencyProof>(&extra).is_err());
    }

    #[test]
    fn overlong_paths_are_refused_before_hashing() {
        let path = vec![h(0); INCLUSION_PATH_MAX + 1];
        assert_eq!(
            verify_inclusion(0, u64::MAX, &h(1), &path, &h(2)),
            Err(ProofError::PathTooLong {
                len: INCLUSION_PATH_MAX + 1,
                max: INCLUSION_PATH_MAX
            })
        );
        let path = vec![h(0); CONSISTENCY_PATH_MAX + 1];
        assert_eq!(
            verify_consistency(1, u64::MAX, &h(1), &h(2), &path),
            Err(ProofError::PathTooLong {
                len: CONSISTENCY_PATH_MAX + 1,
                max: CONSISTENCY_PATH_MAX
            })
        );
    }

    #[test]
    fn extreme_sizes_do_not_panic() {
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &h(1), &[h(2)], &h(3)).is_err());
        assert!(verify_consistency(u64::MAX, u64::MAX, &h(1), &h(1), &[]).is_ok());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h(1), &h(2), &[h(3); 64]).is_err());
        assert!(verify_consistency(1 << 63, u64::MAX, &h(1), &h(2), &[h(3); 64]).is_err());
    }
}
