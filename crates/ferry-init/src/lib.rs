//! ferry-init: `ferry init`, which scaffolds the GitOps layout of the promotion chapter (develop → staging →
//! production) as Flux `image.toolkit.fluxcd.io/v1` objects plus plain kustomize files.
//!
//! Owns only file generation: it renders every file in memory ([`render`]), checks that none
//! exists (unless `--force`), then writes them ([`run`], which returns the paths for the caller
//! to print). It must not depend on the other workspace crates (the scaffold is plain text),
//! print, or touch files it does not generate.
//!
//! Layout (per environment `develop`, `staging`, `production`):
//! * `flux/bootstrap/flux-system/`: root kustomization + `gotk-sync.yaml` (Flux Kustomization
//!   with `postBuild.substitute.image_registry`).
//! * `flux/bootstrap/infrastructure/image-automation/`: one ImageRepository per app
//!   (`image: ${image_registry}/APP`), the GitRepository used for write-back, the Namespaces
//!   (labelled for the ImageRepository `accessFrom` ACL).
//! * First app ("backend" pattern): `flux/apps/APP/ENV/` with a Deployment whose image line
//!   carries the `{"$imagepolicy": "ENV:APP"}` marker.
//! * Other apps ("frontend" pattern): `flux/apps/APP/base/` + `flux/apps/APP/overlays/ENV/` whose
//!   kustomize `images:` entry carries the `:name` / `:tag` markers.
//!
//! The GitRepository `flux-system` is defined once (in `git-repository.yaml`): a second copy in
//! `gotk-sync.yaml` would be a duplicate object for both `kubectl kustomize` and Ferry's loader.

use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// What to scaffold (the flags of `ferry init`).
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Directory to scaffold into (created if missing).
    pub dir: PathBuf,
    /// Application (image) name, a DNS-1123 label. Repeatable. The first app gets one
    /// directory per environment (flux/apps/APP/ENV); the others get a kustomize base plus
    /// overlays (flux/apps/APP/base, flux/apps/APP/overlays/ENV).
    pub apps: Vec<String>,
    /// Image registry and organisation, HOST[:PORT][/PATH] without scheme or tag. Images are
    /// REGISTRY/APP. Written literally into the deployments and as the `image_registry`
    /// post-build variable of the Flux sync Kustomization.
    pub registry: String,
    /// Name of a kubernetes.io/dockerconfigjson Secret in flux-system for registry access
    /// (sets ImageRepository spec.secretRef). Default: anonymous access.
    pub registry_secret: Option<String>,
    /// URL of the Git repository Flux syncs from and pushes image updates to. Must not embed
    /// a password. Default: a placeholder to edit (git.example.invalid).
    pub git_url: Option<String>,
    /// Name of a Secret in flux-system with Git credentials (sets GitRepository
    /// spec.secretRef). Default: none.
    pub git_secret: Option<String>,
    /// Branch Flux syncs from, checks out and pushes image updates to.
    pub branch: String,
    /// Commit author name of the image update commits.
    pub author_name: String,
    /// Commit author email of the image update commits.
    pub author_email: String,
    /// Overwrite files that already exist (files init does not generate are never touched).
    pub force: bool,
    /// Do not write the NetworkPolicy that admits ingress to each environment namespace only
    /// from that namespace (enforcement needs a CNI that implements NetworkPolicy).
    pub no_network_policies: bool,
}

/// Placeholder written when `--git-url` is not given.
pub const PLACEHOLDER_GIT_URL: &str = "https://git.example.invalid/org/fleet.git";

/// How many conflicting paths an error lists before summarising.
const MAX_LISTED_CONFLICTS: usize = 5;

/// Why `ferry init` stopped. `Invalid` and `Conflict` are bad input (nothing was written).
#[derive(Debug)]
pub enum InitError {
    /// A flag value is invalid.
    Invalid(String),
    /// Target files exist and `--force` was not given (relative paths, first few only).
    Conflict {
        /// The first conflicting paths, relative to DIR.
        paths: Vec<PathBuf>,
        /// How many targets exist in total.
        total: usize,
    },
    /// A target exists but is a directory (or a parent is a file): never overwritten.
    NotAFile(PathBuf),
    /// Reading or writing the file system failed.
    Io {
        /// The path being accessed.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Invalid(msg) => f.write_str(msg),
            InitError::Conflict { paths, total } => {
                let list: Vec<String> = paths.iter().map(|p| slash_path(p)).collect();
                write!(
                    f,
                    "refusing to overwrite existing files: {}",
                    list.join(", ")
                )?;
                if *total > paths.len() {
                    write!(f, " (and {} more)", total - paths.len())?;
                }
                f.write_str("; nothing was written; use --force to overwrite them")
            }
            InitError::NotAFile(p) => write!(
                f,
                "{} exists and is not a regular file (or a parent is not a directory); \
                 init cannot write it, even with --force",
                p.display()
            ),
            InitError::Io { path, action, .. } => {
                write!(f, "cannot {action} {}", path.display())
            }
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One environment of the promotion chain.
struct Env {
    /// Namespace, tag prefix and setter-marker namespace.
    name: &'static str,
    /// Value of the namespace label `environment` (matched by `accessFrom`).
    label: &'static str,
}

const ENVS: [Env; 3] = [
    Env {
        name: "develop",
        label: "development",
    },
    Env {
        name: "staging",
        label: "staging",
    },
    Env {
        name: "production",
        label: "production",
    },
];

/// Validated inputs, ready to render.
struct Plan<'a> {
    apps: &'a [String],
    registry: &'a str,
    registry_secret: Option<&'a str>,
    git_url: &'a str,
    git_secret: Option<&'a str>,
    branch: &'a str,
    author_name: &'a str,
    author_email: &'a str,
    network_policies: bool,
}

/// Scaffolds the layout into `args.dir` and returns the relative paths written, in a fixed
/// order, for the caller to print (with a note when `git_url` is missing: the placeholder
/// [`PLACEHOLDER_GIT_URL`] was written).
///
/// Nothing is written if any target exists and `force` is not set. `Invalid`, `Conflict` and
/// `NotAFile` are bad input (nothing was written in those cases).
pub fn run(args: &InitOptions) -> Result<Vec<PathBuf>, InitError> {
    let files = render(args)?;
    write_files(&args.dir, files, args.force)
}

/// Checks every target, then writes the files under `dir` (created if missing).
fn write_files(
    dir: &Path,
    files: Vec<(PathBuf, String)>,
    force: bool,
) -> Result<Vec<PathBuf>, InitError> {
    check_targets(dir, &files, force)?;
    let mut written = Vec::with_capacity(files.len());
    for (rel, content) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| InitError::Io {
                path: parent.to_path_buf(),
                action: "create directory",
                source,
            })?;
        }
        fs::write(&path, content.as_bytes()).map_err(|source| InitError::Io {
            path: path.clone(),
            action: "write",
            source,
        })?;
        written.push(rel);
    }
    Ok(written)
}

