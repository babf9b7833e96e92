//! Fault injection in front of the real registry (a small TCP/HTTP proxy inside the test), and
//! Link pagination against a protocol-level server (distribution 2.8 does not paginate tags).

use crate::common;

use std::time::{Duration, Instant};

use common::fast_client;
use ferry_registry::{ImageName, RegistryError, RepoAccess};
use ferry_testbed::faults::{Fault, FaultProxy, Rule};
use ferry_testbed::registry::{Auth, registry, unique_repo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy to the registry with one rule.
fn proxy(upstream: &str, rule: Rule) -> FaultProxy {
    let p = FaultProxy::start(upstream).unwrap();
    p.set_rules(vec![rule]);
    p
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
    let proxy = proxy(&env.host, Rule::new("/tags/list", Fault::Garbage));
    let err = fast_client()
        .list_tags(&access_via(&proxy.host, &repo))
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
    assert_eq!(proxy.hits(0), 1, "garbage is not retried");
}

#[tokio::test]
async fn transient_500s_are_retried_then_succeed() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("flaky");
    env.push_image(&repo, "v1");
    let proxy = proxy(
        &env.host,
        Rule::new("/tags/list", Fault::Status(500)).times(2),
    );
    let client = fast_client();
    let tags = client
        .list_tags(&access_via(&proxy.host, &repo))
        .await
        .unwrap();
    assert_eq!(tags, vec!["v1".to_string()]);
    assert_eq!(proxy.hits(0), 2);
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
    let proxy = proxy(&env.host, Rule::new("/manifests/", Fault::Status(500)));
    let client = fast_client();
    let started = Instant::now();
    let err = client
        .head_manifest(&access_via(&proxy.host, &repo), "v1")
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
    assert_eq!(proxy.hits(0), 4, "exactly max_attempts tries");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn retry_after_is_honoured_but_capped() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("ratelimited");
    env.push_image(&repo, "v1");
    let proxy = proxy(
        &env.host,
        Rule::new("/tags/list", Fault::TooManyRequests { retry_after: 30 }).times(1),
    );
    let client = fast_client(); // max_retry_after = 300 ms
    let a = access_via(&proxy.host, &repo);
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
    let proxy = proxy(&env.host, Rule::new("/manifests/", Fault::Reset).times(1));
    let client = fast_client();
    let head = client
        .head_manifest(&access_via(&proxy.host, &repo), "v1")
        .await
        .unwrap();
    assert_eq!(head.digest, digest);
    assert_eq!(proxy.hits(0), 1);
    assert!(client.stats().transport_errors >= 1);
}

#[tokio::test]
async fn a_body_broken_mid_way_is_retried_then_reported() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("midbody");
    let digest = env.push_image(&repo, "v1");
    // Twice: the third try gets the whole body.
    let p = proxy(
        &env.host,
        Rule::new("/manifests/", Fault::ResetMidBody)
            .method("GET")
            .times(2),
    );
    let client = fast_client();
    let a = access_via(&p.host, &repo);
    assert_eq!(client.get_manifest(&a, "v1").await.unwrap().digest, digest);
    assert_eq!(p.hits(0), 2);
    // Always: a Connection error naming the URL and the tries, after exactly max_attempts.
    p.set_rules(vec![Rule::new("/tags/list", Fault::ResetMidBody)]);
    let err = client.list_tags(&a).await.unwrap_err();
    assert!(matches!(err, RegistryError::Connection { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&p.host) && text.contains("after 4 attempts"),
        "{text}"
    );
    assert_eq!(p.hits(0), 4);
}

#[tokio::test]
async fn a_trickling_or_silent_server_times_out_within_the_timeout() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("slow");
    env.push_image(&repo, "v1");
    for fault in [Fault::SlowBody { bytes_per_sec: 1 }, Fault::Hang] {
        let p = proxy(&env.host, Rule::new("/tags/list", fault.clone()));
        let mut a = access_via(&p.host, &repo);
        a.timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = fast_client().list_tags(&a).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, RegistryError::Timeout { .. }),
            "{fault:?}: {err}"
        );
        assert!(err.to_string().contains(&p.host), "{err}");
        // Not retried: one timeout already used the caller's budget.
        assert_eq!(p.hits(0), 1, "{fault:?}");
        assert!(took < Duration::from_secs(6), "{fault:?}: {took:?}");
    }
}

#[tokio::test]
async fn a_truncated_manifest_is_refused_not_hashed() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("cut");
    env.push_image(&repo, "v1");
    let p = proxy(&env.host, Rule::new("/manifests/", Fault::Truncated));
    let err = fast_client()
        .get_manifest(&access_via(&p.host, &repo), "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidResponse { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&p.host), "{err}");
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
