//! Tables (like `flux get images`), JSON and YAML output.

use ferry_engine::RunReport;
use ferry_setters::TreeUpdate;
use ferry_store::{Kind, ObjectRecord, Store};
use serde::Serialize;

use crate::cli::{ImagesKind, OutputFormat};

/// Left-aligned columns padded to width and separated by a tab, as Flux's table printer does.
pub fn render_table(header: &[&str], rows: &[Vec<String>], no_header: bool) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(&" ".repeat(pad));
                out.push('\t');
            }
        }
        out.push('\n');
    };
    if !no_header {
        line(header.to_vec());
    }
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn ready_cells(rec: &ObjectRecord) -> (String, String) {
    match &rec.ready {
        Some(c) => (c.status.clone(), c.message.clone()),
        None => ("False".into(), "waiting to be reconciled".into()),
    }
}

fn bool_cell(b: bool) -> String {
    if b { "True".into() } else { "False".into() }
}

/// The JSON/YAML shape of one object in `get images -o json|yaml`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectView<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    suspended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<&'a ferry_store::Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_scan_result: Option<ScanView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_ref: Option<&'a ferry_store::ImageRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_previous_ref: Option<&'a ferry_store::ImageRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    automation: Option<&'a ferry_store::AutomationRecord>,
    /// The hold recorded in Git (`.ferry/holds.yaml`), with the commit that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<&'a ferry_store::HoldRecord>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    denied_tags: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanView<'a> {
    canonical_image_name: &'a str,
    tag_count: usize,
    scan_time: &'a str,
    revision: &'a str,
    latest_tags: &'a [String],
}

fn view(rec: &ObjectRecord) -> ObjectView<'_> {
    ObjectView {
        kind: rec.kind.as_str(),
        namespace: &rec.namespace,
        name: &rec.name,
        suspended: rec.suspended,
        ready: rec.ready.as_ref(),
        last_scan_result: rec.scan.as_ref().map(|s| ScanView {
            canonical_image_name: &s.canonical_image_name,
            tag_count: s.tag_count,
            scan_time: &s.scan_time,
            revision: &s.revision,
            latest_tags: &s.latest_tags,
        }),
        latest_ref: rec.policy.as_ref().and_then(|p| p.latest_ref.as_ref()),
        observed_previous_ref: rec
            .policy
            .as_ref()
            .and_then(|p| p.observed_previous_ref.as_ref()),
        automation: rec.automation.as_ref(),
        hold: rec.policy.as_ref().and_then(|p| p.hold.as_ref()),
        denied_tags: rec
            .policy
            .as_ref()
            .map(|p| p.denied_tags.as_slice())
            .unwrap_or_default(),
    }
}

pub fn print_images(
    store: &Store,
    kind: ImagesKind,
    namespace: Option<&str>,
    format: OutputFormat,
    no_header: bool,
) -> anyhow::Result<()> {
    let kinds: Vec<Kind> = match kind {
        ImagesKind::All => vec![
            Kind::ImageRepository,
            Kind::ImagePolicy,
            Kind::ImageUpdateAutomation,
        ],
        ImagesKind::Repository => vec![Kind::ImageRepository],
        ImagesKind::Policy => vec![Kind::ImagePolicy],
        ImagesKind::Update => vec![Kind::ImageUpdateAutomation],
    };
    let mut groups = Vec::new();
    for k in &kinds {
        let records: Vec<ObjectRecord> = store
            .list(*k)?
            .into_iter()
            .filter(|r| namespace.is_none_or(|ns| r.namespace == ns))
            .collect();
        groups.push((*k, records));
    }
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            let items: Vec<ObjectView> = groups
                .iter()
                .flat_map(|(_, rs)| rs.iter().map(view))
                .collect();
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                print!("{}", serde_saphyr::to_string(&items)?);
            }
        }
        OutputFormat::Table => {
            let all = kind == ImagesKind::All;
            let mut printed_any = false;
            for (k, records) in &groups {
                if records.is_empty() {
                    continue;
                }
                printed_any = true;
                print!(
                    "{}",
                    table_for(*k, records, namespace.is_none(), all, no_header)
                );
                if all {
                    println!();
                }
            }
            if !printed_any {
                match namespace {
                    Some(ns) => eprintln!(
                        "no image objects found in namespace {ns} (use -A for all namespaces)"
                    ),
                    None => eprintln!("no image objects found"),
                }
            }
        }
    }
    Ok(())
}

