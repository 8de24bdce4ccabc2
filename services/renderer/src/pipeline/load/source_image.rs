//! Reading the original: what its header says, and its pixels at the size
//! a [`Layout`] needs.
//!
//! Loading always goes through libvips' `thumbnail_buffer` (shrink-on-load:
//! JPEG decodes at 1/2, 1/4 or 1/8 scale, WebP and HEIF at the target size)
//! whenever it can: the whole source is thumbnailed at the scale that maps
//! the layout's region to its resize target, and the region is then cut
//! out of the (lazy) result, so only the kept pixels are resampled. A region
//! that is enlarged (where shrink-on-load gains nothing) is instead cut from
//! the decoded source and then resized.
//!
//! Orientation is applied here, never by `thumbnail` itself: the file's
//! EXIF orientation or the plan's `orient` override, all eight values.
//! Colours are converted to sRGB (embedded ICC profiles honoured, CMYK
//! converted with its profile or a generic one) unless the plan keeps the
//! source's colour space. A JPEG whose profile is one of the sRGB profiles
//! whose conversion to libvips' sRGB changes no 8-bit value
//! ([`is_identity_srgb_profile`]) skips the colour transform: it is given
//! libvips' sRGB profile instead, as the transform would have.
//!
//! Every image that pixels are computed from is put under the render's
//! time budget ([`RenderBudget::watch`]), so a slow decode is stopped.

use std::ffi::CString;
use std::sync::{Arc, OnceLock};

use rs_vips::VipsImage;
use rs_vips::enums::{Angle, BandFormat, Direction, FailOn, Interpretation, Size};
use rs_vips::voption::{Setter as _, VOption};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::geometry::Layout;
use crate::pipeline::load::input_format::{InputFormat, jpeg_scan_count};
use crate::pipeline::load::libvips::{self, Argument, RenderBudget};

/// The largest side of a whole-source thumbnail before the full-decode
/// fallback is used instead (libvips' own limit is 10 million; past this,
/// the whole image blown up is a worse plan than cutting the region first).
const MAX_THUMBNAIL_SIDE: f64 = 65_535.0;

/// The most scans a JPEG may have. A progressive decoder walks every block
/// once per scan, and libjpeg reads every scan before it hands out the
/// first row (shrink-on-load saves nothing), inside one libvips call the
/// render's time budget cannot stop: 2647 legal scans over 12 MP take
/// libvips 7 s. Encoders write about 10 (libjpeg's progressive script) to
/// a few dozen.
pub(crate) const MAX_JPEG_SCANS: usize = 100;

/// What an original's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Width as stored, one page.
    pub(crate) width: u32,
    /// Height as stored, one page.
    pub(crate) height: u32,
    /// Pages (frames); 1 for still images.
    pub(crate) pages: u32,
    /// EXIF orientation 1–8 (1 when absent).
    pub(crate) orientation: u8,
    /// Whether an ICC profile is embedded.
    pub(crate) has_icc_profile: bool,
    /// Whether the image is 8-bit RGB (a JPEG) whose embedded profile is an
    /// sRGB profile that converting to libvips' sRGB leaves every value of
    /// ([`is_identity_srgb_profile`]): the colour transform is skipped.
    pub(crate) srgb_profile: bool,
    /// Whether the image has an alpha channel.
    pub(crate) has_alpha: bool,
    /// Whether the pixels are CMYK.
    pub(crate) cmyk: bool,
}

// === impl Header ===

