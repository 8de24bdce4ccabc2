//! Orientation: EXIF orientation, `orient`, `flip`, `rot` and `rot-type`.

use super::*;

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
    assert_eq!(
        rendered_size(&original, "orient=90&fm=png"),
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
