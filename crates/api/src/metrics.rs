//! `/metrics` in the Prometheus text format: the writer's counters (commands by type and
//! outcome code, batches, append latency, conflicts), the head, and HTTP responses by status.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use fundledger_ledger::{Ledger, APPEND_BUCKETS_MS};

/// Responses by HTTP status. Statuses are few, so the map stays small.
#[derive(Default)]
pub(crate) struct HttpCounters {
    by_status: Mutex<BTreeMap<u16, u64>>,
}

impl HttpCounters {
    pub(crate) fn count(&self, status: u16) {
        let mut map = self
            .by_status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry(status).or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.by_status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition.
pub(crate) fn render(ledger: &Ledger, http: &HttpCounters) -> String {
    let metrics = ledger.metrics();
    let mut out = String::new();

    header(
        &mut out,
        "fundledger_commands_total",
        "counter",
        "Commands answered by the writer, by command type and outcome code (\"accepted\" when accepted).",
    );
    let mut commands: Vec<((&str, &str), u64)> = metrics
        .commands
        .lock()
        .map(|map| map.iter().map(|(key, count)| (*key, *count)).collect())
        .unwrap_or_default();
    commands.sort();
    for ((kind, code), count) in commands {
        let _ = writeln!(
            out,
            "fundledger_commands_total{{type=\"{}\",code=\"{}\"}} {count}",
            label(kind),
            label(code)
        );
    }

    let batches = metrics.batches_total.load(Ordering::Relaxed);
    header(
        &mut out,
        "fundledger_batches_total",
        "counter",
        "Appends (group commits) attempted by the writer.",
    );
    let _ = writeln!(out, "fundledger_batches_total {batches}");
    header(
        &mut out,
        "fundledger_batch_records_sum",
        "counter",
        "Records in all appended batches (divide by fundledger_batches_total for the mean batch size).",
    );
    let _ = writeln!(
        out,
        "fundledger_batch_records_sum {}",
        metrics.batch_records_sum.load(Ordering::Relaxed)
    );
    header(
        &mut out,
        "fundledger_batch_commands_sum",
        "counter",
        "Commands in all decided batches.",
    );
    let _ = writeln!(
        out,
        "fundledger_batch_commands_sum {}",
        metrics.batch_commands_sum.load(Ordering::Relaxed)
    );

    header(
        &mut out,
        "fundledger_append_seconds",
        "histogram",
        "Latency of one store append (one batch).",
    );
    for (bucket, bound_ms) in metrics.append_buckets.iter().zip(APPEND_BUCKETS_MS) {
        // The writer counts each append in every bucket whose bound it is under, so the
        // counts are already cumulative, as Prometheus wants them.
        let _ = writeln!(
            out,
            "fundledger_append_seconds_bucket{{le=\"{}\"}} {}",
            seconds(bound_ms),
            bucket.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "fundledger_append_seconds_bucket{{le=\"+Inf\"}} {batches}"
    );
    let micros = metrics.append_micros_sum.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "fundledger_append_seconds_sum {}.{:06}",
        micros / 1_000_000,
        micros % 1_000_000
    );
    let _ = writeln!(out, "fundledger_append_seconds_count {batches}");

    header(
        &mut out,
        "fundledger_head_seq",
        "gauge",
        "Seq of the last record in the published state.",
    );
    let _ = writeln!(out, "fundledger_head_seq {}", ledger.snapshot().last_seq);
    header(
        &mut out,
        "fundledger_conflicts_total",
        "counter",
        "Appends refused because another process moved the head (the writer caught up and decided again).",
    );
    let _ = writeln!(
        out,
        "fundledger_conflicts_total {}",
        metrics.conflicts_total.load(Ordering::Relaxed)
    );
    header(
        &mut out,
        "fundledger_store_errors_total",
        "counter",
        "Appends that failed in the store.",
    );
    let _ = writeln!(
        out,
        "fundledger_store_errors_total {}",
        metrics.store_errors_total.load(Ordering::Relaxed)
    );

    header(
        &mut out,
        "fundledger_http_responses_total",
        "counter",
        "HTTP responses by status code.",
    );
    for (status, count) in http.snapshot() {
        let _ = writeln!(
            out,
            "fundledger_http_responses_total{{status=\"{status}\"}} {count}"
        );
    }
    out
}

/// Milliseconds as a decimal number of seconds, exactly (no floats).
fn seconds(ms: u64) -> String {
    let whole = ms / 1000;
    let frac = ms % 1000;
    if frac == 0 {
        format!("{whole}")
    } else {
        let digits = format!("{frac:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(250), "0.25");
        assert_eq!(seconds(1000), "1");
        assert_eq!(seconds(5000), "5");
        assert_eq!(seconds(1500), "1.5");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
