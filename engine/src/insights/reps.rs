//! Rep performance: risk in the open pipeline, and recent against historical win rate.
//!
//! For every rep (the deal owner):
//! - the average risk score (0–100) of their open deals against the team's (every open deal);
//!   flagged when it is more than `rep_risk_ratio` above (seed 000: 20%) and they have at least
//!   `min_rep_open` open deals;
//! - the win rate of deals closed in the last `rep_recent_days` against the `rep_history_days`
//!   before, tested like segment changes (continuity-corrected two-proportion test, one
//!   Benjamini–Hochberg family across reps); the momentum index is recent ÷ historical rate;
//! - likely causes: the share of their open deals in low-win segments (segments that win
//!   significantly less than the company) against the team's, and their velocity: how much
//!   longer their open deals have sat in their current stage than the team's (median days;
//!   −0.3 = 30% slower).
//!
//! A rep is reported when the risk flag is up or the win-rate change is real.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{InsightConfig, Rate, Window, closed_on};
use crate::asof::View;
use crate::dataset::{Dataset, Deal, MISSING, Sym};
use crate::domain::risk_score;
use crate::stats::{WinCount, bh_adjust, median, two_proportion_p};

/// Which way a rep's win rate moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Trend {
    Declining,
    Improving,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepInsight {
    pub rep: String,
    pub open_deals: u32,
    pub open_value: f64,
    /// Average risk score (0–100) of the rep's scored open deals, and of the whole team's.
    pub avg_risk: Option<f64>,
    pub team_avg_risk: Option<f64>,
    /// Average risk more than `rep_risk_ratio` above the team's.
    pub risk_flag: bool,
    pub recent: Rate,
    pub history: Rate,
    /// Recent ÷ historical win rate (0.65 = winning at 65% of their usual rate).
    pub momentum: Option<f64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    /// Set when the recent win rate differs from the history for real.
    pub trend: Option<Trend>,
    /// Share of open deals in a low-win segment: the rep's and the team's.
    pub low_segment_share: Option<f64>,
    pub team_low_segment_share: Option<f64>,
    /// (team median − rep median) ÷ team median of days in the current stage: negative is slower.
    pub velocity: Option<f64>,
}

#[derive(Default)]
struct RepTally {
    recent: WinCount,
    history: WinCount,
    open: u32,
    open_value: f64,
    risk_sum: f64,
    scored: u32,
    in_low: u32,
    stage_days: Vec<f64>,
}

/// Days an open deal has sat in its current stage on `as_of` (its age without stage history).
pub fn days_in_stage(deal: &Deal, as_of: NaiveDate) -> Option<f64> {
    let since = deal.stage_on(as_of).map(|(_, d)| d).or(deal.created)?;
    Some((as_of - since).num_days().max(0) as f64)
}

