//! Loading real directory trees written by each test.

use std::fs;
use std::path::Path;
use std::time::Duration;

use ferry_api::{DigestReflectionPolicy, LoadErrorKind, SortOrder, Source, Vars, load_dir};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn vars(pairs: &[(&str, &str)]) -> Vars {
    let mut v = Vars::new();
    for (k, val) in pairs {
        v.insert(k, val).unwrap();
    }
    v
}

const IMAGE_REPO: &str = "---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: backend
  namespace: flux-system
spec:
  image: ${image_registry}/backend
  interval: 1m0s
  secretRef:
    name: ghcr-credentials-docker
  accessFrom:
    namespaceSelectors:
      - matchLabels:
          environment: development
      - matchLabels:
          environment: staging
      - matchLabels:
          environment: production
";

fn policy(app: &str, env: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: {app}
  namespace: {env}
spec:
  imageRepositoryRef:
    name: {app}
    namespace: flux-system
  filterTags:
    pattern: '^{env}-v[0-9]+\\.[0-9]+\\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$'
    extract: '$ts'
  policy:
    numerical:
      order: asc
"
    )
}

fn automation(app: &str, env: &str, path: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: {app}-{env}
  namespace: {env}
spec:
  interval: 5m
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{{{range .Changed.Changes}}}}{{{{print .OldValue}}}} -> {{{{println .NewValue}}}}{{{{end}}}}'
    push:
      branch: main
  update:
    path: {path}
    strategy: Setters
"
    )
}

const NAMESPACES: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: develop
  labels:
    environment: development
---
apiVersion: v1
kind: Namespace
metadata:
  name: staging
  labels:
    environment: staging
---
apiVersion: v1
kind: Namespace
metadata:
  name: production
  labels:
    environment: production
";

const GIT_REPO: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  secretRef:
    name: flux-system
  url: ssh://git@github.com/acme/gitops
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
spec:
  template:
    spec:
      containers:
        - name: backend
          image: ghcr.io/acme/backend:develop-v0.0.1-a1b2c3d-1738860000 # {\"$imagepolicy\": \"develop:backend\"}
";

