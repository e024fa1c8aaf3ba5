//! A typed [`Query`] answered from the tenant's deals and the champion's scores: figures, their
//! context (counts, the prior period, significance), and lists. Pure: the caller passes the
//! dataset as of a date, the open deals' loss probabilities and who may see what.
//!
//! The deal-risk card and the pipeline summary are the chat commands' own answers (the bot
//! calls those for `deal_risk` and `pipeline_summary`); everything else is here.

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use super::{Intent, Metric, OutcomeFilter, Period, Query};
use crate::asof::{Status, status};
use crate::dataset::{Dataset, Deal, Sym};
use crate::domain::{RiskCategory, risk_score};
use crate::stats::{median, quantile, two_proportion_p, wilson_interval};

/// What the answers are computed from.
pub struct Context<'a> {
    pub dataset: &'a Dataset,
    pub as_of: NaiveDate,
    /// Each deal's P(loss) when open on `as_of` (NaN for the others); `None` without a model.
    pub p_loss: Option<&'a [f64]>,
    /// Whether the asker may see deal `i` (a rep their own deals, a manager their team's).
    pub visible: &'a dyn Fn(usize) -> bool,
}

/// Below this p-value a change between two periods is called significant.
pub const SIGNIFICANT: f64 = 0.05;
/// Closed-deal figures without a period cover this many trailing days.
pub const DEFAULT_DAYS: i64 = 365;
/// Lists without a limit show this many rows.
pub const DEFAULT_LIMIT: usize = 10;

/// A win rate over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateFigure {
    pub window: Period,
    pub won: usize,
    pub lost: usize,
    pub rate: Option<f64>,
    /// 95% Wilson interval.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// A change between two periods and whether it is real.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub before: RateFigure,
    /// In percentage points.
    pub points: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DealLine {
    pub deal_id: String,
    pub company: String,
    pub owner: Option<String>,
    pub amount: Option<f64>,
    pub risk_score: Option<u8>,
    pub risk_category: Option<RiskCategory>,
    pub stage: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    pub value: String,
    #[serde(flatten)]
    pub figure: RateFigure,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub label: String,
    pub window: Period,
    pub value: Option<f64>,
    /// Deals behind the value.
    pub n: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepRow {
    pub rep: String,
    #[serde(flatten)]
    pub figure: RateFigure,
    pub open_deals: usize,
    pub open_value: f64,
    /// Mean risk score (0–100) of the open deals, when scored.
    pub mean_risk: Option<f64>,
}

/// A figure's answer, before any template renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    WinRate {
        figure: RateFigure,
        change: Change,
    },
    AtRiskDeals {
        deals: Vec<DealLine>,
        /// Every deal that matched, and their value, before the limit.
        matching: usize,
        value: f64,
        categories: Vec<RiskCategory>,
    },
    CompareSegments {
        dimension: String,
        window: Period,
        rows: Vec<SegmentRow>,
        /// Best against worst (by rate, among rows with deals).
        p_value: Option<f64>,
        significant: bool,
    },
    Trend {
        metric: Metric,
        points: Vec<TrendPoint>,
        /// Last point against the first, in the metric's unit (points for a rate).
        change: Option<f64>,
        /// For a win rate: the first and last quarters' two-proportion test.
        p_value: Option<f64>,
        significant: bool,
    },
    RepPerformance {
        window: Period,
        rows: Vec<RepRow>,
        /// The team's (what the asker may see) rate in the same window.
        team: RateFigure,
    },
    CycleTime {
        window: Period,
        /// Won deals' days from creation to close.
        n: usize,
        median: Option<f64>,
        p25: Option<f64>,
        p75: Option<f64>,
        mean: Option<f64>,
        before_median: Option<f64>,
        before_n: usize,
    },
    DealCount {
        outcome: Option<OutcomeFilter>,
        /// `None` for open deals counted on the as-of date.
        window: Option<Period>,
        count: usize,
        value: f64,
        before: Option<usize>,
    },
    Forecast {
        window: Period,
        deals: usize,
        pipeline_value: f64,
        /// Σ amount × P(win).
        expected: f64,
        /// A 90% range for the bookings, treating deals as independent.
        low: f64,
        high: f64,
        /// Deals without an expected close date, placed by the typical won cycle.
        estimated_dates: usize,
        biggest: Vec<DealLine>,
    },
}

