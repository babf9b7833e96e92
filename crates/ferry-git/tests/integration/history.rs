//! log with trailers, revert (clean and conflict), show_file, changed_files, diff, and
//! deepening of the shallow cache.

use crate::common;

use common::*;
use ferry_git::{CloneCache, CommitSpec, GitAuth, History, LogQuery, RevertOutcome};
use ferry_testbed::git::git_servers;

#[test]
fn trailers_round_trip_through_log() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("trailers", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let mut co = cache
        .checkout(&remote(env.file(&repo), GitAuth::none()), "main")
        .unwrap();
    std::fs::write(co.workdir().join("app.yaml"), "image: app:1.2.3\n").unwrap();
    let spec = CommitSpec {
        message: "Update app to 1.2.3\n\nBody line one.\nBody line two.".into(),
        trailers: vec![
            ("Ferry-Promotion".into(), "staging->prod".into()),
            ("Ferry-Digest".into(), "sha256:abc".into()),
            ("Ferry-Digest".into(), "sha256:def".into()),
        ],
        ..spec("")
    };
    let sha = co.commit_all(&spec).unwrap().unwrap();
    std::fs::write(co.workdir().join("other.txt"), "x\n").unwrap();
    let sha2 = co.commit_all(&common::spec("unrelated")).unwrap().unwrap();
    let log = co
        .log(&LogQuery {
            paths: vec!["app.yaml".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(log.len(), 1, "path filter");
    let c = &log[0];
    assert_eq!(c.sha, sha);
    assert_eq!(c.subject, "Update app to 1.2.3");
    assert!(
        c.body
            .starts_with("Body line one.\nBody line two.\n\nFerry-Promotion: staging->prod"),
        "{:?}",
        c.body
    );
    assert_eq!(
        c.trailers,
        vec![
            ("Ferry-Promotion".to_string(), "staging->prod".to_string()),
            ("Ferry-Digest".to_string(), "sha256:abc".to_string()),
            ("Ferry-Digest".to_string(), "sha256:def".to_string()),
        ]
    );
    assert_eq!(c.author_email, "ferry@example.invalid");
    assert!(c.author_time > 1_600_000_000 && c.committer_time >= c.author_time);
    assert_eq!(c.parents.len(), 1);
    // git itself parses the same trailers.
    let git_view = env
        .git(
            co.workdir(),
            &[
                "log",
                "-1",
                "--format=%(trailers:key=Ferry-Digest,valueonly)",
                &sha,
            ],
        )
        .unwrap();
    assert_eq!(git_view, "sha256:abc\nsha256:def");
    let all = co
        .log(&LogQuery {
            max: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.sha.as_str()).collect::<Vec<_>>(),
        vec![sha2.as_str(), sha.as_str()]
    );
    let range = co
        .log(&LogQuery {
            rev_range: Some(format!("{sha}..HEAD")),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(range.len(), 1);
    // A bad trailer key is refused.
    let bad = CommitSpec {
        trailers: vec![("Bad Key".into(), "v".into())],
        ..common::spec("x")
    };
    std::fs::write(co.workdir().join("y"), "y").unwrap();
    assert!(co.commit_all(&bad).is_err());
}

#[test]
fn shallow_cache_deepens_for_history() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("deepen", true).unwrap();
    let human = Human::clone(&env, &repo);
    let mut shas = Vec::new();
    for i in 0..5 {
        shas.push(human.commit_push(&env, "v.txt", &format!("{i}\n")));
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.http(&repo), basic(&env));
    let mut co = cache.checkout(&r, "main").unwrap();
    assert_eq!(
        co.log(&LogQuery::default()).unwrap().len(),
        1,
        "depth-1 clone"
    );
    co.ensure_history(History::Depth(3)).unwrap();
    assert_eq!(co.log(&LogQuery::default()).unwrap().len(), 3);
    // show_file and changed_files deepen on demand.
    assert_eq!(co.show_file(&shas[0], "v.txt").unwrap().unwrap(), b"0\n");
    assert_eq!(co.show_file(&shas[0], "missing.txt").unwrap(), None);
    assert_eq!(
        co.changed_files(&shas[0], &shas[4]).unwrap(),
        vec!["v.txt".to_string()]
    );
    let d = co.diff(&shas[3], &shas[4], Some("v.txt")).unwrap();
    assert!(d.contains("-3\n+4\n"), "{d}");
    assert_eq!(
        co.log(&LogQuery::default()).unwrap().len(),
        6,
        "full history now"
    );
    drop(co);
    // The setting sticks: the next checkout keeps the full history.
    human.commit_push(&env, "v.txt", "5\n");
    let co = cache.checkout(&r, "main").unwrap();
    assert_eq!(co.log(&LogQuery::default()).unwrap().len(), 7);
}

#[test]
fn revert_clean_and_conflict() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("revert", true).unwrap();
    let human = Human::clone(&env, &repo);
    let a = human.commit_push(&env, "a.txt", "a1\n");
    let b = human.commit_push(&env, "b.txt", "b1\n");
    human.commit_push(&env, "b.txt", "b2\n"); // later change to b.txt → reverting `b` conflicts
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(env.daemon(&repo), GitAuth::none());
    let mut co = cache.checkout(&r, "main").unwrap();
    // Clean revert (auto-deepens the shallow clone to find the parent).
    let out = co.revert(&a).unwrap();
    let RevertOutcome::Clean {
        message,
        has_changes,
        reverted,
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(has_changes);
    assert_eq!(reverted, a);
    assert_eq!(
        message,
        format!("Revert \"human: a.txt\"\n\nThis reverts commit {a}.\n")
    );
    assert!(!co.workdir().join("a.txt").exists());
    let sha = co
        .commit_all(&CommitSpec {
            trailers: vec![("Ferry-Rollback".into(), a.clone())],
            ..spec(&message)
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        co.push("main", &Default::default()).unwrap(),
        ferry_git::PushOutcome::Pushed { sha }
    );
    // Conflicting revert: aborted, tree clean, conflict reported.
    let head = co.head().unwrap();
    let out = co.revert(&b).unwrap();
    assert_eq!(
        out,
        RevertOutcome::Conflict {
            reverted: b.clone(),
            paths: vec!["b.txt".into()]
        }
    );
    assert_eq!(co.head().unwrap(), head);
    assert_eq!(
        env.git(co.workdir(), &["status", "--porcelain"]).unwrap(),
        ""
    );
    assert!(!co.workdir().join(".git/REVERT_HEAD").exists());
    assert_eq!(
        std::fs::read_to_string(co.workdir().join("b.txt")).unwrap(),
        "b2\n"
    );
    // Unknown commit.
    assert!(
        co.revert("0123456789abcdef0123456789abcdef01234567")
            .is_err()
    );
}
