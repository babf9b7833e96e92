//! The OCI distribution client: ping, Basic/Bearer auth, bounded retries, per-registry
//! concurrency limits, request statistics, and the tag/manifest/blob primitives.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;
use url::Url;

use crate::auth::Credentials;
use crate::error::{RegistryError, error_body_detail};
use crate::reference::{ImageName, is_digest};
use crate::tls::TlsMaterial;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Sent on manifest HEAD/GET: distribution answers 404 for an OCI manifest not listed here.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Manifests larger than this are refused (they are JSON documents; OCI suggests 4 MiB).
const MAX_MANIFEST_BYTES: usize = 8 << 20;
/// Page size for tag listing (ECR rejects more than 1000).
const TAG_PAGE_SIZE: u32 = 1000;
/// One tag-list page larger than this is refused (100,000 tags of 128 bytes fit in 16 MiB;
/// registries that ignore `n` send every tag in one page).
const MAX_TAG_PAGE_BYTES: usize = 64 << 20;
/// Bound on Link pages, so a misbehaving registry cannot loop us forever.
const MAX_TAG_PAGES: usize = 100_000;
/// Token lifetime when the token service omits `expires_in` (Docker token spec default).
const DEFAULT_TOKEN_SECONDS: u64 = 60;

/// Where and how to reach one repository.
#[derive(Clone, Debug)]
pub struct RepoAccess {
    pub image: ImageName,
    /// Allow plain HTTP (Flux `spec.insecure`).
    pub insecure: bool,
    pub credentials: Option<Credentials>,
    pub tls: TlsMaterial,
    /// Per-request timeout (Flux `spec.timeout`).
    pub timeout: Duration,
}

impl RepoAccess {
    /// Anonymous HTTPS access with a 30 s timeout.
    pub fn new(image: ImageName) -> Self {
        RepoAccess {
            image,
            insecure: false,
            credentials: None,
            tls: TlsMaterial::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The same settings for another repository of the same registry.
    pub fn for_image(&self, image: ImageName) -> Self {
        RepoAccess {
            image,
            ..self.clone()
        }
    }
}

/// Bounded retries with exponential backoff and jitter.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total tries per request, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the second try; doubles each time, with up to 50% random jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Upper bound on an honoured `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Up to +50% jitter, from the clock (no RNG needed for spreading retries).
        let jitter = exp.mul_f64(f64::from(nanos % 1000) / 2000.0);
        exp + jitter
    }
}

/// Client-wide settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// Requests in flight per registry host (response headers pending).
    pub max_concurrency_per_registry: usize,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            max_concurrency_per_registry: 8,
            user_agent: format!("ferry/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Counters over every HTTP exchange the client made (pings, token requests and retries
/// included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Requests sent (each retry counts).
    pub total: u64,
    /// Responses by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no HTTP response (refused, reset, TLS, timeout).
    pub transport_errors: u64,
    /// Retries performed (a subset of `total`).
    pub retries: u64,
    /// Requests to token services.
    pub token_requests: u64,
}

/// What a manifest HEAD reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// A manifest exactly as the registry served it.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// `sha256:` of `bytes`.
    pub digest: String,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("digest", &self.digest)
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Result of a cross-repository mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountOutcome {
    /// 201: the blob now exists in the target repository.
    Mounted,
    /// 202: the registry declined; the upload session it opened was cancelled.
    NotMounted,
}

/// How `copy_blob` got the blob into the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobCopy {
    AlreadyPresent,
    Mounted,
    Uploaded { bytes: u64 },
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Challenge {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone, Debug)]
struct Endpoint {
    /// `scheme://host[:port]`
    base: String,
    challenge: Challenge,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct EndpointKey {
    registry: String,
    insecure: bool,
    tls: TlsMaterial,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: Option<String>,
    /// sha256 of username:password, so the cache holds no plain secret as a key.
    identity: String,
    scopes: String,
}

struct CachedToken {
    token: String,
    expires: Instant,
}

/// Scopes for one request: resource (`repository:NAME`) → actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Scopes(BTreeMap<String, BTreeSet<String>>);

impl Scopes {
    fn repo(repository: &str, actions: &[&str]) -> Self {
        let mut s = Scopes::default();
        s.add(&format!("repository:{repository}"), actions.iter().copied());
        s
    }

    fn add<'a>(&mut self, resource: &str, actions: impl IntoIterator<Item = &'a str>) {
        let set = self.0.entry(resource.to_string()).or_default();
        set.extend(
            actions
                .into_iter()
                .filter(|a| !a.is_empty())
                .map(String::from),
        );
    }

    /// Merges `type:name:a,b` scope strings from a challenge.
    fn merge_challenge(&mut self, scope_param: &str) {
        for scope in scope_param.split(' ').filter(|s| !s.is_empty()) {
            if let Some((resource, actions)) = scope.rsplit_once(':') {
                self.add(resource, actions.split(','));
            }
        }
    }

    fn strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(resource, actions)| {
                let list: Vec<&str> = actions.iter().map(String::as_str).collect();
                format!("{resource}:{}", list.join(","))
            })
            .collect()
    }
}

enum ReqBody {
    Empty,
    Bytes(Vec<u8>),
    /// Single-use; a request with it is never retried.
    Stream(Mutex<Option<reqwest::Body>>),
}

struct Req<'a> {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: ReqBody,
    /// What the request is about, for error messages (e.g. `manifest demo/app:v1`).
    what: &'a str,
}

