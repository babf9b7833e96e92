//! A small HTTP fault proxy in front of a real registry, for tests: one request per connection
//! (`Connection: close` is forced upstream), and requests whose path contains a marker get a
//! canned fault instead of being forwarded.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to answer for a request whose path contains the marker.
#[derive(Clone, Debug)]
pub enum Fault {
    /// `200 OK` with a body that is not JSON.
    Garbage,
    /// `500 Internal Server Error`, every time.
    Status500,
    /// Close the connection without any answer.
    Reset,
}

/// A running proxy; it lives as long as the test process.
#[derive(Clone, Debug)]
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Requests answered with a fault, per rule (same order as the rules).
    pub hits: Arc<Vec<AtomicUsize>>,
    /// Requests forwarded to the real registry.
    pub forwarded: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub fn hits(&self, rule: usize) -> usize {
        self.hits[rule].load(Ordering::SeqCst)
    }
}

/// Starts a proxy to `upstream` (`127.0.0.1:PORT`, plain HTTP) on its own thread and runtime.
/// `rules`: (path substring, fault); the first matching rule wins.
pub fn start(upstream: &str, rules: Vec<(String, Fault)>) -> FaultProxy {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let host = std_listener.local_addr().unwrap().to_string();
    let hits: Arc<Vec<AtomicUsize>> = Arc::new(rules.iter().map(|_| AtomicUsize::new(0)).collect());
    let forwarded = Arc::new(AtomicUsize::new(0));
    let proxy = FaultProxy {
        host,
        hits: hits.clone(),
        forwarded: forwarded.clone(),
    };
    let upstream = upstream.to_string();
    let rules = Arc::new(rules);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let (upstream, rules, hits, forwarded) = (
                    upstream.clone(),
                    rules.clone(),
                    hits.clone(),
                    forwarded.clone(),
                );
                tokio::spawn(async move {
                    let _ = handle(conn, &upstream, &rules, &hits, &forwarded).await;
                });
            }
        });
    });
    proxy
}

async fn handle(
    mut client: TcpStream,
    upstream: &str,
    rules: &[(String, Fault)],
    hits: &[AtomicUsize],
    forwarded: &AtomicUsize,
) -> std::io::Result<()> {
    // Read the request head (GET/HEAD only: registries' read API has no request bodies).
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        // A TLS ClientHello (clients try https first): close at once, as a plain-HTTP server
        // would fail it, instead of waiting for a request head that never comes.
        if head.first() == Some(&0x16) || head.len() > 64 * 1024 {
            return Ok(());
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    if let Some((i, (_, fault))) = rules
        .iter()
        .enumerate()
        .find(|(_, (m, _))| path.contains(m.as_str()))
    {
        hits[i].fetch_add(1, Ordering::SeqCst);
        let resp: Vec<u8> = match fault {
            Fault::Garbage => {
                let body = "{\"name\": \"x\", \"tags\": [\"a\", <<<this is not json";
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            Fault::Status500 => {
                let body = "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"injected 500\"}]}";
                format!(
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            Fault::Reset => Vec::new(),
        };
        client.write_all(&resp).await?;
        client.shutdown().await?;
        return Ok(());
    }
    forwarded.fetch_add(1, Ordering::SeqCst);
    // Force one request per connection so every request passes through the rules above.
    let mut lines: Vec<&str> = text.split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let end = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    lines.insert(end, "Connection: close");
    let rewritten = lines.join("\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(rewritten.as_bytes()).await?;
    tokio::io::copy(&mut up, &mut client).await?;
    client.shutdown().await?;
    Ok(())
}
