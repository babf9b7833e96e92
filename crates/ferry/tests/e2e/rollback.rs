//! `ferry rollback`, `hold`, `unhold`, `status` end to end: the real binary against a real
//! registry and real git repositories (file:// and http) from ferry-testbed.

use crate::common;

use std::path::Path;

use crate::common::{Workspace, clone, git, init_seed, push, remote_file, remote_head, remote_log};
use ferry_testbed::git::{GitEnv, git_servers};
use ferry_testbed::registry::{Auth, RegistryEnv, registry};

const DEPLOY: &str = "flux/apps/backend/staging/deployment.yaml";

fn tag(n: u32) -> String {
    format!("staging-v0.0.{n}-{n:07x}-{}", 1000 + n)
}

/// A seed GitOps repo on the git server with images in the registry.
struct Fixture {
    ws: Workspace,
    git: GitEnv,
    reg: RegistryEnv,
    repo: String,
    url: String,
    image_repo: String,
    reg_prefix: String,
}

impl Fixture {
    fn new(prefix: &str, http: bool) -> Option<Fixture> {
        let git_env = git_servers()?;
        let reg = registry(Auth::None, false)?;
        let ws = Workspace::new();
        let repo = git_env.new_repo(prefix, false).unwrap();
        // Objects are always loaded over file://; with `http` the GitRepository (what rollback
        // and automation push to) is the http server with Basic auth from a Secret.
        let url = git_env.file(&repo);
        let ns = common::unique("r5");
        let reg_prefix = format!("{}/{ns}", reg.host);
        let dir = ws.join("seed");
        if http {
            ws.secret(
                "flux-system",
                "git-auth",
                &[
                    ("username", git_env.user.as_bytes()),
                    ("password", git_env.password.as_bytes()),
                ],
            );
            init_seed(
                &dir,
                &reg_prefix,
                &git_env.http(&repo),
                &["--git-secret", "git-auth"],
            );
        } else {
            init_seed(&dir, &reg_prefix, &url, &[]);
        }
        common::push_tree(&git_env, &repo, &dir);
        let image_repo = format!("{ns}/backend");
        Some(Fixture {
            ws,
            git: git_env,
            reg,
            repo,
            url,
            image_repo,
            reg_prefix,
        })
    }

    fn publish(&self, n: u32) -> String {
        push(&self.reg, &self.image_repo, &tag(n))
    }

    fn source(&self) -> Vec<String> {
        vec![
            "--repo".into(),
            self.url.clone(),
            "--ref".into(),
            "main".into(),
            "--path".into(),
            "flux".into(),
            "--var".into(),
            format!("image_registry={}", self.reg_prefix),
            "--cache-dir".into(),
            self.ws.cache_str(),
            "--secrets-dir".into(),
            self.ws.secrets_str(),
        ]
    }

    fn ferry(&self, args: &[&str]) -> common::Run {
        let src = self.source();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(src.iter().map(String::as_str));
        self.ws.ferry(&all)
    }

    fn reconcile(&self) -> common::Run {
        let r = self.ferry(&["reconcile"]);
        // develop/production have no tags in this fixture: exit 1 is expected beside 0/3.
        assert!(matches!(r.code, Some(0 | 1 | 3)), "reconcile: {}", r.all());
        r
    }

    fn staging_tag(&self) -> String {
        let text = remote_file(&self.git, &self.repo, DEPLOY);
        let line = text.lines().find(|l| l.contains("$imagepolicy")).unwrap();
        let image = line.split_whitespace().nth(1).unwrap();
        image.rsplit(':').next().unwrap().to_string()
    }