/// Why a query cannot be answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("your pipeline has no {0} field")]
    NoField(String),
    #[error("no deal has {field} {value:?}")]
    UnknownValue { field: String, value: String, suggestions: Vec<String> },
    #[error("there is no risk model yet, so deals have no risk scores")]
    NoModel,
    #[error("{0} is answered by the chat commands")]
    NotHere(&'static str),
}

/// The query's filters resolved against the dataset's columns.
struct Filter {
    cats: Vec<(usize, Sym)>,
    min: Option<f64>,
    max: Option<f64>,
}

impl Filter {
    fn new(query: &Query, dataset: &Dataset) -> Result<Filter, Problem> {
        let schema = &dataset.schema;
        let mut cats = Vec::new();
        for (field, value) in &query.slots.filters {
            let column = if field == "rep" {
                schema.owner_column()
            } else {
                schema.categorical.iter().position(|c| c.name.eq_ignore_ascii_case(field))
            }
            .ok_or_else(|| Problem::NoField(field.clone()))?;
            let vocab = &schema.categorical[column].vocab;
            let sym = vocab.lookup(value).ok_or_else(|| Problem::UnknownValue {
                field: field.clone(),
                value: value.clone(),
                suggestions: vocab
                    .values()
                    .iter()
                    .filter(|v| !v.is_empty() && strsim::jaro_winkler(&v.to_lowercase(), &value.to_lowercase()) >= 0.8)
                    .take(3)
                    .cloned()
                    .collect(),
            })?;
            cats.push((column, sym));
        }
        Ok(Filter { cats, min: query.slots.amount_min, max: query.slots.amount_max })
    }

    fn admits(&self, deal: &Deal) -> bool {
        let amount = deal.amount.map(|a| a.get());
        self.cats.iter().all(|&(c, v)| deal.cats[c] == v)
            && self.min.is_none_or(|m| amount.is_some_and(|a| a >= m))
            && self.max.is_none_or(|m| amount.is_some_and(|a| a <= m))
    }
}

/// Answers `query` (any intent but deal risk, pipeline summary and help).
pub fn answer(query: &Query, ctx: &Context<'_>) -> Result<Answer, Problem> {
    let filter = Filter::new(query, ctx.dataset)?;
    let closed_window = closed_window(query.slots.period, ctx.as_of);
    Ok(match query.intent {
        Intent::WinRate => {
            let figure = win_rate(ctx, &filter, closed_window, |_| true);
            Answer::WinRate { change: change(ctx, &filter, &figure), figure }
        }
        Intent::AtRiskDeals => at_risk(query, ctx, &filter)?,
        Intent::CompareSegments => compare(query, ctx, &filter, closed_window)?,
        Intent::Trend => trend(query, ctx, &filter),
        Intent::RepPerformance => reps(query, ctx, &filter, closed_window)?,
        Intent::CycleTime => {
            let (n, mut days) = cycles(ctx, &filter, closed_window);
            let (before_n, mut before) = cycles(ctx, &filter, previous(closed_window));
            let mean = (n > 0).then(|| days.iter().sum::<f64>() / n as f64);
            Answer::CycleTime {
                window: closed_window,
                n,
                p25: quantile(&mut days, 0.25),
                p75: quantile(&mut days, 0.75),
                median: median(&mut days),
                mean,
                before_median: median(&mut before),
                before_n,
            }
        }
        Intent::DealCount => count(query, ctx, &filter, closed_window),
        Intent::Forecast => forecast(query, ctx, &filter)?,
        Intent::DealRisk => return Err(Problem::NotHere("deal risk")),
        Intent::PipelineSummary => return Err(Problem::NotHere("the pipeline summary")),
        Intent::Help => return Err(Problem::NotHere("help")),
    })
}

/// The window closed-deal figures cover: the period up to the as-of date, or the trailing
/// [`DEFAULT_DAYS`].
pub fn closed_window(period: Option<Period>, as_of: NaiveDate) -> Period {
    match period {
        Some(p) => Period { from: p.from, to: p.to.min(as_of) },
        None => Period { from: as_of - Duration::days(DEFAULT_DAYS - 1), to: as_of },
    }
}

