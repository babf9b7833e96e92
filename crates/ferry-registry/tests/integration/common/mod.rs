//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use ferry_registry::{
    ClientOptions, Credentials, ImageName, RegistryClient, RepoAccess, RetryPolicy, TlsMaterial,
};
use ferry_testbed::registry::RegistryEnv;

/// A client whose retries are quick, so fault tests stay fast.
pub fn fast_client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_millis(300),
        },
        ..ClientOptions::default()
    })
}

pub fn access(env: &RegistryEnv, repo: &str) -> RepoAccess {
    let mut a = RepoAccess::new(ImageName::parse(&env.image(repo)).unwrap());
    if let (Some(u), Some(p)) = (&env.user, &env.password) {
        a.credentials = Some(Credentials::new(u.clone(), p.clone()));
    }
    if let Some(ca) = env.ca_pem() {
        a.tls = TlsMaterial::with_ca(ca);
    }
    a.timeout = Duration::from_secs(15);
    a
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ferry_registry::sha256_digest(bytes)
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Tags as `skopeo list-tags` reports them.
pub fn skopeo_tags(env: &RegistryEnv, repo: &str) -> Vec<String> {
    let out = env.skopeo("list-tags", &[&format!("docker://{}", env.image(repo))]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    sorted(
        v["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
    )
}

/// sha256 of `skopeo inspect --raw`, i.e. the manifest digest as skopeo sees it.
pub fn skopeo_digest(env: &RegistryEnv, repo: &str, tag: &str) -> String {
    let raw = env.skopeo(
        "inspect",
        &["--raw", &format!("docker://{}:{tag}", env.image(repo))],
    );
    sha256_hex(raw.as_bytes())
}
