//! Loading a directory tree of YAML into an [`ObjectSet`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::de::DeserializeOwned;

use crate::error::{LoadError, LoadErrorKind, LoadErrors};
use crate::git::{GitRepositorySpec, SOURCE_API_VERSION};
use crate::image::{
    IMAGE_API_VERSION, ImagePolicySpec, ImageRepositorySpec, ImageUpdateAutomationSpec,
};
use crate::index::LineIndex;
use crate::meta::{DEFAULT_NAMESPACE, ObjectMeta, ObjectRef, Source};
use crate::object::{Object, Spec};
use crate::pipeline::{FERRY_API_VERSION, Namespace, PipelineSpec};
use crate::set::ObjectSet;
use crate::vars::{Vars, substitute};

/// Label Kubernetes sets on every namespace.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Flux opt-out of post-build substitution (label or annotation).
const SUBSTITUTE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Loads every supported object from the `.yaml`/`.yml` files under `root` (recursively,
/// skipping `.git`), after `${var}` substitution with `vars`.
///
/// `root` may also be a single file. All problems are collected; on any problem the whole load
/// fails with every [`LoadError`] in file order.
pub fn load_dir(root: &Path, vars: &Vars) -> Result<ObjectSet, LoadErrors> {
    let mut errors = Vec::new();
    let files = collect_files(root, &mut errors);
    let vars = with_post_build_defaults(vars, &files);
    let mut loader = Loader::new(Some(vars));
    loader.errors = errors;
    for (rel, path) in files {
        loader.load_file(&rel, &path);
    }
    loader.finish()
}

/// Like [`load_dir`], but keeps every good object: problems are per object, as in Flux.
pub fn load_dir_report(root: &Path, vars: &Vars) -> Loaded {
    let mut errors = Vec::new();
    let files = collect_files(root, &mut errors);
    let vars = with_post_build_defaults(vars, &files);
    let mut loader = Loader::new(Some(vars));
    loader.errors = errors;
    for (rel, path) in files {
        loader.load_file(&rel, &path);
    }
    loader.into_loaded()
}

/// The result of a per-object load: every good object, every problem, every warning.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The objects that loaded.
    pub set: ObjectSet,
    /// One entry per problem; the object concerned (when known) is missing from `set`.
    pub errors: Vec<LoadError>,
    /// Non-fatal findings (e.g. an old API version loaded as v1, once per file).
    pub warnings: Vec<LoadError>,
}

impl Loaded {
    /// The objects, or every problem when there is any (the all-or-nothing contract of
    /// [`load_dir`]).
    pub fn into_result(self) -> Result<ObjectSet, LoadErrors> {
        if self.errors.is_empty() {
            Ok(self.set)
        } else {
            Err(LoadErrors(self.errors))
        }
    }
}

/// See [`crate::locate_document`].
pub(crate) fn locate(content: &str, kind: &str, name: &str) -> Option<usize> {
    let mut first_of_kind = None;
    for doc in split_documents(content) {
        let Ok(idx) = LineIndex::parse(&doc.text, doc.start_line - 1) else {
            continue;
        };
        if idx.scalar(&["kind"]) != Some(kind) {
            continue;
        }
        if idx.scalar(&["metadata", "name"]) == Some(name) {
            return Some(doc.first_line);
        }
        first_of_kind.get_or_insert(doc.first_line);
    }
    first_of_kind
}

impl Loader {
    pub(crate) fn new(vars: Option<Vars>) -> Self {
        Loader {
            vars,
            set: ObjectSet::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            warned: std::collections::HashSet::new(),
            rendered: None,
            seen: HashMap::new(),
        }
    }

    fn finish(self) -> Result<ObjectSet, LoadErrors> {
        if self.errors.is_empty() {
            Ok(self.set)
        } else {
            Err(LoadErrors(self.errors))
        }
    }

    pub(crate) fn into_loaded(self) -> Loaded {
        Loaded {
            set: self.set,
            errors: self.errors,
            warnings: self.warnings,
        }
    }
}

/// Loads objects from one YAML text (as if it were file `name` under a root).
pub fn load_str(name: &str, content: &str, vars: &Vars) -> Result<ObjectSet, LoadErrors> {
    let mut loader = Loader::new(Some(vars.clone()));
    loader.load_text(name, content, false);
    loader.finish()
}

