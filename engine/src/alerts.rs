//! Alert rules: which changes deserve an alert, and how urgently.
//!
//! Pure decisions on values the caller passes in (scores, the last alert, the time): the
//! service stores, routes and delivers what these rules raise. The point of the rules is to say
//! little: a deal alert fires on the crossing into critical, not every night it stays there; at
//! most once a day per deal and recipient; and again only when the deal got materially worse.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::RiskCategory;

/// The kinds of alert (seed 000 "Alert Types", seed 001 "Example Alerts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertKind {
    /// A deal's risk crossed above the critical threshold.
    CriticalDeal,
    /// The high-risk deals (51-75) of a recipient, once a day.
    DailyDigest,
    /// A segment's win rate fell, for real.
    SegmentDecline,
    /// A rep's pipeline risk or win rate moved away from the team's.
    RepPerformance,
    /// The pipeline health index fell below its floor.
    PipelineHealth,
    /// A segment that beats the company rate by a real margin.
    HighPerformer,
    /// Fewer deals than usual arrived, or fields are emptier than they were.
    DataQuality,
    /// The Monday executive summary.
    WeeklySummary,
}

impl AlertKind {
    pub const ALL: [AlertKind; 8] = [
        AlertKind::CriticalDeal,
        AlertKind::DailyDigest,
        AlertKind::SegmentDecline,
        AlertKind::RepPerformance,
        AlertKind::PipelineHealth,
        AlertKind::HighPerformer,
        AlertKind::DataQuality,
        AlertKind::WeeklySummary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CriticalDeal => "critical_deal",
            AlertKind::DailyDigest => "daily_digest",
            AlertKind::SegmentDecline => "segment_decline",
            AlertKind::RepPerformance => "rep_performance",
            AlertKind::PipelineHealth => "pipeline_health",
            AlertKind::HighPerformer => "high_performer",
            AlertKind::DataQuality => "data_quality",
            AlertKind::WeeklySummary => "weekly_summary",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// P1 goes out at once, P2 with the daily digest, P3 with the weekly report (seed 001
    /// "Delivery").
    pub fn priority(self) -> Priority {
        match self {
            AlertKind::CriticalDeal | AlertKind::SegmentDecline | AlertKind::PipelineHealth => Priority::P1,
            AlertKind::DailyDigest | AlertKind::RepPerformance | AlertKind::DataQuality => Priority::P2,
            AlertKind::HighPerformer | AlertKind::WeeklySummary => Priority::P3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    P1,
    P2,
    P3,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "p1",
            Priority::P2 => "p2",
            Priority::P3 => "p3",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::P1, Priority::P2, Priority::P3].into_iter().find(|p| p.as_str() == s)
    }
}

/// The last critical-deal alert a recipient got for a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastAlert {
    pub score: u8,
    pub at: DateTime<Utc>,
}

/// When a deal's new score raises a critical-deal alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriticalRule {
    /// Alert when the score rises above this (seed 002: 75).
    pub threshold: u8,
    /// At most one alert per deal and recipient in this many hours.
    pub window_hours: i64,
    /// A new alert after the window needs the score this many points above the last one
    /// alerted on, or a higher category.
    pub material_points: u8,
}

impl Default for CriticalRule {
    fn default() -> Self {
        Self { threshold: 75, window_hours: 24, material_points: 10 }
    }
}

/// What [`CriticalRule::decide`] concluded, with the reason when it stays quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticalDecision {
    Raise,
    /// The score is not above the threshold, or was above it already.
    NoCrossing,
    /// The recipient was alerted on this deal less than the window ago.
    Throttled,
    /// Alerted before, and the deal is not materially worse than then.
    NotMaterial,
}

impl CriticalRule {
    /// Decides on a deal whose score moves from `previous` (none: never scored) to `score`.
    pub fn decide(
        &self,
        previous: Option<u8>,
        score: u8,
        last: Option<&LastAlert>,
        now: DateTime<Utc>,
    ) -> CriticalDecision {
        let crossed = score > self.threshold && previous.is_none_or(|p| p <= self.threshold);
        if !crossed {
            return CriticalDecision::NoCrossing;
        }
        let Some(last) = last else { return CriticalDecision::Raise };
        if now - last.at < Duration::hours(self.window_hours) {
            return CriticalDecision::Throttled;
        }
        let worse_category = RiskCategory::from_score(score) > RiskCategory::from_score(last.score);
        let worse_score = u16::from(score) >= u16::from(last.score) + u16::from(self.material_points);
        if worse_category || worse_score { CriticalDecision::Raise } else { CriticalDecision::NotMaterial }
    }
}

