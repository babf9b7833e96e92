//! update_and_push: recompute on the new tip after a rejection, push branches, refspecs, push
//! options, and concurrent writers with a human pushing at the same time.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use ferry_git::{
    Backoff, CloneCache, GitAuth, UpdateError, UpdateOutcome, UpdatePlan, update_and_push,
};
use ferry_testbed::git::git_servers;

fn fast_plan(branch: &str) -> UpdatePlan {
    UpdatePlan {
        max_attempts: 60,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(200),
        },
        ..UpdatePlan::new(branch)
    }
}

/// Read-modify-write of counter.txt: correct only if computed on the current tip.
fn bump(dir: &std::path::Path, who: &str) -> std::io::Result<Option<ferry_git::CommitSpec>> {
    let p = dir.join("counter.txt");
    let n: u32 = std::fs::read_to_string(&p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    std::fs::write(&p, format!("{}\n", n + 1))?;
    Ok(Some(spec(&format!("{who}: counter {}", n + 1))))
}

#[test]
fn rejected_push_recomputes_on_new_tip() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("reject", true).unwrap();
    let human = Human::clone(&env, &repo);
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.http(&repo), basic(&env));
    let calls = AtomicU32::new(0);
    let mut human_sha = String::new();
    let out = update_and_push(&cache, &r, &fast_plan("main"), |dir| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            // A human pushes between our fetch and our push.
            human_sha = human.commit_push(&env, "human.txt", "from a human\n");
            assert!(!dir.join("human.txt").exists());
        } else {
            // The second run sees the human's commit: we compute on the new tip.
            assert!(dir.join("human.txt").exists());
        }
        bump(dir, "bot")
    })
    .unwrap();
    let UpdateOutcome::Pushed { sha, attempts, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(attempts, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(bare(&env, &repo, &["rev-parse", "main"]), sha);
    assert_eq!(
        bare(&env, &repo, &["rev-parse", "main^"]),
        human_sha,
        "our commit sits on the human's"
    );
    assert_eq!(bare(&env, &repo, &["show", "main:counter.txt"]), "1");
}

#[test]
fn nothing_to_do() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("noop", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.file(&repo), GitAuth::none());
    let before = bare(&env, &repo, &["rev-parse", "main"]);
    let out = update_and_push(&cache, &r, &fast_plan("main"), |dir| {
        std::fs::write(dir.join("README"), std::fs::read(dir.join("README"))?)?;
        Ok::<_, std::io::Error>(Some(spec("same content")))
    })
    .unwrap();
    assert_eq!(
        out,
        UpdateOutcome::NothingToDo {
            head: before.clone()
        }
    );
    let out = update_and_push(&cache, &r, &fast_plan("main"), |_| {
        Ok::<_, std::io::Error>(None)
    })
    .unwrap();
    assert_eq!(
        out,
        UpdateOutcome::NothingToDo {
            head: before.clone()
        }
    );
    assert_eq!(bare(&env, &repo, &["rev-parse", "main"]), before);
}

#[test]
fn push_branch_created_then_built_upon_and_refspec() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("pushbranch", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.ssh(&repo), ssh_auth(&env));
    let plan = UpdatePlan {
        push_branch: Some("auto/update".into()),
        refspec: Some("refs/heads/auto/update:refs/heads/mirror".into()),
        ..fast_plan("main")
    };
    let main = bare(&env, &repo, &["rev-parse", "main"]);
    let out = update_and_push(&cache, &r, &plan, |d| bump(d, "bot")).unwrap();
    let UpdateOutcome::Pushed { sha, branch, .. } = out else {
        panic!()
    };
    assert_eq!(branch, "auto/update");
    assert_eq!(
        bare(&env, &repo, &["rev-parse", "main"]),
        main,
        "main untouched"
    );
    assert_eq!(
        bare(&env, &repo, &["rev-parse", "auto/update^"]),
        main,
        "created from main"
    );
    assert_eq!(
        bare(&env, &repo, &["rev-parse", "mirror"]),
        sha,
        "refspec pushed"
    );
    // Second run computes on top of the existing push branch (counter goes to 2).
    let plan2 = UpdatePlan {
        refspec: None,
        ..plan.clone()
    };
    let out = update_and_push(&cache, &r, &plan2, |d| bump(d, "bot")).unwrap();
    let UpdateOutcome::Pushed { sha: sha2, .. } = out else {
        panic!()
    };
    assert_eq!(bare(&env, &repo, &["rev-parse", "auto/update^"]), sha);
    assert_eq!(bare(&env, &repo, &["rev-parse", "auto/update"]), sha2);
    assert_eq!(bare(&env, &repo, &["show", "auto/update:counter.txt"]), "2");
    // A forced refspec is refused before anything is pushed.
    let plan3 = UpdatePlan {
        refspec: Some("+HEAD:refs/heads/x".into()),
        ..plan
    };
    let err = update_and_push(&cache, &r, &plan3, |d| bump(d, "bot")).unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Git(ferry_git::GitError::InvalidInput { .. })
        ),
        "{err}"
    );
}

