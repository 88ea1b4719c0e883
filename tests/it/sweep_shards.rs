//! Sharded sweeps (`flatscape sweep plan | run | merge`): any split of the points over shards,
//! threads, kills and reruns gives the bytes of `flatscape run`'s sweep.csv; broken folders
//! give the documented exit codes; the SLURM script's body runs without a scheduler.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flatscape::config::NoProgress;
use flatscape::scenario::Scenario;
use flatscape::study::sweep::{self, SweepPlan};

const BIN: &str = env!("CARGO_BIN_EXE_flatscape");

fn flatscape(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// A (σ, η) sweep with a short sampler on the paper's 2-D valley (theory columns filled too).
fn small_sweep(name: &str, seed: u64, steps: usize, sigmas: usize, etas: usize) -> String {
    format!(
        r#"name = "{name}"
seed = {seed}
[landscape]
kind = "valley2d"
epsilon = 0.001
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.01
sigma = 0.2
[sampler]
kind = "sgd"
walkers = 32
steps = {steps}
burn_in = {burn}
start = [1.5, 1.5]
stored_trajectories = 0
[sweep]
sigma = {{ min = 0.0, max = 0.2, points = {sigmas} }}
eta = {{ min = 0.01, max = 0.29, points = {etas} }}
"#,
        burn = steps / 2
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// sweep.csv of `flatscape run` into `dir/single`.
fn single_run(scenario: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("single");
    ok(flatscape(&[
        "run",
        s(scenario),
        "--out",
        s(&out),
        "--quiet",
    ]));
    fs::read(out.join("sweep.csv")).unwrap()
}

fn run_shard(scenario: &Path, dir: &Path, k: usize, n: usize, threads: usize) -> String {
    ok(flatscape(&[
        "sweep",
        "run",
        s(scenario),
        "--out",
        s(dir),
        "--shard",
        &format!("{k}/{n}"),
        "--threads",
        &threads.to_string(),
    ]))
}

fn merge(dir: &Path) -> Vec<u8> {
    ok(flatscape(&["sweep", "merge", s(dir)]));
    fs::read(dir.join("sweep.csv")).unwrap()
}

/// The number after "assigned, " in `sweep run`'s closing line: the points computed now.
fn computed(stdout: &str) -> usize {
    let tail = stdout
        .split("assigned, ")
        .nth(1)
        .unwrap_or_else(|| panic!("no closing line in {stdout:?}"));
    tail.split(' ').next().unwrap().parse().unwrap()
}

fn point_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(blocks) = fs::read_dir(dir.join("points")) {
        for b in blocks.flatten() {
            for f in fs::read_dir(b.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") && !name.starts_with(".tmp") {
                    files.push(f.path());
                }
            }
        }
    }
    files.sort();
    files
}

/// The shipped Fig. 5b scenario, shrunk to a 4 × 3 grid and a short sampler.
fn shrunk_fig5b(dir: &Path) -> PathBuf {
    let sc = Scenario::load(Path::new("scenarios/fig5b-phase-diagram.toml")).unwrap();
    let mut table = sc.to_table();
    let edit = |t: &mut toml::Table, path: &[&str], v: toml::Value| {
        let mut cur = t;
        for key in &path[..path.len() - 1] {
            cur = cur.get_mut(*key).unwrap().as_table_mut().unwrap();
        }
        cur.insert(path[path.len() - 1].to_string(), v);
    };
    edit(&mut table, &["sampler", "steps"], 2000.into());
    edit(&mut table, &["sampler", "burn_in"], 1000.into());
    edit(&mut table, &["sampler", "walkers"], 32.into());
    edit(&mut table, &["sweep", "sigma", "points"], 4.into());
    edit(&mut table, &["sweep", "eta", "points"], 3.into());
    let text = toml::to_string(&table).unwrap();
    Scenario::from_toml_str(&text, Path::new("fig5b-small.toml")).expect("still valid");
    write(dir, "fig5b-small.toml", &text)
}

#[test]
fn shipped_phase_diagram_three_shards_and_two_thread_counts_give_the_single_run_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = shrunk_fig5b(tmp.path());
    let single = single_run(&scenario, tmp.path());
    assert_eq!(single.iter().filter(|&&b| b == b'\n').count(), 1 + 12);

    let three = tmp.path().join("three");
    ok(flatscape(&[
        "sweep",
        "plan",
        s(&scenario),
        "--out",
        s(&three),
    ]));
    for k in 1..=3 {
        assert_eq!(computed(&run_shard(&scenario, &three, k, 3, 2)), 4);
    }
    assert_eq!(merge(&three), single, "3 shards + merge differ from run");
    for fig in ["sweep_flatness.svg", "sweep_search_time.svg"] {
        assert_eq!(
            fs::read(three.join(fig)).unwrap(),
            fs::read(tmp.path().join("single").join(fig)).unwrap(),
            "{fig} differs"
        );
    }

    let mut by_threads = Vec::new();
    for threads in [1, 2] {
        let dir = tmp.path().join(format!("threads{threads}"));
        for k in 1..=2 {
            run_shard(&scenario, &dir, k, 2, threads);
        }
        by_threads.push(merge(&dir));
    }
    assert_eq!(by_threads[0], by_threads[1], "--threads 1 and 2 differ");
    assert_eq!(by_threads[0], single);
}

