//! Ed25519 note keys, C2SP signed notes, and the tlog checkpoints of DESIGN §6.
//!
//! Formats (byte-compatible with Go's `golang.org/x/mod/sumdb/note`):
//!
//! ```text
//! key id        = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey32)[0..4]
//! verifier key  = name "+" hex8(key id) "+" base64(0x01 ‖ pubkey32)
//! secret key    = "PRIVATE+KEY+" name "+" hex8(key id) "+" base64(0x01 ‖ seed32) "\n"
//! signed note   = text "\n" ("— " name " " base64(key id ‖ ed25519(text)) "\n")+
//! checkpoint    = origin "\n" size "\n" base64(root32) "\n"
//! ```
//!
//! base64 is the standard alphabet with padding (RFC 4648 §4); hex is lowercase; "—" is
//! U+2014. The signature covers the note text including its final newline, not the blank line.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Signer;
use fundledger_events::Hash;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::proof::{ConsistencyProof, InclusionProof, ProofError};

/// The signed-note signature type byte of Ed25519.
pub const ALG_ED25519: u8 = 0x01;
/// What starts every signature line: an em dash (U+2014) and a space.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";
/// The most signature lines a note may carry, as in Go's `note.Open`; it caps the work a
/// hostile note can cause (C2SP asks verifiers to accept at least 16).
pub const NOTE_SIGNATURES_MAX: usize = 100;
const SECRET_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// The 4-byte key id of signed-note: which key a signature line claims to be from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[0..4], the C2SP / Go `note` key id.
    pub fn of_ed25519(name: &str, public_key: &[u8; 32]) -> KeyId {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', ALG_ED25519]);
        hasher.update(public_key);
        let digest = hasher.finalize();
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }

    /// Parses exactly 8 lowercase hex digits.
    fn parse_hex(text: &str) -> Option<KeyId> {
        let lowercase = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if text.len() != 8 || !lowercase {
            return None;
        }
        let mut bytes = [0u8; 4];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(KeyId(bytes))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a key name or key string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "a key name must be non-empty, without '+', whitespace or control characters; got {0:?}"
    )]
    InvalidName(String),
    #[error("a secret key starts with \"PRIVATE+KEY+\"")]
    NotASecretKey,
    #[error("the key string lacks its {0} field (fields are separated by '+')")]
    MissingField(&'static str),
    #[error("the key id {0:?} is not 8 lowercase hex digits")]
    BadKeyId(String),
    #[error("the key material is not standard padded base64")]
    BadBase64,
    #[error("the key material is {len_bytes} bytes; an Ed25519 key is 33 (0x01 and 32 bytes)")]
    WrongKeyLength { len_bytes: usize },
    #[error("signature type {0:#04x} is not Ed25519 (0x01)")]
    UnknownAlgorithm(u8),
    #[error("the key id {stated} does not match the name and key, which give {computed}: the key string is corrupt")]
    KeyIdMismatch { stated: KeyId, computed: KeyId },
    #[error("the public key is not a usable Ed25519 point")]
    InvalidPublicKey,
}

/// C2SP key names: non-empty, no Unicode whitespace, no '+'. Control characters are refused
/// too, because a signed note cannot contain them.
fn check_name(name: &str) -> Result<(), KeyError> {
    let bad = |c: char| c == '+' || c.is_whitespace() || c.is_control();
    if name.is_empty() || name.chars().any(bad) {
        return Err(KeyError::InvalidName(name.chars().take(80).collect()));
    }
    Ok(())
}

/// Strips the one line ending a key file written by hand or by `keygen` may carry.
fn strip_line_end(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
}

/// Decodes `base64(0x01 ‖ key32)` and returns the 32 key bytes.
fn decode_ed25519_material(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = BASE64.decode(text).map_err(|_| KeyError::BadBase64)?;
    let Some((&alg, key)) = bytes.split_first() else {
        return Err(KeyError::WrongKeyLength { len_bytes: 0 });
    };
    let Ok(key) = <[u8; 32]>::try_from(key) else {
        return Err(KeyError::WrongKeyLength {
            len_bytes: bytes.len(),
        });
    };
    if alg != ALG_ED25519 {
        return Err(KeyError::UnknownAlgorithm(alg));
    }
    Ok(key)
}

