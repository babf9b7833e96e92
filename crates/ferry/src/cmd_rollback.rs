//! `ferry rollback`, `ferry hold`, `ferry unhold`, `ferry history`, `ferry status`,
//! `ferry metrics dora`.
//!
//! Thin: parse, load the objects, call the engine (`ferry_engine::rollback`), print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use ferry_engine::Engine;
use ferry_engine::dora::DoraRequest;
use ferry_engine::rollback::{
    HistoryRow, HoldReport, HoldRequest, RepoFallback, RollbackError, RollbackReport,
    RollbackRequest, StatusReport, UnholdRequest,
};
use ferry_store::Store;

use crate::cli::{OutputFormat, SourceArgs};
use crate::{CliError, Status};

/// Roll an environment back to the version before the current one, and hold it there.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Environment (the namespace of the ImagePolicy, or a Pipeline stage).
    pub env: String,
    /// App (the ImagePolicy name, or a Pipeline name).
    pub app: String,
    /// Roll back to this tag (one ENV ran before, unless --force).
    #[arg(long, value_name = "TAG", conflicts_with = "steps")]
    pub to: Option<String>,
    /// Roll Git back to the tag the cluster runs now (after an emergency `kubectl rollout
    /// undo`): the live workloads of ENV's namespace are read with --kubeconfig.
    #[arg(long, conflicts_with_all = ["to", "steps"], requires = "kubeconfig")]
    pub to_live: bool,
    /// Go back N earlier versions (denied tags are skipped).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,
    /// Why (recorded in the commit and the hold).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Who (recorded in the commit and the hold). Default: $FERRY_BY, else $USER.
    #[arg(long, value_name = "NAME", env = "FERRY_BY")]
    pub by: Option<String>,
    /// Print the commit that would be pushed; push nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --to: allow a tag ENV never ran.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Hold an environment's app at its current version (automation will not move it).
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    pub env: String,
    pub app: String,
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    #[arg(long, value_name = "NAME", env = "FERRY_BY")]
    pub by: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Lift a hold.
#[derive(Debug, clap::Args)]
pub struct UnholdArgs {
    pub env: String,
    pub app: String,
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    #[arg(long, value_name = "NAME", env = "FERRY_BY")]
    pub by: Option<String>,
    /// Also lift the denial of TAG (repeatable). Denied tags otherwise stay denied.
    #[arg(long, value_name = "TAG")]
    pub allow: Vec<String>,
    /// Also lift every denial of this app in this environment.
    #[arg(long)]
    pub allow_all: bool,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// The timeline of an app in an environment, from Git.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    pub env: String,
    pub app: String,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// DORA figures of one app (or every app) in one environment.
#[derive(Debug, clap::Args)]
pub struct DoraArgs {
    /// Only this app.
    pub app: Option<String>,
    /// Environment (default: each app's last stage, production in the seed).
    #[arg(long)]
    pub env: Option<String>,
    /// Window ending now: `30d`, `2w`, `12h`, `90m`.
    #[arg(long, default_value = "30d")]
    pub since: String,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Apps × environments: what runs where, holds, what is promotable.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this app.
    pub app: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

fn rollback_error(e: RollbackError) -> CliError {
    if e.is_invalid() {
        CliError::bad_input(e)
    } else {
        CliError::failed(e)
    }
}

struct Prepared {
    engine: Engine,
    objects: ferry_api::ObjectSet,
    fallback: Option<RepoFallback>,
    _source: crate::commands::CommandObjects,
}

async fn prepare(state: &Path, source: &SourceArgs) -> Result<Prepared, CliError> {
    let mut loaded = source.objects(None, true).await?;
    let objects = loaded.take_set();
    let config = loaded.config.clone();
    let auth = source.repo_auth()?;
    let fallback = source.repo.as_ref().map(|url| RepoFallback {
        url: url.clone(),
        branch: source.git_ref.clone(),
        path: None,
        auth,
    });
    let store = Store::open(state).map_err(CliError::failed)?;
    Ok(Prepared {
        engine: Engine::new(config, store),
        objects,
        fallback,
        _source: loaded,
    })
}

fn who(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn print_structured<T: serde::Serialize>(value: &T, format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(value).map_err(CliError::failed)?
            )
        }
        OutputFormat::Yaml => print!(
            "{}",
            serde_saphyr::to_string(value).map_err(CliError::failed)?
        ),
        OutputFormat::Table => {}
    }
    Ok(())
}

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let all = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for row in all {
        let last = row.len().saturating_sub(1);
        for (i, c) in row.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count()) + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// `ferry verify`'s rows for `desired`, read from the cluster of `kubeconfig`.
