//! The spectrum of the FP generator: shift-invert Arnoldi on the nested-dissection factorisation
//! against the exact Ornstein–Uhlenbeck rates, and the hopping rate between the two flat wells
//! against the adjoint mean first-passage time.
//!
//! Run with `cargo test --release --test fp_spectrum -- --nocapture` to see the numbers.

use flatscape::fp::{grid::Grid, operator, spectrum};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::scenario::{AxisConfig, CrossDiffusionScheme};

fn grid(x: f64, y: f64, nx: usize, ny: usize) -> Grid {
    Grid::new(
        &AxisConfig {
            min: -x,
            max: x,
            cells: nx,
        },
        &AxisConfig {
            min: -y,
            max: y,
            cells: ny,
        },
    )
}

/// OU: L = ½ελ0x² + ½λ0y² with isotropic noise T: the drift matrix is diag(ελ0, λ0) and the
/// generator's eigenvalues are −(n1 ελ0 + n2 λ0), n1, n2 ≥ 0. The scheme is second order, so
/// Richardson extrapolation of three grids (h, h/2, h/4) removes the h² and h⁴ terms.
#[test]
fn ou_rates_are_the_integer_combinations_of_the_drift_eigenvalues() {
    let valley = Valley2d {
        epsilon: 1.0 / 1.7,
        lambda: vec![1.7],
    };
    let noise = Noise::Isotropic { temperature: 1.0 };
    let exact = [1.0, 1.7, 2.0, 2.7, 3.0, 3.4];
    let k = exact.len();
    let mut levels = Vec::new();
    for n in [64usize, 128, 256] {
        let g = grid(7.0, 5.5, n, n);
        let a = operator::assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
        let rates = spectrum::relaxation_rates(&a, k, 0.5).unwrap();
        let r: Vec<f64> = rates.iter().map(|r| r.rate).collect();
        eprintln!(
            "{n} x {n}: {r:.8?}; max residual {:.1e}",
            rates.iter().map(|r| r.residual).fold(0.0, f64::max)
        );
        assert!(rates.iter().all(|r| r.frequency.abs() < 1e-9));
        levels.push(r);
    }
    // Richardson: R1 = (4 f(h/2) − f(h))/3, R2 = (4 f(h/4) − f(h/2))/3, R = (16 R2 − R1)/15.
    for i in 0..k {
        let f: Vec<f64> = levels.iter().map(|l| l[i]).collect();
        let r1 = (4.0 * f[1] - f[0]) / 3.0;
        let r2 = (4.0 * f[2] - f[1]) / 3.0;
        let r = (16.0 * r2 - r1) / 15.0;
        let order = ((f[1] - f[0]) / (f[2] - f[1])).log2();
        eprintln!(
            "rate {}: exact {}, finest {:.8} (error {:.1e}), observed order {order:.2}, extrapolated {r:.10} (error {:.1e})",
            i + 1,
            exact[i],
            f[2],
            f[2] - exact[i],
            r - exact[i]
        );
        assert!((r - exact[i]).abs() < 1e-6, "rate {i}: {r} vs {}", exact[i]);
    }
}
