//! Trim: `trim=auto` and `trim=color` with their colour, tolerance, mean
//! and standard deviation, and alpha.

use super::*;

/// https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-color: with
/// trim=color and no trim-color, "trim-color takes the value of the first
/// (top-left) pixel of the source image".
#[test]
fn trim_color_defaults_to_the_top_left_pixel() {
    let original = png(&framed(&flat(60, 40, RED), 10, &WHITE));
    assert_eq!(rendered_size(&original, "trim=color&fm=png"), (60, 40));
    assert_eq!(
        rendered_size(&original, "trim=color&trim-color=fff&fm=png"),
        (60, 40)
    );
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
    let original = png(&framed(&flat(60, 40, RED), 10, &[245.0, 245.0, 245.0]));
    assert_eq!(
        rendered_size(&original, "trim=color&trim-color=fff&fm=png"),
        (80, 60),
        "default 0: only white itself is trimmed"
    );
    assert_eq!(
        rendered_size(&original, "trim=color&trim-color=fff&trim-tol=50&fm=png"),
        (60, 40),
        "trim-tol=50"
    );
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
        assert_eq!(
            rendered_size(original, "trim=auto&trim-color=0f0&fm=png"),
            (60, 40),
            "{name} frame, trim=auto ignores trim-color"
        );
        assert_colour(rgb(&auto.data, 0, 0), RED, "the trimmed corner is content");
    }
    assert_eq!(
        rendered_size(&blue, "trim=color&trim-color=00f&fm=png"),
        (60, 40),
        "trim-color=00f on blue"
    );
    assert_eq!(
        rendered_size(&blue, "trim=color&trim-color=fff&fm=png"),
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
        assert_eq!(rendered_size(&original, query), (60, 40), "{query}");
    }
    let corner = flat(1, 1, [240.0, 240.0, 240.0]);
    let spotted = png(&frame.insert(&corner, 0, 0).unwrap());
    assert_eq!(
        rendered_size(&spotted, "trim=auto&fm=png"),
        (60, 40),
        "default trim-sd=10"
    );
    assert_eq!(
        rendered_size(&spotted, "trim=auto&trim-sd=0&fm=png"),
        (80, 60),
        "trim-sd=0"
    );
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
    assert_eq!(
        rendered_size(&no_alpha, "trim=colorunlessalpha&trim-color=fff&fm=png"),
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
    assert_eq!(
        rendered_size(&original, "trim=alpha&trim-alpha=101&fm=png"),
        (60, 40),
        "trim-alpha=101"
    );
    assert_eq!(
        rendered_size(&original, "trim=alpha&trim-alpha=100&fm=png"),
        (80, 60),
        "trim-alpha=100"
    );
    let blue = png(&framed(&flat(60, 40, RED), 10, &BLUE));
    let ignored = render(&blue, "trim=auto&trim-alpha=255&fm=png");
    let plain = render(&blue, "trim=auto&fm=png");
    assert_eq!(
        (ignored.width, ignored.height),
        (plain.width, plain.height),
        "trim-alpha is ignored with trim=auto"
    );
}
