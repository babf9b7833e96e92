//! Credentials for a remote and how they reach git without touching argv, `.git/config` or logs.
//!
//! A [`Session`] materializes a [`Remote`]'s credentials once: HTTP credentials become an
//! `http.<url>.extraHeader` passed through `GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` (environment,
//! never argv); the CA becomes a 0600 file named by `http.sslCAInfo`; an SSH identity and
//! known_hosts become 0600 files named in `GIT_SSH_COMMAND`. The files live in a 0700 directory
//! under the cache root, removed on drop (and swept on the next start if the process was killed).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::error::{GitError, redact_url_userinfo};

/// Credentials for one remote, as found in a Flux GitRepository `secretRef`.
///
/// `Debug` never shows a secret (only whether it is set).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitAuth {
    /// HTTP Basic user name (Secret key `username`).
    pub username: Option<String>,
    /// HTTP Basic password (`password`); with an SSH identity, the identity's passphrase.
    pub password: Option<String>,
    /// HTTP bearer token (`bearerToken`).
    pub bearer_token: Option<String>,
    /// OpenSSH private key bytes (`identity`).
    pub ssh_identity: Option<Vec<u8>>,
    /// known_hosts lines for SSH host verification (`known_hosts`). Without them, SSH fails closed.
    pub known_hosts: Option<Vec<u8>>,
    /// PEM CA bundle for HTTPS (`ca.crt`, or the older `caFile`).
    pub ca_cert: Option<Vec<u8>>,
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn set<T>(v: &Option<T>) -> &'static str {
            if v.is_some() { "<redacted>" } else { "<none>" }
        }
        f.debug_struct("GitAuth")
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .field("bearer_token", &set(&self.bearer_token))
            .field("ssh_identity", &set(&self.ssh_identity))
            .field("known_hosts", &self.known_hosts.as_ref().map(|k| k.len()))
            .field("ca_cert", &self.ca_cert.as_ref().map(|c| c.len()))
            .finish()
    }
}

impl GitAuth {
    /// No credentials at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// HTTP Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        GitAuth {
            username: Some(username.into()),
            password: Some(password.into()),
            ..Self::default()
        }
    }

    /// Builds credentials from a Flux GitRepository Secret's data (keys `username`,
    /// `password`, `bearerToken`, `identity`, `known_hosts`, `ca.crt`/`caFile`).
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Self {
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        GitAuth {
            username: text("username"),
            password: text("password"),
            bearer_token: text("bearerToken"),
            ssh_identity: data.get("identity").cloned(),
            known_hosts: data.get("known_hosts").cloned(),
            ca_cert: data.get("ca.crt").or_else(|| data.get("caFile")).cloned(),
        }
    }

    /// Every secret string, for redaction of git's output.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = &self.password {
            v.push(p.clone());
        }
        if let Some(t) = &self.bearer_token {
            v.push(t.clone());
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            v.push(basic_token(u, p));
        }
        v
    }
}

