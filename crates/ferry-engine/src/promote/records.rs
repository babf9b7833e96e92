//! Release records (`releases/<app>/<env>/<immutable-tag>.yaml`) and approvals
//! (`releases/<app>/approvals/<env>/<tag>.yaml`): one serde type each, with one reader
//! (`parse`, serde-saphyr) and one writer (`render`).
//!
//! The writers keep the bytes older Ferry wrote: a header comment, camelCase keys in a fixed
//! order, every string JSON-quoted (a valid YAML double-quoted scalar), so two writers commit
//! the same bytes for the same content and old files read unchanged. Like `.ferry/holds.yaml`,
//! any YAML of the same shape reads.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::Version;

const RECORD_HEADER: &str =
    "# Release record written by `ferry promote` (docs/promotion.md). One file per promotion.\n";
const APPROVAL_HEADER: &str = "# Approval recorded by `ferry approve` (docs/promotion.md).\n";

/// A record or approval file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid {what}: {message}")]
    Parse {
        path: String,
        what: &'static str,
        message: String,
    },
}

/// One promotion, as recorded in Git. Missing fields read as empty (older files may lack some).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReleaseRecord {
    pub app: String,
    /// `MAJOR.MINOR.PATCH` (checked by [`ReleaseRecord::parse`]).
    pub version: String,
    pub environment: String,
    pub from: String,
    pub source_image: String,
    pub image: String,
    pub digest: String,
    pub media_type: String,
    pub source_tag: String,
    /// The immutable tag version and commit were read from.
    pub traced_tag: String,
    pub immutable_tag: String,
    pub target_tags: Vec<String>,
    pub source_sha: String,
    /// The previous release's version, or `none`.
    pub previous_release: String,
    pub source_sha_range: String,
    /// RFC 3339: the `{ts}` of the immutable tag.
    pub promoted_at: String,
    pub promoted_by: String,
    pub forced: bool,
    pub gates: RecordGates,
}

/// The gates a promotion passed (or, for `sourceDeployed`, was forced through).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordGates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_deployed: Option<SourceDeployedGate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakGate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalGate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceDeployedGate {
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SoakGate {
    /// Human duration (`1h0m0s`).
    pub required: String,
    /// RFC 3339: when the traced tag arrived in the source stage.
    pub since: String,
    pub commit: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalGate {
    pub by: String,
    pub at: String,
    pub tag: String,
}

/// One `ferry approve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Approval {
    pub app: String,
    pub environment: String,
    pub tag: String,
    pub approved_by: String,
    /// RFC 3339.
    pub approved_at: String,
}

