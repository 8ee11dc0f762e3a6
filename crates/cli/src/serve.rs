//! `fundledger serve [--store URL] [--listen ADDR] [--config FILE] [--demo]`: the HTTP service
//! of DESIGN §9 over the embedded or PostgreSQL store.
//!
//! With `--demo`, an empty store first receives the demo scenario (dated from 2024-05-22), and
//! a random bearer token is minted for every member of the demo cast and printed — demo only:
//! the tokens live in this process and die with it. Without `--demo`, principals come from the
//! config file (`token_blake3` hashes only). SIGTERM or Ctrl-C stops taking requests, lets the
//! requests and the batch in flight finish, closes the store and exits 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use fundledger_api::{AppState, Config, Principal};
use fundledger_audit::SigningKey;
use fundledger_ledger::{Ledger, WriterOptions};
use fundledger_store::EventStore;

use crate::ledger_args::DEFAULT_ORIGIN;
use crate::store_args::{redact_url, DEFAULT_STORE_URL, STORE_ENV};

/// The address served when neither `--listen` nor the config file says (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How often the service looks whether the head moved and a new checkpoint is due: checkpoints
/// follow batches, at most one per interval.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// `serve --demo` looks whether a store of at most this many records holds (part of) the demo
/// and nothing else; the demo is a few hundred records.
const DEMO_LOOK_RECORDS_MAX: u64 = 5_000;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The ledger: sqlite://PATH or postgres://… (default sqlite://data/fundledger.db)
    #[arg(long, value_name = "URL", env = STORE_ENV)]
    pub store: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// TOML configuration: listen, store, checkpoint_key and [[principals]] (DESIGN §9)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the demo scenario into an empty store and print demo-only tokens for its cast
    #[arg(long)]
    pub demo: bool,
    /// The origin (name) given to a new ledger; an existing ledger keeps its own
    #[arg(long, value_name = "ORIGIN", env = "FUNDLEDGER_ORIGIN", default_value = DEFAULT_ORIGIN)]
    pub origin: String,
    /// Sign checkpoints with this key file (from `fundledger keygen`) and serve them
    #[arg(long, value_name = "FILE")]
    pub checkpoint_key: Option<PathBuf>,
    /// Poll the store's head this often (ms) to follow other server processes on the same
    /// ledger when a notification was missed (PostgreSQL notifies at once; default 1000)
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub follow_interval_ms: Option<u64>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            Config::from_toml(&text)
                .with_context(|| format!("the config file {} is not valid", path.display()))?
        }
        None => Config {
            listen: None,
            store: None,
            checkpoint_key: None,
            follow_interval_ms: None,
            principals: Vec::new(),
        },
    };
    let store_url = args
        .store
        .clone()
        .or(config.store.clone())
        .unwrap_or_else(|| DEFAULT_STORE_URL.to_string());
    let listen = args
        .listen
        .clone()
        .or(config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let key = match args
        .checkpoint_key
        .as_ref()
        .or(config.checkpoint_key.as_ref())
    {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the checkpoint key {}", path.display()))?;
            Some(SigningKey::parse(&text).with_context(|| {
                format!(
                    "{} is not a signing key from `fundledger keygen`",
                    path.display()
                )
            })?)
        }
        None => None,
    };

    let store: Arc<dyn EventStore> = Arc::from(
        fundledger_store::open(&store_url, &args.origin)
            .await
            .with_context(|| format!("cannot open the store {}", redact_url(&store_url)))?,
    );
    let mut principals: Vec<Principal> = config.principals.clone();
    // Printed once the listener is bound, with the address it got (`--listen 127.0.0.1:0`).
    let mut demo_tokens = None;
    if args.demo {
        let before = store
            .head()
            .await
            .context("cannot read the store's head")?
            .seq;
        // An empty store gets the demo; a store holding part of it (a process killed while
        // writing it) gets the rest; a store holding anything else is served as it is. Only
        // a small ledger can be a demo, so only a small one is replayed to look.
        let mut summary = None;
        if before <= DEMO_LOOK_RECORDS_MAX {
            let ledger = Ledger::open(store.clone(), crate::demo_cmd::demo_writer_options()?)
                .await
                .context("cannot open the ledger")?;
            let seed = fundledger_demo::DEFAULT_SEED;
            if crate::demo_cmd::holds_only_the_demo(&ledger, seed)
                && !crate::demo_cmd::holds_the_whole_demo(&ledger, seed)
            {
                summary = Some(crate::demo_cmd::populate(&ledger, seed).await);
            }
            ledger.close().await;
        }
        match summary.transpose()? {
            Some(summary) if before <= 1 => eprintln!(
                "demo: wrote the demo scenario ({} records) into {}",
                summary.head_seq,
                redact_url(&store_url)
            ),
            Some(summary) if summary.head_seq > before => eprintln!(
                "demo: resumed an interrupted demo: the store held {before} records, now {}",
                summary.head_seq
            ),
            _ => eprintln!(
                "demo: the store already holds {before} records; serving them as they are"
            ),
        }
        let (demo, tokens) = fundledger_api::demo_principals(&fundledger_demo::demo_principals())
            .context("the demo cast")?;
        principals.extend(demo);
        demo_tokens = Some(tokens);
    } else if principals.is_empty() {
        eprintln!("warning: no principals are configured (--config FILE); every /v1 request will be answered 401");
    }

    let ledger = Ledger::open(store.clone(), WriterOptions::default())
        .await
        .context("cannot open the ledger")?;
    let state = AppState::new(ledger.clone(), store.clone(), principals)
        .context("the principals are not valid")?;
    let checkpoints = key.map(|key| tokio::spawn(sign_checkpoints(state.clone(), key)));
    let follow_interval = args
        .follow_interval_ms
        .or(config.follow_interval_ms)
        .map_or(
            fundledger_ledger::DEFAULT_POLL_INTERVAL,
            Duration::from_millis,
        );
    // Other processes may write this ledger too (DESIGN §3): keep the reads fresh.
    let follower =
        fundledger_ledger::spawn_follower(ledger.clone(), store.clone(), follow_interval);

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen.clone());
    eprintln!(
        "fundledger: serving {} ({} store) on http://{address}/",
        ledger.origin(),
        ledger.backend()
    );
    if let Some(tokens) = &demo_tokens {
        print_demo_tokens(&address, tokens);
    }
    let served = fundledger_api::serve(listener, state, shutdown_signal()).await;
    // The writer stops once every handle is gone: stop the tasks that hold one first.
    follower.abort();
    let _ = follower.await;
    if let Some(task) = checkpoints {
        task.abort();
        let _ = task.await;
    }
    ledger.close().await;
    eprintln!("fundledger: stopped");
    served.context("the HTTP server failed")?;
    Ok(())
}

