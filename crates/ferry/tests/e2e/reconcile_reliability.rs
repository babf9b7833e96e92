//! Reliability of `ferry reconcile` (issue 3 §4), against the real registry and git servers:
//! - two reconcile processes plus a human pushing to the same branch, round after round, while
//!   new images are published: no human commit is lost and the files end on the newest tags;
//! - `kill -9` during a reconcile, several times: every rerun converges and the clone cache is
//!   never left broken.
//!
//! The race is deterministic (issue 14): each reconciler stops right before each push (the
//! engine's before-push test hook, built with the `test-hooks` feature) until the test releases
//! that attempt, so the test places the human's push between the reconcilers' fetch and push.
//! Three interleavings rotate, the same ones every run.
//!
//! Rounds default to 50 (`FERRY_RELIABILITY_ROUNDS` overrides; at least 20 are always run).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

fn rounds() -> usize {
    std::env::var("FERRY_RELIABILITY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .max(20)
}

/// A develop tag of round `i`, newer than every earlier one (numerical on the timestamp).
fn develop_tag(i: usize) -> String {
    format!(
        "develop-v0.1.{i}-{:07x}-{}",
        0xabc000 + i,
        1_800_000_000 + i
    )
}

/// The before-push hook: announce attempt N (`at-N`), then wait until the test creates `go-N`.
/// It gives up when ferry is gone (a failed test kills it), so nothing is left running.
const GATE: &str = r#"touch "$FERRY_GATE/at-$FERRY_TEST_ATTEMPT"; while [ ! -e "$FERRY_GATE/go-$FERRY_TEST_ATTEMPT" ] && kill -0 $PPID 2>/dev/null; do sleep 0.02; done"#;

/// One `ferry reconcile` process held at its pushes.
struct Gated {
    name: &'static str,
    child: Option<Child>,
    gate: PathBuf,
}

impl Drop for Gated {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Gated {
    fn start(seed: &Seed, name: &'static str, gate: PathBuf) -> Gated {
        std::fs::create_dir_all(&gate).unwrap();
        // Each reconciler has its own clone cache and state, like two machines.
        let mut args: Vec<String> = vec!["reconcile".into()];
        args.extend(seed.flags());
        let i = args.iter().position(|a| a == "--cache-dir").unwrap();
        args[i + 1] = seed.ws.join(&format!("cache-{name}")).display().to_string();
        args.extend([
            "--state".into(),
            seed.ws
                .join(&format!("state-{name}.db"))
                .display()
                .to_string(),
        ]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = command(&argv)
            .env("FERRY_TEST_BEFORE_PUSH", GATE)
            .env("FERRY_GATE", &gate)
            .spawn()
            .unwrap();
        Gated {
            name,
            child: Some(child),
            gate,
        }
    }

    /// Waits until the process stands right before push attempt `n`.
    fn wait_at(&mut self, n: u32, round: usize) {
        let at = self.gate.join(format!("at-{n}"));
        let reached = poll(Duration::from_secs(120), || {
            if at.exists() {
                return Some(true);
            }
            let child = self.child.as_mut().unwrap();
            child.try_wait().unwrap().map(|_| false)
        });
        if reached != Some(true) {
            let run = self.finish();
            panic!(
                "round {round}: {} never reached push attempt {n} (exit {:?}):\n{}\n{}",
                self.name, run.code, run.stdout, run.stderr
            );
        }
    }

    fn release(&self, n: u32) {
        std::fs::write(self.gate.join(format!("go-{n}")), "").unwrap();
    }

    fn reached(&self, n: u32) -> bool {
        self.gate.join(format!("at-{n}")).exists()
    }

    fn finish(&mut self) -> Run {
        let child = self.child.take().expect("finished once");
        wait_with_timeout(child, RUN_TIMEOUT, vec![self.name.into()])
    }
}

/// A human commit: a new file on even rounds, the replica count of the very Deployment the
/// automation edits on odd rounds (a different line of the same file). Committed, not pushed.
fn human_commit(h: &Path, i: usize) {
    git(h, &["pull", "-q", "--rebase", "origin", "main"]);
    if i.is_multiple_of(2) {
        std::fs::create_dir_all(h.join("notes")).unwrap();
        std::fs::write(
            h.join(format!("notes/human-{i}.txt")),
            format!("human note {i}\n"),
        )
        .unwrap();
    } else {
        let p = h.join("flux/apps/backend/develop/deployment.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("replicas:"))
            .unwrap()
            .to_string();
        let indent = &line[..line.len() - line.trim_start().len()];
        std::fs::write(
            &p,
            text.replacen(&line, &format!("{indent}replicas: {}", i + 1), 1),
        )
        .unwrap();
    }
    git(h, &["add", "-A"]);
    git(h, &["commit", "-q", "-m", &format!("human commit {i}")]);
}

/// Pushes the human's commit; `rebase_first` when the test knows the remote moved.
fn human_push(h: &Path, rebase_first: bool) {
    if rebase_first {
        git(h, &["pull", "-q", "--rebase", "origin", "main"]);
    }
    git(h, &["push", "-q", "origin", "HEAD:main"]);
}

/// One round: both reconcilers fetch and stop before their push; then, by `i % 3`,
/// 0: the human pushes, A pushes (rejected, recomputes, pushes), then B (rejected, nothing left);
/// 1: the same with B first; 2: A pushes first, then the human, then B.
fn race_round(seed: &Seed, h: &Path, i: usize) {
    let gates = seed.ws.join(&format!("gates/{i}"));
    let mut a = Gated::start(seed, "A", gates.join("A"));
    let mut b = Gated::start(seed, "B", gates.join("B"));
    a.wait_at(1, i);
    b.wait_at(1, i);
    let (first, second) = if i % 3 == 1 {
        (&mut b, &mut a)
    } else {
        (&mut a, &mut b)
    };
    let human_between = i % 3 != 2;
    if human_between {
        human_push(h, false);
        first.release(1);
        first.wait_at(2, i);
        first.release(2);
    } else {
        first.release(1);
    }
    let run = first.finish();
    assert_eq!(
        run.code,
        Some(3),
        "round {i}: {}\n{}\n{}",
        first.name,
        run.stdout,
        run.stderr
    );
    if !human_between {
        human_push(h, true);
    }
    // The second's view is stale: its push is rejected and, on the new tip, nothing is left.
    second.release(1);
    second.release(2);
    let run = second.finish();
    assert_eq!(
        run.code,
        Some(0),
        "round {i}: {}\n{}\n{}",
        second.name,
        run.stdout,
        run.stderr
    );
    assert!(
        !second.reached(2),
        "round {i}: {} pushed twice",
        second.name
    );
}

#[test]
fn two_reconcilers_and_a_human_lose_nothing() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(genv) = git_servers() else { return };
    let seed = Seed::new(&reg, &genv, "rel-race", |g, r| g.file(r), None);
    let n = rounds();
    // The seed's first changes (develop and staging of both apps) land before the race, so each
    // round has exactly one change to race for: backend's develop tag.
    assert_eq!(seed.reconcile(&[]).code, Some(3));
    let human = clone(&genv, &seed.repo);
    let h = human.path();
    let org = seed.image_registry.split_once('/').unwrap().1.to_string();
    let start = Instant::now();
    for i in 0..n {
        push(&reg, &format!("{org}/backend"), &develop_tag(i));
        human_commit(h, i);
        race_round(&seed, h, i);
        let dep = remote_file(
            &genv,
            &seed.repo,
            "flux/apps/backend/develop/deployment.yaml",
        );
        assert!(dep.contains(&develop_tag(i)), "round {i}: {dep}");
    }
    eprintln!("{n} rounds in {:.1?}", start.elapsed());

    // One more run has nothing to do.
    assert_eq!(seed.reconcile(&[]).code, Some(0));

    // Every human commit is in the remote history, exactly once.
    let subjects = remote_log(&genv, &seed.repo, "%s");
    for i in 0..n {
        let c = subjects
            .lines()
            .filter(|s| *s == format!("human commit {i}"))
            .count();
        assert_eq!(c, 1, "human commit {i} appears {c} times");
    }
    for i in (0..n).step_by(2) {
        assert_eq!(
            remote_file(&genv, &seed.repo, &format!("notes/human-{i}.txt")),
            format!("human note {i}")
        );
    }
    // The files hold the newest tag and the last human value, side by side.
    let dep = remote_file(
        &genv,
        &seed.repo,
        "flux/apps/backend/develop/deployment.yaml",
    );
    let newest = develop_tag(n - 1);
    assert!(
        dep.contains(&format!(
            "backend:{newest} # {{\"$imagepolicy\": \"develop:backend\"}}"
        )),
        "{dep}"
    );
    let last_odd = if (n - 1) % 2 == 1 { n } else { n - 1 };
    assert!(dep.contains(&format!("replicas: {last_odd}")), "{dep}");
    // Frontend got its develop and staging commits too.
    let fe = remote_file(
        &genv,
        &seed.repo,
        "flux/apps/frontend/overlays/develop/kustomization.yaml",
    );
    assert!(fe.contains(&format!("newTag: {NEW_DEVELOP}")), "{fe}");
    // Ferry's commits only ever moved the develop tag forward, one commit per round.
    let changes = remote_log(&genv, &seed.repo, "%(trailers:key=Ferry-Change,valueonly)");
    let mut seen: Vec<usize> = changes
        .lines()
        .filter(|l| l.contains("policy=develop/backend"))
        .filter_map(|l| l.rsplit("new=").next())
        .filter_map(|v| v.rsplit('-').next())
        .filter_map(|ts| ts.parse::<usize>().ok())
        .collect();
    seen.reverse(); // oldest first
    assert_eq!(
        seen.len(),
        n + 1,
        "one develop commit per round plus the first: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "develop tag went backwards: {seen:?}"
    );
}

/// Every git repository under the clone cache passes `git fsck`.
fn assert_cache_healthy(cache: &std::path::Path) {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git")
                || p.join("HEAD").is_file() && p.join("objects").is_dir()
            {
                out.push(p);
            } else if p.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut repos = Vec::new();
    walk(cache, &mut repos);
    for r in repos {
        let out = git_cmd(
            std::path::Path::new("/"),
            &["--git-dir", r.to_str().unwrap(), "fsck", "--no-progress"],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "clone cache {} is broken: {}",
            r.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn kill_9_during_reconcile_then_rerun_converges() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(genv) = git_servers() else { return };
    // http transport: the slowest one, so the kill lands inside git more often.
    let seed = Seed::new(&reg, &genv, "rel-kill", |g, r| g.http(r), Some("git-cred"));
    seed.ws.secret(
        "flux-system",
        "git-cred",
        &[
            ("username", genv.user.as_bytes()),
            ("password", genv.password.as_bytes()),
        ],
    );
    let org_path = seed.image_registry.split_once('/').unwrap().1.to_string();
    // How long a whole run takes here (it pushes the seed's first changes), so the kills walk
    // through a run whatever the machine's speed.
    let t0 = Instant::now();
    assert_eq!(seed.reconcile(&[]).code, Some(3));
    let whole = t0.elapsed();
    let mut killed = 0;
    for k in 0..8 {
        push(&reg, &format!("{org_path}/backend"), &develop_tag(k));
        let flags = seed.flags();
        let state = seed.ws.state_str();
        let mut args: Vec<&str> = vec!["reconcile"];
        args.extend(flags.iter().map(String::as_str));
        args.extend(["--state", &state]);
        let mut child = command(&args).spawn().unwrap();
        // The fault: SIGKILL after a delay that walks through the run (load, scan, git).
        let delay = whole * (k as u32 + 1) / 10;
        let exited = poll(delay, || child.try_wait().unwrap());
        if exited.is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait();
        assert_cache_healthy(&seed.ws.cache());
        // The rerun converges: the newest tag lands, and a further run has nothing to do.
        let rerun = seed.reconcile(&[]);
        assert!(
            matches!(rerun.code, Some(0) | Some(3)),
            "rerun after kill {k} failed:\n{}\n{}",
            rerun.stdout,
            rerun.stderr
        );
        seed.reconcile(&[]).expect_code(0);
        let dep = remote_file(
            &genv,
            &seed.repo,
            "flux/apps/backend/develop/deployment.yaml",
        );
        assert!(dep.contains(&develop_tag(k)), "after kill {k}: {dep}");
        assert_cache_healthy(&seed.ws.cache());
    }
    assert!(killed >= 4, "only {killed} of 8 runs were killed mid-way");
    // No stale lock or half-written state is left behind: get works.
    seed.ws
        .ferry(&["get", "images", "all", "-A"])
        .expect_code(0);
}
