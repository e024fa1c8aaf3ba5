//! Leak-free features (seed 002 §4.2, made honest).
//!
//! An [`Encoder`] holds everything learnt from training deals: segment win rates shrunk by
//! empirical Bayes toward their parent (so a segment of three deals does not swing a score),
//! interaction rates for pairs of segments shrunk toward what the two parents predict, typical
//! cycle lengths and deal sizes per primary segment, stage statistics, and medians of extra
//! numeric features. It serialises into the model file, so a model scores new exports exactly as
//! it was trained.
//!
//! Leakage is prevented in three ways:
//! - Training rows get *out-of-fold* segment rates: a deal's own outcome never enters the rate it
//!   is described by ([`fit_out_of_fold`]).
//! - A closed training deal is described as it looked at a *snapshot* part-way through its life
//!   (a reproducible pseudo-random point between creation and close), so deal age and stage are
//!   what an open deal would show, never the final cycle length ([`snapshot_date`]).
//! - Columns the mapping marks as known only after close never reach this module.

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::dataset::{CatKind, Dataset, Deal, MISSING};
use crate::stats::{
    WinCount, logit, median, prior_strength, prior_strength_with_parents, shrunk_rate, sigmoid, stable_hash, unit_hash,
};

mod bound;

pub use bound::{Bound, snapshot_matrix, training_matrix};

/// One model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Feature {
    /// Log-odds lift of the deal's value of a categorical column over the overall rate.
    Segment {
        column: String,
    },
    /// Interaction of two segment columns: lift beyond what the two single rates predict.
    Pair {
        a: String,
        b: String,
    },
    AgeDays,
    /// Age over the typical cycle of the deal's primary segment.
    AgeRatio,
    LogAmount,
    /// ln(amount / median amount of the deal's primary segment).
    AmountRatio,
    /// Position of the current stage in the pipeline order.
    Stage,
    DaysInStage,
    /// Days in the current stage over the stage's typical duration.
    StageTimeRatio,
    CreatedQ4,
    /// The snapshot date lies in the last month of a quarter.
    QuarterEnd,
    Numeric {
        column: String,
    },
}

impl Feature {
    pub fn name(&self) -> String {
        match self {
            Feature::Segment { column } => format!("segment:{column}"),
            Feature::Pair { a, b } => format!("pair:{a}×{b}"),
            Feature::AgeDays => "age_days".into(),
            Feature::AgeRatio => "age_ratio".into(),
            Feature::LogAmount => "log_amount".into(),
            Feature::AmountRatio => "amount_ratio".into(),
            Feature::Stage => "stage".into(),
            Feature::DaysInStage => "days_in_stage".into(),
            Feature::StageTimeRatio => "stage_time_ratio".into(),
            Feature::CreatedQ4 => "created_q4".into(),
            Feature::QuarterEnd => "quarter_end".into(),
            Feature::Numeric { column } => format!("numeric:{column}"),
        }
    }

    /// The explanation factor this feature's contribution is added to.
    pub fn group(&self) -> Group {
        match self {
            Feature::Segment { column } => Group::Segment(column.clone()),
            Feature::Pair { a, b } => Group::Pair(a.clone(), b.clone()),
            // Age, stage and time in the current stage move together; apart, one can read
            // backwards ("older, so safer") once another has taken the effect. Together they
            // are one factor: how the deal is progressing.
            Feature::AgeDays | Feature::AgeRatio | Feature::DaysInStage | Feature::StageTimeRatio | Feature::Stage => {
                Group::Age
            }
            Feature::LogAmount | Feature::AmountRatio => Group::Amount,
            Feature::CreatedQ4 | Feature::QuarterEnd => Group::Timing,
            Feature::Numeric { column } => Group::Numeric(column.clone()),
        }
    }
}

/// The name of the owner (rep) column, and its factor key.
pub const OWNER: &str = "owner";

/// An explanation factor: one or more features that a rep reads as one reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Segment(String),
    Pair(String, String),
    Age,
    Amount,
    Timing,
    Numeric(String),
}

