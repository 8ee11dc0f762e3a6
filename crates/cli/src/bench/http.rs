//! `bench http`: requests/s and latency of the HTTP service on loopback, with a built-in load
//! generator, so it runs anywhere without `wrk`.
//!
//! The service runs in this process exactly as `serve` builds it (`fundledger_api::serve` on
//! a listener at 127.0.0.1:0, the writer on a scratch store). `--connections` clients, each
//! one keep-alive HTTP/1.1 connection sending its next request as soon as the answer arrives
//! (a closed loop), drive three endpoints in turn, each for `--seconds`:
//!
//! - baseline `GET /healthz`: no token, a snapshot read and a tiny JSON body — the floor of
//!   axum plus our middleware (timeout, status counters, logging) on this machine, measured
//!   first and again last (the higher rate is the baseline, as the machine's load drifts);
//! - read `GET /v1/budgets` as finance: token check + a projection as JSON;
//! - write `POST /v1/commands`: a compute-voucher submission for a new firm each time, so
//!   every request is decided, sealed, appended (a durable commit, shared by the batch) and
//!   projected.
//!
//! The ratio printed is write requests/s ÷ baseline requests/s: the share of the HTTP stack's
//! own speed the write path keeps. Client and server share the machine's cores: on 2 cores
//! these are figures of the whole loop, not of the server alone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use clap::Args;
use fundledger_api::AppState;
use fundledger_ledger::{Ledger, WriterOptions};
use fundledger_store::EventStore;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::workload::{self, command_id, firm_uscc};
use super::{data_dir, load_average, thousands, StoreChoice, BENCH_ORIGIN};

/// Requests before the clock starts on each endpoint (connections made, caches warm).
const WARM_UP: Duration = Duration::from_millis(500);
/// The business time the writer's clock is fixed at: inside the policy's window, whatever
/// the date of the run.
const BENCH_CLOCK: &str = "2025-06-02T10:00:00+08:00";
/// Largest response accepted by the load generator.
const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// sqlite, sqlite://DIR, postgres or postgres://ADMIN_URL (scratch store, removed after)
    #[arg(long, value_name = "STORE", default_value = "sqlite")]
    pub store: String,
    /// Concurrent keep-alive connections
    #[arg(long, value_name = "C", default_value_t = 64)]
    pub connections: usize,
    /// Seconds of load per endpoint (after a short warm-up)
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub seconds: f64,
    /// Where scratch SQLite files go (default target/bench-data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// What one endpoint's run measured.
