//! Tests of the whole render pipeline on generated images: every parameter
//! is checked on decoded pixels or decoded files, so a parameter that did
//! nothing (or the wrong thing) fails.

use std::time::{Duration, Instant};

use imgmesh_imgix_params::parse_render_plan;
use rs_vips::VipsImage;
use rs_vips::voption::{Setter as _, VOption};

use super::*;
use crate::test_images;

fn plan(query: &str) -> RenderPlan {
    parse_render_plan("", query, None)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .plan
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

// --- Size, fit, crop ---

/// Each fit mode gives imgix's output size on real renders, decoded from the bytes.
#[test]
fn fit_modes_give_imgix_sizes() {
    let original = test_images::jpeg(400, 300);
    let cases = [
        ("w=200", (200, 150)),
        ("h=150", (200, 150)),
        ("", (400, 300)),
        ("w=200&h=200", (200, 150)),
        ("w=200&h=200&fit=crop", (200, 200)),
        ("w=800&fit=max", (400, 300)),
        ("w=800", (800, 600)),
        ("w=100&h=300&fit=scale", (100, 300)),
        ("w=100&dpr=2", (200, 150)),
        ("w=0.5", (200, 150)),
        ("fit=min&w=800&h=800", (300, 300)),
        ("fit=fill&w=300&h=300", (300, 300)),
        ("fit=fillmax&w=800&h=800", (800, 800)),
        ("fit=clamp&w=300&h=400", (300, 400)),
        ("fit=crop&w=320&ar=16:9", (320, 180)),
        ("fit=crop&w=500&h=500&max-w=300&max-h=200", (300, 200)),
        ("rect=0,0,100,50", (100, 50)),
        ("pad=10", (420, 320)),
    ];
    for (query, expected) in cases {
        let derivative = render(&original, query);
        assert_eq!((derivative.width, derivative.height), expected, "{query}");
        assert_eq!(decoded_size(&derivative.data), expected, "{query}");
    }
}

/// A width beyond the output limit is clamped to 8192 pixels.
#[test]
fn output_is_clamped_to_8192() {
    let original = test_images::jpeg(400, 300);
    let derivative = render(&original, "w=9000");
    assert_eq!((derivative.width, derivative.height), (8192, 6144));
}

/// `crop=left` keeps the source's left part: the red and blue quadrants, nothing of green.
#[test]
fn crop_edges_keep_the_named_part() {
    let original = png_quadrants();
    let left = render(&original, "fit=crop&w=50&h=50&crop=left&fm=png");
    assert_close(&pixel(&left.data, 10, 5), &RED, 2.0, "top left stays red");
    assert_close(
        &pixel(&left.data, 40, 5),
        &RED,
        2.0,
        "right edge of a left crop is still red",
    );
    assert_close(
        &pixel(&left.data, 10, 45),
        &BLUE,
        2.0,
        "bottom left is blue",
    );
    let right = render(&original, "fit=crop&w=50&h=50&crop=right&fm=png");
    assert_close(
        &pixel(&right.data, 10, 5),
        &GREEN,
        2.0,
        "a right crop starts in green",
    );
    let top = render(&original, "fit=crop&w=200&h=50&crop=top&fm=png");
    assert_close(
        &pixel(&top.data, 10, 40),
        &RED,
        2.0,
        "a top crop keeps the top row",
    );
    let bottom = render(&original, "fit=crop&w=200&h=50&crop=bottom&fm=png");
    assert_close(
        &pixel(&bottom.data, 10, 10),
        &BLUE,
        2.0,
        "a bottom crop keeps the bottom row",
    );
}

/// `crop=focalpoint` centres the crop on the focal point; `rect` cuts exactly its region.
#[test]
fn focal_point_and_rect_pick_regions() {
    let original = png_quadrants();
    let bottom_right = render(
        &original,
        "fit=crop&w=40&h=40&crop=focalpoint&fp-x=0.9&fp-y=0.9&fp-z=2&fm=png",
    );
    assert_close(
        &pixel(&bottom_right.data, 20, 20),
        &WHITE,
        2.0,
        "focal point in the white quadrant",
    );
    let green = render(&original, "rect=110,10,80,30&fm=png");
    assert_eq!((green.width, green.height), (80, 30));
    assert_close(
        &pixel(&green.data, 0, 0),
        &GREEN,
        2.0,
        "rect inside the green quadrant",
    );
    assert_close(
        &pixel(&green.data, 79, 29),
        &GREEN,
        2.0,
        "rect inside the green quadrant",
    );
}

/// A tiny region blown up far (past the whole-image thumbnail's limit) is cut first, then resized.
#[test]
fn tiny_regions_upscale_from_a_full_decode() {
    let original = png_quadrants();
    for (query, colour) in [
        ("rect=140,60,2,2&w=400&fm=png", WHITE),
        ("rect=10,10,2,2&w=400&fm=png", RED),
    ] {
        let derivative = render(&original, query);
        assert_eq!((derivative.width, derivative.height), (400, 400), "{query}");
        assert_close(&pixel(&derivative.data, 200, 200), &colour, 2.0, query);
    }
    // The same region through a JPEG with EXIF orientation comes out upright.
    let oriented = test_images::jpeg_stored_for_orientation(&test_images::quadrants(200, 100), 6);
    let derivative = render(&oriented, "rect=140,60,2,2&w=400&fm=png");
    assert_close(&pixel(&derivative.data, 200, 200), &WHITE, 12.0, "oriented");
}

/// Content-aware crops give the box and pick the busy part of the image.
#[test]
fn content_aware_crops() {
    // Flat grey on the left, noise on the right: entropy keeps the noise.
    crate::libvips::init().unwrap();
    let flat = VipsImage::black(200, 200)
        .unwrap()
        .linear(&[1.0], &[128.0])
        .unwrap();
    let flat = VipsImage::bandjoin(&[flat.copy().unwrap(), flat.copy().unwrap(), flat])
        .unwrap()
        .cast(rs_vips::enums::BandFormat::Uchar)
        .unwrap();
    let noisy = test_images::photo(200, 200);
    let original = test_images::png_of(&VipsImage::arrayjoin(&[flat, noisy]).unwrap());
    let cropped = render(&original, "fit=crop&w=100&h=100&crop=entropy&fm=png");
    assert_eq!(decoded_size(&cropped.data), (100, 100));
    assert!(
        deviation(&cropped.data) > 10.0,
        "entropy crop kept the flat half"
    );
    for strategy in ["edges", "faces"] {
        let cropped = render(
            &original,
            &format!("fit=crop&w=100&h=100&crop={strategy}&fm=png"),
        );
        assert_eq!(decoded_size(&cropped.data), (100, 100), "{strategy}");
    }
}

/// `fit=fill` pads with fill-color (or transparent, coloured by bg); `fit=clamp` extends the edges.
#[test]
fn fill_and_clamp_canvases() {
    let original = png_quadrants();
    let filled = render(&original, "fit=fill&w=200&h=200&fill-color=ff00ff&fm=png");
    assert_eq!(decoded_size(&filled.data), (200, 200));
    assert_close(
        &pixel(&filled.data, 100, 5)[..3],
        &[255.0, 0.0, 255.0],
        1.0,
        "fill colour above the image",
    );
    assert_close(
        &pixel(&filled.data, 10, 60)[..3],
        &RED,
        1.0,
        "image in the middle",
    );
    let transparent = render(&original, "fit=fill&w=200&h=200&fm=png");
    assert_eq!(
        pixel(&transparent.data, 100, 5)[3],
        0.0,
        "no fill colour: transparent"
    );
    let with_bg = render(&original, "fit=fill&w=200&h=200&bg=00ff00&fm=png");
    assert_close(
        &pixel(&with_bg.data, 100, 5),
        &GREEN,
        1.0,
        "bg colours the padding",
    );
    let jpeg = render(&original, "fit=fill&w=200&h=200&fm=jpg");
    assert_close(
        &pixel(&jpeg.data, 100, 5),
        &WHITE,
        3.0,
        "JPEG without bg pads white",
    );
    let clamped = render(&original, "fit=clamp&w=200&h=200&fm=png");
    assert_close(
        &pixel(&clamped.data, 10, 2),
        &RED,
        1.0,
        "clamp repeats the top edge",
    );
    assert_close(
        &pixel(&clamped.data, 190, 197),
        &WHITE,
        1.0,
        "clamp repeats the bottom edge",
    );
    let fillmax = render(&original, "fit=fillmax&w=400&h=400&bg=000&fm=png");
    assert_eq!(decoded_size(&fillmax.data), (400, 400));
    assert_close(
        &pixel(&fillmax.data, 150, 170)[..3],
        &RED,
        1.0,
        "fillmax keeps the image at its size, centred",
    );
    assert_close(
        &pixel(&fillmax.data, 99, 200)[..3],
        &[0.0, 0.0, 0.0],
        1.0,
        "left of the 200 px image is bg",
    );
    let blurred = render(&original, "fit=fill&fill=blur&w=200&h=200&fm=png");
    assert_eq!(decoded_size(&blurred.data), (200, 200));
    assert!(
        pixel(&blurred.data, 100, 5)
            .iter()
            .take(3)
            .any(|v| *v > 20.0),
        "blur fill is not empty"
    );
}

// --- Formats and encoding ---

/// Every output format is what was asked for: magic bytes, content type, and it decodes.
#[test]
fn every_output_format_decodes() {
    let original = test_images::jpeg(400, 300);
    type HasMagic = fn(&[u8]) -> bool;
    let cases: [(&str, EncodedFormat, HasMagic); 8] = [
        ("fm=jpg", EncodedFormat::Jpeg, |d| {
            d.starts_with(&[0xFF, 0xD8, 0xFF])
        }),
        ("fm=pjpg", EncodedFormat::Jpeg, |d| {
            d.starts_with(&[0xFF, 0xD8, 0xFF])
        }),
        ("fm=png", EncodedFormat::Png, |d| {
            d.starts_with(b"\x89PNG\r\n\x1a\n")
        }),
        ("fm=png8", EncodedFormat::Png, |d| {
            d.starts_with(b"\x89PNG\r\n\x1a\n") && d[25] == 3
        }),
        ("fm=png32", EncodedFormat::Png, |d| {
            d.starts_with(b"\x89PNG\r\n\x1a\n") && d[25] == 6
        }),
        ("fm=webp", EncodedFormat::Webp, |d| {
            d.starts_with(b"RIFF") && &d[8..12] == b"WEBP"
        }),
        ("fm=avif", EncodedFormat::Avif, |d| {
            &d[4..8] == b"ftyp" && &d[8..12] == b"avif"
        }),
        ("fm=gif", EncodedFormat::Gif, |d| d.starts_with(b"GIF8")),
    ];
    for (query, expected, has_magic) in cases {
        let derivative = render(&original, &format!("{query}&w=120"));
        assert_eq!(derivative.format, expected, "{query}");
        assert!(has_magic(&derivative.data), "{query} magic");
        assert_eq!(decoded_size(&derivative.data), (120, 90), "{query}");
    }
}

/// JPEGs are progressive unless `jpg-progressive=false` (imgix's default is true), and pjpg always.
#[test]
fn progressive_jpeg() {
    let original = test_images::jpeg(200, 150);
    let interlaced = |query: &str| {
        let image = decode(&render(&original, query).data);
        image.get_typeof("interlaced").unwrap() != 0 && image.get_int("interlaced").unwrap() == 1
    };
    assert!(interlaced("fm=pjpg"));
    assert!(interlaced("fm=jpg&jpg-progressive=true"));
    assert!(interlaced("fm=jpg"));
    assert!(interlaced("w=100"), "a JPEG input with no fm");
    assert!(!interlaced("fm=jpg&jpg-progressive=false"));
    assert!(interlaced("fm=pjpg&jpg-progressive=false"));
}

/// chromasub=444 keeps full chroma; the default is 4:2:0.
#[test]
fn chroma_subsampling() {
    let original = test_images::jpeg(200, 150);
    let subsampling = |query: &str| {
        decode(&render(&original, query).data)
            .get_string("jpeg-chroma-subsample")
            .unwrap()
    };
    assert_eq!(subsampling("fm=jpg&q=95"), "4:2:0");
    assert_eq!(subsampling("fm=jpg&chromasub=444"), "4:4:4");
}

/// lossless WebP round-trips pixels exactly; lossy does not.
#[test]
fn lossless_webp() {
    let original = test_images::png(64, 48);
    let source = decode(&original);
    let lossless = decode(&render(&original, "fm=webp&lossless=true").data);
    assert_eq!(
        source
            .subtract(&lossless)
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap(),
        0.0
    );
    let lossy = decode(&render(&original, "fm=webp&q=20").data);
    assert!(
        source
            .subtract(&lossy)
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap()
            > 0.0
    );
}

/// Without a format, each input keeps its family (GIF stays GIF, HEIF/AVIF → AVIF).
#[test]
fn unspecified_format_keeps_the_family() {
    let cases = [
        (test_images::jpeg(64, 48), EncodedFormat::Jpeg),
        (test_images::png(64, 48), EncodedFormat::Png),
        (test_images::webp(64, 48), EncodedFormat::Webp),
        (test_images::animated_gif(64, 48, 3), EncodedFormat::Gif),
        (test_images::avif(64, 48), EncodedFormat::Avif),
    ];
    for (original, family) in cases {
        let derivative = render(&original, "w=32");
        assert_eq!(derivative.format, family);
        assert_eq!(
            (derivative.width, derivative.height),
            (32, 24),
            "{family:?}"
        );
        assert_eq!(decoded_size(&derivative.data), (32, 24), "{family:?}");
    }
}

/// auto=compress without a format: PNG8 for images with alpha, JPEG otherwise, at q=45.
#[test]
fn auto_compress_fallbacks() {
    let opaque = render(&test_images::png(64, 48), "auto=compress");
    assert_eq!(opaque.format, EncodedFormat::Jpeg);
    let transparent = render(&test_images::transparent_png(64, 48), "auto=compress");
    assert_eq!(transparent.format, EncodedFormat::Png);
    assert_eq!(transparent.data[25], 3, "palette PNG");
    let q45 = render(&test_images::jpeg(300, 200), "fm=jpg&auto=compress");
    let q75 = render(&test_images::jpeg(300, 200), "fm=jpg");
    assert!(q45.data.len() < q75.data.len());
}

/// A lower quality gives a smaller file, for JPEG, WebP and AVIF.
#[test]
fn quality_changes_size() {
    let original = test_images::jpeg(400, 300);
    for format in ["jpg", "webp", "avif"] {
        let at = |q: u32| {
            render(&original, &format!("w=300&fm={format}&q={q}"))
                .data
                .len()
        };
        let (low, high) = (at(20), at(95));
        assert!(low < high, "{format}: q=20 {low} bytes, q=95 {high} bytes");
    }
}

/// fm=json describes the source, field by field.
#[test]
fn json_document() {
    let mut image = test_images::photo(64, 48);
    image.set_int("orientation", 6).unwrap();
    let original = image.jpegsave_buffer().unwrap();
    let derivative = render(&original, "fm=json&w=10&blur=50");
    assert_eq!(derivative.format, EncodedFormat::Json);
    let document: serde_json::Value = serde_json::from_slice(&derivative.data).unwrap();
    assert_eq!(document["Content-Type"], "image/jpeg");
    assert_eq!(document["Content-Length"], original.len().to_string());
    assert_eq!(document["PixelWidth"], 64);
    assert_eq!(document["PixelHeight"], 48);
    assert_eq!(document["Orientation"], 6);
    assert_eq!(document["ColorModel"], "RGB");
    assert_eq!(document["Depth"], 8);
    assert_eq!(document["HasAlpha"], false);
    assert_eq!(document["TIFF"]["Orientation"], 6);
    assert_eq!(document["JFIF"]["IsProgressive"], false);
    assert!(document["DPIWidth"].is_number());
    let gif: serde_json::Value =
        serde_json::from_slice(&render(&test_images::animated_gif(10, 10, 3), "fm=json").data)
            .unwrap();
    assert_eq!(
        (gif["Content-Type"].as_str(), gif["Frames"].as_i64()),
        (Some("image/gif"), Some(3))
    );
    let grey = test_images::png_of(
        &test_images::photo(8, 8)
            .colourspace(rs_vips::enums::Interpretation::BW)
            .unwrap(),
    );
    let grey: serde_json::Value = serde_json::from_slice(&render(&grey, "fm=json").data).unwrap();
    assert_eq!(grey["ColorModel"], "Gray");
}

/// fm=blurhash returns a 28-character base-83 hash of the rendered image.
#[test]
fn blurhash_output() {
    let derivative = render(&png_quadrants(), "fm=blurhash&w=100");
    assert_eq!(derivative.format, EncodedFormat::Blurhash);
    let hash = String::from_utf8(derivative.data).unwrap();
    assert_eq!(hash.len(), 28, "{hash}");
    assert!(hash.starts_with('L'), "4×3 components: {hash}");
    let other =
        String::from_utf8(render(&test_images::jpeg(200, 100), "fm=blurhash").data).unwrap();
    assert_ne!(hash, other);
}

/// An embedded ICC profile is kept by default and with cs=origin, converted to sRGB and stripped by cs=strip and auto=compress; cs=srgb embeds sRGB's.
#[test]
fn colour_profiles() {
    let with_profile = test_images::photo(64, 48)
        .icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))
        .unwrap();
    assert!(with_profile.get_typeof("icc-profile-data").unwrap() != 0);
    let original = with_profile.jpegsave_buffer().unwrap();
    let kept = decode(&render(&original, "w=32").data);
    assert!(kept.get_typeof("icc-profile-data").unwrap() != 0);
    for query in ["w=32&cs=strip", "w=32&auto=compress"] {
        let stripped = decode(&render(&original, query).data);
        assert_eq!(
            stripped.get_typeof("icc-profile-data").unwrap(),
            0,
            "{query}"
        );
    }
    let srgb = decode(&render(&original, "w=32&cs=srgb").data);
    assert!(srgb.get_typeof("icc-profile-data").unwrap() != 0);
    let origin = decode(&render(&original, "w=32&cs=origin").data);
    assert!(origin.get_typeof("icc-profile-data").unwrap() != 0);
    // A source without a profile gets sRGB's with cs=srgb, none with cs=origin.
    let plain = test_images::jpeg(64, 48);
    for format in ["jpg", "png", "webp"] {
        let tagged = decode(&render(&plain, &format!("w=32&cs=srgb&fm={format}")).data);
        assert!(
            tagged.get_typeof("icc-profile-data").unwrap() != 0,
            "{format}"
        );
    }
    let untagged = decode(&render(&plain, "w=32&cs=origin").data);
    assert_eq!(untagged.get_typeof("icc-profile-data").unwrap(), 0);
}

