//! The jar's fast paths (built `Cookie` headers kept per URL, `Set-Cookie` answers recognised
//! by their bytes) must send the cookies that `cookie_store` alone sends: every answer inserted
//! with `insert_raw`, every `Cookie` header built from `matches`. Random sequences of answers
//! (few names, values and attributes, so the same bytes come back often, from several paths),
//! with paths, domains, `Max-Age`, `Expires` in the past and future, deletions and
//! replacements, compared after every step, for every URL.

use super::*;
use proptest::prelude::*;

const HOST: &str = "http://127.0.0.1:8000";
const PATHS: [&str; 5] = ["/", "/a", "/a/b", "/b/c", "/session"];

fn reply() -> Reply {
    Reply {
        status: 0,
        first_status: 0,
        first_location: None,
        to_login: false,
        redirects: 0,
        body: Vec::new(),
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

/// One `Set-Cookie` from small alphabets: name, value, then attributes.
fn set_cookie() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["session", "csrftoken", "a"]);
    let value = prop::sample::select(vec!["v1", "v2", ""]);
    let path = prop::sample::select(vec!["", "; Path=/", "; Path=/a", "; Path=/b"]);
    let domain = prop::sample::select(vec!["", "", "; Domain=127.0.0.1", "; Domain=example.com"]);
    let life = prop::sample::select(vec![
        "",
        "",
        "; Max-Age=3600",
        "; Max-Age=0",
        "; Max-Age=-5",
        "; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        "; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
    ]);
    let flags = prop::sample::select(vec!["", "; HttpOnly", "; Secure", "; SameSite=Lax"]);
    (name, value, path, domain, life, flags)
        .prop_map(|(n, v, p, d, l, f)| format!("{n}={v}{p}{d}{l}{f}"))
}

/// A step: an answer from the URL at PATHS[i] setting these cookies (often none, often the
/// same as before), or a request to PATHS[i] only.
fn steps() -> impl Strategy<Value = Vec<(usize, Vec<String>, bool)>> {
    let repeated = prop::collection::vec(set_cookie(), 0..3);
    prop::collection::vec((0..PATHS.len(), repeated, prop::bool::weighted(0.1)), 1..40)
}

/// The cookies a header carries, in order of name and value (the store's order follows its
/// hash maps, which differ between two stores; the set is what must agree).
fn pairs(header: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = header
        .map(|h| h.split("; ").map(str::to_string).collect())
        .unwrap_or_default();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_jar_sends_what_cookie_store_sends(steps in steps(), repeat in 1usize..4) {
        let jar: SharedJar = Arc::new(Mutex::new(Jar::default()));
        let mut reference = CookieStore::default();
        let urls: Vec<Url> = PATHS.iter().map(|p| Url::parse(&format!("{HOST}{p}")).unwrap()).collect();
        for (at, answers, is_login) in &steps {
            // The same answer `repeat` times in a row: the sliding session's case.
            for _ in 0..repeat {
                let mut headers = HeaderMap::new();
                for a in answers {
                    headers.append(SET_COOKIE, HeaderValue::from_str(a).unwrap());
                    let raw = RawCookie::parse(a.clone()).unwrap();
                    let _ = reference.insert_raw(&raw, &urls[*at]);
                }
                absorb_cookies(&jar, &urls[*at], &headers, *is_login, &mut reply());
                for url in &urls {
                    let sent = cookie_header(&jar, url);
                    let want: Vec<String> = reference
                        .matches(url)
                        .iter()
                        .map(|c| format!("{}={}", c.name(), c.value()))
                        .collect();
                    let mut want = want;
                    want.sort();
                    prop_assert_eq!(
                        pairs(sent.as_ref().map(|h| h.to_str().unwrap())),
                        want,
                        "for {} after {:?}",
                        url,
                        answers
                    );
                }
            }
        }
    }
}

/// The sliding session's answer, taken again, renews the cookie's `Max-Age` in the store (the
/// fast path does not leave it at its first expiry).
#[test]
fn a_repeated_max_age_answer_renews_the_expiry() {
    let jar: SharedJar = Arc::new(Mutex::new(Jar::default()));
    let url = Url::parse(&format!("{HOST}/")).unwrap();
    let mut headers = HeaderMap::new();
    headers.append(SET_COOKIE, HeaderValue::from_static("s=1; Max-Age=3600"));
    let expiry = |jar: &SharedJar| match &lock(jar).store().iter_any().next().unwrap().expires {
        CookieExpiration::AtUtc(t) => *t,
        CookieExpiration::SessionEnd => panic!("no expiry"),
    };
    absorb_cookies(&jar, &url, &headers, false, &mut reply());
    let first = expiry(&jar);
    std::thread::sleep(Duration::from_millis(20));
    absorb_cookies(&jar, &url, &headers, false, &mut reply());
    assert!(
        expiry(&jar) > first,
        "the second answer did not renew the expiry"
    );
}

/// A repeated answer still tells the engine what it told it the long way: a login cookie
/// renewed (same value, with a lifetime) or replaced (another value).
#[test]
fn a_repeated_answer_still_reports_renewed_and_replaced() {
    let jar: SharedJar = Arc::new(Mutex::new(Jar::default()));
    lock(&jar).login_cookies.insert("session", "mine");
    let url = Url::parse(&format!("{HOST}/")).unwrap();
    for (cookie, renewed, replaced) in [
        ("session=mine; Max-Age=60", true, None),
        ("session=other; Path=/", false, Some("session")),
    ] {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
        for _ in 0..3 {
            let mut r = reply();
            absorb_cookies(&jar, &url, &headers, false, &mut r);
            assert_eq!(r.renewed, renewed, "{cookie}");
            assert_eq!(r.replaced_login_cookie.as_deref(), replaced, "{cookie}");
        }
    }
}

/// Django answers a session it does not know with `sessionid=""; Max-Age=0`: a deletion, which
/// the logout finding says as such (found on Wagtail, where it read "replaced").
#[test]
fn a_login_cookie_emptied_or_expired_is_reported_deleted() {
    let url = Url::parse(&format!("{HOST}/")).unwrap();
    for (cookie, deleted) in [
        (
            "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
            true,
        ),
        ("sessionid=gone; Max-Age=0; Path=/", true),
        ("sessionid=other; Path=/", false),
    ] {
        let jar: SharedJar = Arc::new(Mutex::new(Jar::default()));
        lock(&jar).login_cookies.insert("sessionid", "mine");
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
        // Twice: the second time the answer is recognised by its bytes, not parsed.
        for _ in 0..2 {
            let mut r = reply();
            absorb_cookies(&jar, &url, &headers, false, &mut r);
            assert_eq!(
                r.replaced_login_cookie.as_deref(),
                Some("sessionid"),
                "{cookie}"
            );
            assert_eq!(r.login_cookie_deleted, deleted, "{cookie}");
        }
    }
}
