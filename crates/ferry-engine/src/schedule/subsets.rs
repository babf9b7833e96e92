//! The objects each step of a pass runs on. Every subset carries the lookup-only objects
//! (GitRepositories, Namespaces, Pipelines); the engine leaves the records of objects outside
//! the subset alone.

use std::collections::{BTreeMap, BTreeSet};

use ferry_api::{ImagePolicy, Object, ObjectSet};

use super::{ObjectKey, key};
use ferry_core::Kind;

/// The ImageRepository a policy reads its tags from.
pub(super) fn policy_repo(p: &ImagePolicy) -> ObjectKey {
    p.repository_key()
}

/// Lookup-only objects every subset carries.
fn base(full: &ObjectSet) -> ObjectSet {
    ObjectSet {
        git_repositories: full.git_repositories.clone(),
        namespaces: full.namespaces.clone(),
        pipelines: full.pipelines.clone(),
        ..ObjectSet::default()
    }
}

/// The objects of `list` named in `keys`.
fn pick<S: ferry_api::Spec + Clone>(
    list: &[Object<S>],
    keys: &BTreeSet<ObjectKey>,
) -> Vec<Object<S>> {
    let Some(kind) = Kind::parse(S::KIND) else {
        return Vec::new();
    };
    (list.iter())
        .filter(|o| keys.contains(&key(kind, o.namespace(), o.name())))
        .cloned()
        .collect()
}

/// The scan step: the given repositories only (no policies, so `Engine::scan` only lists tags).
pub fn scan_subset(full: &ObjectSet, repos: &BTreeSet<ObjectKey>) -> ObjectSet {
    let mut set = base(full);
    set.image_repositories = pick(&full.image_repositories, repos);
    set
}

/// The policies of the given repositories.
pub(super) fn policies_of(full: &ObjectSet, repos: &BTreeSet<ObjectKey>) -> BTreeSet<ObjectKey> {
    (full.image_policies.iter())
        .filter(|p| repos.contains(&policy_repo(p)))
        .map(|p| key(Kind::ImagePolicy, p.namespace(), p.name()))
        .collect()
}

/// The policy step: the given policies and the repositories they reference (for the image
/// name, the ACL and the credentials of a digest lookup; their tags are read from the store).
/// No automations: reading holds would fetch Git on every evaluation, so the engine keeps the
/// last known holds (the automation step refreshes them).
pub fn policy_subset(full: &ObjectSet, policies: &BTreeSet<ObjectKey>) -> ObjectSet {
    let mut set = base(full);
    set.image_policies = pick(&full.image_policies, policies);
    with_policy_repositories(set, full)
}

/// The automation step:
/// - each due automation with every policy in its namespace (it re-applies all of them);
/// - each automation whose `policySelector` selects a changed policy of its namespace, with
///   the changed policies only (the others' markers already hold their values);
/// - the repositories of those policies (the engine needs their stored tags), and the lookups.
pub fn automation_subset(
    full: &ObjectSet,
    due: &BTreeSet<ObjectKey>,
    changed: &BTreeSet<ObjectKey>,
) -> ObjectSet {
    let mut set = base(full);
    let due_ns: BTreeSet<&str> = full
        .image_update_automations
        .iter()
        .filter(|a| due.contains(&key(Kind::ImageUpdateAutomation, a.namespace(), a.name())))
        .map(|a| a.namespace())
        .collect();
    let changed_policies: Vec<&ImagePolicy> = full
        .image_policies
        .iter()
        .filter(|p| changed.contains(&key(Kind::ImagePolicy, p.namespace(), p.name())))
        .collect();
    set.image_update_automations = full
        .image_update_automations
        .iter()
        .filter(|a| {
            due.contains(&key(Kind::ImageUpdateAutomation, a.namespace(), a.name()))
                || changed_policies.iter().any(|p| a.selects(p))
        })
        .cloned()
        .collect();
    set.image_policies = full
        .image_policies
        .iter()
        .filter(|p| {
            due_ns.contains(p.namespace())
                || changed.contains(&key(Kind::ImagePolicy, p.namespace(), p.name()))
        })
        .cloned()
        .collect();
    with_policy_repositories(set, full)
}

/// Adds to `set` the ImageRepositories its policies reference (the engine reads their tags).
fn with_policy_repositories(mut set: ObjectSet, full: &ObjectSet) -> ObjectSet {
    let repo_keys: BTreeSet<ObjectKey> = set.image_policies.iter().map(policy_repo).collect();
    set.image_repositories = pick(&full.image_repositories, &repo_keys);
    set
}

/// The policies whose `latestRef` a step set to a new value.
pub(super) fn changed_refs(
    before: &BTreeMap<ObjectKey, Option<String>>,
    after: &BTreeMap<ObjectKey, Option<String>>,
) -> BTreeSet<ObjectKey> {
    (after.iter())
        .filter(|(k, v)| v.is_some() && before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}
