//! `auto=format`: choosing the output format from the request's `Accept`.
//!
//! AVIF when the client accepts `image/avif`, else WebP when it accepts
//! `image/webp`, else no change (the `fm` parameter or the input's family),
//! as imgix documents. Only explicit types count (`image/*` and `*/*` say
//! nothing about AVIF support), and a type with `q=0` is refused. The plan
//! carries the negotiated format, never the header, so the cache holds one
//! entry per format rather than one per `Accept` spelling.

use imgmesh_proto::renderer::v1::OutputFormat;

/// The format `auto=format` picks for a request with `accept`; `None` keeps
/// the requested or original format.
pub fn negotiate_format(accept: Option<&str>) -> Option<OutputFormat> {
    let accept = accept?;
    let accepts = |wanted: &str| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';');
            let media_type = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|param| {
                let param = param.trim();
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media_type.eq_ignore_ascii_case(wanted) && !refused
        })
    };
    if accepts("image/avif") {
        Some(OutputFormat::Avif)
    } else if accepts("image/webp") {
        Some(OutputFormat::Webp)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AVIF beats WebP, explicit types only, q=0 refuses.
    #[test]
    fn picks_avif_then_webp() {
        let cases = [
            (
                Some("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
                Some(OutputFormat::Avif),
            ),
            (Some("image/webp,*/*"), Some(OutputFormat::Webp)),
            (Some("IMAGE/WEBP"), Some(OutputFormat::Webp)),
            (
                Some("image/avif;q=0, image/webp;q=0.5"),
                Some(OutputFormat::Webp),
            ),
            (Some("image/avif ; q=0.9"), Some(OutputFormat::Avif)),
            (Some("image/*,*/*"), None),
            (Some("image/png"), None),
            (Some(""), None),
            (None, None),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate_format(accept), expected, "{accept:?}");
        }
    }
}
