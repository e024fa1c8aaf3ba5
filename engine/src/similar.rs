//! Similar won deals (seed 002 FR3): social proof for a risky deal.
//!
//! Candidates are deals won on or before the as-of date. Same primary segment (industry) and an
//! amount within ±30% are preferred; the similarity score is the share of segment values shared
//! plus closeness in amount, in [0, 1].

use chrono::NaiveDate;
use serde::Serialize;

use crate::dataset::{Dataset, Deal, MISSING};

/// How far apart amounts may be and still count as "similar size" (±30%).
const SIZE_BAND: f64 = 0.3;
/// Candidates examined per deal, nearest in amount first.
const MAX_CANDIDATES: usize = 64;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimilarDeal {
    pub deal_id: String,
    pub company: String,
    pub outcome: &'static str,
    pub amount: Option<f64>,
    pub owner: Option<String>,
    pub closed: Option<NaiveDate>,
    pub cycle_days: Option<i64>,
    pub similarity: f64,
    /// The segment values it shares with the deal.
    pub shared: Vec<String>,
}

/// Won deals grouped by primary segment value, each group sorted by amount.
#[derive(Debug, Default, Clone)]
pub struct SimilarIndex {
    primary: Option<usize>,
    segments: Vec<usize>,
    /// Per primary symbol (last slot: blank), (amount, deal index) sorted.
    groups: Vec<Vec<(f64, usize)>>,
}

impl SimilarIndex {
    /// Indexes `won` (indices of deals won as of the scoring date).
    pub fn new(dataset: &Dataset, won: &[usize]) -> Self {
        let schema = &dataset.schema;
        let primary = schema.primary_segment();
        let slots = primary.map_or(1, |p| schema.categorical[p].vocab.len() + 1);
        let mut groups = vec![Vec::new(); slots];
        for &i in won {
            let d = &dataset.deals[i];
            let slot = primary.map_or(0, |p| if d.cats[p] == MISSING { slots - 1 } else { d.cats[p] as usize });
            groups[slot].push((d.amount.map_or(f64::NAN, |a| a.get()), i));
        }
        for g in &mut groups {
            g.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        let mut segments: Vec<usize> = schema.segment_columns().collect();
        segments.extend(schema.owner_column());
        SimilarIndex { primary, segments, groups }
    }

    /// Up to `limit` won deals most similar to `deal` (never the deal itself).
    pub fn find(&self, dataset: &Dataset, deal: &Deal, limit: usize) -> Vec<SimilarDeal> {
        self.find_among(dataset, deal, limit, &|_| true)
    }

    /// Up to `limit` won deals most similar to `deal` among those `keep` lets through: the
    /// deals a user may see, so a card never shows another team's deals.
    pub fn find_among(
        &self,
        dataset: &Dataset,
        deal: &Deal,
        limit: usize,
        keep: &dyn Fn(&Deal) -> bool,
    ) -> Vec<SimilarDeal> {
        if self.groups.is_empty() || limit == 0 {
            return Vec::new();
        }
        let slot = self
            .primary
            .map_or(0, |p| if deal.cats[p] == MISSING { self.groups.len() - 1 } else { deal.cats[p] as usize });
        let amount = deal.amount.map(|a| a.get());
        let kept = |i: usize| keep(&dataset.deals[i]);
        let mut candidates: Vec<usize> = nearest(&self.groups[slot], amount, MAX_CANDIDATES, &kept);
        if candidates.len() < limit {
            // Too few in the same segment: look across all of them.
            for g in self.groups.iter().enumerate().filter(|(s, _)| *s != slot).map(|(_, g)| g) {
                candidates.extend(nearest(g, amount, MAX_CANDIDATES / 4, &kept));
            }
        }
        let mut scored: Vec<(f64, usize)> = candidates
            .into_iter()
            .filter(|&i| dataset.deals[i].id != deal.id)
            .map(|i| (self.similarity(&dataset.deals[i], deal), i))
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| dataset.deals[b.1].closed.cmp(&dataset.deals[a.1].closed))
                .then(a.1.cmp(&b.1))
        });
        scored.dedup_by_key(|s| s.1);
        scored
            .into_iter()
            .take(limit)
            .map(|(similarity, i)| {
                let other = &dataset.deals[i];
                let shared = self
                    .segments
                    .iter()
                    .filter(|&&c| other.cats[c] != MISSING && other.cats[c] == deal.cats[c])
                    .filter_map(|&c| dataset.cat_name(c, deal.cats[c]).map(str::to_owned))
                    .collect();
                SimilarDeal {
                    deal_id: other.id.to_string(),
                    company: other.name.clone(),
                    outcome: "won",
                    amount: other.amount.map(|a| a.get()),
                    owner: dataset
                        .schema
                        .owner_column()
                        .and_then(|c| dataset.cat_name(c, other.cats[c]))
                        .map(str::to_owned),
                    closed: other.closed,
                    cycle_days: other.cycle_days(),
                    similarity: (similarity * 100.0).round() / 100.0,
                    shared,
                }
            })
            .collect()
    }

    fn similarity(&self, other: &Deal, deal: &Deal) -> f64 {
        let matches =
            self.segments.iter().filter(|&&c| deal.cats[c] != MISSING && other.cats[c] == deal.cats[c]).count();
        let size = match (deal.amount, other.amount) {
            (Some(a), Some(b)) => {
                let gap = (b.get() / a.get()).ln().abs() / (1.0 + SIZE_BAND).ln();
                (1.0 - gap / 2.0).max(0.0)
            }
            _ => 0.5,
        };
        // Two parts amount, one part per segment value.
        (matches as f64 + 2.0 * size) / (self.segments.len() as f64 + 2.0)
    }
}

/// The `k` entries nearest to `amount` in a group sorted by amount.
fn nearest(group: &[(f64, usize)], amount: Option<f64>, k: usize, keep: &dyn Fn(usize) -> bool) -> Vec<usize> {
    let Some(amount) = amount else {
        return group.iter().rev().map(|g| g.1).filter(|&i| keep(i)).take(k).collect();
    };
    let mid = group.partition_point(|g| g.0 < amount);
    let (mut lo, mut hi) = (mid, mid);
    let mut out = Vec::with_capacity(k);
    while out.len() < k && (lo > 0 || hi < group.len()) {
        let take_low = match (lo > 0, hi < group.len()) {
            (true, true) => (amount - group[lo - 1].0) <= (group[hi].0 - amount),
            (low, _) => low,
        };
        let next = if take_low {
            lo -= 1;
            group[lo].1
        } else {
            hi += 1;
            group[hi - 1].1
        };
        if keep(next) {
            out.push(next);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_walks_outward_by_amount() {
        let g = [(10.0, 0), (20.0, 1), (30.0, 2), (100.0, 3)];
        let all = |_: usize| true;
        assert_eq!(nearest(&g, Some(24.0), 3, &all), vec![1, 2, 0]);
        assert_eq!(nearest(&g, Some(500.0), 2, &all), vec![3, 2]);
        assert_eq!(nearest(&g, None, 1, &all), vec![3]);
        assert!(nearest(&[], Some(1.0), 3, &all).is_empty());
        // Only the deals kept count, however near the others are.
        let odd = |i: usize| i % 2 == 1;
        assert_eq!(nearest(&g, Some(24.0), 3, &odd), vec![1, 3]);
        assert_eq!(nearest(&g, None, 1, &odd), vec![3]);
    }
}
