//! The cell-centred rectangular grid of the FP solver.
//!
//! Layout: cell (i, j) — i along x, j along y — has linear index k = i·ny + j (y fastest),
//! so a density vector reshapes to a row-major (nx, ny) array P[i, j] = P(x_i, y_j).

use crate::config::AxisConfig;

/// A uniform cell-centred grid on [x_min, x_max] × [y_min, y_max].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Cells along x.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
    /// Left edge of the domain.
    pub x_min: f64,
    /// Bottom edge of the domain.
    pub y_min: f64,
    /// Cell width.
    pub dx: f64,
    /// Cell height.
    pub dy: f64,
}

impl Grid {
    /// The grid of two scenario axes.
    pub fn new(x: &AxisConfig, y: &AxisConfig) -> Self {
        Self {
            nx: x.cells,
            ny: y.cells,
            x_min: x.min,
            y_min: y.min,
            dx: (x.max - x.min) / x.cells as f64,
            dy: (y.max - y.min) / y.cells as f64,
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// Whether the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Linear index of cell (i, j).
    #[inline]
    pub fn index(&self, i: usize, j: usize) -> usize {
        i * self.ny + j
    }

    /// Centre x_i of column i.
    #[inline]
    pub fn x(&self, i: usize) -> f64 {
        self.x_min + (i as f64 + 0.5) * self.dx
    }

    /// Centre y_j of row j.
    #[inline]
    pub fn y(&self, j: usize) -> f64 {
        self.y_min + (j as f64 + 0.5) * self.dy
    }

    /// The x extent [x_min, x_min + nx·dx] (walls, not centres).
    pub fn x_range(&self) -> (f64, f64) {
        (self.x_min, self.x_min + self.nx as f64 * self.dx)
    }

    /// The y extent [y_min, y_min + ny·dy] (walls, not centres).
    pub fn y_range(&self) -> (f64, f64) {
        (self.y_min, self.y_min + self.ny as f64 * self.dy)
    }

    /// L (or any field) at every cell centre, cell k = i·ny + j.
    pub fn at_centres(&self, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        (0..self.len())
            .map(|k| f(self.x(k / self.ny), self.y(k % self.ny)))
            .collect()
    }

    /// Cell area dx·dy.
    pub fn cell_area(&self) -> f64 {
        self.dx * self.dy
    }

    /// All x centres.
    pub fn xs(&self) -> Vec<f64> {
        (0..self.nx).map(|i| self.x(i)).collect()
    }

    /// All y centres.
    pub fn ys(&self) -> Vec<f64> {
        (0..self.ny).map(|j| self.y(j)).collect()
    }

    /// x-marginal p(x_i) = Σ_j P_ij dy (so Σ p dx = mass).
    pub fn marginal_x(&self, p: &[f64]) -> Vec<f64> {
        p.chunks_exact(self.ny)
            .map(|col| col.iter().sum::<f64>() * self.dy)
            .collect()
    }

    /// y-marginal p(y_j) = Σ_i P_ij dx.
    pub fn marginal_y(&self, p: &[f64]) -> Vec<f64> {
        let mut m = vec![0.0; self.ny];
        for col in p.chunks_exact(self.ny) {
            for (acc, &v) in m.iter_mut().zip(col) {
                *acc += v;
            }
        }
        m.iter_mut().for_each(|v| *v *= self.dx);
        m
    }

    /// Σ P dx dy.
    pub fn mass(&self, p: &[f64]) -> f64 {
        p.iter().sum::<f64>() * self.cell_area()
    }

    /// ∫ f(x, y) P dx dy by the midpoint rule.
    pub fn expect(&self, p: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
        let mut s = 0.0;
        for i in 0..self.nx {
            let x = self.x(i);
            for j in 0..self.ny {
                s += f(x, self.y(j)) * p[self.index(i, j)];
            }
        }
        s * self.cell_area()
    }
}
