//! Reading an app's HTML, as far as sesscheck needs it: an attribute of a tag, a form's hidden
//! field (a CSRF token), text with its entities decoded. One place, so that the login, init
//! and the error-page summaries read a page the same way.

/// Text with its character references decoded (`&amp;`, `&#x27;`, `&#39;`, every named one),
/// in one pass, so that `&amp;quot;` stays `&quot;`.
pub fn decode(text: &str) -> String {
    html_escape::decode_html_entities(text).into_owned()
}

/// An attribute's value in a tag (`name="x"`, `name='x'` or `name=x`), decoded. The name is
/// matched without regard to case, and only as a whole attribute name: `data-value=` is not
/// `value=`.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` index `tag`.
    let lower = tag.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(found) = lower[from..].find(&name) {
        let at = from + found;
        from = at + 1;
        if at == 0 || !bytes[at - 1].is_ascii_whitespace() {
            continue;
        }
        let skip_space = |mut i: usize| {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        let eq = skip_space(at + name.len());
        if bytes.get(eq) != Some(&b'=') {
            continue;
        }
        let start = skip_space(eq + 1);
        let value = match bytes.get(start) {
            Some(&quote @ (b'"' | b'\'')) => {
                let end = start + 1 + lower[start + 1..].find(quote as char)?;
                &tag[start + 1..end]
            }
            Some(_) => {
                let end = lower[start..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .map_or(lower.len(), |n| start + n);
                &tag[start..end]
            }
            None => return None,
        };
        return Some(decode(value));
    }
    None
}

/// The tags `<NAME ...>` of a page, each from `<` to its `>`.
pub fn tags<'a>(html: &'a str, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{}", name.to_ascii_lowercase());
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    std::iter::from_fn(move || loop {
        let at = from + lower[from..].find(&open)?;
        let after = at + open.len();
        from = after;
        // `<input` but not `<inputs`: the name ends at a space, `/` or `>`.
        match lower.as_bytes().get(after) {
            Some(b) if b.is_ascii_whitespace() || *b == b'/' || *b == b'>' => {}
            _ => continue,
        }
        let end = after + lower[after..].find('>')?;
        from = end + 1;
        return Some(&html[at..=end]);
    })
}

/// The value of `<input ... name="FIELD" ... value="...">` (either attribute order): a form's
/// hidden CSRF token.
pub fn hidden_field(html: &str, field: &str) -> Option<String> {
    tags(html, "input")
        .find(|tag| attr(tag, "name").as_deref() == Some(field))
        .and_then(|tag| attr(tag, "value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_in_every_quoting_decoded_once() {
        assert_eq!(
            attr(r#"<a href="/x?a=1&amp;b=2">"#, "href").unwrap(),
            "/x?a=1&b=2"
        );
        assert_eq!(attr("<a HREF='/y'>", "href").unwrap(), "/y");
        assert_eq!(attr("<a href=/z>", "href").unwrap(), "/z");
        assert_eq!(attr("<a href = \"/s p\" >", "href").unwrap(), "/s p");
        assert_eq!(
            attr(r#"<i title="&amp;quot;">"#, "title").unwrap(),
            "&quot;"
        );
        assert_eq!(attr(r#"<i title="&#x2F;&#39;">"#, "title").unwrap(), "/'");
        assert_eq!(attr("<a name=x>", "href"), None);
        // A longer name that ends in it is not it.
        assert_eq!(
            attr(r#"<input data-value="no" value="yes">"#, "value").unwrap(),
            "yes"
        );
        assert_eq!(attr(r#"<input data-value="no">"#, "value"), None);
    }

    #[test]
    fn hidden_field_in_either_order() {
        let django =
            r#"<form><input type="hidden" name="csrfmiddlewaretoken" value="abc123"></form>"#;
        assert_eq!(
            hidden_field(django, "csrfmiddlewaretoken").as_deref(),
            Some("abc123")
        );
        let flask = r#"<input id="csrf_token" value='t&amp;k' type=hidden name=csrf_token>"#;
        assert_eq!(hidden_field(flask, "csrf_token").as_deref(), Some("t&k"));
        assert_eq!(hidden_field(flask, "other"), None);
        let two =
            r#"<INPUT name="a" value="1"/><inputs name="b" value="x"><input name="b" value="2">"#;
        assert_eq!(hidden_field(two, "b").as_deref(), Some("2"));
    }
}
