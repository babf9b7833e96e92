//! Fault injection (issue 12): `scan`, `reconcile`, `promote` and `rollback` against the real
//! registry and the real git http server, each behind a fault proxy (`ferry_testbed::faults`).
//!
//! Under every fault a command either succeeds after bounded retries or exits 1 with an error
//! naming the host, within its timeout (short ones here: `spec.timeout` of the objects and the
//! `--registry-*` flags, no sleeps). It never writes a wrong tag, never leaves a partial commit,
//! and a clean rerun through the same address always finishes the job exactly once (Git
//! contents and registry digests are checked after the fault and after the rerun).

use std::time::{Duration, Instant};

use crate::common::*;
use ferry_testbed::faults::{Fault, FaultProxy, Rule};
use ferry_testbed::git::{GitEnv, git_servers};
use ferry_testbed::registry::{Auth, RegistryEnv, registry};

/// Fast registry retries for tests (the defaults are 200ms backoff and a 30s Retry-After cap).
const FAST: &[&str] = &[
    "--registry-backoff",
    "10ms",
    "--registry-retry-after-max",
    "100ms",
];
/// Every command here must end well within this (the objects' timeouts are 3-4 s).
const BOUND: Duration = Duration::from_secs(40);
const IMAGE_REPOS: &[&str] = &[
    "flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml",
    "flux/bootstrap/infrastructure/image-automation/frontend-image-repo.yaml",
];
const GIT_REPO: &str = "flux/bootstrap/infrastructure/image-automation/git-repository.yaml";
const STAGING_DEPLOY: &str = "flux/apps/backend/staging/deployment.yaml";
const PROD_DEPLOY: &str = "flux/apps/backend/production/deployment.yaml";
/// A second staging build of backend, deployed by hand (rollback goes back from it to
/// [`NEW_STAGING`]).
const STAGING2: &str = "staging-v0.0.2-c3d4e5f-1738870000";

/// What a command must do under a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Succeed after retries.
    Ok,
    /// Exit 1 with an error naming the host and containing this text.
    Fail(&'static str),
    /// Either; the invariants and the rerun decide.
    Either,
}

/// Which proxy a case faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Registry,
    Git,
}

struct Case {
    name: &'static str,
    side: Side,
    rule: Rule,
    expect: Expect,
}

fn case(name: &'static str, side: Side, rule: Rule, expect: Expect) -> Case {
    Case {
        name,
        side,
        rule,
        expect,
    }
}

/// The six faults on a registry read path (tag lists or manifests).
fn registry_read_cases(path: &str) -> Vec<Case> {
    use Expect::*;
    use Side::Registry as R;
    let slow = Fault::SlowBody { bytes_per_sec: 1 };
    let storm = Fault::TooManyRequests { retry_after: 30 };
    vec![
        case(
            "reset mid-body, twice",
            R,
            Rule::new(path, Fault::ResetMidBody).times(2),
            Ok,
        ),
        case(
            "reset mid-body, always",
            R,
            Rule::new(path, Fault::ResetMidBody),
            Fail("connection"),
        ),
        case(
            "body at 1 byte/s",
            R,
            Rule::new(path, slow),
            Fail("3s (spec.timeout)"),
        ),
        case(
            "truncated JSON",
            R,
            Rule::new(path, Fault::Truncated),
            Fail("JSON"),
        ),
        case(
            "429 storm, Retry-After 30",
            R,
            Rule::new(path, storm.clone()).times(3),
            Ok,
        ),
        case("429 forever", R, Rule::new(path, storm), Fail("HTTP 429")),
        case(
            "503 burst",
            R,
            Rule::new(path, Fault::Status(503)).times(3),
            Ok,
        ),
        case(
            "502 forever",
            R,
            Rule::new(path, Fault::Status(502)),
            Fail("HTTP 502"),
        ),
        case(
            "accepts, never answers",
            R,
            Rule::new(path, Fault::Hang),
            Fail("3s (spec.timeout)"),
        ),
    ]
}

