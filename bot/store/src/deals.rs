//! Deals: imports (upserts by CRM id, one transaction each, with the history of what changed and
//! the rows validation refused), and reading deals back.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use engine::domain::{Outcome, RiskCategory};
use engine::ingest::Problem;
use engine::record::{DealRecord, SchemaSpec};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::db::{CHUNK, FEW, Sql, Value};
use crate::tenants::BUMP_DATA_VERSION;
use crate::{SqlStore, StoreError, TenantId, parse_stored, stored_int};

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
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
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

#[async_trait::async_trait]
pub trait Deals {
    /// Upserts an export's deals by CRM id in one transaction, recording what changed.
    async fn import(&self, tenant: &TenantId, batch: &ImportBatch) -> Result<ImportOutcome, StoreError>;
    async fn import_errors(&self, tenant: &TenantId, import_id: &str) -> Result<Vec<ImportError>, StoreError>;
    async fn deals(&self, tenant: &TenantId) -> Result<Vec<DealRecord>, StoreError>;
    async fn deal(&self, tenant: &TenantId, deal_id: &str) -> Result<Option<StoredDeal>, StoreError>;
    async fn deal_history(&self, tenant: &TenantId, deal_id: &str) -> Result<Vec<HistoryEntry>, StoreError>;
    async fn count_deals(&self, tenant: &TenantId) -> Result<u64, StoreError>;
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

/// The deal columns every read selects, in [`DealRow`]'s order.
const DEAL_COLUMNS: &str = "SELECT deal_id, name, owner, created_date, closed_date, stage, amount, outcome, attributes, \
     risk_score, risk_category, win_probability, model_version, scored_at, updated_at ";

/// A `deals` row as read back.
#[derive(Debug, sqlx::FromRow)]
struct DealRow {
    deal_id: String,
    name: String,
    owner: Option<String>,
    created_date: Option<NaiveDate>,
    closed_date: Option<NaiveDate>,
    stage: Option<String>,
    amount: Option<f64>,
    outcome: String,
    attributes: Json<Attributes>,
    risk_score: Option<i64>,
    risk_category: Option<String>,
    win_probability: Option<f64>,
    model_version: Option<String>,
    scored_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl DealRow {
    fn record(&self) -> Result<DealRecord, StoreError> {
        let Json(attributes) = &self.attributes;
        Ok(DealRecord {
            id: self.deal_id.clone(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            created: self.created_date,
            closed: self.closed_date,
            stage: self.stage.clone(),
            amount: self.amount,
            outcome: parse_stored("outcome", &self.outcome, Outcome::parse)?,
            segments: attributes.segments.clone(),
            numeric: attributes.numeric.clone(),
            stage_entered: attributes.stage_entered.clone(),
        })
    }

    fn stored(&self) -> Result<StoredDeal, StoreError> {
        let score =
            match (self.risk_score, &self.risk_category, self.win_probability, &self.model_version, self.scored_at) {
                (Some(s), Some(c), Some(p), Some(v), Some(at)) => Some(CurrentScore {
                    risk_score: stored_int("risk score", s)?,
                    risk_category: parse_stored("risk category", c, RiskCategory::parse)?,
                    win_probability: p,
                    model_version: v.clone(),
                    scored_at: at,
                }),
                _ => None,
            };
        Ok(StoredDeal { record: self.record()?, score, updated_at: self.updated_at })
    }
}

/// The tracked fields that changed between two versions of a deal: (field, old, new).
fn changes(old: &DealRecord, new: &DealRecord) -> Vec<(&'static str, Option<String>, Option<String>)> {
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

fn problem_kind(p: &Problem) -> String {
    serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A history row to write: (deal id, field, old value, new value).
type Change<'a> = (&'a str, &'static str, Option<String>, Option<String>);

#[async_trait::async_trait]
impl Deals for SqlStore {
    async fn import(&self, tenant: &TenantId, batch: &ImportBatch) -> Result<ImportOutcome, StoreError> {
        let t = tenant.as_str();
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO tenants (tenant_id, name, schema_spec, created_at) VALUES ($1, $1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET schema_spec = excluded.schema_spec",
            )
            .bind(t)
            .bind(Value::json(&batch.spec))
            .bind(batch.at),
        )
        .await?;

        // A small batch (a webhook's few records) reads only its own rows back; a large one (an
        // export, a full sync) reads the tenant's once.
        let mut existing: Vec<DealRow> = Vec::new();
        if batch.records.len() <= FEW {
            for chunk in batch.records.chunks(CHUNK) {
                let mut q = Sql::new(DEAL_COLUMNS);
                q.push("FROM deals WHERE tenant_id = ").push_bind(t).push(" AND deal_id IN ");
                q.push_list(chunk.iter().map(|r| r.id.as_str()));
                existing.extend(tx.all::<DealRow>(q).await?);
            }
        } else {
            let mut q = Sql::new(DEAL_COLUMNS);
            q.push("FROM deals WHERE tenant_id = $1");
            existing = tx.all(q.bind(t)).await?;
        }
        let existing: HashMap<String, DealRecord> =
            existing.iter().map(|r| Ok((r.deal_id.clone(), r.record()?))).collect::<Result<_, StoreError>>()?;

        let mut outcome = ImportOutcome::default();
        let mut changed: Vec<&DealRecord> = Vec::new();
        let mut history: Vec<Change<'_>> = Vec::new();
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
                    for (field, before, after) in changes(old, record) {
                        history.push((record.id.as_str(), field, before, after));
                    }
                }
            }
        }
        outcome.history = history.len();

        for chunk in changed.chunks(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO deals (tenant_id, deal_id, name, owner, created_date, closed_date, stage, amount, \
                 outcome, attributes, updated_at) ",
            );
            q.push_rows(chunk, |r| {
                let attributes = Attributes {
                    segments: r.segments.clone(),
                    numeric: r.numeric.clone(),
                    stage_entered: r.stage_entered.clone(),
                };
                vec![
                    t.into(),
                    r.id.as_str().into(),
                    r.name.as_str().into(),
                    r.owner.as_deref().into(),
                    r.created.into(),
                    r.closed.into(),
                    r.stage.as_deref().into(),
                    r.amount.into(),
                    r.outcome.as_str().into(),
                    Value::json(&attributes),
                    batch.at.into(),
                ]
            });
            q.push(
                " ON CONFLICT (tenant_id, deal_id) DO UPDATE SET name = excluded.name, owner = excluded.owner, \
                 created_date = excluded.created_date, closed_date = excluded.closed_date, stage = excluded.stage, \
                 amount = excluded.amount, outcome = excluded.outcome, attributes = excluded.attributes, \
                 updated_at = excluded.updated_at",
            );
            tx.execute(q).await?;
        }
        for chunk in history.chunks(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO deal_history (tenant_id, deal_id, field, old_value, new_value, changed_at, import_id) ",
            );
            q.push_rows(chunk, |(deal_id, field, old, new)| {
                vec![
                    t.into(),
                    (*deal_id).into(),
                    (*field).into(),
                    old.as_deref().into(),
                    new.as_deref().into(),
                    batch.at.into(),
                    batch.import_id.as_str().into(),
                ]
            });
            tx.execute(q).await?;
        }
        let count = |n: usize| n as i64;
        tx.execute(
            Sql::new(
                "INSERT INTO imports (tenant_id, import_id, source, started_at, rows_read, rows_accepted, \
                 rows_quarantined, inserted, updated, unchanged) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t)
            .bind(batch.import_id.as_str())
            .bind(batch.source.as_str())
            .bind(batch.at)
            .bind(count(batch.rows_read))
            .bind(count(batch.records.len()))
            .bind(count(batch.rejected.len()))
            .bind(count(outcome.inserted))
            .bind(count(outcome.updated))
            .bind(count(outcome.unchanged)),
        )
        .await?;
        for chunk in batch.rejected.chunks(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO import_errors (tenant_id, import_id, row_number, deal_id, column_name, value, kind, \
                 severity, reason) ",
            );
            q.push_rows(chunk, |p| {
                vec![
                    t.into(),
                    batch.import_id.as_str().into(),
                    i64::from(p.row).into(),
                    p.deal_id.as_deref().into(),
                    p.column.as_str().into(),
                    p.value.as_str().into(),
                    problem_kind(p).into(),
                    "error".into(),
                    p.reason.as_str().into(),
                ]
            });
            tx.execute(q).await?;
        }
        if outcome.inserted + outcome.updated > 0 {
            tx.execute(Sql::new(BUMP_DATA_VERSION).bind(t)).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn import_errors(&self, tenant: &TenantId, import_id: &str) -> Result<Vec<ImportError>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(i64, Option<String>, String, String, String, String)> = tx
            .all(
                Sql::new(
                    "SELECT row_number, deal_id, column_name, value, kind, reason FROM import_errors \
                     WHERE tenant_id = $1 AND import_id = $2 ORDER BY row_number, id",
                )
                .bind(tenant.as_str())
                .bind(import_id),
            )
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
        let mut q = Sql::new(DEAL_COLUMNS);
        q.push("FROM deals WHERE tenant_id = $1 ORDER BY deal_id");
        let rows: Vec<DealRow> = tx.all(q.bind(tenant.as_str())).await?;
        tx.commit().await?;
        rows.iter().map(DealRow::record).collect()
    }

    async fn deal(&self, tenant: &TenantId, deal_id: &str) -> Result<Option<StoredDeal>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut q = Sql::new(DEAL_COLUMNS);
        q.push("FROM deals WHERE tenant_id = $1 AND deal_id = $2");
        let row: Option<DealRow> = tx.optional(q.bind(tenant.as_str()).bind(deal_id)).await?;
        tx.commit().await?;
        row.as_ref().map(DealRow::stored).transpose()
    }

    async fn deal_history(&self, tenant: &TenantId, deal_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows = tx
            .all(
                Sql::new(
                    "SELECT field, old_value, new_value, changed_at, import_id FROM deal_history \
                     WHERE tenant_id = $1 AND deal_id = $2 ORDER BY id",
                )
                .bind(tenant.as_str())
                .bind(deal_id),
            )
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn count_deals(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let (n,): (i64,) =
            tx.one(Sql::new("SELECT COUNT(*) FROM deals WHERE tenant_id = $1").bind(tenant.as_str())).await?;
        tx.commit().await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
