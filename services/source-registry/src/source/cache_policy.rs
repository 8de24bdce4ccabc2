//! The cache-policy group: how long derivatives and error responses live,
//! and how that relates to the original's own caching headers (imgix's
//! `cache_ttl_behavior`).

use imgmesh_proto::registry::v1::{self as proto, CacheTtlBehavior};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::columns::{Query, decode_error, unsigned_column};
use crate::error::RegistryError;
use crate::source::update_mask::UpdateMask;

/// The update-mask paths of the group.
pub(crate) const MASK_PATHS: &[&str] = &[
    "cache_policy",
    "cache_policy.ttl_seconds",
    "cache_policy.behavior",
    "cache_policy.error_ttl_seconds",
];

/// Cache TTL used when a Source asks for 0: one year.
pub const DEFAULT_CACHE_TTL_SECONDS: u32 = 31_536_000;
/// Longest cache TTL a Source may ask for: ten years.
pub const MAX_CACHE_TTL_SECONDS: u32 = 10 * DEFAULT_CACHE_TTL_SECONDS;
/// Error TTL used when a Source asks for 0: five minutes (imgix's default).
pub const DEFAULT_CACHE_TTL_ERROR_SECONDS: u32 = 300;

/// A Source's cache policy, validated (zeros replaced by the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachePolicy {
    /// Lifetime of derivatives in seconds.
    pub(crate) ttl_seconds: u32,
    /// How the lifetime relates to the original's headers.
    pub(crate) behavior: CacheTtlBehavior,
    /// Lifetime of error responses in seconds.
    pub(crate) error_ttl_seconds: u32,
}

// === impl CachePolicy ===

impl CachePolicy {
    /// Checks a create request's cache policy (zeros become the defaults).
    pub(crate) fn validate(policy: &proto::CachePolicy) -> Result<CachePolicy, RegistryError> {
        Ok(CachePolicy {
            ttl_seconds: cache_ttl_seconds(policy.ttl_seconds)?,
            behavior: cache_ttl_behavior(policy.behavior)?,
            error_ttl_seconds: cache_ttl_error_seconds(policy.error_ttl_seconds)?,
        })
    }

    /// Binds the `cache_ttl_seconds`, `cache_ttl_behavior` and
    /// `cache_ttl_error_seconds` columns.
    pub(crate) fn bind<'q>(&self, query: Query<'q>) -> Query<'q> {
        query
            .bind(i64::from(self.ttl_seconds))
            .bind(behavior_to_db(self.behavior))
            .bind(i64::from(self.error_ttl_seconds))
    }

    /// Reads the cache columns.
    pub(crate) fn from_row(row: &AnyRow) -> Result<CachePolicy, sqlx::Error> {
        Ok(CachePolicy {
            ttl_seconds: unsigned_column(row, "cache_ttl_seconds")?,
            behavior: behavior_from_db(&row.try_get::<String, _>("cache_ttl_behavior")?)?,
            error_ttl_seconds: unsigned_column(row, "cache_ttl_error_seconds")?,
        })
    }
}

impl From<CachePolicy> for proto::CachePolicy {
    /// The group's public form, its defaults already applied.
    fn from(policy: CachePolicy) -> proto::CachePolicy {
        proto::CachePolicy {
            ttl_seconds: policy.ttl_seconds,
            behavior: policy.behavior.into(),
            error_ttl_seconds: policy.error_ttl_seconds,
        }
    }
}

/// The stored name of a cache TTL behaviour.
fn behavior_to_db(behavior: CacheTtlBehavior) -> &'static str {
    match behavior {
        CacheTtlBehavior::Unspecified | CacheTtlBehavior::RespectOrigin => "respect_origin",
        CacheTtlBehavior::OverrideOrigin => "override_origin",
        CacheTtlBehavior::EnforceMinimum => "enforce_minimum",
    }
}

fn behavior_from_db(text: &str) -> Result<CacheTtlBehavior, sqlx::Error> {
    match text {
        "respect_origin" => Ok(CacheTtlBehavior::RespectOrigin),
        "override_origin" => Ok(CacheTtlBehavior::OverrideOrigin),
        "enforce_minimum" => Ok(CacheTtlBehavior::EnforceMinimum),
        other => Err(decode_error(
            "cache_ttl_behavior",
            format!("unknown behaviour {other:?}"),
        )),
    }
}

/// A change of cache policy in an update: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct CachePolicyChange {
    /// New derivative lifetime.
    pub(crate) ttl_seconds: Option<u32>,
    /// New behaviour.
    pub(crate) behavior: Option<CacheTtlBehavior>,
    /// New error lifetime.
    pub(crate) error_ttl_seconds: Option<u32>,
}

// === impl CachePolicyChange ===

