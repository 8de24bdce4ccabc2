//! A Source as the registry holds it, and the validated inputs that create
//! and change one.
//!
//! [`SourceRecord`] is a stored row (its secret sealed); it turns into the
//! public `Source` message, which never carries the secret. [`NewSource`] and
//! [`SourceChanges`] are create and update requests after every field rule
//! in [`crate::source_fields`] has passed. [`ReadAccess`] is the decrypted
//! view only the fetcher gets. Everything holding a secret has a
//! hand-written `Debug` that redacts it.

use std::fmt;

use imgmesh_proto::registry::v1 as proto;
use imgmesh_s3_client::{AccessKey, BucketAccess, BucketLocation, access_key_id_hint};
use secrecy::SecretString;

use crate::error::RegistryError;
use crate::source_fields;

/// Field name the secret access key is sealed under (part of the AEAD
/// associated data).
pub(crate) const SECRET_ACCESS_KEY_FIELD: &str = "secret_access_key";

/// Field name the upload secret access key is sealed under.
pub(crate) const UPLOAD_SECRET_ACCESS_KEY_FIELD: &str = "upload_secret_access_key";

/// Field name a secure URL token with id `token_id` is sealed under.
pub(crate) fn secure_token_field(token_id: &str) -> String {
    format!("secure_url_token/{token_id}")
}

/// A Source as stored: every setting plus the sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) subdomain: String,
    pub(crate) custom_domains: Vec<String>,
    pub(crate) bucket: String,
    pub(crate) region: String,
    pub(crate) endpoint: String,
    pub(crate) path_prefix: String,
    pub(crate) access_key_id: String,
    pub(crate) default_params: String,
    pub(crate) cache_ttl_seconds: u32,
    pub(crate) cache_ttl_behavior: proto::CacheTtlBehavior,
    pub(crate) cache_ttl_error_seconds: u32,
    pub(crate) image_missing: String,
    pub(crate) image_missing_append_params: bool,
    pub(crate) image_error: String,
    pub(crate) image_error_append_params: bool,
    pub(crate) secure_url_enabled: bool,
    pub(crate) enabled: bool,
    pub(crate) status: proto::SourceStatus,
    pub(crate) status_message: String,
    pub(crate) last_deployed_at: i64,
    /// Empty when the Source has no upload credentials.
    pub(crate) upload_access_key_id: String,
    /// Secure URL tokens accepted now (counted when the record is read).
    pub(crate) active_secure_tokens: u32,
    pub(crate) config_version: u64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

// === impl SourceRecord ===

impl SourceRecord {
    /// The public view: everything but the secrets, with hints of the key
    /// ids.
    pub(crate) fn to_public(&self) -> proto::Source {
        proto::Source {
            id: self.id.clone(),
            name: self.name.clone(),
            subdomain: self.subdomain.clone(),
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            path_prefix: self.path_prefix.clone(),
            access_key_id_hint: access_key_id_hint(&self.access_key_id),
            default_params: self.default_params.clone(),
            cache_ttl_seconds: self.cache_ttl_seconds,
            config_version: self.config_version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            custom_domains: self.custom_domains.clone(),
            cache_ttl_behavior: self.cache_ttl_behavior.into(),
            cache_ttl_error_seconds: self.cache_ttl_error_seconds,
            image_missing: self.image_missing.clone(),
            image_missing_append_params: self.image_missing_append_params,
            image_error: self.image_error.clone(),
            image_error_append_params: self.image_error_append_params,
            secure_url_enabled: self.secure_url_enabled,
            enabled: self.enabled,
            status: self.status.into(),
            status_message: self.status_message.clone(),
            last_deployed_at: self.last_deployed_at,
            upload_access_key_id_hint: if self.upload_access_key_id.is_empty() {
                String::new()
            } else {
                access_key_id_hint(&self.upload_access_key_id)
            },
            active_secure_tokens: self.active_secure_tokens,
        }
    }

    /// Where the Source's objects live, as the S3 clients take it.
    pub(crate) fn bucket_location(&self) -> BucketLocation {
        BucketLocation {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: (!self.endpoint.is_empty()).then(|| self.endpoint.clone()),
            path_prefix: self.path_prefix.clone(),
        }
    }

    /// Whether the Source serves requests: enabled and deployed.
    pub(crate) fn serving(&self) -> bool {
        self.enabled && self.status == proto::SourceStatus::Deployed
    }
}

