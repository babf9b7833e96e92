//! `ferry scan` + `ferry get images` end to end against the real `docker-registry` (issue 2,
//! "Done when"): no auth over HTTP, Basic auth over TLS with a private CA, token auth; the seed's
//! three environments from a registry holding develop-*, staging-*, production-*, <sha> and .sig
//! tags; accessFrom denial; ${var} resolution and the unresolved-variable error; digest reflection
//! cross-checked with skopeo; exclusionList replace semantics.

use crate::common::*;
use ferry_testbed::registry::{Auth, registry};

/// Tags of the seed's pipeline. Numerical order on the trailing timestamp, not on the version,
/// decides (develop-v0.0.10 is older than develop-v0.0.2 here).
const SEED_TAGS: &[&str] = &[
    "develop-v0.0.1-a1b2c3d-1738860000",
    "develop-v0.0.10-c3d4e5f-1738860500",
    "develop-v0.0.2-b2c3d4e-1738863000",
    "staging-v0.0.1-a1b2c3d-1738860123",
    "staging-v0.0.2-b2c3d4e-1738870000",
    "production-v0.0.1-a1b2c3d-1738861000",
    "b2c3d4e",
    "sha256-b2c3d4e.sig",
];

#[test]
fn seed_environments_resolve_from_real_registry_and_access_from_denies() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let org = unique("seed");
    for app in ["backend", "frontend"] {
        for tag in SEED_TAGS {
            push(&reg, &format!("{org}/{app}"), tag);
        }
    }
    let image_registry = format!("{}/{org}", reg.host);
    init_seed(
        &ws.join("gitops"),
        &image_registry,
        "file:///nonexistent.git",
        &[],
    );
    let dir = ws.join("gitops/flux");
    let dir = dir.to_str().unwrap();
    let var = format!("image_registry={image_registry}");

    let scan = ws.ferry(&["scan", "--dir", dir, "--var", &var]);
    scan.expect_code(0);
    assert!(scan.stdout.contains("8 ready, 0 failed"), "{}", scan.stdout);

    for app in ["backend", "frontend"] {
        let img = format!("{image_registry}/{app}");
        assert_eq!(
            ws.latest("develop", app).unwrap(),
            format!("{img}:develop-v0.0.2-b2c3d4e-1738863000")
        );
        assert_eq!(
            ws.latest("staging", app).unwrap(),
            format!("{img}:staging-v0.0.2-b2c3d4e-1738870000")
        );
        assert_eq!(
            ws.latest("production", app).unwrap(),
            format!("{img}:production-v0.0.1-a1b2c3d-1738861000")
        );
        // The default exclusion list drops the .sig tag; the <sha> tag stays in the list.
        let repo = ws.object("repository", "flux-system", app);
        let scan = &repo["lastScanResult"];
        assert_eq!(scan["tagCount"], 7, "{repo:#}");
        let latest: Vec<&str> = scan["latestTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(!latest.iter().any(|t| t.ends_with(".sig")), "{latest:?}");
        assert!(latest.contains(&"b2c3d4e"), "{latest:?}");
        assert_eq!(repo["ready"]["reason"], "Succeeded");
    }

    // The table shows name:tag per policy.
    let table = ws.ferry(&["get", "images", "policy", "-A"]);
    table.expect_code(0);
    assert!(
        table.stdout.contains(&format!(
            "{image_registry}/backend:staging-v0.0.2-b2c3d4e-1738870000"
        )),
        "{}",
        table.stdout
    );

    // A policy in a namespace the repository does not grant access to is denied; every other
    // object is still processed and keeps its result. The seed is a Flux repo: a new file is an
    // object once the flux-system Kustomization includes it.
    let root_k = ws.join("gitops/flux/bootstrap/flux-system/kustomization.yaml");
    let k = std::fs::read_to_string(&root_k).unwrap();
    std::fs::write(&root_k, format!("{k}- ../../sandbox.yaml\n")).unwrap();
    std::fs::write(
        ws.join("gitops/flux/sandbox.yaml"),
        docs(&[
            namespace("sandbox", "environment", "sandbox"),
            image_policy(
                "sandbox",
                "backend",
                "flux-system",
                "backend",
                &seed_policy_spec("develop"),
            ),
        ]),
    )
    .unwrap();
    let denied = ws.ferry(&["scan", "--dir", dir, "--var", &var]);
    denied.expect_code(1);
    let p = ws.object("policy", "sandbox", "backend");
    assert_eq!(p["ready"]["status"], "False", "{p:#}");
    assert_eq!(p["ready"]["reason"], "AccessDenied", "{p:#}");
    assert!(p.get("latestRef").is_none(), "{p:#}");
    assert!(denied.stderr.contains("AccessDenied"), "{}", denied.stderr);
    for env in ["develop", "staging", "production"] {
        let o = ws.object("policy", env, "backend");
        assert_eq!(o["ready"]["status"], "True", "{o:#}");
    }
    let table = ws.ferry(&["get", "images", "policy", "-n", "sandbox"]);
    let line = table
        .stdout
        .lines()
        .find(|l| l.contains("backend"))
        .unwrap()
        .to_string();
    assert!(line.contains("False"), "{line}");
    assert!(line.to_lowercase().contains("access"), "{line}");
}

