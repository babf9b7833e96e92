//! Flux file selection over an `update.path`, and atomic write-back.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::doc::{decode, find_sites};
use crate::marker::{SCREEN_TOKEN, SetterField};
use crate::{
    Change, FileChanges, ObjectChanges, ObjectId, PolicyValues, SetterError, result_changes,
    result_objects, unified_diff, update_bytes,
};

/// Whether [`apply_tree`] writes the changed files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Write,
    /// Compute changes and new contents only.
    DryRun,
}

/// A file that was skipped because it could not be read as YAML (Flux skips it silently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Path relative to the walked root, `/`-separated.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    pub message: String,
}

/// Old and new content of one changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// The outcome of [`apply_tree`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeUpdate {
    /// Flux `Result.FileChanges`: path → object → changes in document order.
    pub files: FileChanges,
    /// Old and new bytes of every changed file (same keys as `files`).
    pub edits: BTreeMap<String, FileEdit>,
    /// Files skipped because they are not readable YAML.
    pub warnings: Vec<Warning>,
}

impl TreeUpdate {
    /// True when no value changed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Flux `.Changed.Changes` (de-duplicated, deterministic order).
    pub fn changes(&self) -> Vec<Change> {
        result_changes(&self.files)
    }

    /// Flux `.Changed.Objects` (merged per object across files).
    pub fn objects(&self) -> ObjectChanges {
        result_objects(&self.files)
    }

    /// Unified diff of every changed file, in path order.
    pub fn diff(&self) -> String {
        self.edits
            .iter()
            .map(|(p, e)| unified_diff(p, &e.old, &e.new))
            .collect()
    }
}

/// One marker found by [`scan_markers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerSite {
    /// Path relative to the scanned root, `/`-separated.
    pub file: String,
    /// 1-based line of the marked scalar.
    pub line: usize,
    pub object: ObjectId,
    /// `namespace:name` of the ImagePolicy.
    pub policy: String,
    pub field: SetterField,
    /// The marker value verbatim (e.g. `ns:app:tag`).
    pub setter: String,
    /// The scalar's current value.
    pub value: String,
}

/// Flux candidate names: extension exactly `.yaml`/`.yml`, or basename `Kustomization`.
pub fn is_candidate_name(name: &str) -> bool {
    name == "Kustomization" || name.ends_with(".yaml") || name.ends_with(".yml")
}

fn contains_token(bytes: &[u8]) -> bool {
    bytes.windows(SCREEN_TOKEN.len()).any(|w| w == SCREEN_TOKEN)
}

struct Candidate {
    rel: String,
    path: PathBuf,
}

/// Lists candidate files under `root` in lexical order (like Go `filepath.Walk`): hidden
/// directories included, symlinked directories not followed, dangling symlinks skipped.
fn candidates(root: &Path) -> Result<Vec<Candidate>, SetterError> {
    let meta = fs::metadata(root).map_err(|_| SetterError::MissingPath {
        path: root.to_path_buf(),
    })?;
    let mut out = Vec::new();
    if meta.is_file() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_candidate_name(&name) {
            out.push(Candidate {
                rel: name,
                path: root.to_path_buf(),
            });
        }
        return Ok(out);
    }
    walk(root, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<Candidate>) -> Result<(), SetterError> {
    let read_err = |source| SetterError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type().map_err(|source| SetterError::Read {
            path: path.clone(),
            source,
        })?;
        if ft.is_dir() {
            walk(&path, &child_rel, out)?;
        } else if ft.is_symlink() {
            // Resolving symlinks are read like files; dangling ones and directories are skipped.
            match fs::metadata(&path) {
                Ok(m) if m.is_file() && is_candidate_name(&name) => out.push(Candidate {
                    rel: child_rel,
                    path,
                }),
                _ => {}
            }
        } else if ft.is_file() && is_candidate_name(&name) {
            out.push(Candidate {
                rel: child_rel,
                path,
            });
        }
    }
    Ok(())
}

fn read(c: &Candidate) -> Result<Vec<u8>, SetterError> {
    fs::read(&c.path).map_err(|source| SetterError::Read {
        path: c.path.clone(),
        source,
    })
}

fn warning(rel: &str, err: SetterError) -> Warning {
    match err {
        SetterError::Parse { line, message, .. } => Warning {
            file: rel.to_string(),
            line,
            message,
        },
        other => Warning {
            file: rel.to_string(),
            line: 0,
            message: other.to_string(),
        },
    }
}

/// Runs the setters over `root` (a directory or a single file) the way Flux selects files, and
/// in [`WriteMode::Write`] writes every changed file atomically (temp file + rename in the same
/// directory, permissions kept; through a symlink the target file is written, the link stays).
/// Unparseable files become [`Warning`]s; I/O errors abort before anything is written.
pub fn apply_tree(
    root: &Path,
    values: &PolicyValues,
    mode: WriteMode,
) -> Result<TreeUpdate, SetterError> {
    apply_fenced(root, None, values, mode)
}

/// [`apply_tree`] for a tree inside a Git checkout that someone else controls: `root` must
/// resolve inside `checkout`, and a marked file that is a symlink resolving outside `checkout`
/// is neither read nor written (it becomes a [`Warning`]). So a commit cannot make Ferry
/// write anything outside the checkout.
pub fn apply_tree_in(
    checkout: &Path,
    root: &Path,
    values: &PolicyValues,
    mode: WriteMode,
) -> Result<TreeUpdate, SetterError> {
    apply_fenced(root, Some(checkout), values, mode)
}

