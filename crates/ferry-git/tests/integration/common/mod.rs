//! Shared helpers for ferry-git's integration tests (real servers from ferry-testbed).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_git::{CommitSpec, GitAuth, Remote, Signature};
use ferry_testbed::git::GitEnv;

pub fn sig() -> Signature {
    Signature {
        name: "Ferry Bot".into(),
        email: "ferry@example.invalid".into(),
    }
}

pub fn spec(msg: &str) -> CommitSpec {
    CommitSpec {
        message: msg.into(),
        trailers: vec![],
        author: sig(),
        signing: None,
    }
}

pub fn basic(env: &GitEnv) -> GitAuth {
    GitAuth::basic(env.user.clone(), env.password.clone())
}

pub fn ssh_auth(env: &GitEnv) -> GitAuth {
    GitAuth {
        ssh_identity: Some(std::fs::read(&env.ssh_key).unwrap()),
        known_hosts: Some(std::fs::read(&env.known_hosts).unwrap()),
        ..GitAuth::default()
    }
}

pub fn https_auth(env: &GitEnv) -> GitAuth {
    GitAuth {
        ca_cert: Some(std::fs::read(&env.ca).unwrap()),
        ..basic(env)
    }
}

pub fn remote(url: String, auth: GitAuth) -> Remote {
    Remote::new(url, auth).with_timeout(std::time::Duration::from_secs(60))
}

/// Plain git against a bare repo on disk (the "server side" view).
pub fn bare(env: &GitEnv, repo: &str, args: &[&str]) -> String {
    let dir = env.repo_path(repo);
    let mut full = vec!["--git-dir", dir.to_str().unwrap()];
    full.extend_from_slice(args);
    env.git(Path::new("/"), &full).unwrap()
}

/// A human's clone (plain git CLI over file://) in a temp dir.
pub struct Human {
    pub dir: tempfile::TempDir,
}

impl Human {
    pub fn clone(env: &GitEnv, repo: &str) -> Human {
        let dir = tempfile::tempdir().unwrap();
        env.git(dir.path(), &["clone", "-q", &env.file(repo), "."])
            .unwrap();
        Human { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Commits `content` to `file` and pushes to main, rebasing on conflicts like a human would.
    pub fn commit_push(&self, env: &GitEnv, file: &str, content: &str) -> String {
        let d = self.dir.path();
        env.git(d, &["pull", "-q", "--rebase", "origin", "main"])
            .unwrap();
        std::fs::write(d.join(file), content).unwrap();
        env.git(d, &["add", "-A"]).unwrap();
        env.git(d, &["commit", "-q", "-m", &format!("human: {file}")])
            .unwrap();
        for _ in 0..50 {
            if env.git(d, &["push", "-q", "origin", "HEAD:main"]).is_ok() {
                return env.git(d, &["rev-parse", "HEAD"]).unwrap();
            }
            env.git(d, &["pull", "-q", "--rebase", "origin", "main"])
                .unwrap();
        }
        panic!("human could not push");
    }
}

/// Runs a command and returns stdout, panicking with stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
