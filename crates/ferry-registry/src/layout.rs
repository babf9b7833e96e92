//! Reading an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) and pushing it
//! with the registry client: every blob a manifest references is uploaded (or found present),
//! then the manifest is PUT as the exact bytes of the layout, so its digest is unchanged.

use std::path::{Path, PathBuf};

use crate::client::{OCI_INDEX, OCI_MANIFEST, RegistryClient, RepoAccess, sha256_digest};
use crate::error::RegistryError;

/// Why a layout cannot be read or pushed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn invalid(path: &Path, detail: impl std::fmt::Display) -> LayoutError {
    LayoutError::Invalid {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Debug, serde::Deserialize)]
struct IndexDoc {
    manifests: Vec<Desc>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    config: Desc,
    #[serde(default)]
    layers: Vec<Desc>,
}

/// An OCI image layout on disk whose `index.json` names exactly one image manifest.
#[derive(Debug)]
pub struct Layout {
    root: PathBuf,
    manifest_digest: String,
    manifest_media_type: String,
}

impl Layout {
    pub fn open(root: &Path) -> Result<Layout, LayoutError> {
        let marker = root.join("oci-layout");
        let text = std::fs::read_to_string(&marker).map_err(|e| invalid(&marker, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&marker, e))?;
        if v["imageLayoutVersion"] != "1.0.0" {
            return Err(invalid(&marker, "imageLayoutVersion is not 1.0.0"));
        }
        let index_path = root.join("index.json");
        let bytes = std::fs::read(&index_path).map_err(|e| invalid(&index_path, e))?;
        let index: IndexDoc =
            serde_json::from_slice(&bytes).map_err(|e| invalid(&index_path, e))?;
        let [m] = index.manifests.as_slice() else {
            return Err(invalid(
                &index_path,
                format!(
                    "names {} manifests; exactly one is supported",
                    index.manifests.len()
                ),
            ));
        };
        if m.media_type != OCI_MANIFEST && m.media_type != OCI_INDEX {
            return Err(invalid(
                &index_path,
                format!("unsupported media type {}", m.media_type),
            ));
        }
        Ok(Layout {
            root: root.to_path_buf(),
            manifest_digest: m.digest.clone(),
            manifest_media_type: m.media_type.clone(),
        })
    }

    /// The digest of the image manifest.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// The bytes of a blob, checked against its digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, LayoutError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| invalid(&self.root, format!("unsupported digest {digest:?}")))?;
        let path = self.root.join("blobs/sha256").join(hex);
        let bytes = std::fs::read(&path).map_err(|e| invalid(&path, e))?;
        if sha256_digest(&bytes) != digest {
            return Err(invalid(&path, "content does not match its digest"));
        }
        Ok(bytes)
    }
}

/// One blob of a push.
#[derive(Debug, Clone)]
pub struct PushedBlob {
    pub digest: String,
    pub size: u64,
    /// False when the registry already had it.
    pub uploaded: bool,
}

/// What [`push`] did.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub digest: String,
    pub blobs: Vec<PushedBlob>,
}

/// Uploads the layout's image (config and layers, then the manifest under `tag`).
pub async fn push(
    client: &RegistryClient,
    access: &RepoAccess,
    layout: &Layout,
    tag: &str,
) -> Result<PushReport, LayoutError> {
    if layout.manifest_media_type != OCI_MANIFEST {
        return Err(invalid(
            &layout.root,
            "only a single-platform image manifest can be pushed",
        ));
    }
    let manifest_bytes = layout.blob(&layout.manifest_digest)?;
    let manifest: ManifestDoc =
        serde_json::from_slice(&manifest_bytes).map_err(|e| invalid(&layout.root, e))?;
    let mut blobs = Vec::new();
    for d in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        let bytes = layout.blob(&d.digest)?;
        if bytes.len() as u64 != d.size {
            return Err(invalid(
                &layout.root,
                format!(
                    "blob {} has {} bytes, the manifest says {}",
                    d.digest,
                    bytes.len(),
                    d.size
                ),
            ));
        }
        let uploaded = client.upload_blob(access, &d.digest, bytes).await?;
        blobs.push(PushedBlob {
            digest: d.digest.clone(),
            size: d.size,
            uploaded,
        });
    }
    let digest = client
        .put_manifest(access, tag, &manifest_bytes, OCI_MANIFEST)
        .await?;
    Ok(PushReport { digest, blobs })
}
