//! The HTTP service: `fn app(state) -> Router`, and `serve` to run it.
//!
//! Every request gets an id of ours (`x-request-id`; one sent by the client is replaced) that
//! appears in its log line, the audit log and 5xx bodies. `/v1` requests are authenticated (JWT) before anything else, rate limited
//! per user and per tenant, and POSTs with an `Idempotency-Key` are run at most once.
//! `/healthz` says the process is up; `/readyz` that the database answers (and the demo tenant's
//! model loads); `/metrics` is Prometheus text.

pub mod api;
pub mod error;
pub mod sources;

pub use service::{audit, tenants};

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use self::error::{ApiError, REQUEST_ID};
use service::Services;
use service::auth::{AuthConfig, Authenticator, Claims};
use service::chat::transport::Transport;
use store::{IdempotencyState, TenantId};

/// A request still "in progress" after this long died with its process: its key is taken over.
const IDEMPOTENCY_LAPSE: chrono::Duration = chrono::Duration::minutes(10);

/// Everything a request handler needs, built once at start-up: the services, and what only the
/// HTTP layer has (authentication, rate limits, metrics, the adapters' routes).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub services: Services,
    pub auth: Authenticator,
    per_user: DefaultKeyedRateLimiter<String>,
    per_tenant: DefaultKeyedRateLimiter<String>,
    /// Limits per source address, before authentication.
    pub sources: sources::Sources,
    /// Each tenant's alert effectiveness, and when it was computed.
    pub effectiveness:
        tokio::sync::Mutex<std::collections::HashMap<TenantId, (Instant, alerts::feedback::Effectiveness)>>,
    pub metrics: PrometheusHandle,
    /// The tenant whose model `/readyz` requires (the demo's).
    pub ready_tenant: Option<TenantId>,
    /// The chat platforms, as configured (Slack, Teams, Discord: the wiring decides).
    pub transports: Vec<Arc<dyn Transport>>,
    /// Other adapters' endpoints (a CRM's webhook).
    routes: Vec<Router<Services>>,
    /// The OpenAPI document: the API's and the adapters' endpoints.
    pub openapi: String,
}

/// The adapters the server carries, built by the caller (the server names none of them).
#[derive(Default)]
pub struct Adapters {
    pub transports: Vec<Arc<dyn Transport>>,
    /// Endpoints of other adapters (a CRM's webhook), each with its part of the OpenAPI document.
    pub routes: Vec<(Router<Services>, utoipa::openapi::OpenApi)>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::Deref for Inner {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    pub fn new(services: Services, adapters: Adapters, ready_tenant: Option<TenantId>) -> anyhow::Result<Self> {
        let settings = &services.settings;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")?;
        let a = &settings.auth;
        // An identity provider issues tokens for many applications: accepting its RS256 tokens
        // without checking they are meant for Dealwatch would let any of them in.
        if a.jwks_url.is_some() && a.audience.is_none() {
            anyhow::bail!(
                "[auth] jwks_url is set but audience is not: set the audience your identity provider puts in Dealwatch's tokens"
            );
        }
        let auth = Authenticator::new(
            AuthConfig {
                hs256_secrets: a.hs256_secrets.clone(),
                jwks_url: a.jwks_url.clone(),
                issuer: a.issuer.clone(),
                audience: a.audience.clone(),
                leeway_seconds: a.leeway_seconds,
                jwks_cache_seconds: a.jwks_cache_seconds,
            },
            http,
        )
        .context("configuring authentication ([auth] hs256_secrets or jwks_url)")?;
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        let per_user = RateLimiter::keyed(quota(settings.limits.per_user_per_minute));
        let per_tenant = RateLimiter::keyed(quota(settings.limits.per_tenant_per_minute));
        let sources = sources::Sources::new(&settings.limits, &settings.server);
        let (routes, docs): (Vec<_>, Vec<_>) = adapters.routes.into_iter().unzip();
        Ok(AppState(Arc::new(Inner {
            auth,
            per_user,
            per_tenant,
            sources,
            effectiveness: Default::default(),
            metrics: prometheus(),
            ready_tenant,
            transports: adapters.transports,
            routes,
            openapi: api::openapi_document(docs),
            services,
        })))
    }
}

/// The process-wide Prometheus recorder (a recorder can be installed only once).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                )
                .expect("static buckets are valid");
            builder.install_recorder().unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// The router, with its layers.
pub fn app(state: AppState) -> Router {
    let v1 = api::v1_routes()
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotency))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let mut router = Router::new().merge(api::public_routes()).merge(v1);
    let adapters = state.transports.iter().map(|t| t.routes()).chain(state.routes.iter().cloned());
    for routes in adapters {
        router = router.merge(routes.with_state(state.services.clone()));
    }
    router
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(state.settings.server.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), sources::limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(state.settings.server.request_timeout_seconds),
        ))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // Request ids are ours: one a client sends is not trusted into the logs and the audit
        // log (it could forge another request's id, or inject text); ours goes back to it.
        .layer(middleware::map_request(|mut request: Request| async move {
            request.headers_mut().remove("x-request-id");
            request
        }))
        .with_state(state)
}

