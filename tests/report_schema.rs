//! Issue 16: the JSON report's schema, pinned. Fixed runs of the real binary against the
//! built-in demo target (a PASS run on a shared store; a FAIL run on per-worker memory sessions
//! with a restart; the FAIL run again as two shards and `merge`d) are reduced to their *shape*,
//! one `path: type` line per field, and compared with `tests/fixtures/schema-*.txt`.
//!
//! The shape:
//! - `a.b` is field `b` of object `a`; `a[]` the elements of array `a` (the union of their
//!   shapes); `m{}` the values of a map `m` (an object keyed by data, see [`MAPS`]).
//! - Types: `string`, `bool`, `integer`, `float` (serde writes every f64 with a `.` or an
//!   exponent, so a float field is `float` even when its value is whole), `null`, `object`,
//!   `array`; `absent`: some objects at that path lack the key (array elements that differ, or
//!   an optional field, see [`DECLARED`]). `a[]: (no elements)`: the array was empty.
//! - Fields a run can legitimately give either of two ways (an `Option` that is null or not,
//!   depending on which observation came first) are written as declared in [`DECLARED`]
//!   whenever what the run gave is one of the declared types, so the shape does not depend on
//!   timing. Anything else (a new field, a renamed one, a type that changed) shows as a diff.
//!
//! After an intended change of the report: `SESSCHECK_BLESS=1 cargo test --test report_schema`
//! rewrites the fixtures (review the diff, then commit them).
//!
//! The load is bounded: few users, a think time, a short `duration`, `total_requests` and
//! `max_duration` as caps, and every run of the binary is killed after [`RUN_LIMIT`]. Traffic
//! goes only to 127.0.0.1 (the built-in target on a free loopback port).
mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Generous: the runs take 3-6 s, but the machine may be busy.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// A run of the built-in target that the scenario spawns, with `users` users
/// for `duration`, then `tail` (restart and expectations).
fn demo_run(
    name: &str,
    workers: u32,
    store: &str,
    users: u32,
    duration: &str,
    tail: &str,
) -> String {
    format!(
        r#"name = "{name}"
[target]
url = "http://127.0.0.1:1"
spawn = {{ builtin = {{ workers = {workers}, store = "{store}" }} }}
ready = {{ path = "/health", timeout = "60s" }}
{LOGIN}
[load]
users = {users}
duration = "{duration}"
total_requests = 20000
max_duration = "60s"
requests = ["/dashboard", "/"]
think_time = "20ms"
connection = "new"
loading_timeout = "10s"
{tail}"#
    )
}

/// Healthy: 4 workers sharing the session store, 3 users for 2 s. Must pass.
fn pass_scenario() -> String {
    demo_run(
        "schema-pass",
        4,
        "shared",
        3,
        "2s",
        r#"
[expect]
min_distinct_pids = 2
auth_persistence = 1.0
max_logouts = 0
max_p99_ms = 5000
"#,
    )
}

/// The planted fault: 2 workers each keeping sessions in their own memory (logouts), and a
/// supervisor restart at 2 s that loses them all (a `restarts[]` entry). Must fail. The
/// recovery timeout outlasts the run, so no user is judged "never recovered" (that
/// `infinite_loading` example has another shape) whatever the timing.
fn fail_scenario() -> String {
    demo_run(
        "schema-fail",
        2,
        "memory",
        4,
        "5s",
        r#"
[restart]
at = "2s"
method = "supervisor"
count = 1
recovery_timeout = "10s"

[expect]
min_distinct_pids = 2
auth_persistence = 1.0
max_logouts = 0
max_restart_logouts = 0
max_infinite_loading = 0
max_p99_ms = 5000
max_downtime_s = 60
"#,
    )
}

/// Objects keyed by data (worker identities, phase names), not by field names: their values
/// are collapsed into `path{}` of the declared type (an empty map has the same shape).
const MAPS: &[(&str, &str)] = &[
    // Worker identity ("17", "web-2:17") → answers carrying it.
    ("workers.pids", "integer"),
    // The same per timeline bucket (empty in a bucket where no probe was answered).
    ("timeline[].pids", "integer"),
    // Phase name → server log lines matching the interrupted pattern (empty without any).
    ("server_log.by_phase", "integer"),
    // Phase name → that phase's latency histogram (base64).
    ("histograms.phases", "string"),
];

