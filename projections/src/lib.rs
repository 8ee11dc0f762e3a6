//! Pure folds from fundledger's log to its read models. No IO, no clock.
//!
//! [`LedgerState`] holds every projection — budgets by measure and fiscal year, firms (voucher
//! claims per year, awards), labs (envelope, window, tranches by year), applications with their
//! history, the payment register, clawbacks, the review queue, and the command index used for
//! idempotency — in persistent maps, so a clone is cheap: the writer decides a batch on a copy
//! and readers hold the last published snapshot. [`LedgerState::apply`] folds one record;
//! [`LedgerState::replay`] folds a whole log, and by construction gives the same state as
//! folding incrementally. The `*_rows` methods produce the row shapes of DESIGN §8.
//! [`invariants`] checks what must hold in every state (no cap, envelope or budget exceeded).

pub mod id;
pub mod invariants;
pub mod rows;
pub mod state;
pub mod yuan;

pub use id::Id;
pub use rows::{ApplicationRow, BudgetRow, ClawbackRow, FirmRow, LabRow, PaymentRow, QueueRow};
pub use state::{
    business_date, Application, ApplicationStatus, ApplyError, Budget, Clawback, CommandRecord,
    FirmState, HistoryEntry, Lab, LedgerState, Payout, PayoutStatus, TrancheYear,
};