/// Logs and measures every request, and makes its id available to error bodies.
async fn observe(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A method name is the client's to choose: only the standard ones become metric labels.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::PATCH | Method::HEAD | Method::OPTIONS => {
            request.method().as_str().to_owned()
        }
        _ => "other".to_owned(),
    };
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let labels = [("method", method.to_string()), ("route", route.clone()), ("status", status.to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    tracing::info!(request_id = %id, method = %method, route = %route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// The authenticated caller, put in request extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub tenant: TenantId,
}

/// JWT first, then the caller's and the tenant's rate limits.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let header = request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = state.auth.verify_header(header, state.now().timestamp()).await.map_err(|e| match e {
        // The identity provider's keys could not be fetched: our problem, not the caller's.
        service::auth::AuthError::KeysUnavailable(_) => {
            tracing::warn!(reason = %e, "authentication unavailable");
            ApiError::Unavailable("token keys are temporarily unavailable; retry shortly".into())
        }
        _ => {
            tracing::info!(reason = %e, "authentication refused");
            ApiError::Unauthorized("Invalid or expired JWT token")
        }
    })?;
    let tenant =
        TenantId::parse(&claims.tenant_id).map_err(|_| ApiError::Unauthorized("Invalid or expired JWT token"))?;
    let claims = current_claims(&state, &tenant, claims).await?;
    let limited = |limiter: &DefaultKeyedRateLimiter<String>, key: String, limit: u32, whom: &str| {
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            ApiError::RateLimited {
                message: format!("Max {limit} requests per minute {whom} exceeded"),
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    };
    let limits = &state.settings.limits;
    limited(&state.per_user, format!("{tenant}/{}", claims.sub), limits.per_user_per_minute, "per user")?;
    limited(&state.per_tenant, tenant.to_string(), limits.per_tenant_per_minute, "per tenant")?;
    request.extensions_mut().insert(Caller { claims, tenant });
    Ok(next.run(request).await)
}

/// A verified token's claims as the user stands now: refused when the user is not (or no
/// longer) in the tenant or revoked their tokens after this one was issued; the role is the
/// lower of the token's and the user's current one, so a demoted admin's old token is a
/// manager's.
async fn current_claims(state: &AppState, tenant: &TenantId, mut claims: Claims) -> Result<Claims, ApiError> {
    let refused = |why: &str| {
        tracing::info!(reason = why, "authentication refused");
        ApiError::Unauthorized("Invalid or expired JWT token")
    };
    let Some(user) = state.store.user(tenant, &claims.sub).await? else {
        return Err(refused("the token's user is not in its tenant"));
    };
    if let Some(not_before) = state.store.tokens_not_before(tenant, &claims.sub).await? {
        // A token without `iat` (an identity provider's) is as old as its revocation allows.
        if claims.iat.is_none_or(|iat| iat <= not_before.timestamp()) {
            return Err(refused("the user's tokens were revoked"));
        }
    }
    claims.role = claims.role.min(user.role);
    Ok(claims)
}

