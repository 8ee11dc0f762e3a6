//! `fundledger export`: the log as JSON Lines (DESIGN §5) for auditors, and two reports folded
//! from it for the finance bureau: the payment register as CSV ([`payments_csv`]) and the
//! approved grants as 360Giving JSON ([`giving360`]).
//!
//! Every format works on one snapshot: the store's head is taken once, at the start, and
//! nothing after it is read, so a ledger that keeps growing meanwhile still gives the state at
//! one head (named on stderr).
//!
//! - `jsonl`: the store is read [`PAGE_RECORDS`](crate::store_args::PAGE_RECORDS) at a time up
//!   to the head and each record is written as soon as it is read, so memory stays at one page
//!   whatever the log's length. It writes what the store holds, unchecked: finding a bad
//!   record is the auditor's `verify --file`, which then sees exactly what the store had.
//! - `payments-csv` and `360giving`: the records up to the head are chain-checked (DESIGN §5,
//!   from the genesis of the store's origin) and folded into a
//!   [`LedgerState`] — the same fold as `query` and the writer's `catch_up`, here
//!   bounded by the snapshot head — and the report is written from that state. A report is a
//!   statement about the ledger, so none is made over a broken chain: that is an
//!   `export: FAILED at seq N` finding (exit 1), as for `checkpoint` and `prove`.
//!
//! With `--out`, the export goes to a temporary file in the same directory that is renamed
//! over FILE only once it is complete and synced: a failed or interrupted export never leaves
//! a partial file under the final name. The store is opened (and for the reports, folded)
//! before the file is created, so a wrong `--store` or a broken chain leaves nothing.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use fundledger_events::{record_line, ChainVerifier, ExportHeader, Head};
use fundledger_projections::LedgerState;
use fundledger_store::EventStore;
use tempfile::NamedTempFile;

use crate::failure::{self, DataError};
use crate::output;
use crate::store_args::{self, Pages, StoreArgs};
use crate::{giving360, payments_csv};

/// Output buffer: large writes keep the per-record cost at formatting, not system calls.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
const COMMAND: &str = "export";

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,

    /// Write to FILE instead of stdout (complete or not at all: written aside, then renamed)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The export formats of DESIGN §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines of DESIGN §5: a header line, then one record per line
    Jsonl,
    /// The payment register as CSV for Excel/WPS (UTF-8 with BOM, CRLF), one row per payout
    PaymentsCsv,
    /// Approved applications as 360Giving grants: {"grants":[…]}
    #[value(name = "360giving")]
    ThreeSixtyGiving,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        if out.is_dir() {
            bail!("--out {} is a directory; name a file", out.display());
        }
    }
    // The store is opened before any output file exists, so a wrong --store leaves nothing.
    let store = store_args::open_existing(&args.store.store).await?;
    let head = store_args::head(&*store).await?;
    let page_records = args.store.page_records;
    let summary = match args.format {
        ExportFormat::Jsonl => {
            let mut sink = Sink::open(args.out.as_deref())?;
            let written = write_jsonl(&*store, head, page_records, &mut sink).await?;
            sink.finish()?;
            format!("{written} records")
        }
        ExportFormat::PaymentsCsv => {
            let state = fold(&*store, head.seq, page_records).await?;
            let mut sink = Sink::open(args.out.as_deref())?;
            let rows = payments_csv::write(&state, &mut sink.writer)
                .map_err(|error| sink.write_error(error))?;
            sink.finish()?;
            format!("{rows} payouts (payment register)")
        }
        ExportFormat::ThreeSixtyGiving => {
            let state = fold(&*store, head.seq, page_records).await?;
            // Built in memory first: an inconsistency in the state is reported before any
            // output file exists.
            let document = giving360::document(&state)?;
            let mut sink = Sink::open(args.out.as_deref())?;
            giving360::write(&document, &mut sink.writer)
                .map_err(|error| sink.write_error(error))?;
            sink.finish()?;
            format!("{} grants (360Giving)", document.grants.len())
        }
    };
    output::print_stderr(&format!(
        "export: {summary} of {:?} (head seq {}, hash {})",
        store.origin(),
        head.seq,
        head.hash
    ));
    Ok(())
}