/// A JSON string, which is a YAML double-quoted scalar (values may hold `:`, `#` or start with
/// digits), with the characters YAML does not allow raw also escaped: the same bytes for the
/// same value, and every value reads back.
pub(crate) fn yaml_quote(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    let raw_ok = |c: char| !matches!(c, '\u{7f}'..='\u{84}' | '\u{86}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' | '\u{feff}');
    if json.chars().all(raw_ok) {
        return json;
    }
    json.chars()
        .map(|c| {
            if raw_ok(c) {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect()
}

/// `key: "value"\n` at `indent` spaces.
fn field(out: &mut String, indent: usize, key: &str, value: &str) {
    let _ = writeln!(out, "{:indent$}{key}: {}", "", yaml_quote(value));
}

fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &str,
    what: &'static str,
) -> Result<T, RecordError> {
    serde_saphyr::from_str(text).map_err(|e| RecordError::Parse {
        path: path.to_string(),
        what,
        message: e.to_string(),
    })
}

impl ReleaseRecord {
    /// Parses a record's text; `path` names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<ReleaseRecord, RecordError> {
        let r: ReleaseRecord = parse(text, path, "release record")?;
        r.parsed_version().ok_or_else(|| RecordError::Parse {
            path: path.to_string(),
            what: "release record",
            message: format!("version {:?} is not MAJOR.MINOR.PATCH", r.version),
        })?;
        Ok(r)
    }

    /// The version (always valid after [`ReleaseRecord::parse`]).
    pub fn parsed_version(&self) -> Option<Version> {
        Version::parse(&self.version)
    }

    /// The file's bytes, in the layout documented in docs/promotion.md.
    pub fn render(&self) -> String {
        let mut out = String::from(RECORD_HEADER);
        for (k, v) in [
            ("app", &self.app),
            ("version", &self.version),
            ("environment", &self.environment),
            ("from", &self.from),
            ("sourceImage", &self.source_image),
            ("image", &self.image),
            ("digest", &self.digest),
            ("mediaType", &self.media_type),
            ("sourceTag", &self.source_tag),
            ("tracedTag", &self.traced_tag),
            ("immutableTag", &self.immutable_tag),
        ] {
            field(&mut out, 0, k, v);
        }
        if self.target_tags.is_empty() {
            out.push_str("targetTags: []\n");
        } else {
            out.push_str("targetTags:\n");
            for t in &self.target_tags {
                let _ = writeln!(out, "  - {}", yaml_quote(t));
            }
        }
        for (k, v) in [
            ("sourceSha", &self.source_sha),
            ("previousRelease", &self.previous_release),
            ("sourceShaRange", &self.source_sha_range),
            ("promotedAt", &self.promoted_at),
            ("promotedBy", &self.promoted_by),
        ] {
            field(&mut out, 0, k, v);
        }
        let _ = writeln!(out, "forced: {}", self.forced);
        self.gates.render(&mut out);
        out
    }
}

impl RecordGates {
    fn render(&self, out: &mut String) {
        let g = self;
        if g.source_deployed.is_none() && g.soak.is_none() && g.approval.is_none() {
            out.push_str("gates: {}\n");
            return;
        }
        out.push_str("gates:\n");
        if let Some(s) = &g.source_deployed {
            let _ = writeln!(out, "  sourceDeployed:\n    passed: {}", s.passed);
            field(out, 4, "detail", &s.detail);
        }
        if let Some(s) = &g.soak {
            out.push_str("  soak:\n");
            field(out, 4, "required", &s.required);
            field(out, 4, "since", &s.since);
            field(out, 4, "commit", &s.commit);
        }
        if let Some(a) = &g.approval {
            out.push_str("  approval:\n");
            field(out, 4, "by", &a.by);
            field(out, 4, "at", &a.at);
            field(out, 4, "tag", &a.tag);
        }
    }
}

impl Approval {
    /// Parses an approval's text; `path` names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<Approval, RecordError> {
        parse(text, path, "approval")
    }

    /// The file's bytes, in the layout documented in docs/promotion.md.
    pub fn render(&self) -> String {
        let mut out = String::from(APPROVAL_HEADER);
        field(&mut out, 0, "app", &self.app);
        field(&mut out, 0, "environment", &self.environment);
        field(&mut out, 0, "tag", &self.tag);
        field(&mut out, 0, "approvedBy", &self.approved_by);
        field(&mut out, 0, "approvedAt", &self.approved_at);
        out
    }
}

