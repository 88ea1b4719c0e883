//! The spectrum of the discrete FP generator A (dP/dt = A P): the slowest relaxation rates by
//! shift-invert Arnoldi on the nested-dissection factorisation, and A as a sparse CSR matrix
//! (Matrix Market export, readable with `scipy.io.mmread`).
//!
//! Shift-invert: with σ > 0 the operator T = (I − A/σ)⁻¹ = σ(σI − A)⁻¹ has the eigenvalues
//! ν = σ/(σ − μ) for the eigenvalues μ of A (Re μ ≤ 0). The slowest modes (μ nearest 0) have
//! the largest |ν|, so a few Arnoldi steps on T find them; every step is one solve with the
//! factorisation of I − A/σ. μ = 0 (the stationary density, ν = 1) is found too and dropped.

use faer::Mat;
use sprs::{CsMat, TriMat};

use super::nested::{NestedDissection, SingularMatrix};
use super::operator::{CENTRE, OFFSETS, Stencil9};

/// Krylov dimension per requested rate (plus [`KRYLOV_EXTRA`]).
const KRYLOV_PER_RATE: usize = 3;
/// Extra Krylov vectors beyond `KRYLOV_PER_RATE · (k + 1)`.
const KRYLOV_EXTRA: usize = 20;
/// Explicit restarts of the Arnoldi process at most.
const MAX_RESTARTS: usize = 20;
/// A Ritz value has converged when its residual |h_{m+1,m} s_m| is below this times |ν_max|.
const RITZ_TOLERANCE: f64 = 1e-10;

/// A Ritz value with Im μ below −this · max(|Re μ|, σ) is the second member of a conjugate pair.
const CONJUGATE_TOLERANCE: f64 = 1e-9;

/// The generator as a CSR matrix, A[k, l] = rate from cell l to cell k (cell k = i·ny + j).
pub fn to_csr(a: &Stencil9) -> CsMat<f64> {
    let g = a.grid;
    let n = g.len();
    let (nx, ny) = (g.nx as isize, g.ny as isize);
    let mut tri = TriMat::with_capacity((n, n), 9 * n);
    for i in 0..nx {
        for j in 0..ny {
            let k = (i * ny + j) as usize;
            for (s, &(di, dj)) in OFFSETS.iter().enumerate() {
                let (i2, j2) = (i + di, j + dj);
                let v = a.coef[k][s];
                if v != 0.0 && i2 >= 0 && i2 < nx && j2 >= 0 && j2 < ny {
                    tri.add_triplet(k, (i2 * ny + j2) as usize, v);
                }
            }
        }
    }
    tri.to_csr()
}

/// One eigenvalue μ = −rate + i·frequency of the generator.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RelaxationRate {
    /// −Re μ: the decay rate of the mode.
    pub rate: f64,
    /// Im μ ≥ 0 (0 for a real eigenvalue; a complex-conjugate pair appears once).
    pub frequency: f64,
    /// Residual of the Ritz pair relative to the largest |ν| (convergence check).
    pub residual: f64,
}

/// Why the spectrum could not be computed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpectrumError {
    /// The shifted generator could not be factorised.
    #[error("FP spectrum: {0}")]
    Singular(#[from] SingularMatrix),
    /// The small dense eigenproblem failed.
    #[error("FP spectrum: dense eigensolver failed")]
    Dense,
}

/// The shift used by [`relaxation_rates`] when none is given: 10⁻⁶ of the largest |A_kk|
/// (far below the fast rates, above round-off in the factorisation).
pub fn default_shift(a: &Stencil9) -> f64 {
    1e-6 * a.coef.iter().fold(0.0f64, |m, r| m.max(r[CENTRE].abs()))
}

