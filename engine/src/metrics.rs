//! Model-quality measures (issue: model report). The positive class is a *loss*: `p` is
//! P(loss), the quantity the risk score is built from.

use serde::{Deserialize, Serialize};

use crate::domain::{RiskCategory, risk_score};

/// Area under the ROC curve by the Mann-Whitney statistic, ties counted half.
/// `None` when either class is absent.
pub fn roc_auc(p: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&y| y).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_unstable_by(|&a, &b| p[a].total_cmp(&p[b]));
    // Sum of the (average) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * order[i..=j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j + 1;
    }
    let (np, nn) = (n_pos as f64, n_neg as f64);
    Some((rank_sum - np * (np + 1.0) / 2.0) / (np * nn))
}

/// 95% interval for an AUC (Hanley & McNeil 1982).
pub fn auc_interval(auc: f64, n_pos: usize, n_neg: usize) -> (f64, f64) {
    let (np, nn) = (n_pos as f64, n_neg as f64);
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    let var = (auc * (1.0 - auc) + (np - 1.0) * (q1 - auc * auc) + (nn - 1.0) * (q2 - auc * auc)) / (np * nn);
    let se = var.max(0.0).sqrt();
    ((auc - 1.96 * se).max(0.0), (auc + 1.96 * se).min(1.0))
}

pub fn brier(p: &[f64], positive: &[bool]) -> f64 {
    mean(p.iter().zip(positive).map(|(&p, &y)| (p - f64::from(u8::from(y))).powi(2)))
}

pub fn log_loss(p: &[f64], positive: &[bool]) -> f64 {
    mean(p.iter().zip(positive).map(|(&p, &y)| {
        let p = p.clamp(1e-15, 1.0 - 1e-15);
        if y { -p.ln() } else { -(1.0 - p).ln() }
    }))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReliabilityBin {
    pub from: f64,
    pub to: f64,
    pub n: usize,
    pub mean_predicted: f64,
    pub observed: f64,
}

/// Expected calibration error over `bins` equal-width bins of predicted probability, with the
/// bins themselves.
pub fn calibration(p: &[f64], positive: &[bool], bins: usize) -> (f64, Vec<ReliabilityBin>) {
    let mut sums = vec![(0usize, 0.0f64, 0.0f64); bins];
    for (&p, &y) in p.iter().zip(positive) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += f64::from(u8::from(y));
    }
    let n = p.len().max(1) as f64;
    let mut ece = 0.0;
    let mut out = Vec::new();
    for (b, &(count, sp, sy)) in sums.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let (mp, my) = (sp / count as f64, sy / count as f64);
        ece += count as f64 / n * (mp - my).abs();
        out.push(ReliabilityBin {
            from: b as f64 / bins as f64,
            to: (b + 1) as f64 / bins as f64,
            n: count,
            mean_predicted: mp,
            observed: my,
        });
    }
    (ece, out)
}

/// How much the ranking can be trusted, in words a revenue leader can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Signal {
    /// The 95% interval of the AUC reaches 0.5: no evidence the model ranks better than chance.
    None,
    Weak,
    Moderate,
    Strong,
}

impl Signal {
    pub fn from_auc(auc: f64, interval: (f64, f64)) -> Self {
        if interval.0 <= 0.5 {
            Signal::None
        } else if auc < 0.6 {
            Signal::Weak
        } else if auc < 0.75 {
            Signal::Moderate
        } else {
            Signal::Strong
        }
    }

    pub fn sentence(self) -> &'static str {
        match self {
            Signal::None => {
                "No real signal: the model ranks deals no better than chance on this data. Scores are calibrated base rates; do not use them to prioritise deals."
            }
            Signal::Weak => {
                "Weak signal: the model ranks deals only slightly better than chance. Treat scores as rough guidance."
            }
            Signal::Moderate => {
                "Moderate signal: scores separate risky deals from safe ones usefully, with many exceptions."
            }
            Signal::Strong => "Strong signal: scores separate risky deals from safe ones well.",
        }
    }
}

/// The quality report of a set of loss probabilities against known outcomes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityMetrics {
    pub n: usize,
    pub n_lost: usize,
    pub roc_auc: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<f64>>))]
    pub roc_auc_interval: Option<(f64, f64)>,
    pub brier: f64,
    pub log_loss: f64,
    /// Expected calibration error, 10 equal-width bins.
    pub calibration_error: f64,
    /// Of deals scored high or critical (risk ≥ 51), the share that were lost.
    pub precision_high_risk: Option<f64>,
    /// Of lost deals, the share scored high or critical.
    pub recall_high_risk: Option<f64>,
    /// Loss rate among the riskiest 10% over the overall loss rate.
    pub top_decile_lift: Option<f64>,
    pub signal: Option<Signal>,
    pub reliability: Vec<ReliabilityBin>,
}

