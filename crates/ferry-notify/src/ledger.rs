//! What became of each change, in a file beside the state store (`<state>.notified`), so a
//! restart neither resends a delivered message nor loses one cut short.
//!
//! The file is append-only JSON lines, one per step: `pending` (with the event and its
//! receivers, written and synced before the first POST), then `delivered` or `failed` per
//! receiver; `seen` marks a change known without sending (the first start's baseline, or no
//! receiver wanted it). Appending one whole line per write keeps every earlier line intact
//! whatever happens, and a rewrite would cost a full copy per step. A crash can only tear the
//! last line: it is dropped at start (cut from the file), which is safe because each step's
//! effect follows its line: a torn `pending` was never sent, a torn `delivered` is sent again.
//! Lines that are not JSON are keys written by older Ferry (one per line, all settled). At
//! start the file is compacted (temporary file, sync, rename) when settled changes make it
//! longer than needed.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Where one delivery of one change to one receiver stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Recorded, not yet answered with a 2xx: sent again after a restart.
    Pending,
    Delivered,
    /// The retries ran out: not sent again.
    Failed,
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
enum Line {
    Seen {
        key: String,
    },
    Pending {
        key: String,
        receivers: Vec<String>,
        event: Box<Event>,
    },
    Delivered {
        key: String,
        receiver: String,
    },
    Failed {
        key: String,
        receiver: String,
    },
}

#[derive(Debug, Default)]
struct Change {
    /// Set for changes that were (or are being) sent.
    event: Option<Event>,
    receivers: BTreeMap<String, Delivery>,
}

#[derive(Debug, Default)]
struct State {
    changes: HashMap<String, Change>,
    /// Keys in the order their changes were recorded (resent in that order).
    order: Vec<String>,
}

/// The number of non-empty lines.
fn lines(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count()
}

impl State {
    /// Reads whole lines; one that does not parse is an error naming the file and line.
    fn parse(path: &Path, bytes: &[u8]) -> std::io::Result<State> {
        let mut state = State::default();
        for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let bad = |m: String| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: {m}", path.display(), n + 1),
                )
            };
            let text = std::str::from_utf8(raw).map_err(|e| bad(e.to_string()))?;
            if text.trim().is_empty() {
                continue;
            }
            let line = if text.starts_with('{') {
                serde_json::from_str(text).map_err(|e| bad(e.to_string()))?
            } else {
                Line::Seen {
                    key: text.to_string(),
                }
            };
            state.apply(line);
        }
        Ok(state)
    }

    /// The same knowledge in the fewest lines: a settled change is only `seen` (its event and
    /// outcomes are no longer needed), an unsettled one is `pending` for its pending receivers.
    fn compacted(&self) -> Vec<Line> {
        let mut out = Vec::new();
        for key in &self.order {
            let Some(change) = self.changes.get(key) else {
                continue;
            };
            let pending: Vec<String> = change
                .receivers
                .iter()
                .filter(|(_, d)| **d == Delivery::Pending)
                .map(|(r, _)| r.clone())
                .collect();
            match &change.event {
                Some(event) if !pending.is_empty() => out.push(Line::Pending {
                    key: key.clone(),
                    receivers: pending,
                    event: Box::new(event.clone()),
                }),
                _ => out.push(Line::Seen { key: key.clone() }),
            }
        }
        out
    }

    fn apply(&mut self, line: Line) {
        let key = match &line {
            Line::Seen { key }
            | Line::Pending { key, .. }
            | Line::Delivered { key, .. }
            | Line::Failed { key, .. } => key.clone(),
        };
        if !self.changes.contains_key(&key) {
            self.order.push(key.clone());
        }
        let change = self.changes.entry(key).or_default();
        match line {
            Line::Seen { .. } => {}
            Line::Pending {
                receivers, event, ..
            } => {
                change.event = Some(*event);
                for r in receivers {
                    change.receivers.insert(r, Delivery::Pending);
                }
            }
            Line::Delivered { receiver, .. } => {
                change.receivers.insert(receiver, Delivery::Delivered);
            }
            Line::Failed { receiver, .. } => {
                change.receivers.insert(receiver, Delivery::Failed);
            }
        }
    }
}

