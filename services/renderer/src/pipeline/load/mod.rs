//! The pipeline's first steps: the original checked before anything is
//! decoded, then its pixels loaded at the size the layout needs.
//!
//! `CheckedOriginal::read` refuses inputs over the byte limit, sniffs the
//! magic bytes (only the formats imgmesh serves reach libvips,
//! [`input_format`]), reads the header alone and refuses images whose
//! width × height × pages exceed the pixel limit;
//! `CheckedOriginal::pages` picks the frames to decode and refuses
//! renders that would decode more than the frame limit. `load` then
//! decodes the region at its output size (`source_image`), on libvips
//! locked down for untrusted input ([`libvips`]).

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::derivative::EncodedFormat;
use crate::pipeline::geometry::Layout;
use crate::pipeline::limits::RenderLimits;
use crate::pipeline::plan::ResolvedPlan;

pub mod input_format;
pub mod libvips;
pub(crate) mod source_image;

use input_format::InputFormat;
use libvips::RenderBudget;
use source_image::{Frames, Header, LoadOptions, Pages};

/// An original that passed every check made before decoding: within the
/// byte limit, a served format, a header that parses, within the pixel
/// limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedOriginal<'a> {
    /// The original's bytes.
    pub(crate) bytes: &'a [u8],
    /// The same bytes, shared, when the caller lends them
    /// ([`CheckedOriginal::shared_by`]): libvips then reads them in place.
    shared: Option<&'a Arc<Vec<u8>>>,
    /// Its format, from its magic bytes.
    pub(crate) format: InputFormat,
    /// What its header says.
    pub(crate) header: Header,
}

// === impl CheckedOriginal ===

impl<'a> CheckedOriginal<'a> {
    /// Checks `bytes` against `limits`, reading the header alone.
    pub(crate) fn read(
        bytes: &'a [u8],
        limits: &RenderLimits,
    ) -> Result<CheckedOriginal<'a>, RenderError> {
        if bytes.len() as u64 > limits.max_object_bytes {
            return Err(RenderError::ObjectTooLarge {
                limit: limits.max_object_bytes,
            });
        }
        let format = InputFormat::sniff(bytes).ok_or(RenderError::UnsupportedInput)?;
        let header = Header::read(bytes, format)?;
        // Every page counts, whichever the render decodes: the limit is on
        // what the file declares.
        if header.pixels() > limits.max_pixels {
            METRICS.render_stopped("pixels");
            return Err(RenderError::TooManyPixels {
                pixels: header.pixels(),
                limit: limits.max_pixels,
            });
        }
        Ok(CheckedOriginal {
            bytes,
            shared: None,
            format,
            header,
        })
    }

    /// The same original, lent by `owner` when it holds exactly these
    /// bytes: the load hands libvips a reference to them instead of a copy.
    pub(crate) fn shared_by(self, owner: Option<&'a Arc<Vec<u8>>>) -> CheckedOriginal<'a> {
        let shared = owner.filter(|owner| std::ptr::eq(owner.as_slice(), self.bytes));
        CheckedOriginal { shared, ..self }
    }

    /// The orientation the render applies: the plan's `orient`, else the
    /// file's EXIF orientation.
    pub(crate) fn orientation(&self, plan: &ResolvedPlan) -> u8 {
        plan.orientation().unwrap_or(self.header.orientation)
    }

    /// The frames a render to `output` decodes: the one `frame` selects,
    /// every frame when the output animates, else the first. Refused when
    /// that is more than the frame limit.
    pub(crate) fn pages(
        &self,
        plan: &ResolvedPlan,
        output: EncodedFormat,
        limits: &RenderLimits,
    ) -> Result<Pages, RenderError> {
        let header = &self.header;
        let pages = match plan.frame() {
            Some(frame) => Pages::One(frame.min(header.pages) - 1),
            None if header.pages > 1 && self.format.can_animate() && output.can_animate() => {
                Pages::All
            }
            None => Pages::One(0),
        };
        // GIF and WebP frames build on the previous ones: showing frame n
        // decodes frames 1 to n.
        let decoded_frames = match pages {
            Pages::All => header.pages,
            Pages::One(page) => page + 1,
        };
        if decoded_frames > limits.max_frames {
            METRICS.render_stopped("frames");
            return Err(RenderError::TooManyFrames {
                frames: header.pages,
                limit: limits.max_frames,
            });
        }
        Ok(pages)
    }
}

