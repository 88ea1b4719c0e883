//! The spectrum of the FP generator: shift-invert Arnoldi on the nested-dissection factorisation
//! against the exact Ornstein–Uhlenbeck rates, and the hopping rate between the two flat wells
//! against the adjoint mean first-passage time.
//!
//! Run with `cargo test --release --test it fp_spectrum:: -- --nocapture` to see the numbers.

use flatscape::config::AxisConfig;
use flatscape::fp::CrossDiffusionScheme;

use flatscape::fp::{grid::Grid, operator, passage, spectrum, steady};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;

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

/// The CSR matrix is the stencil (A v agrees), and the Matrix Market file reads back exactly.
#[test]
fn csr_and_matrix_market_export_reproduce_the_generator() {
    let valley = Valley2d::paper();
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let g = grid(1.2, 0.6, 24, 16);
    let a = operator::assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
    let csr = spectrum::to_csr(&a);
    assert_eq!(csr.shape(), (g.len(), g.len()));
    let v: Vec<f64> = (0..g.len()).map(|k| (0.37 * k as f64).sin()).collect();
    let mut want = vec![0.0; g.len()];
    a.apply(&v, &mut want);
    let mut got = vec![0.0; g.len()];
    for (row, vec) in csr.outer_iterator().enumerate() {
        got[row] = vec.iter().map(|(col, val)| val * v[col]).sum();
    }
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (w, gt) in want.iter().zip(&got) {
        assert!((w - gt).abs() <= 1e-13 * scale);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.mtx");
    flatscape::report::files::write_operator_matrix_market(&a, &path).unwrap();
    let back: sprs::TriMat<f64> = sprs::io::read_matrix_market(&path).unwrap();
    let back = back.to_csr::<usize>();
    assert_eq!(back.nnz(), csr.nnz());
    for (row, vec) in csr.outer_iterator().enumerate() {
        for (col, &val) in vec.iter() {
            let b = *back.get(row, col).unwrap();
            assert!(
                (b - val).abs() <= 1e-15 * val.abs().max(1e-300),
                "({row}, {col})"
            );
        }
    }
}

/// Above Δ_S* the two flat wells at ±x_ss exchange mass slowly. The generator commutes with the
/// reflection x → −x, so its slowest non-zero mode is odd: it vanishes on x = 0 and is the
/// principal mode of the half-valley x > 0 absorbed at x = 0. Its decay rate λ1 is exactly 1/τ
/// with τ the mean first-passage time to x = 0 averaged over that mode's density, and
/// λ1 τ(x_ss) = 1 + O(λ1/λ2) from the bottom of the well. The test checks this with the adjoint
/// solve of the odd sector, and prints the passage-time estimate with the cells x < 0 absorbing
/// (`passage::mean_first_passage`), whose boundary sits at −dx/2: at the flat, weakly diffusive
/// barrier that O(dx) shift changes τ by tens of per cent on these grids.
#[test]
fn first_rate_is_the_inverse_mean_first_passage_time_to_the_barrier() {
    let valley = Valley2d::paper();
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.055,
        power: 2.0,
    };
    for nx in [140usize, 280] {
        let g = grid(1.0, 0.5, nx, 64);
        let a = operator::assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
        let rates = spectrum::relaxation_rates(&a, 3, 1e-3).unwrap();
        let ss = steady::solve_steady(&a).unwrap();
        let mx = g.marginal_x(&ss.density);
        let i_ss = (nx / 2..nx)
            .max_by(|&i, &j| mx[i].total_cmp(&mx[j]))
            .unwrap();
        let x_ss = g.x(i_ss);
        let (half, tau_odd) = passage::passage_time_to_midline(&a).unwrap();
        let t_odd = passage::interpolate(&half, &tau_odd, x_ss, 0.0).unwrap();
        let tau_cells = passage::mean_first_passage(&a, |k| g.x(k / g.ny) < 0.0).unwrap();
        let t_cells = passage::interpolate(&g, &tau_cells, x_ss, 0.0).unwrap();
        let (l1, l2) = (rates[0].rate, rates[1].rate);
        eprintln!(
            "nx = {nx}: λ1 = {l1:.4e}, λ2 = {l2:.4e}; x_ss = {x_ss:.3}; τ(x_ss → 0) = {t_odd:.4e}: λ1 τ = {:.5}; cells x < 0 absorbing: τ = {t_cells:.4e}, λ1 τ = {:.3}",
            l1 * t_odd,
            l1 * t_cells
        );
        assert!(l1 < 0.01 * l2, "no separation of time scales");
        assert!(
            (l1 * t_odd - 1.0).abs() < 5.0 * l1 / l2,
            "λ1 τ = {}",
            l1 * t_odd
        );
    }
}
