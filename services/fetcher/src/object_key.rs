//! Turns a caller's asset path into the S3 key under the Source's prefix,
//! refusing every path that could name something outside that prefix.
//!
//! S3 keys are opaque strings: `a//b`, `a/./b` and `a\b` are keys of their
//! own, and S3 stores and serves them as given. What is refused is only
//! what could step out of the prefix on a store that reads keys as file
//! paths (S3-compatible stores backed by a file system, and proxies in
//! front of them): a `..` segment, a leading separator, and control
//! characters. Because some of those stores also split on `\`, both `/`
//! and `\` separate segments for these two checks (`..\x` and `\x` are
//! refused; `a\b` is not). A `.` or empty segment cannot leave the prefix
//! (it stays where it is), so such keys pass. The gateway percent-decodes
//! the URL path once; the path arrives decoded and is never decoded again
//! here, so `%2e%2e` stays the literal key `%2e%2e`.

/// S3's limit on the length of a key, in bytes: "a maximum length of 1,024
/// bytes", and "The prefix, the delimiter (/), and the name of the object
/// are included in the 1,024 byte limitation" (Amazon S3 user guide,
/// "Naming Amazon S3 objects").
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// What separates segments for the escape checks: `/`, and `\`, which
/// some file-system-backed stores read as a separator too.
const SEPARATORS: [char; 2] = ['/', '\\'];

/// Why a path was refused. Logged, never shown to the caller: every
/// rejection answers "object not found".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathRejection {
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
    /// Prefix and path together are longer than S3 allows.
    #[error("the key is longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
}

/// Checks that `path` stays inside whatever prefix it is appended to.
pub(crate) fn validate_path(path: &str) -> Result<(), PathRejection> {
    if path.is_empty() {
        return Err(PathRejection::Empty);
    }
    if path.starts_with(SEPARATORS) {
        return Err(PathRejection::LeadingSlash);
    }
    if path.chars().any(char::is_control) {
        return Err(PathRejection::ControlCharacter);
    }
    if path.split(SEPARATORS).any(|segment| segment == "..") {
        return Err(PathRejection::ParentSegment);
    }
    Ok(())
}

