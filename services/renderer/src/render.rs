//! The pure render: original bytes + plan + limits → encoded derivative.
//!
//! [`render_image`] is synchronous CPU work on libvips; the service runs it
//! on the blocking pool (see [`crate::render_pool`]), and a benchmark can
//! call it directly. In order, it:
//!
//! 1. refuses inputs over the byte limit,
//! 2. sniffs the magic bytes and refuses formats imgmesh does not serve,
//! 3. reads only the header, with the format's own loader, and refuses
//!    images whose width × height × pages exceeds the pixel limit, before a
//!    single pixel is decoded,
//! 4. resizes with `thumbnail_buffer` (shrink-on-load, EXIF auto-rotation,
//!    embedded ICC profiles converted to sRGB),
//! 5. encodes (see [`crate::encode`]).
//!
//! libvips evaluates lazily, so most decoding happens inside the encode step.

use imgmesh_proto::renderer::v1::RenderPlan;
use rs_vips::VipsImage;
use rs_vips::enums::{FailOn, Interesting, Size};
use rs_vips::voption::{Setter as _, VOption};

use crate::encode::{self, EncodedFormat};
use crate::error::RenderError;
use crate::geometry::{self, Resize, ThumbnailBox};
use crate::input_format::InputFormat;
use crate::libvips;
use crate::render_plan::ResolvedPlan;

/// The default pixel limit: 50 megapixels, pages counted.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// The default byte limit for originals: 32 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// Limits every render enforces before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Largest width × height × pages an original may declare.
    pub max_pixels: u64,
    /// Largest original, in bytes.
    pub max_object_bytes: u64,
}

impl Default for RenderLimits {
    fn default() -> RenderLimits {
        RenderLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
        }
    }
}

/// An encoded derivative.
#[derive(Clone, PartialEq, Eq)]
pub struct Derivative {
    /// The encoding of `data`.
    pub format: EncodedFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The encoded image.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Derivative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derivative")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// What the header says about an original.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// Width as displayed, after EXIF orientation.
    upright_width: u32,
    /// Height as displayed, after EXIF orientation.
    upright_height: u32,
    /// width × height × pages, as stored.
    pixels: u64,
    /// Whether an ICC profile is embedded.
    has_icc_profile: bool,
}

/// Renders `input` (an original's bytes) with `plan` under `limits`.
pub fn render_image(
    input: &[u8],
    plan: &RenderPlan,
    limits: &RenderLimits,
) -> Result<Derivative, RenderError> {
    libvips::init()?;
    let plan = ResolvedPlan::resolve(plan)?;
    if input.len() as u64 > limits.max_object_bytes {
        return Err(RenderError::ObjectTooLarge {
            limit: limits.max_object_bytes,
        });
    }
    let input_format = InputFormat::sniff(input).ok_or(RenderError::UnsupportedInput)?;
    let header = read_header(input, input_format)?;
    if header.pixels > limits.max_pixels {
        return Err(RenderError::TooManyPixels {
            pixels: header.pixels,
            limit: limits.max_pixels,
        });
    }

    let target = geometry::thumbnail_box(header.upright_width, header.upright_height, &plan);
    let image = {
        let _span = tracing::info_span!(
            "vips.thumbnail",
            box_width = target.width,
            box_height = target.height,
        )
        .entered();
        thumbnail(input, &target, header.has_icc_profile).map_err(|error| {
            libvips::log_failure("thumbnail", &error);
            RenderError::CorruptInput
        })?
    };

    let format = plan.format.unwrap_or(input_format.family());
    let data = {
        let span = tracing::info_span!(
            "vips.encode",
            content_type = format.content_type(),
            bytes = tracing::field::Empty,
        );
        let _entered = span.enter();
        // Decoding runs here too (libvips is lazy), so a failure is most
        // likely bad input; the encoders' settings are fixed and tested.
        let data = encode::encode(&image, format, plan.quality).map_err(|error| {
            libvips::log_failure("encode", &error);
            RenderError::CorruptInput
        })?;
        span.record("bytes", data.len());
        data
    };
    Ok(Derivative {
        format,
        width: dimension(image.get_width()),
        height: dimension(image.get_height()),
        data,
    })
}

