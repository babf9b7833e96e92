//! Kubernetes Secrets as mounted files: `DIR/<namespace>/<secret-name>/<key>`.

use std::path::{Path, PathBuf};

use crate::EngineError;

/// Reads Secrets laid out like a Kubernetes Secret volume mount.
#[derive(Debug, Clone, Default)]
pub struct SecretsDir {
    root: Option<PathBuf>,
}

impl SecretsDir {
    pub fn new(root: Option<PathBuf>) -> SecretsDir {
        SecretsDir { root }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The directory of one Secret, or an error saying how to provide it.
    pub fn secret_dir(&self, namespace: &str, name: &str, referrer: &str) -> Result<PathBuf, EngineError> {
        let Some(root) = &self.root else {
            return Err(EngineError::Secret(format!(
                "{referrer} references Secret {namespace}/{name}, but no --secrets-dir was given \
                 (expected DIR/{namespace}/{name}/<key>)"
            )));
        };
        let dir = root.join(namespace).join(name);
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

    /// One required key of a Secret.
    pub fn key(&self, namespace: &str, name: &str, key: &str, referrer: &str) -> Result<Vec<u8>, EngineError> {
        self.optional_key(namespace, name, key, referrer)?.ok_or_else(|| {
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
