//! imgix's documentation, checked on real renders: every test quotes the
//! docs.imgix.com page it follows, and its expected values are written from
//! that text (sizes, formats, defaults, ranges), then read back from the
//! encoded bytes with libvips. The audit table in docs/rendering-api.md
//! names each test.

use imgmesh_imgix_params::{negotiate_format, parse_render_plan};
use imgmesh_proto::renderer::v1::{OutputFormat, RenderPlan};
use imgmesh_renderer::{Derivative, EncodedFormat, RenderInput, RenderLimits, render_image};
use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, Interpretation, OperationRelational};
use rs_vips::voption::{Setter as _, VOption};

mod adjust;
mod animation;
mod canvas;
mod format;
mod orientation;
mod overlays;
mod size;
mod trim;

// === originals ===

const RED: [f64; 3] = [255.0, 0.0, 0.0];
const GREEN: [f64; 3] = [0.0, 255.0, 0.0];
const BLUE: [f64; 3] = [0.0, 0.0, 255.0];
const WHITE: [f64; 3] = [255.0, 255.0, 255.0];

/// A flat `width × height` sRGB image of `rgb`.
fn flat(width: u32, height: u32, rgb: [f64; 3]) -> VipsImage {
    imgmesh_renderer::libvips::init().unwrap();
    let black = VipsImage::black(width as i32, height as i32)
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap();
    VipsImage::new_from_image(&black, &rgb)
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap()
}

/// A `width × height` image of four flat quadrants: red top left, green top
/// right, blue bottom left, white bottom right.
fn quadrants(width: u32, height: u32) -> VipsImage {
    let (w, h) = (width / 2, height / 2);
    let top = VipsImage::arrayjoin(&[flat(w, h, RED), flat(w, h, GREEN)]).unwrap();
    let bottom = VipsImage::arrayjoin(&[flat(w, h, BLUE), flat(w, h, WHITE)]).unwrap();
    VipsImage::arrayjoin_with_opts(&[top, bottom], VOption::new().set("across", 1))
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap()
}

/// A textured `width × height` image (noise, so encoders have work to do).
fn photo(width: u32, height: u32) -> VipsImage {
    imgmesh_renderer::libvips::init().unwrap();
    VipsImage::gaussnoise_with_opts(
        width as i32,
        height as i32,
        // A fixed seed: the same "photo" on every run, so a content-aware
        // crop cannot pass on one run's noise and fail on the next.
        VOption::new()
            .set("mean", 128.0)
            .set("sigma", 40.0)
            .set("seed", 7),
    )
    .unwrap()
    .linear(&[1.0, 0.8, 0.6], &[0.0, 20.0, 40.0])
    .unwrap()
    .cast(BandFormat::Uchar)
    .unwrap()
    .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
    .unwrap()
}

fn png(image: &VipsImage) -> Vec<u8> {
    image.pngsave_buffer().unwrap()
}

fn jpeg(image: &VipsImage) -> Vec<u8> {
    image.jpegsave_buffer().unwrap()
}

// === rendering and reading back ===

fn plan(query: &str) -> RenderPlan {
    parse_render_plan("", query, None)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .plan
}

/// The renderer's default limits, but time: these tests check what a render
/// makes, not how fast (an 8192-px output in a debug build on a loaded
/// machine can take longer than the production budget of 10 s).
fn limits() -> RenderLimits {
    RenderLimits {
        max_render: std::time::Duration::from_secs(300),
        ..RenderLimits::default()
    }
}

fn render(original: &[u8], query: &str) -> Derivative {
    let input = RenderInput {
        original,
        ..RenderInput::default()
    };
    render_image(&input, &plan(query), &limits()).unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn decode(data: &[u8]) -> VipsImage {
    VipsImage::new_from_buffer(data, "").expect("output decodes")
}

/// The decoded size of a render of `original` with `query`.
fn size(original: &[u8], query: &str) -> (u32, u32) {
    let image = decode(&render(original, query).data);
    (image.get_width() as u32, image.get_height() as u32)
}
/// The size a render of `original` with `query` reports (one frame).
fn rendered_size(original: &[u8], query: &str) -> (u32, u32) {
    let derivative = render(original, query);
    (derivative.width, derivative.height)
}

/// The RGB of the decoded output at (x, y).
fn rgb(data: &[u8], x: i32, y: i32) -> [f64; 3] {
    let point = decode(data).getpoint(x, y).unwrap();
    [point[0], point[1], point[2]]
}

#[track_caller]
fn assert_colour(actual: [f64; 3], expected: [f64; 3], what: &str) {
    let close = actual
        .iter()
        .zip(expected)
        .all(|(a, e)| (a - e).abs() <= 8.0);
    assert!(close, "{what}: {actual:?}, expected {expected:?}");
}

fn has_profile(image: &VipsImage) -> bool {
    image.get_typeof("icc-profile-data").unwrap() != 0
}

fn interlaced(data: &[u8]) -> bool {
    let image = decode(data);
    image.get_typeof("interlaced").unwrap() != 0 && image.get_int("interlaced").unwrap() == 1
}
