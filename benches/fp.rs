//! Criterion benches of the Fokker–Planck hot paths (issue: FP solver speed).
//!
//! * steady state (assembly + factorisation + solve, i.e. `solve_seconds`) of the anisotropic
//!   scenario (Δ = 0.01, κ = 4, ε = 0, x ∈ [−1.6, 1.6], y ∈ [−0.25, 0.25]) on 256², 512², 1024²;
//! * the Hessian-noise scenario (paper landscape, Δ_S = 0.002) at 640 × 240;
//! * one TR-BDF2 step on 512² (report cells × steps / s = 512² / time).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flatscape::config::AxisConfig;
use flatscape::fp::grid::Grid;
use flatscape::fp::initial_density;
use flatscape::fp::nested::NestedDissection;
use flatscape::fp::operator::assemble;
use flatscape::fp::steady::solve_steady;
use flatscape::fp::transient::TrBdf2;
use flatscape::fp::{CrossDiffusionScheme, InitialConfig};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;

fn grid(nx: usize, ny: usize, y_half: f64) -> Grid {
    Grid::new(
        &AxisConfig {
            min: -1.6,
            max: 1.6,
            cells: nx,
        },
        &AxisConfig {
            min: -y_half,
            max: y_half,
            cells: ny,
        },
    )
}

fn steady(c: &mut Criterion) {
    let valley = Valley2d {
        epsilon: 0.0,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let noise = Noise::Anisotropic {
        delta: 0.01,
        kappa: 4.0,
    };
    let mut group = c.benchmark_group("fp_steady_anisotropic");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for n in [256usize, 512, 1024] {
        let g = grid(n, n, 0.25);
        group.bench_function(format!("{n}x{n}"), |b| {
            b.iter(|| {
                let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
                black_box(solve_steady(&a).unwrap().residual)
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("fp_steady_hessian");
    group.sample_size(10);
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let valley = Valley2d::paper();
    let g = grid(640, 240, 0.6);
    group.bench_function("640x240", |b| {
        b.iter(|| {
            let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
            black_box(solve_steady(&a).unwrap().negative_mass)
        })
    });
    group.finish();
}

fn transient(c: &mut Criterion) {
    let valley = Valley2d {
        epsilon: 0.0,
        lambda: vec![8.0, -2.0, 1.0],
    };
    let noise = Noise::Anisotropic {
        delta: 0.01,
        kappa: 4.0,
    };
    let g = grid(512, 512, 0.25);
    let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
    let nd = NestedDissection::new(g.nx, g.ny, None);
    let mut stepper = TrBdf2::new(&a, &nd, 0.1).unwrap();
    let mut p = initial_density(
        &g,
        &InitialConfig::Gaussian {
            mean: [0.3, 0.0],
            std: [0.1, 0.05],
        },
    );
    let mut group = c.benchmark_group("fp_transient");
    group.sample_size(20);
    group.bench_function("tr_bdf2_step_512x512", |b| {
        b.iter(|| stepper.step(black_box(&mut p)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine may lack.
    config = Criterion::default().without_plots();
    targets = steady, transient
}
criterion_main!(benches);
