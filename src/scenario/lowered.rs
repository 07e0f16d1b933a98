//! The scenario's strings that need parsing, parsed once, when the scenario is validated, into
//! the types the stages below use: the interrupted pattern as compiled regexes, source
//! addresses as IP addresses, HTTP methods as methods. Nothing below the scenario parses these
//! strings again, so nothing can fall back silently to a default where validation said "fine".

use super::requests::RequestSpec;
use super::{Scenario, LOGOUT_METHODS};
use std::net::IpAddr;

/// The interrupted pattern (`[detect] interrupted_pattern`), for text (headers, server log) and
/// for bodies (bytes).
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub text: regex::Regex,
    pub bytes: regex::bytes::Regex,
}

impl Interrupted {
    pub fn new(pattern: &str) -> Result<Interrupted, regex::Error> {
        Ok(Interrupted {
            text: regex::Regex::new(pattern)?,
            bytes: regex::bytes::Regex::new(pattern)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Lowered {
    pub interrupted: Interrupted,
    /// `[login] source_addresses`, loopback addresses (empty: the system's choice).
    pub source_addresses: Vec<IpAddr>,
    pub logout_method: http::Method,
    /// The method of each `[load] requests` entry (a page: GET), in their order.
    pub request_methods: Vec<http::Method>,
}

impl Default for Lowered {
    /// What a scenario with every default lowers to.
    fn default() -> Lowered {
        Lowered {
            interrupted: Interrupted::new(&super::Detect::default().interrupted_pattern)
                .expect("the default interrupted pattern is a valid regex"),
            source_addresses: Vec::new(),
            logout_method: http::Method::POST,
            request_methods: Vec::new(),
        }
    }
}

/// Parse what `validate` must not only check but hand on; an error names the field.
pub fn lower(s: &Scenario) -> Result<Lowered, (String, String)> {
    let interrupted = Interrupted::new(&s.detect.interrupted_pattern).map_err(|e| {
        (
            "detect.interrupted_pattern".to_string(),
            format!("not a valid regex: {e}"),
        )
    })?;
    let mut source_addresses = Vec::new();
    for a in s.login.iter().flat_map(|l| &l.source_addresses) {
        let bad = |m: String| ("login.source_addresses".to_string(), m);
        match a.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => source_addresses.push(ip),
            Ok(_) => {
                return Err(bad(format!(
                    "{a} is not a loopback address (127.0.0.0/8 or ::1)"
                )))
            }
            Err(_) => return Err(bad(format!("{a:?} is not an IP address"))),
        }
    }
    let method = |text: &str| http::Method::from_bytes(text.to_ascii_uppercase().as_bytes());
    let logout_method = match method(&s.logout.method) {
        Ok(m) if LOGOUT_METHODS.contains(&m.as_str()) => m,
        _ => {
            return Err((
                "logout.method".into(),
                format!(
                    "unknown method {:?}; expected one of {}",
                    s.logout.method,
                    LOGOUT_METHODS.join(", ")
                ),
            ))
        }
    };
    let request_methods = s
        .load
        .requests
        .iter()
        .map(|r| match r {
            RequestSpec::Page(_) => Ok(http::Method::GET),
            RequestSpec::Write(w) => method(&w.method).map_err(|_| {
                (
                    "load.requests".to_string(),
                    format!("method {:?}", w.method),
                )
            }),
        })
        .collect::<Result<_, _>>()?;
    Ok(Lowered {
        interrupted,
        source_addresses,
        logout_method,
        request_methods,
    })
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    const TEXT: &str = r#"
name = "t"
[target]
url = "http://127.0.0.1:9"
[login]
fields = { username = "u", password = "p" }
success = { redirect_to = "/dashboard" }
source_addresses = ["127.0.0.2", "::1"]
[logout]
method = "delete"
[detect]
interrupted_pattern = "Gone|Interrupted"
[load]
duration = "1s"
requests = ["/", { method = "put", path = "/notes", form = { a = "b" } }]
"#;

    #[test]
    fn validation_hands_on_the_parsed_values() {
        let s = Scenario::parse(TEXT, "t.toml").unwrap();
        let l = &s.lowered;
        assert!(l.interrupted.text.is_match("410 Gone"));
        assert!(l.interrupted.bytes.is_match(b"... Interrupted ..."));
        assert_eq!(
            l.source_addresses,
            [
                "127.0.0.2".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(l.logout_method, http::Method::DELETE);
        assert_eq!(l.request_methods, [http::Method::GET, http::Method::PUT]);
    }

    #[test]
    fn what_does_not_parse_is_named() {
        let bad = |from: &str, to: &str| {
            Scenario::parse(&TEXT.replace(from, to), "t.toml")
                .unwrap_err()
                .to_string()
        };
        let e = bad("Gone|Interrupted", "Gone(");
        assert!(
            e.contains("detect.interrupted_pattern") && e.contains("regex"),
            "{e}"
        );
        let e = bad("\"::1\"", "\"10.0.0.1\"");
        assert!(
            e.contains("login.source_addresses") && e.contains("loopback"),
            "{e}"
        );
        let e = bad("\"::1\"", "\"localhost\"");
        assert!(e.contains("is not an IP address"), "{e}");
        let e = bad("method = \"delete\"", "method = \"FETCH\"");
        assert!(e.contains("logout.method") && e.contains("FETCH"), "{e}");
    }
}
