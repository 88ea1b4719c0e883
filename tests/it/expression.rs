//! Expression landscapes (`[landscape] kind = "expression"`): exact derivatives against central
//! differences, the paper's valley written as an expression against the built-in one, Boltzmann
//! equilibrium and vanishing currents under isotropic noise, non-zero divergence-free currents
//! under Hessian noise, every sampler rule (matrix factorisation: matrix_factorisation.rs),
//! and malformed expressions rejected with exit status 2 naming the key.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use flatscape::config::{AxisConfig, NoProgress};
use flatscape::fp::grid::Grid;
use flatscape::fp::operator::assemble;
use flatscape::fp::{self, CrossDiffusionScheme, FokkerPlanckConfig, FpPlan, FpSolution};
use flatscape::landscape::expr::ExprLoss;
use flatscape::landscape::{Landscape, Loss2d, Valley2d};
use flatscape::noise::Noise;
use flatscape::sampler::{self, SamplerConfig, SamplerKind, SamplerPlan};

fn expr(src: &str, params: &[(&str, f64)]) -> ExprLoss {
    let p: BTreeMap<String, f64> = params.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    ExprLoss::new("landscape", src, &p).expect("valid expression")
}

fn axis(min: f64, max: f64, cells: usize) -> AxisConfig {
    AxisConfig { min, max, cells }
}

fn solve(landscape: Landscape, noise: Noise, x: AxisConfig, y: AxisConfig) -> FpSolution {
    let plan = FpPlan::from_landscape(landscape, noise, FokkerPlanckConfig::steady(x, y))
        .expect("valid plan");
    fp::solve(&plan, &NoProgress).expect("solves")
}

/// A small deterministic generator of points in a box.
fn points(n: usize, seed: u64, half: f64) -> Vec<(f64, f64)> {
    let mut s = seed;
    let mut u = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * half
    };
    (0..n).map(|_| (u(), u())).collect()
}

#[test]
fn gradient_and_hessian_match_central_differences() {
    let cases = [
        ("0.5*(x*y - 1)^2 + 0.5*eps*x^2", 1.5),
        ("(x^2 - 1)^2 + 0.5*(y - x^2)^2 + 0.3*x", 1.5),
        ("0.5*eps*8*x^2 + 0.5*(8 - 2*x^2 + x^4)*y^2", 1.5),
        ("exp(-x^2 - y^2) * sin(3*x) + cos(x*y) / (2 + tanh(y))", 1.2),
        ("ln(1 + x^2 + y^4) + sqrt(2 + x*y) - abs(x - 5)^1.5", 1.0),
        ("(1 + x^2)^(0.5*y) - x/(y - 3) + 2^x * y^-2 * 0", 1.0),
        ("-(x^2 + 1)^0.5 + 3*x*y - (x - y)^3/3", 1.3),
    ];
    let h = 1e-5;
    for (src, half) in cases {
        let e = expr(src, &[("eps", 0.01)]);
        for (x, y) in points(25, src.len() as u64, half) {
            let g = e.gradient(x, y);
            let hs = e.hessian(x, y);
            let l = |a: f64, b: f64| e.loss(a, b);
            let gx = (l(x + h, y) - l(x - h, y)) / (2.0 * h);
            let gy = (l(x, y + h) - l(x, y - h)) / (2.0 * h);
            let scale = 1.0 + l(x, y).abs() + g[0].abs() + g[1].abs();
            assert!(
                (g[0] - gx).abs() < 1e-7 * scale && (g[1] - gy).abs() < 1e-7 * scale,
                "{src} gradient at ({x}, {y}): {g:?} vs ({gx}, {gy})"
            );
            let dg = |a: f64, b: f64| e.gradient(a, b);
            let hxx = (dg(x + h, y)[0] - dg(x - h, y)[0]) / (2.0 * h);
            let hxy = (dg(x, y + h)[0] - dg(x, y - h)[0]) / (2.0 * h);
            let hyx = (dg(x + h, y)[1] - dg(x - h, y)[1]) / (2.0 * h);
            let hyy = (dg(x, y + h)[1] - dg(x, y - h)[1]) / (2.0 * h);
            let hscale = scale + hs[0][0].abs() + hs[1][1].abs() + hs[0][1].abs();
            for (exact, fd) in [
                (hs[0][0], hxx),
                (hs[0][1], hxy),
                (hs[1][0], hyx),
                (hs[1][1], hyy),
            ] {
                assert!(
                    (exact - fd).abs() < 1e-6 * hscale,
                    "{src} Hessian at ({x}, {y}): {hs:?} vs [[{hxx}, {hxy}], [{hyx}, {hyy}]]"
                );
            }
        }
    }
}

