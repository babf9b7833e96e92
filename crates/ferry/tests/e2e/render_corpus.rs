//! Issue 15: objects come from building each Flux Kustomization, as Flux does.
//!
//! Each corpus repo is written by the test. The expectation is computed independently: the real
//! kustomize (`kubectl kustomize`) on a copy where the test itself adds the Flux Kustomization's
//! fields to `kustomization.yaml`, then a tiny `${VAR}` substitution. `ferry render -o json`
//! must see exactly those image-automation objects. One corpus repo goes through a real
//! reconcile against the testbed registry and git server.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A Flux Kustomization of a corpus, as the test knows it (for the expectation).
struct Ks {
    path: &'static str,
    components: &'static [&'static str],
    target_namespace: Option<&'static str>,
    vars: &'static [(&'static str, &'static str)],
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `kubectl kustomize` of one Kustomization on a scratch copy, then `${VAR}` substitution.
fn expected_objects(root: &Path, ks: &Ks) -> Vec<serde_json::Value> {
    let scratch = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", root.display()),
            scratch.path().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let kfile = scratch.path().join(ks.path).join("kustomization.yaml");
    let mut k = std::fs::read_to_string(&kfile).unwrap();
    if let Some(ns) = ks.target_namespace {
        k.push_str(&format!("\nnamespace: {ns}\n"));
    }
    if !ks.components.is_empty() {
        k.push_str("\ncomponents:\n");
        for c in ks.components {
            k.push_str(&format!("- {c}\n"));
        }
    }
    std::fs::write(&kfile, k).unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize", scratch.path().join(ks.path).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::from_utf8(out.stdout).unwrap();
    for (k, v) in ks.vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    text.split("\n---\n")
        .filter_map(|d| serde_saphyr::from_str::<serde_json::Value>(d).ok())
        .collect()
}

