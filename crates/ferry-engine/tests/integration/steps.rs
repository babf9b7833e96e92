//! The engine's per-object steps against the real servers (docker-registry, git daemon), called
//! the way a driver calls them: scan one ImageRepository, elect its policy from that scan in
//! memory, run the automation from that election. The store is never written by a step.

use std::path::Path;
use std::process::Command;

use ferry_engine::{AutomationOptions, Computed, Engine, EngineConfig, SecretsDir};
use ferry_setters::ImageRef;
use ferry_store::{Kind, PolicyRecord, Store};
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry, unique_repo};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn objects(image: &str, url: &str) -> ferry_api::ObjectSet {
    let yaml = format!(
        "\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app, namespace: apps}}
spec: {{image: {image}, interval: 1m}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app, namespace: apps}}
spec:
  imageRepositoryRef: {{name: app}}
  policy: {{semver: {{range: '>=1.0.0'}}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: gitops, namespace: apps}}
spec: {{url: '{url}', interval: 1m, ref: {{branch: main}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: app, namespace: apps}}
spec:
  interval: 1m
  sourceRef: {{kind: GitRepository, name: gitops}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit:
      author: {{name: bot, email: bot@example.com}}
    push: {{branch: main}}
  update: {{path: ./deploy, strategy: Setters}}
"
    );
    ferry_api::load_str("objects.yaml", &yaml, &ferry_api::Vars::new()).unwrap()
}

#[tokio::test]
async fn steps_scan_elect_and_write_back_without_the_store() {
    let (Some(reg), Some(env)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let repo_name = unique_repo("steps");
    reg.push_image(&repo_name, "1.0.0");
    let newest = reg.push_image_with(&repo_name, "1.2.0", "newest");
    let image = reg.image(&repo_name);

    let bare = env.new_repo("steps", false).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("deploy")).unwrap();
    let deployment = format!(
        "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}:1.0.0 # {{\"$imagepolicy\": \"apps:app\"}}\n"
    );
    std::fs::write(dir.join("deploy/app.yaml"), deployment).unwrap();
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "seed",
        ],
    );
    git(dir, &["push", "-q", &env.daemon(&bare), "main"]);

    let objects = objects(&image, &env.daemon(&bare));
    let cache = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        EngineConfig {
            secrets: SecretsDir::new(None),
            cache_dir: cache.path().to_path_buf(),
            kustomize: None,
            no_cross_namespace_refs: false,
            registry: Default::default(),
        },
        Store::in_memory().unwrap(),
    );

    // Step 1: the scan, in memory.
    let scan = engine
        .scan_repository(&objects.image_repositories[0])
        .await
        .unwrap();
    assert_eq!(scan.tags, vec!["1.2.0", "1.0.0"]);
    // Step 2: the election from that scan (no store read).
    let policy = &objects.image_policies[0];
    let election = engine
        .elect_policy(&objects, policy, &scan.tags, &PolicyRecord::default(), &[])
        .await
        .unwrap();
    let latest: ImageRef = election.status.latest_ref.clone().unwrap();
    assert_eq!(
        (latest.name.as_str(), latest.tag.as_str()),
        (image.as_str(), "1.2.0")
    );
    // Step 3: the automation from that election and the scan it came from.
    let mut elections = Computed::default();
    elections.set_tags("apps", "app", scan.tags.clone());
    elections.set_latest("apps", "app", latest);
    let automation = &objects.image_update_automations[0];
    let options = AutomationOptions::default();
    let pushed = engine
        .run_automation(&objects, automation, &elections, &options)
        .await
        .unwrap()
        .expect("a commit");
    let sha = pushed.commit.clone().unwrap();

    // Git has exactly that commit at the tip, with the new tag written through the marker.
    let check = tempfile::tempdir().unwrap();
    git(check.path(), &["clone", "-q", &env.daemon(&bare), "."]);
    assert_eq!(git(check.path(), &["rev-parse", "HEAD"]), sha);
    let written = std::fs::read_to_string(check.path().join("deploy/app.yaml")).unwrap();
    assert!(
        written.contains(&format!("image: {image}:1.2.0 # ")),
        "{written}"
    );
    // The digest the registry holds for the elected tag is the one pushed.
    assert_eq!(newest.len(), 71, "{newest}");

    // Run again: Git is up to date, nothing is pushed.
    let again = engine
        .run_automation(&objects, automation, &elections, &options)
        .await
        .unwrap();
    assert!(again.is_none(), "{again:?}");
    // The steps stored nothing: recording is the driver's choice.
    for kind in Kind::RECONCILED {
        assert!(
            engine.store().list(kind).unwrap().is_empty(),
            "{kind} was stored"
        );
    }
}