struct Inner {
    options: ClientOptions,
    http: Mutex<HashMap<TlsMaterial, reqwest::Client>>,
    endpoints: Mutex<HashMap<EndpointKey, Endpoint>>,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    stats: Mutex<RequestStats>,
}

/// A shared registry client. Cloning is cheap; clones share connections, tokens and stats.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl Default for RegistryClient {
    fn default() -> Self {
        Self::new(ClientOptions::default())
    }
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn authority(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

/// Parses `Scheme k="v", k2=v2` (one challenge; the first if several are sent).
/// Public for the fuzz targets and property tests only.
#[doc(hidden)]
pub fn parse_challenge(value: &str) -> Option<(String, HashMap<String, String>)> {
    let value = value.trim();
    let (scheme, mut rest) = match value.split_once(' ') {
        Some((s, r)) => (s, r),
        None => (value, ""),
    };
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    _ => out.push(c),
                }
            }
            (out, &quoted[end?..])
        } else {
            let stop = after.find(',').unwrap_or(after.len());
            (after[..stop].trim().to_string(), &after[stop..])
        };
        params.insert(key, val);
        rest = remaining;
    }
    Some((scheme.to_ascii_lowercase(), params))
}

fn challenge_from(headers: &HeaderMap) -> Option<(Challenge, Option<String>)> {
    let value = header_str(headers, header::WWW_AUTHENTICATE)?;
    let (scheme, params) = parse_challenge(value)?;
    match scheme.as_str() {
        "basic" => Some((Challenge::Basic, None)),
        "bearer" => {
            let realm = params.get("realm")?.clone();
            Some((
                Challenge::Bearer {
                    realm,
                    service: params.get("service").cloned(),
                },
                params.get("scope").cloned(),
            ))
        }
        _ => None,
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_str(headers, header::RETRY_AFTER)?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        408 | 429 | 499 | 500 | 502 | 503 | 504 | 522
    )
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn transport_error(e: &reqwest::Error, url: &Url, timeout: Duration) -> RegistryError {
    let url_s = url.to_string();
    let detail = error_chain(e);
    if e.is_timeout() {
        return RegistryError::Timeout {
            url: url_s,
            after: timeout,
        };
    }
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return RegistryError::Tls { url: url_s, detail };
    }
    if e.is_connect() {
        return RegistryError::Unreachable { url: url_s, detail };
    }
    RegistryError::Connection { url: url_s, detail }
}

/// Not retried: refused connections and TLS failures will not heal in milliseconds, and a
/// timeout already used the caller's whole budget.
fn retryable_transport(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Connection { .. })
}

