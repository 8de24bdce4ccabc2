//! Compositing over the result: `blend` (a colour or an image, with a blend
//! mode), `mark` (an image from the same Source) and `txt` (rendered with
//! libvips' Pango-based `text`), stacked in imgix's priority order: text
//! over watermark over blend.
//!
//! Overlay images are fetched by the service like the original and decoded
//! here with `thumbnail_buffer`, straight to the size they are drawn at.
//! An overlay that cannot be decoded is left out (and logged), as imgix
//! renders the base image when a watermark is unusable.

use imgmesh_proto::renderer::v1::{
    Blend, BlendMode as PlanBlendMode, HorizontalAlign, Length, OverlayFit, TextClip, TextOverlay,
    VerticalAlign, Watermark, blend, length,
};
use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, BlendMode, Interpretation, Size};
use rs_vips::voption::{Setter as _, VOption};

use crate::pipeline::adjustments::channels::{Channels, solid, srgb8, to_uchar, with_alpha};

/// The most text renders tried while fitting an ellipsised line.
const MAX_ELLIPSIS_TRIES: usize = 12;

/// The font used when `txt-font` is absent: imgix's Helvetica, which
/// fontconfig maps to a metric-compatible face (Nimbus Sans here).
const DEFAULT_FONT: &str = "Helvetica";

/// Blends `blend` over `image`; `overlay` holds the blended image's bytes
/// for a path blend.
pub(crate) fn blend(
    image: &VipsImage,
    blend: &Blend,
    overlay: Option<&[u8]>,
) -> rs_vips::Result<VipsImage> {
    let base = with_alpha(&srgb8(image)?)?;
    let (width, height) = (base.get_width(), base.get_height());
    let opacity = f64::from(blend.alpha.unwrap_or(100)) / 100.0;
    let (layer, x, y) = match &blend.source {
        Some(blend::Source::Color(colour)) => (solid(width, height, colour.argb, true)?, 0, 0),
        Some(blend::Source::Path(_)) => {
            let Some(bytes) = overlay else {
                return image.copy();
            };
            let size = Sized {
                width: blend.width,
                height: blend.height,
                scale: 0,
                fit: blend.fit(),
                fractions_of_overlay: false,
            };
            let Some(layer) = decode_overlay(bytes, &size, width, height) else {
                return image.copy();
            };
            let (x, y) = place(
                (width, height),
                (layer.get_width(), layer.get_height()),
                blend.vertical(),
                blend.horizontal(),
                blend.pad as i32,
                (blend.x > 0).then_some(blend.x as i32),
                (blend.y > 0).then_some(blend.y as i32),
            );
            (layer, x, y)
        }
        None => return image.copy(),
    };
    let layer = fade(&layer, opacity)?;
    let blended = match blend.mode() {
        PlanBlendMode::Hue
        | PlanBlendMode::Saturation
        | PlanBlendMode::Color
        | PlanBlendMode::Luminosity => lch_blend(&base, &layer, x, y, blend.mode())?,
        mode => base.composite2_with_opts(
            &layer,
            libvips_mode(mode),
            VOption::new().set("x", x).set("y", y),
        )?,
    };
    keep_opacity(image, &srgb8(&blended)?)
}

/// Composites the watermark.
pub(crate) fn watermark(
    image: &VipsImage,
    mark: &Watermark,
    bytes: &[u8],
) -> rs_vips::Result<VipsImage> {
    let base = srgb8(image)?;
    let (width, height) = (base.get_width(), base.get_height());
    let size = Sized {
        width: mark.width,
        height: mark.height,
        scale: mark.scale,
        fit: mark.fit(),
        fractions_of_overlay: true,
    };
    let Some(layer) = decode_overlay(bytes, &size, width, height) else {
        return Ok(base);
    };
    let layer = fade(&layer, f64::from(mark.alpha.unwrap_or(100)) / 100.0)?;
    let pad = mark.pad.unwrap_or(0) as i32;
    let (layer_width, layer_height) = (layer.get_width(), layer.get_height());
    let base = with_alpha(&base)?;
    // Where the single mark goes; a tiled mark is a grid around it.
    let (x, y) = place(
        (width, height),
        (layer_width, layer_height),
        mark.vertical(),
        mark.horizontal(),
        pad,
        mark.x.map(|x| x as i32),
        mark.y.map(|y| y as i32),
    );
    let composited = if mark.tile {
        // imgix's mark-tile page: the single mark is placed, "then tiled in
        // a grid pattern around the single mark" — cells `pad` pixels
        // apart, one of them at (x, y).
        let cell = layer.embed(0, 0, layer_width + pad, layer_height + pad)?;
        let (cell_width, cell_height) = (cell.get_width(), cell.get_height());
        let across = width / cell_width + 2;
        let down = height / cell_height + 2;
        let grid = crate::pipeline::load::source_image::extract_within(
            &cell.replicate(across, down)?,
            (cell_width - x.rem_euclid(cell_width)) % cell_width,
            (cell_height - y.rem_euclid(cell_height)) % cell_height,
            width,
            height,
        )?;
        base.composite2_with_opts(&grid, BlendMode::Over, VOption::new())?
    } else {
        base.composite2_with_opts(
            &layer,
            BlendMode::Over,
            VOption::new().set("x", x).set("y", y),
        )?
    };
    keep_opacity(image, &srgb8(&composited)?)
}

