//! The CustomResourceDefinitions of the three image kinds, `image.toolkit.fluxcd.io/v1`, written
//! from the facts of Flux's v1 API (fields, types, defaults, enums, patterns, required lists, CEL
//! rules, names and printer columns), so that every object Flux's CRDs accept, these accept and
//! default the same way. Descriptions are Ferry's own, and only on the kinds themselves.

use serde_json::{Map, Value, json};

/// The API group of the image kinds.
pub const GROUP: &str = "image.toolkit.fluxcd.io";

/// Go duration strings (`1h30m`, `0.5s`) as Flux's `metav1.Duration` fields accept them.
const DURATION: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// The same without hours (ImageRepository's `timeout`).
const DURATION_NO_HOURS: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

fn string() -> Value {
    json!({ "type": "string" })
}

fn pattern(p: &str) -> Value {
    json!({ "type": "string", "pattern": p })
}

fn enumeration(values: &[&str], default: Option<&str>) -> Value {
    let mut v = json!({ "type": "string", "enum": values });
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn date_time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn strings() -> Value {
    json!({ "type": "array", "items": string() })
}

fn string_map() -> Value {
    json!({ "type": "object", "additionalProperties": string() })
}

/// An object schema; `required` is omitted when empty (as the API server stores it).
fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let props: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    let mut v = json!({ "type": "object", "properties": props });
    if !required.is_empty() {
        v["required"] = json!(required);
    }
    v
}

/// `{name}`: a reference to a Secret (or other object) in the same namespace.
fn local_ref() -> Value {
    object(&[("name", string())], &["name"])
}

/// A Kubernetes `metav1.Condition`, with the API machinery's own limits.
fn condition() -> Value {
    object(
        &[
            ("lastTransitionTime", date_time()),
            ("message", json!({ "type": "string", "maxLength": 32768 })),
            (
                "observedGeneration",
                json!({ "type": "integer", "format": "int64", "minimum": 0 }),
            ),
            (
                "reason",
                json!({
                    "type": "string",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                }),
            ),
            ("status", enumeration(&["True", "False", "Unknown"], None)),
            (
                "type",
                json!({
                    "type": "string",
                    "maxLength": 316,
                    "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                }),
            ),
        ],
        &["lastTransitionTime", "message", "reason", "status", "type"],
    )
}

fn conditions() -> Value {
    json!({ "type": "array", "items": condition() })
}

fn generation() -> Value {
    json!({ "type": "integer", "format": "int64" })
}

/// A status object: the common fields plus the kind's own; `observedGeneration` defaults to -1.
fn status(own: &[(&str, Value)]) -> Value {
    let mut props = vec![
        ("conditions", conditions()),
        ("lastHandledReconcileAt", string()),
        ("observedGeneration", generation()),
    ];
    props.extend(own.iter().cloned());
    let mut v = object(&props, &[]);
    v["default"] = json!({ "observedGeneration": -1 });
    v
}

/// `{name, tag, digest}` as in ImagePolicy's `latestRef`.
fn image_ref() -> Value {
    object(
        &[("digest", string()), ("name", string()), ("tag", string())],
        &["name", "tag"],
    )
}

fn root(description: &str, spec: Value, status: Value) -> Value {
    let mut v = object(
        &[
            ("apiVersion", string()),
            ("kind", string()),
            ("metadata", json!({ "type": "object" })),
            ("spec", spec),
            ("status", status),
        ],
        &[],
    );
    v["description"] = json!(description);
    v
}

fn column(name: &str, path: &str, priority: Option<u32>) -> Value {
    let mut v = json!({ "name": name, "jsonPath": path, "type": "string" });
    if let Some(p) = priority {
        v["priority"] = json!(p);
    }
    v
}

fn ready_columns() -> [Value; 2] {
    [
        column(
            "Ready",
            r#".status.conditions[?(@.type=="Ready")].status"#,
            None,
        ),
        column(
            "Status",
            r#".status.conditions[?(@.type=="Ready")].message"#,
            None,
        ),
    ]
}

fn age() -> Value {
    json!({ "name": "Age", "jsonPath": ".metadata.creationTimestamp", "type": "date" })
}

struct Names<'a> {
    kind: &'a str,
    plural: &'a str,
    singular: &'a str,
    short: &'a [&'a str],
}

