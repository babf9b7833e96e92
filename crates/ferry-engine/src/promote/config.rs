//! The promotion pipeline of an app: from a `ferry.dev/v1alpha1` Pipeline named after the app, or
//! the seed's conventions (develop → staging → production, one ImagePolicy named after the app
//! in each environment namespace). Also tag templates and `X.Y.Z` versions.

use std::time::Duration;

use ferry_api::{ImagePolicy, ObjectSet};

use super::PromoteError;

/// The seed's environments, in promotion order.
pub const DEFAULT_STAGES: [&str; 3] = ["develop", "staging", "production"];
/// The seed's immutable tag: `<env>-v<major>.<minor>.<patch>-<short_sha>-<unix_ts>`.
pub const DEFAULT_TAG_TEMPLATE: &str = "{env}-v{version}-{sha7}-{ts}";
/// Namespace of the seed's ImageRepository objects.
const DEFAULT_REPO_NAMESPACE: &str = "flux-system";

/// One stage of an app's pipeline, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageConfig {
    pub name: String,
    /// Namespace of the stage's ImagePolicy.
    pub namespace: String,
    /// Name of the stage's ImagePolicy.
    pub policy: String,
    pub template: TagTemplate,
    /// Moving alias tag written next to the immutable one.
    pub alias: String,
    pub soak: Option<Duration>,
    pub approval: bool,
}

/// An app's ordered stages and where its image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPipeline {
    pub app: String,
    /// `namespace/name` of the Pipeline object; `None` for the seed's conventions.
    pub pipeline: Option<String>,
    /// The ImageRepository when no stage policy names one.
    pub image_repository: ferry_core::ObjectKey,
    pub stages: Vec<StageConfig>,
}

impl AppPipeline {
    /// The Pipeline named `app` (in any namespace), else the seed's conventions.
    pub fn resolve(objects: &ObjectSet, app: &str) -> Result<AppPipeline, PromoteError> {
        // App and stage names become paths (`releases/<app>/<env>/…`, the local journal).
        check_path_name("app", app)?;
        let found: Vec<_> = objects
            .pipelines()
            .iter()
            .filter(|p| p.name() == app)
            .collect();
        if found.len() > 1 {
            let names: Vec<String> = found
                .iter()
                .map(|p| format!("{}/{}", p.namespace(), p.name()))
                .collect();
            return Err(PromoteError::Invalid(format!(
                "several Pipelines are named {app:?}: {}; keep one per app",
                names.join(", ")
            )));
        }
        if let Some(p) = found.first() {
            let problems = p.spec.promotion_problems();
            if !problems.is_empty() {
                return Err(PromoteError::Invalid(format!(
                    "Pipeline {}/{} ({}:{}): {}",
                    p.namespace(),
                    p.name(),
                    p.source.file,
                    p.source.line,
                    problems.join("; ")
                )));
            }
            let mut stages = Vec::new();
            for s in &p.spec.stages {
                check_path_name("stage", &s.name).map_err(|e| {
                    PromoteError::Invalid(format!(
                        "Pipeline {}/{} ({}:{}): {e}",
                        p.namespace(),
                        p.name(),
                        p.source.file,
                        p.source.line
                    ))
                })?;
                let template =
                    TagTemplate::parse(s.tag_template.as_deref().unwrap_or(DEFAULT_TAG_TEMPLATE))
                        .map_err(|e| {
                        PromoteError::Invalid(format!(
                            "Pipeline {}/{} stage {}: {e}",
                            p.namespace(),
                            p.name(),
                            s.name
                        ))
                    })?;
                let gates = s.gates.clone().unwrap_or_default();
                stages.push(StageConfig {
                    name: s.name.clone(),
                    namespace: s.namespace.clone(),
                    policy: s.policy.clone(),
                    template,
                    alias: s
                        .alias
                        .clone()
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| s.name.clone()),
                    soak: gates.soak.map(|d| d.as_duration()),
                    approval: gates.approval,
                });
            }
            let r = &p.spec.image_repository_ref;
            return Ok(AppPipeline {
                app: app.to_string(),
                pipeline: Some(format!("{}/{}", p.namespace(), p.name())),
                image_repository: ferry_core::ObjectKey::new(
                    ferry_core::Kind::ImageRepository,
                    r.namespace_or(p.namespace()),
                    &r.name,
                ),
                stages,
            });
        }
        let template = TagTemplate::parse(DEFAULT_TAG_TEMPLATE)
            .map_err(|e| PromoteError::Invalid(format!("default tag template: {e}")))?;
        let stages = DEFAULT_STAGES
            .iter()
            .map(|env| StageConfig {
                name: env.to_string(),
                namespace: env.to_string(),
                policy: app.to_string(),
                template: template.clone(),
                alias: env.to_string(),
                soak: None,
                approval: false,
            })
            .collect();
        Ok(AppPipeline {
            app: app.to_string(),
            pipeline: None,
            image_repository: ferry_core::ObjectKey::new(
                ferry_core::Kind::ImageRepository,
                DEFAULT_REPO_NAMESPACE,
                app,
            ),
            stages,
        })
    }

    pub fn stage(&self, name: &str) -> Result<&StageConfig, PromoteError> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
            PromoteError::Invalid(format!(
                "app {:?} has no stage {name:?} (stages: {}{})",
                self.app,
                names.join(", "),
                match &self.pipeline {
                    Some(p) => format!("; from Pipeline {p}"),
                    None => "; seed defaults, no Pipeline".to_string(),
                }
            ))
        })
    }

    /// The stage before `name`.
    pub fn previous(&self, name: &str) -> Result<&StageConfig, PromoteError> {
        self.stage(name)?;
        match self.stages.iter().position(|s| s.name == name) {
            Some(i) if i > 0 => Ok(&self.stages[i - 1]),
            _ => Err(PromoteError::Invalid(format!(
                "{name:?} is the first stage of {}: nothing promotes into it (pass --from)",
                self.app
            ))),
        }
    }

    /// True when `name` is the last stage (its promotions are releases and bump the version).
    pub fn is_last(&self, name: &str) -> bool {
        self.stages.last().is_some_and(|s| s.name == name)
    }

    /// The ImagePolicy of a stage, from the loaded objects.
    pub fn policy<'a>(
        &self,
        objects: &'a ObjectSet,
        stage: &StageConfig,
    ) -> Result<&'a ImagePolicy, PromoteError> {
        objects
            .image_policy(&stage.namespace, &stage.policy)
            .ok_or_else(|| {
                PromoteError::Invalid(format!(
                    "ImagePolicy {}/{} (stage {} of {}) not found in the source",
                    stage.namespace, stage.policy, stage.name, self.app
                ))
            })
    }
}

