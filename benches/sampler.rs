//! Criterion benches of the sampler hot paths, reported as walker-steps per second
//! (criterion's "elements/s"): 2-D `sgd`, N-D `sgd` (N_S = 5, N_F = 100) and 2-D `langevin`
//! with Hessian noise. They run in the global rayon pool (all cores).
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flatscape::sampler;
use flatscape::scenario::Scenario;

fn scenario(landscape: &str, sampler: &str) -> Scenario {
    let src = format!(
        "name = \"bench\"\nseed = 1\n[landscape]\n{landscape}\n[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[sampler]\n{sampler}\n"
    );
    Scenario::from_str_at(&src, Path::new("bench.toml")).expect("valid bench scenario")
}

fn bench_one(c: &mut Criterion, name: &str, sc: &Scenario) {
    let cfg = sc.sampler.clone().expect("sampler table");
    let mut group = c.benchmark_group("sampler");
    group.sample_size(10);
    group.throughput(Throughput::Elements((cfg.walkers * cfg.steps) as u64));
    group.bench_function(name, |b| {
        b.iter(|| sampler::run(sc, &cfg, None, false).expect("runs"))
    });
    group.finish();
}

fn samplers(c: &mut Criterion) {
    let paper = "kind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]";
    let sgd_2d = scenario(
        paper,
        "kind = \"sgd\"\nwalkers = 2048\nsteps = 20000\nburn_in = 10000\nstart = [1.0, 0.1]",
    );
    bench_one(c, "sgd_2d", &sgd_2d);
    let langevin = scenario(
        paper,
        "kind = \"langevin\"\ndt = 0.01\nwalkers = 2048\nsteps = 20000\nburn_in = 10000\nstart = [1.0, 0.1]",
    );
    bench_one(c, "langevin_hessian_2d", &langevin);
    let sgd_nd = scenario(
        "kind = \"valley\"\nn_s = 5\nn_f = 100\nseed = 1",
        "kind = \"sgd\"\nwalkers = 16\nsteps = 4000\nburn_in = 2000\nstart = [0.1, 1.0]",
    );
    bench_one(c, "sgd_nd_5x100", &sgd_nd);
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend needs system fonts this machine lacks.
    config = Criterion::default().without_plots();
    targets = samplers
}
criterion_main!(benches);
