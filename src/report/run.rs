//! The files and figures of one run (`flatscape run`): summary.json, the CSV tables, the
//! `.npy` densities and every figure, written from a study's [`RunArtifacts`].

use std::path::Path;

use crate::fp::{self, FpSolution};
use crate::landscape::Valley2d;
use crate::sampler::{self, SamplerRun};
use crate::scenario::Scenario;
use crate::study::RunArtifacts;
use crate::theory;

use super::files::{WriteError, cell, write_csv, write_json, write_npy, write_rows};
use super::plot::{self, Heatmap, LinePlot, Mark, Series};

/// Write every output of a run into `out` (created if needed).
pub fn write_run(out: &Path, scenario: &Scenario, art: &RunArtifacts) -> Result<(), WriteError> {
    if let Some(sol) = &art.fp
        && let Some(valley) = scenario.valley2d()
    {
        write_fp_outputs(out, valley, sol)?;
    }
    if let Some(sol) = &art.fp {
        if let Some(e) = scenario.landscape().expression() {
            let title = format!("Fokker–Planck steady state, L = {}", e.source);
            super::current::expression_density(out, e, sol, &title)?;
        }
        super::current::current_figure(
            &out.join("fp_current"),
            sol,
            "Steady probability current J over P",
        )?;
    }
    if let Some(th) = &art.theory {
        valley_profile_figure_with(
            &out.join("valley_profile"),
            &th.profiles,
            art.fp.as_ref(),
            l_eff_homogenised_on_floor(th).as_deref(),
        )?;
    }
    if let Some(res) = &art.sampler {
        write_sampler_outputs(out, scenario, res)?;
    }
    if let Some(res) = &art.network {
        super::network::write_figures(out, res)?;
        super::network::write_tables(out, res)?;
    }
    if let (Some(table), Some(sw)) = (&art.sweep, scenario.sweep()) {
        write_rows(&out.join("sweep.csv"), &table.rows)?;
        let [a, b] = super::sweep::sweep_figure_names(sw);
        super::sweep::write_sweep_figures(
            [&out.join(a), &out.join(b)],
            scenario,
            sw,
            &table.rows,
            "",
        )?;
    }
    if let Some(m) = &art.marginals {
        write_marginal_x(out, &m.x, &m.columns)?;
    }
    if let Some(c) = &art.valley_curve {
        write_marginal_s(out, c)?;
    }
    if let Some(sol) = &art.fp {
        let ys = sol.grid.ys();
        let py = sol.grid.marginal_y(&sol.density);
        match art.sampler.as_ref().and_then(|s| s.hist_y.as_ref()) {
            Some(hy) => write_csv(
                &out.join("marginal_y.csv"),
                &["y", "fp", "sampler"],
                &[&ys, &py, hy],
            )?,
            None => write_csv(&out.join("marginal_y.csv"), &["y", "fp"], &[&ys, &py])?,
        }
    }
    write_json(&out.join("summary.json"), &art.summary)
}

/// marginal_x.csv (`x` then one column per part) and the x-marginal figure.
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
    marginal_x_figure(&out.join("marginal_x"), xs, columns)
}

