//! Output writers and figures (SPEC §7).