#[test]
fn run_point_gives_the_rows_of_the_whole_run_bit_for_bit_with_fp_per_delta_s() {
    let text = r#"name = "ds"
seed = 4
[landscape]
kind = "valley2d"
epsilon = 0.001
lambda = [8.0, -2.0, 1.0]
[noise]
kind = "hessian"
eta = 0.01
sigma = 0.2
[fokker_planck]
x = { min = -1.6, max = 1.6, cells = 64 }
y = { min = -0.6, max = 0.6, cells = 24 }
steady = true
[sampler]
kind = "sgd"
walkers = 32
steps = 400
burn_in = 200
start = [1.5, 1.5]
stored_trajectories = 0
[sweep]
delta_s = { min = 0.0002, max = 0.004, points = 3, log = true }
eta = { min = 0.005, max = 0.02, points = 2, log = true }
"#;
    let sc = Scenario::from_toml_str(text, Path::new("ds.toml")).unwrap();
    let whole = sweep::run(&sc, &NoProgress).unwrap();
    assert_eq!(whole.rows.len(), 6);
    for (id, row) in whole.rows.iter().enumerate() {
        let one = sweep::run_point(&sc, id).unwrap();
        assert_eq!(format!("{one:?}"), format!("{row:?}"), "point {id}");
        assert!(one.fp_mean_abs_x.is_some() && one.theory_x_ss.is_some());
    }
    // The FP values are those of Δ_S only: equal across η at the same Δ_S.
    assert_eq!(whole.rows[1].fp_mean_abs_x, whole.rows[4].fp_mean_abs_x);
    // Each point has its own seed, derived from (seed, σ, η) only.
    let plan = SweepPlan::new(&sc).unwrap();
    let seeds: std::collections::BTreeSet<u64> = plan.specs().iter().map(|p| p.seed).collect();
    assert_eq!(seeds.len(), 6);
    assert!(sweep::run_point(&sc, 6).is_err());
}

#[test]
fn a_killed_shard_reruns_only_its_missing_points_and_a_truncated_file_is_recomputed() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(tmp.path(), "k.toml", &small_sweep("kill", 3, 20000, 6, 4));
    let dir = tmp.path().join("sweep");
    ok(flatscape(&[
        "sweep",
        "plan",
        s(&scenario),
        "--out",
        s(&dir),
    ]));
    let mut child = Command::new(BIN)
        .args([
            "sweep",
            "run",
            s(&scenario),
            "--out",
            s(&dir),
            "--threads",
            "1",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let clock = Instant::now();
    while point_files(&dir).len() < 3 && clock.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = point_files(&dir).len();
    assert!(
        (3..24).contains(&done),
        "the shard should be killed part-way: {done} of 24 points done"
    );
    let rerun = run_shard(&scenario, &dir, 1, 1, 2);
    assert_eq!(computed(&rerun), 24 - done, "{rerun}");
    assert!(rerun.contains(&format!("{done} already done")), "{rerun}");
    let merged = merge(&dir);
    assert_eq!(merged, single_run(&scenario, tmp.path()));

    // Truncate one point file: detected, recomputed, same table.
    let victim = &point_files(&dir)[5];
    let bytes = fs::read(victim).unwrap();
    fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let again = run_shard(&scenario, &dir, 1, 1, 2);
    assert_eq!(computed(&again), 1, "{again}");
    assert!(again.contains("(1 of them over corrupt files)"), "{again}");
    assert_eq!(merge(&dir), merged);
}

#[test]
fn a_foreign_manifest_exits_2_and_missing_points_exit_1_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write(tmp.path(), "a.toml", &small_sweep("grid", 1, 200, 3, 2));
    let b = write(tmp.path(), "b.toml", &small_sweep("grid", 2, 200, 3, 2));
    let dir = tmp.path().join("sweep");
    ok(flatscape(&["sweep", "plan", s(&a), "--out", s(&dir)]));
    for args in [
        vec!["sweep", "run", s(&b), "--out", s(&dir)],
        vec!["sweep", "plan", s(&b), "--out", s(&dir)],
    ] {
        let out = flatscape(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("belongs to another scenario"), "{err}");
        assert!(err.contains("b.toml"), "{err}");
    }
    assert!(
        point_files(&dir).is_empty(),
        "nothing computed on a mismatch"
    );

    run_shard(&a, &dir, 1, 1, 2);
    for id in [1, 4] {
        fs::remove_file(dir.join(format!("points/0000/{id:07}.json"))).unwrap();
    }
    let out = flatscape(&["sweep", "merge", s(&dir)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("2 of 6 points missing: ids 1, 4"), "{err}");
    assert!(!dir.join("sweep.csv").exists());

    let bad = flatscape(&["sweep", "run", s(&a), "--out", s(&dir), "--shard", "4/3"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_slurm_script_body_runs_with_hand_set_array_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(
        tmp.path(),
        "slurm.toml",
        &small_sweep("slurm", 8, 400, 3, 3),
    );
    let dir = tmp.path().join("sweep");
    for task in 0..3 {
        let out = Command::new("bash")
            .arg("scripts/slurm/sweep.sbatch")
            .args([s(&scenario), s(&dir)])
            .env("FLATSCAPE", BIN)
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .unwrap();
        let text = ok(out);
        assert!(text.contains(&format!("shard {}/3", task + 1)), "{text}");
    }
    let out = Command::new("bash")
        .arg("scripts/slurm/merge.sbatch")
        .arg(s(&dir))
        .env("FLATSCAPE", BIN)
        .output()
        .unwrap();
    ok(out);
    assert_eq!(
        fs::read(dir.join("sweep.csv")).unwrap(),
        single_run(&scenario, tmp.path())
    );
}
