//! Limits per source address, before anything is authenticated: Slack, Teams, the Salesforce
//! webhook and bad API tokens cost us a signature check each, so a source may send
//! `per_source_per_minute` requests and have `refused_per_source_per_minute` of them refused
//! (401, 403); past that it gets 429 with `Retry-After` until its allowance has come back.
//! Health, readiness and metrics are not limited (probes and scrapers call them).
//!
//! The source is the connection's address, or behind a reverse proxy (`[server]
//! trust_forwarded_for`) the last address the proxy appended to `X-Forwarded-For`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::error::ApiError;

/// Paths never limited: probes and scrapers.
const UNLIMITED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Sources blocked at most (beyond it, expired entries are dropped first).
const MAX_BLOCKED: usize = 100_000;

#[derive(Debug)]
pub struct Sources {
    all: DefaultKeyedRateLimiter<IpAddr>,
    refused: DefaultKeyedRateLimiter<IpAddr>,
    /// Sources over their refusals, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    trust_forwarded_for: bool,
    /// Counts requests, to clean the limiters' state now and then.
    seen: std::sync::atomic::AtomicU64,
}

impl Sources {
    pub fn new(limits: &settings::Limits, server: &settings::Server) -> Sources {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Sources {
            all: RateLimiter::keyed(quota(limits.per_source_per_minute)),
            refused: RateLimiter::keyed(quota(limits.refused_per_source_per_minute)),
            blocked: Mutex::new(HashMap::new()),
            trust_forwarded_for: server.trust_forwarded_for,
            seen: Default::default(),
        }
    }

    fn source(&self, request: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok())
        {
            return Some(ip);
        }
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
    }

    /// How long `source` must wait, if it is blocked now.
    fn blocked_for(&self, source: IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = *blocked.get(&source)?;
        until.checked_duration_since(Instant::now())
    }

    fn block(&self, source: IpAddr, wait: Duration) {
        let mut blocked = self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocked.len() >= MAX_BLOCKED {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(source, Instant::now() + wait);
    }

    fn tidy(&self) {
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 10_000 == 9_999 {
            self.all.retain_recent();
            self.refused.retain_recent();
        }
    }
}

fn too_many(source: IpAddr, wait: Duration, why: &str) -> Response {
    metrics::counter!("source_requests_limited_total").increment(1);
    tracing::warn!(%source, why, "a source is over its limit");
    ApiError::RateLimited {
        message: format!("Too many requests from your address ({why}); retry later"),
        retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
    .into_response()
}

/// The middleware: a blocked or flooding source gets 429; a refusal counts against its source.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let sources = &state.sources;
    let source = sources.source(&request);
    let (Some(source), false) = (source, UNLIMITED.contains(&request.uri().path())) else {
        return next.run(request).await;
    };
    sources.tidy();
    if let Some(wait) = sources.blocked_for(source) {
        return too_many(source, wait, "too many refused requests");
    }
    if let Err(not_until) = sources.all.check_key(&source) {
        return too_many(source, not_until.wait_time_from(DefaultClock::default().now()), "request rate");
    }
    // A refused authentication: 401, or the 403 Teams' and Slack's installs answer a bad token
    // with (under /v1 a 403 is an authenticated caller's "not yours", not a refusal).
    let api = request.uri().path().starts_with("/v1/");
    let response = next.run(request).await;
    let refused = match response.status() {
        StatusCode::UNAUTHORIZED => true,
        StatusCode::FORBIDDEN => !api,
        _ => false,
    };
    if refused && let Err(not_until) = sources.refused.check_key(&source) {
        let wait = not_until.wait_time_from(DefaultClock::default().now()).max(Duration::from_secs(1));
        sources.block(source, wait);
    }
    response
}
