//! A small fully connected network on the UCI 8×8 digits: the real-network check of the
//! paper's Figs. 1, 2(b), 3(b) (Hessian spectrum, C–H alignment, flatness dynamics).
//!
//! - [`data`]: the UCI digits shipped in `data/digits.csv`, fixed seeded train/test split;
//! - [`mlp`]: forward pass, backprop, exact Hessian-vector products (R-operator), per-sample
//!   gradients, hand-written over ndarray buffers;
//! - [`train`]: GD, SGD (Eq. 3) and GLD with matched isotropic noise, flatness tracking;
//! - [`curvature`]: dense Hessian + eigen-decomposition, Lanczos, noise covariance C (Eq. 4) in
//!   the eigenbasis of H, flatness, Spearman and the γ fit of C_ii ∝ H_ii^γ;
//!
//! Its figures and tables (Figs. 1(a), 1(b), 2(b), 3(b)) are drawn by `report::network`.
//!
//! [`run`] trains every (optimiser, batch, seed) combination in parallel (one rayon task per
//! run, each with its own random streams), then analyses the SGD network of the first seed.

pub mod curvature;
pub mod data;
pub mod feedback;
pub mod layers;
pub mod manifold;
pub mod mlp;
pub mod tanh;
pub mod train;

use std::collections::BTreeSet;
use std::time::Instant;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{Cancelled, Check, Invalid, Progress, check_positive};

pub use curvature::PowerFit;
pub use layers::{LayerAlignment, LayerSpectrum};
pub use manifold::{IntervalComparison, ManifoldConfig, ManifoldCurve, ManifoldSummary};
pub use mlp::{Activation, Loss, Mlp};
pub use train::{Optimiser, RunOutcome, RunSpec, Schedule};

/// Largest parameter count for which the dense Hessian is formed (P² doubles, O(P³) eigen).
pub const MAX_HESSIAN_PARAMS: usize = 8000;
/// Largest network (parameter count) the check trains: ten million weights and biases.
pub const MAX_PARAMS: usize = 10_000_000;
/// Largest number of training seeds (`seeds = N` or a list).
pub const MAX_SEEDS: usize = 10_000;
/// Step of the central-difference check of the Hessian-vector product.
pub const HVP_CHECK_STEP: f64 = 1e-4;
/// Seed stream of the random direction of the HVP check.
const STREAM_HVP_CHECK: u64 = 3;

/// Seeds of the training runs: a count (scenario seed, seed + 1, …) or an explicit list.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Seeds {
    /// `n` seeds: the scenario seed and the n − 1 following integers.
    Count(usize),
    /// These seeds.
    List(Vec<u64>),
}

impl Default for Seeds {
    fn default() -> Self {
        Seeds::Count(3)
    }
}

impl Seeds {
    /// The seeds, given the scenario seed.
    pub fn resolve(&self, base: u64) -> Vec<u64> {
        match self {
            Seeds::Count(n) => (0..*n as u64).map(|k| base.wrapping_add(k)).collect(),
            Seeds::List(list) => list.clone(),
        }
    }
}

/// Which experiment the `[network]` section runs.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The paper's: every optimiser trains from the same initial weights (Figs. 1, 2b, 3b).
    #[default]
    Paper,
    /// Every optimiser continues from a common solution on a manifold of minima (MSE loss).
    Manifold,
}

/// `[network]`: the real-network check (Figs. 1, 2b, 3b).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// "paper" (default) or "manifold" (docs/network.md).
    #[serde(default)]
    pub protocol: Protocol,
    /// Keys of the manifold protocol (`[network.manifold]`).
    #[serde(default)]
    pub manifold: ManifoldConfig,
    /// Hidden layer widths (input 64 and output 10 are fixed by the data).
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity: "tanh" or "relu".
    #[serde(default)]
    pub activation: Activation,
    /// Training-set size M (the rest of the 1797 digits is the test set).
    #[serde(default = "default_train_size")]
    pub train_size: usize,
    /// Learning rate η (Eq. 3).
    #[serde(default = "default_eta")]
    pub eta: f64,
    /// SGD batch size B of the optimiser comparison (Fig. 2b) and of the Fig. 1 network;
    /// GD and GLD take ⌈M/B⌉ steps per epoch and GLD matches the noise of this B.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// SGD batch sizes of Fig. 3(b).
    #[serde(default = "default_batches")]
    pub batches: Vec<usize>,
    /// Optimisers of Fig. 2(b): any of "gd", "sgd", "gld".
    #[serde(default = "default_optimisers")]
    pub optimisers: Vec<Optimiser>,
    /// Training epochs.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Seeds (count or list); each seed fixes the initial parameters shared by all its runs.
    #[serde(default)]
    pub seeds: Seeds,
    /// Epochs between Lanczos measurements of the flatness.
    #[serde(default = "default_hessian_every")]
    pub hessian_every: usize,
    /// Number of top eigenvalues in the flatness F (10 in the paper).
    #[serde(default = "default_flatness_top")]
    pub flatness_top: usize,
    /// Lanczos iterations per flatness measurement.
    #[serde(default = "default_lanczos_steps")]
    pub lanczos_steps: usize,
    /// Form the full Hessian of the trained SGD network and its eigen-decomposition (Fig. 1).
    #[serde(default = "default_true")]
    pub full_hessian: bool,
    /// An eigenvalue is "near zero" below this fraction of the largest (Fig. 1a statistic).
    #[serde(default = "default_fraction")]
    pub bulk_threshold: f64,
    /// Number of top eigen-directions in the Spearman correlation of diag Ĉ and diag Ĥ.
    #[serde(default = "default_spearman_top")]
    pub spearman_top: usize,
    /// The γ fit uses the directions with Ĥ_ii ≥ this fraction of the largest eigenvalue.
    #[serde(default = "default_fraction")]
    pub gamma_threshold: f64,
}

