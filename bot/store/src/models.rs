//! Trained models: every version a tenant trained, with its status (one champion at a time).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::db::{Sql, Value};
use crate::tenants::BUMP_DATA_VERSION;
use crate::{SqlStore, StoreError, TenantId, parse_stored};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    Champion,
    Challenger,
    Archived,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Champion => "champion",
            ModelStatus::Challenger => "challenger",
            ModelStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ModelStatus::Champion, ModelStatus::Challenger, ModelStatus::Archived].into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub version: String,
    pub kind: String,
    pub status: ModelStatus,
    pub trained_at: DateTime<Utc>,
    pub as_of: Option<NaiveDate>,
    pub n_train: u64,
    pub metrics: Option<serde_json::Value>,
}

#[async_trait::async_trait]
pub trait Models {
    /// Stores a trained model (its full JSON) with a status.
    async fn save_model(
        &self,
        tenant: &TenantId,
        info: &ModelInfo,
        model: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Makes `version` the champion and archives the previous one.
    async fn promote_model(&self, tenant: &TenantId, version: &str) -> Result<(), StoreError>;
    async fn models(&self, tenant: &TenantId) -> Result<Vec<ModelInfo>, StoreError>;
    async fn champion(&self, tenant: &TenantId) -> Result<Option<(ModelInfo, serde_json::Value)>, StoreError>;
}

/// A `models` row without the model: version, kind, status, trained, as of, rows, metrics.
type ModelRow = (String, String, String, DateTime<Utc>, Option<NaiveDate>, i64, Option<Json<serde_json::Value>>);

#[async_trait::async_trait]
impl Models for SqlStore {
    async fn save_model(
        &self,
        tenant: &TenantId,
        info: &ModelInfo,
        model: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO models (tenant_id, version, kind, status, trained_at, as_of, n_train, metrics, model) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant_id, version) DO UPDATE SET trained_at = excluded.trained_at",
            )
            .bind(tenant.as_str())
            .bind(info.version.as_str())
            .bind(info.kind.as_str())
            .bind(info.status.as_str())
            .bind(info.trained_at)
            .bind(info.as_of)
            .bind(i64::try_from(info.n_train).unwrap_or(i64::MAX))
            .bind(Value::json_opt(info.metrics.as_ref()))
            .bind(Value::json(model)),
        )
        .await?;
        tx.execute(Sql::new(BUMP_DATA_VERSION).bind(tenant.as_str())).await?;
        tx.commit().await
    }

    async fn promote_model(&self, tenant: &TenantId, version: &str) -> Result<(), StoreError> {
        let t = tenant.as_str();
        let mut tx = self.begin_write(tenant).await?;
        let found: Option<(String,)> = tx
            .optional(
                Sql::new("SELECT version FROM models WHERE tenant_id = $1 AND version = $2").bind(t).bind(version),
            )
            .await?;
        if found.is_none() {
            return Err(StoreError::Invalid(format!("no model {version:?} for tenant {tenant}")));
        }
        tx.execute(
            Sql::new(
                "UPDATE models SET status = 'archived' WHERE tenant_id = $1 AND status = 'champion' AND version <> $2",
            )
            .bind(t)
            .bind(version),
        )
        .await?;
        tx.execute(
            Sql::new("UPDATE models SET status = 'champion' WHERE tenant_id = $1 AND version = $2")
                .bind(t)
                .bind(version),
        )
        .await?;
        tx.execute(Sql::new(BUMP_DATA_VERSION).bind(t)).await?;
        tx.commit().await
    }

    async fn models(&self, tenant: &TenantId) -> Result<Vec<ModelInfo>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<ModelRow> = tx
            .all(
                Sql::new(
                    "SELECT version, kind, status, trained_at, as_of, n_train, metrics FROM models \
                     WHERE tenant_id = $1 ORDER BY trained_at DESC, version",
                )
                .bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(version, kind, status, trained_at, as_of, n_train, metrics)| {
                Ok(ModelInfo {
                    version,
                    kind,
                    status: parse_stored("model status", &status, ModelStatus::parse)?,
                    trained_at,
                    as_of,
                    n_train: u64::try_from(n_train).unwrap_or(0),
                    metrics: metrics.map(|Json(m)| m),
                })
            })
            .collect()
    }

    async fn champion(&self, tenant: &TenantId) -> Result<Option<(ModelInfo, serde_json::Value)>, StoreError> {
        let Some(info) = self.models(tenant).await?.into_iter().find(|m| m.status == ModelStatus::Champion) else {
            return Ok(None);
        };
        let mut tx = self.begin(tenant).await?;
        let (Json(model),): (Json<serde_json::Value>,) = tx
            .one(
                Sql::new("SELECT model FROM models WHERE tenant_id = $1 AND version = $2")
                    .bind(tenant.as_str())
                    .bind(info.version.as_str()),
            )
            .await?;
        tx.commit().await?;
        Ok(Some((info, model)))
    }
}
