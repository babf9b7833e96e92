//! Issue 15: one regression test per defect not covered by `render_corpus.rs` (which covers
//! defects 1–5: per-Kustomization variables, patch files, namespaces, unused files, v1beta2).

use crate::common::*;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

/// Defect 4 (related): `scan` never fails over an object it does not use. A GitRepository with
/// an unresolved `${git_url}` is a warning for scan, still an error for reconcile.
#[test]
fn scan_warns_about_an_unresolved_variable_in_a_git_repository_it_does_not_use() {
    let ws = Workspace::new();
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "git.yaml",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: ${git_url}\n",
        )],
    );
    let t = tree.to_str().unwrap();
    let r = ws.ferry(&["scan", "--dir", t]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("${git_url}"),
        "{}",
        r.stderr
    );
    let r = ws.ferry(&["reconcile", "--dir", t, "--dry-run"]);
    r.expect_code(2);
    assert!(r.stderr.contains("${git_url}"), "{}", r.stderr);
}

/// Defects 7 and 8: `setters apply --dry-run -o json` prints valid JSON on stdout (the diff goes
/// to stderr), and a document without `metadata` is labelled `Kind (no metadata.name)`.
#[test]
fn setters_dry_run_json_is_valid_and_nameless_documents_are_labelled() {
    let ws = Workspace::new();
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "component/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n- name: app\n  newTag: 1.0.0 # {\"$imagepolicy\": \"flux-system:app:tag\"}\n",
        )],
    );
    let r = ferry(&[
        "setters",
        "apply",
        "--dir",
        tree.to_str().unwrap(),
        "--set",
        "flux-system:app=reg.example/app:2.0.0",
        "--dry-run",
        "-o",
        "json",
    ]);
    r.expect_code(0);
    let rows = r.json();
    assert_eq!(
        rows[0]["object"], "Component (no metadata.name)",
        "{rows:#}"
    );
    assert_eq!(rows[0]["new"], "2.0.0");
    assert!(r.stderr.contains("+  newTag: 2.0.0"), "{}", r.stderr);
    let table = ferry(&[
        "setters",
        "apply",
        "--dir",
        tree.to_str().unwrap(),
        "--set",
        "flux-system:app=reg.example/app:2.0.0",
        "--dry-run",
    ]);
    assert!(
        table.stdout.contains(": Component (no metadata.name): "),
        "{}",
        table.stdout
    );
}

/// Defect 10: the bootstrap GitRepository flux-system/flux-system is not in Git; the message
/// says so and how to supply it, and `--git-url` supplies it.
#[test]
fn missing_bootstrap_git_repository_is_explained_and_git_url_supplies_it() {
    let ws = Workspace::new();
    let bare = ws.join("remote.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "auto.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  interval: 1m\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  git:\n    commit:\n      author:\n        email: ferry@example.com\n  update:\n    path: ./\n",
        )],
    );
    push_tree_to(&tree, &format!("file://{}", bare.display()));
    let (t, cache) = (tree.to_str().unwrap(), ws.cache_str());
    let r = ws.ferry(&["reconcile", "--dir", t, "--cache-dir", &cache]);
    r.expect_code(1);
    assert!(
        r.stderr
            .contains("GitRepository flux-system/flux-system not found")
            && r.stderr.contains("flux bootstrap creates it")
            && r.stderr.contains("--git-url"),
        "{}",
        r.stderr
    );
    let url = format!("file://{}", bare.display());
    let r = ws.ferry(&[
        "reconcile",
        "--dir",
        t,
        "--cache-dir",
        &cache,
        "--git-url",
        &url,
    ]);
    r.expect_code(0);
}

fn push_tree_to(dir: &std::path::Path, url: &str) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
    git(dir, &["push", "-q", url, "HEAD:main"]);
}

