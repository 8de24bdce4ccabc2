//! A Source's read access as the registry hands it out (bucket location and
//! decrypted credentials), and the call that asks for it.
//!
//! The secret access key is copied straight into an [`AccessKey`], whose
//! `Debug` redacts it, so it cannot reach a log line or a span by accident,
//! and the decoded answer's copy is wiped at once
//! ([`AccessKey::from_plain_secret`]).

use std::time::Duration;

use imgmesh_errors::ErrorCode;
use imgmesh_proto::registry::v1::source_credentials_service_client::SourceCredentialsServiceClient;
use imgmesh_proto::registry::v1::{GetReadAccessRequest, GetReadAccessResponse};
use imgmesh_runtime::GrpcChannel;
use imgmesh_s3_client::{AccessKey, BucketAccess, BucketLocation};
use imgmesh_telemetry::TraceContextInterceptor;
use tonic::service::interceptor::InterceptedService;

use crate::fetch_error::FetchError;

/// How long one `GetReadAccess` call may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);

/// The registry client, carrying the caller's trace to the registry.
pub(crate) type RegistryClient =
    SourceCredentialsServiceClient<InterceptedService<GrpcChannel, TraceContextInterceptor>>;

/// Where a Source's objects live and the key to read them with.
#[derive(Debug)]
pub(crate) struct ReadAccess {
    /// Source id.
    pub(crate) source_id: String,
    /// The Source config version these settings belong to.
    pub(crate) config_version: u64,
    /// The bucket (with the Source's path prefix) and its read key.
    pub(crate) bucket: BucketAccess,
}

// === impl ReadAccess ===

impl ReadAccess {
    /// Takes the registry's answer apart, handing the secret to an
    /// [`AccessKey`] (which wipes the answer's copy). A Source that does not serve (disabled or not
    /// deployed) is refused as not found, before any S3 client exists; an
    /// answer that names no bucket is refused as internal.
    pub(crate) fn from_response(response: GetReadAccessResponse) -> Result<ReadAccess, FetchError> {
        let GetReadAccessResponse {
            source_id,
            config_version,
            bucket,
            region,
            endpoint,
            path_prefix,
            access_key_id,
            secret_access_key,
            serving,
        } = response;
        let key = AccessKey::from_plain_secret(access_key_id, secret_access_key);
        if !serving {
            tracing::debug!(source_id, "registry says the source does not serve");
            return Err(FetchError::SourceNotFound);
        }
        if bucket.is_empty() {
            tracing::warn!(source_id, "registry returned read access without a bucket");
            return Err(FetchError::Internal);
        }
        Ok(ReadAccess {
            source_id,
            config_version,
            bucket: BucketAccess {
                location: BucketLocation {
                    bucket,
                    // S3-compatible stores commonly ignore the region but
                    // SigV4 needs one; us-east-1 is what they expect by
                    // default.
                    region: if region.is_empty() {
                        "us-east-1".to_owned()
                    } else {
                        region
                    },
                    endpoint: Some(endpoint).filter(|e| !e.is_empty()),
                    path_prefix,
                },
                key,
            },
        })
    }
}

/// A registry client for `registry_url` over `transport`, connecting lazily
/// (and again after the registry restarts).
pub(crate) fn registry_client(
    registry_url: &str,
    transport: &imgmesh_runtime::Transport,
) -> anyhow::Result<RegistryClient> {
    let channel = imgmesh_runtime::grpc_channel_over(registry_url, transport)?;
    Ok(SourceCredentialsServiceClient::with_interceptor(
        channel,
        TraceContextInterceptor,
    ))
}

/// Asks the registry for `source_id`'s read access.
#[tracing::instrument(
    name = "registry.get_read_access",
    skip_all,
    fields(source_id = %source_id, otel.kind = "client", rpc.system = "grpc")
)]
pub(crate) async fn get_read_access(
    registry: &RegistryClient,
    source_id: &str,
) -> Result<ReadAccess, FetchError> {
    let mut request = tonic::Request::new(GetReadAccessRequest {
        source_id: source_id.to_owned(),
    });
    request.set_timeout(REGISTRY_TIMEOUT);
    let response =
        registry.clone().get_read_access(request).await.map_err(
            |status| match ErrorCode::of_status(&status) {
                ErrorCode::SourceNotFound => FetchError::SourceNotFound,
                ErrorCode::SourceDisabled => FetchError::SourceDisabled,
                code => {
                    tracing::warn!(
                        source_id,
                        %code,
                        message = status.message(),
                        "registry did not hand out read access"
                    );
                    FetchError::RegistryUnavailable
                }
            },
        )?;
    ReadAccess::from_response(response.into_inner())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn response() -> GetReadAccessResponse {
        GetReadAccessResponse {
            source_id: "src-1".to_owned(),
            config_version: 7,
            bucket: "images".to_owned(),
            region: "eu-west-1".to_owned(),
            endpoint: String::new(),
            path_prefix: "tenant-a".to_owned(),
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "canary-secret-8c1f".to_owned(),
            serving: true,
        }
    }

    /// Debug output names the fields but never the secret.
    #[test]
    fn debug_redacts_the_secret() {
        let access = ReadAccess::from_response(response()).unwrap();
        let debug = format!("{access:?}");
        assert!(!debug.contains("canary-secret-8c1f"), "{debug}");
        assert!(debug.contains("[REDACTED]"));
        assert!(debug.contains("images"));
        assert_eq!(
            access.bucket.key.secret.expose_secret(),
            "canary-secret-8c1f"
        );
    }

    /// An empty endpoint means AWS S3; a set one is kept.
    #[test]
    fn empty_endpoint_means_aws() {
        let access = ReadAccess::from_response(response()).unwrap();
        assert_eq!(access.bucket.location.endpoint, None);
        let mut with_endpoint = response();
        with_endpoint.endpoint = "http://127.0.0.1:9000".to_owned();
        let access = ReadAccess::from_response(with_endpoint).unwrap();
        assert_eq!(
            access.bucket.location.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    /// A missing region falls back on us-east-1 for S3-compatible stores.
    #[test]
    fn empty_region_defaults_to_us_east_1() {
        let mut without_region = response();
        without_region.region = String::new();
        let access = ReadAccess::from_response(without_region).unwrap();
        assert_eq!(access.bucket.location.region, "us-east-1");
    }

    /// A Source that does not serve is refused as SOURCE_NOT_FOUND, whatever else the answer says.
    #[test]
    fn not_serving_is_source_not_found() {
        let mut off = response();
        off.serving = false;
        assert!(matches!(
            ReadAccess::from_response(off),
            Err(FetchError::SourceNotFound)
        ));
    }

    /// Read access without a bucket is refused as an internal error.
    #[test]
    fn missing_bucket_is_refused() {
        let mut without_bucket = response();
        without_bucket.bucket = String::new();
        assert!(matches!(
            ReadAccess::from_response(without_bucket),
            Err(FetchError::Internal)
        ));
    }
}
