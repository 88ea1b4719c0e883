//! Steady state of the FP generator by shifted inverse iteration with one factorisation.
//!
//! Solve (σI − A) Pᵏ⁺¹ = σ Pᵏ from the uniform density P⁰, with σ = `SHIFT` · max|A_kk|:
//! one step is a backward-Euler step of length 1/σ. Every decaying mode with rate |λ| shrinks
//! by σ/(σ + |λ|) per iteration, so for a connected generator three or four iterations give the
//! null vector to round-off (the iteration stops when the geometric-convergence estimate of the
//! remaining error, change·ρ/(1 − ρ), is below 1e-13 of max P); mass is conserved exactly (1ᵀA = 0), and for an M-matrix generator
//! (diagonal D) every iterate is positive. σI − A is column diagonally dominant, so the LU is
//! stable. When the generator is nearly reducible — Hessian noise above Δ_S*, where the two
//! flatter wells at ±x exchange mass at an exponentially small rate — modes slower than σ are
//! not resolved: the result is the quasi-stationary density reached from the uniform start
//! (equal weights in symmetric wells), rather than an ill-conditioned mixture of the wells,
//! which a pinned null-vector solve returns there.
//!
//! A generator that commutes with x → −x or y → −y (`symmetry::commutes_with`: the valley on a
//! symmetric domain) has a stationary density even under that mirror, so only the sector even
//! under every such mirror is solved (`symmetry::sectors`): the generator folded onto the half
//! grid x ≥ 0, or the quarter x ≥ 0, y ≥ 0 when both mirrors apply. A half grid's factorisation
//! is about a third of the work and half the memory of the whole grid's, a quarter grid's an
//! eighth and a quarter, and the result is
//! mirrored. This is also the accurate choice: on the whole grid the rounding of the
//! coefficients is not mirror-symmetric and feeds the odd inter-well mode, whose rate (2e-14
//! for the paper's valley at Δ_S = 0.002 on 96 × 48) is far below σ, so the iteration returned
//! it amplified by ~max|A_kk|/σ (an odd part of 2.4e-7 of the peak there); the even sector has
//! no such mode (tests/it/fp_steady_accuracy.rs).

use std::time::Instant;

use super::nested::{NestedDissection, SingularMatrix};
use super::operator::{CENTRE, Stencil9};

/// σ relative to the largest diagonal entry of A.
const SHIFT: f64 = 1e-10;
/// Iterations of the inverse iteration (each costs one solve with the same factorisation).
const MAX_ITERATIONS: usize = 4;
/// Stop when the distance of Pᵏ⁺¹ to the limit, max |Pᵏ⁺¹ − P^∞| / max Pᵏ⁺¹, falls below this
/// (estimated from the last two changes, see `solve_steady`).
const CHANGE_TOLERANCE: f64 = 1e-13;

/// Estimated distance of the last iterate to the limit, from the max-norm changes so far.
/// Geometric convergence with ratio ρ leaves the iterate change·ρ/(1 − ρ) from its limit. The
/// first change mixes every fast mode, so the ratio of the first two can be far below the slowest
/// mode's ρ; from the third iterate on, ρ is the larger of the last two ratios (and the plain
/// change is used when ρ ≥ 1/2).
fn remaining_change(changes: &[f64]) -> f64 {
    let n = changes.len();
    let last = changes[n - 1];
    if n < 3 {
        return last;
    }
    let rho = (changes[n - 1] / changes[n - 2]).max(changes[n - 2] / changes[n - 3]);
    if rho < 0.5 {
        last * rho / (1.0 - rho)
    } else {
        last
    }
}

/// The steady density and how well it solves A P = 0.
#[derive(Debug, Clone)]
pub struct SteadyState {
    /// P on the grid (cell k = i·ny + j), Σ P dx dy = 1.
    pub density: Vec<f64>,
    /// max_k |(A P)_k| / max_k |A_kk P_k| (0 for an exact null vector).
    pub residual: f64,
    /// Σ |min(P, 0)| dx dy.
    pub negative_mass: f64,
    /// Σ P dx dy after normalisation (1 to round-off).
    pub mass: f64,
    /// Factorisation + solve time in seconds (assembly is timed by the caller).
    pub factor_solve_seconds: f64,
    /// Smallest / largest |pivot| of the factorisation.
    pub pivot_ratio: f64,
    /// Stored factor entries (8 bytes each): the solver's memory.
    pub factor_entries: usize,
    /// Floating-point operations of the factorisation.
    pub factor_flops: f64,
}

