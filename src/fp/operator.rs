//! Finite-volume discretisation of the FP generator (Eq. 10, docs/reference.md §2.2): dP/dt = A P.
//!
//! Flux J_x = −P ∂xL − ∂x(D11 P) − ∂y(D12 P), J_y likewise, no flux through the boundary.
//!
//! * Drift + diagonal diffusion: exponential fitting (Scharfetter–Gummel) on each face,
//!   written as J = −D_f (∂P + P ∂ψ) with the potential jump Δψ = [ΔL + ΔD] / D_f taken from
//!   cell differences. For constant isotropic D = T this makes exp(−L/T) at the cell centres an
//!   exact discrete equilibrium; for diagonal D the matrix has non-negative off-diagonals
//!   (an M-matrix generator), so densities stay positive. As D_f → 0 it becomes upwinding.
//! * Cross diffusion D12 (Hessian noise off the valley floor, or a full constant D):
//!   −∂y(D12 P) on an x-face is the difference of corner values of D12 P, each the average of
//!   the four cells around the corner (a 9-point stencil, second order, not monotone);
//!   on the boundary the corner takes the average of its two interior cells. The negative mass
//!   this can leave is reported by the solver. `cross_diffusion = "drop"` omits the terms.
//!
//! Every face flux is added to one cell and subtracted from its neighbour, so the columns of A
//! sum to zero: mass is conserved to round-off.
//!
//! With `discrete_eta = Some(η)` ([`assemble_with`], `[fokker_planck] discrete_time`) Hessian
//! noise D = Δ_S|H|^γ is replaced by the modified diffusion of the SGD map,
//! [`discrete_time_diffusion`]: for a linear map θ' = (I − ηH)θ + √(2ηΔ_S)Hξ the stationary
//! covariance is Δ_S H (I − ηH/2)⁻¹, which the continuum with drift −Hθ has exactly when
//! D = Δ_S H² (I − ηH/2)⁻¹. The drift is unchanged, so the averaged x-drift −ελ0x − ½λ'⟨y²⟩
//! sees the map's ⟨y²⟩.

use super::grid::Grid;
use crate::fp::config::CrossDiffusionScheme;
use crate::landscape::Loss2d;
#[cfg(test)]
use crate::landscape::Valley2d;
use crate::noise::{Mat2, Noise};

/// Offsets (di, dj) of the 9-point stencil, in slot order s = 3·(di+1) + (dj+1).
pub const OFFSETS: [(isize, isize); 9] = [
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, -1),
    (0, 0),
    (0, 1),
    (1, -1),
    (1, 0),
    (1, 1),
];

/// Slot of the centre coefficient.
pub const CENTRE: usize = 4;

/// Slot of offset (di, dj).
#[inline]
pub fn slot(di: isize, dj: isize) -> usize {
    ((di + 1) * 3 + (dj + 1)) as usize
}

/// A 9-point-stencil matrix on a grid: row k holds A[k, k + offset(s)] in `coef[k][s]`.
#[derive(Debug, Clone)]
pub struct Stencil9 {
    /// The grid the matrix lives on.
    pub grid: Grid,
    /// Row-wise coefficients, one `[f64; 9]` per cell (row-major, cell index k = i·ny + j).
    pub coef: Vec<[f64; 9]>,
}

impl Stencil9 {
    /// The zero matrix on `grid`.
    pub fn zeros(grid: Grid) -> Self {
        Self {
            grid,
            coef: vec![[0.0; 9]; grid.len()],
        }
    }

