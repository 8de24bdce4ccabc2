//! The canvas: padding, borders, rounded corners and `trim`.

use super::*;

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
    crate::pipeline::load::libvips::init().unwrap();
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
    assert_eq!(
        rendered_size(&original, "trim=color&trim-color=fff&fm=png"),
        (60, 40),
        "colour trim"
    );
    assert_eq!(
        rendered_size(&original, "trim=auto&trim-pad=5&fm=png"),
        (70, 50),
        "trim-pad"
    );
    let transparent = test_images::png_of(
        &inner
            .bandjoin_const(&[255.0])
            .unwrap()
            .embed(10, 10, 80, 60)
            .unwrap(),
    );
    assert_eq!(
        rendered_size(&transparent, "trim=alpha&fm=png"),
        (60, 40),
        "alpha trim"
    );
    assert_eq!(
        rendered_size(&test_images::png(50, 50), "trim=auto&fm=png"),
        (50, 50),
        "noisy corners: nothing to trim"
    );
    assert_eq!(
        rendered_size(&original, "trim=auto&w=30&fm=png"),
        (30, 20),
        "sizes apply to the trimmed image"
    );
}
