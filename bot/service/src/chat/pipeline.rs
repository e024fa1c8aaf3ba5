//! `/pipeline [filters]`: the open pipeline the user may see, narrowed by `key:value` filters:
//! its value, the risk-adjusted value, the risk distribution, the five riskiest deals, and the
//! team's health index.

use engine::asof::{Status, status};
use engine::domain::{RiskCategory, risk_score};
use serde::Serialize;

use super::Reply;
use super::command::{Filter, FilterKey};
use crate::tenants::{Scope, TenantEngine};

/// Deals the summary lists.
const RISKIEST: usize = 5;

/// One of the riskiest deals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskyLine {
    pub deal_id: String,
    pub company: String,
    pub owner: Option<String>,
    pub amount: Option<f64>,
    pub risk_score: u8,
    pub risk_category: RiskCategory,
}

/// The pipeline a `/pipeline` command asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineView {
    /// The filters as typed back (`region:APAC`), empty for the whole pipeline.
    pub filters: Vec<String>,
    pub open_deals: usize,
    pub pipeline_value: f64,
    /// Σ amount × (1 − P(loss)).
    pub risk_adjusted_value: f64,
    /// Open deals per risk category, riskiest first (every category, zeros included).
    pub distribution: Vec<(RiskCategory, usize)>,
    pub riskiest: Vec<RiskyLine>,
    /// The whole team's health index (0–100) and its value a month earlier: it is not
    /// narrowed by the filters.
    pub health: Option<f64>,
    pub health_before: Option<f64>,
    pub model_version: String,
    pub as_of: chrono::NaiveDate,
}

/// Answers `/pipeline` with `filters` for a user who sees `scope`.
pub fn pipeline(engine: &TenantEngine, filters: &[Filter], scope: &Scope, texts: &engine::texts::Texts) -> Reply {
    let Some(model) = engine.model.as_ref() else { return Reply::NoModel };
    let Some(p_loss) = engine.open_risk(engine.as_of, texts) else { return Reply::NoModel };
    let data = &engine.dataset;
    let keep = match Narrowing::new(engine, filters) {
        Ok(n) => n,
        Err(message) => return Reply::Unreadable { message },
    };
    let owner_col = data.schema.owner_column();
    let owner_of = |i: usize| owner_col.and_then(|c| data.cat_name(c, data.deals[i].cats[c]));
    // Another rep's pipeline is refused, not shown as empty.
    for (column, values) in &keep.cats {
        if Some(*column) == owner_col
            && let Some(&other) = values.iter().find(|&&v| !scope.allows(data.cat_name(*column, v)))
        {
            let name = data.cat_name(*column, other).unwrap_or_default();
            return Reply::Refused { query: format!("rep:{name}") };
        }
    }
    let mut selected: Vec<(usize, u8)> = Vec::new();
    for i in 0..data.deals.len() {
        if status(&data.deals[i], Some(engine.as_of)) != Status::Open || !scope.allows(owner_of(i)) {
            continue;
        }
        let score = risk_score(p_loss[i]);
        if keep.admits(engine, i, score) {
            selected.push((i, score));
        }
    }
    let amount = |i: usize| data.deals[i].amount.map(|a| a.get());
    let pipeline_value: f64 = selected.iter().filter_map(|&(i, _)| amount(i)).sum();
    let risk_adjusted_value: f64 = selected.iter().map(|&(i, _)| amount(i).unwrap_or(0.0) * (1.0 - p_loss[i])).sum();
    let mut distribution: Vec<(RiskCategory, usize)> =
        [RiskCategory::Critical, RiskCategory::High, RiskCategory::Medium, RiskCategory::Low]
            .into_iter()
            .map(|c| (c, 0))
            .collect();
    for &(_, score) in &selected {
        let category = RiskCategory::from_score(score);
        if let Some(slot) = distribution.iter_mut().find(|(c, _)| *c == category) {
            slot.1 += 1;
        }
    }
    // Riskiest first; at equal risk the bigger deal, then the id, so the list is stable.
    selected.sort_by(|&(a, sa), &(b, sb)| {
        sb.cmp(&sa)
            .then(amount(b).unwrap_or(0.0).total_cmp(&amount(a).unwrap_or(0.0)))
            .then(data.deals[a].id.cmp(&data.deals[b].id))
    });
    let riskiest = selected
        .iter()
        .take(RISKIEST)
        .map(|&(i, score)| RiskyLine {
            deal_id: data.deals[i].id.to_string(),
            company: data.deals[i].name.clone(),
            owner: owner_of(i).map(str::to_owned),
            amount: amount(i),
            risk_score: score,
            risk_category: RiskCategory::from_score(score),
        })
        .collect();
    let health = engine.health(texts);
    Reply::Pipeline {
        view: Box::new(PipelineView {
            filters: filters.iter().map(|f| format!("{}:{}", f.key.field(), f.value)).collect(),
            open_deals: selected.len(),
            pipeline_value,
            risk_adjusted_value,
            distribution,
            riskiest,
            health: health.map(|h| h.index),
            health_before: health.and_then(|h| h.previous),
            model_version: model.version.clone(),
            as_of: engine.as_of,
        }),
    }
}

