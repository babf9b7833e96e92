//! ferry-render: which objects exist in a Flux repository, decided the way Flux decides it.
//!
//! Owns: finding the Flux Kustomizations (`kustomize.toolkit.fluxcd.io/*`) of a tree, building
//! each one with the real kustomize (its `path`, Flux's generated `kustomization.yaml` for a
//! folder without one, `targetNamespace`, `components`, `patches`, `images`), choosing each
//! one's post-build variables (`substituteFrom`, `substitute`, the user's `--var`), following
//! the Kustomizations a render produces (once per identity), and reporting a Kustomization
//! that fails as one failure while the others proceed.
//!
//! Must not: parse or validate Flux image objects (ferry-api does that, per object, from the
//! documents returned here), edit source files (markers are written in the source tree by
//! ferry-setters; kustomize builds in a private copy), or touch the network (remote bases fail
//! in kustomize, and are reported as that Kustomization's failure).
//!
//! A tree without any Flux Kustomization renders as [`Render::Plain`]: every file is an object,
//! as before.

mod build;
mod cache;
mod kustomize;
mod postbuild;
mod tree;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_api::Vars;
use serde_json::Value;

pub use kustomize::Kustomize;
use postbuild::ValueSources;
use tree::TextDoc;

/// The Flux Kustomization API group.
pub const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io/";
/// Default time limit of one kustomize build.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Annotation kustomize writes with `buildMetadata: [originAnnotations]`.
const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";

/// A render that could not run at all (as opposed to one Kustomization failing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A file or folder could not be read or copied.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: String },
    /// No kustomize, and a Kustomization needs a build.
    #[error(
        "kustomize is needed to build {folder} (Flux Kustomization {kustomization}) but was not \
         found: install kustomize or kubectl, or pass --kustomize PATH (FERRY_KUSTOMIZE)"
    )]
    NoKustomize {
        kustomization: String,
        folder: String,
    },
    /// kustomize could not be started.
    #[error("cannot run {}: {error}", program.display())]
    Spawn { program: PathBuf, error: String },
    /// One build failed (reported per Kustomization by [`render`]).
    #[error("{0}")]
    Build(String),
}

/// Options of a render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// `--kustomize PATH` / `FERRY_KUSTOMIZE`.
    pub kustomize: Option<PathBuf>,
    /// Limit for one kustomize build.
    pub timeout: Duration,
    /// `--var` / `--vars-file` values: fallback for `substituteFrom`, and they win over a
    /// Kustomization's own values.
    pub vars: Vars,
    /// Folder for cached kustomize outputs (keyed by the whole tree, the Kustomization's spec
    /// and the kustomize binary); `None`: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            kustomize: None,
            timeout: DEFAULT_TIMEOUT,
            vars: Vars::new(),
            cache_dir: None,
        }
    }
}

/// Identity of a Flux Kustomization.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KsId {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for KsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What a render found.
#[derive(Debug, Clone)]
pub enum Render {
    /// No Flux Kustomization in the tree: every YAML file is read as objects.
    Plain,
    /// The objects of every Flux Kustomization.
    Flux(FluxRender),
}

/// The result of rendering every Flux Kustomization.
#[derive(Debug, Clone, Default)]
pub struct FluxRender {
    /// One per Kustomization built, in render order.
    pub units: Vec<Unit>,
    /// Kustomizations that failed to build: their objects are missing.
    pub failures: Vec<Failure>,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
}

/// The output of one Flux Kustomization.
#[derive(Debug, Clone)]
pub struct Unit {
    pub id: KsId,
    /// Where the Kustomization is defined (source-root relative).
    pub file: String,
    pub line: usize,
    /// Its post-build variables; `None` without `postBuild` (nothing is substituted).
    pub vars: Option<Vars>,
    /// The documents kustomize produced, before substitution.
    pub docs: Vec<Doc>,
}

/// One document of a build, with the source file it came from.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Source-root relative file (from kustomize's origin annotation).
    pub file: String,
    /// Line of the document in that file (1 when unknown).
    pub line: usize,
    pub text: String,
}

