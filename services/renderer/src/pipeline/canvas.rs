//! Everything around the image itself: the canvas of `fit=fill`,
//! `fillmax` and `clamp`, `flip` and `rot`, padding, rounded corners,
//! borders and the `bg` colour.
//!
//! Areas the image does not cover (padding, fill without a colour, the
//! corners of a pivoted rotation, rounded corners) are transparent; `bg`,
//! applied afterwards, colours every transparent pixel, as imgix documents
//! ("fills in any transparent areas"). Without `bg` they stay transparent
//! in formats with alpha and turn white in JPEG.

use imgmesh_proto::renderer::v1::{Canvas, Corners, FillMode, Fit, Orientation, RotationType};
use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, BlendMode, Direction, Extend, Interpretation, Size};
use rs_vips::voption::{Setter as _, VOption};

use crate::pipeline::adjustments::adjust::gaussian_blur;
use crate::pipeline::adjustments::channels::{solid, srgb8, to_uchar, with_alpha};
use crate::pipeline::geometry::Padding;

/// Transparent black, as an RGBA background.
const TRANSPARENT: [f64; 4] = [0.0, 0.0, 0.0, 0.0];

/// Places the image in the centre of a `width × height` canvas for
/// `fit=fill` (solid `fill-color` or transparent, or `fill=blur`),
/// `fit=fillmax` (the same) and `fit=clamp` (edge pixels extended).
pub(crate) fn fit_canvas(
    image: &VipsImage,
    width: u32,
    height: u32,
    fit: Fit,
    canvas: Option<&Canvas>,
) -> rs_vips::Result<VipsImage> {
    let (width, height) = (width as i32, height as i32);
    let (image_width, image_height) = (image.get_width(), image.get_height());
    if (image_width, image_height) == (width, height) {
        return image.copy();
    }
    let left = (width - image_width) / 2;
    let top = (height - image_height) / 2;
    if fit == Fit::Clamp {
        return image.embed_with_opts(
            left,
            top,
            width,
            height,
            VOption::new().set("extend", Extend::Copy as i32),
        );
    }
    let image = srgb8(image)?;
    let fill = canvas.map(Canvas::fill).unwrap_or(FillMode::Unspecified);
    if fill == FillMode::Blur {
        // The image enlarged to cover the canvas, blurred, under the image.
        let cover = image.thumbnail_image_with_opts(
            width,
            VOption::new()
                .set("height", height)
                .set("size", Size::Force as i32),
        )?;
        let backdrop = gaussian_blur(&cover, f64::from(width.max(height)) / 40.0)?;
        return backdrop.composite2_with_opts(
            &image,
            BlendMode::Over,
            VOption::new().set("x", left).set("y", top),
        );
    }
    match canvas.and_then(|c| c.fill_color) {
        Some(colour) if colour.argb >> 24 == 0xFF && !image.hasalpha() => {
            let [_, r, g, b] = colour.argb.to_be_bytes();
            image.embed_with_opts(
                left,
                top,
                width,
                height,
                VOption::new().set("extend", Extend::Background as i32).set(
                    "background",
                    &[f64::from(r), f64::from(g), f64::from(b)][..],
                ),
            )
        }
        Some(colour) => {
            let backdrop = solid(width, height, colour.argb, true)?;
            backdrop.composite2_with_opts(
                &with_alpha(&image)?,
                BlendMode::Over,
                VOption::new().set("x", left).set("y", top),
            )
        }
        None => transparent_embed(&image, left, top, width, height),
    }
}

