//! Job runs: one row per job and due time, claimed by one scheduler at a time under a lease, so
//! that every replica may run the scheduler and each run happens once.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::db::{Sql, Value};
use crate::{SqlStore, StoreError, TenantId};

/// How long a failed job run waits before it may be claimed again.
const JOB_RETRY_MS: i64 = 60_000;

/// A run of a job, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRun {
    pub job: String,
    pub due_ms: i64,
    pub state: String,
    pub attempts: u32,
    pub result: Option<serde_json::Value>,
    pub last_error: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Done(serde_json::Value),
    Failed(String),
}

#[async_trait::async_trait]
pub trait Jobs {
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
}

#[async_trait::async_trait]
impl Jobs for SqlStore {
    async fn schedule_job(&self, tenant: &TenantId, job: &str, due_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let new = tx
            .execute(
                Sql::new(
                    "INSERT INTO job_runs (tenant_id, job, due_ms, state) VALUES ($1, $2, $3, 'pending') \
                     ON CONFLICT (tenant_id, job, due_ms) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(job)
                .bind(due_ms),
            )
            .await?
            == 1;
        tx.commit().await?;
        Ok(new)
    }

    async fn claim_job(&self, tenant: &TenantId, now_ms: i64, lease_ms: i64) -> Result<Option<JobRun>, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        let mut q = Sql::new("SELECT job, due_ms FROM job_runs WHERE tenant_id = ");
        q.push_bind(tenant.as_str());
        q.push(" AND ((state = 'pending' AND (lease_until_ms IS NULL OR lease_until_ms <= ").push_bind(now_ms);
        q.push(")) OR (state = 'running' AND lease_until_ms <= ").push_bind(now_ms);
        q.push(")) ORDER BY due_ms, job LIMIT 1");
        q.push(tx.skip_locked());
        let Some((job, due_ms)): Option<(String, i64)> = tx.optional(q).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let (attempts,): (i64,) = tx
            .one(
                Sql::new(
                    "UPDATE job_runs SET state = 'running', attempts = attempts + 1, lease_until_ms = $4, \
                     started_at = $5 WHERE tenant_id = $1 AND job = $2 AND due_ms = $3 RETURNING attempts",
                )
                .bind(tenant.as_str())
                .bind(job.as_str())
                .bind(due_ms)
                .bind(now_ms + lease_ms)
                .bind(DateTime::<Utc>::from_timestamp_millis(now_ms)),
            )
            .await?;
        tx.commit().await?;
        Ok(Some(JobRun {
            job,
            due_ms,
            state: "running".into(),
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            result: None,
            last_error: None,
        }))
    }

    async fn finish_job(
        &self,
        tenant: &TenantId,
        run: &JobRun,
        at: DateTime<Utc>,
        outcome: &JobOutcome,
        max_attempts: u32,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        // A failed run waits a minute before any scheduler claims it again (its lease_until_ms
        // says when), so that peers do not retry it at once.
        let retry_at = at.timestamp_millis() + JOB_RETRY_MS;
        let (state, result, error, not_before) = match outcome {
            JobOutcome::Done(result) => ("done", Some(result), None, None),
            JobOutcome::Failed(error) if run.attempts < max_attempts => {
                ("pending", None, Some(error.as_str()), Some(retry_at))
            }
            JobOutcome::Failed(error) => ("failed", None, Some(error.as_str()), None),
        };
        let updated = tx
            .execute(
                Sql::new(
                    "UPDATE job_runs SET state = $5, result = $6, last_error = $7, finished_at = $8, \
                     lease_until_ms = $9 WHERE tenant_id = $1 AND job = $2 AND due_ms = $3 AND state = 'running' \
                     AND attempts = $4",
                )
                .bind(tenant.as_str())
                .bind(run.job.as_str())
                .bind(run.due_ms)
                .bind(i64::from(run.attempts))
                .bind(state)
                .bind(Value::json_opt(result))
                .bind(error)
                .bind(at)
                .bind(not_before),
            )
            .await?
            == 1;
        tx.commit().await?;
        Ok(updated)
    }

    async fn job_runs(&self, tenant: &TenantId, limit: u32) -> Result<Vec<JobRun>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        type Row = (String, i64, String, i64, Option<Json<serde_json::Value>>, Option<String>);
        let rows: Vec<Row> = tx
            .all(
                Sql::new(
                    "SELECT job, due_ms, state, attempts, result, last_error FROM job_runs WHERE tenant_id = $1 \
                     ORDER BY due_ms DESC, job LIMIT $2",
                )
                .bind(tenant.as_str())
                .bind(i64::from(limit)),
            )
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(job, due_ms, state, attempts, result, last_error)| JobRun {
                job,
                due_ms,
                state,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                result: result.map(|Json(r)| r),
                last_error,
            })
            .collect())
    }
}
