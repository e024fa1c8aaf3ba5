//! REST API v1 (seed 002 "API Design") and the public endpoints.
//!
//! Handlers parse input themselves, so a bad payload gets a 422 naming the field
//! (`details.field`). Reads are limited to what the caller may see: a rep their own deals, a
//! manager their team's, an admin everything in the tenant; another tenant's data does not exist
//! for the caller (404, never 403, so ids cannot be probed). Reads by id, admin actions and
//! setting changes are written to the audit log.

use axum::Router;
use axum::routing::{get, post};
use chrono::NaiveDate;
use engine::model::TrainedModel;
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, ErrorBody};
use crate::tenants::TenantEngine;
use crate::{AppState, Caller};
use store::Role;

mod alerting;
mod deals;
mod models;
mod ops;
mod pipeline;

pub use self::alerting::*;
pub use self::deals::*;
pub use self::models::*;
pub use self::ops::*;
pub use self::pipeline::*;

pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
}

pub fn v1_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/deals/score", post(score_deal))
        .route("/v1/deals/high-risk", get(high_risk))
        .route("/v1/deals/{deal_id}", get(get_deal))
        .route("/v1/pipeline/metrics", get(pipeline_metrics))
        .route("/v1/ask", post(ask))
        .route("/v1/alerts/configure", post(configure_alerts))
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/alerts/{alert_id}/feedback", post(alert_feedback))
        .route("/v1/alerts/tuning", get(get_tuning).post(set_tuning))
        .route("/v1/alerts/routes", get(get_routes).put(set_routes))
        .route("/v1/alerts/effectiveness", get(alert_effectiveness))
        .route("/v1/models/performance", get(model_performance))
        .route("/v1/models/train", post(train_model))
        .route("/v1/slack/install-link", post(slack_install_link))
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn today(state: &AppState) -> NaiveDate {
    state.now().date_naive()
}

/// An `as_of` a client sent (default today): a date from 1900 to a year ahead. Questions about
/// the past are answered; a date past the data or beyond what chrono can count back from is not.
pub(crate) fn checked_as_of(state: &AppState, as_of: Option<NaiveDate>) -> ApiResult<NaiveDate> {
    let today = today(state);
    let Some(date) = as_of else { return Ok(today) };
    let first = *engine::domain::supported_dates().start();
    let last = today + chrono::Duration::days(366);
    if date < first || date > last {
        return Err(ApiError::validation(
            "as_of",
            "range",
            format!("as_of must be between {first} and {last} (a year from today)"),
        ));
    }
    Ok(date)
}

/// Whether an audit entry records a read (written behind the request, in batches) or a change
/// or admin action (written before the request answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audit {
    Read,
    Change,
}

pub(crate) async fn audit(
    state: &AppState,
    caller: &Caller,
    kind: Audit,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> ApiResult<()> {
    match kind {
        Audit::Read => {
            let entry = service::audit::entry(state.now(), &caller.claims.sub, action, target, details);
            state.audit.read(&caller.tenant, entry).await?;
        }
        Audit::Change => {
            service::audit::change_log(state, &caller.tenant, &caller.claims.sub, action, target, details).await?;
        }
    }
    Ok(())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("request body is not valid JSON: {inner}"))
        } else if field == "." {
            let message = inner.to_string();
            // serde names a missing field in its message: "missing field `deal_id`".
            let missing = message.split('`').nth(1).map(str::to_owned);
            ApiError::Validation {
                message: format!("invalid request: {message}"),
                field: missing,
                constraint: "required",
            }
        } else {
            ApiError::validation(field.clone(), "type", format!("invalid value for {field}: {inner}"))
        }
    })
}

pub(crate) async fn engine_for(state: &AppState, caller: &Caller) -> ApiResult<std::sync::Arc<TenantEngine>> {
    state
        .cache
        .get(&state.store, &caller.tenant, today(state))
        .await?
        .ok_or_else(|| ApiError::Unavailable("this tenant has no deals yet: import some first".into()))
}

pub(crate) fn model_of(engine: &TenantEngine) -> ApiResult<&TrainedModel> {
    engine
        .model
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no trained model for this tenant yet: POST /v1/models/train".into()))
}

pub(crate) fn require_admin(caller: &Caller) -> ApiResult<()> {
    if caller.claims.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("Access denied: this endpoint is for tenant admins".into()))
    }
}

/// The OpenAPI document, as committed in `bot/openapi.json` (a test keeps them equal): the API's
/// endpoints, then the adapters' (`adapters`, in order), then the operational ones.
pub fn openapi_document(adapters: Vec<utoipa::openapi::OpenApi>) -> String {
    let mut doc = ApiDoc::openapi();
    for part in adapters {
        doc.merge(part);
    }
    doc.merge(OpsDoc::openapi());
    doc.to_pretty_json().unwrap_or_default()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Dealwatch API", description = "Deal-risk scores, explained; pipeline metrics; alert settings; models."),
    paths(score_deal, get_deal, high_risk, pipeline_metrics, ask, configure_alerts, list_alerts, alert_feedback, get_tuning, set_tuning,
        get_routes, set_routes, alert_effectiveness, model_performance, train_model, slack_install_link),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Health, readiness and metrics: last in the document.
#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
struct OpsDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}
