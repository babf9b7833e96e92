//! ENV/APP → the ImagePolicy, the GitOps repository and branch, and where its markers live.
//!
//! With a Pipeline named APP, ENV is a stage name and the stage names the policy. Otherwise the
//! seed's convention: ENV is the namespace and APP the ImagePolicy name. The repository is the
//! one the ImageUpdateAutomation of that namespace writes to (its GitRepository and checkout
//! branch), or `--repo`/`--ref` when the namespace has no automation.

use std::path::{Path, PathBuf};

use ferry_api::{ImagePolicy, ObjectSet};
use ferry_git::{GitAuth, Remote, Signature, SigningKey};

use super::RollbackError;
use super::ops::RepoFallback;
use crate::Engine;

/// Everything an operation on ENV/APP needs.
#[derive(Debug, Clone)]
pub(crate) struct AppTarget {
    pub policy_ns: String,
    pub policy_name: String,
    pub remote: Remote,
    pub branch: String,
    /// Where the policy's markers are searched, relative to the repository root.
    pub scan_root: PathBuf,
    pub author: Signature,
    pub signing: Option<SigningKey>,
    /// Commit authors of every automation: their commits without trailers are Flux bot commits.
    pub bot_emails: Vec<String>,
    /// The ImageRepository's `spec.image` (used when markers do not say the name).
    pub image_name: String,
    /// The app's ImageRepository, when the source has it.
    pub image_repository: Option<ferry_core::ObjectKey>,
}

impl AppTarget {
    /// `namespace:name` (marker and setter key).
    pub fn key(&self) -> String {
        format!("{}:{}", self.policy_ns, self.policy_name)
    }

    /// `namespace/name` (trailers, holds file).
    pub fn id(&self) -> String {
        format!("{}/{}", self.policy_ns, self.policy_name)
    }
}

/// The policy `(namespace, name)` of ENV/APP.
pub fn policy_of(objects: &ObjectSet, env: &str, app: &str) -> (String, String) {
    for p in objects.pipelines() {
        if p.name() == app
            && let Some(stage) = p.spec.stages.iter().find(|s| s.name == env)
        {
            return (stage.namespace.clone(), stage.policy.clone());
        }
    }
    (env.to_string(), app.to_string())
}

fn find_policy<'a>(objects: &'a ObjectSet, ns: &str, name: &str) -> Option<&'a ImagePolicy> {
    objects.image_policy(ns, name)
}

pub(crate) fn resolve(
    engine: &Engine,
    objects: &ObjectSet,
    env: &str,
    app: &str,
    fallback: Option<&RepoFallback>,
) -> Result<AppTarget, RollbackError> {
    if env.is_empty() || app.is_empty() {
        return Err(RollbackError::Invalid(
            "ENV and APP must not be empty".into(),
        ));
    }
    let (ns, name) = policy_of(objects, env, app);
    let Some(policy) = find_policy(objects, &ns, &name) else {
        return Err(RollbackError::Invalid(format!(
            "no ImagePolicy {ns}/{name} in the source (ENV is the namespace and APP the ImagePolicy name, or a Pipeline stage and app)"
        )));
    };
    let bot_emails: Vec<String> = objects
        .image_update_automations
        .iter()
        .filter_map(|a| a.spec.git.as_ref().map(|g| g.commit.author.email.clone()))
        .filter(|e| !e.is_empty())
        .collect();
    let repo = objects.repository_of(policy);
    let image_name = repo.map(|r| r.spec.image.clone()).unwrap_or_default();
    let image_repository = repo.map(|_| policy.repository_key());
    // Every automation in the namespace that selects the policy writes its markers within its
    // own update path (as in Flux), so the markers are looked for under the deepest directory
    // that holds all of those paths; Git settings come from the one that writes it.
    let selecting = crate::automations_for(objects, policy);
    let automation = selecting.first().copied();
    let base = AppTarget {
        policy_ns: ns.clone(),
        policy_name: name.clone(),
        remote: Remote::new(String::new(), GitAuth::none()),
        branch: String::new(),
        scan_root: PathBuf::new(),
        author: Signature {
            name: "ferry".into(),
            email: "ferry@localhost".into(),
        },
        signing: None,
        bot_emails,
        image_name,
        image_repository,
    };
    match (automation, fallback) {
        (Some(auto), _) => {
            let t = crate::automation::target(engine, objects, auto).map_err(|f| {
                RollbackError::Invalid(format!(
                    "ImageUpdateAutomation {}/{}: {}",
                    auto.namespace(),
                    auto.name(),
                    f.message
                ))
            })?;
            let mut scan_root = t.update_path.clone();
            for other in selecting.iter().skip(1) {
                if let Ok(o) = crate::automation::target(engine, objects, other) {
                    scan_root = common_ancestor(&scan_root, &o.update_path);
                }
            }
            Ok(AppTarget {
                remote: t.remote,
                branch: t.checkout_branch,
                scan_root,
                author: t.author,
                signing: t.signing,
                ..base
            })
        }
        (None, Some(fb)) => Ok(AppTarget {
            remote: Remote::new(fb.url.clone(), fb.auth.clone()),
            branch: fb.branch.clone(),
            scan_root: fb.path.clone().unwrap_or_default(),
            ..base
        }),
        (None, None) => Err(RollbackError::Invalid(format!(
            "no ImageUpdateAutomation in namespace {ns} selects ImagePolicy {ns}/{name}, so the GitOps repository is unknown: pass --repo URL --ref BRANCH"
        ))),
    }
}

/// The deepest path that contains both `a` and `b` (both relative to the repository root).
fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.as_os_str())
        .collect()
}

/// Files (relative to the repository root, `/`-separated) holding markers of `key` under the
/// target's scan root in `workdir`, and the state they hold.
pub(crate) fn marker_files(
    workdir: &Path,
    scan_root: &Path,
    key: &str,
) -> Result<(Vec<String>, super::MarkerState), RollbackError> {
    let root = workdir.join(scan_root);
    let sites = super::markers::scan(&root)?;
    let state = super::markers::state_of_sites(&sites, key);
    let root_is_file = root.is_file();
    let mut files: Vec<String> = sites
        .iter()
        .filter(|s| s.policy == key)
        .map(|s| {
            let rel = if root_is_file {
                scan_root.to_path_buf()
            } else {
                scan_root.join(&s.file)
            };
            rel.to_string_lossy().replace('\\', "/")
        })
        .collect();
    files.sort();
    files.dedup();
    Ok((files, state))
}

#[cfg(test)]
mod tests {
    use super::common_ancestor;
    use std::path::{Path, PathBuf};

    #[test]
    fn common_ancestor_of_update_paths() {
        assert_eq!(
            common_ancestor(
                Path::new("flux/apps/backend/staging"),
                Path::new("flux/apps/frontend/overlays/staging")
            ),
            PathBuf::from("flux/apps")
        );
        assert_eq!(
            common_ancestor(Path::new("a/b"), Path::new("a/b")),
            PathBuf::from("a/b")
        );
        assert_eq!(
            common_ancestor(Path::new("a"), Path::new("b")),
            PathBuf::new()
        );
    }
}
