//! Criterion benches of the theory hot paths: the reduced x-marginal (conditional law of y by
//! quadrature at every x-node and midpoint, then the cumulative Simpson integral) and the
//! homogenised x-marginal (polynomial fast statistics and cumulant rates on a 7-point stencil at
//! every node and midpoint), and the density along a curved valley (`theory::curved`) with its
//! homogenised level (`theory::fibres`).
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

/// Matrix factorisation L = ½(xy − 1)² (minima on the hyperbola xy = 1).
struct MatrixFactorisation;

impl flatscape::landscape::Loss2d for MatrixFactorisation {
    fn loss(&self, x: f64, y: f64) -> f64 {
        0.5 * (x * y - 1.0).powi(2)
    }
    fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        let r = x * y - 1.0;
        [r * y, r * x]
    }
    fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let off = 2.0 * x * y - 1.0;
        [[y * y, off], [off, x * x]]
    }
}

fn curved_valley(c: &mut Criterion) {
    use flatscape::theory::curved::{NormalLaw, solve, trace_valley};
    let loss = MatrixFactorisation;
    let noise = Noise::Hessian {
        eta: 0.1,
        sigma: 0.1,
        power: 2.0,
    };
    let curve = trace_valley(&loss, [1.0, 1.0], [[0.25, 4.0], [0.25, 4.0]], 0.005, 10.0)
        .expect("the hyperbola is a valley");
    let s = quad::cell_centres(-1.5, 1.5, 1000);
    let tube = (-0.6, 0.6);
    c.bench_function("curved_density_1000_hessian_hyperbola", |b| {
        b.iter(|| {
            std::hint::black_box(
                solve(
                    &loss,
                    &noise,
                    &curve,
                    std::hint::black_box(&s),
                    tube,
                    NormalLaw::Exact,
                )
                .expect("theory along the hyperbola"),
            )
        })
    });
    c.bench_function("curved_homogenised_1000_hessian_hyperbola", |b| {
        use flatscape::theory::fibres::{self, FibreLaw, NO_BOX};
        b.iter(|| {
            std::hint::black_box(
                fibres::solve(
                    &loss,
                    &noise,
                    &curve,
                    std::hint::black_box(&s),
                    0.6,
                    NO_BOX,
                    FibreLaw::Exact,
                )
                .expect("homogenised level along the hyperbola"),
            )
        })
    });
    c.bench_function("curved_trace_hyperbola_ds_0.005", |b| {
        b.iter(|| {
            std::hint::black_box(trace_valley(
                &loss,
                [1.0, 1.0],
                [[0.25, 4.0], [0.25, 4.0]],
                0.005,
                10.0,
            ))
        })
    });
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine may lack.
    config = Criterion::default().without_plots();
    targets = reduced_marginal, homogenised_marginal, curved_valley
}
criterion_main!(benches);
