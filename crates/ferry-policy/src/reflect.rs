//! ImagePolicy status refs: digest reflection (`spec.digestReflectionPolicy`), the
//! `latestRef` / `observedPreviousRef` update rule and the Ready message.

use std::time::Duration;

use thiserror::Error;

/// `status.latestRef` / `observedPreviousRef` / an `observedPolicies` entry: the workspace's
/// one image reference type.
pub use ferry_core::ImageRef;

/// `spec.digestReflectionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestReflection {
    /// Never resolve digests; an existing one is dropped (the default).
    #[default]
    Never,
    /// Resolve once per elected name+tag and keep it.
    IfNotPresent,
    /// Resolve on every reconcile (mutable tags).
    Always,
}

/// An unknown `digestReflectionPolicy` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid digestReflectionPolicy '{0}', must be one of: Always, IfNotPresent, Never")]
pub struct InvalidDigestReflection(pub String);

impl DigestReflection {
    /// Parses the spec value; empty means `Never` (the CRD default).
    pub fn parse(s: &str) -> Result<DigestReflection, InvalidDigestReflection> {
        match s {
            "" | "Never" => Ok(DigestReflection::Never),
            "IfNotPresent" => Ok(DigestReflection::IfNotPresent),
            "Always" => Ok(DigestReflection::Always),
            other => Err(InvalidDigestReflection(other.to_owned())),
        }
    }

    /// ImagePolicy `GetInterval()`: only `Always` requeues periodically (default 10m).
    pub fn requeue_after(self, interval: Option<Duration>) -> Option<Duration> {
        match self {
            DigestReflection::Always => Some(
                interval
                    .filter(|d| !d.is_zero())
                    .unwrap_or(Duration::from_secs(600)),
            ),
            _ => None,
        }
    }

    /// Flux stalls (`IntervalNotConfigured`) an `Always` policy without `spec.interval`.
    pub fn interval_missing(self, interval: Option<Duration>) -> bool {
        self == DigestReflection::Always && interval.is_none()
    }
}

/// What to do about the digest of a newly elected tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAction {
    /// No digest (`Never`).
    None,
    /// Keep the stored digest (`IfNotPresent`, same name and tag, digest known).
    Reuse(String),
    /// HEAD the manifest of `name:tag`.
    Fetch,
}

/// Decides the digest of the elected `name:tag` given the stored `latestRef`.
pub fn digest_action(
    policy: DigestReflection,
    stored: Option<&ImageRef>,
    name: &str,
    tag: &str,
) -> DigestAction {
    match policy {
        DigestReflection::Never => DigestAction::None,
        DigestReflection::Always => DigestAction::Fetch,
        DigestReflection::IfNotPresent => match stored {
            Some(ImageRef {
                name: n,
                tag: t,
                digest: Some(digest),
            }) if n == name && t == tag => DigestAction::Reuse(digest.clone()),
            _ => DigestAction::Fetch,
        },
    }
}

/// New status refs after an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// New `latestRef`.
    pub latest: ImageRef,
    /// New `observedPreviousRef`.
    pub observed_previous: Option<ImageRef>,
    /// Whether `latestRef` changed (including only its digest).
    pub changed: bool,
}

/// `observedPreviousRef` moves only when `latestRef` changes (struct equality incl. digest):
/// then it becomes the old `latestRef` (nothing on the first election). It is never reset.
pub fn update_refs(
    latest: Option<&ImageRef>,
    observed_previous: Option<&ImageRef>,
    new: ImageRef,
) -> RefUpdate {
    if latest == Some(&new) {
        return RefUpdate {
            latest: new,
            observed_previous: observed_previous.cloned(),
            changed: false,
        };
    }
    RefUpdate {
        latest: new,
        observed_previous: latest.cloned(),
        changed: true,
    }
}

/// The Ready=True message: `Latest image tag for <name> resolved to <tag>[ with digest <d>]`
/// plus ` (previously <name>:<tag>[@<digest>])` when a different previous ref exists.
pub fn ready_message(latest: &ImageRef, observed_previous: Option<&ImageRef>) -> String {
    let mut msg = format!(
        "Latest image tag for {} resolved to {}",
        latest.name, latest.tag
    );
    if let Some(digest) = &latest.digest {
        msg.push_str(" with digest ");
        msg.push_str(digest);
    }
    if let Some(prev) = observed_previous
        && prev != latest
    {
        msg.push_str(&format!(" (previously {prev})"));
    }
    msg
}
