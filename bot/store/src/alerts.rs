//! The alert outbox: alerts raised in the same transaction as the change that caused them,
//! claimed by senders under a lease and finished once; the clicks on them (feedback) and the
//! thresholds tuned from those clicks.
//!
//! The life of an alert row: `pending` (waiting for its due time) → `sending` (claimed by one
//! sender under a lease) → `sent`; or `failed` (retried) → `escalated`, with a new alert on the
//! fallback channel raised in the same transaction.

use chrono::{DateTime, Utc};
use engine::alerts::{AlertKind, Priority};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::db::{CHUNK, Sql, Tx, Value};
use crate::{SqlStore, StoreError, TenantId, parse_stored, stored_int};

/// The outbox channel of alerts that wait for the recipient's daily digest.
pub const DIGEST_CHANNEL: &str = "digest";

/// Where an alert is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Sending,
    Sent,
    Failed,
    Escalated,
    /// Not delivered on purpose (a snooze, a mute); kept for the record.
    Suppressed,
}

impl AlertState {
    pub const ALL: [AlertState; 6] = [
        AlertState::Pending,
        AlertState::Sending,
        AlertState::Sent,
        AlertState::Failed,
        AlertState::Escalated,
        AlertState::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Sending => "sending",
            AlertState::Sent => "sent",
            AlertState::Failed => "failed",
            AlertState::Escalated => "escalated",
            AlertState::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        AlertState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An alert: raised by a planner (pending, never tried, as [`Alert::now`] makes it) and
/// written into the outbox, then read back with where its delivery stands. One record from
/// planning to delivery; the store writes a raised alert as pending whatever its delivery fields
/// say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub alert_id: String,
    pub kind: AlertKind,
    pub priority: Priority,
    pub subject: String,
    pub recipient: String,
    pub channel: String,
    /// At most one alert per key and tenant.
    pub dedup_key: String,
    /// The facts the templates render.
    pub payload: serde_json::Value,
    /// Deal alerts: the score alerted on.
    pub score: Option<u8>,
    pub state: AlertState,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// Not to be delivered before (epoch milliseconds).
    pub due_ms: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    pub escalated_from: Option<String>,
}

impl Alert {
    /// A new alert id: time-ordered (UUID v7), so ids sort as alerts were raised.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// An alert of `kind` raised at `now` and due at once, with a fresh id, no score and no
    /// predecessor, pending; callers adjust the rest.
    pub fn now(
        kind: AlertKind,
        subject: impl Into<String>,
        recipient: impl Into<String>,
        channel: impl Into<String>,
        dedup_key: String,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Alert {
        Alert {
            alert_id: Alert::new_id(),
            kind,
            priority: kind.priority(),
            subject: subject.into(),
            recipient: recipient.into(),
            channel: channel.into(),
            dedup_key,
            payload,
            score: None,
            created_at: now,
            due_ms: ms(now),
            escalated_from: None,
            state: AlertState::Pending,
            attempts: 0,
            sent_at: None,
            last_error: None,
            external_id: None,
        }
    }
}

/// How one delivery attempt of a claimed alert ended, as the sender records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        at: DateTime<Utc>,
        external_id: Option<String>,
    },
    /// To be tried again at `retry_ms`.
    Failed {
        error: String,
        retry_ms: i64,
    },
    /// Given up on this channel; `fallback` (if any) is raised in the same transaction.
    Escalated {
        error: String,
        fallback: Option<Box<Alert>>,
    },
}

/// Which alerts [`Alerts::alerts`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    pub alert_id: Option<String>,
    pub kinds: Vec<AlertKind>,
    pub states: Vec<AlertState>,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub limit: Option<u32>,
}

/// Epoch milliseconds of a time.
pub fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

// What a click on an alert said (a plain comment: the OpenAPI document stays as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Useful,
    NotRelevant,
    FalseAlarm,
    Snooze,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Useful, Action::NotRelevant, Action::FalseAlarm, Action::Snooze];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Useful => "useful",
            Action::NotRelevant => "not_relevant",
            Action::FalseAlarm => "false_alarm",
            Action::Snooze => "snooze",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Said the alert should not have come.
    pub fn dismisses(self) -> bool {
        matches!(self, Action::NotRelevant | Action::FalseAlarm)
    }
}

