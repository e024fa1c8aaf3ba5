//! Anomalies and data quality.
//!
//! **Weekly anomalies.** Three weekly series end on the as-of date: deals created, their average
//! amount, and the median cycle of deals closed that week. The latest week is compared with the
//! `anomaly_weeks` before it by a robust z-score, `(x − median) / (1.4826 · MAD)`, which one odd
//! week in the history cannot inflate the way it would a standard deviation. `|z| ≥ anomaly_z`
//! (3.5 by default) is an anomaly. A series needs eight weeks of history with data, and a week
//! counts for amounts and cycles only with at least five deals.
//!
//! **Data quality.** The share of deals created in the last 30 days that fill each field (amount,
//! every segment and the owner) against the 90 days before; a fall of `completeness_drop` (10
//! points) or more is reported. [`sync_volume_drop`] checks the volume between two syncs.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{InsightConfig, Window, closed_on};
use crate::dataset::{CatKind, Dataset, MISSING};
use crate::stats::{median, median_mad};

const MIN_HISTORY_WEEKS: usize = 8;
const MIN_WEEK_DEALS: usize = 5;
const MIN_RECENT_DEALS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Series {
    /// Deals created per week.
    DealVolume,
    /// Average amount of the deals created in the week.
    AverageAmount,
    /// Median days from creation to close of the deals closed in the week.
    CycleLength,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Anomaly {
    pub series: Series,
    pub week: Window,
    pub value: f64,
    /// Median of the history weeks and the MAD scaled to a standard deviation.
    pub median: f64,
    pub spread: f64,
    pub z: f64,
    pub history_weeks: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityDrop {
    pub field: String,
    /// Share of deals created in the last 30 days that fill the field, and in the 90 days before.
    pub recent: f64,
    pub before: f64,
    pub recent_deals: u32,
}

#[derive(Default, Clone)]
struct Week {
    created: usize,
    amounts: Vec<f64>,
    cycles: Vec<f64>,
}

/// Anomalies in the latest week of each series.
pub fn weekly(dataset: &Dataset, as_of: NaiveDate, config: &InsightConfig) -> Vec<Anomaly> {
    let n = config.anomaly_weeks + 1;
    let start = as_of - Duration::days(7 * n as i64);
    let week_of = |date: NaiveDate| -> Option<usize> {
        (date > start && date <= as_of).then(|| ((as_of - date).num_days() / 7) as usize)
    };
    let mut weeks = vec![Week::default(); n];
    for deal in &dataset.deals {
        if let Some(w) = deal.created.and_then(week_of) {
            weeks[w].created += 1;
            weeks[w].amounts.extend(deal.amount.map(|a| a.get()));
        }
        if let Some((_, closed)) = closed_on(deal, as_of)
            && let (Some(w), Some(days)) = (week_of(closed), deal.cycle_days())
        {
            weeks[w].cycles.push(days as f64);
        }
    }
    if weeks.iter().all(|w| w.created == 0) {
        return Vec::new();
    }
    let mean = |v: &[f64]| (v.len() >= MIN_WEEK_DEALS).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let series: [(Series, Vec<Option<f64>>); 3] = [
        (Series::DealVolume, weeks.iter().map(|w| Some(w.created as f64)).collect()),
        (Series::AverageAmount, weeks.iter().map(|w| mean(&w.amounts)).collect()),
        (
            Series::CycleLength,
            weeks
                .iter()
                .map(|w| (w.cycles.len() >= MIN_WEEK_DEALS).then(|| median(&mut w.cycles.clone())).flatten())
                .collect(),
        ),
    ];
    let mut out = Vec::new();
    for (kind, values) in series {
        let Some(latest) = values[0] else { continue };
        let history: Vec<f64> = values[1..].iter().flatten().copied().collect();
        if history.len() < MIN_HISTORY_WEEKS {
            continue;
        }
        let Some((median, spread)) = median_mad(&history) else { continue };
        if spread <= 0.0 {
            continue;
        }
        let z = (latest - median) / spread;
        if z.abs() >= config.anomaly_z {
            out.push(Anomaly {
                series: kind,
                week: Window::days_before(as_of, 7),
                value: latest,
                median,
                spread,
                z,
                history_weeks: history.len(),
            });
        }
    }
    out
}

/// Fields whose completeness fell among recently created deals.
pub fn completeness(dataset: &Dataset, as_of: NaiveDate, config: &InsightConfig) -> Vec<QualityDrop> {
    let recent = Window::days_before(as_of, 30);
    let before = Window { after: recent.after - Duration::days(90), through: recent.after };
    let cols: Vec<usize> = dataset
        .schema
        .categorical
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.kind, CatKind::Segment | CatKind::Owner))
        .map(|(i, _)| i)
        .collect();
    // Filled counts: amount first, then each column.
    let fields = cols.len() + 1;
    let (mut rec, mut bef) = (vec![0u32; fields], vec![0u32; fields]);
    let (mut n_rec, mut n_bef) = (0u32, 0u32);
    for deal in &dataset.deals {
        let Some(created) = deal.created else { continue };
        let (counts, n) = if recent.contains(created) {
            (&mut rec, &mut n_rec)
        } else if before.contains(created) {
            (&mut bef, &mut n_bef)
        } else {
            continue;
        };
        *n += 1;
        counts[0] += u32::from(deal.amount.is_some() || !dataset.schema.has_amount);
        for (k, &c) in cols.iter().enumerate() {
            counts[k + 1] += u32::from(deal.cats[c] != MISSING);
        }
    }
    if (n_rec as usize) < MIN_RECENT_DEALS || (n_bef as usize) < MIN_RECENT_DEALS {
        return Vec::new();
    }
    let name =
        |k: usize| if k == 0 { "amount".to_owned() } else { dataset.schema.categorical[cols[k - 1]].name.clone() };
    (0..fields)
        .filter_map(|k| {
            let (r, b) = (f64::from(rec[k]) / f64::from(n_rec), f64::from(bef[k]) / f64::from(n_bef));
            (b - r >= config.completeness_drop).then(|| QualityDrop {
                field: name(k),
                recent: r,
                before: b,
                recent_deals: n_rec,
            })
        })
        .collect()
}

/// The fall in the number of deals between two syncs, when it is more than 20%: a sign that the
/// sync lost access, a filter changed or records were deleted.
pub fn sync_volume_drop(previous: u64, current: u64) -> Option<f64> {
    if previous == 0 || current >= previous {
        return None;
    }
    let drop = (previous - current) as f64 / previous as f64;
    (drop > 0.2).then_some(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_drop_over_a_fifth_is_reported() {
        assert_eq!(sync_volume_drop(1000, 800), None);
        assert_eq!(sync_volume_drop(1000, 799), Some(0.201));
        assert_eq!(sync_volume_drop(0, 0), None);
        assert_eq!(sync_volume_drop(10, 20), None);
    }
}