#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// False when the file did not exist: the first look at Git is a baseline, not news.
    existed: bool,
    state: Mutex<State>,
}

impl Ledger {
    /// Reads the file (a missing one is empty). A torn last line is cut off; any other line
    /// that does not parse is an error naming the file and line.
    pub fn open(path: &Path) -> std::io::Result<Ledger> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ledger {
                    path: path.to_path_buf(),
                    existed: false,
                    state: Mutex::default(),
                });
            }
            Err(e) => return Err(e),
        };
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            tracing::warn!(
                file = %path.display(),
                "notification ledger: dropping a torn last line (an interrupted write)"
            );
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)?
                .set_len(whole as u64)?;
        }
        let state = State::parse(path, &bytes[..whole])?;
        let compact = state.compacted();
        let ledger = Ledger {
            path: path.to_path_buf(),
            existed: true,
            state: Mutex::new(state),
        };
        if compact.len() < lines(&bytes[..whole]) {
            // Not fatal: the long file is as correct as the short one.
            if let Err(e) = ledger.rewrite(&compact) {
                tracing::warn!(file = %path.display(), "notification ledger: cannot compact: {e}");
            }
        }
        Ok(ledger)
    }

    pub fn existed(&self) -> bool {
        self.existed
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when the change is recorded in any state.
    pub fn contains(&self, key: &str) -> bool {
        self.state().changes.contains_key(key)
    }

    /// Where the delivery of change `key` to `receiver` stands.
    pub fn delivery(&self, key: &str, receiver: &str) -> Option<Delivery> {
        self.state()
            .changes
            .get(key)?
            .receivers
            .get(receiver)
            .copied()
    }

    /// Records `key` as known without sending; false when it was already there.
    pub fn insert(&self, key: &str) -> std::io::Result<bool> {
        self.record(key, Line::Seen { key: key.into() }, false)
    }

    /// Records `event` as pending for `receivers`, synced to disk before returning; false when
    /// the change was already recorded (then nothing is to be sent).
    pub fn begin(&self, event: &Event, receivers: &[String]) -> std::io::Result<bool> {
        let key = event.key();
        let line = Line::Pending {
            key: key.clone(),
            receivers: receivers.to_vec(),
            event: Box::new(event.clone()),
        };
        self.record(&key, line, true)
    }

    /// Records how the delivery of `key` to `receiver` ended.
    pub fn finish(&self, key: &str, receiver: &str, delivered: bool) -> std::io::Result<()> {
        let (key, receiver) = (key.to_string(), receiver.to_string());
        let line = if delivered {
            Line::Delivered { key, receiver }
        } else {
            Line::Failed { key, receiver }
        };
        let mut state = self.state();
        self.append(&line, false)?;
        state.apply(line);
        Ok(())
    }

    /// The deliveries still pending, `(event, receiver)`, in the order they were recorded.
    pub fn pending(&self) -> Vec<(Event, String)> {
        let state = self.state();
        let mut out = Vec::new();
        for key in &state.order {
            let Some(change) = state.changes.get(key) else {
                continue;
            };
            let Some(event) = &change.event else {
                continue;
            };
            for (r, d) in &change.receivers {
                if *d == Delivery::Pending {
                    out.push((event.clone(), r.clone()));
                }
            }
        }
        out
    }

    /// Creates the file when it is missing (an empty baseline).
    pub fn touch(&self) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map(|_| ())
    }

    /// Appends `line` for a new change `key`; false (nothing written) when `key` is known.
    fn record(&self, key: &str, line: Line, sync: bool) -> std::io::Result<bool> {
        let mut state = self.state();
        if state.changes.contains_key(key) {
            return Ok(false);
        }
        // Memory follows the file: a line that could not be written is not recorded, so the
        // change is offered again by the next pass.
        self.append(&line, sync)?;
        state.apply(line);
        Ok(true)
    }

    /// Replaces the file with `lines` (write a temporary file, sync, rename: a crash leaves the
    /// old file or the new one) and the state with what they say.
    fn rewrite(&self, lines: &[Line]) -> std::io::Result<()> {
        let mut text = String::new();
        for l in lines {
            text.push_str(&serde_json::to_string(l).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let mut state = self.state();
        let tmp = self.path.with_extension("notified.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        *state = State::parse(&self.path, text.as_bytes())?;
        Ok(())
    }

    /// One line in one write (called with the state locked, so lines keep their order).
    fn append(&self, line: &Line, sync: bool) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Side};

    fn event(commit: &str) -> Event {
        Event {
            kind: EventKind::Automation,
            app: "backend".into(),
            env: "develop".into(),
            old: Side::default(),
            new: Side {
                tag: "v2".into(),
                digest: Some("sha256:aa".into()),
            },
            commit: commit.into(),
            author: "a".into(),
            reason: String::new(),
            time: "2026-12-05T10:00:00Z".into(),
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

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

    #[test]
    fn states_move_from_pending_to_delivered_or_failed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.notified");
        let l = Ledger::open(&p).unwrap();
        let e = event("c1");
        assert!(l.begin(&e, &names(&["ok", "bad"])).unwrap());
        assert!(
            !l.begin(&e, &names(&["ok"])).unwrap(),
            "one record per change"
        );
        assert_eq!(l.delivery(&e.key(), "ok"), Some(Delivery::Pending));
        l.finish(&e.key(), "ok", true).unwrap();
        l.finish(&e.key(), "bad", false).unwrap();
        assert_eq!(l.delivery(&e.key(), "ok"), Some(Delivery::Delivered));
        assert_eq!(l.delivery(&e.key(), "bad"), Some(Delivery::Failed));
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);
        // Reopened, the settled change is compacted to one `seen` line: known, never resent.
        let l = Ledger::open(&p).unwrap();
        assert!(l.contains(&e.key()));
        assert!(l.pending().is_empty());
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            format!("{{\"state\":\"seen\",\"key\":\"{}\"}}\n", e.key())
        );
        assert!(!l.begin(&e, &names(&["ok"])).unwrap());
    }

    #[test]
    fn a_restart_resends_only_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.notified");
        let l = Ledger::open(&p).unwrap();
        let (e1, e2) = (event("c1"), event("c2"));
        l.begin(&e1, &names(&["ok", "slow"])).unwrap();
        l.begin(&e2, &names(&["ok"])).unwrap();
        l.finish(&e1.key(), "ok", true).unwrap();
        drop(l); // a crash: e1 to "slow" and e2 to "ok" were in flight
        let l = Ledger::open(&p).unwrap();
        assert_eq!(
            l.pending(),
            vec![(e1.clone(), "slow".to_string()), (e2, "ok".to_string())]
        );
        assert!(l.contains(&e1.key()));
        // Compacted: only the pending receivers are left, and a reopen reads the same.
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
        assert_eq!(Ledger::open(&p).unwrap().pending(), l.pending());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_file_stays_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.notified");
        let l = Ledger::open(&p).unwrap();
        let e = event("c1");
        l.begin(&e, &names(&["ok"])).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"state":"delivered","key":"c1 back"#)
            .unwrap();
        drop(f);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.delivery(&e.key(), "ok"), Some(Delivery::Pending));
        l.finish(&e.key(), "ok", true).unwrap();
        assert_eq!(l.delivery(&e.key(), "ok"), Some(Delivery::Delivered));
        let l = Ledger::open(&p).unwrap();
        assert!(l.contains(&e.key()) && l.pending().is_empty());
    }

    #[test]
    fn old_key_lines_read_as_known_and_a_bad_line_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.notified");
        std::fs::write(&p, "c0 backend develop automation\n").unwrap();
        let l = Ledger::open(&p).unwrap();
        assert!(l.contains("c0 backend develop automation"));
        assert!(l.pending().is_empty());
        std::fs::write(&p, "{\"state\":\"nope\"}\nc0 x y z\n").unwrap();
        let e = Ledger::open(&p).unwrap_err().to_string();
        assert!(e.contains("state.notified:1:"), "{e}");
    }
}