/// Fields whose presence or null-ness depends on the run's timing, not on the report's
/// schema: written with these types whenever the run gave a subset of them.
const DECLARED: &[(&str, &str)] = &[
    // Option<String>: why the run was cut short (a restart that failed); null otherwise.
    ("aborted", "null|string"),
    // Option<String>: how sesscheck started the target; null when it did not.
    ("target.spawned", "null|string"),
    // Option<f64>: until the target answered again; null when it never did.
    ("restarts[].downtime_s", "float|null"),
    // Skipped when None: until every worker `ready.min_workers` waits for had answered;
    // absent when not waited for or when they did not all answer (issue 15). A busy machine
    // decides which, and a merged report can hold restarts with and without it.
    ("restarts[].all_workers_s", "absent|float"),
    // Option<String>: the first matching server log line, if any.
    ("server_log.example", "null|string"),
    // A finding's example describes one observation (detect::describe): its Options are null
    // or not depending on which observation came first. `status`: null without an HTTP
    // answer (connect or transport failure).
    ("findings[].example.status", "integer|null"),
    // Which worker answered: known from probes (and `[probe] worker_header`), null on pages.
    ("findings[].example.worker", "null|string"),
    // Whether it was logged in: null when the answer did not tell.
    ("findings[].example.authenticated", "bool|null"),
    // Why the request failed, if it did: an enum {kind, detail} whose detail differs by
    // variant; opaque (see OPAQUE).
    ("findings[].example.failure", "null|object"),
];

/// Paths whose inside is not pinned (only their declared type above).
const OPAQUE: &[&str] = &["findings[].example.failure"];

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `a.b.c` → `a.b`, `a[]` → `a`, `m{}` → `m`, `a` → `` (the root).
fn parent_of(path: &str) -> &str {
    if let Some(p) = path.strip_suffix("[]").or_else(|| path.strip_suffix("{}")) {
        return p;
    }
    path.rfind('.').map_or("", |i| &path[..i])
}

#[derive(Default)]
struct Shape {
    /// Path → the types seen there.
    types: BTreeMap<String, BTreeSet<&'static str>>,
    /// Object path → how many objects were seen there.
    objects: BTreeMap<String, usize>,
    /// Field path → in how many of its parent's objects it was present.
    present: BTreeMap<String, usize>,
}

impl Shape {
    fn walk(&mut self, v: &Value, path: &str) {
        self.types
            .entry(path.to_string())
            .or_default()
            .insert(type_of(v));
        let is_map = MAPS.iter().any(|(m, _)| *m == path);
        match v {
            Value::Object(m) if is_map => {
                for x in m.values() {
                    self.walk(x, &format!("{path}{{}}"));
                }
            }
            Value::Object(m) => {
                *self.objects.entry(path.to_string()).or_default() += 1;
                for (k, x) in m {
                    // A key that is data (a PID, a status code) would make the shape differ
                    // from run to run: such an object belongs in MAPS.
                    assert!(
                        !k.is_empty() && !k.chars().all(|c| c.is_ascii_digit()),
                        "the object at `{path}` is keyed by data (key {k:?}): add it to MAPS"
                    );
                    let child = join(path, k);
                    *self.present.entry(child.clone()).or_default() += 1;
                    self.walk(x, &child);
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.walk(x, &format!("{path}[]"));
                }
            }
            _ => {}
        }
    }

