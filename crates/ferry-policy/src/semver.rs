//! Masterminds/semver v3 semantics (coerce-mode parsing, precedence, constraints) plus the
//! fluxcd/pkg `version.ParseVersion` tag pre-check.
//!
//! The Rust `semver` crate follows npm rules (prereleases limited to the same `x.y.z`, no
//! dirty `>1.1` comparisons, strict parsing); Flux users rely on the Masterminds behaviour,
//! so it is re-implemented here from its documented semantics.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use thiserror::Error;

/// Why a version string is not a (coerce-mode) Masterminds version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VersionError {
    /// The text does not have the `v?MAJOR[.MINOR[.PATCH]][-PRE][+META]` shape.
    #[error("invalid semantic version: {0:?}")]
    Invalid(String),
    /// A major/minor/patch number does not fit in 64 bits.
    #[error("error parsing version segment of {0:?}: value out of range")]
    Segment(String),
    /// A numeric prerelease identifier has a leading zero (`1.2.3-beta.01`).
    #[error("version segment starts with 0: {0:?}")]
    SegmentStartsZero(String),
    /// fluxcd/pkg requires exactly three `.`-separated parts (`strings.SplitN(v, ".", 3)`).
    #[error("failed to parse version {0:?}: expected 3 dot-separated parts")]
    NotThreeParts(String),
}

/// A Masterminds v3 version. Ordering and equality ignore build metadata.
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

impl Version {
    /// Masterminds `NewVersion` in coerce mode (the library default Flux uses): optional
    /// lowercase `v`, minor/patch may be omitted, leading zeros allowed in major/minor/patch,
    /// prerelease identifiers `[0-9A-Za-z-]+` (numeric ones without leading zero), build
    /// identifiers `[0-9A-Za-z-]+`.
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let invalid = || VersionError::Invalid(s.to_owned());
        let b = s.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'v'));
        let digits = |i: &mut usize| -> Option<(usize, usize)> {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            (*i > start).then_some((start, *i))
        };
        let major = digits(&mut i).ok_or_else(invalid)?;
        let mut minor = None;
        let mut patch = None;
        if b.get(i) == Some(&b'.') {
            i += 1;
            minor = Some(digits(&mut i).ok_or_else(invalid)?);
            if b.get(i) == Some(&b'.') {
                i += 1;
                patch = Some(digits(&mut i).ok_or_else(invalid)?);
            }
        }
        let mut pre = (0, 0);
        if b.get(i) == Some(&b'-') {
            i += 1;
            let start = i;
            while i < b.len() && b[i] != b'+' {
                i += 1;
            }
            pre = (start, i);
            if !identifiers_ok(&s[start..i]) {
                return Err(invalid());
            }
        }
        let mut meta = (0, 0);
        if b.get(i) == Some(&b'+') {
            i += 1;
            meta = (i, b.len());
            if !identifiers_ok(&s[i..]) {
                return Err(invalid());
            }
            i = b.len();
        }
        if i != b.len() {
            return Err(invalid());
        }
        let num = |r: Option<(usize, usize)>| -> Result<u64, VersionError> {
            match r {
                None => Ok(0),
                Some((a, e)) => s[a..e]
                    .parse()
                    .map_err(|_| VersionError::Segment(s.to_owned())),
            }
        };
        let pre_str = &s[pre.0..pre.1];
        for part in pre_str.split('.') {
            if part.len() > 1 && part.starts_with('0') && part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(VersionError::SegmentStartsZero(s.to_owned()));
            }
        }
        Ok(Version {
            major: num(Some(major))?,
            minor: num(minor)?,
            patch: num(patch)?,
            pre: pre_str.to_owned(),
            metadata: s[meta.0..meta.1].to_owned(),
            original: s.to_owned(),
        })
    }

    /// fluxcd/pkg `version.ParseVersion`, the parser the SemVer policy applies to every tag:
    /// `strings.SplitN(tag, ".", 3)` must yield exactly three parts (dots inside a prerelease
    /// count, so `1.2-beta.5` passes), then [`Version::parse`].
    pub fn parse_flux_tag(tag: &str) -> Result<Version, VersionError> {
        if tag.bytes().filter(|&c| c == b'.').count() < 2 {
            return Err(VersionError::NotThreeParts(tag.to_owned()));
        }
        Version::parse(tag)
    }

    /// The string this version was parsed from.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Major number.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// Minor number (0 when omitted).
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// Patch number (0 when omitted).
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// Prerelease without the leading `-` (empty when none).
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// Build metadata without the leading `+` (empty when none).
    pub fn metadata(&self) -> &str {
        &self.metadata
    }

    fn compare(&self, o: &Version) -> Ordering {
        self.major
            .cmp(&o.major)
            .then(self.minor.cmp(&o.minor))
            .then(self.patch.cmp(&o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }
}

impl fmt::Display for Version {
    /// Canonical form `MAJOR.MINOR.PATCH[-PRE][+META]` (use [`Version::original`] for the input).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

/// Dot-separated identifiers, each non-empty and `[0-9A-Za-z-]`.
fn identifiers_ok(s: &str) -> bool {
    s.split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

/// Prerelease precedence: part by part; both numeric (u64) → numeric, numeric < alphanumeric,
/// both alphanumeric → byte order, a missing part sorts before a present one.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                if x == y {
                    continue;
                }
                let d = match (numeric(x), numeric(y)) {
                    (Some(p), Some(q)) => p.cmp(&q),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.as_bytes().cmp(y.as_bytes()),
                };
                if d != Ordering::Equal {
                    return d;
                }
            }
        }
    }
}

