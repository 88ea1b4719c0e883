//! What a walker records while it runs: ensemble time-series sums, running extremes for the
//! search time, histograms on the FP grid, stored trajectories. Shared by the 2-D and N-D walkers.

use crate::config::AxisConfig;

use super::rng::{LANES, Lanes};

/// Columns of the ensemble time series (sums over alive walkers at a record step).
pub(crate) const TS_COLS: usize = 6;
/// Column indices into a time-series row.
pub(crate) const TS_FLATNESS: usize = 0;
pub(crate) const TS_FLATNESS_HAT: usize = 1;
pub(crate) const TS_LOSS: usize = 2;
pub(crate) const TS_X: usize = 3;
pub(crate) const TS_ABS_X: usize = 4;
pub(crate) const TS_Y_SQ: usize = 5;

/// Number of log-spaced record steps of the ensemble time series (before de-duplication).
pub const TIMESERIES_POINTS: usize = 160;
/// Points kept per stored trajectory (subsampled at a fixed stride).
pub const TRAJECTORY_POINTS: usize = 2000;
/// Histograms bin every `HIST_STRIDE`-th post-burn-in step of a walker (successive steps are
/// strongly correlated; binning every step would cost more than it adds).
pub const HIST_STRIDE: usize = 4;

/// Fixed parameters of a run, shared by every batch.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub seed: u64,
    pub walkers: usize,
    pub steps: usize,
    pub burn_in: usize,
    pub radius_sq: f64,
    /// Sorted, unique record steps of the time series (first is 0).
    pub record_steps: Vec<usize>,
    pub traj_walkers: usize,
    pub traj_stride: usize,
    pub grid: Option<(AxisConfig, AxisConfig)>,
    /// Record ln(x/y)² every this many post-burn-in steps (2-D expression landscapes); 0 = off.
    pub log_ratio_stride: usize,
    /// Set when the caller asked to stop; walkers check it every [`STOP_CHECK_STEPS`] steps.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Steps between two looks at [`Plan::stop`] inside a walk (a power of two).
pub(crate) const STOP_CHECK_STEPS: usize = 1 << 16;

impl Plan {
    /// True when the run should stop now (checked at step `k`).
    #[inline(always)]
    pub fn stop_at(&self, k: usize) -> bool {
        k & (STOP_CHECK_STEPS - 1) == 0 && self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Log-spaced record steps 0, 1, …, steps.
    pub fn log_steps(steps: usize) -> Vec<usize> {
        let mut v = vec![0usize];
        let top = (steps as f64).ln();
        for k in 0..TIMESERIES_POINTS {
            let s = (top * k as f64 / (TIMESERIES_POINTS - 1) as f64)
                .exp()
                .round() as usize;
            let s = s.clamp(1, steps);
            if *v.last().unwrap_or(&0) != s {
                v.push(s);
            }
        }
        if *v.last().unwrap_or(&0) != steps {
            v.push(steps);
        }
        v
    }

    /// Number of post-burn-in states averaged per walker.
    pub fn averaged(&self) -> usize {
        self.steps - self.burn_in
    }

    /// Stride of the ln(x/y)² record: every [`HIST_STRIDE`]-th post-burn-in step (fewer when
    /// fewer steps are averaged); 0 when `on` is false.
    pub fn log_ratio_stride(on: bool, steps: usize, burn_in: usize) -> usize {
        if on {
            HIST_STRIDE.min(steps - burn_in).max(1)
        } else {
            0
        }
    }

    /// Post-burn-in states entering the ln(x/y)² average (steps burn_in + stride·m, m ≥ 1).
    pub fn log_ratio_samples(&self) -> usize {
        self.averaged()
            .checked_div(self.log_ratio_stride)
            .unwrap_or(0)
    }
}

/// Result of one walker.
#[derive(Debug, Clone, Default)]
pub(crate) struct WalkerOut {
    pub diverged_at: Option<usize>,
    /// |x̄| (2-D) or the root-mean-square of the x̄_j (N-D).
    pub x_abs: f64,
    pub flatness: f64,
    pub flatness_hat: f64,
    /// Time averages [x̄, ȳ] (N-D: means over j and i).
    pub mean: [f64; 2],
    /// Time averages [⟨x²⟩, ⟨xy⟩, ⟨y²⟩] (2-D only; zero for N-D).
    pub m2: [f64; 3],
    /// Time average of the mean of y_i².
    pub y_sq: f64,
    /// First step at which the search observable reaches its time average.
    pub search_step: Option<usize>,
    /// Time average of ln(x/y)² (when [`Plan::log_ratio_stride`] > 0).
    pub log_ratio_sq: Option<f64>,
}

impl WalkerOut {
    /// The output of a walker that diverged at step `k` (no averages).
    pub(crate) fn diverged(k: usize) -> Self {
        Self {
            diverged_at: Some(k),
            ..Default::default()
        }
    }
}

/// The traced walkers of a batch whose walker `first + l` sits in lane l: (walker, points), those
/// active with an index below `traced`, each starting at `start`.
pub(crate) fn traced_walkers(
    active: &[bool],
    first: usize,
    traced: usize,
    start: [f64; 2],
) -> Vec<(usize, Vec<[f64; 2]>)> {
    (0..active.len())
        .filter(|&l| active[l] && first + l < traced)
        .map(|l| (first + l, vec![start]))
        .collect()
}

/// Appends `point(l)` to the trajectory of every traced walker whose lane l is alive.
pub(crate) fn push_traced(
    trajectories: &mut [(usize, Vec<[f64; 2]>)],
    first: usize,
    alive: &[bool],
    point: impl Fn(usize) -> [f64; 2],
) {
    for (w, pts) in trajectories.iter_mut() {
        let l = *w - first;
        if alive[l] {
            pts.push(point(l));
        }
    }
}

/// Sums of one batch on the record steps.
#[derive(Debug, Clone)]
pub(crate) struct TsAcc {
    pub alive: Vec<u64>,
    pub sums: Vec<[f64; TS_COLS]>,
}

impl TsAcc {
    pub fn new(points: usize) -> Self {
        Self {
            alive: vec![0; points],
            sums: vec![[0.0; TS_COLS]; points],
        }
    }