/// Flux fills `${var}` from the `spec.postBuild.substitute` of the Kustomization that applies a
/// path. Ferry takes those values from every `kustomize.toolkit.fluxcd.io` Kustomization in the
/// tree as defaults, so a Flux repo works without `--var`; explicit `--var`/`--vars-file` values
/// win, and between Kustomizations the first in file order wins.
fn with_post_build_defaults(vars: &Vars, files: &[(String, PathBuf)]) -> Vars {
    let mut merged = vars.clone();
    for (_, path) in files {
        let Ok(content) = std::fs::read_to_string(path) else {
            continue;
        };
        if !content.contains("kustomize.toolkit.fluxcd.io/") || !content.contains("postBuild") {
            continue;
        }
        for doc in split_documents(&content) {
            let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(&doc.text) else {
                continue;
            };
            let is_kustomization = value["kind"] == "Kustomization"
                && value["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("kustomize.toolkit.fluxcd.io/"));
            let Some(subst) = value["spec"]["postBuild"]["substitute"].as_object() else {
                continue;
            };
            if !is_kustomization {
                continue;
            }
            for (name, v) in subst {
                if merged.get(name).is_some() {
                    continue;
                }
                if let Some(v) = v.as_str() {
                    // Invalid names are ignored here, as Flux ignores them.
                    let _ = merged.insert(name, v);
                }
            }
        }
    }
    merged
}

fn is_yaml_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

fn rel_string(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// All YAML files under `root`, sorted by relative path.
fn collect_files(root: &Path, errors: &mut Vec<LoadError>) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) => {
            errors.push(LoadError::new(
                root.display().to_string(),
                0,
                None,
                LoadErrorKind::Io(e.to_string()),
            ));
            return out;
        }
    };
    if meta.is_file() {
        let name = root.file_name().map_or_else(
            || root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        out.push((name, root.to_path_buf()));
        return out;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(LoadError::new(
                    display_rel(root, &dir),
                    0,
                    None,
                    LoadErrorKind::Io(e.to_string()),
                ));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    errors.push(LoadError::new(
                        display_rel(root, &dir),
                        0,
                        None,
                        LoadErrorKind::Io(e.to_string()),
                    ));
                    continue;
                }
            };
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if is_yaml_name(&name.to_string_lossy()) {
                // Symlinked files are read; symlinked directories are not followed (loops).
                if ft.is_file() || (ft.is_symlink() && path.is_file()) {
                    out.push((rel_string(root, &path), path));
                }
            }
        }
    }
    out.sort();
    out
}

fn display_rel(root: &Path, path: &Path) -> String {
    let s = rel_string(root, path);
    if s.is_empty() { ".".to_string() } else { s }
}

/// One YAML document of a file.
#[derive(Debug)]
struct Doc {
    text: String,
    /// 1-based file line of the first line of `text`.
    start_line: usize,
    /// First line that is neither blank nor a comment (the object's reported line).
    first_line: usize,
}

fn is_marker(line: &str, marker: &str) -> Option<usize> {
    let rest = line.strip_prefix(marker)?;
    if rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']) {
        Some(marker.len())
    } else {
        None
    }
}

/// Splits a stream on `---` / `...` lines. Content after `--- ` on the same line stays in the
/// new document (the marker is blanked so columns and lines are preserved).
fn split_documents(content: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut cur_start = 1usize;
    for (i, line) in content.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let marker = is_marker(line, "---").or_else(|| is_marker(line, "..."));
        if let Some(len) = marker {
            docs.push(make_doc(std::mem::take(&mut cur), cur_start));
            cur_start = line_no;
            cur.push_str(&" ".repeat(len));
            cur.push_str(&line[len..]);
        } else {
            cur.push_str(line);
        }
    }
    docs.push(make_doc(cur, cur_start));
    docs.retain(|d| !d.text.trim().is_empty());
    docs
}

fn make_doc(text: String, start_line: usize) -> Doc {
    let first_line = text
        .lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map_or(start_line, |p| start_line + p);
    Doc {
        text,
        start_line,
        first_line,
    }
}

