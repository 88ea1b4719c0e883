//! The valley floor Γ and the reduced theory along a curved valley (`theory::curved`).

use flatscape::landscape::{Loss2d, Valley2d};
use flatscape::noise::{Noise, sym_abs_pow};
use flatscape::theory::curved::{
    CurvedTheory, NormalLaw, ValleyCurve, marginal_along, solve, trace_valley,
};
use flatscape::theory::{marginal_x_reduced, quad};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

const UNBOUNDED: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

/// Matrix factorisation L = ½(xy − 1)²: minima on the hyperbola xy = 1.
#[derive(Clone, Copy)]
pub(crate) struct MatrixFactorisation;

impl Loss2d for MatrixFactorisation {
    fn loss(&self, x: f64, y: f64) -> f64 {
        0.5 * (x * y - 1.0).powi(2)
    }
    fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        let r = x * y - 1.0;
        [r * y, r * x]
    }
    fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let off = 2.0 * x * y - 1.0;
        [[y * y, off], [off, x * x]]
    }
}

/// A parabolic valley L = ½k(y − x²)² + ½ε x² (ε = 0: minima on y = x²).
pub(crate) struct Parabola {
    pub(crate) k: f64,
    pub(crate) epsilon: f64,
}

impl Loss2d for Parabola {
    fn loss(&self, x: f64, y: f64) -> f64 {
        0.5 * self.k * (y - x * x).powi(2) + 0.5 * self.epsilon * x * x
    }
    fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        let r = y - x * x;
        [-2.0 * self.k * x * r + self.epsilon * x, self.k * r]
    }
    fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let r = y - x * x;
        let off = -2.0 * self.k * x;
        [
            [4.0 * self.k * x * x - 2.0 * self.k * r + self.epsilon, off],
            [off, self.k],
        ]
    }
}

/// ∫_a^b f by composite Gauss–Legendre (5 points) on `panels` panels.
pub(crate) fn gauss(f: impl Fn(f64) -> f64, a: f64, b: f64, panels: usize) -> f64 {
    const X: [f64; 5] = [
        0.0,
        -0.538_469_310_105_683_1,
        0.538_469_310_105_683_1,
        -0.906_179_845_938_664,
        0.906_179_845_938_664,
    ];
    const W: [f64; 5] = [
        0.568_888_888_888_888_9,
        0.478_628_670_499_366_5,
        0.478_628_670_499_366_5,
        0.236_926_885_056_189_1,
        0.236_926_885_056_189_1,
    ];
    let h = (b - a) / panels as f64;
    (0..panels)
        .map(|p| {
            let c = a + (p as f64 + 0.5) * h;
            (0..5).map(|i| W[i] * f(c + 0.5 * h * X[i])).sum::<f64>() * 0.5 * h
        })
        .sum()
}

/// max |a − b| relative to the peak of b.
pub(crate) fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let peak = b.iter().copied().fold(0.0_f64, f64::max);
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs() / peak)
        .fold(0.0, f64::max)
}

