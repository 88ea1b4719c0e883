//! Physics and behaviour checks of the Monte-Carlo sampler (issue 4, docs/reference.md §4).
//!
//! Tolerances on Monte-Carlo estimates are 3 standard errors, estimated from the
//! walker-to-walker spread of the time averages (walkers are independent).

use std::path::Path;

use flatscape::config::NoProgress;
use flatscape::landscape::Landscape;
use flatscape::sampler::{self, SamplerRun};
use flatscape::scenario::Scenario;

fn scenario(src: &str) -> Scenario {
    Scenario::from_toml_str(src, Path::new("test.toml")).expect("valid scenario")
}

fn run(sc: &Scenario) -> SamplerRun {
    let plan = sc.sampler().expect("a [sampler] table");
    let grid = sc.fokker_planck().map(|f| (f.config().x, f.config().y));
    sampler::run(plan, grid, &NoProgress).expect("sampler runs")
}

fn paper_sgd(sigma: f64, kind: &str, walkers: usize) -> String {
    format!(
        r#"
name = "t"
seed = 11
[landscape]
kind = "valley2d"
epsilon = 0.001
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.01
sigma = {sigma:?}
[sampler]
kind = "{kind}"
walkers = {walkers}
steps = 200000
burn_in = 100000
start = [1.5, 1.5]
"#
    )
}

#[test]
fn sgd_stationary_variance_on_a_quadratic_matches_the_exact_discrete_formula() {
    // L = ½ λ y² with λ = 4, η = 0.1, σ = 0.5: y ← (1 − ηλ) y + ηλ μ, Var μ = 2σ.
    let (lambda, eta, sigma): (f64, f64, f64) = (4.0, 0.1, 0.5);
    let exact = eta * eta * lambda * lambda * 2.0 * sigma
        / (1.0 - (1.0 - eta * lambda) * (1.0 - eta * lambda));
    assert!((exact - 0.25).abs() < 1e-12);
    for kind in ["sgd", "sgd-exact-shift"] {
        let src = std::fs::read_to_string("scenarios/sampler-quadratic.toml")
            .unwrap()
            .replace("kind = \"sgd\"", &format!("kind = \"{kind}\""));
        let r = run(&scenario(&src));
        let s = &r.summary;
        let (v, se) = (s.y_sq_ss.unwrap(), s.y_sq_ss_stderr.unwrap());
        println!("{kind}: <y²> = {v} ± {se}, exact {exact}");
        assert!(se > 0.0 && se < 0.01 * exact, "standard error {se}");
        assert!(
            (v - exact).abs() < 3.0 * se,
            "{kind}: {v} ± {se} vs {exact}"
        );
        // x has no gradient and no noise when ε = 0 and λ is constant.
        assert_eq!(s.x_ss_abs, Some(0.0));
    }
}

#[test]
fn sgd_with_power_one_has_the_discrete_variance_of_noise_sqrt_lambda() {
    // γ = 1: noise η √(2σ) |H|^(1/2) ξ, so on L = ½ λ y² Var = η² 2σ λ / (1 − (1 − ηλ)²).
    let (lambda, eta, sigma): (f64, f64, f64) = (4.0, 0.1, 0.5);
    let exact = eta * eta * 2.0 * sigma * lambda / (1.0 - (1.0 - eta * lambda).powi(2));
    let src = std::fs::read_to_string("scenarios/sampler-quadratic.toml")
        .unwrap()
        .replace("sigma = 0.5", "sigma = 0.5\npower = 1.0");
    let s = run(&scenario(&src)).summary;
    let (v, se) = (s.y_sq_ss.unwrap(), s.y_sq_ss_stderr.unwrap());
    println!("γ = 1: <y²> = {v} ± {se}, exact {exact}");
    assert!((v - exact).abs() < 3.0 * se, "{v} ± {se} vs {exact}");
}

#[test]
fn langevin_with_dt_equal_to_eta_is_sgd_step_for_step() {
    // With dt = η, Euler–Maruyama of dθ = −∇L dt + √(2 ησ H²) dW is the random-shift SGD update.
    let sgd = paper_sgd(0.2, "sgd", 40)
        .replace("steps = 200000", "steps = 5000")
        .replace("burn_in = 100000", "burn_in = 1000");
    let langevin = sgd.replace("kind = \"sgd\"", "kind = \"langevin\"\ndt = 0.01");
    let (a, b) = (run(&scenario(&sgd)), run(&scenario(&langevin)));
    assert_eq!(a.summary.x_ss_abs, b.summary.x_ss_abs);
    assert_eq!(a.summary.second_moment_ss, b.summary.second_moment_ss);
    assert_eq!(a.trajectories, b.trajectories);
}