fn encode_ed25519_material(key: &[u8; 32]) -> String {
    let mut bytes = [0u8; 33];
    bytes[0] = ALG_ED25519;
    bytes[1..].copy_from_slice(key);
    BASE64.encode(bytes)
}

/// A named Ed25519 signing key: the log's checkpoint key.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    key_id: KeyId,
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A fresh key named `name` (by convention the ledger's origin).
    pub fn generate<R: RngCore + CryptoRng>(
        name: &str,
        rng: &mut R,
    ) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        Ok(SigningKey::new(
            name,
            ed25519_dalek::SigningKey::generate(rng),
        ))
    }

    /// The key named `name` with the RFC 8032 32-byte `seed`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        Ok(SigningKey::new(
            name,
            ed25519_dalek::SigningKey::from_bytes(seed),
        ))
    }

    fn new(name: &str, key: ed25519_dalek::SigningKey) -> SigningKey {
        let key_id = KeyId::of_ed25519(name, key.verifying_key().as_bytes());
        SigningKey {
            name: name.to_owned(),
            key_id,
            key,
        }
    }

    /// Parses `PRIVATE+KEY+name+hex8+base64(0x01‖seed)`, with or without a final newline.
    /// The key id must match the name and the public key derived from the seed.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let rest = strip_line_end(text)
            .strip_prefix(SECRET_KEY_PREFIX)
            .ok_or(KeyError::NotASecretKey)?;
        // The name has no '+', but base64 may: split off name and key id, keep the rest whole.
        let mut fields = rest.splitn(3, '+');
        let name = fields.next().ok_or(KeyError::MissingField("name"))?;
        let key_id_hex = fields.next().ok_or(KeyError::MissingField("key id"))?;
        let material = fields.next().ok_or(KeyError::MissingField("key"))?;
        check_name(name)?;
        let stated = KeyId::parse_hex(key_id_hex)
            .ok_or_else(|| KeyError::BadKeyId(key_id_hex.chars().take(16).collect()))?;
        let seed = decode_ed25519_material(material)?;
        let key = SigningKey::from_seed(name, &seed)?;
        if key.key_id != stated {
            return Err(KeyError::KeyIdMismatch {
                stated,
                computed: key.key_id,
            });
        }
        Ok(key)
    }

    /// The secret key file's text, newline included. Whoever holds it can sign checkpoints.
    pub fn to_secret_string(&self) -> String {
        let material = encode_ed25519_material(self.key.as_bytes());
        format!(
            "{SECRET_KEY_PREFIX}{}+{}+{material}\n",
            self.name, self.key_id
        )
    }

    /// The verifier key string `name+hex8+base64(0x01‖pubkey)`, no newline.
    pub fn verifier_key_string(&self) -> String {
        self.verifier().to_key_string()
    }

    /// The public half.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature line for `text`: `— name base64(key id ‖ signature)\n`.
    fn signature_line(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes()).to_bytes();
        let mut blob = [0u8; 68];
        blob[..4].copy_from_slice(&self.key_id.0);
        blob[4..].copy_from_slice(&signature);
        format!(
            "{SIGNATURE_LINE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        )
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the seed: debug output ends up in logs.
        write!(
            f,
            "SigningKey({}+{}, secret redacted)",
            self.name, self.key_id
        )
    }
}

/// A named Ed25519 verifier key: what an auditor trusts.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Parses `name+hex8+base64(0x01‖pubkey)`, with or without a final newline. The key id
    /// must match the name and key; weak (small-order) keys are refused.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let text = strip_line_end(text);
        let mut fields = text.splitn(3, '+');
        let name = fields.next().ok_or(KeyError::MissingField("name"))?;
        let key_id_hex = fields.next().ok_or(KeyError::MissingField("key id"))?;
        let material = fields.next().ok_or(KeyError::MissingField("key"))?;
        check_name(name)?;
        let stated = KeyId::parse_hex(key_id_hex)
            .ok_or_else(|| KeyError::BadKeyId(key_id_hex.chars().take(16).collect()))?;
        let public_key = decode_ed25519_material(material)?;
        let computed = KeyId::of_ed25519(name, &public_key);
        if computed != stated {
            return Err(KeyError::KeyIdMismatch { stated, computed });
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public_key)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            key_id: stated,
            key,
        })
    }

    /// The verifier key string `name+hex8+base64(0x01‖pubkey)`, no newline.
    pub fn to_key_string(&self) -> String {
        format!(
            "{}+{}+{}",
            self.name,
            self.key_id,
            encode_ed25519_material(self.key.as_bytes())
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_string())
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({})", self.to_key_string())
    }
}

