//! The UI's sign-in sessions: a random id in an HttpOnly cookie, kept server-side with its
//! expiry and its CSRF token. The master key itself never leaves the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::HeaderMap;
use llmgate_core::SignedIn;

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The cookie's name.
pub(crate) const COOKIE: &str = "llmgate_ui";
/// Sessions kept at most; the oldest goes when a sign-in would pass it.
const MAX_SESSIONS: usize = 1024;

/// The signed-in sessions. Clones share them; the gateway keeps one for its life, so a config
/// reload signs nobody out.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.lock().len())
            .finish()
    }
}

struct Session {
    csrf: String,
    who: SignedIn,
    expires: Instant,
}

impl Sessions {
    /// No sessions.
    pub fn new() -> Self {
        Sessions::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Nothing is left half-written under this lock: a poisoned map is still whole.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for `who`: its id and CSRF token (`None` if the system has no
    /// randomness).
    pub(crate) fn open(&self, who: SignedIn) -> Option<(String, String)> {
        let id = token()?;
        let csrf = token()?;
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                who,
                expires: now + SESSION_TTL,
            },
        );
        Some((id, csrf))
    }

    /// The CSRF token of session `id` and who signed in, if it is open and not expired.
    pub(crate) fn csrf(&self, id: &str) -> Option<(String, SignedIn)> {
        let now = Instant::now();
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > now => Some((s.csrf.clone(), s.who.clone())),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// 32 random bytes, hex.
fn token() -> Option<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The session id in the request's cookies.
pub(crate) fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value for session `id` (`Secure` when the request came over TLS).
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::UserRole;

    #[test]
    fn a_session_has_its_own_csrf_token_and_ends_when_closed() {
        let sessions = Sessions::new();
        let who = SignedIn {
            user_id: Some("ana".into()),
            role: UserRole::InternalUserViewer,
            name: "ana".into(),
        };
        let (id, csrf) = sessions.open(who.clone()).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert_eq!(sessions.csrf(&id), Some((csrf, who)));
        assert_eq!(sessions.csrf("not-a-session"), None);
        sessions.close(&id);
        assert_eq!(sessions.csrf(&id), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let c = set_cookie("abc", true);
        assert!(c.starts_with("llmgate_ui=abc; Path=/ui; HttpOnly; SameSite=Strict"));
        assert!(c.ends_with("; Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; llmgate_ui=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_id(&h), Some("xyz"));
    }
}