fn crd(names: Names<'_>, schema: Value, columns: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{}.{GROUP}", names.plural),
            // Flux's Kustomizations must not substitute `${...}` inside a CRD.
            "annotations": { "kustomize.toolkit.fluxcd.io/substitute": "disabled" },
            "labels": crate::labels("crds"),
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": names.kind,
                "listKind": format!("{}List", names.kind),
                "plural": names.plural,
                "singular": names.singular,
                "shortNames": names.short,
                "categories": ["all", "fluxcd", "fluxcd-images"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": schema },
                "subresources": { "status": {} },
                "additionalPrinterColumns": columns,
            }],
        },
    })
}

fn image_repository() -> Value {
    let spec = object(
        &[
            (
                "accessFrom",
                object(
                    &[(
                        "namespaceSelectors",
                        json!({
                            "type": "array",
                            "items": object(&[("matchLabels", string_map())], &[]),
                        }),
                    )],
                    &["namespaceSelectors"],
                ),
            ),
            ("certSecretRef", local_ref()),
            (
                "exclusionList",
                json!({
                    "type": "array",
                    "items": string(),
                    "maxItems": 25,
                    "default": [r"^.*\.sig$"],
                }),
            ),
            ("image", string()),
            ("insecure", boolean()),
            ("interval", pattern(DURATION)),
            (
                "provider",
                enumeration(&["generic", "aws", "azure", "gcp"], Some("generic")),
            ),
            ("proxySecretRef", local_ref()),
            ("secretRef", local_ref()),
            (
                "serviceAccountName",
                json!({ "type": "string", "maxLength": 253 }),
            ),
            ("suspend", boolean()),
            ("timeout", pattern(DURATION_NO_HOURS)),
        ],
        &["image", "interval"],
    );
    let status = status(&[
        ("canonicalImageName", string()),
        (
            "lastScanResult",
            object(
                &[
                    ("latestTags", strings()),
                    ("revision", string()),
                    ("scanTime", date_time()),
                    ("tagCount", json!({ "type": "integer" })),
                ],
                &["tagCount"],
            ),
        ),
        ("observedExclusionList", strings()),
    ]);
    let [ready, message] = ready_columns();
    crd(
        Names {
            kind: "ImageRepository",
            plural: "imagerepositories",
            singular: "imagerepository",
            short: &["imgrepo", "imagerepo"],
        },
        root(
            "ImageRepository: an image repository whose tags are scanned at an interval \
             (served by Ferry in place of Flux's image-reflector-controller).",
            spec,
            status,
        ),
        vec![
            column("Image", ".spec.image", None),
            column("Tags", ".status.lastScanResult.tagCount", None),
            ready,
            message,
            column("Last scan", ".status.lastScanResult.scanTime", Some(1)),
            age(),
        ],
    )
}

fn image_policy() -> Value {
    let order = || {
        object(
            &[("order", enumeration(&["asc", "desc"], Some("asc")))],
            &[],
        )
    };
    let mut spec = object(
        &[
            (
                "digestReflectionPolicy",
                enumeration(&["Always", "IfNotPresent", "Never"], Some("Never")),
            ),
            (
                "filterTags",
                object(&[("extract", string()), ("pattern", string())], &[]),
            ),
            (
                "imageRepositoryRef",
                object(&[("name", string()), ("namespace", string())], &["name"]),
            ),
            ("interval", pattern(DURATION)),
            (
                "policy",
                object(
                    &[
                        ("alphabetical", order()),
                        ("numerical", order()),
                        ("semver", object(&[("range", string())], &["range"])),
                    ],
                    &[],
                ),
            ),
            ("suspend", boolean()),
        ],
        &["imageRepositoryRef", "policy"],
    );
    // The interval re-reads digests of an unchanged tag: meaningful only with `Always`.
    spec["x-kubernetes-validations"] = json!([
        {
            "rule": "!has(self.interval) || (has(self.digestReflectionPolicy) && self.digestReflectionPolicy == 'Always')",
            "message": "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'",
        },
        {
            "rule": "has(self.interval) || !has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always'",
            "message": "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
        },
    ]);
    let status = status(&[
        ("latestRef", image_ref()),
        ("observedPreviousRef", image_ref()),
    ]);
    let [ready, message] = ready_columns();
    crd(
        Names {
            kind: "ImagePolicy",
            plural: "imagepolicies",
            singular: "imagepolicy",
            short: &["imgpol", "imagepol"],
        },
        root(
            "ImagePolicy: how to choose the latest image of an ImageRepository \
             (served by Ferry in place of Flux's image-reflector-controller).",
            spec,
            status,
        ),
        vec![
            column("Image", ".status.latestRef.name", None),
            column("Tag", ".status.latestRef.tag", None),
            ready,
            message,
            age(),
        ],
    )
}

