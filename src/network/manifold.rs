//! The solution-manifold protocol: a loss whose minima form a manifold (squared error on
//! one-hot targets, P ≫ M·K, so the net interpolates), one common starting solution per seed
//! (trained to the manifold by heavy-ball GD), then GD, SGD (several B), GLD (isotropic noise
//! of SGD's total variance η² tr C) and label-noise SGD (targets Y + δξ, ξ ~ N(0, I), each
//! step) continue from it for the same number of updates. F(t), tr H(t) (Hutchinson) and the
//! loss are recorded along the way; the final values are compared paired by seed with 95 %
//! t intervals.
//!
//! On the manifold every per-sample gradient vanishes, so C → 0 (Eq. 4) for minibatch SGD and
//! for GLD: the paper's drift ∝ ησ along the valley has nothing to act on. Label noise keeps
//! C = δ² G / B ≈ δ² H / B (G the Gauss–Newton matrix, equal to H on the manifold), the case in
//! which the noise-driven drift decreases tr H.

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::curvature::{exact_trace, flatness, hutchinson_trace, noise_factor};
use super::data::{self, Batch, Samples};
use super::feedback::{self, SeedFeedback};
use super::mlp::{Loss, Mlp};
use super::train::{initial_parameters, per_sample_trace, stream_seed, top_eigenvalues};
use super::{NetworkConfig, Spread};
use crate::config::{Cancelled, Check, Invalid, Progress, check_positive};

/// Stream of the Hutchinson probes (shared by every run and time of a seed).
const STREAM_PROBES: u64 = 4;
/// Stream of the Lanczos start vector of the manifold measurements.
const STREAM_LANCZOS: u64 = 2;

/// `[network.manifold]`: keys of the solution-manifold protocol.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifoldConfig {
    /// Learning rate of the heavy-ball GD that brings the net to the manifold.
    #[serde(default = "default_pretrain_eta")]
    pub pretrain_eta: f64,
    /// Momentum of that heavy-ball GD.
    #[serde(default = "default_pretrain_momentum")]
    pub pretrain_momentum: f64,
    /// Stop the pre-training when the training loss is at or below this.
    #[serde(default = "default_pretrain_loss")]
    pub pretrain_loss: f64,
    /// Largest number of pre-training steps.
    #[serde(default = "default_pretrain_max_steps")]
    pub pretrain_max_steps: usize,
    /// Updates of every optimiser after the common start.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Updates between measurements of F, tr H and the loss.
    #[serde(default = "default_record_every")]
    pub record_every: usize,
    /// Standard deviation δ of the label noise added to every target component at each step.
    #[serde(default = "default_label_noise")]
    pub label_noise: f64,
    /// Rademacher probes of the Hutchinson estimate of tr H along the way.
    #[serde(default = "default_probes")]
    pub hutchinson_probes: usize,
    /// tr H at the start and the end by P exact Hessian-vector products (else Hutchinson).
    #[serde(default = "default_true")]
    pub exact_trace: bool,
}

fn default_pretrain_eta() -> f64 {
    0.1
}
fn default_pretrain_momentum() -> f64 {
    0.9
}
fn default_pretrain_loss() -> f64 {
    1e-4
}
fn default_pretrain_max_steps() -> usize {
    20_000
}
fn default_steps() -> usize {
    20_000
}
fn default_record_every() -> usize {
    1000
}
fn default_label_noise() -> f64 {
    0.5
}
fn default_probes() -> usize {
    10
}
fn default_true() -> bool {
    true
}

impl Default for ManifoldConfig {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

impl ManifoldConfig {
    /// Check every value; `key` is the table's dotted name.
    pub fn validate(&self, key: &str) -> Check {
        let k = |name: &str| format!("{key}.{name}");
        check_positive(&k("pretrain_eta"), self.pretrain_eta)?;
        check_positive(&k("pretrain_loss"), self.pretrain_loss)?;
        check_positive(&k("label_noise"), self.label_noise)?;
        if !(0.0..1.0).contains(&self.pretrain_momentum) {
            return Err(Invalid::new(
                k("pretrain_momentum"),
                format!("must be in [0, 1), got {}", self.pretrain_momentum),
            ));
        }
        for (name, v) in [
            ("steps", self.steps),
            ("record_every", self.record_every),
            ("hutchinson_probes", self.hutchinson_probes),
        ] {
            if v == 0 {
                return Err(Invalid::new(k(name), "must be >= 1"));
            }
        }
        Ok(())
    }
}

/// One continuation from the common solution.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Continuation {
    /// Full-batch GD.
    Gd,
    /// Minibatch SGD with this B.
    Sgd(usize),
    /// GD plus isotropic noise of total variance η² tr C(B).
    Gld(usize),
    /// Minibatch SGD with this B on targets Y + δξ, fresh ξ ~ N(0, I) every step.
    LabelNoise(usize),
}

