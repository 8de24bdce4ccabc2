//! Colour, tone and detail effects: `exp`, `bri`, `con`, `gam`, `high`,
//! `shad`, `sat`, `vib`, `hue`, `invert`, `mono`, `sepia`, `duotone`,
//! `sharp`, `usm`/`usmrad`, `blur` and `px`.
//!
//! They run after the resize, on the small image (imgix lists colour
//! adjustments before sizing; every one here is per pixel, so the order
//! only changes resampling rounding, and running them on the output size
//! is far cheaper). Colour effects change the colour bands and leave alpha
//! alone. imgix does not publish its curves; the ones here are documented
//! beside each function and move in the direction and roughly the strength
//! imgix's examples show, with 0 always neutral.

use imgmesh_proto::renderer::v1::{Adjustments, Stylize};
use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, Interpretation, OperationMath2, OperationRelational};
use rs_vips::voption::{Setter as _, VOption};

use crate::pipeline::adjustments::channels::{Channels, luma};

/// Whether any colour or tone effect is asked for.
pub(crate) fn has_colour_effects(
    adjustments: Option<&Adjustments>,
    stylize: Option<&Stylize>,
) -> bool {
    let adjusts = adjustments.is_some_and(|a| {
        a.exposure != 0
            || a.brightness != 0
            || a.contrast != 0
            || a.gamma != 0
            || a.highlights != 0
            || a.shadows != 0
            || a.saturation != 0
            || a.vibrance != 0
            || a.hue != 0
            || a.invert
    });
    let stylizes =
        stylize.is_some_and(|s| s.monochrome.is_some() || s.sepia > 0 || s.duotone.is_some());
    adjusts || stylizes
}

/// Applies the colour and tone effects, in imgix's order of listing, to an
/// 8-bit sRGB image.
pub(crate) fn colour_effects(
    image: &VipsImage,
    adjustments: Option<&Adjustments>,
    stylize: Option<&Stylize>,
) -> rs_vips::Result<VipsImage> {
    let a = adjustments.copied().unwrap_or_default();
    let s = stylize.copied().unwrap_or_default();
    let mut channels = Channels::split(image)?;
    let mut colour = channels.colour.cast(BandFormat::Float)?;
    if a.exposure != 0 {
        // ±2 stops at ±100.
        let factor = 2f64.powf(f64::from(a.exposure) / 50.0);
        colour = colour.linear(&[factor], &[0.0])?;
    }
    if a.brightness != 0 {
        // An offset of up to 150 levels.
        colour = colour.linear(&[1.0], &[f64::from(a.brightness) * 1.5])?;
    }
    if a.contrast != 0 {
        // The classic contrast curve around mid-grey: -100 flattens to grey,
        // +100 thresholds.
        let c = f64::from(a.contrast) * 2.55;
        let factor = (259.0 * (c + 255.0)) / (255.0 * (259.0 - c));
        colour = colour.linear(&[factor], &[128.0 * (1.0 - factor)])?;
    }
    colour = clip(&colour)?;
    if a.gamma != 0 {
        // out = 255 · (in/255)^e with e = 2^(-gam/100): +100 brightens the
        // midtones as a gamma of 2 would.
        let exponent = 2f64.powf(-f64::from(a.gamma) / 100.0);
        colour = colour
            .linear(&[1.0 / 255.0], &[0.0])?
            .math2_const(OperationMath2::Pow, &[exponent])?
            .linear(&[255.0], &[0.0])?;
    }
    if a.highlights != 0 {
        // Pulls tones above mid-grey down, by up to half their excess.
        let excess = positive_part(&colour.linear(&[1.0], &[-128.0])?)?;
        colour = colour.add(&excess.linear(&[f64::from(a.highlights) / 200.0], &[0.0])?)?;
    }
    if a.shadows != 0 {
        // Lifts tones below mid-grey, by up to half their shortfall.
        let shortfall = positive_part(&colour.linear(&[-1.0], &[128.0])?)?;
        colour = colour.add(&shortfall.linear(&[f64::from(a.shadows) / 200.0], &[0.0])?)?;
    }
    if a.saturation != 0 || a.vibrance != 0 || a.hue != 0 {
        colour = chroma_and_hue(&clip(&colour)?, &a)?;
    }
    if a.invert {
        colour = colour.linear(&[-1.0], &[255.0])?;
    }
    colour = clip(&colour)?;
    if let Some(tint) = s.monochrome {
        colour = monochrome(&colour, tint.argb)?;
    }
    if s.sepia > 0 {
        colour = sepia(&colour, f64::from(s.sepia) / 100.0)?;
    }
    if let Some(duotone) = s.duotone
        && let (Some(shadows), Some(highlights)) = (duotone.shadows, duotone.highlights)
    {
        let strength = f64::from(duotone.alpha.unwrap_or(100)) / 100.0;
        colour = duotone_map(&colour, shadows.argb, highlights.argb, strength)?;
    }
    channels.colour = clip(&colour)?;
    channels.join()
}

