//! Models: training, calibration, and the serialisable [`TrainedModel`].
//!
//! Every model here is *logit-additive*: the log-odds of a loss is an intercept plus one
//! contribution per feature. Calibration is Platt scaling (an affine map of the log-odds), which
//! keeps that form, so after calibration a score still decomposes exactly into per-feature
//! contributions, and [`crate::score`] turns those into probability points that sum to the score.

pub mod additive;
pub mod logistic;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::domain::Outcome;
use crate::features::{Bound, Encoder, Feature, fit_out_of_fold, fold_of, snapshot_matrix, training_matrix};
use crate::metrics::QualityMetrics;
use crate::stats::{logit, sigmoid, stable_hash};

pub use additive::AdditiveModel;
pub use logistic::LogisticModel;

/// Fewer closed deals than this and the engine does not fit a model (cold start).
pub const COLD_START_DEALS: usize = 40;
/// The model file format; bumped on incompatible changes.
pub const FORMAT: &str = "dealwatch-model/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Explainable additive model (default).
    Additive,
    /// L2 logistic regression on the engineered features.
    Logistic,
    /// Shrunken segment win rates only: the baseline, and the cold-start scorer.
    SegmentRates,
}

impl ModelKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "additive" => Some(Self::Additive),
            "logistic" => Some(Self::Logistic),
            "segment-rates" | "segment_rates" | "baseline" => Some(Self::SegmentRates),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Additive => "additive",
            Self::Logistic => "logistic",
            Self::SegmentRates => "segment-rates",
        }
    }
}

/// What a model is fitted on: the out-of-fold feature matrix of the training deals (row-major,
/// `n_features` per row, NaN = missing), whether each was lost, and its fold in `0..k`.
#[derive(Debug, Clone, Copy)]
pub struct Training<'a> {
    pub x: &'a [f64],
    pub n_features: usize,
    pub lost: &'a [bool],
    pub fold: &'a [usize],
    pub k: usize,
}

/// Platt scaling on log-odds: calibrated = a·z + b.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// Fits by Newton's method on out-of-fold log-odds, with Platt's smoothed targets so that a
    /// perfectly separated fold cannot push probabilities to 0 or 1.
    pub fn fit(z: &[f64], positive: &[bool]) -> Platt {
        let n_pos = positive.iter().filter(|&&y| y).count() as f64;
        let n_neg = positive.len() as f64 - n_pos;
        if n_pos == 0.0 || n_neg == 0.0 {
            return Platt::IDENTITY;
        }
        let hi = (n_pos + 1.0) / (n_pos + 2.0);
        let lo = 1.0 / (n_neg + 2.0);
        let (mut a, mut b) = (1.0, 0.0);
        for _ in 0..50 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (&z, &y) in z.iter().zip(positive) {
                let t = if y { hi } else { lo };
                let p = sigmoid(a * z + b);
                let (g, w) = (p - t, p * (1.0 - p));
                ga += g * z;
                gb += g;
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-12 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() < 1e-10 && db.abs() < 1e-10 {
                break;
            }
        }
        // A negative slope would invert the ranking; that only happens when the model has no
        // signal at all, and then "every deal at the base rate" is the honest calibration.
        if !(a.is_finite() && b.is_finite()) || a <= 0.0 {
            let rate = n_pos / (n_pos + n_neg);
            return Platt { a: 0.0, b: logit(rate) };
        }
        Platt { a, b }
    }
}

/// The shrunken-segment-rate scorer: each segment's log-odds lift, damped by √(number of
/// segment features) because segments overlap, plus one rule (a deal older than 1.5 typical
/// cycles is riskier) that holds in every sales data set we know of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRatesModel {
    pub intercept: f64,
    /// Per feature, the weight on its value (log-odds of loss per unit).
    pub weights: Vec<f64>,
    /// The stale-deal rule: (feature index of age ratio, threshold, log-odds added).
    pub stale_rule: Option<(usize, f64, f64)>,
}

