//! Criterion benches of the network module (issue 6): one SGD update (gather + gradient +
//! step), one training epoch (SGD, B = 100, and GD
//! with as many full-batch steps), one exact Hessian-vector product over the training set, the
//! Lanczos flatness measurement, the full Hessian + eigen-decomposition of Fig. 1, and the
//! stochastic Lanczos quadrature (m = 80 steps × v = 10 probes) of the 3190-parameter net.
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

use flatscape::network::curvature::{dense_hessian, slq, symmetric_eigen};
use flatscape::network::data::{self, Samples};
use flatscape::network::{Mlp, NetworkConfig, train};

const ETA: f64 = 0.05;
const BATCH: usize = 100;

fn setup(hidden: &[usize]) -> (Mlp, Samples, Vec<f64>) {
    let cfg = NetworkConfig {
        hidden: hidden.to_vec(),
        ..NetworkConfig::default()
    };
    let mlp = cfg.mlp();
    let digits = data::split(cfg.train_size, 1);
    let theta = train::initial_parameters(&mlp, 1);
    (mlp, digits.train, theta)
}

fn epochs(c: &mut Criterion) {
    let (mlp, set, theta0) = setup(&[30, 30]);
    let m = set.len();
    let batches: Vec<Samples> = (0..m / BATCH)
        .map(|k| set.select(&(k * BATCH..(k + 1) * BATCH).collect::<Vec<_>>()))
        .collect();
    let mut grad = vec![0.0; mlp.n_params()];
    // One SGD update as `train` does it: gather a minibatch of a shuffled order, gradient, step.
    let order: Vec<usize> = (0..m).map(|k| (k * 7919) % m).collect();
    c.bench_function("network_sgd_update_b100_p3190", |b| {
        let mut theta = theta0.clone();
        let mut at = 0;
        b.iter(|| {
            let idx = &order[at..at + BATCH];
            at = (at + BATCH) % (m - m % BATCH);
            let mb = set.select(idx);
            grad.fill(0.0);
            mlp.batch_grad(&theta, mb.view(), 1.0 / BATCH as f64, &mut grad);
            theta.iter_mut().zip(&grad).for_each(|(t, g)| *t -= ETA * g);
            black_box(theta[0])
        })
    });
    c.bench_function("network_sgd_epoch_b100_p3190", |b| {
        let mut theta = theta0.clone();
        b.iter(|| {
            for mb in &batches {
                grad.fill(0.0);
                mlp.batch_grad(&theta, mb.view(), 1.0 / BATCH as f64, &mut grad);
                theta.iter_mut().zip(&grad).for_each(|(t, g)| *t -= ETA * g);
            }
            black_box(theta[0])
        })
    });
    c.bench_function("network_gd_epoch_14_steps_p3190", |b| {
        let mut theta = theta0.clone();
        b.iter(|| {
            for _ in 0..m / BATCH {
                mlp.loss_grad(&theta, set.view(), &mut grad, true);
                theta.iter_mut().zip(&grad).for_each(|(t, g)| *t -= ETA * g);
            }
            black_box(theta[0])
        })
    });
    let v: Vec<f64> = (0..mlp.n_params()).map(|k| (k as f64).sin()).collect();
    let mut hv = vec![0.0; mlp.n_params()];
    c.bench_function("network_hvp_full_set_p3190", |b| {
        b.iter(|| {
            mlp.hvp(&theta0, set.view(), &v, &mut hv, true);
            black_box(hv[0])
        })
    });
    c.bench_function("network_lanczos_top10_40_steps_p3190", |b| {
        b.iter(|| black_box(train::top_eigenvalues(&mlp, &theta0, set.view(), 10, 40, 1)))
    });
}

fn hessian(c: &mut Criterion) {
    let mut group = c.benchmark_group("network_fig1");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(1));
    for hidden in [[20, 20], [30, 30]] {
        let (mlp, set, theta) = setup(&hidden);
        let p = mlp.n_params();
        group.bench_function(format!("dense_hessian_p{p}"), |b| {
            b.iter(|| black_box(dense_hessian(&mlp, &theta, set.view()).1))
        });
        let (h, _) = dense_hessian(&mlp, &theta, set.view());
        group.bench_function(format!("eigen_decomposition_p{p}"), |b| {
            b.iter(|| black_box(symmetric_eigen(&h, true).0[0]))
        });
    }
    group.finish();
}

fn spectral_density(c: &mut Criterion) {
    let mut group = c.benchmark_group("network_slq");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let (mlp, set, theta) = setup(&[30, 30]);
    let p = mlp.n_params();
    group.bench_function(format!("slq_m80_v10_p{p}_m1400"), |b| {
        b.iter(|| {
            black_box(slq(p, 80, 10, 1, |v, out| {
                mlp.hvp(&theta, set.view(), v, out, false)
            }))
            .trace
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = epochs, hessian, spectral_density
}
criterion_main!(benches);
