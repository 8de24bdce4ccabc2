//! What a render produces: a [`Derivative`], encoded in one of the
//! [`EncodedFormat`]s imgmesh writes.

/// An output format imgmesh produces.
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
    /// GIF (`image/gif`).
    Gif,
    /// imgix's JSON metadata document (`application/json`).
    Json,
    /// A BlurHash string (`text/plain`).
    Blurhash,
}

/// An encoded derivative.
#[derive(Clone, PartialEq, Eq)]
pub struct Derivative {
    /// The encoding of `data`.
    pub format: EncodedFormat,
    /// Width in pixels (of one frame).
    pub width: u32,
    /// Height in pixels (of one frame).
    pub height: u32,
    /// The encoded image (or document, or hash).
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Derivative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derivative")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.data.len())
            .finish()
    }
}

// === impl EncodedFormat ===

impl EncodedFormat {
    /// Every output format.
    pub const ALL: [EncodedFormat; 7] = [
        EncodedFormat::Jpeg,
        EncodedFormat::Png,
        EncodedFormat::Webp,
        EncodedFormat::Avif,
        EncodedFormat::Gif,
        EncodedFormat::Json,
        EncodedFormat::Blurhash,
    ];

    /// The MIME type of the encoded bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            EncodedFormat::Jpeg => "image/jpeg",
            EncodedFormat::Png => "image/png",
            EncodedFormat::Webp => "image/webp",
            EncodedFormat::Avif => "image/avif",
            EncodedFormat::Gif => "image/gif",
            EncodedFormat::Json => "application/json",
            EncodedFormat::Blurhash => "text/plain; charset=utf-8",
        }
    }

    /// The format whose MIME type is `content_type`.
    pub fn from_content_type(content_type: &str) -> Option<EncodedFormat> {
        EncodedFormat::ALL
            .into_iter()
            .find(|format| format.content_type() == content_type)
    }

    /// Whether the format can carry an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, EncodedFormat::Jpeg)
    }

    /// Whether the format can carry an animation imgmesh writes.
    pub fn can_animate(self) -> bool {
        matches!(self, EncodedFormat::Gif | EncodedFormat::Webp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content types round-trip to their formats and are unique.
    #[test]
    fn content_types_round_trip() {
        for format in EncodedFormat::ALL {
            assert_eq!(
                EncodedFormat::from_content_type(format.content_type()),
                Some(format)
            );
        }
        assert_eq!(EncodedFormat::from_content_type("image/bmp"), None);
    }
}
