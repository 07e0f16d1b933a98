//! examples/ci: the GitHub Actions and GitLab CI recipes parse and call the one gate script,
//! and the gate script passes a healthy run and fails a broken one, with the job summary.
mod common;
use common::{free_port, TempDir, BIN};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}");
    docs.remove(0)
}

fn calls_gate(script_line: &Yaml) -> bool {
    script_line
        .as_str()
        .is_some_and(|s| s.contains("bash examples/ci/gate.sh"))
}

#[test]
fn github_actions_recipe_runs_the_gate_and_keeps_the_reports() {
    let doc = load("examples/ci/github-actions.yml");
    let jobs = doc["jobs"].as_hash().expect("jobs");
    assert_eq!(jobs.len(), 1);
    let job = jobs.values().next().unwrap();
    let steps = job["steps"].as_vec().expect("steps");
    let gate = steps
        .iter()
        .position(|s| calls_gate(&s["run"]))
        .expect("a step runs gate.sh");
    // The upload and JUnit steps come after the gate and run even when it failed.
    let after: Vec<&Yaml> = steps[gate + 1..].iter().collect();
    let upload = after
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("reports uploaded");
    assert_eq!(upload["if"].as_str(), Some("always()"));
    assert_eq!(upload["with"]["path"].as_str(), Some("reports/"));
    let junit = after
        .iter()
        .find(|s| {
            s["with"]["report_paths"]
                .as_str()
                .is_some_and(|p| p.ends_with(".junit.xml"))
        })
        .expect("JUnit published");
    assert_eq!(junit["if"].as_str(), Some("always()"));
    assert_eq!(job["env"]["SESSCHECK_REPORT_DIR"].as_str(), Some("reports"));
}

#[test]
fn gitlab_recipe_runs_the_gate_and_reports_junit() {
    let doc = load("examples/ci/gitlab-ci.yml");
    let job = &doc["session-gate"];
    let script = job["script"].as_vec().expect("script");
    assert!(script.iter().any(calls_gate), "{script:?}");
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["when"].as_str(), Some("always"));
    assert_eq!(
        artifacts["reports"]["junit"].as_str(),
        Some("reports/*.junit.xml")
    );
    assert_eq!(
        job["variables"]["SESSCHECK_REPORT_DIR"].as_str(),
        Some("reports")
    );
}

/// gate.sh on a shipped scenario against the demo target: its exit code and job summary.
fn gate(scenario: &str) -> (i32, String, TempDir) {
    let dir = TempDir::new("gate");
    let summary = dir.path().join("summary.md");
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new("bash")
        .args(["examples/ci/gate.sh", scenario, "--url", &url, "--quiet"])
        .env("SESSCHECK", BIN)
        .env("SESSCHECK_REPORT_DIR", dir.reports())
        .env("SESSCHECK_DURATION", "2s")
        .env("SESSCHECK_USERS", "4")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&summary).unwrap_or_default();
    (out.status.code().unwrap_or(-1), text, dir)
}

#[test]
fn the_gate_passes_a_healthy_run_and_fails_a_broken_one() {
    let (code, summary, dir) = gate("scenarios/multiworker.toml");
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("multiworker"), "job summary: {summary:?}");
    assert!(std::fs::read_dir(dir.reports())
        .unwrap()
        .flatten()
        .any(|e| e.path().to_string_lossy().ends_with(".junit.xml")));
    let (code, summary, _dir) = gate("scenarios/multiworker-broken.toml");
    assert_eq!(code, 1, "{summary}");
    assert!(summary.contains("logout"), "job summary: {summary:?}");
}
