//! The three routes against each other on Hessian noise, paper landscape (ε = 0.001,
//! λ = [8, −2, 1]): Fokker–Planck vs Langevin walkers (the same continuous dynamics), and both
//! against the reduced adiabatic-elimination theory.

use std::path::Path;

use flatscape::config::NoProgress;
use flatscape::fp;
use flatscape::sampler;
use flatscape::scenario::Scenario;
use flatscape::study::l1_distance;
use flatscape::theory;

/// One flat well (x ∈ [0.55, 1.15]) at noise level Δ_S = ησ with ε; `nx` x-cells.
fn one_well(epsilon: f64, sigma: f64, y_half: f64, nx: usize, sampler: &str) -> Scenario {
    let src = format!(
        r#"name = "one-well"
seed = 11
[landscape]
kind = "valley2d"
epsilon = {epsilon}
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.01
sigma = {sigma}
[fokker_planck]
x = {{ min = 0.55, max = 1.15, cells = {nx} }}
y = {{ min = -{y_half}, max = {y_half}, cells = 240 }}
[theory]
{sampler}
"#
    );
    Scenario::from_toml_str(&src, Path::new("one-well.toml")).unwrap()
}

fn variance(xs: &[f64], p: &[f64], dx: f64) -> (f64, f64) {
    let m = xs.iter().zip(p).map(|(x, p)| x * p).sum::<f64>() * dx;
    let v = xs
        .iter()
        .zip(p)
        .map(|(x, p)| (x - m) * (x - m) * p)
        .sum::<f64>()
        * dx;
    (m, v)
}

#[test]
fn langevin_walkers_reproduce_the_fp_marginal_under_hessian_noise() {
    let sc = one_well(
        0.001,
        0.2,
        0.85,
        800,
        "[sampler]\nkind = \"langevin\"\ndt = 0.001\nwalkers = 4096\nsteps = 200000\nburn_in = 50000\nstart = [0.85, 0.0]",
    );
    let plan = sc.fokker_planck().unwrap();
    let res = fp::solve(plan, &NoProgress).unwrap();
    let fpc = plan.config();
    let walk = sampler::run(sc.sampler().unwrap(), Some((fpc.x, fpc.y)), &NoProgress).unwrap();
    let xs = res.grid.xs();
    let p_fp = res.grid.marginal_x(&res.density);
    let hist = walk.hist_x.unwrap();
    let l1 = l1_distance(&p_fp, &hist, res.grid.dx);
    let (m_fp, v_fp) = variance(&xs, &p_fp, res.grid.dx);
    let (m_mc, v_mc) = variance(&xs, &hist, res.grid.dx);
    eprintln!(
        "FP vs Langevin: L1 {l1:.4}; mean {m_fp:.5} vs {m_mc:.5}; variance {v_fp:.3e} vs {v_mc:.3e}"
    );
    assert!(l1 < 0.05, "L1(FP, Langevin) = {l1}");
    assert!((m_fp - m_mc).abs() < 1e-3);
    assert!((v_fp / v_mc - 1.0).abs() < 0.1);
}

/// FP vs reduced theory at fixed ε/Δ_S = 0.5: (L1 of the x-marginals, Var_FP, Var_reduced, x_ss, ⟨x⟩_FP).
fn fp_vs_reduced(epsilon: f64, sigma: f64, y_half: f64) -> (f64, f64, f64, f64, f64) {
    let sc = one_well(epsilon, sigma, y_half, 800, "");
    let valley = sc.valley2d().unwrap();
    let res = fp::solve(sc.fokker_planck().unwrap(), &NoProgress).unwrap();
    let xs = res.grid.xs();
    let p_fp = res.grid.marginal_x(&res.density);
    let reduced = theory::marginal_x_reduced(valley, sc.noise(), &xs, (-y_half, y_half));
    let cfg = sc.theory().unwrap().config();
    let x_ss = theory::summarize(valley, sc.noise(), cfg).x_ss;
    let (m_fp, v_fp) = variance(&xs, &p_fp, res.grid.dx);
    let (_, v_red) = variance(&xs, &reduced, res.grid.dx);
    (
        l1_distance(&p_fp, &reduced, res.grid.dx),
        v_fp,
        v_red,
        x_ss,
        m_fp,
    )
}

/// Recorded finding (issue 3): adiabatic elimination at leading order places the flat solution
/// where the FP does, but its x-marginal is 2–3× too wide, and the gap does not close as Δ_S
/// decreases at fixed ε/Δ_S. The FP width is confirmed by Langevin walkers (test above). The
/// reason: the drift fluctuation ½λ'(x)(y² − ⟨y²⟩) and the x–y noise correlation D12 add
/// diffusion to x of the same order Δ_S² as ⟨D11⟩, so they never become negligible.
#[test]
fn reduced_theory_finds_x_ss_but_not_the_width_at_any_delta_s() {
    let cases = [(0.0005, 0.1, 0.6), (0.001, 0.2, 0.85), (0.002, 0.4, 1.2)];
    let mut l1 = Vec::new();
    for &(eps, sigma, y_half) in &cases {
        let (d, v_fp, v_red, x_ss, m_fp) = fp_vs_reduced(eps, sigma, y_half);
        eprintln!(
            "Δ_S = {:.4}, ε = {eps}: L1(FP, reduced) = {d:.3}; Var_x FP {v_fp:.3e}, reduced {v_red:.3e} (ratio {:.2}); x_ss {x_ss:.4}, ⟨x⟩_FP {m_fp:.4}",
            0.01 * sigma,
            v_red / v_fp
        );
        assert!(
            (m_fp - x_ss).abs() < 0.005,
            "FP mean {m_fp} vs reduced x_ss {x_ss}"
        );
        assert!(
            v_red / v_fp > 2.0,
            "reduced variance ratio {}",
            v_red / v_fp
        );
        l1.push(d);
    }
    // The L1 distance does not shrink as Δ_S shrinks (it grows slightly).
    assert!(l1[0] >= l1[2], "L1 for Δ_S = 0.001, 0.002, 0.004: {l1:?}");
}