#[test]
fn langevin_on_the_ou_case_matches_the_lyapunov_covariance() {
    let sc = scenario(&std::fs::read_to_string("scenarios/sampler-ou.toml").unwrap());
    let Landscape::Valley2d(v) = sc.landscape() else {
        panic!("2-D")
    };
    let a = [v.epsilon * v.lambda0(), v.lambda0()];
    let d = match sc.noise() {
        flatscape::noise::Noise::Constant { d } => d,
        _ => panic!("constant noise"),
    };
    // A Σ + Σ A = 2D with A diagonal: Σ_ij = 2 D_ij / (a_i + a_j).
    let lyap: [[f64; 2]; 2] =
        std::array::from_fn(|i| std::array::from_fn(|j| 2.0 * d[i][j] / (a[i] + a[j])));
    assert!((lyap[0][0] - 0.6).abs() < 1e-12 && (lyap[0][1] - 0.16).abs() < 1e-12);
    let r = run(&sc);
    let m = r.summary.second_moment_ss.unwrap();
    let se = r.summary.second_moment_ss_stderr.unwrap();
    let dt = sc.sampler().unwrap().config().dt.unwrap();
    for i in 0..2 {
        for j in 0..2 {
            // Euler–Maruyama bias: (a_i + a_j − dt a_i a_j) Σ_ij = 2 D_ij, must be ≪ the SE.
            let bias = lyap[i][j] * dt * a[i] * a[j] / (a[i] + a[j]);
            assert!(
                bias < 0.3 * se[i][j],
                "discretisation bias {bias} vs se {}",
                se[i][j]
            );
            println!("Σ{i}{j} = {} ± {} vs {}", m[i][j], se[i][j], lyap[i][j]);
            assert!(
                (m[i][j] - lyap[i][j]).abs() < 3.0 * se[i][j],
                "Σ{i}{j}: {} ± {} vs {}",
                m[i][j],
                se[i][j],
                lyap[i][j]
            );
        }
    }
}

#[test]
fn sgd_finds_the_flatter_solution_at_large_noise_and_the_global_minimum_at_small_noise() {
    let big = run(&scenario(&paper_sgd(0.2, "sgd", 64))).summary;
    let small = run(&scenario(&paper_sgd(0.02, "sgd", 64))).summary;
    let gd = run(&scenario(&paper_sgd(0.2, "gd", 8))).summary;
    println!(
        "σ=0.2: |x_ss| = {:?} ± {:?}, τ_s = {:?}",
        big.x_ss_abs, big.x_ss_abs_stderr, big.search_time
    );
    println!(
        "σ=0.02: |x_ss| = {:?}, τ_s = {:?}; gd: |x_ss| = {:?}",
        small.x_ss_abs, small.search_time, gd.x_ss_abs
    );
    let x_big = big.x_ss_abs.unwrap();
    assert!((0.8..0.9).contains(&x_big), "σ = 0.2: |x_ss| = {x_big}");
    assert!(small.x_ss_abs.unwrap() < 0.01, "σ = 0.02 stays at x* = 0");
    assert!(gd.x_ss_abs.unwrap() < 1e-3, "gd converges to x* = 0");
    // Flatter solution: F(x_ss) above F(0) = 8^(−1/2), below F(x_F) = 7^(−1/2).
    let f = big.flatness_ss.unwrap();
    assert!(f > 8f64.powf(-0.5) && f < 7f64.powf(-0.5));
    // Beyond the transition the search is much faster (paper, Fig. 5d).
    assert!(big.search_time.unwrap() < 0.2 * small.search_time.unwrap());
    // A monotone walk (gd) still has a search time.
    assert!(gd.search_time.unwrap() > 0.0);
    assert_eq!(big.diverged_fraction, 0.0);
}

