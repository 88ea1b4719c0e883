//! The UCI 8×8 handwritten digits (1797 samples, shipped in `data/digits.csv`; source and licence
//! in `data/README.md`), scaled to [0, 1] and split into a fixed, seeded train/test partition.
//!
//! Layout: `x` is row-major, one sample per row (64 pixels, pixel index fastest).

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Number of classes (digits 0–9).
pub const N_CLASSES: usize = 10;
/// Input dimension (8×8 pixels).
pub const N_PIXELS: usize = 64;
/// Number of digits in the data set.
pub const N_SAMPLES: usize = 1797;
/// Largest pixel value in the raw data (pixels are integers 0..=16).
pub const PIXEL_MAX: u8 = 16;
/// The digits, one sample per line: 64 pixels (row-major) then the label, comma-separated.
const DIGITS_CSV: &str = include_str!("../../data/digits.csv");

/// A labelled set of samples.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Inputs, one sample per row.
    pub x: Array2<f64>,
    /// Class labels 0..10.
    pub labels: Vec<u8>,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A view of the inputs.
    pub fn view(&self) -> Batch<'_> {
        Batch {
            x: self.x.view(),
            labels: &self.labels,
        }
    }

    /// The samples at `index`, in that order.
    pub fn select(&self, index: &[usize]) -> Samples {
        let mut x = Array2::zeros((index.len(), self.x.ncols()));
        for (r, &i) in index.iter().enumerate() {
            x.row_mut(r).assign(&self.x.row(i));
        }
        Samples {
            x,
            labels: index.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// A borrowed batch: inputs (one sample per row) and their labels.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Inputs, one sample per row.
    pub x: ArrayView2<'a, f64>,
    /// Labels, one per row.
    pub labels: &'a [u8],
}

impl Batch<'_> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The train/test split.
#[derive(Debug, Clone)]
pub struct Digits {
    /// Training set (the loss L of Eq. 1 is its mean).
    pub train: Samples,
    /// Held-out test set.
    pub test: Samples,
}

/// The digits as shipped: pixels 0..=16 (`N_PIXELS` per sample, samples in file order) and
/// labels 0..10.
pub fn load_raw() -> (Vec<u8>, Vec<u8>) {
    let mut pixels = Vec::with_capacity(N_SAMPLES * N_PIXELS);
    let mut labels = Vec::with_capacity(N_SAMPLES);
    for (i, line) in DIGITS_CSV.lines().enumerate() {
        let values: Vec<u8> = line
            .trim_end()
            .split(',')
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|e| panic!("data/digits.csv line {}: {v:?}: {e}", i + 1))
            })
            .collect();
        assert_eq!(
            values.len(),
            N_PIXELS + 1,
            "data/digits.csv line {}: expected {} values",
            i + 1,
            N_PIXELS + 1
        );
        pixels.extend_from_slice(&values[..N_PIXELS]);
        labels.push(values[N_PIXELS]);
    }
    (pixels, labels)
}

/// Load all 1797 digits, pixels scaled to [0, 1].
pub fn load_all() -> Samples {
    let (pixels, labels) = load_raw();
    let x = Array2::from_shape_fn((labels.len(), N_PIXELS), |(i, j)| {
        f64::from(pixels[i * N_PIXELS + j]) / f64::from(PIXEL_MAX)
    });
    Samples { x, labels }
}

/// Shuffle the digits with `seed` and take the first `train_size` as the training set.
pub fn split(train_size: usize, seed: u64) -> Digits {
    let all = load_all();
    let mut index: Vec<usize> = (0..all.len()).collect();
    index.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    let train_size = train_size.min(all.len());
    Digits {
        train: all.select(&index[..train_size]),
        test: all.select(&index[train_size..]),
    }
}

/// Total number of digits in the data set.
pub fn total_samples() -> usize {
    N_SAMPLES
}
