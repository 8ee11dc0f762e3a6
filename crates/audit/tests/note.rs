//! Keys, signed notes and checkpoints: Go `note` compatibility from Go's own test vectors,
//! round trips, tampering, and the auditor's witness checks.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{flipped, tree};
use ed25519_dalek::Verifier;
use fundledger_audit::{
    check_consistent, check_included, open_checkpoint, open_note, sign_note, Checkpoint,
    CheckpointError, KeyError, KeyId, NoteError, ProofError, SigningKey, VerifierKey, WitnessError,
};
use fundledger_events::Hash;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

// From golang.org/x/mod/sumdb/note/note_test.go: keys, text and signatures made by Go.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const ORIGIN: &str = "zhengzhou.example/fundledger";

fn key(name: &str, seed: u64) -> SigningKey {
    SigningKey::generate(name, &mut StdRng::seed_from_u64(seed)).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root: tree(size).root(),
    }
}

#[test]
fn go_secret_key_gives_go_verifier_key_and_signature() {
    let peter = SigningKey::parse(PETER_SKEY).unwrap();
    assert_eq!(peter.name(), "PeterNeumann");
    assert_eq!(peter.key_id().to_string(), "c74f20a3");
    assert_eq!(peter.verifier_key_string(), PETER_VKEY);
    assert_eq!(peter.to_secret_string(), format!("{PETER_SKEY}\n"));
    // Ed25519 is deterministic, so our note must be byte-for-byte the one Go made.
    assert_eq!(
        sign_note(GO_TEXT, &peter).unwrap(),
        format!("{GO_TEXT}\n{PETER_SIG}")
    );
}

#[test]
fn go_signed_notes_open() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();
    let note = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    // Each key finds and verifies its own line and ignores the other's.
    assert_eq!(open_note(&note, &peter), Ok(GO_TEXT));
    assert_eq!(open_note(&note, &enoch), Ok(GO_TEXT));
    let only_enoch = format!("{GO_TEXT}\n{ENOCH_SIG}");
    assert_eq!(
        open_note(&only_enoch, &peter),
        Err(NoteError::NoSignatureByKey {
            key: "PeterNeumann+c74f20a3".to_owned()
        })
    );
}

#[test]
fn go_rejected_notes_are_rejected() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let malformed = [
        GO_TEXT.to_owned(),
        format!("{GO_TEXT}\n"),
        format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{GO_TEXT}\n{PETER_SIG}"),
        format!("{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101)),
        format!("{GO_TEXT}\n{}", PETER_SIG.replacen('—', "-", 1)),
        format!("{GO_TEXT}\n{}", PETER_SIG.replacen("x08go", "x08g!", 1)),
    ];
    for note in &malformed {
        assert!(
            matches!(open_note(note, &peter), Err(NoteError::Malformed(_))),
            "{note:?}"
        );
    }
    // Go's "invalid signature" case: four extra base64 characters inside the signature.
    let corrupt = format!("{GO_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open_note(&corrupt, &peter),
        Err(NoteError::BadSignature {
            key: "PeterNeumann+c74f20a3".to_owned()
        })
    );
}

#[test]
fn mangled_go_keys_are_rejected_as_in_go() {
    // Go's TestNewVerifier / TestNewSigner: every proper substring and every single-byte
    // increment must fail to parse.
    for good in [PETER_VKEY, PETER_SKEY] {
        let parse = |text: &str| {
            if good == PETER_VKEY {
                VerifierKey::parse(text).map(|_| ())
            } else {
                SigningKey::parse(text).map(|_| ())
            }
        };
        assert_eq!(parse(good), Ok(()));
        let bytes = good.as_bytes();
        for i in 0..=bytes.len() {
            for j in i + 1..=bytes.len() {
                if (i, j) != (0, bytes.len()) {
                    assert!(parse(&good[i..j]).is_err(), "{:?}", &good[i..j]);
                }
            }
        }
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] += 1;
            let mangled = String::from_utf8(mangled).unwrap();
            assert!(parse(&mangled).is_err(), "{mangled:?}");
        }
    }
    // Go's wrong-length and unknown-algorithm keys, each with a key id adjusted to match. The
    // first also has non-zero trailing base64 bits, which Go ignores and we refuse earlier.
    assert_eq!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(KeyError::BadBase64)
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::UnknownAlgorithm(0x65))
    );
    let long = [1u8; 34];
    let long_vkey = format!(
        "n+{}+{}",
        hex::encode(&Sha256::digest([b"n\n".as_slice(), &long].concat())[..4]),
        BASE64.encode(long)
    );
    assert_eq!(
        VerifierKey::parse(&long_vkey),
        Err(KeyError::WrongKeyLength { len_bytes: 34 })
    );
}

