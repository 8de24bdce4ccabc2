//! Adjustments and stylize: tone, colour and detail effects.

use super::*;

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
