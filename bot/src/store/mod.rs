//! The store: tenants, deals and their history, scores, models, users, settings, audit log,
//! idempotency keys, imports and sync watermarks, on SQLite (the embedded default) or
//! PostgreSQL, behind one [`Store`] trait.
//!
//! Every method takes the tenant and every query is scoped by it. On PostgreSQL each transaction
//! also sets `app.tenant_id`, which the row-level security policies of `migrations/postgres`
//! check, so a query that forgot its `WHERE tenant_id` would still see one tenant only. The SQL is
//! written once (`sql.rs`) and expanded for both databases; the dialects differ only in their
//! migrations and in how a transaction starts.

mod postgres;
mod sql;
mod sqlite;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use engine::alerts::{AlertKind, Priority};
use engine::domain::{Outcome, RiskCategory};
use engine::ingest::Problem;
use engine::record::{DealRecord, SchemaSpec};
use serde::{Deserialize, Serialize};

pub use crate::alerts::feedback::{Feedback, Tuning};
pub use crate::alerts::{Alert, AlertQuery, AlertState, NewAlert, Outcome as AlertOutcome};
pub use crate::auth::Role;
pub use crate::jobs::{JobOutcome, JobRun};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A tenant id: 1-64 characters of `a-z`, `0-9`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(StoreError::Invalid(format!(
                "tenant id {raw:?} must be 1-64 characters of lower-case letters, digits, '-' and '_'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantInfo {
    pub id: TenantId,
    pub name: String,
    pub schema: SchemaSpec,
}

/// A deal's latest score, as kept beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentScore {
    pub risk_score: u8,
    pub risk_category: RiskCategory,
    pub win_probability: f64,
    pub model_version: String,
    pub scored_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDeal {
    pub record: DealRecord,
    pub score: Option<CurrentScore>,
    pub updated_at: DateTime<Utc>,
}

/// One change of a tracked field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_at: DateTime<Utc>,
    pub import_id: Option<String>,
}

/// A validated export, ready to be written in one transaction.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub import_id: String,
    pub source: String,
    pub at: DateTime<Utc>,
    pub spec: SchemaSpec,
    pub records: Vec<DealRecord>,
    /// Rows quarantined by validation, recorded with their reasons.
    pub rejected: Vec<Problem>,
    pub rows_read: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub history: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportError {
    pub row: u32,
    pub deal_id: Option<String>,
    pub column: String,
    pub value: String,
    pub kind: String,
    pub reason: String,
}

/// A score to record: the deal's current score and a history row.
#[derive(Debug, Clone)]
pub struct ScoreUpdate {
    pub deal_id: String,
    pub risk_score: u8,
    pub risk_category: RiskCategory,
    pub win_probability: f64,
    pub confidence: f64,
    pub model_version: String,
    pub card: serde_json::Value,
}

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

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "champion" => Ok(ModelStatus::Champion),
            "challenger" => Ok(ModelStatus::Challenger),
            "archived" => Ok(ModelStatus::Archived),
            other => Err(StoreError::Corrupt(format!("model status {other:?}"))),
        }
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

/// A person: CRM owner name ↔ email ↔ chat ids, with role, manager and time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub email: Option<String>,
    pub name: String,
    /// The owner value this person has on deals (e.g. `rep_15`).
    pub crm_owner: Option<String>,
    pub role: Role,
    pub manager_id: Option<String>,
    pub time_zone: String,
    pub slack_user_id: Option<String>,
    pub teams_user_id: Option<String>,
    pub discord_user_id: Option<String>,
}

impl User {
    /// Someone with only an id, a name and a role: no CRM owner, manager or chat identities.
    pub fn named(user_id: &str, name: &str, role: Role) -> User {
        User {
            user_id: user_id.to_owned(),
            email: None,
            name: name.to_owned(),
            crm_owner: None,
            role,
            manager_id: None,
            time_zone: "UTC".into(),
            slack_user_id: None,
            teams_user_id: None,
            discord_user_id: None,
        }
    }
}

/// A follow-up task someone created from chat, for a deal.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// A Slack workspace installed through OAuth: its tenant and its sealed bot token.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackInstallation {
    pub team_id: String,
    pub tenant: TenantId,
    pub team_name: String,
    pub bot_user_id: Option<String>,
    pub scopes: String,
    /// The bot token, encrypted by the service; the store never sees it in clear.
    pub token_sealed: String,
    pub installed_by: Option<String>,
    pub installed_at: DateTime<Utc>,
}

