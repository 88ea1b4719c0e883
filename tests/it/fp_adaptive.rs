//! The adaptive transient (`[fokker_planck] rtol/atol`, TR-BDF2 with an embedded error estimate):
//! on the Ornstein–Uhlenbeck case its global error follows the tolerance as theory says (∝ rtol^(2/3)
//! for error per step) against a converged reference of the same semi-discrete system, it adds
//! nothing visible to the grid's own error against the exact moments, and it lands snapshots at
//! their exact times.
//!
//! Run with `cargo test --release --test it fp_adaptive:: -- --nocapture` to see the numbers.

use flatscape::config::{AxisConfig, NoProgress};
use flatscape::fp::grid::Grid;
use flatscape::fp::nested::NestedDissection;
use flatscape::fp::operator::assemble;
use flatscape::fp::transient::{AdaptiveTrBdf2, Tolerance, TrBdf2};
use flatscape::fp::{self, CrossDiffusionScheme, FokkerPlanckConfig, FpPlan, InitialConfig};
use flatscape::fp::{initial_density, moments};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;

/// OU: L = ½(x² + 2y²) (A = diag(1, 2)) with a full constant D.
fn ou() -> (Valley2d, Noise) {
    (
        Valley2d {
            epsilon: 0.5,
            lambda: vec![2.0],
        },
        Noise::Constant {
            d: [[0.05, 0.02], [0.02, 0.04]],
        },
    )
}

const M0: [f64; 2] = [0.5, 0.3];
const S0: [f64; 2] = [0.15, 0.12];

fn grid(n: usize) -> Grid {
    Grid::new(
        &AxisConfig {
            min: -1.5,
            max: 1.5,
            cells: n,
        },
        &AxisConfig {
            min: -1.0,
            max: 1.0,
            cells: n,
        },
    )
}

/// L1 distance of two densities on `g` (the controller's norm, and the comparisons').
fn l1(g: &Grid, a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| (u - v).abs()).sum::<f64>() * g.dx * g.dy
}

/// Fixed-step TR-BDF2 from the initial density to `t_end` in `steps` steps.
fn fixed(n: usize, t_end: f64, steps: usize) -> Vec<f64> {
    let (valley, noise) = ou();
    let g = grid(n);
    let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
    let nd = NestedDissection::new(g.nx, g.ny, None);
    let mut p = initial_density(&g, &InitialConfig::Gaussian { mean: M0, std: S0 });
    let mut st = TrBdf2::new(&a, &nd, t_end / steps as f64).unwrap();
    (0..steps).for_each(|_| st.step(&mut p));
    p
}

#[test]
fn adaptive_transient_meets_its_tolerance_with_few_factorisations() {
    let (n, t_end) = (48, 4.0);
    let (valley, noise) = ou();
    let g = grid(n);
    let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
    let nd = NestedDissection::new(g.nx, g.ny, None);
    // Reference: fixed steps of t_end/4096 (time error ≈ 1e-9 in L1).
    let reference = fixed(n, t_end, 4096);
    let mut rows = Vec::new();
    for &rtol in &[1e-2, 1e-3, 1e-4, 1e-5] {
        let tol = Tolerance {
            rtol,
            atol: rtol * 1e-3,
        };
        let mut p = initial_density(&g, &InitialConfig::Gaussian { mean: M0, std: S0 });
        let mut st = AdaptiveTrBdf2::new(&a, &nd, tol);
        let stats = st
            .integrate(
                &mut p,
                (0.0, t_end),
                1e-3,
                &[],
                &mut |_, _| true,
                &mut |_, _| true,
            )
            .unwrap();
        let err = l1(&g, &p, &reference);
        // The fixed step count (a power of 2) that reaches the same L1 error.
        let mut steps = 1usize;
        while l1(&g, &fixed(n, t_end, steps), &reference) > err {
            steps *= 2;
        }
        rows.push((rtol, err, stats, steps));
    }
    for (rtol, err, s, steps) in &rows {
        eprintln!(
            "rtol {rtol:e}: L1 error {err:.2e}, {} steps + {} rejected, {} LU, dt {:.2e}..{:.2e}; fixed steps for the same error: {steps}",
            s.accepted, s.rejected, s.factorizations, s.dt_min, s.dt_max
        );
    }
    for (rtol, err, s, _) in &rows {
        // Error per step (solve_ivp's meaning) leaves the global error a small multiple of rtol.
        assert!(*err <= 5.0 * rtol, "rtol {rtol}: L1 error {err}");
        // Step-size ladder: a handful of factorisations, not one per step.
        assert!(s.factorizations <= 16, "rtol {rtol}: {s:?}");
    }
    // Error per step with a second-order method: global error ∝ rtol^(2/3).
    let p = (rows[0].1 / rows[3].1).log10() / 3.0;
    eprintln!("error ∝ rtol^{p:.2}");
    assert!((0.55..0.8).contains(&p), "error ∝ rtol^{p}, expected 2/3");
}

