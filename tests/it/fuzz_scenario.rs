//! Fuzzing the scenario front door on stable Rust (issue 9, item 7): arbitrary text and
//! structurally valid but perturbed TOML go through parse + validate + plan, and must come back
//! as `Ok` or as an error with a message and a position inside the text — never as a panic.
//! A scenario that validates must survive `to_toml` → parse → validate with an equal spec, and
//! the cheap ones (FP grid ≤ 24 × 24, no sampler, network or sweep) must also run.
//!
//! Every property runs `PROPTEST_CASES` cases (default: the number in its `runner` call). A
//! long run, with per-property counts on stderr:
//! `PROPTEST_CASES=100000 cargo test --release --test it fuzz_scenario:: -- --nocapture`.
//! Failing inputs are kept in `proptest-regressions/fuzz_scenario.txt` and replayed first; every
//! crasher found also has a named test at the end of this file.

use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use flatscape::config::NoProgress;
use flatscape::scenario::{Scenario, ScenarioError};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use toml::{Table, Value};

const ORIGIN: &str = "f.toml";

// ---------------------------------------------------------------------------------------------
// The checks every input goes through
// ---------------------------------------------------------------------------------------------

/// What happened to one input.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    cases: u64,
    rejected: u64,
    validated: u64,
    ran: u64,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        self.cases += 1;
        match o {
            Outcome::Rejected => self.rejected += 1,
            Outcome::Validated => self.validated += 1,
            Outcome::Ran => {
                self.validated += 1;
                self.ran += 1;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Rejected,
    Validated,
    Ran,
}

/// A rejected input: a message, and a 1-based position inside the text when there is one.
fn check_error(text: &str, e: &ScenarioError) -> Result<(), TestCaseError> {
    prop_assert!(!e.message.trim().is_empty(), "empty error message: {e:?}");
    prop_assert_eq!(e.file.as_path(), Path::new(ORIGIN));
    if let Some(key) = &e.key {
        prop_assert!(!key.is_empty(), "empty key in {e:?}");
    }
    if let Some((line, col)) = e.position {
        let lines: Vec<&str> = text.split('\n').collect();
        prop_assert!(
            (1..=lines.len()).contains(&line),
            "error on line {line} of a text of {} lines: {e:?}",
            lines.len()
        );
        let len = lines[line - 1].len();
        prop_assert!(
            (1..=len + 1).contains(&col),
            "error at column {col} of line {line} ({len} bytes): {e:?}"
        );
    }
    let shown = e.to_string();
    prop_assert!(shown.starts_with(ORIGIN), "{shown}");
    Ok(())
}

/// A validated scenario: its TOML text and its table validate again, to the same spec.
fn check_round_trip(sc: &Scenario) -> Result<(), TestCaseError> {
    let text = sc.to_toml();
    let again = Scenario::from_toml_str(&text, Path::new(ORIGIN)).map_err(|e| {
        TestCaseError::fail(format!("to_toml() does not validate again: {e}\n{text}"))
    })?;
    prop_assert_eq!(
        sc.spec(),
        again.spec(),
        "to_toml() changed the spec:\n{}",
        text
    );
    let table = Scenario::from_table(sc.to_table(), Path::new(ORIGIN)).map_err(|e| {
        TestCaseError::fail(format!("to_table() does not validate again: {e}\n{text}"))
    })?;
    prop_assert_eq!(sc.spec(), table.spec());
    Ok(())
}

/// Cheap enough to run inside a fuzz case: no sampler, network or sweep, an FP grid of at most
/// 24 × 24 cells and 2000 time steps, a theory grid of at most 200 cells.
fn cheap(sc: &Scenario) -> bool {
    let fp_ok = sc.fokker_planck().is_none_or(|fp| {
        let c = fp.config();
        c.x.cells <= 24 && c.y.cells <= 24 && c.t_end / c.dt <= 2000.0
    });
    let theory_ok = sc
        .theory()
        .is_none_or(|t| t.config().x_cells.unwrap_or(801) <= 200);
    sc.sampler().is_none() && sc.network().is_none() && sc.sweep().is_none() && fp_ok && theory_ok
}

/// Fixed bugs (now rejected by `FokkerPlanckConfig`'s coefficient scan, naming `noise`,
/// `landscape` or `fokker_planck.dt`): a noise or valley whose operator coefficients D/h² or |∇L|/h overflow (e.g.
/// anisotropic Δ = 1e308, or λ0 = 1e308) validates and makes the FP matrix singular; and an FP
/// transient whose implicit step I − dt·L loses the identity to rounding, dt·max|D|/h² ≳ 1e16,
/// validates and then fails with "the matrix is singular" or "the density is not finite".
/// True when `sc` has either (thresholds: coefficients ≥ 1e150, far above any physical use;
/// stiffness ≥ 1e15, ten times below the smallest failure measured).
fn extreme_fp_coefficients(sc: &Scenario) -> bool {
    let (Some(fp), Some(valley)) = (sc.fokker_planck(), sc.valley2d()) else {
        return false;
    };
    let c = fp.config();
    let (mut d_max, mut g_max) = (0.0f64, 0.0f64);
    for &x in &c.x.centres() {
        for &y in &c.y.centres() {
            let d = sc.noise().diffusion(valley, x, y);
            let g = valley.grad(x, y);
            for v in [d[0][0], d[1][1], d[0][1], g[0], g[1]] {
                if !v.is_finite() {
                    return true;
                }
            }
            d_max = d_max
                .max(d[0][0].abs())
                .max(d[1][1].abs())
                .max(d[0][1].abs());
            g_max = g_max.max(g[0].abs()).max(g[1].abs());
        }
    }
    let h = c.x.width().min(c.y.width());
    let stiffness = c.dt * d_max / (h * h);
    let coefficients = (d_max / (h * h)).max(g_max / h);
    coefficients.is_nan()
        || coefficients >= 1e150
        || (c.t_end > 0.0 && (stiffness.is_nan() || stiffness >= 1e15))
}

/// Fixed bug (`NetworkConfig::validate` now counts the parameters with checked arithmetic and
/// rejects more than `MAX_PARAMS`): it counted them with unchecked `usize` arithmetic
/// (`Mlp::new`), which panicked with "attempt to multiply with overflow" when overflow checks
/// are on. True when `text` has a
/// `[network] hidden` width of 2^26 or more (two such layers overflow 64 bits).
fn huge_network(text: &str) -> bool {
    let Ok(t) = text.parse::<Table>() else {
        return false;
    };
    let widths = t
        .get("network")
        .and_then(|n| n.get("hidden"))
        .and_then(Value::as_array);
    widths.is_some_and(|w| {
        w.iter()
            .any(|v| v.as_integer().is_some_and(|v| v >= 1 << 26))
    })
}

/// Fixed bug (`TheoryConfig::validate` now bounds them by `theory::MAX_COEFFICIENT`): ε and
/// the λ_n were not bounded, and when ε λ0 or some λ_n is astronomically large (≥ 1e150; 1e308
/// measured) or λ(x_max) overflows, the theory's `mean_abs_x_reduced` is NaN although
/// `TheorySummary` promises finite plain numbers.
fn overflowing_valley(sc: &Scenario) -> bool {
    let (Some(v), Some(th)) = (sc.valley2d(), sc.theory()) else {
        return false;
    };
    let x = th.config().x_max();
    let huge = |c: f64| c.is_nan() || c.abs() >= 1e150;
    huge(v.epsilon * v.lambda0())
        || v.lambda.iter().any(|&c| huge(c))
        || !v.lambda_at(x).is_finite()
}

/// Fixed bug (the initial density is now the Gaussian's mass per cell): a Gaussian initial density was
/// sampled at cell centres; when it is narrow next to the cells, every sample underflows to 0, normalising gives NaN, and the transient fails with "the
/// density is not finite". True when `sc`'s initial density is zero at every centre.
fn vanishing_initial_density(sc: &Scenario) -> bool {
    use flatscape::fp::InitialConfig;
    let Some(fp) = sc.fokker_planck() else {
        return false;
    };
    let c = fp.config();
    let Some(InitialConfig::Gaussian { mean, std }) = &c.initial else {
        return false;
    };
    let ys = c.y.centres();
    let total: f64 =
        c.x.centres()
            .iter()
            .flat_map(|&x| ys.iter().map(move |&y| (x, y)))
            .map(|(x, y)| {
                let (zx, zy) = ((x - mean[0]) / std[0], (y - mean[1]) / std[1]);
                (-0.5 * (zx * zx + zy * zy)).exp()
            })
            .sum();
    c.t_end > 0.0 && (total.is_nan() || total <= 0.0)
}

/// Running a validated plan cannot fail on input; the theory's plain numbers are finite.
fn check_run(sc: &Scenario) -> Result<Outcome, TestCaseError> {
    let art = match flatscape::study::run(sc, &NoProgress) {
        Ok(art) => art,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "a validated scenario failed to run: {e}\n{}",
                sc.to_toml()
            )));
        }
    };
    if let Some(th) = &art.summary.theory {
        for (name, v) in [
            ("x_ss", th.x_ss),
            ("flatness_ss", th.flatness_ss),
            ("mean_abs_x_reduced", th.mean_abs_x_reduced),
            ("mode_abs_x_reduced", th.mode_abs_x_reduced),
            ("x_max", th.x_max),
        ] {
            prop_assert!(
                v.is_finite(),
                "theory.{name} = {v} is not finite\n{}",
                sc.to_toml()
            );
        }
    }
    Ok(Outcome::Ran)
}