static NAMESPACE_KIND: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?m)^["']?kind["']?[ \t]*:[ \t]*["']?Namespace["']?[ \t]*(#.*)?\r?$"#).ok()
});
static STRONG_API: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?m)^["']?apiVersion["']?[ \t]*:[ \t]*["']?(?:(?:image\.toolkit\.fluxcd\.io|source\.toolkit\.fluxcd\.io|ferry\.dev)/|v1["']?[ \t]*(?:#.*)?\r?$)"#).ok()
});
static STRONG_KIND: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?m)^["']?kind["']?[ \t]*:[ \t]*["']?(ImageRepository|ImagePolicy|ImageUpdateAutomation|GitRepository|Pipeline|Namespace)\b"#).ok()
});
static META_FIELD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"^[ \t]+(name|namespace)[ \t]*:[ \t]*["']?([^"'\s#]+)"#).ok());

/// Cheap text check: could this document hold a supported kind?
fn is_candidate(text: &str) -> bool {
    text.contains("image.toolkit.fluxcd.io/")
        || text.contains("source.toolkit.fluxcd.io/")
        || text.contains("ferry.dev/")
        || NAMESPACE_KIND.as_ref().is_some_and(|r| r.is_match(text))
}

/// Stricter text check, used when the document cannot be parsed: top-level `apiVersion` of a
/// supported group and top-level `kind` of a supported kind. Returns the kind.
fn strong_candidate(text: &str) -> Option<String> {
    let api = STRONG_API.as_ref()?;
    let kind = STRONG_KIND.as_ref()?;
    if !api.is_match(text) {
        return None;
    }
    let k = kind.captures(text)?.get(1)?.as_str().to_string();
    Some(k)
}

/// Best-effort `metadata.name`/`namespace` from text, for messages about unparsable documents.
fn guess_identity(kind: &str, text: &str) -> ObjectRef {
    let mut name = String::new();
    let mut namespace = String::new();
    let mut in_meta = false;
    for line in text.lines() {
        if line.starts_with("metadata:") {
            in_meta = true;
            continue;
        }
        if in_meta {
            if !line.starts_with([' ', '\t']) && !line.trim().is_empty() {
                break;
            }
            if let Some(c) = META_FIELD.as_ref().and_then(|r| r.captures(line)) {
                let v = c.get(2).map_or("", |m| m.as_str()).to_string();
                match c.get(1).map(|m| m.as_str()) {
                    Some("name") if name.is_empty() => name = v,
                    Some("namespace") if namespace.is_empty() => namespace = v,
                    _ => {}
                }
            }
        }
    }
    if kind != Namespace::KIND && namespace.is_empty() {
        namespace = DEFAULT_NAMESPACE.to_string();
    }
    if kind == Namespace::KIND {
        namespace.clear();
    }
    ObjectRef::new(kind, &namespace, &name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    ImageRepository,
    ImagePolicy,
    ImageUpdateAutomation,
    GitRepository,
    Namespace,
    Pipeline,
}

/// Image API versions that Flux removed but whose fields map onto v1 (`flux migrate` rewrites
/// them); Ferry loads them as v1 with one warning per file.
const OLD_IMAGE_VERSIONS: [&str; 2] = [
    "image.toolkit.fluxcd.io/v1beta2",
    "image.toolkit.fluxcd.io/v1beta1",
];

/// Flux's condition reason for a template that uses a field removed from the v1 data model.
pub const REMOVED_TEMPLATE_FIELD: &str = "RemovedTemplateField";

/// The v1beta1 `.Updated` template field was removed in v1: Flux refuses such an automation
/// with reason `RemovedTemplateField`.
fn removed_template_field(text: &str) -> Option<LoadErrorKind> {
    static UPDATED: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"\{\{[^}]*\.Updated\b").ok());
    let value: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    let template = value["spec"]["git"]["commit"]["messageTemplate"].as_str()?;
    UPDATED.as_ref()?.is_match(template).then(|| {
        LoadErrorKind::Invalid(format!(
            "{REMOVED_TEMPLATE_FIELD}: spec.git.commit.messageTemplate uses the removed '.Updated' \
             field (v1beta1); use '.Changed' (see `flux migrate` and the v1 template data model)"
        ))
    })
}

