//! Format: `fm` and its fallbacks, BlurHash, quality, chroma subsampling,
//! lossless, colour space and metadata.

use super::*;

/// https://docs.imgix.com/apis/url/format/fm: "Valid options are avif, gif,
/// jp2, jpg, json, jxr, pjpg, mp4, png, png8, png32, webm, webp, and
/// blurhash." Each image format imgmesh encodes comes back as that format
/// (its magic bytes and media type).
#[test]
fn output_formats_follow_the_fm_page() {
    let original = png(&photo(64, 48));
    let cases: &[(&str, &[u8], &str)] = &[
        ("jpg", b"\xff\xd8\xff", "image/jpeg"),
        ("pjpg", b"\xff\xd8\xff", "image/jpeg"),
        ("png", b"\x89PNG", "image/png"),
        ("png8", b"\x89PNG", "image/png"),
        ("png32", b"\x89PNG", "image/png"),
        ("gif", b"GIF8", "image/gif"),
        ("json", b"{", "application/json"),
    ];
    for (fm, magic, content_type) in cases {
        let derivative = render(&original, &format!("fm={fm}"));
        assert!(derivative.data.starts_with(magic), "fm={fm}");
        assert_eq!(derivative.format.content_type(), *content_type, "fm={fm}");
    }
    let webp = render(&original, "fm=webp");
    assert_eq!(&webp.data[..4], b"RIFF");
    assert_eq!(&webp.data[8..12], b"WEBP");
    assert_eq!(webp.format, EncodedFormat::Webp);
    let avif = render(&original, "fm=avif");
    assert_eq!(&avif.data[4..8], b"ftyp");
    assert_eq!(avif.format.content_type(), "image/avif");
    // png32 is 32-bit RGBA even from an opaque source.
    let png32 = decode(&render(&original, "fm=png32").data);
    assert_eq!(png32.get_bands(), 4);
}

/// The value of `digits` in BlurHash's base 83.
fn base83(digits: &str) -> u32 {
    const ALPHABET: &str =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    digits.chars().fold(0, |value, digit| {
        value * 83 + ALPHABET.find(digit).expect("a base-83 digit") as u32
    })
}

/// imgix's BlurHash announcement (https://blog.imgix.com/2021/01/26/blurhash,
/// linked from https://docs.imgix.com/apis/rendering/format/fm#blurhash):
/// add "fm=blurhash to any image to get a BlurHash string". The string is
/// read as BlurHash's own specification says
/// (https://github.com/woltapp/blurhash/blob/master/Algorithm.md): the
/// first character is (x components − 1) + (y components − 1) × 9, the
/// string is 4 + 2 × x × y characters long, characters 3–6 are the average
/// colour as sRGB `R << 16 | G << 8 | B`, and each AC component is two
/// characters, `R × 19² + G × 19 + B` with 9 meaning zero. So a flat red
/// image hashes to DC 0xFF0000, and the green and blue parts of every AC
/// component, sums over pixels whose green and blue are 0, are zero (the
/// red parts are not: the sampled cosines of a flat image do not sum to 0).
#[test]
fn blurhash_is_a_blurhash_string_as_imgix_announced() {
    let original = png(&flat(64, 48, RED));
    let derivative = render(&original, "fm=blurhash");
    assert!(derivative.format.content_type().starts_with("text/plain"));
    let hash = String::from_utf8(derivative.data).expect("text");
    let components = base83(&hash[..1]);
    let (x, y) = (components % 9 + 1, components / 9 + 1);
    assert_eq!(hash.len() as u32, 4 + 2 * x * y, "{hash}: {x} × {y}");
    assert_eq!(base83(&hash[2..6]), 0xFF0000, "{hash}: the average is red");
    for ac in 0..(x * y - 1) as usize {
        let at = 6 + 2 * ac;
        assert_eq!(
            base83(&hash[at..at + 2]) % (19 * 19),
            9 * 19 + 9,
            "{hash}: AC {ac} has green or blue"
        );
    }
}

