//! What a policy's setter markers hold, in a work tree or in one file's bytes at some commit.

use std::path::Path;

use ferry_setters::{ImageRef, MarkerSite, PolicyValues, SetterField};

/// The image an environment runs according to the markers of one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct MarkerState {
    /// The image name (without tag), when a full or `:name` marker says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `sha256:…`, when a full reference pins one or a `:digest` marker is non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl MarkerState {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.tag.is_none() && self.digest.is_none()
    }

    pub fn tag_str(&self) -> &str {
        self.tag.as_deref().unwrap_or_default()
    }

    /// `name:tag[@digest]`, as far as known.
    pub fn reference(&self) -> String {
        let mut s = match (&self.name, &self.tag) {
            (Some(n), Some(t)) => format!("{n}:{t}"),
            (Some(n), None) => n.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        };
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The value to hand to the setters to write this state back (`fallback_name` when the
    /// markers never said the name: then no marker writes it anyway).
    pub fn image_ref(&self, fallback_name: &str) -> ImageRef {
        ImageRef {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| fallback_name.to_string()),
            tag: self.tag.clone().unwrap_or_default(),
            digest: self.digest.clone(),
        }
    }

    /// Builds the state from `(field, value)` pairs in document order: a full reference wins,
    /// then the separate `:tag`, `:name` and `:digest` markers fill what is missing.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = (SetterField, &'a str)>,
    ) -> MarkerState {
        let mut full = MarkerState::default();
        let mut parts = MarkerState::default();
        for (field, value) in values {
            match field {
                SetterField::Full => {
                    if full.is_empty() {
                        full = parse_reference(value);
                    }
                }
                SetterField::Tag => {
                    parts.tag.get_or_insert_with(|| value.to_string());
                }
                SetterField::Name => {
                    parts.name.get_or_insert_with(|| value.to_string());
                }
                SetterField::Digest => {
                    if !value.is_empty() {
                        parts.digest.get_or_insert_with(|| value.to_string());
                    }
                }
            }
        }
        MarkerState {
            name: full.name.or(parts.name),
            tag: full.tag.or(parts.tag),
            digest: full.digest.or(parts.digest),
        }
    }
}

/// The parts of a marked `name:tag[@digest]` value (`ferry_core::split_reference`).
pub fn parse_reference(value: &str) -> MarkerState {
    let parts = ferry_core::split_reference(value);
    MarkerState {
        name: Some(parts.name.to_string()).filter(|n| !n.is_empty()),
        tag: parts.tag.map(String::from),
        digest: parts.digest.map(String::from),
    }
}

/// The state held by the markers of `policy` (`ns:name`) among scanned sites.
pub fn state_of_sites(sites: &[MarkerSite], policy: &str) -> MarkerState {
    let mut mine: Vec<&MarkerSite> = sites.iter().filter(|s| s.policy == policy).collect();
    mine.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    MarkerState::from_values(mine.iter().map(|s| (s.field, s.value.as_str())))
}

/// A value no real image, tag or digest can equal: applying it reports every marker of the
/// policy as changed, with its current value as the old value.
fn sentinel_values(policy: &str) -> PolicyValues {
    let mut values = PolicyValues::new();
    values.insert(
        policy.to_string(),
        ImageRef {
            name: "ferry.invalid/sentinel".into(),
            tag: "ferry-sentinel".into(),
            digest: Some("sha256:ferry-sentinel".into()),
        },
    );
    values
}

/// The `(field, value)` pairs of `policy`'s markers in one file's bytes, in document order.
/// Files Flux could not read hold no markers (as Flux skips them).
pub fn values_in_bytes(bytes: &[u8], policy: &str) -> Vec<(SetterField, String)> {
    let Ok(update) = ferry_setters::update_bytes(bytes, &sentinel_values(policy)) else {
        return Vec::new();
    };
    update
        .changes
        .into_iter()
        .filter_map(|(_, c)| {
            let marker = ferry_setters::parse_setter(&c.setter)?;
            (marker.policy == policy).then_some((marker.field, c.old_value))
        })
        .collect()
}

/// Marker sites of every policy under `root` (a directory or a file).
pub fn scan(root: &Path) -> Result<Vec<MarkerSite>, ferry_setters::SetterError> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    ferry_setters::scan_markers(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag() {
        let s = parse_reference("127.0.0.1:5000/org/app:v1@sha256:ab");
        assert_eq!(s.name.as_deref(), Some("127.0.0.1:5000/org/app"));
        assert_eq!(s.tag.as_deref(), Some("v1"));
        assert_eq!(s.digest.as_deref(), Some("sha256:ab"));
        let s = parse_reference("127.0.0.1:5000/org/app");
        assert_eq!(s.tag, None);
        assert_eq!(s.reference(), "127.0.0.1:5000/org/app");
    }

    #[test]
    fn bytes_give_marker_values_in_order() {
        let y = b"a:\n  image: r/app:v1 # {\"$imagepolicy\": \"ns:app\"}\n  tag: v9 # {\"$imagepolicy\": \"ns:app:tag\"}\n  other: r/o:1 # {\"$imagepolicy\": \"ns:other\"}\n";
        let v = values_in_bytes(y, "ns:app");
        assert_eq!(v.len(), 2);
        let st = MarkerState::from_values(v.iter().map(|(f, s)| (*f, s.as_str())));
        assert_eq!(st.tag.as_deref(), Some("v1"));
        assert_eq!(st.name.as_deref(), Some("r/app"));
        let st = MarkerState::from_values(
            values_in_bytes(b"tag: v2 # {\"$imagepolicy\": \"ns:app:tag\"}\n", "ns:app")
                .iter()
                .map(|(f, s)| (*f, s.as_str())),
        );
        assert_eq!(st.tag.as_deref(), Some("v2"));
        assert!(values_in_bytes(b"{{ not yaml", "ns:app").is_empty());
    }
}