/// Whether A commutes with the reflection x → −x of the grid (cell (i, j) ↔ (nx − 1 − i, j)),
/// as the valley's generator does on a symmetric x-domain.
pub fn is_reflection_symmetric(a: &Stencil9) -> bool {
    let g = a.grid;
    let scale = a.coef.iter().fold(0.0f64, |m, r| m.max(r[CENTRE].abs()));
    (0..g.nx).all(|i| {
        (0..g.ny).all(|j| {
            let (row, mirror) = (&a.coef[g.index(i, j)], &a.coef[g.index(g.nx - 1 - i, j)]);
            OFFSETS.iter().enumerate().all(|(s, &(di, dj))| {
                (row[s] - mirror[super::operator::slot(-di, dj)]).abs() <= 1e-12 * scale
            })
        })
    })
}

/// The `k` slowest non-zero relaxation modes of A (rates ascending), by shift-invert Arnoldi
/// with shift σ = `shift` (> 0; modes with rates near σ converge fastest) and one
/// nested-dissection factorisation of I − A/σ.
///
/// When A commutes with the reflection x → −x (the valley on a symmetric domain) the even and
/// odd sectors are searched separately: above Δ_S* every intra-well mode comes as an
/// even/odd pair split only by the hopping rate, which one Krylov sequence cannot resolve.
pub fn relaxation_rates(
    a: &Stencil9,
    k: usize,
    shift: f64,
) -> Result<Vec<RelaxationRate>, SpectrumError> {
    let g = a.grid;
    let n = g.len();
    let want = (k + 1).min(n);
    let nd = NestedDissection::new(g.nx, g.ny, None);
    let factor = nd.factorize(&a.shifted_identity(1.0 / shift))?;
    // Start: a smooth vector without symmetry (excites modes of either parity).
    let start: Vec<f64> = (0..n)
        .map(|c| {
            let (i, j) = ((c / g.ny) as f64, (c % g.ny) as f64);
            1.0 + 0.3 * (0.37 * i + 0.11).sin()
                + 0.2 * (0.53 * j + 0.7).cos()
                + 0.1 * (0.017 * c as f64).sin()
        })
        .collect();
    let mut all = if is_reflection_symmetric(a) {
        let mirror = |c: usize| g.index(g.nx - 1 - c / g.ny, c % g.ny);
        // The two sectors are independent Krylov sequences on one shared factorisation: run
        // them side by side (the triangular solves alone do not keep two cores busy).
        let sector = |sign: f64| {
            // Solve, then project onto the sector (round-off would leak the other one in).
            // In place, pair by pair (no allocation per solve): v_c, v_m ← ½(v_c ± v_m), ½(v_m ± v_c).
            let apply = |v: &mut [f64]| {
                factor.solve_in_place(v);
                for c in 0..n {
                    let m = mirror(c);
                    if c <= m {
                        let (a, b) = (v[c], v[m]);
                        v[c] = 0.5 * (a + sign * b);
                        v[m] = 0.5 * (b + sign * a);
                    }
                }
            };
            let v: Vec<f64> = (0..n).map(|c| start[c] + sign * start[mirror(c)]).collect();
            sector_rates(&v, want, shift, apply)
        };
        let (even, odd) = rayon::join(|| sector(1.0), || sector(-1.0));
        let mut out = even?;
        out.extend(odd?);
        out
    } else {
        sector_rates(&start, want, shift, |v: &mut [f64]| {
            factor.solve_in_place(v)
        })?
    };
    // Drop the stationary mode (the rate nearest 0).
    all.sort_by(|p, q| p.rate.abs().total_cmp(&q.rate.abs()));
    if !all.is_empty() {
        all.remove(0);
    }
    all.sort_by(|p, q| p.rate.total_cmp(&q.rate));
    all.truncate(k);
    Ok(all)
}

