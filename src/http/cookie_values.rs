//! The cookies (name → value) that a user's last login set: its session cookie(s).

/// A handful of entries, looked up by name. A `Vec`, not a map: a `BTreeMap`'s first node
/// alone is ~500 bytes, held in every logged-in user's jar for the whole run.
#[derive(Default, Clone, Debug, PartialEq)]
pub struct CookieValues(Vec<(Box<str>, Box<str>)>);

impl CookieValues {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| &**n == name).map(|(_, v)| &**v)
    }

    /// Set `name` to `value`, replacing an earlier value of that name.
    pub fn insert(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, v)) => *v = value.into(),
            None => self.0.push((name.into(), value.into())),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (&**n, &**v))
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, v)| &**v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0 = Vec::new();
    }
}

/// As a map collects: a later value of a name replaces the earlier one.
impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for CookieValues {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> CookieValues {
        let mut cookies = CookieValues::default();
        for (name, value) in pairs {
            cookies.insert(name.as_ref(), value.as_ref());
        }
        cookies.0.shrink_to_fit();
        cookies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_value_of_a_name_replaces_the_earlier() {
        let c: CookieValues = [("sid", "1"), ("csrf", "2"), ("sid", "3")]
            .into_iter()
            .collect();
        assert_eq!(c.get("sid"), Some("3"));
        assert_eq!(c.get("csrf"), Some("2"));
        assert_eq!(c.get("other"), None);
        assert_eq!(c.iter().count(), 2);
        let mut values: Vec<&str> = c.values().collect();
        values.sort();
        assert_eq!(values, ["2", "3"]);
    }
}
