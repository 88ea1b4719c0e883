//! Fokker–Planck solver for P(x, y, t) (Eq. 10, docs/reference.md §2): grid, operator assembly,
//! a nested-dissection direct solver, the steady state and the implicit transient.
//! Observers (moments, marginals, snapshots) are separate from stepping.

pub mod config;
pub mod current;
mod front_solve;
pub mod grid;
pub mod nested;
pub mod operator;
pub mod passage;
pub mod spectrum;
pub mod steady;
pub mod symmetry;
pub mod transient;

use std::time::Instant;

use serde::Serialize;

use crate::config::{Cancelled, Progress, check_cancelled};
use crate::landscape::{Landscape, Loss2d};
use crate::noise::Noise;
pub use config::{CrossDiffusionScheme, FokkerPlanckConfig, FpPlan, InitialConfig, Symmetry};
use grid::Grid;
use nested::{NestedDissection, SingularMatrix};
use operator::Stencil9;
use steady::{SteadyState, solve_steady, solve_steady_whole_grid};
use transient::{AdaptiveError, AdaptiveStats, AdaptiveTrBdf2, BackwardEuler, Tolerance, TrBdf2};

/// Moments of a density at one time (a row of `moments.csv`).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Moments {
    /// Time.
    pub t: f64,
    /// Σ P dx dy.
    pub mass: f64,
    /// ⟨x⟩.
    pub mean_x: f64,
    /// ⟨y⟩.
    pub mean_y: f64,
    /// Var x.
    pub var_x: f64,
    /// Var y.
    pub var_y: f64,
    /// Cov(x, y).
    pub cov_xy: f64,
    /// ⟨F(x)⟩, the mean flatness (Eq. 6).
    pub mean_flatness: f64,
    /// ⟨L⟩.
    pub mean_loss: f64,
}

/// Moments of `p` on `grid` (midpoint rule); normalised by the mass.
pub fn moments<L: Loss2d + ?Sized>(grid: &Grid, valley: &L, p: &[f64], t: f64) -> Moments {
    let (mut m0, mut mx, mut my, mut mxx, mut myy, mut mxy, mut mf, mut ml) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..grid.nx {
        let x = grid.x(i);
        let col = &p[i * grid.ny..(i + 1) * grid.ny];
        let (mut c0, mut cy, mut cyy, mut cl, mut cf) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (j, &v) in col.iter().enumerate() {
            let y = grid.y(j);
            cf += v * valley.flatness(x, y);
            c0 += v;
            cy += v * y;
            cyy += v * y * y;
            cl += v * valley.loss(x, y);
        }
        m0 += c0;
        mx += c0 * x;
        mxx += c0 * x * x;
        my += cy;
        myy += cyy;
        mxy += cy * x;
        mf += cf;
        ml += cl;
    }
    let da = grid.cell_area();
    let mean_x = mx / m0;
    let mean_y = my / m0;
    Moments {
        t,
        mass: m0 * da,
        mean_x,
        mean_y,
        var_x: mxx / m0 - mean_x * mean_x,
        var_y: myy / m0 - mean_y * mean_y,
        cov_xy: mxy / m0 - mean_x * mean_y,
        mean_flatness: mf / m0,
        mean_loss: ml / m0,
    }
}

/// The `fokker_planck` object of summary.json (docs/reference.md §7.4).
#[derive(Debug, Clone, Serialize)]
pub struct FpSummary {
    /// [nx, ny].
    pub grid: [usize; 2],
    /// Σ P dx dy of the reported density.
    pub mass: f64,
    /// Σ |min(P, 0)| dx dy.
    pub negative_mass: f64,
    /// Relative residual of the steady solve (absent without a steady solve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_residual: Option<f64>,
    /// [⟨x⟩, ⟨y⟩].
    pub mean: [f64; 2],
    /// [[xx, xy], [xy, yy]].
    pub cov: [[f64; 2]; 2],
    /// ⟨|x|⟩.
    pub mean_abs_x: f64,
    /// |x| at the maximum of the x-marginal.
    pub mode_abs_x: f64,
    /// ⟨F(x)⟩.
    pub mean_flatness: f64,
    /// Assembly + factorisation + solve of the steady state, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solve_seconds: Option<f64>,
    /// Steady solve: stored LU entries (× 8 bytes = the factor's memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_factor_entries: Option<usize>,
    /// Steady solve: GFLOP of the factorisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_factor_gflop: Option<f64>,
    /// Which density the statistics describe: "steady" or "transient".
    pub density: &'static str,
    /// Transient run: number of implicit steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_steps: Option<usize>,
    /// Transient run: |mass(t_end) − mass(0)|.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_mass_drift: Option<f64>,
    /// Transient run: the smallest density value met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_min_density: Option<f64>,
    /// Transient run: cells × steps per second of the stepper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_cell_steps_per_second: Option<f64>,
    /// Steady probability currents (current_l1, circulation, entropy_production, …).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub currents: Option<current::CurrentSummary>,
    /// `eigenvalues = k`: the k slowest non-zero relaxation rates of the generator, ascending
    /// (rate = −Re μ, frequency = Im μ; `spectrum::relaxation_rates`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relaxation_rates: Option<Vec<spectrum::RelaxationRate>>,
    /// `eigenvalues = k`: seconds of the shift-invert Arnoldi (factorisation included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spectrum_seconds: Option<f64>,
    /// Adaptive transient: rejected step attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_rejected_steps: Option<usize>,
    /// Adaptive transient: LU factorisations (one per step size used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_factorizations: Option<usize>,
}

