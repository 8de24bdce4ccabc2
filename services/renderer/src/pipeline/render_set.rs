//! Many derivatives of one original with one decode: a srcset, asked for
//! in one `RenderSet` call or batched by the render pool from renders of
//! the same original that wait for a worker together.
//!
//! The original is checked once. Every plan whose layout resizes the whole
//! upright original (no `trim`, `rect` or crop that cuts it; one frame;
//! the same orientation and colour handling as the largest) joins a
//! *shared* group: the largest of the group is loaded once with
//! shrink-on-load, as a single [`render`](super::render) would load it,
//! and kept in memory. Every smaller one is made from an image already
//! made, largest first, in a *cascade*: from the smallest one at least
//! [`SOURCE_GAP`] times its size on both sides, among the largest and the
//! images made directly from it ([`pick_source`]), else from the largest.
//! So no resize is by more than a few times, where resizing the largest's
//! decode down by 4 to 12 costs more than decoding the file again at a
//! smaller JPEG scale (`pipeline::intermediate`'s measurement), and no
//! derivative is more than three resamplings from the file (the load's
//! own, and at most two Lanczos steps after it). Each then gets its effects
//! and encoding as usual. The cascade's sources are chosen before any is
//! made ([`cascade_steps`]), so that in the render pool the derivatives
//! are made on the batch's thread and on a thread per worker free after
//! the decode ([`Helpers`]), each as soon as its source is made: the same
//! pixels as on one thread. A plan that cannot share (it cuts the original,
//! animates, or is larger than the shared copy on one side) is rendered on
//! its own from the same bytes, which costs its own decode.
//!
//! The shared derivatives are the same size, format and look as separate
//! renders, but not byte for byte: resizing from an already shrunk copy
//! rounds differently than shrinking the original, and a cascaded step
//! resamples twice (the quality section of docs/benchmarks.md scores them
//! against a full-decode reference). `imgmesh_originals_decoded_total`
//! counts the decodes and `imgmesh_render_batched_total` the derivatives
//! made from a shared decode instead of their own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use imgmesh_imgix_params::is_empty_plan;
use imgmesh_proto::renderer::v1::{OutputFormat, blend};
use imgmesh_runtime::lock;
use rs_vips::enums::Size;
use rs_vips::voption::{Setter as _, VOption};
use rs_vips::{Vips, VipsImage};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::geometry::{Layout, Region};
use crate::pipeline::intermediate::Slot;
use crate::pipeline::libvips::RenderBudget;
use crate::pipeline::load::source_image::{Frames, LoadOptions, Pages};
use crate::pipeline::load::{self, CheckedOriginal};
use crate::pipeline::{
    Derivative, RenderInput, RenderLimits, ResolvedPlan, effects, encoding, render_within,
};

/// How many times larger, on both sides, an image made in a set must be
/// than a smaller derivative to be its source (else the largest is): the
/// gap libvips' own `thumbnail` leaves to its resize after shrink-on-load.
pub const SOURCE_GAP: u32 = 2;

/// Renders every plan of `plans` from `original` under `limits`, decoding
/// the original once for all the plans that can share it (see the module
/// docs). The derivatives come back in the plans' order; the first failure
/// fails the set. Each derivative has its own time budget.
pub fn render_set(
    original: &[u8],
    plans: &[Arc<ResolvedPlan>],
    limits: &RenderLimits,
) -> Result<Vec<Derivative>, RenderError> {
    render_batch(original, plans, limits, &|_| true)
        .into_iter()
        .collect()
}

/// Renders every plan of `plans` from `original` under `limits` as
/// [`render_set`] does, each with its own outcome, in the plans' order:
/// [`render_batch_each`], collected.
pub fn render_batch(
    original: &[u8],
    plans: &[Arc<ResolvedPlan>],
    limits: &RenderLimits,
    wanted: &(dyn Fn(usize) -> bool + Sync),
) -> Vec<Result<Derivative, RenderError>> {
    let mut outcomes: Vec<Option<Result<Derivative, RenderError>>> =
        plans.iter().map(|_| None).collect();
    render_batch_each(
        original,
        plans,
        limits,
        &no_helpers,
        wanted,
        &mut |index, outcome| {
            outcomes[index] = Some(outcome);
        },
    );
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or(Err(RenderError::Internal {
                context: "rendering a batch",
            }))
        })
        .collect()
}

