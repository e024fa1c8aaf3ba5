//! The store: Dealwatch's records (tenants, deals and their history, scores, models, people and
//! their settings, the alert outbox and its feedback, job runs, chat installations and
//! conversations, follow-up tasks, the audit log, idempotency keys, sync watermarks) and the
//! database they live in, SQLite (the embedded default) or PostgreSQL.
//!
//! Each area has its own trait ([`Deals`], [`Scores`], [`Alerts`], …) implemented once, in its
//! own file, by [`SqlStore`] for both databases; [`Store`] is all of them. Every method takes the
//! tenant and every query is scoped by it. On PostgreSQL each transaction also sets
//! `app.tenant_id`, which the row-level security policies of `migrations/postgres` check, so a
//! query that forgot its `WHERE tenant_id` would still see one tenant only.
//!
//! This crate is the only user of sqlx; it holds records and their storage, no business rule.

mod alerts;
mod chat;
mod crm;
mod db;
mod deals;
mod jobs;
mod models;
mod people;
mod postgres;
mod requests;
mod scope;
mod scores;
mod sqlite;
mod tenants;

use std::fmt;
use std::sync::Arc;

pub use alerts::{
    Action, Alert, AlertQuery, AlertState, Alerts, DIGEST_CHANNEL, Feedback, Outcome as AlertOutcome, Tuning, ms,
};
pub use chat::{Chats, Conversation, SlackInstallation};
pub use crm::{Crm, FollowUpTask};
pub use deals::{CurrentScore, Deals, HistoryEntry, ImportBatch, ImportError, ImportOutcome, StoredDeal};
pub use jobs::{JobOutcome, JobRun, Jobs};
pub use models::{ModelInfo, ModelStatus, Models};
pub use people::{People, Role, User};
pub use requests::{AuditEntry, IDEMPOTENCY_KEPT, IdempotencyState, Requests};
pub use scope::{DealFilter, Scope};
pub use scores::{
    AlertPlanner, HighRiskQuery, NoAlerts, RecentAlert, RiskPage, RiskyDeal, ScoreChange, ScoreUpdate, Scores,
    ScoresSaved, SortBy,
};
pub use tenants::{Stamp, TenantInfo, Tenants};

pub use engine::domain::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    Url(String),
    /// Held by another tenant (a Slack workspace installed for them).
    #[error("{0}")]
    Taken(String),
}

impl From<engine::domain::TenantIdError> for StoreError {
    fn from(e: engine::domain::TenantIdError) -> Self {
        StoreError::Invalid(e.to_string())
    }
}

/// The database, for one or many tenants: every area's store.
pub trait Store:
    Tenants + Deals + Scores + Models + People + Alerts + Jobs + Chats + Crm + Requests + Send + Sync + fmt::Debug
{
}

impl<T> Store for T where
    T: Tenants + Deals + Scores + Models + People + Alerts + Jobs + Chats + Crm + Requests + Send + Sync + fmt::Debug
{
}

/// The store on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: db::Pool,
}

impl SqlStore {
    /// A transaction that reads the tenant's rows (on PostgreSQL, `app.tenant_id` is set for
    /// row-level security).
    async fn begin(&self, tenant: &TenantId) -> Result<db::Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        postgres::set_tenant(&mut tx, tenant.as_str()).await?;
        Ok(tx)
    }

    /// A transaction that writes the tenant's rows.
    async fn begin_write(&self, tenant: &TenantId) -> Result<db::Tx, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        postgres::set_tenant(&mut tx, tenant.as_str()).await?;
        Ok(tx)
    }

    /// A transaction that may list the tenants (PostgreSQL's `tenant_directory` policy) and see
    /// no tenant's data.
    async fn begin_directory(&self) -> Result<db::Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        postgres::set_tenant(&mut tx, "*").await?;
        Ok(tx)
    }

    /// A write to a table of no tenant (signatures seen): no tenant is set, so no tenant's rows
    /// are visible in it.
    async fn begin_global_write(&self) -> Result<db::Tx, StoreError> {
        self.pool.begin_write().await
    }
}

/// Opens the store at `url` (`sqlite://path/to/file.db` or `postgres://…`) and applies the
/// migrations, with `migration_url` (a role that owns the tables) if given.
pub async fn open(url: &str, migration_url: Option<&str>) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, migration_url, false).await
}

/// [`open`], where `allow_rls_bypass` (development only) lets a PostgreSQL role that would
/// bypass row-level security (a superuser, `BYPASSRLS`, or the tables' owner) run the service.
pub async fn open_with(
    url: &str,
    migration_url: Option<&str>,
    allow_rls_bypass: bool,
) -> Result<Arc<dyn Store>, StoreError> {
    let pool = if url.starts_with("sqlite:") {
        sqlite::open(url).await?
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        postgres::open(url, migration_url, allow_rls_bypass).await?
    } else {
        return Err(StoreError::Url(url.to_owned()));
    };
    Ok(Arc::new(SqlStore { pool }))
}

/// A stored text that must be one of a closed set of names (`parse`), or the store is corrupt.
fn parse_stored<T>(what: &str, value: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("{what} {value:?}")))
}

/// A stored integer that must fit `T` (a score, a threshold), or the store is corrupt.
fn stored_int<T: TryFrom<i64>>(what: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value}")))
}