/// Below −this × the largest |P| a negative density is not round-off.
pub const NEGATIVE_TOLERANCE: f64 = 1e-9;
/// A Gaussian initial density narrower than this many cells (σ/h) is under-resolved.
pub const MIN_INITIAL_STD_CELLS: f64 = 2.0;
/// A steady peak narrower than this many cells (full width at half maximum) is under-resolved.
pub const MIN_PEAK_CELLS: f64 = 5.0;

/// Full width at half maximum of the highest peak of `p` on a uniform grid, in cells
/// (linear interpolation of the half-maximum crossings).
pub fn peak_width_cells(p: &[f64]) -> f64 {
    let Some((m, &top)) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
        return 0.0;
    };
    if top.is_nan() || top <= 0.0 {
        return 0.0;
    }
    let half = 0.5 * top;
    let mut right = (p.len() - 1) as f64;
    for k in m + 1..p.len() {
        if p[k] < half {
            right = (k - 1) as f64 + (p[k - 1] - half) / (p[k - 1] - p[k]);
            break;
        }
    }
    let mut left = 0.0;
    for k in (0..m).rev() {
        if p[k] < half {
            left = (k + 1) as f64 - (p[k + 1] - half) / (p[k + 1] - p[k]);
            break;
        }
    }
    right - left
}

/// Plain-language warnings about the numerics of a solution: negative transient densities,
/// an under-resolved initial density, a steady peak that spans too few cells.
pub fn warnings(plan: &FpPlan, sol: &FpSolution) -> Vec<String> {
    let cfg = plan.config();
    let g = &sol.grid;
    let mut out = Vec::new();
    if let Some(min) = sol.summary.transient_min_density {
        let scale = sol.density.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if min < -NEGATIVE_TOLERANCE * scale {
            out.push(format!(
                "the transient density went negative (minimum {min:.3e} against a final peak of {scale:.3e}): reduce fokker_planck.dt (now {}) or raise fokker_planck.start_steps (now {})",
                cfg.dt, cfg.start_steps
            ));
        }
    }
    if let Some(InitialConfig::Gaussian { std, .. }) = &cfg.initial {
        for (axis, s, h) in [("x", std[0], g.dx), ("y", std[1], g.dy)] {
            if s < MIN_INITIAL_STD_CELLS * h {
                out.push(format!(
                    "the initial density is under-resolved in {axis}: std = {s} is less than {MIN_INITIAL_STD_CELLS} cells ({axis}-cell = {h:.3e}); widen it or refine fokker_planck.{axis}.cells"
                ));
            }
        }
    }
    if sol.summary.density == "steady" {
        let axes = [
            ("x", g.marginal_x(&sol.density), cfg.x.cells),
            ("y", g.marginal_y(&sol.density), cfg.y.cells),
        ];
        for (axis, p, cells) in axes {
            let w = peak_width_cells(&p);
            if w < MIN_PEAK_CELLS {
                let suggest = (cells as f64 * 2.0 * MIN_PEAK_CELLS / w.max(0.5)).ceil() as usize;
                out.push(format!(
                    "the steady peak spans only {w:.1} cells in {axis} (full width at half maximum): the grid is too coarse there; try fokker_planck.{axis}.cells >= {suggest} or a narrower domain"
                ));
            }
        }
    }
    out
}

