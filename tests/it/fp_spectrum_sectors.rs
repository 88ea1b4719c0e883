//! The pieces of the fast spectrum: the multi-right-hand-side solve, the even/odd folding of a
//! mirror-symmetric generator onto half and quarter grids, and the resulting rates against a
//! dense eigensolve of the whole generator.

use faer::Mat;
use flatscape::config::AxisConfig;
use flatscape::fp::CrossDiffusionScheme;
use flatscape::fp::nested::NestedDissection;
use flatscape::fp::symmetry::{self, Mirror};
use flatscape::fp::{grid::Grid, operator, spectrum};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;

fn grid(nx: usize, ny: usize) -> Grid {
    Grid::new(
        &AxisConfig {
            min: -1.2,
            max: 1.2,
            cells: nx,
        },
        &AxisConfig {
            min: -0.3,
            max: 0.3,
            cells: ny,
        },
    )
}

fn valley(nx: usize, ny: usize) -> operator::Stencil9 {
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.5,
        power: 2.0,
    };
    operator::assemble(
        &grid(nx, ny),
        &Valley2d::paper(),
        &noise,
        CrossDiffusionScheme::Central,
    )
}

/// Three right-hand sides at once give the three single solves (to round-off).
#[test]
fn solve_many_equals_repeated_single_solves() {
    let a = valley(37, 22).shifted_identity(10.0);
    let n = a.grid.len();
    let f = NestedDissection::new(37, 22, None).factorize(&a).unwrap();
    let mut many: Vec<f64> = (0..3 * n).map(|k| (0.37 * k as f64).sin()).collect();
    let rhs = many.clone();
    f.solve_many_in_place(&mut many);
    for c in 0..3 {
        let mut one = rhs[c * n..(c + 1) * n].to_vec();
        f.solve_in_place(&mut one);
        let scale = one.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in one.iter().zip(&many[c * n..(c + 1) * n]) {
            assert!((x - y).abs() <= 1e-12 * scale, "column {c}: {x} vs {y}");
        }
    }
}

/// For v(−x) = ±v(x), (A v) on the right half is the folded stencil applied to v's right half,
/// and likewise for y → −y on the upper half (even and odd cell counts; for an odd count the
/// odd sector has no middle row of cells).
#[test]
fn folded_sectors_act_as_the_generator_on_symmetric_vectors() {
    for (nx, ny) in [(16usize, 12usize), (17, 12), (16, 13)] {
        let a = valley(nx, ny);
        let g = a.grid;
        for mirror in [Mirror::X, Mirror::Y] {
            assert!(symmetry::commutes_with(&a, mirror));
            for sign in [1.0, -1.0] {
                let half = symmetry::fold(&a, mirror, sign).unwrap();
                let f = |x: f64, y: f64| (1.3 * x + 0.2).exp() * (1.0 + 0.7 * y + 2.0 * x * y);
                let v: Vec<f64> = (0..g.len())
                    .map(|c| {
                        let (x, y) = (g.x(c / g.ny), g.y(c % g.ny));
                        match mirror {
                            Mirror::X => f(x, y) + sign * f(-x, y),
                            Mirror::Y => f(x, y) + sign * f(x, -y),
                        }
                    })
                    .collect();
                let mut av = vec![0.0; g.len()];
                a.apply(&v, &mut av);
                // The half's cells in the whole grid's numbering.
                let (fx, fy) = (g.nx - half.grid.nx, g.ny - half.grid.ny);
                let cells: Vec<usize> = (0..half.grid.nx)
                    .flat_map(|i| (0..half.grid.ny).map(move |j| g.index(i + fx, j + fy)))
                    .collect();
                let vh: Vec<f64> = cells.iter().map(|&c| v[c]).collect();
                let mut hv = vec![0.0; vh.len()];
                half.apply(&vh, &mut hv);
                let scale = av.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                for (&c, q) in cells.iter().zip(&hv) {
                    assert!(
                        (av[c] - q).abs() <= 1e-12 * scale,
                        "{nx} x {ny}, {mirror:?}, sign {sign}"
                    );
                }
                // Unfolding the half's values restores v.
                let sector = symmetry::sectors(&a, false)
                    .into_iter()
                    .find(|s| {
                        s.parity(mirror) == Some(sign)
                            && s.parity(other(mirror)).is_some_and(|p| p > 0.0)
                    })
                    .unwrap();
                let w: Vec<f64> = (0..g.len())
                    .map(|c| {
                        let (x, y) = (g.x(c / g.ny), g.y(c % g.ny));
                        let e = |x: f64, y: f64| f(x, y) + f(x, -y) + f(-x, y) + f(-x, -y);
                        let o = |x: f64, y: f64| match mirror {
                            Mirror::X => e(x, y) * x,
                            Mirror::Y => e(x, y) * y,
                        };
                        if sign > 0.0 { e(x, y) } else { o(x, y) }
                    })
                    .collect();
                let (sg, (qx, qy)) = (
                    sector.stencil.grid,
                    (g.nx - sector.stencil.grid.nx, g.ny - sector.stencil.grid.ny),
                );
                let restricted: Vec<f64> = (0..sg.nx)
                    .flat_map(|i| (0..sg.ny).map(move |j| (i, j)))
                    .map(|(i, j)| w[g.index(i + qx, j + qy)])
                    .collect();
                let back = sector.unfold(&restricted);
                for (p, q) in back.iter().zip(&w) {
                    assert!(
                        (p - q).abs() <= 1e-14 * q.abs().max(1.0),
                        "unfold {mirror:?} {sign}"
                    );
                }
            }
        }
    }
}