pub(crate) async fn live_rows(
    kubeconfig: &Path,
    context: Option<String>,
    desired: &[ferry_controller::verify::Desired],
) -> Result<Vec<ferry_controller::verify::VerifyRow>, CliError> {
    let options =
        ferry_controller::ControllerOptions::reader(kubeconfig.to_path_buf(), context, None);
    let (client, server) = ferry_controller::client_and_server(&options)
        .await
        .map_err(CliError::failed)?;
    ferry_controller::verify::verify(&client, desired)
        .await
        .map_err(|e| {
            CliError::failed(anyhow!(
                "cannot read the workloads from the Kubernetes API server {server} ({}): {e}",
                kubeconfig.display()
            ))
        })
}

/// The one tag the app's live workloads in ENV run (for `rollback --to-live`).
async fn live_tag(
    p: &Prepared,
    args: &RollbackArgs,
    kubeconfig: &Path,
) -> Result<String, CliError> {
    let report = p
        .engine
        .status(&p.objects, Some(&args.app))
        .await
        .map_err(rollback_error)?;
    let desired = ferry_controller::verify::desired(&p.objects, &report, Some(&args.env));
    if desired.is_empty() {
        return Err(CliError::bad_input(anyhow!(
            "no ImagePolicy for app {} in environment {}",
            args.app,
            args.env
        )));
    }
    let rows = live_rows(kubeconfig, args.source.context.clone(), &desired).await?;
    let row = &rows[0];
    match row.live_tags().as_slice() {
        [tag] => Ok(tag.clone()),
        [] => Err(CliError::failed(anyhow!(
            "no workload in namespace {} runs a tagged {} image",
            row.namespace,
            desired[0].image
        ))),
        many => Err(CliError::failed(anyhow!(
            "the live workloads of {} in namespace {} disagree ({}); use --to TAG",
            args.app,
            row.namespace,
            many.join(", ")
        ))),
    }
}

pub async fn rollback(state: &Path, args: RollbackArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source).await?;
    let mut to = args.to.clone();
    let mut reason = args.reason.clone();
    if let (true, Some(kubeconfig)) = (args.to_live, &args.source.kubeconfig) {
        let tag = live_tag(&p, &args, kubeconfig).await?;
        if reason.is_empty() {
            reason = format!(
                "Git follows the cluster: {} runs {tag} in {}",
                args.app, args.env
            );
        }
        to = Some(tag);
    }
    let req = RollbackRequest {
        env: args.env,
        app: args.app,
        to,
        steps: args.steps,
        reason,
        by: who(args.by),
        dry_run: args.dry_run,
        force: args.force,
        repo: p.fallback.clone(),
        max_attempts: 8,
        adopted: args
            .to_live
            .then_some(ferry_engine::rollback::Adopted::Live),
    };
    let report: RollbackReport = p
        .engine
        .rollback(&p.objects, &req)
        .await
        .map_err(rollback_error)?;
    if args.output != OutputFormat::Table {
        print_structured(&report, args.output)?;
        return Ok(Status::Ok);
    }
    match &report.commit {
        Some(sha) => println!(
            "rolled back {} from {} to {}: pushed {sha} to {}",
            report.policy,
            report.from.tag_str(),
            report.to.tag_str(),
            report.branch
        ),
        None => println!(
            "dry run: would roll back {} from {} to {} on {}",
            report.policy,
            report.from.tag_str(),
            report.to.tag_str(),
            report.branch
        ),
    }
    println!("  reverts {}", report.reverts);
    match &report.method_reason {
        Some(why) => println!("  method: setters ({why})"),
        None => println!("  method: git revert"),
    }
    println!(
        "  held at {}; denied {}",
        report.to.tag_str(),
        report.denied_tag
    );
    for c in &report.changes {
        println!("  {}: {} -> {}", c.setter, c.old, c.new);
    }
    if let Some(diff) = &report.diff {
        print!("{diff}");
    }
    Ok(Status::Ok)
}

