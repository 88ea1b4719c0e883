//! The spectrum of the discrete FP generator A (dP/dt = A P): the slowest relaxation rates by
//! shift-invert Arnoldi on the nested-dissection factorisation, and A as a sparse CSR matrix
//! (Matrix Market export, readable with `scipy.io.mmread`).
//!
//! Shift-invert: with σ > 0 the operator T = (I − A/σ)⁻¹ = σ(σI − A)⁻¹ has the eigenvalues
//! ν = σ/(σ − μ) for the eigenvalues μ of A (Re μ ≤ 0). The slowest modes (μ nearest 0) have
//! the largest |ν|, so a few Arnoldi steps on T find them; every step is one solve with the
//! factorisation of I − A/σ. μ = 0 (the stationary density, ν = 1) is found too and dropped.
//!
//! A generator with mirror symmetries (x → −x, y → −y: `fp::symmetry`) is split into its
//! symmetry sectors, each a half- or quarter-grid stencil with its own factorisation (a quarter
//! grid's is ≈ 8× cheaper than the whole grid's); the Arnoldi sequences advance in lockstep until
//! the k + 1 Ritz values of largest |ν| over all sectors have small residuals and have stopped
//! moving (relative change below 10⁻⁹ between steps: A is far from normal, and a residual of
//! 10⁻¹⁰ alone left the sixth rate at 512² wrong by 3·10⁻⁴). A sector whose share of those modes
//! has converged, and whose next Ritz value has converged below the cut, stops early and leaves
//! the cores to the other sectors' solves; a sector holding none of them stops once its largest
//! Ritz value, plus its residual, is far below the cut (the valley's y-odd sectors, whose modes
//! relax at the fast rate of y, after 4–5 steps). At 512² on the paper's valley the x-odd,
//! y-even sector stops after 25 steps and the even one after 33.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use sprs::{CsMat, TriMat};

use super::config::Symmetry;
use super::nested::{Factorization, NestedDissection, SingularMatrix};
use super::operator::{CENTRE, OFFSETS, Stencil9};
use super::symmetry;
use rayon::prelude::*;

/// Columns of one Krylov block (each block costs one multi-right-hand-side solve,
/// [`crate::fp::nested::Factorization::solve_many_in_place`]). 1: on the valley at 512² blocks
/// of 2 and 4 needed more solves in total than plain Arnoldi (measured, docs/theory.md).
pub const BLOCK: usize = 1;
/// The Krylov basis is restarted once it would exceed this many columns per wanted mode.
const BASIS_PER_RATE: usize = 6;
/// Explicit restarts of the block Krylov process at most.
const MAX_RESTARTS: usize = 20;
/// Block steps per sector at most (a bound far beyond the restarts' reach).
const MAX_ROUNDS: usize = 2000;
/// A Ritz value has converged when its residual ‖R s_last‖ is below this times |ν_max|.
const RITZ_TOLERANCE: f64 = 1e-10;
/// Converged rates change by less than this (relative) from one block step to the next.
const RATE_CHANGE: f64 = 1e-9;
/// Sectors with at most this many cells are solved densely (T built column by column).
const DENSE_CELLS: usize = 400;

/// A sector stops early only when its next Ritz value lies at least this fraction below the
/// cut in |ν| (the smallest |ν| of the wanted modes).
const SECTOR_MARGIN: f64 = 0.05;

/// A sector holding none of the wanted modes stops once its largest Ritz value |ν|, plus its
/// residual, is below this fraction of the cut (after at least [`FAR_MIN_ROUNDS`] rounds).
const FAR_BELOW: f64 = 0.5;
/// Rounds before a sector may stop by [`FAR_BELOW`].
const FAR_MIN_ROUNDS: usize = 4;

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

/// The `k` slowest non-zero relaxation modes of A (rates ascending), by block shift-invert
/// Arnoldi with shift σ = `shift` (> 0; modes with rates near σ converge fastest) on the
/// nested-dissection factorisation of I − A/σ, [`BLOCK`] vectors per solve.
///
/// When A commutes with the reflection x → −x or y → −y (the valley on a symmetric domain) the
/// symmetry sectors are searched separately, each on its folded half- or quarter-grid stencil
/// ([`symmetry::sectors`]) with its own factorisation: above Δ_S* every intra-well mode comes
/// as an even/odd pair split only by the hopping rate, which one Krylov sequence cannot resolve.
pub fn relaxation_rates(
    a: &Stencil9,
    k: usize,
    shift: f64,
) -> Result<Vec<RelaxationRate>, SpectrumError> {
    relaxation_rates_with(a, k, shift, BLOCK, Symmetry::Auto)
}

