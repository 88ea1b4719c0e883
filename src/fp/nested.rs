//! Sparse direct solver for 9-point-stencil matrices on a structured grid: geometric nested
//! dissection + multifrontal LU (dense fronts, partial pivoting inside each front's pivot block).
//!
//! Symbolic phase (once per grid): the rectangle of cells is bisected recursively across its
//! longer side by a one-cell-thick line of cells (a separator for the 9-point stencil) down to
//! small leaf boxes. Each tree node eliminates its separator (or its whole leaf box); its front
//! also holds the ring of cells around its box, which belong to ancestor separators.
//! Numeric phase: fronts are assembled from the matrix and the children's Schur complements
//! (extend-add), the pivot block is LU-factorised by faer with partial pivoting, and the Schur
//! complement F22 − F21 F11⁻¹ F12 goes to the parent. Sibling subtrees are factorised in
//! parallel (rayon::join); large fronts use faer's parallel kernels. Fronts are assembled
//! straight into each node's factor blocks (L\U, U12, L21) and its Schur complement, with no
//! separate front matrix.
//! Solves walk the tree in parallel too: forward bottom-up (a subtree returns its contribution
//! to its boundary), backward top-down.
//! Fill is O(N log N) and work O(N^1.5) for N cells — the optimal orders for 2-D grids —
//! against the column-etree fill of a general sparse LU.
//!
//! Pivoting inside the pivot block is enough here: FP generators are column diagonally dominant
//! M-matrices (for diagonal D), for which Gaussian elimination needs no pivoting at all.
//! Dense blocks are column-major faer matrices.

use std::cell::RefCell;

use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_unit_lower_triangular_in_place,
};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use super::operator::{OFFSETS, Stencil9};

/// Leaf boxes have at most this many cells (32: fewest flops and entries at 512² and 1024²,
/// measured against 4–128).
const LEAF_CELLS: usize = 32;
/// Fronts with at least this many multiply-adds use faer's parallel kernels.
const PARALLEL_WORK: usize = 1 << 22;

#[derive(Debug, Clone)]
struct Node {
    /// Cells eliminated at this node, in elimination order.
    pivots: Vec<u32>,
    /// Cells of ancestor nodes coupled to this node's box, sorted by elimination position.
    boundary: Vec<u32>,
    /// Child node ids (postorder: children precede their parent).
    children: Vec<usize>,
    /// First elimination position of this node's pivots.
    start: usize,
    /// Id of the first node of this node's subtree (subtrees are contiguous in postorder).
    first: usize,
    /// Where the boundary cells sit in the parent's front (a monotone map), as runs of
    /// consecutive indices (child start, parent start, length), split where the parent's pivot
    /// block ends: the extend-add moves whole slices.
    parent_runs: Vec<(u32, u32, u32)>,
}

/// The elimination tree of a grid (symbolic factorisation), reusable for any matrix values.
#[derive(Debug, Clone)]
pub struct NestedDissection {
    nx: usize,
    ny: usize,
    nodes: Vec<Node>,
    /// Elimination position of each cell.
    pos: Vec<u32>,
    /// The last-eliminated cell (used to pin the null vector of a singular generator).
    last: usize,
}

/// Where one node's factor blocks live in the factor store (column-major, one after another:
/// L\U of the pivot block, then U12, then L21), and its pivoting.
struct NodeFactor {
    /// Row permutation: row r of LU is row perm[r] of the pivot block.
    perm: Vec<usize>,
    /// Packed L\U (unit lower L below the diagonal), U12 = L11⁻¹ P F12 (pivots × boundary)
    /// and L21 = F21 U11⁻¹ (boundary × pivots), column-major, one after another. One
    /// allocation per node (not one store for all): freed factorisations are reused by the
    /// allocator without new page faults when a process factorises many matrices.
    blocks: Vec<f64>,
}

