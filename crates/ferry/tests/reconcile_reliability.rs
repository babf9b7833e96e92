//! Reliability of `ferry reconcile` (issue 3 §4), against the real registry and git servers:
//! - two reconcile processes plus a human pushing to the same branch, round after round, while
//!   new images are published: no human commit is lost and the files end on the newest tags;
//! - `kill -9` during a reconcile, several times: every rerun converges and the clone cache is
//!   never left broken.
//!
//! Rounds default to 50 (`FERRY_RELIABILITY_ROUNDS` overrides; at least 20 are always run).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

/// (reconciler, exit code) of one run.
type RunCode = (usize, Option<i32>);

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

#[test]
fn two_reconcilers_and_a_human_lose_nothing() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(genv) = git_servers() else { return };
    let seed = Arc::new(Seed::new(&reg, &genv, "rel-race", |g, r| g.file(r), None));
    let n = rounds();
    let round = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Per reconciler: the round its last finished run started in (+1, 0 = none yet).
    let done: Arc<Vec<AtomicUsize>> = Arc::new(vec![AtomicUsize::new(0), AtomicUsize::new(0)]);
    let codes: Arc<std::sync::Mutex<Vec<RunCode>>> = Arc::default();

    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (seed, round, stop, done, codes) = (
                seed.clone(),
                round.clone(),
                stop.clone(),
                done.clone(),
                codes.clone(),
            );
            std::thread::spawn(move || {
                // Each reconciler has its own clone cache and state, like two machines.
                let cache = seed.ws.join(&format!("cache-{w}"));
                let state = seed.ws.join(&format!("state-{w}.db"));
                while !stop.load(Ordering::SeqCst) {
                    let r = round.load(Ordering::SeqCst);
                    let mut args: Vec<String> = vec!["reconcile".into()];
                    args.extend(seed.flags());
                    let i = args.iter().position(|a| a == "--cache-dir").unwrap();
                    args[i + 1] = cache.to_string_lossy().into_owned();
                    args.extend(["--state".into(), state.to_string_lossy().into_owned()]);
                    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                    let run = ferry(&argv);
                    assert!(
                        matches!(run.code, Some(0) | Some(3)),
                        "reconciler {w} failed in round {r}:\n{}\n{}",
                        run.stdout,
                        run.stderr
                    );
                    codes.lock().unwrap().push((w, run.code));
                    done[w].store(r + 1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let human = clone(&genv, &seed.repo);
    let h = human.path();
    let start = Instant::now();
    for i in 0..n {
        round.store(i, Ordering::SeqCst);
        push(
            &reg,
            &format!("{}/backend", seed.image_registry.split_once('/').unwrap().1),
            &develop_tag(i),
        );
        // A human commit: a new file on even rounds, the replica count of the very Deployment the
        // automation edits on odd rounds (a different line of the same file).
        git(h, &["pull", "-q", "--rebase", "origin", "main"]);
        if i % 2 == 0 {
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
        let pushed = poll(Duration::from_secs(60), || {
            if git_cmd(h, &["push", "-q", "origin", "HEAD:main"])
                .output()
                .unwrap()
                .status
                .success()
            {
                return Some(());
            }
            git(h, &["pull", "-q", "--rebase", "origin", "main"]);
            None
        });
        assert!(pushed.is_some(), "human could not push in round {i}");
        // Both reconcilers finish a run that started in this round before the next round.
        let synced = poll(Duration::from_secs(300), || {
            done.iter()
                .all(|d| d.load(Ordering::SeqCst) > i)
                .then_some(())
        });
        assert!(synced.is_some(), "reconcilers stalled in round {i}");
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    eprintln!("{n} rounds in {:.1?}", start.elapsed());

    // One more run converges (nothing to do, or the last tag).
    let last = seed.reconcile(&[]);
    assert!(matches!(last.code, Some(0) | Some(3)), "{}", last.stderr);
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
    // Ferry's commits only ever moved the develop tag forward.
    let changes = remote_log(&genv, &seed.repo, "%(trailers:key=Ferry-Change,valueonly)");
    let mut seen: Vec<usize> = changes
        .lines()
        .filter(|l| l.contains("policy=develop/backend"))
        .filter_map(|l| l.rsplit("new=").next())
        .filter_map(|v| v.rsplit('-').next())
        .filter_map(|ts| ts.parse::<usize>().ok())
        .collect();
    seen.reverse(); // oldest first
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "develop tag went backwards: {seen:?}"
    );
    let c = codes.lock().unwrap();
    eprintln!(
        "reconcile runs: {} ({} pushed)",
        c.len(),
        c.iter().filter(|(_, code)| *code == Some(3)).count()
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
        let delay = Duration::from_millis(150 + 120 * k as u64);
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
