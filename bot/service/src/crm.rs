//! The CRM port: what the service asks of a tenant's CRM connection. The Salesforce adapter
//! implements it (the write-back of follow-up tasks, the scheduled sync); a deployment without
//! a CRM uses [`NoCrm`]. The service never names a CRM.

use chrono::{DateTime, Utc};
use store::{Store, TenantId};

/// A sync pass: only what changed since the last one, or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Incremental,
    Full,
}

/// The tenants' CRM connections.
#[async_trait::async_trait]
pub trait Crm: Send + Sync + std::fmt::Debug {
    /// Whether `tenant`'s CRM takes follow-up tasks written back (else they are only recorded).
    fn writes_tasks(&self, tenant: &TenantId) -> bool;

    /// Writes `tenant`'s queued follow-up tasks to its CRM; a failure leaves them queued.
    async fn write_tasks(&self, store: &dyn Store, tenant: &TenantId) -> anyhow::Result<()>;

    /// One scheduled sync of `tenant` (due at `due`): what it did, or why it was skipped.
    async fn sync(&self, store: &dyn Store, tenant: &TenantId, pass: SyncPass<'_>)
    -> anyhow::Result<serde_json::Value>;
}

/// What a scheduled sync pass is given besides the tenant.
#[derive(Debug, Clone, Copy)]
pub struct SyncPass<'a> {
    pub mode: SyncMode,
    /// When the job was due (a pace check compares it with the CRM's remaining API budget).
    pub due: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub texts: &'a engine::texts::Texts,
    /// The alert channels this deployment has (alerts the synced changes raise are routed to them).
    pub channels: &'a [String],
}

/// No CRM connected: tasks are recorded in Dealwatch only, and syncs are skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCrm;

#[async_trait::async_trait]
impl Crm for NoCrm {
    fn writes_tasks(&self, _: &TenantId) -> bool {
        false
    }

    async fn write_tasks(&self, _: &dyn Store, _: &TenantId) -> anyhow::Result<()> {
        Ok(())
    }

    async fn sync(&self, _: &dyn Store, _: &TenantId, _: SyncPass<'_>) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({ "skipped": "no CRM connected" }))
    }
}
