//! `/v1/pipeline/metrics` and `/v1/ask`: the team's pipeline in figures and in words.

use crate::error::{ApiError, ErrorBody};
use crate::tenants::{Scope, TenantEngine, scope_of};
use crate::{AppState, Caller};
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::NaiveDate;
use engine::asof::{Status, View, status};
use engine::domain::RiskCategory;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::{ApiResult, Audit, audit, checked_as_of, engine_for, parse_json};

// ---------------------------------------------------------------------------------------------
// GET /v1/pipeline/metrics

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendIndicators {
    pub win_rate_change_7d: Option<f64>,
    pub avg_cycle_change_7d: Option<f64>,
    pub open_deals_change_7d: i64,
    pub risk_adjusted_value_change_7d: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineMetrics {
    pub tenant_id: String,
    pub pipeline_value: f64,
    pub risk_adjusted_value: Option<f64>,
    pub optimism_gap: Option<f64>,
    pub optimism_gap_pct: Option<f64>,
    /// Deals closed in the last 365 days: won / closed, in percent.
    pub win_rate_pct: Option<f64>,
    pub avg_sales_cycle_days: Option<f64>,
    pub total_open_deals: usize,
    pub risk_distribution: BTreeMap<String, usize>,
    pub trend_indicators: TrendIndicators,
    pub model_version: Option<String>,
    pub as_of: NaiveDate,
}

/// Pipeline figures on one date, for the deals in scope.
pub(super) struct Snapshot {
    pub(super) open: usize,
    pub(super) value: f64,
    pub(super) risk_adjusted: Option<f64>,
    pub(super) distribution: BTreeMap<String, usize>,
    pub(super) win_rate: Option<f64>,
    pub(super) cycle: Option<f64>,
}

pub(super) fn snapshot(engine: &TenantEngine, state: &AppState, scope: &Scope, date: NaiveDate) -> Snapshot {
    let dataset = &engine.dataset;
    let view = View::new(dataset, Some(date));
    let owner_col = dataset.schema.owner_column();
    let in_scope = |i: usize| scope.allows(owner_col.and_then(|c| dataset.cat_name(c, dataset.deals[i].cats[c])));
    let open: Vec<usize> = view.open.iter().copied().filter(|&i| in_scope(i)).collect();
    let value: f64 = open.iter().filter_map(|&i| dataset.deals[i].amount).map(engine::domain::Amount::get).sum();
    let (mut risk_adjusted, mut distribution) = (None, BTreeMap::new());
    if let Some(p_loss) = engine.open_risk(date, &state.texts) {
        let mut adjusted = 0.0;
        for &i in &open {
            let p = p_loss[i];
            adjusted += dataset.deals[i].amount.map_or(0.0, |a| a.get() * (1.0 - p));
            let category = RiskCategory::from_score(engine::domain::risk_score(p));
            *distribution.entry(category.as_str().to_owned()).or_insert(0) += 1;
        }
        risk_adjusted = Some(adjusted);
    }
    let year_ago = date - chrono::Duration::days(365);
    let recent: Vec<usize> = view
        .closed
        .iter()
        .copied()
        .filter(|&i| in_scope(i) && dataset.deals[i].closed.is_some_and(|c| c > year_ago))
        .collect();
    let won = recent.iter().filter(|&&i| status(&dataset.deals[i], Some(date)) == Status::Won).count();
    let win_rate = (!recent.is_empty()).then(|| 100.0 * won as f64 / recent.len() as f64);
    let cycles: Vec<f64> = recent.iter().filter_map(|&i| dataset.deals[i].cycle_days()).map(|d| d as f64).collect();
    let cycle = (!cycles.is_empty()).then(|| cycles.iter().sum::<f64>() / cycles.len() as f64);
    Snapshot { open: open.len(), value, risk_adjusted, distribution, win_rate, cycle }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[utoipa::path(get, path = "/v1/pipeline/metrics", tag = "pipeline",
    responses((status = 200, body = PipelineMetrics), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pipeline_metrics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<PipelineMetrics>> {
    let engine = engine_for(&state, &caller).await?;
    let scope = scope_of(state.store.as_ref(), &caller.tenant, &caller.claims).await?;
    let as_of = engine.as_of;
    let model_version = engine.model.as_ref().map(|m| m.version.clone());
    let state2 = state.clone();
    let (now, week_ago) = tokio::task::spawn_blocking(move || {
        let now = snapshot(&engine, &state2, &scope, as_of);
        let before = snapshot(&engine, &state2, &scope, as_of - chrono::Duration::days(7));
        (now, before)
    })
    .await
    .map_err(ApiError::internal)?;
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| round1(a - b));
    let gap = now.risk_adjusted.map(|r| now.value - r);
    Ok(Json(PipelineMetrics {
        tenant_id: caller.tenant.to_string(),
        pipeline_value: now.value,
        risk_adjusted_value: now.risk_adjusted.map(f64::round),
        optimism_gap: gap.map(f64::round),
        optimism_gap_pct: gap.filter(|_| now.value > 0.0).map(|g| round1(100.0 * g / now.value)),
        win_rate_pct: now.win_rate.map(round1),
        avg_sales_cycle_days: now.cycle.map(round1),
        total_open_deals: now.open,
        risk_distribution: now.distribution,
        trend_indicators: TrendIndicators {
            win_rate_change_7d: diff(now.win_rate, week_ago.win_rate),
            avg_cycle_change_7d: diff(now.cycle, week_ago.cycle),
            open_deals_change_7d: now.open as i64 - week_ago.open as i64,
            risk_adjusted_value_change_7d: diff(now.risk_adjusted, week_ago.risk_adjusted),
        },
        model_version,
        as_of,
    }))
}

// ---------------------------------------------------------------------------------------------
// POST /v1/ask

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The question, as a user would type it in chat.
    pub question: String,
    /// Answer as of this date (default today): periods like "this quarter" are relative to it.
    pub as_of: Option<NaiveDate>,
    /// Answer with this intent instead of the one read (what an ask-back button does).
    pub intent: Option<engine::question::Intent>,
}

/// A plain-English question, answered the way the chat bot answers it: the typed reading
/// (intent and slots), its confidence, "Understood: …", and the answer in words with the figures
/// behind it. A rep asking about another rep's deals gets a refusal in `answer`.
#[utoipa::path(post, path = "/v1/ask", tag = "pipeline", request_body = AskRequest,
    responses((status = 200, body = service::chat::ask::Asked), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn ask(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<service::chat::ask::Asked>> {
    let request: AskRequest = parse_json(&body)?;
    let question = request.question.trim();
    if question.is_empty() {
        return Err(ApiError::validation("question", "required", "Missing required field: question"));
    }
    if question.chars().count() > 1000 {
        return Err(ApiError::validation("question", "max_length", "question is over 1,000 characters"));
    }
    let scope = scope_of(state.store.as_ref(), &caller.tenant, &caller.claims).await?;
    let users = state.store.users(&caller.tenant).await?;
    let user = users
        .into_iter()
        .find(|u| u.user_id == caller.claims.sub)
        .unwrap_or_else(|| store::User::named(&caller.claims.sub, &caller.claims.sub, caller.claims.role));
    let as_of = checked_as_of(&state, request.as_of)?;
    let asked = service::chat::ask::ask(&state, &caller.tenant, &user, scope, question, as_of, request.intent, "api")
        .await
        .map_err(ApiError::internal)?;
    audit(
        &state,
        &caller,
        Audit::Read,
        "question.ask",
        None,
        Some(serde_json::json!({ "intent": asked.query.intent })),
    )
    .await?;
    Ok(Json(asked))
}