/// Why a signed note is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("the note has no signature by key {key}")]
    NoSignatureByKey { key: String },
    #[error("the signature by key {key} does not verify: the note was altered or forged")]
    BadSignature { key: String },
}

/// Signs `text` (which must end with a newline and hold no control characters other than
/// newlines) and returns the signed note.
pub fn sign_note(text: &str, key: &SigningKey) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the note text must end with a newline",
        ));
    }
    check_note_characters(text)?;
    let mut note = String::with_capacity(text.len() + 1 + 128);
    note.push_str(text);
    note.push('\n');
    note.push_str(&key.signature_line(text));
    Ok(note)
}

/// Opens a signed note: checks its syntax, requires at least one signature line by `key`
/// (same name and key id) and that every such line verifies, and returns the note text.
/// Lines by other keys are ignored, as C2SP requires (key rotation, witness cosignatures).
pub fn open_note<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    check_note_characters(note)?;
    // The text ends at the last blank line; signature lines are never empty.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::Malformed(
            "the signature block is empty or lacks its final newline",
        ));
    };
    let mut verified = false;
    for (count, line) in signatures.split('\n').enumerate() {
        if count >= NOTE_SIGNATURES_MAX {
            return Err(NoteError::Malformed("too many signature lines"));
        }
        let line = line
            .strip_prefix(SIGNATURE_LINE_PREFIX)
            .ok_or(NoteError::Malformed(
                "a signature line does not start with an em dash and a space",
            ))?;
        let (name, encoded) = line
            .split_once(' ')
            .ok_or(NoteError::Malformed("a signature line lacks its signature"))?;
        let blob = BASE64
            .decode(encoded)
            .map_err(|_| NoteError::Malformed("a signature is not standard padded base64"))?;
        if check_name(name).is_err() || blob.len() < 5 {
            return Err(NoteError::Malformed(
                "a signature line has a bad key name or a short signature",
            ));
        }
        if name != key.name || blob[..4] != key.key_id.0 {
            continue;
        }
        let key_label = || format!("{}+{}", key.name, key.key_id);
        let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
            .map_err(|_| NoteError::BadSignature { key: key_label() })?;
        // verify_strict also refuses malleable and small-order signatures; an honest signer
        // (ours or Go's) never produces those.
        key.key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| NoteError::BadSignature { key: key_label() })?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoSignatureByKey {
            key: format!("{}+{}", key.name, key.key_id),
        });
    }
    Ok(text)
}

/// Signed notes are UTF-8 (a `&str` already is) without ASCII control characters but newline.
fn check_note_characters(text: &str) -> Result<(), NoteError> {
    if text.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::Malformed(
            "control characters other than newline are not allowed",
        ));
    }
    Ok(())
}

/// A tree head: the log named `origin` held `size` records and its Merkle root was `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Why a checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(
        "a checkpoint origin must be non-empty and one line without control characters; got {0:?}"
    )]
    InvalidOrigin(String),
    #[error("malformed checkpoint body: {0}")]
    MalformedBody(String),
}

