//! Against the real docker-registry (distribution 2.8) started by testbed/registry.sh,
//! cross-checked with skopeo.

use crate::common;

use common::{access, fast_client, skopeo_digest, skopeo_tags, sorted};
use ferry_registry::{
    BlobCopy, Credentials, ImageName, MountOutcome, OCI_INDEX, OCI_MANIFEST, RegistryError,
    TlsMaterial,
};
use ferry_testbed::registry::{Auth, registry, unique_repo};

fn layer_and_config(manifest: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    (
        v["layers"][0]["digest"].as_str().unwrap().to_string(),
        v["config"]["digest"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn no_auth_http_tags_digests_and_retag() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let repo = unique_repo("demo");
    let pushed = env.push_image(&repo, "v1");
    env.push_tags(&repo, "v1", 25, "t-");
    let index = env.push_index(&repo, "multi");
    let client = fast_client();
    let a = access(&env, &repo);

    let tags = sorted(client.list_tags(&a).await.unwrap());
    assert_eq!(tags, skopeo_tags(&env, &repo));
    assert_eq!(tags.len(), 1 + 25 + 3);

    let head = client.head_manifest(&a, "v1").await.unwrap();
    assert_eq!(head.digest, pushed);
    assert_eq!(head.digest, skopeo_digest(&env, &repo, "v1"));
    assert_eq!(head.media_type, OCI_MANIFEST);

    let head_index = client.head_manifest(&a, "multi").await.unwrap();
    assert_eq!(head_index.digest, index);
    assert_eq!(head_index.digest, skopeo_digest(&env, &repo, "multi"));
    assert_eq!(head_index.media_type, OCI_INDEX);

    let m = client.get_manifest(&a, "multi").await.unwrap();
    assert_eq!(m.digest, index);
    assert_eq!(m.bytes.len() as u64, head_index.size);
    let by_digest = client.get_manifest(&a, &index).await.unwrap();
    assert_eq!(by_digest.bytes, m.bytes);

    // Retag by PUTting the exact bytes: the digest must not change (skopeo agrees).
    let put = client
        .put_manifest(&a, "promoted", &m.bytes, &m.media_type)
        .await
        .unwrap();
    assert_eq!(put, index);
    assert_eq!(skopeo_digest(&env, &repo, "promoted"), index);

    let missing = client.head_manifest(&a, "nope").await.unwrap_err();
    assert!(
        matches!(missing, RegistryError::NotFound { .. }),
        "{missing}"
    );
    let unknown_repo = access(&env, &unique_repo("absent"));
    let err = client.list_tags(&unknown_repo).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");

    // Stats: every request counted, nothing retried against a healthy registry.
    let stats = client.stats();
    assert!(stats.total >= 8, "{stats:?}");
    assert_eq!(stats.retries, 0, "{stats:?}");
}

#[tokio::test]
async fn mount_and_copy_across_repositories() {
    let Some(env) = registry(Auth::None, false) else {
        return;
    };
    let src_repo = unique_repo("src");
    let dst_repo = unique_repo("dst");
    env.push_image(&src_repo, "v1");
    let index = env.push_index(&src_repo, "multi");
    let client = fast_client();
    let src = access(&env, &src_repo);
    let dst = access(&env, &dst_repo);

    let m = client.get_manifest(&src, "v1").await.unwrap();
    let (layer, _config) = layer_and_config(&m.bytes);
    assert!(!client.blob_exists(&dst, &layer).await.unwrap());
    let outcome = client.mount_blob(&dst, &layer, &src_repo).await.unwrap();
    assert_eq!(outcome, MountOutcome::Mounted);
    assert!(client.blob_exists(&dst, &layer).await.unwrap());

    // A blob the source does not have: the registry opens an upload (202) instead.
    let absent = format!("sha256:{}", "0".repeat(64));
    let outcome = client.mount_blob(&dst, &absent, &src_repo).await.unwrap();
    assert_eq!(outcome, MountOutcome::NotMounted);

    assert_eq!(
        client.copy_blob(&src, &dst, &layer).await.unwrap(),
        BlobCopy::AlreadyPresent
    );

    // A whole index with its children, digest preserved.
    let copied = client
        .copy_manifest_tree(&src, &dst, "multi", "multi")
        .await
        .unwrap();
    assert_eq!(copied, index);
    assert_eq!(skopeo_digest(&env, &dst_repo, "multi"), index);
    // skopeo can pull a child image from the copy, so its blobs arrived.
    env.skopeo(
        "inspect",
        &[
            "--override-arch",
            "arm64",
            &format!("docker://{}:multi", env.image(&dst_repo)),
        ],
    );
}

#[tokio::test]
async fn streamed_upload_between_registries() {
    let (Some(plain), Some(tls)) = (registry(Auth::None, false), registry(Auth::Basic, true))
    else {
        return;
    };
    let src_repo = unique_repo("xsrc");
    let dst_repo = unique_repo("xdst");
    let digest = plain.push_image_with(&src_repo, "v1", "cross-registry payload\n");
    let client = fast_client();
    let src = access(&plain, &src_repo);
    let dst = access(&tls, &dst_repo);
    let m = client.get_manifest(&src, "v1").await.unwrap();
    let (layer, _) = layer_and_config(&m.bytes);
    match client.copy_blob(&src, &dst, &layer).await.unwrap() {
        BlobCopy::Uploaded { bytes } => assert!(bytes > 0),
        other => panic!("expected an upload, got {other:?}"),
    }
    let copied = client
        .copy_manifest_tree(&src, &dst, "v1", "v1")
        .await
        .unwrap();
    assert_eq!(copied, digest);
    assert_eq!(skopeo_digest(&tls, &dst_repo, "v1"), digest);
}

#[tokio::test]
async fn basic_auth_over_tls_with_private_ca() {
    let Some(env) = registry(Auth::Basic, true) else {
        return;
    };
    let repo = unique_repo("basic");
    let pushed = env.push_image(&repo, "v1");
    env.push_tags(&repo, "v1", 5, "b-");
    let client = fast_client();
    let a = access(&env, &repo);
    assert_eq!(
        sorted(client.list_tags(&a).await.unwrap()),
        skopeo_tags(&env, &repo)
    );
    assert_eq!(client.head_manifest(&a, "v1").await.unwrap().digest, pushed);

    // Wrong password: Unauthorized, and the message never shows the password.
    let mut wrong = a.clone();
    let bad_password = "definitely-wrong-pw-1234";
    wrong.credentials = Some(Credentials::new(env.user.clone().unwrap(), bad_password));
    let err = fast_client().list_tags(&wrong).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains(bad_password), "{text}");
    assert!(!text.contains(env.password.as_deref().unwrap()), "{text}");
    assert!(text.contains("secretRef"), "{text}");

    // No credentials at all.
    let mut anon = a.clone();
    anon.credentials = None;
    let err = fast_client().list_tags(&anon).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    // The private CA is required: without it the certificate is not trusted.
    let mut no_ca = a.clone();
    no_ca.tls = TlsMaterial::default();
    let err = fast_client().list_tags(&no_ca).await.unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("certSecretRef ca.crt"), "{err}");
}

