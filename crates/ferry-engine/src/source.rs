//! Where the Flux objects come from: a directory tree, or a branch of a Git repository
//! (checked out through the clone cache).

use std::path::PathBuf;

use ferry_api::{ObjectSet, Vars};
use ferry_git::{CloneCache, GitAuth, Remote};

use crate::{EngineConfig, EngineError};

/// `--dir DIR` or `--repo URL --ref BRANCH --path SUBDIR`.
#[derive(Debug, Clone)]
pub enum ObjectSource {
    Dir(PathBuf),
    Repo {
        url: String,
        branch: String,
        path: Option<PathBuf>,
        /// Credentials (`--repo-secret`); never printed.
        auth: GitAuth,
    },
}

/// Loads and validates every object. Any invalid object fails the whole load, so nothing is
/// written on bad input.
pub fn load_objects(
    config: &EngineConfig,
    source: &ObjectSource,
    vars: &Vars,
) -> Result<ObjectSet, EngineError> {
    match source {
        ObjectSource::Dir(dir) => {
            if !dir.is_dir() {
                return Err(EngineError::Source(format!(
                    "--dir {}: not a directory",
                    dir.display()
                )));
            }
            Ok(ferry_api::load_dir(dir, vars)?)
        }
        ObjectSource::Repo {
            url,
            branch,
            path,
            auth,
        } => {
            let cache = CloneCache::new(config.cache_dir.clone())?;
            let remote = Remote::new(url.clone(), auth.clone());
            let checkout = cache.checkout(&remote, branch)?;
            let root = match path {
                Some(p) => checkout.workdir().join(p),
                None => checkout.workdir().to_path_buf(),
            };
            if !root.is_dir() {
                return Err(EngineError::Source(format!(
                    "--path {}: no such directory in {} at branch {branch}",
                    path.as_deref()
                        .unwrap_or(std::path::Path::new("."))
                        .display(),
                    checkout.display_url()
                )));
            }
            Ok(ferry_api::load_dir(&root, vars)?)
        }
    }
}
