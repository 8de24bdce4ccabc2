//! Adjust and stylize: the tone, colour and detail adjustments, `usm`,
//! `invert`, `hue`, `px`, `sepia`, `duotone` and `monochrome`.

use super::*;

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