fn default_hidden() -> Vec<usize> {
    vec![30, 30]
}
fn default_train_size() -> usize {
    1400
}
fn default_eta() -> f64 {
    0.05
}
fn default_batch() -> usize {
    100
}
fn default_batches() -> Vec<usize> {
    vec![200, 100, 50]
}
fn default_optimisers() -> Vec<Optimiser> {
    vec![Optimiser::Gd, Optimiser::Sgd, Optimiser::Gld]
}
fn default_epochs() -> usize {
    200
}
fn default_hessian_every() -> usize {
    10
}
fn default_flatness_top() -> usize {
    10
}
fn default_lanczos_steps() -> usize {
    40
}
fn default_true() -> bool {
    true
}
fn default_fraction() -> f64 {
    0.01
}
fn default_spearman_top() -> usize {
    100
}

impl Default for NetworkConfig {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

impl NetworkConfig {
    /// Layer sizes: 64, hidden…, 10.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let mut s = vec![data::N_PIXELS];
        s.extend(&self.hidden);
        s.push(data::N_CLASSES);
        s
    }

    /// The network this section trains.
    pub fn mlp(&self) -> Mlp {
        Mlp::new(&self.layer_sizes(), self.activation)
    }

    /// Check every value; `key` is the table's dotted name.
    pub fn validate(&self, key: &str) -> Check {
        let k = |name: &str| format!("{key}.{name}");
        let total = data::total_samples();
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Invalid::new(
                k("hidden"),
                "must list at least one hidden layer, every width >= 1",
            ));
        }
        // Parameter count with overflow checks, before any layer is built.
        let params = self.layer_sizes().windows(2).try_fold(0usize, |acc, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(acc)
        });
        match params {
            Some(p) if p <= MAX_PARAMS => {}
            _ => {
                return Err(Invalid::new(
                    k("hidden"),
                    format!(
                        "the network {:?} has {} parameters; at most {MAX_PARAMS} are supported (use narrower layers)",
                        self.layer_sizes(),
                        params.map_or_else(|| "more than 2^64".to_string(), |p| p.to_string())
                    ),
                ));
            }
        }
        if !(2..total).contains(&self.train_size) {
            return Err(Invalid::new(
                k("train_size"),
                format!(
                    "must be in [2, {}] (the digits have {total} samples; the rest is the test set), got {}",
                    total - 1,
                    self.train_size
                ),
            ));
        }
        check_positive(&k("eta"), self.eta)?;
        let batch_ok = |b: usize| (1..=self.train_size).contains(&b);
        if !batch_ok(self.batch) {
            return Err(Invalid::new(
                k("batch"),
                format!(
                    "must be in [1, train_size = {}], got {}",
                    self.train_size, self.batch
                ),
            ));
        }
        if let Some(b) = self.batches.iter().find(|&&b| !batch_ok(b)) {
            return Err(Invalid::new(
                k("batches"),
                format!(
                    "every batch must be in [1, train_size = {}], got {b}",
                    self.train_size
                ),
            ));
        }
        if self.optimisers.is_empty() && self.batches.is_empty() {
            return Err(Invalid::new(
                k("optimisers"),
                "nothing to run: both `optimisers` and `batches` are empty",
            ));
        }
        if self.epochs == 0 {
            return Err(Invalid::new(k("epochs"), "must be >= 1"));
        }
        match &self.seeds {
            Seeds::Count(0) => return Err(Invalid::new(k("seeds"), "must be >= 1")),
            Seeds::Count(n) if *n > MAX_SEEDS => {
                return Err(Invalid::new(
                    k("seeds"),
                    format!("at most {MAX_SEEDS} training runs, got {n}"),
                ));
            }
            Seeds::List(l) if l.len() > MAX_SEEDS => {
                return Err(Invalid::new(
                    k("seeds"),
                    format!("at most {MAX_SEEDS} training runs, got {}", l.len()),
                ));
            }
            Seeds::List(l) if l.is_empty() => {
                return Err(Invalid::new(k("seeds"), "must list at least one seed"));
            }
            Seeds::List(l) if l.iter().collect::<BTreeSet<_>>().len() != l.len() => {
                return Err(Invalid::new(k("seeds"), "must not repeat a seed"));
            }
            _ => {}
        }
        let p = self.mlp().n_params();
        if self.flatness_top == 0 || self.flatness_top > p {
            return Err(Invalid::new(
                k("flatness_top"),
                format!("must be in [1, {p}] (the parameter count)"),
            ));
        }
        if self.lanczos_steps < self.flatness_top {
            return Err(Invalid::new(
                k("lanczos_steps"),
                format!(
                    "must be >= flatness_top ({}), got {}",
                    self.flatness_top, self.lanczos_steps
                ),
            ));
        }
        for (name, v) in [
            ("bulk_threshold", self.bulk_threshold),
            ("gamma_threshold", self.gamma_threshold),
        ] {
            check_positive(&k(name), v)?;
            if v >= 1.0 {
                return Err(Invalid::new(k(name), format!("must be < 1, got {v}")));
            }
        }
        if self.spearman_top < 3 {
            return Err(Invalid::new(k("spearman_top"), "must be >= 3"));
        }
        if self.protocol == Protocol::Manifold {
            self.manifold.validate(&k("manifold"))?;
            if self.batches.is_empty() {
                return Err(Invalid::new(
                    k("batches"),
                    "the manifold protocol compares the smallest and largest of `batches`: list at least one",
                ));
            }
            return Ok(());
        }
        if self.full_hessian && p > MAX_HESSIAN_PARAMS {
            return Err(Invalid::new(
                k("hidden"),
                format!(
                    "the network has {p} parameters; the full Hessian is limited to {MAX_HESSIAN_PARAMS} (set full_hessian = false or use narrower layers)"
                ),
            ));
        }
        Ok(())
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            eta: self.eta,
            epochs: self.epochs,
            every: self.hessian_every,
            top: self.flatness_top,
            lanczos_steps: self.lanczos_steps,
        }
    }
}

