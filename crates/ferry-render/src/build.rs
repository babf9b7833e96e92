//! One kustomize build of a Flux Kustomization, in a private copy of the source root: the
//! Kustomization's fields are written into the folder's kustomization file (or Flux's
//! generated one), kustomize runs, the folder is restored.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::kustomize::Kustomize;
use crate::{RenderError, tree};

/// Builds Flux Kustomization `ks` in `copy` (a copy of the source root). Returns the built
/// folder (relative to the root) and kustomize's output.
pub fn build(
    copy: &Path,
    ks: &Value,
    kz: &Kustomize,
    timeout: Duration,
) -> Result<(String, String), RenderError> {
    let spec = &ks["spec"];
    if let Some(kind) = spec["sourceRef"]["kind"].as_str()
        && kind != "GitRepository"
    {
        return Err(RenderError::Build(format!(
            "sourceRef {kind} {} is not this Git repository; not rendered",
            spec["sourceRef"]["name"].as_str().unwrap_or_default()
        )));
    }
    let path = spec["path"].as_str().unwrap_or("./");
    let dir = tree::contained_join(copy, copy, path)
        .ok_or_else(|| RenderError::Build(format!("spec.path {path:?} leaves the repository")))?;
    if !dir.is_dir() {
        return Err(RenderError::Build(format!(
            "spec.path {path:?}: no such folder in the repository"
        )));
    }
    let existing = tree::kustomization_file(&dir);
    let (kfile, original, mut k) = match &existing {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| RenderError::Io {
                path: f.clone(),
                error: e.to_string(),
            })?;
            let v: Value = serde_saphyr::from_str(&text)
                .map_err(|e| RenderError::Build(format!("{}: {e}", tree::rel(copy, f))))?;
            (f.clone(), Some(text), v)
        }
        None => {
            let v = serde_json::json!({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": tree::generated_resources(&dir)?,
            });
            (dir.join(tree::KUSTOMIZATION_FILES[0]), None, v)
        }
    };
    apply_flux_fields(&mut k, spec);
    let io = |e: std::io::Error| RenderError::Io {
        path: kfile.clone(),
        error: e.to_string(),
    };
    std::fs::write(&kfile, k.to_string()).map_err(io)?;
    let result = kz.build(&dir, timeout);
    match original {
        Some(text) => std::fs::write(&kfile, text).map_err(io)?,
        None => std::fs::remove_file(&kfile).map_err(io)?,
    }
    Ok((tree::rel(copy, &dir), result?))
}

/// Writes a Flux Kustomization's `targetNamespace`, `components`, `patches` and `images` into
/// a kustomization file, and asks kustomize for origin annotations.
fn apply_flux_fields(k: &mut Value, spec: &Value) {
    let Some(obj) = k.as_object_mut() else {
        return;
    };
    if let Some(ns) = spec["targetNamespace"].as_str().filter(|s| !s.is_empty()) {
        obj.insert("namespace".into(), Value::String(ns.to_string()));
    }
    append(obj, "components", spec["components"].as_array());
    let patches: Option<Vec<Value>> = spec["patches"].as_array().map(|ps| {
        ps.iter()
            .map(|p| {
                let mut out = serde_json::Map::new();
                out.insert("patch".into(), p["patch"].clone());
                if !p["target"].is_null() {
                    out.insert("target".into(), p["target"].clone());
                }
                Value::Object(out)
            })
            .collect()
    });
    append(obj, "patches", patches.as_ref());
    for image in spec["images"].as_array().into_iter().flatten() {
        let list = obj
            .entry("images")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            list.retain(|i| i["name"] != image["name"]);
            list.push(image.clone());
        }
    }
    let meta = obj
        .entry("buildMetadata")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(m) = meta.as_array_mut()
        && !m.iter().any(|x| x == "originAnnotations")
    {
        m.push(Value::String("originAnnotations".into()));
    }
}

fn append(obj: &mut serde_json::Map<String, Value>, key: &str, items: Option<&Vec<Value>>) {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return;
    };
    let list = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut() {
        list.extend(items.iter().cloned());
    }
}
