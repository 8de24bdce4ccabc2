//! The canonical form of a [`RenderPlan`].
//!
//! [`normalize_plan`] is applied to every plan, by the gateway after
//! building it and by the renderer to whatever a caller sends, so both
//! agree on the cache key. It
//!
//! - refuses enum numbers this build does not know,
//! - clamps every number to the range the spec gives its parameter (and to
//!   imgmesh's own caps where the spec leaves a side open),
//! - writes defaults out (`fit=clip`, `q=75` or 45 with `auto=compress`,
//!   `dpr=1`, `fp-x=0.5`, `mark-pad=5`, ...),
//! - drops what cannot change the output: parameters whose dependency is
//!   not met (`crop` without `fit=crop`, `lossless` without WebP,
//!   `usmrad` without `usm`, ...), neutral values, sub-messages equal to
//!   their defaults, and everything but the format for `fm=json` (whose
//!   document describes the source, not a rendering).
//!
//! It is idempotent: normalising a normalised plan changes nothing.

use imgmesh_proto::renderer::v1 as pb;
use pb::{
    Anchor, BlendMode, ChromaSubsampling, ColorSpace, CropStrategy, FillMode, Fit, HorizontalAlign,
    OutputFormat, OverlayFit, RenderPlan, RotationType, TextClip, TrimMode, VerticalAlign,
};

use crate::ParamError;
use crate::spec::{Spec, ValueKind};

/// The largest output side (the strict maximum of `w` and `h`).
pub const MAX_OUTPUT_SIDE: u32 = 8192;

/// The largest device pixel ratio, in hundredths.
const MAX_DPR_CENTI: u32 = 500;

/// imgix's quality under `auto=compress` when `q` is not given.
pub const COMPRESS_QUALITY: u32 = 45;

/// One in millionths.
const ONE_PPM: u32 = 1_000_000;

/// The largest watermark side in pixels: for `mark-w` and `mark-h` "The
/// maximum value is 2000" (https://docs.imgix.com/apis/url/watermark/mark-w).
const MAX_MARK_SIDE: u32 = 2000;

/// Largest aspect ratio kept (either way round), in millionths.
const MAX_ASPECT_RATIO_PPM: u64 = MAX_OUTPUT_SIDE as u64 * ONE_PPM as u64;

/// Largest text size in pixels.
const MAX_TEXT_SIZE: u32 = 1000;

/// Returns the canonical form of `plan`.
pub fn normalize_plan(plan: &RenderPlan) -> Result<RenderPlan, ParamError> {
    let format = known::<OutputFormat>("format", plan.format)?;
    let fit = match known::<Fit>("fit", plan.fit)? {
        Fit::Unspecified => Fit::Clip,
        fit => fit,
    };
    if format == OutputFormat::Json {
        return Ok(RenderPlan {
            format: format.into(),
            ..RenderPlan::default()
        });
    }
    let mut out = RenderPlan {
        format: format.into(),
        fit: fit.into(),
        ..RenderPlan::default()
    };
    let side = spec_range("w", ValueKind::Integer, 2, MAX_OUTPUT_SIDE);
    (out.width, out.width_fraction_ppm) = size(plan.width, plan.width_fraction_ppm, side);
    (out.height, out.height_fraction_ppm) = size(plan.height, plan.height_fraction_ppm, side);
    out.dpr_centi = match plan.dpr_centi {
        0 => 100,
        dpr => dpr.min(MAX_DPR_CENTI),
    };
    let crops = matches!(fit, Fit::Crop | Fit::Min);
    // imgix: `ar` "will work only when either fit=crop or fit=fill is set".
    if matches!(fit, Fit::Crop | Fit::Fill) && plan.aspect_ratio_ppm > 0 {
        out.aspect_ratio_ppm = plan.aspect_ratio_ppm.clamp(
            ONE_PPM as u64 / MAX_OUTPUT_SIDE as u64,
            MAX_ASPECT_RATIO_PPM,
        );
    }
    if crops && let Some(crop) = &plan.crop {
        out.crop = normalize_crop(crop)?;
    }
    if let Some(rect) = &plan.rect {
        out.rect = normalize_rect(rect)?;
    }
    if fit == Fit::Crop
        && let Some(bounds) = &plan.size_bounds
    {
        let bound = |value: u32| value.min(MAX_OUTPUT_SIDE);
        let bounds = pb::SizeBounds {
            min_width: bound(bounds.min_width),
            min_height: bound(bounds.min_height),
            max_width: bound(bounds.max_width),
            max_height: bound(bounds.max_height),
        };
        out.size_bounds = non_default(bounds);
    }
    normalize_output(plan, format, &mut out)?;
    if let Some(orientation) = &plan.orientation {
        out.orientation = normalize_orientation(orientation)?;
    }
    if let Some(adjustments) = &plan.adjustments {
        out.adjustments = non_default(normalize_adjustments(adjustments));
    }
    if let Some(stylize) = &plan.stylize {
        out.stylize = non_default(normalize_stylize(stylize));
    }
    if let Some(canvas) = &plan.canvas {
        out.canvas = normalize_canvas(canvas, fit)?;
    }
    if let Some(trim) = &plan.trim {
        out.trim = normalize_trim(trim)?;
    }
    if let Some(watermark) = &plan.watermark {
        out.watermark = normalize_watermark(watermark)?;
    }
    if let Some(text) = &plan.text {
        out.text = normalize_text(text)?;
    }
    if let Some(blend) = &plan.blend {
        out.blend = normalize_blend(blend)?;
    }
    if let Some(animation) = &plan.animation
        && animation.frame > 0
    {
        out.animation = Some(*animation);
    }
    Ok(out)
}

