//! `ferry publish`, `ferry promote`, `ferry approve`, `ferry version` (promotion without rebuild).
//! The logic is in `ferry_engine::promote`; this file parses flags and prints reports.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use ferry_api::ObjectSet;
use ferry_engine::promote::{
    self, ApproveRequest, Bump, GitFallback, PromoteError, PromoteReport, PromoteRequest,
    PublishRequest, StageConfig, TagOutcome, TagWrite,
};
use ferry_engine::{AutomationOptions, Engine};
use ferry_store::Store;

use crate::cli::{OutputFormat, SourceArgs};
use crate::{CliError, Status, output};

/// Add the environment tags to an image already in the registry (server-side, no rebuild).
#[derive(Debug, clap::Args)]
// `--version X.Y.Z` is this command's own flag, not clap's "print the version".
#[command(disable_version_flag = true)]
pub struct PublishArgs {
    /// The pushed image: IMAGE[:TAG|@DIGEST].
    #[arg(value_name = "IMAGE[:TAG|@DIGEST]")]
    pub image: String,
    /// Environment: adds the alias ENV and the immutable ENV-vX.Y.Z-<sha7>-<ts>.
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// Version X.Y.Z. Default: the app's next version (see `ferry version`).
    #[arg(long, value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// Source commit of the build (7 to 64 hex digits); also added as the tag <sha7>.
    #[arg(long, value_name = "SHA")]
    pub sha: String,
    /// Unix time of the build for the immutable tag. Default: now.
    #[arg(long, value_name = "UNIX")]
    pub timestamp: Option<u64>,
    /// App name. Default: the last path segment of the image repository.
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Allow plain HTTP (when no ImageRepository in the source describes the image).
    #[arg(long)]
    pub insecure: bool,
    /// Extra CA certificate (PEM) for the registry (when no ImageRepository describes it).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print every registry request; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Which part of the next version a release bumps.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BumpArg {
    Patch,
    Minor,
    Major,
}

/// Promote an app's tested image to the next environment by digest.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The app (Pipeline name, or the ImagePolicy name in each environment namespace).
    #[arg(value_name = "APP")]
    pub app: String,
    /// Target environment (stage).
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// Source environment. Default: the stage before --to.
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,
    /// Source tag. Default: the newest tag of the source stage's ImagePolicy.
    #[arg(long, value_name = "SOURCE_TAG")]
    pub tag: Option<String>,
    /// Print every registry request and the Git change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation on a terminal.
    #[arg(short, long)]
    pub yes: bool,
    /// Promote even if the source environment's Git state points at another digest (recorded).
    #[arg(long)]
    pub force: bool,
    /// Which part of the next version to bump after a release to the last stage.
    #[arg(long, value_enum, default_value_t = BumpArg::Patch)]
    pub bump: BumpArg,
    /// Who promotes (recorded). Default: $USER.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Unix time for the new immutable tag. Default: now (a resumed promotion keeps its own).
    #[arg(long, value_name = "UNIX")]
    pub timestamp: Option<u64>,
    /// Do not run the target environment's automation afterwards.
    #[arg(long)]
    pub no_reconcile: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Record a manual approval in Git.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    #[arg(value_name = "APP")]
    pub app: String,
    /// The environment the approval is for (the promotion target).
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// The source tag approved for promotion.
    #[arg(long, value_name = "TAG")]
    pub tag: String,
    /// Who approves (recorded).
    #[arg(long, value_name = "NAME")]
    pub by: String,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Print an app's current and next version.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// The app whose release version to print. Without it: Ferry's own version.
    #[arg(value_name = "APP")]
    pub app: Option<String>,
    /// Print JSON (the same as `-o json`).
    #[arg(long)]
    pub json: bool,
    /// Print only the next version (for build scripts).
    #[arg(long)]
    pub next: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

struct Prepared {
    engine: Engine,
    objects: ObjectSet,
    fallback: Option<GitFallback>,
    _source: crate::commands::CommandObjects,
}

/// Like the other commands, except that with neither --dir nor --repo `publish` runs without
/// objects (its image needs none).
async fn prepare(
    state: &Path,
    source: &SourceArgs,
    objects_required: bool,
) -> Result<Prepared, CliError> {
    let mut loaded = source.objects(None, objects_required).await?;
    let objects = loaded.take_set();
    let config = loaded.config.clone();
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failed(anyhow!("cannot create {}: {e}", dir.display())))?;
    }
    let store = Store::open(state).map_err(CliError::failed)?;
    Ok(Prepared {
        engine: Engine::new(config, store),
        objects,
        fallback: match &source.repo {
            Some(url) => Some(GitFallback {
                url: url.clone(),
                branch: source.git_ref.clone(),
                auth: source.repo_auth()?,
            }),
            None => None,
        },
        _source: loaded,
    })
}

