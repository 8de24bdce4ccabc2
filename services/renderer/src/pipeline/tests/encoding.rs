//! Formats and encoding: every output format, its options, colour profiles
//! and metadata.

use super::*;

/// Every output format is what was asked for: magic bytes, content type, and it decodes.
#[test]
fn every_output_format_decodes() {
    let original = test_images::jpeg(400, 300);
    type HasMagic = fn(&[u8]) -> bool;
    let cases: [(&str, EncodedFormat, HasMagic); 8] = [
        ("fm=jpg", EncodedFormat::Jpeg, |d| {
            d.starts_with(&[0xFF, 0xD8, 0xFF])
        }),
        ("fm=pjpg", EncodedFormat::Jpeg, |d| {
            d.starts_with(&[0xFF, 0xD8, 0xFF])
        }),
        ("fm=png", EncodedFormat::Png, |d| {
            d.starts_with(b"\x89PNG\r\n\x1a\n")
        }),
        ("fm=png8", EncodedFormat::Png, |d| {
            d.starts_with(b"\x89PNG\r\n\x1a\n") && d[25] == 3
        }),
        ("fm=png32", EncodedFormat::Png, |d| {
            d.starts_with(b"\x89PNG\r\n\x1a\n") && d[25] == 6
        }),
        ("fm=webp", EncodedFormat::Webp, |d| {
            d.starts_with(b"RIFF") && &d[8..12] == b"WEBP"
        }),
        ("fm=avif", EncodedFormat::Avif, |d| {
            &d[4..8] == b"ftyp" && &d[8..12] == b"avif"
        }),
        ("fm=gif", EncodedFormat::Gif, |d| d.starts_with(b"GIF8")),
    ];
    for (query, expected, has_magic) in cases {
        let derivative = render(&original, &format!("{query}&w=120"));
        assert_eq!(derivative.format, expected, "{query}");
        assert!(has_magic(&derivative.data), "{query} magic");
        assert_eq!(decoded_size(&derivative.data), (120, 90), "{query}");
    }
}

/// JPEGs are progressive unless `jpg-progressive=false` (imgix's default is true), and pjpg always.
#[test]
fn progressive_jpeg() {
    let original = test_images::jpeg(200, 150);
    let interlaced = |query: &str| {
        let image = decode(&render(&original, query).data);
        image.get_typeof("interlaced").unwrap() != 0 && image.get_int("interlaced").unwrap() == 1
    };
    assert!(interlaced("fm=pjpg"));
    assert!(interlaced("fm=jpg&jpg-progressive=true"));
    assert!(interlaced("fm=jpg"));
    assert!(interlaced("w=100"), "a JPEG input with no fm");
    assert!(!interlaced("fm=jpg&jpg-progressive=false"));
    assert!(interlaced("fm=pjpg&jpg-progressive=false"));
}

/// chromasub=444 keeps full chroma; the default is 4:2:0.
#[test]
fn chroma_subsampling() {
    let original = test_images::jpeg(200, 150);
    let subsampling = |query: &str| {
        decode(&render(&original, query).data)
            .get_string("jpeg-chroma-subsample")
            .unwrap()
    };
    assert_eq!(subsampling("fm=jpg&q=95"), "4:2:0");
    assert_eq!(subsampling("fm=jpg&chromasub=444"), "4:4:4");
}

/// lossless WebP round-trips pixels exactly; lossy does not.
#[test]
fn lossless_webp() {
    let original = test_images::png(64, 48);
    let source = decode(&original);
    let lossless = decode(&render(&original, "fm=webp&lossless=true").data);
    assert_eq!(
        source
            .subtract(&lossless)
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap(),
        0.0
    );
    let lossy = decode(&render(&original, "fm=webp&q=20").data);
    assert!(
        source
            .subtract(&lossy)
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap()
            > 0.0
    );
}

/// Without a format, each input keeps its family (GIF stays GIF, HEIF/AVIF → AVIF).
#[test]
fn unspecified_format_keeps_the_family() {
    let cases = [
        (test_images::jpeg(64, 48), EncodedFormat::Jpeg),
        (test_images::png(64, 48), EncodedFormat::Png),
        (test_images::webp(64, 48), EncodedFormat::Webp),
        (test_images::animated_gif(64, 48, 3), EncodedFormat::Gif),
        (test_images::avif(64, 48), EncodedFormat::Avif),
    ];
    for (original, family) in cases {
        let derivative = render(&original, "w=32");
        assert_eq!(derivative.format, family);
        assert_eq!(
            (derivative.width, derivative.height),
            (32, 24),
            "{family:?}"
        );
        assert_eq!(decoded_size(&derivative.data), (32, 24), "{family:?}");
    }
}

/// auto=compress without a format: PNG8 for images with alpha, JPEG otherwise, at q=45.
#[test]
fn auto_compress_fallbacks() {
    let opaque = render(&test_images::png(64, 48), "auto=compress");
    assert_eq!(opaque.format, EncodedFormat::Jpeg);
    let transparent = render(&test_images::transparent_png(64, 48), "auto=compress");
    assert_eq!(transparent.format, EncodedFormat::Png);
    assert_eq!(transparent.data[25], 3, "palette PNG");
    let q45 = render(&test_images::jpeg(300, 200), "fm=jpg&auto=compress");
    let q75 = render(&test_images::jpeg(300, 200), "fm=jpg");
    assert!(q45.data.len() < q75.data.len());
}

