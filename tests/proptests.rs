//! Property tests: the scenario parser and the probe JSON reader must answer every input
//! with a value or an error, never a panic. Case counts are modest so they run in seconds.

use proptest::prelude::*;
use sesscheck::load::engine::read_probe;
use sesscheck::scenario::Scenario;

const VALID: &str = r#"
name = "p"
description = "property test"
[target]
url = "http://127.0.0.1:8765"
spawn = { builtin = { workers = 2, store = "shared" } }
ready = { path = "/health", timeout = "5s" }
[login]
path = "/login"
fields = { username = "user{user}", password = "${SESSCHECK_PROP_PW:-x}" }
success = { redirect_to = "/dashboard" }
csrf = { page = "/login", field = "csrf_token" }
[probe]
path = "/debug/session"
pid = "/worker/pid"
authenticated = "/authenticated"
[load]
users = 3
duration = "2s"
requests = ["/dashboard", "/"]
connection = "new"
max_duration = "1m"
[restart]
at = "1s"
method = { command = "true", timeout = "2s" }
[expect]
min_distinct_pids = 2
auth_persistence = 1.0
"#;

/// 256 cases, unless PROPTEST_CASES asks for more (a longer hunt).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    c
}

/// Values of every TOML type, including huge and odd ones, to put where another type belongs.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("18446744073709551615".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1e308".to_string()),
        Just("-1.0".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("[[[[[[[[1]]]]]]]]".to_string()),
        Just("{}".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("\"\"".to_string()),
        Just("\"${\"".to_string()),
        Just("\"${NOPE_NOT_SET_XYZ}\"".to_string()),
        Just("\"99999999999999999999999y\"".to_string()),
        Just("\"400000000000y\"".to_string()),
        Just("\"584542046090y\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "\"[^\"\\\\]{0,40}\"".prop_map(|s| s),
        (1u64..u64::MAX).prop_map(|n| format!("\"{n}s\"")),
    ]
}

/// Keys a scenario has, to give odd values to.
const KEYS: &[&str] = &[
    "name",
    "url",
    "workers",
    "store",
    "timeout",
    "path",
    "fields",
    "users",
    "tabs",
    "duration",
    "total_requests",
    "requests",
    "think_time",
    "loading_timeout",
    "max_redirects",
    "max_body_bytes",
    "max_duration",
    "at",
    "after_requests",
    "count",
    "interval",
    "min_distinct_pids",
    "auth_persistence",
    "every",
    "pid",
    "authenticated",
    "login_rate",
    "source_addresses",
    "interrupted_pattern",
    "stop_timeout",
];

fn parse(text: &str) {
    // Ok or Err are both fine; the error must render.
    if let Err(e) = Scenario::parse(text, "prop.toml") {
        let _ = e.to_string();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parser_survives_arbitrary_strings(text in any::<String>()) {
        parse(&text);
    }

    #[test]
    fn parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parser_survives_byte_mutations_of_a_valid_scenario(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12)
    ) {
        let mut bytes = VALID.as_bytes().to_vec();
        for (at, b, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => { bytes.remove(i); }
            }
        }
        parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parser_survives_truncation(cut in 0usize..VALID.len()) {
        parse(&VALID[..cut]);
    }

    #[test]
    fn parser_survives_wrong_types_and_huge_values(key in prop::sample::select(KEYS), value in odd_value()) {
        // Replace the value of every line that sets `key`.
        let text: String = VALID
            .lines()
            .map(|l| match l.split_once('=') {
                Some((k, _)) if k.trim() == key => format!("{key} = {value}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        parse(&text);
        // ...and add it inside [load], where a duplicate or unknown key is an error.
        parse(&VALID.replace("[load]\n", &format!("[load]\n{key} = {value}\n")));
    }

    #[test]
    fn probe_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_probe(&bytes, "/worker/pid", "/authenticated");
    }

    #[test]
    fn probe_survives_arbitrary_json(v in json_value(), pid in "(/[a-z0-9~]{0,4}){0,3}", auth in "(/[a-z0-9~]{0,4}){0,3}") {
        let body = v.to_string();
        let _ = read_probe(body.as_bytes(), &pid, &auth);
        let _ = read_probe(body.as_bytes(), "/worker/pid", "/authenticated");
        // A cut-short body, as `max_body_bytes` leaves it.
        let _ = read_probe(&body.as_bytes()[..body.len() / 2], "/worker/pid", "/authenticated");
    }

    /// One pass for several pointers finds what `serde_json`'s own `pointer` finds for each
    /// (the keys drawn from a small alphabet, so that pointers often hit).
    #[test]
    fn pointers_find_what_serde_json_finds(
        v in json_value(),
        ptrs in proptest::collection::vec("(/([a-c~]|[0-2]|01){0,2}){0,3}", 0..4),
    ) {
        let body = v.to_string();
        let asked: Vec<&str> = ptrs.iter().map(String::as_str).collect();
        let found = sesscheck::util::jsonseek::pointers(body.as_bytes(), &asked).unwrap();
        // Read back, not `v` itself: a float need not come back bit for bit.
        let whole: serde_json::Value = serde_json::from_str(&body).unwrap();
        for (p, got) in asked.iter().zip(&found) {
            prop_assert_eq!(got.as_ref(), whole.pointer(p), "{} in {}", p, body);
        }
    }

    #[test]
    fn probe_wrong_types_are_errors_or_values(pid in json_value(), auth in json_value()) {
        let body = serde_json::json!({ "worker": { "pid": pid }, "authenticated": auth }).to_string();
        let _ = read_probe(body.as_bytes(), "/worker/pid", "/authenticated");
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn probe_deeply_nested_is_an_error() {
    for depth in [127, 128, 129, 1_000, 100_000] {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let _ = read_probe(body.as_bytes(), "/worker/pid", "/authenticated");
        let body = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let _ = read_probe(body.as_bytes(), "/a", "/a");
    }
    let e = read_probe(
        "[".repeat(100_000).as_bytes(),
        "/worker/pid",
        "/authenticated",
    )
    .unwrap_err();
    assert!(e.contains("probe"), "{e}");
}

#[test]
fn probe_huge_body_is_handled() {
    // 8 MB of digits: one huge number; then a huge string PID.
    let big = format!("{{\"worker\":{{\"pid\":{}}}}}", "9".repeat(8 << 20));
    let _ = read_probe(big.as_bytes(), "/worker/pid", "/authenticated");
    let big = format!("{{\"worker\":{{\"pid\":\"{}\"}}}}", "9".repeat(8 << 20));
    assert!(read_probe(big.as_bytes(), "/worker/pid", "/authenticated").is_ok());
    let e = read_probe(b"", "/worker/pid", "/authenticated").unwrap_err();
    assert!(e.contains("probe did not answer JSON"), "{e}");
}

#[test]
fn huge_durations_are_refused_or_usable() {
    // Durations that parse must not overflow when added to an Instant later on.
    for d in ["400000000000y", "584542046090y", "99999999999999999999999y"] {
        let text = VALID.replace("max_duration = \"1m\"", &format!("max_duration = \"{d}\""));
        match Scenario::parse(&text, "p.toml") {
            Ok(s) => {
                let _ = std::time::Instant::now() + s.load.max_duration.0;
            }
            Err(e) => assert!(e.to_string().contains("duration"), "{e}"),
        }
    }
}
