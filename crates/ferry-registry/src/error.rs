//! Registry errors. Each `Display` is one line fit for a Ready-condition message: it names
//! the URL or repository and what to do, and never carries a password or token.

use std::time::Duration;

/// A failed registry operation.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 401/403 from the registry or its token service.
    #[error(
        "unauthorized (HTTP {status}) for {what} at {url}: check the credentials in spec.secretRef{detail}"
    )]
    Unauthorized {
        status: u16,
        what: String,
        url: String,
        detail: String,
    },
    /// 404 for a repository, manifest, tag or blob.
    #[error("{what} not found at {url}{detail}")]
    NotFound {
        what: String,
        url: String,
        detail: String,
    },
    /// Connection refused, DNS failure, no route.
    #[error("registry unreachable at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The connection broke after it was established (reset, closed early).
    #[error("connection to {url} failed: {detail}")]
    Connection { url: String, detail: String },
    /// The server certificate did not verify.
    #[error(
        "TLS handshake with {url} failed: certificate not trusted; set certSecretRef ca.crt ({detail})"
    )]
    Tls { url: String, detail: String },
    /// No complete answer within the per-request timeout.
    #[error("request to {url} timed out after {}s (spec.timeout)", .after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    /// An answer that breaks the distribution protocol (bad JSON, missing headers, digest mismatch).
    #[error("invalid response from {url}: {detail}")]
    InvalidResponse { url: String, detail: String },
    /// 5xx, 408 or 429 still failing after the bounded retries.
    #[error("registry error HTTP {status} from {url} after {attempts} attempt(s){detail}")]
    Server {
        status: u16,
        url: String,
        attempts: u32,
        detail: String,
    },
    /// Another 4xx the registry refused the request with (e.g. a manifest it rejects).
    #[error("registry rejected the request with HTTP {status} at {url}{detail}")]
    Rejected {
        status: u16,
        url: String,
        detail: String,
    },
    /// Client-side configuration problem (bad CA PEM, bad client key).
    #[error("registry client configuration: {0}")]
    Config(String),
}

impl RegistryError {
    /// True for failures worth retrying at the next reconcile (not configuration or auth problems).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. }
                | RegistryError::Connection { .. }
                | RegistryError::Timeout { .. }
                | RegistryError::Server { .. }
        )
    }

    /// A short stable kind name (metrics labels, condition reasons).
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unauthorized { .. } => "Unauthorized",
            RegistryError::NotFound { .. } => "NotFound",
            RegistryError::Unreachable { .. } => "Unreachable",
            RegistryError::Connection { .. } => "Connection",
            RegistryError::Tls { .. } => "Tls",
            RegistryError::Timeout { .. } => "Timeout",
            RegistryError::InvalidResponse { .. } => "InvalidResponse",
            RegistryError::Server { .. } => "Server",
            RegistryError::Rejected { .. } => "Rejected",
            RegistryError::Config(_) => "Config",
        }
    }
}

/// `": CODE: message"` from a distribution error body, or empty. Bounded and single-line.
pub(crate) fn error_body_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
        return String::new();
    };
    let Some(first) = parsed.errors.first() else {
        return String::new();
    };
    let mut text = format!(": {}: {}", first.code, first.message);
    text.retain(|c| c != '\n' && c != '\r');
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
