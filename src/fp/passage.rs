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

/// Why a first-passage solve failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PassageError {
    /// No cell of the grid lies in the absorbing set.
    #[error("the absorbing set contains no cell of the grid (the target lies outside the domain)")]
    EmptyTarget,
    /// Some cells cannot reach the absorbing set.
    #[error("the absorbing set cannot be reached from every cell: {0}")]
    Singular(#[from] SingularMatrix),
}

/// Mean first-passage time τ on every cell to the set of cells where `absorbing` is true.
/// An empty set, or cells from which the set cannot be reached, are errors.
pub fn mean_first_passage(
    a: &Stencil9,
    absorbing: impl Fn(usize) -> bool,
) -> Result<Vec<f64>, PassageError> {
    let g = a.grid;
    let mut m = transpose(a);
    let mut rhs = vec![-1.0; g.len()];
    let mut targets = 0usize;
    for (k, row) in m.coef.iter_mut().enumerate() {
        if absorbing(k) {
            *row = [0.0; 9];
            row[CENTRE] = 1.0;
            rhs[k] = 0.0;
            targets += 1;
        }
    }
    if targets == 0 {
        return Err(PassageError::EmptyTarget);
    }
    let nd = NestedDissection::new(g.nx, g.ny, None);
    let factor = nd.factorize(&m)?;
    factor.solve_in_place(&mut rhs);
    Ok(rhs)
}

/// Bilinear interpolation of a cell-centred field at (x, y); `None` outside the domain (between
/// the outermost cell centres and the walls the nearest centre's value is used).
pub fn interpolate(grid: &Grid, field: &[f64], x: f64, y: f64) -> Option<f64> {
    let (x_max, y_max) = (grid.x_range().1, grid.y_range().1);
    if !(x >= grid.x_min && x <= x_max && y >= grid.y_min && y <= y_max) {
        return None;
    }
    let fx = ((x - grid.x_min) / grid.dx - 0.5).clamp(0.0, (grid.nx - 1) as f64);
    let fy = ((y - grid.y_min) / grid.dy - 0.5).clamp(0.0, (grid.ny - 1) as f64);
    let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
    let (i1, j1) = ((i0 + 1).min(grid.nx - 1), (j0 + 1).min(grid.ny - 1));
    let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
    let v = |i: usize, j: usize| field[grid.index(i, j)];
    Some(
        (1.0 - tx) * ((1.0 - ty) * v(i0, j0) + ty * v(i0, j1))
            + tx * ((1.0 - ty) * v(i1, j0) + ty * v(i1, j1)),
    )
}

/// The odd sector of a generator that commutes with x → −x on a symmetric x-grid with an even
/// number of cells, as an operator on the right half x > 0: the flux into the mirror cell of the
/// midline cell carries −P there, so it acts as killing, i.e. absorption exactly at x = 0.
pub fn odd_half(a: &Stencil9) -> Stencil9 {
    let g = a.grid;
    let h = g.nx / 2;
    let half = Grid {
        nx: g.nx - h,
        x_min: g.x_min + h as f64 * g.dx,
        ..g
    };
    let mut out = Stencil9::zeros(half);
    for i in h..g.nx {
        for j in 0..g.ny {
            let (k, k2) = (g.index(i, j), half.index(i - h, j));
            out.coef[k2] = a.coef[k];
            if i == h {
                for dj in -1..=1 {
                    out.coef[k2][slot(0, dj)] -= a.coef[k][slot(-1, dj)];
                    out.coef[k2][slot(-1, dj)] = 0.0;
                }
            }
        }
    }
    out
}

/// Mean first-passage time to x = 0 on the right half-grid (absorbed exactly at x = 0, the odd
/// sector of [`odd_half`]): the adjoint equation A_oddᵀ τ = −1, one factorisation. The slowest
/// odd mode of a reflection-symmetric generator decays at λ1 = 1/τ averaged over that mode, and
/// the hopping rate between the two halves is k = 1/(2τ(x_ss)) (docs/theory.md).
pub fn passage_time_to_midline(a: &Stencil9) -> Result<(Grid, Vec<f64>), PassageError> {
    let m = transpose(&odd_half(a));
    let g = m.grid;
    let factor = NestedDissection::new(g.nx, g.ny, None).factorize(&m)?;
    let mut tau = vec![-1.0; g.len()];
    factor.solve_in_place(&mut tau);
    Ok((g, tau))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AxisConfig;
    use crate::fp::config::CrossDiffusionScheme;
    use crate::fp::operator::assemble;
    use crate::landscape::Valley2d;
    use crate::noise::Noise;

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
    fn an_empty_absorbing_set_is_named_not_singular() {
        let grid = Grid::new(
            &AxisConfig::new(0.0, 1.0, 8),
            &AxisConfig::new(-1.0, 1.0, 5),
        );
        let noise = Noise::Isotropic { temperature: 0.1 };
        let a = assemble(
            &grid,
            &Valley2d::paper(),
            &noise,
            CrossDiffusionScheme::Central,
        );
        assert_eq!(
            mean_first_passage(&a, |_| false),
            Err(PassageError::EmptyTarget)
        );
    }

    #[test]
    fn interpolation_outside_the_grid_is_none() {
        let grid = Grid::new(
            &AxisConfig::new(0.0, 1.0, 4),
            &AxisConfig::new(-1.0, 1.0, 4),
        );
        let field: Vec<f64> = (0..16).map(|k| k as f64).collect();
        assert!(interpolate(&grid, &field, 1.5, 0.0).is_none());
        assert!(interpolate(&grid, &field, 0.5, -1.01).is_none());
        assert!(interpolate(&grid, &field, 0.5, 0.0).is_some());
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