impl RegistryClient {
    pub fn new(options: ClientOptions) -> Self {
        // reqwest is built without a crypto provider; ring is ours. Installing twice (another
        // client, or the embedding program already chose one) is fine: the first one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        RegistryClient {
            inner: Arc::new(Inner {
                options,
                http: Mutex::new(HashMap::new()),
                endpoints: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                limits: Mutex::new(HashMap::new()),
                stats: Mutex::new(RequestStats::default()),
            }),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> RequestStats {
        lock(&self.inner.stats).clone()
    }

    /// Forgets cached endpoints and tokens (credentials or certificates changed).
    pub fn clear_auth_cache(&self) {
        lock(&self.inner.endpoints).clear();
        lock(&self.inner.tokens).clear();
    }

    fn http(&self, tls: &TlsMaterial) -> Result<reqwest::Client, RegistryError> {
        if let Some(c) = lock(&self.inner.http).get(tls) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(self.inner.options.user_agent.clone())
            // Registries are reached directly: the test bed and Flux's proxySecretRef are the
            // only proxy sources, and neither applies here.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(ca) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| RegistryError::Config(format!("ca.crt is not a PEM bundle: {e}")))?;
            if certs.is_empty() {
                return Err(RegistryError::Config(
                    "ca.crt holds no PEM certificate".to_string(),
                ));
            }
            // Added to, not replacing, the system roots (Flux: WithSystemCertPool).
            builder = builder.tls_certs_merge(certs);
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert_pem, &tls.client_key_pem) {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                RegistryError::Config("tls.crt/tls.key are not a PEM certificate and key".into())
            })?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| RegistryError::Config(format!("cannot build HTTP client: {e}")))?;
        lock(&self.inner.http).insert(tls.clone(), client.clone());
        Ok(client)
    }

    fn limiter(&self, host: &str) -> Arc<Semaphore> {
        let mut limits = lock(&self.inner.limits);
        limits
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.options.max_concurrency_per_registry.max(1),
                ))
            })
            .clone()
    }

    fn count(&self, outcome: Result<u16, ()>, retry: bool, token: bool) {
        let mut s = lock(&self.inner.stats);
        s.total += 1;
        match outcome {
            Ok(status) => *s.by_status.entry(status).or_default() += 1,
            Err(()) => s.transport_errors += 1,
        }
        if retry {
            s.retries += 1;
        }
        if token {
            s.token_requests += 1;
        }
    }

    /// Sends with bounded retries on 408/429/5xx and broken connections. `make` returns
    /// `None` when the body cannot be sent again (then the last outcome is final).
    async fn send_retrying(
        &self,
        url: &Url,
        timeout: Duration,
        token_request: bool,
        mut make: impl FnMut() -> Option<reqwest::RequestBuilder>,
    ) -> Result<reqwest::Response, RegistryError> {
        let policy = &self.inner.options.retry;
        let max = policy.max_attempts.max(1);
        let limiter = self.limiter(&authority(url));
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let Some(builder) = make() else {
                return Err(RegistryError::Connection {
                    url: url.to_string(),
                    detail: "request body already consumed; not retried".into(),
                });
            };
            let outcome = {
                let _permit = limiter.acquire().await.map_err(|_| {
                    RegistryError::Config("registry concurrency limiter closed".into())
                })?;
                builder.timeout(timeout).send().await
            };
            match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    self.count(Ok(status.as_u16()), attempt > 1, token_request);
                    if !retryable_status(status) {
                        return Ok(resp);
                    }
                    let wait = retry_after(resp.headers());
                    if attempt >= max {
                        let body = resp.bytes().await.unwrap_or_default();
                        return Err(RegistryError::Server {
                            status: status.as_u16(),
                            url: url.to_string(),
                            attempts: attempt,
                            detail: error_body_detail(&body),
                        });
                    }
                    tracing::debug!(%url, status = status.as_u16(), attempt, "retrying");
                    drop(resp);
                    tokio::time::sleep(policy.delay(attempt - 1, wait)).await;
                }
                Err(e) => {
                    self.count(Err(()), attempt > 1, token_request);
                    let err = transport_error(&e, url, timeout);
                    if !retryable_transport(&err) || attempt >= max {
                        return Err(with_attempts(err, attempt));
                    }
                    tracing::debug!(%url, attempt, error = %err, "retrying");
                    tokio::time::sleep(policy.delay(attempt - 1, None)).await;
                }
            }
        }
    }

    /// Pings `/v2/` (https first, http too for local registries; http only when insecure) and
    /// records the auth challenge.
    async fn endpoint(&self, access: &RepoAccess) -> Result<Endpoint, RegistryError> {
        let key = EndpointKey {
            registry: access.image.registry().to_string(),
            insecure: access.insecure,
            tls: access.tls.clone(),
        };
        if let Some(ep) = lock(&self.inner.endpoints).get(&key) {
            return Ok(ep.clone());
        }
        let http = self.http(&access.tls)?;
        // `insecure: true` means plain HTTP: no TLS handshake to fail first. A local registry
        // without it is tried over https, then http, as GGCR does.
        let schemes: &[&str] = if access.insecure {
            &["http"]
        } else if access.image.scheme(false) == "http" {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut first_error: Option<RegistryError> = None;
        for scheme in schemes {
            let base = format!("{scheme}://{}", access.image.registry());
            let url = Url::parse(&format!("{base}/v2/")).map_err(|e| {
                RegistryError::Config(format!(
                    "registry {} gives no valid URL: {e}",
                    access.image.registry()
                ))
            })?;
            let result = self
                .send_retrying(&url, access.timeout, false, || Some(http.get(url.clone())))
                .await;
            let challenge = match result {
                Ok(resp) if resp.status() == StatusCode::OK => Some(Challenge::Anonymous),
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    match challenge_from(resp.headers()) {
                        Some((c, _)) => Some(c),
                        None => {
                            first_error.get_or_insert(RegistryError::InvalidResponse {
                                url: url.to_string(),
                                detail: "401 without a usable WWW-Authenticate header".into(),
                            });
                            None
                        }
                    }
                }
                Ok(resp) => {
                    first_error.get_or_insert(RegistryError::InvalidResponse {
                        url: url.to_string(),
                        detail: format!(
                            "HTTP {} from the /v2/ ping; is this an OCI registry?",
                            resp.status().as_u16()
                        ),
                    });
                    None
                }
                Err(e) => {
                    // A TLS failure is the most useful story when the http fallback fails too.
                    match &first_error {
                        None => first_error = Some(e),
                        Some(prev) if !matches!(prev, RegistryError::Tls { .. }) => {
                            first_error = Some(e)
                        }
                        _ => {}
                    }
                    None
                }
            };
            if let Some(challenge) = challenge {
                let ep = Endpoint { base, challenge };
                lock(&self.inner.endpoints).insert(key, ep.clone());
                return Ok(ep);
            }
        }
        Err(first_error.unwrap_or_else(|| RegistryError::Config("no scheme to try".into())))
    }

    fn set_challenge(&self, access: &RepoAccess, challenge: Challenge) {
        let key = EndpointKey {
            registry: access.image.registry().to_string(),
            insecure: access.insecure,
            tls: access.tls.clone(),
        };
        if let Some(ep) = lock(&self.inner.endpoints).get_mut(&key) {
            ep.challenge = challenge;
        }
    }

    fn basic_header(creds: &Credentials) -> String {
        let raw = format!("{}:{}", creds.username, creds.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn identity(creds: Option<&Credentials>) -> String {
        match creds {
            Some(c) => sha256_digest(format!("{}\0{}", c.username, c.password).as_bytes()),
            None => "anonymous".to_string(),
        }
    }

    /// A bearer token for `scopes`, from cache or the token service.
    async fn token(
        &self,
        access: &RepoAccess,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
        what: &str,
    ) -> Result<String, RegistryError> {
        let scope_list = scopes.strings();
        let key = TokenKey {
            realm: realm.to_string(),
            service: service.map(String::from),
            identity: Self::identity(access.credentials.as_ref()),
            scopes: scope_list.join(" "),
        };
        if let Some(t) = lock(&self.inner.tokens).get(&key)
            && t.expires > Instant::now()
        {
            return Ok(t.token.clone());
        }
        let mut url = Url::parse(realm).map_err(|e| RegistryError::InvalidResponse {
            url: access.image.registry().to_string(),
            detail: format!("token realm {realm:?} is not a URL: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in &scope_list {
                q.append_pair("scope", s);
            }
        }
        let http = self.http(&access.tls)?;
        let basic = access.credentials.as_ref().map(Self::basic_header);
        let resp = self
            .send_retrying(&url, access.timeout, true, || {
                let mut b = http.get(url.clone());
                if let Some(h) = &basic {
                    b = b.header(header::AUTHORIZATION, h);
                }
                Some(b)
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                status: status.as_u16(),
                what: what.to_string(),
                url: url.to_string(),
                detail: " (token service refused the credentials)".into(),
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&e, &url, access.timeout))?;
        if !status.is_success() {
            return Err(RegistryError::Rejected {
                status: status.as_u16(),
                url: url.to_string(),
                detail: format!(" (token request){}", error_body_detail(&body)),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::InvalidResponse {
                url: url.to_string(),
                detail: format!("token response is not JSON: {e}"),
            })?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: url.to_string(),
                detail: "token response has neither token nor access_token".into(),
            })?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(DEFAULT_TOKEN_SECONDS));
        // Renew a little early so a token does not expire between cache hit and use.
        let margin = (lifetime / 10).min(Duration::from_secs(5));
        lock(&self.inner.tokens).insert(
            key,
            CachedToken {
                token: token.clone(),
                expires: Instant::now() + lifetime - margin,
            },
        );
        Ok(token)
    }

    async fn authorization(
        &self,
        access: &RepoAccess,
        challenge: &Challenge,
        scopes: &Scopes,
        what: &str,
    ) -> Result<Option<String>, RegistryError> {
        match challenge {
            Challenge::Anonymous => Ok(None),
            Challenge::Basic => Ok(access.credentials.as_ref().map(Self::basic_header)),
            Challenge::Bearer { realm, service } => {
                let token = self
                    .token(access, realm, service.as_deref(), scopes, what)
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends an authenticated request: retries, and one re-challenge on 401 that may grow
    /// the token's scopes. Returns any non-retryable response; statuses are the caller's.
    async fn execute(
        &self,
        access: &RepoAccess,
        req: Req<'_>,
        mut scopes: Scopes,
    ) -> Result<reqwest::Response, RegistryError> {
        let http = self.http(&access.tls)?;
        let mut endpoint = self.endpoint(access).await?;
        // Credentials go only to the registry itself, never to a host a Link/Location names.
        let same_host = Url::parse(&endpoint.base)
            .map(|b| authority(&b) == authority(&req.url))
            .unwrap_or(false);
        let mut rechallenged = false;
        loop {
            let authz = if same_host {
                self.authorization(access, &endpoint.challenge, &scopes, req.what)
                    .await?
            } else {
                None
            };
            let resp = self
                .send_retrying(&req.url, access.timeout, false, || {
                    let body = match &req.body {
                        ReqBody::Empty => None,
                        ReqBody::Bytes(b) => Some(reqwest::Body::from(b.clone())),
                        ReqBody::Stream(cell) => Some(lock(cell).take()?),
                    };
                    let mut b = http
                        .request(req.method.clone(), req.url.clone())
                        .headers(req.headers.clone());
                    if let Some(h) = &authz {
                        b = b.header(header::AUTHORIZATION, h);
                    }
                    if let Some(body) = body {
                        b = b.body(body);
                    }
                    Some(b)
                })
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED || rechallenged || !same_host {
                return Ok(resp);
            }
            if matches!(req.body, ReqBody::Stream(_)) {
                return Ok(resp);
            }
            let Some((challenge, scope_param)) = challenge_from(resp.headers()) else {
                return Ok(resp);
            };
            rechallenged = true;
            if let Some(extra) = scope_param {
                scopes.merge_challenge(&extra);
            }
            if challenge == endpoint.challenge
                && matches!(challenge, Challenge::Basic | Challenge::Anonymous)
            {
                return Ok(resp);
            }
            endpoint.challenge = challenge.clone();
            self.set_challenge(access, challenge);
        }
    }

    fn url(&self, base: &str, path: &str) -> Result<Url, RegistryError> {
        Url::parse(&format!("{base}{path}"))
            .map_err(|e| RegistryError::Config(format!("cannot build URL from {base}{path}: {e}")))
    }

    async fn repo_url(&self, access: &RepoAccess, suffix: &str) -> Result<Url, RegistryError> {
        let ep = self.endpoint(access).await?;
        self.url(
            &ep.base,
            &format!("/v2/{}/{suffix}", access.image.repository()),
        )
    }

    /// Maps a non-success status to an error, reading the registry's error body.
    async fn status_error(&self, resp: reqwest::Response, what: &str) -> RegistryError {
        let status = resp.status().as_u16();
        let url = resp.url().to_string();
        let body = resp.bytes().await.unwrap_or_default();
        let detail = error_body_detail(&body);
        match status {
            401 | 403 => RegistryError::Unauthorized {
                status,
                what: what.to_string(),
                url,
                detail,
            },
            404 => RegistryError::NotFound {
                what: what.to_string(),
                url,
                detail,
            },
            s if s >= 500 => RegistryError::Server {
                status,
                url,
                attempts: 1,
                detail,
            },
            _ => RegistryError::Rejected {
                status,
                url,
                detail,
            },
        }
    }

    /// A `GET` read to its last byte: the status must be a success, the body at most `max`
    /// bytes. A connection that breaks mid-body (reset, early close) is retried like one that
    /// breaks before the head, within the same bound: the head alone proves nothing.
    async fn get_body(
        &self,
        access: &RepoAccess,
        url: &Url,
        headers: &HeaderMap,
        scopes: &Scopes,
        what: &str,
        max: usize,
    ) -> Result<(HeaderMap, Vec<u8>), RegistryError> {
        let policy = &self.inner.options.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let req = Req {
                method: Method::GET,
                url: url.clone(),
                headers: headers.clone(),
                body: ReqBody::Empty,
                what,
            };
            let resp = self.execute(access, req, scopes.clone()).await?;
            if !resp.status().is_success() {
                return Err(self.status_error(resp, what).await);
            }
            if resp.content_length().is_some_and(|n| n > max as u64) {
                return Err(too_large(url, what, max));
            }
            let head = resp.headers().clone();
            let err = match resp.bytes().await {
                Ok(b) if b.len() > max => return Err(too_large(url, what, max)),
                Ok(b) => return Ok((head, b.to_vec())),
                Err(e) => transport_error(&e, url, access.timeout),
            };
            if !retryable_transport(&err) || attempt >= policy.max_attempts.max(1) {
                return Err(with_attempts(err, attempt));
            }
            self.count(Err(()), false, false);
            tracing::debug!(%url, attempt, error = %err, "body broken; retrying");
            tokio::time::sleep(policy.delay(attempt - 1, None)).await;
        }
    }

    /// Checks that `/v2/` answers and the credentials work for pulling this repository.
    pub async fn ping(&self, access: &RepoAccess) -> Result<(), RegistryError> {
        self.endpoint(access).await.map(|_| ())
    }

    /// Every tag of the repository, following `Link: <...>; rel="next"` pages.
    pub async fn list_tags(&self, access: &RepoAccess) -> Result<Vec<String>, RegistryError> {
        let what = format!("repository {}", access.image);
        let mut url = self
            .repo_url(access, &format!("tags/list?n={TAG_PAGE_SIZE}"))
            .await?;
        let mut tags = Vec::new();
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_TAG_PAGES {
            seen.insert(url.to_string());
            let scopes = Scopes::repo(access.image.repository(), &["pull"]);
            let (head, body) = self
                .get_body(
                    access,
                    &url,
                    &HeaderMap::new(),
                    &scopes,
                    &what,
                    MAX_TAG_PAGE_BYTES,
                )
                .await?;
            let next = next_link(&head, &url)?;
            let page = parse_tag_page(&body).map_err(|detail| RegistryError::InvalidResponse {
                url: url.to_string(),
                detail,
            })?;
            tags.extend(page);
            match next {
                None => return Ok(tags),
                Some(n) if seen.contains(n.as_str()) => {
                    return Err(RegistryError::InvalidResponse {
                        url: url.to_string(),
                        detail: format!("Link header loops back to {n}"),
                    });
                }
                Some(n) => url = n,
            }
        }
        Err(RegistryError::InvalidResponse {
            url: url.to_string(),
            detail: format!("more than {MAX_TAG_PAGES} tag pages"),
        })
    }

    async fn manifest_request(
        &self,
        access: &RepoAccess,
        method: Method,
        reference: &str,
        what: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self
            .repo_url(access, &format!("manifests/{reference}"))
            .await?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let resp = self
            .execute(
                access,
                Req {
                    method,
                    url,
                    headers,
                    body: ReqBody::Empty,
                    what,
                },
                Scopes::repo(access.image.repository(), &["pull"]),
            )
            .await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.status_error(resp, what).await)
        }
    }

    /// `HEAD` a manifest by tag or digest: its digest, media type and size.
    pub async fn head_manifest(
        &self,
        access: &RepoAccess,
        reference: &str,
    ) -> Result<Descriptor, RegistryError> {
        let what = format!("manifest {}:{reference}", access.image);
        let resp = self
            .manifest_request(access, Method::HEAD, reference, &what)
            .await?;
        let headers = resp.headers();
        let digest = header_str(headers, "docker-content-digest").map(str::to_string);
        let media_type = header_str(headers, header::CONTENT_TYPE).map(str::to_string);
        let size = header_str(headers, header::CONTENT_LENGTH).and_then(|s| s.parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size)) if is_digest(&digest) => Ok(Descriptor {
                digest,
                media_type,
                size,
            }),
            // Some registries omit headers on HEAD: fall back to the body.
            _ => {
                let m = self.get_manifest(access, reference).await?;
                Ok(Descriptor {
                    size: m.bytes.len() as u64,
                    digest: m.digest,
                    media_type: m.media_type,
                })
            }
        }
    }

    /// `GET` a manifest as raw bytes. When fetched by digest, the bytes are verified.
    pub async fn get_manifest(
        &self,
        access: &RepoAccess,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let what = format!("manifest {}:{reference}", access.image);
        let url = self
            .repo_url(access, &format!("manifests/{reference}"))
            .await?;
        let mut accept = HeaderMap::new();
        accept.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let scopes = Scopes::repo(access.image.repository(), &["pull"]);
        let (head, bytes) = self
            .get_body(access, &url, &accept, &scopes, &what, MAX_MANIFEST_BYTES)
            .await?;
        let media_type = header_str(&head, header::CONTENT_TYPE)
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let header_digest = header_str(&head, "docker-content-digest").map(String::from);
        // A cut body can still hash to "a" digest: only a whole JSON document is a manifest.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            return Err(RegistryError::InvalidResponse {
                url: url.to_string(),
                detail: "manifest is not a complete JSON document".into(),
            });
        }
        let digest = sha256_digest(&bytes);
        if is_digest(reference) && digest != reference {
            return Err(RegistryError::InvalidResponse {
                url: url.to_string(),
                detail: format!("manifest bytes hash to {digest}, not the requested digest"),
            });
        }
        if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:"))
            && h != digest
        {
            return Err(RegistryError::InvalidResponse {
                url: url.to_string(),
                detail: format!("Docker-Content-Digest {h} does not match the body ({digest})"),
            });
        }
        let media_type = match media_type {
            Some(mt) if !mt.is_empty() && mt != "application/json" => mt,
            // Fall back to the document's own mediaType field.
            _ => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(String::from))
                .ok_or_else(|| RegistryError::InvalidResponse {
                    url: url.to_string(),
                    detail: "manifest has no Content-Type and no mediaType field".into(),
                })?,
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `PUT` manifest bytes unchanged under a tag (or digest). Returns the digest.
    pub async fn put_manifest(
        &self,
        access: &RepoAccess,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let what = format!("manifest {}:{reference}", access.image);
        let url = self
            .repo_url(access, &format!("manifests/{reference}"))
            .await?;
        let mut headers = HeaderMap::new();
        let ct = HeaderValue::from_str(media_type).map_err(|_| {
            RegistryError::Config(format!("media type {media_type:?} is not a header value"))
        })?;
        headers.insert(header::CONTENT_TYPE, ct);
        let resp = self
            .execute(
                access,
                Req {
                    method: Method::PUT,
                    url: url.clone(),
                    headers,
                    body: ReqBody::Bytes(bytes.to_vec()),
                    what: &what,
                },
                Scopes::repo(access.image.repository(), &["pull", "push"]),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &what).await);
        }
        let digest = sha256_digest(bytes);
        if let Some(h) = header_str(resp.headers(), "docker-content-digest")
            && h.starts_with("sha256:")
            && h != digest
        {
            return Err(RegistryError::InvalidResponse {
                url: url.to_string(),
                detail: format!("registry stored digest {h}, but the bytes sent hash to {digest}"),
            });
        }
        Ok(digest)
    }

    /// Whether a blob exists in the repository.
    pub async fn blob_exists(
        &self,
        access: &RepoAccess,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let what = format!("blob {}@{digest}", access.image);
        let url = self.repo_url(access, &format!("blobs/{digest}")).await?;
        let resp = self
            .execute(
                access,
                Req {
                    method: Method::HEAD,
                    url,
                    headers: HeaderMap::new(),
                    body: ReqBody::Empty,
                    what: &what,
                },
                Scopes::repo(access.image.repository(), &["pull"]),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(resp, &what).await),
        }
    }

    /// Uploads a blob held in memory: nothing when the repository has it, else a monolithic
    /// upload (POST to open the session, PUT with the bytes and `?digest=`). The digest is
    /// checked against the bytes first. Returns whether bytes were sent.
    pub async fn upload_blob(
        &self,
        access: &RepoAccess,
        digest: &str,
        bytes: Vec<u8>,
    ) -> Result<bool, RegistryError> {
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(RegistryError::Config(format!(
                "blob {digest} hashes to {actual}; refusing to upload it"
            )));
        }
        if self.blob_exists(access, digest).await? {
            return Ok(false);
        }
        let what = format!("blob upload {}@{digest}", access.image);
        let start_url = self.repo_url(access, "blobs/uploads/").await?;
        let push = Scopes::repo(access.image.repository(), &["pull", "push"]);
        let started = self
            .execute(
                access,
                Req {
                    method: Method::POST,
                    url: start_url.clone(),
                    headers: HeaderMap::new(),
                    body: ReqBody::Empty,
                    what: &what,
                },
                push.clone(),
            )
            .await?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(started, &what).await);
        }
        let mut put_url = header_str(started.headers(), header::LOCATION)
            .and_then(|l| start_url.join(l).ok())
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: start_url.to_string(),
                detail: "upload started without a valid Location header".into(),
            })?;
        put_url.query_pairs_mut().append_pair("digest", digest);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let put = self
            .execute(
                access,
                Req {
                    method: Method::PUT,
                    url: put_url,
                    headers,
                    body: ReqBody::Bytes(bytes),
                    what: &what,
                },
                push,
            )
            .await?;
        if put.status() != StatusCode::CREATED {
            return Err(self.status_error(put, &what).await);
        }
        Ok(true)
    }

    /// Cross-repository mount of a blob into `target` from `from_repository` (same registry).
    pub async fn mount_blob(
        &self,
        target: &RepoAccess,
        digest: &str,
        from_repository: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let what = format!(
            "blob mount {digest} from {from_repository} into {}",
            target.image
        );
        let mut url = self.repo_url(target, "blobs/uploads/").await?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let mut scopes = Scopes::repo(target.image.repository(), &["pull", "push"]);
        scopes.add(&format!("repository:{from_repository}"), ["pull"]);
        let resp = self
            .execute(
                target,
                Req {
                    method: Method::POST,
                    url: url.clone(),
                    headers: HeaderMap::new(),
                    body: ReqBody::Empty,
                    what: &what,
                },
                scopes,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => {
                // The registry opened an ordinary upload instead; close it (best effort).
                if let Some(loc) = header_str(resp.headers(), header::LOCATION)
                    && let Ok(loc) = url.join(loc)
                {
                    let cancel = self
                        .execute(
                            target,
                            Req {
                                method: Method::DELETE,
                                url: loc,
                                headers: HeaderMap::new(),
                                body: ReqBody::Empty,
                                what: &what,
                            },
                            Scopes::repo(target.image.repository(), &["pull", "push"]),
                        )
                        .await;
                    if let Err(e) = cancel {
                        tracing::debug!(error = %e, "cancelling the upload session failed");
                    }
                }
                Ok(MountOutcome::NotMounted)
            }
            _ => Err(self.status_error(resp, &what).await),
        }
    }

    /// Copies one blob: nothing if present, a mount within one registry, else a streamed
    /// monolithic upload.
    pub async fn copy_blob(
        &self,
        src: &RepoAccess,
        dst: &RepoAccess,
        digest: &str,
    ) -> Result<BlobCopy, RegistryError> {
        if self.blob_exists(dst, digest).await? {
            return Ok(BlobCopy::AlreadyPresent);
        }
        let same_registry = src.image.registry() == dst.image.registry()
            && src.credentials == dst.credentials
            && src.tls == dst.tls
            && src.insecure == dst.insecure;
        if same_registry
            && self.mount_blob(dst, digest, src.image.repository()).await? == MountOutcome::Mounted
        {
            return Ok(BlobCopy::Mounted);
        }
        let what_src = format!("blob {}@{digest}", src.image);
        let src_url = self.repo_url(src, &format!("blobs/{digest}")).await?;
        let got = self
            .execute(
                src,
                Req {
                    method: Method::GET,
                    url: src_url,
                    headers: HeaderMap::new(),
                    body: ReqBody::Empty,
                    what: &what_src,
                },
                Scopes::repo(src.image.repository(), &["pull"]),
            )
            .await?;
        if !got.status().is_success() {
            return Err(self.status_error(got, &what_src).await);
        }
        let length = got.content_length();

        let what_dst = format!("blob upload {}@{digest}", dst.image);
        let start_url = self.repo_url(dst, "blobs/uploads/").await?;
        let push = Scopes::repo(dst.image.repository(), &["pull", "push"]);
        let started = self
            .execute(
                dst,
                Req {
                    method: Method::POST,
                    url: start_url.clone(),
                    headers: HeaderMap::new(),
                    body: ReqBody::Empty,
                    what: &what_dst,
                },
                push.clone(),
            )
            .await?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(started, &what_dst).await);
        }
        let location = header_str(started.headers(), header::LOCATION)
            .and_then(|l| start_url.join(l).ok())
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: start_url.to_string(),
                detail: "upload started without a valid Location header".into(),
            })?;
        let mut put_url = location;
        put_url.query_pairs_mut().append_pair("digest", digest);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(n) = length {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        let body = reqwest::Body::wrap_stream(got.bytes_stream());
        let put = self
            .execute(
                dst,
                Req {
                    method: Method::PUT,
                    url: put_url,
                    headers,
                    body: ReqBody::Stream(Mutex::new(Some(body))),
                    what: &what_dst,
                },
                push,
            )
            .await?;
        if put.status() != StatusCode::CREATED {
            return Err(self.status_error(put, &what_dst).await);
        }
        Ok(BlobCopy::Uploaded {
            bytes: length.unwrap_or(0),
        })
    }

    /// Copies a manifest with everything it references (index children, config, layers) from
    /// `src` to `dst`, then tags it `dst_reference`. The bytes, hence the digest, are unchanged.
    pub async fn copy_manifest_tree(
        &self,
        src: &RepoAccess,
        dst: &RepoAccess,
        src_reference: &str,
        dst_reference: &str,
    ) -> Result<String, RegistryError> {
        let manifest = self.get_manifest(src, src_reference).await?;
        self.copy_manifest_children(src, dst, &manifest, 0).await?;
        self.put_manifest(dst, dst_reference, &manifest.bytes, &manifest.media_type)
            .await
    }

    async fn copy_manifest_children(
        &self,
        src: &RepoAccess,
        dst: &RepoAccess,
        manifest: &Manifest,
        depth: u32,
    ) -> Result<(), RegistryError> {
        let invalid = |detail: String| RegistryError::InvalidResponse {
            url: format!("{} manifest {}", src.image, manifest.digest),
            detail,
        };
        if depth > 4 {
            return Err(invalid("index nesting deeper than 4".into()));
        }
        let refs = manifest_references(&manifest.bytes).map_err(invalid)?;
        if let ManifestRefs::Index(children) = refs {
            for digest in children {
                let child_manifest = self.get_manifest(src, &digest).await?;
                Box::pin(self.copy_manifest_children(src, dst, &child_manifest, depth + 1)).await?;
                self.put_manifest(
                    dst,
                    &digest,
                    &child_manifest.bytes,
                    &child_manifest.media_type,
                )
                .await?;
            }
            return Ok(());
        }
        let ManifestRefs::Blobs(blobs) = refs else {
            return Ok(());
        };
        for digest in blobs {
            self.copy_blob(src, dst, &digest).await?;
        }
        Ok(())
    }
}

