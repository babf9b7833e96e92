//! ferry-store: the embedded SQLite cache of Ferry's last observations.
//!
//! Owns: the schema and its migrations; per-object records (ImageRepository scans, ImagePolicy
//! `latestRef`s, ImageUpdateAutomation pushes) and their Ready conditions; and when `ferry
//! verify` first saw each tag of a policy running in a cluster (an observation, like the others:
//! the controller keeps its own on the ImagePolicy, in the cluster).
//! Must not: decide anything. Git is the source of truth for desired state and the registry for
//! what exists; deleting this file loses nothing that a rescan cannot rebuild.
//!
//! Concurrency: the database runs in WAL mode with a busy timeout, and every write is one
//! `BEGIN IMMEDIATE` transaction, so two `ferry` processes at once serialize instead of corrupting
//! it. The daemon's single-instance guard is a separate advisory lock ([`InstanceLock`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

/// Errors from the state store. Each names the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state store {path}: cannot create directory: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state store {path}: corrupt record {what}: {source}")]
    Corrupt {
        path: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "state store {path} is locked by another `ferry serve` (pid file {lock}); stop it or use --state"
    )]
    Locked { path: PathBuf, lock: PathBuf },
}

/// The kinds of object whose observations are stored are [`Kind::RECONCILED`]; one image
/// reference type for `latestRef` and friends. Both are the workspace's (`ferry-core`).
pub use ferry_core::{ImageRef, Kind, ObjectKey};

/// A kstatus-style Ready condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339.
    pub last_transition_time: String,
}

impl Condition {
    pub fn is_ready(&self) -> bool {
        self.status == "True"
    }
}

/// `status.lastScanResult` of an ImageRepository plus the stored tag list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub canonical_image_name: String,
    /// Tags after exclusion, in store order (descending bytes).
    pub tags: Vec<String>,
    pub tag_count: usize,
    /// RFC 3339.
    pub scan_time: String,
    pub revision: String,
    pub latest_tags: Vec<String>,
    pub observed_exclusion_list: Vec<String>,
}

/// ImagePolicy status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub latest_ref: Option<ImageRef>,
    pub observed_previous_ref: Option<ImageRef>,
    /// The hold on this policy recorded in the GitOps repo (`.ferry/holds.yaml`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldRecord>,
    /// Tags denied for this policy in the GitOps repo; the election skips them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_tags: Vec<String>,
}

/// A hold as read from Git: the policy stays at `tag` until someone lifts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub tag: String,
    /// The commit that recorded the hold (from its `Ferry-Hold` trailer), when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub reason: String,
    /// RFC 3339.
    #[serde(default)]
    pub at: String,
}

/// ImageUpdateAutomation status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomationRecord {
    pub last_automation_run_time: Option<String>,
    pub last_push_commit: Option<String>,
    pub last_push_time: Option<String>,
    pub observed_source_revision: Option<String>,
    #[serde(default)]
    pub observed_policies: std::collections::BTreeMap<String, ImageRef>,
}

/// Everything stored about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub ready: Option<Condition>,
    pub scan: Option<ScanRecord>,
    pub policy: Option<PolicyRecord>,
    pub automation: Option<AutomationRecord>,
    /// `spec.suspend` as last seen in the source.
    #[serde(default)]
    pub suspended: bool,
    /// RFC 3339 of the last write.
    pub updated_at: String,
}

const SCHEMA_VERSION: i64 = 2;

