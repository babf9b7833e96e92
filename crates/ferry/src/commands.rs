//! One function per subcommand: build inputs, call the engine, print.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use ferry_api::Vars;
use ferry_engine::{AutomationOptions, Engine, EngineConfig, ObjectSource, RunReport, SecretsDir};
use ferry_setters::{ImageRef, PolicyValues, WriteMode};
use ferry_store::Store;

use crate::cli::{
    GetArgs, GetWhat, ReconcileArgs, ScanArgs, SettersApplyArgs, SettersCommand, SourceArgs,
};
use crate::{CliError, Status, cache_path, output};

struct Prepared {
    engine: Engine,
    objects: ferry_api::ObjectSet,
    /// An object the command needs failed to load (reported on stderr): exit 1 at the end.
    load_failed: bool,
    _objects: CommandObjects,
}

/// What a command needs from the source, to decide which load problems are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `scan`: ImageRepository, ImagePolicy, Namespace.
    Scan,
    /// `reconcile`, `render`: every object.
    All,
}

impl Needs {
    fn needs(self, e: &ferry_api::LoadError) -> bool {
        match (self, &e.object) {
            (Needs::All, _) | (_, None) => true,
            (Needs::Scan, Some(o)) => matches!(
                o.kind.as_str(),
                "ImageRepository" | "ImagePolicy" | "Namespace" | "Kustomization"
            ),
        }
    }
}

impl SourceArgs {
    /// `--var` and `--vars-file`.
    pub fn vars(&self) -> Result<Vars, CliError> {
        Vars::from_cli(&self.vars, &self.vars_file).map_err(CliError::bad_input)
    }

