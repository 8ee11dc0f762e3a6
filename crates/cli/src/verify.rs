//! `fundledger verify`: the auditor's check of a log, from an export file or a store.
//!
//! 1. The hash chain of DESIGN §5, record by record, from the genesis of the log's origin
//!    (`events::ChainVerifier`): it needs nothing but §5, so it verifies exports written by
//!    any implementation. A file is read as bytes, so a torn last line or a non-UTF-8 byte is
//!    reported at its seq. Each line's own checks (form, §5 fields, its hash) run on every
//!    core (`events::precheck_lines`), the links between lines in order on one thread; the
//!    first bad seq is named as a line-by-line check names it.
//! 2. The Merkle root of DESIGN §6 over the record hashes, built while reading.
//! 3. With `--checkpoint FILE --vkey KEY`: the checkpoint is signed by KEY, names the same
//!    origin, and its root is the root of the log's first `size` records.
//! 4. With `--since OLD`: OLD (signed by the same key) is extended by the new checkpoint — a
//!    consistency proof between the two, made from the log and checked by the audit crate's
//!    witness check. A log that shrank (rollback) or changed under the old checkpoint (fork)
//!    fails loudly.
//!
//! Memory: a fixed number of 1 MiB chunks of a file (or one page of a store) at a time, and
//! the Merkle root in O(log n) ([`Frontier`]). Only `--since` keeps the whole `MerkleTree`
//! (about 64 bytes per record), because a consistency proof needs interior nodes between the
//! two sizes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use fundledger_audit::{
    check_consistent, empty_root, open_checkpoint, Checkpoint, MerkleTree, VerifierKey,
    WitnessError,
};
use fundledger_events::lanes::{Input, Lanes, Mode};
use fundledger_events::{parse_header, ChainVerifier, Hash, Head, PrecheckedLine, Prechecker};

use crate::failure::{self, DataError};
use crate::frontier::Frontier;
use crate::output::print_stdout;
use crate::store_args::{self, DEFAULT_STORE_URL, PAGE_RECORDS, STORE_ENV};

/// Read buffer of an export file.
const READ_BUFFER_BYTES: usize = 1 << 20;
/// The longest export line accepted. The largest real body is the policy catalogue (tens of
/// KB); the limit keeps a hostile file without newlines from taking all memory.
const LINE_BYTES_MAX: u64 = 64 << 20;
/// The largest checkpoint or key file read: they are a few hundred bytes.
const SMALL_FILE_BYTES_MAX: u64 = 64 << 10;
const COMMAND: &str = "verify";

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The ledger to verify: sqlite://PATH or postgres://… [env: FUNDLEDGER_STORE] [default:
    /// sqlite://data/fundledger.db]
    #[arg(long, value_name = "URL", conflicts_with = "file")]
    pub store: Option<String>,

    /// An export (JSON Lines, DESIGN §5) to verify instead of a store
    #[arg(long, value_name = "EXPORT")]
    pub file: Option<PathBuf>,

    /// A signed checkpoint (C2SP tlog-checkpoint) the log must match; needs --vkey
    #[arg(long, value_name = "FILE", requires = "vkey")]
    pub checkpoint: Option<PathBuf>,

    /// The checkpoint signer's verifier key: the key string itself, or a .vkey file
    #[arg(long, value_name = "KEY", requires = "checkpoint")]
    pub vkey: Option<String>,

    /// An older checkpoint, signed by the same key, that the new one must extend
    #[arg(long, value_name = "OLD_CHECKPOINT", requires = "checkpoint")]
    pub since: Option<PathBuf>,

    /// Records per read from a store (hidden: for tests of paging and for tuning)
    #[arg(long, hide = true, default_value_t = PAGE_RECORDS, value_parser = store_args::parse_page_records)]
    pub page_records: usize,
}

/// The checkpoints to hold the log against, opened and signature-checked before any record is
/// read, so a wrong key or path fails at once.
struct Trust {
    checkpoint: Checkpoint,
    since: Option<Checkpoint>,
}

impl Trust {
    /// The tree sizes whose roots the checks need.
    fn sizes(&self) -> Vec<u64> {
        let mut sizes = vec![self.checkpoint.size];
        sizes.extend(self.since.as_ref().map(|old| old.size));
        sizes
    }
}