/// A validated create request.
pub(crate) struct NewSource {
    pub(crate) name: String,
    pub(crate) subdomain: String,
    pub(crate) custom_domains: Vec<String>,
    pub(crate) bucket: String,
    pub(crate) region: String,
    pub(crate) endpoint: String,
    pub(crate) path_prefix: String,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: SecretString,
    pub(crate) default_params: String,
    pub(crate) cache_ttl_seconds: u32,
    pub(crate) cache_ttl_behavior: proto::CacheTtlBehavior,
    pub(crate) cache_ttl_error_seconds: u32,
    pub(crate) image_missing: String,
    pub(crate) image_missing_append_params: bool,
    pub(crate) image_error: String,
    pub(crate) image_error_append_params: bool,
    pub(crate) secure_url_enabled: bool,
    pub(crate) enabled: bool,
    pub(crate) upload: Option<AccessKey>,
}

// === impl NewSource ===

impl NewSource {
    /// Checks every field of a create request, in the request's field order.
    pub(crate) fn validate(request: &proto::CreateSourceRequest) -> Result<Self, RegistryError> {
        Ok(NewSource {
            name: source_fields::name(&request.name)?,
            subdomain: source_fields::subdomain(&request.subdomain)?,
            bucket: source_fields::bucket(&request.bucket)?,
            region: source_fields::region(&request.region)?,
            endpoint: source_fields::endpoint(&request.endpoint)?,
            path_prefix: source_fields::path_prefix(&request.path_prefix)?,
            access_key_id: source_fields::access_key_id(&request.access_key_id)?,
            secret_access_key: source_fields::secret_access_key(&request.secret_access_key)?,
            default_params: source_fields::default_params(&request.default_params)?,
            cache_ttl_seconds: source_fields::cache_ttl_seconds(request.cache_ttl_seconds)?,
            custom_domains: source_fields::custom_domains(&request.custom_domains)?,
            cache_ttl_behavior: source_fields::cache_ttl_behavior(request.cache_ttl_behavior)?,
            cache_ttl_error_seconds: source_fields::cache_ttl_error_seconds(
                request.cache_ttl_error_seconds,
            )?,
            image_missing: source_fields::image_missing(&request.image_missing)?,
            image_missing_append_params: request.image_missing_append_params,
            image_error: source_fields::image_error(&request.image_error)?,
            image_error_append_params: request.image_error_append_params,
            secure_url_enabled: request.secure_url_enabled,
            upload: upload_credentials(
                &request.upload_access_key_id,
                &request.upload_secret_access_key,
            )?,
            enabled: !request.disabled,
        })
    }
}

/// Upload credentials from a create request: both fields or neither.
fn upload_credentials(
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<Option<AccessKey>, RegistryError> {
    match (access_key_id.is_empty(), secret_access_key.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err(RegistryError::invalid(
            "upload_secret_access_key",
            "is required with upload_access_key_id",
        )),
        (true, false) => Err(RegistryError::invalid(
            "upload_access_key_id",
            "is required with upload_secret_access_key",
        )),
        (false, false) => Ok(Some(AccessKey {
            id: source_fields::upload_access_key_id(access_key_id)?,
            secret: source_fields::upload_secret_access_key(secret_access_key)?,
        })),
    }
}

impl fmt::Debug for NewSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSource")
            .field("name", &self.name)
            .field("subdomain", &self.subdomain)
            .field("custom_domains", &self.custom_domains)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_prefix", &self.path_prefix)
            .field("access_key_id", &access_key_id_hint(&self.access_key_id))
            .field("secret_access_key", &"[REDACTED]")
            .field("default_params", &self.default_params)
            .field("cache_ttl_seconds", &self.cache_ttl_seconds)
            .field("cache_ttl_behavior", &self.cache_ttl_behavior)
            .field("cache_ttl_error_seconds", &self.cache_ttl_error_seconds)
            .field("image_missing", &self.image_missing)
            .field(
                "image_missing_append_params",
                &self.image_missing_append_params,
            )
            .field("image_error", &self.image_error)
            .field("image_error_append_params", &self.image_error_append_params)
            .field("secure_url_enabled", &self.secure_url_enabled)
            .field("enabled", &self.enabled)
            .field("upload", &self.upload)
            .finish()
    }
}

/// A change of upload credentials in an update.
#[derive(Clone)]
pub(crate) enum UploadChange {
    /// Store these credentials.
    Set(AccessKey),
    /// Remove the Source's upload credentials.
    Remove,
}

