//! Orchestration: scenario → solvers → results → report (SPEC §5, §7).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::fp::{self, FpResult, FpSummary};
use crate::landscape::Valley2d;
use crate::report::files::write_atomic;
use crate::report::files::{WriteError, write_csv, write_json, write_npy};
use crate::report::phase::PhaseDiagram;
use crate::report::plot::{self, Heatmap, LinePlot, Mark, Series};
use crate::sampler::{self, SamplerResult, SamplerSummary};
use crate::scenario::{AxisConfig, SweepConfig};
use crate::scenario::{Scenario, ScenarioError};
use crate::sweep::{self, SweepPoint};
use crate::theory::{self, TheorySummary};

/// Options shared by `run` and `figures`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Output folder; default `output/<scenario name>/`.
    pub out: Option<PathBuf>,
    /// Worker threads; default all cores.
    pub threads: Option<usize>,
    /// Hide progress bars.
    pub quiet: bool,
    /// Shrink every run (smoke test of `figures`).
    pub quick: bool,
}

/// Why a run failed; [`RunError::exit_code`] maps it to SPEC §5's exit status.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Invalid input (exit 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// A file could not be written (exit 1).
    #[error("{0}")]
    Write(#[from] WriteError),
    /// A solver failed at run time (exit 1).
    #[error("{0}")]
    Solver(String),
}

impl RunError {
    /// Exit status: 2 for invalid input, 1 for a runtime failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Scenario(_) => 2,
            _ => 1,
        }
    }
}

/// L1 distances between x-marginals (SPEC §7 `comparison`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    /// ∫|p_FP − p_reduced| dx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_theory_reduced: Option<f64>,
    /// ∫|p_FP − p_paper| dx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_theory_paper: Option<f64>,
    /// ∫|p_FP − p_sampler| dx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_fp_sampler: Option<f64>,
}

/// summary.json (SPEC §7): keys present only for the parts that ran.
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
    pub network: Option<crate::network::NetworkSummary>,
    /// The sweep: number of points (rows of sweep.csv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_points: Option<usize>,
    /// Cross-checks between the parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// L1 distance ∫|p − q| dx on a uniform grid of spacing `dx`.
pub fn l1_distance(p: &[f64], q: &[f64], dx: f64) -> f64 {
    p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>() * dx
}

/// L1 distance of two x-marginals after symmetrising both under x → −x when the grid is
/// symmetric. Every valley2d model is invariant under θ → −θ, so the stationary law is symmetric;
/// walkers started on one side never cross between the flat wells within a run (the crossing
/// rate is exponentially small above Δ_S*), while the FP steady state weighs both wells equally.
pub fn l1_symmetrised(p: &[f64], q: &[f64], xs: &[f64], dx: f64) -> f64 {
    let n = xs.len();
    let symmetric = n > 1 && (xs[0] + xs[n - 1]).abs() < 1e-9 * dx.max(1e-300) * n as f64;
    if !symmetric {
        return l1_distance(p, q, dx);
    }
    let sym = |v: &[f64]| -> Vec<f64> { (0..n).map(|k| 0.5 * (v[k] + v[n - 1 - k])).collect() };
    l1_distance(&sym(p), &sym(q), dx)
}

/// `flatscape run FILE`.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<Summary, RunError> {
    let scenario = Scenario::load(path)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(&scenario.name));
    let summary = with_threads(opts.threads, || run_scenario(&scenario, &out, opts))?;
    if !opts.quiet {
        print_summary(&summary, &out);
    }
    Ok(summary)
}

