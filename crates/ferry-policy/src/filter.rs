//! `spec.filterTags` (pattern + extract) and the whole store → filter → policer election.

use std::borrow::Cow;
use std::collections::HashSet;

use regex::{CaptureLocations, Regex};

use crate::error::PolicyError;
use crate::policer::Policer;

/// One piece of a parsed `extract` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// Capture group index; `None` when the name/number does not exist (expands to `""`).
    Group(Option<usize>),
}

/// A compiled `filterTags`.
#[derive(Debug, Clone)]
pub struct TagFilter {
    /// `None` when `spec.filterTags` is absent: tags pass through untouched (no collapse).
    inner: Option<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    regex: Regex,
    /// Empty template = the candidate is the tag itself.
    template: Vec<Piece>,
    extract_empty: bool,
}

/// A tag that passed the filter: the value handed to the policer and the tag it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Extracted value (or the tag itself when `extract` is empty).
    pub candidate: Cow<'a, str>,
    /// The original tag (what ends up in `latestRef.tag`).
    pub original: &'a str,
}

impl TagFilter {
    /// No `filterTags` in the spec.
    pub fn none() -> TagFilter {
        TagFilter { inner: None }
    }

    /// Compiles `filterTags`. `(None, None)` means the spec has no `filterTags` at all;
    /// otherwise a missing field is the empty string (empty pattern matches every tag).
    ///
    /// The pattern is a Go RE2 expression searched unanchored; both `(?P<n>…)` and `(?<n>…)`
    /// name groups. Constructs Go rejects that the `regex` crate also rejects (lookaround,
    /// backreferences) fail here with [`PolicyError::InvalidFilterPattern`].
    pub fn new(pattern: Option<&str>, extract: Option<&str>) -> Result<TagFilter, PolicyError> {
        if pattern.is_none() && extract.is_none() {
            return Ok(TagFilter::none());
        }
        let pattern = pattern.unwrap_or("");
        let extract = extract.unwrap_or("");
        let regex = Regex::new(pattern).map_err(|e| PolicyError::InvalidFilterPattern {
            pattern: pattern.to_owned(),
            message: regex_error_message(&e),
        })?;
        let template = parse_template(extract, &regex);
        Ok(TagFilter {
            inner: Some(Inner {
                regex,
                template,
                extract_empty: extract.is_empty(),
            }),
        })
    }

    /// True when the spec had `filterTags`.
    pub fn is_active(&self) -> bool {
        self.inner.is_some()
    }

    /// Applies the filter to the tags in store order (descending bytes).
    ///
    /// Each tag's first (leftmost) match is expanded with the `extract` template (`$name`,
    /// `${name}`, `$1`, `$$`; unknown or non-participating groups expand to `""`). Tags giving
    /// the same candidate collapse and the later one in store order wins, as with Flux's map.
    ///
    /// Determinism: Flux hands the policer the candidates in Go map iteration order, i.e. at
    /// random. Ferry instead returns them in store order of their (winning) original tag, so
    /// ties (semver: first wins; numerical: last wins) are decided the same way on every run.
    pub fn apply<'a, S: AsRef<str>>(&self, store_order_tags: &'a [S]) -> Vec<Candidate<'a>> {
        let Some(inner) = &self.inner else {
            return store_order_tags
                .iter()
                .map(|t| Candidate {
                    candidate: Cow::Borrowed(t.as_ref()),
                    original: t.as_ref(),
                })
                .collect();
        };
        let mut locs = inner.regex.capture_locations();
        // Walk backwards so the first sighting of a candidate is the winner (the later tag).
        let mut all: Vec<Candidate<'a>> = Vec::new();
        for tag in store_order_tags.iter().rev() {
            let tag = tag.as_ref();
            if let Some(candidate) = inner.candidate(tag, &mut locs) {
                all.push(Candidate {
                    candidate,
                    original: tag,
                });
            }
        }
        let keep: Vec<bool> = {
            let mut seen: HashSet<&str> = HashSet::with_capacity(all.len());
            all.iter()
                .map(|c| seen.insert(c.candidate.as_ref()))
                .collect()
        };
        let mut out: Vec<Candidate<'a>> = all
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect();
        out.reverse();
        out
    }
}