/// Parse + validate `text`; check the error, or the round trip (and the run when cheap).
fn check_text(text: &str, run: bool) -> Result<Outcome, TestCaseError> {
    let parsed = std::panic::catch_unwind(|| Scenario::from_toml_str(text, Path::new(ORIGIN)));
    let parsed = match parsed {
        Ok(p) => p,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match parsed {
        Err(e) => check_error(text, &e).map(|()| Outcome::Rejected),
        Ok(sc) => {
            check_round_trip(&sc)?;
            if run && cheap(&sc) {
                check_run(&sc)
            } else {
                Ok(Outcome::Validated)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

/// `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Run `property` on `cases` inputs of `strategy`; print the tally and the slowest input.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    property: impl Fn(&S::Value) -> Result<Outcome, TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: cases(default_cases),
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz_scenario.txt",
        ))),
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let tally = std::cell::RefCell::new(Tally::default());
    let slowest = std::cell::RefCell::new((Duration::ZERO, String::new()));
    let clock = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |input| {
        let t0 = Instant::now();
        let out = property(&input)?;
        let dt = t0.elapsed();
        tally.borrow_mut().add(out);
        let mut s = slowest.borrow_mut();
        if dt > s.0 {
            *s = (dt, format!("{input:?}"));
        }
        Ok(())
    });
    let t = tally.into_inner();
    let (slow_t, slow_input) = slowest.into_inner();
    eprintln!(
        "fuzz {name}: {} executions in {:.1} s ({} rejected, {} validated, {} ran); slowest {:.3} s: {:.2000}",
        t.cases,
        clock.elapsed().as_secs_f64(),
        t.rejected,
        t.validated,
        t.ran,
        slow_t.as_secs_f64(),
        slow_input
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// (a) Arbitrary text
// ---------------------------------------------------------------------------------------------

/// Fragments of scenario files: keys, values, brackets, quotes, comments, odd whitespace.
const TOKENS: &[&str] = &[
    "name",
    "= ",
    "\"t\"",
    "\n",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "'",
    "\"",
    "\"\"\"",
    "'''",
    " ",
    "\t",
    "\r\n",
    "\\",
    "\\u00e9",
    "é",
    "≈",
    "\u{0}",
    "kind",
    "landscape",
    "noise",
    "fokker_planck",
    "theory",
    "sampler",
    "sweep",
    "network",
    "valley2d",
    "valley",
    "hessian",
    "isotropic",
    "anisotropic",
    "constant",
    "epsilon",
    "lambda",
    "eta",
    "sigma",
    "power",
    "temperature",
    "delta",
    "kappa",
    "d",
    "x",
    "y",
    "min",
    "max",
    "cells",
    "points",
    "log",
    "steady",
    "t_end",
    "dt",
    "initial",
    "gaussian",
    "uniform",
    "mean",
    "std",
    "walkers",
    "steps",
    "start",
    "sgd",
    "langevin",
    "gd",
    "hidden",
    "seeds",
    "0",
    "1",
    "-1",
    "3",
    "1.5",
    "0.001",
    "-0.6",
    "1e400",
    "-1e-400",
    "nan",
    "inf",
    "-inf",
    "+nan",
    "0x10",
    "0o7",
    "0b1",
    "1_000",
    "1979-05-27",
    "07:32:00",
    "1979-05-27T07:32:00Z",
    "true",
    "false",
    "[8.0, -2.0, 1.0]",
    "{ min = -1.0, max = 1.0, cells = 8 }",
    "x = 1\n",
    "name = \"t\"\n",
    "[theory]\n",
];

/// Concatenated fragments: text that is often nearly TOML.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|v| v.concat())
}

/// The shipped scenarios, the seeds of the mutation fuzzer.
fn shipped() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into();
            (
                name,
                std::fs::read_to_string(&p).expect("readable scenario"),
            )
        })
        .collect();
    out.sort();
    out
}