/// The tags of one `tags/list` page (`{"name": ..., "tags": [...] | null}`).
/// Public for the fuzz targets and property tests only.
#[doc(hidden)]
pub fn parse_tag_page(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Page {
        tags: Option<Vec<String>>,
    }
    serde_json::from_slice::<Page>(body)
        .map(|p| p.tags.unwrap_or_default())
        .map_err(|e| format!("tag list is not the expected JSON ({e})"))
}

/// What a manifest points at: an index's child manifests, or an image's config and layers.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRefs {
    Index(Vec<String>),
    Blobs(Vec<String>),
}

/// Reads the digests a manifest or index refers to; every one must be a sha256 digest.
/// Public for the fuzz targets and property tests only.
#[doc(hidden)]
pub fn manifest_references(bytes: &[u8]) -> Result<ManifestRefs, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let digest_of = |v: &serde_json::Value| -> Result<String, String> {
        v.get("digest")
            .and_then(|d| d.as_str())
            .filter(|d| is_digest(d))
            .map(String::from)
            .ok_or_else(|| "descriptor without a sha256 digest".to_string())
    };
    if let Some(children) = doc.get("manifests").and_then(|m| m.as_array()) {
        return children
            .iter()
            .map(digest_of)
            .collect::<Result<_, _>>()
            .map(ManifestRefs::Index);
    }
    let mut blobs = Vec::new();
    if let Some(config) = doc.get("config") {
        blobs.push(digest_of(config)?);
    }
    if let Some(layers) = doc.get("layers").and_then(|l| l.as_array()) {
        for layer in layers {
            blobs.push(digest_of(layer)?);
        }
    }
    Ok(ManifestRefs::Blobs(blobs))
}

