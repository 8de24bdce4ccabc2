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

// === size ===

/// https://docs.imgix.com/apis/url/size/w and /size/h: "If only one dimension
/// is specified, the other dimension will be calculated according to the
/// aspect ratio of the input image. If both width and height are omitted,
/// then the input image's dimensions are used"; "a w value of 0.5 will result
/// in an output image half the width of the source image"; "The maximum
/// output image size on Imgix is 8192×8192 pixels. All output images will be
/// sized down to accommodate this limit."
#[test]
fn width_and_height_follow_the_size_pages() {
    let original = png(&photo(300, 200));
    let cases: &[(&str, (u32, u32))] = &[
        ("w=150", (150, 100)),
        ("width=150", (150, 100)),
        ("h=50", (75, 50)),
        ("height=50", (75, 50)),
        ("", (300, 200)),
        ("w=0.5", (150, 100)),
        ("h=0.5", (150, 100)),
        // 9000 × 6000 sized down to fit 8192 × 8192.
        ("w=9000", (8192, 5461)),
    ];
    for (query, expected) in cases {
        assert_eq!(size(&original, query), *expected, "{query}");
    }
}

/// https://docs.imgix.com/apis/url/size/fit: "fit=clip&w=100&h=100:
/// Attempting to resize this image [300×200] to be 100×100 with a fit mode of
/// clip will result in an image that is 100×67"; crop: "The resulting image
/// will match the width and height constraints"; clamp: "The resulting image
/// will match the constraining dimensions"; fill (the page's ja-JP text,
/// translated): the image is resized within the requested width and height
/// keeping its aspect ratio, the excess space filled, and the result matches
/// the requested dimensions exactly. Scale (as the
/// fit family words it, https://docs.imgix.com/apis/url/blending/blend-fit):
/// "The resulting image will fill the dimensions, and will not maintain the
/// aspect ratio"; max: "will not increase the size of the image if it is
/// smaller than the output size".
#[test]
fn fit_modes_follow_the_fit_page() {
    let original = png(&photo(300, 200));
    let cases: &[(&str, (u32, u32))] = &[
        ("fit=clip&w=100&h=100", (100, 67)),
        ("w=100&h=100", (100, 67)),
        ("f=clip&w=100&h=100", (100, 67)),
        ("fit=crop&w=300&h=100", (300, 100)),
        ("fit=crop&w=200&h=200", (200, 200)),
        ("fit=clamp&w=400&h=100", (400, 100)),
        ("fit=fill&w=400&h=100", (400, 100)),
        ("fit=scale&w=100&h=300", (100, 300)),
        ("fit=max&w=600&h=600", (300, 200)),
        ("fit=max&w=150&h=150", (150, 100)),
    ];
    for (query, expected) in cases {
        assert_eq!(size(&original, query), *expected, "{query}");
    }
}

/// https://docs.imgix.com/apis/rendering/fill/fill-max: "By default,
/// fit=fillmax never enlarges the image, but it still pads the canvas out to
/// the full w × h box" (300×200 at w=400&h=400: a 400×400 canvas), while
/// fit=fill enlarges the image to the box (https://docs.imgix.com/apis/url/size/fit).
#[test]
fn fillmax_pads_without_enlarging() {
    let original = png(&flat(300, 200, GREEN));
    let query = "w=400&h=400&fill=solid&fill-color=ff0000&fm=png";
    let fillmax = render(&original, &format!("fit=fillmax&{query}"));
    assert_eq!((fillmax.width, fillmax.height), (400, 400));
    // The 300-wide image is centred: x < 50 is canvas.
    assert_colour(rgb(&fillmax.data, 20, 200), RED, "fillmax canvas");
    assert_colour(rgb(&fillmax.data, 200, 200), GREEN, "fillmax image");
    let fill = render(&original, &format!("fit=fill&{query}"));
    assert_eq!((fill.width, fill.height), (400, 400));
    // Enlarged to 400 × 267, the image reaches the left edge.
    assert_colour(rgb(&fill.data, 20, 200), GREEN, "fill image");
    assert_colour(rgb(&fill.data, 200, 20), RED, "fill canvas");
}

/// https://docs.imgix.com/apis/url/dpr: "You must specify a width, a height,
/// or both for this parameter to work. The default is 1 and the maximum value
/// is 5", and its table for `fit=crop&h=300&w=500`: dpr=1 500×300, dpr=2
/// 1000×600, dpr=3 1500×900.
#[test]
fn dpr_follows_the_pixel_density_page() {
    let original = png(&photo(2000, 1200));
    let cases: &[(&str, (u32, u32))] = &[
        ("fit=crop&h=300&w=500", (500, 300)),
        ("fit=crop&h=300&w=500&dpr=1", (500, 300)),
        ("fit=crop&h=300&w=500&dpr=2", (1000, 600)),
        ("fit=crop&h=300&w=500&dpr=3", (1500, 900)),
        ("dpr=2", (2000, 1200)),
        ("w=100&dpr=5", (500, 300)),
        ("w=100&dpr=6", (500, 300)),
    ];
    for (query, expected) in cases {
        assert_eq!(size(&original, query), *expected, "{query}");
    }
}

/// https://docs.imgix.com/apis/url/size/ar: "This parameter will work only
/// when either fit=crop or fit=fill is set"; "ar=9:1&fit=crop: A 900×270
/// image cropped using the aspect ratio of 9:1 results in an output image
/// sized 900×100"; "w=280&ar=2:1&fit=crop ... the output image will be sized
/// 280×140".
#[test]
fn aspect_ratio_follows_the_ar_page() {
    let original = png(&photo(900, 270));
    let cases: &[(&str, (u32, u32))] = &[
        ("ar=9:1&fit=crop", (900, 100)),
        ("w=280&ar=2:1&fit=crop", (280, 140)),
        ("w=280&ar=2:1&fit=fill", (280, 140)),
        // Neither crop nor fill: ar does not apply.
        ("w=280&ar=2:1", (280, 84)),
        ("w=280&ar=2:1&fit=max", (280, 84)),
    ];
    for (query, expected) in cases {
        assert_eq!(size(&original, query), *expected, "{query}");
    }
    // With fit=fill the frame is a canvas: the 900×270 image fills as much
    // of the 280×140 frame as it can, the rest is fill colour.
    let filled = render(
        &png(&flat(900, 270, GREEN)),
        "w=280&ar=2:1&fit=fill&fill=solid&fill-color=ff0000&fm=png",
    );
    assert_colour(rgb(&filled.data, 140, 5), RED, "frame above the image");
    assert_colour(rgb(&filled.data, 140, 70), GREEN, "image");
}

/// https://docs.imgix.com/apis/url/size/crop: "If no value is explicitly
/// set, the default behavior is to crop from the center of the image";
/// "top: Crop from the top of the image, down. bottom: Crop from the bottom
/// of the image, up. left: Crop from the left of the image, right. right:
/// Crop from the right of the image, left"; values "can be combined by
/// separating with commas".
#[test]
fn crop_edges_follow_the_crop_page() {
    // 200 × 100: red | green over blue | white.
    let original = png(&quadrants(200, 100));
    let square = |crop: &str| render(&original, &format!("fit=crop&w=50&h=50{crop}&fm=png"));
    // A square of the wide image keeps a 100 × 100 window.
    let centre = square("");
    assert_colour(
        rgb(&centre.data, 10, 10),
        RED,
        "centre: left half of window",
    );
    assert_colour(rgb(&centre.data, 40, 10), GREEN, "centre: right half");
    let left = square("&crop=left");
    assert_colour(rgb(&left.data, 40, 10), RED, "left");
    assert_colour(rgb(&left.data, 40, 40), BLUE, "left, bottom row");
    let right = square("&crop=right");
    assert_colour(rgb(&right.data, 10, 10), GREEN, "right");
    let wide = |crop: &str| render(&original, &format!("fit=crop&w=200&h=50{crop}&fm=png"));
    let top = wide("&crop=top");
    assert_colour(rgb(&top.data, 50, 40), RED, "top");
    let bottom = wide("&crop=bottom");
    assert_colour(rgb(&bottom.data, 50, 10), BLUE, "bottom");
    let corner = square("&crop=bottom,right");
    assert_colour(rgb(&corner.data, 40, 10), GREEN, "bottom,right: right half");
}

/// https://docs.imgix.com/apis/url/size/rect: "rect=x,y,w,h"; x: "left is
/// equivalent to 0, center is equivalent to half of the difference of the
/// image width minus the rect width, and right is the difference ... 0.5
/// positions the left edge of the rectangle at the center of the image"; y
/// likewise with top, middle, bottom; w and h: "an integer ... representing
/// the pixel width, a float ... representing the scalar width, or full".
#[test]
fn rect_follows_the_rect_page() {
    let original = png(&quadrants(200, 100));
    let cut = |rect: &str| render(&original, &format!("rect={rect}&fm=png"));
    let corner = cut("right,bottom,100,50");
    assert_eq!((corner.width, corner.height), (100, 50));
    assert_colour(rgb(&corner.data, 50, 25), WHITE, "right,bottom");
    let half = cut("0.5,0,100,50");
    assert_colour(rgb(&half.data, 50, 25), GREEN, "x=0.5 starts at the centre");
    let band = cut("0,0,full,0.5");
    assert_eq!((band.width, band.height), (200, 50));
    assert_colour(rgb(&band.data, 10, 25), RED, "full width, top half");
    assert_colour(rgb(&band.data, 190, 25), GREEN, "full width, top half");
    let middle = cut("center,middle,100,50");
    assert_colour(rgb(&middle.data, 10, 10), RED, "centred window");
    assert_colour(rgb(&middle.data, 90, 40), WHITE, "centred window");
}

/// https://docs.imgix.com/apis/rendering/focal-point-crop/focal-point-zoom:
/// fp-z "The default value is 1 ... fp-z=2 is the same as displaying the
/// image at 200%"; fp-x and fp-y (…/focal-point-x-position): "The default
/// value is 0.5, the center of the image"; "fit=crop and crop=focalpoint
/// must also be set".
#[test]
fn focal_point_follows_its_pages() {
    let original = png(&quadrants(200, 100));
    let base = "fit=crop&crop=focalpoint&w=100&h=50&fm=png";
    // At 200 % the 100 × 50 output shows a 100 × 50 window of the source,
    // centred on (50, 25): all red.
    let zoomed = render(&original, &format!("{base}&fp-x=0.25&fp-y=0.25&fp-z=2"));
    for (x, y) in [(2, 2), (97, 2), (2, 47), (97, 47)] {
        assert_colour(rgb(&zoomed.data, x, y), RED, "zoomed on red");
    }
    // The default point is the centre: the window spans all four colours.
    let centred = render(&original, &format!("{base}&fp-z=2"));
    assert_colour(rgb(&centred.data, 10, 10), RED, "centre, top left");
    assert_colour(rgb(&centred.data, 90, 40), WHITE, "centre, bottom right");
    // Without crop=focalpoint the point is ignored.
    let ignored = render(
        &original,
        "fit=crop&w=100&h=50&fp-x=0.25&fp-y=0.25&fp-z=2&fm=png",
    );
    assert_colour(rgb(&ignored.data, 90, 40), WHITE, "no focalpoint crop");
}

