//! On-disk cache of kustomize outputs. A build depends on the whole source tree (kustomize may
//! read any file of it), the Flux Kustomization's spec and the kustomize binary, so the key is a
//! digest of all three: any change to the tree misses every entry. Entries live under
//! `DIR/<tree digest>/`; trees not used for an hour are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::RenderError;

/// How long entries of other trees are kept.
const KEEP_OTHER_TREES: Duration = Duration::from_secs(3600);

/// The cache of one render (one source tree).
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens the cache for the tree at `root` under `base`; `None` when it cannot be used (a
    /// cache problem never fails a render).
    pub fn open(base: &Path, root: &Path, kustomize: &str) -> Option<Cache> {
        let mut h = Sha256::new();
        h.update(kustomize.as_bytes());
        h.update([0]);
        digest_tree(root, root, &mut h).ok()?;
        let dir = base.join(hex::encode(h.finalize()));
        std::fs::create_dir_all(&dir).ok()?;
        prune(base, &dir);
        Some(Cache { dir })
    }

    fn path(&self, spec: &Value) -> PathBuf {
        let key = hex::encode(Sha256::digest(spec.to_string().as_bytes()));
        self.dir.join(format!("{key}.yaml"))
    }

    /// The cached output of the Kustomization with `spec`.
    pub fn get(&self, spec: &Value) -> Option<String> {
        std::fs::read_to_string(self.path(spec)).ok()
    }

    /// Stores an output (atomically; errors are ignored).
    pub fn put(&self, spec: &Value, output: &str) {
        let path = self.path(spec);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, output).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Hashes every file under `dir` (path and bytes, sorted; `.git` skipped; symlinks by target).
fn digest_tree(root: &Path, dir: &Path, h: &mut Sha256) -> Result<(), RenderError> {
    let io = |p: &Path, e: std::io::Error| RenderError::Io {
        path: p.to_path_buf(),
        error: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).map_err(|e| io(&p, e))?;
        h.update(crate::tree::rel(root, &p).as_bytes());
        h.update([0]);
        if meta.is_dir() {
            digest_tree(root, &p, h)?;
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&p).map_err(|e| io(&p, e))?;
            h.update(target.to_string_lossy().as_bytes());
        } else {
            h.update(std::fs::read(&p).map_err(|e| io(&p, e))?);
        }
        h.update([0]);
    }
    Ok(())
}

/// Removes the entries of other trees that were not touched for [`KEEP_OTHER_TREES`].
fn prune(base: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let p = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > KEEP_OTHER_TREES);
        if p != keep && old {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_to_the_tree_misses() {
        let base = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("a.yaml"), "a: 1\n").unwrap();
        let spec = serde_json::json!({"path": "./"});
        let c = Cache::open(base.path(), tree.path(), "kustomize build").unwrap();
        assert_eq!(c.get(&spec), None);
        c.put(&spec, "out\n");
        let c = Cache::open(base.path(), tree.path(), "kustomize build").unwrap();
        assert_eq!(c.get(&spec).as_deref(), Some("out\n"));
        assert_eq!(c.get(&serde_json::json!({"path": "./x"})), None);
        std::fs::write(tree.path().join("a.yaml"), "a: 2\n").unwrap();
        let c = Cache::open(base.path(), tree.path(), "kustomize build").unwrap();
        assert_eq!(c.get(&spec), None);
    }
}