/// Renders and composites the text.
///
/// The text is one line (no wrapping, as imgix's `txt`), at `txt-size`
/// pixels in `txt-font` (a family and style such as `DejaVu Sans Bold`;
/// imgix's PostScript names like `Verdana-Bold` become `Verdana Bold`;
/// unknown fonts fall back to fontconfig's match), coloured with
/// `txt-color`. A line wider than `txt-width` (default: the image width
/// minus padding) is shrunk to fit with `txt-fit=max`, or else cut at the
/// end (default), start or middle, or shortened with an ellipsis.
/// `txt-shad` adds a soft dark shadow.
pub(crate) fn text(image: &VipsImage, text: &TextOverlay) -> rs_vips::Result<VipsImage> {
    if text
        .text
        .chars()
        .all(|c| c.is_whitespace() || c.is_control())
    {
        // Nothing to draw (and Pango renders nothing to an empty image).
        return image.copy();
    }
    let base = srgb8(image)?;
    let (width, height) = (base.get_width(), base.get_height());
    let pad = text.pad.unwrap_or(0) as i32;
    let max_width = if text.width > 0 {
        text.width as i32
    } else {
        (width - 2 * pad).max(1)
    };
    let family = font_family(&text.font);
    let mut size = text.size.max(1);
    if text.fit_max {
        // Measure at a small size, then pick the size that fits: no layout
        // is ever much wider than the image.
        let probe = text_mask(&text.text, &family, PROBE_SIZE)?;
        let fitting =
            f64::from(PROBE_SIZE) * f64::from(max_width) / f64::from(probe.get_width().max(1));
        size = size.min((fitting.floor() as u32).max(1));
    }
    // Only characters that can show are laid out (the narrowest glyphs are
    // about a quarter of the size wide), so a long text at a large size
    // never becomes a huge image.
    let visible = max_visible_chars(max_width, size);
    let shown = visible_part(&text.text, text.clip(), visible);
    let mut mask = text_mask(&shown, &family, size)?;
    if mask.get_width() > max_width {
        mask = match text.clip() {
            TextClip::Ellipsis => ellipsised(&shown, &family, size, max_width)?,
            TextClip::Start => crate::pipeline::load::source_image::extract_within(
                &mask,
                mask.get_width() - max_width,
                0,
                max_width,
                mask.get_height(),
            )?,
            TextClip::Middle => crate::pipeline::load::source_image::extract_within(
                &mask,
                (mask.get_width() - max_width) / 2,
                0,
                max_width,
                mask.get_height(),
            )?,
            TextClip::Unspecified => crate::pipeline::load::source_image::extract_within(
                &mask,
                0,
                0,
                max_width,
                mask.get_height(),
            )?,
        };
    }
    let colour = text.color.map_or(0xFF00_0000, |c| c.argb);
    let glyphs = coloured(&mask, colour)?;
    let (x, y) = place(
        (width, height),
        (glyphs.get_width(), glyphs.get_height()),
        text.vertical(),
        text.horizontal(),
        pad,
        None,
        None,
    );
    let mut composited = with_alpha(&base)?;
    if text.shadow_deci > 0 {
        let sigma = f64::from(text.shadow_deci) / 10.0;
        let spread = (sigma * 3.0).ceil() as i32 + 2;
        let shadow_mask = mask
            .embed(
                spread,
                spread,
                mask.get_width() + 2 * spread,
                mask.get_height() + 2 * spread,
            )?
            .gaussblur(sigma)?;
        let shadow = coloured(&to_uchar(&shadow_mask)?, 0xC000_0000)?;
        let offset = (sigma / 2.0).ceil() as i32 + 1;
        composited = composited.composite2_with_opts(
            &shadow,
            BlendMode::Over,
            VOption::new()
                .set("x", x - spread + offset)
                .set("y", y - spread + offset),
        )?;
    }
    let composited = composited.composite2_with_opts(
        &glyphs,
        BlendMode::Over,
        VOption::new().set("x", x).set("y", y),
    )?;
    keep_opacity(image, &srgb8(&composited)?)
}

