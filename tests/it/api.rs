//! The library API without TOML: the paper's Hessian scenario built in Rust code gives the same
//! summary as `scenarios/hessian-valley.toml`, and the output folder is one complete run.

use std::path::Path;

use flatscape::config::{AxisConfig, NoProgress};
use flatscape::fp::FokkerPlanckConfig;
use flatscape::landscape::{Landscape, Valley2d};
use flatscape::noise::Noise;
use flatscape::scenario::{Scenario, ScenarioSpec};
use flatscape::study;
use flatscape::theory::TheoryConfig;

/// summary.json without the wall-clock timings.
fn without_timings(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.ends_with("seconds") && k != "walker_steps_per_second")
                .map(|(k, v)| (k, without_timings(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn hessian_scenario_built_in_code_matches_the_toml_run() {
    let mut spec = ScenarioSpec::new(
        "hessian-valley",
        Landscape::Valley2d(Valley2d::paper()),
        Noise::Hessian {
            eta: 0.01,
            sigma: 0.2,
            power: 2.0,
        },
    );
    spec.seed = 7;
    spec.fokker_planck = Some(FokkerPlanckConfig::steady(
        AxisConfig::new(-1.6, 1.6, 640),
        AxisConfig::new(-0.6, 0.6, 240),
    ));
    spec.theory = Some(TheoryConfig::default());
    let in_code = Scenario::from_spec(spec, Path::new("in-code")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let from_file = Scenario::load(&root.join("scenarios/hessian-valley.toml")).unwrap();

    let a = study::run(&in_code, &NoProgress).unwrap();
    let b = study::run(&from_file, &NoProgress).unwrap();
    let (ja, jb) = (
        without_timings(serde_json::to_value(&a.summary).unwrap()),
        without_timings(serde_json::to_value(&b.summary).unwrap()),
    );
    assert_eq!(ja, jb);
    assert_eq!(
        a.fp.as_ref().unwrap().density,
        b.fp.as_ref().unwrap().density
    );
    let fp = a.summary.fokker_planck.as_ref().unwrap();
    eprintln!(
        "in code: mode |x| = {}, x_ss (reduced) = {}",
        fp.mode_abs_x,
        a.summary.theory.as_ref().unwrap().x_ss
    );
    // The README's numbers for this scenario: the mode sits near the flat region |x| ≈ 0.85.
    approx::assert_abs_diff_eq!(fp.mode_abs_x, 0.8525, epsilon = 5e-3);
    approx::assert_relative_eq!(fp.mass, 1.0, max_relative = 1e-9);
}

#[test]
fn a_spec_serialises_to_toml_that_validates_to_the_same_spec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let sc = Scenario::load(&path).unwrap();
        let again = Scenario::from_toml_str(&sc.to_toml(), &path).unwrap();
        assert_eq!(sc.spec(), again.spec(), "{}", path.display());
    }
}
