//! Figures of the real-network check: Fig. 1(a) rank-ordered Hessian eigenvalues, Fig. 1(b)
//! diag Ĥ and diag Ĉ, Fig. 2(b) flatness vs epoch for GD/SGD/GLD, Fig. 3(b) flatness vs epoch
//! for several batch sizes — all through [`crate::report::plot`], PNG + SVG.

use std::collections::BTreeSet;
use std::path::Path;

/// The stems of the network figures (Figs. 1a, 1b, 2b, 3b), in the order they are drawn.
pub const FIGURES: [&str; 4] = [
    "fig1a_hessian_spectrum",
    "fig1b_hessian_noise_diag",
    "fig2b_flatness_optimisers",
    "fig3b_flatness_batch_size",
];

/// The stems of the per-layer C–H figures (drawn with `full_hessian`).
pub const LAYER_FIGURES: [&str; 2] = ["fig1c_layer_gamma", "fig1d_trace_c_top_fraction"];

/// Directions of a layer shown in `fig1c_layer_gamma`: Ĥ_ii above this fraction of λ_max.
const FIG1C_RANGE: f64 = 1e-4;

/// Per layer: log10 Ĉ_ii against log10 Ĥ_ii with the fitted line of slope γ_l; and the
/// fraction of tr C in the top-k eigen-directions of H against k (whole net and each layer).
fn write_layer_figures(out: &Path, result: &NetworkResult) -> Result<(), WriteError> {
    let s = &result.summary;
    let Some(h) = &s.hessian else {
        return Ok(());
    };
    let mut series = Vec::new();
    let mut ref_x = Vec::new();
    for (spec, stat) in result.layer_spectra.iter().zip(&h.layers) {
        let col = stat.layer;
        let lmax = spec.eigenvalues.first().copied().unwrap_or(0.0);
        let pts: Vec<(f64, f64)> = spec
            .eigenvalues
            .iter()
            .zip(&spec.c_hat_diag)
            .filter(|(e, c)| **e >= FIG1C_RANGE * lmax && **c > 0.0)
            .map(|(e, c)| (e.log10(), c.log10()))
            .collect();
        let (o, i) = stat.shape;
        let label = match &stat.gamma_fit {
            Some(f) => format!(
                "layer {} ({i}→{o}, {} par.): γ = {:.2}, R² = {:.2}",
                stat.layer + 1,
                stat.n_params,
                f.gamma,
                f.r_squared
            ),
            None => format!("layer {} ({i}→{o}): no fit", stat.layer + 1),
        };
        series.push(Series {
            label,
            points: pts,
            color: col,
            mark: Mark::Points,
        });
        if let Some(f) = &stat.gamma_fit {
            let (a, b) = (f.h_range.0.log10(), f.h_range.1.log10());
            let line = |x: f64| f.prefactor.log10() + f.gamma * x;
            series.push(Series {
                label: String::new(),
                points: vec![(a, line(a)), (b, line(b))],
                color: col,
                mark: Mark::Line,
            });
            ref_x.push(a);
        }
    }
    let mut plot = LinePlot {
        title: format!(
            "C vs H per layer (blocks H_ll, C_ll; SGD B = {}): fits over Ĥ_ii ≥ {} % λ_max(layer)",
            s.batch,
            h.gamma_threshold * 100.0
        ),
        x_label: "log10 Ĥ_ii (eigenvalues of the layer's Hessian block)".into(),
        y_label: "log10 Ĉ_ii (noise in that eigenbasis)".into(),
        series,
        legend_left: true,
        ..Default::default()
    };
    plot.series.push(Series {
        label: "reference slopes γ = 1 and γ = 2 (through the top point of layer 1)".into(),
        points: Vec::new(),
        color: 6,
        mark: Mark::Dashed,
    });
    if let (Some(spec), Some(_)) = (result.layer_spectra.first(), ref_x.first()) {
        let (x0, y0) = (
            spec.eigenvalues[0].log10(),
            spec.c_hat_diag[0].max(f64::MIN_POSITIVE).log10(),
        );
        for g in [1.0, 2.0] {
            plot.series.push(Series {
                label: String::new(),
                points: vec![(x0 - 3.0, y0 - 3.0 * g), (x0, y0)],
                color: 6,
                mark: Mark::Dashed,
            });
        }
    }
    line_plot(&out.join(LAYER_FIGURES[0]), &plot)?;
    // Every k up to 100, then about 250 points (the plot draws series of > 400 points one
    // pixel wide; this keeps all curves the same width).
    let cumulative = |d: &[f64]| -> Vec<(f64, f64)> {
        let total: f64 = d.iter().sum();
        let step = (d.len() / 250).max(1);
        let mut acc = 0.0;
        let mut pts = Vec::new();
        for (k, c) in d.iter().enumerate() {
            acc += c;
            if k < 100 || k % step == 0 || k + 1 == d.len() {
                pts.push(((k + 1) as f64, acc / total));
            }
        }
        pts
    };
    let mut series = vec![Series {
        label: format!(
            "whole net ({} par.): commutator {:.3}",
            s.n_params, h.commutator
        ),
        points: cumulative(&result.c_hat_diag),
        color: 3,
        mark: Mark::Line,
    }];
    for (spec, stat) in result.layer_spectra.iter().zip(&h.layers) {
        let (o, i) = stat.shape;
        series.push(Series {
            label: format!(
                "layer {} ({i}→{o}): commutator {:.3}",
                stat.layer + 1,
                stat.commutator
            ),
            points: cumulative(&spec.c_hat_diag),
            color: stat.layer,
            mark: Mark::Line,
        });
    }
    line_plot(
        &out.join(LAYER_FIGURES[1]),
        &LinePlot {
            title: "Fraction of tr C in the top-k eigen-directions of H (whole net and per layer)"
                .into(),
            x_label: "k (eigen-directions of H, by decreasing eigenvalue)".into(),
            y_label: "Σ_(i≤k) Ĉ_ii / tr C".into(),
            series,
            log_x: true,
            y_range: Some((0.0, 1.02)),
            legend_left: true,
            ..Default::default()
        },
    )
}

