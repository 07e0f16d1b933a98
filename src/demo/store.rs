//! Session stores. All of them answer the same questions: "which session does
//! this cookie value name?", "store this session, what is its cookie value?",
//! and "forget this session".
use super::crypto;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub username: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Session {
    /// Random, 128 bits, hex.
    pub id: String,
    /// `None` for an anonymous session (created before login).
    pub user: Option<User>,
    /// Unix seconds.
    pub created_at: u64,
    /// Boot generation of the target when the session was created.
    pub boot: u64,
    /// Unix seconds after which the session is gone; `None` = never.
    pub expires_at: Option<u64>,
}

impl Session {
    pub fn new(user: Option<User>, boot: u64, lifetime_secs: Option<u64>) -> Session {
        let now = unix_now();
        Session {
            id: crypto::random_id(),
            user,
            created_at: now,
            boot,
            expires_at: lifetime_secs.map(|secs| now + secs),
        }
    }

    fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= unix_now())
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Session ids are hex; anything else is rejected before it gets near a file
/// name (no path traversal through the cookie).
fn looks_like_session_id(value: &str) -> bool {
    (16..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit())
}

pub enum SessionStore {
    /// `shared` and `wipe-on-restart`: one JSON file per session.
    Files(FileStore),
    /// `memory`: this worker's own map.
    Memory(MemoryStore),
    /// `secret-per-worker`: the session lives in the signed cookie itself.
    SignedCookies(SignedCookieStore),
}

impl SessionStore {
    /// The live (not expired) session a cookie value names, if any.
    pub async fn load(&self, cookie_value: &str) -> Option<Session> {
        let session = match self {
            SessionStore::Files(files) => files.load(cookie_value).await,
            SessionStore::Memory(memory) => memory.load(cookie_value),
            SessionStore::SignedCookies(signed) => signed.load(cookie_value),
        }?;
        if session.is_expired() {
            self.delete(&session.id).await;
            return None;
        }
        Some(session)
    }

    /// Stores (creates or overwrites) a session and returns its cookie value.
    pub async fn save(&self, session: &Session) -> anyhow::Result<String> {
        match self {
            SessionStore::Files(files) => files.save(session).await,
            SessionStore::Memory(memory) => Ok(memory.save(session)),
            SessionStore::SignedCookies(signed) => signed.save(session),
        }
    }

    /// Forgets a session. Signed-cookie sessions cannot be revoked server-side
    /// (that is a property of the design, as in Flask's default sessions).
    pub async fn delete(&self, session_id: &str) {
        match self {
            SessionStore::Files(files) => files.delete(session_id).await,
            SessionStore::Memory(memory) => memory.delete(session_id),
            SessionStore::SignedCookies(_) => {}
        }
    }

    /// Deletes every session of `username` except `keep_id` (`--single-session`).
    pub async fn delete_other_sessions_of(&self, username: &str, keep_id: &str) {
        match self {
            SessionStore::Files(files) => files.delete_other_sessions_of(username, keep_id).await,
            SessionStore::Memory(memory) => memory.delete_other_sessions_of(username, keep_id),
            SessionStore::SignedCookies(_) => {}
        }
    }
}

fn belongs_to(session: &Session, username: &str) -> bool {
    session
        .user
        .as_ref()
        .is_some_and(|user| user.username == username)
}

/// One `<id>.json` file per session; written atomically (tmp + rename).
pub struct FileStore {
    pub dir: PathBuf,
}

impl FileStore {
    fn path_of(&self, session_id: &str) -> PathBuf {
        self.dir.join(format!("{session_id}.json"))
    }