impl fmt::Debug for UploadChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadChange::Set(credentials) => f.debug_tuple("Set").field(credentials).finish(),
            UploadChange::Remove => f.write_str("Remove"),
        }
    }
}

/// A validated update request: `None` leaves a field as it is.
#[derive(Default)]
pub(crate) struct SourceChanges {
    pub(crate) subdomain: Option<String>,
    pub(crate) custom_domains: Option<Vec<String>>,
    pub(crate) bucket: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) path_prefix: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<SecretString>,
    pub(crate) default_params: Option<String>,
    pub(crate) cache_ttl_seconds: Option<u32>,
    pub(crate) cache_ttl_behavior: Option<proto::CacheTtlBehavior>,
    pub(crate) cache_ttl_error_seconds: Option<u32>,
    pub(crate) image_missing: Option<String>,
    pub(crate) image_missing_append_params: Option<bool>,
    pub(crate) image_error: Option<String>,
    pub(crate) image_error_append_params: Option<bool>,
    pub(crate) secure_url_enabled: Option<bool>,
    pub(crate) enabled: Option<bool>,
    pub(crate) upload: Option<UploadChange>,
}

// === impl SourceChanges ===

impl SourceChanges {
    /// Checks every field that is present in an update request.
    pub(crate) fn validate(request: &proto::UpdateSourceRequest) -> Result<Self, RegistryError> {
        Ok(SourceChanges {
            subdomain: request
                .subdomain
                .as_deref()
                .map(source_fields::subdomain)
                .transpose()?,
            custom_domains: request
                .custom_domains
                .as_ref()
                .map(|list| source_fields::custom_domains(&list.domains))
                .transpose()?,
            bucket: request
                .bucket
                .as_deref()
                .map(source_fields::bucket)
                .transpose()?,
            region: request
                .region
                .as_deref()
                .map(source_fields::region)
                .transpose()?,
            endpoint: request
                .endpoint
                .as_deref()
                .map(source_fields::endpoint)
                .transpose()?,
            path_prefix: request
                .path_prefix
                .as_deref()
                .map(source_fields::path_prefix)
                .transpose()?,
            access_key_id: request
                .access_key_id
                .as_deref()
                .map(source_fields::access_key_id)
                .transpose()?,
            secret_access_key: request
                .secret_access_key
                .as_deref()
                .map(source_fields::secret_access_key)
                .transpose()?,
            default_params: request
                .default_params
                .as_deref()
                .map(source_fields::default_params)
                .transpose()?,
            cache_ttl_seconds: request
                .cache_ttl_seconds
                .map(source_fields::cache_ttl_seconds)
                .transpose()?,
            cache_ttl_behavior: request
                .cache_ttl_behavior
                .map(source_fields::cache_ttl_behavior)
                .transpose()?,
            cache_ttl_error_seconds: request
                .cache_ttl_error_seconds
                .map(source_fields::cache_ttl_error_seconds)
                .transpose()?,
            image_missing: request
                .image_missing
                .as_deref()
                .map(source_fields::image_missing)
                .transpose()?,
            image_missing_append_params: request.image_missing_append_params,
            image_error: request
                .image_error
                .as_deref()
                .map(source_fields::image_error)
                .transpose()?,
            image_error_append_params: request.image_error_append_params,
            secure_url_enabled: request.secure_url_enabled,
            enabled: request.enabled,
            upload: upload_change(
                request.upload_access_key_id.as_deref(),
                request.upload_secret_access_key.as_deref(),
            )?,
        })
    }

    /// Whether the change touches what a deploy verifies (credentials,
    /// bucket, region, endpoint or prefix) compared with `current`, so the
    /// Source needs a new deploy.
    pub(crate) fn needs_redeploy(&self, current: &SourceRecord) -> bool {
        fn differs(change: &Option<String>, current: &str) -> bool {
            change.as_deref().is_some_and(|value| value != current)
        }
        differs(&self.bucket, &current.bucket)
            || differs(&self.region, &current.region)
            || differs(&self.endpoint, &current.endpoint)
            || differs(&self.path_prefix, &current.path_prefix)
            || differs(&self.access_key_id, &current.access_key_id)
            || self.secret_access_key.is_some()
    }

