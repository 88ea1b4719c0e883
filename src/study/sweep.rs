//! Phase diagrams: the scenario's parts re-run over a grid of (σ, η), or of (Δ_S, η), in
//! parallel across points (paper Figs. 3c, 5b, 5d).
//!
//! At each point the noise becomes `hessian` with that (η, σ) (power kept), and
//! * the sampler (when `[sampler]` is present) gives F(x_ss), |x_ss|, τ_s and the diverged
//!   fraction;
//! * the theory (2-D valley) gives the reduced x_ss, F(x_ss) and the paper's convergence
//!   estimate η⟨λ⟩_ss;
//! * the FP solver (when `[fokker_planck]` is present and the sweep is over Δ_S) gives ⟨|x|⟩,
//!   the mode of |x| and F; it depends on Δ_S only, so it runs once per Δ_S value.
//!
//! Point identity: a point's id is its index in [`SweepConfig::points`](crate::scenario::SweepConfig::points) (η outer, σ or Δ_S
//! inner), and its sampler seed is [`point_seed`] of the scenario seed and the point's (σ, η),
//! so a point's row depends on nothing but the scenario and the id — not on the order of
//! execution, the shard that computes it, or the number of threads. [`run`] (the whole sweep
//! in one process) and [`run_point`] (one point, e.g. on a cluster worker) call the same
//! [`SweepPlan::point`] and give bit-identical rows.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{Cancelled, Progress};
use crate::fp;
use crate::noise::Noise;
use crate::sampler::{self, SamplerKind, rng::splitmix64};
use crate::scenario::{DEFAULT_POWER, Scenario};
use crate::theory::{self, TheoryConfig, TheoryPlan};

use super::{CancelOnly, StudyError};

/// One point of a sweep (a row of sweep.csv). Missing values are `None` (empty in the CSV).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    /// σ.
    pub sigma: f64,
    /// η.
    pub eta: f64,
    /// Δ_S = η σ.
    pub delta_s: f64,
    /// Sampler: F(x_ss), mean over converged walkers.
    pub flatness_ss: Option<f64>,
    /// Sampler: mean |x_ss|.
    pub x_ss_abs: Option<f64>,
    /// Sampler: τ_s = η⟨t_s⟩.
    pub search_time: Option<f64>,
    /// Sampler: fraction of diverged walkers.
    pub diverged_fraction: Option<f64>,
    /// Theory: reduced x_ss.
    pub theory_x_ss: Option<f64>,
    /// Theory: F(x_ss) of the reduced level.
    pub theory_flatness_ss: Option<f64>,
    /// Theory: η⟨λ⟩_ss (the paper's convergence condition is < 2).
    pub theory_eta_lambda: Option<f64>,
    /// FP: ⟨|x|⟩ of the steady density.
    pub fp_mean_abs_x: Option<f64>,
    /// FP: |x| at the mode of the x-marginal.
    pub fp_mode_abs_x: Option<f64>,
    /// FP: ⟨F(x)⟩.
    pub fp_mean_flatness: Option<f64>,
    /// Theory: mean time (t = nη) for the SGD map to reach the unstable region
    /// (`theory::divergence`; 2-D valley, Hessian noise γ = 2).
    pub theory_divergence_time: Option<f64>,
    /// Theory: predicted diverged fraction after the sampler's steps, 1 − exp(−nη/τ)
    /// (sampler kinds `sgd`, `sgd-exact-shift`).
    pub theory_diverged_fraction: Option<f64>,
}

/// The rows of a sweep, in point order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTable {
    /// One row per point.
    pub rows: Vec<SweepPoint>,
}

fn power_of(noise: &Noise) -> f64 {
    match *noise {
        Noise::Hessian { power, .. } => power,
        _ => DEFAULT_POWER,
    }
}

/// The sampler seed of the sweep point at (σ, η): SplitMix64 of the scenario seed and the
/// bits of σ and η, so it depends on the point's coordinates only.
pub fn point_seed(seed: u64, sigma: f64, eta: f64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ sigma.to_bits()) ^ eta.to_bits())
}

