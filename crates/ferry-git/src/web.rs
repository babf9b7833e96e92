//! Links from a commit to the forge that hosts the repository, for people reading a history.

/// Hosts whose commit pages are `https://HOST/PATH/commit/SHA` (GitHub, GitLab, Gitea,
/// Forgejo), and Bitbucket's `.../commits/SHA`. Other hosts have no known web form.
fn commit_segment(host: &str) -> Option<&'static str> {
    let host = host.to_ascii_lowercase();
    let first = host.split('.').next().unwrap_or_default();
    match host.as_str() {
        "bitbucket.org" => Some("commits"),
        "github.com" | "gitlab.com" | "codeberg.org" | "gitea.com" => Some("commit"),
        _ if matches!(first, "github" | "gitlab" | "gitea" | "forgejo") => Some("commit"),
        _ => None,
    }
}

/// The web page of commit `sha` in the repository cloned from `url` (https, ssh or scp-like),
/// when its host has a known web form; never carries credentials.
pub fn commit_web_url(url: &str, sha: &str) -> Option<String> {
    if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (host, path) = if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
    {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        // An ssh port is not part of the web address.
        (host.split(':').next()?, path)
    } else {
        // scp-like `user@host:path`
        let (userhost, path) = url.split_once(':')?;
        (userhost.rsplit('@').next()?, path)
    };
    let segment = commit_segment(host)?;
    let path = path.trim_matches('/').trim_end_matches(".git");
    if path.is_empty() || path.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("https://{host}/{path}/{segment}/{sha}"))
}

#[cfg(test)]
mod tests {
    use super::commit_web_url;

    #[test]
    fn known_forges_get_links_and_others_do_not() {
        let sha = "0123abcd";
        for (url, want) in [
            (
                "https://github.com/org/fleet.git",
                Some("https://github.com/org/fleet/commit/0123abcd"),
            ),
            (
                "https://user:s3cret@gitlab.com/group/sub/fleet",
                Some("https://gitlab.com/group/sub/fleet/commit/0123abcd"),
            ),
            (
                "git@github.com:org/fleet.git",
                Some("https://github.com/org/fleet/commit/0123abcd"),
            ),
            (
                "ssh://git@gitea.example.org:2222/org/fleet.git",
                Some("https://gitea.example.org/org/fleet/commit/0123abcd"),
            ),
            (
                "https://bitbucket.org/org/fleet.git",
                Some("https://bitbucket.org/org/fleet/commits/0123abcd"),
            ),
            ("http://127.0.0.1:3000/git/fleet.git", None),
            ("file:///srv/git/fleet.git", None),
            ("git://github.com/org/fleet.git", None),
        ] {
            assert_eq!(commit_web_url(url, sha).as_deref(), want, "{url}");
        }
        assert_eq!(
            commit_web_url("https://github.com/org/fleet", "not-a-sha"),
            None
        );
        assert!(
            !commit_web_url("https://user:s3cret@github.com/o/r", sha)
                .unwrap_or_default()
                .contains("s3cret")
        );
    }
}