/// Go `strconv.ParseUint(s, 10, 64)` on a prerelease identifier (no sign possible there).
fn numeric(s: &str) -> Option<u64> {
    if s.bytes().all(|c| c.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Why a range string is not a valid Masterminds constraint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConstraintError {
    /// An OR group does not match the constraint grammar.
    #[error("improper constraint: {0}")]
    Improper(String),
    /// The grammar matched but the version inside does not parse (e.g. `1x`, `1.2.3-beta.01`).
    #[error("constraint Parser Error")]
    Parser,
}

const WS: &str = r"[\t\n\f\r ]";
const OPS: &str = r"(>=|=>|<=|=<|~>|!=|=|>|<|~|\^|)";
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";

fn re(pattern: String) -> Regex {
    // The patterns are compile-time constants; failure is a programming error caught by tests.
    Regex::new(&pattern).unwrap_or_else(|e| panic!("static constraint pattern: {e}"))
}

static RANGE_RE: LazyLock<Regex> =
    LazyLock::new(|| re(format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")));
static VALID_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"^({WS}*{OPS}{WS}*({CV}){WS}*)((?:{WS}+|,{WS}*){OPS}{WS}*({CV}){WS}*)*$"
    ))
});
static FIND_RE: LazyLock<Regex> = LazyLock::new(|| re(format!(r"{OPS}{WS}*({CV})")));
static ONE_RE: LazyLock<Regex> = LazyLock::new(|| re(format!(r"^{WS}*{OPS}{WS}*({CV}){WS}*$")));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// One comparison (`>=1.2`, `~1.x`, `^2`, ...) of a constraint group.
#[derive(Debug, Clone)]
pub struct Constraint {
    op: Op,
    con: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
    orig: String,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Constraint {
    /// Parses a single comparison. Unlike [`Constraints::parse`], the empty string is accepted
    /// and means "any release version" (Masterminds' special case; Flux never reaches it
    /// because the empty range is rejected by the group grammar).
    pub fn parse(c: &str) -> Result<Constraint, ConstraintError> {
        if c.is_empty() {
            return Ok(Constraint {
                op: Op::TildeOrEqual,
                con: Version::parse("0.0.0").map_err(|_| ConstraintError::Parser)?,
                dirty: true,
                minor_dirty: false,
                patch_dirty: false,
                orig: String::new(),
            });
        }
        let m = ONE_RE
            .captures(c)
            .ok_or_else(|| ConstraintError::Improper(c.to_owned()))?;
        let g = |i: usize| m.get(i).map_or("", |x| x.as_str());
        let op = match g(1) {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            _ => Op::Caret,
        };
        let (major, minor, patch, pre) = (g(3), g(4), g(5), g(6));
        let strip = |s: &'_ str| s.strip_prefix('.').unwrap_or(s).to_owned();
        // A wildcard or missing part makes the comparison "dirty": the version is completed
        // with zeros and the operators widen accordingly (`>1.1` means `>=1.2.0`).
        let (ver, dirty, minor_dirty, patch_dirty) = if is_x(major) {
            (format!("0.0.0{pre}"), true, false, false)
        } else if minor.is_empty() || is_x(&strip(minor)) {
            (format!("{major}.0.0{pre}"), true, true, false)
        } else if patch.is_empty() || is_x(&strip(patch)) {
            (format!("{major}{minor}.0{pre}"), true, false, true)
        } else {
            (g(2).to_owned(), false, false, false)
        };
        let con = Version::parse(&ver).map_err(|_| ConstraintError::Parser)?;
        Ok(Constraint {
            op,
            con,
            dirty,
            minor_dirty,
            patch_dirty,
            orig: g(2).to_owned(),
        })
    }

    /// Whether this comparison carries a prerelease (which opts its group into prereleases).
    pub fn has_prerelease(&self) -> bool {
        !self.con.pre.is_empty()
    }

    /// Masterminds `constraint.check(v, includePre)`.
    pub fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.con;
        match self.op {
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v == c
                }
            }
            Op::NotEqual => self.not_equal(v),
            Op::Greater => {
                if !self.dirty || v.major == c.major && !self.minor_dirty && !self.patch_dirty {
                    return v > c;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                // `>11` needs 12+, `>11.1` needs 11.2+.
                !self.minor_dirty && v.minor > c.minor
            }
            Op::Less => v < c,
            Op::GreaterEqual => v >= c,
            Op::LessEqual => {
                if !self.dirty {
                    return v <= c;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if self.minor_dirty {
                return false;
            }
            if c.minor != v.minor {
                return true;
            }
            if self.patch_dirty {
                if !v.pre.is_empty() || !c.pre.is_empty() {
                    return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                }
                return false;
            }
            if c.patch != v.patch {
                return true;
            }
        }
        v != c
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v < c {
            return false;
        }
        // `~0.0.0` / `~*` accept everything at or above 0.0.0.
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        self.minor_dirty || v.minor == c.minor
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.con;
        if v < c {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.orig)
    }
}

/// A Masterminds constraint: OR groups (`||`) of AND-ed comparisons.
#[derive(Debug, Clone)]
pub struct Constraints {
    groups: Vec<Vec<Constraint>>,
    group_has_pre: Vec<bool>,
    original: String,
}

impl Constraints {
    /// Masterminds `NewConstraint`: hyphen ranges `A - B` become `>= A, <= B`, `||` splits OR
    /// groups, comparisons in a group are separated by whitespace or commas.
    pub fn parse(range: &str) -> Result<Constraints, ConstraintError> {
        let rewritten = rewrite_ranges(range);
        let mut groups = Vec::new();
        let mut group_has_pre = Vec::new();
        for segment in rewritten.split("||") {
            if !VALID_RE.is_match(segment) {
                return Err(ConstraintError::Improper(segment.to_owned()));
            }
            let mut group = Vec::new();
            for m in FIND_RE.find_iter(segment) {
                group.push(Constraint::parse(m.as_str())?);
            }
            if group.is_empty() {
                group.push(Constraint::parse(segment)?);
            }
            group_has_pre.push(group.iter().any(Constraint::has_prerelease));
            groups.push(group);
        }
        Ok(Constraints {
            groups,
            group_has_pre,
            original: range.to_owned(),
        })
    }