impl SegmentRatesModel {
    pub fn new(encoder: &Encoder) -> Self {
        let n_segments = encoder.features.iter().filter(|f| matches!(f, Feature::Segment { .. })).count().max(1);
        let damp = 1.0 / (n_segments as f64).sqrt();
        let weights =
            encoder.features.iter().map(|f| if matches!(f, Feature::Segment { .. }) { -damp } else { 0.0 }).collect();
        let stale_rule = encoder.features.iter().position(|f| *f == Feature::AgeRatio).map(|i| (i, 1.5, 0.4));
        SegmentRatesModel { intercept: logit(1.0 - encoder.base_rate()), weights, stale_rule }
    }

    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        for ((o, &w), &v) in out.iter_mut().zip(&self.weights).zip(x) {
            *o = if v.is_finite() { w * v } else { 0.0 };
        }
        if let Some((i, threshold, add)) = self.stale_rule {
            out[i] = if x[i] > threshold { add } else { 0.0 };
        }
        self.intercept
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelBody {
    Additive(AdditiveModel),
    Logistic(LogisticModel),
    SegmentRates(SegmentRatesModel),
}

impl ModelBody {
    /// Uncalibrated per-feature log-odds contributions into `out`; returns the intercept.
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        match self {
            ModelBody::Additive(m) => m.contributions(x, out),
            ModelBody::Logistic(m) => m.contributions(x, out),
            ModelBody::SegmentRates(m) => m.contributions(x, out),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A trained model with everything needed to score and explain: the JSON model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedModel {
    pub format: String,
    /// Content hash: the same data and settings give the same version.
    pub version: String,
    pub kind: ModelKind,
    pub as_of: Option<NaiveDate>,
    /// Close dates of the training deals.
    pub window: Option<Window>,
    pub n_train: usize,
    pub n_won: usize,
    pub n_lost: usize,
    /// Trained on fewer than [`COLD_START_DEALS`] closed deals: segment rates and rules only.
    pub cold_start: bool,
    pub features: Vec<String>,
    pub encoder: Encoder,
    pub body: ModelBody,
    pub calibration: Platt,
    /// Out-of-fold quality on the training deals.
    pub metrics: Option<QualityMetrics>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub kind: ModelKind,
    pub seed: u64,
    /// Folds for out-of-fold encodings, bagging and calibration; 0 chooses: 5 below 30,000
    /// closed deals, 3 above, where more bags cost time and (measured) gain no accuracy.
    pub folds: usize,
    /// Worker threads for fitting (the caller decides; the engine reads no environment).
    pub threads: usize,
    pub additive: additive::Params,
    pub logistic_alpha: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            kind: ModelKind::Additive,
            seed: 42,
            folds: 0,
            threads: 1,
            additive: additive::Params::default(),
            logistic_alpha: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Logistic(#[from] logistic::FitError),
    #[error("model file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model file format {found:?} is not supported (expected {FORMAT:?}); retrain with this version")]
    Format { found: String },
}

impl TrainedModel {
    /// Trains on `rows`, closed deals of `dataset` (won or lost as of `as_of`).
    pub fn train(
        dataset: &Dataset,
        rows: &[usize],
        as_of: Option<NaiveDate>,
        config: &TrainConfig,
    ) -> Result<Self, TrainError> {
        let deals = &dataset.deals;
        let lost: Vec<bool> = rows.iter().map(|&i| deals[i].outcome == Outcome::Lost).collect();
        let n_lost = lost.iter().filter(|&&l| l).count();
        let n_won = rows.len() - n_lost;
        let encoder = Encoder::fit(dataset, rows, config.seed);
        let n_features = encoder.features.len();
        let mut warnings = Vec::new();
        let window = {
            let closes = rows.iter().filter_map(|&i| deals[i].closed);
            closes.clone().min().zip(closes.max()).map(|(from, to)| Window { from, to })
        };
        let cold_start = rows.len() < COLD_START_DEALS || n_won < 5 || n_lost < 5;

        let (kind, body, calibration, metrics) = if cold_start {
            warnings.push(format!(
                "cold start: only {} closed deals ({n_won} won, {n_lost} lost); scores come from shrunken segment win rates and rules, not a fitted model, and their confidence is low. A model is fitted from {COLD_START_DEALS} closed deals with at least 5 of each outcome.",
                rows.len()
            ));
            (ModelKind::SegmentRates, ModelBody::SegmentRates(SegmentRatesModel::new(&encoder)), Platt::IDENTITY, None)
        } else {
            let k = match config.folds {
                0 if rows.len() >= 30_000 => 3,
                0 => 5,
                k => k.clamp(2, 10),
            };
            let fold: Vec<usize> = rows.iter().map(|&i| fold_of(&deals[i], k, config.seed)).collect();
            let oof_encoders = fit_out_of_fold(dataset, rows, k, &encoder, config.threads);
            let x = training_matrix(dataset, rows, &oof_encoders, k, config.seed);
            let training = Training { x: &x, n_features, lost: &lost, fold: &fold, k };
            let (body, oof) = match config.kind {
                ModelKind::Additive => {
                    // Risk falls as a segment's win-rate lift rises.
                    let monotone: Vec<i8> = encoder
                        .features
                        .iter()
                        .map(|f| match f {
                            Feature::Segment { .. } | Feature::Pair { .. } => -1,
                            _ => 0,
                        })
                        .collect();
                    let (m, oof) = additive::fit(&training, &monotone, &config.additive, config.threads);
                    (ModelBody::Additive(m), oof)
                }
                ModelKind::Logistic => {
                    let (m, oof) = logistic::fit(&training, config.logistic_alpha)?;
                    (ModelBody::Logistic(m), oof)
                }
                ModelKind::SegmentRates => {
                    let m = SegmentRatesModel::new(&encoder);
                    let mut buf = vec![0.0; n_features];
                    let oof = (0..rows.len())
                        .map(|r| {
                            m.contributions(&x[r * n_features..(r + 1) * n_features], &mut buf)
                                + buf.iter().sum::<f64>()
                        })
                        .collect();
                    (ModelBody::SegmentRates(m), oof)
                }
            };
            let calibration = Platt::fit(&oof, &lost);
            let p: Vec<f64> = oof.iter().map(|&z| sigmoid(calibration.a * z + calibration.b)).collect();
            (config.kind, body, calibration, Some(QualityMetrics::compute(&p, &lost)))
        };
        if dataset.schema.has_created && !dataset.schema.has_closed {
            warnings.push("the mapping has no close dates: deal age features are unavailable".into());
        }
        if !dataset.schema.has_created && !dataset.schema.has_closed {
            warnings.push(
                "the export has no dates: age, timing and as-of replay are unavailable; everything else works".into(),
            );
        }

        let mut model = TrainedModel {
            format: FORMAT.into(),
            version: String::new(),
            kind,
            as_of,
            window,
            n_train: rows.len(),
            n_won,
            n_lost,
            cold_start,
            features: encoder.features.iter().map(Feature::name).collect(),
            encoder,
            body,
            calibration,
            metrics,
            warnings,
        };
        model.version = model.content_version()?;
        Ok(model)
    }

    fn content_version(&self) -> Result<String, serde_json::Error> {
        let content = serde_json::to_vec(&(&self.kind, &self.encoder, &self.body, &self.calibration, &self.as_of))?;
        Ok(format!("{}-{:010x}", self.kind.as_str(), stable_hash(&content, 0) >> 24))
    }

    pub fn to_json(&self) -> Result<String, TrainError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(text: &str) -> Result<Self, TrainError> {
        #[derive(Deserialize)]
        struct Header {
            format: String,
        }
        let header: Header = serde_json::from_str(text)?;
        if header.format != FORMAT {
            return Err(TrainError::Format { found: header.format });
        }
        Ok(serde_json::from_str(text)?)
    }

    /// Calibrated log-odds contributions: fills `out`, returns the calibrated intercept.
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        let intercept = self.body.contributions(x, out);
        for c in out.iter_mut() {
            *c *= self.calibration.a;
        }
        self.calibration.a * intercept + self.calibration.b
    }

    /// P(loss) of a deal observed on `at`.
    pub fn p_loss(
        &self,
        bound: &Bound<'_>,
        deal: &crate::dataset::Deal,
        at: Option<NaiveDate>,
        x: &mut [f64],
        out: &mut [f64],
    ) -> f64 {
        bound.features_into(deal, at, x);
        let intercept = self.contributions(x, out);
        sigmoid(intercept + out.iter().sum::<f64>())
    }

    /// P(loss) for closed deals `rows` at their snapshot dates: how `eval` scores a test set,
    /// exactly as training rows were described.
    pub fn p_loss_at_snapshots(&self, dataset: &Dataset, rows: &[usize]) -> Vec<f64> {
        let n = self.encoder.features.len();
        let x = snapshot_matrix(&self.encoder, dataset, rows);
        let mut out = vec![0.0; n];
        x.chunks_exact(n.max(1))
            .take(rows.len())
            .map(|row| {
                let intercept = self.contributions(row, &mut out);
                sigmoid(intercept + out.iter().sum::<f64>())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_scale_and_shift() {
        // Outcomes drawn from sigmoid(2z - 1): Platt on z should find a ≈ 2, b ≈ -1.
        let mut state = 7u64;
        let mut rnd = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let z: Vec<f64> = (0..20_000).map(|_| rnd() * 4.0 - 2.0).collect();
        let y: Vec<bool> = z.iter().map(|&z| rnd() < sigmoid(2.0 * z - 1.0)).collect();
        let p = Platt::fit(&z, &y);
        assert!((p.a - 2.0).abs() < 0.1 && (p.b + 1.0).abs() < 0.1, "{p:?}");
    }

    #[test]
    fn platt_without_signal_falls_back_to_the_base_rate() {
        let z: Vec<f64> = (0..100).map(f64::from).collect();
        // Higher z, fewer losses: a negative slope, which would invert the ranking.
        let y: Vec<bool> = (0..100).map(|i| i < 30).collect();
        let p = Platt::fit(&z, &y);
        assert_eq!(p.a, 0.0);
        assert!((sigmoid(p.b) - 0.3).abs() < 1e-9);
    }

    #[test]
    fn model_kinds_parse() {
        assert_eq!(ModelKind::parse("Additive"), Some(ModelKind::Additive));
        assert_eq!(ModelKind::parse("segment-rates"), Some(ModelKind::SegmentRates));
        assert_eq!(ModelKind::parse("gbm"), None);
    }
}
