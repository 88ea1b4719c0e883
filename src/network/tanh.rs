//! tanh over a slice, written so that the compiler vectorises it (the hidden layers of the
//! tanh network spend a third of the training time in the scalar library tanh otherwise).
//!
//! Method (Cephes, S. L. Moshier): for |x| < 0.625, tanh x = x + x·z·P(z)/Q(z), z = x²; above,
//! tanh |x| = 1 − 2/(e^{2|x|} + 1) with e^t = 2^k · (1 + 2 r P(r²)/(Q(r²) − r P(r²))),
//! k = round(t/ln 2), r = t − k ln 2 (two-part ln 2); both branches are computed and one is
//! selected, so the loop has no branch. |x| ≥ [`SATURATION`] gives ±1 (tanh rounds to 1 there).
//! Accuracy: within [`MAX_ULP`] units in the last place of the correctly rounded tanh (tested
//! against the library tanh on a dense sweep, `max_ulp_error_against_libm`).
//!
//! Invariant: plain multiplications and additions only (no fused multiply-add), so the AVX-512,
//! AVX2 and baseline builds of the loop give the same bits on every x86-64 machine.

/// Above this |x|, tanh x rounds to ±1 in double precision (1 − tanh 22 ≈ 1.6e−19).
pub const SATURATION: f64 = 22.0;
/// Largest error of [`tanh_in_place`] against the correctly rounded tanh, in units in the last
/// place (the test measures it; the library tanh itself is within 1–2).
pub const MAX_ULP: u64 = 3;

/// Below this |x| the rational approximation of tanh is used, above it the exponential.
const SMALL: f64 = 0.625;
const P: [f64; 3] = [
    -9.643_991_794_250_523e-1,
    -9.928_772_310_019_186e1,
    -1.614_687_684_417_084_5e3,
];
const Q: [f64; 3] = [
    1.128_116_784_916_329_3e2,
    2.235_488_390_601_004_6e3,
    4.844_063_053_251_255e3,
];
const EXP_P: [f64; 3] = [
    1.261_771_930_748_105_9e-4,
    3.029_944_077_074_419_6e-2,
    9.999_999_999_999_999e-1,
];
const EXP_Q: [f64; 4] = [
    3.001_985_051_386_644_5e-6,
    2.524_483_403_496_841e-3,
    2.272_655_482_081_550_3e-1,
    2.0,
];
/// ln 2 = LN2_HI + LN2_LO, LN2_HI with few mantissa bits (k·LN2_HI is exact).
const LN2_HI: f64 = 6.931_457_519_531_25e-1;
const LN2_LO: f64 = 1.428_606_820_309_417_2e-6;
/// 1.5·2^52: adding and subtracting it rounds to the nearest integer, and the bits of the sum
/// hold that integer in the low mantissa bits.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// tanh x for one value (the same bits as [`tanh_in_place`] gives for it).
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    let a = x.abs();
    // NaN > SATURATION is false: a NaN goes on and comes out as NaN.
    let a = if a > SATURATION { SATURATION } else { a };
    let z = a * a;
    let p = (P[0] * z + P[1]) * z + P[2];
    let q = ((z + Q[0]) * z + Q[1]) * z + Q[2];
    let small = a + a * z * (p / q);
    let large = 1.0 - 2.0 / (exp_reduced(2.0 * a) + 1.0);
    let t = if a < SMALL { small } else { large };
    t.copysign(x)
}

/// e^t for 0 ≤ t ≤ 2·[`SATURATION`] (no overflow or underflow handling needed there).
#[inline(always)]
fn exp_reduced(t: f64) -> f64 {
    let shifted = t * std::f64::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (t - k * LN2_HI) - k * LN2_LO;
    let rr = r * r;
    let px = r * ((EXP_P[0] * rr + EXP_P[1]) * rr + EXP_P[2]);
    let qx = ((EXP_Q[0] * rr + EXP_Q[1]) * rr + EXP_Q[2]) * rr + EXP_Q[3];
    let e = 1.0 + 2.0 * (px / (qx - px));
    // 2^k: the low bits of `shifted` are k (0 ≤ k ≤ 64); move k + 1023 into the exponent field.
    let two_k = f64::from_bits((shifted.to_bits().wrapping_add(1023)) << 52);
    e * two_k
}

/// v ← tanh v, element by element.
pub fn tanh_in_place(v: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            unsafe { tanh_avx512(v) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe { tanh_avx2(v) };
            return;
        }
    }
    tanh_loop(v);
}

#[inline(always)]
fn tanh_loop(v: &mut [f64]) {
    for x in v.iter_mut() {
        *x = tanh(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh_avx512(v: &mut [f64]) {
    tanh_loop(v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(v: &mut [f64]) {
    tanh_loop(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite doubles of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        let key = |x: f64| {
            let b = x.to_bits() as i64;
            if b < 0 { i64::MIN - b } else { b }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn max_ulp_error_against_libm() {
        // Dense sweep over the range the hidden layers see, plus tiny and saturated values.
        let mut xs: Vec<f64> = (0..400_001)
            .map(|i| -25.0 + 50.0 * i as f64 / 4e5)
            .collect();
        xs.extend((0..2000).map(|i| 1e-300 * 1.4_f64.powi(i)));
        xs.extend([
            0.625,
            0.625 - 1e-16,
            0.625 + 1e-16,
            SATURATION,
            1e300,
            f64::INFINITY,
        ]);
        let neg: Vec<f64> = xs.iter().map(|x| -x).collect();
        xs.extend(neg);
        let mut v = xs.clone();
        tanh_in_place(&mut v);
        let mut worst = (0, 0.0);
        for (&x, &t) in xs.iter().zip(&v) {
            let e = ulps(t, x.tanh());
            if e > worst.0 {
                worst = (e, x);
            }
            assert_eq!(
                t.to_bits(),
                tanh(x).to_bits(),
                "slice and scalar differ at {x}"
            );
        }
        // glibc's tanh is within ~1 ulp of the correctly rounded value: allow MAX_ULP − 1 against it.
        assert!(
            worst.0 < MAX_ULP,
            "worst {} ulp at x = {}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn special_values() {
        let mut v = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            30.0,
            -30.0,
        ];
        tanh_in_place(&mut v);
        assert_eq!(v[0].to_bits(), 0.0_f64.to_bits());
        assert_eq!(v[1].to_bits(), (-0.0_f64).to_bits());
        assert!(v[2].is_nan());
        assert_eq!(&v[3..], &[1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn baseline_loop_gives_the_same_bits_as_the_dispatched_one() {
        let xs: Vec<f64> = (0..10_001).map(|i| -12.0 + 24.0 * i as f64 / 1e4).collect();
        let (mut a, mut b) = (xs.clone(), xs);
        tanh_in_place(&mut a);
        tanh_loop(&mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