pub(crate) fn analyse(
    dataset: &Dataset,
    view: &View,
    as_of: NaiveDate,
    p_loss: Option<&[f64]>,
    low_segments: &[(usize, Sym)],
    config: &InsightConfig,
) -> (Vec<RepInsight>, usize) {
    let Some(owner) = dataset.schema.owner_column() else { return (Vec::new(), 0) };
    let recent_w = Window::days_before(as_of, config.rep_recent_days);
    let history_w =
        Window { after: recent_w.after - chrono::Duration::days(config.rep_history_days), through: recent_w.after };

    let mut reps: HashMap<Sym, RepTally> = HashMap::new();
    for &i in &view.closed {
        let deal = &dataset.deals[i];
        let Some((won, date)) = closed_on(deal, as_of) else { continue };
        if deal.cats[owner] == MISSING || date <= history_w.after {
            continue;
        }
        let tally = reps.entry(deal.cats[owner]).or_default();
        if recent_w.contains(date) {
            tally.recent.add(won);
        } else if history_w.contains(date) {
            tally.history.add(won);
        }
    }
    let (mut team_risk, mut team_scored, mut team_low) = (0.0, 0u32, 0u32);
    let mut team_days = Vec::with_capacity(view.open.len());
    for &i in &view.open {
        let deal = &dataset.deals[i];
        let low = low_segments.iter().any(|&(c, s)| deal.cats[c] == s);
        let risk = p_loss.and_then(|p| p.get(i).copied()).filter(|p| p.is_finite()).map(|p| f64::from(risk_score(p)));
        let days = days_in_stage(deal, as_of);
        team_low += u32::from(low);
        if let Some(r) = risk {
            team_risk += r;
            team_scored += 1;
        }
        team_days.extend(days);
        if deal.cats[owner] == MISSING {
            continue;
        }
        let tally = reps.entry(deal.cats[owner]).or_default();
        tally.open += 1;
        tally.open_value += deal.amount.map_or(0.0, |a| a.get());
        tally.in_low += u32::from(low);
        if let Some(r) = risk {
            tally.risk_sum += r;
            tally.scored += 1;
        }
        tally.stage_days.extend(days);
    }
    let team_avg_risk = (team_scored > 0).then(|| team_risk / f64::from(team_scored));
    let team_low_share = (!view.open.is_empty()).then(|| f64::from(team_low) / view.open.len() as f64);
    let team_median_days = median(&mut team_days);

    let mut reps: Vec<(Sym, RepTally)> = reps.into_iter().collect();
    reps.sort_by_key(|(s, _)| *s);
    let tested: Vec<usize> = (0..reps.len())
        .filter(|&k| {
            let t = &reps[k].1;
            t.recent.n >= config.min_rep_closed as f64 && t.history.n >= config.min_closed as f64
        })
        .collect();
    let p: Vec<f64> = tested
        .iter()
        .map(|&k| {
            let t = &reps[k].1;
            two_proportion_p(t.recent.won, t.recent.n, t.history.won, t.history.n)
        })
        .collect();
    let q = bh_adjust(&p);
    let tests: HashMap<usize, (f64, f64)> =
        tested.iter().zip(p.iter().zip(&q)).map(|(&k, (&p, &q))| (k, (p, q))).collect();

    let mut out = Vec::new();
    for (k, (sym, mut t)) in reps.into_iter().enumerate() {
        let avg_risk = (t.scored > 0).then(|| t.risk_sum / f64::from(t.scored));
        let risk_flag = t.open as usize >= config.min_rep_open
            && avg_risk.zip(team_avg_risk).is_some_and(|(r, team)| r > team * (1.0 + config.rep_risk_ratio));
        let (p_value, q_value) = tests.get(&k).map_or((None, None), |&(p, q)| (Some(p), Some(q)));
        let (recent_rate, history_rate) = (t.recent.rate(), t.history.rate());
        let trend = q_value.filter(|&q| q <= config.fdr).and_then(|_| {
            let change = recent_rate? - history_rate?;
            (change.abs() >= config.min_change).then_some(if change < 0.0 {
                Trend::Declining
            } else {
                Trend::Improving
            })
        });
        if !risk_flag && trend.is_none() {
            continue;
        }
        let rep_median = median(&mut t.stage_days);
        out.push(RepInsight {
            rep: dataset.cat_name(owner, sym).unwrap_or("?").to_owned(),
            open_deals: t.open,
            open_value: t.open_value,
            avg_risk,
            team_avg_risk,
            risk_flag,
            recent: Rate::new(t.recent, recent_w),
            history: Rate::new(t.history, history_w),
            momentum: recent_rate.zip(history_rate).filter(|(_, h)| *h > 0.0).map(|(r, h)| r / h),
            p_value,
            q_value,
            trend,
            low_segment_share: (t.open > 0).then(|| f64::from(t.in_low) / f64::from(t.open)),
            team_low_segment_share: team_low_share,
            velocity: rep_median.zip(team_median_days).filter(|(_, m)| *m > 0.0).map(|(r, m)| (m - r) / m),
        });
    }
    // Declines first, then the riskiest pipelines.
    out.sort_by(|a, b| {
        let rank = |r: &RepInsight| (r.trend != Some(Trend::Declining), !r.risk_flag);
        rank(a).cmp(&rank(b)).then(b.avg_risk.unwrap_or(0.0).total_cmp(&a.avg_risk.unwrap_or(0.0)))
    });
    (out, tested.len())
}
