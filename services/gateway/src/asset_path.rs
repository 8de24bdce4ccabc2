//! The asset path of a request: the URL path, percent-decoded exactly once
//! and checked before anything is called with it.
//!
//! The path becomes an S3 key under the Source's prefix. S3 keys are opaque,
//! so every key S3 stores is served — `a//b`, `a/./b`, `a\b` included —
//! except what could step out of the prefix on a store that reads keys as
//! file paths: a `..` segment, a leading `/` (or `\`), and NUL or another
//! control character. `/` and `\` both separate segments for those checks,
//! as the fetcher's (`services/fetcher/src/object_key.rs`) do, and they run
//! *after* decoding, so `%2e%2e` and `%2F` cannot sneak through.

/// Decodes the raw URL path (leading `/`, still percent-encoded) into the
/// asset path the renderer wants (no leading `/`), or `None` when it is not
/// a path any object could have or it could leave the Source's prefix.
pub fn asset_path(raw_path: &str) -> Option<String> {
    let encoded = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let decoded = String::from_utf8(percent_decode(encoded.as_bytes())?).ok()?;
    let acceptable = !decoded.is_empty()
        && !decoded.starts_with(['/', '\\'])
        && !decoded.chars().any(char::is_control)
        && decoded.split(['/', '\\']).all(|segment| segment != "..");
    acceptable.then_some(decoded)
}

/// `raw` percent-decoded exactly once, when that is UTF-8 (`None` for a
/// stray `%` or invalid UTF-8). What the text may contain is for the
/// caller to check.
pub fn percent_decoded(raw: &str) -> Option<String> {
    String::from_utf8(percent_decode(raw.as_bytes())?).ok()
}

/// Decodes `%XX` escapes once; a `%` not followed by two hex digits makes
/// the whole path invalid. `+` stays `+` (it is a space only in queries).
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_value(bytes.next()?)?;
            let low = hex_value(bytes.next()?)?;
            out.push(high << 4 | low);
        } else {
            out.push(byte);
        }
    }
    Some(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|value| value as u8)
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