/// What reading the log produced.
struct Tally {
    origin: String,
    head: Head,
    frontier: Frontier,
    /// The whole tree, only when a consistency proof is needed (`--since`).
    tree: Option<MerkleTree>,
    /// `(size, root at that size)`, filled in as the log passes each size.
    roots: Vec<(u64, Option<Hash>)>,
}

impl Tally {
    fn new(origin: &str, sizes: &[u64], keep_tree: bool) -> Tally {
        let roots = sizes
            .iter()
            .map(|&size| (size, (size == 0).then(empty_root)))
            .collect();
        Tally {
            origin: origin.to_string(),
            head: Head::empty(origin),
            frontier: Frontier::new(),
            tree: keep_tree.then(MerkleTree::new),
            roots,
        }
    }

    /// Adds a record the chain verifier accepted.
    fn add(&mut self, record_hash: &Hash) {
        self.frontier.push(record_hash);
        if let Some(tree) = &mut self.tree {
            tree.push(*record_hash);
        }
        let len = self.frontier.len();
        for (size, root) in &mut self.roots {
            if *size == len {
                *root = Some(self.frontier.root());
            }
        }
    }

    /// Adds 2^`level` records the chain verifier accepted, given the root of their (aligned)
    /// subtree. Only without `--since`, whose tree needs every leaf, and only for runs of
    /// records that end at or before each checkpoint size, so no root asked for is skipped.
    fn add_subtree(&mut self, level: u32, root: Hash) {
        debug_assert!(self.tree.is_none());
        self.frontier.push_subtree(level, root);
        let len = self.frontier.len();
        for (size, size_root) in &mut self.roots {
            if *size == len {
                *size_root = Some(self.frontier.root());
            }
        }
    }

    fn records(&self) -> u64 {
        self.frontier.len()
    }

    /// The root at `size`, if the log reached it and the size was asked for up front.
    fn root_at(&self, size: u64) -> Option<Hash> {
        self.roots
            .iter()
            .find(|(wanted, _)| *wanted == size)
            .and_then(|(_, root)| *root)
    }
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let trust = load_trust(&args)?;
    let sizes = trust.as_ref().map(Trust::sizes).unwrap_or_default();
    let keep_tree = trust.as_ref().is_some_and(|trust| trust.since.is_some());
    let (source, tally) = match &args.file {
        // Reading a file is plain blocking IO; nothing else runs in this process meanwhile.
        Some(path) => (
            format!("file {}", path.display()),
            verify_file(path, &sizes, keep_tree)?,
        ),
        None => {
            // As clap does for the other subcommands: an explicit --store wins, then a
            // non-empty FUNDLEDGER_STORE, then the default.
            let url = args.store.clone().unwrap_or_else(|| {
                std::env::var(STORE_ENV)
                    .ok()
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| DEFAULT_STORE_URL.to_string())
            });
            let tally = verify_store(&url, &sizes, keep_tree, args.page_records).await?;
            (format!("store {}", store_args::redact_url(&url)), tally)
        }
    };
    // The chain is good: say so before the checkpoint checks, which may still fail.
    print_stdout(&format!(
        "chain: OK\nsource: {source}\norigin: {}\nrecords: {}\nhead seq: {}\nhead hash: {}\n\
         merkle root: {}\n",
        tally.origin,
        tally.records(),
        tally.head.seq,
        tally.head.hash,
        tally.frontier.root()
    ))?;
    if let Some(trust) = &trust {
        check_checkpoint(&tally, &trust.checkpoint)?;
        print_stdout(&format!(
            "checkpoint: OK (size {})\n",
            trust.checkpoint.size
        ))?;
        if let Some(old) = &trust.since {
            check_since(&tally, old, &trust.checkpoint)?;
            print_stdout(&format!(
                "since: OK (size {} is extended by size {})\n",
                old.size, trust.checkpoint.size
            ))?;
        }
    }
    print_stdout("verify: OK\n")
}