/// A numeric factorisation, ready for repeated solves.
pub struct Factorization {
    symbolic: NestedDissection,
    factors: Vec<NodeFactor>,
    /// Smallest |pivot| / largest |pivot| seen (a cheap conditioning indicator).
    pub pivot_ratio: f64,
}

/// The factorisation met an exactly zero pivot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the matrix is singular to working precision (zero pivot in front {front})")]
pub struct SingularMatrix {
    /// The tree node where it happened.
    pub front: usize,
}

impl NestedDissection {
    /// Build the tree for an nx × ny grid (cell k = i·ny + j). `pin` is a cell that must be
    /// eliminated last (it lands at the end of the root's pivots when it lies on the root).
    pub fn new(nx: usize, ny: usize, pin_hint: Option<(usize, usize)>) -> Self {
        let mut nodes = Vec::new();
        build(&mut nodes, ny, (0, nx), (0, ny));
        // Move the hinted cell (if on the root separator) to the very end.
        if let (Some((pi, pj)), Some(root)) = (pin_hint, nodes.last_mut()) {
            let cell = (pi * ny + pj) as u32;
            if let Some(p) = root.pivots.iter().position(|&c| c == cell) {
                root.pivots.remove(p);
                root.pivots.push(cell);
            }
        }
        let mut pos = vec![0u32; nx * ny];
        let mut next = 0usize;
        for node in nodes.iter_mut() {
            node.start = next;
            for &c in &node.pivots {
                pos[c as usize] = next as u32;
                next += 1;
            }
        }
        // Boundary rings, from the boxes recorded during the build.
        let boxes = boxes_of(&nodes, nx, ny);
        for (id, node) in nodes.iter_mut().enumerate() {
            let ((i0, i1), (j0, j1)) = boxes[id];
            let mut ring = Vec::new();
            let lo_i = i0.saturating_sub(1);
            let hi_i = (i1 + 1).min(nx);
            let lo_j = j0.saturating_sub(1);
            let hi_j = (j1 + 1).min(ny);
            for i in lo_i..hi_i {
                for j in lo_j..hi_j {
                    if i >= i0 && i < i1 && j >= j0 && j < j1 {
                        continue;
                    }
                    ring.push((i * ny + j) as u32);
                }
            }
            ring.sort_unstable_by_key(|&c| pos[c as usize]);
            node.boundary = ring;
        }
        // Subtree ranges and child-to-parent front maps.
        for id in 0..nodes.len() {
            let first = nodes[id].children.first().map_or(id, |&c| nodes[c].first);
            let node = &mut nodes[id];
            node.first = first;
        }
        for id in 0..nodes.len() {
            for k in 0..nodes[id].children.len() {
                let c = nodes[id].children[k];
                let map: Vec<u32> = nodes[c]
                    .boundary
                    .iter()
                    .map(|&cell| {
                        front_index(&pos, &nodes[id], cell)
                            .expect("child boundary lies in the parent front")
                            as u32
                    })
                    .collect();
                nodes[c].parent_runs = runs_of(&map, nodes[id].pivots.len() as u32);
            }
        }
        let last = nodes
            .last()
            .and_then(|n| n.pivots.last())
            .map_or(0, |&c| c as usize);
        Self {
            nx,
            ny,
            nodes,
            pos,
            last,
        }
    }

    /// The cell eliminated last.
    pub fn last_cell(&self) -> usize {
        self.last
    }

