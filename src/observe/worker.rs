//! Worker identity: which process, on which replica, answered a request.
//!
//! One host's PIDs are not enough: replicas in containers have their own PID namespaces, so
//! three replicas of `gunicorn -w 3` answer with the same three PIDs. An identity is a string
//! (`"web-2:17"`, `"17"`, `"pod-abc"`), read from the probe JSON and/or from a response header
//! a reverse proxy adds (see `WorkerSpec`).
//!
//! Observations are many (hundreds of thousands kept), so each carries a `WorkerId`, a u32
//! index into one process-wide table of the distinct names, not a `String`.

use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

/// An interned worker identity. Ordered by first sighting, not by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(u32);

/// How many distinct identities are kept. A target whose header changes on every response
/// (a request id, say) would otherwise grow the table without bound; past this, every new
/// name is counted as `OVERFLOW_NAME`.
const MAX_IDENTITIES: usize = 100_000;
/// What identities past `MAX_IDENTITIES` are counted as.
pub const OVERFLOW_NAME: &str = "(other)";
/// Longer names (from a header or a probe) are cut: an identity is a label, not a payload.
const MAX_NAME_CHARS: usize = 80;

#[derive(Default)]
struct Table {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

fn table() -> &'static RwLock<Table> {
    static TABLE: OnceLock<RwLock<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// The server that answered, from a header a proxy fills with every server it tried: nginx's
/// `$upstream_addr` (which the README suggests) is `127.0.0.1:8881, 127.0.0.1:8882` after a
/// failover, and joins upstream groups with ` : ` after an internal redirect; the last one
/// answered. Taken whole, every failover made a "worker" of its own, which props up
/// `min_distinct_pids` (found on Calibre-Web behind nginx: three workers of two replicas).
pub fn answering_server(header: &str) -> &str {
    let last = header.rsplit(',').next().unwrap_or(header);
    let last = last.rsplit(" : ").next().unwrap_or(last);
    last.trim()
}

impl WorkerId {
    /// The id of `name` (trimmed, cut at `MAX_NAME_CHARS`), adding it to the table if new.
    pub fn intern(name: &str) -> WorkerId {
        let name = name.trim();
        let name = match name.char_indices().nth(MAX_NAME_CHARS) {
            Some((cut, _)) => &name[..cut],
            None => name,
        };
        // Nearly every lookup finds a known name: a shared read lock, no allocation.
        if let Some(&id) = table()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .get(name)
        {
            return WorkerId(id);
        }
        let mut t = table().write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = t.ids.get(name) {
            return WorkerId(id);
        }
        let name = if t.names.len() >= MAX_IDENTITIES {
            match t.ids.get(OVERFLOW_NAME) {
                Some(&id) => return WorkerId(id),
                None => OVERFLOW_NAME,
            }
        } else {
            name
        };
        let id = t.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        t.names.push(name.clone());
        t.ids.insert(name, id);
        WorkerId(id)
    }

    /// A bare PID, as a name ("17").
    pub fn of_pid(pid: u64) -> WorkerId {
        WorkerId::intern(&pid.to_string())
    }

    pub fn name(self) -> Arc<str> {
        let t = table().read().unwrap_or_else(|e| e.into_inner());
        t.names
            .get(self.0 as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from("?"))
    }

    /// The replica part of a `replica:worker` identity (the text before the first ':').
    pub fn replica(self) -> Option<String> {
        let name = self.name();
        name.split_once(':').map(|(r, _)| r.to_string())
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for WorkerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// From a name or a bare PID (recorded observations, old fixtures with `"pid": 17`).
impl<'de> serde::Deserialize<'de> for WorkerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<WorkerId, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum NameOrPid {
            Name(String),
            Pid(u64),
        }
        Ok(match NameOrPid::deserialize(d)? {
            NameOrPid::Name(n) => WorkerId::intern(&n),
            NameOrPid::Pid(p) => WorkerId::of_pid(p),
        })
    }
}

/// Where the identity comes from in a probe's JSON (`[probe] pid | worker | host + pid`).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonIdentity {
    /// Not read from the JSON (`pid = ""`).
    None,
    /// `pid`: a whole number above 0 (the classic single-host case).
    Pid(String),
    /// `worker`: any string or number.
    Worker(String),
    /// `host` + `pid`: `"<host>:<pid>"`.
    HostPid { host: String, pid: String },
}