/// `spec.policySelector`: a label selector (atomic).
fn label_selector() -> Value {
    let atomic_strings = json!({
        "type": "array",
        "items": string(),
        "x-kubernetes-list-type": "atomic",
    });
    let mut selector = object(
        &[
            (
                "matchExpressions",
                json!({
                    "type": "array",
                    "items": object(
                        &[("key", string()), ("operator", string()), ("values", atomic_strings)],
                        &["key", "operator"],
                    ),
                    "x-kubernetes-list-type": "atomic",
                }),
            ),
            ("matchLabels", string_map()),
        ],
        &[],
    );
    selector["x-kubernetes-map-type"] = json!("atomic");
    selector
}

/// `spec.git`: checkout, commit (author, template, signing key) and push.
fn automation_git() -> Value {
    object(
        &[
            (
                "checkout",
                object(
                    &[(
                        "ref",
                        object(
                            &[
                                ("branch", string()),
                                ("commit", string()),
                                ("name", string()),
                                ("semver", string()),
                                ("tag", string()),
                            ],
                            &[],
                        ),
                    )],
                    &["ref"],
                ),
            ),
            (
                "commit",
                object(
                    &[
                        (
                            "author",
                            object(&[("email", string()), ("name", string())], &["email"]),
                        ),
                        ("messageTemplate", string()),
                        ("messageTemplateValues", string_map()),
                        (
                            "signingKey",
                            object(
                                &[
                                    ("secretRef", local_ref()),
                                    ("type", enumeration(&["gpg", "ssh"], None)),
                                ],
                                &["secretRef"],
                            ),
                        ),
                    ],
                    &["author"],
                ),
            ),
            (
                "push",
                object(
                    &[
                        ("branch", string()),
                        ("options", string_map()),
                        ("refspec", pattern("^$|^[^+:]")),
                    ],
                    &[],
                ),
            ),
        ],
        &["commit"],
    )
}

fn image_update_automation() -> Value {
    let git = automation_git();
    let selector = label_selector();
    let mut update = object(
        &[
            ("path", string()),
            ("strategy", enumeration(&["Setters"], Some("Setters"))),
        ],
        &[],
    );
    update["default"] = json!({ "strategy": "Setters" });
    let spec = object(
        &[
            ("git", git),
            ("interval", pattern(DURATION)),
            ("policySelector", selector),
            (
                "sourceRef",
                object(
                    &[
                        ("apiVersion", string()),
                        (
                            "kind",
                            enumeration(&["GitRepository"], Some("GitRepository")),
                        ),
                        ("name", string()),
                        ("namespace", string()),
                    ],
                    &["kind", "name"],
                ),
            ),
            ("suspend", boolean()),
            ("update", update),
        ],
        &["interval", "sourceRef"],
    );
    let status = status(&[
        ("lastAutomationRunTime", date_time()),
        ("lastPushCommit", string()),
        ("lastPushTime", date_time()),
        (
            "observedPolicies",
            json!({ "type": "object", "additionalProperties": image_ref() }),
        ),
        ("observedSourceRevision", string()),
    ]);
    let [ready, message] = ready_columns();
    crd(
        Names {
            kind: "ImageUpdateAutomation",
            plural: "imageupdateautomations",
            singular: "imageupdateautomation",
            short: &["iua", "imgupd", "imgauto"],
        },
        root(
            "ImageUpdateAutomation: write the latest images of the selected ImagePolicies into \
             a Git repository (served by Ferry in place of Flux's image-automation-controller).",
            spec,
            status,
        ),
        vec![
            ready,
            message,
            column("Last run", ".status.lastAutomationRunTime", Some(1)),
            age(),
        ],
    )
}

/// The three CRDs, in a fixed order.
pub fn crds() -> Vec<Value> {
    vec![
        image_repository(),
        image_policy(),
        image_update_automation(),
    ]
}