    /// Number of stored factor entries a factorisation will hold.
    pub fn factor_entries(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                let (p, b) = (n.pivots.len(), n.boundary.len());
                p * p + 2 * p * b
            })
            .sum()
    }

    /// Floating-point operations of one numeric factorisation (dense LU, triangular solves
    /// and Schur-complement products of every front).
    pub fn factor_flops(&self) -> f64 {
        self.nodes
            .iter()
            .map(|n| {
                let (p, b) = (n.pivots.len() as f64, n.boundary.len() as f64);
                2.0 / 3.0 * p * p * p + 2.0 * p * p * b + 2.0 * p * b * b
            })
            .sum()
    }

    /// Numeric factorisation of `a` (which must live on this grid).
    pub fn factorize(&self, a: &Stencil9) -> Result<Factorization, SingularMatrix> {
        assert_eq!((a.grid.nx, a.grid.ny), (self.nx, self.ny));
        let root = self.nodes.len() - 1;
        let mut factors: Vec<NodeFactor> = (0..self.nodes.len())
            .map(|_| NodeFactor {
                perm: Vec::new(),
                blocks: Vec::new(),
            })
            .collect();
        self.factor_subtree(root, a, &mut factors)?;
        let mut pivot_min = f64::INFINITY;
        let mut pivot_max: f64 = 0.0;
        for (node, f) in self.nodes.iter().zip(&factors) {
            let np = node.pivots.len();
            for r in 0..np {
                let d = f.blocks[r * np + r].abs();
                pivot_min = pivot_min.min(d);
                pivot_max = pivot_max.max(d);
            }
        }
        Ok(Factorization {
            symbolic: self.clone(),
            factors,
            pivot_ratio: pivot_min / pivot_max.max(f64::MIN_POSITIVE),
        })
    }

    /// Factorise the subtree rooted at `id` into `store` (the factor store from the subtree's
    /// first node on) and `factors` (likewise); returns the root's Schur complement.
    fn factor_subtree(
        &self,
        id: usize,
        a: &Stencil9,
        factors: &mut [NodeFactor],
    ) -> Result<Mat<f64>, SingularMatrix> {
        let node = &self.nodes[id];
        // This node's factor is the last of its subtree's range.
        let (below_f, own_f) = factors.split_at_mut(id - node.first);
        let mut updates = Vec::with_capacity(2);
        match node.children.as_slice() {
            [] => {}
            [c] => {
                updates.push((*c, self.factor_subtree(*c, a, below_f)?));
            }
            [c1, c2] => {
                let (f1, f2) = below_f.split_at_mut(*c1 + 1 - node.first);
                let (r1, r2) = rayon::join(
                    || self.factor_subtree(*c1, a, f1),
                    || self.factor_subtree(*c2, a, f2),
                );
                updates.push((*c1, r1?));
                updates.push((*c2, r2?));
            }
            _ => unreachable!("nested dissection nodes have at most two children"),
        }
        self.factor_node(id, a, &updates, &mut own_f[0])
    }

    /// Assemble node `id`'s front straight into its factor blocks (zero on entry) and the
    /// Schur-complement matrix, factorise the pivot block and return F22 − L21 U12.
    fn factor_node(
        &self,
        id: usize,
        a: &Stencil9,
        updates: &[(usize, Mat<f64>)],
        factor: &mut NodeFactor,
    ) -> Result<Mat<f64>, SingularMatrix> {
        let node = &self.nodes[id];
        let np = node.pivots.len();
        let nb = node.boundary.len();
        let end = node.start + np;
        let (nx, ny) = (self.nx as isize, self.ny as isize);
        let mut blocks = vec![0.0; np * np + 2 * np * nb];
        let (lu_s, rest) = blocks.split_at_mut(np * np);
        let (u12_s, l21_s) = rest.split_at_mut(np * nb);
        let mut lu = MatMut::from_column_major_slice_mut(lu_s, np, np);
        let mut u12 = MatMut::from_column_major_slice_mut(u12_s, np, nb);
        let mut l21 = MatMut::from_column_major_slice_mut(&mut l21_s[..nb * np], nb, np);
        let mut update = Mat::<f64>::zeros(nb, nb);
        // Original entries: rows of pivots (columns not yet eliminated), and columns of
        // pivots in rows of ancestors.
        for (lp, &p) in node.pivots.iter().enumerate() {
            let (pi, pj) = (p as isize / ny, p as isize % ny);
            for (s, &(di, dj)) in OFFSETS.iter().enumerate() {
                let (qi, qj) = (pi + di, pj + dj);
                if qi < 0 || qi >= nx || qj < 0 || qj >= ny {
                    continue;
                }
                let q = (qi * ny + qj) as u32;
                let qpos = self.pos[q as usize] as usize;
                let v = a.coef[p as usize][s];
                if v != 0.0 && qpos >= node.start {
                    let lq = front_index(&self.pos, node, q).expect("neighbour is in the front");
                    if lq < np {
                        lu[(lp, lq)] += v;
                    } else {
                        u12[(lp, lq - np)] += v;
                    }
                }
                if qpos >= end {
                    // A[q, p]: row q's coefficient at offset p − q.
                    let back = 8 - s; // the opposite offset
                    let w = a.coef[q as usize][back];
                    if w != 0.0 {
                        let lq =
                            front_index(&self.pos, node, q).expect("neighbour is in the front");
                        l21[(lq - np, lp)] += w;
                    }
                }
            }
        }
        // Extend-add the children's Schur complements, a run of consecutive front indices at a
        // time (no run straddles the end of the pivot block).
        for (child, upd) in updates {
            let runs = &self.nodes[*child].parent_runs;
            let columns = runs.iter().flat_map(|&(cs, ps, len)| {
                (0..len as usize).map(move |k| (cs as usize + k, ps as usize + k))
            });
            for (cj, fj) in columns {
                let col = upd
                    .col(cj)
                    .try_as_col_major()
                    .expect("contiguous")
                    .as_slice();
                // (pivot-row destination, boundary-row destination) of this column.
                let (top, bottom) = if fj < np {
                    (
                        lu.as_mut().col_mut(fj).try_as_col_major_mut(),
                        l21.as_mut().col_mut(fj).try_as_col_major_mut(),
                    )
                } else {
                    (
                        u12.as_mut().col_mut(fj - np).try_as_col_major_mut(),
                        update.col_mut(fj - np).try_as_col_major_mut(),
                    )
                };
                let top = top.expect("contiguous").as_slice_mut();
                let bottom = bottom.expect("contiguous").as_slice_mut();
                for &(cs, ps, len) in runs {
                    let (cs, ps, len) = (cs as usize, ps as usize, len as usize);
                    let dst = if ps < np {
                        &mut top[ps..ps + len]
                    } else {
                        &mut bottom[ps - np..ps - np + len]
                    };
                    for (d, &v) in dst.iter_mut().zip(&col[cs..cs + len]) {
                        *d += v;
                    }
                }
            }
        }
        let work = np * np * np / 3 + 2 * np * np * nb + np * nb * nb;
        let par = if work >= PARALLEL_WORK {
            Par::rayon(0)
        } else {
            Par::Seq
        };
        let mut perm = vec![0usize; np];
        let mut perm_inv = vec![0usize; np];
        {
            use faer::dyn_stack::{MemBuffer, MemStack};
            use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
            let mut mem = MemBuffer::new(lu_in_place_scratch::<usize, f64>(
                np,
                np,
                par,
                Default::default(),
            ));
            lu_in_place(
                lu.as_mut(),
                &mut perm,
                &mut perm_inv,
                par,
                MemStack::new(&mut mem),
                Default::default(),
            );
        }
        for r in 0..np {
            if lu[(r, r)] == 0.0 || !lu[(r, r)].is_finite() {
                return Err(SingularMatrix { front: id });
            }
        }
        // U12 = L⁻¹ P F12: permute the rows of F12 in place, then solve.
        let mut tmp = vec![0.0; np];
        for c in 0..nb {
            let col = u12_s[c * np..(c + 1) * np].as_mut();
            for (t, &pr) in tmp.iter_mut().zip(&perm) {
                *t = col[pr];
            }
            col.copy_from_slice(&tmp);
        }
        let mut u12 = MatMut::from_column_major_slice_mut(u12_s, np, nb);
        solve_unit_lower_triangular_in_place(lu.as_ref(), u12.as_mut(), par);
        // L21 = F21 U⁻¹  ⇔  Uᵀ L21ᵀ = F21ᵀ.
        solve_lower_triangular_in_place(lu.as_ref().transpose(), l21.as_mut().transpose_mut(), par);
        // Schur complement F22 − L21 U12.
        matmul(
            update.as_mut(),
            Accum::Add,
            l21.as_ref(),
            u12.as_ref(),
            -1.0,
            par,
        );
        factor.perm = perm;
        factor.blocks = blocks;
        Ok(update)
    }
}

