//! Latest-tag election: SemVer, Alphabetical and Numerical policers (Flux `internal/policy`).

use std::cmp::Ordering;

use crate::error::PolicyError;
use crate::numeric::parse_go_float;
use crate::semver::{Constraints, Version};

/// Sort direction of the alphabetical and numerical policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Elect the greatest value (the default).
    #[default]
    Asc,
    /// Elect the smallest value.
    Desc,
}

impl Order {
    /// Parses a spec value the way Flux does: upper-cased first, `""` means `ASC`.
    pub fn parse(order: &str) -> Result<Order, PolicyError> {
        match order.to_uppercase().as_str() {
            "" | "ASC" => Ok(Order::Asc),
            "DESC" => Ok(Order::Desc),
            other => Err(PolicyError::InvalidOrder(other.to_owned())),
        }
    }
}

/// The `spec.policy` union of an ImagePolicy, with spec strings kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyChoice {
    /// `policy.semver.range`.
    SemVer {
        /// Masterminds constraint string.
        range: String,
    },
    /// `policy.alphabetical.order` (`""`, `asc` or `desc`).
    Alphabetical {
        /// Order as written in the spec.
        order: String,
    },
    /// `policy.numerical.order` (`""`, `asc` or `desc`).
    Numerical {
        /// Order as written in the spec.
        order: String,
    },
}

impl PolicyChoice {
    /// Picks the first set member in Flux's order (semver, alphabetical, numerical); none set
    /// is [`PolicyError::NoPolicyChoice`].
    pub fn from_spec(
        semver_range: Option<&str>,
        alphabetical_order: Option<&str>,
        numerical_order: Option<&str>,
    ) -> Result<PolicyChoice, PolicyError> {
        if let Some(range) = semver_range {
            return Ok(PolicyChoice::SemVer {
                range: range.to_owned(),
            });
        }
        if let Some(order) = alphabetical_order {
            return Ok(PolicyChoice::Alphabetical {
                order: order.to_owned(),
            });
        }
        if let Some(order) = numerical_order {
            return Ok(PolicyChoice::Numerical {
                order: order.to_owned(),
            });
        }
        Err(PolicyError::NoPolicyChoice)
    }
}

/// A validated policy, ready to elect the latest of a candidate list.
#[derive(Debug, Clone)]
pub enum Policer {
    /// Highest version satisfying the constraint.
    SemVer(Constraints),
    /// Byte-wise string order.
    Alphabetical(Order),
    /// Go float64 order.
    Numerical(Order),
}

impl Policer {
    /// Validates the choice (range grammar, order value).
    pub fn new(choice: &PolicyChoice) -> Result<Policer, PolicyError> {
        Ok(match choice {
            PolicyChoice::SemVer { range } => {
                Policer::SemVer(Constraints::parse(range).map_err(|source| {
                    PolicyError::InvalidRange {
                        range: range.clone(),
                        source,
                    }
                })?)
            }
            PolicyChoice::Alphabetical { order } => Policer::Alphabetical(Order::parse(order)?),
            PolicyChoice::Numerical { order } => Policer::Numerical(Order::parse(order)?),
        })
    }

    /// Elects the latest candidate and returns it.
    pub fn latest<S: AsRef<str>>(&self, candidates: &[S]) -> Result<String, PolicyError> {
        self.latest_index(candidates)
            .map(|i| candidates[i].as_ref().to_owned())
    }

