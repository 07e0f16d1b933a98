//! Read one value out of a JSON document by JSON pointer, without building the document.
//!
//! The probe answers a small JSON object on every other request; building a full
//! `serde_json::Value` for it (maps, strings, then dropping them) was a tenth of sesscheck's
//! CPU per request. This walks the document once, skipping (but still validating) everything
//! off the pointer's path, and builds a `Value` only for the value the pointer names.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The value at `pointer` (RFC 6901, e.g. "/worker/pid") in `json`; Ok(None) if there is none.
/// Err if `json` is not JSON (the same error `serde_json::from_slice` gives).
pub fn pointer(json: &[u8], pointer: &str) -> Result<Option<Value>, serde_json::Error> {
    let segments: Option<Vec<Cow<str>>> = if pointer.is_empty() {
        Some(Vec::new())
    } else {
        pointer.strip_prefix('/').map(|rest| {
            rest.split('/')
                .map(|s| {
                    if s.contains('~') {
                        Cow::Owned(s.replace("~1", "/").replace("~0", "~"))
                    } else {
                        Cow::Borrowed(s)
                    }
                })
                .collect()
        })
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = match &segments {
        Some(path) => Seek(path).deserialize(&mut de)?,
        // Not a pointer at all: nothing is there, but the document must still be JSON.
        None => {
            IgnoredAny::deserialize(&mut de)?;
            None
        }
    };
    de.end()?;
    Ok(found)
}

use serde::Deserialize;

struct Seek<'a, 'p>(&'a [Cow<'p, str>]);

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.is_empty() {
            return Value::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

/// Does a map key equal the wanted segment? (No allocation for unescaped keys.)
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (want, rest) = (&self.0[0], &self.0[1..]);
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(want))? {
            if hit && found.is_none() {
                found = map.next_value_seed(Seek(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (want, rest) = (&self.0[0], &self.0[1..]);
        // RFC 6901 array indices: "0" or no leading zero.
        let index: Option<usize> = (want.len() == 1 || !want.starts_with('0'))
            .then(|| want.parse().ok())
            .flatten();
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Seek(rest))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }
    // A scalar where the pointer wants to descend: nothing there.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_serde_json_pointer_finds() {
        let docs = [
            r#"{"worker":{"pid":42},"authenticated":true,"current_user":{"id":1,"name":"a\"b"}}"#,
            r#"{"a/b":{"m~n":[10,{"x":"y"}]},"": 1, "worker": 3}"#,
            r#"[{"pid": 1}, {"pid": 2}]"#,
            r#""just a string""#,
            r#"{"worker":{"pid":null},"authenticated":{"user":"x"}}"#,
            r#"{"k\u0065y": 5}"#,
        ];
        let pointers = [
            "",
            "/worker/pid",
            "/authenticated",
            "/current_user/name",
            "/a~1b/m~0n/1/x",
            "/a~1b/m~0n/0",
            "/",
            "/worker",
            "/1/pid",
            "/01/pid",
            "/5",
            "/worker/pid/deeper",
            "/key",
            "nope",
            "/missing",
        ];
        for d in docs {
            let v: Value = serde_json::from_str(d).unwrap();
            for p in pointers {
                assert_eq!(
                    pointer(d.as_bytes(), p).unwrap(),
                    v.pointer(p).cloned(),
                    "{d} {p}"
                );
            }
        }
    }

    #[test]
    fn rejects_what_is_not_json() {
        for bad in [
            &b"<html>"[..],
            b"{\"a\":1",
            b"{\"a\":1} x",
            &[0xff, 0xfe],
            b"",
        ] {
            assert!(pointer(bad, "/a").is_err(), "{bad:?}");
        }
        let deep = "[".repeat(100_000);
        assert!(pointer(deep.as_bytes(), "/0").is_err());
        assert!(pointer(deep.as_bytes(), "/x").is_err());
    }
}
