//! What a derivative cache entry holds, how it is packed, and the HTTP
//! rules applied to it.
//!
//! Values are a small binary envelope, not JSON. The two fields a
//! revalidation rewrites sit at fixed offsets, so extending an entry is one
//! `SETRANGE` with no bytes of the image moving; a conditional request reads
//! only the header (`GETRANGE 0 MAX_HEADER_LEN-1`):
//!
//! ```text
//! 0  "imd" | version (2)
//! 4  stored at (i64 BE, Unix s) | max age (u32 BE, s)
//! 16 original's Last-Modified (i64 BE) | width (u32 BE) | height (u32 BE)
//! 32 content-type len (u8) | content type | etag len (u8) | etag
//!    | original etag len (u8) | original etag | encoded bytes ...
//! ```

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

const ENVELOPE_MAGIC: &[u8; 3] = b"imd";
const ENVELOPE_VERSION: u8 = 2;
/// Where the revalidated fields (stored at, max age) start.
pub(crate) const FRESHNESS_OFFSET: usize = 4;
/// The longest header an envelope can have (three strings of at most 255).
pub(crate) const MAX_HEADER_LEN: usize = 32 + 3 * 256;

/// What the cache keeps about a derivative besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// The MIME type of the bytes, e.g. `image/webp`.
    pub content_type: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Strong ETag of the bytes, with its quotes.
    pub etag: String,
    /// The original's ETag when it was rendered, for revalidation.
    pub origin_etag: String,
    /// The original's Last-Modified, Unix seconds; 0 when unknown.
    pub last_modified: i64,
    /// When the entry was stored or last revalidated, Unix seconds.
    pub stored_at: i64,
    /// How long after `stored_at` the entry is fresh, in seconds.
    pub max_age: u32,
}

/// A cached derivative: its header and bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedDerivative {
    /// What is known about the bytes.
    pub meta: EntryMeta,
    /// The encoded image (or document, or hash).
    pub data: Bytes,
}

// === impl EntryMeta ===

impl EntryMeta {
    /// Whether the entry is still fresh at `now` (Unix seconds).
    pub fn is_fresh(&self, now: i64) -> bool {
        now < self.stored_at.saturating_add(i64::from(self.max_age))
    }

    /// Seconds since the entry was stored or revalidated.
    pub fn age(&self, now: i64) -> u32 {
        u32::try_from(now.saturating_sub(self.stored_at).max(0)).unwrap_or(u32::MAX)
    }
}

// === impl CachedDerivative ===

impl std::fmt::Debug for CachedDerivative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDerivative")
            .field("meta", &self.meta)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Now, in Unix seconds: the clock entries' freshness (`stored_at`,
/// `max_age`) is measured against, and HTTP dates are given in.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Packs `entry` into the cache envelope.
pub fn encode_envelope(entry: &CachedDerivative) -> Vec<u8> {
    let meta = &entry.meta;
    let content_type = short(&meta.content_type);
    let (etag, origin_etag) = (short(&meta.etag), short(&meta.origin_etag));
    let mut bytes = Vec::with_capacity(
        35 + content_type.len() + etag.len() + origin_etag.len() + entry.data.len(),
    );
    bytes.extend_from_slice(ENVELOPE_MAGIC);
    bytes.push(ENVELOPE_VERSION);
    bytes.extend_from_slice(&meta.stored_at.to_be_bytes());
    bytes.extend_from_slice(&meta.max_age.to_be_bytes());
    bytes.extend_from_slice(&meta.last_modified.to_be_bytes());
    bytes.extend_from_slice(&meta.width.to_be_bytes());
    bytes.extend_from_slice(&meta.height.to_be_bytes());
    for text in [content_type, etag, origin_etag] {
        // `short` keeps every string under 256 bytes.
        bytes.push(text.len() as u8);
        bytes.extend_from_slice(text);
    }
    bytes.extend_from_slice(&entry.data);
    bytes
}