/// A stored click.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    pub alert_id: String,
    pub user_id: String,
    pub kind: AlertKind,
    pub subject: String,
    pub action: Action,
    pub reason: Option<String>,
    pub snooze_until_ms: Option<i64>,
    pub snooze_score: Option<u8>,
    /// The risk score judged: the alert's, or the deal's on the card clicked (as we scored it,
    /// never as the button said).
    pub score: Option<u8>,
    pub created_at: DateTime<Utc>,
    pub dedup_key: String,
}

/// A tenant's threshold for an alert kind, set by feedback or pinned by an admin.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tuning {
    pub kind: AlertKind,
    pub threshold: u8,
    /// `feedback` or `admin`.
    pub source: String,
    pub reason: String,
    pub updated_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait Alerts {
    /// Writes alerts into the outbox; one whose dedup key exists already is skipped. Returns how
    /// many were new.
    async fn raise_alerts(&self, tenant: &TenantId, alerts: &[Alert]) -> Result<usize, StoreError>;
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
        outcome: &Outcome,
    ) -> Result<bool, StoreError>;
    /// Raises `digest` and, in the same transaction, marks the `bundled` alerts (pending on the
    /// digest channel) as sent inside it. Returns false when the digest existed already (its
    /// dedup key), and then changes nothing.
    async fn raise_digest(&self, tenant: &TenantId, digest: &Alert, bundled: &[String]) -> Result<bool, StoreError>;
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
}

/// The alert columns every read selects, in [`AlertRow`]'s order.
const ALERT_COLUMNS: &str = "SELECT alert_id, kind, priority, subject, recipient, channel, dedup_key, payload, score, \
     state, attempts, created_at, due_ms, sent_at, last_error, external_id, escalated_from ";

/// An `alerts` row as read back.
#[derive(Debug, sqlx::FromRow)]
struct AlertRow {
    alert_id: String,
    kind: String,
    priority: String,
    subject: String,
    recipient: String,
    channel: String,
    dedup_key: String,
    payload: Json<serde_json::Value>,
    score: Option<i64>,
    state: String,
    attempts: i64,
    created_at: DateTime<Utc>,
    due_ms: i64,
    sent_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    external_id: Option<String>,
    escalated_from: Option<String>,
}

impl AlertRow {
    fn alert(self) -> Result<Alert, StoreError> {
        Ok(Alert {
            kind: parse_stored("alert kind", &self.kind, AlertKind::parse)?,
            priority: parse_stored("alert priority", &self.priority, Priority::parse)?,
            state: parse_stored("alert state", &self.state, AlertState::parse)?,
            score: self.score.map(|s| stored_int("alert score", s)).transpose()?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            alert_id: self.alert_id,
            subject: self.subject,
            recipient: self.recipient,
            channel: self.channel,
            dedup_key: self.dedup_key,
            payload: self.payload.0,
            created_at: self.created_at,
            due_ms: self.due_ms,
            sent_at: self.sent_at,
            last_error: self.last_error,
            external_id: self.external_id,
            escalated_from: self.escalated_from,
        })
    }
}

/// An `alert_feedback` row as selected.
#[derive(Debug, sqlx::FromRow)]
struct FeedbackRow {
    alert_id: String,
    user_id: String,
    kind: String,
    subject: String,
    action: String,
    reason: Option<String>,
    snooze_until_ms: Option<i64>,
    snooze_score: Option<i64>,
    created_at: DateTime<Utc>,
    dedup_key: String,
    score: Option<i64>,
}

/// Writes alerts in the transaction `tx`, skipping those whose dedup key exists; returns how
/// many were new.
pub(crate) async fn insert_alerts(tx: &mut Tx, tenant: &TenantId, alerts: &[Alert]) -> Result<usize, StoreError> {
    let mut raised = 0;
    for chunk in alerts.chunks(CHUNK / 4) {
        let mut q = Sql::new(
            "INSERT INTO alerts (tenant_id, alert_id, kind, priority, subject, recipient, channel, dedup_key, \
             payload, score, state, attempts, created_at, due_ms, escalated_from) ",
        );
        q.push_rows(chunk, |a| {
            vec![
                tenant.as_str().into(),
                a.alert_id.as_str().into(),
                a.kind.as_str().into(),
                a.priority.as_str().into(),
                a.subject.as_str().into(),
                a.recipient.as_str().into(),
                a.channel.as_str().into(),
                a.dedup_key.as_str().into(),
                Value::json(&a.payload),
                a.score.map(i64::from).into(),
                "pending".into(),
                0_i64.into(),
                a.created_at.into(),
                a.due_ms.into(),
                a.escalated_from.as_deref().into(),
            ]
        });
        q.push(" ON CONFLICT (tenant_id, dedup_key) DO NOTHING");
        raised += tx.execute(q).await? as usize;
    }
    Ok(raised)
}

