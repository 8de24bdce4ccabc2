//! The asset path of a request: the URL path, percent-decoded exactly once
//! and checked before anything is called with it.
//!
//! The path becomes an S3 key under the Source's prefix. S3 keys are opaque,
//! so every key S3 stores is served — `a//b`, `a/./b`, `a\b` included —
//! except what could step out of the prefix on a store that reads keys as
//! file paths: a `..` segment, a leading `/` (or `\`), and NUL or another
//! control character. `/` and `\` both separate segments for those checks
//! (the one object-key rule, `imgmesh_imgix_params::check_asset_key`, which
//! the fetcher's `object_key.rs` copies), and they run *after* decoding, so
//! `%2e%2e` and `%2F` cannot sneak through.

use imgmesh_imgix_params::{check_asset_key, decode_url_path};

/// Decodes the raw URL path (leading `/`, still percent-encoded) into the
/// asset path the renderer wants (no leading `/`), or `None` when it is not
/// a path any object could have or it could leave the Source's prefix.
pub fn asset_path(raw_path: &str) -> Option<String> {
    let encoded = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let decoded = decode_url_path(encoded)?;
    check_asset_key(&decoded).ok()?;
    Some(decoded)
}

/// `raw` percent-decoded exactly once, when that is UTF-8 (`None` for a
/// stray `%` or invalid UTF-8). What the text may contain is for the
/// caller to check.
pub fn percent_decoded(raw: &str) -> Option<String> {
    decode_url_path(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths that are accepted and what they decode to, and paths refused before any call.
    #[test]
    fn path_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/a.jpg", Some("a.jpg")),
            ("/photos/2024/cat.png", Some("photos/2024/cat.png")),
            ("/with%20space.jpg", Some("with space.jpg")),
            ("/plus+sign.jpg", Some("plus+sign.jpg")),
            ("/caf%C3%A9.jpg", Some("café.jpg")),
            ("/caf%c3%a9.jpg", Some("café.jpg")),
            ("/100%25.jpg", Some("100%.jpg")),
            // Decoded exactly once: %2525 is a literal "%25", not "%".
            ("/a%2525b.jpg", Some("a%25b.jpg")),
            ("/..a/b..c/.d", Some("..a/b..c/.d")),
            ("/a%2Fb.jpg", Some("a/b.jpg")),
            // Keys S3 stores as given: `.` and empty segments, backslashes.
            ("/a/./b.jpg", Some("a/./b.jpg")),
            ("/a/%2e/b.jpg", Some("a/./b.jpg")),
            ("/.", Some(".")),
            ("/a//b.jpg", Some("a//b.jpg")),
            ("/a%2F%2Fb.jpg", Some("a//b.jpg")),
            ("/a/", Some("a/")),
            ("/a\\b.jpg", Some("a\\b.jpg")),
            ("/a%5Cb.jpg", Some("a\\b.jpg")),
            ("/a%5C.%5Cb.jpg", Some("a\\.\\b.jpg")),
            // Empty.
            ("/", None),
            ("", None),
            // `..` segments, plain and encoded, between slashes or backslashes.
            ("/..", None),
            ("/../secret.jpg", None),
            ("/a/../b.jpg", None),
            ("/a/..", None),
            ("/%2e%2e/secret.jpg", None),
            ("/%2E%2E%2Fsecret.jpg", None),
            ("/..%5Csecret.jpg", None),
            ("/a%5C..%5Cb.jpg", None),
            // A leading slash or backslash once decoded.
            ("//a.jpg", None),
            ("/%2Fa.jpg", None),
            ("/%5Ca.jpg", None),
            // NUL and control characters.
            ("/a%00.jpg", None),
            ("/a%0A.jpg", None),
            ("/a%0d%0a.jpg", None),
            ("/a%7F.jpg", None),
            ("/a%C2%85.jpg", None),
            // Broken escapes and non-UTF-8 bytes.
            ("/a%.jpg", None),
            ("/a%2.jpg", None),
            ("/a%zz.jpg", None),
            ("/a%", None),
            ("/a%ff.jpg", None),
        ];
        for (raw, want) in cases {
            assert_eq!(asset_path(raw).as_deref(), *want, "path {raw:?}");
        }
    }
}
