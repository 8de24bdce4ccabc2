//! Overlays: watermarks (`mark`), text (`txt`) and blends (`blend`).

use super::*;

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