impl Continuation {
    /// Short name, e.g. "sgd_b20".
    pub fn name(self) -> String {
        match self {
            Continuation::Gd => "gd".into(),
            Continuation::Sgd(b) => format!("sgd_b{b}"),
            Continuation::Gld(b) => format!("gld_b{b}"),
            Continuation::LabelNoise(b) => format!("label_noise_b{b}"),
        }
    }

    /// Legend label.
    pub fn label(self) -> String {
        match self {
            Continuation::Gd => "GD".into(),
            Continuation::Sgd(b) => format!("SGD (B = {b})"),
            Continuation::Gld(b) => format!("GLD (matched to B = {b})"),
            Continuation::LabelNoise(b) => format!("label-noise SGD (B = {b})"),
        }
    }

    fn stream(self) -> u64 {
        match self {
            Continuation::Gd => 100,
            Continuation::Sgd(b) => 101 + 4 * b as u64,
            Continuation::Gld(b) => 102 + 4 * b as u64,
            Continuation::LabelNoise(b) => 103 + 4 * b as u64,
        }
    }
}

/// The continuations of a configuration: GD, SGD at `batch` and every `batches`, GLD and
/// label-noise SGD at `batch`.
pub fn continuations(cfg: &NetworkConfig) -> Vec<Continuation> {
    let mut v = vec![Continuation::Gd, Continuation::Sgd(cfg.batch)];
    for &b in &cfg.batches {
        if !v.contains(&Continuation::Sgd(b)) {
            v.push(Continuation::Sgd(b));
        }
    }
    v.push(Continuation::Gld(cfg.batch));
    v.push(Continuation::LabelNoise(cfg.batch));
    v
}

/// Measurements at one time of one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    /// Updates since the common start.
    pub step: usize,
    /// Training loss L.
    pub loss: f64,
    /// Flatness F of the top `flatness_top` eigenvalues (Lanczos).
    pub flatness: Option<f64>,
    /// Largest eigenvalue (Lanczos).
    pub lambda_max: f64,
    /// Hutchinson estimate of tr H (the seed's fixed probes).
    pub trace_h: f64,
}

/// The common starting solution of one seed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Start {
    /// The seed.
    pub seed: u64,
    /// Heavy-ball steps taken.
    pub pretrain_steps: usize,
    /// Training loss reached.
    pub loss: f64,
    /// Training accuracy at the start.
    pub train_accuracy: f64,
    /// Test accuracy at the start.
    pub test_accuracy: f64,
    /// tr H at the start (exact when `exact_trace`).
    pub trace_h: f64,
    /// tr C of SGD at `batch` (Eq. 4, exact).
    pub trace_c_sgd: f64,
    /// tr C of label-noise SGD at `batch`, δ² tr H / B (on the manifold G = H).
    pub trace_c_label_noise: f64,
    #[serde(skip)]
    theta: Vec<f64>,
    #[serde(skip)]
    record: Option<Record>,
}

/// One run after the common start.
#[derive(Debug, Clone)]
pub struct ManifoldRun {
    /// What continued.
    pub kind: Continuation,
    /// The seed.
    pub seed: u64,
    /// Measurements, the start included.
    pub records: Vec<Record>,
    /// tr H at the end (exact when `exact_trace`).
    pub final_trace_h: f64,
    /// The loss became non-finite.
    pub diverged: bool,
}

