//! Orientation: EXIF orientations, `orient`, `flip` and `rot`.

use super::*;

/// EXIF orientations 1–8 all come out upright, matching libvips' own autorotate.
#[test]
fn exif_orientations_come_out_upright() {
    let upright = test_images::quadrants(80, 40);
    for orientation in 1..=8 {
        let original = test_images::jpeg_stored_for_orientation(&upright, orientation);
        let derivative = render(&original, "fm=png");
        assert_eq!(
            (derivative.width, derivative.height),
            (80, 40),
            "orientation {orientation}"
        );
        for (x, y, colour) in [
            (10, 10, RED),
            (70, 10, GREEN),
            (10, 30, BLUE),
            (70, 30, WHITE),
        ] {
            assert_close(
                &pixel(&derivative.data, x, y),
                &colour,
                12.0,
                &format!("orientation {orientation} at ({x}, {y})"),
            );
        }
        // libvips' autorot agrees with the fixture.
        let autorotated = decode(&original).autorot().unwrap();
        assert_close(
            &autorotated.getpoint(70, 10).unwrap(),
            &GREEN,
            12.0,
            &format!("autorot {orientation}"),
        );
        assert_eq!(
            rendered_size(&original, "w=40&fm=png"),
            (40, 20),
            "orientation {orientation} resized"
        );
    }
}

/// `orient` overrides the file's orientation; its degree aliases turn the frame.
#[test]
fn orient_overrides_exif() {
    let upright = test_images::quadrants(80, 40);
    let tagged = test_images::jpeg_stored_for_orientation(&upright, 6);
    // orient=1 ignores the tag: the stored (turned) pixels come out as they are.
    assert_eq!(rendered_size(&tagged, "orient=1&fm=png"), (40, 80));
    let plain = test_images::png_of(&upright);
    let turned = render(&plain, "or=90&fm=png");
    assert_eq!((turned.width, turned.height), (40, 80));
    // EXIF 6 turns clockwise: the top-left red ends up top right.
    assert_close(&pixel(&turned.data, 30, 10), &RED, 2.0, "or=90");
    let flipped = render(&plain, "orient=2&fm=png");
    assert_close(
        &pixel(&flipped.data, 10, 10),
        &GREEN,
        2.0,
        "orient=2 mirrors",
    );
}

/// flip=h, v and hv mirror the image.
#[test]
fn flips() {
    let original = png_quadrants();
    let cases = [("h", GREEN), ("v", BLUE), ("hv", WHITE)];
    for (flip, top_left) in cases {
        let flipped = render(&original, &format!("flip={flip}&fm=png"));
        assert_close(&pixel(&flipped.data, 10, 10), &top_left, 1.0, flip);
    }
}

/// rot turns counter-clockwise; pivot shows the whole image (rot=90 swaps axes) and fills a tilt's corners with bg; straighten (the default) keeps the frame at every angle.
#[test]
fn rotation() {
    let original = png_quadrants();
    let pivot = render(&original, "rot=90&rot-type=pivot&fm=png");
    assert_eq!(
        (pivot.width, pivot.height),
        (100, 200),
        "rot=90 pivot swaps axes"
    );
    // Counter-clockwise: top-left red goes to the bottom left.
    assert_close(&pixel(&pivot.data, 10, 190), &RED, 1.0, "ccw");
    assert_eq!(
        rendered_size(&original, "rot=90&fm=png"),
        (200, 100),
        "rot=90 keeps the frame by default"
    );
    let tilted = render(&original, "rot=30&rot-type=pivot&bg=ff00ff&fm=png");
    assert!(tilted.width > 200 && tilted.height > 100);
    assert_close(
        &pixel(&tilted.data, 1, 1),
        &[255.0, 0.0, 255.0],
        1.0,
        "corner takes bg",
    );
    let straightened = render(&original, "rot=30&bg=ff00ff&fm=png");
    assert_eq!((straightened.width, straightened.height), (200, 100));
    let corner = pixel(&straightened.data, 1, 1);
    assert!(
        !(corner[0] > 200.0 && corner[1] < 50.0 && corner[2] > 200.0),
        "straighten shows no bg: {corner:?}"
    );
}
