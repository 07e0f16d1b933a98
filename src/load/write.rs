//! The body of a `[load] requests` write for one virtual user.

use crate::http::client::Body;
use crate::scenario::requests::WriteRequest;

/// `{user}` in the body's strings becomes the user's number.
pub fn body_for(w: &WriteRequest, user: usize) -> Option<Body> {
    let n = user.to_string();
    if let Some(form) = &w.form {
        return Some(Body::Form(
            form.iter()
                .map(|(k, v)| (k.clone(), v.replace("{user}", &n)))
                .collect(),
        ));
    }
    w.json.as_ref().map(|j| {
        fn fill(v: &serde_json::Value, n: &str) -> serde_json::Value {
            match v {
                serde_json::Value::String(s) => serde_json::Value::String(s.replace("{user}", n)),
                serde_json::Value::Array(a) => a.iter().map(|x| fill(x, n)).collect(),
                serde_json::Value::Object(o) => o
                    .iter()
                    .map(|(k, x)| (k.clone(), fill(x, n)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
                other => other.clone(),
            }
        }
        Body::Json(fill(j, &n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::requests::RequestSpec;

    #[derive(serde::Deserialize)]
    struct L {
        requests: Vec<RequestSpec>,
    }

    #[test]
    fn user_numbers_fill_form_and_json_bodies() {
        let l: L = toml::from_str(
            r#"requests = ["/dashboard", { path = "/notes", form = { text = "n{user}" }, expect_status = 201, csrf = {} }, { method = "PUT", path = "/api", json = { a = ["{user}"] } }]"#,
        )
        .unwrap();
        let RequestSpec::Write(w) = &l.requests[1] else {
            panic!()
        };
        assert!(
            matches!(body_for(w, 7), Some(Body::Form(f)) if f == [("text".to_string(), "n7".to_string())])
        );
        let RequestSpec::Write(w) = &l.requests[2] else {
            panic!()
        };
        assert!(matches!(body_for(w, 3), Some(Body::Json(j)) if j["a"][0] == "3"));
    }
}
