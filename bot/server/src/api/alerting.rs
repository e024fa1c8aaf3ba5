//! `/v1/alerts`: a user's alert settings, their alerts and the clicks on them, the tenant's
//! tuned thresholds, routes and alert effectiveness.

use crate::error::{ApiError, ErrorBody};
use crate::{AppState, Caller};
use alerts::settings::AlertSettings;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use engine::domain::Outcome;
use serde::{Deserialize, Serialize};
use service::feedback::{Click, Judged, give_feedback};
use service::preferences::update_settings;
use store::Role;
use utoipa::ToSchema;

use super::{ApiResult, Audit, audit, parse_json, require_admin, today};

// ---------------------------------------------------------------------------------------------
// POST /v1/alerts/configure

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigureResponse {
    pub user_id: String,
    pub settings_updated: bool,
    pub effective_at: DateTime<Utc>,
    pub settings: AlertSettings,
}

#[utoipa::path(post, path = "/v1/alerts/configure", tag = "alerts", request_body = AlertSettings,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = ConfigureResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn configure_alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<ConfigureResponse>> {
    let update: AlertSettings = parse_json(&body)?;
    let user = caller.claims.sub.as_str();
    let (settings, now) = update_settings(&state, &caller.tenant, user, update).await?;
    Ok(Json(ConfigureResponse { user_id: user.to_owned(), settings_updated: true, effective_at: now, settings }))
}

// ---------------------------------------------------------------------------------------------
// Alerts: the caller's, feedback on them, tuning, effectiveness

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AlertListParams {
    /// pending, sending, sent, failed, escalated or suppressed.
    pub state: Option<String>,
    /// At most 200; default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub alert_id: String,
    pub kind: String,
    pub priority: String,
    pub subject: String,
    pub channel: String,
    pub state: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub score: Option<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertOut>,
}

#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertListParams),
    responses((status = 200, body = AlertList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AlertListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AlertList>> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "range", "limit must be between 1 and 200"));
    }
    let states = match params.state.as_deref() {
        None => Vec::new(),
        Some(s) => vec![alerts::AlertState::parse(s).ok_or_else(|| {
            ApiError::validation(
                "state",
                "enum",
                format!("unknown state {s:?}: use pending, sending, sent, failed, escalated or suppressed"),
            )
        })?],
    };
    let query = alerts::AlertQuery {
        states,
        recipient: Some(caller.claims.sub.clone()),
        limit: Some(limit),
        ..Default::default()
    };
    let alerts = state.store.alerts(&caller.tenant, &query).await?;
    Ok(Json(AlertList {
        alerts: alerts
            .into_iter()
            .map(|a| AlertOut {
                alert_id: a.alert_id,
                kind: a.kind.as_str().to_owned(),
                priority: a.priority.as_str().to_owned(),
                subject: a.subject,
                channel: a.channel,
                state: a.state.as_str().to_owned(),
                attempts: a.attempts,
                created_at: a.created_at,
                sent_at: a.sent_at,
                score: a.score,
            })
            .collect(),
    }))
}

#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// useful, not_relevant, false_alarm or snooze.
    pub action: alerts::feedback::Action,
    /// Why it was a false alarm (optional, at most 500 characters kept).
    #[serde(default)]
    pub reason: Option<String>,
    /// For snooze: 1d (default), 1w, or score (until the score moves by 10).
    #[serde(default)]
    pub snooze: Option<alerts::feedback::SnoozeFor>,
}

