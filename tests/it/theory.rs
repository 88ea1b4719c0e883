//! Physics validations of the theory module (issue 3, "Prove it"), except the comparison with
//! the FP steady state (added by the integrator).

use std::path::Path;

use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::scenario::Scenario;
use flatscape::study::l1_distance;
use flatscape::theory::conditional::STEPS_PER_SIGMA as STEPS;
use flatscape::theory::*;

const UNBOUNDED: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

fn hessian(delta_s: f64) -> Noise {
    Noise::Hessian {
        eta: 0.01,
        sigma: delta_s / 0.01,
        power: 2.0,
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

#[test]
fn kappa_at_zero_from_conditional_moments_equals_closed_form() {
    // At x = 0 with D = Δ_S H², D22(0, y) = Δ_S λ0² does not depend on y, so the exact law of y is
    // N(0, Δ_S λ0) and the closed form is exact (on an unbounded y-domain).
    let cases = [
        (0.001, 0.002, vec![8.0, -2.0, 1.0]),
        (0.01, 0.0005, vec![8.0, -2.0, 1.0]),
        (0.0001, 0.01, vec![3.0, -0.5, 0.2]),
    ];
    for (epsilon, delta_s, lambda) in cases {
        let v = Valley2d { epsilon, lambda };
        let n = hessian(delta_s);
        let closed = kappa_closed_form(&v, delta_s).unwrap();
        let exact = kappa_at(&v, &n, 0.0, YLaw::Exact, UNBOUNDED).unwrap();
        let gaussian = kappa_at(&v, &n, 0.0, YLaw::Gaussian, UNBOUNDED).unwrap();
        assert!(
            rel(exact, closed) < 1e-6,
            "ε={epsilon} Δ_S={delta_s}: {exact} vs {closed}"
        );
        assert!(rel(gaussian, closed) < 1e-6, "{gaussian} vs {closed}");
        let s = summarize(&v, &n, &TheoryConfig::default());
        assert_eq!(s.kappa, Some(closed));
        assert!(rel(s.kappa_conditional.unwrap(), closed) < 1e-6);
    }
}

#[test]
fn kappa_on_a_narrow_y_domain_departs_from_closed_form() {
    // The identity needs the y-domain to hold the whole law: at Δ_S = 0.004, σ_y(0) = 0.179 and a
    // domain of ±0.6 (3.4 σ) cuts ⟨y⁴⟩ and shifts κ by a few per cent.
    let v = Valley2d::paper();
    let n = hessian(0.004);
    let closed = kappa_closed_form(&v, 0.004).unwrap();
    let cut = kappa_at(&v, &n, 0.0, YLaw::Exact, (-0.6, 0.6)).unwrap();
    let wide = kappa_at(&v, &n, 0.0, YLaw::Exact, (-1.2, 1.2)).unwrap();
    assert!(rel(cut, closed) > 1e-2, "{cut} vs {closed}");
    assert!(rel(wide, closed) < 1e-6, "{wide} vs {closed}");
}

#[test]
fn conditional_moments_converge_under_refinement() {
    // Composite Simpson: errors fall by ~2⁴ per halving of the step; at the default
    // 16 steps per σ(x) they are below 1e-7 (measured ~1e-8 at worst).
    let v = Valley2d::paper();
    let n = hessian(0.004);
    for (x, range) in [(0.85, (-0.9, 0.9)), (1.3, UNBOUNDED), (0.4, (-0.2, 0.5))] {
        let m = |s: f64| conditional_moments_with(&v, &n, x, range, YLaw::Exact, s).unwrap();
        let (a, b, c) = (m(STEPS), m(2.0 * STEPS), m(8.0 * STEPS));
        assert!(rel(a.mean_y2, c.mean_y2) < 1e-7, "{a:?} {c:?}");
        assert!(rel(a.mean_d11, c.mean_d11) < 1e-7);
        let (e1, e2) = (
            (a.log_density_at_ref - c.log_density_at_ref).abs(),
            (b.log_density_at_ref - c.log_density_at_ref).abs(),
        );
        assert!(e1 < 1e-7, "x = {x}: {e1:e}");
        assert!(
            e1 > 8.0 * e2 || e1 < 1e-12,
            "x = {x}: not 4th order, {e1:e} → {e2:e}"
        );
    }
}

#[test]
fn isotropic_noise_gives_constant_l_sgd() {
    // κ = 1: L_SGD = Δ(1 − κ) ln F + (κ − 1) L ≡ 0, at every level.
    for epsilon in [0.0, 0.01] {
        let v = Valley2d {
            epsilon,
            lambda: vec![8.0, -2.0, 1.0],
        };
        let xs = quad::cell_centres(-1.5, 1.5, 301);
        for noise in [
            Noise::Isotropic { temperature: 0.05 },
            Noise::Anisotropic {
                delta: 0.05,
                kappa: 1.0,
            },
        ] {
            let prof = valley_profiles(&v, &noise, &xs, UNBOUNDED);
            for (name, curve) in [
                ("paper (Eq. 13)", prof.l_sgd_paper.unwrap()),
                ("small noise (Eq. 14)", prof.l_sgd_small_noise.unwrap()),
                ("reduced", prof.l_sgd_reduced.unwrap()),
            ] {
                let (lo, hi) = curve
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(a, b), &c| (a.min(c), b.max(c)));
                assert!(hi - lo < 1e-9, "{name} ε={epsilon}: spread {}", hi - lo);
            }
        }
    }
}

#[test]
fn constant_anisotropy_without_epsilon_gives_power_law_marginal() {
    // Eq. (11): P(x) ∝ λ(x)^(−κ/2) when ε = 0, at both levels.
    let v = Valley2d {
        epsilon: 0.0,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let kappa = 6.0;
    let noise = Noise::Anisotropic { delta: 0.05, kappa };
    let xs = quad::cell_centres(-1.6, 1.6, 320);
    let dx = xs[1] - xs[0];
    let mut expected: Vec<f64> = xs
        .iter()
        .map(|&x| v.lambda_at(x).powf(-kappa / 2.0))
        .collect();
    let mass: f64 = expected.iter().sum::<f64>() * dx;
    expected.iter_mut().for_each(|p| *p /= mass);
    let paper = marginal_x_paper(&v, &noise, &xs).unwrap();
    let small = marginal_x_paper_small_noise(&v, &noise, &xs).unwrap();
    let reduced = marginal_x_reduced(&v, &noise, &xs, UNBOUNDED);
    for (name, p) in [("paper", paper), ("small", small), ("reduced", reduced)] {
        let worst = p
            .iter()
            .zip(&expected)
            .map(|(a, b)| rel(*a, *b))
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{name}: worst relative error {worst:e}");
    }
}

#[test]
fn constant_noise_eq13_equals_eq14() {
    // With constant κ, Δ (anisotropic noise, ε > 0) Eq. (13) reduces exactly to Eq. (14).
    let v = Valley2d {
        epsilon: 0.02,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let noise = Noise::Anisotropic {
        delta: 0.1,
        kappa: 20.0,
    };
    let xs = quad::cell_centres(-1.6, 1.6, 200);
    let a = marginal_x_paper(&v, &noise, &xs).unwrap();
    let b = marginal_x_paper_small_noise(&v, &noise, &xs).unwrap();
    let dx = xs[1] - xs[0];
    assert!(l1_distance(&a, &b, dx) < 1e-8);
    let prof = valley_profiles(&v, &noise, &xs, UNBOUNDED);
    let (l13, l14) = (prof.l_sgd_paper.unwrap(), prof.l_sgd_small_noise.unwrap());
    let offset = l13[0] - l14[0];
    for (p, q) in l13.iter().zip(&l14) {
        assert!((p - q - offset).abs() < 1e-9, "{p} vs {q}");
    }
}

#[test]
fn reduced_x_ss_bifurcates_at_delta_s_star() {
    // λ1 = −2, ε = 0.001: Δ_S* = 0.0005. x_ss = 0 below, > 0 above, → 0 continuously with
    // x_ss ∝ (Δ_S − Δ_S*)^(1/2) (pitchfork).
    let v = Valley2d::paper();
    let star = delta_s_star(&v).unwrap();
    assert!(rel(star, 0.0005) < 1e-12);
    let x_ss = |f: f64| x_ss_reduced(&v, &hessian(star * f), UNBOUNDED, 1.6);
    for below in [0.5, 0.9, 0.999, 0.9999] {
        assert_eq!(x_ss(below), 0.0, "Δ_S = {below} Δ_S*");
        let fp = fixed_points_reduced(&v, &hessian(star * below), UNBOUNDED, 1.6);
        assert!(fp.len() == 1 && fp[0].stable, "{fp:?}");
    }
    let above: Vec<f64> = [1.0001, 1.001, 1.01, 1.1, 2.0]
        .iter()
        .map(|&f| x_ss(f))
        .collect();
    assert!(above.iter().all(|&x| x > 0.0), "{above:?}");
    assert!(above.windows(2).all(|w| w[0] < w[1]), "{above:?}");
    assert!(above[0] < 0.01, "x_ss just above Δ_S* = {}", above[0]);
    // Square-root law: a 10× larger distance to Δ_S* gives √10× larger x_ss.
    let ratio = above[2] / above[1];
    assert!((ratio / 10f64.sqrt() - 1.0).abs() < 0.05, "ratio {ratio}");
    let fp = fixed_points_reduced(&v, &hessian(star * 2.0), UNBOUNDED, 1.6);
    assert!(!fp[0].stable && fp[1].stable && fp.len() == 2, "{fp:?}");
}

#[test]
fn reduced_x_ss_at_paper_noise_level_is_0847() {
    let v = Valley2d::paper();
    for range in [UNBOUNDED, (-0.9, 0.9)] {
        let x = x_ss_reduced(&v, &hessian(0.002), range, 1.6);
        assert!((x - 0.847).abs() < 0.02, "x_ss = {x}");
        assert!((x - 0.8471).abs() < 1e-3, "x_ss = {x}");
    }
}

#[test]
fn reduced_marginal_is_normalised_and_peaks_at_x_ss() {
    let v = Valley2d::paper();
    let noise = hessian(0.002);
    let xs = quad::cell_centres(-1.6, 1.6, 320);
    let dx = xs[1] - xs[0];
    let p = marginal_x_reduced(&v, &noise, &xs, (-0.9, 0.9));
    assert!((p.iter().sum::<f64>() * dx - 1.0).abs() < 1e-12);
    assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0));
    let mode = xs
        .iter()
        .zip(&p)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0
        .abs();
    assert!((mode - 0.847).abs() < 0.02, "mode {mode}");
    // Symmetric in x.
    for i in 0..xs.len() / 2 {
        assert!(rel(p[i], p[xs.len() - 1 - i]) < 1e-9 || p[i] < 1e-300);
    }
}

#[test]
fn no_noise_gives_point_mass_and_no_paper_marginal() {
    let v = Valley2d::paper();
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.0,
        power: 2.0,
    };
    let xs = quad::cell_centres(-1.0, 1.0, 101);
    let p = marginal_x_reduced(&v, &noise, &xs, UNBOUNDED);
    assert!((p.iter().sum::<f64>() * (xs[1] - xs[0]) - 1.0).abs() < 1e-12);
    assert!(p[50] > 0.0 && p.iter().filter(|&&v| v > 0.0).count() == 1);
    assert!(marginal_x_paper(&v, &noise, &xs).is_none());
    let s = summarize(&v, &noise, &TheoryConfig::default());
    assert_eq!(s.x_ss, 0.0);
    assert!(s.kappa.is_none() && s.delta.is_none());
    assert!(
        s.notes.iter().any(|n| n.contains("no noise")),
        "{:?}",
        s.notes
    );
    serde_json::to_string(&s).unwrap();
}

