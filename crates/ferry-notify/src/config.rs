//! `--notify-config FILE`: the receivers.
//!
//! ```yaml
//! receivers:
//!   - name: team-chat
//!     provider: slack            # webhook (default), slack, teams
//!     url: http://127.0.0.1:8080/hook
//!     secretFile: /run/secrets/hmac   # webhook only: X-Ferry-Signature: sha256=<hex>
//!     apps: [backend]            # empty or absent: all
//!     envs: [production]
//!     events: [promotion, rollback]
//! ```

use std::path::{Path, PathBuf};

use crate::event::{Event, EventKind};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Webhook,
    Slack,
    Teams,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReceiver {
    name: String,
    #[serde(default)]
    provider: Provider,
    url: String,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    apps: Vec<String>,
    #[serde(default)]
    envs: Vec<String>,
    #[serde(default)]
    events: Vec<EventKind>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    receivers: Vec<RawReceiver>,
}

/// One receiver, ready to use (its secret read).
#[derive(Clone)]
pub struct Receiver {
    pub name: String,
    pub provider: Provider,
    pub url: String,
    /// HMAC-SHA256 key (generic webhooks only).
    pub secret: Option<Vec<u8>>,
    pub apps: Vec<String>,
    pub envs: Vec<String>,
    pub events: Vec<EventKind>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL (Slack/Teams URLs are credentials) nor the secret.
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// True when the receiver's filters let `e` through.
    pub fn wants(&self, e: &Event) -> bool {
        (self.apps.is_empty() || self.apps.contains(&e.app))
            && (self.envs.is_empty() || self.envs.contains(&e.env))
            && (self.events.is_empty() || self.events.contains(&e.kind))
    }
}

#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub receivers: Vec<Receiver>,
}

impl NotifyConfig {
    /// Reads and checks the file; errors name it (and the receiver).
    pub fn load(path: &Path) -> Result<NotifyConfig, ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let raw: RawConfig = serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut receivers = Vec::new();
        for (i, r) in raw.receivers.into_iter().enumerate() {
            let at = format!("receivers[{i}] ({:?})", r.name);
            if r.name.trim().is_empty() {
                return Err(bad(format!("receivers[{i}]: name must not be empty")));
            }
            if receivers.iter().any(|x: &Receiver| x.name == r.name) {
                return Err(bad(format!("{at}: duplicate name")));
            }
            if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
                return Err(bad(format!("{at}: url must be http:// or https://")));
            }
            let secret = match &r.secret_file {
                Some(_) if r.provider != Provider::Webhook => {
                    return Err(bad(format!(
                        "{at}: secretFile is for provider webhook only"
                    )));
                }
                Some(f) => {
                    let bytes = std::fs::read(f)
                        .map_err(|e| bad(format!("{at}: secretFile {}: {e}", f.display())))?;
                    let key = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
                    if key.is_empty() {
                        return Err(bad(format!("{at}: secretFile {} is empty", f.display())));
                    }
                    Some(key)
                }
                None => None,
            };
            receivers.push(Receiver {
                name: r.name,
                provider: r.provider,
                url: r.url,
                secret,
                apps: r.apps,
                envs: r.envs,
                events: r.events,
            });
        }
        Ok(NotifyConfig { receivers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_filters_and_rejects_bad_receivers() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cret\n").unwrap();
        let file = dir.path().join("notify.yaml");
        std::fs::write(
            &file,
            format!(
                "receivers:\n  - name: a\n    url: http://127.0.0.1:1/x\n    secretFile: {}\n    envs: [production]\n    events: [promotion, rollback]\n  - name: b\n    provider: teams\n    url: http://127.0.0.1:1/y\n",
                key.display()
            ),
        )
        .unwrap();
        let c = NotifyConfig::load(&file).unwrap();
        assert_eq!(c.receivers.len(), 2);
        assert_eq!(c.receivers[0].secret.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(c.receivers[1].provider, Provider::Teams);
        assert!(!format!("{:?}", c.receivers[0]).contains("127.0.0.1"));

        for (yaml, needle) in [
            (
                "receivers:\n  - name: a\n    url: ftp://x\n",
                "url must be http",
            ),
            (
                "receivers:\n  - name: a\n    url: http://x\n    events: [deploy]\n",
                "deploy",
            ),
            (
                "receivers:\n  - name: a\n    url: http://x\n  - name: a\n    url: http://y\n",
                "duplicate",
            ),
            (
                "receivers:\n  - name: a\n    provider: slack\n    url: http://x\n    secretFile: k\n",
                "webhook only",
            ),
        ] {
            std::fs::write(&file, yaml).unwrap();
            let e = NotifyConfig::load(&file).unwrap_err().to_string();
            assert!(e.contains("notify.yaml") && e.contains(needle), "{e}");
        }
    }
}