#[test]
fn snapshots_land_on_their_times_and_moments_match_the_exact_ou() {
    let (valley, noise) = ou();
    let n = 64;
    let mut cfg = FokkerPlanckConfig::steady(
        AxisConfig {
            min: -1.5,
            max: 1.5,
            cells: n,
        },
        AxisConfig {
            min: -1.0,
            max: 1.0,
            cells: n,
        },
    );
    cfg.steady = false;
    cfg.t_end = 1.0;
    cfg.dt = 1e-3;
    cfg.start_steps = 0;
    cfg.initial = Some(InitialConfig::Gaussian { mean: M0, std: S0 });
    cfg.snapshots = vec![0.0, 0.3, 0.7, 1.0];
    let rtol = 1e-4;
    cfg.rtol = Some(rtol);
    cfg.atol = Some(1e-9);
    let plan = FpPlan::new(valley.clone(), noise.clone(), cfg).unwrap();
    let sol = fp::solve(&plan, &NoProgress).unwrap();
    let times: Vec<f64> = sol.snapshots.iter().map(|s| s.0).collect();
    assert_eq!(times, [0.0, 0.3, 0.7, 1.0]);
    let s = &sol.summary;
    eprintln!(
        "{n}², rtol {rtol:e}: {:?} steps, {:?} rejected, {:?} LU, mass drift {:?}",
        s.transient_steps,
        s.transient_rejected_steps,
        s.transient_factorizations,
        s.transient_mass_drift
    );
    assert!(s.transient_mass_drift.unwrap() < 1e-12);
    let g = &sol.grid;
    // Exact OU moments (A = diag(1, 2)): Σ(t) = e^{−At}(Σ0 − Σ∞)e^{−At} + Σ∞, mean e^{−At} m0.
    let d = [[0.05, 0.02], [0.02, 0.04]];
    let a = [1.0, 2.0];
    let exact_error = |t: f64, p: &[f64]| {
        let m = moments(g, &valley, p, t);
        let e = [(-a[0] * t).exp(), (-a[1] * t).exp()];
        let inf = |i: usize, j: usize| 2.0 * d[i][j] / (a[i] + a[j]);
        let var_x = e[0] * e[0] * (S0[0] * S0[0] - inf(0, 0)) + inf(0, 0);
        let var_y = e[1] * e[1] * (S0[1] * S0[1] - inf(1, 1)) + inf(1, 1);
        let cov_xy = e[0] * e[1] * (0.0 - inf(0, 1)) + inf(0, 1);
        (m.mean_x - e[0] * M0[0])
            .abs()
            .max((m.mean_y - e[1] * M0[1]).abs())
            .max((m.var_x - var_x).abs())
            .max((m.var_y - var_y).abs())
            .max((m.cov_xy - cov_xy).abs())
    };
    for (t, p) in &sol.snapshots[1..] {
        // The same grid stepped with fixed steps of 1/512: its error is the grid's own.
        let reference = fixed(n, *t, (t * 512.0).round() as usize);
        let time_error = l1(g, p, &reference);
        let (adaptive, grid_only) = (exact_error(*t, p), exact_error(*t, &reference));
        eprintln!(
            "t = {t}: L1 to the fine-step reference {time_error:.2e}; moment error vs exact OU {adaptive:.3e} (fine steps: {grid_only:.3e})"
        );
        // Interpolated snapshots (t = 0.3, 0.7) and the landed end (t = 1): global error within
        // the small multiple of rtol that error-per-step control gives (see the test above).
        assert!(time_error <= 5.0 * rtol, "t = {t}: L1 {time_error:e}");
        // Time stepping adds nothing visible to the grid's own moment error.
        assert!(
            (adaptive - grid_only).abs() <= 0.05 * grid_only,
            "t = {t}: {adaptive:e} vs {grid_only:e}"
        );
    }
}

