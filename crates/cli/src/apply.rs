//! `fundledger apply [--store URL] FILE|-`: commands as JSON Lines, one outcome line each.
//!
//! Every input line gets exactly one outcome line on stdout, in input order — also a line
//! that is not JSON or not UTF-8 (a `malformed` outcome with `command_id: null`) — and apply
//! goes on with the next. Commands are queued to the writer without waiting for each other,
//! so they are decided in order and committed in groups. Business time `at` is honoured.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use anyhow::Context;
use clap::Args;
use fundledger_ledger::{Code, Command, Ledger, Outcome, Pending, WriterOptions};

use crate::ledger_args::LedgerArgs;

/// Longest input line read as a command; a longer one is answered `malformed`.
const LINE_BYTES_MAX: usize = 1 << 20;
/// Commands in flight before apply waits for the oldest outcome (bounds memory).
const IN_FLIGHT_MAX: usize = 4_096;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// A file of commands, one JSON object per line, or - for standard input
    #[arg(value_name = "FILE|-")]
    pub input: String,
}

enum Slot {
    Ready(Outcome),
    Waiting(Pending),
}

pub async fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let reader: Box<dyn Read + Send> = if args.input == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.input)
                .with_context(|| format!("cannot open {}", args.input))?,
        )
    };
    let ledger = args.ledger.open(WriterOptions::default()).await?;
    let result = apply_lines(&ledger, BufReader::new(reader)).await;
    ledger.close().await;
    result
}

async fn apply_lines(ledger: &Ledger, mut reader: impl BufRead) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut in_flight: VecDeque<Slot> = VecDeque::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .context("cannot read the input")?;
        if read == 0 {
            break;
        }
        let too_long = line.len() > LINE_BYTES_MAX && !line.ends_with(b"\n");
        if too_long {
            skip_rest_of_line(&mut reader)?;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let slot = if too_long {
            Slot::Ready(Outcome::rejected(
                None,
                Code::Malformed,
                format!("the line is longer than {LINE_BYTES_MAX} bytes"),
                vec![],
            ))
        } else {
            match parse_line(trimmed) {
                Ok(command) => Slot::Waiting(ledger.enqueue(command).await?),
                Err(outcome) => Slot::Ready(outcome),
            }
        };
        in_flight.push_back(slot);
        while in_flight.len() > IN_FLIGHT_MAX || matches!(in_flight.front(), Some(Slot::Ready(_))) {
            match in_flight.pop_front() {
                Some(slot) => print_slot(&mut out, slot).await?,
                None => break,
            }
        }
    }
    while let Some(slot) = in_flight.pop_front() {
        print_slot(&mut out, slot).await?;
    }
    out.flush().context("cannot write to standard output")?;
    Ok(())
}

/// One input line → a command, or the outcome that refuses it.
pub fn parse_line(line: &[u8]) -> Result<Command, Outcome> {
    let text = std::str::from_utf8(line).map_err(|_| {
        Outcome::rejected(None, Code::Malformed, "the line is not valid UTF-8", vec![])
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        Outcome::rejected(
            None,
            Code::Malformed,
            format!("the line is not JSON: {error}"),
            vec![],
        )
    })?;
    Command::parse(&value).map_err(|rejection| {
        Outcome::rejected(
            rejection.command_id.as_deref(),
            rejection.code,
            rejection.message,
            vec![],
        )
    })
}

async fn print_slot(out: &mut impl Write, slot: Slot) -> anyhow::Result<()> {
    let outcome = match slot {
        Slot::Ready(outcome) => outcome,
        Slot::Waiting(pending) => pending
            .outcome()
            .await
            .context("the ledger could not decide a command")?,
    };
    let line = serde_json::to_string(&outcome).context("cannot serialise an outcome")?;
    writeln!(out, "{line}").context("cannot write to standard output")?;
    Ok(())
}

fn skip_rest_of_line(reader: &mut impl BufRead) -> anyhow::Result<()> {
    let mut discard = Vec::new();
    loop {
        discard.clear();
        let read = reader
            .take(64 * 1024)
            .read_until(b'\n', &mut discard)
            .context("cannot read the input")?;
        if read == 0 || discard.ends_with(b"\n") {
            return Ok(());
        }
    }
}