/// Reads the header with `format`'s own loader, decoding no pixels.
fn read_header(input: &[u8], format: InputFormat) -> Result<Header, RenderError> {
    libvips::inspect_header(input, format, |image| {
        let width = dimension(image.get_width());
        let height = dimension(image.get_height());
        let pages = dimension(image.get_n_pages()).max(1);
        let has_field = |name: &str| image.get_typeof(name).is_ok_and(|gtype| gtype != 0);
        // EXIF orientations 5–8 turn the image a quarter.
        let quarter_turn = has_field("orientation")
            && image
                .get_int("orientation")
                .is_ok_and(|orientation| (5..=8).contains(&orientation));
        let (upright_width, upright_height) = if quarter_turn {
            (height, width)
        } else {
            (width, height)
        };
        Header {
            upright_width,
            upright_height,
            pixels: u64::from(width) * u64::from(height) * u64::from(pages),
            has_icc_profile: has_field("icc-profile-data"),
        }
    })
}

/// Runs libvips' `thumbnail_buffer` for `target`.
fn thumbnail(
    input: &[u8],
    target: &ThumbnailBox,
    has_icc_profile: bool,
) -> rs_vips::Result<VipsImage> {
    let size = match target.resize {
        Resize::Both => Size::Both,
        Resize::DownOnly => Size::Down,
        Resize::Force => Size::Force,
    };
    // Box sides are at most MAX_OUTPUT_SIDE, so they fit an i32. libvips
    // 8.14's thumbnail_buffer does not pass its own `fail_on` on to the
    // loader, so the loader gets it through the option string as well.
    let mut options = VOption::new()
        .set("height", target.height as i32)
        .set("size", size as i32)
        .set("fail_on", FailOn::Truncated as i32)
        .set("option_string", "fail_on=truncated");
    if target.crop {
        options = options.set("crop", Interesting::Centre as i32);
    }
    if has_icc_profile {
        // Metadata is stripped on save, so colours must be in sRGB first.
        options = options.set("export_profile", "srgb");
    }
    VipsImage::thumbnail_buffer_with_opts(input, target.width as i32, options)
}