    /// Secrets, clone cache, kustomize.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            secrets: SecretsDir::new(self.secrets_dir.clone()),
            cache_dir: cache_path(self.cache_dir.clone()),
            kustomize: self.kustomize.clone(),
            no_cross_namespace_refs: false,
            registry: ferry_registry::ClientOptions {
                retry: ferry_registry::RetryPolicy {
                    max_attempts: self.registry_attempts,
                    base_delay: self.registry_backoff,
                    max_retry_after: self.registry_retry_after_max,
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    /// Credentials of `--repo` from `--repo-secret NAMESPACE/NAME`; none without it.
    pub fn repo_auth(&self) -> Result<ferry_git::GitAuth, CliError> {
        let Some(secret) = &self.repo_secret else {
            return Ok(ferry_git::GitAuth::none());
        };
        let (ns, name) = secret
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
            .ok_or_else(|| {
                CliError::bad_input(anyhow!("--repo-secret {secret:?}: expected NAMESPACE/NAME"))
            })?;
        Ok(SecretsDir::new(self.secrets_dir.clone()).git_auth(ns, Some(name), "--repo-secret")?)
    }

    /// `--repo URL` (with `--ref`, `--path`, `--repo-secret`) or `--dir DIR`; with neither, the
    /// current directory when `default_to_cwd`, else `None`.
    pub fn object_source(&self, default_to_cwd: bool) -> Result<Option<ObjectSource>, CliError> {
        Ok(match (&self.dir, &self.repo) {
            (_, Some(url)) => Some(ObjectSource::Repo {
                url: url.clone(),
                branch: self.git_ref.clone(),
                path: self.path.clone(),
                auth: self.repo_auth()?,
            }),
            (Some(dir), None) => Some(ObjectSource::Dir {
                dir: dir.clone(),
                path: self.path.clone(),
            }),
            (None, None) => default_to_cwd.then(|| ObjectSource::Dir {
                dir: ".".into(),
                path: self.path.clone(),
            }),
        })
    }

    /// Loads the objects of `object_source(default_to_cwd)`; an empty set when there is none.
    pub fn load(
        &self,
        config: &EngineConfig,
        default_to_cwd: bool,
    ) -> Result<ferry_api::ObjectSet, CliError> {
        let vars = self.vars()?;
        match self.object_source(default_to_cwd)? {
            Some(source) => Ok(ferry_engine::load_objects(config, &source, &vars)?),
            None => Ok(ferry_api::ObjectSet::default()),
        }
    }

    /// Loads per object: warnings and problems go to stderr. A problem in an object the command
    /// does not need is a warning. Problems in needed objects: with plain files (no Flux
    /// Kustomization) the command stops with exit 2 as before; with rendered Flux
    /// Kustomizations, as in Flux, the object is missing, the others proceed, and the second
    /// value is true (exit 1 at the end).
    pub fn load_per_object(
        &self,
        config: &EngineConfig,
        needs: Needs,
    ) -> Result<(ferry_api::ObjectSet, bool), CliError> {
        let vars = self.vars()?;
        let Some(source) = self.object_source(true)? else {
            return Ok((ferry_api::ObjectSet::default(), false));
        };
        let mut load = ferry_engine::load_source(config, &source, &vars)?;
        self.add_bootstrap_source(&mut load.loaded.set)?;
        for w in &load.warnings {
            eprintln!("warning: {w}");
        }
        for w in &load.loaded.warnings {
            eprintln!("warning: {w}");
        }
        let (needed, unneeded): (Vec<_>, Vec<_>) =
            load.loaded.errors.into_iter().partition(|e| needs.needs(e));
        for e in &unneeded {
            eprintln!("warning: {e} (not used by this command)");
        }
        if needed.is_empty() {
            return Ok((load.loaded.set, false));
        }
        if !load.rendered {
            return Err(CliError::bad_input(ferry_api::LoadErrors(needed)));
        }
        for e in &needed {
            eprintln!("error: {e}");
        }
        Ok((load.loaded.set, true))
    }
}

/// The objects a command works on, the engine settings to use with them and, when they came
/// from a cluster, the folder of the Secrets they reference (removed when this is dropped, so it
/// lives as long as the engine).
pub struct CommandObjects {
    pub set: ferry_api::ObjectSet,
    pub config: EngineConfig,
    /// An object the command needs failed to load (reported on stderr): exit 1 at the end.
    pub load_failed: bool,
    _cluster: Option<ferry_controller::ClusterObjects>,
}

impl CommandObjects {
    /// Moves the objects out (the Secrets folder stays with `self`).
    pub fn take_set(&mut self) -> ferry_api::ObjectSet {
        std::mem::take(&mut self.set)
    }
}

impl SourceArgs {
    /// The objects come from the cluster: `--kubeconfig` with neither `--dir` nor `--repo`.
    pub fn objects_from_cluster(&self) -> bool {
        self.kubeconfig.is_some() && self.dir.is_none() && self.repo.is_none()
    }

    /// Options for reading the `--kubeconfig` cluster, if any.
    pub fn cluster_reader(
        &self,
        namespace: Option<String>,
    ) -> Option<ferry_controller::ControllerOptions> {
        let kubeconfig = self.kubeconfig.clone()?;
        Some(ferry_controller::ControllerOptions::reader(
            kubeconfig,
            self.context.clone(),
            namespace,
        ))
    }

    /// The objects, from the cluster (see [`SourceArgs::objects_from_cluster`]) or from the files.
    /// With files, a problem in an object the command does not `need` is a warning, as in
    /// [`SourceArgs::load_per_object`]; `None` reads the objects whole (any problem is bad
    /// input). From a cluster, an object that cannot be read is reported and left out.
    pub async fn objects(
        &self,
        needs: Option<Needs>,
        default_to_cwd: bool,
    ) -> Result<CommandObjects, CliError> {
        let mut config = self.engine_config();
        let Some(options) = self
            .cluster_reader(None)
            .filter(|_| self.objects_from_cluster())
        else {
            let (set, load_failed) = match needs {
                Some(needs) => self.load_per_object(&config, needs)?,
                None => (self.load(&config, default_to_cwd)?, false),
            };
            return Ok(CommandObjects {
                set,
                config,
                load_failed,
                _cluster: None,
            });
        };
        let mut cluster = ferry_controller::cluster_objects(&options)
            .await
            .map_err(|e| {
                CliError::failed(anyhow!(
                    "cannot read the Flux objects from the cluster ({}): {e}",
                    options
                        .kubeconfig
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                ))
            })?;
        for (object, why) in &cluster.invalid {
            eprintln!("error: {object}: {why}");
        }
        if self.secrets_dir.is_none() {
            config.secrets = SecretsDir::mirrored_from_api(cluster.secrets_root().to_path_buf());
        }
        let mut set = std::mem::take(&mut cluster.objects);
        self.add_bootstrap_source(&mut set)?;
        Ok(CommandObjects {
            set,
            config,
            load_failed: !cluster.invalid.is_empty(),
            _cluster: Some(cluster),
        })
    }

    /// `--git-url`: the GitRepository flux-system/flux-system that `flux bootstrap` creates
    /// outside Git, unless the source defines it.
    fn add_bootstrap_source(&self, set: &mut ferry_api::ObjectSet) -> Result<(), CliError> {
        let Some(url) = &self.git_url else {
            return Ok(());
        };
        if set.git_repository("flux-system", "flux-system").is_some() {
            return Ok(());
        }
        let yaml = format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: {}\n  url: {}\n",
            serde_json::to_string(&self.git_branch).map_err(CliError::bad_input)?,
            serde_json::to_string(url).map_err(CliError::bad_input)?,
        );
        let extra =
            ferry_api::load_str("(--git-url)", &yaml, &Vars::new()).map_err(CliError::bad_input)?;
        set.git_repositories.extend(extra.git_repositories);
        Ok(())
    }
}

async fn prepare(state: &Path, source: &SourceArgs, needs: Needs) -> Result<Prepared, CliError> {
    let mut objects = source.objects(Some(needs), true).await?;
    let store = Store::open(state).map_err(CliError::failed)?;
    Ok(Prepared {
        engine: Engine::new(objects.config.clone(), store),
        objects: objects.take_set(),
        load_failed: objects.load_failed,
        _objects: objects,
    })
}

/// A spinner on stderr when it is a terminal and the work takes over a second.
fn progress(message: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

fn finish(bar: Option<indicatif::ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

pub async fn scan(state: &Path, args: ScanArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source, Needs::Scan).await?;
    let bar = progress("scanning image repositories");
    let report = p.engine.scan(&p.objects).await;
    finish(bar);
    let report = report?;
    p.engine.prune(&p.objects)?;
    output::print_summary(&report);
    Ok(if report.failed() || p.load_failed {
        Status::Failed
    } else {
        Status::Ok
    })
}

pub async fn reconcile(state: &Path, args: ReconcileArgs) -> Result<Status, CliError> {
    let p = prepare(state, &args.source, Needs::All).await?;
    let options = AutomationOptions {
        dry_run: args.dry_run,
        ..AutomationOptions::default()
    };
    let bar = progress("reconciling");
    let report = p.engine.reconcile(&p.objects, &options).await;
    finish(bar);
    let report: RunReport = report?;
    p.engine.prune(&p.objects)?;
    output::print_summary(&report);
    output::print_pushes(&report, args.dry_run);
    Ok(if report.failed() || p.load_failed {
        Status::Failed
    } else if report.changed() {
        Status::Changed
    } else {
        Status::Ok
    })
}

/// `ferry get images --kubeconfig`: the live status, printed by the same code as the state file.
async fn get_from_cluster(
    options: ferry_controller::ControllerOptions,
    args: &crate::cli::GetImagesArgs,
) -> Result<Status, CliError> {
    let namespace = options.namespace.clone();
    let records = ferry_controller::live_records(&options)
        .await
        .map_err(CliError::failed)?;
    let mut store = Store::in_memory().map_err(CliError::failed)?;
    for record in &records {
        store.put(record).map_err(CliError::failed)?;
    }
    output::print_images(
        &store,
        args.kind,
        namespace.as_deref(),
        args.output,
        args.no_header,
    )
    .map_err(CliError::failed)?;
    Ok(Status::Ok)
}

/// `ferry get images`: the stored state; with `--refresh`, after a scan (which contacts the
/// registries and reads holds from Git). A failed object of that scan makes the exit 1.
pub async fn get(state: &Path, args: GetArgs) -> Result<Status, CliError> {
    let GetWhat::Images(args) = args.what;
    let namespace = (!args.all_namespaces).then(|| args.namespace.clone());
    if let (Some(options), false) = (args.source.cluster_reader(namespace), args.refresh) {
        return get_from_cluster(options, &args).await;
    }
    let mut status = Status::Ok;
    if args.refresh {
        let p = prepare(state, &args.source, Needs::Scan).await?;
        let report = p.engine.scan(&p.objects).await?;
        p.engine.prune(&p.objects)?;
        if output::print_failures(&report, "✗") || p.load_failed {
            status = Status::Failed;
        }
    }
    if !state.exists() {
        return Err(CliError::failed(anyhow!(
            "no state at {}: run `ferry scan` (or `ferry reconcile`) first, or pass --state",
            state.display()
        )));
    }
    let store = Store::open(state).map_err(CliError::failed)?;
    let namespace = (!args.all_namespaces).then_some(args.namespace.as_str());
    output::print_images(&store, args.kind, namespace, args.output, args.no_header)
        .map_err(CliError::failed)?;
    Ok(status)
}

pub fn setters(cmd: SettersCommand) -> Result<Status, CliError> {
    let SettersCommand::Apply(args) = cmd;
    setters_apply(args)
}

/// Parses `NS:NAME=IMAGE:TAG[@DIGEST]`.
fn parse_set(arg: &str) -> anyhow::Result<(String, ImageRef)> {
    let (policy, image) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("--set {arg:?}: expected NS:NAME=IMAGE:TAG[@DIGEST]"))?;
    let (ns, name) = policy
        .split_once(':')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'))
        .ok_or_else(|| anyhow!("--set {arg:?}: policy must be NAMESPACE:NAME"))?;
    let image = ImageRef::parse(image).map_err(|e| anyhow!("--set {arg:?}: {e}"))?;
    let well_formed = |d: &str| {
        d.strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if image.digest.as_deref().is_some_and(|d| !well_formed(d)) {
        return Err(anyhow!("--set {arg:?}: digest must be sha256:<64 hex>"));
    }
    Ok((format!("{ns}:{name}"), image))
}

fn setters_apply(args: SettersApplyArgs) -> Result<Status, CliError> {
    let mut values = PolicyValues::new();
    for s in &args.set {
        let (k, v) = parse_set(s).map_err(CliError::bad_input)?;
        values.insert(k, v);
    }
    if !args.dir.exists() {
        return Err(CliError::bad_input(anyhow!(
            "--dir {}: no such file or directory",
            args.dir.display()
        )));
    }
    let mode = if args.dry_run {
        WriteMode::DryRun
    } else {
        WriteMode::Write
    };
    let tree = ferry_setters::apply_tree(&args.dir, &values, mode)
        .with_context(|| format!("applying setters under {}", args.dir.display()))
        .map_err(CliError::failed)?;
    for w in &tree.warnings {
        eprintln!("warning: {}:{}: {}", w.file, w.line, w.message);
    }
    output::print_setter_changes(&tree, args.output, args.dry_run);
    Ok(Status::Ok)
}

/// `ferry render`: the image-automation objects and the Flux Kustomization each came from.
pub fn render(args: crate::cli::RenderArgs) -> Result<Status, CliError> {
    let config = args.source.engine_config();
    let (objects, failed) = args.source.load_per_object(&config, Needs::All)?;
    output::print_render(&objects, args.output).map_err(CliError::failed)?;
    Ok(if failed { Status::Failed } else { Status::Ok })
}

#[cfg(test)]
mod tests {
    use super::parse_set;

    #[test]
    fn parse_set_handles_ports_and_digests() {
        let (k, v) = parse_set("staging:app=127.0.0.1:5000/org/app:v1.2.3").unwrap();
        assert_eq!(k, "staging:app");
        assert_eq!(v.name, "127.0.0.1:5000/org/app");
        assert_eq!(v.tag, "v1.2.3");
        let d = format!("sha256:{}", "a".repeat(64));
        let (_, v) = parse_set(&format!("ns:p=reg/app:1@{d}")).unwrap();
        assert_eq!(v.digest.as_deref(), Some(d.as_str()));
        assert!(parse_set("ns:p=reg:5000/app").is_err());
        assert!(parse_set("nsp=reg/app:1").is_err());
        assert!(parse_set("ns:p=reg/app:1@sha256:short").is_err());
    }
}
