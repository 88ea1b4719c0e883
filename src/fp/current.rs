//! Steady probability currents J = −(P∇L + ∇·(DP)) (Eq. 10) on the cell faces, from the same
//! discrete face fluxes the operator is assembled from ([`super::operator::visit_faces`]), so that
//! their discrete divergence is exactly −A·P: zero at the steady state up to the solve's residual
//! (docs/reference.md §2.2, §7.4).
//!
//! Layout: `jx[i·ny + j]` is the flux per unit length across the x-face between cells (i, j) and
//! (i+1, j), i < nx − 1; `jy[i·(ny−1) + j]` across the y-face between (i, j) and (i, j+1).
//! Boundary faces carry no flux.

use serde::Serialize;

use super::config::CrossDiffusionScheme;
use super::grid::Grid;
use super::operator::{discrete_time_diffusion, visit_faces};
use crate::landscape::Loss2d;
use crate::noise::Noise;

/// A face-centred current field and its summaries.
#[derive(Debug, Clone)]
pub struct Current {
    /// x-face fluxes, (nx − 1) × ny, row-major.
    pub jx: Vec<f64>,
    /// y-face fluxes, nx × (ny − 1), row-major.
    pub jy: Vec<f64>,
    /// Stream function ψ at the interior cell corners, (nx − 1) × (ny − 1): J = (∂yψ, −∂xψ).
    pub psi: Vec<f64>,
    /// The scalar summaries.
    pub summary: CurrentSummary,
}

/// summary.json's current entries (`fokker_planck.current_l1` etc.).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CurrentSummary {
    /// ∫|J| dx dy, |J| at cell centres from the mean of the two faces on each axis.
    pub current_l1: f64,
    /// max |ψ| over the interior corners: the probability per unit time circulating around the
    /// centre of the strongest vortex (the flux across any cut from the wall to that point).
    pub circulation: f64,
    /// [x, y] of the corner where |ψ| is largest.
    pub circulation_centre: [f64; 2],
    /// ∫ Jᵀ D⁻¹ J / P dx dy over the cells with P > 0 and D invertible.
    pub entropy_production: f64,
    /// Mass fraction of the cells left out of `entropy_production` (P ≤ 0 or D singular).
    pub entropy_production_excluded_mass: f64,
    /// Largest |discrete divergence of J| relative to the largest |J|/h (≈ 0 at the steady state).
    pub divergence_defect: f64,
}

/// det D below this × (tr D)² counts as singular for the entropy production.
pub const SINGULAR_D: f64 = 1e-12;

/// The current of density `p` on `grid` for the landscape, noise and discretisation the
/// operator was assembled with.
pub fn current<L: Loss2d + ?Sized>(
    grid: &Grid,
    valley: &L,
    noise: &Noise,
    cross: CrossDiffusionScheme,
    discrete_eta: Option<f64>,
    p: &[f64],
) -> Current {
    let (nx, ny) = (grid.nx, grid.ny);
    let mut jx = vec![0.0; nx.saturating_sub(1) * ny];
    let mut jy = vec![0.0; nx * ny.saturating_sub(1)];
    visit_faces(
        grid,
        valley,
        noise,
        cross,
        discrete_eta,
        |axis, from, col, w| {
            let pc = p[col.0 * ny + col.1];
            if axis == 0 {
                jx[from.0 * ny + from.1] += w * pc;
            } else {
                jy[from.0 * (ny - 1) + from.1] += w * pc;
            }
        },
    );
    let jx_at = |i: isize, j: usize| -> f64 {
        if i < 0 || i as usize >= nx - 1 {
            0.0
        } else {
            jx[i as usize * ny + j]
        }
    };
    let jy_at = |i: usize, j: isize| -> f64 {
        if j < 0 || j as usize >= ny - 1 {
            0.0
        } else {
            jy[i * (ny - 1) + j as usize]
        }
    };
    let (dx, dy) = (grid.dx, grid.dy);
    let da = grid.cell_area();
    let mut l1 = 0.0;
    let mut sigma = 0.0;
    let mut excluded = 0.0;
    let mut mass = 0.0;
    let mut div_max: f64 = 0.0;
    let mut j_max: f64 = 0.0;
    for i in 0..nx {
        let x = grid.x(i);
        for j in 0..ny {
            let y = grid.y(j);
            let (ii, jj) = (i as isize, j as isize);
            let (w, e) = (jx_at(ii - 1, j), jx_at(ii, j));
            let (s, n) = (jy_at(i, jj - 1), jy_at(i, jj));
            div_max = div_max.max(((e - w) / dx + (n - s) / dy).abs());
            j_max = j_max.max(e.abs().max(n.abs()));
            let (cx, cy) = (0.5 * (w + e), 0.5 * (s + n));
            l1 += cx.hypot(cy) * da;
            let pk = p[i * ny + j];
            mass += pk.max(0.0) * da;
            let d = match discrete_eta {
                Some(eta) => discrete_time_diffusion(valley, noise, eta, x, y),
                None => noise.diffusion(valley, x, y),
            };
            let det = d[0][0] * d[1][1] - d[0][1] * d[1][0];
            let tr = d[0][0] + d[1][1];
            if pk > 0.0 && det > SINGULAR_D * tr * tr {
                // Jᵀ D⁻¹ J with D⁻¹ = [[d22, −d12], [−d12, d11]] / det.
                let q = (d[1][1] * cx * cx - 2.0 * d[0][1] * cx * cy + d[0][0] * cy * cy) / det;
                sigma += q / pk * da;
            } else {
                excluded += pk.max(0.0) * da;
            }
        }
    }
    // ψ at corner (i + ½, j + ½): ψ = 0 on the walls, ∂yψ = Jx.
    let (cx_n, cy_n) = (nx.saturating_sub(1), ny.saturating_sub(1));
    let mut psi = vec![0.0; cx_n * cy_n];
    let mut best = (0.0f64, [f64::NAN, f64::NAN]);
    for i in 0..cx_n {
        let mut acc = 0.0;
        for j in 0..cy_n {
            acc += jx[i * ny + j] * dy;
            psi[i * cy_n + j] = acc;
            if acc.abs() > best.0 {
                best = (
                    acc.abs(),
                    [
                        grid.x_min + (i + 1) as f64 * dx,
                        grid.y_min + (j + 1) as f64 * dy,
                    ],
                );
            }
        }
    }
    let h = dx.min(dy);
    Current {
        jx,
        jy,
        psi,
        summary: CurrentSummary {
            current_l1: l1,
            circulation: best.0,
            circulation_centre: best.1,
            entropy_production: sigma,
            entropy_production_excluded_mass: if mass > 0.0 { excluded / mass } else { 0.0 },
            divergence_defect: div_max * h / j_max.max(f64::MIN_POSITIVE),
        },
    }
}
