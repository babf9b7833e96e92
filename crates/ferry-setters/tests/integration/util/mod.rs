//! Shared test helpers: tree copy and byte-exact tree comparison (upstream harness rules).
#![allow(dead_code)]

use std::fs;
use std::path::Path;

/// Copies a tree (files, dirs, symlinks as symlinks), making the copies writable.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else {
            fs::write(&dst, fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

/// Differences between two trees. Compares bytes of files and targets of symlinks; a file on
/// one side only is a difference. With `skip_hidden`, directories starting with `.` are
/// ignored; files ending in `~` always are (upstream `ExpectMatchingDirectories`).
pub fn diff_trees(actual: &Path, expected: &Path, skip_hidden: bool) -> Vec<String> {
    let mut out = Vec::new();
    diff_rec(actual, expected, "", skip_hidden, &mut out);
    out
}

fn list(dir: &Path, skip_hidden: bool) -> Vec<(String, fs::FileType)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.file_type().unwrap(),
                )
            })
            .filter(|(n, ft)| {
                let hidden_dir = skip_hidden && ft.is_dir() && n.starts_with('.');
                !(n.ends_with('~') || hidden_dir)
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn diff_rec(a: &Path, b: &Path, rel: &str, skip_hidden: bool, out: &mut Vec<String>) {
    let la = list(a, skip_hidden);
    let lb = list(b, skip_hidden);
    for (name, ft) in &la {
        let r = format!("{rel}{name}");
        let Some((_, fb)) = lb.iter().find(|(n, _)| n == name) else {
            out.push(format!("{r}: only in actual"));
            continue;
        };
        let (pa, pb) = (a.join(name), b.join(name));
        if ft.is_dir() && fb.is_dir() {
            diff_rec(&pa, &pb, &format!("{r}/"), skip_hidden, out);
        } else if ft.is_symlink() || fb.is_symlink() {
            if fs::read_link(&pa).ok() != fs::read_link(&pb).ok() {
                out.push(format!("{r}: symlinks differ"));
            }
        } else if ft.is_dir() != fb.is_dir() {
            out.push(format!("{r}: file/dir mismatch"));
        } else {
            let (ca, cb) = (fs::read(&pa).unwrap(), fs::read(&pb).unwrap());
            if ca != cb {
                out.push(format!(
                    "{r}: content differs\n{}",
                    ferry_setters::unified_diff(&r, &cb, &ca)
                ));
            }
        }
    }
    for (name, _) in &lb {
        if !la.iter().any(|(n, _)| n == name) {
            out.push(format!("{rel}{name}: only in expected"));
        }
    }
}

/// Replaces `from` with `to` in every file of a tree.
pub fn replace_in_tree(dir: &Path, from: &str, to: &str) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            replace_in_tree(&e.path(), from, to);
        } else if ft.is_file() {
            let s = fs::read(e.path()).unwrap();
            if let Ok(text) = String::from_utf8(s)
                && text.contains(from)
            {
                fs::write(e.path(), text.replace(from, to)).unwrap();
            }
        }
    }
}
