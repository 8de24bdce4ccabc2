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
//! - `trim=alpha`: the border is what is transparent, alpha at or below
//!   `trim-alpha`; `colorunlessalpha` does this for images with alpha and a
//!   colour trim otherwise.
//! - `trim-pad` adds (or, negative, removes) pixels around the result.

use imgmesh_proto::renderer::v1::{Trim, TrimMode};
use rs_vips::VipsImage;
use rs_vips::enums::Size;
use rs_vips::voption::{Setter as _, VOption};

use crate::geometry::Region;
use crate::source_image::{Header, orient};

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

/// The box (left, top, width, height) of `image` inside its borders.
fn trim_box(image: &VipsImage, trim: &Trim) -> rs_vips::Result<Option<(i32, i32, i32, i32)>> {
    let mode = match trim.mode() {
        TrimMode::ColorUnlessAlpha if image.hasalpha() => TrimMode::Alpha,
        TrimMode::ColorUnlessAlpha => TrimMode::Color,
        mode => mode,
    };
    let bands = image.get_bands();
    let colour_bands = if image.hasalpha() { bands - 1 } else { bands };
    let (subject, background, threshold) = match mode {
        TrimMode::Unspecified | TrimMode::ColorUnlessAlpha => return Ok(None),
        TrimMode::Alpha => {
            if !image.hasalpha() {
                return Ok(None);
            }
            let alpha = image.extract_band(bands - 1)?;
            let threshold = f64::from(trim.alpha_threshold_centi) / 100.0;
            (alpha, vec![0.0], threshold.max(MIN_THRESHOLD))
        }
        TrimMode::Color => {
            let colour = image.extract_band_with_opts(0, VOption::new().set("n", colour_bands))?;
            let background = match trim.color {
                Some(c) => {
                    let [_, r, g, b] = c.argb.to_be_bytes();
                    let rgb = [f64::from(r), f64::from(g), f64::from(b)];
                    if colour_bands == 1 {
                        vec![0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]]
                    } else {
                        rgb[..colour_bands as usize].to_vec()
                    }
                }
                None => colour.getpoint(0, 0)?,
            };
            let threshold = f64::from(trim.tolerance_centi) / 100.0;
            (colour, background, threshold.max(MIN_THRESHOLD))
        }
        TrimMode::Auto => {
            let colour = image.extract_band_with_opts(0, VOption::new().set("n", colour_bands))?;
            let Some(background) = agreed_corner_colour(&colour, trim)? else {
                return Ok(None);
            };
            let threshold = f64::from(trim.mean_difference_centi.unwrap_or(1100)) / 100.0;
            (colour, background, threshold.max(MIN_THRESHOLD))
        }
    };
    let (left, top, width, height) = subject.find_trim_with_opts(
        VOption::new()
            .set("threshold", threshold)
            .set("background", background.as_slice()),
    )?;
    let whole = (0, 0, image.get_width(), image.get_height());
    if width <= 0 || height <= 0 || (left, top, width, height) == whole {
        return Ok(None);
    }
    Ok(Some((left, top, width, height)))
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
