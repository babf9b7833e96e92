//! Setter marker comments: `# {"$imagepolicy": "ns:name[:tag|:name|:digest]"}`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The JSON key of a Flux image-policy setter marker.
pub const MARKER_KEY: &str = "$imagepolicy";

/// The literal token a file must contain to be parsed at all (Flux screens raw bytes for it).
pub const SCREEN_TOKEN: &[u8] = b"\"$imagepolicy\"";

/// Which part of the policy's latest image a marker sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetterField {
    /// `ns:name`: the full reference `name:tag[@digest]`.
    Full,
    /// `ns:name:tag`.
    Tag,
    /// `ns:name:name`: the repository name (`ImageRepository.spec.image`).
    Name,
    /// `ns:name:digest`: the digest, or `""` when the policy has none.
    Digest,
}

impl SetterField {
    /// The suffix used in the marker (`""` for [`SetterField::Full`]).
    pub fn suffix(self) -> &'static str {
        match self {
            SetterField::Full => "",
            SetterField::Tag => ":tag",
            SetterField::Name => ":name",
            SetterField::Digest => ":digest",
        }
    }
}

impl fmt::Display for SetterField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetterField::Full => "full",
            SetterField::Tag => "tag",
            SetterField::Name => "name",
            SetterField::Digest => "digest",
        })
    }
}

/// A parsed marker: the policy (`ns:name`) and the field it sets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Marker {
    /// `namespace:name` of the ImagePolicy.
    pub policy: String,
    pub field: SetterField,
    /// The marker value verbatim (the `Change.setter`), e.g. `flux-system:app:tag`.
    pub setter: String,
}

/// Parses the text of one YAML comment (including its leading `#` characters) the way Flux does:
/// strip every leading `#`, then the rest must be a JSON object whose values are all strings
/// (`null` values are tolerated like Go's decoder does); its `$imagepolicy` value must be
/// `ns:name` or `ns:name:{tag,name,digest}`. Anything else is an ordinary comment (`None`).
pub fn parse_marker_comment(comment: &str) -> Option<Marker> {
    let body = comment.trim_start_matches('#');
    // Cheap reject before JSON: most comments are not markers.
    if !body.contains(MARKER_KEY) {
        return None;
    }
    let map: BTreeMap<String, Option<String>> = serde_json::from_str(body).ok()?;
    let value = map.get(MARKER_KEY)?.as_deref()?;
    parse_setter(value)
}

/// Parses a marker value (`ns:name[:tag|:name|:digest]`) into a [`Marker`].
pub fn parse_setter(value: &str) -> Option<Marker> {
    let parts: Vec<&str> = value.split(':').collect();
    let field = match parts.as_slice() {
        [ns, name] if !ns.is_empty() && !name.is_empty() => SetterField::Full,
        [ns, name, f] if !ns.is_empty() && !name.is_empty() => match *f {
            "tag" => SetterField::Tag,
            "name" => SetterField::Name,
            "digest" => SetterField::Digest,
            _ => return None,
        },
        _ => return None,
    };
    Some(Marker {
        policy: format!("{}:{}", parts[0], parts[1]),
        field,
        setter: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: &str) -> Option<(String, SetterField)> {
        parse_marker_comment(c).map(|m| (m.policy, m.field))
    }

    #[test]
    fn marker_forms() {
        let full = Some(("ns:app".to_string(), SetterField::Full));
        assert_eq!(m(r#"# {"$imagepolicy": "ns:app"}"#), full);
        assert_eq!(m(r#"#{"$imagepolicy":"ns:app"}"#), full);
        assert_eq!(m(r#"### {"$imagepolicy": "ns:app"}  "#), full);
        assert_eq!(m("# {\"$imagepolicy\": \"ns:app\"}\r"), full);
        assert_eq!(
            m(r#"# {"$imagepolicy": "ns:app:tag"}"#),
            Some(("ns:app".into(), SetterField::Tag))
        );
        assert_eq!(
            m(r#"# {"$imagepolicy": "ns:app:name"}"#),
            Some(("ns:app".into(), SetterField::Name))
        );
        assert_eq!(
            m(r#"# {"$imagepolicy": "ns:app:digest"}"#),
            Some(("ns:app".into(), SetterField::Digest))
        );
        // Extra string keys and null values are fine (Go map[string]string decoding).
        assert_eq!(
            m(r#"# {"x": "y", "$imagepolicy": "ns:app", "z": null}"#),
            full
        );
        // Duplicate keys: the last one wins, as in Go.
        assert_eq!(
            m(r#"# {"$imagepolicy": "a:b", "$imagepolicy": "ns:app"}"#),
            full
        );
    }

    #[test]
    fn not_markers() {
        for c in [
            "# plain comment",
            r#"# # {"$imagepolicy": "ns:app"}"#,
            r#"# {"$imagepolicy": "ns:app"} trailing"#,
            r#"# {'$imagepolicy': 'ns:app'}"#,
            r#"# {"$imagepolicy": "ns:app", "n": 1}"#,
            r#"# {"$imagepolicy": null}"#,
            r#"# {"$imagepolicy": ""}"#,
            r#"# {"$imagepolicy": "ns"}"#,
            r#"# {"$imagepolicy": "ns:app:version"}"#,
            r#"# {"$imagepolicy": "ns:app:tag:x"}"#,
            r#"# {"$imagepolicy": ":app"}"#,
            r#"# {"$ImagePolicy": "ns:app"}"#,
            "# {\"$imagepolicy\": \"ns:app\"}\n# second line",
            r#"# ["$imagepolicy"]"#,
        ] {
            assert_eq!(m(c), None, "{c}");
        }
    }
}