/// Applies `flip` and `rot`. `rot` turns counter-clockwise; the default
/// `rot-type=straighten` keeps the frame and zooms until no corner shows,
/// `pivot` grows the canvas to hold the whole turned image, with
/// transparent corners (coloured by `bg` later).
pub(crate) fn flip_and_rotate(
    image: &VipsImage,
    orientation: &Orientation,
) -> rs_vips::Result<VipsImage> {
    let mut image = image.copy()?;
    if orientation.flip_horizontal {
        image = image.flip(Direction::Horizontal)?;
    }
    if orientation.flip_vertical {
        image = image.flip(Direction::Vertical)?;
    }
    if orientation.rotation_centi_degrees == 0 {
        return Ok(image);
    }
    let degrees = f64::from(orientation.rotation_centi_degrees) / 100.0;
    let image = srgb8(&image)?;
    let had_alpha = image.hasalpha();
    // libvips turns clockwise for positive angles; imgix counter-clockwise.
    let turned = match orientation.rotation_centi_degrees {
        9_000 => image.rot(rs_vips::enums::Angle::D270)?,
        18_000 => image.rot(rs_vips::enums::Angle::D180)?,
        27_000 => image.rot(rs_vips::enums::Angle::D90)?,
        _ => with_alpha(&image)?
            .rotate_with_opts(-degrees, VOption::new().set("background", &TRANSPARENT[..]))?,
    };
    if orientation.rotation_type() == RotationType::Pivot {
        return Ok(turned);
    }
    // Straighten: the largest frame-shaped box inside the turned image,
    // enlarged back to the frame.
    let (width, height) = (f64::from(image.get_width()), f64::from(image.get_height()));
    let radians = degrees.to_radians();
    let (sin, cos) = (radians.sin().abs(), radians.cos().abs());
    let zoom = ((width * cos + height * sin) / width).max((width * sin + height * cos) / height);
    let (turned_width, turned_height) = (
        f64::from(turned.get_width()),
        f64::from(turned.get_height()),
    );
    let enlarged = turned.resize(zoom)?;
    let left = ((turned_width * zoom - width) / 2.0).round() as i32;
    let top = ((turned_height * zoom - height) / 2.0).round() as i32;
    let framed = crate::pipeline::load::source_image::extract_within(
        &enlarged,
        left,
        top,
        width as i32,
        height as i32,
    )?;
    if had_alpha || !framed.hasalpha() {
        return Ok(framed);
    }
    framed.extract_band_with_opts(0, VOption::new().set("n", framed.get_bands() - 1))
}

/// Adds transparent padding.
pub(crate) fn pad(image: &VipsImage, padding: Padding) -> rs_vips::Result<VipsImage> {
    if padding == Padding::default() {
        return image.copy();
    }
    let image = srgb8(image)?;
    let width = image.get_width() + (padding.left + padding.right) as i32;
    let height = image.get_height() + (padding.top + padding.bottom) as i32;
    transparent_embed(
        &image,
        padding.left as i32,
        padding.top as i32,
        width,
        height,
    )
}

/// Rounded corners and the border: the border (in its colour) is drawn
/// over the image's outer edge without resizing it (imgix: "The border
/// overlaps the image without resizing it"), the inner radii round the part
/// of the image inside it, and the outer radii round the result.
pub(crate) fn border_and_corners(image: &VipsImage, canvas: &Canvas) -> rs_vips::Result<VipsImage> {
    let mut image = srgb8(image)?;
    let had_alpha = image.hasalpha();
    if let Some(border) = canvas.border
        && let (Some(widths), Some(colour)) = (border.widths, border.color)
    {
        let (width, height) = (image.get_width(), image.get_height());
        let side = |value: u32, room: i32| i32::try_from(value).unwrap_or(i32::MAX).min(room);
        let left = side(widths.left, width);
        let right = side(widths.right, width - left);
        let top = side(widths.top, height);
        let bottom = side(widths.bottom, height - top);
        let (inner_width, inner_height) = (width - left - right, height - top - bottom);
        // The border's colour over the whole image (a translucent colour
        // lets the edge show through), then the inside put back.
        let frame = with_alpha(&image)?.composite2_with_opts(
            &solid(width, height, colour.argb, true)?,
            BlendMode::Over,
            VOption::new(),
        )?;
        image = if inner_width > 0 && inner_height > 0 {
            let mut inner = image.extract_area(left, top, inner_width, inner_height)?;
            if let Some(radii) = canvas.border_radius_inner {
                inner = round_corners(&inner, &radii)?;
            }
            frame.composite2_with_opts(
                &with_alpha(&inner)?,
                BlendMode::Over,
                VOption::new().set("x", left).set("y", top),
            )?
        } else {
            frame
        };
        if colour.argb >> 24 == 0xFF && !had_alpha && canvas.border_radius_inner.is_none() {
            image = image.extract_band_with_opts(0, VOption::new().set("n", 3))?;
        }
    }
    if let Some(outer) = canvas.border_radius {
        image = round_corners(&image, &outer)?;
    }
    Ok(image)
}