/// Run `f` in a rayon pool of `threads` threads (all cores by default).
pub fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T, RunError> + Send,
) -> Result<T, RunError> {
    match threads {
        None => f(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .map_err(|e| RunError::Solver(format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}

/// Run every part of a validated scenario and write its outputs into `out`.
pub fn run_scenario(
    scenario: &Scenario,
    out: &Path,
    opts: &RunOptions,
) -> Result<Summary, RunError> {
    run_parts(scenario, out, opts).map(|a| a.summary)
}

/// Everything a run computed, for callers that draw more than `run` does (`figures`).
pub struct Artifacts {
    /// summary.json.
    pub summary: Summary,
    /// The FP result.
    pub fp: Option<FpResult>,
    /// The sampler result.
    pub sampler: Option<SamplerResult>,
    /// The sweep rows.
    pub sweep: Option<Vec<SweepPoint>>,
}

/// Run every part of a validated scenario, write its outputs into `out`, return the results.
pub fn run_parts(
    scenario: &Scenario,
    out: &Path,
    opts: &RunOptions,
) -> Result<Artifacts, RunError> {
    let clock = Instant::now();
    let progress = !opts.quiet;
    let mut summary = Summary {
        scenario: scenario.name.clone(),
        wall_seconds: 0.0,
        fokker_planck: None,
        theory: None,
        sampler: None,
        sweep_points: None,
        network: None,
        comparison: None,
    };
    let mut comparison = Comparison::default();
    let mut fp_result = None;
    if let (Some(cfg), Some(valley)) = (&scenario.fokker_planck, scenario.valley2d()) {
        let res = fp::run(valley, &scenario.noise, cfg, progress)
            .map_err(|e| RunError::Solver(e.to_string()))?;
        write_fp_outputs(out, valley, &res)?;
        summary.fokker_planck = Some(res.summary.clone());
        fp_result = Some(res);
    }
    // The x-grid every marginal is reported on: the FP grid, else the theory's own.
    let mut marginals: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut x_grid: Option<(Vec<f64>, f64)> = fp_result.as_ref().map(|r| {
        marginals.push(("fp", r.grid.marginal_x(&r.density)));
        (r.grid.xs(), r.grid.dx)
    });
    if let (Some(tcfg), Some(valley)) = (&scenario.theory, scenario.valley2d()) {
        let cfg = tcfg.with_fp_domain(scenario.fokker_planck.as_ref());
        summary.theory = Some(theory::summarize(valley, &scenario.noise, &cfg));
        let (xs, dx) = x_grid.get_or_insert_with(|| {
            let xs = cfg.x_grid();
            let dx = if xs.len() > 1 { xs[1] - xs[0] } else { 1.0 };
            (xs, dx)
        });
        let paper = theory::marginal_x_paper(valley, &scenario.noise, xs);
        let reduced = theory::marginal_x_reduced(valley, &scenario.noise, xs, cfg.y_range());
        if let Some(fp) = &fp_result {
            let p_fp = fp.grid.marginal_x(&fp.density);
            comparison.l1_fp_theory_reduced = Some(l1_distance(&p_fp, &reduced, *dx));
            comparison.l1_fp_theory_paper = paper.as_ref().map(|p| l1_distance(&p_fp, p, *dx));
        }
        let profiles = theory::valley_profiles(valley, &scenario.noise, xs, cfg.y_range());
        write_valley_profile_figure(out, &profiles, fp_result.as_ref())?;
        marginals.push((
            "theory_paper",
            paper.unwrap_or_else(|| vec![f64::NAN; xs.len()]),
        ));
        marginals.push(("theory_reduced", reduced));
    }
    let mut sampler_result = None;
    if let Some(cfg) = &scenario.sampler {
        let grid = scenario
            .fokker_planck
            .as_ref()
            .filter(|_| scenario.valley2d().is_some())
            .map(|fp| (fp.x, fp.y));
        let res = sampler::run(scenario, cfg, grid, progress)
            .map_err(|e| RunError::Solver(e.to_string()))?;
        write_sampler_outputs(out, scenario, &res, grid)?;
        if let (Some(hist), Some(fp)) = (&res.hist_x, &fp_result) {
            let p_fp = fp.grid.marginal_x(&fp.density);
            comparison.l1_fp_sampler = Some(l1_symmetrised(&p_fp, hist, &fp.grid.xs(), fp.grid.dx));
        }
        if let Some(hist) = &res.hist_x {
            marginals.push(("sampler", hist.clone()));
        }
        summary.sampler = Some(res.summary.clone());
        sampler_result = Some(res);
    }
    if let Some(cfg) = &scenario.network {
        let res = crate::network::run(cfg, scenario.seed, progress)
            .map_err(|e| RunError::Solver(e.to_string()))?;
        crate::network::write_figures(out, &res)?;
        crate::network::write_tables(out, &res)?;
        summary.network = Some(res.summary);
    }
    let mut sweep_rows = None;
    if let Some(sw) = &scenario.sweep {
        let rows = sweep::run(scenario, sw, progress).map_err(RunError::Solver)?;
        write_atomic(&out.join("sweep.csv"), sweep::to_csv(&rows).as_bytes())?;
        write_sweep_figures(out, scenario, sw, &rows)?;
        summary.sweep_points = Some(rows.len());
        sweep_rows = Some(rows);
    }
    if let Some((xs, _)) = &x_grid {
        write_marginal_x(out, xs, &marginals)?;
    }
    if let Some(res) = &fp_result {
        let ys = res.grid.ys();
        let py = res.grid.marginal_y(&res.density);
        match sampler_result.as_ref().and_then(|s| s.hist_y.as_ref()) {
            Some(hy) => write_csv(
                &out.join("marginal_y.csv"),
                &["y", "fp", "sampler"],
                &[&ys, &py, hy],
            )?,
            None => write_csv(&out.join("marginal_y.csv"), &["y", "fp"], &[&ys, &py])?,
        }
    }
    if comparison.l1_fp_theory_reduced.is_some()
        || comparison.l1_fp_theory_paper.is_some()
        || comparison.l1_fp_sampler.is_some()
    {
        summary.comparison = Some(comparison);
    }
    summary.wall_seconds = clock.elapsed().as_secs_f64();
    write_json(&out.join("summary.json"), &summary)?;
    Ok(Artifacts {
        summary,
        fp: fp_result,
        sampler: sampler_result,
        sweep: sweep_rows,
    })
}

/// marginal_x.csv (`x` then one column per part, SPEC §7) and the x-marginal figure.
fn write_marginal_x(
    out: &Path,
    xs: &[f64],
    columns: &[(&str, Vec<f64>)],
) -> Result<(), WriteError> {
    let mut header = vec!["x"];
    let mut cols: Vec<&[f64]> = vec![xs];
    for (name, values) in columns {
        header.push(name);
        cols.push(values);
    }
    write_csv(&out.join("marginal_x.csv"), &header, &cols)?;
    let series = columns
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.iter().any(|p| p.is_finite()))
        .map(|(n, (name, values))| {
            let label = match *name {
                "fp" => "Fokker–Planck",
                "theory_paper" => "theory, paper level (Eq. 13)",
                "theory_reduced" => "theory, reduced 1-D equation",
                "sampler" => "Monte-Carlo sampler",
                other => other,
            };
            let mark = if n == 0 { Mark::Line } else { Mark::Dashed };
            Series::new(label, xs, values, n, mark)
        })
        .collect();
    plot::line_plot(
        &out.join("marginal_x"),
        &LinePlot {
            title: "Stationary x-marginal along the valley".into(),
            x_label: "x (degenerate direction)".into(),
            y_label: "p(x)".into(),
            series,
            ..Default::default()
        },
    )
}

/// Fig. 4(b)-style profile: L(x, 0) and the effective loss L_eff along the valley (theory),
/// with −Δ(x) ln P_FP(x, y ≈ 0) from the FP density, each shifted to 0 at its minimum.
fn write_valley_profile_figure(
    out: &Path,
    prof: &theory::ValleyProfiles,
    fp: Option<&FpResult>,
) -> Result<(), WriteError> {
    let shift = |v: &[f64]| -> Vec<f64> {
        let m = v
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(f64::INFINITY, f64::min);
        v.iter().map(|x| x - m).collect()
    };
    let mut series = vec![Series::new(
        "L(x, 0), the loss",
        &prof.x,
        &shift(&prof.loss),
        6,
        Mark::Line,
    )];
    if let Some(l) = &prof.l_eff_paper {
        series.push(Series::new(
            "L_eff, paper (Eq. 13)",
            &prof.x,
            &shift(l),
            1,
            Mark::Dashed,
        ));
    }
    if let Some(l) = &prof.l_eff_reduced {
        series.push(Series::new(
            "L_eff, reduced theory",
            &prof.x,
            &shift(l),
            2,
            Mark::Dashed,
        ));
    }
    if let Some(res) = fp {
        let g = &res.grid;
        let j0 = (0..g.ny)
            .min_by(|&a, &b| g.y(a).abs().total_cmp(&g.y(b).abs()))
            .unwrap_or(0);
        // Below this fraction of the peak the density is round-off, not physics.
        const FLOOR: f64 = 1e-10;
        let peak = (0..g.nx)
            .map(|i| res.density[g.index(i, j0)])
            .fold(0.0f64, f64::max);
        let l_fp: Vec<f64> = (0..g.nx)
            .map(|i| {
                let p = res.density[g.index(i, j0)];
                let delta = prof_delta_at(prof, g.x(i));
                if p > FLOOR * peak {
                    -delta * p.ln()
                } else {
                    f64::NAN
                }
            })
            .collect();
        series.push(Series::new(
            "−Δ(x) ln P_FP(x, y≈0)",
            &g.xs(),
            &shift(&l_fp),
            0,
            Mark::Points,
        ));
    }
    plot::line_plot(
        &out.join("valley_profile"),
        &LinePlot {
            title: "Loss along the valley before and after reshaping by the noise".into(),
            x_label: "x (along the valley, y = 0)".into(),
            y_label: "loss − its minimum".into(),
            series,
            ..Default::default()
        },
    )
}

/// Δ(x) of the profiles, linearly interpolated.
fn prof_delta_at(prof: &theory::ValleyProfiles, x: f64) -> f64 {
    let xs = &prof.x;
    if xs.is_empty() {
        return f64::NAN;
    }
    match xs.iter().position(|&v| v >= x) {
        Some(0) => prof.delta[0],
        None => prof.delta[xs.len() - 1],
        Some(k) => {
            let t = (x - xs[k - 1]) / (xs[k] - xs[k - 1]);
            prof.delta[k - 1] * (1.0 - t) + prof.delta[k] * t
        }
    }
}

/// density.npy, moments.csv, snapshots and the FP heatmap.
fn write_fp_outputs(out: &Path, valley: &Valley2d, res: &FpResult) -> Result<(), WriteError> {
    let g = &res.grid;
    write_npy(&out.join("density.npy"), &[g.nx, g.ny], &res.density)?;
    if !res.moments.is_empty() {
        let col = |f: fn(&fp::Moments) -> f64| res.moments.iter().map(f).collect::<Vec<f64>>();
        let cols = [
            col(|m| m.t),
            col(|m| m.mass),
            col(|m| m.mean_x),
            col(|m| m.mean_y),
            col(|m| m.var_x),
            col(|m| m.var_y),
            col(|m| m.cov_xy),
            col(|m| m.mean_flatness),
            col(|m| m.mean_loss),
        ];
        let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
        write_csv(
            &out.join("moments.csv"),
            &[
                "t",
                "mass",
                "mean_x",
                "mean_y",
                "var_x",
                "var_y",
                "cov_xy",
                "mean_flatness",
                "mean_loss",
            ],
            &refs,
        )?;
        plot::line_plot(
            &out.join("fp_transient"),
            &LinePlot {
                title: "Fokker–Planck transient".into(),
                x_label: "time t".into(),
                y_label: "⟨x⟩,  ⟨F(x)⟩".into(),
                series: vec![
                    Series::new("⟨x⟩", &cols[0], &cols[2], 0, Mark::Line),
                    Series::new("⟨F(x)⟩ (flatness)", &cols[0], &cols[7], 1, Mark::Line),
                ],
                ..Default::default()
            },
        )?;
    }
    if !res.snapshots.is_empty() {
        let mut data = Vec::with_capacity(res.snapshots.len() * g.len());
        for (_, p) in &res.snapshots {
            data.extend_from_slice(p);
        }
        write_npy(
            &out.join("snapshots.npy"),
            &[res.snapshots.len(), g.nx, g.ny],
            &data,
        )?;
        let times: Vec<f64> = res.snapshots.iter().map(|s| s.0).collect();
        write_csv(&out.join("snapshot_times.csv"), &["t"], &[&times])?;
    }
    let loss: Vec<f64> = (0..g.len())
        .map(|k| valley.loss(g.x(k / g.ny), g.y(k % g.ny)))
        .collect();
    let l_max = loss.iter().copied().fold(0.0f64, f64::max);
    let levels = (1..8).map(|k| l_max * (k as f64 / 8.0).powi(2)).collect();
    let x_max = g.x_min.abs().max((g.x_min + g.nx as f64 * g.dx).abs());
    let x_f = valley.flattest_point(x_max);
    let mut markers = vec![(0.0, 0.0, "global minimum x*".to_string())];
    // Only a flattest point inside the domain (λ'(x_F) = 0), not the edge of the scan.
    if x_f > 0.0 && x_f < x_max * (1.0 - 1e-6) {
        markers.push((x_f, 0.0, "flattest x_F".to_string()));
        markers.push((-x_f, 0.0, String::new()));
    }
    markers.retain(|m| m.0 >= g.x_min && m.0 <= g.x_min + g.nx as f64 * g.dx);
    plot::heatmap(
        &out.join("fp_density"),
        &Heatmap {
            title: format!("{} density P(x, y) (Fokker–Planck)", res.summary.density),
            x_label: "x (degenerate direction)".into(),
            y_label: "y (sharp direction)".into(),
            colorbar_label: "P(x, y)".into(),
            nx: g.nx,
            ny: g.ny,
            x_range: (g.x_min, g.x_min + g.nx as f64 * g.dx),
            y_range: (g.y_min, g.y_min + g.ny as f64 * g.dy),
            values: res.density.clone(),
            contours: Some((loss, levels)),
            contour_label: "contours of L(x, y)".into(),
            markers,
        },
    )
}

/// timeseries.csv and the sampler's figures: flatness and x over time, trajectories.
fn write_sampler_outputs(
    out: &Path,
    scenario: &Scenario,
    res: &SamplerResult,
    grid: Option<(AxisConfig, AxisConfig)>,
) -> Result<(), WriteError> {
    write_atomic(
        &out.join("timeseries.csv"),
        res.timeseries.to_csv_string().as_bytes(),
    )?;
    let ts = &res.timeseries;
    let kind = format!("{:?}", res.summary.kind).to_lowercase();
    let t_label = if res.summary.kind == sampler::SamplerKind::Langevin {
        "time t = dt · step"
    } else {
        "time t = η · step"
    };
    let positive_t: Vec<usize> = (0..ts.t.len()).filter(|&k| ts.t[k] > 0.0).collect();
    let pick = |v: &[f64]| positive_t.iter().map(|&k| v[k]).collect::<Vec<f64>>();
    let t = pick(&ts.t);
    plot::line_plot(
        &out.join("flatness_dynamics"),
        &LinePlot {
            title: format!(
                "Flatness during learning ({kind}, {} walkers)",
                res.summary.walkers
            ),
            x_label: t_label.into(),
            y_label: "mean flatness F(x)".into(),
            series: vec![
                Series::new(
                    "⟨F(x)⟩, Eq. (6)",
                    &t,
                    &pick(&ts.mean_flatness),
                    0,
                    Mark::Line,
                ),
                Series::new(
                    "⟨F̂(x)⟩, Eq. (16)",
                    &t,
                    &pick(&ts.mean_flatness_hat),
                    1,
                    Mark::Dashed,
                ),
            ],
            log_x: true,
            ..Default::default()
        },
    )?;
    let two_d = scenario.valley2d();
    let stride = res.trajectory_stride.max(1) as f64;
    let dt = res.summary.time_step;
    let x_series: Vec<Series> = res
        .trajectories
        .iter()
        .enumerate()
        .take(4)
        .map(|(n, tr)| {
            let steps: Vec<f64> = (0..tr.len()).map(|k| k as f64 * stride).collect();
            let xs: Vec<f64> = tr.iter().map(|p| p[0]).collect();
            Series::new(format!("walker {n}"), &steps, &xs, n, Mark::Line)
        })
        .collect();
    plot::line_plot(
        &out.join("x_vs_iteration"),
        &LinePlot {
            title: format!("Walkers along the flat direction ({kind}, step {dt})"),
            x_label: "iteration t".into(),
            y_label: if two_d.is_some() {
                "x".into()
            } else {
                "RMS of the flat coordinates x_j".into()
            },
            series: x_series,
            ..Default::default()
        },
    )?;
    let traj: Vec<Series> = res
        .trajectories
        .iter()
        .enumerate()
        .take(4)
        .map(|(n, tr)| {
            let xs: Vec<f64> = tr.iter().map(|p| p[0]).collect();
            let ys: Vec<f64> = tr.iter().map(|p| p[1]).collect();
            Series::new(format!("walker {n}"), &xs, &ys, n, Mark::Line)
        })
        .collect();
    match (two_d, grid) {
        (Some(valley), _) => draw_trajectories(
            &out.join("trajectories"),
            valley,
            &format!("Trajectories over the contours of L ({kind})"),
            traj,
        ),
        (None, _) => plot::line_plot(
            &out.join("trajectories"),
            &LinePlot {
                title: format!("Trajectories, projected ({kind})"),
                x_label: "RMS of the flat coordinates x_j".into(),
                y_label: "RMS of the sharp coordinates y_i".into(),
                series: traj,
                log_y: true,
                ..Default::default()
            },
        ),
    }
}

/// A sweep point counts as diverged (grey) when more than half of its walkers diverged.
const DIVERGED: f64 = 0.5;

/// Phase diagrams of a (σ, η) sweep, or F and |x_ss| against Δ_S for a Δ_S sweep.
pub fn write_sweep_figures(
    out: &Path,
    scenario: &Scenario,
    sw: &SweepConfig,
    rows: &[SweepPoint],
) -> Result<(), WriteError> {
    if let (Some(sig), Some(eta)) = (&sw.sigma, &sw.eta) {
        let (sigma, etas) = (sig.values(), eta.values());
        for fig in sweep_phase_diagrams(scenario, &sigma, &etas, rows) {
            plot::render(&out.join(fig.0), &fig.1)?;
        }
        return Ok(());
    }
    // Δ_S sweep: one curve per part (the sampler one per η).
    let mut etas: Vec<f64> = rows.iter().map(|r| r.eta).collect();
    etas.dedup_by(|a, b| (*a - *b).abs() < 1e-15);
    let mut flat = Vec::new();
    let mut xss = Vec::new();
    let first_eta = |r: &&SweepPoint| (r.eta - etas[0]).abs() < 1e-15;
    let curve =
        |f: &dyn Fn(&SweepPoint) -> Option<f64>, only_first: bool| -> (Vec<f64>, Vec<f64>) {
            rows.iter()
                .filter(|r| !only_first || first_eta(r))
                .filter_map(|r| f(r).map(|v| (r.delta_s, v)))
                .unzip()
        };
    let (d, v) = curve(&|r| r.fp_mean_flatness, true);
    if !d.is_empty() {
        flat.push(Series::new("Fokker–Planck ⟨F(x)⟩", &d, &v, 0, Mark::Line));
    }
    let (d, v) = curve(&|r| r.fp_mean_abs_x, true);
    if !d.is_empty() {
        xss.push(Series::new("Fokker–Planck ⟨|x|⟩", &d, &v, 0, Mark::Line));
    }
    let (d, v) = curve(&|r| r.theory_flatness_ss, true);
    if !d.is_empty() {
        flat.push(Series::new(
            "reduced theory F(x_ss)",
            &d,
            &v,
            6,
            Mark::Dashed,
        ));
    }
    let (d, v) = curve(&|r| r.theory_x_ss, true);
    if !d.is_empty() {
        xss.push(Series::new("reduced theory x_ss", &d, &v, 6, Mark::Dashed));
    }
    for (n, &eta) in etas.iter().enumerate() {
        let pts: Vec<&SweepPoint> = rows
            .iter()
            .filter(|r| (r.eta - eta).abs() < 1e-15)
            .collect();
        let (d, v): (Vec<f64>, Vec<f64>) = pts
            .iter()
            .filter_map(|r| r.flatness_ss.map(|v| (r.delta_s, v)))
            .unzip();
        if !d.is_empty() {
            flat.push(Series::new(
                format!("SGD F(x_ss), η = {}", plot::format_tick(eta)),
                &d,
                &v,
                n + 1,
                Mark::Points,
            ));
        }
        let (d, v): (Vec<f64>, Vec<f64>) = pts
            .iter()
            .filter_map(|r| r.x_ss_abs.map(|v| (r.delta_s, v)))
            .unzip();
        if !d.is_empty() {
            xss.push(Series::new(
                format!("SGD |x_ss|, η = {}", plot::format_tick(eta)),
                &d,
                &v,
                n + 1,
                Mark::Points,
            ));
        }
    }
    let star = scenario
        .valley2d()
        .and_then(|v| (v.lambda1() < 0.0).then(|| -v.epsilon / v.lambda1()));
    let refs: Vec<plot::RefLine> = star
        .into_iter()
        .map(|d| plot::RefLine {
            label: "Δ_S* = −ε/λ1".into(),
            at: d,
            vertical: true,
        })
        .collect();
    let log_x = sw.delta_s.is_some_and(|r| r.log);
    plot::line_plot(
        &out.join("sweep_flatness"),
        &LinePlot {
            title: "Flatness of the steady state against the SGD noise level".into(),
            legend_left: true,
            x_label: "effective noise level Δ_S = ησ".into(),
            y_label: "flatness F = λ(x)^(−1/2)".into(),
            series: flat,
            ref_lines: refs.clone(),
            log_x,
            ..Default::default()
        },
    )?;
    plot::line_plot(
        &out.join("sweep_x_ss"),
        &LinePlot {
            title: "Steady-state position along the valley".into(),
            legend_left: true,
            x_label: "effective noise level Δ_S = ησ".into(),
            y_label: "|x_ss|".into(),
            series: xss,
            ref_lines: refs,
            log_x,
            ..Default::default()
        },
    )
}

/// The flatness and search-time phase diagrams of a (σ, η) sweep (file stem, figure).
pub fn sweep_phase_diagrams(
    scenario: &Scenario,
    sigma: &[f64],
    etas: &[f64],
    rows: &[SweepPoint],
) -> Vec<(&'static str, PhaseDiagram)> {
    let ns = sigma.len();
    let value = |f: &dyn Fn(&SweepPoint) -> Option<f64>| -> Vec<Option<f64>> {
        rows.iter()
            .map(|r| {
                if r.diverged_fraction.is_some_and(|d| d > DIVERGED) {
                    None
                } else {
                    f(r)
                }
            })
            .collect()
    };
    let mut lines = Vec::new();
    if let Some(v) = scenario.valley2d().filter(|v| v.lambda1() < 0.0) {
        let star = -v.epsilon / v.lambda1();
        let pts: Vec<(f64, f64)> = (0..200)
            .map(|k| {
                let eta = etas[0] + (etas[etas.len() - 1] - etas[0]) * k as f64 / 199.0;
                (star / eta, eta)
            })
            .collect();
        lines.push(Series {
            label: "Δ_S* = −ε/λ1 (ησ = Δ_S*)".into(),
            points: pts,
            color: 3,
            mark: Mark::Dashed,
        });
    }
    // Divergence boundary where the diverged fraction crosses 1/2 along σ (observed), and where
    // the paper's estimate η⟨λ⟩_ss crosses 2 (theory).
    let crossing = |f: &dyn Fn(&SweepPoint) -> Option<f64>, level: f64| -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        for (r, &eta) in etas.iter().enumerate() {
            let row = &rows[r * ns..(r + 1) * ns];
            for c in 1..ns {
                if let (Some(a), Some(b)) = (f(&row[c - 1]), f(&row[c]))
                    && a < level
                    && b >= level
                {
                    let t = (level - a) / (b - a);
                    pts.push((sigma[c - 1] + t * (sigma[c] - sigma[c - 1]), eta));
                    break;
                }
            }
        }
        pts
    };
    let observed = crossing(&|r| r.diverged_fraction, DIVERGED);
    if observed.len() > 1 {
        lines.push(Series {
            label: "divergence (sampler, half diverged)".into(),
            points: observed,
            color: 1,
            mark: Mark::Dashed,
        });
    }
    let theory_line = crossing(&|r| r.theory_eta_lambda, 2.0);
    if theory_line.len() > 1 {
        lines.push(Series {
            label: "η⟨λ⟩_ss = 2 (paper's estimate)".into(),
            points: theory_line,
            color: 4,
            mark: Mark::Dashed,
        });
    }
    let inset_row = (0..etas.len())
        .min_by(|&a, &b| (etas[a] - 0.04).abs().total_cmp(&(etas[b] - 0.04).abs()))
        .unwrap_or(0);
    let cut = |f: &dyn Fn(&SweepPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        (0..ns)
            .filter_map(|c| {
                let r = &rows[inset_row * ns + c];
                if r.diverged_fraction.is_some_and(|d| d > DIVERGED) {
                    None
                } else {
                    f(r).map(|v| (sigma[c], v))
                }
            })
            .collect()
    };
    let eta_cut = etas[inset_row];
    vec![
        (
            "sweep_flatness",
            PhaseDiagram {
                title: "Flatness of the SGD solution F(x_ss)".into(),
                quantity: "F(x_ss)".into(),
                sigma: sigma.to_vec(),
                eta: etas.to_vec(),
                values: value(&|r| r.flatness_ss.or(r.theory_flatness_ss)),
                log_color: false,
                lines: lines.clone(),
                inset: Some((
                    format!("F(x_ss) vs σ at η = {eta_cut:.3}"),
                    cut(&|r| r.flatness_ss),
                )),
            },
        ),
        (
            "sweep_search_time",
            PhaseDiagram {
                title: "Search time τ_s = η⟨t_s⟩".into(),
                quantity: "τ_s (log colour)".into(),
                sigma: sigma.to_vec(),
                eta: etas.to_vec(),
                values: value(&|r| r.search_time),
                log_color: true,
                lines,
                inset: Some((
                    format!("τ_s vs σ at η = {eta_cut:.3}"),
                    cut(&|r| r.search_time),
                )),
            },
        ),
    ]
}

/// Trajectories of a 2-D valley over the contours of L (Fig. 5a style), into `<stem>.png/.svg`.
pub fn draw_trajectories(
    stem: &Path,
    valley: &Valley2d,
    title: &str,
    trajectories: Vec<Series>,
) -> Result<(), WriteError> {
    let (x_lo, x_hi, y_lo, y_hi) = trajectories.iter().flat_map(|s| s.points.iter()).fold(
        (-1.6f64, 1.6f64, -0.6f64, 0.6f64),
        |(a, b, c, d), p| {
            if p.0.is_finite() && p.1.is_finite() {
                (a.min(p.0), b.max(p.0), c.min(p.1), d.max(p.1))
            } else {
                (a, b, c, d)
            }
        },
    );
    let (nx, ny) = (200, 120);
    let (dxc, dyc) = ((x_hi - x_lo) / nx as f64, (y_hi - y_lo) / ny as f64);
    let loss: Vec<f64> = (0..nx * ny)
        .map(|k| {
            let (i, j) = (k / ny, k % ny);
            valley.loss(x_lo + (i as f64 + 0.5) * dxc, y_lo + (j as f64 + 0.5) * dyc)
        })
        .collect();
    plot::render(
        stem,
        &TrajectoryFigure {
            title: title.to_string(),
            x_range: (x_lo, x_hi),
            y_range: (y_lo, y_hi),
            loss,
            nx,
            ny,
            trajectories,
            flattest: valley.flattest_point(x_hi.abs().max(x_lo.abs())),
        },
    )
}

/// Trajectories over filled loss contours (log-spaced levels), with x* and ±x_F marked.
struct TrajectoryFigure {
    title: String,
    x_range: (f64, f64),
    y_range: (f64, f64),
    loss: Vec<f64>,
    nx: usize,
    ny: usize,
    trajectories: Vec<Series>,
    flattest: f64,
}

impl plot::Figure for TrajectoryFigure {
    fn draw<DB: plotters::prelude::DrawingBackend>(
        &self,
        root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        use plotters::prelude::*;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(
                self.x_range.0..self.x_range.1,
                self.y_range.0..self.y_range.1,
            )
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x (degenerate direction)")
            .y_desc("y (sharp direction)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(|x| e(&x))?;
        let l_max = self.loss.iter().copied().fold(0.0f64, f64::max).max(1e-12);
        let levels: Vec<f64> = (1..=10)
            .map(|k| l_max * 10f64.powf(-4.0 + 0.4 * k as f64))
            .collect();
        let grey = RGBColor(170, 170, 170);
        for (n, &level) in levels.iter().enumerate() {
            let segs = plot::contour_segments(
                &self.loss,
                self.nx,
                self.ny,
                self.x_range,
                self.y_range,
                level,
            );
            let drawn = chart
                .draw_series(
                    segs.into_iter()
                        .map(|s| PathElement::new(vec![s[0], s[1]], grey.stroke_width(1))),
                )
                .map_err(|x| e(&x))?;
            if n == 0 {
                drawn
                    .label("contours of L (log-spaced)")
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], grey.stroke_width(2))
                    });
            }
        }
        for s in &self.trajectories {
            let color = plot::PALETTE[s.color % plot::PALETTE.len()];
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(1)))
                .map_err(|x| e(&x))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
                });
        }
        let red = RGBColor(213, 40, 40);
        chart
            .draw_series(std::iter::once(Circle::new((0.0, 0.0), 6, red.filled())))
            .map_err(|x| e(&x))?
            .label("global minimum x* = 0")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, red.filled()));
        let yellow = RGBColor(230, 159, 0);
        chart
            .draw_series(
                [self.flattest, -self.flattest]
                    .into_iter()
                    .map(|x| Cross::new((x, 0.0), 8, yellow.stroke_width(3))),
            )
            .map_err(|x| e(&x))?
            .label("flattest x_F")
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, yellow.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|x| e(&x))?;
        Ok(())
    }
}