/// The S3 key for `path` under the Source's `prefix`: `prefix/path`, or
/// just `path` when the Source has no prefix.
pub(crate) fn object_key(prefix: &str, path: &str) -> Result<String, PathRejection> {
    validate_path(path)?;
    // The registry normalises prefixes; trimming again keeps a stray slash
    // from turning into an empty segment in the key.
    let prefix = prefix.trim_matches('/');
    let key = if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(PathRejection::TooLong);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefix and a path are joined with exactly one slash.
    #[test]
    fn prefix_and_path_join_with_one_slash() {
        assert_eq!(
            object_key("tenant-a", "photos/cat.jpg").unwrap(),
            "tenant-a/photos/cat.jpg"
        );
        assert_eq!(
            object_key("tenant-a/raw", "cat.jpg").unwrap(),
            "tenant-a/raw/cat.jpg"
        );
    }

    /// Without a prefix the key is the path itself.
    #[test]
    fn empty_prefix_keeps_the_path() {
        assert_eq!(object_key("", "photos/cat.jpg").unwrap(), "photos/cat.jpg");
    }

    /// Slashes around a prefix do not produce a leading slash or `//`.
    #[test]
    fn stray_slashes_in_the_prefix_are_trimmed() {
        assert_eq!(
            object_key("/tenant-a/", "cat.jpg").unwrap(),
            "tenant-a/cat.jpg"
        );
        assert_eq!(object_key("/", "cat.jpg").unwrap(), "cat.jpg");
    }

    /// Ordinary names, including dots inside names, spaces and non-ASCII, pass.
    #[test]
    fn ordinary_paths_pass() {
        for path in [
            "cat.jpg",
            "a/b/c.png",
            "..hidden/x.png",
            "x..y.png",
            ".well-known/logo.png",
            "with space/ünïcode.jpg",
            "a/b.",
        ] {
            assert_eq!(validate_path(path), Ok(()), "{path:?}");
        }
    }

    /// Keys S3 stores as given and that cannot leave the prefix pass:
    /// backslashes inside a name, empty segments (`a//b`, a trailing `/`)
    /// and `.` segments, and they are joined unchanged.
    #[test]
    fn backslash_empty_and_dot_segments_pass() {
        for path in [
            "a\\b.jpg",
            "dir\\",
            "a\\\\b",
            "a//b.jpg",
            "a/",
            "a/b//",
            ".",
            "./a.jpg",
            "a/./b.jpg",
            "a/.",
            "a\\.\\b",
        ] {
            assert_eq!(validate_path(path), Ok(()), "{path:?}");
            assert_eq!(
                object_key("tenant-a", path).unwrap(),
                format!("tenant-a/{path}")
            );
        }
    }

    /// Percent escapes are not decoded again: `%2e%2e` is a literal key.
    #[test]
    fn percent_escapes_are_literal() {
        assert_eq!(
            object_key("tenant-a", "%2e%2e/secret.txt").unwrap(),
            "tenant-a/%2e%2e/secret.txt"
        );
        assert_eq!(object_key("", "a%2Fb.jpg").unwrap(), "a%2Fb.jpg");
    }

    /// `..` segments anywhere are refused, between slashes or backslashes.
    #[test]
    fn parent_segments_are_refused() {
        for path in [
            "..",
            "../secret.txt",
            "a/../../secret.txt",
            "a/..",
            "a/../b",
            "..\\secret.txt",
            "a\\..\\..\\b",
            "a/..\\b",
        ] {
            assert_eq!(
                validate_path(path),
                Err(PathRejection::ParentSegment),
                "{path:?}"
            );
        }
    }

    /// A leading slash (or backslash) is refused, including `//host/...` forms.
    #[test]
    fn leading_slash_is_refused() {
        for path in [
            "/a.jpg",
            "//evil.example/a.jpg",
            "/",
            "\\a.jpg",
            "\\\\host\\a",
        ] {
            assert_eq!(
                validate_path(path),
                Err(PathRejection::LeadingSlash),
                "{path:?}"
            );
        }
    }

    /// An empty path is refused.
    #[test]
    fn empty_path_is_refused() {
        assert_eq!(validate_path(""), Err(PathRejection::Empty));
    }

    /// NUL, newlines, DEL and C1 controls are refused.
    #[test]
    fn control_characters_are_refused() {
        for path in [
            "a\0.jpg",
            "a\n.jpg",
            "a\r\nHost: x",
            "a\t.jpg",
            "a\u{7f}",
            "a\u{85}",
        ] {
            assert_eq!(
                validate_path(path),
                Err(PathRejection::ControlCharacter),
                "{path:?}"
            );
        }
    }

    /// A key over S3's 1024-byte limit is refused once the prefix is added.
    #[test]
    fn overlong_keys_are_refused() {
        let path = "a".repeat(1020);
        assert!(object_key("", &path).is_ok());
        assert_eq!(object_key("tenant-a", &path), Err(PathRejection::TooLong));
    }

    /// An escape attempt is refused by `object_key` too, whatever the prefix.
    #[test]
    fn object_key_validates_the_path() {
        assert_eq!(
            object_key("tenant-a", "../tenant-b/x.jpg"),
            Err(PathRejection::ParentSegment)
        );
        assert_eq!(
            object_key("", "/etc/passwd"),
            Err(PathRejection::LeadingSlash)
        );
    }

    /// How a file-system-backed store could read `key`: `/` and `\\` both
    /// separate, empty and `.` segments stay where they are, `..` climbs.
    /// `None` when it climbs above the root; else the resolved segments.
    fn resolved(key: &str) -> Option<Vec<&str>> {
        let mut segments = Vec::new();
        for segment in key.split(['/', '\\']) {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop()?;
                }
                other => segments.push(other),
            }
        }
        Some(segments)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Whatever the path, an accepted key is the prefix, one slash and
        /// the path, and even a store that resolves dot segments and
        /// backslashes reads it inside the prefix (at worst, for a path of
        /// only `.` and empty segments, the prefix itself).
        #[test]
        fn a_normalised_path_never_leaves_its_prefix(
            prefix in proptest::sample::select(vec!["", "photos", "a/b", "/photos/", "p.q"]),
            path in "[a./\\\\%2eé \\x00-]{0,24}",
        ) {
            if let Ok(key) = object_key(prefix, &path) {
                let prefix = prefix.trim_matches('/');
                let expected = if prefix.is_empty() { path.clone() } else { format!("{prefix}/{path}") };
                proptest::prop_assert_eq!(&key, &expected);
                let inside = resolved(&key).expect("never climbs above the root");
                let prefix_segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
                proptest::prop_assert!(inside.starts_with(&prefix_segments), "{key:?} → {inside:?}");
            }
        }
    }
}
