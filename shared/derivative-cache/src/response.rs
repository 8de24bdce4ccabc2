//! A cache entry as the renderer's `RenderResponse`, the one shape the
//! gateway turns into HTTP whether the renderer or Redis answered.

use imgmesh_proto::renderer::v1::{CacheStatus, RenderResponse};

use crate::entry::{Conditional, EntryMeta};

/// The answer for an entry at `now`: its validators only (`not_modified`)
/// when the request's match or no `data` is at hand, else `data` too.
pub fn render_response(
    meta: &EntryMeta,
    data: Option<bytes::Bytes>,
    conditional: Conditional<'_>,
    status: CacheStatus,
    now: i64,
) -> RenderResponse {
    let not_modified = data.is_none() || conditional.not_modified(&meta.etag, meta.last_modified);
    RenderResponse {
        data: match data {
            Some(data) if !not_modified => data,
            _ => Default::default(),
        },
        content_type: meta.content_type.clone(),
        cache_hit: status != CacheStatus::Miss,
        width: meta.width,
        height: meta.height,
        etag: meta.etag.clone(),
        last_modified: meta.last_modified,
        max_age_seconds: meta.max_age,
        age_seconds: meta.age(now),
        cache_status: status.into(),
        not_modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::tests::sample;

    /// A matching validator answers without bytes; otherwise the bytes come
    /// with the entry's validators, lifetime and age.
    #[test]
    fn entries_answer_with_or_without_bytes() {
        let entry = sample();
        let now = entry.meta.stored_at + 25;
        let plain = Conditional {
            if_none_match: "",
            if_modified_since: 0,
        };
        let full = render_response(
            &entry.meta,
            Some(entry.data.clone()),
            plain,
            CacheStatus::Hit,
            now,
        );
        assert_eq!(full.data, entry.data);
        assert!(!full.not_modified && full.cache_hit);
        assert_eq!(full.etag, entry.meta.etag);
        assert_eq!((full.max_age_seconds, full.age_seconds), (3_600, 25));
        assert_eq!(full.content_type, "image/webp");

        let matching = Conditional {
            if_none_match: &entry.meta.etag,
            if_modified_since: 0,
        };
        let validators = render_response(
            &entry.meta,
            Some(entry.data.clone()),
            matching,
            CacheStatus::Stale,
            now,
        );
        assert!(validators.not_modified && validators.data.is_empty());
        assert_eq!(validators.cache_status(), CacheStatus::Stale);
        let headerless = render_response(&entry.meta, None, plain, CacheStatus::Miss, now);
        assert!(headerless.not_modified && !headerless.cache_hit);
    }
}
