//! Criterion benches of the theory hot paths: the reduced x-marginal (conditional law of y by
//! quadrature at every x-node and midpoint, then the cumulative Simpson integral) and the
//! homogenised x-marginal (polynomial fast statistics and cumulant rates on a 7-point stencil at
//! every node and midpoint).
use criterion::{Criterion, criterion_group, criterion_main};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::theory::{marginal_x_homogenised, marginal_x_reduced, quad};

fn paper_noise() -> Noise {
    Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    }
}

fn reduced_marginal(c: &mut Criterion) {
    let valley = Valley2d::paper();
    let noise = paper_noise();
    let xs = quad::cell_centres(-1.6, 1.6, 640);
    c.bench_function("marginal_x_reduced_640_hessian_paper", |b| {
        b.iter(|| {
            std::hint::black_box(marginal_x_reduced(
                &valley,
                &noise,
                std::hint::black_box(&xs),
                (-0.6, 0.6),
            ))
        })
    });
}

fn homogenised_marginal(c: &mut Criterion) {
    let valley = Valley2d::paper();
    let noise = paper_noise();
    let xs = quad::cell_centres(-1.6, 1.6, 1000);
    c.bench_function("marginal_x_homogenised_1000_hessian_paper", |b| {
        b.iter(|| {
            std::hint::black_box(marginal_x_homogenised(
                &valley,
                &noise,
                std::hint::black_box(&xs),
            ))
        })
    });
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine may lack.
    config = Criterion::default().without_plots();
    targets = reduced_marginal, homogenised_marginal
}
criterion_main!(benches);
