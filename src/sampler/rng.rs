//! Per-walker random streams and a vectorisable Gaussian generator.
//!
//! [`LaneRng`] holds `LANES` independent xoshiro256++ states in structure-of-arrays layout
//! (`s[k][lane]`), so one call advances every lane with plain array loops that the compiler
//! turns into SIMD code. Gaussian pairs come from the Box–Muller transform evaluated in single
//! precision (16 lanes per AVX-512 register) with branch-free polynomial `ln` and `sin`/`cos`
//! (accurate to about one f32 ulp), then widened exactly to f64: the walkers and their dynamics
//! stay in f64. One 64-bit word per lane gives one pair (32 bits for the radius, 32 for the
//! angle). The polynomials are evaluated by Horner's rule with fused multiply-adds (`mul_add`,
//! one rounding per step on every instruction set, so results do not depend on the CPU).
//!
//! Seeding: every lane's state is filled by SplitMix64 from a 64-bit key derived from
//! (scenario seed, walker index, lane index) — see [`stream_key`]. A walker's numbers therefore
//! depend only on those three values, never on threads or scheduling.

// Kernels index several arrays with one lane / coordinate index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use std::f32::consts::{FRAC_PI_4, LN_2};

/// Lanes advanced together: 2-D walkers in one lock-step batch, or the sub-streams of one N-D
/// walker.
pub const LANES: usize = 32;

/// One value per lane.
pub type Lanes = [f64; LANES];

/// Bits of 1.0f32 and the f32 mantissa mask.
const ONE_BITS: u32 = 0x3F80_0000;
const MANTISSA: u32 = 0x007F_FFFF;

/// Bound on |z| from the generator: √(−2 ln 2⁻³²) = √(64 ln 2) = 6.66044 (u ≥ 2⁻³²).
pub const MAX_ABS_NORMAL: f64 = 6.660_5;

/// SplitMix64 finaliser of `z + golden` (Steele, Lea & Flood 2014).
#[inline]
pub fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 64-bit key of stream (seed, walker, lane).
#[inline]
pub fn stream_key(seed: u64, walker: u64, lane: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ walker) ^ lane.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// xoshiro256++ state filled by SplitMix64 from `key` (same as `Xoshiro256PlusPlus::seed_from_u64`).
pub fn xoshiro_state(key: u64) -> [u64; 4] {
    let mut z = key;
    let mut s = [0u64; 4];
    for v in s.iter_mut() {
        *v = splitmix64(z);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    }
    s
}

/// `LANES` xoshiro256++ generators in structure-of-arrays layout.
#[derive(Debug, Clone)]
pub struct LaneRng {
    s: [[u64; LANES]; 4],
}

impl LaneRng {
    /// Lane `l` seeded from `keys[l]`.
    pub fn new(keys: [u64; LANES]) -> Self {
        let mut s = [[0u64; LANES]; 4];
        for (l, &k) in keys.iter().enumerate() {
            let st = xoshiro_state(k);
            for (row, v) in s.iter_mut().zip(st) {
                row[l] = v;
            }
        }
        Self { s }
    }

    /// The next 64 random bits of every lane.
    #[inline(always)]
    pub fn next_u64(&mut self, out: &mut [u64; LANES]) {
        let [s0, s1, s2, s3] = &mut self.s;
        for l in 0..LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
    }

    /// Two independent standard normals per lane (Box–Muller in f32 from one 64-bit word per
    /// lane: high half → radius, low half → angle), widened to f64.
    #[inline(always)]
    pub fn normals(&mut self, a: &mut Lanes, b: &mut Lanes) {
        let mut w = [0u64; LANES];
        self.next_u64(&mut w);
        // Split first: a loop reading u64 would be vectorised 8 lanes wide; over u32 it runs
        // 16 lanes per AVX-512 register.
        let mut hi = [0u32; LANES];
        let mut lo = [0u32; LANES];
        for l in 0..LANES {
            hi[l] = (w[l] >> 32) as u32;
            lo[l] = w[l] as u32;
        }
        let mut fa = [0f32; LANES];
        let mut fb = [0f32; LANES];
        for l in 0..LANES {
            (fa[l], fb[l]) = box_muller(hi[l], lo[l]);
        }
        for l in 0..LANES {
            a[l] = f64::from(fa[l]);
            b[l] = f64::from(fb[l]);
        }
    }