/// CMYK JPEGs come out as sRGB with the right colour.
#[test]
fn cmyk_is_converted() {
    // Pure cyan ink.
    let original = test_images::cmyk_jpeg(32, 32, [255.0, 0.0, 0.0, 0.0]);
    let derivative = render(&original, "fm=png");
    let image = decode(&derivative.data);
    assert_eq!(image.get_bands(), 3);
    let p = image.getpoint(16, 16).unwrap();
    assert!(
        p[0] < 120.0 && p[1] > 120.0 && p[2] > 180.0,
        "cyan-ish, got {p:?}"
    );
}

/// Metadata (EXIF) is stripped by default.
#[test]
fn metadata_is_stripped() {
    let original = test_images::jpeg_with_orientation(64, 48, 1);
    let image = decode(&render(&original, "w=32").data);
    assert_eq!(image.get_typeof("exif-data").unwrap(), 0);
}

/// A transparent PNG rendered as JPEG is flattened onto white.
#[test]
fn alpha_is_flattened_onto_white_for_jpeg() {
    let original = test_images::transparent_png(64, 64);
    let image = decode(&render(&original, "w=32&fm=jpg").data);
    assert_eq!(image.get_bands(), 3);
    assert!(
        image.avg().unwrap() > 250.0,
        "mean {}",
        image.avg().unwrap()
    );
}

