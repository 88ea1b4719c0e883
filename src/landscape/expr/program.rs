//! A loss expression compiled to flat register code and evaluated in forward mode on second-order
//! jets (value, gradient, Hessian) over `W` points at once.
//!
//! Layout: register r of a program holds, for each jet component c, one `[f64; W]` (W points,
//! fastest index) at `regs[r·C + c]`; components are ordered (v, ∂x, ∂y, ∂xx, ∂xy, ∂yy) and C is
//! 1 (value), 3 (+ gradient) or 6 (+ Hessian). Every instruction loops over the W points, so the
//! dispatch cost is paid once per W points and the inner loops vectorise. Registers are in SSA
//! order (instruction i writes register i), constants are folded and repeated sub-expressions are
//! computed once. Derivatives are exact up to rounding (the chain rule on each instruction).

use std::collections::HashMap;

use super::parse::{Ast, BinOp, Func};

/// A unary operation u ↦ f(u), differentiated by f′ and f″.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// A function of the expression language.
    F(Func),
    /// uⁿ with integer n.
    Powi(i32),
    /// uᵖ with real p.
    Powf(f64),
    /// 1/u.
    Recip,
    /// u².
    Sq,
}

/// One instruction; operands are earlier registers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// The point's x.
    X,
    /// The point's y.
    Y,
    /// A constant.
    Const(f64),
    /// a + b.
    Add(u32, u32),
    /// a − b.
    Sub(u32, u32),
    /// a · b.
    Mul(u32, u32),
    /// a + c.
    AddC(u32, f64),
    /// c · a.
    MulC(u32, f64),
    /// −a.
    Neg(u32),
    /// f(a).
    Un(Unary, u32),
}

/// Hashable identity of an instruction (floats by their bits), for common sub-expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    X,
    Y,
    Const(u64),
    Add(u32, u32),
    Sub(u32, u32),
    Mul(u32, u32),
    AddC(u32, u64),
    MulC(u32, u64),
    Neg(u32),
    Un(u8, u64, u32),
}

fn key(op: &Op) -> Key {
    let un = |u: &Unary| -> (u8, u64) {
        match *u {
            Unary::F(f) => (f as u8, 0),
            Unary::Powi(n) => (20, n as i64 as u64),
            Unary::Powf(p) => (21, p.to_bits()),
            Unary::Recip => (22, 0),
            Unary::Sq => (23, 0),
        }
    };
    match *op {
        Op::X => Key::X,
        Op::Y => Key::Y,
        Op::Const(c) => Key::Const(c.to_bits()),
        // a + b and a · b commute: one key for both orders.
        Op::Add(a, b) => Key::Add(a.min(b), a.max(b)),
        Op::Sub(a, b) => Key::Sub(a, b),
        Op::Mul(a, b) => Key::Mul(a.min(b), a.max(b)),
        Op::AddC(a, c) => Key::AddC(a, c.to_bits()),
        Op::MulC(a, c) => Key::MulC(a, c.to_bits()),
        Op::Neg(a) => Key::Neg(a),
        Op::Un(u, a) => {
            let (t, p) = un(&u);
            Key::Un(t, p, a)
        }
    }
}

/// The scalar value of f(u) (constant folding and the value component).
pub fn apply_func(f: Func, u: f64) -> f64 {
    match f {
        Func::Exp => u.exp(),
        Func::Ln => u.ln(),
        Func::Sqrt => u.sqrt(),
        Func::Sin => u.sin(),
        Func::Cos => u.cos(),
        Func::Tanh => u.tanh(),
        Func::Abs => u.abs(),
    }
}

