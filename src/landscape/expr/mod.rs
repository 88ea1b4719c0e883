//! Expression landscapes: any 2-D loss L(x, y) written as text, `[landscape] kind = "expression"`
//! (docs/reference.md §1.1).
//!
//! [`parse`] turns the text into a tree (parameters substituted), [`program`] compiles it to flat
//! register code evaluated on second-order jets, so the gradient and the Hessian are exact (forward
//! mode) and W points are evaluated per instruction dispatch (the sampler's lanes).

pub mod parse;
pub mod program;

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::config::Invalid;
use crate::landscape::Loss2d;

pub use parse::ParseError;
pub use program::Program;

/// A compiled loss expression with its parameters.
#[derive(Debug, Clone)]
pub struct ExprLoss {
    /// The text of the loss.
    pub source: String,
    /// Named parameters and their values.
    pub params: BTreeMap<String, f64>,
    program: Program,
}

impl PartialEq for ExprLoss {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.params == other.params
    }
}

impl ExprLoss {
    /// Parse and compile `source` with `params`; errors name `key` (`landscape`) and, for
    /// syntax, the column inside the string.
    pub fn new(key: &str, source: &str, params: &BTreeMap<String, f64>) -> Result<Self, Invalid> {
        for (name, &v) in params {
            let k = format!("{key}.params.{name}");
            if parse::reserved(name) {
                return Err(Invalid::new(
                    k,
                    "is a reserved name (x, y, pi and the functions); choose another parameter name",
                ));
            }
            crate::config::check_finite(&k, v)?;
        }
        let ast = parse::parse(source, params).map_err(|e| {
            let at = e
                .column
                .map_or_else(String::new, |c| format!("column {c} of the expression: "));
            Invalid::new(format!("{key}.loss"), format!("{at}{}", e.message))
        })?;
        Ok(Self {
            source: source.to_string(),
            params: params.clone(),
            program: Program::compile(&ast),
        })
    }

    /// The compiled program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Jets of C components (1: L; 3: L, ∇L; 6: L, ∇L, H as (xx, xy, yy)) at W points; `regs`
    /// is the caller's scratch space, reused across calls.
    #[inline]
    pub fn eval_lanes<'r, const W: usize, const C: usize>(
        &self,
        x: &[f64; W],
        y: &[f64; W],
        regs: &'r mut Vec<[f64; W]>,
    ) -> &'r [[f64; W]] {
        self.program.eval::<W, C>(x, y, regs)
    }

    fn scalar<const C: usize>(&self, x: f64, y: f64) -> [f64; C] {
        thread_local! {
            static SCRATCH: RefCell<Vec<[f64; 1]>> = const { RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|s| {
            let mut regs = s.borrow_mut();
            let out = self.program.eval::<1, C>(&[x], &[y], &mut regs);
            std::array::from_fn(|c| out[c][0])
        })
    }

    /// (L, ∂xL, ∂yL, ∂xxL, ∂xyL, ∂yyL) at one point.
    pub fn jet(&self, x: f64, y: f64) -> [f64; 6] {
        self.scalar::<6>(x, y)
    }
}

impl Loss2d for ExprLoss {
    #[inline]
    fn loss(&self, x: f64, y: f64) -> f64 {
        self.scalar::<1>(x, y)[0]
    }
    #[inline]
    fn gradient(&self, x: f64, y: f64) -> [f64; 2] {
        let j = self.scalar::<3>(x, y);
        [j[1], j[2]]
    }
    #[inline]
    fn hessian(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let j = self.scalar::<6>(x, y);
        [[j[3], j[4]], [j[4], j[5]]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(src: &str) -> ExprLoss {
        let mut p = BTreeMap::new();
        p.insert("eps".to_string(), 0.01);
        ExprLoss::new("landscape", src, &p).unwrap()
    }

    #[test]
    fn values_follow_precedence() {
        let e = loss("-x^2 + 2*3^2 - 8/4/2 + 2^3^2/256 + eps*100");
        assert!((e.loss(3.0, 0.0) - (-9.0 + 18.0 - 1.0 + 2.0 + 1.0)).abs() < 1e-12);
        let e = loss("0.5*(x*y - 1)**2");
        assert!((e.loss(2.0, 1.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn jets_match_closed_forms() {
        let e = loss("0.5*(x*y - 1)^2 + 0.5*eps*x^2");
        let (x, y) = (1.3, -0.7);
        let r = x * y - 1.0;
        let j = e.jet(x, y);
        assert!((j[1] - (r * y + 0.01 * x)).abs() < 1e-14);
        assert!((j[2] - r * x).abs() < 1e-14);
        assert!((j[3] - (y * y + 0.01)).abs() < 1e-14);
        assert!((j[4] - (2.0 * x * y - 1.0)).abs() < 1e-14);
        assert!((j[5] - x * x).abs() < 1e-14);
    }

    #[test]
    fn errors_name_the_column() {
        let p = BTreeMap::new();
        let e = ExprLoss::new("landscape", "x + * y", &p).unwrap_err();
        assert_eq!(e.key, "landscape.loss");
        assert!(e.message.contains("column 5"), "{}", e.message);
        let e = ExprLoss::new("landscape", "a*x + b", &p).unwrap_err();
        assert!(
            e.message.contains("`a` (column 1), `b` (column 7)"),
            "{}",
            e.message
        );
    }
}
