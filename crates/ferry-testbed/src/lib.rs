//! Test support for Ferry: locating the shared conformance corpus and starting the real
//! servers (registry, git) that integration tests run against.
//!
//! Owns: test-only plumbing. Must not: be a dependency of any non-test code.
//!
//! Servers are started through the project's own scripts in `testbed/` (bash, Debian packages
//! only), never mocked. With `CI=true` a missing server or corpus is a test failure, never a skip.

use std::path::PathBuf;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// True when running under CI (`CI=true`): missing prerequisites must fail, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Environment variable that overrides where the Flux conformance corpus lives.
pub const CONFORMANCE_ENV: &str = "FERRY_CONFORMANCE_DIR";

/// Locates the conformance corpus: `$FERRY_CONFORMANCE_DIR`, else `<workspace>/../shared/conformance`.
///
/// Returns `None` (after printing why) when it is absent outside CI; panics with a clear message
/// when it is absent under `CI=true`, so a missing corpus can never pass as a green run.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(CONFORMANCE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/conformance"));
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "Flux conformance corpus not found at {} (set {CONFORMANCE_ENV} to its path)",
        dir.display()
    );
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    None
}

pub mod cluster;
pub mod faults;
pub mod git;
pub mod registry;
