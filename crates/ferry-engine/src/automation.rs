//! ImageUpdateAutomation: write each policy's `latestRef` through the setters, commit with
//! trailers and push, recomputing on the new tip when the push is rejected.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use ferry_api::{ImagePolicy, ImageUpdateAutomation, ObjectSet};
use ferry_git::{
    Backoff, CloneCache, CommitSpec, Remote, Signature, SigningKey, UpdateOutcome, UpdatePlan,
};
use ferry_setters::{ImageRef, PolicyValues, TreeUpdate, WriteMode};
use ferry_store::Kind;
use ferry_template::{AutomationObject, ChangeResult, TemplateData};

use crate::steps::{Computed, Selection, StepFailure};
use crate::trailers::{ChangeTrailer, automation_trailers};
use crate::{Engine, EngineError, ObjectOutcome, now_rfc3339};
use crate::{Observation, record_observation};

/// How automations run.
#[derive(Debug, Clone)]
pub struct AutomationOptions {
    /// Compute and report the diffs; commit and push nothing.
    pub dry_run: bool,
    /// Push attempts before giving up on a branch that keeps moving.
    pub max_push_attempts: u32,
}

impl Default for AutomationOptions {
    fn default() -> Self {
        AutomationOptions {
            dry_run: false,
            max_push_attempts: 8,
        }
    }
}

/// What one automation pushed (or, in a dry run, would push).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// `namespace/name` of the ImageUpdateAutomation.
    pub automation: String,
    /// The pushed commit; `None` in a dry run.
    pub commit: Option<String>,
    pub branch: String,
    pub changes: Vec<ChangeTrailer>,
    /// Unified diff of the change (dry run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    pub attempts: u32,
}

pub(crate) async fn run_all(
    engine: &Engine,
    objects: &ObjectSet,
    options: &AutomationOptions,
    pass: &crate::writeback::Pass,
    selection: Selection<'_>,
    computed: &Computed,
) -> Result<(Vec<ObjectOutcome>, Vec<PushReport>), EngineError> {
    let mut outcomes = Vec::new();
    let mut pushes = Vec::new();
    for auto in &objects.image_update_automations {
        if !selection.covers(Kind::ImageUpdateAutomation, auto.namespace(), auto.name()) {
            continue;
        }
        let previous =
            engine
                .store()
                .get(Kind::ImageUpdateAutomation, auto.namespace(), auto.name())?;
        let mut status = previous
            .as_ref()
            .and_then(|p| p.automation.clone())
            .unwrap_or_default();
        let suspended = auto.spec.suspend;
        let result = if suspended {
            Err(StepFailure {
                reason: "Suspended",
                message: "reconciliation is suspended".into(),
            })
        } else {
            status.last_automation_run_time = Some(now_rfc3339());
            let values = policy_values(engine, objects, auto, computed)?;
            status.observed_policies = values
                .iter()
                .map(|(k, v)| {
                    let name = k.split_once(':').map(|(_, n)| n).unwrap_or(k).to_string();
                    (name, v.clone())
                })
                .collect();
            run_one(engine, objects, auto, &values, options, pass, computed).await
        };
        let (ready, reason, message) = match result {
            Ok(Some(report)) => {
                if let Some(sha) = &report.commit {
                    status.last_push_commit = Some(sha.clone());
                    status.last_push_time = Some(now_rfc3339());
                    status.observed_source_revision = Some(format!("{}@sha1:{sha}", report.branch));
                }
                let msg = match &report.commit {
                    Some(sha) => format!(
                        "pushed commit '{}' to branch '{}'",
                        &sha[..sha.len().min(7)],
                        report.branch
                    ),
                    None => format!("dry run: would push to branch '{}'", report.branch),
                };
                pushes.push(report);
                (true, "Succeeded".to_string(), msg)
            }
            Ok(None) => (
                true,
                "Succeeded".to_string(),
                "repository up-to-date".to_string(),
            ),
            Err(f) => (false, f.reason.to_string(), f.message),
        };
        // A dry run observes but does not record: nothing was pushed.
        outcomes.push(record_observation(
            engine,
            previous.as_ref(),
            Observation {
                kind: Kind::ImageUpdateAutomation,
                namespace: auto.namespace().to_string(),
                name: auto.name().to_string(),
                suspended,
                ready,
                reason,
                message,
                scan: None,
                policy: None,
                automation: Some(status),
            },
            !options.dry_run,
        )?);
    }
    Ok((outcomes, pushes))
}

