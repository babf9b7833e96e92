//! File-system side of a render: YAML documents of a tree, the private copy kustomize builds
//! in, path containment, Flux's generated `kustomization.yaml`.

use std::path::{Component, Path, PathBuf};

use crate::RenderError;

/// Names kustomize recognises for a kustomization file, in its order.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One YAML document of a file: its text and 1-based first line.
#[derive(Debug, Clone)]
pub struct TextDoc {
    pub text: String,
    pub line: usize,
}

/// Splits a YAML stream on `---` lines (kustomize output and ordinary manifests).
pub fn split_docs(content: &str) -> Vec<TextDoc> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1usize;
    for (i, line) in content.split_inclusive('\n').enumerate() {
        let body = line.trim_end();
        if body == "---" || body.starts_with("--- ") || body == "..." {
            docs.push(TextDoc {
                text: std::mem::take(&mut cur),
                line: start,
            });
            start = i + 2;
            continue;
        }
        if cur.is_empty() && (body.trim().is_empty() || body.trim_start().starts_with('#')) {
            start = i + 2;
        }
        cur.push_str(line);
    }
    docs.push(TextDoc {
        text: cur,
        line: start,
    });
    docs.retain(|d| !d.text.trim().is_empty());
    docs
}

/// Every `.yaml`/`.yml` file under `dir` (recursively, sorted, `.git` skipped), relative to
/// `root`, `/`-separated.
pub fn yaml_files(root: &Path, dir: &Path) -> Result<Vec<String>, RenderError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in read_dir_sorted(&d)? {
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned());
            let Some(name) = name else { continue };
            if name == ".git" {
                continue;
            }
            if entry.is_dir() {
                stack.push(entry);
            } else if is_yaml(&name) {
                out.push(rel(root, &entry));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
    let io = |e: std::io::Error| RenderError::Io {
        path: dir.to_path_buf(),
        error: e.to_string(),
    };
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        v.push(e.map_err(io)?.path());
    }
    v.sort();
    Ok(v)
}

/// `path` relative to `root`, `/`-separated.
pub fn rel(root: &Path, path: &Path) -> String {
    let r = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = r
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Joins a Flux `spec.path` (or a kustomize origin path) onto `base` lexically, refusing to
/// leave `root`.
pub fn contained_join(root: &Path, base: &Path, path: &str) -> Option<PathBuf> {
    let mut out = if Path::new(path).is_absolute() {
        root.to_path_buf()
    } else {
        base.to_path_buf()
    };
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out.starts_with(root).then_some(out)
}

/// Copies `src` into `dst` (directories, regular files and symlinks to files; `.git` skipped).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), RenderError> {
    let io = |p: &Path, e: std::io::Error| RenderError::Io {
        path: p.to_path_buf(),
        error: e.to_string(),
    };
    std::fs::create_dir_all(dst).map_err(|e| io(dst, e))?;
    for entry in read_dir_sorted(src)? {
        let Some(name) = entry.file_name() else {
            continue;
        };
        if name == ".git" {
            continue;
        }
        let target = dst.join(name);
        let meta = std::fs::symlink_metadata(&entry).map_err(|e| io(&entry, e))?;
        if meta.is_dir() {
            copy_tree(&entry, &target)?;
        } else if meta.is_file() || entry.is_file() {
            std::fs::copy(&entry, &target).map_err(|e| io(&entry, e))?;
        }
    }
    Ok(())
}

/// The kustomization file of `dir`, if it has one.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// The resources of the `kustomization.yaml` Flux generates for a folder without one
/// (fluxcd/pkg kustomize generator): every `.yaml`/`.yml` file below it, recursively, in
/// lexical walk order; a sub-folder that has its own kustomization file is listed as one
/// resource and not descended into.
pub fn generated_resources(dir: &Path) -> Result<Vec<String>, RenderError> {
    let mut out = Vec::new();
    walk_generated(dir, dir, &mut out)?;
    Ok(out)
}

fn walk_generated(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), RenderError> {
    for entry in read_dir_sorted(dir)? {
        let Some(name) = entry.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if entry.is_dir() {
            if kustomization_file(&entry).is_some() {
                out.push(format!("./{}", rel(base, &entry)));
            } else {
                walk_generated(base, &entry, out)?;
            }
        } else if is_yaml(&name) {
            out.push(format!("./{}", rel(base, &entry)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_kustomize_output() {
        let docs = split_docs("a: 1\n---\n# c\nb: 2\n---\n");
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].line, docs[1].line), (1, 4));
    }

    #[test]
    fn joins_inside_root_only() {
        let root = Path::new("/r");
        assert_eq!(
            contained_join(root, root, "./apps/x"),
            Some(PathBuf::from("/r/apps/x"))
        );
        assert_eq!(contained_join(root, Path::new("/r/a"), "../../etc"), None);
        assert_eq!(
            contained_join(root, Path::new("/r/a"), "../b"),
            Some(PathBuf::from("/r/b"))
        );
    }
}