/// The state store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        // WAL lets readers run beside one writer; NORMAL sync is durable at checkpoints and
        // never corrupts on a crash.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// An in-memory store, for engine unit tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let mut store = Store { conn, path };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version < 1 {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS objects (
                    kind TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    record TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (kind, namespace, name)
                 );
                 CREATE TABLE IF NOT EXISTS tags (
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    tags TEXT NOT NULL,
                    PRIMARY KEY (namespace, name)
                 );",
            )
            .map_err(err)?;
        }
        if version < 2 {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS live_seen (
                    policy TEXT NOT NULL,
                    tag TEXT NOT NULL,
                    first_seen TEXT NOT NULL,
                    PRIMARY KEY (policy, tag)
                 );",
            )
            .map_err(err)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Reads one object's record.
    pub fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        let row: Option<String> = self
            .conn
            .query_row(
                "SELECT record FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                params![kind.as_str(), namespace, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        let Some(json) = row else { return Ok(None) };
        let mut record = self.decode(&json, kind, namespace, name)?;
        if let Some(scan) = record.scan.as_mut() {
            scan.tags = self.get_tags(namespace, name)?;
        }
        Ok(Some(record))
    }

    fn decode(
        &self,
        json: &str,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<ObjectRecord, StoreError> {
        serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("{} {namespace}/{name}", kind.as_str()),
            source,
        })
    }

    fn get_tags(&self, namespace: &str, name: &str) -> Result<Vec<String>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT tags FROM tags WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        Ok(text
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// Lists every record of a kind (tag lists not loaded), sorted by namespace and name.
    pub fn list(&self, kind: Kind) -> Result<Vec<ObjectRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT namespace, name, record FROM objects WHERE kind = ?1 ORDER BY namespace, name",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params![kind.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (ns, name, json) = row.map_err(|e| self.sql_err(e))?;
            out.push(self.decode(&json, kind, &ns, &name)?);
        }
        Ok(out)
    }

    /// Writes one record atomically (the tag list, if any, in the same transaction).
    pub fn put(&mut self, record: &ObjectRecord) -> Result<(), StoreError> {
        let mut stored = record.clone();
        let tags = stored.scan.as_mut().map(|s| std::mem::take(&mut s.tags));
        let json = serde_json::to_string(&stored).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!(
                "{} {}/{}",
                record.kind.as_str(),
                record.namespace,
                record.name
            ),
            source,
        })?;
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT INTO objects (kind, namespace, name, record, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (kind, namespace, name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
            params![record.kind.as_str(), record.namespace, record.name, json, record.updated_at],
        )
        .map_err(err)?;
        if let Some(tags) = tags {
            tx.execute(
                "INSERT INTO tags (namespace, name, tags) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, name) DO UPDATE SET tags = excluded.tags",
                params![record.namespace, record.name, tags.join("\n")],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Records that `tag` of ImagePolicy `policy` (`namespace/name`) was seen running in the
    /// cluster at `at` (RFC 3339), unless an earlier sighting is recorded.
    pub fn record_live_seen(
        &mut self,
        policy: &str,
        tag: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO live_seen (policy, tag, first_seen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (policy, tag) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen)",
                params![policy, tag, at],
            )
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// When each tag of `policy` was first seen live: tag → RFC 3339 time.
    pub fn live_seen(
        &self,
        policy: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT tag, first_seen FROM live_seen WHERE policy = ?1")
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params![policy], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql_err(e))
    }

    /// Removes the records of objects that are not in `keep` (they left the source).
    pub fn retain(&mut self, keep: &BTreeSet<ObjectKey>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for kind in Kind::RECONCILED {
            removed += self.retain_kind(kind, keep)?;
        }
        Ok(removed)
    }

    fn retain_kind(&mut self, kind: Kind, keep: &BTreeSet<ObjectKey>) -> Result<usize, StoreError> {
        let existing = self.list(kind)?;
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut removed = 0;
        for rec in existing {
            if !keep.contains(&ObjectKey::new(kind, &rec.namespace, &rec.name)) {
                removed += tx
                    .execute(
                        "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                        params![kind.as_str(), rec.namespace, rec.name],
                    )
                    .map_err(err)?;
                if kind == Kind::ImageRepository {
                    tx.execute(
                        "DELETE FROM tags WHERE namespace = ?1 AND name = ?2",
                        params![rec.namespace, rec.name],
                    )
                    .map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(removed)
    }
}

/// An exclusive advisory lock next to the state file: one `ferry serve` per store.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock `<state>.lock` without waiting; fails with [`StoreError::Locked`] if held.
    pub fn acquire(state: &Path) -> Result<InstanceLock, StoreError> {
        let mut lock = state.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| StoreError::Io {
                path: lock.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock {
                _file: file,
                path: lock,
            }),
            Err(_) => Err(StoreError::Locked {
                path: state.to_path_buf(),
                lock,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_record(ns: &str, name: &str, tags: &[&str]) -> ObjectRecord {
        ObjectRecord {
            kind: Kind::ImageRepository,
            namespace: ns.into(),
            name: name.into(),
            ready: Some(Condition {
                status: "True".into(),
                reason: "Succeeded".into(),
                message: "successful scan".into(),
                last_transition_time: "2026-01-01T00:00:00Z".into(),
            }),
            scan: Some(ScanRecord {
                canonical_image_name: "r/x".into(),
                tags: tags.iter().map(|s| s.to_string()).collect(),
                tag_count: tags.len(),
                scan_time: "2026-01-01T00:00:00Z".into(),
                revision: "1".into(),
                latest_tags: vec![],
                observed_exclusion_list: vec![],
            }),
            policy: None,
            automation: None,
            suspended: false,
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn round_trip_and_retain() {
        let dir = tempfile_dir();
        let path = dir.join("state.db");
        let mut store = Store::open(&path).unwrap();
        store
            .put(&repo_record("flux-system", "backend", &["b", "a"]))
            .unwrap();
        store
            .put(&repo_record("flux-system", "frontend", &["c"]))
            .unwrap();
        let got = store
            .get(Kind::ImageRepository, "flux-system", "backend")
            .unwrap()
            .unwrap();
        assert_eq!(got.scan.unwrap().tags, vec!["b", "a"]);
        assert_eq!(store.list(Kind::ImageRepository).unwrap().len(), 2);
        let keep = [ObjectKey::new(
            Kind::ImageRepository,
            "flux-system",
            "backend",
        )];
        let removed = store.retain(&keep.into_iter().collect()).unwrap();
        assert_eq!(removed, 1);
        drop(store);
        // Reopen: data persisted, migration idempotent.
        let store = Store::open(&path).unwrap();
        assert!(
            store
                .get(Kind::ImageRepository, "flux-system", "frontend")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get(Kind::ImageRepository, "flux-system", "backend")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn concurrent_writers_do_not_corrupt() {
        let dir = tempfile_dir();
        let path = dir.join("state.db");
        Store::open(&path).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open(&path).unwrap();
                    for i in 0..50 {
                        store
                            .put(&repo_record("ns", &format!("r{t}-{i}"), &["x"]))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.list(Kind::ImageRepository).unwrap().len(), 200);
    }

    #[test]
    fn instance_lock_is_exclusive() {
        let dir = tempfile_dir();
        let path = dir.join("state.db");
        let first = InstanceLock::acquire(&path).unwrap();
        let second = InstanceLock::acquire(&path);
        assert!(matches!(second, Err(StoreError::Locked { .. })));
        drop(first);
        InstanceLock::acquire(&path).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ferry-store-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }
}
