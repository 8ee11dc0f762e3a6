//! The committed test vectors in `tests/vectors/`: recomputed and compared, so a change to any
//! format or hash shows up as a diff against files an auditor's own tools can also check.
//!
//! To regenerate after a deliberate format change (never to make a failing test pass):
//! `FUNDLEDGER_WRITE_VECTORS=1 cargo test -p fundledger-audit --test vectors`.

mod common;

use std::path::PathBuf;

use common::{record_hashes, tree};
use fundledger_audit::{
    open_checkpoint, root_naive, Checkpoint, ConsistencyProof, InclusionProof, SigningKey,
    VerifierKey,
};
use fundledger_events::Hash;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const SIZE_MAX: u64 = 64;
const INCLUSION_CASES: [(u64, u64); 10] = [
    (0, 1),
    (0, 2),
    (1, 2),
    (2, 3),
    (4, 7),
    (6, 7),
    (12, 37),
    (40, 41),
    (0, 64),
    (63, 64),
];
const CONSISTENCY_CASES: [(u64, u64); 10] = [
    (1, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (4, 8),
    (6, 8),
    (13, 50),
    (32, 64),
    (63, 64),
    (1, 64),
];
const KEY_NAME: &str = "example.com/fundledger-test";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RootVector {
    size: u64,
    root: Hash,
}

/// Serialised straight from structs, so the proofs keep the field order of DESIGN §6.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct MerkleVectors {
    description: String,
    record_hashes_rule: String,
    record_hashes: Vec<Hash>,
    roots: Vec<RootVector>,
    inclusion: Vec<InclusionProof>,
    consistency: Vec<ConsistencyProof>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CheckpointVectors {
    description: String,
    name: String,
    seed: String,
    key_id: String,
    secret_key: String,
    verifier_key: String,
    origin: String,
    size: u64,
    root: Hash,
    body: String,
    note: String,
}

fn merkle_vectors() -> MerkleVectors {
    let tree = tree(SIZE_MAX);
    let hashes = record_hashes(SIZE_MAX);
    let roots = (0..=SIZE_MAX)
        .map(|size| RootVector {
            size,
            root: root_naive(&hashes[..size as usize]),
        })
        .collect();
    MerkleVectors {
        description: "fundledger DESIGN §6 Merkle tree: leaf = BLAKE3(0x00 ‖ record_hash), node = BLAKE3(0x01 ‖ left ‖ right), empty = BLAKE3(\"\"), RFC 9162 §2.1 shape; leaf index = seq − 1".to_owned(),
        record_hashes_rule: "record_hashes[seq - 1] = BLAKE3(ASCII decimal of seq), seq = 1..=64".to_owned(),
        record_hashes: hashes,
        roots,
        inclusion: INCLUSION_CASES.iter().map(|&(m, n)| tree.inclusion_proof(m, n).unwrap()).collect(),
        consistency: CONSISTENCY_CASES.iter().map(|&(m, n)| tree.consistency_proof(m, n).unwrap()).collect(),
    }
}

fn checkpoint_vectors() -> CheckpointVectors {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let key = SigningKey::from_seed(KEY_NAME, &seed).unwrap();
    let checkpoint = Checkpoint {
        origin: KEY_NAME.to_owned(),
        size: SIZE_MAX,
        root: tree(SIZE_MAX).root(),
    };
    CheckpointVectors {
        description: "fundledger DESIGN §6 checkpoint: C2SP tlog-checkpoint signed note, Ed25519, key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[0..4]; tree as in merkle.json".to_owned(),
        name: KEY_NAME.to_owned(),
        seed: hex::encode(seed),
        key_id: key.key_id().to_string(),
        secret_key: key.to_secret_string(),
        verifier_key: key.verifier_key_string(),
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root: checkpoint.root,
        body: checkpoint.body().unwrap(),
        note: checkpoint.sign(&key).unwrap(),
    }
}

/// Writes the file when asked to, otherwise requires it to be byte for byte what the code
/// computes now.
fn check_file<T: Serialize + DeserializeOwned>(name: &str, computed: &T) -> T {
    let path = vectors_dir().join(name);
    let expected = serde_json::to_string_pretty(computed).unwrap() + "\n";
    if std::env::var_os("FUNDLEDGER_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; see this file's header to generate it",
            path.display()
        )
    });
    assert!(
        text == expected,
        "{name} differs from what the code computes now"
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn merkle_vectors_match_and_verify() {
    let committed: MerkleVectors = check_file("merkle.json", &merkle_vectors());
    // Check the committed values themselves, not only their equality with the code.
    let hashes = &committed.record_hashes;
    assert_eq!(hashes.len() as u64, SIZE_MAX);
    for (index, hash) in hashes.iter().enumerate() {
        assert_eq!(
            hash.0,
            *blake3::hash((index + 1).to_string().as_bytes()).as_bytes()
        );
    }
    assert_eq!(committed.roots.len() as u64, SIZE_MAX + 1);
    for (size, entry) in committed.roots.iter().enumerate() {
        assert_eq!(entry.size, size as u64);
        assert_eq!(entry.root, root_naive(&hashes[..size]));
    }
    for proof in &committed.inclusion {
        assert_eq!(proof.verify(), Ok(()));
        assert_eq!(proof.root, committed.roots[proof.tree_size as usize].root);
        assert_eq!(proof.record_hash, hashes[proof.leaf_index as usize]);
    }
    for proof in &committed.consistency {
        assert_eq!(proof.verify(), Ok(()));
        assert_eq!(
            proof.old_root,
            committed.roots[proof.old_size as usize].root
        );
        assert_eq!(
            proof.new_root,
            committed.roots[proof.new_size as usize].root
        );
    }
    assert_eq!(committed.inclusion.len(), INCLUSION_CASES.len());
    assert_eq!(committed.consistency.len(), CONSISTENCY_CASES.len());
}

#[test]
fn checkpoint_vectors_match_and_open() {
    let committed: CheckpointVectors = check_file("checkpoint.json", &checkpoint_vectors());
    let verifier = VerifierKey::parse(&committed.verifier_key).unwrap();
    let opened = open_checkpoint(&committed.note, &verifier).unwrap();
    assert_eq!(
        opened,
        Checkpoint {
            origin: committed.origin,
            size: committed.size,
            root: committed.root
        }
    );
    let key = SigningKey::parse(&committed.secret_key).unwrap();
    assert_eq!(key.verifier(), verifier);
    assert_eq!(key.key_id().to_string(), committed.key_id);
}