#[test]
fn tracer_follows_the_hyperbola_with_exact_arclength_and_curvature() {
    let curve = trace_valley(
        &MatrixFactorisation,
        [1.2, 0.9],
        [[0.3, 3.0], [0.3, 3.0]],
        0.01,
        f64::INFINITY,
    )
    .unwrap();
    let (mut e_s, mut e_k, mut e_l, mut e_floor) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    let i0 = curve.s.iter().position(|&s| s == 0.0).unwrap();
    // The corrector moves the start along the sharp eigenvector onto the hyperbola.
    assert!((curve.x[i0] * curve.y[i0] - 1.0).abs() < 1e-13);
    let x0 = curve.x[i0];
    for k in 0..curve.len() {
        let (x, y) = (curve.x[k], curve.y[k]);
        e_floor = e_floor.max((x * y - 1.0).abs());
        // s(x) = ∫_{x0}^{x} √(1 + t⁻⁴) dt, κ = 2x³/(x⁴ + 1)^{3/2}, λ = x² + y².
        let s = gauss(|t| (1.0 + t.powi(-4)).sqrt(), x0, x, 64);
        e_s = e_s.max((curve.s[k] - s).abs());
        let kappa = 2.0 * x.powi(3) / (x.powi(4) + 1.0).powf(1.5);
        e_k = e_k.max((curve.curvature[k] - kappa).abs());
        e_l = e_l.max((curve.lambda_sharp[k] - (x * x + y * y)).abs());
        assert!(curve.lambda_soft[k].abs() < 1e-12);
    }
    println!(
        "hyperbola: {} points, length {:.6}, max |xy−1| {e_floor:.1e}, |Δs| {e_s:.1e}, |Δκ| {e_k:.1e}, |Δλ| {e_l:.1e}",
        curve.len(),
        curve.length()
    );
    assert!(e_floor < 1e-13);
    assert!(e_s < 1e-8, "arclength error {e_s}");
    assert!(e_k < 1e-6, "curvature error {e_k}");
    assert!(e_l < 1e-12);
    // Interpolated frames between nodes stay on the hyperbola, and projection inverts them.
    for &s in &[-0.731, 0.004, 0.5555, 1.9] {
        let f = curve.frame(s);
        assert!((f.point[0] * f.point[1] - 1.0).abs() < 1e-10);
        let th = [
            f.point[0] + 0.05 * f.normal[0],
            f.point[1] + 0.05 * f.normal[1],
        ];
        let (sp, n) = curve.project(th).unwrap();
        assert!(
            (sp - s).abs() < 1e-9 && (n - 0.05).abs() < 1e-9,
            "{s}: {sp} {n}"
        );
    }
}

#[test]
fn tracer_follows_the_parabola_with_exact_arclength_and_curvature() {
    let loss = Parabola {
        k: 4.0,
        epsilon: 0.0,
    };
    let curve = trace_valley(&loss, [0.0, 0.1], [[-1.5, 1.5], [-1.0, 3.0]], 0.01, 2.5).unwrap();
    assert_eq!(
        curve.stops,
        [
            flatscape::theory::curved::TraceStop::Length,
            flatscape::theory::curved::TraceStop::Length
        ]
    );
    let (mut e_s, mut e_k, mut e_dk) = (0.0_f64, 0.0_f64, 0.0_f64);
    for k in 0..curve.len() {
        let x = curve.x[k];
        assert!((curve.y[k] - x * x).abs() < 1e-13);
        let s = 0.5 * (x * (1.0 + 4.0 * x * x).sqrt() + 0.5 * (2.0 * x).asinh());
        let q = 1.0 + 4.0 * x * x;
        let kappa = 2.0 / q.powf(1.5);
        // dκ/ds = (dκ/dx)/(ds/dx) = −24x q^{−5/2} / √q.
        let dkappa = -24.0 * x / q.powi(3);
        e_s = e_s.max((curve.s[k] - s).abs());
        e_k = e_k.max((curve.curvature[k] - kappa).abs());
        e_dk = e_dk.max((curve.curvature_d1[k] - dkappa).abs());
        assert!((curve.lambda_sharp[k] - 4.0 * q).abs() < 1e-11);
    }
    println!("parabola: |Δs| {e_s:.1e}, |Δκ| {e_k:.1e}, |Δκ'| {e_dk:.1e}");
    assert!((curve.length() - 5.0).abs() < 0.011);
    assert!(e_s < 1e-8 && e_k < 1e-6 && e_dk < 1e-4);
}