impl Loader {
    /// Maps a removed image API version to v1, warning once per file.
    fn old_image_version<'s>(
        &mut self,
        rel: &str,
        api: &'s str,
        kind: &str,
        line: usize,
    ) -> &'s str {
        if !OLD_IMAGE_VERSIONS.contains(&api)
            || !matches!(
                kind,
                "ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation"
            )
        {
            return api;
        }
        if self.warned.insert(rel.to_string()) {
            self.warnings.push(LoadError::new(
                rel,
                self.rendered.as_ref().map_or(line, |r| r.0),
                None,
                LoadErrorKind::Invalid(format!(
                    "{api} is a removed API version, loaded as {IMAGE_API_VERSION}; \
                     run `flux migrate -f {rel}` to rewrite the file"
                )),
            ));
        }
        IMAGE_API_VERSION
    }
}

fn classify(api: &str, kind: &str) -> Result<Option<Target>, LoadErrorKind> {
    let unsupported = |expected: &str| LoadErrorKind::UnsupportedVersion {
        kind: kind.to_string(),
        found: api.to_string(),
        expected: expected.to_string(),
    };
    let image_kind = match kind {
        "ImageRepository" => Some(Target::ImageRepository),
        "ImagePolicy" => Some(Target::ImagePolicy),
        "ImageUpdateAutomation" => Some(Target::ImageUpdateAutomation),
        _ => None,
    };
    if api.starts_with("image.toolkit.fluxcd.io/") {
        return match image_kind {
            Some(t) if api == IMAGE_API_VERSION => Ok(Some(t)),
            Some(_) => Err(unsupported(IMAGE_API_VERSION)),
            None => Ok(None),
        };
    }
    if api.starts_with("source.toolkit.fluxcd.io/") {
        return match kind {
            "GitRepository" if api == SOURCE_API_VERSION => Ok(Some(Target::GitRepository)),
            "GitRepository" => Err(unsupported(SOURCE_API_VERSION)),
            _ => Ok(None),
        };
    }
    if api.starts_with("ferry.dev/") {
        return match kind {
            "Pipeline" if api == FERRY_API_VERSION => Ok(Some(Target::Pipeline)),
            "Pipeline" => Err(unsupported(FERRY_API_VERSION)),
            // Our own group: a typo must not be silently ignored.
            other => Err(LoadErrorKind::Invalid(format!(
                "unknown kind {other:?} in apiVersion {api}; Ferry defines: Pipeline"
            ))),
        };
    }
    if api == "v1" && kind == "Namespace" {
        return Ok(Some(Target::Namespace));
    }
    Ok(None)
}

/// serde-saphyr's message without its " at line N, column M" suffix (we print file:line).
pub(crate) fn saphyr_message(e: &serde_saphyr::Error) -> String {
    static SUFFIX: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r" at line \d+, column \d+$").ok());
    let msg = e.without_snippet().to_string();
    match SUFFIX.as_ref() {
        Some(r) => r.replace(&msg, "").into_owned(),
        None => msg,
    }
}

/// Renders an index path as `spec.stages[0].name`.
fn render_path(path: &[&str]) -> String {
    let mut s = String::new();
    for seg in path {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            s.push('[');
            s.push_str(seg);
            s.push(']');
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        }
    }
    s
}

pub(crate) struct Loader {
    /// `None`: no substitution (a Flux Kustomization without `postBuild`).
    pub(crate) vars: Option<Vars>,
    pub(crate) set: ObjectSet,
    pub(crate) errors: Vec<LoadError>,
    /// Non-fatal findings (old API versions loaded as v1).
    pub(crate) warnings: Vec<LoadError>,
    /// Files already warned about an old API version (one warning per file).
    pub(crate) warned: std::collections::HashSet<String>,
    /// Rendered mode: every problem of a document is reported at this source line, and loaded
    /// objects record this origin (the Flux Kustomization that produced them).
    pub(crate) rendered: Option<(usize, String)>,
    /// (kind, namespace, name) → first definition.
    seen: HashMap<(String, String, String), Source>,
}

/// Validation problems of one object: (line, message).
struct Problems<'a> {
    idx: &'a LineIndex,
    doc_line: usize,
    list: Vec<(usize, String)>,
}