/// (f(u), f′(u), f″(u)).
#[inline(always)]
fn derivs(un: Unary, u: f64) -> (f64, f64, f64) {
    match un {
        Unary::F(Func::Exp) => {
            let e = u.exp();
            (e, e, e)
        }
        Unary::F(Func::Ln) => {
            let r = 1.0 / u;
            (u.ln(), r, -r * r)
        }
        Unary::F(Func::Sqrt) => {
            let s = u.sqrt();
            let d = 0.5 / s;
            (s, d, -0.5 * d / u)
        }
        Unary::F(Func::Sin) => {
            let (s, c) = u.sin_cos();
            (s, c, -s)
        }
        Unary::F(Func::Cos) => {
            let (s, c) = u.sin_cos();
            (c, -s, -c)
        }
        Unary::F(Func::Tanh) => {
            let t = u.tanh();
            let d = 1.0 - t * t;
            (t, d, -2.0 * t * d)
        }
        Unary::F(Func::Abs) => {
            let s = if u > 0.0 {
                1.0
            } else if u < 0.0 {
                -1.0
            } else {
                0.0
            };
            (u.abs(), s, 0.0)
        }
        Unary::Powi(n) => {
            let nf = n as f64;
            let p2 = u.powi(n - 2);
            (p2 * u * u, nf * p2 * u, nf * (nf - 1.0) * p2)
        }
        Unary::Powf(p) => (
            u.powf(p),
            p * u.powf(p - 1.0),
            p * (p - 1.0) * u.powf(p - 2.0),
        ),
        Unary::Recip => {
            let r = 1.0 / u;
            (r, -r * r, 2.0 * r * r * r)
        }
        Unary::Sq => (u * u, 2.0 * u, 2.0),
    }
}

/// f, f′, f″ of `un` at W points: the operation is matched once, outside the point loop.
#[inline(always)]
fn unary_lanes<const W: usize>(
    un: Unary,
    u: &[f64; W],
    v: &mut [f64; W],
    f1: &mut [f64; W],
    f2: &mut [f64; W],
) {
    #[inline(always)]
    fn fill<const W: usize>(
        u: &[f64; W],
        v: &mut [f64; W],
        f1: &mut [f64; W],
        f2: &mut [f64; W],
        f: impl Fn(f64) -> (f64, f64, f64),
    ) {
        for l in 0..W {
            (v[l], f1[l], f2[l]) = f(u[l]);
        }
    }
    match un {
        Unary::Sq => fill(u, v, f1, f2, |t| derivs(Unary::Sq, t)),
        Unary::Recip => fill(u, v, f1, f2, |t| derivs(Unary::Recip, t)),
        Unary::Powi(n) => fill(u, v, f1, f2, |t| derivs(Unary::Powi(n), t)),
        Unary::Powf(p) => fill(u, v, f1, f2, |t| derivs(Unary::Powf(p), t)),
        Unary::F(Func::Exp) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Exp), t)),
        Unary::F(Func::Ln) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Ln), t)),
        Unary::F(Func::Sqrt) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Sqrt), t)),
        Unary::F(Func::Sin) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Sin), t)),
        Unary::F(Func::Cos) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Cos), t)),
        Unary::F(Func::Tanh) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Tanh), t)),
        Unary::F(Func::Abs) => fill(u, v, f1, f2, |t| derivs(Unary::F(Func::Abs), t)),
    }
}

/// A compiled loss: instructions in SSA order, the result in register `out`.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Instructions; instruction i writes register i.
    pub ops: Vec<Op>,
    /// The register holding L.
    pub out: u32,
}

struct Builder {
    ops: Vec<Op>,
    seen: HashMap<Key, u32>,
}

/// A compiled value: a folded constant or a register.
#[derive(Clone, Copy)]
enum Val {
    C(f64),
    R(u32),
}

impl Builder {
    fn emit(&mut self, op: Op) -> Val {
        let k = key(&op);
        if let Some(&r) = self.seen.get(&k) {
            return Val::R(r);
        }
        let r = self.ops.len() as u32;
        self.ops.push(op);
        self.seen.insert(k, r);
        Val::R(r)
    }

    fn un(&mut self, u: Unary, a: Val) -> Val {
        match a {
            Val::C(c) => Val::C(derivs(u, c).0),
            Val::R(r) => self.emit(Op::Un(u, r)),
        }
    }

