//! The proof and checkpoint verifiers of crates/audit, on any bytes: inclusion and consistency
//! proofs as the JSON of DESIGN §6, signed checkpoint notes, verifier and signing key strings.
//!
//! Properties, beyond "never panics":
//! - **Differential.** Every proof is also checked by a second verifier written here from the
//!   recursive definitions of RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF), which share
//!   nothing with the crate's bit-walking verifiers but the two hash functions. Both must
//!   give the same verdict, and an accepted proof's roots recompute from its path.
//! - **Soundness on a real tree.** A tree of up to 257 records is built from the input, a
//!   real proof taken from it (it must verify), then one field of the proof is changed as the
//!   input says. If the changed proof still verifies against the tree's true root, what it
//!   claims is true of the tree (the record is at that index; the old root is the tree's).
//! - **Round trips.** Proof JSON, key strings and checkpoints (signed with the audit vectors'
//!   key, with an origin and size taken from the input) read back to what was written.
#![no_main]

use fundledger_audit::{
    leaf_hash, node_hash, open_checkpoint, Checkpoint, ConsistencyProof, InclusionProof,
    MerkleTree, SigningKey, VerifierKey,
};
use fundledger_events::Hash;
use libfuzzer_sys::fuzz_target;

/// Records in the generated tree: 257 crosses a power of two, so ragged right edges occur.
const TREE_RECORDS_MAX: u64 = 257;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = serde_json::from_slice::<InclusionProof>(data) {
        check_inclusion(&proof);
        round_trip_json(&proof);
    }
    if let Ok(proof) = serde_json::from_slice::<ConsistencyProof>(data) {
        check_consistency(&proof);
        round_trip_json(&proof);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_note_and_keys(text);
    }
    check_real_tree(data);
});

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.1 read backwards: the root that `path` (leaf end first) gives for leaf
/// `leaf` at `index` of a tree of `size`, if the path has exactly the right length.
fn inclusion_root(index: u64, size: u64, leaf: Hash, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    if size == 1 {
        return path.is_empty().then_some(leaf);
    }
    let (top, rest) = path.split_last()?;
    let k = split_point(size);
    if index < k {
        Some(node_hash(&inclusion_root(index, k, leaf, rest)?, top))
    } else {
        Some(node_hash(
            top,
            &inclusion_root(index - k, size - k, leaf, rest)?,
        ))
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[0:n], b) read backwards: the (old, new) subtree roots that
/// `path` gives. With `b` the old subtree is the whole old tree, whose root the verifier holds.
fn subproof_roots(m: u64, n: u64, b: bool, path: &[Hash], old_root: Hash) -> Option<(Hash, Hash)> {
    if m == n {
        return match (b, path) {
            (true, []) => Some((old_root, old_root)),
            (false, [only]) => Some((*only, *only)),
            _ => None,
        };
    }
    let (top, rest) = path.split_last()?;
    let k = split_point(n);
    if m <= k {
        let (old, new) = subproof_roots(m, k, b, rest, old_root)?;
        Some((old, node_hash(&new, top)))
    } else {
        let (old, new) = subproof_roots(m - k, n - k, false, rest, old_root)?;
        Some((node_hash(top, &old), node_hash(top, &new)))
    }
}

fn consistency_holds(proof: &ConsistencyProof) -> bool {
    let (m, n) = (proof.old_size, proof.new_size);
    if m == 0 || m > n {
        return false;
    }
    if m == n {
        return proof.path.is_empty() && proof.old_root == proof.new_root;
    }
    subproof_roots(m, n, true, &proof.path, proof.old_root)
        == Some((proof.old_root, proof.new_root))
}

fn inclusion_holds(proof: &InclusionProof) -> bool {
    inclusion_root(
        proof.leaf_index,
        proof.tree_size,
        leaf_hash(&proof.record_hash),
        &proof.path,
    ) == Some(proof.root)
}

fn check_inclusion(proof: &InclusionProof) -> bool {
    let verdict = proof.verify();
    assert_eq!(
        verdict.is_ok(),
        inclusion_holds(proof),
        "the verifiers disagree ({verdict:?}) on {proof:?}"
    );
    verdict.is_ok()
}

fn check_consistency(proof: &ConsistencyProof) -> bool {
    let verdict = proof.verify();
    assert_eq!(
        verdict.is_ok(),
        consistency_holds(proof),
        "the verifiers disagree ({verdict:?}) on {proof:?}"
    );
    verdict.is_ok()
}

fn round_trip_json<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).expect("a proof serialises");
    let back: T = serde_json::from_str(&text).expect("a written proof reads back");
    assert_eq!(&back, value);
}

