//! The four operations: publish, promote, approve, version.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ferry_api::{ImagePolicy, ImageRepository, ObjectSet};
use ferry_git::{Backoff, CloneCache, CommitSpec, UpdateError, UpdateOutcome, UpdatePlan};
use ferry_policy::TagFilter;
use ferry_registry::{Credentials, ImageName, RegistryError, RepoAccess, TlsMaterial};

use super::PromoteError;
use super::config::{
    AppPipeline, Bump, DEFAULT_TAG_TEMPLATE, StageConfig, TagFields, TagTemplate, Version,
};
use super::gitops::{
    self, Deployed, GitFallback, GitTarget, RecordSummary, approval_path, read_text, record_path,
    version_path, write_text,
};
use super::records::{
    Approval, ApprovalGate, RecordGates, ReleaseRecord, SoakGate, SourceDeployedGate,
};
use super::retag::{RequestLog, TagPlan, TagWrite, write_tags};
use crate::Engine;

/// `ferry publish`.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// `IMAGE[:TAG|@DIGEST]` already in the registry.
    pub image: String,
    pub env: String,
    /// Default: the app's next version.
    pub version: Option<String>,
    /// The source commit (at least 7 hex digits).
    pub sha: String,
    /// Unix seconds; default now.
    pub timestamp: Option<u64>,
    /// Default: the last path segment of the repository.
    pub app: Option<String>,
    /// Plain HTTP allowed when no ImageRepository describes the image.
    pub insecure: bool,
    /// Extra CA (PEM) when no ImageRepository describes the image.
    pub ca_pem: Option<Vec<u8>>,
    pub dry_run: bool,
}

/// What `publish` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    pub app: String,
    pub image: String,
    pub digest: String,
    pub media_type: String,
    pub version: String,
    pub tags: Vec<TagWrite>,
    /// Every registry request, in order (writes marked `(would)` in a dry run).
    pub requests: Vec<String>,
    /// HTTP requests actually sent (pings and token requests included).
    pub request_count: u64,
}

/// `ferry promote`.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub app: String,
    pub to: String,
    pub from: Option<String>,
    /// Default: the newest tag of the source stage's ImagePolicy.
    pub tag: Option<String>,
    pub dry_run: bool,
    /// Promote even when the source stage's Git state points elsewhere (recorded).
    pub force: bool,
    pub bump: Bump,
    pub by: String,
    /// The `{ts}` of the new immutable tag; default now (a resumed promotion reuses its own).
    pub timestamp: Option<u64>,
}

/// One gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GateResult {
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

/// What `promote` did (or, in a dry run, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PromoteReport {
    pub app: String,
    pub from: String,
    pub to: String,
    pub source_image: String,
    pub target_image: String,
    pub source_tag: String,
    pub digest: String,
    pub media_type: String,
    pub version: String,
    pub tags: Vec<TagWrite>,
    pub forced: bool,
    pub gates: Vec<GateResult>,
    pub record_path: String,
    /// The release commit; `None` when Git already held the record, or in a dry run.
    pub commit: Option<String>,
    pub next_version: Option<String>,
    /// Unified diff of the Git change (dry run only).
    pub git_changes: Option<String>,
    pub git_repository: String,
    pub requests: Vec<String>,
    pub request_count: u64,
    /// Wall time of the registry part (resolve, checks, writes, confirm).
    pub registry_millis: u64,
    /// True when an earlier (interrupted or completed) run of this promotion was resumed.
    pub resumed: bool,
}

/// `ferry approve`.
#[derive(Debug, Clone)]
pub struct ApproveRequest {
    pub app: String,
    pub env: String,
    pub tag: String,
    pub by: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApproveReport {
    pub path: String,
    pub commit: Option<String>,
    pub already: bool,
}

/// `ferry version`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionReport {
    pub app: String,
    /// Highest version released to the last stage.
    pub current: Option<String>,
    pub next: String,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

/// Splits `IMAGE[:TAG|@DIGEST]` into the repository and what to resolve: the digest when
/// there is one, else the tag (`latest` when none is given, as a registry does).
fn split_reference(image: &str) -> Result<(ImageName, String), PromoteError> {
    let parts = ferry_core::split_reference(image);
    let reference = parts.digest.or(parts.tag).unwrap_or("latest").to_string();
    let name = ImageName::parse(parts.name)
        .map_err(|e| PromoteError::Invalid(format!("image {image:?}: {e}")))?;
    Ok((name, reference))
}

fn access_for(engine: &Engine, repo: &ImageRepository) -> Result<RepoAccess, PromoteError> {
    crate::scan::repo_access(engine, repo).map_err(|f| {
        PromoteError::Invalid(format!(
            "ImageRepository {}/{}: {}",
            repo.namespace(),
            repo.name(),
            f.message
        ))
    })
}

/// The ImageRepository of a stage: its policy's `imageRepositoryRef`.
fn stage_repository<'a>(
    objects: &'a ObjectSet,
    policy: &ImagePolicy,
) -> Result<&'a ImageRepository, PromoteError> {
    objects.repository_of(policy).ok_or_else(|| {
        PromoteError::Invalid(format!(
            "ImagePolicy {}/{} refers to {}, which is not in the source",
            policy.namespace(),
            policy.name(),
            policy.repository_key()
        ))
    })
}