/// A libvips dimension (never negative) as `u32`.
fn dimension(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use imgmesh_proto::renderer::v1::{Fit, OutputFormat};

    use super::*;
    use crate::test_images;

    fn plan(width: u32, height: u32, fit: Fit) -> RenderPlan {
        RenderPlan {
            width,
            height,
            fit: fit.into(),
            ..RenderPlan::default()
        }
    }

    fn render(input: &[u8], plan: RenderPlan) -> Result<Derivative, RenderError> {
        render_image(input, &plan, &RenderLimits::default())
    }

    /// Decodes `data` again with libvips and returns its size.
    fn decoded_size(data: &[u8]) -> (u32, u32) {
        let image = VipsImage::new_from_buffer(data, "").expect("output decodes");
        (dimension(image.get_width()), dimension(image.get_height()))
    }

    /// Each fit mode gives imgix's output size for a 400×300 original.
    #[test]
    fn fit_modes_give_imgix_sizes() {
        let original = test_images::jpeg(400, 300);
        let dpr2 = RenderPlan {
            dpr_centi: 200,
            ..plan(100, 0, Fit::Clip)
        };
        let cases = [
            (plan(200, 0, Fit::Unspecified), (200, 150)),
            (plan(0, 150, Fit::Unspecified), (200, 150)),
            (plan(0, 0, Fit::Unspecified), (400, 300)),
            (plan(200, 200, Fit::Clip), (200, 150)),
            (plan(200, 200, Fit::Crop), (200, 200)),
            (plan(800, 0, Fit::Max), (400, 300)),
            (plan(800, 800, Fit::Max), (400, 300)),
            (plan(800, 0, Fit::Clip), (800, 600)),
            (plan(100, 300, Fit::Scale), (100, 300)),
            (dpr2, (200, 150)),
        ];
        for (plan, expected) in cases {
            let derivative = render(&original, plan).unwrap();
            assert_eq!((derivative.width, derivative.height), expected, "{plan:?}");
            assert_eq!(decoded_size(&derivative.data), expected, "{plan:?}");
        }
    }

    /// A width beyond the output limit is clamped to 8192 pixels.
    #[test]
    fn output_is_clamped_to_8192() {
        let original = test_images::jpeg(400, 300);
        let derivative = render(&original, plan(9000, 0, Fit::Clip)).unwrap();
        assert_eq!((derivative.width, derivative.height), (8192, 6144));
    }

    /// Every output format is what was asked for: magic bytes, content type, and it decodes.
    #[test]
    fn every_output_format_decodes() {
        let original = test_images::jpeg(400, 300);
        type HasMagic = fn(&[u8]) -> bool;
        let cases: [(OutputFormat, EncodedFormat, HasMagic); 4] = [
            (OutputFormat::Jpeg, EncodedFormat::Jpeg, |d| {
                d.starts_with(&[0xFF, 0xD8, 0xFF])
            }),
            (OutputFormat::Png, EncodedFormat::Png, |d| {
                d.starts_with(b"\x89PNG\r\n\x1a\n")
            }),
            (OutputFormat::Webp, EncodedFormat::Webp, |d| {
                d.starts_with(b"RIFF") && &d[8..12] == b"WEBP"
            }),
            (OutputFormat::Avif, EncodedFormat::Avif, |d| {
                &d[4..8] == b"ftyp" && &d[8..12] == b"avif"
            }),
        ];
        for (requested, expected, has_magic) in cases {
            let derivative = render(
                &original,
                RenderPlan {
                    format: requested.into(),
                    ..plan(120, 0, Fit::Clip)
                },
            )
            .unwrap();
            assert_eq!(derivative.format, expected);
            assert!(has_magic(&derivative.data), "{expected:?} magic");
            assert_eq!(decoded_size(&derivative.data), (120, 90), "{expected:?}");
        }
    }

    /// Without a format, each input keeps its family (GIF → PNG, HEIF/AVIF → AVIF).
    #[test]
    fn unspecified_format_keeps_the_family() {
        let cases = [
            (test_images::jpeg(64, 48), EncodedFormat::Jpeg),
            (test_images::png(64, 48), EncodedFormat::Png),
            (test_images::webp(64, 48), EncodedFormat::Webp),
            (test_images::animated_gif(64, 48, 3), EncodedFormat::Png),
            (test_images::avif(64, 48), EncodedFormat::Avif),
        ];
        for (original, family) in cases {
            let derivative = render(&original, plan(32, 0, Fit::Clip)).unwrap();
            assert_eq!(derivative.format, family);
            assert_eq!(
                (derivative.width, derivative.height),
                (32, 24),
                "{family:?}"
            );
            assert_eq!(decoded_size(&derivative.data), (32, 24), "{family:?}");
        }
    }

    /// A lower quality gives a smaller file, for JPEG, WebP and AVIF.
    #[test]
    fn quality_changes_size() {
        let original = test_images::jpeg(400, 300);
        for format in [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Avif] {
            let at = |quality| {
                render(
                    &original,
                    RenderPlan {
                        format: format.into(),
                        quality,
                        ..plan(300, 0, Fit::Clip)
                    },
                )
                .unwrap()
                .data
                .len()
            };
            let (low, high) = (at(20), at(95));
            assert!(
                low < high,
                "{format:?}: q=20 {low} bytes, q=95 {high} bytes"
            );
        }
    }

    /// An EXIF orientation of 6 is applied: a 400×300 original comes out 300 wide, 400 high.
    #[test]
    fn exif_orientation_is_applied() {
        let original = test_images::jpeg_with_orientation(400, 300, 6);
        let whole = render(&original, RenderPlan::default()).unwrap();
        assert_eq!((whole.width, whole.height), (300, 400));
        let resized = render(&original, plan(150, 0, Fit::Clip)).unwrap();
        assert_eq!((resized.width, resized.height), (150, 200));
        assert_eq!(decoded_size(&resized.data), (150, 200));
    }

    /// A transparent PNG rendered as JPEG is flattened onto white.
    #[test]
    fn alpha_is_flattened_onto_white_for_jpeg() {
        let original = test_images::transparent_png(64, 64);
        let derivative = render(
            &original,
            RenderPlan {
                format: OutputFormat::Jpeg.into(),
                ..plan(32, 0, Fit::Clip)
            },
        )
        .unwrap();
        let image = VipsImage::new_from_buffer(&derivative.data, "").unwrap();
        assert_eq!(image.get_bands(), 3);
        assert!(
            image.avg().unwrap() > 250.0,
            "mean {}",
            image.avg().unwrap()
        );
    }

    /// An embedded ICC profile is converted to sRGB and stripped from the output.
    #[test]
    fn icc_profile_is_converted_and_stripped() {
        let with_profile = test_images::photo(64, 48)
            .icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))
            .unwrap();
        assert!(with_profile.get_typeof("icc-profile-data").unwrap() != 0);
        let original = with_profile.jpegsave_buffer().unwrap();
        let derivative = render(&original, plan(32, 0, Fit::Clip)).unwrap();
        let image = VipsImage::new_from_buffer(&derivative.data, "").unwrap();
        assert_eq!(image.get_typeof("icc-profile-data").unwrap(), 0);
        assert_eq!((derivative.width, derivative.height), (32, 24));
    }

    /// A 10000×10000 PNG (small on disk) is refused as too large, from its header.
    #[test]
    fn pixel_limit_refuses_large_images() {
        crate::libvips::init().unwrap();
        let black = VipsImage::black(10_000, 10_000)
            .unwrap()
            .pngsave_buffer_with_opts(VOption::new().set("compression", 1))
            .unwrap();
        let error = render(&black, plan(100, 0, Fit::Clip)).unwrap_err();
        assert!(
            matches!(
                error,
                RenderError::TooManyPixels {
                    pixels: 100_000_000,
                    limit: DEFAULT_MAX_PIXELS
                }
            ),
            "{error:?}"
        );
    }

    /// A hand-made 50000×50000 PNG header is refused before any decode, quickly.
    #[test]
    fn bomb_header_is_refused_before_decoding() {
        let bomb = test_images::png_header_only(50_000, 50_000);
        assert!(bomb.len() < 100);
        crate::libvips::init().unwrap();
        let started = Instant::now();
        let error = render(&bomb, plan(100, 0, Fit::Clip)).unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(
                error,
                RenderError::TooManyPixels {
                    pixels: 2_500_000_000,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    }

    /// The limit is inclusive, and every page of an animation counts.
    #[test]
    fn pixel_limit_is_inclusive_and_counts_pages() {
        let original = test_images::jpeg(400, 300);
        let limits = |max_pixels| RenderLimits {
            max_pixels,
            ..RenderLimits::default()
        };
        let at_limit = render_image(&original, &plan(100, 0, Fit::Clip), &limits(120_000));
        assert!(at_limit.is_ok(), "{at_limit:?}");
        let over = render_image(&original, &plan(100, 0, Fit::Clip), &limits(119_999));
        assert!(
            matches!(over, Err(RenderError::TooManyPixels { .. })),
            "{over:?}"
        );

        let gif = test_images::animated_gif(100, 100, 3);
        let one_page = render_image(&gif, &plan(50, 0, Fit::Clip), &limits(20_000));
        assert!(
            matches!(
                one_page,
                Err(RenderError::TooManyPixels { pixels: 30_000, .. })
            ),
            "{one_page:?}"
        );
    }

    /// Inputs over the byte limit are refused before they are even sniffed.
    #[test]
    fn byte_limit_refuses_large_inputs() {
        let original = test_images::jpeg(64, 48);
        let limits = RenderLimits {
            max_object_bytes: original.len() as u64 - 1,
            ..RenderLimits::default()
        };
        let error = render_image(&original, &RenderPlan::default(), &limits).unwrap_err();
        assert!(
            matches!(error, RenderError::ObjectTooLarge { .. }),
            "{error:?}"
        );
    }

    /// Non-image bytes, SVG, PDF, TIFF, MATLAB and BMP are UNSUPPORTED_INPUT.
    #[test]
    fn unsupported_inputs_are_refused() {
        let tiff = test_images::tiff(16, 16);
        let inputs: [&[u8]; 7] = [
            b"hello, world",
            b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
            b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
            &tiff,
            b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024",
            b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0",
            b"",
        ];
        for input in inputs {
            let error = render(input, plan(10, 0, Fit::Clip)).unwrap_err();
            assert!(matches!(error, RenderError::UnsupportedInput), "{error:?}");
        }
    }

    /// Truncated or garbled images of a served format are CORRUPT_INPUT, not a panic.
    #[test]
    fn corrupt_inputs_are_refused() {
        let jpeg = test_images::jpeg(400, 300);
        let png = test_images::png(64, 64);
        let inputs: [&[u8]; 5] = [
            &jpeg[..jpeg.len() / 2],
            &jpeg[..200],
            b"\xFF\xD8\xFF\xE0 this is not really a jpeg",
            &png[..png.len() / 2],
            b"\0\0\0\x1cftypavif\0\0\0\0garbage",
        ];
        for input in inputs {
            let error = render(input, plan(100, 0, Fit::Clip)).unwrap_err();
            assert!(matches!(error, RenderError::CorruptInput), "{error:?}");
        }
    }

    /// libvips itself refuses loaders outside the allow-list (TIFF, SVG).
    #[test]
    fn libvips_blocks_other_loaders() {
        crate::libvips::init().unwrap();
        let tiff = test_images::tiff(16, 16);
        assert!(VipsImage::new_from_buffer(&tiff, "").is_err());
        let svg = b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>";
        assert!(VipsImage::new_from_buffer(svg, "").is_err());
        rs_vips::Vips::error_clear();
        assert!(VipsImage::new_from_buffer(&test_images::jpeg(16, 16), "").is_ok());
    }
}