fn print_hold(report: &HoldReport, format: OutputFormat) -> Result<(), CliError> {
    if format != OutputFormat::Table {
        return print_structured(report, format);
    }
    match &report.commit {
        Some(sha) => println!("{}: pushed {sha} to {}", report.message, report.branch),
        None => println!("{}: nothing to change", report.message),
    }
    Ok(())
}

pub async fn hold(state: &Path, args: HoldArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source).await?;
    let req = HoldRequest {
        env: args.env,
        app: args.app,
        reason: args.reason,
        by: who(args.by),
        repo: p.fallback.clone(),
    };
    let report = p
        .engine
        .hold(&p.objects, &req)
        .await
        .map_err(rollback_error)?;
    print_hold(&report, args.output)?;
    Ok(Status::Ok)
}

pub async fn unhold(state: &Path, args: UnholdArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source).await?;
    let req = UnholdRequest {
        env: args.env,
        app: args.app,
        reason: args.reason,
        by: who(args.by),
        allow: args.allow,
        allow_all: args.allow_all,
        repo: p.fallback.clone(),
    };
    let report = p
        .engine
        .unhold(&p.objects, &req)
        .await
        .map_err(rollback_error)?;
    print_hold(&report, args.output)?;
    Ok(Status::Ok)
}

/// When each tag of ENV/APP was first seen live: by `ferry verify` (the state file) and, with
/// `--kubeconfig`, by the controller (the ImagePolicy's annotation); the earlier wins.
async fn live_sightings(p: &Prepared, args: &HistoryArgs) -> BTreeMap<String, String> {
    let (ns, name) = ferry_engine::rollback::policy_of(&p.objects, &args.env, &args.app);
    let mut seen = match p.engine.store().live_seen(&format!("{ns}/{name}")) {
        Ok(seen) => seen,
        Err(e) => {
            eprintln!("warning: {e}");
            BTreeMap::new()
        }
    };
    if let Some(options) = args.source.cluster_reader(None) {
        match ferry_controller::sightings::policy_live_seen(&options, &ns, &name).await {
            Ok(cluster) => {
                for (tag, at) in cluster {
                    let earliest = seen.entry(tag).or_insert_with(|| at.clone());
                    if at < *earliest {
                        *earliest = at;
                    }
                }
            }
            Err(e) => eprintln!("warning: cannot read live sightings from the cluster: {e}"),
        }
    }
    seen
}

pub async fn history(state: &Path, args: HistoryArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source).await?;
    let mut rows: Vec<HistoryRow> = p
        .engine
        .history(&p.objects, &args.env, &args.app, p.fallback.as_ref())
        .await
        .map_err(rollback_error)?;
    let seen = live_sightings(&p, &args).await;
    ferry_engine::rollback::mark_first_seen_live(&mut rows, &seen);
    let with_live = rows.iter().any(|r| r.first_seen_live.is_some());
    if args.output != OutputFormat::Table {
        print_structured(&rows, args.output)?;
        return Ok(Status::Ok);
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let old = if r.old_tag.is_empty() {
                "-"
            } else {
                r.old_tag.as_str()
            };
            let new = if r.new_tag.is_empty() {
                "-"
            } else {
                r.new_tag.as_str()
            };
            let commit = match &r.merged_from {
                Some(m) => format!("{} (merge of {})", short(&r.commit), short(m)),
                None => short(&r.commit).to_string(),
            };
            let mut row = vec![
                r.time.clone(),
                format!("{old} → {new}"),
                r.digest.clone().unwrap_or_else(|| "-".into()),
                commit,
                r.author.clone(),
                r.kind.as_str().to_string(),
            ];
            if with_live {
                row.push(r.first_seen_live.clone().unwrap_or_else(|| "-".into()));
            }
            row.push(r.reason.clone());
            row
        })
        .collect();
    let mut header = vec!["TIME", "CHANGE", "DIGEST", "COMMIT", "AUTHOR", "KIND"];
    if with_live {
        header.push("FIRST SEEN LIVE");
    }
    header.push("REASON");
    print!("{}", table(&header, &body));
    Ok(Status::Ok)
}

/// `ferry status --kubeconfig`: the report plus, per app × environment, what the cluster runs.
#[derive(serde::Serialize)]
struct StatusWithLive<'a> {
    #[serde(flatten)]
    report: &'a StatusReport,
    live: &'a [ferry_controller::verify::VerifyRow],
}