/// Where the bot can write to someone unprompted on a chat platform (a Teams conversation
/// reference), stored when the app is installed or first messaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub platform: String,
    /// `user:<platform user>` for a person's chat with the bot, `conversation:<id>` for a
    /// channel or group chat.
    pub key: String,
    pub conversation_id: String,
    pub service_url: String,
    /// The platform's organisation: the Entra tenant (Teams), the guild (Discord).
    pub org_id: String,
    pub bot_id: Option<String>,
    /// The person's id on the platform (Teams `29:…`), for a person's chat.
    pub user_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

/// How long an `Idempotency-Key` and its response are kept (as Stripe and the IETF draft do).
pub const IDEMPOTENCY_KEPT: chrono::Duration = chrono::Duration::hours(24);

/// What an `Idempotency-Key` has seen before.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyState {
    /// First use: the caller runs the request and records its response.
    New,
    /// Another request with this key is running.
    InProgress,
    /// Used before with a different request body.
    Mismatch,
    /// Done: replay this response.
    Done { status: u16, body: serde_json::Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    RiskScore,
    Amount,
    Age,
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

/// Filters, sort and page of `GET /v1/deals/high-risk`.
#[derive(Debug, Clone, PartialEq)]
pub struct HighRiskQuery {
    pub categories: Vec<RiskCategory>,
    /// Only deals of these owners (a rep's own, a manager's team); `None`: every deal.
    pub owners: Option<Vec<String>>,
    pub sort_by: SortBy,
    pub descending: bool,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskyDeal {
    pub deal_id: String,
    pub company: String,
    pub amount: Option<f64>,
    pub risk_score: u8,
    pub risk_category: RiskCategory,
    pub rep_id: Option<String>,
    pub created_date: Option<NaiveDate>,
    pub current_stage: Option<String>,
    pub scored_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskPage {
    pub deals: Vec<RiskyDeal>,
    pub total_count: u64,
    pub total_at_risk_revenue: f64,
    pub average_risk_score: Option<f64>,
    pub deals_by_category: BTreeMap<String, u64>,
}

impl RiskPage {
    /// The page `query` asks for, from every scored open deal (`rows`, in any order): the same
    /// filters, order and summary as [`Store::high_risk`], in memory.
    pub fn select(rows: &[RiskyDeal], query: &HighRiskQuery) -> RiskPage {
        let owners: Option<std::collections::HashSet<&str>> =
            query.owners.as_ref().map(|o| o.iter().map(String::as_str).collect());
        let mut matching: Vec<&RiskyDeal> = rows
            .iter()
            .filter(|d| query.categories.contains(&d.risk_category))
            .filter(|d| owners.as_ref().is_none_or(|set| d.rep_id.as_deref().is_some_and(|o| set.contains(o))))
            .collect();
        let mut page = RiskPage {
            deals: Vec::new(),
            total_count: matching.len() as u64,
            total_at_risk_revenue: matching.iter().filter_map(|d| d.amount).sum(),
            average_risk_score: (!matching.is_empty())
                .then(|| matching.iter().map(|d| f64::from(d.risk_score)).sum::<f64>() / matching.len() as f64),
            deals_by_category: BTreeMap::new(),
        };
        for c in RiskCategory::ALL {
            let n = matching.iter().filter(|d| d.risk_category == c).count() as u64;
            if n > 0 {
                page.deals_by_category.insert(c.as_str().to_owned(), n);
            }
        }
        // NULLs sort as the smallest value, as they do in SQLite and (with NULLS FIRST) below.
        let key = |d: &RiskyDeal| -> (Option<f64>, Option<NaiveDate>) {
            match query.sort_by {
                SortBy::RiskScore => (Some(f64::from(d.risk_score)), None),
                SortBy::Amount => (d.amount, None),
                SortBy::Age => (None, d.created_date),
            }
        };
        // Age descending means oldest first.
        let descending = if query.sort_by == SortBy::Age { !query.descending } else { query.descending };
        matching.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            let primary = ka.0.partial_cmp(&kb.0).unwrap_or(std::cmp::Ordering::Equal).then(ka.1.cmp(&kb.1));
            (if descending { primary.reverse() } else { primary }).then_with(|| a.deal_id.cmp(&b.deal_id))
        });
        page.deals = matching.into_iter().skip(query.offset as usize).take(query.limit as usize).cloned().collect();
        page
    }
}

/// A deal's new score with what the store knew before it: the input of alert planning.
#[derive(Debug, Clone)]
pub struct ScoreChange<'a> {
    pub update: &'a ScoreUpdate,
    /// The score stored before; `None` if the deal was never scored.
    pub previous: Option<u8>,
    pub owner: Option<String>,
}

