//! Criterion benches of the sampler hot paths, reported as walker-steps per second
//! (criterion's "elements/s"): 2-D `sgd`, N-D `sgd` (N_S = 5, N_F = 100) and 2-D `langevin`
//! with Hessian noise. They run in the global rayon pool (all cores). Plans are built in code.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flatscape::config::NoProgress;
use flatscape::landscape::expr::ExprLoss;
use flatscape::landscape::valley_nd::ValleyNdSpec;
use flatscape::landscape::{Landscape, Valley2d};
use flatscape::noise::Noise;
use flatscape::sampler::{self, SamplerConfig, SamplerKind, SamplerPlan};

const NOISE: Noise = Noise::Hessian {
    eta: 0.01,
    sigma: 0.2,
    power: 2.0,
};

fn bench_one(c: &mut Criterion, name: &str, landscape: &Landscape, cfg: SamplerConfig) {
    let plan = SamplerPlan::new(&cfg, landscape, &NOISE, 1).expect("valid bench plan");
    let mut group = c.benchmark_group("sampler");
    group.sample_size(10);
    group.throughput(Throughput::Elements((cfg.walkers * cfg.steps) as u64));
    group.bench_function(name, |b| {
        b.iter(|| sampler::run(&plan, None, &NoProgress).expect("runs"))
    });
    group.finish();
}

fn samplers(c: &mut Criterion) {
    let paper = Landscape::Valley2d(Valley2d::paper());
    let start = vec![1.0, 0.1];
    bench_one(
        c,
        "sgd_2d",
        &paper,
        SamplerConfig::new(SamplerKind::Sgd, 2048, 20000, 10000, start.clone()),
    );
    bench_one(
        c,
        "langevin_hessian_2d",
        &paper,
        SamplerConfig {
            dt: Some(0.01),
            ..SamplerConfig::new(SamplerKind::Langevin, 2048, 20000, 10000, start)
        },
    );
    // The same valley written as an expression, and matrix factorisation ½(xy − 1)².
    let expr = |src: &str| {
        Landscape::Expression(
            ExprLoss::new("landscape", src, &Default::default()).expect("valid expression"),
        )
    };
    bench_one(
        c,
        "sgd_2d_expression_valley",
        &expr("0.5*0.001*8*x^2 + 0.5*(8 - 2*x^2 + x^4)*y^2"),
        SamplerConfig::new(SamplerKind::Sgd, 2048, 20000, 10000, vec![1.0, 0.1]),
    );
    bench_one(
        c,
        "sgd_2d_expression_mf",
        &expr("0.5*(x*y - 1)^2"),
        SamplerConfig::new(SamplerKind::Sgd, 2048, 20000, 10000, vec![2.0, 0.5]),
    );
    bench_one(
        c,
        "langevin_hessian_2d_expression_mf",
        &expr("0.5*(x*y - 1)^2"),
        SamplerConfig {
            dt: Some(0.01),
            ..SamplerConfig::new(SamplerKind::Langevin, 2048, 20000, 10000, vec![2.0, 0.5])
        },
    );
    let nd = Landscape::Valley(ValleyNdSpec {
        n_s: 5,
        n_f: 100,
        seed: Some(1),
        ..ValleyNdSpec::default()
    });
    bench_one(
        c,
        "sgd_nd_5x100",
        &nd,
        SamplerConfig::new(SamplerKind::Sgd, 16, 4000, 2000, vec![0.1, 1.0]),
    );
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine lacks.
    config = Criterion::default().without_plots();
    targets = samplers
}
criterion_main!(benches);