/// The key of crates/audit/tests/vectors/checkpoint.json (seed 00 01 … 1f), so that the
/// vector's signed note, a seed input, opens.
fn signing_key() -> SigningKey {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    SigningKey::from_seed("example.com/fundledger-test", &seed).expect("a valid key name")
}

fn check_note_and_keys(text: &str) {
    let key = signing_key();
    let verifier = key.verifier();
    if let Ok(checkpoint) = open_checkpoint(text, &verifier) {
        // Only notes this key signed open; re-signing gives a note that opens to the same.
        let note = checkpoint
            .sign(&key)
            .expect("an opened checkpoint can be signed again");
        assert_eq!(open_checkpoint(&note, &verifier).as_ref(), Ok(&checkpoint));
    }
    if let Ok(checkpoint) = Checkpoint::parse_body(text) {
        if let Ok(body) = checkpoint.body() {
            assert_eq!(Checkpoint::parse_body(&body).as_ref(), Ok(&checkpoint));
        }
    }
    // The input as the first line of a checkpoint: any origin that can be signed opens.
    let (origin, rest) = text.split_once('\n').unwrap_or((text, ""));
    let size = rest.len() as u64 * 0x9e37_79b9;
    let checkpoint = Checkpoint {
        origin: origin.to_string(),
        size,
        root: Hash(*blake3::hash(rest.as_bytes()).as_bytes()),
    };
    if let Ok(note) = checkpoint.sign(&key) {
        assert_eq!(
            open_checkpoint(&note, &verifier).as_ref(),
            Ok(&checkpoint),
            "a signed checkpoint does not open:\n{note}"
        );
        // Signed by another key of the same name: refused.
        let other = SigningKey::from_seed(key.name(), &[8; 32]).expect("a valid key name");
        let forged = checkpoint.sign(&other).expect("signs as the first did");
        assert!(open_checkpoint(&forged, &verifier).is_err());
    }
    for line in text.lines() {
        if let Ok(parsed) = VerifierKey::parse(line) {
            let written = parsed.to_key_string();
            let again = VerifierKey::parse(&written).expect("a written key reads back");
            assert_eq!(again.to_key_string(), written);
        }
        if let Ok(parsed) = SigningKey::parse(line) {
            let written = parsed.to_secret_string();
            let again = SigningKey::parse(&written).expect("a written key reads back");
            assert_eq!(again.verifier_key_string(), parsed.verifier_key_string());
        }
    }
}

/// A little-endian u64 from up to 8 bytes of `data` at `at` (missing bytes are zero).
fn number(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    for (i, byte) in data.iter().skip(at).take(8).enumerate() {
        bytes[i] = *byte;
    }
    u64::from_le_bytes(bytes)
}

