//! The divergence boundary of SGD on the paper's valley: prediction (theory::divergence) against
//! the sampler's diverged fraction.

use flatscape::landscape::Valley2d;
use flatscape::theory::divergence;

#[test]
fn print_prediction() {
    let v = Valley2d::paper();
    for eta in [0.03, 0.05, 0.07, 0.09] {
        for k in 0..11 {
            let sigma = 0.1 + 0.02 * k as f64;
            let p = divergence::predict(&v, eta * sigma, eta);
            eprintln!(
                "eta {eta} sigma {sigma:.2} ds {:.4} x_u {:.4} x0 {:.3} tau {:.3e} f {:.3}  eta*lam(x_u) {:.3}",
                eta * sigma,
                p.x_unstable,
                p.x_start,
                p.mean_time,
                p.diverged_fraction(eta, 100000),
                eta * v.lambda_at(p.x_unstable)
            );
        }
    }
}