/// The layout of the seed chapter (flux/bootstrap/..., flux/apps/...).
fn seed_tree(root: &Path) {
    let ia = "flux/bootstrap/infrastructure/image-automation";
    write(root, &format!("{ia}/backend-image-repo.yaml"), IMAGE_REPO);
    write(
        root,
        &format!("{ia}/frontend-image-repo.yaml"),
        &IMAGE_REPO.replace("backend", "frontend"),
    );
    write(root, &format!("{ia}/git-repository.yaml"), GIT_REPO);
    write(
        root,
        &format!("{ia}/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - backend-image-repo.yaml\n",
    );
    write(root, "flux/bootstrap/namespaces.yaml", NAMESPACES);
    for env in ["develop", "staging", "production"] {
        let b = format!("flux/apps/backend/{env}");
        write(
            root,
            &format!("{b}/image-policy.yaml"),
            &policy("backend", env),
        );
        write(
            root,
            &format!("{b}/image-automation.yaml"),
            &automation("backend", env, &format!("./{b}")),
        );
        write(root, &format!("{b}/deployment.yaml"), DEPLOYMENT);
        let f = format!("flux/apps/frontend/overlays/{env}");
        write(
            root,
            &format!("{f}/image-policy.yaml"),
            &policy("frontend", env),
        );
        write(
            root,
            &format!("{f}/image-automation.yaml"),
            &automation("frontend", env, &format!("./{f}")),
        );
    }
    write(root, "README.md", "# not yaml\n");
    write(root, ".github/workflows/build.yml", "on: push\njobs: {}\n");
}

#[test]
fn seed_layout_loads_with_var() {
    let dir = tempfile::tempdir().unwrap();
    seed_tree(dir.path());
    let set = load_dir(dir.path(), &vars(&[("image_registry", "ghcr.io/acme")])).unwrap();

    assert_eq!(set.image_repositories.len(), 2);
    assert_eq!(set.image_policies.len(), 6);
    assert_eq!(set.automations().len(), 6);
    assert_eq!(set.git_repositories.len(), 1);
    assert_eq!(set.namespaces.len(), 3);
    assert!(set.pipelines().is_empty());

    let repo = set.image_repository("flux-system", "backend").unwrap();
    assert_eq!(repo.spec.image, "ghcr.io/acme/backend");
    assert_eq!(repo.spec.interval.as_duration(), Duration::from_secs(60));
    assert_eq!(
        repo.spec.secret_ref.as_ref().unwrap().name,
        "ghcr-credentials-docker"
    );
    assert_eq!(repo.spec.exclusion_list, None);
    assert_eq!(repo.spec.exclusion_list(), vec!["^.*\\.sig$".to_string()]);
    let sels = &repo.spec.access_from.as_ref().unwrap().namespace_selectors;
    assert_eq!(sels.len(), 3);
    assert_eq!(sels[2].match_labels["environment"], "production");
    assert_eq!(
        repo.source,
        Source {
            file: "flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml".into(),
            line: 2
        }
    );

    let pol = set.image_policy("staging", "backend").unwrap();
    assert_eq!(pol.spec.image_repository_ref.name, "backend");
    assert_eq!(
        pol.spec.image_repository_ref.namespace_or("staging"),
        "flux-system"
    );
    let ft = pol.spec.filter_tags.as_ref().unwrap();
    assert_eq!(
        ft.pattern.as_deref(),
        Some(r"^staging-v[0-9]+\.[0-9]+\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$")
    );
    // `$ts` is not a `${...}` placeholder and survives substitution.
    assert_eq!(ft.extract.as_deref(), Some("$ts"));
    assert_eq!(
        pol.spec.policy.numerical.as_ref().unwrap().order,
        SortOrder::Asc
    );
    assert!(pol.spec.policy.semver.is_none());
    assert_eq!(
        pol.spec.digest_reflection_policy,
        DigestReflectionPolicy::Never
    );
    assert_eq!(set.policies_in("production").count(), 2);

    let labels = set.namespace_labels("staging").unwrap();
    assert_eq!(labels["environment"], "staging");
    assert_eq!(labels["kubernetes.io/metadata.name"], "staging");
    assert!(set.namespace_labels("nowhere").is_none());

    let auto = set
        .automations()
        .iter()
        .find(|a| a.metadata.name == "frontend-production")
        .unwrap();
    assert_eq!(auto.metadata.namespace, "production");
    assert_eq!(auto.spec.interval.to_string(), "5m0s");
    assert_eq!(auto.spec.source_ref.name, "flux-system");
    let git = auto.spec.git.as_ref().unwrap();
    assert_eq!(
        git.checkout.as_ref().unwrap().reference.branch.as_deref(),
        Some("main")
    );
    assert_eq!(
        git.commit.author.email,
        "fluxcdbot@users.noreply.github.com"
    );
    assert!(
        git.commit
            .message_template
            .as_deref()
            .unwrap()
            .starts_with("{{range .Changed.Changes}}")
    );
    assert_eq!(git.push.as_ref().unwrap().branch.as_deref(), Some("main"));
    assert_eq!(
        auto.spec.update.as_ref().unwrap().path.as_deref(),
        Some("./flux/apps/frontend/overlays/production")
    );

    let gr = set.git_repository("flux-system", "flux-system").unwrap();
    assert_eq!(gr.spec.url, "ssh://git@github.com/acme/gitops");
    assert_eq!(
        gr.spec.reference.as_ref().unwrap().branch.as_deref(),
        Some("main")
    );
    assert_eq!(gr.spec.effective_timeout(), Duration::from_secs(60));
}

#[test]
fn seed_layout_without_var_names_file_line_and_object() {
    let dir = tempfile::tempdir().unwrap();
    seed_tree(dir.path());
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    let text = errs.to_string();
    assert_eq!(errs.len(), 2, "{text}");
    assert_eq!(
        errs.0[0].to_string(),
        "flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml:8: unresolved variable ${image_registry} in ImageRepository flux-system/backend; pass --var image_registry=VALUE or --vars-file"
    );
    assert!(errs.0[1].to_string().starts_with(
        "flux/bootstrap/infrastructure/image-automation/frontend-image-repo.yaml:8: unresolved variable ${image_registry} in ImageRepository flux-system/frontend"
    ));
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn multi_doc_other_kinds_and_default_namespace() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "all.yml",
        "# leading comment
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: '${not_a_candidate}'}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
spec:
  imageRepositoryRef: {name: web}
  policy:
    semver: {range: '>=1.0.0'}
    alphabetical: {order: desc}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: x}
