//! `flatscape figures`: run the scenarios of `scenarios/` that the publication figures need and
//! render every figure (PNG + SVG) into one folder, in one style. File names begin with the
//! paper's figure id (`fig2a_…`); the figures beyond the paper have descriptive names.
//! Each scenario's full output goes to `<out>/runs/<name>/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::config::{AxisConfig, NoProgress};
use crate::fp::{
    self, CrossDiffusionScheme, FokkerPlanckConfig, FpPlan, grid::Grid, operator, passage,
};
use crate::landscape::{Landscape, Valley2d};
use crate::noise::Noise;
use crate::report::plot::{self, LinePlot, Mark, RefLine, Series};
use crate::report::{network as network_report, run as run_report, sweep as sweep_report};
use crate::sampler::{self, SamplerConfig, SamplerKind, SamplerPlan};
use crate::scenario::{Scenario, ScenarioError};
use crate::study::{RunArtifacts, StudyError};

use super::{AppError, RunOptions, run_into};

/// What `figures` produced: file stems (without extension) and timings.
#[derive(Debug, Clone, Default)]
pub struct FigureReport {
    /// Every figure written (stem; `.png` and `.svg` exist for each).
    pub figures: Vec<PathBuf>,
    /// (scenario, seconds) of every run.
    pub runs: Vec<(String, f64)>,
}

/// The folder `figures --quick` writes to unless `--out` is given: never the versioned gallery.
pub const QUICK_OUT: &str = "output/quick";

/// The box of the paper's Fig. 5(a): x ∈ [−1.6, 1.6], y ∈ [−0.6, 0.6].
const PAPER_VIEW: (f64, f64, f64, f64) = (-1.6, 1.6, -0.6, 0.6);

/// Shrink a scenario for `--quick`: fewer walkers and steps (never more than given), coarser
/// grids, fewer sweep points; the result is validated again.
pub fn shrink(sc: &Scenario) -> Result<Scenario, ScenarioError> {
    let mut spec = sc.spec().clone();
    if let Some(s) = spec.sampler.as_mut() {
        s.walkers = s.walkers.min(32);
        s.steps = (s.steps / 20).max(2000).min(s.steps);
        s.burn_in = (s.burn_in / 20).min(s.steps / 2);
    }
    if let Some(fp) = spec.fokker_planck.as_mut() {
        fp.x.cells = (fp.x.cells / 4).max(24).min(fp.x.cells);
        fp.y.cells = (fp.y.cells / 4).max(16).min(fp.y.cells);
        if fp.t_end > 0.0 {
            fp.dt = fp.dt.max(fp.t_end / 10.0);
            fp.snapshots.retain(|&t| t <= fp.t_end);
        }
    }
    if let Some(sw) = spec.sweep.as_mut() {
        for r in [&mut sw.sigma, &mut sw.eta, &mut sw.delta_s]
            .into_iter()
            .flatten()
        {
            r.points = r.points.min(4);
        }
    }
    Scenario::from_spec(spec, sc.file())
}

struct Ctx<'a> {
    scenarios: &'a Path,
    out: PathBuf,
    opts: RunOptions,
    report: FigureReport,
}