#[tokio::test]
async fn token_auth_requests_the_right_scopes() {
    let Some(env) = registry(Auth::Token, true) else {
        return;
    };
    let repo = unique_repo("tok");
    let other = unique_repo("tok2");
    env.push_image(&repo, "v1");
    let client = fast_client();
    let a = access(&env, &repo);
    // Only this client's requests: ocipush asked for tokens too.
    let mark = env.token_requests().len();
    let scopes_for =
        |env: &ferry_testbed::registry::RegistryEnv, needle: &str| -> Vec<Vec<String>> {
            env.token_requests()[mark..]
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .map(|v| {
                    v["scopes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                })
                .filter(|s| s.iter().any(|x| x.contains(needle)))
                .collect()
        };

    let tags = client.list_tags(&a).await.unwrap();
    assert_eq!(tags, vec!["v1".to_string()]);
    assert_eq!(
        scopes_for(&env, &format!("{repo}:")),
        vec![vec![format!("repository:{repo}:pull")]],
        "one pull-scoped token request for the listing"
    );
    // Cached: a second read needs no new token.
    let before = client.stats().token_requests;
    client.head_manifest(&a, "v1").await.unwrap();
    assert_eq!(client.stats().token_requests, before);

    let m = client.get_manifest(&a, "v1").await.unwrap();
    let digest = client
        .put_manifest(&a, "v2", &m.bytes, &m.media_type)
        .await
        .unwrap();
    assert_eq!(digest, m.digest);
    assert!(
        scopes_for(&env, &format!("{repo}:"))
            .contains(&vec![format!("repository:{repo}:pull,push")]),
        "a pull,push token for the write"
    );

    // Cross-repository mount: one token with push on the target and pull on the source.
    let (layer, _) = layer_and_config(&m.bytes);
    let target = access(&env, &other);
    assert_eq!(
        client.mount_blob(&target, &layer, &repo).await.unwrap(),
        MountOutcome::Mounted
    );
    let mut want = vec![
        format!("repository:{other}:pull,push"),
        format!("repository:{repo}:pull"),
    ];
    want.sort();
    assert!(
        scopes_for(&env, &format!("{other}:"))
            .iter()
            .any(|s| sorted(s.clone()) == want),
        "mount token scopes: {:?}",
        scopes_for(&env, &format!("{other}:"))
    );

    // The read-only user may pull but not push.
    let mut reader = a.clone();
    reader.credentials = Some(Credentials::new(
        env.readonly_user.clone().unwrap(),
        env.password.clone().unwrap(),
    ));
    let ro = fast_client();
    assert_eq!(ro.list_tags(&reader).await.unwrap().len(), 2);
    let err = ro
        .put_manifest(&reader, "v3", &m.bytes, &m.media_type)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    // Wrong password: the token service says no.
    let mut wrong = a.clone();
    wrong.credentials = Some(Credentials::new("ferry", "not-the-password-987"));
    let err = fast_client().list_tags(&wrong).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-password-987"));
}

#[tokio::test]
async fn unreachable_port_is_reported_as_such() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut a = ferry_registry::RepoAccess::new(
        ImageName::parse(&format!("127.0.0.1:{port}/demo/app")).unwrap(),
    );
    a.timeout = std::time::Duration::from_secs(5);
    let client = fast_client();
    let err = client.list_tags(&a).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    // Refused connections are not retried.
    assert_eq!(client.stats().retries, 0);
}
