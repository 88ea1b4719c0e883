//! A fully connected network with softmax cross-entropy: forward pass, gradient (backprop),
//! exact Hessian-vector products (Pearlmutter's R-operator, forward-over-reverse) and
//! per-sample gradients — written by hand over contiguous ndarray buffers.
//!
//! Layout: the parameters θ are one flat slice; layer l (0-based, input → output) holds its
//! weight matrix W_l (out × in, row-major, input index fastest) followed by its bias b_l (out).
//! Batches are row-major matrices with one sample per row, so a layer computes Z = A Wᵀ + 1 bᵀ.
//!
//! The loss of a batch is the sum over its rows of l(s; θ) = −ln softmax(Z_out)_label (or
//! ½‖Z_out − e_label‖² with [`Loss::Mse`]); the
//! full-set functions [`Mlp::loss_grad`] and [`Mlp::hvp`] return the mean (Eq. 1), summing
//! fixed chunks of [`CHUNK_ROWS`] rows in a fixed order so that any thread count gives
//! bit-identical results.

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, s};
use rand::{Rng, RngExt};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Batch;

/// Rows per chunk of the full-set sums (fixed, so results do not depend on the thread count).
pub const CHUNK_ROWS: usize = 200;

/// The hidden-layer nonlinearity φ.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// φ(z) = tanh z.
    #[default]
    Tanh,
    /// φ(z) = max(z, 0).
    Relu,
}

impl Activation {
    /// φ(z) (tanh: the vectorisable [`super::tanh::tanh`], within a few ulp of the library one).
    #[inline]
    fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => super::tanh::tanh(z),
            Activation::Relu => z.max(0.0),
        }
    }

    /// φ'(z), written in terms of a = φ(z).
    #[inline]
    fn d1(self, a: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - a * a,
            Activation::Relu => {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// φ''(z), written in terms of a = φ(z).
    #[inline]
    fn d2(self, a: f64) -> f64 {
        match self {
            Activation::Tanh => -2.0 * a * (1.0 - a * a),
            Activation::Relu => 0.0,
        }
    }
}

/// The per-sample loss l(s; θ) of the output layer z.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// l = −ln softmax(z)_label (Eq. 1 with cross-entropy).
    #[default]
    CrossEntropy,
    /// l = ½ ‖z − e_label‖², squared error on one-hot targets (linear output): its minima
    /// form a manifold (every θ with z(s_n) = e_label for all n) when P ≫ M·K.
    Mse,
}

/// The architecture: layer sizes (input, hidden…, output), the nonlinearity and the loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    sizes: Vec<usize>,
    activation: Activation,
    loss: Loss,
    /// Start of W_l in θ for each layer, then the total count.
    offsets: Vec<usize>,
}

/// Activations of a forward pass over one batch.
struct Forward {
    /// φ(Z_l) of each hidden layer (batch × width).
    hidden: Vec<Array2<f64>>,
    /// Softmax probabilities (cross-entropy) or the outputs z (MSE), batch × classes.
    probs: Array2<f64>,
    /// Σ_rows −ln p_label.
    loss_sum: f64,
}

/// The v-independent parts of the R-operator on one chunk: the forward pass, the errors G_l
/// (∂l/∂Z_l per sample) and their products G_l W_l before the activation derivative (l > 0).
struct HvpPoint<'a> {
    batch: Batch<'a>,
    fwd: Forward,
    errors: Vec<Array2<f64>>,
    back: Vec<Array2<f64>>,
}

impl Mlp {
    /// A network with layer sizes `sizes` = [input, hidden…, output] (at least two entries).
    pub fn new(sizes: &[usize], activation: Activation) -> Self {
        assert!(sizes.len() >= 2 && sizes.iter().all(|&s| s > 0));
        let mut offsets = vec![0];
        for l in 0..sizes.len() - 1 {
            let last = *offsets.last().unwrap_or(&0);
            offsets.push(last + sizes[l + 1] * sizes[l] + sizes[l + 1]);
        }
        Self {
            sizes: sizes.to_vec(),
            activation,
            loss: Loss::CrossEntropy,
            offsets,
        }
    }

    /// The same network with loss `loss`.
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// The per-sample loss.
    pub fn loss_kind(&self) -> Loss {
        self.loss
    }

    /// Layer sizes (input, hidden…, output).
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The nonlinearity.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Number of weight layers.
    pub fn n_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Number of parameters (all weights and biases).
    pub fn n_params(&self) -> usize {
        self.offsets[self.n_layers()]
    }

