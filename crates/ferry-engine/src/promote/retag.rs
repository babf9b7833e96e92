//! Writing tags by digest: the exact manifest bytes under new tags (same repository), or the
//! whole tree first (index children, config, layers: mount across repositories of one registry,
//! falling back to a copy; a copy between registries). Immutable tags are never overwritten.

use ferry_registry::{Manifest, RegistryClient, RegistryError, RepoAccess};

use super::PromoteError;

/// What happened to one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagOutcome {
    /// PUT and confirmed.
    Written,
    /// Already pointed at the digest (an earlier run, or nothing to do).
    AlreadyPresent,
    /// Dry run: would be written.
    WouldWrite,
}

/// One tag of a publish or promotion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagWrite {
    pub tag: String,
    /// Immutable tags are never moved to another digest.
    pub immutable: bool,
    pub outcome: TagOutcome,
}

/// The request list a dry run prints (and a real run keeps for `-v`).
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    pub lines: Vec<String>,
}

impl RequestLog {
    pub fn read(&mut self, method: &str, access: &RepoAccess, path: &str) {
        self.lines.push(format!(
            "{method} {}/v2/{}/{path}",
            access.image.registry(),
            access.image.repository()
        ));
    }
    pub fn write(&mut self, dry_run: bool, method: &str, access: &RepoAccess, path: &str) {
        let prefix = if dry_run { "(would) " } else { "" };
        self.lines.push(format!(
            "{prefix}{method} {}/v2/{}/{path}",
            access.image.registry(),
            access.image.repository()
        ));
    }
}

/// The tags to write and in which order (immutable first, so an alias never points at a
/// digest the immutable tag does not hold).
#[derive(Debug, Clone)]
pub(crate) struct TagPlan {
    pub immutable: Vec<String>,
    pub mutable: Vec<String>,
}

fn same_repository(a: &RepoAccess, b: &RepoAccess) -> bool {
    a.image.canonical() == b.image.canonical()
}