/// The ids of shard `k` of `n` (k = 1..n) among `total` points: those with id % n == k − 1
/// (round robin, so every shard gets a share of each η row).
pub fn shard_ids(total: usize, k: usize, n: usize) -> Vec<usize> {
    if n == 0 || k == 0 || k > n {
        return Vec::new();
    }
    (k - 1..total).step_by(n).collect()
}

/// A sweep point's identity: id, coordinates and sampler seed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct PointSpec {
    /// Index in [`SweepConfig::points`](crate::scenario::SweepConfig::points).
    pub id: usize,
    /// σ.
    pub sigma: f64,
    /// η.
    pub eta: f64,
    /// Δ_S = η σ.
    pub delta_s: f64,
    /// Sampler seed ([`point_seed`]).
    pub seed: u64,
}

/// One computed point with its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct PointOutcome {
    /// The point's id.
    pub id: usize,
    /// The row of sweep.csv.
    pub row: SweepPoint,
    /// Wall-clock seconds of this point.
    pub wall_seconds: f64,
    /// CPU seconds of the thread that computed it (where the platform reports it).
    pub cpu_seconds: Option<f64>,
}

/// A sweep resolved for computing points by id: the axes, the theory plan, and the FP
/// summaries of a Δ_S sweep (one per Δ_S value, computed once and shared by the points).
pub struct SweepPlan {
    sc: Scenario,
    etas: Vec<f64>,
    /// σ values, or Δ_S values of a Δ_S sweep.
    inner: Vec<f64>,
    by_delta_s: bool,
    power: f64,
    theory: Option<TheoryPlan>,
    /// FP summary per Δ_S index (a Δ_S sweep with `[fokker_planck]` only).
    fp: Vec<OnceLock<fp::FpSummary>>,
}

