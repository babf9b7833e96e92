//! ImageRepository scan bookkeeping: exclusion list, stored order, `latestTags`, revision
//! checksums and the `shouldScan` decision (Flux IRC `imagerepository_controller.go`).

use std::time::{Duration, SystemTime};

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::error::PolicyError;

/// The exclusion applied when `spec.exclusionList` is empty: cosign signature tags.
pub const DEFAULT_EXCLUSION: &str = "^.*\\.sig$";

/// How many tags `status.lastScanResult.latestTags` holds.
pub const LATEST_TAGS_COUNT: usize = 10;

/// `GetExclusionList()`: the user's list **replaces** the default; empty means the default.
pub fn effective_exclusion_list(user: &[String]) -> Vec<String> {
    if user.is_empty() {
        vec![DEFAULT_EXCLUSION.to_owned()]
    } else {
        user.to_vec()
    }
}

/// Compiled exclusion patterns.
#[derive(Debug, Clone)]
pub struct Exclusions {
    patterns: Vec<Regex>,
}

impl Exclusions {
    /// Compiles every pattern (Go RE2 syntax, unanchored). The first invalid one fails with
    /// Flux's `failed to compile regex <p>: ...`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Exclusions, PolicyError> {
        let patterns = patterns
            .iter()
            .map(|p| {
                let p = p.as_ref();
                Regex::new(p).map_err(|e| PolicyError::InvalidExclusion {
                    pattern: p.to_owned(),
                    message: e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Exclusions { patterns })
    }

    /// True when any pattern matches somewhere in `tag`.
    pub fn excludes(&self, tag: &str) -> bool {
        self.patterns.iter().any(|r| r.is_match(tag))
    }
}

/// Drops every tag matched by any pattern, keeping input order (Flux `filterOutTags`).
pub fn apply_exclusions<S: AsRef<str>>(
    tags: &[S],
    patterns: &[String],
) -> Result<Vec<String>, PolicyError> {
    let ex = Exclusions::new(patterns)?;
    Ok(tags
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| !ex.excludes(t))
        .map(str::to_owned)
        .collect())
}

/// Sorts into store order: descending byte-wise (stable; equal tags keep their order).
pub fn sort_desc(tags: &mut [String]) {
    tags.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
}

/// `lastScanResult.latestTags`: the first 10 tags in store order (any input order accepted).
/// Empty input gives an empty list (Flux omits the field).
pub fn latest_tags(tags: &[String]) -> Vec<String> {
    let mut sorted = tags.to_vec();
    sort_desc(&mut sorted);
    sorted.truncate(LATEST_TAGS_COUNT);
    sorted
}

/// `lastScanResult.revision` of the default Badger store: decimal Adler-32 of the compact Go
/// JSON encoding of the stored list (an empty list encodes as `[]`).
pub fn revision_adler32<S: AsRef<str>>(stored: &[S]) -> String {
    let mut json =
        String::with_capacity(stored.iter().map(|t| t.as_ref().len() + 3).sum::<usize>() + 2);
    json.push('[');
    for (i, t) in stored.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        go_json_string(&mut json, t.as_ref());
    }
    json.push(']');
    adler::adler32_slice(json.as_bytes()).to_string()
}

/// `lastScanResult.revision` of the FluxStorage backend: `sha256:` + hex of `tag\n` lines.
pub fn revision_sha256<S: AsRef<str>>(stored: &[S]) -> String {
    let mut h = Sha256::new();
    for t in stored {
        h.update(t.as_ref().as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Go `encoding/json` string encoding (HTML-safe escapes included).
fn go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Result of a scan: the list to store plus the status fields derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// Tags to store, in store order (descending bytes).
    pub stored: Vec<String>,
    /// `lastScanResult.latestTags`.
    pub latest_tags: Vec<String>,
    /// `lastScanResult.tagCount`.
    pub tag_count: usize,
}

/// Exclusion, then sort: the pure part of a scan after listing the registry.
pub fn process_scan<S: AsRef<str>>(
    listed: &[S],
    exclusion_list: &[String],
) -> Result<ScanResult, PolicyError> {
    let mut stored = apply_exclusions(listed, exclusion_list)?;
    sort_desc(&mut stored);
    let latest_tags = stored.iter().take(LATEST_TAGS_COUNT).cloned().collect();
    Ok(ScanResult {
        tag_count: stored.len(),
        stored,
        latest_tags,
    })
}

/// Why a scan happens now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanReason {
    /// No `lastScanResult` yet.
    FirstScan,
    /// The `reconcile.fluxcd.io/requestedAt` token is new.
    ReconcileRequested,
    /// The canonical image name changed.
    NewImageName,
    /// The effective exclusion list differs from the observed one.
    UpdatedExclusionList,
    /// The tag store has nothing for this repository.
    NoTagsInDatabase,
    /// Less than a second of the interval remains.
    TriggeredByInterval,
}

impl ScanReason {
    /// Flux's wording (used in events).
    pub fn as_str(self) -> &'static str {
        match self {
            ScanReason::FirstScan => "first scan",
            ScanReason::ReconcileRequested => "reconcile requested",
            ScanReason::NewImageName => "new image name",
            ScanReason::UpdatedExclusionList => "updated exclusion list",
            ScanReason::NoTagsInDatabase => "no tags in database",
            ScanReason::TriggeredByInterval => "triggered by interval",
        }
    }
}

