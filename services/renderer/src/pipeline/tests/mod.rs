//! Tests of the whole render pipeline on generated images: every parameter
//! is checked on decoded pixels or decoded files, so a parameter that did
//! nothing (or the wrong thing) fails.

use std::time::{Duration, Instant};

use imgmesh_imgix_params::parse_render_plan;
use rs_vips::VipsImage;
use rs_vips::voption::{Setter as _, VOption};

use super::*;
use crate::pipeline::limits::{DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS};
use crate::test_images;

mod adjustments;
mod animation;
mod bad_input;
mod canvas;
mod encoding;
mod limits;
mod orientation;
mod overlays;
mod sizing;

fn plan(query: &str) -> RenderPlan {
    parse_render_plan("", query, None)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .plan
}

fn resolved(query: &str) -> ResolvedPlan {
    ResolvedPlan::resolve(&plan(query)).unwrap()
}

fn try_render(original: &[u8], query: &str) -> Result<Derivative, RenderError> {
    let input = RenderInput {
        original,
        ..RenderInput::default()
    };
    render_image(&input, &plan(query), &RenderLimits::default())
}

fn render(original: &[u8], query: &str) -> Derivative {
    try_render(original, query).unwrap_or_else(|e| panic!("{query}: {e}"))
}
/// The size a render of `original` with `query` reports (one frame).
fn rendered_size(original: &[u8], query: &str) -> (u32, u32) {
    let derivative = render(original, query);
    (derivative.width, derivative.height)
}

fn render_with(input: RenderInput<'_>, query: &str) -> Derivative {
    render_image(&input, &plan(query), &RenderLimits::default())
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn decode(data: &[u8]) -> VipsImage {
    VipsImage::new_from_buffer(data, "").expect("output decodes")
}

fn decoded_size(data: &[u8]) -> (u32, u32) {
    let image = decode(data);
    (image.get_width() as u32, image.get_height() as u32)
}

/// The pixel at (x, y) of the decoded output.
fn pixel(data: &[u8], x: i32, y: i32) -> Vec<f64> {
    decode(data).getpoint(x, y).unwrap()
}

/// Asserts every band of `actual` is within `tolerance` of `expected`.
#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: bands of {actual:?} vs {expected:?}"
    );
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() <= tolerance,
            "{what}: {actual:?} vs {expected:?}"
        );
    }
}

/// Mean of band `band` of the decoded output.
fn band_mean(data: &[u8], band: i32) -> f64 {
    decode(data).extract_band(band).unwrap().avg().unwrap()
}

/// Standard deviation of the decoded output's first band.
fn deviation(data: &[u8]) -> f64 {
    decode(data).extract_band(0).unwrap().deviate().unwrap()
}

fn png_quadrants() -> Vec<u8> {
    test_images::png_of(&test_images::quadrants(200, 100))
}

const RED: [f64; 3] = [255.0, 0.0, 0.0];
const GREEN: [f64; 3] = [0.0, 255.0, 0.0];
const BLUE: [f64; 3] = [0.0, 0.0, 255.0];
const WHITE: [f64; 3] = [255.0, 255.0, 255.0];

/// `imgmesh_renders_stopped_total{reason}` in the process registry.
fn stopped_renders(reason: &str) -> f64 {
    imgmesh_metrics::series_value(&format!(
        "imgmesh_renders_stopped_total{{reason=\"{reason}\"}}"
    ))
    .unwrap_or(0.0)
}

/// Every page of an animated output, decoded.
fn decode_all(data: &[u8]) -> VipsImage {
    VipsImage::new_from_buffer(data, "n=-1").expect("output decodes")
}

fn input(original: &[u8]) -> RenderInput<'_> {
    RenderInput {
        original,
        ..RenderInput::default()
    }
}