impl CachePolicyChange {
    /// Checks the cache fields `mask` names.
    pub(crate) fn validate(
        policy: &proto::CachePolicy,
        mask: &UpdateMask,
    ) -> Result<CachePolicyChange, RegistryError> {
        Ok(CachePolicyChange {
            ttl_seconds: mask
                .covers("cache_policy.ttl_seconds")
                .then(|| cache_ttl_seconds(policy.ttl_seconds))
                .transpose()?,
            behavior: mask
                .covers("cache_policy.behavior")
                .then(|| cache_ttl_behavior(policy.behavior))
                .transpose()?,
            error_ttl_seconds: mask
                .covers("cache_policy.error_ttl_seconds")
                .then(|| cache_ttl_error_seconds(policy.error_ttl_seconds))
                .transpose()?,
        })
    }

    /// Applies the present fields to `policy`.
    pub(crate) fn apply(&self, policy: &mut CachePolicy) {
        if let Some(ttl) = self.ttl_seconds {
            policy.ttl_seconds = ttl;
        }
        if let Some(behavior) = self.behavior {
            policy.behavior = behavior;
        }
        if let Some(ttl) = self.error_ttl_seconds {
            policy.error_ttl_seconds = ttl;
        }
    }
}

// === field rules ===

/// `cache_ttl_seconds`: 0 means the default (one year); at most ten years.
fn cache_ttl_seconds(value: u32) -> Result<u32, RegistryError> {
    match value {
        0 => Ok(DEFAULT_CACHE_TTL_SECONDS),
        v if v > MAX_CACHE_TTL_SECONDS => Err(RegistryError::invalid(
            "cache_ttl_seconds",
            "must be at most 315360000 (ten years)",
        )),
        v => Ok(v),
    }
}

/// `cache_ttl_behavior`: one of the enum's values; unspecified means
/// respect_origin.
fn cache_ttl_behavior(value: i32) -> Result<CacheTtlBehavior, RegistryError> {
    match CacheTtlBehavior::try_from(value) {
        Ok(CacheTtlBehavior::Unspecified) => Ok(CacheTtlBehavior::RespectOrigin),
        Ok(behavior) => Ok(behavior),
        Err(_) => Err(RegistryError::invalid(
            "cache_ttl_behavior",
            "must be respect_origin, override_origin or enforce_minimum",
        )),
    }
}

/// `cache_ttl_error_seconds`: 0 means the default (300); at most ten years.
fn cache_ttl_error_seconds(value: u32) -> Result<u32, RegistryError> {
    match value {
        0 => Ok(DEFAULT_CACHE_TTL_ERROR_SECONDS),
        v if v > MAX_CACHE_TTL_SECONDS => Err(RegistryError::invalid(
            "cache_ttl_error_seconds",
            "must be at most 315360000 (ten years)",
        )),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TTL of 0 becomes the default; more than ten years is refused.
    #[test]
    fn cache_ttl_rules() {
        assert_eq!(cache_ttl_seconds(0).unwrap(), DEFAULT_CACHE_TTL_SECONDS);
        assert_eq!(cache_ttl_seconds(1).unwrap(), 1);
        assert_eq!(
            cache_ttl_seconds(MAX_CACHE_TTL_SECONDS).unwrap(),
            315_360_000
        );
        assert!(matches!(
            cache_ttl_seconds(MAX_CACHE_TTL_SECONDS + 1),
            Err(RegistryError::InvalidField {
                field: "cache_ttl_seconds",
                ..
            })
        ));
    }

    /// Unspecified behaviour means respect_origin; unknown values are refused.
    #[test]
    fn cache_ttl_behavior_rules() {
        assert_eq!(
            cache_ttl_behavior(0).unwrap(),
            CacheTtlBehavior::RespectOrigin
        );
        for behavior in [
            CacheTtlBehavior::RespectOrigin,
            CacheTtlBehavior::OverrideOrigin,
            CacheTtlBehavior::EnforceMinimum,
        ] {
            assert_eq!(cache_ttl_behavior(behavior.into()).unwrap(), behavior);
        }
        for bad in [4, -1, 99] {
            assert!(matches!(
                cache_ttl_behavior(bad),
                Err(RegistryError::InvalidField {
                    field: "cache_ttl_behavior",
                    ..
                })
            ));
        }
    }

    /// An error TTL of 0 becomes 300; more than ten years is refused.
    #[test]
    fn cache_ttl_error_rules() {
        assert_eq!(cache_ttl_error_seconds(0).unwrap(), 300);
        assert_eq!(cache_ttl_error_seconds(60).unwrap(), 60);
        assert!(matches!(
            cache_ttl_error_seconds(MAX_CACHE_TTL_SECONDS + 1),
            Err(RegistryError::InvalidField {
                field: "cache_ttl_error_seconds",
                ..
            })
        ));
    }
}
