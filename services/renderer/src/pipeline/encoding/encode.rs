//! Encoding a rendered image into one of the output formats.
//!
//! Metadata is stripped unless the plan keeps a colour profile (`cs=srgb`
//! embeds sRGB's, `cs=origin`, imgix's default, the source's); then
//! everything but the profile is removed first. EXIF orientation has always
//! been applied.
//!
//! - JPEG: alpha flattened onto white (a `bg` was applied before), Huffman
//!   tables optimised, progressive unless `jpg-progressive=false` (imgix's
//!   default),
//!   4:2:0 chroma unless `chromasub=444` (libvips has no 4:2:2, so 422 gets
//!   4:4:4, never less colour than asked).
//! - PNG: zlib level 6; `fm=png8` quantises to a palette, `fm=png32` always
//!   writes RGBA (`q` does not apply, as at imgix).
//! - WebP: lossy at `q`, or lossless; animated when the image has pages.
//! - AVIF: AV1 in HEIF at `q`, 8 bits, effort 1 (of 0–9). Effort 1 encodes a
//!   typical 800 px photo about 4× faster than effort 2 (0.09 s vs 0.36 s on
//!   the benchmark machine) for ~20 % more bytes; libvips' default of 4 takes
//!   about 0.8 s, far too slow for on-the-fly rendering. Still images only.
//! - GIF: libvips' cgif saver, animated when the image has pages.

use rs_vips::VipsImage;
use rs_vips::enums::{ForeignHeifCompression, ForeignSubsample};
use rs_vips::voption::{Setter as _, VOption};

use crate::pipeline::derivative::EncodedFormat;

/// The AVIF encoder's CPU effort (libvips' 0–9 scale); see the module docs.
const AVIF_EFFORT: i32 = 1;

/// The PNG zlib compression level.
const PNG_COMPRESSION: i32 = 6;

/// PNG variants (`fm=png8`, `fm=png32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PngKind {
    /// RGB or RGBA as the image has.
    #[default]
    Natural,
    /// 8-bit palette.
    Palette,
    /// Always RGBA.
    Rgba,
}

/// What the encoder needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncodeOptions {
    /// The format.
    pub(crate) format: EncodedFormat,
    /// Quality 1–100 for lossy formats.
    pub(crate) quality: u8,
    /// Progressive JPEG.
    pub(crate) progressive: bool,
    /// Full-resolution JPEG chroma (no subsampling).
    pub(crate) full_chroma: bool,
    /// Lossless WebP.
    pub(crate) lossless: bool,
    /// The PNG variant.
    pub(crate) png: PngKind,
    /// Keep the image's ICC profile (and nothing else) in the file.
    pub(crate) keep_profile: bool,
    /// Embed the sRGB profile when the image carries none (`cs=srgb`).
    pub(crate) embed_srgb: bool,
}

/// Metadata fields that survive when the profile is kept.
const PROFILE_FIELD: &str = "icc-profile-data";

/// Encodes `image` with `options`. Images with pages (page-height set and
/// less than the height) are written as animations by GIF and WebP.
pub(crate) fn encode(image: &VipsImage, options: &EncodeOptions) -> rs_vips::Result<Vec<u8>> {
    let quality = i32::from(options.quality);
    let kept;
    let image = if options.keep_profile {
        kept = only_profile(image, options.embed_srgb)?;
        &kept
    } else {
        image
    };
    let strip = !options.keep_profile;
    match options.format {
        EncodedFormat::Jpeg => {
            // JPEG has no alpha: composite onto white, as imgix does.
            let flattened;
            let image = if image.hasalpha() {
                flattened =
                    image.flatten_with_opts(VOption::new().set("background", &[255.0][..]))?;
                &flattened
            } else {
                image
            };
            let subsample = if options.full_chroma {
                ForeignSubsample::Off
            } else {
                ForeignSubsample::On
            };
            image.jpegsave_buffer_with_opts(
                VOption::new()
                    .set("Q", quality)
                    .set("optimize_coding", true)
                    .set("interlace", options.progressive)
                    .set("subsample_mode", subsample as i32)
                    .set("strip", strip),
            )
        }
        EncodedFormat::Png => {
            let with_alpha;
            let image = if options.png == PngKind::Rgba && !image.hasalpha() {
                with_alpha = image.bandjoin_const(&[255.0])?;
                &with_alpha
            } else {
                image
            };
            let mut save = VOption::new()
                .set("compression", PNG_COMPRESSION)
                .set("strip", strip);
            if options.png == PngKind::Palette {
                save = save.set("palette", true);
            }
            image.pngsave_buffer_with_opts(save)
        }
        EncodedFormat::Webp => {
            let mut save = VOption::new().set("strip", strip);
            save = if options.lossless {
                save.set("lossless", true)
            } else {
                save.set("Q", quality)
            };
            image.webpsave_buffer_with_opts(save)
        }
        EncodedFormat::Avif => image.heifsave_buffer_with_opts(
            VOption::new()
                .set("compression", ForeignHeifCompression::Av1 as i32)
                .set("Q", quality)
                .set("bitdepth", 8)
                .set("effort", AVIF_EFFORT)
                .set("strip", strip),
        ),
        EncodedFormat::Gif => image.gifsave_buffer_with_opts(VOption::new().set("strip", strip)),
        // Not images: produced without the encoder (see render.rs).
        EncodedFormat::Json | EncodedFormat::Blurhash => Err(
            rs_vips::error::Error::OperationError("not an image format".to_owned()),
        ),
    }
}

/// A copy of `image` whose only metadata is its ICC profile; with
/// `embed_srgb`, an image without one gets libvips' sRGB profile (its pixels
/// are sRGB already, so the transform changes nothing but the tag).
fn only_profile(image: &VipsImage, embed_srgb: bool) -> rs_vips::Result<VipsImage> {
    let has_profile = image
        .get_typeof(PROFILE_FIELD)
        .is_ok_and(|gtype| gtype != 0);
    let mut copy = if embed_srgb && !has_profile {
        image.icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))?
    } else {
        image.copy()?
    };
    for field in [
        "exif-data",
        "xmp-data",
        "iptc-data",
        "orientation",
        "gif-comment",
        "png-comment-0-comment",
    ] {
        if field != PROFILE_FIELD {
            copy.remove(field)?;
        }
    }
    Ok(copy)
}
