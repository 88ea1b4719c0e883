//! Phase diagrams: the scenario's parts re-run over a grid of (σ, η), or of (Δ_S, η), in
//! parallel across points (paper Figs. 3c, 5b, 5d).
//!
//! At each point the noise becomes `hessian` with that (η, σ) (power kept), and
//! * the sampler (when `[sampler]` is present) gives F(x_ss), |x_ss|, τ_s and the diverged
//!   fraction;
//! * the theory (2-D valley) gives the reduced x_ss, F(x_ss) and the paper's convergence
//!   estimate η⟨λ⟩_ss;
//! * the FP solver (when `[fokker_planck]` is present and the sweep is over Δ_S) gives ⟨|x|⟩,
//!   the mode of |x| and F; it depends on Δ_S only, so it runs once per Δ_S value.
//!
//! Points are numbered in the order of [`SweepConfig::points`] (η outer, σ or Δ_S inner).

use rayon::prelude::*;
use serde::Serialize;

use crate::config::{Cancelled, Progress};
use crate::fp;
use crate::noise::Noise;
use crate::sampler;
use crate::scenario::{DEFAULT_POWER, Scenario, SweepConfig};
use crate::theory::{self, TheoryConfig, TheoryPlan};

use super::{CancelOnly, StudyError};

/// One point of a sweep (a row of sweep.csv). Missing values are `None` (empty in the CSV).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SweepPoint {
    /// σ.
    pub sigma: f64,
    /// η.
    pub eta: f64,
    /// Δ_S = η σ.
    pub delta_s: f64,
    /// Sampler: F(x_ss), mean over converged walkers.
    pub flatness_ss: Option<f64>,
    /// Sampler: mean |x_ss|.
    pub x_ss_abs: Option<f64>,
    /// Sampler: τ_s = η⟨t_s⟩.
    pub search_time: Option<f64>,
    /// Sampler: fraction of diverged walkers.
    pub diverged_fraction: Option<f64>,
    /// Theory: reduced x_ss.
    pub theory_x_ss: Option<f64>,
    /// Theory: F(x_ss) of the reduced level.
    pub theory_flatness_ss: Option<f64>,
    /// Theory: η⟨λ⟩_ss (the paper's convergence condition is < 2).
    pub theory_eta_lambda: Option<f64>,
    /// FP: ⟨|x|⟩ of the steady density.
    pub fp_mean_abs_x: Option<f64>,
    /// FP: |x| at the mode of the x-marginal.
    pub fp_mode_abs_x: Option<f64>,
    /// FP: ⟨F(x)⟩.
    pub fp_mean_flatness: Option<f64>,
}

/// The rows of a sweep, in point order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTable {
    /// One row per point.
    pub rows: Vec<SweepPoint>,
}

fn power_of(noise: &Noise) -> f64 {
    match *noise {
        Noise::Hessian { power, .. } => power,
        _ => DEFAULT_POWER,
    }
}

/// The FP summary at each Δ_S of a Δ_S sweep (a (σ, η) grid has no repeated Δ_S: none).
fn fp_by_delta_s(
    sc: &Scenario,
    sw: &SweepConfig,
    progress: &dyn Progress,
) -> Result<Vec<(f64, fp::FpSummary)>, StudyError> {
    let (Some(plan), Some(ds)) = (sc.fokker_planck(), &sw.delta_s) else {
        return Ok(Vec::new());
    };
    let power = power_of(sc.noise());
    ds.values()
        .into_par_iter()
        .map(|d| {
            let noise = Noise::Hessian {
                eta: 1.0,
                sigma: d,
                power,
            };
            let point = plan.with_noise(noise)?;
            let sol = fp::solve(&point, &CancelOnly(progress))?;
            Ok((d, sol.summary))
        })
        .collect()
}

/// Compute one point: sampler and theory at (σ, η), the FP values looked up by Δ_S.
fn point(
    sc: &Scenario,
    theory_plan: Option<&TheoryPlan>,
    fp_rows: &[(f64, fp::FpSummary)],
    (sigma, eta): (f64, f64),
    progress: &dyn Progress,
) -> Result<SweepPoint, StudyError> {
    let delta_s = sigma * eta;
    let power = power_of(sc.noise());
    let noise = Noise::Hessian { eta, sigma, power };
    let mut row = SweepPoint {
        sigma,
        eta,
        delta_s,
        flatness_ss: None,
        x_ss_abs: None,
        search_time: None,
        diverged_fraction: None,
        theory_x_ss: None,
        theory_flatness_ss: None,
        theory_eta_lambda: None,
        fp_mean_abs_x: None,
        fp_mode_abs_x: None,
        fp_mean_flatness: None,
    };
    if let Some(plan) = sc.sampler() {
        let at = plan.with_hessian_noise(eta, sigma, power)?;
        let res = sampler::run(&at, None, &CancelOnly(progress))?;
        row.flatness_ss = res.summary.flatness_ss;
        row.x_ss_abs = res.summary.x_ss_abs;
        row.search_time = res.summary.search_time;
        row.diverged_fraction = Some(res.summary.diverged_fraction);
    }
    if let Some(plan) = theory_plan {
        let th = theory::summarize(plan.valley(), &noise, plan.config());
        row.theory_x_ss = Some(th.x_ss);
        row.theory_flatness_ss = Some(th.flatness_ss);
        row.theory_eta_lambda = th.convergence.map(|c| c.eta_lambda_mean_ss);
    }
    if let Some((_, f)) = fp_rows
        .iter()
        .find(|(d, _)| (d - delta_s).abs() <= 1e-12 * d.abs().max(1e-300))
    {
        row.fp_mean_abs_x = Some(f.mean_abs_x);
        row.fp_mode_abs_x = Some(f.mode_abs_x);
        row.fp_mean_flatness = Some(f.mean_flatness);
    }
    Ok(row)
}

/// The theory plan of the sweep points: the scenario's `[theory]`, else defaults on the 2-D
/// valley (the theory columns are always filled on valley2d).
fn theory_plan(sc: &Scenario) -> Option<TheoryPlan> {
    if let Some(p) = sc.theory() {
        return Some(p.clone());
    }
    let valley = sc.valley2d()?;
    let domain = sc.fokker_planck().map(|p| (&p.config().x, &p.config().y));
    TheoryPlan::new(
        valley.clone(),
        sc.noise().clone(),
        &TheoryConfig::default(),
        domain,
    )
    .ok()
}

/// Run the scenario's sweep over every point; `progress` counts points.
pub fn run(sc: &Scenario, progress: &dyn Progress) -> Result<SweepTable, StudyError> {
    let Some(sw) = sc.sweep() else {
        return Ok(SweepTable { rows: Vec::new() });
    };
    let pts = sw.points(sc.noise());
    progress.start("sweep: points", Some(pts.len() as u64));
    let fp_rows = fp_by_delta_s(sc, sw, progress)?;
    let theory = theory_plan(sc);
    let rows: Result<Vec<SweepPoint>, StudyError> = pts
        .par_iter()
        .map(|&p| {
            if progress.cancelled() {
                return Err(StudyError::from(Cancelled));
            }
            let row = point(sc, theory.as_ref(), &fp_rows, p, progress);
            progress.advance(1);
            row
        })
        .collect();
    progress.finish();
    Ok(SweepTable { rows: rows? })
}