#[test]
fn lambda1_non_negative_reports_no_delta_s_star() {
    let v = Valley2d {
        epsilon: 0.001,
        lambda: vec![8.0, 2.0, 1.0],
    };
    let s = summarize(&v, &hessian(0.002), &TheoryConfig::default());
    assert!(s.delta_s_star.is_none() && s.delta_s_star_reduced.is_none());
    assert_eq!(s.x_ss, 0.0);
    assert!(
        s.notes.iter().any(|n| n.contains("no transition Δ_S*")),
        "{:?}",
        s.notes
    );
    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert!(json["delta_s_star"].is_null());
    assert!(json["x_ss"].is_number() && json["kappa"].is_number());
}

#[test]
fn summary_serializes_to_json_with_numbers_where_promised() {
    let v = Valley2d::paper();
    let noises = [
        hessian(0.002),
        Noise::Hessian {
            eta: 0.02,
            sigma: 0.05,
            power: 1.5,
        },
        Noise::Hessian {
            eta: 0.01,
            sigma: 0.0,
            power: 2.0,
        },
        Noise::Anisotropic {
            delta: 0.05,
            kappa: 10.0,
        },
        Noise::Isotropic { temperature: 0.01 },
        Noise::Constant {
            d: [[0.001, 0.0005], [0.0005, 0.05]],
        },
    ];
    let always_numbers = [
        "x_ss",
        "flatness_ss",
        "mean_abs_x_reduced",
        "mode_abs_x_reduced",
        "x_max",
    ];
    let options = [
        "kappa",
        "delta",
        "delta_s",
        "delta_s_star",
        "kappa_closed_form",
        "kappa_conditional",
        "delta_s_star_reduced",
        "mean_abs_x_paper",
        "mode_abs_x_paper",
    ];
    for noise in &noises {
        let cfg = TheoryConfig {
            x_cells: Some(201),
            ..TheoryConfig::default()
        };
        let s = summarize(&v, noise, &cfg);
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for k in always_numbers {
            assert!(json[k].is_number(), "{noise:?}: `{k}` = {}", json[k]);
        }
        for k in options {
            assert!(
                json[k].is_number() || json[k].is_null(),
                "{noise:?}: `{k}` = {}",
                json[k]
            );
            if json[k].is_null() && k != "delta_s" && k != "kappa_closed_form" {
                assert!(
                    !s.notes.is_empty(),
                    "{noise:?}: `{k}` is null without a note"
                );
            }
        }
        assert!(json["notes"].is_array() && json["fixed_points"].is_array());
    }
}

