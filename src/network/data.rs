//! The UCI 8×8 handwritten digits (shipped inside `smartcore`), scaled to [0, 1] and split into a
//! fixed, seeded train/test partition.
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
/// Largest pixel value in the raw data (pixels are integers 0..=16).
const PIXEL_MAX: f64 = 16.0;

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

/// Load all 1797 digits, pixels scaled to [0, 1].
pub fn load_all() -> Samples {
    let ds = smartcore::dataset::digits::load_dataset();
    let (n, d) = (ds.num_samples, ds.num_features);
    debug_assert_eq!(d, N_PIXELS);
    let x = Array2::from_shape_fn((n, d), |(i, j)| f64::from(ds.data[i * d + j]) / PIXEL_MAX);
    let labels = ds.target.iter().map(|&t| t.round() as u8).collect();
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
    1797
}