impl Header {
    /// Reads the header with `format`'s own loader, decoding no pixels.
    /// A JPEG of more than [`MAX_JPEG_SCANS`] scans is refused first.
    pub(crate) fn read(input: &[u8], format: InputFormat) -> Result<Header, RenderError> {
        if format == InputFormat::Jpeg {
            let scans = jpeg_scan_count(input, MAX_JPEG_SCANS);
            if scans > MAX_JPEG_SCANS {
                METRICS.render_stopped("scans");
                return Err(RenderError::TooManyScans {
                    limit: MAX_JPEG_SCANS,
                });
            }
        }
        libvips::inspect_header(input, format, |image| {
            let has_field = |name: &str| image.get_typeof(name).is_ok_and(|gtype| gtype != 0);
            let orientation = if has_field("orientation") {
                image
                    .get_int("orientation")
                    .ok()
                    .filter(|o| (1..=8).contains(o))
                    .unwrap_or(1)
            } else {
                1
            };
            let pages = if has_field("n-pages") {
                image.get_int("n-pages").unwrap_or(1)
            } else {
                1
            };
            let has_icc_profile = has_field("icc-profile-data");
            let interpretation = image.get_interpretation();
            // The transform was proven the identity on 8-bit RGB only.
            let srgb_profile = has_icc_profile
                && format == InputFormat::Jpeg
                && interpretation
                    .as_ref()
                    .is_ok_and(|i| *i == Interpretation::Srgb)
                && image.get_bands() == 3
                && image.get_format().is_ok_and(|f| f == BandFormat::Uchar)
                && image
                    .get_blob("icc-profile-data")
                    .is_ok_and(|profile| is_identity_srgb_profile(&profile));
            Header {
                width: dimension(image.get_width()),
                height: dimension(image.get_height()),
                pages: dimension(pages).max(1),
                orientation: orientation as u8,
                has_icc_profile,
                srgb_profile,
                has_alpha: image.hasalpha(),
                cmyk: interpretation.is_ok_and(|i| i == Interpretation::Cmyk),
            }
        })
    }