/// Pixels clamped into `range`, or a fraction up to one; pixels win when
/// both are set, and zero means unset.
fn size(pixels: u32, fraction_ppm: u32, range: (u32, u32)) -> (u32, u32) {
    match (pixels, fraction_ppm) {
        (0, 0) => (0, 0),
        (0, fraction) => (0, fraction.min(ONE_PPM)),
        (pixels, _) => (pixels.clamp(range.0, range.1), 0),
    }
}

fn normalize_output(
    plan: &RenderPlan,
    format: OutputFormat,
    out: &mut RenderPlan,
) -> Result<(), ParamError> {
    let encoding = plan.encoding.unwrap_or_default();
    let chroma =
        known::<ChromaSubsampling>("encoding.chroma_subsampling", encoding.chroma_subsampling)?;
    let color_space = known::<ColorSpace>("encoding.color_space", encoding.color_space)?;
    let maybe_jpeg = matches!(format, OutputFormat::Jpeg | OutputFormat::Unspecified);
    let lossless = encoding.lossless && format == OutputFormat::Webp;
    let lossy = matches!(
        format,
        OutputFormat::Unspecified | OutputFormat::Jpeg | OutputFormat::Webp | OutputFormat::Avif
    ) && !lossless;
    out.quality = if lossy {
        match plan.quality {
            0 if encoding.compress => COMPRESS_QUALITY,
            0 => spec_default("q").unwrap_or(75.0) as u32,
            q => q.min(100),
        }
    } else {
        0
    };
    if format == OutputFormat::Blurhash {
        return Ok(());
    }
    let encoding = pb::Encoding {
        lossless,
        chroma_subsampling: if maybe_jpeg {
            chroma
        } else {
            ChromaSubsampling::Unspecified
        }
        .into(),
        progressive: encoding.progressive && maybe_jpeg,
        color_space: color_space.into(),
        compress: encoding.compress && format == OutputFormat::Unspecified,
    };
    out.encoding = non_default(encoding);
    Ok(())
}

fn normalize_crop(crop: &pb::Crop) -> Result<Option<pb::Crop>, ParamError> {
    let strategy = known::<CropStrategy>("crop.strategy", crop.strategy)?;
    // Opposite edges cancel out: the centre is kept on that axis.
    let (top, bottom) = if crop.top && crop.bottom {
        (false, false)
    } else {
        (crop.top, crop.bottom)
    };
    let (left, right) = if crop.left && crop.right {
        (false, false)
    } else {
        (crop.left, crop.right)
    };
    let mut out = pb::Crop {
        top,
        bottom,
        left,
        right,
        strategy: strategy.into(),
        ..pb::Crop::default()
    };
    if strategy == CropStrategy::Focalpoint {
        let half = spec_default("fp-x").map_or(ONE_PPM / 2, |d| (d * f64::from(ONE_PPM)) as u32);
        out.focal_x_ppm = Some(crop.focal_x_ppm.unwrap_or(half).min(ONE_PPM));
        out.focal_y_ppm = Some(crop.focal_y_ppm.unwrap_or(half).min(ONE_PPM));
        let (min, max) = spec_range("fp-z", ValueKind::Number, 1, 100);
        out.focal_zoom_milli = match crop.focal_zoom_milli {
            0 => min * 1000,
            zoom => zoom.clamp(min * 1000, max * 1000),
        };
    }
    Ok(non_default(out))
}

