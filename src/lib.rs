//! flatscape: SGD's effective, flatness-dependent regularisation on degenerate loss valleys
//! (Yang, Tang & Tu, PRL 130, 237101, 2023), computed three ways — a Fokker–Planck solver,
//! adiabatic-elimination theory and a Monte-Carlo sampler — and compared.
//!
//! Layers, each importing only those above it:
//!
//! | layer | modules | role |
//! |---|---|---|
//! | config | [`config`] | validation helpers, axes and ranges, the [`config::Progress`] callback |
//! | model | [`landscape`], [`noise`] | the loss L(θ) (Eqs. 5, 8) and the diffusion tensor D(θ) (Eqs. 7, 10) |
//! | solvers | [`fp`], [`theory`], [`sampler`], [`network`] | each owns its configuration, its validation and a resolved plan; running a plan cannot fail on input |
//! | scenario | [`scenario`] | TOML (or a [`scenario::ScenarioSpec`] built in code) → validated plans |
//! | study | [`study`] | run the parts, sweeps, comparisons; returns typed results, writes nothing |
//! | report | [`report`] | every file and figure, from results |
//! | app | [`app`] | the command-line commands, console progress, output folders, exit codes |
//!
//! A computation in code, without a scenario file — the FP steady state of the paper's valley
//! under Hessian noise, and the theory's x_ss next to it:
//!
//! ```
//! use flatscape::config::{AxisConfig, NoProgress};
//! use flatscape::fp::{self, FokkerPlanckConfig, FpPlan};
//! use flatscape::landscape::Valley2d;
//! use flatscape::noise::Noise;
//! use flatscape::theory::{self, TheoryConfig, TheoryPlan};
//!
//! let valley = Valley2d::paper(); // ε = 0.001, λ(x) = 8 − 2x² + x⁴
//! let noise = Noise::Hessian { eta: 0.01, sigma: 0.2, power: 2.0 }; // Δ_S = 0.002
//! let grid = FokkerPlanckConfig::steady(
//!     AxisConfig::new(0.0, 1.6, 96),   // one flat well
//!     AxisConfig::new(-0.4, 0.4, 48),
//! );
//! let plan = FpPlan::new(valley.clone(), noise.clone(), grid).expect("valid input");
//! let solution = fp::solve(&plan, &NoProgress).expect("the steady solve succeeds");
//! assert!((solution.summary.mass - 1.0).abs() < 1e-9);
//!
//! let theory = TheoryPlan::new(valley, noise, &TheoryConfig::default(), None).unwrap();
//! let x_ss = theory::solve(&theory, None).summary.x_ss;
//! assert!((x_ss - 0.847).abs() < 0.01);
//! assert!((solution.summary.mode_abs_x - x_ss).abs() < 0.05);
//! ```

pub mod app;
pub mod config;
pub mod fp;
pub mod landscape;
pub mod network;
pub mod noise;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod study;
pub mod theory;