/// [`relaxation_rates`] with `block` Krylov vectors per solve (1 = plain Arnoldi; for tuning),
/// searching the whole grid as one sector when `use_symmetry` is [`Symmetry::Off`] (then modes
/// split only by an exponentially small rate are not resolved).
pub fn relaxation_rates_with(
    a: &Stencil9,
    k: usize,
    shift: f64,
    block: usize,
    use_symmetry: Symmetry,
) -> Result<Vec<RelaxationRate>, SpectrumError> {
    let want = k + 1;
    let folded = match use_symmetry {
        Symmetry::Auto => symmetry::sectors(a, false),
        Symmetry::Off => Vec::new(),
    };
    let operators: Vec<&Stencil9> = if folded.is_empty() {
        vec![a]
    } else {
        folded.iter().map(|s| &s.stencil).collect()
    };
    // One factorisation per sector, side by side.
    let factors = operators
        .par_iter()
        .map(|op| {
            NestedDissection::new(op.grid.nx, op.grid.ny, None)
                .factorize(&op.shifted_identity(1.0 / shift))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sectors = operators
        .iter()
        .zip(&factors)
        .map(|(op, f)| Sector::new(op, f, want, shift, block))
        .collect::<Result<Vec<_>, _>>()?;
    // The sectors advance in lockstep (one block solve each per round, in parallel) until the
    // `want` Ritz values of largest |ν| over all sectors have converged: a sector is searched
    // only as deep as its share of the slowest modes, and it stops early (its Ritz values
    // frozen, its core left to the others' solves) once its share has converged and its next
    // Ritz value has converged too and lies below the cut.
    let mut top: Vec<Ritz> = Vec::new();
    let mut latest: Vec<Vec<Ritz>> = vec![Vec::new(); sectors.len()];
    let mut active = vec![true; sectors.len()];
    let mut shares: Vec<Vec<Ritz>> = vec![Vec::new(); sectors.len()];
    for rounds_done in 1..=MAX_ROUNDS {
        let rounds = sectors
            .par_iter_mut()
            .zip(&active)
            .map(|(s, &on)| if on { s.step().map(Some) } else { Ok(None) })
            .collect::<Result<Vec<_>, _>>()?;
        for (l, r) in latest.iter_mut().zip(rounds) {
            if let Some(r) = r {
                *l = r;
            }
        }
        let mut next: Vec<(usize, Ritz)> = latest
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.iter().map(move |&r| (i, r)))
            .collect();
        next.sort_by(|p, q| q.1.nu.total_cmp(&p.1.nu));
        // The `want` modes of largest |ν| (a complex-conjugate pair counts once).
        let mut modes = 0;
        let split = next
            .iter()
            .position(|(_, r)| {
                if modes == want {
                    return true;
                }
                if r.rate.frequency >= -CONJUGATE_TOLERANCE * r.rate.rate.abs().max(shift) {
                    modes += 1;
                }
                false
            })
            .unwrap_or(next.len());
        let rest = next.split_off(split);
        // Converged: small residuals, and the rates no longer move (the generator is far from
        // normal, so a small residual alone does not pin the slower rates).
        let moved = |p: &Ritz, q: &Ritz| {
            (p.rate.rate - q.rate.rate).abs() > RATE_CHANGE * p.rate.rate.abs().max(shift)
        };
        let settled =
            next.len() == top.len() && next.iter().zip(&top).all(|((_, p), q)| !moved(p, q));
        if modes == want {
            let cut = next.last().map_or(0.0, |(_, r)| r.nu);
            for (i, on) in active.iter_mut().enumerate() {
                let mine: Vec<Ritz> = next
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|&(_, r)| r)
                    .collect();
                let share_done = mine.len() == shares[i].len()
                    && mine.iter().zip(&shares[i]).all(|(p, q)| !moved(p, q))
                    && mine.iter().all(|r| r.rate.residual <= RITZ_TOLERANCE);
                let below = rest.iter().find(|(j, _)| *j == i).is_some_and(|(_, r)| {
                    r.rate.residual <= RITZ_TOLERANCE && r.nu < cut * (1.0 - SECTOR_MARGIN)
                });
                // A sector holding none of the wanted modes whose largest Ritz value, plus its
                // absolute residual, lies far below the cut (the y-odd sectors of the valley:
                // fast modes in y, |ν| ≈ 10⁻² of the cut, in a tight cluster that would take
                // many rounds to resolve to RITZ_TOLERANCE).
                let far_below = mine.is_empty()
                    && rounds_done >= FAR_MIN_ROUNDS
                    && latest[i]
                        .first()
                        .is_some_and(|r| r.nu * (1.0 + r.rate.residual) <= FAR_BELOW * cut);
                let below = below || far_below;
                if *on && share_done && below {
                    *on = false;
                }
                shares[i] = mine;
            }
        }
        top = next.into_iter().map(|(_, r)| r).collect();
        let done = sectors
            .iter()
            .zip(&active)
            .all(|(s, &on)| !on || s.exhausted())
            || (settled && top.iter().all(|r| r.rate.residual <= RITZ_TOLERANCE));
        if done {
            break;
        }
    }
    // Complex-conjugate pairs once (the member with positive frequency).
    let mut all: Vec<RelaxationRate> = top
        .into_iter()
        .map(|r| r.rate)
        .filter(|r| r.frequency >= -CONJUGATE_TOLERANCE * r.rate.abs().max(shift))
        .collect();
    // Drop the stationary mode (the rate nearest 0).
    all.sort_by(|p, q| p.rate.abs().total_cmp(&q.rate.abs()));
    if !all.is_empty() {
        all.remove(0);
    }
    all.sort_by(|p, q| p.rate.total_cmp(&q.rate));
    all.truncate(k);
    Ok(all)
}

