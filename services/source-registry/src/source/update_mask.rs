//! The update mask of `UpdateSource` (AIP-134): the paths of the fields to
//! change. Each group lists the paths it answers to; a path names a field
//! (`location.bucket`) or a whole group (`location`). An unknown path is
//! refused naming `update_mask`; a missing or empty mask names nothing, so
//! an update without one changes no setting (it still bumps the config
//! version, as the admin API's empty `PATCH` always has).

use imgmesh_proto::prost_types::FieldMask;

use crate::error::RegistryError;

/// The field of every refusal.
const FIELD: &str = "update_mask";

/// A checked update mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateMask {
    paths: Vec<String>,
}

// === impl UpdateMask ===

impl UpdateMask {
    /// Checks that every path of `mask` is one of `known` (each group's
    /// paths, listed by the caller that knows the groups).
    pub(crate) fn parse(
        mask: Option<&FieldMask>,
        known: &[&[&str]],
    ) -> Result<UpdateMask, RegistryError> {
        let paths = mask.map(|mask| mask.paths.clone()).unwrap_or_default();
        let is_known = |path: &str| known.iter().any(|paths| paths.contains(&path));
        if let Some(unknown) = paths.iter().find(|path| !is_known(path)) {
            return Err(RegistryError::invalid(
                FIELD,
                format!("unknown path {unknown:?}"),
            ));
        }
        Ok(UpdateMask { paths })
    }

    /// Whether the mask names `path` or a group holding it.
    pub(crate) fn covers(&self, path: &str) -> bool {
        self.paths.iter().any(|named| {
            path.strip_prefix(named.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }
}

/// A value a test update sets (see [`test_update`]).
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) enum TestValue {
    /// A string field.
    Text(String),
    /// A bool field.
    Flag(bool),
    /// A number field.
    Number(u32),
    /// The custom domains.
    List(Vec<String>),
}

/// An UpdateSource request for `id_or_name` that sets each field path to
/// its value and names exactly those paths in its mask (tests write
/// updates as flat lists this way).
#[cfg(test)]
pub(crate) fn test_update(
    id_or_name: &str,
    fields: &[(&str, TestValue)],
) -> imgmesh_proto::registry::v1::UpdateSourceRequest {
    use TestValue::{Flag, List, Number, Text};
    use imgmesh_proto::registry::v1 as proto;

    let mut source = proto::SourceUpdate::default();
    for (path, value) in fields {
        match (*path, value.clone()) {
            ("routing.subdomain", Text(v)) => {
                source.routing.get_or_insert_default().subdomain = v;
            }
            ("routing.custom_domains", List(v)) => {
                source.routing.get_or_insert_default().custom_domains = v;
            }
            ("location.bucket", Text(v)) => source.location.get_or_insert_default().bucket = v,
            ("location.region", Text(v)) => source.location.get_or_insert_default().region = v,
            ("location.endpoint", Text(v)) => {
                source.location.get_or_insert_default().endpoint = v;
            }
            ("location.path_prefix", Text(v)) => {
                source.location.get_or_insert_default().path_prefix = v;
            }
            ("access_key.id", Text(v)) => source.access_key.get_or_insert_default().id = v,
            ("access_key.secret", Text(v)) => {
                source.access_key.get_or_insert_default().secret = v;
            }
            ("upload_access_key.id", Text(v)) => {
                source.upload_access_key.get_or_insert_default().id = v;
            }
            ("upload_access_key.secret", Text(v)) => {
                source.upload_access_key.get_or_insert_default().secret = v;
            }
            ("default_params", Text(v)) => source.default_params = v,
            ("cache_policy.ttl_seconds", Number(v)) => {
                source.cache_policy.get_or_insert_default().ttl_seconds = v;
            }
            ("cache_policy.behavior", Number(v)) => {
                source.cache_policy.get_or_insert_default().behavior = v as i32;
            }
            ("cache_policy.error_ttl_seconds", Number(v)) => {
                source
                    .cache_policy
                    .get_or_insert_default()
                    .error_ttl_seconds = v;
            }
            ("fallback_images.missing.path", Text(v)) => {
                let images = source.fallback_images.get_or_insert_default();
                images.missing.get_or_insert_default().path = v;
            }
            ("fallback_images.missing.append_params", Flag(v)) => {
                let images = source.fallback_images.get_or_insert_default();
                images.missing.get_or_insert_default().append_params = v;
            }
            ("fallback_images.error.path", Text(v)) => {
                let images = source.fallback_images.get_or_insert_default();
                images.error.get_or_insert_default().path = v;
            }
            ("fallback_images.error.append_params", Flag(v)) => {
                let images = source.fallback_images.get_or_insert_default();
                images.error.get_or_insert_default().append_params = v;
            }
            ("secure_url_enabled", Flag(v)) => source.secure_url_enabled = v,
            ("enabled", Flag(v)) => source.enabled = v,
            (path, value) => panic!("test_update cannot set {path} to {value:?}"),
        }
    }
    proto::UpdateSourceRequest {
        id_or_name: id_or_name.to_owned(),
        source: Some(source),
        update_mask: Some(FieldMask {
            paths: fields.iter().map(|(path, _)| (*path).to_owned()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MASK_PATHS;

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        })
    }

    /// A group's path covers its fields; a field's path covers only itself.
    #[test]
    fn group_paths_cover_their_fields() {
        let parsed = UpdateMask::parse(
            mask(&["location", "routing.subdomain"]).as_ref(),
            MASK_PATHS,
        )
        .unwrap();
        assert!(parsed.covers("location.bucket"));
        assert!(parsed.covers("location.path_prefix"));
        assert!(parsed.covers("routing.subdomain"));
        assert!(!parsed.covers("routing.custom_domains"));
        assert!(!parsed.covers("enabled"));
        let parsed =
            UpdateMask::parse(mask(&["fallback_images.missing"]).as_ref(), MASK_PATHS).unwrap();
        assert!(parsed.covers("fallback_images.missing.append_params"));
        assert!(!parsed.covers("fallback_images.error.path"));
    }

    /// A missing or empty mask names nothing.
    #[test]
    fn missing_mask_names_nothing() {
        for given in [None, mask(&[])] {
            let parsed = UpdateMask::parse(given.as_ref(), MASK_PATHS).unwrap();
            assert!(!parsed.covers("enabled") && !parsed.covers("location.bucket"));
        }
    }

    /// A mask with an unknown path is refused naming update_mask and the
    /// path.
    #[test]
    fn unknown_paths_are_refused() {
        for (given, problem) in [
            (mask(&["bucket"]), "unknown path \"bucket\""),
            (
                mask(&["location.buckets"]),
                "unknown path \"location.buckets\"",
            ),
            (mask(&["enabled", "name"]), "unknown path \"name\""),
            (mask(&["locationx"]), "unknown path \"locationx\""),
        ] {
            match UpdateMask::parse(given.as_ref(), MASK_PATHS) {
                Err(RegistryError::InvalidField { field, problem: p }) => {
                    assert_eq!((field, p.as_str()), (FIELD, problem));
                }
                other => panic!("{given:?}: {other:?}"),
            }
        }
    }
}
