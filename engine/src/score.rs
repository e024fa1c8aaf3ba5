//! Risk scores with exact explanations (seed 002 FR1 and FR3).
//!
//! A model gives calibrated log-odds of a loss as `z = z0 + Σ c_j`, where `z0` is the average
//! deal's log-odds. Probability is not additive in log-odds, so each factor's impact in
//! probability points is its log-odds contribution times the secant slope
//! `(σ(z) − σ(z0)) / (z − z0)`. The slope is positive, so every impact keeps its sign, and the
//! impacts add up to `σ(z) − σ(z0)` exactly: *base risk + Σ impacts = risk*, for every deal.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::Serialize;

use crate::asof::{Status, View, status};
use crate::dataset::{Dataset, Deal, MISSING};
use crate::domain::{RiskCategory, risk_score};
use crate::features::{Bound, Group, OWNER};
use crate::model::TrainedModel;
use crate::similar::{SimilarDeal, SimilarIndex};
use crate::stats::sigmoid;
use crate::texts::{Priority, Texts, fill, thousands, two_rates};

/// Factors below this many probability points are not worth a rep's attention.
const MIN_IMPACT_POINTS: f64 = 0.5;
const MAX_RECOMMENDATIONS: usize = 4;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Factor {
    /// Short name: "Industry: EdTech", "Deal age".
    pub factor: String,
    /// Stable key: `segment:industry`, `owner`, `age`, …
    pub key: String,
    /// Which sentence applied: `age_old`, `segment`, …
    pub variant: String,
    /// The segment value the factor is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Probability points added to the loss risk (negative: lowers it).
    pub impact: f64,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    pub rule: String,
    pub priority: Priority,
    pub action: String,
    pub rationale: String,
}

/// One factor's share of the score: the full decomposition, for audits.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contribution {
    pub key: String,
    pub impact: f64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskScore {
    pub deal_id: String,
    pub company: String,
    pub owner: Option<String>,
    pub amount: Option<f64>,
    pub stage: Option<String>,
    pub age_days: Option<i64>,
    /// round(100 × P(loss)).
    pub risk_score: u8,
    pub risk_category: RiskCategory,
    pub win_probability: f64,
    /// 1 − width of the 95% interval of the win probability (see [`confidence`]).
    pub confidence: f64,
    /// Risk of the average deal, in points; `base_risk + Σ contributions = 100 × P(loss)`.
    pub base_risk: f64,
    pub risk_factors: Vec<Factor>,
    pub positive_factors: Vec<Factor>,
    pub contributions: Vec<Contribution>,
    pub recommendations: Vec<Recommendation>,
    pub similar_deals: Vec<SimilarDeal>,
    pub as_of: Option<NaiveDate>,
    pub model_version: String,
    pub warnings: Vec<String>,
}

/// Confidence in a win probability `p` backed by `n_eff` deals: one minus the width of its 95%
/// interval, `1 − 2·1.96·√(p(1−p)/n_eff)`, in [0, 1]. 1000 deals behind a 50% estimate give
/// 0.94; 30 give 0.64.
pub fn confidence(p: f64, n_eff: f64) -> f64 {
    if n_eff <= 0.0 {
        return 0.0;
    }
    (1.0 - 2.0 * 1.96 * (p * (1.0 - p) / n_eff).sqrt()).clamp(0.0, 1.0)
}

/// Reusable buffers for the scoring hot path.
#[derive(Debug, Clone)]
pub struct Work {
    x: Vec<f64>,
    c: Vec<f64>,
    /// Per factor group, impact in probability (0-1, not points).
    pub impacts: Vec<f64>,
}

/// A score's numbers, before any words.
#[derive(Debug, Clone, Copy)]
pub struct Quick {
    pub p_loss: f64,
    pub p_base: f64,
}

