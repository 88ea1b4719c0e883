//! Mirror symmetries of the FP generator and its symmetry sectors.
//!
//! The valley (Eq. 4) is even in x and in y; on a grid whose x- or y-domain is symmetric about
//! 0 its generator A commutes with the reflection x → −x (cell (i, j) ↔ (nx − 1 − i, j)) or
//! y → −y ((i, j) ↔ (i, ny − 1 − j)): the drift −∇L and the noise D transform as vectors and
//! tensors do (D12 changes sign, and the 9-point stencil's diagonal slots swap with it). A then
//! splits into an even and an odd sector per mirror, each the generator restricted to the
//! functions of that parity. A sector is a stencil on the half grid beyond the mirror line
//! ([`fold`]): the coefficients of its first row of cells that reach across the line are moved
//! onto the mirror cell, times the parity. Its eigenvalues are exactly those of A on that
//! sector, and for the even sector its null vector is the stationary density's half. Both
//! mirrors together give four sectors on quarter grids ([`sectors`]); a factorisation of a
//! quarter grid costs about an eighth of the whole grid's (nested dissection is O(N^1.5)).
//!
//! Invariant: [`Sector::unfold`] ∘ (restriction to the sector's cells) is the identity on
//! functions of the sector's parities, so a sector's eigenvector unfolds to one of A.

use rayon::prelude::*;

use super::grid::Grid;
use super::operator::{CENTRE, OFFSETS, Stencil9, slot};

/// A reflection of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mirror {
    /// x → −x: cell (i, j) ↔ (nx − 1 − i, j).
    X,
    /// y → −y: cell (i, j) ↔ (i, ny − 1 − j).
    Y,
}

/// Whether A commutes with the reflection `mirror` of its grid (to 10⁻¹² of max |A_kk|).
pub fn commutes_with(a: &Stencil9, mirror: Mirror) -> bool {
    let g = a.grid;
    let scale = a.coef.iter().fold(0.0f64, |m, r| m.max(r[CENTRE].abs()));
    (0..g.nx).into_par_iter().all(|i| {
        (0..g.ny).all(|j| {
            let (mi, mj, sx, sy) = match mirror {
                Mirror::X => (g.nx - 1 - i, j, -1, 1),
                Mirror::Y => (i, g.ny - 1 - j, 1, -1),
            };
            let (row, image) = (&a.coef[g.index(i, j)], &a.coef[g.index(mi, mj)]);
            OFFSETS.iter().enumerate().all(|(s, &(di, dj))| {
                (row[s] - image[slot(sx * di, sy * dj)]).abs() <= 1e-12 * scale
            })
        })
    })
}

/// First cell (along the mirrored axis) of the half grid of parity `sign` on an axis of `n`
/// cells: for odd n the middle cell belongs to the even half and vanishes in the odd sector.
fn first_cell(n: usize, sign: f64) -> usize {
    if n.is_multiple_of(2) {
        n / 2
    } else if sign > 0.0 {
        (n - 1) / 2
    } else {
        n.div_ceil(2)
    }
}

/// The generator restricted to the functions with v(mirror image) = `sign`·v (`sign` = ±1), as
/// a stencil on the half grid beyond the mirror line (None when that half is empty).
pub fn fold(a: &Stencil9, mirror: Mirror, sign: f64) -> Option<Stencil9> {
    let g = a.grid;
    let n = match mirror {
        Mirror::X => g.nx,
        Mirror::Y => g.ny,
    };
    let first = first_cell(n, sign);
    let h = n - first;
    if h == 0 || g.nx == 0 || g.ny == 0 {
        return None;
    }
    let half = match mirror {
        Mirror::X => Grid {
            nx: h,
            x_min: g.x_min + first as f64 * g.dx,
            ..g
        },
        Mirror::Y => Grid {
            ny: h,
            y_min: g.y_min + first as f64 * g.dy,
            ..g
        },
    };
    // The last cell before the line and its image (the same cell for the odd sector of odd n).
    let before = first as isize - 1;
    let image = n as isize - 1 - before;
    let mut out = Stencil9::zeros(half);
    // Column i of the half grid (its cells are contiguous), in parallel.
    out.coef
        .par_chunks_mut(half.ny)
        .enumerate()
        .for_each(|(i, column)| {
            for (j, dst) in column.iter_mut().enumerate() {
                let (row, along, across, across_len) = match mirror {
                    Mirror::X => (a.coef[g.index(i + first, j)], i, j, g.ny),
                    Mirror::Y => (a.coef[g.index(i, j + first)], j, i, g.nx),
                };
                *dst = row;
                if along > 0 || first == 0 {
                    continue;
                }
                for t in -1isize..=1 {
                    let s = match mirror {
                        Mirror::X => slot(-1, t),
                        Mirror::Y => slot(t, -1),
                    };
                    let v = row[s];
                    dst[s] = 0.0;
                    let k = across as isize + t;
                    // Off the grid (ignored by every consumer), or the odd sector's zero cell.
                    if v == 0.0 || k < 0 || k >= across_len as isize || image == before {
                        continue;
                    }
                    let d = image - first as isize;
                    let target = match mirror {
                        Mirror::X => slot(d, t),
                        Mirror::Y => slot(t, d),
                    };
                    dst[target] += sign * v;
                }
            }
        });
    Some(out)
}

