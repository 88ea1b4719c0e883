//! `[fokker_planck] eigenvalues = k` (summary `fokker_planck.relaxation_rates`) and
//! `flatscape run --export-operator` (operator.mtx, Matrix Market) through the command line.
//!
//! Run with `cargo test --release --test it fp_export:: -- --nocapture` to see the numbers.

use std::path::Path;
use std::process::{Command, Output};

use flatscape::fp;
use flatscape::scenario::Scenario;

fn flatscape(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatscape"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// OU: L = ½ελ0x² + ½λ0y² with ελ0 = 1, λ0 = 1.7 and T = 1: drift matrix diag(1, 1.7), so the
/// generator's eigenvalues are −(n1 + 1.7 n2): 1, 1.7, 2, 2.7, … .
const OU: &str = r#"name = "ou-spectrum"
[landscape]
kind = "valley2d"
epsilon = 0.5882352941176471
lambda = [1.7]
[noise]
kind = "isotropic"
temperature = 1.0
[fokker_planck]
x = { min = -7.0, max = 7.0, cells = 96 }
y = { min = -5.5, max = 5.5, cells = 96 }
eigenvalues = 4
"#;

fn run_ou(dir: &Path, extra: &[&str]) -> Output {
    let file = dir.join("ou.toml");
    std::fs::write(&file, OU).unwrap();
    let mut args = vec!["run", file.to_str().unwrap(), "--out", "out", "--quiet"];
    args.extend_from_slice(extra);
    flatscape(&args, dir)
}

#[test]
fn eigenvalues_key_reports_the_ou_rates() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ou(dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rates = s["fokker_planck"]["relaxation_rates"].as_array().unwrap();
    let exact = [1.0, 1.7, 2.0, 2.7];
    assert_eq!(rates.len(), exact.len());
    for (r, e) in rates.iter().zip(exact) {
        let rate = r["rate"].as_f64().unwrap();
        eprintln!(
            "rate {rate:.6} exact {e} (rel. error {:.2e})",
            rate / e - 1.0
        );
        // Second-order scheme at h = 0.146: measured relative errors 0.35 %–0.5 %.
        assert!((rate / e - 1.0).abs() < 6e-3, "{rate} vs {e}");
        assert!(r["frequency"].as_f64().unwrap().abs() < 1e-9);
        assert!(r["residual"].as_f64().unwrap() < 1e-8);
    }
    assert!(s["fokker_planck"]["spectrum_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn eigenvalues_out_of_range_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    for (value, why) in [("65", "must be between"), ("-1", "")] {
        std::fs::write(
            &file,
            OU.replace("eigenvalues = 4", &format!("eigenvalues = {value}")),
        )
        .unwrap();
        for cmd in ["check", "run"] {
            let out = flatscape(&[cmd, file.to_str().unwrap()], dir.path());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
            assert!(stderr.contains("fokker_planck.eigenvalues"), "{stderr}");
            assert!(stderr.contains("bad.toml:12:"), "{stderr}");
            assert!(stderr.contains(why), "{stderr}");
        }
    }
}

/// A coordinate Matrix Market file as scipy.io.mmread reads it: (rows, cols, 1-based entries).
fn read_matrix_market(text: &str) -> (usize, usize, Vec<(usize, usize, f64)>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["%%MatrixMarket", "matrix", "coordinate", "real", "general"]
    );
    let mut lines = lines.filter(|l| !l.starts_with('%') && !l.trim().is_empty());
    let size: Vec<usize> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let entries: Vec<(usize, usize, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(entries.len(), size[2]);
    (size[0], size[1], entries)
}

#[test]
fn export_operator_writes_the_generator_as_matrix_market() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ou(dir.path(), &["--export-operator"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("out/operator.mtx")).unwrap();
    let (rows, cols, entries) = read_matrix_market(&text);
    let (nx, ny) = (96usize, 96usize);
    assert_eq!((rows, cols), (nx * ny, nx * ny));
    let mut a = vec![std::collections::HashMap::new(); rows];
    let mut col_sum = vec![0.0; cols];
    let mut scale = 0.0f64;
    for &(r, c, v) in &entries {
        assert!((1..=rows).contains(&r) && (1..=cols).contains(&c));
        a[r - 1].insert(c - 1, v);
        col_sum[c - 1] += v;
        if r == c {
            scale = scale.max(v.abs());
        }
    }
    // Mass conservation: every column sums to zero.
    let defect = col_sum.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    eprintln!("max |column sum| / max |A_kk| = {:.1e}", defect / scale);
    assert!(defect < 1e-12 * scale);
    // The same matrix as the library's assembly, entry by entry.
    let scenario = Scenario::load(&dir.path().join("ou.toml")).unwrap();
    let csr = fp::spectrum::to_csr(&fp::generator(scenario.fokker_planck().unwrap()));
    assert_eq!(csr.nnz(), entries.len());
    for (v, (r, c)) in csr.iter() {
        assert_eq!(a[r].get(&c).copied(), Some(*v), "A[{r}, {c}]");
    }
    // Physics: for constant isotropic T exponential fitting makes exp(−L/T) at the cell
    // centres an exact discrete equilibrium, A·exp(−L/T) = 0.
    let (h_x, h_y) = (14.0 / nx as f64, 11.0 / ny as f64);
    let p: Vec<f64> = (0..rows)
        .map(|k| {
            let x = -7.0 + h_x * ((k / ny) as f64 + 0.5);
            let y = -5.5 + h_y * ((k % ny) as f64 + 0.5);
            (-(0.5 * x * x + 0.85 * y * y)).exp()
        })
        .collect();
    let mut worst = 0.0f64;
    for row in &a {
        let ap: f64 = row.iter().map(|(&c, &v)| v * p[c]).sum();
        worst = worst.max(ap.abs());
    }
    eprintln!("max |A exp(-L/T)| / max |A_kk| = {:.1e}", worst / scale);
    assert!(worst < 1e-12 * scale);
    // One interior entry in closed form: the x-face between cells k and k + ny carries
    // A[k, k+ny] = (T/h²)·B(Δψ) with Δψ = (L_k − L_{k+ny})/T and B(z) = z/(eᶻ − 1).
    let (i, j) = (40usize, 50usize);
    let k = i * ny + j;
    let x0 = -7.0 + h_x * (i as f64 + 0.5);
    let dpsi = 0.5 * (x0 * x0 - (x0 + h_x).powi(2));
    let expected = dpsi / dpsi.exp_m1() / (h_x * h_x);
    let got = a[k][&(k + ny)];
    eprintln!("A[k, k+ny] = {got:.12} vs closed form {expected:.12}");
    assert!(
        (got - expected).abs() < 1e-10 * expected,
        "{got} vs {expected}"
    );
}

#[test]
fn export_operator_without_fokker_planck_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("theory.toml");
    let text = OU.split("[fokker_planck]").next().unwrap().replace(
        "kind = \"isotropic\"\ntemperature = 1.0",
        "kind = \"hessian\"\neta = 0.1\nsigma = 0.01",
    ) + "[theory]\n";
    std::fs::write(&file, text).unwrap();
    let out = flatscape(
        &[
            "run",
            file.to_str().unwrap(),
            "--out",
            "out",
            "--quiet",
            "--export-operator",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("theory.toml") && stderr.contains("--export-operator"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists());
}
