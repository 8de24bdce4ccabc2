//! The fallback-images group: what a Source serves instead of an asset that
//! is missing (imgix's `image_missing`) or fails to render (`image_error`),
//! and whether the request's params are applied to it.

use imgmesh_proto::registry::v1 as proto;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use imgmesh_imgix_params::{KeyRefusal, check_asset_key, decode_url_path};

use crate::columns::{Query, bool_column};
use crate::error::RegistryError;
use crate::source::update_mask::UpdateMask;

/// The update-mask paths of the group.
pub(crate) const MASK_PATHS: &[&str] = &[
    "fallback_images",
    "fallback_images.missing",
    "fallback_images.missing.path",
    "fallback_images.missing.append_params",
    "fallback_images.error",
    "fallback_images.error.path",
    "fallback_images.error.append_params",
];

const MAX_ASSET_PATH_LEN: usize = 1024;

/// One fallback image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FallbackImage {
    /// Asset path on the Source with one leading `/`; empty for none.
    pub(crate) path: String,
    /// Whether the request's params are applied to it.
    pub(crate) append_params: bool,
}

/// A Source's two fallback images, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FallbackImages {
    /// Served instead of a missing asset.
    pub(crate) missing: FallbackImage,
    /// Served instead of an asset that fails to render.
    pub(crate) error: FallbackImage,
}

// === impl FallbackImages ===

impl FallbackImages {
    /// Checks a create request's fallback images.
    pub(crate) fn validate(
        images: &proto::FallbackImages,
    ) -> Result<FallbackImages, RegistryError> {
        let missing = images.missing.clone().unwrap_or_default();
        let error = images.error.clone().unwrap_or_default();
        Ok(FallbackImages {
            missing: FallbackImage {
                path: image_missing(&missing.path)?,
                append_params: missing.append_params,
            },
            error: FallbackImage {
                path: image_error(&error.path)?,
                append_params: error.append_params,
            },
        })
    }

    /// Binds the `image_missing`, `image_missing_append_params`,
    /// `image_error` and `image_error_append_params` columns.
    pub(crate) fn bind<'q>(&'q self, query: Query<'q>) -> Query<'q> {
        query
            .bind(&self.missing.path)
            .bind(i64::from(self.missing.append_params))
            .bind(&self.error.path)
            .bind(i64::from(self.error.append_params))
    }

    /// Reads the fallback columns.
    pub(crate) fn from_row(row: &AnyRow) -> Result<FallbackImages, sqlx::Error> {
        Ok(FallbackImages {
            missing: FallbackImage {
                path: row.try_get("image_missing")?,
                append_params: bool_column(row, "image_missing_append_params")?,
            },
            error: FallbackImage {
                path: row.try_get("image_error")?,
                append_params: bool_column(row, "image_error_append_params")?,
            },
        })
    }
}

impl From<&FallbackImage> for proto::FallbackImage {
    /// One image's public form.
    fn from(image: &FallbackImage) -> proto::FallbackImage {
        proto::FallbackImage {
            path: image.path.clone(),
            append_params: image.append_params,
        }
    }
}

impl From<&FallbackImages> for proto::FallbackImages {
    /// The group's public form.
    fn from(images: &FallbackImages) -> proto::FallbackImages {
        proto::FallbackImages {
            missing: Some((&images.missing).into()),
            error: Some((&images.error).into()),
        }
    }
}

/// A change of one fallback image: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct FallbackImageChange {
    /// New path; an empty one clears it.
    pub(crate) path: Option<String>,
    /// New append-params flag.
    pub(crate) append_params: Option<bool>,
}

// === impl FallbackImageChange ===

impl FallbackImageChange {
    /// Applies the present fields to `image`.
    fn apply(&self, image: &mut FallbackImage) {
        if let Some(path) = &self.path {
            image.path = path.clone();
        }
        if let Some(append) = self.append_params {
            image.append_params = append;
        }
    }
}

/// A change of the fallback images in an update.
#[derive(Debug, Default)]
pub(crate) struct FallbackImagesChange {
    /// Change of the missing-asset image.
    pub(crate) missing: FallbackImageChange,
    /// Change of the render-error image.
    pub(crate) error: FallbackImageChange,
}

// === impl FallbackImagesChange ===

