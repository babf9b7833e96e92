//! Command-line definitions (clap). No behaviour lives here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Ferry: promote one immutable container image from develop to staging to production through
/// Git, reading the Flux image-automation objects you already have.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, propagate_version = true, about, long_about = None)]
#[command(
    after_help = "EXIT STATUS:\n  0  success (reconcile: nothing to do)\n  1  an object or operation failed (the others were still processed)\n  2  bad input: invalid flags, objects, variables or files; nothing was written\n  3  reconcile: changes were committed and pushed (or, with --dry-run, would be)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// State database (SQLite). Default: $XDG_STATE_HOME/ferry/state.db.
    #[arg(long, global = true, env = "FERRY_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Increase log verbosity (-v info, -vv debug, -vvv trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the Flux objects come from.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Directory tree holding the Flux YAML objects.
    #[arg(long, value_name = "DIR", conflicts_with = "repo")]
    pub dir: Option<PathBuf>,
    /// Git repository holding the Flux YAML objects (any URL git understands).
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// Branch of --repo to read.
    #[arg(
        long = "ref",
        value_name = "BRANCH",
        requires = "repo",
        default_value = "main"
    )]
    pub git_ref: String,
    /// Sub-directory of --repo (or --dir) to read: with Flux Kustomizations, the cluster folder
    /// whose Kustomizations are rendered (their spec.path stays relative to the repository
    /// root), e.g. clusters/staging.
    #[arg(long, value_name = "SUBDIR")]
    pub path: Option<PathBuf>,
    /// Credentials for --repo: a Secret in --secrets-dir with Flux GitRepository keys
    /// (username/password, bearerToken, identity + known_hosts, ca.crt).
    #[arg(long, value_name = "NAMESPACE/NAME", requires_all = ["repo", "secrets_dir"])]
    pub repo_secret: Option<String>,
    /// Kubernetes-Secret-like tree: DIR/<namespace>/<secret-name>/<key>.
    #[arg(long, value_name = "DIR", env = "FERRY_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Substitute ${KEY} in the objects (Flux postBuild style). Repeatable. Each Flux
    /// Kustomization substitutes its own spec.postBuild values; these win over them and stand in
    /// for substituteFrom ConfigMaps/Secrets that are not in Git.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// File of KEY=VALUE lines (or a YAML/JSON map) for ${KEY} substitution.
    #[arg(long, value_name = "FILE")]
    pub vars_file: Vec<PathBuf>,
    /// Directory for the persistent clone cache. Default: $XDG_CACHE_HOME/ferry/git.
    #[arg(long, value_name = "DIR", env = "FERRY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// URL of the GitRepository flux-system/flux-system when the source does not define it
    /// (`flux bootstrap` creates it in the cluster, outside Git).
    #[arg(long, value_name = "URL")]
    pub git_url: Option<String>,
    /// Branch of the --git-url GitRepository.
    #[arg(
        long,
        value_name = "BRANCH",
        default_value = "main",
        requires = "git_url"
    )]
    pub git_branch: String,
    /// A Kubernetes cluster (kubeconfig file). With neither --dir nor --repo, the Flux objects
    /// are read from it, as `ferry controller` (or Flux) sees them, with the Secrets they
    /// reference. Commands that compare Git with what runs (verify, status, promote's gate,
    /// rollback --to-live, get images) also read its workloads or status.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (with --kubeconfig).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// kustomize binary used to build Flux Kustomizations (`kubectl` works too). Default:
    /// `kustomize` on PATH, else `kubectl kustomize`.
    #[arg(long, value_name = "PATH", env = "FERRY_KUSTOMIZE")]
    pub kustomize: Option<PathBuf>,
    /// Tries per registry request, the first included: 408, 429, 5xx and connections broken
    /// before the answer is complete are retried with backoff. Each ImageRepository's
    /// spec.timeout bounds a whole scan, retries included.
    #[arg(long, value_name = "N", env = "FERRY_REGISTRY_ATTEMPTS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub registry_attempts: u32,
    /// Delay before the first registry retry; it doubles per retry (at most 5s), plus jitter.
    #[arg(long, value_name = "DURATION", env = "FERRY_REGISTRY_BACKOFF", default_value = "200ms",
          value_parser = parse_duration)]
    pub registry_backoff: Duration,
    /// Longest registry Retry-After honoured; a longer one is cut to this.
    #[arg(long, value_name = "DURATION", env = "FERRY_REGISTRY_RETRY_AFTER_MAX",
          default_value = "30s", value_parser = parse_duration)]
    pub registry_retry_after_max: Duration,
}