#[test]
fn straight_valley_reduces_to_the_reduced_level() {
    let valley = Valley2d::paper();
    let curve = trace_valley(&valley, [0.0, 0.0], [[-1.6, 1.6], [-1.0, 1.0]], 0.01, 10.0).unwrap();
    let xs = quad::cell_centres(-1.5, 1.5, 300);
    let noises = [
        Noise::Hessian {
            eta: 0.01,
            sigma: 0.2,
            power: 2.0,
        },
        Noise::Hessian {
            eta: 0.01,
            sigma: 0.1,
            power: 1.0,
        },
        Noise::Anisotropic {
            delta: 0.01,
            kappa: 20.0,
        },
        Noise::Isotropic { temperature: 0.01 },
    ];
    for noise in &noises {
        let old = marginal_x_reduced(&valley, noise, &xs, UNBOUNDED);
        let new = solve(&valley, noise, &curve, &xs, UNBOUNDED, NormalLaw::Exact).unwrap();
        let e = max_rel(&new.density, &old);
        println!("straight valley, {noise:?}: max |Δp|/max p = {e:.1e}");
        assert!(e < 1e-10, "{noise:?}: {e}");
        for (x, xc) in xs.iter().zip(&new.x) {
            assert!((x - xc).abs() < 1e-12);
        }
        for (x, l) in xs.iter().zip(&new.lambda) {
            assert!((l - valley.lambda_at(*x)).abs() < 1e-12 * l);
        }
    }
}

/// p(s) = ∫ (1 − κ_Γ n) e^{−L/T} dn over n in `tube` by Gauss–Legendre across Γ, normalised on
/// the points.
fn boltzmann_along(
    loss: &impl Loss2d,
    curve: &ValleyCurve,
    s_points: &[f64],
    t: f64,
    tube: (f64, f64),
) -> Vec<f64> {
    let log_p: Vec<f64> = s_points
        .iter()
        .map(|&s| {
            let f = curve.frame(s);
            let h = loss.hessian(f.point[0], f.point[1]);
            let nv = f.normal;
            let lam = nv[0] * (h[0][0] * nv[0] + h[0][1] * nv[1])
                + nv[1] * (h[1][0] * nv[0] + h[1][1] * nv[1]);
            let w = 14.0 * (t / lam).sqrt();
            let (mut lo, mut hi) = (tube.0.max(-w), tube.1.min(w));
            if f.curvature > 0.0 {
                hi = hi.min(0.9 / f.curvature);
            } else if f.curvature < 0.0 {
                lo = lo.max(0.9 / f.curvature);
            }
            let l0 = loss.loss(f.point[0], f.point[1]);
            let z = gauss(
                |n| {
                    let th = [f.point[0] + n * nv[0], f.point[1] + n * nv[1]];
                    (1.0 - f.curvature * n) * (-(loss.loss(th[0], th[1]) - l0) / t).exp()
                },
                lo,
                hi,
                200,
            );
            z.ln() - l0 / t
        })
        .collect();
    quad::normalise_log_density(s_points, &log_p)
}

/// Relative max error of the exact and Gaussian laws against the Boltzmann density along Γ.
fn isotropic_errors(
    loss: &impl Loss2d,
    curve: &ValleyCurve,
    s_points: &[f64],
    t: f64,
    tube: (f64, f64),
) -> (f64, f64, CurvedTheory) {
    let noise = Noise::Isotropic { temperature: t };
    let reference = boltzmann_along(loss, curve, s_points, t, tube);
    let exact = solve(loss, &noise, curve, s_points, tube, NormalLaw::Exact).unwrap();
    let gaussian = solve(loss, &noise, curve, s_points, tube, NormalLaw::Gaussian).unwrap();
    (
        max_rel(&exact.density, &reference),
        max_rel(&gaussian.density, &reference),
        exact,
    )
}

/// Errors of the exact and Gaussian laws at a temperature T.
type ErrorsAt<'a> = dyn Fn(f64) -> (f64, f64, CurvedTheory) + 'a;

fn observed_orders(ts: &[f64], e: &[f64]) -> Vec<f64> {
    e.windows(2)
        .zip(ts.windows(2))
        .map(|(e, t)| (e[0] / e[1]).ln() / (t[0] / t[1]).ln())
        .collect()
}

