//! Orchestration: scenario → solvers → results → report (SPEC §5, §7).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::fp::{self, FpResult, FpSummary};
use crate::landscape::Valley2d;
use crate::report::files::{WriteError, write_csv, write_json, write_npy};
use crate::report::plot::{self, Heatmap, LinePlot, Mark, Series};
use crate::scenario::{Scenario, ScenarioError};

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
    /// Cross-checks between the parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// L1 distance ∫|p − q| dx on a uniform grid of spacing `dx`.
pub fn l1_distance(p: &[f64], q: &[f64], dx: f64) -> f64 {
    p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>() * dx
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
    let clock = Instant::now();
    let progress = !opts.quiet;
    let mut summary = Summary {
        scenario: scenario.name.clone(),
        wall_seconds: 0.0,
        fokker_planck: None,
        comparison: None,
    };
    let mut fp_result = None;
    if let (Some(cfg), Some(valley)) = (&scenario.fokker_planck, scenario.valley2d()) {
        let res = fp::run(valley, &scenario.noise, cfg, progress)
            .map_err(|e| RunError::Solver(e.to_string()))?;
        write_fp_outputs(out, valley, &res)?;
        summary.fokker_planck = Some(res.summary.clone());
        fp_result = Some(res);
    }
    if let Some(res) = &fp_result {
        write_marginals(out, res, &[])?;
    }
    summary.wall_seconds = clock.elapsed().as_secs_f64();
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}

/// A named x- or y-marginal column from another part (theory, sampler).
pub struct Column<'a> {
    /// CSV header and legend name.
    pub name: &'a str,
    /// Values on the FP grid.
    pub values: &'a [f64],
}

/// marginal_x.csv and marginal_y.csv, and the x-marginal figure with every column.
fn write_marginals(out: &Path, res: &FpResult, extra_x: &[Column<'_>]) -> Result<(), WriteError> {
    let g = &res.grid;
    let xs = g.xs();
    let px = g.marginal_x(&res.density);
    let mut header = vec!["x", "fp"];
    let mut cols: Vec<&[f64]> = vec![&xs, &px];
    for c in extra_x {
        header.push(c.name);
        cols.push(c.values);
    }
    write_csv(&out.join("marginal_x.csv"), &header, &cols)?;
    let ys = g.ys();
    let py = g.marginal_y(&res.density);
    write_csv(&out.join("marginal_y.csv"), &["y", "fp"], &[&ys, &py])?;
    let mut series = vec![Series::new("Fokker–Planck", &xs, &px, 0, Mark::Line)];
    for (n, c) in extra_x.iter().enumerate() {
        series.push(Series::new(c.name, &xs, c.values, n + 1, Mark::Dashed));
    }
    plot::line_plot(
        &out.join("marginal_x"),
        &LinePlot {
            title: format!("x-marginal of the {} density", res.summary.density),
            x_label: "x (degenerate direction)".into(),
            y_label: "p(x)".into(),
            series,
            ..Default::default()
        },
    )
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
    if x_f > 0.0 {
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
    println!("  outputs in {}", out.display());
}

/// `flatscape figures`.
pub fn figures(_scenarios: &Path, _opts: &RunOptions) -> Result<(), RunError> {
    Err(RunError::Solver(
        "`figures` is not implemented yet (issue 5)".into(),
    ))
}
