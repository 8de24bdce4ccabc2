//! The pure render: original bytes (+ overlay images) + plan + limits →
//! encoded derivative.
//!
//! [`render_image`] is synchronous CPU work on libvips; the service runs it
//! on the blocking pool (see [`crate::render_pool`]), and a benchmark can
//! call it directly. In imgix's fixed order, whatever the URL's order:
//!
//! 1. refuse inputs over the byte limit, sniff the magic bytes (only the
//!    formats imgmesh serves reach libvips), read the header alone and
//!    refuse images whose width × height × pages exceed the pixel limit,
//!    and renders that would decode more frames than the frame limit;
//! 2. `fm=json` answers from the header here;
//! 3. frame selection (`frame`, or every frame when the output animates);
//! 4. `trim`, then the layout: `rect`, `w`/`h`/`ar`/`dpr`, `fit`, `crop`,
//!    `min-*`/`max-*`, `pad` (see [`crate::geometry`]);
//! 5. load the region at its output size with `thumbnail_buffer`
//!    (shrink-on-load), upright (EXIF orientation or `orient`), in sRGB;
//! 6. per frame: content-aware crop, fit canvas, `flip`, `rot`, colour
//!    adjustments and stylize, sharpening/blur/pixelation, padding,
//!    border and rounded corners, `bg`, then `blend`, `mark`, `txt`;
//! 7. encode (or hash, for `fm=blurhash`).
//!
//! Every effect runs after the resize, on the small image. libvips is lazy,
//! so most decoding happens inside the encode step. A plan with only sizing
//! and format (the common case) does nothing beyond `thumbnail_buffer` and
//! the encoder.
//!
//! The whole render runs under a time budget ([`RenderLimits::max_render`]):
//! the stages check it between frames, and libvips' own evaluation is
//! killed once it is spent (see [`libvips::RenderBudget`]), so an input
//! that is cheap to declare but expensive to render (thousands of tiny GIF
//! frames) is stopped instead of holding a worker for minutes.

use std::time::Duration;

use imgmesh_proto::renderer::v1::{ChromaSubsampling, ColorSpace, OutputFormat, RenderPlan, blend};
use rs_vips::VipsImage;
use rs_vips::voption::{Setter as _, VOption};

use crate::encode::{self, EncodeOptions, EncodedFormat, PngKind};
use crate::error::RenderError;
use crate::geometry::{Interest, Layout, Region};
use crate::input_format::InputFormat;
use crate::libvips::RenderBudget;
use crate::metrics::METRICS;
use crate::render_plan::ResolvedPlan;
use crate::source_image::{self, Header, LoadOptions, Pages};
use crate::{adjust, blurhash, canvas, libvips, metadata_json, overlay, trim};

/// The default pixel limit: 50 megapixels, pages counted.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// The default byte limit for originals: 32 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// The default frame limit: 500 frames a render may decode. Real animated
/// GIFs and WebPs rarely exceed a few hundred frames (500 frames is 20 s at
/// 25 fps); past that, render time grows faster than the frame count.
pub const DEFAULT_MAX_FRAMES: u32 = 500;

/// The default time budget of one render: 10 seconds, far above a normal
/// render (milliseconds) and under the 15 s other replicas wait for a
/// render lease (`--lease-wait-ms`).
pub const DEFAULT_MAX_RENDER: Duration = Duration::from_secs(10);

/// Limits every render enforces before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Largest width × height × pages an original may declare.
    pub max_pixels: u64,
    /// Largest original, in bytes.
    pub max_object_bytes: u64,
    /// Most frames a render may decode (every frame of an animated output,
    /// or frames up to the one `frame` selects).
    pub max_frames: u32,
    /// Longest a render may run before it is stopped.
    pub max_render: Duration,
}

impl Default for RenderLimits {
    fn default() -> RenderLimits {
        RenderLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_frames: DEFAULT_MAX_FRAMES,
            max_render: DEFAULT_MAX_RENDER,
        }
    }
}

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

    /// The borrowed view [`render_image`] takes.
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