// === format ===

/// https://docs.imgix.com/apis/url/format/fm: "Valid options are avif, gif,
/// jp2, jpg, json, jxr, pjpg, mp4, png, png8, png32, webm, webp, and
/// blurhash." Each image format imgmesh encodes comes back as that format
/// (its magic bytes and media type).
#[test]
fn output_formats_follow_the_fm_page() {
    let original = png(&photo(64, 48));
    let cases: &[(&str, &[u8], &str)] = &[
        ("jpg", b"\xff\xd8\xff", "image/jpeg"),
        ("pjpg", b"\xff\xd8\xff", "image/jpeg"),
        ("png", b"\x89PNG", "image/png"),
        ("png8", b"\x89PNG", "image/png"),
        ("png32", b"\x89PNG", "image/png"),
        ("gif", b"GIF8", "image/gif"),
        ("json", b"{", "application/json"),
    ];
    for (fm, magic, content_type) in cases {
        let derivative = render(&original, &format!("fm={fm}"));
        assert!(derivative.data.starts_with(magic), "fm={fm}");
        assert_eq!(derivative.format.content_type(), *content_type, "fm={fm}");
    }
    let webp = render(&original, "fm=webp");
    assert_eq!(&webp.data[..4], b"RIFF");
    assert_eq!(&webp.data[8..12], b"WEBP");
    assert_eq!(webp.format, EncodedFormat::Webp);
    let avif = render(&original, "fm=avif");
    assert_eq!(&avif.data[4..8], b"ftyp");
    assert_eq!(avif.format.content_type(), "image/avif");
    // png32 is 32-bit RGBA even from an opaque source.
    let png32 = decode(&render(&original, "fm=png32").data);
    assert_eq!(png32.get_bands(), 4);
}

/// The value of `digits` in BlurHash's base 83.
fn base83(digits: &str) -> u32 {
    const ALPHABET: &str =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    digits.chars().fold(0, |value, digit| {
        value * 83 + ALPHABET.find(digit).expect("a base-83 digit") as u32
    })
}

/// imgix's BlurHash announcement (https://blog.imgix.com/2021/01/26/blurhash,
/// linked from https://docs.imgix.com/apis/rendering/format/fm#blurhash):
/// add "fm=blurhash to any image to get a BlurHash string". The string is
/// read as BlurHash's own specification says
/// (https://github.com/woltapp/blurhash/blob/master/Algorithm.md): the
/// first character is (x components − 1) + (y components − 1) × 9, the
/// string is 4 + 2 × x × y characters long, characters 3–6 are the average
/// colour as sRGB `R << 16 | G << 8 | B`, and each AC component is two
/// characters, `R × 19² + G × 19 + B` with 9 meaning zero. So a flat red
/// image hashes to DC 0xFF0000, and the green and blue parts of every AC
/// component, sums over pixels whose green and blue are 0, are zero (the
/// red parts are not: the sampled cosines of a flat image do not sum to 0).
#[test]
fn blurhash_is_a_blurhash_string_as_imgix_announced() {
    let original = png(&flat(64, 48, RED));
    let derivative = render(&original, "fm=blurhash");
    assert!(derivative.format.content_type().starts_with("text/plain"));
    let hash = String::from_utf8(derivative.data).expect("text");
    let components = base83(&hash[..1]);
    let (x, y) = (components % 9 + 1, components / 9 + 1);
    assert_eq!(hash.len() as u32, 4 + 2 * x * y, "{hash}: {x} × {y}");
    assert_eq!(base83(&hash[2..6]), 0xFF0000, "{hash}: the average is red");
    for ac in 0..(x * y - 1) as usize {
        let at = 6 + 2 * ac;
        assert_eq!(
            base83(&hash[at..at + 2]) % (19 * 19),
            9 * 19 + 9,
            "{hash}: AC {ac} has green or blue"
        );
    }
}

/// https://docs.imgix.com/apis/rendering/format/jpg-progressive: "The default
/// value is true when not specified if the output format is a JPEG. If the
/// output format is not a JPEG, then this parameter will have no effect";
/// jpeg-progressive is its alias.
#[test]
fn jpeg_output_is_progressive_by_default() {
    let original = jpeg(&photo(200, 150));
    assert!(interlaced(&render(&original, "fm=jpg").data), "fm=jpg");
    assert!(
        interlaced(&render(&original, "w=100").data),
        "JPEG in, no fm"
    );
    assert!(!interlaced(
        &render(&original, "fm=jpg&jpg-progressive=false").data
    ));
    assert!(!interlaced(
        &render(&original, "fm=jpg&jpeg-progressive=false").data
    ));
    assert!(interlaced(&render(&original, "fm=pjpg").data));
    let png_out = render(&original, "fm=png&jpg-progressive=true");
    assert_eq!(png_out.format, EncodedFormat::Png);
}

/// https://docs.imgix.com/apis/rendering/format/output-quality: "Valid
/// values are in the range 0 – 100 and the default value is 75"; "If
/// auto=compress is applied to an image, the default value will be 45 unless
/// overridden".
#[test]
fn quality_defaults_follow_the_q_page() {
    let original = jpeg(&photo(200, 150));
    let bytes = |query: &str| render(&original, query).data;
    assert_eq!(bytes("fm=jpg"), bytes("fm=jpg&q=75"), "default is 75");
    assert_ne!(bytes("fm=jpg"), bytes("fm=jpg&q=74"));
    assert_eq!(
        bytes("fm=webp"),
        bytes("fm=webp&q=75"),
        "webp default is 75"
    );
    // auto=compress on a JPEG: JPEG at 45 (and metadata stripped).
    assert_eq!(
        bytes("auto=compress"),
        bytes("fm=jpg&q=45&cs=strip"),
        "auto=compress is q=45"
    );
    assert_eq!(
        bytes("auto=compress&q=80"),
        bytes("fm=jpg&q=80&cs=strip"),
        "q overrides auto=compress"
    );
    // Beyond 100 is 100.
    assert_eq!(bytes("fm=jpg&q=150"), bytes("fm=jpg&q=100"));
}

/// https://docs.imgix.com/apis/url/auto: auto=compress "performing
/// transparency detection to select the output format: images with
/// transparency are served as PNG, and all others are served as JPEG"; with
/// auto=format "images will be served in AVIF whenever possible, falling
/// back to WebP, then PNG8 (for images with transparency) or JPEG".
#[test]
fn auto_compress_follows_the_auto_page() {
    let opaque = png(&photo(64, 48));
    let transparent = png(&photo(64, 48).bandjoin_const(&[128.0]).unwrap());
    assert_eq!(render(&opaque, "auto=compress").format, EncodedFormat::Jpeg);
    let with_alpha = render(&transparent, "auto=compress");
    assert_eq!(with_alpha.format, EncodedFormat::Png);
    assert_eq!(decode(&with_alpha.data).get_bands(), 4, "alpha kept");
    let negotiated = |accept: &str| {
        parse_render_plan("", "auto=compress,format", Some(accept))
            .unwrap()
            .plan
            .format()
    };
    assert_eq!(negotiated("image/avif,image/webp"), OutputFormat::Avif);
    assert_eq!(negotiated("image/webp"), OutputFormat::Webp);
    assert_eq!(negotiated("image/png"), OutputFormat::Unspecified);
}

/// https://docs.imgix.com/apis/url/format/fm: "If auto=format is set and the
/// browser does not support the AVIF format, we'll first fallback to WebP if
/// it is supported. If WebP is not supported, Imgix will fall back to the
/// source image type or to any format specified by the fm parameter."
#[test]
fn auto_format_falls_back_as_the_fm_page_says() {
    let original = png(&photo(64, 48));
    let served = |query: &str, accept: &str| {
        let plan = parse_render_plan("", query, Some(accept)).unwrap().plan;
        let input = RenderInput {
            original: &original,
            ..RenderInput::default()
        };
        render_image(&input, &plan, &RenderLimits::default())
            .unwrap()
            .format
    };
    let both = "image/avif,image/webp,*/*";
    assert_eq!(served("auto=format", both), EncodedFormat::Avif);
    assert_eq!(served("auto=format", "image/webp,*/*"), EncodedFormat::Webp);
    assert_eq!(
        served("auto=format", "*/*"),
        EncodedFormat::Png,
        "source type"
    );
    assert_eq!(
        served("auto=format&fm=jpg", "*/*"),
        EncodedFormat::Jpeg,
        "fm"
    );
    assert_eq!(
        negotiate_format(Some("image/webp")),
        Some(OutputFormat::Webp)
    );
}

/// https://docs.imgix.com/apis/rendering/format/chroma-subsampling: "Valid
/// values are 444, 422, and 420. The default is 420." (422 is not checked:
/// libvips cannot write it, imgmesh gives 4:4:4.)
#[test]
fn chroma_subsampling_defaults_to_420() {
    let original = jpeg(&photo(200, 150));
    let subsampling = |query: &str| {
        decode(&render(&original, query).data)
            .get_string("jpeg-chroma-subsample")
            .unwrap()
    };
    assert_eq!(subsampling("fm=jpg&q=95"), "4:2:0");
    assert_eq!(subsampling("fm=jpg&q=95&chromasub=420"), "4:2:0");
    assert_eq!(subsampling("fm=jpg&q=95&chromasub=444"), "4:4:4");
}

/// https://docs.imgix.com/apis/rendering/format/lossless-compression (spec:
/// lossless depends on fm=webp) and https://docs.imgix.com/apis/url/format/fm:
/// "The AVIF file format does not support lossless formats."
#[test]
fn lossless_webp_keeps_every_pixel() {
    let source = photo(64, 48);
    let original = png(&source);
    let lossless = decode(&render(&original, "fm=webp&lossless=true").data);
    let difference = (lossless.subtract(&source).unwrap().abs().unwrap())
        .max()
        .unwrap();
    assert_eq!(difference, 0.0, "lossless WebP is exact");
    let lossy = decode(&render(&original, "fm=webp").data);
    assert!(
        lossy
            .subtract(&source)
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        plan("fm=avif&lossless=true"),
        plan("fm=avif"),
        "no lossless AVIF"
    );
}

