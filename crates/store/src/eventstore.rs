//! The cluster backend: EventStoreDB / KurrentDB (`esdb://…`), behind the cargo feature
//! `eventstore`, with the official `eventstore` gRPC client.
//!
//! **One ledger, one stream.** Revision 0 of the stream is the ledger's *origin event* (type
//! `fundledger_ledger`, data `{"fundledger_ledger":1,"origin","genesis","schema_version"}`);
//! record seq `n` is revision `n`, one JSON event per record, its type the body's `type` and its
//! data `{"seq":n,"prev":"<hex>","hash":"<hex>","body":<JCS text of the body>}`. The body is
//! spliced into the data as its canonical bytes and cut out again on reading, so the stored
//! bytes are the hashed bytes, as in the SQL backends. Keeping the origin in the stream itself
//! (not in stream metadata, which can be rewritten) makes it as immutable as the records.
//!
//! **Which stream.** The URL names it: `esdb://HOST:2113[,HOST:PORT…]?…&stream=NAME` (default
//! `fundledger`). `open_existing` (for `verify`, `export`) gets no origin, so the stream cannot
//! be named from the origin; the `stream` parameter is ours and is taken out before the URL
//! goes to the client. `kurrentdb://` and `kurrentdb+discover://` (the KurrentDB clients'
//! schemes) are read as `esdb://` and `esdb+discover://`.
//!
//! **Expected-head append.** `append(expected, batch)` appends with expected revision
//! `expected.seq` (the origin event makes an empty ledger revision 0), so of two appenders on one
//! head the server lets exactly one through; the other gets `WrongExpectedVersion`, read here as
//! [`StoreError::Conflict`] with the head read back. A revision alone does not say which
//! records hang there, so the hash of the event at `expected.seq` is compared first: it is
//! immutable once written, so the last one seen is cached and the steady state costs no extra
//! round trip. Each event's id is a UUID made from the record's hash ([`event_id`]): a retried
//! append of the same batch on the same expected revision is recognised by the server as the
//! same write and succeeds without writing twice.
//!
//! **Append-only.** EventStoreDB has no UPDATE, but an operator with enough rights can delete
//! (soft or hard) or truncate a stream (`$tb`, `$maxCount`, `$maxAge` in its metadata, followed
//! by a scavenge). Forbid that with the stream's ACL (`$acl`: `$d` and `$mw` for `$admins`
//! only) — see `ops/kurrentdb/`. Reads here refuse a stream whose revisions do not run
//! unbroken from 0, and `fundledger verify` catches any removed or rewritten record.
//!
//! **Followers.** [`EventStore::notifications`] is a subscription to the stream from its end,
//! so other server processes on the same ledger hear of each append at once (they also poll).
//!
//! The client is made again after a connection failure (the `eventstore` client stops for good
//! once it has failed to connect), so a restarted server is reached on the next call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ::eventstore::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ExpectedRevision, ReadStreamOptions,
    RecordedEvent, StreamPosition, SubscribeToStreamOptions,
};
use async_trait::async_trait;
use fundledger_events::{genesis, Hash, Head, Record};
use serde_json::value::RawValue;
use tokio::sync::mpsc::error::TrySendError;

use crate::{
    check_origin, error_chain, prepare_batch, row_to_record, AppendNotifications, EventStore, Row,
    StoreError, ACCEPTED_URLS, SCHEMA_VERSION,
};

/// The stream of a ledger when the URL names none.
pub const DEFAULT_STREAM: &str = "fundledger";

/// Type of the origin event at revision 0.
const ORIGIN_EVENT_TYPE: &str = "fundledger_ledger";

/// Version of the stream layout described above, stored in the origin event.
const LAYOUT_VERSION: u64 = 1;

/// Longest stream name accepted (EventStoreDB takes more; a ledger's name needs no more).
const STREAM_NAME_MAX_CHARS: usize = 200;

/// Every call to the server is given up after this long: a hung call must not hold the writer
/// for ever. The writer reads the head again after such an error.
const OPERATION_DEADLINE: Duration = Duration::from_secs(30);

/// Times an append is sent again when it reached a follower (which refuses writes) and the
/// client has since switched to the leader.
const NOT_LEADER_RETRIES: usize = 2;

/// A parsed `esdb://` URL: the client's settings and the stream of the ledger.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct EsdbUrl {
    settings: ClientSettings,
    stream: String,
    /// The hosts and stream, for messages; never the credentials.
    described: String,
}

/// Shows the hosts and the stream, never the settings (they hold the password).
impl std::fmt::Debug for EsdbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EsdbUrl").field(&self.described).finish()
    }
}

