//! ferry-template: Flux `ImageUpdateAutomation` commit messages, rendered like Flux does it —
//! Go `text/template` plus the hermetic sprig text functions — over Flux's template data
//! (`.AutomationObject`, `.Changed`, `.Values`), and the push-summary event text.
//!
//! Owns: the template language (lexer, parser, executor), the supported function set
//! ([`SUPPORTED_FUNCTIONS`]), Go `fmt`-compatible value rendering (so `toString .Changed`
//! hashes the same as in Flux, e.g. for Gerrit `Change-Id` recipes) and the error texts.
//! Must not touch: Git, the network, the file system or the setter engine (it only reads the
//! [`ferry_setters::ObjectId`]/[`ferry_setters::Change`] values it is given).
//!
//! Where Go is nondeterministic (map iteration inside `.Changed.Changes` / `.Changed.Objects`,
//! sprig `keys`/`values`), Ferry picks a deterministic order: files by path, objects by
//! `ObjectId`, changes in document order, keys sorted.

mod exec;
mod funcs;
mod parse;
mod printf;
mod value;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use ferry_setters::{Change, ObjectId};
pub use funcs::SUPPORTED_FUNCTIONS;

use value::{Field, StructVal, Value};

/// Flux's default commit message (used when `messageTemplate` is empty).
pub const DEFAULT_COMMIT_MESSAGE: &str = "Update from image update automation";

/// The Go template name Flux uses; it appears in error texts.
const TEMPLATE_NAME: &str = "commit message";

/// `.AutomationObject`: the automation's namespace/name (`{{ .AutomationObject }}` renders
/// `namespace/name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomationObject {
    pub namespace: String,
    pub name: String,
}

/// `.Changed`: file path (relative to `update.path`) → object → changes in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeResult {
    pub file_changes: BTreeMap<String, BTreeMap<ObjectId, Vec<Change>>>,
}

impl ChangeResult {
    /// Records changes for `file`/`object` (appended in the order given).
    pub fn add_change(
        &mut self,
        file: &str,
        object: ObjectId,
        changes: impl IntoIterator<Item = Change>,
    ) {
        self.file_changes
            .entry(file.to_string())
            .or_default()
            .entry(object)
            .or_default()
            .extend(changes);
    }

    /// `.Changed.Changes`: every distinct change once, files by path, objects by id, then
    /// document order (Flux's order here is Go-map random).
    pub fn changes(&self) -> Vec<Change> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for objects in self.file_changes.values() {
            for changes in objects.values() {
                for c in changes {
                    if seen.insert(c.clone()) {
                        out.push(c.clone());
                    }
                }
            }
        }
        out
    }

    /// `.Changed.Objects`: changes per object across all files. When one object id occurs in
    /// several files, its change lists are concatenated in file-path order (Flux keeps one
    /// file's list, chosen by Go map order).
    pub fn objects(&self) -> BTreeMap<ObjectId, Vec<Change>> {
        let mut out: BTreeMap<ObjectId, Vec<Change>> = BTreeMap::new();
        for objects in self.file_changes.values() {
            for (id, changes) in objects {
                out.entry(id.clone())
                    .or_default()
                    .extend(changes.iter().cloned());
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.file_changes
            .values()
            .all(|o| o.values().all(Vec::is_empty))
    }
}

/// The value given to the commit message template (Flux `source.TemplateData`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateData {
    pub automation: AutomationObject,
    /// `spec.git.commit.messageTemplateValues`.
    pub values: BTreeMap<String, String>,
    pub changed: ChangeResult,
}

/// Commit-message and push-summary failures, with Flux's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse (Flux: Ready=False `GitOperationFailed`).
    #[error("unable to create commit message template from spec: {0}")]
    Parse(String),
    /// The template fails while executing (Flux: Ready=False `GitOperationFailed`).
    #[error("failed to run template from spec: {0}")]
    Exec(String),
    /// The template uses `.Updated` or `.Changed.ImageResult`, removed in Flux v1
    /// (Flux: Stalled `RemovedTemplateField`). Holds the field name.
    #[error("{}", removed_field_message(.0))]
    RemovedField(String),
    /// A push summary was requested for an empty commit revision.
    #[error("empty push commit revision")]
    EmptyRevision,
}

fn removed_field_message(field: &str) -> String {
    const SEE: &str =
        "See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template";
    match field {
        ".Updated" => {
            format!("template uses removed '.Updated' field. Please use '.Changed' instead. {SEE}")
        }
        ".Changed.ImageResult" => {
            format!(
                "template uses removed '.Changed.ImageResult' field. Please use '.Changed.FileChanges' or '.Changed.Objects' instead. {SEE}"
            )
        }
        other => format!("template uses removed '{other}' field. {SEE}"),
    }
}

/// Renders `template` over `data` like Flux's `templateMsg`: an empty template means
/// [`DEFAULT_COMMIT_MESSAGE`].
pub fn render_commit_message(template: &str, data: &TemplateData) -> Result<String, TemplateError> {
    let template = if template.is_empty() {
        DEFAULT_COMMIT_MESSAGE
    } else {
        template
    };
    let tree = parse::parse(template, &funcs::is_defined).map_err(|e| {
        let line = 1 + template[..e.pos.min(template.len())].matches('\n').count();
        TemplateError::Parse(format!("template: {TEMPLATE_NAME}:{line}: {}", e.msg))
    })?;
    let root = data_value(data);
    let mut ex = exec::Exec::new(&tree, template, TEMPLATE_NAME, root.clone());
    match ex.run(&root) {
        Ok(()) => Ok(ex.out),
        Err(msg) => {
            // Flux recognises removed fields by Go's exec error text; so do we.
            if msg.contains("can't evaluate field Updated in type source.TemplateData") {
                Err(TemplateError::RemovedField(".Updated".into()))
            } else if msg.contains("can't evaluate field ImageResult in type update.Result") {
                Err(TemplateError::RemovedField(".Changed.ImageResult".into()))
            } else {
                Err(TemplateError::Exec(msg))
            }
        }
    }
}

