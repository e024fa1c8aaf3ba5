//! `/v1/models` (admin): the models' performance, and training a new one.

use crate::error::{ApiError, ErrorBody};
use crate::tenants::Scope;
use crate::{AppState, Caller};
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use engine::asof::View;
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::{ApiResult, Audit, audit, engine_for, parse_json, require_admin, today};

// ---------------------------------------------------------------------------------------------
// Models (admin)

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
    if let Some(engine) = state.cache.get(&state.store, &caller.tenant, today(&state)).await? {
        let snap = super::pipeline::snapshot(&engine, &state, &Scope::All, engine.as_of);
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
    .await?
    .map_err(ApiError::internal)?;
    let (status, reason) =
        service::workflow::store_model(state.store.as_ref(), &caller.tenant, &model, state.now()).await?;
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