fn print_summary(summary: &Summary, out: &Path) {
    println!(
        "scenario `{}` finished in {:.2} s",
        summary.scenario, summary.wall_seconds
    );
    if let Some(fp) = &summary.fokker_planck {
        println!(
            "  Fokker–Planck {}x{}: mode |x| = {:.4}, <|x|> = {:.4}, <F> = {:.4}, mass = {:.12}, negative mass = {:.2e}{}",
            fp.grid[0],
            fp.grid[1],
            fp.mode_abs_x,
            fp.mean_abs_x,
            fp.mean_flatness,
            fp.mass,
            fp.negative_mass,
            fp.solve_seconds
                .map(|s| format!(", steady solve {s:.3} s"))
                .unwrap_or_default()
        );
    }
    if let Some(th) = &summary.theory {
        let star = th
            .delta_s_star
            .map_or_else(|| "none".to_string(), |v| format!("{v:.4}"));
        println!("  theory: x_ss = {:.4} (reduced), Δ_S* = {star}", th.x_ss);
    }
    if let Some(sm) = &summary.sampler {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        println!(
            "  sampler {:?}: {} walkers × {} steps, diverged {:.3}, |x_ss| = {}, F(x_ss) = {}, τ_s = {}, {:.2e} walker-steps/s",
            sm.kind,
            sm.walkers,
            sm.steps,
            sm.diverged_fraction,
            show(sm.x_ss_abs),
            show(sm.flatness_ss),
            show(sm.search_time),
            sm.walker_steps_per_second
        );
    }
    if let Some(c) = &summary.comparison {
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3e}"));
        println!(
            "  L1 distances of x-marginals: FP–reduced {}, FP–paper {}, FP–sampler {}",
            show(c.l1_fp_theory_reduced),
            show(c.l1_fp_theory_paper),
            show(c.l1_fp_sampler)
        );
    }
    println!("  outputs in {}", out.display());
}

/// `flatscape figures`: every figure of the paper and beyond (see [`crate::figures`]).
pub fn figures(scenarios: &Path, opts: &RunOptions) -> Result<(), RunError> {
    let clock = Instant::now();
    let report = with_threads(opts.threads, || crate::figures::figures(scenarios, opts))?;
    if !opts.quiet {
        for (name, secs) in &report.runs {
            println!("  ran {name} in {secs:.1} s");
        }
        println!(
            "{} figures (PNG + SVG) in {:.1} s:",
            report.figures.len(),
            clock.elapsed().as_secs_f64()
        );
        for f in &report.figures {
            println!("  {}", f.with_extension("png").display());
        }
    }
    Ok(())
}