use crate::report::files::{WriteError, write_csv, write_rows};
use crate::report::plot::{LinePlot, Mark, RefLine, Series, line_plot};

use crate::network::train::Optimiser;
use crate::network::{Comparisons, FlatnessCurve, ManifoldCurve, NetworkResult};

/// The stems of the manifold protocol's figures.
pub const MANIFOLD_FIGURES: [&str; 3] = [
    "fig_manifold_flatness",
    "fig_manifold_trace_h",
    "fig_manifold_feedback",
];

/// Predicted (2-D FP model fed with the measured noise and geometry) against measured drift
/// rates per update, per seed, on log–log axes: points at the continuous-time FP prediction,
/// a dashed segment to the finite-η prediction, and the diagonal.
fn write_feedback_figure(out: &Path, result: &NetworkResult) -> Result<(), WriteError> {
    let Some(fb) = result
        .summary
        .manifold
        .as_ref()
        .and_then(|m| m.feedback.as_ref())
    else {
        return Ok(());
    };
    let log = |v: f64| if v > 0.0 { v.log10() } else { f64::NAN };
    type Pick = fn(&crate::network::feedback::SeedFeedback) -> (f64, f64, Option<f64>);
    let picks: [(&str, Pick); 4] = [
        ("label-noise SGD: dF/dn", |s| s.label_noise.flatness_rates()),
        ("label-noise SGD: −d tr H/dn", |s| {
            s.label_noise.sharpness_decay_rates()
        }),
        ("SGD: dF/dn", |s| s.sgd.flatness_rates()),
        ("SGD: −d tr H/dn", |s| s.sgd.sharpness_decay_rates()),
    ];
    let mut series = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut hidden = 0;
    for (c, (label, pick)) in picks.iter().enumerate() {
        let mut pts = Vec::new();
        let mut segs = Vec::new();
        for s in &fb.seeds {
            let (p, d, m) = pick(s);
            let (p, d, m) = (log(p), log(d), log(m.unwrap_or(f64::NAN)));
            if !(p.is_finite() && m.is_finite()) {
                hidden += 1;
                continue;
            }
            for v in [p, d, m] {
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            pts.push((p, m));
            if d.is_finite() {
                segs.push(vec![(p, m), (d, m)]);
            }
        }
        series.push(Series {
            label: label.to_string(),
            points: pts,
            color: c,
            mark: Mark::Points,
        });
        for seg in segs {
            series.push(Series {
                label: String::new(),
                points: seg,
                color: c,
                mark: Mark::Dashed,
            });
        }
    }
    if lo.is_finite() {
        series.push(Series {
            label: "measured = predicted".into(),
            points: vec![(lo - 0.3, lo - 0.3), (hi + 0.3, hi + 0.3)],
            color: 6,
            mark: Mark::Line,
        });
    }
    let note = if hidden > 0 {
        format!(" ({hidden} seed values ≤ 0 not shown)")
    } else {
        String::new()
    };
    line_plot(
        &out.join(MANIFOLD_FIGURES[2]),
        &LinePlot {
            title: format!(
                "2-D FP model (γ = {}, Δ_S = η tr C / 2 tr H) vs the network, per seed{note}",
                fb.gamma
            ),
            x_label:
                "log10 predicted rate per update (point: FP, continuous time; dashed: finite η)"
                    .into(),
            y_label: "log10 measured rate per update (paired with GD)".into(),
            series,
            legend_left: true,
            ..Default::default()
        },
    )
}

/// Palette index of the k-th continuation of the manifold protocol.
fn manifold_color(k: usize) -> usize {
    [1, 0, 3, 2, 4, 5, 6][k % 7]
}

/// F(t) and tr H(t) of every continuation after the common start (mean ± s.d. over seeds).
fn write_manifold_figures(out: &Path, result: &NetworkResult) -> Result<(), WriteError> {
    let s = &result.summary;
    let m = s.manifold.as_ref();
    let series = |mean: &dyn Fn(&ManifoldCurve) -> &[f64],
                  std: &dyn Fn(&ManifoldCurve) -> &[f64]| {
        let mut v = Vec::new();
        for (k, c) in result.manifold_curves.iter().enumerate() {
            let col = manifold_color(k);
            v.push(Series::new(
                c.kind.label(),
                &c.steps,
                mean(c),
                col,
                Mark::Line,
            ));
            for sign in [-1.0, 1.0] {
                let band: Vec<f64> = mean(c)
                    .iter()
                    .zip(std(c))
                    .map(|(a, b)| a + sign * b)
                    .collect();
                v.push(Series::new("", &c.steps, &band, col, Mark::Dashed));
            }
        }
        v
    };
    let sub = match m {
        Some(m) => format!(
            "η = {}, δ = {}, start loss ≤ {:.0e}, {} seeds",
            s.eta,
            m.label_noise,
            m.start_loss_max,
            s.seeds.len()
        ),
        None => String::new(),
    };
    let k = s.flatness_top;
    line_plot(
        &out.join(MANIFOLD_FIGURES[0]),
        &LinePlot {
            title: format!("F on the solution manifold (MSE, M = {}): {sub}", s.n_train),
            x_label: "updates after the common start".into(),
            y_label: format!("flatness F = Π_(i≤{k}) Ĥ_ii^(−1/{})", 2 * k),
            series: series(&|c| &c.flatness_mean, &|c| &c.flatness_std),
            legend_left: true,
            ..Default::default()
        },
    )?;
    line_plot(
        &out.join(MANIFOLD_FIGURES[1]),
        &LinePlot {
            title: format!("tr H on the solution manifold (Hutchinson): {sub}"),
            x_label: "updates after the common start".into(),
            y_label: "tr H".into(),
            series: series(&|c| &c.trace_h_mean, &|c| &c.trace_h_std),
            ..Default::default()
        },
    )?;
    write_feedback_figure(out, result)
}

/// Directions shown in Fig. 1(b) (the paper shows the top 2000).
pub const FIG1B_DIRECTIONS: usize = 2000;
/// Lower end of the y-axis of Fig. 1(b), relative to its largest value.
const FIG1B_DECADES: f64 = 1e-12;

/// Palette index of an optimiser (the paper's colours: GD red, SGD blue, GLD green).
fn optimiser_color(o: Optimiser) -> usize {
    match o {
        Optimiser::Gd => 1,
        Optimiser::Sgd => 0,
        Optimiser::Gld => 2,
    }
}

/// Palette index of the k-th batch size of Fig. 3(b) (the paper: red, blue, green).
fn batch_color(k: usize) -> usize {
    [1, 0, 2, 3, 4, 5, 6][k % 7]
}

/// Write fig1a_…, fig1b_… (when the Hessian was formed), fig2b_…, fig3b_… into `out`.
pub fn write_figures(out: &Path, result: &NetworkResult) -> Result<(), WriteError> {
    let s = &result.summary;
    if !result.manifold_curves.is_empty() {
        return write_manifold_figures(out, result);
    }
    if !result.eigenvalues.is_empty() {
        let ranks: Vec<f64> = (1..=result.eigenvalues.len()).map(|r| r as f64).collect();
        let mut plot = LinePlot {
            title: format!(
                "Fig. 1(a): Hessian eigenvalues of the trained MLP ({} parameters)",
                s.n_params
            ),
            x_label: "rank i".into(),
            y_label: "eigenvalue Ĥ_ii".into(),
            series: vec![Series::new(
                "Ĥ_ii (SGD, η = ".to_string() + &format!("{}, B = {})", s.eta, s.batch),
                &ranks,
                &result.eigenvalues,
                0,
                Mark::Line,
            )],
            log_x: true,
            ..Default::default()
        };
        if let Some(h) = &s.hessian {
            plot.ref_lines.push(RefLine {
                label: format!(
                    "{} % of λ_max: {:.1} % of eigenvalues below",
                    h.bulk_threshold * 100.0,
                    h.fraction_below_threshold * 100.0
                ),
                at: h.bulk_threshold * h.lambda_max,
                vertical: false,
            });
        }
        line_plot(&out.join("fig1a_hessian_spectrum"), &plot)?;

        // The directions with a positive eigenvalue, at most FIG1B_DIRECTIONS. The y-axis shows
        // log10 of the values on a linear scale (the shared log-axis ticks print as
        // 0.0999999…); Ĉ_ii below FIG1B_DECADES of the largest value are left out.
        let n = result
            .eigenvalues
            .iter()
            .take_while(|&&v| v > 0.0)
            .count()
            .min(FIG1B_DIRECTIONS);
        let top = result.eigenvalues[0].max(result.c_hat_diag.first().copied().unwrap_or(0.0));
        let log10 = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .map(|&x| {
                    if x > top * FIG1B_DECADES {
                        x.log10()
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        };
        let mut title = format!("Fig. 1(b): diagonals of Ĥ and Ĉ, top {n} directions");
        if let Some(h) = &s.hessian
            && let Some(r) = h.spearman
        {
            title += &format!(" (Spearman top {}: {r:.2})", h.spearman_top);
        }
        let plot = LinePlot {
            title,
            x_label: "rank i (eigenbasis of H)".into(),
            y_label: "log10 Ĥ_ii,  log10 Ĉ_ii".into(),
            series: vec![
                Series::new(
                    "Ĥ_ii",
                    &ranks[..n],
                    &log10(&result.eigenvalues[..n]),
                    0,
                    Mark::Line,
                ),
                Series::new(
                    format!("Ĉ_ii (B = {})", s.batch),
                    &ranks[..n],
                    &log10(&result.c_hat_diag[..n]),
                    1,
                    Mark::Points,
                ),
            ],
            log_x: true,
            ..Default::default()
        };
        line_plot(&out.join("fig1b_hessian_noise_diag"), &plot)?;
        write_layer_figures(out, result)?;
    }
    let curves = |list: &[FlatnessCurve], color: &dyn Fn(usize, &FlatnessCurve) -> usize| {
        let mut series = Vec::new();
        for (k, c) in list.iter().enumerate() {
            let col = color(k, c);
            let pts = |f: &dyn Fn(f64, f64) -> f64| -> Vec<(f64, f64)> {
                c.epochs
                    .iter()
                    .zip(c.mean.iter().zip(&c.std))
                    .filter_map(|(&e, (m, s))| Some((e, f((*m)?, s.unwrap_or(0.0)))))
                    .collect()
            };
            series.push(Series {
                label: format!("{} (mean of {})", c.label(), c.per_seed.len()),
                points: pts(&|m, _| m),
                color: col,
                mark: Mark::Line,
            });
            if c.per_seed.len() > 1 {
                for sign in [-1.0, 1.0] {
                    series.push(Series {
                        label: String::new(),
                        points: pts(&|m, s| m + sign * s),
                        color: col,
                        mark: Mark::Dashed,
                    });
                }
            }
        }
        series
    };
    let k = s.flatness_top;
    let y_label = format!("flatness F = Π_(i≤{k}) Ĥ_ii^(−1/{})", 2 * k);
    let plot = LinePlot {
        title: format!(
            "Fig. 2(b): flatness during training, η = {} (mean ± s.d. over seeds)",
            s.eta
        ),
        x_label: format!("epoch ({} updates each)", s.n_train.div_ceil(s.batch)),
        y_label: y_label.clone(),
        series: curves(&result.optimiser_curves, &|_, c| {
            optimiser_color(c.optimiser)
        }),
        ..Default::default()
    };
    line_plot(&out.join("fig2b_flatness_optimisers"), &plot)?;
    let plot = LinePlot {
        title: format!(
            "Fig. 3(b): SGD flatness for several batch sizes, η = {} (mean ± s.d.)",
            s.eta
        ),
        x_label: "epoch".into(),
        y_label,
        series: curves(&result.batch_curves, &|k, _| batch_color(k)),
        ..Default::default()
    };
    line_plot(&out.join("fig3b_flatness_batch_size"), &plot)
}

/// Write the data behind the figures: `network_spectrum.csv` (rank, eigenvalue, diag Ĉ) and
/// `network_flatness.csv` (epoch, then mean and s.d. of F for every distinct curve of Figs. 2b
/// and 3b).
///
/// Manifold protocol: `network_flatness.csv` has the update count, then per continuation the
/// mean and s.d. of F and of tr H and the mean loss; `network_comparisons.csv` one row per
/// paired comparison (name, mean, ci_low, ci_high, seeds_holding, seeds).
pub fn write_tables(out: &Path, result: &NetworkResult) -> Result<(), WriteError> {
    if !result.manifold_curves.is_empty() {
        let curves = &result.manifold_curves;
        let steps = curves
            .iter()
            .map(|c| &c.steps)
            .max_by_key(|e| e.len())
            .cloned()
            .unwrap_or_default();
        let mut header = vec!["step".to_string()];
        let mut columns: Vec<Vec<f64>> = vec![steps.clone()];
        let pad = |v: &[f64]| -> Vec<f64> {
            (0..steps.len())
                .map(|k| v.get(k).copied().unwrap_or(f64::NAN))
                .collect()
        };
        for c in curves {
            let name = c.kind.name();
            for (suffix, v) in [
                ("flatness_mean", &c.flatness_mean),
                ("flatness_std", &c.flatness_std),
                ("trace_h_mean", &c.trace_h_mean),
                ("trace_h_std", &c.trace_h_std),
                ("loss_mean", &c.loss_mean),
            ] {
                header.push(format!("{name}_{suffix}"));
                columns.push(pad(v));
            }
        }
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let columns: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        write_csv(&out.join("network_flatness.csv"), &header, &columns)?;
        if let Comparisons::Manifold(list) = &result.summary.comparisons {
            write_rows(&out.join("network_comparisons.csv"), list)?;
        }
        return Ok(());
    }
    if !result.eigenvalues.is_empty() {
        let ranks: Vec<f64> = (1..=result.eigenvalues.len()).map(|r| r as f64).collect();
        write_csv(
            &out.join("network_spectrum.csv"),
            &["rank", "hessian_eigenvalue", "c_hat_diag"],
            &[&ranks, &result.eigenvalues, &result.c_hat_diag],
        )?;
    }
    // SGD at `batch` is both a Fig. 2b and a Fig. 3b curve (the same runs): one column each.
    let mut seen = BTreeSet::new();
    let curves: Vec<&FlatnessCurve> = result
        .optimiser_curves
        .iter()
        .chain(&result.batch_curves)
        .filter(|c| seen.insert((c.optimiser, c.batch)))
        .collect();
    let epochs = curves
        .iter()
        .map(|c| &c.epochs)
        .max_by_key(|e| e.len())
        .cloned()
        .unwrap_or_default();
    let mut header = vec!["epoch".to_string()];
    let mut columns: Vec<Vec<f64>> = vec![epochs.clone()];
    for c in &curves {
        let name = format!("{}_b{}", c.optimiser.name(), c.batch);
        let column = |v: &[Option<f64>]| -> Vec<f64> {
            (0..epochs.len())
                .map(|k| v.get(k).copied().flatten().unwrap_or(f64::NAN))
                .collect()
        };
        header.push(format!("{name}_mean"));
        columns.push(column(&c.mean));
        header.push(format!("{name}_std"));
        columns.push(column(&c.std));
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let columns: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    write_csv(&out.join("network_flatness.csv"), &header, &columns)
}