    fn head_trailers(&self) -> String {
        remote_log(&self.git, &self.repo, "%(trailers)")
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// A human commit on main (cloned fresh), pushed.
    fn human_commit(&self, edit: impl FnOnce(&Path), message: &str) -> String {
        let dir = clone(&self.git, &self.repo);
        edit(dir.path());
        git(dir.path(), &["commit", "-qam", message]);
        git(dir.path(), &["push", "-q", "origin", "main"]);
        git(dir.path(), &["rev-parse", "HEAD"])
    }
}

fn edit_file(root: &Path, rel: &str, f: impl FnOnce(String) -> String) {
    let p = root.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(text)).unwrap();
}

/// The acceptance test: roll back while the bad tag is still the newest in the registry,
/// reconcile three times, staging stays; unhold, and it moves to the newest tag not denied.
#[test]
fn rollback_sticks_through_reconciles_and_unhold_moves_to_newest_allowed() {
    let Some(fx) = Fixture::new("rb-sticks", false) else {
        return;
    };
    fx.publish(1);
    fx.reconcile();
    assert_eq!(fx.staging_tag(), tag(1));
    fx.publish(2);
    fx.reconcile();
    assert_eq!(fx.staging_tag(), tag(2));
    fx.publish(3);
    fx.reconcile();
    assert_eq!(fx.staging_tag(), tag(3));

    // Back two versions: to 1, denying 3 (the newest in the registry).
    let r = fx.ferry(&[
        "rollback",
        "staging",
        "backend",
        "--steps",
        "2",
        "--reason",
        "bad build",
        "--by",
        "alice",
        "-o",
        "json",
    ]);
    r.expect_code(0);
    let rep = r.json();
    assert_eq!(rep["to"]["tag"], tag(1));
    assert_eq!(rep["denied_tag"], tag(3));
    assert_eq!(rep["method"], "setters");
    assert_eq!(fx.staging_tag(), tag(1));
    let holds = remote_file(&fx.git, &fx.repo, ".ferry/holds.yaml");
    assert!(holds.contains(&format!("tag: \"{}\"", tag(1))), "{holds}");
    assert!(holds.contains(&format!("tag: \"{}\"", tag(3))), "{holds}");
    let rollback_commit = remote_head(&fx.git, &fx.repo);

    for _ in 0..3 {
        fx.reconcile();
        assert_eq!(
            fx.staging_tag(),
            tag(1),
            "a reconcile moved a held environment"
        );
    }
    assert_eq!(
        remote_head(&fx.git, &fx.repo),
        rollback_commit,
        "reconcile pushed while held"
    );

    // get images shows the hold: since which commit, by whom, why.
    let pol = fx.ws.object("policy", "staging", "backend");
    assert_eq!(pol["hold"]["tag"], tag(1));
    assert_eq!(pol["hold"]["since"], rollback_commit.as_str());
    assert_eq!(pol["hold"]["by"], "alice");
    assert_eq!(pol["hold"]["reason"], "bad build");
    // The election skips the denied tag.
    assert_eq!(pol["latestRef"]["tag"], tag(2));

    // status: held, tag from Git, digest from the registry.
    let st = fx.ferry(&["status", "backend", "-o", "json"]);
    st.expect_code(0);
    let st = st.json();
    let cell = st["apps"][0]["envs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["env"] == "staging")
        .unwrap()
        .clone();
    assert_eq!(cell["tag"], tag(1));
    assert_eq!(cell["held"], true);
    assert!(cell["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(cell["promotable_to"], "production");

    fx.ferry(&["unhold", "staging", "backend", "--by", "bob"])
        .expect_code(0);
    assert!(fx.head_trailers().contains("Ferry-Kind: unhold"));
    fx.reconcile();
    assert_eq!(
        fx.staging_tag(),
        tag(2),
        "after unhold: the newest tag that is not denied"
    );
    fx.reconcile();
    assert_eq!(fx.staging_tag(), tag(2));
    let pol = fx.ws.object("policy", "staging", "backend");
    assert!(pol.get("hold").is_none(), "{pol}");

    // history: every row whose tag exists in the registry carries its digest (the markers pin
    // none, so it comes from the registry), checked against skopeo.
    let h = fx.ferry(&["history", "staging", "backend", "-o", "json"]);
    h.expect_code(0);
    let rows = h.json();
    let rows = rows.as_array().unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last["new_tag"], tag(2), "{last}");
    assert_eq!(
        last["digest"].as_str().unwrap(),
        common::skopeo_digest(&fx.reg, &fx.image_repo, &tag(2))
    );
}

/// Rollback of an automation commit by `git revert`, with trailers naming everything.
#[test]
fn rollback_after_automation_commit_reverts_it() {
    let Some(fx) = Fixture::new("rb-revert", false) else {
        return;
    };
    fx.publish(1);
    fx.reconcile();
    fx.publish(2);
    fx.reconcile();
    let bad = remote_head(&fx.git, &fx.repo);
    let dry = fx.ferry(&["rollback", "staging", "backend", "--dry-run"]);
    dry.expect_code(0);
    assert!(dry.stdout.contains("would roll back"), "{}", dry.stdout);
    assert_eq!(remote_head(&fx.git, &fx.repo), bad, "dry run pushed");
    let r = fx.ferry(&[
        "rollback",
        "staging",
        "backend",
        "--reason",
        "p99 latency",
        "--by",
        "carol",
    ]);
    r.expect_code(0);
    assert!(r.stdout.contains("method: git revert"), "{}", r.stdout);
    assert_eq!(fx.staging_tag(), tag(1));
    let t = fx.head_trailers();
    assert!(t.contains("Ferry-Kind: rollback"), "{t}");
    assert!(t.contains(&format!("Ferry-Reverts: {bad}")), "{t}");
    assert!(t.contains("Ferry-Method: revert"), "{t}");
    assert!(t.contains("Ferry-By: carol"), "{t}");
    assert!(t.contains("Ferry-Reason: p99 latency"), "{t}");
    assert!(
        t.contains(&format!("old={}/backend:{}", fx.reg_prefix, tag(2))),
        "{t}"
    );
    assert!(
        t.contains(&format!("new={}/backend:{}", fx.reg_prefix, tag(1))),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "Ferry-Deny: policy=staging/backend tag={}",
            tag(2)
        )),
        "{t}"
    );
    // Rolling back again goes further back, never forward to the denied tag: 1 is the oldest
    // real tag, only the scaffold placeholder is before it.
    let again = fx.ferry(&["rollback", "staging", "backend", "--to", &tag(2)]);
    again.expect_code(0); // tag 2 ran before, so --to accepts it (it is an explicit choice)
    assert_eq!(fx.staging_tag(), tag(2));
    let never = fx.ferry(&[
        "rollback",
        "staging",
        "backend",
        "--to",
        "staging-v9.9.9-0000009-9",
    ]);
    never.expect_code(2);
    assert!(never.stderr.contains("never ran"), "{}", never.stderr);
    fx.ferry(&["rollback", "nope", "backend"]).expect_code(2);
}