fn load_trust(args: &VerifyArgs) -> anyhow::Result<Option<Trust>> {
    let (Some(checkpoint_path), Some(vkey_arg)) = (&args.checkpoint, &args.vkey) else {
        // clap enforces that --checkpoint and --vkey come together and --since needs them.
        return Ok(None);
    };
    let vkey = load_verifier_key(vkey_arg)?;
    let checkpoint = open_signed(checkpoint_path, &vkey, "checkpoint")?;
    let since = match &args.since {
        Some(path) => Some(open_signed(path, &vkey, "--since checkpoint")?),
        None => None,
    };
    Ok(Some(Trust { checkpoint, since }))
}

/// `--vkey`: a verifier key string, or the path of a file holding one.
fn load_verifier_key(arg: &str) -> anyhow::Result<VerifierKey> {
    let path = Path::new(arg);
    let (text, what) = if path.is_file() {
        (
            read_small_text(path)?,
            format!("the file {}", path.display()),
        )
    } else if path.exists() {
        bail!("--vkey {arg} is not a regular file");
    } else {
        (arg.to_string(), format!("--vkey {arg:?}"))
    };
    let text = text.trim();
    if text.starts_with("PRIVATE+KEY+") {
        bail!(
            "{what} holds a secret key; --vkey takes the verifier key (the .vkey file or its \
             text), which is safe to share"
        );
    }
    VerifierKey::parse(text).with_context(|| {
        format!(
            "{what} is neither a readable .vkey file nor a verifier key string \
             (NAME+KEYID+BASE64)"
        )
    })
}

/// Reads a checkpoint file and opens it with `key`. A note that is not signed by the key (or
/// not a checkpoint at all) is a finding, exit 1; a file that cannot be read is exit 2.
fn open_signed(path: &Path, key: &VerifierKey, what: &str) -> anyhow::Result<Checkpoint> {
    let text = read_small_text(path)?;
    open_checkpoint(&text, key).map_err(|error| {
        failure::failed(
            COMMAND,
            format!(
                "{what} {} is not a checkpoint signed by {}+{}: {error}",
                path.display(),
                key.name(),
                key.key_id()
            ),
        )
        .into()
    })
}

/// Reads a short text file (a key or a checkpoint), refusing anything implausibly large.
fn read_small_text(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(SMALL_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > SMALL_FILE_BYTES_MAX {
        bail!(
            "{} is larger than {} KiB; a key or checkpoint is a few hundred bytes",
            path.display(),
            SMALL_FILE_BYTES_MAX >> 10
        );
    }
    String::from_utf8(bytes).map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))
}

/// Verifies an export file, streaming, on every core (see [`check_file_lines`]).
fn verify_file(path: &Path, sizes: &[u64], keep_tree: bool) -> anyhow::Result<Tally> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if metadata.is_dir() {
        bail!("{} is a directory, not an export file", path.display());
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut line = Vec::new();
    let read_error = || format!("cannot read {}", path.display());

    if read_line(&mut reader, &mut line, 0).with_context(read_error)? == 0 {
        bail!(
            "{} is empty; an export starts with the header line \
             {{\"fundledger_export\":1,\"origin\":\"…\"}}",
            path.display()
        );
    }
    let header = parse_header(&line).map_err(|error| failure::chain_failure(COMMAND, &error))?;
    let mut verifier = ChainVerifier::new(&header.origin);
    let mut tally = Tally::new(&header.origin, sizes, keep_tree);
    // What the reader took past the header is where the records start.
    let after_header = reader.buffer().to_vec();
    let file = reader.into_inner();
    check_file_lines(path, file, after_header, &mut verifier, &mut tally)?;
    tally.head = verifier.head();
    Ok(tally)
}

/// Bytes per chunk of an export file: large enough that the cost of handing a chunk between
/// threads vanishes (over 1,000 lines), small enough that a chunk just read is still in the
/// CPU's cache when a precheck thread takes it.
const CHUNK_BYTES: usize = 1 << 20;
/// The most precheck threads, whatever the machine reports.
const PRECHECK_THREADS_MAX: usize = 16;