/// Scores and explains the deals of one dataset on one date.
pub struct Scorer<'a> {
    pub model: &'a TrainedModel,
    dataset: &'a Dataset,
    bound: Bound<'a>,
    texts: &'a Texts,
    similar: Cow<'a, SimilarIndex>,
    /// The deals `similar` indexes (usually `dataset`).
    similar_dataset: &'a Dataset,
    as_of: Option<NaiveDate>,
    groups: Vec<Group>,
    group_keys: Vec<String>,
    feature_group: Vec<usize>,
    warnings: Vec<String>,
    /// Which won deals may be shown as similar (all when `None`).
    similar_keep: Option<&'a (dyn Fn(&Deal) -> bool + Sync)>,
}

impl<'a> Scorer<'a> {
    /// Shows as similar deals only those `keep` lets through (the deals the reader may see).
    pub fn similar_among(mut self, keep: &'a (dyn Fn(&Deal) -> bool + Sync)) -> Self {
        self.similar_keep = Some(keep);
        self
    }

    pub fn new(model: &'a TrainedModel, dataset: &'a Dataset, view: &View, texts: &'a Texts) -> Self {
        let won: Vec<usize> =
            view.closed.iter().copied().filter(|&i| status(&dataset.deals[i], view.as_of) == Status::Won).collect();
        let similar = Cow::Owned(SimilarIndex::new(dataset, &won));
        Self::build(model, dataset, view.as_of, texts, similar, dataset)
    }

    /// A scorer that reuses a similar-deal index built once over `similar_dataset` (whose
    /// vocabularies `dataset`'s must extend, as a copy of its schema with deals pushed does):
    /// how a service scores single deals without re-indexing every request.
    pub fn with_similar(
        model: &'a TrainedModel,
        dataset: &'a Dataset,
        as_of: Option<NaiveDate>,
        texts: &'a Texts,
        similar: &'a SimilarIndex,
        similar_dataset: &'a Dataset,
    ) -> Self {
        Self::build(model, dataset, as_of, texts, Cow::Borrowed(similar), similar_dataset)
    }

    fn build(
        model: &'a TrainedModel,
        dataset: &'a Dataset,
        as_of: Option<NaiveDate>,
        texts: &'a Texts,
        similar: Cow<'a, SimilarIndex>,
        similar_dataset: &'a Dataset,
    ) -> Self {
        let bound = Bound::new(&model.encoder, dataset);
        let mut groups: Vec<Group> = Vec::new();
        let feature_group = model
            .encoder
            .features
            .iter()
            .map(|f| {
                let g = f.group();
                groups.iter().position(|x| *x == g).unwrap_or_else(|| {
                    groups.push(g);
                    groups.len() - 1
                })
            })
            .collect();
        let mut warnings = model.warnings.clone();
        let missing = bound.missing_columns();
        if !missing.is_empty() {
            warnings.push(format!(
                "this export lacks columns the model was trained with ({}); they count as average",
                missing.join(", ")
            ));
        }
        if model.calibration.a == 0.0 {
            warnings.push("the model found no signal in its training data: every deal gets the base rate".into());
        }
        Scorer {
            model,
            dataset,
            bound,
            texts,
            similar,
            similar_dataset,
            as_of,
            group_keys: groups.iter().map(Group::key).collect(),
            groups,
            feature_group,
            warnings,
            similar_keep: None,
        }
    }

    pub fn work(&self) -> Work {
        let n = self.model.encoder.features.len();
        Work { x: vec![0.0; n], c: vec![0.0; n], impacts: vec![0.0; self.groups.len()] }
    }

    pub fn group_keys(&self) -> &[String] {
        &self.group_keys
    }

    /// The hot path: P(loss) and per-group impacts into `work.impacts`, no allocation.
    pub fn quick(&self, deal: &Deal, work: &mut Work) -> Quick {
        self.bound.features_into(deal, self.as_of, &mut work.x);
        let z0 = self.model.contributions(&work.x, &mut work.c);
        let dz: f64 = work.c.iter().sum();
        let (p0, p) = (sigmoid(z0), sigmoid(z0 + dz));
        let slope = if dz.abs() > 1e-9 { (p - p0) / dz } else { p0 * (1.0 - p0) };
        work.impacts.fill(0.0);
        for (&c, &g) in work.c.iter().zip(&self.feature_group) {
            work.impacts[g] += c * slope;
        }
        Quick { p_loss: p, p_base: p0 }
    }

