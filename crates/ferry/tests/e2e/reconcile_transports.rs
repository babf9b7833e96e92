//! `ferry reconcile` write-back end to end (issue 3) over every transport against real servers:
//! file://, http (Basic auth), https (Basic auth + private CA), ssh (identity + known_hosts) and
//! git daemon. A seed-like repo scaffolded by `ferry init` (backend with per-environment
//! Deployments, frontend with Kustomize overlays whose `images:` entries carry markers) gets
//! byte-exact commits with trailers for develop and staging from real registry tags; `--dry-run`
//! pushes nothing and shows the diff; exit codes 3 (changed) then 0 (nothing to do); `get images
//! update` shows the last push commit and time. Git failures exit 1 without leaking credentials.

use crate::common::*;
use ferry_testbed::git::{GitEnv, git_servers};
use ferry_testbed::registry::{Auth, registry};

enum Transport {
    File,
    Http,
    Https,
    Ssh,
    Daemon,
}

fn url(t: &Transport) -> impl Fn(&GitEnv, &str) -> String {
    let f: fn(&GitEnv, &str) -> String = match t {
        Transport::File => |g, r| g.file(r),
        Transport::Http => |g, r| g.http(r),
        Transport::Https => |g, r| g.https(r),
        Transport::Ssh => |g, r| g.ssh(r),
        Transport::Daemon => |g, r| g.daemon(r),
    };
    f
}

fn write_git_secret(seed: &Seed, t: &Transport) {
    let g = &seed.git;
    let ca = std::fs::read(&g.ca).unwrap();
    let key = std::fs::read(&g.ssh_key).unwrap();
    let kh = std::fs::read(&g.known_hosts).unwrap();
    match t {
        Transport::Http => seed.ws.secret(
            "flux-system",
            "git-cred",
            &[
                ("username", g.user.as_bytes()),
                ("password", g.password.as_bytes()),
            ],
        ),
        Transport::Https => seed.ws.secret(
            "flux-system",
            "git-cred",
            &[
                ("username", g.user.as_bytes()),
                ("password", g.password.as_bytes()),
                ("ca.crt", &ca),
            ],
        ),
        Transport::Ssh => seed.ws.secret(
            "flux-system",
            "git-cred",
            &[("identity", &key), ("known_hosts", &kh)],
        ),
        Transport::File | Transport::Daemon => {}
    }
}

fn write_back_over(t: Transport, prefix: &str) {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(git) = git_servers() else { return };
    let secret = match t {
        Transport::Http | Transport::Https | Transport::Ssh => Some("git-cred"),
        _ => None,
    };
    let seed = Seed::new(&reg, &git, prefix, url(&t), secret);
    write_git_secret(&seed, &t);
    let password = git.password.clone();
    let head0 = remote_head(&git, &seed.repo);

    // Dry run: diffs on stdout, exit 3 (would change), nothing pushed, no automation recorded.
    let dry = seed.reconcile(&["--dry-run"]);
    dry.expect_code(3).assert_no_secret(&password);
    assert_eq!(remote_head(&git, &seed.repo), head0, "dry run pushed");
    assert!(dry.stdout.contains("would push to main"), "{}", dry.stdout);
    assert!(
        dry.stdout
            .contains("+++ b/flux/apps/backend/develop/deployment.yaml")
            || dry
                .stdout
                .contains("flux/apps/backend/develop/deployment.yaml"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .lines()
            .any(|l| l.starts_with('+') && l.contains(&format!("backend:{NEW_DEVELOP}"))),
        "no diff line for the new develop tag:\n{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .lines()
            .any(|l| l.starts_with('-') && l.contains(&format!("backend:{PLACEHOLDER_DEVELOP}"))),
        "{}",
        dry.stdout
    );

    // The real run: exit 3, one commit per changed automation, byte-exact files, trailers.
    let run = seed.reconcile(&[]);
    run.expect_code(3).assert_no_secret(&password);
    assert!(run.stdout.contains("pushed "), "{}", run.stdout);
    seed.assert_develop_and_staging_updated();
    let log = remote_log(&git, &seed.repo, "%H %an");
    assert_eq!(log.lines().count(), 1 + 4, "{log}");
    let shas: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    for line in log.lines().take(4) {
        assert!(line.ends_with(" ferry"), "author: {line}");
    }
    // Every SHA the run printed is in the remote.
    for l in run.stdout.lines().filter(|l| l.starts_with("pushed ")) {
        let sha = l.split_whitespace().nth(1).unwrap();
        assert!(shas.contains(&sha), "{sha} not in remote log {log}");
    }

    // `get images update` shows the last push commit and time of each automation.
    let updates = seed.ws.get_json("update");
    for (ns, name) in [("develop", "backend"), ("staging", "frontend")] {
        let o = updates
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["namespace"] == ns && o["name"] == name)
            .unwrap_or_else(|| panic!("{ns}/{name} missing: {updates:#}"));
        let sha = o["automation"]["last_push_commit"].as_str().unwrap();
        assert!(shas.contains(&sha), "{sha} not pushed");
        assert!(
            o["automation"]["last_push_time"]
                .as_str()
                .unwrap()
                .ends_with('Z'),
            "{o:#}"
        );
        assert_eq!(o["ready"]["status"], "True", "{o:#}");
    }
    let table = seed.ws.ferry(&["get", "images", "update", "-A"]);
    table.expect_code(0).assert_no_secret(&password);
    assert!(
        table.stdout.contains("LAST PUSH COMMIT"),
        "{}",
        table.stdout
    );
    assert!(
        shas.iter().take(4).any(|s| table.stdout.contains(s)),
        "{}",
        table.stdout
    );

    // Again: nothing to do, exit 0, no new commit.
    let head1 = remote_head(&git, &seed.repo);
    seed.reconcile(&[])
        .expect_code(0)
        .assert_no_secret(&password);
    assert_eq!(remote_head(&git, &seed.repo), head1);
    // The clone cache is reused (fetch, not a fresh clone): it still exists and is a valid repo.
    assert!(seed.ws.cache().is_dir());
}