fn cli_error(e: PromoteError) -> CliError {
    if e.is_bad_input() {
        CliError::bad_input(e)
    } else {
        CliError::failed(e)
    }
}

fn outcome_word(o: TagOutcome) -> &'static str {
    match o {
        TagOutcome::Written => "written",
        TagOutcome::AlreadyPresent => "already present",
        TagOutcome::WouldWrite => "would write",
    }
}

fn print_tags(tags: &[TagWrite]) {
    for t in tags {
        println!(
            "  {:<50} {}{}",
            t.tag,
            outcome_word(t.outcome),
            if t.immutable { " (immutable)" } else { "" }
        );
    }
}

pub(crate) fn print_json<T: serde::Serialize>(
    value: &T,
    format: OutputFormat,
) -> Result<(), CliError> {
    let text = match format {
        OutputFormat::Yaml => {
            serde_saphyr::to_string(value).map_err(|e| CliError::failed(anyhow!("{e}")))?
        }
        _ => {
            serde_json::to_string_pretty(value).map_err(|e| CliError::failed(anyhow!("{e}")))?
                + "\n"
        }
    };
    print!("{text}");
    Ok(())
}

pub async fn publish(state: &Path, args: PublishArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source, false).await?;
    let ca_pem = match &args.ca_file {
        Some(f) => Some(
            std::fs::read(f)
                .map_err(|e| CliError::bad_input(anyhow!("--ca-file {}: {e}", f.display())))?,
        ),
        None => None,
    };
    let req = PublishRequest {
        image: args.image.clone(),
        env: args.env.clone(),
        version: args.version.clone(),
        sha: args.sha.clone(),
        timestamp: args.timestamp,
        app: args.app.clone(),
        insecure: args.insecure,
        ca_pem,
        dry_run: args.dry_run,
    };
    let report = promote::publish(&p.engine, &p.objects, p.fallback.as_ref(), &req)
        .await
        .map_err(cli_error)?;
    if args.output != OutputFormat::Table {
        print_json(&report, args.output)?;
        return Ok(Status::Ok);
    }
    if args.dry_run {
        println!("dry run: registry requests");
        for r in &report.requests {
            println!("  {r}");
        }
    }
    println!(
        "{} {}@{} (version {}, {}):",
        if args.dry_run {
            "would publish"
        } else {
            "published"
        },
        report.image,
        report.digest,
        report.version,
        report.media_type
    );
    print_tags(&report.tags);
    println!("registry requests: {}", report.request_count);
    Ok(Status::Ok)
}

fn promote_request(args: &PromoteArgs, dry_run: bool) -> PromoteRequest {
    PromoteRequest {
        app: args.app.clone(),
        to: args.to.clone(),
        from: args.from.clone(),
        tag: args.tag.clone(),
        dry_run,
        force: args.force,
        bump: match args.bump {
            BumpArg::Patch => Bump::Patch,
            BumpArg::Minor => Bump::Minor,
            BumpArg::Major => Bump::Major,
        },
        by: args
            .by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_string()),
        timestamp: args.timestamp,
    }
}

