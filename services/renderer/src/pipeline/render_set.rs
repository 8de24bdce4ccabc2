//! Many derivatives of one original with one decode: a srcset.
//!
//! The original is checked once. Every plan whose layout resizes the whole
//! upright original (no `trim`, `rect` or crop that cuts it; one frame;
//! the same orientation and colour handling as the largest) joins a
//! *shared* group: the largest of the group is loaded once with
//! shrink-on-load, as a single [`render`](super::render) would load it,
//! and kept in memory; every
//! smaller one is resized from that copy with `thumbnail_image` instead of
//! decoding the original again, then gets its effects and encoding as
//! usual. A plan that cannot share (it cuts the original, animates, or is
//! larger than the shared copy on one side) is rendered on its own from the
//! same bytes, which costs its own decode.
//!
//! The shared derivatives are the same size, format and look as separate
//! renders, but not byte for byte: resizing from an already shrunk copy
//! rounds differently in the last bits than shrinking the original.
//! `imgmesh_originals_decoded_total` counts the decodes.

use std::sync::Arc;

use imgmesh_proto::renderer::v1::OutputFormat;
use rs_vips::VipsImage;
use rs_vips::enums::Size;
use rs_vips::voption::{Setter as _, VOption};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::geometry::{Layout, Region};
use crate::pipeline::libvips::RenderBudget;
use crate::pipeline::load::source_image::{Frames, LoadOptions, Pages};
use crate::pipeline::load::{self, CheckedOriginal};
use crate::pipeline::{
    Derivative, RenderInput, RenderLimits, ResolvedPlan, effects, encoding, render_within,
};

/// Renders every plan of `plans` from `original` under `limits`, decoding
/// the original once for all the plans that can share it (see the module
/// docs). The derivatives come back in the plans' order; the first failure
/// fails the set. Each derivative has its own time budget.
pub fn render_set(
    original: &[u8],
    plans: &[Arc<ResolvedPlan>],
    limits: &RenderLimits,
) -> Result<Vec<Derivative>, RenderError> {
    load::libvips::init()?;
    let checked = CheckedOriginal::read(original, limits)?;
    let input = RenderInput {
        original,
        ..RenderInput::default()
    };
    let mut shared = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        if let Some(member) = Member::of(index, plan, &checked, limits)? {
            shared.push(member);
        }
    }
    // The largest first: it is the one decoded, the others are resized
    // from it when they fit inside it on both sides.
    shared.sort_by_key(|member| std::cmp::Reverse(area(member.layout.resize)));
    let base = shared
        .first()
        .map(|largest| (largest.layout.resize, largest.options));
    shared.retain(|member| {
        base.is_some_and(|((w, h), options)| {
            member.layout.resize.0 <= w && member.layout.resize.1 <= h && member.options == options
        })
    });

    let mut derivatives: Vec<Option<Derivative>> = vec![None; plans.len()];
    if let Some((largest, rest)) = shared.split_first() {
        let budget = RenderBudget::start(limits.max_render);
        METRICS.original_decoded();
        let mut frames = load::load(&checked, &largest.layout, &largest.options, &budget)?;
        // One frame, kept decoded: every derivative below reads these pixels.
        let base = frames
            .images
            .pop()
            .ok_or(RenderError::Internal {
                context: "loading a set's original",
            })?
            .copy_memory()
            .map_err(budget.failure("thumbnail"))?;
        derivatives[largest.index] =
            Some(largest.finish(base.clone(), &input, &checked, &budget)?);
        for member in rest {
            let budget = RenderBudget::start(limits.max_render);
            let (width, height) = member.layout.resize;
            let resized = base
                .thumbnail_image_with_opts(
                    width as i32,
                    VOption::new()
                        .set("height", height as i32)
                        .set("size", Size::Force as i32)
                        .set("no_rotate", true),
                )
                .map_err(budget.failure("thumbnail"))?;
            derivatives[member.index] = Some(member.finish(resized, &input, &checked, &budget)?);
        }
    }
    plans
        .iter()
        .zip(derivatives)
        .map(|(plan, shared)| match shared {
            Some(derivative) => Ok(derivative),
            None => {
                let budget = RenderBudget::start(limits.max_render);
                render_within(&input, plan, limits, &budget, None)
            }
        })
        .collect()
}

/// A plan of the shared group: its layout over the whole original and how
/// the original is loaded for it.
struct Member<'p> {
    index: usize,
    plan: &'p ResolvedPlan,
    layout: Layout,
    options: LoadOptions,
}

// === impl Member ===

