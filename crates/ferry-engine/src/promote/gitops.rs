//! The GitOps repository side of promotion: which repository and branch, what an environment runs
//! (its setter markers), when that arrived (the soak clock), approvals, release records and the
//! version file. Everything here is blocking (git CLI).

use std::path::Path;

use ferry_api::{ImagePolicy, ObjectSet};
use ferry_git::{Checkout, CloneCache, GitAuth, History, LogQuery, Remote, Signature};
use ferry_setters::MarkerSite;

use super::PromoteError;
use super::config::Version;
use super::records::{Approval, ReleaseRecord};
use crate::Engine;
use crate::rollback::markers::MarkerState;

/// `--repo URL --ref BRANCH`: the GitOps repository when no ImageUpdateAutomation names one.
#[derive(Debug, Clone)]
pub struct GitFallback {
    pub url: String,
    pub branch: String,
    /// Credentials (`--repo-secret`); never printed.
    pub auth: GitAuth,
}

/// Where promotion reads and writes Git.
#[derive(Debug, Clone)]
pub(crate) struct GitTarget {
    pub remote: Remote,
    /// Branch read (what the cluster syncs) and checked out for writing.
    pub branch: String,
    /// Branch pushed to (the automation's `git.push.branch`).
    pub push_branch: String,
    pub author: Signature,
    /// Human description of where this came from.
    pub origin: String,
}

const DEFAULT_AUTHOR_NAME: &str = "Ferry";
const DEFAULT_AUTHOR_EMAIL: &str = "ferry@localhost";

/// The write-back repository of the ImageUpdateAutomation that covers `policy` (same namespace,
/// selector matches), else `--repo`.
pub(crate) fn git_target(
    engine: &Engine,
    objects: &ObjectSet,
    policy: Option<&ImagePolicy>,
    fallback: Option<&GitFallback>,
) -> Result<GitTarget, PromoteError> {
    let auto = policy.and_then(|p| crate::automations_for(objects, p).first().copied());
    let Some(auto) = auto else {
        let Some(fb) = fallback else {
            return Err(PromoteError::Invalid(format!(
                "no ImageUpdateAutomation covers {} and no --repo was given: cannot tell which Git repository holds the releases",
                policy
                    .map(|p| format!("ImagePolicy {}/{}", p.namespace(), p.name()))
                    .unwrap_or_else(|| "this app".to_string())
            )));
        };
        return Ok(GitTarget {
            remote: Remote::new(fb.url.clone(), fb.auth.clone()),
            branch: fb.branch.clone(),
            push_branch: fb.branch.clone(),
            author: Signature {
                name: DEFAULT_AUTHOR_NAME.into(),
                email: DEFAULT_AUTHOR_EMAIL.into(),
            },
            origin: format!("--repo {}", ferry_git::redact_url_userinfo(&fb.url)),
        });
    };
    // The automation's own write-back settings (repository, credentials, branches, author), so
    // releases land exactly where its commits do.
    let id = format!("ImageUpdateAutomation {}/{}", auto.namespace(), auto.name());
    let t = crate::automation::target(engine, objects, auto)
        .map_err(|f| PromoteError::Invalid(f.message))?;
    let src_ns = auto.spec.source_ref.namespace_or(auto.namespace());
    Ok(GitTarget {
        remote: t.remote,
        branch: t.checkout_branch,
        push_branch: t.push_branch,
        author: t.author,
        origin: format!(
            "GitRepository {src_ns}/{} (write-back of {id})",
            auto.spec.source_ref.name
        ),
    })
}

/// The clone cache and the open pass: what a blocking task needs to check out or push.
pub(crate) fn git_access(
    engine: &Engine,
) -> Result<(CloneCache, crate::writeback::Pass), PromoteError> {
    Ok((
        CloneCache::new(engine.config().cache_dir.clone())?,
        engine.current_pass(),
    ))
}

/// What an environment's Git state points to for one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deployed {
    pub tag: String,
    /// Set when a marker holds a digest (`:digest` setter or `name:tag@digest`).
    pub digest: Option<String>,
    /// `file:line` of every marker of the policy.
    pub sites: Vec<String>,
    pub files: Vec<String>,
}