    /// width × height × pages, as stored.
    pub(crate) fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * u64::from(self.pages)
    }

    /// The size once `orientation` is applied.
    pub(crate) fn upright(&self, orientation: u8) -> (u32, u32) {
        if swaps_axes(orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Which pages to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pages {
    /// One page, 0-based.
    One(u32),
    /// Every page, as a strip with `page-height`.
    All,
}

/// How to load an original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadOptions {
    /// The pages wanted.
    pub(crate) pages: Pages,
    /// The orientation to apply (the file's or the plan's override).
    pub(crate) orientation: u8,
    /// Keep the source's colour space and profile (`cs=origin`), where the
    /// source is RGB.
    pub(crate) keep_color_space: bool,
}

/// The loaded frames, each the layout's region at its resize size.
#[derive(Debug)]
pub(crate) struct Frames {
    /// One image per page.
    pub(crate) images: Vec<VipsImage>,
    /// Per-frame delays in milliseconds, for animations.
    pub(crate) delays: Option<Vec<i32>>,
    /// Animation loop count (0 = forever).
    pub(crate) loop_count: Option<i32>,
}

/// Loads the layout's region of `input` at its resize size, upright. The
/// images share `input` with the caller (no copy is made for the
/// thumbnail).
pub(crate) fn load(
    input: &Arc<Vec<u8>>,
    header: &Header,
    layout: &Layout,
    options: &LoadOptions,
    budget: &RenderBudget,
) -> Result<Frames, RenderError> {
    let failed = budget.failure("thumbnail");
    let (upright_width, upright_height) = header.upright(options.orientation);
    let region = layout.region;
    let (resize_width, resize_height) = layout.resize;
    let scale_x = f64::from(resize_width) / region.width;
    let scale_y = f64::from(resize_height) / region.height;
    let whole = layout.uses_whole_source(upright_width, upright_height);
    let (whole_width, whole_height) = if whole {
        (f64::from(resize_width), f64::from(resize_height))
    } else {
        (
            (f64::from(upright_width) * scale_x).round().max(1.0),
            (f64::from(upright_height) * scale_y).round().max(1.0),
        )
    };
    // Enlarging part of the image gains nothing from shrink-on-load, and a
    // thumbnail streams top to bottom: everything above the region would be
    // enlarged too. Cut the region first instead.
    if whole_width.max(whole_height) > MAX_THUMBNAIL_SIDE || (!whole && scale_x.max(scale_y) > 1.0)
    {
        return decode_region(input, header, layout, options, budget);
    }
    let (stored_width, stored_height) = if swaps_axes(options.orientation) {
        (whole_height, whole_width)
    } else {
        (whole_width, whole_height)
    };
    let mut thumbnail = thumbnail(
        input,
        header,
        stored_width as i32,
        stored_height as i32,
        options,
    )
    .and_then(|image| tagged_srgb(image, header, options))
    .map_err(&failed)?;
    budget.watch(&thumbnail);
    if options.orientation != 1 || options.pages == Pages::All {
        // Turning and splitting read out of order; thumbnail streams.
        thumbnail = thumbnail.copy_memory().map_err(&failed)?;
        budget.watch(&thumbnail);
    }
    let (delays, loop_count) = animation_metadata(&thumbnail);
    let images = each_page(&thumbnail, budget, |page| {
        let page = orient(&page, options.orientation)?;
        if whole {
            return Ok(page);
        }
        let left = (region.x * scale_x).round() as i32;
        let top = (region.y * scale_y).round() as i32;
        extract_within(&page, left, top, resize_width as i32, resize_height as i32)
    })?;
    Ok(Frames {
        images,
        delays,
        loop_count,
    })
}

/// The fallback: decode at full size, cut the region out, resize it.
fn decode_region(
    input: &[u8],
    header: &Header,
    layout: &Layout,
    options: &LoadOptions,
    budget: &RenderBudget,
) -> Result<Frames, RenderError> {
    let failed = budget.failure("decode");
    let image =
        VipsImage::new_from_buffer(input, &loader_options(options.pages)).map_err(&failed)?;
    budget.watch(&image);
    // Loaded with random access (the default), so turning and cutting need
    // no copy of the whole image.
    let image = to_working_colour(&image, header, options).map_err(&failed)?;
    let (delays, loop_count) = animation_metadata(&image);
    let region = layout.region;
    let (resize_width, resize_height) = layout.resize;
    let images = each_page(&image, budget, |page| {
        let page = orient(&page, options.orientation)?;
        let left = region.x.floor() as i32;
        let top = region.y.floor() as i32;
        let width = (region.width.round() as i32).max(1);
        let height = (region.height.round() as i32).max(1);
        let cut = extract_within(&page, left, top, width, height)?;
        let scale_x = f64::from(resize_width) / f64::from(cut.get_width());
        let scale_y = f64::from(resize_height) / f64::from(cut.get_height());
        cut.resize_with_opts(scale_x, VOption::new().set("vscale", scale_y))
    })?;
    Ok(Frames {
        images,
        delays,
        loop_count,
    })
}

/// libvips' `thumbnail_buffer` to exactly `width × height` (as stored),
/// reading `input` in place ([`libvips::thumbnail_shared`]).
fn thumbnail(
    input: &Arc<Vec<u8>>,
    header: &Header,
    width: i32,
    height: i32,
    options: &LoadOptions,
) -> rs_vips::Result<VipsImage> {
    // libvips 8.14's thumbnail_buffer does not pass its own `fail_on` on to
    // the loader, so the loader gets it through the option string as well.
    let loader = CString::new(loader_options(options.pages))
        .map_err(|_| rs_vips::error::Error::OperationError("loader options".into()))?;
    let mut arguments = vec![
        (c"height", Argument::Int(height)),
        (c"size", Argument::Int(Size::Force as i32)),
        (c"no_rotate", Argument::Int(1)),
        (c"fail_on", Argument::Int(FailOn::Truncated as i32)),
        (c"option_string", Argument::Str(&loader)),
    ];
    if converts_to_srgb(header, options) {
        // Metadata is stripped on save, so colours must be in sRGB first.
        arguments.push((c"export_profile", Argument::Str(c"srgb")));
    }
    if header.cmyk && !header.has_icc_profile {
        arguments.push((c"import_profile", Argument::Str(c"cmyk")));
    }
    libvips::thumbnail_shared(input, width, &arguments)
}

/// The loader's option string for `pages`.
fn loader_options(pages: Pages) -> String {
    match pages {
        Pages::One(0) => "fail_on=truncated".to_owned(),
        Pages::One(page) => format!("fail_on=truncated,page={page}"),
        Pages::All => "fail_on=truncated,n=-1".to_owned(),
    }
}

/// `image` in sRGB (or its own RGB space when kept), for the fallback path.
fn to_working_colour(
    image: &VipsImage,
    header: &Header,
    options: &LoadOptions,
) -> rs_vips::Result<VipsImage> {
    if converts_to_srgb(header, options) {
        let mut transform = VOption::new().set("embedded", true);
        if header.cmyk && !header.has_icc_profile {
            transform = VOption::new().set("input_profile", "cmyk");
        }
        return image.icc_transform_with_opts("srgb", transform);
    }
    tagged_srgb(image.copy()?, header, options)
}

/// Whether the load converts the pixels to sRGB: the source has a profile
/// or is CMYK, the plan does not keep an RGB source's colour space, and the
/// profile is not one whose conversion changes nothing
/// ([`Header::srgb_profile`]).
fn converts_to_srgb(header: &Header, options: &LoadOptions) -> bool {
    let keep = options.keep_color_space && !header.cmyk;
    (header.has_icc_profile || header.cmyk) && !keep && !header.srgb_profile
}

/// `image`, loaded without the colour transform because its profile is an
/// sRGB one whose conversion changes no pixel ([`Header::srgb_profile`]),
/// tagged with libvips' sRGB profile as the transform would have left it
/// (`cs=srgb` embeds it); any other image as it is.
fn tagged_srgb(
    mut image: VipsImage,
    header: &Header,
    options: &LoadOptions,
) -> rs_vips::Result<VipsImage> {
    if header.srgb_profile && !options.keep_color_space {
        image.set_blob_copy("icc-profile-data", libvips_srgb_profile()?)?;
    }
    Ok(image)
}

/// libvips' own sRGB profile (what `export_profile=srgb` converts to and
/// tags with), loaded once.
fn libvips_srgb_profile() -> rs_vips::Result<&'static [u8]> {
    static PROFILE: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(profile) = PROFILE.get() {
        return Ok(profile);
    }
    let profile = VipsImage::profile_load("srgb")?;
    Ok(PROFILE.get_or_init(|| profile))
}