#[test]
fn write_back_over_file() {
    write_back_over(Transport::File, "rc-file");
}

#[test]
fn write_back_over_http_basic_auth() {
    write_back_over(Transport::Http, "rc-http");
}

#[test]
fn write_back_over_https_basic_auth_private_ca() {
    write_back_over(Transport::Https, "rc-https");
}

#[test]
fn write_back_over_ssh() {
    write_back_over(Transport::Ssh, "rc-ssh");
}

#[test]
fn write_back_over_git_daemon() {
    write_back_over(Transport::Daemon, "rc-daemon");
}

/// Git failures exit 1, the other automations still run, and no credential appears anywhere:
/// a wrong password, a URL with userinfo, a bearer token the server refuses.
#[test]
fn git_failures_exit_1_and_never_leak_credentials() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(git) = git_servers() else { return };
    let wrong = "Wr0ng-git-pa55-8d1e";
    let token = "ferry-test-bearer-token-71c0a3";
    for case in ["wrong-password", "userinfo", "token"] {
        let seed = Seed::new(
            &reg,
            &git,
            &format!("rc-leak-{case}"),
            |g, r| g.http(r),
            (case != "userinfo").then_some("git-cred"),
        );
        match case {
            // `ferry init` refuses a URL with a password, so a human puts it there.
            "userinfo" => seed.human_edit(
                "flux/bootstrap/infrastructure/image-automation/git-repository.yaml",
                |t| {
                    assert!(t.contains("url: http://"), "{t}");
                    t.replacen(
                        "url: http://",
                        &format!("url: http://{}:{wrong}@", git.user),
                        1,
                    )
                },
                "use a URL with userinfo",
            ),
            "wrong-password" => seed.ws.secret(
                "flux-system",
                "git-cred",
                &[("username", g_user(&git)), ("password", wrong.as_bytes())],
            ),
            "token" => seed.ws.secret(
                "flux-system",
                "git-cred",
                &[("bearerToken", token.as_bytes())],
            ),
            _ => {}
        }
        let head0 = remote_head(&git, &seed.repo);
        for verbosity in [None, Some("-vvv")] {
            let mut extra = vec![];
            if let Some(v) = verbosity {
                extra.push(v);
            }
            let r = seed.reconcile(&extra);
            r.expect_code(1)
                .assert_no_secret(wrong)
                .assert_no_secret(token)
                .assert_no_secret(&git.password);
            assert!(
                r.stderr.contains("GitOperationFailed"),
                "{case}: {}",
                r.stderr
            );
        }
        assert_eq!(
            remote_head(&git, &seed.repo),
            head0,
            "{case}: pushed anyway"
        );
        // The failure is on the automation objects, one line each; policies are fine.
        let upd = seed.ws.object("update", "develop", "backend");
        assert_eq!(upd["ready"]["status"], "False", "{upd:#}");
        let msg = upd["ready"]["message"].as_str().unwrap();
        assert!(!msg.contains('\n'), "{msg:?}");
        assert!(
            seed.ws
                .latest("develop", "backend")
                .unwrap()
                .ends_with(NEW_DEVELOP)
        );
        for fmt in ["table", "json", "yaml"] {
            seed.ws
                .ferry(&["get", "images", "all", "-A", "-o", fmt])
                .expect_code(0)
                .assert_no_secret(wrong)
                .assert_no_secret(token);
        }
    }
}

fn g_user(g: &GitEnv) -> &[u8] {
    g.user.as_bytes()
}

/// Issue 14: one `ferry reconcile --once` pass fetches each write-back repository at most once,
/// plus the clone that loads the objects (`--repo`), counted in the git daemon's log. The seed
/// has six automations writing to one repository and branch.
#[test]
fn one_pass_fetches_the_write_back_repository_once() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(git) = git_servers() else { return };
    let seed = Seed::new(&reg, &git, "rc-fetches", |g, r| g.daemon(r), None);
    let mut args: Vec<String> = vec!["reconcile".into(), "--once".into()];
    args.extend(seed.flags());
    // The objects come over git:// too, so the load's clone is counted as well.
    let i = args.iter().position(|a| a == "--repo").unwrap();
    args[i + 1] = git.daemon(&seed.repo);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    for (run, code) in [(1, 3), (2, 0)] {
        let before = git.daemon_fetches(&seed.repo);
        seed.ws.ferry(&argv).expect_code(code);
        let fetches = git.daemon_fetches(&seed.repo) - before;
        eprintln!("run {run}: {fetches} fetches");
        assert!(
            fetches <= 2,
            "run {run}: {fetches} fetches of {} (at most 1 load + 1 write-back)",
            seed.repo
        );
    }
    seed.assert_develop_and_staging_updated();
}