/// A promotion commit (crafted with Ferry's promotion trailers) is found and reverted.
#[test]
fn rollback_after_promotion_commit() {
    let Some(fx) = Fixture::new("rb-promo", false) else {
        return;
    };
    let prod = "flux/apps/backend/production/deployment.yaml";
    let p1 = "production-v0.0.1-0000001-2001";
    let p2 = "production-v0.0.2-0000002-2002";
    for (t, msg) in [(p1, "first"), (p2, "second")] {
        let dir = clone(&fx.git, &fx.repo);
        edit_file(dir.path(), prod, |s| {
            let line = s
                .lines()
                .find(|l| l.contains("$imagepolicy"))
                .unwrap()
                .to_string();
            let old_img = line.split_whitespace().nth(1).unwrap().to_string();
            let new_img = format!("{}:{t}", old_img.rsplit_once(':').unwrap().0);
            s.replace(&old_img, &new_img)
        });
        let message = format!(
            "Promote backend {t} to production ({msg})\n\nFerry-Kind: promotion\nFerry-Change: policy=production/backend setter=production:backend old=x new={t}\nFerry-Reason: release {msg}\n"
        );
        git(dir.path(), &["commit", "-qa", "-m", &message]);
        git(dir.path(), &["push", "-q", "origin", "main"]);
    }
    let promo = remote_head(&fx.git, &fx.repo);
    let h = fx.ferry(&["history", "production", "backend", "-o", "json"]);
    h.expect_code(0);
    let rows = h.json();
    let last = rows.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "promotion");
    assert_eq!(last["reason"], "release second");
    assert_eq!(last["commit"], promo.as_str());
    let r = fx.ferry(&["rollback", "production", "backend", "-o", "json"]);
    r.expect_code(0);
    let rep = r.json();
    assert_eq!(rep["reverts"], promo.as_str());
    assert_eq!(rep["method"], "revert");
    let text = remote_file(&fx.git, &fx.repo, prod);
    assert!(text.contains(p1) && !text.contains(p2), "{text}");
}

