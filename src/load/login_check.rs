//! Is this login answer a good login? Pure functions over what the login request got back.
//!
//! A login is good only on evidence: many apps answer a wrong password with the same 302 as a
//! right one, and Django-style apps re-render the form with 200. Without a `[login] success`
//! rule, an answer that shows the login form again (a password input, or a redirect to the
//! login path) is a failed login; the probe right after the login (when there is one) is the
//! other piece of evidence, checked by the engine.

use crate::http::client::Reply;
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

/// The page's `<title>` (its lines joined), else its first line of text (tags stripped); for a
/// Django debug page also the exception's message ("You called this URL via POST, but the URL
/// doesn't end in a slash ..."). Cut to 240 characters.
pub fn page_summary(body: &[u8]) -> Option<String> {
    let html = String::from_utf8_lossy(body);
    let lower = html.to_ascii_lowercase();
    let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut summary = match element_text(&html, &lower, "<title", "</title>") {
        Some(title) => squeeze(&title),
        None => strip_tags(&html)
            .lines()
            .map(squeeze)
            .find(|l| !l.is_empty())?,
    };
    if let Some(value) = element_text(&html, &lower, "<pre class=\"exception_value\"", "</pre>") {
        summary = format!("{summary}: {}", squeeze(&crate::util::html::decode(&value)));
    } else if let Some(alert) = alert_text(&html, &lower).filter(|a| *a != summary) {
        summary = format!("{summary}: {alert}");
    }
    if summary.is_empty() {
        return None;
    }
    Some(summary.chars().take(240).collect())
}

/// The text of the page's first message to the user that has any: an element whose class
/// names an alert, a flash or an error (`alert alert-danger`, Django's `errorlist` and
/// `errornote`, `flashes`). A refused login's reason is there, not in the title: Calibre-Web's
/// "Please wait one minute before next login" (its rate limit, answered 401 with the login page)
/// read as a wrong password or a SECRET_KEY per replica.
fn alert_text(html: &str, lower: &str) -> Option<String> {
    const MARKS: [&str; 3] = ["alert", "flash", "error"];
    let mut from = 0;
    while let Some(found) = lower[from..].find(" class=") {
        let at = from + found;
        from = at + 1;
        let open = lower[..at].rfind('<')?;
        let Some(close) = lower[at..].find('>').map(|n| at + n) else {
            break;
        };
        let tag = &lower[open..=close];
        let marked = crate::util::html::attr(tag, "class").is_some_and(|class| {
            class
                .split_whitespace()
                .any(|c| MARKS.iter().any(|m| c.contains(m)))
        });
        let name: String = tag[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !marked || name.is_empty() || tag.contains("display:none") || tag.contains("hidden") {
            continue;
        }
        let inner = &html[close + 1..];
        let end = lower[close + 1..]
            .find(&format!("</{name}"))
            .unwrap_or(inner.len().min(400));
        let text = crate::util::html::decode(&strip_tags(&inner[..end]));
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            return Some(text.chars().take(160).collect());
        }
    }
    None
}

/// The text inside the first element that starts with `open` (a lowercase tag prefix).
fn element_text(html: &str, lower: &str, open: &str, close: &str) -> Option<String> {
    let start = lower.find(open)?;
    let inner_start = start + lower[start..].find('>')? + 1;
    let end = inner_start + lower[inner_start..].find(close)?;
    Some(html[inner_start..end].to_string())
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

/// A login answer that is evidence on its own: a redirect away from the login page that sets a
/// session cookie. The probe does not overrule it: if the user is anonymous afterwards, that is
/// a session problem (`logout`, e.g. sessions kept per worker), not a failed login. Any other
/// answer (a 200 page, a redirect that sets nothing) needs the probe to confirm it.
pub fn is_conclusive(reply: &Reply) -> bool {
    (300..400).contains(&reply.first_status)
        && reply.first_location.is_some()
        && !reply.to_login
        && reply.set_cookies.iter().any(|(_, v)| !v.is_empty())
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

    #[test]
    fn a_refused_logins_page_says_what_its_alert_says() {
        let calibre = "<html><head><title>Calibre-Web | Login</title></head><body>\n<div class=\"alert alert-info\" style=\"display:none\"></div>\n<div id=\"flash_danger\" class=\"alert alert-danger\">Please wait one minute before next login</div><form><input type=password name=password></form></body></html>";
        assert_eq!(
            page_summary(calibre.as_bytes()).as_deref(),
            Some("Calibre-Web | Login: Please wait one minute before next login")
        );
        let django = "<title>Log in | Django site admin</title><p class=\"errornote\">\n    Please enter the correct username and password for a staff account.\n</p>";
        assert_eq!(
            page_summary(django.as_bytes()).as_deref(),
            Some("Log in | Django site admin: Please enter the correct username and password for a staff account.")
        );
        let form_errors = "<title>Sign in</title><ul class=\"errorlist nonfield\"><li>Wrong user name &amp; password</li></ul>";
        assert_eq!(
            page_summary(form_errors.as_bytes()).as_deref(),
            Some("Sign in: Wrong user name & password")
        );
        // No message on the page: the title alone, as before.
        let plain = "<title>Dashboard</title><div class=\"card\">Welcome</div>";
        assert_eq!(page_summary(plain.as_bytes()).as_deref(), Some("Dashboard"));
    }

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
            login_cookie_deleted: false,
            set_cookies: Vec::new(),
            cookie_attrs: Vec::new(),
            renewed: false,
            served_by: None,
            waited: std::time::Duration::ZERO,
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
    fn only_a_redirect_that_sets_a_cookie_is_conclusive() {
        let mut r = reply(302, Some("/admin/"), "");
        assert!(!is_conclusive(&r), "no cookie set");
        r.set_cookies.push(("sessionid".into(), "x".into()));
        assert!(is_conclusive(&r));
        r.to_login = true;
        assert!(!is_conclusive(&r));
        let mut ok_page = reply(200, None, "<title>Welcome</title>");
        ok_page.set_cookies.push(("session".into(), "x".into()));
        assert!(!is_conclusive(&ok_page));
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
        let django = b"<title>RuntimeError\n          at /admin/login</title><pre class=\"exception_value\">You called this URL via POST, but the URL doesn&#x27;t end in a slash</pre>";
        assert_eq!(
            page_summary(django).as_deref(),
            Some("RuntimeError at /admin/login: You called this URL via POST, but the URL doesn't end in a slash")
        );
    }
}
