//! The explainable additive model (the default).
//!
//! The log-odds of a loss is an intercept plus one *shape function* per feature (a step function
//! over the feature's bins, with its own value for "missing") plus a few *pair terms*, each a
//! small table over two features' coarse bins. A score therefore decomposes into its factors
//! exactly, like a credit scorecard, but the shapes are learnt, so non-linear effects (deals that
//! are unusually small *or* large lose more) and the strongest interactions (deal size matters
//! relative to the product) are captured. This is the GA²M design of explainable boosting
//! machines.
//!
//! Fitting has three phases, in each of `k` bags that train on `k - 1` folds and stop early on the
//! held-out fold:
//! 1. Main effects by cyclic boosting: round after round, each feature gets a small Newton step
//!    fitted as a tree of at most three leaves over its ordered bins, so no feature takes credit
//!    for another's effect. The gradients are computed once per round, not once per feature:
//!    that cuts fitting time by 2.5× and, measured on generated data, changes no AUC in the
//!    fourth decimal.
//! 2. Pair selection (FAST): on the out-of-fold residuals, every pair of features is scored by
//!    the best four-quadrant split of its 2-D histogram; the strongest `max_pairs` are kept.
//! 3. Pair boosting: the selected pairs' tables are boosted on the residuals of phase 1.
//!
//! The model is the average of the bags, which smooths the shapes, and each bag's held-out
//! predictions are out-of-fold scores for calibration. A pair term's contribution is credited to
//! its features (to the non-rate one when one of them is a segment rate, else half each), so
//! per-feature contributions still add up to the score exactly.

use serde::{Deserialize, Serialize};

use super::Training;
use crate::stats::{logit, sigmoid};

#[derive(Debug, Clone)]
pub struct Params {
    pub max_bins: usize,
    pub learning_rate: f64,
    pub max_rounds: usize,
    /// Rounds without improvement on the held-out fold before a bag stops.
    pub patience: usize,
    /// Fewest training rows per leaf.
    pub min_leaf: f64,
    /// L2 regularisation of leaf values (in hessian units).
    pub lambda: f64,
    /// Interaction terms to fit (0: main effects only).
    pub max_pairs: usize,
    /// Coarse bins per feature in a pair table.
    pub pair_bins: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_bins: 32,
            learning_rate: 0.08,
            max_rounds: 600,
            patience: 25,
            min_leaf: 15.0,
            lambda: 5.0,
            max_pairs: 10,
            pair_bins: 8,
        }
    }
}

/// One feature's shape: `values[0]` is for missing, `values[1 + i]` for bin `i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Upper bounds of the bins but the last (a value equal to an edge falls in the lower bin).
    pub edges: Vec<f64>,
    pub values: Vec<f64>,
}

impl Term {
    pub fn bin(&self, x: f64) -> usize {
        if x.is_nan() { 0 } else { 1 + self.edges.partition_point(|&e| e < x) }
    }

    pub fn contribution(&self, x: f64) -> f64 {
        self.values[self.bin(x)]
    }
}

/// An interaction: a table over two features' coarse bins (index 0 of each axis: missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairTerm {
    pub a: usize,
    pub b: usize,
    /// Share of the term credited to feature `a`; the rest goes to `b`.
    pub credit_a: f64,
    pub edges_a: Vec<f64>,
    pub edges_b: Vec<f64>,
    /// Row-major over (bin of a, bin of b).
    pub values: Vec<f64>,
}