impl Group {
    /// A stable key: `segment:industry`, `pair:product×region`, `age`, `amount`, …
    pub fn key(&self) -> String {
        match self {
            Group::Segment(c) if c == OWNER => OWNER.into(),
            Group::Segment(c) => format!("segment:{c}"),
            Group::Pair(a, b) => format!("pair:{a}×{b}"),
            Group::Age => "age".into(),
            Group::Amount => "amount".into(),
            Group::Timing => "timing".into(),
            Group::Numeric(c) => format!("numeric:{c}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Segment,
    Owner,
    Extra,
}

impl From<CatKind> for ColumnKind {
    fn from(k: CatKind) -> Self {
        match k {
            CatKind::Segment => ColumnKind::Segment,
            CatKind::Owner => ColumnKind::Owner,
            CatKind::Extra => ColumnKind::Extra,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatStats {
    pub name: String,
    pub kind: ColumnKind,
    /// Empirical-Bayes prior strength (pseudo-deals) toward the overall rate.
    pub m: f64,
    pub values: IndexMap<String, WinCount>,
    /// Deals with this column blank.
    pub blank: WinCount,
}

impl CatStats {
    pub fn rate(&self, count: WinCount, parent: f64) -> f64 {
        shrunk_rate(count, parent, self.m)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairCell {
    pub a: String,
    pub b: String,
    pub count: WinCount,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairStats {
    pub a: String,
    pub b: String,
    pub m: f64,
    pub cells: Vec<PairCell>,
}

/// A median overall and per value of one segment (values with at least 5 deals).
///
/// The segment is the one that explains the most variance of the (log) quantity: deal size
/// usually depends on the product, cycle length on the product or the deal type. "Large for an
/// Enterprise deal" is what a rep means by large.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Medians {
    pub segment: Option<String>,
    pub overall: Option<f64>,
    pub by_value: IndexMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageStats {
    pub name: String,
    /// Outcomes of training deals that reached this stage.
    pub reached: WinCount,
    /// Median days deals spent in this stage before moving on.
    pub median_days: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumericStats {
    pub name: String,
    pub median: Option<f64>,
}

/// What was learnt from the training deals to compute features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Encoder {
    pub global: WinCount,
    pub columns: Vec<CatStats>,
    pub pairs: Vec<PairStats>,
    pub primary: Option<String>,
    pub cycle_days: Medians,
    pub amount: Medians,
    pub stages: Vec<StageStats>,
    pub numeric: Vec<NumericStats>,
    pub features: Vec<Feature>,
    /// Seed of the snapshot points of training deals.
    pub snapshot_seed: u64,
}

/// Segment columns taking part in pairwise interactions (pairs grow quadratically).
const MAX_PAIR_COLUMNS: usize = 5;
/// Columns with more values than this get no interaction cells.
const MAX_PAIR_VALUES: usize = 200;
/// Medians per segment value need this many deals; below it the overall median is used.
const MIN_MEDIAN_DEALS: usize = 5;

impl Encoder {
    /// Fits on the closed deals `rows` of `dataset` (all must be won or lost).
    pub fn fit(dataset: &Dataset, rows: &[usize], snapshot_seed: u64) -> Encoder {
        let schema = &dataset.schema;
        let deals = &dataset.deals;
        let lost = |d: &Deal| d.outcome == crate::domain::Outcome::Lost;
        let mut global = WinCount::default();
        for &i in rows {
            global.add(!lost(&deals[i]));
        }
        let base = global.rate().unwrap_or(0.5);

        let mut columns = Vec::with_capacity(schema.categorical.len());
        for (c, col) in schema.categorical.iter().enumerate() {
            let mut counts = vec![WinCount::default(); col.vocab.len()];
            let mut blank = WinCount::default();
            for &i in rows {
                let d = &deals[i];
                match d.cats[c] {
                    MISSING => blank.add(!lost(d)),
                    s => counts[s as usize].add(!lost(d)),
                }
            }
            let mut all = counts.clone();
            all.push(blank);
            let m = prior_strength(&all, base);
            let values = col.vocab.values().iter().cloned().zip(counts).filter(|(_, c)| c.n > 0.0).collect();
            columns.push(CatStats { name: col.name.clone(), kind: col.kind.into(), m, values, blank });
        }

        let pair_cols: Vec<usize> = schema
            .segment_columns()
            .filter(|&c| (2..=MAX_PAIR_VALUES).contains(&schema.categorical[c].vocab.len()))
            .take(MAX_PAIR_COLUMNS)
            .collect();
        let mut pairs = Vec::new();
        for (x, &ca) in pair_cols.iter().enumerate() {
            for &cb in &pair_cols[x + 1..] {
                let (va, vb) = (&schema.categorical[ca].vocab, &schema.categorical[cb].vocab);
                let mut cells = vec![WinCount::default(); va.len() * vb.len()];
                for &i in rows {
                    let d = &deals[i];
                    let (a, b) = (d.cats[ca], d.cats[cb]);
                    if a != MISSING && b != MISSING {
                        cells[a as usize * vb.len() + b as usize].add(!lost(d));
                    }
                }
                let expected = |a: usize, b: usize| {
                    let lift = |stats: &CatStats, value: &str| {
                        stats.values.get(value).map_or(0.0, |&cnt| logit(stats.rate(cnt, base)) - logit(base))
                    };
                    sigmoid(logit(base) + lift(&columns[ca], &va.values()[a]) + lift(&columns[cb], &vb.values()[b]))
                };
                let groups: Vec<(WinCount, f64)> = cells
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.n > 0.0)
                    .map(|(k, &c)| (c, expected(k / vb.len(), k % vb.len())))
                    .collect();
                let m = prior_strength_with_parents(&groups);
                let cells = cells
                    .into_iter()
                    .enumerate()
                    .filter(|(_, c)| c.n > 0.0)
                    .map(|(k, count)| PairCell {
                        a: va.values()[k / vb.len()].clone(),
                        b: vb.values()[k % vb.len()].clone(),
                        count,
                    })
                    .collect();
                pairs.push(PairStats { a: columns[ca].name.clone(), b: columns[cb].name.clone(), m, cells });
            }
        }

        let primary = schema.primary_segment();
        let medians = |value: &dyn Fn(&Deal) -> Option<f64>| -> Medians {
            let mut all: Vec<f64> = rows.iter().filter_map(|&i| value(&deals[i])).collect();
            let overall = median(&mut all);
            let grouped = |c: usize| -> Vec<Vec<f64>> {
                let mut groups: Vec<Vec<f64>> = vec![Vec::new(); schema.categorical[c].vocab.len()];
                for &i in rows {
                    let d = &deals[i];
                    if let (Some(v), s) = (value(d), d.cats[c])
                        && s != MISSING
                    {
                        groups[s as usize].push(v);
                    }
                }
                groups
            };
            // Variance of log(1 + value) explained by each segment's groups.
            let explained = |groups: &[Vec<f64>]| -> f64 {
                let logs: Vec<Vec<f64>> = groups
                    .iter()
                    .filter(|g| g.len() >= MIN_MEDIAN_DEALS)
                    .map(|g| g.iter().map(|v| v.max(0.0).ln_1p()).collect())
                    .collect();
                let n: usize = logs.iter().map(Vec::len).sum();
                if logs.len() < 2 || n < 2 {
                    return 0.0;
                }
                let mean = logs.iter().flatten().sum::<f64>() / n as f64;
                let total: f64 = logs.iter().flatten().map(|v| (v - mean).powi(2)).sum();
                let between: f64 =
                    logs.iter().map(|g| g.len() as f64 * (g.iter().sum::<f64>() / g.len() as f64 - mean).powi(2)).sum();
                if total > 0.0 { between / total } else { 0.0 }
            };
            let best = schema
                .segment_columns()
                .map(|c| (explained(&grouped(c)), c))
                .filter(|&(r2, _)| r2 > 0.01)
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
                .map(|(_, c)| c)
                .or(primary);
            let mut by_value = IndexMap::new();
            if let Some(c) = best {
                let vocab = &schema.categorical[c].vocab;
                for (sym, mut g) in grouped(c).into_iter().enumerate() {
                    if g.len() >= MIN_MEDIAN_DEALS {
                        by_value.insert(vocab.values()[sym].clone(), median(&mut g).unwrap_or_default());
                    }
                }
            }
            Medians { segment: best.map(|c| schema.categorical[c].name.clone()), overall, by_value }
        };
        let cycle_days = medians(&|d| d.cycle_days().map(|c| c as f64));
        let amount = medians(&|d| d.amount.map(|a| a.get()));

        let mut stages: Vec<StageStats> = Vec::new();
        if schema.has_stage_history {
            for (s, name) in schema.stages.values().iter().enumerate() {
                let mut reached = WinCount::default();
                let mut days = Vec::new();
                for &i in rows {
                    let d = &deals[i];
                    let Some(entered) = d.stage_entered.get(s).copied().flatten() else {
                        continue;
                    };
                    reached.add(!lost(d));
                    let left = d.stage_entered.iter().flatten().filter(|&&e| e > entered).min().copied().or(d.closed);
                    if let Some(left) = left {
                        days.push((left - entered).num_days() as f64);
                    }
                }
                stages.push(StageStats { name: name.clone(), reached, median_days: median(&mut days) });
            }
        }

        let numeric: Vec<NumericStats> = schema
            .numeric
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let mut v: Vec<f64> = rows.iter().map(|&i| deals[i].nums[k]).filter(|v| v.is_finite()).collect();
                NumericStats { name: name.clone(), median: median(&mut v) }
            })
            .collect();

        // Which features this data can support.
        let mut features: Vec<Feature> = columns.iter().map(|c| Feature::Segment { column: c.name.clone() }).collect();
        features.extend(pairs.iter().map(|p| Feature::Pair { a: p.a.clone(), b: p.b.clone() }));
        if schema.has_created && schema.has_closed && cycle_days.overall.is_some() {
            features.extend([Feature::AgeDays, Feature::AgeRatio, Feature::CreatedQ4, Feature::QuarterEnd]);
        }
        if amount.overall.is_some() {
            features.extend([Feature::LogAmount, Feature::AmountRatio]);
        }
        if schema.has_dates() && stages.iter().any(|s| s.reached.n > 0.0) {
            features.extend([Feature::Stage, Feature::DaysInStage, Feature::StageTimeRatio]);
        }
        for (k, stats) in numeric.iter().enumerate() {
            let distinct = {
                let mut v: Vec<f64> = rows.iter().map(|&i| deals[i].nums[k]).filter(|v| v.is_finite()).collect();
                v.sort_unstable_by(f64::total_cmp);
                v.dedup();
                v.len()
            };
            if distinct >= 2 {
                features.push(Feature::Numeric { column: stats.name.clone() });
            }
        }

        Encoder {
            global,
            columns,
            pairs,
            primary: primary.map(|p| schema.categorical[p].name.clone()),
            cycle_days,
            amount,
            stages,
            numeric,
            features,
            snapshot_seed,
        }
    }

    pub fn base_rate(&self) -> f64 {
        self.global.rate().unwrap_or(0.5)
    }

    pub fn column(&self, name: &str) -> Option<&CatStats> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The fold (of `k`) a deal belongs to for out-of-fold encodings and bagging.
pub fn fold_of(deal: &Deal, k: usize, seed: u64) -> usize {
    (stable_hash(deal.id.as_str().as_bytes(), seed ^ 0xf01d) % k as u64) as usize
}

/// Encoders for out-of-fold features: `encoders[f]` is fitted without the training rows of fold
/// `f`, and describes exactly those rows.
/// They share `full`'s feature list, so their matrices line up.
pub fn fit_out_of_fold(dataset: &Dataset, rows: &[usize], k: usize, full: &Encoder, threads: usize) -> Vec<Encoder> {
    let seed = full.snapshot_seed;
    let fit = |f: usize| {
        let others: Vec<usize> = rows.iter().copied().filter(|&i| fold_of(&dataset.deals[i], k, seed) != f).collect();
        let mut encoder = Encoder::fit(dataset, &others, seed);
        encoder.features.clone_from(&full.features);
        encoder
    };
    if threads <= 1 {
        return (0..k).map(fit).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..k).map(|f| s.spawn(move || fit(f))).collect();
        handles.into_iter().map(|h| h.join().expect("an encoder thread panicked")).collect()
    })
}

/// The date a closed training deal is observed at: a reproducible point between its creation
/// and close, as an open deal would be seen on an as-of date. `None` without both dates.
pub fn snapshot_date(deal: &Deal, seed: u64) -> Option<NaiveDate> {
    let created = deal.created?;
    let cycle = deal.cycle_days()?.max(0);
    let u = unit_hash(deal.id.as_str().as_bytes(), seed);
    Some(created + chrono::Duration::days((u * cycle as f64).floor() as i64))
}
