//! A limit on wrong admin tokens per client IP address, so the admin token
//! cannot be guessed at network speed.
//!
//! Each address may present [`MAX_FAILURES`] wrong tokens per
//! [`FAILURE_WINDOW`] (the window starts at its first failure). After that
//! every request from the address — even one with the right token — is
//! refused with 429 and `Retry-After` until the window is over: a guesser
//! must not learn that a guess was right. Requests without any token are
//! refused (401) but not counted: they guess nothing. At most
//! [`MAX_CLIENTS`] addresses are remembered; when full, finished windows go
//! first, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens an address may present per window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// How long an address's failures count.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most.
pub(crate) const MAX_CLIENTS: usize = 10_000;

/// Wrong-token counts per client address (see the module documentation).
#[derive(Debug)]
pub(crate) struct AuthFailureLimiter {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

// === impl AuthFailureLimiter ===

impl AuthFailureLimiter {
    /// A limiter allowing `max_failures` per `window`, for at most
    /// `capacity` addresses.
    pub(crate) fn new(max_failures: u32, window: Duration, capacity: usize) -> AuthFailureLimiter {
        AuthFailureLimiter {
            max_failures,
            window,
            capacity,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// How long `client` must wait before it may try again at `now`, or
    /// `None` when it may try now.
    pub(crate) fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let mut clients = self.lock();
        let failures = *clients.get(&client)?;
        let ends = failures.since + self.window;
        if ends <= now {
            clients.remove(&client);
            return None;
        }
        (failures.count >= self.max_failures).then(|| ends - now)
    }

    /// Counts one wrong token from `client` at `now`.
    pub(crate) fn record_failure(&self, client: IpAddr, now: Instant) {
        let window = self.window;
        let mut clients = self.lock();
        if let Some(failures) = clients.get_mut(&client)
            && failures.since + window > now
        {
            failures.count = failures.count.saturating_add(1);
            return;
        }
        if clients.len() >= self.capacity && !clients.contains_key(&client) {
            clients.retain(|_, failures| failures.since + window > now);
            if clients.len() >= self.capacity {
                let oldest = clients
                    .iter()
                    .min_by_key(|(_, failures)| failures.since)
                    .map(|(client, _)| *client);
                if let Some(oldest) = oldest {
                    clients.remove(&oldest);
                }
            }
        }
        clients.insert(
            client,
            Failures {
                since: now,
                count: 1,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // Counters cannot be left inconsistent in a way that matters.
        imgmesh_runtime::lock(&self.clients)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Default for AuthFailureLimiter {
    fn default() -> AuthFailureLimiter {
        AuthFailureLimiter::new(MAX_FAILURES, FAILURE_WINDOW, MAX_CLIENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// Ten failures are allowed; the eleventh attempt waits for the rest of the window, then the address starts afresh.
    #[test]
    fn blocks_after_ten_failures_until_the_window_ends() {
        let limiter = AuthFailureLimiter::default();
        let t0 = Instant::now();
        for n in 0..10 {
            assert_eq!(limiter.blocked_for(ip(1), t0), None, "attempt {n}");
            limiter.record_failure(ip(1), t0 + Duration::from_secs(n));
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(
            limiter.blocked_for(ip(1), later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(
            limiter.blocked_for(ip(2), later),
            None,
            "other addresses are not blocked"
        );
        let over = t0 + FAILURE_WINDOW;
        assert_eq!(limiter.blocked_for(ip(1), over), None);
        limiter.record_failure(ip(1), over);
        assert_eq!(
            limiter.blocked_for(ip(1), over),
            None,
            "a new window starts at one"
        );
    }

    /// Failures in an expired window do not count towards the next one.
    #[test]
    fn old_failures_expire() {
        let limiter = AuthFailureLimiter::default();
        let t0 = Instant::now();
        for _ in 0..9 {
            limiter.record_failure(ip(1), t0);
        }
        let next_window = t0 + FAILURE_WINDOW + Duration::from_secs(1);
        limiter.record_failure(ip(1), next_window);
        assert_eq!(limiter.blocked_for(ip(1), next_window), None);
    }

    /// The map of addresses never grows past its capacity: finished windows go first, then the oldest.
    #[test]
    fn remembered_addresses_are_bounded() {
        let limiter = AuthFailureLimiter::new(1, Duration::from_secs(60), 2);
        let t0 = Instant::now();
        limiter.record_failure(ip(1), t0);
        limiter.record_failure(ip(2), t0 + Duration::from_secs(1));
        limiter.record_failure(ip(3), t0 + Duration::from_secs(2));
        assert_eq!(limiter.len(), 2);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(
            limiter.blocked_for(ip(1), now),
            None,
            "the oldest was dropped"
        );
        assert!(limiter.blocked_for(ip(2), now).is_some());
        assert!(limiter.blocked_for(ip(3), now).is_some());
        limiter.record_failure(ip(4), t0 + Duration::from_secs(100));
        assert_eq!(limiter.len(), 1);
    }
}
