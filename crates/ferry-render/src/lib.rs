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

mod kustomize;
mod postbuild;
mod tree;

use std::collections::{HashMap, VecDeque};
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
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            kustomize: None,
            timeout: DEFAULT_TIMEOUT,
            vars: Vars::new(),
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
    let copy = work.path().join("src");
    tree::copy_tree(root, &copy)?;
    let mut r = Renderer {
        root: copy,
        opts,
        kustomize: None,
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
    /// The private copy kustomize builds in.
    root: PathBuf,
    opts: &'a RenderOptions,
    kustomize: Option<Kustomize>,
    out: FluxRender,
    sources: ValueSources,
    /// Source file contents, for locating documents.
    files: HashMap<String, Option<String>>,
}

impl Renderer<'_> {
    fn run(&mut self, found: Vec<Pending>) -> Result<(), RenderError> {
        let mut queue: VecDeque<Pending> = found.into();
        let mut seen: HashMap<KsId, String> = HashMap::new();
        while let Some(ks) = queue.pop_front() {
            if let Some(first) = seen.get(&ks.id) {
                if *first != format!("{}:{}", ks.file, ks.line) && !ks.file.is_empty() {
                    self.out.warnings.push(format!(
                        "{}:{}: Kustomization {} is also defined at {first}; only that one is \
                         rendered (choose one cluster folder with --path)",
                        ks.file, ks.line, ks.id
                    ));
                }
                continue;
            }
            seen.insert(ks.id.clone(), format!("{}:{}", ks.file, ks.line));
            match self.build_one(&ks) {
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
        Ok(())
    }

    /// Builds one Kustomization; returns its unit and the Kustomizations it produced.
    fn build_one(&mut self, ks: &Pending) -> Result<(Unit, Vec<Pending>), RenderError> {
        let spec = &ks.object["spec"];
        if let Some(kind) = spec["sourceRef"]["kind"].as_str()
            && kind != "GitRepository"
        {
            return Err(RenderError::Build(format!(
                "sourceRef {kind} {} is not this Git repository; not rendered",
                spec["sourceRef"]["name"].as_str().unwrap_or_default()
            )));
        }
        let path = spec["path"].as_str().unwrap_or("./");
        let dir = tree::contained_join(&self.root, &self.root, path).ok_or_else(|| {
            RenderError::Build(format!("spec.path {path:?} leaves the repository"))
        })?;
        if !dir.is_dir() {
            return Err(RenderError::Build(format!(
                "spec.path {path:?}: no such folder in the repository"
            )));
        }
        let output = self.kustomize_build(ks, &dir, path)?;
        let docs = tree::split_docs(&output);
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

    /// Runs kustomize on `dir` with the Kustomization's additions written into its
    /// kustomization file (as kustomize-controller does), then restores the folder.
    fn kustomize_build(
        &mut self,
        ks: &Pending,
        dir: &Path,
        path: &str,
    ) -> Result<String, RenderError> {
        if self.kustomize.is_none() {
            self.kustomize = Kustomize::find(self.opts.kustomize.as_deref());
        }
        let Some(kz) = self.kustomize.clone() else {
            return Err(RenderError::NoKustomize {
                kustomization: ks.id.to_string(),
                folder: path.to_string(),
            });
        };
        let existing = tree::kustomization_file(dir);
        let (kfile, original, mut k) = match &existing {
            Some(f) => {
                let text = std::fs::read_to_string(f).map_err(|e| RenderError::Io {
                    path: f.clone(),
                    error: e.to_string(),
                })?;
                let v: Value = serde_saphyr::from_str(&text).map_err(|e| {
                    RenderError::Build(format!("{path}/{}: {e}", tree::rel(dir, f)))
                })?;
                (f.clone(), Some(text), v)
            }
            None => {
                let resources = tree::generated_resources(dir)?;
                let v = serde_json::json!({
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": resources,
                });
                (dir.join(tree::KUSTOMIZATION_FILES[0]), None, v)
            }
        };
        apply_flux_fields(&mut k, &ks.object["spec"]);
        let io = |e: std::io::Error| RenderError::Io {
            path: kfile.clone(),
            error: e.to_string(),
        };
        std::fs::write(&kfile, k.to_string()).map_err(io)?;
        let result = kz.build(dir, self.opts.timeout);
        match original {
            Some(text) => std::fs::write(&kfile, text).map_err(io)?,
            None => std::fs::remove_file(&kfile).map_err(io)?,
        }
        result
    }

    /// Source file and line of a built document, from kustomize's origin annotation.
    fn locate(&mut self, dir: &Path, v: &Value) -> (String, usize) {
        let origin = v["metadata"]["annotations"][ORIGIN_ANNOTATION]
            .as_str()
            .and_then(|o| o.lines().find_map(|l| l.strip_prefix("path: ")))
            .map(|p| p.trim().trim_matches('"').to_string());
        let Some(p) = origin.and_then(|p| tree::contained_join(&self.root, dir, &p)) else {
            return (tree::rel(&self.root, dir), 1);
        };
        let file = tree::rel(&self.root, &p);
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

/// Writes a Flux Kustomization's `targetNamespace`, `components`, `patches` and `images` into
/// a kustomization file, and asks kustomize for origin annotations.
fn apply_flux_fields(k: &mut Value, spec: &Value) {
    let Some(obj) = k.as_object_mut() else {
        return;
    };
    if let Some(ns) = spec["targetNamespace"].as_str().filter(|s| !s.is_empty()) {
        obj.insert("namespace".into(), Value::String(ns.to_string()));
    }
    append(obj, "components", spec["components"].as_array());
    let patches: Option<Vec<Value>> = spec["patches"].as_array().map(|ps| {
        ps.iter()
            .map(|p| {
                let mut out = serde_json::Map::new();
                out.insert("patch".into(), p["patch"].clone());
                if !p["target"].is_null() {
                    out.insert("target".into(), p["target"].clone());
                }
                Value::Object(out)
            })
            .collect()
    });
    append(obj, "patches", patches.as_ref());
    for image in spec["images"].as_array().into_iter().flatten() {
        let list = obj
            .entry("images")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            list.retain(|i| i["name"] != image["name"]);
            list.push(image.clone());
        }
    }
    let meta = obj
        .entry("buildMetadata")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(m) = meta.as_array_mut()
        && !m.iter().any(|x| x == "originAnnotations")
    {
        m.push(Value::String("originAnnotations".into()));
    }
}

fn append(obj: &mut serde_json::Map<String, Value>, key: &str, items: Option<&Vec<Value>>) {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return;
    };
    let list = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut() {
        list.extend(items.iter().cloned());
    }
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