/// https://docs.imgix.com/apis/url/format/cs: "origin (default): The color
/// space of the origin image. This is the default value when cs is not
/// specified"; "srgb: Uses the sRGB colorspace"; "strip: Removes the
/// colorspace". https://docs.imgix.com/apis/url/auto: auto=compress
/// "removes color profile metadata".
#[test]
fn colour_space_follows_the_cs_page() {
    let tagged = photo(64, 48)
        .icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))
        .unwrap();
    assert!(has_profile(&tagged));
    let original = jpeg(&tagged);
    let output = |query: &str| decode(&render(&original, query).data);
    assert!(has_profile(&output("w=32")), "origin is the default");
    assert!(has_profile(&output("w=32&cs=origin")));
    assert!(has_profile(&output("w=32&cs=srgb")));
    assert!(!has_profile(&output("w=32&cs=strip")));
    assert!(!has_profile(&output("w=32&auto=compress")));
    assert!(has_profile(&output("w=32&auto=compress&cs=origin")));
    // A source without a profile gets sRGB's only when asked.
    let plain = jpeg(&photo(64, 48));
    assert!(!has_profile(&decode(&render(&plain, "w=32").data)));
    assert!(has_profile(&decode(&render(&plain, "w=32&cs=srgb").data)));
}

/// https://docs.imgix.com/apis/url/format/cs, "Rendering non-web-safe
/// colors": "If an Origin Image uses colorspaces such as CMYK, YCCK, and
/// other non-web-safe colors, the color space will be converted to sRGB by
/// default when it is transformed." So a CMYK JPEG comes out as three-band
/// sRGB, by default and with the default `cs=origin` written out, and its
/// pure cyan ink (C 100 %, no M, Y or K) is a cyan: little red, much green
/// and blue.
#[test]
fn cmyk_is_converted_to_srgb_as_the_cs_page_says() {
    imgmesh_renderer::libvips::init().unwrap();
    let black = VipsImage::black(32, 32)
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap();
    let original = VipsImage::new_from_image(&black, &[255.0, 0.0, 0.0, 0.0])
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Cmyk as i32))
        .unwrap()
        .jpegsave_buffer_with_opts(VOption::new().set("Q", 95))
        .unwrap();
    assert_eq!(decode(&original).get_bands(), 4, "the original is CMYK");
    for query in ["w=16", "w=16&cs=origin", "w=16&fm=png"] {
        let output = decode(&render(&original, query).data);
        assert_eq!(output.get_bands(), 3, "{query}: three bands");
        assert_eq!(
            output.get_interpretation().unwrap(),
            Interpretation::Srgb,
            "{query}: sRGB"
        );
        let p = output.getpoint(8, 8).unwrap();
        assert!(
            p[0] < 100.0 && p[1] > 120.0 && p[2] > 180.0,
            "{query}: cyan ink is cyan, got {p:?}"
        );
    }
}

/// https://docs.imgix.com/apis/rendering/format/iptc: "the iptc parameter
/// will determine if IPTC data should be passed for JPEG images. At this
/// time, the IPTC parameter will only affect JPEG to JPEG processing";
/// "By default, iptc=block is enabled when no parameter is specified".
/// https://docs.imgix.com/ja-JP/apis/rendering ("メタデータ", translated;
/// the text could be read only this far): "Imgix usually removes most
/// metadata (EXIF data, ge…) from the images it processes".
/// https://docs.imgix.com/apis/url/auto: auto=compress strips metadata.
/// So a JPEG carrying EXIF, XMP and IPTC renders to a JPEG with none of
/// them, by default and with auto=compress.
#[test]
fn metadata_is_not_passed_on_as_the_iptc_and_overview_pages_say() {
    let mut tagged = photo(64, 48);
    tagged.set_int("orientation", 1).unwrap();
    let xmp = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="imgmesh"/></rdf:RDF></x:xmpmeta>"#;
    tagged.set_blob_copy("xmp-data", xmp).unwrap();
    // A Photoshop 3.0 IRB holding one IPTC record: 2:80 (By-line) "imgmesh".
    let mut iptc = b"Photoshop 3.0\0".to_vec();
    let record = b"\x1c\x02\x50\x00\x07imgmesh";
    iptc.extend_from_slice(b"8BIM\x04\x04\x00\x00");
    iptc.extend_from_slice(&(record.len() as u32).to_be_bytes());
    // 12 bytes of data: even, so no padding byte.
    iptc.extend_from_slice(record);
    tagged.set_blob_copy("iptc-data", &iptc).unwrap();
    let original = jpeg(&tagged);
    let present = |image: &VipsImage, field: &str| image.get_typeof(field).unwrap() != 0;
    let source = decode(&original);
    for field in ["exif-data", "xmp-data", "iptc-data"] {
        assert!(present(&source, field), "the original carries {field}");
    }
    for query in ["w=32", "w=32&fm=jpg", "w=32&auto=compress"] {
        let derivative = render(&original, query);
        assert_eq!(derivative.format, EncodedFormat::Jpeg, "{query}");
        let output = decode(&derivative.data);
        for field in ["exif-data", "xmp-data", "iptc-data"] {
            assert!(!present(&output, field), "{query}: {field} was passed on");
        }
    }
}

/// https://docs.imgix.com/apis/url/animation/frame: "The most meaningful
/// fields for animated GIFs are PixelHeight, PixelWidth, and Frames", shown
/// in its example document as `"PixelHeight": 240, "PixelWidth": 320,
/// "Output": { "Frames": 38 }`, with `"Depth": 8`, `"ColorModel": "RGB"`.
#[test]
fn json_describes_an_animation_as_the_frame_page_shows() {
    let mut strip = photo(32, 24 * 3);
    strip.set_int("page-height", 24).unwrap();
    let gif = strip.gifsave_buffer().unwrap();
    let document: serde_json::Value =
        serde_json::from_slice(&render(&gif, "fm=json").data).unwrap();
    assert_eq!(document["PixelWidth"], 32);
    assert_eq!(document["PixelHeight"], 24);
    assert_eq!(document["Output"]["Frames"], 3);
    assert_eq!(document["Depth"], 8);
    assert_eq!(document["ColorModel"], "RGB");
}

/// https://docs.imgix.com/apis/url/animation/frame: frame "Enables selection
/// of a single frame"; "frame=1" shows the first frame as a still. (Ranges,
/// `M-N`, are not supported by imgmesh and not checked.)
#[test]
fn frame_selects_one_frame() {
    let frames = [flat(16, 16, RED), flat(16, 16, GREEN), flat(16, 16, BLUE)];
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .unwrap()
        .copy()
        .unwrap();
    strip.set_int("page-height", 16).unwrap();
    let gif = strip.gifsave_buffer().unwrap();
    for (frame, colour) in [(1, RED), (2, GREEN), (3, BLUE)] {
        let still = render(&gif, &format!("frame={frame}&fm=png"));
        assert_eq!((still.width, still.height), (16, 16));
        let image = decode(&still.data);
        assert_eq!(image.get_height(), 16, "one frame");
        assert_colour(rgb(&still.data, 8, 8), colour, &format!("frame={frame}"));
    }
}

// === canvas ===

/// https://docs.imgix.com/apis/url/border-and-padding/border-radius: "The
/// border parameter must be set for this operation to be applied" (the same
/// for border-radius-inner).
#[test]
fn border_radius_needs_a_border() {
    let original = png(&flat(100, 100, GREEN));
    let alone = render(&original, "border-radius=30&fm=png");
    let corner = decode(&alone.data).getpoint(0, 0).unwrap();
    assert!(corner.len() == 3 || corner[3] == 255.0, "no rounding alone");
    let framed = render(&original, "border=2,ff0000&border-radius=30&fm=png");
    assert_eq!((framed.width, framed.height), (100, 100));
    assert_eq!(decode(&framed.data).getpoint(0, 0).unwrap()[3], 0.0);
}

/// https://docs.imgix.com/apis/url/fill/bg: "The bg parameter allows you to
/// fill in any transparent areas in your image with a color of your choice";
/// "bg also sets the background color for transparent areas defined by the
/// pad parameter". https://docs.imgix.com/apis/url/border-and-padding/pad-left:
/// "Pads the left side of an image by the number of pixels specified"; "When
/// pad is set, pad-left will adjust the padding on the left".
#[test]
fn bg_and_pad_follow_their_pages() {
    let original = png(&flat(100, 50, GREEN));
    let padded = render(&original, "pad=10&pad-left=30&bg=0000ff&fm=png");
    assert_eq!((padded.width, padded.height), (140, 70));
    assert_colour(rgb(&padded.data, 15, 35), BLUE, "left padding in bg");
    assert_colour(rgb(&padded.data, 135, 35), BLUE, "right padding in bg");
    assert_colour(rgb(&padded.data, 35, 15), GREEN, "image after padding");
    let transparent = png(&flat(20, 20, GREEN).bandjoin_const(&[0.0]).unwrap());
    let filled = render(&transparent, "bg=ff0000&fm=png");
    assert_colour(rgb(&filled.data, 10, 10), RED, "transparent pixels take bg");
}

/// https://docs.imgix.com/apis/url/fill/fill-color: fill-color "specifies the
/// solid color applied to the excess space of an image resized with fit=fill
/// or fit=fillmax"; "The default is transparent white, 0FFF".
#[test]
fn fill_color_follows_its_page() {
    let original = png(&flat(100, 50, GREEN));
    let solid = render(&original, "fit=fill&w=100&h=100&fill-color=ff0000&fm=png");
    assert_colour(rgb(&solid.data, 50, 5), RED, "excess space");
    assert_colour(rgb(&solid.data, 50, 50), GREEN, "image");
    let default = render(&original, "fit=fill&w=100&h=100&fm=png");
    assert_eq!(
        decode(&default.data).getpoint(50, 5).unwrap()[3],
        0.0,
        "transparent by default"
    );
}

/// https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-color: with
/// trim=color and no trim-color, "trim-color takes the value of the first
/// (top-left) pixel of the source image".
#[test]
fn trim_color_defaults_to_the_top_left_pixel() {
    let framed = flat(60, 40, RED)
        .embed_with_opts(
            10,
            10,
            80,
            60,
            VOption::new()
                .set("extend", rs_vips::enums::Extend::Background as i32)
                .set("background", &WHITE[..]),
        )
        .unwrap();
    let original = png(&framed);
    let trimmed = render(&original, "trim=color&fm=png");
    assert_eq!((trimmed.width, trimmed.height), (60, 40));
    let explicit = render(&original, "trim=color&trim-color=fff&fm=png");
    assert_eq!((explicit.width, explicit.height), (60, 40));
}

