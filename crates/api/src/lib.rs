//! The HTTP service of fundledger (DESIGN §9): an axum [`Router`] over the ledger, bearer
//! tokens mapped to actors, the finance bureau's dashboard, OpenAPI and Prometheus metrics.
//!
//! - [`app`] builds the router from an [`AppState`]; it is kept apart from any `main` so
//!   tests drive it in process with `tower::ServiceExt::oneshot`. [`serve`] runs it on a
//!   listener until a shutdown future resolves (graceful: requests in flight finish).
//! - [`AppState`] holds the [`Ledger`] handle (reads use its last published snapshot and never
//!   wait on the writer; writes use [`Ledger::try_enqueue`], so a full queue is answered at
//!   once with 503 and `Retry-After`), the store (for `/v1/events` and proofs), the
//!   principals, an incrementally grown Merkle tree, and the slot holding the latest signed
//!   checkpoint.
//! - [`Config`] is the TOML configuration of §9; a [`Principal`] maps the BLAKE3 hash of a
//!   bearer token to an actor. Tokens are compared by hash in constant time and never logged.
//!   [`demo_principals`] mints random tokens for `serve --demo` (demo only).
//! - [`AppError`] is every failure as a JSON body `{"code","message"}`; `POST /v1/commands`
//!   answers with the outcome object of §7 instead whenever the failure has a §7 code.
//! - [`routes::route_docs`] is the one route table the router *and* `/openapi.json`
//!   ([`openapi::document`]) are built from, so no route exists without its OpenAPI entry.
//!
//! Roles on reads: applicants see only their own firm (`/v1/firms/{other}` is 403, another
//! firm's application is 404 `unknown_application`, lists are filtered, `/v1/budgets` and
//! `/v1/events` are 403); every other role reads everything. Writes are decided by the ledger
//! (auditors get `forbidden` there). The actor of a command is always the token's principal:
//! an `actor` in the body is replaced, an `at` removed (the service uses the writer's clock).

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use fundledger_audit::{Checkpoint, CheckpointError, MerkleTree, SigningKey};
use fundledger_events::Hash;
use fundledger_ledger::Ledger;
use fundledger_store::{EventStore, StoreError};

mod auth;
pub mod config;
mod dashboard;
pub mod error;
mod handlers;
mod metrics;
mod middleware;
pub mod openapi;
pub mod routes;

pub use config::{
    demo_principals, token_hash_hex, validate_principals, Config, ConfigError, DemoTokens,
    Principal,
};
pub use error::AppError;

/// The latest signed checkpoint (a C2SP signed note), served at `/v1/checkpoint`.
pub type CheckpointSlot = Arc<RwLock<Option<String>>>;

/// Records read from the store per page when growing the Merkle tree.
const TREE_PAGE_RECORDS: usize = 1_000;

/// Limits on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub body_bytes_max: usize,
    /// Longest a request may take (503 `timeout` beyond).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes_max: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything the handlers share. Cheap to clone (handles and `Arc`s).
#[derive(Clone)]
pub struct AppState {
    ledger: Ledger,
    store: Arc<dyn EventStore>,
    principals: Arc<auth::Principals>,
    checkpoint: CheckpointSlot,
    tree: Arc<tokio::sync::Mutex<MerkleTree>>,
    limits: Limits,
    http: Arc<metrics::HttpCounters>,
}

/// Why a checkpoint could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointSignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] CheckpointError),
    #[error("the store's log does not match the ledger: {0}")]
    Log(String),
}

impl AppState {
    /// The state of a service over `ledger` (opened on `store`) for these principals, with
    /// default [`Limits`] and no checkpoint yet. Refuses principals that
    /// [`validate_principals`] refuses.
    pub fn new(
        ledger: Ledger,
        store: Arc<dyn EventStore>,
        principals: Vec<Principal>,
    ) -> Result<AppState, ConfigError> {
        Ok(AppState {
            ledger,
            store,
            principals: Arc::new(auth::Principals::new(principals)?),
            checkpoint: Arc::new(RwLock::new(None)),
            tree: Arc::new(tokio::sync::Mutex::new(MerkleTree::new())),
            limits: Limits::default(),
            http: Arc::new(metrics::HttpCounters::default()),
        })
    }

    pub fn with_limits(mut self, limits: Limits) -> AppState {
        self.limits = limits;
        self
    }

    /// Serves checkpoints from this slot (e.g. one the serve command fills).
    pub fn with_checkpoint_slot(mut self, slot: CheckpointSlot) -> AppState {
        self.checkpoint = slot;
        self
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The slot `/v1/checkpoint` serves from.
    pub fn checkpoint_slot(&self) -> CheckpointSlot {
        self.checkpoint.clone()
    }

    /// Replaces the served checkpoint.
    pub fn set_checkpoint(&self, note: Option<String>) {
        let mut slot = self
            .checkpoint
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = note;
    }

    pub(crate) fn checkpoint(&self) -> Option<String> {
        self.checkpoint
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Signs a checkpoint of the log as far as the ledger has published it, stores it in the
    /// slot `/v1/checkpoint` serves, and returns it. The serve command calls this at start and
    /// then periodically.
    pub async fn sign_checkpoint(&self, key: &SigningKey) -> Result<String, CheckpointSignError> {
        let size = self.ledger.snapshot().last_seq;
        let tree = self.tree_at(size).await?;
        let checkpoint = Checkpoint {
            origin: self.store.origin().to_string(),
            size,
            root: tree
                .root_at(size)
                .map_err(|e| CheckpointSignError::Log(e.to_string()))?,
        };
        drop(tree);
        let note = checkpoint.sign(key)?;
        self.set_checkpoint(Some(note.clone()));
        Ok(note)
    }

    /// The Merkle tree grown (from the store) to hold at least `size` records.
    pub(crate) async fn tree_at(
        &self,
        size: u64,
    ) -> Result<tokio::sync::MutexGuard<'_, MerkleTree>, CheckpointSignError> {
        let mut tree = self.tree.lock().await;
        while tree.len() < size {
            let from_seq = tree.len() + 1;
            let page = self.store.read(from_seq, TREE_PAGE_RECORDS).await?;
            if page.is_empty() {
                return Err(CheckpointSignError::Log(format!(
                    "the store holds no record at seq {from_seq}, below the ledger's head {size}"
                )));
            }
            for record in page {
                if record.seq != tree.len() + 1 {
                    return Err(CheckpointSignError::Log(format!(
                        "the store returned seq {} where seq {} was expected",
                        record.seq,
                        tree.len() + 1
                    )));
                }
                let expected_prev = match tree.len() {
                    0 => fundledger_events::genesis(self.store.origin()),
                    len => tree.record_hash(len - 1).unwrap_or(Hash::ZERO),
                };
                if record.prev != expected_prev {
                    return Err(CheckpointSignError::Log(format!(
                        "record seq {} does not link to the one before it",
                        record.seq
                    )));
                }
                tree.push(record.hash);
            }
        }
        Ok(tree)
    }
}

/// The whole service as a router: every route of [`routes::route_docs`], the JSON 404 and 405
/// answers, the body limit, the request timeout and request logging.
pub fn app(state: AppState) -> Router {
    middleware::wrap(routes::router(), state)
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then stops taking connections and
/// lets requests in flight finish. Closing the ledger afterwards (finishing the batch in
/// flight) is the caller's job: `ledger.close().await`. The writer stops only when every
/// [`Ledger`] handle is gone, so drop (or stop the tasks holding) any other clone of the
/// [`AppState`] first — e.g. a periodic [`AppState::sign_checkpoint`] task — or `close` waits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
