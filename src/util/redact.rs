//! Secrets never reach an output: every form in which a secret may have been sent or echoed is
//! replaced by `[REDACTED]`.
//!
//! A secret is known as it was configured (a password, a header value) or as a template that
//! each virtual user expands (`"Pw{user}"` becomes `Pw1`, `Pw2`, ...). It can appear in an
//! output as sent (form-encoded in a login body, JSON-escaped in a JSON login, base64 in a
//! Basic `Authorization`), as a target echoes it back, or as a renderer escapes it (JSON, HTML,
//! XML, a Markdown table). Every one of those forms is matched. A shared leaf: it imports
//! nothing of sesscheck.

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

pub const MARKER: &str = "[REDACTED]";

/// What `{user}` becomes in a login field: the virtual user's number.
pub const USER_PLACEHOLDER: &str = "{user}";

/// Replaces every known form of every secret. Built once per run.
pub struct Redactor {
    /// Every form of every literal secret, longest first where they overlap.
    literals: Option<AhoCorasick>,
    /// Per pattern of `literals`: shorter than [`SHORT`], so redacted only where it stands
    /// apart, not inside a word ("x" as a password must not make "e[REDACTED]pectation").
    short: Vec<bool>,
    /// Templated secrets: each form with `{user}` as `[0-9]+`.
    templates: Option<Regex>,
}

impl Redactor {
    /// A redactor for these secrets (empty ones are ignored). A secret that contains `{user}`
    /// is a template: every expansion of it is redacted.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Redactor {
        let mut literals: Vec<String> = Vec::new();
        let mut templates: Vec<String> = Vec::new();
        for secret in secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
            if secret.contains(USER_PLACEHOLDER) {
                let parts: Vec<&str> = secret.split(USER_PLACEHOLDER).collect();
                // Digits look the same in every encoding, so each form of the expansion is the
                // forms of the literal parts around a number.
                for encode in ENCODINGS {
                    let pattern: Vec<String> =
                        parts.iter().map(|p| regex::escape(&encode(p))).collect();
                    templates.push(pattern.join("[0-9]+"));
                }
            } else {
                literals.extend(forms(secret));
            }
        }
        literals.sort();
        literals.dedup();
        literals.retain(|s| !s.is_empty());
        templates.sort();
        templates.dedup();
        Redactor {
            short: literals.iter().map(|l| l.chars().count() < SHORT).collect(),
            literals: (!literals.is_empty()).then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&literals)
                    .expect("literal patterns always build")
            }),
            templates: (!templates.is_empty())
                .then(|| Regex::new(&templates.join("|")).ok())
                .flatten(),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = match &self.literals {
            Some(ac) => {
                let mut out = String::with_capacity(text.len());
                let mut last = 0;
                for m in ac.find_iter(text) {
                    if self.short[m.pattern().as_usize()] && inside_a_word(text, m.start(), m.end())
                    {
                        continue;
                    }
                    out.push_str(&text[last..m.start()]);
                    out.push_str(MARKER);
                    last = m.end();
                }
                out.push_str(&text[last..]);
                out
            }
            None => text.to_string(),
        };
        if let Some(re) = &self.templates {
            if re.is_match(&out) {
                out = re.replace_all(&out, MARKER).into_owned();
            }
        }
        out
    }
}

/// A secret form shorter than this many characters is redacted only where no letter or digit
/// touches it: inside a longer word it is that word, not the secret being shown. Longer forms
/// are redacted wherever they occur.
const SHORT: usize = 6;

/// Whether `text[start..end]` touches a letter or digit on either side.
fn inside_a_word(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric)
}

/// The encodings a secret may travel or be shown in. Each maps a character at a time, so the
/// encoding of a template's expansion is the encodings of its parts around the digits.
const ENCODINGS: [fn(&str) -> String; 9] = [
    |s| s.to_string(),
    // JSON string contents (a JSON login body, the JSON report).
    |s| {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
    },
    // application/x-www-form-urlencoded (a form login body): spaces as `+`.
    |s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect(),
    // Percent-encoding as in a URL's path or query (spaces as %20).
    |s| percent_encode(s, false),
    |s| percent_encode(s, true),
    // HTML and XML text and attributes (HTML report, JUnit).
    |s| html_escape::encode_double_quoted_attribute(s).into_owned(),
    |s| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    },
    |s| html_escape::encode_text(s).into_owned(),
    // A Markdown table cell.
    |s| s.replace('\\', "\\\\").replace('|', "\\|"),
];

/// Every form of a literal secret: the encodings above, and base64 (as inside a Basic
/// `Authorization` header a target might echo).
fn forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    let mut out: Vec<String> = ENCODINGS.iter().map(|e| e(secret)).collect();
    out.push(base64::engine::general_purpose::STANDARD.encode(secret));
    out.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    out
}

/// Percent-encode every byte that is not unreserved (RFC 3986), in upper or lower case hex.
fn percent_encode(s: &str, lower: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_literal_secret_is_redacted() {
        let secret = "p@ss w\"ord&<1>|";
        let r = Redactor::new(&[secret]);
        for form in forms(secret) {
            let text = format!("before {form} after");
            let out = r.redact(&text);
            assert!(!out.contains(&form), "{form:?} survived in {out:?}");
            assert!(out.contains(MARKER), "{out:?}");
            assert!(
                out.starts_with("before ") && out.ends_with(" after"),
                "{out:?}"
            );
        }
    }

    #[test]
    fn templated_secrets_are_redacted_in_every_expansion() {
        let r = Redactor::new(&["Pw {user}!"]);
        for text in [
            "password=Pw+17%21 sent",
            "\"Pw 17!\"",
            "Pw%2017%21",
            "Pw 1! and Pw 100000!",
        ] {
            let out = r.redact(text);
            assert!(!out.contains("Pw"), "{text:?} -> {out:?}");
        }
        // The template as written is not what was sent; other text stays.
        assert_eq!(r.redact("Pwned 3 times"), "Pwned 3 times");
    }

    /// Found on a trial with the password "x": the table read "e[REDACTED]pectation".
    #[test]
    fn a_short_secret_is_redacted_where_it_stands_apart_not_inside_words() {
        let r = Redactor::new(&["x"]);
        assert_eq!(
            r.redact("max_error_rate expectation"),
            "max_error_rate expectation"
        );
        for (text, want) in [
            ("x", "[REDACTED]"),
            ("password=x&next=/", "password=[REDACTED]&next=/"),
            ("{\"password\":\"x\"}", "{\"password\":\"[REDACTED]\"}"),
            (
                "the password x was sent",
                "the password [REDACTED] was sent",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        // Six characters and more: redacted inside words too.
        let r = Redactor::new(&["secret"]);
        assert_eq!(r.redact("mysecrets"), "my[REDACTED]s");
    }

    #[test]
    fn the_longest_form_wins_and_other_text_stays() {
        let r = Redactor::new(&["abc", "abcdef"]);
        assert_eq!(r.redact("x abcdef y abc z"), "x [REDACTED] y [REDACTED] z");
        assert_eq!(Redactor::new(&[""]).redact("abc"), "abc");
    }
}
