//! Read values out of a JSON document by JSON pointers, without building the document.
//!
//! The probe answers a small JSON object on every other request; building a full
//! `serde_json::Value` for it (maps, strings, then dropping them) was a tenth of sesscheck's
//! CPU per request. This walks the document once for all the pointers (PID, authenticated
//! flag, seconds left), skipping (but still validating) everything off their paths, and builds
//! a `Value` only for the values they name.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The value at `pointer` (RFC 6901, e.g. "/worker/pid") in `json`; Ok(None) if there is none.
/// Err if `json` is not JSON (the same error `serde_json::from_slice` gives). (The engine asks
/// for several at once with `pointers`; this one is what the tests compare against serde_json.)
#[cfg(test)]
pub fn pointer(json: &[u8], pointer: &str) -> Result<Option<Value>, serde_json::Error> {
    Ok(pointers(json, &[pointer])?.pop().flatten())
}

/// The values at several pointers (at most 8), in one pass over `json`: the probe asks for the
/// worker PID, the authenticated flag and sometimes the session's remaining time of the same
/// answer. Same results as calling `pointer` for each. (The engine prepares its `Pointers`
/// once instead.)
pub fn pointers(json: &[u8], pointers: &[&str]) -> Result<Vec<Option<Value>>, serde_json::Error> {
    Pointers::new(pointers).find(json)
}

/// JSON pointers split and unescaped once, to be looked up in many documents.
pub struct Pointers {
    /// One per pointer: its segments, or None for a string that is no pointer at all.
    paths: Vec<Option<Vec<String>>>,
}

/// Which pointers are still being followed: bit i for pointer i.
type Mask = u8;

impl Pointers {
    /// At most 8 pointers (the probe has 3); more is a bug in the caller.
    pub fn new(pointers: &[&str]) -> Pointers {
        assert!(pointers.len() <= Mask::BITS as usize, "at most 8 pointers");
        Pointers {
            paths: pointers.iter().map(|p| segments(p)).collect(),
        }
    }

    /// The value at each pointer; Err if `json` is not JSON (then nothing is found). Builds only
    /// the values the pointers name, and allocates nothing else.
    pub fn find(&self, json: &[u8]) -> Result<Vec<Option<Value>>, serde_json::Error> {
        let mut out = vec![None; self.paths.len()];
        let active = self
            .paths
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .fold(0, |mask, (i, _)| mask | 1 << i);
        let mut de = serde_json::Deserializer::from_slice(json);
        if active == 0 {
            // Nothing can be found, but the document must still be JSON.
            IgnoredAny::deserialize(&mut de)?;
        } else {
            let seek = Seek {
                paths: &self.paths,
                active,
                depth: 0,
                out: &mut out,
            };
            seek.deserialize(&mut de)?;
        }
        de.end()?;
        Ok(out)
    }
}

/// "/a~1b/c" → ["a/b", "c"]; "" → [] (the whole document); None if it is not a pointer.
fn segments(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    pointer.strip_prefix('/').map(|rest| {
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect()
    })
}

/// The set bits of a mask.
fn bits(mask: Mask) -> impl Iterator<Item = usize> {
    (0..Mask::BITS as usize).filter(move |i| mask & (1 << i) != 0)
}

use serde::Deserialize;

/// Walks one JSON value at `depth` for the `active` pointers, writing what it finds to `out`.
struct Seek<'s> {
    paths: &'s [Option<Vec<String>>],
    active: Mask,
    depth: usize,
    out: &'s mut [Option<Value>],
}

impl Seek<'_> {
    /// The active pointers' segments (active ones are always Some).
    fn path(&self, i: usize) -> &[String] {
        self.paths[i].as_deref().unwrap_or_default()
    }

    /// Which active pointers go on into the value under `key` (a map) or `index` (an array).
    fn matching(&self, step: impl Fn(&str) -> bool) -> Mask {
        bits(self.active)
            .filter(|&i| step(&self.path(i)[self.depth]))
            .fold(0, |mask, i| mask | 1 << i)
    }

    /// The same walk one level down, for the pointers in `active`; what an earlier copy of the
    /// same key found is dropped first, so that the last copy counts, as in a built document.
    fn down(&mut self, active: Mask) -> Seek<'_> {
        for i in bits(active) {
            self.out[i] = None;
        }
        Seek {
            paths: self.paths,
            active,
            depth: self.depth + 1,
            out: &mut *self.out,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let ends_here = bits(self.active).any(|i| self.path(i).len() == self.depth);
        if !ends_here {
            return d.deserialize_any(self);
        }
        // A pointer ends here: this value is built, and a pointer going deeper finds its value
        // inside it (one pointer a prefix of another, rare).
        let here = Value::deserialize(d)?;
        for i in bits(self.active) {
            self.out[i] = walk(&here, &self.path(i)[self.depth..]).cloned();
        }
        Ok(())
    }
}

/// `Value::pointer` with segments already split and unescaped.
fn walk<'v>(mut v: &'v Value, path: &[String]) -> Option<&'v Value> {
    for segment in path {
        v = match v {
            Value::Object(map) => map.get(segment)?,
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

/// Which active pointers a map key leads on: read as a borrowed or unescaped `str`, no copy.
struct KeyMatches<'a, 's>(&'a Seek<'s>);

impl<'de> DeserializeSeed<'de> for KeyMatches<'_, '_> {
    type Value = Mask;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Mask, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMatches<'_, '_> {
    type Value = Mask;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Mask, E> {
        Ok(self.0.matching(|segment| segment == key))
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(hit) = map.next_key_seed(KeyMatches(&self))? {
            if hit == 0 {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(self.down(hit))?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        for index in 0usize.. {
            let hit = self.matching(|segment| array_index(segment) == Some(index));
            let more = if hit == 0 {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                seq.next_element_seed(self.down(hit))?.is_some()
            };
            if !more {
                break;
            }
        }
        Ok(())
    }
    // A scalar where a pointer wants to descend: nothing there.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
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
        assert_eq!(found[2], Some(Value::from(3)));
        assert_eq!(found[3], None);
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