fn print_promotion(r: &PromoteReport, dry_run: bool) {
    if dry_run {
        println!("dry run: nothing was written");
        println!("registry requests:");
        for line in &r.requests {
            println!("  {line}");
        }
    }
    println!(
        "{} {} {} from {} to {}: {}@{}",
        if dry_run { "would promote" } else { "promoted" },
        r.app,
        r.version,
        r.from,
        r.to,
        r.source_tag,
        r.digest
    );
    for g in &r.gates {
        println!(
            "  gate {:<16} {}  {}",
            g.gate,
            if g.passed { "passed" } else { "FORCED" },
            g.detail
        );
    }
    println!("tags in {}:", r.target_image);
    print_tags(&r.tags);
    if let Some(diff) = &r.git_changes {
        println!("Git change in {}:", r.git_repository);
        print!("{diff}");
    } else {
        match &r.commit {
            Some(sha) => println!(
                "release record {} committed as {} in {}",
                r.record_path,
                &sha[..sha.len().min(12)],
                r.git_repository
            ),
            None => println!(
                "release record {} already in {}",
                r.record_path, r.git_repository
            ),
        }
    }
    if let Some(n) = &r.next_version {
        println!("next version: {n}");
    }
    if r.resumed {
        println!("(resumed an earlier run of this promotion)");
    }
    println!(
        "registry: {} requests in {} ms",
        r.request_count, r.registry_millis
    );
    if let Some(immutable) = r.tags.iter().find(|t| t.immutable) {
        println!(
            "{} {} run: {}:{}@{}",
            r.to,
            if dry_run { "would" } else { "will" },
            r.target_image,
            immutable.tag,
            r.digest
        );
    }
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

pub async fn promote(state: &Path, args: PromoteArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source, true).await?;
    // One pass: the preview, the promotion and the target's automation share one fetch of the
    // write-back repository.
    let _pass = p.engine.pass();
    if let (Some(kubeconfig), false) = (&args.source.kubeconfig, args.force) {
        cluster_gate(&p, &args, kubeconfig).await?;
    }
    let interactive = !args.yes && !args.dry_run && std::io::stdin().is_terminal();
    if interactive {
        let preview = promote::promote(
            &p.engine,
            &p.objects,
            p.fallback.as_ref(),
            &promote_request(&args, true),
        )
        .await
        .map_err(cli_error)?;
        print_promotion(&preview, true);
        if !confirm("Proceed?") {
            return Err(CliError::failed(anyhow!(
                "not confirmed; nothing was written"
            )));
        }
    }
    let report = promote::promote(
        &p.engine,
        &p.objects,
        p.fallback.as_ref(),
        &promote_request(&args, args.dry_run),
    )
    .await
    .map_err(cli_error)?;
    if args.output != OutputFormat::Table {
        print_json(&report, args.output)?;
    } else {
        print_promotion(&report, args.dry_run);
    }
    if !args.dry_run && !args.no_reconcile {
        match &args.source.kubeconfig {
            Some(kubeconfig) => request_target(&p.objects, &report, kubeconfig, &args).await?,
            None => reconcile_target(&p.engine, &p.objects, &report).await,
        }
    }
    Ok(Status::Ok)
}

/// The stage before `to` (or `--from`) and the `to` stage of the app's pipeline.
fn stages(
    objects: &ObjectSet,
    app: &str,
    from: Option<&str>,
    to: &str,
) -> Option<(StageConfig, StageConfig)> {
    let stages = promote::AppPipeline::resolve(objects, app).ok()?.stages;
    let at = stages.iter().position(|s| s.name == to)?;
    let source = match from {
        Some(f) => stages.iter().find(|s| s.name == f)?.clone(),
        None => stages.get(at.checked_sub(1)?)?.clone(),
    };
    Some((source, stages[at].clone()))
}

