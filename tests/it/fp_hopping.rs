//! Hopping between the two flat wells above Δ_S*: the reduced 1-D theory's rate k = 1/(2τ) is
//! converged in its own grid, and the FP's rates (λ1/2 from the spectrum, 1/(2τ(x_ss)) from the
//! adjoint solve) agree with each other on every grid but fall by orders of magnitude under
//! refinement, towards the theory: on uniform grids the barrier at x = 0, where ⟨D11⟩ is
//! O(Δ_S³), is crossed by the scheme's numerical diffusion, not by the physics.
//!
//! Run with `cargo test --release --test it fp_hopping:: -- --nocapture` for the numbers.

use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::study::hopping;
use flatscape::theory::hopping::hopping_time;

#[test]
fn theory_rate_is_grid_converged_and_falls_steeply_above_the_transition() {
    let v = Valley2d::paper();
    let mut last = f64::INFINITY;
    for ds in [0.00052, 0.00055, 0.0006, 0.00065] {
        let noise: Noise = hopping::noise_at(ds);
        let l: Vec<f64> = [1000, 4000, 16000]
            .iter()
            .map(|&n| {
                hopping_time(&v, &noise, (-0.4, 0.4), 1.2, n)
                    .unwrap()
                    .log10_rate()
            })
            .collect();
        eprintln!(
            "Δ_S = {ds}: log10 k = {:.4} / {:.4} / {:.4} (1000 / 4000 / 16000 cells)",
            l[0], l[1], l[2]
        );
        assert!((l[1] - l[2]).abs() < 1e-3 && (l[0] - l[1]).abs() < 3e-3);
        assert!(l[2] < last - 5.0, "k must fall by > 10⁵ per step in Δ_S");
        last = l[2];
    }
    // Below Δ_S* there is no second well.
    assert!(hopping_time(&v, &hopping::noise_at(0.00045), (-0.4, 0.4), 1.2, 1000).is_none());
}

#[test]
fn fp_rates_agree_with_the_passage_time_and_fall_towards_the_theory_under_refinement() {
    let v = Valley2d::paper();
    let ds = 0.00052;
    let theory = 10f64.powf(hopping::theory_log10_rate(&v, ds).unwrap());
    let mut last = f64::INFINITY;
    for nx in [128, 256, 512, 1024] {
        let h = hopping::fp_hopping(&v, ds, nx).unwrap();
        eprintln!(
            "nx = {nx}: λ1/2 = {:.4e}, 1/(2τ) = {:.4e}, theory {theory:.4e} (ratio {:.1})",
            h.from_spectrum,
            h.from_passage,
            h.from_spectrum / theory
        );
        // λ1 τ(x_ss) = 1 + O(λ1/λ2) (docs/theory.md).
        assert!((h.from_spectrum / h.from_passage - 1.0).abs() < 0.05);
        assert!(h.from_spectrum <= last * 1.01 && h.from_spectrum > theory);
        last = h.from_spectrum;
    }
}

/// Regenerate only the gallery's hopping-rate figure (the FP part takes minutes):
/// `cargo test --release --test it fp_hopping::full_figure -- --ignored`, then copy the PNG from
/// the printed path into output/.
#[test]
#[ignore = "minutes: the full grid study of the gallery figure"]
fn full_figure() {
    let p = flatscape::app::figures::hopping_rate_plot(false).unwrap();
    let stem = std::env::temp_dir().join("hopping_rate");
    flatscape::report::plot::line_plot(&stem, &p).unwrap();
    eprintln!("wrote {}.png", stem.display());
}