/// Renders every file (relative path, content) in a fixed order, without touching the disk.
pub fn render(args: &InitOptions) -> Result<Vec<(PathBuf, String)>, InitError> {
    render_files(args)
}

/// Fails if a target exists (without `force`) or cannot be a regular file.
fn check_targets(dir: &Path, files: &[(PathBuf, String)], force: bool) -> Result<(), InitError> {
    let mut conflicts = Vec::new();
    for (rel, _) in files {
        // Every ancestor below DIR must be a directory (or absent).
        let mut prefix = PathBuf::new();
        let comps: Vec<Component<'_>> = rel.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            prefix.push(c);
            match fs::metadata(dir.join(&prefix)) {
                Ok(m) if !m.is_dir() => return Err(InitError::NotAFile(dir.join(&prefix))),
                _ => {}
            }
        }
        let path = dir.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => return Err(InitError::NotAFile(path)),
            Ok(_) => conflicts.push(rel.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(InitError::Io {
                    path,
                    action: "inspect",
                    source,
                });
            }
        }
    }
    if conflicts.is_empty() || force {
        return Ok(());
    }
    let total = conflicts.len();
    conflicts.truncate(MAX_LISTED_CONFLICTS);
    Err(InitError::Conflict {
        paths: conflicts,
        total,
    })
}

fn render_files(args: &InitOptions) -> Result<Vec<(PathBuf, String)>, InitError> {
    let plan = validate(args)?;
    let mut files = Files::default();
    render_bootstrap(&plan, &mut files);
    render_infrastructure(&plan, &mut files);
    for (i, app) in plan.apps.iter().enumerate() {
        if i == 0 {
            render_env_dirs_app(&plan, app, &mut files);
        } else {
            render_overlay_app(&plan, app, &mut files);
        }
    }
    Ok(files.0)
}

#[derive(Default)]
struct Files(Vec<(PathBuf, String)>);

impl Files {
    fn add(&mut self, rel: &str, content: String) {
        debug_assert!(content.ends_with('\n'));
        self.0.push((rel.split('/').collect::<PathBuf>(), content));
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

fn validate(args: &InitOptions) -> Result<Plan<'_>, InitError> {
    if args.apps.is_empty() {
        return Err(invalid("at least one --app NAME is required"));
    }
    for (i, app) in args.apps.iter().enumerate() {
        check_dns_label(app).map_err(|why| invalid(format!("invalid --app {app:?}: {why}")))?;
        if args.apps[..i].contains(app) {
            return Err(invalid(format!("--app {app:?} is given more than once")));
        }
    }
    check_registry(&args.registry)
        .map_err(|why| invalid(format!("invalid --registry {:?}: {why}", args.registry)))?;
    for (flag, value) in [
        ("--registry-secret", &args.registry_secret),
        ("--git-secret", &args.git_secret),
    ] {
        if let Some(v) = value {
            check_dns_subdomain(v)
                .map_err(|why| invalid(format!("invalid {flag} {v:?}: {why}")))?;
        }
    }
    let git_url = match &args.git_url {
        Some(u) => {
            check_git_url(u)?;
            u.as_str()
        }
        None => PLACEHOLDER_GIT_URL,
    };
    check_branch(&args.branch)
        .map_err(|why| invalid(format!("invalid --branch {:?}: {why}", args.branch)))?;
    check_author(&args.author_name, &args.author_email)?;
    Ok(Plan {
        apps: &args.apps,
        registry: &args.registry,
        registry_secret: args.registry_secret.as_deref(),
        git_url,
        git_secret: args.git_secret.as_deref(),
        branch: &args.branch,
        author_name: &args.author_name,
        author_email: &args.author_email,
        network_policies: !args.no_network_policies,
    })
}

fn invalid(msg: impl Into<String>) -> InitError {
    InitError::Invalid(msg.into())
}

/// RFC 1123 label, as Kubernetes validates object names used as app/namespace names.
fn check_dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!("must be at most 63 characters (has {})", s.len()));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("must consist of lowercase letters, digits and '-' (a DNS-1123 label)".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit (a DNS-1123 label)".into());
    }
    Ok(())
}

