//! The store's SQL, written once for both databases.
//!
//! `implement_store!` expands the [`Store`](super::Store) methods for one sqlx database type.
//! Each dialect provides `begin` and `begin_write`, which open a transaction scoped to the tenant
//! (on PostgreSQL by setting `app.tenant_id` for row-level security; on SQLite a write
//! transaction takes the lock up front so concurrent writers wait instead of failing). The SQL is
//! portable: `$N` placeholders, `ON CONFLICT … DO UPDATE`, `IS DISTINCT FROM`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;

use super::{Alert, Attributes, CurrentScore, StoreError, StoredDeal, parse_category, parse_outcome};
use engine::record::DealRecord;

/// Bumped in the same transaction as a change to a tenant's deals or models (see [`Stamp`]).
pub(crate) const BUMP_DATA_VERSION: &str = "UPDATE tenants SET data_version = data_version + 1 WHERE tenant_id = $1";
/// Bumped in the same transaction as new scores.
pub(crate) const BUMP_SCORES_VERSION: &str =
    "UPDATE tenants SET scores_version = scores_version + 1 WHERE tenant_id = $1";

/// How long a failed job run waits before it may be claimed again.
pub(crate) const JOB_RETRY_MS: i64 = 60_000;

/// Rows of `deals` as read back.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct DealRow {
    pub deal_id: String,
    pub name: String,
    pub owner: Option<String>,
    pub created_date: Option<NaiveDate>,
    pub closed_date: Option<NaiveDate>,
    pub stage: Option<String>,
    pub amount: Option<f64>,
    pub outcome: String,
    pub attributes: Json<Attributes>,
    pub risk_score: Option<i64>,
    pub risk_category: Option<String>,
    pub win_probability: Option<f64>,
    pub model_version: Option<String>,
    pub scored_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// `SELECT <deal columns> <rest>` as a static string (sqlx only runs audited, constant SQL).
macro_rules! select_deals {
    ($rest:literal) => {
        concat!(
            "SELECT deal_id, name, owner, created_date, closed_date, stage, amount, outcome, attributes, \
             risk_score, risk_category, win_probability, model_version, scored_at, updated_at ",
            $rest
        )
    };
}
pub(super) use select_deals;

impl DealRow {
    pub fn record(&self) -> Result<DealRecord, StoreError> {
        let Json(attributes) = &self.attributes;
        Ok(DealRecord {
            id: self.deal_id.clone(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            created: self.created_date,
            closed: self.closed_date,
            stage: self.stage.clone(),
            amount: self.amount,
            outcome: parse_outcome(&self.outcome)?,
            segments: attributes.segments.clone(),
            numeric: attributes.numeric.clone(),
            stage_entered: attributes.stage_entered.clone(),
        })
    }

    pub fn stored(&self) -> Result<StoredDeal, StoreError> {
        let score =
            match (self.risk_score, &self.risk_category, self.win_probability, &self.model_version, self.scored_at) {
                (Some(s), Some(c), Some(p), Some(v), Some(at)) => Some(CurrentScore {
                    risk_score: u8::try_from(s).map_err(|_| StoreError::Corrupt(format!("risk score {s}")))?,
                    risk_category: parse_category(c)?,
                    win_probability: p,
                    model_version: v.clone(),
                    scored_at: at,
                }),
                _ => None,
            };
        Ok(StoredDeal { record: self.record()?, score, updated_at: self.updated_at })
    }
}

/// Rows of `alerts` as read back.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct AlertRow {
    pub alert_id: String,
    pub kind: String,
    pub priority: String,
    pub subject: String,
    pub recipient: String,
    pub channel: String,
    pub dedup_key: String,
    pub payload: Json<serde_json::Value>,
    pub score: Option<i64>,
    pub state: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub due_ms: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    pub escalated_from: Option<String>,
}

/// `SELECT <alert columns> <rest>` as a static string.
macro_rules! select_alerts {
    ($rest:literal) => {
        concat!(
            "SELECT alert_id, kind, priority, subject, recipient, channel, dedup_key, payload, score, state, attempts, \
             created_at, due_ms, sent_at, last_error, external_id, escalated_from ",
            $rest
        )
    };
}
pub(super) use select_alerts;

