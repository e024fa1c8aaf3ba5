//! An encoder bound to one dataset: every categorical lookup resolved to an array index once, then
//! the feature rows of snapshots and training matrices.

use chrono::{Datelike, NaiveDate};

use super::{ColumnKind, Encoder, Feature, Medians, fold_of, snapshot_date};
use crate::dataset::{Dataset, Deal, MISSING, Sym};
use crate::stats::{WinCount, logit, shrunk_rate, sigmoid};

/// An [`Encoder`] bound to one dataset's vocabularies: every lookup is an array index.
#[derive(Debug)]
pub struct Bound<'e> {
    pub encoder: &'e Encoder,
    base_logit: f64,
    /// Per encoder column: dataset column, lift per symbol (last slot: blank), support per symbol.
    cats: Vec<Option<BoundColumn>>,
    pairs: Vec<Option<BoundPair>>,
    cycle: BoundMedians,
    amount: BoundMedians,
    /// Dataset stage slot → encoder stage index.
    stage_slots: Vec<usize>,
    numeric: Vec<Option<usize>>,
    /// Per feature, where its value comes from.
    plan: Vec<Slot>,
}

/// Where a feature's value comes from, resolved once per binding.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Segment(Option<usize>),
    Pair(Option<usize>),
    AgeDays,
    AgeRatio,
    LogAmount,
    AmountRatio,
    Stage,
    DaysInStage,
    StageTimeRatio,
    CreatedQ4,
    QuarterEnd,
    /// Dataset numeric column.
    Numeric(Option<usize>),
}

/// Medians per symbol of their segment column (last slot: overall).
#[derive(Debug)]
struct BoundMedians {
    column: Option<usize>,
    values: Vec<f64>,
}

impl BoundMedians {
    fn get(&self, deal: &Deal) -> f64 {
        match self.column {
            Some(c) if deal.cats[c] != MISSING => self.values[deal.cats[c] as usize],
            _ => self.values[self.values.len() - 1],
        }
    }

    /// The segment value whose median applies, for sentences ("the typical Enterprise cycle").
    fn label<'d>(&self, deal: &Deal, dataset: &'d Dataset) -> Option<&'d str> {
        let c = self.column?;
        dataset.cat_name(c, deal.cats[c])
    }
}

#[derive(Debug)]
struct BoundColumn {
    column: usize,
    lift: Vec<f64>,
    rate: Vec<f64>,
    support: Vec<f64>,
}

#[derive(Debug)]
struct BoundPair {
    a: usize,
    b: usize,
    width: usize,
    lift: Vec<f64>,
    /// Shrunk rate and the rate expected from the two parents, per cell.
    rates: Vec<(f64, f64)>,
}

impl BoundColumn {
    fn slot(&self, sym: Sym) -> usize {
        if sym == MISSING { self.lift.len() - 1 } else { sym as usize }
    }
}

