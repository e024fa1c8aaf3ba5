//! `eval`: train on one part of the closed deals, report on the rest, against a baseline.
//!
//! Test deals are described exactly like training deals (at a snapshot part-way through their
//! life) but with an encoder fitted on the training part only, so nothing about the test part,
//! not even its segment win rates, reaches the model.

use chrono::NaiveDate;
use serde::Serialize;

use crate::asof::{Split, SplitError, SplitKind, View, split};
use crate::dataset::Dataset;
use crate::domain::Outcome;
use crate::metrics::{QualityMetrics, Signal, roc_auc};
use crate::model::{ModelKind, TrainConfig, TrainError, TrainedModel};

#[derive(Debug, Clone)]
pub struct EvalConfig {
    pub split: SplitKind,
    pub test_fraction: f64,
    pub train: TrainConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("the test part has only {0} deals of one outcome; no ranking can be measured")]
    OneClass(usize),
}

/// The `eval --format json` object (DESIGN.md lists the required fields).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub model_version: String,
    pub split: SplitKind,
    pub as_of: Option<NaiveDate>,
    /// Time split: training deals closed on or before this date, test deals after.
    pub cutoff: Option<NaiveDate>,
    pub n_train: usize,
    pub n_test: usize,
    pub train_loss_rate: f64,
    pub test_loss_rate: f64,
    /// roc_auc, roc_auc_interval, brier, log_loss, calibration_error, precision and recall of
    /// high+critical, top-decile lift, reliability bins, on the test part.
    #[serde(flatten)]
    pub metrics: QualityMetrics,
    /// AUC of shrunken segment win rates alone on the same split.
    pub baseline_roc_auc: f64,
    pub verdict: String,
    pub cold_start: bool,
    pub warnings: Vec<String>,
}

pub fn evaluate(dataset: &Dataset, as_of: Option<NaiveDate>, config: &EvalConfig) -> Result<EvalReport, EvalError> {
    let view = View::new(dataset, as_of);
    let kind = if view.as_of.is_none() && config.split == SplitKind::Time { SplitKind::Random } else { config.split };
    let mut warnings = Vec::new();
    if kind != config.split {
        warnings.push("the export has no dates, so the split is random instead of by time".to_owned());
    }
    let Split { train, test, cutoff, .. } = split(dataset, &view, kind, config.test_fraction, config.train.seed)?;
    let lost =
        |rows: &[usize]| -> Vec<bool> { rows.iter().map(|&i| dataset.deals[i].outcome == Outcome::Lost).collect() };
    let (train_lost, test_lost) = (lost(&train), lost(&test));
    let n_test_lost = test_lost.iter().filter(|&&l| l).count();
    if n_test_lost == 0 || n_test_lost == test.len() {
        return Err(EvalError::OneClass(test.len()));
    }
    // The model is trained as of the cutoff: it knows only the training part.
    let train_as_of = cutoff.or(view.as_of);
    let model = TrainedModel::train(dataset, &train, train_as_of, &config.train)?;
    let p = model.p_loss_at_snapshots(dataset, &test);
    let metrics = QualityMetrics::compute(&p, &test_lost);

    let baseline_config = TrainConfig { kind: ModelKind::SegmentRates, ..config.train.clone() };
    let baseline = TrainedModel::train(dataset, &train, train_as_of, &baseline_config)?;
    let baseline_roc_auc = roc_auc(&baseline.p_loss_at_snapshots(dataset, &test), &test_lost).unwrap_or(0.5);

    let roc_auc = metrics.roc_auc.unwrap_or(0.5);
    let interval = metrics.roc_auc_interval.unwrap_or((0.0, 1.0));
    let signal = metrics.signal.unwrap_or(Signal::None);
    let verdict = format!(
        "{} ROC-AUC {:.3} (95% interval {:.3}–{:.3}) on {} test deals; segment-rate baseline {:.3}.",
        signal.sentence(),
        roc_auc,
        interval.0,
        interval.1,
        test.len(),
        baseline_roc_auc
    );
    warnings.extend(model.warnings.iter().cloned());
    let rate = |l: &[bool]| l.iter().filter(|&&x| x).count() as f64 / l.len().max(1) as f64;
    Ok(EvalReport {
        model: model.kind.as_str().to_owned(),
        model_version: model.version.clone(),
        split: kind,
        as_of: view.as_of,
        cutoff,
        n_train: train.len(),
        n_test: test.len(),
        train_loss_rate: rate(&train_lost),
        test_loss_rate: rate(&test_lost),
        metrics,
        baseline_roc_auc,
        verdict,
        cold_start: model.cold_start,
        warnings,
    })
}