/// One byte-level edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index, Index),
    Insert(Index, &'static str),
    Replace(Index, u8),
    Truncate(Index),
    DuplicateLine(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Delete(a, b)),
        (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<Index>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        any::<Index>().prop_map(Edit::Truncate),
        any::<Index>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply_edit(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len().max(1);
    match e {
        Edit::Delete(a, len) => {
            let at = a.index(n).min(bytes.len());
            let end = (at + len.index(16) + 1).min(bytes.len());
            bytes.drain(at..end);
        }
        Edit::Insert(a, t) => {
            let at = a.index(n + 1).min(bytes.len());
            bytes.splice(at..at, t.bytes());
        }
        Edit::Replace(a, b) => {
            if !bytes.is_empty() {
                let at = a.index(bytes.len());
                bytes[at] = *b;
            }
        }
        Edit::Truncate(a) => bytes.truncate(a.index(n)),
        Edit::DuplicateLine(a) => {
            let lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let k = a.index(lines.len());
            let mut line = lines[k].clone();
            line.push(b'\n');
            let at: usize = lines[..k].iter().map(|l| l.len() + 1).sum();
            let at = at.min(bytes.len());
            bytes.splice(at..at, line);
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    fuzz(
        "arbitrary_bytes",
        4096,
        prop::collection::vec(any::<u8>(), 0..512),
        |bytes| check_text(&String::from_utf8_lossy(bytes), false),
    );
}

#[test]
fn arbitrary_strings_never_panic() {
    fuzz("arbitrary_strings", 4096, any::<String>(), |s| {
        check_text(s, false)
    });
}

#[test]
fn token_soup_never_panics() {
    fuzz("token_soup", 4096, token_soup(), |s| check_text(s, false));
}

#[test]
fn edited_shipped_scenarios_never_panic() {
    let seeds = shipped();
    assert!(seeds.len() >= 10, "scenarios/ holds the shipped scenarios");
    let strategy = (any::<Index>(), prop::collection::vec(edit(), 1..6));
    fuzz("edited_shipped", 1024, strategy, |(which, edits)| {
        let (_, src) = &seeds[which.index(seeds.len())];
        let mut bytes = src.clone().into_bytes();
        for e in edits {
            apply_edit(&mut bytes, e);
        }
        // Shipped scenarios are far too large to run in a fuzz case.
        check_text(&String::from_utf8_lossy(&bytes), false)
    });
}

// ---------------------------------------------------------------------------------------------
// (b) Structurally valid TOML: every key with valid values, then perturbed
// ---------------------------------------------------------------------------------------------

type Entry = Option<(&'static str, Value)>;

fn fl(r: Range<f64>) -> BoxedStrategy<Value> {
    r.prop_map(Value::Float).boxed()
}

fn int(r: std::ops::RangeInclusive<i64>) -> BoxedStrategy<Value> {
    r.prop_map(Value::Integer).boxed()
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

fn floats(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| Value::Float(x)).collect())
}

/// A key that is always written.
fn req(name: &'static str, s: BoxedStrategy<Value>) -> BoxedStrategy<Entry> {
    s.prop_map(move |v| Some((name, v))).boxed()
}

/// A key written about half of the time.
fn opt(name: &'static str, s: BoxedStrategy<Value>) -> BoxedStrategy<Entry> {
    prop::option::of(s)
        .prop_map(move |v| v.map(|v| (name, v)))
        .boxed()
}

/// A table from its entries.
fn table(entries: Vec<BoxedStrategy<Entry>>) -> BoxedStrategy<Value> {
    entries
        .prop_map(|es| {
            Value::Table(
                es.into_iter()
                    .flatten()
                    .map(|(k, v)| (k.into(), v))
                    .collect(),
            )
        })
        .boxed()
}

fn one_of(names: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::sample::select(names).prop_map(text).boxed()
}

fn landscape(nd: bool) -> BoxedStrategy<Value> {
    let valley2d = (
        0.5..20.0,
        -4.0..2.0,
        0.0..3.0,
        0.0..0.5,
        1..=4usize,
        prop_oneof![Just(0.0), 0.0..0.05],
    )
        .prop_map(|(l0, l1, l2, l3, n, eps)| {
            let mut t = Table::new();
            t.insert("kind".into(), text("valley2d"));
            t.insert("epsilon".into(), Value::Float(eps));
            t.insert("lambda".into(), floats(&[l0, l1, l2, l3][..n]));
            Value::Table(t)
        })
        .boxed();
    let pair = |lo: Range<f64>, span: Range<f64>| {
        (lo, span).prop_map(|(a, b)| floats(&[a, a + b])).boxed()
    };
    let valley = table(vec![
        req("kind", Just(text("valley")).boxed()),
        opt("n_s", int(1..=6)),
        opt("n_f", int(1..=12)),
        opt("epsilon", fl(0.0..0.01)),
        opt("seed", int(0..=1000)),
        opt("lambda0", pair(1.0..20.0, 0.0..10.0)),
        opt("depth", fl(0.0..0.95)),
        opt("x_flat", pair(0.2..1.5, 0.0..1.0)),
    ]);
    if nd { valley } else { valley2d }
}

/// The noise kinds, in the order of [`noise`]'s argument.
const NOISE_KINDS: [&str; 4] = ["hessian", "isotropic", "anisotropic", "constant"];

fn noise(kind: usize) -> BoxedStrategy<Value> {
    let tag = |k: &'static str| req("kind", Just(text(k)).boxed());
    match NOISE_KINDS[kind] {
        "hessian" => table(vec![
            tag("hessian"),
            req("eta", fl(0.001..0.3)),
            req(
                "sigma",
                prop_oneof![1 => Just(Value::Float(0.0)), 5 => fl(0.0..0.5)].boxed(),
            ),
            opt(
                "power",
                prop_oneof![Just(Value::Float(2.0)), fl(0.5..4.0), int(1..=3)].boxed(),
            ),
        ]),
        "isotropic" => table(vec![tag("isotropic"), req("temperature", fl(1e-4..0.1))]),
        "anisotropic" => table(vec![
            tag("anisotropic"),
            req("delta", fl(1e-4..0.1)),
            req("kappa", fl(0.1..10.0)),
        ]),
        _ => (0.001..0.1f64, 0.001..0.1f64, -0.9..0.9f64)
            .prop_map(|(a, c, r)| {
                let b = r * (a * c).sqrt();
                let mut t = Table::new();
                t.insert("kind".into(), text("constant"));
                t.insert(
                    "d".into(),
                    Value::Array(vec![floats(&[a, b]), floats(&[b, c])]),
                );
                Value::Table(t)
            })
            .boxed(),
    }
}

/// `{ min, max, cells }`, usually symmetric, usually small.
fn axis(half: Range<f64>) -> BoxedStrategy<Value> {
    (
        half,
        -0.2..0.2f64,
        prop_oneof![4 => 3..=24i64, 1 => 25..=64i64],
    )
        .prop_map(|(h, shift, cells)| {
            let mut t = Table::new();
            t.insert("min".into(), Value::Float(-h + shift));
            t.insert("max".into(), Value::Float(h + shift));
            t.insert("cells".into(), Value::Integer(cells));
            Value::Table(t)
        })
        .boxed()
}

/// `[fokker_planck]`: a steady-state table, a coherent transient one, or any mix of keys.
fn fokker_planck() -> BoxedStrategy<Value> {
    let gaussian = || {
        (-1.0..1.0f64, -0.2..0.2f64, 0.02..0.5f64, 0.02..0.3f64)
            .prop_map(|(mx, my, sx, sy)| {
                let mut t = Table::new();
                t.insert("kind".into(), text("gaussian"));
                t.insert("mean".into(), floats(&[mx, my]));
                t.insert("std".into(), floats(&[sx, sy]));
                Value::Table(t)
            })
            .boxed()
    };
    let initial = || {
        prop_oneof![
            3 => gaussian(),
            1 => Just({
                let mut t = Table::new();
                t.insert("kind".into(), text("uniform"));
                Value::Table(t)
            }),
        ]
        .boxed()
    };
    let steady = table(vec![
        req("x", axis(0.5..2.0)),
        req("y", axis(0.2..1.0)),
        opt("steady", Just(Value::Boolean(true)).boxed()),
        opt("cross_diffusion", one_of(&["central", "drop"])),
        opt("symmetry", one_of(&["auto", "off"])),
        opt("start_steps", int(0..=64)),
    ]);
    let transient = (
        table(vec![
            req("x", axis(0.5..2.0)),
            req("y", axis(0.2..1.0)),
            opt("steady", any::<bool>().prop_map(Value::Boolean).boxed()),
            req("initial", initial()),
            opt("cross_diffusion", one_of(&["central", "drop"])),
            opt("start_steps", int(0..=64)),
        ]),
        0.01..0.5f64,
        0.01..1.0f64,
        prop::collection::vec(0.0..1.0f64, 0..3),
    )
        .prop_map(|(mut t, t_end, dt_frac, snaps)| {
            if let Value::Table(t) = &mut t {
                t.insert("t_end".into(), Value::Float(t_end));
                t.insert("dt".into(), Value::Float(t_end * dt_frac * 0.1));
                let s: Vec<f64> = snaps.iter().map(|f| f * t_end).collect();
                t.insert("snapshots".into(), floats(&s));
            }
            t
        })
        .boxed();
    let any_keys = table(vec![
        req("x", axis(0.5..2.0)),
        req("y", axis(0.2..1.0)),
        opt("steady", any::<bool>().prop_map(Value::Boolean).boxed()),
        opt(
            "t_end",
            prop_oneof![Just(Value::Float(0.0)), fl(0.01..0.5)].boxed(),
        ),
        opt("dt", fl(0.005..0.05)),
        opt("initial", initial()),
        opt(
            "snapshots",
            prop::collection::vec(0.0..0.5f64, 0..3)
                .prop_map(|v| floats(&v))
                .boxed(),
        ),
        opt("cross_diffusion", one_of(&["central", "drop"])),
        opt("start_steps", int(0..=64)),
    ]);
    prop_oneof![3 => steady, 2 => transient, 1 => any_keys].boxed()
}

fn theory() -> BoxedStrategy<Value> {
    table(vec![
        opt("x_max", fl(0.2..2.0)),
        opt(
            "y_range",
            (0.05..1.0f64, 0.05..1.0f64)
                .prop_map(|(a, b)| floats(&[-a, b]))
                .boxed(),
        ),
        prop::option::weighted(
            0.7,
            prop_oneof![4 => int(3..=200), 1 => int(201..=1000)].boxed(),
        )
        .prop_map(|v| v.map(|v| ("x_cells", v)))
        .boxed(),
    ])
}

/// `[sampler]`, its kind mostly one that fits the noise kind.
fn sampler(noise_kind: usize) -> BoxedStrategy<Value> {
    let hessian = NOISE_KINDS[noise_kind] == "hessian";
    let fitting: &'static [&'static str] = match NOISE_KINDS[noise_kind] {
        "hessian" => &["sgd", "sgd-exact-shift", "langevin", "gd"],
        "isotropic" => &["gld", "langevin", "gd"],
        _ => &["langevin", "gd"],
    };
    let kind = prop_oneof![
        6 => one_of(fitting),
        1 => one_of(&["sgd", "sgd-exact-shift", "langevin", "gld", "gd"]),
    ]
    .boxed();
    // sampler.eta must equal noise.eta under Hessian noise, and is needed otherwise.
    let eta = prop::option::weighted(if hessian { 0.1 } else { 0.85 }, fl(0.001..0.3))
        .prop_map(|v| v.map(|v| ("eta", v)))
        .boxed();
    table(vec![
        req("kind", kind),
        opt("walkers", int(1..=64)),
        req("steps", int(1..=200)),
        opt("burn_in", int(0..=50)),
        req(
            "start",
            prop_oneof![
                6 => prop::collection::vec(-1.0..1.0f64, 2..=2),
                1 => prop::collection::vec(-1.0..1.0f64, 0..=6),
            ]
            .prop_map(|v| floats(&v))
            .boxed(),
        ),
        prop::option::weighted(0.7, fl(0.001..0.05))
            .prop_map(|v| v.map(|v| ("dt", v)))
            .boxed(),
        eta,
        opt("divergence_radius", fl(1.0..1e4)),
        opt("stored_trajectories", int(0..=10)),
    ])
}

/// `{ min, max, points, log }`.
fn range(lo: Range<f64>) -> BoxedStrategy<Value> {
    (lo, 0.0..0.2f64, 1..=5i64, prop::option::of(any::<bool>()))
        .prop_map(|(min, span, points, log)| {
            let mut t = Table::new();
            t.insert("min".into(), Value::Float(min));
            t.insert("max".into(), Value::Float(min + span));
            t.insert("points".into(), Value::Integer(points));
            if let Some(log) = log {
                t.insert("log".into(), Value::Boolean(log));
            }
            Value::Table(t)
        })
        .boxed()
}

/// `[sweep]`: mostly one of the three valid shapes (σ × η, Δ_S, Δ_S × η), else any subset.
fn sweep() -> BoxedStrategy<Value> {
    let sigma = || req("sigma", range(0.0..0.2));
    let eta = || req("eta", range(0.001..0.1));
    let delta_s = || req("delta_s", range(1e-5..0.005));
    prop_oneof![
        table(vec![sigma(), eta()]),
        table(vec![delta_s()]),
        table(vec![delta_s(), eta()]),
        table(vec![
            opt("sigma", range(0.0..0.2)),
            opt("eta", range(0.001..0.1)),
            opt("delta_s", range(1e-5..0.005)),
        ]),
    ]
    .boxed()
}

fn network() -> BoxedStrategy<Value> {
    let ints = |r: std::ops::RangeInclusive<i64>, n: Range<usize>| {
        prop::collection::vec(r, n)
            .prop_map(|v| Value::Array(v.into_iter().map(Value::Integer).collect()))
            .boxed()
    };
    table(vec![
        opt("hidden", ints(1..=40, 1..3)),
        opt("activation", one_of(&["tanh", "relu"])),
        opt("train_size", int(2..=1796)),
        opt("eta", fl(0.001..0.5)),
        opt("batch", int(1..=200)),
        opt("batches", ints(1..=200, 0..4)),
        opt(
            "optimisers",
            prop::sample::subsequence(vec!["gd", "sgd", "gld"], 0..=3)
                .prop_map(|v| Value::Array(v.into_iter().map(text).collect()))
                .boxed(),
        ),
        opt("epochs", int(1..=300)),
        opt("seeds", prop_oneof![int(1..=5), ints(0..=20, 1..4)].boxed()),
        opt("hessian_every", int(0..=20)),
        opt("flatness_top", int(1..=20)),
        opt("lanczos_steps", int(1..=60)),
        opt(
            "full_hessian",
            any::<bool>().prop_map(Value::Boolean).boxed(),
        ),
        opt("bulk_threshold", fl(0.001..0.5)),
        opt("spearman_top", int(3..=200)),
        opt("gamma_threshold", fl(0.001..0.5)),
    ])
}

/// A scenario table with every key drawn from its valid values; the landscape kind (2-D or
/// N-D valley) and the noise kind are drawn first, and the sections are drawn to fit them.
fn scenario_table() -> BoxedStrategy<Value> {
    (prop::bool::weighted(0.25), 0..NOISE_KINDS.len())
        .prop_flat_map(|(nd, nk)| {
            let hessian = NOISE_KINDS[nk] == "hessian";
            let p = |p: f64, s: BoxedStrategy<Value>| prop::option::weighted(p, s).boxed();
            let solver = if nd { 0.05 } else { 0.5 };
            (
                "[a-z0-9][a-z0-9_.-]{0,12}",
                prop::option::of(any::<String>()),
                prop::option::of(0..=i64::MAX),
                p(0.95, landscape(nd)),
                p(0.95, noise(nk)),
                p(solver, fokker_planck()),
                p(solver, theory()),
                p(if nd { 0.8 } else { 0.35 }, sampler(nk)),
                p(if hessian { 0.3 } else { 0.03 }, sweep()),
                p(0.1, network()),
                if nd { sampler(nk) } else { theory() },
            )
        })
        .prop_map(
            |(name, description, seed, l, n, fp, th, sa, sw, nw, fallback)| {
                // Something to compute: the theory (2-D) or the sampler (N-D) when nothing else.
                let (th, sa) = match (&fp, &th, &sa, &sw, &nw) {
                    (None, None, None, None, None) if sa_is_fallback(&fallback) => {
                        (th, Some(fallback))
                    }
                    (None, None, None, None, None) => (Some(fallback), sa),
                    _ => (th, sa),
                };
                let mut t = Table::new();
                t.insert("name".into(), Value::String(name));
                if let Some(d) = description {
                    t.insert("description".into(), Value::String(d));
                }
                if let Some(s) = seed {
                    t.insert("seed".into(), Value::Integer(s));
                }
                for (k, v) in [
                    ("landscape", l),
                    ("noise", n),
                    ("fokker_planck", fp),
                    ("theory", th),
                    ("sampler", sa),
                    ("sweep", sw),
                    ("network", nw),
                ] {
                    if let Some(v) = v {
                        t.insert(k.into(), v);
                    }
                }
                Value::Table(t)
            },
        )
        .boxed()
}

/// True for a `[sampler]` table (it has `steps`; `[theory]` has no such key).
fn sa_is_fallback(v: &Value) -> bool {
    v.get("steps").is_some()
}

/// Values that no key expects, or that sit at the edge of what a key accepts.
fn weird_value() -> BoxedStrategy<Value> {
    let f = Value::Float;
    let i = Value::Integer;
    prop_oneof![
        prop::sample::select(vec![
            f(f64::NAN),
            f(f64::INFINITY),
            f(f64::NEG_INFINITY),
            f(-0.0),
            f(0.0),
            f(-1.0),
            f(1e308),
            f(-1e308),
            f(f64::MAX),
            f(f64::MIN_POSITIVE),
            f(5e-324),
            f(1e-300),
            f(0.5),
            f(2.0),
        ]),
        any::<f64>().prop_map(f),
        prop::sample::select(vec![
            i(0),
            i(1),
            i(2),
            i(-1),
            i(8193),
            i(100_000),
            i(4_200_001),
            i(1 << 32),
            i(1 << 40),
            i(i64::MAX),
            i(i64::MIN),
        ]),
        any::<i64>().prop_map(i),
        prop::sample::select(vec![
            text(""),
            text("nan"),
            text("x"),
            text("valley2d"),
            text("hessian"),
            text("sgd"),
            Value::Boolean(true),
            Value::Boolean(false),
            Value::Array(vec![]),
            floats(&[1.0]),
            floats(&[f64::NAN, 1.0]),
            Value::Array(vec![Value::Array(vec![])]),
            Value::Table(Table::new()),
            Value::Datetime("1979-05-27T07:32:00Z".parse().expect("a TOML datetime")),
        ]),
        ".{0,8}".prop_map(Value::String),
    ]
    .boxed()
}

/// One perturbation of a scenario table, at the node picked by `at` (every table entry and
/// array element is a node).
#[derive(Debug, Clone)]
enum Perturbation {
    /// Remove the node (a missing key or a shorter array).
    Remove(Index),
    /// Replace the node's value.
    Replace(Index, Value),
    /// Add a key nobody knows to the node (if a table) or to its table.
    Unknown(Index, String, Value),
    /// Empty the node (array → [], table → {}).
    Empty(Index),
    /// Scale a number by a huge or tiny factor, or flip its sign.
    Scale(Index, f64),
    /// Write a number as the other numeric type (1 ↔ 1.0), or a string as a number.
    Retype(Index),
}

fn perturbation() -> BoxedStrategy<Perturbation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Perturbation::Remove),
        4 => (any::<Index>(), weird_value()).prop_map(|(a, v)| Perturbation::Replace(a, v)),
        1 => (any::<Index>(), "[a-z_]{1,8}", weird_value())
            .prop_map(|(a, k, v)| Perturbation::Unknown(a, k, v)),
        1 => any::<Index>().prop_map(Perturbation::Empty),
        2 => (
            any::<Index>(),
            prop::sample::select(vec![-1.0, 0.0, 1e-300, 1e3, 1e6, 1e12, 1e300, f64::INFINITY, f64::NAN])
        )
            .prop_map(|(a, s)| Perturbation::Scale(a, s)),
        1 => any::<Index>().prop_map(Perturbation::Retype),
    ]
    .boxed()
}