/// An sRGB profile written by Little CMS (ICC v4, sRGB's parametric
/// curves, described as "sRGB IEC61966-2.1"), as the benchmark corpus's
/// string.jpg carries it.
const LCMS_SRGB_V4: &[u8] = include_bytes!("srgb-lcms-v4.icc");

/// Whether `profile` is, byte for byte, libvips' sRGB profile or Little
/// CMS's (its header's creation date and profile ID aside, which say
/// nothing about colour). Converting from either to libvips' sRGB (relative
/// colorimetric, as the load does) gives back every one of the 2^24 8-bit
/// RGB values unchanged (proven by the test
/// `srgb_profiles_convert_to_themselves`), so the transform can be skipped.
fn is_identity_srgb_profile(profile: &[u8]) -> bool {
    let same = |reference: &[u8]| {
        profile.len() == reference.len()
            && profile.len() > 128
            // Bytes 24..36: creation date; 84..100: profile ID (an MD5).
            && profile[..24] == reference[..24]
            && profile[36..84] == reference[36..84]
            && profile[100..] == reference[100..]
    };
    same(LCMS_SRGB_V4) || libvips_srgb_profile().is_ok_and(same)
}

/// `each` applied to every page of a strip (or to the image itself when it
/// has one page), checking the budget before each page: building a
/// pipeline per page costs more the more pages the strip has (libvips 8.14
/// takes seconds for a few thousand), so a long strip must not outrun it.
fn each_page(
    image: &VipsImage,
    budget: &RenderBudget,
    each: impl Fn(VipsImage) -> rs_vips::Result<VipsImage>,
) -> Result<Vec<VipsImage>, RenderError> {
    let failed = budget.failure("pages");
    let height = image.get_height();
    let page_height = image.get_page_height();
    if page_height <= 0 || page_height >= height || height % page_height != 0 {
        return Ok(vec![image.copy().and_then(each).map_err(failed)?]);
    }
    (0..height / page_height)
        .map(|page| {
            budget.check()?;
            image
                .extract_area(0, page * page_height, image.get_width(), page_height)
                .and_then(&each)
                .map_err(&failed)
        })
        .collect()
}