/// The source environment's workloads must run what Git says (`ferry verify` in-sync).
async fn cluster_gate(p: &Prepared, args: &PromoteArgs, kubeconfig: &Path) -> Result<(), CliError> {
    let Some((source, _)) = stages(&p.objects, &args.app, args.from.as_deref(), &args.to) else {
        return Ok(()); // the engine reports an unknown stage with its own message
    };
    let report = p
        .engine
        .status(&p.objects, Some(&args.app))
        .await
        .map_err(|e| CliError::failed(anyhow!(e)))?;
    let desired = ferry_controller::verify::desired(&p.objects, &report, Some(&source.name));
    let rows =
        crate::cmd_rollback::live_rows(kubeconfig, args.source.context.clone(), &desired).await?;
    for row in rows {
        if row.state != ferry_controller::verify::VerifyState::InSync {
            let live: Vec<String> = row.live.iter().map(|l| l.image.clone()).collect();
            return Err(CliError::failed(anyhow!(
                "gate \"what the source runs\": the cluster does not run {}'s {} image from Git ({}; Git {}, live {}); fix the cluster or pass --force",
                args.app,
                source.name,
                row.state.as_str(),
                row.git_tag.as_deref().unwrap_or("-"),
                if live.is_empty() {
                    "none".to_string()
                } else {
                    live.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// Asks the cluster to rescan the target environment's ImageRepository and run its automation
/// now (`requestedAt` on both): the scan elects the promoted tag, the automation writes it. With
/// Flux's controllers as with Ferry's, a request on the automation alone would write the old
/// election until the repository's next scan.
async fn request_target(
    objects: &ObjectSet,
    report: &PromoteReport,
    kubeconfig: &Path,
    args: &PromoteArgs,
) -> Result<(), CliError> {
    let Some((_, target)) = stages(objects, &report.app, Some(&report.from), &report.to) else {
        return Ok(());
    };
    let Some(policy) = objects.image_policy(&target.namespace, &target.policy) else {
        return Ok(());
    };
    let Some(automation) = ferry_engine::automations_for(objects, policy)
        .first()
        .copied()
    else {
        return Ok(());
    };
    let options = ferry_controller::ControllerOptions::reader(
        kubeconfig.to_path_buf(),
        args.source.context.clone(),
        None,
    );
    let automation = ferry_core::ObjectKey::new(
        ferry_core::Kind::ImageUpdateAutomation,
        automation.namespace(),
        automation.name(),
    );
    for key in [policy.repository_key(), automation] {
        let at = ferry_controller::request_reconcile(&options, &key)
            .await
            .map_err(CliError::failed)?;
        eprintln!("requested a reconcile of {key} in the cluster (requestedAt {at})");
    }
    Ok(())
}

/// Runs the automation that writes the target stage's policy now, so Git points at the new tag
/// at once. A failure here is a warning: the promotion itself is complete and the daemon catches
/// up. Only that policy is evaluated (the automation writes the stored values of the others it
/// selects), so another app's state is neither re-evaluated nor reported.
async fn reconcile_target(engine: &Engine, objects: &ObjectSet, report: &PromoteReport) {
    let Some(stage) = ferry_engine::promote::AppPipeline::resolve(objects, &report.app)
        .ok()
        .and_then(|p| p.stages.into_iter().find(|s| s.name == report.to))
    else {
        return;
    };
    let Some(policy) = objects.image_policy(&stage.namespace, &stage.policy) else {
        return;
    };
    let Some(automation) = ferry_engine::automations_for(objects, policy)
        .first()
        .copied()
    else {
        return;
    };
    let subset = ObjectSet {
        image_repositories: objects.repository_of(policy).cloned().into_iter().collect(),
        image_policies: vec![policy.clone()],
        image_update_automations: vec![automation.clone()],
        git_repositories: objects.git_repositories.clone(),
        namespaces: objects.namespaces.clone(),
        pipelines: Vec::new(),
        origins: objects.origins.clone(),
    };
    match engine
        .reconcile(&subset, &AutomationOptions::default())
        .await
    {
        Ok(run) => {
            output::print_pushes(&run, false);
            output::print_failures(&run, "warning:");
        }
        Err(e) => eprintln!("warning: running the {} automation failed: {e}", report.to),
    }
}

pub async fn approve(state: &Path, args: ApproveArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source, true).await?;
    let req = ApproveRequest {
        app: args.app.clone(),
        env: args.env.clone(),
        tag: args.tag.clone(),
        by: args.by.clone(),
    };
    let r = promote::approve(&p.engine, &p.objects, p.fallback.as_ref(), &req)
        .await
        .map_err(cli_error)?;
    match &r.commit {
        Some(sha) => println!(
            "approved {} {} for {} by {}: {} committed as {}",
            args.app,
            args.tag,
            args.env,
            args.by,
            r.path,
            &sha[..sha.len().min(12)]
        ),
        None => println!(
            "{} {} was already approved for {} ({})",
            args.app, args.tag, args.env, r.path
        ),
    }
    Ok(Status::Ok)
}

pub async fn version(state: &Path, args: VersionArgs) -> Result<Status, CliError> {
    let output = if args.json {
        OutputFormat::Json
    } else {
        args.output
    };
    let Some(app) = &args.app else {
        if args.next {
            return Err(CliError::bad_input(anyhow!("--next needs an APP")));
        }
        return crate::cmd_meta::own_version(output);
    };
    let p = prepare(state, &args.source, true).await?;
    let r = promote::version(&p.engine, &p.objects, p.fallback.as_ref(), app)
        .await
        .map_err(cli_error)?;
    if args.next {
        println!("{}", r.next);
    } else if output != OutputFormat::Table {
        print_json(&r, output)?;
    } else {
        println!("app:     {}", r.app);
        println!(
            "current: {}",
            r.current.as_deref().unwrap_or("none (never released)")
        );
        println!("next:    {}", r.next);
    }
    Ok(Status::Ok)
}