/// RFC 1123 subdomain (Secret names).
fn check_dns_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    for part in s.split('.') {
        check_dns_label(part)
            .map_err(|_| "must be a DNS-1123 subdomain (lowercase letters, digits, '-', '.')")?;
    }
    Ok(())
}

/// `HOST[:PORT][/PATH...]` or a Docker Hub namespace; no scheme, tag or digest.
fn check_registry(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(pos) = s.find("://") {
        return Err(format!(
            "must not include a URL scheme; remove '{}'",
            &s[..pos + 3]
        ));
    }
    if s.contains('@') {
        return Err("must not include a digest or credentials".into());
    }
    if s.ends_with('/') {
        return Err("must not end with '/'".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".into());
    }
    let mut segments = s.split('/');
    let first = segments.next().unwrap_or_default();
    let host_like = first.contains('.') || first.contains(':') || first == "localhost";
    if host_like {
        check_registry_host(first)?;
    } else {
        check_path_component(first)?;
    }
    for seg in segments {
        if let Some(pos) = seg.find(':') {
            return Err(format!("must not include a tag; remove '{}'", &seg[pos..]));
        }
        check_path_component(seg)?;
    }
    Ok(())
}

fn check_registry_host(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // Bracketed IPv6 literal.
        let Some(end) = rest.find(']') else {
            return Err(format!("invalid registry host {host:?}"));
        };
        let (addr, after) = (&rest[..end], &rest[end + 1..]);
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("invalid registry host {host:?}"));
        }
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return Err(format!("invalid registry host {host:?}")),
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let ok = !name.is_empty()
            && name.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(format!("invalid registry host {name:?}"));
        }
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p > 0 && p <= 65535);
        if !ok {
            return Err(format!("invalid registry port {port:?}"));
        }
    }
    Ok(())
}

/// One repository path component: lowercase alphanumerics separated by `.`, `_`, `__` or `-`s.
fn check_path_component(seg: &str) -> Result<(), String> {
    if seg.is_empty() {
        return Err("must not contain an empty path segment ('//')".into());
    }
    let bytes = seg.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = bytes
        .iter()
        .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && bytes.first().is_some_and(|&b| alnum(b))
        && bytes.last().is_some_and(|&b| alnum(b))
        && !seg.contains("..")
        && !seg.contains("___");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "repository path segment {seg:?} must be lowercase letters and digits separated by \
             '.', '_' or '-'"
        ))
    }
}

fn check_git_url(url: &str) -> Result<(), InitError> {
    if url.is_empty() {
        return Err(invalid("invalid --git-url: must not be empty"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "invalid --git-url: must not contain whitespace or control characters",
        ));
    }
    if let Some(pos) = url.find("://") {
        let rest = &url[pos + 3..];
        let authority = rest.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            // Never echo the URL: it holds a password.
            return Err(invalid(
                "invalid --git-url: it embeds a password; remove it and put the credentials in a \
                 Secret in flux-system, then pass --git-secret NAME",
            ));
        }
    }
    Ok(())
}

/// The subset of `git check-ref-format` rules that catches real mistakes.
fn check_branch(b: &str) -> Result<(), String> {
    if b.is_empty() {
        return Err("must not be empty".into());
    }
    let bad_char = b
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(*c));
    if let Some(c) = bad_char {
        return Err(format!("must not contain {c:?}"));
    }
    if b.starts_with('-') || b.starts_with('/') || b.ends_with('/') || b.ends_with('.') {
        return Err("must not start with '-' or '/' nor end with '/' or '.'".into());
    }
    if b.contains("..") || b.contains("//") || b.contains("@{") || b == "@" {
        return Err("must not contain '..', '//' or '@{' nor be '@'".into());
    }
    if b.ends_with(".lock") || b.split('/').any(|c| c.starts_with('.')) {
        return Err("a component must not start with '.' nor end with '.lock'".into());
    }
    Ok(())
}