impl PairTerm {
    pub fn value(&self, xa: f64, xb: f64) -> f64 {
        let bin = |edges: &[f64], x: f64| if x.is_nan() { 0 } else { 1 + edges.partition_point(|&e| e < x) };
        self.values[bin(&self.edges_a, xa) * (self.edges_b.len() + 2) + bin(&self.edges_b, xb)]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdditiveModel {
    pub intercept: f64,
    pub terms: Vec<Term>,
    #[serde(default)]
    pub pairs: Vec<PairTerm>,
    /// Boosting rounds each bag ran before early stopping, for main effects and for pairs.
    pub rounds: Vec<usize>,
    #[serde(default)]
    pub pair_rounds: Vec<usize>,
}

impl AdditiveModel {
    /// Per-feature contributions, each pair term credited to its features (see `credit_a`).
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        for ((o, term), &v) in out.iter_mut().zip(&self.terms).zip(x) {
            *o = term.contribution(v);
        }
        for pair in &self.pairs {
            let v = pair.value(x[pair.a], x[pair.b]);
            out[pair.a] += v * pair.credit_a;
            out[pair.b] += v * (1.0 - pair.credit_a);
        }
        self.intercept
    }
}

/// Bin edges for one feature from its training values.
fn edges_for(values: &[f64], max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_unstable_by(f64::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup();
    if distinct.len() <= max_bins {
        // Cut half-way between neighbouring values, so unseen values go to the nearer bin.
        return distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    }
    let mut edges: Vec<f64> = (1..max_bins).map(|k| v[k * (v.len() - 1) / max_bins]).collect();
    edges.dedup();
    // A cut at the maximum would leave an empty last bin.
    if edges.last() == v.last() {
        edges.pop();
    }
    edges
}

/// Fits the model. Returns it and each row's out-of-fold log-odds.
///
/// `monotone[j]` constrains feature `j`'s shape: `1` non-decreasing, `-1` non-increasing, `0`
/// free. Features that encode a win rate are constrained so that a better segment can never
/// raise the risk, which keeps every factor's sentence and its sign in agreement.
pub fn fit(training: &Training<'_>, monotone: &[i8], params: &Params, threads: usize) -> (AdditiveModel, Vec<f64>) {
    let Training { x, n_features, lost, fold, k } = *training;
    let n = lost.len();
    let columns: Vec<Vec<f64>> = (0..n_features).map(|j| (0..n).map(|r| x[r * n_features + j]).collect()).collect();
    let edges: Vec<Vec<f64>> = columns.iter().map(|c| edges_for(c, params.max_bins.min(254))).collect();
    let bins: Vec<Vec<u8>> = columns
        .iter()
        .zip(&edges)
        .map(|(c, e)| {
            let term = Term { edges: e.clone(), values: Vec::new() };
            c.iter().map(|&v| term.bin(v) as u8).collect()
        })
        .collect();
    let n_bins: Vec<usize> = edges.iter().map(|e| e.len() + 2).collect();
    let coarse: Vec<Coarse> = bins.iter().zip(&edges).map(|(b, e)| Coarse::new(b, e, params.pair_bins)).collect();
    let y: Vec<f64> = lost.iter().map(|&l| f64::from(u8::from(l))).collect();
    let data = Data { bins: &bins, n_bins, y: &y, monotone, coarse: &coarse };

    let mut bags: Vec<Bag> = (0..k)
        .map(|b| {
            let train: Vec<usize> = (0..n).filter(|&r| fold[r] != b).collect();
            let valid: Vec<usize> = (0..n).filter(|&r| fold[r] == b).collect();
            Bag::new(&data, &train, &valid)
        })
        .collect();
    in_parallel(&mut bags, threads, |bag| bag.boost_main_effects(&data, params));

    // Pairs are chosen once, on out-of-fold residuals, so every bag boosts the same ones.
    let oof_main = out_of_fold(&bags, fold, n);
    let pairs = select_pairs(&data, &oof_main, params);
    in_parallel(&mut bags, threads, |bag| bag.boost_pairs(&data, &pairs, params));
    let oof = out_of_fold(&bags, fold, n);

    // Average the bags, then centre every term on the training rows so that a contribution
    // reads "compared with the average deal" and the intercept is the average deal's log-odds.
    let kf = bags.len() as f64;
    let mut intercept = bags.iter().map(|b| b.intercept).sum::<f64>() / kf;
    let mut terms = Vec::with_capacity(n_features);
    for j in 0..n_features {
        let mut values: Vec<f64> =
            (0..data.n_bins[j]).map(|v| bags.iter().map(|b| b.shapes[j][v]).sum::<f64>() / kf).collect();
        let mean = bins[j].iter().map(|&v| values[v as usize]).sum::<f64>() / n.max(1) as f64;
        values.iter_mut().for_each(|v| *v -= mean);
        intercept += mean;
        terms.push(Term { edges: edges[j].clone(), values });
    }
    let mut pair_terms = Vec::with_capacity(pairs.len());
    for (p, &(a, b)) in pairs.iter().enumerate() {
        let cells = coarse[a].len() * coarse[b].len();
        let mut values: Vec<f64> = (0..cells).map(|c| bags.iter().map(|g| g.pairs[p][c]).sum::<f64>() / kf).collect();
        let mean = (0..n).map(|r| values[cell(&coarse, a, b, &bins, r)]).sum::<f64>() / n.max(1) as f64;
        values.iter_mut().for_each(|v| *v -= mean);
        intercept += mean;
        // A rate feature (monotone: a segment's win rate) is explained by its rate alone; an
        // interaction with it modulates the other feature ("large *for an Enterprise deal*"),
        // so it is credited to the other feature. Otherwise the two share it equally.
        let credit_a = match (monotone.get(a).copied().unwrap_or(0) != 0, monotone.get(b).copied().unwrap_or(0) != 0) {
            (true, false) => 0.0,
            (false, true) => 1.0,
            _ => 0.5,
        };
        pair_terms.push(PairTerm {
            a,
            b,
            credit_a,
            edges_a: coarse[a].edges.clone(),
            edges_b: coarse[b].edges.clone(),
            values,
        });
    }
    let rounds = bags.iter().map(|b| b.rounds).collect();
    let pair_rounds = bags.iter().map(|b| b.pair_rounds).collect();
    (AdditiveModel { intercept, terms, pairs: pair_terms, rounds, pair_rounds }, oof)
}

/// Runs `f` on every item, spread over up to `threads` threads. Items are independent, so the
/// result does not depend on the thread count.
fn in_parallel<T: Send>(items: &mut [T], threads: usize, f: impl Fn(&mut T) + Sync) {
    if threads <= 1 || items.len() <= 1 {
        items.iter_mut().for_each(f);
        return;
    }
    let per = items.len().div_ceil(threads.min(items.len()));
    std::thread::scope(|s| {
        for chunk in items.chunks_mut(per) {
            let f = &f;
            s.spawn(move || chunk.iter_mut().for_each(f));
        }
    });
}

/// Each row's log-odds from the bag that did not train on it.
fn out_of_fold(bags: &[Bag], fold: &[usize], n: usize) -> Vec<f64> {
    let mut oof = vec![0.0; n];
    let mut seen = vec![0usize; bags.len()];
    for (r, slot) in oof.iter_mut().enumerate() {
        let b = fold[r];
        *slot = bags[b].score_v[seen[b]];
        seen[b] += 1;
    }
    oof
}

/// Coarse bins of one feature for pair tables: runs of fine bins with roughly equal counts.
#[derive(Debug, Clone)]
struct Coarse {
    /// Fine bin → coarse bin (0 stays "missing").
    map: Vec<u8>,
    edges: Vec<f64>,
}

impl Coarse {
    fn new(bins: &[u8], fine_edges: &[f64], max_bins: usize) -> Coarse {
        let n_fine = fine_edges.len() + 1;
        let mut counts = vec![0usize; n_fine + 1];
        for &b in bins {
            counts[b as usize] += 1;
        }
        let present: usize = counts[1..].iter().sum();
        let target = present.div_ceil(max_bins.max(1)).max(1);
        let mut map = vec![0u8; n_fine + 1];
        let mut edges = Vec::new();
        let (mut coarse, mut run) = (1u8, 0usize);
        for fine in 1..=n_fine {
            map[fine] = coarse;
            run += counts[fine];
            // Close the run at the edge after this fine bin, if one is left.
            if run >= target && fine < n_fine {
                edges.push(fine_edges[fine - 1]);
                coarse += 1;
                run = 0;
            }
        }
        Coarse { map, edges }
    }

    /// Coarse bins including the missing one.
    fn len(&self) -> usize {
        self.edges.len() + 2
    }
}

fn cell(coarse: &[Coarse], a: usize, b: usize, bins: &[Vec<u8>], r: usize) -> usize {
    coarse[a].map[bins[a][r] as usize] as usize * coarse[b].len() + coarse[b].map[bins[b][r] as usize] as usize
}

/// FAST: ranks every pair of features by the gain of the best four-quadrant split of the
/// residuals' 2-D histogram and keeps the strongest `max_pairs` with a positive gain.
fn select_pairs(data: &Data<'_>, oof: &[f64], params: &Params) -> Vec<(usize, usize)> {
    let f = data.bins.len();
    if params.max_pairs == 0 || f < 2 {
        return Vec::new();
    }
    let grad: Vec<(f64, f64)> = oof
        .iter()
        .zip(data.y)
        .map(|(&s, &y)| {
            let p = sigmoid(s);
            (y - p, p * (1.0 - p))
        })
        .collect();
    let score = |g: f64, h: f64| g * g / (h + params.lambda);
    let mut ranked: Vec<(f64, usize, usize)> = Vec::new();
    for a in 0..f {
        for b in a + 1..f {
            let (la, lb) = (data.coarse[a].len(), data.coarse[b].len());
            if la < 3 || lb < 3 {
                continue;
            }
            // 2-D histogram of (g, h, count), then prefix sums over both axes.
            let mut hist = vec![(0.0f64, 0.0f64, 0.0f64); la * lb];
            for (r, &(g, h)) in grad.iter().enumerate() {
                let e = &mut hist[cell(data.coarse, a, b, data.bins, r)];
                e.0 += g;
                e.1 += h;
                e.2 += 1.0;
            }
            let mut pre = vec![(0.0f64, 0.0f64, 0.0f64); (la + 1) * (lb + 1)];
            for i in 0..la {
                for j in 0..lb {
                    let at = |i: usize, j: usize| pre[i * (lb + 1) + j];
                    let (h0, h1, h2) = hist[i * lb + j];
                    let (u, l, d) = (at(i, j + 1), at(i + 1, j), at(i, j));
                    pre[(i + 1) * (lb + 1) + j + 1] =
                        (h0 + u.0 + l.0 - d.0, h1 + u.1 + l.1 - d.1, h2 + u.2 + l.2 - d.2);
                }
            }
            let total = pre[la * (lb + 1) + lb];
            let mut best = 0.0f64;
            for ti in 1..la {
                for tj in 1..lb {
                    // Quadrant sums: rows with coarse a < ti and b < tj, and so on.
                    let q00 = pre[ti * (lb + 1) + tj];
                    let row = pre[ti * (lb + 1) + lb];
                    let col = pre[la * (lb + 1) + tj];
                    let q01 = (row.0 - q00.0, row.1 - q00.1, row.2 - q00.2);
                    let q10 = (col.0 - q00.0, col.1 - q00.1, col.2 - q00.2);
                    let q11 = (
                        total.0 - row.0 - col.0 + q00.0,
                        total.1 - row.1 - col.1 + q00.1,
                        total.2 - row.2 - col.2 + q00.2,
                    );
                    let quads = [q00, q01, q10, q11];
                    if quads.iter().any(|q| q.2 < params.min_leaf) {
                        continue;
                    }
                    let gain = quads.iter().map(|q| score(q.0, q.1)).sum::<f64>() - score(total.0, total.1);
                    best = best.max(gain);
                }
            }
            if best > 0.0 {
                ranked.push((best, a, b));
            }
        }
    }
    ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    ranked.into_iter().take(params.max_pairs).map(|(_, a, b)| (a, b)).collect()
}

struct Data<'a> {
    bins: &'a [Vec<u8>],
    n_bins: Vec<usize>,
    y: &'a [f64],
    monotone: &'a [i8],
    coarse: &'a [Coarse],
}

/// One bag: its rows' bins, gathered row-major so each round streams through memory once, and
/// the state of its boosting.
struct Bag {
    /// Features per row.
    f: usize,
    bins_t: Vec<u8>,
    bins_v: Vec<u8>,
    y_t: Vec<f64>,
    y_v: Vec<f64>,
    score_t: Vec<f64>,
    score_v: Vec<f64>,
    intercept: f64,
    shapes: Vec<Vec<f64>>,
    pairs: Vec<Vec<f64>>,
    rounds: usize,
    pair_rounds: usize,
}

impl Bag {
    fn new(data: &Data<'_>, train: &[usize], valid: &[usize]) -> Bag {
        let f = data.bins.len();
        let gather =
            |rows: &[usize]| -> Vec<u8> { rows.iter().flat_map(|&r| data.bins.iter().map(move |b| b[r])).collect() };
        let y_t: Vec<f64> = train.iter().map(|&r| data.y[r]).collect();
        let rate = y_t.iter().sum::<f64>() / y_t.len().max(1) as f64;
        let intercept = logit(rate.clamp(1e-3, 1.0 - 1e-3));
        Bag {
            f,
            bins_t: gather(train),
            bins_v: gather(valid),
            y_v: valid.iter().map(|&r| data.y[r]).collect(),
            score_t: vec![intercept; train.len()],
            score_v: vec![intercept; valid.len()],
            y_t,
            intercept,
            shapes: data.n_bins.iter().map(|&nb| vec![0.0; nb]).collect(),
            pairs: Vec::new(),
            rounds: 0,
            pair_rounds: 0,
        }
    }

