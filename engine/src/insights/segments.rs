//! Segment win-rate changes and high-performing segments.
//!
//! A segment is one value of a segment dimension (industry = HealthTech), a pair of values of two
//! dimensions (product = Enterprise and region = APAC), or all deals. One pass over the deals
//! counts, for every segment, the wins among deals closed in each window and the open pipeline.
//!
//! **Changes.** Each segment's win rate in the current window is compared with the previous
//! window, for two comparisons: the quarter to date against the whole previous quarter, and the
//! last 90 days against the 90 before. A comparison is tested only when both windows hold at
//! least `min_closed` closed deals. Every test in the run (all segments, both comparisons) forms
//! one family, and Benjamini–Hochberg keeps the expected share of false findings among those
//! reported at `fdr`. A finding is reported when its q-value is at most `fdr` and the change is
//! at least `min_change`. A pair is left out when one of its two segments already reports the same
//! change and the pair moved by less than `min_change` more: the pair adds nothing.
//!
//! **High performers.** Each segment's win rate over the last `performer_days` is compared with
//! the rest of the company's (a second family under the same control). Segments reported: at
//! least `performer_margin` above the company rate. Segments significantly below it are the
//! "low-win segments" the rep rules use to explain a rep's risk.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{InsightConfig, Rate, Window, closed_on, quarter_to_date};
use crate::asof::View;
use crate::dataset::{Dataset, Deal, MISSING, Sym};
use crate::stats::{WinCount, bh_adjust, difference_interval, two_proportion_p};

const Z95: f64 = 1.959_964;

/// Which windows a change compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Comparison {
    /// The quarter to date against the whole previous quarter.
    QuarterToDate,
    /// The last `rolling_days` against the same length before.
    Rolling,
}

/// A segment: values of zero (all deals), one or two dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Segment {
    pub dimensions: Vec<String>,
    pub values: Vec<String>,
}

impl Segment {
    /// "HealthTech", "Enterprise + APAC", or "all deals".
    pub fn label(&self) -> String {
        if self.values.is_empty() { "all deals".to_owned() } else { self.values.join(" + ") }
    }
}

/// A segment whose win rate changed for real.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateChange {
    pub segment: Segment,
    pub label: String,
    pub comparison: Comparison,
    pub current: Rate,
    pub prior: Rate,
    /// Current minus prior win rate (a fraction: −0.12 is 12 points down).
    pub change: f64,
    /// 95% interval of the change (Newcombe's hybrid score interval).
    pub interval: [f64; 2],
    pub p_value: f64,
    /// Benjamini–Hochberg adjusted p-value across every change tested in the run.
    pub q_value: f64,
    /// Losses in the current window, and how many the prior rate would have given.
    pub losses: u32,
    pub expected_losses: f64,
    /// Open deals in the segment on the as-of date and their value: what is at stake.
    pub open_deals: u32,
    pub open_value: f64,
    /// The reps with the most open value in the segment (at most three).
    pub owners: Vec<String>,
}

/// A segment that wins clearly more often than the company.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HighPerformer {
    pub segment: Segment,
    pub label: String,
    pub rate: Rate,
    /// Win rate of every deal closed in the same window.
    pub company_rate: f64,
    /// Segment rate minus the rate of the rest of the company, with its 95% interval.
    pub lift: f64,
    pub interval: [f64; 2],
    pub p_value: f64,
    pub q_value: f64,
    /// Average won-deal cycle of the company divided by the segment's: 1.5 = 1.5× faster.
    pub velocity: Option<f64>,
    pub open_deals: u32,
    pub open_value: f64,
}

/// What the segment rules found, and what the rep rules reuse.
pub(crate) struct Analysis {
    pub changes: Vec<RateChange>,
    pub performers: Vec<HighPerformer>,
    pub tested_changes: usize,
    pub tested_performers: usize,
    /// Single-dimension segments that win significantly less than the company: (column, value).
    pub low_segments: Vec<(usize, Sym)>,
}

// Window slots counted per segment.
const Q_CUR: usize = 0;
const Q_PRIOR: usize = 1;
const R_CUR: usize = 2;
const R_PRIOR: usize = 3;
const PERF: usize = 4;
const SLOTS: usize = 5;

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    counts: [WinCount; SLOTS],
    won_cycle_days: f64,
    won_cycles: u32,
    open: u32,
    open_value: f64,
}

