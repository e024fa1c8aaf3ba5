//! Tests of `additive`.

use super::*;

#[test]
fn monotone_projection_pools_violators() {
    let shape = [5.0, 0.0, 0.0, 0.0];
    let hist = [(0.0, 0.0, 9.0), (0.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 0.0, 2.0)];
    let mut delta = [1.0, 3.0, 1.0, 2.0];
    project_monotone(&shape, &hist, 1, &mut delta);
    // 3, 1, 2 is not increasing: the last three pool to (3·1 + 1·1 + 2·2) / 4 = 2.
    assert_eq!(delta, [1.0, 2.0, 2.0, 2.0]);
    let mut delta = [0.0, 1.0, 2.0, 3.0];
    project_monotone(&shape, &hist, -1, &mut delta);
    assert_eq!(delta, [0.0, 2.25, 2.25, 2.25]);
}

#[test]
fn edges_cut_between_distinct_values_or_at_quantiles() {
    assert_eq!(edges_for(&[1.0, 2.0, 2.0, 4.0, f64::NAN], 32), vec![1.5, 3.0]);
    let many: Vec<f64> = (0..1000).map(f64::from).collect();
    let e = edges_for(&many, 10);
    assert_eq!(e.len(), 9);
    assert!(e.windows(2).all(|w| w[0] < w[1]));
    let t = Term { edges: vec![1.5, 3.0], values: vec![9.0, 0.0, 1.0, 2.0] };
    assert_eq!([t.bin(f64::NAN), t.bin(1.0), t.bin(1.5), t.bin(2.0), t.bin(99.0)], [0, 1, 1, 2, 3]);
}

#[test]
fn learns_a_u_shape_and_a_step_exactly_decomposed() {
    // Loss odds rise at both ends of x0 and when x1 is high; x2 is noise.
    let n = 6000;
    let mut x = Vec::with_capacity(n * 3);
    let mut y = Vec::with_capacity(n);
    let mut state = 12345u64;
    let mut rnd = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..n {
        let (a, b, c) = (rnd() * 4.0 - 2.0, rnd(), rnd());
        let z = -1.0 + 1.2 * a * a + if b > 0.5 { 1.0 } else { 0.0 };
        x.extend([a, b, c]);
        y.push(rnd() < sigmoid(z));
    }
    let fold: Vec<usize> = (0..n).map(|r| r % 3).collect();
    let training = Training { x: &x, n_features: 3, lost: &y, fold: &fold, k: 3 };
    let (model, oof) = fit(&training, &[0, 0, 0], &Params::default(), 1);
    let at = |a: f64, b: f64| {
        let mut out = [0.0; 3];
        let icpt = model.contributions(&[a, b, 0.5], &mut out);
        (icpt, out)
    };
    let (_, mid) = at(0.0, 0.2);
    let (_, left) = at(-1.8, 0.2);
    let (_, right) = at(1.8, 0.2);
    assert!(left[0] > mid[0] + 1.5 && right[0] > mid[0] + 1.5, "U shape: {left:?} {mid:?} {right:?}");
    let (_, high) = at(0.0, 0.9);
    assert!((high[1] - mid[1] - 1.0).abs() < 0.35, "step of 1.0 in x1: {}", high[1] - mid[1]);
    let noise_range = model.terms[2].values[1..].iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(noise_range < 0.25, "noise feature stays near zero: {noise_range}");
    // Out-of-fold predictions rank well.
    let p: Vec<f64> = oof.iter().map(|&z| sigmoid(z)).collect();
    assert!(crate::metrics::roc_auc(&p, &y).unwrap() > 0.7);
}
