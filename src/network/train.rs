//! Training: gradient descent (full batch), SGD (Eq. 3, minibatches of size B drawn without
//! replacement, reshuffled every epoch) and gradient Langevin dynamics (full gradient plus
//! isotropic Gaussian noise whose total variance matches SGD's, η² tr C).
//!
//! One "epoch" is ⌈M/B⌉ updates for every optimiser, B being the SGD batch of the comparison:
//! GD and GLD take as many steps per epoch as SGD, so the three differ only in their noise.
//! The top Hessian eigenvalues (Lanczos) and the flatness F are recorded every few epochs.

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::curvature::{flatness, lanczos_top, noise_factor};
use super::data::{Batch, Samples};
use super::mlp::{Mlp, map_chunks};

/// The update rule.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Optimiser {
    /// Full-batch gradient descent.
    Gd,
    /// Minibatch stochastic gradient descent (Eq. 3).
    Sgd,
    /// Gradient Langevin dynamics with isotropic noise matched to SGD's total variance.
    Gld,
}

impl Optimiser {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Optimiser::Gd => "gd",
            Optimiser::Sgd => "sgd",
            Optimiser::Gld => "gld",
        }
    }
}

/// One training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSpec {
    /// The update rule.
    pub optimiser: Optimiser,
    /// SGD batch size B (for GD/GLD: sets the steps per epoch and GLD's noise level).
    pub batch: usize,
    /// Seed of the initial parameters (shared by all runs of that seed).
    pub seed: u64,
}

/// How to train and observe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Learning rate η.
    pub eta: f64,
    /// Epochs.
    pub epochs: usize,
    /// Epochs between flatness measurements (0: start and end only).
    pub every: usize,
    /// Number of top eigenvalues in F.
    pub top: usize,
    /// Lanczos iterations per measurement.
    pub lanczos_steps: usize,
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run.
    pub spec: RunSpec,
    /// Final parameters.
    pub theta: Vec<f64>,
    /// Epochs at which the flatness was measured.
    pub epochs: Vec<f64>,
    /// Flatness F at those epochs (`None` if a top eigenvalue was ≤ 0).
    pub flatness: Vec<Option<f64>>,
    /// The top eigenvalues at those epochs (decreasing).
    pub top_eigenvalues: Vec<Vec<f64>>,
    /// Training loss L at those epochs.
    pub train_loss: Vec<f64>,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final training accuracy.
    pub train_accuracy: f64,
    /// Wall seconds per epoch of the updates alone (no measurements).
    pub seconds_per_epoch: f64,
    /// The loss became non-finite; training stopped.
    pub diverged: bool,
}

/// A seed for stream `stream` of run seed `seed` (SplitMix64 mixing).
pub fn stream_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stream of the initial parameters.
const STREAM_INIT: u64 = 1;
/// Stream of the Lanczos start vectors.
const STREAM_LANCZOS: u64 = 2;

/// Stream of a run's training noise (minibatch order or Langevin noise).
fn stream_noise(spec: &RunSpec) -> u64 {
    16 + 8 * spec.batch as u64
        + match spec.optimiser {
            Optimiser::Gd => 0,
            Optimiser::Sgd => 1,
            Optimiser::Gld => 2,
        }
}

/// Initial parameters of seed `seed`.
pub fn initial_parameters(mlp: &Mlp, seed: u64) -> Vec<f64> {
    mlp.init(&mut Xoshiro256PlusPlus::seed_from_u64(stream_seed(
        seed,
        STREAM_INIT,
    )))
}

/// The top eigenvalues of H at θ by Lanczos (full training set, exact HVPs).
pub fn top_eigenvalues(
    mlp: &Mlp,
    theta: &[f64],
    data: Batch,
    top: usize,
    steps: usize,
    seed: u64,
) -> Vec<f64> {
    let h = mlp.hvp_operator(theta, data, true);
    lanczos_top(mlp.n_params(), top, steps, seed, |v, out| h.apply(v, out))
}