#[test]
fn paper_noise_summary_has_paper_numbers() {
    let v = Valley2d::paper();
    let cfg = TheoryConfig {
        y_range: Some([-0.9, 0.9]),
        ..TheoryConfig::default()
    };
    let s = summarize(&v, &hessian(0.002), &cfg);
    assert!(rel(s.kappa.unwrap(), 1.0 / 4.1e-5) < 1e-12);
    assert!(rel(s.delta.unwrap(), 0.002 * 64.0) < 1e-12);
    assert!(rel(s.delta_s_star.unwrap(), 0.0005) < 1e-12);
    assert!((s.x_ss - 0.847).abs() < 0.02);
    assert!((s.mode_abs_x_reduced - s.x_ss).abs() < 0.01);
    let c = s.convergence.unwrap();
    assert!(c.converges && c.eta_lambda_mean_ss < 0.1, "{c:?}");
    assert!((c.lambda_mean_ss_paper - c.lambda_mean_ss_reduced).abs() < 0.05);
}

#[test]
fn l_sgd_flat_matches_hand_computed_value() {
    // λ(x) = [4, 1], λ(0) = [2, 1], Δ_S = 0.1, κ = 3: Δ^(i) = [0.4, 0.1], Δ̄ = 0.25,
    // L = (0.25 − 1.2)(−½ ln 4) + (0.25 − 0.3)(−½ ln 1) = 0.95 ln 2.
    let l = l_sgd_flat(&[4.0, 1.0], &[2.0, 1.0], 0.1, 3.0).unwrap();
    assert!((l - 0.95 * 2f64.ln()).abs() < 1e-14, "{l}");
    assert!(l_sgd_flat(&[4.0], &[2.0, 1.0], 0.1, 3.0).is_none());
    assert!(l_sgd_flat(&[-4.0, 1.0], &[2.0, 1.0], 0.1, 3.0).is_none());
}