spec:
  chart:
    spec:
      sourceRef: {apiVersion: source.toolkit.fluxcd.io/v1, kind: HelmRepository, name: y}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: y}
spec: {url: 'https://charts.example', interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: web, namespace: apps}
spec:
  image: ghcr.io/acme/web
  interval: 30s
  exclusionList: []
  provider: aws
",
    );
    write(
        dir.path(),
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [all.yml]\n",
    );
    let set = load_dir(dir.path(), &Vars::new()).unwrap();
    assert_eq!(set.len(), 2);
    let pol = set.image_policy("default", "web").unwrap();
    assert_eq!(pol.source.line, 11);
    // Two choices at once load fine; the engine reports them.
    assert!(pol.spec.policy.semver.is_some());
    assert_eq!(
        pol.spec.policy.alphabetical.as_ref().unwrap().order,
        SortOrder::Desc
    );
    assert_eq!(pol.spec.image_repository_ref.namespace, None);
    let repo = set.image_repository("apps", "web").unwrap();
    assert_eq!(repo.source.line, 34);
    assert_eq!(repo.spec.exclusion_list, Some(vec![]));
    assert_eq!(repo.spec.exclusion_list(), vec!["^.*\\.sig$".to_string()]);
    assert_eq!(repo.spec.provider(), ferry_api::ImageProvider::Aws);
}

#[test]
fn exclusion_list_replaces_default() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "r.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: r}
spec:
  image: alpine
  interval: 1h
  timeout: 30s
  insecure: true
  suspend: true
  certSecretRef: {name: ca}
  exclusionList: ['^.*-rc$']
",
    );
    let set = load_dir(dir.path(), &Vars::new()).unwrap();
    let r = set.image_repository("default", "r").unwrap();
    assert_eq!(r.spec.exclusion_list(), vec!["^.*-rc$".to_string()]);
    assert!(r.spec.insecure && r.spec.suspend);
    assert_eq!(r.spec.cert_secret_ref.as_ref().unwrap().name, "ca");
    assert_eq!(r.spec.effective_timeout(), Duration::from_secs(30));
}

#[test]
fn invalid_objects_name_file_line_and_object() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "apps/policy.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: backend
  namespace: develop
spec:
  imageRepositoryRef:
    namespace: flux-system
",
    );
    write(
        dir.path(),
        "apps/repo.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: backend
  namespace: flux-system
spec:
  image: ghcr.io/acme/backend
  interval: 5 minutes
",
    );
    write(
        dir.path(),
        "apps/repo2.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: other
spec:
  insecure: maybe
",
    );
    write(
        dir.path(),
        "apps/auto.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: a
  namespace: develop
spec:
  sourceRef:
    kind: GitRepository
  git:
    commit:
      author: {name: bot}
",
    );
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "apps/auto.yaml:7: ImageUpdateAutomation develop/a: spec.sourceRef.name is required",
            "apps/auto.yaml:6: ImageUpdateAutomation develop/a: spec.interval is required",
            "apps/auto.yaml:11: ImageUpdateAutomation develop/a: spec.git.commit.author.email is required",
            "apps/policy.yaml:7: ImagePolicy develop/backend: spec.imageRepositoryRef.name is required",
            "apps/policy.yaml:6: ImagePolicy develop/backend: spec.policy is required (one of semver, alphabetical, numerical)",
            "apps/repo.yaml:8: ImageRepository flux-system/backend: spec.interval: unknown unit \" minutes\" in duration \"5 minutes\" (expected a Go duration such as 1m0s, 5m, 1h30m, 500ms)",
            "apps/repo2.yaml:6: ImageRepository default/other: spec.insecure: invalid boolean",
        ],
        "{errs}"
    );
    assert!(matches!(errs.0[0].kind, LoadErrorKind::Invalid(_)));
    assert_eq!(errs.to_string().lines().count(), lines.len());
}