/// A Kustomization that could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub id: KsId,
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: Kustomization {}: {}",
            self.file, self.line, self.id, self.reason
        )
    }
}

/// One build: the built folder (source-root relative) and kustomize's output, or the
/// Kustomization's failure.
type Built = Result<(String, String), RenderError>;

/// A Flux Kustomization waiting to be built.
struct Pending {
    id: KsId,
    file: String,
    line: usize,
    object: Value,
}

/// Renders the Flux Kustomizations defined under `scope` (a folder inside `root`, the source
/// root that every `spec.path` is relative to).
pub fn render(root: &Path, scope: &Path, opts: &RenderOptions) -> Result<Render, RenderError> {
    let canonical = |p: &Path| {
        std::fs::canonicalize(p).map_err(|e| RenderError::Io {
            path: p.to_path_buf(),
            error: e.to_string(),
        })
    };
    let (root, scope) = (canonical(root)?, canonical(scope)?);
    let root = root.as_path();
    let found = discover(root, &scope)?;
    if found.is_empty() {
        return Ok(Render::Plain);
    }
    let work = tempfile::Builder::new()
        .prefix("ferry-render-")
        .tempdir()
        .map_err(|e| RenderError::Io {
            path: std::env::temp_dir(),
            error: e.to_string(),
        })?;
    let mut r = Renderer {
        source: root.to_path_buf(),
        work: work.path().to_path_buf(),
        copies: Vec::new(),
        cache: None,
        opts,
        out: FluxRender::default(),
        sources: ValueSources::default(),
        files: HashMap::new(),
    };
    r.run(found)?;
    Ok(Render::Flux(r.out))
}