#[test]
fn l_sgd_flat_with_one_sharp_direction_is_eq12() {
    // N_S = 1: (Δ̄ − κΔ) ln F = Δ(1 − κ) ln F with Δ = Δ_S λ(0)².
    let (lx, l0, ds, kappa) = (7.0, 8.0, 0.002, 50.0);
    let delta = ds * l0 * l0;
    let expected = delta * (1.0 - kappa) * (1.0 / f64::sqrt(lx)).ln();
    let l = l_sgd_flat(&[lx], &[l0], ds, kappa).unwrap();
    assert!((l - expected).abs() < 1e-14 * expected.abs());
}

#[test]
fn flatness_weighted_matches_hand_computed_value() {
    // γ = [4, 1]/5 = [0.8, 0.2]; F^(i) = [1/2, 1] → F̂ = 0.5^0.8; F = (1/2)^(1/2).
    let f_hat = flatness_weighted(&[4.0, 1.0], &[2.0, 1.0]).unwrap();
    assert!((f_hat - 0.5f64.powf(0.8)).abs() < 1e-14, "{f_hat}");
    let w = noise_weights(&[2.0, 1.0]).unwrap();
    assert!((w[0] - 0.8).abs() < 1e-15 && (w[1] - 0.2).abs() < 1e-15);
    let f = flatness_geometric(&[4.0, 1.0]).unwrap();
    assert!((f - 0.5f64.sqrt()).abs() < 1e-15);
}

