//! Fokker–Planck solver against closed forms: Boltzmann equilibrium, Ornstein–Uhlenbeck
//! moments (steady and transient) with observed convergence order, mass conservation,
//! positivity, the adiabatic limit of Eq. (11), and the flat-minimum shift under Hessian noise.

use flatscape::config::{AxisConfig, NoProgress};
use flatscape::fp::grid::Grid;
use flatscape::fp::nested::NestedDissection;
use flatscape::fp::operator::assemble;
use flatscape::fp::steady::solve_steady;
use flatscape::fp::transient::TrBdf2;
use flatscape::fp::{self, initial_density, moments};
use flatscape::fp::{CrossDiffusionScheme, FokkerPlanckConfig, FpPlan, FpSolution, InitialConfig};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;

/// The FP solution of a valid configuration.
fn run_fp(
    valley: &flatscape::landscape::Valley2d,
    noise: &flatscape::noise::Noise,
    cfg: &FokkerPlanckConfig,
) -> FpSolution {
    let plan = FpPlan::new(valley.clone(), noise.clone(), cfg.clone()).expect("valid");
    fp::solve(&plan, &NoProgress).expect("solves")
}

fn axis(min: f64, max: f64, cells: usize) -> AxisConfig {
    AxisConfig { min, max, cells }
}

fn config(x: AxisConfig, y: AxisConfig) -> FokkerPlanckConfig {
    FokkerPlanckConfig::steady(x, y)
}

#[test]
fn steady_state_is_boltzmann_for_isotropic_noise() {
    let valley = Valley2d {
        epsilon: 0.05,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let t = 0.05;
    let noise = Noise::Isotropic { temperature: t };
    let cfg = config(axis(-1.6, 1.6, 96), axis(-0.6, 0.6, 64));
    let res = run_fp(&valley, &noise, &cfg);
    let g = res.grid;
    let mut boltz: Vec<f64> = (0..g.len())
        .map(|k| (-valley.loss(g.x(k / g.ny), g.y(k % g.ny)) / t).exp())
        .collect();
    let z = g.mass(&boltz);
    boltz.iter_mut().for_each(|v| *v /= z);
    let max_rel = res
        .density
        .iter()
        .zip(&boltz)
        .map(|(p, b)| (p - b).abs() / b)
        .fold(0.0f64, f64::max);
    assert!(
        max_rel <= 1e-8,
        "max relative deviation from exp(-L/T): {max_rel:e}"
    );
    assert!(
        (res.summary.mass - 1.0).abs() <= 1e-12,
        "mass {}",
        res.summary.mass
    );
    assert!(res.summary.steady_residual.unwrap() < 1e-10);
    assert_eq!(res.summary.negative_mass, 0.0);
}

/// OU process: L = ½ ε λ0 x² + ½ λ0 y² (drift −A θ, A = diag(ελ0, λ0)) with a full constant D.
struct Ou {
    valley: Valley2d,
    noise: Noise,
    a: [f64; 2],
    d: [[f64; 2]; 2],
}

impl Ou {
    fn new() -> Self {
        let d = [[0.05, 0.02], [0.02, 0.04]];
        Self {
            valley: Valley2d {
                epsilon: 0.5,
                lambda: vec![2.0],
            },
            noise: Noise::Constant { d },
            a: [1.0, 2.0],
            d,
        }
    }

    /// Lyapunov solution of A Σ + Σ A = 2D for diagonal A.
    fn sigma_inf(&self) -> [[f64; 2]; 2] {
        std::array::from_fn(|i| {
            std::array::from_fn(|j| 2.0 * self.d[i][j] / (self.a[i] + self.a[j]))
        })
    }

    /// Exact mean and covariance at time t from N(m0, diag(s0²)).
    fn at(&self, t: f64, m0: [f64; 2], s0: [f64; 2]) -> ([f64; 2], [[f64; 2]; 2]) {
        let inf = self.sigma_inf();
        let e = [(-self.a[0] * t).exp(), (-self.a[1] * t).exp()];
        let mean = [e[0] * m0[0], e[1] * m0[1]];
        let mut cov = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                let c0 = if i == j { s0[i] * s0[i] } else { 0.0 };
                cov[i][j] = e[i] * e[j] * (c0 - inf[i][j]) + inf[i][j];
            }
        }
        (mean, cov)
    }
}

fn cov_error(m: &fp::Moments, cov: [[f64; 2]; 2]) -> f64 {
    (m.var_x - cov[0][0])
        .abs()
        .max((m.var_y - cov[1][1]).abs())
        .max((m.cov_xy - cov[0][1]).abs())
}