#[test]
fn push_options_reach_the_server_and_hook_rejection_is_final() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("pushopts", true).unwrap();
    let hook = env.repo_path(&repo).join("hooks/pre-receive");
    let seen = env.repo_path(&repo).join("seen-options");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\n: > {seen}\ni=0\nwhile [ $i -lt ${{GIT_PUSH_OPTION_COUNT:-0}} ]; do eval \"echo \\$GIT_PUSH_OPTION_$i\" >> {seen}; i=$((i+1)); done\ngrep -q '^deny$' {seen} && {{ echo 'denied by policy' >&2; exit 1; }}\nexit 0\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.http(&repo), basic(&env));
    let mut plan = fast_plan("main");
    plan.push_options = BTreeMap::from([
        ("merge_request.create".to_string(), String::new()),
        ("topic".to_string(), "x y".to_string()),
    ]);
    update_and_push(&cache, &r, &plan, |d| bump(d, "bot")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "merge_request.create\ntopic=x y\n"
    );
    plan.push_options = BTreeMap::from([("deny".to_string(), String::new())]);
    let calls = AtomicU32::new(0);
    let err = update_and_push(&cache, &r, &plan, |d| {
        calls.fetch_add(1, Ordering::SeqCst);
        bump(d, "bot")
    })
    .unwrap_err();
    assert!(
        matches!(err, UpdateError::Rejected { attempts: 1, .. }),
        "{err}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a hook rejection is not retried"
    );
}

#[test]
fn concurrent_writers_and_human_lose_nothing() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("concurrent", true).unwrap();
    const ROUNDS: u32 = 30;
    let human = Human::clone(&env, &repo);
    let shared = tempfile::tempdir().unwrap();
    let human_shas = std::thread::scope(|s| {
        let mut writers = Vec::new();
        for w in 0..2u32 {
            let env = &env;
            let repo = &repo;
            let shared = shared.path();
            writers.push(s.spawn(move || {
                // Writer 0 has its own cache (like another process); writer 1 shares one with
                // nobody else either, but both race on the same remote branch.
                let root = shared.join(format!("cache-{w}"));
                let cache = CloneCache::new(root).unwrap();
                let url = if w == 0 {
                    env.http(repo)
                } else {
                    env.file(repo)
                };
                let auth = if w == 0 { basic(env) } else { GitAuth::none() };
                let r = remote(url, auth);
                let mut total_attempts = 0;
                for i in 0..ROUNDS {
                    let out = update_and_push(&cache, &r, &fast_plan("main"), |d| {
                        std::fs::write(d.join(format!("w{w}.txt")), format!("{i}\n"))?;
                        bump(d, &format!("w{w}"))
                    })
                    .unwrap();
                    let UpdateOutcome::Pushed { attempts, .. } = out else {
                        panic!("{out:?}")
                    };
                    total_attempts += attempts;
                }
                total_attempts
            }));
        }
        let human_thread = s.spawn(|| {
            (0..ROUNDS)
                .map(|i| human.commit_push(&env, &format!("human-{i}.txt"), "h\n"))
                .collect::<Vec<_>>()
        });
        for w in writers {
            let attempts = w.join().unwrap();
            eprintln!("writer attempts for {ROUNDS} updates: {attempts}");
        }
        human_thread.join().unwrap()
    });
    // No lost update: the read-modify-write counter saw every writer commit.
    assert_eq!(
        bare(&env, &repo, &["show", "main:counter.txt"]),
        (2 * ROUNDS).to_string()
    );
    // Every human commit is in main's history.
    for sha in &human_shas {
        bare(&env, &repo, &["merge-base", "--is-ancestor", sha, "main"]);
    }
    let tree = bare(&env, &repo, &["ls-tree", "--name-only", "main"]);
    for i in 0..ROUNDS {
        assert!(
            tree.lines().any(|l| l == format!("human-{i}.txt")),
            "human-{i}.txt lost"
        );
    }
    assert_eq!(
        bare(
            &env,
            &repo,
            &["rev-list", "--count", "--author=Ferry Bot", "main"]
        ),
        (2 * ROUNDS).to_string()
    );
}

#[test]
fn same_cache_from_two_threads_serializes() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("samecache", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.daemon(&repo), GitAuth::none());
    std::thread::scope(|s| {
        for w in 0..2 {
            let cache = &cache;
            let r = &r;
            s.spawn(move || {
                for _ in 0..5 {
                    update_and_push(cache, r, &fast_plan("main"), |d| bump(d, &format!("t{w}")))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(bare(&env, &repo, &["show", "main:counter.txt"]), "10");
}

#[test]
fn through_the_backend_trait_object() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("dyn", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let backend: Box<dyn ferry_git::GitBackend> = Box::new(CloneCache::new(tmp.path()).unwrap());
    let r = remote(env.https(&repo), https_auth(&env));
    let before = backend.ls_remote(&r, "main").unwrap().unwrap();
    let out = backend
        .update_and_push(&r, &fast_plan("main"), &mut |d| Ok(bump(d, "dyn")?))
        .unwrap();
    let UpdateOutcome::Pushed { sha, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(backend.ls_remote(&r, "main").unwrap(), Some(sha.clone()));
    assert_ne!(before, sha);
    let co = backend.checkout(&r, "main").unwrap();
    assert_eq!(co.head().unwrap(), sha);
    // A callback error comes back as Apply, nothing pushed.
    drop(co);
    let err = backend
        .update_and_push(&r, &fast_plan("main"), &mut |_| Err("boom".into()))
        .unwrap_err();
    assert!(
        matches!(err, UpdateError::Apply(ref e) if e.to_string() == "boom"),
        "{err}"
    );
    assert_eq!(backend.ls_remote(&r, "main").unwrap(), Some(sha));
}