impl Ctx<'_> {
    /// Load, (shrink), run a scenario into `<out>/runs/<name>`; return it and its artifacts.
    fn run(&mut self, file: &str) -> Result<(Scenario, RunArtifacts), AppError> {
        let mut sc = Scenario::load(&self.scenarios.join(file))?;
        if self.opts.quick {
            sc = shrink(&sc)?;
        }
        let clock = Instant::now();
        if !self.opts.quiet {
            eprintln!("figures: running {file}");
        }
        let dir = self.out.join("runs").join(sc.name());
        // No progress bars: runs of different groups overlap, and their bars would overwrite each
        // other; the lines above and below say what runs and how long it took (Ctrl-C still works).
        let (art, _) = run_into(&sc, &dir, true)?;
        let secs = clock.elapsed().as_secs_f64();
        if !self.opts.quiet {
            eprintln!("figures: {file} took {secs:.1} s");
        }
        self.report.runs.push((sc.name().to_string(), secs));
        Ok((sc, art))
    }

    /// The stem of a gallery figure (recorded in the report).
    fn stem(&mut self, name: &str) -> PathBuf {
        let path = self.out.join(name);
        self.report.figures.push(path.clone());
        path
    }

    /// The title of a gallery figure (quick-mode figures say so).
    fn title(&self, title: &str) -> String {
        if self.opts.quick {
            format!("{title} [quick mode]")
        } else {
            title.to_string()
        }
    }

    fn plot(&mut self, name: &str, p: &LinePlot) -> Result<(), AppError> {
        let path = self.stem(name);
        let p = LinePlot {
            title: self.title(&p.title),
            ..p.clone()
        };
        plot::line_plot(&path, &p)?;
        Ok(())
    }

    /// The two figures of a scenario's sweep, under gallery names.
    fn sweep_figures(
        &mut self,
        sc: &Scenario,
        art: &RunArtifacts,
        names: [&str; 2],
    ) -> Result<(), AppError> {
        let (Some(table), Some(sw)) = (&art.sweep, sc.sweep()) else {
            return Ok(());
        };
        let (a, b) = (self.stem(names[0]), self.stem(names[1]));
        let suffix = self.title("").to_string();
        sweep_report::write_sweep_figures([&a, &b], sc, sw, &table.rows, &suffix)?;
        Ok(())
    }
}

/// Regenerate every figure of the gallery.
pub fn figures(scenarios: &Path, opts: &RunOptions) -> Result<FigureReport, AppError> {
    let default = if opts.quick { QUICK_OUT } else { "output" };
    let out = opts.out.clone().unwrap_or_else(|| PathBuf::from(default));
    type Phase = fn(&mut Ctx<'_>) -> Result<(), AppError>;
    // Longest first (in start order): the phases share one rayon pool, so the serial parts of one (LU
    // factorisations, transient steps, rendering) overlap with the parallel parts of another.
    let phases: [(&str, Phase); 7] = [
        ("real network", real_network),
        ("phase diagrams", phase_diagrams),
        ("beyond the paper", beyond_the_paper),
        ("flatness dynamics", flatness_dynamics),
        ("valley reshaping", valley_reshaping),
        ("expression landscapes", expression_landscapes),
        ("trajectories", trajectories),
    ];
    let results: Vec<std::sync::Mutex<Option<Result<FigureReport, AppError>>>> =
        phases.iter().map(|_| Default::default()).collect();
    rayon::scope_fifo(|s| {
        for ((name, phase), slot) in phases.iter().zip(&results) {
            let out = out.clone();
            s.spawn_fifo(move |_| {
                let mut ctx = Ctx {
                    scenarios,
                    out,
                    opts: opts.clone(),
                    report: FigureReport::default(),
                };
                let clock = Instant::now();
                let res = phase(&mut ctx).map(|()| ctx.report);
                if !opts.quiet {
                    eprintln!(
                        "figures: {name} took {:.1} s",
                        clock.elapsed().as_secs_f64()
                    );
                }
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(res);
                }
            });
        }
    });
    // Reports in the gallery's order (as the phases used to run one after the other).
    let order = [3, 1, 4, 6, 2, 5, 0];
    let mut report = FigureReport::default();
    for k in order {
        let part = results[k]
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .expect("every phase ran")?;
        report.figures.extend(part.figures);
        report.runs.extend(part.runs);
    }
    Ok(report)
}

