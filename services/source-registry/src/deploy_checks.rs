//! What a deploy verifies, with the Source's deployment (read) credentials
//! only: the three permissions imgix needs, in the order imgix checks them.
//!
//! 1. `GetBucketLocation`: the bucket exists and is in the Source's region.
//! 2. `ListObjectsV2` with the Source's prefix and `max-keys=1`
//!    (`s3:ListBucket`).
//! 3. `GetObject` of the first byte of the key found (`s3:GetObject`); with
//!    no key under the prefix the deploy succeeds with a note saying so.
//!
//! The outcome's message names the permission or setting at fault. It is
//! built from fixed phrases, the Source's own settings and S3 error codes,
//! never from the SDK's error text, so it carries no secret and no request
//! detail; the SDK's description goes to the operator's log.

use aws_sdk_s3::error::SdkError;
use imgmesh_s3_client::BucketClient;

use crate::s3_refusal::{Refusal, refusal};

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeployOutcome {
    /// Whether every check passed.
    pub(crate) deployed: bool,
    /// Why it failed, or notes on a success; never a secret.
    pub(crate) message: String,
}

// === impl DeployOutcome ===

impl DeployOutcome {
    fn failed(message: impl Into<String>) -> DeployOutcome {
        DeployOutcome {
            deployed: false,
            message: message.into(),
        }
    }
}

/// The S3 operations a deploy makes, with the permission each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    BucketLocation,
    ListBucket,
    GetObject,
}

// === impl Check ===

impl Check {
    fn permission(self) -> &'static str {
        match self {
            Check::BucketLocation => "s3:GetBucketLocation",
            Check::ListBucket => "s3:ListBucket",
            Check::GetObject => "s3:GetObject",
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Check::BucketLocation => "GetBucketLocation",
            Check::ListBucket => "ListObjectsV2",
            Check::GetObject => "GetObject",
        }
    }
}

/// Runs every check against `client`'s bucket for a Source in `region`
/// with `path_prefix`; `custom_endpoint` tells an S3-compatible store.
pub(crate) async fn verify(
    client: &BucketClient,
    region: &str,
    path_prefix: &str,
    custom_endpoint: bool,
    source_id: &str,
) -> DeployOutcome {
    let bucket = client.bucket().to_owned();
    let mut notes = Vec::new();

    let location = client
        .send(|s3| s3.get_bucket_location().bucket(&bucket).send())
        .await;
    match location {
        Ok(output) => {
            let reported = output
                .location_constraint()
                .map(|constraint| constraint.as_str().to_owned())
                .unwrap_or_default();
            match bucket_region(&reported, custom_endpoint) {
                Some(actual) if actual != region => {
                    return DeployOutcome::failed(format!(
                        "bucket is in {actual}, the Source says {region}"
                    ));
                }
                Some(_) => {}
                None => notes.push("the endpoint reports no bucket region; region not checked"),
            }
        }
        Err(error) => match refusal(Check::BucketLocation.operation(), &error, source_id) {
            Refusal::NotImplemented => {
                notes.push("the endpoint does not implement GetBucketLocation; region not checked");
            }
            other => return failure(Check::BucketLocation, other, region),
        },
    }

    let list_prefix = if path_prefix.is_empty() {
        String::new()
    } else {
        format!("{path_prefix}/")
    };
    let listed = client
        .send(|s3| {
            let request = s3.list_objects_v2().bucket(&bucket).max_keys(1);
            let request = if list_prefix.is_empty() {
                request
            } else {
                request.prefix(&list_prefix)
            };
            request.send()
        })
        .await;
    let key = match listed {
        Ok(output) => output
            .contents()
            .iter()
            .find_map(|object| object.key().map(str::to_owned)),
        Err(error) => {
            let refusal = refusal(Check::ListBucket.operation(), &error, source_id);
            return failure(Check::ListBucket, refusal, region);
        }
    };

    let Some(key) = key else {
        let note = if list_prefix.is_empty() {
            "bucket has no objects: s3:GetObject not checked".to_owned()
        } else {
            format!(
                "bucket has no objects under prefix \"{list_prefix}\": s3:GetObject not checked"
            )
        };
        return success(notes, Some(note));
    };
    let object = client
        .send(|s3| {
            s3.get_object()
                .bucket(&bucket)
                .key(&key)
                .range("bytes=0-0")
                .send()
        })
        .await;
    match object {
        Ok(_) => success(notes, None),
        // An empty object has no first byte; reading it was allowed.
        Err(SdkError::ServiceError(service)) if service.raw().status().as_u16() == 416 => {
            success(notes, None)
        }
        Err(error) => {
            let refusal = refusal(Check::GetObject.operation(), &error, source_id);
            failure(Check::GetObject, refusal, region)
        }
    }
}

