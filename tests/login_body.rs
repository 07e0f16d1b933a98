//! Logins with a JSON body: a small real server checks exactly what arrives, and refuses a form.
mod harness;
use harness::*;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

/// The body of a request whose head was read: what came with the head, then up to Content-Length.
fn body(head: &str, stream: &mut TcpStream) -> String {
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut got = head
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.as_bytes().to_vec())
        .unwrap_or_default();
    let mut chunk = [0u8; 4096];
    while got.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Accepts only `{"username": "userN", "password": "pw-json"}` as application/json.
fn json_only_app() -> u16 {
    serve(|path, head, stream| {
        let cookie_ok = head.to_ascii_lowercase().contains("cookie: s=ok");
        match path {
            "/health" => respond(stream, "200 OK", &[], b"ok"),
            "/login" if head.starts_with("POST") => {
                let json = head
                    .to_ascii_lowercase()
                    .contains("content-type: application/json");
                let v: serde_json::Value =
                    serde_json::from_str(&body(head, stream)).unwrap_or_default();
                let good = json
                    && v["password"] == "pw-json"
                    && v["username"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("user"));
                if good {
                    respond(
                        stream,
                        "302 Found",
                        &["Location: /dashboard", "Set-Cookie: s=ok; Path=/; HttpOnly"],
                        b"",
                    );
                } else {
                    respond(stream, "302 Found", &["Location: /login?error=1"], b"");
                }
            }
            "/debug/session" => {
                let body = format!(r#"{{"worker":{{"pid":4242}},"authenticated":{cookie_ok}}}"#);
                respond(
                    stream,
                    "200 OK",
                    &["Content-Type: application/json"],
                    body.as_bytes(),
                );
            }
            "/dashboard" if cookie_ok => respond(stream, "200 OK", &[], b"dashboard"),
            _ => respond(stream, "302 Found", &["Location: /login"], b""),
        }
    })
}

fn scenario(port: u16, body_kind: &str) -> String {
    format!(
        "name = \"json-login\"\n[target]\nurl = \"http://127.0.0.1:{port}\"\nready = {{ path = \"/health\", timeout = \"5s\" }}\n\
         [login]\nbody = \"{body_kind}\"\nfields = {{ username = \"user{{user}}\", password = \"pw-json\" }}\nsuccess = {{ redirect_to = \"/dashboard\" }}\n\
         [probe]\npath = \"/debug/session\"\n[load]\nusers = 2\nduration = \"1s\"\n"
    )
}

#[test]
fn json_login_body_is_sent_as_json() {
    let port = json_only_app();
    let dir = TempDir::new("json-login");
    let out = run_scenario(&dir, &scenario(port, "json"), Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{out:?}");
    let r = report(&dir);
    assert_eq!(r["logins"]["ok"], 2, "{r}");
    assert!(r["auth"]["authenticated"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn the_same_app_refuses_a_form_login() {
    let port = json_only_app();
    let dir = TempDir::new("form-login");
    let out = run_scenario(&dir, &scenario(port, "form"), Duration::from_secs(30));
    // No login worked: nothing was measured (4), which is not a session bug (1).
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(finding_kinds(&report(&dir)).contains(&"login_failed".to_string()));
}