/// Which columns a segment family combines.
#[derive(Debug, Clone, Copy)]
enum Combo {
    All,
    One(usize),
    Two(usize, usize),
}

/// Per-combo tallies: a dense array when the value space is small, a map otherwise.
enum Cells {
    Dense(Vec<Tally>),
    Sparse(HashMap<u64, Tally>),
}

impl Cells {
    fn get_mut(&mut self, code: u64) -> &mut Tally {
        match self {
            Cells::Dense(v) => &mut v[code as usize],
            Cells::Sparse(m) => m.entry(code).or_default(),
        }
    }

    fn get(&self, code: u64) -> Tally {
        match self {
            Cells::Dense(v) => v[code as usize],
            Cells::Sparse(m) => m.get(&code).copied().unwrap_or_default(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (u64, &Tally)> + '_> {
        match self {
            Cells::Dense(v) => Box::new(v.iter().enumerate().map(|(i, t)| (i as u64, t))),
            Cells::Sparse(m) => Box::new(m.iter().map(|(k, t)| (*k, t))),
        }
    }
}

struct Family {
    combo: Combo,
    /// Vocabulary size of the second column, to split a pair's code.
    stride: u64,
    cells: Cells,
}

impl Family {
    fn code(&self, deal: &Deal) -> Option<u64> {
        match self.combo {
            Combo::All => Some(0),
            Combo::One(c) => Some(deal.cats[c]).filter(|&s| s != MISSING).map(u64::from),
            Combo::Two(a, b) => {
                let (x, y) = (deal.cats[a], deal.cats[b]);
                (x != MISSING && y != MISSING).then(|| u64::from(x) * self.stride + u64::from(y))
            }
        }
    }

    fn segment(&self, dataset: &Dataset, code: u64) -> Segment {
        let name = |c: usize, s: u64| dataset.cat_name(c, s as Sym).unwrap_or("?").to_owned();
        let col = |c: usize| dataset.schema.categorical[c].name.clone();
        match self.combo {
            Combo::All => Segment { dimensions: vec![], values: vec![] },
            Combo::One(c) => Segment { dimensions: vec![col(c)], values: vec![name(c, code)] },
            Combo::Two(a, b) => Segment {
                dimensions: vec![col(a), col(b)],
                values: vec![name(a, code / self.stride), name(b, code % self.stride)],
            },
        }
    }
}

fn families(dataset: &Dataset) -> Vec<Family> {
    let cols: Vec<usize> = dataset.schema.segment_columns().collect();
    let size = |c: usize| dataset.schema.categorical[c].vocab.len().max(1) as u64;
    let mut combos = vec![Combo::All];
    combos.extend(cols.iter().map(|&c| Combo::One(c)));
    for (i, &a) in cols.iter().enumerate() {
        combos.extend(cols[i + 1..].iter().map(|&b| Combo::Two(a, b)));
    }
    combos
        .into_iter()
        .map(|combo| {
            let (space, stride) = match combo {
                Combo::All => (1, 1),
                Combo::One(c) => (size(c), 1),
                Combo::Two(a, b) => (size(a) * size(b), size(b)),
            };
            let cells = if space <= 1 << 16 {
                Cells::Dense(vec![Tally::default(); space as usize])
            } else {
                Cells::Sparse(HashMap::new())
            };
            Family { combo, stride, cells }
        })
        .collect()
}

pub(crate) fn analyse(dataset: &Dataset, view: &View, as_of: NaiveDate, config: &InsightConfig) -> Analysis {
    let (q_cur, q_prior) = quarter_to_date(as_of);
    let r_cur = Window::days_before(as_of, config.rolling_days);
    let r_prior = r_cur.previous();
    let perf = Window::days_before(as_of, config.performer_days);
    let windows = [q_cur, q_prior, r_cur, r_prior, perf];
    let oldest = windows.iter().map(|w| w.after).min().unwrap_or(as_of);

    let mut families = families(dataset);
    let mut slots = Vec::with_capacity(SLOTS);
    for &i in &view.closed {
        let deal = &dataset.deals[i];
        let Some((won, date)) = closed_on(deal, as_of) else { continue };
        if date <= oldest {
            continue;
        }
        slots.clear();
        slots.extend((0..SLOTS).filter(|&s| windows[s].contains(date)));
        let won_cycle = (won && perf.contains(date)).then(|| deal.cycle_days()).flatten();
        for family in &mut families {
            let Some(code) = family.code(deal) else { continue };
            let tally = family.cells.get_mut(code);
            for &s in &slots {
                tally.counts[s].add(won);
            }
            if let Some(days) = won_cycle {
                tally.won_cycle_days += days as f64;
                tally.won_cycles += 1;
            }
        }
    }
    for &i in &view.open {
        let deal = &dataset.deals[i];
        for family in &mut families {
            let Some(code) = family.code(deal) else { continue };
            let tally = family.cells.get_mut(code);
            tally.open += 1;
            tally.open_value += deal.amount.map_or(0.0, |a| a.get());
        }
    }

    // The first family is all deals: one cell, code 0.
    let company = families[0].cells.get(0);
    let min = config.min_closed as f64;

    // Changes: one family of tests across all segments and both comparisons.
    struct Candidate {
        family: usize,
        code: u64,
        comparison: Comparison,
        cur: WinCount,
        prior: WinCount,
        p: f64,
    }
    let mut candidates = Vec::new();
    // High performers (and under-performers): segment against the rest of the company.
    let mut versus_rest = Vec::new();
    for (f, family) in families.iter().enumerate() {
        for (code, tally) in family.cells.iter() {
            for (comparison, cur, prior) in
                [(Comparison::QuarterToDate, Q_CUR, Q_PRIOR), (Comparison::Rolling, R_CUR, R_PRIOR)]
            {
                let (c, p) = (tally.counts[cur], tally.counts[prior]);
                if c.n >= min && p.n >= min {
                    let pv = two_proportion_p(c.won, c.n, p.won, p.n);
                    candidates.push(Candidate { family: f, code, comparison, cur: c, prior: p, p: pv });
                }
            }
            let seg = tally.counts[PERF];
            let rest = company.counts[PERF].minus(seg);
            if f > 0 && seg.n >= min && rest.n >= min {
                versus_rest.push((f, code, seg, rest, two_proportion_p(seg.won, seg.n, rest.won, rest.n)));
            }
        }
    }

    let q = bh_adjust(&candidates.iter().map(|c| c.p).collect::<Vec<_>>());
    let mut changes: Vec<(usize, RateChange)> = Vec::new();
    for (cand, q) in candidates.iter().zip(q) {
        let (cur_rate, prior_rate) = (cand.cur.won / cand.cur.n, cand.prior.won / cand.prior.n);
        let change = cur_rate - prior_rate;
        if q > config.fdr || change.abs() < config.min_change {
            continue;
        }
        let family = &families[cand.family];
        let tally = family.cells.get(cand.code);
        let (cw, pw) = match cand.comparison {
            Comparison::QuarterToDate => (q_cur, q_prior),
            Comparison::Rolling => (r_cur, r_prior),
        };
        let (lo, hi) = difference_interval(cand.cur.won, cand.cur.n, cand.prior.won, cand.prior.n, Z95);
        let segment = family.segment(dataset, cand.code);
        changes.push((
            cand.family,
            RateChange {
                label: segment.label(),
                segment,
                comparison: cand.comparison,
                current: Rate::new(cand.cur, cw),
                prior: Rate::new(cand.prior, pw),
                change,
                interval: [lo, hi],
                p_value: cand.p,
                q_value: q,
                losses: (cand.cur.n - cand.cur.won) as u32,
                expected_losses: cand.cur.n * (1.0 - prior_rate),
                open_deals: tally.open,
                open_value: tally.open_value,
                owners: Vec::new(),
            },
        ));
    }
    let mut changes = drop_redundant_pairs(changes, &families, config.min_change);
    for change in &mut changes {
        change.owners = top_owners(dataset, view, &change.segment, 3);
    }
    changes.sort_by(|a, b| a.q_value.total_cmp(&b.q_value).then(b.open_value.total_cmp(&a.open_value)));

    let q = bh_adjust(&versus_rest.iter().map(|v| v.4).collect::<Vec<_>>());
    let company_rate = company.counts[PERF].rate().unwrap_or(0.0);
    let company_cycle = (company.won_cycles > 0).then(|| company.won_cycle_days / f64::from(company.won_cycles));
    let mut performers = Vec::new();
    let mut low_segments = Vec::new();
    for (&(f, code, seg, rest, p), q) in versus_rest.iter().zip(q) {
        if q > config.fdr {
            continue;
        }
        let family = &families[f];
        let lift = seg.won / seg.n - rest.won / rest.n;
        if lift < 0.0 {
            if let Combo::One(c) = family.combo {
                low_segments.push((c, code as Sym));
            }
            continue;
        }
        if seg.won / seg.n - company_rate < config.performer_margin {
            continue;
        }
        let tally = family.cells.get(code);
        let seg_cycle = (tally.won_cycles > 0).then(|| tally.won_cycle_days / f64::from(tally.won_cycles));
        let (lo, hi) = difference_interval(seg.won, seg.n, rest.won, rest.n, Z95);
        let segment = family.segment(dataset, code);
        performers.push(HighPerformer {
            label: segment.label(),
            segment,
            rate: Rate::new(seg, perf),
            company_rate,
            lift,
            interval: [lo, hi],
            p_value: p,
            q_value: q,
            velocity: company_cycle.zip(seg_cycle).filter(|(_, s)| *s > 0.0).map(|(c, s)| c / s),
            open_deals: tally.open,
            open_value: tally.open_value,
        });
    }
    performers.sort_by(|a, b| b.lift.total_cmp(&a.lift));

    Analysis {
        changes,
        performers,
        tested_changes: candidates.len(),
        tested_performers: versus_rest.len(),
        low_segments,
    }
}

/// Leaves out a pair whose change one of its two segments already reports (same comparison and
/// direction) unless the pair moved by at least `margin` more.
fn drop_redundant_pairs(changes: Vec<(usize, RateChange)>, families: &[Family], margin: f64) -> Vec<RateChange> {
    let singles: Vec<(String, String, Comparison, f64)> = changes
        .iter()
        .filter(|(f, _)| matches!(families[*f].combo, Combo::One(_)))
        .map(|(_, c)| (c.segment.dimensions[0].clone(), c.segment.values[0].clone(), c.comparison, c.change))
        .collect();
    changes
        .into_iter()
        .filter(|(f, c)| {
            if !matches!(families[*f].combo, Combo::Two(..)) {
                return true;
            }
            !singles.iter().any(|(dim, value, comparison, change)| {
                *comparison == c.comparison
                    && change.signum() == c.change.signum()
                    && c.change.abs() < change.abs() + margin
                    && c.segment.dimensions.iter().zip(&c.segment.values).any(|(d, v)| d == dim && v == value)
            })
        })
        .map(|(_, c)| c)
        .collect()
}

/// The owners with the most open value in `segment`.
fn top_owners(dataset: &Dataset, view: &View, segment: &Segment, n: usize) -> Vec<String> {
    let Some(owner) = dataset.schema.owner_column() else { return Vec::new() };
    let cols: Vec<(usize, Option<Sym>)> = segment
        .dimensions
        .iter()
        .zip(&segment.values)
        .filter_map(|(d, v)| {
            let c = dataset.schema.column(d)?;
            Some((c, dataset.schema.categorical[c].vocab.lookup(v)))
        })
        .collect();
    let mut by_owner: HashMap<Sym, f64> = HashMap::new();
    for &i in &view.open {
        let deal = &dataset.deals[i];
        if deal.cats[owner] != MISSING && cols.iter().all(|&(c, s)| Some(deal.cats[c]) == s) {
            *by_owner.entry(deal.cats[owner]).or_default() += deal.amount.map_or(0.0, |a| a.get());
        }
    }
    let mut owners: Vec<(Sym, f64)> = by_owner.into_iter().collect();
    owners.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    owners.into_iter().take(n).filter_map(|(s, _)| dataset.cat_name(owner, s).map(str::to_owned)).collect()
}