/// Spread over seeds of one continuation's final values.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifoldGroup {
    /// Continuation name.
    pub name: String,
    /// Final F.
    pub final_flatness: Option<Spread>,
    /// Final tr H (exact when `exact_trace`).
    pub final_trace_h: Option<Spread>,
    /// Final training loss.
    pub final_loss: Option<Spread>,
    /// Mean over seeds of F(T) − F(T − record_every).
    pub last_interval_flatness_change: Option<f64>,
    /// |last_interval_flatness_change| is below the seed spread of the final F.
    pub saturated: Option<bool>,
    /// Runs that diverged.
    pub diverged: usize,
}

/// A paired difference over seeds with its 95 % t interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntervalComparison {
    /// Identifier, e.g. `sgd_minus_gd_flatness`.
    pub name: String,
    /// The claim the sign tests.
    pub claim: String,
    /// Mean of the per-seed differences.
    pub mean: f64,
    /// Lower end of the 95 % t interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Seeds whose difference has the claimed sign.
    pub seeds_holding: usize,
    /// Seeds compared.
    pub seeds: usize,
}

/// Summary of the manifold protocol.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifoldSummary {
    /// The loss ("mse").
    pub loss: Loss,
    /// Updates after the common start.
    pub steps: usize,
    /// Updates between measurements.
    pub record_every: usize,
    /// Label-noise δ.
    pub label_noise: f64,
    /// The SGD, GLD and label-noise batch.
    pub batch: usize,
    /// The common starting solutions.
    pub starts: Vec<Start>,
    /// Largest training loss at the start over seeds.
    pub start_loss_max: f64,
    /// One per continuation.
    pub groups: Vec<ManifoldGroup>,
    /// Seconds for the pre-training.
    pub pretrain_seconds: f64,
    /// Seconds for the continuations.
    pub continuation_seconds: f64,
    /// The 2-D FP model fed with the measured noise and geometry, next to the measured rates
    /// (`None` when the output Jacobian is too large, M·K > 4000).
    pub feedback: Option<Feedback>,
}

/// Predicted and measured drift rates per update, over seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RateRow {
    /// `label_noise_flatness_rate`, `label_noise_trace_h_rate`, `sgd_flatness_rate`,
    /// `sgd_trace_h_rate`.
    pub name: String,
    /// Which updates the measured rate covers and what it is paired with.
    pub window: String,
    /// The FP model's prediction (continuous time), per update.
    pub predicted: Option<Spread>,
    /// With the finite-η correction of the top eigen-directions (closed form), per update.
    pub predicted_discrete: Option<Spread>,
    /// The network's measured rate, per update.
    pub measured: Option<Spread>,
    /// Mean measured / mean predicted.
    pub measured_over_predicted: f64,
}

/// The feedback of the network into the 2-D FP model (`feedback` module).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Feedback {
    /// How the network's measurements become the model's parameters.
    pub mapping: String,
    /// The noise exponent γ used.
    pub gamma: f64,
    /// Per seed: geometry, Δ_S, predictions and measurements.
    pub seeds: Vec<SeedFeedback>,
    /// The rates, predicted and measured, over seeds.
    pub rates: Vec<RateRow>,
    /// Seconds for the measurements and FP runs.
    pub seconds: f64,
}

/// Mean and spread over seeds of one continuation, per record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifoldCurve {
    /// The continuation.
    pub kind: Continuation,
    /// Steps of the records.
    pub steps: Vec<f64>,
    /// Mean F.
    pub flatness_mean: Vec<f64>,
    /// Sample s.d. of F.
    pub flatness_std: Vec<f64>,
    /// Mean Hutchinson tr H.
    pub trace_h_mean: Vec<f64>,
    /// Sample s.d. of tr H.
    pub trace_h_std: Vec<f64>,
    /// Mean training loss.
    pub loss_mean: Vec<f64>,
}

/// What the protocol computed.
#[derive(Debug, Clone)]
pub struct ManifoldResult {
    /// The summary.
    pub summary: ManifoldSummary,
    /// The paired comparisons.
    pub comparisons: Vec<IntervalComparison>,
    /// Curves, one per continuation.
    pub curves: Vec<ManifoldCurve>,
}

/// 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.960 + 2.4 / df as f64,
    }
}