/// The six faults on the git http server: fetch (`info/refs`, `git-upload-pack`) and push
/// (`git-receive-pack`, whose POST reaches the server before the answer breaks).
fn git_cases() -> Vec<Case> {
    use Expect::*;
    use Side::Git as G;
    let refs = "/info/refs?service=git-upload-pack";
    vec![
        case(
            "git: reset mid-body on the push answer",
            G,
            Rule::new("/git-receive-pack", Fault::ResetMidBody).times(1),
            Either,
        ),
        case(
            "git: fetch body at 1 byte/s",
            G,
            Rule::new("/git-upload-pack", Fault::SlowBody { bytes_per_sec: 1 }),
            Fail(""),
        ),
        case(
            "git: truncated ref advertisement",
            G,
            Rule::new(refs, Fault::Truncated),
            Fail(""),
        ),
        case(
            "git: 429 on push",
            G,
            Rule::new(
                "/git-receive-pack",
                Fault::TooManyRequests { retry_after: 1 },
            )
            .times(1),
            Either,
        ),
        case(
            "git: 503 burst on fetch",
            G,
            Rule::new(refs, Fault::Status(503)).times(2),
            Either,
        ),
        case(
            "git: push never answered",
            G,
            Rule::new("/git-receive-pack", Fault::Hang),
            Fail(""),
        ),
    ]
}

/// Images shared by the cases of one test, under a unique organisation.
struct Images {
    reg: RegistryEnv,
    git: GitEnv,
    org: String,
    /// The registry proxy; every object names images through it.
    rp: FaultProxy,
    /// The git http proxy; every GitRepository points through it.
    gp: FaultProxy,
}

impl Images {
    fn new(prefix: &str) -> Option<Images> {
        let reg = registry(Auth::None, false)?;
        let git = git_servers()?;
        let org = unique(prefix);
        for app in ["backend", "frontend"] {
            for tag in SEED_PUBLISH {
                push(&reg, &format!("{org}/{app}"), tag);
            }
        }
        let rp = FaultProxy::start(&reg.host).unwrap();
        let git_host = authority(&git.http_url);
        let gp = FaultProxy::start(&git_host).unwrap();
        Some(Images {
            reg,
            git,
            org,
            rp,
            gp,
        })
    }

    /// A new GitOps repo (`ferry init`, short timeouts) and workspace: a [`Seed`] whose images
    /// and GitRepository go through the proxies.
    fn seed(&self, prefix: &str) -> Seed {
        let ws = Workspace::new();
        let image_registry = format!("{}/{}", self.rp.host, self.org);
        let repo = self.git.new_repo(prefix, false).unwrap();
        let url = self
            .git
            .http(&repo)
            .replace(&authority(&self.git.http_url), &self.gp.host);
        let tree = ws.join("seed");
        init_seed(
            &tree,
            &image_registry,
            &url,
            &["--git-secret", "git-credentials"],
        );
        for f in IMAGE_REPOS {
            add_to_spec(&tree.join(f), "  timeout: 3s\n");
        }
        add_to_spec(&tree.join(GIT_REPO), "  timeout: 4s\n");
        let initial = snapshot(&tree);
        push_tree(&self.git, &repo, &tree);
        ws.secret(
            "flux-system",
            "git-credentials",
            &[
                ("username", self.git.user.as_bytes()),
                ("password", self.git.password.as_bytes()),
            ],
        );
        Seed {
            ws,
            repo,
            image_registry,
            initial,
            git: self.git.clone(),
        }
    }

    fn set(&self, c: &Case) {
        self.clear();
        match c.side {
            Side::Registry => self.rp.set_rules(vec![c.rule.clone()]),
            Side::Git => self.gp.set_rules(vec![c.rule.clone()]),
        }
    }

    fn clear(&self) {
        self.rp.clear();
        self.gp.clear();
    }

    fn host(&self, side: Side) -> &str {
        match side {
            Side::Registry => &self.rp.host,
            Side::Git => &self.gp.host,
        }
    }
}

/// `host:port` of an `http://host:port/...` URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Inserts `line` right after the `spec:` line of a one-document YAML file.
fn add_to_spec(path: &std::path::Path, line: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("\nspec:\n"), "{}", path.display());
    std::fs::write(
        path,
        text.replacen("\nspec:\n", &format!("\nspec:\n{line}"), 1),
    )
    .unwrap();
}

