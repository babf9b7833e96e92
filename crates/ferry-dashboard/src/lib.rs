//! ferry-dashboard: the web dashboard of `ferry serve --ui` and `ferry controller --ui`, under
//! `/ui` on the driver's `--listen` address.
//!
//! Owns: the HTTP views and actions of the dashboard. Server-rendered HTML (readable without
//! JavaScript); one embedded script for live updates over server-sent events (`/ui/events`, one
//! `pass` event per finished reconcile pass). Assets are compiled into the binary. Reads come
//! from the same engine calls as `ferry status` and `ferry history`; actions call the same
//! library functions as `ferry promote`, `rollback`, `hold`, `unhold` and `approve`, after a
//! confirmation page showing the `--dry-run` preview.
//! Must not: schedule passes, parse command-line arguments, or read clusters itself. The driver
//! fills a [`Driver`]: the engine, the objects of the last pass, the pass count, a "run a pass
//! now" callback and, when it knows a cluster, the drift of each app × environment.
//!
//! Security (docs/dashboard.md): a bearer token from `--ui-token-file` (`Authorization: Bearer`,
//! or the HttpOnly cookie `/ui/login` sets); the token's name is recorded as `--by`. Every form
//! carries a CSRF token (an HMAC of the token's name under a key made at start); an action
//! without it is refused before anything is read or written. Without a token: 401, unless
//! `--ui-read-only-open` leaves the read views open.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use ferry_api::ObjectSet;
use ferry_engine::Engine;
use ferry_engine::promote::GateResult;
use ferry_engine::rollback::{HistoryRow, StatusReport};
use ferry_hooks::{Secret, ct_eq};
use tokio::sync::watch;

mod actions;
mod html;

use actions::ActionForm;

const CSS: &str = include_str!("ui.css");
const JS: &str = include_str!("ui.js");
const COOKIE: &str = "ferry_ui";

/// Why `--ui-token-file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("--ui-token-file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--ui-token-file {} line {line}: expected NAME:TOKEN", path.display())]
    Line { path: PathBuf, line: usize },
    #[error("--ui-token-file {}: no NAME:TOKEN line", path.display())]
    Empty { path: PathBuf },
}

/// Tokens (`name` → `token`) from `--ui-token-file`: one `NAME:TOKEN` per line, `#` comments.
#[derive(Clone, Default)]
pub struct Tokens(Vec<(String, Secret)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let pair = line
                .split_once(':')
                .filter(|(n, t)| !n.trim().is_empty() && !t.trim().is_empty())
                .and_then(|(n, t)| Some((n, Secret::from_file_contents(t.as_bytes())?)));
            let Some((name, secret)) = pair else {
                return Err(TokensError::Line {
                    path: path.to_path_buf(),
                    line: i + 1,
                });
            };
            out.push((name.trim().to_string(), secret));
        }
        if out.is_empty() {
            return Err(TokensError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Tokens(out))
    }

    /// The name of the token presented, if it is one of ours.
    fn who(&self, presented: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(_, s)| s.matches(presented.trim().as_bytes()))
            .map(|(n, _)| n.clone())
    }
}

/// What the driver (`ferry serve`, `ferry controller`) gives the dashboard.
#[derive(Clone)]
pub struct Driver {
    pub engine: Arc<Engine>,
    /// The objects of the last pass (`None` before the first).
    pub objects: watch::Receiver<Option<Arc<ObjectSet>>>,
    /// Finished passes: each change is a `pass` event, and the pipeline is recomputed.
    pub passes: watch::Receiver<u64>,
    /// Git changed (an action wrote): reload the objects and run a pass now.
    pub run_now: Arc<dyn Fn() + Send + Sync>,
    /// The last drift check, when the driver knows a cluster (`None`: drift is unknown).
    pub drift: Option<watch::Receiver<Arc<DriftView>>>,
}