/// Renders every plan of `plans` from `original` under `limits` as
/// [`render_set`] does, each with its own outcome, handed to `deliver`
/// (with the plan's index) as soon as it is made, largest first: one
/// plan's failure leaves the others' derivatives. A plan that is not
/// `wanted` any more (its caller left) is answered
/// [`RenderError::Abandoned`] without being encoded; the shared decode and
/// the cascade's sources are still made for the others. After the shared
/// decode, the derivatives are made on this thread and on one more thread
/// per worker `helpers` gives (see [`Helpers`]).
pub fn render_batch_each(
    original: &[u8],
    plans: &[Arc<ResolvedPlan>],
    limits: &RenderLimits,
    helpers: Helpers<'_>,
    wanted: &(dyn Fn(usize) -> bool + Sync),
    deliver: &mut Deliver<'_>,
) {
    render_batch_with(original, plans, limits, helpers, wanted, deliver);
}

/// Where a batch hands each plan's outcome, with the plan's index: called
/// from the batch's threads, one at a time.
pub type Deliver<'a> = dyn FnMut(usize, Result<Derivative, RenderError>) + Send + 'a;

/// Where a batch gets other render workers besides its own: each call
/// gives a free worker (a token holding it: the render pool's worker
/// permit), or `None`. After the shared decode, a thread per worker given
/// makes derivatives beside the batch's own thread, so a batch of a
/// srcset does not keep one core busy while the other waits for the
/// batch's answers. A token is dropped (its worker freed) as soon as its
/// thread finds nothing more to make.
pub type Helpers<'a> = &'a (dyn Fn() -> Option<Box<dyn Send>> + Sync);

/// [`Helpers`] that never give a worker: the batch runs on its own thread.
pub fn no_helpers() -> Option<Box<dyn Send>> {
    None
}

/// [`render_batch_each`].
fn render_batch_with(
    original: &[u8],
    plans: &[Arc<ResolvedPlan>],
    limits: &RenderLimits,
    helpers: Helpers<'_>,
    wanted: &(dyn Fn(usize) -> bool + Sync),
    deliver: &mut Deliver<'_>,
) {
    let delivering = Mutex::new((vec![false; plans.len()], deliver));
    let done = |index: usize, outcome: Result<Derivative, RenderError>| {
        let mut delivering = lock(&delivering);
        delivering.0[index] = true;
        (delivering.1)(index, outcome);
    };
    let input = RenderInput {
        original,
        ..RenderInput::default()
    };
    let shared = load::libvips::init()
        .and_then(|()| CheckedOriginal::read(original, limits))
        .ok()
        .map(|checked| (shared_group(&checked, plans, limits), checked));
    if let Some((shared, checked)) = &shared {
        // Alone, it renders as a single render does (below).
        if plans.len() > 1 {
            cascade(checked, &input, shared, limits, helpers, wanted, &done);
        }
    }
    let (delivered, deliver) = delivering.into_inner().unwrap_or_else(|e| e.into_inner());
    // The rest on their own: each gets its own derivative or error.
    let rest: Vec<usize> = (0..plans.len())
        .filter(|&index| !delivered[index])
        .collect();
    for index in rest {
        let outcome = if wanted(index) {
            load::libvips::init().and_then(|()| {
                let budget = RenderBudget::start(limits.max_render);
                render_within(&input, &plans[index], limits, &budget, None)
            })
        } else {
            Err(RenderError::Abandoned)
        };
        deliver(index, outcome);
    }
}

/// Whether `plan` may share a decode with others, from the plan alone
/// (whether its layout cuts the original needs the original's header:
/// [`SharedOriginal::resize`]): it asks for a derivative (not `fm=json`, not
/// nothing at all), no `trim`, no overlay images.
pub fn may_share_a_decode(plan: &ResolvedPlan) -> bool {
    let canonical = plan.canonical();
    plan.format() != OutputFormat::Json
        && canonical.trim.is_none()
        && canonical.watermark.is_none()
        && !matches!(
            canonical
                .blend
                .as_ref()
                .and_then(|blend| blend.source.as_ref()),
            Some(blend::Source::Path(_))
        )
        && !is_empty_plan(canonical)
}

/// An original read (its header alone) for the plans that may share its
/// decode: which do, and at what size.
#[derive(Debug)]
pub(crate) struct SharedOriginal<'a> {
    checked: CheckedOriginal<'a>,
    limits: RenderLimits,
}

