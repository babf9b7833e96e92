//! Kubernetes label selectors (`matchLabels` + `matchExpressions`), as used by
//! `ImageUpdateAutomation.spec.policySelector`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `metav1.LabelSelector`. An empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Every pair must be present with that exact value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Every requirement must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// Label key.
    #[serde(default)]
    pub key: String,
    /// Operator.
    #[serde(default)]
    pub operator: SelectorOperator,
    /// Values for `In`/`NotIn`; must be empty for `Exists`/`DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Selector operator. Unknown operators are kept (the schema does not restrict them) so that
/// the engine can report them on the object, as Flux does (`InvalidPolicySelector`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SelectorOperator {
    /// Label value is one of `values`.
    #[default]
    In,
    /// Label absent, or value not in `values`.
    NotIn,
    /// Label present.
    Exists,
    /// Label absent.
    DoesNotExist,
    /// Anything else, as written.
    Unknown(String),
}

impl From<String> for SelectorOperator {
    fn from(s: String) -> Self {
        match s.as_str() {
            "In" => SelectorOperator::In,
            "NotIn" => SelectorOperator::NotIn,
            "Exists" => SelectorOperator::Exists,
            "DoesNotExist" => SelectorOperator::DoesNotExist,
            _ => SelectorOperator::Unknown(s),
        }
    }
}

impl From<SelectorOperator> for String {
    fn from(op: SelectorOperator) -> Self {
        op.to_string()
    }
}

impl fmt::Display for SelectorOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
            SelectorOperator::Unknown(s) => s,
        })
    }
}

/// Why a selector is invalid (messages follow `metav1.LabelSelectorAsSelector`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// `In`/`NotIn` with no values.
    #[error("for 'in', 'notin' operators, values set can't be empty (key {key:?})")]
    EmptyValues {
        /// The requirement's key.
        key: String,
    },
    /// `Exists`/`DoesNotExist` with values.
    #[error("values set must be empty for exists and does not exist (key {key:?})")]
    UnexpectedValues {
        /// The requirement's key.
        key: String,
    },
    /// Operator not recognised.
    #[error("{op:?} is not a valid label selector operator")]
    UnknownOperator {
        /// The operator as written.
        op: String,
    },
    /// Empty key.
    #[error("label selector requirement has an empty key")]
    EmptyKey,
}

impl LabelSelector {
    /// True when neither labels nor expressions are set (matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Checks operator/values consistency.
    pub fn validate(&self) -> Result<(), SelectorError> {
        for req in &self.match_expressions {
            if req.key.is_empty() {
                return Err(SelectorError::EmptyKey);
            }
            match &req.operator {
                SelectorOperator::In | SelectorOperator::NotIn if req.values.is_empty() => {
                    return Err(SelectorError::EmptyValues {
                        key: req.key.clone(),
                    });
                }
                SelectorOperator::Exists | SelectorOperator::DoesNotExist
                    if !req.values.is_empty() =>
                {
                    return Err(SelectorError::UnexpectedValues {
                        key: req.key.clone(),
                    });
                }
                SelectorOperator::Unknown(op) => {
                    return Err(SelectorError::UnknownOperator { op: op.clone() });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether `labels` satisfy the selector. An invalid selector matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        if self.validate().is_err() {
            return false;
        }
        let labels_ok = self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        labels_ok
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match &req.operator {
                    SelectorOperator::In => value.is_some_and(|v| req.values.contains(v)),
                    SelectorOperator::NotIn => value.is_none_or(|v| !req.values.contains(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                    SelectorOperator::Unknown(_) => false,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: SelectorOperator::from(op.to_string()),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn empty_matches_all() {
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: labels(&[("env", "staging")]),
            match_expressions: vec![
                req("tier", "In", &["web", "api"]),
                req("legacy", "DoesNotExist", &[]),
                req("team", "NotIn", &["ops"]),
                req("app", "Exists", &[]),
            ],
        };
        assert!(sel.matches(&labels(&[
            ("env", "staging"),
            ("tier", "api"),
            ("app", "x")
        ])));
        assert!(!sel.matches(&labels(&[("env", "prod"), ("tier", "api"), ("app", "x")])));
        assert!(!sel.matches(&labels(&[("env", "staging"), ("tier", "db"), ("app", "x")])));
        assert!(!sel.matches(&labels(&[
            ("env", "staging"),
            ("tier", "api"),
            ("app", "x"),
            ("legacy", "1")
        ])));
        assert!(!sel.matches(&labels(&[
            ("env", "staging"),
            ("tier", "api"),
            ("app", "x"),
            ("team", "ops")
        ])));
        assert!(!sel.matches(&labels(&[("env", "staging"), ("tier", "api")])));
    }

    #[test]
    fn invalid_selectors() {
        for (r, want) in [
            (req("a", "In", &[]), "values set can't be empty"),
            (req("a", "Exists", &["x"]), "must be empty"),
            (req("a", "Near", &["x"]), "not a valid"),
            (req("", "Exists", &[]), "empty key"),
        ] {
            let sel = LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![r],
            };
            let err = sel.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(!sel.matches(&labels(&[("a", "x")])));
        }
    }

    #[test]
    fn deserializes_unknown_operator() {
        let sel: LabelSelector = serde_saphyr::from_str(
            "matchLabels: {a: b}\nmatchExpressions:\n- key: k\n  operator: Near\n  values: [x]\n",
        )
        .unwrap();
        assert_eq!(
            sel.match_expressions[0].operator,
            SelectorOperator::Unknown("Near".into())
        );
    }
}