/// A run of whole lines of the export (the last may lack its newline at the end of the file)
/// and what the precheck threads found in them. Chunk buffers circulate: reader → precheck →
/// linker → reader, so the chunks in flight — and the memory — are fixed.
#[derive(Default)]
struct Chunk {
    /// Position in the file: the linker takes chunks in this order.
    index: u64,
    bytes: Vec<u8>,
    lines: Vec<PrecheckedLine>,
    /// The Merkle subtrees of the chunk's records, `(level, root)` in order, when every line
    /// passed its precheck and the seqs run on (see [`chunk_subtrees`]).
    subtrees: Option<Vec<(u32, Hash)>>,
    end: ChunkEnd,
}

/// What the reader met after a chunk's lines.
#[derive(Default)]
enum ChunkEnd {
    /// More chunks follow.
    #[default]
    More,
    /// The end of the file.
    EndOfFile,
    /// The next line is longer than [`LINE_BYTES_MAX`].
    LineTooLong,
    /// Reading failed.
    ReadFailed(std::io::Error),
}

/// Checks every record line of an export: one thread reads chunks of whole lines, precheck
/// threads (one per core) check each line on its own — the record's form, the body's §5
/// fields and `hash = H(prev ‖ JCS(body))`, which depend on nothing else — and this thread
/// links them in file order (seq follows, prev = previous hash) and builds the Merkle root.
/// A line the precheck refused is checked again here, in order, by the full
/// `ChainVerifier::check_line`, so the first bad seq and its message are exactly those of a
/// line-by-line check.
///
/// `first_bytes` are bytes of the file at `path` already read past the header; `file`
/// continues after them.
fn check_file_lines(
    path: &Path,
    file: File,
    first_bytes: Vec<u8>,
    verifier: &mut ChainVerifier,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, PRECHECK_THREADS_MAX);
    // Enough chunks that every thread has one and the reader is one ahead.
    let chunks_in_flight = 2 * threads + 2;
    let (free_sender, free_chunks) = mpsc::channel::<Chunk>();
    for _ in 0..chunks_in_flight {
        // The receiver is alive: it is in this scope.
        let _ = free_sender.send(Chunk::default());
    }
    let (job_sender, jobs) = mpsc::sync_channel::<Chunk>(chunks_in_flight);
    let jobs = Mutex::new(jobs);
    let (done_sender, done_chunks) = mpsc::channel::<Chunk>();
    // `--since` keeps the whole tree, which takes every leaf: no subtrees then.
    let subtree_splits: Option<Vec<u64>> = tally
        .tree
        .is_none()
        .then(|| tally.roots.iter().map(|(size, _)| *size).collect());
    std::thread::scope(|scope| {
        scope.spawn(move || read_chunks(file, first_bytes, free_chunks, job_sender));
        for _ in 0..threads {
            let done_sender = done_sender.clone();
            let jobs = &jobs;
            let splits = subtree_splits.as_deref();
            scope.spawn(move || precheck_chunks(jobs, splits, done_sender));
        }
        drop(done_sender);
        // Returning drops the linker's channel ends, so the reader and the precheck threads
        // stop at their next send or receive, and the scope can join them.
        link_chunks(path, done_chunks, free_sender, verifier, tally)
    })
}

/// The reader thread: fills free chunks with whole lines, in file order, until the end of
/// the file, a read error, a line too long, or the linker stopping.
fn read_chunks(
    mut file: File,
    mut carry: Vec<u8>,
    free_chunks: Receiver<Chunk>,
    jobs: SyncSender<Chunk>,
) {
    for index in 0.. {
        let Ok(mut chunk) = free_chunks.recv() else {
            return;
        };
        chunk.index = index;
        chunk.lines.clear();
        chunk.bytes.clear();
        chunk.bytes.append(&mut carry);
        chunk.end = fill_chunk(&mut file, &mut chunk.bytes, &mut carry);
        let last = !matches!(chunk.end, ChunkEnd::More);
        if jobs.send(chunk).is_err() || last {
            return;
        }
    }
}

