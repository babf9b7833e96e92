//! The keys of changes already notified, one per line in a file beside the state store, so a
//! restarted daemon does not resend them.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// False when the file did not exist: the first look at Git is a baseline, not news.
    existed: bool,
    keys: Mutex<HashSet<String>>,
}

impl Ledger {
    pub fn open(path: &Path) -> std::io::Result<Ledger> {
        let (existed, keys) = match std::fs::read_to_string(path) {
            Ok(t) => (true, t.lines().map(str::to_string).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (false, HashSet::new()),
            Err(e) => return Err(e),
        };
        Ok(Ledger {
            path: path.to_path_buf(),
            existed,
            keys: Mutex::new(keys),
        })
    }

    pub fn existed(&self) -> bool {
        self.existed
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// Records `key`; false when it was already there. Appends to the file (created if needed).
    pub fn insert(&self, key: &str) -> std::io::Result<bool> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.contains(key) {
            return Ok(false);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(f, "{key}")?;
        keys.insert(key.to_string());
        Ok(true)
    }

    /// Creates the file when it is missing (an empty baseline).
    pub fn touch(&self) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.notified");
        let l = Ledger::open(&p).unwrap();
        assert!(!l.existed());
        assert!(l.insert("a").unwrap());
        assert!(!l.insert("a").unwrap());
        let l = Ledger::open(&p).unwrap();
        assert!(l.existed());
        assert!(!l.insert("a").unwrap());
        assert!(l.insert("b").unwrap());
    }
}
