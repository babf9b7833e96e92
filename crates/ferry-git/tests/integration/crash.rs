//! Crash safety of the clone cache: stale locks, half-made clones, a corrupt object store, and a
//! process killed with SIGKILL in the middle of fetch/commit/push.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ferry_git::{CloneCache, GitAuth, PushOutcome, Remote};
use ferry_testbed::git::git_servers;

fn entry_of(cache: &CloneCache, r: &Remote) -> PathBuf {
    cache.entry_dir(r).unwrap()
}

fn assert_usable(
    env: &ferry_testbed::git::GitEnv,
    repo: &str,
    cache: &CloneCache,
    r: &Remote,
    tag: &str,
) {
    // A server-side receive-pack started by the killed child may still finish its ref update
    // after the kill (it is not in the child's process group), so the remote can move once more
    // after our fetch. The cache must converge to the remote tip: poll, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut co = loop {
        let co = cache.checkout(r, "main").unwrap();
        let remote_tip = bare(env, repo, &["rev-parse", "main"]);
        if co.head().unwrap() == remote_tip {
            break co;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cache head {} never converged to remote main {remote_tip}",
            co.head().unwrap()
        );
        drop(co);
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        env.git(co.workdir(), &["status", "--porcelain", "--ignored"])
            .unwrap(),
        "",
        "clean tree"
    );
    std::fs::write(co.workdir().join("after.txt"), format!("{tag}\n")).unwrap();
    let sha = co.commit_all(&spec(tag)).unwrap().unwrap();
    assert_eq!(
        co.push("main", &Default::default()).unwrap(),
        PushOutcome::Pushed { sha }
    );
}

#[test]
fn stale_locks_half_clone_and_corruption_are_repaired() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("repair", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.file(&repo), GitAuth::none());
    drop(cache.checkout(&r, "main").unwrap());
    // 0. Scratch (credential) dirs of dead processes are swept when a cache is opened.
    let stale = tmp.path().join(".tmp/cred-999999999-x");
    std::fs::create_dir_all(&stale).unwrap();
    CloneCache::new(tmp.path()).unwrap();
    assert!(!stale.exists());
    let entry = entry_of(&cache, &r);

    // 1. A killed git left index.lock, HEAD.lock and a ref lock; the holder died (busy marker).
    for l in [
        ".git/index.lock",
        ".git/HEAD.lock",
        ".git/refs/heads/main.lock",
    ] {
        std::fs::write(entry.join("repo").join(l), "").unwrap();
    }
    std::fs::write(entry.join("repo/junk.txt"), "dirty").unwrap();
    std::fs::write(entry.join("busy"), "").unwrap();
    assert_usable(&env, &repo, &cache, &r, "after stale locks");

    // 2. A clone that never finished (no `ready` marker, garbage repo dir).
    std::fs::remove_file(entry.join("ready")).unwrap();
    std::fs::remove_dir_all(entry.join("repo/.git/objects")).unwrap();
    assert_usable(&env, &repo, &cache, &r, "after half clone");

    // 3. Objects lost under a `ready` entry whose holder died: fsck notices, re-clone.
    std::fs::write(entry.join("busy"), "").unwrap();
    for e in std::fs::read_dir(entry.join("repo/.git/objects/pack")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for e in std::fs::read_dir(entry.join("repo/.git/objects")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().len() == 2 {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    assert_usable(&env, &repo, &cache, &r, "after corruption");

    // 4. A revert left half-way (sequencer state) is cleaned up.
    std::fs::write(
        entry.join("repo/.git/REVERT_HEAD"),
        "0000000000000000000000000000000000000000\n",
    )
    .unwrap();
    std::fs::write(entry.join("busy"), "").unwrap();
    assert_usable(&env, &repo, &cache, &r, "after sequencer state");
}

/// Processes whose working directory is inside `dir` (git children that outlived their parent).
fn processes_in(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd"))
            && cwd.starts_with(dir)
        {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // Zombies are dead already (PID 1 reaps late here).
            if !stat.contains(") Z ") {
                v.push(format!("{} {}", e.file_name().to_string_lossy(), stat));
            }
        }
    }
    v
}

const CHILD_ENV: &str = "FERRY_GIT_CRASH_CHILD";

/// The child role: loop fetch/commit/push/deepen forever, reporting progress, until killed.
fn child_loop(spec_env: &str) -> ! {
    let mut parts = spec_env.split('|');
    let (root, url, progress) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let cache = CloneCache::new(root).unwrap();
    let r = remote(url.to_string(), GitAuth::none());
    for i in 0u64.. {
        let mut co = cache.checkout(&r, "main").unwrap();
        // Enough data that the kill often lands inside git (hashing, packing, writing).
        let blob: String = (0..20_000).map(|k| format!("{i}-{k}\n")).collect();
        std::fs::write(co.workdir().join(format!("big-{}.txt", i % 3)), blob).unwrap();
        co.commit_all(&spec(&format!("child {i}"))).unwrap();
        let _ = co.push("main", &Default::default());
        let _ = co.ensure_history(ferry_git::History::Depth(2 + (i as u32 % 5)));
        drop(co);
        std::fs::write(progress, i.to_string()).unwrap();
    }
    unreachable!()
}

#[test]
fn kill_9_mid_operation_then_cache_still_works() {
    if let Ok(s) = std::env::var(CHILD_ENV) {
        child_loop(&s);
    }
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("kill9", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cache");
    let url = env.file(&repo);
    let progress = tmp.path().join("progress");
    let exe = std::env::current_exe().unwrap();
    let mut killed_busy = 0;
    for round in 0..6u64 {
        let _ = std::fs::remove_file(&progress);
        let mut child = Command::new(&exe)
            .args([
                // Its full name in the crate's one integration binary.
                "crash::kill_9_mid_operation_then_cache_still_works",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!("{}|{url}|{}", root.display(), progress.display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait (bounded) until the child completed at least one full iteration.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !progress.exists() {
            assert!(Instant::now() < deadline, "child made no progress");
            assert!(child.try_wait().unwrap().is_none(), "child exited early");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Vary the kill point within the next iteration (randomization, not synchronization).
        std::thread::sleep(Duration::from_millis(7 + round * 23 % 120));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Its git children die with it (PR_SET_PDEATHSIG); poll, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_in(&root);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "orphaned git processes: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let cache = CloneCache::new(&root).unwrap();
        let r = remote(url.clone(), GitAuth::none());
        let entry = entry_of(&cache, &r);
        let locks = Command::new("find")
            .arg(entry.join("repo/.git"))
            .args(["-name", "*.lock"])
            .output()
            .unwrap();
        let busy = entry.join("busy").exists();
        killed_busy += u32::from(busy);
        eprintln!(
            "round {round}: killed while busy={busy}, lock files: {:?}",
            String::from_utf8_lossy(&locks.stdout).trim()
        );
        assert_usable(&env, &repo, &cache, &r, &format!("round {round}"));
    }
    assert!(
        killed_busy > 0,
        "no kill landed while the cache entry was held"
    );
    // Credential/signing scratch of dead processes is swept.
    let scratch: Vec<_> = std::fs::read_dir(root.join(".tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");
    bare(&env, &repo, &["fsck", "--no-dangling"]);
}