/// Reads into `bytes` (which may start with the tail of the previous chunk) at least
/// [`CHUNK_BYTES`] more, then moves the part after the last newline to `carry`, so `bytes`
/// ends at a line's end. Reads on while there is no newline at all, up to a line of
/// [`LINE_BYTES_MAX`].
fn fill_chunk(file: &mut File, bytes: &mut Vec<u8>, carry: &mut Vec<u8>) -> ChunkEnd {
    let mut searched = 0;
    loop {
        // read_to_end on a Take fills the spare capacity without zeroing it first.
        let read = match file.take(CHUNK_BYTES as u64).read_to_end(bytes) {
            Ok(read) => read,
            Err(error) => {
                // Lines before the failure are still checked, so an earlier bad seq is named
                // first, as a line-by-line reader would.
                let whole = last_newline(bytes).map_or(0, |newline| newline + 1);
                bytes.truncate(whole);
                return ChunkEnd::ReadFailed(error);
            }
        };
        if first_line_too_long(bytes) {
            bytes.clear();
            return ChunkEnd::LineTooLong;
        }
        if read < CHUNK_BYTES {
            // Take stops short only at the end of the file.
            return ChunkEnd::EndOfFile;
        }
        if let Some(newline) = last_newline(&bytes[searched..]) {
            let cut = searched + newline + 1;
            carry.extend_from_slice(&bytes[cut..]);
            bytes.truncate(cut);
            return ChunkEnd::More;
        }
        searched = bytes.len();
    }
}

/// Whether the first line of `bytes` (which starts at a line's start) is over
/// [`LINE_BYTES_MAX`], newline not counted, as `read_line` decides for one line.
fn first_line_too_long(bytes: &[u8]) -> bool {
    let limit = usize::try_from(LINE_BYTES_MAX).unwrap_or(usize::MAX);
    bytes.len() > limit && !bytes[..=limit].contains(&b'\n')
}

fn last_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&byte| byte == b'\n')
}

/// A precheck thread: splits each chunk into lines, prechecks every line and, with
/// `subtree_splits` (the sizes whose roots are asked for), builds the chunk's Merkle subtrees.
fn precheck_chunks(
    jobs: &Mutex<Receiver<Chunk>>,
    subtree_splits: Option<&[u64]>,
    done: Sender<Chunk>,
) {
    // Working memory kept from chunk to chunk.
    let mut prechecker = Prechecker::default();
    let mut scratch = SubtreeScratch::default();
    loop {
        let next = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(mut chunk) = next else {
            return;
        };
        prechecker.precheck_lines(&chunk.bytes, &mut chunk.lines);
        chunk.subtrees =
            subtree_splits.and_then(|splits| chunk_subtrees(&chunk.lines, splits, &mut scratch));
        if done.send(chunk).is_err() {
            return;
        }
    }
}

/// Working memory of [`chunk_subtrees`], kept from chunk to chunk.
#[derive(Default)]
struct SubtreeScratch {
    lanes: Lanes,
    cuts: Vec<u64>,
    levels: Vec<u32>,
    current: Vec<Hash>,
    next: Vec<Hash>,
    children: Vec<[u8; 64]>,
    nodes: Vec<Hash>,
}

