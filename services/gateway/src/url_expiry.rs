//! imgix's `expires` parameter: a Unix time after which the URL answers 404.
//!
//! It works on signed and unsigned URLs alike (on a signed one it is part of
//! the signed bytes, so it cannot be pushed back). Like every imgix
//! parameter it may also come base64url-encoded as `expires64`. When a URL
//! carries several, the earliest wins: an extra one can only shorten a
//! URL's life, never extend it. A value that is not a plain Unix time is
//! ignored, as imgix ignores invalid parameter values (an `expires64` that
//! does not decode is refused by the query parser, like any other).

use base64::Engine as _;

/// The earliest `expires` time in a raw query (without `?`), in Unix
/// seconds, or `None` when the query has no valid one.
pub(crate) fn expires_at(raw_query: &str) -> Option<i64> {
    raw_query
        .split('&')
        .filter_map(|param| {
            let (name, value) = param.split_once('=')?;
            match name {
                "expires" => parse_time(value.as_bytes()),
                "expires64" => base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(value)
                    .ok()
                    .and_then(|bytes| parse_time(&bytes)),
                _ => None,
            }
        })
        .min()
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
            ("expires=0", Some(0)),
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
            assert_eq!(expires_at(query), *want, "{query:?}");
        }
    }

    /// Values that are not a plain Unix time are ignored, and never hide a valid one.
    #[test]
    fn invalid_values_are_ignored() {
        for value in [
            "",
            "-1",
            "+5",
            "1e9",
            "17000%2000",
            "tomorrow",
            "NaN",
            "9999999999999999999999",
        ] {
            assert_eq!(expires_at(&format!("expires={value}")), None, "{value}");
            assert_eq!(
                expires_at(&format!("expires={value}&expires=100")),
                Some(100),
                "{value}"
            );
        }
        // Undecodable, and base64url of "soon".
        assert_eq!(expires_at("expires64=!!"), None);
        assert_eq!(expires_at("expires64=c29vbg"), None);
    }

    /// A URL is served through its `expires` second and refused after it.
    #[test]
    fn expiry_boundary() {
        assert!(!is_expired(100, 99));
        assert!(!is_expired(100, 100));
        assert!(is_expired(100, 101));
    }
}
