//! Hopping between the two flat wells above Δ_S* (issue 13): the FP generator's first non-zero
//! relaxation rate λ1 (k = λ1/2), the adjoint passage time to the midline (k = 1/(2τ(x_ss))), and
//! the reduced 1-D theory's k (`theory::hopping`), on the paper's valley at η = 0.01.

use crate::config::AxisConfig;
use crate::fp::{CrossDiffusionScheme, grid::Grid, operator, passage, spectrum, steady};
use crate::landscape::Valley2d;
use crate::noise::Noise;
use crate::theory::hopping;

use super::StudyError;

/// Half-widths of the FP domain [−X, X] × [−Y, Y] of the hopping study.
pub const DOMAIN: (f64, f64) = (1.2, 0.4);
/// y-cells of the hopping study (the rates change by < 1 % from 48 to 96 y-cells).
pub const Y_CELLS: usize = 48;
/// Rates below this are round-off of the shift-invert iteration, not physics.
pub const RATE_FLOOR: f64 = 1e-13;

/// One FP estimate of the hopping rate at (Δ_S, nx).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpHopping {
    /// Δ_S.
    pub delta_s: f64,
    /// x-cells.
    pub nx: usize,
    /// λ1/2 from the spectrum.
    pub from_spectrum: f64,
    /// 1/(2τ(x_ss)) from the adjoint solve of the odd sector.
    pub from_passage: f64,
}

/// Hessian noise of power 2 at Δ_S with η = 0.01.
pub fn noise_at(delta_s: f64) -> Noise {
    Noise::Hessian {
        eta: 0.01,
        sigma: delta_s / 0.01,
        power: 2.0,
    }
}

/// The FP's hopping rate on an nx × [`Y_CELLS`] grid (nx even).
pub fn fp_hopping(valley: &Valley2d, delta_s: f64, nx: usize) -> Result<FpHopping, StudyError> {
    let g = Grid::new(
        &AxisConfig::new(-DOMAIN.0, DOMAIN.0, nx),
        &AxisConfig::new(-DOMAIN.1, DOMAIN.1, Y_CELLS),
    );
    let a = operator::assemble(
        &g,
        valley,
        &noise_at(delta_s),
        CrossDiffusionScheme::Central,
    );
    let rates = spectrum::relaxation_rates(&a, 1, spectrum::default_shift(&a))
        .map_err(|e| StudyError::Fp(e.into()))?;
    let ss = steady::solve_steady(&a).map_err(|e| StudyError::Fp(e.into()))?;
    let mx = g.marginal_x(&ss.density);
    let i_ss = (nx / 2..nx)
        .max_by(|&i, &j| mx[i].total_cmp(&mx[j]))
        .unwrap_or(nx - 1);
    let (half, tau) = passage::passage_time_to_midline(&a)?;
    let t = passage::interpolate(&half, &tau, g.x(i_ss), 0.0).unwrap_or(f64::NAN);
    Ok(FpHopping {
        delta_s,
        nx,
        from_spectrum: 0.5 * rates.first().map_or(f64::NAN, |r| r.rate),
        from_passage: 0.5 / t,
    })
}

/// log10 k of the reduced 1-D theory on the FP study's domain; `None` below Δ_S*.
pub fn theory_log10_rate(valley: &Valley2d, delta_s: f64) -> Option<f64> {
    hopping::hopping_time(
        valley,
        &noise_at(delta_s),
        (-DOMAIN.1, DOMAIN.1),
        DOMAIN.0,
        4000,
    )
    .map(|h| h.log10_rate())
}