/// The automations that select `policy` (same namespace, `policySelector` matches), the one that
/// writes it first. Several automations select a policy when they have no `policySelector` (the
/// seed's layout: one automation per app and environment, each with its own `update.path`);
/// the writer is then the one with an explicit selector, else the one named after the policy,
/// else the first in source order.
pub fn automations_for<'a>(
    objects: &'a ObjectSet,
    policy: &ImagePolicy,
) -> Vec<&'a ImageUpdateAutomation> {
    let mut found: Vec<_> = objects
        .automations()
        .iter()
        .filter(|a| a.selects(policy))
        .collect();
    found.sort_by_key(|a| {
        if a.spec.policy_selector.is_some() {
            0
        } else if a.name() == policy.name() {
            1
        } else {
            2
        }
    });
    found
}

/// The setter values of every policy in the automation's namespace that matches its
/// `policySelector` and has a `latestRef` (Ready or not, as Flux does), from this pass's
/// elections (else the stored ones).
pub(crate) fn policy_values(
    engine: &Engine,
    objects: &ObjectSet,
    auto: &ImageUpdateAutomation,
    computed: &Computed,
) -> Result<PolicyValues, EngineError> {
    let mut values = PolicyValues::new();
    for policy in objects
        .policies_in(auto.namespace())
        .filter(|p| auto.selects(p))
    {
        if let Some(latest) = computed.latest(engine, policy.namespace(), policy.name())? {
            values.insert(format!("{}:{}", policy.namespace(), policy.name()), latest);
        }
    }
    Ok(values)
}

fn stalled(reason: &'static str, message: String) -> StepFailure {
    StepFailure { reason, message }
}

/// Where and how an automation writes (also used by rollback and holds).
pub(crate) struct Target {
    pub(crate) remote: Remote,
    pub(crate) checkout_branch: String,
    pub(crate) push_branch: String,
    push_options: BTreeMap<String, String>,
    refspec: Option<String>,
    pub(crate) update_path: PathBuf,
    pub(crate) author: Signature,
    pub(crate) signing: Option<SigningKey>,
    template: Option<String>,
    template_values: BTreeMap<String, String>,
}