/// `Idempotency-Key` on POST: the first response is kept and replayed to retries, so a retried
/// request does nothing twice. A key reused with a different body is refused; a request that
/// failed on our side (5xx) is forgotten so its retry runs again.
///
/// The request runs to its end in a task of its own, so a client that leaves (or the 10 s
/// timeout) cannot leave its key "in progress": the response is recorded and the retry gets
/// it. A key whose process died mid-request is taken over after [`IDEMPOTENCY_LAPSE`]; keys
/// expire after a day.
async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let key = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (Some(key), true) = (key, request.method() == Method::POST) else { return Ok(next.run(request).await) };
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::validation("Idempotency-Key", "length", "Idempotency-Key must be 1-200 characters"));
    }
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthorized("Invalid or expired JWT token"))?;
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, state.settings.server.max_body_bytes)
        .await
        .map_err(|_| ApiError::BadRequest("request body too large or unreadable".into()))?;
    let hash = hex::encode(
        Sha256::new()
            .chain_update(parts.method.as_str())
            .chain_update(parts.uri.path())
            .chain_update(&bytes)
            .finalize(),
    );
    let store = &state.store;
    let user = caller.claims.sub.as_str();
    let now = state.now();
    match store.idempotency_begin(&caller.tenant, user, &key, &hash, now, IDEMPOTENCY_LAPSE).await? {
        IdempotencyState::Done { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        IdempotencyState::InProgress => {
            Err(ApiError::Conflict("a request with this Idempotency-Key is still being processed".into()))
        }
        IdempotencyState::Mismatch => Err(ApiError::validation(
            "Idempotency-Key",
            "reused",
            "this Idempotency-Key was already used with a different request",
        )),
        IdempotencyState::New => {
            let id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
            let (store, tenant) = (store.clone(), caller.tenant.clone());
            let (owner, released) = (user.to_owned(), key.clone());
            let run = async move {
                let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
                let status = response.status();
                if status.is_server_error() {
                    store.idempotency_abandon(&tenant, &owner, &key).await?;
                    return Ok(response);
                }
                let (parts, body) = response.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(ApiError::internal)?;
                let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                store.idempotency_finish(&tenant, &owner, &key, status.as_u16(), &json).await?;
                Ok::<_, ApiError>(Response::from_parts(parts, Body::from(bytes)))
            };
            let task = tokio::spawn(REQUEST_ID.scope(id, run));
            match task.await {
                Ok(result) => result,
                // The handler panicked: nothing was recorded, so the key is released for a retry.
                Err(e) => {
                    if let Err(store_error) = state.store.idempotency_abandon(&caller.tenant, user, &released).await {
                        tracing::error!(error = %store_error, "releasing the Idempotency-Key of a failed request");
                    }
                    Err(ApiError::internal(e))
                }
            }
        }
    }
}

/// What runs beside the HTTP server: alert delivery and the scheduled jobs, when configured.
#[derive(Default)]
pub struct Background {
    pub sender: Option<alerts::deliver::Sender>,
    pub jobs: Option<service::jobs::Scheduler>,
}

/// Binds, starts the background work and the transports' connections, prints where it listens
/// (and, for the demo, a token to try it with), and serves until Ctrl-C or SIGTERM, finishing
/// the requests in flight.
pub async fn serve(
    state: AppState,
    background: Background,
    demo: Option<(TenantId, SecretString)>,
) -> anyhow::Result<()> {
    let settings = &state.settings;
    let listen = settings.server.listen;
    let poll = Duration::from_secs(settings.alerts.poll_seconds.max(1));
    let jobs_every = Duration::from_secs(settings.jobs.poll_seconds.max(1));
    let delivery = background.sender.map(|s| tokio::spawn(s.run(poll, state.alerts_raised.clone())));
    let scheduler = background.jobs.map(|j| tokio::spawn(j.run(jobs_every, state.clock.clone())));
    let mut running = Vec::new();
    for transport in &state.transports {
        let name = transport.name();
        running.extend(transport.start(&state.services).await.with_context(|| format!("starting {name}"))?);
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("listening on http://{addr}");
    if let Some((tenant, secret)) = &demo {
        print_demo_help(addr, tenant, secret)?;
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await.context("serving")?;
    // A pass cut off here leaves its alerts or job leased; the next start takes them over.
    for task in [delivery, scheduler].into_iter().flatten() {
        task.abort();
    }
    for run in running {
        tracing::info!(transport = run.name, "stopping");
        (run.stop)().await;
    }
    state.audit.flush().await;
    tracing::info!("shut down");
    Ok(())
}

fn print_demo_help(addr: SocketAddr, tenant: &TenantId, secret: &SecretString) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: "admin".into(),
        tenant_id: tenant.to_string(),
        role: store::Role::Admin,
        exp: now + 12 * 3600,
        iat: Some(now),
        iss: None,
        aud: None,
    };
    let token =
        service::auth::mint_hs256(secret, &claims).map_err(|e| anyhow::anyhow!("minting the demo token: {e}"))?;
    println!("\nDemo admin token (valid 12 hours):\n  export TOKEN={token}\n");
    println!("Try:");
    println!("  curl -s http://{addr}/v1/deals/high-risk?limit=5 -H \"Authorization: Bearer $TOKEN\"");
    println!("  curl -s http://{addr}/v1/pipeline/metrics -H \"Authorization: Bearer $TOKEN\"");
    println!(
        "  curl -s -X POST http://{addr}/v1/deals/score -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n       -d '{{\"deal_id\": \"NEW-1\", \"amount\": 45000, \"industry\": \"EdTech\", \"lead_source\": \"Partner\", \"stage\": \"Proposal\", \"created_date\": \"{}\"}}'",
        chrono::Utc::now().date_naive() - chrono::Duration::days(60)
    );
    println!("  curl -s http://{addr}/openapi.json | head -c 300\n");
    println!("Stop with Ctrl-C.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
