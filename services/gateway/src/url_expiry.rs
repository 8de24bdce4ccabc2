//! imgix's `expires` parameter: a Unix time after which the URL answers 404.
//!
//! It works on signed and unsigned URLs alike (on a signed one it is part of
//! the signed bytes, so it cannot be pushed back). Like every imgix
//! parameter it may also come base64url-encoded as `expires64`. When a URL
//! carries several, the earliest wins: an extra one can only shorten a
//! URL's life, never extend it.

use base64::Engine as _;

/// Why an `expires` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: must be a unix timestamp")]
pub(crate) struct InvalidExpires {
    /// The parameter as written: `expires` or `expires64`.
    pub(crate) param: &'static str,
}

/// The earliest `expires` time in a raw query (without `?`), in Unix
/// seconds, or `None` when the query has none.
pub(crate) fn expires_at(raw_query: &str) -> Result<Option<i64>, InvalidExpires> {
    let mut earliest: Option<i64> = None;
    for param in raw_query.split('&') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let time = match name {
            "expires" => parse_time(value.as_bytes()).ok_or(InvalidExpires { param: "expires" })?,
            "expires64" => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(value)
                .ok()
                .and_then(|bytes| parse_time(&bytes))
                .ok_or(InvalidExpires { param: "expires64" })?,
            _ => continue,
        };
        earliest = Some(earliest.map_or(time, |t| t.min(time)));
    }
    Ok(earliest)
}

/// Whether a URL that expires at `expires_at` is expired at `now`: imgix
/// serves it up to and including that second.
pub(crate) fn is_expired(expires_at: i64, now: i64) -> bool {
    now > expires_at
}

/// Decimal digits only (no sign, no spaces), fitting an `i64`.
fn parse_time(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queries with and without `expires`, and the time they carry.
    #[test]
    fn expires_table() {
        let cases: &[(&str, Option<i64>)] = &[
            ("", None),
            ("w=100", None),
            ("expires=1700000000", Some(1_700_000_000)),
            ("w=1&expires=1700000000&h=2", Some(1_700_000_000)),
            // The earliest of several wins.
            ("expires=200&expires=100&expires=300", Some(100)),
            // base64url of "1700000000".
            ("expires64=MTcwMDAwMDAwMA", Some(1_700_000_000)),
            (
                "expires=2000000000&expires64=MTcwMDAwMDAwMA",
                Some(1_700_000_000),
            ),
            // Other names are not `expires`.
            ("xexpires=1", None),
            ("expiresx=1", None),
            ("expires", None),
        ];
        for (query, want) in cases {
            assert_eq!(expires_at(query), Ok(*want), "{query:?}");
        }
    }

    /// Values that are not a plain Unix time are refused, naming the parameter.
    #[test]
    fn invalid_values() {
        for query in [
            "expires=",
            "expires=-1",
            "expires=+5",
            "expires=1e9",
            "expires=17000%2000",
            "expires=tomorrow",
            "expires=9999999999999999999999",
        ] {
            assert_eq!(
                expires_at(query),
                Err(InvalidExpires { param: "expires" }),
                "{query}"
            );
        }
        assert_eq!(
            expires_at("expires64=!!"),
            Err(InvalidExpires { param: "expires64" })
        );
        // base64url of "soon".
        assert_eq!(
            expires_at("expires64=c29vbg"),
            Err(InvalidExpires { param: "expires64" })
        );
    }

    /// A URL is served through its `expires` second and refused after it.
    #[test]
    fn expiry_boundary() {
        assert!(!is_expired(100, 99));
        assert!(!is_expired(100, 100));
        assert!(is_expired(100, 101));
    }
}