/// https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-tolerance
/// (translated): "The trim-tol parameter defines the tolerance of the
/// trim=color operation. Trim tolerance defines how much a colour may differ
/// before the trim operation stops. The higher the trim-tol value, the more
/// lenient the trim … If not specified, the default value is 0." So a
/// near-white frame (245) is not white (trim-color=fff) by default and is
/// kept, and is trimmed with a generous tolerance.
#[test]
fn trim_tolerance_follows_the_trim_tol_page() {
    let framed = flat(60, 40, RED)
        .embed_with_opts(
            10,
            10,
            80,
            60,
            VOption::new()
                .set("extend", rs_vips::enums::Extend::Background as i32)
                .set("background", &[245.0, 245.0, 245.0][..]),
        )
        .unwrap();
    let original = png(&framed);
    let strict = render(&original, "trim=color&trim-color=fff&fm=png");
    assert_eq!(
        (strict.width, strict.height),
        (80, 60),
        "default 0: only white itself is trimmed"
    );
    let lenient = render(&original, "trim=color&trim-color=fff&trim-tol=50&fm=png");
    assert_eq!((lenient.width, lenient.height), (60, 40), "trim-tol=50");
}

/// `inner` centred in a `border`-pixel frame of `frame` (one value a band).
fn framed(inner: &VipsImage, border: i32, frame: &[f64]) -> VipsImage {
    inner
        .embed_with_opts(
            border,
            border,
            inner.get_width() + 2 * border,
            inner.get_height() + 2 * border,
            VOption::new()
                .set("extend", rs_vips::enums::Extend::Background as i32)
                .set("background", frame),
        )
        .unwrap()
}

/// A flat opaque RGBA image of `rgb`.
fn opaque(width: u32, height: u32, rgb: [f64; 3]) -> VipsImage {
    flat(width, height, rgb).bandjoin_const(&[255.0]).unwrap()
}

/// https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-image (translated):
/// trim "trims the image to remove uniform borders around it … this
/// operation changes the size of the image"; "auto: trims automatically
/// based on the image's border colour". trim-color "defines the colour to
/// trim when trim=color is used; otherwise it is ignored"
/// (https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-color,
/// translated). So trim=auto removes a white frame and a blue one alike,
/// and a trim-color that names another colour changes nothing with
/// trim=auto, while with trim=color it decides which frame goes.
#[test]
fn trim_auto_removes_a_uniform_border_and_ignores_trim_color() {
    let white = png(&framed(&flat(60, 40, RED), 10, &WHITE));
    let blue = png(&framed(&flat(60, 40, RED), 10, &BLUE));
    for (name, original) in [("white", &white), ("blue", &blue)] {
        let auto = render(original, "trim=auto&fm=png");
        assert_eq!(
            (auto.width, auto.height),
            (60, 40),
            "{name} frame, trim=auto"
        );
        let ignored = render(original, "trim=auto&trim-color=0f0&fm=png");
        assert_eq!(
            (ignored.width, ignored.height),
            (60, 40),
            "{name} frame, trim=auto ignores trim-color"
        );
        assert_colour(rgb(&auto.data, 0, 0), RED, "the trimmed corner is content");
    }
    let named = render(&blue, "trim=color&trim-color=00f&fm=png");
    assert_eq!(
        (named.width, named.height),
        (60, 40),
        "trim-color=00f on blue"
    );
    let other = render(&blue, "trim=color&trim-color=fff&fm=png");
    assert_eq!(
        (other.width, other.height),
        (80, 60),
        "trim-color=fff keeps blue"
    );
}

/// https://docs.imgix.com/apis/url/trim/trimmd: "The trim-md parameter is
/// the mean difference threshold for the trimming operation, and is only
/// valid when trim=auto. The default value is 11"; https://docs.imgix.com/apis/url/trim/trimsd:
/// "The trim-sd parameter defines the standard deviation among pixels
/// within a border, and is only valid when trim=auto. The default value is
/// 10 … If this value is higher, the algorithm is more lenient." So with
/// trim=color neither changes the result, even at 0; and with trim=auto a
/// frame with one off-white corner pixel (240 in a 255 frame) is trimmed at
/// the lenient default and kept at the strictest trim-sd.
#[test]
fn trim_md_and_sd_only_act_with_trim_auto() {
    let frame = framed(&flat(60, 40, RED), 10, &WHITE);
    let original = png(&frame);
    for query in [
        "trim=color&trim-color=fff&trim-md=0&trim-sd=0&fm=png",
        "trim=color&trim-color=fff&trim-md=200&trim-sd=200&fm=png",
    ] {
        let trimmed = render(&original, query);
        assert_eq!((trimmed.width, trimmed.height), (60, 40), "{query}");
    }
    let corner = flat(1, 1, [240.0, 240.0, 240.0]);
    let spotted = png(&frame.insert(&corner, 0, 0).unwrap());
    let lenient = render(&spotted, "trim=auto&fm=png");
    assert_eq!(
        (lenient.width, lenient.height),
        (60, 40),
        "default trim-sd=10"
    );
    let strict = render(&spotted, "trim=auto&trim-sd=0&fm=png");
    assert_eq!((strict.width, strict.height), (80, 60), "trim-sd=0");
}

/// https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-image (translated):
/// "color: checks alpha transparency and trims the transparent part if
/// there is one; then trims the colour given by trim-color within the
/// trim-tol threshold"; "colorunlessalpha: checks whether an alpha channel
/// exists. If it does, trims the transparent part and ends the trim. If
/// there is no alpha channel, trims the colour given by trim-color." So a
/// red picture in a white frame in a transparent frame loses both frames
/// with trim=color and only the transparent one with colorunlessalpha; the
/// same picture without alpha loses its white frame with colorunlessalpha.
#[test]
fn trim_color_and_colorunlessalpha_follow_the_trim_page() {
    let white_framed = framed(&opaque(60, 40, RED), 10, &[255.0, 255.0, 255.0, 255.0]);
    let layered = png(&framed(&white_framed, 5, &[0.0, 0.0, 0.0, 0.0]));
    let color = render(&layered, "trim=color&trim-color=fff&fm=png");
    assert_eq!((color.width, color.height), (60, 40), "trim=color");
    let unless = render(&layered, "trim=colorunlessalpha&trim-color=fff&fm=png");
    assert_eq!(
        (unless.width, unless.height),
        (80, 60),
        "colorunlessalpha with alpha: transparency only"
    );
    let no_alpha = png(&framed(&flat(60, 40, RED), 10, &WHITE));
    let unless = render(&no_alpha, "trim=colorunlessalpha&trim-color=fff&fm=png");
    assert_eq!(
        (unless.width, unless.height),
        (60, 40),
        "colorunlessalpha without alpha: the colour"
    );
}

/// https://docs.imgix.com/apis/rendering/trim/trim-alpha: "The trim-alpha
/// parameter defines which color to trim when trim=alpha is used. It is
/// ignored otherwise. Valid values for trim-alpha are between 0 (fully
/// transparent) to 255 (fully opaque). Detected alpha below the provided
/// value will be trimmed from the asset." So a frame of alpha 100 is
/// trimmed with trim-alpha=101, kept with trim-alpha=100 (not below it),
/// and trim-alpha does nothing with trim=auto on an opaque image.
#[test]
fn trim_alpha_trims_alpha_below_its_value() {
    let original = png(&framed(
        &opaque(60, 40, RED),
        10,
        &[255.0, 255.0, 255.0, 100.0],
    ));
    let above = render(&original, "trim=alpha&trim-alpha=101&fm=png");
    assert_eq!((above.width, above.height), (60, 40), "trim-alpha=101");
    let equal = render(&original, "trim=alpha&trim-alpha=100&fm=png");
    assert_eq!((equal.width, equal.height), (80, 60), "trim-alpha=100");
    let blue = png(&framed(&flat(60, 40, RED), 10, &BLUE));
    let ignored = render(&blue, "trim=auto&trim-alpha=255&fm=png");
    let plain = render(&blue, "trim=auto&fm=png");
    assert_eq!(
        (ignored.width, ignored.height),
        (plain.width, plain.height),
        "trim-alpha is ignored with trim=auto"
    );
}

// === stylize ===

/// https://docs.imgix.com/apis/url/stylize/duotone: "the first color is
/// mapped to the darker parts of the image, and the second to the lighter
/// parts"; duotone-alpha: "The default value is 100, which makes the duotone
/// fully opaque".
#[test]
fn duotone_maps_dark_to_the_first_colour() {
    let black_and_white =
        VipsImage::arrayjoin(&[flat(20, 20, [0.0, 0.0, 0.0]), flat(20, 20, WHITE)]).unwrap();
    let original = png(&black_and_white);
    let toned = render(&original, "duotone=ff0000,0000ff&fm=png");
    assert_colour(rgb(&toned.data, 10, 10), RED, "dark to the first colour");
    assert_colour(rgb(&toned.data, 30, 10), BLUE, "light to the second");
    let faint = render(&original, "duotone=ff0000,0000ff&duotone-alpha=0&fm=png");
    assert_colour(
        rgb(&faint.data, 10, 10),
        [0.0, 0.0, 0.0],
        "alpha 0: original",
    );
}

/// https://docs.imgix.com/apis/url/stylize/monochrome: "Applies an overall
/// monochromatic hue change"; "The 'A' in a 4- or 8-digit hex value
/// represents the color's alpha transparency and therefore the intensity of
/// the monochromatic transformation." A neutral colour leaves no hue.
#[test]
fn monochrome_removes_hue() {
    let original = png(&quadrants(40, 40));
    let grey = render(&original, "monochrome=ffffff&fm=png");
    for (x, y) in [(5, 5), (35, 5), (5, 35)] {
        let [r, g, b] = rgb(&grey.data, x, y);
        assert!(
            (r - g).abs() <= 2.0 && (g - b).abs() <= 2.0,
            "({x},{y}): {r} {g} {b}"
        );
    }
    let none = render(&original, "monochrome=00ffffff&fm=png");
    assert_colour(rgb(&none.data, 5, 5), RED, "alpha 0: no change");
}

// === overlays ===

/// The box around the dark pixels (first band below 128) of the decoded
/// output: (left, top, right, bottom), inclusive.
fn ink_box(data: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let image = decode(data).extract_band(0).unwrap();
    let (width, height) = (image.get_width() as u32, image.get_height() as u32);
    let pixels = image.cast(BandFormat::Uchar).unwrap().write_to_memory();
    let mut found: Option<(u32, u32, u32, u32)> = None;
    for y in 0..height {
        for x in 0..width {
            if pixels[(y * width + x) as usize] < 128 {
                found = Some(match found {
                    None => (x, y, x, y),
                    Some((l, t, r, b)) => (l.min(x), t.min(y), r.max(x), b.max(y)),
                });
            }
        }
    }
    found
}

