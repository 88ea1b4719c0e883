//! The C–H relation layer by layer (issue 14, item 4): for each weight layer l, the Hessian
//! block H_ll (rows and columns of W_l, b_l) and the noise-covariance block C_ll (Eq. 4) of the
//! same parameters, Ĉ_ll = U_lᵀ C_ll U_l in the eigenbasis U_l of H_ll, the fit Ĉ_ii ∝ Ĥ_ii^γ_l,
//! the relative commutator ‖C_ll H_ll − H_ll C_ll‖_F / (‖C_ll‖_F ‖H_ll‖_F) and the fraction of
//! tr C_ll in the top-k eigen-directions of H_ll.
//!
//! A block of a symmetric matrix is what the layer "sees" when every other layer is frozen:
//! C_ll is exactly the SGD noise of the layer's own parameters, H_ll its own curvature.

use ndarray::{Array2, s};
use serde::Serialize;

use super::curvature::{
    PowerFit, fit_power, noise_factor, relative_commutator, spearman, symmetric_eigen, top_fraction,
};
use super::mlp::Mlp;

/// The k of the "fraction of tr C in the top-k eigen-directions of H" statistics.
pub const TOP_K: [usize; 4] = [1, 10, 100, 1000];

/// The C–H statistics of one parameter block (summary.json `hessian.layers[l]`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerAlignment {
    /// Layer index (0 = input → first hidden).
    pub layer: usize,
    /// Shape of W_l as (outputs, inputs).
    pub shape: (usize, usize),
    /// Parameters in the block (weights and biases).
    pub n_params: usize,
    /// Largest eigenvalue of H_ll.
    pub lambda_max: f64,
    /// tr H_ll.
    pub trace_h: f64,
    /// tr C_ll (minibatches of size `batch`, Eq. 4).
    pub trace_c: f64,
    /// The fit Ĉ_ii ∝ Ĥ_ii^γ over the directions with Ĥ_ii ≥ gamma_threshold·λ_max(H_ll).
    pub gamma_fit: Option<PowerFit>,
    /// Spearman rank correlation of diag Ĉ_ll and the eigenvalues over the same directions.
    pub spearman: Option<f64>,
    /// ‖C_ll H_ll − H_ll C_ll‖_F / (‖C_ll‖_F ‖H_ll‖_F).
    pub commutator: f64,
    /// (k, fraction of tr C_ll in the top k eigen-directions of H_ll) for k in [`TOP_K`], k ≤ P_l.
    pub trace_c_top_fraction: Vec<(usize, f64)>,
}

/// The spectra behind one [`LayerAlignment`] (for the figures).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpectrum {
    /// Layer index.
    pub layer: usize,
    /// Eigenvalues of H_ll, decreasing.
    pub eigenvalues: Vec<f64>,
    /// diag(U_lᵀ C_ll U_l) in the same order.
    pub c_hat_diag: Vec<f64>,
}

/// (k, fraction of tr C in the top k directions) for every k of [`TOP_K`] up to `n`.
pub fn top_fractions(c_hat_diag: &[f64]) -> Vec<(usize, f64)> {
    TOP_K
        .into_iter()
        .filter(|&k| k <= c_hat_diag.len())
        .map(|k| (k, top_fraction(c_hat_diag, k)))
        .collect()
}

/// The statistics of every layer of `mlp` from the full Hessian `h` (P × P, symmetric) and the
/// centred per-sample gradients `grads` (M × P, rows g_n − ∇L), for minibatches of size
/// `batch`. Layers run one after the other (each eigen-decomposition is sequential, so the
/// result does not depend on the thread count). `None` if an eigen-decomposition failed.
pub fn layer_alignment(
    mlp: &Mlp,
    h: &Array2<f64>,
    grads: &Array2<f64>,
    batch: usize,
    gamma_threshold: f64,
) -> Option<(Vec<LayerAlignment>, Vec<LayerSpectrum>)> {
    let m = grads.nrows();
    let factor = noise_factor(m, batch) / m as f64;
    let mut stats = Vec::with_capacity(mlp.n_layers());
    let mut spectra = Vec::with_capacity(mlp.n_layers());
    for l in 0..mlp.n_layers() {
        let r = mlp.layer_range(l);
        let block = h.slice(s![r.clone(), r.clone()]).to_owned();
        let (values, vectors) = symmetric_eigen(&block, true);
        let u = vectors.filter(|_| values.iter().all(|v| v.is_finite()))?;
        let proj = grads.slice(s![.., r.clone()]).dot(&u);
        let mut c_hat = proj.t().dot(&proj);
        c_hat *= factor;
        let diag: Vec<f64> = c_hat.diag().to_vec();
        let lambda_max = values[0];
        let sharp = values
            .iter()
            .take_while(|&&v| v >= gamma_threshold * lambda_max)
            .count();
        let sizes = mlp.sizes();
        stats.push(LayerAlignment {
            layer: l,
            shape: (sizes[l + 1], sizes[l]),
            n_params: r.len(),
            lambda_max,
            trace_h: values.iter().sum(),
            trace_c: diag.iter().sum(),
            gamma_fit: fit_power(&values[..sharp], &diag[..sharp]),
            spearman: spearman(&values[..sharp], &diag[..sharp]),
            commutator: relative_commutator(&c_hat, &values),
            trace_c_top_fraction: top_fractions(&diag),
        });
        spectra.push(LayerSpectrum {
            layer: l,
            eigenvalues: values,
            c_hat_diag: diag,
        });
    }
    Some((stats, spectra))
}