/// The bucket's region from a `LocationConstraint`: empty means us-east-1
/// on AWS (and "EU" eu-west-1), but "no region reported" on an
/// S3-compatible store, which gives `None`.
fn bucket_region(reported: &str, custom_endpoint: bool) -> Option<String> {
    match reported {
        "" if custom_endpoint => None,
        "" => Some("us-east-1".to_owned()),
        "EU" => Some("eu-west-1".to_owned()),
        other => Some(other.to_owned()),
    }
}

fn success(notes: Vec<&str>, extra: Option<String>) -> DeployOutcome {
    let mut message: Vec<String> = notes.into_iter().map(str::to_owned).collect();
    message.extend(extra);
    DeployOutcome {
        deployed: true,
        message: message.join("; "),
    }
}

/// The failed outcome of `check` refused as `refusal`.
fn failure(check: Check, refusal: Refusal, region: &str) -> DeployOutcome {
    DeployOutcome::failed(match refusal {
        Refusal::Denied => format!("missing {}", check.permission()),
        Refusal::CredentialsRejected => "the credentials were rejected".to_owned(),
        Refusal::NoSuchBucket => "bucket not found".to_owned(),
        Refusal::OtherRegion(Some(actual)) => {
            format!("bucket is in {actual}, the Source says {region}")
        }
        Refusal::OtherRegion(None) => {
            format!("bucket is not in {region}, the region the Source says")
        }
        Refusal::NotImplemented => {
            format!("the endpoint does not implement {}", check.operation())
        }
        Refusal::Unreachable => "could not connect to the s3 endpoint".to_owned(),
        Refusal::Timeout => "the s3 endpoint did not answer in time".to_owned(),
        Refusal::Unexpected(answer) => {
            format!("unexpected answer to {}: {answer}", check.operation())
        }
    })
}

#[cfg(test)]
mod tests {
    use imgmesh_s3_client::{AccessKey, BucketAccess, BucketLocation, ClientTuning};

