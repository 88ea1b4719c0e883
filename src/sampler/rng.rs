//! Per-walker random streams and a vectorisable Gaussian generator.
//!
//! [`LaneRng`] holds `LANES` independent xoshiro256++ states in structure-of-arrays layout
//! (`s[k][lane]`), so one call advances every lane with plain array loops that the compiler
//! turns into SIMD code. Gaussian pairs come from the Box–Muller transform with branch-free
//! polynomial `ln` and `sin`/`cos` (accurate to a few ulp), so the whole generator vectorises;
//! the polynomials are evaluated by Horner's rule with fused multiply-adds (`mul_add`, one
//! rounding per step on every instruction set, so results do not depend on the CPU).
//!
//! Seeding: every lane's state is filled by SplitMix64 from a 64-bit key derived from
//! (scenario seed, walker index, lane index) — see [`stream_key`]. A walker's numbers therefore
//! depend only on those three values, never on threads or scheduling.

// Kernels index several arrays with one lane / coordinate index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use std::f64::consts::{FRAC_PI_4, LN_2, SQRT_2};

/// Lanes advanced together: 2-D walkers in one lock-step batch, or the sub-streams of one N-D
/// walker.
pub const LANES: usize = 32;

/// One value per lane.
pub type Lanes = [f64; LANES];

const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;
const MANTISSA: u64 = 0x000F_FFFF_FFFF_FFFF;

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

    /// Two independent standard normals per lane (Box–Muller).
    #[inline(always)]
    pub fn normals(&mut self, a: &mut Lanes, b: &mut Lanes) {
        let mut u1 = [0u64; LANES];
        let mut u2 = [0u64; LANES];
        self.next_u64(&mut u1);
        self.next_u64(&mut u2);
        for l in 0..LANES {
            let (n1, n2) = box_muller(u1[l], u2[l]);
            a[l] = n1;
            b[l] = n2;
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

/// Box–Muller: two standard normals from two 64-bit words, branch-free.
///
/// r = √(−2 ln v), v ∈ (0, 1] from the top 52 bits of `w1`. The angle: φ ∈ [0, π/4) from the
/// top 52 bits of `w2`; bit 2 reflects it to π/2 − φ (swapping sin and cos), bits 0 and 1 pick
/// the quadrant through the signs — together a uniform angle on the circle.
#[inline(always)]
pub fn box_muller(w1: u64, w2: u64) -> (f64, f64) {
    let v = 2.0 - f64::from_bits(ONE_BITS | (w1 >> 12));
    let r = (-2.0 * ln_unit(v)).sqrt();
    let u = f64::from_bits(ONE_BITS | (w2 >> 12)) - 1.0;
    let (s, c) = sincos_octant(u * FRAC_PI_4);
    let swap = w2 & 4 != 0;
    let (c, s) = if swap { (s, c) } else { (c, s) };
    let sign_a = (w2 & 1) << 63;
    let sign_b = (w2 & 2) << 62;
    (
        f64::from_bits((r * c).to_bits() ^ sign_a),
        f64::from_bits((r * s).to_bits() ^ sign_b),
    )
}

/// ln v for a normal, positive v ≤ 1 (no subnormals), branch-free.
///
/// v = 2^e m with m ∈ [√½, √2); ln m = 2 atanh t, t = (m − 1)/(m + 1), |t| ≤ 0.172, as the odd
/// series up to t²¹ (truncation below 1e-17).
#[inline(always)]
pub fn ln_unit(v: f64) -> f64 {
    let bits = v.to_bits();
    let m = f64::from_bits((bits & MANTISSA) | ONE_BITS);
    let big = m > SQRT_2;
    let m = if big { 0.5 * m } else { m };
    // exponent → f64 exactly via the 2^52 magic number (vectorises, unlike an int cast).
    let e =
        f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - (4_503_599_627_370_496.0 + 1023.0);
    let e = if big { e + 1.0 } else { e };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut p: f64 = 1.0 / 21.0;
    p = p.mul_add(t2, 1.0 / 19.0);
    p = p.mul_add(t2, 1.0 / 17.0);
    p = p.mul_add(t2, 1.0 / 15.0);
    p = p.mul_add(t2, 1.0 / 13.0);
    p = p.mul_add(t2, 1.0 / 11.0);
    p = p.mul_add(t2, 1.0 / 9.0);
    p = p.mul_add(t2, 1.0 / 7.0);
    p = p.mul_add(t2, 1.0 / 5.0);
    p = p.mul_add(t2, 1.0 / 3.0);
    p = p.mul_add(t2, 1.0);
    e.mul_add(LN_2, 2.0 * t * p)
}

/// (sin φ, cos φ) for φ ∈ [0, π/4], Taylor series to φ¹⁵ / φ¹⁶ (truncation below 5e-17).
#[inline(always)]
pub fn sincos_octant(phi: f64) -> (f64, f64) {
    let p2 = phi * phi;
    // sin φ = φ (1 + φ² S), S = Σ_{k=1..7} (−1)^k φ^{2k−2}/(2k+1)!
    let mut s: f64 = -1.0 / 1_307_674_368_000.0; // 1/15!
    s = s.mul_add(p2, 1.0 / 6_227_020_800.0); // 1/13!
    s = s.mul_add(p2, -1.0 / 39_916_800.0); // 1/11!
    s = s.mul_add(p2, 1.0 / 362_880.0); // 1/9!
    s = s.mul_add(p2, -1.0 / 5_040.0); // 1/7!
    s = s.mul_add(p2, 1.0 / 120.0); // 1/5!
    s = s.mul_add(p2, -1.0 / 6.0); // 1/3!
    let sin = (phi * p2).mul_add(s, phi);
    // cos φ = 1 + φ² C, C = Σ_{k=1..8} (−1)^k φ^{2k−2}/(2k)!
    let mut c: f64 = 1.0 / 20_922_789_888_000.0; // 1/16!
    c = c.mul_add(p2, -1.0 / 87_178_291_200.0); // 1/14!
    c = c.mul_add(p2, 1.0 / 479_001_600.0); // 1/12!
    c = c.mul_add(p2, -1.0 / 3_628_800.0); // 1/10!
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

    #[test]
    fn polynomial_ln_and_sincos_are_accurate() {
        let mut worst: f64 = 0.0;
        for k in 1..200_000u64 {
            let v = (k as f64 / 200_000.0).powi(3);
            let e = (ln_unit(v) - v.ln()).abs() / v.ln().abs().max(1e-300);
            if v != 1.0 {
                worst = worst.max(e);
            }
        }
        assert!(worst < 1e-15, "ln rel error {worst}");
        assert_eq!(ln_unit(1.0), 0.0);
        let mut worst: f64 = 0.0;
        for k in 0..=100_000 {
            let phi = FRAC_PI_4 * k as f64 / 100_000.0;
            let (s, c) = sincos_octant(phi);
            worst = worst.max((s - phi.sin()).abs()).max((c - phi.cos()).abs());
        }
        assert!(worst < 4e-16, "sincos abs error {worst}");
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