#[test]
fn bad_duration_syntax_from_flux_pattern() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "g.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: g}
spec:
  url: https://example.invalid/r.git
  interval: 10us
",
    );
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    let s = errs.to_string();
    assert!(
        s.starts_with("g.yaml:6: GitRepository default/g: spec.interval: duration \"10us\" does not match the Flux pattern"),
        "{s}"
    );
}

#[test]
fn duplicates_name_both_locations() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy("backend", "develop");
    write(dir.path(), "a/policy.yaml", &p);
    write(dir.path(), "b/copy.yaml", &format!("# copy\n---\n{p}"));
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    assert_eq!(
        errs.to_string(),
        "b/copy.yaml:3: ImagePolicy develop/backend: duplicate object; first defined at a/policy.yaml:1"
    );
    assert!(matches!(
        &errs.0[0].kind,
        LoadErrorKind::Duplicate { first } if first.file == "a/policy.yaml"
    ));
}

#[test]
fn syntax_errors_only_matter_for_our_kinds() {
    let dir = tempfile::tempdir().unwrap();
    // A templated Deployment that is not valid YAML: ignored.
    write(
        dir.path(),
        "templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }\n  labels: [oops\n",
    );
    write(dir.path(), "binary.yaml", "");
    fs::write(dir.path().join("binary.yaml"), b"\xff\xfe\x00garbage: [\n").unwrap();
    assert!(load_dir(dir.path(), &Vars::new()).unwrap().is_empty());

    write(
        dir.path(),
        "apps/image-policy.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: backend\n  namespace: develop\nspec:\n  policy: [numerical\n",
    );
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs}");
    let s = errs.to_string();
    assert!(
        s.starts_with("apps/image-policy.yaml:")
            && s.contains(": ImagePolicy develop/backend: YAML syntax error: "),
        "{s}"
    );
    assert!(matches!(errs.0[0].kind, LoadErrorKind::Syntax(_)));
}

#[test]
fn non_utf8_policy_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = policy("backend", "develop").into_bytes();
    bytes.extend_from_slice(b"# \xff\n");
    fs::write(dir.path().join("p.yaml"), bytes).unwrap();
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    assert_eq!(
        errs.to_string(),
        "p.yaml:1: ImagePolicy develop/backend: file is not valid UTF-8"
    );
}

#[test]
fn git_dir_skipped_hidden_dirs_scanned() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".git/objects/p.yaml", &policy("a", "x"));
    write(dir.path(), ".flux/p.yaml", &policy("b", "x"));
    let set = load_dir(dir.path(), &Vars::new()).unwrap();
    assert_eq!(set.image_policies.len(), 1);
    assert_eq!(set.image_policies[0].source.file, ".flux/p.yaml");
}

#[test]
fn single_file_root() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ns.yaml", NAMESPACES);
    let set = load_dir(&dir.path().join("ns.yaml"), &Vars::new()).unwrap();
    assert_eq!(set.namespaces.len(), 3);
    assert_eq!(
        set.namespaces[1].source,
        Source {
            file: "ns.yaml".into(),
            line: 8
        }
    );
    assert_eq!(set.namespaces[1].metadata.namespace, "");
}

#[test]
fn missing_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let errs = load_dir(&dir.path().join("nope"), &Vars::new()).unwrap_err();
    assert!(matches!(errs.0[0].kind, LoadErrorKind::Io(_)));
}

#[test]
fn substitution_defaults_escapes_and_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "r.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: ${app:=web}
  namespace: ${ns}
