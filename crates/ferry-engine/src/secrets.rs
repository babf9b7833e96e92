//! Kubernetes Secrets as mounted files: `DIR/<namespace>/<secret-name>/<key>`; and, for
//! `serviceAccountName`, each ServiceAccount's `imagePullSecrets` names as the lines of
//! `DIR/.serviceaccounts/<namespace>/<name>` (no namespace starts with a dot).

use std::path::{Path, PathBuf};

use crate::EngineError;

/// The folder, under a Secrets root, of the ServiceAccounts' pull-secret lists.
pub const SERVICE_ACCOUNTS: &str = ".serviceaccounts";

/// Reads Secrets laid out like a Kubernetes Secret volume mount.
#[derive(Debug, Clone, Default)]
pub struct SecretsDir {
    root: Option<PathBuf>,
    /// The folder mirrors the cluster's Secrets (controller mode): errors name the Secret, not
    /// the private folder.
    from_api: bool,
}

impl SecretsDir {
    pub fn new(root: Option<PathBuf>) -> SecretsDir {
        SecretsDir {
            root,
            from_api: false,
        }
    }

    /// A folder the controller fills from the API with the Secrets the objects reference.
    pub fn mirrored_from_api(root: PathBuf) -> SecretsDir {
        SecretsDir {
            root: Some(root),
            from_api: true,
        }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The directory of one Secret, or an error saying how to provide it.
    pub fn secret_dir(
        &self,
        namespace: &str,
        name: &str,
        referrer: &str,
    ) -> Result<PathBuf, EngineError> {
        let Some(root) = &self.root else {
            return Err(EngineError::Secret(format!(
                "{referrer} references Secret {namespace}/{name}, but no --secrets-dir was given \
                 (expected DIR/{namespace}/{name}/<key>)"
            )));
        };
        let dir = root.join(namespace).join(name);
        if !dir.is_dir() && self.from_api {
            return Err(EngineError::Secret(format!(
                "{referrer}: Secret {namespace}/{name} not found (or not readable by the controller)"
            )));
        }
        if !dir.is_dir() {
            return Err(EngineError::Secret(format!(
                "{referrer}: Secret {namespace}/{name} not found: no directory {}",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// One key of a Secret; `Ok(None)` when the Secret exists but lacks the key.
    pub fn optional_key(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        referrer: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let dir = self.secret_dir(namespace, name, referrer)?;
        let path = dir.join(key);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::Secret(format!(
                "{referrer}: cannot read Secret key {}: {e}",
                path.display()
            ))),
        }
    }

    /// Every key of a Secret, by name.
    pub fn all_keys(
        &self,
        namespace: &str,
        name: &str,
        referrer: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<u8>>, EngineError> {
        let dir = self.secret_dir(namespace, name, referrer)?;
        let mut data = std::collections::BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            EngineError::Secret(format!(
                "{referrer}: cannot read Secret {}: {e}",
                dir.display()
            ))
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(|e| {
                    EngineError::Secret(format!("{referrer}: cannot read {}: {e}", path.display()))
                })?;
                data.insert(entry.file_name().to_string_lossy().into_owned(), bytes);
            }
        }
        Ok(data)
    }

    /// Git credentials from a Flux GitRepository `secretRef` (keys `username`, `password`,
    /// `bearerToken`, `identity`, `known_hosts`, `ca.crt`); none without a reference.
    pub fn git_auth(
        &self,
        namespace: &str,
        secret: Option<&str>,
        referrer: &str,
    ) -> Result<ferry_git::GitAuth, EngineError> {
        match secret {
            Some(name) => Ok(ferry_git::GitAuth::from_secret_data(
                &self.all_keys(namespace, name, referrer)?,
            )),
            None => Ok(ferry_git::GitAuth::none()),
        }
    }

    /// The `imagePullSecrets` of ServiceAccount `namespace/name`, or an error saying how to
    /// provide them.
    pub fn pull_secrets(
        &self,
        namespace: &str,
        name: &str,
        referrer: &str,
    ) -> Result<Vec<String>, EngineError> {
        let Some(root) = &self.root else {
            return Err(EngineError::Secret(format!(
                "{referrer} names ServiceAccount {namespace}/{name}, but no --secrets-dir was given \
                 (expected DIR/.serviceaccounts/{namespace}/{name} listing its imagePullSecrets)"
            )));
        };
        let path = root.join(SERVICE_ACCOUNTS).join(namespace).join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()),
            Err(_) if self.from_api => Err(EngineError::Secret(format!(
                "{referrer}: ServiceAccount {namespace}/{name} not found (or not readable by the controller)"
            ))),
            Err(e) => Err(EngineError::Secret(format!(
                "{referrer}: ServiceAccount {namespace}/{name}: cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// One required key of a Secret.
    pub fn key(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        referrer: &str,
    ) -> Result<Vec<u8>, EngineError> {
        self.optional_key(namespace, name, key, referrer)?
            .ok_or_else(|| {
                EngineError::Secret(format!(
                    "{referrer}: Secret {namespace}/{name} has no key {key:?} (expected file {})",
                    self.root
                        .as_deref()
                        .unwrap_or(Path::new("."))
                        .join(namespace)
                        .join(name)
                        .join(key)
                        .display()
                ))
            })
    }
}
