//! Dashboard sessions and their CSRF tokens.
//!
//! Logging in with the admin token creates a session: a random 256-bit id,
//! kept here with its expiry and its own random CSRF token. The browser
//! holds only the id, in an `HttpOnly; SameSite=Strict; Path=/ui` cookie
//! (`Secure` when the request came over HTTPS); the admin token never
//! leaves the login request. Every form carries the session's CSRF token in
//! a hidden field and every POST is refused unless it matches (compared in
//! constant time). The login form itself, before any session exists, is
//! protected the same way by a short-lived random value sent both as a
//! cookie and as a hidden field.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header;
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "imgmesh_session";
/// The login form's CSRF cookie's name.
pub(crate) const LOGIN_COOKIE: &str = "imgmesh_login";
/// How long a session lasts after login.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// How long the login form's CSRF value lasts.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(30 * 60);
/// Sessions kept at most; when full, expired ones go first, then the oldest.
const MAX_SESSIONS: usize = 1_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The cookie's value.
    pub(crate) id: String,
    /// The token every form of this session carries.
    pub(crate) csrf: String,
    /// The name of the admin credential that logged in: what the audit log
    /// records for the changes made in this session.
    pub(crate) credential: String,
    expires: Instant,
}

/// Live sessions by id.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
}

// === impl SessionStore ===

impl SessionStore {
    /// Starts a session of the credential named `credential`, lasting
    /// [`SESSION_TTL`] from `now`.
    pub(crate) fn create(&self, now: Instant, credential: &str) -> Session {
        let session = Session {
            id: random_token(),
            csrf: random_token(),
            credential: credential.to_owned(),
            expires: now + SESSION_TTL,
        };
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, session| session.expires > now);
            if sessions.len() >= MAX_SESSIONS {
                let oldest = sessions
                    .values()
                    .min_by_key(|session| session.expires)
                    .map(|session| session.id.clone());
                if let Some(oldest) = oldest {
                    sessions.remove(&oldest);
                }
            }
        }
        sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session whose id is `id`; an expired one is forgotten.
    pub(crate) fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut sessions = self.lock();
        let session = sessions.get(id)?;
        if session.expires <= now {
            sessions.remove(id);
            return None;
        }
        Some(session.clone())
    }

    /// Ends the session `id` (logout).
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A map of sessions cannot be left half-updated in a way that matters.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// 32 random bytes, hex-encoded.
pub(crate) fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether a presented CSRF value is the expected one, in constant time;
/// an empty expectation matches nothing.
pub(crate) fn tokens_match(expected: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    !expected.is_empty()
        && expected.len() == presented.len()
        && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for cookie `name` under `/ui`, lasting `max_age`
/// (zero deletes it); `Secure` when the browser came over HTTPS.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// Whether the request reached us over HTTPS: the admin listener speaks
/// plain HTTP, so only a TLS-terminating proxy's `X-Forwarded-Proto: https`
/// says so (a forged one only makes the cookie stricter).
pub(crate) fn came_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// A session is found by its id until it expires, and not after logout.
    #[test]
    fn sessions_expire_and_end() {
        let store = SessionStore::default();
        let t0 = Instant::now();
        let session = store.create(t0, "bootstrap");
        assert_eq!(session.id.len(), 64);
        assert_ne!(session.id, session.csrf);
        assert!(store.get(&session.id, t0 + SESSION_TTL / 2).is_some());
        assert!(store.get(&session.id, t0 + SESSION_TTL).is_none());
        let other = store.create(t0, "bootstrap");
        assert!(store.get("not-a-session", t0).is_none());
        store.remove(&other.id);
        assert!(store.get(&other.id, t0).is_none());
    }

    /// The store never holds more than its bound: the oldest session goes.
    #[test]
    fn sessions_are_bounded() {
        let store = SessionStore::default();
        let t0 = Instant::now();
        let first = store.create(t0, "bootstrap");
        for n in 1..=MAX_SESSIONS {
            store.create(t0 + Duration::from_millis(n as u64), "bootstrap");
        }
        assert_eq!(store.lock().len(), MAX_SESSIONS);
        assert!(store.get(&first.id, t0).is_none());
    }

    /// Only the exact CSRF value matches; a missing or empty one never does.
    #[test]
    fn csrf_comparison() {
        assert!(tokens_match("abc", Some("abc")));
        assert!(!tokens_match("abc", Some("abd")));
        assert!(!tokens_match("abc", Some("ab")));
        assert!(!tokens_match("abc", None));
        assert!(!tokens_match("", Some("")));
    }

    /// Cookies are found among several headers and pairs; the Set-Cookie
    /// value carries every attribute, Secure only over HTTPS.
    #[test]
    fn cookie_round_trip() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("imgmesh_session=xyz"),
        );
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(
            set_cookie("n", "v", Duration::from_secs(60), false),
            "n=v; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(set_cookie("n", "v", Duration::ZERO, true).ends_with("; Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(came_over_https(&headers));
    }
}