/// Shift-invert Arnoldi with explicit restarts from `start`: the `want` Ritz values of largest
/// |ν|, as rates (complex-conjugate pairs once).
fn sector_rates(
    start: &[f64],
    want: usize,
    shift: f64,
    solve: impl Fn(&mut [f64]),
) -> Result<Vec<RelaxationRate>, SpectrumError> {
    let n = start.len();
    let m = (KRYLOV_PER_RATE * want + KRYLOV_EXTRA).min(n);
    let mut start = start.to_vec();
    let mut best = Vec::new();
    for _ in 0..=MAX_RESTARTS {
        let norm = dot(&start, &start).sqrt();
        start.iter_mut().for_each(|v| *v /= norm);
        let (basis, h, h_next) = arnoldi(&start, m, &solve);
        let steps = h.len();
        let hm = Mat::<f64>::from_fn(steps, steps, |r, c| h[r][c]);
        let eig = hm.eigen().map_err(|_| SpectrumError::Dense)?;
        let (s, u) = (eig.S(), eig.U());
        let mut order: Vec<usize> = (0..steps).collect();
        let abs = |i: usize| {
            let z = s.column_vector()[i];
            z.re.hypot(z.im)
        };
        order.sort_by(|&p, &q| abs(q).total_cmp(&abs(p)));
        let nu_max = abs(order[0]).max(f64::MIN_POSITIVE);
        let chosen: Vec<usize> = order.into_iter().take(want.min(steps)).collect();
        let mut converged = true;
        best = chosen
            .iter()
            .map(|&i| {
                let z = s.column_vector()[i];
                let last = u[(steps - 1, i)];
                let residual = h_next * last.re.hypot(last.im) / nu_max;
                if residual > RITZ_TOLERANCE {
                    converged = false;
                }
                // μ = σ(1 − 1/ν).
                let inv_abs2 = 1.0 / (z.re * z.re + z.im * z.im);
                let (inv_re, inv_im) = (z.re * inv_abs2, -z.im * inv_abs2);
                RelaxationRate {
                    rate: -shift * (1.0 - inv_re),
                    frequency: shift * inv_im,
                    residual,
                }
            })
            .collect();
        if converged || steps < m {
            break;
        }
        // Restart from the sum of the wanted Ritz vectors (real and imaginary parts).
        start = vec![0.0; n];
        for &i in &chosen {
            for (c, q) in basis.iter().take(steps).enumerate() {
                let w = u[(c, i)].re + u[(c, i)].im;
                start.iter_mut().zip(q).for_each(|(sv, qv)| *sv += w * qv);
            }
        }
    }
    // Complex-conjugate pairs: keep the member with positive frequency.
    best.retain(|r| r.frequency >= -CONJUGATE_TOLERANCE * r.rate.abs().max(shift));
    Ok(best)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Arnoldi with modified Gram–Schmidt and one reorthogonalisation: returns the orthonormal
/// basis (at least as many vectors as steps), the steps × steps Hessenberg matrix (row-major;
/// steps = m, fewer on breakdown) and h_{steps+1,steps} (0 on breakdown).
fn arnoldi(
    start: &[f64],
    m: usize,
    apply: &impl Fn(&mut [f64]),
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, f64) {
    let mut basis = vec![start.to_vec()];
    let mut h = vec![vec![0.0; m]; m + 1];
    let mut h_next = 0.0;
    for j in 0..m {
        let mut w = basis[j].clone();
        apply(&mut w);
        for _ in 0..2 {
            for (i, q) in basis.iter().enumerate() {
                let c = dot(q, &w);
                h[i][j] += c;
                w.iter_mut().zip(q).for_each(|(wv, qv)| *wv -= c * qv);
            }
        }
        let norm = dot(&w, &w).sqrt();
        h_next = norm;
        if j + 1 < m {
            h[j + 1][j] = norm;
        }
        if norm <= 1e-300 {
            h.truncate(j + 1);
            h.iter_mut().for_each(|r| r.truncate(j + 1));
            return (basis, h, 0.0);
        }
        w.iter_mut().for_each(|v| *v /= norm);
        basis.push(w);
    }
    h.truncate(m);
    (basis, h, h_next)
}