/// The event text after a push (Flux `PushResult.Summary`):
/// `pushed commit '<sha[:7]>' to branch '<b>'[ and refspecs '<r1>', '<r2>'][\n<message>]`.
/// `sha` may also be a `<ref>@sha1:<hex>` revision; only the hash is used.
pub fn push_summary(
    sha: &str,
    branch: &str,
    refspecs: &[String],
    message: &str,
) -> Result<String, TemplateError> {
    if sha.is_empty() {
        return Err(TemplateError::EmptyRevision);
    }
    let hash = extract_hash(sha);
    let short: String = if hash.len() > 7 {
        hash.chars().take(7).collect()
    } else {
        hash.to_string()
    };
    let mut s = format!("pushed commit '{short}' to branch '{branch}'");
    if !refspecs.is_empty() {
        s.push_str(&format!(" and refspecs '{}'", refspecs.join("', '")));
    }
    if !message.is_empty() {
        s.push('\n');
        s.push_str(message);
    }
    Ok(s)
}

/// `<name>@<algo>:<hash>` or `<algo>:<hash>` → `<hash>`; anything else unchanged.
fn extract_hash(rev: &str) -> &str {
    let tail = rev.rsplit_once('@').map_or(rev, |(_, t)| t);
    match tail.split_once(':') {
        Some((algo, hash)) if algo.starts_with("sha") => hash,
        _ => tail,
    }
}

// ------------------------------------------------------------ Go-shaped data model

fn s(v: &str) -> Value {
    Value::str(v)
}

fn strukt(type_name: &'static str, fields: Vec<Field>) -> Value {
    Value::Struct(Rc::new(StructVal {
        type_name,
        fields,
        methods: Vec::new(),
        stringer: None,
    }))
}

fn json_field(name: &'static str, json: &'static str, value: Value) -> Field {
    Field {
        name,
        value,
        embedded: false,
        json: Some(json),
        omitempty: true,
    }
}

fn embedded(name: &'static str, value: Value) -> Field {
    Field {
        name,
        value,
        embedded: true,
        json: Some(""),
        omitempty: false,
    }
}

/// `update.ObjectIdentifier{ yaml.ResourceIdentifier{ TypeMeta{APIVersion, Kind}, NameMeta{Name, Namespace} } }`.
fn object_id_value(id: &ObjectId) -> Value {
    let type_meta = strukt(
        "yaml.TypeMeta",
        vec![
            json_field("APIVersion", "apiVersion", s(&id.api_version)),
            json_field("Kind", "kind", s(&id.kind)),
        ],
    );
    let name_meta = strukt(
        "yaml.NameMeta",
        vec![
            json_field("Name", "name", s(&id.name)),
            json_field("Namespace", "namespace", s(&id.namespace)),
        ],
    );
    let rid = strukt(
        "yaml.ResourceIdentifier",
        vec![
            embedded("TypeMeta", type_meta),
            embedded("NameMeta", name_meta),
        ],
    );
    strukt(
        "update.ObjectIdentifier",
        vec![Field {
            name: "ResourceIdentifier",
            value: rid,
            embedded: true,
            json: None,
            omitempty: false,
        }],
    )
}

fn change_value(c: &Change) -> Value {
    strukt(
        "update.Change",
        vec![
            Field::plain("OldValue", s(&c.old_value)),
            Field::plain("NewValue", s(&c.new_value)),
            Field::plain("Setter", s(&c.setter)),
        ],
    )
}

fn changes_value(changes: &[Change]) -> Value {
    Value::list(
        "[]update.Change",
        changes.iter().map(change_value).collect(),
    )
}

fn object_changes_value(objects: &BTreeMap<ObjectId, Vec<Change>>) -> Value {
    let entries = objects
        .iter()
        .map(|(id, ch)| (object_id_value(id), changes_value(ch)))
        .collect();
    Value::map(
        "update.ObjectChanges",
        Value::list("[]update.Change", Vec::new()),
        entries,
    )
}

fn data_value(data: &TemplateData) -> Value {
    let ns_name = format!("{}/{}", data.automation.namespace, data.automation.name);
    let automation = Value::Struct(Rc::new(StructVal {
        type_name: "types.NamespacedName",
        fields: vec![
            Field::plain("Namespace", s(&data.automation.namespace)),
            Field::plain("Name", s(&data.automation.name)),
        ],
        methods: vec![("String", s(&ns_name))],
        stringer: Some(ns_name.as_str().into()),
    }));
    let file_changes = Value::map(
        "map[string]update.ObjectChanges",
        Value::map("update.ObjectChanges", Value::Nil, Vec::new()),
        data.changed
            .file_changes
            .iter()
            .map(|(f, o)| (s(f), object_changes_value(o)))
            .collect(),
    );
    let changed = Value::Struct(Rc::new(StructVal {
        type_name: "update.Result",
        fields: vec![Field::plain("FileChanges", file_changes)],
        methods: vec![
            ("Changes", changes_value(&data.changed.changes())),
            ("Objects", object_changes_value(&data.changed.objects())),
        ],
        stringer: None,
    }));
    let values = Value::map(
        "map[string]string",
        s(""),
        data.values.iter().map(|(k, v)| (s(k), s(v))).collect(),
    );
    strukt(
        "source.TemplateData",
        vec![
            Field::plain("AutomationObject", automation),
            Field::plain("Changed", changed),
            Field::plain("Values", values),
        ],
    )
}

#[cfg(test)]
mod tests;