/// Drift of one app × environment: Git's tag compared with what the live workloads run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The live workloads run Git's tag.
    InSync,
    /// Git changed and the cluster has not applied it yet.
    Pending { git_tag: String },
    /// The live workloads run another tag than Git's.
    Drifted { live_tag: String, git_tag: String },
    /// No live workload runs the app's image.
    Missing,
}

/// The drift of each `(app, env)` the last check could judge.
pub type DriftView = BTreeMap<(String, String), Drift>;

/// Who may do what: the tokens, and whether reading needs one.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub tokens: Tokens,
    /// `--ui-read-only-open`: anyone may read; actions still need a token.
    pub read_open: bool,
}

/// Everything the dashboard's handlers share.
struct Ui {
    driver: Driver,
    access: Access,
    /// Key of the CSRF tokens, random per start.
    csrf_key: Secret,
    /// The pipeline's data as of a pass count: computed once per pass, whoever asks.
    cache: tokio::sync::Mutex<Option<(u64, Arc<PipelineData>)>>,
}

/// What the pipeline page shows: `ferry status` plus each cell's last history row.
struct PipelineData {
    report: Result<StatusReport, String>,
    last: BTreeMap<(String, String), HistoryRow>,
    /// `ferry metrics dora` over the last 30 days (each app's last stage).
    dora: Option<ferry_engine::dora::DoraReport>,
    /// (app, stage) pairs whose stage has an approval gate.
    approvals: std::collections::BTreeSet<(String, String)>,
    /// (app, stage): the gates of the next promotion to that stage, from its `--dry-run`.
    gates: BTreeMap<(String, String), Result<Vec<GateResult>, String>>,
}

/// The dashboard's routes (`/ui`, `/ui/...`), to merge into the driver's router.
pub fn router(driver: Driver, access: Access) -> Router {
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    let ui = Ui {
        driver,
        access,
        csrf_key: Secret::from_file_contents(hex::encode(key).as_bytes())
            .expect("64 hex characters are never empty"),
        cache: Default::default(),
    };
    routes(Arc::new(ui))
}

fn routes(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/ui", get(pipeline_page))
        .route("/ui/", get(pipeline_page))
        .route("/ui/history/{app}/{env}", get(history_page))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/confirm", post(confirm))
        .route("/ui/run", post(run))
        .route("/ui/events", get(events))
        .route(
            "/ui/static/ui.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        )
        .route(
            "/ui/static/ui.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JS) }),
        )
        .with_state(ui)
}

impl Ui {
    /// The token's name, from `Authorization: Bearer` or the login cookie.
    fn user(&self, headers: &HeaderMap) -> Option<String> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim()
                    .strip_prefix(&format!("{COOKIE}="))
                    .map(str::to_string)
            });
        bearer
            .map(str::to_string)
            .or(cookie)
            .and_then(|t| self.access.tokens.who(&t))
    }

    fn csrf(&self, user: &str) -> String {
        self.csrf_key.signature_hex(user.as_bytes())
    }

    fn objects(&self) -> Option<Arc<ObjectSet>> {
        self.driver.objects.borrow().clone()
    }

    /// What a read view needs: the reader and the objects, or the response that refuses it
    /// (401 without access, 503 before the first pass).
    // The error is the response itself: handlers return it as is, once per request.
    #[allow(clippy::result_large_err)]
    fn read_view(&self, headers: &HeaderMap) -> Result<(Option<String>, Arc<ObjectSet>), Response> {
        let user = self.reader(headers).map_err(IntoResponse::into_response)?;
        let objects = self.objects().ok_or_else(|| {
            (StatusCode::SERVICE_UNAVAILABLE, "objects not loaded yet\n").into_response()
        })?;
        Ok((user, objects))
    }

    /// Read access: the user's name (`None` when anonymous reading is open), or a 401.
    fn reader(&self, headers: &HeaderMap) -> Result<Option<String>, Refused> {
        match self.user(headers) {
            Some(u) => Ok(Some(u)),
            None if self.access.read_open => Ok(None),
            None => Err(Refused::Token),
        }
    }
}