/// The newest tag a policy elects, listed live from the registry.
async fn newest_tag(
    engine: &Engine,
    access: &RepoAccess,
    repo: &ImageRepository,
    policy: &ImagePolicy,
    denied: &[String],
    log: &mut RequestLog,
) -> Result<String, PromoteError> {
    log.read("GET", access, "tags/list");
    let listed = engine.registry().list_tags(access).await?;
    let exclusions = ferry_policy::scan::effective_exclusion_list(
        repo.spec.exclusion_list.as_deref().unwrap_or(&[]),
    );
    let mut tags = ferry_policy::scan::apply_exclusions(&listed, &exclusions).map_err(|e| {
        PromoteError::Invalid(format!(
            "ImageRepository {}/{}: {e}",
            repo.namespace(),
            repo.name()
        ))
    })?;
    // A tag a rollback denied is never elected, here as in the policy (rollback.md).
    tags.retain(|t| !denied.contains(t));
    ferry_policy::scan::sort_desc(&mut tags);
    let policer =
        crate::policy::policer_for(policy).map_err(|f| PromoteError::Invalid(f.message))?;
    let filter = match &policy.spec.filter_tags {
        Some(f) => TagFilter::new(f.pattern.as_deref(), f.extract.as_deref()),
        None => Ok(TagFilter::none()),
    }
    .map_err(|e| {
        PromoteError::Invalid(format!(
            "ImagePolicy {}/{}: {e}",
            policy.namespace(),
            policy.name()
        ))
    })?;
    ferry_policy::select_latest(&tags, &filter, &policer).map_err(|e| {
        PromoteError::Refused(format!(
            "ImagePolicy {}/{} elects no tag in {}: {e}",
            policy.namespace(),
            policy.name(),
            access.image
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// version

fn version_of(workdir: &Path, pipe: &AppPipeline) -> Result<VersionReport, PromoteError> {
    let last = pipe
        .stages
        .last()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let records = gitops::records(workdir, &pipe.app, &last)?;
    let current = records.iter().map(|r| r.version).max();
    let next = match gitops::next_version_file(workdir, &pipe.app)? {
        Some(v) => v,
        None => current.map(|c| c.bump(Bump::Patch)).unwrap_or(Version {
            major: 0,
            minor: 0,
            patch: 1,
        }),
    };
    Ok(VersionReport {
        app: pipe.app.clone(),
        current: current.map(|v| v.to_string()),
        next: next.to_string(),
    })
}

/// The Git target where an app's releases live: the write-back repository of its last stage.
fn release_target(
    engine: &Engine,
    objects: &ObjectSet,
    pipe: &AppPipeline,
    fallback: Option<&GitFallback>,
) -> Result<GitTarget, PromoteError> {
    let policy = pipe
        .stages
        .last()
        .and_then(|s| objects.image_policy(&s.namespace, &s.policy));
    gitops::git_target(engine, objects, policy, fallback)
}

/// `ferry version APP`: the highest version released to the last stage, and the next one.
pub async fn version(
    engine: &Engine,
    objects: &ObjectSet,
    fallback: Option<&GitFallback>,
    app: &str,
) -> Result<VersionReport, PromoteError> {
    let pipe = AppPipeline::resolve(objects, app)?;
    let target = release_target(engine, objects, &pipe, fallback)?;
    let (cache, pass) = gitops::git_access(engine)?;
    crate::blocking(move || {
        let co = pass.checkout(&cache, &target.remote, &target.branch)?;
        version_of(co.workdir(), &pipe)
    })
    .await?
}

// ---------------------------------------------------------------------------------------------
// publish

/// `ferry publish`: adds `ENV`, the immutable `ENV-vX.Y.Z-<sha7>-<ts>` and `<sha7>` to an image
/// already in the registry, server-side, with the exact manifest bytes.
pub async fn publish(
    engine: &Engine,
    objects: &ObjectSet,
    fallback: Option<&GitFallback>,
    req: &PublishRequest,
) -> Result<PublishReport, PromoteError> {
    let (name, reference) = split_reference(&req.image)?;
    let sha = req.sha.trim().to_ascii_lowercase();
    if sha.len() < 7 || sha.len() > 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PromoteError::Invalid(format!(
            "--sha {:?}: expected at least 7 hex digits",
            req.sha
        )));
    }
    let sha7 = &sha[..7];
    let app = match &req.app {
        Some(a) => a.clone(),
        None => name
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let pipe = AppPipeline::resolve(objects, &app)?;
    let template = match pipe.stage(&req.env) {
        Ok(s) => s.template.clone(),
        Err(_) => TagTemplate::parse(DEFAULT_TAG_TEMPLATE).map_err(PromoteError::Invalid)?,
    };
    let version =
        match &req.version {
            Some(v) => Version::parse(v).ok_or_else(|| {
                PromoteError::Invalid(format!("--version {v:?}: expected MAJOR.MINOR.PATCH"))
            })?,
            None => {
                let report = version(engine, objects, fallback, &app).await.map_err(|e| match e {
                PromoteError::Invalid(m) => PromoteError::Invalid(format!(
                    "{m}; pass --version, or --repo/--dir so the app's next version can be read"
                )),
                other => other,
            })?;
                Version::parse(&report.next).unwrap_or_default()
            }
        };
    let access =
        match objects.image_repositories.iter().find(|r| {
            ImageName::parse(&r.spec.image).is_ok_and(|n| n.canonical() == name.canonical())
        }) {
            Some(repo) => access_for(engine, repo)?,
            None => {
                let creds: Option<Credentials> = ferry_registry::load_local_docker_config()
                    .map_err(|e| PromoteError::Invalid(format!("docker config: {e}")))?
                    .credentials_for(name.registry())
                    .cloned();
                let mut a = RepoAccess::new(name.clone());
                a.insecure = req.insecure;
                a.credentials = creds;
                if let Some(ca) = &req.ca_pem {
                    a.tls = TlsMaterial::with_ca(ca.clone());
                }
                a
            }
        };
    let ts = req.timestamp.unwrap_or_else(now_secs);
    let immutable = template.render(&req.env, &version, sha7, ts);
    let client = engine.registry();
    let before = client.stats().total;
    let mut log = RequestLog::default();
    log.read("GET", &access, &format!("manifests/{reference}"));
    let manifest = client.get_manifest(&access, &reference).await?;
    let plan = TagPlan {
        immutable: vec![immutable],
        mutable: vec![req.env.clone(), sha7.to_string()],
    };
    let tags = write_tags(
        client,
        &access,
        &manifest,
        &access,
        &plan,
        req.dry_run,
        &mut log,
    )
    .await?;
    Ok(PublishReport {
        app,
        image: access.image.to_string(),
        digest: manifest.digest,
        media_type: manifest.media_type,
        version: version.to_string(),
        tags,
        requests: log.lines,
        request_count: client.stats().total - before,
    })
}

// ---------------------------------------------------------------------------------------------
// approve

/// `ferry approve`: records an approval for promoting `tag` into `env`, as one Git commit.
pub async fn approve(
    engine: &Engine,
    objects: &ObjectSet,
    fallback: Option<&GitFallback>,
    req: &ApproveRequest,
) -> Result<ApproveReport, PromoteError> {
    let pipe = AppPipeline::resolve(objects, &req.app)?;
    let stage = pipe.stage(&req.env)?;
    check_tag(&req.tag)?;
    let by = check_name(&req.by)?;
    let policy = objects.image_policy(&stage.namespace, &stage.policy);
    let target = gitops::git_target(engine, objects, policy, fallback)?;
    let rel = approval_path(&req.app, &req.env, &req.tag);
    let at = rfc3339(i64::try_from(now_secs()).unwrap_or(0));
    let content = Approval {
        app: req.app.clone(),
        environment: req.env.clone(),
        tag: req.tag.clone(),
        approved_by: by.clone(),
        approved_at: at,
    }
    .render();
    let spec = CommitSpec {
        message: format!("Approve {} {} for {}", req.app, req.tag, req.env),
        trailers: vec![
            ("Ferry-Kind".into(), "approval".into()),
            ("Ferry-App".into(), req.app.clone()),
            ("Ferry-Env".into(), req.env.clone()),
            ("Ferry-Tag".into(), req.tag.clone()),
            ("Ferry-Approved-By".into(), by.clone()),
        ],
        author: target.author.clone(),
        signing: None,
    };
    let (cache, pass) = gitops::git_access(engine)?;
    let path = rel.clone();
    let outcome = crate::blocking(move || {
        push(&cache, &pass, &target, |workdir| {
            if workdir.join(&path).exists() {
                return Ok(None);
            }
            write_text(workdir, &path, &content)?;
            Ok(Some(spec.clone()))
        })
    })
    .await??;
    Ok(match outcome {
        UpdateOutcome::Pushed { sha, .. } => ApproveReport {
            path: rel,
            commit: Some(sha),
            already: false,
        },
        UpdateOutcome::NothingToDo { .. } | UpdateOutcome::WouldPush { .. } => ApproveReport {
            path: rel,
            commit: None,
            already: true,
        },
    })
}

fn check_tag(tag: &str) -> Result<(), PromoteError> {
    let mut chars = tag.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PromoteError::Invalid(format!(
            "{tag:?} is not a valid image tag"
        )))
    }
}

fn check_name(by: &str) -> Result<String, PromoteError> {
    let by = by.trim();
    if by.is_empty() || by.len() > 200 || by.chars().any(|c| c.is_control()) {
        return Err(PromoteError::Invalid(format!(
            "--by {by:?}: expected a non-empty name on one line"
        )));
    }
    Ok(by.to_string())
}

/// `update_and_push` on the target's branch, recomputing on a moved tip; the first attempt
/// starts from the pass's fetch when there was one.
fn push(
    cache: &CloneCache,
    pass: &crate::writeback::Pass,
    target: &GitTarget,
    f: impl FnMut(&Path) -> Result<Option<CommitSpec>, std::io::Error>,
) -> Result<UpdateOutcome, PromoteError> {
    let plan = UpdatePlan {
        checkout_branch: target.branch.clone(),
        push_branch: Some(target.push_branch.clone()),
        push_options: Default::default(),
        refspec: None,
        max_attempts: 8,
        backoff: Backoff::default(),
        fresh: pass.is_fresh(cache, &target.remote, &target.branch),
        before_push: Some(crate::test_hooks::before_push),
        dry_run: false,
    };
    let outcome = ferry_git::update_and_push(cache, &target.remote, &plan, f);
    if outcome.is_ok() {
        pass.mark(cache, &target.remote, &target.branch);
    }
    outcome.map_err(|e| match e {
        UpdateError::Git(g) => PromoteError::Git(g),
        UpdateError::Apply(io) => PromoteError::Failed(format!("writing the release files: {io}")),
        other => PromoteError::Failed(format!(
            "{} ({}): {other}",
            target.remote.display_url(),
            target.push_branch
        )),
    })
}

// ---------------------------------------------------------------------------------------------
// promote

/// A promotion in progress, kept next to the state database so a re-run after a crash reuses
/// the same immutable tag (no duplicate tags) until the release commit is pushed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Journal {
    digest: String,
    traced_tag: String,
    ts: u64,
}

fn journal_path(engine: &Engine, app: &str, env: &str) -> PathBuf {
    let store = engine.store();
    let dir = store
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    dir.join("promotions").join(format!("{app}.{env}.json"))
}

fn load_journal(path: &Path) -> Option<Journal> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn save_journal(path: &Path, j: &Journal) -> Result<(), PromoteError> {
    let err =
        |e: std::io::Error| PromoteError::Failed(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let bytes = serde_json::to_vec(j).map_err(|e| PromoteError::Failed(e.to_string()))?;
    std::fs::write(path, bytes).map_err(err)
}

/// What Git says about the source and target stages.
struct Views {
    deployed: Option<Deployed>,
    /// Tags denied for the source policy (`.ferry/holds.yaml` of the source branch): never the
    /// default source tag.
    denied: Vec<String>,
    deploy_commit: Option<(String, i64)>,
    /// Records of the target stage.
    records: Vec<RecordSummary>,
    /// `(tag, approval)`.
    approvals: Vec<(String, Approval)>,
}

fn read_views(
    cache: &CloneCache,
    pass: &crate::writeback::Pass,
    (source, target): (&GitTarget, &GitTarget),
    (src_key, src_policy): (&str, &str),
    app: &str,
    to: &str,
    want_soak: bool,
) -> Result<Views, PromoteError> {
    let same = source.remote.url == target.remote.url && source.branch == target.branch;
    let (deployed, deploy_commit, denied) = {
        let mut co = pass.checkout(cache, &source.remote, &source.branch)?;
        let deployed = gitops::deployed(co.workdir(), src_key)?;
        let denied = crate::rollback::HoldsFile::read(co.workdir())
            .map_err(|e| PromoteError::Invalid(e.to_string()))?
            .denied_tags(src_policy);
        let commit = match (&deployed, want_soak) {
            (Some(d), true) => gitops::deploy_commit(&mut co, d)?,
            _ => None,
        };
        if same {
            let (records, approvals) = target_files(co.workdir(), app, to)?;
            return Ok(Views {
                deployed,
                denied,
                deploy_commit: commit,
                records,
                approvals,
            });
        }
        (deployed, commit, denied)
    };
    let co = pass.checkout(cache, &target.remote, &target.branch)?;
    let (records, approvals) = target_files(co.workdir(), app, to)?;
    Ok(Views {
        deployed,
        denied,
        deploy_commit,
        records,
        approvals,
    })
}

type TargetFiles = (Vec<RecordSummary>, Vec<(String, Approval)>);

fn target_files(workdir: &Path, app: &str, to: &str) -> Result<TargetFiles, PromoteError> {
    Ok((
        gitops::records(workdir, app, to)?,
        gitops::approvals(workdir, app, to)?,
    ))
}

/// Everything the release commit is computed from (deterministic for one promotion).
struct ReleaseInput {
    app: String,
    from: String,
    to: String,
    is_last: bool,
    bump: Bump,
    version: Version,
    sha7: String,
    source_image: String,
    target_image: String,
    digest: String,
    media_type: String,
    source_tag: String,
    traced_tag: String,
    immutable_tag: String,
    tags: Vec<String>,
    ts: u64,
    by: String,
    forced: bool,
    gates: RecordGates,
    approved_by: Option<String>,
}

/// The files of the release commit, computed on a work tree: `(path, old, new)`.
fn release_files(
    workdir: &Path,
    r: &ReleaseInput,
) -> Result<Vec<(String, Option<String>, String)>, PromoteError> {
    let rel = record_path(&r.app, &r.to, &r.immutable_tag);
    let previous = gitops::records(workdir, &r.app, &r.to)?
        .into_iter()
        .rfind(|p| p.path != rel && p.record.digest != r.digest);
    let (prev_version, range) = match &previous {
        Some(p) if !p.record.source_sha.is_empty() => (
            p.version.to_string(),
            format!("{}..{}", p.record.source_sha, r.sha7),
        ),
        Some(p) => (p.version.to_string(), r.sha7.clone()),
        None => ("none".to_string(), r.sha7.clone()),
    };
    let record = ReleaseRecord {
        app: r.app.clone(),
        version: r.version.to_string(),
        environment: r.to.clone(),
        from: r.from.clone(),
        source_image: r.source_image.clone(),
        image: r.target_image.clone(),
        digest: r.digest.clone(),
        media_type: r.media_type.clone(),
        source_tag: r.source_tag.clone(),
        traced_tag: r.traced_tag.clone(),
        immutable_tag: r.immutable_tag.clone(),
        target_tags: r.tags.clone(),
        source_sha: r.sha7.clone(),
        previous_release: prev_version,
        source_sha_range: range,
        promoted_at: rfc3339(i64::try_from(r.ts).unwrap_or(0)),
        promoted_by: r.by.clone(),
        forced: r.forced,
        gates: r.gates.clone(),
    }
    .render();
    let mut out = vec![(rel.clone(), read_text(workdir, &rel)?, record)];
    if r.is_last {
        let vrel = version_path(&r.app);
        let old = read_text(workdir, &vrel)?;
        let current = old.as_deref().and_then(|t| Version::parse(t.trim()));
        let next = current.unwrap_or_default().max(r.version.bump(r.bump));
        out.push((vrel, old, format!("{next}\n")));
    }
    Ok(out)
}

fn next_version_in(files: &[(String, Option<String>, String)]) -> Option<String> {
    files
        .iter()
        .find(|(p, _, _)| p.ends_with("/VERSION"))
        .map(|(_, _, n)| n.trim().to_string())
}

fn release_commit(r: &ReleaseInput, next: Option<&str>, target: &GitTarget) -> CommitSpec {
    let mut trailers: Vec<(String, String)> = vec![
        ("Ferry-Kind".into(), "promotion".into()),
        ("Ferry-App".into(), r.app.clone()),
        ("Ferry-Env".into(), r.to.clone()),
        ("Ferry-From-Env".into(), r.from.clone()),
        ("Ferry-Version".into(), r.version.to_string()),
        ("Ferry-Digest".into(), r.digest.clone()),
        ("Ferry-Source-Tag".into(), r.source_tag.clone()),
    ];
    trailers.extend(
        r.tags
            .iter()
            .map(|t| ("Ferry-Target-Tag".to_string(), t.clone())),
    );
    trailers.push(("Ferry-Promoted-By".into(), r.by.clone()));
    if let Some(a) = &r.approved_by {
        trailers.push(("Ferry-Approved-By".into(), a.clone()));
    }
    if r.forced {
        trailers.push(("Ferry-Forced".into(), "true".into()));
    }
    if let Some(n) = next {
        trailers.push(("Ferry-Next-Version".into(), n.to_string()));
    }
    CommitSpec {
        message: format!(
            "Release {} {} to {}\n\nPromote {}@{} from {} to {} as {} (no rebuild: same digest).",
            r.app,
            r.version,
            r.to,
            r.source_tag,
            r.digest,
            r.from,
            r.to,
            r.tags.join(", ")
        ),
        trailers,
        author: target.author.clone(),
        signing: None,
    }
}

fn human(d: Duration) -> String {
    ferry_api::format_go_duration(Duration::from_secs(d.as_secs()))
}

/// `ferry promote`: the steps are described in docs/promotion.md.
/// What a promotion resolves from the objects before it reads or writes anything.
struct Resolved<'a> {
    pipe: AppPipeline,
    from: StageConfig,
    to: StageConfig,
    by: String,
    src_policy: &'a ImagePolicy,
    src_repo: &'a ImageRepository,
    src: RepoAccess,
    dst: RepoAccess,
    source_git: GitTarget,
    target_git: GitTarget,
}

fn resolve_promotion<'a>(
    engine: &Engine,
    objects: &'a ObjectSet,
    fallback: Option<&GitFallback>,
    req: &PromoteRequest,
) -> Result<Resolved<'a>, PromoteError> {
    let pipe = AppPipeline::resolve(objects, &req.app)?;
    let to: StageConfig = pipe.stage(&req.to)?.clone();
    let from: StageConfig = match &req.from {
        Some(f) => pipe.stage(f)?.clone(),
        None => pipe.previous(&req.to)?.clone(),
    };
    if from.name == to.name {
        return Err(PromoteError::Invalid(format!(
            "--from and --to are both {:?}",
            to.name
        )));
    }
    let by = check_name(&req.by)?;
    if let Some(t) = &req.tag {
        check_tag(t)?;
    }
    let src_policy = pipe.policy(objects, &from)?;
    let dst_policy = pipe.policy(objects, &to)?;
    let src_repo = stage_repository(objects, src_policy)?;
    let dst_repo = stage_repository(objects, dst_policy)?;
    Ok(Resolved {
        src: access_for(engine, src_repo)?,
        dst: access_for(engine, dst_repo)?,
        source_git: gitops::git_target(engine, objects, Some(src_policy), fallback)?,
        target_git: gitops::git_target(engine, objects, Some(dst_policy), fallback)?,
        pipe,
        from,
        to,
        by,
        src_policy,
        src_repo,
    })
}