    fn add(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::C(p), Val::C(q)) => Val::C(p + q),
            (Val::R(r), Val::C(c)) | (Val::C(c), Val::R(r)) if c == 0.0 => Val::R(r),
            (Val::R(r), Val::C(c)) | (Val::C(c), Val::R(r)) => self.emit(Op::AddC(r, c)),
            (Val::R(p), Val::R(q)) => self.emit(Op::Add(p, q)),
        }
    }

    fn neg(&mut self, a: Val) -> Val {
        match a {
            Val::C(c) => Val::C(-c),
            Val::R(r) => self.emit(Op::Neg(r)),
        }
    }

    fn sub(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::C(p), Val::C(q)) => Val::C(p - q),
            (Val::R(r), Val::C(c)) => self.add(Val::R(r), Val::C(-c)),
            (Val::C(c), Val::R(r)) => {
                let n = self.neg(Val::R(r));
                self.add(n, Val::C(c))
            }
            (Val::R(p), Val::R(q)) => self.emit(Op::Sub(p, q)),
        }
    }

    fn mul(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::C(p), Val::C(q)) => Val::C(p * q),
            (Val::R(r), Val::C(c)) | (Val::C(c), Val::R(r)) if c == 1.0 => Val::R(r),
            (Val::R(r), Val::C(c)) | (Val::C(c), Val::R(r)) if c == -1.0 => self.neg(Val::R(r)),
            (Val::R(r), Val::C(c)) | (Val::C(c), Val::R(r)) => self.emit(Op::MulC(r, c)),
            (Val::R(p), Val::R(q)) if p == q => self.emit(Op::Un(Unary::Sq, p)),
            (Val::R(p), Val::R(q)) => self.emit(Op::Mul(p, q)),
        }
    }

    fn div(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::C(p), Val::C(q)) => Val::C(p / q),
            (a, Val::C(c)) => self.mul(a, Val::C(1.0 / c)),
            (a, b) => {
                let r = self.un(Unary::Recip, b);
                self.mul(a, r)
            }
        }
    }

    fn pow(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::C(p), Val::C(q)) => Val::C(p.powf(q)),
            (a, Val::C(p)) => {
                if p == 0.0 {
                    Val::C(1.0)
                } else if p == 1.0 {
                    a
                } else if p == 2.0 {
                    self.un(Unary::Sq, a)
                } else if p == 0.5 {
                    self.un(Unary::F(Func::Sqrt), a)
                } else if p.fract() == 0.0 && p.abs() <= 64.0 {
                    self.un(Unary::Powi(p as i32), a)
                } else {
                    self.un(Unary::Powf(p), a)
                }
            }
            // c^b = exp(b ln c); a^b = exp(b ln a).
            (Val::C(c), b) => {
                let e = self.mul(b, Val::C(c.ln()));
                self.un(Unary::F(Func::Exp), e)
            }
            (a, b) => {
                let l = self.un(Unary::F(Func::Ln), a);
                let e = self.mul(b, l);
                self.un(Unary::F(Func::Exp), e)
            }
        }
    }

    fn build(&mut self, ast: &Ast) -> Val {
        match ast {
            Ast::Num(v) => Val::C(*v),
            Ast::X => self.emit(Op::X),
            Ast::Y => self.emit(Op::Y),
            Ast::Neg(a) => {
                let a = self.build(a);
                self.neg(a)
            }
            Ast::Call(f, a) => {
                let a = self.build(a);
                match a {
                    Val::C(c) => Val::C(apply_func(*f, c)),
                    a => self.un(Unary::F(*f), a),
                }
            }
            Ast::Bin(op, a, b) => {
                let (a, b) = (self.build(a), self.build(b));
                match op {
                    BinOp::Add => self.add(a, b),
                    BinOp::Sub => self.sub(a, b),
                    BinOp::Mul => self.mul(a, b),
                    BinOp::Div => self.div(a, b),
                    BinOp::Pow => self.pow(a, b),
                }
            }
        }
    }
}

impl Program {
    /// Compile an expression tree (constants folded, common sub-expressions shared).
    pub fn compile(ast: &Ast) -> Self {
        let mut b = Builder {
            ops: Vec::new(),
            seen: HashMap::new(),
        };
        let out = match b.build(ast) {
            Val::R(r) => r,
            Val::C(c) => match b.emit(Op::Const(c)) {
                Val::R(r) => r,
                Val::C(_) => unreachable!("emit returns a register"),
            },
        };
        Program { ops: b.ops, out }
    }

    /// Number of registers (= instructions).
    pub fn registers(&self) -> usize {
        self.ops.len()
    }