/// The valley of Eq. (8) with ε = 0.001, λ = [8, −2, 1], written as an expression.
const PAPER_VALLEY: &str = "0.5*eps*l0*x^2 + 0.5*(l0 + l1*x^2 + l2*x^4)*y^2";

fn paper_expr() -> ExprLoss {
    expr(
        PAPER_VALLEY,
        &[("eps", 0.001), ("l0", 8.0), ("l1", -2.0), ("l2", 1.0)],
    )
}

#[test]
fn paper_valley_as_expression_reproduces_the_builtin_fp_operator_and_density() {
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let (x, y) = (axis(-1.6, 1.6, 96), axis(-0.3, 0.3, 48));
    // The discrete operators agree to rounding.
    let grid = Grid::new(&x, &y);
    let valley = Valley2d::paper();
    let e = paper_expr();
    let a_op = assemble(&grid, &valley, &noise, CrossDiffusionScheme::Central);
    let b_op = assemble(&grid, &e, &noise, CrossDiffusionScheme::Central);
    let top = a_op
        .coef
        .iter()
        .flatten()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let op_diff = a_op
        .coef
        .iter()
        .flatten()
        .zip(b_op.coef.iter().flatten())
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
    println!("operator: max |ΔA| / max |A| = {:.3e}", op_diff / top);
    assert!(op_diff <= 1e-13 * top);
    // The densities: relative to the peak on cells above 1e-6 of it, and in L1 (mass 1). The
    // steady solve keeps the even part of a reflection-symmetric generator's density; the odd
    // part is rounding amplified by the 2e-14 inter-well rate (fp_steady_accuracy.rs).
    let a = solve(Landscape::Valley2d(valley.clone()), noise.clone(), x, y);
    let b = solve(Landscape::Expression(e), noise, x, y);
    let peak = a.density.iter().fold(0.0f64, |m, v| m.max(*v));
    let rel = a
        .density
        .iter()
        .zip(&b.density)
        .filter(|(p, _)| **p > 1e-6 * peak)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs() / p));
    let l1 = a
        .density
        .iter()
        .zip(&b.density)
        .map(|(p, q)| (p - q).abs())
        .sum::<f64>()
        * a.grid.cell_area();
    println!("density: expression vs built-in {rel:.3e} cellwise, L1 {l1:.3e}");
    assert!(rel <= 1e-10 && l1 <= 1e-10, "{rel} {l1}");
    let (ca, cb) = (a.summary.currents.unwrap(), b.summary.currents.unwrap());
    assert!((ca.current_l1 - cb.current_l1).abs() <= 1e-5 * ca.current_l1);
}

#[test]
fn paper_valley_as_expression_matches_the_builtin_sampler() {
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let cfg = SamplerConfig::new(SamplerKind::Sgd, 1024, 6000, 2000, vec![0.3, 0.1]);
    let run = |l: Landscape| {
        let plan = SamplerPlan::new(&cfg, &l, &noise, 7).expect("valid");
        sampler::run(&plan, None, &NoProgress)
            .expect("runs")
            .summary
    };
    let a = run(Landscape::Valley2d(Valley2d::paper()));
    let b = run(Landscape::Expression(paper_expr()));
    let (xa, xb) = (a.x_ss_abs.unwrap(), b.x_ss_abs.unwrap());
    let se = a.x_ss_abs_stderr.unwrap().hypot(b.x_ss_abs_stderr.unwrap());
    println!("x_ss_abs: built-in {xa} ± {se}, expression {xb}");
    assert!((xa - xb).abs() <= se, "{xa} vs {xb} ± {se}");
}

#[test]
fn isotropic_steady_state_is_boltzmann_with_no_current() {
    let e = expr("(x^2 - 1)^2 + 0.5*(y - x^2)^2 + 0.3*x", &[]);
    let t = 0.3;
    let sol = solve(
        Landscape::Expression(e.clone()),
        Noise::Isotropic { temperature: t },
        axis(-2.0, 2.0, 120),
        axis(-1.5, 4.0, 140),
    );
    let g = &sol.grid;
    let w: Vec<f64> = (0..g.len())
        .map(|k| (-e.loss(g.x(k / g.ny), g.y(k % g.ny)) / t).exp())
        .collect();
    let z = w.iter().sum::<f64>() * g.cell_area();
    let top = sol.density.iter().fold(0.0f64, |m, v| m.max(*v));
    let err = sol
        .density
        .iter()
        .zip(&w)
        .fold(0.0f64, |m, (p, q)| m.max((p - q / z).abs()));
    let c = sol.summary.currents.expect("steady currents");
    println!(
        "Boltzmann: max |P − e^(−L/T)/Z| / max P = {:.3e}, current_l1 = {:.3e}",
        err / top,
        c.current_l1
    );
    assert!(err <= 1e-8 * top);
    assert!(c.current_l1 <= 1e-8);
    assert!(c.circulation <= 1e-8 && c.entropy_production <= 1e-8);
}

