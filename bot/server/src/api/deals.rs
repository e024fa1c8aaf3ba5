//! `/v1/deals`: score a deal, read one, list the risky ones.

use crate::error::{ApiError, ErrorBody};
use crate::tenants::{Scope, TenantEngine, scope_of};
use crate::{AppState, Caller};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use engine::asof::{Status, status};
use engine::domain::{Outcome, RiskCategory};
use engine::record::DealRecord;
use engine::score::{RiskScore, Scorer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use store::{CurrentScore, HighRiskQuery, HistoryEntry, RiskPage, SortBy};
use utoipa::ToSchema;

use super::{ApiResult, Audit, audit, engine_for, model_of, parse_json, today};

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
    Ok(Json(ScoreResponse { score: card, scored_at: state.now(), ignored_fields: ignored }))
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
    let today = today(&state);
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
