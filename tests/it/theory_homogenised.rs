//! The homogenised reduction against the converged Fokker–Planck x-marginal on one flat well of
//! the paper's valley (λ = [8, −2, 1], Hessian noise γ = 2), with the grid study printed.
//!
//! Run with `cargo test --release --test it theory_homogenised:: -- --nocapture` to see the tables.

use flatscape::config::{AxisConfig, NoProgress};
use flatscape::fp::{self, FokkerPlanckConfig, FpPlan};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::theory::{self, homogenised as hom, quad};

/// Finest FP grid: x-cells at Δ_S = 0.002 (scaled by √(0.002/Δ_S): at fixed y the x-flow is
/// drift-dominated with a cell Péclet number ∝ Δ_S^(−1/2) per well width) and y-cells.
const NX_AT_0_002: f64 = 800.0;
const NY: usize = 128;
/// The x-window around the well, in standard deviations left and right of the mean (the well
/// is skewed to the left).
const WINDOW_SD: (f64, f64) = (8.0, 7.0);
/// Half-width of the y-window in standard deviations √(Δ_S λ) of y at the window's left end.
const Y_WINDOW_SD: f64 = 7.5;

fn setup(epsilon: f64, delta_s: f64) -> (Valley2d, Noise) {
    (
        Valley2d {
            epsilon,
            lambda: vec![8.0, -2.0, 1.0],
        },
        Noise::Hessian {
            eta: 0.01,
            sigma: delta_s / 0.01,
            power: 2.0,
        },
    )
}

/// Average groups of `k` neighbouring cells: a marginal on k·n cells onto the n cells of the
/// same window.
fn restrict(p: &[f64], k: usize) -> Vec<f64> {
    p.chunks_exact(k)
        .map(|c| c.iter().sum::<f64>() / k as f64)
        .collect()
}

/// The FP x-marginal extrapolated to zero cell size in x and in y separately (Richardson with
/// each observed order), on the cell centres of the coarsest x-level.
struct Converged {
    xs: Vec<f64>,
    dx: f64,
    p: Vec<f64>,
    order_x: f64,
    order_y: f64,
}

fn fp_marginal(
    valley: &Valley2d,
    noise: &Noise,
    x: (f64, f64),
    y_half: f64,
    nx: usize,
    ny: usize,
) -> (Vec<f64>, fp::grid::Grid) {
    let cfg = FokkerPlanckConfig::steady(
        AxisConfig {
            min: x.0,
            max: x.1,
            cells: nx,
        },
        AxisConfig {
            min: -y_half,
            max: y_half,
            cells: ny,
        },
    );
    let plan = FpPlan::new(valley.clone(), noise.clone(), cfg).unwrap();
    let res = fp::solve(&plan, &NoProgress).unwrap();
    (res.grid.marginal_x(&res.density), res.grid)
}

