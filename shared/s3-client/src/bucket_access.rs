//! What every client of a Source's bucket is built from: where the bucket
//! is ([`BucketLocation`]) and the key that signs for it ([`AccessKey`]).
//!
//! The registry stores and verifies these, the fetcher reads with them and
//! [`BucketClient`](crate::BucketClient) is configured from them, all with
//! the same two types, so the secret and its redaction are written once:
//! [`AccessKey`]'s `Debug` shows only a hint of the key id and never the
//! secret.

use std::fmt;

use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;

/// Where a Source's objects live: a bucket, its region, the endpoint of an
/// S3-compatible store, and the key prefix they sit under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketLocation {
    /// S3 bucket name.
    pub bucket: String,
    /// S3 region (also the signing region).
    pub region: String,
    /// Endpoint URL of an S3-compatible store; `None` for AWS S3.
    pub endpoint: Option<String>,
    /// Normalised key prefix every object is read and written under: empty,
    /// or segments without leading or trailing slash. Clients do not apply
    /// it; whoever builds an object key does.
    pub path_prefix: String,
}

/// An access key: its id and its secret. `Debug` shows `…` and the id's
/// last four characters, and `[REDACTED]` for the secret.
#[derive(Clone)]
pub struct AccessKey {
    /// Access key id.
    pub id: String,
    /// Secret access key.
    pub secret: SecretString,
}

// === impl AccessKey ===

impl AccessKey {
    /// A key from its id and secret.
    pub fn new(id: impl Into<String>, secret: impl Into<SecretString>) -> AccessKey {
        AccessKey {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// A key whose secret arrives as a plain `String`, such as a decoded
    /// protobuf field: the secret is copied into the key and the `String`'s
    /// whole buffer (spare capacity included) is wiped, so no copy outlives
    /// this call. Turning the `String` into a [`SecretString`] directly
    /// would shrink it first, which may move it and free the old buffer
    /// without wiping it.
    pub fn from_plain_secret(id: impl Into<String>, secret: String) -> AccessKey {
        let secret = Zeroizing::new(secret);
        AccessKey {
            id: id.into(),
            secret: SecretString::from(secret.as_str()),
        }
    }

    /// The hint of the id that may be shown: see [`access_key_id_hint`].
    pub fn id_hint(&self) -> String {
        access_key_id_hint(&self.id)
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id_hint())
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// `"…"` followed by the last four characters of an access key id (all of
/// it when shorter): what logs and public views show of a key id.
pub fn access_key_id_hint(access_key_id: &str) -> String {
    let chars: Vec<char> = access_key_id.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// A bucket and the key to sign for it: what a
/// [`BucketClient`](crate::BucketClient) is built from. Its `Debug` shows
/// no secret (see [`AccessKey`]).
#[derive(Debug, Clone)]
pub struct BucketAccess {
    /// Where the bucket is.
    pub location: BucketLocation,
    /// The key requests are signed with.
    pub key: AccessKey,
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    /// The hint is "…" plus the last four characters, or fewer if shorter.
    #[test]
    fn hint_shows_last_four_characters() {
        assert_eq!(access_key_id_hint("AKIAIOSFODNN7EXAMPLE"), "…MPLE");
        assert_eq!(access_key_id_hint("AK"), "…AK");
        assert_eq!(access_key_id_hint(""), "…");
        assert_eq!(access_key_id_hint("ÄÖÜßé"), "…ÖÜßé");
    }

    /// A key made from a plain `String` holds the same secret.
    #[test]
    fn plain_secret_is_kept() {
        let mut secret = String::with_capacity(64);
        secret.push_str("canary-secret-8c1f");
        let key = AccessKey::from_plain_secret("AKIAIOSFODNN7EXAMPLE", secret);
        assert_eq!(key.secret.expose_secret(), "canary-secret-8c1f");
        assert_eq!(key.id, "AKIAIOSFODNN7EXAMPLE");
    }

    /// Debug of a key, and of an access holding one, shows the id's hint
    /// and never the secret or the whole id.
    #[test]
    fn debug_redacts_the_key() {
        let key = AccessKey::new("AKIAIOSFODNN7EXAMPLE", "canary-secret-8c1f");
        assert_eq!(key.secret.expose_secret(), "canary-secret-8c1f");
        let access = BucketAccess {
            location: BucketLocation {
                bucket: "images".into(),
                region: "us-east-1".into(),
                endpoint: None,
                path_prefix: String::new(),
            },
            key,
        };
        for shown in [format!("{:?}", access.key), format!("{access:?}")] {
            assert!(!shown.contains("canary-secret-8c1f"), "{shown}");
            assert!(!shown.contains("AKIAIOSFODNN7EXAMPLE"), "{shown}");
            assert!(
                shown.contains("…MPLE") && shown.contains("[REDACTED]"),
                "{shown}"
            );
        }
    }
}
