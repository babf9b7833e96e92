//! ImagePolicy reconciliation: ACL, filterTags, the policer, digest reflection.

use ferry_api::{DigestReflectionPolicy, ImagePolicy, ObjectSet};
use ferry_policy::{
    DigestAction, DigestReflection, ImageRef, Policer, PolicyChoice, TagFilter, digest_action,
    ready_message, select_latest, update_refs,
};
use ferry_store::{Kind, PolicyRecord};

use crate::scan::repo_access;
use crate::steps::{Computed, Election, Selection, StepFailure};
use crate::{Engine, EngineError, ObjectOutcome};
use crate::{Observation, record_observation};

/// Elects every ImagePolicy from the tags `computed` holds for its ImageRepository (this pass's
/// scan, else the stored one), records each outcome and hands each `latestRef` on in `computed`.
pub(crate) async fn evaluate_all(
    engine: &Engine,
    objects: &ObjectSet,
    pass: &crate::writeback::Pass,
    selection: Selection<'_>,
    computed: &mut Computed,
) -> Result<Vec<ObjectOutcome>, EngineError> {
    let mut outcomes = Vec::new();
    let selected = |p: &&ImagePolicy| selection.covers(Kind::ImagePolicy, p.namespace(), p.name());
    if !objects.image_policies.iter().any(|p| selected(&p)) {
        // Nothing to elect: do not fetch the GitOps repositories for their holds.
        return Ok(outcomes);
    }
    // Holds and denied tags from the GitOps repos, read once per run (docs/rollback.md).
    let holds = crate::rollback::gather_holds(engine, objects, pass).await;
    for policy in objects.image_policies.iter().filter(selected) {
        let previous = engine
            .store()
            .get(Kind::ImagePolicy, policy.namespace(), policy.name())?;
        let prev_policy = previous
            .as_ref()
            .and_then(|p| p.policy.clone())
            .unwrap_or_default();
        let policy_holds = holds.for_policy(policy.namespace(), policy.name(), &prev_policy);
        let result = if policy.spec.suspend {
            Err(StepFailure {
                reason: "Suspended",
                message: "reconciliation is suspended".into(),
            })
        } else {
            let repo = policy.repository_key();
            let tags = computed.tags(engine, &repo.namespace, &repo.name)?;
            let denied = &policy_holds.denied;
            (engine.elect_policy(objects, policy, &tags, &prev_policy, denied)).await
        };
        let suspended = policy.spec.suspend;
        let (ready, reason, message, mut status) = match result {
            Ok(e) => (true, "Succeeded".to_string(), e.message, e.status),
            // A failing policy keeps its last latestRef, as Flux does: automations still use it.
            Err(f) => (false, f.reason.to_string(), f.message, prev_policy),
        };
        if let Some(latest) = &status.latest_ref {
            computed.set_latest(policy.namespace(), policy.name(), latest.clone());
        }
        status.hold = policy_holds.hold;
        status.denied_tags = policy_holds.denied;
        outcomes.push(record_observation(
            engine,
            previous.as_ref(),
            Observation {
                kind: Kind::ImagePolicy,
                namespace: policy.namespace().to_string(),
                name: policy.name().to_string(),
                suspended,
                ready,
                reason,
                message,
                scan: None,
                policy: Some(status),
                automation: None,
            },
            true,
        )?);
    }
    Ok(outcomes)
}