#[test]
fn tolerances_are_validated() {
    let (valley, noise) = ou();
    let mut cfg = FokkerPlanckConfig::steady(
        AxisConfig {
            min: -1.5,
            max: 1.5,
            cells: 16,
        },
        AxisConfig {
            min: -1.0,
            max: 1.0,
            cells: 16,
        },
    );
    cfg.t_end = 1.0;
    cfg.initial = Some(InitialConfig::Gaussian { mean: M0, std: S0 });
    for (rtol, atol, key) in [
        (Some(0.0), None, "rtol"),
        (Some(2.0), None, "rtol"),
        (None, Some(-1.0), "atol"),
        (None, Some(f64::NAN), "atol"),
    ] {
        cfg.rtol = rtol;
        cfg.atol = atol;
        let err = FpPlan::new(valley.clone(), noise.clone(), cfg.clone()).unwrap_err();
        assert!(
            err.to_string().contains(&format!("fokker_planck.{key}")),
            "{err}"
        );
    }
}

/// Cubic Hermite interpolant of (p0, f0) at t and (p1, f1) at t + h, at t + u·h (the dense
/// output of the adaptive stepper, used here for the fixed steps and the reference as well).
fn hermite(p0: &[f64], f0: &[f64], p1: &[f64], f1: &[f64], h: f64, u: f64) -> Vec<f64> {
    let [h00, h10, h01, h11] = flatscape::fp::transient::hermite_weights(u);
    (0..p0.len())
        .map(|k| h00 * p0[k] + h10 * h * f0[k] + h01 * p1[k] + h11 * h * f1[k])
        .collect()
}

/// TR-BDF2 over a piecewise-constant step schedule [(h, count)] with dense output at `checks`
/// (ascending): the densities there and the final one. Dense output is the cubic Hermite
/// interpolant, or with `linear` the straight line between steps (what a plot of the moments
/// rows draws; on coarse fixed steps the Hermite slope term h·A·P of the stiff start overshoots).
fn run_schedule(
    a: &flatscape::fp::operator::Stencil9,
    nd: &NestedDissection,
    mut p: Vec<f64>,
    schedule: &[(f64, usize)],
    checks: &[f64],
    linear: bool,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = p.len();
    let (mut f0, mut f1) = (vec![0.0; n], vec![0.0; n]);
    let mut out = Vec::new();
    let mut next = checks.iter().copied().peekable();
    let mut t = 0.0;
    for &(h, count) in schedule {
        let mut st = TrBdf2::new(a, nd, h).unwrap();
        for _ in 0..count {
            let t1 = t + h;
            // Dense output only where a check time falls (the stepping itself stays as cheap as
            // the fixed-step run of `fp::solve`).
            let wanted = next.peek().is_some_and(|&c| c <= t1 * (1.0 + 1e-12));
            let p0 = wanted.then(|| p.clone());
            if wanted && !linear {
                a.apply(&p, &mut f0);
            }
            st.step(&mut p);
            if let Some(p0) = p0 {
                if !linear {
                    a.apply(&p, &mut f1);
                }
                while let Some(&c) = next.peek() {
                    if c > t1 * (1.0 + 1e-12) {
                        break;
                    }
                    let u = ((c - t) / h).min(1.0);
                    out.push(if linear {
                        p0.iter().zip(&p).map(|(x, y)| x + u * (y - x)).collect()
                    } else {
                        hermite(&p0, &f0, &p, &f1, h, u)
                    });
                    next.next();
                }
            }
            t = t1;
        }
    }
    (out, p)
}