/// (kind, namespace, name, key field) of the image-automation objects.
fn identities(objects: &[serde_json::Value]) -> BTreeSet<(String, String, String, String)> {
    objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation" | "GitRepository")
            )
        })
        .map(|o| {
            let key = match o["kind"].as_str().unwrap() {
                "ImageRepository" => o["spec"]["image"].clone(),
                "ImagePolicy" => o["spec"]["imageRepositoryRef"]["name"].clone(),
                "GitRepository" => o["spec"]["secretRef"]["name"].clone(),
                _ => o["spec"]["update"]["path"].clone(),
            };
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
                key.as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn rendered(r: &Run) -> BTreeSet<(String, String, String, String)> {
    let rows = r.json();
    let objects: Vec<serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["object"].clone())
        .collect();
    identities(&objects)
}

const FLUX_KS: &str = "kustomize.toolkit.fluxcd.io/v1";

fn flux_ks(name: &str, path: &str, extra: &str) -> String {
    format!(
        "apiVersion: {FLUX_KS}\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: {path}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n{extra}"
    )
}

/// Corpus A: a shared Component with per-app `${APP}`; targetNamespace and kustomize
/// `namespace:`; a patch file (strategic merge, only spec.secretRef) and a full-object patch;
/// HelmRelease values with `:tag` markers; a v1beta2 policy; unused templates (a tenant
/// template with `{TENANT_ID}`, an unrelated GitRepository with `${gitea_url}`); a SOPS Secret.
fn corpus_a(root: &Path, registry: &str, git_url: &str) -> Vec<Ks> {
    let apps = format!(
        "{}---\n{}",
        flux_ks(
            "app-a",
            "./apps/app-a",
            &format!(
                "  targetNamespace: team-a\n  components:\n  - ../../components/image\n  postBuild:\n    substitute:\n      APP: app-a\n      REGISTRY: {registry}\n"
            ),
        ),
        flux_ks(
            "app-b",
            "./apps/app-b",
            &format!(
                "  components:\n  - ../../components/image\n  postBuild:\n    substitute:\n      APP: app-b\n      REGISTRY: {registry}\n"
            ),
        )
    );
    let infra = flux_ks("infra", "./infra", "");
    write_tree(
        root,
        &[
            ("clusters/prod/apps.yaml", &apps),
            ("clusters/prod/infra.yaml", &infra),
            (
                "components/image/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- repository.yaml\n- policy.yaml\n",
            ),
            (
                "components/image/repository.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: ${APP}\nspec:\n  image: ${REGISTRY}/${APP}\n  interval: 1m0s\n",
            ),
            (
                "components/image/policy.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: ${APP}\nspec:\n  imageRepositoryRef:\n    name: ${APP}\n  policy:\n    semver:\n      range: '>=1.0.0'\n",
            ),
            (
                "apps/app-a/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- automation.yaml\n",
            ),
            (
                "apps/app-a/deployment.yaml",
                &format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-a\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {registry}/app-a:0.0.1 # {{\"$imagepolicy\": \"team-a:app-a\"}}\n"
                ),
            ),
            (
                "apps/app-a/automation.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: app-a\nspec:\n  interval: 1m0s\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n  git:\n    checkout:\n      ref:\n        branch: main\n    commit:\n      author:\n        email: ferry@example.com\n        name: ferry\n    push:\n      branch: main\n  update:\n    path: ./apps/app-a\n    strategy: Setters\n",
            ),
            (
                "apps/app-b/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: team-b\nresources:\n- release.yaml\n- automation.yaml\n",
            ),
            (
                "apps/app-b/release.yaml",
                &format!(
                    "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app-b\nspec:\n  interval: 5m\n  chart:\n    spec:\n      chart: app\n  values:\n    image:\n      repository: {registry}/app-b # {{\"$imagepolicy\": \"team-b:app-b:name\"}}\n      tag: 0.0.1 # {{\"$imagepolicy\": \"team-b:app-b:tag\"}}\n"
                ),
            ),
            (
                "apps/app-b/automation.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: app-b\nspec:\n  interval: 1m0s\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n  git:\n    commit:\n      author:\n        email: ferry@example.com\n  update:\n    path: ./apps/app-b\n",
            ),
            (
                "infra/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- git-repository.yaml\n- old-policy.yaml\n- secret.sops.yaml\npatches:\n- path: git-secret-patch.yaml\n- path: git-full-patch.yaml\n",
            ),
            (
                "infra/git-repository.yaml",
                &format!(
                    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n  url: {git_url}\n"
                ),
            ),
            (
                "infra/git-secret-patch.yaml",
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  secretRef:\n    name: git-auth\n",
            ),
            (
                "infra/git-full-patch.yaml",
                &format!(
                    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n  url: {git_url}\n"
                ),
            ),
            (
                "infra/old-policy.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: legacy\n  namespace: team-a\nspec:\n  imageRepositoryRef:\n    name: app-a\n  policy:\n    semver:\n      range: '>=1.0.0'\n",
            ),
            (
                "infra/secret.sops.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tokens\n  namespace: flux-system\ntype: Opaque\ndata:\n  token: ENC[AES256_GCM,data:abcd,iv:efgh,tag:ijkl,type:str]\nsops:\n  age:\n  - recipient: age1xyz\n    enc: |\n      -----BEGIN AGE ENCRYPTED FILE-----\n      -----END AGE ENCRYPTED FILE-----\n  lastmodified: \"2026-01-01T00:00:00Z\"\n  version: 3.9.0\n",
            ),
            (
                "templates/tenant.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: {TENANT_ID}\nspec:\n  image: {TENANT_IMAGE}\n",
            ),
            (
                "unused/gitea.yaml",
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: gitea\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: ${gitea_url}\n",
            ),
        ],
    );
    let vars_a: &'static [(&str, &str)] = Box::leak(Box::new([
        ("APP", "app-a"),
        (
            "REGISTRY",
            Box::leak(registry.to_string().into_boxed_str()) as &str,
        ),
    ]));
    let vars_b: &'static [(&str, &str)] = Box::leak(Box::new([
        ("APP", "app-b"),
        (
            "REGISTRY",
            Box::leak(registry.to_string().into_boxed_str()) as &str,
        ),
    ]));
    vec![
        Ks {
            path: "apps/app-a",
            components: &["../../components/image"],
            target_namespace: Some("team-a"),
            vars: vars_a,
        },
        Ks {
            path: "apps/app-b",
            components: &["../../components/image"],
            target_namespace: None,
            vars: vars_b,
        },
        Ks {
            path: "infra",
            components: &[],
            target_namespace: None,
            vars: &[],
        },
    ]
}

