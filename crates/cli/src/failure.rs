//! Exit codes, and the one error type that says "the data is bad" rather than "the command
//! could not run".
//!
//! Auditors script `verify`: they must tell a ledger that failed verification (exit 1) from a
//! verification that could not be done (a typo in a path, a database that is down: exit 2).

use std::fmt;

/// The data was read and is wrong: tampering, a bad signature, a fork or a rollback.
pub const EXIT_DATA_BAD: u8 = 1;
/// The command could not do its work: bad arguments, unreadable files, unreachable stores.
pub const EXIT_USAGE_OR_IO: u8 = 2;

/// A finding about the data, printed as it is (e.g. `verify: FAILED at seq 7: …`), exit 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError(pub String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// 1 when any error in the chain is a [`DataError`], else 2.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.chain().any(|cause| cause.is::<DataError>()) {
        EXIT_DATA_BAD
    } else {
        EXIT_USAGE_OR_IO
    }
}

/// The `<command>: FAILED …` line for a chain error, naming the first bad seq up front.
///
/// `VerifyError`'s own text starts with `seq N` when it has a seq; that prefix is folded into
/// `FAILED at seq N` instead of being repeated.
pub fn chain_failure(command: &str, error: &fundledger_events::VerifyError) -> DataError {
    let text = error.to_string();
    match error.seq() {
        Some(seq) => {
            let prefix = format!("seq {seq}");
            match text.strip_prefix(&prefix) {
                Some(rest) if rest.starts_with(':') || rest.starts_with(" (") => {
                    DataError(format!("{command}: FAILED at seq {seq}{rest}"))
                }
                _ => DataError(format!("{command}: FAILED at seq {seq}: {text}")),
            }
        }
        None => DataError(format!("{command}: FAILED: {text}")),
    }
}

/// [`chain_failure`] for records read from a store, which has no lines: the `(line N)` the
/// verifier adds for export files is left out.
pub fn store_chain_failure(command: &str, error: &fundledger_events::VerifyError) -> DataError {
    let DataError(text) = chain_failure(command, error);
    match error.seq() {
        Some(seq) => DataError(text.replacen(&format!(" (line {})", seq.saturating_add(1)), "", 1)),
        None => DataError(text),
    }
}

/// A `<command>: FAILED: …` line for findings that are not about one record.
pub fn failed(command: &str, what: impl fmt::Display) -> DataError {
    DataError(format!("{command}: FAILED: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundledger_events::{Hash, VerifyError};

    #[test]
    fn chain_failures_name_the_seq_once() {
        let cases = [
            (
                VerifyError::HashMismatch {
                    seq: 7,
                    stated: Hash::ZERO,
                    computed: Hash::ZERO,
                },
                "verify: FAILED at seq 7: hash mismatch",
            ),
            (
                VerifyError::InvalidLine {
                    seq: 3,
                    line: 4,
                    reason: "EOF".into(),
                },
                "verify: FAILED at seq 3 (line 4): torn or invalid line",
            ),
            (
                VerifyError::WrongOrigin {
                    expected: "a".into(),
                    found: "b".into(),
                },
                "verify: FAILED: wrong origin",
            ),
        ];
        for (error, expected) in cases {
            let text = chain_failure("verify", &error).to_string();
            assert!(
                text.starts_with(expected),
                "{text:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn store_failures_have_no_line_numbers() {
        let error = VerifyError::SeqOutOfOrder {
            seq: 5,
            line: 6,
            found: 6,
        };
        let text = store_chain_failure("verify", &error).to_string();
        assert!(
            text.starts_with("verify: FAILED at seq 5: expected seq 5"),
            "{text}"
        );
    }

    #[test]
    fn exit_codes_follow_the_error_kind() {
        let data = anyhow::Error::new(DataError("bad".into()));
        assert_eq!(exit_code(&data), EXIT_DATA_BAD);
        assert_eq!(exit_code(&data.context("while verifying")), EXIT_DATA_BAD);
        assert_eq!(
            exit_code(&anyhow::anyhow!("no such file")),
            EXIT_USAGE_OR_IO
        );
    }
}