/// Mean and 95 % t interval of `diffs`; `seeds_holding` counts those with the sign of `sign`.
pub fn interval(name: &str, claim: &str, diffs: &[f64], sign: f64) -> IntervalComparison {
    let n = diffs.len();
    let s = Spread::of(diffs.iter().copied());
    let (mean, half) = match &s {
        Some(s) if n > 1 => (s.mean, t_quantile_975(n - 1) * s.std / (n as f64).sqrt()),
        Some(s) => (s.mean, f64::NAN),
        None => (f64::NAN, f64::NAN),
    };
    IntervalComparison {
        name: name.into(),
        claim: claim.into(),
        mean,
        ci_low: mean - half,
        ci_high: mean + half,
        seeds_holding: diffs.iter().filter(|d| **d * sign > 0.0).count(),
        seeds: n,
    }
}

fn measure(
    mlp: &Mlp,
    theta: &[f64],
    data: Batch,
    cfg: &NetworkConfig,
    seed: u64,
    step: usize,
) -> Record {
    let top = top_eigenvalues(
        mlp,
        theta,
        data,
        cfg.flatness_top,
        cfg.lanczos_steps,
        stream_seed(seed, STREAM_LANCZOS),
    );
    let hess = mlp.hvp_operator(theta, data, false);
    let trace_h = hutchinson_trace(
        mlp.n_params(),
        cfg.manifold.hutchinson_probes,
        stream_seed(seed, STREAM_PROBES),
        |v, out| hess.apply(v, out),
    );
    Record {
        step,
        loss: mlp.loss(theta, data),
        flatness: flatness(&top),
        lambda_max: top.first().copied().unwrap_or(f64::NAN),
        trace_h,
    }
}

fn trace_h(mlp: &Mlp, theta: &[f64], data: Batch, cfg: &NetworkConfig, hutchinson: f64) -> f64 {
    if cfg.manifold.exact_trace {
        exact_trace(mlp, theta, data)
    } else {
        hutchinson
    }
}

/// Heavy-ball GD from the seed's initial parameters to the manifold.
fn pretrain(mlp: &Mlp, digits: &data::Digits, cfg: &NetworkConfig, seed: u64) -> Start {
    let m = &cfg.manifold;
    let data = digits.train.view();
    let p = mlp.n_params();
    let mut theta = initial_parameters(mlp, seed);
    let mut velocity = vec![0.0; p];
    let mut grad = vec![0.0; p];
    let mut steps = 0;
    let mut loss = mlp.loss_grad(&theta, data, &mut grad, false);
    while loss > m.pretrain_loss && steps < m.pretrain_max_steps && loss.is_finite() {
        for ((t, v), g) in theta.iter_mut().zip(velocity.iter_mut()).zip(&grad) {
            *v = m.pretrain_momentum * *v - m.pretrain_eta * g;
            *t += *v;
        }
        steps += 1;
        loss = mlp.loss_grad(&theta, data, &mut grad, false);
    }
    let record = measure(mlp, &theta, data, cfg, seed, 0);
    let tr_h = trace_h(mlp, &theta, data, cfg, record.trace_h);
    let tr_sigma = per_sample_trace(mlp, &theta, data, &grad);
    Start {
        seed,
        pretrain_steps: steps,
        loss,
        train_accuracy: mlp.accuracy(&theta, data),
        test_accuracy: mlp.accuracy(&theta, digits.test.view()),
        trace_h: tr_h,
        trace_c_sgd: noise_factor(data.len(), cfg.batch) * tr_sigma.max(0.0),
        trace_c_label_noise: m.label_noise.powi(2) * tr_h / cfg.batch as f64,
        theta,
        record: Some(record),
    }
}

/// Copy the rows `idx` of `set` into a new sample set.
fn gather(set: &Samples, idx: &[usize]) -> Samples {
    set.select(idx)
}

