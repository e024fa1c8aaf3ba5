//! As-of replay: what was known about each deal on a given date.
//!
//! On date `A`, a deal created after `A` did not exist yet; a deal closed on or before `A` is
//! closed with its outcome; a deal created on or before `A` and closed after it was *open*, and
//! its outcome is hidden. Every model, feature and report works on this view, so replaying an
//! earlier date reproduces what Dealwatch would have said then, and nothing decided later leaks
//! into it. Exports without dates have no history to replay: statuses come from the labels.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Deal};
use crate::domain::Outcome;
use crate::stats::unit_hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not created yet on the as-of date.
    Future,
    Open,
    Won,
    Lost,
}

impl Status {
    pub fn is_closed(self) -> bool {
        matches!(self, Status::Won | Status::Lost)
    }

    /// True for a loss: the event the risk score predicts.
    pub fn lost(self) -> bool {
        self == Status::Lost
    }
}

/// The status of `deal` on `as_of` (`None`: no date to replay, the labels as they stand).
pub fn status(deal: &Deal, as_of: Option<NaiveDate>) -> Status {
    let Some(as_of) = as_of else {
        return from_label(deal.outcome);
    };
    if deal.created.is_some_and(|c| c > as_of) {
        return Status::Future;
    }
    match deal.outcome {
        Outcome::Open => Status::Open,
        closed => match deal.closed {
            Some(z) if z > as_of => Status::Open,
            // Closed without a close date only happens in exports without dates.
            _ => from_label(closed),
        },
    }
}

fn from_label(outcome: Outcome) -> Status {
    match outcome {
        Outcome::Won => Status::Won,
        Outcome::Lost => Status::Lost,
        Outcome::Open => Status::Open,
    }
}

/// Indices of the deals with each status on a date.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub as_of: Option<NaiveDate>,
    pub closed: Vec<usize>,
    pub open: Vec<usize>,
}

impl View {
    pub fn new(dataset: &Dataset, as_of: Option<NaiveDate>) -> Self {
        let as_of = as_of.filter(|_| dataset.schema.has_created || dataset.schema.has_closed);
        let mut view = View { as_of, ..Self::default() };
        for (i, deal) in dataset.deals.iter().enumerate() {
            match status(deal, as_of) {
                Status::Future => {}
                Status::Open => view.open.push(i),
                Status::Won | Status::Lost => view.closed.push(i),
            }
        }
        view
    }
}

/// How `eval` divides closed deals into a training and a test part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    /// Train on deals that closed earlier, test on the ones that closed later: the honest
    /// question "would this model have worked going forward?".
    Time,
    /// A seeded random split; for exports without dates.
    Random,
}

#[derive(Debug, Clone)]
pub struct Split {
    pub kind: SplitKind,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    /// Time split: the last close date in the training part.
    pub cutoff: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("a time split needs created and closed dates, and this mapping has none; use --split random")]
    NoDates,
    #[error("test fraction must be between 0.05 and 0.95, not {0}")]
    BadFraction(f64),
    #[error("only {0} closed deals are known at the as-of date; at least 20 are needed to evaluate")]
    TooFew(usize),
}

/// Splits the closed deals of `view` into train and test.
pub fn split(
    dataset: &Dataset,
    view: &View,
    kind: SplitKind,
    test_fraction: f64,
    seed: u64,
) -> Result<Split, SplitError> {
    if !(0.05..=0.95).contains(&test_fraction) {
        return Err(SplitError::BadFraction(test_fraction));
    }
    if view.closed.len() < 20 {
        return Err(SplitError::TooFew(view.closed.len()));
    }
    match kind {
        SplitKind::Time => {
            if !dataset.schema.has_closed {
                return Err(SplitError::NoDates);
            }
            let mut by_date: Vec<(NaiveDate, usize)> =
                view.closed.iter().filter_map(|&i| Some((dataset.deals[i].closed?, i))).collect();
            by_date.sort_unstable();
            let n_train = ((1.0 - test_fraction) * by_date.len() as f64).round() as usize;
            let cutoff = by_date[n_train.clamp(1, by_date.len() - 1) - 1].0;
            // Deals closing on the cutoff day all go to training, so no day is split in two.
            let (train, test): (Vec<(NaiveDate, usize)>, Vec<_>) = by_date.iter().partition(|(d, _)| *d <= cutoff);
            Ok(Split {
                kind,
                train: train.into_iter().map(|p| p.1).collect(),
                test: test.into_iter().map(|p| p.1).collect(),
                cutoff: Some(cutoff),
            })
        }
        SplitKind::Random => {
            let (test, train): (Vec<usize>, Vec<usize>) = view
                .closed
                .iter()
                .partition(|&&i| unit_hash(dataset.deals[i].id.as_str().as_bytes(), seed ^ 0x5eed) < test_fraction);
            Ok(Split { kind, train, test, cutoff: None })
        }
    }
}
