//! The finance bureau's dashboard in headless Chromium against `fundledger serve --demo`:
//! the rendered page holds the demo's numbers as the page formats them (head seq, record
//! count, every budget row, the lab programme, the latest payout, the voucher ranking), with
//! Chinese headings and English subtitles; and a screenshot is kept as a CI artifact in
//! `<target>/artifacts/dashboard.png`.
//!
//! Chromium is Debian's `chromium` package (with `fonts-noto-cjk` for the Chinese glyphs),
//! installed by `.ci/run`. Without it the test fails when `CI` is set and is skipped, loudly,
//! otherwise, so `cargo test --workspace` passes on a fresh developer machine.

mod common;
mod serving;

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use serving::Server;

/// How long one Chromium run may take (a safety limit, not a timing assertion).
const CHROMIUM_LIMIT: Duration = Duration::from_secs(180);

/// Chromium (`FUNDLEDGER_TEST_CHROMIUM`, else `chromium` on the PATH, else
/// `/usr/bin/chromium`), or `None` after saying why the test does not run.
fn chromium() -> Option<PathBuf> {
    let found = match std::env::var_os("FUNDLEDGER_TEST_CHROMIUM") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("chromium"))
                    .find(|candidate| candidate.is_file())
            })
            .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file())),
    };
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed, and CI is set: the dashboard test must run in CI. \
             .ci/run installs it (apt-get install chromium fonts-noto-cjk); run .ci/run, or \
             install them yourself"
        );
        loud(
            "\n!!!!!!!! SKIPPED: chromium not installed (apt-get install chromium fonts-noto-cjk); \
             the dashboard was NOT tested !!!!!!!!\n",
        );
    }
    found
}

/// A line on the test process's stderr that `cargo test` shows even when the test passes
/// (libtest captures `eprintln!`, not direct writes).
fn loud(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Without a CJK font the screenshot shows boxes instead of Chinese (the DOM is the same).
fn check_cjk_font() {
    let Ok(output) = Command::new("fc-list")
        .arg(":lang=zh")
        .arg("family")
        .output()
    else {
        return;
    };
    if output.status.success() && output.stdout.iter().all(u8::is_ascii_whitespace) {
        let message = "no Chinese font (fc-list :lang=zh is empty): the screenshot will show \
                       boxes; apt-get install fonts-noto-cjk (.ci/run does)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        loud(&format!("WARNING: {message}"));
    }
}

/// A Chromium run in its own process group, killed (with its helpers) when dropped.
struct Browser {
    child: Option<Child>,
}

impl Browser {
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + CHROMIUM_LIMIT;
        loop {
            let exited = self
                .child
                .as_mut()
                .unwrap_or_else(|| panic!("chromium already finished"))
                .try_wait()
                .unwrap_or_else(|error| panic!("{error}"));
            if let Some(status) = exited {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not finish within {CHROMIUM_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: the browser's zygote and renderers too.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs headless Chromium on `url` with `extra` flags, a fresh profile under `dir`, its
/// stdout into `dir/name.out`; returns stdout. Fails on a non-zero exit.
fn run_chromium(chromium: &Path, dir: &Path, name: &str, url: &str, extra: &[&str]) -> String {
    let profile = dir.join(format!("{name}-profile"));
    std::fs::create_dir_all(&profile).unwrap_or_else(|error| panic!("{error}"));
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let out = File::create(&out_path).unwrap_or_else(|error| panic!("{error}"));
    let err = File::create(&err_path).unwrap_or_else(|error| panic!("{error}"));
    let child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromium.display()));
    let mut browser = Browser { child: Some(child) };
    let status = browser.wait();
    let stderr = String::from_utf8_lossy(&read(&err_path)).into_owned();
    assert!(status.success(), "chromium {name}: {status}\n{stderr}");
    String::from_utf8_lossy(&read(&out_path)).into_owned()
}

/// The page's `yuan()`: "1234567.00" → "1,234,567.00".
fn yuan(text: &str) -> String {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fen) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if fen.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fen}")
    }
}

/// The markup from `start` (e.g. `id="budget-table"`) to the first `end` after it.
fn section<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("the page has no {start}"));
    let rest = &dom[from..];
    let to = rest.find(end).map_or(rest.len(), |i| i + end.len());
    &rest[..to]
}

/// The directory CI keeps artifacts in: `<target>/artifacts`.
fn artifacts_dir() -> PathBuf {
    // crates/cli → the workspace.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.ancestors().nth(2).unwrap_or(manifest);
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("artifacts")
}