/// Continue from `start` with `kind` for `steps` updates.
fn continue_run(
    mlp: &Mlp,
    train: &Samples,
    cfg: &NetworkConfig,
    start: &Start,
    kind: Continuation,
) -> ManifoldRun {
    let m = &cfg.manifold;
    let data = train.view();
    let n = data.len();
    let p = mlp.n_params();
    let eta = cfg.eta;
    let mut theta = start.theta.clone();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream_seed(start.seed, kind.stream()));
    let mut records = vec![start.record.clone().expect("start measured")];
    let mut grad = vec![0.0; p];
    let mut order: Vec<usize> = (0..n).collect();
    let mut cursor = n;
    let mut diverged = false;
    let batch = match kind {
        Continuation::Gd => n,
        Continuation::Sgd(b) | Continuation::Gld(b) | Continuation::LabelNoise(b) => b.min(n),
    };
    let factor = noise_factor(n, batch);
    for step in 1..=m.steps {
        let loss = match kind {
            Continuation::Gd | Continuation::Gld(_) => {
                mlp.loss_grad(&theta, data, &mut grad, false)
            }
            Continuation::Sgd(_) | Continuation::LabelNoise(_) => {
                if cursor + batch > n {
                    order.shuffle(&mut rng);
                    cursor = 0;
                }
                let idx = &order[cursor..cursor + batch];
                cursor += batch;
                let sub = gather(train, idx);
                grad.fill(0.0);
                let scale = 1.0 / batch as f64;
                if let Continuation::LabelNoise(_) = kind {
                    let k = data::N_CLASSES;
                    let shift = ndarray::Array2::from_shape_fn((batch, k), |_| {
                        m.label_noise * Distribution::<f64>::sample(&StandardNormal, &mut rng)
                    });
                    mlp.batch_grad_shifted(&theta, sub.view(), Some(shift.view()), scale, &mut grad)
                        * scale
                } else {
                    mlp.batch_grad(&theta, sub.view(), scale, &mut grad) * scale
                }
            }
        };
        if !loss.is_finite() {
            diverged = true;
            break;
        }
        let noise_std = if let Continuation::Gld(_) = kind {
            let tr_sigma = per_sample_trace(mlp, &theta, data, &grad);
            eta * (factor * tr_sigma / p as f64).max(0.0).sqrt()
        } else {
            0.0
        };
        theta.iter_mut().zip(&grad).for_each(|(t, g)| *t -= eta * g);
        if noise_std > 0.0 {
            for t in theta.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *t += noise_std * z;
            }
        }
        if step % m.record_every == 0 || step == m.steps {
            records.push(measure(mlp, &theta, data, cfg, start.seed, step));
        }
    }
    let last = records.last().map(|r| r.trace_h).unwrap_or(f64::NAN);
    let final_trace_h = if diverged {
        f64::NAN
    } else {
        trace_h(mlp, &theta, data, cfg, last)
    };
    ManifoldRun {
        kind,
        seed: start.seed,
        records,
        final_trace_h,
        diverged,
    }
}