/// Figs. 2(a) and 3(a): flatness against time on the N-D valley.
fn flatness_dynamics(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let mut fig2a = Vec::new();
    for (n, (file, label)) in [
        ("fig2a-gd.toml", "GD"),
        ("fig2a-sgd.toml", "SGD"),
        ("fig2a-gld.toml", "GLD (isotropic, matched trace)"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, art) = ctx.run(file)?;
        fig2a.push(flatness_series(&art, label, n));
    }
    ctx.plot(
        "fig2a_flatness_gd_sgd_gld",
        &LinePlot {
            title: "Fig. 2(a): flatness dynamics, N-D valley (N_S = 5, N_F = 100)".into(),
            x_label: "time t = η · iteration".into(),
            y_label: "mean flatness F(x), Eq. (6)".into(),
            series: fig2a,
            log_x: true,
            legend_left: true,
            ..Default::default()
        },
    )?;
    let mut fig3a = Vec::new();
    for (n, sigma) in ["0.001", "0.01", "0.1"].into_iter().enumerate() {
        let (_, art) = ctx.run(&format!("fig3a-sigma{sigma}.toml"))?;
        fig3a.push(flatness_series(&art, &format!("σ = {sigma}"), n));
    }
    ctx.plot(
        "fig3a_flatness_vs_sigma",
        &LinePlot {
            title: "Fig. 3(a): flatness dynamics at η = 0.01, N-D valley".into(),
            x_label: "time t = η · iteration".into(),
            y_label: "mean flatness F(x), Eq. (6)".into(),
            series: fig3a,
            log_x: true,
            legend_left: true,
            ..Default::default()
        },
    )
}

fn flatness_series(art: &RunArtifacts, label: &str, color: usize) -> Series {
    let ts = art.sampler.as_ref().map(|s| &s.timeseries);
    let (t, f): (Vec<f64>, Vec<f64>) = ts
        .map(|ts| {
            ts.t.iter()
                .zip(&ts.mean_flatness)
                .filter(|(t, f)| **t > 0.0 && f.is_finite())
                .map(|(t, f)| (*t, *f))
                .unzip()
        })
        .unwrap_or_default();
    let mark = [Mark::Line, Mark::Dashed, Mark::Line][color % 3];
    Series::new(label, &t, &f, color, mark)
}

/// Figs. 3(c), 5(b), 5(d): phase diagrams.
fn phase_diagrams(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let (sc, art) = ctx.run("fig3c-phase-diagram-nd.toml")?;
    ctx.sweep_figures(
        &sc,
        &art,
        [
            "fig3c_phase_diagram_nd",
            "fig3c_phase_diagram_nd_search_time",
        ],
    )?;
    let (sc, art) = ctx.run("fig5b-phase-diagram.toml")?;
    ctx.sweep_figures(
        &sc,
        &art,
        [
            "fig5b_phase_diagram_flatness",
            "fig5d_phase_diagram_search_time",
        ],
    )
}

/// Fig. 4(b): the valley before and after reshaping (constant anisotropic noise).
fn valley_reshaping(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let (sc, art) = ctx.run("anisotropic-valley.toml")?;
    if let Some(th) = &art.theory {
        let stem = ctx.stem("fig4b_valley_reshaping");
        run_report::valley_profile_figure(&stem, &th.profiles, art.fp.as_ref())?;
    }
    density_figure(
        ctx,
        &sc,
        &art,
        "density_anisotropic_noise",
        "Fokker–Planck density, constant anisotropic noise",
    )
}

/// A run's FP density under a gallery name and title.
fn density_figure(
    ctx: &mut Ctx<'_>,
    sc: &Scenario,
    art: &RunArtifacts,
    name: &str,
    title: &str,
) -> Result<(), AppError> {
    if let (Some(sol), Some(valley)) = (&art.fp, sc.valley2d()) {
        let stem = ctx.stem(name);
        let title = ctx.title(title);
        run_report::fp_density_figure(&stem, valley, sol, &title)?;
    }
    Ok(())
}