/// The live state of `app` in `env`, as a table marker (` [drift]`); empty without a cluster.
fn live_marker(rows: &[ferry_controller::verify::VerifyRow], app: &str, env: &str) -> String {
    use ferry_controller::verify::VerifyState;
    match rows.iter().find(|r| r.app == app && r.env == env) {
        None => String::new(),
        Some(r) if r.state == VerifyState::InSync => " [live]".into(),
        Some(r) => match r.live_tags().as_slice() {
            [] => format!(" [{}]", r.state.as_str()),
            tags => format!(" [{}: runs {}]", r.state.as_str(), tags.join(", ")),
        },
    }
}

/// `ferry status` as a table: apps × environments (tag, short digest, held, live state), what
/// is promotable, then one line per hold (stdout) and per unreadable cell (stderr).
fn print_status_table(report: &StatusReport, live: &[ferry_controller::verify::VerifyRow]) {
    let mut header = vec!["APP"];
    header.extend(report.envs.iter().map(String::as_str));
    header.push("PROMOTABLE");
    let body: Vec<Vec<String>> = report
        .apps
        .iter()
        .map(|a| {
            let mut row = vec![a.app.clone()];
            for env in &report.envs {
                let cell = a.envs.iter().find(|c| &c.env == env);
                row.push(match cell {
                    None => "".into(),
                    Some(c) if c.error.is_some() => "error".into(),
                    Some(c) => {
                        let mut s = c.tag.clone().unwrap_or_else(|| "-".into());
                        if let Some(d) = &c.digest {
                            let hex = d.trim_start_matches("sha256:");
                            s.push_str(&format!(" @{}", &hex[..hex.len().min(12)]));
                        }
                        if c.held {
                            s.push_str(" [held]");
                        }
                        s.push_str(&live_marker(live, &a.app, env));
                        s
                    }
                });
            }
            let promotable: Vec<String> = a
                .envs
                .iter()
                .filter_map(|c| c.promotable_to.as_ref().map(|to| format!("{}→{to}", c.env)))
                .collect();
            row.push(if promotable.is_empty() {
                "-".into()
            } else {
                promotable.join(", ")
            });
            row
        })
        .collect();
    print!("{}", table(&header, &body));
    for a in &report.apps {
        for c in &a.envs {
            if let Some(e) = &c.error {
                eprintln!("{} {}: {e}", a.app, c.env);
            }
            if let Some(h) = &c.hold {
                println!(
                    "{} {}: held at {} since {} by {}{}",
                    a.app,
                    c.env,
                    h.tag,
                    h.since.as_deref().map(short).unwrap_or("?"),
                    h.by,
                    if h.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", h.reason)
                    }
                );
            }
        }
    }
}

pub async fn status(state: &Path, args: StatusArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source).await?;
    let report: StatusReport = p
        .engine
        .status(&p.objects, args.app.as_deref())
        .await
        .map_err(rollback_error)?;
    let live = match &args.source.kubeconfig {
        Some(kubeconfig) => {
            let desired = ferry_controller::verify::desired(&p.objects, &report, None);
            live_rows(kubeconfig, args.source.context.clone(), &desired).await?
        }
        None => Vec::new(),
    };
    if args.output != OutputFormat::Table {
        match args.source.kubeconfig {
            Some(_) => print_structured(
                &StatusWithLive {
                    report: &report,
                    live: &live,
                },
                args.output,
            )?,
            None => print_structured(&report, args.output)?,
        }
    } else {
        print_status_table(&report, &live);
    }
    let failed = report
        .apps
        .iter()
        .any(|a| a.envs.iter().any(|c| c.error.is_some()));
    if failed {
        return Err(CliError::failed(anyhow!(
            "some environments could not be read"
        )));
    }
    Ok(Status::Ok)
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Only this app.
    pub app: Option<String>,
    /// Only this environment.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `ferry verify`: Git × cluster × registry; exit 0 when everything is in sync, 1 otherwise.
