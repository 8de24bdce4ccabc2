//! imgix secure URLs: checking the `s` parameter.
//!
//! `s` is [`imgmesh_imgix_params::signature`]'s, over the request path
//! exactly as received (still percent-encoded) and the raw query string with
//! its leading `?`, minus the trailing `&s=…` (or the whole `?s=…` when the
//! signature is the only parameter).
//!
//! Official client libraries order parameters differently, so the check runs
//! on the raw bytes as received, never on a re-serialised query. The
//! signature is stripped *by position*: it must be the last parameter and
//! the only one named `s` (also when percent-encoded), so nothing can be
//! slipped in after it or hidden in front of it. The comparison is constant
//! time and runs against every token the Source currently accepts (two
//! during a rotation).

use std::fmt;

use imgmesh_imgix_params::signature::{SIGNATURE_PARAM, signature};
use secrecy::{ExposeSecret as _, SecretString};
use subtle::{Choice, ConstantTimeEq as _};

/// One token a Source accepts for signatures, and until when.
pub struct SigningKey {
    token: SecretString,
    /// Unix seconds after which the token is no longer accepted; 0 for never.
    expires_at: i64,
}

// === impl SigningKey ===

impl SigningKey {
    /// A key for `token`, accepted while the time is before `expires_at`
    /// (Unix seconds; 0 for no end).
    pub fn new(token: String, expires_at: i64) -> SigningKey {
        SigningKey {
            token: SecretString::from(token),
            expires_at,
        }
    }

