//! Leader election on a `coordination.k8s.io/v1` Lease, so that replicas never reconcile at the
//! same time: one holds the Lease and renews it; the others wait and take it over once it has
//! not been renewed for its duration. A leader that cannot renew in time stops (the process exits
//! and is restarted), as controller-runtime's leaders do, rather than risk two writers.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use crate::ControllerError;

/// Lease timing (controller-runtime's defaults).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
    pub renew_every: Duration,
    pub retry_every: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: String, identity: String) -> LeaseConfig {
        LeaseConfig {
            namespace,
            name: "ferry-controller-leader".to_string(),
            identity,
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }
}

pub struct Leader {
    api: Api<Lease>,
    config: LeaseConfig,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn expired(spec: &LeaseSpec, at: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref() else {
        return true;
    };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let deadline = renewed.0.as_second().saturating_add(secs);
    at.as_second() > deadline
}

impl Leader {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Leader {
        Leader {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// Waits until this instance holds the Lease.
    pub async fn acquire(&self) -> Result<(), ControllerError> {
        loop {
            if self.try_acquire().await? {
                tracing::info!(identity = %self.config.identity, lease = %self.config.name, "became leader");
                return Ok(());
            }
            tokio::time::sleep(self.config.retry_every).await;
        }
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: i32::try_from(self.config.duration.as_secs()).ok(),
            acquire_time: Some(acquired.unwrap_or_else(now)),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt: create the Lease, renew our own, or take over an expired one. A conflict
    /// (someone else wrote first) is a lost race, not an error.
    async fn try_acquire(&self) -> Result<bool, ControllerError> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.config.identity.as_str());
        if !mine && !expired(&spec, Timestamp::now()) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine {
            spec.acquire_time.clone()
        } else {
            None
        };
        lease.spec = Some(self.spec(transitions, acquired));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the Lease until it cannot be renewed within its duration; then returns (the
    /// caller must stop reconciling at once).
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_every).await;
            match self.try_acquire().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.config.name, "leadership lost to another instance");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the Lease"),
            }
            if last_renewal.elapsed() >= self.config.duration {
                tracing::error!(lease = %self.config.name, "Lease not renewed in time; stepping down");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_duration_from_the_last_renewal() {
        let renewed = Timestamp::from_second(1_000).expect("ts");
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        let at = |s| Timestamp::from_second(s).expect("ts");
        assert!(!expired(&spec, at(1_010)));
        assert!(!expired(&spec, at(1_015)));
        assert!(expired(&spec, at(1_016)));
        assert!(expired(&LeaseSpec::default(), at(0)));
    }
}