    /// Fill `out` with standard normals (`out.len()` rounded up to 2·LANES internally).
    #[inline(always)]
    pub fn fill_normals(&mut self, out: &mut [f64]) {
        let mut a = [0.0; LANES];
        let mut b = [0.0; LANES];
        let mut chunks = out.chunks_exact_mut(2 * LANES);
        for chunk in &mut chunks {
            self.normals(&mut a, &mut b);
            chunk[..LANES].copy_from_slice(&a);
            chunk[LANES..].copy_from_slice(&b);
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            self.normals(&mut a, &mut b);
            for (o, v) in rest.iter_mut().zip(a.iter().chain(b.iter())) {
                *o = *v;
            }
        }
    }
}

/// Box–Muller in f32: two standard normals from two 32-bit words, branch-free.
///
/// r = √(−2 ln u) with u = [`uniform_pos`]`(w1)` ≈ (w1 + 1)·2⁻³² ∈ [2⁻³², 1] (all 32 bits count, so
/// |z| ≤ [`MAX_ABS_NORMAL`]). The angle: φ ∈ [0, π/4) from the top 23 bits of `w2`; bit 2
/// reflects it to π/2 − φ (swapping sin and cos), bits 0 and 1 pick the quadrant through the
/// signs — together a uniform angle on the circle.
#[inline(always)]
pub fn box_muller(w1: u32, w2: u32) -> (f32, f32) {
    let u = uniform_pos(w1);
    let r = minus_two_ln(u).sqrt();
    // φ = (f − 1)·π/4 for f ∈ [1, 2) (one rounding).
    let phi = f32::from_bits(ONE_BITS | (w2 >> 9)).mul_add(FRAC_PI_4, -FRAC_PI_4);
    let (s, c) = sincos_octant(phi);
    let swap = w2 & 4 != 0;
    let (c, s) = if swap { (s, c) } else { (c, s) };
    let sign_a = (w2 & 1) << 31;
    let sign_b = (w2 & 2) << 30;
    (
        f32::from_bits((r * c).to_bits() ^ sign_a),
        f32::from_bits((r * s).to_bits() ^ sign_b),
    )
}

/// u ∈ [2⁻³², 1] from 32 random bits: (w as f32)·2⁻³² + 2⁻³² (the conversion rounds to nearest on
/// every instruction set, then one fused multiply-add), so u ≈ (w + 1)·2⁻³² to 1 f32 ulp.
#[inline(always)]
pub fn uniform_pos(w: u32) -> f32 {
    const TWO_M32: f32 = 1.0 / 4_294_967_296.0;
    (w as f32).mul_add(TWO_M32, TWO_M32)
}

/// −2 ln v in f32 for a normal, positive v ≤ 1 (no subnormals), branch-free: the radius² of
/// Box–Muller.
///
/// v = 2^e m with m ∈ [√½, √2), found by integer arithmetic (adding 1 − √½ to the bits carries
/// into the exponent exactly when the mantissa is ≥ √2); ln m = 2 atanh t, t = (m − 1)/(m + 1),
/// |t| ≤ 0.172, as the odd series up to t⁹ (truncation below 3e-9, under the f32 rounding of
/// 6e-8), with the factor −2 folded into the coefficients.
#[inline(always)]
pub fn minus_two_ln(v: f32) -> f32 {
    const SQRT_HALF_BITS: u32 = 0x3F35_04F3;
    let b = v.to_bits().wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let e = ((b >> 23) as i32 - 127) as f32;
    let m = f32::from_bits((b & MANTISSA) + SQRT_HALF_BITS);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut p: f32 = -4.0 / 9.0;
    p = p.mul_add(t2, -4.0 / 7.0);
    p = p.mul_add(t2, -4.0 / 5.0);
    p = p.mul_add(t2, -4.0 / 3.0);
    let series = (t * t2).mul_add(p, -4.0 * t);
    e.mul_add(-2.0 * LN_2, series)
}

