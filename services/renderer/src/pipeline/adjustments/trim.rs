//! `trim`: finding the part of the source inside uniform borders.
//!
//! The search runs on a preview of at most [`PREVIEW_SIDE`] pixels a side
//! (shrink-on-load, so it stays cheap for large originals) and the box is
//! scaled back to source pixels: exact for sources up to that size, within
//! a preview pixel above it. The result is a region of the upright source
//! that the layout then treats as the whole image.
//!
//! - `trim=auto`: trims only when the four corners agree on a colour (their
//!   mean difference within `trim-md` and standard deviation within
//!   `trim-sd`); that colour is the border.
//! - `trim=color`: the border is `trim-color` (the top-left pixel when not
//!   given), within `trim-tol`.
//!   With alpha, the fully transparent border goes first (imgix's trim
//!   page: color "checks alpha transparency and trims the transparent part
//!   if there is one; then trims the colour").
//! - `trim=alpha`: the border is alpha below `trim-alpha` (fully transparent
//!   when 0 or not given); `colorunlessalpha` does this for images with
//!   alpha and a colour trim otherwise.
//! - `trim-pad` adds (or, negative, removes) pixels around the result.

use imgmesh_proto::renderer::v1::{Trim, TrimMode};
use rs_vips::VipsImage;
use rs_vips::enums::Size;
use rs_vips::voption::{Setter as _, VOption};

use crate::pipeline::geometry::Region;
use crate::pipeline::load::source_image::{Header, orient};

/// Largest preview side searched for borders.
pub(crate) const PREVIEW_SIDE: i32 = 1024;

/// The smallest threshold libvips' find_trim is given; at 0 JPEG noise
/// would stop every trim.
const MIN_THRESHOLD: f64 = 1.0;

/// The region of the upright source inside its borders; `None` when
/// nothing is trimmed.
pub(crate) fn find_region(
    input: &[u8],
    header: &Header,
    orientation: u8,
    trim: &Trim,
) -> rs_vips::Result<Option<Region>> {
    let preview = VipsImage::thumbnail_buffer_with_opts(
        input,
        PREVIEW_SIDE,
        VOption::new()
            .set("height", PREVIEW_SIDE)
            .set("size", Size::Down as i32)
            .set("no_rotate", true)
            .set("option_string", "fail_on=truncated"),
    )?;
    // find_trim and getpoint read out of order; the preview is small.
    let preview = orient(&preview.copy_memory()?, orientation)?;
    let (upright_width, upright_height) = header.upright(orientation);
    let scale_x = f64::from(upright_width) / f64::from(preview.get_width());
    let scale_y = f64::from(upright_height) / f64::from(preview.get_height());
    let Some((left, top, width, height)) = trim_box(&preview, trim)? else {
        return Ok(None);
    };
    let pad = f64::from(trim.pad);
    let x0 = (f64::from(left) * scale_x - pad).max(0.0);
    let y0 = (f64::from(top) * scale_y - pad).max(0.0);
    let x1 = (f64::from(left + width) * scale_x + pad).min(f64::from(upright_width));
    let y1 = (f64::from(top + height) * scale_y + pad).min(f64::from(upright_height));
    if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
        return Ok(None);
    }
    Ok(Some(Region {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    }))
}

/// A box (left, top, width, height) in preview pixels.
type Box = (i32, i32, i32, i32);

/// The box (left, top, width, height) of `image` inside its borders.
fn trim_box(image: &VipsImage, trim: &Trim) -> rs_vips::Result<Option<Box>> {
    let whole = (0, 0, image.get_width(), image.get_height());
    let found = match trim.mode() {
        TrimMode::Unspecified => None,
        TrimMode::Alpha | TrimMode::ColorUnlessAlpha if image.hasalpha() => {
            alpha_box(image, trim.alpha_threshold_centi)?
        }
        TrimMode::Alpha => None,
        TrimMode::ColorUnlessAlpha => colour_box(image, image, trim)?,
        TrimMode::Color => {
            // imgix's trim page: color "checks alpha transparency and trims
            // the transparent part if there is one; then trims the colour".
            let outer = if image.hasalpha() {
                alpha_box(image, 0)?.unwrap_or(whole)
            } else {
                whole
            };
            let (x, y, width, height) = outer;
            let inside = image.extract_area(x, y, width, height)?;
            let inner = colour_box(&inside, image, trim)?.unwrap_or((0, 0, width, height));
            Some((x + inner.0, y + inner.1, inner.2, inner.3))
        }
        TrimMode::Auto => {
            let colour = colour_bands(image)?;
            match agreed_corner_colour(&colour, trim)? {
                Some(background) => {
                    let threshold = f64::from(trim.mean_difference_centi.unwrap_or(1100)) / 100.0;
                    find(&colour, &background, threshold.max(MIN_THRESHOLD))?
                }
                None => None,
            }
        }
    };
    Ok(found.filter(|found| *found != whole))
}