/// `marginal_s.csv` (`s,x,y,fp,theory,theory_homogenised`; fp empty without an FP run,
/// theory_homogenised empty where that level does not apply) and its figure: densities along
/// the arclength of a curved valley of minima.
fn write_marginal_s(out: &Path, c: &crate::study::curve::ValleyCurveRun) -> Result<(), WriteError> {
    let t = &c.theory;
    let fp: Vec<f64> = match &c.fp {
        Some(f) => f.clone(),
        None => vec![f64::NAN; t.s.len()],
    };
    let hom: Vec<f64> = match &c.homogenised {
        Some((_, along)) => along.clone(),
        None => vec![f64::NAN; t.s.len()],
    };
    write_csv(
        &out.join("marginal_s.csv"),
        &["s", "x", "y", "fp", "theory", "theory_homogenised"],
        &[&t.s, &t.x, &t.y, &fp, &t.density, &hom],
    )?;
    let top = [&fp, &t.density, &hom]
        .iter()
        .flat_map(|v| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut series = Vec::new();
    if c.fp.is_some() {
        series.push(Series::new(
            "Fokker–Planck across Γ",
            &t.s,
            &fp,
            0,
            Mark::Line,
        ));
    }
    let law = match t.law {
        crate::theory::curved::NormalLaw::Exact => "exact law of n",
        crate::theory::curved::NormalLaw::Gaussian => "Gaussian law of n",
    };
    series.push(Series::new(
        format!("reduced level ({law})"),
        &t.s,
        &t.density,
        1,
        Mark::Dashed,
    ));
    if c.homogenised.is_some() {
        series.push(Series::new(
            "homogenised level (flow fibres)",
            &t.s,
            &hom,
            2,
            Mark::Dashed,
        ));
    }
    plot::line_plot(
        &out.join("marginal_s"),
        &LinePlot {
            title: format!(
                "Density along the valley of minima Γ (tube |n| ≤ {})",
                c.summary.tube
            ),
            x_label: "arclength s along Γ".into(),
            y_label: "p(s)".into(),
            series,
            // Head-room above the peak for the legend.
            y_range: Some((0.0, 1.45 * top)),
            ..Default::default()
        },
    )?;
    let Some(fp_along) = &c.fp else {
        return Ok(());
    };
    let mut residuals = vec![Series::new(
        format!("reduced level ({law})"),
        &t.s,
        &t.density
            .iter()
            .zip(fp_along)
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>(),
        1,
        Mark::Line,
    )];
    if c.homogenised.is_some() {
        residuals.push(Series::new(
            "homogenised level (flow fibres)",
            &t.s,
            &hom.iter()
                .zip(fp_along)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>(),
            2,
            Mark::Line,
        ));
    }
    plot::line_plot(
        &out.join("marginal_s_residual"),
        &LinePlot {
            title: "Theory minus Fokker–Planck along Γ (FP binned by whole grid cells)".into(),
            x_label: "arclength s along Γ".into(),
            y_label: "p_theory(s) − p_FP(s)".into(),
            series: residuals,
            ref_lines: vec![],
            ..Default::default()
        },
    )
}

/// The x-marginals of every part in one figure, into `<stem>.png/.svg`.
pub fn marginal_x_figure(
    stem: &Path,
    xs: &[f64],
    columns: &[(&str, Vec<f64>)],
) -> Result<(), WriteError> {
    let series = columns
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.iter().any(|p| p.is_finite()))
        .map(|(n, (name, values))| {
            let label = match *name {
                "fp" => "Fokker–Planck",
                "theory_paper" => "theory, paper level (Eq. 13)",
                "theory_reduced" => "theory, reduced 1-D equation",
                "theory_homogenised" => "theory, homogenised reduction",
                "sampler" => "Monte-Carlo sampler",
                other => other,
            };
            let mark = if n == 0 { Mark::Line } else { Mark::Dashed };
            Series::new(label, xs, values, n, mark)
        })
        .collect();
    plot::line_plot(
        stem,
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
pub fn valley_profile_figure(
    stem: &Path,
    prof: &theory::ValleyProfiles,
    fp: Option<&FpSolution>,
) -> Result<(), WriteError> {
    valley_profile_figure_with(stem, prof, fp, None)
}

/// The homogenised level's effective loss along the valley floor in the convention of the
/// reduced curve (Eq. 13 with the exact law of y at y = 0): the reduced level's p(x) replaced by
/// the homogenised one, L_hom(x, 0) = L_red(x, 0) − Δ(x) ln[p_hom(x)/p_red(x)] (both marginals
/// normalised on the same points); `None` when either level is missing.
pub fn l_eff_homogenised_on_floor(th: &theory::TheorySolution) -> Option<Vec<f64>> {
    let p_hom = th.marginal_homogenised.as_ref()?;
    let l_red = th.profiles.l_eff_reduced.as_ref()?;
    if th.profiles.x.len() != p_hom.len() {
        return None;
    }
    Some(
        (0..p_hom.len())
            .map(|i| {
                let r = (p_hom[i] / th.marginal_reduced[i]).ln();
                let v = l_red[i] - th.profiles.delta[i] * r;
                if v.is_finite() { v } else { f64::NAN }
            })
            .collect(),
    )
}

/// [`valley_profile_figure`] with the homogenised level's L_eff (from
/// [`l_eff_homogenised_on_floor`]), shifted to equal the reduced curve at its minimum (x_ss).
pub fn valley_profile_figure_with(
    stem: &Path,
    prof: &theory::ValleyProfiles,
    fp: Option<&FpSolution>,
    l_eff_homogenised: Option<&[f64]>,
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
    if let Some(l) = l_eff_homogenised.filter(|l| l.len() == prof.x.len()) {
        // Match the reduced curve (shifted to 0 at its minimum) at that minimum, x_ss.
        let at = prof.l_eff_reduced.as_ref().and_then(|red| {
            let k = (0..red.len())
                .filter(|&k| red[k].is_finite() && l[k].is_finite())
                .min_by(|&a, &b| red[a].total_cmp(&red[b]))?;
            let red_min = red
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min);
            Some(l[k] - (red[k] - red_min))
        });
        let shifted = match at {
            Some(c) => l.iter().map(|v| v - c).collect(),
            None => shift(l),
        };
        series.push(Series::new(
            "L_eff, homogenised theory",
            &prof.x,
            &shifted,
            4,
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
        stem,
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
fn write_fp_outputs(out: &Path, valley: &Valley2d, res: &FpSolution) -> Result<(), WriteError> {
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
    fp_density_figure(
        &out.join("fp_density"),
        valley,
        res,
        &format!("{} density P(x, y) (Fokker–Planck)", res.summary.density),
    )
}

/// The FP density as a heatmap over the contours of L, with x* and ±x_F marked.
pub fn fp_density_figure(
    stem: &Path,
    valley: &Valley2d,
    res: &FpSolution,
    title: &str,
) -> Result<(), WriteError> {
    let g = &res.grid;
    let loss = g.at_centres(|x, y| valley.loss(x, y));
    let l_max = loss.iter().copied().fold(0.0f64, f64::max);
    let levels = (1..8).map(|k| l_max * (k as f64 / 8.0).powi(2)).collect();
    let (x_lo, x_hi) = g.x_range();
    let x_max = x_lo.abs().max(x_hi.abs());
    let x_f = valley.flattest_point(x_max);
    let mut markers = vec![(0.0, 0.0, "global minimum x*".to_string())];
    // Only a flattest point inside the domain (λ'(x_F) = 0), not the edge of the scan.
    if x_f > 0.0 && x_f < x_max * (1.0 - 1e-6) {
        markers.push((x_f, 0.0, "flattest x_F".to_string()));
        markers.push((-x_f, 0.0, String::new()));
    }
    markers.retain(|m| m.0 >= x_lo && m.0 <= x_hi);
    plot::heatmap(
        stem,
        &Heatmap {
            x_label: "x (degenerate direction)".into(),
            y_label: "y (sharp direction)".into(),
            contours: Some((loss, levels)),
            contour_label: "contours of L(x, y)".into(),
            markers,
            ..density_heatmap(res, title)
        },
    )
}

/// The FP density on its grid as a heatmap with axes x, y, without contours or markers (each
/// figure adds its own).
pub(crate) fn density_heatmap(sol: &FpSolution, title: &str) -> Heatmap {
    let g = &sol.grid;
    Heatmap {
        title: title.to_string(),
        x_label: "x".into(),
        y_label: "y".into(),
        colorbar_label: "P(x, y)".into(),
        nx: g.nx,
        ny: g.ny,
        x_range: g.x_range(),
        y_range: g.y_range(),
        values: sol.density.clone(),
        contours: None,
        contour_label: String::new(),
        markers: Vec::new(),
    }
}

/// timeseries.csv and the sampler's figures: flatness and x over time, trajectories.
fn write_sampler_outputs(
    out: &Path,
    scenario: &Scenario,
    res: &SamplerRun,
) -> Result<(), WriteError> {
    write_timeseries(out, &res.timeseries)?;
    let ts = &res.timeseries;
    let kind = res.summary.kind.name();
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
            y_label: "mean flatness over the walkers".into(),
            series: vec![
                Series::new(
                    "⟨F(x)⟩, Eq. (6)",
                    &t,
                    &pick(&ts.mean_flatness),
                    0,
                    Mark::Line,
                ),
                // The plot font has no combining circumflex, so F̂ is named in words.
                Series::new(
                    "geometric-mean flatness, Eq. (16)",
                    &t,
                    &pick(&ts.mean_flatness_hat),
                    1,
                    Mark::Dashed,
                ),
            ],
            log_x: true,
            // The curves rise to the right; the upper left is empty.
            legend_left: true,
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
    match two_d {
        Some(valley) => super::trajectories::draw_trajectories(
            &out.join("trajectories"),
            valley,
            &format!("Trajectories over the contours of L ({kind})"),
            traj,
            scenario
                .fokker_planck()
                .map(|fp| fp.config())
                .map(|c| (c.x.min, c.x.max, c.y.min, c.y.max)),
        ),
        None => plot::line_plot(
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

/// One row of timeseries.csv.
#[derive(serde::Serialize)]
struct TimeSeriesRow {
    step: usize,
    t: f64,
    alive: usize,
    mean_flatness: Option<f64>,
    mean_flatness_hat: Option<f64>,
    mean_loss: Option<f64>,
    mean_x: Option<f64>,
    mean_abs_x: Option<f64>,
    mean_y_sq: Option<f64>,
}

/// timeseries.csv: the sampler's ensemble curves (means empty when no walker is alive).
fn write_timeseries(out: &Path, ts: &sampler::TimeSeries) -> Result<(), WriteError> {
    write_rows(&out.join("timeseries.csv"), timeseries_rows(ts))
}

/// The rows of timeseries.csv: `step,t,alive,mean_flatness,mean_flatness_hat,mean_loss,mean_x,
/// mean_abs_x,mean_y_sq`.
pub fn timeseries_rows(ts: &sampler::TimeSeries) -> impl Iterator<Item = impl serde::Serialize> {
    (0..ts.step.len()).map(|k| TimeSeriesRow {
        step: ts.step[k],
        t: ts.t[k],
        alive: ts.alive[k],
        mean_flatness: cell(ts.mean_flatness[k]),
        mean_flatness_hat: cell(ts.mean_flatness_hat[k]),
        mean_loss: cell(ts.mean_loss[k]),
        mean_x: cell(ts.mean_x[k]),
        mean_abs_x: cell(ts.mean_abs_x[k]),
        mean_y_sq: cell(ts.mean_y_sq[k]),
    })
}