/// Runs of consecutive values of the monotone `map` (child start, parent start, length), split
/// at `split` (a run never straddles it).
fn runs_of(map: &[u32], split: u32) -> Vec<(u32, u32, u32)> {
    let mut runs: Vec<(u32, u32, u32)> = Vec::new();
    for (c, &f) in map.iter().enumerate() {
        match runs.last_mut() {
            Some((_, ps, len)) if *ps + *len == f && f != split => *len += 1,
            _ => runs.push((c as u32, f, 1)),
        }
    }
    runs
}

/// Local front index of a cell, given the node's pivots and boundary (sorted by position).
fn front_index(pos: &[u32], node: &Node, cell: u32) -> Option<usize> {
    let p = pos[cell as usize] as usize;
    let np = node.pivots.len();
    if p >= node.start && p < node.start + np {
        return Some(p - node.start);
    }
    node.boundary
        .binary_search_by_key(&(p as u32), |&c| pos[c as usize])
        .ok()
        .map(|b| np + b)
}

/// Recursive bisection; pushes nodes in postorder and returns the id of the subtree root.
fn build(
    nodes: &mut Vec<Node>,
    ny: usize,
    (i0, i1): (usize, usize),
    (j0, j1): (usize, usize),
) -> Option<usize> {
    let (w, h) = (i1.saturating_sub(i0), j1.saturating_sub(j0));
    if w == 0 || h == 0 {
        return None;
    }
    if w * h <= LEAF_CELLS || (w <= 2 && h <= 2) {
        let mut pivots = Vec::with_capacity(w * h);
        for i in i0..i1 {
            for j in j0..j1 {
                pivots.push((i * ny + j) as u32);
            }
        }
        nodes.push(Node {
            pivots,
            boundary: Vec::new(),
            children: Vec::new(),
            start: 0,
            first: 0,
            parent_runs: Vec::new(),
        });
        return Some(nodes.len() - 1);
    }
    let mut children = Vec::with_capacity(2);
    let pivots: Vec<u32> = if w >= h {
        let m = i0 + w / 2;
        children.extend(build(nodes, ny, (i0, m), (j0, j1)));
        children.extend(build(nodes, ny, (m + 1, i1), (j0, j1)));
        (j0..j1).map(|j| (m * ny + j) as u32).collect()
    } else {
        let m = j0 + h / 2;
        children.extend(build(nodes, ny, (i0, i1), (j0, m)));
        children.extend(build(nodes, ny, (i0, i1), (m + 1, j1)));
        (i0..i1).map(|i| (i * ny + m) as u32).collect()
    };
    nodes.push(Node {
        pivots,
        boundary: Vec::new(),
        children,
        start: 0,
        first: 0,
        parent_runs: Vec::new(),
    });
    Some(nodes.len() - 1)
}

