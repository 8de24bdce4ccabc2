//! What a render would output, from the original's header alone: the
//! output's size and format and the memory the render is estimated to
//! take, for `Describe` (nothing is decoded, rendered or cached).
//!
//! The size is the layout's ([`Layout::output_size`]) for the upright
//! original, which is what the render resizes, crops, pads and places on
//! its canvas. Two steps only a decode can size are not foreseen: `trim`
//! (the kept region depends on the pixels; the size given is then an
//! upper bound) and `rot-type=pivot` at an angle that is not a right angle
//! (the turned image's bounding box).

use imgmesh_proto::renderer::v1::{OutputFormat, RotationType};

use crate::error::RenderError;
use crate::pipeline::derivative::EncodedFormat;
use crate::pipeline::encoding;
use crate::pipeline::estimate::estimate_render_bytes;
use crate::pipeline::geometry::{Layout, Region};
use crate::pipeline::input::RenderSources;
use crate::pipeline::limits::RenderLimits;
use crate::pipeline::load::{CheckedOriginal, libvips};
use crate::pipeline::plan::ResolvedPlan;

/// What a render of an original with a plan would output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// The output's format.
    pub format: EncodedFormat,
    /// The render's estimated peak memory, in bytes (see
    /// [`estimate_render_bytes`]).
    pub estimated_bytes: u64,
}

/// Measures a render of `sources` with `plan` under `limits` from the
/// header alone; refuses what the render would refuse before decoding
/// (over the byte or pixel limit, not a served format, a header that does
/// not parse).
pub fn measure(
    sources: &RenderSources,
    plan: &ResolvedPlan,
    limits: &RenderLimits,
) -> Result<Measurement, RenderError> {
    libvips::init()?;
    let original = CheckedOriginal::read(&sources.original, limits)?;
    let estimated_bytes = estimate_render_bytes(sources, plan, limits)?;
    if plan.format() == OutputFormat::Json {
        // fm=json describes the original: Render reports its stored size.
        return Ok(Measurement {
            width: original.header.width,
            height: original.header.height,
            format: EncodedFormat::Json,
            estimated_bytes,
        });
    }
    let format = encoding::encode_options(plan, &original).format;
    let (upright_width, upright_height) = original.header.upright(original.orientation(plan));
    let layout = Layout::compute_in(Region::whole(upright_width, upright_height), plan);
    // rot-type=pivot by a right angle turns the image on its canvas before
    // the padding is added (see `effects`).
    let (mut width, mut height) = layout.canvas.unwrap_or_else(|| layout.image_size());
    let turns_frame = plan.canonical().orientation.as_ref().is_some_and(|o| {
        o.rotation_type() == RotationType::Pivot
            && matches!(o.rotation_centi_degrees, 9_000 | 27_000)
    });
    if turns_frame {
        std::mem::swap(&mut width, &mut height);
    }
    let padding = layout.padding;
    let (width, height) = (
        width + padding.left + padding.right,
        height + padding.top + padding.bottom,
    );
    Ok(Measurement {
        width,
        height,
        format,
        estimated_bytes,
    })
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::{Fit, Orientation, RenderPlan};

    use super::*;
    use crate::test_images;

    fn resolved(plan: RenderPlan) -> ResolvedPlan {
        ResolvedPlan::resolve(&plan).unwrap()
    }

    /// A 400×300 JPEG measures as its render: w=200 keeps the aspect
    /// (200×150, JPEG, a positive estimate), fit=crop&w=100&h=100 is the
    /// 100×100 box, and fm=json the stored size.
    #[test]
    fn measures_the_output_from_the_header() {
        let limits = RenderLimits::default();
        let sources = RenderSources::original(test_images::jpeg(400, 300));
        let width = measure(
            &sources,
            &resolved(RenderPlan {
                width: 200,
                ..RenderPlan::default()
            }),
            &limits,
        )
        .unwrap();
        assert_eq!((width.width, width.height), (200, 150));
        assert_eq!(width.format, EncodedFormat::Jpeg);
        assert!(width.estimated_bytes > 0);

        let crop = measure(
            &sources,
            &resolved(RenderPlan {
                width: 100,
                height: 100,
                fit: Fit::Crop.into(),
                format: OutputFormat::Webp.into(),
                ..RenderPlan::default()
            }),
            &limits,
        )
        .unwrap();
        assert_eq!((crop.width, crop.height), (100, 100));
        assert_eq!(crop.format, EncodedFormat::Webp);

        let json = measure(
            &sources,
            &resolved(RenderPlan {
                width: 100,
                format: OutputFormat::Json.into(),
                ..RenderPlan::default()
            }),
            &limits,
        )
        .unwrap();
        assert_eq!((json.width, json.height), (400, 300));
    }

    /// The sizes measured match what the render outputs, for a plan of
    /// each sizing kind and a pivoting quarter turn.
    #[test]
    fn measurements_match_renders() {
        let limits = RenderLimits::default();
        let sources = RenderSources::original(test_images::jpeg(400, 300));
        let queries = [
            RenderPlan {
                width: 120,
                ..RenderPlan::default()
            },
            RenderPlan {
                width: 90,
                height: 200,
                fit: Fit::Crop.into(),
                ..RenderPlan::default()
            },
            RenderPlan {
                width: 250,
                height: 250,
                fit: Fit::Fill.into(),
                format: OutputFormat::Png.into(),
                ..RenderPlan::default()
            },
            RenderPlan {
                width: 120,
                orientation: Some(Orientation {
                    rotation_centi_degrees: 9_000,
                    rotation_type: RotationType::Pivot.into(),
                    ..Orientation::default()
                }),
                ..RenderPlan::default()
            },
        ];
        for plan in queries {
            let plan = resolved(plan);
            let measured = measure(&sources, &plan, &limits).unwrap();
            let input = crate::pipeline::RenderInput {
                original: &sources.original,
                shared_original: None,
                watermark: None,
                blend: None,
            };
            let rendered = crate::pipeline::render(&input, &plan, &limits).unwrap();
            assert_eq!(
                (measured.width, measured.height, measured.format),
                (rendered.width, rendered.height, rendered.format),
                "{:?}",
                plan.canonical()
            );
        }
    }

    /// An original that is not an image is refused, as the render would.
    #[test]
    fn refuses_what_the_render_refuses() {
        let sources = RenderSources::original(b"not an image".to_vec());
        let plan = resolved(RenderPlan::default());
        assert!(matches!(
            measure(&sources, &plan, &RenderLimits::default()),
            Err(RenderError::UnsupportedInput)
        ));
    }
}
