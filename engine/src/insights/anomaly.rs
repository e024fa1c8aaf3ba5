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
    // Weeks before the oldest week with a created deal are before the data begins (a young
    // tenant), not weeks without deals: they are no history.
    let oldest = weeks.iter().rposition(|w| w.created > 0).unwrap_or(0);
    let series: [(Series, Vec<Option<f64>>); 3] = [
        (
            Series::DealVolume,
            weeks.iter().enumerate().map(|(i, w)| (i <= oldest).then_some(w.created as f64)).collect(),
        ),
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
    use crate::domain::Outcome;
    use crate::record::{DealRecord, SchemaSpec};

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).expect("date")
    }

    fn dataset(records: &[DealRecord]) -> Dataset {
        let spec = SchemaSpec {
            segments: vec!["region".into()],
            has_owner: true,
            has_created: true,
            has_closed: true,
            has_amount: true,
            ..SchemaSpec::default()
        };
        Dataset::from_records(&spec, records).expect("records")
    }

    fn deal(n: usize, created: NaiveDate, amount: Option<f64>, region: Option<&str>) -> DealRecord {
        let closed = created + Duration::days(30 + (n % 3) as i64);
        let done = closed <= as_of();
        DealRecord {
            id: format!("D{n}"),
            name: String::new(),
            owner: Some(format!("rep_{}", n % 4)),
            created: Some(created),
            closed: done.then_some(closed),
            stage: None,
            amount,
            outcome: match (done, n % 2) {
                (false, _) => Outcome::Open,
                (true, 0) => Outcome::Won,
                (true, _) => Outcome::Lost,
            },
            segments: region.map(|r| [("region".to_owned(), r.to_owned())].into()).unwrap_or_default(),
            numeric: Default::default(),
            stage_entered: Default::default(),
        }
    }

    /// `weeks` weeks before the as-of date with 20–22 deals of about 1,000–1,100 each, then the
    /// latest week with `latest` deals of `amount`.
    fn history(weeks: usize, latest: usize, amount: f64) -> Vec<DealRecord> {
        let mut out = Vec::new();
        for w in 0..=weeks {
            let (count, base) = if w == 0 { (latest, amount) } else { (20 + w % 3, 1000.0 + 20.0 * (w % 4) as f64) };
            for i in 0..count {
                let created = as_of() - Duration::days(7 * w as i64 + (i % 7) as i64);
                out.push(deal(out.len(), created, Some(base + 10.0 * (i % 5) as f64), Some("EMEA")));
            }
        }
        out
    }

    #[test]
    fn a_week_with_far_fewer_deals_is_an_anomaly_and_an_ordinary_week_is_not() {
        let config = InsightConfig::default();
        let ordinary = weekly(&dataset(&history(26, 21, 1030.0)), as_of(), &config);
        assert!(ordinary.is_empty(), "{ordinary:?}");
        let quiet = weekly(&dataset(&history(26, 2, 1030.0)), as_of(), &config);
        let volume: Vec<_> = quiet.iter().filter(|a| a.series == Series::DealVolume).collect();
        assert_eq!(volume.len(), 1, "{quiet:?}");
        let a = volume[0];
        assert_eq!((a.value, a.median, a.history_weeks), (2.0, 21.0, 26), "{a:?}");
        // Volumes 20, 21, 22: the MAD is 1, scaled to a standard deviation.
        assert!((a.spread - 1.4826).abs() < 1e-9 && (a.z - (2.0 - 21.0) / 1.4826).abs() < 1e-9, "{a:?}");
        assert_eq!(a.week, Window::days_before(as_of(), 7));
        // A tenant with twelve weeks of deals: the weeks before its data are not empty weeks.
        let young = weekly(&dataset(&history(12, 2, 1030.0)), as_of(), &config);
        assert!(young.iter().any(|a| a.series == Series::DealVolume && a.history_weeks == 12), "{young:?}");
        // Two deals are too few to judge that week's average amount.
        assert!(quiet.iter().all(|a| a.series != Series::AverageAmount), "{quiet:?}");
    }

    #[test]
    fn a_week_of_ten_times_larger_deals_is_an_anomaly_of_the_average_amount() {
        let found = weekly(&dataset(&history(26, 21, 10_300.0)), as_of(), &InsightConfig::default());
        assert_eq!(found.iter().map(|a| a.series).collect::<Vec<_>>(), [Series::AverageAmount], "{found:?}");
        assert!(found[0].z > 3.5 && found[0].value > 10_000.0, "{found:?}");
    }

    #[test]
    fn a_short_history_judges_nothing() {
        // Seven earlier weeks: one fewer than a series needs.
        let found = weekly(&dataset(&history(7, 2, 10_300.0)), as_of(), &InsightConfig::default());
        assert!(found.is_empty(), "{found:?}");
        assert!(weekly(&dataset(&[]), as_of(), &InsightConfig::default()).is_empty());
    }

    /// `before` deals created 31–120 days ago, all complete; `recent` in the last 30 days, of
    /// which every `gap`th lacks its region.
    fn filled(before: usize, recent: usize, gap: usize) -> Vec<DealRecord> {
        let mut out = Vec::new();
        for i in 0..before {
            out.push(deal(i, as_of() - Duration::days(31 + (i % 89) as i64), Some(1000.0), Some("EMEA")));
        }
        for i in 0..recent {
            let region = (i % gap != 0).then_some("APAC");
            out.push(deal(before + i, as_of() - Duration::days((i % 30) as i64), Some(1000.0), region));
        }
        out
    }

    #[test]
    fn a_field_filled_less_often_lately_is_reported_and_full_ones_are_not() {
        let config = InsightConfig::default();
        // Every second recent deal lacks its region: 50% against 100%.
        let drops = completeness(&dataset(&filled(90, 40, 2)), as_of(), &config);
        assert_eq!(drops.len(), 1, "{drops:?}");
        let d = &drops[0];
        assert_eq!((d.field.as_str(), d.recent, d.before, d.recent_deals), ("region", 0.5, 1.0, 40));
        // One in twenty-five missing (96%) is under the 10-point fall reported.
        assert!(completeness(&dataset(&filled(90, 50, 25)), as_of(), &config).is_empty());
        // Too few recent deals (19) to judge.
        assert!(completeness(&dataset(&filled(90, 19, 2)), as_of(), &config).is_empty());
    }

    #[test]
    fn a_volume_drop_over_a_fifth_is_reported() {
        assert_eq!(sync_volume_drop(1000, 800), None);
        assert_eq!(sync_volume_drop(1000, 799), Some(0.201));
        assert_eq!(sync_volume_drop(0, 0), None);
        assert_eq!(sync_volume_drop(10, 20), None);
    }
}