    /// The full risk card of deal `index`.
    pub fn score(&self, index: usize, work: &mut Work) -> RiskScore {
        let deal = &self.dataset.deals[index];
        let q = self.quick(deal, work);
        let score = risk_score(q.p_loss);
        let category = RiskCategory::from_score(score);
        let win = 1.0 - q.p_loss;

        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.sort_by(|&a, &b| work.impacts[b].abs().total_cmp(&work.impacts[a].abs()).then(a.cmp(&b)));
        let pick = |positive: bool, n: usize| -> Vec<Factor> {
            order
                .iter()
                .filter(|&&g| {
                    let pts = work.impacts[g] * 100.0;
                    if positive { pts >= MIN_IMPACT_POINTS } else { pts <= -MIN_IMPACT_POINTS }
                })
                .take(n)
                .map(|&g| self.factor(g, deal, work.impacts[g]))
                .collect()
        };
        let risk_factors = pick(true, 3);
        let positive_factors = pick(false, 2);
        let contributions = order
            .iter()
            .map(|&g| Contribution { key: self.group_keys[g].clone(), impact: work.impacts[g] * 100.0 })
            .collect();

        let mut warnings = self.warnings.clone();
        if deal.created.is_none() && self.dataset.schema.has_created {
            warnings.push("no created date: deal age is unknown".into());
        }
        let n_eff = self.bound.support(deal);
        let owner =
            self.dataset.schema.owner_column().and_then(|c| self.dataset.cat_name(c, deal.cats[c])).map(str::to_owned);
        RiskScore {
            deal_id: deal.id.to_string(),
            company: deal.name.clone(),
            owner,
            amount: deal.amount.map(|a| a.get()),
            stage: self.stage_shown(deal),
            age_days: self.as_of.zip(deal.created).map(|(a, c)| (a - c).num_days()),
            risk_score: score,
            risk_category: category,
            win_probability: round4(win),
            confidence: round4(confidence(win, n_eff)),
            base_risk: q.p_base * 100.0,
            recommendations: self.recommend(category, win, &risk_factors),
            risk_factors,
            positive_factors,
            contributions,
            similar_deals: match self.similar_keep {
                Some(keep) => self.similar.find_among(self.similar_dataset, deal, 3, keep),
                None => self.similar.find(self.similar_dataset, deal, 3),
            },
            as_of: self.as_of,
            model_version: self.model.version.clone(),
            warnings,
        }
    }

    /// The stage as known on the as-of date: from the stage history when there is one; else the
    /// export's current stage, unless the deal closed after the as-of date (then the current
    /// stage is "Closed …", which was not known yet).
    fn stage_shown(&self, deal: &Deal) -> Option<String> {
        let stages = &self.dataset.schema.stages;
        if self.dataset.schema.has_stage_history {
            let at = self.as_of?;
            if let Some((s, _)) = deal.stage_on(at) {
                return stages.name(s as u32).map(str::to_owned);
            }
        }
        if deal.outcome.is_closed() {
            return None;
        }
        stages.name(deal.stage).map(str::to_owned)
    }

    fn recommend(&self, category: RiskCategory, win: f64, factors: &[Factor]) -> Vec<Recommendation> {
        let win_pct = format!("{:.0}", win * 100.0);
        let mut out: Vec<Recommendation> = Vec::new();
        // Each factor earns at most one action: the first matching rule in the table.
        let mut used = vec![false; factors.len()];
        for rule in &self.texts.rules {
            if !rule.applies_to(category) {
                continue;
            }
            let factor = if rule.factor.is_empty() {
                None
            } else {
                let found = factors
                    .iter()
                    .enumerate()
                    .find(|(k, f)| !used[*k] && rule.matches_factor(&f.key, &f.variant, f.value.as_deref()));
                match found {
                    Some((k, f)) => {
                        used[k] = true;
                        Some(f)
                    }
                    None => continue,
                }
            };
            let rationale = fill(
                &rule.rationale,
                &[("factor", factor.map(|f| f.description.clone()).unwrap_or_default()), ("win_pct", win_pct.clone())],
            );
            out.push(Recommendation {
                rule: rule.id.clone(),
                priority: rule.priority_for(category),
                action: rule.action.clone(),
                rationale,
            });
        }
        out.sort_by_key(|r| r.priority);
        out.truncate(MAX_RECOMMENDATIONS);
        out
    }