/// How a scenario identifies workers, parsed once from `[probe]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    pub json: JsonIdentity,
    /// `[probe] worker_header`, lower-cased: read from every response, not only probes.
    pub header: Option<String>,
}

impl WorkerSpec {
    pub fn of(probe: &crate::scenario::Probe) -> WorkerSpec {
        let json = match (&probe.worker, &probe.host) {
            (Some(w), _) => JsonIdentity::Worker(w.clone()),
            (None, Some(h)) => JsonIdentity::HostPid {
                host: h.clone(),
                pid: probe.pid.clone(),
            },
            (None, None) if probe.pid.is_empty() => JsonIdentity::None,
            (None, None) => JsonIdentity::Pid(probe.pid.clone()),
        };
        WorkerSpec {
            json,
            header: probe.worker_header.as_ref().map(|h| h.to_ascii_lowercase()),
        }
    }

    /// Only a PID pointer (tests).
    pub fn pid(pointer: &str) -> WorkerSpec {
        WorkerSpec {
            json: if pointer.is_empty() {
                JsonIdentity::None
            } else {
                JsonIdentity::Pid(pointer.to_string())
            },
            header: None,
        }
    }

    /// The two JSON pointers to read ("" = not asked): the identity (or host) and the PID.
    pub fn pointers(&self) -> [&str; 2] {
        match &self.json {
            JsonIdentity::None => ["", ""],
            JsonIdentity::Pid(p) => [p, ""],
            JsonIdentity::Worker(w) => [w, ""],
            JsonIdentity::HostPid { host, pid } => [host, pid],
        }
    }

    /// The identity of a probe answer: the header's (`served_by`) and the JSON's joined by
    /// ':' (`"web-1:17"`) when both are there. Missing JSON values are an error only when
    /// the JSON is the only source.
    pub fn identity(
        &self,
        served_by: Option<WorkerId>,
        first: Option<&Value>,
        second: Option<&Value>,
    ) -> Result<Option<WorkerId>, String> {
        let from_json = match self.json_identity(first, second) {
            Ok(name) => name,
            Err(_) if served_by.is_some() => None,
            Err(e) => return Err(e),
        };
        Ok(match (served_by, from_json) {
            (Some(h), Some(j)) => Some(WorkerId::intern(&format!("{h}:{j}"))),
            (Some(h), None) => Some(h),
            (None, Some(j)) => Some(WorkerId::intern(&j)),
            (None, None) => None,
        })
    }

    fn json_identity(
        &self,
        first: Option<&Value>,
        second: Option<&Value>,
    ) -> Result<Option<String>, String> {
        match &self.json {
            JsonIdentity::None => Ok(None),
            JsonIdentity::Pid(ptr) => pid_text(ptr, first).map(Some),
            JsonIdentity::Worker(ptr) => label(ptr, first).map(Some),
            JsonIdentity::HostPid { host, pid } => Ok(Some(format!(
                "{}:{}",
                label(host, first)?,
                pid_text(pid, second)?
            ))),
        }
    }
}

/// A PID is a whole number above 0; anything else is said, not silently dropped.
fn pid_text(ptr: &str, v: Option<&Value>) -> Result<String, String> {
    let not_a_pid = |what: String| {
        Err(format!(
            "probe JSON has {what} at {ptr}, which is no PID (a whole number above 0)"
        ))
    };
    match v {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(pid) if pid > 0 => Ok(pid.to_string()),
            _ => not_a_pid(n.to_string()),
        },
        // A string is read leniently, as before identities were strings: apps put ids there
        // that are no PIDs, and then the id is the worker's name.
        Some(Value::String(s)) => match s.trim().parse::<u64>() {
            Ok(pid) if pid > 0 => Ok(pid.to_string()),
            _ if !s.trim().is_empty() => Ok(bounded(s.trim())),
            _ => not_a_pid(format!("{s:?}")),
        },
        _ => Err(format!("probe JSON has no number at {ptr}")),
    }
}

/// A worker's name as kept: at most `MAX_NAME` characters (a hostile probe may answer 8 MB).
fn bounded(name: &str) -> String {
    name.chars().take(MAX_NAME).collect()
}