/// (sin φ, cos φ) in f32 for φ ∈ [0, π/4], Taylor series to φ⁹ / φ¹⁰ (truncation below 2e-9).
#[inline(always)]
pub fn sincos_octant(phi: f32) -> (f32, f32) {
    let p2 = phi * phi;
    // sin φ = φ (1 + φ² S), S = Σ_{k=1..4} (−1)^k φ^{2k−2}/(2k+1)!
    let mut s: f32 = 1.0 / 362_880.0; // 1/9!
    s = s.mul_add(p2, -1.0 / 5_040.0); // 1/7!
    s = s.mul_add(p2, 1.0 / 120.0); // 1/5!
    s = s.mul_add(p2, -1.0 / 6.0); // 1/3!
    let sin = (phi * p2).mul_add(s, phi);
    // cos φ = 1 + φ² C, C = Σ_{k=1..5} (−1)^k φ^{2k−2}/(2k)!
    let mut c: f32 = -1.0 / 3_628_800.0; // 1/10!
    c = c.mul_add(p2, 1.0 / 40_320.0); // 1/8!
    c = c.mul_add(p2, -1.0 / 720.0); // 1/6!
    c = c.mul_add(p2, 1.0 / 24.0); // 1/4!
    c = c.mul_add(p2, -0.5);
    let cos = p2.mul_add(c, 1.0);
    (sin, cos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn lanes_reproduce_rand_xoshiro() {
        let keys = std::array::from_fn(|l| stream_key(7, 3, l as u64));
        let mut lanes = LaneRng::new(keys);
        let mut refs: Vec<Xoshiro256PlusPlus> = keys
            .iter()
            .map(|&k| Xoshiro256PlusPlus::seed_from_u64(k))
            .collect();
        let mut out = [0u64; LANES];
        for _ in 0..100 {
            lanes.next_u64(&mut out);
            for (o, r) in out.iter().zip(refs.iter_mut()) {
                assert_eq!(*o, r.next_u64());
            }
        }
    }

    /// −2 ln to ~1 f32 ulp (relative, against f64 `ln` of the same f32) on every u the generator
    /// can produce (a geometric sweep of w), sin/cos to ~1 ulp on the octant.
    #[test]
    fn polynomial_ln_and_sincos_are_accurate() {
        let mut worst: f64 = 0.0;
        let mut w: u64 = 0;
        while w < 1 << 32 {
            let u = uniform_pos(w as u32);
            let want = (w + 1) as f64 / 4_294_967_296.0;
            assert!((f64::from(u) - want).abs() <= want * 1.2e-7, "u({w})");
            let exact = -2.0 * f64::from(u).ln();
            if u != 1.0 {
                worst = worst.max((f64::from(minus_two_ln(u)) - exact).abs() / exact);
            }
            w = w * 3 / 2 + 7;
        }
        assert!(worst < 1.2e-7, "ln rel error {worst}");
        assert_eq!(minus_two_ln(1.0), 0.0);
        let mut worst: f64 = 0.0;
        for k in 0..=100_000 {
            let phi = FRAC_PI_4 * k as f32 / 100_000.0;
            let (s, c) = sincos_octant(phi);
            let p = f64::from(phi);
            worst = worst
                .max((f64::from(s) - p.sin()).abs())
                .max((f64::from(c) - p.cos()).abs());
        }
        assert!(worst < 1.2e-7, "sincos abs error {worst}");
        // The extreme deviate: u = 2⁻³² (w1 = 0), angle 0.
        let (z, _) = box_muller(0, 0);
        assert!((f64::from(z) - (64.0 * std::f64::consts::LN_2).sqrt()).abs() < 1e-6);
        assert!(f64::from(z) <= MAX_ABS_NORMAL);
    }

    #[test]
    fn normals_have_gaussian_moments() {
        let keys = std::array::from_fn(|l| stream_key(1, 0, l as u64));
        let mut rng = LaneRng::new(keys);
        let mut buf = vec![0.0; 1 << 20];
        rng.fill_normals(&mut buf);
        let n = buf.len() as f64;
        let m1 = buf.iter().sum::<f64>() / n;
        let m2 = buf.iter().map(|v| v * v).sum::<f64>() / n;
        let m4 = buf.iter().map(|v| v.powi(4)).sum::<f64>() / n;
        let tail = buf.iter().filter(|v| v.abs() > 3.0).count() as f64 / n;
        // standard errors: 1/√n, √2/√n, √96/√n, √(p(1−p)/n)
        assert!(m1.abs() < 4.0 / n.sqrt(), "mean {m1}");
        assert!((m2 - 1.0).abs() < 4.0 * 2f64.sqrt() / n.sqrt(), "var {m2}");
        assert!((m4 - 3.0).abs() < 4.0 * 96f64.sqrt() / n.sqrt(), "m4 {m4}");
        let p = 0.002_699_796;
        assert!((tail - p).abs() < 4.0 * (p / n).sqrt(), "tail {tail}");
    }
}