/// HEADs each immutable tag: absent, already ours, or (an error) someone else's.
async fn check_immutable(
    client: &RegistryClient,
    dst: &RepoAccess,
    digest: &str,
    plan: &TagPlan,
    log: &mut RequestLog,
) -> Result<Vec<bool>, PromoteError> {
    let mut present = Vec::new();
    for tag in &plan.immutable {
        log.read("HEAD", dst, &format!("manifests/{tag}"));
        match client.head_manifest(dst, tag).await {
            Ok(d) if d.digest == digest => present.push(true),
            Ok(d) => {
                return Err(PromoteError::Immutable(format!(
                    "immutable tag {}:{tag} already points at {}, not {digest}; refusing to overwrite it (nothing was changed)",
                    dst.image, d.digest
                )));
            }
            Err(RegistryError::NotFound { .. }) => present.push(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(present)
}

/// Writes `plan`'s tags in `dst` for `manifest` (read from `src`), then confirms with a HEAD.
pub(crate) async fn write_tags(
    client: &RegistryClient,
    src: &RepoAccess,
    manifest: &Manifest,
    dst: &RepoAccess,
    plan: &TagPlan,
    dry_run: bool,
    log: &mut RequestLog,
) -> Result<Vec<TagWrite>, PromoteError> {
    let present = check_immutable(client, dst, &manifest.digest, plan, log).await?;
    let mut todo: Vec<(String, bool)> = Vec::new();
    let mut out = Vec::new();
    for (tag, here) in plan.immutable.iter().zip(&present) {
        if *here {
            out.push(TagWrite {
                tag: tag.clone(),
                immutable: true,
                outcome: TagOutcome::AlreadyPresent,
            });
        } else {
            todo.push((tag.clone(), true));
        }
    }
    todo.extend(plan.mutable.iter().map(|t| (t.clone(), false)));
    // The tree only has to move when nothing of it is in the target yet.
    let tree_needed = !same_repository(src, dst) && !present.iter().any(|p| *p);
    let mut written_any = false;
    for (i, (tag, immutable)) in todo.iter().enumerate() {
        if i == 0 && tree_needed {
            describe_tree(client, src, dst, manifest, dry_run, log).await?;
            log.write(dry_run, "PUT", dst, &format!("manifests/{tag}"));
            if !dry_run {
                let digest = client
                    .copy_manifest_tree(src, dst, &manifest.digest, tag)
                    .await?;
                verify(&digest, &manifest.digest, dst, tag)?;
            }
        } else {
            log.write(dry_run, "PUT", dst, &format!("manifests/{tag}"));
            if !dry_run {
                let digest = client
                    .put_manifest(dst, tag, &manifest.bytes, &manifest.media_type)
                    .await?;
                verify(&digest, &manifest.digest, dst, tag)?;
            }
        }
        if !dry_run {
            written_any = true;
            crate::test_hooks::abort_after("first-tag");
        }
        out.push(TagWrite {
            tag: tag.clone(),
            immutable: *immutable,
            outcome: if dry_run {
                TagOutcome::WouldWrite
            } else {
                TagOutcome::Written
            },
        });
    }
    // Confirm: one HEAD of the tag the target environment's policy selects (the first immutable
    // tag); every other PUT was checked through the Docker-Content-Digest of its response.
    if let Some(first) = plan.immutable.first().or(plan.mutable.first()) {
        log.write(dry_run, "HEAD", dst, &format!("manifests/{first}"));
        if !dry_run && written_any {
            let d = client.head_manifest(dst, first).await?;
            verify(&d.digest, &manifest.digest, dst, first)?;
        }
    }
    Ok(out)
}

fn verify(got: &str, want: &str, dst: &RepoAccess, tag: &str) -> Result<(), PromoteError> {
    if got == want {
        Ok(())
    } else {
        Err(PromoteError::Failed(format!(
            "{}:{tag} resolves to {got} after the write, expected {want}",
            dst.image
        )))
    }
}

/// Logs the requests a tree copy makes: children by digest before the index, and per blob a
/// HEAD then a mount (same registry) or a copy.
async fn describe_tree(
    client: &RegistryClient,
    src: &RepoAccess,
    dst: &RepoAccess,
    manifest: &Manifest,
    dry_run: bool,
    log: &mut RequestLog,
) -> Result<(), PromoteError> {
    let same_registry =
        src.image.registry() == dst.image.registry() && src.credentials == dst.credentials;
    let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        PromoteError::Failed(format!("manifest {} is not JSON: {e}", manifest.digest))
    })?;
    if let Some(children) = doc.get("manifests").and_then(|m| m.as_array()) {
        for child in children {
            let Some(d) = child.get("digest").and_then(|d| d.as_str()) else {
                continue;
            };
            log.read("GET", src, &format!("manifests/{d}"));
            if dry_run {
                let m = client.get_manifest(src, d).await?;
                Box::pin(describe_tree(client, src, dst, &m, dry_run, log)).await?;
            }
            log.write(dry_run, "PUT", dst, &format!("manifests/{d}"));
        }
        return Ok(());
    }
    let mut blobs = Vec::new();
    if let Some(c) = doc
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(|d| d.as_str())
    {
        blobs.push(c.to_string());
    }
    for l in doc
        .get("layers")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(d) = l.get("digest").and_then(|d| d.as_str()) {
            blobs.push(d.to_string());
        }
    }
    for b in blobs {
        log.read("HEAD", dst, &format!("blobs/{b}"));
        if same_registry {
            log.write(
                dry_run,
                "POST",
                dst,
                &format!(
                    "blobs/uploads/?mount={b}&from={} (on 202: copy)",
                    src.image.repository()
                ),
            );
        } else {
            log.read("GET", src, &format!("blobs/{b}"));
            log.write(
                dry_run,
                "POST+PUT",
                dst,
                &format!("blobs/uploads/ (digest={b})"),
            );
        }
    }
    Ok(())
}
