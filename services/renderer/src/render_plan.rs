//! The render plan with imgix's defaults filled in.
//!
//! The gateway sends a canonical [`RenderPlan`]; internal callers may send
//! any plan. [`ResolvedPlan::resolve`] rejects enum values this renderer does
//! not know, applies imgix's defaults (`fit=clip`, `q=75`, `dpr=1`) and
//! clamps quality and dpr to their ranges, so two plans that render the same
//! derivative also resolve (and therefore hash) the same.

use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan};

use crate::encode::EncodedFormat;
use crate::error::RenderError;

/// imgix's default output quality (`q`).
pub const DEFAULT_QUALITY: u8 = 75;

/// The largest device pixel ratio, in hundredths (imgix's `dpr` allows 0–5).
pub const MAX_DPR_CENTI: u32 = 500;

/// A validated plan with every default applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedPlan {
    /// Requested width before dpr; `None` when unset.
    pub width: Option<u32>,
    /// Requested height before dpr; `None` when unset.
    pub height: Option<u32>,
    /// How the image fills the box (never `Unspecified`).
    pub fit: Fit,
    /// Output format; `None` keeps the input's family.
    pub format: Option<EncodedFormat>,
    /// Encoder quality, 1–100.
    pub quality: u8,
    /// Device pixel ratio in hundredths, 1–500.
    pub dpr_centi: u32,
}

// === impl ResolvedPlan ===

impl ResolvedPlan {
    /// Validates `plan` and fills in imgix's defaults.
    pub fn resolve(plan: &RenderPlan) -> Result<ResolvedPlan, RenderError> {
        let fit = match Fit::try_from(plan.fit) {
            Ok(Fit::Unspecified) => Fit::Clip,
            Ok(fit) => fit,
            Err(_) => {
                return Err(RenderError::InvalidRequest {
                    field: "plan.fit",
                    problem: format!("unknown value {}", plan.fit),
                });
            }
        };
        let format = match OutputFormat::try_from(plan.format) {
            Ok(OutputFormat::Unspecified) => None,
            Ok(OutputFormat::Jpeg) => Some(EncodedFormat::Jpeg),
            Ok(OutputFormat::Png) => Some(EncodedFormat::Png),
            Ok(OutputFormat::Webp) => Some(EncodedFormat::Webp),
            Ok(OutputFormat::Avif) => Some(EncodedFormat::Avif),
            Err(_) => {
                return Err(RenderError::InvalidRequest {
                    field: "plan.format",
                    problem: format!("unknown value {}", plan.format),
                });
            }
        };
        let quality = match plan.quality {
            0 => DEFAULT_QUALITY,
            // Clamped to 100, so the cast cannot truncate.
            q => q.min(100) as u8,
        };
        let dpr_centi = match plan.dpr_centi {
            0 => 100,
            dpr => dpr.min(MAX_DPR_CENTI),
        };
        Ok(ResolvedPlan {
            width: (plan.width > 0).then_some(plan.width),
            height: (plan.height > 0).then_some(plan.height),
            fit,
            format,
            quality,
            dpr_centi,
        })
    }

    /// The device pixel ratio as a factor.
    pub fn dpr(&self) -> f64 {
        f64::from(self.dpr_centi) / 100.0
    }

    /// The plan with every default written out: equal resolved plans give
    /// equal canonical plans, and so equal encodings.
    pub fn canonical(&self) -> RenderPlan {
        let format = match self.format {
            None => OutputFormat::Unspecified,
            Some(EncodedFormat::Jpeg) => OutputFormat::Jpeg,
            Some(EncodedFormat::Png) => OutputFormat::Png,
            Some(EncodedFormat::Webp) => OutputFormat::Webp,
            Some(EncodedFormat::Avif) => OutputFormat::Avif,
        };
        RenderPlan {
            width: self.width.unwrap_or(0),
            height: self.height.unwrap_or(0),
            fit: self.fit.into(),
            format: format.into(),
            quality: u32::from(self.quality),
            dpr_centi: self.dpr_centi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty plan resolves to imgix's defaults: clip, q=75, dpr=1, no size.
    #[test]
    fn empty_plan_gets_imgix_defaults() {
        let plan = ResolvedPlan::resolve(&RenderPlan::default()).unwrap();
        assert_eq!(
            plan,
            ResolvedPlan {
                width: None,
                height: None,
                fit: Fit::Clip,
                format: None,
                quality: 75,
                dpr_centi: 100,
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
        assert_eq!(plan.quality, 100);
        assert_eq!(plan.dpr_centi, MAX_DPR_CENTI);
    }

    /// Unknown enum values are refused, naming the field.
    #[test]
    fn unknown_enum_values_are_invalid() {
        let fit = ResolvedPlan::resolve(&RenderPlan {
            fit: 42,
            ..RenderPlan::default()
        });
        assert!(
            matches!(
                fit,
                Err(RenderError::InvalidRequest {
                    field: "plan.fit",
                    ..
                })
            ),
            "{fit:?}"
        );
        let format = ResolvedPlan::resolve(&RenderPlan {
            format: 42,
            ..RenderPlan::default()
        });
        assert!(
            matches!(
                format,
                Err(RenderError::InvalidRequest {
                    field: "plan.format",
                    ..
                })
            ),
            "{format:?}"
        );
    }

    /// A plan relying on defaults and one spelling them out are canonically equal.
    #[test]
    fn defaults_and_explicit_values_are_canonically_equal() {
        let implicit = RenderPlan {
            width: 300,
            ..RenderPlan::default()
        };
        let explicit = RenderPlan {
            width: 300,
            fit: Fit::Clip.into(),
            quality: 75,
            dpr_centi: 100,
            ..RenderPlan::default()
        };
        assert_eq!(
            ResolvedPlan::resolve(&implicit).unwrap().canonical(),
            ResolvedPlan::resolve(&explicit).unwrap().canonical()
        );
    }
}