// --- Orientation ---

/// EXIF orientations 1–8 all come out upright, matching libvips' own autorotate.
#[test]
fn exif_orientations_come_out_upright() {
    let upright = test_images::quadrants(80, 40);
    for orientation in 1..=8 {
        let original = test_images::jpeg_stored_for_orientation(&upright, orientation);
        let derivative = render(&original, "fm=png");
        assert_eq!(
            (derivative.width, derivative.height),
            (80, 40),
            "orientation {orientation}"
        );
        for (x, y, colour) in [
            (10, 10, RED),
            (70, 10, GREEN),
            (10, 30, BLUE),
            (70, 30, WHITE),
        ] {
            assert_close(
                &pixel(&derivative.data, x, y),
                &colour,
                12.0,
                &format!("orientation {orientation} at ({x}, {y})"),
            );
        }
        // libvips' autorot agrees with the fixture.
        let autorotated = decode(&original).autorot().unwrap();
        assert_close(
            &autorotated.getpoint(70, 10).unwrap(),
            &GREEN,
            12.0,
            &format!("autorot {orientation}"),
        );
        let resized = render(&original, "w=40&fm=png");
        assert_eq!(
            (resized.width, resized.height),
            (40, 20),
            "orientation {orientation} resized"
        );
    }
}

/// `orient` overrides the file's orientation; its degree aliases turn the frame.
#[test]
fn orient_overrides_exif() {
    let upright = test_images::quadrants(80, 40);
    let tagged = test_images::jpeg_stored_for_orientation(&upright, 6);
    // orient=1 ignores the tag: the stored (turned) pixels come out as they are.
    let ignored = render(&tagged, "orient=1&fm=png");
    assert_eq!((ignored.width, ignored.height), (40, 80));
    let plain = test_images::png_of(&upright);
    let turned = render(&plain, "or=90&fm=png");
    assert_eq!((turned.width, turned.height), (40, 80));
    // EXIF 6 turns clockwise: the top-left red ends up top right.
    assert_close(&pixel(&turned.data, 30, 10), &RED, 2.0, "or=90");
    let flipped = render(&plain, "orient=2&fm=png");
    assert_close(
        &pixel(&flipped.data, 10, 10),
        &GREEN,
        2.0,
        "orient=2 mirrors",
    );
}

