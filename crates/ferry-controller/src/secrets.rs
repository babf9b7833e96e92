//! Secrets referenced by the served objects, read from the API into a private folder laid out
//! like a Secret volume (`ROOT/<namespace>/<name>/<key>`), which is how the engine reads Secrets
//! in every mode. The folder is rewritten on each pass and removed with the controller.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DynamicObject};

use crate::ControllerError;
use crate::objects::Listed;
use ferry_core::Kind;

/// JSON pointers to the Secret names each kind references (same namespace as the object).
fn references(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::ImageRepository => &[
            "/spec/secretRef/name",
            "/spec/certSecretRef/name",
            "/spec/proxySecretRef/name",
        ],
        Kind::GitRepository => &["/spec/secretRef/name", "/spec/proxySecretRef/name"],
        Kind::ImageUpdateAutomation => &["/spec/git/commit/signingKey/secretRef/name"],
        Kind::ImagePolicy => &[],
    }
}

fn referenced(kind: Kind, obj: &DynamicObject) -> impl Iterator<Item = String> + '_ {
    references(kind)
        .iter()
        .filter_map(move |p| obj.data.pointer(p)?.as_str().map(String::from))
}

const PREFIX: &str = "ferry-controller-secrets-";

/// Removes the Secrets folders of controllers that died without cleaning up (SIGKILL, OOM): the
/// folder name carries its controller's pid, and a pid with no process is gone for good.
fn sweep_dead(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The private Secrets folder of one controller.
pub struct SecretFolder {
    dir: tempfile::TempDir,
}

impl SecretFolder {
    pub fn new() -> Result<SecretFolder, ControllerError> {
        sweep_dead(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| {
                ControllerError::Io(format!("cannot create a private Secrets folder: {e}"))
            })?;
        Ok(SecretFolder { dir })
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes every referenced Secret that exists; a missing one is left absent, so the engine
    /// reports it on the object that references it.
    pub async fn refresh(
        &self,
        client: &kube::Client,
        listed: &Listed,
    ) -> Result<(), ControllerError> {
        let mut wanted: BTreeSet<(String, String)> = listed
            .objects
            .iter()
            .flat_map(|(key, obj)| {
                referenced(key.kind, obj).map(|name| (key.namespace.clone(), name))
            })
            .collect();
        clear(self.root())?;
        for (namespace, account) in service_accounts(listed) {
            if let Some(pulls) = self
                .write_service_account(client, &namespace, &account)
                .await?
            {
                wanted.extend(pulls.into_iter().map(|name| (namespace.clone(), name)));
            }
        }
        for (namespace, name) in wanted {
            let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            match api.get_opt(&name).await {
                Ok(Some(secret)) => write_secret(self.root(), &namespace, &name, &secret)?,
                Ok(None) => {}
                // Without the right, the Secret is as good as missing: the object says which.
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    tracing::warn!(namespace, name, "RBAC denies get on this Secret")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl SecretFolder {
    /// Writes the `imagePullSecrets` names of a ServiceAccount where the engine reads them
    /// (`ROOT/.serviceaccounts/NS/NAME`) and returns them; `None` when it does not exist (or may
    /// not be read), so the engine reports it on the ImageRepository.
    async fn write_service_account(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, ControllerError> {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let account = match api.get_opt(name).await {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(None),
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::warn!(namespace, name, "RBAC denies get on this ServiceAccount");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let pulls: Vec<String> = account
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .collect();
        let dir = self
            .root()
            .join(ferry_engine::SERVICE_ACCOUNTS)
            .join(namespace);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join(name);
        let text: String = pulls.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        Ok(Some(pulls))
    }
}

/// `(namespace, serviceAccountName)` of every ImageRepository that names one.
fn service_accounts(listed: &Listed) -> BTreeSet<(String, String)> {
    listed
        .objects
        .iter()
        .filter(|(key, _)| key.kind == Kind::ImageRepository)
        .filter_map(|(key, obj)| {
            let name = obj.data.pointer("/spec/serviceAccountName")?.as_str()?;
            (!name.is_empty() && !name.contains('/'))
                .then(|| (key.namespace.clone(), name.to_string()))
        })
        .collect()
}

fn io(path: &Path, e: std::io::Error) -> ControllerError {
    ControllerError::Io(format!("{}: {e}", path.display()))
}

fn clear(root: &Path) -> Result<(), ControllerError> {
    for entry in std::fs::read_dir(root).map_err(|e| io(root, e))? {
        let path = entry.map_err(|e| io(root, e))?.path();
        std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

fn write_secret(
    root: &Path,
    namespace: &str,
    name: &str,
    secret: &Secret,
) -> Result<(), ControllerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir: PathBuf = root.join(namespace).join(name);
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()));
    let string_data = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()));
    for (key, bytes) in data.chain(string_data) {
        // Keys are file names in a Secret volume too; refuse anything that would leave the folder.
        if key.is_empty() || key.contains('/') || key == "." || key == ".." {
            continue;
        }
        let path = dir.join(&key);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        std::io::Write::write_all(&mut file, &bytes).map_err(|e| io(&path, e))?;
    }
    Ok(())
}