/// A part of a tag template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Env,
    Version,
    Sha7,
    Ts,
}

/// `{env}-v{version}-{sha7}-{ts}`: renders and parses immutable tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    parts: Vec<Part>,
}

/// The fields of a tag read back through its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFields {
    pub version: Version,
    pub sha7: String,
    pub ts: u64,
}

impl TagTemplate {
    /// Placeholders: `{env}`, `{version}`, `{sha7}`, `{ts}`; `{version}` and `{sha7}` are
    /// required so a promoted tag can be traced back to its build.
    pub fn parse(text: &str) -> Result<TagTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("tag template {text:?}: '{{' without '}}'"))?;
                    parts.push(match &rest[1..end] {
                        "env" => Part::Env,
                        "version" => Part::Version,
                        "sha7" => Part::Sha7,
                        "ts" => Part::Ts,
                        other => {
                            return Err(format!(
                                "tag template {text:?}: unknown placeholder {{{other}}} (known: {{env}}, {{version}}, {{sha7}}, {{ts}})"
                            ));
                        }
                    });
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Literal(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        if !parts.contains(&Part::Version) || !parts.contains(&Part::Sha7) {
            return Err(format!(
                "tag template {text:?} must contain {{version}} and {{sha7}}"
            ));
        }
        for w in parts.windows(2) {
            if !matches!(w[0], Part::Literal(_)) && !matches!(w[1], Part::Literal(_)) {
                return Err(format!(
                    "tag template {text:?}: placeholders must be separated by literal text"
                ));
            }
        }
        Ok(TagTemplate { parts })
    }

    pub fn render(&self, env: &str, version: &Version, sha7: &str, ts: u64) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.clone(),
                Part::Env => env.to_string(),
                Part::Version => version.to_string(),
                Part::Sha7 => sha7.to_string(),
                Part::Ts => ts.to_string(),
            })
            .collect()
    }

    /// Reads a tag of environment `env` back; `None` when it does not fit the template.
    pub fn parse_tag(&self, env: &str, tag: &str) -> Option<TagFields> {
        let mut fields = TagFields {
            version: Version::default(),
            sha7: String::new(),
            ts: 0,
        };
        if match_parts(&self.parts, env, tag, &mut fields) {
            Some(fields)
        } else {
            None
        }
    }
}

/// Backtracking match of template parts against a tag (placeholders never touch, so each
/// placeholder's extent is decided by the literal after it).
fn match_parts(parts: &[Part], env: &str, s: &str, out: &mut TagFields) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return s.is_empty();
    };
    match first {
        Part::Literal(lit) => s
            .strip_prefix(lit.as_str())
            .is_some_and(|r| match_parts(rest, env, r, out)),
        Part::Env => s
            .strip_prefix(env)
            .is_some_and(|r| match_parts(rest, env, r, out)),
        placeholder => {
            let ok = |c: char| match placeholder {
                Part::Version => c.is_ascii_digit() || c == '.',
                Part::Sha7 => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
                _ => c.is_ascii_digit(),
            };
            let max = s.find(|c: char| !ok(c)).unwrap_or(s.len());
            for end in (1..=max).rev() {
                let value = &s[..end];
                let accepted = match placeholder {
                    Part::Version => match Version::parse(value) {
                        Some(v) => {
                            out.version = v;
                            true
                        }
                        None => false,
                    },
                    Part::Sha7 if (7..=40).contains(&value.len()) => {
                        out.sha7 = value.to_string();
                        true
                    }
                    Part::Ts => match value.parse() {
                        Ok(ts) => {
                            out.ts = ts;
                            true
                        }
                        Err(_) => false,
                    },
                    _ => false,
                };
                if accepted && match_parts(rest, env, &s[end..], out) {
                    return true;
                }
            }
            false
        }
    }
}

