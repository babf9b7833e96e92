//! Registry credentials: `.dockerconfigjson` secrets (Flux `spec.secretRef`) and the local
//! Docker config as a fallback. Secrets never appear in `Debug` output or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// Username and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Errors reading credentials. Paths are named; secret values never are.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "secret {namespace}/{name} not found (no directory {path}); create it or fix spec.secretRef.name"
    )]
    SecretNotFound {
        namespace: String,
        name: String,
        path: PathBuf,
    },
    #[error(
        "secret {namespace}/{name} has no key .dockerconfigjson (expected file {path}); create it with `kubectl create secret docker-registry`"
    )]
    MissingKey {
        namespace: String,
        name: String,
        path: PathBuf,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: not a valid Docker config JSON: {reason}")]
    InvalidConfig { origin: String, reason: String },
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
}

#[derive(Deserialize)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// The `auths` map of a Docker config, keyed by normalised registry host.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    auths: BTreeMap<String, Credentials>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("registries", &self.auths.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DockerConfig {
    /// Parses `.dockerconfigjson` / `config.json` bytes. `origin` names the source in errors.
    pub fn parse(bytes: &[u8]) -> Result<DockerConfig, AuthError> {
        Self::parse_from(bytes, "docker config")
    }

    fn parse_from(bytes: &[u8], origin: &str) -> Result<DockerConfig, AuthError> {
        let invalid = |reason: String| AuthError::InvalidConfig {
            origin: origin.to_string(),
            reason,
        };
        // serde_json's message can quote input values (passwords), so report only the position.
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let creds = if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| invalid(format!("auths[{key:?}].auth is not base64")))?;
                let text = String::from_utf8(decoded)
                    .map_err(|_| invalid(format!("auths[{key:?}].auth is not UTF-8")))?;
                let (user, pass) = text.split_once(':').ok_or_else(|| {
                    invalid(format!(
                        "auths[{key:?}].auth must decode to username:password"
                    ))
                })?;
                Credentials::new(user, pass)
            } else if let Some(token) = entry.identity_token.filter(|t| !t.is_empty()) {
                // Docker's convention for identity tokens.
                Credentials::new("<token>", token)
            } else {
                Credentials::new(
                    entry.username.unwrap_or_default(),
                    entry.password.unwrap_or_default(),
                )
            };
            auths.insert(normalize_host(&key), creds);
        }
        Ok(DockerConfig { auths })
    }

    /// Credentials for a registry host (`index.docker.io` also matches `docker.io` entries).
    pub fn credentials_for(&self, registry: &str) -> Option<&Credentials> {
        let host = normalize_host(registry);
        self.auths.get(&host)
    }

    /// Registry hosts that have an entry.
    pub fn registries(&self) -> impl Iterator<Item = &str> {
        self.auths.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.auths.is_empty()
    }
}

/// Strips scheme and path and folds the Docker Hub aliases into `index.docker.io`.
fn normalize_host(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            crate::reference::DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// Reads `DIR/<namespace>/<secret>/.dockerconfigjson`, a Kubernetes Secret laid out as files.
pub fn load_secret_dockerconfig(
    secrets_dir: &Path,
    namespace: &str,
    secret_name: &str,
) -> Result<DockerConfig, AuthError> {
    let dir = secrets_dir.join(namespace).join(secret_name);
    if !dir.is_dir() {
        return Err(AuthError::SecretNotFound {
            namespace: namespace.to_string(),
            name: secret_name.to_string(),
            path: dir,
        });
    }
    let path = dir.join(".dockerconfigjson");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuthError::MissingKey {
                namespace: namespace.to_string(),
                name: secret_name.to_string(),
                path,
            });
        }
        Err(source) => return Err(AuthError::Io { path, source }),
    };
    DockerConfig::parse_from(&bytes, &path.display().to_string())
}

/// The local Docker config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
/// A missing file is an empty config, not an error.
pub fn load_local_docker_config() -> Result<DockerConfig, AuthError> {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match dirs::home_dir() {
            Some(home) => home.join(".docker").join("config.json"),
            None => return Ok(DockerConfig::default()),
        },
    };
    match std::fs::read(&path) {
        Ok(bytes) => DockerConfig::parse_from(&bytes, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
        Err(source) => Err(AuthError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auth_and_userpass_forms_and_aliases() {
        let cfg = DockerConfig::parse(
            br#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dTE6cDE="},
                "ghcr.io":{"username":"u2","password":"p:2"},
                "127.0.0.1:5000":{"auth":"dTM6cDM6eA=="}}}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.credentials_for("index.docker.io"),
            Some(&Credentials::new("u1", "p1"))
        );
        assert_eq!(
            cfg.credentials_for("docker.io"),
            Some(&Credentials::new("u1", "p1"))
        );
        assert_eq!(
            cfg.credentials_for("ghcr.io"),
            Some(&Credentials::new("u2", "p:2"))
        );
        assert_eq!(
            cfg.credentials_for("127.0.0.1:5000"),
            Some(&Credentials::new("u3", "p3:x"))
        );
        assert!(cfg.credentials_for("quay.io").is_none());
        let dbg = format!("{:?} {:?}", cfg, cfg.credentials_for("ghcr.io"));
        assert!(!dbg.contains("p:2"), "{dbg}");
    }

    #[test]
    fn secret_errors_are_distinct_and_name_paths() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_secret_dockerconfig(dir.path(), "ns", "creds").unwrap_err();
        assert!(matches!(err, AuthError::SecretNotFound { .. }), "{err}");
        assert!(err.to_string().contains("ns/creds"));
        std::fs::create_dir_all(dir.path().join("ns/creds")).unwrap();
        let err = load_secret_dockerconfig(dir.path(), "ns", "creds").unwrap_err();
        assert!(matches!(err, AuthError::MissingKey { .. }), "{err}");
        assert!(err.to_string().contains(".dockerconfigjson"));
        std::fs::write(dir.path().join("ns/creds/.dockerconfigjson"), b"{nope").unwrap();
        let err = load_secret_dockerconfig(dir.path(), "ns", "creds").unwrap_err();
        assert!(matches!(err, AuthError::InvalidConfig { .. }), "{err}");
        std::fs::write(
            dir.path().join("ns/creds/.dockerconfigjson"),
            br#"{"auths":{"r.example":{"auth":"YTpzZWNyZXQ="}}}"#,
        )
        .unwrap();
        let cfg = load_secret_dockerconfig(dir.path(), "ns", "creds").unwrap();
        assert_eq!(cfg.credentials_for("r.example").unwrap().password, "secret");
    }
}
