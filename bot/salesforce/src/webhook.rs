//! `POST /sfdc/opportunity-changed`: the package's Apex names the Opportunities a user just
//! changed; they are read, imported, rescored, written back and alerted on before the answer.
//!
//! The request is the package's, signed like Slack's: `X-Dealwatch-Timestamp` (Unix seconds,
//! within 5 minutes) and `X-Dealwatch-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`
//! under one of the tenant's `webhook_secrets`, the tenant in `X-Dealwatch-Tenant`. A forged,
//! stale, unsigned or replayed request (the same signature twice) is answered 401 before the
//! body is read as JSON.
//!
//! Our own write-backs do not start another round: they change only the risk fields, which the
//! mapping does not read, so the import finds the records unchanged and nothing is rescored (the
//! package's trigger also skips the integration user's changes). A `refresh` (the Lightning
//! component's button) rescores even unchanged records.

use std::collections::HashSet;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Connection;
use super::client::COLLECTION_LIMIT;
use service::Services;
use store::TenantId;

/// How far a request's timestamp may be from now, either way.
const WINDOW_SECONDS: i64 = 300;

/// The webhook's route, answering for the orgs in `orgs`.
pub fn routes(orgs: std::sync::Arc<super::Orgs>) -> Router<Services> {
    Router::new().route("/sfdc/opportunity-changed", post(opportunity_changed)).layer(Extension(orgs))
}

/// The webhook's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(opportunity_changed))]
pub struct WebhookDoc;

/// The package's notice: the Opportunities that changed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Changed {
    /// 1 to 200 Opportunity ids (15 or 18 characters).
    ids: Vec<String>,
    /// The org's id, for the log.
    #[serde(default)]
    org_id: Option<String>,
    #[serde(default)]
    reason: Reason,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The trigger: rescore what changed.
    #[default]
    Trigger,
    /// The component's "Refresh score": rescore even if nothing changed.
    Refresh,
}

/// What the webhook did.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Handled {
    pub received: usize,
    pub read: usize,
    /// Ids Salesforce did not return (deleted, or not visible to the integration user).
    pub not_found: Vec<String>,
    pub changed: usize,
    pub scored: usize,
    pub alerts: usize,
    pub written: usize,
    pub failed: usize,
    /// Recommended actions newly queued as Tasks, and the queued Tasks written.
    pub tasks: usize,
    pub tasks_written: usize,
}

/// A refusal, as the package's client reads it: `error` is a sentence for the admin's log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookError {
    pub error: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(WebhookError { error: message.into() })).into_response()
}

/// Checks the signature: the tenant's connection if it holds, else why not (for the log only).
fn verify(
    orgs: &super::Orgs,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<std::sync::Arc<Connection>, &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let connection = header("x-dealwatch-tenant")
        .and_then(|t| TenantId::parse(t).ok())
        .and_then(|t| orgs.get(&t))
        .ok_or("unknown tenant")?;
    let ts: i64 = header("x-dealwatch-timestamp").and_then(|t| t.parse().ok()).ok_or("no timestamp")?;
    if (now.timestamp() - ts).abs() > WINDOW_SECONDS {
        return Err("stale timestamp");
    }
    let signature = header("x-dealwatch-signature").and_then(signature_bytes).ok_or("no v1 signature")?;
    // An empty secret would let anyone sign (the config refuses one; this holds regardless).
    let secrets = connection.settings.webhook_secrets.iter().filter(|s| !s.expose_secret().trim().is_empty());
    let signed = secrets.into_iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
        mac.update(ts.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    });
    if signed { Ok(connection) } else { Err("bad signature") }
}

/// The MAC of a `v1=<hex>` signature header.
fn signature_bytes(header: &str) -> Option<Vec<u8>> {
    hex::decode(header.strip_prefix("v1=")?).ok()
}

/// A Salesforce record id: 15 or 18 letters and digits.
fn is_record_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The package's Apex trigger (through its Queueable) names changed Opportunities: they are read
/// from the org, imported, rescored, written back and alerted on before the answer.
#[utoipa::path(post, path = "/sfdc/opportunity-changed", tag = "salesforce", request_body = Changed,
    params(
        ("X-Dealwatch-Tenant" = String, Header, description = "The tenant whose org sent it"),
        ("X-Dealwatch-Timestamp" = i64, Header, description = "Unix seconds; within 5 minutes of now"),
        ("X-Dealwatch-Signature" = String, Header,
            description = "v1=<hex HMAC-SHA256 of \"{timestamp}.{body}\"> under one of the tenant's webhook secrets")),
    responses(
        (status = 200, description = "What was read, rescored, written and alerted on", body = Handled),
        (status = 400, description = "Not a list of 1 to 200 record ids", body = WebhookError),
        (status = 401, description = "Unsigned, forged, stale or for an unknown tenant", body = WebhookError),
        (status = 409, description = "The tenant's sync is halted until an admin fixes the org", body = WebhookError),
        (status = 502, description = "Salesforce refused a call", body = WebhookError),
        (status = 503, description = "Salesforce is busy or limited; retry later", body = WebhookError)))]