fn normalize_rect(rect: &pb::SourceRect) -> Result<Option<pb::SourceRect>, ParamError> {
    let offset = |offset: Option<&pb::RectOffset>| -> Result<pb::RectOffset, ParamError> {
        let value = match offset.and_then(|o| o.value) {
            None | Some(pb::rect_offset::Value::Pixels(0)) => pb::rect_offset::Value::Pixels(0),
            Some(pb::rect_offset::Value::Pixels(p)) => pb::rect_offset::Value::Pixels(p),
            Some(pb::rect_offset::Value::FractionPpm(f)) => {
                pb::rect_offset::Value::FractionPpm(f.min(ONE_PPM))
            }
            Some(pb::rect_offset::Value::Anchor(a)) => match known::<Anchor>("rect.anchor", a)? {
                Anchor::Unspecified | Anchor::Start => pb::rect_offset::Value::Pixels(0),
                anchor => pb::rect_offset::Value::Anchor(anchor.into()),
            },
        };
        Ok(pb::RectOffset { value: Some(value) })
    };
    let (Some(width), Some(height)) = (
        length(rect.width.as_ref(), u32::MAX),
        length(rect.height.as_ref(), u32::MAX),
    ) else {
        return Ok(None);
    };
    Ok(Some(pb::SourceRect {
        x: Some(offset(rect.x.as_ref())?),
        y: Some(offset(rect.y.as_ref())?),
        width: Some(width),
        height: Some(height),
    }))
}

/// A length with zero meaning unset, pixels capped at `max_pixels` and
/// fractions at one.
fn length(length: Option<&pb::Length>, max_pixels: u32) -> Option<pb::Length> {
    let value = match length?.value? {
        pb::length::Value::Pixels(0) | pb::length::Value::FractionPpm(0) => return None,
        pb::length::Value::Pixels(p) => pb::length::Value::Pixels(p.min(max_pixels)),
        pb::length::Value::FractionPpm(f) => pb::length::Value::FractionPpm(f.min(ONE_PPM)),
    };
    Some(pb::Length { value: Some(value) })
}

fn normalize_orientation(
    orientation: &pb::Orientation,
) -> Result<Option<pb::Orientation>, ParamError> {
    if orientation.exif_orientation > 8 {
        return Err(ParamError::InvalidPlan {
            field: "orientation.exif_orientation",
            problem: format!(
                "{} is not an EXIF orientation",
                orientation.exif_orientation
            ),
        });
    }
    let rotation = orientation.rotation_centi_degrees % 36_000;
    let rotation_type =
        match known::<RotationType>("orientation.rotation_type", orientation.rotation_type)? {
            _ if rotation == 0 => RotationType::Unspecified,
            RotationType::Unspecified => RotationType::Straighten,
            other => other,
        };
    Ok(non_default(pb::Orientation {
        exif_orientation: orientation.exif_orientation,
        rotation_centi_degrees: rotation,
        rotation_type: rotation_type.into(),
        flip_horizontal: orientation.flip_horizontal,
        flip_vertical: orientation.flip_vertical,
    }))
}