/// https://docs.imgix.com/apis/rendering/format/jpg-progressive: "The default
/// value is true when not specified if the output format is a JPEG. If the
/// output format is not a JPEG, then this parameter will have no effect";
/// jpeg-progressive is its alias.
#[test]
fn jpeg_output_is_progressive_by_default() {
    let original = jpeg(&photo(200, 150));
    assert!(interlaced(&render(&original, "fm=jpg").data), "fm=jpg");
    assert!(
        interlaced(&render(&original, "w=100").data),
        "JPEG in, no fm"
    );
    assert!(!interlaced(
        &render(&original, "fm=jpg&jpg-progressive=false").data
    ));
    assert!(!interlaced(
        &render(&original, "fm=jpg&jpeg-progressive=false").data
    ));
    assert!(interlaced(&render(&original, "fm=pjpg").data));
    let png_out = render(&original, "fm=png&jpg-progressive=true");
    assert_eq!(png_out.format, EncodedFormat::Png);
}

/// https://docs.imgix.com/apis/rendering/format/output-quality: "Valid
/// values are in the range 0 – 100 and the default value is 75"; "If
/// auto=compress is applied to an image, the default value will be 45 unless
/// overridden".
#[test]
fn quality_defaults_follow_the_q_page() {
    let original = jpeg(&photo(200, 150));
    let bytes = |query: &str| render(&original, query).data;
    assert_eq!(bytes("fm=jpg"), bytes("fm=jpg&q=75"), "default is 75");
    assert_ne!(bytes("fm=jpg"), bytes("fm=jpg&q=74"));
    assert_eq!(
        bytes("fm=webp"),
        bytes("fm=webp&q=75"),
        "webp default is 75"
    );
    // auto=compress on a JPEG: JPEG at 45 (and metadata stripped).
    assert_eq!(
        bytes("auto=compress"),
        bytes("fm=jpg&q=45&cs=strip"),
        "auto=compress is q=45"
    );
    assert_eq!(
        bytes("auto=compress&q=80"),
        bytes("fm=jpg&q=80&cs=strip"),
        "q overrides auto=compress"
    );
    // Beyond 100 is 100.
    assert_eq!(bytes("fm=jpg&q=150"), bytes("fm=jpg&q=100"));
}

/// https://docs.imgix.com/apis/url/auto: auto=compress "performing
/// transparency detection to select the output format: images with
/// transparency are served as PNG, and all others are served as JPEG"; with
/// auto=format "images will be served in AVIF whenever possible, falling
/// back to WebP, then PNG8 (for images with transparency) or JPEG".
#[test]
fn auto_compress_follows_the_auto_page() {
    let opaque = png(&photo(64, 48));
    let transparent = png(&photo(64, 48).bandjoin_const(&[128.0]).unwrap());
    assert_eq!(render(&opaque, "auto=compress").format, EncodedFormat::Jpeg);
    let with_alpha = render(&transparent, "auto=compress");
    assert_eq!(with_alpha.format, EncodedFormat::Png);
    assert_eq!(decode(&with_alpha.data).get_bands(), 4, "alpha kept");
    let negotiated = |accept: &str| {
        parse_render_plan("", "auto=compress,format", Some(accept))
            .unwrap()
            .plan
            .format()
    };
    assert_eq!(negotiated("image/avif,image/webp"), OutputFormat::Avif);
    assert_eq!(negotiated("image/webp"), OutputFormat::Webp);
    assert_eq!(negotiated("image/png"), OutputFormat::Unspecified);
}