    async fn load(&self, cookie_value: &str) -> Option<Session> {
        if !looks_like_session_id(cookie_value) {
            return None;
        }
        let bytes = tokio::fs::read(self.path_of(cookie_value)).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn save(&self, session: &Session) -> anyhow::Result<String> {
        let path = self.path_of(&session.id);
        let json = serde_json::to_vec(session)?;
        tokio::task::spawn_blocking(move || super::state_dir::write_atomically(&path, &json))
            .await??;
        Ok(session.id.clone())
    }

    async fn delete(&self, session_id: &str) {
        if looks_like_session_id(session_id) {
            let _ = tokio::fs::remove_file(self.path_of(session_id)).await;
        }
    }

    /// Scans the directory: it only holds a demo's worth of sessions.
    async fn delete_other_sessions_of(&self, username: &str, keep_id: &str) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue; // temporary files and strangers
            };
            if id == keep_id {
                continue;
            }
            if let Some(session) = self.load(id).await {
                if belongs_to(&session, username) {
                    self.delete(id).await;
                }
            }
        }
    }
}

/// Sessions in this worker's memory only.
#[derive(Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<String, Session>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every operation is a single insert/remove), so poison is harmless.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn load(&self, cookie_value: &str) -> Option<Session> {
        self.map().get(cookie_value).cloned()
    }

    fn save(&self, session: &Session) -> String {
        self.map().insert(session.id.clone(), session.clone());
        session.id.clone()
    }

    fn delete(&self, session_id: &str) {
        self.map().remove(session_id);
    }

    fn delete_other_sessions_of(&self, username: &str, keep_id: &str) {
        self.map()
            .retain(|id, session| id == keep_id || !belongs_to(session, username));
    }
}

/// Cookie value = hex(JSON of the session) + "." + HMAC-SHA256 hex, signed
/// with a key that only this worker knows.
pub struct SignedCookieStore {
    pub key: Vec<u8>,
}

impl SignedCookieStore {
    pub fn with_random_key() -> SignedCookieStore {
        SignedCookieStore {
            key: rand::random::<[u8; 32]>().to_vec(),
        }
    }

    fn load(&self, cookie_value: &str) -> Option<Session> {
        let (payload, signature) = cookie_value.split_once('.')?;
        if !crypto::verify(&self.key, payload.as_bytes(), signature) {
            return None; // signed by another worker (or forged)
        }
        serde_json::from_slice(&crypto::from_hex(payload)?).ok()
    }

    fn save(&self, session: &Session) -> anyhow::Result<String> {
        // Hex keeps the value inside the characters a cookie may contain.
        let payload = crypto::to_hex(&serde_json::to_vec(session)?);
        let signature = crypto::sign(&self.key, payload.as_bytes());
        Ok(format!("{payload}.{signature}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Option<User> {
        Some(User {
            id: crypto::user_id_for(name),
            username: name.into(),
        })
    }

    #[tokio::test]
    async fn signed_cookies_only_verify_with_the_signing_key() {
        let one = SessionStore::SignedCookies(SignedCookieStore::with_random_key());
        let two = SessionStore::SignedCookies(SignedCookieStore::with_random_key());
        let cookie = one
            .save(&Session::new(user("user1"), 1, None))
            .await
            .unwrap();
        assert_eq!(one.load(&cookie).await.unwrap().user, user("user1"));
        assert!(two.load(&cookie).await.is_none());
    }

    #[tokio::test]
    async fn expired_sessions_are_gone() {
        let store = SessionStore::Memory(MemoryStore::default());
        let mut session = Session::new(user("user1"), 1, Some(60));
        session.expires_at = Some(unix_now() - 1);
        let cookie = store.save(&session).await.unwrap();
        assert!(store.load(&cookie).await.is_none());
    }

    #[tokio::test]
    async fn single_session_keeps_only_the_new_one() {
        let store = SessionStore::Memory(MemoryStore::default());
        let old = store
            .save(&Session::new(user("user1"), 1, None))
            .await
            .unwrap();
        let other = store
            .save(&Session::new(user("user2"), 1, None))
            .await
            .unwrap();
        let new = store
            .save(&Session::new(user("user1"), 1, None))
            .await
            .unwrap();
        store.delete_other_sessions_of("user1", &new).await;
        assert!(store.load(&old).await.is_none());
        assert!(store.load(&other).await.is_some());
        assert!(store.load(&new).await.is_some());
    }

    #[tokio::test]
    async fn file_store_rejects_path_like_cookies() {
        let store = FileStore {
            dir: std::env::temp_dir(),
        };
        assert!(store.load("../../etc/passwd").await.is_none());
    }
}
