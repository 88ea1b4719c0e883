//! Criterion benches of the theory hot paths: the reduced x-marginal (conditional law of y by
//! quadrature at every x-node and midpoint, then the cumulative Simpson integral).
use criterion::{Criterion, criterion_group, criterion_main};
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::theory::{marginal_x_reduced, quad};

fn reduced_marginal(c: &mut Criterion) {
    let valley = Valley2d::paper();
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
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

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine may lack.
    config = Criterion::default().without_plots();
    targets = reduced_marginal
}
criterion_main!(benches);
