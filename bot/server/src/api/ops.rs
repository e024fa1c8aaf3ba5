//! The public endpoints (health, readiness, metrics, the OpenAPI document) and the chat
//! platforms' install link.

use crate::error::{ApiError, ErrorBody};
use crate::{AppState, Caller};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiResult, Audit, audit, require_admin};

// ---------------------------------------------------------------------------------------------
// Health, readiness, metrics, OpenAPI

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready to serve"), (status = 503, description = "The database (or the required model) is not available")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database");
            "unreachable".to_owned()
        }
    };
    let model = match &state.ready_tenant {
        None => "not required".to_owned(),
        Some(tenant) => match service::workflow::champion_model(state.store.as_ref(), tenant).await {
            Ok(m) => format!("loaded {}", m.version),
            Err(_) => "missing".to_owned(),
        },
    };
    let ready = database == "ok" && model != "missing";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(
            serde_json::json!({ "status": if ready { "ready" } else { "not ready" }, "database": database, "backend": state.store.backend(), "model": model }),
        ),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

// ---------------------------------------------------------------------------------------------
// POST /v1/slack/install-link (admin)

#[derive(Debug, Serialize, ToSchema)]
pub struct InstallLink {
    /// Open in a browser signed in to the Slack workspace: it installs the app for this tenant.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/slack/install-link", tag = "slack",
    responses((status = 200, body = InstallLink), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn slack_install_link(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<InstallLink>> {
    require_admin(&caller)?;
    let slack = state.transports.iter().find(|t| t.name() == "slack");
    let (url, expires_at) = slack.and_then(|t| t.install_link(&caller.tenant, &caller.claims.sub)).ok_or_else(|| {
        ApiError::NotFound("installing through Slack is not configured: set [slack] client_id, client_secret, redirect_url and token_key".into())
    })?;
    audit(&state, &caller, Audit::Change, "slack.install_link", None, None).await?;
    Ok(Json(InstallLink { url, expires_at }))
}

pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.clone())
}