/// Run the protocol: pre-train every seed, continue every (seed, continuation) in parallel.
pub fn run(
    cfg: &NetworkConfig,
    seed: u64,
    progress: &dyn Progress,
) -> Result<(ManifoldResult, Mlp, data::Digits, Vec<u64>), Cancelled> {
    let mlp = cfg.mlp().with_loss(Loss::Mse);
    let digits = data::split(cfg.train_size, seed);
    let seeds = cfg.seeds.resolve(seed);
    let kinds = continuations(cfg);
    progress.start(
        &format!(
            "network manifold {:?} ({} parameters, M = {}): common starts",
            mlp.sizes(),
            mlp.n_params(),
            digits.train.len()
        ),
        Some(seeds.len() as u64),
    );
    let t0 = Instant::now();
    let starts: Vec<Start> = seeds
        .par_iter()
        .map(|&s| {
            let st = pretrain(&mlp, &digits, cfg, s);
            progress.advance(1);
            st
        })
        .collect();
    progress.finish();
    if progress.cancelled() {
        return Err(Cancelled);
    }
    let pretrain_seconds = t0.elapsed().as_secs_f64();
    let t_fb = Instant::now();
    let geometries: Vec<Option<feedback::StartGeometry>> = starts
        .par_iter()
        .map(|st| {
            feedback::measure_start(
                &mlp,
                &st.theta,
                digits.train.view(),
                st.trace_h,
                cfg.eta,
                cfg.flatness_top,
                cfg.lanczos_steps,
                st.seed,
            )
        })
        .collect();
    let mut feedback_seconds = t_fb.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let jobs: Vec<(usize, Continuation)> = (0..starts.len())
        .flat_map(|i| kinds.iter().map(move |&k| (i, k)))
        .collect();
    progress.start(
        &format!("network manifold: {} continuations", jobs.len()),
        Some(jobs.len() as u64),
    );
    let runs: Vec<ManifoldRun> = jobs
        .par_iter()
        .map(|&(i, k)| {
            let r = continue_run(&mlp, &digits.train, cfg, &starts[i], k);
            progress.advance(1);
            r
        })
        .collect();
    progress.finish();
    if progress.cancelled() {
        return Err(Cancelled);
    }
    let continuation_seconds = t1.elapsed().as_secs_f64();
    let of =
        |k: Continuation| -> Vec<&ManifoldRun> { runs.iter().filter(|r| r.kind == k).collect() };
    let final_f = |r: &ManifoldRun| -> Option<f64> {
        if r.diverged {
            None
        } else {
            r.records.last().and_then(|x| x.flatness)
        }
    };
    let groups: Vec<ManifoldGroup> = kinds
        .iter()
        .map(|&k| {
            let rs = of(k);
            let final_flatness = Spread::of(rs.iter().filter_map(|r| final_f(r)));
            let changes: Vec<f64> = rs
                .iter()
                .filter_map(|r| {
                    let n = r.records.len();
                    (n >= 2 && !r.diverged)
                        .then(|| Some(r.records[n - 1].flatness? - r.records[n - 2].flatness?))
                        .flatten()
                })
                .collect();
            let last_change = Spread::of(changes).map(|s| s.mean);
            let saturated = match (&final_flatness, last_change) {
                (Some(f), Some(c)) if f.n > 1 => Some(c.abs() < f.std),
                _ => None,
            };
            ManifoldGroup {
                name: k.name(),
                final_trace_h: Spread::of(
                    rs.iter().filter(|r| !r.diverged).map(|r| r.final_trace_h),
                ),
                final_loss: Spread::of(
                    rs.iter()
                        .filter(|r| !r.diverged)
                        .filter_map(|r| r.records.last().map(|x| x.loss)),
                ),
                final_flatness,
                last_interval_flatness_change: last_change,
                saturated,
                diverged: rs.iter().filter(|r| r.diverged).count(),
            }
        })
        .collect();
    let paired =
        |a: Continuation, b: Continuation, f: &dyn Fn(&ManifoldRun) -> Option<f64>| -> Vec<f64> {
            seeds
                .iter()
                .filter_map(|&s| {
                    let ra = runs.iter().find(|r| r.kind == a && r.seed == s)?;
                    let rb = runs.iter().find(|r| r.kind == b && r.seed == s)?;
                    Some(f(ra)? - f(rb)?)
                })
                .collect()
        };
    let b = cfg.batch;
    let (small, large) = (
        *cfg.batches.iter().min().unwrap_or(&b),
        *cfg.batches.iter().max().unwrap_or(&b),
    );
    let mut comparisons = vec![
        interval(
            "sgd_minus_gd_flatness",
            &format!("SGD (B = {b}) ends flatter than GD"),
            &paired(Continuation::Sgd(b), Continuation::Gd, &final_f),
            1.0,
        ),
        interval(
            "sgd_minus_gld_flatness",
            &format!("SGD (B = {b}) ends flatter than GLD"),
            &paired(Continuation::Sgd(b), Continuation::Gld(b), &final_f),
            1.0,
        ),
        interval(
            "small_minus_large_batch_flatness",
            &format!("SGD B = {small} ends flatter than B = {large}"),
            &paired(Continuation::Sgd(small), Continuation::Sgd(large), &final_f),
            1.0,
        ),
    ];
    let trace_change = |k: Continuation| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.kind == k && !r.diverged)
            .filter_map(|r| {
                let st = starts.iter().find(|s| s.seed == r.seed)?;
                Some(r.final_trace_h - st.trace_h)
            })
            .collect()
    };
    comparisons.push(interval(
        "label_noise_trace_h_change",
        "label-noise SGD decreases tr H (end minus start)",
        &trace_change(Continuation::LabelNoise(b)),
        -1.0,
    ));
    comparisons.push(interval(
        "label_noise_minus_gd_flatness",
        "label-noise SGD ends flatter than GD",
        &paired(Continuation::LabelNoise(b), Continuation::Gd, &final_f),
        1.0,
    ));
    for k in [Continuation::Gd, Continuation::Sgd(b)] {
        comparisons.push(interval(
            &format!("{}_trace_h_change", k.name()),
            &format!("{} decreases tr H (end minus start)", k.label()),
            &trace_change(k),
            -1.0,
        ));
    }
    let t_fb = Instant::now();
    let feedback = feedback_summary(cfg, &starts, &geometries, &runs);
    feedback_seconds += t_fb.elapsed().as_secs_f64();
    let feedback = feedback.map(|mut f| {
        f.seconds = feedback_seconds;
        f
    });
    let curves = kinds.iter().map(|&k| curve(k, &of(k))).collect();
    let start_loss_max = starts
        .iter()
        .map(|s| s.loss)
        .fold(f64::NEG_INFINITY, f64::max);
    let summary = ManifoldSummary {
        loss: Loss::Mse,
        steps: cfg.manifold.steps,
        record_every: cfg.manifold.record_every,
        label_noise: cfg.manifold.label_noise,
        batch: b,
        starts,
        start_loss_max,
        groups,
        pretrain_seconds,
        continuation_seconds,
        feedback,
    };
    Ok((
        ManifoldResult {
            summary,
            comparisons,
            curves,
        },
        mlp,
        digits,
        seeds,
    ))
}

