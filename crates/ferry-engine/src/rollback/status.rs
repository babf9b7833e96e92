//! `ferry status`: apps × environments from the tips of the GitOps branches.

use std::collections::BTreeMap;

use ferry_api::ObjectSet;
use ferry_git::CloneCache;
use ferry_store::Kind;

use super::holds::HoldsFile;
use super::markers::MarkerState;
use super::target::{AppTarget, marker_files, resolve};
use super::{RollbackError, hold_since};
use crate::Engine;

/// One environment of one app.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusCell {
    pub env: String,
    /// `namespace/name` of the ImagePolicy.
    pub policy: String,
    /// The tag the markers hold at the branch tip (`None`: no markers, or the repo was unreadable).
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// `markers`, `registry` or `store` (where the digest came from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_source: Option<String>,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<ferry_store::HoldRecord>,
    pub denied: Vec<String>,
    /// The next environment, when this one runs a different digest (promotable into it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotable_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusApp {
    pub app: String,
    pub envs: Vec<StatusCell>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    /// Environment names in order (columns).
    pub envs: Vec<String>,
    pub apps: Vec<StatusApp>,
}

const SEED_ORDER: [&str; 3] = ["develop", "staging", "production"];

/// Apps and their environments: Pipelines when present, else ImagePolicies grouped by name
/// across namespaces (seed order first, then alphabetical).
pub fn layout(objects: &ObjectSet, only: Option<&str>) -> Vec<(String, Vec<String>)> {
    let mut apps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in objects.pipelines() {
        apps.insert(
            p.name().to_string(),
            p.spec.stages.iter().map(|s| s.name.clone()).collect(),
        );
    }
    for p in &objects.image_policies {
        let in_pipeline = objects.pipelines().iter().any(|pl| {
            pl.spec
                .stages
                .iter()
                .any(|s| s.namespace == p.namespace() && s.policy == p.name())
        });
        if in_pipeline {
            continue;
        }
        let envs = apps.entry(p.name().to_string()).or_default();
        if !envs.iter().any(|e| e == p.namespace()) {
            envs.push(p.namespace().to_string());
        }
    }
    for envs in apps.values_mut() {
        let rank = |e: &String| {
            SEED_ORDER
                .iter()
                .position(|s| s == e)
                .unwrap_or(SEED_ORDER.len())
        };
        // Pipelines keep their stage order; grouped policies get the seed order.
        if envs.iter().any(|e| SEED_ORDER.contains(&e.as_str())) {
            envs.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
        }
    }
    apps.into_iter()
        .filter(|(a, _)| only.is_none_or(|o| o == a))
        .collect()
}

/// The tag, digest (when the markers pin one), hold and denials of one cell, from the markers and
/// the holds file on the target's branch (fetched once per pass).
async fn fill_from_git(
    cell: &mut StatusCell,
    cache: &CloneCache,
    pass: &crate::writeback::Pass,
    target: &AppTarget,
) {
    let (cache, pass, t) = (cache.clone(), pass.clone(), target.clone());
    let read = crate::blocking(
        move || -> Result<(MarkerState, HoldsFile, Option<String>), RollbackError> {
            let target = t;
            let co = pass.checkout(&cache, &target.remote, &target.branch)?;
            let (_, state) = marker_files(co.workdir(), &target.scan_root, &target.key())?;
            let holds = HoldsFile::read(co.workdir())?;
            let since = holds
                .hold(&target.id())
                .and_then(|_| hold_since(&co, &target.id()));
            Ok((state, holds, since))
        },
    )
    .await
    .unwrap_or_else(|e| Err(RollbackError::Task(e)));
    let (state, holds, since) = match read {
        Ok(r) => r,
        Err(e) => {
            cell.error = Some(e.to_string());
            return;
        }
    };
    cell.tag = state.tag.clone();
    if let Some(d) = &state.digest {
        cell.digest = Some(d.clone());
        cell.digest_source = Some("markers".into());
    }
    if let Some(h) = holds.hold(&target.id()) {
        cell.held = true;
        cell.hold = Some(ferry_store::HoldRecord {
            tag: h.tag.clone(),
            since,
            by: h.by.clone(),
            reason: h.reason.clone(),
            at: h.at.clone(),
        });
    }
    cell.denied = holds.denied_tags(&target.id());
}

impl Engine {
    /// The status matrix. Digests: from the markers, else a registry HEAD of the tag, else the
    /// stored `latestRef` when it names the same tag.
    pub async fn status(
        &self,
        objects: &ObjectSet,
        app: Option<&str>,
    ) -> Result<StatusReport, RollbackError> {
        let layout = layout(objects, app);
        if let Some(a) = app
            && layout.is_empty()
        {
            return Err(RollbackError::Invalid(format!(
                "no app {a}: no Pipeline or ImagePolicy named {a}"
            )));
        }
        let cache = CloneCache::new(self.config().cache_dir.clone())?;
        // One pass: every cell of one repository and branch reads the same fetch.
        let _pass = self.pass();
        let pass = self.current_pass();
        let mut apps = Vec::new();
        let mut env_order: Vec<String> = Vec::new();
        for (app_name, envs) in &layout {
            let mut cells = Vec::new();
            for env in envs {
                if !env_order.contains(env) {
                    env_order.push(env.clone());
                }
                let (ns, name) = super::target::policy_of(objects, env, app_name);
                let mut cell = StatusCell {
                    env: env.clone(),
                    policy: format!("{ns}/{name}"),
                    tag: None,
                    digest: None,
                    digest_source: None,
                    held: false,
                    hold: None,
                    denied: Vec::new(),
                    promotable_to: None,
                    error: None,
                };
                let target = match resolve(self, objects, env, app_name, None) {
                    Ok(t) => t,
                    Err(e) => {
                        cell.error = Some(e.to_string());
                        cells.push(cell);
                        continue;
                    }
                };
                fill_from_git(&mut cell, &cache, &pass, &target).await;
                if cell.digest.is_none()
                    && let Some(tag) = &cell.tag
                {
                    if let Some(d) = self.registry_digest(objects, &target, tag).await {
                        cell.digest = Some(d);
                        cell.digest_source = Some("registry".into());
                    } else if let Ok(Some(rec)) = self.store().get(Kind::ImagePolicy, &ns, &name)
                        && let Some(latest) = rec.policy.and_then(|p| p.latest_ref)
                        && latest.tag == *tag
                        && let Some(d) = latest.digest
                    {
                        cell.digest = Some(d);
                        cell.digest_source = Some("store".into());
                    }
                }
                cells.push(cell);
            }
            for i in 0..cells.len().saturating_sub(1) {
                let next_env = cells[i + 1].env.clone();
                let next_digest = cells[i + 1].digest.clone();
                if let Some(d) = &cells[i].digest
                    && next_digest.as_deref() != Some(d.as_str())
                {
                    cells[i].promotable_to = Some(next_env);
                }
            }
            apps.push(StatusApp {
                app: app_name.clone(),
                envs: cells,
            });
        }
        Ok(StatusReport {
            envs: env_order,
            apps,
        })
    }

    /// The digest of `tag` in the app's ImageRepository, when the registry answers.
    pub(super) async fn registry_digest(
        &self,
        objects: &ObjectSet,
        target: &super::target::AppTarget,
        tag: &str,
    ) -> Option<String> {
        let key = target.image_repository.as_ref()?;
        let repo = objects.image_repository(&key.namespace, &key.name)?;
        let access = crate::scan::repo_access(self, repo).ok()?;
        self.registry()
            .head_manifest(&access, tag)
            .await
            .ok()
            .map(|d| d.digest)
    }
}