/// Expression landscapes: matrix factorisation (density with its current, the drift along
/// xy = 1), two basins of different sharpness under Hessian and isotropic noise, the paper's
/// valley as an expression.
fn expression_landscapes(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    use crate::report::current::{current_figure, expression_density_figure};
    let (sc, art) = ctx.run("expression-matrix-factorisation.toml")?;
    if let Some(sol) = &art.fp {
        let stem = ctx.stem("expression_mf_current");
        let title = ctx.title("L = ½(xy − 1)², Hessian noise: current J over P");
        current_figure(&stem, sol, &title)?;
    }
    if let (Some(sol), Some(run)) = (&art.fp, &art.sampler) {
        let ts = &run.timeseries;
        let x_fp = sol.summary.mean[0];
        let p = LinePlot {
            title: "L = ½(xy − 1)²: Langevin walkers drift along xy = 1 to x = y = 1".into(),
            x_label: "time t".into(),
            y_label: "⟨x⟩".into(),
            series: vec![Series::new(
                "sampler ⟨x⟩ (start x = 1.4 on xy = 1)",
                &ts.t,
                &ts.mean_x,
                0,
                Mark::Line,
            )],
            ref_lines: vec![RefLine {
                label: format!("Fokker–Planck ⟨x⟩ = {x_fp:.4}"),
                at: x_fp,
                vertical: false,
            }],
            log_x: true,
            ..Default::default()
        };
        ctx.plot("expression_mf_drift", &p)?;
    }
    drop(sc);
    for (file, name, title) in [
        (
            "expression-two-basins-hessian.toml",
            "expression_two_basins_hessian",
            "Two basins (sharp a = 8, flat b = 2), Hessian noise",
        ),
        (
            "expression-two-basins-isotropic.toml",
            "expression_two_basins_isotropic",
            "Two basins (sharp a = 8, flat b = 2), isotropic noise of equal trace",
        ),
        (
            "expression-paper-valley.toml",
            "expression_paper_valley",
            "The paper's valley as an expression, Hessian noise",
        ),
    ] {
        let (sc, art) = ctx.run(file)?;
        if let (Some(sol), Some(e)) = (&art.fp, sc.landscape().expression()) {
            let flat = sol
                .grid
                .xs()
                .iter()
                .zip(sol.grid.marginal_x(&sol.density))
                .filter(|(x, _)| **x > 0.0)
                .map(|(_, p)| p * sol.grid.dx)
                .sum::<f64>();
            let title = if file.contains("basins") {
                format!("{title}: P(x > 0) = {flat:.3}")
            } else {
                title.to_string()
            };
            let stem = ctx.stem(name);
            let title = ctx.title(&title);
            expression_density_figure(&stem, e, sol, &title)?;
        }
    }
    Ok(())
}

/// Figs. 5(a) and 5(c): SGD trajectories for σ = 0, 0.02, 0.2 at η = 0.01.
fn trajectories(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let mut xy = Vec::new();
    let mut xt = Vec::new();
    let mut valley = None;
    for (n, sigma) in ["0", "0.02", "0.2"].into_iter().enumerate() {
        let (sc, art) = ctx.run(&format!("fig5-sigma{sigma}.toml"))?;
        valley = sc.valley2d().cloned();
        let Some(res) = art.sampler else { continue };
        let Some(tr) = res.trajectories.first() else {
            continue;
        };
        let stride = res.trajectory_stride.max(1) as f64;
        let label = format!("σ = {sigma}");
        // Mirror every other trajectory to y < 0, as the paper marks symmetric positions.
        let sign = if n % 2 == 1 { -1.0 } else { 1.0 };
        xy.push(Series {
            label: label.clone(),
            points: tr.iter().map(|p| (p[0], sign * p[1])).collect(),
            color: n,
            mark: Mark::Line,
        });
        xt.push(Series {
            label,
            points: tr
                .iter()
                .enumerate()
                .filter(|(k, _)| *k > 0)
                .map(|(k, p)| (k as f64 * stride, p[0]))
                .collect(),
            color: n,
            mark: [Mark::Line, Mark::Dashed, Mark::Line][n],
        });
    }
    if let Some(v) = valley {
        // Draw σ = 0.2 first and σ = 0 last: the short σ = 0 path would hide under the others.
        xy.reverse();
        let path = ctx.stem("fig5a_trajectories");
        let title = ctx.title("Fig. 5(a): SGD trajectories, η = 0.01");
        crate::report::trajectories::draw_trajectories(&path, &v, &title, xy, Some(PAPER_VIEW))?;
    }
    ctx.plot(
        "fig5c_x_vs_iteration",
        &LinePlot {
            title: "Fig. 5(c): the flat coordinate during SGD, η = 0.01".into(),
            x_label: "iteration t".into(),
            y_label: "x".into(),
            series: xt,
            ref_lines: vec![
                RefLine {
                    label: "global minimum x* = 0".into(),
                    at: 0.0,
                    vertical: false,
                },
                RefLine {
                    label: "flattest x_F = 1".into(),
                    at: 1.0,
                    vertical: false,
                },
            ],
            log_x: true,
            ..Default::default()
        },
    )
}