/// A Ritz value: the rate, |ν| and the residual (relative to the sector's largest |ν|).
#[derive(Debug, Clone, Copy)]
struct Ritz {
    rate: RelaxationRate,
    nu: f64,
}

/// The rate of the eigenvalue ν of T: μ = σ(1 − 1/ν).
fn to_ritz(re: f64, im: f64, shift: f64, residual: f64) -> Ritz {
    let inv_abs2 = 1.0 / (re * re + im * im);
    let (inv_re, inv_im) = (re * inv_abs2, -im * inv_abs2);
    Ritz {
        rate: RelaxationRate {
            rate: -shift * (1.0 - inv_re),
            frequency: shift * inv_im,
            residual,
        },
        nu: re.hypot(im),
    }
}

/// One symmetry sector: tiny ones solved densely once, the others by block Arnoldi.
enum Sector<'a> {
    Dense(Vec<Ritz>),
    Krylov(Box<Krylov<'a>>),
}

impl<'a> Sector<'a> {
    fn new(
        op: &Stencil9,
        factor: &'a Factorization,
        want: usize,
        shift: f64,
        block: usize,
    ) -> Result<Self, SpectrumError> {
        let g = op.grid;
        let n = g.len();
        if n <= DENSE_CELLS {
            return Ok(Sector::Dense(dense_ritz(factor, n, want, shift)?));
        }
        // Smooth start vectors without symmetry (they excite every mode of the sector).
        let b = block.clamp(1, n / 4);
        let start: Vec<f64> = (0..b)
            .flat_map(|l| {
                let p = l as f64;
                (0..n).map(move |c| {
                    let (i, j) = ((c / g.ny) as f64, (c % g.ny) as f64);
                    1.0 + 0.3 * (0.37 * i + 0.11 + 1.1 * p).sin()
                        + 0.2 * (0.53 * j + 0.7 + 0.9 * p).cos()
                        + 0.1 * (0.017 * (1.0 + 0.5 * p) * c as f64).sin()
                })
            })
            .collect();
        Ok(Sector::Krylov(Box::new(Krylov::new(
            factor, start, n, want, shift,
        ))))
    }

    /// One more block of the Krylov basis; the current Ritz values.
    fn step(&mut self) -> Result<Vec<Ritz>, SpectrumError> {
        match self {
            Sector::Dense(r) => Ok(r.clone()),
            Sector::Krylov(k) => k.step(),
        }
    }

    /// Whether further steps cannot improve the Ritz values.
    fn exhausted(&self) -> bool {
        match self {
            Sector::Dense(_) => true,
            Sector::Krylov(k) => k.restarts > MAX_RESTARTS,
        }
    }
}

/// T = (I − A/σ)⁻¹ as a dense matrix (n solves at once) and its 2·`want` largest |ν|.
fn dense_ritz(
    factor: &Factorization,
    n: usize,
    want: usize,
    shift: f64,
) -> Result<Vec<Ritz>, SpectrumError> {
    let mut t = vec![0.0; n * n];
    (0..n).for_each(|c| t[c * n + c] = 1.0);
    factor.solve_many_in_place(&mut t);
    let tm = MatRef::from_column_major_slice(&t, n, n).to_owned();
    let eig = tm.eigen().map_err(|_| SpectrumError::Dense)?;
    let s = eig.S();
    let mut out: Vec<Ritz> = (0..n)
        .map(|i| {
            let z = s.column_vector()[i];
            to_ritz(z.re, z.im, shift, 0.0)
        })
        .collect();
    out.sort_by(|p, q| q.nu.total_cmp(&p.nu));
    out.truncate(2 * want);
    Ok(out)
}