fn expectation(root: &Path, corpus: &[Ks]) -> BTreeSet<(String, String, String, String)> {
    let mut all = Vec::new();
    for ks in corpus {
        all.extend(expected_objects(root, ks));
    }
    identities(&all)
}

fn tuple(kind: &str, ns: &str, name: &str, key: &str) -> (String, String, String, String) {
    (kind.into(), ns.into(), name.into(), key.into())
}

/// Defects 1–5 and 8 on corpus A: both apps from the shared component, each in its namespace;
/// the patches patch (no `spec.url is required`, no duplicate); unused files are not read; the
/// v1beta2 policy loads with one `flux migrate` warning; the SOPS Secret does not disturb.
#[test]
fn corpus_a_matches_kustomize_plus_substitution() {
    if !kubectl_available() {
        eprintln!("skipped: kubectl not found");
        return;
    }
    let ws = Workspace::new();
    let root = ws.join("repo");
    let corpus = corpus_a(&root, "127.0.0.1:5000/org", "file:///nonexistent.git");
    let want = expectation(&root, &corpus);
    let r = ferry(&["render", "--dir", root.to_str().unwrap(), "-o", "json"]);
    r.expect_code(0);
    assert_eq!(rendered(&r), want, "{}", r.stderr);
    for t in [
        tuple(
            "ImageRepository",
            "team-a",
            "app-a",
            "127.0.0.1:5000/org/app-a",
        ),
        tuple(
            "ImageRepository",
            "team-b",
            "app-b",
            "127.0.0.1:5000/org/app-b",
        ),
        tuple("ImagePolicy", "team-a", "app-a", "app-a"),
        tuple("ImagePolicy", "team-b", "app-b", "app-b"),
        tuple("ImagePolicy", "team-a", "legacy", "app-a"),
        tuple("GitRepository", "flux-system", "flux-system", "git-auth"),
    ] {
        assert!(want.contains(&t), "{t:?} not in {want:#?}");
    }
    let migrate: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("flux migrate"))
        .collect();
    assert_eq!(migrate.len(), 1, "{}", r.stderr);
    assert!(migrate[0].contains("infra/old-policy.yaml"), "{}", r.stderr);
    let rows = r.json();
    let origin = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "ImageRepository" && o["name"] == name)
            .map(|o| o["kustomization"].as_str().unwrap().to_string())
    };
    assert_eq!(origin("app-a").as_deref(), Some("flux-system/app-a"));
    assert_eq!(origin("app-b").as_deref(), Some("flux-system/app-b"));

    // The table names the Kustomization and the source file; scan needs no GitRepository.
    let t = ferry(&["render", "--dir", root.to_str().unwrap()]);
    t.expect_code(0);
    assert!(
        t.stdout.contains("components/image/repository.yaml"),
        "{}",
        t.stdout
    );
}

