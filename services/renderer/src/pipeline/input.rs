//! The bytes a render reads: the original and the overlay images its plan
//! names, borrowed ([`RenderInput`]) or owned for the blocking pool
//! ([`RenderSources`]).

use crate::pipeline::limits::RenderLimits;
use crate::pipeline::load::input_format::InputFormat;
use crate::pipeline::load::source_image::Header;

/// The bytes a render reads.
#[derive(Clone, Copy, Default)]
pub struct RenderInput<'a> {
    /// The original.
    pub original: &'a [u8],
    /// The watermark image (`mark`), when the plan has one and it was found.
    pub watermark: Option<&'a [u8]>,
    /// The blended image (`blend=<path>`), when the plan has one and it was found.
    pub blend: Option<&'a [u8]>,
}

// === impl RenderInput ===

impl<'a> RenderInput<'a> {
    /// The same input without the overlay images that fail the checks the
    /// original passed (a served format within `limits`): one that does
    /// not pass is left out, like a missing one.
    pub(crate) fn with_usable_overlays(&self, limits: &RenderLimits) -> RenderInput<'a> {
        RenderInput {
            original: self.original,
            watermark: self.watermark.filter(|bytes| usable_overlay(bytes, limits)),
            blend: self.blend.filter(|bytes| usable_overlay(bytes, limits)),
        }
    }
}

impl std::fmt::Debug for RenderInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderInput")
            .field("original", &self.original.len())
            .field("watermark", &self.watermark.map(<[u8]>::len))
            .field("blend", &self.blend.map(<[u8]>::len))
            .finish()
    }
}

/// The bytes of a render, owned so they can move to the blocking pool.
#[derive(Clone, Default)]
pub struct RenderSources {
    /// The original.
    pub original: Vec<u8>,
    /// The watermark image, if any.
    pub watermark: Option<Vec<u8>>,
    /// The blended image, if any.
    pub blend: Option<Vec<u8>>,
}

// === impl RenderSources ===

impl RenderSources {
    /// Only an original.
    pub fn original(original: Vec<u8>) -> RenderSources {
        RenderSources {
            original,
            ..RenderSources::default()
        }
    }

    /// The borrowed view [`render_image`](crate::render_image) takes.
    pub fn as_input(&self) -> RenderInput<'_> {
        RenderInput {
            original: &self.original,
            watermark: self.watermark.as_deref(),
            blend: self.blend.as_deref(),
        }
    }
}

impl std::fmt::Debug for RenderSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_input().fmt(f)
    }
}

/// Whether an overlay image is a served format within the limits.
fn usable_overlay(bytes: &[u8], limits: &RenderLimits) -> bool {
    let usable = bytes.len() as u64 <= limits.max_object_bytes
        && InputFormat::sniff(bytes)
            .and_then(|format| Header::read(bytes, format).ok())
            .is_some_and(|header| header.pixels() <= limits.max_pixels);
    if !usable {
        tracing::debug!(bytes = bytes.len(), "overlay image refused");
    }
    usable
}