#[test]
fn basic_auth_over_tls_with_private_ca_and_digest_reflection() {
    let Some(reg) = registry(Auth::Basic, true) else {
        return;
    };
    let ws = Workspace::new();
    let repo = unique("basictls");
    let user = reg.user.clone().unwrap();
    let password = reg.password.clone().unwrap();
    let d1 = push(&reg, &repo, "1.0.0");
    push(&reg, &repo, "1.1.0");
    let d_old = reg.push_image_with(&repo, "1.2.0", "first build of 1.2.0");
    push(&reg, &repo, "2.0.0-rc.1");

    ws.secret(
        "apps",
        "regcred",
        &[(
            ".dockerconfigjson",
            &dockerconfigjson(&reg.host, &user, &password),
        )],
    );
    ws.secret("apps", "regca", &[("ca.crt", &reg.ca_pem().unwrap())]);
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "objs.yaml",
            &docs(&[
                image_repository(
                    "apps",
                    "app",
                    &reg.image(&repo),
                    "  secretRef:\n    name: regcred\n  certSecretRef:\n    name: regca\n",
                ),
                image_policy(
                    "apps",
                    "ifnotpresent",
                    "apps",
                    "app",
                    "  digestReflectionPolicy: IfNotPresent\n  policy:\n    semver:\n      range: '>=1.0.0 <2.0.0'\n",
                ),
                image_policy(
                    "apps",
                    "always",
                    "apps",
                    "app",
                    "  digestReflectionPolicy: Always\n  interval: 1m\n  policy:\n    semver:\n      range: '~1.2'\n",
                ),
                image_policy(
                    "apps",
                    "oldest",
                    "apps",
                    "app",
                    "  digestReflectionPolicy: IfNotPresent\n  policy:\n    semver:\n      range: '1.0.x'\n",
                ),
            ]),
        )],
    );
    let t = tree.to_str().unwrap();
    let secrets = ws.secrets_str();
    let scan = ws.ferry(&["scan", "--dir", t, "--secrets-dir", &secrets]);
    scan.expect_code(0).assert_no_secret(&password);

    let img = reg.image(&repo);
    assert_eq!(
        ws.latest("apps", "ifnotpresent").unwrap(),
        format!("{img}:1.2.0@{d_old}")
    );
    assert_eq!(
        ws.latest("apps", "always").unwrap(),
        format!("{img}:1.2.0@{d_old}")
    );
    assert_eq!(
        ws.latest("apps", "oldest").unwrap(),
        format!("{img}:1.0.0@{d1}")
    );
    // The reflected digests are what skopeo sees.
    assert_eq!(skopeo_digest(&reg, &repo, "1.2.0"), d_old);
    assert_eq!(skopeo_digest(&reg, &repo, "1.0.0"), d1);

    // The tag 1.2.0 is re-pushed with new content: Always follows it, IfNotPresent keeps the
    // digest it recorded for the unchanged tag.
    let d_new = reg.push_image_with(&repo, "1.2.0", "second build of 1.2.0");
    assert_ne!(d_new, d_old);
    assert_eq!(skopeo_digest(&reg, &repo, "1.2.0"), d_new);
    let scan = ws.ferry(&["scan", "--dir", t, "--secrets-dir", &secrets]);
    scan.expect_code(0).assert_no_secret(&password);
    assert_eq!(
        ws.latest("apps", "always").unwrap(),
        format!("{img}:1.2.0@{d_new}")
    );
    assert_eq!(
        ws.latest("apps", "ifnotpresent").unwrap(),
        format!("{img}:1.2.0@{d_old}")
    );

    for fmt in ["table", "json", "yaml"] {
        ws.ferry(&["get", "images", "all", "-A", "-o", fmt])
            .expect_code(0)
            .assert_no_secret(&password);
    }
}

