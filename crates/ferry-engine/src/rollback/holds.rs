//! `.ferry/holds.yaml`: holds and deny-lists, recorded in the GitOps repository itself.
//!
//! The file sits at the repository root, outside every Flux `path`, so Flux never applies it, and
//! it survives a fresh clone. Ferry rewrites it deterministically (entries sorted, every string
//! quoted) so that two writers produce the same bytes for the same content; people may edit it
//! by hand (any YAML that parses into the same shape is accepted).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Path of the holds file relative to the repository root.
pub const HOLDS_PATH: &str = ".ferry/holds.yaml";

/// ENV/APP is held at an image: automation writes this value and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// `namespace/name` of the ImagePolicy.
    #[serde(default)]
    pub policy: String,
    /// The image name (`ImageRepository.spec.image`) the markers hold.
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The commit that was rolled back (rollback holds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub reason: String,
    /// RFC 3339.
    #[serde(default)]
    pub at: String,
}

/// A tag that automation must never write for a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub at: String,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldsFile {
    #[serde(default)]
    pub holds: Vec<Hold>,
    #[serde(default)]
    pub denied: Vec<Denied>,
}

/// A holds file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HoldsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid holds file: {message}")]
    Parse { path: String, message: String },
}

impl HoldsFile {
    /// Parses the file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<HoldsFile, HoldsError> {
        if text.trim().is_empty() {
            return Ok(HoldsFile::default());
        }
        // A file of only comments parses to nothing; treat it as empty.
        let has_content = text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if !has_content {
            return Ok(HoldsFile::default());
        }
        serde_saphyr::from_str(text).map_err(|e| HoldsError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads `<root>/.ferry/holds.yaml`; a missing file is an empty one.
    pub fn read(root: &Path) -> Result<HoldsFile, HoldsError> {
        let path = root.join(HOLDS_PATH);
        match std::fs::read_to_string(&path) {
            Ok(text) => HoldsFile::parse(&text, HOLDS_PATH),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HoldsFile::default()),
            Err(source) => Err(HoldsError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes `<root>/.ferry/holds.yaml` (creating `.ferry/`).
    pub fn write(&self, root: &Path) -> Result<(), HoldsError> {
        let path = root.join(HOLDS_PATH);
        let err = |source| HoldsError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        std::fs::write(&path, self.render()).map_err(err)
    }

    /// The hold of a policy (`namespace/name`).
    pub fn hold(&self, policy: &str) -> Option<&Hold> {
        self.holds.iter().find(|h| h.policy == policy)
    }

    /// Tags denied for a policy.
    pub fn denied_tags(&self, policy: &str) -> Vec<String> {
        let mut tags: Vec<String> = self
            .denied
            .iter()
            .filter(|d| d.policy == policy)
            .map(|d| d.tag.clone())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    pub fn is_denied(&self, policy: &str, tag: &str) -> bool {
        self.denied
            .iter()
            .any(|d| d.policy == policy && d.tag == tag)
    }

    /// Sets (replacing) the hold of `hold.policy`.
    pub fn set_hold(&mut self, hold: Hold) {
        self.holds.retain(|h| h.policy != hold.policy);
        self.holds.push(hold);
    }

    /// Removes the hold of a policy; true when there was one.
    pub fn remove_hold(&mut self, policy: &str) -> bool {
        let before = self.holds.len();
        self.holds.retain(|h| h.policy != policy);
        before != self.holds.len()
    }

    /// Denies a tag (a second denial of the same tag keeps the first record).
    pub fn deny(&mut self, denied: Denied) {
        if !self.is_denied(&denied.policy, &denied.tag) {
            self.denied.push(denied);
        }
    }

    /// Removes denials of a policy: every tag when `tag` is `None`. Returns how many.
    pub fn undeny(&mut self, policy: &str, tag: Option<&str>) -> usize {
        let before = self.denied.len();
        self.denied
            .retain(|d| !(d.policy == policy && tag.is_none_or(|t| d.tag == t)));
        before - self.denied.len()
    }

    /// Deterministic YAML: entries sorted by policy (then tag), every string quoted by the one
    /// YAML quoting of records and approvals.
    pub fn render(&self) -> String {
        let q = crate::promote::yaml_quote;
        let mut holds = self.holds.clone();
        holds.sort_by(|a, b| a.policy.cmp(&b.policy));
        let mut denied = self.denied.clone();
        denied.sort_by(|a, b| (&a.policy, &a.tag).cmp(&(&b.policy, &b.tag)));
        let mut out = String::from(
            "# Ferry holds and deny-lists (docs/rollback.md), written by `ferry rollback`, `ferry hold`\n\
             # and `ferry unhold`. Automation never moves a held policy and never writes a denied tag.\n\
             # Flux does not apply this file: it is outside every Flux path.\n",
        );
        if holds.is_empty() {
            out.push_str("holds: []\n");
        } else {
            out.push_str("holds:\n");
            for h in &holds {
                out.push_str(&format!("  - policy: {}\n", q(&h.policy)));
                out.push_str(&format!("    image: {}\n", q(&h.image)));
                out.push_str(&format!("    tag: {}\n", q(&h.tag)));
                if let Some(d) = &h.digest {
                    out.push_str(&format!("    digest: {}\n", q(d)));
                }
                if let Some(r) = &h.reverts {
                    out.push_str(&format!("    reverts: {}\n", q(r)));
                }
                out.push_str(&format!("    by: {}\n", q(&h.by)));
                out.push_str(&format!("    reason: {}\n", q(&h.reason)));
                out.push_str(&format!("    at: {}\n", q(&h.at)));
            }
        }
        if denied.is_empty() {
            out.push_str("denied: []\n");
        } else {
            out.push_str("denied:\n");
            for d in &denied {
                out.push_str(&format!("  - policy: {}\n", q(&d.policy)));
                out.push_str(&format!("    tag: {}\n", q(&d.tag)));
                out.push_str(&format!("    by: {}\n", q(&d.by)));
                out.push_str(&format!("    reason: {}\n", q(&d.reason)));
                out.push_str(&format!("    at: {}\n", q(&d.at)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parses_back() {
        let mut f = HoldsFile::default();
        f.set_hold(Hold {
            policy: "staging/backend".into(),
            image: "127.0.0.1:5000/org/backend".into(),
            tag: "staging-v1".into(),
            digest: Some("sha256:00".into()),
            reverts: Some("abc".into()),
            by: "alice".into(),
            reason: "bad: \"quoted\" # not a comment".into(),
            at: "2025-01-01T00:00:00Z".into(),
        });
        f.deny(Denied {
            policy: "staging/backend".into(),
            tag: "staging-v2".into(),
            ..Denied::default()
        });
        f.deny(Denied {
            policy: "staging/backend".into(),
            tag: "staging-v2".into(),
            by: "other".into(),
            ..Denied::default()
        });
        let text = f.render();
        let back = HoldsFile::parse(&text, HOLDS_PATH).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.denied.len(), 1);
        assert!(back.is_denied("staging/backend", "staging-v2"));
        assert_eq!(back.hold("staging/backend").unwrap().tag, "staging-v1");
    }

    #[test]
    fn empty_and_comment_only_files_are_empty() {
        assert_eq!(HoldsFile::parse("", "x").unwrap(), HoldsFile::default());
        assert_eq!(
            HoldsFile::parse("# nothing\n", "x").unwrap(),
            HoldsFile::default()
        );
        let empty = HoldsFile::default().render();
        assert_eq!(HoldsFile::parse(&empty, "x").unwrap(), HoldsFile::default());
        assert!(HoldsFile::parse("holds: 3\n", "x").is_err());
    }

    #[test]
    fn hand_written_yaml_is_accepted() {
        let f = HoldsFile::parse(
            "holds:\n- policy: a/b\n  tag: v1\ndenied:\n- {policy: a/b, tag: v2}\n",
            "x",
        )
        .unwrap();
        assert_eq!(f.hold("a/b").unwrap().tag, "v1");
        assert_eq!(f.denied_tags("a/b"), vec!["v2".to_string()]);
        let mut g = f.clone();
        assert_eq!(g.undeny("a/b", None), 1);
        assert!(g.remove_hold("a/b"));
        assert!(!g.remove_hold("a/b"));
    }
}