    /// y = A x.
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        let (nx, ny) = (self.grid.nx as isize, self.grid.ny as isize);
        for i in 0..nx {
            for j in 0..ny {
                let k = (i * ny + j) as usize;
                let c = &self.coef[k];
                let mut acc = 0.0;
                for (s, &(di, dj)) in OFFSETS.iter().enumerate() {
                    let (i2, j2) = (i + di, j + dj);
                    if c[s] != 0.0 && i2 >= 0 && i2 < nx && j2 >= 0 && j2 < ny {
                        acc += c[s] * x[(i2 * ny + j2) as usize];
                    }
                }
                y[k] = acc;
            }
        }
    }

    /// I − c·A (the implicit stage matrix).
    pub fn shifted_identity(&self, c: f64) -> Self {
        let coef = self
            .coef
            .iter()
            .map(|row| {
                let mut r = row.map(|v| -c * v);
                r[CENTRE] += 1.0;
                r
            })
            .collect();
        Self {
            grid: self.grid,
            coef,
        }
    }

    /// The largest |column sum| relative to the largest |diagonal| (0 for exact conservation).
    pub fn column_sum_defect(&self) -> f64 {
        let ones = vec![1.0; self.grid.len()];
        // Column sums = Aᵀ 1: accumulate each row's coefficients into their columns.
        let (nx, ny) = (self.grid.nx as isize, self.grid.ny as isize);
        let mut sums = vec![0.0; self.grid.len()];
        let mut diag_max: f64 = 0.0;
        for i in 0..nx {
            for j in 0..ny {
                let k = (i * ny + j) as usize;
                diag_max = diag_max.max(self.coef[k][CENTRE].abs());
                for (s, &(di, dj)) in OFFSETS.iter().enumerate() {
                    let (i2, j2) = (i + di, j + dj);
                    if i2 >= 0 && i2 < nx && j2 >= 0 && j2 < ny {
                        sums[(i2 * ny + j2) as usize] += self.coef[k][s] * ones[k];
                    }
                }
            }
        }
        sums.iter().fold(0.0f64, |m, v| m.max(v.abs())) / diag_max.max(f64::MIN_POSITIVE)
    }
}

/// Bernoulli function B(z) = z / (eᶻ − 1), B(0) = 1.
#[inline]
pub fn bernoulli(z: f64) -> f64 {
    if z.abs() < 1e-10 {
        1.0 - 0.5 * z
    } else {
        z / z.exp_m1()
    }
}

/// Scharfetter–Gummel face coefficients: flux = (ca·P_a − cb·P_b)/h for a potential-energy
/// jump `jump` = Δ(L + D) from cell a to cell b and face diffusivity `d`.
#[inline]
fn sg_coefficients(d: f64, jump: f64) -> (f64, f64) {
    if d > 1e-300 * jump.abs().max(1e-300) && d > 0.0 {
        let z = jump / d;
        (d * bernoulli(z), d * bernoulli(-z))
    } else {
        // Pure upwinding of the drift −jump/h.
        ((-jump).max(0.0), jump.max(0.0))
    }
}

/// Smallest 1 − ηh/2 kept in the modified diffusion: where the linearised map is unstable
/// (ηh ≥ 2) the continuum has no counterpart, and the factor 1/(1 − ηh/2) is capped at 1/this.
pub const MIN_STABILITY_MARGIN: f64 = 0.05;

/// The modified diffusion of the SGD map, Δ_S |H|^γ (I − ηH/2)⁻¹ on H's eigenvectors (the
/// factor capped by [`MIN_STABILITY_MARGIN`]); other noise models are returned unchanged.
pub fn discrete_time_diffusion<L: Loss2d + ?Sized>(
    valley: &L,
    noise: &Noise,
    eta: f64,
    x: f64,
    y: f64,
) -> Mat2 {
    let Noise::Hessian {
        eta: noise_eta,
        sigma,
        power,
    } = *noise
    else {
        return noise.diffusion(valley, x, y);
    };
    let ds = noise_eta * sigma;
    let h = valley.hessian(x, y);
    let mean = 0.5 * (h[0][0] + h[1][1]);
    let half_diff = 0.5 * (h[0][0] - h[1][1]);
    let r = half_diff.hypot(h[0][1]);
    let f = |v: f64| v.abs().powf(power) / (1.0 - 0.5 * eta * v).max(MIN_STABILITY_MARGIN);
    if r <= 1e-15 * mean.abs().max(r) || r == 0.0 {
        let v = ds * f(mean);
        return [[v, 0.0], [0.0, v]];
    }
    let (fp, fm) = (f(mean + r), f(mean - r));
    // Spectral projectors P± = (H − h∓ I)/(h± − h∓).
    let a = 0.5 * (fp + fm);
    let b = 0.5 * (fp - fm) / r;
    [
        [ds * (a + b * half_diff), ds * b * h[0][1]],
        [ds * b * h[0][1], ds * (a - b * half_diff)],
    ]
}

/// Assemble the FP generator A on `grid` (module docs give the scheme).
pub fn assemble<L: Loss2d + ?Sized>(
    grid: &Grid,
    valley: &L,
    noise: &Noise,
    cross: CrossDiffusionScheme,
) -> Stencil9 {
    assemble_with(grid, valley, noise, cross, None)
}