fn check_author(name: &str, email: &str) -> Result<(), InitError> {
    if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == '<' || c == '>') {
        return Err(invalid(format!(
            "invalid --author-name {name:?}: must be non-empty, without '<', '>' or control \
             characters"
        )));
    }
    let ok = email.contains('@')
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if !ok {
        return Err(invalid(format!(
            "invalid --author-email {email:?}: expected an address like name@example.com"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// YAML helpers

/// A YAML scalar for a user-supplied string: plain when unambiguous, else double-quoted.
fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// Conservative: a plain scalar that both YAML 1.1 and 1.2 read back as this exact string.
fn is_plain_safe(s: &str) -> bool {
    const SPECIAL: [&str; 15] = [
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", "nan", ".nan", "inf",
        ".inf", "-.inf",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._/@:+-".contains(c));
    let numeric_looking = s
        .chars()
        .all(|c| c.is_ascii_digit() || "._:+-eExXoObB".contains(c))
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.starts_with("0b");
    chars_ok
        && (first.is_ascii_alphanumeric() || first == '/' || first == '.')
        && !s.ends_with(':')
        && !numeric_looking
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

const KUSTOMIZE_API: &str = "kustomize.config.k8s.io/v1beta1";
const IMAGE_API: &str = "image.toolkit.fluxcd.io/v1";
const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";
const FLUX_KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";
const FLUX_NS: &str = "flux-system";
const SYNC_PATH: &str = "./flux/bootstrap/flux-system";
const INTERVAL: &str = "1m0s";

/// A `kustomization.yaml`; `namespace` and `extra` (already-rendered trailing fields) optional.
fn kustomization(namespace: Option<&str>, resources: &[String], extra: &str) -> String {
    let mut s = format!("apiVersion: {KUSTOMIZE_API}\nkind: Kustomization\n");
    if let Some(ns) = namespace {
        let _ = writeln!(s, "namespace: {ns}");
    }
    s.push_str("resources:\n");
    for r in resources {
        let _ = writeln!(s, "- {r}");
    }
    s.push_str(extra);
    s
}

/// Initial tag written next to the markers: matches the environment's filter regex, so the
/// policy's first election is always a change.
fn initial_tag(env: &Env) -> String {
    format!("{}-v0.0.0-0000000-0", env.name)
}

/// The tag filter of the chapter, verbatim: `<env>-v<semver>-<sha>-<unix ts>`.
fn tag_pattern(env: &Env) -> String {
    format!(
        r"^{}-v[0-9]+\.[0-9]+\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$",
        env.name
    )
}

// ---------------------------------------------------------------------------------------------
// Renderers

fn app_dirs(plan: &Plan<'_>) -> Vec<String> {
    let mut dirs = Vec::new();
    for (i, app) in plan.apps.iter().enumerate() {
        for env in &ENVS {
            dirs.push(if i == 0 {
                format!("flux/apps/{app}/{}", env.name)
            } else {
                format!("flux/apps/{app}/overlays/{}", env.name)
            });
        }
    }
    dirs
}

fn render_bootstrap(plan: &Plan<'_>, files: &mut Files) {
    let mut resources = vec![
        "gotk-sync.yaml".to_string(),
        "../infrastructure/image-automation".to_string(),
    ];
    resources.extend(
        app_dirs(plan)
            .into_iter()
            .map(|d| format!("../../{}", d.trim_start_matches("flux/"))),
    );
    files.add(
        "flux/bootstrap/flux-system/kustomization.yaml",
        kustomization(None, &resources, ""),
    );
    files.add(
        "flux/bootstrap/flux-system/gotk-sync.yaml",
        format!(
            "apiVersion: {FLUX_KUSTOMIZE_API}\n\
             kind: Kustomization\n\
             metadata:\n\
             \x20 name: flux-system\n\
             \x20 namespace: {FLUX_NS}\n\
             spec:\n\
             \x20 interval: 10m0s\n\
             \x20 path: {SYNC_PATH}\n\
             \x20 prune: true\n\
             \x20 sourceRef:\n\
             \x20   kind: GitRepository\n\
             \x20   name: flux-system\n\
             \x20 postBuild:\n\
             \x20   substitute:\n\
             \x20     image_registry: {}\n",
            scalar(plan.registry)
        ),
    );
}

/// One NetworkPolicy per environment: ingress to every Pod only from Pods of the same namespace
/// (the seed's network isolation; it needs a CNI that enforces NetworkPolicy).
fn network_policies() -> String {
    let mut out = String::new();
    for (i, env) in ENVS.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let _ = write!(
            out,
            "apiVersion: networking.k8s.io/v1\n\
             kind: NetworkPolicy\n\
             metadata:\n\
             \x20 name: same-namespace-only\n\
             \x20 namespace: {}\n\
             spec:\n\
             \x20 podSelector: {{}}\n\
             \x20 policyTypes:\n\
             \x20 - Ingress\n\
             \x20 ingress:\n\
             \x20 - from:\n\
             \x20   - podSelector: {{}}\n",
            env.name
        );
    }
    out
}

fn render_infrastructure(plan: &Plan<'_>, files: &mut Files) {
    const DIR: &str = "flux/bootstrap/infrastructure/image-automation";
    let mut resources = vec!["namespaces.yaml".to_string()];
    if plan.network_policies {
        resources.push("network-policies.yaml".to_string());
    }
    resources.push("git-repository.yaml".to_string());
    for app in plan.apps {
        resources.push(format!("{app}-image-repo.yaml"));
    }
    files.add(
        &format!("{DIR}/kustomization.yaml"),
        kustomization(None, &resources, ""),
    );

    let mut ns = String::new();
    for (i, env) in ENVS.iter().enumerate() {
        if i > 0 {
            ns.push_str("---\n");
        }
        let _ = write!(
            ns,
            "apiVersion: v1\n\
             kind: Namespace\n\
             metadata:\n\
             \x20 name: {}\n\
             \x20 labels:\n\
             \x20   environment: {}\n",
            env.name, env.label
        );
    }
    files.add(&format!("{DIR}/namespaces.yaml"), ns);
    if plan.network_policies {
        files.add(&format!("{DIR}/network-policies.yaml"), network_policies());
    }

    let mut git = format!(
        "apiVersion: {SOURCE_API}\n\
         kind: GitRepository\n\
         metadata:\n\
         \x20 name: flux-system\n\
         \x20 namespace: {FLUX_NS}\n\
         spec:\n\
         \x20 interval: {INTERVAL}\n\
         \x20 url: {}\n\
         \x20 ref:\n\
         \x20   branch: {}\n",
        scalar(plan.git_url),
        scalar(plan.branch)
    );
    if let Some(secret) = plan.git_secret {
        let _ = write!(git, "  secretRef:\n    name: {secret}\n");
    }
    files.add(&format!("{DIR}/git-repository.yaml"), git);

    for app in plan.apps {
        let mut repo = format!(
            "apiVersion: {IMAGE_API}\n\
             kind: ImageRepository\n\
             metadata:\n\
             \x20 name: {app}\n\
             \x20 namespace: {FLUX_NS}\n\
             spec:\n\
             \x20 image: ${{image_registry}}/{app}\n\
             \x20 interval: {INTERVAL}\n"
        );
        if let Some(secret) = plan.registry_secret {
            let _ = write!(repo, "  secretRef:\n    name: {secret}\n");
        }
        repo.push_str("  accessFrom:\n    namespaceSelectors:\n");
        for env in &ENVS {
            let _ = write!(
                repo,
                "    - matchLabels:\n        environment: {}\n",
                env.label
            );
        }
        files.add(&format!("{DIR}/{app}-image-repo.yaml"), repo);
    }
}

fn image_policy(app: &str, env: &Env) -> String {
    format!(
        "apiVersion: {IMAGE_API}\n\
         kind: ImagePolicy\n\
         metadata:\n\
         \x20 name: {app}\n\
         \x20 namespace: {ns}\n\
         spec:\n\
         \x20 imageRepositoryRef:\n\
         \x20   name: {app}\n\
         \x20   namespace: {FLUX_NS}\n\
         \x20 filterTags:\n\
         \x20   pattern: '{pattern}'\n\
         \x20   extract: '$ts'\n\
         \x20 policy:\n\
         \x20   numerical:\n\
         \x20     order: asc\n",
        ns = env.name,
        pattern = tag_pattern(env),
    )
}

fn image_automation(plan: &Plan<'_>, app: &str, env: &Env, update_path: &str) -> String {
    let branch = scalar(plan.branch);
    // Go text/template; `{{-`/`-}}` keep one "- old -> new" line per change.
    format!(
        "apiVersion: {IMAGE_API}\n\
         kind: ImageUpdateAutomation\n\
         metadata:\n\
         \x20 name: {app}\n\
         \x20 namespace: {ns}\n\
         spec:\n\
         \x20 interval: {INTERVAL}\n\
         \x20 sourceRef:\n\
         \x20   kind: GitRepository\n\
         \x20   name: flux-system\n\
         \x20   namespace: {FLUX_NS}\n\
         \x20 git:\n\
         \x20   checkout:\n\
         \x20     ref:\n\
         \x20       branch: {branch}\n\
         \x20   commit:\n\
         \x20     author:\n\
         \x20       name: {name}\n\
         \x20       email: {email}\n\
         \x20     messageTemplate: |-\n\
         \x20       {ns}: update {app} image\n\
         \n\
         \x20       Automation: {{{{ .AutomationObject }}}}\n\
         \x20       {{{{ range .Changed.Changes -}}}}\n\
         \x20       - {{{{ .OldValue }}}} -> {{{{ .NewValue }}}}\n\
         \x20       {{{{ end -}}}}\n\
         \x20   push:\n\
         \x20     branch: {branch}\n\
         \x20 update:\n\
         \x20   path: {update_path}\n\
         \x20   strategy: Setters\n",
        ns = env.name,
        name = scalar(plan.author_name),
        email = scalar(plan.author_email),
    )
}

/// Minimal Deployment; `namespace` is omitted for kustomize bases.
fn deployment(app: &str, namespace: Option<&str>, image_line: &str) -> String {
    let mut s = format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\n");
    if let Some(ns) = namespace {
        let _ = writeln!(s, "  namespace: {ns}");
    }
    let _ = write!(
        s,
        "  labels:\n\
         \x20   app: {app}\n\
         spec:\n\
         \x20 replicas: 1\n\
         \x20 selector:\n\
         \x20   matchLabels:\n\
         \x20     app: {app}\n\
         \x20 template:\n\
         \x20   metadata:\n\
         \x20     labels:\n\
         \x20       app: {app}\n\
         \x20   spec:\n\
         \x20     containers:\n\
         \x20     - name: {app}\n\
         \x20       image: {image_line}\n\
         \x20       ports:\n\
         \x20       - name: http\n\
         \x20         containerPort: 8080\n"
    );
    s
}

/// Backend pattern: one self-contained directory per environment.
fn render_env_dirs_app(plan: &Plan<'_>, app: &str, files: &mut Files) {
    for env in &ENVS {
        let dir = format!("flux/apps/{app}/{}", env.name);
        let resources = [
            "deployment.yaml",
            "image-policy.yaml",
            "image-automation.yaml",
        ]
        .map(String::from);
        files.add(
            &format!("{dir}/kustomization.yaml"),
            kustomization(None, &resources, ""),
        );
        let image_line = format!(
            "{}/{app}:{} # {{\"$imagepolicy\": \"{}:{app}\"}}",
            plan.registry,
            initial_tag(env),
            env.name
        );
        files.add(
            &format!("{dir}/deployment.yaml"),
            deployment(app, Some(env.name), &image_line),
        );
        files.add(&format!("{dir}/image-policy.yaml"), image_policy(app, env));
        files.add(
            &format!("{dir}/image-automation.yaml"),
            image_automation(plan, app, env, &format!("./{dir}")),
        );
    }
}

/// Frontend pattern: a kustomize base plus one overlay per environment.
fn render_overlay_app(plan: &Plan<'_>, app: &str, files: &mut Files) {
    let base = format!("flux/apps/{app}/base");
    files.add(
        &format!("{base}/kustomization.yaml"),
        kustomization(
            None,
            &["deployment.yaml", "service.yaml"].map(String::from),
            "",
        ),
    );
    // The overlays' `images:` entry rewrites this name to REGISTRY/APP:TAG.
    files.add(
        &format!("{base}/deployment.yaml"),
        deployment(app, None, app),
    );
    files.add(
        &format!("{base}/service.yaml"),
        format!(
            "apiVersion: v1\n\
             kind: Service\n\
             metadata:\n\
             \x20 name: {app}\n\
             \x20 labels:\n\
             \x20   app: {app}\n\
             spec:\n\
             \x20 selector:\n\
             \x20   app: {app}\n\
             \x20 ports:\n\
             \x20 - name: http\n\
             \x20   port: 80\n\
             \x20   targetPort: http\n"
        ),
    );
    for env in &ENVS {
        let dir = format!("flux/apps/{app}/overlays/{}", env.name);
        let images = format!(
            "images:\n\
             - name: {app}\n\
             \x20 newName: {registry}/{app} # {{\"$imagepolicy\": \"{ns}:{app}:name\"}}\n\
             \x20 newTag: {tag} # {{\"$imagepolicy\": \"{ns}:{app}:tag\"}}\n",
            registry = plan.registry,
            ns = env.name,
            tag = initial_tag(env),
        );
        let resources =
            ["../../base", "image-policy.yaml", "image-automation.yaml"].map(String::from);
        files.add(
            &format!("{dir}/kustomization.yaml"),
            kustomization(Some(env.name), &resources, &images),
        );
        files.add(&format!("{dir}/image-policy.yaml"), image_policy(app, env));
        files.add(
            &format!("{dir}/image-automation.yaml"),
            image_automation(plan, app, env, &format!("./{dir}")),
        );
    }
}

/// A relative path with `/` separators (stable output on every platform).
fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn args(apps: &[&str]) -> InitOptions {
        InitOptions {
            dir: PathBuf::from("unused"),
            apps: apps.iter().map(|s| s.to_string()).collect(),
            registry: "127.0.0.1:5000/org".into(),
            registry_secret: None,
            git_url: Some("http://127.0.0.1:3000/org/fleet.git".into()),
            git_secret: None,
            branch: "main".into(),
            author_name: "ferry".into(),
            author_email: "ferry@localhost".into(),
            force: false,
            no_network_policies: false,
        }
    }

    fn rendered(a: &InitOptions) -> BTreeMap<String, String> {
        render(a)
            .unwrap()
            .into_iter()
            .map(|(p, c)| (slash_path(&p), c))
            .collect()
    }

    fn err(a: &InitOptions) -> String {
        format!("{:#}", render(a).unwrap_err())
    }

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

    #[test]
    fn file_list_for_backend_and_frontend() {
        let list: Vec<String> = render(&args(&["backend", "frontend"]))
            .unwrap()
            .into_iter()
            .map(|(p, _)| slash_path(&p))
            .collect();
        assert_eq!(list, EXPECTED);
    }

    #[test]
    fn render_is_deterministic_and_well_formed() {
        let a = args(&["backend", "frontend", "worker"]);
        let first = render(&a).unwrap();
        assert_eq!(first, render(&a).unwrap());
        for (path, content) in &first {
            assert!(content.ends_with('\n'), "{}", path.display());
            assert!(!content.ends_with("\n\n"), "{}", path.display());
            assert!(!content.contains('\t'), "{}", path.display());
            assert!(!content.starts_with("---"), "{}", path.display());
            for line in content.lines() {
                let indent = line.len() - line.trim_start().len();
                assert_eq!(indent % 2, 0, "{}: {line:?}", path.display());
                assert_eq!(line, line.trim_end(), "{}: trailing space", path.display());
            }
        }
    }

    #[test]
    fn backend_markers_per_env() {
        let files = rendered(&args(&["backend", "frontend"]));
        for env in ["develop", "staging", "production"] {
            let dep = &files[&format!("flux/apps/backend/{env}/deployment.yaml")];
            let line = format!(
                "        image: 127.0.0.1:5000/org/backend:{env}-v0.0.0-0000000-0 \
                 # {{\"$imagepolicy\": \"{env}:backend\"}}\n"
            );
            assert!(dep.contains(&line), "{env}:\n{dep}");
            assert!(dep.contains(&format!("  namespace: {env}\n")));
            let pol = &files[&format!("flux/apps/backend/{env}/image-policy.yaml")];
            assert!(pol.contains(&format!("  namespace: {env}\n")));
            let pattern = format!(
                "    pattern: '^{env}-v[0-9]+\\.[0-9]+\\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$'\n"
            );
            assert!(pol.contains(&pattern), "{pol}");
            assert!(pol.contains("    extract: '$ts'\n"));
            assert!(pol.contains("    numerical:\n      order: asc\n"));
            let auto = &files[&format!("flux/apps/backend/{env}/image-automation.yaml")];
            assert!(auto.contains(&format!("  namespace: {env}\n")));
            assert!(auto.contains(&format!("    path: ./flux/apps/backend/{env}\n")));
            assert!(auto.contains("    strategy: Setters\n"));
            assert!(auto.contains("        name: ferry\n        email: ferry@localhost\n"));
            assert!(auto.contains(&format!("        {env}: update backend image\n")));
        }
    }

    #[test]
    fn frontend_markers_per_env() {
        let files = rendered(&args(&["backend", "frontend"]));
        for env in ["develop", "staging", "production"] {
            let k = &files[&format!("flux/apps/frontend/overlays/{env}/kustomization.yaml")];
            assert!(k.contains(&format!("namespace: {env}\n")), "{k}");
            assert!(k.contains(&format!(
                "  newName: 127.0.0.1:5000/org/frontend # {{\"$imagepolicy\": \"{env}:frontend:name\"}}\n"
            )));
            assert!(k.contains(&format!(
                "  newTag: {env}-v0.0.0-0000000-0 # {{\"$imagepolicy\": \"{env}:frontend:tag\"}}\n"
            )));
            let auto = &files[&format!("flux/apps/frontend/overlays/{env}/image-automation.yaml")];
            assert!(auto.contains(&format!("    path: ./flux/apps/frontend/overlays/{env}\n")));
            // The raw file (read by Ferry without kustomize) must carry the namespace too.
            let pol = &files[&format!("flux/apps/frontend/overlays/{env}/image-policy.yaml")];
            assert!(pol.contains(&format!("  namespace: {env}\n")));
        }
        let base = &files["flux/apps/frontend/base/deployment.yaml"];
        assert!(!base.contains("$imagepolicy"));
        assert!(!base.contains("namespace:"));
    }

    #[test]
    fn image_repositories_follow_the_seed() {
        let files = rendered(&args(&["backend", "frontend"]));
        let repo = &files["flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml"];
        let expected = "apiVersion: image.toolkit.fluxcd.io/v1\n\
            kind: ImageRepository\n\
            metadata:\n  name: backend\n  namespace: flux-system\n\
            spec:\n  image: ${image_registry}/backend\n  interval: 1m0s\n\
            \x20 accessFrom:\n    namespaceSelectors:\n\
            \x20   - matchLabels:\n        environment: development\n\
            \x20   - matchLabels:\n        environment: staging\n\
            \x20   - matchLabels:\n        environment: production\n";
        assert_eq!(repo, expected);
        let sync = &files["flux/bootstrap/flux-system/gotk-sync.yaml"];
        assert!(sync.contains("      image_registry: 127.0.0.1:5000/org\n"));
        assert!(sync.contains("  path: ./flux/bootstrap/flux-system\n"));
        let git = &files["flux/bootstrap/infrastructure/image-automation/git-repository.yaml"];
        assert!(git.contains("  url: http://127.0.0.1:3000/org/fleet.git\n"));
        assert!(git.contains("    branch: main\n"));
        assert!(!git.contains("secretRef"));
        let ns = &files["flux/bootstrap/infrastructure/image-automation/namespaces.yaml"];
        assert_eq!(ns.matches("kind: Namespace").count(), 3);
        assert!(ns.contains("  name: develop\n  labels:\n    environment: development\n"));
    }

    #[test]
    fn optional_secrets_are_written_only_when_given() {
        let mut a = args(&["backend"]);
        a.registry_secret = Some("ghcr-credentials-docker".into());
        a.git_secret = Some("flux-system".into());
        let files = rendered(&a);
        let repo = &files["flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml"];
        assert!(repo.contains(
            "  interval: 1m0s\n  secretRef:\n    name: ghcr-credentials-docker\n  accessFrom:\n"
        ));
        let git = &files["flux/bootstrap/infrastructure/image-automation/git-repository.yaml"];
        assert!(git.ends_with("  secretRef:\n    name: flux-system\n"));
    }

    #[test]
    fn author_branch_and_placeholder_url() {
        let mut a = args(&["backend"]);
        a.git_url = None;
        a.branch = "release/v1".into();
        a.author_name = "Flux Bot".into();
        a.author_email = "bot@example.com".into();
        let files = rendered(&a);
        let git = &files["flux/bootstrap/infrastructure/image-automation/git-repository.yaml"];
        assert!(git.contains(&format!("  url: {PLACEHOLDER_GIT_URL}\n")));
        let auto = &files["flux/apps/backend/develop/image-automation.yaml"];
        assert!(auto.contains("        name: \"Flux Bot\"\n        email: bot@example.com\n"));
        assert!(auto.contains("        branch: release/v1\n"));
        assert!(auto.contains("      branch: release/v1\n"));
    }

    /// Every `resources:` entry of every kustomization resolves to a rendered file or to a
    /// directory with a rendered kustomization.yaml (what `kubectl kustomize` requires).
    #[test]
    fn kustomization_resources_exist() {
        let files = rendered(&args(&["backend", "frontend", "worker"]));
        let mut referenced_dirs = BTreeSet::new();
        for (path, content) in &files {
            if !path.ends_with("/kustomization.yaml") {
                continue;
            }
            let dir = path.trim_end_matches("/kustomization.yaml");
            let mut in_resources = false;
            for line in content.lines() {
                if !line.starts_with('-') && !line.starts_with(' ') {
                    in_resources = line == "resources:";
                    continue;
                }
                if !in_resources {
                    continue;
                }
                let entry = line.trim_start_matches("- ");
                let target = normalize(&format!("{dir}/{entry}"));
                let ok = files.contains_key(&target)
                    || files.contains_key(&format!("{target}/kustomization.yaml"));
                assert!(ok, "{path}: {entry} -> {target} missing");
                referenced_dirs.insert(target);
            }
        }
        // Every app directory is reachable from the sync root.
        for d in [
            "flux/apps/backend/production",
            "flux/apps/worker/overlays/staging",
        ] {
            assert!(referenced_dirs.contains(d), "{d}");
        }
    }

    fn normalize(p: &str) -> String {
        let mut out: Vec<&str> = Vec::new();
        for seg in p.split('/') {
            match seg {
                ".." => {
                    out.pop();
                }
                "." | "" => {}
                s => out.push(s),
            }
        }
        out.join("/")
    }

    /// No object identity (apiVersion group, kind, namespace, name) is defined twice: neither
    /// kustomize nor Ferry's loader accepts that. Overlay namespaces come from the raw files.
    #[test]
    fn no_duplicate_objects() {
        let files = rendered(&args(&["backend", "frontend", "worker"]));
        let mut seen = BTreeMap::new();
        for (path, content) in &files {
            if path.ends_with("kustomization.yaml") {
                continue;
            }
            for doc in content.split("---\n") {
                let field = |prefix: &str| {
                    doc.lines()
                        .find_map(|l| l.strip_prefix(prefix))
                        .unwrap_or("")
                        .to_string()
                };
                let id = (field("kind: "), field("  namespace: "), field("  name: "));
                // Base objects are namespaced by each overlay; they are not duplicates.
                if path.contains("/base/") {
                    continue;
                }
                if let Some(first) = seen.insert(id.clone(), path.clone()) {
                    panic!("{id:?} in {path} and {first}");
                }
            }
        }
        assert!(seen.contains_key(&(
            "GitRepository".to_string(),
            "flux-system".to_string(),
            "flux-system".to_string()
        )));
    }

    #[test]
    fn rejects_bad_apps() {
        assert!(err(&args(&[])).contains("at least one --app"));
        for bad in ["Backend", "-x", "x-", "a_b", "", &"a".repeat(64)] {
            let e = err(&args(&[bad]));
            assert!(e.contains("invalid --app"), "{bad}: {e}");
        }
        assert!(err(&args(&["a", "b", "a"])).contains("more than once"));
    }

    #[test]
    fn registry_validation() {
        let with = |r: &str| {
            let mut a = args(&["backend"]);
            a.registry = r.into();
            a
        };
        for ok in [
            "127.0.0.1:5000/org",
            "ghcr.io/my-org/sub.team",
            "localhost:5000",
            "docker.io/library",
            "myorg",
            "[::1]:5000/org",
            "Registry.Example.com/org",
        ] {
            render(&with(ok)).unwrap_or_else(|e| panic!("{ok}: {e:#}"));
        }
        let cases = [
            (
                "https://ghcr.io/org",
                "must not include a URL scheme; remove 'https://'",
            ),
            ("ghcr.io/org:v1", "must not include a tag; remove ':v1'"),
            ("ghcr.io/org@sha256:abc", "digest"),
            ("ghcr.io/org/", "must not end with '/'"),
            ("ghcr.io//org", "empty path segment"),
            ("ghcr.io/Org", "lowercase"),
            ("ghcr.io:99999/org", "invalid registry port"),
            ("", "must not be empty"),
            ("ghcr.io/o rg", "whitespace"),
        ];
        for (bad, want) in cases {
            let e = err(&with(bad));
            assert!(
                e.contains("invalid --registry") && e.contains(want),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn other_validation() {
        let mut a = args(&["backend"]);
        a.git_url = Some("https://user:s3cret@git.example.com/org/fleet.git".into());
        let e = err(&a);
        assert!(
            e.contains("embeds a password") && !e.contains("s3cret"),
            "{e}"
        );
        // A user name alone (ssh) is fine.
        a.git_url = Some("ssh://git@github.com/org/fleet.git".into());
        render(&a).unwrap();

        let mut a = args(&["backend"]);
        for bad in ["", "a..b", "-x", "a b", "x.lock", "a:b"] {
            a.branch = bad.into();
            assert!(err(&a).contains("invalid --branch"), "{bad}");
        }
        let mut a = args(&["backend"]);
        a.author_email = "nobody".into();
        assert!(err(&a).contains("invalid --author-email"));
        let mut a = args(&["backend"]);
        a.registry_secret = Some("Bad_Secret".into());
        assert!(err(&a).contains("invalid --registry-secret"));
    }

    #[test]
    fn scalar_quotes_only_when_needed() {
        assert_eq!(scalar("main"), "main");
        assert_eq!(scalar("127.0.0.1:5000/org"), "127.0.0.1:5000/org");
        assert_eq!(
            scalar("https://git.example.com/a.git"),
            "https://git.example.com/a.git"
        );
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1.10"), "\"1.10\"");
        assert_eq!(scalar("Flux Bot"), "\"Flux Bot\"");
        assert_eq!(scalar("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(scalar("x: y"), "\"x: y\"");
        assert_eq!(scalar("#x"), "\"#x\"");
    }

    #[test]
    fn write_refuses_then_forces() {
        let tmp = std::env::temp_dir().join(format!("ferry-init-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let mut a = args(&["backend", "frontend"]);
        a.dir = tmp.join("new/dir");
        let write = |a: &InitOptions| write_files(&a.dir, render_files(a).unwrap(), a.force);
        let written = write(&a).unwrap();
        assert_eq!(written.len(), EXPECTED.len());
        let dep = a.dir.join("flux/apps/backend/develop/deployment.yaml");
        fs::write(&dep, "edited\n").unwrap();
        let e = write(&a).unwrap_err();
        assert!(
            matches!(&e, InitError::Conflict { total, paths } if *total == EXPECTED.len() && paths.len() == MAX_LISTED_CONFLICTS)
        );
        let msg = e.to_string();
        assert!(
            msg.contains("--force") && msg.contains("(and 27 more)"),
            "{msg}"
        );
        assert_eq!(fs::read_to_string(&dep).unwrap(), "edited\n");
        a.force = true;
        write(&a).unwrap();
        assert!(fs::read_to_string(&dep).unwrap().contains("$imagepolicy"));
        // A directory where a file should go is never replaced.
        fs::remove_file(&dep).unwrap();
        fs::create_dir(&dep).unwrap();
        assert!(matches!(write(&a).unwrap_err(), InitError::NotAFile(_)));
        fs::remove_dir_all(&tmp).unwrap();
    }
}