#[test]
fn flatness_weighted_equals_geometric_for_equal_noise() {
    let lx = [3.0, 5.5, 0.7, 12.0, 2.2];
    let f_hat = flatness_weighted(&lx, &[4.0; 5]).unwrap();
    let f = flatness_geometric(&lx).unwrap();
    assert!(rel(f_hat, f) < 1e-14);
}

#[test]
fn theory_config_is_validated() {
    let base = "name = \"t\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = LAMBDA\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[theory]\n";
    let load = |lambda: &str, theory: &str| {
        let src = base.replace("LAMBDA", lambda) + theory;
        Scenario::from_toml_str(&src, Path::new("t.toml"))
    };
    assert!(load("[8.0, -2.0, 1.0]", "").is_ok());
    assert!(
        load(
            "[8.0, -2.0, 1.0]",
            "x_max = 1.2\ny_range = [-0.5, 0.5]\nx_cells = 101\n"
        )
        .is_ok()
    );
    for (theory, key) in [
        ("x_max = -1.0\n", "theory.x_max"),
        ("y_range = [0.5, 0.7]\n", "theory.y_range"),
        ("x_cells = 1\n", "theory.x_cells"),
    ] {
        let err = load("[8.0, -2.0, 1.0]", theory).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
    }
    assert!(load("[8.0, -2.0, 1.0]", "bogus = 1\n").is_err());
    // λ(x) = 1 − x² vanishes at |x| = 1, inside the default x-range 1.6.
    let err = load("[1.0, -1.0]", "").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("landscape.lambda"), "{err}");
    assert!(load("[1.0, -1.0]", "x_max = 0.9\n").is_ok());
}

#[test]
fn summary_shrinks_the_range_where_lambda_vanishes() {
    let v = Valley2d {
        epsilon: 0.001,
        lambda: vec![1.0, -1.0],
    };
    let s = summarize(&v, &hessian(0.002), &TheoryConfig::default());
    assert!(s.x_max < 1.0 && s.x_max > 0.99, "{}", s.x_max);
    assert!(s.notes.iter().any(|n| n.contains("not confined")));
    assert!(serde_json::to_string(&s).unwrap().contains("\"x_ss\""));
}

#[test]
fn theory_vs_fp_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("theory-vs-fp-") && name.ends_with(".toml")) {
            continue;
        }
        let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            sc.fokker_planck().is_some() && sc.theory().is_some(),
            "{name}"
        );
        assert!(matches!(sc.noise(), Noise::Hessian { .. }), "{name}");
        n += 1;
    }
    assert!(n >= 5, "found {n} theory-vs-fp scenarios");
}