/// Reads what Git says about both stages, on a blocking task (one fetch per pass).
async fn views_of(engine: &Engine, r: &Resolved<'_>) -> Result<Views, PromoteError> {
    let (cache, pass) = gitops::git_access(engine)?;
    let (source, target) = (r.source_git.clone(), r.target_git.clone());
    let src_key = format!("{}:{}", r.from.namespace, r.from.policy);
    let src_policy = format!("{}/{}", r.from.namespace, r.from.policy);
    let (app, to, want_soak) = (r.pipe.app.clone(), r.to.name.clone(), r.to.soak.is_some());
    crate::blocking(move || {
        read_views(
            &cache,
            &pass,
            (&source, &target),
            (&src_key, &src_policy),
            &app,
            &to,
            want_soak,
        )
    })
    .await?
}

/// The source gate: the source stage runs this digest (or `--force`, recorded).
async fn source_gate(
    r: &Resolved<'_>,
    views: &Views,
    manifest: &ferry_registry::Manifest,
    source_tag: &str,
    force: bool,
    client: &ferry_registry::RegistryClient,
    log: &mut RequestLog,
) -> Result<GateResult, PromoteError> {
    let from = &r.from;
    let (ok, line) = match &views.deployed {
        None => (
            false,
            format!(
                "no setter marker for ImagePolicy {}/{} in {}",
                from.namespace, from.policy, r.source_git.origin
            ),
        ),
        Some(d) => {
            let git_digest = match &d.digest {
                Some(g) => g.clone(),
                None if d.tag == source_tag => manifest.digest.clone(),
                None => {
                    log.read("HEAD", &r.src, &format!("manifests/{}", d.tag));
                    match client.head_manifest(&r.src, &d.tag).await {
                        Ok(h) => h.digest,
                        Err(RegistryError::NotFound { .. }) => {
                            "(tag not in the registry)".to_string()
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            (
                git_digest == manifest.digest,
                format!(
                    "Git points {} at {} ({git_digest}) [{}]",
                    from.name,
                    d.tag,
                    d.sites.join(", ")
                ),
            )
        }
    };
    if !ok && !force {
        return Err(PromoteError::Refused(format!(
            "{source_tag} ({}) is not what {} runs: {line}. Let {} deploy it first, or pass --force (recorded)",
            manifest.digest, from.name, from.name
        )));
    }
    Ok(GateResult {
        gate: "source-deployed".into(),
        passed: ok,
        detail: if ok { line } else { format!("FORCED: {line}") },
    })
}

/// The version and commit, from the tag (or the immutable tag Git holds, for an alias).
fn traced_fields(
    from: &StageConfig,
    source_tag: &str,
    views: &Views,
    source_ok: bool,
) -> Result<(String, TagFields), PromoteError> {
    if let Some(f) = from.template.parse_tag(&from.name, source_tag) {
        return Ok((source_tag.to_string(), f));
    }
    views
        .deployed
        .as_ref()
        .filter(|_| source_ok)
        .and_then(|d| Some((d.tag.clone(), from.template.parse_tag(&from.name, &d.tag)?)))
        .ok_or_else(|| {
            PromoteError::Invalid(format!(
                "cannot read the version and commit from tag {source_tag:?} (stage {} template expects e.g. {}); pass --tag with an immutable tag",
                from.name,
                from.template
                    .render(&from.name, &Version::default(), "a1b2c3d", 1738860000)
            ))
        })
}

/// The gates passed, as reported and as recorded, and who approved.
struct Gates {
    results: Vec<GateResult>,
    record: RecordGates,
    approved_by: Option<String>,
}

/// The soak gate: the traced tag has been in the source stage long enough.
fn soak_gate(
    r: &Resolved<'_>,
    views: &Views,
    source_ok: bool,
    traced_tag: &str,
    now: u64,
    gates: &mut Gates,
) -> Result<(), PromoteError> {
    let (from, to) = (&r.from, &r.to);
    let Some(soak) = to.soak else {
        return Ok(());
    };
    let Some((sha, at)) = views.deploy_commit.clone().filter(|_| source_ok) else {
        return Err(PromoteError::Refused(format!(
            "{} requires a soak of {} in {}, but no commit putting {traced_tag} into {} was found",
            to.name,
            human(soak),
            from.name,
            from.name
        )));
    };
    let elapsed = Duration::from_secs(now.saturating_sub(u64::try_from(at).unwrap_or(0)));
    if elapsed < soak {
        return Err(PromoteError::Refused(format!(
            "soak not elapsed: {traced_tag} has been in {} since commit {} at {} ({} ago); {} requires {} (ready at {})",
            from.name,
            &sha[..sha.len().min(12)],
            rfc3339(at),
            human(elapsed),
            to.name,
            human(soak),
            rfc3339(at + i64::try_from(soak.as_secs()).unwrap_or(0))
        )));
    }
    gates.results.push(GateResult {
        gate: "soak".into(),
        passed: true,
        detail: format!(
            "in {} since {} (commit {sha}); required {}",
            from.name,
            rfc3339(at),
            human(soak)
        ),
    });
    gates.record.soak = Some(SoakGate {
        required: human(soak),
        since: rfc3339(at),
        commit: sha,
    });
    Ok(())
}

/// The approval gate: an approval of the traced (or source) tag is recorded in Git.
fn approval_gate(
    r: &Resolved<'_>,
    views: &Views,
    traced_tag: &str,
    source_tag: &str,
    gates: &mut Gates,
) -> Result<(), PromoteError> {
    if !r.to.approval {
        return Ok(());
    }
    let found = views
        .approvals
        .iter()
        .find(|(t, _)| t == traced_tag || t == source_tag);
    let Some((tag, approval)) = found else {
        return Err(PromoteError::Refused(format!(
            "{} requires an approval and {traced_tag} has none: run `ferry approve {} --env {} --tag {traced_tag} --by NAME`",
            r.to.name, r.pipe.app, r.to.name
        )));
    };
    gates.results.push(GateResult {
        gate: "approval".into(),
        passed: true,
        detail: format!(
            "approved by {} at {} (tag {tag})",
            approval.approved_by, approval.approved_at
        ),
    });
    gates.record.approval = Some(ApprovalGate {
        by: approval.approved_by.clone(),
        at: approval.approved_at.clone(),
        tag: tag.clone(),
    });
    gates.approved_by = Some(approval.approved_by.clone());
    Ok(())
}

/// The target's immutable tag, its timestamp, and whether a finished or interrupted run of this
/// promotion is resumed (it keeps its tag). Starts the journal of a new run.
fn target_tag(
    engine: &Engine,
    r: &Resolved<'_>,
    req: &PromoteRequest,
    views: &Views,
    digest: &str,
    (traced_tag, fields): (&str, &TagFields),
    now: u64,
) -> Result<(String, u64, bool), PromoteError> {
    let to = &r.to;
    let resumed_tag = views
        .records
        .iter()
        .rev()
        .find(|rec| rec.record.digest == digest)
        .map(|rec| rec.record.immutable_tag.clone())
        .filter(|t| !t.is_empty());
    let jpath = journal_path(engine, &r.pipe.app, &to.name);
    let journal = load_journal(&jpath).filter(|j| j.digest == digest && j.traced_tag == traced_tag);
    let (immutable, ts, resumed) = match (&resumed_tag, &journal) {
        (Some(tag), _) => {
            let ts = to
                .template
                .parse_tag(&to.name, tag)
                .map(|f| f.ts)
                .unwrap_or(now);
            (tag.clone(), ts, true)
        }
        (None, Some(j)) => (
            to.template
                .render(&to.name, &fields.version, &fields.sha7, j.ts),
            j.ts,
            true,
        ),
        (None, None) => {
            let ts = req.timestamp.unwrap_or(now);
            (
                to.template
                    .render(&to.name, &fields.version, &fields.sha7, ts),
                ts,
                false,
            )
        }
    };
    if !req.dry_run && journal.is_none() && resumed_tag.is_none() {
        save_journal(
            &jpath,
            &Journal {
                digest: digest.to_string(),
                traced_tag: traced_tag.to_string(),
                ts,
            },
        )?;
    }
    Ok((immutable, ts, resumed))
}

/// The release commit: its diff in a dry run, else pushed (recomputed on a moved tip). Returns
/// the commit, the next version and the diff.
async fn release(
    engine: &Engine,
    target: &GitTarget,
    input: ReleaseInput,
    dry_run: bool,
) -> Result<(Option<String>, Option<String>, Option<String>), PromoteError> {
    let (cache, pass) = gitops::git_access(engine)?;
    let target = target.clone();
    if dry_run {
        return crate::blocking(move || {
            let co = pass.checkout(&cache, &target.remote, &target.branch)?;
            let files = release_files(co.workdir(), &input)?;
            let next = next_version_in(&files);
            let mut diff = String::new();
            for (path, old, new) in &files {
                if old.as_deref() != Some(new.as_str()) {
                    diff.push_str(&ferry_setters::unified_diff(
                        path,
                        old.as_deref().unwrap_or_default().as_bytes(),
                        new.as_bytes(),
                    ));
                }
            }
            let spec = release_commit(&input, next.as_deref(), &target);
            diff.push_str(&format!("\ncommit message:\n{}\n\n", spec.message));
            for (k, v) in &spec.trailers {
                diff.push_str(&format!("{k}: {v}\n"));
            }
            Ok((None, next, Some(diff)))
        })
        .await?;
    }
    crate::blocking(move || {
        let mut next_seen = None;
        let outcome = push(&cache, &pass, &target, |workdir| {
            let files =
                release_files(workdir, &input).map_err(|e| std::io::Error::other(e.to_string()))?;
            let next = next_version_in(&files);
            let mut changed = false;
            for (path, old, new) in &files {
                if old.as_deref() != Some(new.as_str()) {
                    write_text(workdir, path, new)?;
                    changed = true;
                }
            }
            next_seen = next.clone();
            if !changed {
                return Ok(None);
            }
            Ok(Some(release_commit(&input, next.as_deref(), &target)))
        })?;
        let commit = match outcome {
            UpdateOutcome::Pushed { sha, .. } => Some(sha),
            UpdateOutcome::NothingToDo { .. } | UpdateOutcome::WouldPush { .. } => None,
        };
        Ok((commit, next_seen, None))
    })
    .await?
}

/// What steps 1 to 5 of a promotion found: the source, what Git says, and the gates passed.
struct Checked {
    source_tag: String,
    manifest: ferry_registry::Manifest,
    views: Views,
    forced: bool,
    traced_tag: String,
    fields: TagFields,
    gates: Gates,
    now: u64,
    /// Time spent reading Git (not counted as registry time).
    git_time: Duration,
}

/// Steps 1 to 5: the source tag and digest, what Git says, the source gate, the version, and
/// the pipeline gates. Nothing is written.
async fn check(
    engine: &Engine,
    r: &Resolved<'_>,
    req: &PromoteRequest,
    log: &mut RequestLog,
) -> Result<Checked, PromoteError> {
    let client = engine.registry();
    // 2. What Git says (read first: the default source tag skips the tags a rollback denied).
    let t0 = Instant::now();
    let views = views_of(engine, r).await?;
    let git_time = t0.elapsed();
    // 1. The source tag and its digest.
    let source_tag = match &req.tag {
        Some(t) => t.clone(),
        None => newest_tag(engine, &r.src, r.src_repo, r.src_policy, &views.denied, log).await?,
    };
    log.read("GET", &r.src, &format!("manifests/{source_tag}"));
    let manifest = match client.get_manifest(&r.src, &source_tag).await {
        Err(RegistryError::NotFound { .. }) => {
            return Err(PromoteError::Refused(format!(
                "{}:{source_tag} does not exist",
                r.src.image
            )));
        }
        other => other?,
    };
    // 3. Gate: the source stage runs this digest.
    let source = source_gate(r, &views, &manifest, &source_tag, req.force, client, log).await?;
    let forced = !source.passed;
    // 4. Version and commit. 5. Pipeline gates.
    let (traced_tag, fields) = traced_fields(&r.from, &source_tag, &views, source.passed)?;
    let mut gates = Gates {
        record: RecordGates {
            source_deployed: Some(SourceDeployedGate {
                passed: source.passed,
                detail: source.detail.clone(),
            }),
            ..RecordGates::default()
        },
        results: vec![source],
        approved_by: None,
    };
    let now = now_secs();
    soak_gate(r, &views, !forced, &traced_tag, now, &mut gates)?;
    approval_gate(r, &views, &traced_tag, &source_tag, &mut gates)?;
    Ok(Checked {
        source_tag,
        manifest,
        views,
        forced,
        traced_tag,
        fields,
        gates,
        now,
        git_time,
    })
}

/// What the release commit records.
fn release_input(
    r: &Resolved<'_>,
    req: &PromoteRequest,
    c: &Checked,
    immutable: &str,
    ts: u64,
) -> ReleaseInput {
    ReleaseInput {
        app: r.pipe.app.clone(),
        from: r.from.name.clone(),
        to: r.to.name.clone(),
        is_last: r.pipe.is_last(&r.to.name),
        bump: req.bump,
        version: c.fields.version,
        sha7: c.fields.sha7.clone(),
        source_image: r.src.image.to_string(),
        target_image: r.dst.image.to_string(),
        digest: c.manifest.digest.clone(),
        media_type: c.manifest.media_type.clone(),
        source_tag: c.source_tag.clone(),
        traced_tag: c.traced_tag.clone(),
        immutable_tag: immutable.to_string(),
        tags: vec![immutable.to_string(), r.to.alias.clone()],
        ts,
        by: r.by.clone(),
        forced: c.forced,
        gates: c.gates.record.clone(),
        approved_by: c.gates.approved_by.clone(),
    }
}

pub async fn promote(
    engine: &Engine,
    objects: &ObjectSet,
    fallback: Option<&GitFallback>,
    req: &PromoteRequest,
) -> Result<PromoteReport, PromoteError> {
    let r = resolve_promotion(engine, objects, fallback, req)?;
    let client = engine.registry();
    let before = client.stats().total;
    let mut log = RequestLog::default();
    let started = Instant::now();
    let c = check(engine, &r, req, &mut log).await?;

    // 6. Target tags: a finished or interrupted run of this promotion keeps its tag.
    let (immutable, ts, resumed) = target_tag(
        engine,
        &r,
        req,
        &c.views,
        &c.manifest.digest,
        (&c.traced_tag, &c.fields),
        c.now,
    )?;
    // A resumed tag is read back from Git; it becomes a path and a registry tag.
    check_tag(&immutable)?;

    // 7. Retag (immutable first), confirm.
    let plan = TagPlan {
        immutable: vec![immutable.clone()],
        mutable: vec![r.to.alias.clone()],
    };
    let tags = write_tags(
        client,
        &r.src,
        &c.manifest,
        &r.dst,
        &plan,
        req.dry_run,
        &mut log,
    )
    .await?;
    let registry_time = started.elapsed().saturating_sub(c.git_time);
    let request_count = client.stats().total - before;

    // 8. The release commit.
    let input = release_input(&r, req, &c, &immutable, ts);
    let record = record_path(&r.pipe.app, &r.to.name, &immutable);
    let (commit, next_version, git_changes) =
        release(engine, &r.target_git, input, req.dry_run).await?;
    if !req.dry_run {
        let _ = std::fs::remove_file(journal_path(engine, &r.pipe.app, &r.to.name));
    }

    Ok(PromoteReport {
        app: r.pipe.app.clone(),
        from: r.from.name.clone(),
        to: r.to.name.clone(),
        source_image: r.src.image.to_string(),
        target_image: r.dst.image.to_string(),
        source_tag: c.source_tag,
        digest: c.manifest.digest,
        media_type: c.manifest.media_type,
        version: c.fields.version.to_string(),
        tags,
        forced: c.forced,
        gates: c.gates.results,
        record_path: record,
        commit,
        next_version,
        git_changes,
        git_repository: r.target_git.origin.clone(),
        requests: log.lines,
        request_count,
        registry_millis: u64::try_from(registry_time.as_millis()).unwrap_or(u64::MAX),
        resumed,
    })
}