fn table_for(
    kind: Kind,
    records: &[ObjectRecord],
    with_ns: bool,
    prefixed: bool,
    no_header: bool,
) -> String {
    let prefix = format!("{}/", kind.as_str().to_lowercase());
    let mut header: Vec<&str> = Vec::new();
    if with_ns {
        header.push("NAMESPACE");
    }
    header.push("NAME");
    match kind {
        Kind::ImageRepository => {
            header.extend(["LAST SCAN", "TAGS", "SUSPENDED", "READY", "MESSAGE"])
        }
        Kind::ImagePolicy => header.extend(["LATEST IMAGE", "HOLD", "READY", "MESSAGE"]),
        Kind::ImageUpdateAutomation => header.extend([
            "LAST RUN",
            "LAST PUSH COMMIT",
            "LAST PUSH",
            "SUSPENDED",
            "READY",
            "MESSAGE",
        ]),
        // Never recorded: Ferry reads GitRepositories, it does not reconcile them.
        Kind::GitRepository => header.extend(["READY", "MESSAGE"]),
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = Vec::new();
            if with_ns {
                row.push(r.namespace.clone());
            }
            row.push(if prefixed {
                format!("{prefix}{}", r.name)
            } else {
                r.name.clone()
            });
            let (ready, message) = ready_cells(r);
            match kind {
                Kind::ImageRepository => {
                    let scan = r.scan.as_ref();
                    row.push(scan.map(|s| s.scan_time.clone()).unwrap_or_default());
                    row.push(scan.map(|s| s.tag_count.to_string()).unwrap_or_default());
                    row.push(bool_cell(r.suspended));
                }
                Kind::ImagePolicy => {
                    let latest = r.policy.as_ref().and_then(|p| p.latest_ref.as_ref());
                    row.push(latest.map(|l| l.to_string()).unwrap_or_default());
                    row.push(hold_cell(r.policy.as_ref()));
                }
                Kind::ImageUpdateAutomation => {
                    let a = r.automation.as_ref();
                    row.push(
                        a.and_then(|a| a.last_automation_run_time.clone())
                            .unwrap_or_default(),
                    );
                    row.push(
                        a.and_then(|a| a.last_push_commit.clone())
                            .unwrap_or_default(),
                    );
                    row.push(a.and_then(|a| a.last_push_time.clone()).unwrap_or_default());
                    row.push(bool_cell(r.suspended));
                }
                Kind::GitRepository => {}
            }
            row.push(ready);
            row.push(message);
            row
        })
        .collect();
    render_table(&header, &rows, no_header)
}

/// `TAG since SHA7 by WHO: REASON`, or `-` when not held.
fn hold_cell(policy: Option<&ferry_store::PolicyRecord>) -> String {
    let Some(h) = policy.and_then(|p| p.hold.as_ref()) else {
        return "-".into();
    };
    let mut s = h.tag.clone();
    if let Some(since) = &h.since {
        s.push_str(&format!(" since {}", &since[..since.len().min(7)]));
    }
    if !h.by.is_empty() {
        s.push_str(&format!(" by {}", h.by));
    }
    if !h.reason.is_empty() {
        s.push_str(&format!(": {}", h.reason));
    }
    s
}

/// One line per failed object on stderr, a count on stdout.
/// One `PREFIX KIND NS/NAME: MESSAGE` line on stderr per failed object; true when there was one.
pub fn print_failures(report: &RunReport, prefix: &str) -> bool {
    let mut any = false;
    for o in report.outcomes.iter().filter(|o| o.failed()) {
        eprintln!(
            "{prefix} {} {}/{}: {}",
            o.kind.as_str(),
            o.namespace,
            o.name,
            o.message
        );
        any = true;
    }
    any
}

pub fn print_summary(report: &RunReport) {
    let mut ok = 0;
    let mut failed = 0;
    let mut suspended = 0;
    for o in &report.outcomes {
        if o.suspended {
            suspended += 1;
        } else if o.ready {
            ok += 1;
            println!(
                "✔ {} {}/{}: {}",
                o.kind.as_str(),
                o.namespace,
                o.name,
                o.message
            );
        } else {
            failed += 1;
            eprintln!(
                "✗ {} {}/{}: {}: {}",
                o.kind.as_str(),
                o.namespace,
                o.name,
                o.reason,
                o.message
            );
        }
    }
    println!("{ok} ready, {failed} failed, {suspended} suspended");
}

pub fn print_pushes(report: &RunReport, dry_run: bool) {
    for push in &report.pushes {
        match &push.commit {
            Some(sha) => println!("pushed {sha} to {} ({})", push.branch, push.automation),
            None => println!("would push to {} ({})", push.branch, push.automation),
        }
        for c in &push.changes {
            println!("  {}: {} -> {}", c.setter, c.old, c.new);
        }
        if dry_run && let Some(diff) = &push.diff {
            print!("{diff}");
        }
    }
}

