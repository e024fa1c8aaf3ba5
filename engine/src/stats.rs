//! Small numeric helpers shared by features, models and metrics.

/// Log-odds, with probabilities clamped away from 0 and 1 so the result stays finite.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Median of the finite values; `None` when there are none.
pub fn median(values: &mut [f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// Linear-interpolated quantile of the finite values (sorts `values` in place).
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    let finite: &[f64] = {
        let start = values.iter().position(|v| v.is_finite())?;
        let end = values.iter().rposition(|v| v.is_finite())? + 1;
        &values[start..end]
    };
    let pos = q.clamp(0.0, 1.0) * (finite.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(finite[lo] + (finite[hi] - finite[lo]) * (pos - lo as f64))
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, fixed across Rust releases), used to assign
/// deals to folds and snapshot points reproducibly.
pub fn stable_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Final avalanche (from SplitMix64) so nearby ids spread over all buckets.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A uniform number in [0, 1) derived from a stable hash.
pub fn unit_hash(bytes: &[u8], seed: u64) -> f64 {
    (stable_hash(bytes, seed) >> 11) as f64 / (1u64 << 53) as f64
}

/// Counts of wins among closed deals.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WinCount {
    pub won: f64,
    pub n: f64,
}

impl WinCount {
    pub fn add(&mut self, won: bool) {
        self.won += f64::from(u8::from(won));
        self.n += 1.0;
    }

    pub fn rate(self) -> Option<f64> {
        (self.n > 0.0).then(|| self.won / self.n)
    }

    pub fn minus(self, other: WinCount) -> WinCount {
        WinCount { won: (self.won - other.won).max(0.0), n: (self.n - other.n).max(0.0) }
    }
}

/// Empirical-Bayes prior strength for segment win rates (beta-binomial, method of moments).
///
/// Segments' observed rates vary for two reasons: real differences (variance `tau2`) and
/// sampling noise (`p(1-p)/n`). The prior Beta(m·p, m·(1-p)) has variance p(1-p)/(m+1), so
/// `m = p(1-p)/tau2 - 1`. When segments differ no more than noise explains, `tau2` is ~0 and `m`
/// is large: every segment is shrunk to the parent rate, which is the honest answer.
pub fn prior_strength(counts: &[WinCount], parent_rate: f64) -> f64 {
    let groups: Vec<(WinCount, f64)> = counts.iter().map(|&c| (c, parent_rate)).collect();
    prior_strength_with_parents(&groups)
}

/// [`prior_strength`] where each group has its own parent rate (for interactions, the rate
/// expected from the two parents' rates).
pub fn prior_strength_with_parents(groups: &[(WinCount, f64)]) -> f64 {
    const MIN_M: f64 = 2.0;
    const MAX_M: f64 = 5_000.0;
    let groups: Vec<&(WinCount, f64)> = groups.iter().filter(|(c, _)| c.n >= 1.0).collect();
    let total: f64 = groups.iter().map(|(c, _)| c.n).sum();
    if groups.len() < 2 || total <= 0.0 {
        return MAX_M;
    }
    let mut var_between = 0.0;
    let mut noise = 0.0;
    let mut scale = 0.0;
    for (c, parent) in &groups {
        let p = parent.clamp(0.01, 0.99);
        var_between += c.n * (c.won / c.n - p).powi(2);
        noise += p * (1.0 - p);
        scale += c.n * p * (1.0 - p);
    }
    let tau2 = (var_between - noise) / total;
    if tau2 <= 1e-9 {
        return MAX_M;
    }
    (scale / total / tau2 - 1.0).clamp(MIN_M, MAX_M)
}

/// The posterior-mean rate of a segment shrunk toward its parent with prior strength `m`.
pub fn shrunk_rate(count: WinCount, parent_rate: f64, m: f64) -> f64 {
    (count.won + m * parent_rate) / (count.n + m)
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 erf; error below 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// Two-sided p-value of the difference between two proportions `x1/n1` and `x2/n2`: the pooled
/// z-test with Yates' continuity correction, which errs on the side of "no change" for small
/// samples. 1 when either sample is empty or both are all wins or all losses.
pub fn two_proportion_p(x1: f64, n1: f64, x2: f64, n2: f64) -> f64 {
    if n1 <= 0.0 || n2 <= 0.0 {
        return 1.0;
    }
    let pooled = (x1 + x2) / (n1 + n2);
    let var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if var <= 0.0 {
        return 1.0;
    }
    let diff = (x1 / n1 - x2 / n2).abs() - 0.5 * (1.0 / n1 + 1.0 / n2);
    if diff <= 0.0 {
        return 1.0;
    }
    (2.0 * (1.0 - normal_cdf(diff / var.sqrt()))).clamp(0.0, 1.0)
}

/// Wilson score interval for a proportion `x/n` at normal quantile `z` (1.96 for 95%).
pub fn wilson_interval(x: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = x / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval (his method 10) for the difference `x1/n1 − x2/n2`, built
/// from the two Wilson intervals; unlike the Wald interval it stays inside [−1, 1] and keeps its
/// coverage for small samples and rates near 0 or 1.
pub fn difference_interval(x1: f64, n1: f64, x2: f64, n2: f64, z: f64) -> (f64, f64) {
    let (p1, p2) = (if n1 > 0.0 { x1 / n1 } else { 0.0 }, if n2 > 0.0 { x2 / n2 } else { 0.0 });
    let (l1, u1) = wilson_interval(x1, n1, z);
    let (l2, u2) = wilson_interval(x2, n2, z);
    let d = p1 - p2;
    (d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(), d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt())
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the input order: a finding with q ≤ α is
/// a discovery at false-discovery rate α across everything in `p_values`.
pub fn bh_adjust(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut q = vec![1.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p_values[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.clamp(0.0, 1.0);
    }
    q
}

/// Median and the median absolute deviation scaled to match a normal standard deviation
/// (× 1.4826); `None` for fewer than three finite values.
pub fn median_mad(values: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 3 {
        return None;
    }
    let m = median(&mut v)?;
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    Some((m, 1.4826 * median(&mut dev)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_proportion_test_matches_hand_computation() {
        // 30/100 vs 45/100: pooled 0.375, se = sqrt(.375·.625·.02) = 0.068465, corrected
        // |d| = 0.15 − 0.01 = 0.14, z = 2.0448, two-sided p = 0.0409.
        let p = two_proportion_p(30.0, 100.0, 45.0, 100.0);
        assert!((p - 0.0409).abs() < 5e-4, "{p}");
        assert_eq!(two_proportion_p(5.0, 10.0, 5.0, 10.0), 1.0);
        assert_eq!(two_proportion_p(0.0, 10.0, 0.0, 20.0), 1.0);
        assert_eq!(two_proportion_p(1.0, 0.0, 0.0, 20.0), 1.0);
    }

    #[test]
    fn wilson_and_newcombe_intervals_match_published_values() {
        // Wilson for 56/70 by hand: centre (0.8 + z²/140) / (1 + z²/70) = 0.78440, half-width
        // z / (1 + z²/70) · √(0.8·0.2/70 + z²/19600) = 0.09256 → 0.6918 to 0.8770.
        let (l, u) = wilson_interval(56.0, 70.0, 1.959_964);
        assert!((l - 0.6918).abs() < 1e-3 && (u - 0.8770).abs() < 1e-3, "{l} {u}");
        // Newcombe (1998), table II example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
        let (l, u) = difference_interval(56.0, 70.0, 48.0, 80.0, 1.959_964);
        assert!((l - 0.0524).abs() < 1e-3 && (u - 0.3339).abs() < 1e-3, "{l} {u}");
    }

    #[test]
    fn benjamini_hochberg_adjusts_like_the_textbook() {
        // p = 0.01, 0.04, 0.03, 0.005 (m = 4): sorted 0.005, 0.01, 0.03, 0.04 → 0.02, 0.02,
        // 0.04, 0.04 after the running minimum from the top.
        let q = bh_adjust(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.02, 0.04, 0.04, 0.02];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        assert!(bh_adjust(&[]).is_empty());
        assert_eq!(bh_adjust(&[0.9, 1.0]), vec![1.0, 1.0]);
    }

    #[test]
    fn median_mad_is_robust_to_one_outlier() {
        let (m, s) = median_mad(&[10.0, 11.0, 9.0, 10.0, 12.0, 8.0, 1000.0]).expect("enough values");
        assert_eq!(m, 10.0);
        assert!((s - 1.4826).abs() < 1e-9, "{s}");
        assert!(median_mad(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn logit_and_sigmoid_are_inverse() {
        for p in [0.01, 0.2, 0.5, 0.77, 0.99] {
            assert!((sigmoid(logit(p)) - p).abs() < 1e-12);
        }
        assert!(logit(0.0).is_finite() && logit(1.0).is_finite());
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
    }

    #[test]
    fn quantiles_ignore_non_finite_values() {
        let mut v = vec![5.0, f64::NAN, 1.0, 3.0, f64::INFINITY];
        assert_eq!(median(&mut v), Some(3.0));
        assert_eq!(quantile(&mut [1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(median(&mut [f64::NAN]), None);
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn stable_hash_is_fixed_and_spread() {
        assert_eq!(stable_hash(b"D00001", 0), stable_hash(b"D00001", 0));
        assert_ne!(stable_hash(b"D00001", 0), stable_hash(b"D00001", 1));
        let mut buckets = [0usize; 5];
        for i in 0..10_000 {
            buckets[(stable_hash(format!("D{i:05}").as_bytes(), 7) % 5) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| (1_800..2_200).contains(&b)), "{buckets:?}");
    }

    #[test]
    fn segments_that_differ_only_by_noise_are_shrunk_hard() {
        // Four segments of 250 deals at exactly the parent rate: no real difference.
        let flat = vec![WinCount { won: 112.0, n: 250.0 }; 4];
        assert!(prior_strength(&flat, 0.45) > 1_000.0);
        // Real differences (30% vs 60%) give a modest prior that lets the data speak.
        let spread = [WinCount { won: 75.0, n: 250.0 }, WinCount { won: 150.0, n: 250.0 }];
        let m = prior_strength(&spread, 0.45);
        assert!((2.0..100.0).contains(&m), "m = {m}");
        let tiny = WinCount { won: 3.0, n: 3.0 };
        assert!(shrunk_rate(tiny, 0.45, m) < 0.8, "three wins out of three must not read as 100%");
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_3).abs() < 1e-6);
    }
}
