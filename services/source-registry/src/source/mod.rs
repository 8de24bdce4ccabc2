//! A Source as the registry holds it, and the validated inputs that create
//! and change one, built from named groups of settings.
//!
//! Each group is a value type that owns its field rules, its validation
//! from its proto message (a create request's group, or an update's group
//! under its [`UpdateMask`] paths), its row binding and its public form:
//! [`location`] (where the objects live, the S3 clients' `BucketLocation`),
//! [`access_key`] (the read and upload keys, the S3 clients' `AccessKey`,
//! whose `Debug` redacts the secret), [`routing`] (subdomain and custom
//! domains), [`cache_policy`], [`fallback_images`] and [`deploy_state`].
//! The settings that belong to no group (name, default params) keep their
//! rules in [`crate::source_fields`].
//!
//! [`SourceRecord`] is a stored row (its secrets sealed apart); it turns
//! into the public `Source` message, which never carries a secret.
//! [`NewSource`] and [`SourceChanges`] are create and update requests after
//! every rule has passed. [`ReadAccess`] is the decrypted view only the
//! fetcher gets.

pub(crate) mod access_key;
pub(crate) mod cache_policy;
pub(crate) mod deploy_state;
pub(crate) mod fallback_images;
pub(crate) mod location;
pub(crate) mod routing;
pub(crate) mod update_mask;

use imgmesh_proto::registry::v1 as proto;
use imgmesh_s3_client::{AccessKey, BucketAccess, BucketLocation};

use crate::error::RegistryError;
use crate::source_fields;

pub(crate) use self::access_key::{ReadKeyChange, UploadChange};
pub(crate) use self::cache_policy::{CachePolicy, CachePolicyChange};
pub(crate) use self::deploy_state::DeployState;
pub(crate) use self::fallback_images::{FallbackImages, FallbackImagesChange};
pub(crate) use self::location::LocationChange;
pub(crate) use self::routing::{Routing, RoutingChange};
pub(crate) use self::update_mask::UpdateMask;

/// Every path an update mask may name: each group's, then the settings
/// that belong to no group.
pub(crate) const MASK_PATHS: &[&[&str]] = &[
    routing::MASK_PATHS,
    location::MASK_PATHS,
    access_key::READ_MASK_PATHS,
    access_key::UPLOAD_MASK_PATHS,
    cache_policy::MASK_PATHS,
    fallback_images::MASK_PATHS,
    &["default_params", "secure_url_enabled", "enabled"],
];

/// Field name the secret access key is sealed under (part of the AEAD
/// associated data).
pub(crate) const SECRET_ACCESS_KEY_FIELD: &str = "secret_access_key";

/// Field name the upload secret access key is sealed under.
pub(crate) const UPLOAD_SECRET_ACCESS_KEY_FIELD: &str = "upload_secret_access_key";

/// Field name a secure URL token with id `token_id` is sealed under.
pub(crate) fn secure_token_field(token_id: &str) -> String {
    format!("secure_url_token/{token_id}")
}

/// A Source as stored: every setting, the key ids but not their secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceRecord {
    /// Stable id, `src_` and 12 hex digits.
    pub(crate) id: String,
    /// Unique human name.
    pub(crate) name: String,
    /// Which hosts reach it.
    pub(crate) routing: Routing,
    /// Where its objects live.
    pub(crate) location: BucketLocation,
    /// Id of the read key (its secret is sealed apart).
    pub(crate) access_key_id: String,
    /// imgix query applied to every request unless the URL overrides it.
    pub(crate) default_params: String,
    /// How long derivatives and errors live.
    pub(crate) cache: CachePolicy,
    /// What replaces a missing or broken asset.
    pub(crate) fallback: FallbackImages,
    /// Whether requests must be signed.
    pub(crate) secure_url_enabled: bool,
    /// Whether it serves at all (a disabled Source answers 410).
    pub(crate) enabled: bool,
    /// Where its deployment stands.
    pub(crate) deploy: DeployState,
    /// Id of the upload key; empty when the Source has none.
    pub(crate) upload_access_key_id: String,
    /// Secure URL tokens accepted now (counted when the record is read).
    pub(crate) active_secure_tokens: u32,
    /// Increases on every change.
    pub(crate) config_version: u64,
    /// Creation time, Unix seconds.
    pub(crate) created_at: i64,
    /// Last change, Unix seconds.
    pub(crate) updated_at: i64,
}

