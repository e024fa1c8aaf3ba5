//! The pipeline health index: 0–100 from five named components.
//!
//! Each component compares the pipeline with its own past, as a ratio `r` where 1 means "as
//! usual", and scores `75 + 100·(r − 1)`, kept within 0–100: 75 is a normal quarter, every 10%
//! worse costs 10 points, and 65 (the alert line of seed 000) means about 10% worse overall.
//!
//! | component | r = |
//! |---|---|
//! | win rate | win rate of deals closed in the last 90 days ÷ the 365 days before |
//! | deal size | average amount of deals created in the last 90 days ÷ the 365 days before |
//! | cycle length | median cycle of deals won in the 365 days before the last 90 ÷ in the last 90 (longer is worse) |
//! | coverage | risk-adjusted open pipeline value ÷ value won in the last 90 days |
//! | risk mix | value-weighted expected win rate of the open deals (1 − P(loss)) ÷ the share of value that open pipelines of 6–12 months ago went on to win |
//!
//! Weights: win rate 0.3, coverage 0.2, risk mix 0.2, deal size 0.15, cycle length 0.15. A
//! component without data (no scores, no amounts, too few deals) is left out and the weights of
//! the others are scaled up. The previous index is the same computation a month earlier.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{Window, closed_on};
use crate::asof::{Status, View, status};
use crate::dataset::Dataset;
use crate::stats::{WinCount, median};

/// Closed deals a window needs before its win rate or cycle counts.
const MIN_DEALS: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Component {
    WinRate,
    DealSize,
    CycleLength,
    Coverage,
    RiskMix,
}

