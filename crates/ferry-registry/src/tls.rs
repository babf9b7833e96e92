//! TLS material from a Flux `spec.certSecretRef` Secret laid out as files.

use std::fmt;
use std::path::{Path, PathBuf};

/// PEM bytes: an extra CA bundle (added to the system roots) and an optional client identity.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsMaterial {
    pub ca_pem: Option<Vec<u8>>,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem.as_ref().map(|b| b.len()))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|b| b.len()),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Errors reading a certificate Secret.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "secret {namespace}/{name} not found (no directory {path}); create it or fix spec.certSecretRef.name"
    )]
    SecretNotFound {
        namespace: String,
        name: String,
        path: PathBuf,
    },
    #[error("secret {namespace}/{name}: {present} is set but {missing} is missing ({path})")]
    IncompletePair {
        namespace: String,
        name: String,
        present: &'static str,
        missing: &'static str,
        path: PathBuf,
    },
    #[error("secret {namespace}/{name} has none of ca.crt, tls.crt, tls.key ({path})")]
    Empty {
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
}

impl TlsMaterial {
    pub fn is_empty(&self) -> bool {
        self.ca_pem.is_none() && self.client_cert_pem.is_none() && self.client_key_pem.is_none()
    }

    /// A CA bundle only.
    pub fn with_ca(ca_pem: Vec<u8>) -> Self {
        TlsMaterial {
            ca_pem: Some(ca_pem),
            ..Default::default()
        }
    }

    /// Reads `DIR/<namespace>/<secret>/{ca.crt,tls.crt,tls.key}` (each optional, but
    /// `tls.crt` and `tls.key` come together, and at least one file must exist).
    pub fn load_secret(
        secrets_dir: &Path,
        namespace: &str,
        secret_name: &str,
    ) -> Result<Self, TlsError> {
        let dir = secrets_dir.join(namespace).join(secret_name);
        if !dir.is_dir() {
            return Err(TlsError::SecretNotFound {
                namespace: namespace.to_string(),
                name: secret_name.to_string(),
                path: dir,
            });
        }
        let read = |file: &str| -> Result<Option<Vec<u8>>, TlsError> {
            let path = dir.join(file);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(TlsError::Io { path, source }),
            }
        };
        let material = TlsMaterial {
            ca_pem: read("ca.crt")?,
            client_cert_pem: read("tls.crt")?,
            client_key_pem: read("tls.key")?,
        };
        let pair = |present, missing| TlsError::IncompletePair {
            namespace: namespace.to_string(),
            name: secret_name.to_string(),
            present,
            missing,
            path: dir.clone(),
        };
        match (&material.client_cert_pem, &material.client_key_pem) {
            (Some(_), None) => return Err(pair("tls.crt", "tls.key")),
            (None, Some(_)) => return Err(pair("tls.key", "tls.crt")),
            _ => {}
        }
        if material.is_empty() {
            return Err(TlsError::Empty {
                namespace: namespace.to_string(),
                name: secret_name.to_string(),
                path: dir,
            });
        }
        Ok(material)
    }
}
