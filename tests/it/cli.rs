//! Command-line behaviour: exit codes, located error messages for malformed scenarios
//! (never a panic), `check` on every shipped scenario, and atomic outputs of `run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flatscape(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatscape"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

const VALID: &str = r#"name = "ok"
[landscape]
kind = "valley2d"
epsilon = 0.001
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.01
sigma = 0.2
[fokker_planck]
x = { min = -1.6, max = 1.6, cells = 48 }
y = { min = -0.6, max = 0.6, cells = 24 }
steady = true
dt = 0.01
"#;

/// (what is wrong, scenario text, text the message must contain, line it must name).
fn malformed() -> Vec<(&'static str, String, &'static str, Option<usize>)> {
    let v = VALID;
    vec![
        ("syntax error", v.replace("[noise]", "[noise"), "noise", Some(6)),
        ("unknown top-level key", format!("colour = 3\n{v}"), "colour", Some(1)),
        ("unknown key in a table", v.replace("sigma = 0.2", "sigma = 0.2\ntemprature = 1.0"), "temprature", Some(10)),
        ("wrong type", v.replace("sigma = 0.2", "sigma = \"high\""), "noise.sigma", Some(9)),
        ("negative cells", v.replace("cells = 48", "cells = -5"), "fokker_planck.x.cells", Some(11)),
        ("too few cells", v.replace("cells = 24", "cells = 2"), "fokker_planck.y.cells", Some(12)),
        ("min >= max", v.replace("min = -0.6, max = 0.6", "min = 0.6, max = -0.6"), "fokker_planck.y.max", Some(12)),
        ("NaN", v.replace("epsilon = 0.001", "epsilon = nan"), "landscape.epsilon", Some(4)),
        ("infinity", v.replace("eta = 0.01", "eta = inf"), "noise.eta", Some(8)),
        ("lambda(x) <= 0 on the domain", v.replace("[8.0, -2.0, 1.0]", "[1.0, -2.0]"), "landscape.lambda", Some(5)),
        ("empty lambda", v.replace("[8.0, -2.0, 1.0]", "[]"), "landscape.lambda", Some(5)),
        ("non-PSD d", v.replace("kind = \"hessian\"\neta = 0.01\nsigma = 0.2", "kind = \"constant\"\nd = [[1.0, 2.0], [2.0, 1.0]]"), "noise.d", Some(8)),
        ("dt <= 0", v.replace("dt = 0.01", "dt = 0.0"), "fokker_planck.dt", Some(14)),
        ("negative kappa", v.replace("kind = \"hessian\"\neta = 0.01\nsigma = 0.2", "kind = \"anisotropic\"\ndelta = 0.01\nkappa = -4.0"), "noise.kappa", Some(9)),
        ("unknown noise kind", v.replace("kind = \"hessian\"", "kind = \"pink\""), "pink", Some(7)),
        ("missing table", v.replace("[noise]\nkind = \"hessian\"\neta = 0.01\nsigma = 0.2\n", ""), "noise", None),
        ("transient without initial density", v.replace("dt = 0.01", "dt = 0.01\nt_end = 1.0"), "fokker_planck.initial", None),
        ("power out of range", v.replace("sigma = 0.2", "sigma = 0.2\npower = 7.0"), "noise.power", Some(10)),
        ("bad output name", v.replace("name = \"ok\"", "name = \"../etc\""), "name", Some(1)),
        ("initial mean outside the grid", v.replace("dt = 0.01", "dt = 0.01\nt_end = 1.0\ninitial = { kind = \"gaussian\", mean = [5.0, 0.0], std = [0.1, 0.1] }"), "fokker_planck.initial.mean", Some(16)),
        ("negative sigma", v.replace("sigma = 0.2", "sigma = -0.2"), "noise.sigma", Some(9)),
        ("sweep with eta.min = 0", format!("{v}[sweep]\nsigma = {{ min = 0.0, max = 0.4, points = 3 }}\neta = {{ min = 0.0, max = 0.06, points = 3 }}\n"), "sweep.eta.min", Some(17)),
        ("empty file", String::new(), "name", None),
    ]
}

#[test]
fn malformed_scenarios_exit_2_with_a_located_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases = malformed();
    assert!(cases.len() >= 15);
    for (what, text, key, line) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, &text).unwrap();
        for cmd in ["check", "run"] {
            let out = flatscape(&[cmd, file.to_str().unwrap()], dir.path());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what} ({cmd}): status {:?}, stderr: {stderr}",
                out.status
            );
            assert!(!stderr.contains("panicked"), "{what}: panic: {stderr}");
            assert!(
                stderr.contains("bad.toml"),
                "{what}: no file name in: {stderr}"
            );
            assert!(
                stderr.contains(key),
                "{what}: `{key}` missing from: {stderr}"
            );
            if let Some(line) = line {
                assert!(
                    stderr.contains(&format!("bad.toml:{line}:")),
                    "{what}: line {line} missing from: {stderr}"
                );
            }
        }
    }
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = flatscape(&["check", "no-such-scenario.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-scenario.toml"));
}

