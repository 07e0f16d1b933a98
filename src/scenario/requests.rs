//! `[load] requests` entries: a path (a page, GET) or a table describing a write request,
//! `{ method = "POST", path = "/notes", form = {...} }` or `json = {...}`, with
//! `expect_status` and Django-style AJAX CSRF (`csrf = { cookie = "csrftoken", header =
//! "X-CSRFToken" }`: the cookie's value from the user's jar, sent in the header). A session
//! that breaks only on writes (a stale CSRF token after a restart, a session saved on POST)
//! shows up as anonymous or failed writes.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One entry of `[load] requests`.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestSpec {
    /// A page: GET, redirects followed.
    Page(String),
    Write(WriteRequest),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// An HTML form body (values may use `{user}`, the virtual user's number).
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// A JSON body (string values may use `{user}`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// The status a working write answers (e.g. 201); any other is a failed request.
    /// Default: any status below 400 that is not a redirect to the login page.
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub csrf: Option<CookieCsrf>,
}

/// Django's AJAX CSRF: the token is the value of `cookie`, sent back in `header`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieCsrf {
    #[serde(default = "default_csrf_cookie")]
    pub cookie: String,
    #[serde(default = "default_csrf_header")]
    pub header: String,
}

fn default_method() -> String {
    "POST".into()
}
fn default_csrf_cookie() -> String {
    "csrftoken".into()
}
fn default_csrf_header() -> String {
    "X-CSRFToken".into()
}

impl RequestSpec {
    pub fn as_str(&self) -> &str {
        match self {
            RequestSpec::Page(p) => p,
            RequestSpec::Write(w) => &w.path,
        }
    }

    /// Field-level checks beyond the path (the path is checked with the pages').
    pub fn check(&self) -> Result<(), String> {
        let RequestSpec::Write(w) = self else {
            return Ok(());
        };
        let method = w.method.to_ascii_uppercase();
        if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(format!(
                "method {:?}: a write request is POST, PUT, PATCH or DELETE (a GET is a plain path)",
                w.method
            ));
        }
        if w.form.is_some() && w.json.is_some() {
            return Err("give `form` or `json`, not both".into());
        }
        if let Some(s) = w.expect_status {
            if !(100..=599).contains(&s) {
                return Err(format!("expect_status {s} is not an HTTP status"));
            }
        }
        if let Some(c) = &w.csrf {
            if http::HeaderName::from_bytes(c.header.as_bytes()).is_err() {
                return Err(format!("csrf.header {:?} is not a header name", c.header));
            }
        }
        Ok(())
    }
}

impl From<&str> for RequestSpec {
    fn from(p: &str) -> Self {
        RequestSpec::Page(p.to_string())
    }
}

impl<'de> Deserialize<'de> for RequestSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RequestSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path (\"/dashboard\") or a table { method, path, form | json, expect_status, csrf }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RequestSpec, E> {
                Ok(RequestSpec::Page(s.to_string()))
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<RequestSpec, M::Error> {
                // The table's own errors (unknown key, wrong type) come through as they are.
                WriteRequest::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(RequestSpec::Write)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct L {
        requests: Vec<RequestSpec>,
    }

    #[test]
    fn paths_and_tables_mix() {
        let l: L = toml::from_str(
            r#"requests = ["/dashboard", { path = "/notes", form = { text = "n{user}" }, expect_status = 201, csrf = {} }, { method = "PUT", path = "/api", json = { a = ["{user}"] } }]"#,
        )
        .unwrap();
        assert_eq!(l.requests[0], RequestSpec::Page("/dashboard".into()));
        let RequestSpec::Write(w) = &l.requests[1] else {
            panic!()
        };
        assert_eq!((w.method.as_str(), w.expect_status), ("POST", Some(201)));
        assert_eq!(w.csrf.as_ref().unwrap().header, "X-CSRFToken");
        assert!(l.requests.iter().all(|r| r.check().is_ok()));
    }

    #[test]
    fn mistakes_are_named() {
        let e = toml::from_str::<L>(r#"requests = [{ path = "/n", bdy = {} }]"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("bdy"), "{e}");
        let bad = |t: &str| {
            toml::from_str::<L>(t).unwrap().requests[0]
                .check()
                .unwrap_err()
        };
        assert!(bad(r#"requests = [{ method = "GET", path = "/n" }]"#).contains("GET"));
        assert!(bad(r#"requests = [{ path = "/n", form = {}, json = {} }]"#).contains("not both"));
        assert!(bad(r#"requests = [{ path = "/n", expect_status = 42 }]"#).contains("42"));
    }
}