/// At most 255 bytes of `text` (ETags and content types are far shorter;
/// a longer one is cut rather than corrupting the envelope).
fn short(text: &str) -> &[u8] {
    &text.as_bytes()[..text.len().min(255)]
}

/// Unpacks a cache envelope; `None` when it is not one this version wrote.
pub fn decode_envelope(bytes: Vec<u8>) -> Option<CachedDerivative> {
    let (meta, header_len) = decode_header(&bytes)?;
    // The bytes stay where Redis put them: no copy of the image.
    let data = Bytes::from(bytes).slice(header_len..);
    Some(CachedDerivative { meta, data })
}

/// Reads an envelope's header (from the whole value or its first
/// [`MAX_HEADER_LEN`] bytes) and its length.
pub(crate) fn decode_header(bytes: &[u8]) -> Option<(EntryMeta, usize)> {
    let rest = bytes.strip_prefix(ENVELOPE_MAGIC.as_slice())?;
    let (&version, rest) = rest.split_first()?;
    if version != ENVELOPE_VERSION {
        return None;
    }
    let (stored_at, rest) = rest.split_first_chunk::<8>()?;
    let (max_age, rest) = rest.split_first_chunk::<4>()?;
    let (last_modified, rest) = rest.split_first_chunk::<8>()?;
    let (width, rest) = rest.split_first_chunk::<4>()?;
    let (height, mut rest) = rest.split_first_chunk::<4>()?;
    let mut texts = [""; 3];
    for text in &mut texts {
        let (&len, after) = rest.split_first()?;
        let (value, after) = after.split_at_checked(usize::from(len))?;
        *text = std::str::from_utf8(value).ok()?;
        rest = after;
    }
    let [content_type, etag, origin_etag] = texts;
    if content_type.is_empty() {
        return None;
    }
    let meta = EntryMeta {
        content_type: content_type.to_owned(),
        width: u32::from_be_bytes(*width),
        height: u32::from_be_bytes(*height),
        etag: etag.to_owned(),
        origin_etag: origin_etag.to_owned(),
        last_modified: i64::from_be_bytes(*last_modified),
        stored_at: i64::from_be_bytes(*stored_at),
        max_age: u32::from_be_bytes(*max_age),
    };
    Some((meta, bytes.len() - rest.len()))
}

/// A request's validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conditional<'a> {
    /// `If-None-Match`, verbatim; empty when none.
    pub if_none_match: &'a str,
    /// `If-Modified-Since`, Unix seconds; 0 when none.
    pub if_modified_since: i64,
}

// === impl Conditional ===

impl Conditional<'_> {
    /// Whether the request carries any validator.
    pub fn is_conditional(&self) -> bool {
        !self.if_none_match.trim().is_empty() || self.if_modified_since > 0
    }

    /// Whether the client's copy is current (RFC 9110 §13.2.2: with
    /// `If-None-Match`, `If-Modified-Since` is ignored; ETags compare
    /// weakly, and `*` matches any).
    pub fn not_modified(&self, etag: &str, last_modified: i64) -> bool {
        let if_none_match = self.if_none_match.trim();
        if !if_none_match.is_empty() {
            let ours = opaque(etag);
            return if_none_match
                .split(',')
                .map(str::trim)
                .any(|theirs| theirs == "*" || (!ours.is_empty() && opaque(theirs) == ours));
        }
        self.if_modified_since > 0 && last_modified > 0 && last_modified <= self.if_modified_since
    }
}

/// An entity tag without its weakness marker.
fn opaque(etag: &str) -> &str {
    etag.strip_prefix("W/").unwrap_or(etag)
}

