//! Credentials never appear in errors (Display or Debug), logs (tracing at TRACE), the cache's
//! files, or git's config — including failures with userinfo URLs and wrong passwords.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use ferry_git::{CloneCache, GitAuth, PushOutcome, UpdatePlan, update_and_push};
use ferry_testbed::git::git_servers;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn grep_tree(dir: &std::path::Path, needle: &[u8], hits: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            grep_tree(&p, needle, hits);
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
}

#[test]
fn credentials_never_leak() {
    let Some(env) = git_servers() else { return };
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let repo = env.new_repo("secrets", true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = CloneCache::new(tmp.path()).unwrap();
    let mut report = String::new();
    let bad_pw = "Wr0ngPassw0rd-Zq9";
    let token = "tok3n-Sec-Xy7-abcdef";
    let passphrase = "ssh-Passphrase-Kk4";
    fn record(
        report: &mut String,
        label: &str,
        e: &dyn std::fmt::Debug,
        d: &dyn std::fmt::Display,
    ) {
        report.push_str(&format!("{label}: {d}\n{label} debug: {e:?}\n"));
    }

    // 1. Userinfo URL with a wrong password.
    let url = env
        .http(&repo)
        .replacen("http://", &format!("http://{}:{bad_pw}@", env.user), 1);
    let err = cache
        .checkout(&remote(url.clone(), GitAuth::none()), "main")
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    record(&mut report, "userinfo", &err, &err);
    // 2. Wrong password in the Secret.
    let err = cache
        .checkout(
            &remote(
                env.https(&repo),
                GitAuth {
                    ca_cert: Some(std::fs::read(&env.ca).unwrap()),
                    ..GitAuth::basic(env.user.clone(), bad_pw)
                },
            ),
            "main",
        )
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    record(&mut report, "basic", &err, &err);
    // 3. Bearer token the server does not accept.
    let err = cache
        .checkout(
            &remote(
                env.http(&repo),
                GitAuth {
                    bearer_token: Some(token.into()),
                    ..GitAuth::default()
                },
            ),
            "main",
        )
        .unwrap_err();
    record(&mut report, "bearer", &err, &err);
    // 4. Passphrase-protected ssh key with the wrong passphrase.
    let kdir = tempfile::tempdir().unwrap();
    let key = kdir.path().join("k");
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "right-one", "-f"])
        .arg(&key));
    let auth = GitAuth {
        ssh_identity: Some(std::fs::read(&key).unwrap()),
        password: Some(passphrase.into()),
        known_hosts: Some(std::fs::read(&env.known_hosts).unwrap()),
        ..GitAuth::default()
    };
    let err = cache
        .checkout(&remote(env.ssh(&repo), auth), "main")
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    record(&mut report, "ssh", &err, &err);
    // 5. A failing push with userinfo in the URL (right password, hook declines), through
    //    update_and_push so the whole path logs.
    let hook = env.repo_path(&repo).join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho \"declined; env url=$REMOTE_USER\" >&2\nexit 1\n",
    )
    .unwrap();
    run(std::process::Command::new("chmod").arg("+x").arg(&hook));
    let good_url = env.http(&repo).replacen(
        "http://",
        &format!("http://{}:{}@", env.user, env.password),
        1,
    );
    let r = remote(good_url, GitAuth::none());
    let mut co = cache.checkout(&r, "main").unwrap();
    std::fs::write(co.workdir().join("f"), "x").unwrap();
    co.commit_all(&spec("x")).unwrap();
    let out = co.push("main", &Default::default()).unwrap();
    assert!(
        matches!(
            out,
            PushOutcome::Rejected {
                retryable: false,
                ..
            }
        ),
        "{out:?}"
    );
    report.push_str(&format!("push: {out:?}\n"));
    drop(co);
    let err = update_and_push(&cache, &r, &UpdatePlan::new("main"), |d| {
        std::fs::write(d.join("g"), "y")?;
        Ok::<_, std::io::Error>(Some(spec("y")))
    })
    .unwrap_err();
    record(&mut report, "update", &err, &err);
    // Debug of the inputs themselves.
    report.push_str(&format!(
        "{r:?}\n{:?}\n",
        GitAuth {
            bearer_token: Some(token.into()),
            ..GitAuth::basic("u", bad_pw)
        }
    ));

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("push rejected"), "logging is on: {logs}");
    let all = format!("{report}\n{logs}");
    use base64::Engine as _;
    let b64 =
        |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
    for secret in [
        bad_pw.to_string(),
        env.password.clone(),
        token.to_string(),
        passphrase.to_string(),
        b64(&env.user, bad_pw),
        b64(&env.user, &env.password),
    ] {
        assert!(!all.contains(&secret), "secret leaked:\n{all}");
        let mut hits = Vec::new();
        grep_tree(tmp.path(), secret.as_bytes(), &mut hits);
        assert!(hits.is_empty(), "secret on disk after use: {hits:?}");
    }
    assert!(
        all.contains("http://***@127.0.0.1") || all.contains("http://127.0.0.1"),
        "{all}"
    );
    eprintln!("{report}");
}