/// `image` without its alpha band.
fn colour_bands(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    let bands = image.get_bands();
    let colour_bands = if image.hasalpha() { bands - 1 } else { bands };
    image.extract_band_with_opts(0, VOption::new().set("n", colour_bands))
}

/// The box inside a border of alpha below `trim-alpha` (imgix's trim-alpha
/// page: "Detected alpha below the provided value will be trimmed"); 0,
/// which is also the value when trim-alpha is not given, trims what is
/// fully transparent.
fn alpha_box(image: &VipsImage, alpha_threshold_centi: u32) -> rs_vips::Result<Option<Box>> {
    let alpha = image.extract_band(image.get_bands() - 1)?;
    let below = (f64::from(alpha_threshold_centi) / 100.0).max(1.0);
    // find_trim keeps what differs from the background by more than the
    // threshold; alpha is whole numbers, so half a step under `below`
    // keeps alpha equal to it.
    find(&alpha, &[0.0], below - 0.5)
}

/// The box of `image` inside a border of `trim-color` (the top-left pixel of
/// `source` when not given), within `trim-tol`.
fn colour_box(image: &VipsImage, source: &VipsImage, trim: &Trim) -> rs_vips::Result<Option<Box>> {
    let colour = colour_bands(image)?;
    let bands = colour.get_bands();
    let background = match trim.color {
        Some(c) => {
            let [_, r, g, b] = c.argb.to_be_bytes();
            let rgb = [f64::from(r), f64::from(g), f64::from(b)];
            if bands == 1 {
                vec![0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]]
            } else {
                rgb[..bands as usize].to_vec()
            }
        }
        None => colour_bands(source)?.getpoint(0, 0)?,
    };
    let threshold = f64::from(trim.tolerance_centi) / 100.0;
    find(&colour, &background, threshold.max(MIN_THRESHOLD))
}

/// libvips' find_trim; `None` when nothing is left.
fn find(subject: &VipsImage, background: &[f64], threshold: f64) -> rs_vips::Result<Option<Box>> {
    let (left, top, width, height) = subject.find_trim_with_opts(
        VOption::new()
            .set("threshold", threshold)
            .set("background", background),
    )?;
    Ok((width > 0 && height > 0).then_some((left, top, width, height)))
}

/// The corners' average colour when they agree (mean difference within
/// `trim-md`, standard deviation within `trim-sd`).
fn agreed_corner_colour(image: &VipsImage, trim: &Trim) -> rs_vips::Result<Option<Vec<f64>>> {
    let (w, h) = (image.get_width() - 1, image.get_height() - 1);
    let corners = [
        image.getpoint(0, 0)?,
        image.getpoint(w, 0)?,
        image.getpoint(0, h)?,
        image.getpoint(w, h)?,
    ];
    let bands = corners[0].len();
    let mean: Vec<f64> = (0..bands)
        .map(|band| corners.iter().map(|c| c[band]).sum::<f64>() / 4.0)
        .collect();
    let distance = |c: &Vec<f64>| {
        c.iter()
            .zip(&mean)
            .map(|(v, m)| (v - m).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let differences: Vec<f64> = corners.iter().map(distance).collect();
    let mean_difference = differences.iter().sum::<f64>() / 4.0;
    let deviation = (differences
        .iter()
        .map(|d| (d - mean_difference).powi(2))
        .sum::<f64>()
        / 4.0)
        .sqrt();
    let max_mean = f64::from(trim.mean_difference_centi.unwrap_or(1100)) / 100.0;
    let max_deviation = f64::from(trim.standard_deviation_centi.unwrap_or(1000)) / 100.0;
    Ok((mean_difference <= max_mean && deviation <= max_deviation).then_some(mean))
}