/// The box of cells [i0, i1) × [j0, j1) covered by each node's subtree.
fn boxes_of(nodes: &[Node], _nx: usize, ny: usize) -> Vec<((usize, usize), (usize, usize))> {
    let mut boxes = vec![((0, 0), (0, 0)); nodes.len()];
    for (id, node) in nodes.iter().enumerate() {
        let mut i0 = usize::MAX;
        let mut i1 = 0;
        let mut j0 = usize::MAX;
        let mut j1 = 0;
        let mut grow = |c: u32| {
            let (i, j) = (c as usize / ny, c as usize % ny);
            i0 = i0.min(i);
            i1 = i1.max(i + 1);
            j0 = j0.min(j);
            j1 = j1.max(j + 1);
        };
        node.pivots.iter().for_each(|&c| grow(c));
        for &ch in &node.children {
            let ((a0, a1), (b0, b1)) = boxes[ch];
            i0 = i0.min(a0);
            i1 = i1.max(a1);
            j0 = j0.min(b0);
            j1 = j1.max(b1);
        }
        boxes[id] = ((i0, i1), (j0, j1));
    }
    boxes
}

/// The solution vector shared by the tree-parallel solves: every node reads and writes only
/// its own pivot cells (and, backward, reads its ancestors' cells, final before it starts).
#[derive(Clone, Copy)]
struct Shared(*mut f64);
// SAFETY: the solves below write each cell from exactly one node, and rayon::join orders a
// node's writes before its ancestors' (forward) or descendants' (backward) reads.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// SAFETY: `k` is in bounds and no other thread accesses cell `k` concurrently.
    #[inline]
    unsafe fn get(self, k: usize) -> f64 {
        unsafe { *self.0.add(k) }
    }
    /// SAFETY: as for `get`.
    #[inline]
    unsafe fn set(self, k: usize, v: f64) {
        unsafe { *self.0.add(k) = v }
    }
}

