//! The Merkle tree of DESIGN §6 over the record hashes, in seq order: the RFC 9162 §2.1 shape
//! with plain BLAKE3 as the hash.
//!
//! ```text
//! leaf  = BLAKE3(0x00 ‖ record_hash)
//! node  = BLAKE3(0x01 ‖ left ‖ right)
//! empty = BLAKE3("")
//! MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k = the largest power of two < n
//! ```
//!
//! [`MerkleTree`] grows one record at a time and keeps every complete, aligned subtree hash, so
//! the root of any earlier size and the proofs between any two sizes come from stored hashes in
//! O(log n) lookups, without rebuilding anything.

use fundledger_events::Hash;

use crate::proof::{ConsistencyProof, InclusionProof};

/// Domain-separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// A tree size is a `u64` in the proofs; more levels than this cannot exist.
const LEVELS_MAX: usize = 64;

/// `BLAKE3(0x00 ‖ record_hash)`: the leaf of one record.
pub fn leaf_hash(record_hash: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_PREFIX]);
    hasher.update(&record_hash.0);
    Hash(*hasher.finalize().as_bytes())
}

/// `BLAKE3(0x01 ‖ left ‖ right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[NODE_PREFIX]);
    hasher.update(&left.0);
    hasher.update(&right.0);
    Hash(*hasher.finalize().as_bytes())
}

/// `BLAKE3("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    Hash(*blake3::hash(b"").as_bytes())
}

/// The largest power of two strictly below `n`; the RFC 9162 split point. Needs `n >= 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2, "a tree of {n} leaves has no split");
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of `record_hashes` by the recursive definition of RFC 9162 §2.1.1, straight from
/// the text. O(n) hashing and O(log n) recursion depth: a reference for tests, not for use.
pub fn root_naive(record_hashes: &[Hash]) -> Hash {
    match record_hashes {
        [] => empty_root(),
        [only] => leaf_hash(only),
        _ => {
            // A slice length always fits in u64, and the split is below it, so fits back.
            let k = split_point(record_hashes.len() as u64) as usize;
            node_hash(
                &root_naive(&record_hashes[..k]),
                &root_naive(&record_hashes[k..]),
            )
        }
    }
}

/// Why the tree cannot answer a request. Requests name sizes and indices the caller chose, so
/// every one is checked and none panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("tree size {size} is beyond the {len} records in the tree")]
    SizeBeyondTree { size: u64, len: u64 },
    #[error("leaf index {leaf_index} is not below tree size {tree_size}")]
    LeafIndexOutOfRange { leaf_index: u64, tree_size: u64 },
    #[error("old size {old_size} is greater than new size {new_size}")]
    OldSizeExceedsNewSize { old_size: u64, new_size: u64 },
    #[error("a consistency proof from the empty tree (old size 0) is not defined by RFC 9162")]
    OldSizeZero,
}