fn curve(kind: Continuation, runs: &[&ManifoldRun]) -> ManifoldCurve {
    let n = runs.iter().map(|r| r.records.len()).max().unwrap_or(0);
    let steps = runs
        .iter()
        .find(|r| r.records.len() == n)
        .map(|r| r.records.iter().map(|x| x.step as f64).collect())
        .unwrap_or_default();
    let stat = |f: &dyn Fn(&Record) -> Option<f64>| -> (Vec<f64>, Vec<f64>) {
        (0..n)
            .map(|k| {
                let v: Option<Vec<f64>> =
                    runs.iter().map(|r| r.records.get(k).and_then(f)).collect();
                match v.and_then(Spread::of) {
                    Some(s) => (s.mean, s.std),
                    None => (f64::NAN, f64::NAN),
                }
            })
            .unzip()
    };
    let (flatness_mean, flatness_std) = stat(&|r| r.flatness);
    let (trace_h_mean, trace_h_std) = stat(&|r| Some(r.trace_h));
    let (loss_mean, _) = stat(&|r| Some(r.loss));
    ManifoldCurve {
        kind,
        steps,
        flatness_mean,
        flatness_std,
        trace_h_mean,
        trace_h_std,
        loss_mean,
    }
}

/// The FP model's predictions at each seed's start next to the measured rates: label-noise
/// SGD over the first `record_every` updates, minibatch SGD over the whole run, both paired with
/// GD of the same seed (which removes the deterministic convergence to the manifold).
fn feedback_summary(
    cfg: &NetworkConfig,
    starts: &[Start],
    geometries: &[Option<feedback::StartGeometry>],
    runs: &[ManifoldRun],
) -> Option<Feedback> {
    let b = cfg.batch;
    let find = |k: Continuation, s: u64| runs.iter().find(|r| r.kind == k && r.seed == s);
    let inputs: Vec<(&Start, &feedback::StartGeometry)> = starts
        .iter()
        .zip(geometries)
        .filter_map(|(st, g)| Some((st, g.as_ref()?)))
        .collect();
    if inputs.is_empty() {
        return None;
    }
    let seeds: Vec<SeedFeedback> = inputs
        .par_iter()
        .map(|&(st, geo)| {
            let mut ln = feedback::predict(geo, cfg.eta, st.trace_c_label_noise);
            let mut sgd = feedback::predict(geo, cfg.eta, st.trace_c_sgd);
            let gd = find(Continuation::Gd, st.seed).filter(|r| !r.diverged);
            // Label noise: first interval, against GD at the same record (same probes).
            if let (Some(gd), Some(r)) = (
                gd,
                find(Continuation::LabelNoise(b), st.seed).filter(|r| !r.diverged),
            ) && let (Some(a), Some(g)) = (r.records.get(1), gd.records.get(1))
            {
                let n = a.step as f64;
                ln.measured_flatness_rate = a.flatness.zip(g.flatness).map(|(x, y)| (x - y) / n);
                ln.measured_trace_h_rate = Some((a.trace_h - g.trace_h) / n);
            }
            // Minibatch SGD: the whole run, against GD (exact tr H at the end).
            if let (Some(gd), Some(r)) = (
                gd,
                find(Continuation::Sgd(b), st.seed).filter(|r| !r.diverged),
            ) && let (Some(a), Some(g)) = (r.records.last(), gd.records.last())
            {
                let n = a.step as f64;
                sgd.measured_flatness_rate = a.flatness.zip(g.flatness).map(|(x, y)| (x - y) / n);
                sgd.measured_trace_h_rate = Some((r.final_trace_h - gd.final_trace_h) / n);
            }
            SeedFeedback {
                seed: st.seed,
                geometry: geo.clone(),
                label_noise: ln,
                sgd,
            }
        })
        .collect();
    let first = format!(
        "label-noise SGD (B = {b}) minus GD over the first {} updates",
        cfg.manifold.record_every
    );
    let whole = format!(
        "SGD (B = {b}) minus GD over all {} updates",
        cfg.manifold.steps
    );
    let rates = rate_rows(&seeds, &first, &whole);
    Some(Feedback {
        mapping:
            "γ = 1; Δ_S = η tr C / (2 tr H) (label noise: η δ² / 2B); valley λ(x) = λ0 + λ1 x² \
                  with λ(x_0) = tr H and λ'(x_0) = |P_T ∇tr H| (x = arclength along the manifold); \
                  per update dtrH/dn = η λ'(x_0) dx/dt, dF/dn = η (dx/dt) ∇F·P_T∇tr H / |P_T ∇tr H|"
                .into(),
        gamma: 1.0,
        seeds,
        rates,
        seconds: 0.0,
    })
}