fn apply_fenced(
    root: &Path,
    checkout: Option<&Path>,
    values: &PolicyValues,
    mode: WriteMode,
) -> Result<TreeUpdate, SetterError> {
    let mut result = TreeUpdate::default();
    let mut paths = BTreeMap::new();
    let mut candidates = candidates(root)?;
    if let Some(checkout) = checkout {
        candidates = fence(checkout, root, candidates, &mut result.warnings)?;
    }
    // Reading and parsing are independent per file: spread them over the cores, then merge in
    // candidate order so the result stays deterministic.
    let outcomes = parallel_map(
        &candidates,
        |c| -> Result<Option<FileOutcome>, SetterError> {
            let bytes = read(c)?;
            if !contains_token(&bytes) {
                return Ok(None);
            }
            Ok(match update_bytes(&bytes, values) {
                Ok(up) if up.changes.is_empty() => None,
                Ok(up) => Some(FileOutcome::Changed(bytes, up)),
                Err(e) => Some(FileOutcome::Unreadable(warning(&c.rel, e))),
            })
        },
    );
    for (c, outcome) in candidates.into_iter().zip(outcomes) {
        match outcome? {
            None => {}
            Some(FileOutcome::Changed(old, up)) => {
                let objects = result.files.entry(c.rel.clone()).or_default();
                for (id, change) in up.changes {
                    objects.entry(id).or_default().push(change);
                }
                result.edits.insert(
                    c.rel.clone(),
                    FileEdit {
                        old,
                        new: up.output,
                    },
                );
                paths.insert(c.rel, c.path);
            }
            Some(FileOutcome::Unreadable(w)) => result.warnings.push(w),
        }
    }
    if mode == WriteMode::Write {
        let writes: Vec<(&PathBuf, &[u8])> = result
            .edits
            .iter()
            .filter_map(|(rel, edit)| paths.get(rel).map(|p| (p, edit.new.as_slice())))
            .collect();
        for written in parallel_map(&writes, |(path, bytes)| write_atomic(path, bytes)) {
            written?;
        }
    }
    Ok(result)
}

/// Keeps the candidates that resolve inside `checkout`; a symlink resolving elsewhere becomes a
/// warning, a `root` resolving elsewhere is an error.
fn fence(
    checkout: &Path,
    root: &Path,
    candidates: Vec<Candidate>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Candidate>, SetterError> {
    let real = |p: &Path| {
        fs::canonicalize(p).map_err(|source| SetterError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let boundary = real(checkout)?;
    if !real(root)?.starts_with(&boundary) {
        return Err(SetterError::OutsideCheckout {
            path: root.to_path_buf(),
        });
    }
    let mut kept = Vec::with_capacity(candidates.len());
    for c in candidates {
        // The walk follows no directory symlink, so only a file symlink can lead out.
        let is_link = fs::symlink_metadata(&c.path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && !real(&c.path)?.starts_with(&boundary) {
            warnings.push(Warning {
                file: c.rel,
                line: 0,
                message: "symlink resolves outside the checkout; not read or written".into(),
            });
        } else {
            kept.push(c);
        }
    }
    Ok(kept)
}

/// What the setters made of one screened file.
enum FileOutcome {
    Changed(Vec<u8>, crate::FileUpdate),
    Unreadable(Warning),
}

/// `items.iter().map(f)` on up to 8 threads, results in input order. Small inputs stay on the
/// calling thread, where spawning would cost more than it saves.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if workers <= 1 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Replaces the content of `path` (or of the file a symlink at `path` resolves to) atomically.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SetterError> {
    let werr = |p: &Path| {
        let p = p.to_path_buf();
        move |source| SetterError::Write { path: p, source }
    };
    // Only a symlink needs resolving (canonicalize stats every path component).
    let link = fs::symlink_metadata(path).map_err(werr(path))?;
    let (target, perms) = if link.file_type().is_symlink() {
        let target = fs::canonicalize(path).map_err(werr(path))?;
        let perms = fs::metadata(&target).map_err(werr(&target))?.permissions();
        (target, perms)
    } else {
        (path.to_path_buf(), link.permissions())
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-setters-")
        .tempfile_in(dir)
        .map_err(werr(&target))?;
    tmp.write_all(bytes).map_err(werr(&target))?;
    fs::set_permissions(tmp.path(), perms).map_err(werr(&target))?;
    tmp.persist(&target).map_err(|e| werr(&target)(e.error))?;
    Ok(())
}

/// Every marker site under `root` (same file selection as [`apply_tree`]), with the value it
/// currently holds. Unparseable files are skipped; see [`scan_markers_with_warnings`].
pub fn scan_markers(root: &Path) -> Result<Vec<MarkerSite>, SetterError> {
    scan_markers_with_warnings(root).map(|(sites, _)| sites)
}

/// Like [`scan_markers`], also returning the files that were skipped.
pub fn scan_markers_with_warnings(
    root: &Path,
) -> Result<(Vec<MarkerSite>, Vec<Warning>), SetterError> {
    let mut sites = Vec::new();
    let mut warnings = Vec::new();
    for c in candidates(root)? {
        let bytes = read(&c)?;
        if !contains_token(&bytes) {
            continue;
        }
        let found = decode(&bytes).and_then(|(src, base)| find_sites(src, base));
        match found {
            Ok(found) => sites.extend(found.into_iter().map(|s| MarkerSite {
                file: c.rel.clone(),
                line: s.line,
                object: s.object,
                policy: s.marker.policy,
                field: s.marker.field,
                setter: s.marker.setter,
                value: s.value,
            })),
            Err(e) => warnings.push(warning(&c.rel, e)),
        }
    }
    Ok((sites, warnings))
}