#[test]
fn isotropic_noise_gives_the_boltzmann_density_along_curved_valleys() {
    let ts = [0.02, 0.01, 0.005, 0.0025, 0.00125];
    let mf = MatrixFactorisation;
    let hyperbola = trace_valley(&mf, [1.0, 1.0], [[0.4, 2.5], [0.4, 2.5]], 0.01, 10.0).unwrap();
    let parabola_loss = Parabola {
        k: 4.0,
        epsilon: 0.2,
    };
    let parabola = trace_valley(
        &parabola_loss,
        [0.0, 0.0],
        [[-1.3, 1.3], [-1.0, 2.0]],
        0.01,
        10.0,
    )
    .unwrap();
    let cases: [(&str, &ErrorsAt, (f64, f64)); 2] = [
        (
            "hyperbola xy = 1",
            &|t| {
                let (a, b) = hyperbola.s_range();
                let sp = quad::cell_centres(a + 0.05, b - 0.05, 800);
                isotropic_errors(&mf, &hyperbola, &sp, t, (-0.7, 0.7))
            },
            hyperbola.s_range(),
        ),
        (
            "tilted parabola",
            &|t| {
                let (a, b) = parabola.s_range();
                let sp = quad::cell_centres(a + 0.05, b - 0.05, 800);
                isotropic_errors(&parabola_loss, &parabola, &sp, t, (-0.4, 0.4))
            },
            parabola.s_range(),
        ),
    ];
    for (name, run, range) in cases {
        let mut e_gauss = Vec::new();
        for &t in &ts {
            let (e_exact, e_g, _) = run(t);
            println!(
                "{name} (s in [{:.3}, {:.3}]), T = {t}: exact law {e_exact:.1e}, Gaussian law {e_g:.2e}",
                range.0, range.1
            );
            assert!(e_exact < 1e-8, "{name}, T = {t}: {e_exact}");
            e_gauss.push(e_g);
        }
        let orders = observed_orders(&ts, &e_gauss);
        println!("{name}: observed orders of the Gaussian law {orders:.3?}");
        // At least first order (1.0 on the hyperbola; 1.5 on the tilted parabola, where the
        // density shrinks to a window of width √(T/ε) in which the O(T) correction varies ∝ s²).
        for p in orders {
            assert!(p > 0.9, "{name}: order {p}");
        }
    }
}

#[test]
fn cartesian_density_integrated_across_the_hyperbola_matches_the_theory() {
    let mf = MatrixFactorisation;
    let curve = trace_valley(&mf, [1.0, 1.0], [[0.5, 2.0], [0.5, 2.0]], 0.005, 10.0).unwrap();
    let t = 0.01;
    let (a, b) = curve.s_range();
    let s_bins = quad::cell_centres(a + 0.1, b - 0.1, 39);
    let mut errs = Vec::new();
    for cells in [400usize, 800, 1600] {
        // Incommensurate x and y spacings: on a square lattice the cell centres line up along
        // normal lines of rational slope, and whole-cell assignment then errs by O(h) there.
        let xs = quad::cell_centres(0.0, 3.0, cells);
        let ys = quad::cell_centres(0.0, 3.01, cells + 7);
        let values: Vec<f64> = xs
            .iter()
            .flat_map(|&x| ys.iter().map(move |&y| (-mf.loss(x, y) / t).exp()))
            .collect();
        let fp = marginal_along(&curve, &xs, &ys, &values, &s_bins, 0.6);
        // The theory averaged over each s-bin (10 sub-points per bin).
        let h = quad::uniform_spacing(&s_bins);
        let fine = quad::cell_centres(s_bins[0] - 0.5 * h, s_bins[38] + 0.5 * h, 390);
        let th = solve(
            &mf,
            &Noise::Isotropic { temperature: t },
            &curve,
            &fine,
            (-0.6, 0.6),
            NormalLaw::Exact,
        )
        .unwrap();
        let binned: Vec<f64> = th
            .density
            .chunks(10)
            .map(|c| c.iter().sum::<f64>() / 10.0)
            .collect();
        let e = max_rel(&fp, &binned);
        println!(
            "Cartesian {cells}×{} cells, 39 s-bins: max |Δp|/max p = {e:.2e}",
            cells + 7
        );
        errs.push(e);
    }
    println!(
        "observed order in the cell size: {:.2}, {:.2}",
        (errs[0] / errs[1]).log2(),
        (errs[1] / errs[2]).log2()
    );
    // Whole-cell assignment errs at each s-bin edge by a sum of ~w/h cut cells of random sign:
    // relative error ≈ h^{3/2}/(√w Δs) ≈ 2.5e-3 at h = 1/530, tube width w ≈ 0.2, Δs = 0.086.
    assert!(errs[2] < 5e-3 && errs[2] < errs[0] / 4.0);
}