/// flip=h, v and hv mirror the image.
#[test]
fn flips() {
    let original = png_quadrants();
    let cases = [("h", GREEN), ("v", BLUE), ("hv", WHITE)];
    for (flip, top_left) in cases {
        let flipped = render(&original, &format!("flip={flip}&fm=png"));
        assert_close(&pixel(&flipped.data, 10, 10), &top_left, 1.0, flip);
    }
}

/// rot turns counter-clockwise; pivot shows the whole image (rot=90 swaps axes) and fills a tilt's corners with bg; straighten (the default) keeps the frame at every angle.
#[test]
fn rotation() {
    let original = png_quadrants();
    let pivot = render(&original, "rot=90&rot-type=pivot&fm=png");
    assert_eq!(
        (pivot.width, pivot.height),
        (100, 200),
        "rot=90 pivot swaps axes"
    );
    // Counter-clockwise: top-left red goes to the bottom left.
    assert_close(&pixel(&pivot.data, 10, 190), &RED, 1.0, "ccw");
    let straight = render(&original, "rot=90&fm=png");
    assert_eq!(
        (straight.width, straight.height),
        (200, 100),
        "rot=90 keeps the frame by default"
    );
    let tilted = render(&original, "rot=30&rot-type=pivot&bg=ff00ff&fm=png");
    assert!(tilted.width > 200 && tilted.height > 100);
    assert_close(
        &pixel(&tilted.data, 1, 1),
        &[255.0, 0.0, 255.0],
        1.0,
        "corner takes bg",
    );
    let straightened = render(&original, "rot=30&bg=ff00ff&fm=png");
    assert_eq!((straightened.width, straightened.height), (200, 100));
    let corner = pixel(&straightened.data, 1, 1);
    assert!(
        !(corner[0] > 200.0 && corner[1] < 50.0 && corner[2] > 200.0),
        "straighten shows no bg: {corner:?}"
    );
}

// --- Adjustments and stylize ---

/// Each tone adjustment moves the image the documented way; 0 is neutral.
#[test]
fn tone_adjustments() {
    let original = test_images::png_of(&test_images::ramp(256, 8));
    let mean = |query: &str| band_mean(&render(&original, &format!("{query}&fm=png")).data, 0);
    let base = mean("");
    assert!(mean("bri=50") > base + 20.0, "bri brightens");
    assert!(mean("bri=-50") < base - 20.0, "negative bri darkens");
    assert!(mean("exp=50") > base + 20.0, "exp brightens");
    assert!(mean("gam=50") > base + 5.0, "gam lifts midtones");
    assert!(
        mean("gam=-50") < base - 5.0,
        "negative gam darkens midtones"
    );
    let dev = |query: &str| deviation(&render(&original, &format!("{query}&fm=png")).data);
    let base_dev = dev("");
    assert!(dev("con=50") > base_dev + 5.0, "con spreads tones");
    assert!(dev("con=-50") < base_dev - 5.0, "negative con flattens");
    // high lowers the bright end only, shad raises the dark end only.
    let at =
        |query: &str, x: i32| pixel(&render(&original, &format!("{query}&fm=png")).data, x, 4)[0];
    assert!(
        at("high=-100", 250) < at("", 250) - 20.0,
        "high darkens highlights"
    );
    assert!(
        (at("high=-100", 20) - at("", 20)).abs() <= 1.0,
        "high leaves shadows"
    );
    assert!(at("shad=100", 10) > at("", 10) + 20.0, "shad lifts shadows");
    assert!(
        (at("shad=100", 240) - at("", 240)).abs() <= 1.0,
        "shad leaves highlights"
    );
}