/// Multi-cluster layout: `--path clusters/staging` renders only that cluster's Kustomizations.
#[test]
fn multi_cluster_is_chosen_with_path() {
    if !kubectl_available() {
        eprintln!("skipped: kubectl not found");
        return;
    }
    let ws = Workspace::new();
    let root = ws.join("repo");
    let cluster = |env: &str| {
        flux_ks(
            "apps",
            &format!("./envs/{env}"),
            &format!("  postBuild:\n    substitute:\n      ENV: {env}\n"),
        )
    };
    write_tree(
        &root,
        &[
            ("clusters/staging/apps.yaml", &cluster("staging")),
            ("clusters/production/apps.yaml", &cluster("production")),
            (
                "envs/staging/kustomization.yaml",
                "namespace: staging\nresources:\n- ../base\n",
            ),
            (
                "envs/production/kustomization.yaml",
                "namespace: production\nresources:\n- ../base\n",
            ),
            (
                "envs/base/kustomization.yaml",
                "resources:\n- policy.yaml\n",
            ),
            (
                "envs/base/policy.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app-${ENV}\nspec:\n  imageRepositoryRef:\n    name: app\n    namespace: flux-system\n  policy:\n    numerical:\n      order: asc\n",
            ),
        ],
    );
    for env in ["staging", "production"] {
        let path = format!("clusters/{env}");
        let r = ferry(&[
            "render",
            "--dir",
            root.to_str().unwrap(),
            "--path",
            &path,
            "-o",
            "json",
        ]);
        r.expect_code(0);
        let corpus = [Ks {
            path: Box::leak(format!("envs/{env}").into_boxed_str()),
            components: &[],
            target_namespace: None,
            vars: Box::leak(Box::new([(
                "ENV",
                Box::leak(env.to_string().into_boxed_str()) as &str,
            )])),
        }];
        let want = expectation(&root, &corpus);
        assert_eq!(rendered(&r), want);
        assert!(want.contains(&tuple("ImagePolicy", env, &format!("app-{env}"), "app")));
    }
    // Both clusters at once: the second `flux-system/apps` is reported, not merged.
    let r = ferry(&["render", "--dir", root.to_str().unwrap(), "-o", "json"]);
    r.expect_code(0);
    assert!(r.stderr.contains("--path"), "{}", r.stderr);
}

/// Corpus A through a real reconcile (testbed registry and git http server with the patched-in
/// `secretRef`): both apps of the shared component are written, each through its own
/// namespace's marker (`team-a:app-a` in a Deployment, `team-b:app-b:tag` in HelmRelease values).
#[test]
fn corpus_a_reconciles_against_the_real_registry_and_git_server() {
    use ferry_testbed::git::git_servers;
    use ferry_testbed::registry::{Auth, registry};
    if !kubectl_available() {
        eprintln!("skipped: kubectl not found");
        return;
    }
    let Some(env) = git_servers() else { return };
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let org = unique("render");
    for app in ["app-a", "app-b"] {
        for tag in ["1.0.0", "1.2.0"] {
            push(&reg, &format!("{org}/{app}"), tag);
        }
    }
    let image_registry = format!("{}/{org}", reg.host);
    let repo = env.new_repo("render-corpus", false).unwrap();
    let tree = ws.join("tree");
    corpus_a(&tree, &image_registry, &env.http(&repo));
    push_tree(&env, &repo, &tree);
    ws.secret(
        "flux-system",
        "git-auth",
        &[
            ("username", env.user.as_bytes()),
            ("password", env.password.as_bytes()),
        ],
    );
    let (url, secrets, cache) = (env.file(&repo), ws.secrets_str(), ws.cache_str());
    let flags = [
        "--repo",
        &url,
        "--ref",
        "main",
        "--secrets-dir",
        &secrets,
        "--cache-dir",
        &cache,
    ];
    let mut args = vec!["reconcile"];
    args.extend(flags);
    let r = ws.ferry(&args);
    r.expect_code(3);
    assert_eq!(
        ws.latest("team-b", "app-b").as_deref(),
        Some(format!("{image_registry}/app-b:1.2.0").as_str())
    );
    let deploy = remote_file(&env, &repo, "apps/app-a/deployment.yaml");
    assert!(
        deploy.contains(&format!(
            "image: {image_registry}/app-a:1.2.0 # {{\"$imagepolicy\": \"team-a:app-a\"}}"
        )),
        "{deploy}"
    );
    let release = remote_file(&env, &repo, "apps/app-b/release.yaml");
    assert!(
        release.contains("tag: 1.2.0 # {\"$imagepolicy\": \"team-b:app-b:tag\"}"),
        "{release}"
    );
    // Nothing left to do.
    args = vec!["reconcile"];
    args.extend(flags);
    ws.ferry(&args).expect_code(0);
}
