//! Writing results to stdout without panicking when stdout is closed (`println!` would).

use std::io::Write;

use anyhow::Context;

/// Writes `text` to stdout and flushes it; a closed pipe is an error (exit 2), not a panic.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// Writes `text` and a newline to stderr. Messages on stderr are best effort: a closed stderr
/// must not turn into a panic (as `eprintln!` would) or hide the exit code.
pub fn print_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}
