//! The high-dimensional valley (Eq. 5): the flatness-dependent SGD loss of Eq. (15) and the
//! noise-weighted flatness F̂ of Eq. (16), as pure functions of the sharp-direction curvatures
//! λ^(i)(x) (at the point x) and λ^(i)(0) (at the global minimum).
//!
//! Δ^(i) ≈ Δ_S λ^(i)(0)² is the noise strength of sharp variable i, Δ̄ their mean, and
//! F^(i)(x) = λ^(i)(x)^(−1/2). Every function returns `None` for empty or mismatched slices or a
//! curvature that is not finite and > 0.

fn valid(l: &[f64]) -> bool {
    !l.is_empty() && l.iter().all(|&v| v > 0.0 && v.is_finite())
}

/// Average flatness F(x) = Π_i F^(i)(x)^(1/N_S) (Eq. 6).
pub fn flatness_geometric(lambdas_at_x: &[f64]) -> Option<f64> {
    if !valid(lambdas_at_x) {
        return None;
    }
    let n = lambdas_at_x.len() as f64;
    let mean_ln = lambdas_at_x.iter().map(|l| l.ln()).sum::<f64>() / n;
    Some((-0.5 * mean_ln).exp())
}

/// The relative noise strengths γ_i = Δ^(i)/Σ_j Δ^(j) = λ^(i)(0)²/Σ_j λ^(j)(0)² (Eq. 16).
pub fn noise_weights(lambdas_at_0: &[f64]) -> Option<Vec<f64>> {
    if !valid(lambdas_at_0) {
        return None;
    }
    let total: f64 = lambdas_at_0.iter().map(|l| l * l).sum();
    Some(lambdas_at_0.iter().map(|l| l * l / total).collect())
}

/// Noise-weighted flatness F̂(x) = Π_i F^(i)(x)^(γ_i) (Eq. 16).
pub fn flatness_weighted(lambdas_at_x: &[f64], lambdas_at_0: &[f64]) -> Option<f64> {
    if lambdas_at_x.len() != lambdas_at_0.len() || !valid(lambdas_at_x) {
        return None;
    }
    let gamma = noise_weights(lambdas_at_0)?;
    let ln_f: f64 = lambdas_at_x
        .iter()
        .zip(&gamma)
        .map(|(l, g)| -0.5 * g * l.ln())
        .sum();
    Some(ln_f.exp())
}

/// L_SGD,F(x) ≈ Σ_i (Δ̄ − κ Δ^(i)) ln F^(i)(x) (Eq. 15), Δ^(i) = Δ_S λ^(i)(0)².
pub fn l_sgd_flat(
    lambdas_at_x: &[f64],
    lambdas_at_0: &[f64],
    delta_s: f64,
    kappa: f64,
) -> Option<f64> {
    if lambdas_at_x.len() != lambdas_at_0.len()
        || !valid(lambdas_at_x)
        || !valid(lambdas_at_0)
        || !delta_s.is_finite()
        || !kappa.is_finite()
    {
        return None;
    }
    let deltas: Vec<f64> = lambdas_at_0.iter().map(|l| delta_s * l * l).collect();
    let mean = deltas.iter().sum::<f64>() / deltas.len() as f64;
    Some(
        lambdas_at_x
            .iter()
            .zip(&deltas)
            .map(|(l, d)| (mean - kappa * d) * (-0.5 * l.ln()))
            .sum(),
    )
}