/// Mean, sample standard deviation, minimum and maximum over seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub n: usize,
}

impl Spread {
    /// The spread of the finite values; `None` if there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Some(Spread {
            mean,
            std: var.sqrt(),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n: v.len(),
        })
    }
}

/// The runs of one (optimiser, batch) over all seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupSummary {
    /// The optimiser.
    pub optimiser: Optimiser,
    /// SGD batch size (GD/GLD: the batch whose steps per epoch and noise level they match).
    pub batch: usize,
    /// Flatness F at the last epoch, over seeds.
    pub final_flatness: Option<Spread>,
    /// Test accuracy at the end, over seeds.
    pub test_accuracy: Option<Spread>,
    /// Training accuracy at the end, over seeds.
    pub train_accuracy: Option<Spread>,
    /// Training loss at the end, over seeds.
    pub final_train_loss: Option<Spread>,
    /// Largest Hessian eigenvalue at the end, over seeds.
    pub final_lambda_max: Option<Spread>,
    /// Wall seconds per training epoch (updates only; runs share the cores).
    pub seconds_per_epoch: Option<Spread>,
    /// Runs whose loss became non-finite.
    pub diverged: usize,
}

/// A paired comparison of final flatness between two groups over the same seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    /// The claim, in words ("sgd flatter than gd", …).
    pub claim: String,
    /// Per-seed differences F_a − F_b, over seeds.
    pub difference: Option<Spread>,
    /// Seeds where F_a > F_b.
    pub seeds_a_flatter: usize,
    /// Seeds compared.
    pub seeds: usize,
    /// Mean F_a > mean F_b.
    pub holds: Option<bool>,
}