fn normalize_adjustments(a: &pb::Adjustments) -> pb::Adjustments {
    let signed = |name: &str, value: i32| {
        let (min, max) = spec_signed_range(name, -100, 100);
        value.clamp(min, max)
    };
    let unsigned = |name: &str, value: u32| {
        let (min, max) = spec_range(name, ValueKind::Number, 0, 100);
        value.clamp(min, max)
    };
    let unsharp_mask = signed("usm", a.unsharp_mask);
    let default_radius = spec_default("usmrad").map_or(250, |r| (r * 100.0).round() as u32);
    pb::Adjustments {
        brightness: signed("bri", a.brightness),
        contrast: signed("con", a.contrast),
        exposure: signed("exp", a.exposure),
        gamma: signed("gam", a.gamma),
        highlights: signed("high", a.highlights),
        shadows: unsigned("shad", a.shadows),
        hue: a.hue % 360,
        saturation: signed("sat", a.saturation),
        vibrance: signed("vib", a.vibrance),
        sharpen: unsigned("sharp", a.sharpen),
        unsharp_mask,
        // A radius above 100 pixels only costs time; the spec leaves it open.
        unsharp_radius_centi: match (unsharp_mask, a.unsharp_radius_centi) {
            (0, _) => 0,
            (_, 0) => default_radius,
            (_, r) => r.min(10_000),
        },
        invert: a.invert,
    }
}

fn normalize_stylize(s: &pb::Stylize) -> pb::Stylize {
    let bound = |name: &str, value: u32, default_max: u32| {
        let (min, max) = spec_range(name, ValueKind::Integer, 0, default_max);
        value.clamp(min, max)
    };
    let duotone = s.duotone.and_then(|d| {
        Some(pb::Duotone {
            shadows: Some(d.shadows?),
            highlights: Some(d.highlights?),
            alpha: Some(d.alpha.unwrap_or(100).min(100)),
        })
    });
    pb::Stylize {
        blur: bound("blur", s.blur, 2000),
        pixelate: bound("px", s.pixelate, 100),
        sepia: bound("sepia", s.sepia, 100),
        // An invisible tint changes nothing.
        monochrome: s.monochrome.filter(|c| c.argb >> 24 != 0),
        duotone: duotone.filter(|d| d.alpha != Some(0)),
    }
}

fn normalize_canvas(canvas: &pb::Canvas, fit: Fit) -> Result<Option<pb::Canvas>, ParamError> {
    let fill = known::<FillMode>("canvas.fill", canvas.fill)?;
    let fills = matches!(fit, Fit::Fill | Fit::Fillmax);
    let visible = |c: Option<pb::Color>| c.filter(|c| c.argb >> 24 != 0);
    let sides = |s: &pb::Sides, max: u32| pb::Sides {
        top: s.top.min(max),
        right: s.right.min(max),
        bottom: s.bottom.min(max),
        left: s.left.min(max),
    };
    let (_, border_max) = spec_range("border-top", ValueKind::Integer, 0, 100);
    let border = canvas.border.and_then(|b| {
        let widths = sides(&b.widths?, border_max);
        (widths != pb::Sides::default()).then_some(pb::Border {
            widths: Some(widths),
            color: Some(b.color?),
        })
    });
    let corners = |c: Option<pb::Corners>| {
        c.map(|c| pb::Corners {
            top_left: c.top_left.min(MAX_OUTPUT_SIDE),
            top_right: c.top_right.min(MAX_OUTPUT_SIDE),
            bottom_right: c.bottom_right.min(MAX_OUTPUT_SIDE),
            bottom_left: c.bottom_left.min(MAX_OUTPUT_SIDE),
        })
        .and_then(non_default)
    };
    let canvas = pb::Canvas {
        background: visible(canvas.background),
        padding: canvas
            .padding
            .map(|p| sides(&p, MAX_OUTPUT_SIDE))
            .and_then(non_default),
        border,
        // imgix: for both radii "the border parameter must be set for this
        // operation to be applied".
        border_radius: corners(canvas.border_radius).filter(|_| border.is_some()),
        border_radius_inner: corners(canvas.border_radius_inner).filter(|_| border.is_some()),
        fill: if fills { fill } else { FillMode::Unspecified }.into(),
        fill_color: if fills && fill == FillMode::Unspecified {
            visible(canvas.fill_color)
        } else {
            None
        },
    };
    Ok(non_default(canvas))
}