impl<'e> Bound<'e> {
    pub fn new(encoder: &'e Encoder, dataset: &Dataset) -> Self {
        let schema = &dataset.schema;
        let base = encoder.base_rate();
        let cats: Vec<Option<BoundColumn>> = encoder
            .columns
            .iter()
            .map(|stats| {
                let column = schema.column(&stats.name)?;
                let vocab = &schema.categorical[column].vocab;
                let mut lift = Vec::with_capacity(vocab.len() + 1);
                let mut rate = Vec::with_capacity(vocab.len() + 1);
                let mut support = Vec::with_capacity(vocab.len() + 1);
                let by_key: std::collections::HashMap<String, WinCount> =
                    stats.values.iter().map(|(k, v)| (crate::mapping::normalize_key(k), *v)).collect();
                for value in vocab
                    .values()
                    .iter()
                    .map(|v| by_key.get(&crate::mapping::normalize_key(v)).copied())
                    .chain([Some(stats.blank)])
                {
                    let count = value.unwrap_or_default();
                    let r = stats.rate(count, base);
                    lift.push(logit(r) - logit(base));
                    rate.push(r);
                    support.push(count.n + stats.m);
                }
                Some(BoundColumn { column, lift, rate, support })
            })
            .collect();
        let pairs = encoder
            .pairs
            .iter()
            .map(|p| {
                let ia = encoder.columns.iter().position(|c| c.name == p.a)?;
                let ib = encoder.columns.iter().position(|c| c.name == p.b)?;
                let (ba, bb) = (cats[ia].as_ref()?, cats[ib].as_ref()?);
                let (va, vb) = (&schema.categorical[ba.column].vocab, &schema.categorical[bb.column].vocab);
                let width = vb.len();
                let mut lift = vec![0.0; va.len() * width];
                let mut rates: Vec<(f64, f64)> = (0..va.len() * width)
                    .map(|k| {
                        let expected = sigmoid(logit(base) + ba.lift[k / width] + bb.lift[k % width]);
                        (expected, expected)
                    })
                    .collect();
                for cell in &p.cells {
                    let (Some(a), Some(b)) = (va.lookup(&cell.a), vb.lookup(&cell.b)) else {
                        continue;
                    };
                    let k = a as usize * width + b as usize;
                    let expected = rates[k].1;
                    let rate = shrunk_rate(cell.count, expected, p.m);
                    lift[k] = logit(rate) - logit(expected);
                    rates[k].0 = rate;
                }
                Some(BoundPair { a: ba.column, b: bb.column, width, lift, rates })
            })
            .collect();
        let per_segment = |m: &Medians| -> BoundMedians {
            let overall = m.overall.unwrap_or(f64::NAN);
            let column = m.segment.as_deref().and_then(|c| schema.column(c));
            let values = match column {
                None => vec![overall],
                Some(c) => {
                    let by_key: std::collections::HashMap<String, f64> =
                        m.by_value.iter().map(|(k, v)| (crate::mapping::normalize_key(k), *v)).collect();
                    let vocab = &schema.categorical[c].vocab;
                    vocab
                        .values()
                        .iter()
                        .map(|v| by_key.get(&crate::mapping::normalize_key(v)).copied().unwrap_or(overall))
                        .chain([overall])
                        .collect()
                }
            };
            BoundMedians { column, values }
        };
        let stage_slots = schema
            .stages
            .values()
            .iter()
            .map(|name| {
                encoder
                    .stages
                    .iter()
                    .position(|s| crate::mapping::normalize_key(&s.name) == crate::mapping::normalize_key(name))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let numeric: Vec<Option<usize>> =
            encoder.numeric.iter().map(|n| schema.numeric.iter().position(|c| *c == n.name)).collect();
        let plan = encoder
            .features
            .iter()
            .map(|f| match f {
                Feature::Segment { column } => {
                    Slot::Segment(encoder.columns.iter().position(|c| &c.name == column).filter(|&i| cats[i].is_some()))
                }
                Feature::Pair { a, b } => Slot::Pair(encoder.pairs.iter().position(|p| &p.a == a && &p.b == b)),
                Feature::AgeDays => Slot::AgeDays,
                Feature::AgeRatio => Slot::AgeRatio,
                Feature::LogAmount => Slot::LogAmount,
                Feature::AmountRatio => Slot::AmountRatio,
                Feature::Stage => Slot::Stage,
                Feature::DaysInStage => Slot::DaysInStage,
                Feature::StageTimeRatio => Slot::StageTimeRatio,
                Feature::CreatedQ4 => Slot::CreatedQ4,
                Feature::QuarterEnd => Slot::QuarterEnd,
                Feature::Numeric { column } => {
                    Slot::Numeric(encoder.numeric.iter().position(|n| &n.name == column).and_then(|k| numeric[k]))
                }
            })
            .collect();
        Bound {
            plan,
            encoder,
            base_logit: logit(base),
            cycle: per_segment(&encoder.cycle_days),
            amount: per_segment(&encoder.amount),
            cats,
            pairs,
            stage_slots,
            numeric,
        }
    }

    /// Names of encoder columns the dataset lacks (their features read as "average").
    pub fn missing_columns(&self) -> Vec<&str> {
        let mut missing: Vec<&str> = self
            .encoder
            .columns
            .iter()
            .zip(&self.cats)
            .filter(|(_, b)| b.is_none())
            .map(|(c, _)| c.name.as_str())
            .collect();
        missing.extend(
            self.encoder.numeric.iter().zip(&self.numeric).filter(|(_, b)| b.is_none()).map(|(n, _)| n.name.as_str()),
        );
        missing
    }

    /// Typical cycle length, in days, for deals like this one (its cycle segment).
    pub fn typical_cycle(&self, deal: &Deal) -> f64 {
        self.cycle.get(deal)
    }

    pub fn median_amount(&self, deal: &Deal) -> f64 {
        self.amount.get(deal)
    }

    /// The segment values behind [`Self::typical_cycle`] and [`Self::median_amount`].
    pub fn cycle_label<'d>(&self, deal: &Deal, dataset: &'d Dataset) -> Option<&'d str> {
        self.cycle.label(deal, dataset)
    }

