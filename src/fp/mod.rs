//! Fokker–Planck solver (Eq. 10, SPEC §2).
