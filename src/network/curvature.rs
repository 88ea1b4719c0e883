//! Curvature of the training loss: the dense Hessian from exact Hessian-vector products, its
//! eigen-decomposition (faer), top eigenvalues by Lanczos, the SGD noise covariance C (Eq. 4)
//! in the eigenbasis of H, the flatness F = Π_{i≤k} Ĥ_ii^(−1/2k) (Fig. 3 caption), and the
//! statistics of the C–H alignment (Spearman rank correlation, power-law fit C_ii ∝ H_ii^γ).
//!
//! Layout: dense matrices are ndarray `Array2<f64>`, row-major; eigenvectors are the columns
//! of U, ordered by decreasing eigenvalue.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::{Mat, Par};
use ndarray::{Array2, Axis, s};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

use super::data::Batch;
use super::mlp::Mlp;

/// Columns of U per parallel block when projecting gradients on the eigenbasis.
const PROJECTION_BLOCK: usize = 64;

/// The dense Hessian H = ∇∇L (column j = H e_j, exact R-operator), symmetrised, and the
/// relative asymmetry ‖H − Hᵀ‖_F / ‖H‖_F of the raw columns.
pub fn dense_hessian(mlp: &Mlp, theta: &[f64], data: Batch) -> (Array2<f64>, f64) {
    let p = mlp.n_params();
    let columns: Vec<Vec<f64>> = (0..p)
        .into_par_iter()
        .map(|j| {
            let mut e = vec![0.0; p];
            e[j] = 1.0;
            let mut col = vec![0.0; p];
            mlp.hvp(theta, data, &e, &mut col, false);
            col
        })
        .collect();
    let mut h = Array2::zeros((p, p));
    for (j, col) in columns.iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            h[[i, j]] = v;
        }
    }
    let (mut diff, mut norm) = (0.0, 0.0);
    for i in 0..p {
        for j in 0..p {
            diff += (h[[i, j]] - h[[j, i]]).powi(2);
            norm += h[[i, j]].powi(2);
        }
    }
    // A NaN entry gives a NaN asymmetry (a zero Hessian is exactly symmetric).
    let asymmetry = if norm == 0.0 {
        0.0
    } else {
        (diff / norm).sqrt()
    };
    let ht = h.t().to_owned();
    h += &ht;
    h *= 0.5;
    (h, asymmetry)
}

/// Eigen-decomposition of a symmetric matrix, sequential (bit-identical for any thread
/// count): eigenvalues in decreasing order and, if asked, the eigenvectors as columns of U.
pub fn symmetric_eigen(a: &Array2<f64>, vectors: bool) -> (Vec<f64>, Option<Array2<f64>>) {
    let n = a.nrows();
    let m = Mat::<f64>::from_fn(n, n, |i, j| a[[i, j]]);
    let mut values = faer::diag::Diag::<f64>::zeros(n);
    let mut u = vectors.then(|| Mat::<f64>::zeros(n, n));
    let compute = if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    };
    let par = Par::Seq;
    let mut buf = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        compute,
        par,
        Default::default(),
    ));
    let ok = evd::self_adjoint_evd(
        m.as_ref(),
        values.as_mut(),
        u.as_mut().map(|u| u.as_mut()),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    );
    if ok.is_err() {
        return (vec![f64::NAN; n], None);
    }
    // faer returns non-decreasing order; reverse.
    let vals: Vec<f64> = (0..n).rev().map(|k| values.column_vector()[k]).collect();
    let vecs = u.map(|u| Array2::from_shape_fn((n, n), |(i, k)| u[(i, n - 1 - k)]));
    (vals, vecs)
}