impl SweepPlan {
    /// The plan of the scenario's sweep (`None` without `[sweep]`); it keeps a copy of the
    /// scenario, so it can live in a worker for many points.
    pub fn new(sc: &Scenario) -> Option<Self> {
        let sw = sc.sweep()?;
        let etas = sw.etas(sc.noise());
        let (inner, by_delta_s) = match (&sw.sigma, &sw.delta_s) {
            (Some(s), _) => (s.values(), false),
            (None, Some(d)) => (d.values(), true),
            (None, None) => (Vec::new(), false),
        };
        let n_fp = if by_delta_s && sc.fokker_planck().is_some() {
            inner.len()
        } else {
            0
        };
        Some(Self {
            sc: sc.clone(),
            etas,
            inner,
            by_delta_s,
            power: power_of(sc.noise()),
            theory: theory_plan(sc),
            fp: (0..n_fp).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.etas.len() * self.inner.len()
    }

    /// True for a sweep without points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identity of point `id` (`None` past the last point); the coordinates are those of
    /// [`SweepConfig::points`](crate::scenario::SweepConfig::points), bit for bit.
    pub fn spec(&self, id: usize) -> Option<PointSpec> {
        if id >= self.len() {
            return None;
        }
        let eta = self.etas[id / self.inner.len()];
        let v = self.inner[id % self.inner.len()];
        let sigma = if self.by_delta_s { v / eta } else { v };
        Some(PointSpec {
            id,
            sigma,
            eta,
            delta_s: sigma * eta,
            seed: point_seed(self.sc.seed(), sigma, eta),
        })
    }

    /// Every point's identity, in id order.
    pub fn specs(&self) -> Vec<PointSpec> {
        (0..self.len()).filter_map(|id| self.spec(id)).collect()
    }

    fn fp_index(&self, id: usize) -> Option<usize> {
        (!self.fp.is_empty()).then(|| id % self.inner.len())
    }

    /// The FP summary at Δ_S index `k` (solved on first use).
    fn fp_summary(&self, k: usize, progress: &dyn Progress) -> Result<&fp::FpSummary, StudyError> {
        if let Some(s) = self.fp[k].get() {
            return Ok(s);
        }
        let Some(plan) = self.sc.fokker_planck() else {
            return Err(StudyError::NoSweep);
        };
        let noise = Noise::Hessian {
            eta: 1.0,
            sigma: self.inner[k],
            power: self.power,
        };
        let sol = fp::solve(&plan.with_noise(noise)?, &CancelOnly(progress))?;
        Ok(self.fp[k].get_or_init(|| sol.summary))
    }

    /// The Δ_S indices whose FP summary the points `ids` need and that are not solved yet.
    fn fp_missing(&self, ids: &[usize]) -> Vec<usize> {
        let set: BTreeSet<usize> = ids.iter().filter_map(|&id| self.fp_index(id)).collect();
        set.into_iter()
            .filter(|&k| self.fp[k].get().is_none())
            .collect()
    }

    /// Compute point `id`: sampler (on the point's seed) and theory at (σ, η), the FP values
    /// of its Δ_S. Non-finite values become missing (empty CSV fields).
    pub fn point(&self, id: usize, progress: &dyn Progress) -> Result<SweepPoint, StudyError> {
        let Some(p) = self.spec(id) else {
            return Err(StudyError::NoSuchPoint {
                id,
                points: self.len(),
            });
        };
        let (sigma, eta, power) = (p.sigma, p.eta, self.power);
        let noise = Noise::Hessian { eta, sigma, power };
        let mut row = SweepPoint {
            sigma,
            eta,
            delta_s: p.delta_s,
            flatness_ss: None,
            x_ss_abs: None,
            search_time: None,
            diverged_fraction: None,
            theory_x_ss: None,
            theory_flatness_ss: None,
            theory_eta_lambda: None,
            fp_mean_abs_x: None,
            fp_mode_abs_x: None,
            fp_mean_flatness: None,
            theory_divergence_time: None,
            theory_diverged_fraction: None,
        };
        if let Some(plan) = self.sc.sampler() {
            let at = plan
                .with_hessian_noise(eta, sigma, power)?
                .with_seed(p.seed);
            let res = sampler::run(&at, None, &CancelOnly(progress))?;
            row.flatness_ss = res.summary.flatness_ss;
            row.x_ss_abs = res.summary.x_ss_abs;
            row.search_time = res.summary.search_time;
            row.diverged_fraction = Some(res.summary.diverged_fraction);
        }
        if let Some(plan) = &self.theory {
            let th = theory::sweep_point(plan.valley(), &noise, plan.config());
            row.theory_x_ss = Some(th.x_ss);
            row.theory_flatness_ss = Some(th.flatness_ss);
            row.theory_eta_lambda = th.convergence.map(|c| c.eta_lambda_mean_ss);
            if power == 2.0 && sigma > 0.0 {
                let pred = theory::divergence::predict(plan.valley(), eta * sigma, eta);
                row.theory_divergence_time = Some(pred.mean_time);
                row.theory_diverged_fraction = self
                    .sc
                    .sampler()
                    .map(|s| s.config())
                    .filter(|c| matches!(c.kind, SamplerKind::Sgd | SamplerKind::SgdExactShift))
                    .map(|c| pred.diverged_fraction(eta, c.steps));
            }
        }
        if let Some(k) = self.fp_index(id) {
            let f = self.fp_summary(k, progress)?;
            row.fp_mean_abs_x = Some(f.mean_abs_x);
            row.fp_mode_abs_x = Some(f.mode_abs_x);
            row.fp_mean_flatness = Some(f.mean_flatness);
        }
        for v in [
            &mut row.flatness_ss,
            &mut row.x_ss_abs,
            &mut row.search_time,
            &mut row.diverged_fraction,
            &mut row.theory_x_ss,
            &mut row.theory_flatness_ss,
            &mut row.theory_eta_lambda,
            &mut row.fp_mean_abs_x,
            &mut row.fp_mode_abs_x,
            &mut row.fp_mean_flatness,
            &mut row.theory_divergence_time,
            &mut row.theory_diverged_fraction,
        ] {
            *v = v.filter(|x| x.is_finite());
        }
        Ok(row)
    }

    /// Compute the points `ids` on `threads` workers (at least one), each a one-thread pool
    /// that computes whole points (so each point's CPU time is its worker thread's), the FP
    /// summaries they need first (each solve's cost is added to the first point of its Δ_S
    /// to finish). `sink` receives each point as it finishes, from the worker
    /// threads, in no particular order; it returns false to stop. `progress` counts points.
    pub fn compute(
        &self,
        ids: &[usize],
        threads: usize,
        sink: &(dyn Fn(PointOutcome) -> bool + Sync),
        progress: &dyn Progress,
    ) -> Result<(), StudyError> {
        let missing = self.fp_missing(ids);
        // The cost of each FP solve, added to the first point of its Δ_S that finishes.
        let fp_cost: Vec<std::sync::Mutex<Option<(f64, f64)>>> = self
            .fp
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        if !missing.is_empty() {
            progress.start("sweep: Fokker–Planck per Δ_S", Some(missing.len() as u64));
            on_workers(threads, missing.len(), progress, &|i| {
                let (clock, cpu0) = (Instant::now(), thread_cpu_seconds());
                self.fp_summary(missing[i], progress)?;
                let cpu = cpu0.zip(thread_cpu_seconds()).map_or(0.0, |(a, b)| b - a);
                if let Ok(mut slot) = fp_cost[missing[i]].lock() {
                    *slot = Some((clock.elapsed().as_secs_f64(), cpu));
                }
                progress.advance(1);
                Ok(true)
            })?;
            progress.finish();
        }
        progress.start("sweep: points", Some(ids.len() as u64));
        on_workers(threads, ids.len(), progress, &|i| {
            let clock = Instant::now();
            let cpu0 = thread_cpu_seconds();
            let row = self.point(ids[i], progress)?;
            let cpu_seconds = match (cpu0, thread_cpu_seconds()) {
                (Some(a), Some(b)) => Some((b - a).max(0.0)),
                _ => None,
            };
            let mut wall_seconds = clock.elapsed().as_secs_f64();
            let mut cpu_seconds = cpu_seconds;
            let fp_share = self
                .fp_index(ids[i])
                .and_then(|k| fp_cost[k].lock().ok().and_then(|mut c| c.take()));
            if let Some((w, c)) = fp_share {
                wall_seconds += w;
                cpu_seconds = cpu_seconds.map(|v| v + c);
            }
            let go_on = sink(PointOutcome {
                id: ids[i],
                row,
                wall_seconds,
                cpu_seconds,
            });
            progress.advance(1);
            Ok(go_on)
        })?;
        progress.finish();
        Ok(())
    }
}

/// Run `f(0..n)` on `threads` one-thread rayon pools pulling indices from a shared counter;
/// stops at the first error, at `f` returning false, or at cancellation.
fn on_workers(
    threads: usize,
    n: usize,
    progress: &dyn Progress,
    f: &(dyn Fn(usize) -> Result<bool, StudyError> + Sync),
) -> Result<(), StudyError> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: std::sync::Mutex<Option<StudyError>> = std::sync::Mutex::new(None);
    let work = || {
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let res = if progress.cancelled() {
                Err(StudyError::from(Cancelled))
            } else {
                f(i)
            };
            match res {
                Ok(true) => {}
                Ok(false) => stop.store(true, Ordering::Relaxed),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(
                || match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(work),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(StudyError::Threads(e.to_string()));
                        }
                    }
                },
            );
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// CPU seconds used so far by the calling thread (Linux and other Unix; `None` elsewhere).
pub fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The theory plan of the sweep points: the scenario's `[theory]`, else defaults on the 2-D
/// valley (the theory columns are always filled on valley2d).
fn theory_plan(sc: &Scenario) -> Option<TheoryPlan> {
    if let Some(p) = sc.theory() {
        return Some(p.clone());
    }
    let valley = sc.valley2d()?;
    let domain = sc.fokker_planck().map(|p| (&p.config().x, &p.config().y));
    TheoryPlan::new(
        valley.clone(),
        sc.noise().clone(),
        &TheoryConfig::default(),
        domain,
    )
    .ok()
}

/// Compute point `id` of the scenario's sweep: exactly the row [`run`] gives for it (the hook
/// for cluster workers; build a [`SweepPlan`] once to compute many points).
pub fn run_point(sc: &Scenario, id: usize) -> Result<SweepPoint, StudyError> {
    let plan = SweepPlan::new(sc).ok_or(StudyError::NoSweep)?;
    plan.point(id, &crate::config::NoProgress)
}

/// Run the scenario's sweep over every point in the current rayon pool; `progress` counts
/// points.
pub fn run(sc: &Scenario, progress: &dyn Progress) -> Result<SweepTable, StudyError> {
    let Some(plan) = SweepPlan::new(sc) else {
        return Ok(SweepTable { rows: Vec::new() });
    };
    progress.start("sweep: points", Some(plan.len() as u64));
    let ids: Vec<usize> = (0..plan.len()).collect();
    plan.fp_missing(&ids)
        .into_par_iter()
        .map(|k| plan.fp_summary(k, progress).map(|_| ()))
        .collect::<Result<Vec<()>, StudyError>>()?;
    let rows: Result<Vec<SweepPoint>, StudyError> = ids
        .par_iter()
        .map(|&id| {
            if progress.cancelled() {
                return Err(StudyError::from(Cancelled));
            }
            let row = plan.point(id, progress);
            progress.advance(1);
            row
        })
        .collect();
    progress.finish();
    Ok(SweepTable { rows: rows? })
}

// Check that [`SweepPlan`] numbers points as `SweepConfig::points` does.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_coordinates_are_the_sweep_config_points_bit_for_bit() {
        for text in [
            "name='a'\nseed=3\n[landscape]\nkind='valley2d'\nepsilon=0.001\nlambda=[8.0,-2.0,1.0]\n[noise]\nkind='hessian'\neta=0.01\nsigma=0.2\n[sweep]\nsigma={min=0.0,max=0.2,points=7}\neta={min=0.01,max=0.29,points=5}\n",
            "name='b'\n[landscape]\nkind='valley2d'\nepsilon=0.001\nlambda=[8.0,-2.0,1.0]\n[noise]\nkind='hessian'\neta=0.01\nsigma=0.2\n[sweep]\ndelta_s={min=0.0001,max=0.004,points=6,log=true}\neta={min=0.005,max=0.02,points=3,log=true}\n",
        ] {
            let sc = Scenario::from_toml_str(text, std::path::Path::new("t.toml")).unwrap();
            let plan = SweepPlan::new(&sc).unwrap();
            let pts = sc.sweep().unwrap().points(sc.noise());
            assert_eq!(plan.len(), pts.len());
            for (id, &(s, e)) in pts.iter().enumerate() {
                let p = plan.spec(id).unwrap();
                assert_eq!(
                    (p.sigma.to_bits(), p.eta.to_bits()),
                    (s.to_bits(), e.to_bits())
                );
                assert_eq!(p.seed, point_seed(sc.seed(), s, e));
            }
            assert!(plan.spec(pts.len()).is_none());
        }
    }

    #[test]
    fn shards_partition_the_ids() {
        let mut all: Vec<usize> = (1..=3).flat_map(|k| shard_ids(10, k, 3)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(shard_ids(10, 2, 3), vec![1, 4, 7]);
        assert!(shard_ids(10, 4, 3).is_empty());
    }

    #[test]
    fn point_seeds_differ_between_points_and_scenario_seeds() {
        let a = point_seed(5, 0.1, 0.01);
        assert_ne!(a, point_seed(5, 0.1, 0.02));
        assert_ne!(a, point_seed(5, 0.2, 0.01));
        assert_ne!(a, point_seed(6, 0.1, 0.01));
        assert_eq!(a, point_seed(5, 0.1, 0.01));
    }
}
