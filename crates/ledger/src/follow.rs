//! Following other processes: several `fundledger serve` processes may write one ledger (on
//! PostgreSQL). Each writer appends on the head it expects and catches up on a conflict, so the
//! caps hold whatever the others do; the follower here keeps the *reads* of this process fresh
//! between its own writes, by catching up as soon as another process appends.
//!
//! It listens to the store's append notifications (PostgreSQL `LISTEN fundledger_appended`)
//! and, as a safety net for a lost notification or a backend without any, compares the store's
//! head with the published snapshot every `poll_interval`. Either way it asks the writer task
//! to catch up ([`Ledger::refresh`]), so the state is only ever changed by the writer.

use std::sync::Arc;
use std::time::Duration;

use fundledger_store::{AppendNotifications, EventStore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::writer::Ledger;

/// The default fallback poll: the longest a follower's reads lag when notifications fail.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(1_000);
/// Least time between attempts to subscribe after one failed (a hot standby refuses `LISTEN`
/// for as long as it is a standby): polling covers the gap, and the log is not flooded.
const RESUBSCRIBE_INTERVAL: Duration = Duration::from_secs(60);

/// Starts following `store` for `ledger` (which must be open on the same store). Abort the
/// returned task before [`Ledger::close`]: it holds a handle on the ledger.
pub fn spawn_follower(
    ledger: Ledger,
    store: Arc<dyn EventStore>,
    poll_interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(follow(ledger, store, poll_interval))
}

async fn follow(ledger: Ledger, store: Arc<dyn EventStore>, poll_interval: Duration) {
    let mut subscriber = Subscriber::default();
    let mut notifications = subscriber.subscribe(store.as_ref()).await;
    let mut poll = tokio::time::interval(poll_interval.max(Duration::from_millis(10)));
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let appended_seq = tokio::select! {
            announced = next(&mut notifications) => match announced {
                Some(seq) => Some(seq),
                None => {
                    tracing::warn!("lost the append notifications; polling the head until they are back");
                    notifications = None;
                    None
                }
            },
            _ = poll.tick() => {
                if notifications.is_none() && subscriber.due() {
                    notifications = subscriber.subscribe(store.as_ref()).await;
                }
                match store.head().await {
                    Ok(head) => Some(head.seq),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the store's head to follow other processes");
                        None
                    }
                }
            }
        };
        let Some(appended_seq) = appended_seq else {
            continue;
        };
        if appended_seq > ledger.snapshot().last_seq && ledger.refresh().await.is_err() {
            // The writer is gone: the ledger is closing.
            return;
        }
    }
}

/// Subscribes, and after a failure waits [`RESUBSCRIBE_INTERVAL`] before trying again; warns
/// once per run of failures.
#[derive(Default)]
struct Subscriber {
    failed_at: Option<tokio::time::Instant>,
}

impl Subscriber {
    fn due(&self) -> bool {
        self.failed_at
            .is_none_or(|failed_at| failed_at.elapsed() >= RESUBSCRIBE_INTERVAL)
    }

    async fn subscribe(&mut self, store: &dyn EventStore) -> Option<AppendNotifications> {
        match store.notifications().await {
            Ok(notifications) => {
                if self.failed_at.take().is_some() && notifications.is_some() {
                    tracing::info!("subscribed to append notifications again");
                }
                notifications
            }
            Err(error) => {
                if self.failed_at.is_none() {
                    tracing::warn!(%error, "cannot subscribe to append notifications; polling the head, retrying every {}s", RESUBSCRIBE_INTERVAL.as_secs());
                } else {
                    tracing::debug!(%error, "still cannot subscribe to append notifications");
                }
                self.failed_at = Some(tokio::time::Instant::now());
                None
            }
        }
    }
}

/// The next announced seq, or never when there is no subscription (the poll drives then).
async fn next(notifications: &mut Option<AppendNotifications>) -> Option<u64> {
    match notifications {
        Some(notifications) => notifications.next().await,
        None => std::future::pending().await,
    }
}