#[test]
fn hessian_noise_leaves_a_divergence_free_nonzero_current() {
    let sol = solve(
        Landscape::Valley2d(Valley2d::paper()),
        Noise::Hessian {
            eta: 0.01,
            sigma: 0.2,
            power: 2.0,
        },
        axis(-1.6, 1.6, 96),
        axis(-0.3, 0.3, 48),
    );
    let c = sol.summary.currents.expect("steady currents");
    println!("valley, Hessian noise: {c:?}");
    assert!(c.current_l1 > 1e-4, "current_l1 = {}", c.current_l1);
    assert!(c.circulation > 0.0 && c.entropy_production > 0.0);
    assert!(c.divergence_defect < 1e-9, "{}", c.divergence_defect);
}

#[test]
fn every_sampler_rule_runs_on_an_expression() {
    // A quadratic bowl: GLD's stationary variance is T / (k (1 − ηk/2)) per axis exactly.
    let land = Landscape::Expression(expr("0.5*(kx*x^2 + ky*y^2)", &[("kx", 2.0), ("ky", 0.5)]));
    let t = 0.1;
    let mut cfg = SamplerConfig::new(SamplerKind::Gld, 2048, 4000, 1000, vec![0.2, 0.2]);
    cfg.eta = Some(0.05);
    let plan = SamplerPlan::new(&cfg, &land, &Noise::Isotropic { temperature: t }, 3).unwrap();
    let s = sampler::run(&plan, None, &NoProgress).unwrap().summary;
    let m2 = s.second_moment_ss.unwrap();
    let se = s.second_moment_ss_stderr.unwrap();
    for (axis, k) in [(0, 2.0), (1, 0.5)] {
        let exact = t / (k * (1.0 - 0.05 * k / 2.0));
        println!(
            "gld var[{axis}] {} ± {} vs {exact}",
            m2[axis][axis], se[axis][axis]
        );
        assert!((m2[axis][axis] - exact).abs() <= 4.0 * se[axis][axis]);
    }
    // gd descends to the minimum.
    let mut cfg = SamplerConfig::new(SamplerKind::Gd, 32, 2000, 1000, vec![0.5, -0.4]);
    cfg.eta = Some(0.1);
    let plan = SamplerPlan::new(&cfg, &land, &Noise::Isotropic { temperature: t }, 3).unwrap();
    let s = sampler::run(&plan, None, &NoProgress).unwrap().summary;
    assert!(s.second_moment_ss.unwrap()[0][0] < 1e-12);
    // Every noise kind and rule resolves and runs without diverging.
    let hess = |power: f64| Noise::Hessian {
        eta: 0.05,
        sigma: 0.01,
        power,
    };
    let kinds: Vec<(SamplerKind, Noise, Option<f64>)> = vec![
        (SamplerKind::Sgd, hess(2.0), None),
        (SamplerKind::Sgd, hess(1.0), None),
        (SamplerKind::SgdExactShift, hess(2.0), None),
        (SamplerKind::Langevin, hess(2.0), Some(0.05)),
        (SamplerKind::Langevin, hess(0.5), Some(0.05)),
        (
            SamplerKind::Langevin,
            Noise::Isotropic { temperature: t },
            Some(0.05),
        ),
        (
            SamplerKind::Langevin,
            Noise::Anisotropic {
                delta: 0.01,
                kappa: 4.0,
            },
            Some(0.05),
        ),
        (
            SamplerKind::Langevin,
            Noise::Constant {
                d: [[0.02, 0.005], [0.005, 0.01]],
            },
            Some(0.05),
        ),
    ];
    for (kind, noise, dt) in kinds {
        let mut cfg = SamplerConfig::new(kind, 64, 500, 100, vec![0.2, 0.2]);
        cfg.dt = dt;
        let plan = SamplerPlan::new(&cfg, &land, &noise, 5).expect("valid");
        let s = sampler::run(&plan, None, &NoProgress).unwrap().summary;
        assert_eq!(s.diverged_fraction, 0.0, "{kind:?} {noise:?}");
        assert!(s.second_moment_ss.unwrap()[0][0].is_finite());
    }
}

