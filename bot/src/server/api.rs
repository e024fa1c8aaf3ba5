//! REST API v1 (seed 002 "API Design") and the public endpoints.
//!
//! Handlers parse input themselves, so a bad payload gets a 422 naming the field
//! (`details.field`). Reads are limited to what the caller may see: a rep their own deals, a
//! manager their team's, an admin everything in the tenant; another tenant's data does not exist
//! for the caller (404, never 403, so ids cannot be probed). Reads by id, admin actions and
//! setting changes are written to the audit log.

use std::collections::{BTreeMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use engine::asof::{Status, View, status};
use engine::domain::{Outcome, RiskCategory};
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use engine::record::DealRecord;
use engine::score::{RiskScore, Scorer};
use serde::{Deserialize, Serialize};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::tenants::{Scope, TenantEngine, scope_of};
use super::{AppState, Caller};
use crate::alerts::settings::AlertSettings;
use store::{AuditEntry, CurrentScore, HighRiskQuery, HistoryEntry, RiskPage, Role, SortBy};

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

type ApiResult<T> = Result<T, ApiError>;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// An `as_of` a client sent (default today): a date from 1900 to a year ahead. Questions about
/// the past are answered; a date past the data or beyond what chrono can count back from is not.
fn checked_as_of(as_of: Option<NaiveDate>) -> ApiResult<NaiveDate> {
    let today = today();
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
enum Audit {
    Read,
    Change,
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    kind: Audit,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> ApiResult<()> {
    match kind {
        Audit::Read => {
            let entry = audit_entry(&caller.claims.sub, action, target, details);
            state.audit.read(&caller.tenant, entry).await?;
        }
        Audit::Change => change_log(state, &caller.tenant, &caller.claims.sub, action, target, details).await?,
    }
    Ok(())
}

/// An audit entry by `actor` now, with the request's id.
fn audit_entry(actor: &str, action: &str, target: Option<&str>, details: Option<serde_json::Value>) -> AuditEntry {
    AuditEntry {
        at: Utc::now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        details,
        request_id: super::error::REQUEST_ID.try_with(Clone::clone).ok(),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
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

async fn engine_for(state: &AppState, caller: &Caller) -> ApiResult<std::sync::Arc<TenantEngine>> {
    state
        .cache
        .get(&state.store, &caller.tenant, today())
        .await?
        .ok_or_else(|| ApiError::Unavailable("this tenant has no deals yet: import some first".into()))
}

fn model_of(engine: &TenantEngine) -> ApiResult<&TrainedModel> {
    engine
        .model
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no trained model for this tenant yet: POST /v1/models/train".into()))
}

// ---------------------------------------------------------------------------------------------
// POST /v1/deals/score

/// A deal to score: only `deal_id` scores the stored deal; more fields score the deal as sent.
/// Seed 002's names are accepted (`deal_amount`, `deal_stage`, `rep_id`), and top-level fields
/// named like the tenant's segments or numeric features (`"industry": "EdTech"`) are read as
/// those.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScoreRequest {
    pub deal_id: String,
    #[serde(default, alias = "company", alias = "account")]
    pub name: Option<String>,
    #[serde(default, alias = "rep_id")]
    pub owner: Option<String>,
    #[serde(default, alias = "deal_amount")]
    pub amount: Option<f64>,
    #[serde(default)]
    pub created_date: Option<NaiveDate>,
    #[serde(default, alias = "deal_stage")]
    pub stage: Option<String>,
    #[serde(default)]
    pub segments: BTreeMap<String, String>,
    #[serde(default)]
    pub numeric: BTreeMap<String, f64>,
    #[serde(default)]
    pub stage_entered: BTreeMap<String, NaiveDate>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ScoreRequest {
    fn is_id_only(&self) -> bool {
        self.name.is_none()
            && self.owner.is_none()
            && self.amount.is_none()
            && self.created_date.is_none()
            && self.stage.is_none()
            && self.segments.is_empty()
            && self.numeric.is_empty()
            && self.stage_entered.is_empty()
            && self.extra.is_empty()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreResponse {
    #[serde(flatten)]
    pub score: RiskScore,
    pub scored_at: DateTime<Utc>,
    /// Payload fields that are not the tenant's and were not used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_fields: Vec<String>,
}

#[utoipa::path(post, path = "/v1/deals/score", tag = "deals", request_body = ScoreRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first response")),
    responses(
        (status = 200, description = "The risk card", body = ScoreResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn score_deal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<ScoreResponse>> {
    let request: ScoreRequest = parse_json(&body)?;
    let deal_id = request.deal_id.trim().to_owned();
    if deal_id.is_empty() {
        return Err(ApiError::validation("deal_id", "required", "Missing required field: deal_id"));
    }
    let engine = engine_for(&state, &caller).await?;
    let model = model_of(&engine)?;
    let scope = scope_of(state.store.as_ref(), &caller.tenant, &caller.claims).await?;
    let as_of = engine.as_of;
    let stored = engine.index.get(&deal_id).copied();
    // A stored deal may only be scored by someone who may see it, with or without a payload.
    if let Some(i) = stored {
        let owner = engine
            .dataset
            .schema
            .owner_column()
            .and_then(|c| engine.dataset.cat_name(c, engine.dataset.deals[i].cats[c]));
        if !scope.allows(owner) {
            return Err(ApiError::Forbidden(format!(
                "Access denied: deal {deal_id} belongs to another rep's pipeline"
            )));
        }
    }
    // Similar won deals come from what the caller may see, like everything else on the card.
    let filter = scope.deal_filter(&engine.dataset);
    let keep = |d: &engine::dataset::Deal| filter.as_ref().is_none_or(|f| f.keeps(d));
    let (card, ignored) = if request.is_id_only() {
        let i = stored.ok_or_else(|| ApiError::NotFound(format!("no deal {deal_id}")))?;
        let deal = &engine.dataset.deals[i];
        match status(deal, Some(as_of)) {
            Status::Open => {}
            Status::Future => return Err(ApiError::NotFound(format!("no deal {deal_id}"))),
            closed => {
                return Err(ApiError::validation(
                    "deal_id",
                    "open",
                    format!(
                        "deal {deal_id} is already {}; scores are for open deals",
                        if closed == Status::Won { "won" } else { "lost" }
                    ),
                ));
            }
        }
        let scorer =
            Scorer::with_similar(model, &engine.dataset, Some(as_of), &state.texts, &engine.similar, &engine.dataset)
                .similar_among(&keep);
        let mut work = scorer.work();
        (scorer.score(i, &mut work), Vec::new())
    } else {
        let (record, ignored) = payload_record(&request, &engine, &deal_id, as_of)?;
        if !scope.allows(record.owner.as_deref()) && !matches!(scope, Scope::All) {
            return Err(ApiError::Forbidden("Access denied: reps may score only their own deals".into()));
        }
        let mut single = engine::dataset::Dataset { schema: engine.dataset.schema.clone(), deals: Vec::new() };
        single.push_record(&record).map_err(|e| ApiError::validation("deal", "valid", e.to_string()))?;
        let scorer = Scorer::with_similar(model, &single, Some(as_of), &state.texts, &engine.similar, &engine.dataset)
            .similar_among(&keep);
        let mut work = scorer.work();
        (scorer.score(0, &mut work), ignored)
    };
    audit(&state, &caller, Audit::Read, "deal.score", Some(&deal_id), None).await?;
    metrics::counter!("deals_scored_total", "path" => "api").increment(1);
    Ok(Json(ScoreResponse { score: card, scored_at: Utc::now(), ignored_fields: ignored }))
}

/// The payload as a deal record in the tenant's columns, and the fields it did not use.
fn payload_record(
    request: &ScoreRequest,
    engine: &TenantEngine,
    deal_id: &str,
    as_of: NaiveDate,
) -> ApiResult<(DealRecord, Vec<String>)> {
    let schema = &engine.dataset.schema;
    if let Some(amount) = request.amount {
        if !(amount.is_finite() && amount > 0.0) {
            return Err(ApiError::validation(
                "amount",
                "positive",
                format!("amount must be greater than 0, not {amount}"),
            ));
        }
    } else if schema.has_amount {
        return Err(ApiError::validation("amount", "required", "Missing required field: amount (or deal_amount)"));
    }
    if request.created_date.is_some_and(|c| c > as_of) {
        return Err(ApiError::validation("created_date", "not_future", "created_date is in the future"));
    }
    let mut record = DealRecord {
        id: deal_id.to_owned(),
        name: request.name.clone().unwrap_or_default(),
        owner: request.owner.clone(),
        created: request.created_date,
        closed: None,
        stage: request.stage.clone(),
        amount: request.amount,
        outcome: Outcome::Open,
        segments: request.segments.clone(),
        numeric: request.numeric.clone(),
        stage_entered: request.stage_entered.clone(),
    };
    let categorical: HashSet<&str> = schema.categorical.iter().map(|c| c.name.as_str()).collect();
    let mut ignored = Vec::new();
    for (key, value) in &request.extra {
        // Seed 002 calls the product dimension product_type.
        let name = if key == "product_type" && categorical.contains("product") { "product" } else { key.as_str() };
        if categorical.contains(name) {
            let text = value
                .as_str()
                .ok_or_else(|| ApiError::validation(key.clone(), "type", format!("{key} must be a string")))?;
            record.segments.insert(name.to_owned(), text.to_owned());
        } else if schema.numeric.iter().any(|n| n == name) {
            let number = value
                .as_f64()
                .ok_or_else(|| ApiError::validation(key.clone(), "type", format!("{key} must be a number")))?;
            record.numeric.insert(name.to_owned(), number);
        } else {
            ignored.push(key.clone());
        }
    }
    if let Some(unknown) = record.segments.keys().find(|k| !categorical.contains(k.as_str())) {
        return Err(ApiError::validation(
            format!("segments.{unknown}"),
            "known",
            format!(
                "this tenant has no segment {unknown:?}; its segments are {}",
                schema.categorical.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    // A stage history from the store completes the payload when it lacks one.
    if record.stage_entered.is_empty()
        && let Some(&i) = engine.index.get(deal_id)
    {
        let stored = DealRecord::of(&engine.dataset, &engine.dataset.deals[i]);
        record.stage_entered = stored.stage_entered;
    }
    Ok((record, ignored))
}

// ---------------------------------------------------------------------------------------------
// GET /v1/deals/{deal_id}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealResponse {
    pub deal: DealRecord,
    #[schema(value_type = Option<Object>)]
    pub score: Option<CurrentScore>,
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<HistoryEntry>,
    pub updated_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/v1/deals/{deal_id}", tag = "deals", params(("deal_id" = String, Path)),
    responses((status = 200, body = DealResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_deal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(deal_id): Path<String>,
) -> ApiResult<Json<DealResponse>> {
    let stored = state
        .store
        .deal(&caller.tenant, &deal_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no deal {deal_id}")))?;
    let scope = scope_of(state.store.as_ref(), &caller.tenant, &caller.claims).await?;
    if !scope.allows(stored.record.owner.as_deref()) {
        return Err(ApiError::Forbidden(format!("Access denied: deal {deal_id} belongs to another rep's pipeline")));
    }
    let history = state.store.deal_history(&caller.tenant, &deal_id).await?;
    audit(&state, &caller, Audit::Read, "deal.read", Some(&deal_id), None).await?;
    Ok(Json(DealResponse { deal: stored.record, score: stored.score, history, updated_at: stored.updated_at }))
}

// ---------------------------------------------------------------------------------------------
// GET /v1/deals/high-risk

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HighRiskParams {
    /// high, critical, both (default), or a comma-separated list of categories.
    pub risk_category: Option<String>,
    /// At most 200; default 50.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// risk_score (default), amount or age.
    pub sort_by: Option<String>,
    /// desc (default) or asc.
    pub order: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RiskyDealOut {
    pub deal_id: String,
    pub company: String,
    pub amount: Option<f64>,
    pub risk_score: u8,
    pub risk_category: RiskCategory,
    pub rep_name: Option<String>,
    pub rep_id: Option<String>,
    pub days_in_pipeline: Option<i64>,
    pub current_stage: Option<String>,
    pub last_activity: DateTime<Utc>,
    pub scored_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    pub total_count: u64,
    pub limit: u32,
    pub offset: u32,
    pub has_more: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RiskSummary {
    pub total_at_risk_revenue: f64,
    pub average_risk_score: Option<f64>,
    pub deals_by_category: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HighRiskResponse {
    pub deals: Vec<RiskyDealOut>,
    pub pagination: Pagination,
    pub summary: RiskSummary,
}

#[utoipa::path(get, path = "/v1/deals/high-risk", tag = "deals", params(HighRiskParams),
    responses((status = 200, body = HighRiskResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn high_risk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<HighRiskParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<HighRiskResponse>> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let categories = match params.risk_category.as_deref().map(str::trim) {
        None | Some("" | "both") => vec![RiskCategory::High, RiskCategory::Critical],
        Some(list) => list
            .split(',')
            .map(|c| {
                RiskCategory::parse(c).ok_or_else(|| {
                    ApiError::validation(
                        "risk_category",
                        "enum",
                        format!("unknown risk category {c:?}: use low, medium, high, critical or both"),
                    )
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
    };
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "range", "limit must be between 1 and 200"));
    }
    let sort_by = match params.sort_by.as_deref() {
        None | Some("risk_score") => SortBy::RiskScore,
        Some("amount") => SortBy::Amount,
        Some("age") => SortBy::Age,
        Some(other) => {
            return Err(ApiError::validation(
                "sort_by",
                "enum",
                format!("unknown sort_by {other:?}: use risk_score, amount or age"),
            ));
        }
    };
    let descending = match params.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(ApiError::validation("order", "enum", format!("unknown order {other:?}: use asc or desc")));
        }
    };
    let scope = scope_of(state.store.as_ref(), &caller.tenant, &caller.claims).await?;
    let offset = params.offset.unwrap_or(0);
    let query = HighRiskQuery { categories, owners: scope.owners(), sort_by, descending, limit, offset };
    let board = state.cache.board(&state.store, &caller.tenant).await?;
    let page = RiskPage::select(&board.rows, &query);
    let users = state.store.users(&caller.tenant).await?;
    let rep_name = |owner: &Option<String>| {
        owner
            .as_ref()
            .and_then(|o| users.iter().find(|u| u.crm_owner.as_deref() == Some(o.as_str())).map(|u| u.name.clone()))
    };
    let today = today();
    let deals = page
        .deals
        .into_iter()
        .map(|d| RiskyDealOut {
            rep_name: rep_name(&d.rep_id),
            days_in_pipeline: d.created_date.map(|c| (today - c).num_days()),
            deal_id: d.deal_id,
            company: d.company,
            amount: d.amount,
            risk_score: d.risk_score,
            risk_category: d.risk_category,
            rep_id: d.rep_id,
            current_stage: d.current_stage,
            last_activity: d.updated_at,
            scored_at: d.scored_at,
        })
        .collect();
    Ok(Json(HighRiskResponse {
        deals,
        pagination: Pagination {
            total_count: page.total_count,
            limit,
            offset,
            has_more: u64::from(offset) + u64::from(limit) < page.total_count,
        },
        summary: RiskSummary {
            total_at_risk_revenue: page.total_at_risk_revenue,
            average_risk_score: page.average_risk_score.map(|a| (a * 10.0).round() / 10.0),
            deals_by_category: page.deals_by_category,
        },
    }))
}

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
struct Snapshot {
    open: usize,
    value: f64,
    risk_adjusted: Option<f64>,
    distribution: BTreeMap<String, usize>,
    win_rate: Option<f64>,
    cycle: Option<f64>,
}

fn snapshot(engine: &TenantEngine, state: &AppState, scope: &Scope, date: NaiveDate) -> Snapshot {
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
// POST /v1/alerts/configure

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigureResponse {
    pub user_id: String,
    pub settings_updated: bool,
    pub effective_at: DateTime<Utc>,
    pub settings: AlertSettings,
}

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
    responses((status = 200, body = crate::chat::ask::Asked), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn ask(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<crate::chat::ask::Asked>> {
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
    let as_of = checked_as_of(request.as_of)?;
    let asked = crate::chat::ask::ask(&state, &caller.tenant, &user, scope, question, as_of, request.intent, "api")
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

/// Validates `update` and merges it into `user`'s stored alert settings (sections not sent keep
/// their stored values), stores them and logs the change: the REST API and the chat settings
/// (modal, mute, unmute) change settings through here. Returns the settings now in force.
pub(crate) async fn update_settings(
    state: &AppState,
    tenant: &store::TenantId,
    user: &str,
    update: AlertSettings,
) -> ApiResult<(AlertSettings, DateTime<Utc>)> {
    update.validate().map_err(ApiError::setting)?;
    let mut settings = AlertSettings::from_stored(state.store.alert_settings(tenant, user).await?);
    settings.critical_deals = update.critical_deals.or(settings.critical_deals);
    settings.daily_digest = update.daily_digest.or(settings.daily_digest);
    settings.quiet_hours = update.quiet_hours.or(settings.quiet_hours);
    settings.muted = update.muted.or(settings.muted);
    let now = Utc::now();
    let value = serde_json::to_value(&settings)?;
    state.store.save_alert_settings(tenant, user, &value, now).await?;
    change_log(state, tenant, user, "settings.update", Some(user), Some(value)).await?;
    Ok((settings, now))
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
    use crate::alerts::feedback::Action;
    let request: FeedbackRequest = parse_json(&body)?;
    if request.snooze.is_some() && request.action != Action::Snooze {
        return Err(ApiError::validation("snooze", "only_with_snooze", "snooze is only for action \"snooze\""));
    }
    let done =
        give_feedback(&state, &caller.tenant, &caller.claims.sub, caller.claims.role, &alert_id, &request).await?;
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

/// A click on an alert, as stored.
#[derive(Debug, Clone)]
pub struct Judged {
    pub alert: alerts::Alert,
    pub given: alerts::feedback::Feedback,
    /// False when this click was already recorded (a retry): nothing changed.
    pub recorded: bool,
    /// The tenant's threshold for the kind after the click, when feedback has tuned it.
    pub tuning: Option<alerts::feedback::Tuning>,
}

/// Records `actor`'s click on `alert_id` (from the REST API or a chat button): checks they may
/// judge it, stores it once, logs it and retunes the tenant's threshold. `None`: no such alert
/// for this actor (someone else's alert does not exist for them). An alert in a shared channel
/// belongs to the managers and admins who read the channel, and a click on it speaks for the
/// channel (a snooze silences the channel; the same alert is judged once); the audit log keeps
/// who clicked.
pub(crate) async fn give_feedback(
    state: &AppState,
    tenant: &store::TenantId,
    actor: &str,
    role: Role,
    alert_id: &str,
    request: &FeedbackRequest,
) -> ApiResult<Option<Judged>> {
    use crate::alerts::feedback::Action;
    use crate::alerts::routes::is_shared;
    let query = alerts::AlertQuery { alert_id: Some(alert_id.to_owned()), ..Default::default() };
    let Some(alert) =
        state.store.alerts(tenant, &query).await?.into_iter().next().filter(|a| {
            a.recipient == actor || role == Role::Admin || (is_shared(&a.recipient) && role == Role::Manager)
        })
    else {
        return Ok(None);
    };
    let now = Utc::now();
    let judge = if is_shared(&alert.recipient) { alert.recipient.as_str() } else { actor };
    let given = alerts::feedback::on_alert(&alert, judge, request.action, request.reason.clone(), request.snooze, now);
    let recorded = state.store.record_feedback(tenant, &given).await?;
    let mut tuning = None;
    if recorded {
        let details = serde_json::json!({ "action": given.action, "reason": given.reason });
        change_log(state, tenant, actor, "alert.feedback", Some(alert_id), Some(details)).await?;
        if alert.kind == engine::alerts::AlertKind::CriticalDeal && request.action != Action::Snooze {
            tuning = retune(state, tenant, actor, alert.kind, now).await?;
        }
    }
    Ok(Some(Judged { alert, given, recorded, tuning }))
}

/// Records `user`'s click on the risk card of `deal_id`: stored once like a click on an alert,
/// logged, and a judgement retunes the critical-deal threshold. Only a card the user could have
/// been shown counts: an open deal of theirs to see, judged at the score we give it now (a
/// button's value is the client's to change). `None`: not such a card.
pub(crate) async fn give_card_feedback(
    state: &AppState,
    tenant: &store::TenantId,
    user: &store::User,
    deal_id: &str,
    request: &FeedbackRequest,
) -> ApiResult<Option<(alerts::feedback::Feedback, bool, Option<alerts::feedback::Tuning>)>> {
    use crate::alerts::feedback::Action;
    let Some(engine) = state.cache.get(&state.store, tenant, today()).await? else { return Ok(None) };
    let Some(&i) = engine.index.get(deal_id) else { return Ok(None) };
    let deal = &engine.dataset.deals[i];
    let owner = engine.dataset.schema.owner_column().and_then(|c| engine.dataset.cat_name(c, deal.cats[c]));
    let users = state.store.users(tenant).await?;
    let scope = Scope::for_user(&users, &user.user_id, user.role);
    if !scope.allows(owner) || status(deal, Some(engine.as_of)) != Status::Open {
        return Ok(None);
    }
    let Some(p_loss) = engine.open_risk(engine.as_of, &state.texts).map(|risk| risk[i]) else { return Ok(None) };
    let score = engine::domain::risk_score(p_loss);
    let (actor, now) = (user.user_id.as_str(), Utc::now());
    let given =
        alerts::feedback::on_card(deal_id, score, actor, request.action, request.reason.clone(), request.snooze, now);
    let recorded = state.store.record_feedback(tenant, &given).await?;
    let mut tuning = None;
    if recorded {
        let details =
            serde_json::json!({ "action": given.action, "reason": given.reason, "score": score, "on": "risk_card" });
        change_log(state, tenant, actor, "deal.feedback", Some(deal_id), Some(details)).await?;
        if request.action != Action::Snooze {
            tuning = retune(state, tenant, actor, engine::alerts::AlertKind::CriticalDeal, now).await?;
        }
    }
    Ok(Some((given, recorded, tuning)))
}

/// Writes a change to the audit log before the request answers.
async fn change_log(
    state: &AppState,
    tenant: &store::TenantId,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> ApiResult<()> {
    Ok(state.audit.now(tenant, audit_entry(actor, action, target, details)).await?)
}

/// Recomputes the tenant's threshold for `kind` from its latest judgements, unless an admin
/// pinned it; a change is logged in the audit log with its reason.
async fn retune(
    state: &AppState,
    tenant: &store::TenantId,
    actor: &str,
    kind: engine::alerts::AlertKind,
    now: DateTime<Utc>,
) -> ApiResult<Option<alerts::feedback::Tuning>> {
    use crate::alerts::feedback::{Tuning, counts};
    let current = state.store.tunings(tenant).await?.into_iter().find(|t| t.kind == kind);
    if current.as_ref().is_some_and(|t| t.source == "admin") {
        return Ok(current);
    }
    let feedback = state.store.feedback(tenant, now - chrono::Duration::days(90)).await?;
    let base = engine::alerts::CriticalRule::default().threshold;
    let (threshold, reason) = engine::alerts::tuned_threshold(base, counts(&feedback, kind, 30));
    let before = current.as_ref().map_or(base, |t| t.threshold);
    if threshold == before {
        return Ok(current);
    }
    let tuned = (threshold != base).then(|| Tuning {
        kind,
        threshold,
        source: "feedback".into(),
        reason: reason.clone(),
        updated_at: now,
    });
    state.store.set_tuning(tenant, kind, tuned.as_ref()).await?;
    let details = serde_json::json!({ "from": before, "to": threshold, "source": "feedback", "reason": reason });
    change_log(state, tenant, actor, "alerts.tuning", Some(kind.as_str()), Some(details)).await?;
    Ok(tuned)
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
            updated_at: Utc::now(),
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
    use crate::alerts::routes::{AlertRoutes, SETTING};
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
    use crate::alerts::routes::{AlertRoutes, SETTING};
    require_admin(&caller)?;
    let routes: AlertRoutes = parse_json(&body)?;
    routes.validate().map_err(ApiError::setting)?;
    check_destinations(&state, &caller.tenant, &routes).await?;
    let value = serde_json::to_value(&routes).map_err(|e| ApiError::Internal(e.into()))?;
    state.store.save_tenant_setting(&caller.tenant, SETTING, &value, &caller.claims.sub, Utc::now()).await?;
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
            match target.channel.as_str() {
                "slack" => crate::slack::owns_channel(state, tenant).await.map_err(refused)?,
                "teams" | "discord" => {
                    let Some(transport) = state.transports.iter().find(|t| t.name() == target.channel) else {
                        return Err(refused(format!("{} is not configured here", target.channel)));
                    };
                    transport.owns_destination(tenant, &target.to).await.map_err(refused)?;
                }
                _ => {}
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
        match state.cache.get(&state.store, &caller.tenant, today()).await? {
            Some(engine) => engine.dataset.deals.iter().map(|d| (d.id.to_string(), d.outcome, d.closed)).collect(),
            None => Vec::new(),
        };
    let computed = alerts::feedback::effectiveness(&alerts, &feedback, &deals);
    kept.insert(caller.tenant.clone(), (std::time::Instant::now(), computed.clone()));
    Ok(Json(computed))
}

/// How long a tenant's alert effectiveness is served before it is computed again.
const EFFECTIVENESS_TTL: std::time::Duration = std::time::Duration::from_secs(300);

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
    let installer = state.slack.installer.as_ref().ok_or_else(|| {
        ApiError::NotFound("installing through Slack is not configured: set [slack] client_id, client_secret, redirect_url and token_key".into())
    })?;
    let (url, expires_at) = crate::slack::install::install_link(installer, &caller.tenant, &caller.claims.sub);
    audit(&state, &caller, Audit::Change, "slack.install_link", None, None).await?;
    Ok(Json(InstallLink { url, expires_at }))
}

// ---------------------------------------------------------------------------------------------
// Models (admin)

fn require_admin(caller: &Caller) -> ApiResult<()> {
    if caller.claims.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("Access denied: this endpoint is for tenant admins".into()))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelSummary {
    pub version: String,
    pub kind: String,
    pub status: String,
    pub trained_at: DateTime<Utc>,
    pub n_train: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelPerformance {
    pub tenant_id: String,
    pub model_version: Option<String>,
    pub deployed_at: Option<DateTime<Utc>>,
    /// Out-of-fold quality on the training deals.
    #[schema(value_type = Option<Object>)]
    pub performance_metrics: Option<serde_json::Value>,
    /// Share of open deals in each risk category now.
    pub prediction_distribution: BTreeMap<String, f64>,
    pub last_retrained: Option<DateTime<Utc>>,
    pub models: Vec<ModelSummary>,
}

#[utoipa::path(get, path = "/v1/models/performance", tag = "models",
    responses((status = 200, body = ModelPerformance), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn model_performance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<ModelPerformance>> {
    require_admin(&caller)?;
    let models = state.store.models(&caller.tenant).await?;
    let champion = models.iter().find(|m| m.status == store::ModelStatus::Champion);
    let mut distribution = BTreeMap::new();
    if let Some(engine) = state.cache.get(&state.store, &caller.tenant, today()).await? {
        let snap = snapshot(&engine, &state, &Scope::All, engine.as_of);
        let total = snap.distribution.values().sum::<usize>().max(1) as f64;
        distribution =
            snap.distribution.into_iter().map(|(k, v)| (k, (1000.0 * v as f64 / total).round() / 1000.0)).collect();
    }
    audit(&state, &caller, Audit::Read, "model.performance.read", champion.map(|c| c.version.as_str()), None).await?;
    Ok(Json(ModelPerformance {
        tenant_id: caller.tenant.to_string(),
        model_version: champion.map(|c| c.version.clone()),
        deployed_at: champion.map(|c| c.trained_at),
        performance_metrics: champion.and_then(|c| c.metrics.clone()),
        prediction_distribution: distribution,
        last_retrained: models.iter().map(|m| m.trained_at).max(),
        models: models
            .iter()
            .map(|m| ModelSummary {
                version: m.version.clone(),
                kind: m.kind.clone(),
                status: m.status.as_str().to_owned(),
                trained_at: m.trained_at,
                n_train: m.n_train,
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// additive (default), logistic or segment-rates.
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrainResponse {
    pub version: String,
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub n_train: usize,
    pub cold_start: bool,
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<serde_json::Value>,
    pub warnings: Vec<String>,
}

#[utoipa::path(post, path = "/v1/models/train", tag = "models", request_body = Option<TrainRequest>,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = TrainResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn train_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<TrainResponse>> {
    require_admin(&caller)?;
    let request: TrainRequest =
        if body.iter().all(u8::is_ascii_whitespace) { TrainRequest::default() } else { parse_json(&body)? };
    let kind = match request.model.as_deref() {
        None => ModelKind::Additive,
        Some(name) => ModelKind::parse(name).ok_or_else(|| {
            ApiError::validation(
                "model",
                "enum",
                format!("unknown model {name:?}: use additive, logistic or segment-rates"),
            )
        })?,
    };
    let engine = engine_for(&state, &caller).await?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = tokio::task::spawn_blocking(move || {
        let view = View::new(&engine.dataset, Some(engine.as_of));
        TrainedModel::train(
            &engine.dataset,
            &view.closed,
            view.as_of,
            &TrainConfig { kind, threads, ..TrainConfig::default() },
        )
    })
    .await
    .map_err(ApiError::internal)??;
    let (status, reason) = crate::workflow::store_model(state.store.as_ref(), &caller.tenant, &model).await?;
    audit(
        &state,
        &caller,
        Audit::Change,
        "model.train",
        Some(&model.version),
        Some(serde_json::json!({ "status": status, "reason": reason })),
    )
    .await?;
    Ok(Json(TrainResponse {
        version: model.version.clone(),
        kind: model.kind.as_str().to_owned(),
        status: status.as_str().to_owned(),
        reason,
        n_train: model.n_train,
        cold_start: model.cold_start,
        metrics: model.metrics.as_ref().map(serde_json::to_value).transpose()?,
        warnings: model.warnings.clone(),
    }))
}

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
        Some(tenant) => match crate::workflow::champion_model(state.store.as_ref(), tenant).await {
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

pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_document())
}

/// The OpenAPI document, as committed in `bot/openapi.json` (a test keeps them equal).
pub fn openapi_document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Dealwatch API", description = "Deal-risk scores, explained; pipeline metrics; alert settings; models."),
    paths(score_deal, get_deal, high_risk, pipeline_metrics, ask, configure_alerts, list_alerts, alert_feedback, get_tuning, set_tuning,
        get_routes, set_routes, alert_effectiveness, model_performance, train_model, slack_install_link,
        crate::salesforce::webhook::opportunity_changed, healthz, readyz, metrics),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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
