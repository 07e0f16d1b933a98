//! The stages' imports point one way: a top-level module of the library may use only modules
//! declared before it in `src/lib.rs` (see the map there). A `crate::x` path that names a later
//! module fails this test with the file and line, so a backwards import is caught at once.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules, in the order `src/lib.rs` declares them.
fn layers() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source files of a top-level module: its folder's files, or its one file.
fn stage_files(stage: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let dir = src().join(stage);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    } else {
        files.push(src().join(format!("{stage}.rs")));
    }
    files
}

/// Every `crate::name` used in the code of `file` (comments left out), with its line.
fn crate_paths(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, name));
        }
    }
    found
}

#[test]
fn imports_only_point_down_the_stages() {
    let layers = layers();
    assert!(layers.len() >= 10, "lib.rs declares {layers:?}");
    let mut wrong = Vec::new();
    for (own_rank, own) in layers.iter().enumerate() {
        for file in stage_files(own) {
            for (line, used) in crate_paths(&file) {
                let Some(rank) = layers.iter().position(|l| *l == used) else {
                    wrong.push(format!(
                        "{}:{line}: crate::{used} is no module of lib.rs",
                        file.display()
                    ));
                    continue;
                };
                if rank > own_rank {
                    wrong.push(format!(
                        "{}:{line}: `{own}` uses crate::{used}, a later stage",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the stage order:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_demo_target_uses_nothing_of_the_checker() {
    let mut files = Vec::new();
    rust_files(&src().join("demo"), &mut files);
    assert!(files.len() > 3);
    for file in files {
        for (line, used) in crate_paths(&file) {
            assert_eq!(
                used,
                "demo",
                "{}:{line}: the demo uses crate::{used}",
                file.display()
            );
        }
    }
}

/// Below the scenario, stages get the plan lowered for them (`HttpPlan`, `LoadPlan`,
/// `DigestConfig`, `AuditConfig`), never the raw `Scenario`: only `scenario` itself, the
/// wiring (`run`) and the command line (`cli`) name it. Unit tests (after `#[cfg(test)]`) may
/// build a plan from a parsed scenario.
#[test]
fn only_the_wiring_names_the_scenario() {
    let allowed = ["scenario", "run", "cli"];
    let mut wrong = Vec::new();
    for own in layers().iter().filter(|l| !allowed.contains(&l.as_str())) {
        for file in stage_files(own) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                let code = line.split("//").next().unwrap_or("");
                let names_it = code.match_indices("Scenario").any(|(i, _)| {
                    let after = code[i + "Scenario".len()..].chars().next();
                    let before = code[..i].chars().next_back();
                    !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                if names_it {
                    wrong.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the raw Scenario below the plan:\n{}",
        wrong.join("\n")
    );
}
