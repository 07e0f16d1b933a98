//! Is this login answer a good login? Pure functions over what the login request got back.
//!
//! A login is good only on evidence: many apps answer a wrong password with the same 302 as a
//! right one, and Django-style apps re-render the form with 200. Without a `[login] success`
//! rule, an answer that shows the login form again (a password input, or a redirect to the
//! login path) is a failed login; the probe right after the login (when there is one) is the
//! other piece of evidence, checked by the engine.

use crate::client::Reply;
use url::Url;

/// Why a login answer is not a good login, in words for the `login_failed` message.
pub type Rejection = String;

/// `success.redirect_to`: the login's redirect must go to exactly this path (the query of
/// either is ignored; so is a trailing slash difference, "/admin" vs "/admin/").
pub fn redirect_matches(want: &Url, got: &Url) -> bool {
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    norm(want.path()) == norm(got.path())
}

/// True when an HTML page holds a password input: the login form, shown again.
pub fn shows_login_form(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.match_indices("<input").any(|(i, _)| {
        let tag = &text[i..];
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let squeezed: String = tag.chars().filter(|c| !c.is_whitespace()).collect();
        squeezed.contains("type=\"password\"")
            || squeezed.contains("type='password'")
            || squeezed.contains("type=password")
    })
}

/// The page's `<title>`, else its first line of text (tags stripped), cut to 120 characters.
pub fn page_summary(body: &[u8]) -> Option<String> {
    let html = String::from_utf8_lossy(body);
    let lower = html.to_ascii_lowercase();
    let text = match (lower.find("<title"), lower.find("</title>")) {
        (Some(open), Some(close)) if open < close => {
            let inner = &html[open..close];
            inner[inner.find('>').map(|i| i + 1).unwrap_or(0)..].to_string()
        }
        _ => strip_tags(&html),
    };
    let line = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|l| !l.is_empty())?;
    Some(line.chars().take(120).collect())
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push('\n');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// What the login got, for a message: status, `Location` and the page's title or first text.
pub fn describe(reply: &Reply) -> String {
    let mut s = format!("HTTP {}", reply.first_status);
    if let Some(loc) = &reply.first_location {
        s.push_str(&format!(" to {loc}"));
    }
    if reply.status != reply.first_status {
        s.push_str(&format!(", then HTTP {}", reply.status));
    }
    if let Some(summary) = page_summary(&reply.body) {
        s.push_str(&format!(", page {summary:?}"));
    }
    s
}

/// The default judgement (no `success` rule): a status below 400 that is not the login form
/// again.
pub fn default_verdict(reply: &Reply) -> Result<(), Rejection> {
    if reply.first_status >= 400 {
        return Err(describe(reply));
    }
    if reply.to_login {
        return Err(format!(
            "{}: it sent the user back to the login page",
            describe(reply)
        ));
    }
    if (200..300).contains(&reply.status) && shows_login_form(&reply.body) {
        return Err(format!(
            "{}: the answer shows the login form again (a password input)",
            describe(reply)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, location: Option<&str>, body: &str) -> Reply {
        Reply {
            status,
            first_status: status,
            first_location: location.map(String::from),
            to_login: false,
            redirects: 0,
            body: body.as_bytes().to_vec(),
            pattern_match: false,
            replaced_login_cookie: None,
            set_cookies: Vec::new(),
            cookie_attrs: Vec::new(),
            renewed: false,
        }
    }

    #[test]
    fn redirect_to_is_an_exact_path() {
        let u = |p: &str| Url::parse(&format!("http://h{p}")).unwrap();
        assert!(redirect_matches(&u("/admin/"), &u("/admin/")));
        assert!(redirect_matches(&u("/admin/"), &u("/admin/?next=1")));
        assert!(redirect_matches(&u("/admin"), &u("/admin/")));
        assert!(!redirect_matches(&u("/admin/"), &u("/admin/login/")));
        assert!(!redirect_matches(&u("/"), &u("/login?error=1")));
    }

    #[test]
    fn the_login_form_again_is_a_failed_login() {
        let form = "<html><head><title>Log in | Site</title></head><form><input name=\"username\"><INPUT type = \"password\" name=\"password\"></form>";
        assert!(shows_login_form(form.as_bytes()));
        assert!(!shows_login_form(
            b"<html><input name=\"q\" type=\"search\"></html>"
        ));
        let e = default_verdict(&reply(200, None, form)).unwrap_err();
        assert!(e.contains("HTTP 200") && e.contains("Log in | Site"), "{e}");
        assert!(default_verdict(&reply(302, Some("/dashboard"), "")).is_ok());
        assert!(default_verdict(&reply(200, None, "<title>Dashboard</title>")).is_ok());
    }

    #[test]
    fn summary_is_the_title_or_the_first_text() {
        assert_eq!(
            page_summary(b"<h1>\n  RuntimeError at /login\n</h1><p>x</p>").as_deref(),
            Some("RuntimeError at /login")
        );
        assert_eq!(
            page_summary(b"<title>\n Page not found </title>").as_deref(),
            Some("Page not found")
        );
        assert_eq!(page_summary(b"   "), None);
    }
}
