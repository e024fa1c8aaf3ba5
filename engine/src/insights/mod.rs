//! Insights: what changed in the pipeline, and only what changed for real.
//!
//! Everything here works on an as-of view of a [`Dataset`] and, where risk matters, on the loss
//! probabilities the caller scored for the open deals. The rules:
//!
//! - [`segments`]: win-rate changes of every segment and every pair of segments (quarter to date
//!   against the previous quarter, and the last 90 days against the 90 before), and segments
//!   that win clearly more than the company. A change is reported only when a two-proportion
//!   test says it is real after Benjamini–Hochberg false-discovery control across everything
//!   tested in the run, both samples are large enough, and it is large enough to matter.
//! - [`reps`]: each rep's open-deal risk against the team, and recent against historical win
//!   rate with the same discipline, with the likely causes.
//! - [`health`]: the pipeline health index (0–100) with its named components.
//! - [`anomaly`]: robust (median / MAD) outliers in weekly volume, amounts and cycle times, and
//!   data-quality drops (completeness falling, volume dropping between syncs).
//!
//! The caller passes the as-of date and the scores; nothing here reads a clock.

pub mod anomaly;
pub mod health;
pub mod reps;
pub mod segments;
pub mod trend;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::asof::{Status, View, status};
use crate::dataset::{Dataset, Deal};
use crate::stats::WinCount;

/// Thresholds of the insight rules. The defaults are the documented product behaviour; tenants
/// tune some of them through feedback.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightConfig {
    /// False-discovery rate for each family of tests (segment changes, high performers, reps).
    pub fdr: f64,
    /// Closed deals each side of a comparison needs before it is tested at all.
    pub min_closed: usize,
    /// Smallest win-rate change worth reporting, as a fraction (0.05 = 5 points).
    pub min_change: f64,
    /// Days in the rolling comparison window.
    pub rolling_days: i64,
    /// Days of history a high-performing segment is judged on.
    pub performer_days: i64,
    /// How far above the company rate a high performer must be, as a fraction.
    pub performer_margin: f64,
    /// A rep's recent window, and the history before it they are compared with.
    pub rep_recent_days: i64,
    pub rep_history_days: i64,
    /// Closed deals a rep needs in the recent window before it is compared with their history
    /// (which needs `min_closed`).
    pub min_rep_closed: usize,
    /// A rep's average open-deal risk this much above the team's is flagged (0.2 = 20%).
    pub rep_risk_ratio: f64,
    /// Open deals a rep needs before their average risk is compared.
    pub min_rep_open: usize,
    /// Weeks of history each anomaly series is judged against.
    pub anomaly_weeks: usize,
    /// Robust z-score (|x − median| / (1.4826·MAD)) beyond which a week is an anomaly.
    pub anomaly_z: f64,
    /// Fall in a field's completeness (fraction of deals that fill it) that is reported.
    pub completeness_drop: f64,
}

impl Default for InsightConfig {
    fn default() -> Self {
        Self {
            fdr: 0.05,
            min_closed: 30,
            min_change: 0.05,
            rolling_days: 90,
            performer_days: 365,
            performer_margin: 0.05,
            rep_recent_days: 90,
            rep_history_days: 365,
            min_rep_closed: 15,
            rep_risk_ratio: 0.2,
            min_rep_open: 5,
            anomaly_weeks: 26,
            anomaly_z: 3.5,
            completeness_drop: 0.10,
        }
    }
}

/// Everything the rules found on one date.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insights {
    pub as_of: NaiveDate,
    /// The false-discovery rate every family of tests was held to.
    pub fdr: f64,
    pub segment_changes: Vec<segments::RateChange>,
    pub high_performers: Vec<segments::HighPerformer>,
    pub reps: Vec<reps::RepInsight>,
    pub health: Option<health::HealthIndex>,
    pub anomalies: Vec<anomaly::Anomaly>,
    pub data_quality: Vec<anomaly::QualityDrop>,
    /// How many hypotheses each family tested: the denominators of the false-discovery control.
    pub tested: Tested,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tested {
    pub segment_changes: usize,
    pub high_performers: usize,
    pub reps: usize,
}

