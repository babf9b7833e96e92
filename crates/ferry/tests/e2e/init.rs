//! `ferry init` end to end: runs the real binary into temporary directories, checks the file
//! list, the setter markers, the overwrite protection, that Ferry's own `setters apply` finds
//! the markers, and (when `kubectl` is installed) that every kustomization builds.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const ENVS: [&str; 3] = ["develop", "staging", "production"];
const REGISTRY: &str = "127.0.0.1:5000/org";

/// The files `--app backend --app frontend` generates, in output order.
const EXPECTED: &[&str] = &[
    "flux/bootstrap/flux-system/kustomization.yaml",
    "flux/bootstrap/flux-system/gotk-sync.yaml",
    "flux/bootstrap/infrastructure/image-automation/kustomization.yaml",
    "flux/bootstrap/infrastructure/image-automation/namespaces.yaml",
    "flux/bootstrap/infrastructure/image-automation/network-policies.yaml",
    "flux/bootstrap/infrastructure/image-automation/git-repository.yaml",
    "flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml",
    "flux/bootstrap/infrastructure/image-automation/frontend-image-repo.yaml",
    "flux/apps/backend/develop/kustomization.yaml",
    "flux/apps/backend/develop/deployment.yaml",
    "flux/apps/backend/develop/image-policy.yaml",
    "flux/apps/backend/develop/image-automation.yaml",
    "flux/apps/backend/staging/kustomization.yaml",
    "flux/apps/backend/staging/deployment.yaml",
    "flux/apps/backend/staging/image-policy.yaml",
    "flux/apps/backend/staging/image-automation.yaml",
    "flux/apps/backend/production/kustomization.yaml",
    "flux/apps/backend/production/deployment.yaml",
    "flux/apps/backend/production/image-policy.yaml",
    "flux/apps/backend/production/image-automation.yaml",
    "flux/apps/frontend/base/kustomization.yaml",
    "flux/apps/frontend/base/deployment.yaml",
    "flux/apps/frontend/base/service.yaml",
    "flux/apps/frontend/overlays/develop/kustomization.yaml",
    "flux/apps/frontend/overlays/develop/image-policy.yaml",
    "flux/apps/frontend/overlays/develop/image-automation.yaml",
    "flux/apps/frontend/overlays/staging/kustomization.yaml",
    "flux/apps/frontend/overlays/staging/image-policy.yaml",
    "flux/apps/frontend/overlays/staging/image-automation.yaml",
    "flux/apps/frontend/overlays/production/kustomization.yaml",
    "flux/apps/frontend/overlays/production/image-policy.yaml",
    "flux/apps/frontend/overlays/production/image-automation.yaml",
];

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ferry init DIR --app backend --app frontend` plus `extra`.
fn init(dir: &Path, extra: &[&str]) -> Output {
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "init",
        dir,
        "--app",
        "backend",
        "--app",
        "frontend",
        "--git-url",
        "http://127.0.0.1:3000/org/fleet.git",
    ];
    args.extend_from_slice(extra);
    ferry(&args)
}

/// Every regular file under `root` (relative, `/`-separated) with its content.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

#[test]
fn init_writes_and_lists_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet"); // does not exist yet
    let out = init(&dir, &[]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let listed: Vec<&str> = stdout.lines().collect();
    assert_eq!(listed, EXPECTED);

    let files = snapshot(&dir);
    let mut expected_sorted: Vec<&str> = EXPECTED.to_vec();
    expected_sorted.sort_unstable();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_sorted
    );
    for (path, content) in &files {
        assert!(
            content.ends_with('\n') && !content.ends_with("\n\n"),
            "{path}"
        );
        assert!(!content.contains('\t'), "{path}");
    }

    // Deterministic: a second scaffold elsewhere is byte-identical.
    let other = tmp.path().join("again");
    assert!(init(&other, &[]).status.success());
    assert_eq!(snapshot(&other), files);
}

#[test]
fn init_writes_markers_in_every_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let out = init(
        tmp.path(),
        &["--registry-secret", "ghcr-credentials-docker"],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let files = snapshot(tmp.path());

    for app in ["backend", "frontend"] {
        let repo = &files
            [&format!("flux/bootstrap/infrastructure/image-automation/{app}-image-repo.yaml")];
        assert!(
            repo.contains(&format!("  image: ${{image_registry}}/{app}\n")),
            "{repo}"
        );
        assert!(repo.contains("  secretRef:\n    name: ghcr-credentials-docker\n"));
        for label in ["development", "staging", "production"] {
            assert!(repo.contains(&format!("environment: {label}\n")));
        }
    }
    let sync = &files["flux/bootstrap/flux-system/gotk-sync.yaml"];
    assert!(
        sync.contains(&format!("image_registry: {REGISTRY}\n")),
        "{sync}"
    );

    for env in ENVS {
        let regex =
            format!("pattern: '^{env}-v[0-9]+\\.[0-9]+\\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$'");
        // Backend: marker on the Deployment image line.
        let dep = &files[&format!("flux/apps/backend/{env}/deployment.yaml")];
        let marker = format!(
            "image: {REGISTRY}/backend:{env}-v0.0.0-0000000-0 # {{\"$imagepolicy\": \"{env}:backend\"}}\n"
        );
        assert!(dep.contains(&marker), "{env}: {dep}");
        let pol = &files[&format!("flux/apps/backend/{env}/image-policy.yaml")];
        assert!(
            pol.contains(&regex) && pol.contains(&format!("namespace: {env}\n")),
            "{pol}"
        );
        let auto = &files[&format!("flux/apps/backend/{env}/image-automation.yaml")];
        assert!(
            auto.contains(&format!("path: ./flux/apps/backend/{env}\n")),
            "{auto}"
        );
        assert!(auto.contains(&format!("  namespace: {env}\n")));

        // Frontend: markers on the overlay's kustomize images entry.
        let k = &files[&format!("flux/apps/frontend/overlays/{env}/kustomization.yaml")];
        assert!(
            k.contains(&format!(
                "newName: {REGISTRY}/frontend # {{\"$imagepolicy\": \"{env}:frontend:name\"}}\n"
            )),
            "{k}"
        );
        assert!(
            k.contains(&format!(
                "newTag: {env}-v0.0.0-0000000-0 # {{\"$imagepolicy\": \"{env}:frontend:tag\"}}\n"
            )),
            "{k}"
        );
        assert!(k.contains(&format!("namespace: {env}\n")));
        let pol = &files[&format!("flux/apps/frontend/overlays/{env}/image-policy.yaml")];
        assert!(
            pol.contains(&regex) && pol.contains(&format!("namespace: {env}\n")),
            "{pol}"
        );
        let auto = &files[&format!("flux/apps/frontend/overlays/{env}/image-automation.yaml")];
        assert!(auto.contains(&format!("path: ./flux/apps/frontend/overlays/{env}\n")));
    }
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path(), &[]).status.success());
    let edited = tmp.path().join("flux/apps/backend/staging/deployment.yaml");
    std::fs::write(&edited, "# hand edited\n").unwrap();
    let before = snapshot(tmp.path());

    let out = init(tmp.path(), &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(
        stderr.contains("flux/bootstrap/flux-system/kustomization.yaml"),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "a refused init modified files"
    );

    // One pre-existing file is enough to block the whole scaffold.
    let partial = tmp.path().join("partial");
    let lone = partial.join("flux/apps/frontend/base/service.yaml");
    std::fs::create_dir_all(lone.parent().unwrap()).unwrap();
    std::fs::write(&lone, "mine\n").unwrap();
    let out = init(&partial, &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("flux/apps/frontend/base/service.yaml"));
    assert_eq!(
        snapshot(&partial).len(),
        1,
        "files were written despite the conflict"
    );
    assert_eq!(std::fs::read_to_string(&lone).unwrap(), "mine\n");
}

#[test]
fn init_force_overwrites_generated_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path(), &[]).status.success());
    let pristine = snapshot(tmp.path());
    let edited = tmp.path().join("flux/apps/backend/staging/deployment.yaml");
    std::fs::write(&edited, "# hand edited\n").unwrap();
    let mine = tmp.path().join("flux/apps/backend/staging/notes.yaml");
    std::fs::write(&mine, "keep: me\n").unwrap();

    let out = init(tmp.path(), &["--force"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), EXPECTED.len());
    let mut after = snapshot(tmp.path());
    assert_eq!(
        after
            .remove("flux/apps/backend/staging/notes.yaml")
            .as_deref(),
        Some("keep: me\n")
    );
    assert_eq!(after, pristine);
}

#[test]
fn init_rejects_bad_input_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    let d = dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["init", d, "--app", "Backend"], "invalid --app"),
        // Names that would leave their directory, or hide in it, never become paths.
        (&["init", d, "--app", "../escape"], "invalid --app"),
        (&["init", d, "--app", "a/b"], "invalid --app"),
        (&["init", d, "--app", ".."], "invalid --app"),
        (&["init", d, "--app", "a\nb"], "invalid --app"),
        (&["init", d, "--app", "a\u{1b}[31m"], "invalid --app"),
        (
            &["init", d, "--app", "api", "--app", "api"],
            "more than once",
        ),
        (
            &[
                "init",
                d,
                "--app",
                "api",
                "--registry",
                "https://ghcr.io/org",
            ],
            "URL scheme",
        ),
        (
            &["init", d, "--app", "api", "--registry", "ghcr.io/org:v1"],
            "tag",
        ),
        (
            &[
                "init",
                d,
                "--app",
                "api",
                "--git-url",
                "https://u:hunter2@git.example/x.git",
            ],
            "password",
        ),
        (
            &["init", d, "--app", "api", "--branch", "a..b"],
            "invalid --branch",
        ),
    ];
    for (args, want) in cases {
        let out = ferry(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "password echoed: {stderr}");
        assert!(!dir.exists(), "{args:?} created {d}");
    }
    // --app is required (clap).
    let out = ferry(&["init", d]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--app"));
}

/// The scaffold's markers are real setters: Ferry's offline setter engine rewrites them.
#[test]
fn scaffold_markers_are_applied_by_ferry_setters() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path(), &[]).status.success());
    let tag = "staging-v0.1.0-a1b2c3d-1738860123";

    let backend = tmp.path().join("flux/apps/backend/staging");
    let set = format!("staging:backend={REGISTRY}/backend:{tag}");
    let out = ferry(&[
        "setters",
        "apply",
        "--dir",
        backend.to_str().unwrap(),
        "--set",
        &set,
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let dep = std::fs::read_to_string(backend.join("deployment.yaml")).unwrap();
    assert!(
        dep.contains(&format!(
            "image: {REGISTRY}/backend:{tag} # {{\"$imagepolicy\": \"staging:backend\"}}\n"
        )),
        "{dep}"
    );

    let frontend = tmp.path().join("flux/apps/frontend/overlays/staging");
    let set = format!("staging:frontend={REGISTRY}/frontend:{tag}");
    let out = ferry(&[
        "setters",
        "apply",
        "--dir",
        frontend.to_str().unwrap(),
        "--set",
        &set,
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let k = std::fs::read_to_string(frontend.join("kustomization.yaml")).unwrap();
    assert!(
        k.contains(&format!(
            "newTag: {tag} # {{\"$imagepolicy\": \"staging:frontend:tag\"}}\n"
        )),
        "{k}"
    );
    // Other environments are untouched.
    let dev = std::fs::read_to_string(tmp.path().join("flux/apps/backend/develop/deployment.yaml"))
        .unwrap();
    assert!(dev.contains(":develop-v0.0.0-0000000-0 #"));
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every generated kustomization builds with `kubectl kustomize` (skipped without kubectl).
#[test]
fn scaffold_builds_with_kubectl_kustomize() {
    if !kubectl_available() {
        eprintln!("note: kubectl not found on PATH; skipping the `kubectl kustomize` checks");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path(), &[]).status.success());
    let build = |rel: &str| -> String {
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(tmp.path().join(rel))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl kustomize {rel}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let mut dirs: Vec<String> = EXPECTED
        .iter()
        .filter_map(|p| p.strip_suffix("/kustomization.yaml"))
        .map(String::from)
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 9);
    for dir in &dirs {
        build(dir);
    }

    // The overlay's images entry really rewrites the base image.
    for env in ENVS {
        let out = build(&format!("flux/apps/frontend/overlays/{env}"));
        assert!(
            out.contains(&format!(
                "image: {REGISTRY}/frontend:{env}-v0.0.0-0000000-0\n"
            )),
            "{out}"
        );
        assert!(out.contains(&format!("namespace: {env}\n")));
    }

    // The sync root holds everything once: 1 Flux Kustomization, 3 Namespaces, 3 NetworkPolicies,
    // 1 GitRepository, 2 ImageRepositories, backend 3×3 and frontend 3×4 objects.
    let all = build("flux/bootstrap/flux-system");
    let kinds = all.lines().filter(|l| l.starts_with("kind: ")).count();
    assert_eq!(kinds, 31, "{all}");
    assert_eq!(
        all.lines().filter(|l| *l == "kind: GitRepository").count(),
        1
    );
}