/// Loads `original`'s region at its output size with `thumbnail_buffer`
/// (shrink-on-load), upright, in sRGB unless the plan keeps the source's
/// colour space. A JPEG is decoded without the metadata no render reads
/// when that is a large part of it ([`input_format::jpeg_for_decoding`]).
pub(crate) fn load(
    original: &CheckedOriginal<'_>,
    layout: &Layout,
    options: &LoadOptions,
    budget: &RenderBudget,
) -> Result<Frames, RenderError> {
    let (width, height) = layout.output_size();
    let _span =
        tracing::info_span!("vips.thumbnail", box_width = width, box_height = height).entered();
    let bytes = match original.format {
        InputFormat::Jpeg => input_format::jpeg_for_decoding(original.bytes),
        _ => Cow::Borrowed(original.bytes),
    };
    // libvips reads the bytes in place: the cut copy, the lent original, or
    // (a caller that lends nothing) a copy, as rs-vips would make.
    let shared = match (bytes, original.shared) {
        (Cow::Owned(cut), _) => Arc::new(cut),
        (Cow::Borrowed(_), Some(shared)) => Arc::clone(shared),
        (Cow::Borrowed(bytes), None) => Arc::new(bytes.to_vec()),
    };
    source_image::load(&shared, &original.header, layout, options, budget)
}

#[cfg(test)]
mod tests {
    use imgmesh_imgix_params::parse_render_plan;

    use crate::pipeline::{RenderInput, RenderLimits, render_image};
    use crate::test_images;

    /// A JPEG rendered without its unused metadata gives the same bytes as
    /// the same JPEG without that metadata, through the thumbnail path and
    /// the full-decode fallback (`rect` enlarged), with the profile kept
    /// or not.
    #[test]
    fn renders_without_unused_metadata_are_identical() {
        let base = test_images::jpeg_with_orientation_and_profile(96, 64);
        let with_xmp = test_images::jpeg_with_unused_metadata(&base, 4, 60_000);
        for query in [
            "w=40",
            "w=40&cs=origin",
            "w=60&q=90&fm=png",
            "rect=8,8,16,16&w=64",
        ] {
            let plan = parse_render_plan("", query, None).unwrap().plan;
            let render = |original: &[u8]| {
                let input = RenderInput {
                    original,
                    ..RenderInput::default()
                };
                render_image(&input, &plan, &RenderLimits::default())
                    .unwrap_or_else(|error| panic!("{query}: {error}"))
            };
            let (plain, stripped) = (render(&base), render(&with_xmp));
            assert_eq!(
                (plain.width, plain.height),
                (stripped.width, stripped.height),
                "{query}"
            );
            assert!(plain.data == stripped.data, "{query}: the outputs differ");
        }
    }

    /// A lent original is what libvips reads: the loaded images hold a
    /// reference to it (no copy) until the last of them is gone, and they
    /// give the same pixels as a load of a copy. An owner that holds other
    /// bytes is not used.
    #[test]
    fn a_lent_original_is_read_in_place() {
        use std::sync::Arc;

        use super::{CheckedOriginal, LoadOptions, Pages, load};
        use crate::pipeline::geometry::{Layout, Region};
        use crate::pipeline::libvips::RenderBudget;
        use crate::pipeline::plan::ResolvedPlan;

        let plan =
            ResolvedPlan::resolve(&parse_render_plan("", "w=40", None).unwrap().plan).unwrap();
        let original = Arc::new(test_images::jpeg(96, 64));
        let limits = RenderLimits::default();
        let options = LoadOptions {
            pages: Pages::One(0),
            orientation: 1,
            keep_color_space: false,
        };
        let layout = Layout::compute_in(Region::whole(96, 64), &plan);
        let budget = RenderBudget::start(std::time::Duration::from_secs(60));
        let pixels = |checked: &CheckedOriginal<'_>, owner: &Arc<Vec<u8>>, held: usize| {
            let frames = load(checked, &layout, &options, &budget).unwrap();
            assert_eq!(Arc::strong_count(owner), held, "references while loaded");
            let mut images = frames.images;
            let image = images
                .remove(0)
                .flip(rs_vips::enums::Direction::Horizontal)
                .unwrap();
            let pixels = image.write_to_memory();
            drop(image);
            assert_eq!(
                Arc::strong_count(owner),
                1,
                "references once the images are gone"
            );
            pixels
        };
        let checked = CheckedOriginal::read(&original, &limits).unwrap();
        let copied = pixels(&checked, &original, 1);
        let lent = pixels(&checked.shared_by(Some(&original)), &original, 2);
        assert!(copied == lent, "the lent load's pixels differ");
        let other = Arc::new(original.as_ref().clone());
        let _ = pixels(&checked.shared_by(Some(&other)), &other, 1);
    }
}