/// Delay and loop metadata of an animation, when present.
fn animation_metadata(image: &VipsImage) -> (Option<Vec<i32>>, Option<i32>) {
    let has_field = |name: &str| image.get_typeof(name).is_ok_and(|gtype| gtype != 0);
    let delays = has_field("delay")
        .then(|| image.get_array_int("delay").ok())
        .flatten();
    let loop_count = has_field("loop")
        .then(|| image.get_int("loop").ok())
        .flatten();
    (delays, loop_count)
}

/// Applies EXIF orientation `orientation` (1–8) so the image is upright.
pub(crate) fn orient(image: &VipsImage, orientation: u8) -> rs_vips::Result<VipsImage> {
    let mut image = match orientation {
        2 => image.flip(Direction::Horizontal)?,
        3 => image.rot(Angle::D180)?,
        4 => image.flip(Direction::Vertical)?,
        5 => image.rot(Angle::D90)?.flip(Direction::Horizontal)?,
        6 => image.rot(Angle::D90)?,
        7 => image.rot(Angle::D270)?.flip(Direction::Horizontal)?,
        8 => image.rot(Angle::D270)?,
        _ => image.copy()?,
    };
    // The pixels are upright now; a tag left behind would turn them again.
    image.remove("orientation")?;
    Ok(image)
}

/// Orientations 5–8 turn the image a quarter.
pub(crate) fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

/// `extract_area`, with the area moved (and shrunk) to lie inside `image`.
pub(crate) fn extract_within(
    image: &VipsImage,
    left: i32,
    top: i32,
    width: i32,
    height: i32,
) -> rs_vips::Result<VipsImage> {
    let (image_width, image_height) = (image.get_width(), image.get_height());
    let width = width.clamp(1, image_width);
    let height = height.clamp(1, image_height);
    let left = left.clamp(0, image_width - width);
    let top = top.clamp(0, image_height - height);
    if (left, top, width, height) == (0, 0, image_width, image_height) {
        return image.copy();
    }
    image.extract_area(left, top, width, height)
}