/// The `k` largest eigenvalues (decreasing) of a symmetric operator `apply(v, out)` of
/// dimension `n`, by Lanczos with full re-orthogonalisation over `steps` iterations from a
/// seeded random start.
pub fn lanczos_top(
    n: usize,
    k: usize,
    steps: usize,
    seed: u64,
    mut apply: impl FnMut(&[f64], &mut [f64]),
) -> Vec<f64> {
    let steps = steps.min(n).max(k.min(n));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut q: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    normalise(&mut q);
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(steps);
    let (mut alpha, mut beta) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    let mut w = vec![0.0; n];
    for j in 0..steps {
        apply(&q, &mut w);
        let a = dot(&q, &w);
        alpha.push(a);
        basis.push(q.clone());
        // w ← w − a q − β_{j−1} q_{j−1}, then full re-orthogonalisation (twice).
        for _ in 0..2 {
            for b in &basis {
                let c = dot(b, &w);
                w.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
            }
        }
        let norm = dot(&w, &w).sqrt();
        if j + 1 == steps || norm <= 1e-12 * a.abs().max(1e-300) {
            break;
        }
        beta.push(norm);
        q = w.iter().map(|x| x / norm).collect();
    }
    let m = alpha.len();
    let mut t = Array2::zeros((m, m));
    for i in 0..m {
        t[[i, i]] = alpha[i];
        if i + 1 < m {
            t[[i, i + 1]] = beta[i];
            t[[i + 1, i]] = beta[i];
        }
    }
    let (vals, _) = symmetric_eigen(&t, false);
    vals.into_iter().take(k).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalise(v: &mut [f64]) {
    let n = dot(v, v).sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// Largest relative difference |a_i − b_i| / |b_i| over the pairs (0 for none); NaN when a
/// pair gives NaN, so that a failed check never reads as agreement.
pub fn max_rel_error(approx: &[f64], exact: &[f64]) -> f64 {
    approx
        .iter()
        .zip(exact)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, max_nan)
}

/// The larger of `a` and `b`, or NaN if either is NaN (`f64::max` drops a NaN).
fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Flatness F = Π_{i=1..k} λ_i^(−1/(2k)) of the k largest eigenvalues (Fig. 3 caption, k = 10);
/// `None` if one of them is not positive.
pub fn flatness(top: &[f64]) -> Option<f64> {
    if top.is_empty() || top.iter().any(|&l| !(l > 0.0 && l.is_finite())) {
        return None;
    }
    let k = top.len() as f64;
    Some((-top.iter().map(|l| l.ln()).sum::<f64>() / (2.0 * k)).exp())
}

/// diag(Ĉ) = diag(Uᵀ C U) of the SGD noise covariance of minibatches of size `batch` drawn
/// without replacement (Eq. 4): C = (M − B)/(B (M − 1)) · Σ, with Σ the covariance of the
/// per-sample gradients over the training set. Exact (no sampling of minibatches).
pub fn noise_diag_in_eigenbasis(
    mlp: &Mlp,
    theta: &[f64],
    data: Batch,
    batch: usize,
    u: &Array2<f64>,
) -> Vec<f64> {
    let (mut grads, _) = centred_per_sample_grads(mlp, theta, data);
    let m = data.len() as f64;
    let factor = noise_factor(data.len(), batch) / m;
    grads.mapv_inplace(|g| g * factor.sqrt());
    let n = u.ncols();
    let blocks: Vec<Vec<f64>> = (0..n.div_ceil(PROJECTION_BLOCK))
        .into_par_iter()
        .map(|b| {
            let cols = b * PROJECTION_BLOCK..((b + 1) * PROJECTION_BLOCK).min(n);
            let proj = grads.dot(&u.slice(s![.., cols]));
            proj.map_axis(Axis(0), |c| c.dot(&c)).to_vec()
        })
        .collect();
    blocks.concat()
}

/// (M − B)/(B (M − 1)): the covariance of a minibatch mean drawn without replacement, per
/// unit of the per-sample covariance.
pub fn noise_factor(m: usize, batch: usize) -> f64 {
    if m <= 1 || batch >= m {
        return 0.0;
    }
    (m - batch) as f64 / (batch as f64 * (m - 1) as f64)
}

/// Per-sample gradients minus their mean (rows), and the mean ∇L.
pub fn centred_per_sample_grads(mlp: &Mlp, theta: &[f64], data: Batch) -> (Array2<f64>, Vec<f64>) {
    let parts = super::mlp::map_chunks(data, true, |c| mlp.per_sample_grads(theta, c));
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let mut grads = ndarray::concatenate(Axis(0), &views).expect("same widths");
    let mean = grads.mean_axis(Axis(0)).expect("non-empty");
    grads -= &mean;
    (grads, mean.to_vec())
}

/// Spearman rank correlation of two equally long samples (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 3 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    pearson(&ra, &rb)
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = 0.5 * (i + j) as f64 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    let r = sab / (saa * sbb).sqrt();
    r.is_finite().then_some(r)
}

/// A least-squares fit ln C = ln A + γ ln H over a set of directions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PowerFit {
    /// The exponent γ of C_ii ∝ H_ii^γ.
    pub gamma: f64,
    /// The prefactor A.
    pub prefactor: f64,
    /// Coefficient of determination of the log–log fit.
    pub r_squared: f64,
    /// Number of directions in the fit.
    pub directions: usize,
    /// Smallest and largest H_ii in the fit.
    pub h_range: (f64, f64),
}

/// Fit C_ii ∝ H_ii^γ over the pairs with both entries positive.
pub fn fit_power(h: &[f64], c: &[f64]) -> Option<PowerFit> {
    let pts: Vec<(f64, f64)> = h
        .iter()
        .zip(c)
        .filter(|(x, y)| **x > 0.0 && **y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let gamma = sxy / sxx;
    let r_squared = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        1.0
    };
    let hs = pts.iter().map(|p| p.0.exp());
    let h_range = hs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    Some(PowerFit {
        gamma,
        prefactor: (my - gamma * mx).exp(),
        r_squared,
        directions: pts.len(),
        h_range,
    })
}