/// Search times τ_s at Δ_S (phase II) from (1.5, 0) on the paper's valley: the adjoint FP solve
/// (absorbing at x ≤ x_ss, x_ss from the Langevin walkers), Langevin walkers and SGD walkers.
/// Returns (x_ss, adjoint τ_s, Langevin τ_s, SGD τ_s).
pub fn search_times(delta_s: f64, quick: bool) -> Result<(f64, f64, f64, f64), AppError> {
    let eta = 0.01;
    let sigma = delta_s / eta;
    let (walkers, steps) = if quick { (64, 40_000) } else { (1024, 200_000) };
    let valley = Valley2d::paper();
    let landscape = Landscape::Valley2d(valley.clone());
    let noise = Noise::Hessian {
        eta,
        sigma,
        power: 2.0,
    };
    let walk = |kind: SamplerKind, dt: Option<f64>| -> Result<sampler::SamplerRun, AppError> {
        let cfg = SamplerConfig {
            dt,
            stored_trajectories: 0,
            ..SamplerConfig::new(kind, walkers, steps, steps / 2, vec![1.5, 0.0])
        };
        let plan = SamplerPlan::new(&cfg, &landscape, &noise, 3)
            .map_err(|e| AppError::from(StudyError::from(e)))?;
        sampler::run(&plan, None, &NoProgress).map_err(|e| AppError::from(StudyError::from(e)))
    };
    let lang = walk(SamplerKind::Langevin, Some(0.002))?;
    let sgd = walk(SamplerKind::Sgd, None)?;
    let x_ss = lang.summary.x_ss_abs.unwrap_or(f64::NAN);
    let y_half = (8.0 * (delta_s * 8.0).sqrt()).clamp(0.3, 1.2);
    let (nx, ny) = if quick { (120, 60) } else { (480, 160) };
    let grid = Grid::new(
        &AxisConfig::new((x_ss - 0.2).max(0.0), 1.6, nx),
        &AxisConfig::new(-y_half, y_half, ny),
    );
    let a = operator::assemble(&grid, &valley, &noise, CrossDiffusionScheme::Central);
    let tau = passage::mean_first_passage(&a, |k| grid.x(k / grid.ny) <= x_ss)
        .map_err(|e| AppError::from(StudyError::Passage(e)))?;
    let adjoint = passage::interpolate(&grid, &tau, 1.5, 0.0).unwrap_or(f64::NAN);
    Ok((
        x_ss,
        adjoint,
        lang.summary.search_time.unwrap_or(f64::NAN),
        sgd.summary.search_time.unwrap_or(f64::NAN),
    ))
}