/// A deal this many days old or younger is new: its first score is news. The first scoring of
/// an existing pipeline (onboarding, an import of history) is a baseline, not a thousand alerts.
pub const NEW_DEAL_DAYS: i64 = 14;

/// Whether a deal scored for the first time, `age_days` old, is news.
pub fn first_score_is_news(age_days: Option<i64>) -> bool {
    age_days.is_some_and(|d| d <= NEW_DEAL_DAYS)
}

/// Whether a deal's risk rose with its new score (of `category`, from `previous`; none: never
/// scored): a higher category than before, or a new deal scored for the first time. What a
/// follow-up task is made for.
pub fn risk_rose(previous: Option<u8>, category: RiskCategory, age_days: Option<i64>) -> bool {
    match previous {
        Some(p) => RiskCategory::from_score(p) < category,
        None => first_score_is_news(age_days),
    }
}

/// How a tenant judged its latest alerts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackCounts {
    pub useful: u32,
    /// Marked not relevant or false alarm.
    pub dismissed: u32,
}

/// Judgements needed before feedback moves a threshold.
pub const MIN_JUDGED: u32 = 5;
/// The highest a threshold is tuned to.
pub const MAX_TUNED_THRESHOLD: u8 = 90;

/// The critical-deal threshold a tenant's feedback asks for, from its `base` (75): when half or
/// more of the judged alerts were dismissed it rises by 5, when three quarters were by 10,
/// never above 90; with fewer than five judgements, or fewer dismissals, it stays. Returns the
/// threshold and the reason in a sentence.
pub fn tuned_threshold(base: u8, counts: FeedbackCounts) -> (u8, String) {
    let judged = counts.useful + counts.dismissed;
    if judged < MIN_JUDGED {
        return (
            base,
            format!("{judged} alerts judged so far; {MIN_JUDGED} are needed before feedback moves the threshold"),
        );
    }
    let share = f64::from(counts.dismissed) / f64::from(judged);
    let raise = if share >= 0.75 {
        10
    } else if share >= 0.5 {
        5
    } else {
        0
    };
    let threshold = base.saturating_add(raise).min(MAX_TUNED_THRESHOLD).max(base);
    let reason = format!(
        "{} of the last {judged} judged alerts were marked false alarm or not relevant ({:.0}%): threshold {base} -> {threshold}",
        counts.dismissed,
        100.0 * share
    );
    (threshold, reason)
}

/// When insights become alerts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InsightRules {
    /// A segment decline alerts when the win rate fell by at least this much (seed 000: more
    /// than 10 points against the prior quarter); smaller real changes stay in the reports.
    pub min_decline: f64,
    /// Pipeline health alerts below this index (seed 000: 65).
    pub health_floor: f64,
}

impl Default for InsightRules {
    fn default() -> Self {
        Self { min_decline: 0.10, health_floor: 65.0 }
    }
}

/// An insight worth an alert: its kind, a stable subject (the same finding tomorrow has the
/// same subject), the rep it concerns, and the facts for the message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InsightAlert {
    pub kind: AlertKind,
    pub subject: String,
    pub rep: Option<String>,
    pub facts: serde_json::Value,
}

/// The alerts an insight run raises: segment declines that are real and large, reps whose
/// pipeline risk is flagged or whose win rate fell for real, pipeline health under its floor,
/// data-quality drops, and (for the weekly report) high-performing segments. Everything here
/// already passed the insight rules' significance tests; this only picks what to say.
pub fn insight_alerts(insights: &crate::insights::Insights, rules: &InsightRules) -> Vec<InsightAlert> {
    use crate::insights::reps::Trend;
    let mut out = Vec::new();
    for c in insights.segment_changes.iter().filter(|c| c.change <= -rules.min_decline) {
        out.push(InsightAlert {
            kind: AlertKind::SegmentDecline,
            subject: format!(
                "{}|{}",
                c.label,
                serde_json::to_value(c.comparison).unwrap_or_default().as_str().unwrap_or("")
            ),
            rep: None,
            facts: facts(c),
        });
    }
    for r in insights.reps.iter().filter(|r| r.risk_flag || r.trend == Some(Trend::Declining)) {
        out.push(InsightAlert {
            kind: AlertKind::RepPerformance,
            subject: r.rep.clone(),
            rep: Some(r.rep.clone()),
            facts: facts(r),
        });
    }
    if let Some(h) = insights.health.as_ref().filter(|h| h.index < rules.health_floor) {
        out.push(InsightAlert {
            kind: AlertKind::PipelineHealth,
            subject: "pipeline".into(),
            rep: None,
            facts: facts(h),
        });
    }
    for q in &insights.data_quality {
        out.push(InsightAlert { kind: AlertKind::DataQuality, subject: q.field.clone(), rep: None, facts: facts(q) });
    }
    // Far fewer new deals than usual is a data problem first (a broken sync, a filter).
    for a in insights.anomalies.iter().filter(|a| a.series == crate::insights::anomaly::Series::DealVolume && a.z < 0.0)
    {
        out.push(InsightAlert {
            kind: AlertKind::DataQuality,
            subject: "deal_volume".into(),
            rep: None,
            facts: facts(a),
        });
    }
    for p in &insights.high_performers {
        out.push(InsightAlert { kind: AlertKind::HighPerformer, subject: p.label.clone(), rep: None, facts: facts(p) });
    }
    out
}