/// The table of docs/reference.md §2.5 and the README: the transient of the shipped
/// anisotropic-valley scenario (ε = 0, Δ = 0.01, κ = 4, t_end = 200) on n² cells (n = 128, or
/// `FLATSCAPE_TABLE_CELLS`), fixed steps against the adaptive controller. Accuracy is measured
/// the way a user sees it, over the whole trajectory: the largest L1 error of the density at
/// 53 check times (8 per decade from t = 0.01, and every 10 up to t_end): the adaptive run
/// through its cubic Hermite dense output, fixed steps through straight lines between steps,
/// against a graded-step reference (m steps per doubling of t, Richardson-extrapolated from
/// m = 64 and 128; the distance of both to it is printed).
/// `cargo test --release --test it fp_adaptive::table -- --ignored --nocapture`
#[test]
#[ignore = "prints a table (about 5 minutes at 128² on 2 loaded cores)"]
fn table_anisotropic_valley_adaptive_vs_fixed() {
    use std::time::Instant;
    let valley = Valley2d {
        epsilon: 0.0,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let noise = Noise::Anisotropic {
        delta: 0.01,
        kappa: 4.0,
    };
    let n: usize = std::env::var("FLATSCAPE_TABLE_CELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let g = Grid::new(
        &AxisConfig {
            min: -1.6,
            max: 1.6,
            cells: n,
        },
        &AxisConfig {
            min: -0.25,
            max: 0.25,
            cells: n,
        },
    );
    let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
    let nd = NestedDissection::new(g.nx, g.ny, None);
    let init = InitialConfig::Gaussian {
        mean: [0.3, 0.1],
        std: [0.1, 0.05],
    };
    let p0 = initial_density(&g, &init);
    let t_end = 200.0;
    let mut checks: Vec<f64> = (-16..=18).map(|k| 10f64.powf(k as f64 / 8.0)).collect();
    checks.extend((1..=20).map(|k| 10.0 * k as f64));
    checks.sort_by(f64::total_cmp);
    checks.dedup_by(|x, y| (*x - *y).abs() < 1e-9);
    // Reference: steps of 2^k/m on [2^k, 2^(k+1)] (k ≥ −7), 2^−7/m on [0, 2^−7].
    let graded = |m: usize| {
        let mut s = vec![(2f64.powi(-7) / m as f64, m)];
        let mut t = 2f64.powi(-7);
        while t < t_end {
            let len = t.min(t_end - t);
            let count = ((len / t) * m as f64).round() as usize;
            s.push((len / count as f64, count));
            t += len;
        }
        s
    };
    let (fine, fine_end) = run_schedule(&a, &nd, p0.clone(), &graded(128), &checks, false);
    let (coarse, coarse_end) = run_schedule(&a, &nd, p0.clone(), &graded(64), &checks, false);
    // Richardson extrapolation of the second-order pair: (4·fine − coarse)/3.
    let richardson = |f: &[f64], c: &[f64]| -> Vec<f64> {
        f.iter().zip(c).map(|(f, c)| (4.0 * f - c) / 3.0).collect()
    };
    let reference: Vec<Vec<f64>> = fine
        .iter()
        .zip(&coarse)
        .map(|(f, c)| richardson(f, c))
        .collect();
    let ref_end = richardson(&fine_end, &coarse_end);
    let worst = |got: &[Vec<f64>]| {
        got.iter()
            .zip(&reference)
            .map(|(u, v)| l1(&g, u, v))
            .fold(0.0, f64::max)
    };
    eprintln!(
        "{n}² cells, {} check times; m = 128 differs from the extrapolated reference by {:.1e} (m = 64: {:.1e})",
        checks.len(),
        worst(&fine),
        worst(&coarse)
    );
    eprintln!(
        "| method | steps (+ rejected) | LU | wall | L1 error at t_end | max L1 error over t |"
    );
    eprintln!("|---|---|---|---|---|---|");
    for rtol in [1e-3, 1e-4, 1e-5] {
        let tol = Tolerance {
            rtol,
            atol: rtol * 1e-3,
        };
        let mut p = p0.clone();
        let mut got = Vec::new();
        let clock = Instant::now();
        let mut st = AdaptiveTrBdf2::new(&a, &nd, tol);
        let s = st
            .integrate(
                &mut p,
                (0.0, t_end),
                1e-3,
                &checks,
                &mut |_, _| true,
                &mut |_, q| {
                    got.push(q.to_vec());
                    true
                },
            )
            .unwrap();
        let wall = clock.elapsed().as_secs_f64();
        assert_eq!(got.len(), checks.len());
        eprintln!(
            "| rtol = {rtol:e} | {} (+{}) | {} | {wall:.2} s | {:.1e} | {:.1e} |",
            s.accepted,
            s.rejected,
            s.factorizations,
            l1(&g, &p, &ref_end),
            worst(&got)
        );
    }
    // Fixed steps (`FLATSCAPE_TABLE_DTS`, comma-separated, to go finer).
    let dts: Vec<f64> = std::env::var("FLATSCAPE_TABLE_DTS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![8.0, 2.0, 0.5, 0.125]);
    for dt in dts {
        let steps = (t_end / dt).round() as usize;
        let clock = Instant::now();
        let (got, end) = run_schedule(&a, &nd, p0.clone(), &[(dt, steps)], &checks, true);
        let wall = clock.elapsed().as_secs_f64();
        eprintln!(
            "| fixed dt = {dt} | {steps} | 1 | {wall:.2} s | {:.1e} | {:.1e} |",
            l1(&g, &end, &ref_end),
            worst(&got)
        );
    }
}