/// The window of the same length just before `w`.
fn previous(w: Period) -> Period {
    let days = (w.to - w.from).num_days() + 1;
    Period { from: w.from - Duration::days(days), to: w.from - Duration::days(1) }
}

fn contains(w: Period, d: NaiveDate) -> bool {
    w.from <= d && d <= w.to
}

/// The visible, filtered deals that closed (won or lost by the as-of date) inside `window`.
fn closed_in<'a>(
    ctx: &'a Context<'_>,
    filter: &'a Filter,
    window: Period,
) -> impl Iterator<Item = (usize, &'a Deal, bool)> + 'a {
    ctx.dataset.deals.iter().enumerate().filter_map(move |(i, d)| {
        let won = match status(d, Some(ctx.as_of)) {
            Status::Won => true,
            Status::Lost => false,
            _ => return None,
        };
        let inside = d.closed.is_some_and(|c| contains(window, c));
        (inside && filter.admits(d) && (ctx.visible)(i)).then_some((i, d, won))
    })
}

fn figure(window: Period, won: usize, lost: usize) -> RateFigure {
    let n = won + lost;
    let (low, high) = wilson_interval(won as f64, n as f64, 1.96);
    RateFigure {
        window,
        won,
        lost,
        rate: (n > 0).then(|| won as f64 / n as f64),
        low: (n > 0).then_some(low),
        high: (n > 0).then_some(high),
    }
}

fn win_rate(ctx: &Context<'_>, filter: &Filter, window: Period, keep: impl Fn(&Deal) -> bool) -> RateFigure {
    let (mut won, mut lost) = (0, 0);
    for (_, d, w) in closed_in(ctx, filter, window) {
        if keep(d) {
            if w {
                won += 1;
            } else {
                lost += 1;
            }
        }
    }
    figure(window, won, lost)
}

/// `now` against the window before it.
fn change(ctx: &Context<'_>, filter: &Filter, now: &RateFigure) -> Change {
    let before = win_rate(ctx, filter, previous(now.window), |_| true);
    compared(now, before)
}

fn compared(now: &RateFigure, before: RateFigure) -> Change {
    let (n1, n2) = ((now.won + now.lost) as f64, (before.won + before.lost) as f64);
    let p_value = (n1 > 0.0 && n2 > 0.0).then(|| two_proportion_p(now.won as f64, n1, before.won as f64, n2));
    let points = now.rate.zip(before.rate).map(|(a, b)| 100.0 * (a - b));
    Change { before, points, p_value, significant: p_value.is_some_and(|p| p < SIGNIFICANT) }
}

/// Each open, visible, filtered deal with its risk score.
fn open_deals<'a>(ctx: &'a Context<'_>, filter: &'a Filter) -> impl Iterator<Item = (usize, Option<u8>)> + 'a {
    ctx.dataset.deals.iter().enumerate().filter_map(move |(i, d)| {
        let open = status(d, Some(ctx.as_of)) == Status::Open && filter.admits(d) && (ctx.visible)(i);
        let score = ctx.p_loss.and_then(|p| p.get(i)).filter(|p| p.is_finite()).map(|&p| risk_score(p));
        open.then_some((i, score))
    })
}

fn line(ctx: &Context<'_>, i: usize, score: Option<u8>) -> DealLine {
    let data = ctx.dataset;
    let d = &data.deals[i];
    DealLine {
        deal_id: d.id.to_string(),
        company: d.name.clone(),
        owner: data.schema.owner_column().and_then(|c| data.cat_name(c, d.cats[c])).map(str::to_owned),
        amount: d.amount.map(|a| a.get()),
        risk_score: score,
        risk_category: score.map(RiskCategory::from_score),
        stage: data.schema.stages.name(d.stage).map(str::to_owned),
    }
}

