//! Objects from the API, turned into the engine's `ObjectSet` one by one, so that one bad object
//! is that object's status and never stops the others.

use std::collections::BTreeMap;

use ferry_api::{ObjectSet, Vars};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::json;

use crate::kinds::KindApi;
use crate::{ControllerError, ControllerOptions};
use ferry_core::Kind;

/// One object's identity: the workspace's one type.
pub use ferry_core::ObjectKey;

/// The key of an object listed or watched as `kind`.
pub fn key_of(kind: Kind, obj: &DynamicObject) -> ObjectKey {
    ObjectKey::new(
        kind,
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

/// Everything a pass reads from the API.
#[derive(Debug, Default)]
pub struct Listed {
    pub objects: BTreeMap<ObjectKey, DynamicObject>,
    pub namespaces: Vec<Namespace>,
}

impl Listed {
    /// The live ImagePolicy `namespace/name`, if listed.
    pub fn policy(&self, id: &str) -> Option<(ObjectKey, &DynamicObject)> {
        let (namespace, name) = id.split_once('/')?;
        let key = ObjectKey {
            kind: Kind::ImagePolicy,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let obj = self.objects.get(&key)?;
        Some((key, obj))
    }

    pub async fn fetch(
        client: &kube::Client,
        options: &ControllerOptions,
    ) -> Result<Listed, ControllerError> {
        let mut listed = Listed::default();
        let params = crate::kinds::list_params(options);
        for kind in Kind::RECONCILED.into_iter().chain([Kind::GitRepository]) {
            // GitRepositories are read whatever their labels: the selector shards image objects.
            let params = if kind == Kind::GitRepository {
                ListParams::default()
            } else {
                params.clone()
            };
            list_paged(&kind.api(client, options), params, |mut obj| {
                crate::status::compact(&mut obj);
                listed.objects.insert(key_of(kind, &obj), obj);
            })
            .await?;
        }
        // accessFrom selects namespaces by label; without the right to list them, no policy is
        // admitted across namespaces (the engine says AccessDenied), which is the safe side.
        match Api::<Namespace>::all(client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => listed.namespaces = list.items,
            Err(e) => tracing::warn!(error = %e, "cannot list namespaces; accessFrom admits none"),
        }
        Ok(listed)
    }
}

/// Objects per list request: a page at a time, each object compacted as it arrives, so an
/// automation status that lists a thousand policies never sits in memory three hundred times
/// over as one response.
const PAGE: u32 = 100;

async fn list_paged(
    api: &Api<DynamicObject>,
    params: ListParams,
    mut each: impl FnMut(DynamicObject),
) -> Result<(), ControllerError> {
    let mut params = params.limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        page.items.into_iter().for_each(&mut each);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// The engine's view, and the objects that could not be read (key → message).
#[derive(Debug, Default)]
pub struct Loaded {
    pub set: ObjectSet,
    pub invalid: BTreeMap<ObjectKey, String>,
}

/// Block YAML, as in a file: the loader screens documents by their `kind:` line.
fn yaml(value: serde_json::Value) -> String {
    serde_saphyr::to_string(&value).unwrap_or_default()
}

/// The document the engine's loader reads: API version, kind, name, namespace, labels,
/// annotations and spec (status and server fields are not inputs).
fn document(kind: Kind, obj: &DynamicObject) -> String {
    let m = &obj.metadata;
    yaml(json!({
        "apiVersion": format!("{}/v1", kind.group()),
        "kind": kind.as_str(),
        "metadata": {
            "name": m.name,
            "namespace": m.namespace,
            "labels": m.labels.clone().unwrap_or_default(),
            "annotations": m.annotations.clone().unwrap_or_default(),
        },
        "spec": obj.data.get("spec").cloned().unwrap_or_else(|| json!({})),
    }))
}

fn namespace_document(ns: &Namespace) -> String {
    yaml(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns.metadata.name,
            "labels": ns.metadata.labels.clone().unwrap_or_default(),
        },
    }))
}

fn extend(set: &mut ObjectSet, more: ObjectSet) {
    set.image_repositories.extend(more.image_repositories);
    set.image_policies.extend(more.image_policies);
    set.image_update_automations
        .extend(more.image_update_automations);
    set.git_repositories.extend(more.git_repositories);
    set.namespaces.extend(more.namespaces);
}

/// Loads each live object on its own; objects being deleted are left out.
pub fn load(listed: &Listed) -> Loaded {
    let mut loaded = Loaded::default();
    // Objects in the API were already substituted by whoever applied them: no variables here.
    let vars = Vars::default();
    for (key, obj) in &listed.objects {
        if obj.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match ferry_api::load_str(&key.to_string(), &document(key.kind, obj), &vars) {
            Ok(set) => extend(&mut loaded.set, set),
            Err(errors) => {
                let message = errors
                    .0
                    .iter()
                    .map(|e| e.kind.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                loaded.invalid.insert(key.clone(), message);
            }
        }
    }
    for ns in &listed.namespaces {
        let name = ns.metadata.name.clone().unwrap_or_default();
        if let Ok(set) = ferry_api::load_str(&name, &namespace_document(ns), &vars) {
            extend(&mut loaded.set, set);
        }
    }
    loaded
}