/// [`assemble`] of the continuum (`discrete_eta = None`) or of the SGD map's modified equation
/// with learning rate η ([`discrete_time_diffusion`]).
pub fn assemble_with<L: Loss2d + ?Sized>(
    grid: &Grid,
    valley: &L,
    noise: &Noise,
    cross: CrossDiffusionScheme,
    discrete_eta: Option<f64>,
) -> Stencil9 {
    let ny = grid.ny;
    let mut a = Stencil9::zeros(*grid);
    visit_faces(
        grid,
        valley,
        noise,
        cross,
        discrete_eta,
        |axis, from: (usize, usize), col: (usize, usize), w: f64| {
            let (to, h) = if axis == 0 {
                ((from.0 + 1, from.1), grid.dx)
            } else {
                ((from.0, from.1 + 1), grid.dy)
            };
            let kf = from.0 * ny + from.1;
            let kt = to.0 * ny + to.1;
            let sf = slot(
                col.0 as isize - from.0 as isize,
                col.1 as isize - from.1 as isize,
            );
            let st = slot(
                col.0 as isize - to.0 as isize,
                col.1 as isize - to.1 as isize,
            );
            a.coef[kf][sf] -= w / h;
            a.coef[kt][st] += w / h;
        },
    );
    a
}

/// Every interior face's discrete flux (module docs give the scheme): `sink(axis, from, col, w)`
/// adds w·P(col) to the flux per unit face length across the face between cell `from` and its
/// neighbour in +`axis` (0: x, 1: y), positive towards the neighbour. [`assemble_with`] turns these
/// into the generator; [`super::current`] evaluates them on a density.
pub fn visit_faces<L: Loss2d + ?Sized>(
    grid: &Grid,
    valley: &L,
    noise: &Noise,
    cross: CrossDiffusionScheme,
    discrete_eta: Option<f64>,
    mut sink: impl FnMut(usize, (usize, usize), (usize, usize), f64),
) {
    let diffusion = |x: f64, y: f64| match discrete_eta {
        Some(eta) => discrete_time_diffusion(valley, noise, eta, x, y),
        None => noise.diffusion(valley, x, y),
    };
    let (nx, ny) = (grid.nx, grid.ny);
    let (dx, dy) = (grid.dx, grid.dy);
    // Cell-centre values: loss, D11, D22, D12.
    let n = grid.len();
    let mut loss = vec![0.0; n];
    let mut d11 = vec![0.0; n];
    let mut d22 = vec![0.0; n];
    let mut d12 = vec![0.0; n];
    for i in 0..nx {
        let x = grid.x(i);
        for j in 0..ny {
            let y = grid.y(j);
            let k = grid.index(i, j);
            let d = diffusion(x, y);
            loss[k] = valley.loss(x, y);
            d11[k] = d[0][0];
            d22[k] = d[1][1];
            d12[k] = if cross == CrossDiffusionScheme::Drop {
                0.0
            } else {
                d[0][1]
            };
        }
    }
    let has_cross = d12.iter().any(|&v| v != 0.0);
    // Add flux coefficient w (flux = Σ w_c P_c across a face from cell `from` to cell `to`,
    // positive towards `to`) of column cell `col`.
    let mut add = |from: (usize, usize), to: (usize, usize), col: (usize, usize), w: f64| {
        let axis = usize::from(to.1 != from.1);
        sink(axis, from, col, w);
    };
    // One face between neighbouring cells `from` and `to` along `axis` (0: x, 1: y), with face
    // diffusivity `df` and potential-energy jump `jump` from `from` to `to`.
    let mut face = |from: (usize, usize), to: (usize, usize), axis: usize, df: f64, jump: f64| {
        let (h, h_t) = if axis == 0 { (dx, dy) } else { (dy, dx) };
        let (ca, cb) = sg_coefficients(df, jump);
        add(from, to, from, ca / h);
        add(from, to, to, -cb / h);
        if !has_cross {
            return;
        }
        // −∂t(D12 P) along the transverse direction t: −(corner₊ − corner₋)/h_t, each corner the
        // average of its four cells, or of its two interior cells on the boundary.
        let shift = |c: (usize, usize), dir: isize| -> Option<(usize, usize)> {
            let (i, j) = (c.0 as isize, c.1 as isize);
            let (i2, j2) = if axis == 0 {
                (i, j + dir)
            } else {
                (i + dir, j)
            };
            (i2 >= 0 && (i2 as usize) < nx && j2 >= 0 && (j2 as usize) < ny)
                .then_some((i2 as usize, j2 as usize))
        };
        let d12_at = |c: (usize, usize)| d12[c.0 * ny + c.1];
        for (dir, sign) in [(1isize, -1.0), (-1isize, 1.0)] {
            let w = sign / h_t;
            for c in [from, to] {
                match shift(c, dir) {
                    Some(c2) => {
                        add(from, to, c, 0.25 * w * d12_at(c));
                        add(from, to, c2, 0.25 * w * d12_at(c2));
                    }
                    None => add(from, to, c, 0.5 * w * d12_at(c)),
                }
            }
        }
    };
    // x-faces between (i, j) and (i+1, j).
    for i in 0..nx.saturating_sub(1) {
        let xf = grid.x_min + (i + 1) as f64 * dx;
        for j in 0..ny {
            let (ka, kb) = (grid.index(i, j), grid.index(i + 1, j));
            let df = diffusion(xf, grid.y(j))[0][0];
            face(
                (i, j),
                (i + 1, j),
                0,
                df,
                (loss[kb] - loss[ka]) + (d11[kb] - d11[ka]),
            );
        }
    }
    // y-faces between (i, j) and (i, j+1).
    for i in 0..nx {
        let x = grid.x(i);
        for j in 0..ny.saturating_sub(1) {
            let yf = grid.y_min + (j + 1) as f64 * dy;
            let (ka, kb) = (grid.index(i, j), grid.index(i, j + 1));
            let df = diffusion(x, yf)[1][1];
            face(
                (i, j),
                (i, j + 1),
                1,
                df,
                (loss[kb] - loss[ka]) + (d22[kb] - d22[ka]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AxisConfig;

    #[test]
    fn columns_sum_to_zero_with_cross_diffusion() {
        let grid = Grid::new(
            &AxisConfig {
                min: -1.0,
                max: 1.0,
                cells: 12,
            },
            &AxisConfig {
                min: -0.5,
                max: 0.5,
                cells: 9,
            },
        );
        let v = Valley2d::paper();
        let noise = Noise::Hessian {
            eta: 0.01,
            sigma: 0.5,
            power: 2.0,
        };
        let a = assemble(&grid, &v, &noise, CrossDiffusionScheme::Central);
        assert!(a.column_sum_defect() < 1e-13);
        assert!(a.coef.iter().any(|r| r[0] != 0.0));
    }

    #[test]
    fn discrete_time_diffusion_inflates_by_the_linear_map_factor() {
        let v = Valley2d::paper();
        let noise = Noise::Hessian {
            eta: 0.04,
            sigma: 0.05,
            power: 2.0,
        };
        // On the valley floor H = diag(ελ0, λ): D22 = Δ_Sλ²/(1 − ηλ/2).
        let (x, eta) = (0.8, 0.04);
        let lam = v.lambda_at(x);
        let d = discrete_time_diffusion(&v, &noise, eta, x, 0.0);
        assert!((d[1][1] / (0.002 * lam * lam / (1.0 - 0.5 * eta * lam)) - 1.0).abs() < 1e-12);
        assert!(d[0][1].abs() < 1e-18);
        // Off the floor: D̃ (I − ηH/2) = Δ_S H², and η = 0 gives back the continuum.
        let (x, y) = (0.9, 0.3);
        let h = v.hessian(x, y);
        let d = discrete_time_diffusion(&v, &noise, eta, x, y);
        let cont = noise.diffusion(&v, x, y);
        let zero = discrete_time_diffusion(&v, &noise, 0.0, x, y);
        for i in 0..2 {
            for j in 0..2 {
                let k = [
                    [1.0 - 0.5 * eta * h[0][0], -0.5 * eta * h[0][1]],
                    [-0.5 * eta * h[1][0], 1.0 - 0.5 * eta * h[1][1]],
                ];
                let prod = d[i][0] * k[0][j] + d[i][1] * k[1][j];
                assert!((prod - cont[i][j]).abs() < 1e-12 * cont[1][1], "{i}{j}");
                assert!((zero[i][j] - cont[i][j]).abs() < 1e-12 * cont[1][1]);
            }
        }
    }

    #[test]
    fn bernoulli_is_smooth_through_zero() {
        assert!((bernoulli(1e-11) - bernoulli(-1e-11)).abs() < 1e-10);
        assert!((bernoulli(1.0) - 1.0 / (std::f64::consts::E - 1.0)).abs() < 1e-15);
        assert_eq!(bernoulli(800.0), 0.0);
        assert!((bernoulli(-800.0) - 800.0).abs() < 1e-9);
    }
}
