//! All integration tests in one binary (one link instead of thirteen): `cargo test --release --test it [module::]`.

mod api;
mod cli;
mod curved_homogenised;
mod curved_valley;
mod expression;
mod figures;
mod fp;
mod fp_adaptive;
mod fp_export;
mod fp_hopping;
mod fp_spectrum;
mod fp_spectrum_sectors;
mod fp_steady_accuracy;
mod fuzz_scenario;
mod layers;
mod matrix_factorisation;
mod network;
mod network_cache;
mod sampler;
mod sampler_normals;
mod sweep_shards;
mod theory;
mod theory_discrete;
mod theory_divergence;
mod theory_homogenised;
mod three_routes;
