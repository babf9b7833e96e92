//! ImageRepository reconciliation: list tags, drop exclusions, store them in descending order.

use ferry_api::{ImageRepository, ObjectSet};
use ferry_policy::scan as tags;
use ferry_registry::{Credentials, ImageName, RepoAccess, TlsMaterial};
use ferry_store::{Kind, ScanRecord};
use tokio::task::JoinSet;

use crate::steps::{Computed, Selection, StepFailure};
use crate::{Engine, EngineError, ObjectOutcome, now_rfc3339};
use crate::{Observation, record_observation};

/// Scans every ImageRepository concurrently (the registry client bounds per-registry requests).
/// Each outcome is recorded in the store, and the tags handed to the policies in `computed`.
pub(crate) async fn scan_all(
    engine: &Engine,
    objects: &ObjectSet,
    selection: Selection<'_>,
    computed: &mut Computed,
) -> Result<Vec<ObjectOutcome>, EngineError> {
    let mut set = JoinSet::new();
    for (index, repo) in objects.image_repositories.iter().enumerate() {
        if !selection.covers(Kind::ImageRepository, repo.namespace(), repo.name()) {
            continue;
        }
        let prepared = prepare(engine, repo);
        let client = engine.registry().clone();
        set.spawn(async move {
            let result = match prepared {
                Ok(access) => scan_prepared(&client, &access).await,
                Err(failure) => Err(failure),
            };
            (index, result)
        });
    }
    let mut results: Vec<(usize, Result<ScanRecord, StepFailure>)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => return Err(EngineError::Task(e)),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let mut outcomes = Vec::new();
    for (index, result) in results {
        let repo = &objects.image_repositories[index];
        outcomes.push(record(engine, repo, result, computed)?);
    }
    Ok(outcomes)
}

pub(crate) enum Prepared {
    Suspended,
    Access {
        access: Box<RepoAccess>,
        exclusions: Vec<String>,
    },
}

pub(crate) fn prepare(engine: &Engine, repo: &ImageRepository) -> Result<Prepared, StepFailure> {
    if repo.spec.suspend {
        return Ok(Prepared::Suspended);
    }
    let access = repo_access(engine, repo)?;
    let exclusions =
        tags::effective_exclusion_list(repo.spec.exclusion_list.as_deref().unwrap_or(&[]));
    Ok(Prepared::Access {
        access: Box::new(access),
        exclusions,
    })
}

/// Builds the registry access (name, credentials, TLS, timeout) of an ImageRepository.
pub(crate) fn repo_access(
    engine: &Engine,
    repo: &ImageRepository,
) -> Result<RepoAccess, StepFailure> {
    let image = ImageName::parse(&repo.spec.image).map_err(|e| StepFailure {
        reason: "ImageURLInvalid",
        message: e.to_string(),
    })?;
    let referrer = format!("ImageRepository {}/{}", repo.namespace(), repo.name());
    let credentials = credentials(engine, repo, &image, &referrer)?;
    let tls = match &repo.spec.cert_secret_ref {
        Some(r) => {
            let secrets = &engine.config().secrets;
            // Checked here first for the engine's "no --secrets-dir" / "not found" messages.
            secrets
                .secret_dir(repo.namespace(), &r.name, &referrer)
                .map_err(auth_failure)?;
            let root = secrets.root().unwrap_or(std::path::Path::new("."));
            TlsMaterial::load_secret(root, repo.namespace(), &r.name).map_err(|e| StepFailure {
                reason: "AuthenticationFailed",
                message: format!("{referrer}: {e}"),
            })?
        }
        None => TlsMaterial::default(),
    };
    Ok(RepoAccess {
        image,
        insecure: repo.spec.insecure,
        credentials,
        tls,
        timeout: repo.spec.effective_timeout(),
    })
}

fn auth_failure(e: EngineError) -> StepFailure {
    StepFailure {
        reason: "AuthenticationFailed",
        message: e.to_string(),
    }
}

fn credentials(
    engine: &Engine,
    repo: &ImageRepository,
    image: &ImageName,
    referrer: &str,
) -> Result<Option<Credentials>, StepFailure> {
    if let Some(secret) = &repo.spec.secret_ref {
        let bytes = engine
            .config()
            .secrets
            .key(
                repo.namespace(),
                &secret.name,
                ".dockerconfigjson",
                referrer,
            )
            .map_err(auth_failure)?;
        let config = ferry_registry::DockerConfig::parse(&bytes).map_err(|e| StepFailure {
            reason: "AuthenticationFailed",
            message: format!(
                "{referrer}: Secret {}/{} key .dockerconfigjson: {e}",
                repo.namespace(),
                secret.name
            ),
        })?;
        return match config.credentials_for(image.registry()) {
            Some(c) => Ok(Some(c.clone())),
            None => Err(StepFailure {
                reason: "AuthenticationFailed",
                message: format!(
                    "{referrer}: Secret {}/{} has no credentials for registry {}",
                    repo.namespace(),
                    secret.name,
                    image.registry()
                ),
            }),
        };
    }
    if let Some(account) = &repo.spec.service_account_name {
        return service_account_credentials(engine, repo, account, image, referrer);
    }
    // Fallback: the user's docker config, as `docker login` leaves it. Unreadable is not fatal:
    // anonymous access may still work.
    Ok(ferry_registry::load_local_docker_config()
        .ok()
        .and_then(|c| c.credentials_for(image.registry()).cloned()))
}