fn converged_fp(
    valley: &Valley2d,
    noise: &Noise,
    x: (f64, f64),
    y_half: f64,
    nx: usize,
) -> Converged {
    let n4 = nx / 4;
    let run = |nx, ny| fp_marginal(valley, noise, x, y_half, nx, ny);
    let (p_y0, _) = run(n4, NY / 4);
    let (p_y1, _) = run(n4, NY / 2);
    let (p_c, coarse) = run(n4, NY);
    let (p_x1, _) = run(2 * n4, NY);
    let (p_x2, _) = run(4 * n4, NY);
    let dx = coarse.dx;
    let xs = coarse.xs();
    let (p_x1, p_x2) = (restrict(&p_x1, 2), restrict(&p_x2, 4));
    let l1 = |a: &[f64], b: &[f64]| flatscape::study::l1_distance(a, b, dx);
    let (dx01, dx12) = (l1(&p_c, &p_x1), l1(&p_x1, &p_x2));
    let (dy01, dy12) = (l1(&p_y0, &p_y1), l1(&p_y1, &p_c));
    let order_x = (dx01 / dx12).log2();
    let order_y = (dy01 / dy12).log2();
    let show = |name: String, p: &[f64], step: String| {
        let (m, s, g) = hom::abs_x_statistics(&xs, p);
        eprintln!("    FP {name:>11}: mean {m:.5}  sd {s:.6}  skew {g:+.3}  {step}");
    };
    show(
        format!("{n4} x {}", NY / 4),
        &p_y0,
        format!("L1 to next y-level {dy01:.4}"),
    );
    show(
        format!("{n4} x {}", NY / 2),
        &p_y1,
        format!("L1 to next y-level {dy12:.4}"),
    );
    show(
        format!("{n4} x {NY}"),
        &p_c,
        format!("L1 to next x-level {dx01:.4}"),
    );
    show(
        format!("{} x {NY}", 2 * n4),
        &p_x1,
        format!("L1 to next x-level {dx12:.4}"),
    );
    show(format!("{} x {NY}", 4 * n4), &p_x2, String::new());
    let (qx, qy) = (order_x.clamp(0.5, 3.0), order_y.clamp(0.5, 3.0));
    let p: Vec<f64> = (0..xs.len())
        .map(|i| {
            p_x2[i]
                + (p_x2[i] - p_x1[i]) / (2f64.powf(qx) - 1.0)
                + (p_c[i] - p_y1[i]) / (2f64.powf(qy) - 1.0)
        })
        .collect();
    show(
        "extrapolated".to_string(),
        &p,
        format!(
            "observed orders x {order_x:.2}, y {order_y:.2}; L1 to the finest {:.4}",
            l1(&p, &p_x2)
        ),
    );
    Converged {
        xs,
        dx,
        p,
        order_x,
        order_y,
    }
}

/// The measured comparison at one (ε, Δ_S).
struct Comparison {
    l1_homogenised: f64,
    l1_second_order: f64,
    l1_reduced: f64,
    l1_paper: f64,
    sd_ratio: f64,
    fp_orders: (f64, f64),
}

fn compare(epsilon: f64, delta_s: f64) -> Comparison {
    let (valley, noise) = setup(epsilon, delta_s);
    // The window: from the homogenised level's own mean and sd on a fine grid.
    let probe = quad::cell_centres(0.3, 1.4, 8000);
    let s = hom::summarize_homogenised(&valley, &noise, &probe).unwrap();
    let x = (s.mean - WINDOW_SD.0 * s.std, s.mean + WINDOW_SD.1 * s.std);
    let y_half = Y_WINDOW_SD * (delta_s * valley.lambda_at(x.0)).sqrt();
    eprintln!(
        "Δ_S = {delta_s}, ε = {epsilon}: x ∈ [{:.4}, {:.4}], y ∈ ±{y_half:.3}",
        x.0, x.1
    );
    let nx = 4 * (NX_AT_0_002 * (0.002 / delta_s).sqrt() / 4.0).round() as usize;
    let fp = converged_fp(&valley, &noise, x, y_half, nx);
    let (_, sd_fp, _) = hom::abs_x_statistics(&fp.xs, &fp.p);
    let l1 = |p: &[f64]| flatscape::study::l1_distance(&fp.p, p, fp.dx);
    let p_h = hom::marginal_x_homogenised(&valley, &noise, &fp.xs).unwrap();
    let p_2 = hom::marginal_x_homogenised_second_order(&valley, &noise, &fp.xs).unwrap();
    let p_r = theory::marginal_x_reduced(&valley, &noise, &fp.xs, (-y_half, y_half));
    let p_p = theory::marginal_x_paper(&valley, &noise, &fp.xs).unwrap();
    let mut rows = Vec::new();
    for (name, p) in [
        ("homogenised", &p_h),
        ("second order (A, B)", &p_2),
        ("reduced", &p_r),
        ("paper (Eq. 13)", &p_p),
    ] {
        let (m, sd, g) = hom::abs_x_statistics(&fp.xs, p);
        eprintln!(
            "    {name:20} L1 {:.4}  mean {m:.5}  sd {sd:.5} ({:+.2} %)  skew {g:+.3}",
            l1(p),
            100.0 * (sd / sd_fp - 1.0)
        );
        rows.push((l1(p), sd / sd_fp));
    }
    Comparison {
        l1_homogenised: rows[0].0,
        l1_second_order: rows[1].0,
        l1_reduced: rows[2].0,
        l1_paper: rows[3].0,
        sd_ratio: rows[0].1,
        fp_orders: (fp.order_x, fp.order_y),
    }
}