#[test]
fn token_auth_with_a_pull_only_user() {
    let Some(reg) = registry(Auth::Token, true) else {
        return;
    };
    let ws = Workspace::new();
    let repo = unique("token");
    let password = reg.password.clone().unwrap();
    let reader = reg.readonly_user.clone().unwrap();
    for tag in [
        "develop-v1.0.0-aaaaaaa-100",
        "develop-v1.0.1-bbbbbbb-300",
        "develop-v1.0.2-ccccccc-200",
    ] {
        push(&reg, &repo, tag);
    }
    ws.secret(
        "flux-system",
        "regcred",
        &[(
            ".dockerconfigjson",
            &dockerconfigjson(&reg.host, &reader, &password),
        )],
    );
    ws.secret(
        "flux-system",
        "regca",
        &[("ca.crt", &reg.ca_pem().unwrap())],
    );
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[
            (
                "repo.yaml",
                &image_repository(
                    "flux-system",
                    "app",
                    &reg.image(&repo),
                    "  secretRef:\n    name: regcred\n  certSecretRef:\n    name: regca\n",
                ),
            ),
            (
                "policy.yaml",
                &image_policy(
                    "flux-system",
                    "app",
                    "flux-system",
                    "app",
                    &seed_policy_spec("develop"),
                ),
            ),
        ],
    );
    let before = reg.token_requests().len();
    let scan = ws.ferry(&[
        "scan",
        "--dir",
        tree.to_str().unwrap(),
        "--secrets-dir",
        &ws.secrets_str(),
    ]);
    scan.expect_code(0).assert_no_secret(&password);
    assert!(
        reg.token_requests().len() > before,
        "no token was requested"
    );
    assert_eq!(
        ws.latest("flux-system", "app").unwrap(),
        format!("{}:develop-v1.0.1-bbbbbbb-300", reg.image(&repo))
    );
    ws.ferry(&["get", "images", "all", "-A", "-o", "yaml"])
        .expect_code(0)
        .assert_no_secret(&password);
}

