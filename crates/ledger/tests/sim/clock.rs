//! The simulated business clock: one shared, monotonically advancing virtual time in
//! UTC+08:00, inside the policy's validity (2024-05-22 … 2027-05-21). The schedule moves it
//! forward by days between commands; every read by the writer moves it one second more, so no
//! two records are stamped alike and time never runs backwards.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use fundledger_ledger::Clock;

/// China Standard Time.
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+08:00 is a valid offset")
}

fn at(year: i32, month: u32, day: u32, hour: u32) -> i64 {
    cst()
        .with_ymd_and_hms(year, month, day, hour, 0, 0)
        .single()
        .expect("a valid date")
        .timestamp()
}

/// First business second of the simulation: the policy's first day, 09:00.
pub fn start_seconds() -> i64 {
    at(2024, 5, 22, 9)
}

/// The clock never passes the policy's last day (2027-05-21), 22:00.
pub fn end_seconds() -> i64 {
    at(2027, 5, 21, 22)
}

#[derive(Clone)]
pub struct VirtualClock {
    unix_seconds: Arc<AtomicI64>,
}

impl VirtualClock {
    pub fn starting_at(unix_seconds: i64) -> VirtualClock {
        VirtualClock {
            unix_seconds: Arc::new(AtomicI64::new(unix_seconds.min(end_seconds()))),
        }
    }

    fn to_time(unix_seconds: i64) -> DateTime<FixedOffset> {
        cst()
            .timestamp_opt(unix_seconds, 0)
            .single()
            .expect("a representable time")
    }

    /// The current time, without moving the clock.
    pub fn peek(&self) -> DateTime<FixedOffset> {
        Self::to_time(self.unix_seconds.load(Ordering::SeqCst))
    }

    /// The current time; the clock then moves one second on (up to its end).
    pub fn tick(&self) -> DateTime<FixedOffset> {
        let now = self
            .unix_seconds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |seconds| {
                Some((seconds + 1).min(end_seconds()))
            })
            .unwrap_or_else(|seconds| seconds);
        Self::to_time(now)
    }

    /// Moves the clock `seconds` forward, never past the end.
    pub fn advance(&self, seconds: i64) {
        let _ = self
            .unix_seconds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some((now + seconds.max(0)).min(end_seconds()))
            });
    }

    /// Today's business date.
    pub fn today(&self) -> NaiveDate {
        self.peek().date_naive()
    }

    /// The writer's clock (`WriterOptions.clock`), reading this virtual time.
    pub fn writer_clock(&self) -> Clock {
        let clock = self.clone();
        Arc::new(move || clock.tick())
    }
}
