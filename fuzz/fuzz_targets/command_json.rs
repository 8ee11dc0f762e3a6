//! `Command::parse` (crates/ledger) on any bytes, as `apply` and `POST /v1/commands` read them.
//!
//! Properties, beyond "never panics":
//! - a rejection has a code of DESIGN §7 and a message;
//! - the digest (the idempotency key) is 64 lowercase hex digits and does not change when the
//!   same JSON value is written out and read back (whitespace, key order, escapes);
//! - a parsed command written back as a command object parses to the same command, and that
//!   object is a fixpoint: writing the re-parsed command gives the same object and digest;
//! - the canonical bytes (JCS) that the chain hashes are a fixpoint too: JCS read back and
//!   canonicalised again gives the same bytes. A body whose canonical form did not survive its
//!   own round trip would fail `verify` although nobody touched it.
#![no_main]

use fundledger_events::jcs;
use fundledger_ledger::{Code, Command, COMMAND_TYPES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check_canonical_fixpoint(&value);
    match Command::parse(&value) {
        Ok(command) => check_parsed(&value, &command),
        Err(rejection) => {
            assert!(
                !rejection.message.is_empty(),
                "a rejection without a message"
            );
            // Parse rejections are malformed or unauthorized (no actor): DESIGN §7's 400 and 401.
            let code = rejection.code.as_str();
            assert_eq!(Code::parse(code), Some(rejection.code), "code {code}");
            assert!(
                matches!(rejection.code, Code::Malformed | Code::Unauthorized),
                "a parse rejection with code {code}"
            );
        }
    }
});

fn check_canonical_fixpoint(value: &Value) {
    let canonical = jcs::canonicalize(value);
    let reread: Value = serde_json::from_slice(&canonical)
        .unwrap_or_else(|error| panic!("JCS output is not JSON ({error}): {canonical:?}"));
    let again = jcs::canonicalize(&reread);
    assert!(
        again == canonical,
        "JCS is not a fixpoint:\n{}\n{}",
        String::from_utf8_lossy(&canonical),
        String::from_utf8_lossy(&again)
    );
}

fn check_parsed(value: &Value, command: &Command) {
    assert_eq!(command.digest.len(), 64, "digest {:?}", command.digest);
    assert!(
        command
            .digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "digest {:?} is not lowercase hex",
        command.digest
    );
    assert!(COMMAND_TYPES.contains(&command.type_name()));

    // The same value, written out and read back: the same command, the same digest.
    let text = value.to_string();
    let reread: Value = serde_json::from_str(&text).expect("serde_json reads its own output");
    let again = Command::parse(&reread).unwrap_or_else(|rejection| {
        panic!("the command was refused after a text round trip: {rejection:?}\n{text}")
    });
    assert_eq!(&again, command, "a text round trip changed the command");

    // Written back as a command object (defaults filled in), it parses to the same command.
    let written = command_object(command);
    let reparsed = Command::parse(&written).unwrap_or_else(|rejection| {
        panic!("the re-serialised command was refused: {rejection:?}\n{written}")
    });
    assert_eq!(reparsed.command_id, command.command_id);
    assert_eq!(reparsed.actor, command.actor);
    assert_eq!(reparsed.at, command.at);
    assert_eq!(reparsed.payload, command.payload);
    let rewritten = command_object(&reparsed);
    assert_eq!(rewritten, written, "writing a command is not a fixpoint");
    let digest_again = Command::parse(&rewritten)
        .unwrap_or_else(|rejection| panic!("refused on the second round: {rejection:?}"))
        .digest;
    assert_eq!(
        digest_again, reparsed.digest,
        "the digest of one object changed"
    );
}

/// The command as a DESIGN §7 object: envelope fields plus the payload's (tagged by `type`).
fn command_object(command: &Command) -> Value {
    let Value::Object(mut object) =
        serde_json::to_value(&command.payload).expect("a payload serialises")
    else {
        panic!("a payload serialises to an object");
    };
    object.insert(
        "command_id".into(),
        Value::String(command.command_id.clone()),
    );
    object.insert(
        "actor".into(),
        serde_json::to_value(&command.actor).expect("an actor serialises"),
    );
    if let Some(at) = command.at {
        object.insert("at".into(), Value::String(at.to_rfc3339()));
    }
    Value::Object(object)
}