    fn gradients(&self, grad: &mut [(f64, f64)]) {
        for (g, (&s, &y)) in grad.iter_mut().zip(self.score_t.iter().zip(&self.y_t)) {
            let p = sigmoid(s);
            *g = (y - p, p * (1.0 - p));
        }
    }

    /// Phase 1: cyclic boosting of the shape functions, stopped early on the held-out fold.
    ///
    /// Within a round every feature's histogram comes from the same gradients, so all of them
    /// are built in one pass over the rows, and all the round's steps applied in another.
    fn boost_main_effects(&mut self, data: &Data<'_>, params: &Params) {
        let f = self.f;
        let offsets: Vec<usize> =
            data.n_bins.iter().scan(0, |acc, &nb| Some(std::mem::replace(acc, *acc + nb))).collect();
        let total_bins: usize = data.n_bins.iter().sum();
        let mut counts = vec![0.0f64; total_bins];
        for row in self.bins_t.chunks_exact(f) {
            for (j, &b) in row.iter().enumerate() {
                counts[offsets[j] + b as usize] += 1.0;
            }
        }
        // Four interleaved histogram copies: consecutive rows often fall in the same bin, and
        // adding into one cell row after row would make every add wait for the previous one.
        const LANES: usize = 4;
        let mut gh = vec![(0.0f64, 0.0f64); total_bins * LANES];
        let mut hist = vec![(0.0f64, 0.0f64, 0.0f64); data.n_bins.iter().copied().max().unwrap_or(1)];
        let mut delta = vec![0.0f64; total_bins];
        let mut stop = EarlyStop::new(valid_loss(&self.score_v, &self.y_v), self.shapes.clone(), params.patience);
        for round in 1..=params.max_rounds {
            self.rounds = round;
            gh.fill((0.0, 0.0));
            for (r, (row, (&s, &y))) in self.bins_t.chunks_exact(f).zip(self.score_t.iter().zip(&self.y_t)).enumerate()
            {
                let p = sigmoid(s);
                let (g, h) = (y - p, p * (1.0 - p));
                let lane = &mut gh[(r % LANES) * total_bins..(r % LANES + 1) * total_bins];
                for (&off, &b) in offsets.iter().zip(row) {
                    let e = &mut lane[off + b as usize];
                    e.0 += g;
                    e.1 += h;
                }
            }
            for (j, (&off, &nb)) in offsets.iter().zip(&data.n_bins).enumerate() {
                for (k, h) in hist[..nb].iter_mut().enumerate() {
                    let (g, hh) = (0..LANES)
                        .map(|l| gh[l * total_bins + off + k])
                        .fold((0.0, 0.0), |a, x| (a.0 + x.0, a.1 + x.1));
                    *h = (g, hh, counts[off + k]);
                }
                let step = &mut delta[off..off + nb];
                best_partition(&hist[..nb], params, step);
                let direction = data.monotone.get(j).copied().unwrap_or(0);
                if direction != 0 {
                    project_monotone(&self.shapes[j], &hist[..nb], direction, step);
                }
                for (v, d) in self.shapes[j].iter_mut().zip(step.iter()) {
                    *v += d;
                }
            }
            for (scores, bins) in [(&mut self.score_t, &self.bins_t), (&mut self.score_v, &self.bins_v)] {
                for (s, row) in scores.iter_mut().zip(bins.chunks_exact(f)) {
                    *s += offsets.iter().zip(row).map(|(&off, &b)| delta[off + b as usize]).sum::<f64>();
                }
            }
            if !self.y_v.is_empty()
                && stop.should_stop(valid_loss(&self.score_v, &self.y_v), round, || self.shapes.clone())
            {
                break;
            }
        }
        // Without a held-out fold there is nothing to stop on: keep the last round.
        if !self.y_v.is_empty() {
            (self.shapes, self.rounds) = stop.best();
        }
        self.rescore();
    }