/// The `.yaml` files of `workdir/rel_dir`, each parsed, sorted by file name; a missing
/// directory is an empty one. `(relative path, file stem, value)`.
pub(crate) fn read_dir<T>(
    workdir: &Path,
    rel_dir: &str,
    parse: fn(&str, &str) -> Result<T, RecordError>,
) -> Result<Vec<(String, String, T)>, RecordError> {
    let dir = workdir.join(rel_dir);
    let read_err = |source| RecordError::Read {
        path: rel_dir.to_string(),
        source,
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry.map_err(read_err)?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".yaml") {
            names.push(stem.to_string());
        }
    }
    names.sort();
    let mut out = Vec::new();
    for stem in names {
        let rel = format!("{rel_dir}/{stem}.yaml");
        let text =
            std::fs::read_to_string(workdir.join(&rel)).map_err(|source| RecordError::Read {
                path: rel.clone(),
                source,
            })?;
        let value = parse(&text, &rel)?;
        out.push((rel, stem, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record byte for byte as the format!-based writer before the serde types wrote it,
    /// with all three gates.
    const OLD_RECORD: &str = r#"# Release record written by `ferry promote` (docs/promotion.md). One file per promotion.
app: "backend"
version: "0.0.1"
environment: "production"
from: "staging"
sourceImage: "127.0.0.1:5000/org/backend"
image: "127.0.0.1:5000/org/backend"
digest: "sha256:0123456789abcdef"
mediaType: "application/vnd.oci.image.manifest.v1+json"
sourceTag: "staging-v0.0.1-a1b2c3d-1738860123"
tracedTag: "staging-v0.0.1-a1b2c3d-1738860123"
immutableTag: "production-v0.0.1-a1b2c3d-1738861000"
targetTags:
  - "production-v0.0.1-a1b2c3d-1738861000"
  - "production"
sourceSha: "a1b2c3d"
previousRelease: "none"
sourceShaRange: "a1b2c3d"
promotedAt: "2025-02-06T17:10:00Z"
promotedBy: "alice"
forced: false
gates:
  sourceDeployed:
    passed: true
    detail: "Git points staging at staging-v0.0.1 [flux/apps/backend/staging/deployment.yaml:20]"
  soak:
    required: "1h0m0s"
    since: "2025-02-06T16:00:00Z"
    commit: "0123abcd"
  approval:
    by: "carol \"c\" \\ o"
    at: "2025-02-06T16:30:00Z"
    tag: "staging-v0.0.1-a1b2c3d-1738860123"
"#;

    /// An approval as `ferry approve` wrote it before the serde types.
    const OLD_APPROVAL: &str = r#"# Approval recorded by `ferry approve` (docs/promotion.md).
app: "backend"
environment: "production"
tag: "staging-v0.0.1-a1b2c3d-1738860123"
approvedBy: "carol"
approvedAt: "2025-02-06T16:30:00Z"
"#;

    #[test]
    fn an_old_record_reads_and_renders_to_the_same_bytes() {
        let r = ReleaseRecord::parse(OLD_RECORD, "releases/backend/production/x.yaml").unwrap();
        assert_eq!(r.app, "backend");
        assert_eq!(r.parsed_version().unwrap().to_string(), "0.0.1");
        assert_eq!(r.immutable_tag, "production-v0.0.1-a1b2c3d-1738861000");
        assert_eq!(r.target_tags.len(), 2);
        assert!(!r.forced);
        assert_eq!(
            r.gates.source_deployed.as_ref().map(|g| g.passed),
            Some(true)
        );
        assert_eq!(r.gates.soak.as_ref().unwrap().required, "1h0m0s");
        assert_eq!(r.gates.approval.as_ref().unwrap().by, "carol \"c\" \\ o");
        assert_eq!(r.render(), OLD_RECORD);
    }

    #[test]
    fn an_old_approval_reads_and_renders_to_the_same_bytes() {
        let a = Approval::parse(OLD_APPROVAL, "a.yaml").unwrap();
        assert_eq!(a.approved_by, "carol");
        assert_eq!(a.tag, "staging-v0.0.1-a1b2c3d-1738860123");
        assert_eq!(a.render(), OLD_APPROVAL);
    }

    #[test]
    fn values_with_yaml_syntax_round_trip() {
        let r = ReleaseRecord {
            version: "1.2.3".into(),
            source_sha: "a: b # c\n\t\"d\" \\ é \u{80}\u{feff}".into(),
            ..ReleaseRecord::default()
        };
        let back = ReleaseRecord::parse(&r.render(), "x").unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let path = "releases/backend/production/bad.yaml";
        for text in [
            "app: [\n",
            "forced: maybe\nversion: \"1.0.0\"\n",
            "version: \"one\"\n",
        ] {
            let e = ReleaseRecord::parse(text, path).unwrap_err().to_string();
            assert!(e.starts_with(path), "{e}");
        }
        let e = Approval::parse("- a\n- b\n", "releases/a/approvals/p/t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("releases/a/approvals/p/t.yaml: not a valid approval"),
            "{e}"
        );
    }
}
