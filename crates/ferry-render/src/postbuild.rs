//! A Flux Kustomization's post-build variables: `substituteFrom` (ConfigMaps and Secrets found
//! in the render output), then `substitute`, then the user's `--var`/`--vars-file`.

use base64::Engine as _;
use ferry_api::Vars;
use serde_json::Value;

/// ConfigMaps and Secrets seen in render outputs so far: `(kind, namespace, name, object)`.
#[derive(Debug, Default)]
pub struct ValueSources {
    objects: Vec<(String, String, String, Value)>,
}

impl ValueSources {
    /// Remembers `obj` when it is a ConfigMap or Secret.
    pub fn offer(&mut self, obj: &Value) {
        let kind = obj["kind"].as_str().unwrap_or_default();
        if kind != "ConfigMap" && kind != "Secret" {
            return;
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        self.objects.push((
            kind.to_string(),
            ns.to_string(),
            name.to_string(),
            obj.clone(),
        ));
    }

    fn find(&self, kind: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|(k, n, m, _)| k == kind && n == ns && m == name)
            .map(|o| &o.3)
    }
}

/// The variables of Kustomization `ks` (namespace `ns`), or `None` when it has no `postBuild`
/// (Flux then substitutes nothing). Problems that do not stop the render are pushed to
/// `warnings`.
pub fn variables(
    ks: &Value,
    ns: &str,
    sources: &ValueSources,
    user: &Vars,
    warnings: &mut Vec<String>,
) -> Option<Vars> {
    let post = ks["spec"].get("postBuild").filter(|v| !v.is_null())?;
    let mut vars = Vars::new();
    for from in post["substituteFrom"].as_array().into_iter().flatten() {
        let kind = from["kind"].as_str().unwrap_or_default();
        let name = from["name"].as_str().unwrap_or_default();
        let optional = from["optional"].as_bool().unwrap_or(false);
        match sources.find(kind, ns, name) {
            Some(obj) if obj.get("sops").is_some() => warnings.push(format!(
                "substituteFrom {kind} {ns}/{name} is SOPS-encrypted and Ferry does not decrypt: \
                 pass its values with --var or --vars-file"
            )),
            Some(obj) => insert_data(&mut vars, kind, obj),
            None if optional => {}
            None => warnings.push(format!(
                "substituteFrom {kind} {ns}/{name} is not in the rendered objects (created \
                 outside Git?): pass its values with --var or --vars-file"
            )),
        }
    }
    for (k, v) in post["substitute"].as_object().into_iter().flatten() {
        if let Some(v) = scalar(v) {
            // Invalid names are ignored, as Flux ignores them.
            let _ = vars.insert(k, &v);
        }
    }
    for name in user.names() {
        if let Some(v) = user.get(name) {
            let _ = vars.insert(name, v);
        }
    }
    // Flux substitutes only when there is at least one variable.
    (!vars.is_empty()).then_some(vars)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn insert_data(vars: &mut Vars, kind: &str, obj: &Value) {
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        let Some(s) = v.as_str() else { continue };
        let value = if kind == "Secret" {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(_) => continue,
            }
        } else {
            s.to_string()
        };
        let _ = vars.insert(k, &value);
    }
    if kind == "Secret" {
        for (k, v) in obj["stringData"].as_object().into_iter().flatten() {
            if let Some(s) = v.as_str() {
                let _ = vars.insert(k, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(post: Value) -> Value {
        serde_json::json!({"kind": "Kustomization", "spec": {"postBuild": post}})
    }

    #[test]
    fn substitute_beats_substitute_from_and_user_beats_both() {
        let mut src = ValueSources::default();
        src.offer(&serde_json::json!({"kind": "ConfigMap",
            "metadata": {"name": "vars", "namespace": "flux-system"},
            "data": {"a": "from-cm", "b": "from-cm"}}));
        src.offer(&serde_json::json!({"kind": "Secret",
            "metadata": {"name": "s", "namespace": "flux-system"},
            "data": {"c": "c2VjcmV0"}}));
        let k = ks(serde_json::json!({
            "substitute": {"b": "inline", "n": 5},
            "substituteFrom": [{"kind": "ConfigMap", "name": "vars"}, {"kind": "Secret", "name": "s"},
                               {"kind": "ConfigMap", "name": "gone", "optional": true}]}));
        let mut user = Vars::new();
        user.insert("a", "user").unwrap();
        let mut w = Vec::new();
        let v = variables(&k, "flux-system", &src, &user, &mut w).unwrap();
        assert_eq!(v.get("a"), Some("user"));
        assert_eq!(v.get("b"), Some("inline"));
        assert_eq!(v.get("c"), Some("secret"));
        assert_eq!(v.get("n"), Some("5"));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn sops_secret_is_a_warning_naming_var() {
        let mut src = ValueSources::default();
        src.offer(&serde_json::json!({"kind": "Secret",
            "metadata": {"name": "enc", "namespace": "apps"},
            "data": {"k": "ENC[AES256_GCM,data:x]"}, "sops": {"version": "3.9.0"}}));
        let k = ks(
            serde_json::json!({"substituteFrom": [{"kind": "Secret", "name": "enc"}],
                                      "substitute": {"a": "b"}}),
        );
        let mut w = Vec::new();
        let v = variables(&k, "apps", &src, &Vars::new(), &mut w).unwrap();
        assert_eq!(v.get("k"), None);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("SOPS") && w[0].contains("--var"), "{w:?}");
    }

    #[test]
    fn no_post_build_means_no_substitution() {
        let k = serde_json::json!({"kind": "Kustomization", "spec": {"path": "./"}});
        assert!(
            variables(
                &k,
                "x",
                &ValueSources::default(),
                &Vars::new(),
                &mut Vec::new()
            )
            .is_none()
        );
    }
}