/// Credentials from the `imagePullSecrets` of the ServiceAccount `serviceAccountName` (as
/// Flux does): the first pull secret with an entry for the registry wins; none matching means
/// anonymous access.
fn service_account_credentials(
    engine: &Engine,
    repo: &ImageRepository,
    account: &str,
    image: &ImageName,
    referrer: &str,
) -> Result<Option<Credentials>, StepFailure> {
    let secrets = &engine.config().secrets;
    let ns = repo.namespace();
    for name in secrets
        .pull_secrets(ns, account, referrer)
        .map_err(auth_failure)?
    {
        let bytes = secrets
            .key(ns, &name, ".dockerconfigjson", referrer)
            .map_err(auth_failure)?;
        let config = ferry_registry::DockerConfig::parse(&bytes).map_err(|e| StepFailure {
            reason: "AuthenticationFailed",
            message: format!("{referrer}: Secret {ns}/{name} key .dockerconfigjson: {e}"),
        })?;
        if let Some(c) = config.credentials_for(image.registry()) {
            return Ok(Some(c.clone()));
        }
    }
    Ok(None)
}

pub(crate) async fn scan_prepared(
    client: &ferry_registry::RegistryClient,
    prepared: &Prepared,
) -> Result<ScanRecord, StepFailure> {
    let (access, exclusions) = match prepared {
        Prepared::Suspended => {
            return Err(StepFailure {
                reason: "Suspended",
                message: "reconciliation is suspended".into(),
            });
        }
        Prepared::Access { access, exclusions } => (access, exclusions),
    };
    // spec.timeout bounds the whole scan, retries and Retry-After waits included (Flux runs
    // the scan under one context deadline); each request is also bounded by it.
    let listed = tokio::time::timeout(access.timeout, client.list_tags(access))
        .await
        .map_err(|_| StepFailure {
            reason: "ReadOperationFailed",
            message: format!(
                "scan failed: listing the tags of {} did not finish within {}s (spec.timeout), retries included",
                access.image,
                access.timeout.as_secs_f64()
            ),
        })?
        .map_err(|e| StepFailure {
            reason: "ReadOperationFailed",
            message: format!("scan failed: {e}"),
        })?;
    let mut kept = tags::apply_exclusions(&listed, exclusions).map_err(|e| StepFailure {
        reason: "ReadOperationFailed",
        message: format!("scan failed: {e}"),
    })?;
    tags::sort_desc(&mut kept);
    Ok(ScanRecord {
        canonical_image_name: access.image.canonical(),
        tag_count: kept.len(),
        scan_time: now_rfc3339(),
        revision: tags::revision_adler32(&kept),
        latest_tags: tags::latest_tags(&kept),
        observed_exclusion_list: exclusions.clone(),
        tags: kept,
    })
}

fn record(
    engine: &Engine,
    repo: &ImageRepository,
    result: Result<ScanRecord, StepFailure>,
    computed: &mut Computed,
) -> Result<ObjectOutcome, EngineError> {
    let store = engine.store();
    let previous = store.get(Kind::ImageRepository, repo.namespace(), repo.name())?;
    let suspended = repo.spec.suspend;
    let (ready, reason, message, scan) = match result {
        Ok(scan) => {
            let msg = format!(
                "successful scan: found {} tags with checksum {}",
                scan.tag_count, scan.revision
            );
            (true, "Succeeded".to_string(), msg, Some(scan))
        }
        Err(f) => (false, f.reason.to_string(), f.message, None),
    };
    // A failed scan keeps the last good tag list: policies keep working from it (as Flux does).
    let scan = scan.or_else(|| previous.as_ref().and_then(|p| p.scan.clone()));
    drop(store);
    if let Some(scan) = &scan {
        computed.set_tags(repo.namespace(), repo.name(), scan.tags.clone());
    }
    record_observation(
        engine,
        previous.as_ref(),
        Observation {
            kind: Kind::ImageRepository,
            namespace: repo.namespace().to_string(),
            name: repo.name().to_string(),
            suspended,
            ready,
            reason,
            message,
            scan,
            policy: None,
            automation: None,
        },
        true,
    )
}