impl<'a> Problems<'a> {
    fn new(idx: &'a LineIndex, doc_line: usize) -> Self {
        Problems {
            idx,
            doc_line,
            list: Vec::new(),
        }
    }

    fn push(&mut self, path: &[&str], msg: String) {
        let line = self.idx.line_near(path, self.doc_line);
        self.list.push((line, msg));
    }

    /// Requires a present, non-null, non-empty field.
    fn require(&mut self, path: &[&str]) {
        if !self.idx.present_non_empty(path) {
            self.push(path, format!("{} is required", render_path(path)));
        }
    }
}

impl Loader {
    fn load_file(&mut self, rel: &str, path: &Path) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.errors.push(LoadError::new(
                    rel,
                    0,
                    None,
                    LoadErrorKind::Io(e.to_string()),
                ));
                return;
            }
        };
        match String::from_utf8(bytes) {
            Ok(s) => self.load_text(rel, &s, false),
            Err(e) => {
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                self.load_text(rel, &lossy, true);
            }
        }
    }

    pub(crate) fn load_text(&mut self, rel: &str, content: &str, not_utf8: bool) {
        let content = content.strip_prefix('\u{feff}').unwrap_or(content);
        for doc in split_documents(content) {
            if not_utf8 {
                // Only a problem when the file evidently holds one of our kinds.
                if let Some(kind) = strong_candidate(&doc.text) {
                    self.errors.push(LoadError::new(
                        rel,
                        doc.first_line,
                        Some(guess_identity(&kind, &doc.text)),
                        LoadErrorKind::NotUtf8,
                    ));
                    return;
                }
                continue;
            }
            self.load_doc(rel, &doc);
        }
    }

    fn load_doc(&mut self, rel: &str, doc: &Doc) {
        if !is_candidate(&doc.text) {
            return;
        }
        let offset = doc.start_line - 1;
        let raw_idx = match LineIndex::parse(&doc.text, offset) {
            Ok(i) => i,
            Err(e) => {
                // Templates and other tools' files may be invalid YAML: only ours matter.
                if let Some(kind) = strong_candidate(&doc.text) {
                    self.errors.push(LoadError::new(
                        rel,
                        e.line,
                        Some(guess_identity(&kind, &doc.text)),
                        LoadErrorKind::Syntax(e.message),
                    ));
                }
                return;
            }
        };
        if raw_idx.empty {
            return;
        }
        let (Some(api), Some(kind)) = (raw_idx.scalar(&["apiVersion"]), raw_idx.scalar(&["kind"]))
        else {
            return;
        };
        let is_ns = kind == Namespace::KIND;
        let raw_name = raw_idx.scalar(&["metadata", "name"]).unwrap_or("");
        let raw_ns = if is_ns {
            ""
        } else {
            raw_idx
                .scalar(&["metadata", "namespace"])
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_NAMESPACE)
        };
        let ident = ObjectRef::new(kind, raw_ns, raw_name);
        let api = self.old_image_version(rel, api, kind, doc.first_line);
        let target = match classify(api, kind) {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(k) => {
                let line = raw_idx.line_near(&["apiVersion"], doc.first_line);
                self.errors.push(LoadError::new(rel, line, Some(ident), k));
                return;
            }
        };

        let Some((text, idx)) = self.substituted(rel, doc, raw_idx, &ident) else {
            return;
        };
        if target == Target::ImageUpdateAutomation
            && let Some(e) = removed_template_field(&text)
        {
            self.errors
                .push(LoadError::new(rel, doc.first_line, Some(ident), e));
            return;
        }
        let ctx = DocCtx {
            rel,
            doc_line: self.rendered.as_ref().map_or(doc.first_line, |r| r.0),
            offset,
            text: &text,
            idx: &idx,
            ident: &ident,
        };
        self.parse_target(target, &ctx);
    }

    /// The document after post-build substitution (unless the object opts out, as with Flux),
    /// and its line index; `None` after recording why it cannot be read.
    fn substituted(
        &mut self,
        rel: &str,
        doc: &Doc,
        raw_idx: LineIndex,
        ident: &ObjectRef,
    ) -> Option<(String, LineIndex)> {
        let offset = doc.start_line - 1;
        // Post-build substitution, unless the object opts out as with Flux.
        let disabled = ["labels", "annotations"]
            .iter()
            .any(|m| raw_idx.scalar(&["metadata", m, SUBSTITUTE_KEY]) == Some("disabled"));
        let text = if disabled {
            doc.text.clone()
        } else {
            match self
                .vars
                .as_ref()
                .map_or_else(|| Ok(doc.text.clone()), |v| substitute(&doc.text, v))
            {
                Ok(t) => t,
                Err(errs) => {
                    for e in errs {
                        let before = &doc.text[..e.offset.min(doc.text.len())];
                        let line = doc.start_line + before.matches('\n').count();
                        self.errors
                            .push(LoadError::new(rel, line, Some(ident.clone()), e.kind));
                    }
                    return None;
                }
            }
        };
        let idx = if text == doc.text {
            raw_idx
        } else {
            match LineIndex::parse(&text, offset) {
                Ok(i) => i,
                Err(e) => {
                    self.errors.push(LoadError::new(
                        rel,
                        e.line,
                        Some(ident.clone()),
                        LoadErrorKind::Syntax(format!(
                            "after variable substitution: {}",
                            e.message
                        )),
                    ));
                    return None;
                }
            }
        };
        Some((text, idx))
    }

    /// Parses and validates the document as its kind, adding it to the set.
    fn parse_target(&mut self, target: Target, ctx: &DocCtx<'_>) {
        match target {
            Target::ImageRepository => {
                if let Some(o) = self.parse::<ImageRepositorySpec>(ctx, validate_image_repository) {
                    self.set.image_repositories.push(o);
                }
            }
            Target::ImagePolicy => {
                if let Some(o) = self.parse::<ImagePolicySpec>(ctx, validate_image_policy) {
                    self.set.image_policies.push(o);
                }
            }
            Target::ImageUpdateAutomation => {
                if let Some(o) = self.parse::<ImageUpdateAutomationSpec>(ctx, validate_automation) {
                    self.set.image_update_automations.push(o);
                }
            }
            Target::GitRepository => {
                if let Some(o) = self.parse::<GitRepositorySpec>(ctx, validate_git_repository) {
                    self.set.git_repositories.push(o);
                }
            }
            Target::Pipeline => {
                if let Some(o) = self.parse::<PipelineSpec>(ctx, validate_pipeline) {
                    self.set.pipelines.push(o);
                }
            }
            Target::Namespace => {
                if let Some(ns) = self.parse_namespace(ctx) {
                    self.set.namespaces.push(ns);
                }
            }
        }
    }

    fn serde_error(&mut self, ctx: &DocCtx<'_>, e: &serde_saphyr::Error) {
        let line = e
            .location()
            .map(|l| l.line() as usize)
            .filter(|l| *l > 0)
            .map_or(ctx.doc_line, |l| l + ctx.offset);
        let msg = saphyr_message(e);
        let msg = match ctx.idx_path_at(line) {
            Some(p) => format!("{p}: {msg}"),
            None => msg,
        };
        self.errors.push(LoadError::new(
            ctx.rel,
            line,
            Some(ctx.ident.clone()),
            LoadErrorKind::Invalid(msg),
        ));
    }

    fn report(&mut self, ctx: &DocCtx<'_>, object: ObjectRef, problems: Vec<(usize, String)>) {
        for (line, msg) in problems {
            self.errors.push(LoadError::new(
                ctx.rel,
                line,
                Some(object.clone()),
                LoadErrorKind::Invalid(msg),
            ));
        }
    }

    /// Records the identity; false (and an error) if it was already defined.
    fn register(&mut self, ctx: &DocCtx<'_>, object: &ObjectRef, source: &Source) -> bool {
        let key = (
            object.kind.clone(),
            object.namespace.clone(),
            object.name.clone(),
        );
        if let Some(first) = self.seen.get(&key) {
            self.errors.push(LoadError::new(
                ctx.rel,
                ctx.doc_line,
                Some(object.clone()),
                LoadErrorKind::Duplicate {
                    first: first.clone(),
                },
            ));
            return false;
        }
        self.seen.insert(key, source.clone());
        if let Some((_, origin)) = &self.rendered {
            self.set.origins.insert(object.clone(), origin.clone());
        }
        true
    }

    fn parse<S>(
        &mut self,
        ctx: &DocCtx<'_>,
        validate: fn(&S, &mut Problems<'_>),
    ) -> Option<Object<S>>
    where
        S: Spec + DeserializeOwned,
    {
        let mut obj: Object<S> = match serde_saphyr::from_str(ctx.text) {
            Ok(o) => o,
            Err(e) => {
                self.serde_error(ctx, &e);
                return None;
            }
        };
        if obj.metadata.namespace.is_empty() {
            obj.metadata.namespace = DEFAULT_NAMESPACE.to_string();
        }
        obj.source = Source {
            file: ctx.rel.to_string(),
            line: ctx.doc_line,
        };
        let mut problems = Problems::new(ctx.idx, ctx.doc_line);
        validate_meta(&obj.metadata, &mut problems);
        if !ctx.idx.present(&["spec"]) {
            problems.push(&["spec"], "spec is required".to_string());
        } else {
            validate(&obj.spec, &mut problems);
        }
        let object = obj.object_ref();
        if !problems.list.is_empty() {
            self.report(ctx, object, problems.list);
            return None;
        }
        self.register(ctx, &object, &obj.source).then_some(obj)
    }

    fn parse_namespace(&mut self, ctx: &DocCtx<'_>) -> Option<Namespace> {
        let mut ns: Namespace = match serde_saphyr::from_str(ctx.text) {
            Ok(n) => n,
            Err(e) => {
                self.serde_error(ctx, &e);
                return None;
            }
        };
        // Cluster-scoped: any namespace written is meaningless.
        ns.metadata.namespace.clear();
        ns.source = Source {
            file: ctx.rel.to_string(),
            line: ctx.doc_line,
        };
        let mut problems = Problems::new(ctx.idx, ctx.doc_line);
        validate_meta(&ns.metadata, &mut problems);
        let object = ns.object_ref();
        if !problems.list.is_empty() {
            self.report(ctx, object, problems.list);
            return None;
        }
        // The API server adds this label to every namespace; selectors may rely on it.
        ns.metadata
            .labels
            .entry(NAMESPACE_NAME_LABEL.to_string())
            .or_insert_with(|| ns.metadata.name.clone());
        self.register(ctx, &object, &ns.source).then_some(ns)
    }
}