fn render_with(input: RenderInput<'_>, query: &str) -> Derivative {
    render_image(&input, &plan(query), &limits()).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// https://docs.imgix.com/apis/url/watermark/mark: "Adds a watermark to the
/// bottom right-hand corner of the image. The watermark is given a 5 pixel
/// gap from the edge of the image." https://docs.imgix.com/apis/url/watermark/mark-align:
/// "If no value is explicitly set, the default behavior is bottom,right."
/// https://docs.imgix.com/apis/url/watermark/mark-w: "When the value is a
/// float between 0.0 and 1.0, the value is interpreted as a ratio to the
/// source width of the watermark ... When the mark-w parameter is set to 0.5,
/// the watermark will be displayed at half of its source width."
/// https://docs.imgix.com/apis/url/watermark/mark-fit: crop "The resulting
/// image will match the width and height constraints".
#[test]
fn watermark_follows_the_mark_pages() {
    let base = png(&flat(200, 100, GREEN));
    let mark = png(&flat(40, 20, RED));
    let input = RenderInput {
        original: &base,
        watermark: Some(&mark),
        ..RenderInput::default()
    };
    // 40 × 20 at the bottom right, 5 px in: x 155..195, y 75..95.
    let marked = render_with(input, "mark=/m.png&fm=png");
    assert_colour(rgb(&marked.data, 156, 76), RED, "mark's top left");
    assert_colour(rgb(&marked.data, 194, 94), RED, "mark's bottom right");
    assert_colour(rgb(&marked.data, 197, 97), GREEN, "the 5 px gap");
    assert_colour(rgb(&marked.data, 150, 80), GREEN, "left of the mark");
    let m_alias = render_with(input, "m=/m.png&fm=png");
    assert_eq!(m_alias.data, marked.data, "m is mark's alias");
    let top_left = render_with(input, "mark=/m.png&mark-align=top,left&fm=png");
    assert_colour(rgb(&top_left.data, 6, 6), RED, "top,left");
    assert_colour(rgb(&top_left.data, 2, 2), GREEN, "5 px from the corner");
    // Half the watermark's own width: 20 × 10, x 175..195, y 85..95.
    let half = render_with(input, "mark=/m.png&mark-w=0.5&fm=png");
    assert_colour(rgb(&half.data, 176, 86), RED, "half-size mark");
    assert_colour(rgb(&half.data, 170, 90), GREEN, "half-size mark ends");
    let cropped = render_with(
        input,
        "mark=/m.png&mark-w=30&mark-h=30&mark-fit=crop&fm=png",
    );
    assert_colour(rgb(&cropped.data, 166, 66), RED, "30 × 30 crop");
    assert_colour(rgb(&cropped.data, 162, 62), GREEN, "outside the crop");
}

/// https://docs.imgix.com/apis/url/blending/blend: "The default blend mode is
/// overlay." https://docs.imgix.com/apis/url/blending/blend-mode: normal
/// "Turns off blending, causing the overlay to be superimposed"; multiply:
/// "Multiplying with black as the blend color will result in black;
/// multiplying with white will leave the image unchanged."
#[test]
fn blend_modes_follow_the_blend_mode_page() {
    let original = png(&quadrants(40, 40));
    let bytes = |query: &str| render(&original, query).data;
    assert_eq!(
        bytes("blend=ff8000&fm=png"),
        bytes("blend=ff8000&blend-mode=overlay&fm=png"),
        "overlay is the default"
    );
    let black = bytes("blend=000000&blend-mode=multiply&fm=png");
    for (x, y) in [(5, 5), (35, 5), (5, 35), (35, 35)] {
        assert_colour(rgb(&black, x, y), [0.0; 3], "multiply by black");
    }
    let white = bytes("blend=ffffff&blend-mode=multiply&fm=png");
    assert_colour(rgb(&white, 5, 5), RED, "multiply by white");
    assert_colour(rgb(&white, 35, 35), WHITE, "multiply by white");
    let normal = bytes("blend=0000ff&blend-mode=normal&fm=png");
    assert_colour(rgb(&normal, 5, 5), BLUE, "superimposed");
    let none = bytes("blend=0000ff&blend-mode=normal&blend-alpha=0&fm=png");
    assert_colour(rgb(&none, 5, 5), RED, "blend-alpha=0");
}

/// https://docs.imgix.com/apis/url/blending/blend-align: "If no value is
/// explicitly set, the default behavior is center,middle."
/// https://docs.imgix.com/apis/url/blending/blend-w: "When the value is a
/// float between 0.0 and 1.0, the value is interpreted as a ratio to the
/// resized base image width."
#[test]
fn blended_images_follow_the_blend_align_and_width_pages() {
    let base = png(&flat(200, 100, GREEN));
    let layer = png(&flat(40, 20, RED));
    let input = RenderInput {
        original: &base,
        blend: Some(&layer),
        ..RenderInput::default()
    };
    // 40 × 20 in the centre: x 80..120, y 40..60.
    let centred = render_with(input, "blend=/l.png&blend-mode=normal&fm=png");
    assert_colour(rgb(&centred.data, 100, 50), RED, "centre");
    assert_colour(rgb(&centred.data, 5, 5), GREEN, "not at the top left");
    let top_left = render_with(
        input,
        "blend=/l.png&blend-mode=normal&blend-align=top,left&fm=png",
    );
    assert_colour(rgb(&top_left.data, 5, 5), RED, "top,left");
    // Half the base's width: 100 × 50, centred at x 50..150, y 25..75.
    let wide = render_with(input, "blend=/l.png&blend-mode=normal&blend-w=0.5&fm=png");
    assert_colour(rgb(&wide.data, 55, 30), RED, "half the base wide");
    assert_colour(rgb(&wide.data, 45, 30), GREEN, "outside it");
}

/// https://docs.imgix.com/apis/url/blending/blend-x: blend-x "Positions the
/// overlay layer horizontally, measured from the left edge of the base
/// image in pixels. The default value is 0" (blend-y likewise from the top
/// edge, https://docs.imgix.com/apis/rendering/blending/blend-y-position).
/// https://docs.imgix.com/ja-JP/apis/rendering/blending/blend-padding
/// (translated): blend-pad "sets the number of pixels of space around the
/// overlay image when blend-align is set".
#[test]
fn blend_position_and_padding_follow_the_blend_x_and_blend_pad_pages() {
    let base = png(&flat(200, 100, GREEN));
    let layer = png(&flat(40, 20, RED));
    let input = RenderInput {
        original: &base,
        blend: Some(&layer),
        ..RenderInput::default()
    };
    // Its top left at (30, 10): x 30..70, y 10..30.
    let placed = render_with(
        input,
        "blend=/l.png&blend-mode=normal&blend-x=30&blend-y=10&fm=png",
    );
    assert_colour(rgb(&placed.data, 32, 12), RED, "just inside (30, 10)");
    assert_colour(rgb(&placed.data, 68, 28), RED, "just inside its far corner");
    assert_colour(rgb(&placed.data, 27, 20), GREEN, "left of x 30");
    assert_colour(rgb(&placed.data, 50, 7), GREEN, "above y 10");
    assert_colour(rgb(&placed.data, 73, 20), GREEN, "right of x 70");
    // Aligned top left, 15 px of space around it: x 15..55, y 15..35.
    let padded = render_with(
        input,
        "blend=/l.png&blend-mode=normal&blend-align=top,left&blend-pad=15&fm=png",
    );
    assert_colour(rgb(&padded.data, 17, 17), RED, "just inside (15, 15)");
    assert_colour(rgb(&padded.data, 12, 25), GREEN, "in the left padding");
    assert_colour(rgb(&padded.data, 30, 12), GREEN, "in the top padding");
}

/// https://docs.imgix.com/apis/url/text/txt: "The txt parameter has the
/// following defaults if none of the other text parameters are set:
/// Position: Lower right corner ... Size: 12px; Color: #000 (Opaque Black);
/// Padding: 10px". https://docs.imgix.com/ja-JP/apis/rendering/text/text-align:
/// left/center/right and top/middle/bottom, "The default is bottom,right".
#[test]
fn text_follows_the_txt_pages() {
    let base = png(&flat(200, 100, WHITE));
    let text = render(&base, "txt=Hi&fm=png");
    let (left, top, right, bottom) = ink_box(&text.data).expect("text is drawn");
    assert!(
        (180..=190).contains(&right),
        "10 px from the right: {right}"
    );
    assert!(
        (78..=90).contains(&bottom),
        "10 px from the bottom: {bottom}"
    );
    assert!(bottom - top <= 14, "12 px text: {top}..{bottom}");
    assert!(left > 150, "short text stays right: {left}");
    let darkest = decode(&text.data).extract_band(0).unwrap().min().unwrap();
    assert!(darkest < 60.0, "black text: {darkest}");
    let t_alias = render(&base, "t=Hi&fm=png");
    assert_eq!(t_alias.data, text.data, "t is txt's alias");
    let top_left = render(&base, "txt=Hi&txt-align=top,left&fm=png");
    let (left, top, _, _) = ink_box(&top_left.data).unwrap();
    assert!((10..=15).contains(&left), "10 px from the left: {left}");
    assert!((10..=18).contains(&top), "10 px from the top: {top}");
    let padded = render(&base, "txt=Hi&txt-pad=30&fm=png");
    let (_, _, right, bottom) = ink_box(&padded.data).unwrap();
    assert!((160..=170).contains(&right), "txt-pad=30: {right}");
    assert!((58..=70).contains(&bottom), "txt-pad=30: {bottom}");
    let big = render(&base, "txt=Hi&txt-size=40&fm=png");
    let (_, top, _, bottom) = ink_box(&big.data).unwrap();
    assert!(bottom - top >= 25, "40 px text is taller: {top}..{bottom}");
    let red = render(&base, "txt=Hi&txt-color=ff0000&txt-size=40&fm=png");
    let image = decode(&red.data);
    let (r, g) = (
        image.extract_band(0).unwrap().min().unwrap(),
        image.extract_band(1).unwrap().min().unwrap(),
    );
    assert!(r > 200.0 && g < 60.0, "red text: min r {r}, min g {g}");
}

// === orientation ===

/// https://docs.imgix.com/ja-JP/apis/rendering/rotation/orientation (translated):
/// orient overrides the EXIF orientation with "a value from 1 to 8 (following
/// the Exif format), or the degree aliases 90, 180, 270, where 90 is 6, 180
/// is 3 and 270 is 8"; orient "also rotates the frame".
#[test]
fn orient_follows_the_orientation_page() {
    let original = png(&quadrants(200, 100));
    let bytes = |query: &str| render(&original, &format!("{query}&fm=png")).data;
    for (degrees, exif) in [(90, 6), (180, 3), (270, 8)] {
        assert_eq!(
            bytes(&format!("orient={degrees}")),
            bytes(&format!("orient={exif}")),
            "orient={degrees} is {exif}"
        );
        assert_eq!(
            bytes(&format!("or={degrees}")),
            bytes(&format!("orient={exif}")),
            "or is orient's alias"
        );
    }
    let turned = bytes("orient=6");
    let image = decode(&turned);
    assert_eq!(
        (image.get_width(), image.get_height()),
        (100, 200),
        "frame turns"
    );
    // EXIF 6: rotate 90° clockwise to view; the bottom-left blue lands top left.
    assert_colour(rgb(&turned, 10, 10), BLUE, "orient=6 turns clockwise");
    let upside_down = bytes("orient=3");
    assert_colour(rgb(&upside_down, 10, 10), WHITE, "orient=3 turns 180°");
}

/// https://docs.imgix.com/apis/url/rotation/flip (spec: "Flips an image on a
/// specified axis", values h, v, hv).
#[test]
fn flip_mirrors_on_its_axis() {
    let original = png(&quadrants(200, 100));
    let flipped = |axis: &str| render(&original, &format!("flip={axis}&fm=png")).data;
    assert_colour(rgb(&flipped("h"), 10, 10), GREEN, "flip=h");
    assert_colour(rgb(&flipped("v"), 10, 10), BLUE, "flip=v");
    assert_colour(rgb(&flipped("hv"), 10, 10), WHITE, "flip=hv");
}

// === adjust and stylize ===

/// The mean of band `band` of the decoded output.
fn band_mean(data: &[u8], band: i32) -> f64 {
    decode(data).extract_band(band).unwrap().avg().unwrap()
}

/// The standard deviation of the decoded output's first band.
fn deviation(data: &[u8]) -> f64 {
    decode(data).extract_band(0).unwrap().deviate().unwrap()
}

/// imgix publishes no curves for its adjustments, only what each does and
/// its default (imgix-url-params v11.35.0, the spec each page links, e.g.
/// https://docs.imgix.com/apis/rendering/adjustment/brightness "Adjusts the
/// brightness of the source image", default 0). So this checks that the
/// default changes nothing and that each moves the image the way its name
/// says: bri/exp/gam/shad brighter, high darker highlights, con spreads
/// tones, sat/vib more colourful (less when negative), sharp/usm more
/// detail, blur ("Applies a gaussian blur") less.
#[test]
fn adjustments_move_the_image_the_documented_way() {
    let original = png(&photo(96, 64));
    let bytes = |query: &str| render(&original, &format!("{query}&fm=png")).data;
    let plain = bytes("w=96");
    let mean = band_mean(&plain, 0);
    for neutral in [
        "bri=0",
        "con=0",
        "exp=0",
        "gam=0",
        "high=0",
        "shad=0",
        "sat=0",
        "vib=0",
        "hue=0",
        "sharp=0",
        "usm=0",
        "blur=0",
        "px=0",
        "sepia=0",
        "invert=false",
    ] {
        assert_eq!(
            bytes(&format!("w=96&{neutral}")),
            plain,
            "{neutral} is neutral"
        );
    }
    assert!(band_mean(&bytes("bri=50"), 0) > mean + 10.0, "bri up");
    assert!(band_mean(&bytes("bri=-50"), 0) < mean - 10.0, "bri down");
    assert!(band_mean(&bytes("exp=50"), 0) > mean + 10.0, "exp up");
    assert!(band_mean(&bytes("exp=-50"), 0) < mean - 10.0, "exp down");
    assert!(band_mean(&bytes("gam=50"), 0) > mean, "gam up");
    assert!(band_mean(&bytes("shad=80"), 0) > mean, "shad lifts");
    assert!(band_mean(&bytes("high=-80"), 0) < mean, "high pulls down");
    let spread = deviation(&plain);
    assert!(deviation(&bytes("con=60")) > spread, "con up");
    assert!(deviation(&bytes("con=-60")) < spread, "con down");
    assert!(deviation(&bytes("sharp=80")) > spread, "sharp");
    assert!(deviation(&bytes("usm=80")) > spread, "usm");
    assert!(deviation(&bytes("blur=200")) < spread / 2.0, "blur");
    // Colour: red minus blue (the photo is warm).
    let warmth = |data: &[u8]| band_mean(data, 0) - band_mean(data, 2);
    let base = warmth(&plain);
    assert!(warmth(&bytes("sat=60")) > base, "sat up");
    assert!(warmth(&bytes("sat=-60")) < base, "sat down");
    assert!(warmth(&bytes("vib=60")) > base, "vib up");
}

/// https://docs.imgix.com/apis/rendering/adjustment/unsharp-mask-radius
/// (its text could not be read; the spec it links, imgix-url-params
/// v11.35.0): usmrad "Specifies the radius for an unsharp mask operation",
/// default 2.5, and depends on usm. So usm alone is usm with usmrad=2.5, and
/// a wider radius reaches further from an edge: 6 px from a dark/light edge
/// a radius of 1 leaves the dark side as it was, a radius of 10 darkens it.
#[test]
fn usm_radius_follows_the_spec() {
    let dark = flat(40, 40, [64.0, 64.0, 64.0]);
    let light = flat(40, 40, [192.0, 192.0, 192.0]);
    let original = png(&VipsImage::arrayjoin(&[dark, light]).unwrap());
    assert_eq!(
        render(&original, "usm=100&fm=png").data,
        render(&original, "usm=100&usmrad=2.5&fm=png").data,
        "the default radius is 2.5"
    );
    let narrow = render(&original, "usm=100&usmrad=1&fm=png");
    let wide = render(&original, "usm=100&usmrad=10&fm=png");
    let [near, ..] = rgb(&narrow.data, 34, 20);
    let [far, ..] = rgb(&wide.data, 34, 20);
    assert!(
        (near - 64.0).abs() <= 2.0,
        "radius 1 does not reach 6 px: {near}"
    );
    assert!(far < 60.0, "radius 10 does: {far}");
}

/// https://docs.imgix.com/apis/rendering/adjustment/invert: "Inverts the
/// colors on the source image" (alias inv); …/adjustment/hue-shift "Adjusts
/// the hue", in degrees 0–360; …/stylize/pixellate "Applies a pixelation
/// effect"; …/stylize/sepia-tone "Applies a sepia effect".
#[test]
fn invert_hue_pixellate_and_sepia() {
    let original = png(&quadrants(40, 40));
    let bytes = |query: &str| render(&original, &format!("{query}&fm=png")).data;
    let inverted = bytes("invert=true");
    assert_colour(rgb(&inverted, 5, 5), [0.0, 255.0, 255.0], "red inverted");
    assert_colour(rgb(&inverted, 35, 35), [0.0; 3], "white inverted");
    assert_eq!(bytes("inv=true"), inverted, "inv is invert's alias");
    // Half a turn of hue takes red towards its complement.
    let [r, g, b] = rgb(&bytes("hue=180"), 5, 5);
    assert!(g > r && b > r, "hue=180 on red: {r} {g} {b}");
    assert_eq!(bytes("hue=360"), bytes("hue=0"), "a full turn");
    // Blocks of 10: a 40 × 40 ramp becomes 4 flat columns.
    let ramp = {
        let x = VipsImage::xyz(40, 40).unwrap().extract_band(0).unwrap();
        let grey = x
            .linear(&[6.0], &[0.0])
            .unwrap()
            .cast(BandFormat::Uchar)
            .unwrap();
        png(&VipsImage::bandjoin(&[grey.copy().unwrap(), grey.copy().unwrap(), grey]).unwrap())
    };
    let blocks = render(&ramp, "px=10&fm=png").data;
    let row = |x: i32| rgb(&blocks, x, 20)[0];
    assert!((row(0) - row(9)).abs() < 2.0, "one block");
    assert!((row(10) - row(9)).abs() > 20.0, "the next block");
    let grey = png(&flat(20, 20, [128.0, 128.0, 128.0]));
    let [r, g, b] = rgb(&render(&grey, "sepia=100&fm=png").data, 10, 10);
    assert!(r > g && g > b, "sepia warms grey: {r} {g} {b}");
}

/// https://docs.imgix.com/apis/url/watermark/marky: mark-y "Defines the
/// y-position of the watermark in relation to the top-most edge of the base
/// image" and "will overwrite mark-align=top, mark-align=middle,
/// mark-align=bottom, and mark-pad (in the vertical direction) if set" (mark-x
/// likewise, horizontally); mark-alpha (spec: "Changes the alpha of the
/// watermark image", default 100).
#[test]
fn watermark_position_and_alpha() {
    let base = png(&flat(200, 100, GREEN));
    let mark = png(&flat(40, 20, RED));
    let input = RenderInput {
        original: &base,
        watermark: Some(&mark),
        ..RenderInput::default()
    };
    // 40 × 20 at (10, 20), whatever mark-align and mark-pad say.
    let placed = render_with(
        input,
        "mark=/m.png&mark-x=10&mark-y=20&mark-align=bottom,right&mark-pad=30&fm=png",
    );
    assert_colour(rgb(&placed.data, 11, 21), RED, "mark-x/mark-y");
    assert_colour(rgb(&placed.data, 48, 38), RED, "mark-x/mark-y, far corner");
    assert_colour(rgb(&placed.data, 8, 18), GREEN, "before mark-x/mark-y");
    let faint = render_with(input, "mark=/m.png&mark-alpha=50&fm=png");
    let [r, g, b] = rgb(&faint.data, 175, 85);
    assert!(
        (100.0..160.0).contains(&r) && (100.0..160.0).contains(&g) && b < 10.0,
        "half-transparent red over green: {r} {g} {b}"
    );
    let opaque = render_with(input, "mark=/m.png&mark-alpha=100&fm=png");
    let default = render_with(input, "mark=/m.png&fm=png");
    assert_eq!(opaque.data, default.data, "mark-alpha defaults to 100");
}

/// https://docs.imgix.com/apis/url/text/txt-fit: "With no fit mode, the text
/// will be clipped if it exceeds the contraints of the text bounds. With
/// txt-fit=max, the text will be scaled down to fit within the bounds rather
/// than clipping the text contents." "The txt-pad and txt-width parameters
/// are used to control the bounding region."
#[test]
fn text_fit_max_shrinks_instead_of_clipping() {
    let base = png(&flat(200, 100, WHITE));
    let long = "txt=WWWWWWWWWWWWWWWWWWWW&txt-size=40&txt-align=middle,center";
    let clipped = ink_box(&render(&base, &format!("{long}&fm=png")).data).unwrap();
    let fitted = ink_box(&render(&base, &format!("{long}&txt-fit=max&fm=png")).data).unwrap();
    for (left, _, right, _) in [clipped, fitted] {
        assert!(
            left >= 10 && right <= 190,
            "inside the bounds: {left}..{right}"
        );
    }
    let height = |(_, top, _, bottom): (u32, u32, u32, u32)| bottom - top;
    assert!(
        height(fitted) * 2 < height(clipped),
        "scaled down: {} vs {}",
        height(fitted),
        height(clipped)
    );
    // A narrower txt-width bounds the text further.
    let narrow =
        ink_box(&render(&base, &format!("{long}&txt-fit=max&txt-width=100&fm=png")).data).unwrap();
    assert!(narrow.2 - narrow.0 <= 100, "txt-width=100: {narrow:?}");
}

// === audit rows added later ===

/// https://docs.imgix.com/ja-JP/apis/rendering/border-and-padding/border-size-color
/// (the page's text, translated): border "draws a border of the given width
/// and colour around the image. The border overlaps the image without
/// resizing it"; "There are four additional parameters to adjust the border
/// size of each side of the image. The border parameter must be set for
/// these additional parameters to take effect."
/// https://docs.imgix.com/apis/url/border-and-padding/border-left: "Adjusts
/// the left border of an image when border is applied."
#[test]
fn border_overlaps_the_image_without_resizing_it() {
    // 200 × 100: red | green over blue | white.
    let original = png(&quadrants(200, 100));
    let framed = render(&original, "border=5,0000ff&fm=png");
    assert_eq!((framed.width, framed.height), (200, 100), "not resized");
    assert_colour(rgb(&framed.data, 2, 20), BLUE, "border over the left edge");
    assert_colour(
        rgb(&framed.data, 197, 20),
        BLUE,
        "border over the right edge",
    );
    assert_colour(rgb(&framed.data, 50, 2), BLUE, "border over the top edge");
    assert_colour(rgb(&framed.data, 7, 7), RED, "the image inside the border");
    assert_colour(
        rgb(&framed.data, 193, 7),
        GREEN,
        "the image keeps its place",
    );
    let left = render(&original, "border=5,0000ff&border-left=20&fm=png");
    assert_eq!((left.width, left.height), (200, 100), "not resized");
    assert_colour(
        rgb(&left.data, 17, 20),
        BLUE,
        "border-left widens the left side",
    );
    assert_colour(rgb(&left.data, 23, 20), RED, "the image after it");
    assert_colour(
        rgb(&left.data, 197, 20),
        BLUE,
        "other sides keep border's width",
    );
    let alone = render(&original, "border-left=20&fm=png");
    assert_colour(rgb(&alone.data, 2, 20), RED, "border-left without border");
}

/// https://docs.imgix.com/apis/rendering/rotation/rotation-type: rot-type
/// "Controls the type of rotation applied when rot is set. Valid values are:
/// pivot: Displays the entire image without cropping; straighten:
/// Straightens the image by zooming in and cropping in". The spec (which
/// the page links): default straighten.
#[test]
fn rotation_type_follows_the_rot_type_page() {
    let original = png(&flat(200, 100, RED));
    // Straighten (the default): zoomed in and cropped, so the frame is kept
    // and no corner of the canvas is uncovered.
    let straight = render(&original, "rot=30&fm=png");
    assert_eq!(
        render(&original, "rot=30&rot-type=straighten&fm=png").data,
        straight.data,
        "straighten is the default"
    );
    assert_eq!((straight.width, straight.height), (200, 100));
    // (2 px in: the zoom may leave the outermost pixel anti-aliased.)
    for (x, y) in [(2, 2), (197, 2), (2, 97), (197, 97)] {
        let point = decode(&straight.data).getpoint(x, y).unwrap();
        assert!(
            point.len() == 3 || point[3] > 250.0,
            "corner ({x}, {y}) covered"
        );
        assert_colour([point[0], point[1], point[2]], RED, "straightened corner");
    }
    // Pivot: the entire image, so the canvas holds the whole rotated
    // rectangle — at 30°, 200·cos 30° + 100·sin 30° ≈ 223 wide and
    // 200·sin 30° + 100·cos 30° ≈ 187 high — and its corners are not image.
    let pivot = render(&original, "rot=30&rot-type=pivot&fm=png");
    assert!(
        pivot.width >= 223 && pivot.height >= 186,
        "the whole image fits: {}×{}",
        pivot.width,
        pivot.height
    );
    let corner = decode(&pivot.data).getpoint(0, 0).unwrap();
    assert_eq!(corner.len(), 4, "the uncovered corners are transparent");
    assert_eq!(corner[3], 0.0, "corner outside the rotated image");
    let centre = rgb(&pivot.data, pivot.width as i32 / 2, pivot.height as i32 / 2);
    assert_colour(centre, RED, "the image in the middle");
}

/// https://docs.imgix.com/apis/rendering/watermark/mark-tile: "Tiles the
/// watermark on top of the image in the requested pattern"; "The watermark
/// family of parameters are used to place a single mark in a specific
/// location. The watermark is then tiled in a grid pattern around the single
/// mark. Note: If mark-align is not set, the default top, left will be used
/// for a tiled watermark. This is different from the default bottom, right
/// for a single mark." "mark-tile=grid Default. Tiles the watermark in a grid
/// on top of the entire image." The mark page: "a 5 pixel gap from the edge".
/// (How far apart the tiles are is not published; these points hold for
/// any spacing of at least the mark-pad gap used here.)
#[test]
fn watermark_tiles_around_the_single_mark() {
    let base = png(&flat(200, 100, GREEN));
    let mark = png(&flat(20, 10, RED));
    let input = RenderInput {
        original: &base,
        watermark: Some(&mark),
        ..RenderInput::default()
    };
    // The single mark at top, left, 5 px in: x 5..25, y 5..15.
    let tiled = render_with(input, "mark=/m.png&mark-tile=grid&fm=png");
    assert_colour(rgb(&tiled.data, 6, 6), RED, "the single mark at top, left");
    assert_colour(
        rgb(&tiled.data, 24, 14),
        RED,
        "the single mark's far corner",
    );
    assert_colour(
        rgb(&tiled.data, 2, 2),
        GREEN,
        "the 5 px gap from the corner",
    );
    let red_share = decode(&tiled.data)
        .extract_band(0)
        .unwrap()
        .relational_const(OperationRelational::More, &[128.0])
        .unwrap()
        .avg()
        .unwrap()
        / 255.0;
    assert!(red_share > 0.3, "tiles cover the entire image: {red_share}");
    let bottom_right = decode(&tiled.data)
        .extract_area(100, 50, 100, 50)
        .unwrap()
        .extract_band(0)
        .unwrap()
        .max()
        .unwrap();
    assert!(bottom_right > 250.0, "tiles reach the far corner");
    // With mark-align=bottom,right the single mark is at x 175..195,
    // y 85..95 and the grid is around it.
    let aligned = render_with(
        input,
        "mark=/m.png&mark-tile=grid&mark-align=bottom,right&fm=png",
    );
    assert_colour(rgb(&aligned.data, 176, 86), RED, "the single mark");
    assert_colour(
        rgb(&aligned.data, 194, 94),
        RED,
        "the single mark's far corner",
    );
    assert_colour(
        rgb(&aligned.data, 197, 97),
        GREEN,
        "5 px gap at bottom right",
    );
    assert!(
        decode(&aligned.data)
            .extract_area(0, 0, 100, 50)
            .unwrap()
            .extract_band(0)
            .unwrap()
            .max()
            .unwrap()
            > 250.0,
        "tiles reach the top left"
    );
}

/// https://docs.imgix.com/en-US/apis/rendering/size/crop: entropy "Crops to
/// the busiest area of the image"; edges "Crops to the most edge-dense area
/// of the image". (https://docs.imgix.com/ja-JP/apis/rendering/size/crop-mode:
/// entropy "looks for busy parts of the image", edges "performs edge
/// detection, looking for objects in the image".) A wide original, flat on
/// its left half and detailed on its right, cropped to a square: both keep
/// the detailed half, where the default centred crop keeps half of each.
#[test]
fn content_aware_crops_keep_the_busy_part() {
    // Neutral grey: no saturation and no skin tone, which libvips'
    // attention measure (behind crop=edges) would otherwise weigh.
    let flat_half = flat(200, 200, [128.0, 128.0, 128.0]);
    let busy_half = photo(200, 200);
    let original = png(&VipsImage::arrayjoin(&[flat_half, busy_half]).unwrap());
    let strip_deviation = |data: &[u8]| {
        decode(data)
            .extract_area(0, 0, 40, 200)
            .unwrap()
            .extract_band(0)
            .unwrap()
            .deviate()
            .unwrap()
    };
    let centre = render(&original, "fit=crop&w=200&h=200&fm=png");
    assert!(
        strip_deviation(&centre.data) < 5.0,
        "the centred crop starts in the flat half"
    );
    for crop in ["entropy", "edges"] {
        let cropped = render(
            &original,
            &format!("fit=crop&w=200&h=200&crop={crop}&fm=png"),
        );
        assert_eq!((cropped.width, cropped.height), (200, 200), "{crop}");
        assert!(
            strip_deviation(&cropped.data) > 20.0,
            "crop={crop} keeps the busy half: {}",
            strip_deviation(&cropped.data)
        );
    }
}

/// https://docs.imgix.com/apis/url/fill/fill: "The fill parameter determines
/// how the excess space in an image resized with fit=fill or fit=fillmax
/// should be filled"; "fill=solid Fills the excess space with the solid color
/// specified by the fill-color parameter. If fill-color is not used, the
/// excess space will be white or transparent, depending on whether the image
/// output format supports transparency"; "fill=blur Fills the excess space
/// with a blurred version of the original image. The behavior of fill=blur
/// is identical to the blur parameter but is applied only to the excess
/// space."
#[test]
fn fill_modes_follow_the_fill_page() {
    // 200 × 100 in a 200 × 200 box: the image is y 50..150, the excess
    // space above and below it.
    let original = png(&quadrants(200, 100));
    let query = |fill: &str, fm: &str| format!("fit=fill&w=200&h=200{fill}&fm={fm}");
    let solid_png = render(&original, &query("&fill=solid", "png"));
    assert_eq!((solid_png.width, solid_png.height), (200, 200));
    let excess = decode(&solid_png.data).getpoint(20, 10).unwrap();
    assert_eq!(excess.len(), 4, "PNG supports transparency");
    assert_eq!(excess[3], 0.0, "no fill-color: transparent in PNG");
    let solid_jpeg = render(&original, &query("&fill=solid", "jpg"));
    assert_colour(
        rgb(&solid_jpeg.data, 20, 10),
        WHITE,
        "no fill-color: white in JPEG",
    );
    let blurred = render(&original, &query("&fill=blur", "png"));
    assert_eq!((blurred.width, blurred.height), (200, 200));
    // (The original's bottom right quadrant is white itself.)
    for (x, y) in [(20, 10), (180, 10), (20, 190)] {
        let point = decode(&blurred.data).getpoint(x, y).unwrap();
        assert!(point.len() == 3 || point[3] > 250.0, "({x}, {y}) is filled");
        let white = point[..3].iter().all(|&band| band > 245.0);
        assert!(!white, "({x}, {y}) is image, not white: {point:?}");
    }
    // Blurred: where the original has a hard edge (red | green at x = 100),
    // the excess space passes through values in between.
    let top_row = decode(&blurred.data)
        .extract_area(90, 10, 20, 1)
        .unwrap()
        .extract_band(0)
        .unwrap();
    let reds: Vec<f64> = (0..20)
        .map(|x| top_row.getpoint(x, 0).unwrap()[0])
        .collect();
    assert!(
        reds.iter().any(|&red| red > 40.0 && red < 215.0),
        "the excess space is blurred across the edge: {reds:?}"
    );
    // Only the excess space: the image area is what fill=solid gives.
    assert_colour(
        rgb(&blurred.data, 50, 75),
        RED,
        "image area, top left quadrant",
    );
    assert_colour(
        rgb(&blurred.data, 150, 75),
        GREEN,
        "image area, top right quadrant",
    );
    assert_colour(
        rgb(&blurred.data, 50, 125),
        BLUE,
        "image area, bottom left quadrant",
    );
}

/// https://docs.imgix.com/ja-JP/apis/rendering/rotation/orientation
/// (translated): "By default, when transforming an image, the Exchangeable
/// image file format (Exif) metadata contained in the original image is used
/// to orient the photo correctly. If the original image contains no Exif
/// orientation data, a value of 0 is assumed and the image is not rotated";
/// orient "overrides the Exif orientation metadata".
#[test]
fn exif_orientation_applies_by_default() {
    // Stored 200 × 100 (red | green over blue | white) with Exif
    // orientation 6: shown rotated 90° clockwise, 100 × 200, blue top left.
    let mut stored = quadrants(200, 100);
    stored.set_int("orientation", 6).unwrap();
    let original = stored
        .jpegsave_buffer_with_opts(VOption::new().set("Q", 95))
        .unwrap();
    let shown = render(&original, "fm=png");
    assert_eq!(
        (shown.width, shown.height),
        (100, 200),
        "Exif 6 turns the frame"
    );
    assert_colour(
        rgb(&shown.data, 10, 10),
        BLUE,
        "Exif 6: bottom left comes to the top left",
    );
    assert_colour(
        rgb(&shown.data, 90, 10),
        RED,
        "Exif 6: top left comes to the top right",
    );
    // orient overrides it: orient=1 shows the pixels as stored.
    let stored_way = render(&original, "orient=1&fm=png");
    assert_eq!(
        (stored_way.width, stored_way.height),
        (200, 100),
        "orient=1 overrides"
    );
    assert_colour(rgb(&stored_way.data, 10, 10), RED, "as stored");
    // No Exif orientation: not rotated.
    let plain = render(&jpeg(&quadrants(200, 100)), "fm=png");
    assert_eq!(
        (plain.width, plain.height),
        (200, 100),
        "no Exif: not rotated"
    );
    assert_colour(rgb(&plain.data, 10, 10), RED, "no Exif: as stored");
}

/// https://docs.imgix.com/apis/url/size/fit: "fit=min: Resizes and crops the
/// image to match the aspect ratio of the requested width and height. Will
/// not exceed the original width and height of the image." (The page's
/// sentence, as the imgix-rs client quotes it in its `ImgixFit::Min`
/// documentation.) So the output has the box's aspect ratio and is never
/// larger than the 300×200 original: a 1:1 box gives the largest square
/// inside it (200×200), a smaller box is met exactly, and a 3:1 box wider
/// than the original gives the widest 3:1 region it holds (300×100).
#[test]
fn fit_min_follows_the_fit_page() {
    let original = png(&photo(300, 200));
    let cases: &[(&str, (u32, u32))] = &[
        ("fit=min&w=400&h=400", (200, 200)),
        ("fit=min&w=100&h=50", (100, 50)),
        ("fit=min&w=600&h=200", (300, 100)),
        ("fit=min&w=150&h=300", (100, 200)),
    ];
    for (query, expected) in cases {
        assert_eq!(size(&original, query), *expected, "{query}");
    }
}

/// https://docs.imgix.com/apis/rendering/rotation/rot: "Valid values are in
/// the range 0–359, and rotation is counter-clockwise with 0 (the default)
/// at the top of the image. The image will be zoomed after rotation so that
/// it covers the entire specified dimensions (unlike orient, which keeps the
/// image at the same zoom setting and rotates the frame along with the
/// image)." So rot=90 keeps a 200×100 frame (no axes swap, unlike
/// orient=90), covered by the turned image; counter-clockwise, the original's
/// top edge (red) ends on the left and its bottom edge (green) on the right.
/// With rot-type=pivot ("Displays the entire image without cropping",
/// https://docs.imgix.com/apis/rendering/rotation/rotation-type) the whole
/// turned image is shown: 100×200, red on the left half, green on the right.
#[test]
fn rotation_follows_the_rot_page() {
    let original = png(&VipsImage::arrayjoin_with_opts(
        &[flat(200, 50, RED), flat(200, 50, GREEN)],
        VOption::new().set("across", 1),
    )
    .unwrap());
    let turned = render(&original, "rot=90&fm=png");
    assert_eq!(
        (turned.width, turned.height),
        (200, 100),
        "the frame is kept"
    );
    assert_colour(rgb(&turned.data, 20, 50), RED, "the top edge turned left");
    assert_colour(
        rgb(&turned.data, 180, 50),
        GREEN,
        "the bottom edge turned right",
    );
    for (x, y) in [(2, 2), (197, 2), (2, 97), (197, 97)] {
        let point = decode(&turned.data).getpoint(x, y).unwrap();
        assert!(
            point.len() == 3 || point[3] > 250.0,
            "corner ({x}, {y}) covered"
        );
    }
    let oriented = render(&original, "orient=90&fm=png");
    assert_eq!(
        (oriented.width, oriented.height),
        (100, 200),
        "orient turns the frame with the image"
    );
    let pivot = render(&original, "rot=90&rot-type=pivot&fm=png");
    assert_eq!(
        (pivot.width, pivot.height),
        (100, 200),
        "pivot: the whole image"
    );
    assert_colour(
        rgb(&pivot.data, 10, 100),
        RED,
        "pivot: top edge on the left",
    );
    assert_colour(
        rgb(&pivot.data, 90, 100),
        GREEN,
        "pivot: bottom edge on the right",
    );
    let upside_down = render(&original, "rot=180&fm=png");
    assert_eq!((upside_down.width, upside_down.height), (200, 100));
    assert_colour(
        rgb(&upside_down.data, 100, 10),
        GREEN,
        "rot=180: bottom on top",
    );
}

/// https://docs.imgix.com/apis/url/animation: "These parameters allow you to
/// control the animation and quality of your GIFs"; converting to video,
/// "All other parameters are applied before conversion". The frame page
/// (https://docs.imgix.com/apis/url/animation/frame): "The most meaningful
/// fields for animated GIFs are PixelHeight, PixelWidth, and Frames". So an
/// animation stays an animation, every frame resized: a 4-frame 40×30 GIF at
/// w=20 is a 4-frame GIF of 20×15 frames, and as WebP a 4-frame WebP.
#[test]
fn animations_stay_animated_with_every_frame_resized() {
    let levels = [40.0, 80.0, 120.0, 160.0];
    let frames: Vec<VipsImage> = levels
        .iter()
        .map(|&level| flat(40, 30, [level, level, level]))
        .collect();
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap();
    strip.set_int("page-height", 30).unwrap();
    let gif = strip.gifsave_buffer().unwrap();
    for (query, format) in [
        ("w=20", EncodedFormat::Gif),
        ("w=20&fm=webp", EncodedFormat::Webp),
    ] {
        let resized = render(&gif, query);
        assert_eq!(resized.format, format, "{query}");
        let decoded = VipsImage::new_from_buffer(&resized.data, "n=-1").unwrap();
        assert_eq!(decoded.get_int("n-pages").unwrap(), 4, "{query}: Frames");
        assert_eq!(
            (decoded.get_width(), decoded.get_page_height()),
            (20, 15),
            "{query}: PixelWidth × PixelHeight"
        );
        for (frame, level) in levels.iter().enumerate() {
            let top = frame as i32 * decoded.get_page_height();
            let point = decoded.getpoint(5, top + 5).unwrap()[0];
            assert!(
                (point - level).abs() <= 3.0,
                "{query}: frame {frame} is grey {level}, got {point}"
            );
        }
    }
}

/// The spec that https://docs.imgix.com/apis/rendering/watermark/watermark-scale
/// links (imgix-url-params): mark-scale "Adjusts the scale of the watermark
/// image", an integer with a suggested range of 0–100, that depends on
/// `mark`. (The page's own text could not be read, so what 100 is a
/// percentage of is not checked here.) So a larger mark-scale gives a larger
/// mark, and without `mark` it changes nothing.
#[test]
fn mark_scale_follows_the_spec() {
    let base = png(&flat(200, 100, GREEN));
    let mark = png(&flat(40, 20, RED));
    let input = RenderInput {
        original: &base,
        watermark: Some(&mark),
        ..RenderInput::default()
    };
    let width_at = |scale: u32| {
        let marked = render_with(input, &format!("mark=/m.png&mark-scale={scale}&fm=png"));
        // The red box's width: the mark sits at the bottom right.
        let row = decode(&marked.data)
            .extract_area(0, 90, 200, 1)
            .unwrap()
            .extract_band(1)
            .unwrap()
            .cast(BandFormat::Uchar)
            .unwrap()
            .write_to_memory();
        row.iter().filter(|&&green| green < 128).count()
    };
    let (small, large) = (width_at(20), width_at(60));
    assert!(small > 0, "mark-scale=20 shows the mark");
    assert!(
        large > small,
        "mark-scale=60 ({large} px) is wider than 20 ({small} px)"
    );
    assert_eq!(
        render(&base, "mark-scale=60&fm=png").data,
        render(&base, "fm=png").data,
        "mark-scale depends on mark"
    );
}