/// Why a request was refused.
enum Refused {
    /// No valid token: 401.
    Token,
    /// A valid token (this user's) but no valid CSRF token: 403.
    Csrf(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Token => unauthorized(),
            Refused::Csrf(user) => (
                StatusCode::FORBIDDEN,
                Html(html::page(
                    "Refused",
                    Some(&user),
                    "<p class=\"error\">403: missing or wrong CSRF token; nothing was written.</p>",
                )),
            )
                .into_response(),
        }
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Html(html::page(
            "Unauthorized",
            None,
            "<p class=\"error\">401: a token is needed. <a href=\"/ui/login\">Log in</a>.</p>",
        )),
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize, Default)]
struct Fragment {
    #[serde(default)]
    fragment: Option<String>,
}

async fn pipeline_page(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<Fragment>,
) -> Response {
    let (user, objects) = match ui.read_view(&headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let data = pipeline_data(&ui, &objects).await;
    let body = match &data.report {
        Ok(_) => {
            let csrf = user.as_deref().map(|u| ui.csrf(u));
            let drift = ui.driver.drift.as_ref().map(|d| d.borrow().clone());
            html::pipeline(&data, drift.as_deref(), csrf.as_deref())
        }
        Err(e) => format!("<p class=\"error\">{}</p>", html::esc(e)),
    };
    respond(q, "Pipeline", user.as_deref(), body)
}

/// The pipeline's data for the current pass (computed by the first reader after each pass).
async fn pipeline_data(ui: &Ui, objects: &ObjectSet) -> Arc<PipelineData> {
    let pass = *ui.driver.passes.borrow();
    let mut cache = ui.cache.lock().await;
    if let Some((n, data)) = cache.as_ref()
        && *n == pass
    {
        return data.clone();
    }
    let mut last = BTreeMap::new();
    let report = ui
        .driver
        .engine
        .status(objects, None)
        .await
        .map_err(|e| e.to_string());
    for a in report.iter().flat_map(|r| &r.apps) {
        for c in &a.envs {
            if let Ok(rows) = ui
                .driver
                .engine
                .history_from_git(objects, &c.env, &a.app, None)
                .await
                && let Some(r) = rows.into_iter().last()
            {
                last.insert((a.app.clone(), c.env.clone()), r);
            }
        }
    }
    let req = ferry_engine::dora::DoraRequest {
        since: std::time::Duration::from_secs(30 * 86_400),
        end: ferry_engine::dora::unix_now(),
        ..Default::default()
    };
    let dora = ui.driver.engine.dora(objects, &req).await.ok();
    let approvals = report
        .iter()
        .flat_map(|r| &r.apps)
        .filter_map(|a| ferry_engine::promote::AppPipeline::resolve(objects, &a.app).ok())
        .flat_map(|p| {
            let app = p.app.clone();
            p.stages
                .into_iter()
                .filter(|s| s.approval)
                .map(move |s| (app.clone(), s.name))
        })
        .collect();
    let gates = next_gates(&ui.driver.engine, objects, &report).await;
    let data = Arc::new(PipelineData {
        report,
        last,
        dora,
        approvals,
        gates,
    });
    *cache = Some((pass, data.clone()));
    data
}

/// Per app and stage after the first: the gates the next promotion would pass, from the same
/// `--dry-run` as `ferry promote APP --to STAGE --dry-run` (nothing is written).
async fn next_gates(
    engine: &Engine,
    objects: &ObjectSet,
    report: &Result<StatusReport, String>,
) -> BTreeMap<(String, String), Result<Vec<GateResult>, String>> {
    let mut out = BTreeMap::new();
    for a in report.iter().flat_map(|r| &r.apps) {
        for next in a.envs.iter().skip(1) {
            let req = actions::promote_request(&a.app, &next.env, None, "dashboard", true);
            let r = ferry_engine::promote::promote(engine, objects, None, &req)
                .await
                .map(|r| r.gates)
                .map_err(|e| e.to_string());
            out.insert((a.app.clone(), next.env.clone()), r);
        }
    }
    out
}

async fn history_page(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    UrlPath((app, env)): UrlPath<(String, String)>,
    Query(q): Query<Fragment>,
) -> Response {
    let (user, objects) = match ui.read_view(&headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = match ui
        .driver
        .engine
        .history_from_git(&objects, &env, &app, None)
        .await
    {
        Ok(rows) => {
            let links: Vec<Option<String>> = rows
                .iter()
                .map(|r| {
                    ui.driver
                        .engine
                        .commit_link(&objects, &env, &app, &r.commit)
                })
                .collect();
            html::history(&app, &env, &rows, &links)
        }
        Err(e) if e.is_invalid() => {
            return (StatusCode::NOT_FOUND, html::esc(&e.to_string())).into_response();
        }
        Err(e) => format!("<p class=\"error\">{}</p>", html::esc(&e.to_string())),
    };
    respond(
        q,
        &format!("History of {app} in {env}"),
        user.as_deref(),
        body,
    )
}

/// The whole page, or only its live part (`?fragment=1`, for the live-update script).
fn respond(q: Fragment, title: &str, user: Option<&str>, body: String) -> Response {
    let live = format!("<div id=\"live\">{body}</div>");
    if q.fragment.is_some() {
        return Html(body).into_response();
    }
    Html(html::page(title, user, &live)).into_response()
}

async fn login_page() -> Html<String> {
    Html(html::page("Log in", None, html::LOGIN))
}

#[derive(Debug, serde::Deserialize)]
struct Login {
    token: String,
}

async fn login(State(ui): State<Arc<Ui>>, Form(f): Form<Login>) -> Response {
    if ui.access.tokens.who(&f.token).is_none() {
        return unauthorized();
    }
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/ui",
        f.token.trim()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui".to_string()),
        ],
    )
        .into_response()
}