struct DocCtx<'a> {
    rel: &'a str,
    doc_line: usize,
    offset: usize,
    text: &'a str,
    idx: &'a LineIndex,
    ident: &'a ObjectRef,
}

impl DocCtx<'_> {
    /// The deepest indexed path whose key is on `line` (to prefix serde messages).
    fn idx_path_at(&self, line: usize) -> Option<String> {
        self.idx.deepest_path_at(line).map(|p| {
            let segs: Vec<&str> = p.iter().map(String::as_str).collect();
            render_path(&segs)
        })
    }
}

fn validate_meta(meta: &ObjectMeta, p: &mut Problems<'_>) {
    if meta.name.is_empty() {
        p.push(
            &["metadata", "name"],
            "metadata.name is required".to_string(),
        );
    }
}

fn validate_image_repository(spec: &ImageRepositorySpec, p: &mut Problems<'_>) {
    p.require(&["spec", "image"]);
    p.require(&["spec", "interval"]);
    if let Some(list) = &spec.exclusion_list
        && list.len() > 25
    {
        p.push(
            &["spec", "exclusionList"],
            format!(
                "spec.exclusionList has {} items; at most 25 are allowed",
                list.len()
            ),
        );
    }
    if let Some(t) = &spec.timeout
        && p.idx
            .scalar(&["spec", "timeout"])
            .is_some_and(|s| s.contains('h'))
    {
        p.push(
            &["spec", "timeout"],
            format!("spec.timeout {t} must use ms, s or m units (the CRD pattern has no h)"),
        );
    }
    if spec.access_from.is_some() && !p.idx.present(&["spec", "accessFrom", "namespaceSelectors"]) {
        p.push(
            &["spec", "accessFrom"],
            "spec.accessFrom.namespaceSelectors is required".to_string(),
        );
    }
}

