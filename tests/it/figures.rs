//! `flatscape figures --quick` end to end, the (σ, η) sweep against the theory's transition,
//! and search times from the adjoint FP solve against Langevin and SGD walkers.

use std::path::Path;
use std::process::Command;

use flatscape::app::figures::search_times;
use flatscape::config::NoProgress;
use flatscape::report::files::csv_text;
use flatscape::scenario::Scenario;
use flatscape::study::sweep;

const FIGURES: [&str; 23] = [
    "fig1a_hessian_spectrum",
    "fig1b_hessian_noise_diag",
    "fig2b_flatness_optimisers",
    "fig3b_flatness_batch_size",
    "fig2a_flatness_gd_sgd_gld",
    "fig3a_flatness_vs_sigma",
    "fig3c_phase_diagram_nd",
    "fig4b_valley_reshaping",
    "fig5a_trajectories",
    "fig5b_phase_diagram_flatness",
    "fig5c_x_vs_iteration",
    "fig5d_phase_diagram_search_time",
    "density_anisotropic_noise",
    "density_below_transition",
    "density_at_transition",
    "density_above_transition",
    "marginals_fp_theory_sampler",
    "flatness_vs_delta_s",
    "x_ss_vs_delta_s",
    "search_time_adjoint_vs_sampler",
    "fp_grid_convergence",
    "noise_power_gamma1_vs_gamma2",
    "hopping_rate",
];

#[test]
fn figures_quick_writes_every_figure_as_valid_png_and_svg() {
    // No --out: quick mode writes to output/quick/ (of the working folder), never over the
    // versioned gallery in output/.
    let work = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_flatscape"))
        .args(["figures", "--quick", "--quiet", "--scenarios"])
        .arg(root.join("scenarios"))
        .current_dir(work.path())
        .output()
        .unwrap();
    let dir_path = work.path().join("output/quick");
    struct Dir(std::path::PathBuf);
    impl Dir {
        fn path(&self) -> &Path {
            &self.0
        }
    }
    let dir = Dir(dir_path);
    assert!(
        std::fs::read_dir(work.path().join("output"))
            .unwrap()
            .flatten()
            .all(|e| e.file_name() == "quick"),
        "quick mode wrote outside output/quick"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in FIGURES {
        let png = std::fs::read(dir.path().join(format!("{name}.png")))
            .unwrap_or_else(|_| panic!("{name}.png missing"));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is not a PNG");
        // IHDR: width and height.
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (900, 600), "{name}.png size");
        assert!(
            png.len() > 10_000 && png.len() < 400_000,
            "{name}.png is {} bytes",
            png.len()
        );
        let svg = std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}.svg"
        );
        assert!(svg.contains("<text"), "{name}.svg has no text (labels)");
    }
    // The phase-diagram sweep: 4 × 4 points in quick mode, sampler columns first (docs/reference.md §7.5).
    let csv =
        std::fs::read_to_string(dir.path().join("runs/fig5b-phase-diagram/sweep.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("sigma,eta,delta_s,flatness_ss,x_ss_abs,search_time,diverged_fraction")
    );
    assert_eq!(lines.count(), 16);
}

#[test]
fn sampler_sweep_shows_the_transition_where_theory_puts_it() {
    // Along η = 0.01: Δ_S* = −ε/λ1 = 0.0005 (σ* = 0.05).
    let src = r#"name = "transition"
seed = 2
[landscape]
kind = "valley2d"
epsilon = 0.001
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.01
sigma = 0.1
[sampler]
kind = "sgd"
walkers = 32
steps = 400000
burn_in = 200000
start = [1.5, 1.5]
stored_trajectories = 0
[sweep]
delta_s = { min = 0.000125, max = 0.002, points = 5, log = true }
"#;
    let sc = Scenario::from_toml_str(src, Path::new("transition.toml")).unwrap();
    let rows = sweep::run(&sc, &NoProgress).unwrap().rows;
    let csv = String::from_utf8(csv_text(&rows).unwrap()).unwrap();
    eprintln!("{csv}");
    let star = 0.0005;
    for r in &rows {
        let x = r.x_ss_abs.unwrap();
        if r.delta_s <= 0.5 * star * (1.0 + 1e-9) {
            assert!(x < 0.1, "Δ_S = {}: |x_ss| = {x}", r.delta_s);
        }
        if r.delta_s >= 2.0 * star * (1.0 - 1e-9) {
            assert!(x > 0.5, "Δ_S = {}: |x_ss| = {x}", r.delta_s);
        }
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r.delta_s <= 0.5 * star * (1.0 + 1e-9))
            .count(),
        2
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.delta_s >= 2.0 * star * (1.0 - 1e-9))
            .count(),
        2
    );
}

#[test]
fn adjoint_search_time_matches_langevin_walkers_in_phase_two() {
    for delta_s in [0.002, 0.004] {
        let (x_ss, adjoint, langevin, sgd) = search_times(delta_s, false).unwrap();
        eprintln!(
            "Δ_S = {delta_s}: x_ss = {x_ss:.4}, τ_s adjoint {adjoint:.2}, Langevin {langevin:.2} ({:+.1} %), SGD {sgd:.2} ({:+.1} % from adjoint)",
            100.0 * (langevin / adjoint - 1.0),
            100.0 * (sgd / adjoint - 1.0)
        );
        assert!(
            (langevin / adjoint - 1.0).abs() < 0.1,
            "Δ_S = {delta_s}: adjoint {adjoint}, Langevin {langevin}"
        );
    }
}