/// sat, vib and hue change colour; sat=-100 is greyscale.
#[test]
fn colour_adjustments() {
    let original = test_images::png(64, 48);
    let grey = decode(&render(&original, "sat=-100&fm=png").data);
    let spread = grey
        .extract_band(0)
        .unwrap()
        .subtract(&grey.extract_band(2).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max()
        .unwrap();
    assert!(spread <= 3.0, "sat=-100 leaves R≈B, spread {spread}");
    let chroma = |query: &str| {
        let image = decode(&render(&original, &format!("{query}&fm=png")).data);
        image
            .colourspace(rs_vips::enums::Interpretation::Lch)
            .unwrap()
            .extract_band(1)
            .unwrap()
            .avg()
            .unwrap()
    };
    let base = chroma("");
    assert!(chroma("sat=80") > base * 1.3, "sat raises chroma");
    assert!(chroma("vib=80") > base * 1.2, "vib raises chroma");
    let red = test_images::png_of(
        &test_images::quadrants(20, 20)
            .extract_area(0, 0, 10, 10)
            .unwrap(),
    );
    let shifted = pixel(&render(&red, "hue=120&fm=png").data, 5, 5);
    assert!(
        shifted[1] > shifted[0],
        "hue=120 turns red towards green: {shifted:?}"
    );
}

/// invert inverts every channel.
#[test]
fn invert_inverts() {
    let original = png_quadrants();
    let inverted = render(&original, "invert=true&fm=png");
    assert_close(
        &pixel(&inverted.data, 10, 10),
        &[0.0, 255.0, 255.0],
        1.0,
        "red → cyan",
    );
    assert_close(
        &pixel(&inverted.data, 190, 90),
        &[0.0, 0.0, 0.0],
        1.0,
        "white → black",
    );
}

/// mono with a neutral colour gives R = G = B; sepia warms; duotone maps black and white to its colours.
#[test]
fn stylize_colour_effects() {
    let original = test_images::png(64, 48);
    let mono = decode(&render(&original, "mono=888&fm=png").data);
    for band in [1, 2] {
        let spread = mono
            .extract_band(0)
            .unwrap()
            .subtract(&mono.extract_band(band).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap();
        assert!(spread <= 1.0, "mono gives R=G=B, spread {spread}");
    }
    let ramp = test_images::png_of(&test_images::ramp(256, 4));
    let sepia = pixel(&render(&ramp, "sepia=100&fm=png").data, 128, 2);
    assert!(
        sepia[0] > sepia[1] && sepia[1] > sepia[2],
        "sepia is warm: {sepia:?}"
    );
    let duotone = render(&ramp, "duotone=ff0000,0000ff&fm=png");
    assert_close(
        &pixel(&duotone.data, 0, 2),
        &RED,
        2.0,
        "black → first colour",
    );
    assert_close(
        &pixel(&duotone.data, 255, 2),
        &BLUE,
        2.0,
        "white → second colour",
    );
    let faint = pixel(
        &render(&ramp, "duotone=ff0000,0000ff&duotone-alpha=0&fm=png").data,
        0,
        2,
    );
    assert_close(
        &faint,
        &[0.0, 0.0, 0.0],
        1.0,
        "duotone-alpha=0 leaves the image",
    );
}

/// sharp and usm add detail, negative usm and blur remove it, px makes blocks.
#[test]
fn detail_effects() {
    let original = test_images::png(128, 96);
    let dev = |query: &str| deviation(&render(&original, &format!("{query}&fm=png")).data);
    let base = dev("");
    assert!(dev("sharp=100") > base, "sharp");
    assert!(dev("usm=80&usmrad=3") > base, "usm");
    assert!(dev("usm=-80") < base, "negative usm softens");
    assert!(dev("blur=40") < base * 0.5, "blur");
    assert!(dev("blur=2000") < base * 0.1, "strong blur");
    let blocks = render(&original, "px=16&fm=png");
    assert_eq!(decoded_size(&blocks.data), (128, 96));
    assert_eq!(
        pixel(&blocks.data, 0, 0),
        pixel(&blocks.data, 15, 15),
        "one block"
    );
    // The blocks average random noise, so two neighbours may round to the
    // same colour; a whole row of eight never does.
    let row: Vec<_> = (0..8)
        .map(|block| pixel(&blocks.data, block * 16, 0))
        .collect();
    assert!(
        row.iter().any(|colour| colour != &row[0]),
        "every block of the row has one colour: {row:?}"
    );
}

// --- Canvas ---

/// pad adds bg-coloured (or transparent) space; borders and rounded corners frame the image.
#[test]
fn padding_borders_and_corners() {
    let original = png_quadrants();
    let padded = render(&original, "pad=10&pad-left=30&bg=0000ff&fm=png");
    assert_eq!(decoded_size(&padded.data), (240, 120));
    assert_close(&pixel(&padded.data, 15, 50), &BLUE, 1.0, "left padding");
    assert_close(
        &pixel(&padded.data, 35, 15),
        &RED,
        1.0,
        "image after padding",
    );
    let clear = render(&original, "pad=10&fm=png");
    assert_eq!(
        pixel(&clear.data, 2, 2)[3],
        0.0,
        "padding without bg is transparent"
    );
    // The border is drawn over the image's edge; the size stays.
    let bordered = render(&original, "border=5,00ff00&fm=png");
    assert_eq!(decoded_size(&bordered.data), (200, 100));
    assert_close(&pixel(&bordered.data, 2, 50), &GREEN, 1.0, "border");
    assert_close(
        &pixel(&bordered.data, 7, 7),
        &RED,
        1.0,
        "image inside the border",
    );
    let uneven = render(&original, "border=5,00ff00&border-left=20&fm=png");
    assert_eq!(decoded_size(&uneven.data), (200, 100));
    assert_close(
        &pixel(&uneven.data, 17, 50),
        &GREEN,
        1.0,
        "wider left border",
    );
    let rounded = render(&original, "border=1,00ff00&border-radius=20&fm=png");
    assert_eq!(pixel(&rounded.data, 0, 0)[3], 0.0, "corner cut away");
    assert_eq!(
        pixel(&rounded.data, 20, 20)[3],
        255.0,
        "inside the corner kept"
    );
    let rounded_jpeg = render(&original, "border=1,00ff00&border-radius=20&bg=000&fm=jpg");
    assert!(
        pixel(&rounded_jpeg.data, 0, 0)[0] < 30.0,
        "rounded corner takes bg"
    );
}

/// trim removes uniform borders: auto (corners agree), color, and alpha.
#[test]
fn trim_modes() {
    crate::libvips::init().unwrap();
    let inner = test_images::photo(60, 40);
    let framed = inner
        .embed_with_opts(
            20,
            30,
            100,
            100,
            VOption::new().set("extend", rs_vips::enums::Extend::White as i32),
        )
        .unwrap();
    let original = test_images::png_of(&framed);
    let auto = render(&original, "trim=auto&fm=png");
    assert_eq!((auto.width, auto.height), (60, 40), "auto trim");
    let colour = render(&original, "trim=color&trim-color=fff&fm=png");
    assert_eq!((colour.width, colour.height), (60, 40), "colour trim");
    let padded = render(&original, "trim=auto&trim-pad=5&fm=png");
    assert_eq!((padded.width, padded.height), (70, 50), "trim-pad");
    let transparent = test_images::png_of(
        &inner
            .bandjoin_const(&[255.0])
            .unwrap()
            .embed(10, 10, 80, 60)
            .unwrap(),
    );
    let alpha = render(&transparent, "trim=alpha&fm=png");
    assert_eq!((alpha.width, alpha.height), (60, 40), "alpha trim");
    let untouched = render(&test_images::png(50, 50), "trim=auto&fm=png");
    assert_eq!(
        (untouched.width, untouched.height),
        (50, 50),
        "noisy corners: nothing to trim"
    );
    let resized = render(&original, "trim=auto&w=30&fm=png");
    assert_eq!(
        (resized.width, resized.height),
        (30, 20),
        "sizes apply to the trimmed image"
    );
}

// --- Overlays ---

/// mark composites the watermark at its alignment, padding, size and alpha.
#[test]
fn watermark_is_composited() {
    let base = test_images::png_of(&test_images::ramp(200, 100));
    let mark = test_images::png_of(&test_images::quadrants(40, 20));
    let input = RenderInput {
        original: &base,
        watermark: Some(&mark),
        ..RenderInput::default()
    };
    let marked = render_with(input, "mark=/logo.png&fm=png");
    // Default: bottom right, 5 px from the edges; the mark's white quadrant is at its bottom right.
    assert_close(
        &pixel(&marked.data, 200 - 5 - 5, 100 - 5 - 5),
        &WHITE,
        1.0,
        "bottom right",
    );
    assert_close(
        &pixel(&marked.data, 200 - 5 - 35, 100 - 5 - 15),
        &RED,
        1.0,
        "mark's red corner",
    );
    let top_left = render_with(
        input,
        "mark=/logo.png&mark-align=top,left&mark-pad=0&fm=png",
    );
    assert_close(&pixel(&top_left.data, 2, 2), &RED, 1.0, "top left");
    let placed = render_with(input, "mark=/logo.png&mark-x=100&mark-y=50&fm=png");
    assert_close(&pixel(&placed.data, 102, 52), &RED, 1.0, "mark-x / mark-y");
    let scaled = render_with(
        input,
        "mark=/logo.png&mark-scale=50&mark-align=top,left&mark-pad=0&fm=png",
    );
    assert_close(
        &pixel(&scaled.data, 95, 5),
        &GREEN,
        2.0,
        "mark-scale=50 makes it 100 px wide",
    );
    let faint = render_with(
        input,
        "mark=/logo.png&mark-alpha=50&mark-align=top,left&mark-pad=0&fm=png",
    );
    let p = pixel(&faint.data, 2, 2);
    assert!(
        p[0] > 100.0 && p[0] < 160.0 && p[1] < 10.0,
        "half-transparent red over black: {p:?}"
    );
    let tiled = render_with(input, "mark=/logo.png&mark-tile=grid&mark-pad=0&fm=png");
    assert_close(&pixel(&tiled.data, 2, 2), &RED, 1.0, "tile at the origin");
    assert_close(&pixel(&tiled.data, 42, 22), &RED, 1.0, "tile repeats");
    let without = render(&base, "mark=/logo.png&fm=png");
    assert_eq!(
        pixel(&without.data, 190, 90),
        pixel(&render(&base, "fm=png").data, 190, 90),
        "no bytes, no mark"
    );
}

/// txt renders text in its colour at its alignment; clipping and fitting keep it inside.
#[test]
fn text_is_rendered() {
    crate::libvips::init().unwrap();
    let white = test_images::png_of(
        &VipsImage::black(300, 100)
            .unwrap()
            .linear(&[1.0], &[255.0])
            .unwrap()
            .cast(rs_vips::enums::BandFormat::Uchar)
            .unwrap(),
    );
    let red_pixels = |data: &[u8], left: i32, top: i32, width: i32, height: i32| {
        let image = decode(data).extract_area(left, top, width, height).unwrap();
        let red = image
            .extract_band(0)
            .unwrap()
            .relational_const(rs_vips::enums::OperationRelational::More, &[200.0])
            .unwrap();
        let not_green = image
            .extract_band(1)
            .unwrap()
            .relational_const(rs_vips::enums::OperationRelational::Less, &[80.0])
            .unwrap();
        red.boolean(&not_green, rs_vips::enums::OperationBoolean::And)
            .unwrap()
            .avg()
            .unwrap()
    };
    let text = render(&white, "txt=Hello&txt-size=30&txt-color=ff0000&fm=png");
    assert!(
        red_pixels(&text.data, 150, 50, 150, 50) > 1.0,
        "text at the bottom right"
    );
    assert_eq!(
        red_pixels(&text.data, 0, 0, 150, 50),
        0.0,
        "nothing at the top left"
    );
    let top_left = render(
        &white,
        "txt=Hello&txt-size=30&txt-color=ff0000&txt-align=top,left&fm=png",
    );
    assert!(red_pixels(&top_left.data, 0, 0, 150, 50) > 1.0, "txt-align");
    let long = "W".repeat(200);
    for clip in ["end", "start", "middle", "ellipsis"] {
        let clipped = render(
            &white,
            &format!("txt={long}&txt-size=30&txt-color=ff0000&txt-clip={clip}&fm=png"),
        );
        assert_eq!(decoded_size(&clipped.data), (300, 100), "{clip}");
        assert!(red_pixels(&clipped.data, 0, 0, 300, 100) > 1.0, "{clip}");
    }
    let fitted = render(
        &white,
        &format!(
            "txt={}&txt-size=30&txt-fit=max&txt-color=ff0000&fm=png",
            "W".repeat(20)
        ),
    );
    assert!(
        red_pixels(&fitted.data, 0, 0, 300, 100) > 0.1,
        "txt-fit=max shrinks to fit"
    );
    let shadowed = render(
        &white,
        "txt=Hello&txt-size=30&txt-shad=5&txt-color=ff0000&fm=png",
    );
    assert!(
        deviation(&shadowed.data) > deviation(&text.data),
        "txt-shad adds a shadow"
    );
    let font = render(
        &white,
        "txt=Hello&txt-size=30&txt-font=DejaVu+Sans+Mono&fm=png",
    );
    assert_ne!(
        font.data,
        render(&white, "txt=Hello&txt-size=30&fm=png").data,
        "txt-font changes the glyphs"
    );
    let markup = render(&white, "txt=%3Cb%3E%26&txt-size=30&fm=png");
    assert_eq!(
        decoded_size(&markup.data),
        (300, 100),
        "markup characters are text"
    );
    for blank in ["%20", "%00", "%09%0A"] {
        let nothing = render(&white, &format!("txt={blank}&fm=png"));
        assert_eq!(
            nothing.data,
            render(&white, "fm=png").data,
            "blank text {blank:?} draws nothing"
        );
    }
}

/// blend with a colour applies its mode and alpha; blend with an image places it.
#[test]
fn blend_modes() {
    let original = png_quadrants();
    let multiplied = render(&original, "blend=808080&blend-mode=multiply&fm=png");
    assert_close(
        &pixel(&multiplied.data, 190, 90),
        &[128.0, 128.0, 128.0],
        2.0,
        "white × grey",
    );
    let screened = render(&original, "blend=808080&blend-mode=screen&fm=png");
    assert!(
        pixel(&screened.data, 10, 10)[1] > 100.0,
        "screen lightens green of red"
    );
    let normal = render(
        &original,
        "blend=00ff00&blend-mode=normal&blend-alpha=100&fm=png",
    );
    assert_close(&pixel(&normal.data, 10, 10), &GREEN, 1.0, "normal covers");
    let half = render(
        &original,
        "blend=00ff00&blend-mode=normal&blend-alpha=50&fm=png",
    );
    let p = pixel(&half.data, 10, 10);
    assert!(p[0] > 100.0 && p[1] > 100.0, "half alpha mixes: {p:?}");
    let hue = render(&original, "blend=00ff00&blend-mode=hue&fm=png");
    let p = pixel(&hue.data, 10, 10);
    assert!(p[1] > p[0], "hue takes the blend's hue: {p:?}");
    let layer = test_images::png_of(&test_images::quadrants(40, 20));
    let input = RenderInput {
        original: &original,
        blend: Some(&layer),
        ..RenderInput::default()
    };
    let placed = render_with(
        input,
        "blend=/layer.png&blend-mode=normal&blend-x=100&blend-y=50&fm=png",
    );
    assert_close(
        &pixel(&placed.data, 102, 52),
        &RED,
        1.0,
        "blended image at blend-x/blend-y",
    );
}

// --- Animation ---

/// Animated GIF and WebP inputs stay animated, every frame transformed; frame=N picks one.
#[test]
fn animations() {
    let gif = test_images::animated_gif_frames(40, 30, 4);
    let resized = render(&gif, "w=20");
    assert_eq!(resized.format, EncodedFormat::Gif);
    let decoded = VipsImage::new_from_buffer(&resized.data, "n=-1").unwrap();
    assert_eq!(decoded.get_int("n-pages").unwrap(), 4);
    assert_eq!((decoded.get_width(), decoded.get_page_height()), (20, 15));
    // Every frame was transformed: inverted greys 40, 80, ... → 215, 175, ...
    let inverted =
        VipsImage::new_from_buffer(&render(&gif, "invert=true&fm=gif").data, "n=-1").unwrap();
    for frame in 0..4 {
        let level = inverted.getpoint(5, frame * 30 + 5).unwrap()[0];
        let expected = 255.0 - 40.0 * f64::from(frame + 1);
        assert!(
            (level - expected).abs() <= 2.0,
            "frame {frame}: {level} vs {expected}"
        );
    }
    let webp = render(&gif, "w=20&fm=webp");
    let decoded = VipsImage::new_from_buffer(&webp.data, "n=-1").unwrap();
    assert_eq!(decoded.get_int("n-pages").unwrap(), 4);
    let from_webp = render(
        &test_images::animated_webp(40, 30, 3),
        "w=20&rot=90&rot-type=pivot",
    );
    let decoded = VipsImage::new_from_buffer(&from_webp.data, "n=-1").unwrap();
    assert_eq!(
        (decoded.get_int("n-pages").unwrap(), decoded.get_width()),
        (3, 15)
    );
    let third = render(&gif, "frame=3&fm=png");
    assert_close(
        &pixel(&third.data, 5, 5)[..1],
        &[120.0],
        2.0,
        "frame 3 is grey 120",
    );
    let beyond = render(&gif, "frame=99&fm=png");
    assert_close(
        &pixel(&beyond.data, 5, 5)[..1],
        &[160.0],
        2.0,
        "frame past the end: the last",
    );
    let still = render(&gif, "fm=jpg");
    assert_eq!(
        decoded_size(&still.data),
        (40, 30),
        "JPEG gets the first frame"
    );
}

// --- Limits and bad input ---

/// A 10000×10000 PNG (small on disk) is refused as too large, from its header.
#[test]
fn pixel_limit_refuses_large_images() {
    crate::libvips::init().unwrap();
    let black = VipsImage::black(10_000, 10_000)
        .unwrap()
        .pngsave_buffer_with_opts(VOption::new().set("compression", 1))
        .unwrap();
    let error = try_render(&black, "w=100").unwrap_err();
    assert!(
        matches!(
            error,
            RenderError::TooManyPixels {
                pixels: 100_000_000,
                limit: DEFAULT_MAX_PIXELS
            }
        ),
        "{error:?}"
    );
}

/// A hand-made 50000×50000 PNG header is refused before any decode, quickly.
#[test]
fn bomb_header_is_refused_before_decoding() {
    let bomb = test_images::png_header_only(50_000, 50_000);
    assert!(bomb.len() < 100);
    crate::libvips::init().unwrap();
    let started = Instant::now();
    let error = try_render(&bomb, "w=100").unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            error,
            RenderError::TooManyPixels {
                pixels: 2_500_000_000,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
}

/// The limit is inclusive, and every page of an animation counts.
#[test]
fn pixel_limit_is_inclusive_and_counts_pages() {
    let original = test_images::jpeg(400, 300);
    let limits = |max_pixels| RenderLimits {
        max_pixels,
        ..RenderLimits::default()
    };
    let at_limit = render_image(&input(&original), &plan("w=100"), &limits(120_000));
    assert!(at_limit.is_ok(), "{at_limit:?}");
    let over = render_image(&input(&original), &plan("w=100"), &limits(119_999));
    assert!(
        matches!(over, Err(RenderError::TooManyPixels { .. })),
        "{over:?}"
    );
    let gif = test_images::animated_gif(100, 100, 3);
    let one_page = render_image(&input(&gif), &plan("w=50&frame=1"), &limits(20_000));
    assert!(
        matches!(
            one_page,
            Err(RenderError::TooManyPixels { pixels: 30_000, .. })
        ),
        "{one_page:?}"
    );
}

/// An animated output counts every page against the pixel limit, even
/// though each frame alone is small.
#[test]
fn pixel_limit_counts_every_frame_of_an_animation() {
    let gif = test_images::animated_gif(50, 50, 40);
    let limits = RenderLimits {
        max_pixels: 99_999,
        ..RenderLimits::default()
    };
    let animated = render_image(&input(&gif), &plan("w=20"), &limits);
    assert!(
        matches!(
            animated,
            Err(RenderError::TooManyPixels {
                pixels: 100_000,
                limit: 99_999
            })
        ),
        "{animated:?}"
    );
}

/// A GIF of more frames than the frame limit is refused from its header,
/// fast (no frame decoded) and counted; a still output of its first frame, which
/// decodes only that frame, still renders.
#[test]
fn frame_limit_refuses_long_animations_before_decoding() {
    let gif = test_images::animated_gif(4, 4, 2_000);
    let counted = stopped_renders("frames");
    let started = Instant::now();
    let refused = try_render(&gif, "w=2");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            refused,
            Err(RenderError::TooManyFrames {
                frames: 2_000,
                limit: DEFAULT_MAX_FRAMES
            })
        ),
        "{refused:?}"
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    assert!(stopped_renders("frames") > counted, "not counted");
    let error = refused.unwrap_err();
    assert_eq!(
        error.to_string(),
        "image has 2000 frames, more than the limit of 500"
    );
    assert_eq!(error.code(), imgmesh_errors::ErrorCode::InputTooLarge);

    let late_frame = try_render(&gif, "frame=501&fm=png");
    assert!(
        matches!(late_frame, Err(RenderError::TooManyFrames { .. })),
        "{late_frame:?}"
    );
    let still = render(&gif, "fm=png");
    assert_eq!(decoded_size(&still.data), (4, 4));
}

/// The frame limit is inclusive: an animation of exactly `max_frames`
/// frames renders animated.
#[test]
fn frame_limit_is_inclusive() {
    let gif = test_images::animated_gif(8, 8, 30);
    let limits = |max_frames| RenderLimits {
        max_frames,
        ..RenderLimits::default()
    };
    let at_limit = render_image(&input(&gif), &plan("w=4"), &limits(30)).unwrap();
    assert_eq!(decode_all(&at_limit.data).get_int("n-pages").unwrap(), 30);
    let over = render_image(&input(&gif), &plan("w=4"), &limits(29));
    assert!(
        matches!(
            over,
            Err(RenderError::TooManyFrames {
                frames: 30,
                limit: 29
            })
        ),
        "{over:?}"
    );
}

/// A render over a tiny time budget is stopped with RENDER_TOO_SLOW (and
/// counted), and the next render on the same thread (same libvips state)
/// succeeds.
#[test]
fn time_budget_stops_an_animation_and_the_thread_renders_again() {
    let gif = test_images::animated_gif(32, 32, 300);
    let tiny = RenderLimits {
        max_render: Duration::from_millis(1),
        ..RenderLimits::default()
    };
    let counted = stopped_renders("time");
    let stopped = render_image(&input(&gif), &plan("w=64"), &tiny);
    assert!(stopped_renders("time") > counted, "not counted");
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { limit_ms: 1 })),
        "{stopped:?}"
    );
    let error = stopped.unwrap_err();
    assert_eq!(
        error.to_string(),
        "image took longer than the limit of 1 ms to render"
    );
    assert_eq!(error.code(), imgmesh_errors::ErrorCode::InputTooLarge);

    let jpeg = render(&test_images::jpeg(100, 80), "w=50");
    assert_eq!(decoded_size(&jpeg.data), (50, 40));
    let animated = render(&gif, "w=16");
    assert_eq!(decode_all(&animated.data).get_int("n-pages").unwrap(), 300);
}