impl<'a> SharedOriginal<'a> {
    /// `original`'s header, or `None` when it is not an image the render
    /// accepts (rendered on its own, each plan gets its own error). A
    /// header read, no pixels.
    pub(crate) fn read(original: &'a [u8], limits: &RenderLimits) -> Option<SharedOriginal<'a>> {
        Some(SharedOriginal {
            checked: CheckedOriginal::read(original, limits).ok()?,
            limits: *limits,
        })
    }

    /// The resize size (upright) of `plan`'s derivative when it can share
    /// a decode with other plans (see the module docs), else `None`.
    pub(crate) fn resize(&self, plan: &ResolvedPlan) -> Option<(u32, u32)> {
        let member = Member::of(0, plan, &self.checked, &self.limits).ok()??;
        Some(member.layout.resize)
    }
}

/// The plans of `plans` that share one decode, largest first: those that
/// can share at all, fit inside the largest and load the original as it
/// does.
fn shared_group<'p>(
    checked: &CheckedOriginal<'_>,
    plans: &'p [Arc<ResolvedPlan>],
    limits: &RenderLimits,
) -> Vec<Member<'p>> {
    let mut shared: Vec<_> = plans
        .iter()
        .enumerate()
        .filter_map(|(index, plan)| Member::of(index, plan, checked, limits).ok().flatten())
        .collect();
    shared.sort_by_key(|member| std::cmp::Reverse(area(member.layout.resize)));
    let base = shared
        .first()
        .map(|largest| (largest.layout.resize, largest.options));
    shared.retain(|member| {
        base.is_some_and(|((w, h), options)| {
            member.layout.resize.0 <= w && member.layout.resize.1 <= h && member.options == options
        })
    });
    shared
}

/// One step of a cascade: where a smaller member is resized from, and
/// whether it is a source for smaller ones ([`cascade_steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// 0: the shared load (the largest); `i` > 0: the image the `i`-th
    /// smaller member made.
    pub(crate) source: usize,
    /// Kept in memory as a source for smaller members.
    pub(crate) serves_later: bool,
}

/// The cascade's steps for the smaller members (sizes `rest`, largest
/// first) below the largest (`largest`): each from the image
/// [`pick_source`] picks among the largest and the sources made before
/// it. Decided before any is made, so that the members can be made on
/// several threads and still from the same sources as on one.
pub(crate) fn cascade_steps(largest: (u32, u32), rest: &[(u32, u32)]) -> Vec<Step> {
    // Sources: size, resizes after the shared load, source number.
    let mut made = vec![(largest, 0_u8, 0_usize)];
    let mut steps = Vec::with_capacity(rest.len());
    for (position, &size) in rest.iter().enumerate() {
        let sizes: Vec<_> = made.iter().map(|&(size, depth, _)| (size, depth)).collect();
        let (_, depth, source) = made[pick_source(&sizes, size)];
        let serves_later = depth == 0
            && rest[position + 1..]
                .iter()
                .any(|&smaller| fits_with_gap(size, smaller));
        if serves_later {
            made.push((size, depth + 1, position + 1));
        }
        steps.push(Step {
            source,
            serves_later,
        });
    }
    steps
}

