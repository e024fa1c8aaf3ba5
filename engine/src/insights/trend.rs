//! Win rate by calendar quarter, overall and for chosen segments: the weekly summary's chart.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::closed_on;
use super::segments::Segment;
use crate::dataset::Dataset;
use crate::stats::WinCount;

/// One line of the chart: a label and, per quarter, the win rate and the deals behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarterSeries {
    pub label: String,
    pub points: Vec<QuarterPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarterPoint {
    /// `2024 Q2`.
    pub quarter: String,
    pub won: u32,
    pub closed: u32,
    /// `None` when nothing closed in the quarter.
    pub rate: Option<f64>,
}

/// The `quarters` calendar quarters up to and including `as_of`'s (the last one to date).
fn quarter_starts(as_of: NaiveDate, quarters: usize) -> Vec<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(as_of.year(), (as_of.month0() / 3) * 3 + 1, 1).unwrap_or(as_of);
    let mut starts: Vec<NaiveDate> =
        (0..quarters as u32).filter_map(|k| first.checked_sub_months(chrono::Months::new(3 * k))).collect();
    starts.reverse();
    starts
}

/// Win rate per quarter of every deal closed by `as_of` ("all deals") and of each segment.
pub fn quarterly(dataset: &Dataset, as_of: NaiveDate, segments: &[Segment], quarters: usize) -> Vec<QuarterSeries> {
    let starts = quarter_starts(as_of, quarters.max(1));
    // Each segment as (column, value id) pairs; a segment naming an unknown value matches nothing.
    let members: Vec<Option<Vec<(usize, u32)>>> = segments
        .iter()
        .map(|s| {
            s.dimensions
                .iter()
                .zip(&s.values)
                .map(|(d, v)| {
                    let c = dataset.schema.column(d)?;
                    Some((c, dataset.schema.categorical[c].vocab.lookup(v)?))
                })
                .collect()
        })
        .collect();
    let mut counts = vec![vec![WinCount::default(); starts.len()]; segments.len() + 1];
    for deal in &dataset.deals {
        let Some((won, closed)) = closed_on(deal, as_of) else { continue };
        let Some(q) = starts.iter().rposition(|s| closed >= *s) else { continue };
        counts[0][q].add(won);
        for (k, m) in members.iter().enumerate() {
            if m.as_ref().is_some_and(|pairs| pairs.iter().all(|&(c, v)| deal.cats[c] == v)) {
                counts[k + 1][q].add(won);
            }
        }
    }
    let labels = std::iter::once("all deals".to_owned()).chain(segments.iter().map(Segment::label));
    labels
        .zip(counts)
        .map(|(label, per_quarter)| QuarterSeries {
            label,
            points: starts
                .iter()
                .zip(per_quarter)
                .map(|(start, c)| QuarterPoint {
                    quarter: format!("{} Q{}", start.year(), start.month0() / 3 + 1),
                    won: c.won as u32,
                    closed: c.n as u32,
                    rate: c.rate(),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_end_with_the_current_one() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(quarter_starts(d("2024-07-31"), 3), [d("2024-01-01"), d("2024-04-01"), d("2024-07-01")]);
        assert_eq!(quarter_starts(d("2024-01-01"), 2), [d("2023-10-01"), d("2024-01-01")]);
    }
}
