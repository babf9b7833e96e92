//! Ferry's container image (issue 16), built by `scripts/image.sh` without Docker, proven to run.
//!
//! The layout is built twice from the binary under test (`--binary`, so no release build here)
//! and both builds must give the same manifest digest. `FERRY_IMAGE_LAYOUT=DIR` uses a layout
//! built beforehand instead (e.g. the release image of `bash scripts/image.sh --out DIR`) and
//! skips the second build. The image is pushed with `ferry image push` to the Basic-auth + TLS
//! registry (credentials from a docker config, the private CA from `--ca-file`), pulled back with
//! `skopeo copy` into an OCI directory, unpacked with tar, and run with
//! `chroot --userspec=65532:65532`: `ferry --version`, `git --version`, `ferry scan` against the
//! registry on 127.0.0.1, and `ferry reconcile` that clones and pushes over http (Basic auth)
//! with the image's git. Needs root (chroot, mknod /dev/null); prints SKIP otherwise (fails in CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};
use ferry_testbed::workspace_root;

const USER: &str = "65532:65532";

fn skip(why: &str) {
    if ferry_testbed::in_ci() {
        panic!("image test cannot run: {why}");
    }
    eprintln!("SKIP: {why}");
}

fn run(cmd: &mut Command, what: &str) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    wait_with_timeout(child, Duration::from_secs(600), vec![what.to_string()])
}

