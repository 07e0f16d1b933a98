//! `Set-Cookie` answers a jar has already taken, recognised by their bytes.
//!
//! A sliding session sets the same cookie on every answer. Taking it the long way each time
//! (parsing it, building the store's cookie with the URL's defaults for domain and path,
//! inserting it into the store's three hash maps, and so throwing away the user's ready
//! `Cookie` headers) cost more than the rest of the exchange. Bytes from the same URL make the
//! same cookie: if the store still holds the cookie these bytes made last time, taking them
//! again changes nothing but, with `Max-Age`, the expiry.
//!
//! That renewal is noted (the time of the answer) and written to the store only before the
//! store is read for anything its expiry matters to (`flush`): a `Cookie` header built from the
//! store's cookies while their older expiries were all still ahead stays the same header, so
//! most requests never need it. The expiry written is the one `CookieStore::insert_raw` would
//! have given at the time of the answer.
//!
//! "Still holds": every change to the store goes through `take`, which flushes the renewals and
//! forgets the remembered answers for a cookie name whenever a different cookie of that name is
//! taken. A jar whose store is replaced starts with an empty `SeenCookies`.

use cookie_store::{Cookie, CookieExpiration, CookieStore, RawCookie, StoreAction};
use std::time::SystemTime;
use time::OffsetDateTime;
use url::Url;

/// At most this many answers are remembered per jar (a session cookie and a CSRF cookie, from
/// a few URLs, fit).
const KEEP: usize = 8;

/// The latest expiry `cookie_store` represents (its `MAX_RFC3339`, 9999-12-31 23:59:59 UTC).
const MAX_EXPIRY: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

#[derive(Default, Clone)]
pub struct SeenCookies {
    /// Oldest first.
    entries: Vec<Seen>,
}

#[derive(Clone)]
struct Seen {
    /// The URL the answer came from (its host and path give the cookie's defaults). Its text,
    /// not a `Url` (88 bytes more in every user's jar): only a renewal needs it parsed.
    url: Box<str>,
    /// The `Set-Cookie` value, byte for byte.
    bytes: Box<[u8]>,
    /// The cookie it made, as the store holds it (but for a renewal not yet written).
    cookie: Cookie<'static>,
    /// When the latest answer that renewed its `Max-Age` came, if that is not in the store yet.
    renewed_at: Option<SystemTime>,
}

impl SeenCookies {
    /// Take a `Set-Cookie` seen before, without parsing it: Some(the cookie it makes) if these
    /// bytes from `url` made a cookie the store still holds; None: take it with `take`.
    pub fn retake(&mut self, url: &Url, bytes: &[u8]) -> Option<&Cookie<'static>> {
        let seen = self
            .entries
            .iter_mut()
            .find(|s| *s.bytes == *bytes && *s.url == *url.as_str())?;
        if seen.cookie.max_age().is_some() {
            seen.renewed_at = Some(SystemTime::now());
        } else if seen.cookie.is_expired() {
            // An `Expires` now past: taken again, it expires the stored cookie. The long way.
            return None;
        }
        Some(&seen.cookie)
    }

    /// Write the renewals noted since the last flush into the store.
    pub fn flush(&mut self, store: &mut CookieStore) {
        for seen in &mut self.entries {
            let Some(at) = seen.renewed_at.take() else {
                continue;
            };
            let Some(age) = seen.cookie.max_age() else {
                continue;
            };
            let Ok(url) = Url::parse(&seen.url) else {
                continue; // it was a `Url`'s own text
            };
            let mut renewed = seen.cookie.clone();
            renewed.expires = expiry(OffsetDateTime::from(at), age);
            // The cookie it replaces is the one these bytes made: it cannot be refused now.
            let _ = store.insert(renewed, &url);
        }
    }

    /// Take a parsed `Set-Cookie` (what `CookieStore::insert_raw` does), remembering it by its
    /// bytes when the store kept the cookie.
    pub fn take(&mut self, store: &mut CookieStore, url: &Url, bytes: &[u8], raw: &RawCookie) {
        self.flush(store);
        let Ok(cookie) = Cookie::try_from_raw_cookie(raw, url) else {
            return; // refused, as a browser would (bad domain, ...): the store is unchanged
        };
        let cookie = cookie.into_owned();
        // Whatever this does to the store, it does to a cookie of this name. An answer kept
        // for the very same cookie (the same bytes from another URL with the same defaults)
        // stays true; any other of this name is forgotten.
        self.entries.retain(|s| {
            s.cookie.name() != cookie.name()
                || (*s.cookie == *cookie
                    && s.cookie.domain == cookie.domain
                    && s.cookie.path == cookie.path)
        });
        let kept = cookie.clone();
        if !matches!(
            store.insert(cookie, url),
            Ok(StoreAction::Inserted | StoreAction::UpdatedExisting)
        ) {
            return; // refused, or an expired cookie that expired the stored one
        }
        if self.entries.len() >= KEEP {
            self.entries.remove(0);
        }
        // One at a time: a `Seen` is ~300 bytes, and a `Vec`'s first growth (to 4) would hold
        // room for entries most jars never get.
        self.entries.reserve_exact(1);
        self.entries.push(Seen {
            url: url.as_str().into(),
            bytes: bytes.into(),
            cookie: kept,
            renewed_at: None,
        });
    }
}

/// The expiry of a cookie with this `Max-Age` received at `now`, as `cookie_store` computes it
/// (`CookieExpiration::from(Duration)`): the earliest time for zero, else now + age, capped.
fn expiry(now: OffsetDateTime, age: time::Duration) -> CookieExpiration {
    let at = if age.is_zero() {
        OffsetDateTime::UNIX_EPOCH
    } else {
        now + (MAX_EXPIRY - now).min(age)
    };
    CookieExpiration::from(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expiry written for a renewal is the one `cookie_store` gives the same answer.
    #[test]
    fn renewed_expiry_is_cookie_stores() {
        for age in [1i64, 60, 3600, i64::MAX / 2] {
            let before = OffsetDateTime::now_utc();
            let theirs = CookieExpiration::from(time::Duration::seconds(age));
            let after = OffsetDateTime::now_utc();
            let (lo, hi) = (
                expiry(before, time::Duration::seconds(age)),
                expiry(after, time::Duration::seconds(age)),
            );
            let t = |e: &CookieExpiration| match e {
                CookieExpiration::AtUtc(t) => *t,
                CookieExpiration::SessionEnd => panic!("no expiry"),
            };
            assert!(
                t(&lo) <= t(&theirs) && t(&theirs) <= t(&hi),
                "Max-Age={age}"
            );
        }
    }
}
