//! The pipeline's last step: the image encoded in the output format
//! ([`encode`]), or hashed for `fm=blurhash` (`blurhash`); and, before
//! any render, whether a plan that asks for nothing may hand the original
//! back unchanged (`passthrough`).

use imgmesh_proto::renderer::v1::{ChromaSubsampling, ColorSpace, OutputFormat};
use rs_vips::VipsImage;

use crate::error::RenderError;
use crate::pipeline::derivative::{Derivative, EncodedFormat};
use crate::pipeline::load::CheckedOriginal;
use crate::pipeline::load::libvips::RenderBudget;
use crate::pipeline::load::source_image;
use crate::pipeline::plan::ResolvedPlan;

pub(crate) mod blurhash;
pub mod encode;
pub(crate) mod passthrough;

use encode::{EncodeOptions, PngKind};

/// `image` as the derivative `encoding` asks for. Most of the decoding
/// runs here (libvips is lazy), so a failure is most likely bad input: the
/// encoders' settings are fixed and tested.
pub(crate) fn encode_derivative(
    image: &VipsImage,
    encoding: &EncodeOptions,
    budget: &RenderBudget,
) -> Result<Derivative, RenderError> {
    budget.watch(image);
    let width = source_image::dimension(image.get_width());
    let page_height = image.get_page_height();
    let height = source_image::dimension(if page_height > 0 {
        page_height
    } else {
        image.get_height()
    });
    let span = tracing::info_span!(
        "vips.encode",
        content_type = encoding.format.content_type(),
        bytes = tracing::field::Empty,
    );
    let _entered = span.enter();
    let data = if encoding.format == EncodedFormat::Blurhash {
        blurhash::of_image(image)
            .map_err(budget.failure("blurhash"))?
            .into_bytes()
    } else {
        encode::encode(image, encoding).map_err(budget.failure("encode"))?
    };
    span.record("bytes", data.len());
    Ok(Derivative {
        format: encoding.format,
        width,
        height,
        data,
    })
}

/// The encoder's settings: the plan's format (or the input's family, or
/// `auto=compress`'s choice) and options.
pub(crate) fn encode_options(plan: &ResolvedPlan, original: &CheckedOriginal<'_>) -> EncodeOptions {
    let (input, header) = (original.format, &original.header);
    let encoding = plan.canonical().encoding.unwrap_or_default();
    let (format, png) = match plan.format() {
        OutputFormat::Unspecified if encoding.compress && header.has_alpha => {
            (EncodedFormat::Png, PngKind::Palette)
        }
        OutputFormat::Unspecified if encoding.compress => (EncodedFormat::Jpeg, PngKind::Natural),
        OutputFormat::Unspecified => (input.family(), PngKind::Natural),
        OutputFormat::Jpeg => (EncodedFormat::Jpeg, PngKind::Natural),
        OutputFormat::Png => (EncodedFormat::Png, PngKind::Natural),
        OutputFormat::Png8 => (EncodedFormat::Png, PngKind::Palette),
        OutputFormat::Png32 => (EncodedFormat::Png, PngKind::Rgba),
        OutputFormat::Webp => (EncodedFormat::Webp, PngKind::Natural),
        OutputFormat::Avif => (EncodedFormat::Avif, PngKind::Natural),
        OutputFormat::Gif => (EncodedFormat::Gif, PngKind::Natural),
        OutputFormat::Json => (EncodedFormat::Json, PngKind::Natural),
        OutputFormat::Blurhash => (EncodedFormat::Blurhash, PngKind::Natural),
    };
    EncodeOptions {
        format,
        quality: plan.quality(),
        progressive: encoding.progressive,
        full_chroma: encoding.chroma_subsampling() != ChromaSubsampling::Unspecified,
        lossless: encoding.lossless,
        png,
        keep_profile: match encoding.color_space() {
            ColorSpace::Unspecified => false,
            ColorSpace::Srgb => true,
            // `cs=origin` (imgix's default) keeps the source's profile; a
            // source without one has nothing to keep, and stripping writes
            // no metadata at all.
            ColorSpace::Origin => header.has_icc_profile || header.cmyk,
        },
        embed_srgb: encoding.color_space() == ColorSpace::Srgb,
    }
}
