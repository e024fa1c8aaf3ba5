//! Messy mode: the planted errors, one per row, and the cosmetic mess a real export has.

use std::collections::HashSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::model::INDUSTRY_SPELLINGS;
use crate::ingest::ProblemKind;

pub(super) const MESSY_CURRENCY_SHARE: f64 = 0.10;
pub(super) const MESSY_PADDING_SHARE: f64 = 0.03;
pub(super) const MESSY_SPELLING_SHARE: f64 = 0.02;
pub(super) const MESSY_BLANK_LEAD_SHARE: f64 = 0.02;
pub(super) const PLANTED_SHARE: f64 = 0.003;
pub(super) const PLANTED_MIN_DEALS: usize = 100;
pub(super) const BAD_DATE: &str = "31/31/2023";
pub(super) const UNKNOWN_OUTCOME: &str = "Pending review";

/// A planted error (messy mode), one per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Defect {
    /// Repeats the id of this earlier, valid row.
    RepeatedId {
        of: usize,
    },
    /// Closed this many days before it was created.
    ClosedBeforeCreated {
        days: i64,
    },
    UnknownOutcome,
    NegativeAmount,
    BadCreatedDate,
    BlankId,
}

impl Defect {
    pub(super) fn kind(self) -> ProblemKind {
        match self {
            Defect::RepeatedId { .. } => ProblemKind::DuplicateId,
            Defect::ClosedBeforeCreated { .. } => ProblemKind::ClosedBeforeCreated,
            Defect::UnknownOutcome => ProblemKind::UnknownOutcome,
            Defect::NegativeAmount => ProblemKind::NonPositiveAmount,
            Defect::BadCreatedDate => ProblemKind::BadDate,
            Defect::BlankId => ProblemKind::MissingRequired,
        }
    }
}

/// Messy-mode state: its own random stream, the planted rows and which industries have appeared.
pub(super) struct Mess {
    pub(super) rng: ChaCha8Rng,
    /// (row, defect), by row.
    pub(super) defects: Vec<(usize, Defect)>,
    pub(super) next_defect: usize,
    pub(super) industry_seen: [bool; 6],
}

impl Mess {
    pub(super) fn new(deals: usize, acme_row: Option<usize>, mut rng: ChaCha8Rng) -> Self {
        let per_kind =
            if deals >= PLANTED_MIN_DEALS { ((deals as f64 * PLANTED_SHARE).round() as usize).max(1) } else { 0 };
        // Not the first row, which has no earlier row to repeat, nor Acme's showcase deal.
        let mut rows = HashSet::new();
        let mut picked = Vec::with_capacity(per_kind * 6);
        while picked.len() < per_kind * 6 {
            let row = rng.random_range(1..deals);
            if Some(row) != acme_row && rows.insert(row) {
                picked.push(row);
            }
        }
        let mut defects: Vec<(usize, Defect)> = picked
            .chunks(per_kind.max(1))
            .zip(0..)
            .flat_map(|(chunk, kind)| chunk.iter().map(move |&row| (row, kind)))
            .map(|(row, kind)| {
                let defect = match kind {
                    0 => {
                        // Row 0 is never planted, so this finds a valid earlier row.
                        let mut of = rng.random_range(0..row);
                        while rows.contains(&of) {
                            of = rng.random_range(0..row);
                        }
                        Defect::RepeatedId { of }
                    }
                    1 => Defect::ClosedBeforeCreated { days: rng.random_range(1..=30) },
                    2 => Defect::UnknownOutcome,
                    3 => Defect::NegativeAmount,
                    4 => Defect::BadCreatedDate,
                    _ => Defect::BlankId,
                };
                (row, defect)
            })
            .collect();
        defects.sort_unstable_by_key(|&(row, _)| row);
        Self { rng, defects, next_defect: 0, industry_seen: [false; 6] }
    }

    pub(super) fn defect_at(&mut self, row: usize) -> Option<Defect> {
        let &(at, defect) = self.defects.get(self.next_defect)?;
        (at == row).then(|| {
            self.next_defect += 1;
            defect
        })
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// Another spelling of an industry, sometimes, once its usual spelling has appeared (a
    /// vocabulary shows the first spelling it meets).
    pub(super) fn respelling(&mut self, industry: usize) -> Option<&'static str> {
        if !self.industry_seen[industry] || !self.chance(MESSY_SPELLING_SHARE) {
            return None;
        }
        let options = INDUSTRY_SPELLINGS[industry];
        Some(options[self.rng.random_range(0..options.len())])
    }

    /// Stray spaces (before, after) for a categorical cell.
    pub(super) fn padding(&mut self) -> (usize, usize) {
        if !self.chance(MESSY_PADDING_SHARE) {
            return (0, 0);
        }
        match self.rng.random_range(0..3) {
            0 => (self.rng.random_range(1..=2), 0),
            1 => (0, self.rng.random_range(1..=3)),
            _ => (1, 1),
        }
    }
}
