//! Machine-readable git trailers on every commit Ferry makes (format in `docs/trailers.md`).
//!
//! ```text
//! Ferry-Kind: automation
//! Ferry-Automation: flux-system/backend-staging
//! Ferry-Change: policy=staging/backend setter=staging:backend old=reg/backend:staging-v1.0.0-aaaaaaa-1 new=reg/backend:staging-v1.0.1-bbbbbbb-2
//! ```
//!
//! Values are space-separated `key=value` pairs; image references and tags never contain spaces,
//! and an empty old value is written as `old=` (a field that had no value).

use ferry_setters::Change;

pub const KIND: &str = "Ferry-Kind";
pub const AUTOMATION: &str = "Ferry-Automation";
pub const CHANGE: &str = "Ferry-Change";

/// One `Ferry-Change` trailer: a setter of a policy moved from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ChangeTrailer {
    /// `namespace/name` of the ImagePolicy.
    pub policy: String,
    /// The full marker value, e.g. `staging:backend:tag`.
    pub setter: String,
    pub old: String,
    pub new: String,
}

impl ChangeTrailer {
    /// From a setter change; the policy is the marker's `ns:name` prefix.
    pub fn from_change(change: &Change) -> ChangeTrailer {
        let mut parts = change.setter.splitn(3, ':');
        let ns = parts.next().unwrap_or_default();
        let name = parts.next().unwrap_or_default();
        ChangeTrailer {
            policy: format!("{ns}/{name}"),
            setter: change.setter.clone(),
            old: change.old_value.clone(),
            new: change.new_value.clone(),
        }
    }

    pub fn to_value(&self) -> String {
        format!(
            "policy={} setter={} old={} new={}",
            escape(&self.policy),
            escape(&self.setter),
            escape(&self.old),
            escape(&self.new)
        )
    }

    /// Parses a `Ferry-Change` value; `None` when a field is missing.
    pub fn parse(value: &str) -> Option<ChangeTrailer> {
        let mut policy = None;
        let mut setter = None;
        let mut old = None;
        let mut new = None;
        for field in value.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            match k {
                "policy" => policy = Some(unescape(v)),
                "setter" => setter = Some(unescape(v)),
                "old" => old = Some(unescape(v)),
                "new" => new = Some(unescape(v)),
                _ => {}
            }
        }
        Some(ChangeTrailer {
            policy: policy?,
            setter: setter?,
            old: old?,
            new: new?,
        })
    }
}

/// Percent-encodes `%`, whitespace and control characters, so a value read from a marked
/// scalar (which may hold anything) stays one space-free field on one trailer line.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c == '%' || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`]; a `%` not followed by two hex digits is kept as written.
fn unescape(v: &str) -> String {
    if !v.contains('%') {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The trailers of an automation commit, one `Ferry-Change` per distinct change, sorted.
pub fn automation_trailers(automation: &str, changes: &[Change]) -> Vec<(String, String)> {
    let mut list: Vec<ChangeTrailer> = changes.iter().map(ChangeTrailer::from_change).collect();
    list.sort();
    list.dedup();
    let mut out = vec![
        (KIND.to_string(), "automation".to_string()),
        (AUTOMATION.to_string(), automation.to_string()),
    ];
    out.extend(list.into_iter().map(|c| (CHANGE.to_string(), c.to_value())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_round_trips() {
        let c = Change {
            old_value: "r/app:1".into(),
            new_value: "r/app:2".into(),
            setter: "staging:app".into(),
        };
        let t = ChangeTrailer::from_change(&c);
        assert_eq!(t.policy, "staging/app");
        assert_eq!(ChangeTrailer::parse(&t.to_value()), Some(t));
    }

    #[test]
    fn empty_old_value_parses() {
        let t = ChangeTrailer::parse("policy=a/b setter=a:b:digest old= new=sha256:00").unwrap();
        assert_eq!(t.old, "");
        assert!(ChangeTrailer::parse("policy=a/b old=x").is_none());
    }

    #[test]
    fn values_with_spaces_newlines_or_percent_stay_one_field() {
        // A marked scalar may hold anything; its trailer stays one line of space-free fields.
        let t = ChangeTrailer {
            policy: "a/b".into(),
            setter: "a:b:tag".into(),
            old: "two words\nFerry-Kind: rollback\t100%".into(),
            new: "v2".into(),
        };
        let v = t.to_value();
        assert_eq!(
            v,
            "policy=a/b setter=a:b:tag old=two%20words%0AFerry-Kind:%20rollback%09100%25 new=v2"
        );
        assert_eq!(ChangeTrailer::parse(&v), Some(t));
    }

    #[test]
    fn automation_trailers_are_sorted_and_deduplicated() {
        let c1 = Change {
            old_value: "1".into(),
            new_value: "2".into(),
            setter: "ns:b:tag".into(),
        };
        let c0 = Change {
            old_value: "1".into(),
            new_value: "2".into(),
            setter: "ns:a:tag".into(),
        };
        let t = automation_trailers("ns/auto", &[c1.clone(), c0, c1]);
        assert_eq!(t.len(), 4);
        assert_eq!(t[0], (KIND.into(), "automation".into()));
        assert!(t[2].1.starts_with("policy=ns/a "));
    }
}