/// The Flux Kustomizations defined in the YAML files under `scope`, in file order.
fn discover(root: &Path, scope: &Path) -> Result<Vec<Pending>, RenderError> {
    let mut out = Vec::new();
    for rel in tree::yaml_files(root, scope)? {
        let Ok(content) = std::fs::read_to_string(root.join(&rel)) else {
            continue;
        };
        if !content.contains(FLUX_KUSTOMIZE_GROUP) {
            continue;
        }
        for doc in tree::split_docs(&content) {
            if let Some(p) = as_kustomization(&doc, &rel, "default") {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// A document as a pending Flux Kustomization, if it is one.
fn as_kustomization(doc: &TextDoc, file: &str, default_ns: &str) -> Option<Pending> {
    let v: Value = serde_saphyr::from_str(&doc.text).ok()?;
    let api = v["apiVersion"].as_str()?;
    if !api.starts_with(FLUX_KUSTOMIZE_GROUP) || v["kind"] != "Kustomization" {
        return None;
    }
    let name = v["metadata"]["name"].as_str()?.to_string();
    let namespace = v["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(default_ns)
        .to_string();
    Some(Pending {
        id: KsId { namespace, name },
        file: file.to_string(),
        line: doc.line,
        object: v,
    })
}

struct Renderer<'a> {
    /// The source root (read only).
    source: PathBuf,
    /// Scratch folder holding the copies.
    work: PathBuf,
    /// Private copies of the source root, one per build worker; kustomize builds in them.
    copies: Vec<PathBuf>,
    /// Opened on the first wave: `Some(None)` when there is no usable cache.
    cache: Option<Option<cache::Cache>>,
    opts: &'a RenderOptions,
    out: FluxRender,
    sources: ValueSources,
    /// Source file contents, for locating documents.
    files: HashMap<String, Option<String>>,
}

impl Renderer<'_> {
    /// Renders in waves: every pending Kustomization of a wave is built in parallel (each worker
    /// in its own copy), then the outputs are taken in order (variables, produced
    /// Kustomizations), so the result does not depend on the number of workers.
    fn run(&mut self, found: Vec<Pending>) -> Result<(), RenderError> {
        let mut queue = found;
        let mut seen: HashMap<KsId, String> = HashMap::new();
        while !queue.is_empty() {
            let wave = self.dedupe(std::mem::take(&mut queue), &mut seen);
            let outputs = self.build_wave(&wave)?;
            for (ks, output) in wave.iter().zip(outputs) {
                match output.and_then(|(dir, text)| self.build_one(ks, &dir, &text)) {
                    Ok((unit, children)) => {
                        self.out.units.push(unit);
                        queue.extend(children);
                    }
                    Err(RenderError::Build(reason)) => self.out.failures.push(Failure {
                        id: ks.id.clone(),
                        file: ks.file.clone(),
                        line: ks.line,
                        reason,
                    }),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Drops Kustomizations already rendered (a second definition is a warning).
    fn dedupe(&mut self, pending: Vec<Pending>, seen: &mut HashMap<KsId, String>) -> Vec<Pending> {
        let mut wave = Vec::new();
        for ks in pending {
            let at = format!("{}:{}", ks.file, ks.line);
            match seen.get(&ks.id) {
                Some(first) if *first != at => self.out.warnings.push(format!(
                    "{at}: Kustomization {} is also defined at {first}; only that one is \
                     rendered (choose one cluster folder with --path)",
                    ks.id
                )),
                Some(_) => {}
                None => {
                    seen.insert(ks.id.clone(), at);
                    wave.push(ks);
                }
            }
        }
        wave
    }

    /// Runs kustomize for every Kustomization of a wave; per item the built folder (relative
    /// to the source root) and the output, or that Kustomization's failure.
    fn build_wave(&mut self, wave: &[Pending]) -> Result<Vec<Built>, RenderError> {
        let Some(first) = wave.first() else {
            return Ok(Vec::new());
        };
        let Some(kz) = Kustomize::find(self.opts.kustomize.as_deref()) else {
            return Err(RenderError::NoKustomize {
                kustomization: first.id.to_string(),
                folder: first.object["spec"]["path"]
                    .as_str()
                    .unwrap_or("./")
                    .to_string(),
            });
        };
        if self.cache.is_none() {
            let base = self.opts.cache_dir.as_deref();
            self.cache =
                Some(base.and_then(|b| cache::Cache::open(b, &self.source, &kz.identity())));
        }
        let mut results: Vec<Option<Built>> = wave.iter().map(|ks| self.cached(ks)).collect();
        let misses: Vec<usize> = (0..wave.len()).filter(|i| results[*i].is_none()).collect();
        // kustomize spends about half of its wall time off the CPU (process start-up), so two
        // builds per core, at most 8.
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| 2 * n.get())
            .clamp(1, 8)
            .min(misses.len());
        while self.copies.len() < workers {
            let copy = self.work.join(format!("src{}", self.copies.len()));
            tree::copy_tree(&self.source, &copy)?;
            self.copies.push(copy);
        }
        let timeout = self.opts.timeout;
        std::thread::scope(|scope| {
            let handles: Vec<_> = self.copies[..workers]
                .iter()
                .enumerate()
                .map(|(w, copy)| {
                    let (kz, misses) = (&kz, &misses);
                    scope.spawn(move || {
                        misses
                            .iter()
                            .skip(w)
                            .step_by(workers)
                            .map(|&i| (i, build::build(copy, &wave[i].object, kz, timeout)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, r) in h.join().unwrap_or_default() {
                    if let (Ok((_, out)), Some(Some(c))) = (&r, &self.cache) {
                        c.put(&wave[i].object["spec"], out);
                    }
                    results[i] = Some(r);
                }
            }
        });
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(RenderError::Build("build worker panicked".into()))))
            .collect())
    }

    /// A cached output of `ks`, with its folder.
    fn cached(&self, ks: &Pending) -> Option<Built> {
        let cache = self.cache.as_ref()?.as_ref()?;
        let spec = &ks.object["spec"];
        let path = spec["path"].as_str().unwrap_or("./");
        let dir = tree::contained_join(&self.source, &self.source, path)?;
        let output = cache.get(spec)?;
        Some(Ok((tree::rel(&self.source, &dir), output)))
    }

    /// Takes one Kustomization's output (built in `dir`, source-root relative): its documents,
    /// variables and the Kustomizations it produced.
    fn build_one(
        &mut self,
        ks: &Pending,
        dir: &str,
        output: &str,
    ) -> Result<(Unit, Vec<Pending>), RenderError> {
        let docs = tree::split_docs(output);
        let mut values = Vec::with_capacity(docs.len());
        for d in &docs {
            let v: Value = serde_saphyr::from_str(&d.text).unwrap_or(Value::Null);
            self.sources.offer(&v);
            values.push(v);
        }
        let vars = postbuild::variables(
            &ks.object,
            &ks.id.namespace,
            &self.sources,
            &self.opts.vars,
            &mut self.out.warnings,
        );
        let mut unit = Unit {
            id: ks.id.clone(),
            file: ks.file.clone(),
            line: ks.line,
            vars,
            docs: Vec::new(),
        };
        let mut children = Vec::new();
        let dir = self.source.join(dir);
        for (d, v) in docs.into_iter().zip(values) {
            let (file, line) = self.locate(&dir, &v);
            if let Some(child) = self.child(&unit, &d, &v, &file, line) {
                children.push(child);
            }
            unit.docs.push(Doc {
                file,
                line,
                text: d.text,
            });
        }
        Ok((unit, children))
    }

    /// A Kustomization produced by `unit`, after `unit`'s substitution.
    fn child(
        &self,
        unit: &Unit,
        d: &TextDoc,
        v: &Value,
        file: &str,
        line: usize,
    ) -> Option<Pending> {
        if v["kind"] != "Kustomization"
            || !v["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with(FLUX_KUSTOMIZE_GROUP))
        {
            return None;
        }
        let text = match &unit.vars {
            Some(vars) if !substitution_disabled(v) => {
                ferry_api::substitute_text(&d.text, vars).unwrap_or_else(|_| d.text.clone())
            }
            _ => d.text.clone(),
        };
        let doc = TextDoc { text, line };
        as_kustomization(&doc, file, "default")
    }

    /// Source file and line of a built document, from kustomize's origin annotation.
    fn locate(&mut self, dir: &Path, v: &Value) -> (String, usize) {
        let origin = v["metadata"]["annotations"][ORIGIN_ANNOTATION]
            .as_str()
            .and_then(|o| o.lines().find_map(|l| l.strip_prefix("path: ")))
            .map(|p| p.trim().trim_matches('"').to_string());
        let Some(p) = origin.and_then(|p| tree::contained_join(&self.source, dir, &p)) else {
            return (tree::rel(&self.source, dir), 1);
        };
        let file = tree::rel(&self.source, &p);
        let content = self
            .files
            .entry(file.clone())
            .or_insert_with(|| std::fs::read_to_string(&p).ok());
        let kind = v["kind"].as_str().unwrap_or_default();
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        let line = content
            .as_deref()
            .and_then(|c| ferry_api::locate_document(c, kind, name))
            .unwrap_or(1);
        (file, line)
    }
}

/// Flux's `kustomize.toolkit.fluxcd.io/substitute: disabled` (label or annotation).
fn substitution_disabled(v: &Value) -> bool {
    let key = "kustomize.toolkit.fluxcd.io/substitute";
    ["labels", "annotations"]
        .iter()
        .any(|m| v["metadata"][m][key] == "disabled")
}

/// The source root for a `--dir` tree: the nearest folder (the tree itself or above) holding
/// `.git`; else the nearest under which the tree's Flux Kustomization paths exist (a checkout
/// without `.git`, read from a sub-folder); else the tree itself.
pub fn source_root(dir: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Some(git) = dir.ancestors().find(|a| a.join(".git").exists()) {
        return git.to_path_buf();
    }
    let Ok(found) = discover(&dir, &dir) else {
        return dir;
    };
    let paths: Vec<&str> = found
        .iter()
        .filter_map(|p| p.object["spec"]["path"].as_str())
        .collect();
    if paths.is_empty() {
        return dir;
    }
    dir.ancestors()
        .find(|a| {
            paths
                .iter()
                .all(|p| tree::contained_join(a, a, p).is_some_and(|d| d.is_dir()))
        })
        .map_or(dir.clone(), Path::to_path_buf)
}