/// A libvips dimension (never negative) as `u32`.
pub(crate) fn dimension(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::geometry::Region;
    use crate::pipeline::plan::ResolvedPlan;
    use crate::test_images;

    fn resolved(query: &str) -> ResolvedPlan {
        let parsed = imgmesh_imgix_params::parse_render_plan("", query, None).unwrap();
        ResolvedPlan::resolve(&parsed.plan).unwrap()
    }

    /// `jpeg` with its last scan repeated until it has `scans` scans.
    fn with_scans(jpeg: &[u8], scans: usize) -> Vec<u8> {
        let have = jpeg_scan_count(jpeg, usize::MAX);
        let last_sos = jpeg
            .windows(2)
            .rposition(|pair| pair == [0xFF, 0xDA])
            .expect("a scan");
        let end = jpeg.len() - 2;
        assert_eq!(&jpeg[end..], &[0xFF, 0xD9]);
        let mut out = jpeg[..end].to_vec();
        for _ in have..scans {
            out.extend_from_slice(&jpeg[last_sos..end]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    fn progressive_jpeg() -> Vec<u8> {
        crate::pipeline::load::libvips::init().unwrap();
        test_images::photo(64, 48)
            .jpegsave_buffer_with_opts(VOption::new().set("interlace", true))
            .unwrap()
    }

    /// libjpeg's progressive script for YCbCr has 10 scans (jcparam.c's
    /// `jpeg_simple_progression`), a baseline JPEG one; an EXIF thumbnail's
    /// scan is not counted, and the count stops past its limit.
    #[test]
    fn scans_are_counted_by_segment() {
        let progressive = progressive_jpeg();
        assert_eq!(jpeg_scan_count(&progressive, usize::MAX), 10);
        assert_eq!(jpeg_scan_count(&test_images::jpeg(64, 48), usize::MAX), 1);
        let mut with_thumbnail = progressive[..2].to_vec();
        let thumbnail = test_images::jpeg(8, 8);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&thumbnail);
        with_thumbnail.extend_from_slice(&[0xFF, 0xE1]);
        with_thumbnail.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
        with_thumbnail.extend_from_slice(&app1);
        with_thumbnail.extend_from_slice(&progressive[2..]);
        assert_eq!(jpeg_scan_count(&with_thumbnail, usize::MAX), 10);
        assert_eq!(jpeg_scan_count(&with_scans(&progressive, 5000), 100), 101);
    }

    /// A header read without the unused metadata says what the whole
    /// file's says: size, orientation, profile, CMYK.
    #[test]
    fn headers_read_without_unused_metadata_are_the_same() {
        let with_profile = test_images::jpeg_with_orientation_and_profile(64, 48);
        let cmyk = test_images::cmyk_jpeg(40, 30, [10.0, 20.0, 30.0, 40.0]);
        for base in [with_profile, cmyk] {
            let with_xmp = test_images::jpeg_with_unused_metadata(&base, 4, 60_000);
            assert!(matches!(
                crate::pipeline::load::input_format::jpeg_for_header(&with_xmp),
                std::borrow::Cow::Owned(_)
            ));
            let header = Header::read(&with_xmp, InputFormat::Jpeg).unwrap();
            assert_eq!(header, Header::read(&base, InputFormat::Jpeg).unwrap());
            assert!(header.orientation == 6 || header.cmyk, "{header:?}");
        }
        let header = Header::read(
            &test_images::jpeg_with_orientation_and_profile(64, 48),
            InputFormat::Jpeg,
        )
        .unwrap();
        assert!(
            header.has_icc_profile && header.orientation == 6,
            "{header:?}"
        );
    }

    /// Every 8-bit RGB value (4096 × 4096 pixels) converted from each
    /// recognised sRGB profile to libvips' sRGB, as the load converts
    /// (embedded profile in, relative colorimetric), comes out unchanged:
    /// skipping that transform changes no pixel.
    #[test]
    fn srgb_profiles_convert_to_themselves() {
        crate::pipeline::load::libvips::init().unwrap();
        let every_value: Vec<u8> = (0..4096_u32 * 4096)
            .flat_map(|i| {
                let (x, y) = (i % 4096, i / 4096);
                [
                    (x & 255) as u8,
                    (y & 255) as u8,
                    ((x >> 8) | ((y >> 8) << 4)) as u8,
                ]
            })
            .collect();
        let image = VipsImage::new_from_memory_copy(&every_value, 4096, 4096, 3, BandFormat::Uchar)
            .unwrap()
            .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
            .unwrap();
        for profile in [LCMS_SRGB_V4, libvips_srgb_profile().unwrap()] {
            assert!(is_identity_srgb_profile(profile));
            let mut tagged = image.copy().unwrap();
            tagged.set_blob_copy("icc-profile-data", profile).unwrap();
            let converted = tagged
                .icc_transform_with_opts("srgb", VOption::new().set("embedded", true))
                .unwrap();
            assert_eq!(
                (converted.get_bands(), converted.get_format().unwrap()),
                (3, BandFormat::Uchar)
            );
            assert!(
                converted.write_to_memory() == every_value,
                "a value changed converting from a {}-byte profile",
                profile.len()
            );
        }
    }

    /// Profiles are recognised whatever their creation date and ID say,
    /// never when a byte that describes colour differs, nor a truncated or
    /// other profile (libvips' CMYK profile).
    #[test]
    fn only_known_srgb_profiles_are_recognised() {
        crate::pipeline::load::libvips::init().unwrap();
        let mut dated = LCMS_SRGB_V4.to_vec();
        dated[24..36].copy_from_slice(&[0x07, 0xE9, 0, 5, 0, 17, 0, 9, 0, 30, 0, 1]);
        dated[84..100].fill(0xAB);
        assert!(is_identity_srgb_profile(&dated));
        // The red colorant's X (rXYZ's first value, at 472 + 8).
        let mut other_red = LCMS_SRGB_V4.to_vec();
        other_red[483] ^= 1;
        assert!(!is_identity_srgb_profile(&other_red));
        // The rendering intent in the header.
        let mut other_intent = LCMS_SRGB_V4.to_vec();
        other_intent[67] = 1;
        assert!(!is_identity_srgb_profile(&other_intent));
        assert!(!is_identity_srgb_profile(&LCMS_SRGB_V4[..400]));
        assert!(!is_identity_srgb_profile(&[]));
        let cmyk = VipsImage::profile_load("cmyk").unwrap();
        assert!(!is_identity_srgb_profile(&cmyk));
    }

    /// A JPEG with an sRGB profile loads, without the colour transform,
    /// to the same pixels and the same profile (libvips' sRGB) as with it,
    /// through the thumbnail and the full-decode fallback, orientation
    /// applied; with `cs=origin` it keeps its own profile either way.
    #[test]
    fn skipping_the_srgb_transform_keeps_pixels_and_profile() {
        let mut image = test_images::photo(96, 64);
        image
            .set_blob_copy("icc-profile-data", LCMS_SRGB_V4)
            .unwrap();
        image.set_int("orientation", 6).unwrap();
        let jpeg = Arc::new(image.jpegsave_buffer().unwrap());
        let header = Header::read(&jpeg, InputFormat::Jpeg).unwrap();
        assert!(header.has_icc_profile && header.srgb_profile, "{header:?}");
        let transformed = Header {
            srgb_profile: false,
            ..header
        };
        let whole = Region::whole(64, 96);
        let layouts = [
            ("thumbnail", Layout::compute_in(whole, &resolved("w=40"))),
            (
                "fallback",
                Layout::compute_in(whole, &resolved("rect=8,8,16,16&w=64")),
            ),
        ];
        for keep_color_space in [false, true] {
            let options = LoadOptions {
                pages: Pages::One(0),
                orientation: 6,
                keep_color_space,
            };
            for (name, layout) in &layouts {
                let budget = RenderBudget::start(std::time::Duration::from_secs(60));
                let load = |header: &Header| {
                    let frames = load(&jpeg, header, layout, &options, &budget).unwrap();
                    let image = &frames.images[0];
                    (
                        (image.get_width(), image.get_height(), image.get_bands()),
                        image.write_to_memory(),
                        image.get_blob("icc-profile-data").unwrap(),
                    )
                };
                let (skipped, converted) = (load(&header), load(&transformed));
                assert_eq!(skipped.0, converted.0, "{name}");
                assert!(skipped.1 == converted.1, "{name}: the pixels differ");
                assert!(skipped.2 == converted.2, "{name}: the profiles differ");
                let expected: &[u8] = if keep_color_space {
                    LCMS_SRGB_V4
                } else {
                    libvips_srgb_profile().unwrap()
                };
                assert!(skipped.2 == expected, "{name}: not the expected profile");
            }
        }
        // A PNG with the same profile is not recognised (16-bit and alpha
        // PNGs convert to 8-bit RGB).
        let png = image.pngsave_buffer().unwrap();
        assert!(!Header::read(&png, InputFormat::Png).unwrap().srgb_profile);
    }

    /// A JPEG of `MAX_JPEG_SCANS` scans reads; one more is refused before
    /// libvips sees it, as too large.
    #[test]
    fn too_many_scans_are_refused_at_the_header() {
        let progressive = progressive_jpeg();
        let at_limit = Header::read(&with_scans(&progressive, MAX_JPEG_SCANS), InputFormat::Jpeg)
            .expect("at the limit");
        assert_eq!((at_limit.width, at_limit.height), (64, 48));
        let error = Header::read(
            &with_scans(&progressive, MAX_JPEG_SCANS + 1),
            InputFormat::Jpeg,
        )
        .unwrap_err();
        assert!(
            matches!(error, RenderError::TooManyScans { limit: 100 }),
            "{error:?}"
        );
        assert_eq!(error.code(), imgmesh_errors::ErrorCode::InputTooLarge);
        assert_eq!(
            error.to_string(),
            "image has more scans than the limit of 100"
        );
    }
}