    /// Masterminds `Check` as Flux calls it (`IncludePrerelease` unset): true iff some OR group
    /// accepts `v`; a prerelease `v` needs a prerelease comparison in that group.
    pub fn check(&self, v: &Version) -> bool {
        self.groups
            .iter()
            .zip(&self.group_has_pre)
            .any(|(group, &pre)| group.iter().all(|c| c.check(v, pre)))
    }

    /// Number of OR groups and the comparisons of each (for diagnostics and tests).
    pub fn groups(&self) -> impl Iterator<Item = &[Constraint]> {
        self.groups.iter().map(Vec::as_slice)
    }

    /// The range string as given.
    pub fn original(&self) -> &str {
        &self.original
    }
}

impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// `A - B` → `>= A, <= B ` (each match replaced once, in order, like Masterminds).
fn rewrite_ranges(s: &str) -> String {
    let mut out = s.to_owned();
    for m in RANGE_RE.captures_iter(s) {
        let (Some(whole), Some(a), Some(b)) = (m.get(0), m.get(1), m.get(11)) else {
            continue;
        };
        let replacement = format!(">= {}, <= {} ", a.as_str(), b.as_str());
        out = out.replacen(whole.as_str(), &replacement, 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loose_versions() {
        let v = Version::parse("v2025.07.03").unwrap();
        assert_eq!((v.major(), v.minor(), v.patch()), (2025, 7, 3));
        assert_eq!(v.original(), "v2025.07.03");
        assert!(Version::parse("1.2.3-beta.01").is_err());
        assert!(Version::parse("1.2.3-0abc").is_ok());
        assert!(Version::parse("18446744073709551616.0.0").is_err());
        assert!(Version::parse("V1.2.3").is_err());
        assert!(Version::parse("1.2.").is_err());
        assert!(Version::parse("1.2.3-").is_err());
        assert!(Version::parse("1.2.3+").is_err());
        assert_eq!(
            Version::parse("1.2-beta.5").unwrap().to_string(),
            "1.2.0-beta.5"
        );
    }

    #[test]
    fn flux_tag_needs_three_parts() {
        assert!(Version::parse_flux_tag("1.2-beta.5").is_ok());
        assert!(Version::parse_flux_tag("1.2").is_err());
        assert!(Version::parse_flux_tag("1.2.3.4").is_err());
    }

    #[test]
    fn prerelease_order() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.0.0-rc10") < v("1.0.0-rc9"));
        assert!(v("1.0.0-rc.10") > v("1.0.0-rc.9"));
        assert_eq!(v("1.2+bar"), v("1.2+baz"));
    }
}
