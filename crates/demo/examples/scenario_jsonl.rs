//! Prints the demo scenario as JSON Lines, ready for `fundledger apply`:
//! `cargo run -p fundledger-demo --example scenario_jsonl -- [SEED] > demo.jsonl`.
//! With `--expect`, each line is `{"expect": code|null, "command": {…}}` instead.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut seed = fundledger_demo::DEFAULT_SEED;
    let mut with_expect = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--expect" => with_expect = true,
            other => match other.parse() {
                Ok(number) => seed = number,
                Err(_) => {
                    eprintln!("usage: scenario_jsonl [SEED] [--expect]");
                    std::process::exit(2);
                }
            },
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for step in fundledger_demo::scenario(seed) {
        let line = if with_expect {
            serde_json::json!({"expect": step.expect, "command": step.command})
        } else {
            step.command
        };
        writeln!(out, "{line}")?;
    }
    out.flush()
}
