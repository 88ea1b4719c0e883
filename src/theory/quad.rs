//! Quadrature along x: values on the nodes and the midpoints of a list of points, and
//! cumulative Simpson integrals anchored at x = 0.
//!
//! The points may be in any order (the integral between neighbours is signed); they are the
//! cell centres of an FP grid in practice. Evaluation is parallel (rayon) and allocates one
//! vector per call.

use rayon::prelude::*;

/// A quantity evaluated at x = 0, at the node nearest 0 and half-way to it, at every node and at
/// every midpoint between neighbouring nodes.
pub struct Staggered<T> {
    /// Value at x = 0.
    pub zero: T,
    /// Value half-way between 0 and the node nearest 0.
    pub anchor_half: T,
    /// Values at the nodes.
    pub nodes: Vec<T>,
    /// Values at the midpoints (len = nodes − 1).
    pub mids: Vec<T>,
    /// Index of the node nearest 0.
    pub anchor: usize,
}

/// Evaluate `f` at the points a [`Staggered`] needs (`xs` must not be empty).
pub fn evaluate<T, F>(xs: &[f64], f: F) -> Staggered<T>
where
    T: Send,
    F: Fn(f64) -> T + Sync,
{
    let anchor = nearest_to_zero(xs);
    let n = xs.len();
    let mut points = Vec::with_capacity(2 * n + 1);
    points.extend_from_slice(xs);
    points.extend(xs.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    points.push(0.0);
    points.push(0.5 * xs[anchor]);
    let mut values: Vec<T> = points.par_iter().map(|&x| f(x)).collect();
    let anchor_half = values.pop().expect("pushed above");
    let zero = values.pop().expect("pushed above");
    let mids = values.split_off(n);
    Staggered {
        zero,
        anchor_half,
        nodes: values,
        mids,
        anchor,
    }
}

/// Index of the point nearest 0.
pub fn nearest_to_zero(xs: &[f64]) -> usize {
    xs.iter()
        .enumerate()
        .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map_or(0, |(i, _)| i)
}

/// Φ(x_i) = ∫₀^{x_i} g dx by Simpson's rule on each interval (nodes and midpoint), given the
/// integrand `g` read from a [`Staggered`].
pub fn cumulative_from_zero<T>(xs: &[f64], s: &Staggered<T>, g: impl Fn(&T) -> f64) -> Vec<f64> {
    let n = xs.len();
    let mut phi = vec![0.0; n];
    let j0 = s.anchor;
    phi[j0] = xs[j0] / 6.0 * (g(&s.zero) + 4.0 * g(&s.anchor_half) + g(&s.nodes[j0]));
    for i in j0 + 1..n {
        let h = xs[i] - xs[i - 1];
        phi[i] =
            phi[i - 1] + h / 6.0 * (g(&s.nodes[i - 1]) + 4.0 * g(&s.mids[i - 1]) + g(&s.nodes[i]));
    }
    for i in (0..j0).rev() {
        let h = xs[i] - xs[i + 1];
        phi[i] = phi[i + 1] + h / 6.0 * (g(&s.nodes[i + 1]) + 4.0 * g(&s.mids[i]) + g(&s.nodes[i]));
    }
    phi
}

/// Turn a log density on the points into a density with Σ p·dx = 1, dx = the (uniform) spacing.
///
/// Subtracts the maximum before exponentiating (no underflow/overflow). A single point gets
/// p = 1/1 (dx undefined).
pub fn normalise_log_density(xs: &[f64], log_p: &[f64]) -> Vec<f64> {
    let max = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut p: Vec<f64> = log_p.iter().map(|&l| (l - max).exp()).collect();
    let dx = uniform_spacing(xs);
    let mass: f64 = p.iter().sum::<f64>() * dx;
    if mass > 0.0 && mass.is_finite() {
        p.iter_mut().for_each(|v| *v /= mass);
    }
    p
}

/// The spacing of uniform points, (x_last − x_first)/(n − 1); 1 for fewer than two points.
pub fn uniform_spacing(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 1.0;
    }
    ((xs[xs.len() - 1] - xs[0]) / (xs.len() - 1) as f64).abs()
}

/// Cell centres of `cells` uniform cells on [min, max].
pub fn cell_centres(min: f64, max: f64, cells: usize) -> Vec<f64> {
    let dx = (max - min) / cells as f64;
    (0..cells).map(|i| min + (i as f64 + 0.5) * dx).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_simpson_integrates_a_cubic_exactly() {
        let xs = cell_centres(-1.3, 2.1, 17);
        let s = evaluate(&xs, |x| 3.0 * x * x - 2.0 * x + 0.5);
        let phi = cumulative_from_zero(&xs, &s, |&v| v);
        for (x, p) in xs.iter().zip(&phi) {
            let exact = x * x * x - x * x + 0.5 * x;
            assert!((p - exact).abs() < 1e-13, "{x}: {p} vs {exact}");
        }
    }
}