// === impl SourceRecord ===

impl SourceRecord {
    /// The record of `new`, stored under `id` at `now`: pending, version 1.
    pub(crate) fn new(id: String, new: &NewSource, now: i64) -> SourceRecord {
        SourceRecord {
            id,
            name: new.name.clone(),
            routing: new.routing.clone(),
            location: new.location.clone(),
            access_key_id: new.key.id.clone(),
            default_params: new.default_params.clone(),
            cache: new.cache,
            fallback: new.fallback.clone(),
            secure_url_enabled: new.secure_url_enabled,
            enabled: new.enabled,
            deploy: DeployState::new_source(),
            upload_access_key_id: new
                .upload
                .as_ref()
                .map(|upload| upload.id.clone())
                .unwrap_or_default(),
            active_secure_tokens: 0,
            config_version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The public view: everything but the secrets, with hints of the key
    /// ids.
    pub(crate) fn to_public(&self) -> proto::Source {
        proto::Source {
            id: self.id.clone(),
            name: self.name.clone(),
            default_params: self.default_params.clone(),
            config_version: self.config_version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            secure_url_enabled: self.secure_url_enabled,
            enabled: self.enabled,
            active_secure_tokens: self.active_secure_tokens,
            routing: Some((&self.routing).into()),
            location: Some(location::to_public(&self.location)),
            access_key: Some(access_key::to_public(&self.access_key_id)),
            cache_policy: Some(self.cache.into()),
            fallback_images: Some((&self.fallback).into()),
            upload_access_key: access_key::upload_to_public(&self.upload_access_key_id),
            deploy_state: Some((&self.deploy).into()),
        }
    }

    /// Whether the Source serves requests: enabled and deployed.
    pub(crate) fn serving(&self) -> bool {
        self.enabled && self.deploy.deployed()
    }
}

/// A validated create request.
#[derive(Debug)]
pub(crate) struct NewSource {
    /// Unique human name.
    pub(crate) name: String,
    /// Which hosts reach it.
    pub(crate) routing: Routing,
    /// Where its objects live.
    pub(crate) location: BucketLocation,
    /// The read key, to be sealed.
    pub(crate) key: AccessKey,
    /// imgix query applied to every request.
    pub(crate) default_params: String,
    /// How long derivatives and errors live.
    pub(crate) cache: CachePolicy,
    /// What replaces a missing or broken asset.
    pub(crate) fallback: FallbackImages,
    /// Whether requests must be signed.
    pub(crate) secure_url_enabled: bool,
    /// Whether it starts enabled.
    pub(crate) enabled: bool,
    /// The upload key, if any, to be sealed.
    pub(crate) upload: Option<AccessKey>,
}

// === impl NewSource ===

impl NewSource {
    /// Checks every field of a create request, one group after the other
    /// (a group left out is checked as empty).
    pub(crate) fn validate(request: &proto::CreateSourceRequest) -> Result<Self, RegistryError> {
        Ok(NewSource {
            name: source_fields::name(&request.name)?,
            routing: Routing::validate(&request.routing.clone().unwrap_or_default())?,
            location: location::validate(&request.location.clone().unwrap_or_default())?,
            key: access_key::validate_read(&request.access_key.clone().unwrap_or_default())?,
            default_params: source_fields::default_params(&request.default_params)?,
            cache: CachePolicy::validate(&request.cache_policy.unwrap_or_default())?,
            fallback: FallbackImages::validate(
                &request.fallback_images.clone().unwrap_or_default(),
            )?,
            secure_url_enabled: request.secure_url_enabled,
            enabled: !request.disabled,
            upload: access_key::validate_upload(
                &request.upload_access_key.clone().unwrap_or_default(),
            )?,
        })
    }
}

/// A validated update request: per group, `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct SourceChanges {
    /// Change of routing.
    pub(crate) routing: RoutingChange,
    /// Change of location.
    pub(crate) location: LocationChange,
    /// Change of the read key.
    pub(crate) key: ReadKeyChange,
    /// New default params.
    pub(crate) default_params: Option<String>,
    /// Change of cache policy.
    pub(crate) cache: CachePolicyChange,
    /// Change of the fallback images.
    pub(crate) fallback: FallbackImagesChange,
    /// Turn secure URLs on or off.
    pub(crate) secure_url_enabled: Option<bool>,
    /// Enable or disable the Source.
    pub(crate) enabled: Option<bool>,
    /// Change of the upload key.
    pub(crate) upload: Option<UploadChange>,
}

// === impl SourceChanges ===

impl SourceChanges {
    /// Checks the update mask, then every field it names.
    pub(crate) fn validate(request: &proto::UpdateSourceRequest) -> Result<Self, RegistryError> {
        let mask = UpdateMask::parse(request.update_mask.as_ref(), MASK_PATHS)?;
        let source = request.source.clone().unwrap_or_default();
        Ok(SourceChanges {
            routing: RoutingChange::validate(&source.routing.unwrap_or_default(), &mask)?,
            location: LocationChange::validate(&source.location.unwrap_or_default(), &mask)?,
            key: ReadKeyChange::validate(&source.access_key.unwrap_or_default(), &mask)?,
            default_params: mask
                .covers("default_params")
                .then(|| source_fields::default_params(&source.default_params))
                .transpose()?,
            cache: CachePolicyChange::validate(&source.cache_policy.unwrap_or_default(), &mask)?,
            fallback: FallbackImagesChange::validate(
                &source.fallback_images.unwrap_or_default(),
                &mask,
            )?,
            secure_url_enabled: mask
                .covers("secure_url_enabled")
                .then_some(source.secure_url_enabled),
            enabled: mask.covers("enabled").then_some(source.enabled),
            upload: UploadChange::validate(&source.upload_access_key.unwrap_or_default(), &mask)?,
        })
    }