/// Makes the `shared` group's derivatives (largest first), each handed to
/// `done` as soon as it is made: one load, then the cascade (see the module
/// docs), on this thread and `helpers`' ([`spread`]). A group whose load
/// fails leaves the largest's error and the others to be rendered on their
/// own.
fn cascade(
    checked: &CheckedOriginal<'_>,
    input: &RenderInput<'_>,
    shared: &[Member<'_>],
    limits: &RenderLimits,
    helpers: Helpers<'_>,
    wanted: &(dyn Fn(usize) -> bool + Sync),
    done: &(dyn Fn(usize, Result<Derivative, RenderError>) + Sync),
) {
    let Some((largest, rest)) = shared.split_first() else {
        return;
    };
    let budget = RenderBudget::start(limits.max_render);
    METRICS.original_decoded();
    let base =
        load::load(checked, &largest.layout, &largest.options, &budget).and_then(|mut frames| {
            // One frame, in memory: every smaller derivative reads it.
            let image = frames.images.pop().ok_or(RenderError::Internal {
                context: "loading a set's original",
            })?;
            image.copy_memory().map_err(budget.failure("thumbnail"))
        });
    let base = match base {
        Ok(base) => base,
        Err(error) => {
            done(largest.index, Err(error));
            return;
        }
    };
    let sizes: Vec<_> = rest.iter().map(|member| member.layout.resize).collect();
    let steps = cascade_steps(largest.layout.resize, &sizes);
    // The sources the smaller members make, as each is made (`None`: its
    // resize failed, and its smaller ones are made from the largest).
    let sources: Vec<Slot<VipsImage>> = rest.iter().map(|_| Slot::new()).collect();
    let first_budget = Mutex::new(Some(budget));
    spread(shared.len(), helpers, &|task| {
        let Some(position) = task.checked_sub(1) else {
            let budget = lock(&first_budget)
                .take()
                .unwrap_or_else(|| RenderBudget::start(limits.max_render));
            done(
                largest.index,
                if wanted(largest.index) {
                    largest.finish(base.clone(), input, checked, &budget)
                } else {
                    Err(RenderError::Abandoned)
                },
            );
            return;
        };
        let (member, step) = (&rest[position], steps[position]);
        // Handed on in every case, so that no smaller member waits forever.
        let mut publish = step.serves_later.then(|| Publish::new(&sources[position]));
        let is_wanted = wanted(member.index);
        if !is_wanted && !step.serves_later {
            done(member.index, Err(RenderError::Abandoned));
            return;
        }
        let source = match step.source.checked_sub(1) {
            None => base.clone(),
            Some(source) => sources[source]
                .wait_handed()
                .unwrap_or_else(|| base.clone()),
        };
        let budget = RenderBudget::start(limits.max_render);
        let size = member.layout.resize;
        let resized = resize(&source, size, &budget).and_then(|resized| match publish.take() {
            Some(publish) => {
                let resized = resized.copy_memory().map_err(budget.failure("thumbnail"))?;
                publish.hand(resized.clone());
                Ok(resized)
            }
            None => Ok(resized),
        });
        drop(publish);
        let outcome = match resized {
            Ok(_) if !is_wanted => Err(RenderError::Abandoned),
            Ok(resized) => {
                METRICS.render_batched();
                member.finish(resized, input, checked, &budget)
            }
            Err(error) => Err(error),
        };
        done(member.index, outcome);
    });
}

/// Runs `task` for each of `0..count`, in that order, on this thread and
/// on one more thread per worker `helpers` gives now (at most
/// `count − 1`). Each helper thread frees its worker when it finds no task
/// left, and runs in the caller's span.
fn spread(count: usize, helpers: Helpers<'_>, task: &(dyn Fn(usize) + Sync)) {
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                break;
            }
            task(index);
        }
    };
    let parent = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    std::thread::scope(|scope| {
        for helper in std::iter::from_fn(helpers).take(count.saturating_sub(1)) {
            let (parent, dispatch, work) = (parent.clone(), dispatch.clone(), &work);
            // A thread that cannot start leaves its share to the others.
            let _started = std::thread::Builder::new()
                .name("imgmesh-batch".into())
                .spawn_scoped(scope, move || {
                    tracing::dispatcher::with_default(&dispatch, || parent.in_scope(work));
                    drop(helper);
                    Vips::thread_shutdown();
                });
        }
        work();
    });
}

/// Hands a source to the threads that wait for it: the image, or `None`
/// when dropped without one.
struct Publish<'a, T: Clone> {
    slot: Option<&'a Slot<T>>,
}

impl<'a, T: Clone> Publish<'a, T> {
    fn new(slot: &'a Slot<T>) -> Publish<'a, T> {
        Publish { slot: Some(slot) }
    }

    fn hand(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            slot.hand(Some(value));
        }
    }
}

impl<T: Clone> Drop for Publish<'_, T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.hand(None);
        }
    }
}

/// `image` resized to exactly `width × height` (upright, no rotation), as
/// `thumbnail` resizes.
fn resize(
    image: &VipsImage,
    (width, height): (u32, u32),
    budget: &RenderBudget,
) -> Result<VipsImage, RenderError> {
    let resized = image
        .thumbnail_image_with_opts(
            width as i32,
            VOption::new()
                .set("height", height as i32)
                .set("size", Size::Force as i32)
                .set("no_rotate", true),
        )
        .map_err(budget.failure("thumbnail"))?;
    budget.watch(&resized);
    Ok(resized)
}

