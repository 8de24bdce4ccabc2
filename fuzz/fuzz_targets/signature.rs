//! imgix signature verification (`s=`) in the gateway on arbitrary bytes.
//!
//! The input is a signing token, a NUL, then a request target
//! (`/path?query`, split at its first `?` as the gateway's URI parser
//! splits it; no NUL: all target, token `FOO123bar`). Whatever the bytes:
//!
//! - verification answers, never panics, with any mix of active, expired
//!   and empty tokens;
//! - an empty or expired token never verifies anything;
//! - an accepted request ends in `s=<32 lowercase hex digits>` and the
//!   query given back is everything in front of that parameter;
//! - the target signed as a client library signs it verifies, giving back
//!   its own query, unless it already has a parameter named `s` (`%73`);
//! - changing any one byte of a signed target makes it fail.

use imgmesh_gateway::fuzzing::{SignatureError, SigningKey, signature, verify};

const NOW: i64 = 1_700_000_000;

/// `/path?query` as the gateway receives it.
fn split(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

fn keys(token: &str) -> Vec<SigningKey> {
    vec![
        SigningKey::new("retired-token".to_owned(), NOW - 1),
        SigningKey::new(String::new(), 0),
        SigningKey::new(token.to_owned(), 0),
    ]
}

/// Whether `query` has a parameter a query parser reads as `s`.
fn names_s(query: &str) -> bool {
    query.split('&').any(|param| {
        let name = param.split_once('=').map_or(param, |(name, _)| name);
        name == "s" || name.eq_ignore_ascii_case("%73")
    })
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (token, target) = text.split_once('\0').unwrap_or(("FOO123bar", text));
        let (path, query) = split(target);

        // Verification of the target as it came, with every kind of key.
        let accepted = verify(path, query, &keys(token), NOW);
        if let Ok(signed_query) = accepted {
            let raw = query.expect("an accepted request has a query");
            let provided = match raw.strip_prefix(signed_query) {
                Some(rest) if signed_query.is_empty() && !raw.starts_with('&') => {
                    rest.strip_prefix("s=")
                }
                Some(rest) => rest.strip_prefix("&s="),
                None => None,
            }
            .expect("the signature is the last parameter");
            assert_eq!(provided.len(), 32, "{raw:?}");
            assert!(
                provided
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert!(!token.is_empty(), "an empty token verified {target:?}");
        }
        // Expired and empty tokens alone never verify.
        let dead = [
            SigningKey::new(token.to_owned(), NOW),
            SigningKey::new(String::new(), 0),
        ];
        assert!(verify(path, query, &dead, NOW).is_err(), "{target:?}");

        // The target signed as a client library signs it.
        if token.is_empty() {
            return;
        }
        let s = signature(token, path, query);
        let joiner = if query.is_some() { '&' } else { '?' };
        let signed = format!("{target}{joiner}s={s}");
        let (signed_path, signed_query) = split(&signed);
        let result = verify(signed_path, signed_query, &keys(token), NOW);
        if query.is_some_and(names_s) {
            assert_eq!(result, Err(SignatureError::Misplaced), "{signed:?}");
            return;
        }
        assert_eq!(result, Ok(query.unwrap_or("")), "{signed:?}");

        // Any one-byte change breaks it: the byte and its new value come
        // from the input's last two bytes.
        let (Some(&at), Some(&flip)) = (data.last(), data.iter().rev().nth(1)) else {
            return;
        };
        let mut bytes = signed.clone().into_bytes();
        let at = usize::from(at) * bytes.len() / 256;
        bytes[at] ^= flip.max(1);
        if let Ok(changed) = String::from_utf8(bytes) {
            let (changed_path, changed_query) = split(&changed);
            assert!(
                verify(changed_path, changed_query, &keys(token), NOW).is_err(),
                "{changed:?} verifies like {signed:?}"
            );
        }
    });
}
