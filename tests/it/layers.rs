//! The layering of `src/` held by a test (docs/reference.md §8): every `crate::m` path in a
//! top-level module points to a module of a strictly lower layer, so imports run one way:
//! config → landscape → noise → {fp, theory, sampler, network} → scenario → study → report → app.
//! The four solvers share a layer and may not import each other (a study composes them).
//! This is the check a Cargo crate split would give, with finer layers than two crates.

use std::collections::BTreeSet;
use std::path::Path;

/// Layer rank of each top-level module of `src/`.
const LAYERS: &[(&str, u32)] = &[
    ("config", 0),
    ("landscape", 1),
    ("noise", 2),
    ("fp", 3),
    ("theory", 3),
    ("sampler", 3),
    ("network", 3),
    ("scenario", 4),
    ("study", 5),
    ("report", 6),
    ("app", 7),
];

fn rank(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

/// Every top-level module named after `crate::` in `text`, including the members of a
/// `crate::{a, b::c}` group.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn crate_paths_are_found_in_groups_and_paths() {
    let text = "use crate::config::{Check, Invalid};\nuse crate::{fp, theory::TheoryPlan};\nlet a = crate::noise::Noise::None;";
    let names: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(names, ["config", "fp", "noise", "theory"]);
}

#[test]
fn every_module_imports_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let own = rank(&module).unwrap_or_else(|| {
            panic!("src/{module} is not in the layer table of tests/it/layers.rs: give it a layer")
        });
        let text = std::fs::read_to_string(file).unwrap();
        for used in crate_paths(&text) {
            if used == module {
                continue;
            }
            checked += 1;
            match rank(&used) {
                Some(r) if r < own => {}
                Some(r) => violations.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {r})",
                    rel.display()
                )),
                None => {} // a crate-root item (e.g. a re-export), not a module
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} cross-module paths found: parser broken?"
    );
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}