    /// Whether the change touches what a deploy verifies (the location or
    /// the read key) compared with `current`, so the Source needs a new
    /// deploy.
    pub(crate) fn needs_redeploy(&self, current: &SourceRecord) -> bool {
        self.location.differs_from(&current.location)
            || self.key.differs_from(&current.access_key_id)
    }

    /// Applies every present change except the secrets (which must be
    /// sealed first) to `record`.
    pub(crate) fn apply_settings(&self, record: &mut SourceRecord) {
        self.routing.apply(&mut record.routing);
        self.location.apply(&mut record.location);
        if let Some(id) = &self.key.id {
            record.access_key_id = id.clone();
        }
        if let Some(params) = &self.default_params {
            record.default_params = params.clone();
        }
        self.cache.apply(&mut record.cache);
        self.fallback.apply(&mut record.fallback);
        if let Some(secure) = self.secure_url_enabled {
            record.secure_url_enabled = secure;
        }
        if let Some(enabled) = self.enabled {
            record.enabled = enabled;
        }
        match &self.upload {
            Some(UploadChange::Set(key)) => record.upload_access_key_id = key.id.clone(),
            Some(UploadChange::Remove) => record.upload_access_key_id.clear(),
            None => {}
        }
    }
}

/// What the fetcher needs to read a Source's bucket, secret decrypted.
#[derive(Debug, Clone)]
pub struct ReadAccess {
    /// Source id.
    pub source_id: String,
    /// Config version these settings belong to.
    pub config_version: u64,
    /// The bucket (with the Source's normalised path prefix) and the
    /// read-only key, its secret decrypted.
    pub bucket: BucketAccess,
    /// Whether the Source serves (enabled and deployed).
    pub serving: bool,
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::source::update_mask::TestValue::{Flag, Number, Text};
    use crate::source::update_mask::test_update;

