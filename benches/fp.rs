//! Criterion benches of the Fokker–Planck hot paths (issue: FP solver speed).
//!
//! * steady state (assembly + factorisation + solve, i.e. `solve_seconds`) of the anisotropic
//!   scenario (Δ = 0.01, κ = 4, ε = 0, x ∈ [−1.6, 1.6], y ∈ [−0.25, 0.25]) on 256², 512², 1024²;
//! * the Hessian-noise scenario (paper landscape, Δ_S = 0.002) at 640 × 240;
//! * one TR-BDF2 step on 512² (report cells × steps / s = 512² / time);
//! * the 6 slowest relaxation rates against one steady solve, Hessian noise on 512²;
//! * operator assembly alone at 512², Hessian noise, the built-in paper valley against the same
//!   valley and matrix factorisation written as expressions (target: within 3×).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flatscape::config::AxisConfig;
use flatscape::fp::grid::Grid;
use flatscape::fp::initial_density;
use flatscape::fp::nested::NestedDissection;
use flatscape::fp::operator::assemble;
use flatscape::fp::spectrum::relaxation_rates;
use flatscape::fp::steady::{solve_steady, solve_steady_whole_grid};
use flatscape::fp::transient::TrBdf2;
use flatscape::fp::{CrossDiffusionScheme, InitialConfig};
use flatscape::landscape::Valley2d;
use flatscape::landscape::expr::ExprLoss;
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

fn assembly(c: &mut Criterion) {
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let g = grid(512, 512, 0.6);
    let valley = Valley2d::paper();
    let expr = |src: &str| ExprLoss::new("landscape", src, &Default::default()).expect("valid");
    let paper = expr("0.5*0.001*8*x^2 + 0.5*(8 - 2*x^2 + x^4)*y^2");
    let mf = expr("0.5*(x*y - 1)^2");
    let mut group = c.benchmark_group("fp_assembly_512");
    group.sample_size(10);
    group.bench_function("valley2d", |b| {
        b.iter(|| black_box(assemble(&g, &valley, &noise, CrossDiffusionScheme::Central)))
    });
    group.bench_function("expression_valley", |b| {
        b.iter(|| black_box(assemble(&g, &paper, &noise, CrossDiffusionScheme::Central)))
    });
    group.bench_function("expression_mf", |b| {
        b.iter(|| black_box(assemble(&g, &mf, &noise, CrossDiffusionScheme::Central)))
    });
    group.finish();
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

/// The 6 slowest relaxation rates against one steady solve on the same 512² grid (the valley
/// with Hessian noise, Δ_S = 0.002; shift-invert Arnoldi in the even and odd sectors; the steady
/// solve in its even sector, and on the whole grid).
fn spectrum(c: &mut Criterion) {
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let valley = Valley2d::paper();
    let g = grid(512, 512, 0.9);
    let a = assemble(&g, &valley, &noise, CrossDiffusionScheme::Central);
    let mut group = c.benchmark_group("fp_spectrum_hessian_512x512");
    group.sample_size(10);
    group.bench_function("steady", |b| {
        b.iter(|| black_box(solve_steady(&a).unwrap().residual))
    });
    // The general path (no even-sector folding), as one steady solve cost before it.
    group.bench_function("steady_whole_grid", |b| {
        b.iter(|| black_box(solve_steady_whole_grid(&a).unwrap().residual))
    });
    group.bench_function("relaxation_rates_6", |b| {
        b.iter(|| black_box(relaxation_rates(&a, 6, 1e-3).unwrap().len()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine may lack.
    config = Criterion::default().without_plots();
    targets = assembly, steady, transient, spectrum
}
criterion_main!(benches);
