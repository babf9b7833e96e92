//! ferry-setters: Flux setter markers (`# {"$imagepolicy": "ns:name[:tag|:name|:digest]"}`) and
//! in-place edits of the marked YAML scalars.
//!
//! Owns: marker parsing, file selection, byte-exact scalar replacement, change lists
//! (the Flux `update.Result` shape), unified diffs of the edits.
//! Must not: touch Git, the network, or re-serialize YAML (only the replaced scalar's bytes
//! change: comments, blank lines, CRLF, BOM, indentation and other documents stay as they are).
//!
//! Entry points: [`update_bytes`] (one file in memory), [`apply_tree`] (an `update.path` on
//! disk, Flux file selection), [`scan_markers`] (read what a tree currently runs).
//!
//! ```
//! use ferry_setters::{ImageRef, PolicyValues, update_bytes};
//! let mut values = PolicyValues::new();
//! values.insert("flux-system:app".into(), ImageRef {
//!     name: "ghcr.io/org/app".into(), tag: "1.10".into(), digest: None,
//! });
//! let input = b"spec:\n  tag: 1.0 # {\"$imagepolicy\": \"flux-system:app:tag\"}\n";
//! let up = update_bytes(input, &values).unwrap();
//! assert_eq!(up.output, b"spec:\n  tag: \"1.10\" # {\"$imagepolicy\": \"flux-system:app:tag\"}\n");
//! assert_eq!(up.changes.len(), 1);
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod diff;
mod doc;
mod marker;
mod quote;
mod tree;

pub use diff::unified_diff;
pub use marker::{
    MARKER_KEY, Marker, SCREEN_TOKEN, SetterField, parse_marker_comment, parse_setter,
};
pub use quote::{is_yaml11_non_string, plain_allowed};
pub use tree::{
    FileEdit, MarkerSite, TreeUpdate, Warning, WriteMode, apply_tree, apply_tree_in,
    is_candidate_name, scan_markers, scan_markers_with_warnings,
};

/// The image a policy resolved to (`ImagePolicy.status.latestRef`): the workspace's one type.
pub use ferry_core::ImageRef;

/// Identifies the YAML object a change happened in (kyaml `ResourceIdentifier`).
/// Field order matters: it is the sort order Go uses for struct map keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// One setter change (IAC `update.Change`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Change {
    pub old_value: String,
    pub new_value: String,
    /// The marker value without `$imagepolicy`, e.g. `flux-system:podinfo:tag`.
    pub setter: String,
}

/// Policy values by `"namespace:name"` of the ImagePolicy.
pub type PolicyValues = BTreeMap<String, ImageRef>;

/// Changes of one file, per object, each in document order (Flux `ObjectChanges`).
pub type ObjectChanges = BTreeMap<ObjectId, Vec<Change>>;

/// Changes per file path relative to `update.path` (Flux `Result.FileChanges`).
pub type FileChanges = BTreeMap<String, ObjectChanges>;

/// The result of [`update_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpdate {
    /// The new file content; equal to the input when nothing changed.
    pub output: Vec<u8>,
    /// Changes in document order, with the object each happened in.
    pub changes: Vec<(ObjectId, Change)>,
}

/// Errors of this crate. Every variant names the file and/or line it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetterError {
    /// The YAML could not be read (Flux skips such files; [`apply_tree`] turns this into a
    /// [`Warning`]).
    #[error("line {line}: {message}")]
    Parse {
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        message: String,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("update path {} does not exist", path.display())]
    MissingPath { path: PathBuf },
    /// The update path resolves outside the Git checkout (a `..` or a symlink leads out).
    #[error("update path {} resolves outside the checkout", path.display())]
    OutsideCheckout { path: PathBuf },
}