fn basic_token(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// A remote repository: URL, credentials and the time limit for each network operation.
#[derive(Clone)]
pub struct Remote {
    /// Clone URL (`https://`, `http://`, `ssh://`, `user@host:path`, `git://`, `file://`).
    /// Userinfo with a password is accepted but moved out of the URL before git sees it.
    pub url: String,
    /// Credentials.
    pub auth: GitAuth,
    /// Limit for each network command (fetch, push, ls-remote). Flux's default is 60 s.
    pub timeout: Duration,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &redact_url_userinfo(&self.url))
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Remote {
    /// A remote with the default timeout (60 s).
    pub fn new(url: impl Into<String>, auth: GitAuth) -> Self {
        Remote {
            url: url.into(),
            auth,
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the per-command timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL for logs and errors: userinfo replaced by `***`.
    pub fn display_url(&self) -> String {
        redact_url_userinfo(&self.url)
    }

    /// The URL without any userinfo (for http/https), which is also the cache key.
    pub(crate) fn clean_url(&self) -> Result<(String, Option<UserInfo>), GitError> {
        split_userinfo(&self.url)
    }
}

/// `user` and optional `password` taken out of a URL.
pub(crate) type UserInfo = (String, Option<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Http,
    Ssh,
    Git,
    File,
}

pub(crate) fn transport_of(url: &str) -> Transport {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Transport::Http
    } else if lower.starts_with("ssh://") || lower.starts_with("git+ssh://") {
        Transport::Ssh
    } else if lower.starts_with("git://") {
        Transport::Git
    } else if lower.starts_with("file://") || url.starts_with('/') {
        Transport::File
    } else if url.contains(':') && !url.contains("://") {
        // scp-like `user@host:path`
        Transport::Ssh
    } else {
        Transport::File
    }
}

/// For http(s) URLs, removes `user[:pass]@` and returns it; other URLs pass through unchanged
/// (an ssh user name is not a secret, and ssh URLs carry no password).
fn split_userinfo(url: &str) -> Result<(String, Option<UserInfo>), GitError> {
    if url.starts_with('-') {
        return Err(GitError::invalid("url", "a URL must not start with '-'"));
    }
    if url.chars().any(|c| c.is_control()) {
        return Err(GitError::invalid("url", "control characters in URL"));
    }
    if transport_of(url) != Transport::Http {
        return Ok((url.to_string(), None));
    }
    let Some(scheme_end) = url.find("://") else {
        return Ok((url.to_string(), None));
    };
    let after = &url[scheme_end + 3..];
    let auth_end = after.find('/').unwrap_or(after.len());
    let authority = &after[..auth_end];
    match authority.rfind('@') {
        None => Ok((url.to_string(), None)),
        Some(at) => {
            let userinfo = &authority[..at];
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
                None => (percent_decode(userinfo), None),
            };
            let clean = format!(
                "{}{}{}",
                &url[..scheme_end + 3],
                &authority[at + 1..],
                &after[auth_end..]
            );
            Ok((clean, Some((user, pass))))
        }
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `scheme://host[:port]/` of an http(s) URL: the scope of the auth header, so it is never
/// sent to another host (for example after a redirect).
fn http_scope(url: &str) -> Option<String> {
    let scheme_end = url.find("://")?;
    let after = &url[scheme_end + 3..];
    let auth_end = after.find('/').unwrap_or(after.len());
    Some(format!("{}{}/", &url[..scheme_end + 3], &after[..auth_end]))
}

/// Credentials materialized for git commands against one remote.
pub(crate) struct Session {
    /// URL without userinfo (http); safe for argv.
    pub url: String,
    /// URL for messages.
    pub display: String,
    /// Extra environment for network commands.
    pub env: Vec<(String, String)>,
    /// Extra `GIT_CONFIG_*` entries for network commands.
    pub config: Vec<(String, String)>,
    /// Strings to redact from any output.
    pub secrets: Vec<String>,
    /// Per-command limit.
    pub timeout: Duration,
    _dir: Option<tempfile::TempDir>,
}

impl Session {
    /// Materializes `remote`'s credentials under `scratch` (a directory of the cache root).
    pub fn new(remote: &Remote, scratch: &Path) -> Result<Session, GitError> {
        let (url, userinfo) = remote.clean_url()?;
        let mut auth = remote.auth.clone();
        let mut secrets = auth.secrets();
        if let Some((user, pass)) = userinfo {
            // Userinfo in the URL only fills what the Secret did not provide.
            if let Some(p) = &pass {
                secrets.push(p.clone());
                secrets.push(basic_token(&user, p));
            }
            if auth.username.is_none() && auth.bearer_token.is_none() {
                auth.username = Some(user);
                if auth.password.is_none() {
                    auth.password = pass;
                }
                secrets.extend(auth.secrets());
            }
        }
        let mut session = Session {
            display: redact_url_userinfo(&remote.url),
            url,
            env: Vec::new(),
            config: Vec::new(),
            secrets,
            timeout: remote.timeout,
            _dir: None,
        };
        let transport = transport_of(&session.url);
        let needs_files = match transport {
            Transport::Http => auth.ca_cert.is_some(),
            Transport::Ssh => true,
            _ => false,
        };
        let dir = if needs_files {
            fs::create_dir_all(scratch).map_err(|e| GitError::io("create", scratch, e))?;
            let d = tempfile::Builder::new()
                .prefix(&format!("cred-{}-", std::process::id()))
                .tempdir_in(scratch)
                .map_err(|e| GitError::io("create a credentials directory in", scratch, e))?;
            Some(d)
        } else {
            None
        };
        match transport {
            Transport::Http => session.configure_http(&auth, dir.as_ref())?,
            Transport::Ssh => {
                let d = dir
                    .as_ref()
                    .map(|d| d.path().to_path_buf())
                    .unwrap_or_default();
                session.configure_ssh(&auth, &d, remote.timeout)?;
            }
            Transport::Git | Transport::File => {}
        }
        session._dir = dir;
        Ok(session)
    }

    /// An http(s) remote: the auth header scoped to the remote's origin, and its CA.
    fn configure_http(
        &mut self,
        auth: &GitAuth,
        dir: Option<&tempfile::TempDir>,
    ) -> Result<(), GitError> {
        let scope = http_scope(&self.url).unwrap_or_else(|| self.url.clone());
        let header = if let Some(t) = &auth.bearer_token {
            Some(format!("Authorization: Bearer {t}"))
        } else if let Some(u) = &auth.username {
            let p = auth.password.as_deref().unwrap_or("");
            Some(format!("Authorization: Basic {}", basic_token(u, p)))
        } else {
            None
        };
        if let Some(h) = header {
            self.config.push((format!("http.{scope}.extraHeader"), h));
        }
        if let (Some(ca), Some(d)) = (&auth.ca_cert, dir) {
            let p = write_private(d.path(), "ca.crt", ca, 0o600)?;
            self.config.push(("http.sslCAInfo".into(), path_str(&p)?));
            self.config.push(("http.sslVerify".into(), "true".into()));
        }
        Ok(())
    }

    /// An ssh remote: known_hosts and key files in `d`, strict host checking, no prompts.
    fn configure_ssh(
        &mut self,
        auth: &GitAuth,
        d: &Path,
        timeout: Duration,
    ) -> Result<(), GitError> {
        let kh = write_private(
            d,
            "known_hosts",
            auth.known_hosts.as_deref().unwrap_or(b""),
            0o600,
        )?;
        let mut cmd = format!(
            "ssh -F /dev/null -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout={}",
            shell_quote(&path_str(&kh)?),
            timeout.as_secs().max(1)
        );
        if let Some(key) = &auth.ssh_identity {
            let mut key = key.clone();
            // ssh rejects a key file without a final newline
            if !key.ends_with(b"\n") {
                key.push(b'\n');
            }
            let k = write_private(d, "identity", &key, 0o600)?;
            cmd.push_str(&format!(" -i {}", shell_quote(&path_str(&k)?)));
            if let Some(pass) = &auth.password {
                // The passphrase goes through SSH_ASKPASS reading a 0600 file.
                let pf = write_private(d, "passphrase", pass.as_bytes(), 0o600)?;
                let script = format!("#!/bin/sh\ncat {}\n", shell_quote(&path_str(&pf)?));
                let sp = write_private(d, "askpass.sh", script.as_bytes(), 0o700)?;
                self.env.push(("SSH_ASKPASS".into(), path_str(&sp)?));
                self.env
                    .push(("SSH_ASKPASS_REQUIRE".into(), "force".into()));
                self.env.push(("DISPLAY".into(), ":0".into()));
            } else {
                cmd.push_str(" -o BatchMode=yes");
            }
        } else {
            cmd.push_str(" -o BatchMode=yes");
        }
        self.env.push(("GIT_SSH_COMMAND".into(), cmd));
        self.env.push(("GIT_SSH_VARIANT".into(), "ssh".into()));
        Ok(())
    }
}

pub(crate) fn path_str(p: &Path) -> Result<String, GitError> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| GitError::invalid("path", format!("not UTF-8: {}", p.display())))
}

pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes `data` to `dir/name` created with `mode` (never world-readable, not even briefly).
pub(crate) fn write_private(
    dir: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<PathBuf, GitError> {
    let p = dir.join(name);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&p)
        .map_err(|e| GitError::io("create", &p, e))?;
    f.write_all(data)
        .map_err(|e| GitError::io("write", &p, e))?;
    Ok(p)
}

/// Removes credential directories left by processes that no longer exist (after a kill -9).
pub(crate) fn sweep_stale(scratch: &Path) {
    let Ok(rd) = fs::read_dir(scratch) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix("cred-")
            .or_else(|| name.strip_prefix("sign-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_split_off() {
        let (u, info) = split_userinfo("https://bob:p%40ss@h:1/x.git").unwrap();
        assert_eq!(u, "https://h:1/x.git");
        assert_eq!(info, Some(("bob".into(), Some("p@ss".into()))));
        let (u, info) = split_userinfo("ssh://git@h/x").unwrap();
        assert_eq!(u, "ssh://git@h/x");
        assert!(info.is_none());
        assert!(split_userinfo("-oProxyCommand=x").is_err());
    }

    #[test]
    fn debug_redacts() {
        let a = GitAuth {
            bearer_token: Some("tok-123456".into()),
            ssh_identity: Some(b"PRIVATE".to_vec()),
            ..GitAuth::basic("bob", "hunter22")
        };
        let d = format!("{a:?}");
        assert!(!d.contains("hunter22") && !d.contains("tok-123456") && !d.contains("PRIVATE"));
        let r = Remote::new("https://bob:hunter22@h/x", a);
        assert!(!format!("{r:?}").contains("hunter22"));
    }

    #[test]
    fn from_flux_secret_keys() {
        let data = BTreeMap::from([
            ("username".to_string(), b"bob".to_vec()),
            ("password".to_string(), b"pw".to_vec()),
            ("bearerToken".to_string(), b"tok".to_vec()),
            ("identity".to_string(), b"KEY".to_vec()),
            ("known_hosts".to_string(), b"h ssh-ed25519 AAA".to_vec()),
            ("caFile".to_string(), b"OLD".to_vec()),
            ("ca.crt".to_string(), b"NEW".to_vec()),
        ]);
        let a = GitAuth::from_secret_data(&data);
        assert_eq!(a.username.as_deref(), Some("bob"));
        assert_eq!(a.password.as_deref(), Some("pw"));
        assert_eq!(a.bearer_token.as_deref(), Some("tok"));
        assert_eq!(a.ssh_identity.as_deref(), Some(&b"KEY"[..]));
        assert_eq!(
            a.ca_cert.as_deref(),
            Some(&b"NEW"[..]),
            "ca.crt wins over caFile"
        );
    }

    #[test]
    fn transports() {
        assert_eq!(transport_of("git@github.com:a/b.git"), Transport::Ssh);
        assert_eq!(transport_of("/tmp/x"), Transport::File);
        assert_eq!(transport_of("git://h/x"), Transport::Git);
    }
}