#[test]
fn ornstein_uhlenbeck_steady_covariance_converges_at_second_order() {
    let ou = Ou::new();
    let exact = ou.sigma_inf();
    let mut errors = Vec::new();
    for &n in &[16usize, 32, 64, 128] {
        let cfg = config(axis(-1.5, 1.5, n), axis(-1.0, 1.0, n));
        let res = run_fp(&ou.valley, &ou.noise, &cfg);
        let m = moments(&res.grid, &ou.valley, &res.density, 0.0);
        assert!(
            m.mean_x.abs() < 1e-12 && m.mean_y.abs() < 1e-12,
            "mean {m:?}"
        );
        errors.push(cov_error(&m, exact));
    }
    let orders: Vec<f64> = errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    eprintln!("OU steady covariance errors {errors:?}, observed orders {orders:.3?}");
    // Absolute accuracy on the finest grid: 0.1 % of the largest covariance entry (0.05).
    assert!(
        errors[3] < 5e-5,
        "finest-grid covariance error {:e}",
        errors[3]
    );
    for &p in &orders[1..] {
        assert!((1.8..2.3).contains(&p), "observed order {p}");
    }
}

#[test]
fn ornstein_uhlenbeck_transient_moments_converge_at_second_order() {
    let ou = Ou::new();
    let (m0, s0) = ([0.5, 0.3], [0.15, 0.12]);
    let (mean, cov) = ou.at(1.0, m0, s0);
    let mut errors = Vec::new();
    for &(n, steps) in &[(16usize, 10usize), (32, 20), (64, 40), (128, 80)] {
        let grid = Grid::new(&axis(-1.5, 1.5, n), &axis(-1.0, 1.0, n));
        let a = assemble(&grid, &ou.valley, &ou.noise, CrossDiffusionScheme::Central);
        let nd = NestedDissection::new(grid.nx, grid.ny, None);
        let mut p = initial_density(&grid, &InitialConfig::Gaussian { mean: m0, std: s0 });
        let mut stepper = TrBdf2::new(&a, &nd, 1.0 / steps as f64).unwrap();
        for _ in 0..steps {
            stepper.step(&mut p);
        }
        let m = moments(&grid, &ou.valley, &p, 1.0);
        let err = cov_error(&m, cov)
            .max((m.mean_x - mean[0]).abs())
            .max((m.mean_y - mean[1]).abs());
        errors.push(err);
    }
    let orders: Vec<f64> = errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    eprintln!("OU transient errors at t = 1 {errors:?}, observed orders {orders:.3?}");
    // Absolute accuracy on the finest grid: 1 % of the largest covariance entry (≈ 0.05).
    assert!(errors[3] < 5e-4, "finest error {:e}", errors[3]);
    for &p in &orders[1..] {
        assert!((1.7..2.4).contains(&p), "observed order {p}");
    }
}

#[test]
fn mass_is_conserved_and_density_stays_positive_over_1000_steps() {
    let valley = Valley2d::paper();
    let noise = Noise::Anisotropic {
        delta: 0.02,
        kappa: 4.0,
    };
    let grid = Grid::new(&axis(-1.6, 1.6, 64), &axis(-0.4, 0.4, 40));
    let a = assemble(&grid, &valley, &noise, CrossDiffusionScheme::Central);
    let nd = NestedDissection::new(grid.nx, grid.ny, None);
    let mut p = initial_density(
        &grid,
        &InitialConfig::Gaussian {
            mean: [1.0, 0.2],
            std: [0.1, 0.05],
        },
    );
    let mass0 = grid.mass(&p);
    let mut stepper = TrBdf2::new(&a, &nd, 0.01).unwrap();
    let mut min_p = f64::INFINITY;
    for _ in 0..1000 {
        stepper.step(&mut p);
        min_p = min_p.min(p.iter().copied().fold(f64::INFINITY, f64::min));
    }
    let drift = (grid.mass(&p) - mass0).abs();
    eprintln!("mass drift over 1000 TR-BDF2 steps {drift:e}, min density {min_p:e}");
    assert!(drift < 1e-12, "mass drift {drift:e}");
    assert!(min_p >= 0.0, "negative density {min_p:e}");
}

#[test]
fn steady_state_with_diagonal_noise_is_non_negative_and_solves_the_generator() {
    let valley = Valley2d::paper();
    let noise = Noise::Anisotropic {
        delta: 0.01,
        kappa: 4.0,
    };
    let grid = Grid::new(&axis(-1.6, 1.6, 100), &axis(-0.25, 0.25, 60));
    let a = assemble(&grid, &valley, &noise, CrossDiffusionScheme::Central);
    let ss = solve_steady(&a).unwrap();
    assert!(ss.density.iter().all(|&v| v >= 0.0));
    assert!(ss.residual < 1e-10, "residual {:e}", ss.residual);
    assert!((ss.mass - 1.0).abs() < 1e-12);
}