/// An append-only Merkle tree over record hashes, kept incrementally.
///
/// `levels[0]` holds the record hashes themselves (the leaf preimages; each leaf hash is one
/// BLAKE3 call away), and `levels[k]` for k ≥ 1 holds the node hash of every complete block
/// of 2^k leaves aligned at a multiple of 2^k. Keeping the record hashes rather than the leaf
/// hashes at level 0 lets an inclusion proof carry its `record_hash` at no extra memory: the
/// whole tree costs about 2 × 32 bytes per record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// The empty tree.
    pub fn new() -> MerkleTree {
        MerkleTree {
            levels: vec![Vec::new()],
        }
    }

    /// The number of records (leaves) in the tree.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record hash at `leaf_index` (= seq − 1), if the tree holds it.
    pub fn record_hash(&self, leaf_index: u64) -> Option<Hash> {
        let index = usize::try_from(leaf_index).ok()?;
        self.levels.first()?.get(index).copied()
    }

    /// Appends the next record's hash. Amortised O(1) hashing: each push completes on average
    /// one aligned block above the leaves.
    pub fn push(&mut self, record_hash: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(record_hash);
        // Every time a level gains its even-numbered entry, a block one level up is complete.
        let mut level = 0;
        while self.levels[level].len() & 1 == 0 {
            let count = self.levels[level].len();
            let left = self.subtree(level, count - 2);
            let right = self.subtree(level, count - 1);
            let parent = node_hash(&left, &right);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
        debug_assert!(self.levels.len() <= LEVELS_MAX + 1);
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        let len = self.len();
        if len == 0 {
            empty_root()
        } else {
            self.range_hash(0, len)
        }
    }

    /// The root the tree had when it held `size` records. O(log n).
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.range_hash(0, size))
    }

    /// The RFC 9162 §2.1.3.1 inclusion proof of leaf `leaf_index` in the tree of `tree_size`.
    pub fn inclusion_proof(
        &self,
        leaf_index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, TreeError> {
        self.check_size(tree_size)?;
        if leaf_index >= tree_size {
            return Err(TreeError::LeafIndexOutOfRange {
                leaf_index,
                tree_size,
            });
        }
        let record_hash = self
            .record_hash(leaf_index)
            .ok_or(TreeError::LeafIndexOutOfRange {
                leaf_index,
                tree_size,
            })?;
        // PATH(m, D[lo:hi]) walked from the root down; RFC order is leaf first, so reverse.
        let mut path = Vec::new();
        let (mut lo, mut hi) = (0u64, tree_size);
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if leaf_index < lo + k {
                path.push(self.range_hash(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.range_hash(lo, lo + k));
                lo += k;
            }
        }
        path.reverse();
        let root = self.range_hash(0, tree_size);
        let proof = InclusionProof {
            leaf_index,
            tree_size,
            record_hash,
            path,
            root,
        };
        // The other side of the boundary: the independent verifier must accept what we send.
        debug_assert_eq!(
            proof.verify(),
            Ok(()),
            "inclusion proof {leaf_index} of {tree_size}"
        );
        Ok(proof)
    }

    /// The RFC 9162 §2.1.4.1 consistency proof from the tree of `old_size` to that of
    /// `new_size`. Equal sizes give an empty path; old size 0 is refused (undefined in RFC 9162).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, TreeError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(TreeError::OldSizeExceedsNewSize { old_size, new_size });
        }
        if old_size == 0 {
            return Err(TreeError::OldSizeZero);
        }
        // SUBPROOF(m, D[lo:hi], b) walked from the root down, then reversed into RFC order.
        let mut path = Vec::new();
        let (mut lo, mut hi) = (0u64, new_size);
        let mut whole_old_tree = true;
        loop {
            if old_size == hi {
                // D[lo:hi] ends where the old tree ends, so it is a node of both trees. When
                // it is the whole old tree (b = true) the verifier holds it as the old root;
                // otherwise it has to be sent.
                if !whole_old_tree {
                    path.push(self.range_hash(lo, hi));
                }
                break;
            }
            let k = split_point(hi - lo);
            if old_size <= lo + k {
                path.push(self.range_hash(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.range_hash(lo, lo + k));
                lo += k;
                whole_old_tree = false;
            }
        }
        path.reverse();
        let proof = ConsistencyProof {
            old_size,
            new_size,
            old_root: self.range_hash(0, old_size),
            new_root: self.range_hash(0, new_size),
            path,
        };
        // The other side of the boundary: the independent verifier must accept what we send.
        debug_assert_eq!(
            proof.verify(),
            Ok(()),
            "consistency proof {old_size} -> {new_size}"
        );
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        let len = self.len();
        if size > len {
            return Err(TreeError::SizeBeyondTree { size, len });
        }
        Ok(())
    }

    /// The stored hash of the complete aligned block at `level`, `index` (its first leaf is
    /// `index << level`). Level 0 stores record hashes, so its hash is derived here.
    fn subtree(&self, level: usize, index: usize) -> Hash {
        let stored = self.levels[level][index];
        if level == 0 {
            leaf_hash(&stored)
        } else {
            stored
        }
    }

    /// MTH(D[start:end]) for a range that occurs in the RFC 9162 recursion: `start` is a
    /// multiple of a power of two at least `end - start` (the whole tree starts at 0). Such a
    /// range splits into the complete aligned blocks of the binary digits of its length, largest
    /// first, and its MTH is those blocks folded from the right. O(log n).
    fn range_hash(&self, start: u64, end: u64) -> Hash {
        debug_assert!(
            start < end && end <= self.len(),
            "range {start}..{end} outside the tree"
        );
        debug_assert!(
            start == 0 || (end - start).next_power_of_two() <= 1u64 << start.trailing_zeros(),
            "range {start}..{end} is not one the RFC 9162 recursion produces"
        );
        // At most one block per level, so a fixed array bounds the work.
        let mut blocks = [Hash::ZERO; LEVELS_MAX];
        let mut count = 0;
        let mut position = start;
        while position < end {
            let remaining = end - position;
            let level = 63 - remaining.leading_zeros();
            // Index and level fit in usize: the block is stored, so its index is below a Vec len.
            blocks[count] = self.subtree(level as usize, (position >> level) as usize);
            count += 1;
            position += 1u64 << level;
        }
        let mut hash = blocks[count - 1];
        for block in blocks[..count - 1].iter().rev() {
            hash = node_hash(block, &hash);
        }
        hash
    }
}

impl Default for MerkleTree {
    fn default() -> MerkleTree {
        MerkleTree::new()
    }
}

impl FromIterator<Hash> for MerkleTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(record_hashes: I) -> MerkleTree {
        let mut tree = MerkleTree::new();
        tree.extend(record_hashes);
        tree
    }
}

impl Extend<Hash> for MerkleTree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, record_hashes: I) {
        for record_hash in record_hashes {
            self.push(record_hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(n: u64) -> Vec<Hash> {
        (1..=n)
            .map(|seq| Hash(*blake3::hash(seq.to_string().as_bytes()).as_bytes()))
            .collect()
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
            (u64::MAX, 1 << 63),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn levels_hold_about_two_hashes_per_leaf() {
        let tree: MerkleTree = hashes(1000).into_iter().collect();
        let stored: usize = tree.levels.iter().map(Vec::len).sum();
        assert!(stored < 2 * 1000, "{stored} hashes stored for 1000 leaves");
        assert_eq!(tree.levels[1].len(), 500);
        assert_eq!(tree.levels[9].len(), 1);
    }

    #[test]
    fn small_roots_by_hand() {
        let h = hashes(3);
        let (l0, l1, l2) = (leaf_hash(&h[0]), leaf_hash(&h[1]), leaf_hash(&h[2]));
        let tree: MerkleTree = h.iter().copied().collect();
        assert_eq!(tree.root_at(0), Ok(empty_root()));
        assert_eq!(tree.root_at(1), Ok(l0));
        assert_eq!(tree.root_at(2), Ok(node_hash(&l0, &l1)));
        assert_eq!(tree.root_at(3), Ok(node_hash(&node_hash(&l0, &l1), &l2)));
        assert_eq!(
            tree.root_at(4),
            Err(TreeError::SizeBeyondTree { size: 4, len: 3 })
        );
    }

    #[test]
    fn default_tree_is_usable() {
        let mut tree = MerkleTree::default();
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
        tree.push(Hash::ZERO);
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.root(), leaf_hash(&Hash::ZERO));
    }
}