/// Fig. 1: the full Hessian of the trained SGD network and the noise covariance in its
/// eigenbasis.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HessianSummary {
    /// Seed of the analysed network (SGD, batch `batch`, last epoch).
    pub seed: u64,
    /// Number of parameters P (the Hessian is P × P).
    pub n_params: usize,
    /// Largest eigenvalue.
    pub lambda_max: f64,
    /// Smallest eigenvalue.
    pub lambda_min: f64,
    /// Fraction of eigenvalues below `bulk_threshold`·λ_max (negative ones included).
    pub fraction_below_threshold: f64,
    /// Fraction of eigenvalues with |λ| below `bulk_threshold`·λ_max.
    pub fraction_abs_below_threshold: f64,
    /// The threshold (fraction of λ_max).
    pub bulk_threshold: f64,
    /// Number of negative eigenvalues.
    pub negative: usize,
    /// ‖H − Hᵀ‖_F / ‖H‖_F of the raw HVP columns, before symmetrisation.
    pub asymmetry: f64,
    /// ‖Hv − (∇L(θ+hv) − ∇L(θ−hv))/2h‖ / ‖Hv‖ for a random unit v, h = [`HVP_CHECK_STEP`].
    pub hvp_fd_rel_error: f64,
    /// Largest relative difference of the Lanczos top eigenvalues and the dense ones.
    pub lanczos_rel_error: f64,
    /// tr C of minibatches of size `batch` (Eq. 4).
    pub trace_c: f64,
    /// ‖CH − HC‖_F / (‖C‖_F ‖H‖_F): 0 when C and H commute.
    pub commutator: f64,
    /// (k, fraction of tr C in the top k eigen-directions of H) for k = 1, 10, 100, 1000.
    pub trace_c_top_fraction: Vec<(usize, f64)>,
    /// Spearman rank correlation of diag Ĉ and diag Ĥ over the top `spearman_top` directions.
    pub spearman: Option<f64>,
    /// Directions in the Spearman correlation.
    pub spearman_top: usize,
    /// The fit C_ii ∝ H_ii^γ over the directions with Ĥ_ii ≥ gamma_threshold·λ_max.
    pub gamma_fit: Option<PowerFit>,
    /// Fit over the top `spearman_top` directions instead (for comparison).
    pub gamma_fit_top: Option<PowerFit>,
    /// The threshold of the γ fit.
    pub gamma_threshold: f64,
    /// Test accuracy of the analysed network.
    pub test_accuracy: f64,
    /// Seconds to form the Hessian (P exact HVPs over the training set).
    pub hessian_seconds: f64,
    /// Seconds for the eigen-decomposition (faer, sequential).
    pub eigen_seconds: f64,
    /// Seconds for the noise covariance in the eigenbasis.
    pub covariance_seconds: f64,
    /// The C–H relation restricted to each layer's parameter block (W_l, b_l).
    pub layers: Vec<LayerAlignment>,
    /// Seconds for the per-layer statistics.
    pub layer_seconds: f64,
}

/// The paired comparisons of a run: the paper protocol's spreads, or the manifold
/// protocol's 95 % intervals.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Comparisons {
    /// Paper protocol: claims with the spread of the per-seed differences.
    Paper(Vec<Comparison>),
    /// Manifold protocol: {name, mean, ci_low, ci_high, seeds_holding, seeds}.
    Manifold(Vec<IntervalComparison>),
}

/// The summary of a `[network]` run (written to summary.json).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetworkSummary {
    /// "paper" or "manifold".
    pub protocol: Protocol,
    /// Layer sizes (input, hidden…, output).
    pub layer_sizes: Vec<usize>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Number of parameters.
    pub n_params: usize,
    /// Training samples M.
    pub n_train: usize,
    /// Test samples.
    pub n_test: usize,
    /// Learning rate η.
    pub eta: f64,
    /// SGD batch of the optimiser comparison and of Fig. 1.
    pub batch: usize,
    /// Epochs.
    pub epochs: usize,
    /// Top eigenvalues in the flatness F.
    pub flatness_top: usize,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// One entry per (optimiser, batch).
    pub groups: Vec<GroupSummary>,
    /// SGD vs GD, SGD vs GLD, smallest vs largest batch (and, manifold: label-noise tr H).
    pub comparisons: Comparisons,
    /// The manifold protocol's starts, groups and timings.
    pub manifold: Option<ManifoldSummary>,
    /// Fig. 1 statistics (when `full_hessian`).
    pub hessian: Option<HessianSummary>,
    /// γ of C_ii ∝ H_ii^γ: run the FP model with `noise.power = γ`.
    pub gamma: Option<f64>,
    /// Seconds per epoch of SGD at `batch` (mean over seeds).
    pub seconds_per_epoch_sgd: Option<f64>,
    /// Seconds per epoch of GD (⌈M/B⌉ full-batch steps; mean over seeds).
    pub seconds_per_epoch_gd: Option<f64>,
    /// Seconds for all training runs (wall).
    pub training_seconds: f64,
    /// Seconds for the whole section (wall).
    pub total_seconds: f64,
}

/// Flatness against epoch for one (optimiser, batch): per seed and the spread over seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FlatnessCurve {
    /// The optimiser.
    pub optimiser: Optimiser,
    /// Batch size.
    pub batch: usize,
    /// Epochs of the measurements.
    pub epochs: Vec<f64>,
    /// Mean over seeds (`None` where a seed has no value).
    pub mean: Vec<Option<f64>>,
    /// Sample standard deviation over seeds.
    pub std: Vec<Option<f64>>,
    /// F per seed, per epoch.
    pub per_seed: Vec<Vec<Option<f64>>>,
}

impl FlatnessCurve {
    /// Legend label, e.g. "SGD (B = 100)".
    pub fn label(&self) -> String {
        match self.optimiser {
            Optimiser::Gd => "GD".into(),
            Optimiser::Sgd => format!("SGD (B = {})", self.batch),
            Optimiser::Gld => format!("GLD (matched to B = {})", self.batch),
        }
    }
}