/// The size `txt-fit=max` measures the text at.
const PROBE_SIZE: u32 = 20;

/// How many characters can be visible in `max_width` pixels at `size`.
fn max_visible_chars(max_width: i32, size: u32) -> usize {
    (f64::from(max_width.max(1)) / (f64::from(size) * 0.25)).ceil() as usize + 2
}

/// The part of `text` that can show in `visible` characters: its start (or,
/// clipping at the start, its end; in the middle, its middle).
fn visible_part(text: &str, clip: TextClip, visible: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= visible {
        return text.to_owned();
    }
    let start = match clip {
        TextClip::Start => chars.len() - visible,
        TextClip::Middle => (chars.len() - visible) / 2,
        TextClip::Unspecified | TextClip::Ellipsis => 0,
    };
    chars[start..start + visible].iter().collect()
}

/// Pango's family for an imgix font name.
fn font_family(font: &str) -> String {
    if font.is_empty() {
        return DEFAULT_FONT.to_owned();
    }
    // `Verdana-Bold`, `sans-serif,bold` → `Verdana Bold`, `sans-serif bold`.
    let spaced = font.replace(',', " ");
    match spaced.rsplit_once('-') {
        Some((family, style))
            if !family.is_empty() && style.chars().next().is_some_and(char::is_uppercase) =>
        {
            format!("{family} {style}")
        }
        _ => spaced,
    }
}

/// The text's coverage mask (one band, 0..255) at `size` pixels.
fn text_mask(text: &str, family: &str, size: u32) -> rs_vips::Result<VipsImage> {
    // libvips' text takes Pango markup: escape the user's text.
    let markup = escape_markup(text);
    VipsImage::text_with_opts(
        &markup,
        VOption::new()
            .set("font", format!("{family} {size}px").as_str())
            .set("dpi", 72)
            .set("wrap", rs_vips::enums::TextWrap::None as i32),
    )
}

