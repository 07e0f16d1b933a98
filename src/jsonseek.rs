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
/// Err if `json` is not JSON (the same error `serde_json::from_slice` gives). (The engine asks
/// for several at once with `pointers`; this one is what the tests compare against serde_json.)
#[cfg(test)]
pub fn pointer(json: &[u8], pointer: &str) -> Result<Option<Value>, serde_json::Error> {
    Ok(pointers(json, &[pointer])?.pop().flatten())
}

/// The values at several pointers, in one pass over `json` (the probe asks for the worker PID,
/// the authenticated flag and sometimes the session's remaining time of the same answer).
/// Same results as calling `pointer` for each.
pub fn pointers(json: &[u8], pointers: &[&str]) -> Result<Vec<Option<Value>>, serde_json::Error> {
    let paths: Vec<Option<Vec<Cow<str>>>> = pointers.iter().map(|p| segments(p)).collect();
    // What is looked for: (which answer, the path still to walk). Not a pointer at all: nothing
    // is there, but the document must still be JSON.
    let wants: Vec<Want> = paths
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.as_deref()?)))
        .collect();
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = if wants.is_empty() {
        IgnoredAny::deserialize(&mut de)?;
        Vec::new()
    } else {
        Seek(wants).deserialize(&mut de)?
    };
    de.end()?;
    let mut out = vec![None; pointers.len()];
    for (i, v) in found {
        out[i] = Some(v);
    }
    Ok(out)
}

/// "/a~1b/c" → ["a/b", "c"]; "" → [] (the whole document); None if it is not a pointer.
fn segments(pointer: &str) -> Option<Vec<Cow<'_, str>>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
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
}

use serde::Deserialize;

/// A pointer still being followed: the index of its answer and the segments left.
type Want<'a, 'p> = (usize, &'a [Cow<'p, str>]);

/// Walks one JSON value for every `Want`; gives back (answer index, value) for each found.
struct Seek<'a, 'p>(Vec<Want<'a, 'p>>);

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = Vec<(usize, Value)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.iter().all(|(_, path)| !path.is_empty()) {
            return d.deserialize_any(self);
        }
        // A pointer ends here: this value is built, and any pointer going deeper finds its
        // value inside it (one pointer a prefix of another, rare).
        let here = Value::deserialize(d)?;
        Ok(self
            .0
            .iter()
            .filter_map(|(i, path)| Some((*i, walk(&here, path)?.clone())))
            .collect())
    }
}

/// `Value::pointer` with segments already split and unescaped.
fn walk<'v>(mut v: &'v Value, path: &[Cow<str>]) -> Option<&'v Value> {
    for segment in path {
        v = match v {
            Value::Object(map) => map.get(segment.as_ref())?,
            Value::Array(items) => items.get(array_index(segment)?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// RFC 6901 array indices: "0", or digits without a leading zero.
fn array_index(segment: &str) -> Option<usize> {
    if segment.len() > 1 && segment.starts_with('0') {
        return None;
    }
    segment.parse().ok()
}

/// Which of the wants a map key leads on (their remaining paths); no allocation when none.
struct KeyMatches<'w, 'a, 'p>(&'w [Want<'a, 'p>]);

impl<'de, 'a, 'p> DeserializeSeed<'de> for KeyMatches<'_, 'a, 'p> {
    type Value = Vec<Want<'a, 'p>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a, 'p> Visitor<'de> for KeyMatches<'_, 'a, 'p> {
    type Value = Vec<Want<'a, 'p>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .iter()
            .filter(|(_, path)| path[0] == key)
            .map(|(i, path)| (*i, &path[1..]))
            .collect())
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = Vec<(usize, Value)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Vec<(usize, Value)> = Vec::new();
        // A key given twice: the last one counts, as when serde_json builds the map.
        while let Some(matched) = map.next_key_seed(KeyMatches(&self.0))? {
            if matched.is_empty() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let values = map.next_value_seed(Seek(matched.clone()))?;
            // Whatever an earlier copy of this key gave is replaced, found or not.
            found.retain(|(i, _)| !matched.iter().any(|(m, _)| m == i));
            found.extend(values);
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = Vec::new();
        let mut i = 0usize;
        loop {
            let matched: Vec<Want> = self
                .0
                .iter()
                .filter(|(_, path)| array_index(&path[0]) == Some(i))
                .map(|(n, path)| (*n, &path[1..]))
                .collect();
            if matched.is_empty() {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
            } else {
                match seq.next_element_seed(Seek(matched))? {
                    Some(values) => found.extend(values),
                    None => break,
                }
            }
            i += 1;
        }
        Ok(found)
    }
    // A scalar where a pointer wants to descend: nothing there.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
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
    fn several_pointers_in_one_pass_find_what_each_finds() {
        let doc = r#"{"worker":{"pid":42,"boot":1},"authenticated":true,"a":[1,{"b":2}],"a":[3]}"#;
        let asked = [
            "/worker/pid",
            "/authenticated",
            "/worker",
            "/a/0",
            "/a/1/b",
            "/missing",
            "nope",
            "",
            "/worker/pid",
        ];
        let whole: Value = serde_json::from_str(doc).unwrap();
        let found = pointers(doc.as_bytes(), &asked).unwrap();
        let expected: Vec<Option<Value>> =
            asked.iter().map(|p| whole.pointer(p).cloned()).collect();
        assert_eq!(found, expected);
        // A key given twice: the last one counts ("a" is [3]), as in the built document.
        assert_eq!(found[3], Some(Value::from(3)));
        assert_eq!(found[4], None);
        assert!(pointers(b"{\"a\":", &["/a", "/b"]).is_err());
        assert_eq!(pointers(b"[1]", &[]).unwrap(), Vec::<Option<Value>>::new());
        assert!(pointers(b"[1", &[]).is_err());
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