    pub fn amount_label<'d>(&self, deal: &Deal, dataset: &'d Dataset) -> Option<&'d str> {
        self.amount.label(deal, dataset)
    }

    /// The deal's value, rate and support in an encoder column.
    pub fn segment(&self, encoder_column: usize, deal: &Deal) -> Option<(Sym, f64, f64)> {
        let b = self.cats.get(encoder_column)?.as_ref()?;
        let sym = deal.cats[b.column];
        let slot = b.slot(sym);
        Some((sym, b.rate[slot], b.support[slot]))
    }

    /// The deal's interaction cell of segments `a` × `b`: (shrunk rate, rate expected from the
    /// two single rates).
    pub fn pair_rates(&self, a: &str, b: &str, deal: &Deal) -> Option<(f64, f64)> {
        let i = self.encoder.pairs.iter().position(|p| p.a == a && p.b == b)?;
        let p = self.pairs[i].as_ref()?;
        let (x, y) = (deal.cats[p.a], deal.cats[p.b]);
        (x != MISSING && y != MISSING).then(|| p.rates[x as usize * p.width + y as usize])
    }

    pub fn dataset_column(&self, encoder_column: usize) -> Option<usize> {
        self.cats.get(encoder_column)?.as_ref().map(|b| b.column)
    }

    /// Effective number of deals behind this deal's segment rates: the smallest posterior
    /// sample size (deals + prior pseudo-deals) among its segment and owner values.
    pub fn support(&self, deal: &Deal) -> f64 {
        self.cats
            .iter()
            .zip(&self.encoder.columns)
            .filter(|(_, s)| s.kind != ColumnKind::Extra)
            .filter_map(|(b, _)| b.as_ref())
            .map(|b| b.support[b.slot(deal.cats[b.column])])
            .fold(self.encoder.global.n, f64::min)
    }

    /// Stage (encoder index) and days in it on `at`.
    pub fn stage_on(&self, deal: &Deal, at: NaiveDate) -> Option<(usize, i64)> {
        let (slot, entered) = deal.stage_on(at)?;
        let s = *self.stage_slots.get(slot)?;
        (s != usize::MAX).then(|| (s, (at - entered).num_days()))
    }

    /// Computes the encoder's features for `deal` observed on `at` into `out` (NaN = missing).
    pub fn features_into(&self, deal: &Deal, at: Option<NaiveDate>, out: &mut [f64]) {
        let age = at.zip(deal.created).map(|(a, c)| (a - c).num_days() as f64);
        let stage = if self.stage_slots.is_empty() { None } else { at.and_then(|t| self.stage_on(deal, t)) };
        for (value, slot) in out.iter_mut().zip(&self.plan) {
            *value = match *slot {
                Slot::Segment(c) => {
                    c.and_then(|c| self.cats[c].as_ref()).map_or(0.0, |b| b.lift[b.slot(deal.cats[b.column])])
                }
                Slot::Pair(p) => p.and_then(|p| self.pairs[p].as_ref()).map_or(0.0, |p| {
                    let (a, b) = (deal.cats[p.a], deal.cats[p.b]);
                    if a == MISSING || b == MISSING { 0.0 } else { p.lift[a as usize * p.width + b as usize] }
                }),
                Slot::AgeDays => age.unwrap_or(f64::NAN),
                Slot::AgeRatio => age.map_or(f64::NAN, |a| a / self.typical_cycle(deal).max(1.0)),
                Slot::LogAmount => deal.amount.map_or(f64::NAN, |a| a.get().ln()),
                Slot::AmountRatio => deal.amount.map_or(f64::NAN, |a| (a.get() / self.median_amount(deal)).ln()),
                Slot::Stage => stage.map_or(f64::NAN, |(s, _)| s as f64),
                Slot::DaysInStage => stage.map_or(f64::NAN, |(_, d)| d as f64),
                Slot::StageTimeRatio => stage.map_or(f64::NAN, |(s, d)| {
                    let typical = self.encoder.stages[s].median_days.unwrap_or(f64::NAN);
                    d as f64 / typical.max(1.0)
                }),
                Slot::CreatedQ4 => deal.created.map_or(f64::NAN, |c| f64::from(u8::from(c.month() >= 10))),
                Slot::QuarterEnd => at.map_or(f64::NAN, |t| f64::from(u8::from(t.month() % 3 == 0))),
                Slot::Numeric(c) => c.map_or(f64::NAN, |c| deal.nums[c]),
            };
        }
    }

    /// The overall training win rate, as log-odds.
    pub fn base_logit(&self) -> f64 {
        self.base_logit
    }
}

/// The features of closed deals `rows` at their snapshot dates, described by one encoder (how
/// test deals are described); row-major.
pub fn snapshot_matrix(encoder: &Encoder, dataset: &Dataset, rows: &[usize]) -> Vec<f64> {
    let n_features = encoder.features.len();
    let bound = Bound::new(encoder, dataset);
    let mut x = vec![0.0; rows.len() * n_features];
    for (r, &i) in rows.iter().enumerate() {
        let deal = &dataset.deals[i];
        bound.features_into(
            deal,
            snapshot_date(deal, encoder.snapshot_seed),
            &mut x[r * n_features..(r + 1) * n_features],
        );
    }
    x
}

/// The features of training rows, out of fold, at their snapshot dates; row-major.
pub fn training_matrix(dataset: &Dataset, rows: &[usize], encoders: &[Encoder], k: usize, seed: u64) -> Vec<f64> {
    let n_features = encoders.first().map_or(0, |e| e.features.len());
    let bound: Vec<Bound<'_>> = encoders.iter().map(|e| Bound::new(e, dataset)).collect();
    let mut x = vec![0.0; rows.len() * n_features];
    for (r, &i) in rows.iter().enumerate() {
        let deal = &dataset.deals[i];
        let b = &bound[fold_of(deal, k, seed)];
        b.features_into(deal, snapshot_date(deal, seed), &mut x[r * n_features..(r + 1) * n_features]);
    }
    x
}