#[test]
fn eta_lambda0_above_two_diverges_for_every_walker() {
    let sc = scenario(&std::fs::read_to_string("scenarios/sampler-divergence.toml").unwrap());
    let r = run(&sc);
    let s = &r.summary;
    assert_eq!(s.diverged_fraction, 1.0);
    assert!(s.x_ss_abs.is_none() && s.flatness_ss.is_none() && s.search_time.is_none());
    let json = serde_json::to_string(s).unwrap();
    assert!(!json.contains("null") && !json.contains("NaN"), "{json}");
    assert!(!json.contains("x_ss_abs"));
    // After every walker diverged the time series has no alive walker and empty means.
    assert_eq!(*r.timeseries.alive.last().unwrap(), 0);
    let csv =
        flatscape::report::files::csv_text(flatscape::report::run::timeseries_rows(&r.timeseries))
            .unwrap();
    assert!(
        String::from_utf8(csv)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .ends_with(",,,,,,")
    );
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn strip_timing(r: &SamplerRun) -> serde_json::Value {
    let mut v = serde_json::to_value(&r.summary).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("walker_steps_per_second");
    o.remove("seconds");
    v
}

#[test]
fn same_seed_gives_identical_results_for_one_and_two_threads() {
    let two_d = scenario(&format!(
        "{}\n[fokker_planck]\nx = {{ min = -1.6, max = 1.6, cells = 64 }}\ny = {{ min = -0.6, max = 0.6, cells = 32 }}\n",
        paper_sgd(0.2, "sgd", 37)
            .replace("steps = 200000", "steps = 20000")
            .replace("burn_in = 100000", "burn_in = 10000")
    ));
    let nd = scenario(
        r#"
name = "t"
seed = 5
[landscape]
kind = "valley"
n_s = 3
n_f = 20
[noise]
kind = "hessian"
eta = 0.01
sigma = 0.1
[sampler]
kind = "sgd"
walkers = 9
steps = 3000
burn_in = 1000
start = [0.1, 1.0]
"#,
    );
    for sc in [&two_d, &nd] {
        let a = pool(1).install(|| run(sc));
        let b = pool(2).install(|| run(sc));
        assert_eq!(strip_timing(&a), strip_timing(&b));
        assert_eq!(a.timeseries, b.timeseries);
        assert_eq!(a.hist_x, b.hist_x);
        assert_eq!(a.hist_y, b.hist_y);
        assert_eq!(a.trajectories, b.trajectories);
    }
    // The histogram is a density on the FP grid.
    let r = run(&two_d);
    let fp = two_d.fokker_planck().unwrap().config();
    let dx = (fp.x.max - fp.x.min) / fp.x.cells as f64;
    let mass: f64 = r.hist_x.as_ref().unwrap().iter().sum::<f64>() * dx;
    assert!((mass - 1.0).abs() < 1e-12);
    assert_eq!(r.trajectories.len(), 8);
}

#[test]
fn sgd_on_the_nd_valley_ends_flatter_than_gd_and_matched_gld() {
    let base = |kind: &str, noise: &str, eta: &str| {
        format!(
            r#"
name = "t"
seed = 7
[landscape]
kind = "valley"
epsilon = 1.0e-4
seed = 1
[noise]
{noise}
[sampler]
kind = "{kind}"
walkers = 4
steps = 60000
burn_in = 40000
start = [0.1, 1.0]
{eta}
"#
        )
    };
    let hess = "kind = \"hessian\"\neta = 0.01\nsigma = 0.1";
    let sgd_sc = scenario(&base("sgd", hess, ""));
    let Landscape::Valley(spec) = sgd_sc.landscape() else {
        panic!()
    };
    let valley = spec.build(sgd_sc.seed()).unwrap();
    let t = valley.matched_temperature(0.01 * 0.1);
    let gld_sc = scenario(&base(
        "gld",
        &format!("kind = \"isotropic\"\ntemperature = {t:e}"),
        "eta = 0.01",
    ));
    let sgd = run(&sgd_sc);
    let gd = run(&scenario(&base("gd", hess, "")));
    let gld = run(&gld_sc);
    let f0 = valley.flatness(&vec![0.0; valley.n_f]);
    let (fs, fg, fl) = (
        sgd.summary.flatness_ss.unwrap(),
        gd.summary.flatness_ss.unwrap(),
        gld.summary.flatness_ss.unwrap(),
    );
    println!("F(0) = {f0}: sgd {fs}, gd {fg}, gld {fl}");
    assert!(fs > 1.25 * f0, "sgd moves towards the flattest point");
    assert!(fs > fg && fs > fl);
    assert!((fg / f0 - 1.0).abs() < 0.02, "gd stays near its start");
    // The exact shift (μ of std 0.45 here, not small) also moves towards flatter points.
    let shift = run(&scenario(&base("sgd-exact-shift", hess, ""))).summary;
    let fe = shift.flatness_ss.unwrap();
    println!("sgd-exact-shift: {fe}");
    assert!(fe > 1.1 * f0 && fe > fg, "exact shift {fe}");
    // Flatness rises along the SGD run.
    let ts = &sgd.timeseries;
    assert!(ts.mean_flatness.last().unwrap() > &(1.2 * ts.mean_flatness[0]));
}

#[test]
fn fig2a_gld_temperature_matches_the_trace_of_the_sgd_noise() {
    let sgd = Scenario::load(Path::new("scenarios/fig2a-sgd.toml")).unwrap();
    let gld = Scenario::load(Path::new("scenarios/fig2a-gld.toml")).unwrap();
    let Landscape::Valley(spec) = sgd.landscape() else {
        panic!()
    };
    let Landscape::Valley(spec_gld) = gld.landscape() else {
        panic!()
    };
    assert_eq!(spec, spec_gld, "same landscape");
    let valley = spec.build(sgd.seed()).unwrap();
    let t = valley.matched_temperature(sgd.noise().delta_s().unwrap());
    let flatscape::noise::Noise::Isotropic { temperature } = *gld.noise() else {
        panic!()
    };
    assert!(
        (temperature / t - 1.0).abs() < 1e-12,
        "{temperature} vs {t}"
    );
}

fn expect_key(src: &str, key: &str) {
    let err = Scenario::from_toml_str(src, Path::new("bad.toml")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
}

#[test]
fn bad_sampler_keys_are_rejected_naming_the_key() {
    let ok = paper_sgd(0.2, "sgd", 8);
    scenario(&ok);
    expect_key(
        &ok.replace("burn_in = 100000", "burn_in = 200000"),
        "sampler.burn_in",
    );
    expect_key(
        &ok.replace("start = [1.5, 1.5]", "start = [1.5, 1.5, 0.0]"),
        "sampler.start",
    );
    expect_key(
        &ok.replace("kind = \"sgd\"", "kind = \"langevin\""),
        "sampler.dt",
    );
    expect_key(
        &ok.replace("kind = \"sgd\"", "kind = \"gld\""),
        "sampler.kind",
    );
    expect_key(&ok.replace("walkers = 8", "walkers = 0"), "sampler.walkers");
    expect_key(
        &ok.replace("kind = \"sgd\"", "kind = \"sgd-exact-shift\"")
            .replace("sigma = 0.2", "sigma = 0.2\npower = 1.0"),
        "noise.power",
    );
    expect_key(
        &ok.replace("start = [1.5, 1.5]", "start = [1.5, 1.5]\neta = 0.02"),
        "sampler.eta",
    );
    expect_key(
        &ok.replace(
            "start = [1.5, 1.5]",
            "start = [1.5, 1.5]\ndivergence_radius = 1.0",
        ),
        "sampler.start",
    );
    let typo = Scenario::from_toml_str(
        &ok.replace("start = [1.5, 1.5]", "start = [1.5, 1.5]\nwalker = 3"),
        Path::new("bad.toml"),
    )
    .unwrap_err();
    assert!(typo.message.contains("unknown field `walker`"), "{typo}");
    let iso = ok.replace(
        "kind = \"hessian\"\neta = 0.01\nsigma = 0.2",
        "kind = \"isotropic\"\ntemperature = 0.01",
    );
    expect_key(
        &iso.replace("kind = \"sgd\"", "kind = \"gld\""),
        "sampler.eta",
    );
    scenario(&iso.replace("kind = \"sgd\"", "kind = \"gld\"\neta = 0.01"));
    let nd = ok
        .replace(
            "kind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]",
            "kind = \"valley\"\nn_s = 2\nn_f = 3",
        )
        .replace("start = [1.5, 1.5]", "start = [0.1, 0.1, 0.1, 0.2]");
    expect_key(&nd, "sampler.start");
    scenario(&nd.replace(
        "start = [0.1, 0.1, 0.1, 0.2]",
        "start = [0.1, 0.1, 0.1, 0.2, 0.2]",
    ));
    expect_key(
        &nd.replace("sigma = 0.2", "sigma = 0.2\npower = 1.5")
            .replace("start = [0.1, 0.1, 0.1, 0.2]", "start = [0.1, 0.2]"),
        "noise.power",
    );
    expect_key(
        &nd.replace("n_f = 3", "n_f = 3\ndepth = 1.5"),
        "landscape.depth",
    );
}

#[test]
fn every_sampler_scenario_file_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mine = ["fig2a-", "fig3a-", "fig5-", "sampler-"]
            .iter()
            .any(|p| name.starts_with(p));
        if mine && name.ends_with(".toml") {
            let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(sc.sampler().is_some(), "{name} has a [sampler] table");
            n += 1;
        }
    }
    assert!(n >= 13, "found {n} scenario files");
}