fn validate_image_policy(spec: &ImagePolicySpec, p: &mut Problems<'_>) {
    p.require(&["spec", "imageRepositoryRef", "name"]);
    if !p.idx.present(&["spec", "policy"]) {
        p.push(
            &["spec", "policy"],
            "spec.policy is required (one of semver, alphabetical, numerical)".to_string(),
        );
    }
    if spec.policy.semver.is_some() && !p.idx.present(&["spec", "policy", "semver", "range"]) {
        p.push(
            &["spec", "policy", "semver", "range"],
            "spec.policy.semver.range is required".to_string(),
        );
    }
}

fn validate_automation(spec: &ImageUpdateAutomationSpec, p: &mut Problems<'_>) {
    p.require(&["spec", "sourceRef", "name"]);
    p.require(&["spec", "interval"]);
    if spec.source_ref.kind != "GitRepository" {
        p.push(
            &["spec", "sourceRef", "kind"],
            format!(
                "spec.sourceRef.kind {:?} is not supported; only GitRepository",
                spec.source_ref.kind
            ),
        );
    }
    if let Some(git) = &spec.git {
        if !p.idx.present(&["spec", "git", "commit"]) {
            p.push(
                &["spec", "git", "commit"],
                "spec.git.commit is required".to_string(),
            );
        } else {
            p.require(&["spec", "git", "commit", "author", "email"]);
            if git.commit.signing_key.is_some() {
                p.require(&["spec", "git", "commit", "signingKey", "secretRef", "name"]);
            }
        }
        if git.checkout.is_some() && !p.idx.present(&["spec", "git", "checkout", "ref"]) {
            p.push(
                &["spec", "git", "checkout", "ref"],
                "spec.git.checkout.ref is required".to_string(),
            );
        }
    }
}