fn shipped_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_passes_check() {
    let files = shipped_scenarios();
    assert!(files.len() >= 2);
    for f in files {
        let out = flatscape(
            &["check", f.to_str().unwrap()],
            Path::new(env!("CARGO_MANIFEST_DIR")),
        );
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn run_writes_every_fp_output_and_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, VALID).unwrap();
    let out_dir = dir.path().join("result");
    let out = flatscape(
        &[
            "run",
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
            "--threads",
            "1",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "summary.json",
        "marginal_x.csv",
        "marginal_y.csv",
        "density.npy",
        "fp_density.png",
        "fp_density.svg",
        "marginal_x.png",
        "marginal_x.svg",
    ] {
        let meta =
            std::fs::metadata(out_dir.join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert!(meta.len() > 100, "{name} is {} bytes", meta.len());
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let fp = &summary["fokker_planck"];
    assert_eq!(fp["grid"], serde_json::json!([48, 24]));
    assert!((fp["mass"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    // density.npy: a float64 (nx, ny) array with the .npy magic.
    let npy = std::fs::read(out_dir.join("density.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    assert!(String::from_utf8_lossy(&npy[..128]).contains("(48, 24)"));
    let csv = std::fs::read_to_string(out_dir.join("marginal_x.csv")).unwrap();
    assert!(csv.starts_with("x,fp"));
    assert_eq!(csv.lines().count(), 49);
    let png = std::fs::read(out_dir.join("fp_density.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn help_lists_the_three_commands() {
    let out = flatscape(&["--help"], Path::new("."));
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check", "figures"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

#[test]
fn check_takes_several_files_and_fails_if_any_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), VALID).unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        VALID.replace("sigma = 0.2", "sigma = -1.0"),
    )
    .unwrap();
    let out = flatscape(&["check", "good.toml", "good.toml"], dir.path());
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let out = flatscape(&["check", "good.toml", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.toml: valid"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:9:1"));
}

/// A scenario that computes for many seconds (a long sampler run) on top of a quick FP solve.
fn slow_scenario() -> String {
    format!(
        "{}[sampler]\nkind = \"sgd\"\nwalkers = 256\nsteps = 100000000\nburn_in = 10\nstart = [1.0, 0.1]\n",
        VALID.replace("name = \"ok\"", "name = \"slow\"")
    )
}

#[test]
fn an_unusable_output_folder_is_reported_before_any_computing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.toml"), slow_scenario()).unwrap();
    std::fs::write(dir.path().join("afile"), "not a folder").unwrap();
    let clock = std::time::Instant::now();
    let out = flatscape(
        &["run", "slow.toml", "--out", "afile", "--quiet"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("output folder afile") && err.contains("not a folder"),
        "{err}"
    );
    // It failed at once, not after the (minutes-long) computation.
    assert!(clock.elapsed().as_secs_f64() < 30.0);
}

/// Send `signal` to a `run` of the slow scenario once it has started computing; return its
/// exit status and the time from the signal to the exit.
fn interrupted_run(dir: &Path, signal: &str) -> (std::process::ExitStatus, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flatscape"))
        .args(["run", "slow.toml", "--out", "res", "--quiet"])
        .current_dir(dir)
        .spawn()
        .unwrap();
    // Wait until the staging folder exists: the run is computing.
    let clock = std::time::Instant::now();
    while !std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(".res.partial-"))
    {
        assert!(clock.elapsed().as_secs() < 60, "the run did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let sent = std::time::Instant::now();
    let status = child.wait().unwrap();
    (status, sent.elapsed().as_secs_f64())
}

#[test]
fn interrupted_runs_leave_the_previous_result_whole() {
    let dir = tempfile::tempdir().unwrap();
    // A complete earlier result in res/.
    std::fs::write(dir.path().join("ok.toml"), VALID).unwrap();
    let out = flatscape(&["run", "ok.toml", "--out", "res", "--quiet"], dir.path());
    assert!(out.status.success());
    let before = std::fs::read(dir.path().join("res/summary.json")).unwrap();
    std::fs::write(dir.path().join("slow.toml"), slow_scenario()).unwrap();

    let (status, secs) = interrupted_run(dir.path(), "-INT");
    eprintln!("SIGINT: exit {status:?} after {secs:.2} s");
    assert_eq!(status.code(), Some(130));
    assert!(secs < 2.0, "took {secs} s to stop");
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(dir.path()), ["ok.toml", "res", "slow.toml"]);
    assert_eq!(
        std::fs::read(dir.path().join("res/summary.json")).unwrap(),
        before
    );
    assert!(!dir.path().join("res/timeseries.csv").exists());

    let (status, _) = interrupted_run(dir.path(), "-KILL");
    assert_eq!(status.code(), None, "killed by the signal");
    assert_eq!(
        std::fs::read(dir.path().join("res/summary.json")).unwrap(),
        before
    );
    // The killed run's staging folder is removed by the next run into the same place.
    let out = flatscape(&["run", "ok.toml", "--out", "res", "--quiet"], dir.path());
    assert!(out.status.success());
    assert_eq!(names(dir.path()), ["ok.toml", "res", "slow.toml"]);
}

/// Run `text` as a scenario; return (stdout, stderr, summary.json).
fn run_text(text: &str) -> (String, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), text).unwrap();
    let out = flatscape(&["run", "s.toml", "--out", "res"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("res/summary.json")).unwrap(),
    )
    .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        summary,
    )
}

fn warnings(summary: &serde_json::Value) -> Vec<String> {
    summary["warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn negative_and_under_resolved_transients_are_warned_about() {
    // The shipped anisotropic-valley set-up on a coarse grid with plain TR-BDF2 steps of 0.5.
    let text = r#"name = "neg"
[landscape]
kind = "valley2d"
epsilon = 0.0
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "anisotropic"
delta = 0.01
kappa = 4.0
[fokker_planck]
x = { min = -1.6, max = 1.6, cells = 48 }
y = { min = -0.25, max = 0.25, cells = 24 }
steady = false
t_end = 20.0
dt = 0.5
start_steps = 0
initial = { kind = "gaussian", mean = [0.3, 0.1], std = [0.1, 0.05] }
"#;
    let min = |s: &serde_json::Value| {
        s["fokker_planck"]["transient_min_density"]
            .as_f64()
            .unwrap()
    };
    let (_, stderr, plain) = run_text(text);
    let w = warnings(&plain);
    assert!(w.iter().any(|w| w.contains("went negative")), "{w:?}");
    assert!(
        stderr.contains("warning: the transient density went negative"),
        "{stderr}"
    );
    // The backward-Euler start (4 steps by default) takes most of it away.
    let (_, _, started) = run_text(&text.replace("start_steps = 0\n", ""));
    eprintln!(
        "minimum density: plain TR-BDF2 {}, backward-Euler start {}",
        min(&plain),
        min(&started)
    );
    assert!(min(&plain) < -1.0);
    assert!(min(&started).abs() < 1e-2 * min(&plain).abs());
    // An initial width below one cell keeps its mass but is reported.
    let narrow = text.replace("std = [0.1, 0.05]", "std = [0.001, 0.001]");
    let (_, _, summary) = run_text(&narrow);
    let w = warnings(&summary);
    assert!(w.iter().any(|w| w.contains("under-resolved in x")), "{w:?}");
    assert!((summary["fokker_planck"]["mass"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

#[test]
fn a_transient_density_is_not_compared_with_the_stationary_theory() {
    let text = format!(
        "{}[theory]\n",
        VALID.replace(
            "steady = true\ndt = 0.01",
            "steady = false\ndt = 0.1\nt_end = 0.5\ninitial = { kind = \"gaussian\", mean = [1.0, 0.0], std = [0.2, 0.1] }",
        )
    );
    let (stdout, _, summary) = run_text(&text);
    assert_eq!(summary["fokker_planck"]["density"], "transient");
    assert!(summary.get("comparison").is_none(), "{summary}");
    assert!(!stdout.contains("L1 distances"), "{stdout}");
}

#[test]
fn the_console_shows_the_summary_transition() {
    let text = format!(
        "{}[theory]\n",
        VALID.replace("sigma = 0.2", "sigma = 0.2\npower = 1.1")
    );
    let (stdout, _, summary) = run_text(&text);
    let star = summary["theory"]["delta_s_star_reduced"].as_f64().unwrap();
    assert!((star - 0.00325).abs() < 1e-5, "{star}");
    assert!(stdout.contains("Δ_S* = 0.00325"), "{stdout}");
    let aniso = format!(
        "{}[theory]\n",
        VALID.replace(
            "kind = \"hessian\"\neta = 0.01\nsigma = 0.2",
            "kind = \"anisotropic\"\ndelta = 0.01\nkappa = 4.0",
        )
    );
    let (stdout, _, _) = run_text(&aniso);
    assert!(stdout.contains("Δ_S* = does not apply"), "{stdout}");
}

#[test]
fn an_under_resolved_steady_peak_is_warned_about_naming_the_axis() {
    // σ = 0.02: Δ_S below the transition, the peak at x = 0 is a few hundredths wide.
    let (_, stderr, summary) = run_text(&VALID.replace("sigma = 0.2", "sigma = 0.02"));
    let w = warnings(&summary);
    assert!(
        w.iter()
            .any(|w| w.contains("steady peak spans only") && w.contains(" in x ")),
        "{w:?}"
    );
    assert!(stderr.contains("fokker_planck.x.cells >="), "{stderr}");
    // The shipped grid of the paper's scenario resolves its peak: no warning.
    let (_, _, summary) = run_text(&VALID.replace("cells = 48", "cells = 400"));
    assert!(warnings(&summary).is_empty(), "{:?}", warnings(&summary));
}