impl Feedback {
    /// Recompute `rates` from `seeds` (after the FP's dx/dt replaced the closed form).
    pub fn refresh_rates(&mut self) {
        let window = |name: &str| {
            self.rates
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.window.clone())
                .unwrap_or_default()
        };
        let (first, whole) = (
            window("label_noise_flatness_rate"),
            window("sgd_flatness_rate"),
        );
        self.rates = rate_rows(&self.seeds, &first, &whole);
    }
}

/// The four rate rows over seeds: label noise over `first`, SGD over `whole`.
fn rate_rows(seeds: &[SeedFeedback], first: &str, whole: &str) -> Vec<RateRow> {
    type Pick = dyn Fn(&SeedFeedback) -> (f64, f64, Option<f64>);
    let row = |name: &str, window: &str, f: &Pick| {
        let predicted = Spread::of(seeds.iter().map(|s| f(s).0));
        let predicted_discrete = Spread::of(seeds.iter().map(|s| f(s).1));
        let measured = Spread::of(seeds.iter().filter_map(|s| f(s).2));
        let ratio = match (&predicted, &measured) {
            (Some(p), Some(m)) => m.mean / p.mean,
            _ => f64::NAN,
        };
        RateRow {
            name: name.into(),
            window: window.into(),
            predicted,
            predicted_discrete,
            measured,
            measured_over_predicted: ratio,
        }
    };
    vec![
        row("label_noise_flatness_rate", first, &|s| {
            (
                s.label_noise.flatness_rate,
                s.label_noise.discrete_flatness_rate,
                s.label_noise.measured_flatness_rate,
            )
        }),
        row("label_noise_trace_h_rate", first, &|s| {
            (
                s.label_noise.trace_h_rate,
                s.label_noise.discrete_trace_h_rate,
                s.label_noise.measured_trace_h_rate,
            )
        }),
        row("sgd_flatness_rate", whole, &|s| {
            (
                s.sgd.flatness_rate,
                s.sgd.discrete_flatness_rate,
                s.sgd.measured_flatness_rate,
            )
        }),
        row("sgd_trace_h_rate", whole, &|s| {
            (
                s.sgd.trace_h_rate,
                s.sgd.discrete_trace_h_rate,
                s.sgd.measured_trace_h_rate,
            )
        }),
    ]
}