impl Checkpoint {
    /// The note text `origin\nsize\nbase64(root)\n`.
    pub fn body(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() || self.origin.chars().any(char::is_control) {
            return Err(CheckpointError::InvalidOrigin(
                self.origin.chars().take(80).collect(),
            ));
        }
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.0)
        ))
    }

    /// Parses a checkpoint note text (unsigned). Extension lines after the root are allowed by
    /// C2SP; they are opaque, so they are checked to be non-empty and then ignored.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |why: &str| CheckpointError::MalformedBody(why.to_owned());
        let lines = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the text must end with a newline"))?;
        let mut lines = lines.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size_line = lines.next().ok_or_else(|| malformed("no tree size line"))?;
        let root_line = lines.next().ok_or_else(|| malformed("no root hash line"))?;
        if origin.is_empty() {
            return Err(malformed("the origin line is empty"));
        }
        if lines.any(str::is_empty) {
            return Err(malformed("an extension line is empty"));
        }
        let canonical_decimal = !size_line.is_empty()
            && size_line.bytes().all(|b| b.is_ascii_digit())
            && (size_line == "0" || !size_line.starts_with('0'));
        let size = size_line
            .parse::<u64>()
            .ok()
            .filter(|_| canonical_decimal)
            .ok_or_else(|| {
                CheckpointError::MalformedBody(format!(
                    "tree size {size_line:?} is not a decimal without leading zeros"
                ))
            })?;
        let root = BASE64
            .decode(root_line)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                CheckpointError::MalformedBody(format!(
                    "root {root_line:?} is not base64 of 32 bytes"
                ))
            })?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root: Hash(root),
        })
    }

    /// The signed note of this checkpoint: body, blank line, one signature line by `key`.
    pub fn sign(&self, key: &SigningKey) -> Result<String, CheckpointError> {
        let body = self.body()?;
        debug_assert_eq!(
            Checkpoint::parse_body(&body).as_ref(),
            Ok(self),
            "body must round-trip"
        );
        Ok(sign_note(&body, key)?)
    }
}

/// Opens a checkpoint note signed by `key` (other signers' lines are ignored) and parses it.
pub fn open_checkpoint(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let text = open_note(note, key)?;
    Checkpoint::parse_body(text)
}

/// Why two checkpoints, or a checkpoint and a proof, do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("the checkpoints are of different logs: {old:?} and {new:?}")]
    OriginMismatch { old: String, new: String },
    #[error("ROLLBACK: the log shrank from {old_size} to {new_size} records")]
    Rollback { old_size: u64, new_size: u64 },
    #[error("FORK: two different roots for the same size {size}: {old_root} and {new_root}")]
    Fork {
        size: u64,
        old_root: Hash,
        new_root: Hash,
    },
    #[error("the proof is for {proof}, not for the checkpoint's {checkpoint}")]
    ProofNotForCheckpoint { proof: String, checkpoint: String },
    #[error(
        "the proof does not verify, so the new checkpoint is not shown to extend the old one: {0}"
    )]
    Proof(#[from] ProofError),
}

fn tree_head(size: u64, root: &Hash) -> String {
    format!("size {size} root {root}")
}

/// The auditor's witness check: `new` extends `old` according to `proof`. Origins must match,
/// the proof must be about exactly these two tree heads, and it must verify. A shrinking log
/// or two roots for one size are reported as [`WitnessError::Rollback`] and
/// [`WitnessError::Fork`] before any proof is looked at: either is proof of misbehaviour on its
/// own, given two checkpoints signed by the log.
pub fn check_consistent(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &ConsistencyProof,
) -> Result<(), WitnessError> {
    if old.origin != new.origin {
        return Err(WitnessError::OriginMismatch {
            old: old.origin.clone(),
            new: new.origin.clone(),
        });
    }
    if new.size < old.size {
        return Err(WitnessError::Rollback {
            old_size: old.size,
            new_size: new.size,
        });
    }
    if new.size == old.size && new.root != old.root {
        return Err(WitnessError::Fork {
            size: old.size,
            old_root: old.root,
            new_root: new.root,
        });
    }
    for (proof_size, proof_root, checkpoint) in [
        (proof.old_size, &proof.old_root, old),
        (proof.new_size, &proof.new_root, new),
    ] {
        if proof_size != checkpoint.size || *proof_root != checkpoint.root {
            return Err(WitnessError::ProofNotForCheckpoint {
                proof: tree_head(proof_size, proof_root),
                checkpoint: tree_head(checkpoint.size, &checkpoint.root),
            });
        }
    }
    Ok(proof.verify()?)
}

/// Checks that `proof` shows its record inside the tree head `checkpoint` commits to.
pub fn check_included(checkpoint: &Checkpoint, proof: &InclusionProof) -> Result<(), WitnessError> {
    if proof.tree_size != checkpoint.size || proof.root != checkpoint.root {
        return Err(WitnessError::ProofNotForCheckpoint {
            proof: tree_head(proof.tree_size, &proof.root),
            checkpoint: tree_head(checkpoint.size, &checkpoint.root),
        });
    }
    Ok(proof.verify()?)
}
