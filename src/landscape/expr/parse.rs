//! Recursive-descent parser of loss expressions into an [`Ast`] (docs/reference.md §1.1).
//!
//! Grammar (`^` and `**` bind tightest and associate to the right; unary minus binds looser
//! than `^`, so `-x^2 = -(x^2)`):
//! ```text
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := atom (('^' | '**') unary)?
//! atom    := number | name | function '(' sum ')' | '(' sum ')'
//! ```

use std::collections::BTreeMap;

/// The functions a loss may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// eᵘ.
    Exp,
    /// ln u.
    Ln,
    /// √u.
    Sqrt,
    /// sin u.
    Sin,
    /// cos u.
    Cos,
    /// tanh u.
    Tanh,
    /// |u|.
    Abs,
}

/// Function names, in the order they are listed in messages.
pub const FUNCTIONS: [(&str, Func); 7] = [
    ("exp", Func::Exp),
    ("ln", Func::Ln),
    ("sqrt", Func::Sqrt),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("tanh", Func::Tanh),
    ("abs", Func::Abs),
];

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// a + b.
    Add,
    /// a − b.
    Sub,
    /// a · b.
    Mul,
    /// a / b.
    Div,
    /// a ^ b.
    Pow,
}

/// A parsed expression with named parameters already replaced by their values.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    /// A number (or a parameter's value, or π).
    Num(f64),
    /// The coordinate x.
    X,
    /// The coordinate y.
    Y,
    /// −a.
    Neg(Box<Ast>),
    /// a op b.
    Bin(BinOp, Box<Ast>, Box<Ast>),
    /// f(a).
    Call(Func, Box<Ast>),
}

/// A parse failure: the 1-based column inside the expression string (when known) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based character column inside the expression.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
    Pow,
    LParen,
    RParen,
    End,
}

struct Lexer {
    toks: Vec<(Tok, usize)>,
}