/// Runs every rule as of `as_of`. `p_loss` holds the loss probability of each deal by index in
/// `dataset.deals` (NaN for deals not scored); `p_loss_month_ago` the same for the pipeline a
/// month earlier, for the health index's change (without it, the change leaves out risk mix).
pub fn compute(
    dataset: &Dataset,
    as_of: NaiveDate,
    p_loss: Option<&[f64]>,
    p_loss_month_ago: Option<&[f64]>,
    config: &InsightConfig,
) -> Insights {
    let view = View::new(dataset, Some(as_of));
    let seg = segments::analyse(dataset, &view, as_of, config);
    let (reps, rep_tests) = reps::analyse(dataset, &view, as_of, p_loss, &seg.low_segments, config);
    let health = health::index(dataset, as_of, p_loss, p_loss_month_ago);
    Insights {
        as_of,
        fdr: config.fdr,
        tested: Tested { segment_changes: seg.tested_changes, high_performers: seg.tested_performers, reps: rep_tests },
        segment_changes: seg.changes,
        high_performers: seg.performers,
        reps,
        health,
        anomalies: anomaly::weekly(dataset, as_of, config),
        data_quality: anomaly::completeness(dataset, as_of, config),
    }
}

/// A half-open date window `(start, end]`: a deal closed on `start` is outside, on `end` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Window {
    pub after: NaiveDate,
    pub through: NaiveDate,
}

impl Window {
    pub fn days_before(end: NaiveDate, days: i64) -> Self {
        Window { after: end - chrono::Duration::days(days), through: end }
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        date > self.after && date <= self.through
    }

    /// The window of the same length just before this one.
    pub fn previous(self) -> Self {
        let len = self.through - self.after;
        Window { after: self.after - len, through: self.after }
    }
}

/// The calendar quarter containing `date`, from its first day through `date`, and the whole
/// quarter before it.
pub fn quarter_to_date(date: NaiveDate) -> (Window, Window) {
    let q_month = (date.month0() / 3) * 3 + 1;
    let first = NaiveDate::from_ymd_opt(date.year(), q_month, 1).unwrap_or(date);
    let prior_first = first.checked_sub_months(chrono::Months::new(3)).unwrap_or(first);
    let day_before = first.pred_opt().unwrap_or(first);
    (
        Window { after: day_before, through: date },
        Window { after: prior_first.pred_opt().unwrap_or(prior_first), through: day_before },
    )
}

/// Win or loss of a deal closed by `as_of`, with its close date; `None` for open or future deals.
pub(crate) fn closed_on(deal: &Deal, as_of: NaiveDate) -> Option<(bool, NaiveDate)> {
    match status(deal, Some(as_of)) {
        Status::Won => Some((true, deal.closed?)),
        Status::Lost => Some((false, deal.closed?)),
        _ => None,
    }
}

/// A rate with the counts behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rate {
    pub won: u32,
    pub closed: u32,
    pub rate: f64,
    pub window: Window,
}

impl Rate {
    pub fn new(count: WinCount, window: Window) -> Self {
        Rate { won: count.won as u32, closed: count.n as u32, rate: count.rate().unwrap_or(0.0), window }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn quarters_and_windows_are_half_open() {
        let (cur, prior) = quarter_to_date(d("2026-05-17"));
        assert_eq!(cur, Window { after: d("2026-03-31"), through: d("2026-05-17") });
        assert_eq!(prior, Window { after: d("2025-12-31"), through: d("2026-03-31") });
        assert!(cur.contains(d("2026-04-01")) && !cur.contains(d("2026-03-31")));
        assert!(prior.contains(d("2026-01-01")) && prior.contains(d("2026-03-31")));
        let (cur, prior) = quarter_to_date(d("2026-01-01"));
        assert_eq!(cur, Window { after: d("2025-12-31"), through: d("2026-01-01") });
        assert_eq!(prior, Window { after: d("2025-09-30"), through: d("2025-12-31") });
        let w = Window::days_before(d("2026-06-30"), 90);
        assert_eq!(w.previous(), Window { after: d("2026-01-01"), through: d("2026-04-01") });
    }
}
