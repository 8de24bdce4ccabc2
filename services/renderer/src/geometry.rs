//! Turns a plan's `w`, `h`, `fit` and `dpr` into the box libvips'
//! `thumbnail` is asked for, with imgix's meaning of each fit mode.
//!
//! - only `w` or only `h`: scale keeping the aspect ratio;
//! - neither: the original size (times `dpr`);
//! - `clip` (default): fit inside `w × h` keeping the aspect ratio, upscaling
//!   if needed;
//! - `crop`: fill `w × h` keeping the aspect ratio, crop the excess centred;
//! - `max`: like `clip`, but never larger than the original;
//! - `scale`: exactly `w × h`, distorting the aspect ratio.
//!
//! Every output side is at most [`MAX_OUTPUT_SIDE`] pixels.

use imgmesh_proto::renderer::v1::Fit;

use crate::render_plan::ResolvedPlan;

/// The largest output side in pixels (imgix's limit for `w` and `h`).
pub const MAX_OUTPUT_SIDE: u32 = 8192;

/// Which way `thumbnail` may resize (libvips' `VipsSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resize {
    /// Up or down, keeping the aspect ratio.
    Both,
    /// Only down, keeping the aspect ratio.
    DownOnly,
    /// To exactly the box, ignoring the aspect ratio.
    Force,
}

/// The arguments for libvips' `thumbnail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThumbnailBox {
    /// Box width in pixels, 1..=[`MAX_OUTPUT_SIDE`].
    pub(crate) width: u32,
    /// Box height in pixels, 1..=[`MAX_OUTPUT_SIDE`].
    pub(crate) height: u32,
    /// Which way the image may be resized.
    pub(crate) resize: Resize,
    /// Fill the box and crop the excess, centred.
    pub(crate) crop: bool,
}

/// The thumbnail box for an upright source of `source_width × source_height`
/// pixels (after EXIF orientation) rendered with `plan`.
pub(crate) fn thumbnail_box(
    source_width: u32,
    source_height: u32,
    plan: &ResolvedPlan,
) -> ThumbnailBox {
    let dpr = plan.dpr();
    // `as` saturates, so absurd sizes land on the clamp rather than wrapping.
    let scaled = |side: u32| ((f64::from(side) * dpr).round() as u32).clamp(1, MAX_OUTPUT_SIDE);
    let keep_aspect = match plan.fit {
        Fit::Max => Resize::DownOnly,
        _ => Resize::Both,
    };
    match (plan.width.map(scaled), plan.height.map(scaled)) {
        (None, None) => ThumbnailBox {
            width: scaled(source_width),
            height: scaled(source_height),
            resize: keep_aspect,
            crop: false,
        },
        // One side given: the other is bounded only by the output limit.
        (Some(width), None) => ThumbnailBox {
            width,
            height: MAX_OUTPUT_SIDE,
            resize: keep_aspect,
            crop: false,
        },
        (None, Some(height)) => ThumbnailBox {
            width: MAX_OUTPUT_SIDE,
            height,
            resize: keep_aspect,
            crop: false,
        },
        (Some(width), Some(height)) => ThumbnailBox {
            width,
            height,
            resize: match plan.fit {
                Fit::Scale => Resize::Force,
                _ => keep_aspect,
            },
            crop: plan.fit == Fit::Crop,
        },
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::RenderPlan;

    use super::*;

    fn plan(width: u32, height: u32, fit: Fit, dpr_centi: u32) -> ResolvedPlan {
        ResolvedPlan::resolve(&RenderPlan {
            width,
            height,
            fit: fit.into(),
            dpr_centi,
            ..RenderPlan::default()
        })
        .unwrap()
    }

    /// Each fit mode asks thumbnail for the box and resize direction imgix implies.
    #[test]
    fn fit_modes_map_to_thumbnail_arguments() {
        let cases = [
            (plan(200, 0, Fit::Clip, 0), (200, 8192, Resize::Both, false)),
            (plan(0, 150, Fit::Clip, 0), (8192, 150, Resize::Both, false)),
            (plan(0, 0, Fit::Clip, 0), (400, 300, Resize::Both, false)),
            (plan(0, 0, Fit::Clip, 200), (800, 600, Resize::Both, false)),
            (
                plan(200, 200, Fit::Clip, 0),
                (200, 200, Resize::Both, false),
            ),
            (plan(200, 200, Fit::Crop, 0), (200, 200, Resize::Both, true)),
            (
                plan(800, 0, Fit::Max, 0),
                (800, 8192, Resize::DownOnly, false),
            ),
            (
                plan(100, 300, Fit::Scale, 0),
                (100, 300, Resize::Force, false),
            ),
            (
                plan(100, 0, Fit::Scale, 0),
                (100, 8192, Resize::Both, false),
            ),
            (
                plan(100, 0, Fit::Clip, 250),
                (250, 8192, Resize::Both, false),
            ),
            (
                plan(9000, 0, Fit::Clip, 0),
                (8192, 8192, Resize::Both, false),
            ),
            (
                plan(8000, 8000, Fit::Crop, 500),
                (8192, 8192, Resize::Both, true),
            ),
        ];
        for (plan, (width, height, resize, crop)) in cases {
            assert_eq!(
                thumbnail_box(400, 300, &plan),
                ThumbnailBox {
                    width,
                    height,
                    resize,
                    crop
                },
                "{plan:?}"
            );
        }
    }

    /// An original larger than the output limit is bounded by it, not kept.
    #[test]
    fn original_size_is_bounded_by_the_output_limit() {
        let boxed = thumbnail_box(20_000, 3_000, &plan(0, 0, Fit::Clip, 0));
        assert_eq!((boxed.width, boxed.height), (8192, 3000));
    }
}