impl Component {
    pub fn weight(self) -> f64 {
        match self {
            Component::WinRate => 0.3,
            Component::Coverage | Component::RiskMix => 0.2,
            Component::DealSize | Component::CycleLength => 0.15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthComponent {
    pub component: Component,
    /// The figure itself: a rate, dollars, days, or a ratio (coverage).
    pub value: f64,
    /// What it is compared with (for coverage: the value won in the last 90 days).
    pub baseline: f64,
    /// The same figure a month earlier.
    pub previous: Option<f64>,
    /// 0–100.
    pub score: f64,
    pub weight: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthIndex {
    pub index: f64,
    /// The index a month earlier, when it could be computed.
    pub previous: Option<f64>,
    pub components: Vec<HealthComponent>,
    pub pipeline_value: f64,
    /// Σ amount × (1 − P(loss)) over the open deals, and what the CRM's figure overstates.
    pub risk_adjusted_value: Option<f64>,
    pub optimism_gap: Option<f64>,
}

struct Parts {
    components: Vec<HealthComponent>,
    pipeline_value: f64,
    risk_adjusted: Option<f64>,
}

fn ratio_score(r: f64) -> f64 {
    (75.0 + 100.0 * (r - 1.0)).clamp(0.0, 100.0)
}

fn combine(components: &[HealthComponent]) -> Option<f64> {
    let total: f64 = components.iter().map(|c| c.weight).sum();
    (total > 0.0).then(|| components.iter().map(|c| c.score * c.weight).sum::<f64>() / total)
}

/// The index on `as_of`, with `p_loss` (by deal index) for the open deals then and
/// `p_loss_month_ago` for the deals open a month earlier.
pub fn index(
    dataset: &Dataset,
    as_of: NaiveDate,
    p_loss: Option<&[f64]>,
    p_loss_month_ago: Option<&[f64]>,
) -> Option<HealthIndex> {
    let now = parts(dataset, as_of, p_loss);
    let before = parts(dataset, as_of - Duration::days(30), p_loss_month_ago);
    let index = combine(&now.components)?;
    let mut components = now.components;
    for c in &mut components {
        c.previous = before.components.iter().find(|b| b.component == c.component).map(|b| b.value);
    }
    Some(HealthIndex {
        index: (index * 10.0).round() / 10.0,
        previous: combine(&before.components).map(|v| (v * 10.0).round() / 10.0),
        components,
        pipeline_value: now.pipeline_value,
        risk_adjusted_value: now.risk_adjusted,
        optimism_gap: now.risk_adjusted.map(|r| now.pipeline_value - r),
    })
}

fn parts(dataset: &Dataset, date: NaiveDate, p_loss: Option<&[f64]>) -> Parts {
    let recent = Window::days_before(date, 90);
    let baseline = Window { after: recent.after - Duration::days(365), through: recent.after };
    let (mut rate_recent, mut rate_base) = (WinCount::default(), WinCount::default());
    let (mut cycles_recent, mut cycles_base) = (Vec::new(), Vec::new());
    let (mut size_recent, mut size_base) = (WinCount::default(), WinCount::default()); // n deals, won = Σ amount
    let mut won_value_recent = 0.0;
    for deal in &dataset.deals {
        if let (Some(created), Some(amount)) = (deal.created, deal.amount) {
            if recent.contains(created) {
                size_recent.won += amount.get();
                size_recent.n += 1.0;
            } else if baseline.contains(created) {
                size_base.won += amount.get();
                size_base.n += 1.0;
            }
        }
        let Some((won, closed)) = closed_on(deal, date) else { continue };
        let cycle = if won { deal.cycle_days() } else { None };
        if recent.contains(closed) {
            rate_recent.add(won);
            cycles_recent.extend(cycle.map(|d| d as f64));
            if won {
                won_value_recent += deal.amount.map_or(0.0, |a| a.get());
            }
        } else if baseline.contains(closed) {
            rate_base.add(won);
            cycles_base.extend(cycle.map(|d| d as f64));
        }
    }

    let mut components = Vec::new();
    let mut push = |component: Component, value: f64, baseline: f64, r: f64| {
        if r.is_finite() {
            components.push(HealthComponent {
                component,
                value,
                baseline,
                previous: None,
                score: ratio_score(r),
                weight: component.weight(),
            });
        }
    };
    if rate_recent.n >= MIN_DEALS && rate_base.n >= MIN_DEALS {
        let (v, b) = (rate_recent.won / rate_recent.n, rate_base.won / rate_base.n);
        if b > 0.0 {
            push(Component::WinRate, v, b, v / b);
        }
    }
    if size_recent.n >= MIN_DEALS && size_base.n >= MIN_DEALS {
        let (v, b) = (size_recent.won / size_recent.n, size_base.won / size_base.n);
        push(Component::DealSize, v, b, v / b);
    }
    if cycles_recent.len() as f64 >= MIN_DEALS
        && cycles_base.len() as f64 >= MIN_DEALS
        && let (Some(v), Some(b)) = (median(&mut cycles_recent), median(&mut cycles_base))
        && v > 0.0
    {
        push(Component::CycleLength, v, b, b / v);
    }

    let view = View::new(dataset, Some(date));
    let pipeline_value: f64 = view.open.iter().filter_map(|&i| dataset.deals[i].amount).map(|a| a.get()).sum();
    let scored = p_loss.map(|p| {
        let (mut adjusted, mut value) = (0.0, 0.0);
        for &i in &view.open {
            let (Some(a), Some(&p)) = (dataset.deals[i].amount, p.get(i)) else { continue };
            if p.is_finite() {
                adjusted += a.get() * (1.0 - p);
                value += a.get();
            }
        }
        (adjusted, value)
    });
    let risk_adjusted = scored.map(|(a, _)| a);
    if won_value_recent > 0.0 {
        let expected = risk_adjusted.or_else(|| rate_base.rate().map(|r| r * pipeline_value));
        if let Some(expected) = expected {
            push(Component::Coverage, expected / won_value_recent, won_value_recent, expected / won_value_recent);
        }
    }
    if let (Some((adjusted, value)), Some(usual)) = (scored, realised_pipeline_win_share(dataset, date))
        && value > 0.0
        && usual > 0.0
    {
        push(Component::RiskMix, adjusted / value, usual, adjusted / value / usual);
    }
    Parts { components, pipeline_value, risk_adjusted }
}

/// The share of open pipeline value that went on to be won, over monthly snapshots 6–12 months
/// before `date` (deals still open on `date` left out): what an open pipeline usually brings.
fn realised_pipeline_win_share(dataset: &Dataset, date: NaiveDate) -> Option<f64> {
    let (mut won, mut total) = (0.0, 0.0);
    for months in 6..=12 {
        let snapshot = date - Duration::days(30 * months);
        for deal in &dataset.deals {
            if status(deal, Some(snapshot)) != Status::Open {
                continue;
            }
            let Some(amount) = deal.amount else { continue };
            match status(deal, Some(date)) {
                Status::Won => {
                    won += amount.get();
                    total += amount.get();
                }
                Status::Lost => total += amount.get(),
                _ => {}
            }
        }
    }
    (total > 0.0).then(|| won / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_score_around_seventy_five() {
        assert_eq!(ratio_score(1.0), 75.0);
        assert!((ratio_score(0.9) - 65.0).abs() < 1e-9);
        assert_eq!(ratio_score(2.0), 100.0);
        assert_eq!(ratio_score(0.1), 0.0);
        let parts = [
            HealthComponent {
                component: Component::WinRate,
                value: 0.4,
                baseline: 0.5,
                previous: None,
                score: 55.0,
                weight: 0.3,
            },
            HealthComponent {
                component: Component::DealSize,
                value: 1.0,
                baseline: 1.0,
                previous: None,
                score: 75.0,
                weight: 0.15,
            },
        ];
        let combined = combine(&parts).expect("weights");
        assert!((combined - (55.0 * 0.3 + 75.0 * 0.15) / 0.45).abs() < 1e-9);
        assert!(combine(&[]).is_none());
    }
}
