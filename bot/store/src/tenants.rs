//! Tenants: who they are, the columns of their deals, and the change counters that tell a
//! server when what it keeps in memory is stale.

use engine::record::SchemaSpec;
use serde::Serialize;
use sqlx::types::Json;

use crate::db::Sql;
use crate::{SqlStore, StoreError, TenantId};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantInfo {
    pub id: TenantId,
    pub name: String,
    pub schema: SchemaSpec,
}

/// Change counters of a tenant, bumped in the same transaction as the change (one primary-key
/// read tells a server whether what it keeps in memory is stale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Deals (imports) and models (training, promotion).
    pub data: i64,
    /// Stored scores.
    pub scores: i64,
}

/// Bumped in the same transaction as a change to a tenant's deals or models (see [`Stamp`]).
pub(crate) const BUMP_DATA_VERSION: &str = "UPDATE tenants SET data_version = data_version + 1 WHERE tenant_id = $1";
/// Bumped in the same transaction as new scores.
pub(crate) const BUMP_SCORES_VERSION: &str =
    "UPDATE tenants SET scores_version = scores_version + 1 WHERE tenant_id = $1";

#[async_trait::async_trait]
pub trait Tenants {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<(), StoreError>;

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError>;
    async fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantInfo>, StoreError>;
    /// Every tenant's id (for background work that runs for all of them).
    async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError>;
    /// Versions that change whenever the tenant's deals, models or scores change: caches of
    /// derived state compare them to know when to rebuild.
    async fn stamp(&self, tenant: &TenantId) -> Result<Stamp, StoreError>;
}

#[async_trait::async_trait]
impl Tenants for SqlStore {
    fn backend(&self) -> &'static str {
        match self.pool {
            crate::db::Pool::Sqlite(_) => "sqlite",
            crate::db::Pool::Postgres(_) => "postgres",
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO tenants (tenant_id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(chrono::Utc::now()),
        )
        .await?;
        tx.commit().await
    }

    async fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String, Json<SchemaSpec>)> = tx
            .optional(Sql::new("SELECT name, schema_spec FROM tenants WHERE tenant_id = $1").bind(tenant.as_str()))
            .await?;
        tx.commit().await?;
        Ok(row.map(|(name, Json(schema))| TenantInfo { id: tenant.clone(), name, schema }))
    }

    async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        let mut tx = self.begin_directory().await?;
        let rows: Vec<(String,)> = tx.all(Sql::new("SELECT tenant_id FROM tenants ORDER BY tenant_id")).await?;
        tx.commit().await?;
        rows.into_iter().map(|(id,)| stored_tenant(&id)).collect()
    }

    async fn stamp(&self, tenant: &TenantId) -> Result<Stamp, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let versions: Option<(i64, i64)> = tx
            .optional(
                Sql::new("SELECT data_version, scores_version FROM tenants WHERE tenant_id = $1").bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
        Ok(versions.map_or_else(Stamp::default, |(data, scores)| Stamp { data, scores }))
    }
}

/// A tenant id read back from the database.
pub(crate) fn stored_tenant(id: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(id).map_err(|_| StoreError::Corrupt(format!("tenant id {id:?}")))
}
