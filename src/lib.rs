//! flatscape: SGD's effective, flatness-dependent regularisation on degenerate loss valleys
//! (Yang, Tang & Tu, PRL 130, 237101, 2023), computed three ways — a Fokker–Planck solver,
//! adiabatic-elimination theory and a Monte-Carlo sampler — and compared.
//!
//! Data flow: [`scenario`] → [`landscape`] + [`noise`] → solvers ([`fp`], [`theory`],
//! [`sampler`]) → results → [`report`].

pub mod figures;
pub mod fp;
pub mod landscape;
pub mod network;
pub mod noise;
pub mod report;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod sweep;
pub mod theory;