/// The decision: scan now (with why) or not, and when to requeue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanDecision {
    /// `Some(reason)` = scan now; `None` = nothing to do.
    pub reason: Option<ScanReason>,
    /// RequeueAfter: the interval when scanning, else the remaining time.
    pub next: Duration,
}

/// The ImageRepository fields `shouldScan` reads.
#[derive(Debug, Clone, Copy)]
pub struct ScanState<'a> {
    /// `spec.interval`.
    pub interval: Duration,
    /// Canonical name of `spec.image` (computed by the registry layer).
    pub canonical_image_name: &'a str,
    /// `spec.exclusionList` as written (the default is applied here).
    pub exclusion_list: &'a [String],
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation, if any.
    pub requested_at: Option<&'a str>,
    /// `status.lastHandledReconcileAt`.
    pub last_handled_reconcile_at: Option<&'a str>,
    /// `status.canonicalImageName`.
    pub status_canonical_image_name: Option<&'a str>,
    /// `status.observedExclusionList`.
    pub observed_exclusion_list: &'a [String],
    /// `status.lastScanResult.scanTime`; `None` when there is no `lastScanResult`.
    pub last_scan_time: Option<SystemTime>,
}

/// Flux `shouldScan`: the first matching rule wins. `stored_tag_count` is only called when
/// the cheaper checks did not decide (its error aborts the decision; Flux reports Failure).
pub fn should_scan<E>(
    state: &ScanState<'_>,
    now: SystemTime,
    stored_tag_count: impl FnOnce() -> Result<usize, E>,
) -> Result<ScanDecision, E> {
    let scan = |r| {
        Ok(ScanDecision {
            reason: Some(r),
            next: state.interval,
        })
    };
    let Some(scan_time) = state.last_scan_time else {
        return scan(ScanReason::FirstScan);
    };
    if let Some(token) = state.requested_at
        && Some(token) != state.last_handled_reconcile_at
    {
        return scan(ScanReason::ReconcileRequested);
    }
    if state.status_canonical_image_name != Some(state.canonical_image_name) {
        return scan(ScanReason::NewImageName);
    }
    let effective = effective_exclusion_list(state.exclusion_list);
    if !same_elements(&effective, state.observed_exclusion_list) {
        return scan(ScanReason::UpdatedExclusionList);
    }
    if stored_tag_count()? == 0 {
        return scan(ScanReason::NoTagsInDatabase);
    }
    // remaining = interval - (now - scanTime), computed signed so a future scanTime is safe.
    let elapsed: i128 = match now.duration_since(scan_time) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let remaining = state.interval.as_nanos() as i128 - elapsed;
    if remaining < Duration::from_secs(1).as_nanos() as i128 {
        return scan(ScanReason::TriggeredByInterval);
    }
    let next = Duration::from_nanos(u64::try_from(remaining).unwrap_or(u64::MAX));
    Ok(ScanDecision { reason: None, next })
}

/// Same length and every element of `a` present in `b` (Flux `isEqualSliceContent`).
fn same_elements(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_like_go() {
        let mut s = String::new();
        go_json_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028""#);
    }

    #[test]
    fn empty_revision_is_of_empty_array() {
        let empty: [&str; 0] = [];
        assert_eq!(
            revision_adler32(&empty),
            adler::adler32_slice(b"[]").to_string()
        );
    }
}
