//! Figures of a sweep: phase diagrams over (σ, η) (Figs. 3c, 5b, 5d), or F and |x_ss| against
//! Δ_S.

use std::path::Path;

use crate::scenario::{Scenario, SweepConfig};
use crate::study::SweepPoint;

use super::files::WriteError;
use super::phase::{PhaseCell, PhaseDiagram};
use super::plot::{self, LinePlot, Mark, Series};

/// A sweep point counts as diverged (grey) when more than half of its walkers diverged.
const DIVERGED: f64 = 0.5;

/// The stems of a sweep's two figures in a run folder: the flatness figure, then the search
/// time (σ, η grid) or |x_ss| (Δ_S sweep).
pub fn sweep_figure_names(sw: &SweepConfig) -> [&'static str; 2] {
    if sw.sigma.is_some() {
        ["sweep_flatness", "sweep_search_time"]
    } else {
        ["sweep_flatness", "sweep_x_ss"]
    }
}

/// Phase diagrams of a (σ, η) sweep, or F and |x_ss| against Δ_S for a Δ_S sweep, into the two
/// stems `[flatness, search time or |x_ss|]`.
pub fn write_sweep_figures(
    stems: [&Path; 2],
    scenario: &Scenario,
    sw: &SweepConfig,
    rows: &[SweepPoint],
    title_suffix: &str,
) -> Result<(), WriteError> {
    if let (Some(sig), Some(eta)) = (&sw.sigma, &sw.eta) {
        let (sigma, etas) = (sig.values(), eta.values());
        for (stem, mut fig) in stems
            .into_iter()
            .zip(sweep_phase_diagrams(scenario, &sigma, &etas, rows))
        {
            fig.title.push_str(title_suffix);
            plot::render(stem, &fig)?;
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
        stems[0],
        &LinePlot {
            title: format!(
                "Flatness of the steady state against the SGD noise level{title_suffix}"
            ),
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
        stems[1],
        &LinePlot {
            title: format!("Steady-state position along the valley{title_suffix}"),
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

/// The flatness and search-time phase diagrams of a (σ, η) sweep, in that order.
pub fn sweep_phase_diagrams(
    scenario: &Scenario,
    sigma: &[f64],
    etas: &[f64],
    rows: &[SweepPoint],
) -> Vec<PhaseDiagram> {
    let ns = sigma.len();
    let value = |f: &dyn Fn(&SweepPoint) -> Option<f64>| -> Vec<PhaseCell> {
        rows.iter()
            .map(|r| {
                if r.diverged_fraction.is_some_and(|d| d > DIVERGED) {
                    PhaseCell::Diverged
                } else {
                    f(r).map_or(PhaseCell::Missing, PhaseCell::Value)
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
    let predicted = crossing(&|r| r.theory_diverged_fraction, DIVERGED);
    if predicted.len() > 1 {
        lines.push(Series {
            label: "divergence (theory: escape to the unstable region)".into(),
            points: predicted,
            color: 0,
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
    // The inset cuts the diagram at the middle η row (no paper constant in a generic writer).
    let inset_row = etas.len() / 2;
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
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sigma: f64, eta: f64, search_time: Option<f64>, diverged: f64) -> SweepPoint {
        SweepPoint {
            sigma,
            eta,
            delta_s: sigma * eta,
            flatness_ss: Some(1.0),
            x_ss_abs: Some(0.8),
            search_time,
            diverged_fraction: Some(diverged),
            theory_x_ss: None,
            theory_flatness_ss: None,
            theory_eta_lambda: None,
            fp_mean_abs_x: None,
            fp_mode_abs_x: None,
            fp_mean_flatness: None,
            theory_divergence_time: None,
            theory_diverged_fraction: None,
        }
    }

    #[test]
    fn a_missing_value_is_not_painted_as_diverged() {
        let src = "name = \"p\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[theory]\n";
        let sc = Scenario::from_toml_str(src, Path::new("p.toml")).unwrap();
        let rows = vec![
            row(0.1, 0.01, Some(3.0), 0.0),
            row(0.2, 0.01, None, 0.0),
            row(0.1, 0.02, Some(2.0), 0.0),
            row(0.2, 0.02, None, 1.0),
        ];
        let figs = sweep_phase_diagrams(&sc, &[0.1, 0.2], &[0.01, 0.02], &rows);
        let search = &figs[1].values;
        assert_eq!(search[0], PhaseCell::Value(3.0));
        assert_eq!(search[1], PhaseCell::Missing);
        assert_eq!(search[3], PhaseCell::Diverged);
    }
}
