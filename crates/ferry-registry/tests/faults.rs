//! Fault injection in front of the real registry (a small TCP/HTTP proxy inside the test), and
//! Link pagination against a protocol-level server (distribution 2.8 does not paginate tags).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::fast_client;
use ferry_registry::{ImageName, RegistryError, RepoAccess};
use ferry_testbed::registry::{Auth, registry, unique_repo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// 200 with a body that is not JSON.
    Garbage,
    /// 500 for this many matching requests, then pass through.
    Status500(usize),
    /// 429 with `Retry-After: 30` once, then pass through.
    TooMany,
    /// Close the connection without answering, once.
    Reset,
}

struct Proxy {
    addr: String,
    /// Matching (fault-eligible) requests seen.
    hits: Arc<AtomicUsize>,
    /// Matching requests passed to the registry.
    forwarded: Arc<AtomicUsize>,
}

/// Reads one request head plus its Content-Length body. None on EOF or a TLS ClientHello.
async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.first() == Some(&0x16) {
            return None; // TLS handshake: this is plain HTTP only
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < len {
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some((head, body));
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(sock: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = sock.write_all(out.as_bytes()).await;
    let _ = sock.write_all(body).await;
    let _ = sock.shutdown().await;
}

/// A one-request-per-connection proxy to `upstream` that injects `fault` into requests whose
/// path contains `matching`.
async fn start_proxy(upstream: String, matching: &'static str, fault: Fault) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let forwarded = Arc::new(AtomicUsize::new(0));
    let (h, f) = (hits.clone(), forwarded.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (hits, forwarded, upstream) = (h.clone(), f.clone(), upstream.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut sock).await else {
                    return;
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.contains(matching) {
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    match fault {
                        Fault::Garbage => {
                            return respond(&mut sock, "200 OK", &[], b"{\"tags\": [oops").await;
                        }
                        Fault::Status500(k) if n < k => {
                            return respond(&mut sock, "500 Internal Server Error", &[], b"boom")
                                .await;
                        }
                        Fault::TooMany if n == 0 => {
                            let ra = [("Retry-After", "30".to_string())];
                            return respond(&mut sock, "429 Too Many Requests", &ra, b"").await;
                        }
                        Fault::Reset if n == 0 => return, // dropped: connection closed
                        _ => {}
                    }
                    forwarded.fetch_add(1, Ordering::SeqCst);
                }
                // Pass through with Connection: close, then copy the answer back.
                let Ok(mut up) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut new_head = String::new();
                for line in head.lines() {
                    if !line.to_ascii_lowercase().starts_with("connection:") {
                        new_head.push_str(line);
                        new_head.push_str("\r\n");
                    }
                }
                new_head.push_str("Connection: close\r\n\r\n");
                if up.write_all(new_head.as_bytes()).await.is_err()
                    || up.write_all(&body).await.is_err()
                {
                    return;
                }
                let mut answer = Vec::new();
                let _ = up.read_to_end(&mut answer).await;
                let _ = sock.write_all(&answer).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Proxy {
        addr,
        hits,
        forwarded,
    }
}

fn access_via(addr: &str, repo: &str) -> RepoAccess {
    let mut a = RepoAccess::new(ImageName::parse(&format!("{addr}/{repo}")).unwrap());
    a.insecure = true;
    a.timeout = Duration::from_secs(10);
    a
}

#[tokio::test]
async fn garbage_json_is_an_invalid_response() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("garbage");
    env.push_image(&repo, "v1");
    let proxy = start_proxy(env.host.clone(), "/tags/list", Fault::Garbage).await;
    let err = fast_client()
        .list_tags(&access_via(&proxy.addr, &repo))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidResponse { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("/tags/list") && text.contains("JSON"),
        "{text}"
    );
    assert_eq!(
        proxy.hits.load(Ordering::SeqCst),
        1,
        "garbage is not retried"
    );
}

#[tokio::test]
async fn transient_500s_are_retried_then_succeed() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("flaky");
    env.push_image(&repo, "v1");
    let proxy = start_proxy(env.host.clone(), "/tags/list", Fault::Status500(2)).await;
    let client = fast_client();
    let tags = client
        .list_tags(&access_via(&proxy.addr, &repo))
        .await
        .unwrap();
    assert_eq!(tags, vec!["v1".to_string()]);
    assert_eq!(proxy.hits.load(Ordering::SeqCst), 3);
    let stats = client.stats();
    assert_eq!(stats.by_status.get(&500), Some(&2), "{stats:?}");
    assert_eq!(stats.retries, 2, "{stats:?}");
}

#[tokio::test]
async fn a_500_storm_fails_after_bounded_retries() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("storm");
    env.push_image(&repo, "v1");
    let proxy = start_proxy(
        env.host.clone(),
        "/manifests/",
        Fault::Status500(usize::MAX),
    )
    .await;
    let client = fast_client();
    let started = Instant::now();
    let err = client
        .head_manifest(&access_via(&proxy.addr, &repo), "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Server {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        proxy.hits.load(Ordering::SeqCst),
        4,
        "exactly max_attempts tries"
    );
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn retry_after_is_honoured_but_capped() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("ratelimited");
    env.push_image(&repo, "v1");
    let proxy = start_proxy(env.host.clone(), "/tags/list", Fault::TooMany).await;
    let client = fast_client(); // max_retry_after = 300 ms
    let a = access_via(&proxy.addr, &repo);
    client.ping(&a).await.unwrap();
    let started = Instant::now();
    let tags = client.list_tags(&a).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(tags, vec!["v1".to_string()]);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "Retry-After: 30 was capped: {elapsed:?}"
    );
    assert_eq!(client.stats().by_status.get(&429), Some(&1));
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("reset");
    let digest = env.push_image(&repo, "v1");
    let proxy = start_proxy(env.host.clone(), "/manifests/", Fault::Reset).await;
    let client = fast_client();
    let head = client
        .head_manifest(&access_via(&proxy.addr, &repo), "v1")
        .await
        .unwrap();
    assert_eq!(head.digest, digest);
    assert_eq!(proxy.hits.load(Ordering::SeqCst), 2);
    assert!(client.stats().transport_errors >= 1);
}