const MAX_NAME: usize = 128;

/// A worker or host label: a non-empty string, or a number.
fn label(ptr: &str, v: Option<&Value>) -> Result<String, String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(bounded(s.trim())),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "probe JSON has {} at {ptr}, which is no worker identity (a string or a number)",
            crate::observe::worker::kind(other)
        )),
        None => Err(format!("probe JSON has no worker identity at {ptr}")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "an empty string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_answering_server_is_the_last_one_a_proxy_tried() {
        assert_eq!(answering_server("web-1"), "web-1");
        assert_eq!(answering_server(" 127.0.0.1:8881 "), "127.0.0.1:8881");
        assert_eq!(
            answering_server("127.0.0.1:8881, 127.0.0.1:8882"),
            "127.0.0.1:8882"
        );
        assert_eq!(
            answering_server("127.0.0.1:8881, 127.0.0.1:8882 : 127.0.0.1:9000"),
            "127.0.0.1:9000"
        );
        assert_eq!(answering_server("[::1]:8881, [::1]:8882"), "[::1]:8882");
        assert_eq!(answering_server("unix:/run/app.sock"), "unix:/run/app.sock");
    }

    #[test]
    fn interning_gives_one_id_per_name() {
        let a = WorkerId::intern("web-1:17");
        assert_eq!(WorkerId::intern(" web-1:17 "), a);
        assert_ne!(WorkerId::intern("web-2:17"), a);
        assert_eq!(a.name().as_ref(), "web-1:17");
        assert_eq!(a.replica().as_deref(), Some("web-1"));
        assert_eq!(WorkerId::of_pid(17).to_string(), "17");
        assert_eq!(WorkerId::of_pid(17).replica(), None);
        let long = "x".repeat(500);
        assert_eq!(WorkerId::intern(&long).name().len(), MAX_NAME_CHARS);
    }

    fn spec(json: JsonIdentity, header: Option<&str>) -> WorkerSpec {
        WorkerSpec {
            json,
            header: header.map(String::from),
        }
    }

    #[test]
    fn identities_from_each_source() {
        let pid = spec(JsonIdentity::Pid("/p".into()), None);
        assert_eq!(
            pid.identity(None, Some(&json!(17)), None),
            Ok(Some(WorkerId::of_pid(17)))
        );
        // A string that is no PID names the worker (apps put ids there), bounded in length.
        assert_eq!(
            pid.identity(None, Some(&json!("web")), None),
            Ok(Some(WorkerId::intern("web")))
        );
        assert!(pid.identity(None, Some(&json!(-3)), None).is_err());
        assert!(pid.identity(None, Some(&json!(12.5)), None).is_err());
        assert!(pid.identity(None, None, None).is_err());

        let worker = spec(JsonIdentity::Worker("/w".into()), None);
        let web = worker
            .identity(None, Some(&json!("web-2:17")), None)
            .unwrap();
        assert_eq!(web.unwrap().to_string(), "web-2:17");
        let num = worker.identity(None, Some(&json!(9)), None).unwrap();
        assert_eq!(num.unwrap().to_string(), "9");
        assert!(worker.identity(None, Some(&json!({})), None).is_err());
        assert!(worker.identity(None, Some(&json!("  ")), None).is_err());

        let host_pid = spec(
            JsonIdentity::HostPid {
                host: "/h".into(),
                pid: "/p".into(),
            },
            None,
        );
        let hp = host_pid.identity(None, Some(&json!("web-3")), Some(&json!(17)));
        assert_eq!(hp.unwrap().unwrap().to_string(), "web-3:17");
        assert!(host_pid
            .identity(None, Some(&json!("web-3")), None)
            .is_err());

        // A header names the replica; the JSON the worker in it. Without JSON the header alone.
        let header = Some(WorkerId::intern("replica-b"));
        let both = spec(JsonIdentity::Pid("/p".into()), Some("x-served-by"));
        let id = both
            .identity(header, Some(&json!(17)), None)
            .unwrap()
            .unwrap();
        assert_eq!(id.to_string(), "replica-b:17");
        assert_eq!(both.identity(header, None, None), Ok(header));
        assert_eq!(
            spec(JsonIdentity::None, None).identity(None, None, None),
            Ok(None)
        );
    }
}