#[test]
fn the_dashboard_shows_the_demo_ledger_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    check_cjk_font();
    let dir = tempdir();
    let d = dir.path();
    let url = format!("sqlite://{}", d.join("s.db").display());
    let server = Server::start_demo(d, &url);
    let finance = server.token("finance").token.clone();
    let summary = server.get_json("/v1/summary", &finance);
    let budgets = server.get_json("/v1/budgets", &finance);
    let labs = server.get_json("/v1/labs", &finance);
    let payments = server.get_json("/v1/payments", &finance);
    let page = format!("http://{}/#token={finance}", server.address);
    assert_eq!(page, server.dashboard_url);

    let dom = run_chromium(&chromium, d, "dom", &page, &["--dump-dom"]);
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the page never finished loading its data:\n{dom}"
    );
    assert!(
        dom.contains(r#"<main id="content">"#),
        "content hidden:\n{dom}"
    );
    assert!(
        dom.contains(r#"<section id="token-prompt" hidden="""#),
        "the token prompt is showing:\n{dom}"
    );
    let footer = section(&dom, r#"<footer id="status""#, "</footer>");
    assert!(
        footer.contains("最后刷新 Last refreshed") && !footer.contains("error"),
        "the last refresh failed: {footer}"
    );

    // The chain's head and record count.
    let head_seq = summary["head_seq"].to_string();
    assert!(summary["head_seq"].as_u64().is_some_and(|seq| seq > 400));
    assert!(dom.contains(&format!(r#"<b id="head-seq">{head_seq}</b>"#)));
    assert!(dom.contains(&format!(
        r#"<b id="record-count">{}</b>"#,
        summary["record_count"]
    )));
    let head_hash = summary["head_hash"].as_str().unwrap_or("");
    assert!(dom.contains(&format!(r#"<code id="head-hash">{head_hash}</code>"#)));
    assert!(dom.contains("fin.wang"), "the signed-in officer is named");

    // Every budget row, with all four amounts as the page formats them.
    let table = section(&dom, r#"id="budget-table""#, "</table>");
    let rows = budgets.as_array().cloned().unwrap_or_default();
    assert!(rows.len() >= 24, "{budgets}");
    for budget in &rows {
        let marker = format!(
            r#"<tr data-measure="{}" data-year="{}">"#,
            budget["measure"].as_str().unwrap_or(""),
            budget["fiscal_year"]
        );
        let row = section(table, &marker, "</tr>");
        for field in ["allocated", "committed", "paid", "remaining"] {
            let amount = budget[field].as_str().unwrap_or("");
            assert!(
                row.contains(&format!(r#"data-amount="{amount}">{}</td>"#, yuan(amount))),
                "budget {marker} lacks {field} {}:\n{row}",
                yuan(amount)
            );
        }
    }

    // The lab programme: its envelope and its years.
    let timeline = section(&dom, r#"id="lab-timeline""#, r#"id="lab-empty""#);
    for lab in labs.as_array().cloned().unwrap_or_default() {
        assert!(timeline.contains(&format!(
            r#"data-lab="{}""#,
            lab["lab"].as_str().unwrap_or("")
        )));
        let envelope = lab["envelope"].as_str().unwrap_or("");
        assert!(
            timeline.contains(&format!("经费包 envelope {}", yuan(envelope))),
            "{timeline}"
        );
        for year in lab["years"]
            .as_object()
            .map(|y| y.keys())
            .into_iter()
            .flatten()
        {
            assert!(
                timeline.contains(&format!(r#"data-year="{year}""#)),
                "{year}"
            );
        }
    }
    assert!(timeline.contains("10,000,000.00"), "{timeline}");

    // The latest payout (the page sorts by ordered_seq) with its amount.
    let latest: &Value = payments
        .as_array()
        .and_then(|rows| rows.iter().max_by_key(|p| p["ordered_seq"].as_u64()))
        .unwrap_or_else(|| panic!("the demo has payouts"));
    let payouts = section(&dom, r#"id="payout-table""#, "</table>");
    let row = section(
        payouts,
        &format!(
            r#"<tr data-payout="{}">"#,
            latest["payout_id"].as_str().unwrap_or("")
        ),
        "</tr>",
    );
    assert!(
        row.contains(&yuan(latest["amount"].as_str().unwrap_or(""))),
        "{row}"
    );
    assert_eq!(payouts.matches("<tr data-payout=").count(), 20);

    // The voucher ranking is filled.
    let vouchers = section(&dom, r#"id="voucher-table""#, "</table>");
    assert!(vouchers.contains("<tr data-uscc="), "{vouchers}");

    // Chinese headings with English subtitles.
    for text in [
        "郑州市人工智能创新发展政策资金台账",
        "预算执行<small>Budget by measure and year",
        "算力券额度<small>Firms nearest their compute-voucher cap",
        "重点实验室五年计划<small>Key-lab programmes",
        "最新拨付<small>Latest payouts",
        "链头序号 Head seq",
    ] {
        assert!(dom.contains(text), "the page lacks {text:?}");
    }

    // The screenshot, kept as a CI artifact.
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", artifacts.display()));
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &chromium,
        d,
        "screenshot",
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000",
        ],
    );
    let png = read(&shot);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 50_000, "a suspiciously small screenshot");
    loud(&format!("dashboard screenshot: {}", shot.display()));
}