/// A registry that pages tags/list with Link headers (relative, then absolute URLs).
async fn start_paging_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let me = addr.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let me = me.clone();
            tokio::spawn(async move {
                let Some((head, _)) = read_request(&mut sock).await else {
                    return;
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let json = |tags: &str| format!("{{\"name\":\"pg/app\",\"tags\":{tags}}}");
                let (status, link, body) = match path.as_str() {
                    "/v2/" => ("200 OK", None, "{}".to_string()),
                    "/v2/pg/app/tags/list?n=1000" => (
                        "200 OK",
                        Some("</v2/pg/app/tags/list?n=1000&last=b>; rel=\"next\"".to_string()),
                        json("[\"a\",\"b\"]"),
                    ),
                    "/v2/pg/app/tags/list?n=1000&last=b" => (
                        "200 OK",
                        Some(format!(
                            "<http://{me}/v2/pg/app/tags/list?n=1000&last=d>; rel=\"next\""
                        )),
                        json("[\"c\",\"d\"]"),
                    ),
                    "/v2/pg/app/tags/list?n=1000&last=d" => ("200 OK", None, json("[\"e\"]")),
                    "/v2/pg/empty/tags/list?n=1000" => ("200 OK", None, json("null")),
                    "/v2/pg/loop/tags/list?n=1000" => (
                        "200 OK",
                        Some("</v2/pg/loop/tags/list?n=1000>; rel=\"next\"".to_string()),
                        json("[\"x\"]"),
                    ),
                    _ => (
                        "404 Not Found",
                        None,
                        "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"nope\"}]}"
                            .to_string(),
                    ),
                };
                let mut headers = vec![("Content-Type", "application/json".to_string())];
                if let Some(l) = link {
                    headers.push(("Link", l));
                }
                respond(&mut sock, status, &headers, body.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn link_pagination_and_null_tags() {
    let addr = start_paging_server().await;
    let client = fast_client();
    let tags = client
        .list_tags(&access_via(&addr, "pg/app"))
        .await
        .unwrap();
    assert_eq!(tags, vec!["a", "b", "c", "d", "e"]);
    let empty = client
        .list_tags(&access_via(&addr, "pg/empty"))
        .await
        .unwrap();
    assert!(empty.is_empty());
    let err = client
        .list_tags(&access_via(&addr, "pg/loop"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidResponse { .. }),
        "{err}"
    );
    let err = client
        .list_tags(&access_via(&addr, "pg/missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
}