/// A later human commit next to the marker line makes `git revert` conflict: the previous value
/// is written through the setters and the human's line is kept.
#[test]
fn rollback_with_conflicting_later_commit_uses_setters() {
    let Some(fx) = Fixture::new("rb-conflict", false) else {
        return;
    };
    fx.publish(1);
    fx.reconcile();
    fx.publish(2);
    fx.reconcile();
    let bad = remote_head(&fx.git, &fx.repo);
    fx.human_commit(
        |d| {
            edit_file(d, DEPLOY, |s| {
                let mut out = String::new();
                for l in s.lines() {
                    out.push_str(l);
                    out.push('\n');
                    if l.contains("$imagepolicy") {
                        out.push_str("        imagePullPolicy: IfNotPresent\n");
                    }
                }
                out
            })
        },
        "pull policy",
    );
    let r = fx.ferry(&["rollback", "staging", "backend", "-o", "json"]);
    r.expect_code(0);
    let rep = r.json();
    assert_eq!(rep["method"], "setters");
    assert_eq!(rep["reverts"], bad.as_str());
    assert!(
        rep["method_reason"].as_str().unwrap().contains("conflict"),
        "{rep}"
    );
    let text = remote_file(&fx.git, &fx.repo, DEPLOY);
    assert!(text.contains("imagePullPolicy: IfNotPresent"), "{text}");
    assert_eq!(fx.staging_tag(), tag(1));
    assert!(fx.head_trailers().contains("Ferry-Method: setters"));
}

/// A Flux bot commit from before Ferry (no trailers, the automation's author) is recognised by
/// the marker lines it changed.
#[test]
fn rollback_of_flux_commit_without_trailers() {
    let Some(fx) = Fixture::new("rb-flux", false) else {
        return;
    };
    let mut shas = Vec::new();
    for n in [1, 2] {
        let dir = clone(&fx.git, &fx.repo);
        edit_file(dir.path(), DEPLOY, |s| {
            let line = s
                .lines()
                .find(|l| l.contains("$imagepolicy"))
                .unwrap()
                .to_string();
            let old_img = line.split_whitespace().nth(1).unwrap().to_string();
            s.replace(
                &old_img,
                &format!("{}:{}", old_img.rsplit_once(':').unwrap().0, tag(n)),
            )
        });
        let out = common::git_cmd(
            dir.path(),
            &["commit", "-qam", "Update from image update automation"],
        )
        .env("GIT_AUTHOR_NAME", "fluxcdbot")
        .env("GIT_AUTHOR_EMAIL", "ferry@localhost")
        .output()
        .unwrap();
        assert!(out.status.success());
        git(dir.path(), &["push", "-q", "origin", "main"]);
        shas.push(git(dir.path(), &["rev-parse", "HEAD"]));
    }
    let h = fx.ferry(&["history", "staging", "backend", "-o", "json"]);
    h.expect_code(0);
    let rows = h.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.last().unwrap()["kind"], "automation");
    assert_eq!(
        rows.last().unwrap()["author"],
        "fluxcdbot <ferry@localhost>"
    );
    let r = fx.ferry(&["rollback", "staging", "backend", "-o", "json"]);
    r.expect_code(0);
    let rep = r.json();
    assert_eq!(rep["reverts"], shas[1].as_str());
    assert_eq!(rep["method"], "revert");
    assert_eq!(fx.staging_tag(), tag(1));
}

