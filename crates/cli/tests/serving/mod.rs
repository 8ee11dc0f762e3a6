//! Shared by the service tests (`serve.rs`, `dashboard.rs`): a `fundledger serve --demo` child
//! process on a loopback port the system picks, with the demo tokens it printed, killed when
//! dropped (also when the test fails); and a minimal HTTP/1.1 client over
//! `std::net::TcpStream`, so the tests need no HTTP crate.
//!
//! Every wait here is bounded by a generous safety limit; none is a timing assertion.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long `serve --demo` may take to write the demo and listen (a safety limit).
pub const START_LIMIT: Duration = Duration::from_secs(300);
/// How long the service may take to stop after SIGTERM (a safety limit).
pub const STOP_LIMIT: Duration = Duration::from_secs(20);
/// Read and write timeout of one HTTP exchange (a safety limit).
const IO_LIMIT: Duration = Duration::from_secs(60);

/// One demo token line: `role id unit-or-firm token`.
#[derive(Clone, Debug)]
pub struct DemoToken {
    pub role: String,
    pub id: String,
    /// The unit of staff, the USCC of an applicant.
    pub scope: String,
    pub token: String,
}

/// A running `fundledger serve`; killed on drop.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`, as the service printed it.
    pub address: String,
    pub tokens: Vec<DemoToken>,
    /// The `dashboard (as finance): …` URL it printed.
    pub dashboard_url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// Appends every line of `pipe` to `buffer` and pings `ready` after each one.
fn drain(pipe: impl Read + Send + 'static, buffer: Arc<Mutex<String>>, ready: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(mut text) = buffer.lock() {
                        text.push_str(&String::from_utf8_lossy(&line));
                    }
                    let _ = ready.send(());
                }
            }
        }
    });
}