    /// Whether the key is accepted at `now` (Unix seconds). An empty token
    /// never is: it would make `s` a plain md5 of the URL anyone can compute.
    fn is_active(&self, now: i64) -> bool {
        !self.token.expose_secret().is_empty() && (self.expires_at == 0 || now < self.expires_at)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a request's signature was refused. Every case answers the same 403;
/// the cases exist for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request carries no `s` parameter.
    #[error("missing signature")]
    Missing,
    /// An `s` parameter is not the single, last parameter.
    #[error("misplaced signature")]
    Misplaced,
    /// `s` matches none of the Source's active tokens.
    #[error("wrong signature")]
    Mismatch,
}

/// Checks the `s` signature of a request given its raw path (leading `/`,
/// percent-encoded as received) and raw query (without `?`; `None` when the
/// request had no `?`), against `keys` at `now` (Unix seconds).
///
/// Returns the query without the signature: what the rest of the request
/// is served from.
pub fn verify<'q>(
    raw_path: &str,
    raw_query: Option<&'q str>,
    keys: &[SigningKey],
    now: i64,
) -> Result<&'q str, SignatureError> {
    let query = raw_query.ok_or(SignatureError::Missing)?;
    let signature_at = signature_position(query)?;
    let param = &query[signature_at..];
    let (name, provided) = param.split_once('=').unwrap_or((param, ""));
    if name != SIGNATURE_PARAM {
        // `%73=…`: a parser would read it as `s`, but clients never send it.
        return Err(SignatureError::Misplaced);
    }
    // Everything in front of `&s=`; `None` when `s` is the only parameter.
    let signed_query = signature_at.checked_sub(1).map(|amp| &query[..amp]);

    let mut matched = Choice::from(0);
    for key in keys.iter().filter(|key| key.is_active(now)) {
        let expected = signature(key.token.expose_secret(), raw_path, signed_query);
        // Lengths are public (32 hex digits); the bytes are compared in
        // constant time, and every active key is tried.
        matched |= expected.as_bytes().ct_eq(provided.as_bytes());
    }
    if bool::from(matched) {
        Ok(signed_query.unwrap_or(""))
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `raw_path` and `query` signed with the active key at `now` that stays
/// valid longest (one without an end first), as `s=<signature>` appended to
/// the query (which may be empty); `None` when no key is active.
pub(crate) fn signed_query(
    keys: &[SigningKey],
    raw_path: &str,
    query: &str,
    now: i64,
) -> Option<String> {
    let key = keys
        .iter()
        .filter(|key| key.is_active(now))
        .max_by_key(|key| {
            if key.expires_at == 0 {
                i64::MAX
            } else {
                key.expires_at
            }
        })?;
    let signed = (!query.is_empty()).then_some(query);
    let s = signature(key.token.expose_secret(), raw_path, signed);
    Some(match signed {
        Some(query) => format!("{query}&s={s}"),
        None => format!("s={s}"),
    })
}

/// The byte offset in `query` where the signature parameter starts: the
/// last parameter, named exactly `s`, and no other parameter whose name
/// decodes to `s`.
fn signature_position(query: &str) -> Result<usize, SignatureError> {
    let mut start = 0;
    let mut found = None;
    let mut last_start = 0;
    for param in query.split('&') {
        let name = param.split_once('=').map_or(param, |(name, _)| name);
        if names_signature(name) {
            if found.is_some() {
                return Err(SignatureError::Misplaced);
            }
            found = Some(start);
        }
        last_start = start;
        start += param.len() + 1;
    }
    match found {
        None => Err(SignatureError::Missing),
        Some(at) if at != last_start => Err(SignatureError::Misplaced),
        Some(at) => Ok(at),
    }
}

/// Whether a raw parameter name means `s`: literally, or percent-encoded
/// (`%73`), which a query parser would decode to the same name.
fn names_signature(raw_name: &str) -> bool {
    raw_name == SIGNATURE_PARAM || raw_name.eq_ignore_ascii_case("%73")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn keys(tokens: &[&str]) -> Vec<SigningKey> {
        tokens
            .iter()
            .map(|token| SigningKey::new((*token).to_owned(), 0))
            .collect()
    }

    /// Splits `/path?query` as the gateway receives it.
    fn split(path_and_query: &str) -> (&str, Option<&str>) {
        match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        }
    }

    fn check(tokens: &[&str], path_and_query: &str) -> Result<String, SignatureError> {
        let (path, query) = split(path_and_query);
        verify(path, query, &keys(tokens), NOW).map(str::to_owned)
    }

    /// Appends `s` as a client library does: `&s=` after a query, `?s=` without one.
    fn signed(token: &str, path_and_query: &str) -> String {
        let (path, query) = split(path_and_query);
        let s = signature(token, path, query);
        let joiner = if query.is_some() { '&' } else { '?' };
        format!("{path_and_query}{joiner}s={s}")
    }

    /// The four public vectors from imgix's client libraries.
    #[test]
    fn imgix_vectors() {
        let vectors = [
            (
                "FOO123bar",
                "/users/1.png",
                "6797c24146142d5b40bde3141fd3600c",
            ),
            (
                "FOO123bar",
                "/users/1.png?h=300&w=400",
                "1a4e48641614d1109c6a7af51be23d18",
            ),
            (
                "10adc394",
                "/images/demo.png?w=200",
                "da421114ca238d1f4a927b889f67c34e",
            ),
            (
                "10adc394",
                "/images/demo.png?mark",
                "6ca2720a15de7ec9862650cca69ad96d",
            ),
        ];
        for (token, input, s) in vectors {
            let (path, query) = split(input);
            assert_eq!(signature(token, path, query), s, "{input}");
            let joiner = if query.is_some() { '&' } else { '?' };
            let url = format!("{input}{joiner}s={s}");
            let unsigned = query.unwrap_or("");
            assert_eq!(check(&[token], &url).as_deref(), Ok(unsigned), "{url}");
        }
    }

    /// A missing `s` (no query, an empty one, or other parameters only) is refused.
    #[test]
    fn missing_signature() {
        for url in ["/users/1.png", "/users/1.png?", "/users/1.png?h=300&w=400"] {
            assert_eq!(
                check(&["FOO123bar"], url),
                Err(SignatureError::Missing),
                "{url}"
            );
        }
    }

    /// A wrong token, a tampered path or value, or a bad `s` value is a mismatch.
    #[test]
    fn wrong_or_tampered_signatures() {
        let good = "/users/1.png?h=300&w=400&s=1a4e48641614d1109c6a7af51be23d18";
        assert!(check(&["FOO123bar"], good).is_ok());
        let cases = [
            // Another token.
            (&["foo123bar"][..], good.to_owned()),
            // Tampered value and path.
            (&["FOO123bar"], good.replace("w=400", "w=4000")),
            (&["FOO123bar"], good.replace("/users/1", "/users/2")),
            // Truncated, uppercase, padded and empty signatures.
            (&["FOO123bar"], good[..good.len() - 1].to_owned()),
            (&["FOO123bar"], good.replace("1a4e", "1A4E")),
            (&["FOO123bar"], format!("{good}0")),
            (&["FOO123bar"], "/users/1.png?h=300&w=400&s=".to_owned()),
            (&["FOO123bar"], "/users/1.png?h=300&w=400&s".to_owned()),
        ];
        for (tokens, url) in cases {
            assert_eq!(check(tokens, &url), Err(SignatureError::Mismatch), "{url}");
        }
    }

    /// Reordering the parameters after signing breaks the signature: the raw bytes are signed.
    #[test]
    fn reordered_parameters_are_refused() {
        let url = "/users/1.png?w=400&h=300&s=1a4e48641614d1109c6a7af51be23d18";
        assert_eq!(check(&["FOO123bar"], url), Err(SignatureError::Mismatch));
    }

    /// The path is used as received: a differently encoded but equivalent path does not match.
    #[test]
    fn raw_path_is_signed() {
        let url = signed("tok", "/caf%C3%A9.png?w=10");
        assert!(check(&["tok"], &url).is_ok());
        let recoded = url.replace("%C3%A9", "%c3%a9");
        assert_eq!(check(&["tok"], &recoded), Err(SignatureError::Mismatch));
    }

    /// Parameters injected after `s`, a second `s`, or an encoded `s` elsewhere are refused.
    #[test]
    fn injected_parameters_are_refused() {
        let good = signed("FOO123bar", "/users/1.png?h=300&w=400");
        assert!(check(&["FOO123bar"], &good).is_ok());
        let s = good.rsplit_once("s=").unwrap().1.to_owned();
        let misplaced = [
            format!("{good}&w=4000"),
            format!("{good}&"),
            format!("{good}&s={s}"),
            format!("/users/1.png?s={s}&h=300&w=400"),
            format!("/users/1.png?h=300&s={s}&w=400"),
            format!("/users/1.png?h=300&%73=x&w=400&s={s}"),
            format!("/users/1.png?h=300&w=400&%73={s}"),
            format!("/users/1.png?h=300&w=400&s&s={s}"),
        ];
        for url in misplaced {
            assert_eq!(
                check(&["FOO123bar"], &url),
                Err(SignatureError::Misplaced),
                "{url}"
            );
        }
        // A parameter whose name merely starts with `s` is an ordinary parameter.
        let sat = signed("FOO123bar", "/users/1.png?sat=10&s2=1");
        assert_eq!(check(&["FOO123bar"], &sat).as_deref(), Ok("sat=10&s2=1"));
    }

    /// `?s=` alone signs the bare path; `?&s=` keeps the `?` in the signed input, as the rule says.
    #[test]
    fn only_parameter_and_empty_prefix() {
        let alone = format!(
            "/users/1.png?s={}",
            signature("FOO123bar", "/users/1.png", None)
        );
        assert_eq!(check(&["FOO123bar"], &alone).as_deref(), Ok(""));
        let with_amp = format!(
            "/users/1.png?&s={}",
            signature("FOO123bar", "/users/1.png", Some(""))
        );
        assert_eq!(check(&["FOO123bar"], &with_amp).as_deref(), Ok(""));
        let bare_s = format!(
            "/users/1.png?&s={}",
            signature("FOO123bar", "/users/1.png", None)
        );
        assert_eq!(
            check(&["FOO123bar"], &bare_s),
            Err(SignatureError::Mismatch)
        );
    }

    /// During a rotation both tokens sign; an expired token no longer does; an empty token never does.
    #[test]
    fn rotation_and_expiry() {
        let old = signed("old-token", "/a.png?w=1");
        let new = signed("new-token", "/a.png?w=1");
        let (path, query) = split(&old);
        let both = [
            SigningKey::new("new-token".to_owned(), 0),
            SigningKey::new("old-token".to_owned(), NOW + 5),
        ];
        assert!(verify(path, query, &both, NOW).is_ok());
        assert!(verify(path, query, &both, NOW + 4).is_ok());
        assert_eq!(
            verify(path, query, &both, NOW + 5),
            Err(SignatureError::Mismatch)
        );
        let (path, query) = split(&new);
        assert!(verify(path, query, &both, NOW + 5).is_ok());

        let unsigned_md5 = signed("", "/a.png?w=1");
        let (path, query) = split(&unsigned_md5);
        let empty = [SigningKey::new(String::new(), 0)];
        assert_eq!(
            verify(path, query, &empty, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(path, query, &[], NOW), Err(SignatureError::Mismatch));
    }

    /// A key's Debug output never shows the token.
    #[test]
    fn debug_redacts_the_token() {
        let key = SigningKey::new("very-secret-token".to_owned(), 9);
        let debug = format!("{key:?}");
        assert!(!debug.contains("very-secret-token"), "{debug}");
        assert!(debug.contains("expires_at: 9"), "{debug}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// For any path and query, the URL a client library signs verifies
        /// (and hands back the unsigned query), and changing any one byte of
        /// it — path, query or signature — never verifies.
        #[test]
        fn signed_urls_verify_and_any_one_byte_change_does_not(
            token in "[A-Za-z0-9]{8,24}",
            path in "/[a-z0-9%._~/-]{0,20}",
            // Parameters as libraries write them; none named `s` (the
            // signature must be the only one, also percent-encoded).
            query in proptest::option::of(
                "[a-rt-z0-9_.-]{1,6}=[a-z0-9%+.,-]{0,6}(&[a-rt-z0-9_.-]{1,6}=[a-z0-9%+.,-]{0,6}){0,3}"
            ),
        ) {
            let path_and_query = match &query {
                Some(query) => format!("{path}?{query}"),
                None => path.clone(),
            };
            let url = signed(&token, &path_and_query);
            let served = check(&[token.as_str()], &url);
            proptest::prop_assert_eq!(served.as_deref(), Ok(query.as_deref().unwrap_or("")));
            for at in 1..url.len() {
                let mut changed = url.clone().into_bytes();
                changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
                let changed = String::from_utf8(changed).unwrap();
                proptest::prop_assert!(
                    check(&[token.as_str()], &changed).is_err(),
                    "{changed} verified"
                );
            }
        }
    }
}
