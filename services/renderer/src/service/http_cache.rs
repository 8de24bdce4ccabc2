//! How long a derivative may be cached: the Source's `cache_ttl_behavior`
//! combined with the original's `Cache-Control`/`Expires`. (Validators and
//! conditional requests are in `imgmesh_derivative_cache::entry`, which the
//! gateway shares.)

use imgmesh_proto::registry::v1::CacheTtlBehavior;

/// What the origin said about caching the original.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginCaching {
    /// `Cache-Control`, verbatim; empty when none.
    pub cache_control: String,
    /// `Expires`, Unix seconds; 0 when none.
    pub expires: i64,
}

/// The freshness lifetime of a derivative, in seconds, under the Source's
/// `behavior` and `source_ttl` and the original's caching headers at `now`.
///
/// - respect_origin (and unset): the original's lifetime, else the Source's;
/// - override_origin: the Source's;
/// - enforce_minimum: the original's lifetime, but never less than the
///   Source's (the Source's when the original has none).
pub fn lifetime(
    behavior: CacheTtlBehavior,
    source_ttl: u32,
    origin: &OriginCaching,
    now: i64,
) -> u32 {
    let origin_ttl = origin_lifetime(origin, now);
    match behavior {
        CacheTtlBehavior::OverrideOrigin => source_ttl,
        CacheTtlBehavior::EnforceMinimum => origin_ttl.unwrap_or(source_ttl).max(source_ttl),
        CacheTtlBehavior::RespectOrigin | CacheTtlBehavior::Unspecified => {
            origin_ttl.unwrap_or(source_ttl)
        }
    }
}

/// The lifetime the original's headers give, as a shared cache reads them
/// (RFC 9111 §4.2.1): `no-store`, `no-cache` and `private` mean 0, then
/// `s-maxage`, then `max-age`, then `Expires`; `None` when they say nothing.
pub fn origin_lifetime(origin: &OriginCaching, now: i64) -> Option<u32> {
    let mut max_age = None;
    let mut s_maxage = None;
    for directive in origin.cache_control.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        let seconds = || value.and_then(|v| v.parse::<u64>().ok()).map(clamp_u32);
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" | "private" => return Some(0),
            "s-maxage" => s_maxage = seconds().or(s_maxage),
            "max-age" => max_age = seconds().or(max_age),
            _ => {}
        }
    }
    if let Some(seconds) = s_maxage.or(max_age) {
        return Some(seconds);
    }
    (origin.expires != 0)
        .then(|| clamp_u32(u64::try_from(origin.expires.saturating_sub(now)).unwrap_or(0)))
}

fn clamp_u32(seconds: u64) -> u32 {
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 2_000_000_000;

    fn origin(cache_control: &str, expires: i64) -> OriginCaching {
        OriginCaching {
            cache_control: cache_control.to_owned(),
            expires,
        }
    }

    /// Cache-Control directives and Expires, as a shared cache reads them.
    #[test]
    fn origin_headers_give_a_lifetime() {
        let cases = [
            ("", 0, None),
            ("public", 0, None),
            ("max-age=600", 0, Some(600)),
            ("public, max-age=600, s-maxage=60", 0, Some(60)),
            ("MAX-AGE=\"30\"", 0, Some(30)),
            ("max-age=abc", 0, None),
            ("no-cache", 0, Some(0)),
            ("private, max-age=600", 0, Some(0)),
            ("max-age=600, no-store", 0, Some(0)),
            ("", NOW + 90, Some(90)),
            ("", NOW - 90, Some(0)),
            ("max-age=5", NOW + 90, Some(5)),
            ("max-age=99999999999", 0, Some(u32::MAX)),
        ];
        for (cache_control, expires, expected) in cases {
            assert_eq!(
                origin_lifetime(&origin(cache_control, expires), NOW),
                expected,
                "{cache_control:?} {expires}"
            );
        }
    }

    /// Each behavior combines the Source's lifetime with the original's.
    #[test]
    fn behaviors_combine_source_and_origin() {
        use CacheTtlBehavior::*;
        let short = origin("max-age=60", 0);
        let long = origin("max-age=90000", 0);
        let silent = origin("", 0);
        let cases = [
            (RespectOrigin, &short, 60),
            (RespectOrigin, &long, 90_000),
            (RespectOrigin, &silent, 3_600),
            (Unspecified, &short, 60),
            (OverrideOrigin, &short, 3_600),
            (OverrideOrigin, &long, 3_600),
            (EnforceMinimum, &short, 3_600),
            (EnforceMinimum, &long, 90_000),
            (EnforceMinimum, &silent, 3_600),
        ];
        for (behavior, origin, expected) in cases {
            assert_eq!(
                lifetime(behavior, 3_600, origin, NOW),
                expected,
                "{behavior:?} {origin:?}"
            );
        }
    }
}
