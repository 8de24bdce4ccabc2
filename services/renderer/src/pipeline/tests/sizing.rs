//! Size, fit and crop: output sizes and the part of the source kept.

use super::*;

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
    assert_eq!(rendered_size(&original, "w=9000"), (8192, 6144));
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
    crate::pipeline::load::libvips::init().unwrap();
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