    /// Applies every present change except the secrets (which must be
    /// sealed first) to `record`.
    pub(crate) fn apply_settings(&self, record: &mut SourceRecord) {
        fn set<T: Clone>(target: &mut T, change: &Option<T>) {
            if let Some(value) = change {
                *target = value.clone();
            }
        }
        set(&mut record.subdomain, &self.subdomain);
        set(&mut record.custom_domains, &self.custom_domains);
        set(&mut record.bucket, &self.bucket);
        set(&mut record.region, &self.region);
        set(&mut record.endpoint, &self.endpoint);
        set(&mut record.path_prefix, &self.path_prefix);
        set(&mut record.access_key_id, &self.access_key_id);
        set(&mut record.default_params, &self.default_params);
        set(&mut record.cache_ttl_seconds, &self.cache_ttl_seconds);
        set(&mut record.cache_ttl_behavior, &self.cache_ttl_behavior);
        set(
            &mut record.cache_ttl_error_seconds,
            &self.cache_ttl_error_seconds,
        );
        set(&mut record.image_missing, &self.image_missing);
        set(
            &mut record.image_missing_append_params,
            &self.image_missing_append_params,
        );
        set(&mut record.image_error, &self.image_error);
        set(
            &mut record.image_error_append_params,
            &self.image_error_append_params,
        );
        set(&mut record.secure_url_enabled, &self.secure_url_enabled);
        set(&mut record.enabled, &self.enabled);
        match &self.upload {
            Some(UploadChange::Set(credentials)) => {
                record.upload_access_key_id = credentials.id.clone();
            }
            Some(UploadChange::Remove) => record.upload_access_key_id.clear(),
            None => {}
        }
    }
}

/// Upload credentials from an update request: an empty key id with no
/// secret removes them; otherwise both are required.
fn upload_change(
    access_key_id: Option<&str>,
    secret_access_key: Option<&str>,
) -> Result<Option<UploadChange>, RegistryError> {
    match (access_key_id, secret_access_key) {
        (None, None) => Ok(None),
        (Some(""), None | Some("")) => Ok(Some(UploadChange::Remove)),
        (Some(id), Some(secret)) => Ok(upload_credentials(id, secret)?.map(UploadChange::Set)),
        (None, Some(_)) => Err(RegistryError::invalid(
            "upload_access_key_id",
            "is required with upload_secret_access_key",
        )),
        (Some(_), None) => Err(RegistryError::invalid(
            "upload_secret_access_key",
            "is required with upload_access_key_id",
        )),
    }
}