fn build_layout(out: &Path) -> String {
    let r = run(
        Command::new("bash")
            .arg(workspace_root().join("scripts/image.sh"))
            .arg("--binary")
            .arg(bin())
            .arg("--out")
            .arg(out),
        "scripts/image.sh",
    );
    r.expect_code(0);
    manifest_digest(out)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn manifest_digest(layout: &Path) -> String {
    json(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// `chroot --userspec=65532:65532 ROOTFS ARGS` with the image's environment.
fn in_image(rootfs: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new("/usr/sbin/chroot");
    cmd.arg(format!("--userspec={USER}"))
        .arg(rootfs)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/home/ferry")
        .env("GIT_TERMINAL_PROMPT", "0");
    let r = run(&mut cmd, &args.join(" "));
    eprintln!("in image: {args:?} -> {:?}", r.code);
    r
}

#[test]
fn image_builds_reproducibly_pushes_pulls_and_runs() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        return skip("needs root for chroot and mknod");
    }
    for tool in [
        "skopeo",
        "apt-get",
        "dpkg-deb",
        "python3",
        "/usr/sbin/chroot",
    ] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return skip(&format!("{tool} not found"));
        }
    }
    let Some(tls_reg) = registry(Auth::Basic, true) else {
        return;
    };
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let Some(git) = git_servers() else { return };
    let ws = Workspace::new();

    // Build (twice: same digest), or take a prebuilt layout.
    let layout = match std::env::var_os("FERRY_IMAGE_LAYOUT") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let a = ws.join("layout-a");
            let b = ws.join("layout-b");
            let da = build_layout(&a);
            let db = build_layout(&b);
            assert_eq!(da, db, "two builds of one commit differ");
            a
        }
    };
    let digest = manifest_digest(&layout);
    let manifest = json(&blob(&layout, &digest));
    let config = json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    assert_eq!(config["config"]["User"], USER, "{config:#}");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/ferry"])
    );
    let labels = &config["config"]["Labels"];
    for l in ["source", "revision", "version"] {
        assert!(
            labels[format!("org.opencontainers.image.{l}")].is_string(),
            "{labels:#}"
        );
    }
    let sbom = json(&layout.join("sbom.json"));
    let pkgs: Vec<&str> = sbom["debian"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    for p in ["git", "libc6", "openssh-client", "ca-certificates"] {
        assert!(pkgs.contains(&p), "{p} not in the SBOM: {pkgs:?}");
    }

    // Push with ferry's own client: Basic auth from a docker config, TLS with a private CA.
    let docker = ws.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        dockerconfigjson(
            &tls_reg.host,
            tls_reg.user.as_deref().unwrap(),
            tls_reg.password.as_deref().unwrap(),
        ),
    )
    .unwrap();
    let repo = unique("image/ferry");
    let reference = format!("{}:v1", tls_reg.image(&repo));
    let layout_s = layout.to_string_lossy().into_owned();
    let ca = tls_reg.ca.as_ref().unwrap().to_string_lossy().into_owned();
    let mut push_cmd = command(&["image", "push", &layout_s, &reference, "--ca-file", &ca]);
    push_cmd.env("DOCKER_CONFIG", &docker);
    let pushed = wait_with_timeout(
        push_cmd.spawn().unwrap(),
        RUN_TIMEOUT,
        vec!["image push".into()],
    );
    pushed
        .expect_code(0)
        .assert_no_secret(tls_reg.password.as_deref().unwrap());
    assert_eq!(pushed.stdout.trim(), format!("{reference}@{digest}"));
    // Again: every blob is already there.
    let mut again = command(&["image", "push", &layout_s, &reference, "--ca-file", &ca]);
    again.env("DOCKER_CONFIG", &docker);
    let again = wait_with_timeout(again.spawn().unwrap(), RUN_TIMEOUT, vec![]);
    again.expect_code(0);
    assert!(!again.stderr.contains(" uploaded "), "{}", again.stderr);

    // Pull back with skopeo; the digest is unchanged.
    let pulled = ws.join("pulled");
    tls_reg.skopeo(
        "copy",
        &[
            &format!("docker://{reference}"),
            &format!("oci:{}:v1", pulled.display()),
        ],
    );
    assert_eq!(manifest_digest(&pulled), digest);
    let rootfs = ws.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let pm = json(&blob(&pulled, &digest));
    for layer in pm["layers"].as_array().unwrap() {
        let r = run(
            Command::new("tar")
                .arg("-xzf")
                .arg(blob(&pulled, layer["digest"].as_str().unwrap()))
                .arg("-C")
                .arg(&rootfs),
            "tar -x",
        );
        r.expect_code(0);
    }

    // What is not in the image.
    assert!(!rootfs.join("root/.bash_history").exists());
    let lists = rootfs.join("var/lib/apt/lists");
    assert!(
        !lists.exists() || std::fs::read_dir(&lists).unwrap().next().is_none(),
        "apt lists in the image"
    );
    let mut stack = vec![rootfs.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !["cc", "gcc", "rustc", "cargo", "ld", "as", "apt", "dpkg"]
                    .contains(&name.as_str())
                    && !name.starts_with("gcc-"),
                "{} in the image",
                e.path().display()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    let home = std::fs::metadata(rootfs.join("home/ferry")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&home), 65532);
    assert!(rootfs.join("usr/share/ferry/sbom.json").is_file());

    // A container runtime provides /dev; chroot does not (git needs null and urandom).
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    for (name, minor) in [
        ("null", "3"),
        ("zero", "5"),
        ("random", "8"),
        ("urandom", "9"),
    ] {
        run(
            Command::new("mknod")
                .args(["-m", "666"])
                .arg(rootfs.join("dev").join(name))
                .args(["c", "1", minor]),
            "mknod",
        )
        .expect_code(0);
    }

    let v = in_image(&rootfs, &["ferry", "--version"]);
    v.expect_code(0);
    assert!(v.stdout.starts_with("ferry "), "{}", v.stdout);
    let v = in_image(&rootfs, &["ferry", "version", "--json"]);
    v.expect_code(0);
    assert!(v.json()["git_revision"].is_string());
    let g = in_image(&rootfs, &["git", "--version"]);
    g.expect_code(0);
    assert!(g.stdout.starts_with("git version 2."), "{}", g.stdout);
    let id = in_image(&rootfs, &["/bin/sh", "-c", "echo $HOME"]);
    id.expect_code(0);
    assert_eq!(id.stdout.trim(), "/home/ferry");

    // ferry scan against the registry on 127.0.0.1, objects copied into the image's /tmp.
    let org = unique("image-scan");
    for tag in SEED_PUBLISH {
        push(&reg, &format!("{org}/backend"), tag);
    }
    let image = reg.image(&format!("{org}/backend"));
    let objects = [
        (
            "flux/image-repository.yaml".to_string(),
            image_repository("flux-system", "backend", &image, ""),
        ),
        (
            "flux/image-policy.yaml".to_string(),
            image_policy(
                "flux-system",
                "backend",
                "flux-system",
                "backend",
                &seed_policy_spec("develop"),
            ),
        ),
    ];
    let scan_dir = rootfs.join("tmp/scan");
    for (p, c) in &objects {
        write_tree(&scan_dir, &[(p.as_str(), c.as_str())]);
    }
    let s = in_image(
        &rootfs,
        &[
            "ferry",
            "scan",
            "--dir",
            "/tmp/scan",
            "--state",
            "/tmp/scan.db",
        ],
    );
    s.expect_code(0);
    let g = in_image(
        &rootfs,
        &[
            "ferry",
            "get",
            "images",
            "policy",
            "-A",
            "-o",
            "json",
            "--state",
            "/tmp/scan.db",
        ],
    );
    g.expect_code(0);
    let policies = g.json();
    assert_eq!(policies[0]["latestRef"]["tag"], NEW_DEVELOP, "{policies:#}");

    // ferry reconcile: clone, commit and push over http with Basic auth, all by the image's git.
    let grepo = git.new_repo("image-rc", false).unwrap();
    let url = git.http(&grepo);
    let tree = ws.join("gitops");
    let automation = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  url: {url}\n  ref:\n    branch: main\n  secretRef:\n    name: git-cred\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: backend\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  git:\n    checkout:\n      ref:\n        branch: main\n    commit:\n      author:\n        name: ferry\n        email: ferry@localhost\n    push:\n      branch: main\n  update:\n    path: ./app\n    strategy: Setters\n"
    );
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: develop\nspec:\n  template:\n    spec:\n      containers:\n      - name: backend\n        image: {image}:{PLACEHOLDER_DEVELOP} # {{\"$imagepolicy\": \"flux-system:backend\"}}\n"
    );
    write_tree(
        &tree,
        &[
            (objects[0].0.as_str(), objects[0].1.as_str()),
            (objects[1].0.as_str(), objects[1].1.as_str()),
            ("flux/automation.yaml", automation.as_str()),
            ("app/deployment.yaml", deployment.as_str()),
        ],
    );
    push_tree(&git, &grepo, &tree);
    let head0 = remote_head(&git, &grepo);
    write_tree(
        &rootfs.join("tmp/secrets/flux-system/git-cred"),
        &[("username", &git.user), ("password", &git.password)],
    );
    let r = in_image(
        &rootfs,
        &[
            "ferry",
            "reconcile",
            "--repo",
            &url,
            "--ref",
            "main",
            "--repo-secret",
            "flux-system/git-cred",
            "--secrets-dir",
            "/tmp/secrets",
            "--cache-dir",
            "/tmp/cache",
            "--state",
            "/tmp/rc.db",
        ],
    );
    r.expect_code(3).assert_no_secret(&git.password);
    let head1 = remote_head(&git, &grepo);
    assert_ne!(head0, head1);
    assert!(r.stdout.contains(&head1), "{}", r.stdout);
    let got = remote_file(&git, &grepo, "app/deployment.yaml");
    assert_eq!(
        got,
        deployment
            .replace(PLACEHOLDER_DEVELOP, NEW_DEVELOP)
            .trim_end()
    );
    assert_eq!(
        remote_log(&git, &grepo, "%an").lines().next(),
        Some("ferry")
    );
}