/// The filters, resolved against the tenant's fields once.
struct Narrowing {
    /// (categorical column, the values admitted): a segment or the owner.
    cats: Vec<(usize, Vec<engine::dataset::Sym>)>,
    stages: Vec<engine::dataset::Sym>,
    categories: Vec<RiskCategory>,
    min: Option<f64>,
    max: Option<f64>,
}

impl Narrowing {
    /// Resolves each filter; a field the tenant's data lacks, or a value no deal has, is an
    /// error that says so (a silent empty pipeline would look like good news).
    fn new(engine: &TenantEngine, filters: &[Filter]) -> Result<Narrowing, String> {
        let schema = &engine.dataset.schema;
        let mut n = Narrowing { cats: Vec::new(), stages: Vec::new(), categories: Vec::new(), min: None, max: None };
        for f in filters {
            match f.key {
                FilterKey::Region
                | FilterKey::Industry
                | FilterKey::Product
                | FilterKey::LeadSource
                | FilterKey::Rep => {
                    let column = if f.key == FilterKey::Rep {
                        schema.owner_column()
                    } else {
                        schema.categorical.iter().position(|c| c.name.eq_ignore_ascii_case(f.key.field()))
                    }
                    .ok_or_else(|| {
                        format!(
                            "your pipeline has no {} field, so `{}:` cannot narrow it",
                            f.key.field(),
                            f.key.field()
                        )
                    })?;
                    let vocab = &schema.categorical[column].vocab;
                    let sym = vocab.lookup(&f.value).ok_or_else(|| unknown_value(f, vocab.values()))?;
                    match n.cats.iter_mut().find(|(c, _)| *c == column) {
                        Some((_, values)) => values.push(sym),
                        None => n.cats.push((column, vec![sym])),
                    }
                }
                FilterKey::Stage => {
                    let sym = schema.stages.lookup(&f.value).ok_or_else(|| unknown_value(f, schema.stages.values()))?;
                    n.stages.push(sym);
                }
                FilterKey::Risk => {
                    let c = RiskCategory::ALL
                        .into_iter()
                        .find(|c| c.as_str() == f.value)
                        .ok_or_else(|| unknown_value(f, &[]))?;
                    n.categories.push(c);
                }
                FilterKey::MinAmount => n.min = f.value.parse().ok(),
                FilterKey::MaxAmount => n.max = f.value.parse().ok(),
            }
        }
        Ok(n)
    }

    /// Filters on different fields all hold; several values of one field are alternatives
    /// (`region:APAC region:EMEA`).
    fn admits(&self, engine: &TenantEngine, i: usize, score: u8) -> bool {
        let deal = &engine.dataset.deals[i];
        let cats = self.cats.iter().all(|(c, values)| values.contains(&deal.cats[*c]));
        let stage = self.stages.is_empty() || self.stages.contains(&deal.stage);
        let category = self.categories.is_empty() || self.categories.contains(&RiskCategory::from_score(score));
        let amount = deal.amount.map(|a| a.get());
        let min = self.min.is_none_or(|m| amount.is_some_and(|a| a >= m));
        let max = self.max.is_none_or(|m| amount.is_some_and(|a| a <= m));
        cats && stage && category && min && max
    }
}

fn unknown_value(f: &Filter, known: &[String]) -> String {
    let mut message = format!("no open deal has {} {:?}", f.key.field(), f.value);
    let close: Vec<&str> = known
        .iter()
        .filter(|v| !v.is_empty() && strsim::jaro_winkler(&v.to_lowercase(), &f.value.to_lowercase()) >= 0.8)
        .map(String::as_str)
        .take(3)
        .collect();
    if !close.is_empty() {
        message.push_str(&format!(": did you mean {}?", close.join(", ")));
    }
    message
}
