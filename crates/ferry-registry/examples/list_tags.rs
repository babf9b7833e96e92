//! Lists a repository's tags, for the scan-vs-skopeo benchmark.
//!
//! `cargo run --release -p ferry-registry --example list_tags -- URL REPO`
//! URL: `http(s)://host:port` (scheme `http` implies insecure). Optional env:
//! `REGISTRY_CA_FILE` (PEM), `REGISTRY_USERNAME` / `REGISTRY_PASSWORD`.
//! Prints the tag count, elapsed time and request count on stderr, tags on stdout.

use std::time::{Duration, Instant};

use ferry_registry::{Credentials, ImageName, RegistryClient, RepoAccess, TlsMaterial};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(repo)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: list_tags URL REPO");
        return std::process::ExitCode::from(2);
    };
    let (insecure, host) = match url.split_once("://") {
        Some(("http", h)) => (true, h),
        Some((_, h)) => (false, h),
        None => (false, url.as_str()),
    };
    let image = match ImageName::parse(&format!("{}/{repo}", host.trim_end_matches('/'))) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("list_tags: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut access = RepoAccess::new(image);
    access.insecure = insecure;
    access.timeout = Duration::from_secs(60);
    if let Ok(path) = std::env::var("REGISTRY_CA_FILE") {
        match std::fs::read(&path) {
            Ok(pem) => access.tls = TlsMaterial::with_ca(pem),
            Err(e) => {
                eprintln!("list_tags: cannot read {path}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    if let (Ok(u), Ok(p)) = (
        std::env::var("REGISTRY_USERNAME"),
        std::env::var("REGISTRY_PASSWORD"),
    ) {
        access.credentials = Some(Credentials::new(u, p));
    }
    let client = RegistryClient::default();
    let start = Instant::now();
    match client.list_tags(&access).await {
        Ok(tags) => {
            let elapsed = start.elapsed();
            let mut out = String::new();
            for t in &tags {
                out.push_str(t);
                out.push('\n');
            }
            print!("{out}");
            eprintln!(
                "list_tags: {} tags in {:.3}s, {} requests",
                tags.len(),
                elapsed.as_secs_f64(),
                client.stats().total
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("list_tags: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
