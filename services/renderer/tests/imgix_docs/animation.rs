//! Animation: animated originals stay animated, `frame` picks one frame,
//! and `fm=json` describes the frames.

use super::*;

/// https://docs.imgix.com/apis/url/animation/frame: "The most meaningful
/// fields for animated GIFs are PixelHeight, PixelWidth, and Frames", shown
/// in its example document as `"PixelHeight": 240, "PixelWidth": 320,
/// "Output": { "Frames": 38 }`, with `"Depth": 8`, `"ColorModel": "RGB"`.
#[test]
fn json_describes_an_animation_as_the_frame_page_shows() {
    let mut strip = photo(32, 24 * 3);
    strip.set_int("page-height", 24).unwrap();
    let gif = strip.gifsave_buffer().unwrap();
    let document: serde_json::Value =
        serde_json::from_slice(&render(&gif, "fm=json").data).unwrap();
    assert_eq!(document["PixelWidth"], 32);
    assert_eq!(document["PixelHeight"], 24);
    assert_eq!(document["Output"]["Frames"], 3);
    assert_eq!(document["Depth"], 8);
    assert_eq!(document["ColorModel"], "RGB");
}

/// https://docs.imgix.com/apis/url/animation/frame: frame "Enables selection
/// of a single frame"; "frame=1" shows the first frame as a still. (Ranges,
/// `M-N`, are not supported by imgmesh and not checked.)
#[test]
fn frame_selects_one_frame() {
    let frames = [flat(16, 16, RED), flat(16, 16, GREEN), flat(16, 16, BLUE)];
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .unwrap()
        .copy()
        .unwrap();
    strip.set_int("page-height", 16).unwrap();
    let gif = strip.gifsave_buffer().unwrap();
    for (frame, colour) in [(1, RED), (2, GREEN), (3, BLUE)] {
        let still = render(&gif, &format!("frame={frame}&fm=png"));
        assert_eq!((still.width, still.height), (16, 16));
        let image = decode(&still.data);
        assert_eq!(image.get_height(), 16, "one frame");
        assert_colour(rgb(&still.data, 8, 8), colour, &format!("frame={frame}"));
    }
}

/// https://docs.imgix.com/apis/url/animation: "These parameters allow you to
/// control the animation and quality of your GIFs"; converting to video,
/// "All other parameters are applied before conversion". The frame page
/// (https://docs.imgix.com/apis/url/animation/frame): "The most meaningful
/// fields for animated GIFs are PixelHeight, PixelWidth, and Frames". So an
/// animation stays an animation, every frame resized: a 4-frame 40×30 GIF at
/// w=20 is a 4-frame GIF of 20×15 frames, and as WebP a 4-frame WebP.
#[test]
fn animations_stay_animated_with_every_frame_resized() {
    let levels = [40.0, 80.0, 120.0, 160.0];
    let frames: Vec<VipsImage> = levels
        .iter()
        .map(|&level| flat(40, 30, [level, level, level]))
        .collect();
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap();
    strip.set_int("page-height", 30).unwrap();
    let gif = strip.gifsave_buffer().unwrap();
    for (query, format) in [
        ("w=20", EncodedFormat::Gif),
        ("w=20&fm=webp", EncodedFormat::Webp),
    ] {
        let resized = render(&gif, query);
        assert_eq!(resized.format, format, "{query}");
        let decoded = VipsImage::new_from_buffer(&resized.data, "n=-1").unwrap();
        assert_eq!(decoded.get_int("n-pages").unwrap(), 4, "{query}: Frames");
        assert_eq!(
            (decoded.get_width(), decoded.get_page_height()),
            (20, 15),
            "{query}: PixelWidth × PixelHeight"
        );
        for (frame, level) in levels.iter().enumerate() {
            let top = frame as i32 * decoded.get_page_height();
            let point = decoded.getpoint(5, top + 5).unwrap()[0];
            assert!(
                (point - level).abs() <= 3.0,
                "{query}: frame {frame} is grey {level}, got {point}"
            );
        }
    }
}