/// Figs. 1(a), 1(b), 2(b), 3(b): the trained MLP on the UCI digits.
fn real_network(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let file = if ctx.opts.quick {
        "network-quick.toml"
    } else {
        "network-digits.toml"
    };
    let (_, art) = ctx.run(file)?;
    if let Some(res) = &art.network {
        network_report::write_figures(&ctx.out, res)?;
        for stem in network_report::FIGURES {
            ctx.stem(stem);
        }
        if res.summary.hessian.is_some() {
            for stem in network_report::LAYER_FIGURES {
                ctx.stem(stem);
            }
        }
    }
    Ok(())
}

/// The figures beyond the paper.
fn beyond_the_paper(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    for (file, stem) in [
        ("theory-vs-fp-ds-0.0002.toml", "density_below_transition"),
        ("theory-vs-fp-ds-0.0005.toml", "density_at_transition"),
        ("theory-vs-fp-ds-0.002.toml", "density_above_transition"),
    ] {
        let (sc, art) = ctx.run(file)?;
        let delta_s = sc.noise().delta_s().unwrap_or(f64::NAN);
        let title = format!("Fokker–Planck density at Δ_S = {delta_s}");
        density_figure(ctx, &sc, &art, stem, &title)?;
    }
    let (_, art) = ctx.run("sampler-langevin-hessian.toml")?;
    if let Some(m) = &art.marginals {
        let stem = ctx.stem("marginals_fp_theory_sampler");
        run_report::marginal_x_figure(&stem, &m.x, &m.columns)?;
    }
    let (sc, art) = ctx.run("flatness-vs-delta-s.toml")?;
    ctx.sweep_figures(&sc, &art, ["flatness_vs_delta_s", "x_ss_vs_delta_s"])?;
    // Search times: adjoint FP solve vs Langevin vs SGD.
    let points: &[f64] = if ctx.opts.quick {
        &[0.002]
    } else {
        &[0.001, 0.002, 0.004]
    };
    let quick = ctx.opts.quick;
    let rows = points
        .par_iter()
        .map(|&d| search_times(d, quick).map(|r| (d, r)))
        .collect::<Result<Vec<_>, AppError>>()?;
    let col = |f: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<f64> {
        rows.iter().map(|r| f(&r.1)).collect()
    };
    let ds: Vec<f64> = rows.iter().map(|r| r.0).collect();
    ctx.plot(
        "search_time_adjoint_vs_sampler",
        &LinePlot {
            title: "Search time from (1.5, 0): adjoint FP solve vs walkers".into(),
            x_label: "effective noise level Δ_S = ησ (η = 0.01)".into(),
            y_label: "search time τ_s".into(),
            series: vec![
                Series::new(
                    "adjoint (backward) FP equation",
                    &ds,
                    &col(|r| r.1),
                    0,
                    Mark::Line,
                ),
                Series::new(
                    "Langevin walkers (dt = 0.002)",
                    &ds,
                    &col(|r| r.2),
                    1,
                    Mark::Points,
                ),
                Series::new(
                    "SGD walkers (η = 0.01)",
                    &ds,
                    &col(|r| r.3),
                    2,
                    Mark::Points,
                ),
            ],
            log_y: true,
            ..Default::default()
        },
    )?;
    grid_convergence(ctx)?;
    noise_power(ctx)?;
    hopping_rate(ctx)
}

/// The hopping rate between the flat wells against Δ_S (gallery figure `hopping_rate`).
fn hopping_rate(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let p = hopping_rate_plot(ctx.opts.quick)?;
    ctx.plot("hopping_rate", &p)
}