/// Signs a checkpoint at start and whenever the head moved since the last one.
async fn sign_checkpoints(state: AppState, key: SigningKey) {
    let mut signed_size = None;
    loop {
        let size = state.ledger().snapshot().last_seq;
        if signed_size != Some(size) {
            match state.sign_checkpoint(&key).await {
                Ok(_) => signed_size = Some(size),
                Err(error) => tracing::error!(%error, "signing a checkpoint failed"),
            }
        }
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
    }
}

fn print_demo_tokens(listen: &str, tokens: &[(Principal, String)]) {
    println!("==== DEMO ONLY: bearer tokens minted for this run; they die with the process ====");
    for (principal, token) in tokens {
        let unit = principal
            .unit
            .as_deref()
            .or(principal.firm.as_deref())
            .unwrap_or("");
        println!(
            "{:<11} {:<16} {:<22} {token}",
            role_name(principal),
            principal.id,
            unit
        );
    }
    if let Some((_, token)) = tokens.iter().find(|(p, _)| role_name(p) == "finance") {
        println!("dashboard (as finance): http://{listen}/#token={token}");
    }
    println!(
        "==== example: curl -H 'Authorization: Bearer <token>' http://{listen}/v1/budgets ===="
    );
}

fn role_name(principal: &Principal) -> &'static str {
    principal.role.as_str()
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    eprintln!("fundledger: shutting down (finishing requests in flight)");
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests in one process) would fail; that is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: no escape codes in a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