spec:
  image: ${registry:=docker.io/library}/${app:=web} # ${in_comment}
  interval: ${interval:-1m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: auto
  namespace: apps
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
spec:
  interval: 1m
  sourceRef: {name: repo}
  git:
    commit:
      author: {email: bot@example.com}
      messageTemplate: 'bump ${literal} and $${escaped}'
",
    );
    let set = load_dir(dir.path(), &vars(&[("ns", "apps")])).unwrap();
    let r = set.image_repository("apps", "web").unwrap();
    assert_eq!(r.spec.image, "docker.io/library/web");
    assert_eq!(r.spec.interval.to_string(), "1m0s");
    let a = set.automations()[0].clone();
    assert_eq!(
        a.spec.git.unwrap().commit.message_template.as_deref(),
        Some("bump ${literal} and $${escaped}")
    );
    assert_eq!(a.spec.source_ref.kind, "GitRepository");
    assert_eq!(
        a.spec.update.unwrap().strategy,
        ferry_api::UpdateStrategyName::Setters
    );
}

#[test]
fn unknown_ferry_kinds_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "old.yaml",
        "apiVersion: ferry.dev/v1alpha1\nkind: Pipelin\nmetadata: {name: x}\n",
    );
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "old.yaml:1: Pipelin default/x: unknown kind \"Pipelin\" in apiVersion ferry.dev/v1alpha1; Ferry defines: Pipeline",
        ]
    );
}

/// Issue 15, defect 5: v1beta2 (and v1beta1) image objects load as v1, with ONE warning per
/// file naming `flux migrate`; a v1beta1 `.Updated` template fails only its automation, with
/// Flux's reason RemovedTemplateField.
#[test]
fn old_image_versions_load_as_v1_with_one_warning_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = |name: &str| {
        format!(
            "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata: {{name: {name}, namespace: n}}\nspec: {{imageRepositoryRef: {{name: r}}, policy: {{semver: {{range: '>=1.0.0'}}}}}}\n"
        )
    };
    write(
        dir.path(),
        "old.yaml",
        &format!("{}---\n{}", policy("a"), policy("b")),
    );
    write(
        dir.path(),
        "auto.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1beta1\nkind: ImageUpdateAutomation\nmetadata: {name: old, namespace: n}\nspec:\n  interval: 1m\n  sourceRef: {kind: GitRepository, name: g}\n  git:\n    commit:\n      author: {email: a@b}\n      messageTemplate: '{{range .Updated.Images}}{{.}}{{end}}'\n---\napiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageUpdateAutomation\nmetadata: {name: ok, namespace: n}\nspec:\n  interval: 1m\n  sourceRef: {kind: GitRepository, name: g}\n",
    );
    let loaded = ferry_api::load_dir_report(dir.path(), &Vars::new());
    assert_eq!(loaded.set.image_policies.len(), 2);
    assert_eq!(loaded.set.image_update_automations.len(), 1);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.contains("flux migrate")),
        "{warnings:?}"
    );
    let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("ImageUpdateAutomation n/old")
            && errors[0].contains("RemovedTemplateField"),
        "{errors:?}"
    );
}

#[test]
fn pipelines_load_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ferry/pipeline.yaml",
        "apiVersion: ferry.dev/v1alpha1
kind: Pipeline
metadata:
  name: backend
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: backend
  stages:
    - name: develop
      namespace: develop
      policy: backend
    - name: staging
      namespace: staging
      policy: backend
      gates: {soak: 1h}
    - name: production
      namespace: production
      policy: backend
      tagTemplate: 'production-{{ .Version }}'
      alias: production
      gates:
        soak: 24h
        approval: true
",
    );
    let set = load_dir(dir.path(), &Vars::new()).unwrap();
    let p = set.pipeline("flux-system", "backend").unwrap();
    assert_eq!(p.spec.stages.len(), 3);
    let prod = &p.spec.stages[2];
    assert_eq!(prod.alias.as_deref(), Some("production"));
    let gates = prod.gates.as_ref().unwrap();
    assert!(gates.approval);
    assert_eq!(
        gates.soak.unwrap().as_duration(),
        Duration::from_secs(86_400)
    );
    assert!(p.spec.stages[0].gates.is_none());

    write(
        dir.path(),
        "ferry/bad.yaml",
        "apiVersion: ferry.dev/v1alpha1
kind: Pipeline
metadata: {name: bad}
spec:
  imageRepositoryRef: {name: backend}
  stages:
    - name: develop
      namespace: develop
    - name: develop
      namespace: staging
      policy: backend
      gates: {approval: yes}
",
    );
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "ferry/bad.yaml:7: Pipeline default/bad: spec.stages[0].policy is required",
            "ferry/bad.yaml:9: Pipeline default/bad: spec.stages[1].name \"develop\" repeats spec.stages[0].name",
        ]
    );
}

