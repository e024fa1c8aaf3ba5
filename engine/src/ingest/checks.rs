//! The checks of one row and of the whole file: problems collected per row, fill rates, amount
//! outliers.

use crate::dataset::Deal;
use crate::mapping::Mapping;

use super::report::{Problem, ProblemKind, QualityReport, Severity};
/// The problems of the row being read.
pub(super) struct RowProblems {
    pub(super) row: u32,
    pub(super) list: Vec<Problem>,
}

impl RowProblems {
    pub(super) fn add(&mut self, column: &str, value: &str, kind: ProblemKind, severity: Severity, reason: String) {
        self.list.push(Problem {
            row: self.row,
            deal_id: None,
            column: column.to_owned(),
            value: value.to_owned(),
            kind,
            severity,
            reason,
        });
    }

    pub(super) fn has_error(&self) -> bool {
        self.list.iter().any(|p| p.severity == Severity::Error)
    }
}

pub(super) fn pct(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 { 100.0 } else { (1000.0 * part / whole).round() / 10.0 }
}

pub(super) fn finish_row(report: &mut QualityReport, mut problems: Vec<Problem>, deal_id: Option<&str>) {
    for p in &mut problems {
        p.deal_id = deal_id.map(str::to_owned);
        let counts = match p.severity {
            Severity::Error => &mut report.errors_by_kind,
            Severity::Warning => &mut report.warnings_by_kind,
        };
        *counts.entry(p.kind).or_default() += 1;
    }
    report.problems.extend(problems);
}

/// Flags (never rejects) amounts and cycle lengths further than `outlier_sigma` standard
/// deviations from the mean. Amounts are compared on the log scale, where deal sizes are roughly
/// normal; on the raw scale every large deal would be an "outlier".
pub(super) fn flag_outliers(
    deals: &[Deal],
    mapping: &Mapping,
    amount_column: Option<&str>,
    report: &mut QualityReport,
) {
    let sigma = mapping.validation.outlier_sigma;
    let mut check = |values: Vec<(usize, f64)>, column: &str, label: &str, shown: &dyn Fn(f64) -> String| {
        if values.len() < 10 {
            return;
        }
        let n = values.len() as f64;
        let mean = values.iter().map(|v| v.1).sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v.1 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        if sd <= 0.0 {
            return;
        }
        for (i, v) in values {
            let z = (v - mean) / sd;
            if z.abs() > sigma {
                let deal = &deals[i];
                let p = Problem {
                    row: deal.row,
                    deal_id: Some(deal.id.to_string()),
                    column: column.to_owned(),
                    value: shown(v),
                    kind: ProblemKind::Outlier,
                    severity: Severity::Warning,
                    reason: format!("{label} is {:.1} standard deviations from the mean; flagged, kept", z.abs()),
                };
                *report.warnings_by_kind.entry(ProblemKind::Outlier).or_default() += 1;
                report.problems.push(p);
            }
        }
    };
    if let Some(column) = amount_column {
        let values = deals.iter().enumerate().filter_map(|(i, d)| Some((i, d.amount?.get().ln()))).collect();
        check(values, column, "log amount", &|v| format!("{:.0}", v.exp()));
    }
    if let Some(column) = mapping.fields.closed.as_deref() {
        let values = deals
            .iter()
            .enumerate()
            .filter(|(_, d)| d.outcome.is_closed())
            .filter_map(|(i, d)| Some((i, d.cycle_days()? as f64)))
            .collect();
        check(values, column, "sales cycle length (days)", &|v| format!("{v:.0} days"));
    }
}