/// Does `url` name an EventStoreDB/KurrentDB server (whether or not this build can use it)?
pub(crate) fn is_esdb_url(url: &str) -> bool {
    matches!(
        url.split_once("://").map(|(scheme, _)| scheme),
        Some("esdb" | "esdb+discover" | "kurrentdb" | "kurrentdb+discover")
    )
}

/// Parses `esdb://…` (or `esdb+discover://…`, `kurrentdb://…`, `kurrentdb+discover://…`),
/// taking out our own `stream=NAME` parameter.
pub(crate) fn parse_url(url: &str) -> Result<EsdbUrl, StoreError> {
    let bad = |why: String| StoreError::BadUrl(format!("{why}; {ACCEPTED_URLS}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        bad(format!(
            "{:?} is not an esdb:// URL",
            crate::redact_url(url)
        ))
    })?;
    let scheme = match scheme {
        "esdb" | "kurrentdb" => "esdb",
        "esdb+discover" | "kurrentdb+discover" => "esdb+discover",
        other => return Err(bad(format!("{other}:// is not an EventStoreDB URL"))),
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut stream = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("stream") => {
                if stream.replace(value.to_string()).is_some() {
                    return Err(bad("the URL names the stream twice".into()));
                }
            }
            _ => kept.push(pair),
        }
    }
    let stream = stream.unwrap_or_else(|| DEFAULT_STREAM.to_string());
    check_stream_name(&stream).map_err(bad)?;
    let client_url = if kept.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}?{}", kept.join("&"))
    };
    let settings: ClientSettings = client_url.parse().map_err(|error| {
        bad(format!(
            "{:?} is not an EventStoreDB connection string ({error})",
            crate::redact_url(url)
        ))
    })?;
    check_certificate_files(&settings).map_err(bad)?;
    let hosts: Vec<String> = settings
        .hosts()
        .iter()
        .map(|endpoint| format!("{}:{}", endpoint.host, endpoint.port))
        .collect();
    let described = format!("{scheme}://{} stream {stream}", hosts.join(","));
    Ok(EsdbUrl {
        settings,
        stream,
        described,
    })
}

/// A stream name we create: printable, no `$` prefix (system streams), no separators that would
/// need escaping in a URL.
fn check_stream_name(stream: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if stream.is_empty()
        || stream.chars().count() > STREAM_NAME_MAX_CHARS
        || !stream.chars().all(allowed)
    {
        return Err(format!(
            "stream={stream:?}: a ledger's stream name is 1 to {STREAM_NAME_MAX_CHARS} of \
             A-Z a-z 0-9 - _ . : (and never a $ system stream)"
        ));
    }
    Ok(())
}

/// The client reads certificate files with `unwrap` in a background task; a missing or
/// unreadable file would kill that task and leave every call hanging or failing obscurely.
fn check_certificate_files(settings: &ClientSettings) -> Result<(), String> {
    let mut files: Vec<(&str, &str, &str)> = Vec::new();
    if let Some(ca) = settings.tls_ca_file() {
        files.push(("tlsCaFile", ca, "CERTIFICATE-----"));
    }
    if let Some((cert, key)) = settings.user_certificate() {
        files.push(("userCertFile", cert, "CERTIFICATE-----"));
        files.push(("userKeyFile", key, "PRIVATE KEY-----"));
    }
    for (parameter, path, marker) in files {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{parameter}={path}: cannot be read ({error})"))?;
        if !text.contains(marker) {
            return Err(format!(
                "{parameter}={path}: not a PEM file (no \"-----BEGIN …{marker}\" line)"
            ));
        }
    }
    Ok(())
}

/// The id of the event holding a record (or the origin event, from the genesis hash): the
/// first 16 bytes of the hash as a version 8 (custom) UUID. Deterministic, so a retried append
/// sends the same ids and the server takes it for the write it already made.
pub(crate) fn event_id(hash: &Hash) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The stream revision holding record `seq` (revision 0 is the origin event).
pub(crate) fn revision_of_seq(seq: u64) -> u64 {
    seq
}

/// The expected revision of an append on `expected`: the stream's last revision must be the
/// one holding the expected head (the origin event when the ledger is empty).
pub(crate) fn expected_revision(expected: &Head) -> ExpectedRevision {
    ExpectedRevision::Exact(revision_of_seq(expected.seq))
}

/// The data of the event holding `row`: `{"seq","prev","hash","body"}` with the body's JCS text
/// spliced in as it is (hex and an integer need no escaping).
pub(crate) fn record_event_data(row: &Row) -> String {
    format!(
        r#"{{"seq":{},"prev":"{}","hash":"{}","body":{}}}"#,
        row.seq, row.prev, row.hash, row.body
    )
}

