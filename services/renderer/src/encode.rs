//! Encoding a rendered image into one of the output formats.
//!
//! Every encoder strips metadata (EXIF orientation has already been applied
//! and any embedded ICC profile converted to sRGB by `thumbnail`). Choices:
//!
//! - JPEG: alpha flattened onto white, Huffman tables optimised, baseline
//!   (not progressive), libvips' default chroma subsampling.
//! - PNG: zlib level 6, no palette quantisation (`q` does not apply, as at imgix).
//! - WebP: lossy at `q`, libvips' default effort.
//! - AVIF: AV1 in HEIF at `q`, 8 bits, effort 1 (of 0–9). Effort 1 encodes a
//!   typical 800 px photo about 4× faster than effort 2 (0.09 s vs 0.36 s on
//!   the benchmark machine) for ~20 % more bytes; libvips' default of 4 takes
//!   about 0.8 s, far too slow for on-the-fly rendering.

use rs_vips::VipsImage;
use rs_vips::enums::ForeignHeifCompression;
use rs_vips::voption::{Setter as _, VOption};

/// An output format imgmesh encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodedFormat {
    /// JPEG (`image/jpeg`).
    Jpeg,
    /// PNG (`image/png`).
    Png,
    /// WebP (`image/webp`).
    Webp,
    /// AVIF (`image/avif`).
    Avif,
}

/// The AVIF encoder's CPU effort (libvips' 0–9 scale); see the module docs.
const AVIF_EFFORT: i32 = 1;

/// The PNG zlib compression level.
const PNG_COMPRESSION: i32 = 6;

// === impl EncodedFormat ===

impl EncodedFormat {
    /// Every output format.
    pub const ALL: [EncodedFormat; 4] = [
        EncodedFormat::Jpeg,
        EncodedFormat::Png,
        EncodedFormat::Webp,
        EncodedFormat::Avif,
    ];

    /// The MIME type of the encoded bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            EncodedFormat::Jpeg => "image/jpeg",
            EncodedFormat::Png => "image/png",
            EncodedFormat::Webp => "image/webp",
            EncodedFormat::Avif => "image/avif",
        }
    }

    /// The format whose MIME type is `content_type`.
    pub fn from_content_type(content_type: &str) -> Option<EncodedFormat> {
        EncodedFormat::ALL
            .into_iter()
            .find(|format| format.content_type() == content_type)
    }
}

/// Encodes `image` as `format` at `quality` (1–100; ignored by PNG).
pub(crate) fn encode(
    image: &VipsImage,
    format: EncodedFormat,
    quality: u8,
) -> rs_vips::Result<Vec<u8>> {
    let quality = i32::from(quality);
    match format {
        EncodedFormat::Jpeg => {
            // JPEG has no alpha: composite onto white, as imgix does.
            let flattened;
            let image = if image.hasalpha() {
                flattened =
                    image.flatten_with_opts(VOption::new().set("background", &[255.0][..]))?;
                &flattened
            } else {
                image
            };
            image.jpegsave_buffer_with_opts(
                VOption::new()
                    .set("Q", quality)
                    .set("optimize_coding", true)
                    .set("interlace", false)
                    .set("strip", true),
            )
        }
        EncodedFormat::Png => image.pngsave_buffer_with_opts(
            VOption::new()
                .set("compression", PNG_COMPRESSION)
                .set("strip", true),
        ),
        EncodedFormat::Webp => {
            image.webpsave_buffer_with_opts(VOption::new().set("Q", quality).set("strip", true))
        }
        EncodedFormat::Avif => image.heifsave_buffer_with_opts(
            VOption::new()
                .set("compression", ForeignHeifCompression::Av1 as i32)
                .set("Q", quality)
                .set("bitdepth", 8)
                .set("effort", AVIF_EFFORT)
                .set("strip", true),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content types round-trip to their formats.
    #[test]
    fn content_types_round_trip() {
        for format in EncodedFormat::ALL {
            assert_eq!(
                EncodedFormat::from_content_type(format.content_type()),
                Some(format)
            );
        }
        assert_eq!(EncodedFormat::from_content_type("image/gif"), None);
    }
}