/// https://docs.imgix.com/apis/url/format/fm: "If auto=format is set and the
/// browser does not support the AVIF format, we'll first fallback to WebP if
/// it is supported. If WebP is not supported, Imgix will fall back to the
/// source image type or to any format specified by the fm parameter."
#[test]
fn auto_format_falls_back_as_the_fm_page_says() {
    let original = png(&photo(64, 48));
    let served = |query: &str, accept: &str| {
        let plan = parse_render_plan("", query, Some(accept)).unwrap().plan;
        let input = RenderInput {
            original: &original,
            ..RenderInput::default()
        };
        render_image(&input, &plan, &RenderLimits::default())
            .unwrap()
            .format
    };
    let both = "image/avif,image/webp,*/*";
    assert_eq!(served("auto=format", both), EncodedFormat::Avif);
    assert_eq!(served("auto=format", "image/webp,*/*"), EncodedFormat::Webp);
    assert_eq!(
        served("auto=format", "*/*"),
        EncodedFormat::Png,
        "source type"
    );
    assert_eq!(
        served("auto=format&fm=jpg", "*/*"),
        EncodedFormat::Jpeg,
        "fm"
    );
    assert_eq!(
        negotiate_format(Some("image/webp")),
        Some(OutputFormat::Webp)
    );
}

/// https://docs.imgix.com/apis/rendering/format/chroma-subsampling: "Valid
/// values are 444, 422, and 420. The default is 420." (422 is not checked:
/// libvips cannot write it, imgmesh gives 4:4:4.)
#[test]
fn chroma_subsampling_defaults_to_420() {
    let original = jpeg(&photo(200, 150));
    let subsampling = |query: &str| {
        decode(&render(&original, query).data)
            .get_string("jpeg-chroma-subsample")
            .unwrap()
    };
    assert_eq!(subsampling("fm=jpg&q=95"), "4:2:0");
    assert_eq!(subsampling("fm=jpg&q=95&chromasub=420"), "4:2:0");
    assert_eq!(subsampling("fm=jpg&q=95&chromasub=444"), "4:4:4");
}

/// https://docs.imgix.com/apis/rendering/format/lossless-compression (spec:
/// lossless depends on fm=webp) and https://docs.imgix.com/apis/url/format/fm:
/// "The AVIF file format does not support lossless formats."
#[test]
fn lossless_webp_keeps_every_pixel() {
    let source = photo(64, 48);
    let original = png(&source);
    let lossless = decode(&render(&original, "fm=webp&lossless=true").data);
    let difference = (lossless.subtract(&source).unwrap().abs().unwrap())
        .max()
        .unwrap();
    assert_eq!(difference, 0.0, "lossless WebP is exact");
    let lossy = decode(&render(&original, "fm=webp").data);
    assert!(
        lossy
            .subtract(&source)
            .unwrap()
            .abs()
            .unwrap()
            .max()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        plan("fm=avif&lossless=true"),
        plan("fm=avif"),
        "no lossless AVIF"
    );
}

/// https://docs.imgix.com/apis/url/format/cs: "origin (default): The color
/// space of the origin image. This is the default value when cs is not
/// specified"; "srgb: Uses the sRGB colorspace"; "strip: Removes the
/// colorspace". https://docs.imgix.com/apis/url/auto: auto=compress
/// "removes color profile metadata".
#[test]
fn colour_space_follows_the_cs_page() {
    let tagged = photo(64, 48)
        .icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))
        .unwrap();
    assert!(has_profile(&tagged));
    let original = jpeg(&tagged);
    let output = |query: &str| decode(&render(&original, query).data);
    assert!(has_profile(&output("w=32")), "origin is the default");
    assert!(has_profile(&output("w=32&cs=origin")));
    assert!(has_profile(&output("w=32&cs=srgb")));
    assert!(!has_profile(&output("w=32&cs=strip")));
    assert!(!has_profile(&output("w=32&auto=compress")));
    assert!(has_profile(&output("w=32&auto=compress&cs=origin")));
    // A source without a profile gets sRGB's only when asked.
    let plain = jpeg(&photo(64, 48));
    assert!(!has_profile(&decode(&render(&plain, "w=32").data)));
    assert!(has_profile(&decode(&render(&plain, "w=32&cs=srgb").data)));
}