#[test]
fn homogenised_marginal_matches_the_converged_fp_on_one_well() {
    for delta_s in [0.001, 0.002, 0.004] {
        let c = compare(0.001, delta_s);
        assert!(
            c.fp_orders.0 > 0.7 && c.fp_orders.1 > 0.7,
            "FP grid study: observed orders {:?} (not in the asymptotic range)",
            c.fp_orders
        );
        assert!(
            c.l1_homogenised < 0.05,
            "Δ_S = {delta_s}: L1(FP, homogenised) = {}",
            c.l1_homogenised
        );
        assert!(
            (c.sd_ratio - 1.0).abs() < 0.05,
            "Δ_S = {delta_s}: sd ratio {}",
            c.sd_ratio
        );
        // The leading-order levels, measured on the same grid: far off at every Δ_S.
        assert!(
            c.l1_paper > 0.15 && c.l1_reduced > 0.15,
            "paper {} reduced {}",
            c.l1_paper,
            c.l1_reduced
        );
    }
}

#[test]
fn homogenised_error_shrinks_as_delta_s_goes_to_zero_at_fixed_ratio() {
    let deltas = [0.002, 0.001, 0.0005, 0.00025];
    let cs: Vec<Comparison> = deltas.iter().map(|&d| compare(0.5 * d, d)).collect();
    let rate = |f: &dyn Fn(&Comparison) -> f64| {
        // Least-squares slope of ln L1 against ln Δ_S.
        let pts: Vec<(f64, f64)> = deltas
            .iter()
            .zip(&cs)
            .map(|(d, c)| (d.ln(), f(c).ln()))
            .collect();
        let n = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>()
    };
    let r_h = rate(&|c| c.l1_homogenised);
    let r_2 = rate(&|c| c.l1_second_order);
    let r_p = rate(&|c| c.l1_paper);
    eprintln!("ε/Δ_S = 0.5, Δ_S = {deltas:?}");
    eprintln!(
        "  L1 homogenised {:?}: observed rate Δ_S^{r_h:.2}",
        cs.iter().map(|c| c.l1_homogenised).collect::<Vec<_>>()
    );
    eprintln!(
        "  L1 second order {:?}: observed rate Δ_S^{r_2:.2}",
        cs.iter().map(|c| c.l1_second_order).collect::<Vec<_>>()
    );
    eprintln!(
        "  L1 paper {:?}: observed rate Δ_S^{r_p:.2}",
        cs.iter().map(|c| c.l1_paper).collect::<Vec<_>>()
    );
    for w in cs.windows(2) {
        assert!(
            w[1].l1_homogenised < w[0].l1_homogenised,
            "L1 does not shrink with Δ_S"
        );
    }
    assert!(r_h > 0.5, "observed rate {r_h}");
}