pub fn print_setter_changes(tree: &TreeUpdate, format: OutputFormat, dry_run: bool) {
    #[derive(Serialize)]
    struct Row<'a> {
        file: &'a str,
        object: String,
        setter: &'a str,
        old: &'a str,
        new: &'a str,
    }
    let mut rows = Vec::new();
    for (file, objects) in &tree.files {
        for (id, changes) in objects {
            let object = object_label(id);
            for c in changes {
                rows.push(Row {
                    file,
                    object: object.clone(),
                    setter: &c.setter,
                    old: &c.old_value,
                    new: &c.new_value,
                });
            }
        }
    }
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ),
        OutputFormat::Yaml => print!("{}", serde_saphyr::to_string(&rows).unwrap_or_default()),
        OutputFormat::Table => {
            for r in &rows {
                println!(
                    "{}: {}: {}: {} -> {}",
                    r.file, r.object, r.setter, r.old, r.new
                );
            }
            if rows.is_empty() {
                println!("no changes");
            }
        }
    }
    if dry_run {
        // Paths relative to --dir, like the change lines: `a//abs/path` is no use to `patch -p1`.
        // With -o json/yaml stdout carries only the document; the diff goes to stderr.
        for (path, edit) in &tree.edits {
            let diff = ferry_setters::unified_diff(path, &edit.old, &edit.new);
            if format == OutputFormat::Table {
                print!("{diff}");
            } else {
                eprint!("{diff}");
            }
        }
    }
}

/// `Kind ns/name` of a changed document; documents without `metadata` (a kustomize Component,
/// a nameless HelmRelease) say so instead of printing a blank name.
fn object_label(id: &ferry_setters::ObjectId) -> String {
    let kind = if id.kind.is_empty() {
        "(no kind)"
    } else {
        &id.kind
    };
    match (id.namespace.is_empty(), id.name.is_empty()) {
        (_, true) if id.kind.is_empty() => "-".to_string(),
        (true, true) => format!("{kind} (no metadata.name)"),
        (false, true) => format!("{kind} {}/(no metadata.name)", id.namespace),
        (true, false) => format!("{kind} {}", id.name),
        (false, false) => format!("{kind} {}/{}", id.namespace, id.name),
    }
}

/// One object of `ferry render`.
#[derive(Serialize)]
struct RenderRow {
    kind: String,
    namespace: String,
    name: String,
    /// `namespace/name` of the Flux Kustomization, or `(plain file)`.
    kustomization: String,
    /// `file:line` in the source tree.
    source: String,
    object: serde_json::Value,
}

fn render_rows(objects: &ferry_api::ObjectSet) -> anyhow::Result<Vec<RenderRow>> {
    fn rows<S: ferry_api::Spec + Serialize>(
        set: &ferry_api::ObjectSet,
        list: &[ferry_api::Object<S>],
        out: &mut Vec<RenderRow>,
    ) -> anyhow::Result<()> {
        for o in list {
            let r = o.object_ref();
            out.push(RenderRow {
                kustomization: set
                    .origins
                    .get(&r)
                    .cloned()
                    .unwrap_or_else(|| "(plain file)".to_string()),
                source: o.source.to_string(),
                object: serde_json::to_value(o)?,
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
            });
        }
        Ok(())
    }
    let mut out = Vec::new();
    rows(objects, &objects.image_repositories, &mut out)?;
    rows(objects, &objects.image_policies, &mut out)?;
    rows(objects, &objects.image_update_automations, &mut out)?;
    rows(objects, &objects.git_repositories, &mut out)?;
    out.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    Ok(out)
}

/// `ferry render` output: a table, or JSON/YAML lists (deterministic order).
pub fn print_render(
    objects: &ferry_api::ObjectSet,
    format: crate::cli::RenderFormat,
) -> anyhow::Result<()> {
    use crate::cli::RenderFormat;
    let rows = render_rows(objects)?;
    match format {
        RenderFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        RenderFormat::Yaml => print!("{}", serde_saphyr::to_string(&rows)?),
        RenderFormat::Table => {
            let head = ["KIND", "NAMESPACE", "NAME", "KUSTOMIZATION", "SOURCE"];
            let cells: Vec<[&str; 5]> = rows
                .iter()
                .map(|r| {
                    [
                        &*r.kind,
                        &*r.namespace,
                        &*r.name,
                        &*r.kustomization,
                        &*r.source,
                    ]
                })
                .collect();
            let mut width = head.map(str::len);
            for c in &cells {
                for (w, v) in width.iter_mut().zip(c) {
                    *w = (*w).max(v.len());
                }
            }
            for line in std::iter::once(head).chain(cells) {
                let mut s = String::new();
                for (i, (v, w)) in line.iter().zip(width).enumerate() {
                    if i + 1 == line.len() {
                        s.push_str(v);
                    } else {
                        s.push_str(&format!("{v:<w$}  "));
                    }
                }
                println!("{s}");
            }
        }
    }
    Ok(())
}
