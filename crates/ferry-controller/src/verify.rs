//! `ferry verify`: what Git wants, what the cluster runs and what the registry holds, per app and
//! environment.
//!
//! The live side is read from the workloads (Deployments, StatefulSets, DaemonSets, CronJobs) in
//! the namespace of the environment's ImagePolicy, matched to the app by image repository, so an
//! overlay's `images:` entry counts like a marker in a manifest (the cluster runs the rendered
//! result). Where a Deployment's ReplicaSets show that Git's image was already rolled out and
//! something else runs now (a `kubectl rollout undo`, a `kubectl set image`), the state is
//! `drift`; where Git's image never reached the cluster yet, `pending`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PodSpec;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::ControllerError;

/// The state of one app in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyState {
    /// Every live container of the app runs Git's tag.
    InSync,
    /// Git changed and the cluster has not applied it yet.
    Pending,
    /// The cluster ran Git's image and now runs something else.
    Drift,
    /// No workload in the namespace runs the app's image.
    Missing,
    /// Git's value could not be read (no markers, or the repository was unreadable).
    Unknown,
}

impl VerifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyState::InSync => "in-sync",
            VerifyState::Pending => "pending",
            VerifyState::Drift => "drift",
            VerifyState::Missing => "missing",
            VerifyState::Unknown => "unknown",
        }
    }
}

/// One container of a workload running the app's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveImage {
    /// `Deployment/backend`.
    pub workload: String,
    pub container: String,
    pub image: String,
}

/// What Git wants for one app in one environment (from the markers), with the registry's digest.
#[derive(Debug, Clone)]
pub struct Desired {
    pub app: String,
    pub env: String,
    /// `namespace/name` of the environment's ImagePolicy.
    pub policy: String,
    pub namespace: String,
    /// Image repository, e.g. `127.0.0.1:5000/org/backend`.
    pub image: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// One row of `ferry verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRow {
    pub app: String,
    pub env: String,
    pub policy: String,
    pub namespace: String,
    pub git_tag: Option<String>,
    pub registry_digest: Option<String>,
    pub live: Vec<LiveImage>,
    pub state: VerifyState,
}

impl VerifyRow {
    /// The distinct tags the live containers run, sorted (one element when they agree).
    pub fn live_tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self.live.iter().filter_map(|l| tag_of(&l.image)).collect();
        tags.sort();
        tags.dedup();
        tags
    }
}

/// The tag of an image reference, if it has one.
pub fn tag_of(image: &str) -> Option<String> {
    ferry_core::split_reference(image).tag.map(String::from)
}

fn containers(kind: &str, name: &str, spec: Option<&PodSpec>, out: &mut Vec<LiveImage>) {
    let Some(spec) = spec else { return };
    let init = spec.init_containers.iter().flatten();
    for c in spec.containers.iter().chain(init) {
        if let Some(image) = &c.image {
            out.push(LiveImage {
                workload: format!("{kind}/{name}"),
                container: c.name.clone(),
                image: image.clone(),
            });
        }
    }
}

/// Every container image of the namespace's workloads.
async fn workloads(client: &kube::Client, ns: &str) -> Result<Vec<LiveImage>, ControllerError> {
    let lp = ListParams::default();
    let mut out = Vec::new();
    for d in Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
    {
        let name = d.metadata.name.clone().unwrap_or_default();
        containers("Deployment", &name, d.spec.template.spec.as_ref(), &mut out);
    }
    for s in Api::<StatefulSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
    {
        let name = s.metadata.name.clone().unwrap_or_default();
        containers(
            "StatefulSet",
            &name,
            s.spec.template.spec.as_ref(),
            &mut out,
        );
    }
    for s in Api::<DaemonSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
    {
        let name = s.metadata.name.clone().unwrap_or_default();
        containers("DaemonSet", &name, s.spec.template.spec.as_ref(), &mut out);
    }
    for j in Api::<CronJob>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
    {
        let name = j.metadata.name.clone().unwrap_or_default();
        let spec = j
            .spec
            .job_template
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref());
        containers("CronJob", &name, spec, &mut out);
    }
    Ok(out)
}

/// Images the namespace's ReplicaSets have run (what Deployments rolled out at some point).
async fn rolled_out(client: &kube::Client, ns: &str) -> Result<Vec<String>, ControllerError> {
    let mut out = Vec::new();
    for rs in Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
    {
        let spec = rs.spec.template.as_ref().and_then(|t| t.spec.as_ref());
        let mut live = Vec::new();
        containers("ReplicaSet", "", spec, &mut live);
        out.extend(live.into_iter().map(|l| l.image));
    }
    Ok(out)
}