    #[inline]
    pub fn add(&mut self, idx: usize, row: [f64; TS_COLS]) {
        self.alive[idx] += 1;
        for (s, v) in self.sums[idx].iter_mut().zip(row) {
            *s += v;
        }
    }

    /// Add another batch's sums (in batch order, for bit-reproducibility).
    pub fn merge(&mut self, other: &TsAcc) {
        for (a, b) in self.alive.iter_mut().zip(&other.alive) {
            *a += b;
        }
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

/// Counts of x and y on the FP grid.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hist {
    pub x: Vec<u64>,
    pub y: Vec<u64>,
    /// Samples offered (inside or outside the grid).
    pub samples: u64,
    /// (min, cells / (max − min), cells) of the x and y axes.
    axes: [(f64, f64, f64); 2],
}

impl Hist {
    pub fn new(grid: &Option<(AxisConfig, AxisConfig)>) -> Self {
        match grid {
            Some((gx, gy)) => {
                let axis =
                    |a: &AxisConfig| (a.min, a.cells as f64 / (a.max - a.min), a.cells as f64);
                Self {
                    x: vec![0; gx.cells],
                    y: vec![0; gy.cells],
                    samples: 0,
                    axes: [axis(gx), axis(gy)],
                }
            }
            None => Self::default(),
        }
    }

    /// Bin one lock-step batch: cell indices are computed lane-wise (vectorised), the counts
    /// are then incremented for the alive lanes.
    #[inline(always)]
    pub fn add_lanes(&mut self, x: &Lanes, y: &Lanes, alive: &[bool; LANES]) {
        let index = |v: &Lanes, (min, scale, cells): (f64, f64, f64)| -> [usize; LANES] {
            std::array::from_fn(|l| {
                let u = (v[l] - min) * scale;
                if u >= 0.0 && u < cells {
                    u as usize
                } else {
                    usize::MAX
                }
            })
        };
        let ix = index(x, self.axes[0]);
        let iy = index(y, self.axes[1]);
        for l in 0..LANES {
            if alive[l] {
                self.samples += 1;
                if let Some(c) = self.x.get_mut(ix[l]) {
                    *c += 1;
                }
                if let Some(c) = self.y.get_mut(iy[l]) {
                    *c += 1;
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.x.iter_mut().zip(&other.x) {
            *a += b;
        }
        for (a, b) in self.y.iter_mut().zip(&other.y) {
            *a += b;
        }
        self.samples += other.samples;
    }
}

/// Density on an axis from counts: Σ p·dx = 1 over the cells (None when empty).
pub(crate) fn density(a: &AxisConfig, counts: &[u64]) -> Option<Vec<f64>> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let dx = (a.max - a.min) / a.cells as f64;
    Some(
        counts
            .iter()
            .map(|&c| c as f64 / (total as f64 * dx))
            .collect(),
    )
}

/// Relative resolution of the stored search-time records: a new running minimum (maximum) is
/// stored when it lies at least `SEARCH_RESOLUTION · max(|v0|, 1)` beyond the last stored one,
/// or when [`SEARCH_RECORDS`]⁻¹ of the run has passed since; the latest unstored record is kept
/// aside. This bounds the memory of a monotone walk (e.g. `gd`, where every step is a record)
/// and the error of t_s to the smaller of the time to move that far and steps / SEARCH_RECORDS.
pub const SEARCH_RESOLUTION: f64 = 1e-4;
/// At most about this many time-driven records per direction and walker.
pub const SEARCH_RECORDS: usize = 10_000;

/// Running extremes of a scalar observable with the steps at which new records were set
/// (thinned, see [`SEARCH_RESOLUTION`]), so the first passage to any level between them can be
/// found after the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extremes {
    lo: f64,
    hi: f64,
    delta: f64,
    gap: usize,
    mins: Vec<(usize, f64)>,
    maxs: Vec<(usize, f64)>,
    pending_min: Option<(usize, f64)>,
    pending_max: Option<(usize, f64)>,
}

impl Extremes {
    /// Start from value `v0` at step 0 of a run of `steps` steps.
    pub fn reset(&mut self, v0: f64, steps: usize) {
        self.lo = v0;
        self.hi = v0;
        self.delta = SEARCH_RESOLUTION * v0.abs().max(1.0);
        self.gap = (steps / SEARCH_RECORDS).max(1);
        self.mins.clear();
        self.maxs.clear();
        self.mins.push((0, v0));
        self.maxs.push((0, v0));
        self.pending_min = None;
        self.pending_max = None;
    }

