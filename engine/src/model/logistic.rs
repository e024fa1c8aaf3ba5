//! L2-regularised logistic regression on the engineered features (the seeds' model), fitted by
//! `linfa-logistic`.
//!
//! Features are standardised on the training rows, and each feature that is ever missing gets a
//! standardised missing-indicator beside it (the value itself is then imputed as the mean). Every
//! input therefore has mean zero on the training data, so `weight × input` is exactly the
//! feature's contribution against the average deal, the same reading as the additive model's.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::Training;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub mean: f64,
    pub scale: f64,
    pub weight: f64,
    /// For features that can be missing: (indicator mean, indicator scale, indicator weight).
    pub missing: Option<(f64, f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub intercept: f64,
    pub inputs: Vec<Input>,
    pub alpha: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("logistic regression failed: {0}")]
pub struct FitError(String);

impl LogisticModel {
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        for ((o, input), &v) in out.iter_mut().zip(&self.inputs).zip(x) {
            let value = if v.is_finite() { input.weight * (v - input.mean) / input.scale } else { 0.0 };
            let flag = input.missing.map_or(0.0, |(m, s, w)| w * (f64::from(u8::from(!v.is_finite())) - m) / s);
            *o = value + flag;
        }
        self.intercept
    }
}

/// The design of the standardised inputs, learnt from training rows.
struct Design {
    means: Vec<f64>,
    scales: Vec<f64>,
    /// Per feature: (indicator mean, scale) when the feature is sometimes missing.
    missing: Vec<Option<(f64, f64)>>,
}

impl Design {
    fn learn(x: &[f64], n_features: usize, rows: &[usize]) -> Design {
        let mut means = vec![0.0; n_features];
        let mut scales = vec![1.0; n_features];
        let mut missing = vec![None; n_features];
        for j in 0..n_features {
            let values: Vec<f64> = rows.iter().map(|&r| x[r * n_features + j]).collect();
            let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            let n = finite.len().max(1) as f64;
            let mean = finite.iter().sum::<f64>() / n;
            let var = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            means[j] = mean;
            scales[j] = if var > 1e-12 { var.sqrt() } else { 1.0 };
            let share = 1.0 - finite.len() as f64 / values.len().max(1) as f64;
            if share > 0.0 && share < 1.0 {
                missing[j] = Some((share, (share * (1.0 - share)).sqrt()));
            }
        }
        Design { means, scales, missing }
    }

    fn width(&self) -> usize {
        self.means.len() + self.missing.iter().flatten().count()
    }

    fn matrix(&self, x: &[f64], n_features: usize, rows: &[usize]) -> Array2<f64> {
        let mut m = Array2::zeros((rows.len(), self.width()));
        for (i, &r) in rows.iter().enumerate() {
            let mut extra = n_features;
            for j in 0..n_features {
                let v = x[r * n_features + j];
                if v.is_finite() {
                    m[[i, j]] = (v - self.means[j]) / self.scales[j];
                }
                if let Some((mean, scale)) = self.missing[j] {
                    m[[i, extra]] = (f64::from(u8::from(!v.is_finite())) - mean) / scale;
                    extra += 1;
                }
            }
        }
        m
    }
}

fn fit_rows(
    x: &[f64],
    n_features: usize,
    lost: &[bool],
    rows: &[usize],
    alpha: f64,
) -> Result<LogisticModel, FitError> {
    let design = Design::learn(x, n_features, rows);
    let records = design.matrix(x, n_features, rows);
    let targets: Array1<bool> = rows.iter().map(|&r| lost[r]).collect();
    let dataset = Dataset::new(records, targets);
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(200)
        .fit(&dataset)
        .map_err(|e| FitError(e.to_string()))?;
    // linfa models P(the larger label) = P(true) = P(loss), which is what we want.
    let w = fitted.params();
    let mut extra = n_features;
    let inputs = (0..n_features)
        .map(|j| {
            let missing = design.missing[j].map(|(m, s)| {
                let weight = w[extra];
                extra += 1;
                (m, s, weight)
            });
            Input { mean: design.means[j], scale: design.scales[j], weight: w[j], missing }
        })
        .collect();
    Ok(LogisticModel { intercept: fitted.intercept(), inputs, alpha })
}

/// Fits on all rows, plus one model per fold for out-of-fold log-odds.
pub fn fit(training: &Training<'_>, alpha: f64) -> Result<(LogisticModel, Vec<f64>), FitError> {
    let Training { x, n_features, lost, fold, k } = *training;
    let n = lost.len();
    let all: Vec<usize> = (0..n).collect();
    let model = fit_rows(x, n_features, lost, &all, alpha)?;
    let mut oof = vec![0.0; n];
    let mut buf = vec![0.0; n_features];
    for f in 0..k {
        let train: Vec<usize> = all.iter().copied().filter(|&r| fold[r] != f).collect();
        let fold_model = fit_rows(x, n_features, lost, &train, alpha)?;
        for r in all.iter().copied().filter(|&r| fold[r] == f) {
            let icpt = fold_model.contributions(&x[r * n_features..(r + 1) * n_features], &mut buf);
            oof[r] = icpt + buf.iter().sum::<f64>();
        }
    }
    Ok((model, oof))
}