/// A human pushes between Ferry's checkout and its push (test hook): the push is rejected,
/// recomputed on the new tip, and the human commit is kept. Over http.
#[test]
fn concurrent_human_push_during_rollback_is_kept() {
    let Some(fx) = Fixture::new("rb-race", true) else {
        return;
    };
    fx.publish(1);
    fx.reconcile();
    fx.publish(2);
    fx.reconcile();
    let human = tempfile::tempdir().unwrap();
    git(
        human.path(),
        &["clone", "-q", "-b", "main", &fx.git.file(&fx.repo), "."],
    );
    let script = format!(
        "[ \"$FERRY_TEST_ATTEMPT\" = 1 ] || exit 0; cd '{}' && echo hi >> NOTES.md && git add NOTES.md && git -c user.name=human -c user.email=h@example.invalid commit -qm 'human note' && git push -q origin main",
        human.path().display()
    );
    let src = fx.source();
    let state = fx.ws.state_str();
    let mut args = vec![
        "rollback", "staging", "backend", "-o", "json", "--state", &state,
    ];
    args.extend(src.iter().map(String::as_str));
    let mut cmd = common::command(&args);
    cmd.env("FERRY_TEST_BEFORE_PUSH", &script)
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    let child = cmd.spawn().unwrap();
    let r = common::wait_with_timeout(child, common::RUN_TIMEOUT, vec![]);
    r.expect_code(0);
    let rep = r.json();
    assert_eq!(rep["attempts"], 2, "{rep}");
    let subjects = remote_log(&fx.git, &fx.repo, "%s");
    let mut lines = subjects.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("Roll back staging/backend"),
        "{subjects}"
    );
    assert_eq!(lines.next().unwrap(), "human note", "{subjects}");
    assert_eq!(remote_file(&fx.git, &fx.repo, "NOTES.md"), "hi");
    assert_eq!(fx.staging_tag(), tag(1));
}

/// `ferry hold` pins the current version against newer tags; `unhold` lets it move.
#[test]
fn hold_and_unhold_by_hand() {
    let Some(fx) = Fixture::new("rb-hold", false) else {
        return;
    };
    fx.publish(1);
    fx.reconcile();
    fx.ferry(&[
        "hold", "staging", "backend", "--reason", "freeze", "--by", "dave",
    ])
    .expect_code(0);
    assert!(fx.head_trailers().contains("Ferry-Kind: hold"));
    // Holding twice changes nothing.
    let again = fx.ferry(&["hold", "staging", "backend", "--by", "dave"]);
    again.expect_code(0);
    assert!(again.stdout.contains("already held"), "{}", again.stdout);
    fx.publish(2);
    fx.reconcile();
    assert_eq!(fx.staging_tag(), tag(1));
    let table = fx.ws.ferry(&["get", "images", "policy", "-n", "staging"]);
    assert!(table.stdout.contains("HOLD"), "{}", table.stdout);
    assert!(table.stdout.contains("by dave: freeze"), "{}", table.stdout);
    fx.ferry(&["unhold", "staging", "backend"]).expect_code(0);
    fx.reconcile();
    assert_eq!(fx.staging_tag(), tag(2));
    let none = fx.ferry(&["unhold", "staging", "backend"]);
    none.expect_code(0);
    assert!(none.stdout.contains("not held"), "{}", none.stdout);
}