    /// Whether `v` sets a new running extreme (cheap test for the hot loop).
    #[inline(always)]
    pub fn is_record(&self, v: f64) -> bool {
        v < self.lo || v > self.hi
    }

    #[inline]
    pub fn observe(&mut self, step: usize, v: f64) {
        if v < self.lo {
            self.lo = v;
            let last = self.mins.last().copied().unwrap_or((0, f64::INFINITY));
            if v <= last.1 - self.delta || step >= last.0 + self.gap {
                self.mins.push((step, v));
                self.pending_min = None;
            } else {
                self.pending_min = Some((step, v));
            }
        } else if v > self.hi {
            self.hi = v;
            let last = self.maxs.last().copied().unwrap_or((0, f64::NEG_INFINITY));
            if v >= last.1 + self.delta || step >= last.0 + self.gap {
                self.maxs.push((step, v));
                self.pending_max = None;
            } else {
                self.pending_max = Some((step, v));
            }
        }
    }

    /// First (stored) step at which the observable reached `target` coming from its start
    /// value (0 if it started there; None if it never did).
    pub fn first_passage(&self, target: f64) -> Option<usize> {
        let v0 = self.mins.first()?.1;
        if v0 > target {
            let i = self.mins.partition_point(|&(_, v)| v > target);
            self.mins
                .get(i)
                .copied()
                .or(self.pending_min.filter(|p| p.1 <= target))
                .map(|r| r.0)
        } else if v0 < target {
            let i = self.maxs.partition_point(|&(_, v)| v < target);
            self.maxs
                .get(i)
                .copied()
                .or(self.pending_max.filter(|p| p.1 >= target))
                .map(|r| r.0)
        } else {
            Some(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_passage_of_a_monotone_walk_is_found_within_the_resolution() {
        let mut e = Extremes::default();
        e.reset(1.5, 100_000);
        // x_k = 1.5 · 0.999^k: every step is a new minimum.
        let steps = 100_000;
        let mut last = 1.5;
        for k in 1..=steps {
            let v = 1.5 * 0.999f64.powi(k as i32);
            if e.is_record(v) {
                e.observe(k, v);
            }
            last = v;
        }
        assert!(e.mins.len() < 2 + (1.0 / SEARCH_RESOLUTION) as usize + SEARCH_RECORDS);
        let target = 0.75;
        let exact = ((target / 1.5f64).ln() / 0.999f64.ln()).ceil() as usize;
        let found = e.first_passage(target).unwrap();
        // the level actually passed is within δ below the target
        let passed = 1.5 * 0.999f64.powi(found as i32);
        assert!(
            found >= exact && passed >= target - 1.5 * SEARCH_RESOLUTION,
            "{found} vs {exact}"
        );
        // the limit of a converging walk is reached although it moves by less than δ at the end
        assert_eq!(e.first_passage(last), Some(steps));
        assert!(e.first_passage(0.5 * last).is_none());
        // a noisy walk that returns above the start: first passage upwards
        let mut e = Extremes::default();
        e.reset(0.0, 4);
        for (k, v) in [0.5, -0.2, 1.0, 0.3].iter().enumerate() {
            if e.is_record(*v) {
                e.observe(k + 1, *v);
            }
        }
        assert_eq!(e.first_passage(0.4), Some(1));
        assert_eq!(e.first_passage(0.7), Some(3));
        assert_eq!(e.first_passage(-0.1), Some(2));
        assert_eq!(e.first_passage(0.0), Some(0));
        assert_eq!(e.first_passage(2.0), None);
    }
}

/// Output of one batch of walkers.
#[derive(Debug, Clone)]
pub(crate) struct BatchOut {
    pub walkers: Vec<WalkerOut>,
    pub ts: TsAcc,
    pub hist: Hist,
    /// (walker index, points) of the stored trajectories.
    pub trajectories: Vec<(usize, Vec<[f64; 2]>)>,
}
