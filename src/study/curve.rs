//! The theory along a curved valley of minima Γ (`[valley_curve]`) against the FP density
//! integrated across Γ on the same arclength cells (`marginal_s.csv`).

use serde::Serialize;

use super::StudyError;
use crate::fp::FpSolution;
use crate::landscape::{Landscape, Loss2d};
use crate::noise::Noise;
use crate::scenario::Scenario;
use crate::theory::curved::{CurvedTheory, NormalLaw, ValleyCurvePlan};
use crate::theory::fibres::{self, FibreLaw, FibreTheory};

/// A point of Γ by arclength.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Arclength from the start's foot on Γ.
    pub s: f64,
    /// x(s).
    pub x: f64,
    /// y(s).
    pub y: f64,
}

/// Statistics of a density along s (normalised over the traced curve).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AlongStats {
    /// The maximum of p(s).
    pub peak: CurvePoint,
    /// ⟨s⟩.
    pub mean_s: f64,
    /// Standard deviation of s.
    pub std_s: f64,
}

/// `summary.json` → `valley_curve`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValleyCurveSummary {
    /// Traced arclength of Γ inside the FP box.
    pub length: f64,
    /// The law of n across Γ the theory used.
    pub law: NormalLaw,
    /// Half-width of the tube across Γ.
    pub tube: f64,
    /// The theory's density along s (generalised Eqs. 11–14).
    pub theory: AlongStats,
    /// The FP density integrated across Γ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fp: Option<AlongStats>,
    /// L1 distance of the two densities along s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_theory: Option<f64>,
    /// Some law of n was cut at the tube with density still above the cutoff.
    pub tail_truncated: bool,
    /// The homogenised level along Γ (the law of the gradient-flow limit point); `null` when it
    /// does not apply, with the reason in `homogenised_note`.
    pub homogenised: Option<HomogenisedAlong>,
    /// Why `homogenised` is `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homogenised_note: Option<String>,
}

/// `summary.json` → `valley_curve.homogenised`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HomogenisedAlong {
    /// The level's 2-D law integrated across Γ on the s-cells (column `theory_homogenised`).
    pub theory: AlongStats,
    /// Mean of φ, the arclength of the gradient-flow limit point.
    pub mean_phi: f64,
    /// Standard deviation of φ.
    pub std_phi: f64,
    /// L1 distance to the FP density integrated across Γ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp: Option<f64>,
    /// Some fibre law was cut (not at the box) with density above the cutoff.
    pub tail_truncated: bool,
}

/// The theory along Γ and the FP density across it, on the plan's s-points.
#[derive(Debug, Clone)]
pub struct ValleyCurveRun {
    /// The theory.
    pub theory: CurvedTheory,
    /// The FP density integrated across Γ (when the FP ran).
    pub fp: Option<Vec<f64>>,
    /// The homogenised level (fibres cut at the FP box) and its law integrated across Γ on the
    /// s-points, when it applies.
    pub homogenised: Option<(FibreTheory, Vec<f64>)>,
    /// The summary.
    pub summary: ValleyCurveSummary,
}

fn stats(plan: &ValleyCurvePlan, theory: &CurvedTheory, p: &[f64]) -> AlongStats {
    let s = &plan.s_points;
    let ds = if s.len() > 1 { s[1] - s[0] } else { 1.0 };
    let mass: f64 = p.iter().sum::<f64>() * ds;
    let mean = s.iter().zip(p).map(|(a, b)| a * b).sum::<f64>() * ds / mass;
    let var = s
        .iter()
        .zip(p)
        .map(|(a, b)| (a - mean).powi(2) * b)
        .sum::<f64>()
        * ds
        / mass;
    let k = p
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(k, _)| k);
    AlongStats {
        peak: CurvePoint {
            s: s[k],
            x: theory.x[k],
            y: theory.y[k],
        },
        mean_s: mean,
        std_s: var.max(0.0).sqrt(),
    }
}

fn run_on(
    plan: &ValleyCurvePlan,
    loss: &impl Loss2d,
    noise: &Noise,
    fp: Option<&FpSolution>,
) -> Result<ValleyCurveRun, StudyError> {
    let grid = fp.map(|sol| (sol.grid.xs(), sol.grid.ys()));
    let density = match (&grid, fp) {
        (Some((xs, ys)), Some(sol)) => Some((xs.as_slice(), ys.as_slice(), sol.density.as_slice())),
        _ => None,
    };
    let (theory, fp_along) = plan
        .run(loss, noise, density)
        .map_err(|e| StudyError::ValleyCurve(e.to_string()))?;
    let ds = plan.s_points.get(1).map_or(1.0, |b| b - plan.s_points[0]);
    let l1 = fp_along.as_ref().map(|f| {
        f.iter()
            .zip(&theory.density)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            * ds
    });
    // The homogenised level: the fibres run to the FP box (the tube is the FP's integration
    // band across Γ, not a cut of the fibre law).
    let (homogenised, homogenised_note) = match fibres::solve(
        loss,
        noise,
        &plan.curve,
        &plan.s_points,
        f64::INFINITY,
        plan.bounds,
        FibreLaw::Exact,
    ) {
        Ok(h) => {
            let along = h.along_normals(&plan.curve, &plan.s_points, plan.config.tube);
            (Some((h, along)), None)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let hom_summary = homogenised.as_ref().map(|(h, along)| {
        let (mean_phi, std_phi) = h.mean_std();
        HomogenisedAlong {
            theory: stats(plan, &theory, along),
            mean_phi,
            std_phi,
            l1_fp: fp_along
                .as_ref()
                .map(|f| f.iter().zip(along).map(|(a, b)| (a - b).abs()).sum::<f64>() * ds),
            tail_truncated: h.tail_truncated,
        }
    });
    let summary = ValleyCurveSummary {
        length: plan.curve.length(),
        law: plan.config.law,
        tube: plan.config.tube,
        theory: stats(plan, &theory, &theory.density),
        fp: fp_along.as_ref().map(|f| stats(plan, &theory, f)),
        l1_fp_theory: l1,
        tail_truncated: theory.tail_truncated,
        homogenised: hom_summary,
        homogenised_note,
    };
    Ok(ValleyCurveRun {
        theory,
        fp: fp_along,
        homogenised,
        summary,
    })
}

/// The `[valley_curve]` part of a run, if the scenario has one.
pub fn run(
    scenario: &Scenario,
    fp: Option<&FpSolution>,
) -> Result<Option<ValleyCurveRun>, StudyError> {
    let Some(plan) = scenario.valley_curve() else {
        return Ok(None);
    };
    let noise = scenario.noise();
    match scenario.landscape() {
        Landscape::Valley2d(v) => run_on(plan, v, noise, fp).map(Some),
        Landscape::Expression(e) => run_on(plan, e, noise, fp).map(Some),
        _ => Ok(None),
    }
}
