//! The cached Hessian operator and the fused GLD pass (issue 15): same numbers, bit for bit, as
//! the uncached products and the two separate passes they replace.

use flatscape::network::data;
use flatscape::network::train::{self, per_sample_trace};
use flatscape::network::{Activation, Loss, Mlp};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

fn gaussian(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

#[test]
fn cached_hessian_products_equal_the_uncached_ones_bit_for_bit() {
    // 450 rows: three chunks of 200 rows, the last one short.
    let set = data::split(1400, 7)
        .train
        .select(&(0..450).collect::<Vec<_>>());
    for (activation, loss) in [
        (Activation::Tanh, Loss::CrossEntropy),
        (Activation::Relu, Loss::CrossEntropy),
        (Activation::Tanh, Loss::Mse),
    ] {
        let mlp = Mlp::new(&[64, 12, 9, 10], activation).with_loss(loss);
        let p = mlp.n_params();
        let theta: Vec<f64> = train::initial_parameters(&mlp, 3)
            .iter()
            .zip(gaussian(p, 4))
            .map(|(t, z)| t + 0.2 * z)
            .collect();
        for parallel in [true, false] {
            let op = mlp.hvp_operator(&theta, set.view(), parallel);
            for seed in 0..3 {
                let v = gaussian(p, 10 + seed);
                let (mut a, mut b, mut c) = (vec![0.0; p], vec![0.0; p], vec![0.0; p]);
                mlp.hvp(&theta, set.view(), &v, &mut a, parallel);
                op.apply(&v, &mut b);
                op.apply_serial(&v, &mut c);
                assert!(a.iter().any(|x| *x != 0.0));
                assert_eq!(a, b, "{activation:?} {loss:?} parallel = {parallel}");
                assert_eq!(a, c, "{activation:?} {loss:?} serial");
            }
        }
    }
}

#[test]
fn fused_gradient_and_squared_norms_equal_the_two_passes() {
    let set = data::split(1400, 7)
        .train
        .select(&(0..450).collect::<Vec<_>>());
    let mlp = Mlp::new(&[64, 12, 9, 10], Activation::Tanh);
    let p = mlp.n_params();
    let theta = train::initial_parameters(&mlp, 5);
    let mut g1 = vec![0.0; p];
    let l1 = mlp.loss_grad(&theta, set.view(), &mut g1, true);
    let tr = per_sample_trace(&mlp, &theta, set.view(), &g1);
    let mut g2 = vec![0.0; p];
    let (l2, sum_sq) = mlp.loss_grad_sq_norms(&theta, set.view(), &mut g2, true);
    assert_eq!(l1, l2);
    assert_eq!(g1, g2);
    let tr2 = sum_sq / 450.0 - g2.iter().map(|g| g * g).sum::<f64>();
    assert_eq!(tr, tr2);
    assert!(tr > 0.0);
}