fn lex(src: &str) -> Result<Lexer, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // Exponent: e or E, optional sign, digits.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut k = i + 1;
                if k < chars.len() && (chars[k] == '+' || chars[k] == '-') {
                    k += 1;
                }
                if k < chars.len() && chars[k].is_ascii_digit() {
                    i = k;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v: f64 = text.parse().map_err(|_| ParseError {
                column: Some(col),
                message: format!("`{text}` is not a number"),
            })?;
            toks.push((Tok::Num(v), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else if c == '*' && chars.get(i + 1) == Some(&'*') {
            toks.push((Tok::Pow, col));
            i += 2;
        } else if c == '^' {
            toks.push((Tok::Pow, col));
            i += 1;
        } else if "+-*/".contains(c) {
            toks.push((Tok::Op(c), col));
            i += 1;
        } else if c == '(' {
            toks.push((Tok::LParen, col));
            i += 1;
        } else if c == ')' {
            toks.push((Tok::RParen, col));
            i += 1;
        } else {
            return Err(ParseError {
                column: Some(col),
                message: format!("unexpected character `{c}`"),
            });
        }
    }
    toks.push((Tok::End, chars.len() + 1));
    Ok(Lexer { toks })
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    params: &'a BTreeMap<String, f64>,
    unknown: Vec<(String, usize)>,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("number {v}"),
        Tok::Name(n) => format!("`{n}`"),
        Tok::Op(c) => format!("`{c}`"),
        Tok::Pow => "`^`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::End => "the end of the expression".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn err<T>(&self, what: &str) -> Result<T, ParseError> {
        Err(ParseError {
            column: Some(self.col()),
            message: format!("expected {what}, found {}", describe(self.peek())),
        })
    }

    fn sum(&mut self) -> Result<Ast, ParseError> {
        let mut a = self.product()?;
        while let Tok::Op(c @ ('+' | '-')) = *self.peek() {
            self.next();
            let b = self.product()?;
            let op = if c == '+' { BinOp::Add } else { BinOp::Sub };
            a = Ast::Bin(op, Box::new(a), Box::new(b));
        }
        Ok(a)
    }

    fn product(&mut self) -> Result<Ast, ParseError> {
        let mut a = self.unary()?;
        while let Tok::Op(c @ ('*' | '/')) = *self.peek() {
            self.next();
            let b = self.unary()?;
            let op = if c == '*' { BinOp::Mul } else { BinOp::Div };
            a = Ast::Bin(op, Box::new(a), Box::new(b));
        }
        Ok(a)
    }

    fn unary(&mut self) -> Result<Ast, ParseError> {
        match *self.peek() {
            Tok::Op('-') => {
                self.next();
                Ok(Ast::Neg(Box::new(self.unary()?)))
            }
            Tok::Op('+') => {
                self.next();
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Ast, ParseError> {
        let base = self.atom()?;
        if *self.peek() == Tok::Pow {
            self.next();
            let exp = self.unary()?;
            return Ok(Ast::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Ast, ParseError> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.next();
                Ok(Ast::Num(v))
            }
            Tok::LParen => {
                self.next();
                let a = self.sum()?;
                if *self.peek() != Tok::RParen {
                    return self.err(&format!("`)` to close the `(` at column {col}"));
                }
                self.next();
                Ok(a)
            }
            Tok::Name(name) => {
                self.next();
                if let Some(&(_, f)) = FUNCTIONS.iter().find(|(n, _)| *n == name) {
                    if *self.peek() != Tok::LParen {
                        return self.err(&format!("`(` after the function `{name}`"));
                    }
                    let open = self.col();
                    self.next();
                    let a = self.sum()?;
                    if *self.peek() != Tok::RParen {
                        return self.err(&format!("`)` to close the `(` at column {open}"));
                    }
                    self.next();
                    return Ok(Ast::Call(f, Box::new(a)));
                }
                if *self.peek() == Tok::LParen {
                    return Err(ParseError {
                        column: Some(col),
                        message: format!(
                            "unknown function `{name}` (known: {})",
                            FUNCTIONS.map(|f| f.0).join(", ")
                        ),
                    });
                }
                Ok(match name.as_str() {
                    "x" => Ast::X,
                    "y" => Ast::Y,
                    _ => match self.params.get(&name) {
                        Some(&v) => Ast::Num(v),
                        None if name == "pi" => Ast::Num(std::f64::consts::PI),
                        None => {
                            self.unknown.push((name, col));
                            Ast::Num(f64::NAN)
                        }
                    },
                })
            }
            _ => self.err("a number, a name, a function call or `(`"),
        }
    }
}

/// Names a parameter may not take: the coordinates, π and the functions.
pub fn reserved(name: &str) -> bool {
    name == "x" || name == "y" || name == "pi" || FUNCTIONS.iter().any(|f| f.0 == name)
}

/// Parse `src` with parameter values `params`; every unknown name is listed in one error.
pub fn parse(src: &str, params: &BTreeMap<String, f64>) -> Result<Ast, ParseError> {
    if src.trim().is_empty() {
        return Err(ParseError {
            column: None,
            message: "is empty: write the loss in x and y, e.g. \"0.5*(x*y - 1)^2\"".into(),
        });
    }
    let lexer = lex(src)?;
    let mut p = Parser {
        toks: lexer.toks,
        pos: 0,
        params,
        unknown: Vec::new(),
    };
    let ast = p.sum()?;
    if *p.peek() != Tok::End {
        return p.err("an operator or the end of the expression");
    }
    if let Some(&(_, first)) = p.unknown.first() {
        let list: Vec<String> = p
            .unknown
            .iter()
            .map(|(n, c)| format!("`{n}` (column {c})"))
            .collect();
        let known: Vec<&str> = params.keys().map(String::as_str).collect();
        return Err(ParseError {
            column: Some(first),
            message: format!(
                "unknown name{} {}; known names: x, y, pi{}{} (define others in landscape.params)",
                if list.len() > 1 { "s" } else { "" },
                list.join(", "),
                if known.is_empty() { "" } else { ", " },
                known.join(", ")
            ),
        });
    }
    Ok(ast)
}
