//! Every file and figure flatscape writes, from the typed results of the `study` layer.
//!
//! - [`files`]: atomic writers (JSON, CSV with one number format, `.npy`);
//! - [`plot`], [`phase`]: the figure styles (line plots, heatmaps, phase diagrams);
//! - [`run`]: the outputs of one run; [`points`]: the manifest and point files of a sharded
//!   sweep; [`sweep`]: sweep figures; [`trajectories`]: walkers over
//!   the loss contours; [`network`]: the real-network figures and tables.

pub mod current;
pub mod files;
pub mod network;
pub mod phase;
pub mod plot;
pub mod points;
pub mod run;
pub mod sweep;
pub mod trajectories;

pub use run::write_run;