impl Inner {
    fn candidate<'a>(&self, tag: &'a str, locs: &mut CaptureLocations) -> Option<Cow<'a, str>> {
        if self.extract_empty {
            return self.regex.is_match(tag).then_some(Cow::Borrowed(tag));
        }
        self.regex.captures_read(locs, tag)?;
        // The common `$name` template borrows the group instead of allocating.
        if let [Piece::Group(g)] = self.template.as_slice() {
            let slice = g.and_then(|i| locs.get(i)).map_or("", |(a, b)| &tag[a..b]);
            return Some(Cow::Borrowed(slice));
        }
        let mut out = String::new();
        for piece in &self.template {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(Some(i)) => {
                    if let Some((a, b)) = locs.get(*i) {
                        out.push_str(&tag[a..b]);
                    }
                }
                Piece::Group(None) => {}
            }
        }
        Some(Cow::Owned(out))
    }
}

/// Parses an `extract` template with Go `Regexp.Expand` rules: `$$` is `$`; `$name` takes the
/// longest run of letters, digits and `_`; `${name}` must close right after the name; a
/// malformed reference leaves the `$` as literal text; all-digit names are group numbers.
fn parse_template(t: &str, regex: &Regex) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    while let Some(pos) = rest.find('$') {
        lit.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            lit.push('$');
            rest = r;
            continue;
        }
        let (brace, body) = match after.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, after),
        };
        let name_len: usize = body
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(body.len(), |(i, _)| i);
        let name = &body[..name_len];
        let mut consumed = name_len;
        let ok = !name.is_empty() && (!brace || body[name_len..].starts_with('}'));
        if !ok {
            lit.push('$');
            rest = after;
            continue;
        }
        if brace {
            consumed += 1;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Group(group_index(name, regex)));
        rest = &body[consumed..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    pieces
}

fn group_index(name: &str, regex: &Regex) -> Option<usize> {
    if name.bytes().all(|c| c.is_ascii_digit()) {
        // Go gives up on absurdly long numbers; anything that large is out of range anyway.
        return name
            .parse::<usize>()
            .ok()
            .filter(|&n| n < regex.captures_len());
    }
    regex.capture_names().position(|n| n == Some(name))
}

/// One-line explanation in Go's style (`error parsing regexp: ...`).
fn regex_error_message(e: &regex::Error) -> String {
    let text = e.to_string();
    let detail = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_owned());
    format!("error parsing regexp: {detail}")
}

