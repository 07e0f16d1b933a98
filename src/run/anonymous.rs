//! Before the load, the scenario's pages are asked once without a login, to learn what a
//! logout looks like on this app. A logged-out user is told by the redirect to the login page,
//! and `[detect] login_path` defaults to `[login] path`, the address the login posts to. Many
//! apps post elsewhere than the page they send visitors to (pgAdmin's /login page posts to
//! /authenticate/login), and then every redirect to /login counted as logged in: a store that
//! lost every session passed. So where the pages send anonymous visitors is looked at, and
//! taken as the login page when it is plainly one.

use crate::http::client::OneOff;
use crate::scenario::requests::RequestSpec;
use crate::scenario::{without_query, Scenario};
use std::time::Duration;
use url::Url;

/// How many of the scenario's pages are asked: enough to see where they send visitors.
const PAGES_ASKED: usize = 3;

/// How long they get: a page that hangs is the load's to find and report.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// What asking the pages anonymously found out.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Learned {
    /// Where the pages send anonymous visitors, when that is not the login path: the run
    /// counts redirects there as logged out.
    pub login_page: Option<String>,
    /// What the user should know (pages that answer anonymous visitors as they answer
    /// logged-in ones, a redirect that does not look like a login page).
    pub notes: Vec<String>,
}

/// Ask the pages. The caller gives a learned login page to the client (`Http::set_login_page`),
/// the one place the load reads it from. Does nothing when `[detect] login_path` is set or
/// there is no `[login]`.
pub(super) async fn learn_login_page(sc: &Scenario, base: &Url) -> Learned {
    if sc.login.is_none() || sc.detect.login_path.is_some() {
        return Learned::default();
    }
    let Ok(client) =
        OneOff::for_target(sc.load.loading_timeout.0.min(ASK_TIMEOUT), &sc.lowered.http)
    else {
        return Learned::default();
    };
    let mut answers = Vec::new();
    let mut pages: Vec<&str> = Vec::new();
    for r in &sc.load.requests {
        if let RequestSpec::Page(p) = r {
            if !pages.contains(&p.as_str()) && pages.len() < PAGES_ASKED {
                pages.push(p);
            }
        }
    }
    // Together, so that pages that hang cost one timeout, not one each.
    let asked = pages.into_iter().filter_map(|page| {
        let url = base.join(page).ok()?;
        let client = &client;
        Some(async move { (page, client.get(&url, 64 * 1024).await, url) })
    });
    for (page, answer, url) in futures_util::future::join_all(asked).await {
        // Unreachable or failing pages are the load's to report, with its numbers.
        let Ok(answer) = answer else { continue };
        let to = answer
            .location
            .as_deref()
            .and_then(|l| url.join(l).ok())
            .filter(|to| to.origin() == base.origin());
        answers.push((page.to_string(), answer.status, to));
    }
    judge(sc.login_path(), sc.probe.is_configured(), &answers)
}

/// The judgement, from the answers alone: (page, status, same-origin redirect target).
fn judge(login_path: &str, probed: bool, answers: &[(String, u16, Option<Url>)]) -> Learned {
    let mut learned = Learned::default();
    for (page, status, to) in answers {
        match (status, to) {
            (300..=399, Some(to)) => {
                let path = to.path();
                if path.starts_with(login_path) || same_but_slash(page, path) {
                    continue;
                }
                if looks_like_login(page, to) {
                    if learned.login_page.is_none() {
                        learned.login_page = Some(path.to_string());
                    }
                } else {
                    learned.notes.push(format!(
                        "GET {page} sends visitors without a login to {path}, which is not \
                         [login] path {login_path}: if {path} is the login page, set [detect] \
                         login_path = \"{path}\", or a logout there is not seen"
                    ));
                }
            }
            (200..=299, _) if !probed => learned.notes.push(format!(
                "GET {page} answers visitors without a login {status}, as it answers logged-in \
                 users: a logout there is not seen; list pages that need a login in [load] \
                 requests, or add a [probe]"
            )),
            _ => {}
        }
    }
    learned
}

/// `/admin` → `/admin/` (or back) is the app tidying the address, not a login.
fn same_but_slash(page: &str, path: &str) -> bool {
    let page = without_query(page);
    page != path && page.trim_end_matches('/') == path.trim_end_matches('/')
}

/// A login page by its look: its path says so, or its query carries the page back
/// (`?next=/browser/`, `?return_to=...`), as login redirects do.
fn looks_like_login(page: &str, to: &Url) -> bool {
    let path = to.path().to_ascii_lowercase();
    let named = [
        "login", "log-in", "log_in", "signin", "sign-in", "sign_in", "auth", "session",
    ]
    .iter()
    .any(|w| path.contains(w));
    let page = without_query(page);
    let carries_page = to
        .query_pairs()
        .any(|(_, v)| v == page || v.ends_with(page));
    named || (carries_page && page != "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(page: &str, to: &str) -> (String, u16, Option<Url>) {
        let base = Url::parse("http://127.0.0.1:1/").unwrap();
        (page.to_string(), 302, Some(base.join(to).unwrap()))
    }

    #[test]
    fn the_page_anonymous_visitors_are_sent_to_is_learned_when_it_is_plainly_a_login() {
        // pgAdmin: the form posts to /authenticate/login; visitors go to /login?next=...
        let l = judge(
            "/authenticate/login",
            false,
            &[redirect("/browser/", "/login?next=/browser/")],
        );
        assert_eq!(l.login_page.as_deref(), Some("/login"));
        assert!(l.notes.is_empty(), "{:?}", l.notes);
        // Any name, when the redirect carries the page back.
        let l = judge(
            "/session/new",
            false,
            &[redirect("/app", "/welcome?return_to=/app")],
        );
        assert_eq!(l.login_page.as_deref(), Some("/welcome"));
    }

    #[test]
    fn the_login_path_itself_a_slash_fix_and_other_redirects_change_nothing() {
        let l = judge(
            "/login",
            false,
            &[redirect("/dashboard", "/login?next=/dashboard")],
        );
        assert_eq!(l, Learned::default());
        let l = judge("/accounts/login/", false, &[redirect("/admin", "/admin/")]);
        assert_eq!(l, Learned::default());
        // A redirect that does not look like a login: not learned, but said.
        let l = judge("/login", false, &[redirect("/", "/home")]);
        assert_eq!(l.login_page, None);
        assert!(
            l.notes[0].contains("[detect] login_path = \"/home\""),
            "{:?}",
            l.notes
        );
    }

    #[test]
    fn a_public_page_is_said_when_nothing_else_would_see_a_logout() {
        let public = [("/".to_string(), 200, None)];
        let l = judge("/login", false, &public);
        assert!(
            l.notes[0].contains("a logout there is not seen"),
            "{:?}",
            l.notes
        );
        assert!(judge("/login", true, &public).notes.is_empty());
    }
}
