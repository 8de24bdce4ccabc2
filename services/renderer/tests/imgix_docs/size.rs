//! Size, fit and crop: docs.imgix.com's size pages (`w`, `h`, `fit`, `dpr`,
//! `ar`, `crop`, `rect`, the focal point, `fill`).

use super::*;

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