#[test]
fn exclusion_list_replaces_the_default() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let repo = unique("excl");
    for tag in ["v1", "v2", "v3.sig", "develop-1", "develop-2"] {
        push(&reg, &repo, tag);
    }
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "objs.yaml",
            &docs(&[
                image_repository("ns", "default", &reg.image(&repo), ""),
                image_repository(
                    "ns",
                    "custom",
                    &reg.image(&repo),
                    "  exclusionList:\n  - '^develop-'\n",
                ),
                image_policy(
                    "ns",
                    "custom",
                    "ns",
                    "custom",
                    "  policy:\n    alphabetical:\n      order: asc\n",
                ),
                image_policy(
                    "ns",
                    "default",
                    "ns",
                    "default",
                    "  policy:\n    alphabetical:\n      order: asc\n",
                ),
            ]),
        )],
    );
    ws.ferry(&["scan", "--dir", tree.to_str().unwrap()])
        .expect_code(0);
    let tags = |name: &str| -> Vec<String> {
        let o = ws.object("repository", "ns", name);
        o["lastScanResult"]["latestTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tags("default"), ["v2", "v1", "develop-2", "develop-1"]);
    // The user's list replaces the default: .sig tags come back, develop-* go.
    assert_eq!(tags("custom"), ["v3.sig", "v2", "v1"]);
    let img = reg.image(&repo);
    assert_eq!(ws.latest("ns", "custom").unwrap(), format!("{img}:v3.sig"));
    assert_eq!(ws.latest("ns", "default").unwrap(), format!("{img}:v2"));
}

#[test]
fn variables_resolve_from_flags_and_files_and_unresolved_is_bad_input() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let repo = unique("vars");
    push(&reg, &repo, "staging-v1.0.0-aaaaaaa-10");
    push(&reg, &repo, "staging-v1.0.1-bbbbbbb-20");
    let (host, path) = (reg.host.clone(), repo.clone());
    let tree = ws.join("tree");
    let repo_doc = image_repository("flux-system", "app", "${registry_host}/${repo_path}", "");
    write_tree(
        &tree,
        &[
            ("repo.yaml", &repo_doc),
            (
                "policy.yaml",
                &image_policy(
                    "flux-system",
                    "app",
                    "flux-system",
                    "app",
                    &seed_policy_spec("staging"),
                ),
            ),
        ],
    );
    let t = tree.to_str().unwrap();

    // Unresolved: exit 2, the message names file, line and variable; no state file is created.
    let r = ws.ferry(&[
        "scan",
        "--dir",
        t,
        "--var",
        &format!("registry_host={host}"),
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("repo.yaml:7"), "{}", r.stderr);
    assert!(
        r.stderr.contains("${repo_path}") || r.stderr.contains("repo_path"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("unresolved").count(),
        1,
        "message repeated: {}",
        r.stderr
    );
    assert!(!ws.state().exists(), "state file created on bad input");

    // --var plus --vars-file resolve everything.
    let vars_file = ws.join("vars.env");
    std::fs::write(&vars_file, format!("repo_path={path}\n")).unwrap();
    let vf = vars_file.to_str().unwrap();
    ws.ferry(&[
        "scan",
        "--dir",
        t,
        "--var",
        &format!("registry_host={host}"),
        "--vars-file",
        vf,
    ])
    .expect_code(0);
    assert_eq!(
        ws.latest("flux-system", "app").unwrap(),
        format!("{host}/{path}:staging-v1.0.1-bbbbbbb-20")
    );
    // A later unresolved run changes nothing in the existing state.
    let get_before = ws
        .ferry(&["get", "images", "all", "-A", "-o", "json"])
        .stdout;
    let before = file_bytes(&ws.state()).unwrap();
    ws.ferry(&["scan", "--dir", t, "--vars-file", vf])
        .expect_code(2);
    assert!(
        file_bytes(&ws.state()).unwrap() == before,
        "state file changed on bad input"
    );
    assert_eq!(
        ws.ferry(&["get", "images", "all", "-A", "-o", "json"])
            .stdout,
        get_before
    );
}

#[test]
fn two_scans_at_once_share_the_state_file() {
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let tree = ws.join("tree");
    let mut docs_v = Vec::new();
    for i in 0..6 {
        let repo = unique(&format!("conc{i}"));
        for t in ["develop-v1.0.0-aaaaaaa-1", "develop-v1.0.1-bbbbbbb-2"] {
            push(&reg, &repo, t);
        }
        docs_v.push(image_repository(
            "ns",
            &format!("r{i}"),
            &reg.image(&repo),
            "",
        ));
        docs_v.push(image_policy(
            "ns",
            &format!("p{i}"),
            "ns",
            &format!("r{i}"),
            &seed_policy_spec("develop"),
        ));
    }
    write_tree(&tree, &[("objs.yaml", &docs(&docs_v))]);
    let t = tree.to_str().unwrap().to_string();
    let state = ws.state_str();
    for _round in 0..3 {
        let children: Vec<_> = (0..2)
            .map(|_| {
                command(&["scan", "--dir", &t, "--state", &state])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let r = wait_with_timeout(c, RUN_TIMEOUT, vec!["scan".into()]);
            r.expect_code(0);
        }
    }
    let all = ws.get_json("all");
    assert_eq!(all.as_array().unwrap().len(), 12, "{all:#}");
    for i in 0..6 {
        let l = ws.latest("ns", &format!("p{i}")).unwrap();
        assert!(l.ends_with(":develop-v1.0.1-bbbbbbb-2"), "{l}");
    }
}

/// Issue 14, defect 2: `get images` shows the stored state and runs no git (no fetch of holds),
/// even when the write-back repository is unreachable; `--refresh` opts in to a scan, which
/// does read holds from Git.
#[test]
fn get_reads_stored_state_only_and_refresh_opts_in() {
    let ws = Workspace::new();
    let gitops = ws.join("gitops");
    // Nothing listens on port 1: every registry and Git access fails at once.
    init_seed(
        &gitops,
        "127.0.0.1:1/org",
        "git://127.0.0.1:1/gitops.git",
        &[],
    );
    // A `git` on PATH that records every call before running the real one.
    let bin = ws.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = ws.join("git-calls.log");
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrapper = bin.join("git");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str]| {
        let state = ws.state_str();
        let cache = ws.cache_str();
        let mut full = args.to_vec();
        full.extend(["--state", &state]);
        if args.contains(&"--refresh") || args[0] == "scan" {
            full.extend(["--cache-dir", &cache]);
        }
        let child = command(&full).env("PATH", &path).spawn().unwrap();
        wait_with_timeout(child, RUN_TIMEOUT, Vec::new())
    };
    let fetches = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("fetch"))
            .count()
    };

    let dir = gitops.to_string_lossy().into_owned();
    run(&["scan", "--dir", &dir]).expect_code(1);
    let after_scan = fetches();
    assert_eq!(after_scan, 1, "the scan reads holds from Git once");

    let get = run(&["get", "images", "all", "-A"]);
    get.expect_code(0);
    assert_eq!(fetches(), after_scan, "get must not fetch");
    assert!(!get.stderr.contains("fetch"), "{}", get.stderr);
    assert!(get.stdout.contains("imagepolicy/backend"), "{}", get.stdout);

    let refreshed = run(&["get", "images", "all", "-A", "--refresh", "--dir", &dir]);
    refreshed.expect_code(1);
    assert_eq!(fetches(), after_scan + 1, "--refresh scans, holds included");
    assert!(refreshed.stdout.contains("imagepolicy/backend"));
}