/// The stationary density of the generator `a` (see the module docs for the method).
pub fn solve_steady(a: &Stencil9) -> Result<SteadyState, SingularMatrix> {
    solve(a, true)
}

/// [`solve_steady`] on the whole grid even when `a` is reflection-symmetric (no folding onto
/// the even sector, no symmetrisation): the general path, for comparisons and benches.
pub fn solve_steady_whole_grid(a: &Stencil9) -> Result<SteadyState, SingularMatrix> {
    solve(a, false)
}

/// The steady state, folded onto the sector even under every mirror of `a` when `fold`.
fn solve(a: &Stencil9, fold: bool) -> Result<SteadyState, SingularMatrix> {
    let grid = a.grid;
    let start = Instant::now();
    let even = if fold {
        super::symmetry::sectors(a, true).pop()
    } else {
        None
    };
    let (mut p, factor) = match &even {
        Some(sector) => {
            let (q, factor) = null_vector(&sector.stencil)?;
            (sector.unfold(&q), factor)
        }
        None => null_vector(a)?,
    };
    let factor_solve_seconds = start.elapsed().as_secs_f64();
    let mass = grid.mass(&p);
    p.iter_mut().for_each(|v| *v /= mass);
    let mut ap = vec![0.0; grid.len()];
    a.apply(&p, &mut ap);
    let scale = a
        .coef
        .iter()
        .zip(&p)
        .fold(0.0f64, |m, (row, &v)| m.max((row[CENTRE] * v).abs()));
    let residual = ap.iter().fold(0.0f64, |m, v| m.max(v.abs())) / scale.max(f64::MIN_POSITIVE);
    let negative_mass =
        p.iter().filter(|&&v| v < 0.0).fold(0.0, |acc, v| acc - v) * grid.cell_area();
    Ok(SteadyState {
        mass: grid.mass(&p),
        density: p,
        residual,
        negative_mass,
        factor_solve_seconds,
        pivot_ratio: factor.pivot_ratio,
        factor_entries: factor.entries,
        factor_flops: factor.flops,
    })
}

/// What the factorisation of the solved operator cost.
struct FactorStats {
    pivot_ratio: f64,
    entries: usize,
    flops: f64,
}

/// The null vector of the generator `a` by shifted inverse iteration (unnormalised), and the
/// factorisation's statistics.
fn null_vector(a: &Stencil9) -> Result<(Vec<f64>, FactorStats), SingularMatrix> {
    let grid = a.grid;
    let nd = NestedDissection::new(grid.nx, grid.ny, None);
    let diag_max = a.coef.iter().fold(0.0f64, |m, r| m.max(r[CENTRE].abs()));
    let sigma = SHIFT * diag_max;
    // σI − A = σ (I − A/σ).
    let shifted = a.shifted_identity(1.0 / sigma);
    let factor = nd.factorize(&shifted)?;
    let mut p = vec![1.0 / (grid.len() as f64 * grid.cell_area()); grid.len()];
    let mass0: f64 = p.iter().sum();
    let mut next = p.clone();
    // Max-norm changes of the last iterations.
    let mut changes: Vec<f64> = Vec::with_capacity(MAX_ITERATIONS);
    for _ in 0..MAX_ITERATIONS {
        next.copy_from_slice(&p);
        factor.solve_in_place(&mut next);
        // The exact iteration conserves mass (1ᵀA = 0); the LU of the nearly singular σI − A
        // does so only to ~eps·cond, a uniform drift of scale that would otherwise dominate
        // the change between iterates. Rescaling removes it without touching the shape.
        let scale = mass0 / next.iter().sum::<f64>();
        next.iter_mut().for_each(|v| *v *= scale);
        let change = next
            .iter()
            .zip(&p)
            .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
        let top = next.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        std::mem::swap(&mut p, &mut next);
        changes.push(change);
        if remaining_change(&changes) <= CHANGE_TOLERANCE * top {
            break;
        }
    }
    let stats = FactorStats {
        pivot_ratio: factor.pivot_ratio,
        entries: nd.factor_entries(),
        flops: nd.factor_flops(),
    };
    Ok((p, stats))
}