/// The event holding a checked record.
fn record_event(row: &Row, record: &Record) -> Result<EventData, StoreError> {
    let event_type = record
        .body
        .get("type")
        .and_then(|value| value.as_str())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            StoreError::InvalidBatch(format!("record seq {} has no type", record.seq))
        })?;
    let data = RawValue::from_string(record_event_data(row)).map_err(|error| {
        StoreError::InvalidBatch(format!(
            "record seq {}: the event data is not JSON ({error})",
            record.seq
        ))
    })?;
    let event = EventData::json(event_type, &data)
        .map_err(|error| StoreError::InvalidBatch(format!("record seq {}: {error}", record.seq)))?;
    Ok(event.id(event_id(&record.hash)))
}

/// The record in the data of the event at `revision`; anything unreadable is
/// [`StoreError::Corrupt`]. The body is handed on as the exact text stored.
pub(crate) fn record_from_event_data(revision: u64, data: &[u8]) -> Result<Record, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        seq: revision,
        reason,
    };
    let text =
        std::str::from_utf8(data).map_err(|_| corrupt("the event data is not UTF-8".into()))?;
    let fields: HashMap<String, Box<RawValue>> = serde_json::from_str(text)
        .map_err(|error| corrupt(format!("the event data is not a JSON object: {error}")))?;
    let field = |name: &str| {
        fields
            .get(name)
            .map(|value| value.get())
            .ok_or_else(|| corrupt(format!("the event data has no {name:?}")))
    };
    let seq: u64 =
        serde_json::from_str(field("seq")?).map_err(|error| corrupt(format!("seq: {error}")))?;
    if seq != revision {
        return Err(corrupt(format!(
            "the event at revision {revision} holds seq {seq}; record seq n is revision n"
        )));
    }
    let text_field = |name: &str| -> Result<String, StoreError> {
        serde_json::from_str(field(name)?).map_err(|error| corrupt(format!("{name}: {error}")))
    };
    let seq_i64 =
        i64::try_from(seq).map_err(|_| corrupt(format!("seq {seq} is beyond what is stored")))?;
    row_to_record(
        seq_i64,
        &text_field("prev")?,
        &text_field("hash")?,
        field("body")?,
    )
}

/// The data of the origin event.
fn origin_event_data(origin: &str) -> serde_json::Value {
    serde_json::json!({
        "fundledger_ledger": LAYOUT_VERSION,
        "origin": origin,
        "genesis": genesis(origin).to_hex(),
        "schema_version": SCHEMA_VERSION,
    })
}

/// The origin in the origin event, checked against its genesis and our layout version.
fn origin_from_event(event: &RecordedEvent, described: &str) -> Result<String, StoreError> {
    let not_ours = |why: &str| {
        StoreError::Backend(format!(
            "{described}: {why}; the stream was not made by fundledger, or its first events were \
             truncated or deleted: use another stream (stream=NAME in the URL) or restore it"
        ))
    };
    if event.revision != 0 || event.event_type != ORIGIN_EVENT_TYPE {
        return Err(not_ours(&format!(
            "the first event is revision {} of type {:?}, not the origin event",
            event.revision, event.event_type
        )));
    }
    let data: serde_json::Value = serde_json::from_slice(&event.data)
        .map_err(|_| not_ours("the origin event is not JSON"))?;
    let origin = data["origin"]
        .as_str()
        .ok_or_else(|| not_ours("the origin event names no origin"))?;
    if data["fundledger_ledger"].as_u64() != Some(LAYOUT_VERSION)
        || data["schema_version"].as_str() != Some(SCHEMA_VERSION)
    {
        return Err(StoreError::Backend(format!(
            "{described} holds a ledger of layout {} / schema {}, but this build reads layout \
             {LAYOUT_VERSION} / schema {SCHEMA_VERSION}; use the fundledger release that wrote it",
            data["fundledger_ledger"], data["schema_version"]
        )));
    }
    if data["genesis"].as_str() != Some(genesis(origin).to_hex().as_str()) {
        return Err(not_ours(
            "the origin event's genesis is not that of its origin",
        ));
    }
    Ok(origin.to_string())
}

/// A ledger in one stream of an EventStoreDB/KurrentDB server or cluster.
pub struct EventStoreDbStore {
    origin: String,
    settings: ClientSettings,
    stream: String,
    described: String,
    /// The client, made again after it failed to connect (see the module docs).
    client: Mutex<Client>,
    /// The last head seen (appended or read): the hash at its revision never changes, so an
    /// append on it needs no read to check the expected hash.
    known_head: Mutex<Head>,
}

impl std::fmt::Debug for EventStoreDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStoreDbStore")
            .field("origin", &self.origin)
            .field("stream", &self.described)
            .finish_non_exhaustive()
    }
}