fn other(m: Mirror) -> Mirror {
    match m {
        Mirror::X => Mirror::Y,
        Mirror::Y => Mirror::X,
    }
}

/// The slowest rates of a dense eigensolve of `m` (n × n, column access through `at`).
fn dense_rates(n: usize, at: impl Fn(usize, usize) -> f64) -> Vec<(f64, f64)> {
    let eig = Mat::<f64>::from_fn(n, n, at).eigen().unwrap();
    let mut exact: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let z = eig.S().column_vector()[i];
            (-z.re, z.im)
        })
        .filter(|&(_, im)| im >= -1e-9)
        .collect();
    exact.sort_by(|p, q| p.0.abs().total_cmp(&q.0.abs()));
    exact.remove(0);
    exact.sort_by(|p, q| p.0.total_cmp(&q.0));
    exact
}

/// The 5 slowest rates from the sectors (dense for the 14 × 10 and 15 × 10 grids' halves,
/// Arnoldi for the 30 × 28 grid's) equal those of a dense eigensolve of the whole generator.
/// A is far from normal, so the dense reference itself errs: its error is estimated by the
/// spread between the dense eigenvalues of A and of Aᵀ (the same numbers in exact arithmetic).
#[test]
fn sector_rates_equal_the_dense_spectrum_of_the_whole_generator() {
    for (nx, ny) in [(14usize, 10usize), (15, 10), (30, 28)] {
        let a = valley(nx, ny);
        let n = a.grid.len();
        let csr = spectrum::to_csr(&a);
        let exact = dense_rates(n, |r, c| *csr.get(r, c).unwrap_or(&0.0));
        let transposed = dense_rates(n, |r, c| *csr.get(c, r).unwrap_or(&0.0));
        let got = spectrum::relaxation_rates(&a, 5, 1e-3).unwrap();
        let scale = a.coef.iter().fold(0.0f64, |m, r| m.max(r[4].abs()));
        assert_eq!(got.len(), 5);
        for ((r, e), t) in got.iter().zip(&exact).zip(&transposed) {
            let reference_error = (e.0 - t.0).abs().max((e.1 - t.1).abs());
            let tol = 1e-8 * e.0.abs() + 1e-13 * scale + 10.0 * reference_error;
            eprintln!(
                "{nx} x {ny}: rate {:.12e} dense {:.12e} (dense A vs Aᵀ {reference_error:.1e}; tolerance {tol:.1e})",
                r.rate, e.0
            );
            assert!(
                (r.rate - e.0).abs() <= tol && (r.frequency - e.1).abs() <= tol,
                "{nx} x {ny}: {r:?} vs {e:?}"
            );
        }
    }
}

/// A sector that stops early (its share of the wanted modes converged, its next Ritz value
/// converged and below the cut) loses nothing: the 6 slowest rates equal those of a deeper
/// search for 10 (where every sector must go further) to 1e-9.
#[test]
fn early_sector_stop_gives_the_rates_of_a_deeper_search() {
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let g = Grid::new(
        &AxisConfig {
            min: -1.6,
            max: 1.6,
            cells: 128,
        },
        &AxisConfig {
            min: -0.9,
            max: 0.9,
            cells: 96,
        },
    );
    let a = operator::assemble(
        &g,
        &Valley2d::paper(),
        &noise,
        CrossDiffusionScheme::Central,
    );
    let six = spectrum::relaxation_rates(&a, 6, 1e-3).unwrap();
    let ten = spectrum::relaxation_rates(&a, 10, 1e-3).unwrap();
    for (p, q) in six.iter().zip(&ten) {
        eprintln!("rate {:.12e} (deeper search {:.12e})", p.rate, q.rate);
        assert!(
            (p.rate - q.rate).abs() <= 1e-9 * q.rate.abs().max(1e-3),
            "{p:?} vs {q:?}"
        );
    }
}