impl fmt::Debug for SourceChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceChanges")
            .field("subdomain", &self.subdomain)
            .field("custom_domains", &self.custom_domains)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_prefix", &self.path_prefix)
            .field(
                "access_key_id",
                &self.access_key_id.as_deref().map(access_key_id_hint),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("default_params", &self.default_params)
            .field("cache_ttl_seconds", &self.cache_ttl_seconds)
            .field("cache_ttl_behavior", &self.cache_ttl_behavior)
            .field("cache_ttl_error_seconds", &self.cache_ttl_error_seconds)
            .field("image_missing", &self.image_missing)
            .field(
                "image_missing_append_params",
                &self.image_missing_append_params,
            )
            .field("image_error", &self.image_error)
            .field("image_error_append_params", &self.image_error_append_params)
            .field("secure_url_enabled", &self.secure_url_enabled)
            .field("enabled", &self.enabled)
            .field("upload", &self.upload)
            .finish()
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

    fn create_request() -> proto::CreateSourceRequest {
        proto::CreateSourceRequest {
            name: "demo".into(),
            subdomain: "demo".into(),
            bucket: "images".into(),
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9000/".into(),
            path_prefix: "/photos/".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "very-secret-value".into(),
            default_params: "?auto=format".into(),
            cache_ttl_seconds: 0,
            ..Default::default()
        }
    }

    /// Validation normalises fields and applies the TTL default.
    #[test]
    fn new_source_is_normalised() {
        let new = NewSource::validate(&create_request()).unwrap();
        assert_eq!(new.endpoint, "http://127.0.0.1:9000");
        assert_eq!(new.path_prefix, "photos");
        assert_eq!(new.default_params, "auto=format");
        assert_eq!(
            new.cache_ttl_seconds,
            source_fields::DEFAULT_CACHE_TTL_SECONDS
        );
        assert_eq!(new.secret_access_key.expose_secret(), "very-secret-value");
    }

    /// A create request with a bad field is refused naming that field.
    #[test]
    fn new_source_names_the_bad_field() {
        let request = proto::CreateSourceRequest {
            bucket: "Bad_Bucket".into(),
            ..create_request()
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
        let empty = SourceChanges::validate(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(empty.subdomain.is_none() && empty.secret_access_key.is_none());

        let error = SourceChanges::validate(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            region: Some(String::new()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(
            error,
            RegistryError::InvalidField {
                field: "region",
                ..
            }
        ));

        let cleared = SourceChanges::validate(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            endpoint: Some(String::new()),
            cache_ttl_seconds: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cleared.endpoint.as_deref(), Some(""));
        assert_eq!(
            cleared.cache_ttl_seconds,
            Some(source_fields::DEFAULT_CACHE_TTL_SECONDS)
        );
    }

    /// Debug of every secret-holding type redacts the secret.
    #[test]
    fn debug_redacts_secrets() {
        let new = NewSource::validate(&create_request()).unwrap();
        let changes = SourceChanges {
            secret_access_key: Some(SecretString::from("very-secret-value")),
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
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
        for shown in [
            format!("{new:?}"),
            format!("{changes:?}"),
            format!("{access:?}"),
        ] {
            assert!(!shown.contains("very-secret-value"), "{shown}");
            assert!(shown.contains("[REDACTED]"), "{shown}");
            assert!(shown.contains("…MPLE"), "{shown}");
        }
    }

    /// Upload credentials come in pairs: one without the other names the
    /// missing field; an empty key id alone removes them on update.
    #[test]
    fn upload_credentials_come_in_pairs() {
        let with = |id: &str, secret: &str| proto::CreateSourceRequest {
            upload_access_key_id: id.into(),
            upload_secret_access_key: secret.into(),
            ..create_request()
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
            SourceChanges::validate(&proto::UpdateSourceRequest {
                id_or_name: "demo".into(),
                upload_access_key_id: id.map(str::to_owned),
                upload_secret_access_key: secret.map(str::to_owned),
                ..Default::default()
            })
            .map(|changes| changes.upload)
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
        let record = SourceRecord {
            id: "src_000000000001".into(),
            name: new.name,
            subdomain: new.subdomain,
            custom_domains: Vec::new(),
            bucket: new.bucket,
            region: new.region,
            endpoint: new.endpoint,
            path_prefix: new.path_prefix,
            access_key_id: new.access_key_id,
            default_params: new.default_params,
            cache_ttl_seconds: new.cache_ttl_seconds,
            cache_ttl_behavior: new.cache_ttl_behavior,
            cache_ttl_error_seconds: new.cache_ttl_error_seconds,
            image_missing: String::new(),
            image_missing_append_params: false,
            image_error: String::new(),
            image_error_append_params: false,
            secure_url_enabled: false,
            enabled: true,
            status: proto::SourceStatus::Deployed,
            status_message: String::new(),
            last_deployed_at: 1,
            upload_access_key_id: String::new(),
            active_secure_tokens: 0,
            config_version: 1,
            created_at: 1,
            updated_at: 1,
        };
        let redeploys = |request: proto::UpdateSourceRequest| {
            SourceChanges::validate(&request)
                .unwrap()
                .needs_redeploy(&record)
        };
        let base = || proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            ..Default::default()
        };
        for request in [
            proto::UpdateSourceRequest {
                bucket: Some("other".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                region: Some("eu-west-1".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                endpoint: Some(String::new()),
                ..base()
            },
            proto::UpdateSourceRequest {
                path_prefix: Some("x".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                access_key_id: Some("AKIANEW".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                secret_access_key: Some("new".into()),
                ..base()
            },
        ] {
            assert!(redeploys(request.clone()), "{request:?}");
        }
        for request in [
            base(),
            proto::UpdateSourceRequest {
                bucket: Some("images".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                path_prefix: Some("/photos/".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                default_params: Some("w=1".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                subdomain: Some("other".into()),
                ..base()
            },
            proto::UpdateSourceRequest {
                enabled: Some(false),
                ..base()
            },
            proto::UpdateSourceRequest {
                secure_url_enabled: Some(true),
                ..base()
            },
            proto::UpdateSourceRequest {
                upload_access_key_id: Some("AKIAUP".into()),
                upload_secret_access_key: Some("up".into()),
                ..base()
            },
        ] {
            assert!(!redeploys(request.clone()), "{request:?}");
        }
    }
}