    fn create_request() -> proto::CreateSourceRequest {
        proto::CreateSourceRequest {
            name: "demo".into(),
            routing: Some(proto::Routing {
                subdomain: "demo".into(),
                custom_domains: Vec::new(),
            }),
            location: Some(proto::Location {
                bucket: "images".into(),
                region: "us-east-1".into(),
                endpoint: "http://127.0.0.1:9000/".into(),
                path_prefix: "/photos/".into(),
            }),
            access_key: Some(proto::AccessKey {
                id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret: "very-secret-value".into(),
            }),
            default_params: "?auto=format".into(),
            ..Default::default()
        }
    }

    /// Validation normalises fields and applies the TTL default.
    #[test]
    fn new_source_is_normalised() {
        let new = NewSource::validate(&create_request()).unwrap();
        assert_eq!(
            new.location.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(new.location.path_prefix, "photos");
        assert_eq!(new.default_params, "auto=format");
        assert_eq!(
            new.cache.ttl_seconds,
            cache_policy::DEFAULT_CACHE_TTL_SECONDS
        );
        assert_eq!(new.key.secret.expose_secret(), "very-secret-value");
    }

    /// A create request with a bad field is refused naming that field.
    #[test]
    fn new_source_names_the_bad_field() {
        let request = {
            let mut request = create_request();
            request.location.get_or_insert_default().bucket = "Bad_Bucket".into();
            request
        };
        let error = NewSource::validate(&request).unwrap_err();
        assert!(matches!(
            error,
            RegistryError::InvalidField {
                field: "bucket",
                ..
            }
        ));
    }

    /// Update validation checks only the fields that are present.
    #[test]
    fn changes_validate_present_fields_only() {
        let empty = SourceChanges::validate(&test_update("demo", &[])).unwrap();
        assert!(empty.routing.subdomain.is_none() && empty.key.secret.is_none());

        let error = SourceChanges::validate(&test_update(
            "demo",
            &[("location.region", Text(String::new()))],
        ))
        .unwrap_err();
        assert!(matches!(
            error,
            RegistryError::InvalidField {
                field: "region",
                ..
            }
        ));

        let cleared = SourceChanges::validate(&test_update(
            "demo",
            &[
                ("location.endpoint", Text(String::new())),
                ("cache_policy.ttl_seconds", Number(0)),
            ],
        ))
        .unwrap();
        assert_eq!(cleared.location.endpoint, Some(None));
        assert_eq!(
            cleared.cache.ttl_seconds,
            Some(cache_policy::DEFAULT_CACHE_TTL_SECONDS)
        );
    }

    /// Debug of every secret-holding type redacts the secret; the whole
    /// keys show only a hint of their id.
    #[test]
    fn debug_redacts_secrets() {
        let new = NewSource::validate(&create_request()).unwrap();
        let changes = SourceChanges {
            key: ReadKeyChange {
                id: Some("AKIAIOSFODNN7EXAMPLE".into()),
                secret: Some("very-secret-value".into()),
            },
            ..Default::default()
        };
        let access = ReadAccess {
            source_id: "src_000000000001".into(),
            config_version: 1,
            bucket: BucketAccess {
                location: BucketLocation::default(),
                key: AccessKey::new("AKIAIOSFODNN7EXAMPLE", "very-secret-value"),
            },
            serving: true,
        };
        for shown in [format!("{new:?}"), format!("{access:?}")] {
            assert!(!shown.contains("very-secret-value"), "{shown}");
            assert!(shown.contains("[REDACTED]"), "{shown}");
            assert!(shown.contains("…MPLE"), "{shown}");
        }
        let shown = format!("{changes:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }

    /// Upload credentials come in pairs: one without the other names the
    /// missing field; an empty key id alone removes them on update.
    #[test]
    fn upload_credentials_come_in_pairs() {
        let with = |id: &str, secret: &str| {
            let mut request = create_request();
            request.upload_access_key.get_or_insert_default().id = id.into();
            request.upload_access_key.get_or_insert_default().secret = secret.into();
            request
        };
        assert!(NewSource::validate(&with("", "")).unwrap().upload.is_none());
        let both = NewSource::validate(&with("AKIAUPLOAD", "up-secret")).unwrap();
        let upload = both.upload.unwrap();
        assert_eq!(upload.id, "AKIAUPLOAD");
        assert_eq!(upload.secret.expose_secret(), "up-secret");
        for (id, secret, field) in [
            ("AKIAUPLOAD", "", "upload_secret_access_key"),
            ("", "up-secret", "upload_access_key_id"),
            ("A B", "up-secret", "upload_access_key_id"),
        ] {
            match NewSource::validate(&with(id, secret)) {
                Err(RegistryError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{id:?}/{secret:?}: {other:?}"),
            }
        }

        let update = |id: Option<&str>, secret: Option<&str>| {
            let mut fields = Vec::new();
            if let Some(id) = id {
                fields.push(("upload_access_key.id", Text(id.to_owned())));
            }
            if let Some(secret) = secret {
                fields.push(("upload_access_key.secret", Text(secret.to_owned())));
            }
            SourceChanges::validate(&test_update("demo", &fields)).map(|changes| changes.upload)
        };
        assert!(update(None, None).unwrap().is_none());
        assert!(matches!(
            update(Some(""), None),
            Ok(Some(UploadChange::Remove))
        ));
        assert!(matches!(
            update(Some("AKIAUPLOAD"), Some("s")),
            Ok(Some(UploadChange::Set(_)))
        ));
        for (id, secret, field) in [
            (None, Some("s"), "upload_access_key_id"),
            (Some("AKIAUPLOAD"), None, "upload_secret_access_key"),
            (Some("AKIAUPLOAD"), Some(""), "upload_secret_access_key"),
            (Some(""), Some("s"), "upload_access_key_id"),
        ] {
            match update(id, secret) {
                Err(RegistryError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{id:?}/{secret:?}: {other:?}"),
            }
        }
    }

    /// Only a change of what a deploy verifies needs a new deploy; setting a
    /// field to its current value does not.
    #[test]
    fn redeploy_is_needed_only_for_verified_settings() {
        let new = NewSource::validate(&create_request()).unwrap();
        let mut record = SourceRecord::new("src_000000000001".into(), &new, 1);
        record.deploy = DeployState {
            status: proto::SourceStatus::Deployed,
            message: String::new(),
            last_deployed_at: 1,
        };
        let redeploys = |request: proto::UpdateSourceRequest| {
            SourceChanges::validate(&request)
                .unwrap()
                .needs_redeploy(&record)
        };
        for request in [
            test_update("demo", &[("location.bucket", Text("other".into()))]),
            test_update("demo", &[("location.region", Text("eu-west-1".into()))]),
            test_update("demo", &[("location.endpoint", Text(String::new()))]),
            test_update("demo", &[("location.path_prefix", Text("x".into()))]),
            test_update("demo", &[("access_key.id", Text("AKIANEW".into()))]),
            test_update("demo", &[("access_key.secret", Text("new".into()))]),
        ] {
            assert!(redeploys(request.clone()), "{request:?}");
        }
        for request in [
            test_update("demo", &[]),
            test_update("demo", &[("location.bucket", Text("images".into()))]),
            test_update("demo", &[("location.path_prefix", Text("/photos/".into()))]),
            test_update("demo", &[("default_params", Text("w=1".into()))]),
            test_update("demo", &[("routing.subdomain", Text("other".into()))]),
            test_update("demo", &[("enabled", Flag(false))]),
            test_update("demo", &[("secure_url_enabled", Flag(true))]),
            test_update(
                "demo",
                &[
                    ("upload_access_key.id", Text("AKIAUP".into())),
                    ("upload_access_key.secret", Text("up".into())),
                ],
            ),
        ] {
            assert!(!redeploys(request.clone()), "{request:?}");
        }
    }
}
