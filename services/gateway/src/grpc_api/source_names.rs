//! Source id or name → subdomain, remembered briefly: a public API request
//! naming its Source by id or name is then served through the same
//! host → Source path (and cache) as an HTTP request for its subdomain.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most remembered answers; past it the map starts over (cheap, and the
/// answers are all one registry call away).
const CAPACITY: usize = 10_000;

/// Remembered subdomains of Sources named by id or name, found or not.
#[derive(Debug)]
pub(crate) struct SourceNames {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

// === impl SourceNames ===

impl SourceNames {
    /// Answers are remembered for `ttl` (the gateway's source cache TTL).
    pub(crate) fn new(ttl: Duration) -> SourceNames {
        SourceNames {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The remembered answer for `key`, when still fresh at `now`:
    /// `Some(None)` means the registry said there is no such Source.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Option<String>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (subdomain, expires_at) = entries.get(key)?;
        (now < *expires_at).then(|| subdomain.clone())
    }

    /// Remembers the answer for `key` from `now`.
    pub(crate) fn insert(&self, key: String, subdomain: Option<String>, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (subdomain, now + self.ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer (found or not) is served until its TTL passes, and a zero TTL remembers nothing.
    #[test]
    fn answers_expire_after_the_ttl() {
        let names = SourceNames::new(Duration::from_secs(2));
        let now = Instant::now();
        names.insert("id:src_1".to_owned(), Some("demo".to_owned()), now);
        names.insert("name:gone".to_owned(), None, now);
        assert_eq!(names.get("id:src_1", now), Some(Some("demo".to_owned())));
        assert_eq!(names.get("name:gone", now), Some(None));
        assert_eq!(names.get("id:src_1", now + Duration::from_secs(2)), None);
        assert_eq!(names.get("id:other", now), None);

        let off = SourceNames::new(Duration::ZERO);
        off.insert("id:src_1".to_owned(), Some("demo".to_owned()), now);
        assert_eq!(off.get("id:src_1", now), None);
    }
}