/// Everything a `[network]` run computed: the summary and the curves of the figures.
#[derive(Debug, Clone)]
pub struct NetworkResult {
    /// Scalars for summary.json.
    pub summary: NetworkSummary,
    /// Hessian eigenvalues, decreasing (Fig. 1a); empty without `full_hessian`.
    pub eigenvalues: Vec<f64>,
    /// diag Ĉ in the same order (Fig. 1b).
    pub c_hat_diag: Vec<f64>,
    /// Flatness vs epoch for each optimiser at `batch` (Fig. 2b).
    pub optimiser_curves: Vec<FlatnessCurve>,
    /// Flatness vs epoch of SGD for each of `batches` (Fig. 3b).
    pub batch_curves: Vec<FlatnessCurve>,
    /// Manifold protocol: F, tr H and loss vs update for each continuation.
    pub manifold_curves: Vec<ManifoldCurve>,
    /// Per-layer eigenvalues of H_ll and diag Ĉ_ll (with `full_hessian`).
    pub layer_spectra: Vec<LayerSpectrum>,
}

/// A failure of the network section.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The caller asked to stop.
    #[error("network: {0}")]
    Cancelled(#[from] Cancelled),
    /// faer's eigen-decomposition did not converge.
    #[error("the eigen-decomposition of the {0} x {0} Hessian did not converge")]
    Eigen(usize),
    /// The network analysed for Fig. 1 diverged.
    #[error("the SGD run analysed for Fig. 1 (seed {0}) diverged")]
    Diverged(u64),
}

/// The distinct runs: Fig. 2b (every optimiser at `batch`), Fig. 3b (SGD at every batch) and
/// the Fig. 1 network (SGD at `batch`, first seed), for every seed; slow runs first.
pub fn run_specs(cfg: &NetworkConfig, seeds: &[u64]) -> Vec<RunSpec> {
    let mut set = BTreeSet::new();
    for &seed in seeds {
        for &opt in &cfg.optimisers {
            set.insert((opt, cfg.batch, seed));
        }
        for &b in &cfg.batches {
            set.insert((Optimiser::Sgd, b, seed));
        }
    }
    if cfg.full_hessian {
        set.insert((Optimiser::Sgd, cfg.batch, seeds[0]));
    }
    let mut specs: Vec<RunSpec> = set
        .into_iter()
        .map(|(optimiser, batch, seed)| RunSpec {
            optimiser,
            batch,
            seed,
        })
        .collect();
    specs.sort_by_key(|s| (s.optimiser == Optimiser::Sgd, s.batch, s.optimiser, s.seed));
    specs
}

/// A validated `[network]` section with the scenario seed it runs under. Built only by
/// [`NetworkPlan::new`], so [`run`] never meets invalid input.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPlan {
    config: NetworkConfig,
    seed: u64,
}

impl NetworkPlan {
    /// Validate `config` (keys under `network`); `seed` is the scenario's master seed.
    pub fn new(config: NetworkConfig, seed: u64) -> Result<Self, Invalid> {
        config.validate("network")?;
        Ok(Self { config, seed })
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }
}

