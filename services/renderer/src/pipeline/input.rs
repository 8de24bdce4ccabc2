//! The bytes a render reads: the original and the overlay images its plan
//! names, borrowed ([`RenderInput`]) or owned for the blocking pool
//! ([`RenderSources`]).

use std::borrow::Cow;
use std::sync::Arc;

use imgmesh_proto::renderer::v1::OutputFormat;

use crate::pipeline::limits::RenderLimits;
use crate::pipeline::load::input_format::{self, InputFormat};
use crate::pipeline::load::source_image::Header;
use crate::pipeline::plan::ResolvedPlan;

/// The bytes a render reads.
#[derive(Clone, Copy, Default)]
pub struct RenderInput<'a> {
    /// The original.
    pub original: &'a [u8],
    /// The original's owner, when the caller shares it
    /// ([`RenderSources::lend`]): the load hands libvips a reference to it
    /// instead of a copy. Used only when it holds the bytes `original`
    /// points at.
    pub shared_original: Option<&'a Arc<Vec<u8>>>,
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
            shared_original: self.shared_original,
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

    /// Only an original, cut down to what a render of `plan` reads: a JPEG
    /// without the metadata segments no render reads when they are a large
    /// part of it ([`input_format::jpeg_for_decoding`]), as every load and
    /// header read would cut it anyway. The original itself is dropped
    /// here, before the render waits for a worker, instead of being held
    /// beside the cut copy until the render ends (rhythm.jpg: 8.9 MB
    /// against 1.6 MB). A JSON plan keeps the original whole: it reports
    /// the file's size and metadata.
    pub(crate) fn original_for(original: Vec<u8>, plan: &ResolvedPlan) -> RenderSources {
        let jpeg = InputFormat::sniff(&original) == Some(InputFormat::Jpeg);
        let cut = if jpeg && plan.format() != OutputFormat::Json {
            match input_format::jpeg_for_decoding(&original) {
                Cow::Owned(cut) => Some(cut),
                Cow::Borrowed(_) => None,
            }
        } else {
            None
        };
        RenderSources::original(cut.unwrap_or(original))
    }

    /// The borrowed view [`render_image`](crate::render_image) takes.
    pub fn as_input(&self) -> RenderInput<'_> {
        RenderInput {
            original: &self.original,
            shared_original: None,
            watermark: self.watermark.as_deref(),
            blend: self.blend.as_deref(),
        }
    }

    /// Hands `render` these sources with the original shared
    /// ([`RenderInput::shared_original`]): libvips reads it in place,
    /// holding a reference for as long as its images live, instead of a
    /// copy held beside it for the whole render.
    pub fn lend<T>(mut self, render: impl FnOnce(&RenderInput<'_>) -> T) -> T {
        let original = Arc::new(std::mem::take(&mut self.original));
        render(&RenderInput {
            original: &original,
            shared_original: Some(&original),
            ..self.as_input()
        })
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

#[cfg(test)]
mod tests {
    use imgmesh_imgix_params::parse_render_plan;

    use super::RenderSources;
    use crate::pipeline::ResolvedPlan;
    use crate::pipeline::load::input_format::jpeg_for_decoding;
    use crate::test_images;

    fn plan(query: &str) -> ResolvedPlan {
        ResolvedPlan::resolve(&parse_render_plan("", query, None).unwrap().plan).unwrap()
    }

    /// A render's sources hold a JPEG without its unused metadata (the
    /// bytes its load decodes), and the original itself otherwise: when the
    /// metadata is small, when the original is not a JPEG, and for a JSON
    /// plan (which reports the file as it is).
    #[test]
    fn sources_hold_only_what_the_render_reads() {
        let base = test_images::jpeg_with_orientation_and_profile(96, 64);
        let with_xmp = test_images::jpeg_with_unused_metadata(&base, 4, 60_000);
        let cut = jpeg_for_decoding(&with_xmp).into_owned();
        assert!(
            cut.len() < with_xmp.len() / 2,
            "the test image has no metadata to cut"
        );
        let sources = RenderSources::original_for(with_xmp.clone(), &plan("w=40"));
        assert!(sources.original == cut, "the original was not cut");
        let json = RenderSources::original_for(with_xmp.clone(), &plan("fm=json"));
        assert!(json.original == with_xmp, "a JSON plan's original was cut");
        let small = test_images::jpeg_with_unused_metadata(&base, 1, 1_000);
        let kept = RenderSources::original_for(small.clone(), &plan("w=40"));
        assert!(kept.original == small, "a small metadata segment was cut");
        let png = test_images::png(20, 10);
        let png_sources = RenderSources::original_for(png.clone(), &plan("w=40"));
        assert!(png_sources.original == png, "a PNG was changed");
    }
}