#[test]
fn key_errors_say_what_is_wrong() {
    assert_eq!(
        SigningKey::parse(PETER_VKEY).err(),
        Some(KeyError::NotASecretKey)
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann").err(),
        Some(KeyError::MissingField("key id"))
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a3").err(),
        Some(KeyError::MissingField("key"))
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .err(),
        Some(KeyError::BadKeyId("C74F20A3".to_owned()))
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T")
            .err(),
        Some(KeyError::BadBase64)
    );
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::KeyIdMismatch { .. })
    ));
    assert!(matches!(
        VerifierKey::parse("PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::KeyIdMismatch { .. })
    ));
    // A small-order point with a matching key id: a well-formed string, but not a usable key.
    let weak = [0u8; 32];
    let mut material = vec![0x01];
    material.extend_from_slice(&weak);
    let weak_vkey = format!(
        "weak+{}+{}",
        KeyId::of_ed25519("weak", &weak),
        BASE64.encode(material)
    );
    assert_eq!(
        VerifierKey::parse(&weak_vkey).err(),
        Some(KeyError::InvalidPublicKey)
    );
}

#[test]
fn names_must_be_note_key_names() {
    let mut rng = StdRng::seed_from_u64(1);
    for bad in ["", "a+b", "a b", "a\tb", "a\u{3000}b", "a\nb", "a\u{7}b"] {
        assert!(
            matches!(
                SigningKey::generate(bad, &mut rng),
                Err(KeyError::InvalidName(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(
                SigningKey::from_seed(bad, &[7; 32]),
                Err(KeyError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    for good in [ORIGIN, "郑州市财政局/ledger", "a"] {
        let key = SigningKey::generate(good, &mut rng).unwrap();
        assert_eq!(
            VerifierKey::parse(&key.verifier_key_string())
                .unwrap()
                .name(),
            good
        );
    }
}

#[test]
fn keys_round_trip() {
    let key = key(ORIGIN, 7);
    let secret = key.to_secret_string();
    assert!(secret.starts_with(&format!("PRIVATE+KEY+{ORIGIN}+{}+", key.key_id())));
    assert!(secret.ends_with('\n') && !secret.trim_end().contains('\n'));
    let reparsed = SigningKey::parse(&secret).unwrap();
    assert_eq!(reparsed.to_secret_string(), secret);
    assert_eq!(
        SigningKey::parse(secret.trim_end())
            .unwrap()
            .to_secret_string(),
        secret
    );
    assert_eq!(
        SigningKey::parse(&secret.replace('\n', "\r\n"))
            .unwrap()
            .to_secret_string(),
        secret
    );

    let vkey = key.verifier_key_string();
    let verifier = VerifierKey::parse(&vkey).unwrap();
    assert_eq!(verifier, key.verifier());
    assert_eq!(verifier.to_key_string(), vkey);
    assert_eq!(verifier.to_string(), vkey);
    assert_eq!(VerifierKey::parse(&format!("{vkey}\n")).unwrap(), verifier);
    assert_eq!(verifier.key_id(), key.key_id());
}

#[test]
fn key_id_and_strings_match_an_independent_computation() {
    let seed = [42u8; 32];
    let key = SigningKey::from_seed(ORIGIN, &seed).unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let mut preimage = ORIGIN.as_bytes().to_vec();
    preimage.push(0x0a);
    preimage.push(0x01);
    preimage.extend_from_slice(&public);
    let id = &Sha256::digest(&preimage)[..4];
    assert_eq!(key.key_id().0, id);
    let mut material = vec![0x01];
    material.extend_from_slice(&public);
    assert_eq!(
        key.verifier_key_string(),
        format!("{ORIGIN}+{}+{}", hex::encode(id), BASE64.encode(&material))
    );
    let mut secret_material = vec![0x01];
    secret_material.extend_from_slice(&seed);
    assert_eq!(
        key.to_secret_string(),
        format!(
            "PRIVATE+KEY+{ORIGIN}+{}+{}\n",
            hex::encode(id),
            BASE64.encode(&secret_material)
        )
    );
    assert_eq!(key.verifier().public_key_bytes(), public);
}

#[test]
fn debug_output_never_shows_the_secret() {
    let key = SigningKey::from_seed("debug", &[9; 32]).unwrap();
    let secret = key.to_secret_string();
    let material = secret.trim_end().rsplit('+').next().unwrap();
    let debug = format!("{key:?}");
    assert!(
        !debug.contains(material) && debug.contains("redacted"),
        "{debug}"
    );
}

#[test]
fn checkpoint_note_has_the_c2sp_format() {
    let key = key(ORIGIN, 3);
    let checkpoint = checkpoint(64);
    let note = checkpoint.sign(&key).unwrap();
    let body = format!("{ORIGIN}\n64\n{}\n", BASE64.encode(checkpoint.root.0));
    assert_eq!(checkpoint.body().unwrap(), body);
    let (text, signature_line) = note.split_at(body.len());
    assert_eq!(text, body);
    let signature_line = signature_line.strip_prefix('\n').unwrap();
    let rest = signature_line
        .strip_prefix(&format!("\u{2014} {ORIGIN} "))
        .unwrap();
    let encoded = rest.strip_suffix('\n').unwrap();
    assert!(!encoded.contains('\n'));

    // Independently: base64(key id ‖ Ed25519 signature over the body bytes).
    let blob = BASE64.decode(encoded).unwrap();
    assert_eq!(blob.len(), 68);
    assert_eq!(blob[..4], key.key_id().0);
    let public =
        ed25519_dalek::VerifyingKey::from_bytes(&key.verifier().public_key_bytes()).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&blob[4..]).unwrap();
    assert!(public.verify(body.as_bytes(), &signature).is_ok());
    assert!(public.verify(note.as_bytes(), &signature).is_err());

    assert_eq!(open_checkpoint(&note, &key.verifier()), Ok(checkpoint));
}

#[test]
fn empty_log_checkpoint() {
    let key = key(ORIGIN, 3);
    let empty = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 0,
        root: fundledger_audit::empty_root(),
    };
    let note = empty.sign(&key).unwrap();
    assert!(note.starts_with(&format!("{ORIGIN}\n0\n")));
    assert_eq!(open_checkpoint(&note, &key.verifier()), Ok(empty));
}

#[test]
fn a_checkpoint_fails_under_another_key() {
    let log = key(ORIGIN, 1);
    let impostor = key(ORIGIN, 2);
    let stranger = key("someone.else", 1);
    let note = checkpoint(10).sign(&log).unwrap();
    for other in [&impostor, &stranger] {
        assert_eq!(
            open_checkpoint(&note, &other.verifier()),
            Err(CheckpointError::Note(NoteError::NoSignatureByKey {
                key: format!("{}+{}", other.name(), other.key_id())
            }))
        );
    }
    // A note signed by the impostor with a line forged to claim the log's key id.
    let forged = checkpoint(10).sign(&impostor).unwrap();
    let (text, line) = forged.split_once("\n\n").unwrap();
    let encoded = line.trim_end().rsplit(' ').next().unwrap();
    let mut blob = BASE64.decode(encoded).unwrap();
    blob[..4].copy_from_slice(&log.key_id().0);
    let forged = format!("{text}\n\n\u{2014} {ORIGIN} {}\n", BASE64.encode(&blob));
    assert_eq!(
        open_checkpoint(&forged, &log.verifier()),
        Err(CheckpointError::Note(NoteError::BadSignature {
            key: format!("{ORIGIN}+{}", log.key_id())
        }))
    );
}

#[test]
fn tampered_notes_fail() {
    let key = key(ORIGIN, 5);
    let verifier = key.verifier();
    let note = checkpoint(10).sign(&key).unwrap();
    let bad_signature = |tampered: &str| {
        assert!(
            matches!(
                open_checkpoint(tampered, &verifier),
                Err(CheckpointError::Note(NoteError::BadSignature { .. }))
            ),
            "{tampered:?}"
        );
    };
    bad_signature(&note.replacen("\n10\n", "\n11\n", 1));
    bad_signature(&note.replacen(ORIGIN, "zhengzhou.example/fundledgeR", 1));
    let root_b64 = BASE64.encode(checkpoint(10).root.0);
    bad_signature(&note.replacen(
        &root_b64,
        &BASE64.encode(flipped(&checkpoint(10).root).0),
        1,
    ));
    // An extension line smuggled into the signed text.
    bad_signature(&note.replacen("\n\n", "\nextra\n\n", 1));
    // Every single character of the signature changed.
    let signature_start = note.rfind(' ').unwrap() + 1;
    for i in signature_start..note.len() - 2 {
        let mut bytes = note.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(
            open_checkpoint(&tampered, &verifier).is_err(),
            "position {i}"
        );
    }
    // Structure broken.
    let malformed = |tampered: &str| {
        assert!(
            matches!(
                open_checkpoint(tampered, &verifier),
                Err(CheckpointError::Note(NoteError::Malformed(_)))
            ),
            "{tampered:?}"
        );
    };
    malformed(&note.replacen("\n\n", "\n", 1));
    malformed(note.trim_end());
    malformed(&note.replacen('\u{2014}', "--", 1));
    malformed(&format!("{note}trailing\n"));
    malformed(&note.replacen('\n', "\r\n", 1));
}

#[test]
fn unknown_signers_are_ignored_and_cosignatures_kept() {
    let log = key(ORIGIN, 1);
    let witness = key("witness.example/w1", 2);
    let checkpoint = checkpoint(12);
    let note = checkpoint.sign(&log).unwrap();
    let body = checkpoint.body().unwrap();
    let cosigned_by_witness = sign_note(&body, &witness).unwrap();
    let witness_line = cosigned_by_witness.split_once("\n\n").unwrap().1;
    let cosigned = format!("{note}{witness_line}");
    assert_eq!(
        open_checkpoint(&cosigned, &log.verifier()),
        Ok(checkpoint.clone())
    );
    assert_eq!(
        open_checkpoint(&cosigned, &witness.verifier()),
        Ok(checkpoint.clone())
    );
    let other_first = format!(
        "{body}\n{witness_line}{}",
        note.split_once("\n\n").unwrap().1
    );
    assert_eq!(
        open_checkpoint(&other_first, &log.verifier()),
        Ok(checkpoint)
    );
}

#[test]
fn checkpoint_bodies_are_parsed_strictly() {
    let root = BASE64.encode([7u8; 32]);
    let parsed = Checkpoint::parse_body(&format!("o\n5\n{root}\n")).unwrap();
    assert_eq!(
        parsed,
        Checkpoint {
            origin: "o".to_owned(),
            size: 5,
            root: Hash([7; 32])
        }
    );
    // C2SP allows extension lines; they are opaque and ignored.
    assert_eq!(
        Checkpoint::parse_body(&format!("o\n5\n{root}\next 1\next 2\n")),
        Ok(parsed)
    );
    assert_eq!(
        Checkpoint::parse_body(&format!("o\n{}\n{root}\n", u64::MAX)).map(|c| c.size),
        Ok(u64::MAX)
    );

    let short_root = BASE64.encode([7u8; 31]);
    let bad = [
        format!("o\n5\n{root}"),
        "o\n5\n".to_owned(),
        format!("\n5\n{root}\n"),
        format!("o\n05\n{root}\n"),
        format!("o\n+5\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n5.0\n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n 5\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("o\n5\n{short_root}\n"),
        format!("o\n5\n{}\n", root.trim_end_matches('=')),
        format!("o\n5\n{}\n", hex::encode([7u8; 32])),
        format!("o\n5\n{root}\n\n"),
        format!("o\n5\n{root}\next\n\n"),
    ];
    for text in &bad {
        assert!(
            matches!(
                Checkpoint::parse_body(text),
                Err(CheckpointError::MalformedBody(_))
            ),
            "{text:?}"
        );
    }
}

#[test]
fn bad_origins_cannot_be_signed() {
    let key = key(ORIGIN, 1);
    for origin in ["", "two\nlines", "tab\there"] {
        let checkpoint = Checkpoint {
            origin: origin.to_owned(),
            size: 1,
            root: Hash::ZERO,
        };
        assert!(
            matches!(
                checkpoint.sign(&key),
                Err(CheckpointError::InvalidOrigin(_))
            ),
            "{origin:?}"
        );
    }
    assert!(matches!(
        sign_note("no final newline", &key),
        Err(NoteError::Malformed(_))
    ));
}

#[test]
fn witness_accepts_a_log_that_grew() {
    let tree = tree(30);
    let key = key(ORIGIN, 1);
    let verifier = key.verifier();
    let old = open_checkpoint(&checkpoint(12).sign(&key).unwrap(), &verifier).unwrap();
    let new = open_checkpoint(&checkpoint(30).sign(&key).unwrap(), &verifier).unwrap();
    let proof = tree.consistency_proof(12, 30).unwrap();
    assert_eq!(check_consistent(&old, &new, &proof), Ok(()));
    let same = tree.consistency_proof(30, 30).unwrap();
    assert_eq!(check_consistent(&new, &new, &same), Ok(()));
    let inclusion = tree.inclusion_proof(4, 30).unwrap();
    assert_eq!(check_included(&new, &inclusion), Ok(()));
    assert!(matches!(
        check_included(&old, &inclusion),
        Err(WitnessError::ProofNotForCheckpoint { .. })
    ));
}

#[test]
fn witness_reports_rollback_and_fork_loudly() {
    let tree = tree(30);
    let old = checkpoint(20);
    let new = checkpoint(30);
    let proof = tree.consistency_proof(20, 30).unwrap();

    let rollback = check_consistent(&new, &old, &proof);
    assert_eq!(
        rollback,
        Err(WitnessError::Rollback {
            old_size: 30,
            new_size: 20
        })
    );
    assert!(rollback.unwrap_err().to_string().starts_with("ROLLBACK"));

    let fork = Checkpoint {
        root: flipped(&new.root),
        ..new.clone()
    };
    let same = tree.consistency_proof(30, 30).unwrap();
    let result = check_consistent(&new, &fork, &same);
    assert_eq!(
        result,
        Err(WitnessError::Fork {
            size: 30,
            old_root: new.root,
            new_root: fork.root
        })
    );
    assert!(result.unwrap_err().to_string().starts_with("FORK"));

    let elsewhere = Checkpoint {
        origin: "other.example/log".to_owned(),
        ..new.clone()
    };
    assert!(matches!(
        check_consistent(&old, &elsewhere, &proof),
        Err(WitnessError::OriginMismatch { .. })
    ));
}

#[test]
fn witness_catches_a_rewritten_history() {
    // The log rewrote record 5 and kept growing: its new checkpoint and its own proof cannot
    // show the old checkpoint inside the new tree.
    let honest_old = checkpoint(20);
    let mut hashes = common::record_hashes(30);
    hashes[4] = flipped(&hashes[4]);
    let rewritten: fundledger_audit::MerkleTree = hashes.into_iter().collect();
    let new = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 30,
        root: rewritten.root(),
    };
    let proof = rewritten.consistency_proof(20, 30).unwrap();
    assert!(matches!(
        check_consistent(&honest_old, &new, &proof),
        Err(WitnessError::ProofNotForCheckpoint { .. })
    ));
    let mut doctored = proof.clone();
    doctored.old_root = honest_old.root;
    assert!(matches!(
        check_consistent(&honest_old, &new, &doctored),
        Err(WitnessError::Proof(ProofError::OldRootMismatch { .. }))
    ));
}