/// One fold: the mirror, the parity and the grid before the fold.
type Fold = (Mirror, f64, Grid);

/// One symmetry sector of A: its stencil and the folds that made it.
#[derive(Debug, Clone)]
pub struct Sector {
    /// The generator on the sector's cells (a half or quarter grid, or A itself).
    pub stencil: Stencil9,
    /// The folds applied, in order.
    folds: Vec<Fold>,
}

impl Sector {
    /// The parity under `mirror` (None when the sector is not folded along it).
    pub fn parity(&self, mirror: Mirror) -> Option<f64> {
        self.folds
            .iter()
            .find(|(m, _, _)| *m == mirror)
            .map(|&(_, s, _)| s)
    }

    /// A vector on the sector's cells extended to the whole grid by its parities.
    pub fn unfold(&self, v: &[f64]) -> Vec<f64> {
        let mut v = v.to_vec();
        for &(mirror, sign, g) in self.folds.iter().rev() {
            let n = match mirror {
                Mirror::X => g.nx,
                Mirror::Y => g.ny,
            };
            let first = first_cell(n, sign);
            let half = match mirror {
                Mirror::X => Grid { nx: n - first, ..g },
                Mirror::Y => Grid { ny: n - first, ..g },
            };
            let mut whole = vec![0.0; g.len()];
            for i in 0..g.nx {
                for j in 0..g.ny {
                    let a = match mirror {
                        Mirror::X => i,
                        Mirror::Y => j,
                    };
                    // The image of a cell before the line, and the factor of its value.
                    let (a, f) = if a >= first {
                        (a, 1.0)
                    } else if n - 1 - a >= first {
                        (n - 1 - a, sign)
                    } else {
                        continue; // the odd sector's middle cell: 0
                    };
                    let k = match mirror {
                        Mirror::X => half.index(a - first, j),
                        Mirror::Y => half.index(i, a - first),
                    };
                    whole[g.index(i, j)] = f * v[k];
                }
            }
            v = whole;
        }
        v
    }
}

/// The symmetry sectors of A: the four parity combinations when A commutes with both mirrors,
/// the two of one mirror, and none (empty) when A commutes with neither (then A itself is the
/// only sector); empty halves (odd parity on one cell) are left out. With `even_only` only the
/// sector even under every mirror, the stationary density's.
pub fn sectors(a: &Stencil9, even_only: bool) -> Vec<Sector> {
    let signs: &[f64] = if even_only { &[1.0] } else { &[1.0, -1.0] };
    let mut out: Vec<Sector> = Vec::new();
    for mirror in [Mirror::X, Mirror::Y] {
        if !commutes_with(a, mirror) {
            continue;
        }
        let parents: Vec<(&Stencil9, &[Fold])> = if out.is_empty() {
            vec![(a, &[])]
        } else {
            out.iter().map(|s| (&s.stencil, &s.folds[..])).collect()
        };
        let next = parents
            .iter()
            .flat_map(|&(stencil, folds)| {
                signs.iter().filter_map(move |&sign| {
                    let mut chain = folds.to_vec();
                    chain.push((mirror, sign, stencil.grid));
                    Some(Sector {
                        stencil: fold(stencil, mirror, sign)?,
                        folds: chain,
                    })
                })
            })
            .collect();
        out = next;
    }
    out
}