/// Reads the markers of `policy_key` (`ns:name`) in the work tree, each through the one marker
/// reader ([`crate::rollback::markers`]); they must agree on the tag and the digest.
pub(crate) fn deployed(workdir: &Path, policy_key: &str) -> Result<Option<Deployed>, PromoteError> {
    let sites = crate::rollback::markers::scan(workdir).map_err(|e| {
        PromoteError::Failed(format!(
            "reading setter markers in the GitOps repository: {e}"
        ))
    })?;
    let sites: Vec<&MarkerSite> = sites.iter().filter(|s| s.policy == policy_key).collect();
    if sites.is_empty() {
        return Ok(None);
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut digests: Vec<String> = Vec::new();
    for s in &sites {
        let one = MarkerState::from_values([(s.field, s.value.as_str())]);
        if let Some(tag) = one.tag {
            tags.push((tag, format!("{}:{}", s.file, s.line)));
        }
        digests.extend(one.digest);
    }
    let mut distinct: Vec<&str> = tags.iter().map(|(t, _)| t.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > 1 {
        let list: Vec<String> = tags.iter().map(|(t, at)| format!("{t} at {at}")).collect();
        return Err(PromoteError::Refused(format!(
            "the markers of policy {policy_key} disagree: {}; make them point at one tag first",
            list.join(", ")
        )));
    }
    digests.sort_unstable();
    digests.dedup();
    if digests.len() > 1 {
        return Err(PromoteError::Refused(format!(
            "the digest markers of policy {policy_key} disagree: {}",
            digests.join(", ")
        )));
    }
    let Some(tag) = distinct.first() else {
        return Ok(None);
    };
    let mut files: Vec<String> = sites.iter().map(|s| s.file.clone()).collect();
    files.sort();
    files.dedup();
    Ok(Some(Deployed {
        tag: tag.to_string(),
        digest: digests.into_iter().next(),
        sites: sites
            .iter()
            .map(|s| format!("{}:{}", s.file, s.line))
            .collect(),
        files,
    }))
}

/// The commit that put `tag` into the marker files (the oldest commit of the newest unbroken run
/// of commits whose files hold the tag): the start of the soak clock.
pub(crate) fn deploy_commit(
    co: &mut Checkout,
    deployed: &Deployed,
) -> Result<Option<(String, i64)>, PromoteError> {
    co.ensure_history(History::Full)?;
    let commits = co.log(&LogQuery {
        rev_range: None,
        paths: deployed.files.clone(),
        max: Some(1000),
    })?;
    let mut found = None;
    for c in commits {
        let mut holds = false;
        for f in &deployed.files {
            if let Some(bytes) = co.show_file(&c.sha, f)?
                && contains(&bytes, deployed.tag.as_bytes())
            {
                holds = true;
                break;
            }
        }
        if !holds {
            break;
        }
        found = Some((c.sha.clone(), c.committer_time));
    }
    Ok(found)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // A tag followed by more tag characters is another tag (`v1` vs `v10`).
    let tagchar = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-';
    hay.windows(needle.len()).enumerate().any(|(i, w)| {
        w == needle
            && hay.get(i + needle.len()).is_none_or(|b| !tagchar(*b))
            && (i == 0 || !tagchar(hay[i - 1]))
    })
}

/// `releases/<app>/VERSION`: the next version to build.
pub(crate) fn version_path(app: &str) -> String {
    format!("releases/{app}/VERSION")
}

/// `releases/<app>/<env>/<target-tag>.yaml`: one release record per promotion.
pub(crate) fn record_path(app: &str, env: &str, target_tag: &str) -> String {
    format!("releases/{app}/{env}/{target_tag}.yaml")
}

/// `releases/<app>/approvals/<env>/<tag>.yaml`.
pub(crate) fn approval_path(app: &str, env: &str, tag: &str) -> String {
    format!("releases/{app}/approvals/{env}/{tag}.yaml")
}

pub(crate) fn read_text(workdir: &Path, rel: &str) -> Result<Option<String>, PromoteError> {
    let path = workdir.join(rel);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PromoteError::Failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

pub(crate) fn write_text(workdir: &Path, rel: &str, text: &str) -> Result<(), std::io::Error> {
    let path = workdir.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

/// One release record, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordSummary {
    pub path: String,
    pub version: Version,
    pub record: ReleaseRecord,
}

/// The release records of an app in one environment, oldest version first. A record that does
/// not parse is an error naming its file.
pub(crate) fn records(
    workdir: &Path,
    app: &str,
    env: &str,
) -> Result<Vec<RecordSummary>, PromoteError> {
    let found = super::records::read_dir(
        workdir,
        &format!("releases/{app}/{env}"),
        ReleaseRecord::parse,
    )?;
    let mut out: Vec<RecordSummary> = found
        .into_iter()
        .filter_map(|(path, _, record)| {
            Some(RecordSummary {
                path,
                version: record.parsed_version()?,
                record,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.version, &a.record.promoted_at, &a.path).cmp(&(
            b.version,
            &b.record.promoted_at,
            &b.path,
        ))
    });
    Ok(out)
}

/// The approvals recorded for `env`: `(tag, approval)`, the tag from the file name (the path
/// `ferry approve` writes and the gate looks up).
pub(crate) fn approvals(
    workdir: &Path,
    app: &str,
    env: &str,
) -> Result<Vec<(String, Approval)>, PromoteError> {
    let found = super::records::read_dir(
        workdir,
        &format!("releases/{app}/approvals/{env}"),
        Approval::parse,
    )?;
    Ok(found.into_iter().map(|(_, tag, a)| (tag, a)).collect())
}

/// The next version in `releases/<app>/VERSION`, if the file exists and is valid.
pub(crate) fn next_version_file(
    workdir: &Path,
    app: &str,
) -> Result<Option<Version>, PromoteError> {
    let rel = version_path(app);
    match read_text(workdir, &rel)? {
        None => Ok(None),
        Some(t) => Version::parse(t.trim()).map(Some).ok_or_else(|| {
            PromoteError::Failed(format!(
                "{rel}: {:?} is not a MAJOR.MINOR.PATCH version",
                t.trim()
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_containment_respects_boundaries() {
        assert!(contains(b"image: r/app:v1 # x", b"v1"));
        assert!(!contains(b"image: r/app:v10 # x", b"v1"));
        assert!(!contains(b"image: r/app:xv1", b"v1"));
    }
}