pub async fn opportunity_changed(
    State(state): State<Services>,
    Extension(orgs): Extension<std::sync::Arc<super::Orgs>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let now = state.now();
    let connection = match verify(&orgs, &headers, &body, now) {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(why, "a Salesforce webhook request refused");
            metrics::counter!("salesforce_webhook_refused_total").increment(1);
            return refuse(StatusCode::UNAUTHORIZED, "the request is not signed by this tenant's Salesforce package");
        }
    };
    // The same signature again is a replay (each notice is signed at its own second; a retry
    // by the package is signed anew): it would cost API calls and a rescore.
    let signature = headers.get("x-dealwatch-signature").map(|v| v.as_bytes()).unwrap_or_default();
    let digest = {
        use sha2::Digest as _;
        hex::encode(Sha256::digest(signature))
    };
    let scope = format!("sfdc:{}", connection.tenant);
    match state.store.claim_once(&scope, &digest, now + chrono::Duration::seconds(2 * WINDOW_SECONDS), now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(tenant = %connection.tenant, "a Salesforce webhook request replayed");
            metrics::counter!("salesforce_webhook_refused_total").increment(1);
            return refuse(StatusCode::UNAUTHORIZED, "this signed request was received already");
        }
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, format!("recording the request: {e}")),
    }
    let changed: Changed = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the body is not {{\"ids\": [...]}}: {e}")),
    };
    if changed.ids.is_empty() || changed.ids.len() > COLLECTION_LIMIT {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("ids: {} given; send 1 to {COLLECTION_LIMIT} per request", changed.ids.len()),
        );
    }
    if let Some(bad) = changed.ids.iter().find(|id| !is_record_id(id)) {
        return refuse(StatusCode::BAD_REQUEST, format!("ids: {bad:?} is not a Salesforce record id"));
    }
    tracing::debug!(tenant = %connection.tenant, org = ?changed.org_id, n = changed.ids.len(), "Opportunities changed");
    match super::halted(state.store.as_ref(), &connection.tenant).await {
        Ok(None) => {}
        Ok(Some(halt)) => {
            // 409: the package's Queueable gives up on these ids; the nightly full sync (or the
            // admin's `dealwatch sync`) reads them once the org is fixed.
            let said = format!("the tenant's Salesforce sync is halted since {}: {}", halt.at, halt.reason);
            return refuse(StatusCode::CONFLICT, said);
        }
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, format!("reading the sync's state: {e:#}")),
    }
    match handle(&state, &connection, &changed, now).await {
        Ok(handled) => {
            metrics::histogram!("salesforce_webhook_seconds").record(started.elapsed().as_secs_f64());
            (StatusCode::OK, Json(handled)).into_response()
        }
        Err(e) => {
            let transient =
                e.downcast_ref::<super::client::SfError>().is_some_and(super::client::SfError::is_transient);
            tracing::error!(tenant = %connection.tenant, error = ?e, "handling changed Opportunities");
            if super::is_schema(&e) {
                let channels = state.settings.alert_channels();
                if let Err(e) = super::halt(state.store.as_ref(), &connection.tenant, &e, &channels, now).await {
                    tracing::error!(tenant = %connection.tenant, error = ?e, "halting the Salesforce sync");
                }
            }
            // 503 asks the package's Queueable to try again later; the message says why.
            let status = if transient { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::BAD_GATEWAY };
            refuse(status, format!("{e:#}"))
        }
    }
}

async fn handle(
    state: &Services,
    connection: &Connection,
    changed: &Changed,
    now: DateTime<Utc>,
) -> anyhow::Result<Handled> {
    let store = state.store.as_ref();
    let tenant = &connection.tenant;
    let mut handled = Handled { received: changed.ids.len(), ..Handled::default() };
    let query = super::sync::soql(&connection.mapping.mapping, None, Some(&changed.ids));
    let records = connection.org.query_all(&query).await?;
    handled.read = records.len();
    let found: HashSet<&str> = records.iter().filter_map(|r| r["Id"].as_str()).collect();
    handled.not_found = changed.ids.iter().filter(|id| !found.contains(id.as_str())).cloned().collect();
    if records.is_empty() {
        return Ok(handled);
    }
    let outcome = super::sync::import(store, connection, &records, "salesforce:webhook", now).await?;
    handled.changed = outcome.inserted + outcome.updated;
    if handled.changed == 0 && changed.reason != Reason::Refresh {
        return Ok(handled);
    }
    // The tenant's cached engine scores the changed records with its similar-deal index: the
    // tenant is not reloaded for the few deals a user changed.
    let as_of = now.date_naive();
    let Some(engine) =
        state.cache.get(&state.store, tenant, as_of).await.map_err(service::ServiceError::into_anyhow)?
    else {
        return Ok(handled);
    };
    let texts = state.texts.clone();
    let records = outcome.records;
    let scored = tokio::task::spawn_blocking(move || engine.score_records(&records, &texts)).await??;
    let Some(updates) = scored else {
        tracing::info!(tenant = %tenant, "no trained model yet: changed deals are not scored");
        return Ok(handled);
    };
    let channels = state.settings.alert_channels();
    let saved = service::workflow::save_scores_alerting(store, tenant, now, Some(as_of), &updates, &channels).await?;
    (handled.scored, handled.alerts) = (saved.scores, saved.alerts);
    if saved.alerts > 0 {
        state.alerts_raised.notify_one();
    }
    if connection.settings.write_back {
        let written = super::sync::write_back(store, connection, &updates, now).await?;
        (handled.written, handled.failed) = (written.written, written.failed);
        handled.tasks = super::tasks::queue_recommended(store, connection, &updates, &saved, now).await?;
        if handled.tasks > 0 {
            let written = super::tasks::write_queued(store, connection).await?;
            handled.tasks_written = written.written;
        }
    }
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_and_signatures_are_read_strictly() {
        assert!(is_record_id("006Hs00001AbCdEIAV") && is_record_id("006Hs00001AbCdE"));
        for bad in ["", "006", "006Hs00001AbCdEIA", "006Hs00001AbCd'); DROP", "006Hs00001AbCdEIAV0"] {
            assert!(!is_record_id(bad), "{bad}");
        }
        assert_eq!(signature_bytes("v1=00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(signature_bytes("v1=0f0"), None);
        assert_eq!(signature_bytes("v1=zz"), None);
        assert_eq!(signature_bytes("v0=00ff10"), None);
    }
}
