//! Open-loop load on `ferry serve`'s `/hooks/registry` (scripts/bench-hooks.sh).
//!
//! Sends requests at a fixed rate for a fixed time, each one at its scheduled instant whatever
//! the server's speed (latency is measured from that instant, so a slow server cannot hide its
//! queue). The mix, by request number modulo 20:
//!   0..=13 valid signed events naming the benchmarked repository (202),
//!   14..=15 valid signed events naming a repository no object names (202),
//!   16..=17 a bad signature (401),
//!   18 an oversized body, 2 MiB (413),
//!   19 a signed body that is not JSON (400).
//!
//!   cargo run --release -p ferry-testbed --example hook_load -- \
//!     URL SECRET_FILE REPOSITORY [RATE] [SECONDS]
//!
//! Prints one line per class: count, status codes, p50/p99/max latency; exits 1 when any
//! request got a status other than its class's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Valid,
    Unknown,
    BadSignature,
    Oversized,
    Malformed,
}

impl Class {
    fn of(i: u64) -> Class {
        match i % 20 {
            0..=13 => Class::Valid,
            14 | 15 => Class::Unknown,
            16 | 17 => Class::BadSignature,
            18 => Class::Oversized,
            _ => Class::Malformed,
        }
    }
    fn expected(self) -> u16 {
        match self {
            Class::Valid | Class::Unknown => 202,
            Class::BadSignature => 401,
            Class::Oversized => 413,
            Class::Malformed => 400,
        }
    }
}

struct Target {
    addr: String,
    path: String,
    secret: Vec<u8>,
    repository: String,
    /// Idle keep-alive connections.
    pool: Mutex<Vec<TcpStream>>,
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn envelope(host_repo: &str, i: u64) -> Vec<u8> {
    let (host, repo) = host_repo.split_once('/').unwrap_or(("", host_repo));
    format!(
        r#"{{"events":[{{"action":"push","target":{{"repository":"{repo}","tag":"load-{i}","mediaType":"application/vnd.oci.image.manifest.v1+json"}},"request":{{"host":"{host}"}}}}]}}"#
    )
    .into_bytes()
}

/// The request bytes and whether the connection must not be reused after it.
fn request(t: &Target, class: Class, i: u64) -> (Vec<u8>, bool) {
    let (body, signature, close) = match class {
        Class::Valid => {
            let b = envelope(&t.repository, i);
            let s = sign(&t.secret, &b);
            (b, s, false)
        }
        Class::Unknown => {
            let b = envelope("127.0.0.1:1/nobody/names-this", i);
            let s = sign(&t.secret, &b);
            (b, s, false)
        }
        Class::BadSignature => {
            let b = envelope(&t.repository, i);
            (b, format!("sha256={}", "0".repeat(64)), false)
        }
        Class::Oversized => (vec![b' '; 2 << 20], String::new(), true),
        Class::Malformed => {
            let b = b"{\"events\": [this is not json".to_vec();
            let s = sign(&t.secret, &b);
            (b, s, false)
        }
    };
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        t.path,
        t.addr,
        body.len()
    );
    if !signature.is_empty() {
        out.push_str(&format!("X-Ferry-Signature: {signature}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    (bytes, close)
}

/// Reads one response; returns its status and whether the connection can be reused.
async fn read_response(conn: &mut TcpStream) -> std::io::Result<(u16, bool)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(e) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break e + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok((status, !head.contains("connection: close")))
}

/// One request on a pooled (or new) connection; the status, 0 on a transport error.
async fn send(t: Arc<Target>, class: Class, i: u64) -> u16 {
    let (bytes, close) = request(&t, class, i);
    let pooled = if close {
        None
    } else {
        t.pool.lock().unwrap_or_else(|p| p.into_inner()).pop()
    };
    let mut conn = match pooled {
        Some(c) => c,
        None => match TcpStream::connect(&t.addr).await {
            Ok(c) => c,
            Err(_) => return 0,
        },
    };
    let _ = conn.set_nodelay(true);
    if close {
        // The server may answer 413 before reading the body: write and read side by side.
        let (mut r, mut w) = conn.into_split();
        let writer = tokio::spawn(async move {
            let _ = w.write_all(&bytes).await;
        });
        let mut head = [0u8; 64];
        let status = match r.read(&mut head).await {
            Ok(n) => String::from_utf8_lossy(&head[..n])
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            Err(_) => 0,
        };
        writer.abort();
        return status;
    }
    if conn.write_all(&bytes).await.is_err() {
        return 0;
    }
    match read_response(&mut conn).await {
        Ok((status, reuse)) => {
            if reuse {
                t.pool.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            }
            status
        }
        Err(_) => 0,
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: hook_load URL SECRET_FILE REPOSITORY [RATE] [SECONDS]");
        return std::process::ExitCode::from(2);
    }
    let url = args[0].trim_start_matches("http://");
    let (addr, path) = url.split_once('/').unwrap_or((url, ""));
    let secret = std::fs::read_to_string(&args[1]).unwrap_or_default();
    let rate: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60);
    let target = Arc::new(Target {
        addr: addr.to_string(),
        path: format!("/{path}"),
        secret: secret.trim().as_bytes().to_vec(),
        repository: args[2].clone(),
        pool: Mutex::new(Vec::new()),
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hook_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let results = rt.block_on(run(target, rate, seconds));
    report(&results)
}

async fn run(target: Arc<Target>, rate: u64, seconds: u64) -> Vec<(Class, u16, u64)> {
    let total = rate * seconds;
    let start = tokio::time::Instant::now();
    let out = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(at).await;
        let (t, out) = (target.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let class = Class::of(i);
            let status = tokio::time::timeout(Duration::from_secs(10), send(t, class, i))
                .await
                .unwrap_or(0);
            let micros = Instant::now()
                .duration_since(at.into_std())
                .as_micros()
                .try_into()
                .unwrap_or(u64::MAX);
            out.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((class, status, micros));
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let achieved = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "sent {total} requests in {:.1}s ({achieved:.0}/s offered {rate}/s)",
        start.elapsed().as_secs_f64()
    );
    std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()))
}

fn report(results: &[(Class, u16, u64)]) -> std::process::ExitCode {
    let mut by_class: BTreeMap<Class, (BTreeMap<u16, u64>, Vec<u64>)> = BTreeMap::new();
    let mut all = Vec::with_capacity(results.len());
    let mut wrong = 0u64;
    for &(class, status, micros) in results {
        let e = by_class.entry(class).or_default();
        *e.0.entry(status).or_default() += 1;
        e.1.push(micros);
        all.push(micros);
        if status != class.expected() {
            wrong += 1;
        }
    }
    for (class, (statuses, mut lat)) in by_class {
        lat.sort_unstable();
        println!(
            "{class:?}: n={} statuses={statuses:?} p50={:.2}ms p99={:.2}ms max={:.2}ms",
            lat.len(),
            percentile(&lat, 0.5) as f64 / 1000.0,
            percentile(&lat, 0.99) as f64 / 1000.0,
            lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        );
    }
    all.sort_unstable();
    println!(
        "all: n={} p50={:.2}ms p99={:.2}ms max={:.2}ms wrong_status={wrong}",
        all.len(),
        percentile(&all, 0.5) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    if wrong == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
