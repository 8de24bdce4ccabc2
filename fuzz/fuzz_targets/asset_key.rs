//! Asset paths into S3 keys: the gateway's decoding and checks of the URL
//! path (`asset_path`), then the fetcher's join under the Source's prefix
//! (`object_key`), on arbitrary bytes.
//!
//! Input: the Source's prefix, a NUL, the raw URL path (no NUL: all path,
//! prefix `photos`). What must hold:
//!
//! - `asset_path` is the path percent-decoded exactly once, or nothing;
//!   what it accepts has no `..` segment (`/` and `\` both separate), no
//!   control character and no leading `/` or `\`; empty and `.` segments
//!   and backslashes are keys S3 stores, and pass;
//! - the fetcher accepts every path the gateway does (only a key over
//!   S3's 1024 bytes may still be refused): the two checks agree;
//! - a key the fetcher builds is the prefix (slashes trimmed), one `/` and
//!   the path, so read segment by segment (split at `/` and `\`, as a
//!   file-system-backed store may) it never climbs above the prefix;
//! - fed the raw text itself (what a caller other than the gateway could
//!   send), the fetcher still never builds a key that leaves the prefix.
//!
//! The fetcher's module is compiled here from its own source file (it
//! needs nothing but `thiserror`): depending on the fetcher crate would
//! build the AWS SDK into every fuzz build for one function.

#[allow(dead_code)]
#[path = "../../services/fetcher/src/object_key.rs"]
mod object_key;

use imgmesh_gateway::fuzzing::{asset_path, percent_decoded};
use object_key::{PathRejection, object_key, validate_path};

/// Whether `path` could name something outside a prefix it is put under
/// on a store that reads keys as file paths, splitting at `/` and `\`.
fn could_escape(path: &str) -> bool {
    path.is_empty()
        || path.starts_with(['/', '\\'])
        || path.chars().any(char::is_control)
        || path.split(['/', '\\']).any(|segment| segment == "..")
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (prefix, raw_path) = text.split_once('\0').unwrap_or(("photos", text));

        let decoded = asset_path(raw_path);
        if let Some(path) = &decoded {
            let once = percent_decoded(raw_path.strip_prefix('/').unwrap_or(raw_path));
            assert_eq!(once.as_ref(), Some(path), "decoded once");
            assert!(!could_escape(path), "{raw_path:?} → {path:?}");
            assert!(!path.starts_with('/'));
            match validate_path(path) {
                Ok(()) => {}
                Err(rejection) => panic!("the fetcher refuses {path:?}: {rejection}"),
            }
        }

        // The fetcher on the decoded path when there is one, else on the
        // raw text itself (what a caller other than the gateway could send).
        let path = decoded.as_deref().unwrap_or(raw_path);
        match object_key(prefix, path) {
            Ok(key) => {
                assert!(!could_escape(path), "the fetcher accepts {path:?}");
                assert!(key.len() <= object_key::MAX_KEY_BYTES);
                let prefix = prefix.trim_matches('/');
                let inside = if prefix.is_empty() {
                    key.as_str()
                } else {
                    key.strip_prefix(prefix)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .expect("the key starts with the prefix and one slash")
                };
                assert_eq!(inside, path);
                // Resolving the key's segments (as a file system would,
                // `\` a separator too) never climbs above the prefix's own
                // segments; empty and `.` segments stay where they are.
                let prefix_depth = prefix.split('/').filter(|s| !s.is_empty()).count();
                let mut depth = prefix_depth;
                for segment in inside.split(['/', '\\']) {
                    match segment {
                        ".." => depth = depth.saturating_sub(1),
                        "." | "" => {}
                        _ => depth += 1,
                    }
                    assert!(depth >= prefix_depth, "{key:?} leaves {prefix:?}");
                }
            }
            Err(PathRejection::TooLong) => {
                assert!(
                    prefix.trim_matches('/').len() + path.len() + 1 > object_key::MAX_KEY_BYTES
                        || path.len() > object_key::MAX_KEY_BYTES
                );
            }
            Err(_) => assert!(
                decoded.is_none(),
                "the fetcher refuses the gateway's {path:?}"
            ),
        }
    });
}