/// An insight as JSON facts for a template.
fn facts<T: Serialize>(insight: &T) -> serde_json::Value {
    serde_json::to_value(insight).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).expect("a valid time") + Duration::hours(hours)
    }

    #[test]
    fn critical_alerts_fire_on_the_crossing_once_a_day_and_on_material_change() {
        use CriticalDecision::*;
        let rule = CriticalRule::default();
        let last = |score, hours| Some(LastAlert { score, at: at(hours) });
        // (previous score, new score, last alert, now in hours, expected)
        type Case = (Option<u8>, u8, Option<LastAlert>, i64, CriticalDecision);
        let cases: [Case; 11] = [
            (Some(68), 78, None, 0, Raise),               // seed 002's example: 68 -> 78
            (None, 80, None, 0, Raise),                   // a new deal that starts critical
            (Some(75), 76, None, 0, Raise),               // 75 is not above the threshold
            (Some(60), 75, None, 0, NoCrossing),          // at the threshold, not above it
            (Some(78), 85, None, 0, NoCrossing),          // was critical already: no nightly repeat
            (Some(40), 30, None, 0, NoCrossing),          // getting better
            (Some(70), 80, last(78, 0), 10, Throttled),   // dipped and came back within the day
            (Some(70), 80, last(78, 0), 30, NotMaterial), // after a day, but only 2 points worse
            (Some(70), 88, last(78, 0), 30, Raise),       // after a day, 10 points worse
            (Some(70), 79, last(70, 0), 30, Raise),       // last alert was high, now critical
            (Some(70), 88, last(78, 0), 23, Throttled),   // 10 points worse but within the day
        ];
        for (previous, score, last, now, expected) in cases {
            let got = rule.decide(previous, score, last.as_ref(), at(now));
            assert_eq!(got, expected, "{previous:?} -> {score}, last {last:?}, at +{now}h");
        }
    }

    #[test]
    fn a_lower_threshold_from_settings_moves_the_crossing() {
        let rule = CriticalRule { threshold: 60, ..CriticalRule::default() };
        assert_eq!(rule.decide(Some(55), 65, None, at(0)), CriticalDecision::Raise);
        assert_eq!(CriticalRule::default().decide(Some(55), 65, None, at(0)), CriticalDecision::NoCrossing);
    }

    #[test]
    fn feedback_raises_the_threshold_within_bounds_and_only_on_enough_judgements() {
        let c = |useful, dismissed| FeedbackCounts { useful, dismissed };
        let cases = [
            (75, c(0, 4), 75),  // too few judgements
            (75, c(4, 1), 75),  // mostly useful
            (75, c(3, 3), 80),  // half dismissed
            (75, c(2, 8), 85),  // four in five dismissed
            (85, c(0, 10), 90), // bounded
            (90, c(0, 10), 90),
        ];
        for (base, counts, expected) in cases {
            let (got, reason) = tuned_threshold(base, counts);
            assert_eq!(got, expected, "{base} with {counts:?}: {reason}");
        }
        assert!(tuned_threshold(75, c(2, 8)).1.contains("8 of the last 10"));
    }

    #[test]
    fn kinds_round_trip_and_have_the_seed_priorities() {
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
            assert_eq!(Priority::parse(kind.priority().as_str()), Some(kind.priority()));
        }
        assert_eq!(AlertKind::CriticalDeal.priority(), Priority::P1);
        assert_eq!(AlertKind::DailyDigest.priority(), Priority::P2);
        assert_eq!(AlertKind::WeeklySummary.priority(), Priority::P3);
        assert_eq!(AlertKind::parse("nonsense"), None);
    }
}
