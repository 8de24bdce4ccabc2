//! The images a comparison needs: the corpus originals fully decoded, the
//! full-decode Lanczos3 reference at any size, the libvips floor's render,
//! and the renderer's own libvips calls for a W1 request, replayed here
//! (the thumbnail of `services/renderer/src/pipeline/load/source_image.rs`'s
//! `thumbnail`, the JPEG options of `pipeline/encoding/encode.rs`'s `encode`).

use std::path::Path;

use anyhow::{Context as _, ensure};
use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, FailOn, ForeignSubsample, Interpretation, Kernel, Size};
use rs_vips::voption::{Setter as _, VOption};

use super::ssim::Plane;

/// A corpus original: its bytes and its full decode.
#[derive(Debug)]
pub(crate) struct Original {
    /// The file name, as the gateway serves it.
    pub(crate) name: String,
    /// The file's bytes.
    pub(crate) bytes: Vec<u8>,
    /// Whether it embeds an ICC profile.
    pub(crate) has_icc_profile: bool,
    /// Every pixel decoded at full size (no shrink-on-load), in sRGB
    /// (through its embedded profile when it has one), in memory.
    full: VipsImage,
}

// === impl Original ===

impl Original {
    /// Reads and fully decodes `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Original> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("a corpus file without a UTF-8 name")?
            .to_owned();
        // Random access (the default): the whole image is decoded at its
        // stored size, no shrink-on-load.
        let image =
            VipsImage::new_from_buffer(&bytes, "").with_context(|| format!("decoding {name}"))?;
        let has_icc_profile = image.get_typeof("icc-profile-data").is_ok_and(|t| t != 0);
        let image = if has_icc_profile {
            image
                .icc_transform_with_opts("srgb", VOption::new().set("embedded", true))
                .with_context(|| format!("{name}'s profile to sRGB"))?
        } else {
            image
        };
        let full = image
            .copy_memory()
            .with_context(|| format!("decoding all of {name}"))?;
        Ok(Original {
            name,
            bytes,
            has_icc_profile,
            full,
        })
    }

    /// Stored width and height.
    pub(crate) fn size(&self) -> (i32, i32) {
        (self.full.get_width(), self.full.get_height())
    }

    /// The reference for an output of `width × height`: the full decode
    /// resized with Lanczos3 alone (`gap` 0: no box pre-shrink), as luma.
    pub(crate) fn reference(&self, width: i32, height: i32) -> anyhow::Result<Plane> {
        let (full_width, full_height) = self.size();
        // +0.1: the size libvips rounds to is exactly width × height
        // whether it rounds or truncates.
        let scale_x = (f64::from(width) + 0.1) / f64::from(full_width);
        let scale_y = (f64::from(height) + 0.1) / f64::from(full_height);
        let resized = self
            .full
            .resize_with_opts(
                scale_x,
                VOption::new()
                    .set("vscale", scale_y)
                    .set("kernel", Kernel::Lanczos3 as i32)
                    .set("gap", 0.0),
            )
            .with_context(|| format!("resizing {} to {width} × {height}", self.name))?;
        ensure!(
            (resized.get_width(), resized.get_height()) == (width, height),
            "the reference of {} came out {} × {}, not {width} × {height}",
            self.name,
            resized.get_width(),
            resized.get_height()
        );
        luma(&resized)
    }
}

/// JPEG encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JpegSettings {
    /// Huffman tables optimised (an extra pass over the coefficients).
    pub(crate) optimize_coding: bool,
    /// Progressive (every coefficient buffered, then written in scans).
    pub(crate) interlace: bool,
    /// Metadata stripped.
    pub(crate) strip: bool,
}

impl JpegSettings {
    /// The floor's: libvips' defaults (baseline, standard Huffman tables,
    /// metadata kept).
    pub(crate) const FLOOR: JpegSettings = JpegSettings {
        optimize_coding: false,
        interlace: false,
        strip: false,
    };
    /// The renderer's for `fm=jpg&q=80` (imgix's default progressive JPEG,
    /// optimised tables, metadata stripped).
    pub(crate) const MESH: JpegSettings = JpegSettings {
        optimize_coding: true,
        interlace: true,
        strip: true,
    };
}

/// `image` as a Q 80, 4:2:0 JPEG with `settings`.
pub(crate) fn jpeg(image: &VipsImage, settings: JpegSettings) -> anyhow::Result<Vec<u8>> {
    let options = VOption::new()
        .set("Q", 80)
        .set("subsample_mode", ForeignSubsample::Auto as i32)
        .set("optimize_coding", settings.optimize_coding)
        .set("interlace", settings.interlace)
        .set("strip", settings.strip);
    image
        .jpegsave_buffer_with_opts(options)
        .context("encoding JPEG")
}

/// The floor's load: `thumbnail_buffer` to `width`, libvips' defaults.
pub(crate) fn floor_thumbnail(original: &Original, width: i32) -> anyhow::Result<VipsImage> {
    VipsImage::thumbnail_buffer(&original.bytes, width).context("floor thumbnail")
}

/// The renderer's load for a whole upright single-page JPEG:
/// `thumbnail_buffer` to exactly `width × height` (size force), no
/// rotation, failing on truncation, converted to sRGB through the embedded
/// profile when there is one and `colour_managed`.
pub(crate) fn mesh_thumbnail(
    original: &Original,
    width: i32,
    height: i32,
    colour_managed: bool,
) -> anyhow::Result<VipsImage> {
    let mut options = VOption::new()
        .set("height", height)
        .set("size", Size::Force as i32)
        .set("no_rotate", true)
        .set("fail_on", FailOn::Truncated as i32)
        .set("option_string", "fail_on=truncated");
    if original.has_icc_profile && colour_managed {
        options = options.set("export_profile", "srgb");
    }
    VipsImage::thumbnail_buffer_with_opts(&original.bytes, width, options).context("mesh thumbnail")
}

/// The height the renderer gives a whole-image resize to `width`.
pub(crate) fn mesh_height(original: &Original, width: i32) -> i32 {
    let (full_width, full_height) = original.size();
    ((f64::from(full_height) * f64::from(width) / f64::from(full_width)).round() as i32).max(1)
}

/// Decodes an encoded image (JPEG, WebP, AVIF…) to luma.
pub(crate) fn decode_luma(bytes: &[u8]) -> anyhow::Result<Plane> {
    let image = VipsImage::new_from_buffer(bytes, "").context("decoding an output")?;
    luma(&image)
}

/// `image`'s Rec. 601 luma, after flattening alpha onto white and turning
/// it into 8-bit sRGB.
pub(crate) fn luma(image: &VipsImage) -> anyhow::Result<Plane> {
    let flat;
    let image = if image.hasalpha() {
        flat = image
            .flatten_with_opts(VOption::new().set("background", &[255.0][..]))
            .context("flattening alpha")?;
        &flat
    } else {
        image
    };
    let rgb = image
        .colourspace(Interpretation::Srgb)
        .and_then(|i| i.cast(BandFormat::Uchar))
        .context("to 8-bit sRGB")?;
    ensure!(rgb.get_bands() == 3, "{} bands after sRGB", rgb.get_bands());
    let width = usize::try_from(rgb.get_width())?;
    let height = usize::try_from(rgb.get_height())?;
    Plane::luma_of_rgb(width, height, &rgb.write_to_memory())
}