/// The ImagePolicy election as the controller runs it: tags read from the store (in store
/// order), then `filterTags`, then the policer. Returns the elected ORIGINAL tag.
///
/// An empty store is [`PolicyError::NoTagsInDatabase`]; a filter that keeps nothing makes the
/// policer fail with [`PolicyError::EmptyList`]. Candidates reach the policer in store order
/// (see [`TagFilter::apply`]), which makes every tie-break deterministic.
pub fn select_latest<S: AsRef<str>>(
    store_order_tags: &[S],
    filter: &TagFilter,
    policer: &Policer,
) -> Result<String, PolicyError> {
    if store_order_tags.is_empty() {
        return Err(PolicyError::NoTagsInDatabase);
    }
    let candidates = filter.apply(store_order_tags);
    let values: Vec<&str> = candidates.iter().map(|c| c.candidate.as_ref()).collect();
    let i = policer.latest_index(&values)?;
    Ok(candidates[i].original.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policer::{Policer, PolicyChoice};

    const SEED: &str = r"^staging-v[0-9]+\.[0-9]+\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$";

    fn store(tags: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }

    fn numerical_asc() -> Policer {
        Policer::new(&PolicyChoice::Numerical {
            order: "asc".into(),
        })
        .unwrap()
    }

    #[test]
    fn seed_regex_elects_newest_staging_timestamp() {
        let tags = store(&[
            "develop-v1.4.0-ab12cd3-1717000300",
            "staging-v1.3.0-ab12cd3-1717000100",
            "staging-v1.2.9-0f0f0f0-1717000200",
            "staging-v1.10.0-deadbee-1716999999",
            "production-v1.2.0-ab12cd3-1717000999",
            "ab12cd3ef45",
            "sha256-1234.sig",
            "staging-v1.3.0-ab12cd3-1717000100.sig",
            "staging-v1.3.0-XYZ-1717009999",
        ]);
        let filter = TagFilter::new(Some(SEED), Some("$ts")).unwrap();
        let got = select_latest(&tags, &filter, &numerical_asc()).unwrap();
        assert_eq!(got, "staging-v1.2.9-0f0f0f0-1717000200");
    }

    #[test]
    fn seed_regex_candidates_are_timestamps_in_store_order() {
        let tags = store(&[
            "staging-v1.0.0-aaa-1",
            "staging-v1.0.0-bbb-2",
            "production-v1.0.0-ccc-3",
            "staging-v1.0.0-ccc-3.sig",
        ]);
        let filter = TagFilter::new(Some(SEED), Some("$ts")).unwrap();
        let c: Vec<(String, String)> = filter
            .apply(&tags)
            .into_iter()
            .map(|c| (c.candidate.into_owned(), c.original.to_owned()))
            .collect();
        assert_eq!(
            c,
            vec![
                ("2".to_string(), "staging-v1.0.0-bbb-2".to_string()),
                ("1".to_string(), "staging-v1.0.0-aaa-1".to_string()),
            ]
        );
    }

    #[test]
    fn seed_regex_no_match_is_empty_list() {
        let tags = store(&["develop-v1.0.0-aaa-1", "production-v1.0.0-aaa-1", "0123abc"]);
        let filter = TagFilter::new(Some(SEED), Some("$ts")).unwrap();
        assert_eq!(
            select_latest(&tags, &filter, &numerical_asc()),
            Err(PolicyError::EmptyList)
        );
    }

    #[test]
    fn equal_timestamps_collapse_to_the_smaller_original_and_tie_to_last() {
        // Same extracted value from two tags: the later one in store order (smaller bytes) wins.
        let tags = store(&[
            "staging-v1.0.0-bbb-5",
            "staging-v1.0.0-aaa-5",
            "staging-v1.0.0-ccc-4",
        ]);
        let filter = TagFilter::new(Some(SEED), Some("$ts")).unwrap();
        assert_eq!(
            select_latest(&tags, &filter, &numerical_asc()).unwrap(),
            "staging-v1.0.0-aaa-5"
        );
        // Numerical ties (equal floats from different strings) go to the last candidate.
        let tags = store(&["staging-v1.0.0-bbb-05", "staging-v1.0.0-aaa-5"]);
        assert_eq!(
            select_latest(&tags, &filter, &numerical_asc()).unwrap(),
            "staging-v1.0.0-aaa-5"
        );
    }

    #[test]
    fn template_rules() {
        let re = Regex::new(r"(?P<a>x)(y)?(?<b_1>z)").unwrap();
        let f = |t: &str| {
            let filter = TagFilter {
                inner: Some(Inner {
                    regex: re.clone(),
                    template: parse_template(t, &re),
                    extract_empty: t.is_empty(),
                }),
            };
            filter
                .apply(&["xz"])
                .into_iter()
                .map(|c| c.candidate.into_owned())
                .next()
        };
        assert_eq!(f("$a-$2-$b_1").as_deref(), Some("x--z"));
        assert_eq!(f("${a}1$$").as_deref(), Some("x1$"));
        assert_eq!(f("$a1").as_deref(), Some("")); // name is `a1`: unknown
        assert_eq!(f("$9|$ |${a").as_deref(), Some("|$ |${a"));
        assert_eq!(f("pre-$3").as_deref(), Some("pre-z"));
    }

    #[test]
    fn go_rejected_patterns_are_invalid_policy() {
        for p in ["[=", "^test-(.*", "(?=x)", "a(?!b)", r"(a)\1"] {
            let e = TagFilter::new(Some(p), None).unwrap_err();
            assert_eq!(e.reason(), "InvalidPolicy");
            assert!(
                e.to_string().starts_with(&format!(
                    "failed to filter tags: invalid regular expression pattern '{p}': "
                )),
                "{e}"
            );
        }
    }
}