#[test]
fn all_errors_are_collected_across_files() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write(
            dir.path(),
            &format!("r{i}.yaml"),
            &IMAGE_REPO.replace("backend", &format!("b{i}")),
        );
    }
    let errs = load_dir(dir.path(), &Vars::new()).unwrap_err();
    assert_eq!(errs.len(), 3);
    let files: Vec<&str> = errs.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(files, vec!["r0.yaml", "r1.yaml", "r2.yaml"]);
}

#[test]
fn crlf_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}---\n{}", NAMESPACES, policy("backend", "develop")).replace('\n', "\r\n");
    write(dir.path(), "crlf.yaml", &text);
    let set = load_dir(dir.path(), &Vars::new()).unwrap();
    assert_eq!(set.namespaces.len(), 3);
    let p = set.image_policy("develop", "backend").unwrap();
    assert_eq!(p.source.line, 22);
    assert!(
        p.spec
            .filter_tags
            .as_ref()
            .unwrap()
            .pattern
            .as_deref()
            .unwrap()
            .ends_with(")$")
    );
}

#[test]
fn truncated_documents_never_panic() {
    // Every prefix of real documents: loading must return Ok or Err, never panic.
    let sources = [
        IMAGE_REPO.to_string(),
        policy("backend", "develop"),
        automation("backend", "develop", "./apps"),
        NAMESPACES.to_string(),
        GIT_REPO.to_string(),
    ];
    let v = vars(&[("image_registry", "ghcr.io/acme")]);
    for src in &sources {
        let mut cut = 0;
        while cut <= src.len() {
            let _ = ferry_api::load_str("t.yaml", &src[..cut], &v);
            cut += 1;
            while !src.is_char_boundary(cut.min(src.len())) {
                cut += 1;
            }
        }
    }
}

#[test]
fn serialized_objects_load_back() {
    let dir = tempfile::tempdir().unwrap();
    seed_tree(dir.path());
    let set = load_dir(dir.path(), &vars(&[("image_registry", "ghcr.io/acme")])).unwrap();
    let mut docs = Vec::new();
    for o in &set.image_repositories {
        docs.push(serde_saphyr::to_string(o).unwrap());
    }
    for o in &set.image_policies {
        docs.push(serde_saphyr::to_string(o).unwrap());
    }
    for o in set.automations() {
        docs.push(serde_saphyr::to_string(o).unwrap());
    }
    for o in &set.git_repositories {
        docs.push(serde_saphyr::to_string(o).unwrap());
    }
    let joined = docs.join("---\n");
    assert!(
        joined.contains("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"),
        "{joined}"
    );
    let back = ferry_api::load_str("out.yaml", &joined, &Vars::new()).unwrap();
    assert_eq!(back.image_repositories.len(), 2);
    for (a, b) in set.image_policies.iter().zip(&back.image_policies) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.metadata, b.metadata);
    }
    for (a, b) in set.automations().iter().zip(back.automations()) {
        assert_eq!(a.spec, b.spec);
    }
    assert_eq!(set.git_repositories[0].spec, back.git_repositories[0].spec);
}

#[test]
fn flux_kustomization_post_build_substitute_supplies_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    seed_tree(root);
    write(
        root,
        "flux/bootstrap/flux-system/gotk-sync.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./flux/bootstrap/flux-system\n  postBuild:\n    substitute:\n      image_registry: ghcr.io/from-flux\n",
    );
    // Without --var the Kustomization's value is used.
    let set = load_dir(root, &Vars::new()).expect("loads with postBuild defaults");
    let repo = set.image_repository("flux-system", "backend").unwrap();
    assert_eq!(repo.spec.image, "ghcr.io/from-flux/backend");
    // An explicit --var wins.
    let set = load_dir(root, &vars(&[("image_registry", "reg.local/org")])).unwrap();
    let repo = set.image_repository("flux-system", "backend").unwrap();
    assert_eq!(repo.spec.image, "reg.local/org/backend");
}