    /// Words for one factor group of one deal.
    fn factor(&self, g: usize, deal: &Deal, impact: f64) -> Factor {
        let enc = &self.model.encoder;
        let ds = self.dataset;
        let texts = self.texts;
        let (overall_rate, base) = (enc.base_rate(), enc.base_rate());
        let cycle_segment = self.bound.cycle_label(deal, ds).unwrap_or("overall").to_owned();
        let amount_segment = self.bound.amount_label(deal, ds).unwrap_or("overall").to_owned();
        let group = &self.groups[g];
        let (label, variant, specific, values): (String, &str, Option<String>, Vec<(&str, String)>) = match group {
            Group::Segment(column) => {
                let e = enc.columns.iter().position(|c| &c.name == column).unwrap_or(usize::MAX);
                let dimension = display(column);
                match self.bound.segment(e, deal) {
                    Some((sym, rate, support)) => {
                        let value =
                            self.bound.dataset_column(e).and_then(|c| ds.cat_name(c, sym)).unwrap_or("").to_owned();
                        let (r, o) = two_rates(rate, overall_rate);
                        let seen = enc.columns[e].m < support;
                        let variant = if sym == MISSING {
                            "segment_blank"
                        } else if column == OWNER {
                            "owner"
                        } else if !seen {
                            "segment_unseen"
                        } else {
                            "segment"
                        };
                        let shown = if sym == MISSING { "(not recorded)" } else { value.as_str() };
                        let label =
                            if column == OWNER { format!("Rep: {shown}") } else { format!("{dimension}: {shown}") };
                        let values = vec![
                            ("value", value),
                            ("rate", r),
                            ("overall", o),
                            ("dimension", dimension.to_lowercase()),
                        ];
                        (label, variant, Some(format!("segment:{column}")), values)
                    }
                    None => (
                        dimension.clone(),
                        "segment_unseen",
                        None,
                        vec![("dimension", dimension), ("value", String::new())],
                    ),
                }
            }
            Group::Pair(a, b) => {
                let (ea, eb) =
                    (enc.columns.iter().position(|c| &c.name == a), enc.columns.iter().position(|c| &c.name == b));
                let name = |e: Option<usize>| {
                    e.and_then(|e| self.bound.dataset_column(e))
                        .and_then(|c| ds.cat_name(c, deal.cats[c]))
                        .unwrap_or("")
                        .to_owned()
                };
                let (va, vb) = (name(ea), name(eb));
                let (rate, expected) = self.bound.pair_rates(a, b, deal).unwrap_or((base, base));
                let (r, x) = two_rates(rate, expected);
                let values = vec![
                    ("a", va.clone()),
                    ("b", vb.clone()),
                    ("rate", r),
                    ("expected", x),
                    ("a_dimension", display(a).to_lowercase()),
                    ("b_dimension", display(b).to_lowercase()),
                ];
                (format!("{va} × {vb}"), "pair", None, values)
            }
            Group::Age => {
                let typical = self.bound.typical_cycle(deal);
                let stage = self.as_of.and_then(|t| self.bound.stage_on(deal, t));
                match self.as_of.zip(deal.created).map(|(a, c)| (a - c).num_days()) {
                    None => ("Deal age".into(), "age_unknown", None, vec![]),
                    Some(age) => {
                        let pct = ((age as f64 / typical.max(1.0) - 1.0) * 100.0).round();
                        let mut values = vec![
                            ("age", age.to_string()),
                            ("pct", format!("{pct:.0}")),
                            ("typical", format!("{typical:.0}")),
                            ("segment", cycle_segment),
                        ];
                        let old = age as f64 > typical;
                        let variant = match stage.map(|(s, days)| (&enc.stages[s], days)) {
                            Some((stats, days)) => {
                                let stage_typical = stats.median_days.unwrap_or(f64::NAN);
                                values.push(("stage", stats.name.clone()));
                                values.push(("days", days.to_string()));
                                values.push(("stage_typical", format!("{stage_typical:.0}")));
                                if days as f64 > 1.5 * stage_typical {
                                    "progress_stalled"
                                } else if old {
                                    "progress_old"
                                } else {
                                    "progress_young"
                                }
                            }
                            None if old => "age_old",
                            None => "age_young",
                        };
                        ("Deal progress".into(), variant, None, values)
                    }
                }
            }
            Group::Amount => {
                let median = self.bound.median_amount(deal);
                match deal.amount {
                    None => ("Deal size".into(), "amount_unknown", None, vec![]),
                    Some(a) => {
                        let ratio = a.get() / median;
                        let variant = if ratio > 1.3 {
                            "amount_large"
                        } else if ratio < 1.0 / 1.3 {
                            "amount_small"
                        } else {
                            "amount_typical"
                        };
                        let values = vec![
                            ("amount", texts.money(a.get())),
                            ("median", texts.money(median)),
                            ("ratio", format!("{ratio:.1}")),
                            ("pct", format!("{:.0}", (1.0 - ratio) * 100.0)),
                            ("segment", amount_segment),
                        ];
                        ("Deal size".into(), variant, None, values)
                    }
                }
            }
            Group::Timing => {
                let q4 = deal.created.is_some_and(|c| chrono::Datelike::month(&c) >= 10);
                let quarter_end = self.as_of.is_some_and(|t| chrono::Datelike::month(&t) % 3 == 0);
                let quarter = deal.created.map_or(0, |c| (chrono::Datelike::month(&c) - 1) / 3 + 1);
                let variant = if q4 {
                    "timing_q4"
                } else if quarter_end {
                    "timing_quarter_end"
                } else {
                    "timing"
                };
                ("Timing".into(), variant, None, vec![("quarter", quarter.to_string())])
            }
            Group::Numeric(column) => {
                let k = enc.numeric.iter().position(|n| &n.name == column);
                let median = k.and_then(|k| enc.numeric[k].median).unwrap_or(f64::NAN);
                let value = ds.schema.numeric.iter().position(|c| c == column).map_or(f64::NAN, |c| deal.nums[c]);
                let variant = if value.is_nan() {
                    "numeric_missing"
                } else if value >= median {
                    "numeric_high"
                } else {
                    "numeric_low"
                };
                let values =
                    vec![("name", display(column)), ("value", short_number(value)), ("median", short_number(median))];
                (display(column), variant, Some(format!("numeric:{column}")), values)
            }
        };
        let template = texts.template(variant, specific.as_deref().filter(|_| variant == "segment"));
        let value = match group {
            Group::Segment(_) => {
                values.iter().find(|(k, _)| *k == "value").map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
            }
            _ => None,
        };
        Factor {
            factor: label,
            key: self.group_keys[g].clone(),
            variant: variant.to_owned(),
            value,
            impact: round4(impact * 100.0),
            description: fill(template, &values),
        }
    }
}

/// `lead_source` → `Lead source`.
pub fn display(column: &str) -> String {
    let spaced = column.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn short_number(v: f64) -> String {
    if !v.is_finite() {
        "unknown".into()
    } else if v.fract().abs() < 1e-9 {
        thousands(v)
    } else {
        format!("{v:.1}")
    }
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_narrows_with_evidence() {
        assert!((confidence(0.5, 1000.0) - 0.938).abs() < 0.001);
        assert!((confidence(0.5, 30.0) - 0.642).abs() < 0.001);
        assert_eq!(confidence(0.5, 0.0), 0.0);
        assert!(confidence(0.9, 100.0) > confidence(0.5, 100.0));
    }

    #[test]
    fn column_names_display_as_words() {
        assert_eq!(display("lead_source"), "Lead source");
        assert_eq!(display("industry"), "Industry");
        assert_eq!(display(""), "");
    }
}
