//! Runs the 2-D FP model for the network's feedback (issue 14, item 5): the network measures
//! the start's geometry and the noise (`network::feedback`), this layer — above both solvers —
//! solves the FP transient on the mapped valley and hands the drift dx/dt back.

use rayon::prelude::*;

use crate::config::NoProgress;
use crate::fp::{self, FokkerPlanckConfig, FpPlan, InitialConfig};
use crate::network::NetworkResult;
use crate::network::feedback::{DriftProblem, late_slope};

/// d⟨x⟩/dt of the FP transient of `problem` over its second half; NaN if the plan is rejected
/// or the solve fails.
pub fn fp_drift(problem: &DriftProblem) -> f64 {
    let cfg = FokkerPlanckConfig {
        steady: false,
        t_end: problem.t_end,
        dt: problem.dt,
        initial: Some(InitialConfig::Gaussian {
            mean: problem.mean,
            std: problem.std,
        }),
        ..FokkerPlanckConfig::steady(problem.x, problem.y)
    };
    let Ok(plan) = FpPlan::new(problem.valley.clone(), problem.noise.clone(), cfg) else {
        return f64::NAN;
    };
    match fp::solve(&plan, &NoProgress) {
        Ok(sol) => {
            let rows: Vec<(f64, f64)> = sol.moments.iter().map(|m| (m.t, m.mean_x)).collect();
            late_slope(&rows)
        }
        Err(_) => f64::NAN,
    }
}

/// Replace the closed-form drift of every seed's label-noise and SGD prediction by the FP's
/// (seeds in parallel; each solve is deterministic) and refresh the rate rows.
pub fn run_fp(result: &mut NetworkResult) {
    let eta = result.summary.eta;
    let Some(fb) = result
        .summary
        .manifold
        .as_mut()
        .and_then(|m| m.feedback.as_mut())
    else {
        return;
    };
    fb.seeds.par_iter_mut().for_each(|s| {
        let geo = s.geometry.clone();
        for pred in [&mut s.label_noise, &mut s.sgd] {
            if let Some(problem) = crate::network::feedback::drift_problem(&geo, eta, pred.delta_s)
            {
                let dx_dt = fp_drift(&problem);
                if dx_dt.is_finite() {
                    pred.set_dx_dt(&geo, eta, dx_dt);
                }
            }
        }
    });
    fb.refresh_rates();
}