/// Train one network and record its flatness along the way.
pub fn train(
    mlp: &Mlp,
    train_set: &Samples,
    test_set: &Samples,
    spec: RunSpec,
    schedule: &Schedule,
) -> RunOutcome {
    let data = train_set.view();
    let m = data.len();
    let p = mlp.n_params();
    let batch = spec.batch.clamp(1, m);
    let steps_per_epoch = m.div_ceil(batch);
    let mut theta = initial_parameters(mlp, spec.seed);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream_seed(spec.seed, stream_noise(&spec)));
    let lanczos_seed = stream_seed(spec.seed, STREAM_LANCZOS);
    let mut out = RunOutcome {
        spec,
        theta: Vec::new(),
        epochs: Vec::new(),
        flatness: Vec::new(),
        top_eigenvalues: Vec::new(),
        train_loss: Vec::new(),
        test_accuracy: 0.0,
        train_accuracy: 0.0,
        seconds_per_epoch: 0.0,
        diverged: false,
    };
    let observe = |theta: &[f64], epoch: usize, out: &mut RunOutcome| {
        let top = top_eigenvalues(
            mlp,
            theta,
            data,
            schedule.top,
            schedule.lanczos_steps,
            lanczos_seed,
        );
        out.epochs.push(epoch as f64);
        out.flatness.push(flatness(&top));
        out.top_eigenvalues.push(top);
        out.train_loss.push(mlp.loss(theta, data));
    };
    observe(&theta, 0, &mut out);
    let mut order: Vec<usize> = (0..m).collect();
    let mut grad = vec![0.0; p];
    let mut scratch = Samples {
        x: ndarray::Array2::zeros((0, 0)),
        labels: Vec::new(),
    };
    let mut train_seconds = 0.0;
    let factor = noise_factor(m, batch);
    // Σ_n ‖g_n‖² at the current θ (GLD only; from the same passes as the gradient).
    let mut gld_sum_sq = 0.0;
    for epoch in 1..=schedule.epochs {
        let start = Instant::now();
        if spec.optimiser == Optimiser::Sgd {
            order.shuffle(&mut rng);
        }
        for step in 0..steps_per_epoch {
            let loss = match spec.optimiser {
                Optimiser::Gd => mlp.loss_grad(&theta, data, &mut grad, true),
                Optimiser::Sgd => {
                    let idx = &order[step * batch..((step + 1) * batch).min(m)];
                    scratch = gather(train_set, idx, scratch);
                    grad.fill(0.0);
                    let b = idx.len();
                    mlp.batch_grad(&theta, scratch.view(), 1.0 / b as f64, &mut grad) / b as f64
                }
                Optimiser::Gld => {
                    let (loss, sum_sq) = mlp.loss_grad_sq_norms(&theta, data, &mut grad, true);
                    gld_sum_sq = sum_sq;
                    loss
                }
            };
            if !loss.is_finite() {
                out.diverged = true;
                break;
            }
            // GLD: isotropic noise with per-component variance η² tr C / P, C at the current θ.
            let noise_std = if spec.optimiser == Optimiser::Gld {
                let tr_sigma = trace_from_sq_norms(gld_sum_sq, m, &grad);
                schedule.eta * (factor * tr_sigma / p as f64).max(0.0).sqrt()
            } else {
                0.0
            };
            theta
                .iter_mut()
                .zip(&grad)
                .for_each(|(t, g)| *t -= schedule.eta * g);
            if spec.optimiser == Optimiser::Gld {
                let std = noise_std;
                for t in theta.iter_mut() {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    *t += std * z;
                }
            }
        }
        train_seconds += start.elapsed().as_secs_f64();
        if out.diverged {
            break;
        }
        let due = schedule.every > 0 && epoch % schedule.every == 0;
        if due || epoch == schedule.epochs {
            observe(&theta, epoch, &mut out);
        }
    }
    out.seconds_per_epoch = train_seconds / schedule.epochs.max(1) as f64;
    out.test_accuracy = mlp.accuracy(&theta, test_set.view());
    out.train_accuracy = mlp.accuracy(&theta, data);
    out.theta = theta;
    out
}

/// tr Σ = (1/M) Σ_n ‖g_n‖² − ‖∇L‖², the trace of the per-sample gradient covariance at θ
/// (`mean_grad` = ∇L(θ)); tr C = (M − B)/(B (M − 1)) · tr Σ.
pub fn per_sample_trace(mlp: &Mlp, theta: &[f64], data: Batch, mean_grad: &[f64]) -> f64 {
    let parts = map_chunks(data, true, |c| mlp.batch_sq_grad_norms(theta, c).0);
    trace_from_sq_norms(parts.iter().sum::<f64>(), data.len(), mean_grad)
}

/// tr Σ = (1/M) Σ_n ‖g_n‖² − ‖∇L‖² from the sum of squared per-sample gradient norms.
fn trace_from_sq_norms(sum_sq: f64, m: usize, mean_grad: &[f64]) -> f64 {
    sum_sq / m as f64 - mean_grad.iter().map(|g| g * g).sum::<f64>()
}

/// Copy the rows `idx` of `set` into `buf` (reusing its allocation when the shape fits).
fn gather(set: &Samples, idx: &[usize], mut buf: Samples) -> Samples {
    let d = set.x.ncols();
    if buf.x.dim() != (idx.len(), d) {
        buf.x = ndarray::Array2::zeros((idx.len(), d));
    }
    buf.labels.clear();
    for (r, &i) in idx.iter().enumerate() {
        buf.x.row_mut(r).assign(&set.x.row(i));
        buf.labels.push(set.labels[i]);
    }
    buf
}