/// Runs `ferry <cmd> <seed flags> [extra] --registry-* fast` and times it.
fn run(seed: &Seed, cmd: &[&str], extra: &[&str]) -> (Run, Duration) {
    let flags = seed.flags();
    let mut args: Vec<&str> = cmd.to_vec();
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(extra);
    args.extend_from_slice(FAST);
    let start = Instant::now();
    let r = seed.ws.ferry(&args);
    (r, start.elapsed())
}

/// Checks the fault run's exit against the case: success codes, or exit 1 with a one-line
/// error naming the faulted host; never a crash, never past the bound.
#[track_caller]
fn check_exit(c: &Case, images: &Images, r: &Run, took: Duration, ok_codes: &[i32]) -> bool {
    assert!(took < BOUND, "{}: took {took:?}\n{}", c.name, r.all());
    let code = r.code.unwrap_or(-1);
    let ok = ok_codes.contains(&code);
    match c.expect {
        Expect::Ok => assert!(ok, "{}: expected success\n{}", c.name, r.all()),
        Expect::Fail(_) => assert_eq!(code, 1, "{}: expected exit 1\n{}", c.name, r.all()),
        Expect::Either => assert!(ok || code == 1, "{}: exit {code}\n{}", c.name, r.all()),
    }
    if code == 1 {
        let host = images.host(c.side);
        assert!(
            r.all().contains(host),
            "{}: error does not name {host}:\n{}",
            c.name,
            r.all()
        );
    }
    if let Expect::Fail(text) = c.expect {
        assert!(
            r.all().contains(text),
            "{}: error lacks {text:?}:\n{}",
            c.name,
            r.all()
        );
    }
    let said = r
        .stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    eprintln!("case {:?}: exit {code} in {took:.2?}: {said}", c.name);
    ok
}

/// The commits of `kind` (their trailers) on the remote's main.
fn commits_of_kind(seed: &Seed, kind: &str) -> usize {
    remote_log(&seed.git, &seed.repo, "%(trailers:only,unfold)%x01")
        .split('\u{1}')
        .filter(|c| c.contains(&format!("Ferry-Kind: {kind}")))
        .count()
}

/// Every marked file of the seed is byte-for-byte either as `ferry init` wrote it or as the
/// automation must write it: no wrong tag, no half-edited file.
#[track_caller]
fn assert_no_wrong_tag(seed: &Seed, what: &str) {
    for app_file in [
        "flux/apps/backend/{env}/deployment.yaml",
        "flux/apps/frontend/overlays/{env}/kustomization.yaml",
    ] {
        for (env, from, to) in [
            ("develop", PLACEHOLDER_DEVELOP, NEW_DEVELOP),
            ("staging", PLACEHOLDER_STAGING, NEW_STAGING),
        ] {
            let path = app_file.replace("{env}", env);
            let got = remote_file(&seed.git, &seed.repo, &path);
            let before = String::from_utf8_lossy(&seed.initial[&path]).into_owned();
            let after = seed.expected(&path, from, to);
            assert!(
                got.trim_end() == before.trim_end() || got.trim_end() == after.trim_end(),
                "{what}: {path} is neither the old nor the new content:\n{got}"
            );
        }
    }
}

#[test]
fn scan_under_each_registry_fault() {
    let Some(images) = Images::new("fault-scan") else {
        return;
    };
    let seed = images.seed("fault-scan");
    let want = format!("{}/backend:{NEW_DEVELOP}", seed.image_registry);
    for c in registry_read_cases("/tags/list") {
        let _ = std::fs::remove_file(seed.ws.state());
        images.set(&c);
        let (r, took) = run(&seed, &["scan"], &[]);
        let ok = check_exit(&c, &images, &r, took, &[0]);
        // Never a wrong latest tag: the right one, or none.
        let latest = seed.ws.latest("develop", "backend");
        if ok {
            assert_eq!(latest.as_deref(), Some(want.as_str()), "{}", c.name);
        } else {
            assert!(latest.is_none(), "{}: {latest:?}", c.name);
        }
        images.clear();
        run(&seed, &["scan"], &[]).0.expect_code(0);
        assert_eq!(
            seed.ws.latest("develop", "backend").as_deref(),
            Some(want.as_str())
        );
    }
}