/// The `rel="next"` target of a `Link` header, resolved against the request URL.
fn too_large(url: &Url, what: &str, max: usize) -> RegistryError {
    RegistryError::InvalidResponse {
        url: url.to_string(),
        detail: format!("{what}: body larger than {max} bytes"),
    }
}

/// Says how many tries a transport failure took, when it was retried.
fn with_attempts(err: RegistryError, attempts: u32) -> RegistryError {
    match err {
        RegistryError::Connection { url, detail } if attempts > 1 => RegistryError::Connection {
            url,
            detail: format!("{detail} (after {attempts} attempts)"),
        },
        other => other,
    }
}

/// Public for the fuzz targets and property tests only.
#[doc(hidden)]
pub fn next_link(headers: &HeaderMap, request_url: &Url) -> Result<Option<Url>, RegistryError> {
    let Some(value) = header_str(headers, header::LINK) else {
        return Ok(None);
    };
    let value = value.trim();
    if !value.starts_with('<') {
        return Err(RegistryError::InvalidResponse {
            url: request_url.to_string(),
            detail: format!("Link header {value:?} does not start with '<'"),
        });
    }
    let Some(end) = value.find('>') else {
        return Err(RegistryError::InvalidResponse {
            url: request_url.to_string(),
            detail: format!("Link header {value:?} has no closing '>'"),
        });
    };
    let target = &value[1..end];
    let params = &value[end + 1..];
    let is_next = params.split(';').any(|p| {
        let p = p.trim().to_ascii_lowercase();
        p == "rel=\"next\"" || p == "rel=next"
    });
    if !is_next {
        return Ok(None);
    }
    let next = request_url
        .join(target)
        .map_err(|e| RegistryError::InvalidResponse {
            url: request_url.to_string(),
            detail: format!("Link target {target:?} is not a URL: {e}"),
        })?;
    // The next page comes from the same registry: a Link to another scheme, host or port
    // would carry this registry's credentials (or Ferry's requests) somewhere else.
    if next.origin() != request_url.origin() {
        return Err(RegistryError::InvalidResponse {
            url: request_url.to_string(),
            detail: format!("Link target {target:?} is not on the registry that sent it"),
        });
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg, inc",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(scheme, "bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "reg, inc");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm=registry"#).unwrap();
        assert_eq!(scheme, "basic");
        assert_eq!(p["realm"], "registry");
    }

    #[test]
    fn scopes_merge_and_render() {
        let mut s = Scopes::repo("a/b", &["pull"]);
        s.merge_challenge("repository:a/b:push repository:c/d:pull");
        assert_eq!(
            s.strings(),
            vec!["repository:a/b:pull,push", "repository:c/d:pull"]
        );
    }

    #[test]
    fn link_resolution() {
        let base = Url::parse("http://127.0.0.1:5000/v2/a/tags/list?n=1000").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static("</v2/a/tags/list?n=1000&last=x>; rel=\"next\""),
        );
        assert_eq!(
            next_link(&h, &base).unwrap().unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/tags/list?n=1000&last=x"
        );
        h.insert(header::LINK, HeaderValue::from_static("garbage"));
        assert!(next_link(&h, &base).is_err());
        // Never to another registry: host, port or scheme.
        for target in [
            "<http://127.0.0.2:5000/v2/a/tags/list?last=x>; rel=\"next\"",
            "<//127.0.0.1:5001/v2/a/tags/list>; rel=\"next\"",
            "<https://127.0.0.1:5000/v2/a/tags/list>; rel=\"next\"",
            "<file:///etc/passwd>; rel=\"next\"",
        ] {
            h.insert(header::LINK, HeaderValue::from_static(target));
            let err = next_link(&h, &base).unwrap_err().to_string();
            assert!(
                err.contains("not on the registry that sent it"),
                "{target}: {err}"
            );
        }
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(2),
        };
        assert!(p.delay(0, None) >= Duration::from_millis(100));
        assert!(p.delay(5, None) <= Duration::from_millis(450));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }
}