/// The Merkle subtrees of a chunk's records, `(level, root)` in order: the chunk's leaves
/// (records `first..first + n`, by the seqs the lines state) cut into complete aligned
/// subtrees, as [`Frontier::push_subtree`] takes them, and also cut at every size in
/// `splits`, so the root at that size can be read between two subtrees. The leaves and the
/// nodes of each level are hashed eight at a time (`events::lanes`).
///
/// `None` unless every line passed its precheck and the seqs run on by one: then the linker
/// adds the records one by one, as it must anyway to find the first bad one. The seqs are
/// the lines' own; the linker checks that they follow the chain before using the subtrees.
fn chunk_subtrees(
    lines: &[PrecheckedLine],
    splits: &[u64],
    scratch: &mut SubtreeScratch,
) -> Option<Vec<(u32, Hash)>> {
    let first_seq = lines.first()?.digest?.seq;
    let runs_on = lines.iter().enumerate().all(|(offset, line)| {
        line.digest
            .is_some_and(|digest| digest.seq == first_seq + offset as u64)
    });
    if !runs_on {
        return None;
    }
    // Leaf indices first..end, cut at the splits inside, then into aligned power-of-two
    // blocks (each as large as its start's alignment and the room left allow).
    let first = first_seq - 1;
    let end = first + lines.len() as u64;
    let SubtreeScratch {
        lanes,
        cuts,
        levels,
        current,
        next,
        children,
        nodes,
    } = scratch;
    cuts.clear();
    cuts.extend(
        splits
            .iter()
            .copied()
            .filter(|&size| first < size && size < end),
    );
    cuts.sort_unstable();
    cuts.push(end);
    levels.clear();
    let mut at = first;
    for &cut in cuts.iter() {
        while at < cut {
            let room_level = (cut - at).ilog2();
            let level = if at == 0 {
                room_level
            } else {
                at.trailing_zeros().min(room_level)
            };
            levels.push(level);
            at += 1u64 << level;
        }
    }
    // Level by level: the leaves, then each node from two of the level below, for every
    // block that is not complete yet.
    current.clear();
    current.resize(lines.len(), Hash::ZERO);
    let leaf = |index: usize| Input {
        head: &[LEAF_PREFIX],
        tail: lines[index]
            .digest
            .as_ref()
            .map_or(&[][..], |digest| &digest.hash.0[..]),
    };
    lanes.hash(Mode::Hash, lines.len(), leaf, current);
    let top_level = levels.iter().copied().max().unwrap_or(0);
    for level in 0..top_level {
        children.clear();
        let mut at = 0;
        for &block_level in levels.iter() {
            let width = 1usize << block_level.saturating_sub(level);
            if block_level > level {
                for pair in current[at..at + width].chunks_exact(2) {
                    let mut both = [0u8; 64];
                    both[..32].copy_from_slice(&pair[0].0);
                    both[32..].copy_from_slice(&pair[1].0);
                    children.push(both);
                }
            }
            at += width;
        }
        nodes.clear();
        nodes.resize(children.len(), Hash::ZERO);
        let node = |index: usize| Input {
            head: &[NODE_PREFIX],
            tail: &children[index],
        };
        lanes.hash(Mode::Hash, children.len(), node, nodes);
        next.clear();
        let (mut at, mut made) = (0, nodes.iter());
        for &block_level in levels.iter() {
            let width = 1usize << block_level.saturating_sub(level);
            if block_level > level {
                next.extend(made.by_ref().take(width / 2));
            } else {
                next.push(current[at]);
            }
            at += width;
        }
        std::mem::swap(current, next);
    }
    Some(
        levels
            .iter()
            .copied()
            .zip(current.iter().copied())
            .collect(),
    )
}

/// RFC 9162 §2.1.1 domain separation, as `fundledger_audit::leaf_hash` and `node_hash`
/// prefix their inputs (the tests compare the results with them).
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The linker: takes prechecked chunks in file order, links every line onto the chain and
/// the Merkle frontier, and recycles the chunk to the reader.
fn link_chunks(
    path: &Path,
    done_chunks: Receiver<Chunk>,
    free_chunks: Sender<Chunk>,
    verifier: &mut ChainVerifier,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut waiting: BTreeMap<u64, Chunk> = BTreeMap::new();
    let mut next_index = 0;
    // The record hashes of the chunk being linked.
    let mut linked: Vec<Hash> = Vec::new();
    for chunk in done_chunks {
        waiting.insert(chunk.index, chunk);
        while let Some(mut chunk) = waiting.remove(&next_index) {
            next_index += 1;
            let subtrees = chunk.subtrees.take();
            let records_before = tally.records();
            linked.clear();
            for line in &chunk.lines {
                let hash = verifier
                    .check_line_with(&chunk.bytes[line.start..line.end], line.digest.as_ref())
                    .map_err(|error| failure::chain_failure(COMMAND, &error))?;
                linked.push(hash);
            }
            // The subtrees were built from the lines' own seqs and hashes: use them only when
            // those are the records just linked, at the positions just linked.
            let subtrees_fit = chunk
                .lines
                .first()
                .and_then(|line| line.digest)
                .map(|digest| digest.seq)
                == Some(records_before + 1)
                && chunk
                    .lines
                    .iter()
                    .zip(&linked)
                    .all(|(line, hash)| line.digest.map(|digest| digest.hash) == Some(*hash));
            match subtrees {
                Some(subtrees) if subtrees_fit => {
                    for (level, root) in subtrees {
                        tally.add_subtree(level, root);
                    }
                }
                _ => {
                    for hash in &linked {
                        tally.add(hash);
                    }
                }
            }
            match std::mem::take(&mut chunk.end) {
                ChunkEnd::More => {}
                ChunkEnd::EndOfFile => return Ok(()),
                ChunkEnd::LineTooLong => return Err(line_too_long(verifier.head().seq + 1)),
                ChunkEnd::ReadFailed(error) => {
                    return Err(anyhow::Error::new(error)
                        .context(format!("cannot read {}", path.display())))
                }
            }
            if chunk.bytes.capacity() > 2 * CHUNK_BYTES {
                // A very long line grew this buffer; do not keep that much for good.
                chunk.bytes = Vec::new();
            }
            // The reader is gone only after the end of the file, handled above.
            let _ = free_chunks.send(chunk);
        }
    }
    bail!("internal error: a precheck thread stopped before the end of the export")
}