fn reconcile_case(images: &Images, c: &Case) {
    let seed = images.seed("fault-rec");
    let head0 = remote_head(&seed.git, &seed.repo);
    images.set(c);
    let (r, took) = run(&seed, &["reconcile"], &[]);
    let ok = check_exit(c, images, &r, took, &[3]);
    if c.side == Side::Git && matches!(c.rule.fault, Fault::Hang | Fault::SlowBody { .. }) {
        // One timeout per pass, not one per automation (6 here): after the first request that
        // timed out, the pass sends that remote nothing more.
        assert_eq!(
            images.gp.hits(0),
            1,
            "{}: every automation waited on the silent remote",
            c.name
        );
    }
    assert_no_wrong_tag(&seed, c.name);
    if !ok && c.side == Side::Registry {
        // A failed scan writes nothing at all.
        assert_eq!(remote_head(&seed.git, &seed.repo), head0, "{}", c.name);
    }
    assert!(commits_of_kind(&seed, "automation") <= 4, "{}", c.name);
    images.clear();
    let (again, _) = run(&seed, &["reconcile"], &[]);
    assert!(
        matches!(again.code, Some(0 | 3)),
        "{}: rerun\n{}",
        c.name,
        again.all()
    );
    seed.assert_develop_and_staging_updated();
    assert_eq!(
        commits_of_kind(&seed, "automation"),
        4,
        "{}: commits lost or doubled",
        c.name
    );
    let (third, _) = run(&seed, &["reconcile"], &[]);
    third.expect_code(0);
}

#[test]
fn reconcile_under_each_registry_fault() {
    let Some(images) = Images::new("fault-rec") else {
        return;
    };
    for c in registry_read_cases("/tags/list") {
        reconcile_case(&images, &c);
    }
}

#[test]
fn reconcile_under_each_git_fault() {
    let Some(images) = Images::new("fault-recgit") else {
        return;
    };
    for c in git_cases() {
        reconcile_case(&images, &c);
    }
}

/// A seed whose staging runs [`NEW_STAGING`] (reconciled cleanly).
fn deployed(images: &Images, prefix: &str) -> Seed {
    let seed = images.seed(prefix);
    let (r, _) = run(&seed, &["reconcile"], &[]);
    assert!(matches!(r.code, Some(3)), "{}", r.all());
    seed
}

/// The digest of `org/backend:tag` on the real registry.
fn digest(images: &Images, tag: &str) -> String {
    skopeo_digest(&images.reg, &format!("{}/backend", images.org), tag)
}

