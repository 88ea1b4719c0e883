//! Dense kernels of one front in the single-right-hand-side solve of the nested-dissection LU
//! ([`crate::fp::nested::Factorization::solve_in_place`]).
//!
//! Method: column-oriented substitution four columns at a time. Every factor entry is read
//! exactly once per solve, in storage order (the blocks are column-major), and the vector being
//! updated is loaded and stored once per four columns, so the solve streams the factor at close
//! to memory bandwidth; a library triangular solve per front costs more in call overhead than
//! in arithmetic on the thousands of small fronts of a 2-D grid.
//!
//! Invariant: the operations and their order do not depend on the instruction set (no fused
//! multiply-adds), so the AVX2 build of the kernels and the baseline one give the same bits.

/// Columns per block update.
const W: usize = 4;

/// z ← L⁻¹ z and then bnd ← bnd − L21 z, for the unit lower triangle L of the column-major
/// np × np block `lu` and the column-major nb × np block `l21` (np = z.len(), nb = bnd.len()).
pub(crate) fn forward_node(lu: &[f64], l21: &[f64], z: &mut [f64], bnd: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { forward_avx2(lu, l21, z, bnd) };
        return;
    }
    forward_impl(lu, l21, z, bnd);
}

/// z ← U⁻¹ (z − U12 xb) for the upper triangle U (with its diagonal) of the column-major
/// np × np block `lu` and the column-major np × nb block `u12` (np = z.len(), nb = xb.len()).
pub(crate) fn backward_node(lu: &[f64], u12: &[f64], xb: &[f64], z: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { backward_avx2(lu, u12, xb, z) };
        return;
    }
    backward_impl(lu, u12, xb, z);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_avx2(lu: &[f64], l21: &[f64], z: &mut [f64], bnd: &mut [f64]) {
    forward_impl(lu, l21, z, bnd);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn backward_avx2(lu: &[f64], u12: &[f64], xb: &[f64], z: &mut [f64]) {
    backward_impl(lu, u12, xb, z);
}

/// dst ← dst − (a₀c₀ + a₁c₁ + a₂c₂ + a₃c₃), the four columns `a` of equal length.
#[inline(always)]
fn sub4(dst: &mut [f64], a: [&[f64]; W], c: [f64; W]) {
    let n = dst.len();
    let (a0, a1, a2, a3) = (&a[0][..n], &a[1][..n], &a[2][..n], &a[3][..n]);
    for i in 0..n {
        dst[i] -= a0[i] * c[0] + a1[i] * c[1] + a2[i] * c[2] + a3[i] * c[3];
    }
}

/// dst ← dst − a·c.
#[inline(always)]
fn sub1(dst: &mut [f64], a: &[f64], c: f64) {
    let a = &a[..dst.len()];
    for (d, &x) in dst.iter_mut().zip(a) {
        *d -= x * c;
    }
}

#[inline(always)]
fn forward_impl(lu: &[f64], l21: &[f64], z: &mut [f64], bnd: &mut [f64]) {
    let (np, nb) = (z.len(), bnd.len());
    debug_assert!(lu.len() >= np * np && l21.len() >= nb * np);
    let mut c = 0;
    while c + W <= np {
        // The 4 × 4 unit lower triangle of this block.
        for a in c..c + W {
            let za = z[a];
            for r in a + 1..c + W {
                z[r] -= lu[a * np + r] * za;
            }
        }
        let zc = [z[c], z[c + 1], z[c + 2], z[c + 3]];
        if zc != [0.0; W] {
            let below = |k: usize| &lu[(c + k) * np + c + W..(c + k + 1) * np];
            sub4(
                &mut z[c + W..],
                [below(0), below(1), below(2), below(3)],
                zc,
            );
            let col = |k: usize| &l21[(c + k) * nb..(c + k + 1) * nb];
            sub4(bnd, [col(0), col(1), col(2), col(3)], zc);
        }
        c += W;
    }
    for a in c..np {
        let za = z[a];
        if za != 0.0 {
            sub1(&mut z[a + 1..], &lu[a * np + a + 1..(a + 1) * np], za);
            sub1(bnd, &l21[a * nb..(a + 1) * nb], za);
        }
    }
}

#[inline(always)]
fn backward_impl(lu: &[f64], u12: &[f64], xb: &[f64], z: &mut [f64]) {
    let (np, nb) = (z.len(), xb.len());
    debug_assert!(lu.len() >= np * np && u12.len() >= np * nb);
    let col = |k: usize| &u12[k * np..(k + 1) * np];
    let mut k = 0;
    while k + W <= nb {
        let xc = [xb[k], xb[k + 1], xb[k + 2], xb[k + 3]];
        if xc != [0.0; W] {
            sub4(z, [col(k), col(k + 1), col(k + 2), col(k + 3)], xc);
        }
        k += W;
    }
    for (k, &x) in xb.iter().enumerate().skip(k) {
        if x != 0.0 {
            sub1(z, col(k), x);
        }
    }
    // Columns from the last: the trailing partial block first, then blocks of four.
    let mut c = np;
    while c > 0 {
        let w = if c == np && np % W != 0 {
            np % W
        } else {
            W.min(c)
        };
        let c0 = c - w;
        for a in (c0..c).rev() {
            z[a] /= lu[a * np + a];
            let za = z[a];
            for r in c0..a {
                z[r] -= lu[a * np + r] * za;
            }
        }
        let above = |k: usize| &lu[(c0 + k) * np..(c0 + k) * np + c0];
        if w == W {
            let zc = [z[c0], z[c0 + 1], z[c0 + 2], z[c0 + 3]];
            if zc != [0.0; W] {
                let (head, _) = z.split_at_mut(c0);
                sub4(head, [above(0), above(1), above(2), above(3)], zc);
            }
        } else {
            for k in 0..w {
                let za = z[c0 + k];
                if za != 0.0 {
                    let (head, _) = z.split_at_mut(c0);
                    sub1(head, above(k), za);
                }
            }
        }
        c = c0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    /// Both kernels against the plain definitions (dense products) for every np mod 4.
    #[test]
    fn kernels_match_dense_substitution() {
        for (np, nb) in [
            (1, 3),
            (2, 0),
            (3, 5),
            (4, 4),
            (5, 1),
            (7, 9),
            (13, 6),
            (32, 28),
        ] {
            let mut lu = pseudo(np * np, np as u64);
            for d in 0..np {
                lu[d * np + d] += 3.0;
            }
            let l21 = pseudo(nb * np, 7 + nb as u64);
            let u12 = pseudo(np * nb, 11 + nb as u64);
            let z0 = pseudo(np, 3);
            let b0 = pseudo(nb, 5);
            // Forward reference: plain row-oriented substitution.
            let mut zr = z0.clone();
            for r in 0..np {
                for c in 0..r {
                    zr[r] -= lu[c * np + r] * zr[c];
                }
            }
            let br: Vec<f64> = (0..nb)
                .map(|i| b0[i] - (0..np).map(|c| l21[c * nb + i] * zr[c]).sum::<f64>())
                .collect();
            let (mut z, mut b) = (z0.clone(), b0.clone());
            forward_node(&lu, &l21, &mut z, &mut b);
            let (mut zs, mut bs) = (z0.clone(), b0.clone());
            forward_impl(&lu, &l21, &mut zs, &mut bs);
            assert_eq!((&z, &b), (&zs, &bs), "dispatch changes bits");
            for (p, q) in z.iter().zip(&zr).chain(b.iter().zip(&br)) {
                assert!(
                    (p - q).abs() <= 1e-12 * (1.0 + q.abs()),
                    "forward {np}×{nb}"
                );
            }
            // Backward reference.
            let xb = b0.clone();
            let mut yr: Vec<f64> = (0..np)
                .map(|r| z0[r] - (0..nb).map(|k| u12[k * np + r] * xb[k]).sum::<f64>())
                .collect();
            for r in (0..np).rev() {
                for c in r + 1..np {
                    yr[r] -= lu[c * np + r] * yr[c];
                }
                yr[r] /= lu[r * np + r];
            }
            let mut y = z0.clone();
            backward_node(&lu, &u12, &xb, &mut y);
            let mut ys = z0.clone();
            backward_impl(&lu, &u12, &xb, &mut ys);
            assert_eq!(y, ys, "dispatch changes bits");
            for (p, q) in y.iter().zip(&yr) {
                assert!(
                    (p - q).abs() <= 1e-12 * (1.0 + q.abs()),
                    "backward {np}×{nb}"
                );
            }
        }
    }
}
