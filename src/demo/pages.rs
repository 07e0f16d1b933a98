//! HTML bodies. Deliberately plain: clients parse the hidden CSRF field and
//! sesscheck compares the 400 body byte for byte.

/// The message Django logs (and, with DEBUG on, shows) for a session deleted
/// by a concurrent request.
pub const SESSION_INTERRUPTED_MESSAGE: &str = "The request's session was deleted before the request completed. The user may have logged out in a concurrent request, for example.";

/// Django's generic 400 page (DEBUG = False), byte for byte.
pub const BAD_REQUEST_400: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n";

/// The 400 page of `--race-verbose`, which names the error and the path.
pub fn session_interrupted_400(path: &str) -> String {
    let path = escape_html(path);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>SessionInterrupted at {path}</title>\n</head>\n<body>\n  <h1>SessionInterrupted at {path}</h1><p>{SESSION_INTERRUPTED_MESSAGE}</p>\n</body>\n</html>\n"
    )
}

/// How the login page is built: where the form posts (`/login`, or `--login-action`), and
/// whether the CSRF token is a hidden input or only in a script's JSON (`--csrf-in-script`,
/// as pgAdmin's page, which its JavaScript renders, keeps it).
pub struct FormShape<'a> {
    pub action: &'a str,
    pub token_in_script: bool,
}

pub fn login_form(csrf_token: &str, failed: bool, shape: &FormShape) -> String {
    let error = if failed {
        "  <p class=\"error\">Invalid username or password.</p>\n"
    } else {
        ""
    };
    let token = escape_html(csrf_token);
    let (hidden, script) = if shape.token_in_script {
        (
            String::new(),
            format!("  <script>window.config = {{\"csrfToken\": \"{token}\"}};</script>\n"),
        )
    } else {
        (
            format!("    <input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">\n"),
            String::new(),
        )
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><title>Log in</title></head>\n<body>\n  <h1>Log in</h1>\n{error}  <form method=\"post\" action=\"{}\">\n{hidden}    <label>Username <input name=\"username\"></label>\n    <label>Password <input name=\"password\" type=\"password\"></label>\n    <button type=\"submit\">Log in</button>\n  </form>\n{script}</body>\n</html>\n",
        escape_html(shape.action),
    )
}

pub fn dashboard(username: &str, csrf_token: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><title>Dashboard</title></head>\n<body>\n  <h1>Dashboard</h1>\n  <p>Logged in as <span id=\"user\">{}</span>.</p>\n  <form method=\"post\" action=\"/logout\">\n    <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n    <button type=\"submit\">Log out</button>\n  </form>\n</body>\n</html>\n",
        escape_html(username),
        escape_html(csrf_token)
    )
}

pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `GET /app`: a single-page app as many are built. It shows a spinner and polls
/// `/api/session` every 200 ms until it answers 200, then shows the user's name and stops.
/// It never gives up and never goes to the login page on a 401: the "infinite loading" that a
/// stale session cookie causes after a restart (see `--spa-stale-loop-after-restart`).
pub const SPA_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>App</title>
<style>.loading{width:2em;height:2em;border:4px solid #ccc;border-top-color:#36c;border-radius:50%;animation:spin 1s linear infinite}@keyframes spin{to{transform:rotate(360deg)}}</style>
</head>
<body>
  <h1>App</h1>
  <div class="loading" id="spinner"></div>
  <script>
    function poll() {
      fetch("/api/session", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (s) {
          document.getElementById("spinner").remove();
          var p = document.createElement("p");
          p.id = "user";
          p.textContent = "Hello, " + s.username;
          document.body.appendChild(p);
        })
        .catch(function () { setTimeout(poll, 200); });
    }
    poll();
  </script>
</body>
</html>
"#;