/// Saturation, vibrance and hue in CIE LCh: `sat` scales chroma (−100 is
/// greyscale), `vib` scales it more for dull colours than for vivid ones,
/// `hue` turns the hue angle.
fn chroma_and_hue(colour: &VipsImage, a: &Adjustments) -> rs_vips::Result<VipsImage> {
    let srgb = colour
        .cast(BandFormat::Uchar)?
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))?;
    let lch = srgb.colourspace(Interpretation::Lch)?;
    let lightness = lch.extract_band(0)?;
    let mut chroma = lch.extract_band(1)?;
    let mut hue = lch.extract_band(2)?;
    if a.saturation != 0 {
        chroma = chroma.linear(&[1.0 + f64::from(a.saturation) / 100.0], &[0.0])?;
    }
    if a.vibrance != 0 {
        // Weight 50 / (C + 50): 1 for grey, about 0.3 for vivid colours.
        let weight = chroma
            .linear(&[1.0], &[50.0])?
            .math2_const(OperationMath2::Pow, &[-1.0])?
            .linear(&[50.0], &[0.0])?;
        let gain = weight.linear(&[f64::from(a.vibrance) / 100.0], &[1.0])?;
        chroma = chroma.multiply(&gain)?;
    }
    chroma = positive_part(&chroma)?;
    if a.hue != 0 {
        hue = hue
            .linear(&[1.0], &[f64::from(a.hue)])?
            .remainder_const(&[360.0])?;
    }
    let lch = VipsImage::bandjoin(&[lightness, chroma, hue])?
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Lch as i32))?;
    lch.colourspace(Interpretation::Srgb)?
        .cast(BandFormat::Float)
}

/// Core Image's monochrome: the luma overlay-blended with the tint colour,
/// mixed in by the tint's alpha. A neutral tint gives R = G = B.
fn monochrome(colour: &VipsImage, argb: u32) -> rs_vips::Result<VipsImage> {
    let [a, r, g, b] = argb.to_be_bytes();
    let tint = [
        f64::from(r) / 255.0,
        f64::from(g) / 255.0,
        f64::from(b) / 255.0,
    ];
    let l = luma(colour)?.linear(&[1.0 / 255.0], &[0.0])?;
    // Below mid-grey: 2·L·t; above: 1 − 2·(1 − L)·(1 − t).
    let low = VipsImage::bandjoin(&[l.copy()?, l.copy()?, l.copy()?])?
        .linear(&tint.map(|t| 2.0 * t), &[0.0; 3])?;
    let high = VipsImage::bandjoin(&[l.copy()?, l.copy()?, l.copy()?])?.linear(
        &tint.map(|t| 2.0 * (1.0 - t)),
        &tint.map(|t| 1.0 - 2.0 * (1.0 - t)),
    )?;
    let dark = l.relational_const(OperationRelational::Less, &[0.5])?;
    let tinted = dark.ifthenelse(&low, &high)?.linear(&[255.0], &[0.0])?;
    mix(colour, &tinted, f64::from(a) / 255.0)
}

/// The classic sepia matrix, mixed in by `strength` (0–1).
fn sepia(colour: &VipsImage, strength: f64) -> rs_vips::Result<VipsImage> {
    let matrix = VipsImage::new_matrix_from_array(
        3,
        3,
        &[
            0.393, 0.769, 0.189, 0.349, 0.686, 0.168, 0.272, 0.534, 0.131,
        ],
    )?;
    let toned = colour.recomb(&matrix)?;
    mix(colour, &toned, strength)
}

/// Maps luma linearly from the shadow colour to the highlight colour, mixed
/// in by `strength` (0–1).
fn duotone_map(
    colour: &VipsImage,
    shadows: u32,
    highlights: u32,
    strength: f64,
) -> rs_vips::Result<VipsImage> {
    let [_, r0, g0, b0] = shadows.to_be_bytes();
    let [_, r1, g1, b1] = highlights.to_be_bytes();
    let low = [f64::from(r0), f64::from(g0), f64::from(b0)];
    let high = [f64::from(r1), f64::from(g1), f64::from(b1)];
    let l = luma(colour)?.linear(&[1.0 / 255.0], &[0.0])?;
    let spread = [high[0] - low[0], high[1] - low[1], high[2] - low[2]];
    let toned = VipsImage::bandjoin(&[l.copy()?, l.copy()?, l.copy()?])?.linear(&spread, &low)?;
    mix(colour, &toned, strength)
}

/// `from · (1 − amount) + to · amount`.
fn mix(from: &VipsImage, to: &VipsImage, amount: f64) -> rs_vips::Result<VipsImage> {
    if amount >= 1.0 {
        return to.copy();
    }
    from.linear(&[1.0 - amount], &[0.0])?
        .add(&to.linear(&[amount], &[0.0])?)
}