/// Subtrees with fewer nodes than this are solved on one thread.
const SOLVE_GRAIN: usize = 64;

impl Factorization {
    /// Solve A x = b in place (b becomes x).
    pub fn solve_in_place(&self, b: &mut [f64]) {
        let sym = &self.symbolic;
        assert_eq!(b.len(), sym.nx * sym.ny);
        let root = sym.nodes.len() - 1;
        let x = Shared(b.as_mut_ptr());
        self.forward(root, x);
        self.backward(root, x);
    }

    /// The blocks (L\U, U12, L21) of node `id`.
    fn blocks(&self, id: usize) -> (&[f64], &[f64], &[f64]) {
        let node = &self.symbolic.nodes[id];
        let (np, nb) = (node.pivots.len(), node.boundary.len());
        let s = &self.factors[id].blocks;
        let (lu, rest) = s.split_at(np * np);
        let (u12, l21) = rest.split_at(np * nb);
        (lu, u12, l21)
    }

    /// The blocks (L\U, U12, L21) of node `id` as matrices.
    fn block_views(&self, id: usize) -> (MatRef<'_, f64>, MatRef<'_, f64>, MatRef<'_, f64>) {
        let node = &self.symbolic.nodes[id];
        let (np, nb) = (node.pivots.len(), node.boundary.len());
        let (lu, u12, l21) = self.blocks(id);
        (
            MatRef::from_column_major_slice(lu, np, np),
            MatRef::from_column_major_slice(u12, np, nb),
            MatRef::from_column_major_slice(l21, nb, np),
        )
    }