/// Makes the corners outside circles of the given radii transparent, with
/// anti-aliased edges.
fn round_corners(image: &VipsImage, radii: &Corners) -> rs_vips::Result<VipsImage> {
    let image = with_alpha(image)?;
    let (width, height) = (image.get_width(), image.get_height());
    let limit = width.min(height) / 2;
    let mut mask = VipsImage::black(width, height)?
        .linear(&[1.0], &[255.0])?
        .cast(BandFormat::Uchar)?;
    let corners = [
        (radii.top_left, false, false),
        (radii.top_right, true, false),
        (radii.bottom_right, true, true),
        (radii.bottom_left, false, true),
    ];
    for (radius, right, bottom) in corners {
        let radius = (radius as i32).min(limit);
        if radius <= 0 {
            continue;
        }
        let mut corner = corner_mask(radius)?;
        if right {
            corner = corner.flip(Direction::Horizontal)?;
        }
        if bottom {
            corner = corner.flip(Direction::Vertical)?;
        }
        let x = if right { width - radius } else { 0 };
        let y = if bottom { height - radius } else { 0 };
        mask = mask.insert(&corner, x, y)?;
    }
    let bands = image.get_bands();
    let colour = image.extract_band_with_opts(0, VOption::new().set("n", bands - 1))?;
    let alpha = image
        .extract_band(bands - 1)?
        .multiply(&mask)?
        .linear(&[1.0 / 255.0], &[0.0])?;
    VipsImage::bandjoin(&[colour, to_uchar(&alpha)?])?
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
}

/// A `radius × radius` top-left corner: 255 inside the quarter circle
/// centred on its bottom-right corner, 0 outside, blended over one pixel.
fn corner_mask(radius: i32) -> rs_vips::Result<VipsImage> {
    let r = f64::from(radius);
    let xy = VipsImage::xyz(radius, radius)?.cast(BandFormat::Float)?;
    // Distance of each pixel centre from (r, r).
    let offsets = xy.linear(&[1.0, 1.0], &[0.5 - r, 0.5 - r])?;
    let squared = offsets.multiply(&offsets)?;
    let distance = squared
        .extract_band(0)?
        .add(&squared.extract_band(1)?)?
        .math2_const(rs_vips::enums::OperationMath2::Pow, &[0.5])?;
    // Coverage r + 0.5 − d, clipped to 0..1.
    let coverage = distance.linear(&[-255.0], &[255.0 * (r + 0.5)])?;
    to_uchar(&clip_255(&coverage)?)
}

/// Clips to 0..=255.
fn clip_255(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    let low = image.add(&image.abs()?)?.linear(&[0.5], &[0.0])?;
    let over = low.linear(&[-1.0], &[255.0])?;
    let over = over.add(&over.abs()?)?.linear(&[0.5], &[0.0])?;
    over.linear(&[-1.0], &[255.0])
}

/// Composites the image over `bg`: an opaque colour flattens it (dropping
/// alpha), a translucent one sits under it.
pub(crate) fn background(image: &VipsImage, argb: u32) -> rs_vips::Result<VipsImage> {
    let image = srgb8(image)?;
    if !image.hasalpha() {
        return Ok(image);
    }
    let [a, r, g, b] = argb.to_be_bytes();
    if a == 0xFF {
        let flat = image.flatten_with_opts(VOption::new().set(
            "background",
            &[f64::from(r), f64::from(g), f64::from(b)][..],
        ))?;
        return srgb8(&flat);
    }
    let backdrop = solid(image.get_width(), image.get_height(), argb, true)?;
    backdrop.composite2_with_opts(&image, BlendMode::Over, VOption::new())
}

/// `image` inside a `width × height` transparent canvas at (`left`, `top`).
fn transparent_embed(
    image: &VipsImage,
    left: i32,
    top: i32,
    width: i32,
    height: i32,
) -> rs_vips::Result<VipsImage> {
    with_alpha(image)?.embed_with_opts(
        left,
        top,
        width,
        height,
        VOption::new()
            .set("extend", Extend::Background as i32)
            .set("background", &TRANSPARENT[..]),
    )
}
