//! The access-key group: the read key a Source's bucket is read with, and
//! the optional upload key, both as the one [`AccessKey`] the S3 clients
//! take (its `Debug` redacts the secret). Secrets are sealed apart from the
//! `sources` row; the row keeps only the key ids.

use imgmesh_proto::registry::v1 as proto;
use imgmesh_s3_client::{AccessKey, access_key_id_hint};
use secrecy::SecretString;

use crate::error::RegistryError;
use crate::source::update_mask::UpdateMask;

const MAX_ACCESS_KEY_ID_LEN: usize = 128;
const MAX_SECRET_ACCESS_KEY_LEN: usize = 256;

/// The update-mask paths of the read key.
pub(crate) const READ_MASK_PATHS: &[&str] = &["access_key", "access_key.id", "access_key.secret"];

/// The update-mask paths of the upload key.
pub(crate) const UPLOAD_MASK_PATHS: &[&str] = &[
    "upload_access_key",
    "upload_access_key.id",
    "upload_access_key.secret",
];

/// Checks a create request's read key.
pub(crate) fn validate_read(key: &proto::AccessKey) -> Result<AccessKey, RegistryError> {
    Ok(AccessKey {
        id: access_key_id(&key.id)?,
        secret: secret_access_key(&key.secret)?,
    })
}

/// Checks a create request's upload key: both fields or neither.
pub(crate) fn validate_upload(key: &proto::AccessKey) -> Result<Option<AccessKey>, RegistryError> {
    upload_pair(&key.id, &key.secret)
}

/// The public form of the key `id` names: a hint of the id, never the
/// secret (a function: the key type lives in the S3 client).
pub(crate) fn to_public(id: &str) -> proto::AccessKeyHint {
    proto::AccessKeyHint {
        id_hint: access_key_id_hint(id),
    }
}

/// The public form of an upload key id: none when it is empty.
pub(crate) fn upload_to_public(id: &str) -> Option<proto::AccessKeyHint> {
    (!id.is_empty()).then(|| to_public(id))
}

/// An upload key from its id and secret: both or neither.
fn upload_pair(id: &str, secret: &str) -> Result<Option<AccessKey>, RegistryError> {
    match (id.is_empty(), secret.is_empty()) {
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
            id: upload_access_key_id(id)?,
            secret: upload_secret_access_key(secret)?,
        })),
    }
}

/// A change of the read key in an update: the id, the secret, or both.
#[derive(Debug, Default)]
pub(crate) struct ReadKeyChange {
    /// New access key id.
    pub(crate) id: Option<String>,
    /// New secret, to be sealed.
    pub(crate) secret: Option<SecretString>,
}

// === impl ReadKeyChange ===

impl ReadKeyChange {
    /// Checks the read-key fields `mask` names.
    pub(crate) fn validate(
        key: &proto::AccessKey,
        mask: &UpdateMask,
    ) -> Result<ReadKeyChange, RegistryError> {
        Ok(ReadKeyChange {
            id: mask
                .covers("access_key.id")
                .then(|| access_key_id(&key.id))
                .transpose()?,
            secret: mask
                .covers("access_key.secret")
                .then(|| secret_access_key(&key.secret))
                .transpose()?,
        })
    }

    /// Whether the change replaces the key `current_id` names (a new secret
    /// always does).
    pub(crate) fn differs_from(&self, current_id: &str) -> bool {
        self.secret.is_some() || self.id.as_deref().is_some_and(|id| id != current_id)
    }
}

/// A change of upload key in an update.
#[derive(Debug, Clone)]
pub(crate) enum UploadChange {
    /// Store this key.
    Set(AccessKey),
    /// Remove the Source's upload key.
    Remove,
}

// === impl UploadChange ===

impl UploadChange {
    /// The upload key change `mask` names: an empty key id with no (or an
    /// empty) secret removes the key; otherwise both are required.
    pub(crate) fn validate(
        key: &proto::AccessKey,
        mask: &UpdateMask,
    ) -> Result<Option<UploadChange>, RegistryError> {
        let id = mask
            .covers("upload_access_key.id")
            .then_some(key.id.as_str());
        let secret = mask
            .covers("upload_access_key.secret")
            .then_some(key.secret.as_str());
        match (id, secret) {
            (None, None) => Ok(None),
            (Some(""), None | Some("")) => Ok(Some(UploadChange::Remove)),
            (Some(id), Some(secret)) => Ok(upload_pair(id, secret)?.map(UploadChange::Set)),
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
}

// === field rules ===

/// `access_key_id`: 1 to 128 printable ASCII characters without spaces.
fn access_key_id(value: &str) -> Result<String, RegistryError> {
    key_id("access_key_id", value)
}

/// `upload_access_key_id`: the same rule as `access_key_id`.
fn upload_access_key_id(value: &str) -> Result<String, RegistryError> {
    key_id("upload_access_key_id", value)
}

fn key_id(field: &'static str, value: &str) -> Result<String, RegistryError> {
    if value.is_empty()
        || value.len() > MAX_ACCESS_KEY_ID_LEN
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(RegistryError::invalid(
            field,
            "must be 1 to 128 printable ascii characters without spaces",
        ));
    }
    Ok(value.to_owned())
}

/// `secret_access_key`: 1 to 256 characters, no control characters.
fn secret_access_key(value: &str) -> Result<SecretString, RegistryError> {
    secret("secret_access_key", value)
}

/// `upload_secret_access_key`: the same rule as `secret_access_key`.
fn upload_secret_access_key(value: &str) -> Result<SecretString, RegistryError> {
    secret("upload_secret_access_key", value)
}

fn secret(field: &'static str, value: &str) -> Result<SecretString, RegistryError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_SECRET_ACCESS_KEY_LEN || value.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            field,
            "must be 1 to 256 characters without control characters",
        ));
    }
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::source_fields::tests::table;

    /// Access key ids are 1..128 printable ASCII without spaces.
    #[test]
    fn access_key_id_rules() {
        table(
            "access_key_id",
            access_key_id,
            &["AK", "AKIAIOSFODNN7EXAMPLE", &"K".repeat(128), "a+b/c="],
            &["", "AK IA", "AKé", "AK\t", &"K".repeat(129)],
        );
    }

    /// Secret keys are 1..256 characters without control characters, and the
    /// error never repeats the secret.
    #[test]
    fn secret_access_key_rules() {
        for good in [
            "S",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &"s".repeat(256),
            "ü ü",
        ] {
            assert_eq!(secret_access_key(good).unwrap().expose_secret(), good);
        }
        for bad in ["", &"s".repeat(257), "line\nbreak-secret"] {
            let error = secret_access_key(bad).unwrap_err();
            assert!(matches!(
                error,
                RegistryError::InvalidField {
                    field: "secret_access_key",
                    ..
                }
            ));
            if !bad.is_empty() {
                assert!(!error.to_string().contains(bad));
            }
        }
    }

    /// Upload key ids and secrets follow the read credentials' rules under
    /// their own field names.
    #[test]
    fn upload_credential_rules() {
        table(
            "upload_access_key_id",
            upload_access_key_id,
            &["AKIAUPLOAD"],
            &["", "A B", &"K".repeat(129)],
        );
        assert!(upload_secret_access_key("s").is_ok());
        assert!(matches!(
            upload_secret_access_key("a\tb"),
            Err(RegistryError::InvalidField {
                field: "upload_secret_access_key",
                ..
            })
        ));
    }
}