impl From<FeedbackRequest> for Click {
    fn from(r: FeedbackRequest) -> Click {
        Click { action: r.action, reason: r.reason, snooze: r.snooze }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackResponse {
    pub alert_id: String,
    /// False when this click was already recorded (a retry): nothing changed.
    pub recorded: bool,
    pub action: alerts::feedback::Action,
    pub snoozed_until: Option<DateTime<Utc>>,
    /// For a snooze until the score moves: the score it must move away from by 10.
    pub until_score_moves_from: Option<u8>,
    /// The tenant's threshold for this kind after the click, when feedback has tuned it.
    pub tuning: Option<alerts::feedback::Tuning>,
}

#[utoipa::path(post, path = "/v1/alerts/{alert_id}/feedback", tag = "alerts", params(("alert_id" = String, Path)),
    request_body = FeedbackRequest,
    responses((status = 200, body = FeedbackResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn alert_feedback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(alert_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<FeedbackResponse>> {
    use alerts::feedback::Action;
    let request: FeedbackRequest = parse_json(&body)?;
    if request.snooze.is_some() && request.action != Action::Snooze {
        return Err(ApiError::validation("snooze", "only_with_snooze", "snooze is only for action \"snooze\""));
    }
    let done =
        give_feedback(&state, &caller.tenant, &caller.claims.sub, caller.claims.role, &alert_id, &request.into())
            .await?;
    let Judged { given: feedback, recorded, tuning, .. } =
        done.ok_or_else(|| ApiError::NotFound(format!("no alert {alert_id}")))?;
    Ok(Json(FeedbackResponse {
        alert_id,
        recorded,
        action: feedback.action,
        snoozed_until: feedback.snooze_until_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
        until_score_moves_from: feedback.snooze_score,
        tuning,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TuningState {
    /// Thresholds that differ from the defaults, with who set them and why.
    pub tunings: Vec<alerts::feedback::Tuning>,
    pub default_critical_threshold: u8,
}

#[utoipa::path(get, path = "/v1/alerts/tuning", tag = "alerts",
    responses((status = 200, body = TuningState), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_tuning(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<TuningState>> {
    require_admin(&caller)?;
    Ok(Json(TuningState {
        tunings: state.store.tunings(&caller.tenant).await?,
        default_critical_threshold: engine::alerts::CriticalRule::default().threshold,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TuningRequest {
    /// The alert kind (critical_deal).
    pub kind: String,
    /// Pin this threshold (feedback no longer moves it); omit with reset.
    #[serde(default)]
    pub threshold: Option<u8>,
    /// Back to the default, and to tuning by feedback.
    #[serde(default)]
    pub reset: bool,
}

#[utoipa::path(post, path = "/v1/alerts/tuning", tag = "alerts", request_body = TuningRequest,
    responses((status = 200, body = TuningState), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_tuning(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<TuningState>> {
    require_admin(&caller)?;
    let request: TuningRequest = parse_json(&body)?;
    let kind = engine::alerts::AlertKind::parse(&request.kind)
        .filter(|k| *k == engine::alerts::AlertKind::CriticalDeal)
        .ok_or_else(|| {
            ApiError::validation(
                "kind",
                "enum",
                format!("{:?} has no threshold to tune: use critical_deal", request.kind),
            )
        })?;
    let tuning = match (request.threshold, request.reset) {
        (Some(_), true) | (None, false) => {
            return Err(ApiError::validation("threshold", "one_of", "give either threshold or reset: true"));
        }
        (Some(t), false) if !(51..=100).contains(&t) => {
            return Err(ApiError::validation(
                "threshold",
                "range",
                "threshold must be 51-100 (above it a score is critical)",
            ));
        }
        (Some(t), false) => Some(alerts::feedback::Tuning {
            kind,
            threshold: t,
            source: "admin".into(),
            reason: format!("pinned by {}", caller.claims.sub),
            updated_at: state.now(),
        }),
        (None, true) => None,
    };
    state.store.set_tuning(&caller.tenant, kind, tuning.as_ref()).await?;
    audit(
        &state,
        &caller,
        Audit::Change,
        "alerts.tuning",
        Some(kind.as_str()),
        Some(serde_json::json!({ "threshold": request.threshold, "reset": request.reset, "source": "admin" })),
    )
    .await?;
    get_tuning(State(state), Extension(caller)).await
}

#[utoipa::path(get, path = "/v1/alerts/routes", tag = "alerts",
    responses((status = 200, body = alerts::routes::AlertRoutes), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_routes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<alerts::routes::AlertRoutes>> {
    use alerts::routes::{AlertRoutes, SETTING};
    require_admin(&caller)?;
    Ok(Json(AlertRoutes::from_stored(state.store.tenant_setting(&caller.tenant, SETTING).await?)))
}

/// Replaces the tenant's shared destinations per alert kind (`{"routes": {}}` removes them all).
#[utoipa::path(put, path = "/v1/alerts/routes", tag = "alerts", request_body = alerts::routes::AlertRoutes,
    responses((status = 200, body = alerts::routes::AlertRoutes), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_routes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<alerts::routes::AlertRoutes>> {
    use alerts::routes::{AlertRoutes, SETTING};
    require_admin(&caller)?;
    let routes: AlertRoutes = parse_json(&body)?;
    routes.validate().map_err(ApiError::setting)?;
    check_destinations(&state, &caller.tenant, &routes).await?;
    let value = serde_json::to_value(&routes).map_err(|e| ApiError::Internal(e.into()))?;
    state.store.save_tenant_setting(&caller.tenant, SETTING, &value, &caller.claims.sub, state.now()).await?;
    audit(&state, &caller, Audit::Change, "alerts.routes", None, Some(value)).await?;
    Ok(Json(routes))
}

/// Every chat channel a route names must be the tenant's own: a Slack channel of the workspace
/// alerts are posted with, a Teams conversation or Discord channel of the tenant's organisation
/// or server. Email addresses and the log are the admin's to choose.
async fn check_destinations(
    state: &AppState,
    tenant: &store::TenantId,
    routes: &alerts::routes::AlertRoutes,
) -> ApiResult<()> {
    for (kind, route) in &routes.routes {
        for (i, target) in route.targets.iter().enumerate() {
            let refused = |why: String| ApiError::validation(format!("routes.{kind}.targets[{i}].to"), "owned", why);
            match state.transports.iter().find(|t| t.name() == target.channel) {
                Some(transport) => transport.owns_destination(tenant, &target.to).await.map_err(refused)?,
                // The outbox's own channels take any destination.
                None if ["email", "log"].contains(&target.channel.as_str()) => {}
                None => return Err(refused(format!("{} is not configured here", target.channel))),
            }
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/alerts/effectiveness", tag = "alerts",
    responses((status = 200, body = alerts::feedback::Effectiveness), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn alert_effectiveness(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<alerts::feedback::Effectiveness>> {
    if caller.claims.role == Role::Rep {
        return Err(ApiError::Forbidden("Access denied: alert effectiveness is for managers and admins".into()));
    }
    // Every alert and click of the tenant: computed at most once per EFFECTIVENESS_TTL per
    // tenant (one at a time), with the deals from the tenant's engine rather than the database.
    let mut kept = state.effectiveness.lock().await;
    if let Some((_, known)) = kept.get(&caller.tenant).filter(|(at, _)| at.elapsed() < EFFECTIVENESS_TTL) {
        return Ok(Json(known.clone()));
    }
    let alerts =
        state.store.alerts(&caller.tenant, &alerts::AlertQuery { limit: Some(u32::MAX), ..Default::default() }).await?;
    let feedback = state.store.feedback(&caller.tenant, DateTime::<Utc>::UNIX_EPOCH).await?;
    let deals: Vec<(String, Outcome, Option<NaiveDate>)> =
        match state.cache.get(&state.store, &caller.tenant, today(&state)).await? {
            Some(engine) => engine.dataset.deals.iter().map(|d| (d.id.to_string(), d.outcome, d.closed)).collect(),
            None => Vec::new(),
        };
    let computed = alerts::feedback::effectiveness(&alerts, &feedback, &deals);
    kept.insert(caller.tenant.clone(), (std::time::Instant::now(), computed.clone()));
    Ok(Json(computed))
}

/// How long a tenant's alert effectiveness is served before it is computed again.
const EFFECTIVENESS_TTL: std::time::Duration = std::time::Duration::from_secs(300);
