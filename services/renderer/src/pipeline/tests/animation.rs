//! Animations: animated inputs stay animated; `frame` picks one.

use super::*;

/// Animated GIF and WebP inputs stay animated, every frame transformed; frame=N picks one.
#[test]
fn animations() {
    let gif = test_images::animated_gif_frames(40, 30, 4);
    let resized = render(&gif, "w=20");
    assert_eq!(resized.format, EncodedFormat::Gif);
    let decoded = VipsImage::new_from_buffer(&resized.data, "n=-1").unwrap();
    assert_eq!(decoded.get_int("n-pages").unwrap(), 4);
    assert_eq!((decoded.get_width(), decoded.get_page_height()), (20, 15));
    // Every frame was transformed: inverted greys 40, 80, ... → 215, 175, ...
    let inverted =
        VipsImage::new_from_buffer(&render(&gif, "invert=true&fm=gif").data, "n=-1").unwrap();
    for frame in 0..4 {
        let level = inverted.getpoint(5, frame * 30 + 5).unwrap()[0];
        let expected = 255.0 - 40.0 * f64::from(frame + 1);
        assert!(
            (level - expected).abs() <= 2.0,
            "frame {frame}: {level} vs {expected}"
        );
    }
    let webp = render(&gif, "w=20&fm=webp");
    let decoded = VipsImage::new_from_buffer(&webp.data, "n=-1").unwrap();
    assert_eq!(decoded.get_int("n-pages").unwrap(), 4);
    let from_webp = render(
        &test_images::animated_webp(40, 30, 3),
        "w=20&rot=90&rot-type=pivot",
    );
    let decoded = VipsImage::new_from_buffer(&from_webp.data, "n=-1").unwrap();
    assert_eq!(
        (decoded.get_int("n-pages").unwrap(), decoded.get_width()),
        (3, 15)
    );
    let third = render(&gif, "frame=3&fm=png");
    assert_close(
        &pixel(&third.data, 5, 5)[..1],
        &[120.0],
        2.0,
        "frame 3 is grey 120",
    );
    let beyond = render(&gif, "frame=99&fm=png");
    assert_close(
        &pixel(&beyond.data, 5, 5)[..1],
        &[160.0],
        2.0,
        "frame past the end: the last",
    );
    let still = render(&gif, "fm=jpg");
    assert_eq!(
        decoded_size(&still.data),
        (40, 30),
        "JPEG gets the first frame"
    );
}