pub async fn verify(state: &Path, mut args: VerifyArgs) -> Result<Status, CliError> {
    if args.source.kubeconfig.is_none() {
        args.source.kubeconfig = std::env::var_os("KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    let Some(kubeconfig) = args.source.kubeconfig.clone() else {
        return Err(CliError::bad_input(anyhow!(
            "ferry verify compares Git with a cluster: pass --kubeconfig PATH (or set $KUBECONFIG)"
        )));
    };
    let p = prepare(state, &args.source).await?;
    let report: StatusReport = p
        .engine
        .status(&p.objects, args.app.as_deref())
        .await
        .map_err(rollback_error)?;
    let desired = ferry_controller::verify::desired(&p.objects, &report, args.env.as_deref());
    let rows = live_rows(&kubeconfig, args.source.context.clone(), &desired).await?;
    record_sightings(&p, &rows);
    if args.output != OutputFormat::Table {
        print_structured(&rows, args.output)?;
    } else {
        let body: Vec<Vec<String>> = rows.iter().map(verify_cells).collect();
        let header = ["APP", "ENV", "GIT", "LIVE", "REGISTRY DIGEST", "STATE"];
        print!("{}", crate::output::render_table(&header, &body, false));
    }
    let in_sync = rows
        .iter()
        .all(|r| r.state == ferry_controller::verify::VerifyState::InSync);
    Ok(if in_sync { Status::Ok } else { Status::Failed })
}

/// Notes in the state file when each live tag was first seen (for `ferry history`).
fn record_sightings(p: &Prepared, rows: &[ferry_controller::verify::VerifyRow]) {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut store = p.engine.store();
    for row in rows {
        for tag in row.live_tags() {
            if let Err(e) = store.record_live_seen(&row.policy, &tag, &now) {
                eprintln!("warning: {e}");
                return;
            }
        }
    }
}

fn verify_cells(r: &ferry_controller::verify::VerifyRow) -> Vec<String> {
    let live: Vec<String> = r
        .live
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l.workload,
                l.image.rsplit('/').next().unwrap_or(&l.image)
            )
        })
        .collect();
    let digest = r.registry_digest.as_deref().map(|d| {
        let hex = d.trim_start_matches("sha256:");
        format!("sha256:{}", &hex[..hex.len().min(12)])
    });
    vec![
        r.app.clone(),
        r.env.clone(),
        r.git_tag.clone().unwrap_or_else(|| "-".into()),
        if live.is_empty() {
            "-".into()
        } else {
            live.join(", ")
        },
        digest.unwrap_or_else(|| "-".into()),
        r.state.as_str().to_string(),
    ]
}

pub async fn dora(state: &Path, args: DoraArgs) -> Result<Status, CliError> {
    let since = ferry_engine::dora::parse_since(&args.since)
        .map_err(|e| CliError::bad_input(anyhow!(e)))?;
    let p = prepare(state, &args.source).await?;
    let end = ferry_engine::dora::unix_now();
    let req = DoraRequest {
        app: args.app,
        env: args.env,
        since,
        end,
        repo: p.fallback.clone(),
    };
    let report = p
        .engine
        .dora(&p.objects, &req)
        .await
        .map_err(rollback_error)?;
    if args.output != OutputFormat::Table {
        print_structured(&report, args.output)?;
        return Ok(Status::Ok);
    }
    let secs = |s: Option<i64>| {
        s.map(ferry_engine::dora::human_duration)
            .unwrap_or_else(|| "-".into())
    };
    let body: Vec<Vec<String>> = report
        .apps
        .iter()
        .map(|f| {
            vec![
                f.app.clone(),
                f.env.clone(),
                f.deployments.to_string(),
                format!("{:.2}", f.deployments_per_day),
                secs(f.lead_time.median_seconds),
                f.change_failure_rate
                    .map(|r| format!("{:.0}% ({}/{})", r * 100.0, f.rollbacks, f.deployments))
                    .unwrap_or_else(|| "-".into()),
                secs(f.time_to_restore.median_seconds),
                f.unrestored.to_string(),
            ]
        })
        .collect();
    println!("window {} .. {}", report.window_start, report.window_end);
    print!(
        "{}",
        table(
            &[
                "APP",
                "ENV",
                "DEPLOYS",
                "PER DAY",
                "LEAD TIME (MEDIAN)",
                "CHANGE FAILURE",
                "TIME TO RESTORE (MEDIAN)",
                "UNRESTORED"
            ],
            &body
        )
    );
    Ok(Status::Ok)
}