/// Which of the images made so far (`made`: size and depth, the largest
/// first) a derivative of `target` size is resized from: the smallest at
/// least [`SOURCE_GAP`] times `target` on both sides among the largest and
/// those made directly from it (depth ≤ 1), else the largest.
pub(crate) fn pick_source(made: &[((u32, u32), u8)], target: (u32, u32)) -> usize {
    made.iter()
        .enumerate()
        .filter(|(_, (size, depth))| *depth <= 1 && fits_with_gap(*size, target))
        .min_by_key(|(_, (size, _))| area(*size))
        .map_or(0, |(index, _)| index)
}

/// Whether `source` is at least [`SOURCE_GAP`] times `target` on both sides.
fn fits_with_gap(source: (u32, u32), target: (u32, u32)) -> bool {
    u64::from(source.0) >= u64::from(target.0) * u64::from(SOURCE_GAP)
        && u64::from(source.1) >= u64::from(target.1) * u64::from(SOURCE_GAP)
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
    use std::sync::Condvar;

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

    /// The mean absolute difference, in levels, between two encoded
    /// images of the same size.
    fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
        let a = VipsImage::new_from_buffer(a, "").unwrap();
        let b = VipsImage::new_from_buffer(b, "").unwrap();
        a.subtract(&b).unwrap().abs().unwrap().avg().unwrap()
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

    /// A srcset's ten widths, one decode: each comes back at its size,
    /// nine made from the shared decode (the metric counts them), and
    /// each close to a separate render (mean colour within two levels,
    /// and most pixels within a few levels: the cascade resamples, it
    /// does not blur or shift the image).
    #[test]
    fn a_srcset_cascades_from_one_decode() {
        let original = test_images::ramp(1920, 1200).jpegsave_buffer().unwrap();
        let widths = [80, 160, 240, 320, 400, 480, 560, 640, 800, 960];
        let plans: Vec<_> = widths.iter().map(|w| plan(&format!("w={w}"))).collect();
        let limits = RenderLimits::default();
        let (decoded, batched) = (METRICS.originals_decoded(), METRICS.renders_batched());
        let outcomes = render_batch(&original, &plans, &limits, &|_| true);
        assert_eq!(METRICS.originals_decoded() - decoded, 1, "one decode");
        assert_eq!(METRICS.renders_batched() - batched, 9);
        for ((outcome, plan), width) in outcomes.into_iter().zip(&plans).zip(widths) {
            let derivative = outcome.unwrap();
            assert_eq!(
                (derivative.width, derivative.height),
                (width, width * 5 / 8)
            );
            let single = crate::pipeline::render(
                &RenderInput {
                    original: &original,
                    ..RenderInput::default()
                },
                plan,
                &limits,
            )
            .unwrap();
            let (cascaded, alone) = (mean_colour(&derivative.data), mean_colour(&single.data));
            for (a, b) in cascaded.iter().zip(&alone) {
                assert!((a - b).abs() <= 2.0, "w={width}: {cascaded:?} vs {alone:?}");
            }
            let difference = mean_difference(&derivative.data, &single.data);
            assert!(difference < 2.0, "w={width}: mean difference {difference}");
        }
    }

    /// A plan nobody waits for any more is answered as abandoned without
    /// its derivative; the others still get theirs from the one decode.
    #[test]
    fn an_unwanted_plan_is_skipped() {
        let original = test_images::jpeg(800, 600);
        let plans = [plan("w=400"), plan("w=200"), plan("w=100")];
        let before = METRICS.originals_decoded();
        let outcomes = render_batch(&original, &plans, &RenderLimits::default(), &|i| i != 1);
        assert_eq!(METRICS.originals_decoded() - before, 1);
        let sizes: Vec<_> = outcomes
            .iter()
            .map(|outcome| outcome.as_ref().map(|d| (d.width, d.height)))
            .collect();
        assert!(matches!(sizes[1], Err(RenderError::Abandoned)), "{sizes:?}");
        assert_eq!(
            (sizes[0].unwrap(), sizes[2].unwrap()),
            ((400, 300), (100, 75))
        );
    }

    /// One plan's failure is its own: an original the render refuses
    /// fails every plan, each with the error a render on its own gives.
    #[test]
    fn each_plan_gets_its_own_error() {
        let plans = [plan("w=100"), plan("w=50")];
        let outcomes = render_batch(b"not an image", &plans, &RenderLimits::default(), &|_| true);
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            assert!(
                matches!(outcome, Err(RenderError::UnsupportedInput)),
                "{outcome:?}"
            );
        }
    }

    /// The cascade's source: the smallest image at least twice the target
    /// on both sides among the largest and those made from it directly,
    /// else the largest.
    #[test]
    fn sources_leave_a_gap_of_two() {
        let made = [
            ((1920, 1200), 0),
            ((1600, 1000), 1),
            ((960, 600), 1),
            ((480, 300), 2),
        ];
        assert_eq!(pick_source(&made, (1280, 800)), 0, "nothing twice as large");
        assert_eq!(pick_source(&made, (800, 500)), 1);
        assert_eq!(pick_source(&made, (960, 600)), 0);
        assert_eq!(pick_source(&made, (480, 300)), 2);
        assert_eq!(pick_source(&made, (200, 125)), 2, "not the depth-2 image");
        assert_eq!(pick_source(&made, (480, 700)), 0, "too short on one side");
    }

    /// The cascade's steps, decided before anything is made: each smaller
    /// member from the smallest source at least twice its size (the
    /// largest, or one made from it), and only those made from the largest
    /// with a smaller member within their gap kept as sources.
    #[test]
    fn cascade_steps_pick_sources_ahead() {
        let rest = [
            (1600, 1000),
            (1280, 800),
            (960, 600),
            (640, 400),
            (320, 200),
            (160, 100),
        ];
        let steps = cascade_steps((1920, 1200), &rest);
        let step = |source, serves_later| Step {
            source,
            serves_later,
        };
        assert_eq!(
            steps,
            [
                step(0, true),  // 1600: nothing twice as large but the largest
                step(0, true),  // 1280: likewise; a source for 640
                step(0, true),  // 960: likewise; a source for 320 and 160
                step(2, false), // 640 from 1280, the smallest twice as large
                step(3, false), // 320 from 960
                step(3, false), // 160 from 960 (640 was not made from the largest)
            ]
        );
    }

    /// A batch with helper threads makes the same derivatives as on one
    /// thread, byte for byte, with two threads at work at once; it asks
    /// for no more workers than it has derivatives to make beside its own
    /// thread, and frees every one by the time it returns.
    #[test]
    fn helpers_make_the_same_derivatives_beside_the_batch() {
        let original = test_images::ramp(1920, 1200).jpegsave_buffer().unwrap();
        let widths = [160, 320, 480, 640, 800, 960, 1120, 1280, 1600, 1920];
        let plans: Vec<_> = widths.iter().map(|w| plan(&format!("w={w}"))).collect();
        let limits = RenderLimits::default();
        let alone = render_batch(&original, &plans, &limits, &|_| true);
        let token = Arc::new(());
        let given = AtomicUsize::new(0);
        let helpers = || {
            given.fetch_add(1, Ordering::Relaxed);
            Some(Box::new(Arc::clone(&token)) as Box<dyn Send>)
        };
        // The first two plans asked about wait for each other (up to 10 s):
        // only two threads at once get both past.
        let met = (Mutex::new(0_u32), Condvar::new());
        let wanted = |_index: usize| {
            let mut asked = lock(&met.0);
            *asked += 1;
            met.1.notify_all();
            let (asked, _) = met
                .1
                .wait_timeout_while(asked, std::time::Duration::from_secs(10), |asked| {
                    *asked < 2
                })
                .unwrap();
            *asked >= 2
        };
        let before = METRICS.originals_decoded();
        let mut outcomes: Vec<_> = plans.iter().map(|_| None).collect();
        render_batch_each(
            &original,
            &plans,
            &limits,
            &helpers,
            &wanted,
            &mut |index, outcome| {
                outcomes[index] = Some(outcome);
            },
        );
        assert_eq!(METRICS.originals_decoded() - before, 1, "one decode");
        assert_eq!(given.into_inner(), widths.len() - 1, "workers asked for");
        assert_eq!(Arc::strong_count(&token), 1, "every helper freed");
        for ((spread, alone), width) in outcomes.into_iter().zip(alone).zip(widths) {
            let (spread, alone) = (spread.unwrap().unwrap(), alone.unwrap());
            assert_eq!((spread.width, spread.height), (width, width * 5 / 8));
            assert!(spread.data == alone.data, "w={width}: not the same bytes");
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
