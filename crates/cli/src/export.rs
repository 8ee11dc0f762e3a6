//! `fundledger export`: the log as JSON Lines (DESIGN §5), for auditors.
//!
//! The store is read [`PAGE_RECORDS`](crate::store_args::PAGE_RECORDS) at a time up to the head
//! taken at the start, and each record is written as soon as it is read, so memory stays at one
//! page whatever the log's length. With `--out`, the export goes to a temporary file in the
//! same directory that is renamed over FILE only once it is complete and synced: a failed or
//! interrupted export never leaves a partial file under the final name.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use fundledger_events::{record_line, ExportHeader, Head};
use fundledger_store::EventStore;

use crate::output;
use crate::store_args::{self, Pages, StoreArgs};

/// Output buffer: large writes keep the per-record cost at formatting, not system calls.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

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

/// The export formats of DESIGN §8. Only `jsonl` exists yet; the others need the ledger's
/// payment register and arrive with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines of DESIGN §5: a header line, then one record per line
    Jsonl,
    /// The payment register as CSV
    PaymentsCsv,
    /// 360Giving grants data
    #[value(name = "360giving")]
    ThreeSixtyGiving,
}

impl ExportFormat {
    fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_string())
            .unwrap_or_else(|| format!("{self:?}"))
    }
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    if args.format != ExportFormat::Jsonl {
        bail!(
            "export format {} is not available yet: it needs the ledger's payment register, \
             which this build does not include; use --format jsonl",
            args.format.name()
        );
    }
    if let Some(out) = &args.out {
        if out.is_dir() {
            bail!("--out {} is a directory; name a file", out.display());
        }
    }
    // The store is opened before any output file exists, so a wrong --store leaves nothing.
    let store = store_args::open_existing(&args.store.store).await?;
    let head = store_args::head(&*store).await?;
    let written_records = match &args.out {
        None => {
            let stdout = std::io::stdout();
            let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, stdout.lock());
            let written_records = write_jsonl(
                &*store,
                head,
                args.store.page_records,
                &mut writer,
                "stdout",
            )
            .await?;
            writer
                .flush()
                .context("cannot write the export to stdout")?;
            written_records
        }
        Some(out) => write_file_atomically(&*store, head, args.store.page_records, out).await?,
    };
    output::print_stderr(&format!(
        "export: {written_records} records of {:?} (head seq {}, hash {})",
        store.origin(),
        head.seq,
        head.hash
    ));
    Ok(())
}

async fn write_file_atomically(
    store: &dyn EventStore,
    head: Head,
    page_records: usize,
    out: &Path,
) -> anyhow::Result<u64> {
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
    let written_records = {
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, temporary.as_file());
        let written_records = write_jsonl(store, head, page_records, &mut writer, &target).await?;
        writer
            .flush()
            .with_context(|| format!("cannot write the export to {target}"))?;
        written_records
    };
    // Synced before the rename, so after a crash the final name holds all of it or nothing.
    temporary
        .as_file()
        .sync_all()
        .with_context(|| format!("cannot write the export to {target}"))?;
    temporary
        .persist(out)
        .map_err(|error| error.error)
        .with_context(|| format!("cannot move the finished export to {}", out.display()))?;
    Ok(written_records)
}

/// The header, then every record up to `head`, one line each.
async fn write_jsonl(
    store: &dyn EventStore,
    head: Head,
    page_records: usize,
    writer: &mut impl Write,
    target: &str,
) -> anyhow::Result<u64> {
    // Read errors pass through as they are (a corrupt record is a finding, exit 1); write
    // errors say where the export was going.
    let write_error = |error: std::io::Error| {
        anyhow::Error::new(error).context(format!("cannot write the export to {target}"))
    };
    let mut write_line = |line: &[u8]| {
        writer
            .write_all(line)
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(write_error)
    };
    write_line(ExportHeader::new(store.origin()).to_line().as_bytes())?;
    let mut pages = Pages::up_to(store, head.seq, page_records, "export");
    let mut written_records = 0u64;
    while let Some(page) = pages.next_page().await? {
        for record in &page {
            write_line(record_line(record).as_bytes())?;
        }
        written_records += page.len() as u64;
    }
    // Pages stops at the head, and fails when the store has fewer records than its head says.
    debug_assert!(written_records <= head.seq);
    Ok(written_records)
}
