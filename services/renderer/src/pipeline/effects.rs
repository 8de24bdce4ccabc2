//! Everything after the resize, frame by frame, in imgix's fixed order:
//! content-aware crop, fit canvas, `flip`, `rot`, colour adjustments and
//! stylize, sharpening/blur/pixelation, padding, border and rounded
//! corners, `bg`, then `blend`, `mark`, `txt`; then the frames joined into
//! one image (a strip with page-height, delays and loop count when there
//! are several).
//!
//! Every effect runs on the small, resized image. A plan with only sizing
//! and format (the common case) passes each frame straight through.

use imgmesh_proto::renderer::v1::{RenderPlan, blend};
use rs_vips::VipsImage;
use rs_vips::voption::{Setter as _, VOption};

use crate::error::RenderError;
use crate::pipeline::adjustments::{adjust, channels};
use crate::pipeline::geometry::{Interest, Layout};
use crate::pipeline::input::RenderInput;
use crate::pipeline::load::libvips::RenderBudget;
use crate::pipeline::load::source_image::Frames;
use crate::pipeline::{canvas, overlay};

/// `frames` with every effect of `plan` applied, joined into one image.
pub(crate) fn apply(
    frames: Frames,
    plan: &RenderPlan,
    layout: &Layout,
    input: &RenderInput<'_>,
    budget: &RenderBudget,
) -> Result<VipsImage, RenderError> {
    let finished = {
        let _span = tracing::info_span!("vips.effects").entered();
        frames
            .images
            .iter()
            .map(|frame| {
                budget.check()?;
                finish(frame, plan, layout, input, budget).map_err(budget.failure("effects"))
            })
            .collect::<Result<Vec<_>, RenderError>>()?
    };
    budget.check()?;
    join_frames(
        finished,
        frames.delays.as_deref(),
        frames.loop_count,
        budget,
    )
}

/// Everything after the resize, for one frame (see the module docs).
fn finish(
    frame: &VipsImage,
    plan: &RenderPlan,
    layout: &Layout,
    input: &RenderInput<'_>,
    budget: &RenderBudget,
) -> rs_vips::Result<VipsImage> {
    if !has_finishing(plan, layout) {
        // The common case: straight from thumbnail to the encoder, streamed.
        return frame.copy();
    }
    // Crops, turns and filters read pixels out of order: materialise the
    // (output-sized) frame once.
    let mut image = frame.copy_memory()?;
    budget.watch(&image);
    if let Some(crop) = layout.smart_crop {
        let interesting = match crop.interest {
            Interest::Entropy => rs_vips::enums::Interesting::Entropy,
            Interest::Attention => rs_vips::enums::Interesting::Attention,
        };
        image = image.smartcrop_with_opts(
            crop.width as i32,
            crop.height as i32,
            VOption::new().set("interesting", interesting as i32),
        )?;
    }
    if let Some((width, height)) = layout.canvas {
        image = canvas::fit_canvas(&image, width, height, plan.fit(), plan.canvas.as_ref())?;
    }
    if let Some(orientation) = &plan.orientation
        && (orientation.flip_horizontal
            || orientation.flip_vertical
            || orientation.rotation_centi_degrees > 0)
    {
        image = canvas::flip_and_rotate(&image, orientation)?;
    }
    let (adjustments, stylize) = (plan.adjustments.as_ref(), plan.stylize.as_ref());
    if adjust::has_colour_effects(adjustments, stylize) {
        image = adjust::colour_effects(&channels::srgb8(&image)?, adjustments, stylize)?;
    }
    if adjust::has_detail_effects(adjustments, stylize) {
        image = adjust::detail_effects(&channels::srgb8(&image)?, adjustments, stylize)?;
    }
    if let Some(canvas) = &plan.canvas {
        image = canvas::pad(&image, layout.padding)?;
        if canvas.border.is_some() || canvas.border_radius.is_some() {
            image = canvas::border_and_corners(&image, canvas)?;
        }
        if let Some(background) = canvas.background {
            image = canvas::background(&image, background.argb)?;
        }
    }
    if let Some(plan_blend) = &plan.blend {
        let bytes = match plan_blend.source {
            Some(blend::Source::Path(_)) => input.blend,
            _ => None,
        };
        image = overlay::blend(&image, plan_blend, bytes)?;
    }
    if let (Some(mark), Some(bytes)) = (&plan.watermark, input.watermark) {
        image = overlay::watermark(&image, mark, bytes)?;
    }
    if let Some(text) = &plan.text {
        image = overlay::text(&image, text)?;
    }
    Ok(image)
}

/// Whether anything happens after the resize.
fn has_finishing(plan: &RenderPlan, layout: &Layout) -> bool {
    let (adjustments, stylize) = (plan.adjustments.as_ref(), plan.stylize.as_ref());
    layout.smart_crop.is_some()
        || layout.canvas.is_some()
        || plan
            .orientation
            .is_some_and(|o| o.flip_horizontal || o.flip_vertical || o.rotation_centi_degrees > 0)
        || adjust::has_colour_effects(adjustments, stylize)
        || adjust::has_detail_effects(adjustments, stylize)
        || plan.canvas.is_some()
        || plan.blend.is_some()
        || plan.watermark.is_some()
        || plan.text.is_some()
}

/// One image from the frames: a strip with page-height, delays and loop
/// count when there are several.
fn join_frames(
    mut frames: Vec<VipsImage>,
    delays: Option<&[i32]>,
    loop_count: Option<i32>,
    budget: &RenderBudget,
) -> Result<VipsImage, RenderError> {
    let failed = budget.failure("frames");
    if frames.len() == 1 {
        return Ok(frames.remove(0));
    }
    // Frames came out of one pipeline, so they share a size; make sure they
    // share bands too (an effect may have added alpha to some only).
    let with_alpha = frames.iter().any(VipsImage::hasalpha);
    let frames = frames
        .iter()
        .map(|f| {
            budget.check()?;
            let f = channels::srgb8(f).map_err(&failed)?;
            if with_alpha {
                channels::with_alpha(&f).map_err(&failed)
            } else {
                Ok(f)
            }
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    let page_height = frames[0].get_height();
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .map_err(&failed)?;
    strip.set_int("page-height", page_height).map_err(&failed)?;
    if let Some(delays) = delays {
        strip.set_array_int("delay", delays).map_err(&failed)?;
    }
    if let Some(loop_count) = loop_count {
        strip.set_int("loop", loop_count).map_err(&failed)?;
    }
    Ok(strip)
}