/// A step from a value into one of its children.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn nodes(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Table(t) => {
            for (k, child) in t {
                path.push(Step::Key(k.clone()));
                out.push(path.clone());
                nodes(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (k, child) in a.iter().enumerate() {
                path.push(Step::At(k));
                out.push(path.clone());
                nodes(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut v = root;
    for s in path {
        v = match (s, v) {
            (Step::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Step::At(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

fn perturb(root: &mut Value, p: &Perturbation) {
    let mut all = Vec::new();
    nodes(root, &mut Vec::new(), &mut all);
    let pick = |a: &Index| -> Vec<Step> {
        if all.is_empty() {
            Vec::new()
        } else {
            all[a.index(all.len())].clone()
        }
    };
    match p {
        Perturbation::Remove(a) => {
            let path = pick(a);
            if let Some((last, parent)) = path.split_last()
                && let Some(parent) = node_mut(root, parent)
            {
                match (last, parent) {
                    (Step::Key(k), Value::Table(t)) => {
                        t.remove(k);
                    }
                    (Step::At(i), Value::Array(arr)) if *i < arr.len() => {
                        arr.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Perturbation::Replace(a, v) => {
            if let Some(n) = node_mut(root, &pick(a)) {
                *n = v.clone();
            }
        }
        Perturbation::Unknown(a, k, v) => {
            let mut path = pick(a);
            loop {
                match node_mut(root, &path) {
                    Some(Value::Table(t)) => {
                        t.insert(k.clone(), v.clone());
                        break;
                    }
                    _ if path.is_empty() => break,
                    _ => {
                        path.pop();
                    }
                }
            }
        }
        Perturbation::Empty(a) => match node_mut(root, &pick(a)) {
            Some(Value::Array(arr)) => arr.clear(),
            Some(Value::Table(t)) => t.clear(),
            _ => {}
        },
        Perturbation::Scale(a, s) => match node_mut(root, &pick(a)) {
            Some(Value::Float(x)) => *x *= s,
            Some(n @ Value::Integer(_)) => {
                if let Value::Integer(x) = *n {
                    let y = x as f64 * s;
                    *n = if y.is_finite() && y.abs() < 9.2e18 {
                        Value::Integer(y as i64)
                    } else {
                        Value::Float(y)
                    };
                }
            }
            _ => {}
        },
        Perturbation::Retype(a) => {
            if let Some(n) = node_mut(root, &pick(a)) {
                *n = match n.clone() {
                    Value::Integer(x) => Value::Float(x as f64),
                    Value::Float(x) if x.fract() == 0.0 && x.abs() < 9e15 => {
                        Value::Integer(x as i64)
                    }
                    Value::Float(x) => Value::String(x.to_string()),
                    Value::String(s) => s
                        .parse::<f64>()
                        .map(Value::Float)
                        .unwrap_or(Value::String(s)),
                    other => other,
                };
            }
        }
    }
}

/// A valid-looking scenario with 0–3 perturbations, and whether to write it pretty.
fn perturbed_scenario() -> impl Strategy<Value = (Value, Vec<Perturbation>, bool)> {
    (
        scenario_table(),
        prop_oneof![
            3 => Just(Vec::new()),
            4 => prop::collection::vec(perturbation(), 1..=1),
            2 => prop::collection::vec(perturbation(), 2..=3),
        ],
        any::<bool>(),
    )
}

fn render(table: &Value, pretty: bool) -> Option<String> {
    if pretty {
        toml::to_string_pretty(table).ok()
    } else {
        toml::to_string(table).ok()
    }
}

#[test]
fn structured_scenarios_validate_round_trip_and_run() {
    fuzz(
        "structured",
        256,
        perturbed_scenario(),
        |(table, perturbations, pretty)| {
            let mut t = table.clone();
            for p in perturbations {
                perturb(&mut t, p);
            }
            let Some(text) = render(&t, *pretty) else {
                // Not representable as a TOML document (e.g. the root became a non-table).
                return Ok(Outcome::Rejected);
            };
            check_text(&text, true)
        },
    );
}

/// The generator reaches every part: each section validates in some scenarios (not a
/// property of flatscape, a check that the fuzzer is not wasting its cases).
#[test]
fn the_generator_produces_valid_scenarios_of_every_kind() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario_table();
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut valid = 0;
    let mut rejected = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..600 {
        let table = strategy
            .new_tree(&mut runner)
            .expect("a scenario table")
            .current();
        let text = render(&table, false).expect("representable");
        let sc = Scenario::from_toml_str(&text, Path::new(ORIGIN));
        if let Err(e) = &sc {
            *rejected
                .entry(e.key.clone().unwrap_or_default())
                .or_default() += 1;
        }
        if let Ok(sc) = sc {
            valid += 1;
            for (part, there) in [
                ("fokker_planck", sc.fokker_planck().is_some()),
                ("theory", sc.theory().is_some()),
                ("sampler", sc.sampler().is_some()),
                ("sweep", sc.sweep().is_some()),
                ("network", sc.network().is_some()),
                (
                    "valley_nd",
                    sc.valley2d().is_none() && sc.sampler().is_some(),
                ),
            ] {
                if there {
                    *seen.entry(part).or_default() += 1;
                }
            }
        }
    }
    eprintln!(
        "generator: {valid} of 600 unperturbed scenarios validate; parts: {seen:?}; rejected at: {rejected:?}"
    );
    assert!(valid >= 60, "only {valid} of 600 validate");
    for part in [
        "fokker_planck",
        "theory",
        "sampler",
        "sweep",
        "network",
        "valley_nd",
    ] {
        assert!(seen.get(part).copied().unwrap_or(0) > 0, "no valid {part}");
    }
}

// ---------------------------------------------------------------------------------------------
// Regression tests: one per crasher found by the fuzzer
// ---------------------------------------------------------------------------------------------

/// A 2-D scenario with Hessian noise and the FP steady state on a 3 × 3 grid `x` × `y`.
fn fp_scenario(x: &str, y: &str) -> String {
    format!(
        "name = \"a\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.0\nlambda = [0.5]\n\
         [noise]\nkind = \"hessian\"\neta = 0.001\nsigma = 0.18\n\
         [fokker_planck]\nx = {{ {x}, cells = 3 }}\ny = {{ {y}, cells = 3 }}\n"
    )
}

/// Found by `structured`: `fokker_planck.x.max = 1e308` validated, then the FP solve failed
/// with "the matrix is singular" (h² overflows for cells wider than about 1e154, 1/h² for
/// cells narrower than about 1e-154). Axes are now bounded in `AxisConfig::validate`.
#[test]
fn an_fp_axis_too_wide_or_too_narrow_for_the_solver_is_rejected() {
    for (x, y, key) in [
        (
            "min = -0.5, max = 1e308",
            "min = -0.2, max = 0.2",
            "fokker_planck.x.max",
        ),
        (
            "min = -1e200, max = 1e200",
            "min = -0.2, max = 0.2",
            "fokker_planck.x.min",
        ),
        (
            "min = -0.5, max = 0.5",
            "min = 0.0, max = 1e-200",
            "fokker_planck.y.max",
        ),
        (
            "min = 1e5, max = 100000.00000001",
            "min = -0.2, max = 0.2",
            "fokker_planck.x.max",
        ),
    ] {
        let src = fp_scenario(x, y);
        let e = Scenario::from_toml_str(&src, Path::new(ORIGIN))
            .err()
            .unwrap_or_else(|| panic!("x = {x}, y = {y} validated"));
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert_eq!(
            e.position.map(|p| p.0),
            Some(11 + usize::from(key.contains(".y."))),
            "{e}"
        );
    }
    // At the limits the solver still runs.
    for (x, y) in [
        ("min = -1e6, max = 1e6", "min = -0.2, max = 0.2"),
        ("min = -0.5, max = 0.5", "min = 0.0, max = 3e-9"),
    ] {
        let sc = Scenario::from_toml_str(&fp_scenario(x, y), Path::new(ORIGIN))
            .unwrap_or_else(|e| panic!("x = {x}, y = {y}: {e}"));
        flatscape::study::run(&sc, &NoProgress).unwrap_or_else(|e| panic!("x = {x}, y = {y}: {e}"));
    }
}

/// Found by `structured`: a constant noise with d11 = 1e17 (or d22 ≳ 1e27, or Hessian noise
/// with σ = 1e20) validates, and the FP transient then fails: "the matrix is singular to
/// working precision" (d11) or "the density is not finite" (d22). The implicit step matrix
/// I − dt·L loses its identity to rounding once dt·D/h² ≳ 1e16 (here dt = 0.012,
/// h = 1/7, so 0.012 · 1e17 · 49 ≈ 6e16); the steady solve of the same scenarios succeeds.
/// The fix belongs in `FokkerPlanckConfig::validate` (src/fp/config.rs): reject a transient with
/// dt·max|D|/h² above ~1e12, or cap D.
#[test]
fn a_stiff_fp_transient_is_rejected_or_runs() {
    let transient = "t_end = 0.27\ndt = 0.012\nsteady = false\n\
                     initial = { kind = \"gaussian\", mean = [0.0, 0.0], std = [0.02, 0.02] }";
    for noise in [
        "kind = \"constant\"\nd = [[1e17, 0.0], [0.0, 0.001]]",
        "kind = \"constant\"\nd = [[0.001, 0.0], [0.0, 1e31]]",
        "kind = \"hessian\"\neta = 0.01\nsigma = 1e20",
    ] {
        let src = format!(
            "name = \"a\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.0\nlambda = [0.5]\n\
             [noise]\n{noise}\n[fokker_planck]\nx = {{ min = -0.5, max = 0.5, cells = 7 }}\n\
             y = {{ min = -0.36, max = 0.36, cells = 13 }}\n{transient}\n"
        );
        if let Ok(sc) = Scenario::from_toml_str(&src, Path::new(ORIGIN)) {
            assert!(extreme_fp_coefficients(&sc), "{noise}");
            if let Err(e) = flatscape::study::run(&sc, &NoProgress) {
                panic!("validated, then failed to run: {e}\n{src}");
            }
        }
    }
}

/// A Hessian scenario with the theory and a (σ, η) sweep of `sigma_points` × `eta_points`.
fn sweep_scenario(sigma_points: u64, eta_points: u64) -> String {
    format!(
        "name = \"a\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.001\nlambda = [8.0, -2.0, 1.0]\n\
         [noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n[theory]\n\
         [sampler]\nkind = \"sgd\"\nsteps = 10\nstart = [0.1, 0.0]\n\
         [sweep]\nsigma = {{ min = 0.0, max = 0.2, points = {sigma_points} }}\n\
         eta = {{ min = 0.01, max = 0.02, points = {eta_points} }}\n"
    )
}

/// Found by reading what `structured`'s `Scale(1e12)` would do to `points`: validation
/// resolves every sweep point, so `points = 10^12` allocated 8 TB and aborted the process
/// ("memory allocation failed"), and 10^5 × 10^5 points took minutes and gigabytes. Ranges
/// and sweeps are now bounded before any point is made.
#[test]
fn a_sweep_of_too_many_points_is_rejected_before_it_is_built() {
    for (s, e, key) in [
        (1_000_000_000_000, 2, "sweep.sigma.points"),
        (2, 1_000_000_000_000, "sweep.eta.points"),
        (100_000, 100_000, "sweep"),
    ] {
        let e = Scenario::from_toml_str(&sweep_scenario(s, e), Path::new(ORIGIN))
            .err()
            .unwrap_or_else(|| panic!("{s} x {e} points validated"));
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert!(e.position.is_some(), "{e}");
    }
    let sc = Scenario::from_toml_str(&sweep_scenario(21, 15), Path::new(ORIGIN))
        .expect("the paper's phase diagram size");
    assert_eq!(sc.sweep().map(|s| s.points(sc.noise()).len()), Some(315));
}

/// Found by reading `Mlp::new` after `structured` produced huge `network.hidden` widths: the
/// parameter count is computed with unchecked `usize` arithmetic and never bounded when
/// `full_hessian = false`. With `cargo test --release`, hidden = [2^32, 2^32] validates and
/// reports 326417514506 parameters (the true count overflows 64 bits); hidden = [3e9]
/// validates, and running it would allocate 225e9 doubles (1.8 TB) and abort. With overflow
/// checks (`cargo test` without `--release`) validation itself panics "attempt to multiply
/// with overflow". The fix belongs in `NetworkConfig::validate` (src/network/mod.rs): checked
/// arithmetic and a bound on the parameter count.
#[test]
fn a_network_too_large_to_allocate_is_rejected() {
    for hidden in [
        "[4294967296, 4294967296]",
        "[3000000000]",
        "[9223372036854775807]",
    ] {
        let src = format!("name = \"a\"\n[network]\nhidden = {hidden}\nfull_hessian = false\n");
        assert!(huge_network(&src));
        let e = Scenario::from_toml_str(&src, Path::new(ORIGIN))
            .err()
            .unwrap_or_else(|| panic!("hidden = {hidden} validated"));
        assert_eq!(e.key.as_deref(), Some("network.hidden"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Specifications built in code
// ---------------------------------------------------------------------------------------------

/// Every `u64` the spec holds (the master seed, the N-D valley's seed, the network's seed
/// list): a spec that validates must be writable as TOML and read back equal.
#[test]
fn code_built_specs_with_any_seed_round_trip() {
    use flatscape::landscape::valley_nd::ValleyNdSpec;
    use flatscape::network::{NetworkConfig, Seeds};
    use flatscape::scenario::{LandscapeSpec, ScenarioSpec};
    use flatscape::theory::TheoryConfig;
    let seed = prop_oneof![Just(u64::MAX), Just(1 << 63), 0..=u64::MAX];
    let strategy = (
        seed.clone(),
        prop::option::of(seed.clone()),
        seed,
        0..3usize,
    );
    fuzz(
        "code_built_seeds",
        512,
        strategy,
        |&(master, nd_seed, net_seed, which)| {
            let text = sweep_scenario(3, 2);
            let mut spec = Scenario::from_toml_str(&text, Path::new(ORIGIN))
                .expect("a valid base scenario")
                .spec()
                .clone();
            spec.seed = master;
            match which {
                0 => {}
                1 => {
                    spec.landscape = Some(LandscapeSpec::Valley(ValleyNdSpec {
                        n_s: 2,
                        n_f: 3,
                        seed: nd_seed,
                        ..ValleyNdSpec::default()
                    }));
                    spec.theory = None;
                }
                _ => {
                    spec = ScenarioSpec {
                        landscape: None,
                        noise: None,
                        theory: None,
                        sampler: None,
                        sweep: None,
                        network: Some(NetworkConfig {
                            seeds: Seeds::List(vec![net_seed]),
                            ..NetworkConfig::default()
                        }),
                        ..spec
                    };
                }
            }
            let _ = TheoryConfig::default();
            match Scenario::from_spec(spec, Path::new(ORIGIN)) {
                Err(e) => check_error("", &e).map(|()| Outcome::Rejected),
                Ok(sc) => check_round_trip(&sc).map(|()| Outcome::Validated),
            }
        },
    );
}

/// Found by `code_built_seeds`: a spec built in code with `seed = u64::MAX` validated, but
/// `to_table()` came back empty (TOML integers are 64-bit signed, so `toml::Table` refuses it)
/// and `to_toml()` wrote an integer that the TOML specification does not allow. Such seeds are
/// now rejected with their key.
#[test]
fn a_seed_above_the_largest_toml_integer_is_rejected_with_its_key() {
    use flatscape::network::{NetworkConfig, Seeds};
    let base = Scenario::from_toml_str(&sweep_scenario(3, 2), Path::new(ORIGIN))
        .expect("valid")
        .spec()
        .clone();
    let mut spec = base.clone();
    spec.seed = u64::MAX;
    let e = Scenario::from_spec(spec, Path::new(ORIGIN)).expect_err("u64::MAX seed");
    assert_eq!(e.key.as_deref(), Some("seed"), "{e}");
    let mut spec = base.clone();
    spec.network = Some(NetworkConfig {
        seeds: Seeds::List(vec![1, 1 << 63]),
        ..NetworkConfig::default()
    });
    let e = Scenario::from_spec(spec, Path::new(ORIGIN)).expect_err("2^63 network seed");
    assert_eq!(e.key.as_deref(), Some("network.seeds[1]"), "{e}");
    let mut spec = base;
    spec.seed = i64::MAX as u64;
    let sc = Scenario::from_spec(spec, Path::new(ORIGIN)).expect("i64::MAX is a TOML integer");
    let again = Scenario::from_table(sc.to_table(), Path::new(ORIGIN)).expect("round trip");
    assert_eq!(again.seed(), i64::MAX as u64);
}

/// Found by `structured`: `landscape.epsilon = 1e308` (with λ0 = 6.8, so ε λ0 overflows)
/// validates, and the theory's summary then has `mean_abs_x_reduced = NaN`, although
/// `TheorySummary` documents every plain number as finite. ε = 1e300 gives finite numbers;
/// λ = [0.5, 1e308, 0] with x_max = 0.2 and x_cells = 3 gives the same NaN.
/// The fix belongs in `Valley2d::validate` (src/landscape/mod.rs: bound ε λ0 and λ(x) on the
/// domain) or in the theory's reduced marginal (src/theory).
#[test]
fn an_overflowing_valley_is_rejected_or_gives_a_finite_theory_summary() {
    let src = "name = \"0\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 1e308\nlambda = [6.8]\n\
               [noise]\nkind = \"isotropic\"\ntemperature = 0.0001\n[theory]\nx_cells = 51\n";
    if let Ok(sc) = Scenario::from_toml_str(src, Path::new(ORIGIN)) {
        assert!(overflowing_valley(&sc));
        let art = flatscape::study::run(&sc, &NoProgress).expect("runs");
        let th = art.summary.theory.expect("a theory summary");
        assert!(
            th.mean_abs_x_reduced.is_finite(),
            "{}",
            th.mean_abs_x_reduced
        );
    }
}

/// Found by `structured`: `fokker_planck.y = { min = -0.2, max = 10.0, cells = 3 }` with a
/// Gaussian initial density of std 0.02 at y = 0 validates (the mean lies in the grid), but the
/// density is sampled at the cell centres (y = 1.5, 5.1, 8.4), where it underflows to 0;
/// normalising makes it NaN and the transient fails with "the density is not finite". The fix
/// belongs in `fp::initial_density` (cell averages via erf, which cannot all vanish) or in
/// `FokkerPlanckConfig::validate` (src/fp).
#[test]
fn a_narrow_initial_gaussian_is_rejected_or_runs() {
    let src = "name = \"a\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.0\nlambda = [7.19]\n\
               [noise]\nkind = \"anisotropic\"\ndelta = 0.0001\nkappa = 1e3\n\
               [fokker_planck]\nt_end = 0.01\ndt = 0.00001\n\
               x = { min = -1.71, max = 1.71, cells = 3 }\ny = { min = -0.2, max = 10.0, cells = 3 }\n\
               initial = { kind = \"gaussian\", mean = [0.0, 0.0], std = [0.02, 0.02] }\n";
    // Fixed: the initial density is the Gaussian's mass per cell (erf differences), which
    // cannot vanish everywhere even when its point samples do.
    if let Ok(sc) = Scenario::from_toml_str(src, Path::new(ORIGIN)) {
        assert!(
            vanishing_initial_density(&sc),
            "the samples at the centres do vanish"
        );
        if let Err(e) = flatscape::study::run(&sc, &NoProgress) {
            panic!("validated, then failed to run: {e}");
        }
    }
}

/// Found by `structured`: `noise = { kind = "anisotropic", delta = 1e308, kappa = 0.1 }`
/// validates (Δ and κ are each finite and > 0), but D11 = Δ/κ overflows to inf and the FP
/// steady solve fails with "the matrix is singular"; with κ = 2.14 D is finite but D/h²
/// overflows, with the same failure. The fix belongs in `Noise::validate` (src/noise.rs: the
/// entries of D must be finite, not only the parameters) and `FokkerPlanckConfig::validate`
/// (src/fp/config.rs: D/h² must be finite).
#[test]
fn an_anisotropic_noise_whose_d11_overflows_is_rejected() {
    for kappa in ["0.1", "2.14"] {
        let src = &format!(
            "name = \"a\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.0\nlambda = [3.3]\n\
               [noise]\nkind = \"anisotropic\"\ndelta = 1e308\nkappa = {kappa}\n\
               [fokker_planck]\nx = {{ min = -0.5, max = 0.5, cells = 3 }}\n\
               y = {{ min = -0.2, max = 0.2, cells = 3 }}\n"
        );
        if let Ok(sc) = Scenario::from_toml_str(src, Path::new(ORIGIN)) {
            assert!(extreme_fp_coefficients(&sc));
            if let Err(e) = flatscape::study::run(&sc, &NoProgress) {
                panic!("κ = {kappa}: validated, then failed to run: {e}");
            }
        }
    }
}

/// Found by `structured`: `landscape.lambda = [1e308, 0, 0, 0]` validates (λ0 is finite and
/// positive), and the FP steady solve on a 3 × 6 grid fails with "the matrix is singular" (the drift
/// λ0 y / h overflows in the assembly). The fix belongs in `Valley2d::validate`
/// (src/landscape/mod.rs: bound the coefficients) or `FokkerPlanckConfig::validate`
/// (src/fp/config.rs: finite operator coefficients on the grid).
#[test]
fn a_valley_too_steep_for_the_fp_grid_is_rejected_or_runs() {
    let src = "name = \"a\"\n[landscape]\nkind = \"valley2d\"\nepsilon = 0.0\n\
               lambda = [1e308, 0.0, 0.0, 0.0]\n\
               [noise]\nkind = \"hessian\"\neta = 0.001\nsigma = 0.354\npower = 0.5\n\
               [fokker_planck]\nx = { min = -0.5, max = 0.5, cells = 3 }\n\
               y = { min = -0.2, max = 0.2, cells = 6 }\n";
    if let Ok(sc) = Scenario::from_toml_str(src, Path::new(ORIGIN)) {
        assert!(extreme_fp_coefficients(&sc));
        if let Err(e) = flatscape::study::run(&sc, &NoProgress) {
            panic!("validated, then failed to run: {e}");
        }
    }
}