pub(crate) fn target(
    engine: &Engine,
    objects: &ObjectSet,
    auto: &ImageUpdateAutomation,
) -> Result<Target, StepFailure> {
    let id = format!("ImageUpdateAutomation {}/{}", auto.namespace(), auto.name());
    let Some(git) = &auto.spec.git else {
        return Err(stalled(
            "InvalidSourceConfiguration",
            format!("{id}: spec.git is required"),
        ));
    };
    let Some(update) = &auto.spec.update else {
        return Err(stalled(
            "InvalidUpdateStrategy",
            "no update strategy".into(),
        ));
    };
    let update_path =
        safe_relative_path(update.path.as_deref().unwrap_or(".")).ok_or_else(|| {
            stalled(
                "InvalidUpdateStrategy",
                format!(
                    "{id}: spec.update.path {:?} escapes the repository",
                    update.path.as_deref().unwrap_or_default()
                ),
            )
        })?;
    let (repo, auth) = source(engine, objects, auto, &id)?;
    let checkout_ref = git
        .checkout
        .as_ref()
        .map(|c| c.reference.clone())
        .unwrap_or_else(|| repo.spec.reference.clone().unwrap_or_default());
    let checkout_branch = match (
        &checkout_ref.branch,
        git.checkout.is_some() || repo.spec.reference.is_some(),
    ) {
        (Some(b), _) if !b.is_empty() => b.clone(),
        (_, false) => "master".to_string(),
        _ => {
            return Err(stalled(
                "InvalidSourceConfiguration",
                format!("{id}: only branch checkouts are supported; set git.checkout.ref.branch"),
            ));
        }
    };
    let push = git.push.clone().unwrap_or_default();
    let push_branch = push
        .branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| checkout_branch.clone());
    let signing = match &git.commit.signing_key {
        Some(key) => Some(signing_key(engine, auto.namespace(), key, &id)?),
        None => None,
    };
    let author = Signature {
        name: git
            .commit
            .author
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Ferry".to_string()),
        email: git.commit.author.email.clone(),
    };
    if author.email.is_empty() {
        return Err(stalled(
            "InvalidSourceConfiguration",
            format!("{id}: spec.git.commit.author.email is required"),
        ));
    }
    Ok(Target {
        remote: Remote::new(repo.spec.url.clone(), auth)
            .with_timeout(repo.spec.effective_timeout()),
        checkout_branch,
        push_branch,
        push_options: push.options.clone(),
        refspec: push.refspec.clone().filter(|r| !r.is_empty()),
        update_path,
        author,
        signing,
        template: git.commit.message_template.clone(),
        template_values: git.commit.message_template_values.clone(),
    })
}

/// The automation's GitRepository and its credentials (the Secret belongs to the GitRepository
/// and its namespace, not to the automation).
fn source<'a>(
    engine: &Engine,
    objects: &'a ObjectSet,
    auto: &ImageUpdateAutomation,
    id: &str,
) -> Result<(&'a ferry_api::GitRepository, ferry_git::GitAuth), StepFailure> {
    if auto.spec.source_ref.kind != "GitRepository" {
        return Err(stalled(
            "InvalidSourceConfiguration",
            format!(
                "{id}: sourceRef.kind {} is not supported (only GitRepository)",
                auto.spec.source_ref.kind
            ),
        ));
    }
    let src_ns = auto.spec.source_ref.namespace_or(auto.namespace());
    let src_name = &auto.spec.source_ref.name;
    if engine.config().no_cross_namespace_refs && src_ns != auto.namespace() {
        return Err(stalled(
            "AccessDenied",
            format!(
                "{id}: can't access 'GitRepository/{src_ns}/{src_name}', cross-namespace references have been blocked"
            ),
        ));
    }
    let Some(repo) = objects.git_repository(src_ns, src_name) else {
        return Err(stalled(
            "SourceManagerFailed",
            missing_git_repository(id, src_ns, src_name),
        ));
    };
    let referrer = format!("GitRepository {src_ns}/{src_name} (the source of {id})");
    let auth = engine
        .config()
        .secrets
        .git_auth(
            src_ns,
            repo.spec.secret_ref.as_ref().map(|s| s.name.as_str()),
            &referrer,
        )
        .map_err(|e| stalled("SourceManagerFailed", e.to_string()))?;
    Ok((repo, auth))
}

fn signing_key(
    engine: &Engine,
    namespace: &str,
    key: &ferry_api::SigningKey,
    id: &str,
) -> Result<SigningKey, StepFailure> {
    let secrets = &engine.config().secrets;
    let name = &key.secret_ref.name;
    let err = |e: EngineError| stalled("InvalidSourceConfiguration", e.to_string());
    let text = |b: Vec<u8>| {
        String::from_utf8_lossy(&b)
            .trim_end_matches('\n')
            .to_string()
    };
    match key.key_type.unwrap_or_default() {
        ferry_api::SigningKeyType::Gpg => Ok(SigningKey::Gpg {
            armored: secrets.key(namespace, name, "git.asc", id).map_err(err)?,
            passphrase: secrets
                .optional_key(namespace, name, "passphrase", id)
                .map_err(err)?
                .map(text),
        }),
        ferry_api::SigningKeyType::Ssh => Ok(SigningKey::Ssh {
            private_key: secrets.key(namespace, name, "identity", id).map_err(err)?,
            password: secrets
                .optional_key(namespace, name, "password", id)
                .map_err(err)?
                .map(text),
        }),
    }
}

