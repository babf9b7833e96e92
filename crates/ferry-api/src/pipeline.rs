//! Ferry's own `ferry.dev/v1alpha1` Pipeline and the core `v1` Namespace.

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::meta::{NamespacedObjectReference, ObjectMeta, ObjectRef, Source};
use crate::object::{Object, Spec};

/// API version of Ferry's kinds.
pub const FERRY_API_VERSION: &str = "ferry.dev/v1alpha1";

/// A Ferry `Pipeline`: the ordered promotion stages of one image.
pub type Pipeline = Object<PipelineSpec>;

/// `Pipeline.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// The ImageRepository whose image is promoted (name required).
    #[serde(default)]
    pub image_repository_ref: NamespacedObjectReference,
    /// Stages in promotion order (at least one).
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// One promotion stage (environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Stage name, unique within the pipeline (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the stage's ImagePolicy (required).
    #[serde(default)]
    pub namespace: String,
    /// Name of the stage's ImagePolicy (required).
    #[serde(default)]
    pub policy: String,
    /// Template for the tag written when promoting into this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_template: Option<String>,
    /// Moving alias tag (e.g. `production`) retagged on promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Conditions for promoting into this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Gates>,
}

/// Promotion gates of a stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gates {
    /// Minimum time the candidate must have spent in the previous stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<GoDuration>,
    /// Whether an explicit approval is required.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}

impl Spec for PipelineSpec {
    const KIND: &'static str = "Pipeline";
    const API_VERSION: &'static str = FERRY_API_VERSION;
}

impl PipelineSpec {
    /// Problems that make the Pipeline unusable for promotion, beyond the required fields the
    /// loader checks: unknown or missing tag-template placeholders, aliases that are not valid
    /// OCI tags or are shared by two stages, a soak or approval gate on the first stage (nothing
    /// is promoted into it). Empty when the Pipeline is valid.
    pub fn promotion_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut aliases: Vec<(&str, usize)> = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            if let Some(t) = &stage.tag_template
                && let Err(e) = check_tag_template(t)
            {
                out.push(format!("spec.stages[{i}].tagTemplate: {e}"));
            }
            let alias = stage.alias.as_deref().unwrap_or(&stage.name);
            if !is_valid_tag(alias) {
                out.push(format!(
                    "spec.stages[{i}].alias {alias:?} is not a valid image tag"
                ));
            }
            if let Some((_, first)) = aliases.iter().find(|(a, _)| *a == alias) {
                out.push(format!(
                    "spec.stages[{i}] alias {alias:?} is also the alias of spec.stages[{first}]"
                ));
            }
            aliases.push((alias, i));
            if i == 0
                && let Some(g) = &stage.gates
                && (g.approval || g.soak.is_some())
            {
                out.push(
                    "spec.stages[0].gates: the first stage has no promotion into it, so gates there never apply"
                        .to_string(),
                );
            }
        }
        out
    }
}

/// Placeholders a tag template may use.
const PLACEHOLDERS: [&str; 4] = ["env", "version", "sha7", "ts"];

fn check_tag_template(t: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("{t:?}: '{{' without '}}'"))?;
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "{t:?}: unknown placeholder {{{name}}} (known: {{env}}, {{version}}, {{sha7}}, {{ts}})"
            ));
        }
        seen.push(name.to_string());
        rest = &rest[open + close + 1..];
    }
    for required in ["version", "sha7"] {
        if !seen.iter().any(|s| s == required) {
            return Err(format!("{t:?} must contain {{{required}}}"));
        }
    }
    if t.contains("}{") {
        return Err(format!(
            "{t:?}: placeholders must be separated by literal text"
        ));
    }
    Ok(())
}

/// OCI tag grammar: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod promotion_tests {
    use super::*;

    fn stage(name: &str, template: Option<&str>, alias: Option<&str>) -> Stage {
        Stage {
            name: name.into(),
            namespace: name.into(),
            policy: "app".into(),
            tag_template: template.map(String::from),
            alias: alias.map(String::from),
            gates: None,
        }
    }

    #[test]
    fn promotion_problems_are_reported() {
        let ok = PipelineSpec {
            image_repository_ref: NamespacedObjectReference::default(),
            stages: vec![
                stage("staging", None, None),
                stage(
                    "production",
                    Some("prod-v{version}-{sha7}-{ts}"),
                    Some("prod"),
                ),
            ],
        };
        assert!(ok.promotion_problems().is_empty());
        let bad = PipelineSpec {
            image_repository_ref: NamespacedObjectReference::default(),
            stages: vec![
                stage("staging", Some("{env}-{ts}"), Some("same")),
                stage(
                    "production",
                    Some("{env}-{version}-{sha7}-{bogus}"),
                    Some("same"),
                ),
                stage("qa", None, Some("-bad")),
            ],
        };
        let p = bad.promotion_problems();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("must contain {version}"));
        assert!(p[1].contains("unknown placeholder {bogus}"));
        assert!(p[2].contains("also the alias"));
        assert!(p[3].contains("not a valid image tag"));
    }
}

/// A core `v1` Namespace (only its labels matter to Ferry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Metadata; `namespace` is empty (cluster-scoped). `labels` include the
    /// `kubernetes.io/metadata.name` label the API server adds to every namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Where it was read from.
    #[serde(skip)]
    pub source: Source,
}

impl Namespace {
    /// Kind name.
    pub const KIND: &'static str = "Namespace";

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// `Namespace name` identity.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(Self::KIND, "", &self.metadata.name)
    }
}
