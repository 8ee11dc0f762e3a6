//! Options of the subcommands that run the ledger itself (`apply`, `demo`, `serve`): the
//! store, and the origin a new ledger is created with.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fundledger_ledger::{Ledger, WriterOptions};

use crate::store_args::{redact_url, DEFAULT_STORE_URL, STORE_ENV};

/// The name of a ledger created without `--origin`.
pub const DEFAULT_ORIGIN: &str = "fundledger.example/zhengzhou-2024-62";

#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// The ledger: sqlite://PATH, postgres://USER[:PASSWORD]@HOST[:PORT]/DB (created if new)
    #[arg(long, value_name = "URL", env = STORE_ENV, default_value = DEFAULT_STORE_URL)]
    pub store: String,
    /// The origin (name) given to a new ledger; an existing ledger keeps its own
    #[arg(long, value_name = "ORIGIN", env = "FUNDLEDGER_ORIGIN", default_value = DEFAULT_ORIGIN)]
    pub origin: String,
}

impl LedgerArgs {
    /// Opens (or creates) the store and starts the writer on it.
    pub async fn open(&self, options: WriterOptions) -> anyhow::Result<Ledger> {
        let store = fundledger_store::open(&self.store, &self.origin)
            .await
            .with_context(|| format!("cannot open the store {}", redact_url(&self.store)))?;
        let store: Arc<dyn fundledger_store::EventStore> = Arc::from(store);
        Ledger::open(store, options)
            .await
            .context("cannot open the ledger")
    }
}
