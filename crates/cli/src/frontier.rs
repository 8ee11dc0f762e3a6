//! The Merkle root of DESIGN §6 in O(log n) memory, for commands that stream the log once and
//! need only roots: `verify` and `checkpoint`.
//!
//! `fundledger_audit::MerkleTree` keeps about 64 bytes per record so it can answer proofs for
//! any size; that is O(n), and `verify` must stay constant-memory on logs of millions of
//! records. The root of n leaves is the fold, from the right, of the complete aligned subtrees
//! given by the binary digits of n (RFC 9162 §2.1.1 unrolled), so keeping one subtree hash per
//! set bit of n — at most 64 — is enough. The hash functions are the audit crate's; the tests
//! check every size against `MerkleTree`.

use fundledger_audit::{empty_root, leaf_hash, node_hash};
use fundledger_events::Hash;

/// The right edge of a Merkle tree under construction: the root of each complete aligned
/// subtree, largest (leftmost) first.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    /// `(level, hash)`: a complete subtree of 2^level leaves. Levels strictly decrease.
    subtrees: Vec<(u32, Hash)>,
    len: u64,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The number of leaves pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends the next record's hash (its leaf is `BLAKE3(0x00 ‖ record_hash)`).
    pub fn push(&mut self, record_hash: &Hash) {
        self.push_subtree(0, leaf_hash(record_hash));
    }

    /// Appends the next 2^`level` records at once, given the root of their complete subtree
    /// (computed elsewhere, e.g. on other threads). The subtree must be aligned: the leaves
    /// pushed so far are a multiple of 2^`level`.
    pub fn push_subtree(&mut self, level: u32, root: Hash) {
        debug_assert_eq!(self.len % (1u64 << level), 0, "an unaligned subtree");
        let mut carry_level = level;
        let mut hash = root;
        // Two complete subtrees of the same size side by side make one of the next size, the
        // binary carry of len + 2^level.
        while let Some(&(top_level, top_hash)) = self.subtrees.last() {
            if top_level != carry_level {
                break;
            }
            self.subtrees.pop();
            hash = node_hash(&top_hash, &hash);
            carry_level += 1;
        }
        self.subtrees.push((carry_level, hash));
        self.len += 1u64 << level;
        debug_assert_eq!(self.subtrees.len(), self.len.count_ones() as usize);
    }

    /// The root of the tree of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(_, mut root)) = subtrees.next() else {
            return empty_root();
        };
        for (_, left) in subtrees {
            root = node_hash(left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundledger_audit::MerkleTree;

    #[test]
    fn pushing_aligned_subtrees_is_pushing_their_leaves() {
        let hashes: Vec<Hash> = (1..=300).map(hash_of).collect();
        let mut tree = MerkleTree::new();
        for hash in &hashes {
            tree.push(*hash);
        }
        // 300 = 256 + 32 + 8 + 4, pushed as the subtrees of an aligned decomposition with a
        // split at 100 (= 64 + 32 + 4): 64, 32, 4 | 4, 8, 16, 128 | 32, 8, 4.
        let blocks: [(u64, u32); 10] = [
            (0, 6),
            (64, 5),
            (96, 2),
            (100, 2),
            (104, 3),
            (112, 4),
            (128, 7),
            (256, 5),
            (288, 3),
            (296, 2),
        ];
        let mut frontier = Frontier::new();
        for (start, level) in blocks {
            let mut subtree = MerkleTree::new();
            for hash in &hashes[start as usize..(start + (1 << level)) as usize] {
                subtree.push(*hash);
            }
            frontier.push_subtree(level, subtree.root());
            assert_eq!(
                frontier.root(),
                tree.root_at(frontier.len()).expect("size"),
                "{start}"
            );
        }
        assert_eq!(frontier.len(), 300);
        assert_eq!(frontier.root(), tree.root());
    }

    /// Distinct record hashes; their values do not matter, only that they differ.
    fn hash_of(seq: u64) -> Hash {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        Hash(bytes)
    }

    #[test]
    fn every_size_has_the_root_of_merkle_tree() {
        let mut frontier = Frontier::new();
        let mut tree = MerkleTree::new();
        assert_eq!(frontier.root(), tree.root());
        for seq in 1..=1_100u64 {
            let hash = hash_of(seq);
            frontier.push(&hash);
            tree.push(hash);
            assert_eq!(frontier.len(), tree.len());
            assert_eq!(frontier.root(), tree.root(), "size {seq}");
        }
    }
}