struct Measured {
    requests: u64,
    failures: u64,
    first_failure: Option<String>,
    seconds: f64,
    latencies_us: Vec<u32>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }

    fn percentile_ms(&self, percent: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((percent / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    fn line(&self, label: &str) -> String {
        format!(
            "  {label}: {} requests in {:.1} s = {} requests/s; p50 {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms; {} failed{}",
            thousands(self.requests),
            self.seconds,
            thousands(self.rate().round() as u64),
            self.percentile_ms(50.0),
            self.percentile_ms(99.0),
            self.percentile_ms(100.0),
            thousands(self.failures),
            self.first_failure
                .as_ref()
                .map(|failure| format!(" (first: {failure})"))
                .unwrap_or_default()
        )
    }
}

/// The request a client sends next.
#[derive(Clone, Copy)]
enum Endpoint {
    Healthz,
    Budgets,
    Submit,
}

pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    let choice = StoreChoice::parse(&args.store)?;
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    let scratch = choice.scratch(&data_dir(args.data_dir.as_deref())).await?;
    let store: Arc<dyn EventStore> = Arc::from(
        fundledger_store::open(&scratch.url, BENCH_ORIGIN)
            .await
            .context("cannot open the scratch store")?,
    );
    let now: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339(BENCH_CLOCK).context("the bench clock")?;
    let options = WriterOptions {
        clock: Arc::new(move || now),
        ..WriterOptions::default()
    };
    let ledger = Ledger::open(store.clone(), options).await?;
    for command in workload::budget_commands(1, 10_000)? {
        ledger.execute(command).await?;
    }
    let (principals, tokens) = fundledger_api::demo_principals(&[
        ("bench.rev", "reviewer", Some("市工信局"), None::<&str>),
        ("bench.fin", "finance", Some("市财政局"), None),
    ])?;
    let token = |id: &str| {
        tokens
            .iter()
            .find(|(principal, _)| principal.id == id)
            .map(|(_, token)| token.clone())
            .unwrap_or_default()
    };
    let tokens = Arc::new((token("bench.rev"), token("bench.fin")));
    let state = AppState::new(ledger.clone(), store.clone(), principals)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fundledger_api::serve(listener, state, async {
        let _ = stopped.await;
    }));
    println!(
        "bench http: {} store, {} connections, {:.1} s per endpoint, server and load generator \
         in one process on http://{address} ({})",
        choice.label(),
        args.connections,
        args.seconds,
        load_average()
    );

    let seconds = Duration::from_secs_f64(args.seconds);
    let healthz_first = load(address, Endpoint::Healthz, &args, seconds, tokens.clone()).await?;
    println!("{}", healthz_first.line("baseline GET /healthz"));
    let budgets = load(address, Endpoint::Budgets, &args, seconds, tokens.clone()).await?;
    println!("{}", budgets.line("read GET /v1/budgets"));
    let submits = load(address, Endpoint::Submit, &args, seconds, tokens.clone()).await?;
    println!("{}", submits.line("write POST /v1/commands"));
    // The baseline again, after the others: the machine's load drifts during a run, and the
    // higher of the two is the floor the others are held to.
    let healthz_last = load(address, Endpoint::Healthz, &args, seconds, tokens.clone()).await?;
    println!("{}", healthz_last.line("baseline GET /healthz, again"));
    let baseline_failures = healthz_first.failures + healthz_last.failures;
    let healthz = if healthz_last.rate() > healthz_first.rate() {
        healthz_last
    } else {
        healthz_first
    };
    let metrics = ledger.metrics();
    let batches = metrics.batches_total.load(Ordering::Relaxed).max(1);
    println!(
        "  writer: {:.1} records per append on average over the run",
        metrics.batch_records_sum.load(Ordering::Relaxed) as f64 / batches as f64
    );
    println!(
        "  read ÷ baseline: {:.2}",
        budgets.rate() / healthz.rate().max(f64::EPSILON)
    );
    println!(
        "  ratio (write requests/s ÷ baseline requests/s): {:.2}",
        submits.rate() / healthz.rate().max(f64::EPSILON)
    );
    println!("  ({})", load_average());

    let _ = stop.send(());
    server.await.context("the server task failed")??;
    ledger.close().await;
    drop(store);
    scratch.cleanup().await?;
    anyhow::ensure!(
        baseline_failures + budgets.failures + submits.failures == 0,
        "some requests failed; see above"
    );
    Ok(())
}

/// Drives one endpoint from every connection for the warm-up and then `seconds`.
async fn load(
    address: std::net::SocketAddr,
    endpoint: Endpoint,
    args: &HttpArgs,
    seconds: Duration,
    tokens: Arc<(String, String)>,
) -> anyhow::Result<Measured> {
    let start = Instant::now() + WARM_UP;
    let end = start + seconds;
    let next_firm = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for connection in 0..args.connections {
        let tokens = tokens.clone();
        let next_firm = next_firm.clone();
        clients.spawn(async move {
            client(
                address,
                endpoint,
                connection as u64,
                start,
                end,
                &tokens,
                &next_firm,
            )
            .await
        });
    }
    let mut measured = Measured {
        requests: 0,
        failures: 0,
        first_failure: None,
        seconds: seconds.as_secs_f64(),
        latencies_us: Vec::new(),
    };
    while let Some(joined) = clients.join_next().await {
        let (latencies, failures, first_failure) = joined.context("a load client panicked")??;
        measured.requests += latencies.len() as u64;
        measured.failures += failures;
        measured.first_failure = measured.first_failure.or(first_failure);
        measured.latencies_us.extend(latencies);
    }
    measured.latencies_us.sort_unstable();
    Ok(measured)
}

