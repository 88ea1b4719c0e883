//! The divergence boundary of SGD on the paper's valley: the prediction of `theory::divergence`
//! (first passage of the SGD map's slow x-diffusion to where the frozen y-chain loses its
//! fourth moment) against the sampler's diverged fraction, through a (σ, η) sweep.
//!
//! Run with `cargo test --release --test it theory_divergence:: -- --nocapture` for the numbers.

use std::path::Path;

use flatscape::config::NoProgress;
use flatscape::landscape::Valley2d;
use flatscape::scenario::Scenario;
use flatscape::study::{self, SweepPoint};
use flatscape::theory::divergence;

const SWEEP: &str = r#"name = "divergence-boundary"
seed = 5
[landscape]
kind = "valley2d"
epsilon = 0.001
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.05
sigma = 0.2
[sampler]
kind = "sgd"
walkers = 64
steps = 100000
burn_in = 50000
start = [1.5, 1.5]
stored_trajectories = 0
[theory]
[sweep]
sigma = { min = 0.06, max = 0.24, points = 10 }
eta = { min = 0.05, max = 0.09, points = 2 }
"#;

/// σ where `f` crosses ½ along the row (linear interpolation).
fn crossing(rows: &[&SweepPoint], f: impl Fn(&SweepPoint) -> f64) -> Option<f64> {
    rows.windows(2).find_map(|w| {
        let (a, b) = (f(w[0]), f(w[1]));
        (a < 0.5 && b >= 0.5).then(|| w[0].sigma + (0.5 - a) / (b - a) * (w[1].sigma - w[0].sigma))
    })
}

#[test]
fn predicted_boundary_matches_the_sampler_at_eta_0_05_and_is_early_at_0_09() {
    let sc = Scenario::from_toml_str(SWEEP, Path::new("divergence.toml")).unwrap();
    let art = study::run(&sc, &NoProgress).unwrap();
    let rows = art.sweep.unwrap().rows;
    let mut ratio = Vec::new();
    for eta in [0.05, 0.09] {
        let row: Vec<&SweepPoint> = rows
            .iter()
            .filter(|r| (r.eta - eta).abs() < 1e-12)
            .collect();
        for r in &row {
            eprintln!(
                "η {eta} σ {:.2}: diverged {:.3}, predicted {:.3} (τ = {:.3e})",
                r.sigma,
                r.diverged_fraction.unwrap(),
                r.theory_diverged_fraction.unwrap(),
                r.theory_divergence_time.unwrap_or(f64::INFINITY)
            );
        }
        let measured = crossing(&row, |r| r.diverged_fraction.unwrap()).unwrap();
        let predicted = crossing(&row, |r| r.theory_diverged_fraction.unwrap()).unwrap();
        eprintln!("η {eta}: boundary σ measured {measured:.4}, predicted {predicted:.4}");
        ratio.push(predicted / measured);
    }
    // Measured (docs/theory.md): 0.98 at η = 0.05, 0.85 at η = 0.09 (the prediction is early
    // at larger η, where the frozen-x picture weakens).
    assert!(
        (ratio[0] - 1.0).abs() < 0.05,
        "η = 0.05: ratio {}",
        ratio[0]
    );
    assert!(
        ratio[1] > 0.75 && ratio[1] < 0.95,
        "η = 0.09: ratio {}",
        ratio[1]
    );
}

/// The unstable region is set by the multiplicative noise: at the boundary ηλ(x_u) is far
/// below 2, and x_u moves inwards as Δ_S grows.
#[test]
fn the_unstable_region_starts_well_before_eta_lambda_2() {
    let v = Valley2d::paper();
    let eta = 0.05;
    let x_u = |ds: f64| divergence::x_unstable(&v, ds, eta).unwrap();
    assert!(x_u(0.009) > x_u(0.01) && x_u(0.01) > x_u(0.011));
    let el = eta * v.lambda_at(x_u(0.01));
    eprintln!("x_u = {:.4}, ηλ(x_u) = {el:.3}", x_u(0.01));
    assert!(el > 0.5 && el < 1.0, "{el}");
    // τ falls steeply with Δ_S (an activated escape): a factor > 3 per 10 % in Δ_S here.
    let tau = |ds: f64| divergence::predict(&v, ds, eta).mean_time;
    assert!(tau(0.009) > 3.0 * tau(0.01) && tau(0.01) > 2.5 * tau(0.011));
}
