//! Canvas: borders and rounded corners, `bg`, `pad` and `fill-color`.

use super::*;

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
