//! How much memory a render may take at its peak, estimated from the image
//! headers alone before it is admitted: the render pool reserves it from
//! its memory budget (see [`crate::service::render_pool`]).

use imgmesh_proto::renderer::v1::OutputFormat;
use rs_vips::enums::BandFormat;

use crate::error::RenderError;
use crate::pipeline::geometry::{Layout, Region};
use crate::pipeline::input::RenderSources;
use crate::pipeline::limits::RenderLimits;
use crate::pipeline::load::input_format::{InputFormat, jpeg_decoder_memory};
use crate::pipeline::load::{libvips, source_image};
use crate::pipeline::plan::ResolvedPlan;

/// A conservative estimate of the memory one render of `sources` with
/// `plan` holds at its peak, in bytes, from the image headers alone:
///
/// - the compressed bytes of the original and the overlays;
/// - the original decoded at its load size: width × height × bands ×
///   bytes per sample × pages loaded (every page when the output may
///   animate — no `frame`, and an output format that is GIF, WebP or the
///   input's own — else one). The load size is the stored size, except
///   that a JPEG shrinks on load by the largest of 8, 4 or 2 that keeps it
///   at least as large as the resize target, and a WebP loads at the
///   target. `trim`, an enlarged region and over-wide thumbnails decode at
///   full size, and so do HEIF, PNG and GIF;
/// - the output frames, at 4 bytes a pixel (they are materialised for
///   effects and animations);
/// - each overlay decoded at its full size, 4 bytes a pixel;
/// - for a JPEG, what libjpeg holds besides the pixels
///   ([`jpeg_decoder_memory`]): a progressive (multi-scan) JPEG's
///   whole-image coefficient buffer, 2 bytes per pixel per component at
///   the stored size whatever the shrink-on-load scale (55 MB for a
///   3840 × 2400 4:4:4 photo), and the metadata segments it keeps twice
///   (libjpeg's copy and libvips'); when the render decodes a copy without
///   the metadata no render reads (`input_format::jpeg_for_decoding`),
///   that copy and only the segments left in it;
/// - a copy of every buffer handed to libvips, kept as long as the image
///   made from it, through the encode: the bytes decoded (the original, or
///   the copy without its unused metadata) and the overlays count twice.
///   rs-vips makes that copy for the overlays and the full-decode fallback
///   (`new_from_buffer`); the thumbnail makes none when the pool lends the
///   render its original (`RenderSources::lend`), which is then counted as
///   a margin for libvips' region buffers (not counted otherwise: 4 MB for
///   a 3840 × 2400 JPEG made 300 wide, 17–22 MB made 1099 wide).
///
/// libvips streams most pipelines, so the real peak is usually lower; an
/// interlaced PNG can reach this bound. Inputs
/// that are not a served format, or whose header does not parse, estimate
/// as their bytes (the render refuses them before decoding anything);
/// originals over the pixel limit are refused here, as the render would.
pub fn estimate_render_bytes(
    sources: &RenderSources,
    plan: &ResolvedPlan,
    limits: &RenderLimits,
) -> Result<u64, RenderError> {
    let compressed = [
        Some(sources.original.len()),
        sources.watermark.as_ref().map(Vec::len),
        sources.blend.as_ref().map(Vec::len),
    ]
    .into_iter()
    .flatten()
    .map(|len| len as u64)
    .sum::<u64>();
    let Some(original) = StoredImage::read(&sources.original) else {
        return Ok(compressed);
    };
    if original.pixels() > limits.max_pixels {
        return Err(RenderError::TooManyPixels {
            pixels: original.pixels(),
            limit: limits.max_pixels,
        });
    }
    if plan.format() == OutputFormat::Json {
        return Ok(compressed);
    }
    let pages = if original.may_animate(plan) {
        u64::from(original.pages)
    } else {
        1
    };
    let orientation = plan.orientation().unwrap_or(original.orientation);
    let (upright_width, upright_height) = if source_image::swaps_axes(orientation) {
        (original.height, original.width)
    } else {
        (original.width, original.height)
    };
    let layout = Layout::compute_in(Region::whole(upright_width, upright_height), plan);
    let (resize_width, resize_height) = layout.resize;
    // The scale that maps the source to its load size (as source_image::load).
    let scale = (f64::from(resize_width) / layout.region.width)
        .max(f64::from(resize_height) / layout.region.height);
    let whole = layout.uses_whole_source(upright_width, upright_height);
    let full_decode = plan.canonical().trim.is_some()
        || (!whole && scale > 1.0)
        || f64::from(upright_width.max(upright_height)) * scale > 65_535.0;
    let load_pixels = match original.format {
        _ if full_decode || scale >= 1.0 => original.page_pixels(),
        InputFormat::Jpeg => {
            let shrink = [8.0, 4.0, 2.0]
                .into_iter()
                .find(|shrink| shrink * scale <= 1.0)
                .unwrap_or(1.0);
            let side = |stored: u32| (f64::from(stored) / shrink).ceil() as u64;
            side(original.width) * side(original.height)
        }
        InputFormat::Webp => {
            let side = |stored: u32| (f64::from(stored) * scale).ceil().max(1.0) as u64;
            side(original.width) * side(original.height)
        }
        _ => original.page_pixels(),
    };
    let decoded = load_pixels * original.bytes_per_pixel() * pages;
    let (output_width, output_height) = layout.output_size();
    let output = u64::from(output_width) * u64::from(output_height) * 4 * pages;
    let overlays = [sources.watermark.as_deref(), sources.blend.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(StoredImage::read)
        .map(|overlay| overlay.page_pixels() * 4)
        .sum::<u64>();
    let original_bytes = sources.original.len() as u64;
    let (decoder, decoded_input) = match original.format {
        InputFormat::Jpeg => {
            let jpeg = jpeg_decoder_memory(&sources.original);
            let decoded_input = if jpeg.decoded_copy_bytes > 0 {
                jpeg.decoded_copy_bytes
            } else {
                original_bytes
            };
            (
                jpeg.coefficient_bytes + 2 * jpeg.saved_marker_bytes + jpeg.decoded_copy_bytes,
                decoded_input,
            )
        }
        _ => (0, original_bytes),
    };
    // rs-vips' copies: of what is decoded, and of each overlay.
    let input_copies = decoded_input + (compressed - original_bytes);
    Ok(compressed + decoded + output + overlays + decoder + input_copies)
}

/// What an image's header says about its stored pixels.
#[derive(Debug, Clone, Copy)]
struct StoredImage {
    format: InputFormat,
    width: u32,
    height: u32,
    pages: u32,
    bands: u32,
    bytes_per_sample: u32,
    orientation: u8,
}

// === impl StoredImage ===

impl StoredImage {
    /// Reads `bytes`' header (no pixels); `None` when it is not a served
    /// format or does not parse.
    fn read(bytes: &[u8]) -> Option<StoredImage> {
        let format = InputFormat::sniff(bytes)?;
        libvips::init().ok()?;
        libvips::inspect_header(bytes, format, |image| {
            let has_field = |name: &str| image.get_typeof(name).is_ok_and(|gtype| gtype != 0);
            let int = |name: &str| has_field(name).then(|| image.get_int(name).ok()).flatten();
            let bytes_per_sample = match image.get_format() {
                Ok(BandFormat::Uchar | BandFormat::Char) => 1,
                Ok(BandFormat::Ushort | BandFormat::Short) => 2,
                Ok(BandFormat::Double | BandFormat::Complex) => 8,
                Ok(BandFormat::Dpcomplex) => 16,
                _ => 4,
            };
            StoredImage {
                format,
                width: source_image::dimension(image.get_width()),
                height: source_image::dimension(image.get_height()),
                pages: int("n-pages").map_or(1, source_image::dimension).max(1),
                // sRGB conversion may add bands to grey images.
                bands: source_image::dimension(image.get_bands()).max(3),
                bytes_per_sample,
                orientation: int("orientation")
                    .filter(|o| (1..=8).contains(o))
                    .map_or(1, |o| o as u8),
            }
        })
        .ok()
    }

    /// width × height × pages.
    fn pixels(&self) -> u64 {
        self.page_pixels() * u64::from(self.pages)
    }

    /// width × height of one page.
    fn page_pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    fn bytes_per_pixel(&self) -> u64 {
        u64::from(self.bands) * u64::from(self.bytes_per_sample)
    }

    /// Whether a render with `plan` may load every page.
    fn may_animate(&self, plan: &ResolvedPlan) -> bool {
        let animated_output = matches!(
            plan.format(),
            OutputFormat::Unspecified | OutputFormat::Gif | OutputFormat::Webp
        );
        self.pages > 1 && self.format.can_animate() && plan.frame().is_none() && animated_output
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::RenderPlan;
    use rs_vips::enums::ForeignSubsample;
    use rs_vips::voption::{Setter as _, VOption};

    use super::*;
    use crate::test_images;

    fn width(width: u32) -> ResolvedPlan {
        ResolvedPlan::resolve(&RenderPlan {
            width,
            ..RenderPlan::default()
        })
        .unwrap()
    }

    /// JPEG shrink-on-load lowers the estimate for a small output, and every
    /// page of an animation counts when the output animates.
    #[test]
    fn estimates_follow_shrink_on_load_and_pages() {
        let limits = RenderLimits::default();
        let jpeg = RenderSources::original(test_images::jpeg(800, 800));
        let full = estimate_render_bytes(&jpeg, &width(800), &limits).unwrap();
        let small = estimate_render_bytes(&jpeg, &width(100), &limits).unwrap();
        assert!(full >= 800 * 800 * 3, "{full}");
        assert!(small * 8 < full, "1/8 shrink-on-load: {small} vs {full}");

        let gif = RenderSources::original(test_images::animated_gif(100, 100, 5));
        let animated = estimate_render_bytes(&gif, &width(100), &limits).unwrap();
        let still = ResolvedPlan::resolve(&RenderPlan {
            format: OutputFormat::Png.into(),
            ..width(100).canonical().clone()
        })
        .unwrap();
        let one_page = estimate_render_bytes(&gif, &still, &limits).unwrap();
        assert!(
            animated - one_page >= 4 * 100 * 100 * 4,
            "four more pages: {animated} vs {one_page}"
        );
    }

    /// `photo` saved as a 4:4:4 JPEG, progressive or baseline.
    fn jpeg_444(width: u32, height: u32, progressive: bool) -> Vec<u8> {
        test_images::photo(width, height)
            .jpegsave_buffer_with_opts(
                VOption::new()
                    .set("interlace", progressive)
                    .set("subsample_mode", ForeignSubsample::Off as i32),
            )
            .unwrap()
    }

    /// A JPEG whose large XMP the render leaves out is estimated with the
    /// copy it decodes (here the same JPEG without the XMP) instead of the
    /// XMP held twice.
    #[test]
    fn unused_metadata_counts_as_the_decoded_copy() {
        let limits = RenderLimits::default();
        let base = test_images::jpeg_with_orientation_and_profile(96, 64);
        let with_xmp = test_images::jpeg_with_unused_metadata(&base, 4, 60_000);
        let plan = width(40);
        let estimate = |jpeg: &[u8]| {
            estimate_render_bytes(&RenderSources::original(jpeg.to_vec()), &plan, &limits).unwrap()
        };
        assert_eq!(
            estimate(&with_xmp),
            estimate(&base) + with_xmp.len() as u64,
            "its own bytes and the copy, which is the base JPEG"
        );
    }

    /// The bytes libvips decodes count twice (the original and rs-vips'
    /// copy of it), and so do an overlay's: a JPEG made larger by a
    /// comment segment is estimated larger by twice the segment, and a
    /// watermark adds its pixels and twice its bytes.
    #[test]
    fn decoded_bytes_count_with_their_copy() {
        let limits = RenderLimits::default();
        let plan = width(40);
        let jpeg = test_images::jpeg(96, 64);
        let comment = [b'c'; 1000];
        let mut commented = jpeg[..2].to_vec();
        commented.extend_from_slice(&[0xFF, 0xFE]);
        commented.extend_from_slice(&(comment.len() as u16 + 2).to_be_bytes());
        commented.extend_from_slice(&comment);
        commented.extend_from_slice(&jpeg[2..]);
        let segment = (commented.len() - jpeg.len()) as u64;
        let estimate =
            |sources: RenderSources| estimate_render_bytes(&sources, &plan, &limits).unwrap();
        assert_eq!(
            estimate(RenderSources::original(commented.clone())),
            estimate(RenderSources::original(jpeg.clone())) + 2 * segment
        );

        let mark = test_images::jpeg(10, 8);
        let with_mark = RenderSources {
            watermark: Some(mark.clone()),
            ..RenderSources::original(jpeg.clone())
        };
        assert_eq!(
            estimate(with_mark),
            estimate(RenderSources::original(jpeg)) + 10 * 8 * 4 + 2 * mark.len() as u64
        );
    }

    /// A progressive JPEG is estimated with libjpeg's whole-image
    /// coefficient buffer (2 bytes per pixel per component at the stored
    /// size, even when shrink-on-load decodes at 1/8); a baseline JPEG of
    /// the same pixels is not.
    #[test]
    fn progressive_jpegs_count_their_coefficient_buffer() {
        let limits = RenderLimits::default();
        let progressive = jpeg_444(800, 608, true);
        let baseline = jpeg_444(800, 608, false);
        let coefficients = 800 * 608 * 3 * 2;
        assert_eq!(
            jpeg_decoder_memory(&progressive).coefficient_bytes,
            coefficients
        );
        assert_eq!(jpeg_decoder_memory(&baseline).coefficient_bytes, 0);

        let plan = width(100);
        let estimate = |jpeg: &[u8]| {
            estimate_render_bytes(&RenderSources::original(jpeg.to_vec()), &plan, &limits).unwrap()
        };
        // Beyond its own compressed bytes and rs-vips' copy of them, which
        // differ.
        let progressive_bytes = estimate(&progressive) - 2 * progressive.len() as u64;
        let baseline_bytes = estimate(&baseline) - 2 * baseline.len() as u64;
        assert_eq!(
            progressive_bytes,
            baseline_bytes + coefficients,
            "{progressive_bytes} vs {baseline_bytes}"
        );
        assert!(
            baseline_bytes < coefficients / 8,
            "a baseline 1/8 decode holds no coefficient buffer: {baseline_bytes}"
        );
    }

    /// With the default running memory of two workers, two renders of a
    /// progressive 3840 × 2400 JPEG never run at once, even at W1's
    /// smallest width (300), while one runs beside a render of a baseline
    /// 3840 × 2400 JPEG at W1's largest (1099): what keeps W1's peak near
    /// 150 MB without leaving a core idle.
    #[test]
    fn the_default_running_memory_keeps_progressive_4k_renders_apart() {
        let limits = RenderLimits::default();
        let running = 2 * crate::config::DEFAULT_RUNNING_MEMORY_PER_WORKER;
        let progressive = jpeg_444(3840, 2400, true);
        let baseline = jpeg_444(3840, 2400, false);
        let estimate = |jpeg: &[u8], side: u32| {
            estimate_render_bytes(
                &RenderSources::original(jpeg.to_vec()),
                &width(side),
                &limits,
            )
            .unwrap()
        };
        let smallest = estimate(&progressive, 300);
        assert!(2 * smallest > running, "two at 300 wide fit: {smallest}");
        let beside = estimate(&progressive, 1099) + estimate(&baseline, 1099);
        assert!(
            beside <= running,
            "one beside a baseline render does not fit: {beside}"
        );
    }
}