/// Prints the table of docs/theory.md: `cargo test --release --test it theory:: -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_theory_vs_fp_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("theory-vs-fp-")
        })
        .collect();
    files.sort();
    let v = Valley2d::paper();
    println!("| Δ_S/Δ_S* | x_ss reduced | F(x_ss) | κ(x_ss) exact |");
    for f in [
        0.5, 0.9999, 1.0001, 1.001, 1.01, 1.1, 2.0, 4.0, 8.0, 20.0, 40.0,
    ] {
        let n = hessian(0.0005 * f);
        let x = x_ss_reduced(&v, &n, UNBOUNDED, 1.6);
        let k = kappa_at(&v, &n, x, YLaw::Exact, UNBOUNDED).unwrap();
        println!("| {f} | {x:.5} | {:.4} | {k:.1} |", v.flatness(x));
    }
    println!(
        "| scenario | Δ_S | κ (closed) | κ(0) cond. on FP y | x_ss reduced | x_ss (y unbounded) | ⟨|x|⟩ red / Eq.13 / Eq.14 | L1 red–Eq.13 | L1 red–Eq.14 |"
    );
    for f in files {
        let sc = Scenario::load(&f).unwrap();
        let v = sc.valley2d().unwrap();
        let fp = sc.fokker_planck().unwrap().config();
        let cfg = sc.theory().unwrap().config().clone();
        let s = summarize(v, sc.noise(), &cfg);
        let xs = quad::cell_centres(fp.x.min, fp.x.max, fp.x.cells);
        let dx = xs[1] - xs[0];
        let pr = marginal_x_reduced(v, sc.noise(), &xs, cfg.y_range());
        let pp = marginal_x_paper(v, sc.noise(), &xs).unwrap();
        let pe = marginal_x_paper_small_noise(v, sc.noise(), &xs).unwrap();
        let mabs = |p: &[f64]| xs.iter().zip(p).map(|(x, p)| x.abs() * p).sum::<f64>() * dx;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.4} | {:.4} | {:.4} / {:.4} / {:.4} | {:.3} | {:.3} |",
            sc.name(),
            s.delta_s.unwrap(),
            s.kappa.unwrap(),
            s.kappa_conditional.unwrap(),
            s.x_ss,
            x_ss_reduced(v, sc.noise(), UNBOUNDED, cfg.x_max()),
            mabs(&pr),
            mabs(&pp),
            mabs(&pe),
            l1_distance(&pr, &pp, dx),
            l1_distance(&pr, &pe, dx),
        );
    }
}

#[test]
fn sweep_point_is_summarize_bit_for_bit() {
    // The sweep reads x_ss, F(x_ss) and η⟨λ⟩_ss; `sweep_point` computes only those, and must
    // give the very bits of the full summary, below, at and above Δ_S* = 0.0005, on an
    // unbounded and on a bounded y-domain, and for γ = 1.
    let valley = Valley2d::paper();
    let cfgs = [
        TheoryConfig::default(),
        TheoryConfig {
            y_range: Some([-0.3, 0.3]),
            x_cells: Some(201),
            ..TheoryConfig::default()
        },
    ];
    let mut noises: Vec<Noise> = [0.0, 0.0002, 0.0005, 0.002, 0.02].map(hessian).to_vec();
    noises.push(Noise::Hessian {
        eta: 0.03,
        sigma: 0.1,
        power: 1.0,
    });
    noises.push(Noise::Anisotropic {
        delta: 0.001,
        kappa: 4.0,
    });
    for cfg in &cfgs {
        for noise in &noises {
            let full = summarize(&valley, noise, cfg);
            let point = sweep_point(&valley, noise, cfg);
            assert_eq!(point.x_ss.to_bits(), full.x_ss.to_bits(), "{noise:?}");
            assert_eq!(point.flatness_ss.to_bits(), full.flatness_ss.to_bits());
            let eta_lambda =
                |c: &Option<Convergence>| c.as_ref().map(|c| c.eta_lambda_mean_ss.to_bits());
            assert_eq!(
                eta_lambda(&point.convergence),
                eta_lambda(&full.convergence),
                "{noise:?}"
            );
        }
    }
}
