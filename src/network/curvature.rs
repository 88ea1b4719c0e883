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
    let hess = mlp.hvp_operator(theta, data, true);
    let columns: Vec<Vec<f64>> = (0..p)
        .into_par_iter()
        .map(|j| {
            let mut e = vec![0.0; p];
            e[j] = 1.0;
            let mut col = vec![0.0; p];
            hess.apply_serial(&e, &mut col);
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
    apply: impl FnMut(&[f64], &mut [f64]),
) -> Vec<f64> {
    let steps = steps.min(n).max(k.min(n));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let q: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let t = lanczos_tridiagonal(q, steps, apply);
    let (vals, _) = symmetric_eigen(&t, false);
    vals.into_iter().take(k).collect()
}

/// The Lanczos tridiagonal matrix T (at most `steps` × `steps`) of a symmetric operator from
/// the start vector `q` (normalised here), with full re-orthogonalisation (twice per step).
pub fn lanczos_tridiagonal(
    q: Vec<f64>,
    steps: usize,
    apply: impl FnMut(&[f64], &mut [f64]),
) -> Array2<f64> {
    lanczos_with_basis(q, steps, apply).0
}

/// As [`lanczos_tridiagonal`], also returning the orthonormal Lanczos vectors q_1 … q_m.
pub fn lanczos_with_basis(
    mut q: Vec<f64>,
    steps: usize,
    mut apply: impl FnMut(&[f64], &mut [f64]),
) -> (Array2<f64>, Vec<Vec<f64>>) {
    let n = q.len();
    let steps = steps.min(n).max(1);
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
    (t, basis)
}

/// The `k` largest eigenpairs (decreasing) of a symmetric operator by Lanczos with full
/// re-orthogonalisation over `steps` iterations from a seeded random start: eigenvalues and
/// unit Ritz vectors.
pub fn lanczos_top_vectors(
    n: usize,
    k: usize,
    steps: usize,
    seed: u64,
    apply: impl FnMut(&[f64], &mut [f64]),
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let steps = steps.min(n).max(k.min(n));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let q: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let (t, basis) = lanczos_with_basis(q, steps, apply);
    let (vals, vecs) = symmetric_eigen(&t, true);
    let Some(s) = vecs else {
        return (vals, Vec::new());
    };
    let k = k.min(vals.len());
    let ritz = (0..k)
        .map(|j| {
            let mut v = vec![0.0; n];
            for (i, b) in basis.iter().enumerate() {
                let c = s[[i, j]];
                v.iter_mut().zip(b).for_each(|(x, y)| *x += c * y);
            }
            normalise(&mut v);
            v
        })
        .collect();
    (vals.into_iter().take(k).collect(), ritz)
}

/// A spectral density as a discrete measure: nodes and weights (the weights sum to 1).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpectralDensity {
    /// Ritz values of every probe, increasing.
    pub nodes: Vec<f64>,
    /// Their weights, (1/v)·τ_k with τ_k the squared first component of the Ritz vector.
    pub weights: Vec<f64>,
    /// tr A estimated as n Σ_k w_k θ_k (= Hutchinson with the same Rademacher probes).
    pub trace: f64,
}

/// Stochastic Lanczos quadrature: the spectral density (1/n) Σ_i δ(λ − λ_i) of a symmetric
/// operator of dimension `n`, from `probes` Rademacher start vectors (drawn from `seed`) and
/// `steps` Lanczos steps each. Probes run in parallel; the result does not depend on the
/// thread count.
pub fn slq(
    n: usize,
    steps: usize,
    probes: usize,
    seed: u64,
    apply: impl Fn(&[f64], &mut [f64]) + Sync,
) -> SpectralDensity {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let starts = rademacher_probes(&mut rng, probes.max(1), n);
    let per_probe: Vec<Vec<(f64, f64)>> = starts
        .into_par_iter()
        .map(|q| {
            let t = lanczos_tridiagonal(q, steps, &apply);
            let (vals, vecs) = symmetric_eigen(&t, true);
            let vecs = vecs.expect("eigenvectors asked for");
            vals.iter()
                .enumerate()
                .map(|(k, &v)| (v, vecs[[0, k]].powi(2)))
                .collect()
        })
        .collect();
    let v = per_probe.len() as f64;
    let mut pts: Vec<(f64, f64)> = per_probe
        .concat()
        .into_iter()
        .map(|(x, w)| (x, w / v))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let trace = n as f64 * pts.iter().map(|(x, w)| x * w).sum::<f64>();
    SpectralDensity {
        nodes: pts.iter().map(|p| p.0).collect(),
        weights: pts.iter().map(|p| p.1).collect(),
        trace,
    }
}