/// ⟨f(s, x, y)⟩ of a Langevin walk dθ = −∇L dt + √(2Δ_S)|H| dW on the hyperbola: one
/// time-average per walker (s from the nearest point of Γ), returned per walker.
fn langevin_walkers(
    curve: &ValleyCurve,
    delta_s: f64,
    walkers: usize,
    dt: f64,
    burn: usize,
    steps: usize,
    every: usize,
) -> Vec<[f64; 3]> {
    let mf = MatrixFactorisation;
    (0..walkers)
        .into_par_iter()
        .map(|w| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5eed_0000 + w as u64);
            let (mut x, mut y) = (1.0_f64, 1.0_f64);
            let amp = (2.0 * delta_s * dt).sqrt();
            let mut acc = [0.0; 3];
            let mut count = 0.0;
            let mut s_guess = 0.0;
            for k in 0..burn + steps {
                let g = mf.gradient(x, y);
                let m = sym_abs_pow(mf.hessian(x, y), 1.0);
                let (z1, z2): (f64, f64) = (
                    StandardNormal.sample(&mut rng),
                    StandardNormal.sample(&mut rng),
                );
                x += -g[0] * dt + amp * (m[0][0] * z1 + m[0][1] * z2);
                y += -g[1] * dt + amp * (m[1][0] * z1 + m[1][1] * z2);
                if k >= burn && (k - burn).is_multiple_of(every) {
                    let (s, _) = curve
                        .project_from([x, y], s_guess)
                        .or_else(|| curve.project([x, y]))
                        .expect("walker within the traced hyperbola");
                    s_guess = s;
                    acc[0] += s;
                    acc[1] += s * s;
                    acc[2] += (x.abs() / y.abs()).ln().powi(2);
                    count += 1.0;
                }
            }
            acc.map(|v| v / count)
        })
        .collect()
}