fn validate_git_repository(_spec: &GitRepositorySpec, p: &mut Problems<'_>) {
    p.require(&["spec", "url"]);
    p.require(&["spec", "interval"]);
}

fn validate_pipeline(spec: &PipelineSpec, p: &mut Problems<'_>) {
    p.require(&["spec", "imageRepositoryRef", "name"]);
    if spec.stages.is_empty() {
        p.push(
            &["spec", "stages"],
            "spec.stages must list at least one stage".to_string(),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let i_s = i.to_string();
        for field in ["name", "namespace", "policy"] {
            p.require(&["spec", "stages", &i_s, field]);
        }
        if stage.name.is_empty() {
            continue;
        }
        if let Some(first) = names.insert(&stage.name, i) {
            p.push(
                &["spec", "stages", &i_s, "name"],
                format!(
                    "spec.stages[{i}].name {:?} repeats spec.stages[{first}].name",
                    stage.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_lines() {
        let text = "# head\na: 1\n---\nb: 2\n--- # c\n\nc: 3\n---\n...\n--- {d: 4}\n";
        let docs = split_documents(text);
        let got: Vec<(usize, usize)> = docs.iter().map(|d| (d.start_line, d.first_line)).collect();
        assert_eq!(got, vec![(1, 2), (3, 4), (5, 7), (10, 10)]);
        assert!(docs[3].text.starts_with("    {d: 4}"));
    }

    #[test]
    fn marker_needs_separator() {
        let docs = split_documents("a: |\n  ---x\nb: ---\n");
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn candidates() {
        assert!(is_candidate("apiVersion: image.toolkit.fluxcd.io/v1\n"));
        assert!(is_candidate("apiVersion: v1\nkind: Namespace\n"));
        assert!(!is_candidate("apiVersion: v1\nkind: ConfigMap\n"));
        assert!(!is_candidate("apiVersion: apps/v1\nkind: Deployment\n"));
        assert_eq!(
            strong_candidate("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"),
            Some("ImagePolicy".to_string())
        );
        assert_eq!(
            strong_candidate(
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  chart:\n    sourceRef:\n      apiVersion: source.toolkit.fluxcd.io/v1\n"
            ),
            None
        );
    }

    #[test]
    fn guesses_identity() {
        let r = guess_identity(
            "ImagePolicy",
            "apiVersion: x\nmetadata:\n  name: backend\n  namespace: develop\nspec: [",
        );
        assert_eq!(r.to_string(), "ImagePolicy develop/backend");
    }

    #[test]
    fn renders_paths() {
        assert_eq!(
            render_path(&["spec", "stages", "0", "name"]),
            "spec.stages[0].name"
        );
    }
}
