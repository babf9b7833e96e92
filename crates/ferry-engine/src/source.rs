//! Where the Flux objects come from: a directory tree, or a branch of a Git repository
//! (checked out through the clone cache); and which objects exist in it: with Flux
//! Kustomizations in the tree, the objects each one renders (ferry-render), else every file.

use std::path::{Path, PathBuf};

use ferry_api::{LoadError, LoadErrorKind, Loaded, ObjectRef, ObjectSet, Vars};
use ferry_git::{CloneCache, GitAuth, Remote};
use ferry_render::{Render, RenderOptions};

use crate::{EngineConfig, EngineError};

/// `--dir DIR [--path SUBDIR]` or `--repo URL --ref BRANCH --path SUBDIR`.
#[derive(Debug, Clone)]
pub enum ObjectSource {
    Dir {
        dir: PathBuf,
        /// Sub-folder whose Flux Kustomizations are rendered (a cluster folder); `spec.path`
        /// stays relative to `dir`.
        path: Option<PathBuf>,
    },
    Repo {
        url: String,
        branch: String,
        path: Option<PathBuf>,
        /// Credentials (`--repo-secret`); never printed.
        auth: GitAuth,
    },
}

impl ObjectSource {
    /// A plain `--dir DIR`.
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        ObjectSource::Dir {
            dir: dir.into(),
            path: None,
        }
    }
}

/// Every object that loaded, every per-object problem, and the render's findings.
#[derive(Debug, Clone, Default)]
pub struct SourceLoad {
    /// Objects, per-object errors (render failures are errors of their Kustomization) and
    /// old-version warnings.
    pub loaded: Loaded,
    /// Render warnings (duplicate Kustomizations, missing substituteFrom, …).
    pub warnings: Vec<String>,
    /// True when objects came from Flux Kustomizations (false: every file is an object).
    pub rendered: bool,
}

/// Loads and validates every object. Any invalid object fails the whole load, so nothing is
/// written on bad input.
pub fn load_objects(
    config: &EngineConfig,
    source: &ObjectSource,
    vars: &Vars,
) -> Result<ObjectSet, EngineError> {
    let load = load_source(config, source, vars)?;
    Ok(load.loaded.into_result()?)
}

/// Loads every object that can be loaded; problems are per object, as in Flux.
pub fn load_source(
    config: &EngineConfig,
    source: &ObjectSource,
    vars: &Vars,
) -> Result<SourceLoad, EngineError> {
    match source {
        ObjectSource::Dir { dir, path } => {
            if !dir.is_dir() {
                return Err(EngineError::Source(format!(
                    "--dir {}: not a directory",
                    dir.display()
                )));
            }
            let (root, scope) = match path {
                Some(p) => (dir.clone(), dir.join(p)),
                None => (ferry_render::source_root(dir), dir.clone()),
            };
            if !scope.is_dir() {
                return Err(EngineError::Source(format!(
                    "--path {}: no such directory in {}",
                    path.as_deref().unwrap_or(Path::new(".")).display(),
                    dir.display()
                )));
            }
            load_tree(config, &root, &scope, vars)
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
                    path.as_deref().unwrap_or(Path::new(".")).display(),
                    checkout.display_url()
                )));
            }
            load_tree(config, checkout.workdir(), &root, vars)
        }
    }
}

/// Renders `scope` (Flux Kustomizations, paths relative to `root`) or, without any, loads every
/// file under `scope`.
fn load_tree(
    config: &EngineConfig,
    root: &Path,
    scope: &Path,
    vars: &Vars,
) -> Result<SourceLoad, EngineError> {
    let opts = RenderOptions {
        kustomize: config.kustomize.clone(),
        vars: vars.clone(),
        // Beside the clone cache: `$XDG_CACHE_HOME/ferry/render`.
        cache_dir: config.cache_dir.parent().map(|p| p.join("render")),
        ..RenderOptions::default()
    };
    let render =
        ferry_render::render(root, scope, &opts).map_err(|e| EngineError::Source(e.to_string()))?;
    let Render::Flux(render) = render else {
        return Ok(SourceLoad {
            loaded: ferry_api::load_dir_report(scope, vars),
            ..SourceLoad::default()
        });
    };
    let mut loader = ferry_api::RenderedLoader::new();
    for unit in &render.units {
        let origin = unit.id.to_string();
        for doc in &unit.docs {
            let d = ferry_api::RenderedDoc {
                file: &doc.file,
                line: doc.line,
                text: &doc.text,
                origin: &origin,
            };
            loader.add(d, unit.vars.as_ref());
        }
    }
    for f in &render.failures {
        loader.error(LoadError::new(
            &f.file,
            f.line,
            Some(ObjectRef::new("Kustomization", &f.id.namespace, &f.id.name)),
            LoadErrorKind::Invalid(format!("build failed: {}", f.reason)),
        ));
    }
    Ok(SourceLoad {
        loaded: loader.finish(),
        warnings: render.warnings,
        rendered: true,
    })
}