/// Block Arnoldi with explicit restarts on T = (I − A/σ)⁻¹. Each step solves the newest block
/// at once, then orthogonalises it against the basis (classical Gram–Schmidt twice, as matrix
/// products) and within itself (modified Gram–Schmidt twice), which gives
/// T Q_m = Q_m H_m + Q_next R E_mᵀ with H_m block upper Hessenberg. A Ritz pair (ν, Q_m s)
/// has the residual ‖R s_last‖ (s_last: the last b entries of s).
struct Krylov<'a> {
    factor: &'a Factorization,
    n: usize,
    b: usize,
    want: usize,
    shift: f64,
    /// Orthonormal basis, column-major n × cols.
    q: Vec<f64>,
    h: Mat<f64>,
    cols: usize,
    max_cols: usize,
    restarts: usize,
}

impl<'a> Krylov<'a> {
    fn new(factor: &'a Factorization, start: Vec<f64>, n: usize, want: usize, shift: f64) -> Self {
        let b = start.len() / n;
        // Largest basis (a multiple of b, at least two blocks beyond the wanted modes).
        let max_cols = ((BASIS_PER_RATE * want).max(want + 2 * b).div_ceil(b) * b).min(n - n % b);
        let mut k = Krylov {
            factor,
            n,
            b,
            want,
            shift,
            q: Vec::new(),
            h: Mat::zeros(max_cols + b, max_cols),
            cols: 0,
            max_cols,
            restarts: 0,
        };
        k.restart(start);
        k
    }

    fn restart(&mut self, mut start: Vec<f64>) {
        self.q.clear();
        self.q.reserve(self.n * (self.max_cols + self.b));
        orthonormalise_block(&[], self.n, &mut start);
        self.q.extend_from_slice(&start);
        self.h.fill(0.0);
        self.cols = self.b;
    }

    fn step(&mut self) -> Result<Vec<Ritz>, SpectrumError> {
        let (n, b, cols) = (self.n, self.b, self.cols);
        let mut w = self.q[(cols - b) * n..cols * n].to_vec();
        if b == 1 {
            self.factor.solve_in_place(&mut w);
        } else {
            self.factor.solve_many_in_place(&mut w);
        }
        let (coeff, r) = orthonormalise_block(&self.q, n, &mut w);
        for c in 0..b {
            for row in 0..cols {
                self.h[(row, cols - b + c)] = coeff[(row, c)];
            }
            for row in 0..b {
                self.h[(cols + row, cols - b + c)] = r[(row, c)];
            }
        }
        // Twice the wanted count: conjugate pairs take two places each.
        let (ritz, vectors) = ritz(&self.h, cols, &r, 2 * self.want, self.shift)?;
        if cols + b <= self.max_cols {
            self.q.extend_from_slice(&w);
            self.cols += b;
        } else if self.restarts <= MAX_RESTARTS {
            // Restart from the wanted Ritz vectors (real + imaginary parts), summed in b
            // groups; the next Krylov block fills any columns left over.
            self.restarts += 1;
            let mut start = w;
            for l in 0..b.min(vectors.len()) {
                let col = &mut start[l * n..(l + 1) * n];
                col.iter_mut().for_each(|v| *v = 0.0);
                for s in vectors.iter().take(self.want).skip(l).step_by(b) {
                    for (c, &x) in s.iter().enumerate() {
                        let qc = &self.q[c * n..(c + 1) * n];
                        col.iter_mut().zip(qc).for_each(|(v, &y)| *v += x * y);
                    }
                }
            }
            self.restart(start);
        }
        Ok(ritz)
    }
}