    /// Forward substitution over the subtree of `id`: leaves L⁻¹-solved values in its pivot
    /// cells and returns what it adds to the right-hand side of its boundary cells.
    fn forward(&self, id: usize, x: Shared) -> Vec<f64> {
        let sym = &self.symbolic;
        let node = &sym.nodes[id];
        let (np, nb) = (node.pivots.len(), node.boundary.len());
        let mut front = vec![0.0; np + nb];
        // SAFETY: only this node touches its pivot cells.
        for (v, &c) in front.iter_mut().zip(&node.pivots) {
            *v = unsafe { x.get(c as usize) };
        }
        let mut add = |child: usize, upd: Vec<f64>| {
            for &(cs, ps, len) in &sym.nodes[child].parent_runs {
                let (cs, ps, len) = (cs as usize, ps as usize, len as usize);
                for (f, v) in front[ps..ps + len].iter_mut().zip(&upd[cs..cs + len]) {
                    *f += v;
                }
            }
        };
        match node.children.as_slice() {
            [] => {}
            [c] => add(*c, self.forward(*c, x)),
            [c1, c2] => {
                let (u1, u2) = if id - node.first >= SOLVE_GRAIN {
                    rayon::join(|| self.forward(*c1, x), || self.forward(*c2, x))
                } else {
                    (self.forward(*c1, x), self.forward(*c2, x))
                };
                add(*c1, u1);
                add(*c2, u2);
            }
            _ => unreachable!("nested dissection nodes have at most two children"),
        }
        let (lu, _, l21) = self.blocks(id);
        let (piv, bnd) = front.split_at_mut(np);
        with_scratch(np, |z| {
            for (zr, &r) in z.iter_mut().zip(&self.factors[id].perm) {
                *zr = piv[r];
            }
            super::front_solve::forward_node(lu, l21, z, bnd);
            for (&c, &zr) in node.pivots.iter().zip(z.iter()) {
                // SAFETY: only this node touches its pivot cells.
                unsafe { x.set(c as usize, zr) };
            }
        });
        front.drain(..np);
        front
    }

    /// Backward substitution over the subtree of `id` (its boundary cells are final).
    fn backward(&self, id: usize, x: Shared) {
        let sym = &self.symbolic;
        let node = &sym.nodes[id];
        let (lu, u12, _) = self.blocks(id);
        with_scratch(node.pivots.len() + node.boundary.len(), |buf| {
            let (z, xb) = buf.split_at_mut(node.pivots.len());
            // SAFETY: only this node writes its pivot cells; its boundary cells belong to
            // ancestors, finished before this node started.
            for (v, &c) in z.iter_mut().zip(&node.pivots) {
                *v = unsafe { x.get(c as usize) };
            }
            for (v, &c) in xb.iter_mut().zip(&node.boundary) {
                *v = unsafe { x.get(c as usize) };
            }
            super::front_solve::backward_node(lu, u12, xb, z);
            for (&c, &v) in node.pivots.iter().zip(z.iter()) {
                unsafe { x.set(c as usize, v) };
            }
        });
        match node.children.as_slice() {
            [] => {}
            [c] => self.backward(*c, x),
            [c1, c2] => {
                if id - node.first >= SOLVE_GRAIN {
                    rayon::join(|| self.backward(*c1, x), || self.backward(*c2, x));
                } else {
                    self.backward(*c1, x);
                    self.backward(*c2, x);
                }
            }
            _ => unreachable!("nested dissection nodes have at most two children"),
        }
    }

    /// The grid cell eliminated last.
    pub fn last_cell(&self) -> usize {
        self.symbolic.last
    }
}