/// Checks the token and the CSRF token; the user's name, or the refusal.
fn actor(ui: &Ui, headers: &HeaderMap, form: &ActionForm) -> Result<String, Refused> {
    let Some(user) = ui.user(headers) else {
        return Err(Refused::Token);
    };
    if form.csrf.is_empty() || !ct_eq(form.csrf.as_bytes(), ui.csrf(&user).as_bytes()) {
        return Err(Refused::Csrf(user));
    }
    Ok(user)
}

async fn confirm(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    let user = match actor(&ui, &headers, &f) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let Some(objects) = ui.objects() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "objects not loaded yet\n").into_response();
    };
    let preview = actions::execute(&ui.driver.engine, &objects, &f, &user, true).await;
    let body = html::confirm(&f, &ui.csrf(&user), &preview);
    Html(html::page("Confirm", Some(&user), &body)).into_response()
}

async fn run(State(ui): State<Arc<Ui>>, headers: HeaderMap, Form(f): Form<ActionForm>) -> Response {
    let user = match actor(&ui, &headers, &f) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let Some(objects) = ui.objects() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "objects not loaded yet\n").into_response();
    };
    let result = actions::execute(&ui.driver.engine, &objects, &f, &user, false).await;
    // What the pipeline showed is stale now.
    *ui.cache.lock().await = None;
    // Git changed: reload the objects and run the automations now (the promoted environment's
    // automation writes the new tag, as `ferry promote` runs it right away).
    (ui.driver.run_now)();
    let status = if result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        Html(html::page(
            "Done",
            Some(&user),
            &html::result(&f.action, &result),
        )),
    )
        .into_response()
}

/// Server-sent events: `pass` after each reconcile pass (data: the pass count).
async fn events(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    if let Err(r) = ui.reader(&headers) {
        return r.into_response();
    }
    let passes = ui.driver.passes.clone();
    let stream = futures::stream::unfold(passes, |mut rx| async move {
        rx.changed().await.ok()?;
        let n = *rx.borrow_and_update();
        Some((
            Ok::<_, Infallible>(SseEvent::default().event("pass").data(n.to_string())),
            rx,
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
