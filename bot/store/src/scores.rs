//! Scores: a deal's current score beside it and a history row per scoring, saved in one
//! transaction with the alerts they raise; and the listing of risky deals.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use engine::alerts::AlertKind;
use engine::domain::RiskCategory;
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, insert_alerts};
use crate::db::{CHUNK, Sql, Value};
use crate::tenants::BUMP_SCORES_VERSION;
use crate::{SqlStore, StoreError, TenantId, parse_stored, stored_int};

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
/// [`Scores::save_scores_raising`]).
pub trait AlertPlanner: Send + Sync {
    /// The kind of alert planned (its recent alerts are read for throttling).
    fn kind(&self) -> AlertKind;
    /// Positions in `changes` that might raise an alert: their recent alerts are read.
    fn candidates(&self, changes: &[ScoreChange<'_>]) -> Vec<usize>;
    /// The alerts to raise, given the recent alerts of the candidates.
    fn plan(&self, changes: &[ScoreChange<'_>], candidates: &[usize], recent: &[RecentAlert]) -> Vec<Alert>;
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
    fn plan(&self, _: &[ScoreChange<'_>], _: &[usize], _: &[RecentAlert]) -> Vec<Alert> {
        Vec::new()
    }
}

/// What [`Scores::save_scores_raising`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScoresSaved {
    pub scores: usize,
    /// Alerts raised (duplicates of existing ones are not counted).
    pub alerts: usize,
    /// Each update's score stored before it (`None`: never scored), in the updates' order.
    pub previous: Vec<Option<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    RiskScore,
    Amount,
    Age,
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
    /// filters, order and summary as [`Scores::high_risk`], in memory.
    pub fn select(rows: &[RiskyDeal], query: &HighRiskQuery) -> RiskPage {
        let owners: Option<HashSet<&str>> = query.owners.as_ref().map(|o| o.iter().map(String::as_str).collect());
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

#[async_trait::async_trait]
pub trait Scores {
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
}

/// A listed deal as selected: id, name, amount, score, category, owner, created, stage, scored,
/// updated.
type RiskRow = (
    String,
    String,
    Option<f64>,
    i64,
    String,
    Option<String>,
    Option<NaiveDate>,
    Option<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The listing's summary: count, revenue, average score, and the count of each category.
type SummaryRow = (i64, Option<f64>, Option<f64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// The WHERE clause shared by the listing's page and its summary.
fn risky<'a>(q: &mut Sql<'a>, tenant: &'a TenantId, query: &'a HighRiskQuery) {
    q.push(" FROM deals WHERE tenant_id = ").push_bind(tenant.as_str());
    q.push(" AND outcome = 'open' AND risk_score IS NOT NULL AND risk_category IN ");
    q.push_list(query.categories.iter().map(|c| c.as_str()));
    match &query.owners {
        Some(owners) if owners.is_empty() => {
            q.push(" AND 1 = 0");
        }
        Some(owners) => {
            q.push(" AND owner IN ").push_list(owners.iter().map(String::as_str));
        }
        None => {}
    }
}

#[async_trait::async_trait]
impl Scores for SqlStore {
    async fn save_scores_raising(
        &self,
        tenant: &TenantId,
        at: DateTime<Utc>,
        as_of: Option<NaiveDate>,
        scores: &[ScoreUpdate],
        planner: &dyn AlertPlanner,
    ) -> Result<ScoresSaved, StoreError> {
        let t = tenant.as_str();
        let mut tx = self.begin_write(tenant).await?;
        // What was stored before, for the planner.
        let mut before: HashMap<String, (Option<i64>, Option<String>)> = HashMap::new();
        for chunk in scores.chunks(CHUNK) {
            let mut q = Sql::new("SELECT deal_id, risk_score, owner FROM deals WHERE tenant_id = ");
            q.push_bind(t).push(" AND deal_id IN ").push_list(chunk.iter().map(|s| s.deal_id.as_str()));
            let rows: Vec<(String, Option<i64>, Option<String>)> = tx.all(q).await?;
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
        let kind = planner.kind();
        let mut recent = Vec::new();
        for chunk in candidates.chunks(CHUNK) {
            let mut q = Sql::new("SELECT subject, recipient, score, created_at FROM alerts WHERE tenant_id = ");
            q.push_bind(t).push(" AND kind = ").push_bind(kind.as_str());
            q.push(" AND state <> 'suppressed' AND subject IN ");
            q.push_list(chunk.iter().map(|&i| changes[i].update.deal_id.as_str()));
            let rows: Vec<(String, String, Option<i64>, DateTime<Utc>)> = tx.all(q).await?;
            recent.extend(rows.into_iter().map(|(subject, recipient, score, at)| RecentAlert {
                subject,
                recipient,
                score: score.and_then(|s| u8::try_from(s).ok()),
                at,
            }));
        }
        let alerts = planner.plan(&changes, &candidates, &recent);
        for s in scores {
            tx.execute(
                Sql::new(
                    "UPDATE deals SET risk_score = $3, risk_category = $4, win_probability = $5, model_version = $6, \
                     scored_at = $7 WHERE tenant_id = $1 AND deal_id = $2",
                )
                .bind(t)
                .bind(s.deal_id.as_str())
                .bind(i64::from(s.risk_score))
                .bind(s.risk_category.as_str())
                .bind(s.win_probability)
                .bind(s.model_version.as_str())
                .bind(at),
            )
            .await?;
        }
        for chunk in scores.chunks(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO scores (tenant_id, deal_id, scored_at, as_of, model_version, risk_score, \
                 risk_category, win_probability, confidence, card) ",
            );
            q.push_rows(chunk, |s| {
                vec![
                    t.into(),
                    s.deal_id.as_str().into(),
                    at.into(),
                    as_of.into(),
                    s.model_version.as_str().into(),
                    i64::from(s.risk_score).into(),
                    s.risk_category.as_str().into(),
                    s.win_probability.into(),
                    s.confidence.into(),
                    Value::json(&s.card),
                ]
            });
            tx.execute(q).await?;
        }
        if !scores.is_empty() {
            tx.execute(Sql::new(BUMP_SCORES_VERSION).bind(t)).await?;
        }
        let raised = insert_alerts(&mut tx, tenant, &alerts).await?;
        tx.commit().await?;
        Ok(ScoresSaved { scores: scores.len(), alerts: raised, previous: changes.iter().map(|c| c.previous).collect() })
    }

    async fn high_risk(&self, tenant: &TenantId, query: &HighRiskQuery) -> Result<RiskPage, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut page = Sql::new(
            "SELECT deal_id, name, amount, risk_score, risk_category, owner, created_date, stage, scored_at, updated_at",
        );
        risky(&mut page, tenant, query);
        let direction = if query.descending { "DESC" } else { "ASC" };
        // Oldest first when descending by age.
        let age_direction = if query.descending { "ASC" } else { "DESC" };
        let order = match query.sort_by {
            SortBy::RiskScore => format!(" ORDER BY risk_score {direction}, deal_id"),
            SortBy::Amount => format!(" ORDER BY amount {direction}, deal_id"),
            SortBy::Age => format!(" ORDER BY created_date {age_direction}, deal_id"),
        };
        page.push(&order);
        page.push(" LIMIT ").push_bind(i64::from(query.limit)).push(" OFFSET ").push_bind(i64::from(query.offset));
        let rows: Vec<RiskRow> = tx.all(page).await?;
        let mut summary = Sql::new(
            "SELECT COUNT(*), SUM(amount), AVG(CAST(risk_score AS DOUBLE PRECISION)), \
             SUM(CASE WHEN risk_category = 'critical' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN risk_category = 'high' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN risk_category = 'medium' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN risk_category = 'low' THEN 1 ELSE 0 END)",
        );
        risky(&mut summary, tenant, query);
        let (total, revenue, average, critical, high, medium, low): SummaryRow = tx.one(summary).await?;
        tx.commit().await?;
        let deals = rows
            .into_iter()
            .map(|(deal_id, company, amount, score, category, rep, created, stage, scored_at, updated_at)| {
                Ok(RiskyDeal {
                    deal_id,
                    company,
                    amount,
                    risk_score: stored_int("risk score", score)?,
                    risk_category: parse_stored("risk category", &category, RiskCategory::parse)?,
                    rep_id: rep,
                    created_date: created,
                    current_stage: stage,
                    scored_at,
                    updated_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut by_category = BTreeMap::new();
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
}
