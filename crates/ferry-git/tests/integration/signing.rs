//! Signed commits (OpenPGP with a passphrase, SSH with and without a password), verified by git.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;
use ferry_git::{CloneCache, CommitSpec, GitAuth, SigningKey};
use ferry_testbed::git::git_servers;

fn gpg(home: &Path, args: &[&str]) -> String {
    run(Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--no-tty"])
        .args(args))
}

fn verify(dir: &Path, sha: &str, extra_env: &[(&str, &str)], config: &[&str]) -> (bool, String) {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    for kv in config {
        c.args(["-c", kv]);
    }
    let out = c.args(["verify-commit", "-v", sha]).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gpg_signed_commit_verifies() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("gpg", true).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let home = keys.path().join("gen");
    std::fs::create_dir(&home).unwrap();
    let pass = "gpg-pass-77";
    gpg(
        &home,
        &[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            pass,
            "--quick-gen-key",
            "Ferry Bot <ferry@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let armored = gpg(
        &home,
        &[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            pass,
            "--armor",
            "--export-secret-keys",
        ],
    );
    let public = gpg(&home, &["--armor", "--export"]);
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "gpg-agent"])
        .status();

    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let mut co = cache
        .checkout(&remote(env.file(&repo), GitAuth::none()), "main")
        .unwrap();
    std::fs::write(co.workdir().join("s.txt"), "signed\n").unwrap();
    let key = SigningKey::Gpg {
        armored: armored.clone().into_bytes(),
        passphrase: Some(pass.into()),
    };
    assert!(!format!("{key:?}").contains(pass));
    let sha = co
        .commit_all(&CommitSpec {
            signing: Some(key),
            ..spec("signed gpg")
        })
        .unwrap()
        .unwrap();

    // Verify with only the public key.
    let vhome = keys.path().join("verify");
    std::fs::create_dir(&vhome).unwrap();
    let pub_file = keys.path().join("pub.asc");
    std::fs::write(&pub_file, &public).unwrap();
    gpg(&vhome, &["--import", pub_file.to_str().unwrap()]);
    let (ok, msg) = verify(
        co.workdir(),
        &sha,
        &[("GNUPGHOME", vhome.to_str().unwrap())],
        &[],
    );
    assert!(ok, "verify-commit failed: {msg}");
    assert!(msg.contains("Good signature"), "{msg}");
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &vhome)
        .args(["--kill", "gpg-agent"])
        .status();

    // Wrong passphrase: a signing error, no commit, passphrase not echoed.
    std::fs::write(co.workdir().join("s.txt"), "again\n").unwrap();
    let bad = SigningKey::Gpg {
        armored: armored.into_bytes(),
        passphrase: Some("not-the-pass".into()),
    };
    let err = co
        .commit_all(&CommitSpec {
            signing: Some(bad),
            ..spec("bad")
        })
        .unwrap_err();
    assert!(
        matches!(err, ferry_git::GitError::Signing { format: "gpg", .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-pass"));
    assert_eq!(co.head().unwrap(), sha);
    // No agent or key material left behind in the cache.
    assert!(
        std::fs::read_dir(tmp.path().join(".tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn ssh_signed_commits_verify() {
    let Some(env) = git_servers() else { return };
    let repo = env.new_repo("sshsign", true).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let mut co = cache
        .checkout(&remote(env.file(&repo), GitAuth::none()), "main")
        .unwrap();
    for (i, password) in [None, Some("ssh-sign-pass")].into_iter().enumerate() {
        let k = keys.path().join(format!("k{i}"));
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-C",
                "ferry",
                "-N",
                password.unwrap_or(""),
            ])
            .arg("-f")
            .arg(&k));
        let public = std::fs::read_to_string(k.with_extension("pub")).unwrap();
        let allowed = keys.path().join(format!("allowed{i}"));
        std::fs::write(
            &allowed,
            format!("ferry@example.invalid namespaces=\"git\" {public}"),
        )
        .unwrap();
        std::fs::write(co.workdir().join("s.txt"), format!("{i}\n")).unwrap();
        let key = SigningKey::Ssh {
            private_key: std::fs::read(&k).unwrap(),
            password: password.map(Into::into),
        };
        let sha = co
            .commit_all(&CommitSpec {
                signing: Some(key),
                ..spec("signed ssh")
            })
            .unwrap()
            .unwrap();
        let allowed_cfg = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
        let (ok, msg) = verify(co.workdir(), &sha, &[], &[&allowed_cfg]);
        assert!(ok, "verify-commit failed: {msg}");
        assert!(
            msg.contains("Good \"git\" signature for ferry@example.invalid"),
            "{msg}"
        );
    }
}
