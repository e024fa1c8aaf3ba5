//! Sampling from the seeded stream: weighted picks, normal and Poisson draws.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Index of an item drawn with probability proportional to `weight`.
pub(super) fn pick<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut u = rng.random::<f64>() * total;
    for (i, item) in items.iter().enumerate() {
        u -= weight(item);
        if u < 0.0 {
            return i;
        }
    }
    // Only reachable through rounding in the subtraction.
    items.len() - 1
}

/// A standard normal draw (Box–Muller).
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 − u keeps the logarithm's argument in (0, 1].
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw (Knuth's product of uniforms; fine for small means).
pub(super) fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let mut k = 0;
    let mut product = rng.random::<f64>();
    while product > limit {
        k += 1;
        product *= rng.random::<f64>();
    }
    k
}