/// An alert raised recently about a subject, for throttling.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentAlert {
    pub subject: String,
    pub recipient: String,
    pub score: Option<u8>,
    pub at: DateTime<Utc>,
}

/// Decides, inside the transaction that stores new scores, which alerts they raise (see
/// [`Store::save_scores_raising`]).
pub trait AlertPlanner: Send + Sync {
    /// The kind of alert planned (its recent alerts are read for throttling).
    fn kind(&self) -> AlertKind;
    /// Positions in `changes` that might raise an alert: their recent alerts are read.
    fn candidates(&self, changes: &[ScoreChange<'_>]) -> Vec<usize>;
    /// The alerts to raise, given the recent alerts of the candidates.
    fn plan(&self, changes: &[ScoreChange<'_>], candidates: &[usize], recent: &[RecentAlert]) -> Vec<NewAlert>;
}

/// Plans nothing: scores saved without alerts (imports of history, tests).
#[derive(Debug, Clone, Copy)]
pub struct NoAlerts;

impl AlertPlanner for NoAlerts {
    fn kind(&self) -> AlertKind {
        AlertKind::CriticalDeal
    }
    fn candidates(&self, _: &[ScoreChange<'_>]) -> Vec<usize> {
        Vec::new()
    }
    fn plan(&self, _: &[ScoreChange<'_>], _: &[usize], _: &[RecentAlert]) -> Vec<NewAlert> {
        Vec::new()
    }
}

/// What [`Store::save_scores_raising`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScoresSaved {
    pub scores: usize,
    /// Alerts raised (duplicates of existing ones are not counted).
    pub alerts: usize,
    /// Deals whose risk category rose with this score, and new deals (at most
    /// [`NEW_DEAL_DAYS`](crate::alerts::routing::NEW_DEAL_DAYS) old) scored for the first time:
    /// the news a follow-up task is made for. A pipeline's first scoring is a baseline.
    pub rose: Vec<String>,
}

/// The database, for one or many tenants.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<(), StoreError>;

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError>;
    async fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantInfo>, StoreError>;

    /// Upserts an export's deals by CRM id in one transaction, recording what changed.
    async fn import(&self, tenant: &TenantId, batch: &ImportBatch) -> Result<ImportOutcome, StoreError>;
    async fn import_errors(&self, tenant: &TenantId, import_id: &str) -> Result<Vec<ImportError>, StoreError>;
    async fn deals(&self, tenant: &TenantId) -> Result<Vec<DealRecord>, StoreError>;
    async fn deal(&self, tenant: &TenantId, deal_id: &str) -> Result<Option<StoredDeal>, StoreError>;
    async fn deal_history(&self, tenant: &TenantId, deal_id: &str) -> Result<Vec<HistoryEntry>, StoreError>;
    async fn count_deals(&self, tenant: &TenantId) -> Result<u64, StoreError>;
    /// Versions that change whenever the tenant's deals, models or scores change: caches of
    /// derived state compare them to know when to rebuild.
    async fn stamp(&self, tenant: &TenantId) -> Result<Stamp, StoreError>;

    /// Stores new scores (the deals' current scores and a history row each) without alerts.
    async fn save_scores(
        &self,
        tenant: &TenantId,
        at: DateTime<Utc>,
        as_of: Option<NaiveDate>,
        scores: &[ScoreUpdate],
    ) -> Result<usize, StoreError> {
        Ok(self.save_scores_raising(tenant, at, as_of, scores, &NoAlerts).await?.scores)
    }
    /// Stores new scores and, in the same transaction, the alerts `planner` raises on them
    /// (comparing each with the score stored before): a score is never saved without its alert,
    /// nor an alert without its score.
    async fn save_scores_raising(
        &self,
        tenant: &TenantId,
        at: DateTime<Utc>,
        as_of: Option<NaiveDate>,
        scores: &[ScoreUpdate],
        planner: &dyn AlertPlanner,
    ) -> Result<ScoresSaved, StoreError>;
    async fn high_risk(&self, tenant: &TenantId, query: &HighRiskQuery) -> Result<RiskPage, StoreError>;

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

    async fn upsert_user(&self, tenant: &TenantId, user: &User) -> Result<(), StoreError>;
    async fn user(&self, tenant: &TenantId, user_id: &str) -> Result<Option<User>, StoreError>;
    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError>;

    async fn save_alert_settings(
        &self,
        tenant: &TenantId,
        user_id: &str,
        settings: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn alert_settings(&self, tenant: &TenantId, user_id: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Every user's stored alert settings.
    async fn all_alert_settings(&self, tenant: &TenantId) -> Result<Vec<(String, serde_json::Value)>, StoreError>;

    /// A tenant-wide setting by name (`alert_routes`), as last saved.
    async fn tenant_setting(&self, tenant: &TenantId, name: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Saves a tenant-wide setting (validated by the caller), with who saved it.
    async fn save_tenant_setting(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &serde_json::Value,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every tenant's id (for background work that runs for all of them).
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

    /// Stores a workspace's installation, or refreshes the tenant's own. A workspace installed
    /// for another tenant stays theirs: [`StoreError::Taken`].
    async fn save_slack_installation(&self, installation: &SlackInstallation) -> Result<(), StoreError>;
    /// The installation of a Slack workspace, whichever tenant it belongs to.
    async fn slack_installation(&self, team_id: &str) -> Result<Option<SlackInstallation>, StoreError>;

    /// Stores (or refreshes) a chat conversation the bot may write into later.
    async fn save_conversation(&self, tenant: &TenantId, conversation: &Conversation) -> Result<(), StoreError>;
    /// A tenant's conversations on `platform`, the most recently seen first.
    async fn conversations(&self, tenant: &TenantId, platform: &str) -> Result<Vec<Conversation>, StoreError>;
    /// One conversation by its key (`user:…`, `conversation:…`).
    async fn conversation(
        &self,
        tenant: &TenantId,
        platform: &str,
        key: &str,
    ) -> Result<Option<Conversation>, StoreError>;

    async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError>;

    /// Writes alerts into the outbox; one whose dedup key exists already is skipped. Returns how
    /// many were new.
    async fn raise_alerts(&self, tenant: &TenantId, alerts: &[NewAlert]) -> Result<usize, StoreError>;
    /// Claims up to `limit` alerts due by `now_ms` (pending, failed and due again, or sending
    /// with a lapsed lease) for one sender: they become `sending` until `now_ms + lease_ms`,
    /// their attempt counted. Concurrent senders never claim the same row.
    async fn claim_alerts(
        &self,
        tenant: &TenantId,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError>;
    /// Records how the attempt of a claimed alert ended. `attempt` is the claimed attempt
    /// number: a sender whose lease lapsed and was taken over changes nothing (returns false).
    async fn finish_alert(
        &self,
        tenant: &TenantId,
        alert_id: &str,
        attempt: u32,
        outcome: &AlertOutcome,
    ) -> Result<bool, StoreError>;
    /// Raises `digest` and, in the same transaction, marks the `bundled` alerts (pending on the
    /// digest channel) as sent inside it. Returns false when the digest existed already (its
    /// dedup key), and then changes nothing.
    async fn raise_digest(&self, tenant: &TenantId, digest: &NewAlert, bundled: &[String]) -> Result<bool, StoreError>;
    /// Alerts, newest first.
    async fn alerts(&self, tenant: &TenantId, query: &AlertQuery) -> Result<Vec<Alert>, StoreError>;

    /// Stores a click on an alert; a click with the same dedup key is not stored again.
    /// Returns whether it is new.
    async fn record_feedback(&self, tenant: &TenantId, feedback: &Feedback) -> Result<bool, StoreError>;
    /// Every click since `since`, oldest first.
    async fn feedback(&self, tenant: &TenantId, since: DateTime<Utc>) -> Result<Vec<Feedback>, StoreError>;
    /// The tenant's tuned thresholds.
    async fn tunings(&self, tenant: &TenantId) -> Result<Vec<Tuning>, StoreError>;
    /// Sets a kind's threshold (`Some`) or removes it (`None`: back to the default).
    async fn set_tuning(&self, tenant: &TenantId, kind: AlertKind, tuning: Option<&Tuning>) -> Result<(), StoreError>;

    /// Records that `job` is due at `due_ms` (once: a second call for the same time is a no-op).
    /// Returns whether the row is new.
    async fn schedule_job(&self, tenant: &TenantId, job: &str, due_ms: i64) -> Result<bool, StoreError>;
    /// Claims the earliest runnable job (pending, or running with a lapsed lease) for one
    /// scheduler until `now_ms + lease_ms`; concurrent schedulers never claim the same run.
    async fn claim_job(&self, tenant: &TenantId, now_ms: i64, lease_ms: i64) -> Result<Option<JobRun>, StoreError>;
    /// Records how a claimed run ended. A failed run goes back to pending until it has been
    /// tried `max_attempts` times. False when the claim had lapsed and was taken over.
    async fn finish_job(
        &self,
        tenant: &TenantId,
        run: &JobRun,
        at: DateTime<Utc>,
        outcome: &JobOutcome,
        max_attempts: u32,
    ) -> Result<bool, StoreError>;
    /// The latest runs, newest first.
    async fn job_runs(&self, tenant: &TenantId, limit: u32) -> Result<Vec<JobRun>, StoreError>;

    /// Appends entries to the tenant's audit log, in one transaction.
    async fn audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), StoreError>;
    async fn audit_log(&self, tenant: &TenantId, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Claims `key` for a request at `at`. A key still in progress after `lapse` belongs to a
    /// request that died with its process, and is taken over; a key older than
    /// [`IDEMPOTENCY_KEPT`] has expired, and is used afresh (expired keys are removed).
    async fn idempotency_begin(
        &self,
        tenant: &TenantId,
        user_id: &str,
        key: &str,
        request_hash: &str,
        at: DateTime<Utc>,
        lapse: chrono::Duration,
    ) -> Result<IdempotencyState, StoreError>;
    /// Takes `digest` in `scope` once until `expires_at` (a signed request, a one-use link):
    /// true the first time, false for a replay. Entries past their time are removed.
    async fn claim_once(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Refuses `user_id`'s API tokens issued before `at`.
    async fn revoke_tokens(&self, tenant: &TenantId, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// When `user_id`'s tokens were last revoked: those issued before are refused.
    async fn tokens_not_before(&self, tenant: &TenantId, user_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    async fn idempotency_finish(
        &self,
        tenant: &TenantId,
        user_id: &str,
        key: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Forgets a key whose request failed, so that a retry runs it again.
    async fn idempotency_abandon(&self, tenant: &TenantId, user_id: &str, key: &str) -> Result<(), StoreError>;

    /// The digest of the fields last written onto each of these CRM records, by deal id (those
    /// never written are absent).
    async fn crm_writes(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError>;
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
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url, migration_url, allow_rls_bypass).await?))
    } else {
        Err(StoreError::Url(url.to_owned()))
    }
}

fn problem_kind(p: &Problem) -> String {
    serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn outcome_str(o: Outcome) -> &'static str {
    o.as_str()
}

fn parse_outcome(s: &str) -> Result<Outcome, StoreError> {
    match s {
        "won" => Ok(Outcome::Won),
        "lost" => Ok(Outcome::Lost),
        "open" => Ok(Outcome::Open),
        other => Err(StoreError::Corrupt(format!("outcome {other:?}"))),
    }
}

fn parse_kind(s: &str) -> Result<AlertKind, StoreError> {
    AlertKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("alert kind {s:?}")))
}

fn parse_priority(s: &str) -> Result<Priority, StoreError> {
    Priority::parse(s).ok_or_else(|| StoreError::Corrupt(format!("alert priority {s:?}")))
}

fn parse_alert_state(s: &str) -> Result<AlertState, StoreError> {
    AlertState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("alert state {s:?}")))
}

fn parse_category(s: &str) -> Result<RiskCategory, StoreError> {
    RiskCategory::parse(s).ok_or_else(|| StoreError::Corrupt(format!("risk category {s:?}")))
}

/// Segment, feature and stage-entry values of a deal, stored as JSON beside its columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Attributes {
    #[serde(default)]
    segments: BTreeMap<String, String>,
    #[serde(default)]
    numeric: BTreeMap<String, f64>,
    #[serde(default)]
    stage_entered: BTreeMap<String, NaiveDate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::parse("acme-corp_2").is_ok());
        for bad in ["", "Acme", "a b", "a;drop", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