#[async_trait::async_trait]
impl Alerts for SqlStore {
    async fn raise_alerts(&self, tenant: &TenantId, alerts: &[Alert]) -> Result<usize, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let raised = insert_alerts(&mut tx, tenant, alerts).await?;
        tx.commit().await?;
        Ok(raised)
    }

    async fn claim_alerts(
        &self,
        tenant: &TenantId,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError> {
        let t = tenant.as_str();
        let mut tx = self.begin_write(tenant).await?;
        let mut due = Sql::new("SELECT alert_id FROM alerts WHERE tenant_id = ");
        due.push_bind(t);
        due.push(" AND ((state IN ('pending', 'failed') AND due_ms <= ").push_bind(now_ms);
        due.push(") OR (state = 'sending' AND lease_until_ms <= ").push_bind(now_ms);
        due.push(")) ORDER BY due_ms, alert_id LIMIT ").push_bind(i64::from(limit));
        due.push(tx.skip_locked());
        let ids: Vec<(String,)> = tx.all(due).await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let ids = || ids.iter().map(|(id,)| id.as_str());
        let mut claim = Sql::new("UPDATE alerts SET state = 'sending', attempts = attempts + 1, lease_until_ms = ");
        claim.push_bind(now_ms + lease_ms).push(" WHERE tenant_id = ").push_bind(t);
        claim.push(" AND alert_id IN ").push_list(ids());
        tx.execute(claim).await?;
        let mut read = Sql::new(ALERT_COLUMNS);
        read.push("FROM alerts WHERE tenant_id = ").push_bind(t);
        read.push(" AND alert_id IN ").push_list(ids()).push(" ORDER BY due_ms, alert_id");
        let rows: Vec<AlertRow> = tx.all(read).await?;
        tx.commit().await?;
        rows.into_iter().map(AlertRow::alert).collect()
    }

    async fn finish_alert(
        &self,
        tenant: &TenantId,
        alert_id: &str,
        attempt: u32,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let (state, sent_at, external_id, error, due_ms) = match outcome {
            Outcome::Sent { at, external_id } => ("sent", Some(*at), external_id.as_deref(), None, None),
            Outcome::Failed { error, retry_ms } => ("failed", None, None, Some(error.as_str()), Some(*retry_ms)),
            Outcome::Escalated { error, .. } => ("escalated", None, None, Some(error.as_str()), None),
        };
        let updated = tx
            .execute(
                Sql::new(
                    "UPDATE alerts SET state = $4, sent_at = $5, external_id = $6, last_error = $7, \
                     due_ms = COALESCE($8, due_ms), lease_until_ms = NULL \
                     WHERE tenant_id = $1 AND alert_id = $2 AND state = 'sending' AND attempts = $3",
                )
                .bind(tenant.as_str())
                .bind(alert_id)
                .bind(i64::from(attempt))
                .bind(state)
                .bind(sent_at)
                .bind(external_id)
                .bind(error)
                .bind(due_ms),
            )
            .await?
            == 1;
        if updated && let Outcome::Escalated { fallback: Some(fallback), .. } = outcome {
            insert_alerts(&mut tx, tenant, std::slice::from_ref(fallback.as_ref())).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn raise_digest(&self, tenant: &TenantId, digest: &Alert, bundled: &[String]) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let raised = insert_alerts(&mut tx, tenant, std::slice::from_ref(digest)).await? == 1;
        if raised {
            for chunk in bundled.chunks(CHUNK) {
                let mut q = Sql::new("UPDATE alerts SET state = 'sent', sent_at = ");
                q.push_bind(digest.created_at).push(", external_id = ").push_bind(digest.alert_id.as_str());
                q.push(" WHERE tenant_id = ").push_bind(tenant.as_str());
                q.push(" AND state = 'pending' AND channel = ").push_bind(DIGEST_CHANNEL);
                q.push(" AND alert_id IN ").push_list(chunk.iter().map(String::as_str));
                tx.execute(q).await?;
            }
        }
        tx.commit().await?;
        Ok(raised)
    }

    async fn alerts(&self, tenant: &TenantId, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut q = Sql::new(ALERT_COLUMNS);
        q.push("FROM alerts WHERE tenant_id = ").push_bind(tenant.as_str());
        if !query.kinds.is_empty() {
            q.push(" AND kind IN ").push_list(query.kinds.iter().map(|k| k.as_str()));
        }
        if !query.states.is_empty() {
            q.push(" AND state IN ").push_list(query.states.iter().map(|s| s.as_str()));
        }
        if let Some(id) = &query.alert_id {
            q.push(" AND alert_id = ").push_bind(id.as_str());
        }
        if let Some(recipient) = &query.recipient {
            q.push(" AND recipient = ").push_bind(recipient.as_str());
        }
        if let Some(subject) = &query.subject {
            q.push(" AND subject = ").push_bind(subject.as_str());
        }
        q.push(" ORDER BY created_at DESC, alert_id DESC LIMIT ").push_bind(i64::from(query.limit.unwrap_or(1000)));
        let rows: Vec<AlertRow> = tx.all(q).await?;
        tx.commit().await?;
        rows.into_iter().map(AlertRow::alert).collect()
    }

    async fn record_feedback(&self, tenant: &TenantId, f: &Feedback) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let new = tx
            .execute(
                Sql::new(
                    "INSERT INTO alert_feedback (tenant_id, alert_id, user_id, kind, subject, action, reason, \
                     snooze_until_ms, snooze_score, created_at, dedup_key, score) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (tenant_id, dedup_key) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(f.alert_id.as_str())
                .bind(f.user_id.as_str())
                .bind(f.kind.as_str())
                .bind(f.subject.as_str())
                .bind(f.action.as_str())
                .bind(f.reason.as_deref())
                .bind(f.snooze_until_ms)
                .bind(f.snooze_score.map(i64::from))
                .bind(f.created_at)
                .bind(f.dedup_key.as_str())
                .bind(f.score.map(i64::from)),
            )
            .await?
            == 1;
        tx.commit().await?;
        Ok(new)
    }

    async fn feedback(&self, tenant: &TenantId, since: DateTime<Utc>) -> Result<Vec<Feedback>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<FeedbackRow> = tx
            .all(
                Sql::new(
                    "SELECT alert_id, user_id, kind, subject, action, reason, snooze_until_ms, snooze_score, \
                     created_at, dedup_key, score FROM alert_feedback WHERE tenant_id = $1 AND created_at >= $2 \
                     ORDER BY id",
                )
                .bind(tenant.as_str())
                .bind(since),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|r| {
                Ok(Feedback {
                    kind: parse_stored("alert kind", &r.kind, AlertKind::parse)?,
                    action: parse_stored("feedback action", &r.action, Action::parse)?,
                    alert_id: r.alert_id,
                    user_id: r.user_id,
                    subject: r.subject,
                    reason: r.reason,
                    snooze_until_ms: r.snooze_until_ms,
                    snooze_score: r.snooze_score.and_then(|s| u8::try_from(s).ok()),
                    score: r.score.and_then(|s| u8::try_from(s).ok()),
                    created_at: r.created_at,
                    dedup_key: r.dedup_key,
                })
            })
            .collect()
    }

    async fn tunings(&self, tenant: &TenantId) -> Result<Vec<Tuning>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(String, i64, String, String, DateTime<Utc>)> = tx
            .all(
                Sql::new(
                    "SELECT kind, threshold, source, reason, updated_at FROM alert_tuning WHERE tenant_id = $1 \
                     ORDER BY kind",
                )
                .bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(kind, threshold, source, reason, updated_at)| {
                Ok(Tuning {
                    kind: parse_stored("alert kind", &kind, AlertKind::parse)?,
                    threshold: stored_int("threshold", threshold)?,
                    source,
                    reason,
                    updated_at,
                })
            })
            .collect()
    }

    async fn set_tuning(&self, tenant: &TenantId, kind: AlertKind, tuning: Option<&Tuning>) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let q = match tuning {
            Some(t) => Sql::new(
                "INSERT INTO alert_tuning (tenant_id, kind, threshold, source, reason, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, kind) DO UPDATE SET \
                 threshold = excluded.threshold, source = excluded.source, reason = excluded.reason, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(i64::from(t.threshold))
            .bind(t.source.as_str())
            .bind(t.reason.as_str())
            .bind(t.updated_at),
            None => Sql::new("DELETE FROM alert_tuning WHERE tenant_id = $1 AND kind = $2")
                .bind(tenant.as_str())
                .bind(kind.as_str()),
        };
        tx.execute(q).await?;
        tx.commit().await
    }
}