/// https://docs.imgix.com/apis/url/format/cs, "Rendering non-web-safe
/// colors": "If an Origin Image uses colorspaces such as CMYK, YCCK, and
/// other non-web-safe colors, the color space will be converted to sRGB by
/// default when it is transformed." So a CMYK JPEG comes out as three-band
/// sRGB, by default and with the default `cs=origin` written out, and its
/// pure cyan ink (C 100 %, no M, Y or K) is a cyan: little red, much green
/// and blue.
#[test]
fn cmyk_is_converted_to_srgb_as_the_cs_page_says() {
    imgmesh_renderer::libvips::init().unwrap();
    let black = VipsImage::black(32, 32)
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap();
    let original = VipsImage::new_from_image(&black, &[255.0, 0.0, 0.0, 0.0])
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Cmyk as i32))
        .unwrap()
        .jpegsave_buffer_with_opts(VOption::new().set("Q", 95))
        .unwrap();
    assert_eq!(decode(&original).get_bands(), 4, "the original is CMYK");
    for query in ["w=16", "w=16&cs=origin", "w=16&fm=png"] {
        let output = decode(&render(&original, query).data);
        assert_eq!(output.get_bands(), 3, "{query}: three bands");
        assert_eq!(
            output.get_interpretation().unwrap(),
            Interpretation::Srgb,
            "{query}: sRGB"
        );
        let p = output.getpoint(8, 8).unwrap();
        assert!(
            p[0] < 100.0 && p[1] > 120.0 && p[2] > 180.0,
            "{query}: cyan ink is cyan, got {p:?}"
        );
    }
}

/// https://docs.imgix.com/apis/rendering/format/iptc: "the iptc parameter
/// will determine if IPTC data should be passed for JPEG images. At this
/// time, the IPTC parameter will only affect JPEG to JPEG processing";
/// "By default, iptc=block is enabled when no parameter is specified".
/// https://docs.imgix.com/ja-JP/apis/rendering ("メタデータ", translated;
/// the text could be read only this far): "Imgix usually removes most
/// metadata (EXIF data, ge…) from the images it processes".
/// https://docs.imgix.com/apis/url/auto: auto=compress strips metadata.
/// So a JPEG carrying EXIF, XMP and IPTC renders to a JPEG with none of
/// them, by default and with auto=compress.
#[test]
fn metadata_is_not_passed_on_as_the_iptc_and_overview_pages_say() {
    let mut tagged = photo(64, 48);
    tagged.set_int("orientation", 1).unwrap();
    let xmp = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="imgmesh"/></rdf:RDF></x:xmpmeta>"#;
    tagged.set_blob_copy("xmp-data", xmp).unwrap();
    // A Photoshop 3.0 IRB holding one IPTC record: 2:80 (By-line) "imgmesh".
    let mut iptc = b"Photoshop 3.0\0".to_vec();
    let record = b"\x1c\x02\x50\x00\x07imgmesh";
    iptc.extend_from_slice(b"8BIM\x04\x04\x00\x00");
    iptc.extend_from_slice(&(record.len() as u32).to_be_bytes());
    // 12 bytes of data: even, so no padding byte.
    iptc.extend_from_slice(record);
    tagged.set_blob_copy("iptc-data", &iptc).unwrap();
    let original = jpeg(&tagged);
    let present = |image: &VipsImage, field: &str| image.get_typeof(field).unwrap() != 0;
    let source = decode(&original);
    for field in ["exif-data", "xmp-data", "iptc-data"] {
        assert!(present(&source, field), "the original carries {field}");
    }
    for query in ["w=32", "w=32&fm=jpg", "w=32&auto=compress"] {
        let derivative = render(&original, query);
        assert_eq!(derivative.format, EncodedFormat::Jpeg, "{query}");
        let output = decode(&derivative.data);
        for field in ["exif-data", "xmp-data", "iptc-data"] {
            assert!(!present(&output, field), "{query}: {field} was passed on");
        }
    }
}