/// The budget stops libvips mid-evaluation: a single-frame render whose
/// encoder alone takes seconds (a 64-megapixel PNG) ends soon after the
/// budget. The render checks its budget only before the encoder, so only
/// the kill switch inside libvips can end it early.
#[test]
fn time_budget_kills_libvips_mid_evaluation() {
    let original = test_images::jpeg(1_000, 1_000);
    let limits = RenderLimits {
        max_render: Duration::from_millis(200),
        ..RenderLimits::default()
    };
    let started = Instant::now();
    let stopped = render_image(
        &input(&original),
        &plan("w=8000&h=8000&fit=scale&fm=png"),
        &limits,
    );
    let elapsed = started.elapsed();
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { limit_ms: 200 })),
        "{stopped:?} after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1_500), "took {elapsed:?}");
    let next = render(&original, "w=100&fm=png");
    assert_eq!(decoded_size(&next.data), (100, 100));
}

/// On a one-worker pool, a render stopped by its budget frees the worker:
/// the next render on the same pool succeeds.
#[tokio::test]
async fn stopped_render_frees_the_pool_worker() {
    let limits = RenderLimits {
        max_render: Duration::from_millis(100),
        ..RenderLimits::default()
    };
    let pool = crate::render_pool::RenderPool::new(1, limits);
    let heavy = RenderSources::original(test_images::jpeg(1_000, 1_000));
    let stopped = pool
        .render(heavy, plan("w=8000&h=8000&fit=scale&fm=png"))
        .await;
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { .. })),
        "{stopped:?}"
    );
    let small = RenderSources::original(test_images::jpeg(100, 80));
    let derivative = pool.render(small, plan("w=50")).await.unwrap();
    assert_eq!((derivative.width, derivative.height), (50, 40));
}