fn at_risk(query: &Query, ctx: &Context<'_>, filter: &Filter) -> Result<Answer, Problem> {
    if ctx.p_loss.is_none() {
        return Err(Problem::NoModel);
    }
    let categories = match query.slots.risk_category {
        Some(c) => vec![c],
        None => vec![RiskCategory::Critical, RiskCategory::High],
    };
    let mut found: Vec<(usize, u8)> = open_deals(ctx, filter)
        .filter_map(|(i, s)| s.map(|s| (i, s)))
        .filter(|&(_, s)| categories.contains(&RiskCategory::from_score(s)))
        .collect();
    let amount = |i: usize| ctx.dataset.deals[i].amount.map_or(0.0, |a| a.get());
    found.sort_by(|&(a, sa), &(b, sb)| {
        sb.cmp(&sa).then(amount(b).total_cmp(&amount(a))).then(ctx.dataset.deals[a].id.cmp(&ctx.dataset.deals[b].id))
    });
    let value = found.iter().map(|&(i, _)| amount(i)).sum();
    let limit = query.slots.limit.map_or(DEFAULT_LIMIT, |l| l as usize);
    Ok(Answer::AtRiskDeals {
        matching: found.len(),
        value,
        deals: found.into_iter().take(limit).map(|(i, s)| line(ctx, i, Some(s))).collect(),
        categories,
    })
}

/// The categorical column of `dimension` (`rep` is the owner).
fn column_of(dataset: &Dataset, dimension: &str) -> Result<usize, Problem> {
    if dimension == "rep" {
        return dataset.schema.owner_column().ok_or_else(|| Problem::NoField("owner".into()));
    }
    dataset
        .schema
        .categorical
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(dimension))
        .ok_or_else(|| Problem::NoField(dimension.to_owned()))
}

/// Win rate per value of `column` in `window`, best first.
fn by_value(ctx: &Context<'_>, filter: &Filter, column: usize, window: Period) -> Vec<(Sym, RateFigure)> {
    let values = ctx.dataset.schema.categorical[column].vocab.values().len();
    let mut counts = vec![(0usize, 0usize); values];
    for (_, d, won) in closed_in(ctx, filter, window) {
        let Some(slot) = counts.get_mut(d.cats[column] as usize) else { continue };
        if won {
            slot.0 += 1;
        } else {
            slot.1 += 1;
        }
    }
    let mut rows: Vec<(Sym, RateFigure)> = counts
        .into_iter()
        .enumerate()
        .filter(|(_, (w, l))| w + l > 0)
        .map(|(k, (w, l))| (k as Sym, figure(window, w, l)))
        .collect();
    rows.sort_by(|a, b| b.1.rate.unwrap_or(0.0).total_cmp(&a.1.rate.unwrap_or(0.0)));
    rows
}

fn compare(query: &Query, ctx: &Context<'_>, filter: &Filter, window: Period) -> Result<Answer, Problem> {
    let dimension = query
        .slots
        .dimension
        .clone()
        .or_else(|| ctx.dataset.schema.segment_columns().next().map(|c| ctx.dataset.schema.categorical[c].name.clone()))
        .ok_or_else(|| Problem::NoField("segment".into()))?;
    let column = column_of(ctx.dataset, &dimension)?;
    let rows: Vec<SegmentRow> = by_value(ctx, filter, column, window)
        .into_iter()
        .map(|(sym, figure)| SegmentRow {
            value: ctx.dataset.cat_name(column, sym).unwrap_or_default().to_owned(),
            figure,
        })
        .collect();
    let p_value = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) if rows.len() > 1 => {
            let (a, b) = (&a.figure, &b.figure);
            Some(two_proportion_p(a.won as f64, (a.won + a.lost) as f64, b.won as f64, (b.won + b.lost) as f64))
        }
        _ => None,
    };
    Ok(Answer::CompareSegments {
        dimension,
        window,
        rows,
        significant: p_value.is_some_and(|p| p < SIGNIFICANT),
        p_value,
    })
}

/// Quarters a trend shows without a named period.
const TREND_QUARTERS: i32 = 4;