/// `update.path` relative to the clone; `None` when it would escape it.
fn safe_relative_path(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Why a GitRepository is missing, and how to supply it. `flux bootstrap` creates
/// `flux-system/flux-system` in the cluster (its gotk-sync.yaml is often not in Git).
fn missing_git_repository(id: &str, ns: &str, name: &str) -> String {
    let mut msg = format!("{id}: GitRepository {ns}/{name} not found in the source");
    if ns == "flux-system" && name == "flux-system" {
        msg.push_str(
            "; flux bootstrap creates it in the cluster, outside Git: pass --git-url URL (with \
             --git-branch) to supply it, or add a file defining it (a GitRepository whose url \
             may use ${var}, filled with --var)",
        );
    } else {
        msg.push_str("; add a file defining it, or pass --git-url URL for flux-system/flux-system");
    }
    msg
}

/// What one automation run computes on a tip, owned so it can move to a blocking task.
struct Job {
    target: Target,
    values: PolicyValues,
    newer: NewerInGit,
    namespace: String,
    name: String,
    automation_id: String,
}

/// The outcome of a [`Job`] on the tips it was computed on.
struct JobResult {
    outcome: Result<UpdateOutcome, ferry_git::UpdateError<ApplyError>>,
    tree: Option<TreeUpdate>,
    template_error: Option<StepFailure>,
}

impl Job {
    /// The setter values to write on the tip in `workdir`: holds applied (read from that very
    /// tip, so a hold pushed meanwhile wins), Git tags newer than this run's scan left alone.
    fn values_on(&self, workdir: &Path) -> Result<PolicyValues, ApplyError> {
        let holds = crate::rollback::HoldsFile::read(workdir)?;
        let mut values = crate::rollback::apply_holds(&self.values, &holds);
        for key in self
            .newer
            .keys_on(&workdir.join(&self.target.update_path), &values, &holds)
        {
            values.remove(&key);
        }
        Ok(values)
    }

    /// The commit for `tree`, or `Err` with a template failure.
    fn commit_spec(&self, tree: &TreeUpdate) -> Result<CommitSpec, StepFailure> {
        let data = TemplateData {
            automation: AutomationObject {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
            },
            values: self.target.template_values.clone(),
            changed: ChangeResult {
                file_changes: tree.files.clone(),
            },
        };
        let template = self
            .target
            .template
            .as_deref()
            .unwrap_or(ferry_template::DEFAULT_COMMIT_MESSAGE);
        // A template using the v1beta1 `.Updated` field fails with Flux's reason.
        let message = ferry_template::render_commit_message(template, &data).map_err(|e| {
            let msg = e.to_string();
            let reason = if msg.contains(".Updated") {
                ferry_api::REMOVED_TEMPLATE_FIELD
            } else {
                "GitOperationFailed"
            };
            stalled(reason, msg)
        })?;
        Ok(CommitSpec {
            message,
            trailers: automation_trailers(&self.automation_id, &data.changed.changes()),
            author: self.target.author.clone(),
            signing: self.target.signing.clone(),
        })
    }

    /// The dry run: the same values on the pass's tip, applied without writing.
    fn dry_run(
        &self,
        cache: &CloneCache,
        pass: &crate::writeback::Pass,
    ) -> Result<Option<PushReport>, StepFailure> {
        let checkout = pass
            .checkout(cache, &self.target.remote, &self.target.checkout_branch)
            .map_err(|e| {
                stalled(
                    "GitOperationFailed",
                    format!("failed to checkout source: {e}"),
                )
            })?;
        let failed =
            |e: ApplyError| stalled("UpdateFailed", format!("failed to apply policies: {e}"));
        let values = self.values_on(checkout.workdir()).map_err(failed)?;
        let root = checkout.workdir().join(&self.target.update_path);
        let tree =
            ferry_setters::apply_tree_in(checkout.workdir(), &root, &values, WriteMode::DryRun)
                .map_err(|e| failed(e.into()))?;
        if tree.files.is_empty() {
            return Ok(None);
        }
        // The message is rendered as the real run would, so a bad template fails here too.
        self.commit_spec(&tree)?;
        Ok(Some(PushReport {
            automation: self.automation_id.clone(),
            commit: None,
            branch: self.target.push_branch.clone(),
            changes: change_trailers(&tree),
            diff: Some(tree_diff(&tree, &self.target.update_path)),
            attempts: 0,
        }))
    }

    /// Fetch (unless the pass already did), compute, commit, push; recompute on a moved tip.
    fn push(&self, cache: &CloneCache, plan: &UpdatePlan) -> JobResult {
        let mut tree_seen: Option<TreeUpdate> = None;
        let mut template_error: Option<StepFailure> = None;
        let outcome =
            ferry_git::update_and_push(cache, &self.target.remote, plan, |workdir: &Path| {
                let values = self.values_on(workdir)?;
                let tree = ferry_setters::apply_tree_in(
                    workdir,
                    &workdir.join(&self.target.update_path),
                    &values,
                    WriteMode::Write,
                )?;
                tree_seen = None;
                if tree.files.is_empty() {
                    return Ok(None);
                }
                match self.commit_spec(&tree) {
                    Ok(spec) => {
                        tree_seen = Some(tree);
                        Ok(Some(spec))
                    }
                    Err(f) => {
                        template_error = Some(f);
                        Ok(None)
                    }
                }
            });
        JobResult {
            outcome,
            tree: tree_seen,
            template_error,
        }
    }
}

pub(crate) async fn run_one(
    engine: &Engine,
    objects: &ObjectSet,
    auto: &ImageUpdateAutomation,
    values: &PolicyValues,
    options: &AutomationOptions,
    pass: &crate::writeback::Pass,
    computed: &Computed,
) -> Result<Option<PushReport>, StepFailure> {
    let target = target(engine, objects, auto)?;
    let cache = CloneCache::new(engine.config().cache_dir.clone())
        .map_err(|e| stalled("GitOperationFailed", e.to_string()))?;
    if let Some(earlier) = pass.timed_out(&cache, &target.remote) {
        return Err(stalled(
            "GitOperationFailed",
            format!("not tried: {earlier} earlier in this pass"),
        ));
    }
    let newer =
        NewerInGit::decide(engine, objects, values, &cache, &target, pass, computed).await?;
    let job = Job {
        target,
        values: values.clone(),
        newer,
        namespace: auto.namespace().to_string(),
        name: auto.name().to_string(),
        automation_id: format!("{}/{}", auto.namespace(), auto.name()),
    };
    let task_failed = |e: tokio::task::JoinError| {
        stalled("GitOperationFailed", format!("automation task failed: {e}"))
    };
    if options.dry_run {
        let pass = pass.clone();
        return crate::blocking(move || job.dry_run(&cache, &pass))
            .await
            .map_err(task_failed)?;
    }
    let plan = UpdatePlan {
        checkout_branch: job.target.checkout_branch.clone(),
        push_branch: Some(job.target.push_branch.clone()),
        push_options: job.target.push_options.clone(),
        refspec: job.target.refspec.clone(),
        max_attempts: options.max_push_attempts.max(1),
        backoff: Backoff::default(),
        fresh: pass.is_fresh(&cache, &job.target.remote, &job.target.checkout_branch),
        before_push: Some(crate::test_hooks::before_push),
        dry_run: false,
    };
    let (job, cache, result) = crate::blocking(move || {
        let result = job.push(&cache, &plan);
        (job, cache, result)
    })
    .await
    .map_err(task_failed)?;
    match &result.outcome {
        Ok(_) => pass.mark(&cache, &job.target.remote, &job.target.checkout_branch),
        Err(ferry_git::UpdateError::Git(e)) => pass.note_timeout(&cache, &job.target.remote, e),
        Err(_) => {}
    }
    if let Some(f) = result.template_error {
        return Err(f);
    }
    match result.outcome {
        Ok(UpdateOutcome::Pushed { sha, attempts, .. }) => Ok(Some(PushReport {
            automation: job.automation_id,
            commit: Some(sha),
            branch: job.target.push_branch.clone(),
            changes: result
                .tree
                .as_ref()
                .map(change_trailers)
                .unwrap_or_default(),
            diff: None,
            attempts,
        })),
        Ok(UpdateOutcome::NothingToDo { .. } | UpdateOutcome::WouldPush { .. }) => Ok(None),
        Err(ferry_git::UpdateError::Apply(e)) => Err(stalled(
            "UpdateFailed",
            format!("failed to apply policies: {e}"),
        )),
        Err(e) => Err(stalled(
            "GitOperationFailed",
            format!("failed to update source: {e}"),
        )),
    }
}

/// Why computing an automation's change failed.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Setters(#[from] ferry_setters::SetterError),
    #[error(transparent)]
    Holds(#[from] crate::rollback::HoldsError),
}

/// Policies whose tag in Git is one this run's scan has not seen but the registry has: another
/// reconciler with a newer view of the registry wrote it on the tip we are about to commit on,
/// and writing our older election would move the environment backwards. Those policies are left
/// as they are in Git for this commit. Held policies are exempt (a hold is written on purpose),
/// and a tag the registry no longer has (deleted) does not count, so the environment moves off it.
///
/// The registry is asked (asynchronously) about the tags Git holds at the pass's tip, before the
/// push loop; a tag met only on a tip that moved meanwhile is treated as newer (unknown: never
/// risk moving backwards) until the next run asks about it.
struct NewerInGit {
    /// `(policy key, Git tag)` → newer than this run's view.
    decided: HashMap<(String, String), bool>,
}

impl NewerInGit {
    async fn decide(
        engine: &Engine,
        objects: &ObjectSet,
        values: &PolicyValues,
        cache: &CloneCache,
        target: &Target,
        pass: &crate::writeback::Pass,
        computed: &Computed,
    ) -> Result<NewerInGit, StepFailure> {
        let (cache, pass) = (cache.clone(), pass.clone());
        let (remote, branch) = (target.remote.clone(), target.checkout_branch.clone());
        let path = target.update_path.clone();
        let read = crate::blocking(move || -> Result<_, String> {
            let co = pass
                .checkout(&cache, &remote, &branch)
                .map_err(|e| format!("failed to checkout source: {e}"))?;
            let holds =
                crate::rollback::HoldsFile::read(co.workdir()).map_err(|e| e.to_string())?;
            let sites =
                crate::rollback::markers::scan(&co.workdir().join(&path)).unwrap_or_default();
            Ok((holds, sites))
        })
        .await
        .map_err(|e| stalled("GitOperationFailed", format!("automation task failed: {e}")))?;
        let (holds, sites) = read.map_err(|e| stalled("GitOperationFailed", e))?;
        let mut decided = HashMap::new();
        // The registry questions run side by side (bounded by the client's per-registry
        // limit): a first pass over 3,000 changed markers asks 3,000 of them.
        let mut asks = tokio::task::JoinSet::new();
        for (key, _, current) in differing(&sites, values, &holds) {
            match tag_is_newer(engine, objects, computed, key, &current) {
                Newer::Known(newer) => {
                    decided.insert((key.clone(), current), newer);
                }
                Newer::Ask(access) => {
                    let (client, key) = (engine.registry().clone(), key.clone());
                    asks.spawn(async move {
                        // Present, or unknown: do not risk moving the environment backwards.
                        let newer = !matches!(
                            client.head_manifest(&access, &current).await,
                            Err(ferry_registry::RegistryError::NotFound { .. })
                        );
                        ((key, current), newer)
                    });
                }
            }
        }
        // A task that did not finish leaves its key undecided, which counts as newer.
        while let Some(done) = asks.join_next().await {
            if let Ok((k, newer)) = done {
                decided.insert(k, newer);
            }
        }
        Ok(NewerInGit { decided })
    }

    /// The keys to leave as Git has them on the tip under `root`.
    fn keys_on(
        &self,
        root: &Path,
        values: &PolicyValues,
        holds: &crate::rollback::HoldsFile,
    ) -> Vec<String> {
        let Ok(sites) = crate::rollback::markers::scan(root) else {
            return Vec::new();
        };
        let mut newer = Vec::new();
        for (key, value, current) in differing(&sites, values, holds) {
            if self
                .decided
                .get(&(key.clone(), current.clone()))
                .copied()
                .unwrap_or(true)
            {
                tracing::info!(policy = %key, git = %current, ours = %value.tag,
                    "Git holds a tag newer than this run's scan; leaving it");
                newer.push(key.clone());
            }
        }
        newer
    }
}

/// `(policy key, our value, Git's tag)` of the policies that are not held and whose markers among
/// `sites` hold another tag than ours.
fn differing<'a>(
    sites: &'a [ferry_setters::MarkerSite],
    values: &'a PolicyValues,
    holds: &'a crate::rollback::HoldsFile,
) -> impl Iterator<Item = (&'a String, &'a ImageRef, String)> + 'a {
    values.iter().filter_map(move |(key, value)| {
        if holds.hold(&key.replacen(':', "/", 1)).is_some() {
            return None;
        }
        let current = crate::rollback::markers::state_of_sites(sites, key).tag?;
        (current != value.tag).then_some((key, value, current))
    })
}