/// The longest prefix of `text` that fits in `max_width` with an ellipsis.
fn ellipsised(text: &str, family: &str, size: u32, max_width: i32) -> rs_vips::Result<VipsImage> {
    let chars: Vec<char> = text.chars().collect();
    let (mut low, mut high) = (0usize, chars.len());
    let mut best = text_mask("…", family, size)?;
    for _ in 0..MAX_ELLIPSIS_TRIES {
        if low >= high {
            break;
        }
        let middle = (low + high).div_ceil(2);
        let candidate: String = chars[..middle].iter().collect::<String>() + "…";
        let mask = text_mask(&candidate, family, size)?;
        if mask.get_width() <= max_width {
            best = mask;
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    crate::pipeline::load::source_image::extract_within(&best, 0, 0, max_width, best.get_height())
}

/// `text` with Pango markup's special characters escaped.
fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An RGBA layer of colour `argb` with `mask` (0..255) as coverage.
fn coloured(mask: &VipsImage, argb: u32) -> rs_vips::Result<VipsImage> {
    let [a, r, g, b] = argb.to_be_bytes();
    let colour = solid(
        mask.get_width(),
        mask.get_height(),
        0xFF00_0000 | u32::from_be_bytes([0, r, g, b]),
        false,
    )?;
    let alpha = mask.linear(&[f64::from(a) / 255.0], &[0.0])?;
    VipsImage::bandjoin(&[colour, to_uchar(&alpha)?])?
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
}

/// How an overlay image is sized.
struct Sized {
    width: Option<Length>,
    height: Option<Length>,
    /// Percentage of the base's width, 0 for none.
    scale: u32,
    fit: OverlayFit,
    /// Whether fractions are of the overlay's own size (`mark-w`, `mark-h`:
    /// "a ratio to the source width of the watermark") rather than of the
    /// base image (`blend-w`, `blend-h`: "a ratio to the resized base image
    /// width").
    fractions_of_overlay: bool,
}

/// Decodes an overlay at the size `size` asks for, relative to a
/// `base_width × base_height` image; `None` when it cannot be decoded.
fn decode_overlay(
    bytes: &[u8],
    size: &Sized,
    base_width: i32,
    base_height: i32,
) -> Option<VipsImage> {
    let decode = || -> rs_vips::Result<VipsImage> {
        let resolve = |length: Option<Length>, reference: i32| -> Option<i32> {
            match length?.value? {
                length::Value::Pixels(p) => Some(p as i32),
                length::Value::FractionPpm(f) => {
                    Some((f64::from(reference) * f64::from(f) / 1e6).round() as i32)
                }
            }
            .map(|v| v.max(1))
        };
        let (reference_width, reference_height) = if size.fractions_of_overlay {
            let header = VipsImage::new_from_buffer(bytes, "")?;
            (header.get_width(), header.get_height())
        } else {
            (base_width, base_height)
        };
        let mut width = resolve(size.width, reference_width);
        let height = resolve(size.height, reference_height);
        if size.scale > 0 && width.is_none() && height.is_none() {
            width = Some(
                (f64::from(base_width) * f64::from(size.scale) / 100.0)
                    .round()
                    .max(1.0) as i32,
            );
        }
        let options = VOption::new().set("option_string", "fail_on=truncated");
        let image = match (width, height) {
            (None, None) => VipsImage::thumbnail_buffer_with_opts(
                bytes,
                crate::pipeline::geometry::MAX_OUTPUT_SIDE as i32,
                options
                    .set("height", crate::pipeline::geometry::MAX_OUTPUT_SIDE as i32)
                    .set("size", Size::Down as i32),
            )?,
            (Some(w), None) => VipsImage::thumbnail_buffer_with_opts(
                bytes,
                w,
                options.set("height", crate::pipeline::geometry::MAX_OUTPUT_SIDE as i32),
            )?,
            (None, Some(h)) => VipsImage::thumbnail_buffer_with_opts(
                bytes,
                crate::pipeline::geometry::MAX_OUTPUT_SIDE as i32,
                options.set("height", h),
            )?,
            (Some(w), Some(h)) => {
                let options = options.set("height", h);
                let options = match size.fit {
                    OverlayFit::Crop => {
                        options.set("crop", rs_vips::enums::Interesting::Centre as i32)
                    }
                    OverlayFit::Scale => options.set("size", Size::Force as i32),
                    OverlayFit::Max => options.set("size", Size::Down as i32),
                    OverlayFit::Unspecified | OverlayFit::Clip => options,
                };
                VipsImage::thumbnail_buffer_with_opts(bytes, w, options)?
            }
        };
        with_alpha(&srgb8(&image)?)
    };
    decode()
        .inspect_err(|error| crate::pipeline::load::libvips::log_failure("overlay", error))
        .ok()
}

/// Scales the alpha band by `opacity` (0–1).
fn fade(layer: &VipsImage, opacity: f64) -> rs_vips::Result<VipsImage> {
    if opacity >= 1.0 {
        return layer.copy();
    }
    let channels = Channels::split(&with_alpha(layer)?)?;
    let alpha = channels
        .alpha
        .as_ref()
        .map(|a| a.linear(&[opacity], &[0.0]))
        .transpose()?;
    Channels {
        colour: channels.colour,
        alpha,
    }
    .join()
}

/// Where an overlay of `size` goes on a `base`: explicit coordinates win,
/// else the alignment `pad` pixels from the edges.
fn place(
    base: (i32, i32),
    size: (i32, i32),
    vertical: VerticalAlign,
    horizontal: HorizontalAlign,
    pad: i32,
    x: Option<i32>,
    y: Option<i32>,
) -> (i32, i32) {
    let x = x.unwrap_or(match horizontal {
        HorizontalAlign::Left => pad,
        HorizontalAlign::Center => (base.0 - size.0) / 2,
        HorizontalAlign::Right | HorizontalAlign::Unspecified => base.0 - size.0 - pad,
    });
    let y = y.unwrap_or(match vertical {
        VerticalAlign::Top => pad,
        VerticalAlign::Middle => (base.1 - size.1) / 2,
        VerticalAlign::Bottom | VerticalAlign::Unspecified => base.1 - size.1 - pad,
    });
    (x, y)
}

/// libvips' mode for the separable blend modes.
fn libvips_mode(mode: PlanBlendMode) -> BlendMode {
    match mode {
        PlanBlendMode::Normal => BlendMode::Over,
        PlanBlendMode::Multiply => BlendMode::Multiply,
        PlanBlendMode::Screen => BlendMode::Screen,
        PlanBlendMode::Darken => BlendMode::Darken,
        PlanBlendMode::Lighten => BlendMode::Lighten,
        PlanBlendMode::Dodge => BlendMode::ColourDodge,
        PlanBlendMode::Burn => BlendMode::ColourBurn,
        PlanBlendMode::Hardlight => BlendMode::HardLight,
        PlanBlendMode::Softlight => BlendMode::SoftLight,
        PlanBlendMode::Difference => BlendMode::Difference,
        PlanBlendMode::Exclusion => BlendMode::Exclusion,
        PlanBlendMode::Unspecified
        | PlanBlendMode::Overlay
        | PlanBlendMode::Hue
        | PlanBlendMode::Saturation
        | PlanBlendMode::Color
        | PlanBlendMode::Luminosity => BlendMode::Overlay,
    }
}

/// The non-separable modes, in CIE LCh: hue takes the layer's hue,
/// saturation its chroma, color both, luminosity its lightness; the result
/// is then laid over the base with the layer's alpha.
fn lch_blend(
    base: &VipsImage,
    layer: &VipsImage,
    x: i32,
    y: i32,
    mode: PlanBlendMode,
) -> rs_vips::Result<VipsImage> {
    let (width, height) = (base.get_width(), base.get_height());
    // The layer on a canvas the size of the base.
    let layer = layer.embed_with_opts(
        x,
        y,
        width,
        height,
        VOption::new()
            .set("extend", rs_vips::enums::Extend::Background as i32)
            .set("background", &[0.0, 0.0, 0.0, 0.0][..]),
    )?;
    let base_channels = Channels::split(base)?;
    let layer_channels = Channels::split(&layer)?;
    let base_lch = srgb_colour(&base_channels.colour)?.colourspace(Interpretation::Lch)?;
    let layer_lch = srgb_colour(&layer_channels.colour)?.colourspace(Interpretation::Lch)?;
    let pick = |band: i32, from_layer: bool| {
        if from_layer {
            layer_lch.extract_band(band)
        } else {
            base_lch.extract_band(band)
        }
    };
    let (l, c, h) = match mode {
        PlanBlendMode::Hue => (pick(0, false)?, pick(1, false)?, pick(2, true)?),
        PlanBlendMode::Saturation => (pick(0, false)?, pick(1, true)?, pick(2, false)?),
        PlanBlendMode::Color => (pick(0, false)?, pick(1, true)?, pick(2, true)?),
        _ => (pick(0, true)?, pick(1, false)?, pick(2, false)?),
    };
    let mixed = VipsImage::bandjoin(&[l, c, h])?
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Lch as i32))?
        .colourspace(Interpretation::Srgb)?;
    let alpha = match layer_channels.alpha {
        Some(alpha) => alpha,
        None => VipsImage::black(width, height)?.linear(&[1.0], &[255.0])?,
    };
    let blended = with_alpha(&srgb8(&mixed)?)?;
    let blended = Channels {
        colour: Channels::split(&blended)?.colour,
        alpha: Some(alpha),
    }
    .join()?;
    base.composite2_with_opts(&blended, BlendMode::Over, VOption::new())
}

/// Colour bands tagged as sRGB (for colourspace conversions).
fn srgb_colour(colour: &VipsImage) -> rs_vips::Result<VipsImage> {
    colour
        .cast(BandFormat::Uchar)?
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
}

/// `composited` without an alpha band when `original` had none (an opaque
/// image stays opaque after opaque-or-translucent layers are added).
fn keep_opacity(original: &VipsImage, composited: &VipsImage) -> rs_vips::Result<VipsImage> {
    if original.hasalpha() || !composited.hasalpha() {
        return composited.copy();
    }
    composited.extract_band_with_opts(0, VOption::new().set("n", composited.get_bands() - 1))
}