impl EventStoreDbStore {
    /// Opens the ledger in the stream named by `url`, creating it (the origin event, with
    /// `origin_if_new`) when the stream does not exist; an existing ledger keeps its origin.
    pub(crate) async fn open(url: EsdbUrl, origin_if_new: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        let origin = match store.read_origin().await? {
            Some(origin) => origin,
            None => store.create(origin_if_new).await?,
        };
        Ok(store.with_origin(origin))
    }

    /// Opens the ledger in the stream named by `url` only if there is one; creates nothing.
    pub(crate) async fn open_existing(url: EsdbUrl) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        let origin = store.read_origin().await?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "{} holds no fundledger ledger (the stream does not exist); check --store and its \
                 stream= parameter, or create a ledger first (e.g. with `fundledger apply` or \
                 `fundledger serve`)",
                store.described
            ))
        })?;
        Ok(store.with_origin(origin))
    }

    fn connect(url: EsdbUrl) -> Result<Self, StoreError> {
        let client = new_client(&url.settings, &url.described)?;
        Ok(EventStoreDbStore {
            origin: String::new(),
            settings: url.settings,
            stream: url.stream,
            described: url.described,
            client: Mutex::new(client),
            known_head: Mutex::new(Head::empty("")),
        })
    }

    fn with_origin(mut self, origin: String) -> Self {
        self.known_head = Mutex::new(Head::empty(&origin));
        self.origin = origin;
        self
    }

    /// The stream this ledger lives in.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn client(&self) -> Client {
        match self.client.lock() {
            Ok(client) => client.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes a new client after a connection failure; the old one has stopped for good.
    fn reconnect_after(&self, error: &eventstore::Error) {
        if !matches!(
            error,
            eventstore::Error::GrpcConnectionError(_) | eventstore::Error::ConnectionClosed
        ) {
            return;
        }
        if let Ok(client) = new_client(&self.settings, &self.described) {
            match self.client.lock() {
                Ok(mut slot) => *slot = client,
                Err(poisoned) => *poisoned.into_inner() = client,
            }
        }
    }

    fn remember(&self, head: Head) {
        let mut known = match self.known_head.lock() {
            Ok(known) => known,
            Err(poisoned) => poisoned.into_inner(),
        };
        if head.seq >= known.seq {
            *known = head;
        }
    }

    fn known_head(&self) -> Head {
        match self.known_head.lock() {
            Ok(known) => *known,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn error(&self, error: eventstore::Error) -> StoreError {
        self.reconnect_after(&error);
        esdb_error(&self.described, error)
    }

    /// Up to `limit` events from `revision` on (forwards) or the last one (backwards), or None
    /// when the stream does not exist.
    async fn read_events(
        &self,
        position: StreamPosition<u64>,
        backwards: bool,
        limit: usize,
        requires_leader: bool,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let options = ReadStreamOptions::default()
            .position(position)
            .max_count(limit)
            .requires_leader(requires_leader)
            .deadline(OPERATION_DEADLINE);
        let options = if backwards {
            options.backwards()
        } else {
            options.forwards()
        };
        let client = self.client();
        let mut read = match client.read_stream(self.stream.as_str(), &options).await {
            Ok(read) => read,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(error) => return Err(self.error(error)),
        };
        let mut events = Vec::new();
        loop {
            match read.next().await {
                // The original event: the link when one was followed (never, here), else it.
                Ok(Some(resolved)) => events.extend(resolved.link.or(resolved.event)),
                Ok(None) => return Ok(Some(events)),
                Err(eventstore::Error::ResourceNotFound) => return Ok(None),
                Err(error) => return Err(self.error(error)),
            }
        }
    }

    /// The origin in the origin event, or None when the stream does not exist.
    async fn read_origin(&self) -> Result<Option<String>, StoreError> {
        let Some(events) = self
            .read_events(StreamPosition::Start, false, 1, true)
            .await?
        else {
            return Ok(None);
        };
        match events.first() {
            Some(event) => origin_from_event(event, &self.described).map(Some),
            // A stream that exists but shows no event: it was deleted or truncated away.
            None => Err(StoreError::Backend(format!(
                "{}: the stream exists but holds no event (deleted or truncated); restore the \
                 ledger from a backup or an export, or use another stream",
                self.described
            ))),
        }
    }

    /// Writes the origin event into a stream that does not exist yet; when another process
    /// created the stream first, its origin is the ledger's.
    async fn create(&self, origin_if_new: &str) -> Result<String, StoreError> {
        check_origin(origin_if_new)?;
        let event = EventData::json(ORIGIN_EVENT_TYPE, &origin_event_data(origin_if_new))
            .map_err(|error| StoreError::Backend(format!("origin event: {error}")))?
            .id(event_id(&genesis(origin_if_new)));
        let options = AppendToStreamOptions::default()
            .expected_revision(ExpectedRevision::NoStream)
            .deadline(OPERATION_DEADLINE);
        match self
            .client()
            .append_to_stream(self.stream.as_str(), &options, event)
            .await
        {
            Ok(_) => Ok(origin_if_new.to_string()),
            Err(eventstore::Error::WrongExpectedVersion { .. }) => {
                self.read_origin().await?.ok_or_else(|| {
                    StoreError::Backend(format!(
                        "{}: the stream exists (creating it conflicted) but cannot be read",
                        self.described
                    ))
                })
            }
            Err(error) => Err(self.error(error)),
        }
    }

    /// The hash of the record at `seq` (the genesis for 0), or None when there is none.
    async fn hash_at(&self, seq: u64) -> Result<Option<Hash>, StoreError> {
        if seq == 0 {
            return Ok(Some(genesis(&self.origin)));
        }
        let events = self
            .read_events(
                StreamPosition::Position(revision_of_seq(seq)),
                false,
                1,
                true,
            )
            .await?
            .unwrap_or_default();
        match events.first() {
            Some(event) if event.revision == revision_of_seq(seq) => Ok(Some(
                record_from_event_data(event.revision, &event.data)?.hash,
            )),
            _ => Ok(None),
        }
    }

    /// The head as the leader sees it.
    async fn read_head(&self) -> Result<Head, StoreError> {
        let events = self
            .read_events(StreamPosition::End, true, 1, true)
            .await?
            .ok_or_else(|| self.stream_gone())?;
        let Some(last) = events.first() else {
            return Err(self.stream_gone());
        };
        let head = if last.revision == 0 {
            origin_from_event(last, &self.described)?;
            Head::empty(&self.origin)
        } else {
            record_from_event_data(last.revision, &last.data)?.head()
        };
        self.remember(head);
        Ok(head)
    }

    fn stream_gone(&self) -> StoreError {
        StoreError::Corrupt {
            seq: 0,
            reason: format!(
                "{}: the ledger's stream is gone (deleted outside fundledger)",
                self.described
            ),
        }
    }

    async fn append_once(&self, expected: Head, events: Vec<EventData>) -> Result<(), StoreError> {
        let options = AppendToStreamOptions::default()
            .expected_revision(expected_revision(&expected))
            .deadline(OPERATION_DEADLINE);
        let mut not_leader_retries = 0;
        loop {
            let outcome = self
                .client()
                .append_to_stream(self.stream.as_str(), &options, events.clone())
                .await;
            match outcome {
                Ok(_) => return Ok(()),
                Err(eventstore::Error::WrongExpectedVersion { .. }) => {
                    let actual = self.read_head().await?;
                    return Err(StoreError::Conflict { expected, actual });
                }
                // A follower refused the write; the client now talks to the leader. Nothing
                // was written, and the same event ids make a repeat harmless anyway.
                Err(eventstore::Error::NotLeaderException(_))
                    if not_leader_retries < NOT_LEADER_RETRIES =>
                {
                    not_leader_retries += 1;
                }
                Err(error) => return Err(self.error(error)),
            }
        }
    }
}

#[async_trait]
impl EventStore for EventStoreDbStore {
    fn origin(&self) -> &str {
        &self.origin
    }

    async fn head(&self) -> Result<Head, StoreError> {
        self.read_head().await
    }

    async fn append(&self, expected: Head, batch: &[Record]) -> Result<Head, StoreError> {
        let rows = prepare_batch(&expected, batch)?;
        let events = rows
            .iter()
            .zip(batch)
            .map(|(row, record)| record_event(row, record))
            .collect::<Result<Vec<_>, _>>()?;
        let new_head = batch.last().map(Record::head).unwrap_or(expected);
        // The revision check below says the stream ends at expected.seq; this says the record
        // there is the expected one. A revision's event never changes, so a head seen before
        // settles it without asking the server.
        let known = self.known_head();
        let hash_matches = if known.seq == expected.seq {
            known.hash == expected.hash
        } else {
            self.hash_at(expected.seq).await? == Some(expected.hash)
        };
        if !hash_matches {
            let actual = self.read_head().await?;
            return Err(StoreError::Conflict { expected, actual });
        }
        self.append_once(expected, events).await?;
        self.remember(new_head);
        Ok(new_head)
    }

    async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        // No stored seq is beyond i64::MAX (the server's revisions are signed on its side).
        if limit == 0 || i64::try_from(from_seq).is_err() {
            return Ok(Vec::new());
        }
        let first_seq = from_seq.max(1);
        let events = self
            .read_events(
                StreamPosition::Position(revision_of_seq(first_seq)),
                false,
                limit,
                false,
            )
            .await?
            .ok_or_else(|| self.stream_gone())?;
        let mut records = Vec::with_capacity(events.len());
        for (next_seq, event) in (first_seq..).zip(events) {
            // Truncation ($tb, $maxCount, $maxAge) and scavenging drop events silently: the
            // server then answers from the first revision it still has.
            if event.revision != revision_of_seq(next_seq) {
                return Err(StoreError::Corrupt {
                    seq: next_seq,
                    reason: format!(
                        "the stream skips from revision {} to {}: records were truncated or \
                         deleted in {}",
                        revision_of_seq(next_seq),
                        event.revision,
                        self.described
                    ),
                });
            }
            records.push(record_from_event_data(event.revision, &event.data)?);
        }
        Ok(records)
    }

    fn backend(&self) -> &'static str {
        "esdb"
    }

    /// A catch-up subscription to the stream from its end: every event appended from now on,
    /// by any process, announces its revision, which is its seq.
    async fn notifications(&self) -> Result<Option<AppendNotifications>, StoreError> {
        let options = SubscribeToStreamOptions::default().start_from(StreamPosition::End);
        let mut subscription = self
            .client()
            .subscribe_to_stream(self.stream.as_str(), &options)
            .await;
        let (sender, receiver) = tokio::sync::mpsc::channel(AppendNotifications::BUFFER);
        let described = self.described.clone();
        let task = tokio::spawn(async move {
            loop {
                match subscription.next().await {
                    Ok(resolved) => {
                        let Some(event) = resolved.event.as_ref().or(resolved.link.as_ref()) else {
                            continue;
                        };
                        // Full: an undelivered item already says "catch up".
                        if let Err(TrySendError::Closed(_)) = sender.try_send(event.revision) {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(stream = %described, %error, "the subscription to appends was lost");
                        break;
                    }
                }
            }
        });
        Ok(Some(AppendNotifications::new(
            receiver,
            Box::new(AbortOnDrop(task.abort_handle())),
        )))
    }
}

/// Ends the subscription task when the notifications are dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn new_client(settings: &ClientSettings, described: &str) -> Result<Client, StoreError> {
    Client::new(settings.clone()).map_err(|error| {
        StoreError::Backend(format!(
            "{described}: cannot make an EventStoreDB client: {}",
            error_chain(&error)
        ))
    })
}