#[test]
fn hessian_noise_on_the_matrix_factorisation_valley_peaks_at_the_balanced_point() {
    let mf = MatrixFactorisation;
    let curve = trace_valley(&mf, [1.0, 1.0], [[0.25, 4.0], [0.25, 4.0]], 0.005, 10.0).unwrap();
    // λ(s) = x² + y² along Γ; the flattest point is the balanced one.
    for k in 0..curve.len() {
        let (x, y) = (curve.x[k], curve.y[k]);
        assert!((curve.lambda_sharp[k] - (x * x + y * y)).abs() < 1e-12);
    }
    let delta_s = 0.01;
    let noise = Noise::Hessian {
        eta: 0.1,
        sigma: delta_s / 0.1,
        power: 2.0,
    };
    let s_points = quad::cell_centres(-1.2, 1.2, 481);
    // A tube of half-width 0.6: on the convex side the normal lines run through the origin
    // to the other branch (n = −2√2 at the balanced point), where "across Γ" stops meaning
    // anything; the walkers below leave the tube rarely.
    let th = solve(
        &mf,
        &noise,
        &curve,
        &s_points,
        (-0.6, 0.6),
        NormalLaw::Exact,
    )
    .unwrap();
    let peak = (0..s_points.len())
        .max_by(|&a, &b| th.density[a].total_cmp(&th.density[b]))
        .unwrap();
    let (xp, yp) = (th.x[peak], th.y[peak]);
    println!(
        "Δ_S = {delta_s}: p(s) peaks at s = {:.4} (x, y) = ({xp:.4}, {yp:.4}); κ(0) = {:.3}, a(0) = {:.3e}, Δ(0) = {:.3e}",
        s_points[peak], th.kappa[240], th.delta_along[240], th.delta_across[240]
    );
    assert!(s_points[peak].abs() <= 0.5 * quad::uniform_spacing(&s_points) + 1e-12);
    assert!((xp - 1.0).abs() < 0.01 && (yp - 1.0).abs() < 0.01);
    // The density is even in s (the x ↔ y symmetry) and falls off on both sides.
    let n = s_points.len();
    for i in 0..n / 2 {
        assert!((th.density[i] - th.density[n - 1 - i]).abs() < 1e-6 * th.density[peak]);
    }
    let ds = quad::uniform_spacing(&s_points);
    let moment = |f: &dyn Fn(usize) -> f64| (0..n).map(|i| th.density[i] * f(i) * ds).sum::<f64>();
    let var_s = moment(&|i| s_points[i] * s_points[i]);
    let log_ratio2 = moment(&|i| (th.x[i] / th.y[i]).ln().powi(2));

    // Langevin walkers (Euler–Maruyama, fixed seeds).
    for tube in [0.4, 0.8] {
        let t = solve(
            &mf,
            &noise,
            &curve,
            &s_points,
            (-tube, tube),
            NormalLaw::Exact,
        )
        .unwrap();
        let v: f64 = (0..n)
            .map(|i| t.density[i] * s_points[i].powi(2) * ds)
            .sum();
        println!("tube ±{tube}: ⟨s²⟩ = {v:.5}");
    }
    let (walkers, dt) = (600, 0.01);
    let per = langevin_walkers(&curve, delta_s, walkers, dt, 10000, 40000, 10);
    let stats = |j: usize| {
        let m = per.iter().map(|v| v[j]).sum::<f64>() / walkers as f64;
        let var = per.iter().map(|v| (v[j] - m).powi(2)).sum::<f64>() / (walkers - 1) as f64;
        (m, (var / walkers as f64).sqrt())
    };
    let (mean_s, se_mean_s) = stats(0);
    let (s2, se_s2) = stats(1);
    let (lr2, se_lr2) = stats(2);
    println!(
        "Langevin ({walkers} walkers, dt = {dt}, t = 400 after 100): ⟨s⟩ = {mean_s:.4} ± {se_mean_s:.4}, ⟨s²⟩ = {s2:.5} ± {se_s2:.5}, ⟨ln(|x|/|y|)²⟩ = {lr2:.5} ± {se_lr2:.5}"
    );
    println!(
        "reduced theory along Γ: ⟨s²⟩ = {var_s:.5}, ⟨ln(x/y)²⟩ on Γ = {log_ratio2:.5}; ratio Langevin/theory ⟨s²⟩ = {:.3}",
        s2 / var_s
    );
    // The walk's mean sits at the balanced point within its standard error (4 SE).
    assert!(
        mean_s.abs() < 4.0 * se_mean_s,
        "⟨s⟩ = {mean_s} ± {se_mean_s}"
    );
}

/// A hill L = −½(x² + y²): no valley anywhere.
struct Hill;