    /// Range of layer l's parameters in θ (W_l then b_l).
    pub fn layer_range(&self, l: usize) -> Range<usize> {
        self.offsets[l]..self.offsets[l + 1]
    }

    fn shape(&self, l: usize) -> (usize, usize) {
        (self.sizes[l + 1], self.sizes[l])
    }

    fn w<'a>(&self, theta: &'a [f64], l: usize) -> ArrayView2<'a, f64> {
        let (o, i) = self.shape(l);
        let at = self.offsets[l];
        ArrayView2::from_shape((o, i), &theta[at..at + o * i]).expect("layer shape")
    }

    fn b<'a>(&self, theta: &'a [f64], l: usize) -> ArrayView1<'a, f64> {
        let (o, i) = self.shape(l);
        let at = self.offsets[l] + o * i;
        ArrayView1::from(&theta[at..at + o])
    }

    fn wb_mut<'a>(
        &self,
        theta: &'a mut [f64],
        l: usize,
    ) -> (ArrayViewMut2<'a, f64>, ArrayViewMut1<'a, f64>) {
        let (o, i) = self.shape(l);
        let (w, b) = theta[self.offsets[l]..self.offsets[l + 1]].split_at_mut(o * i);
        (
            ArrayViewMut2::from_shape((o, i), w).expect("layer shape"),
            ArrayViewMut1::from(b),
        )
    }

    /// Initial parameters: Glorot-uniform weights (He-uniform for ReLU), zero biases.
    pub fn init<R: Rng>(&self, rng: &mut R) -> Vec<f64> {
        let mut theta = vec![0.0; self.n_params()];
        for l in 0..self.n_layers() {
            let (o, i) = self.shape(l);
            let limit = match self.activation {
                Activation::Tanh => (6.0 / (i + o) as f64).sqrt(),
                Activation::Relu => (6.0 / i as f64).sqrt(),
            };
            let at = self.offsets[l];
            for w in &mut theta[at..at + o * i] {
                *w = limit * (2.0 * rng.random::<f64>() - 1.0);
            }
        }
        theta
    }

    /// The input of layer l: the batch for l = 0, else the previous hidden activations.
    fn input<'a>(x: ArrayView2<'a, f64>, fwd: &'a Forward, l: usize) -> ArrayView2<'a, f64> {
        if l == 0 { x } else { fwd.hidden[l - 1].view() }
    }

    fn forward(&self, theta: &[f64], x: ArrayView2<f64>, labels: &[u8]) -> Forward {
        let n = x.nrows();
        let mut fwd = Forward {
            hidden: Vec::with_capacity(self.n_layers() - 1),
            probs: Array2::zeros((0, 0)),
            loss_sum: 0.0,
        };
        for l in 0..self.n_layers() {
            let (o, _) = self.shape(l);
            let mut z = Array2::zeros((n, o));
            z += &self.b(theta, l);
            general_mat_mul(
                1.0,
                &Self::input(x, &fwd, l),
                &self.w(theta, l).t(),
                1.0,
                &mut z,
            );
            if l + 1 < self.n_layers() {
                match (self.activation, z.as_slice_mut()) {
                    (Activation::Tanh, Some(values)) => super::tanh::tanh_in_place(values),
                    (act, _) => z.mapv_inplace(|v| act.apply(v)),
                }
                fwd.hidden.push(z);
            } else if self.loss == Loss::Mse {
                let mut loss = 0.0;
                for (row, &y) in z.rows().into_iter().zip(labels) {
                    for (k, &v) in row.iter().enumerate() {
                        let t = if k == y as usize { 1.0 } else { 0.0 };
                        loss += 0.5 * (v - t) * (v - t);
                    }
                }
                fwd.probs = z;
                fwd.loss_sum = loss;
            } else {
                let mut loss = 0.0;
                for (mut row, &y) in z.rows_mut().into_iter().zip(labels) {
                    let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    let zy = row[y as usize];
                    row.mapv_inplace(|v| (v - max).exp());
                    let sum = row.sum();
                    row /= sum;
                    loss += max + sum.ln() - zy;
                }
                fwd.probs = z;
                fwd.loss_sum = loss;
            }
        }
        fwd
    }

    /// ∂l_n/∂Z_l for every layer l (batch × width), per sample (unscaled). `shift` is
    /// subtracted from the output error P − Y (MSE: Z − Y), i.e. the targets become Y + shift.
    fn deltas(
        &self,
        theta: &[f64],
        fwd: &Forward,
        labels: &[u8],
        shift: Option<ArrayView2<f64>>,
    ) -> Vec<Array2<f64>> {
        let nl = self.n_layers();
        let mut g = fwd.probs.clone();
        for (r, &y) in labels.iter().enumerate() {
            g[[r, y as usize]] -= 1.0;
        }
        if let Some(shift) = shift {
            g -= &shift;
        }
        let mut out = vec![Array2::zeros((0, 0)); nl];
        for l in (0..nl).rev() {
            if l > 0 {
                let mut d = g.dot(&self.w(theta, l));
                let act = self.activation;
                d.zip_mut_with(&fwd.hidden[l - 1], |d, &a| *d *= act.d1(a));
                out[l] = std::mem::replace(&mut g, d);
            } else {
                out[0] = std::mem::take(&mut g);
            }
        }
        out
    }

    /// Adds `scale`·∇(Σ_rows l) of a batch to `grad`; returns Σ_rows l.
    pub fn batch_grad(&self, theta: &[f64], batch: Batch, scale: f64, grad: &mut [f64]) -> f64 {
        self.batch_grad_shifted(theta, batch, None, scale, grad)
    }

    /// As [`Mlp::batch_grad`] with the targets moved to Y + `shift` (batch × classes; the
    /// label-noise SGD step). Returns Σ_rows l at the unshifted targets.
    pub fn batch_grad_shifted(
        &self,
        theta: &[f64],
        batch: Batch,
        shift: Option<ArrayView2<f64>>,
        scale: f64,
        grad: &mut [f64],
    ) -> f64 {
        let fwd = self.forward(theta, batch.x, batch.labels);
        let deltas = self.deltas(theta, &fwd, batch.labels, shift);
        for (l, g) in deltas.iter().enumerate() {
            let (mut gw, mut gb) = self.wb_mut(grad, l);
            general_mat_mul(scale, &g.t(), &Self::input(batch.x, &fwd, l), 1.0, &mut gw);
            gb.scaled_add(scale, &g.sum_axis(Axis(0)));
        }
        fwd.loss_sum
    }

    /// Adds `scale`·H_batch v to `out` (exact, R-operator), where H_batch is the Hessian of
    /// Σ_rows l.
    pub fn batch_hvp(&self, theta: &[f64], batch: Batch, v: &[f64], scale: f64, out: &mut [f64]) {
        let at = self.hvp_point(theta, batch);
        self.batch_hvp_at(theta, &at, v, scale, out);
    }

    /// The parts of the R-operator that do not depend on v: the forward pass, the output error
    /// G = P − Y and its back-propagated errors (computed once, reused by every product at θ).
    fn hvp_point<'a>(&self, theta: &[f64], batch: Batch<'a>) -> HvpPoint<'a> {
        let nl = self.n_layers();
        let act = self.activation;
        let fwd = self.forward(theta, batch.x, batch.labels);
        let mut g = fwd.probs.clone();
        for (r, &y) in batch.labels.iter().enumerate() {
            g[[r, y as usize]] -= 1.0;
        }
        let mut errors = vec![Array2::zeros((0, 0)); nl];
        let mut back = vec![Array2::zeros((0, 0)); nl];
        for l in (0..nl).rev() {
            if l > 0 {
                let delta = g.dot(&self.w(theta, l));
                let mut new_g = delta.clone();
                new_g.zip_mut_with(&fwd.hidden[l - 1], |d, &a| *d *= act.d1(a));
                back[l] = delta;
                errors[l] = std::mem::replace(&mut g, new_g);
            } else {
                errors[0] = std::mem::take(&mut g);
            }
        }
        HvpPoint {
            batch,
            fwd,
            errors,
            back,
        }
    }

    /// Adds `scale`·H_batch v to `out` at the point prepared by [`Mlp::hvp_point`].
    fn batch_hvp_at(&self, theta: &[f64], at: &HvpPoint, v: &[f64], scale: f64, out: &mut [f64]) {
        let nl = self.n_layers();
        let (x, n) = (at.batch.x, at.batch.len());
        let act = self.activation;
        let fwd = &at.fwd;
        // Forward R pass: R{Z_l} and R{A_l} (hidden layers).
        let mut rz: Vec<Array2<f64>> = Vec::with_capacity(nl);
        let mut ra: Vec<Array2<f64>> = Vec::with_capacity(nl - 1);
        for l in 0..nl {
            let (o, _) = self.shape(l);
            let mut z = Array2::zeros((n, o));
            z += &self.b(v, l);
            general_mat_mul(1.0, &Self::input(x, fwd, l), &self.w(v, l).t(), 1.0, &mut z);
            if l > 0 {
                general_mat_mul(1.0, &ra[l - 1], &self.w(theta, l).t(), 1.0, &mut z);
            }
            if l + 1 < nl {
                let mut r = z.clone();
                r.zip_mut_with(&fwd.hidden[l], |r, &a| *r *= act.d1(a));
                ra.push(r);
            }
            rz.push(z);
        }
        // Output: G = P − Y, R{G} = P ⊙ (R{Z} − rowsum(P ⊙ R{Z})); MSE: G = Z − Y, R{G} = R{Z}.
        let mut rg = rz[nl - 1].clone();
        if self.loss == Loss::CrossEntropy {
            for (mut row, p) in rg.rows_mut().into_iter().zip(fwd.probs.rows()) {
                let dot: f64 = row.iter().zip(p).map(|(a, b)| a * b).sum();
                row.zip_mut_with(&p, |r, &p| *r = p * (*r - dot));
            }
        }
        // Backward R pass (G_l and G_l W_l come from the point).
        for l in (0..nl).rev() {
            let g = &at.errors[l];
            {
                let (mut ow, mut ob) = self.wb_mut(out, l);
                general_mat_mul(scale, &rg.t(), &Self::input(x, fwd, l), 1.0, &mut ow);
                if l > 0 {
                    general_mat_mul(scale, &g.t(), &ra[l - 1], 1.0, &mut ow);
                }
                ob.scaled_add(scale, &rg.sum_axis(Axis(0)));
            }
            if l > 0 {
                let delta = &at.back[l];
                let mut rdelta = rg.dot(&self.w(theta, l));
                general_mat_mul(1.0, g, &self.w(v, l), 1.0, &mut rdelta);
                let h = &fwd.hidden[l - 1];
                ndarray::Zip::from(&mut rdelta)
                    .and(h)
                    .and(&rz[l - 1])
                    .and(delta)
                    .for_each(|r, &a, &rzv, &d| *r = act.d2(a) * rzv * d + act.d1(a) * *r);
                rg = rdelta;
            }
        }
    }

    /// The Hessian H = ∇∇L of the mean loss at θ as an operator: the v-independent parts of
    /// every chunk are computed once (in parallel when `parallel`), each [`HvpOperator::apply`]
    /// then costs the R-passes alone. Same result, bit for bit, as [`Mlp::hvp`].
    pub fn hvp_operator<'a, 'd>(
        &'a self,
        theta: &'a [f64],
        data: Batch<'d>,
        parallel: bool,
    ) -> HvpOperator<'a, 'd> {
        let points = map_chunks_of(data, parallel, |chunk| self.hvp_point(theta, chunk));
        HvpOperator {
            mlp: self,
            theta,
            points,
            scale: 1.0 / data.len() as f64,
            parallel,
        }
    }

    /// Per-sample gradients ∇l(s_n; θ) of a batch, one row per sample (batch × parameters).
    pub fn per_sample_grads(&self, theta: &[f64], batch: Batch) -> Array2<f64> {
        let fwd = self.forward(theta, batch.x, batch.labels);
        let deltas = self.deltas(theta, &fwd, batch.labels, None);
        self.rows_from_deltas(&fwd, &deltas, batch)
    }

    /// The Jacobian of the outputs, ∂z_k(s_n)/∂θ, one row per (sample n, output k) in the order
    /// n·K + k (batch·K × parameters): the output error is set to the unit vector e_k.
    pub fn output_jacobian(&self, theta: &[f64], batch: Batch) -> Array2<f64> {
        let fwd = self.forward(theta, batch.x, batch.labels);
        let n = batch.len();
        let k_out = self.sizes[self.n_layers()];
        let mut out = Array2::zeros((n * k_out, self.n_params()));
        for k in 0..k_out {
            // deltas() starts from P − Y − shift; this shift makes it E_k.
            let mut shift = fwd.probs.clone();
            for (r, &y) in batch.labels.iter().enumerate() {
                shift[[r, y as usize]] -= 1.0;
                shift[[r, k]] -= 1.0;
            }
            let deltas = self.deltas(theta, &fwd, batch.labels, Some(shift.view()));
            let rows = self.rows_from_deltas(&fwd, &deltas, batch);
            for r in 0..n {
                out.row_mut(r * k_out + k).assign(&rows.row(r));
            }
        }
        out
    }

    /// Per-sample rows δ_{l,n} ⊗ (a_{l−1,n}, 1) of every layer from back-propagated errors.
    fn rows_from_deltas(&self, fwd: &Forward, deltas: &[Array2<f64>], batch: Batch) -> Array2<f64> {
        let mut out = Array2::zeros((batch.len(), self.n_params()));
        for (l, g) in deltas.iter().enumerate() {
            let input = Self::input(batch.x, fwd, l);
            let (o, i) = self.shape(l);
            let at = self.offsets[l];
            for n in 0..batch.len() {
                let mut row = out.row_mut(n);
                let (gn, an) = (g.row(n), input.row(n));
                for a in 0..o {
                    let ga = gn[a];
                    let mut dst = row.slice_mut(s![at + a * i..at + (a + 1) * i]);
                    dst.zip_mut_with(&an, |d, &x| *d = ga * x);
                    row[at + o * i + a] = ga;
                }
            }
        }
        out
    }

    /// Σ_n ‖∇l(s_n; θ)‖² over a batch, from the outer-product structure of each layer's
    /// per-sample gradient: ‖g_n‖² = Σ_l ‖δ_{l,n}‖² (‖a_{l−1,n}‖² + 1). Returns (Σ‖g_n‖², Σ l).
    pub fn batch_sq_grad_norms(&self, theta: &[f64], batch: Batch) -> (f64, f64) {
        let fwd = self.forward(theta, batch.x, batch.labels);
        let deltas = self.deltas(theta, &fwd, batch.labels, None);
        let mut total = 0.0;
        for (l, g) in deltas.iter().enumerate() {
            let input = Self::input(batch.x, &fwd, l);
            for (gn, an) in g.rows().into_iter().zip(input.rows()) {
                total += gn.dot(&gn) * (an.dot(&an) + 1.0);
            }
        }
        (total, fwd.loss_sum)
    }

    /// Number of rows whose largest output is the label.
    pub fn batch_correct(&self, theta: &[f64], batch: Batch) -> usize {
        let fwd = self.forward(theta, batch.x, batch.labels);
        fwd.probs
            .rows()
            .into_iter()
            .zip(batch.labels)
            .filter(|(p, y)| {
                let best = p
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |acc, (k, &v)| {
                            if v > acc.1 { (k, v) } else { acc }
                        },
                    );
                best.0 == **y as usize
            })
            .count()
    }

    /// Mean loss L(θ) and its gradient ∇L (Eq. 1), written to `grad`. Chunks run in parallel
    /// when `parallel`; the result is identical either way.
    pub fn loss_grad(&self, theta: &[f64], data: Batch, grad: &mut [f64], parallel: bool) -> f64 {
        let scale = 1.0 / data.len() as f64;
        let parts = map_chunks(data, parallel, |chunk| {
            let mut g = vec![0.0; self.n_params()];
            let loss = self.batch_grad(theta, chunk, scale, &mut g);
            (loss, g)
        });
        grad.fill(0.0);
        let mut loss = 0.0;
        for (l, g) in parts {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        loss * scale
    }

    /// [`Mlp::loss_grad`] and, from the same forward and backward passes, Σ_n ‖∇l(s_n; θ)‖²
    /// over the data (as summed by [`Mlp::batch_sq_grad_norms`] chunk by chunk): bit for bit
    /// the values of the two separate calls, at the cost of one. Returns (L, Σ_n ‖g_n‖²).
    pub fn loss_grad_sq_norms(
        &self,
        theta: &[f64],
        data: Batch,
        grad: &mut [f64],
        parallel: bool,
    ) -> (f64, f64) {
        let scale = 1.0 / data.len() as f64;
        let parts = map_chunks(data, parallel, |chunk| {
            let fwd = self.forward(theta, chunk.x, chunk.labels);
            let deltas = self.deltas(theta, &fwd, chunk.labels, None);
            let mut g = vec![0.0; self.n_params()];
            let mut sq = 0.0;
            for (l, d) in deltas.iter().enumerate() {
                let input = Self::input(chunk.x, &fwd, l);
                let (mut gw, mut gb) = self.wb_mut(&mut g, l);
                general_mat_mul(scale, &d.t(), &input, 1.0, &mut gw);
                gb.scaled_add(scale, &d.sum_axis(Axis(0)));
                for (gn, an) in d.rows().into_iter().zip(input.rows()) {
                    sq += gn.dot(&gn) * (an.dot(&an) + 1.0);
                }
            }
            (fwd.loss_sum, g, sq)
        });
        grad.fill(0.0);
        let (mut loss, mut sq) = (0.0, 0.0);
        for (l, g, s) in parts {
            loss += l;
            sq += s;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        (loss * scale, sq)
    }

    /// H v for the Hessian H = ∇∇L of the mean loss (exact), written to `out`.
    pub fn hvp(&self, theta: &[f64], data: Batch, v: &[f64], out: &mut [f64], parallel: bool) {
        let scale = 1.0 / data.len() as f64;
        let parts = map_chunks(data, parallel, |chunk| {
            let mut h = vec![0.0; self.n_params()];
            self.batch_hvp(theta, chunk, v, scale, &mut h);
            h
        });
        sum_in_order(out, parts);
    }

    /// Mean loss only.
    pub fn loss(&self, theta: &[f64], data: Batch) -> f64 {
        let parts = map_chunks(data, true, |c| self.forward(theta, c.x, c.labels).loss_sum);
        parts.iter().sum::<f64>() / data.len() as f64
    }

    /// Fraction of samples classified correctly.
    pub fn accuracy(&self, theta: &[f64], data: Batch) -> f64 {
        let parts = map_chunks(data, true, |c| self.batch_correct(theta, c));
        parts.iter().sum::<usize>() as f64 / data.len().max(1) as f64
    }
}

/// The Hessian of the mean loss at one θ, with the forward pass and the back-propagated errors of
/// every chunk kept (see [`Mlp::hvp_operator`]).
pub struct HvpOperator<'a, 'd> {
    mlp: &'a Mlp,
    theta: &'a [f64],
    points: Vec<HvpPoint<'d>>,
    scale: f64,
    parallel: bool,
}

impl HvpOperator<'_, '_> {
    /// H v, written to `out` (chunks summed in order: independent of the thread count).
    pub fn apply(&self, v: &[f64], out: &mut [f64]) {
        self.apply_with(v, out, self.parallel);
    }

    /// H v on the calling thread (for callers that run many products in parallel).
    pub fn apply_serial(&self, v: &[f64], out: &mut [f64]) {
        self.apply_with(v, out, false);
    }

    fn apply_with(&self, v: &[f64], out: &mut [f64], parallel: bool) {
        let p = self.mlp.n_params();
        let one = |at: &HvpPoint| {
            let mut h = vec![0.0; p];
            self.mlp.batch_hvp_at(self.theta, at, v, self.scale, &mut h);
            h
        };
        let parts: Vec<Vec<f64>> = if parallel {
            self.points.par_iter().map(one).collect()
        } else {
            self.points.iter().map(one).collect()
        };
        sum_in_order(out, parts);
    }
}

/// `out` = Σ parts, added in order starting from zero.
fn sum_in_order(out: &mut [f64], parts: Vec<Vec<f64>>) {
    out.fill(0.0);
    for h in parts {
        out.iter_mut().zip(&h).for_each(|(a, b)| *a += b);
    }
}

/// Apply `f` to consecutive chunks of [`CHUNK_ROWS`] rows; results in chunk order.
pub fn map_chunks<T: Send>(
    data: Batch,
    parallel: bool,
    f: impl Fn(Batch) -> T + Sync + Send,
) -> Vec<T> {
    map_chunks_of(data, parallel, f)
}

/// [`map_chunks`] whose results may borrow the data.
fn map_chunks_of<'a, T: Send>(
    data: Batch<'a>,
    parallel: bool,
    f: impl Fn(Batch<'a>) -> T + Sync + Send,
) -> Vec<T> {
    let n = data.len();
    let ranges: Vec<Range<usize>> = (0..n.div_ceil(CHUNK_ROWS))
        .map(|k| k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(n))
        .collect();
    let chunk = |r: &Range<usize>| Batch {
        x: data.x.slice_move(s![r.clone(), ..]),
        labels: &data.labels[r.clone()],
    };
    if parallel {
        ranges.par_iter().map(|r| f(chunk(r))).collect()
    } else {
        ranges.iter().map(|r| f(chunk(r))).collect()
    }
}