const VALID: &str = r#"name = "expr"
[landscape]
kind = "expression"
loss = "0.5*(x*y - 1)^2 + 0.5*eps*x^2"
params = { eps = 0.001 }
[noise]
kind = "hessian"
eta = 0.1
sigma = 0.05
[fokker_planck]
x = { min = 0.5, max = 1.5, cells = 16 }
y = { min = 0.5, max = 1.5, cells = 16 }
"#;

#[test]
fn the_valid_expression_scenario_checks() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ok.toml");
    std::fs::write(&f, VALID).unwrap();
    let out = flatscape(&["check", f.to_str().unwrap()], dir.path());
    assert_eq!(out.0, Some(0), "{}", out.1);
}

fn flatscape(args: &[&str], cwd: &Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_flatscape"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn malformed_expressions_exit_2_naming_the_key() {
    let loss = "loss = \"0.5*(x*y - 1)^2 + 0.5*eps*x^2\"";
    let with = |l: &str| VALID.replace(loss, &format!("loss = \"{l}\""));
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", with(""), "landscape.loss"),
        ("blank", with("   "), "landscape.loss"),
        ("dangling operator", with("x + "), "column 5"),
        ("two operators", with("x + * y"), "column 5"),
        ("unclosed bracket", with("(x + y"), "landscape.loss"),
        ("stray bracket", with("x + y)"), "column 6"),
        ("bad character", with("x # y"), "column 3"),
        (
            "unknown names",
            with("a*x + b*y"),
            "`a` (column 1), `b` (column 7)",
        ),
        ("unknown function", with("erf(x)"), "unknown function `erf`"),
        ("function without bracket", with("exp x"), "landscape.loss"),
        ("bad number", with("1.2.3*x"), "landscape.loss"),
        (
            "missing parameter",
            VALID.replace("params = { eps = 0.001 }\n", ""),
            "`eps`",
        ),
        (
            "reserved parameter",
            VALID.replace("eps = 0.001", "eps = 0.001, exp = 2.0"),
            "landscape.params.exp",
        ),
        (
            "non-finite parameter",
            VALID.replace("eps = 0.001", "eps = nan"),
            "landscape.params.eps",
        ),
        (
            "not finite on the domain",
            with("ln(x - 1)"),
            "not finite at (x, y)",
        ),
        (
            "division by zero on the domain",
            with("1/(x - x)"),
            "not finite",
        ),
        (
            "non-finite Hessian: D not PSD",
            with("abs(x - 1)^1.5 + (y - 1)^2"),
            "positive semi-definite",
        ),
        ("unknown key", VALID.replace("params =", "parms ="), "parms"),
        (
            "theory on an expression",
            format!("{VALID}[theory]\n"),
            "theory",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, text, must) in &cases {
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, text).unwrap();
        let (code, err) = flatscape(&["check", f.to_str().unwrap()], dir.path());
        assert_eq!(code, Some(2), "{what}: exit {code:?}, {err}");
        assert!(err.contains(must), "{what}: message lacks {must:?}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        println!("{what}: {}", err.lines().next().unwrap_or(""));
    }
    assert!(cases.len() >= 15);
}

#[test]
fn a_delta_s_sweep_runs_on_an_expression_scenario() {
    let text = r#"name = "mf-sweep"
[landscape]
kind = "expression"
loss = "0.5*(x*y - 1)^2"
[noise]
kind = "hessian"
eta = 0.1
sigma = 0.05
[fokker_planck]
x = { min = 0.55, max = 1.6, cells = 32 }
y = { min = 0.55, max = 1.6, cells = 32 }
[sampler]
kind = "sgd"
walkers = 64
steps = 2000
burn_in = 1000
start = [1.0, 1.0]
[sweep]
delta_s = { min = 0.002, max = 0.008, points = 3 }
"#;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sweep.toml");
    std::fs::write(&f, text).unwrap();
    let out = dir.path().join("out");
    let (code, err) = flatscape(
        &[
            "run",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3);
    for r in rows {
        // x_ss_abs (sampler) and fp_mean_abs_x are filled, near the balanced point x = 1.
        let cols: Vec<&str> = r.split(',').collect();
        let (xs, fp) = (
            cols[4].parse::<f64>().unwrap(),
            cols[10].parse::<f64>().unwrap(),
        );
        assert!((xs - 1.0).abs() < 0.05 && (fp - 1.0).abs() < 0.05, "{r}");
    }
}