/// The value a setter writes for `image` (Flux `setters.go`): full `name:tag[@digest]`, or the
/// tag, the name, or the digest (`""` without one).
pub fn setter_value(image: &ImageRef, field: SetterField) -> String {
    let digest = image.digest.as_deref().unwrap_or_default();
    match field {
        SetterField::Full if digest.is_empty() => format!("{}:{}", image.name, image.tag),
        SetterField::Full => format!("{}:{}@{}", image.name, image.tag, digest),
        SetterField::Tag => image.tag.clone(),
        SetterField::Name => image.name.clone(),
        SetterField::Digest => digest.to_string(),
    }
}

/// Applies the setters of `values` to one YAML file held in memory. Only the bytes of changed
/// scalars differ in the output; a Change is recorded only when the value differs.
///
/// Errors with [`SetterError::Parse`] when the file is not YAML Flux could read (syntax error,
/// invalid `---` separator, duplicate key, a document that is not a mapping, invalid UTF-8).
pub fn update_bytes(input: &[u8], values: &PolicyValues) -> Result<FileUpdate, SetterError> {
    doc::update(input, values)
}

/// Flux `Result.Changes()`: every change once, in a deterministic order (files by path, then
/// objects by [`ObjectId`], then document order). Flux's order is Go map order (random).
pub fn result_changes(files: &FileChanges) -> Vec<Change> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for objects in files.values() {
        for changes in objects.values() {
            for c in changes {
                if seen.insert(c.clone()) {
                    out.push(c.clone());
                }
            }
        }
    }
    out
}

/// Flux `Result.Objects()`: changes merged per object across files (files in path order,
/// not de-duplicated, like upstream).
pub fn result_objects(files: &FileChanges) -> ObjectChanges {
    let mut out = ObjectChanges::new();
    for objects in files.values() {
        for (id, changes) in objects {
            out.entry(id.clone())
                .or_default()
                .extend(changes.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(o: &str, n: &str) -> Change {
        Change {
            old_value: o.into(),
            new_value: n.into(),
            setter: "ns:p".into(),
        }
    }

    fn oid(name: &str) -> ObjectId {
        ObjectId {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.into(),
            namespace: String::new(),
        }
    }

    #[test]
    fn result_helpers() {
        let mut files = FileChanges::new();
        files.insert(
            "b.yaml".into(),
            BTreeMap::from([(oid("x"), vec![ch("1", "2"), ch("3", "4")])]),
        );
        files.insert(
            "a.yaml".into(),
            BTreeMap::from([
                (oid("y"), vec![ch("5", "6")]),
                (oid("x"), vec![ch("1", "2")]),
            ]),
        );
        // Files by path, objects by id, then document order; duplicates once.
        assert_eq!(
            result_changes(&files),
            [ch("1", "2"), ch("5", "6"), ch("3", "4")]
        );
        let objects = result_objects(&files);
        assert_eq!(
            objects[&oid("x")],
            [ch("1", "2"), ch("1", "2"), ch("3", "4")]
        );
        assert_eq!(objects[&oid("y")], [ch("5", "6")]);
    }

    #[test]
    fn setter_values() {
        let mut img = ImageRef {
            name: "reg/app".into(),
            tag: "1.0".into(),
            digest: None,
        };
        assert_eq!(setter_value(&img, SetterField::Full), "reg/app:1.0");
        assert_eq!(setter_value(&img, SetterField::Digest), "");
        img.digest = Some("sha256:ab".into());
        assert_eq!(
            setter_value(&img, SetterField::Full),
            "reg/app:1.0@sha256:ab"
        );
        assert_eq!(setter_value(&img, SetterField::Name), "reg/app");
        assert_eq!(setter_value(&img, SetterField::Tag), "1.0");
        assert_eq!(setter_value(&img, SetterField::Digest), "sha256:ab");
    }

    #[test]
    fn diff_format() {
        let d = unified_diff("d/x.yaml", b"a: 1\nb: 2\n", b"a: 1\nb: 3\n");
        assert_eq!(
            d,
            "--- a/d/x.yaml\n+++ b/d/x.yaml\n@@ -1,2 +1,2 @@\n a: 1\n-b: 2\n+b: 3\n"
        );
        assert_eq!(unified_diff("x", b"same", b"same"), "");
    }
}
