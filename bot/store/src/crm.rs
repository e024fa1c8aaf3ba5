//! What goes to and comes from a CRM: follow-up tasks created from chat (queued for the CRM,
//! then written or failed), the digest of the fields last written onto each record (so nothing
//! is written twice), and sync watermarks.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::db::{CHUNK, FEW, Sql};
use crate::{SqlStore, StoreError, TenantId};

/// A follow-up task someone created from chat, for a deal.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct FollowUpTask {
    pub task_id: String,
    /// The click it came from: the same key creates one task.
    #[serde(skip)]
    pub task_key: String,
    pub deal_id: String,
    pub subject: String,
    pub due_date: Option<NaiveDate>,
    /// The CRM owner it is for.
    pub owner: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// `recorded` (no CRM connected), `queued` (for the CRM), `written`, `failed`.
    pub state: String,
    pub crm_id: Option<String>,
    pub error: Option<String>,
}

#[async_trait::async_trait]
pub trait Crm {
    /// Stores a task unless one with its `task_key` exists; returns the stored task and whether
    /// it is new.
    async fn record_task(&self, tenant: &TenantId, task: &FollowUpTask) -> Result<(FollowUpTask, bool), StoreError>;
    /// The tenant's tasks, newest first, for one deal or all.
    async fn tasks(&self, tenant: &TenantId, deal_id: Option<&str>) -> Result<Vec<FollowUpTask>, StoreError>;
    /// The tenant's tasks in `state` (`queued`: waiting for the CRM), oldest first.
    async fn tasks_in_state(&self, tenant: &TenantId, state: &str) -> Result<Vec<FollowUpTask>, StoreError>;
    /// Records what became of a task in the CRM (`written` with its id, or `failed` with why).
    async fn finish_task(
        &self,
        tenant: &TenantId,
        task_id: &str,
        state: &str,
        crm_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The digest of the fields last written onto each of these CRM records, by deal id (those
    /// never written are absent).
    async fn crm_writes(&self, tenant: &TenantId, ids: &[String]) -> Result<HashMap<String, String>, StoreError>;
    /// Records what was written onto these records (deal id, digest).
    async fn record_crm_writes(
        &self,
        tenant: &TenantId,
        written: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn watermark(&self, tenant: &TenantId, source: &str) -> Result<Option<String>, StoreError>;
    async fn set_watermark(
        &self,
        tenant: &TenantId,
        source: &str,
        watermark: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Which tasks a read selects: by the click's key, by deal, in a state, or all.
#[derive(Debug, Clone, Copy)]
enum Tasks<'a> {
    Key(&'a str),
    Deal(&'a str),
    State(&'a str),
    All,
}

/// Tasks of the tenant that `which` selects, newest first.
async fn select_tasks(
    tx: &mut crate::db::Tx,
    tenant: &TenantId,
    which: Tasks<'_>,
) -> Result<Vec<FollowUpTask>, StoreError> {
    let mut q = Sql::new(
        "SELECT task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error \
         FROM follow_up_tasks WHERE tenant_id = ",
    );
    q.push_bind(tenant.as_str());
    match which {
        Tasks::Key(key) => q.push(" AND task_key = ").push_bind(key),
        Tasks::Deal(deal) => q.push(" AND deal_id = ").push_bind(deal),
        Tasks::State(state) => q.push(" AND state = ").push_bind(state),
        Tasks::All => &mut q,
    };
    q.push(" ORDER BY created_at DESC, task_id");
    tx.all(q).await
}

#[async_trait::async_trait]
impl Crm for SqlStore {
    async fn record_task(&self, tenant: &TenantId, task: &FollowUpTask) -> Result<(FollowUpTask, bool), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let new = tx
            .execute(
                Sql::new(
                    "INSERT INTO follow_up_tasks (tenant_id, task_id, task_key, deal_id, subject, due_date, owner, \
                     created_by, created_at, state, crm_id, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (tenant_id, task_key) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(task.task_id.as_str())
                .bind(task.task_key.as_str())
                .bind(task.deal_id.as_str())
                .bind(task.subject.as_str())
                .bind(task.due_date)
                .bind(task.owner.as_deref())
                .bind(task.created_by.as_str())
                .bind(task.created_at)
                .bind(task.state.as_str())
                .bind(task.crm_id.as_deref())
                .bind(task.error.as_deref()),
            )
            .await?
            == 1;
        let stored = select_tasks(&mut tx, tenant, Tasks::Key(&task.task_key)).await?;
        tx.commit().await?;
        let stored =
            stored.into_iter().next().ok_or_else(|| StoreError::Corrupt("a task vanished after its insert".into()))?;
        Ok((stored, new))
    }

    async fn tasks(&self, tenant: &TenantId, deal_id: Option<&str>) -> Result<Vec<FollowUpTask>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows = select_tasks(&mut tx, tenant, deal_id.map_or(Tasks::All, Tasks::Deal)).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn tasks_in_state(&self, tenant: &TenantId, state: &str) -> Result<Vec<FollowUpTask>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut rows = select_tasks(&mut tx, tenant, Tasks::State(state)).await?;
        tx.commit().await?;
        rows.reverse();
        Ok(rows)
    }

    async fn finish_task(
        &self,
        tenant: &TenantId,
        task_id: &str,
        state: &str,
        crm_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "UPDATE follow_up_tasks SET state = $3, crm_id = $4, error = $5 WHERE tenant_id = $1 AND task_id = $2",
            )
            .bind(tenant.as_str())
            .bind(task_id)
            .bind(state)
            .bind(crm_id)
            .bind(error),
        )
        .await?;
        tx.commit().await
    }

    async fn crm_writes(&self, tenant: &TenantId, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut rows: Vec<(String, String)> = Vec::new();
        if ids.len() <= FEW {
            for chunk in ids.chunks(CHUNK) {
                let mut q = Sql::new("SELECT deal_id, digest FROM crm_writes WHERE tenant_id = ");
                q.push_bind(tenant.as_str()).push(" AND deal_id IN ").push_list(chunk.iter().map(String::as_str));
                rows.extend(tx.all::<(String, String)>(q).await?);
            }
        } else {
            let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let all: Vec<(String, String)> = tx
                .all(Sql::new("SELECT deal_id, digest FROM crm_writes WHERE tenant_id = $1").bind(tenant.as_str()))
                .await?;
            rows.extend(all.into_iter().filter(|(id, _)| wanted.contains(id.as_str())));
        }
        tx.commit().await?;
        Ok(rows.into_iter().collect())
    }

    async fn record_crm_writes(
        &self,
        tenant: &TenantId,
        written: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        for chunk in written.chunks(CHUNK) {
            let mut q = Sql::new("INSERT INTO crm_writes (tenant_id, deal_id, digest, written_at) ");
            q.push_rows(chunk, |(deal, digest)| {
                vec![tenant.as_str().into(), deal.as_str().into(), digest.as_str().into(), at.into()]
            });
            q.push(
                " ON CONFLICT (tenant_id, deal_id) DO UPDATE SET digest = excluded.digest, \
                 written_at = excluded.written_at",
            );
            tx.execute(q).await?;
        }
        tx.commit().await
    }

    async fn watermark(&self, tenant: &TenantId, source: &str) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(String,)> = tx
            .optional(
                Sql::new("SELECT watermark FROM sync_watermarks WHERE tenant_id = $1 AND source = $2")
                    .bind(tenant.as_str())
                    .bind(source),
            )
            .await?;
        tx.commit().await?;
        Ok(row.map(|(w,)| w))
    }

    async fn set_watermark(
        &self,
        tenant: &TenantId,
        source: &str,
        watermark: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO sync_watermarks (tenant_id, source, watermark, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, source) DO UPDATE SET watermark = excluded.watermark, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(source)
            .bind(watermark)
            .bind(at),
        )
        .await?;
        tx.commit().await
    }
}
