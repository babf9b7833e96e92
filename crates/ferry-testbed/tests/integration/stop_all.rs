//! `registry.sh stop-all` (what `scripts/test.sh` runs when it ends) stops every registry and token
//! issuer of its `TESTBED_DIR`, and says so when one survives.

use std::path::Path;
use std::process::Command;

use ferry_testbed::workspace_root;

fn script(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(workspace_root().join("testbed/registry.sh"))
        .args(args)
        .env("TESTBED_DIR", dir)
        .output()
        .unwrap()
}

fn pid_of(dir: &Path, name: &str, var: &str) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.env"))).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {var}='")))
        .and_then(|v| v.trim_end_matches('\'').parse().ok())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// Kills what the test started if it fails half-way, so a failure leaves nothing running.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for p in self.0.iter().filter(|p| alive(**p)) {
            let _ = Command::new("kill").arg("-9").arg(p.to_string()).status();
        }
    }
}

#[test]
fn stop_all_leaves_no_registry_or_token_issuer_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut pids = KillOnDrop(Vec::new());
    for (name, auth) in [("a", "none"), ("b", "token")] {
        let out = script(dir.path(), &["start", "--auth", auth, "--name", name]);
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!ferry_testbed::in_ci(), "registry.sh start failed: {msg}");
            eprintln!("SKIP: registry.sh start failed: {msg}");
            return;
        }
        pids.0
            .extend(pid_of(dir.path(), name, "TESTBED_REGISTRY_PID"));
        pids.0
            .extend(pid_of(dir.path(), name, "TESTBED_REGISTRY_TOKEN_PID"));
    }
    assert_eq!(pids.0.len(), 3, "two registries and one token issuer");
    assert!(pids.0.iter().all(|p| alive(*p)));

    let out = script(dir.path(), &["stop-all"]);
    assert!(
        out.status.success(),
        "stop-all failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for p in &pids.0 {
        assert!(!alive(*p), "process {p} still running after stop-all");
    }
    assert!(!dir.path().join("a.env").exists() && !dir.path().join("b.env").exists());
    // Nothing left to stop is not an error.
    assert!(script(dir.path(), &["stop-all"]).status.success());
}
