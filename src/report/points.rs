//! Files of a sharded sweep folder (`flatscape sweep plan | run | merge`):
//!
//! ```text
//! DIR/manifest.json                  the points (id, σ, η, Δ_S, seed), the scenario's hash and text
//! DIR/points/<id / 1000>/<id>.json   one computed point: its sweep.csv row, wall and CPU seconds
//! DIR/sweep.csv, DIR/sweep_*.png     written by merge
//! ```
//!
//! `<id / 1000>` is written with 4 digits and `<id>` with 7 (e.g. `points/0012/0012345.json`), so
//! no folder holds more than 1000 point files. A point file is written to a temporary sibling
//! and renamed into place; a reader accepts it only when it parses, carries [`POINT_FORMAT`],
//! the folder's scenario hash, its own id and seed and the bits of its (σ, η): anything else
//! (a truncated or foreign file) counts as not computed.
//!
//! Point file (JSON; numbers read back to the same f64):
//! `{"format": "flatscape-sweep-point/1", "scenario_hash": "fnv1a64:…", "id": 12, "seed": …,
//!   "row": {sigma, eta, delta_s, flatness_ss, …: the columns of sweep.csv, null when missing},
//!   "wall_seconds": …, "cpu_seconds": … | null}`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::study::{PointOutcome, PointSpec, SweepPoint};

use super::files::{WriteError, commit, ensure_parent_dir, temp_sibling, write_json};

/// The `format` of manifest.json.
pub const MANIFEST_FORMAT: &str = "flatscape-sweep-manifest/1";
/// The `format` of a point file.
pub const POINT_FORMAT: &str = "flatscape-sweep-point/1";
/// How shards split the points (also written into the manifest).
pub const ASSIGNMENT: &str = "shard K of N (K = 1..N) computes the points with id % N == K - 1";

/// The identity of a scenario: FNV-1a (64 bit) of its canonical TOML text, as `fnv1a64:<hex>`.
pub fn scenario_hash(sc: &Scenario) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sc.to_toml().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// manifest.json of a sweep folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The flatscape version that planned the sweep.
    pub flatscape_version: String,
    /// The scenario's name.
    pub scenario_name: String,
    /// [`scenario_hash`].
    pub scenario_hash: String,
    /// [`ASSIGNMENT`].
    pub assignment: String,
    /// The number of points.
    pub total_points: usize,
    /// The canonical scenario text (merge rebuilds the scenario from it).
    pub scenario_toml: String,
    /// Every point, in id order.
    pub points: Vec<PointSpec>,
}

impl Manifest {
    /// The manifest of a scenario's sweep with these points.
    pub fn new(sc: &Scenario, points: Vec<PointSpec>) -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            flatscape_version: env!("CARGO_PKG_VERSION").into(),
            scenario_name: sc.name().into(),
            scenario_hash: scenario_hash(sc),
            assignment: ASSIGNMENT.into(),
            total_points: points.len(),
            scenario_toml: sc.to_toml(),
            points,
        }
    }
}

/// The head of manifest.json (everything but the points), for a quick identity check.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestHead {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The flatscape version that planned the sweep.
    pub flatscape_version: String,
    /// The scenario's name.
    pub scenario_name: String,
    /// [`scenario_hash`].
    pub scenario_hash: String,
    /// The number of points.
    pub total_points: usize,
}

/// The manifest's path in a sweep folder.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("manifest.json")
}

/// Write manifest.json.
pub fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), WriteError> {
    write_json(&manifest_path(dir), m)
}

/// Read a manifest (`T` = [`Manifest`] or [`ManifestHead`]); `Ok(None)` when there is none.
pub fn read_manifest<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Option<T>, String> {
    let path = manifest_path(dir);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let m: T = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a sweep manifest: {e}", path.display()))?;
    Ok(Some(m))
}

/// The file of point `id`.
pub fn point_path(dir: &Path, id: usize) -> PathBuf {
    dir.join("points")
        .join(format!("{:04}", id / 1000))
        .join(format!("{id:07}.json"))
}

/// One point file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PointFile {
    /// [`POINT_FORMAT`].
    pub format: String,
    /// The scenario's hash.
    pub scenario_hash: String,
    /// The point's id.
    pub id: usize,
    /// The point's sampler seed.
    pub seed: u64,
    /// The row of sweep.csv.
    pub row: SweepPoint,
    /// Wall-clock seconds of the point.
    pub wall_seconds: f64,
    /// CPU seconds of the point (absent where the platform does not report it).
    pub cpu_seconds: Option<f64>,
}

/// What a point's file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum PointState {
    /// A valid result.
    Done(Box<PointFile>),
    /// No file.
    Missing,
    /// A file that is not a valid result of this point (truncated, foreign): why.
    Corrupt(String),
}

/// Read and check point `spec`'s file in `dir` against the scenario hash.
pub fn read_point(dir: &Path, spec: &PointSpec, hash: &str) -> PointState {
    let path = point_path(dir, spec.id);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PointState::Missing,
        Err(e) => return PointState::Corrupt(e.to_string()),
    };
    let p: PointFile = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => return PointState::Corrupt(format!("does not parse: {e}")),
    };
    let checks = [
        (p.format == POINT_FORMAT, "format"),
        (p.scenario_hash == hash, "scenario hash"),
        (p.id == spec.id, "id"),
        (p.seed == spec.seed, "seed"),
        (p.row.sigma.to_bits() == spec.sigma.to_bits(), "sigma"),
        (p.row.eta.to_bits() == spec.eta.to_bits(), "eta"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => PointState::Corrupt(format!("wrong {what}")),
        None => PointState::Done(Box::new(p)),
    }
}

/// Write a computed point atomically (temporary sibling, then rename; not synced to disk: a
/// file lost to a power cut reads back as corrupt and is recomputed).
pub fn write_point(
    dir: &Path,
    spec: &PointSpec,
    hash: &str,
    outcome: &PointOutcome,
) -> Result<(), WriteError> {
    let path = point_path(dir, spec.id);
    let file = PointFile {
        format: POINT_FORMAT.into(),
        scenario_hash: hash.into(),
        id: spec.id,
        seed: spec.seed,
        row: outcome.row.clone(),
        wall_seconds: outcome.wall_seconds,
        cpu_seconds: outcome.cpu_seconds,
    };
    let mut text = serde_json::to_vec(&file).map_err(|e| WriteError::new(&path, e))?;
    text.push(b'\n');
    let tmp = temp_sibling(&path);
    // The block folder usually exists: create it only when the first attempt says it does not.
    let mut f = match fs::File::create(&tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ensure_parent_dir(&path)?;
            fs::File::create(&tmp)
        }
        other => other,
    }
    .map_err(|e| WriteError::new(&path, e))?;
    f.write_all(&text).map_err(|e| WriteError::new(&path, e))?;
    drop(f);
    commit(&tmp, &path)
}