/// Everything the FP solver produces.
#[derive(Debug, Clone)]
pub struct FpSolution {
    /// The grid.
    pub grid: Grid,
    /// summary.json's `fokker_planck`.
    pub summary: FpSummary,
    /// The reported density (steady if solved, else the final transient one).
    pub density: Vec<f64>,
    /// The steady solve, when run.
    pub steady: Option<SteadyState>,
    /// Transient moments, one row per step (with t = 0).
    pub moments: Vec<Moments>,
    /// Transient snapshots (t, P).
    pub snapshots: Vec<(f64, Vec<f64>)>,
    /// The steady probability current, when a steady state was solved.
    pub current: Option<current::Current>,
}

/// Why the FP solver failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FpError {
    /// The discrete operator could not be factorised.
    #[error("Fokker–Planck solver: {0}")]
    Singular(#[from] SingularMatrix),
    /// Neither a steady state nor a transient was requested.
    #[error("Fokker–Planck solver: nothing to compute (steady = false and t_end = 0)")]
    NothingToDo,
    /// The solution is not finite.
    #[error("Fokker–Planck solver: the density is not finite ({0})")]
    NotFinite(&'static str),
    /// The caller asked to stop.
    #[error("Fokker–Planck solver: {0}")]
    Cancelled(#[from] Cancelled),
    /// The adaptive transient could not meet its tolerance.
    #[error("Fokker–Planck solver: {0}")]
    Adaptive(AdaptiveError),
    /// The relaxation rates could not be computed.
    #[error(transparent)]
    Spectrum(#[from] spectrum::SpectrumError),
}

/// The initial density of a transient run on `grid`: the Gaussian's exact mass in each cell
/// (products of error-function differences) divided by the cell area, so even a Gaussian narrower
/// than a cell keeps its mass; normalised to mass 1.
pub fn initial_density(grid: &Grid, init: &InitialConfig) -> Vec<f64> {
    let mut p = vec![0.0; grid.len()];
    match init {
        InitialConfig::Gaussian { mean, std } => {
            // Mass of N(m, s²) in [c − h/2, c + h/2].
            let cell_mass = |c: f64, h: f64, m: f64, s: f64| {
                let z = |v: f64| (v - m) / (s * std::f64::consts::SQRT_2);
                0.5 * (libm::erf(z(c + 0.5 * h)) - libm::erf(z(c - 0.5 * h)))
            };
            let wx: Vec<f64> = (0..grid.nx)
                .map(|i| cell_mass(grid.x(i), grid.dx, mean[0], std[0]))
                .collect();
            let wy: Vec<f64> = (0..grid.ny)
                .map(|j| cell_mass(grid.y(j), grid.dy, mean[1], std[1]))
                .collect();
            for (i, a) in wx.iter().enumerate() {
                for (j, b) in wy.iter().enumerate() {
                    p[grid.index(i, j)] = a * b;
                }
            }
        }
        InitialConfig::Uniform {} => p.fill(1.0),
    }
    let mass = grid.mass(&p);
    p.iter_mut().for_each(|v| *v /= mass);
    p
}

/// A transient run (fixed or adaptive steps): densities, moments and what the stepper did.
struct TransientRun {
    moments: Vec<Moments>,
    snapshots: Vec<(f64, Vec<f64>)>,
    /// The density at t_end.
    density: Vec<f64>,
    /// Time steps taken (the backward-Euler start counts as one).
    steps: usize,
    /// |mass(t_end) − mass(0)|.
    mass_drift: f64,
    /// Smallest density value seen over the run.
    min_density: f64,
    /// Cells × steps per second of stepping.
    cell_steps_per_second: f64,
    /// The adaptive stepper's counts (None for fixed steps).
    adaptive: Option<AdaptiveStats>,
}

/// Smallest value of a density (negative where the scheme undershoots).
fn min_value(p: &[f64]) -> f64 {
    p.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The transient at the fixed step `dt`: the first step is `start_steps` backward-Euler steps
/// of dt / start_steps, then TR-BDF2, and a last shorter step onto t_end; snapshots at the step
/// nearest each requested time, one moments row per step.
fn transient_fixed<L: Loss2d + ?Sized>(
    a: &Stencil9,
    nd: &NestedDissection,
    grid: &Grid,
    valley: &L,
    cfg: &FokkerPlanckConfig,
    mut p: Vec<f64>,
    progress: &dyn Progress,
) -> Result<TransientRun, FpError> {
    let n_full = ((cfg.t_end / cfg.dt) * (1.0 + 1e-12)).floor() as usize;
    let rest = cfg.t_end - n_full as f64 * cfg.dt;
    let total_steps = n_full + usize::from(rest > 1e-12 * cfg.dt);
    progress.start("Fokker–Planck transient", Some(total_steps as u64));
    let mut snap_times: Vec<f64> = cfg.snapshots.clone();
    snap_times.sort_by(f64::total_cmp);
    let mut snap_iter = snap_times.into_iter().peekable();
    let mut t = 0.0;
    let mass0 = grid.mass(&p);
    let mut min_density = min_value(&p);
    let mut moments_rows = Vec::new();
    let mut snapshots = Vec::new();
    let mut record =
        |t: f64, p: &[f64], rows: &mut Vec<Moments>, snaps: &mut Vec<(f64, Vec<f64>)>| {
            rows.push(moments(grid, valley, p, t));
            while let Some(&ts) = snap_iter.peek() {
                if ts <= t + 0.5 * cfg.dt {
                    snaps.push((t, p.to_vec()));
                    snap_iter.next();
                } else {
                    break;
                }
            }
        };
    record(0.0, &p, &mut moments_rows, &mut snapshots);
    let step_clock = Instant::now();
    let mut stepper = TrBdf2::new(a, nd, cfg.dt)?;
    // The first step is `start_steps` backward-Euler steps of dt / start_steps.
    let start = (cfg.start_steps > 0 && n_full > 0)
        .then(|| BackwardEuler::new(a, nd, cfg.dt / cfg.start_steps as f64))
        .transpose()?;
    for n in 0..n_full {
        match (&start, n) {
            (Some(be), 0) => (0..cfg.start_steps).for_each(|_| be.step(&mut p)),
            _ => stepper.step(&mut p),
        }
        t += cfg.dt;
        min_density = min_density.min(min_value(&p));
        record(t, &p, &mut moments_rows, &mut snapshots);
        progress.advance(1);
        if progress.cancelled() {
            progress.finish();
            return Err(Cancelled.into());
        }
    }
    if rest > 1e-12 * cfg.dt {
        let mut last = TrBdf2::new(a, nd, rest)?;
        last.step(&mut p);
        t = cfg.t_end;
        min_density = min_density.min(min_value(&p));
        record(t, &p, &mut moments_rows, &mut snapshots);
        progress.advance(1);
    }
    progress.finish();
    if p.iter().any(|v| !v.is_finite()) {
        return Err(FpError::NotFinite("transient"));
    }
    let secs = step_clock.elapsed().as_secs_f64();
    Ok(TransientRun {
        moments: moments_rows,
        snapshots,
        steps: total_steps,
        mass_drift: (grid.mass(&p) - mass0).abs(),
        min_density,
        cell_steps_per_second: (grid.len() * total_steps) as f64 / secs.max(1e-12),
        density: p,
        adaptive: None,
    })
}

/// The transient with error control (`rtol`/`atol`): the backward-Euler start over [0, dt] as in
/// the fixed-step run, then [`AdaptiveTrBdf2`] to t_end; snapshots at their exact times
/// (interpolated between steps), one moments row per accepted step.
#[allow(clippy::too_many_arguments)]
fn transient_adaptive<L: Loss2d + ?Sized>(
    a: &Stencil9,
    nd: &NestedDissection,
    grid: &Grid,
    valley: &L,
    cfg: &FokkerPlanckConfig,
    tol: Tolerance,
    mut p: Vec<f64>,
    progress: &dyn Progress,
) -> Result<TransientRun, FpError> {
    const TICKS: u64 = 1000;
    progress.start("Fokker–Planck transient (adaptive)", Some(TICKS));
    let mut snap_times: Vec<f64> = cfg.snapshots.clone();
    snap_times.sort_by(f64::total_cmp);
    let mass0 = grid.mass(&p);
    let mut min_density = min_value(&p);
    let mut moments_rows = vec![moments(grid, valley, &p, 0.0)];
    let mut snapshots: Vec<(f64, Vec<f64>)> = snap_times
        .iter()
        .take_while(|&&s| s <= 0.0)
        .map(|_| (0.0, p.clone()))
        .collect();
    let clock = Instant::now();
    let mut t0 = 0.0;
    let mut start_steps = 0;
    if cfg.start_steps > 0 {
        let be = BackwardEuler::new(a, nd, cfg.dt / cfg.start_steps as f64)?;
        (0..cfg.start_steps).for_each(|_| be.step(&mut p));
        t0 = cfg.dt;
        start_steps = 1;
        min_density = min_density.min(min_value(&p));
        moments_rows.push(moments(grid, valley, &p, t0));
        for _ in snap_times.iter().filter(|&&s| s > 0.0 && s <= t0) {
            snapshots.push((t0, p.clone()));
        }
    }
    let stops: Vec<f64> = snap_times.into_iter().filter(|&s| s > t0).collect();
    let mut stepper = AdaptiveTrBdf2::new(a, nd, tol);
    let mut ticks = 0u64;
    let stats = if cfg.t_end > t0 {
        let t_end = cfg.t_end;
        let result = stepper.integrate(
            &mut p,
            (t0, t_end),
            cfg.dt,
            &stops,
            &mut |t, q| {
                min_density = min_density.min(min_value(q));
                moments_rows.push(moments(grid, valley, q, t));
                let now = ((t / t_end) * TICKS as f64) as u64;
                progress.advance(now.saturating_sub(ticks));
                ticks = ticks.max(now);
                !progress.cancelled()
            },
            &mut |t, q| {
                snapshots.push((t, q.to_vec()));
                true
            },
        );
        match result {
            Ok(stats) => stats,
            Err(AdaptiveError::Stopped) => {
                progress.finish();
                return Err(Cancelled.into());
            }
            Err(AdaptiveError::Singular(e)) => return Err(e.into()),
            Err(e @ AdaptiveError::StepTooSmall { .. }) => return Err(FpError::Adaptive(e)),
        }
    } else {
        stepper.stats
    };
    progress.finish();
    if p.iter().any(|v| !v.is_finite()) {
        return Err(FpError::NotFinite("transient"));
    }
    let steps = stats.accepted + start_steps;
    let secs = clock.elapsed().as_secs_f64();
    Ok(TransientRun {
        moments: moments_rows,
        snapshots,
        steps,
        mass_drift: (grid.mass(&p) - mass0).abs(),
        min_density,
        cell_steps_per_second: (grid.len() * steps) as f64 / secs.max(1e-12),
        density: p,
        adaptive: Some(stats),
    })
}

/// The discrete generator A (dP/dt = A P) of a validated plan, as [`solve`] assembles it
/// (Eq. 10; the modified equation of the SGD map when `discrete_time = true`).
pub fn generator(plan: &FpPlan) -> operator::Stencil9 {
    match plan.landscape() {
        Landscape::Valley2d(v) => generator_on(plan, v),
        Landscape::Expression(e) => generator_on(plan, e),
        Landscape::Valley(_) | Landscape::None => {
            unreachable!("FpPlan::from_landscape accepts only 2-D landscapes")
        }
    }
}

/// [`generator`] on the plan's landscape `valley`.
fn generator_on<L: Loss2d>(plan: &FpPlan, valley: &L) -> operator::Stencil9 {
    let (noise, cfg) = (plan.noise(), plan.config());
    let grid = Grid::new(&cfg.x, &cfg.y);
    let discrete_eta = match *noise {
        Noise::Hessian { eta, .. } if cfg.discrete_time => Some(eta),
        _ => None,
    };
    operator::assemble_with(&grid, valley, noise, cfg.cross_diffusion, discrete_eta)
}

/// Solve the FP equation (Eq. 10) of a validated plan: steady state and/or transient.
/// `progress` sees the direct solve as one task of unknown length and the transient step by step.
pub fn solve(plan: &FpPlan, progress: &dyn Progress) -> Result<FpSolution, FpError> {
    match plan.landscape() {
        Landscape::Valley2d(v) => solve_on(plan, v, progress),
        Landscape::Expression(e) => solve_on(plan, e, progress),
        Landscape::Valley(_) | Landscape::None => {
            unreachable!("FpPlan::from_landscape accepts only 2-D landscapes")
        }
    }
}

/// [`solve`] on the plan's landscape `valley` (monomorphised per landscape type).
fn solve_on<L: Loss2d>(
    plan: &FpPlan,
    valley: &L,
    progress: &dyn Progress,
) -> Result<FpSolution, FpError> {
    let (noise, cfg) = (plan.noise(), plan.config());
    let grid = Grid::new(&cfg.x, &cfg.y);
    let t0 = Instant::now();
    let discrete_eta = match *noise {
        Noise::Hessian { eta, .. } if cfg.discrete_time => Some(eta),
        _ => None,
    };
    let a = generator_on(plan, valley);
    let mut steady = None;
    let mut solve_seconds = None;
    if cfg.steady {
        progress.start(
            &format!(
                "Fokker–Planck: steady state, nested-dissection LU of {} x {} cells",
                grid.nx, grid.ny
            ),
            None,
        );
        let ss = match cfg.symmetry {
            Symmetry::Auto => solve_steady(&a)?,
            Symmetry::Off => solve_steady_whole_grid(&a)?,
        };
        progress.finish();
        if ss.density.iter().any(|v| !v.is_finite()) {
            return Err(FpError::NotFinite("steady state"));
        }
        solve_seconds = Some(t0.elapsed().as_secs_f64());
        steady = Some(ss);
        check_cancelled(progress)?;
    }
    let mut spectrum_info = None;
    if cfg.eigenvalues > 0 {
        progress.start(
            &format!(
                "Fokker–Planck: {} slowest relaxation rates (shift-invert Arnoldi)",
                cfg.eigenvalues
            ),
            None,
        );
        let clock = Instant::now();
        let rates = spectrum::relaxation_rates_with(
            &a,
            cfg.eigenvalues,
            spectrum::default_shift(&a),
            spectrum::BLOCK,
            cfg.symmetry,
        )?;
        progress.finish();
        spectrum_info = Some((rates, clock.elapsed().as_secs_f64()));
        check_cancelled(progress)?;
    }
    let mut transient = if cfg.t_end > 0.0 {
        let init = cfg
            .initial
            .as_ref()
            .expect("validated: transient has an initial density");
        let p = initial_density(&grid, init);
        let nd = NestedDissection::new(grid.nx, grid.ny, None);
        Some(match cfg.tolerance() {
            Some(tol) => transient_adaptive(&a, &nd, &grid, valley, cfg, tol, p, progress)?,
            None => transient_fixed(&a, &nd, &grid, valley, cfg, p, progress)?,
        })
    } else {
        None
    };
    let (density, which) = match (&steady, transient.as_mut()) {
        (Some(ss), _) => (ss.density.clone(), "steady"),
        (None, Some(run)) => (std::mem::take(&mut run.density), "transient"),
        (None, None) => return Err(FpError::NothingToDo),
    };
    let m = moments(&grid, valley, &density, 0.0);
    let mx = grid.marginal_x(&density);
    let xs = grid.xs();
    let mean_abs_x = xs.iter().zip(&mx).map(|(x, p)| x.abs() * p).sum::<f64>() * grid.dx / m.mass;
    let mode = mx
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let negative_mass = density
        .iter()
        .filter(|&&v| v < 0.0)
        .fold(0.0, |acc, v| acc - v)
        * grid.cell_area();
    let current = steady.as_ref().map(|ss| {
        current::current(
            &grid,
            valley,
            noise,
            cfg.cross_diffusion,
            discrete_eta,
            &ss.density,
        )
    });
    let adaptive = transient.as_ref().and_then(|t| t.adaptive);
    let summary = FpSummary {
        grid: [grid.nx, grid.ny],
        mass: m.mass,
        negative_mass,
        steady_residual: steady.as_ref().map(|s| s.residual),
        mean: [m.mean_x, m.mean_y],
        cov: [[m.var_x, m.cov_xy], [m.cov_xy, m.var_y]],
        mean_abs_x,
        mode_abs_x: xs[mode].abs(),
        mean_flatness: m.mean_flatness,
        solve_seconds,
        steady_factor_entries: steady.as_ref().map(|s| s.factor_entries),
        steady_factor_gflop: steady.as_ref().map(|s| s.factor_flops * 1e-9),
        density: which,
        transient_steps: transient.as_ref().map(|t| t.steps),
        transient_mass_drift: transient.as_ref().map(|t| t.mass_drift),
        transient_min_density: transient.as_ref().map(|t| t.min_density),
        transient_cell_steps_per_second: transient.as_ref().map(|t| t.cell_steps_per_second),
        currents: current.as_ref().map(|c| c.summary),
        spectrum_seconds: spectrum_info.as_ref().map(|s| s.1),
        relaxation_rates: spectrum_info.map(|s| s.0),
        transient_rejected_steps: adaptive.map(|s| s.rejected),
        transient_factorizations: adaptive.map(|s| s.factorizations),
    };
    let (moments_rows, snapshots) = transient
        .map(|t| (t.moments, t.snapshots))
        .unwrap_or_default();
    Ok(FpSolution {
        grid,
        summary,
        density,
        steady,
        moments: moments_rows,
        snapshots,
        current,
    })
}