/// Maps a client error to what the caller can act on.
fn esdb_error(described: &str, error: eventstore::Error) -> StoreError {
    use eventstore::Error;
    match error {
        Error::GrpcConnectionError(_)
        | Error::ConnectionClosed
        | Error::DeadlineExceeded
        | Error::ServerError(_) => StoreError::Unreachable(format!(
            "{described}: {}; is the server (or a quorum of the cluster) up and the URL right \
             (tls=false for an insecure server)? The outcome of an append in flight is \
             unknown: read the head before deciding again",
            error_chain(&error)
        )),
        Error::NotLeaderException(leader) => StoreError::Unreachable(format!(
            "{described}: the node is not the leader (the leader is {}:{}); add \
             nodePreference=leader to the URL",
            leader.host, leader.port
        )),
        Error::AccessDenied => StoreError::Backend(format!(
            "{described}: access denied; check the user and password in the URL and the \
             stream's ACL (the fundledger user needs read and write on the stream)"
        )),
        Error::ResourceDeleted => StoreError::Corrupt {
            seq: 0,
            reason: format!("{described}: the stream was deleted outside fundledger"),
        },
        Error::Grpc { ref message, .. } if message.contains("Maximum Append Size") => {
            StoreError::InvalidBatch(format!(
                "{described}: {message}: the batch is larger than the server's MaxAppendSize; \
                 raise MaxAppendSize on the server (see ops/kurrentdb) or send smaller batches"
            ))
        }
        other => StoreError::Backend(format!("{described}: {}", error_chain(&other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundledger_events::chain::record_hash;
    use fundledger_events::{jcs, seal_batch};
    use serde_json::json;

    fn sealed(count: u64) -> Vec<Record> {
        let bodies = (1..=count)
            .map(|seq| {
                json!({"seq": seq, "type": "application_submitted",
                       "recorded_at": "2024-06-01T09:00:00+08:00",
                       "command_id": format!("c{seq}"),
                       "actor": {"id": "t", "role": "admin", "unit": "市财政局"},
                       "note": "郑政文〔2024〕62号 \"quoted\"\n", "amount": "1000000.00",
                       "z": {"b": 1, "a": [true, null]}})
            })
            .collect();
        seal_batch(&Head::empty("esdb-test"), bodies).expect("test bodies meet §5")
    }

    fn rows(batch: &[Record]) -> Vec<Row> {
        prepare_batch(&Head::empty("esdb-test"), batch).expect("a sealed batch is valid")
    }

    #[test]
    fn event_ids_are_deterministic_distinct_and_version_8() {
        let batch = sealed(50);
        let ids: Vec<uuid::Uuid> = batch.iter().map(|record| event_id(&record.hash)).collect();
        let again: Vec<uuid::Uuid> = batch.iter().map(|record| event_id(&record.hash)).collect();
        assert_eq!(ids, again, "the same hash gives the same id");
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            ids.len(),
            "different hashes give different ids"
        );
        for (id, record) in ids.iter().zip(&batch) {
            assert_eq!(id.get_version_num(), 8);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            // Apart from the version and variant bits, the id is the hash's first 16 bytes.
            let (id_bytes, hash_bytes) = (id.as_bytes(), &record.hash.as_bytes()[..16]);
            for index in (0..16).filter(|index| *index != 6 && *index != 8) {
                assert_eq!(id_bytes[index], hash_bytes[index]);
            }
            assert_eq!(id_bytes[6] & 0x0f, hash_bytes[6] & 0x0f);
            assert_eq!(id_bytes[8] & 0x3f, hash_bytes[8] & 0x3f);
        }
        assert_ne!(
            event_id(&genesis("a")),
            event_id(&genesis("b")),
            "two ledgers' origin events differ"
        );
    }

    #[test]
    fn revisions_follow_seqs_with_the_origin_event_at_zero() {
        assert_eq!(
            expected_revision(&Head::empty("x")),
            ExpectedRevision::Exact(0)
        );
        let batch = sealed(3);
        assert_eq!(
            expected_revision(&batch[2].head()),
            ExpectedRevision::Exact(3)
        );
        for record in &batch {
            assert_eq!(revision_of_seq(record.seq), record.seq);
        }
    }

    #[test]
    fn event_data_round_trips_to_the_record_and_its_hash() {
        let batch = sealed(5);
        for (row, record) in rows(&batch).iter().zip(&batch) {
            let data = record_event_data(row);
            let parsed: serde_json::Value = serde_json::from_str(&data).expect("data is JSON");
            assert_eq!(parsed["seq"], json!(record.seq));
            assert_eq!(parsed["hash"], json!(record.hash.to_hex()));
            assert_eq!(parsed["prev"], json!(record.prev.to_hex()));
            // The body inside the data is the canonical text byte for byte.
            let body_at = data.find(r#""body":"#).expect("a body field") + 7;
            assert_eq!(
                &data.as_bytes()[body_at..data.len() - 1],
                jcs::canonicalize(&record.body).as_slice()
            );
            let back = record_from_event_data(record.seq, data.as_bytes()).expect("reads back");
            assert_eq!(&back, record);
            assert_eq!(
                record_hash(&back.prev, &jcs::canonicalize(&back.body)),
                back.hash,
                "what is read back hashes to the stored hash"
            );
            let event = record_event(row, record).expect("an event");
            let debug = format!("{event:?}");
            assert!(debug.contains("application_submitted"), "{debug}");
            assert!(
                debug.contains(&event_id(&record.hash).to_string()),
                "{debug}"
            );
        }
    }

    #[test]
    fn unreadable_event_data_is_corrupt_at_its_revision() {
        let batch = sealed(2);
        let good = record_event_data(&rows(&batch)[1]);
        let cases = [
            (2, b"not json".to_vec(), "not a JSON object"),
            (2, vec![0xff, 0xfe], "not UTF-8"),
            (
                2,
                br#"{"seq":2,"prev":"00","hash":"00"}"#.to_vec(),
                "no \"body\"",
            ),
            (3, good.clone().into_bytes(), "holds seq 2"),
            (
                2,
                good.replace(&batch[1].hash.to_hex(), "zz").into_bytes(),
                "hash",
            ),
            (2, br#"{"seq":"2"}"#.to_vec(), "seq"),
        ];
        for (revision, data, needle) in cases {
            match record_from_event_data(revision, &data) {
                Err(StoreError::Corrupt { seq, reason }) => {
                    assert_eq!(seq, revision);
                    assert!(reason.contains(needle), "{needle}: {reason}");
                }
                other => panic!("expected Corrupt ({needle}), got {other:?}"),
            }
        }
    }

    #[test]
    fn the_origin_event_is_checked() {
        let event = |revision: u64, event_type: &str, data: serde_json::Value| RecordedEvent {
            stream_id: "s".into(),
            id: uuid::Uuid::nil(),
            revision,
            event_type: event_type.into(),
            data: serde_json::to_vec(&data).expect("JSON").into(),
            metadata: Default::default(),
            custom_metadata: Default::default(),
            is_json: true,
            position: eventstore::Position {
                commit: 0,
                prepare: 0,
            },
            created: Default::default(),
        };
        let good = origin_event_data("zhengzhou-2024-62");
        assert_eq!(
            origin_from_event(&event(0, ORIGIN_EVENT_TYPE, good.clone()), "d").expect("ours"),
            "zhengzhou-2024-62"
        );
        let mut forged_genesis = good.clone();
        forged_genesis["genesis"] = json!("00".repeat(32));
        let mut newer = good.clone();
        newer["fundledger_ledger"] = json!(2);
        for (revision, event_type, data, needle) in [
            (3, ORIGIN_EVENT_TYPE, good.clone(), "not the origin event"),
            (0, "something_else", good.clone(), "not the origin event"),
            (0, ORIGIN_EVENT_TYPE, forged_genesis, "genesis"),
            (0, ORIGIN_EVENT_TYPE, newer, "release that wrote it"),
            (0, ORIGIN_EVENT_TYPE, json!({"x": 1}), "names no origin"),
        ] {
            match origin_from_event(&event(revision, event_type, data), "d") {
                Err(StoreError::Backend(message)) => {
                    assert!(message.contains(needle), "{needle}: {message}")
                }
                other => panic!("expected Backend ({needle}), got {other:?}"),
            }
        }
    }

    #[test]
    fn urls_name_the_server_and_the_stream() {
        let parsed = parse_url("esdb://admin:changeit@db1:2113?tls=false").expect("valid");
        assert_eq!(parsed.stream, DEFAULT_STREAM);
        assert_eq!(parsed.described, "esdb://db1:2113 stream fundledger");
        assert!(!parsed.settings.is_secure_mode_enabled());

        let cluster = parse_url(
            "kurrentdb://db1:2113,db2:2113,db3:2113?nodePreference=leader&stream=zz-2024.62",
        )
        .expect("valid");
        assert_eq!(cluster.stream, "zz-2024.62");
        assert_eq!(cluster.settings.hosts().len(), 3);
        assert!(cluster.settings.is_secure_mode_enabled(), "TLS by default");
        assert_eq!(
            cluster,
            parse_url("esdb://db1:2113,db2:2113,db3:2113?stream=zz-2024.62&nodePreference=leader")
                .expect("valid"),
            "kurrentdb:// is esdb://, the parameters in any order"
        );
        let discover = parse_url("esdb+discover://cluster.example:2113").expect("valid");
        assert!(discover.settings.is_dns_discovery_enabled());
        assert!(parse_url("kurrentdb+discover://cluster.example")
            .expect("valid")
            .settings
            .is_dns_discovery_enabled());

        for (url, needle) in [
            ("esdb://h?stream=$all", "stream name"),
            ("esdb://h?stream=", "stream name"),
            ("esdb://h?stream=a%20b", "stream name"),
            ("esdb://h?stream=a&stream=b", "twice"),
            ("esdb://h/path", "connection string"),
            ("esdb://h?nodePreference=nobody", "connection string"),
            ("esdb://h?tlsCaFile=/nonexistent/ca.pem", "cannot be read"),
            ("esdbx://h", "not an EventStoreDB URL"),
        ] {
            match parse_url(url) {
                Err(StoreError::BadUrl(message)) => {
                    assert!(message.contains(needle), "{url}: {message}");
                    assert!(message.contains("accepted store URLs"), "{message}");
                }
                other => panic!("{url}: expected BadUrl, got {other:?}"),
            }
        }
        let with_password = parse_url("esdb://u:s3cret@h:1?tls=false").expect("valid");
        assert!(!with_password.described.contains("s3cret"));
        assert!(!format!("{with_password:?}").contains("s3cret"));
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_before_the_client_sees_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").expect("written");
        match parse_url(&format!("esdb://h?tlsCaFile={}", path.display())) {
            Err(StoreError::BadUrl(message)) => assert!(message.contains("not a PEM"), "{message}"),
            other => panic!("expected BadUrl, got {other:?}"),
        }
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("written");
        assert!(parse_url(&format!("esdb://h?tlsCaFile={}", path.display())).is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_as_unreachable() {
        // Port 1 on the loopback: nothing listens there, so every connection is refused.
        let url = "esdb://127.0.0.1:1?tls=false&maxDiscoverAttempts=1&discoveryInterval=10";
        for outcome in [
            crate::open(url, "t").await.map(drop),
            crate::open_existing(url).await.map(drop),
        ] {
            match outcome {
                Err(StoreError::Unreachable(message)) => {
                    assert!(message.contains("127.0.0.1:1"), "{message}")
                }
                other => panic!("expected Unreachable, got {other:?}"),
            }
        }
    }
}