    use super::*;
    use imgmesh_test_support::s3::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server};
    use imgmesh_test_support::s3_policy::{Policy, PolicyFront, S3Operation};

    fn client(endpoint: &str, bucket: &str, region: &str, secret: &str) -> BucketClient {
        let access = BucketAccess {
            location: BucketLocation {
                bucket: bucket.to_owned(),
                region: region.to_owned(),
                endpoint: Some(endpoint.to_owned()),
                path_prefix: String::new(),
            },
            key: AccessKey::new(S3_ACCESS_KEY, secret),
        };
        let tuning = ClientTuning {
            max_attempts: 1,
            ..ClientTuning::default()
        };
        BucketClient::with_tuning(&access, tuning)
    }

    async fn verify_at(endpoint: &str, bucket: &str, prefix: &str, secret: &str) -> DeployOutcome {
        let client = client(endpoint, bucket, "us-east-1", secret);
        verify(&client, "us-east-1", prefix, true, "src_test").await
    }

    /// A readable bucket with an object under the prefix deploys; s3s-fs
    /// reports no region, which is noted rather than failed.
    #[tokio::test]
    async fn readable_bucket_deploys() {
        let s3 = S3Server::start(&["images"]).await;
        s3.put_object("images", "photos/cat.jpg", b"jpeg");
        let outcome = verify_at(&s3.endpoint, "images", "photos", S3_SECRET_KEY).await;
        assert_eq!(
            outcome,
            DeployOutcome {
                deployed: true,
                message: "the endpoint reports no bucket region; region not checked".into(),
            }
        );
        // An empty object has no first byte to read; still a success.
        let s3 = S3Server::start(&["images"]).await;
        s3.put_object("images", "empty.jpg", b"");
        assert!(
            verify_at(&s3.endpoint, "images", "", S3_SECRET_KEY)
                .await
                .deployed
        );
    }

    /// A wrong secret or an unknown key id: "the credentials were rejected",
    /// and the message never holds the secret.
    #[tokio::test]
    async fn rejected_credentials_fail() {
        let s3 = S3Server::start(&["images"]).await;
        let outcome = verify_at(&s3.endpoint, "images", "", "wrong-secret-canary").await;
        assert_eq!(
            outcome,
            DeployOutcome::failed("the credentials were rejected")
        );
        let access = BucketAccess {
            location: BucketLocation {
                bucket: "images".into(),
                region: "us-east-1".into(),
                endpoint: Some(s3.endpoint.clone()),
                path_prefix: String::new(),
            },
            key: AccessKey::new("AKIAUNKNOWN", S3_SECRET_KEY),
        };
        let client = BucketClient::with_tuning(
            &access,
            ClientTuning {
                max_attempts: 1,
                ..Default::default()
            },
        );
        let outcome = verify(&client, "us-east-1", "", true, "src_test").await;
        assert_eq!(outcome.message, "the credentials were rejected");
    }

    /// A bucket that does not exist: "bucket not found".
    #[tokio::test]
    async fn missing_bucket_fails() {
        let s3 = S3Server::start(&["images"]).await;
        let outcome = verify_at(&s3.endpoint, "no-such-bucket", "", S3_SECRET_KEY).await;
        assert_eq!(outcome, DeployOutcome::failed("bucket not found"));
    }

    /// Nothing under the prefix: deployed, with a note naming the prefix.
    #[tokio::test]
    async fn empty_prefix_deploys_with_a_note() {
        let s3 = S3Server::start(&["images"]).await;
        s3.put_object("images", "elsewhere/cat.jpg", b"jpeg");
        let outcome = verify_at(&s3.endpoint, "images", "photos/2024", S3_SECRET_KEY).await;
        assert!(outcome.deployed);
        assert!(
            outcome.message.ends_with(
                "bucket has no objects under prefix \"photos/2024/\": s3:GetObject not checked"
            ),
            "{}",
            outcome.message
        );
        let s3 = S3Server::start(&["images"]).await;
        let outcome = verify_at(&s3.endpoint, "images", "", S3_SECRET_KEY).await;
        assert!(outcome.deployed);
        assert!(
            outcome
                .message
                .ends_with("bucket has no objects: s3:GetObject not checked")
        );
    }

    /// Each missing permission is named.
    #[tokio::test]
    async fn missing_permissions_are_named() {
        for (denied, message) in [
            (
                S3Operation::GetBucketLocation,
                "missing s3:GetBucketLocation",
            ),
            (S3Operation::ListObjectsV2, "missing s3:ListBucket"),
            (S3Operation::GetObject, "missing s3:GetObject"),
        ] {
            let front = PolicyFront::start(Policy {
                denied: Some(denied),
                location: "",
                listed_key: Some("photos/cat.jpg"),
            })
            .await;
            let outcome = verify_at(&front.endpoint, "images", "photos", S3_SECRET_KEY).await;
            assert_eq!(outcome, DeployOutcome::failed(message), "{denied:?}");
        }
        let front = PolicyFront::start(Policy {
            denied: None,
            location: "us-east-1",
            listed_key: Some("photos/cat.jpg"),
        })
        .await;
        let outcome = verify_at(&front.endpoint, "images", "photos", S3_SECRET_KEY).await;
        assert_eq!(outcome, success(Vec::new(), None));
        assert_eq!(front.requests(), 3);
    }

    /// A bucket in another region fails naming both regions; AWS's legacy
    /// "EU" is eu-west-1.
    #[tokio::test]
    async fn region_mismatch_fails() {
        for (location, actual) in [("eu-west-1", "eu-west-1"), ("EU", "eu-west-1")] {
            let front = PolicyFront::start(Policy {
                denied: None,
                location,
                listed_key: None,
            })
            .await;
            let outcome = verify_at(&front.endpoint, "images", "", S3_SECRET_KEY).await;
            assert_eq!(
                outcome,
                DeployOutcome::failed(format!("bucket is in {actual}, the Source says us-east-1"))
            );
            // Nothing past the region check was tried.
            assert_eq!(front.requests(), 1);
        }
    }

    /// An endpoint nobody listens on: "could not connect to the s3 endpoint".
    #[tokio::test]
    async fn unreachable_endpoint_fails() {
        let port = imgmesh_test_support::unused_port();
        let outcome = verify_at(&format!("http://127.0.0.1:{port}"), "images", "", "s").await;
        assert_eq!(
            outcome,
            DeployOutcome::failed("could not connect to the s3 endpoint")
        );
    }

    /// An empty location constraint is us-east-1 on AWS, unknown elsewhere.
    #[test]
    fn bucket_region_rules() {
        assert_eq!(bucket_region("", false).as_deref(), Some("us-east-1"));
        assert_eq!(bucket_region("", true), None);
        assert_eq!(bucket_region("EU", false).as_deref(), Some("eu-west-1"));
        assert_eq!(
            bucket_region("ap-south-1", true).as_deref(),
            Some("ap-south-1")
        );
    }

    /// Refusals become messages naming the permission or setting at fault.
    #[test]
    fn refusals_become_messages() {
        assert_eq!(
            failure(Check::ListBucket, Refusal::OtherRegion(None), "us-east-1").message,
            "bucket is not in us-east-1, the region the Source says"
        );
        assert_eq!(
            failure(Check::GetObject, Refusal::Timeout, "us-east-1").message,
            "the s3 endpoint did not answer in time"
        );
        assert_eq!(
            failure(Check::ListBucket, Refusal::Denied, "us-east-1").message,
            "missing s3:ListBucket"
        );
        assert_eq!(
            failure(
                Check::BucketLocation,
                Refusal::Unexpected("InternalError".into()),
                "us-east-1"
            )
            .message,
            "unexpected answer to GetBucketLocation: InternalError"
        );
    }
}
