//! Test-only hooks. They are compiled in only with the `test-hooks` cargo feature, which release
//! builds do not enable (the `ferry` crate's tests turn it on through a dev-dependency, see
//! docs/testing.md). Without the feature every hook is an empty function and the environment
//! variables below mean nothing.

/// A shell command run right before each push of a write-back (automation, promotion record,
/// rollback, hold, unhold), with `FERRY_TEST_ATTEMPT` set to the attempt number. Tests use it to
/// hold a push until they release it, or to push a concurrent human commit at the worst moment.
pub const BEFORE_PUSH_ENV: &str = "FERRY_TEST_BEFORE_PUSH";

/// `first-tag`: `ferry promote`/`publish` kill themselves with SIGKILL right after the first tag
/// write, to prove a re-run resumes cleanly.
pub const ABORT_AFTER_ENV: &str = "FERRY_TEST_ABORT_AFTER";

/// Runs the [`BEFORE_PUSH_ENV`] command, if set, and waits for it.
#[cfg(feature = "test-hooks")]
pub(crate) fn before_push(attempt: u32) {
    let Some(cmd) = std::env::var_os(BEFORE_PUSH_ENV) else {
        return;
    };
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("FERRY_TEST_ATTEMPT", attempt.to_string())
        .status();
    if let Err(e) = status {
        tracing::warn!(error = %e, "{BEFORE_PUSH_ENV} hook failed to run");
    }
}

/// Without the `test-hooks` feature: nothing.
#[cfg(not(feature = "test-hooks"))]
pub(crate) fn before_push(_attempt: u32) {}

/// Kills the process (SIGKILL, like `kill -9`) when [`ABORT_AFTER_ENV`] names `point`.
#[cfg(feature = "test-hooks")]
pub(crate) fn abort_after(point: &str) {
    if std::env::var(ABORT_AFTER_ENV).is_ok_and(|v| v == point) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        std::process::abort();
    }
}

/// Without the `test-hooks` feature: nothing.
#[cfg(not(feature = "test-hooks"))]
pub(crate) fn abort_after(_point: &str) {}