/// The strong ETag of `data`: 128 bits of its SHA-256, quoted.
pub fn strong_etag(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> CachedDerivative {
        CachedDerivative {
            meta: EntryMeta {
                content_type: "image/webp".to_owned(),
                width: 320,
                height: 213,
                etag: "\"0123456789abcdef\"".to_owned(),
                origin_etag: "\"d41d8cd98f00b204e9800998ecf8427e\"".to_owned(),
                last_modified: 1_700_000_000,
                stored_at: 1_800_000_000,
                max_age: 3_600,
            },
            data: Bytes::from_static(b"RIFF\x10\0\0\0WEBPVP8 some bytes"),
        }
    }

    /// An entry survives the envelope unchanged, for every format, and its
    /// header alone decodes from a prefix of the value.
    #[test]
    fn envelope_round_trips() {
        for content_type in [
            "image/webp",
            "image/jpeg",
            "application/json",
            "text/plain; charset=utf-8",
        ] {
            let mut entry = sample();
            entry.meta.content_type = content_type.to_owned();
            let bytes = encode_envelope(&entry);
            let (meta, header_len) =
                decode_header(&bytes[..MAX_HEADER_LEN.min(bytes.len())]).unwrap();
            assert_eq!(meta, entry.meta);
            assert_eq!(&bytes[header_len..], entry.data);
            assert_eq!(decode_envelope(bytes), Some(entry));
        }
        let empty = CachedDerivative {
            data: Bytes::new(),
            ..sample()
        };
        assert_eq!(decode_envelope(encode_envelope(&empty)), Some(empty));
    }

    /// Truncated, foreign or other-version envelopes are refused, not misread.
    #[test]
    fn envelope_refuses_garbage() {
        let good = encode_envelope(&sample());
        let header_len = good.len() - sample().data.len();
        for len in 0..header_len {
            assert_eq!(decode_envelope(good[..len].to_vec()), None, "prefix {len}");
        }
        let mut older = good.clone();
        older[3] = 1;
        assert_eq!(decode_envelope(older), None);
        let mut no_type = good.clone();
        no_type[32] = 0;
        assert_eq!(decode_envelope(no_type), None);
        let mut not_utf8 = good.clone();
        not_utf8[33] = 0xff;
        assert_eq!(decode_envelope(not_utf8), None);
        assert_eq!(decode_envelope(b"{\"json\":true}".to_vec()), None);
    }

    /// Freshness and age follow stored-at and max-age.
    #[test]
    fn freshness_follows_stored_at_and_max_age() {
        let meta = sample().meta;
        assert!(meta.is_fresh(meta.stored_at));
        assert!(meta.is_fresh(meta.stored_at + 3_599));
        assert!(!meta.is_fresh(meta.stored_at + 3_600));
        assert_eq!(meta.age(meta.stored_at + 10), 10);
        assert_eq!(meta.age(meta.stored_at - 10), 0);
    }

    /// If-None-Match wins over If-Modified-Since; lists, `*` and weak tags match.
    #[test]
    fn conditionals_follow_rfc_9110() {
        let etag = "\"abc\"";
        let check = |if_none_match: &str, if_modified_since: i64| {
            Conditional {
                if_none_match,
                if_modified_since,
            }
            .not_modified(etag, 1_000)
        };
        assert!(check("\"abc\"", 0));
        assert!(check("W/\"abc\"", 0));
        assert!(check("\"x\", \"abc\"", 0));
        assert!(check("*", 0));
        assert!(!check("\"x\"", 0));
        assert!(
            !check("\"x\"", 2_000),
            "If-Modified-Since is ignored with If-None-Match"
        );
        assert!(check("", 1_000));
        assert!(check("", 2_000));
        assert!(!check("", 999));
        assert!(!check("", 0));
        assert!(
            !Conditional {
                if_none_match: "",
                if_modified_since: 2_000
            }
            .not_modified(etag, 0),
            "no Last-Modified, no match"
        );
        assert!(
            !Conditional {
                if_none_match: " ",
                if_modified_since: 0
            }
            .is_conditional()
        );
    }

    /// The ETag is strong, quoted and follows the bytes.
    #[test]
    fn etag_follows_the_bytes() {
        let etag = strong_etag(b"abc");
        assert_eq!(etag.len(), 34);
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert_eq!(etag, strong_etag(b"abc"));
        assert_ne!(etag, strong_etag(b"abd"));
    }
}