#[test]
fn theory_level_key_is_parsed_and_validated() {
    use flatscape::scenario::Scenario;
    use flatscape::theory::TheoryLevel;
    use std::path::Path;
    let load = |noise: &str, theory: &str| {
        let src = format!(
            "name = \"t\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]\n[noise]\n{noise}\n[theory]\n{theory}"
        );
        Scenario::from_toml_str(&src, Path::new("t.toml"))
    };
    let hessian = "kind = \"hessian\"\neta = 0.01\nsigma = 0.2";
    let constant = "kind = \"anisotropic\"\ndelta = 0.01\nkappa = 5.0";
    let level = |sc: Scenario| sc.theory().unwrap().config().level;
    assert_eq!(level(load(hessian, "").unwrap()), TheoryLevel::All);
    for (text, want) in [
        ("paper", TheoryLevel::Paper),
        ("reduced", TheoryLevel::Reduced),
        ("homogenised", TheoryLevel::Homogenised),
        ("all", TheoryLevel::All),
    ] {
        let sc = load(hessian, &format!("level = \"{text}\"\n")).unwrap();
        assert_eq!(level(sc), want);
    }
    assert!(load(hessian, "level = \"exact\"\n").is_err());
    let err = load(constant, "level = \"homogenised\"\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("theory.level"), "{err}");
    // "all" skips the homogenised level where it does not apply.
    let err = load(constant, "discrete_time = true\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("theory.discrete_time"), "{err}");
    let sc = load(constant, "").unwrap();
    let cfg = sc.theory().unwrap().config();
    assert!(cfg.computes(TheoryLevel::Homogenised) && cfg.computes(TheoryLevel::Paper));
    let xs = quad::cell_centres(-1.6, 1.6, 101);
    assert!(hom::marginal_x_homogenised(sc.valley2d().unwrap(), sc.noise(), &xs).is_none());
    let sol = flatscape::theory::solve(sc.theory().unwrap(), None);
    assert!(sol.marginal_homogenised.is_none() && sol.summary.homogenised.is_none());
    // With Hessian noise `theory::solve` gives the level's marginal, L_eff and summary.
    let sc = load(hessian, "x_cells = 401\n").unwrap();
    let sol = flatscape::theory::solve(sc.theory().unwrap(), None);
    let s = sol.summary.homogenised.unwrap();
    assert!(
        (s.mean - 0.8488).abs() < 2e-3 && sol.l_eff_homogenised.is_some(),
        "{s:?}"
    );
    let json = serde_json::to_value(&sol.summary).unwrap();
    for k in ["mean", "std", "skewness", "x_ss"] {
        assert!(json["homogenised"][k].is_number(), "{k}");
    }
}

/// On the whole valley (both wells, x = 0 in between) the homogenised level is symmetric, its
/// x_ss is the root of A near the FP's mean, and L_eff is ∝ −Δ_S ln p with minimum 0.
#[test]
fn homogenised_summary_and_effective_loss_on_the_whole_valley() {
    let (valley, noise) = setup(0.001, 0.002);
    let xs = quad::cell_centres(-1.6, 1.6, 1601);
    let p = hom::marginal_x_homogenised(&valley, &noise, &xs).unwrap();
    let n = xs.len();
    for i in 0..n / 2 {
        assert!(
            (p[i] - p[n - 1 - i]).abs() < 1e-9 * p[i].max(1.0),
            "not even at {}",
            xs[i]
        );
    }
    let s = hom::summarize_homogenised(&valley, &noise, &xs).unwrap();
    eprintln!("whole valley, Δ_S = 0.002: {s:?}");
    // FP on one well (extrapolated, above): mean 0.84878, sd 0.01789, skewness −0.380.
    assert!((s.mean - 0.8488).abs() < 5e-4, "{s:?}");
    assert!((s.std / 0.01789 - 1.0).abs() < 0.05, "{s:?}");
    assert!((s.skewness + 0.38).abs() < 0.05, "{s:?}");
    assert!((s.x_ss - s.mean).abs() < 0.005, "{s:?}");
    let l_eff = hom::l_eff_homogenised(&valley, &noise, &xs).unwrap();
    let min = l_eff.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(min.abs() < 1e-15);
    let dx = quad::uniform_spacing(&xs);
    let z: f64 = l_eff.iter().map(|l| (-l / 0.002).exp()).sum::<f64>() * dx;
    for (l, pi) in l_eff.iter().zip(&p) {
        assert!(((-l / 0.002).exp() / z - pi).abs() < 1e-9 * pi.max(1.0));
    }
    // Below Δ_S* = 0.0005 there is no flat solution: x_ss = 0.
    let (valley, noise) = setup(0.001, 0.0003);
    assert_eq!(hom::x_ss_homogenised(&valley, &noise, 1.6), 0.0);
}
