//! The tree against the RFC 9162 definition, and every proof of every small tree against the
//! RFC 9162 verifiers, untouched and altered.

mod common;

use common::{flipped, record_hash, record_hashes, tree};
use fundledger_audit::{
    empty_root, leaf_hash, node_hash, root_naive, verify_consistency, verify_inclusion,
    ConsistencyProof, MerkleTree, ProofError, TreeError,
};
use fundledger_events::Hash;
use proptest::prelude::*;

const SIZE_MAX: u64 = 64;

/// The directions of RFC 9162's PATH(m, D[n]) from the root down: `true` where the sibling is on
/// the right. Straight from the recursive definition, for telling which altered sizes give a
/// proof of the same shape.
fn inclusion_shape(m: u64, n: u64) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    let mut shape = Vec::new();
    if m < k {
        shape.push(true);
        shape.extend(inclusion_shape(m, k));
    } else {
        shape.push(false);
        shape.extend(inclusion_shape(m - k, n - k));
    }
    shape
}

/// One step of RFC 9162's SUBPROOF(m, D[n], b), from the root down.
#[derive(Debug, PartialEq, Eq)]
enum ConsistencyStep {
    /// The path holds a right sibling: it joins the new root only.
    Right,
    /// The path holds a left sibling: it joins both the old and the new root.
    Left,
    /// The walk starts from the old root itself, left out of the path.
    StartFromOldRoot,
    /// The walk starts from a subtree hash sent in the path.
    StartFromPath,
}

