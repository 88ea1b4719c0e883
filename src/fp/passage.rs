//! Mean first-passage times from the backward (adjoint) equation, without sampling.
//!
//! For the discrete generator A (dP/dt = A P, A[k, l] the rate from cell l to cell k), the mean
//! time τ_l to reach an absorbing set S from cell l solves Σ_k A[k, l] τ_k = −1 for l ∉ S and
//! τ_l = 0 for l ∈ S, i.e. (Aᵀ τ)_l = −1 off S. Aᵀ has the same 9-point pattern, so the
//! nested-dissection solver factorises it once.

use super::grid::Grid;
use super::nested::{NestedDissection, SingularMatrix};
use super::operator::{CENTRE, OFFSETS, Stencil9, slot};

/// The transpose of a stencil matrix.
pub fn transpose(a: &Stencil9) -> Stencil9 {
    let g = a.grid;
    let (nx, ny) = (g.nx as isize, g.ny as isize);
    let mut t = Stencil9::zeros(g);
    for i in 0..nx {
        for j in 0..ny {
            let k = (i * ny + j) as usize;
            for (s, &(di, dj)) in OFFSETS.iter().enumerate() {
                let (i2, j2) = (i + di, j + dj);
                if i2 >= 0 && i2 < nx && j2 >= 0 && j2 < ny {
                    // A[k, l] with l = (i2, j2) becomes Aᵀ[l, k] at offset −(di, dj).
                    let l = (i2 * ny + j2) as usize;
                    t.coef[l][slot(-di, -dj)] += a.coef[k][s];
                }
            }
        }
    }
    t
}

/// Mean first-passage time τ on every cell to the set of cells where `absorbing` is true.
/// Cells from which S cannot be reached make the system singular (an error).
pub fn mean_first_passage(
    a: &Stencil9,
    absorbing: impl Fn(usize) -> bool,
) -> Result<Vec<f64>, SingularMatrix> {
    let g = a.grid;
    let mut m = transpose(a);
    let mut rhs = vec![-1.0; g.len()];
    for (k, row) in m.coef.iter_mut().enumerate() {
        if absorbing(k) {
            *row = [0.0; 9];
            row[CENTRE] = 1.0;
            rhs[k] = 0.0;
        }
    }
    let nd = NestedDissection::new(g.nx, g.ny, None);
    let factor = nd.factorize(&m)?;
    factor.solve_in_place(&mut rhs);
    Ok(rhs)
}

/// Bilinear interpolation of a cell-centred field at (x, y) (clamped to the cell centres).
pub fn interpolate(grid: &Grid, field: &[f64], x: f64, y: f64) -> f64 {
    let fx = ((x - grid.x_min) / grid.dx - 0.5).clamp(0.0, (grid.nx - 1) as f64);
    let fy = ((y - grid.y_min) / grid.dy - 0.5).clamp(0.0, (grid.ny - 1) as f64);
    let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
    let (i1, j1) = ((i0 + 1).min(grid.nx - 1), (j0 + 1).min(grid.ny - 1));
    let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
    let v = |i: usize, j: usize| field[grid.index(i, j)];
    (1.0 - tx) * ((1.0 - ty) * v(i0, j0) + ty * v(i0, j1))
        + tx * ((1.0 - ty) * v(i1, j0) + ty * v(i1, j1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fp::operator::assemble;
    use crate::landscape::Valley2d;
    use crate::noise::Noise;
    use crate::scenario::{AxisConfig, CrossDiffusionScheme};

    /// Pure diffusion in x between a reflecting wall at x = 0 and an absorbing wall at x = 1:
    /// τ(x) = (1 − x²)/(2D); the y-direction is inert.
    #[test]
    fn passage_time_of_free_diffusion_matches_the_closed_form() {
        let d = 0.5;
        let n = 200;
        let grid = Grid::new(
            &AxisConfig {
                min: 0.0,
                max: 1.0,
                cells: n,
            },
            &AxisConfig {
                min: -1.0,
                max: 1.0,
                cells: 3,
            },
        );
        // ε = 0 and λ = [1e-12]: a flat landscape.
        let valley = Valley2d {
            epsilon: 0.0,
            lambda: vec![1e-12],
        };
        let noise = Noise::Isotropic { temperature: d };
        let a = assemble(&grid, &valley, &noise, CrossDiffusionScheme::Central);
        // Absorb in the last column; τ at its centre is 0, so compare with the shifted wall.
        let tau = mean_first_passage(&a, |k| k / grid.ny == n - 1).unwrap();
        let wall = grid.x(n - 1);
        for i in [0, n / 4, n / 2, 3 * n / 4] {
            let x = grid.x(i);
            let exact = (wall * wall - x * x) / (2.0 * d);
            let got = tau[grid.index(i, 1)];
            assert!(
                (got - exact).abs() < 1e-3 * exact.max(1e-3),
                "x = {x}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn transpose_twice_is_the_identity() {
        let grid = Grid::new(
            &AxisConfig {
                min: -1.0,
                max: 1.0,
                cells: 9,
            },
            &AxisConfig {
                min: -0.5,
                max: 0.5,
                cells: 7,
            },
        );
        let a = assemble(
            &grid,
            &Valley2d::paper(),
            &Noise::Hessian {
                eta: 0.01,
                sigma: 1.0,
                power: 2.0,
            },
            CrossDiffusionScheme::Central,
        );
        let back = transpose(&transpose(&a));
        for (r, s) in a.coef.iter().zip(&back.coef) {
            for (u, v) in r.iter().zip(s) {
                assert!((u - v).abs() <= 1e-15 * u.abs().max(1.0));
            }
        }
    }
}
