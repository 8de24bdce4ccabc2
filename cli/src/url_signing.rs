//! `imgmesh sign`: appends imgix's `s` signature to a URL.
//!
//! The signature is [`imgmesh_imgix_params::signature`]'s, the one the
//! gateway checks, over the URL's path exactly as given (percent-encoding
//! untouched, leading `/`) and its raw query. The URL is never parsed into
//! parts and serialised again: signing must see the bytes the gateway will
//! see. An `s` already at the end is replaced.

use imgmesh_imgix_params::signature::{SIGNATURE_PARAM, signature};
use secrecy::{ExposeSecret as _, SecretString};

/// Why a URL cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The URL has no path starting with `/`.
    #[error(
        "the url must be a path starting with '/' or an http(s) url, e.g. /images/cat.jpg?w=300"
    )]
    NoPath,
    /// The token is empty.
    #[error("the secure url token is empty: pass --token or set IMGMESH_SECURE_URL_TOKEN")]
    EmptyToken,
}

/// `url` (a full `http(s)://host/path?query` URL or `/path?query`) with
/// `s=<signature>` appended as its last parameter.
pub fn sign_url(url: &str, token: &SecretString) -> Result<String, SignError> {
    if token.expose_secret().is_empty() {
        return Err(SignError::EmptyToken);
    }
    let (url, fragment) = match url.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (url, None),
    };
    let (origin, path_and_query) = split_origin(url)?;
    let unsigned = strip_signature(path_and_query);
    let (path, query) = match unsigned.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (unsigned, None),
    };
    let signature = signature(token.expose_secret(), path, query);
    let separator = if query.is_some() { '&' } else { '?' };
    let mut signed = format!("{origin}{unsigned}{separator}{SIGNATURE_PARAM}={signature}");
    if let Some(fragment) = fragment {
        signed.push('#');
        signed.push_str(fragment);
    }
    Ok(signed)
}

/// Splits `scheme://host` off an absolute URL; a bare path has no origin.
fn split_origin(url: &str) -> Result<(&str, &str), SignError> {
    if url.starts_with('/') && !url.starts_with("//") {
        return Ok(("", url));
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let slash = rest.find('/').ok_or(SignError::NoPath)?;
            let query = rest.find('?').unwrap_or(rest.len());
            if slash > query {
                return Err(SignError::NoPath);
            }
            return Ok(url.split_at(scheme.len() + slash));
        }
    }
    Err(SignError::NoPath)
}

/// `path_and_query` without a trailing `s=…` parameter.
fn strip_signature(path_and_query: &str) -> &str {
    let Some(start) = path_and_query.rfind(['?', '&']) else {
        return path_and_query;
    };
    let param = &path_and_query[start + 1..];
    if param
        .strip_prefix(SIGNATURE_PARAM)
        .is_some_and(|rest| rest.starts_with('='))
    {
        &path_and_query[..start]
    } else {
        path_and_query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(url: &str, token: &str) -> String {
        sign_url(url, &SecretString::from(token)).unwrap()
    }

    /// The four public vectors from imgix's client libraries.
    #[test]
    fn imgix_vectors() {
        for (token, input, signature) in [
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
        ] {
            let separator = if input.contains('?') { '&' } else { '?' };
            assert_eq!(
                sign(input, token),
                format!("{input}{separator}s={signature}")
            );
        }
    }

    /// Full URLs keep their origin, which is not signed; raw bytes are kept
    /// as given, and a fragment stays last.
    #[test]
    fn full_urls_are_signed_over_path_and_query() {
        assert_eq!(
            sign(
                "https://demo.imgix.net/users/1.png?h=300&w=400",
                "FOO123bar"
            ),
            "https://demo.imgix.net/users/1.png?h=300&w=400&s=1a4e48641614d1109c6a7af51be23d18"
        );
        assert_eq!(
            sign("http://demo.localhost:8080/users/1.png#top", "FOO123bar"),
            "http://demo.localhost:8080/users/1.png?s=6797c24146142d5b40bde3141fd3600c#top"
        );
        // Percent-encoding and parameter order are signed exactly as given.
        assert_ne!(
            sign("/a%20b.png?w=1&h=2", "t"),
            sign("/a b.png?w=1&h=2", "t").replace(' ', "%20")
        );
        assert_ne!(sign("/a.png?w=1&h=2", "t"), sign("/a.png?h=2&w=1", "t"));
    }

    /// Signing again replaces the old signature instead of signing it.
    #[test]
    fn existing_signature_is_replaced() {
        let once = sign("/users/1.png?h=300&w=400", "FOO123bar");
        assert_eq!(sign(&once, "FOO123bar"), once);
        let only = sign("/users/1.png", "FOO123bar");
        assert_eq!(sign(&only, "FOO123bar"), only);
        // A parameter merely starting with s is not a signature.
        assert!(sign("/a.png?sat=5", "t").starts_with("/a.png?sat=5&s="));
    }

    /// URLs without a path, other schemes and empty tokens are refused.
    #[test]
    fn bad_input_is_refused() {
        for url in [
            "",
            "users/1.png",
            "//host/x.png",
            "ftp://host/x.png",
            "https://host",
            "https://host?x=/y",
        ] {
            assert_eq!(
                sign_url(url, &SecretString::from("t")),
                Err(SignError::NoPath),
                "{url:?}"
            );
        }
        assert_eq!(
            sign_url("/x.png", &SecretString::from("")),
            Err(SignError::EmptyToken)
        );
    }
}