/// Defect 6: `reconcile --dry-run` renders the commit message template, so a template the real
/// run would refuse fails the dry run too (per automation), instead of "would push".
/// Defect 5 (second half): a `.Updated` template fails its automation only, with Flux's reason
/// RemovedTemplateField.
#[test]
fn dry_run_renders_the_message_template() {
    let Some(genv) = git_servers() else { return };
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let seed = Seed::new(&reg, &genv, "render-tmpl", |g, r| g.file(r), None);
    let develop = "flux/apps/backend/develop/image-automation.yaml";
    seed.human_edit(
        develop,
        |t| t.replace("Automation: {{ .AutomationObject }}", "Broken: {{ .Nope }}"),
        "broken template",
    );
    let r = seed.reconcile(&["--dry-run"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("develop/backend") || r.stderr.contains("backend"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Nope"), "{}", r.stderr);

    seed.human_edit(
        develop,
        |t| {
            t.replace(
                "Broken: {{ .Nope }}",
                "Old: {{ range .Updated.Images }}{{ . }}{{ end }}",
            )
        },
        "v1beta1 template",
    );
    let r = seed.reconcile(&["--dry-run"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("ImageUpdateAutomation develop/backend")
            && r.stderr.contains("RemovedTemplateField"),
        "{}",
        r.stderr
    );
    // Every other automation still reports its would-be push.
    assert!(r.stdout.contains("staging"), "{}", r.stdout);
}

/// Defect 9: a missing git Secret is named in the GitRepository's namespace, as the
/// GitRepository's, not the automation's.
#[test]
fn git_secret_is_reported_as_the_git_repositorys() {
    let Some(genv) = git_servers() else { return };
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let seed = Seed::new(
        &reg,
        &genv,
        "render-secret",
        |g, r| g.http(r),
        Some("git-cred"),
    );
    let r = seed.reconcile(&["--dry-run"]);
    r.expect_code(1);
    assert!(
        r.stderr
            .contains("GitRepository flux-system/flux-system (the source of ImageUpdateAutomation develop/backend): Secret flux-system/git-cred not found"),
        "{}",
        r.stderr
    );
}

/// A Flux repo needs kustomize: without it the error names the folder to build and the flag.
#[test]
fn missing_kustomize_names_the_folder() {
    let ws = Workspace::new();
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[
            (
                "clusters/prod/apps.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./apps\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
            ),
            (
                "apps/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            ),
        ],
    );
    let r = ferry(&[
        "render",
        "--dir",
        tree.to_str().unwrap(),
        "--kustomize",
        "/nonexistent/kustomize",
    ]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("kustomize is needed to build ./apps")
            && r.stderr.contains("flux-system/apps")
            && r.stderr.contains("--kustomize"),
        "{}",
        r.stderr
    );
}

/// Errors are per Kustomization, as in Flux: one that fails to build (a missing file, a remote
/// base that cannot be fetched) is reported with file and reason and its objects are missing;
/// the others load; exit 1.
#[test]
fn a_failing_kustomization_fails_alone() {
    let ws = Workspace::new();
    let tree = ws.join("tree");
    let ks = |name: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./{name}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
        )
    };
    write_tree(
        &tree,
        &[
            (
                "clusters/all.yaml",
                &format!("{}---\n{}---\n{}", ks("good"), ks("broken"), ks("remote")),
            ),
            (
                "good/policy.yaml",
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: '>=1.0.0'\n",
            ),
            ("broken/kustomization.yaml", "resources:\n- missing.yaml\n"),
            (
                "remote/kustomization.yaml",
                "resources:\n- https://127.0.0.1:1/org/repo//base?ref=main\n",
            ),
        ],
    );
    let r = ferry(&["render", "--dir", tree.to_str().unwrap(), "-o", "json"]);
    r.expect_code(1);
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    assert_eq!(rows[0]["name"], "app");
    assert!(
        r.stderr.contains("clusters/all.yaml:")
            && r.stderr
                .contains("Kustomization flux-system/broken: build failed")
            && r.stderr.contains("missing.yaml"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("Kustomization flux-system/remote: build failed"),
        "{}",
        r.stderr
    );
}