impl Loss2d for Hill {
    fn loss(&self, x: f64, y: f64) -> f64 {
        -0.5 * (x * x + y * y)
    }
    fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        [-x, -y]
    }
    fn hessian(&self, _x: f64, _y: f64) -> [[f64; 2]; 2] {
        [[-1.0, 0.0], [0.0, -1.0]]
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    use flatscape::theory::curved::{CurvedError, TraceError};
    let b = [[0.3, 3.0], [0.3, 3.0]];
    assert!(matches!(
        trace_valley(&Hill, [1.0, 1.0], b, 0.01, 1.0),
        Err(TraceError::StartNotInValley(_))
    ));
    for ds in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            trace_valley(&MatrixFactorisation, [1.0, 1.0], b, ds, 1.0),
            Err(TraceError::BadInput(_))
        ));
    }
    assert!(matches!(
        trace_valley(
            &MatrixFactorisation,
            [1.0, 1.0],
            [[1.5, 3.0], [0.3, 3.0]],
            0.01,
            1.0
        ),
        Err(TraceError::BadInput(_))
    ));
    assert!(matches!(
        trace_valley(&MatrixFactorisation, [1.0, 1.0], b, 0.5, 1.0),
        Err(TraceError::TooShort(_))
    ));
    let curve = trace_valley(&MatrixFactorisation, [1.0, 1.0], b, 0.01, 1.0).unwrap();
    let iso = Noise::Isotropic { temperature: 0.01 };
    let outside = quad::cell_centres(-2.0, 0.5, 50);
    assert!(matches!(
        solve(
            &MatrixFactorisation,
            &iso,
            &curve,
            &outside,
            (-0.5, 0.5),
            NormalLaw::Exact
        ),
        Err(CurvedError::BadPoints(_))
    ));
    let inside = quad::cell_centres(-0.5, 0.5, 50);
    let gd = Noise::Hessian {
        eta: 0.1,
        sigma: 0.0,
        power: 2.0,
    };
    let e = solve(
        &MatrixFactorisation,
        &gd,
        &curve,
        &inside,
        (-0.5, 0.5),
        NormalLaw::Exact,
    )
    .unwrap_err();
    assert!(matches!(e, CurvedError::NoNoiseAlong(_)), "{e}");
    assert!(e.to_string().contains("no noise along the valley floor"));
}

/// `[valley_curve]` end to end on the matrix-factorisation expression: the FP density integrated
/// across Γ peaks at the balanced point and agrees with the theory along Γ; a start point with no
/// valley floor is an error naming `valley_curve.start`.
#[test]
fn valley_curve_section_compares_fp_and_theory_along_the_hyperbola() {
    use flatscape::config::NoProgress;
    use flatscape::scenario::Scenario;
    let src = |start: &str| {
        format!(
            "name = \"mf\"\n[landscape]\nkind = \"expression\"\nloss = \"0.5*(x*y - 1)^2\"\n[noise]\nkind = \"hessian\"\neta = 0.1\nsigma = 0.05\n[fokker_planck]\nx = {{ min = 0.55, max = 1.6, cells = 160 }}\ny = {{ min = 0.55, max = 1.6, cells = 160 }}\n[valley_curve]\nstart = {start}\ntube = 0.12\npoints = 60\n"
        )
    };
    let sc = Scenario::from_toml_str(&src("[1.0, 1.0]"), std::path::Path::new("mf.toml")).unwrap();
    let art = flatscape::study::run(&sc, &NoProgress).unwrap();
    let c = art.summary.valley_curve.expect("valley_curve summary");
    let fp = c.fp.expect("FP along s");
    eprintln!(
        "theory peak {:?} std_s {:.4}; FP peak {:?} std_s {:.4}; L1 {:.3}",
        c.theory.peak,
        c.theory.std_s,
        fp.peak,
        fp.std_s,
        c.l1_fp_theory.unwrap()
    );
    let ds = 1.05 / 60.0 * 2.0;
    for p in [c.theory.peak, fp.peak] {
        assert!(
            (p.x - 1.0).abs() < ds && (p.y - 1.0).abs() < ds,
            "peak {p:?}"
        );
    }
    assert!((fp.std_s / c.theory.std_s - 1.0).abs() < 0.05);
    assert!(c.l1_fp_theory.unwrap() < 0.1);
    let err = Scenario::from_toml_str(&src("[3.0, 0.2]"), std::path::Path::new("mf.toml"))
        .map(|_| ())
        .expect_err("a start outside the FP box is an error");
    assert!(err.to_string().contains("valley_curve"), "{err}");
}
