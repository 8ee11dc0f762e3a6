//! `keygen`, `checkpoint` and `prove`: the signed tree heads and proofs of DESIGN §6.
//!
//! `checkpoint` and `prove` re-check the hash chain while they read the log: a checkpoint is
//! a signature over the log and a proof is a promise about it, so neither is made over a
//! broken chain (that is a `FAILED at seq N` finding, exit 1).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use fundledger_audit::{Checkpoint, MerkleTree, SigningKey};
use fundledger_store::EventStore;

use crate::frontier::Frontier;
use crate::output::{self, print_stdout};
use crate::store_args::{self, StoreArgs};

/// The largest key file read: a secret key line is about 100 bytes.
const KEY_FILE_BYTES_MAX: u64 = 64 << 10;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name; by convention the origin of the ledger it will sign for
    #[arg(long, value_name = "ORIGIN")]
    pub name: String,

    /// Writes PREFIX.key (secret, mode 0600) and PREFIX.vkey (the verifier key)
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The secret key file written by `fundledger keygen` (PREFIX.key)
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that the record at --seq is in the tree of the first --size records
    Inclusion(InclusionArgs),
    /// Prove that the tree of the first --old records is a prefix of that of --new records
    Consistency(ConsistencyArgs),
}

#[derive(Debug, Args)]
pub struct InclusionArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The record's seq (leaf index = seq − 1)
    #[arg(long, value_name = "N")]
    pub seq: u64,

    /// The tree size the proof is for [default: the whole log]
    #[arg(long, value_name = "M")]
    pub size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The older tree size (at least 1)
    #[arg(long, value_name = "M")]
    pub old: u64,

    /// The newer tree size (at most the log's length)
    #[arg(long, value_name = "N")]
    pub new: u64,
}

/// `PREFIX` + `suffix`, keeping non-UTF-8 prefixes intact.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = prefix.as_os_str().to_os_string();
    path.push(suffix);
    PathBuf::from(path)
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = SigningKey::generate(&args.name, &mut rand::rngs::OsRng)
        .with_context(|| format!("cannot make a key named {:?}", args.name))?;
    let key_path = with_suffix(&args.out, ".key");
    let vkey_path = with_suffix(&args.out, ".vkey");
    // Checked up front so that neither file is written when one would be refused;
    // create_new below still guarantees nothing is ever overwritten.
    for path in [&key_path, &vkey_path] {
        if path.symlink_metadata().is_ok() {
            bail!(
                "{} already exists; refusing to overwrite a key (move it away or choose another \
                 --out)",
                path.display()
            );
        }
    }
    // 0600 from the moment the file exists: never a window where others may read the secret.
    write_new_file(&key_path, key.to_secret_string().as_bytes(), 0o600)?;
    let vkey = key.verifier_key_string();
    if let Err(error) = write_new_file(&vkey_path, format!("{vkey}\n").as_bytes(), 0o644) {
        // Half a key pair is useless and would block the next attempt; the secret was ours.
        let _ = std::fs::remove_file(&key_path);
        return Err(error);
    }
    output::print_stderr(&format!(
        "keygen: wrote {} (secret, mode 0600) and {}",
        key_path.display(),
        vkey_path.display()
    ));
    print_stdout(&format!("{vkey}\n"))
}

fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads and parses a secret key file; never prints its content.
fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let file =
        File::open(path).with_context(|| format!("cannot open the key file {}", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    if metadata.is_dir() {
        bail!("the key file {} is a directory", path.display());
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        output::print_stderr(&format!(
            "warning: the key file {} can be read by other users (mode {:o}); `chmod 600` it",
            path.display(),
            metadata.permissions().mode() & 0o777
        ));
    }
    let mut bytes = Vec::new();
    file.take(KEY_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    let not_a_key = || {
        format!(
            "{} is not a secret key file written by `fundledger keygen` \
             (PRIVATE+KEY+NAME+KEYID+BASE64)",
            path.display()
        )
    };
    if bytes.len() as u64 > KEY_FILE_BYTES_MAX {
        return Err(
            anyhow!("the file is larger than {} KiB", KEY_FILE_BYTES_MAX >> 10)
                .context(not_a_key()),
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("the file is not UTF-8 text").context(not_a_key()))?;
    SigningKey::parse(text.trim()).with_context(not_a_key)
}

pub async fn checkpoint(args: CheckpointArgs) -> anyhow::Result<()> {
    // The key first: a bad key file should not cost a full read of the log.
    let key = load_signing_key(&args.key)?;
    let store = store_args::open_existing(&args.store.store).await?;
    if key.name() != store.origin() {
        output::print_stderr(&format!(
            "warning: the key is named {:?} but the ledger's origin is {:?}; verifiers \
             usually expect a checkpoint key to be named after the log's origin",
            key.name(),
            store.origin()
        ));
    }
    let head = store_args::head(&*store).await?;
    let mut frontier = Frontier::new();
    store_args::verify_chain(
        &*store,
        head.seq,
        args.store.page_records,
        "checkpoint",
        |hash| frontier.push(hash),
    )
    .await?;
    let checkpoint = Checkpoint {
        origin: store.origin().to_string(),
        size: head.seq,
        root: frontier.root(),
    };
    let note = checkpoint
        .sign(&key)
        .context("cannot sign the checkpoint")?;
    print_stdout(&note)
}

pub async fn prove(command: ProveCommand) -> anyhow::Result<()> {
    let json = match command {
        ProveCommand::Inclusion(args) => prove_inclusion(args).await?,
        ProveCommand::Consistency(args) => prove_consistency(args).await?,
    };
    print_stdout(&format!("{json}\n"))
}

async fn prove_inclusion(args: InclusionArgs) -> anyhow::Result<String> {
    if args.seq == 0 {
        bail!("--seq 0: seqs start at 1 (leaf index = seq − 1)");
    }
    if let Some(size) = args.size {
        if args.seq > size {
            bail!(
                "--seq {} is beyond --size {size}: a tree of {size} records holds seqs 1 to {size}",
                args.seq
            );
        }
    }
    let store = store_args::open_existing(&args.store.store).await?;
    let head = store_args::head(&*store).await?;
    let size = args.size.unwrap_or(head.seq);
    if size > head.seq {
        bail!(
            "--size {size} is beyond the log, which holds {} records",
            head.seq
        );
    }
    if args.seq > size {
        bail!(
            "--seq {} is beyond the log, which holds {size} records",
            args.seq
        );
    }
    let tree = verified_tree(&*store, size, args.store.page_records).await?;
    let proof = tree
        .inclusion_proof(args.seq - 1, size)
        .context("cannot make the inclusion proof")?;
    // Checked by the RFC verifier, which shares no code with the tree that made the proof.
    proof
        .verify()
        .context("internal error: the inclusion proof just made does not verify")?;
    serde_json::to_string_pretty(&proof).context("cannot write the proof as JSON")
}

async fn prove_consistency(args: ConsistencyArgs) -> anyhow::Result<String> {
    if args.old == 0 {
        bail!(
            "--old 0: RFC 9162 defines no consistency proof from the empty tree (every log \
             extends it); use --old 1 or more"
        );
    }
    if args.old > args.new {
        bail!(
            "--old {} is greater than --new {}: a log only grows, so the old size comes first",
            args.old,
            args.new
        );
    }
    let store = store_args::open_existing(&args.store.store).await?;
    let head = store_args::head(&*store).await?;
    if args.new > head.seq {
        bail!(
            "--new {} is beyond the log, which holds {} records",
            args.new,
            head.seq
        );
    }
    let tree = verified_tree(&*store, args.new, args.store.page_records).await?;
    let proof = tree
        .consistency_proof(args.old, args.new)
        .context("cannot make the consistency proof")?;
    proof
        .verify()
        .context("internal error: the consistency proof just made does not verify")?;
    serde_json::to_string_pretty(&proof).context("cannot write the proof as JSON")
}

/// The Merkle tree of the first `size` records, after checking their chain. Proofs for any
/// pair of sizes need interior nodes, so this keeps the whole tree (about 64 bytes a record).
async fn verified_tree(
    store: &dyn EventStore,
    size: u64,
    page_records: usize,
) -> anyhow::Result<MerkleTree> {
    let mut tree = MerkleTree::new();
    store_args::verify_chain(store, size, page_records, "prove", |hash| tree.push(*hash)).await?;
    Ok(tree)
}