/// max(v, 0), elementwise.
fn positive_part(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    image.add(&image.abs()?)?.linear(&[0.5], &[0.0])
}

/// Clips to 0..=255 (kept as float).
fn clip(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    let low = positive_part(image)?;
    // min(v, 255) = 255 − max(255 − v, 0)
    let over = positive_part(&low.linear(&[-1.0], &[255.0])?)?;
    over.linear(&[-1.0], &[255.0])
}

/// Whether any detail effect is asked for.
pub(crate) fn has_detail_effects(
    adjustments: Option<&Adjustments>,
    stylize: Option<&Stylize>,
) -> bool {
    adjustments.is_some_and(|a| a.sharpen > 0 || a.unsharp_mask != 0)
        || stylize.is_some_and(|s| s.blur > 0 || s.pixelate > 1)
}

/// Sharpening, unsharp mask, blur and pixelation, in that order.
///
/// - `sharp`: libvips' `sharpen` (on lightness, sigma 1) with a slope of
///   up to 3 at 100.
/// - `usm`: `in + usm/100 · (in − blur(in, usmrad))`; negative softens.
/// - `blur`: a Gaussian of sigma `blur / 20` pixels (up to 100 at 2000);
///   beyond sigma 10 it is applied to a reduced copy and scaled back.
/// - `px`: blocks of `px` pixels, each its average colour.
pub(crate) fn detail_effects(
    image: &VipsImage,
    adjustments: Option<&Adjustments>,
    stylize: Option<&Stylize>,
) -> rs_vips::Result<VipsImage> {
    let a = adjustments.copied().unwrap_or_default();
    let s = stylize.copied().unwrap_or_default();
    let mut image = image.copy()?;
    if a.sharpen > 0 {
        let channels = Channels::split(&image)?.map(|colour| {
            colour
                .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))?
                .sharpen_with_opts(
                    VOption::new()
                        .set("sigma", 1.0)
                        .set("m2", f64::from(a.sharpen) * 0.03),
                )?
                .colourspace(Interpretation::Srgb)
        })?;
        image = channels.join()?;
    }
    if a.unsharp_mask != 0 {
        let radius = (f64::from(a.unsharp_radius_centi) / 100.0).max(0.3);
        let amount = f64::from(a.unsharp_mask) / 100.0;
        let channels = Channels::split(&image)?.map(|colour| {
            let colour = colour.cast(BandFormat::Float)?;
            let blurred = colour.gaussblur(radius)?;
            let detail = colour.subtract(&blurred)?;
            clip(&colour.add(&detail.linear(&[amount], &[0.0])?)?)
        })?;
        image = channels.join()?;
    }
    if s.blur > 0 {
        image = gaussian_blur(&image, f64::from(s.blur) / 20.0)?;
    }
    if s.pixelate > 1 {
        image = pixelate(&image, s.pixelate as i32)?;
    }
    Ok(image)
}

/// A Gaussian blur of `sigma` pixels; large sigmas blur a reduced copy.
pub(crate) fn gaussian_blur(image: &VipsImage, sigma: f64) -> rs_vips::Result<VipsImage> {
    const DIRECT_SIGMA: f64 = 10.0;
    if sigma <= DIRECT_SIGMA {
        return image.gaussblur(sigma.max(0.1))?.cast(BandFormat::Uchar);
    }
    let (width, height) = (image.get_width(), image.get_height());
    let factor = DIRECT_SIGMA / sigma;
    let small = image.resize(factor)?;
    // Sigma scales with the image: `sigma · factor` is DIRECT_SIGMA.
    let blurred = small.gaussblur(DIRECT_SIGMA)?;
    let back = blurred.resize_with_opts(
        f64::from(width) / f64::from(blurred.get_width()),
        VOption::new().set(
            "vscale",
            f64::from(height) / f64::from(blurred.get_height()),
        ),
    )?;
    crate::pipeline::load::source_image::extract_within(
        &back.cast(BandFormat::Uchar)?,
        0,
        0,
        width,
        height,
    )
}

/// Blocks of `size` pixels, each the average of its pixels.
fn pixelate(image: &VipsImage, size: i32) -> rs_vips::Result<VipsImage> {
    let (width, height) = (image.get_width(), image.get_height());
    let size = size.min(width.max(height)).max(1);
    // Pad to whole blocks by repeating the edge, average, then blow up.
    let padded_width = (width + size - 1) / size * size;
    let padded_height = (height + size - 1) / size * size;
    let padded = image.embed_with_opts(
        0,
        0,
        padded_width,
        padded_height,
        VOption::new().set("extend", rs_vips::enums::Extend::Copy as i32),
    )?;
    let blocks = padded.shrink(f64::from(size), f64::from(size))?;
    let blown = blocks.zoom(size, size)?;
    crate::pipeline::load::source_image::extract_within(
        &blown.cast(BandFormat::Uchar)?,
        0,
        0,
        width,
        height,
    )
}