fn check_real_tree(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let size = 1 + number(data, 0) % TREE_RECORDS_MAX;
    let index = number(data, 8) % size;
    let old_size = 1 + number(data, 16) % size;
    let edit = number(data, 24);
    let seed = blake3::hash(data);
    let mut tree = MerkleTree::new();
    for i in 0..size {
        let mut hasher = blake3::Hasher::new();
        hasher.update(seed.as_bytes());
        // Half the inputs repeat records, so that equal leaves occur.
        let i_or_repeat = if edit & 1 == 1 { i % 3 } else { i };
        hasher.update(&i_or_repeat.to_le_bytes());
        tree.push(Hash(*hasher.finalize().as_bytes()));
    }
    let root = tree.root();
    assert_eq!(root, fundledger_audit::root_naive(&hashes(&tree)));

    let honest = tree.inclusion_proof(index, size).expect("index below size");
    assert!(check_inclusion(&honest), "an honest inclusion proof fails");
    let mut changed = honest.clone();
    change_inclusion(&mut changed, edit, data);
    if check_inclusion(&changed) && changed.tree_size <= size {
        if let Ok(true_root) = tree.root_at(changed.tree_size) {
            if changed.root == true_root {
                assert_eq!(
                    tree.record_hash(changed.leaf_index),
                    Some(changed.record_hash),
                    "a changed inclusion proof verifies against the true root but lies: \
                     {changed:?}"
                );
            }
        }
    }

    let honest = tree
        .consistency_proof(old_size, size)
        .expect("old size within the tree");
    assert!(
        check_consistency(&honest),
        "an honest consistency proof fails"
    );
    let mut changed = honest.clone();
    change_consistency(&mut changed, edit, data);
    // With the sizes unchanged, a proof that still verifies still states the true roots. (A
    // proof moved to other sizes may verify for roots no tree of those sizes has: RFC 9162
    // verifiers take the path's hashes on trust, and only a preimage of BLAKE3 would turn
    // such a claim into a real tree. The differential check covers those.)
    if check_consistency(&changed)
        && (changed.old_size, changed.new_size) == (honest.old_size, honest.new_size)
    {
        assert_eq!(
            (changed.old_root, changed.new_root),
            (honest.old_root, honest.new_root),
            "a changed consistency proof verifies with other roots: {changed:?}"
        );
    }
}

fn hashes(tree: &MerkleTree) -> Vec<Hash> {
    (0..tree.len())
        .map(|i| tree.record_hash(i).expect("below len"))
        .collect()
}

/// Flips one bit of `hash`, chosen by `at`.
fn flip(hash: &mut Hash, at: u64) {
    hash.0[(at / 8 % 32) as usize] ^= 1 << (at % 8);
}

fn change_inclusion(proof: &mut InclusionProof, edit: u64, data: &[u8]) {
    let amount = number(data, 32);
    let len = proof.path.len() as u64;
    match (edit >> 1) % 8 {
        0 => flip(&mut proof.record_hash, amount),
        1 if len > 0 => flip(&mut proof.path[(amount % len) as usize], amount >> 8),
        2 => flip(&mut proof.root, amount),
        3 => proof.leaf_index = amount % (proof.tree_size + 2),
        4 => proof.tree_size = amount % (TREE_RECORDS_MAX * 2),
        5 if len > 0 => {
            proof.path.remove((amount % len) as usize);
        }
        6 => {
            let copy = proof.path.get((amount % (len + 1)) as usize).copied();
            proof.path.push(copy.unwrap_or(proof.root));
        }
        7 if len > 1 => proof.path.swap(0, (amount % len) as usize),
        _ => {}
    }
}

fn change_consistency(proof: &mut ConsistencyProof, edit: u64, data: &[u8]) {
    let amount = number(data, 32);
    let len = proof.path.len() as u64;
    match (edit >> 1) % 8 {
        0 => flip(&mut proof.old_root, amount),
        1 if len > 0 => flip(&mut proof.path[(amount % len) as usize], amount >> 8),
        2 => flip(&mut proof.new_root, amount),
        3 => proof.old_size = amount % (proof.new_size + 2),
        4 => proof.new_size = amount % (TREE_RECORDS_MAX * 2),
        5 if len > 0 => {
            proof.path.remove((amount % len) as usize);
        }
        6 => {
            let copy = proof.path.get((amount % (len + 1)) as usize).copied();
            proof.path.push(copy.unwrap_or(proof.old_root));
        }
        7 if len > 1 => proof.path.swap(0, (amount % len) as usize),
        _ => {}
    }
}
