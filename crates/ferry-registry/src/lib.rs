//! ferry-registry: Ferry's own OCI distribution client (reqwest + rustls + tokio).
//!
//! Owns: image-name parsing with Flux's rules ([`reference`]), registry credentials from
//! `.dockerconfigjson` secrets ([`auth`]), TLS material from certificate secrets ([`tls`]), and the
//! HTTP client for tags, manifests and blobs ([`client`]) with Basic/Bearer auth, bounded retries,
//! per-registry concurrency limits and request counters. Manifests stay raw bytes end to end, so a
//! retag or promotion never changes a digest.
//!
//! Must not: touch Kubernetes objects, the store, git or policy logic; print credentials or tokens
//! (Debug impls redact them and errors never include them).

pub mod auth;
pub mod client;
pub mod error;
pub mod layout;
pub mod reference;
pub mod tls;

pub use auth::{
    AuthError, Credentials, DockerConfig, load_local_docker_config, load_secret_dockerconfig,
};
pub use client::{
    BlobCopy, ClientOptions, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, Manifest,
    MountOutcome, OCI_INDEX, OCI_MANIFEST, RegistryClient, RepoAccess, RequestStats, RetryPolicy,
    sha256_digest,
};
#[doc(hidden)]
pub use client::{ManifestRefs, manifest_references, next_link, parse_challenge, parse_tag_page};
pub use error::RegistryError;
pub use reference::{ImageName, ReferenceError};
pub use tls::{TlsError, TlsMaterial};