fn normalize_trim(trim: &pb::Trim) -> Result<Option<pb::Trim>, ParamError> {
    let mode = known::<TrimMode>("trim.mode", trim.mode)?;
    if mode == TrimMode::Unspecified {
        return Ok(None);
    }
    let default_centi =
        |name: &str, fallback: u32| spec_default(name).map_or(fallback, |d| (d * 100.0) as u32);
    let (pad_min, pad_max) = spec_signed_range("trim-pad", -200, 200);
    let uses_color = matches!(mode, TrimMode::Color | TrimMode::ColorUnlessAlpha);
    let uses_alpha = matches!(mode, TrimMode::Alpha | TrimMode::ColorUnlessAlpha);
    Ok(Some(pb::Trim {
        mode: mode.into(),
        color: trim.color.filter(|_| uses_color),
        mean_difference_centi: (mode == TrimMode::Auto).then(|| {
            trim.mean_difference_centi
                .unwrap_or_else(|| default_centi("trim-md", 1100))
                .min(25_500)
        }),
        standard_deviation_centi: (mode == TrimMode::Auto).then(|| {
            trim.standard_deviation_centi
                .unwrap_or_else(|| default_centi("trim-sd", 1000))
                .min(25_500)
        }),
        tolerance_centi: if uses_color {
            trim.tolerance_centi.min(25_500)
        } else {
            0
        },
        pad: trim.pad.clamp(pad_min, pad_max),
        alpha_threshold_centi: if uses_alpha {
            trim.alpha_threshold_centi.min(25_500)
        } else {
            0
        },
    }))
}

fn normalize_watermark(mark: &pb::Watermark) -> Result<Option<pb::Watermark>, ParamError> {
    if mark.path.is_empty() {
        return Ok(None);
    }
    // imgix's mark-tile page: "If mark-align is not set, the default top,
    // left will be used for a tiled watermark. This is different from the
    // default bottom, right for a single mark."
    let vertical = match known::<VerticalAlign>("watermark.vertical", mark.vertical)? {
        VerticalAlign::Unspecified if mark.tile => VerticalAlign::Top,
        VerticalAlign::Unspecified => VerticalAlign::Bottom,
        v => v,
    };
    let horizontal = match known::<HorizontalAlign>("watermark.horizontal", mark.horizontal)? {
        HorizontalAlign::Unspecified if mark.tile => HorizontalAlign::Left,
        HorizontalAlign::Unspecified => HorizontalAlign::Right,
        h => h,
    };
    let fit = match known::<OverlayFit>("watermark.fit", mark.fit)? {
        OverlayFit::Unspecified => OverlayFit::Clip,
        f => f,
    };
    Ok(Some(pb::Watermark {
        path: mark.path.clone(),
        vertical: vertical.into(),
        horizontal: horizontal.into(),
        alpha: Some(mark.alpha.unwrap_or(100).min(100)),
        scale: mark.scale.min(100),
        pad: Some(
            mark.pad
                .unwrap_or_else(|| spec_default("mark-pad").map_or(5, |p| p as u32))
                .min(MAX_OUTPUT_SIDE),
        ),
        x: mark.x.map(|x| x.min(MAX_OUTPUT_SIDE)),
        y: mark.y.map(|y| y.min(MAX_OUTPUT_SIDE)),
        width: length(mark.width.as_ref(), MAX_MARK_SIDE),
        height: length(mark.height.as_ref(), MAX_MARK_SIDE),
        fit: fit.into(),
        tile: mark.tile,
    }))
}

fn normalize_text(text: &pb::TextOverlay) -> Result<Option<pb::TextOverlay>, ParamError> {
    if text.text.is_empty() {
        return Ok(None);
    }
    let vertical = match known::<VerticalAlign>("text.vertical", text.vertical)? {
        VerticalAlign::Unspecified => VerticalAlign::Bottom,
        v => v,
    };
    let horizontal = match known::<HorizontalAlign>("text.horizontal", text.horizontal)? {
        HorizontalAlign::Unspecified => HorizontalAlign::Right,
        h => h,
    };
    let clip = known::<TextClip>("text.clip", text.clip)?;
    let default_size = spec_default("txt-size").map_or(12, |s| s as u32);
    Ok(Some(pb::TextOverlay {
        text: text
            .text
            .chars()
            .take(crate::plan::MAX_TEXT_CHARS)
            .collect(),
        font: text.font.trim().to_owned(),
        size: match text.size {
            0 => default_size,
            size => size.min(MAX_TEXT_SIZE),
        },
        color: Some(text.color.unwrap_or(pb::Color { argb: 0xFF00_0000 })),
        vertical: vertical.into(),
        horizontal: horizontal.into(),
        pad: Some(
            text.pad
                .unwrap_or_else(|| spec_default("txt-pad").map_or(10, |p| p as u32))
                .min(MAX_OUTPUT_SIDE),
        ),
        shadow_deci: text.shadow_deci.min(100),
        width: text.width.min(MAX_OUTPUT_SIDE),
        clip: clip.into(),
        fit_max: text.fit_max,
    }))
}