/// The hopping-rate figure: reduced 1-D theory, FP spectrum and FP adjoint passage time on
/// refined grids (a grid study: the FP rates fall towards the theory).
pub fn hopping_rate_plot(quick: bool) -> Result<LinePlot, AppError> {
    use crate::study::hopping;
    let valley = Valley2d::paper();
    let star = -valley.epsilon / valley.lambda1();
    let ratios: Vec<f64> = (0..=40).map(|k| 1.005 + 0.495 * k as f64 / 40.0).collect();
    let theory: Vec<(f64, f64)> = ratios
        .iter()
        .filter_map(|&r| hopping::theory_log10_rate(&valley, r * star).map(|l| (r, l)))
        .collect();
    let (tx, ty): (Vec<f64>, Vec<f64>) = theory.into_iter().unzip();
    let mut series = vec![Series::new(
        "reduced 1-D theory, k = 1/(2τ) (converged)",
        &tx,
        &ty,
        6,
        Mark::Line,
    )];
    let (fp_ratios, grids): (&[f64], &[usize]) = if quick {
        (&[1.04, 1.1], &[128, 256])
    } else {
        (
            &[1.02, 1.04, 1.06, 1.1, 1.15, 1.2],
            &[128, 256, 512, 1024, 2048],
        )
    };
    // Every (grid, ratio) solve is independent: run them all at once, read them in order.
    let pairs: Vec<(usize, f64)> = grids
        .iter()
        .flat_map(|&nx| fp_ratios.iter().map(move |&r| (nx, r)))
        .collect();
    let solved = pairs
        .par_iter()
        .map(|&(nx, r)| hopping::fp_hopping(&valley, r * star, nx))
        .collect::<Result<Vec<_>, _>>()?;
    let mut solved = solved.into_iter();
    for (n, &nx) in grids.iter().enumerate() {
        let mut xs = Vec::new();
        let (mut spec, mut pass) = (Vec::new(), Vec::new());
        for &r in fp_ratios {
            let h = solved.next().expect("one solve per (grid, ratio)");
            if h.from_spectrum > hopping::RATE_FLOOR {
                xs.push(r);
                spec.push(h.from_spectrum.log10());
                pass.push(h.from_passage.log10());
            }
        }
        series.push(Series::new(
            format!("FP λ1/2, {nx} x-cells"),
            &xs,
            &spec,
            n,
            Mark::Line,
        ));
        let label = if n + 1 == grids.len() {
            "FP adjoint 1/(2τ(x_ss)) (dots, every grid)".to_string()
        } else {
            String::new()
        };
        series.push(Series::new(label, &xs, &pass, n, Mark::Points));
    }
    Ok(LinePlot {
        title: "Hopping rate between the flat wells above Δ_S* (η = 0.01)".into(),
        x_label: "Δ_S / Δ_S*".into(),
        y_label: "log10 of the hopping rate k".into(),
        series,
        ..Default::default()
    })
}

/// FP grid convergence: OU steady covariance error against the cell size (second order).
fn grid_convergence(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let valley = Valley2d {
        epsilon: 0.5,
        lambda: vec![2.0],
    };
    let d = [[0.05, 0.02], [0.02, 0.04]];
    let noise = Noise::Constant { d };
    let a = [1.0, 2.0];
    let exact = |i: usize, j: usize| 2.0 * d[i][j] / (a[i] + a[j]);
    let sizes: &[usize] = if ctx.opts.quick {
        &[16, 32]
    } else {
        &[16, 32, 64, 128, 256]
    };
    let (h, err): (Vec<f64>, Vec<f64>) = sizes
        .par_iter()
        .map(|&n| -> Result<(f64, f64), AppError> {
            let cfg = FokkerPlanckConfig::steady(
                AxisConfig::new(-1.5, 1.5, n),
                AxisConfig::new(-1.0, 1.0, n),
            );
            let plan = FpPlan::new(valley.clone(), noise.clone(), cfg)
                .map_err(|e| AppError::from(StudyError::from(e)))?;
            let res =
                fp::solve(&plan, &NoProgress).map_err(|e| AppError::from(StudyError::from(e)))?;
            let c = res.summary.cov;
            let e = (c[0][0] - exact(0, 0))
                .abs()
                .max((c[1][1] - exact(1, 1)).abs())
                .max((c[0][1] - exact(0, 1)).abs());
            Ok((3.0 / n as f64, e))
        })
        .collect::<Result<Vec<_>, AppError>>()?
        .into_iter()
        .unzip();
    let reference: Vec<f64> = h.iter().map(|&x| err[0] * (x / h[0]).powi(2)).collect();
    ctx.plot(
        "fp_grid_convergence",
        &LinePlot {
            title: "FP solver: Ornstein–Uhlenbeck covariance error under refinement".into(),
            x_label: "cell size dx (dy = 2dx/3)".into(),
            y_label: "max |Σ_FP − Σ_Lyapunov|".into(),
            series: vec![
                Series::new("FP steady covariance error", &h, &err, 0, Mark::Points),
                Series::new("slope 2", &h, &reference, 6, Mark::Dashed),
            ],
            log_x: true,
            log_y: true,
            ..Default::default()
        },
    )
}

