//! The render plan in its canonical form.
//!
//! The gateway sends a canonical [`RenderPlan`]; internal callers may send
//! any plan. [`ResolvedPlan::resolve`] normalises it with the same
//! `imgmesh-imgix-params` code the gateway uses (unknown enum values
//! refused, numbers clamped, defaults written out, irrelevant fields
//! dropped), so two plans that render the same derivative resolve, and
//! therefore hash, the same. The service resolves a request's plan once
//! and hands the [`ResolvedPlan`] down to the pool and the pipeline, whose
//! steps read it through the accessors here.

use imgmesh_imgix_params::{ParamError, normalize_plan};
use imgmesh_proto::renderer::v1::{ColorSpace, Fit, OutputFormat, RenderPlan};

use crate::error::RenderError;

/// imgix's default output quality (`q`).
pub const DEFAULT_QUALITY: u8 = 75;

/// A normalised plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPlan {
    plan: RenderPlan,
}

// === impl ResolvedPlan ===

impl ResolvedPlan {
    /// Validates and normalises `plan`.
    pub fn resolve(plan: &RenderPlan) -> Result<ResolvedPlan, RenderError> {
        let plan = normalize_plan(plan).map_err(|error| match error {
            ParamError::InvalidPlan { field, problem } => RenderError::InvalidRequest {
                field: plan_field(field),
                problem,
            },
            other => RenderError::InvalidRequest {
                field: "plan",
                problem: other.to_string(),
            },
        })?;
        Ok(ResolvedPlan { plan })
    }

    /// The canonical plan: equal resolved plans encode to equal bytes.
    pub fn canonical(&self) -> &RenderPlan {
        &self.plan
    }

    /// How the image fills the box (never `Unspecified`).
    pub fn fit(&self) -> Fit {
        self.plan.fit()
    }

    /// The requested output format; `Unspecified` keeps the input's family.
    pub fn format(&self) -> OutputFormat {
        self.plan.format()
    }

    /// Encoder quality, 1–100.
    pub fn quality(&self) -> u8 {
        match self.plan.quality {
            0 => DEFAULT_QUALITY,
            // Normalised plans hold 0..=100, so this cannot truncate.
            q => q.min(100) as u8,
        }
    }

    /// The device pixel ratio as a factor.
    pub fn dpr(&self) -> f64 {
        f64::from(self.plan.dpr_centi) / 100.0
    }

    /// The EXIF orientation `orient` sets (1–8), if it sets one.
    pub fn orientation(&self) -> Option<u8> {
        match self.plan.orientation.map(|o| o.exif_orientation) {
            Some(orientation @ 1..=8) => Some(orientation as u8),
            _ => None,
        }
    }

    /// The one frame `frame` selects (from 1), if it selects one.
    pub fn frame(&self) -> Option<u32> {
        self.plan
            .animation
            .map(|a| a.frame)
            .filter(|frame| *frame > 0)
    }

    /// Whether `cs=origin` keeps the source's colour space (no sRGB
    /// conversion on load).
    pub fn keeps_color_space(&self) -> bool {
        self.plan
            .encoding
            .is_some_and(|e| e.color_space() == ColorSpace::Origin)
    }
}

/// The `'static` error field for a plan field named by the params crate.
fn plan_field(field: &'static str) -> &'static str {
    match field {
        "fit" => "plan.fit",
        "format" => "plan.format",
        _ => "plan",
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::{Crop, Encoding};

    use super::*;

    /// An empty plan resolves to imgix's defaults: clip, q=75, dpr=1, no size.
    #[test]
    fn empty_plan_gets_imgix_defaults() {
        let plan = ResolvedPlan::resolve(&RenderPlan::default()).unwrap();
        assert_eq!(plan.fit(), Fit::Clip);
        assert_eq!(plan.format(), OutputFormat::Unspecified);
        assert_eq!(plan.quality(), 75);
        assert_eq!(plan.dpr(), 1.0);
        assert_eq!(
            plan.canonical(),
            &RenderPlan {
                fit: Fit::Clip.into(),
                quality: 75,
                dpr_centi: 100,
                ..RenderPlan::default()
            }
        );
    }

    /// Quality and dpr are clamped to their ranges.
    #[test]
    fn clamps_quality_and_dpr() {
        let plan = ResolvedPlan::resolve(&RenderPlan {
            quality: 1000,
            dpr_centi: 10_000,
            ..RenderPlan::default()
        })
        .unwrap();
        assert_eq!(plan.quality(), 100);
        assert_eq!(plan.dpr(), 5.0);
    }

    /// Unknown enum values are refused, naming the field.
    #[test]
    fn unknown_enum_values_are_invalid() {
        for (plan, field) in [
            (
                RenderPlan {
                    fit: 42,
                    ..RenderPlan::default()
                },
                "plan.fit",
            ),
            (
                RenderPlan {
                    format: 42,
                    ..RenderPlan::default()
                },
                "plan.format",
            ),
            (
                RenderPlan {
                    fit: Fit::Crop.into(),
                    crop: Some(Crop {
                        strategy: 42,
                        ..Crop::default()
                    }),
                    ..RenderPlan::default()
                },
                "plan",
            ),
        ] {
            let error = ResolvedPlan::resolve(&plan).unwrap_err();
            assert!(
                matches!(&error, RenderError::InvalidRequest { field: f, .. } if *f == field),
                "{error:?}"
            );
        }
    }

    /// A plan relying on defaults and one spelling them out (or carrying
    /// fields that cannot matter) resolve to the same canonical plan.
    #[test]
    fn defaults_and_explicit_values_are_canonically_equal() {
        let implicit = RenderPlan {
            width: 300,
            format: OutputFormat::Png.into(),
            ..RenderPlan::default()
        };
        let explicit = RenderPlan {
            width: 300,
            fit: Fit::Clip.into(),
            format: OutputFormat::Png.into(),
            quality: 40,
            dpr_centi: 100,
            encoding: Some(Encoding {
                lossless: true,
                ..Encoding::default()
            }),
            crop: Some(Crop {
                top: true,
                ..Crop::default()
            }),
            ..RenderPlan::default()
        };
        assert_eq!(
            ResolvedPlan::resolve(&implicit).unwrap().canonical(),
            ResolvedPlan::resolve(&explicit).unwrap().canonical()
        );
    }
}