    /// Elects the latest candidate and returns its index, with Flux's tie rules:
    /// * SemVer: tags that fail `parse_flux_tag` are skipped; the **first** of equal maximal
    ///   versions (e.g. `v1.2.4` and `1.2.4`) wins.
    /// * Alphabetical: byte order; ASC elects the maximum, DESC the minimum.
    /// * Numerical: every candidate must parse as a Go float (else the whole election
    ///   fails); a later value replaces the current one unless strictly worse, so ties go to
    ///   the **last** candidate and NaN always replaces.
    pub fn latest_index<S: AsRef<str>>(&self, candidates: &[S]) -> Result<usize, PolicyError> {
        if candidates.is_empty() {
            return Err(PolicyError::EmptyList);
        }
        match self {
            Policer::SemVer(constraints) => {
                let mut best: Option<(usize, Version)> = None;
                for (i, c) in candidates.iter().enumerate() {
                    let Ok(v) = Version::parse_flux_tag(c.as_ref()) else {
                        continue;
                    };
                    if !constraints.check(&v) {
                        continue;
                    }
                    if best.as_ref().is_none_or(|(_, b)| v > *b) {
                        best = Some((i, v));
                    }
                }
                best.map(|(i, _)| i).ok_or(PolicyError::NoMatch)
            }
            Policer::Alphabetical(order) => {
                let mut best = 0;
                for (i, c) in candidates.iter().enumerate().skip(1) {
                    let ord = c
                        .as_ref()
                        .as_bytes()
                        .cmp(candidates[best].as_ref().as_bytes());
                    let better = match order {
                        Order::Asc => ord == Ordering::Greater,
                        Order::Desc => ord == Ordering::Less,
                    };
                    if better {
                        best = i;
                    }
                }
                Ok(best)
            }
            Policer::Numerical(order) => {
                let mut best: Option<(usize, f64)> = None;
                for (i, c) in candidates.iter().enumerate() {
                    let c = c.as_ref();
                    let v =
                        parse_go_float(c).map_err(|_| PolicyError::InvalidNumeric(c.to_owned()))?;
                    // Replace unless strictly worse; NaN compares as None and always replaces.
                    let worse = match order {
                        Order::Asc => Ordering::Less,
                        Order::Desc => Ordering::Greater,
                    };
                    let replace = best.is_none_or(|(_, pv)| v.partial_cmp(&pv) != Some(worse));
                    if replace {
                        best = Some((i, v));
                    }
                }
                best.map(|(i, _)| i).ok_or(PolicyError::EmptyList)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(choice: PolicyChoice, tags: &[&str]) -> Result<String, PolicyError> {
        Policer::new(&choice)?.latest(tags)
    }

    #[test]
    fn semver_first_of_equal_versions_wins() {
        let c = || PolicyChoice::SemVer {
            range: ">=1.0.0".into(),
        };
        assert_eq!(latest(c(), &["v1.2.4", "1.2.4"]).unwrap(), "v1.2.4");
        assert_eq!(latest(c(), &["1.2.4", "v1.2.4"]).unwrap(), "1.2.4");
        assert_eq!(latest(c(), &["1.2.4+b", "1.2.4+a"]).unwrap(), "1.2.4+b");
        assert_eq!(latest(c(), &["latest", "1.2"]), Err(PolicyError::NoMatch));
    }

    #[test]
    fn numerical_ties_go_to_last_and_nan_replaces() {
        let asc = || PolicyChoice::Numerical { order: "".into() };
        assert_eq!(latest(asc(), &["1.0", "1", "0x1p0"]).unwrap(), "0x1p0");
        assert_eq!(latest(asc(), &["5", "NaN", "1"]).unwrap(), "1");
        assert_eq!(latest(asc(), &["5", "1_0"]).unwrap(), "1_0");
        let e = latest(asc(), &["1", "1a"]).unwrap_err();
        assert_eq!(e.to_string(), "failed to parse invalid numeric value '1a'");
        assert_eq!(e.reason(), "Failure");
        let desc = PolicyChoice::Numerical {
            order: "desc".into(),
        };
        assert_eq!(latest(desc, &["-1", "-1.0", "3"]).unwrap(), "-1.0");
    }

    #[test]
    fn orders_and_messages() {
        assert_eq!(Order::parse("desc"), Ok(Order::Desc));
        assert_eq!(Order::parse("Asc"), Ok(Order::Asc));
        let e = Order::parse("up").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid policy: invalid order argument provided: 'UP', must be one of: ASC, DESC"
        );
        let e = Policer::new(&PolicyChoice::SemVer {
            range: "*-*".into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid policy: semver parse error: improper constraint: *-*"
        );
        assert_eq!(
            PolicyChoice::from_spec(None, None, None),
            Err(PolicyError::NoPolicyChoice)
        );
        let alpha = PolicyChoice::Alphabetical {
            order: "desc".into(),
        };
        assert_eq!(latest(alpha, &["b", "", "a"]).unwrap(), "");
        let empty: [&str; 0] = [];
        assert_eq!(
            Policer::new(&PolicyChoice::Alphabetical {
                order: String::new()
            })
            .unwrap()
            .latest(&empty),
            Err(PolicyError::EmptyList)
        );
    }
}