impl FallbackImagesChange {
    /// Checks the fallback fields `mask` names.
    pub(crate) fn validate(
        images: &proto::FallbackImages,
        mask: &UpdateMask,
    ) -> Result<FallbackImagesChange, RegistryError> {
        let missing = images.missing.clone().unwrap_or_default();
        let error = images.error.clone().unwrap_or_default();
        Ok(FallbackImagesChange {
            missing: FallbackImageChange {
                path: mask
                    .covers("fallback_images.missing.path")
                    .then(|| image_missing(&missing.path))
                    .transpose()?,
                append_params: mask
                    .covers("fallback_images.missing.append_params")
                    .then_some(missing.append_params),
            },
            error: FallbackImageChange {
                path: mask
                    .covers("fallback_images.error.path")
                    .then(|| image_error(&error.path))
                    .transpose()?,
                append_params: mask
                    .covers("fallback_images.error.append_params")
                    .then_some(error.append_params),
            },
        })
    }

    /// Applies the present fields to `images`.
    pub(crate) fn apply(&self, images: &mut FallbackImages) {
        self.missing.apply(&mut images.missing);
        self.error.apply(&mut images.error);
    }
}

// === field rules ===

/// `image_missing`: an asset path on the Source (see [`asset_path`]).
fn image_missing(value: &str) -> Result<String, RegistryError> {
    asset_path("image_missing", value)
}

/// `image_error`: an asset path on the Source (see [`asset_path`]).
fn image_error(value: &str) -> Result<String, RegistryError> {
    asset_path("image_error", value)
}

/// An asset path: empty (none), or a URL path of up to 1024 bytes,
/// returned with exactly one leading `/`. The gateway percent-decodes it
/// once into the object key, as it does a request's path, so the key must
/// pass the rule every object key follows ([`check_asset_key`]: no leading
/// `/` or `\`, no `..` segment, no control characters); spaces, `%XX`,
/// `+`, backslashes, empty and `.` segments are keys S3 stores. A literal
/// `?` or `#` would end a URL path, so those characters are written
/// `%3F` and `%23`.
fn asset_path(field: &'static str, value: &str) -> Result<String, RegistryError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let invalid = |problem: &str| Err(RegistryError::invalid(field, problem));
    if value.len() > MAX_ASSET_PATH_LEN {
        return invalid("must be at most 1024 bytes");
    }
    if value.contains(['?', '#']) {
        return invalid("must be a path: write '?' as %3F and '#' as %23");
    }
    let path = value.strip_prefix('/').unwrap_or(value);
    let Some(key) = decode_url_path(path) else {
        return invalid("must percent-decode to UTF-8 (write '%' as %25)");
    };
    if let Err(refusal) = check_asset_key(&key) {
        let problem = match refusal {
            KeyRefusal::Empty => "must name a file, e.g. /missing.png",
            KeyRefusal::LeadingSlash => "must not start with '//' or a backslash",
            KeyRefusal::ParentSegment => "must not contain '..' segments",
            KeyRefusal::ControlCharacter => "must not contain control characters",
        };
        return invalid(problem);
    }
    Ok(format!("/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source_fields::tests::{Check, table};

    /// image_missing and image_error are URL paths on the Source, held to
    /// the one object-key rule after decoding; they gain one leading slash.
    #[test]
    fn asset_path_rules() {
        for (given, stored) in [
            ("", ""),
            ("missing.png", "/missing.png"),
            ("/missing.png", "/missing.png"),
            ("/errors/v2/broken.jpg", "/errors/v2/broken.jpg"),
            ("/dir.v2/x..y.png", "/dir.v2/x..y.png"),
            ("/a b.png", "/a b.png"),
            ("/a%20b.png", "/a%20b.png"),
            ("/100%25.png", "/100%25.png"),
            ("/a/./b.png", "/a/./b.png"),
            ("/a//b.png", "/a//b.png"),
            ("/a\\b.png", "/a\\b.png"),
            ("/dir/", "/dir/"),
        ] {
            assert_eq!(image_missing(given).unwrap(), stored, "{given:?}");
            assert_eq!(image_error(given).unwrap(), stored, "{given:?}");
        }
        let long = format!("/{}", "a".repeat(1023));
        assert_eq!(image_missing(&long).unwrap(), long);
        let too_long = format!("/{}", "a".repeat(1024));
        let checks: [(&str, Check); 2] = [
            ("image_missing", image_missing),
            ("image_error", image_error),
        ];
        for (field, check) in checks {
            table(
                field,
                check,
                &[],
                &[
                    "/",
                    "//evil.example.com/x.png",
                    "/\\evil.png",
                    "/%5Cevil.png",
                    "/../secret.png",
                    "/a/../../b.png",
                    "/a/..\\..\\b.png",
                    "/a%2e%2e/../b.png",
                    "/%2e%2e/b.png",
                    "/a.png?w=10",
                    "/a.png#x",
                    "/100%.png",
                    "/a\nb.png",
                    "/a%0Ab.png",
                    too_long.as_str(),
                ],
            );
        }
    }
}