/// γ = 2 (random-shift model) against γ = 1 (seen in real networks): FP x-marginals.
fn noise_power(ctx: &mut Ctx<'_>) -> Result<(), AppError> {
    let valley = Valley2d::paper();
    let cells = if ctx.opts.quick {
        (160, 80)
    } else {
        (960, 240)
    };
    let cases = [(2.0, 0.002), (1.0, 0.002), (1.0, 0.008)];
    let series = cases
        .par_iter()
        .enumerate()
        .map(|(n, &(power, delta_s))| -> Result<Series, AppError> {
            let cfg = FokkerPlanckConfig::steady(
                AxisConfig::new(-1.6, 1.6, cells.0),
                AxisConfig::new(-0.6, 0.6, cells.1),
            );
            let noise = Noise::Hessian {
                eta: 1.0,
                sigma: delta_s,
                power,
            };
            let plan = FpPlan::new(valley.clone(), noise, cfg)
                .map_err(|e| AppError::from(StudyError::from(e)))?;
            let res =
                fp::solve(&plan, &NoProgress).map_err(|e| AppError::from(StudyError::from(e)))?;
            let px = res.grid.marginal_x(&res.density);
            let star = -valley.epsilon * valley.lambda0().powf(2.0 - power) / valley.lambda1();
            Ok(Series::new(
                format!("γ = {power}, Δ_S = {delta_s} (Δ_S* = {star:.4})"),
                &res.grid.xs(),
                &px,
                n,
                [Mark::Line, Mark::Dashed, Mark::Line][n],
            ))
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    ctx.plot(
        "noise_power_gamma1_vs_gamma2",
        &LinePlot {
            title: "Noise D = Δ_S |H|^γ: γ = 2 (random shifts) vs γ = 1".into(),
            x_label: "x (degenerate direction)".into(),
            y_label: "FP x-marginal p(x)".into(),
            series,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_never_raises_the_work_and_stays_valid() {
        let src = "name = \"q\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[sampler]\nkind = \"sgd\"\nwalkers = 4096\nsteps = 200000\nburn_in = 100000\nstart = [1.5, 1.5]\n[sweep]\nsigma = { min = 0.0, max = 0.4, points = 21 }\neta = { min = 0.005, max = 0.06, points = 12 }\n";
        let sc = Scenario::from_toml_str(src, Path::new("q.toml")).unwrap();
        let small = shrink(&sc).unwrap();
        let s = small.sampler().unwrap().config();
        assert_eq!((s.walkers, s.steps, s.burn_in), (32, 10000, 5000));
        assert_eq!(small.sweep().unwrap().sigma.unwrap().points, 4);
        // A short run stays as short as it was (it used to be raised to 2000 steps).
        let short = src.replace(
            "steps = 200000\nburn_in = 100000",
            "steps = 500\nburn_in = 100",
        );
        let sc = Scenario::from_toml_str(&short, Path::new("q.toml")).unwrap();
        let s = shrink(&sc).unwrap().sampler().unwrap().config().clone();
        assert_eq!((s.steps, s.burn_in), (500, 5));
    }
}