type ClientResult = (Vec<u32>, u64, Option<String>);

/// One keep-alive connection in a closed loop; latencies of the requests sent after `start`
/// and answered, and failures (a status other than 200).
async fn client(
    address: std::net::SocketAddr,
    endpoint: Endpoint,
    connection: u64,
    start: Instant,
    end: Instant,
    tokens: &(String, String),
    next_firm: &AtomicU64,
) -> anyhow::Result<ClientResult> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let mut rng = StdRng::seed_from_u64(connection);
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut first_failure = None;
    loop {
        let sent_at = Instant::now();
        if sent_at >= end {
            break;
        }
        let request = match endpoint {
            Endpoint::Healthz => "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n".to_string(),
            Endpoint::Budgets => format!(
                "GET /v1/budgets HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\r\n",
                tokens.1
            ),
            Endpoint::Submit => {
                let firm = 1_000_000 + next_firm.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::json!({
                    "command_id": command_id(&mut rng),
                    "type": "submit_application",
                    "application_id": format!("H-{firm}"),
                    "firm": {"uscc": firm_uscc(firm), "name": format!("郑州第{firm}号智算科技有限公司")},
                    "provision": "M2.compute_voucher",
                    "fiscal_year": 2025,
                    "amount": "100000.00",
                    "basis": {"contract_amount": "500000.00", "contract_id": format!("HT-H-{firm}"), "self_built": false},
                })
                .to_string();
                format!(
                    "POST /v1/commands HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    tokens.0,
                    body.len()
                )
            }
        };
        stream.write_all(request.as_bytes()).await?;
        let (status, body) = read_response(&mut stream, &mut buffer).await?;
        if sent_at < start {
            continue;
        }
        let elapsed_us = u32::try_from(sent_at.elapsed().as_micros()).unwrap_or(u32::MAX);
        latencies.push(elapsed_us);
        if status != 200 {
            failures += 1;
            if first_failure.is_none() {
                let shown: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                first_failure = Some(format!("{status} {shown}"));
            }
        }
    }
    Ok((latencies, failures, first_failure))
}

/// Reads one HTTP/1.1 response (Content-Length or chunked); returns its status and body.
/// Bytes after it stay in `buffer` for the next one.
async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let header_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("a response without a status")?;
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    if let Some(length) = header("content-length") {
        let length: usize = length.parse().context("a bad Content-Length")?;
        anyhow::ensure!(length <= RESPONSE_BYTES_MAX, "a response of {length} bytes");
        while buffer.len() < header_end + length {
            fill(stream, buffer).await?;
        }
        let body = buffer[header_end..header_end + length].to_vec();
        buffer.drain(..header_end + length);
        return Ok((status, body));
    }
    anyhow::ensure!(
        header("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")),
        "a response with neither Content-Length nor chunked encoding"
    );
    let mut body = Vec::new();
    let mut at = header_end;
    loop {
        let line_end = loop {
            if let Some(found) = find(&buffer[at..], b"\r\n") {
                break at + found;
            }
            fill(stream, buffer).await?;
        };
        let size_text = String::from_utf8_lossy(&buffer[at..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a bad chunk size")?;
        anyhow::ensure!(
            body.len() + size <= RESPONSE_BYTES_MAX,
            "a response too large"
        );
        let data_start = line_end + 2;
        while buffer.len() < data_start + size + 2 {
            fill(stream, buffer).await?;
        }
        body.extend_from_slice(&buffer[data_start..data_start + size]);
        at = data_start + size + 2;
        if size == 0 {
            break;
        }
    }
    buffer.drain(..at);
    Ok((status, body))
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let read = stream.read(&mut chunk).await?;
    anyhow::ensure!(read > 0, "the server closed the connection");
    anyhow::ensure!(
        buffer.len() + read <= RESPONSE_BYTES_MAX + 64 * 1024,
        "a response too large"
    );
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
