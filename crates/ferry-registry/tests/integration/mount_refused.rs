//! A cross-repository blob mount that the registry refuses (202), against the real
//! docker-registry (distribution 2.8): the client cancels the upload session the registry opened,
//! falls back to a streamed copy, and the manifest digest does not change.
//!
//! Distribution answers a mount with 202 when the `from` repository does not hold the blob. It
//! checks the same per-repository link when serving a GET, so a client that mounts from the
//! repository it reads from cannot provoke the refusal on its own. The test therefore puts a
//! small forwarding proxy in front of the registry that rewrites only the `from=` parameter of
//! mount requests to a repository holding nothing. Every answer, the 202 included, comes from the
//! real registry; nothing is canned. Results are checked directly against the registry (skopeo,
//! HEAD), not through the proxy.

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::{access, fast_client, skopeo_digest};
use ferry_registry::{BlobCopy, ImageName, RepoAccess};
use ferry_testbed::registry::{Auth, RegistryEnv, registry, unique_repo};

/// Forwards plain HTTP to the registry, one request per connection, rewriting the `from=` of
/// mount requests to `decoy`. Records the registry's status for each rewritten mount.
struct MountRewriter {
    host: String,
    mount_statuses: Arc<Mutex<Vec<u16>>>,
}

impl MountRewriter {
    fn start(upstream: &str, decoy: &str) -> MountRewriter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let mount_statuses = Arc::new(Mutex::new(Vec::new()));
        let statuses = mount_statuses.clone();
        let upstream = upstream.to_string();
        let decoy = decoy.replace('/', "%2F");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (upstream, decoy, statuses) =
                    (upstream.clone(), decoy.clone(), statuses.clone());
                std::thread::spawn(move || {
                    let _ = forward(conn, &upstream, &decoy, &statuses);
                });
            }
        });
        MountRewriter {
            host,
            mount_statuses,
        }
    }

    fn statuses(&self) -> Vec<u16> {
        self.mount_statuses.lock().unwrap().clone()
    }
}

fn forward(
    mut client: TcpStream,
    upstream: &str,
    decoy: &str,
    statuses: &Mutex<Vec<u16>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        // A TLS ClientHello (the client tries https first): fail it like a plain-HTTP server.
        if head.first() == Some(&0x16) || head.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let body_start = head[end..].to_vec();
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines: Vec<String> = text.split("\r\n").map(String::from).collect();
    let mut rewritten = false;
    let mut parts: Vec<String> = lines[0].split(' ').map(String::from).collect();
    if parts.len() == 3 && parts[1].contains("mount=") {
        if let Some((path, query)) = parts[1].split_once('?') {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| {
                    if kv.starts_with("from=") {
                        rewritten = true;
                        format!("from={decoy}")
                    } else {
                        kv.to_string()
                    }
                })
                .collect();
            parts[1] = format!("{path}?{}", query.join("&"));
        }
        lines[0] = parts.join(" ");
    }
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let blank = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    lines.insert(blank, "Connection: close".to_string());
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(lines.join("\r\n").as_bytes())?;
    up.write_all(&body_start)?;
    // The rest of the request body (streamed blob uploads), while the answer comes back.
    let (mut from_client, mut to_up) = (client.try_clone()?, up.try_clone()?);
    let pump = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_up);
    });
    let n = up.read(&mut buf)?;
    if rewritten {
        let status = String::from_utf8_lossy(&buf[..n])
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        statuses.lock().unwrap().push(status);
    }
    client.write_all(&buf[..n])?;
    std::io::copy(&mut up, &mut client)?;
    // Wakes the pump's blocked read so it ends.
    let _ = client.shutdown(Shutdown::Both);
    let _ = pump.join();
    Ok(())
}

fn via(proxy: &MountRewriter, repo: &str) -> RepoAccess {
    let mut a = RepoAccess::new(ImageName::parse(&format!("{}/{repo}", proxy.host)).unwrap());
    a.timeout = std::time::Duration::from_secs(15);
    a
}

fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut out = vec![v["config"]["digest"].as_str().unwrap().to_string()];
    for l in v["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_string());
    }
    out
}

fn setup() -> Option<(RegistryEnv, MountRewriter, String, String)> {
    let env = registry(Auth::None, false)?;
    let src = unique_repo("mount-refused-src");
    let dst = unique_repo("mount-refused-dst");
    // Never pushed to: distribution finds no blob there and refuses every mount from it.
    let decoy = unique_repo("mount-refused-empty");
    let proxy = MountRewriter::start(&env.host, &decoy);
    Some((env, proxy, src, dst))
}

#[tokio::test]
async fn refused_mount_falls_back_to_a_copy_and_keeps_the_digest() {
    let Some((env, proxy, src_repo, dst_repo)) = setup() else {
        return;
    };
    let digest = env.push_image_with(&src_repo, "v1", "mount refused, single manifest");
    let client = fast_client();
    let (src, dst) = (via(&proxy, &src_repo), via(&proxy, &dst_repo));
    let direct_dst = access(&env, &dst_repo);

    let m = client.get_manifest(&src, "v1").await.unwrap();
    assert_eq!(m.digest, digest);
    let blobs = blobs_of(&m.bytes);
    let (config, layer) = (&blobs[0], &blobs[1]);

    // One blob: the registry refuses the mount (202), the client uploads it instead.
    let outcome = client.copy_blob(&src, &dst, layer).await.unwrap();
    assert!(
        matches!(outcome, BlobCopy::Uploaded { bytes } if bytes > 0),
        "{outcome:?}"
    );
    assert_eq!(
        proxy.statuses(),
        vec![202],
        "the registry refused the mount"
    );
    assert!(client.blob_exists(&direct_dst, layer).await.unwrap());
    // The upload session opened by the refused mount was cancelled (DELETE → 204).
    let stats = client.stats();
    assert!(
        stats.by_status.get(&204).copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );

    // The whole manifest: the layer is already there, the config goes the same way.
    let copied = client
        .copy_manifest_tree(&src, &dst, "v1", "promoted")
        .await
        .unwrap();
    assert_eq!(copied, digest);
    assert_eq!(proxy.statuses(), vec![202, 202]);
    assert!(client.blob_exists(&direct_dst, config).await.unwrap());
    assert_eq!(skopeo_digest(&env, &dst_repo, "promoted"), digest);
    // A full inspect reads the config blob from the target: the copy is usable.
    env.skopeo(
        "inspect",
        &[&format!("docker://{}:promoted", env.image(&dst_repo))],
    );
}

#[tokio::test]
async fn refused_mounts_of_an_index_copy_every_child_and_keep_the_index_digest() {
    let Some((env, proxy, src_repo, dst_repo)) = setup() else {
        return;
    };
    let digest = env.push_index(&src_repo, "multi");
    let client = fast_client();
    let (src, dst) = (via(&proxy, &src_repo), via(&proxy, &dst_repo));
    let direct_dst = access(&env, &dst_repo);

    let copied = client
        .copy_manifest_tree(&src, &dst, "multi", "promoted")
        .await
        .unwrap();
    assert_eq!(copied, digest);
    assert_eq!(skopeo_digest(&env, &dst_repo, "promoted"), digest);

    let index = client.get_manifest(&src, "multi").await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    let children = v["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    let mut blobs = std::collections::BTreeSet::new();
    for c in children {
        let d = c["digest"].as_str().unwrap();
        let child = client.get_manifest(&direct_dst, d).await.unwrap();
        assert_eq!(child.digest, d, "child present in the target by digest");
        for b in blobs_of(&child.bytes) {
            assert!(client.blob_exists(&direct_dst, &b).await.unwrap(), "{b}");
            blobs.insert(b);
        }
    }
    // Every distinct blob was offered as a mount, refused, and uploaded.
    let statuses = proxy.statuses();
    assert_eq!(statuses.len(), blobs.len(), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    env.skopeo(
        "inspect",
        &[
            "--override-arch",
            "arm64",
            &format!("docker://{}:promoted", env.image(&dst_repo)),
        ],
    );
}
