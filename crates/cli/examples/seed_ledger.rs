//! Makes a ledger of synthetic records (DESIGN §5 bodies with Chinese text) for trying and
//! timing the auditor commands, straight through the store crate:
//!
//! ```text
//! cargo run --release -p fundledger-cli --example seed_ledger -- sqlite:///tmp/l.db 100000
//! time target/release/fundledger verify --store sqlite:///tmp/l.db
//! ```
//!
//! Appends to an existing ledger up to COUNT records; creates it (origin ORIGIN) otherwise.

use std::error::Error;

use fundledger_events::seal_batch;
use serde_json::json;

const USAGE: &str = "usage: seed_ledger STORE_URL COUNT [ORIGIN]";
/// Records per append: a durable commit each, so larger batches seed faster.
const BATCH_RECORDS: u64 = 2_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(count)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let count: u64 = count
        .parse()
        .map_err(|_| format!("COUNT {count:?} is not a number; {USAGE}"))?;
    let origin = args.get(2).map_or("zhengzhou-2024-62.seed", String::as_str);
    let store = fundledger_store::open(url, origin).await?;
    let mut head = store.head().await?;
    while head.seq < count {
        let last = (head.seq + BATCH_RECORDS).min(count);
        let bodies = (head.seq + 1..=last)
            .map(|seq| {
                json!({
                    "seq": seq,
                    "type": "payout_confirmed",
                    "recorded_at": "2025-03-01T10:00:00+08:00",
                    "command_id": format!("00000000-0000-4000-8000-{seq:012}"),
                    "actor": {"id": "fin.li", "role": "finance", "unit": "市财政局"},
                    "payout_id": format!("P-{seq}"),
                    "amount": format!("{}.00", 10_000 + seq % 90_000),
                    "note": format!("第{seq}笔 算力券兑付（郑政文〔2024〕62号 第2条）"),
                })
            })
            .collect();
        let batch = seal_batch(&head, bodies)?;
        head = store.append(head, &batch).await?;
    }
    println!(
        "{} records in {url} (origin {:?}), head {}",
        head.seq,
        store.origin(),
        head.hash
    );
    Ok(())
}
