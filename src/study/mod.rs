//! Studies: run the parts of a validated [`Scenario`] — FP, theory, sampler, network, sweep —
//! and compare them. Returns typed results ([`RunArtifacts`]) and writes nothing; the
//! `report` layer turns them into files and figures.

pub mod branch;
pub mod compare;
pub mod curve;
pub mod feedback;
pub mod hopping;
pub mod sweep;

use std::time::Instant;

use serde::Serialize;

use crate::config::{Cancelled, Invalid, Progress};
use crate::fp::{self, FpError, FpSolution, FpSummary};
use crate::network::{self, NetworkError, NetworkResult, NetworkSummary};
use crate::sampler::{self, SamplerRun, SamplerSummary};
use crate::scenario::Scenario;
use crate::theory::{self, TheorySolution, TheorySummary};

pub use compare::{Comparison, l1_distance, l1_symmetrised};
pub use sweep::{PointOutcome, PointSpec, SweepPlan, SweepPoint, SweepTable, run_point};

/// Why a study stopped.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The FP solver failed.
    #[error(transparent)]
    Fp(#[from] FpError),
    /// A first-passage solve failed.
    #[error("first-passage times: {0}")]
    Passage(#[from] crate::fp::passage::PassageError),
    /// The network section failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A sweep point did not resolve (validation checks every point, so this is a bug).
    #[error("internal error: a sweep point did not validate: {0}")]
    Invalid(#[from] Invalid),
    /// The caller asked to stop.
    #[error("interrupted")]
    Cancelled,
    /// The theory along the valley curve could not be computed.
    #[error("theory along the valley curve: {0}")]
    ValleyCurve(String),
    /// A sweep point id past the last point.
    #[error("no sweep point {id}: the sweep has {points} points (ids 0..{points})")]
    NoSuchPoint {
        /// The id asked for.
        id: usize,
        /// Points in the sweep.
        points: usize,
    },
    /// A sweep point was asked of a scenario without `[sweep]`.
    #[error("the scenario has no [sweep] table")]
    NoSweep,
    /// The worker threads could not start.
    #[error("cannot start the worker threads: {0}")]
    Threads(String),
}

impl From<Cancelled> for StudyError {
    fn from(_: Cancelled) -> Self {
        StudyError::Cancelled
    }
}

/// Forwards only cancellation: for work nested inside a task that reports its own progress.
pub struct CancelOnly<'a>(pub &'a dyn Progress);

impl Progress for CancelOnly<'_> {
    fn start(&self, _task: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

/// summary.json: keys present only for the parts that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Wall-clock time of the whole run.
    pub wall_seconds: f64,
    /// The FP part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fokker_planck: Option<FpSummary>,
    /// The theory part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theory: Option<TheorySummary>,
    /// The Monte-Carlo sampler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<SamplerSummary>,
    /// The real-network check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSummary>,
    /// The sweep: number of points (rows of sweep.csv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_points: Option<usize>,
    /// Cross-checks between the parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The theory along a curved valley of minima against the FP (`[valley_curve]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valley_curve: Option<curve::ValleyCurveSummary>,
    /// Numerical warnings (negative or under-resolved densities, …); also printed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The x-marginals of every part on one x-grid (marginal_x.csv).
#[derive(Debug, Clone, PartialEq)]
pub struct Marginals {
    /// Cell centres.
    pub x: Vec<f64>,
    /// Spacing.
    pub dx: f64,
    /// (column name, density) in the order fp, theory_paper, theory_reduced,
    /// theory_homogenised (when computed), sampler; a paper level that does not apply is all NaN.
    pub columns: Vec<(&'static str, Vec<f64>)>,
}

impl Marginals {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Everything a run computed.
#[derive(Debug, Clone)]
pub struct RunArtifacts {
    /// summary.json.
    pub summary: Summary,
    /// The FP solution.
    pub fp: Option<FpSolution>,
    /// The theory on the run's x-grid.
    pub theory: Option<TheorySolution>,
    /// The sampler run.
    pub sampler: Option<SamplerRun>,
    /// The network section.
    pub network: Option<NetworkResult>,
    /// The sweep table.
    pub sweep: Option<SweepTable>,
    /// The x-marginals of every part (when the FP or the theory ran).
    pub marginals: Option<Marginals>,
    /// The theory along a curved valley and the FP density across it (`[valley_curve]`).
    pub valley_curve: Option<curve::ValleyCurveRun>,
}

/// Run every part of a validated scenario, in the current rayon pool.
pub fn run(scenario: &Scenario, progress: &dyn Progress) -> Result<RunArtifacts, StudyError> {
    let clock = Instant::now();
    let mut comparison = Comparison::default();
    let fp_solution = match scenario.fokker_planck() {
        Some(plan) => Some(fp::solve(plan, progress)?),
        None => None,
    };
    let mut columns: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut x_grid: Option<(Vec<f64>, f64)> = None;
    if let Some(sol) = &fp_solution {
        columns.push(("fp", sol.grid.marginal_x(&sol.density)));
        x_grid = Some((sol.grid.xs(), sol.grid.dx));
    }
    let theory_solution = scenario
        .theory()
        .map(|plan| theory::solve(plan, x_grid.as_ref().map(|(xs, dx)| (xs.as_slice(), *dx))));
    if let Some(th) = &theory_solution {
        // The theory is stationary: compare it with a steady FP density only.
        if let Some(sol) = fp_solution
            .as_ref()
            .filter(|s| s.summary.density == "steady")
        {
            let p_fp = sol.grid.marginal_x(&sol.density);
            comparison.l1_fp_theory_reduced = Some(l1_distance(&p_fp, &th.marginal_reduced, th.dx));
            comparison.l1_fp_theory_paper = th
                .marginal_paper
                .as_ref()
                .map(|p| l1_distance(&p_fp, p, th.dx));
            comparison.l1_fp_theory_homogenised = th
                .marginal_homogenised
                .as_ref()
                .map(|p| l1_distance(&p_fp, p, th.dx));
        }
        x_grid.get_or_insert_with(|| (th.x.clone(), th.dx));
        columns.push((
            "theory_paper",
            th.marginal_paper
                .clone()
                .unwrap_or_else(|| vec![f64::NAN; th.x.len()]),
        ));
        columns.push(("theory_reduced", th.marginal_reduced.clone()));
        if let Some(p) = &th.marginal_homogenised {
            columns.push(("theory_homogenised", p.clone()));
        }
    }
    let sampler_run = match scenario.sampler() {
        Some(plan) => {
            let grid = scenario
                .fokker_planck()
                .filter(|_| plan.is_2d())
                .map(|fp| (fp.config().x, fp.config().y));
            Some(sampler::run(plan, grid, progress)?)
        }
        None => None,
    };
    if let Some(res) = &sampler_run
        && let Some(hist) = &res.hist_x
    {
        if let Some(sol) = fp_solution
            .as_ref()
            .filter(|s| s.summary.density == "steady")
        {
            let p_fp = sol.grid.marginal_x(&sol.density);
            comparison.l1_fp_sampler =
                Some(l1_symmetrised(&p_fp, hist, &sol.grid.xs(), sol.grid.dx));
            let start = scenario.sampler().map(|p| p.config().start.clone());
            if let Some(&[x0, y0]) = start.as_deref() {
                comparison.branch =
                    branch::compare(&sol.grid, &sol.density, [x0, y0], &res.summary);
            }
        }
        columns.push(("sampler", hist.clone()));
    }
    let network_result = match scenario.network() {
        Some(plan) => {
            let mut res = network::run(plan, progress)?;
            feedback::run_fp(&mut res);
            Some(res)
        }
        None => None,
    };
    let sweep_table = match scenario.sweep() {
        Some(_) => Some(sweep::run(scenario, progress)?),
        None => None,
    };
    let warnings = match (scenario.fokker_planck(), &fp_solution) {
        (Some(plan), Some(sol)) => fp::warnings(plan, sol),
        _ => Vec::new(),
    };
    let valley_curve = curve::run(scenario, fp_solution.as_ref())?;
    let summary = Summary {
        scenario: scenario.name().to_string(),
        wall_seconds: clock.elapsed().as_secs_f64(),
        fokker_planck: fp_solution.as_ref().map(|s| s.summary.clone()),
        theory: theory_solution.as_ref().map(|t| t.summary.clone()),
        sampler: sampler_run.as_ref().map(|s| s.summary.clone()),
        network: network_result.as_ref().map(|n| n.summary.clone()),
        sweep_points: sweep_table.as_ref().map(|t| t.rows.len()),
        comparison: (!comparison.is_empty()).then_some(comparison),
        valley_curve: valley_curve.as_ref().map(|c| c.summary.clone()),
        warnings,
    };
    Ok(RunArtifacts {
        summary,
        marginals: x_grid.map(|(x, dx)| Marginals { x, dx, columns }),
        fp: fp_solution,
        theory: theory_solution,
        sampler: sampler_run,
        network: network_result,
        sweep: sweep_table,
        valley_curve,
    })
}