/// The steps of SUBPROOF(m, D[n], true), straight from the recursive definition, for telling
/// which altered sizes give a proof of the same shape; `None` where no proof is defined.
fn consistency_shape(m: u64, n: u64) -> Option<Vec<ConsistencyStep>> {
    fn subproof(m: u64, n: u64, whole_old_tree: bool, steps: &mut Vec<ConsistencyStep>) {
        if m == n {
            steps.push(if whole_old_tree {
                ConsistencyStep::StartFromOldRoot
            } else {
                ConsistencyStep::StartFromPath
            });
            return;
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m <= k {
            steps.push(ConsistencyStep::Right);
            subproof(m, k, whole_old_tree, steps);
        } else {
            steps.push(ConsistencyStep::Left);
            subproof(m - k, n - k, false, steps);
        }
    }
    if m == 0 || m > n {
        return None;
    }
    let mut steps = Vec::new();
    subproof(m, n, true, &mut steps);
    Some(steps)
}

#[test]
fn empty_tree_root_is_blake3_of_nothing() {
    let tree = MerkleTree::new();
    assert_eq!(tree.root(), Hash(*blake3::hash(b"").as_bytes()));
    assert_eq!(tree.root(), empty_root());
    assert_eq!(root_naive(&[]), empty_root());
    assert_eq!(tree.root_at(0), Ok(empty_root()));
}

#[test]
fn hash_functions_match_an_independent_computation() {
    let record = record_hash(1);
    let mut leaf_input = vec![0x00];
    leaf_input.extend_from_slice(&record.0);
    assert_eq!(leaf_hash(&record).0, *blake3::hash(&leaf_input).as_bytes());

    let (left, right) = (record_hash(2), record_hash(3));
    let mut node_input = vec![0x01];
    node_input.extend_from_slice(&left.0);
    node_input.extend_from_slice(&right.0);
    assert_eq!(
        node_hash(&left, &right).0,
        *blake3::hash(&node_input).as_bytes()
    );
}

#[test]
fn every_size_up_to_64_matches_the_naive_root() {
    let hashes = record_hashes(SIZE_MAX);
    for n in 1..=SIZE_MAX {
        let tree: MerkleTree = hashes[..n as usize].iter().copied().collect();
        assert_eq!(tree.len(), n);
        assert_eq!(tree.root(), root_naive(&hashes[..n as usize]), "size {n}");
    }
}

#[test]
fn root_at_every_earlier_size_matches_the_naive_root() {
    let hashes = record_hashes(SIZE_MAX);
    let tree = tree(SIZE_MAX);
    for size in 0..=SIZE_MAX {
        assert_eq!(
            tree.root_at(size),
            Ok(root_naive(&hashes[..size as usize])),
            "size {size}"
        );
    }
    assert_eq!(
        tree.root_at(SIZE_MAX + 1),
        Err(TreeError::SizeBeyondTree {
            size: SIZE_MAX + 1,
            len: SIZE_MAX
        })
    );
}

#[test]
fn a_grown_tree_equals_a_tree_built_at_once() {
    let mut grown = MerkleTree::new();
    for seq in 1..=SIZE_MAX {
        grown.push(record_hash(seq));
        assert_eq!(grown, tree(seq));
        assert_eq!(grown.record_hash(seq - 1), Some(record_hash(seq)));
    }
    assert_eq!(grown.record_hash(SIZE_MAX), None);
}

#[test]
fn every_inclusion_proof_verifies_and_fails_when_altered() {
    // One record more than the largest size, so the altered size n + 1 has a real root too.
    let tree = tree(SIZE_MAX + 1);
    let mut checked = 0;
    for n in 1..=SIZE_MAX {
        let root = tree.root_at(n).unwrap();
        for m in 0..n {
            let proof = tree.inclusion_proof(m, n).unwrap();
            assert_eq!((proof.leaf_index, proof.tree_size), (m, n));
            assert_eq!(proof.record_hash, record_hash(m + 1));
            assert_eq!(proof.root, root);
            assert_eq!(proof.path.len(), inclusion_shape(m, n).len());
            assert_eq!(proof.verify(), Ok(()), "leaf {m} of {n}");

            for i in 0..proof.path.len() {
                let mut altered = proof.clone();
                altered.path[i] = flipped(&altered.path[i]);
                assert!(
                    altered.verify().is_err(),
                    "path[{i}] altered, leaf {m} of {n}"
                );
            }
            let mut longer = proof.clone();
            longer.path.push(root);
            assert!(longer.verify().is_err(), "path extended, leaf {m} of {n}");
            if !proof.path.is_empty() {
                let mut shorter = proof.clone();
                shorter.path.pop();
                assert!(shorter.verify().is_err(), "path truncated, leaf {m} of {n}");
            }
            for other in (0..n + 2).filter(|&other| other != m) {
                let mut altered = proof.clone();
                altered.leaf_index = other;
                assert!(altered.verify().is_err(), "index {m} -> {other} of {n}");
            }
            let mut altered = proof.clone();
            altered.record_hash = flipped(&proof.record_hash);
            assert!(
                altered.verify().is_err(),
                "record hash altered, leaf {m} of {n}"
            );
            let mut altered = proof.clone();
            altered.root = flipped(&proof.root);
            assert!(matches!(
                altered.verify(),
                Err(ProofError::RootMismatch { .. })
            ));

            for other_size in [n - 1, n + 1, n * 2]
                .into_iter()
                .filter(|&s| s != n && s > 0)
            {
                // With the true root of the other size (what a verifier holding a checkpoint
                // of that size would use) the proof must always fail.
                if other_size <= tree.len() {
                    let mut altered = proof.clone();
                    altered.tree_size = other_size;
                    altered.root = tree.root_at(other_size).unwrap();
                    assert!(
                        altered.verify().is_err(),
                        "size {n} -> {other_size} with its root, leaf {m}"
                    );
                }
                // With the root left alone, only a size whose path has the very same shape
                // can pass: the verifier walks the same nodes to the same root.
                let mut altered = proof.clone();
                altered.tree_size = other_size;
                let same_shape =
                    m < other_size && inclusion_shape(m, other_size) == inclusion_shape(m, n);
                assert_eq!(
                    altered.verify().is_ok(),
                    same_shape,
                    "size {n} -> {other_size} alone, leaf {m}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, SIZE_MAX * (SIZE_MAX + 1) / 2);
}

#[test]
fn every_consistency_proof_verifies_and_fails_when_altered() {
    let tree = tree(SIZE_MAX + 1);
    let mut checked = 0;
    for n in 1..=SIZE_MAX {
        for m in 1..=n {
            let proof = tree.consistency_proof(m, n).unwrap();
            assert_eq!((proof.old_size, proof.new_size), (m, n));
            assert_eq!(proof.old_root, tree.root_at(m).unwrap());
            assert_eq!(proof.new_root, tree.root_at(n).unwrap());
            assert_eq!(proof.verify(), Ok(()), "{m} -> {n}");
            if m == n {
                assert!(proof.path.is_empty());
            }

            for i in 0..proof.path.len() {
                let mut altered = proof.clone();
                altered.path[i] = flipped(&altered.path[i]);
                assert!(altered.verify().is_err(), "path[{i}] altered, {m} -> {n}");
            }
            let mut longer = proof.clone();
            longer.path.push(proof.new_root);
            assert!(longer.verify().is_err(), "path extended, {m} -> {n}");
            if !proof.path.is_empty() {
                let mut shorter = proof.clone();
                shorter.path.pop();
                assert!(shorter.verify().is_err(), "path truncated, {m} -> {n}");
            }
            let mut altered = proof.clone();
            altered.old_root = flipped(&proof.old_root);
            assert!(altered.verify().is_err(), "old root altered, {m} -> {n}");
            let mut altered = proof.clone();
            altered.new_root = flipped(&proof.new_root);
            assert!(altered.verify().is_err(), "new root altered, {m} -> {n}");

            let mut sizes = vec![
                (m - 1, n),
                (m + 1, n),
                (m, n + 1),
                (m, n - 1),
                (m + 1, n + 1),
            ];
            sizes.retain(|&(old, new)| (old, new) != (m, n) && old >= 1 && new <= tree.len());
            for (old, new) in sizes {
                // Other sizes with their true roots: the path is for other trees, so it fails,
                // except where the claim needs no path at all (equal sizes, equal roots).
                let mut altered = proof.clone();
                (altered.old_size, altered.new_size) = (old, new);
                altered.old_root = tree.root_at(old).unwrap();
                altered.new_root = tree.root_at(new).unwrap();
                let trivially_true = old == new && proof.path.is_empty();
                assert_eq!(
                    altered.verify().is_ok(),
                    trivially_true,
                    "{m} -> {n} claimed as {old} -> {new} with their roots"
                );
                // With the roots left alone, only sizes whose proof has the very same shape can
                // pass: an RFC 9162 root does not commit to its size, which is why the sizes
                // and roots must come together from signed checkpoints (`check_consistent`).
                let mut altered = proof.clone();
                (altered.old_size, altered.new_size) = (old, new);
                let same_shape = consistency_shape(old, new) == consistency_shape(m, n);
                assert_eq!(
                    altered.verify().is_ok(),
                    same_shape,
                    "{m} -> {n} claimed as {old} -> {new}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, SIZE_MAX * (SIZE_MAX + 1) / 2);
}

#[test]
fn a_prefix_from_another_history_is_not_consistent() {
    let honest = tree(40);
    let mut hashes = record_hashes(40);
    hashes[16] = flipped(&hashes[16]);
    let forked: MerkleTree = hashes.into_iter().collect();
    let proof = forked.consistency_proof(20, 40).unwrap();
    assert!(proof.verify().is_ok());
    // The forked log's proof against the honest old root: rejected.
    let result = verify_consistency(
        20,
        40,
        &honest.root_at(20).unwrap(),
        &proof.new_root,
        &proof.path,
    );
    assert!(
        matches!(result, Err(ProofError::OldRootMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let tree = tree(10);
    assert_eq!(
        tree.inclusion_proof(10, 10),
        Err(TreeError::LeafIndexOutOfRange {
            leaf_index: 10,
            tree_size: 10
        })
    );
    assert_eq!(
        tree.inclusion_proof(3, 3),
        Err(TreeError::LeafIndexOutOfRange {
            leaf_index: 3,
            tree_size: 3
        })
    );
    assert_eq!(
        tree.inclusion_proof(0, 0),
        Err(TreeError::LeafIndexOutOfRange {
            leaf_index: 0,
            tree_size: 0
        })
    );
    assert_eq!(
        tree.inclusion_proof(0, 11),
        Err(TreeError::SizeBeyondTree { size: 11, len: 10 })
    );
    assert_eq!(
        tree.inclusion_proof(u64::MAX, u64::MAX),
        Err(TreeError::SizeBeyondTree {
            size: u64::MAX,
            len: 10
        })
    );
    assert_eq!(tree.consistency_proof(0, 5), Err(TreeError::OldSizeZero));
    assert_eq!(tree.consistency_proof(0, 0), Err(TreeError::OldSizeZero));
    assert_eq!(
        tree.consistency_proof(6, 5),
        Err(TreeError::OldSizeExceedsNewSize {
            old_size: 6,
            new_size: 5
        })
    );
    assert_eq!(
        tree.consistency_proof(5, 11),
        Err(TreeError::SizeBeyondTree { size: 11, len: 10 })
    );
    assert_eq!(
        tree.root_at(u64::MAX),
        Err(TreeError::SizeBeyondTree {
            size: u64::MAX,
            len: 10
        })
    );
    let empty = MerkleTree::new();
    assert_eq!(
        empty.inclusion_proof(0, 0),
        Err(TreeError::LeafIndexOutOfRange {
            leaf_index: 0,
            tree_size: 0
        })
    );
    assert_eq!(
        empty.consistency_proof(1, 1),
        Err(TreeError::SizeBeyondTree { size: 1, len: 0 })
    );
}

#[test]
fn verifiers_refuse_undefined_requests() {
    let h = record_hash(1);
    assert_eq!(
        verify_inclusion(5, 5, &h, &[], &h),
        Err(ProofError::LeafIndexOutOfRange {
            leaf_index: 5,
            tree_size: 5
        })
    );
    assert_eq!(
        verify_inclusion(0, 0, &h, &[], &h),
        Err(ProofError::LeafIndexOutOfRange {
            leaf_index: 0,
            tree_size: 0
        })
    );
    assert_eq!(
        verify_consistency(0, 3, &h, &h, &[h]),
        Err(ProofError::OldSizeZero)
    );
    assert_eq!(
        verify_consistency(4, 3, &h, &h, &[h]),
        Err(ProofError::OldSizeExceedsNewSize {
            old_size: 4,
            new_size: 3
        })
    );
    assert_eq!(
        verify_consistency(3, 4, &h, &h, &[]),
        Err(ProofError::EmptyPath)
    );
    assert_eq!(
        verify_consistency(3, 3, &h, &h, &[h]),
        Err(ProofError::EqualSizesNonEmptyPath { len: 1 })
    );
    let other = flipped(&h);
    assert_eq!(
        verify_consistency(3, 3, &h, &other, &[]),
        Err(ProofError::EqualSizesDifferentRoots {
            old_root: h,
            new_root: other
        })
    );
}

#[test]
fn single_leaf_proofs() {
    let tree = tree(1);
    let inclusion = tree.inclusion_proof(0, 1).unwrap();
    assert!(inclusion.path.is_empty());
    assert_eq!(inclusion.root, leaf_hash(&record_hash(1)));
    assert_eq!(inclusion.verify(), Ok(()));
    let consistency = tree.consistency_proof(1, 1).unwrap();
    assert_eq!(
        consistency,
        ConsistencyProof {
            old_size: 1,
            new_size: 1,
            old_root: inclusion.root,
            new_root: inclusion.root,
            path: vec![]
        }
    );
    assert_eq!(consistency.verify(), Ok(()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_up_to_a_few_thousand(
        n in 1u64..4000,
        leaf_fraction in 0.0f64..1.0,
        old_fraction in 0.0f64..1.0,
        flip_at in 0usize..64,
    ) {
        let hashes = record_hashes(n);
        let tree: MerkleTree = hashes.iter().copied().collect();
        prop_assert_eq!(tree.root(), root_naive(&hashes));

        let m = ((n as f64 * leaf_fraction) as u64).min(n - 1);
        let size = m + 1 + ((n - m - 1) as f64 * old_fraction) as u64;
        prop_assert_eq!(tree.root_at(size).unwrap(), root_naive(&hashes[..size as usize]));
        let inclusion = tree.inclusion_proof(m, size).unwrap();
        prop_assert_eq!(inclusion.verify(), Ok(()));
        if !inclusion.path.is_empty() {
            let mut altered = inclusion.clone();
            let i = flip_at % altered.path.len();
            altered.path[i] = flipped(&altered.path[i]);
            prop_assert!(altered.verify().is_err());
        }

        let old = 1 + ((n - 1) as f64 * old_fraction) as u64;
        let consistency = tree.consistency_proof(old, n).unwrap();
        prop_assert_eq!(consistency.old_root, root_naive(&hashes[..old as usize]));
        prop_assert_eq!(consistency.verify(), Ok(()));
        if !consistency.path.is_empty() {
            let mut altered = consistency.clone();
            let i = flip_at % altered.path.len();
            altered.path[i] = flipped(&altered.path[i]);
            prop_assert!(altered.verify().is_err());
        }
    }
}