/// Run the section: train every run in parallel, summarise, analyse the Fig. 1 network.
/// `progress` counts training runs; a cancel request stops before the analysis.
pub fn run(plan: &NetworkPlan, progress: &dyn Progress) -> Result<NetworkResult, NetworkError> {
    let (cfg, seed) = (&plan.config, plan.seed);
    let t0 = Instant::now();
    if cfg.protocol == Protocol::Manifold {
        let (res, mlp, digits, seeds) = manifold::run(cfg, seed, progress)?;
        let summary = NetworkSummary {
            protocol: Protocol::Manifold,
            layer_sizes: mlp.sizes().to_vec(),
            activation: cfg.activation,
            n_params: mlp.n_params(),
            n_train: digits.train.len(),
            n_test: digits.test.len(),
            eta: cfg.eta,
            batch: cfg.batch,
            epochs: 0,
            flatness_top: cfg.flatness_top,
            seeds,
            groups: Vec::new(),
            comparisons: Comparisons::Manifold(res.comparisons),
            manifold: Some(res.summary),
            hessian: None,
            gamma: None,
            seconds_per_epoch_sgd: None,
            seconds_per_epoch_gd: None,
            training_seconds: t0.elapsed().as_secs_f64(),
            total_seconds: t0.elapsed().as_secs_f64(),
        };
        return Ok(NetworkResult {
            summary,
            eigenvalues: Vec::new(),
            c_hat_diag: Vec::new(),
            optimiser_curves: Vec::new(),
            batch_curves: Vec::new(),
            manifold_curves: res.curves,
            layer_spectra: Vec::new(),
        });
    }
    let mlp = cfg.mlp();
    let digits = data::split(cfg.train_size, seed);
    let seeds = cfg.seeds.resolve(seed);
    let specs = run_specs(cfg, &seeds);
    let schedule = cfg.schedule();
    progress.start(
        &format!(
            "network {:?} ({} parameters): training runs",
            mlp.sizes(),
            mlp.n_params()
        ),
        Some(specs.len() as u64),
    );
    let outcomes: Vec<RunOutcome> = specs
        .par_iter()
        .map(|&spec| {
            let out = train::train(&mlp, &digits.train, &digits.test, spec, &schedule);
            progress.advance(1);
            out
        })
        .collect();
    progress.finish();
    if progress.cancelled() {
        return Err(Cancelled.into());
    }
    let training_seconds = t0.elapsed().as_secs_f64();
    let find = |opt: Optimiser, batch: usize| -> Vec<&RunOutcome> {
        seeds
            .iter()
            .filter_map(|&s| {
                outcomes
                    .iter()
                    .find(|o| o.spec.optimiser == opt && o.spec.batch == batch && o.spec.seed == s)
            })
            .collect()
    };
    let mut groups = Vec::new();
    let mut keys: Vec<(Optimiser, usize)> =
        cfg.optimisers.iter().map(|&o| (o, cfg.batch)).collect();
    keys.extend(cfg.batches.iter().map(|&b| (Optimiser::Sgd, b)));
    let mut seen = BTreeSet::new();
    keys.retain(|k| seen.insert(*k));
    for &(opt, b) in &keys {
        groups.push(group_summary(opt, b, &find(opt, b)));
    }
    let optimiser_curves: Vec<FlatnessCurve> = cfg
        .optimisers
        .iter()
        .map(|&o| flatness_curve(o, cfg.batch, &find(o, cfg.batch)))
        .collect();
    // A batch listed twice is the same runs: one curve.
    let mut listed = BTreeSet::new();
    let batch_curves: Vec<FlatnessCurve> = cfg
        .batches
        .iter()
        .filter(|&&b| listed.insert(b))
        .map(|&b| flatness_curve(Optimiser::Sgd, b, &find(Optimiser::Sgd, b)))
        .collect();
    let mut comparisons = Vec::new();
    let has = |o: Optimiser| cfg.optimisers.contains(&o);
    for other in [Optimiser::Gd, Optimiser::Gld] {
        if has(Optimiser::Sgd) && has(other) {
            comparisons.push(compare(
                format!("sgd flatter than {}", other.name()),
                &find(Optimiser::Sgd, cfg.batch),
                &find(other, cfg.batch),
            ));
        }
    }
    if let (Some(&small), Some(&large)) = (cfg.batches.iter().min(), cfg.batches.iter().max())
        && small != large
    {
        comparisons.push(compare(
            format!("sgd B = {small} flatter than B = {large}"),
            &find(Optimiser::Sgd, small),
            &find(Optimiser::Sgd, large),
        ));
        // Control: the same comparison at an equal number of updates, i.e. the small batch at
        // epoch E·small/large against the large batch at the last epoch E.
        let at = cfg.epochs as f64 * small as f64 / large as f64;
        comparisons.push(compare_at(
            format!(
                "sgd B = {small} (epoch {at}) flatter than B = {large} (epoch {}), equal updates",
                cfg.epochs
            ),
            &find(Optimiser::Sgd, small),
            at,
            &find(Optimiser::Sgd, large),
        ));
    }
    let mean_of = |opt: Optimiser| {
        Spread::of(find(opt, cfg.batch).iter().map(|o| o.seconds_per_epoch)).map(|s| s.mean)
    };
    let (seconds_per_epoch_sgd, seconds_per_epoch_gd) =
        (mean_of(Optimiser::Sgd), mean_of(Optimiser::Gd));
    let mut eigenvalues = Vec::new();
    let mut c_hat_diag = Vec::new();
    let mut hessian = None;
    let mut layer_spectra = Vec::new();
    if cfg.full_hessian {
        let net = find(Optimiser::Sgd, cfg.batch)
            .into_iter()
            .next()
            .expect("the Fig. 1 run is in the run list");
        if net.diverged {
            return Err(NetworkError::Diverged(net.spec.seed));
        }
        progress.start(
            &format!(
                "Fig. 1: {0} x {0} Hessian and its eigen-decomposition",
                mlp.n_params()
            ),
            None,
        );
        let fig1 = analyse(cfg, &mlp, &digits, net)?;
        progress.finish();
        eigenvalues = fig1.0;
        c_hat_diag = fig1.1;
        hessian = Some(fig1.2);
        layer_spectra = fig1.3;
    }
    let gamma = hessian
        .as_ref()
        .and_then(|h| h.gamma_fit.as_ref())
        .map(|f| f.gamma);
    let summary = NetworkSummary {
        protocol: Protocol::Paper,
        layer_sizes: mlp.sizes().to_vec(),
        activation: cfg.activation,
        n_params: mlp.n_params(),
        n_train: digits.train.len(),
        n_test: digits.test.len(),
        eta: cfg.eta,
        batch: cfg.batch,
        epochs: cfg.epochs,
        flatness_top: cfg.flatness_top,
        seeds,
        groups,
        comparisons: Comparisons::Paper(comparisons),
        manifold: None,
        hessian,
        gamma,
        seconds_per_epoch_sgd,
        seconds_per_epoch_gd,
        training_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
    };
    Ok(NetworkResult {
        summary,
        eigenvalues,
        c_hat_diag,
        optimiser_curves,
        batch_curves,
        manifold_curves: Vec::new(),
        layer_spectra,
    })
}

