//! The one rule for which asset paths may name an object under a Source's
//! prefix, and the decoding of a URL path into such a path.
//!
//! S3 keys are opaque strings: `a//b`, `a/./b`, `a\b`, spaces, `%` and `+`
//! are keys of their own, and S3 stores and serves them as given. Refused
//! is only what could step out of the prefix on a store that reads keys as
//! file paths (S3-compatible stores backed by a file system, and proxies in
//! front of them): an empty path, a leading separator, a `..` segment, and
//! control characters. Because some of those stores also split on `\`,
//! both `/` and `\` separate segments for these checks.
//!
//! Used by the mark and blend paths of a query and by the registry's
//! fallback image settings. The fetcher's `object_key.rs` keeps its own
//! copy of the same checks because the fuzz target compiles that file
//! alone; `fuzz/fuzz_targets/asset_key.rs` checks that the two agree.

/// What separates segments for the escape checks: `/`, and `\`, which
/// some file-system-backed stores read as a separator too.
pub const KEY_SEPARATORS: [char; 2] = ['/', '\\'];

/// Why an asset path cannot name an object under a Source's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// The path is empty.
    #[error("the path is empty")]
    Empty,
    /// The path starts with `/` (or `\`).
    #[error("the path starts with a slash")]
    LeadingSlash,
    /// The path has a `..` segment (between `/` or `\` separators).
    #[error("the path has a '..' segment")]
    ParentSegment,
    /// The path contains NUL or another control character.
    #[error("the path contains a control character")]
    ControlCharacter,
}

/// Checks that the (decoded) asset path `path` stays inside whatever
/// prefix it is appended to.
pub fn check_asset_key(path: &str) -> Result<(), KeyRefusal> {
    if path.is_empty() {
        return Err(KeyRefusal::Empty);
    }
    if path.starts_with(KEY_SEPARATORS) {
        return Err(KeyRefusal::LeadingSlash);
    }
    if path.chars().any(char::is_control) {
        return Err(KeyRefusal::ControlCharacter);
    }
    if path.split(KEY_SEPARATORS).any(|segment| segment == "..") {
        return Err(KeyRefusal::ParentSegment);
    }
    Ok(())
}

/// `raw` (a URL path without its leading `/`) percent-decoded exactly
/// once, as the gateway decodes request paths: `None` for a `%` not
/// followed by two hex digits or a result that is not UTF-8. `+` stays `+`
/// (it is a space only in queries).
pub fn decode_url_path(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_value(bytes.next()?)?;
            let low = hex_value(bytes.next()?)?;
            out.push(high << 4 | low);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys S3 stores (spaces, `%`, `+`, non-ASCII, backslashes, empty and
    /// `.` segments) pass; only escapes, control characters and emptiness
    /// are refused, each for its reason.
    #[test]
    fn only_escaping_keys_are_refused() {
        for key in [
            "a.png",
            "a b.png",
            "100%.png",
            "a+b.png",
            "café/naïve.png",
            "a\\b.png",
            "a//b.png",
            "a/./b.png",
            "x..y/..z.png",
            "dir/",
            "(1).png",
        ] {
            assert_eq!(check_asset_key(key), Ok(()), "{key:?}");
        }
        for (key, refusal) in [
            ("", KeyRefusal::Empty),
            ("/a.png", KeyRefusal::LeadingSlash),
            ("\\a.png", KeyRefusal::LeadingSlash),
            ("..", KeyRefusal::ParentSegment),
            ("a/../../b.png", KeyRefusal::ParentSegment),
            ("a\\..\\b.png", KeyRefusal::ParentSegment),
            ("a\0b.png", KeyRefusal::ControlCharacter),
            ("a\nb.png", KeyRefusal::ControlCharacter),
            ("a\u{7f}b.png", KeyRefusal::ControlCharacter),
            ("a\u{85}b.png", KeyRefusal::ControlCharacter),
        ] {
            assert_eq!(check_asset_key(key), Err(refusal), "{key:?}");
        }
    }

    /// URL paths decode exactly once; a stray `%` or non-UTF-8 result is
    /// no path.
    #[test]
    fn url_paths_decode_once() {
        assert_eq!(decode_url_path("a%20b.png").as_deref(), Some("a b.png"));
        assert_eq!(decode_url_path("a%252e.png").as_deref(), Some("a%2e.png"));
        assert_eq!(decode_url_path("a+b.png").as_deref(), Some("a+b.png"));
        assert_eq!(decode_url_path("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_url_path("100%.png"), None);
        assert_eq!(decode_url_path("a%zz.png"), None);
        assert_eq!(decode_url_path("%FF.png"), None);
    }
}
