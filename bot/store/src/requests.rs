//! What requests leave behind: the audit log, idempotency keys (a retried request gets the
//! first one's answer), and signatures and one-use links already seen (replays refused).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::db::{CHUNK, Sql, Value};
use crate::{SqlStore, StoreError, TenantId};

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

#[async_trait::async_trait]
pub trait Requests {
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

    /// Takes `digest` in `scope` once until `expires_at` (a signed request, a one-use link):
    /// true the first time, false for a replay. Entries past their time are removed.
    async fn claim_once(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// An `audit_log` row as selected.
type AuditRow = (DateTime<Utc>, String, String, Option<String>, Option<Json<serde_json::Value>>, Option<String>);

#[async_trait::async_trait]
impl Requests for SqlStore {
    async fn audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write(tenant).await?;
        for chunk in entries.chunks(CHUNK) {
            let mut q = Sql::new("INSERT INTO audit_log (tenant_id, at, actor, action, target, details, request_id) ");
            q.push_rows(chunk, |entry| {
                vec![
                    tenant.as_str().into(),
                    entry.at.into(),
                    entry.actor.as_str().into(),
                    entry.action.as_str().into(),
                    entry.target.as_deref().into(),
                    Value::json_opt(entry.details.as_ref()),
                    entry.request_id.as_deref().into(),
                ]
            });
            tx.execute(q).await?;
        }
        tx.commit().await
    }

    async fn audit_log(&self, tenant: &TenantId, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<AuditRow> = tx
            .all(
                Sql::new(
                    "SELECT at, actor, action, target, details, request_id FROM audit_log WHERE tenant_id = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(tenant.as_str())
                .bind(i64::from(limit)),
            )
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, action, target, details, request_id)| AuditEntry {
                at,
                actor,
                action,
                target,
                details: details.map(|Json(d)| d),
                request_id,
            })
            .collect())
    }

    async fn idempotency_begin(
        &self,
        tenant: &TenantId,
        user_id: &str,
        key: &str,
        request_hash: &str,
        at: DateTime<Utc>,
        lapse: chrono::Duration,
    ) -> Result<IdempotencyState, StoreError> {
        let t = tenant.as_str();
        let mut tx = self.begin_write(tenant).await?;
        // Expired keys go (the tenant's, by the index on created_at), and so does this key if
        // its request died in progress.
        tx.execute(
            Sql::new("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2")
                .bind(t)
                .bind(at - IDEMPOTENCY_KEPT),
        )
        .await?;
        tx.execute(
            Sql::new(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3 \
                 AND status_code IS NULL AND created_at < $4",
            )
            .bind(t)
            .bind(user_id)
            .bind(key)
            .bind(at - lapse),
        )
        .await?;
        let claimed = tx
            .execute(
                Sql::new(
                    "INSERT INTO idempotency_keys (tenant_id, user_id, idem_key, request_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, user_id, idem_key) DO NOTHING",
                )
                .bind(t)
                .bind(user_id)
                .bind(key)
                .bind(request_hash)
                .bind(at),
            )
            .await?
            == 1;
        let state = if claimed {
            IdempotencyState::New
        } else {
            let (hash, status, body): (String, Option<i64>, Option<Json<serde_json::Value>>) = tx
                .one(
                    Sql::new(
                        "SELECT request_hash, status_code, response_body FROM idempotency_keys \
                         WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3",
                    )
                    .bind(t)
                    .bind(user_id)
                    .bind(key),
                )
                .await?;
            match (hash == request_hash, status, body) {
                (false, _, _) => IdempotencyState::Mismatch,
                (true, Some(status), Some(Json(body))) => {
                    IdempotencyState::Done { status: u16::try_from(status).unwrap_or(500), body }
                }
                _ => IdempotencyState::InProgress,
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    async fn idempotency_finish(
        &self,
        tenant: &TenantId,
        user_id: &str,
        key: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "UPDATE idempotency_keys SET status_code = $4, response_body = $5 \
                 WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3",
            )
            .bind(tenant.as_str())
            .bind(user_id)
            .bind(key)
            .bind(i64::from(status))
            .bind(Value::json(body)),
        )
        .await?;
        tx.commit().await
    }

    async fn idempotency_abandon(&self, tenant: &TenantId, user_id: &str, key: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3 \
                 AND status_code IS NULL",
            )
            .bind(tenant.as_str())
            .bind(user_id)
            .bind(key),
        )
        .await?;
        tx.commit().await
    }

    async fn claim_once(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_global_write().await?;
        tx.execute(Sql::new("DELETE FROM seen_requests WHERE expires_at < $1").bind(now)).await?;
        let new = tx
            .execute(
                Sql::new(
                    "INSERT INTO seen_requests (scope, digest, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (scope, digest) DO NOTHING",
                )
                .bind(scope)
                .bind(digest)
                .bind(expires_at),
            )
            .await?
            == 1;
        tx.commit().await?;
        Ok(new)
    }
}