    /// The sorted `path: type` lines.
    fn lines(mut self) -> Vec<String> {
        // Fields missing from some of the objects at their path.
        for (child, n) in &self.present {
            if *n < self.objects[parent_of(child)] {
                self.types.get_mut(child).unwrap().insert("absent");
            }
        }
        for opaque in OPAQUE {
            let inside = |p: &String| {
                p.strip_prefix(opaque)
                    .is_some_and(|rest| rest.starts_with(['.', '[', '{']))
            };
            self.types.retain(|p, _| !inside(p));
        }
        let declared = DECLARED
            .iter()
            .map(|(p, t)| (p.to_string(), *t))
            .chain(MAPS.iter().map(|(m, t)| (format!("{m}{{}}"), *t)));
        for (path, allowed) in declared {
            // Only where the object holding it was seen (no findings: no finding fields).
            if !self.types.contains_key(parent_of(&path)) {
                continue;
            }
            let allowed: BTreeSet<&'static str> = allowed.split('|').collect();
            let seen = self.types.get(&path).cloned().unwrap_or_else(|| {
                if path.ends_with("{}") {
                    BTreeSet::new() // an empty map
                } else {
                    BTreeSet::from(["absent"])
                }
            });
            let shown = if seen.is_subset(&allowed) {
                allowed
            } else {
                seen
            };
            self.types.insert(path, shown);
        }
        let mut lines = Vec::new();
        for (path, types) in &self.types {
            if path.is_empty() {
                continue; // the root object
            }
            let types: Vec<&str> = types.iter().copied().collect();
            lines.push(format!("{path}: {}", types.join("|")));
            if types.contains(&"array") && !self.types.contains_key(&format!("{path}[]")) {
                lines.push(format!("{path}[]: (no elements)"));
            }
        }
        lines.sort();
        lines
    }
}

