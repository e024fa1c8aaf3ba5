//! The quality report of an import: every problem named by row, column, value and reason, and
//! each column's fill rate.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row is quarantined.
    Error,
    /// The row is kept; the value is flagged or treated as blank.
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    MalformedRow,
    Encoding,
    MissingRequired,
    BadId,
    DuplicateId,
    UnknownOutcome,
    BadDate,
    BadNumber,
    NonPositiveAmount,
    AmountTooLarge,
    ClosedBeforeCreated,
    DateInFuture,
    JoinMiss,
    Outlier,
}

/// One problem with one cell of one row.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// 1-based data row (the header is row 0).
    pub row: u32,
    pub deal_id: Option<String>,
    pub column: String,
    pub value: String,
    pub kind: ProblemKind,
    pub severity: Severity,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(id) = &self.deal_id {
            write!(f, " (deal {id})")?;
        }
        write!(f, ", column {:?}, value {:?}: {}", self.column, self.value, self.reason)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnQuality {
    pub field: String,
    pub column: String,
    pub filled: usize,
    pub completeness_pct: f64,
}

/// The data-quality report of seeds 002 §4.1 and 004.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    pub rows_read: usize,
    pub rows_accepted: usize,
    pub rows_quarantined: usize,
    pub won: usize,
    pub lost: usize,
    pub open: usize,
    /// Share of mapped cells that are filled.
    pub completeness_pct: f64,
    /// Share of rows without an error.
    pub validity_pct: f64,
    /// Share of rows whose id is not a repeat of an earlier row's.
    pub uniqueness_pct: f64,
    pub columns: Vec<ColumnQuality>,
    pub errors_by_kind: BTreeMap<ProblemKind, usize>,
    pub warnings_by_kind: BTreeMap<ProblemKind, usize>,
    /// Every problem found, errors first by row.
    pub problems: Vec<Problem>,
    /// Problems with the file as a whole (skipped columns, encoding).
    pub notices: Vec<String>,
}

impl QualityReport {
    pub fn quarantined_rows(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }
}