/// Go-style durations (`1m`, `30s`, `250ms`, `1h30m`), the syntax of Flux intervals.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    ferry_api::parse_go_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan image repositories and evaluate image policies; store the results.
    Scan(ScanArgs),
    /// Show stored objects, like `flux get images`.
    Get(GetArgs),
    /// Scan, evaluate policies, then write setters, commit and push for every automation.
    Reconcile(ReconcileArgs),
    /// Work with setter markers offline.
    #[command(subcommand)]
    Setters(SettersCommand),
    /// Scaffold the seed's GitOps layout (Flux objects, setter-marked manifests).
    Init(crate::cmd_init::InitArgs),
    /// Print the image-automation objects Ferry sees, and the Flux Kustomization each came from.
    #[command(long_about = RENDER_ABOUT)]
    Render(RenderArgs),
    /// Add env, immutable and commit tags to a pushed image, server-side (no rebuild).
    Publish(crate::cmd_promote::PublishArgs),
    /// Promote an app's tested image to the next environment by digest.
    Promote(crate::cmd_promote::PromoteArgs),
    /// Record a manual approval for a promotion, in Git.
    Approve(crate::cmd_promote::ApproveArgs),
    /// Print Ferry's own version and build (no APP), or an app's current and next version.
    Version(crate::cmd_promote::VersionArgs),
    /// Roll an environment back and hold it there (automation will not undo it).
    Rollback(crate::cmd_rollback::RollbackArgs),
    /// Hold an environment's app at its current version.
    Hold(crate::cmd_rollback::HoldArgs),
    /// Lift a hold.
    Unhold(crate::cmd_rollback::UnholdArgs),
    /// The timeline of an app in an environment, read from Git.
    History(crate::cmd_rollback::HistoryArgs),
    /// Apps × environments: the tag in Git, its digest, holds, what is promotable.
    Status(crate::cmd_rollback::StatusArgs),
    /// Delivery metrics computed from Git evidence.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Run as a daemon: intervals, registry/git webhooks, metrics, health.
    Serve(crate::cmd_serve::ServeArgs),
    /// Run in a cluster in place of Flux's image-reflector and image-automation controllers:
    /// watch ImageRepository, ImagePolicy and ImageUpdateAutomation objects and write their
    /// status as Flux does (so `flux get images` shows Ferry's work).
    Controller(crate::cmd_controller::ControllerArgs),
    /// Compare, per app and environment, the image Git wants, the image the cluster's workloads
    /// run and the registry's digest: in-sync, pending, drift or missing (exit 1 unless all are
    /// in sync).
    Verify(crate::cmd_rollback::VerifyArgs),
    /// Print the manifests that install Ferry's controller (CRDs, ServiceAccount, RBAC,
    /// Deployment) for `ferry install | kubectl apply -f -`.
    #[command(
        long_about = crate::cmd_install::LONG_ABOUT,
        after_help = crate::cmd_install::EXAMPLES
    )]
    Install(crate::cmd_install::InstallArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(crate::cmd_meta::CompletionsArgs),
    /// Print the ferry(1) man page (roff) to stdout.
    Man,
    /// Work with OCI image layouts (Ferry's own container image, see scripts/image.sh).
    #[command(subcommand)]
    Image(crate::cmd_meta::ImageCommand),
}

const RENDER_ABOUT: &str =
    "Print the image-automation objects Ferry sees (ImageRepository, ImagePolicy, \
ImageUpdateAutomation, GitRepository), each with the Flux Kustomization it came from.

With Flux Kustomizations (kustomize.toolkit.fluxcd.io) in the tree, objects are what Flux would \
create: each Kustomization is built with kustomize (its path, components, patches, \
targetNamespace; Flux's generated kustomization.yaml for a folder without one), then \
substituted with its own postBuild variables; Kustomizations produced by a render are rendered \
in turn. Files that no Kustomization includes are not objects. Without any Flux Kustomization, \
every YAML file is read as objects and the origin is \"(plain file)\".

Order: kind, namespace, name. Problems are printed on stderr, one per object; exit 1 when any.

Examples:
  ferry render --dir .
  ferry render --repo https://git.example/gitops.git --path clusters/staging -o json";

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = RenderFormat::Table)]
    pub output: RenderFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RenderFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Run once and exit (the default for this command; `ferry serve` runs continuously).
    #[arg(long)]
    pub once: bool,
    /// Show the diffs that would be committed; push nothing and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(subcommand)]
    pub what: GetWhat,
}

#[derive(Debug, Subcommand)]
pub enum GetWhat {
    /// Image commands.
    Images(GetImagesArgs),
}

#[derive(Debug, Args)]
pub struct GetImagesArgs {
    /// Which kind: all, repository, policy or update.
    #[arg(value_enum)]
    pub kind: ImagesKind,
    /// All namespaces.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only this namespace.
    #[arg(short, long, default_value = "flux-system")]
    pub namespace: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Omit the header row.
    #[arg(long)]
    pub no_header: bool,
    /// Scan first (registries, and holds from the write-back repositories in Git), then show.
    /// Without it the command reads the stored state only and touches no network.
    #[arg(long)]
    pub refresh: bool,
    /// Where the objects come from (with --refresh). With --kubeconfig (and no --refresh), the
    /// objects' status is read from that cluster instead of the local state, as `flux get
    /// images` does: what `ferry controller` (or Flux) last wrote.
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImagesKind {
    All,
    #[value(alias = "repositories")]
    Repository,
    #[value(alias = "policies")]
    Policy,
    #[value(alias = "updates")]
    Update,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// DORA figures per app from Git alone: lead time (build `{ts}` → production commit),
    /// deployment frequency, change-failure rate (rollbacks ÷ deployments), time to restore
    /// (rollback → next good change). See docs/metrics.md.
    Dora(crate::cmd_rollback::DoraArgs),
}

#[derive(Debug, Subcommand)]
pub enum SettersCommand {
    /// Apply policy values to setter markers in a directory tree, without Git or a registry.
    Apply(SettersApplyArgs),
}

#[derive(Debug, Args)]
pub struct SettersApplyArgs {
    /// Directory (or single file) to update.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// A policy value: NS:NAME=IMAGE:TAG[@DIGEST]. Repeatable.
    #[arg(
        long = "set",
        value_name = "NS:NAME=IMAGE:TAG[@DIGEST]",
        required = true
    )]
    pub set: Vec<String>,
    /// Print a unified diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the change list.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}