/// The state of one app from its live containers and the images its ReplicaSets ran.
pub fn classify(desired: &Desired, live: &[LiveImage], history: &[String]) -> VerifyState {
    if live.is_empty() {
        return VerifyState::Missing;
    }
    if desired.tag.is_none() && desired.digest.is_none() {
        return VerifyState::Unknown;
    }
    let runs_git = |image: &str| {
        let ferry_core::Reference { tag, digest, .. } = ferry_core::split_reference(image);
        let tag_ok = tag.is_some() && tag == desired.tag.as_deref();
        let digest_ok = digest.is_some() && digest == desired.digest.as_deref();
        tag_ok || digest_ok
    };
    if live.iter().all(|l| runs_git(&l.image)) {
        return VerifyState::InSync;
    }
    if history
        .iter()
        .any(|i| ferry_core::split_reference(i).name == desired.image && runs_git(i))
    {
        VerifyState::Drift
    } else {
        VerifyState::Pending
    }
}

/// What Git wants per app × environment: the status report's tags and digests, with each
/// policy's namespace and image repository.
pub fn desired(
    objects: &ferry_api::ObjectSet,
    report: &ferry_engine::rollback::StatusReport,
    env: Option<&str>,
) -> Vec<Desired> {
    let mut rows = Vec::new();
    for app in &report.apps {
        for cell in app.envs.iter().filter(|c| env.is_none_or(|e| e == c.env)) {
            let Some((ns, name)) = cell.policy.split_once('/') else {
                continue;
            };
            let Some(policy) = objects
                .image_policies
                .iter()
                .find(|p| p.namespace() == ns && p.name() == name)
            else {
                continue;
            };
            let image = objects
                .repository_of(policy)
                .map(|i| i.spec.image.clone())
                .unwrap_or_default();
            rows.push(Desired {
                app: app.app.clone(),
                env: cell.env.clone(),
                policy: cell.policy.clone(),
                namespace: ns.to_string(),
                image,
                tag: cell.tag.clone(),
                digest: cell.digest.clone(),
            });
        }
    }
    rows
}

/// Reads the cluster for every desired row.
pub async fn verify(
    client: &kube::Client,
    desired: &[Desired],
) -> Result<Vec<VerifyRow>, ControllerError> {
    let mut cache: BTreeMap<String, (Vec<LiveImage>, Vec<String>)> = BTreeMap::new();
    let mut rows = Vec::new();
    for d in desired {
        if !cache.contains_key(&d.namespace) {
            let live = workloads(client, &d.namespace).await?;
            let history = rolled_out(client, &d.namespace).await?;
            cache.insert(d.namespace.clone(), (live, history));
        }
        let (all, history) = &cache[&d.namespace];
        let live: Vec<LiveImage> = all
            .iter()
            .filter(|l| ferry_core::split_reference(&l.image).name == d.image)
            .cloned()
            .collect();
        rows.push(VerifyRow {
            app: d.app.clone(),
            env: d.env.clone(),
            policy: d.policy.clone(),
            namespace: d.namespace.clone(),
            git_tag: d.tag.clone(),
            registry_digest: d.digest.clone(),
            state: classify(d, &live, history),
            live,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(tag: &str) -> Desired {
        Desired {
            app: "backend".into(),
            env: "staging".into(),
            policy: "staging/backend".into(),
            namespace: "staging".into(),
            image: "127.0.0.1:5000/org/backend".into(),
            tag: Some(tag.into()),
            digest: Some("sha256:aa".into()),
        }
    }

    fn live(image: &str) -> Vec<LiveImage> {
        vec![LiveImage {
            workload: "Deployment/backend".into(),
            container: "backend".into(),
            image: image.into(),
        }]
    }

    #[test]
    fn states_follow_live_and_rollout_history() {
        let d = desired("v2");
        let img = |t: &str| format!("127.0.0.1:5000/org/backend:{t}");
        assert_eq!(classify(&d, &live(&img("v2")), &[]), VerifyState::InSync);
        assert_eq!(
            classify(&d, &live("127.0.0.1:5000/org/backend@sha256:aa"), &[]),
            VerifyState::InSync
        );
        assert_eq!(
            classify(&d, &live(&img("v1")), &[img("v1")]),
            VerifyState::Pending
        );
        assert_eq!(
            classify(&d, &live(&img("v1")), &[img("v1"), img("v2")]),
            VerifyState::Drift
        );
        assert_eq!(classify(&d, &[], &[]), VerifyState::Missing);
        let unreadable = Desired {
            tag: None,
            digest: None,
            ..desired("v2")
        };
        assert_eq!(
            classify(&unreadable, &live(&img("v1")), &[]),
            VerifyState::Unknown
        );
    }
}
