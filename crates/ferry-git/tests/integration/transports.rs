//! Clone, commit and push over every transport against real servers.

use crate::common;

use common::*;
use ferry_git::{CloneCache, FailureKind, GitAuth, GitError, PushOutcome};
use ferry_testbed::git::{GitEnv, git_servers};

fn round_trip(env: &GitEnv, repo: &str, url: String, auth: GitAuth) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = remote(url.clone(), auth);
    let mut co = cache.checkout(&r, "main").unwrap();
    assert_eq!(
        std::fs::read_to_string(co.workdir().join("README"))
            .unwrap()
            .trim_end(),
        format!("seed of {}", repo.trim_end_matches(".git"))
    );
    std::fs::write(co.workdir().join("hello.txt"), format!("via {url}\n")).unwrap();
    let sha = co
        .commit_all(&spec("add hello"))
        .unwrap()
        .expect("a commit");
    assert_eq!(
        co.push("main", &Default::default()).unwrap(),
        PushOutcome::Pushed { sha: sha.clone() }
    );
    // Nothing changed → no commit.
    assert_eq!(co.commit_all(&spec("noop")).unwrap(), None);
    drop(co);
    assert_eq!(bare(env, repo, &["rev-parse", "refs/heads/main"]), sha);
    assert_eq!(
        bare(env, repo, &["show", "main:hello.txt"]),
        format!("via {url}")
    );
    // Author and committer are both the signature.
    assert_eq!(
        bare(
            env,
            repo,
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"]
        ),
        "Ferry Bot <ferry@example.invalid>|Ferry Bot <ferry@example.invalid>"
    );
    // A second checkout reuses the cache entry (fetch, not clone) and sees the pushed commit.
    let co = cache.checkout(&r, "main").unwrap();
    assert_eq!(co.head().unwrap(), sha);
    assert_eq!(cache.ls_remote(&r, "main").unwrap(), Some(sha));
    assert_eq!(cache.ls_remote(&r, "nope").unwrap(), None);
}

#[test]
fn file_transport() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("file", true).unwrap();
    round_trip(&env, &repo, env.file(&repo), GitAuth::none());
}

#[test]
fn http_basic_auth() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("http", true).unwrap();
    round_trip(&env, &repo, env.http(&repo), basic(&env));
}

#[test]
fn http_userinfo_in_url() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("userinfo", true).unwrap();
    let url = env.http(&repo).replacen(
        "http://",
        &format!("http://{}:{}@", env.user, env.password),
        1,
    );
    round_trip(&env, &repo, url, GitAuth::none());
}

#[test]
fn https_private_ca() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("https", true).unwrap();
    round_trip(&env, &repo, env.https(&repo), https_auth(&env));
}

#[test]
fn https_without_ca_fails_verification() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("https-noca", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let err = cache
        .checkout(&remote(env.https(&repo), basic(&env)), "main")
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::HostVerification, "{err}");
}

#[test]
fn ssh_key_and_known_hosts() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("ssh", true).unwrap();
    round_trip(&env, &repo, env.ssh(&repo), ssh_auth(&env));
}

#[test]
fn ssh_unknown_host_key_is_refused() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("ssh-kh", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let auth = GitAuth {
        known_hosts: None,
        ..ssh_auth(&env)
    };
    let err = cache
        .checkout(&remote(env.ssh(&repo), auth), "main")
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::HostVerification, "{err}");
}

#[test]
fn git_daemon() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("daemon", true).unwrap();
    round_trip(&env, &repo, env.daemon(&repo), GitAuth::none());
}

#[test]
fn missing_branch_and_bad_password() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("missing", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let err = cache
        .checkout(&remote(env.http(&repo), basic(&env)), "nope")
        .unwrap_err();
    assert!(
        matches!(err, GitError::BranchNotFound { ref branch, .. } if branch == "nope"),
        "{err}"
    );
    let err = cache
        .checkout(
            &remote(
                env.http(&repo),
                GitAuth::basic(env.user.clone(), "wrong-password"),
            ),
            "main",
        )
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    let err = cache
        .checkout(&remote(env.http(&repo), basic(&env)), "-x")
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidInput { .. }), "{err}");
}

#[test]
fn ssh_key_with_passphrase() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("ssh-pass", true).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let k = keys.path().join("id");
    run(std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "key-pass-1",
            "-C",
            "ferry-test",
        ])
        .arg("-f")
        .arg(&k));
    // Authorize the new key on the testbed's sshd (the file sits beside the client key).
    let authorized = env.ssh_key.parent().unwrap().join("authorized_keys");
    // Append (not read-modify-write): other test processes may do the same.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&authorized)
        .unwrap();
    std::io::Write::write_all(&mut f, &std::fs::read(k.with_extension("pub")).unwrap()).unwrap();
    let auth = GitAuth {
        ssh_identity: Some(std::fs::read(&k).unwrap()),
        password: Some("key-pass-1".into()),
        known_hosts: Some(std::fs::read(&env.known_hosts).unwrap()),
        ..GitAuth::default()
    };
    round_trip(&env, &repo, env.ssh(&repo), auth);
}

#[test]
fn hung_server_times_out_and_child_is_killed() {
    // A loopback "server" that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let r = ferry_git::Remote::new(
        format!("http://u:pw-123456@127.0.0.1:{port}/r.git"),
        GitAuth::none(),
    )
    .with_timeout(std::time::Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let err = cache.checkout(&r, "main").unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err}");
    assert!(err.is_transient());
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert!(!err.to_string().contains("pw-123456"), "{err}");
}