impl QualityMetrics {
    pub fn compute(p_loss: &[f64], lost: &[bool]) -> Self {
        let n = p_loss.len();
        let n_lost = lost.iter().filter(|&&y| y).count();
        let roc_auc = roc_auc(p_loss, lost);
        let roc_auc_interval = roc_auc.map(|a| auc_interval(a, n_lost, n - n_lost));
        let (calibration_error, reliability) = calibration(p_loss, lost, 10);
        let flagged: Vec<bool> =
            p_loss.iter().map(|&p| RiskCategory::from_score(risk_score(p)) >= RiskCategory::High).collect();
        let tp = flagged.iter().zip(lost).filter(|(f, y)| **f && **y).count();
        let n_flagged = flagged.iter().filter(|&&f| f).count();
        let precision_high_risk = (n_flagged > 0).then(|| tp as f64 / n_flagged as f64);
        let recall_high_risk = (n_lost > 0).then(|| tp as f64 / n_lost as f64);
        let top_decile_lift = (n >= 10 && n_lost > 0).then(|| {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| p_loss[b].total_cmp(&p_loss[a]).then(a.cmp(&b)));
            let k = n.div_ceil(10);
            let top = order[..k].iter().filter(|&&i| lost[i]).count() as f64 / k as f64;
            top / (n_lost as f64 / n as f64)
        });
        QualityMetrics {
            n,
            n_lost,
            roc_auc,
            roc_auc_interval,
            brier: brier(p_loss, lost),
            log_loss: log_loss(p_loss, lost),
            calibration_error,
            precision_high_risk,
            recall_high_risk,
            top_decile_lift,
            signal: roc_auc.zip(roc_auc_interval).map(|(a, i)| Signal::from_auc(a, i)),
            reliability,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_reversed_and_tied_rankings() {
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &y), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &y), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &y), Some(0.5));
        // One positive tied with one negative: 3 of 4 pairs right, one half.
        assert_eq!(roc_auc(&[0.1, 0.5, 0.5, 0.9], &y), Some(0.875));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn brier_log_loss_and_calibration_by_hand() {
        let p = [0.2, 0.8];
        let y = [false, true];
        assert!((brier(&p, &y) - 0.04).abs() < 1e-12);
        assert!((log_loss(&p, &y) - -(0.8f64.ln())).abs() < 1e-12);
        // Ten deals predicted 0.3 of which 3 lost: perfectly calibrated.
        let p = [0.3; 10];
        let y = [true, true, true, false, false, false, false, false, false, false];
        assert!(calibration(&p, &y, 10).0 < 1e-12);
        // Predicted 0.9, never lost: error 0.9.
        assert!((calibration(&[0.9; 4], &[false; 4], 10).0 - 0.9).abs() < 1e-12);
    }

    #[test]
    fn high_risk_precision_recall_and_lift() {
        // 20 deals: the 4 scored 0.9 are all lost, 2 more losses among the rest.
        let mut p = vec![0.9; 4];
        p.extend([0.1; 16]);
        let mut y = vec![true; 4];
        y.extend([true, true]);
        y.extend([false; 14]);
        let m = QualityMetrics::compute(&p, &y);
        assert_eq!(m.precision_high_risk, Some(1.0));
        assert!((m.recall_high_risk.unwrap() - 4.0 / 6.0).abs() < 1e-12);
        // Top decile = 2 deals, both lost; base loss rate 6/20.
        assert!((m.top_decile_lift.unwrap() - 1.0 / 0.3).abs() < 1e-9);
    }

    #[test]
    fn signal_verdicts() {
        assert_eq!(Signal::from_auc(0.51, auc_interval(0.51, 1000, 1000)), Signal::None);
        assert_eq!(Signal::from_auc(0.58, auc_interval(0.58, 2000, 2000)), Signal::Weak);
        assert_eq!(Signal::from_auc(0.7, auc_interval(0.7, 500, 500)), Signal::Moderate);
        assert_eq!(Signal::from_auc(0.85, auc_interval(0.85, 500, 500)), Signal::Strong);
        let (lo, hi) = auc_interval(0.7, 100, 100);
        assert!(lo < 0.7 && hi > 0.7 && hi - lo < 0.2);
    }
}
