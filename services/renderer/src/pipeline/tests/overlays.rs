//! Overlays: `mark`, `txt` and `blend`.

use super::*;

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
    crate::pipeline::load::libvips::init().unwrap();
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