fn trend(query: &Query, ctx: &Context<'_>, filter: &Filter) -> Answer {
    let metric = query.slots.metric.unwrap_or(Metric::WinRate);
    let quarters = match query.slots.period {
        Some(p) => super::slots::quarters_within(p.from, p.to.min(ctx.as_of)),
        None => super::slots::quarters_before(ctx.as_of, TREND_QUARTERS),
    };
    let mut rates = Vec::new();
    let points: Vec<TrendPoint> = quarters
        .into_iter()
        .map(|(label, q)| {
            let window = Period { from: q.from, to: q.to.min(ctx.as_of) };
            let (value, n) = match metric {
                Metric::WinRate => {
                    let f = win_rate(ctx, filter, window, |_| true);
                    rates.push(f.clone());
                    (f.rate.map(|r| 100.0 * r), f.won + f.lost)
                }
                Metric::CycleTime => {
                    let (n, mut days) = cycles(ctx, filter, window);
                    (median(&mut days), n)
                }
                Metric::DealSize => {
                    let mut sizes: Vec<f64> = closed_in(ctx, filter, window)
                        .filter(|(_, _, won)| *won)
                        .filter_map(|(_, d, _)| d.amount.map(|a| a.get()))
                        .collect();
                    (median(&mut sizes), sizes.len())
                }
                Metric::DealCount => {
                    let n = created_in(ctx, filter, window).count();
                    (Some(n as f64), n)
                }
                Metric::Pipeline => {
                    let open: Vec<f64> = ctx
                        .dataset
                        .deals
                        .iter()
                        .enumerate()
                        .filter(|&(i, d)| {
                            status(d, Some(window.to)) == Status::Open && filter.admits(d) && (ctx.visible)(i)
                        })
                        .map(|(_, d)| d.amount.map_or(0.0, |a| a.get()))
                        .collect();
                    (Some(open.iter().sum()), open.len())
                }
            };
            TrendPoint { label, window, value, n }
        })
        .collect();
    let with_values: Vec<&TrendPoint> = points.iter().filter(|p| p.value.is_some()).collect();
    let change = match (with_values.first(), with_values.last()) {
        (Some(a), Some(b)) if with_values.len() > 1 => Some(b.value.unwrap_or(0.0) - a.value.unwrap_or(0.0)),
        _ => None,
    };
    let p_value = match (rates.iter().find(|r| r.rate.is_some()), rates.iter().rev().find(|r| r.rate.is_some())) {
        (Some(a), Some(b)) if a.window != b.window => compared(b, a.clone()).p_value,
        _ => None,
    };
    Answer::Trend { metric, points, change, significant: p_value.is_some_and(|p| p < SIGNIFICANT), p_value }
}

fn created_in<'a>(ctx: &'a Context<'_>, filter: &'a Filter, window: Period) -> impl Iterator<Item = usize> + 'a {
    ctx.dataset.deals.iter().enumerate().filter_map(move |(i, d)| {
        let inside = d.created.is_some_and(|c| contains(window, c) && c <= ctx.as_of);
        (inside && filter.admits(d) && (ctx.visible)(i)).then_some(i)
    })
}

/// Won deals' cycle lengths in `window`.
fn cycles(ctx: &Context<'_>, filter: &Filter, window: Period) -> (usize, Vec<f64>) {
    let days: Vec<f64> = closed_in(ctx, filter, window)
        .filter(|(_, _, won)| *won)
        .filter_map(|(_, d, _)| d.cycle_days())
        .map(|d| d as f64)
        .collect();
    (days.len(), days)
}

fn reps(query: &Query, ctx: &Context<'_>, filter: &Filter, window: Period) -> Result<Answer, Problem> {
    let column = column_of(ctx.dataset, "rep")?;
    let team = win_rate(ctx, filter, window, |_| true);
    let mut rows: Vec<RepRow> = by_value(ctx, filter, column, window)
        .into_iter()
        .map(|(sym, figure)| RepRow {
            rep: ctx.dataset.cat_name(column, sym).unwrap_or_default().to_owned(),
            figure,
            open_deals: 0,
            open_value: 0.0,
            mean_risk: None,
        })
        .collect();
    let mut risk: Vec<(f64, usize)> = vec![(0.0, 0); rows.len()];
    for (i, score) in open_deals(ctx, filter) {
        let d = &ctx.dataset.deals[i];
        let name = ctx.dataset.cat_name(column, d.cats[column]).unwrap_or_default();
        let Some(k) = rows.iter().position(|r| r.rep == name) else { continue };
        rows[k].open_deals += 1;
        rows[k].open_value += d.amount.map_or(0.0, |a| a.get());
        if let Some(s) = score {
            risk[k].0 += f64::from(s);
            risk[k].1 += 1;
        }
    }
    for (row, (sum, n)) in rows.iter_mut().zip(risk) {
        row.mean_risk = (n > 0).then(|| sum / n as f64);
    }
    let limit = query.slots.limit.map_or(DEFAULT_LIMIT, |l| l as usize);
    rows.truncate(limit.max(1));
    Ok(Answer::RepPerformance { window, rows, team })
}