/// Builds the policer from the spec. Unlike Flux, which silently uses the first of several
/// choices, Ferry refuses an ambiguous policy (documented in docs/flux-compatibility.md).
pub(crate) fn policer_for(policy: &ImagePolicy) -> Result<Policer, StepFailure> {
    let choice = &policy.spec.policy;
    let set: Vec<&str> = [
        choice.semver.as_ref().map(|_| "semver"),
        choice.alphabetical.as_ref().map(|_| "alphabetical"),
        choice.numerical.as_ref().map(|_| "numerical"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if set.len() > 1 {
        return Err(StepFailure {
            reason: "InvalidPolicy",
            message: format!(
                "invalid policy: spec.policy sets {} at once; set exactly one",
                set.join(" and ")
            ),
        });
    }
    let order = |o: ferry_api::SortOrder| match o {
        ferry_api::SortOrder::Asc => "asc".to_string(),
        ferry_api::SortOrder::Desc => "desc".to_string(),
    };
    let parsed = PolicyChoice::from_spec(
        choice.semver.as_ref().map(|s| s.range.as_str()),
        choice
            .alphabetical
            .as_ref()
            .map(|a| order(a.order))
            .as_deref(),
        choice.numerical.as_ref().map(|n| order(n.order)).as_deref(),
    )
    .and_then(|c| Policer::new(&c));
    parsed.map_err(|e| StepFailure {
        reason: e.reason(),
        message: e.to_string(),
    })
}

impl Engine {
    /// Step 2: elects one ImagePolicy's latest tag from `tags` (its ImageRepository's scan),
    /// given its previous status and the tags denied to it in Git. Reads no store; may ask the
    /// registry for the elected tag's digest (`digestReflectionPolicy`).
    pub async fn elect_policy(
        &self,
        objects: &ObjectSet,
        policy: &ImagePolicy,
        tags: &[String],
        previous: &PolicyRecord,
        denied: &[String],
    ) -> Result<Election, StepFailure> {
        let engine = self;
        let ferry_store::ObjectKey {
            namespace: repo_ns,
            name: repo_name,
            ..
        } = policy.repository_key();
        let Some(repo) = objects.image_repository(&repo_ns, &repo_name) else {
            return Err(StepFailure {
                reason: "DependencyNotReady",
                message: format!(
                    "failed to get the referred ImageRepository: referenced ImageRepository does not exist: ImageRepository {repo_ns}/{repo_name} not found in the source"
                ),
            });
        };
        check_acl(engine, objects, policy, repo)?;
        if policy.spec.digest_reflection_policy == DigestReflectionPolicy::Always
            && policy.spec.interval.is_none()
        {
            return Err(StepFailure {
            reason: "IntervalNotConfigured",
            message:
                "invalid policy: spec.interval is required when digestReflectionPolicy is Always"
                    .into(),
        });
        }
        let policer = policer_for(policy)?;
        let filter = match &policy.spec.filter_tags {
            Some(f) => TagFilter::new(f.pattern.as_deref(), f.extract.as_deref()),
            None => Ok(TagFilter::none()),
        }
        .map_err(|e| StepFailure {
            reason: e.reason(),
            message: e.to_string(),
        })?;
        let mut tags = tags.to_vec();
        if tags.is_empty() {
            return Err(StepFailure {
                reason: "DependencyNotReady",
                message: format!("no tags in database for ImageRepository {repo_ns}/{repo_name}"),
            });
        }
        // Denied tags (`.ferry/holds.yaml`) are never elected: the newest allowed tag wins.
        if !denied.is_empty() {
            tags.retain(|t| !denied.contains(t));
            if tags.is_empty() {
                return Err(StepFailure {
                    reason: "DependencyNotReady",
                    message: format!(
                        "every tag of ImageRepository {repo_ns}/{repo_name} is denied for this policy"
                    ),
                });
            }
        }
        let tag = select_latest(&tags, &filter, &policer).map_err(|e| StepFailure {
            reason: e.reason(),
            message: e.to_string(),
        })?;
        let name = repo.spec.image.clone();
        let reflection = match policy.spec.digest_reflection_policy {
            DigestReflectionPolicy::Never => DigestReflection::Never,
            DigestReflectionPolicy::IfNotPresent => DigestReflection::IfNotPresent,
            DigestReflectionPolicy::Always => DigestReflection::Always,
        };
        let (stored_latest, stored_previous) = (
            previous.latest_ref.as_ref(),
            previous.observed_previous_ref.as_ref(),
        );
        let digest = match digest_action(reflection, stored_latest, &name, &tag) {
            DigestAction::None => String::new(),
            DigestAction::Reuse(d) => d,
            DigestAction::Fetch => fetch_digest(engine, repo, &name, &tag).await?,
        };
        let new = ImageRef::new(name, tag).with_digest(digest);
        let update = update_refs(stored_latest, stored_previous, new);
        let message = ready_message(&update.latest, update.observed_previous.as_ref());
        let status = PolicyRecord {
            latest_ref: Some(update.latest),
            observed_previous_ref: update.observed_previous,
            ..PolicyRecord::default()
        };
        Ok(Election { status, message })
    }
}

async fn fetch_digest(
    engine: &Engine,
    repo: &ferry_api::ImageRepository,
    name: &str,
    tag: &str,
) -> Result<String, StepFailure> {
    let access = repo_access(engine, repo)?;
    engine
        .registry()
        .head_manifest(&access, tag)
        .await
        .map(|d| d.digest)
        .map_err(|e| StepFailure {
            reason: "Failure",
            message: format!("failed fetching digest of {name}:{tag}: {e}"),
        })
}

fn check_acl(
    engine: &Engine,
    objects: &ObjectSet,
    policy: &ImagePolicy,
    repo: &ferry_api::ImageRepository,
) -> Result<(), StepFailure> {
    let access_from = repo
        .spec
        .access_from
        .as_ref()
        .map(|a| ferry_policy::acl::AccessFrom {
            namespace_selectors: a
                .namespace_selectors
                .iter()
                .map(|s| s.match_labels.clone())
                .collect(),
        });
    let empty = std::collections::BTreeMap::new();
    let labels = objects
        .namespace_labels(policy.namespace())
        .unwrap_or(&empty);
    ferry_policy::acl::check_access(
        policy.namespace(),
        repo.namespace(),
        repo.name(),
        access_from.as_ref(),
        labels,
        engine.config().no_cross_namespace_refs,
    )
    .map_err(|e| StepFailure {
        reason: "AccessDenied",
        message: e.to_string(),
    })
}