impl AlertRow {
    pub fn alert(self) -> Result<Alert, StoreError> {
        Ok(Alert {
            kind: super::parse_kind(&self.kind)?,
            priority: super::parse_priority(&self.priority)?,
            state: super::parse_alert_state(&self.state)?,
            score: self
                .score
                .map(|s| u8::try_from(s).map_err(|_| StoreError::Corrupt(format!("alert score {s}"))))
                .transpose()?,
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

pub(super) fn attributes(record: &DealRecord) -> Attributes {
    Attributes {
        segments: record.segments.clone(),
        numeric: record.numeric.clone(),
        stage_entered: record.stage_entered.clone(),
    }
}

/// The tracked fields that changed between two versions of a deal: (field, old, new).
pub(super) fn changes(old: &DealRecord, new: &DealRecord) -> Vec<(&'static str, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    if old.stage != new.stage {
        out.push(("stage", old.stage.clone(), new.stage.clone()));
    }
    if old.amount != new.amount {
        out.push(("amount", old.amount.map(|a| a.to_string()), new.amount.map(|a| a.to_string())));
    }
    if old.closed != new.closed {
        out.push(("closed_date", old.closed.map(|d| d.to_string()), new.closed.map(|d| d.to_string())));
    }
    if old.outcome != new.outcome {
        out.push(("outcome", Some(old.outcome.as_str().to_owned()), Some(new.outcome.as_str().to_owned())));
    }
    out
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound variables.
pub(super) const CHUNK: usize = 500;

/// Up to this many ids, a lookup names them (`IN (...)` in chunks); beyond, it reads the
/// tenant's rows once.
pub(super) const FEW: usize = 2_000;

macro_rules! implement_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO tenants (tenant_id, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(name)
                .bind(chrono::Utc::now())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn tenant(&self, tenant: &TenantId) -> Result<Option<TenantInfo>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<(String, Json<SchemaSpec>)> =
                    sqlx::query_as("SELECT name, schema_spec FROM tenants WHERE tenant_id = $1")
                        .bind(tenant.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(row.map(|(name, Json(schema))| TenantInfo { id: tenant.clone(), name, schema }))
            }

            async fn import(&self, tenant: &TenantId, batch: &ImportBatch) -> Result<ImportOutcome, StoreError> {
                use std::collections::HashMap;
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO tenants (tenant_id, name, schema_spec, created_at) VALUES ($1, $1, $2, $3) \
                     ON CONFLICT (tenant_id) DO UPDATE SET schema_spec = excluded.schema_spec",
                )
                .bind(tenant.as_str())
                .bind(Json(&batch.spec))
                .bind(batch.at)
                .execute(&mut *tx)
                .await?;

                // A small batch (a webhook's few records) reads only its own rows back; a large
                // one (an export, a full sync) reads the tenant's once.
                let mut existing: Vec<sql::DealRow> = Vec::new();
                if batch.records.len() <= sql::FEW {
                    for chunk in batch.records.chunks(sql::CHUNK) {
                        let mut q = sqlx::QueryBuilder::<$db>::new(sql::select_deals!("FROM deals WHERE tenant_id = "));
                        q.push_bind(tenant.as_str()).push(" AND deal_id IN (");
                        let mut ids = q.separated(", ");
                        for r in chunk {
                            ids.push_bind(r.id.as_str());
                        }
                        q.push(")");
                        existing.extend(q.build_query_as::<sql::DealRow>().fetch_all(&mut *tx).await?);
                    }
                } else {
                    existing = sqlx::query_as(sql::select_deals!("FROM deals WHERE tenant_id = $1"))
                        .bind(tenant.as_str())
                        .fetch_all(&mut *tx)
                        .await?;
                }
                let existing: HashMap<String, DealRecord> =
                    existing.iter().map(|r| Ok((r.deal_id.clone(), r.record()?))).collect::<Result<_, StoreError>>()?;

                let mut outcome = ImportOutcome::default();
                let mut changed: Vec<&DealRecord> = Vec::new();
                let mut history: Vec<(&str, &'static str, Option<String>, Option<String>)> = Vec::new();
                for record in &batch.records {
                    match existing.get(&record.id) {
                        None => {
                            outcome.inserted += 1;
                            changed.push(record);
                        }
                        Some(old) if old == record => outcome.unchanged += 1,
                        Some(old) => {
                            outcome.updated += 1;
                            changed.push(record);
                            for (field, before, after) in sql::changes(old, record) {
                                history.push((record.id.as_str(), field, before, after));
                            }
                        }
                    }
                }
                outcome.history = history.len();

                for chunk in changed.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO deals (tenant_id, deal_id, name, owner, created_date, closed_date, stage, \
                         amount, outcome, attributes, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(tenant.as_str())
                            .push_bind(r.id.as_str())
                            .push_bind(r.name.as_str())
                            .push_bind(r.owner.as_deref())
                            .push_bind(r.created)
                            .push_bind(r.closed)
                            .push_bind(r.stage.as_deref())
                            .push_bind(r.amount)
                            .push_bind(super::outcome_str(r.outcome))
                            .push_bind(Json(sql::attributes(r)))
                            .push_bind(batch.at);
                    });
                    q.push(
                        " ON CONFLICT (tenant_id, deal_id) DO UPDATE SET name = excluded.name, owner = excluded.owner, \
                         created_date = excluded.created_date, closed_date = excluded.closed_date, stage = excluded.stage, \
                         amount = excluded.amount, outcome = excluded.outcome, attributes = excluded.attributes, \
                         updated_at = excluded.updated_at",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in history.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO deal_history (tenant_id, deal_id, field, old_value, new_value, changed_at, import_id) ",
                    );
                    q.push_values(chunk, |mut b, (deal_id, field, old, new)| {
                        b.push_bind(tenant.as_str())
                            .push_bind(*deal_id)
                            .push_bind(*field)
                            .push_bind(old.as_deref())
                            .push_bind(new.as_deref())
                            .push_bind(batch.at)
                            .push_bind(batch.import_id.as_str());
                    });
                    q.build().execute(&mut *tx).await?;
                }
                let count = |n: usize| n as i64;
                sqlx::query(
                    "INSERT INTO imports (tenant_id, import_id, source, started_at, rows_read, rows_accepted, \
                     rows_quarantined, inserted, updated, unchanged) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(tenant.as_str())
                .bind(batch.import_id.as_str())
                .bind(batch.source.as_str())
                .bind(batch.at)
                .bind(count(batch.rows_read))
                .bind(count(batch.records.len()))
                .bind(count(batch.rejected.len()))
                .bind(count(outcome.inserted))
                .bind(count(outcome.updated))
                .bind(count(outcome.unchanged))
                .execute(&mut *tx)
                .await?;
                for chunk in batch.rejected.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO import_errors (tenant_id, import_id, row_number, deal_id, column_name, value, kind, \
                         severity, reason) ",
                    );
                    q.push_values(chunk, |mut b, p| {
                        b.push_bind(tenant.as_str())
                            .push_bind(batch.import_id.as_str())
                            .push_bind(i64::from(p.row))
                            .push_bind(p.deal_id.as_deref())
                            .push_bind(p.column.as_str())
                            .push_bind(p.value.as_str())
                            .push_bind(super::problem_kind(p))
                            .push_bind("error")
                            .push_bind(p.reason.as_str());
                    });
                    q.build().execute(&mut *tx).await?;
                }
                if outcome.inserted + outcome.updated > 0 {
                    sqlx::query($crate::store::sql::BUMP_DATA_VERSION).bind(tenant.as_str()).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }

            async fn import_errors(&self, tenant: &TenantId, import_id: &str) -> Result<Vec<ImportError>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows: Vec<(i64, Option<String>, String, String, String, String)> = sqlx::query_as(
                    "SELECT row_number, deal_id, column_name, value, kind, reason FROM import_errors \
                     WHERE tenant_id = $1 AND import_id = $2 ORDER BY row_number, id",
                )
                .bind(tenant.as_str())
                .bind(import_id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|(row, deal_id, column, value, kind, reason)| ImportError {
                        row: u32::try_from(row).unwrap_or(u32::MAX),
                        deal_id,
                        column,
                        value,
                        kind,
                        reason,
                    })
                    .collect())
            }

