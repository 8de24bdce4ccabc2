//! The pure render: original bytes (+ overlay images) + resolved plan +
//! limits → encoded derivative.
//!
//! Synchronous CPU work on libvips that knows nothing of Redis, gRPC or
//! the fetcher: the service runs it on the blocking pool (see
//! [`crate::service::render_pool`]), and a benchmark or a fuzzer calls
//! [`render_image`] directly. The plan is resolved once ([`plan`]) and
//! read through [`ResolvedPlan`] by every step. In imgix's fixed order,
//! whatever the URL's order:
//!
//! 1. refuse inputs over the byte limit, sniff the magic bytes (only the
//!    formats imgmesh serves reach libvips), read the header alone and
//!    refuse images whose width × height × pages exceed the pixel limit
//!    ([`load`]);
//! 2. `fm=json` answers from the header here (`metadata`);
//! 3. frame selection (`frame`, or every frame when the output animates),
//!    refusing renders that would decode more frames than the frame limit
//!    ([`load`]);
//! 4. `trim` (`adjustments`), then the layout: `rect`, `w`/`h`/`ar`/`dpr`,
//!    `fit`, `crop`, `min-*`/`max-*`, `pad` ([`geometry`]);
//! 5. load the region at its output size with `thumbnail_buffer`
//!    (shrink-on-load), upright (EXIF orientation or `orient`), in sRGB
//!    ([`load`]);
//! 6. per frame: content-aware crop, fit canvas, `flip`, `rot`, colour
//!    adjustments and stylize, sharpening/blur/pixelation, padding,
//!    border and rounded corners, `bg`, then `blend`, `mark`, `txt`
//!    (`effects`, with `canvas`, `adjustments` and `overlay`);
//! 7. encode (or hash, for `fm=blurhash`) ([`encoding`]).
//!
//! Every effect runs after the resize, on the small image. libvips is lazy,
//! so most decoding happens inside the encode step. A plan with only sizing
//! and format (the common case) does nothing beyond `thumbnail_buffer` and
//! the encoder. Before a render is admitted, [`estimate`] tells the pool
//! how much memory it may take; [`measure`] tells a caller what a render
//! would output without decoding anything.
//!
//! The whole render runs under a time budget ([`RenderLimits::max_render`]):
//! the stages check it between frames, and libvips' own evaluation is
//! killed once it is spent (see `libvips::RenderBudget`), so an input
//! that is cheap to declare but expensive to render (thousands of tiny GIF
//! frames) is stopped instead of holding a worker for minutes.

use imgmesh_proto::renderer::v1::{OutputFormat, RenderPlan};

use crate::error::RenderError;
use crate::metrics::METRICS;

pub(crate) mod adjustments;
pub(crate) mod canvas;
pub mod derivative;
pub(crate) mod effects;
pub mod encoding;
pub mod estimate;
pub mod geometry;
pub mod input;
pub mod intermediate;
pub mod limits;
pub mod load;
pub mod measure;
pub(crate) mod metadata;
pub(crate) mod overlay;
pub mod plan;
pub mod render_set;

pub use derivative::{Derivative, EncodedFormat};
pub use input::{RenderInput, RenderSources};
pub use intermediate::Intermediates;
pub use limits::RenderLimits;
pub use load::libvips;
pub use plan::ResolvedPlan;
pub use render_set::render_set;

use adjustments::trim;
use geometry::{Layout, Region};
use libvips::RenderBudget;
use load::CheckedOriginal;
use load::source_image::LoadOptions;

/// Renders `input` with `plan` under `limits`: [`render`] for a plan not
/// resolved yet (any caller outside the service).
pub fn render_image(
    input: &RenderInput<'_>,
    plan: &RenderPlan,
    limits: &RenderLimits,
) -> Result<Derivative, RenderError> {
    render(input, &ResolvedPlan::resolve(plan)?, limits)
}

/// Renders `input` with `plan` under `limits`, within the time budget.
pub fn render(
    input: &RenderInput<'_>,
    plan: &ResolvedPlan,
    limits: &RenderLimits,
) -> Result<Derivative, RenderError> {
    render_reusing(input, plan, limits, None)
}

/// [`render`], loading the original from (and keeping it in)
/// `intermediates` where that is exact (see [`intermediate`]).
pub fn render_reusing(
    input: &RenderInput<'_>,
    plan: &ResolvedPlan,
    limits: &RenderLimits,
    intermediates: Option<&Intermediates>,
) -> Result<Derivative, RenderError> {
    libvips::init()?;
    let budget = RenderBudget::start(limits.max_render);
    let rendered = render_within(input, plan, limits, &budget, intermediates);
    if let Err(RenderError::RenderTooSlow { .. }) = rendered {
        METRICS.render_stopped("time");
        tracing::info!(
            limit_ms = budget.limit_ms(),
            "render stopped: over its time budget"
        );
    }
    rendered
}

/// The pipeline's steps (see the module docs), under `budget`, the
/// original loaded through `intermediates` when given.
fn render_within(
    input: &RenderInput<'_>,
    plan: &ResolvedPlan,
    limits: &RenderLimits,
    budget: &RenderBudget,
    intermediates: Option<&Intermediates>,
) -> Result<Derivative, RenderError> {
    let original = CheckedOriginal::read(input.original, limits)?.shared_by(input.shared_original);
    if plan.format() == OutputFormat::Json {
        return metadata::derivative(&original);
    }
    let input = input.with_usable_overlays(limits);
    let encoding = encoding::encode_options(plan, &original);
    let options = LoadOptions {
        pages: original.pages(plan, encoding.format, limits)?,
        orientation: original.orientation(plan),
        keep_color_space: plan.keeps_color_space(),
    };
    let region = kept_region(&original, plan, options.orientation, budget)?;
    let layout = Layout::compute_in(region, plan);
    let frames = match intermediates {
        Some(intermediates) => intermediates.load(&original, plan, &layout, &options, budget)?,
        None => {
            METRICS.original_decoded();
            load::load(&original, &layout, &options, budget)?
        }
    };
    let image = effects::apply(frames, plan.canonical(), &layout, &input, budget)?;
    encoding::encode_derivative(&image, &encoding, budget)
}

/// The part of the upright original (turned to `orientation`) that counts
/// as the whole image: all of it, or what `trim` keeps.
fn kept_region(
    original: &CheckedOriginal<'_>,
    plan: &ResolvedPlan,
    orientation: u8,
    budget: &RenderBudget,
) -> Result<Region, RenderError> {
    let (width, height) = original.header.upright(orientation);
    let whole = Region::whole(width, height);
    let Some(trim) = &plan.canonical().trim else {
        return Ok(whole);
    };
    let kept = trim::find_region(original.bytes, &original.header, orientation, trim)
        .map_err(budget.failure("trim"))?;
    Ok(kept.unwrap_or(whole))
}

#[cfg(test)]
mod tests;