/// Where an export goes: stdout, or a temporary file beside `--out` that [`Sink::finish`]
/// syncs and renames over it. Dropped without `finish`, the temporary file is removed.
struct Sink {
    writer: BufWriter<Box<dyn Write + Send>>,
    file: Option<(NamedTempFile, PathBuf)>,
    /// Where the bytes go, for error messages.
    target: String,
}

impl Sink {
    fn open(out: Option<&Path>) -> anyhow::Result<Sink> {
        let Some(out) = out else {
            return Ok(Sink {
                writer: BufWriter::with_capacity(WRITE_BUFFER_BYTES, Box::new(std::io::stdout())),
                file: None,
                target: "stdout".to_string(),
            });
        };
        let dir = match out.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temporary = tempfile::Builder::new()
            .prefix(".fundledger-export-")
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        let target = temporary.path().display().to_string();
        let handle = temporary
            .as_file()
            .try_clone()
            .with_context(|| format!("cannot open {target} for writing"))?;
        Ok(Sink {
            writer: BufWriter::with_capacity(WRITE_BUFFER_BYTES, Box::new(handle)),
            file: Some((temporary, out.to_path_buf())),
            target,
        })
    }

    fn write_error(&self, error: std::io::Error) -> anyhow::Error {
        anyhow::Error::new(error).context(format!("cannot write the export to {}", self.target))
    }

    /// Flushes; for a file, syncs it and renames it over `--out`.
    fn finish(mut self) -> anyhow::Result<()> {
        self.writer
            .flush()
            .map_err(|error| self.write_error(error))?;
        if let Some((temporary, out)) = self.file.take() {
            // Synced before the rename, so after a crash the final name holds all of it or
            // nothing.
            temporary
                .as_file()
                .sync_all()
                .map_err(|error| self.write_error(error))?;
            temporary
                .persist(&out)
                .map_err(|error| error.error)
                .with_context(|| format!("cannot move the finished export to {}", out.display()))?;
        }
        Ok(())
    }
}

/// The header, then every record up to `head`, one line each.
async fn write_jsonl(
    store: &dyn EventStore,
    head: Head,
    page_records: usize,
    sink: &mut Sink,
) -> anyhow::Result<u64> {
    // Read errors pass through as they are (a corrupt record is a finding, exit 1); write
    // errors say where the export was going.
    fn write_line(sink: &mut Sink, line: &[u8]) -> anyhow::Result<()> {
        sink.writer
            .write_all(line)
            .and_then(|()| sink.writer.write_all(b"\n"))
            .map_err(|error| sink.write_error(error))
    }
    write_line(sink, ExportHeader::new(store.origin()).to_line().as_bytes())?;
    let mut pages = Pages::up_to(store, head.seq, page_records, COMMAND);
    let mut written_records = 0u64;
    while let Some(page) = pages.next_page().await? {
        for record in &page {
            write_line(sink, record_line(record).as_bytes())?;
        }
        written_records += page.len() as u64;
    }
    // Pages stops at the head, and fails when the store has fewer records than its head says.
    debug_assert!(written_records <= head.seq);
    Ok(written_records)
}

/// Records 1..=`last_seq`, chain-checked and folded into the projections. This is
/// `fundledger_ledger::catch_up` bounded by the snapshot head, with the chain checked by the
/// same verifier as `verify` so that a bad record is named as `export: FAILED at seq N`.
async fn fold(
    store: &dyn EventStore,
    last_seq: u64,
    page_records: usize,
) -> anyhow::Result<LedgerState> {
    let mut verifier = ChainVerifier::new(store.origin());
    let mut state = LedgerState::default();
    let mut pages = Pages::up_to(store, last_seq, page_records, COMMAND);
    while let Some(page) = pages.next_page().await? {
        for record in &page {
            verifier
                .check_record(record)
                .map_err(|error| failure::store_chain_failure(COMMAND, &error))?;
            state.apply(record).map_err(|error| {
                DataError(format!(
                    "{COMMAND}: FAILED at seq {}: the record cannot be folded into the \
                     ledger's projections: {error}",
                    record.seq
                ))
            })?;
        }
    }
    // Pages fails when records run out early and the verifier refuses anything but seq + 1.
    debug_assert_eq!(state.last_seq, last_seq);
    Ok(state)
}