            async fn deals(&self, tenant: &TenantId) -> Result<Vec<DealRecord>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows: Vec<sql::DealRow> =
                    sqlx::query_as(sql::select_deals!("FROM deals WHERE tenant_id = $1 ORDER BY deal_id"))
                        .bind(tenant.as_str())
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                rows.iter().map(sql::DealRow::record).collect()
            }

            async fn deal(&self, tenant: &TenantId, deal_id: &str) -> Result<Option<StoredDeal>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<sql::DealRow> = sqlx::query_as(sql::select_deals!("FROM deals WHERE tenant_id = $1 AND deal_id = $2"))
                .bind(tenant.as_str())
                .bind(deal_id)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.as_ref().map(sql::DealRow::stored).transpose()
            }

            async fn deal_history(&self, tenant: &TenantId, deal_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows: Vec<(String, Option<String>, Option<String>, chrono::DateTime<chrono::Utc>, Option<String>)> =
                    sqlx::query_as(
                        "SELECT field, old_value, new_value, changed_at, import_id FROM deal_history \
                         WHERE tenant_id = $1 AND deal_id = $2 ORDER BY id",
                    )
                    .bind(tenant.as_str())
                    .bind(deal_id)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(rows
                    .into_iter()
                    .map(|(field, old_value, new_value, changed_at, import_id)| HistoryEntry {
                        field,
                        old_value,
                        new_value,
                        changed_at,
                        import_id,
                    })
                    .collect())
            }

            async fn count_deals(&self, tenant: &TenantId) -> Result<u64, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deals WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn stamp(&self, tenant: &TenantId) -> Result<Stamp, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let versions: Option<(i64, i64)> =
                    sqlx::query_as("SELECT data_version, scores_version FROM tenants WHERE tenant_id = $1")
                        .bind(tenant.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(versions.map_or_else(Stamp::default, |(data, scores)| Stamp { data, scores }))
            }

            async fn save_scores_raising(
                &self,
                tenant: &TenantId,
                at: chrono::DateTime<chrono::Utc>,
                as_of: Option<chrono::NaiveDate>,
                scores: &[ScoreUpdate],
                planner: &dyn AlertPlanner,
            ) -> Result<ScoresSaved, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                // What was stored before, for the planner.
                let mut before: std::collections::HashMap<String, (Option<i64>, Option<String>)> =
                    std::collections::HashMap::new();
                for chunk in scores.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT deal_id, risk_score, owner FROM deals WHERE tenant_id = ");
                    q.push_bind(tenant.as_str()).push(" AND deal_id IN (");
                    let mut list = q.separated(", ");
                    for s in chunk {
                        list.push_bind(s.deal_id.as_str());
                    }
                    q.push(")");
                    let rows: Vec<(String, Option<i64>, Option<String>)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    before.extend(rows.into_iter().map(|(id, score, owner)| (id, (score, owner))));
                }
                let changes: Vec<ScoreChange<'_>> = scores
                    .iter()
                    .map(|update| {
                        let (previous, owner) = before.remove(&update.deal_id).unwrap_or((None, None));
                        ScoreChange { update, previous: previous.and_then(|p| u8::try_from(p).ok()), owner }
                    })
                    .collect();
                let candidates = planner.candidates(&changes);
                let mut recent = Vec::new();
                for chunk in candidates.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT subject, recipient, score, created_at FROM alerts WHERE tenant_id = ",
                    );
                    q.push_bind(tenant.as_str()).push(" AND kind = ").push_bind(planner.kind().as_str());
                    q.push(" AND state <> 'suppressed' AND subject IN (");
                    let mut list = q.separated(", ");
                    for &i in chunk {
                        list.push_bind(changes[i].update.deal_id.as_str());
                    }
                    q.push(")");
                    let rows: Vec<(String, String, Option<i64>, chrono::DateTime<chrono::Utc>)> =
                        q.build_query_as().fetch_all(&mut *tx).await?;
                    recent.extend(rows.into_iter().map(|(subject, recipient, score, at)| RecentAlert {
                        subject,
                        recipient,
                        score: score.and_then(|s| u8::try_from(s).ok()),
                        at,
                    }));
                }
                let alerts = planner.plan(&changes, &candidates, &recent);
                for s in scores {
                    sqlx::query(
                        "UPDATE deals SET risk_score = $3, risk_category = $4, win_probability = $5, model_version = $6, \
                         scored_at = $7 WHERE tenant_id = $1 AND deal_id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(s.deal_id.as_str())
                    .bind(i64::from(s.risk_score))
                    .bind(s.risk_category.as_str())
                    .bind(s.win_probability)
                    .bind(s.model_version.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                for chunk in scores.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO scores (tenant_id, deal_id, scored_at, as_of, model_version, risk_score, \
                         risk_category, win_probability, confidence, card) ",
                    );
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(tenant.as_str())
                            .push_bind(s.deal_id.as_str())
                            .push_bind(at)
                            .push_bind(as_of)
                            .push_bind(s.model_version.as_str())
                            .push_bind(i64::from(s.risk_score))
                            .push_bind(s.risk_category.as_str())
                            .push_bind(s.win_probability)
                            .push_bind(s.confidence)
                            .push_bind(Json(&s.card));
                    });
                    q.build().execute(&mut *tx).await?;
                }
                if !scores.is_empty() {
                    sqlx::query($crate::store::sql::BUMP_SCORES_VERSION).bind(tenant.as_str()).execute(&mut *tx).await?;
                }
                let raised = Self::insert_alerts(&mut tx, tenant, &alerts).await?;
                tx.commit().await?;
                let rose = changes
                    .iter()
                    .filter(|c| match c.previous {
                        Some(p) => engine::domain::RiskCategory::from_score(p) < c.update.risk_category,
                        None => c.update.card.get("age_days").and_then(serde_json::Value::as_i64).is_some_and(|d| {
                            d <= $crate::alerts::routing::NEW_DEAL_DAYS
                        }),
                    })
                    .map(|c| c.update.deal_id.clone())
                    .collect();
                Ok(ScoresSaved { scores: scores.len(), alerts: raised, rose })
            }

            async fn high_risk(&self, tenant: &TenantId, query: &HighRiskQuery) -> Result<RiskPage, StoreError> {
                // The WHERE clause shared by the page and its summary.
                fn filter(q: &mut sqlx::QueryBuilder<$db>, tenant: &TenantId, query: &HighRiskQuery) {
                    q.push(" FROM deals WHERE tenant_id = ").push_bind(tenant.as_str());
                    q.push(" AND outcome = 'open' AND risk_score IS NOT NULL AND risk_category IN (");
                    let mut list = q.separated(", ");
                    for c in &query.categories {
                        list.push_bind(c.as_str());
                    }
                    q.push(")");
                    if let Some(owners) = &query.owners {
                        if owners.is_empty() {
                            q.push(" AND 1 = 0");
                        } else {
                            q.push(" AND owner IN (");
                            let mut list = q.separated(", ");
                            for o in owners {
                                list.push_bind(o.as_str());
                            }
                            q.push(")");
                        }
                    }
                }
                let mut tx = self.begin(tenant).await?;
                let mut page = sqlx::QueryBuilder::<$db>::new(
                    "SELECT deal_id, name, amount, risk_score, risk_category, owner, created_date, stage, scored_at, updated_at",
                );
                filter(&mut page, tenant, query);
                let direction = if query.descending { "DESC" } else { "ASC" };
                let order = match query.sort_by {
                    SortBy::RiskScore => format!(" ORDER BY risk_score {direction}, deal_id"),
                    SortBy::Amount => format!(" ORDER BY amount {direction}, deal_id"),
                    // Oldest first when descending by age.
                    SortBy::Age => format!(" ORDER BY created_date {}, deal_id", if query.descending { "ASC" } else { "DESC" }),
                };
                page.push(order);
                page.push(" LIMIT ").push_bind(i64::from(query.limit)).push(" OFFSET ").push_bind(i64::from(query.offset));
                type Row = (
                    String,
                    String,
                    Option<f64>,
                    i64,
                    String,
                    Option<String>,
                    Option<chrono::NaiveDate>,
                    Option<String>,
                    Option<chrono::DateTime<chrono::Utc>>,
                    chrono::DateTime<chrono::Utc>,
                );
                let rows: Vec<Row> = page.build_query_as().fetch_all(&mut *tx).await?;
                let mut summary = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*), SUM(amount), AVG(CAST(risk_score AS DOUBLE PRECISION)), \
                     SUM(CASE WHEN risk_category = 'critical' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN risk_category = 'high' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN risk_category = 'medium' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN risk_category = 'low' THEN 1 ELSE 0 END)",
                );
                filter(&mut summary, tenant, query);
                let (total, revenue, average, critical, high, medium, low): (
                    i64,
                    Option<f64>,
                    Option<f64>,
                    Option<i64>,
                    Option<i64>,
                    Option<i64>,
                    Option<i64>,
                ) = summary.build_query_as().fetch_one(&mut *tx).await?;
                tx.commit().await?;
                let deals = rows
                    .into_iter()
                    .map(|(deal_id, company, amount, score, category, rep, created, stage, scored_at, updated_at)| {
                        Ok(RiskyDeal {
                            deal_id,
                            company,
                            amount,
                            risk_score: u8::try_from(score).map_err(|_| StoreError::Corrupt(format!("risk score {score}")))?,
                            risk_category: super::parse_category(&category)?,
                            rep_id: rep,
                            created_date: created,
                            current_stage: stage,
                            scored_at,
                            updated_at,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let mut by_category = std::collections::BTreeMap::new();
                for (name, n) in [("critical", critical), ("high", high), ("medium", medium), ("low", low)] {
                    let n = u64::try_from(n.unwrap_or(0)).unwrap_or(0);
                    if n > 0 {
                        by_category.insert(name.to_owned(), n);
                    }
                }
                Ok(RiskPage {
                    deals,
                    total_count: u64::try_from(total).unwrap_or(0),
                    total_at_risk_revenue: revenue.unwrap_or(0.0),
                    average_risk_score: average,
                    deals_by_category: by_category,
                })
            }

            async fn save_model(&self, tenant: &TenantId, info: &ModelInfo, model: &serde_json::Value) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
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
                .bind(info.metrics.as_ref().map(Json))
                .bind(Json(model))
                .execute(&mut *tx)
                .await?;
                sqlx::query($crate::store::sql::BUMP_DATA_VERSION).bind(tenant.as_str()).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn promote_model(&self, tenant: &TenantId, version: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let found = sqlx::query("SELECT 1 FROM models WHERE tenant_id = $1 AND version = $2")
                    .bind(tenant.as_str())
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    return Err(StoreError::Invalid(format!("no model {version:?} for tenant {tenant}")));
                }
                sqlx::query("UPDATE models SET status = 'archived' WHERE tenant_id = $1 AND status = 'champion' AND version <> $2")
                    .bind(tenant.as_str())
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE models SET status = 'champion' WHERE tenant_id = $1 AND version = $2")
                    .bind(tenant.as_str())
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query($crate::store::sql::BUMP_DATA_VERSION).bind(tenant.as_str()).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn models(&self, tenant: &TenantId) -> Result<Vec<ModelInfo>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                type Row = (
                    String,
                    String,
                    String,
                    chrono::DateTime<chrono::Utc>,
                    Option<chrono::NaiveDate>,
                    i64,
                    Option<Json<serde_json::Value>>,
                );
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT version, kind, status, trained_at, as_of, n_train, metrics FROM models \
                     WHERE tenant_id = $1 ORDER BY trained_at DESC, version",
                )
                .bind(tenant.as_str())
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|(version, kind, status, trained_at, as_of, n_train, metrics)| {
                        Ok(ModelInfo {
                            version,
                            kind,
                            status: ModelStatus::parse(&status)?,
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
                let (Json(model),): (Json<serde_json::Value>,) =
                    sqlx::query_as("SELECT model FROM models WHERE tenant_id = $1 AND version = $2")
                        .bind(tenant.as_str())
                        .bind(info.version.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(Some((info, model)))
            }

            async fn upsert_user(&self, tenant: &TenantId, user: &User) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO users (tenant_id, user_id, email, name, crm_owner, role, manager_id, time_zone, \
                     slack_user_id, teams_user_id, discord_user_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = excluded.email, name = excluded.name, \
                     crm_owner = excluded.crm_owner, role = excluded.role, manager_id = excluded.manager_id, \
                     time_zone = excluded.time_zone, slack_user_id = excluded.slack_user_id, \
                     teams_user_id = excluded.teams_user_id, discord_user_id = excluded.discord_user_id",
                )
                .bind(tenant.as_str())
                .bind(user.user_id.as_str())
                .bind(user.email.as_deref())
                .bind(user.name.as_str())
                .bind(user.crm_owner.as_deref())
                .bind(user.role.as_str())
                .bind(user.manager_id.as_deref())
                .bind(user.time_zone.as_str())
                .bind(user.slack_user_id.as_deref())
                .bind(user.teams_user_id.as_deref())
                .bind(user.discord_user_id.as_deref())
                .bind(chrono::Utc::now())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn user(&self, tenant: &TenantId, user_id: &str) -> Result<Option<User>, StoreError> {
                Ok(self.users(tenant).await?.into_iter().find(|u| u.user_id == user_id))
            }

            async fn users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                type Row = (
                    String,
                    Option<String>,
                    String,
                    Option<String>,
                    String,
                    Option<String>,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                );
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT user_id, email, name, crm_owner, role, manager_id, time_zone, slack_user_id, \
                     teams_user_id, discord_user_id FROM users WHERE tenant_id = $1 ORDER BY user_id",
                )
                .bind(tenant.as_str())
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|(user_id, email, name, crm_owner, role, manager_id, time_zone, slack, teams, discord)| {
                        Ok(User {
                            role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
                            user_id,
                            email,
                            name,
                            crm_owner,
                            manager_id,
                            time_zone,
                            slack_user_id: slack,
                            teams_user_id: teams,
                            discord_user_id: discord,
                        })
                    })
                    .collect()
            }

            async fn save_alert_settings(
                &self,
                tenant: &TenantId,
                user_id: &str,
                settings: &serde_json::Value,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO alert_settings (tenant_id, user_id, settings, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, user_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .bind(Json(settings))
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn alert_settings(&self, tenant: &TenantId, user_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<(Json<serde_json::Value>,)> =
                    sqlx::query_as("SELECT settings FROM alert_settings WHERE tenant_id = $1 AND user_id = $2")
                        .bind(tenant.as_str())
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(row.map(|(Json(v),)| v))
            }

            async fn audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), StoreError> {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write(tenant).await?;
                for chunk in entries.chunks(sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO audit_log (tenant_id, at, actor, action, target, details, request_id) ",
                    );
                    q.push_values(chunk, |mut b, entry| {
                        b.push_bind(tenant.as_str())
                            .push_bind(entry.at)
                            .push_bind(entry.actor.as_str())
                            .push_bind(entry.action.as_str())
                            .push_bind(entry.target.as_deref())
                            .push_bind(entry.details.as_ref().map(Json))
                            .push_bind(entry.request_id.as_deref());
                    });
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn audit_log(&self, tenant: &TenantId, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                type Row = (
                    chrono::DateTime<chrono::Utc>,
                    String,
                    String,
                    Option<String>,
                    Option<Json<serde_json::Value>>,
                    Option<String>,
                );
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT at, actor, action, target, details, request_id FROM audit_log WHERE tenant_id = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(tenant.as_str())
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
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
                at: chrono::DateTime<chrono::Utc>,
                lapse: chrono::Duration,
            ) -> Result<IdempotencyState, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                // Expired keys go (the tenant's, by the index on created_at), and so does this
                // key if its request died in progress.
                sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2")
                    .bind(tenant.as_str())
                    .bind(at - crate::store::IDEMPOTENCY_KEPT)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3 \
                     AND status_code IS NULL AND created_at < $4",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .bind(key)
                .bind(at - lapse)
                .execute(&mut *tx)
                .await?;
                let claimed = sqlx::query(
                    "INSERT INTO idempotency_keys (tenant_id, user_id, idem_key, request_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, user_id, idem_key) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .bind(key)
                .bind(request_hash)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                let state = if claimed {
                    IdempotencyState::New
                } else {
                    let (hash, status, body): (String, Option<i64>, Option<Json<serde_json::Value>>) = sqlx::query_as(
                        "SELECT request_hash, status_code, response_body FROM idempotency_keys \
                         WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3",
                    )
                    .bind(tenant.as_str())
                    .bind(user_id)
                    .bind(key)
                    .fetch_one(&mut *tx)
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

            async fn claim_once(
                &self,
                scope: &str,
                digest: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_global_write().await?;
                sqlx::query("DELETE FROM seen_requests WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
                let new = sqlx::query(
                    "INSERT INTO seen_requests (scope, digest, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (scope, digest) DO NOTHING",
                )
                .bind(scope)
                .bind(digest)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                tx.commit().await?;
                Ok(new)
            }

            async fn revoke_tokens(
                &self,
                tenant: &TenantId,
                user_id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO token_revocations (tenant_id, user_id, not_before) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, user_id) DO UPDATE SET not_before = excluded.not_before",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn tokens_not_before(
                &self,
                tenant: &TenantId,
                user_id: &str,
            ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<(chrono::DateTime<chrono::Utc>,)> = sqlx::query_as(
                    "SELECT not_before FROM token_revocations WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row.map(|(at,)| at))
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
                sqlx::query(
                    "UPDATE idempotency_keys SET status_code = $4, response_body = $5 \
                     WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .bind(key)
                .bind(i64::from(status))
                .bind(Json(body))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn idempotency_abandon(&self, tenant: &TenantId, user_id: &str, key: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND idem_key = $3 \
                     AND status_code IS NULL",
                )
                .bind(tenant.as_str())
                .bind(user_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn crm_writes(
                &self,
                tenant: &TenantId,
                ids: &[String],
            ) -> Result<std::collections::HashMap<String, String>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let mut rows: Vec<(String, String)> = Vec::new();
                if ids.len() <= sql::FEW {
                    for chunk in ids.chunks(sql::CHUNK) {
                        let mut q =
                            sqlx::QueryBuilder::<$db>::new("SELECT deal_id, digest FROM crm_writes WHERE tenant_id = ");
                        q.push_bind(tenant.as_str()).push(" AND deal_id IN (");
                        let mut list = q.separated(", ");
                        for id in chunk {
                            list.push_bind(id.as_str());
                        }
                        q.push(")");
                        rows.extend(q.build_query_as::<(String, String)>().fetch_all(&mut *tx).await?);
                    }
                } else {
                    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
                    let all: Vec<(String, String)> =
                        sqlx::query_as("SELECT deal_id, digest FROM crm_writes WHERE tenant_id = $1")
                            .bind(tenant.as_str())
                            .fetch_all(&mut *tx)
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
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                for chunk in written.chunks(sql::CHUNK) {
                    let mut q =
                        sqlx::QueryBuilder::<$db>::new("INSERT INTO crm_writes (tenant_id, deal_id, digest, written_at) ");
                    q.push_values(chunk, |mut b, (deal, digest)| {
                        b.push_bind(tenant.as_str()).push_bind(deal.as_str()).push_bind(digest.as_str()).push_bind(at);
                    });
                    q.push(
                        " ON CONFLICT (tenant_id, deal_id) DO UPDATE SET digest = excluded.digest, \
                         written_at = excluded.written_at",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn watermark(&self, tenant: &TenantId, source: &str) -> Result<Option<String>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT watermark FROM sync_watermarks WHERE tenant_id = $1 AND source = $2")
                        .bind(tenant.as_str())
                        .bind(source)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(row.map(|(w,)| w))
            }

            async fn set_watermark(
                &self,
                tenant: &TenantId,
                source: &str,
                watermark: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO sync_watermarks (tenant_id, source, watermark, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, source) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
                )
                .bind(tenant.as_str())
                .bind(source)
                .bind(watermark)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn all_alert_settings(&self, tenant: &TenantId) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows: Vec<(String, Json<serde_json::Value>)> =
                    sqlx::query_as("SELECT user_id, settings FROM alert_settings WHERE tenant_id = $1 ORDER BY user_id")
                        .bind(tenant.as_str())
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(|(user, Json(settings))| (user, settings)).collect())
            }

            async fn tenant_setting(&self, tenant: &TenantId, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<(Json<serde_json::Value>,)> =
                    sqlx::query_as("SELECT value FROM tenant_settings WHERE tenant_id = $1 AND name = $2")
                        .bind(tenant.as_str())
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(row.map(|(Json(v),)| v))
            }

            async fn save_tenant_setting(
                &self,
                tenant: &TenantId,
                name: &str,
                value: &serde_json::Value,
                by: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO tenant_settings (tenant_id, name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
                     updated_by = excluded.updated_by",
                )
                .bind(tenant.as_str())
                .bind(name)
                .bind(Json(value))
                .bind(at)
                .bind(by)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_task(&self, tenant: &TenantId, task: &FollowUpTask) -> Result<(FollowUpTask, bool), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let new = sqlx::query(
                    "INSERT INTO follow_up_tasks (tenant_id, task_id, task_key, deal_id, subject, due_date, owner, created_by, \
                     created_at, state, crm_id, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
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
                .bind(task.error.as_deref())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                let stored = Self::select_tasks(&mut tx, tenant, "task_key", task.task_key.as_str()).await?;
                tx.commit().await?;
                let stored = stored.into_iter().next().ok_or_else(|| StoreError::Corrupt("a task vanished after its insert".into()))?;
                Ok((stored, new))
            }

            async fn tasks(&self, tenant: &TenantId, deal_id: Option<&str>) -> Result<Vec<FollowUpTask>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows = match deal_id {
                    Some(deal) => Self::select_tasks(&mut tx, tenant, "deal_id", deal).await?,
                    None => Self::select_tasks(&mut tx, tenant, "tenant_id", tenant.as_str()).await?,
                };
                tx.commit().await?;
                Ok(rows)
            }

            async fn tasks_in_state(&self, tenant: &TenantId, state: &str) -> Result<Vec<FollowUpTask>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let mut rows = Self::select_tasks(&mut tx, tenant, "state", state).await?;
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
                sqlx::query("UPDATE follow_up_tasks SET state = $3, crm_id = $4, error = $5 WHERE tenant_id = $1 AND task_id = $2")
                    .bind(tenant.as_str())
                    .bind(task_id)
                    .bind(state)
                    .bind(crm_id)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn save_slack_installation(&self, i: &SlackInstallation) -> Result<(), StoreError> {
                // Installing again refreshes the token; it never moves a workspace to another
                // tenant (its people would be answered from that tenant's deals).
                if let Some(existing) = self.slack_installation(&i.team_id).await?
                    && existing.tenant != i.tenant
                {
                    return Err(StoreError::Taken(format!(
                        "Slack workspace {} is already connected to another Dealwatch tenant",
                        i.team_id
                    )));
                }
                let mut tx = self.begin_write(&i.tenant).await?;
                let saved = sqlx::query(
                    "INSERT INTO slack_installations (team_id, tenant_id, team_name, bot_user_id, scopes, token_sealed, \
                     installed_by, installed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (team_id) DO UPDATE SET team_name = excluded.team_name, \
                     bot_user_id = excluded.bot_user_id, scopes = excluded.scopes, token_sealed = excluded.token_sealed, \
                     installed_by = excluded.installed_by, installed_at = excluded.installed_at \
                     WHERE slack_installations.tenant_id = excluded.tenant_id",
                )
                .bind(i.team_id.as_str())
                .bind(i.tenant.as_str())
                .bind(i.team_name.as_str())
                .bind(i.bot_user_id.as_deref())
                .bind(i.scopes.as_str())
                .bind(i.token_sealed.as_str())
                .bind(i.installed_by.as_deref())
                .bind(i.installed_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if saved == 0 {
                    return Err(StoreError::Taken(format!(
                        "Slack workspace {} is already connected to another Dealwatch tenant",
                        i.team_id
                    )));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn slack_installation(&self, team_id: &str) -> Result<Option<SlackInstallation>, StoreError> {
                let mut tx = self.begin_directory().await?;
                type Row = (String, String, String, Option<String>, String, String, Option<String>, chrono::DateTime<chrono::Utc>);
                let row: Option<Row> = sqlx::query_as(
                    "SELECT team_id, tenant_id, team_name, bot_user_id, scopes, token_sealed, installed_by, installed_at \
                     FROM slack_installations WHERE team_id = $1",
                )
                .bind(team_id)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.map(|(team_id, tenant, team_name, bot_user_id, scopes, token_sealed, installed_by, installed_at)| {
                    Ok(SlackInstallation {
                        team_id,
                        tenant: TenantId::parse(&tenant).map_err(|_| StoreError::Corrupt(format!("tenant id {tenant:?}")))?,
                        team_name,
                        bot_user_id,
                        scopes,
                        token_sealed,
                        installed_by,
                        installed_at,
                    })
                })
                .transpose()
            }

            async fn save_conversation(&self, tenant: &TenantId, c: &Conversation) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                sqlx::query(
                    "INSERT INTO chat_conversations (tenant_id, platform, key, conversation_id, service_url, org_id, \
                     bot_id, user_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (tenant_id, platform, key) DO UPDATE SET conversation_id = excluded.conversation_id, \
                     service_url = excluded.service_url, org_id = excluded.org_id, bot_id = excluded.bot_id, \
                     user_id = excluded.user_id, updated_at = excluded.updated_at",
                )
                .bind(tenant.as_str())
                .bind(c.platform.as_str())
                .bind(c.key.as_str())
                .bind(c.conversation_id.as_str())
                .bind(c.service_url.as_str())
                .bind(c.org_id.as_str())
                .bind(c.bot_id.as_deref())
                .bind(c.user_id.as_deref())
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn conversations(&self, tenant: &TenantId, platform: &str) -> Result<Vec<Conversation>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows: Vec<sql::ConversationRow> = sqlx::query_as(
                    "SELECT platform, key, conversation_id, service_url, org_id, bot_id, user_id, updated_at \
                     FROM chat_conversations WHERE tenant_id = $1 AND platform = $2 ORDER BY updated_at DESC, key",
                )
                .bind(tenant.as_str())
                .bind(platform)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows.into_iter().map(sql::conversation).collect())
            }

            async fn conversation(
                &self,
                tenant: &TenantId,
                platform: &str,
                key: &str,
            ) -> Result<Option<Conversation>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let row: Option<sql::ConversationRow> = sqlx::query_as(
                    "SELECT platform, key, conversation_id, service_url, org_id, bot_id, user_id, updated_at \
                     FROM chat_conversations WHERE tenant_id = $1 AND platform = $2 AND key = $3",
                )
                .bind(tenant.as_str())
                .bind(platform)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row.map(sql::conversation))
            }

            async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
                let mut tx = self.begin_directory().await?;
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT tenant_id FROM tenants ORDER BY tenant_id").fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.into_iter().map(|(id,)| TenantId::parse(&id).map_err(|_| StoreError::Corrupt(format!("tenant id {id:?}")))).collect()
            }

            async fn raise_alerts(&self, tenant: &TenantId, alerts: &[NewAlert]) -> Result<usize, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let raised = Self::insert_alerts(&mut tx, tenant, alerts).await?;
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
                let mut tx = self.begin_write(tenant).await?;
                let mut due = sqlx::QueryBuilder::<$db>::new("SELECT alert_id FROM alerts WHERE tenant_id = ");
                due.push_bind(tenant.as_str());
                due.push(" AND ((state IN ('pending', 'failed') AND due_ms <= ").push_bind(now_ms);
                due.push(") OR (state = 'sending' AND lease_until_ms <= ").push_bind(now_ms);
                due.push(")) ORDER BY due_ms, alert_id LIMIT ").push_bind(i64::from(limit));
                due.push(Self::SKIP_LOCKED);
                let ids: Vec<(String,)> = due.build_query_as().fetch_all(&mut *tx).await?;
                if ids.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let in_list = |q: &mut sqlx::QueryBuilder<$db>| {
                    q.push(" AND alert_id IN (");
                    let mut list = q.separated(", ");
                    for (id,) in &ids {
                        list.push_bind(id.as_str());
                    }
                    q.push(")");
                };
                let mut claim = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE alerts SET state = 'sending', attempts = attempts + 1, lease_until_ms = ",
                );
                claim.push_bind(now_ms + lease_ms).push(" WHERE tenant_id = ").push_bind(tenant.as_str());
                in_list(&mut claim);
                claim.build().execute(&mut *tx).await?;
                let mut read = sqlx::QueryBuilder::<$db>::new(sql::select_alerts!("FROM alerts WHERE tenant_id = "));
                read.push_bind(tenant.as_str());
                in_list(&mut read);
                read.push(" ORDER BY due_ms, alert_id");
                let rows: Vec<sql::AlertRow> = read.build_query_as().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.into_iter().map(sql::AlertRow::alert).collect()
            }

            async fn finish_alert(
                &self,
                tenant: &TenantId,
                alert_id: &str,
                attempt: u32,
                outcome: &AlertOutcome,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let (state, sent_at, external_id, error, due_ms) = match outcome {
                    AlertOutcome::Sent { at, external_id } => ("sent", Some(*at), external_id.as_deref(), None, None),
                    AlertOutcome::Failed { error, retry_ms } => ("failed", None, None, Some(error.as_str()), Some(*retry_ms)),
                    AlertOutcome::Escalated { error, .. } => ("escalated", None, None, Some(error.as_str()), None),
                };
                let updated = sqlx::query(
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
                .bind(due_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if updated {
                    if let AlertOutcome::Escalated { fallback: Some(fallback), .. } = outcome {
                        Self::insert_alerts(&mut tx, tenant, std::slice::from_ref(fallback)).await?;
                    }
                }
                tx.commit().await?;
                Ok(updated)
            }

            async fn alerts(&self, tenant: &TenantId, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let mut q = sqlx::QueryBuilder::<$db>::new(sql::select_alerts!("FROM alerts WHERE tenant_id = "));
                q.push_bind(tenant.as_str());
                if !query.kinds.is_empty() {
                    q.push(" AND kind IN (");
                    let mut list = q.separated(", ");
                    for k in &query.kinds {
                        list.push_bind(k.as_str());
                    }
                    q.push(")");
                }
                if !query.states.is_empty() {
                    q.push(" AND state IN (");
                    let mut list = q.separated(", ");
                    for st in &query.states {
                        list.push_bind(st.as_str());
                    }
                    q.push(")");
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
                let rows: Vec<sql::AlertRow> = q.build_query_as().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.into_iter().map(sql::AlertRow::alert).collect()
            }

            async fn raise_digest(&self, tenant: &TenantId, digest: &NewAlert, bundled: &[String]) -> Result<bool, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let raised = Self::insert_alerts(&mut tx, tenant, std::slice::from_ref(digest)).await? == 1;
                if raised {
                    for chunk in bundled.chunks(sql::CHUNK) {
                        let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE alerts SET state = 'sent', sent_at = ");
                        q.push_bind(digest.created_at).push(", external_id = ").push_bind(digest.alert_id.as_str());
                        q.push(" WHERE tenant_id = ").push_bind(tenant.as_str());
                        q.push(" AND state = 'pending' AND channel = ").push_bind(crate::alerts::digest::DIGEST);
                        q.push(" AND alert_id IN (");
                        let mut list = q.separated(", ");
                        for id in chunk {
                            list.push_bind(id.as_str());
                        }
                        q.push(")");
                        q.build().execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(raised)
            }

            async fn record_feedback(&self, tenant: &TenantId, f: &Feedback) -> Result<bool, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let new = sqlx::query(
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
                .bind(f.score.map(i64::from))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                tx.commit().await?;
                Ok(new)
            }

            async fn feedback(&self, tenant: &TenantId, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<Feedback>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                type Row = (String, String, String, String, String, Option<String>, Option<i64>, Option<i64>, chrono::DateTime<chrono::Utc>, String, Option<i64>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT alert_id, user_id, kind, subject, action, reason, snooze_until_ms, snooze_score, created_at, dedup_key, \
                     score FROM alert_feedback WHERE tenant_id = $1 AND created_at >= $2 ORDER BY id",
                )
                .bind(tenant.as_str())
                .bind(since)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|(alert_id, user_id, kind, subject, action, reason, until, snoozed, created_at, dedup_key, score)| {
                        Ok(Feedback {
                            kind: super::parse_kind(&kind)?,
                            action: crate::alerts::feedback::Action::parse(&action)
                                .ok_or_else(|| StoreError::Corrupt(format!("feedback action {action:?}")))?,
                            alert_id,
                            user_id,
                            subject,
                            reason,
                            snooze_until_ms: until,
                            snooze_score: snoozed.and_then(|s| u8::try_from(s).ok()),
                            score: score.and_then(|s| u8::try_from(s).ok()),
                            created_at,
                            dedup_key,
                        })
                    })
                    .collect()
            }

            async fn tunings(&self, tenant: &TenantId) -> Result<Vec<Tuning>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                let rows: Vec<(String, i64, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
                    "SELECT kind, threshold, source, reason, updated_at FROM alert_tuning WHERE tenant_id = $1 ORDER BY kind",
                )
                .bind(tenant.as_str())
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|(kind, threshold, source, reason, updated_at)| {
                        Ok(Tuning {
                            kind: super::parse_kind(&kind)?,
                            threshold: u8::try_from(threshold).map_err(|_| StoreError::Corrupt(format!("threshold {threshold}")))?,
                            source,
                            reason,
                            updated_at,
                        })
                    })
                    .collect()
            }

            async fn set_tuning(&self, tenant: &TenantId, kind: engine::alerts::AlertKind, tuning: Option<&Tuning>) -> Result<(), StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                match tuning {
                    Some(t) => {
                        sqlx::query(
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
                        .bind(t.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM alert_tuning WHERE tenant_id = $1 AND kind = $2")
                            .bind(tenant.as_str())
                            .bind(kind.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn schedule_job(&self, tenant: &TenantId, job: &str, due_ms: i64) -> Result<bool, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let new = sqlx::query(
                    "INSERT INTO job_runs (tenant_id, job, due_ms, state) VALUES ($1, $2, $3, 'pending') \
                     ON CONFLICT (tenant_id, job, due_ms) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(job)
                .bind(due_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                tx.commit().await?;
                Ok(new)
            }

            async fn claim_job(&self, tenant: &TenantId, now_ms: i64, lease_ms: i64) -> Result<Option<JobRun>, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT job, due_ms FROM job_runs WHERE tenant_id = ");
                q.push_bind(tenant.as_str());
                q.push(" AND ((state = 'pending' AND (lease_until_ms IS NULL OR lease_until_ms <= ").push_bind(now_ms);
                q.push(")) OR (state = 'running' AND lease_until_ms <= ").push_bind(now_ms);
                q.push(")) ORDER BY due_ms, job LIMIT 1");
                q.push(Self::SKIP_LOCKED);
                let Some((job, due_ms)): Option<(String, i64)> = q.build_query_as().fetch_optional(&mut *tx).await? else {
                    tx.commit().await?;
                    return Ok(None);
                };
                let (attempts,): (i64,) = sqlx::query_as(
                    "UPDATE job_runs SET state = 'running', attempts = attempts + 1, lease_until_ms = $4, started_at = $5 \
                     WHERE tenant_id = $1 AND job = $2 AND due_ms = $3 RETURNING attempts",
                )
                .bind(tenant.as_str())
                .bind(job.as_str())
                .bind(due_ms)
                .bind(now_ms + lease_ms)
                .bind(chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms))
                .fetch_one(&mut *tx)
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
                at: chrono::DateTime<chrono::Utc>,
                outcome: &JobOutcome,
                max_attempts: u32,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write(tenant).await?;
                // A failed run waits a minute before any scheduler claims it again (its
                // lease_until_ms says when), so that peers do not retry it at once.
                let retry_at = at.timestamp_millis() + $crate::store::sql::JOB_RETRY_MS;
                let (state, result, error, not_before) = match outcome {
                    JobOutcome::Done(result) => ("done", Some(Json(result)), None, None),
                    JobOutcome::Failed(error) if run.attempts < max_attempts => {
                        ("pending", None, Some(error.as_str()), Some(retry_at))
                    }
                    JobOutcome::Failed(error) => ("failed", None, Some(error.as_str()), None),
                };
                let updated = sqlx::query(
                    "UPDATE job_runs SET state = $5, result = $6, last_error = $7, finished_at = $8, lease_until_ms = $9 \
                     WHERE tenant_id = $1 AND job = $2 AND due_ms = $3 AND state = 'running' AND attempts = $4",
                )
                .bind(tenant.as_str())
                .bind(run.job.as_str())
                .bind(run.due_ms)
                .bind(i64::from(run.attempts))
                .bind(state)
                .bind(result)
                .bind(error)
                .bind(at)
                .bind(not_before)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                tx.commit().await?;
                Ok(updated)
            }

            async fn job_runs(&self, tenant: &TenantId, limit: u32) -> Result<Vec<JobRun>, StoreError> {
                let mut tx = self.begin(tenant).await?;
                type Row = (String, i64, String, i64, Option<Json<serde_json::Value>>, Option<String>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT job, due_ms, state, attempts, result, last_error FROM job_runs WHERE tenant_id = $1 \
                     ORDER BY due_ms DESC, job LIMIT $2",
                )
                .bind(tenant.as_str())
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
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

        impl $store {
            /// Tasks where `column` (task_key, deal_id or tenant_id) is `value`, newest first.
            async fn select_tasks(
                tx: &mut sqlx::Transaction<'static, $db>,
                tenant: &TenantId,
                column: &'static str,
                value: &str,
            ) -> Result<Vec<FollowUpTask>, StoreError> {
                type Row = (String, String, String, String, Option<chrono::NaiveDate>, Option<String>, String, chrono::DateTime<chrono::Utc>, String, Option<String>, Option<String>);
                let sql: &'static str = match column {
                    "task_key" => "SELECT task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error \
                     FROM follow_up_tasks WHERE tenant_id = $1 AND task_key = $2 ORDER BY created_at DESC, task_id",
                    "deal_id" => "SELECT task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error \
                     FROM follow_up_tasks WHERE tenant_id = $1 AND deal_id = $2 ORDER BY created_at DESC, task_id",
                    "state" => "SELECT task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error \
                     FROM follow_up_tasks WHERE tenant_id = $1 AND state = $2 ORDER BY created_at DESC, task_id",
                    _ => "SELECT task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error \
                     FROM follow_up_tasks WHERE tenant_id = $1 AND tenant_id = $2 ORDER BY created_at DESC, task_id",
                };
                let rows: Vec<Row> = sqlx::query_as(sql).bind(tenant.as_str()).bind(value).fetch_all(&mut **tx).await?;
                Ok(rows
                    .into_iter()
                    .map(|(task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error)| {
                        FollowUpTask { task_id, task_key, deal_id, subject, due_date, owner, created_by, created_at, state, crm_id, error }
                    })
                    .collect())
            }

            /// Writes alerts in the transaction `tx`, skipping those whose dedup key exists.
            async fn insert_alerts(
                tx: &mut sqlx::Transaction<'static, $db>,
                tenant: &TenantId,
                alerts: &[NewAlert],
            ) -> Result<usize, StoreError> {
                let mut raised = 0;
                for chunk in alerts.chunks(sql::CHUNK / 4) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO alerts (tenant_id, alert_id, kind, priority, subject, recipient, channel, dedup_key, \
                         payload, score, state, attempts, created_at, due_ms, escalated_from) ",
                    );
                    q.push_values(chunk, |mut b, a| {
                        b.push_bind(tenant.as_str())
                            .push_bind(a.alert_id.as_str())
                            .push_bind(a.kind.as_str())
                            .push_bind(a.priority.as_str())
                            .push_bind(a.subject.as_str())
                            .push_bind(a.recipient.as_str())
                            .push_bind(a.channel.as_str())
                            .push_bind(a.dedup_key.as_str())
                            .push_bind(Json(&a.payload))
                            .push_bind(a.score.map(i64::from))
                            .push_bind("pending")
                            .push_bind(0_i64)
                            .push_bind(a.created_at)
                            .push_bind(a.due_ms)
                            .push_bind(a.escalated_from.as_deref());
                    });
                    q.push(" ON CONFLICT (tenant_id, dedup_key) DO NOTHING");
                    raised += q.build().execute(&mut **tx).await?.rows_affected() as usize;
                }
                Ok(raised)
            }
        }
    };
}

pub(super) use implement_store;

/// A `chat_conversations` row as the queries select it.
pub(crate) type ConversationRow =
    (String, String, String, String, String, Option<String>, Option<String>, DateTime<Utc>);

pub(crate) fn conversation(row: ConversationRow) -> super::Conversation {
    let (platform, key, conversation_id, service_url, org_id, bot_id, user_id, updated_at) = row;
    super::Conversation { platform, key, conversation_id, service_url, org_id, bot_id, user_id, updated_at }
}