    /// Recomputes the scores from the intercept and the shapes.
    fn rescore(&mut self) {
        let f = self.f;
        for (scores, bins) in [(&mut self.score_t, &self.bins_t), (&mut self.score_v, &self.bins_v)] {
            for (s, row) in scores.iter_mut().zip(bins.chunks_exact(f)) {
                *s = self.intercept + self.shapes.iter().zip(row).map(|(shape, &b)| shape[b as usize]).sum::<f64>();
            }
        }
    }

    /// Phase 3: boosting of the selected pairs' tables on top of the main effects.
    fn boost_pairs(&mut self, data: &Data<'_>, pairs: &[(usize, usize)], params: &Params) {
        if pairs.is_empty() {
            return;
        }
        let f = self.f;
        let cells_of = |bins: &[u8], a: usize, b: usize| -> Vec<u16> {
            let (ca, cb) = (&data.coarse[a], &data.coarse[b]);
            bins.chunks_exact(f)
                .map(|row| (ca.map[row[a] as usize] as usize * cb.len() + cb.map[row[b] as usize] as usize) as u16)
                .collect()
        };
        let cells_t: Vec<Vec<u16>> = pairs.iter().map(|&(a, b)| cells_of(&self.bins_t, a, b)).collect();
        let cells_v: Vec<Vec<u16>> = pairs.iter().map(|&(a, b)| cells_of(&self.bins_v, a, b)).collect();
        let sizes: Vec<usize> = pairs.iter().map(|&(a, b)| data.coarse[a].len() * data.coarse[b].len()).collect();
        self.pairs = sizes.iter().map(|&c| vec![0.0; c]).collect();
        let mut grad = vec![(0.0, 0.0); self.y_t.len()];
        let mut hist = vec![(0.0f64, 0.0f64, 0.0f64); sizes.iter().copied().max().unwrap_or(1)];
        let mut stop = EarlyStop::new(valid_loss(&self.score_v, &self.y_v), self.pairs.clone(), params.patience);
        for round in 1..=params.max_rounds {
            self.pair_rounds = round;
            // One gradient pass per round, as for main effects (refreshing it before every
            // pair was measured: no AUC change beyond 0.001, 10% more fitting time).
            self.gradients(&mut grad);
            for (p, &size) in sizes.iter().enumerate() {
                hist[..size].fill((0.0, 0.0, 0.0));
                for (&c, &(g, h)) in cells_t[p].iter().zip(&grad) {
                    let e = &mut hist[c as usize];
                    e.0 += g;
                    e.1 += h;
                    e.2 += 1.0;
                }
                let step = |&(g, h, c): &(f64, f64, f64)| {
                    if c >= params.min_leaf { params.learning_rate * g / (h + params.lambda) } else { 0.0 }
                };
                let delta: Vec<f64> = hist[..size].iter().map(step).collect();
                for (v, d) in self.pairs[p].iter_mut().zip(&delta) {
                    *v += d;
                }
                for (s, &c) in self.score_t.iter_mut().zip(&cells_t[p]) {
                    *s += delta[c as usize];
                }
                for (s, &c) in self.score_v.iter_mut().zip(&cells_v[p]) {
                    *s += delta[c as usize];
                }
            }
            if !self.y_v.is_empty()
                && stop.should_stop(valid_loss(&self.score_v, &self.y_v), round, || self.pairs.clone())
            {
                break;
            }
        }
        if !self.y_v.is_empty() {
            (self.pairs, self.pair_rounds) = stop.best();
        }
        self.rescore();
        for (p, table) in self.pairs.iter().enumerate() {
            for (s, &c) in self.score_t.iter_mut().zip(&cells_t[p]) {
                *s += table[c as usize];
            }
            for (s, &c) in self.score_v.iter_mut().zip(&cells_v[p]) {
                *s += table[c as usize];
            }
        }
    }
}

/// Early stopping on held-out loss: remembers the best state and stops after `patience` rounds
/// without improvement.
struct EarlyStop<T> {
    loss: f64,
    state: T,
    round: usize,
    stale: usize,
    patience: usize,
}

impl<T> EarlyStop<T> {
    fn new(loss: f64, state: T, patience: usize) -> Self {
        EarlyStop { loss, state, round: 0, stale: 0, patience }
    }