/// A lower quality gives a smaller file, for JPEG, WebP and AVIF.
#[test]
fn quality_changes_size() {
    let original = test_images::jpeg(400, 300);
    for format in ["jpg", "webp", "avif"] {
        let at = |q: u32| {
            render(&original, &format!("w=300&fm={format}&q={q}"))
                .data
                .len()
        };
        let (low, high) = (at(20), at(95));
        assert!(low < high, "{format}: q=20 {low} bytes, q=95 {high} bytes");
    }
}

/// fm=json describes the source, field by field.
#[test]
fn json_document() {
    let mut image = test_images::photo(64, 48);
    image.set_int("orientation", 6).unwrap();
    let original = image.jpegsave_buffer().unwrap();
    let derivative = render(&original, "fm=json&w=10&blur=50");
    assert_eq!(derivative.format, EncodedFormat::Json);
    let document: serde_json::Value = serde_json::from_slice(&derivative.data).unwrap();
    assert_eq!(document["Content-Type"], "image/jpeg");
    assert_eq!(document["Content-Length"], original.len().to_string());
    assert_eq!(document["PixelWidth"], 64);
    assert_eq!(document["PixelHeight"], 48);
    assert_eq!(document["Orientation"], 6);
    assert_eq!(document["ColorModel"], "RGB");
    assert_eq!(document["Depth"], 8);
    assert_eq!(document["HasAlpha"], false);
    assert_eq!(document["TIFF"]["Orientation"], 6);
    assert_eq!(document["JFIF"]["IsProgressive"], false);
    assert!(document["DPIWidth"].is_number());
    let gif: serde_json::Value =
        serde_json::from_slice(&render(&test_images::animated_gif(10, 10, 3), "fm=json").data)
            .unwrap();
    assert_eq!(
        (gif["Content-Type"].as_str(), gif["Frames"].as_i64()),
        (Some("image/gif"), Some(3))
    );
    let grey = test_images::png_of(
        &test_images::photo(8, 8)
            .colourspace(rs_vips::enums::Interpretation::BW)
            .unwrap(),
    );
    let grey: serde_json::Value = serde_json::from_slice(&render(&grey, "fm=json").data).unwrap();
    assert_eq!(grey["ColorModel"], "Gray");
}

/// fm=blurhash returns a 28-character base-83 hash of the rendered image.
#[test]
fn blurhash_output() {
    let derivative = render(&png_quadrants(), "fm=blurhash&w=100");
    assert_eq!(derivative.format, EncodedFormat::Blurhash);
    let hash = String::from_utf8(derivative.data).unwrap();
    assert_eq!(hash.len(), 28, "{hash}");
    assert!(hash.starts_with('L'), "4×3 components: {hash}");
    let other =
        String::from_utf8(render(&test_images::jpeg(200, 100), "fm=blurhash").data).unwrap();
    assert_ne!(hash, other);
}

/// An embedded ICC profile is kept by default and with cs=origin, converted to sRGB and stripped by cs=strip and auto=compress; cs=srgb embeds sRGB's.
#[test]
fn colour_profiles() {
    let with_profile = test_images::photo(64, 48)
        .icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))
        .unwrap();
    assert!(with_profile.get_typeof("icc-profile-data").unwrap() != 0);
    let original = with_profile.jpegsave_buffer().unwrap();
    let kept = decode(&render(&original, "w=32").data);
    assert!(kept.get_typeof("icc-profile-data").unwrap() != 0);
    for query in ["w=32&cs=strip", "w=32&auto=compress"] {
        let stripped = decode(&render(&original, query).data);
        assert_eq!(
            stripped.get_typeof("icc-profile-data").unwrap(),
            0,
            "{query}"
        );
    }
    let srgb = decode(&render(&original, "w=32&cs=srgb").data);
    assert!(srgb.get_typeof("icc-profile-data").unwrap() != 0);
    let origin = decode(&render(&original, "w=32&cs=origin").data);
    assert!(origin.get_typeof("icc-profile-data").unwrap() != 0);
    // A source without a profile gets sRGB's with cs=srgb, none with cs=origin.
    let plain = test_images::jpeg(64, 48);
    for format in ["jpg", "png", "webp"] {
        let tagged = decode(&render(&plain, &format!("w=32&cs=srgb&fm={format}")).data);
        assert!(
            tagged.get_typeof("icc-profile-data").unwrap() != 0,
            "{format}"
        );
    }
    let untagged = decode(&render(&plain, "w=32&cs=origin").data);
    assert_eq!(untagged.get_typeof("icc-profile-data").unwrap(), 0);
}

/// CMYK JPEGs come out as sRGB with the right colour.
#[test]
fn cmyk_is_converted() {
    // Pure cyan ink.
    let original = test_images::cmyk_jpeg(32, 32, [255.0, 0.0, 0.0, 0.0]);
    let derivative = render(&original, "fm=png");
    let image = decode(&derivative.data);
    assert_eq!(image.get_bands(), 3);
    let p = image.getpoint(16, 16).unwrap();
    assert!(
        p[0] < 120.0 && p[1] > 120.0 && p[2] > 180.0,
        "cyan-ish, got {p:?}"
    );
}

/// Metadata (EXIF) is stripped by default.
#[test]
fn metadata_is_stripped() {
    let original = test_images::jpeg_with_orientation(64, 48, 1);
    let image = decode(&render(&original, "w=32").data);
    assert_eq!(image.get_typeof("exif-data").unwrap(), 0);
}

/// A transparent PNG rendered as JPEG is flattened onto white.
#[test]
fn alpha_is_flattened_onto_white_for_jpeg() {
    let original = test_images::transparent_png(64, 64);
    let image = decode(&render(&original, "w=32&fm=jpg").data);
    assert_eq!(image.get_bands(), 3);
    assert!(
        image.avg().unwrap() > 250.0,
        "mean {}",
        image.avg().unwrap()
    );
}
