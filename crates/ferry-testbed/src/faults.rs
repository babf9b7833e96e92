//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, put in front of the real registry or the git
//! http server by tests and benches.
//!
//! Every request is forwarded with `Connection: close`, so each one passes through the rules.
//! A request whose method and path match a rule gets that rule's fault instead of (or on top of)
//! the real answer; the first matching rule with hits left wins. Rules can be swapped while the
//! proxy runs, so a test can run a command under a fault and rerun it cleanly through the same
//! address (the address is written into Git, so it must not change).
//!
//! Threads, not async: a proxy serves a handful of connections, and a hung or trickling one
//! must not hold up the others. Dropping the proxy stops it and releases hanging connections.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a matching request gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Closed without any answer (a reset before the response).
    Reset,
    /// The real answer's head and half its body, then a TCP reset.
    ResetMidBody,
    /// The real answer's head at once, then its body at this many bytes per second.
    SlowBody { bytes_per_sec: u32 },
    /// The real answer with its body cut in half (and `Content-Length` matching the cut).
    Truncated,
    /// `200 OK` with a body that is not JSON.
    Garbage,
    /// `429 Too Many Requests` with `Retry-After: SECONDS`.
    TooManyRequests { retry_after: u32 },
    /// An error status (e.g. 500, 502, 503) with a distribution-style error body.
    Status(u16),
    /// Accepts the request and never answers (until the proxy is dropped).
    Hang,
}

/// A fault for requests whose path contains `path` (and whose method is `method`, if given),
/// for the first `times` of them (all of them when `None`).
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: Option<String>,
    pub path: String,
    pub fault: Fault,
    pub times: Option<usize>,
}

impl Rule {
    /// Every request whose path contains `path`.
    pub fn new(path: impl Into<String>, fault: Fault) -> Rule {
        Rule {
            method: None,
            path: path.into(),
            fault,
            times: None,
        }
    }

    /// Only the first `n` matching requests.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }

    /// Only requests with this method (`GET`, `HEAD`, `PUT`, `POST`, ...).
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_string());
        self
    }
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<(Rule, usize)>>,
    forwarded: AtomicUsize,
    stop: AtomicBool,
}

/// A running proxy. Its address stays the same for its whole life.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("host", &self.host)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`, plain HTTP) with no rules.
    pub fn start(upstream: &str) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let host = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            rules: Mutex::new(Vec::new()),
            forwarded: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &s);
                });
            }
        });
        Ok(FaultProxy { host, shared })
    }

    /// Replaces the rules (and their hit counters).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *lock(&self.shared.rules) = rules.into_iter().map(|r| (r, 0)).collect();
    }

    /// Passes everything through from now on.
    pub fn clear(&self) {
        self.set_rules(Vec::new());
    }

    /// Requests the rule at `index` answered with its fault.
    pub fn hits(&self, index: usize) -> usize {
        lock(&self.shared.rules).get(index).map_or(0, |r| r.1)
    }

    /// Requests forwarded without a fault.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads up to the end of the request head; returns (head, bytes read past it).
fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return Ok(Some((head, buf[end + 4..].to_vec())));
        }
        // A TLS ClientHello (clients may try https first): close, as a plain-HTTP server would.
        if buf.first() == Some(&0x16) || buf.len() > 64 * 1024 {
            return Ok(None);
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The fault for this request, counting the hit.
fn pick(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    let (rule, hits) = rules.iter_mut().find(|(r, hits)| {
        path.contains(&r.path)
            && r.method.as_deref().is_none_or(|m| m == method)
            && r.times.is_none_or(|t| *hits < t)
    })?;
    *hits += 1;
    Some(rule.fault.clone())
}

fn handle(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some((head, early_body)) = read_head(&mut conn)? else {
        return Ok(());
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let fault = pick(shared, &method, &path);
    match &fault {
        Some(Fault::Reset) => return reset(conn),
        Some(Fault::Hang) => return hang(conn, shared),
        Some(Fault::Garbage) => {
            let body = b"{\"name\": \"x\", \"tags\": [\"a\", <<<this is not json";
            return answer(conn, "200 OK", &[], body);
        }
        Some(Fault::TooManyRequests { retry_after }) => {
            let ra = [("Retry-After", retry_after.to_string())];
            let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected 429"}]}"#;
            return answer(conn, "429 Too Many Requests", &ra, body);
        }
        Some(Fault::Status(code)) => {
            let status = format!("{code} Injected");
            let body =
                format!(r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected {code}"}}]}}"#);
            return answer(conn, &status, &[], body.as_bytes());
        }
        None => {
            shared.forwarded.fetch_add(1, Ordering::SeqCst);
        }
        _ => {}
    }
    let mut up = TcpStream::connect(&shared.upstream)?;
    up.write_all(close_connection(&head).as_bytes())?;
    up.write_all(&early_body)?;
    let copier = RequestBody::copy(&conn, &up)?;
    let result = respond(&mut conn, &mut up, fault, &method, shared);
    // The copier holds a handle on the client socket: it must be gone before a reset, which
    // only happens when the last handle closes.
    copier.finish();
    match result? {
        Ending::Close => conn.shutdown(Shutdown::Both),
        Ending::Reset => reset(conn),
    }
}

enum Ending {
    Close,
    Reset,
}

/// Copies the rest of the request body (Content-Length or chunked) to upstream as it comes,
/// until told to stop.
struct RequestBody {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RequestBody {
    fn copy(conn: &TcpStream, up: &TcpStream) -> std::io::Result<RequestBody> {
        let (mut from, mut to) = (conn.try_clone()?, up.try_clone()?);
        from.set_read_timeout(Some(Duration::from_millis(20)))?;
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while !d.load(Ordering::SeqCst) {
                match from.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => return,
                }
            }
        });
        Ok(RequestBody { done, thread })
    }

    fn finish(self) {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Sends the real answer to the client, altered by `fault`.
fn respond(
    conn: &mut TcpStream,
    up: &mut TcpStream,
    fault: Option<Fault>,
    method: &str,
    shared: &Shared,
) -> std::io::Result<Ending> {
    let Some(fault) = fault else {
        std::io::copy(up, conn)?;
        return Ok(Ending::Close);
    };
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    let (resp_head, body) = split_response(&resp);
    let body: &[u8] = if method == "HEAD" { &[] } else { &body };
    match fault {
        Fault::ResetMidBody => {
            conn.write_all(resp_head.as_bytes())?;
            conn.write_all(&body[..body.len() / 2])?;
            conn.flush()?;
            Ok(Ending::Reset)
        }
        Fault::SlowBody { bytes_per_sec } => {
            conn.write_all(resp_head.as_bytes())?;
            let pause = Duration::from_secs(1) / bytes_per_sec.max(1);
            for b in body {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                conn.write_all(&[*b])?;
                std::thread::sleep(pause);
            }
            Ok(Ending::Close)
        }
        _ => {
            // Truncated: the body cut in half, the length header telling the same story.
            let cut = &body[..body.len() / 2];
            conn.write_all(set_content_length(&resp_head, cut.len()).as_bytes())?;
            conn.write_all(cut)?;
            Ok(Ending::Close)
        }
    }
}

/// The request head with `Connection: close` instead of any connection header.
fn close_connection(head: &str) -> String {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// Splits a whole response into its head (with a Content-Length, chunking undone) and body.
fn split_response(resp: &[u8]) -> (String, Vec<u8>) {
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |e| e + 4);
    let head = String::from_utf8_lossy(&resp[..end]).into_owned();
    let raw = resp.get(end..).unwrap_or_default();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    if !chunked {
        return (head, raw.to_vec());
    }
    let body = dechunk(raw);
    let head: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding:"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>();
    let head = head.trim_end().to_string() + "\r\n\r\n";
    (set_content_length(&head, body.len()), body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]);
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(n) = usize::from_str_radix(size, 16) else {
            break;
        };
        let start = eol + 2;
        if n == 0 || start + n > raw.len() {
            break;
        }
        out.extend_from_slice(&raw[start..start + n]);
        raw = raw.get(start + n + 2..).unwrap_or_default();
    }
    out
}

/// The head with its Content-Length set to `len`.
fn set_content_length(head: &str, len: usize) -> String {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {len}\r\n\r\n"));
    out
}

fn answer(
    mut conn: TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(body)?;
    conn.shutdown(Shutdown::Both)
}

/// A TCP reset (`SO_LINGER` 0), not an orderly close.
fn reset(conn: TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO))?;
    drop(conn);
    Ok(())
}

/// Holds the connection open without answering until the peer leaves or the proxy stops.
fn hang(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_millis(100)))?;
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(600) {
        match conn.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