fn normalize_blend(blend: &pb::Blend) -> Result<Option<pb::Blend>, ParamError> {
    let mode = match known::<BlendMode>("blend.mode", blend.mode)? {
        BlendMode::Unspecified => BlendMode::Overlay,
        m => m,
    };
    let alpha = Some(blend.alpha.unwrap_or(100).min(100));
    match &blend.source {
        None => Ok(None),
        Some(pb::blend::Source::Path(path)) if path.is_empty() => Ok(None),
        Some(pb::blend::Source::Color(color)) => Ok(Some(pb::Blend {
            source: Some(pb::blend::Source::Color(*color)),
            mode: mode.into(),
            alpha,
            ..pb::Blend::default()
        })),
        Some(pb::blend::Source::Path(path)) => {
            // imgix: "If no value is explicitly set, the default behavior is
            // center,middle" (https://docs.imgix.com/apis/url/blending/blend-align).
            let vertical = match known::<VerticalAlign>("blend.vertical", blend.vertical)? {
                VerticalAlign::Unspecified => VerticalAlign::Middle,
                v => v,
            };
            let horizontal = match known::<HorizontalAlign>("blend.horizontal", blend.horizontal)? {
                HorizontalAlign::Unspecified => HorizontalAlign::Center,
                h => h,
            };
            let fit = match known::<OverlayFit>("blend.fit", blend.fit)? {
                OverlayFit::Unspecified => OverlayFit::Clip,
                f => f,
            };
            Ok(Some(pb::Blend {
                source: Some(pb::blend::Source::Path(path.clone())),
                mode: mode.into(),
                alpha,
                vertical: vertical.into(),
                horizontal: horizontal.into(),
                x: blend.x.min(MAX_OUTPUT_SIDE),
                y: blend.y.min(MAX_OUTPUT_SIDE),
                width: length(blend.width.as_ref(), MAX_OUTPUT_SIDE),
                height: length(blend.height.as_ref(), MAX_OUTPUT_SIDE),
                fit: fit.into(),
                pad: blend.pad.min(MAX_OUTPUT_SIDE),
            }))
        }
    }
}

/// `value` as the enum `E`, or an error naming `field`.
fn known<E: TryFrom<i32>>(field: &'static str, value: i32) -> Result<E, ParamError> {
    E::try_from(value).map_err(|_| ParamError::InvalidPlan {
        field,
        problem: format!("unknown value {value}"),
    })
}

/// `value` unless it equals the type's default.
fn non_default<T: Default + PartialEq>(value: T) -> Option<T> {
    (value != T::default()).then_some(value)
}

/// The spec's range for `name` as non-negative integers, with fallbacks
/// for open or missing bounds.
fn spec_range(name: &str, kind: ValueKind, min: u32, max: u32) -> (u32, u32) {
    let range = Spec::get()
        .param(name)
        .and_then(|p| p.range(kind).or_else(|| p.expects.first()?.range()));
    let bound = |b: Option<f64>, fallback: u32| b.map_or(fallback, |b| b.max(0.0) as u32);
    (
        bound(range.and_then(|r| r.min), min),
        bound(range.and_then(|r| r.max), max),
    )
}

/// The spec's range for `name` as signed integers.
fn spec_signed_range(name: &str, min: i32, max: i32) -> (i32, i32) {
    let range = Spec::get()
        .param(name)
        .and_then(|p| p.expects.first()?.range());
    let bound = |b: Option<f64>, fallback: i32| b.map_or(fallback, |b| b as i32);
    (
        bound(range.and_then(|r| r.min), min),
        bound(range.and_then(|r| r.max), max),
    )
}

/// The spec's default for `name` as a number.
fn spec_default(name: &str) -> Option<f64> {
    Spec::get().param(name)?.default_number()
}