/// Production tags of backend (`production-v*`) and their digests.
fn production_tags(images: &Images) -> Vec<(String, String)> {
    let image = format!("{}/{}/backend", images.reg.host, images.org);
    let out = images
        .reg
        .skopeo("list-tags", &[&format!("docker://{image}")]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        // Not the placeholder the seed publishes (production-v0.0.0-...).
        .filter(|t| t.starts_with("production-v") && !t.starts_with("production-v0.0.0-"))
        .map(|t| (t.to_string(), digest(images, t)))
        .collect()
}

fn promote_case(c: &Case) {
    // Each case promotes the same staging build into a fresh organisation.
    let Some(images) = Images::new("fault-pro") else {
        return;
    };
    let seed = deployed(&images, "fault-pro");
    let source = digest(&images, NEW_STAGING);
    images.set(c);
    let promote = ["promote", "backend", "--to", "production", "--by", "ci"];
    let (r, took) = run(&seed, &promote, &[]);
    check_exit(c, &images, &r, took, &[0]);
    // Whatever was written carries the staging digest; at most one promotion commit.
    for (tag, d) in production_tags(&images) {
        assert_eq!(d, source, "{}: {tag} has another digest", c.name);
    }
    assert!(commits_of_kind(&seed, "promotion") <= 1, "{}", c.name);
    images.clear();
    let (again, _) = run(&seed, &promote, &[]);
    again.expect_code(0);
    assert_eq!(
        commits_of_kind(&seed, "promotion"),
        1,
        "{}: promotion lost or doubled",
        c.name
    );
    let prod = remote_file(&seed.git, &seed.repo, PROD_DEPLOY);
    let tags = production_tags(&images);
    assert!(
        tags.iter().any(|(t, _)| prod.contains(t.as_str())),
        "{}: production runs none of {tags:?}:\n{prod}",
        c.name
    );
    assert_eq!(digest(&images, "production"), source, "{}", c.name);
}

/// The registry faults on the promotion's writes (manifest PUTs; a reset after the PUT reached
/// the registry) and reads, and the git faults on its release commit.
#[test]
fn promote_under_each_fault() {
    use Expect::*;
    use Side::Registry as R;
    let put = |f: Fault| Rule::new("/manifests/production", f).method("PUT");
    let cases = [
        case(
            "PUT answer reset mid-body",
            R,
            put(Fault::ResetMidBody).times(1),
            Either,
        ),
        case("PUT 503 burst", R, put(Fault::Status(503)).times(2), Ok),
        case(
            "PUT 500 forever",
            R,
            put(Fault::Status(500)),
            Fail("HTTP 500"),
        ),
        case(
            "PUT 429 storm",
            R,
            put(Fault::TooManyRequests { retry_after: 30 }).times(3),
            Ok,
        ),
        case("PUT never answered", R, put(Fault::Hang), Fail("")),
        case(
            "manifest GET truncated",
            R,
            Rule::new("/manifests/", Fault::Truncated).method("GET"),
            Fail(""),
        ),
        case(
            "manifest GET at 1 byte/s",
            R,
            Rule::new("/manifests/", Fault::SlowBody { bytes_per_sec: 1 }).method("GET"),
            Fail(""),
        ),
    ];
    for c in cases.iter().chain(git_cases().iter()) {
        promote_case(c);
    }
}

fn rollback_case(images: &Images, c: &Case) {
    let seed = deployed(images, "fault-rb");
    seed.human_edit(
        STAGING_DEPLOY,
        |t| t.replace(NEW_STAGING, STAGING2),
        "deploy staging build 2",
    );
    let rollback = [
        "rollback",
        "staging",
        "backend",
        "--to",
        NEW_STAGING,
        "--by",
        "ops",
    ];
    images.set(c);
    let (r, took) = run(&seed, &rollback, &[]);
    check_exit(c, images, &r, took, &[0]);
    let now = remote_file(&seed.git, &seed.repo, STAGING_DEPLOY);
    assert!(
        now.contains(NEW_STAGING) || now.contains(STAGING2),
        "{}:\n{now}",
        c.name
    );
    assert!(commits_of_kind(&seed, "rollback") <= 1, "{}", c.name);
    images.clear();
    let (again, _) = run(&seed, &rollback, &[]);
    if commits_of_kind(&seed, "rollback") == 1 && again.code == Some(2) {
        // The fault run's push landed though its answer was lost: the rerun says so.
        assert!(
            again.stderr.contains("held since"),
            "{}: {}",
            c.name,
            again.stderr
        );
    } else {
        again.expect_code(0);
    }
    assert!(remote_file(&seed.git, &seed.repo, STAGING_DEPLOY).contains(NEW_STAGING));
    assert_eq!(
        commits_of_kind(&seed, "rollback"),
        1,
        "{}: rollback lost or doubled",
        c.name
    );
    // The next reconcile keeps what the rollback wrote.
    let (next, _) = run(&seed, &["reconcile"], &[]);
    assert!(matches!(next.code, Some(0 | 3)), "{}", next.all());
    assert!(remote_file(&seed.git, &seed.repo, STAGING_DEPLOY).contains(NEW_STAGING));
}

#[test]
fn rollback_under_each_fault() {
    let Some(images) = Images::new("fault-rb") else {
        return;
    };
    let mut cases = git_cases();
    // Rollback works from Git evidence alone: a silent registry does not hold it up.
    cases.push(case(
        "registry never answers",
        Side::Registry,
        Rule::new("/v2/", Fault::Hang),
        Expect::Ok,
    ));
    for c in &cases {
        rollback_case(&images, c);
    }
}