fn final_flatness(o: &RunOutcome) -> Option<f64> {
    if o.diverged {
        None
    } else {
        o.flatness.last().copied().flatten()
    }
}

fn group_summary(optimiser: Optimiser, batch: usize, runs: &[&RunOutcome]) -> GroupSummary {
    let ok = || runs.iter().filter(|o| !o.diverged);
    GroupSummary {
        optimiser,
        batch,
        final_flatness: Spread::of(runs.iter().filter_map(|o| final_flatness(o))),
        test_accuracy: Spread::of(ok().map(|o| o.test_accuracy)),
        train_accuracy: Spread::of(ok().map(|o| o.train_accuracy)),
        final_train_loss: Spread::of(ok().filter_map(|o| o.train_loss.last().copied())),
        final_lambda_max: Spread::of(
            ok().filter_map(|o| o.top_eigenvalues.last().and_then(|t| t.first().copied())),
        ),
        seconds_per_epoch: Spread::of(runs.iter().map(|o| o.seconds_per_epoch)),
        diverged: runs.iter().filter(|o| o.diverged).count(),
    }
}

fn flatness_curve(optimiser: Optimiser, batch: usize, runs: &[&RunOutcome]) -> FlatnessCurve {
    let epochs = runs
        .iter()
        .map(|o| &o.epochs)
        .max_by_key(|e| e.len())
        .cloned()
        .unwrap_or_default();
    let per_seed: Vec<Vec<Option<f64>>> = runs
        .iter()
        .map(|o| {
            (0..epochs.len())
                .map(|k| o.flatness.get(k).copied().flatten())
                .collect()
        })
        .collect();
    let (mut mean, mut std) = (Vec::new(), Vec::new());
    for k in 0..epochs.len() {
        let vals: Option<Vec<f64>> = per_seed.iter().map(|s| s[k]).collect();
        let s = vals.and_then(Spread::of);
        mean.push(s.as_ref().map(|s| s.mean));
        std.push(s.as_ref().map(|s| s.std));
    }
    FlatnessCurve {
        optimiser,
        batch,
        epochs,
        mean,
        std,
        per_seed,
    }
}

fn compare(claim: String, a: &[&RunOutcome], b: &[&RunOutcome]) -> Comparison {
    paired(claim, a, b, final_flatness)
}

/// Compare `a` at epoch `epoch` (if measured there) with `b` at its last epoch.
fn compare_at(claim: String, a: &[&RunOutcome], epoch: f64, b: &[&RunOutcome]) -> Comparison {
    let at_epoch = |o: &RunOutcome| {
        let k = o.epochs.iter().position(|&e| e == epoch)?;
        if o.diverged { None } else { o.flatness[k] }
    };
    paired(claim, a, b, at_epoch)
}

/// Pair the runs of `a` and `b` by seed: `value_a` of a's run against b's final flatness.
fn paired(
    claim: String,
    a: &[&RunOutcome],
    b: &[&RunOutcome],
    value_a: impl Fn(&RunOutcome) -> Option<f64>,
) -> Comparison {
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .filter_map(|ra| {
            let rb = b.iter().find(|rb| rb.spec.seed == ra.spec.seed)?;
            Some((value_a(ra)?, final_flatness(rb)?))
        })
        .collect();
    let mean = |f: fn(&(f64, f64)) -> f64| {
        (!pairs.is_empty()).then(|| pairs.iter().map(f).sum::<f64>() / pairs.len() as f64)
    };
    let holds = match (mean(|p| p.0), mean(|p| p.1)) {
        (Some(x), Some(y)) => Some(x > y),
        _ => None,
    };
    Comparison {
        claim,
        difference: Spread::of(pairs.iter().map(|p| p.0 - p.1)),
        seeds_a_flatter: pairs.iter().filter(|p| p.0 > p.1).count(),
        seeds: pairs.len(),
        holds,
    }
}

/// What the Fig. 1 analysis returns: eigenvalues, diag Ĉ, statistics, per-layer spectra.
type Fig1 = (Vec<f64>, Vec<f64>, HessianSummary, Vec<LayerSpectrum>);