/// L1 distance of the FP x-marginal from λ(x)^(−κ/2) normalised on the same grid (Eq. 11).
fn l1_to_eq11(delta: f64, kappa: f64) -> f64 {
    let valley = Valley2d {
        epsilon: 0.0,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let noise = Noise::Anisotropic { delta, kappa };
    let cfg = config(axis(-1.6, 1.6, 160), axis(-0.3, 0.3, 120));
    let res = run_fp(&valley, &noise, &cfg);
    let g = res.grid;
    let fp_x = g.marginal_x(&res.density);
    let mut th: Vec<f64> = g
        .xs()
        .iter()
        .map(|&x| valley.lambda_at(x).powf(-0.5 * kappa))
        .collect();
    let z: f64 = th.iter().sum::<f64>() * g.dx;
    th.iter_mut().for_each(|v| *v /= z);
    fp_x.iter()
        .zip(&th)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        * g.dx
}

#[test]
fn anisotropic_x_marginal_approaches_eq11_as_delta_shrinks() {
    let kappa = 4.0;
    let l1: Vec<f64> = [0.02, 0.01, 0.005]
        .iter()
        .map(|&d| l1_to_eq11(d, kappa))
        .collect();
    eprintln!("L1(FP x-marginal, λ^(-κ/2)) for Δ = 0.02, 0.01, 0.005: {l1:.5?}");
    assert!(l1[1] < l1[0] && l1[2] < l1[1], "L1 does not shrink: {l1:?}");
    assert!(l1[2] < 0.05, "L1 at Δ = 0.005 is {}", l1[2]);
}

fn hessian_marginal_mode(sigma: f64, y_half: f64) -> (f64, f64) {
    let valley = Valley2d::paper();
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma,
        power: 2.0,
    };
    let cfg = config(axis(-1.6, 1.6, 640), axis(-y_half, y_half, 240));
    let res = run_fp(&valley, &noise, &cfg);
    (res.summary.mode_abs_x, res.summary.negative_mass)
}

#[test]
fn hessian_noise_moves_the_x_marginal_peak_to_the_flatter_region() {
    // Δ_S = ησ = 0.002 > Δ_S* = 0.0005: the peak leaves the global minimum x* = 0.
    let (mode, neg) = hessian_marginal_mode(0.2, 0.6);
    eprintln!("Δ_S = 0.002: mode |x| = {mode:.4}, negative mass {neg:e}");
    assert!((mode - 0.85).abs() < 0.05, "mode |x| = {mode}");
    assert!(neg < 1e-6, "negative mass {neg:e}");
    // Δ_S = 0.0002 < Δ_S*: the peak stays at x* = 0.
    let (mode, neg) = hessian_marginal_mode(0.02, 0.25);
    eprintln!("Δ_S = 0.0002: mode |x| = {mode:.4}, negative mass {neg:e}");
    assert!(mode < 0.02, "mode |x| = {mode}");
    assert!(neg < 1e-6, "negative mass {neg:e}");
}

/// `symmetry = "auto"` (the quarter-grid sectors of the symmetric valley) and `"off"` (the whole
/// grid) give the same steady density and the same slowest rates; the sector's LU is smaller.
/// The hopping rate here (9.4e-6) is slow but not exponentially small, so the whole-grid search
/// resolves the even/odd pairs too.
#[test]
fn symmetry_sectors_and_the_whole_grid_agree() {
    let valley = Valley2d::paper();
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.03,
        power: 2.0,
    };
    let auto = FokkerPlanckConfig {
        eigenvalues: 4,
        ..config(axis(-1.2, 1.2, 48), axis(-0.4, 0.4, 30))
    };
    let off = FokkerPlanckConfig {
        symmetry: fp::Symmetry::Off,
        ..auto.clone()
    };
    let (a, o) = (
        run_fp(&valley, &noise, &auto),
        run_fp(&valley, &noise, &off),
    );
    // The whole grid's density carries an odd part from rounding, amplified by the slow
    // inter-well rate; the sectors have none. Compare the part even under both mirrors.
    let g = o.grid;
    let even: Vec<f64> = (0..g.len())
        .map(|k| {
            let (i, j) = (k / g.ny, k % g.ny);
            let (mi, mj) = (g.nx - 1 - i, g.ny - 1 - j);
            let d = &o.density;
            0.25 * (d[k] + d[g.index(mi, j)] + d[g.index(i, mj)] + d[g.index(mi, mj)])
        })
        .collect();
    let top = even.iter().fold(0.0f64, |m, v| m.max(*v));
    let diff = a
        .density
        .iter()
        .zip(&even)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
        / top;
    let (ra, ro) = (
        a.summary.relaxation_rates.unwrap(),
        o.summary.relaxation_rates.unwrap(),
    );
    println!(
        "density {diff:.1e} of the peak; LU entries {:?} vs {:?}; rates {:?} vs {:?}",
        a.summary.steady_factor_entries,
        o.summary.steady_factor_entries,
        ra.iter().map(|r| r.rate).collect::<Vec<_>>(),
        ro.iter().map(|r| r.rate).collect::<Vec<_>>()
    );
    assert!(diff <= 1e-12, "{diff:e}");
    assert!(
        4 * a.summary.steady_factor_entries.unwrap() < o.summary.steady_factor_entries.unwrap()
    );
    assert_eq!(ra.len(), 4);
    for (p, q) in ra.iter().zip(&ro) {
        assert!((p.rate - q.rate).abs() <= 1e-8 * q.rate, "{p:?} vs {q:?}");
    }
}
