//! The registry's wall clock: Unix seconds for timestamps, token expiries
//! and "now" in queries. Its own module so the store and the operations can
//! both read the time without importing each other.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Microseconds since the Unix epoch (the audit log's timestamps).
pub(crate) fn unix_now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, rounded up.
pub(crate) fn unix_now_ceil() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| {
            let seconds = i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX);
            if elapsed.subsec_nanos() > 0 {
                seconds.saturating_add(1)
            } else {
                seconds
            }
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounding up never goes below the plain reading, nor more than one
    /// second past it.
    #[test]
    fn ceil_is_within_a_second_above() {
        let before = unix_now();
        let ceil = unix_now_ceil();
        let after = unix_now();
        assert!(
            ceil >= before && ceil <= after + 1,
            "{before} {ceil} {after}"
        );
    }
}
