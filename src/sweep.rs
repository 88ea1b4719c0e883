//! Phase diagrams: the scenario re-run over a grid of (σ, η), or of (Δ_S, η), in parallel
//! across points (SPEC §6 `[sweep]`, §7 `sweep.csv`; paper Figs. 3c, 5b, 5d).
//!
//! At each point the noise becomes `hessian` with that (η, σ) (power kept), and
//! * the sampler (when `[sampler]` is present) gives F(x_ss), |x_ss|, τ_s and the diverged
//!   fraction (SPEC §4);
//! * the theory (2-D valley) gives the reduced x_ss, F(x_ss) and the paper's convergence
//!   estimate η⟨λ⟩_ss;
//! * the FP solver (when `[fokker_planck]` is present and the sweep is over Δ_S) gives ⟨|x|⟩,
//!   the mode of |x| and F; it depends on Δ_S only, so it runs once per Δ_S value.

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::fp;
use crate::noise::Noise;
use crate::sampler;
use crate::scenario::{Scenario, SweepConfig};
use crate::theory;

/// One point of a sweep (a row of sweep.csv).
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

/// The (σ, η) pairs of a sweep, row-major over η then σ.
pub fn sweep_points(sc: &Scenario, sw: &SweepConfig) -> Vec<(f64, f64)> {
    let base_eta = match sc.noise {
        Noise::Hessian { eta, .. } => eta,
        _ => 0.01,
    };
    let etas = sw.eta.map_or_else(|| vec![base_eta], |r| r.values());
    let mut pts = Vec::new();
    for &eta in &etas {
        if let Some(sig) = &sw.sigma {
            pts.extend(sig.values().into_iter().map(|s| (s, eta)));
        } else if let Some(ds) = &sw.delta_s {
            pts.extend(ds.values().into_iter().map(|d| (d / eta, eta)));
        }
    }
    pts
}

/// The scenario at one sweep point: Hessian noise with (η, σ); the sampler takes η from it.
pub fn at_point(sc: &Scenario, sigma: f64, eta: f64) -> Scenario {
    let mut s = sc.clone();
    let power = match sc.noise {
        Noise::Hessian { power, .. } => power,
        _ => 2.0,
    };
    s.noise = Noise::Hessian { eta, sigma, power };
    if let Some(cfg) = s.sampler.as_mut() {
        cfg.eta = None;
    }
    s
}

/// Run a sweep; `progress` shows a bar over the points.
pub fn run(sc: &Scenario, sw: &SweepConfig, progress: bool) -> Result<Vec<SweepPoint>, String> {
    let pts = sweep_points(sc, sw);
    let bar = if progress {
        let b = ProgressBar::new(pts.len() as u64);
        b.set_style(
            ProgressStyle::with_template("sweep {bar:40} {pos}/{len} points [{elapsed} < {eta}]")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    // FP per distinct Δ_S (only for Δ_S sweeps: a (σ, η) grid has no repeated Δ_S).
    let fp_by_delta: Vec<(f64, Option<fp::FpSummary>)> =
        match (&sc.fokker_planck, sc.valley2d(), &sw.delta_s) {
            (Some(cfg), Some(valley), Some(ds)) => ds
                .values()
                .into_par_iter()
                .map(|d| {
                    let noise = Noise::Hessian {
                        eta: 1.0,
                        sigma: d,
                        power: power_of(&sc.noise),
                    };
                    (
                        d,
                        fp::run(valley, &noise, cfg, false).ok().map(|r| r.summary),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
    let rows: Result<Vec<SweepPoint>, String> = pts
        .par_iter()
        .map(|&(sigma, eta)| {
            let point = at_point(sc, sigma, eta);
            let delta_s = sigma * eta;
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
            if let Some(cfg) = &point.sampler {
                let res = sampler::run(&point, cfg, None, false).map_err(|e| e.to_string())?;
                row.flatness_ss = res.summary.flatness_ss;
                row.x_ss_abs = res.summary.x_ss_abs;
                row.search_time = res.summary.search_time;
                row.diverged_fraction = Some(res.summary.diverged_fraction);
            }
            if let Some(valley) = point.valley2d() {
                let cfg = point
                    .theory
                    .clone()
                    .unwrap_or_default()
                    .with_fp_domain(point.fokker_planck.as_ref());
                let th = theory::summarize(valley, &point.noise, &cfg);
                row.theory_x_ss = Some(th.x_ss);
                row.theory_flatness_ss = Some(th.flatness_ss);
                row.theory_eta_lambda = th.convergence.map(|c| c.eta_lambda_mean_ss);
            }
            if let Some((_, Some(f))) = fp_by_delta
                .iter()
                .find(|(d, _)| (d - delta_s).abs() <= 1e-12 * d.abs().max(1e-300))
            {
                row.fp_mean_abs_x = Some(f.mean_abs_x);
                row.fp_mode_abs_x = Some(f.mode_abs_x);
                row.fp_mean_flatness = Some(f.mean_flatness);
            }
            bar.inc(1);
            Ok(row)
        })
        .collect();
    bar.finish_and_clear();
    rows
}

fn power_of(noise: &Noise) -> f64 {
    match noise {
        Noise::Hessian { power, .. } => *power,
        _ => 2.0,
    }
}

/// sweep.csv: the SPEC columns first, then the theory and FP columns (empty when absent).
pub fn to_csv(rows: &[SweepPoint]) -> String {
    let mut s = String::from(
        "sigma,eta,delta_s,flatness_ss,x_ss_abs,search_time,diverged_fraction,theory_x_ss,theory_flatness_ss,theory_eta_lambda,fp_mean_abs_x,fp_mode_abs_x,fp_mean_flatness\n",
    );
    let opt = |v: Option<f64>| {
        v.filter(|x| x.is_finite())
            .map_or_else(String::new, |x| format!("{x:.8e}"))
    };
    for r in rows {
        s.push_str(&format!(
            "{:.8e},{:.8e},{:.8e},{},{},{},{},{},{},{},{},{},{}\n",
            r.sigma,
            r.eta,
            r.delta_s,
            opt(r.flatness_ss),
            opt(r.x_ss_abs),
            opt(r.search_time),
            opt(r.diverged_fraction),
            opt(r.theory_x_ss),
            opt(r.theory_flatness_ss),
            opt(r.theory_eta_lambda),
            opt(r.fp_mean_abs_x),
            opt(r.fp_mode_abs_x),
            opt(r.fp_mean_flatness),
        ));
    }
    s
}
