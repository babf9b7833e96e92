//! `ferry publish` / `promote` / `approve` / `version` end to end: the real binary against a real
//! registry (docker-registry from the test bed) and a real git repository, laid out by `ferry
//! init` like the seed. Digests are checked with `skopeo inspect --raw`.

use std::path::PathBuf;
use std::process::{Command, Output};

use ferry_testbed::git::{GitEnv, git_servers};
use ferry_testbed::registry::{Auth, RegistryEnv, registry, unique_repo};

const SHA: &str = "a1b2c3d4e5f60718";
const SHA7: &str = "a1b2c3d";
const STAGING_TAG: &str = "staging-v0.0.1-a1b2c3d-1738860123";

struct Setup {
    reg: RegistryEnv,
    git: GitEnv,
    dir: tempfile::TempDir,
    /// `127.0.0.1:P/<unique>`: images are `<prefix>/backend`.
    prefix: String,
    repo_path: String,
    url: String,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What to change in the scaffold before the first commit.
#[derive(Default)]
struct Options {
    /// Extra YAML under flux/ (file name, content).
    extra: Vec<(&'static str, String)>,
    /// Production pulls from `<prefix>/prod/backend` (cross-repository promotion).
    cross_repo: bool,
    /// `.dockerconfigjson` Secret `flux-system/regcred` for the registry.
    secret: bool,
    /// Production pulls from `<other registry>/<unique>/prod/backend`, another registry process
    /// with its own storage (cross-registry promotion), with Secrets `flux-system/prodcred`
    /// (credentials) and `flux-system/prodca` (CA) when that registry needs them.
    other_registry: Option<RegistryEnv>,
    /// Also lay out `frontend` (a kustomize base plus overlays), as the seed does.
    frontend: bool,
    /// The GitOps repository over git:// (the daemon logs every fetch), not file://.
    daemon: bool,
}

impl Setup {
    fn new(auth: Auth, opts: Options) -> Option<Setup> {
        let reg = registry(auth, false)?;
        let git = git_servers()?;
        let dir = tempfile::tempdir().unwrap();
        let repo_path = unique_repo("promote");
        let prefix = format!("{}/{repo_path}", reg.host);
        let bare = git.new_repo("promote", false).unwrap();
        let url = if opts.daemon {
            git.daemon(&bare)
        } else {
            git.file(&bare)
        };
        let gitops = dir.path().join("gitops");
        let mut init = vec![
            "init".to_string(),
            gitops.display().to_string(),
            "--app".into(),
            "backend".into(),
            "--registry".into(),
            prefix.clone(),
            "--git-url".into(),
            url.clone(),
        ];
        if opts.frontend {
            init.extend(["--app".to_string(), "frontend".to_string()]);
        }
        if opts.secret {
            init.extend(["--registry-secret".to_string(), "regcred".to_string()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(&init)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let infra = gitops.join("flux/bootstrap/infrastructure/image-automation");
        // The seed is a Flux repo: a new file is an object once a kustomization lists it.
        let include = |name: &str| {
            let k = infra.join("kustomization.yaml");
            let text = std::fs::read_to_string(&k).unwrap();
            std::fs::write(&k, format!("{text}- {name}\n")).unwrap();
        };
        for (name, content) in &opts.extra {
            std::fs::write(infra.join(name), content).unwrap();
            include(name);
        }
        if opts.cross_repo || opts.other_registry.is_some() {
            let repo = std::fs::read_to_string(infra.join("backend-image-repo.yaml")).unwrap();
            let target = match &opts.other_registry {
                None => "${image_registry}/prod/backend".to_string(),
                Some(other) => {
                    let mut image = format!("{}/{repo_path}/prod/backend", other.host);
                    if let (Some(user), Some(pass)) = (&other.user, &other.password) {
                        write_docker_config(dir.path(), "prodcred", &other.host, user, pass);
                        image.push_str("\n  secretRef:\n    name: prodcred");
                    }
                    if let Some(ca) = other.ca_pem() {
                        let sdir = dir.path().join("secrets/flux-system/prodca");
                        std::fs::create_dir_all(&sdir).unwrap();
                        std::fs::write(sdir.join("ca.crt"), ca).unwrap();
                        image.push_str("\n  certSecretRef:\n    name: prodca");
                    }
                    image
                }
            };
            let prod = repo
                .replace("name: backend\n", "name: backend-prod\n")
                .replace("${image_registry}/backend", &target);
            std::fs::write(infra.join("backend-prod-image-repo.yaml"), prod).unwrap();
            include("backend-prod-image-repo.yaml");
            let pol = gitops.join("flux/apps/backend/production/image-policy.yaml");
            let p = std::fs::read_to_string(&pol).unwrap();
            std::fs::write(
                &pol,
                p.replacen("    name: backend\n", "    name: backend-prod\n", 1),
            )
            .unwrap();
        }
        if opts.secret {
            let user = reg.user.clone().unwrap();
            let pass = reg.password.clone().unwrap();
            write_docker_config(dir.path(), "regcred", &reg.host, &user, &pass);
        }
        git.git(&gitops, &["init", "-q", "-b", "main"]).unwrap();
        git.git(&gitops, &["add", "-A"]).unwrap();
        git.git(&gitops, &["commit", "-qm", "scaffold"]).unwrap();
        git.git(&gitops, &["push", "-q", &url, "main"]).unwrap();
        Some(Setup {
            reg,
            git,
            dir,
            prefix,
            repo_path,
            url,
        })
    }

    fn image(&self) -> String {
        format!("{}/backend", self.prefix)
    }

    fn common(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--repo".into(),
            self.url.clone(),
            "--path".into(),
            "flux".into(),
            "--var".into(),
            format!("image_registry={}", self.prefix),
            "--state".into(),
            d.join("state.db").display().to_string(),
            "--cache-dir".into(),
            d.join("cache").display().to_string(),
            "--secrets-dir".into(),
            d.join("secrets").display().to_string(),
        ]
    }

    fn ferry_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.args(args).args(self.common()).env_remove("FERRY_LOG");
        // No ambient docker credentials.
        cmd.env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn ferry(&self, args: &[&str]) -> Output {
        self.ferry_env(args, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ferry(args);
        assert!(
            out.status.success(),
            "ferry {args:?} failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Pushes a build, publishes it for staging and lets staging's automation deploy it.
    fn build_and_deploy_staging(&self, index: bool) -> String {
        let digest = if index {
            self.reg
                .push_index(&format!("{}/backend", self.repo_path), "build1")
        } else {
            self.reg.push_image_with(
                &format!("{}/backend", self.repo_path),
                "build1",
                "backend build 1",
            )
        };
        self.ok(&[
            "publish",
            &format!("{}:build1", self.image()),
            "--env",
            "staging",
            "--version",
            "0.0.1",
            "--sha",
            SHA,
            "--timestamp",
            "1738860123",
        ]);
        // Exit 1 is expected: production has no production-* tag before the first promotion.
        let out = self.ferry(&["reconcile"]);
        assert!(
            matches!(out.status.code(), Some(1 | 3)),
            "{}",
            text(&out.stderr)
        );
        assert!(
            self.file("flux/apps/backend/staging/deployment.yaml")
                .contains(STAGING_TAG)
        );
        digest
    }

    /// Raw-manifest digest of `image:tag`, as skopeo sees it.
    fn raw_digest(&self, reference: &str) -> String {
        raw_digest_on(&self.reg, reference)
    }

    fn tags(&self, image: &str) -> Vec<String> {
        tags_on(&self.reg, image)
    }

    fn clone_dir(&self) -> PathBuf {
        let d = self.dir.path().join(format!("check-{}", rand_suffix()));
        let out = Command::new("git")
            .args(["clone", "-q", "-b", "main", &self.url])
            .arg(&d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        d
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.clone_dir().join(rel)).unwrap_or_default()
    }

    /// Trailer values of every commit of `kind`, newest first.
    fn commits_of_kind(&self, kind: &str) -> Vec<String> {
        let d = self.clone_dir();
        let log = self
            .git
            .git(&d, &["log", "--format=%H%x00%(trailers:only,unfold)%x01"])
            .unwrap();
        log.split('\u{1}')
            .filter(|c| c.contains(&format!("Ferry-Kind: {kind}")))
            .map(|c| c.trim().to_string())
            .collect()
    }

    fn bare_repo(&self) -> PathBuf {
        PathBuf::from(self.url.trim_start_matches("file://"))
    }
}

/// Raw-manifest digest of `reference` on `reg`, as skopeo sees it.
fn raw_digest_on(reg: &RegistryEnv, reference: &str) -> String {
    let raw = reg.skopeo("inspect", &["--raw", &format!("docker://{reference}")]);
    ferry_registry::sha256_digest(raw.as_bytes())
}

/// Tags of `image` on `reg`, as `skopeo list-tags` reports them.
fn tags_on(reg: &RegistryEnv, image: &str) -> Vec<String> {
    let out = reg.skopeo("list-tags", &[&format!("docker://{image}")]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// A `.dockerconfigjson` Secret `flux-system/<name>` under the test's secrets dir.
fn write_docker_config(dir: &std::path::Path, name: &str, host: &str, user: &str, pass: &str) {
    let sdir = dir.join("secrets/flux-system").join(name);
    std::fs::create_dir_all(&sdir).unwrap();
    let auth = base64_encode(format!("{user}:{pass}").as_bytes());
    std::fs::write(
        sdir.join(".dockerconfigjson"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn production_immutable(tags: &[String]) -> Vec<&String> {
    tags.iter()
        .filter(|t| t.starts_with("production-v"))
        .collect()
}

fn pipeline(gates: &str) -> String {
    format!(
        "apiVersion: ferry.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: backend\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: backend\n  stages:\n  - name: develop\n    namespace: develop\n    policy: backend\n  - name: staging\n    namespace: staging\n    policy: backend\n  - name: production\n    namespace: production\n    policy: backend\n    gates:\n{gates}"
    )
}

#[test]
fn publish_then_promote_same_repo_keeps_the_digest_and_records_the_release() {
    let Some(s) = Setup::new(Auth::None, Options::default()) else {
        return;
    };
    let digest = s.build_and_deploy_staging(false);
    let img = s.image();
    for tag in ["build1", STAGING_TAG, "staging", SHA7] {
        assert_eq!(s.raw_digest(&format!("{img}:{tag}")), digest, "{tag}");
    }
    assert!(s.ok(&["version", "backend"]).contains("next:    0.0.1"));

    // Dry run: prints the requests and the Git change, writes nothing.
    let dry = s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--dry-run",
        "--by",
        "alice",
    ]);
    assert!(dry.contains("(would) PUT"), "{dry}");
    assert!(dry.contains("Ferry-Kind: promotion"), "{dry}");
    assert!(production_immutable(&s.tags(&img)).is_empty());
    assert!(s.commits_of_kind("promotion").is_empty());

    let out = s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "alice",
        "--timestamp",
        "1738861000",
    ]);
    let prod = "production-v0.0.1-a1b2c3d-1738861000";
    assert!(
        out.contains(&format!("production will run: {img}:{prod}@{digest}")),
        "{out}"
    );
    for tag in [prod, "production"] {
        assert_eq!(s.raw_digest(&format!("{img}:{tag}")), digest, "{tag}");
    }
    let commits = s.commits_of_kind("promotion");
    assert_eq!(commits.len(), 1);
    for t in [
        "Ferry-App: backend",
        "Ferry-Env: production",
        "Ferry-Version: 0.0.1",
        &format!("Ferry-Digest: {digest}"),
        &format!("Ferry-Source-Tag: {STAGING_TAG}"),
        &format!("Ferry-Target-Tag: {prod}"),
        "Ferry-Target-Tag: production",
        "Ferry-Next-Version: 0.0.2",
    ] {
        assert!(commits[0].contains(t), "missing {t} in {}", commits[0]);
    }
    let record = s.file(&format!("releases/backend/production/{prod}.yaml"));
    assert!(
        record.contains(&format!("digest: \"{digest}\"")),
        "{record}"
    );
    assert!(record.contains("promotedBy: \"alice\""));
    assert_eq!(s.file("releases/backend/VERSION"), "0.0.2\n");
    // The production automation ran right away: Git already points production at the tag.
    assert!(
        s.file("flux/apps/backend/production/deployment.yaml")
            .contains(prod)
    );
    let v = s.ok(&["version", "backend"]);
    assert!(
        v.contains("current: 0.0.1") && v.contains("next:    0.0.2"),
        "{v}"
    );
    assert_eq!(s.ok(&["version", "backend", "--next"]).trim(), "0.0.2");

    // Idempotent: a second run changes nothing and adds no tag or commit.
    let again = s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "alice",
        "--tag",
        STAGING_TAG,
    ]);
    assert!(again.contains("already present"), "{again}");
    assert_eq!(production_immutable(&s.tags(&img)).len(), 1);
    assert_eq!(s.commits_of_kind("promotion").len(), 1);

    // The next build publishes with the bumped version by default.
    s.reg.push_image_with(
        &format!("{}/backend", s.repo_path),
        "build2",
        "backend build 2",
    );
    let out = s.ok(&[
        "publish",
        &format!("{img}:build2"),
        "--env",
        "staging",
        "--sha",
        "bbbbbbb1",
        "--timestamp",
        "1738870000",
    ]);
    assert!(out.contains("staging-v0.0.2-bbbbbbb-1738870000"), "{out}");
}

/// Issue 14: a promotion fetches the target repository at most twice (here: the clone that
/// loads the objects, and one fetch shared by the gates, the release commit and the target's
/// automation), counted in the git daemon's log.
#[test]
fn a_promotion_fetches_the_target_repository_at_most_twice() {
    let opts = Options {
        daemon: true,
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    s.build_and_deploy_staging(false);
    let repo = s.url.rsplit('/').next().unwrap().to_string();
    let before = s.git.daemon_fetches(&repo);
    s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "alice",
        "--timestamp",
        "1738861000",
    ]);
    let fetches = s.git.daemon_fetches(&repo) - before;
    eprintln!("promote: {fetches} fetches");
    assert!(fetches <= 2, "{fetches} fetches of {repo}");
    assert_eq!(s.commits_of_kind("promotion").len(), 1);
    // The production automation ran in the same pass.
    assert!(
        s.file("flux/apps/backend/production/deployment.yaml")
            .contains("production-v0.0.1-a1b2c3d-1738861000")
    );
}

/// Issue 14, defect 3: with one automation per app in each environment (none has a
/// `policySelector`), promoting `frontend` writes through, reports and runs the `frontend`
/// automation, never `backend`'s.
#[test]
fn promoting_the_second_app_uses_its_own_automation() {
    let opts = Options {
        frontend: true,
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    let img = format!("{}/frontend", s.prefix);
    s.reg.push_image_with(
        &format!("{}/frontend", s.repo_path),
        "build1",
        "frontend build 1",
    );
    s.ok(&[
        "publish",
        &format!("{img}:build1"),
        "--env",
        "staging",
        "--version",
        "0.0.1",
        "--sha",
        SHA,
        "--timestamp",
        "1738860123",
    ]);
    // Exit 1: backend has no image at all.
    let out = s.ferry(&["reconcile"]);
    assert!(
        matches!(out.status.code(), Some(1 | 3)),
        "{}",
        text(&out.stderr)
    );
    let overlays = "flux/apps/frontend/overlays";
    assert!(
        s.file(&format!("{overlays}/staging/kustomization.yaml"))
            .contains(STAGING_TAG)
    );

    let out = s.ferry(&[
        "promote",
        "frontend",
        "--to",
        "production",
        "--by",
        "alice",
        "--timestamp",
        "1738861000",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("write-back of ImageUpdateAutomation production/frontend"),
        "{stdout}"
    );
    assert!(!stdout.contains("production/backend"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("production/backend"), "{stdout}\n{stderr}");
    // The frontend automation ran right away.
    assert!(
        s.file(&format!("{overlays}/production/kustomization.yaml"))
            .contains("production-v0.0.1-a1b2c3d-1738861000")
    );
}

#[test]
fn index_cross_repo_promotion_copies_children_first_and_keeps_the_index_digest() {
    let opts = Options {
        cross_repo: true,
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    let digest = s.build_and_deploy_staging(true);
    let img = s.image();
    for tag in [STAGING_TAG, "staging", SHA7] {
        assert_eq!(s.raw_digest(&format!("{img}:{tag}")), digest, "{tag}");
    }
    let out = s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "bob",
        "--timestamp",
        "1738862000",
    ]);
    let prod_img = format!("{}/prod/backend", s.prefix);
    assert!(out.contains(&prod_img), "{out}");
    for tag in ["production-v0.0.1-a1b2c3d-1738862000", "production"] {
        assert_eq!(s.raw_digest(&format!("{prod_img}:{tag}")), digest, "{tag}");
    }
    // Every child manifest is in the target repository, by digest.
    let raw = s.reg.skopeo(
        "inspect",
        &["--raw", &format!("docker://{img}:{STAGING_TAG}")],
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let children = index["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for c in children {
        let d = c["digest"].as_str().unwrap();
        assert_eq!(s.raw_digest(&format!("{prod_img}@{d}")), d);
    }
}

#[test]
fn refuses_a_source_that_staging_does_not_run() {
    let Some(s) = Setup::new(Auth::None, Options::default()) else {
        return;
    };
    s.build_and_deploy_staging(false);
    // A newer staging build that the staging automation has not deployed yet.
    s.reg.push_image_with(
        &format!("{}/backend", s.repo_path),
        "build2",
        "backend build 2",
    );
    s.ok(&[
        "publish",
        &format!("{}:build2", s.image()),
        "--env",
        "staging",
        "--version",
        "0.0.2",
        "--sha",
        "bbbbbbb1",
        "--timestamp",
        "1738870000",
    ]);
    let out = s.ferry(&["promote", "backend", "--to", "production", "--by", "x"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("staging-v0.0.2-bbbbbbb-1738870000") && err.contains(STAGING_TAG),
        "{err}"
    );
    assert!(production_immutable(&s.tags(&s.image())).is_empty());
    assert!(s.commits_of_kind("promotion").is_empty());
    // --force promotes anyway and records it.
    s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "x",
        "--force",
    ]);
    let c = s.commits_of_kind("promotion");
    assert!(c[0].contains("Ferry-Forced: true"), "{}", c[0]);
}

#[test]
fn refuses_to_overwrite_an_immutable_tag() {
    let Some(s) = Setup::new(Auth::None, Options::default()) else {
        return;
    };
    s.build_and_deploy_staging(false);
    let other = s.reg.push_image_with(
        &format!("{}/backend", s.repo_path),
        "production-v0.0.1-a1b2c3d-1738861000",
        "someone else",
    );
    let out = s.ferry(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "x",
        "--timestamp",
        "1738861000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("immutable tag") && err.contains(&other),
        "{err}"
    );
    // Nothing changed: the tag still holds the other image, no alias, no Git commit.
    assert_eq!(
        s.raw_digest(&format!(
            "{}:production-v0.0.1-a1b2c3d-1738861000",
            s.image()
        )),
        other
    );
    assert!(!s.tags(&s.image()).contains(&"production".to_string()));
    assert!(s.commits_of_kind("promotion").is_empty());
}

#[test]
fn approval_gate_refuses_until_approved_in_git() {
    let opts = Options {
        extra: vec![("pipeline.yaml", pipeline("      approval: true\n"))],
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    s.build_and_deploy_staging(false);
    let out = s.ferry(&["promote", "backend", "--to", "production", "--by", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("requires an approval"),
        "{}",
        text(&out.stderr)
    );
    assert!(production_immutable(&s.tags(&s.image())).is_empty());
    s.ok(&[
        "approve",
        "backend",
        "--env",
        "production",
        "--tag",
        STAGING_TAG,
        "--by",
        "carol",
    ]);
    let a = s.commits_of_kind("approval");
    assert!(a[0].contains("Ferry-Approved-By: carol"), "{}", a[0]);
    s.ok(&["promote", "backend", "--to", "production", "--by", "x"]);
    let c = s.commits_of_kind("promotion");
    assert!(c[0].contains("Ferry-Approved-By: carol"), "{}", c[0]);
}

#[test]
fn soak_gate_refuses_before_the_soak_time() {
    let opts = Options {
        extra: vec![("pipeline.yaml", pipeline("      soak: 1h\n"))],
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    s.build_and_deploy_staging(false);
    let out = s.ferry(&["promote", "backend", "--to", "production", "--by", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("soak not elapsed") && err.contains("1h0m0s"),
        "{err}"
    );
    assert!(production_immutable(&s.tags(&s.image())).is_empty());
}

#[test]
fn resumes_after_kill_between_the_two_tag_writes() {
    let Some(s) = Setup::new(Auth::None, Options::default()) else {
        return;
    };
    let digest = s.build_and_deploy_staging(false);
    let out = s.ferry_env(
        &["promote", "backend", "--to", "production", "--by", "x"],
        &[("FERRY_TEST_ABORT_AFTER", "first-tag")],
    );
    assert_eq!(
        out.status.code(),
        None,
        "expected death by signal: {}",
        text(&out.stderr)
    );
    let tags = s.tags(&s.image());
    assert_eq!(production_immutable(&tags).len(), 1, "{tags:?}");
    assert!(!tags.contains(&"production".to_string()));
    s.ok(&["promote", "backend", "--to", "production", "--by", "x"]);
    let tags = s.tags(&s.image());
    let imm = production_immutable(&tags);
    assert_eq!(imm.len(), 1, "no duplicate immutable tag: {tags:?}");
    assert_eq!(s.raw_digest(&format!("{}:production", s.image())), digest);
    assert_eq!(s.commits_of_kind("promotion").len(), 1);
}

#[test]
fn resumes_after_a_rejected_git_push() {
    let Some(s) = Setup::new(Auth::None, Options::default()) else {
        return;
    };
    let digest = s.build_and_deploy_staging(false);
    let hook = s.bare_repo().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nif [ -f reject-once ]; then rm -f reject-once; echo 'rejected by test hook' >&2; exit 1; fi\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .unwrap();
    std::fs::write(s.bare_repo().join("reject-once"), "").unwrap();
    let out = s.ferry(&["promote", "backend", "--to", "production", "--by", "x"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(production_immutable(&s.tags(&s.image())).len(), 1);
    assert!(s.commits_of_kind("promotion").is_empty());
    s.ok(&["promote", "backend", "--to", "production", "--by", "x"]);
    assert_eq!(production_immutable(&s.tags(&s.image())).len(), 1);
    assert_eq!(s.raw_digest(&format!("{}:production", s.image())), digest);
    assert_eq!(s.commits_of_kind("promotion").len(), 1);
}

#[test]
fn token_auth_requests_pull_on_source_and_push_on_target() {
    let opts = Options {
        cross_repo: true,
        secret: true,
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::Token, opts) else {
        return;
    };
    let digest = s.build_and_deploy_staging(false);
    let before = s.reg.token_requests().len();
    s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "x",
        "--no-reconcile",
    ]);
    let src = format!("{}/backend", s.repo_path);
    let dst = format!("{}/prod/backend", s.repo_path);
    let log = s.reg.token_requests();
    let mut scopes: Vec<String> = Vec::new();
    for line in &log[before..] {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for sc in v["scopes"].as_array().unwrap() {
            scopes.push(sc.as_str().unwrap().to_string());
        }
    }
    let ours: Vec<&String> = scopes
        .iter()
        .filter(|s| s.contains(&src) || s.contains(&dst))
        .collect();
    assert!(
        ours.iter().any(|s| **s == format!("repository:{src}:pull")),
        "{ours:?}"
    );
    assert!(
        ours.iter()
            .any(|s| **s == format!("repository:{dst}:pull,push")),
        "{ours:?}"
    );
    assert!(
        !ours
            .iter()
            .any(|s| s.starts_with(&format!("repository:{src}:")) && s.contains("push")),
        "never push on the source: {ours:?}"
    );
    assert_eq!(
        s.raw_digest(&format!("{}/prod/backend:production", s.prefix)),
        digest
    );
}

/// Production on another registry process (its own storage and auth): every blob is copied
/// across, the manifest bytes are PUT unchanged, and both registries serve the same digest.
fn cross_registry(target_auth: Auth, index: bool, ts: &str) {
    let Some(other) = registry(target_auth, true) else {
        return;
    };
    let opts = Options {
        other_registry: Some(other.clone()),
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    assert_ne!(s.reg.host, other.host, "two registry processes");
    let digest = s.build_and_deploy_staging(index);
    let prod_img = format!("{}/{}/prod/backend", other.host, s.repo_path);
    let out = s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "dora",
        "--timestamp",
        ts,
    ]);
    let prod = format!("production-v0.0.1-a1b2c3d-{ts}");
    assert!(
        out.contains(&format!("production will run: {prod_img}:{prod}@{digest}")),
        "{out}"
    );
    // The target registry holds both tags with the source digest.
    let tags = tags_on(&other, &prod_img);
    for tag in [prod.as_str(), "production"] {
        assert!(tags.contains(&tag.to_string()), "{tag} in {tags:?}");
        assert_eq!(
            raw_digest_on(&other, &format!("{prod_img}:{tag}")),
            digest,
            "{tag}"
        );
    }
    // Nothing was written to the source registry.
    assert!(production_immutable(&s.tags(&s.image())).is_empty());
    assert!(!s.tags(&s.image()).contains(&"production".to_string()));
    if index {
        let raw = s.reg.skopeo(
            "inspect",
            &["--raw", &format!("docker://{}:{STAGING_TAG}", s.image())],
        );
        let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let children = doc["manifests"].as_array().unwrap();
        assert_eq!(children.len(), 2);
        for c in children {
            let d = c["digest"].as_str().unwrap();
            assert_eq!(raw_digest_on(&other, &format!("{prod_img}@{d}")), d);
        }
    }
    // A full inspect reads the config blob from the target registry: the blobs arrived.
    let target = format!("docker://{prod_img}:production");
    let inspect: Vec<&str> = if index {
        vec!["--override-arch", "arm64", &target]
    } else {
        vec![&target]
    };
    other.skopeo("inspect", &inspect);
    // The release names the target image, and the production automation already points at it.
    let record = s.file(&format!("releases/backend/production/{prod}.yaml"));
    assert!(
        record.contains(&format!("image: \"{prod_img}\"")),
        "{record}"
    );
    assert!(
        record.contains(&format!("digest: \"{digest}\"")),
        "{record}"
    );
    let deployed = s.file("flux/apps/backend/production/deployment.yaml");
    assert!(
        deployed.contains(&format!("{prod_img}:{prod}")),
        "{deployed}"
    );
    // Idempotent across registries too.
    let again = s.ok(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "dora",
        "--tag",
        STAGING_TAG,
    ]);
    assert!(again.contains("already present"), "{again}");
    assert_eq!(production_immutable(&tags_on(&other, &prod_img)).len(), 1);
    assert_eq!(s.commits_of_kind("promotion").len(), 1);
}

#[test]
fn cross_registry_promotion_copies_a_single_manifest_to_a_basic_auth_tls_registry() {
    cross_registry(Auth::Basic, false, "1738863000");
}

#[test]
fn cross_registry_promotion_copies_an_index_to_a_token_auth_tls_registry() {
    cross_registry(Auth::Token, true, "1738864000");
}

#[test]
fn force_bypasses_only_the_source_gate_and_is_recorded() {
    let opts = Options {
        extra: vec![("pipeline.yaml", pipeline("      approval: true\n"))],
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    s.build_and_deploy_staging(false);
    // A newer staging build that staging does not run.
    let d2 = s.reg.push_image_with(
        &format!("{}/backend", s.repo_path),
        "build2",
        "backend build 2",
    );
    let tag2 = "staging-v0.0.2-bbbbbbb-1738870000";
    s.ok(&[
        "publish",
        &format!("{}:build2", s.image()),
        "--env",
        "staging",
        "--version",
        "0.0.2",
        "--sha",
        "bbbbbbb1",
        "--timestamp",
        "1738870000",
    ]);
    let refused = |args: &[&str], why: &str| {
        let out = s.ferry(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stdout)
        );
        let err = text(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(production_immutable(&s.tags(&s.image())).is_empty());
        assert!(s.commits_of_kind("promotion").is_empty());
    };
    let promote = ["promote", "backend", "--to", "production", "--by", "x"];
    // Without --force: the source gate refuses first.
    refused(&promote, "is not what staging runs");
    // --force does not bypass the approval gate.
    refused(
        &[&promote[..], &["--force"]].concat(),
        "requires an approval",
    );
    s.ok(&[
        "approve",
        "backend",
        "--env",
        "production",
        "--tag",
        tag2,
        "--by",
        "carol",
    ]);
    // Approved, but still not what staging runs: refused without --force.
    refused(&promote, "is not what staging runs");
    let out = s.ok(&[&promote[..], &["--force", "--timestamp", "1738871000"]].concat());
    let prod = "production-v0.0.2-bbbbbbb-1738871000";
    assert!(out.contains(prod), "{out}");
    assert_eq!(s.raw_digest(&format!("{}:{prod}", s.image())), d2);
    assert_eq!(s.raw_digest(&format!("{}:production", s.image())), d2);
    let c = s.commits_of_kind("promotion");
    assert_eq!(c.len(), 1);
    for t in [
        "Ferry-Forced: true",
        "Ferry-Approved-By: carol",
        &format!("Ferry-Source-Tag: {tag2}"),
        &format!("Ferry-Digest: {d2}"),
    ] {
        assert!(c[0].contains(t), "missing {t} in {}", c[0]);
    }
    let record = s.file(&format!("releases/backend/production/{prod}.yaml"));
    assert!(record.contains("forced: true"), "{record}");
    assert!(record.contains("passed: false"), "{record}");
    assert!(record.contains("FORCED: "), "{record}");
}

#[test]
fn force_does_not_bypass_the_soak_gate() {
    let opts = Options {
        extra: vec![("pipeline.yaml", pipeline("      soak: 1h\n"))],
        ..Options::default()
    };
    let Some(s) = Setup::new(Auth::None, opts) else {
        return;
    };
    s.build_and_deploy_staging(false);
    // What staging runs, but deployed just now: --force does not shorten the soak.
    let out = s.ferry(&[
        "promote",
        "backend",
        "--to",
        "production",
        "--by",
        "x",
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("soak not elapsed"), "{err}");
    assert!(production_immutable(&s.tags(&s.image())).is_empty());
    assert!(s.commits_of_kind("promotion").is_empty());
}

#[test]
fn a_malformed_release_record_in_git_is_an_error_naming_the_file() {
    let Some(s) = Setup::new(Auth::None, Options::default()) else {
        return;
    };
    let d = s.clone_dir();
    let rel = "releases/backend/production/broken.yaml";
    std::fs::create_dir_all(d.join("releases/backend/production")).unwrap();
    std::fs::write(d.join(rel), "app: [\n").unwrap();
    s.git.git(&d, &["add", "-A"]).unwrap();
    s.git
        .git(
            &d,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "commit",
                "-qm",
                "a broken record",
            ],
        )
        .unwrap();
    s.git
        .git(&d, &["push", "-q", "origin", "HEAD:main"])
        .unwrap();
    let out = s.ferry(&["version", "backend"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{rel}: not a valid release record")),
        "{err}"
    );
}