/// `MAJOR.MINOR.PATCH`, the seed's version numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

/// Which part `--bump` increments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Bump {
    #[default]
    Patch,
    Minor,
    Major,
}

impl Version {
    /// `X.Y.Z` (an optional leading `v` is accepted); no pre-release or build parts.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut it = t.split('.');
        let mut num = || -> Option<u64> {
            let s = it.next()?;
            if s.is_empty()
                || !s.bytes().all(|b| b.is_ascii_digit())
                || (s.len() > 1 && s.starts_with('0'))
            {
                return None;
            }
            s.parse().ok()
        };
        let v = Version {
            major: num()?,
            minor: num()?,
            patch: num()?,
        };
        if it.next().is_some() {
            return None;
        }
        Some(v)
    }

    pub fn bump(self, bump: Bump) -> Version {
        match bump {
            Bump::Patch => Version {
                patch: self.patch + 1,
                ..self
            },
            Bump::Minor => Version {
                major: self.major,
                minor: self.minor + 1,
                patch: 0,
            },
            Bump::Major => Version {
                major: self.major + 1,
                minor: 0,
                patch: 0,
            },
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Refuses a name that would not stay one path component: empty, `.`/`..` or a leading dot,
/// `/` or `\\`, whitespace or control characters, longer than 253 bytes. Runs before any
/// name becomes part of a path (`releases/<app>/<env>/<tag>.yaml`, the promotion journal).
pub fn check_path_name(what: &str, name: &str) -> Result<(), PromoteError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PromoteError::Invalid(format!(
            "{what} name {name:?} must be letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_template_round_trips() {
        let t = TagTemplate::parse(DEFAULT_TAG_TEMPLATE).unwrap();
        let v = Version::parse("0.0.1").unwrap();
        let tag = t.render("staging", &v, "a1b2c3d", 1738860123);
        assert_eq!(tag, "staging-v0.0.1-a1b2c3d-1738860123");
        let f = t.parse_tag("staging", &tag).unwrap();
        assert_eq!(
            (f.version, f.sha7.as_str(), f.ts),
            (v, "a1b2c3d", 1738860123)
        );
        assert!(t.parse_tag("develop", &tag).is_none());
        assert!(t.parse_tag("staging", "staging").is_none());
        assert!(t.parse_tag("staging", "staging-v0.0.1-A1B2C3D-1").is_none());
        assert!(t.parse_tag("staging", "staging-v0.01-a1b2c3d-1").is_none());
    }

    #[test]
    fn templates_are_validated() {
        assert!(TagTemplate::parse("{env}-{ts}").is_err());
        assert!(TagTemplate::parse("{env}-{version}{sha7}").is_err());
        assert!(TagTemplate::parse("{env}-{nope}-{version}-{sha7}").is_err());
        let t = TagTemplate::parse("release-{version}_{sha7}").unwrap();
        let f = t.parse_tag("x", "release-1.2.3_abcdef0").unwrap();
        assert_eq!(f.version.to_string(), "1.2.3");
    }

    #[test]
    fn versions_bump() {
        let v = Version::parse("v1.2.3").unwrap();
        assert_eq!(v.bump(Bump::Patch).to_string(), "1.2.4");
        assert_eq!(v.bump(Bump::Minor).to_string(), "1.3.0");
        assert_eq!(v.bump(Bump::Major).to_string(), "2.0.0");
        assert!(Version::parse("1.2").is_none());
        assert!(Version::parse("1.2.3-rc1").is_none());
        assert!(Version::parse("01.2.3").is_none());
    }

    #[test]
    fn names_that_would_leave_their_directory_are_refused() {
        let empty = ferry_api::ObjectSet::default();
        for bad in [
            "../escape",
            "a/b",
            "..",
            ".hidden",
            "a\\b",
            "a b",
            "a\nb",
            "a\u{7f}",
            "",
        ] {
            let err = AppPipeline::resolve(&empty, bad).unwrap_err();
            assert!(err.to_string().contains("app name"), "{bad:?}: {err}");
        }
        assert!(AppPipeline::resolve(&empty, "backend_v2.web").is_ok());
        let yaml = "apiVersion: ferry.dev/v1alpha1\nkind: Pipeline\nmetadata:\n  name: backend\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: backend\n  stages:\n  - name: ../prod\n    alias: prod\n    namespace: production\n    policy: backend\n";
        // With an explicit alias the tag check does not see the stage name; this one does.
        let objects = ferry_api::load_str("pipeline.yaml", yaml, &ferry_api::Vars::new()).unwrap();
        let err = AppPipeline::resolve(&objects, "backend").unwrap_err();
        assert!(err.to_string().contains("stage name \"../prod\""), "{err}");
        assert!(err.to_string().contains("pipeline.yaml"), "{err}");
    }
}