fn count(query: &Query, ctx: &Context<'_>, filter: &Filter, window: Period) -> Answer {
    let amount = |i: usize| ctx.dataset.deals[i].amount.map_or(0.0, |a| a.get());
    let outcome = query.slots.outcome;
    let closed = |w: Period, keep: fn(bool) -> bool| -> Vec<usize> {
        closed_in(ctx, filter, w).filter(|(_, _, won)| keep(*won)).map(|(i, _, _)| i).collect()
    };
    let pick = |w: Period| -> Vec<usize> {
        match outcome {
            Some(OutcomeFilter::Won) => closed(w, |won| won),
            Some(OutcomeFilter::Lost) => closed(w, |won| !won),
            Some(OutcomeFilter::Closed) => closed(w, |_| true),
            Some(OutcomeFilter::Open) => unreachable!("open deals are counted on the as-of date"),
            None => created_in(ctx, filter, w).collect(),
        }
    };
    if outcome == Some(OutcomeFilter::Open) {
        let open: Vec<usize> = open_deals(ctx, filter)
            .map(|(i, _)| i)
            .filter(|&i| {
                query.slots.period.is_none_or(|p| ctx.dataset.deals[i].created.is_some_and(|c| contains(p, c)))
            })
            .collect();
        return Answer::DealCount {
            outcome,
            window: query.slots.period,
            count: open.len(),
            value: open.iter().map(|&i| amount(i)).sum(),
            before: None,
        };
    }
    let now = pick(window);
    Answer::DealCount {
        outcome,
        window: Some(window),
        count: now.len(),
        value: now.iter().map(|&i| amount(i)).sum(),
        before: Some(pick(previous(window)).len()),
    }
}

/// Expected bookings in the period (this quarter by default): the open deals expected to close
/// in it, each worth its amount times its P(win). A deal without an expected close date is
/// placed at its creation plus the median won cycle (or now, if that has passed).
fn forecast(query: &Query, ctx: &Context<'_>, filter: &Filter) -> Result<Answer, Problem> {
    let p_loss = ctx.p_loss.ok_or(Problem::NoModel)?;
    let window = query.slots.period.unwrap_or_else(|| super::slots::quarter_containing(ctx.as_of));
    let all = Filter { cats: Vec::new(), min: None, max: None };
    let history = Period { from: NaiveDate::MIN, to: ctx.as_of };
    let (_, mut days) = cycles(ctx, &all, history);
    let typical = median(&mut days).map(|d| d.round() as i64);
    let (mut expected, mut variance, mut value, mut estimated) = (0.0, 0.0, 0.0, 0);
    let mut chosen: Vec<(usize, f64)> = Vec::new();
    for (i, _) in open_deals(ctx, filter) {
        let d = &ctx.dataset.deals[i];
        // A deal's own close date is an expectation only while it is really open; in a past
        // as-of view it is the future.
        let own = d.closed.filter(|_| d.outcome == crate::domain::Outcome::Open);
        let close = own.unwrap_or_else(|| match (d.created, typical) {
            (Some(c), Some(t)) => (c + Duration::days(t)).max(ctx.as_of),
            _ => ctx.as_of,
        });
        let p = p_loss[i];
        if !contains(window, close) || !p.is_finite() {
            continue;
        }
        estimated += usize::from(own.is_none());
        let a = d.amount.map_or(0.0, |a| a.get());
        value += a;
        expected += a * (1.0 - p);
        variance += a * a * p * (1.0 - p);
        chosen.push((i, a * (1.0 - p)));
    }
    chosen.sort_by(|a, b| b.1.total_cmp(&a.1));
    let spread = 1.645 * variance.sqrt();
    Ok(Answer::Forecast {
        window,
        deals: chosen.len(),
        pipeline_value: value,
        expected,
        low: (expected - spread).max(0.0),
        high: (expected + spread).min(value),
        estimated_dates: estimated,
        biggest: chosen
            .iter()
            .take(query.slots.limit.map_or(5, |l| l as usize))
            .map(|&(i, _)| line(ctx, i, p_loss.get(i).filter(|p| p.is_finite()).map(|&p| risk_score(p))))
            .collect(),
    })
}