/// Renders `input` with `plan` under `limits`.
pub fn render_image(
    input: &RenderInput<'_>,
    plan: &RenderPlan,
    limits: &RenderLimits,
) -> Result<Derivative, RenderError> {
    libvips::init()?;
    let budget = RenderBudget::start(limits.max_render);
    let rendered = render_within(input, plan, limits, &budget);
    if let Err(RenderError::RenderTooSlow { .. }) = rendered {
        METRICS.render_stopped("time");
        tracing::info!(
            limit_ms = budget.limit_ms(),
            "render stopped: over its time budget"
        );
    }
    rendered
}

/// [`render_image`] under `budget`.
fn render_within(
    input: &RenderInput<'_>,
    plan: &RenderPlan,
    limits: &RenderLimits,
    budget: &RenderBudget,
) -> Result<Derivative, RenderError> {
    let plan = ResolvedPlan::resolve(plan)?;
    let original = input.original;
    if original.len() as u64 > limits.max_object_bytes {
        return Err(RenderError::ObjectTooLarge {
            limit: limits.max_object_bytes,
        });
    }
    let input_format = InputFormat::sniff(original).ok_or(RenderError::UnsupportedInput)?;
    let header = Header::read(original, input_format)?;
    // Every page counts, whichever the render decodes: the limit is on
    // what the file declares.
    if header.pixels() > limits.max_pixels {
        METRICS.render_stopped("pixels");
        return Err(RenderError::TooManyPixels {
            pixels: header.pixels(),
            limit: limits.max_pixels,
        });
    }
    if plan.format() == OutputFormat::Json {
        let data = metadata_json::document(original, input_format)?;
        return Ok(Derivative {
            format: EncodedFormat::Json,
            width: header.width,
            height: header.height,
            data,
        });
    }

    // Overlay images pass the same checks as the original; one that does
    // not is left out, like a missing one.
    let input = &RenderInput {
        original,
        watermark: input
            .watermark
            .filter(|bytes| usable_overlay(bytes, limits)),
        blend: input.blend.filter(|bytes| usable_overlay(bytes, limits)),
    };
    let encoding = encode_options(&plan, input_format, &header);
    let plan = plan.canonical();
    let orientation = match plan.orientation.map(|o| o.exif_orientation) {
        Some(override_orientation @ 1..=8) => override_orientation as u8,
        _ => header.orientation,
    };
    let frame = plan.animation.map(|a| a.frame).filter(|f| *f > 0);
    let pages = match frame {
        Some(frame) => Pages::One(frame.min(header.pages) - 1),
        None if header.pages > 1 && input_format.can_animate() && encoding.format.can_animate() => {
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
    let (upright_width, upright_height) = header.upright(orientation);
    let whole = Region {
        x: 0.0,
        y: 0.0,
        width: f64::from(upright_width.max(1)),
        height: f64::from(upright_height.max(1)),
    };
    let base = match &plan.trim {
        Some(trim) => trim::find_region(original, &header, orientation, trim)
            .map_err(budget.failure("trim"))?
            .unwrap_or(whole),
        None => whole,
    };
    let layout = Layout::compute_in(base, plan);

    let frames = {
        let (width, height) = layout.output_size();
        let _span =
            tracing::info_span!("vips.thumbnail", box_width = width, box_height = height).entered();
        let options = LoadOptions {
            pages,
            orientation,
            keep_color_space: plan
                .encoding
                .is_some_and(|e| e.color_space() == ColorSpace::Origin),
        };
        source_image::load(original, &header, &layout, &options, budget)?
    };
    let finished = {
        let _span = tracing::info_span!("vips.effects").entered();
        frames
            .images
            .iter()
            .map(|frame| {
                budget.check()?;
                finish(frame, plan, &layout, input, budget).map_err(budget.failure("effects"))
            })
            .collect::<Result<Vec<_>, RenderError>>()?
    };
    budget.check()?;
    let image = join_frames(
        finished,
        frames.delays.as_deref(),
        frames.loop_count,
        budget,
    )?;
    // Most of the decoding runs inside the encoder (libvips is lazy).
    budget.watch(&image);
    let width = source_image::dimension(image.get_width());
    let page_height = image.get_page_height();
    let height = source_image::dimension(if page_height > 0 {
        page_height
    } else {
        image.get_height()
    });

    let span = tracing::info_span!(
        "vips.encode",
        content_type = encoding.format.content_type(),
        bytes = tracing::field::Empty,
    );
    let _entered = span.enter();
    // Decoding runs here too (libvips is lazy), so a failure is most likely
    // bad input; the encoders' settings are fixed and tested.
    let data = if encoding.format == EncodedFormat::Blurhash {
        blurhash::of_image(&image)
            .map_err(budget.failure("blurhash"))?
            .into_bytes()
    } else {
        encode::encode(&image, &encoding).map_err(budget.failure("encode"))?
    };
    span.record("bytes", data.len());
    Ok(Derivative {
        format: encoding.format,
        width,
        height,
        data,
    })
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

/// The encoder's settings: the plan's format (or the input's family, or
/// `auto=compress`'s choice) and options.
fn encode_options(plan: &ResolvedPlan, input: InputFormat, header: &Header) -> EncodeOptions {
    let encoding = plan.canonical().encoding.unwrap_or_default();
    let (format, png) = match plan.format() {
        OutputFormat::Unspecified if encoding.compress && header.has_alpha => {
            (EncodedFormat::Png, PngKind::Palette)
        }
        OutputFormat::Unspecified if encoding.compress => (EncodedFormat::Jpeg, PngKind::Natural),
        OutputFormat::Unspecified => (input.family(), PngKind::Natural),
        OutputFormat::Jpeg => (EncodedFormat::Jpeg, PngKind::Natural),
        OutputFormat::Png => (EncodedFormat::Png, PngKind::Natural),
        OutputFormat::Png8 => (EncodedFormat::Png, PngKind::Palette),
        OutputFormat::Png32 => (EncodedFormat::Png, PngKind::Rgba),
        OutputFormat::Webp => (EncodedFormat::Webp, PngKind::Natural),
        OutputFormat::Avif => (EncodedFormat::Avif, PngKind::Natural),
        OutputFormat::Gif => (EncodedFormat::Gif, PngKind::Natural),
        OutputFormat::Json => (EncodedFormat::Json, PngKind::Natural),
        OutputFormat::Blurhash => (EncodedFormat::Blurhash, PngKind::Natural),
    };
    EncodeOptions {
        format,
        quality: plan.quality(),
        progressive: encoding.progressive,
        full_chroma: encoding.chroma_subsampling() != ChromaSubsampling::Unspecified,
        lossless: encoding.lossless,
        png,
        keep_profile: match encoding.color_space() {
            ColorSpace::Unspecified => false,
            ColorSpace::Srgb => true,
            // `cs=origin` (imgix's default) keeps the source's profile; a
            // source without one has nothing to keep, and stripping writes
            // no metadata at all.
            ColorSpace::Origin => header.has_icc_profile || header.cmyk,
        },
        embed_srgb: encoding.color_space() == ColorSpace::Srgb,
    }
}

/// Everything after the resize, for one frame (see the module docs).
fn finish(
    frame: &VipsImage,
    plan: &RenderPlan,
    layout: &Layout,
    input: &RenderInput<'_>,
    budget: &RenderBudget,
) -> rs_vips::Result<VipsImage> {
    if !has_finishing(plan, layout) {
        // The common case: straight from thumbnail to the encoder, streamed.
        return frame.copy();
    }
    // Crops, turns and filters read pixels out of order: materialise the
    // (output-sized) frame once.
    let mut image = frame.copy_memory()?;
    budget.watch(&image);
    if let Some(crop) = layout.smart_crop {
        let interesting = match crop.interest {
            Interest::Entropy => rs_vips::enums::Interesting::Entropy,
            Interest::Attention => rs_vips::enums::Interesting::Attention,
        };
        image = image.smartcrop_with_opts(
            crop.width as i32,
            crop.height as i32,
            VOption::new().set("interesting", interesting as i32),
        )?;
    }
    if let Some((width, height)) = layout.canvas {
        image = canvas::fit_canvas(&image, width, height, plan.fit(), plan.canvas.as_ref())?;
    }
    if let Some(orientation) = &plan.orientation
        && (orientation.flip_horizontal
            || orientation.flip_vertical
            || orientation.rotation_centi_degrees > 0)
    {
        image = canvas::flip_and_rotate(&image, orientation)?;
    }
    let (adjustments, stylize) = (plan.adjustments.as_ref(), plan.stylize.as_ref());
    if adjust::has_colour_effects(adjustments, stylize) {
        image = adjust::colour_effects(&crate::channels::srgb8(&image)?, adjustments, stylize)?;
    }
    if adjust::has_detail_effects(adjustments, stylize) {
        image = adjust::detail_effects(&crate::channels::srgb8(&image)?, adjustments, stylize)?;
    }
    if let Some(canvas) = &plan.canvas {
        image = canvas::pad(&image, layout.padding)?;
        if canvas.border.is_some() || canvas.border_radius.is_some() {
            image = canvas::border_and_corners(&image, canvas)?;
        }
        if let Some(background) = canvas.background {
            image = canvas::background(&image, background.argb)?;
        }
    }
    if let Some(plan_blend) = &plan.blend {
        let bytes = match plan_blend.source {
            Some(blend::Source::Path(_)) => input.blend,
            _ => None,
        };
        image = overlay::blend(&image, plan_blend, bytes)?;
    }
    if let (Some(mark), Some(bytes)) = (&plan.watermark, input.watermark) {
        image = overlay::watermark(&image, mark, bytes)?;
    }
    if let Some(text) = &plan.text {
        image = overlay::text(&image, text)?;
    }
    Ok(image)
}

/// Whether anything happens after the resize.
fn has_finishing(plan: &RenderPlan, layout: &Layout) -> bool {
    let (adjustments, stylize) = (plan.adjustments.as_ref(), plan.stylize.as_ref());
    layout.smart_crop.is_some()
        || layout.canvas.is_some()
        || plan
            .orientation
            .is_some_and(|o| o.flip_horizontal || o.flip_vertical || o.rotation_centi_degrees > 0)
        || adjust::has_colour_effects(adjustments, stylize)
        || adjust::has_detail_effects(adjustments, stylize)
        || plan.canvas.is_some()
        || plan.blend.is_some()
        || plan.watermark.is_some()
        || plan.text.is_some()
}

/// One image from the frames: a strip with page-height, delays and loop
/// count when there are several.
fn join_frames(
    mut frames: Vec<VipsImage>,
    delays: Option<&[i32]>,
    loop_count: Option<i32>,
    budget: &RenderBudget,
) -> Result<VipsImage, RenderError> {
    let failed = budget.failure("frames");
    if frames.len() == 1 {
        return Ok(frames.remove(0));
    }
    // Frames came out of one pipeline, so they share a size; make sure they
    // share bands too (an effect may have added alpha to some only).
    let with_alpha = frames.iter().any(VipsImage::hasalpha);
    let frames = frames
        .iter()
        .map(|f| {
            budget.check()?;
            let f = crate::channels::srgb8(f).map_err(&failed)?;
            if with_alpha {
                crate::channels::with_alpha(&f).map_err(&failed)
            } else {
                Ok(f)
            }
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    let page_height = frames[0].get_height();
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .map_err(&failed)?;
    strip.set_int("page-height", page_height).map_err(&failed)?;
    if let Some(delays) = delays {
        strip.set_array_int("delay", delays).map_err(&failed)?;
    }
    if let Some(loop_count) = loop_count {
        strip.set_int("loop", loop_count).map_err(&failed)?;
    }
    Ok(strip)
}

#[cfg(test)]
mod tests;