impl Server {
    /// Starts `fundledger serve --demo --store STORE --listen 127.0.0.1:0` in `dir` and waits
    /// until it has printed where it listens and its demo tokens.
    pub fn start_demo(dir: &Path, store: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fundledger"))
            .args([
                "serve",
                "--demo",
                "--store",
                store,
                "--listen",
                "127.0.0.1:0",
            ])
            .current_dir(dir)
            .env_remove("FUNDLEDGER_STORE")
            .env_remove("FUNDLEDGER_ORIGIN")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start fundledger serve: {error}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready, lines) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            drain(pipe, stdout.clone(), ready.clone());
        }
        if let Some(pipe) = child.stderr.take() {
            drain(pipe, stderr.clone(), ready);
        }
        let mut server = Server {
            child: Some(child),
            address: String::new(),
            tokens: Vec::new(),
            dashboard_url: String::new(),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(started) = server.parse_banner() {
                let (address, tokens, dashboard_url) = started;
                server.address = address;
                server.tokens = tokens;
                server.dashboard_url = dashboard_url;
                return server;
            }
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "fundledger serve exited ({status}) before it was ready\nstdout:\n{}\nstderr:\n{}",
                    server.stdout(),
                    server.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "fundledger serve was not ready within {START_LIMIT:?}\nstdout:\n{}\nstderr:\n{}",
                server.stdout(),
                server.stderr()
            );
            let _ = lines.recv_timeout(Duration::from_millis(200));
        }
    }

    /// (address, tokens, dashboard URL) once stderr names the address and stdout holds the
    /// whole token block (its last line is the `==== example:` line).
    fn parse_banner(&self) -> Option<(String, Vec<DemoToken>, String)> {
        let stderr = self.stderr();
        let address = stderr.lines().find_map(|line| {
            let rest = line.strip_prefix("fundledger: serving ")?;
            let url = rest.rsplit_once(" on http://")?.1;
            Some(url.trim_end_matches('/').to_string())
        })?;
        let stdout = self.stdout();
        if !stdout.lines().any(|line| line.starts_with("==== example:")) {
            return None;
        }
        let mut tokens = Vec::new();
        let mut dashboard = None;
        for line in stdout.lines() {
            if line.starts_with("====") {
                continue;
            }
            if let Some(url) = line.strip_prefix("dashboard (as finance): ") {
                dashboard = Some(url.to_string());
                continue;
            }
            let columns: Vec<&str> = line.split_whitespace().collect();
            match columns.as_slice() {
                [role, id, scope, token] => tokens.push(DemoToken {
                    role: role.to_string(),
                    id: id.to_string(),
                    scope: scope.to_string(),
                    token: token.to_string(),
                }),
                _ => panic!("unexpected line among the demo tokens: {line:?}\n{stdout}"),
            }
        }
        let dashboard = dashboard
            .unwrap_or_else(|| panic!("serve --demo printed no dashboard line:\n{stdout}"));
        Some((address, tokens, dashboard))
    }

    /// Everything the service wrote on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Everything the service wrote on stderr so far (its log).
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The first demo token of `role`.
    pub fn token(&self, role: &str) -> &DemoToken {
        self.tokens
            .iter()
            .find(|t| t.role == role)
            .unwrap_or_else(|| panic!("no demo token for {role}: {:?}", self.tokens))
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("the server has stopped"))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        request(&self.address, "GET", path, token, None)
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        request(
            &self.address,
            "POST",
            path,
            token,
            Some(("application/json", body.to_string().as_bytes())),
        )
    }

    /// GET with `token` that must answer 200 with JSON.
    pub fn get_json(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, Some(token));
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response.json()
    }

    /// Sends SIGTERM and waits (at most [`STOP_LIMIT`]) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill: {error}"));
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            let exited = self
                .child
                .as_mut()
                .unwrap_or_else(|| panic!("the server has stopped"))
                .try_wait()
                .unwrap_or_else(|error| panic!("{error}"));
            if let Some(status) = exited {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "fundledger serve did not stop within {STOP_LIMIT:?} of SIGTERM\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// One request on a fresh connection (`Connection: close`), the answer read to its end.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Response {
    let mut stream = TcpStream::connect(address)
        .unwrap_or_else(|error| panic!("cannot connect to {address}: {error}"));
    let _ = stream.set_read_timeout(Some(IO_LIMIT));
    let _ = stream.set_write_timeout(Some(IO_LIMIT));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let content = body.map(|(_, bytes)| bytes).unwrap_or_default();
    if let Some((content_type, _)) = body {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", content.len()));
    let mut message = head.into_bytes();
    message.extend_from_slice(content);
    stream
        .write_all(&message)
        .unwrap_or_else(|error| panic!("{method} {path}: cannot send: {error}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|error| panic!("{method} {path}: cannot read the answer: {error}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match length {
            Some(length) if length <= rest.len() => rest[..length].to_vec(),
            Some(_) => return None,
            None => rest.to_vec(),
        }
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(body);
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// Added for the crash test (`crash.rs`); the functions above are shared and stay as they are.

impl Server {
    /// Sends SIGKILL — the process gets no chance to finish a request, a batch or a
    /// transaction — and reaps it. Returns the exit status (killed by signal 9).
    pub fn kill_hard(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("the server has stopped"));
        // On Unix, `Child::kill` is SIGKILL.
        child
            .kill()
            .unwrap_or_else(|error| panic!("cannot SIGKILL fundledger serve: {error}"));
        child
            .wait()
            .unwrap_or_else(|error| panic!("cannot reap fundledger serve: {error}"))
    }

    /// The demo token of the principal `id` (e.g. `fin.wang`, `applicant.tianshu`).
    pub fn token_of(&self, id: &str) -> &DemoToken {
        self.tokens
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("no demo token for {id}: {:?}", self.tokens))
    }
}

/// Like [`request`], but a connection that fails — refused, reset, closed before the whole
/// answer arrived, as when the service is killed mid-request — is an `Err`, not a panic.
pub fn try_request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Response, String> {
    let mut stream =
        TcpStream::connect(address).map_err(|error| format!("cannot connect: {error}"))?;
    let _ = stream.set_read_timeout(Some(IO_LIMIT));
    let _ = stream.set_write_timeout(Some(IO_LIMIT));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let content = body.map(|(_, bytes)| bytes).unwrap_or_default();
    if let Some((content_type, _)) = body {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", content.len()));
    let mut message = head.into_bytes();
    message.extend_from_slice(content);
    stream
        .write_all(&message)
        .map_err(|error| format!("cannot send: {error}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|error| format!("cannot read the answer: {error}"))?;
    parse_response(&raw).ok_or_else(|| {
        format!(
            "no whole HTTP answer ({} bytes): {}",
            raw.len(),
            String::from_utf8_lossy(&raw)
        )
    })
}

// Added for the authorization matrix (`authz_matrix.rs`); the functions above stay as they are.

impl Server {
    /// Starts `fundledger serve --config CONFIG --store STORE --listen 127.0.0.1:0` in `dir`
    /// (principals from the config file, no demo) and waits until it says where it listens.
    pub fn start_with_config(dir: &Path, config: &Path, store: &str) -> Server {
        let config = config
            .to_str()
            .unwrap_or_else(|| panic!("test paths are UTF-8: {}", config.display()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_fundledger"))
            .args([
                "serve",
                "--config",
                config,
                "--store",
                store,
                "--listen",
                "127.0.0.1:0",
            ])
            .current_dir(dir)
            .env_remove("FUNDLEDGER_STORE")
            .env_remove("FUNDLEDGER_ORIGIN")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start fundledger serve: {error}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready, lines) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            drain(pipe, stdout.clone(), ready.clone());
        }
        if let Some(pipe) = child.stderr.take() {
            drain(pipe, stderr.clone(), ready);
        }
        let mut server = Server {
            child: Some(child),
            address: String::new(),
            tokens: Vec::new(),
            dashboard_url: String::new(),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let address = server.stderr().lines().find_map(|line| {
                let rest = line.strip_prefix("fundledger: serving ")?;
                let url = rest.rsplit_once(" on http://")?.1;
                Some(url.trim_end_matches('/').to_string())
            });
            if let Some(address) = address {
                server.address = address;
                return server;
            }
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "fundledger serve exited ({status}) before it was ready\nstderr:\n{}",
                    server.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "fundledger serve was not ready within {START_LIMIT:?}\nstderr:\n{}",
                server.stderr()
            );
            let _ = lines.recv_timeout(Duration::from_millis(200));
        }
    }
}
