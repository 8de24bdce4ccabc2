//! The derivative cache key.
//!
//! `imgmesh:d:v2:` + hex(sha256(source id, source config version, path,
//! canonical plan encoding)). Each part is written with its length in front,
//! so no two different tuples hash the same bytes (`("ab", "c")` vs
//! `("a", "bc")`). The plan is hashed in its canonical form (defaults
//! written out, see [`ResolvedPlan::canonical`]; v2 is the plan with
//! every imgix parameter group), and the config version is
//! part of the key so a Source edit takes effect at once.

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use crate::render_plan::ResolvedPlan;

/// The prefix of every derivative key; bump the version when the value format or
/// rendering changes incompatibly.
pub const KEY_PREFIX: &str = "imgmesh:d:v2:";

/// The Redis key of the derivative of `path` on Source `source_id` (at
/// `source_config_version`) rendered with `plan`.
pub fn derivative_key(
    source_id: &str,
    source_config_version: u64,
    path: &str,
    plan: &ResolvedPlan,
) -> String {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    part(source_id.as_bytes());
    part(&source_config_version.to_be_bytes());
    part(path.as_bytes());
    part(&plan.canonical().encode_to_vec());
    format!("{KEY_PREFIX}{}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan};

    use super::*;

    fn resolved(plan: RenderPlan) -> ResolvedPlan {
        ResolvedPlan::resolve(&plan).unwrap()
    }

    fn webp_320() -> ResolvedPlan {
        resolved(RenderPlan {
            width: 320,
            format: OutputFormat::Webp.into(),
            quality: 60,
            ..RenderPlan::default()
        })
    }

    /// Equal inputs give the same key, with the prefix and a sha256 in hex.
    #[test]
    fn key_is_stable() {
        let key = derivative_key("src_1", 3, "photos/cat.jpg", &webp_320());
        assert_eq!(
            key,
            derivative_key("src_1", 3, "photos/cat.jpg", &webp_320())
        );
        let digest = key.strip_prefix(KEY_PREFIX).unwrap();
        assert_eq!(digest.len(), 64);
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    }

    /// A plan with defaults left out shares the key of one spelling them out.
    #[test]
    fn defaults_share_a_key() {
        let implicit = resolved(RenderPlan {
            width: 320,
            ..RenderPlan::default()
        });
        let explicit = resolved(RenderPlan {
            width: 320,
            fit: Fit::Clip.into(),
            quality: 75,
            dpr_centi: 100,
            ..RenderPlan::default()
        });
        assert_eq!(
            derivative_key("s", 1, "a.jpg", &implicit),
            derivative_key("s", 1, "a.jpg", &explicit)
        );
    }

    /// Changing the config version, path, Source or any plan field changes the key.
    #[test]
    fn every_part_changes_the_key() {
        let base = derivative_key("src_1", 3, "photos/cat.jpg", &webp_320());
        let variant = |change: fn(&mut RenderPlan)| {
            let mut plan = RenderPlan {
                width: 320,
                format: OutputFormat::Webp.into(),
                quality: 60,
                ..RenderPlan::default()
            };
            change(&mut plan);
            derivative_key("src_1", 3, "photos/cat.jpg", &resolved(plan))
        };
        let variants = [
            derivative_key("src_1", 4, "photos/cat.jpg", &webp_320()),
            derivative_key("src_1", 3, "photos/dog.jpg", &webp_320()),
            derivative_key("src_2", 3, "photos/cat.jpg", &webp_320()),
            variant(|p| p.width = 321),
            variant(|p| p.format = OutputFormat::Png.into()),
            variant(|p| p.quality = 61),
            variant(|p| {
                p.adjustments = Some(imgmesh_proto::renderer::v1::Adjustments {
                    brightness: 1,
                    ..Default::default()
                })
            }),
        ];
        for variant in &variants {
            assert_ne!(&base, variant);
        }
    }

    /// Moving bytes between the Source id and the path cannot collide.
    #[test]
    fn parts_cannot_run_into_each_other() {
        let plan = webp_320();
        assert_ne!(
            derivative_key("ab", 1, "c", &plan),
            derivative_key("a", 1, "bc", &plan)
        );
    }
}