/// True when `tag` (in Git for policy `key`) is newer than this run's view: unseen by the scan,
/// within the policy's filter, and present (or of unknown presence) in the registry.
/// Whether Git's `tag` for policy `key` is newer than this run's view, when the store can tell;
/// else the registry must be asked whether the tag exists.
enum Newer {
    Known(bool),
    Ask(Box<ferry_registry::RepoAccess>),
}

fn tag_is_newer(
    engine: &Engine,
    objects: &ObjectSet,
    computed: &Computed,
    key: &str,
    tag: &str,
) -> Newer {
    let Some((ns, name)) = key.split_once(':') else {
        return Newer::Known(false);
    };
    let Some(policy) = objects.image_policy(ns, name) else {
        return Newer::Known(false);
    };
    let Some(repo) = objects.repository_of(policy) else {
        return Newer::Known(false);
    };
    let known = computed
        .tags(engine, repo.namespace(), repo.name())
        .is_ok_and(|tags| tags.iter().any(|t| t == tag));
    if known {
        // Our election saw it and chose otherwise (newer, denied or filtered out).
        return Newer::Known(false);
    }
    let filter = match &policy.spec.filter_tags {
        Some(f) => ferry_policy::TagFilter::new(f.pattern.as_deref(), f.extract.as_deref()),
        None => Ok(ferry_policy::TagFilter::none()),
    };
    if !filter.is_ok_and(|f| !f.apply(&[tag.to_string()]).is_empty()) {
        return Newer::Known(false);
    }
    match crate::scan::repo_access(engine, repo) {
        Ok(access) => Newer::Ask(Box::new(access)),
        Err(_) => Newer::Known(false),
    }
}

fn change_trailers(tree: &TreeUpdate) -> Vec<ChangeTrailer> {
    let mut out: Vec<ChangeTrailer> = tree
        .files
        .values()
        .flat_map(|objs| objs.values().flatten())
        .map(ChangeTrailer::from_change)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn tree_diff(tree: &TreeUpdate, prefix: &Path) -> String {
    let mut out = String::new();
    for (path, edit) in &tree.edits {
        let path = prefix.join(path);
        out.push_str(&ferry_setters::unified_diff(
            &path.to_string_lossy(),
            &edit.old,
            &edit.new,
        ));
    }
    out
}