impl Factorization {
    /// Solve A X = B in place for the `b.len() / n` right-hand sides stored column-major in `b`
    /// (each column becomes its solution). One pass over the factors serves every column, so
    /// r columns cost far less than r calls of [`Factorization::solve_in_place`] (the solve is
    /// memory-bound: the factor entries are read once instead of r times).
    pub fn solve_many_in_place(&self, b: &mut [f64]) {
        let sym = &self.symbolic;
        let n = sym.nx * sym.ny;
        assert!(
            n > 0 && b.len().is_multiple_of(n),
            "right-hand sides are n-vectors"
        );
        let r = b.len() / n;
        if r == 0 {
            return;
        }
        // Forward: bottom-up.
        for (id, (node, f)) in sym.nodes.iter().zip(&self.factors).enumerate() {
            let (lu, _, l21) = self.block_views(id);
            let np = node.pivots.len();
            let mut z = Mat::<f64>::from_fn(np, r, |row, col| {
                b[col * n + node.pivots[f.perm[row]] as usize]
            });
            solve_unit_lower_triangular_in_place(lu, z.as_mut(), Par::Seq);
            for col in 0..r {
                for (row, &c) in node.pivots.iter().enumerate() {
                    b[col * n + c as usize] = z[(row, col)];
                }
            }
            if !node.boundary.is_empty() {
                let mut bb = Mat::<f64>::from_fn(node.boundary.len(), r, |row, col| {
                    b[col * n + node.boundary[row] as usize]
                });
                matmul(bb.as_mut(), Accum::Add, l21, z.as_ref(), -1.0, Par::Seq);
                for col in 0..r {
                    for (row, &c) in node.boundary.iter().enumerate() {
                        b[col * n + c as usize] = bb[(row, col)];
                    }
                }
            }
        }
        // Backward: top-down.
        for (id, node) in sym.nodes.iter().enumerate().rev() {
            let (lu, u12, _) = self.block_views(id);
            let np = node.pivots.len();
            let mut z =
                Mat::<f64>::from_fn(np, r, |row, col| b[col * n + node.pivots[row] as usize]);
            if !node.boundary.is_empty() {
                let xb = Mat::<f64>::from_fn(node.boundary.len(), r, |row, col| {
                    b[col * n + node.boundary[row] as usize]
                });
                matmul(z.as_mut(), Accum::Add, u12, xb.as_ref(), -1.0, Par::Seq);
            }
            faer::linalg::triangular_solve::solve_upper_triangular_in_place(
                lu,
                z.as_mut(),
                Par::Seq,
            );
            for col in 0..r {
                for (row, &c) in node.pivots.iter().enumerate() {
                    b[col * n + c as usize] = z[(row, col)];
                }
            }
        }
    }
}

thread_local! {
    /// Per-thread work space of the triangular solves: no allocation per front once warm.
    static SOLVE_SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch slice of length `n` (contents unspecified). `f` must not
/// reach another solve on this thread (the front kernels do not).
fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    SOLVE_SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < n {
            s.resize(n, 0.0);
        }
        f(&mut s[..n])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AxisConfig;
    use crate::fp::grid::Grid;

    fn random_stencil(nx: usize, ny: usize, seed: u64) -> Stencil9 {
        let grid = Grid::new(
            &AxisConfig {
                min: 0.0,
                max: 1.0,
                cells: nx,
            },
            &AxisConfig {
                min: 0.0,
                max: 1.0,
                cells: ny,
            },
        );
        let mut a = Stencil9::zeros(grid);
        let mut s = seed;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        for row in a.coef.iter_mut() {
            for v in row.iter_mut() {
                *v = rnd();
            }
            row[4] = 6.0 + rnd();
        }
        a
    }

    #[test]
    fn solves_random_nine_point_systems() {
        for &(nx, ny) in &[(3, 3), (7, 5), (40, 33), (17, 90)] {
            let a = random_stencil(nx, ny, (nx * 1000 + ny) as u64);
            let nd = NestedDissection::new(nx, ny, None);
            let f = nd.factorize(&a).unwrap();
            let x_true: Vec<f64> = (0..nx * ny).map(|k| (k as f64 * 0.37).sin()).collect();
            let mut b = vec![0.0; nx * ny];
            a.apply(&x_true, &mut b);
            f.solve_in_place(&mut b);
            let err = b
                .iter()
                .zip(&x_true)
                .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
            assert!(err < 1e-11, "{nx}x{ny}: error {err}");
        }
    }

    #[test]
    fn every_cell_is_eliminated_once() {
        let nd = NestedDissection::new(33, 20, Some((16, 10)));
        let mut seen = vec![false; 33 * 20];
        for n in &nd.nodes {
            for &c in &n.pivots {
                assert!(!seen[c as usize]);
                seen[c as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(nd.last_cell(), 16 * 20 + 10);
    }
}