/// Fig. 1 analysis of one trained network.
fn analyse(
    cfg: &NetworkConfig,
    mlp: &Mlp,
    digits: &data::Digits,
    net: &RunOutcome,
) -> Result<Fig1, NetworkError> {
    let data = digits.train.view();
    let theta = &net.theta;
    let p = mlp.n_params();
    let t = Instant::now();
    let (h, asymmetry) = curvature::dense_hessian(mlp, theta, data);
    let hessian_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (values, vectors) = curvature::symmetric_eigen(&h, true);
    let eigen_seconds = t.elapsed().as_secs_f64();
    let u = match vectors {
        Some(u) if values.iter().all(|v| v.is_finite()) => u,
        _ => return Err(NetworkError::Eigen(p)),
    };
    let t = Instant::now();
    let (grads, _) = curvature::centred_per_sample_grads(mlp, theta, data);
    let (layers, layer_spectra) =
        layers::layer_alignment(mlp, &h, &grads, cfg.batch, cfg.gamma_threshold)
            .ok_or(NetworkError::Eigen(p))?;
    drop((h, grads));
    let layer_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let c_hat = curvature::noise_diag_in_eigenbasis(mlp, theta, data, cfg.batch, &u);
    let commutator = curvature::relative_commutator(
        &curvature::noise_in_eigenbasis(mlp, theta, data, cfg.batch, &u),
        &values,
    );
    let trace_c_top_fraction = layers::top_fractions(&c_hat);
    let covariance_seconds = t.elapsed().as_secs_f64();
    let lambda_max = values[0];
    let lambda_min = values[p - 1];
    let cut = cfg.bulk_threshold * lambda_max;
    let fraction_below_threshold = values.iter().filter(|&&v| v < cut).count() as f64 / p as f64;
    let fraction_abs_below_threshold =
        values.iter().filter(|&&v| v.abs() < cut).count() as f64 / p as f64;
    let top = cfg.spearman_top.min(p);
    let spearman = curvature::spearman(&values[..top], &c_hat[..top]);
    let sharp = values
        .iter()
        .take_while(|&&v| v >= cfg.gamma_threshold * lambda_max)
        .count();
    let gamma_fit = curvature::fit_power(&values[..sharp], &c_hat[..sharp]);
    let gamma_fit_top = curvature::fit_power(&values[..top], &c_hat[..top]);
    // Checks of the curvature machinery on this network.
    let hvp_fd_rel_error = hvp_check(mlp, theta, data, net.spec.seed);
    let lanczos = train::top_eigenvalues(
        mlp,
        theta,
        data,
        cfg.flatness_top,
        cfg.lanczos_steps,
        net.spec.seed,
    );
    let lanczos_rel_error = curvature::max_rel_error(&lanczos, &values);
    let trace_c = c_hat.iter().sum();
    let summary = HessianSummary {
        seed: net.spec.seed,
        n_params: p,
        lambda_max,
        lambda_min,
        fraction_below_threshold,
        fraction_abs_below_threshold,
        bulk_threshold: cfg.bulk_threshold,
        negative: values.iter().filter(|&&v| v < 0.0).count(),
        asymmetry,
        hvp_fd_rel_error,
        lanczos_rel_error,
        trace_c,
        commutator,
        trace_c_top_fraction,
        spearman,
        spearman_top: top,
        gamma_fit,
        gamma_fit_top,
        gamma_threshold: cfg.gamma_threshold,
        test_accuracy: net.test_accuracy,
        hessian_seconds,
        eigen_seconds,
        covariance_seconds,
        layers,
        layer_seconds,
    };
    Ok((values, c_hat, summary, layer_spectra))
}

/// ‖Hv − (∇L(θ+hv) − ∇L(θ−hv))/2h‖ / ‖Hv‖ for a seeded random unit vector v.
pub fn hvp_check(mlp: &Mlp, theta: &[f64], data: data::Batch, seed: u64) -> f64 {
    let p = mlp.n_params();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(train::stream_seed(seed, STREAM_HVP_CHECK));
    let mut v: Vec<f64> = (0..p).map(|_| StandardNormal.sample(&mut rng)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    let mut hv = vec![0.0; p];
    mlp.hvp(theta, data, &v, &mut hv, true);
    let shifted = |sign: f64| {
        let t: Vec<f64> = theta
            .iter()
            .zip(&v)
            .map(|(t, d)| t + sign * HVP_CHECK_STEP * d)
            .collect();
        let mut g = vec![0.0; p];
        mlp.loss_grad(&t, data, &mut g, true);
        g
    };
    let (gp, gm) = (shifted(1.0), shifted(-1.0));
    let (mut diff, mut size) = (0.0, 0.0);
    for k in 0..p {
        let fd = (gp[k] - gm[k]) / (2.0 * HVP_CHECK_STEP);
        diff += (hv[k] - fd).powi(2);
        size += hv[k].powi(2);
    }
    (diff / size).sqrt()
}