fn line_too_long(seq: u64) -> anyhow::Error {
    let place = if seq == 0 {
        "the header line".to_string()
    } else {
        format!("at seq {seq}")
    };
    failure::failed(
        COMMAND,
        format!(
            "{place}: a line longer than {} MiB; not an export",
            LINE_BYTES_MAX >> 20
        ),
    )
    .into()
}

/// Reads one line, newline included, into `line`; 0 at the end of the file. A line longer
/// than [`LINE_BYTES_MAX`] is a finding at `seq` (0 for the header).
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, seq: u64) -> anyhow::Result<usize> {
    let read = (&mut *reader)
        .take(LINE_BYTES_MAX + 1)
        .read_until(b'\n', line)?;
    if read as u64 > LINE_BYTES_MAX && line.last() != Some(&b'\n') {
        return Err(line_too_long(seq));
    }
    Ok(read)
}

/// Verifies a store, page by page, up to the head it has when verification starts.
async fn verify_store(
    url: &str,
    sizes: &[u64],
    keep_tree: bool,
    page_records: usize,
) -> anyhow::Result<Tally> {
    let store = store_args::open_existing(url).await?;
    let head = store_args::head(&*store).await?;
    let mut tally = Tally::new(store.origin(), sizes, keep_tree);
    let reached = store_args::verify_chain(&*store, head.seq, page_records, COMMAND, |hash| {
        tally.add(hash)
    })
    .await?;
    if reached != head {
        return Err(failure::failed(
            COMMAND,
            format!(
                "the store says its head is seq {} with hash {}, but its records end at seq {} \
                 with hash {}",
                head.seq, head.hash, reached.seq, reached.hash
            ),
        )
        .into());
    }
    tally.head = reached;
    Ok(tally)
}

/// The log matches the checkpoint: same origin, at least `size` records, same root at `size`.
fn check_checkpoint(tally: &Tally, checkpoint: &Checkpoint) -> Result<(), DataError> {
    if checkpoint.origin != tally.origin {
        return Err(failure::failed(
            COMMAND,
            format!(
                "the checkpoint is for origin {:?}, but the log's origin is {:?}",
                checkpoint.origin, tally.origin
            ),
        ));
    }
    if checkpoint.size > tally.records() {
        return Err(failure::failed(
            COMMAND,
            format!(
                "ROLLBACK or truncation: the checkpoint signs {} records, but the log holds only \
                 {}: records were removed after the checkpoint was signed",
                checkpoint.size,
                tally.records()
            ),
        ));
    }
    let root = tally.root_at(checkpoint.size).ok_or_else(|| {
        failure::failed(
            COMMAND,
            "internal error: the root at the checkpoint's size was not kept",
        )
    })?;
    if root != checkpoint.root {
        return Err(failure::failed(
            COMMAND,
            format!(
                "the checkpoint signs root {} at size {}, but the log's first {} records have root \
                 {}: they are not the records that were signed (rewritten or forged)",
                checkpoint.root, checkpoint.size, checkpoint.size, root
            ),
        ));
    }
    Ok(())
}