/// `imgmesh_renders_stopped_total{reason}` in the process registry.
fn stopped_renders(reason: &str) -> f64 {
    let name = format!("imgmesh_renders_stopped_total{{reason=\"{reason}\"}} ");
    imgmesh_metrics::encode()
        .lines()
        .find_map(|line| line.strip_prefix(&name)?.parse().ok())
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

/// Inputs over the byte limit are refused before they are even sniffed.
#[test]
fn byte_limit_refuses_large_inputs() {
    let original = test_images::jpeg(64, 48);
    let limits = RenderLimits {
        max_object_bytes: original.len() as u64 - 1,
        ..RenderLimits::default()
    };
    let input = RenderInput {
        original: &original,
        ..RenderInput::default()
    };
    let error = render_image(&input, &RenderPlan::default(), &limits).unwrap_err();
    assert!(
        matches!(error, RenderError::ObjectTooLarge { .. }),
        "{error:?}"
    );
}

/// Non-image bytes, SVG, PDF, TIFF, MATLAB and BMP are UNSUPPORTED_INPUT.
#[test]
fn unsupported_inputs_are_refused() {
    let tiff = test_images::tiff(16, 16);
    let inputs: [&[u8]; 7] = [
        b"hello, world",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
        b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
        &tiff,
        b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024",
        b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0",
        b"",
    ];
    for input in inputs {
        let error = try_render(input, "w=10").unwrap_err();
        assert!(matches!(error, RenderError::UnsupportedInput), "{error:?}");
    }
}

/// Truncated or garbled images of a served format are CORRUPT_INPUT, not a panic.
#[test]
fn corrupt_inputs_are_refused() {
    let jpeg = test_images::jpeg(400, 300);
    let png = test_images::png(64, 64);
    let inputs: [&[u8]; 5] = [
        &jpeg[..jpeg.len() / 2],
        &jpeg[..200],
        b"\xFF\xD8\xFF\xE0 this is not really a jpeg",
        &png[..png.len() / 2],
        b"\0\0\0\x1cftypavif\0\0\0\0garbage",
    ];
    for input in inputs {
        for query in ["w=100", "w=100&trim=auto&blur=5", "fm=json"] {
            let result = try_render(input, query);
            assert!(
                matches!(result, Err(RenderError::CorruptInput))
                    || (query == "fm=json" && result.is_ok()),
                "{query}: {result:?}"
            );
        }
    }
}

/// A watermark that is a decompression bomb is refused from its header and left out.
#[test]
fn bomb_overlays_are_left_out() {
    let base = test_images::png(64, 48);
    let bomb = test_images::png_header_only(50_000, 50_000);
    let input = RenderInput {
        original: &base,
        watermark: Some(&bomb),
        blend: Some(&bomb),
    };
    let started = Instant::now();
    let derivative = render_with(input, "mark=/bomb.png&blend=/bomb.png&fm=png");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(derivative.data, render(&base, "fm=png").data);
}

/// Long text at a large size is laid out only as far as it can show.
#[test]
fn long_large_text_stays_cheap() {
    let base = test_images::png(300, 100);
    let long = "W".repeat(500);
    let started = Instant::now();
    for query in [
        format!("txt={long}&txt-size=1000&fm=png"),
        format!("txt={long}&txt-size=1000&txt-clip=start&fm=png"),
        format!("txt={long}&txt-size=1000&txt-clip=ellipsis&fm=png"),
        format!("txt={long}&txt-size=1000&txt-fit=max&fm=png"),
    ] {
        let derivative = render(&base, &query);
        assert_eq!(decoded_size(&derivative.data), (300, 100), "{query}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A watermark or blend image that does not decode is left out, not an error.
#[test]
fn undecodable_overlays_are_skipped() {
    let base = test_images::png(64, 48);
    let input = RenderInput {
        original: &base,
        watermark: Some(b"not an image"),
        blend: Some(b"\x89PNG\r\n\x1a\ngarbage"),
    };
    let derivative = render_with(input, "mark=/m.png&blend=/b.png&fm=png");
    assert_eq!(decoded_size(&derivative.data), (64, 48));
}

/// libvips itself refuses loaders outside the allow-list (TIFF, SVG).
#[test]
fn libvips_blocks_other_loaders() {
    crate::libvips::init().unwrap();
    let tiff = test_images::tiff(16, 16);
    assert!(VipsImage::new_from_buffer(&tiff, "").is_err());
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>";
    assert!(VipsImage::new_from_buffer(svg, "").is_err());
    rs_vips::Vips::error_clear();
    assert!(VipsImage::new_from_buffer(&test_images::jpeg(16, 16), "").is_ok());
}

/// Edge and garbage values of every parameter render (or are refused cleanly), never panic.
#[test]
fn garbage_parameters_render() {
    let original = test_images::jpeg(64, 48);
    for param in imgmesh_imgix_params::Spec::get().params() {
        for value in ["-1", "0", "100", "0.5", "NaN", "a,b,c,d", "ff0000"] {
            let query = format!("{}={value}", param.name);
            let Ok(parsed) = parse_render_plan("", &query, None) else {
                continue;
            };
            let input = RenderInput {
                original: &original,
                ..RenderInput::default()
            };
            let result = render_image(&input, &parsed.plan, &RenderLimits::default());
            assert!(result.is_ok(), "{query}: {result:?}");
        }
    }
}

/// The finding itself: thousands of tiny GIF frames (cheap to declare,
/// tens of seconds to render) are stopped near the budget even with the
/// frame limit raised past them, wherever the time goes (building the
/// per-frame pipelines, or libvips evaluating them).
#[test]
fn time_budget_bounds_thousands_of_tiny_frames() {
    let gif = test_images::animated_gif(8, 8, 3_000);
    let limits = RenderLimits {
        max_frames: 10_000,
        max_render: Duration::from_millis(500),
        ..RenderLimits::default()
    };
    let started = Instant::now();
    let stopped = render_image(&input(&gif), &plan("w=16"), &limits);
    let elapsed = started.elapsed();
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { limit_ms: 500 })),
        "{stopped:?}"
    );
    assert!(elapsed < Duration::from_millis(2_500), "took {elapsed:?}");
}