    /// Evaluate the jets of C components (1, 3 or 6) at W points; `regs` is scratch space
    /// (resized as needed). Returns the C component arrays of L.
    #[inline]
    pub fn eval<'r, const W: usize, const C: usize>(
        &self,
        x: &[f64; W],
        y: &[f64; W],
        regs: &'r mut Vec<[f64; W]>,
    ) -> &'r [[f64; W]] {
        let n = self.ops.len() * C;
        if regs.len() < n {
            regs.resize(n, [0.0; W]);
        }
        for (i, op) in self.ops.iter().enumerate() {
            let (src, rest) = regs.split_at_mut(i * C);
            let dst: &mut [[f64; W]; C] = (&mut rest[..C]).try_into().expect("C registers");
            let r = |k: u32| -> &[[f64; W]; C] {
                src[k as usize * C..(k as usize + 1) * C]
                    .try_into()
                    .expect("C registers")
            };
            match *op {
                Op::X | Op::Y => {
                    dst[0] = if matches!(op, Op::X) { *x } else { *y };
                    if C >= 3 {
                        dst[1] = [if matches!(op, Op::X) { 1.0 } else { 0.0 }; W];
                        dst[2] = [if matches!(op, Op::X) { 0.0 } else { 1.0 }; W];
                    }
                    for d in dst.iter_mut().skip(3) {
                        *d = [0.0; W];
                    }
                }
                Op::Const(c) => {
                    dst[0] = [c; W];
                    for d in dst.iter_mut().skip(1) {
                        *d = [0.0; W];
                    }
                }
                Op::Add(a, b) => {
                    let (a, b) = (r(a), r(b));
                    for c in 0..C {
                        for l in 0..W {
                            dst[c][l] = a[c][l] + b[c][l];
                        }
                    }
                }
                Op::Sub(a, b) => {
                    let (a, b) = (r(a), r(b));
                    for c in 0..C {
                        for l in 0..W {
                            dst[c][l] = a[c][l] - b[c][l];
                        }
                    }
                }
                Op::AddC(a, k) => {
                    let a = r(a);
                    for l in 0..W {
                        dst[0][l] = a[0][l] + k;
                    }
                    dst[1..C].copy_from_slice(&a[1..C]);
                }
                Op::MulC(a, k) => {
                    let a = r(a);
                    for c in 0..C {
                        for l in 0..W {
                            dst[c][l] = k * a[c][l];
                        }
                    }
                }
                Op::Neg(a) => {
                    let a = r(a);
                    for c in 0..C {
                        for l in 0..W {
                            dst[c][l] = -a[c][l];
                        }
                    }
                }
                Op::Mul(a, b) => {
                    let (a, b) = (r(a), r(b));
                    for l in 0..W {
                        dst[0][l] = a[0][l] * b[0][l];
                    }
                    if C >= 3 {
                        for l in 0..W {
                            dst[1][l] = a[1][l] * b[0][l] + a[0][l] * b[1][l];
                            dst[2][l] = a[2][l] * b[0][l] + a[0][l] * b[2][l];
                        }
                    }
                    if C >= 6 {
                        for l in 0..W {
                            dst[3][l] =
                                a[3][l] * b[0][l] + 2.0 * a[1][l] * b[1][l] + a[0][l] * b[3][l];
                            dst[4][l] = a[4][l] * b[0][l]
                                + a[1][l] * b[2][l]
                                + a[2][l] * b[1][l]
                                + a[0][l] * b[4][l];
                            dst[5][l] =
                                a[5][l] * b[0][l] + 2.0 * a[2][l] * b[2][l] + a[0][l] * b[5][l];
                        }
                    }
                }
                Op::Un(un, a) => {
                    let a = r(a);
                    let mut f1 = [0.0; W];
                    let mut f2 = [0.0; W];
                    unary_lanes(un, &a[0], &mut dst[0], &mut f1, &mut f2);
                    if C >= 3 {
                        for l in 0..W {
                            dst[1][l] = f1[l] * a[1][l];
                            dst[2][l] = f1[l] * a[2][l];
                        }
                    }
                    if C >= 6 {
                        for l in 0..W {
                            let (ux, uy) = (a[1][l], a[2][l]);
                            dst[3][l] = f1[l] * a[3][l] + f2[l] * ux * ux;
                            dst[4][l] = f1[l] * a[4][l] + f2[l] * ux * uy;
                            dst[5][l] = f1[l] * a[5][l] + f2[l] * uy * uy;
                        }
                    }
                }
            }
        }
        let o = self.out as usize * C;
        &regs[o..o + C]
    }
}