/// The new checkpoint (already matched against the log) extends the old one.
fn check_since(tally: &Tally, old: &Checkpoint, new: &Checkpoint) -> anyhow::Result<()> {
    let finding = |error: WitnessError| failure::failed(COMMAND, format!("--since: {error}"));
    if old.origin != new.origin {
        return Err(finding(WitnessError::OriginMismatch {
            old: old.origin.clone(),
            new: new.origin.clone(),
        })
        .into());
    }
    if old.size > new.size {
        return Err(finding(WitnessError::Rollback {
            old_size: old.size,
            new_size: new.size,
        })
        .into());
    }
    if old.size == 0 {
        // Every log extends the empty one, whose root is fixed; RFC 9162 has no proof for it.
        if old.root != empty_root() {
            return Err(failure::failed(
                COMMAND,
                format!(
                    "--since: the old checkpoint signs size 0 with root {}, not the empty root {}",
                    old.root,
                    empty_root()
                ),
            )
            .into());
        }
        return Ok(());
    }
    let tree = tally
        .tree
        .as_ref()
        .ok_or_else(|| anyhow!("internal error: --since was given but no Merkle tree was kept"))?;
    let proof = tree
        .consistency_proof(old.size, new.size)
        .context("internal error: cannot make the consistency proof")?;
    match check_consistent(old, new, &proof) {
        Ok(()) => Ok(()),
        // The proof is made from the log, whose root at the new size is the new checkpoint's
        // (checked before): a mismatch at the old size is a log rewritten under the old one.
        Err(WitnessError::ProofNotForCheckpoint { .. }) if proof.old_root != old.root => {
            Err(failure::failed(
                COMMAND,
                format!(
                    "--since: FORK: the old checkpoint signs root {} at size {}, but this log has \
                     root {} at that size: the log was rewritten after the old checkpoint was \
                     signed",
                    old.root, old.size, proof.old_root
                ),
            )
            .into())
        }
        Err(error) => Err(finding(error).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fundledger_events::LineDigest;

    /// Distinct record hashes; their values do not matter, only that they differ.
    fn hash_of(seq: u64) -> Hash {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        Hash(bytes)
    }

    /// Prechecked lines for records `first_seq..first_seq + count` (the byte ranges are not
    /// looked at).
    fn lines(first_seq: u64, count: u64) -> Vec<PrecheckedLine> {
        (first_seq..first_seq + count)
            .map(|seq| PrecheckedLine {
                start: 0,
                end: 0,
                digest: Some(LineDigest {
                    seq,
                    prev: hash_of(seq - 1),
                    hash: hash_of(seq),
                }),
            })
            .collect()
    }

    #[test]
    fn chunk_subtrees_give_the_roots_merkle_tree_gives() {
        let total = 700u64;
        let mut tree = MerkleTree::new();
        for seq in 1..=total {
            tree.push(hash_of(seq));
        }
        let splits = [5, 64, 65, 250, 511, 700];
        // One scratch for every run, as a precheck thread keeps it.
        let mut scratch = SubtreeScratch::default();
        for chunk_len in [1, 2, 3, 7, 64, 100, 333, 700] {
            let mut tally = Tally::new("origin", &splits, false);
            let mut seq = 1;
            while seq <= total {
                let count = chunk_len.min(total - seq + 1);
                let subtrees = chunk_subtrees(&lines(seq, count), &splits, &mut scratch)
                    .unwrap_or_else(|| panic!("records {seq}.. make subtrees"));
                for (level, root) in subtrees {
                    tally.add_subtree(level, root);
                }
                seq += count;
            }
            assert_eq!(tally.records(), total);
            assert_eq!(tally.frontier.root(), tree.root(), "chunks of {chunk_len}");
            for size in splits {
                assert_eq!(
                    tally.root_at(size),
                    tree.root_at(size).ok(),
                    "size {size}, chunks of {chunk_len}"
                );
            }
        }
    }

    #[test]
    fn no_subtrees_unless_every_line_passed_and_the_seqs_run_on() {
        let mut missing = lines(1, 10);
        missing[4].digest = None;
        let mut scratch = SubtreeScratch::default();
        assert_eq!(chunk_subtrees(&missing, &[], &mut scratch), None);
        let mut gap = lines(1, 10);
        gap.remove(4);
        assert_eq!(chunk_subtrees(&gap, &[], &mut scratch), None);
        assert_eq!(chunk_subtrees(&[], &[], &mut scratch), None);
    }
}
