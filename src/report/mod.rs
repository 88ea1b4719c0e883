//! Output writers and figures (SPEC §7): every file of a run is written here.

pub mod files;
pub mod phase;
pub mod plot;
