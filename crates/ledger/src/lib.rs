//! Commands, the rules of 郑政文〔2024〕62号, and the single writer.
//!
//! - [`Command`] parses one command object of DESIGN §7 strictly ([`Command::parse`]); a
//!   command that cannot be read gets a [`ParseRejection`] with its [`Code`].
//! - [`decide`] is pure: state + command + business time → [`Decision`] (events to append, a
//!   recorded refusal of a submission, or a rejection with a code). It enforces roles and
//!   segregation of duties, the policy and programme windows, every provision's limit, the
//!   once-only awards, the compute-voucher yearly cap, lab envelopes and budgets.
//! - [`Ledger`] is the writer task and its handle: a bounded queue, group commit (decide a
//!   batch, seal it, append it in one transaction, publish, reply), idempotency by
//!   `command_id` rebuilt from the log, and catch-up-and-decide-again on append conflicts.
//! - [`spawn_follower`] keeps a process's reads fresh when other processes write the same
//!   ledger (store notifications, with a polling fallback).
//! - [`Outcome`] is the reply of DESIGN §7; [`uscc`] checks GB 32100-2015 codes.

pub mod code;
pub mod command;
pub mod decide;
pub mod follow;
pub mod outcome;
pub mod uscc;
pub mod writer;

pub use code::Code;
pub use command::{Command, ParseRejection, Payload, COMMAND_TYPES};
pub use decide::{cst_date, decide, parse_amount, Decision, FINANCE_UNIT};
pub use follow::{spawn_follower, DEFAULT_POLL_INTERVAL};
pub use outcome::Outcome;
pub use writer::{
    catch_up, system_clock, Clock, Ledger, LedgerError, Metrics, Pending, SubmitError,
    WriterOptions, APPEND_BUCKETS_MS, GENESIS_COMMAND_ID,
};
