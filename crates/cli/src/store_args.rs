//! The `--store URL` option, opening an existing ledger, and reading it page by page.
//!
//! Every auditor-facing subcommand reads a snapshot of the log: it takes the head once, at the
//! start, and reads records up to that seq only, so a ledger that keeps growing meanwhile
//! gives a consistent answer (the state at one head) instead of a moving one.

use anyhow::Context;
use clap::Args;
use fundledger_events::{ChainVerifier, Hash, Head, Record};
use fundledger_store::{EventStore, StoreError};

use crate::failure::{self, DataError};

/// Records per `read`: large enough that round trips to PostgreSQL do not dominate, small
/// enough that one page (a few MB of JSON) is the most any command holds at a time.
pub const PAGE_RECORDS: usize = 5_000;
/// The most records per read `--page-records` allows: memory is bounded by one page.
pub const PAGE_RECORDS_MAX: usize = 100_000;

/// The store used when neither `--store` nor `FUNDLEDGER_STORE` says otherwise (DESIGN §8).
pub const DEFAULT_STORE_URL: &str = "sqlite://data/fundledger.db";
/// The environment variable that stands in for `--store`.
pub const STORE_ENV: &str = "FUNDLEDGER_STORE";

/// `--store URL`, flattened into every subcommand that reads a ledger.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The ledger: sqlite://PATH, postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    #[arg(long, value_name = "URL", env = STORE_ENV, default_value = DEFAULT_STORE_URL)]
    pub store: String,

    /// Records per read (hidden: for tests of paging and for tuning)
    #[arg(long, hide = true, default_value_t = PAGE_RECORDS, value_parser = parse_page_records)]
    pub page_records: usize,
}

/// `--page-records`: 1 to [`PAGE_RECORDS_MAX`].
pub fn parse_page_records(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(records) if (1..=PAGE_RECORDS_MAX).contains(&records) => Ok(records),
        _ => Err(format!("expected 1 to {PAGE_RECORDS_MAX}")),
    }
}

/// Opens the ledger at `url` without creating anything: `export`, `verify`, `checkpoint` and
/// `prove` only read, and a typo in a path must not leave an empty ledger behind.
pub async fn open_existing(url: &str) -> anyhow::Result<Box<dyn EventStore>> {
    fundledger_store::open_existing(url)
        .await
        .with_context(|| format!("cannot open the store {}", redact_url(url)))
}

/// The store's head, the snapshot a command works on.
pub async fn head(store: &dyn EventStore) -> anyhow::Result<Head> {
    store.head().await.context("cannot read the store's head")
}

/// Reads records 1..=`last_seq` of a store, [`PAGE_RECORDS`] at a time.
pub struct Pages<'a> {
    store: &'a dyn EventStore,
    page_records: usize,
    /// The subcommand, for `<command>: FAILED at seq N` findings.
    command: &'static str,
    next_seq: u64,
    last_seq: u64,
}

impl<'a> Pages<'a> {
    /// Records from seq 1 up to and including `last_seq`, `page_records` at a time (at least
    /// one), read for `command`.
    pub fn up_to(
        store: &'a dyn EventStore,
        last_seq: u64,
        page_records: usize,
        command: &'static str,
    ) -> Pages<'a> {
        Pages {
            store,
            page_records: page_records.max(1),
            command,
            next_seq: 1,
            last_seq,
        }
    }

    /// The next page, or `None` once `last_seq` was handed out. Records are returned as the
    /// store gives them; callers that need a valid chain check it (the verifier names the
    /// first bad seq far better than a page check could).
    pub async fn next_page(&mut self) -> anyhow::Result<Option<Vec<Record>>> {
        if self.next_seq > self.last_seq {
            return Ok(None);
        }
        let remaining = self.last_seq - self.next_seq + 1;
        // Bounded by page_records, a usize, so the cast cannot truncate.
        let wanted = remaining.min(self.page_records as u64) as usize;
        let mut page = match self.store.read(self.next_seq, wanted).await {
            Ok(page) => page,
            Err(error) => return Err(store_read_error(error, self.next_seq, self.command)),
        };
        page.retain(|record| record.seq <= self.last_seq);
        let Some(last) = page.last() else {
            return Err(DataError(format!(
                "{}: FAILED at seq {}: the store's head is seq {} but it returns no record \
                 from seq {} on: records are missing from the store",
                self.command, self.next_seq, self.last_seq, self.next_seq
            ))
            .into());
        };
        // A store that went backwards would make this loop forever; the verifier reports it
        // as out of order, so only stop the loop here.
        self.next_seq = last.seq.max(self.next_seq).saturating_add(1);
        Ok(Some(page))
    }
}

/// Reads records 1..=`last_seq`, checks the hash chain of DESIGN §5 (from the genesis of the
/// store's origin) and hands each record hash to `sink`, in seq order. Returns the head
/// reached, which is the store's head at `last_seq`. A broken chain is a
/// `<command>: FAILED at seq N` finding: nothing is signed or proved over a broken log.
pub async fn verify_chain(
    store: &dyn EventStore,
    last_seq: u64,
    page_records: usize,
    command: &'static str,
    mut sink: impl FnMut(&Hash),
) -> anyhow::Result<Head> {
    let mut verifier = ChainVerifier::new(store.origin());
    let mut pages = Pages::up_to(store, last_seq, page_records, command);
    let mut current = pages.next_page().await?;
    while let Some(page) = current {
        // The next page is read while this one is checked: the read waits on the database
        // (a blocking thread for SQLite, the socket for PostgreSQL) and the check is CPU, so
        // they overlap. join! polls the read first, so it is under way before the check runs.
        let check = async {
            for record in &page {
                verifier
                    .check_record(record)
                    .map_err(|error| failure::store_chain_failure(command, &error))?;
                sink(&record.hash);
            }
            Ok::<(), DataError>(())
        };
        let (next, checked) = tokio::join!(pages.next_page(), check);
        // A bad record comes before anything the next page could say.
        checked?;
        current = next?;
    }
    let reached = verifier.head();
    // Pages fails when records run out before last_seq, and the verifier refuses anything
    // but seq + 1, so reaching here means exactly last_seq records were checked.
    debug_assert_eq!(reached.seq, last_seq);
    Ok(reached)
}

/// A stored record that cannot be read back is a finding about the data (exit 1), anything
/// else is a failure to read (exit 2).
fn store_read_error(error: StoreError, from_seq: u64, command: &str) -> anyhow::Error {
    match error {
        StoreError::Corrupt { seq, reason } => DataError(format!(
            "{command}: FAILED at seq {seq}: the stored record cannot be read back ({reason}); \
             the database was changed outside fundledger"
        ))
        .into(),
        other => anyhow::Error::new(other).context(format!(
            "cannot read the store's records from seq {from_seq}"
        )),
    }
}

/// `url` with any password replaced by `***`, for messages that end up in logs.
pub use fundledger_store::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://data/fundledger.db", "sqlite://data/fundledger.db"),
            ("not a url", "not a url"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_url(url), expected);
        }
    }
}
