//! Passthrough: a request that asks for nothing is answered with the
//! original file, byte for byte.
//!
//! imgix: "you can serve an image without any parameters to serve it as a
//! passthrough" (<https://docs.imgix.com/apis/url/format/cs>, "Rendering
//! non-web-safe colors"), which keeps the original's colour space and
//! metadata. A plan is empty when no URL or Source parameter changed it
//! ([`imgmesh_imgix_params::is_empty_plan`]).
//!
//! Only originals a render would accept are passed through: bytes that
//! sniff as JPEG, PNG, GIF, WebP or AVIF ([`InputFormat::sniff`]) and whose
//! header libvips reads (which also gives the size the response reports).
//! HEIC and other HEIF brands are rendered as before (to AVIF): browsers
//! cannot show them, and imgmesh has no content type for them. The pixel
//! and frame limits are not applied: they bound what imgmesh decodes, and
//! a passthrough decodes nothing; the object size limit still applies (the
//! fetcher refuses larger originals before anything is sniffed). Anything
//! else is rendered, so it is refused exactly as before (415, 422, ...).

use crate::pipeline::derivative::EncodedFormat;
use crate::pipeline::load::input_format::InputFormat;
use crate::pipeline::load::source_image::Header;

/// How an original is served unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Passthrough {
    /// The original's format, whose content type the response carries.
    pub(crate) format: EncodedFormat,
    /// Width as stored.
    pub(crate) width: u32,
    /// Height as stored (one frame).
    pub(crate) height: u32,
}

/// How `original` is served unchanged, or `None` when it must be rendered
/// (not a format served as it is, or a header libvips cannot read). Reads
/// the header only: call it off the async runtime.
pub(crate) fn passthrough(original: &[u8]) -> Option<Passthrough> {
    let input = InputFormat::sniff(original)?;
    let format = match input {
        InputFormat::Heif if !is_avif(original) => return None,
        other => other.family(),
    };
    let header = Header::read(original, input).ok()?;
    Some(Passthrough {
        format,
        width: header.width,
        height: header.height,
    })
}

/// Whether an ISO-BMFF file's major brand is AVIF (`avif`, or `avis` for
/// an image sequence).
fn is_avif(bytes: &[u8]) -> bool {
    matches!(bytes.get(8..12), Some(b"avif" | b"avis"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_images;

    /// JPEG, PNG, GIF, WebP and AVIF originals pass through with their own
    /// content type and stored size; TIFF, text and a header libvips cannot
    /// read do not.
    #[test]
    fn only_served_formats_pass_through() {
        for (bytes, format) in [
            (test_images::jpeg(40, 30), EncodedFormat::Jpeg),
            (test_images::png(40, 30), EncodedFormat::Png),
            (test_images::animated_gif(40, 30, 3), EncodedFormat::Gif),
            (test_images::webp(40, 30), EncodedFormat::Webp),
            (test_images::avif(40, 30), EncodedFormat::Avif),
        ] {
            assert_eq!(
                passthrough(&bytes),
                Some(Passthrough {
                    format,
                    width: 40,
                    height: 30
                }),
                "{format:?}"
            );
        }
        assert_eq!(passthrough(&test_images::tiff(40, 30)), None);
        assert_eq!(
            passthrough(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            None
        );
        assert_eq!(passthrough(b"\xFF\xD8\xFFnot really a jpeg"), None);
    }
}