impl<'p> Member<'p> {
    /// `plan` as a member of the shared group, or `None` when it must be
    /// rendered on its own: JSON, `trim`, an animation or a chosen frame,
    /// or a layout that cuts the original. (Members load the original
    /// alike only when their orientation and colour handling match the
    /// largest's; see [`render_set`].)
    fn of(
        index: usize,
        plan: &'p ResolvedPlan,
        original: &CheckedOriginal<'_>,
        limits: &RenderLimits,
    ) -> Result<Option<Member<'p>>, RenderError> {
        if plan.format() == OutputFormat::Json || plan.canonical().trim.is_some() {
            return Ok(None);
        }
        let format = encoding::encode_options(plan, original).format;
        let options = LoadOptions {
            pages: original.pages(plan, format, limits)?,
            orientation: original.orientation(plan),
            keep_color_space: plan.keeps_color_space(),
        };
        if options.pages != Pages::One(0) {
            return Ok(None);
        }
        let (width, height) = original.header.upright(options.orientation);
        let layout = Layout::compute_in(Region::whole(width, height), plan);
        if !layout.uses_whole_source(width, height) {
            return Ok(None);
        }
        Ok(Some(Member {
            index,
            plan,
            layout,
            options,
        }))
    }

    /// The derivative from `image`, the whole original at this member's
    /// resize size: effects, then encoding.
    fn finish(
        &self,
        image: VipsImage,
        input: &RenderInput<'_>,
        original: &CheckedOriginal<'_>,
        budget: &RenderBudget,
    ) -> Result<Derivative, RenderError> {
        let frames = Frames {
            images: vec![image],
            delays: None,
            loop_count: None,
        };
        let image = effects::apply(frames, self.plan.canonical(), &self.layout, input, budget)?;
        encoding::encode_derivative(
            &image,
            &encoding::encode_options(self.plan, original),
            budget,
        )
    }
}

/// Pixels of a `width × height` image.
fn area((width, height): (u32, u32)) -> u64 {
    u64::from(width) * u64::from(height)
}

#[cfg(test)]
mod tests {
    use imgmesh_imgix_params::parse_render_plan;

    use super::*;
    use crate::test_images;

    /// A resolved plan from an imgix query.
    fn plan(query: &str) -> Arc<ResolvedPlan> {
        let parsed = parse_render_plan("", query, None).unwrap();
        Arc::new(ResolvedPlan::resolve(&parsed.plan).unwrap())
    }

    /// The mean colour of an encoded image, band by band (the test image
    /// is noise: a single pixel depends on how it was resampled, the mean
    /// only on whether the colours are right).
    fn mean_colour(data: &[u8]) -> Vec<f64> {
        let image = VipsImage::new_from_buffer(data, "").unwrap();
        (0..image.get_bands())
            .map(|band| image.extract_band(band).unwrap().avg().unwrap())
            .collect()
    }

    /// Eight widths come back at their sizes and formats from one decode,
    /// each within two levels of a separate render's mean colour.
    #[test]
    fn eight_widths_share_one_decode() {
        let original = test_images::jpeg(400, 300);
        let queries = [
            "w=40",
            "w=80",
            "w=120",
            "w=160",
            "w=200",
            "w=240",
            "w=280",
            "w=320&fm=png",
        ];
        let plans: Vec<_> = queries.iter().map(|query| plan(query)).collect();
        let limits = RenderLimits::default();
        // nextest runs each test in its own process: the counter is ours.
        let before = METRICS.originals_decoded();
        let set = render_set(&original, &plans, &limits).unwrap();
        assert_eq!(METRICS.originals_decoded() - before, 1, "one decode");
        assert_eq!(set.len(), 8);
        for ((derivative, plan), query) in set.iter().zip(&plans).zip(queries) {
            let single = crate::pipeline::render(
                &RenderInput {
                    original: &original,
                    ..RenderInput::default()
                },
                plan,
                &limits,
            )
            .unwrap();
            assert_eq!(
                (derivative.width, derivative.height, derivative.format),
                (single.width, single.height, single.format),
                "{query}"
            );
            let (shared, alone) = (mean_colour(&derivative.data), mean_colour(&single.data));
            for (a, b) in shared.iter().zip(&alone) {
                assert!((a - b).abs() <= 2.0, "{query}: {shared:?} vs {alone:?}");
            }
        }
    }

    /// A plan that cuts the original is rendered on its own, beside the
    /// shared ones, at its own size.
    #[test]
    fn a_cropping_plan_is_rendered_on_its_own() {
        let original = test_images::jpeg(400, 300);
        let plans = [plan("w=100"), plan("w=50&h=50&fit=crop"), plan("w=200")];
        let before = METRICS.originals_decoded();
        let set = render_set(&original, &plans, &RenderLimits::default()).unwrap();
        assert_eq!(METRICS.originals_decoded() - before, 2, "shared + cropped");
        let sizes: Vec<_> = set.iter().map(|d| (d.width, d.height)).collect();
        assert_eq!(sizes, [(100, 75), (50, 50), (200, 150)]);
    }
}