fn shape_of(report: &Value) -> Vec<String> {
    let mut s = Shape::default();
    s.walk(report, "");
    s.lines()
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Compare `shape` with the fixture `name`, or rewrite it under `SESSCHECK_BLESS=1`.
fn assert_shape(name: &str, what: &str, shape: &[String]) {
    let path = fixture_path(name);
    let bless = std::env::var("SESSCHECK_BLESS").is_ok_and(|v| v == "1");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let pinned: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let got: Vec<&str> = shape.iter().map(String::as_str).collect();
    if pinned == got {
        return;
    }
    if bless {
        let header = format!(
            "# The shape of sesscheck's JSON report of {what} (tests/report_schema.rs).\n\
             # One line per field, `path: type`: `a[]` = the elements of array a, `m{{}}` = the\n\
             # values of map m; `absent` = not in every object at that path.\n\
             # Regenerate after an intended change: SESSCHECK_BLESS=1 cargo test --test report_schema\n"
        );
        std::fs::write(&path, format!("{header}{}\n", shape.join("\n"))).unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    // Both are sorted and free of duplicates: a merge walk is the diff.
    let (mut i, mut j) = (0, 0);
    let mut diff = Vec::new();
    while i < pinned.len() || j < got.len() {
        match (pinned.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            (Some(a), Some(b)) if a < b => {
                diff.push(format!("- {a}"));
                i += 1
            }
            (Some(a), None) => {
                diff.push(format!("- {a}"));
                i += 1
            }
            (_, Some(b)) => {
                diff.push(format!("+ {b}"));
                j += 1
            }
            (None, None) => unreachable!(),
        }
    }
    panic!(
        "the JSON report of {what} changed shape (- tests/fixtures/{name}, + this run):\n{}\n\
         If the change is intended, regenerate the fixture:\n  \
         SESSCHECK_BLESS=1 cargo test --test report_schema\nand commit it with the change.",
        if text.is_empty() {
            format!("(no fixture at {})", path.display())
        } else {
            diff.join("\n")
        }
    );
}

/// `sesscheck run` of `scenario` on a free loopback port, its reports in a temp dir.
fn run(dir: &TempDir, name: &str, scenario: &str, extra: &[&str]) -> (Outcome, PathBuf) {
    let path = write_scenario(dir, &format!("{name}.toml"), scenario);
    let url = format!("http://127.0.0.1:{}", free_port());
    let reports = dir.path().join(format!("{name}-reports"));
    let rd = reports.to_string_lossy().into_owned();
    let mut args = vec!["run", &path, "--url", &url, "--report-dir", &rd, "--quiet"];
    args.extend_from_slice(extra);
    let out = sesscheck(&args, &[], &reports, RUN_LIMIT);
    let json = out
        .files
        .iter()
        .map(|(p, _)| p.clone())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no JSON report: {}", out.explain()));
    (out, json)
}

fn report(out: &Outcome) -> &Value {
    out.report
        .as_ref()
        .unwrap_or_else(|| panic!("no readable JSON report: {}", out.explain()))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
}

/// The reduction itself, on a made-up report: maps collapse, array elements unite, a field
/// missing from some elements is `absent`, declared Options read the same null or not, the
/// inside of an opaque field is dropped, a declared field that is missing altogether shows as
/// `absent` (here `downtime_s`, `authenticated`, `worker`: a real report always has them).
#[test]
fn shape_rules() {
    let shape = |v: Value| shape_of(&v).join("\n");
    let a = shape(serde_json::json!({
        "aborted": null,
        "duration_s": 2.0,
        "workers": { "pids": { "17": 3, "18": 4 } },
        "server_log": { "by_phase": {}, "example": null },
        "restarts": [{ "at_s": 1.5, "all_workers_s": 0.2 }, { "at_s": 3.0 }],
        "findings": [{ "count": 2, "example": { "status": null, "failure": { "kind": "timeout", "detail": "answer" } } }],
        "phases": [],
    }));
    let b = shape(serde_json::json!({
        "aborted": "restart failed",
        "duration_s": 2.5,
        "workers": { "pids": { "99": 1 } },
        "server_log": { "by_phase": { "load": 1 }, "example": "line" },
        "restarts": [{ "at_s": 1.0 }],
        "findings": [{ "count": 1, "example": { "status": 200, "failure": null } }],
        "phases": [],
    }));
    assert_eq!(a, b);
    let want = "aborted: null|string\n\
                duration_s: float\n\
                findings: array\n\
                findings[].count: integer\n\
                findings[].example.authenticated: absent\n\
                findings[].example.failure: null|object\n\
                findings[].example.status: integer|null\n\
                findings[].example.worker: absent\n\
                findings[].example: object\n\
                findings[]: object\n\
                phases: array\n\
                phases[]: (no elements)\n\
                restarts: array\n\
                restarts[].all_workers_s: absent|float\n\
                restarts[].at_s: float\n\
                restarts[].downtime_s: absent\n\
                restarts[]: object\n\
                server_log.by_phase: object\n\
                server_log.by_phase{}: integer\n\
                server_log.example: null|string\n\
                server_log: object\n\
                workers.pids: object\n\
                workers.pids{}: integer\n\
                workers: object";
    assert_eq!(a, want);
    // What is not declared is pinned as it is: an integer is not a float, a missing field is
    // missing, a declared field of another type shows that type.
    let c = shape(serde_json::json!({ "aborted": 3, "duration_s": 2, "findings": [] }));
    assert_eq!(
        c,
        "aborted: integer\nduration_s: integer\nfindings: array\nfindings[]: (no elements)"
    );
    // An object keyed by data that is not in MAPS is refused (its shape would vary).
    let keyed =
        std::panic::catch_unwind(|| shape_of(&serde_json::json!({ "codes": { "200": 1 } })));
    assert!(keyed.is_err());
}

#[test]
fn pass_report_has_the_pinned_shape() {
    let dir = TempDir::new("schema-pass");
    let (out, _) = run(&dir, "pass", &pass_scenario(), &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = report(&out);
    assert_eq!(r["verdict"], "pass", "{}", out.explain());
    assert!(arr(&r["findings"]).is_empty(), "{}", out.explain());
    assert_shape("schema-pass.txt", "a fixed PASS run", &shape_of(r));
}

#[test]
fn fail_report_has_the_pinned_shape() {
    let dir = TempDir::new("schema-fail");
    let (out, _) = run(&dir, "fail", &fail_scenario(), &[]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let r = report(&out);
    assert_eq!(r["verdict"], "fail", "{}", out.explain());
    assert!(
        out.finding_kinds().contains(&"logout".to_string()),
        "{}",
        out.explain()
    );
    assert_eq!(arr(&r["restarts"]).len(), 1, "{}", out.explain());
    assert_shape("schema-fail.txt", "a fixed FAIL run", &shape_of(r));
}

/// Finding kind → (count, earliest first_at_s, severity is error in any).
fn findings_by_kind(reports: &[&Value]) -> BTreeMap<String, (u64, f64, bool)> {
    let mut by = BTreeMap::new();
    for r in reports {
        for x in arr(&r["findings"]) {
            let e = by
                .entry(x["kind"].as_str().unwrap().to_string())
                .or_insert((0, f64::INFINITY, false));
            e.0 += u(&x["count"]);
            e.1 = e.1.min(f(&x["first_at_s"]));
            e.2 |= x["severity"] == "error";
        }
    }
    by
}

/// Sum of a count over the reports.
fn sum(reports: &[&Value], pointer: &str) -> u64 {
    reports
        .iter()
        .map(|r| u(r.pointer(pointer).unwrap_or(&Value::Null)))
        .sum()
}

/// Phase name → requests, errors, logouts summed.
fn phase_counts(reports: &[&Value]) -> BTreeMap<String, [u64; 3]> {
    let mut by: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for r in reports {
        for p in arr(&r["phases"]) {
            let e = by
                .entry(p["name"].as_str().unwrap().to_string())
                .or_default();
            e[0] += u(&p["requests"]);
            e[1] += u(&p["errors"]);
            e[2] += u(&p["logouts"]);
        }
    }
    by
}

/// Worker identity → answers, summed.
fn pids(reports: &[&Value]) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for r in reports {
        for (k, n) in r["workers"]["pids"].as_object().unwrap() {
            *by.entry(k.clone()).or_default() += u(n);
        }
    }
    by
}

#[test]
fn merged_shards_agree_with_the_shard_reports() {
    let dir = TempDir::new("schema-merge");
    let scenario = fail_scenario();
    // Each shard spawns (and restarts) its own target on its own port, side by side.
    let runs: Vec<_> = ["1/2", "2/2"]
        .into_iter()
        .map(|shard| {
            let (dir, scenario) = (TempDir::new("schema-shard"), scenario.clone());
            std::thread::spawn(move || {
                let name = format!("shard{}", &shard[..1]);
                let (out, json) = run(&dir, &name, &scenario, &["--shard", shard]);
                (out, json, dir)
            })
        })
        .collect();
    let shards: Vec<(Outcome, PathBuf, TempDir)> =
        runs.into_iter().map(|h| h.join().unwrap()).collect();
    for (out, _, _) in &shards {
        // The planted fault fails each shard on its own.
        assert_eq!(out.code, 1, "{}", out.explain());
        assert_eq!(report(out)["verdict"], "fail", "{}", out.explain());
    }
    let rs: Vec<&Value> = shards.iter().map(|(o, _, _)| report(o)).collect();
    assert_eq!(rs[0]["shard"], "1/2");
    assert_eq!(rs[1]["shard"], "2/2");
    // 4 users: 2 per shard, each logged in at least once.
    for r in &rs {
        assert!(u(&r["logins"]["ok"]) >= 2, "{}", r["logins"]);
    }

    let merged_dir = dir.path().join("merged");
    std::fs::create_dir_all(&merged_dir).unwrap();
    let merged_path = merged_dir.join("merged.json");
    let out = sesscheck(
        &[
            "merge",
            shards[0].1.to_str().unwrap(),
            shards[1].1.to_str().unwrap(),
            "--out",
            merged_path.to_str().unwrap(),
        ],
        &[],
        &merged_dir,
        RUN_LIMIT,
    );
    let m = report(&out);
    let ctx = || format!("merged: {}\nshard 1: {}\nshard 2: {}", m, rs[0], rs[1]);

    // The verdict: a failing shard fails the merge (exit 1), as does a failed expectation.
    let any_shard_failed = rs.iter().any(|r| r["verdict"] == "fail");
    let any_check_failed = arr(&m["expectations"]).iter().any(|c| c["passed"] == false);
    let verdict = if any_shard_failed || any_check_failed {
        "fail"
    } else {
        "pass"
    };
    assert_eq!(m["verdict"], verdict, "{}", ctx());
    assert_eq!(
        out.code,
        if verdict == "pass" { 0 } else { 1 },
        "{}",
        out.explain()
    );
    assert_eq!(m["scenario"], rs[0]["scenario"]);
    assert_eq!(m["shard"], "merged: 1/2, 2/2");

    // Counts: the shards' sums.
    for pointer in [
        "/requests/total",
        "/requests/ok",
        "/requests/errors",
        "/auth/probes",
        "/auth/authenticated",
        "/auth/unauthenticated",
        "/logins/attempts",
        "/logins/ok",
        "/logins/failed",
        "/logins/logouts",
        "/server_log/matches",
    ] {
        assert_eq!(
            u(m.pointer(pointer).unwrap()),
            sum(&rs, pointer),
            "{pointer}: {}",
            ctx()
        );
    }
    let per_second: f64 = rs.iter().map(|r| f(&r["requests"]["per_second"])).sum();
    assert!(
        (f(&m["requests"]["per_second"]) - per_second).abs() < 0.01,
        "{}",
        ctx()
    );
    assert_eq!(phase_counts(&[m]), phase_counts(&rs), "{}", ctx());
    let timeline =
        |r: &Value| -> u64 { arr(&r["timeline"]).iter().map(|b| u(&b["requests"])).sum() };
    assert_eq!(
        timeline(m),
        rs.iter().map(|r| timeline(r)).sum::<u64>(),
        "{}",
        ctx()
    );
    // Workers: the union, answers summed.
    let want_pids = pids(&rs);
    assert_eq!(pids(&[m]), want_pids, "{}", ctx());
    assert_eq!(u(&m["workers"]["distinct_pids"]), want_pids.len() as u64);
    // Restarts: every shard's, in time order.
    let restarts = arr(&m["restarts"]);
    assert_eq!(
        restarts.len(),
        rs.iter().map(|r| arr(&r["restarts"]).len()).sum::<usize>(),
        "{}",
        ctx()
    );
    assert!(restarts
        .windows(2)
        .all(|w| f(&w[0]["at_s"]) <= f(&w[1]["at_s"])));
    // Run time: the longest shard's (they ran side by side).
    let longest = rs.iter().map(|r| f(&r["duration_s"])).fold(0.0, f64::max);
    assert_eq!(f(&m["duration_s"]), longest);

    // Findings: the same kinds, counts summed, the earliest occurrence.
    let want = findings_by_kind(&rs);
    let got = findings_by_kind(&[m]);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{}",
        ctx()
    );
    for (kind, (count, first, error)) in &want {
        let (c, t, e) = got[kind];
        assert_eq!(c, *count, "{kind} count: {}", ctx());
        assert_eq!(t, *first, "{kind} first_at_s: {}", ctx());
        assert!(e || !error, "{kind} severity: {}", ctx());
    }
    assert_eq!(
        arr(&m["findings"]).len(),
        want.len(),
        "one finding per kind"
    );
    // Expectations: every shard's, recomputed on the sums; a count limit fails the merge
    // whenever it failed a shard.
    let names = |r: &Value| -> BTreeSet<String> {
        arr(&r["expectations"])
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(m),
        names(rs[0]).union(&names(rs[1])).cloned().collect()
    );
    let check = |r: &Value, name: &str| -> Option<Value> {
        arr(&r["expectations"])
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    };
    for (name, kind) in [
        ("max_logouts", "logout"),
        ("max_restart_logouts", "restart_logout"),
    ] {
        let c = check(m, name).unwrap_or_else(|| panic!("no {name}: {}", ctx()));
        let count = want.get(kind).map_or(0, |k| k.0);
        assert_eq!(f(&c["actual"]), count as f64, "{name}: {}", ctx());
        let shard_failed = rs
            .iter()
            .any(|r| check(r, name).is_some_and(|c| c["passed"] == false));
        assert!(
            !(shard_failed && c["passed"] == true),
            "{name} failed a shard but passed the merge: {}",
            ctx()
        );
        for r in &rs {
            assert_eq!(check(r, name).unwrap()["limit"], c["limit"], "{}", ctx());
        }
    }
    // Latency from the exactly merged histograms: the max is the shards' max; each percentile
    // of the mixture lies between the shards' own.
    let lat = |r: &Value, k: &str| f(&r["latency_ms"][k]);
    assert_eq!(
        lat(m, "max"),
        rs.iter().map(|r| lat(r, "max")).fold(0.0, f64::max),
        "{}",
        ctx()
    );
    for k in ["p50", "p90", "p99"] {
        let lo = rs.iter().map(|r| lat(r, k)).fold(f64::INFINITY, f64::min);
        let hi = rs.iter().map(|r| lat(r, k)).fold(0.0, f64::max);
        assert!(
            (lo..=hi).contains(&lat(m, k)),
            "{k} {} not within the shards' {lo}..={hi}",
            lat(m, k)
        );
    }

    assert_shape(
        "schema-merged.txt",
        "the FAIL run as two shards, merged",
        &shape_of(m),
    );
}