/// Wasserstein-1 distance ∫ |F_a − F_b| dx between two discrete measures of total mass 1
/// given as (nodes, weights) with nodes increasing.
pub fn wasserstein1(a: (&[f64], &[f64]), b: (&[f64], &[f64])) -> f64 {
    let mut pts: Vec<(f64, f64)> =
        a.0.iter()
            .zip(a.1)
            .map(|(&x, &w)| (x, w))
            .chain(b.0.iter().zip(b.1).map(|(&x, &w)| (x, -w)))
            .collect();
    pts.sort_by(|p, q| p.0.total_cmp(&q.0));
    let (mut cdf_diff, mut total) = (0.0, 0.0);
    for k in 0..pts.len() {
        cdf_diff += pts[k].1;
        if k + 1 < pts.len() {
            total += cdf_diff.abs() * (pts[k + 1].0 - pts[k].0);
        }
    }
    total
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

/// The noise covariance in the eigenbasis of H, Ĉ = Uᵀ C U (P × P, Eq. 4), from the same
/// centred per-sample gradients as [`noise_diag_in_eigenbasis`].
pub fn noise_in_eigenbasis(
    mlp: &Mlp,
    theta: &[f64],
    data: Batch,
    batch: usize,
    u: &Array2<f64>,
) -> Array2<f64> {
    let (grads, _) = centred_per_sample_grads(mlp, theta, data);
    let factor = noise_factor(data.len(), batch) / data.len() as f64;
    let proj = grads.dot(u);
    let mut c = proj.t().dot(&proj);
    c *= factor;
    c
}

/// ‖CH − HC‖_F / (‖C‖_F ‖H‖_F) from Ĉ = Uᵀ C U and the eigenvalues λ of H:
/// ‖ĈΛ − ΛĈ‖_F² = Σ_ij Ĉ_ij² (λ_j − λ_i)² (the Frobenius norm is invariant under U).
pub fn relative_commutator(c_hat: &Array2<f64>, eigenvalues: &[f64]) -> f64 {
    let n = eigenvalues.len();
    let (mut comm, mut cn) = (0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            let c = c_hat[[i, j]];
            comm += c * c * (eigenvalues[j] - eigenvalues[i]).powi(2);
            cn += c * c;
        }
    }
    let hn = eigenvalues.iter().map(|l| l * l).sum::<f64>();
    (comm / (cn * hn)).sqrt()
}

/// Fraction of tr C carried by the top `k` eigen-directions of H: Σ_{i≤k} Ĉ_ii / Σ_i Ĉ_ii.
pub fn top_fraction(c_hat_diag: &[f64], k: usize) -> f64 {
    let total: f64 = c_hat_diag.iter().sum();
    c_hat_diag.iter().take(k).sum::<f64>() / total
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

/// tr H = Σ_j (H e_j)_j from P exact Hessian-vector products (parallel over j, summed in
/// order, so the result does not depend on the thread count).
pub fn exact_trace(mlp: &Mlp, theta: &[f64], data: Batch) -> f64 {
    let p = mlp.n_params();
    let hess = mlp.hvp_operator(theta, data, true);
    let diag: Vec<f64> = (0..p)
        .into_par_iter()
        .map(|j| {
            let mut e = vec![0.0; p];
            e[j] = 1.0;
            let mut col = vec![0.0; p];
            hess.apply_serial(&e, &mut col);
            col[j]
        })
        .collect();
    diag.iter().sum()
}

/// Hutchinson's estimate (1/v) Σ_i z_iᵀ A z_i of tr A for `probes` Rademacher vectors z_i
/// drawn from `seed` (the same probes for the same seed).
pub fn hutchinson_trace(
    n: usize,
    probes: usize,
    seed: u64,
    mut apply: impl FnMut(&[f64], &mut [f64]),
) -> f64 {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut z = vec![0.0; n];
    let mut az = vec![0.0; n];
    let mut sum = 0.0;
    for _ in 0..probes {
        for x in z.iter_mut() {
            *x = if rand::RngExt::random::<bool>(&mut rng) {
                1.0
            } else {
                -1.0
            };
        }
        apply(&z, &mut az);
        sum += dot(&z, &az);
    }
    sum / probes.max(1) as f64
}

/// `count` Rademacher vectors (entries ±1 with probability ½) of length n, drawn in order from
/// `rng` (the probes of Hutchinson trace estimates and stochastic Lanczos).
pub fn rademacher_probes(rng: &mut Xoshiro256PlusPlus, count: usize, n: usize) -> Vec<Vec<f64>> {
    (0..count)
        .map(|_| {
            (0..n)
                .map(|_| {
                    if rand::RngExt::random::<bool>(rng) {
                        1.0
                    } else {
                        -1.0
                    }
                })
                .collect()
        })
        .collect()
}