    /// Records round `round`'s loss (taking a snapshot of the state if it is the best yet) and
    /// says whether to stop.
    fn should_stop(&mut self, loss: f64, round: usize, snapshot: impl FnOnce() -> T) -> bool {
        if loss < self.loss - 1e-7 {
            (self.loss, self.state, self.round, self.stale) = (loss, snapshot(), round, 0);
            false
        } else {
            self.stale += 1;
            self.stale >= self.patience
        }
    }

    fn best(self) -> (T, usize) {
        (self.state, self.round)
    }
}

fn valid_loss(score: &[f64], y: &[f64]) -> f64 {
    if score.is_empty() {
        return 0.0;
    }
    // Log loss of log-odds s: softplus(s) − y·s, with one exp and one ln_1p per row.
    let total: f64 = score.iter().zip(y).map(|(&s, &y)| s.max(0.0) + (-s.abs()).exp().ln_1p() - y * s).sum();
    total / score.len() as f64
}

/// Adjusts `delta` so that `shape + delta` is monotone over the ordered bins (bin 0, missing,
/// is free): pool-adjacent-violators, weighted by the bins' row counts.
fn project_monotone(shape: &[f64], hist: &[(f64, f64, f64)], direction: i8, delta: &mut [f64]) {
    let sign = f64::from(direction);
    // Blocks of (weighted mean of sign·value, weight, number of bins).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(shape.len());
    for b in 1..shape.len() {
        let w = hist[b].2.max(1e-6);
        blocks.push((sign * (shape[b] + delta[b]), w, 1));
        while blocks.len() > 1 && blocks[blocks.len() - 2].0 > blocks[blocks.len() - 1].0 {
            let (v2, w2, n2) = blocks.pop().unwrap_or_default();
            let (v1, w1, n1) = blocks.pop().unwrap_or_default();
            blocks.push(((v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2));
        }
    }
    let mut b = 1;
    for (v, _, n) in blocks {
        for _ in 0..n {
            delta[b] = sign * v - shape[b];
            b += 1;
        }
    }
}

/// The best partition of the ordered bins `1..` into at most three contiguous leaves (bin 0,
/// missing, is always its own leaf), written as a per-bin Newton step into `delta`.
fn best_partition(hist: &[(f64, f64, f64)], params: &Params, delta: &mut [f64]) {
    let nb = hist.len();
    let lambda = params.lambda;
    let step = |g: f64, h: f64| params.learning_rate * g / (h + lambda);
    delta[0] = if hist[0].2 > 0.0 { step(hist[0].0, hist[0].1) } else { 0.0 };
    if nb <= 1 {
        return;
    }
    // Prefix sums over bins 1..nb.
    let mut pre = vec![(0.0f64, 0.0f64, 0.0f64); nb];
    for b in 1..nb {
        let (g, h, c) = hist[b];
        pre[b] = (pre[b - 1].0 + g, pre[b - 1].1 + h, pre[b - 1].2 + c);
    }
    let seg = |a: usize, b: usize| {
        // Bins a..=b (1-based), sums via prefix.
        (pre[b].0 - pre[a - 1].0, pre[b].1 - pre[a - 1].1, pre[b].2 - pre[a - 1].2)
    };
    let score = |(g, h, _): (f64, f64, f64)| g * g / (h + lambda);
    let ok = |(_, _, c): (f64, f64, f64)| c >= params.min_leaf;
    let last = nb - 1;
    let mut best = (score(seg(1, last)), 0usize, 0usize);
    for s1 in 1..last {
        let (l, r) = (seg(1, s1), seg(s1 + 1, last));
        if ok(l) && ok(r) && score(l) + score(r) > best.0 {
            best = (score(l) + score(r), s1, 0);
        }
        for s2 in s1 + 1..last {
            let (m, r) = (seg(s1 + 1, s2), seg(s2 + 1, last));
            if ok(l) && ok(m) && ok(r) && score(l) + score(m) + score(r) > best.0 {
                best = (score(l) + score(m) + score(r), s1, s2);
            }
        }
    }
    let (_, s1, s2) = best;
    let mut leaves = vec![(1, last)];
    if s1 > 0 && s2 == 0 {
        leaves = vec![(1, s1), (s1 + 1, last)];
    } else if s1 > 0 {
        leaves = vec![(1, s1), (s1 + 1, s2), (s2 + 1, last)];
    }
    for (a, b) in leaves {
        let (g, h, _) = seg(a, b);
        let d = step(g, h);
        delta[a..=b].fill(d);
    }
}

#[cfg(test)]
mod tests;