/// Orthonormalise the column-major block `w` (n × b) against the orthonormal columns `q`
/// (n × q.len()/n) and within itself. Returns the coefficients C (cols × b) and the upper
/// triangular R (b × b) with w_old = q C + w_new R. A column that vanishes (the Krylov space
/// became invariant) is replaced by a fresh orthonormal direction with a zero column in R.
fn orthonormalise_block(q: &[f64], n: usize, w: &mut [f64]) -> (Mat<f64>, Mat<f64>) {
    let cols = q.len() / n;
    let b = w.len() / n;
    let norms: Vec<f64> = w.chunks(n).map(|c| dot(c, c).sqrt()).collect();
    let coeff = project_out(q, n, w);
    let mut r = Mat::<f64>::zeros(b, b);
    for i in 0..b {
        let (done, rest) = w.split_at_mut(i * n);
        let wi = &mut rest[..n];
        for _ in 0..2 {
            for l in 0..i {
                let wl = &done[l * n..(l + 1) * n];
                let c = dot(wl, wi);
                r[(l, i)] += c;
                wi.iter_mut().zip(wl).for_each(|(x, y)| *x -= c * y);
            }
        }
        let mut norm = dot(wi, wi).sqrt();
        if norm <= 1e-13 * norms[i] || !norm.is_finite() {
            // Breakdown: a pseudo-random direction orthogonal to everything so far.
            for l in 0..i {
                r[(l, i)] = 0.0;
            }
            for (c, v) in wi.iter_mut().enumerate() {
                *v = (0.7548776662 * (c + 1) as f64 * (cols + i + 1) as f64).fract() - 0.5;
            }
            project_out(q, n, wi);
            for _ in 0..2 {
                for l in 0..i {
                    let wl = &done[l * n..(l + 1) * n];
                    let c = dot(wl, wi);
                    wi.iter_mut().zip(wl).for_each(|(x, y)| *x -= c * y);
                }
            }
            let fresh = dot(wi, wi).sqrt();
            wi.iter_mut().for_each(|v| *v /= fresh);
            norm = 0.0;
        } else {
            wi.iter_mut().for_each(|v| *v /= norm);
        }
        r[(i, i)] = norm;
    }
    (coeff, r)
}

/// w ← (I − Q Qᵀ)² w for the orthonormal columns `q` (classical Gram–Schmidt, twice);
/// returns the summed coefficients Qᵀ w (cols × b).
fn project_out(q: &[f64], n: usize, w: &mut [f64]) -> Mat<f64> {
    let cols = q.len() / n;
    let b = w.len() / n;
    let mut total = Mat::<f64>::zeros(cols, b);
    if cols == 0 {
        return total;
    }
    let qm = MatRef::from_column_major_slice(q, n, cols);
    for _ in 0..2 {
        let mut c = Mat::<f64>::zeros(cols, b);
        let mut wm = MatMut::from_column_major_slice_mut(w, n, b);
        matmul(
            c.as_mut(),
            Accum::Replace,
            qm.transpose(),
            wm.as_ref(),
            1.0,
            Par::Seq,
        );
        matmul(wm.as_mut(), Accum::Add, qm, c.as_ref(), -1.0, Par::Seq);
        for j in 0..b {
            for i in 0..cols {
                total[(i, j)] += c[(i, j)];
            }
        }
    }
    total
}

/// Ritz values of H_m (the leading m × m block of `h`): the `want` of largest |ν| (with
/// their residuals) and their coefficient vectors Re s + Im s (for a restart).
#[allow(clippy::type_complexity)]
fn ritz(
    h: &Mat<f64>,
    m: usize,
    r: &Mat<f64>,
    want: usize,
    shift: f64,
) -> Result<(Vec<Ritz>, Vec<Vec<f64>>), SpectrumError> {
    let b = r.nrows();
    let hm = h.submatrix(0, 0, m, m).to_owned();
    let eig = hm.eigen().map_err(|_| SpectrumError::Dense)?;
    let (s, u) = (eig.S(), eig.U());
    let mut order: Vec<usize> = (0..m).collect();
    let abs = |i: usize| {
        let z = s.column_vector()[i];
        z.re.hypot(z.im)
    };
    order.sort_by(|&p, &q| abs(q).total_cmp(&abs(p)));
    let nu_max = abs(order[0]).max(f64::MIN_POSITIVE);
    let mut out = Vec::new();
    let mut vectors = Vec::new();
    for &i in order.iter().take(want.min(m)) {
        let z = s.column_vector()[i];
        let unorm = (0..m)
            .map(|c| {
                let x = u[(c, i)];
                x.re * x.re + x.im * x.im
            })
            .sum::<f64>()
            .sqrt();
        let mut res2 = 0.0;
        for row in 0..b {
            let (mut re, mut im) = (0.0, 0.0);
            for c in 0..b {
                let x = u[(m - b + c, i)];
                re += r[(row, c)] * x.re;
                im += r[(row, c)] * x.im;
            }
            res2 += re * re + im * im;
        }
        let residual = res2.sqrt() / unorm / nu_max;
        out.push(to_ritz(
            z.re,
            z.im,
            shift,
            if residual.is_nan() {
                f64::INFINITY
            } else {
                residual
            },
        ));
        vectors.push((0..m).map(|c| u[(c, i)].re + u[(c, i)].im).collect());
    }
    Ok((out, vectors))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
