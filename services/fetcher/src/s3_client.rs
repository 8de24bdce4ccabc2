//! The aws-sdk-s3 client for one Source, and the `GetObject` call made with
//! it.
//!
//! The client is configured only from the Source's read access: static
//! credentials, its region and, for S3-compatible stores, its endpoint with
//! path-style addressing. Nothing is loaded from the environment or from
//! `~/.aws`, so a fetcher running with ambient AWS credentials can never
//! read a bucket with them by accident.

use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use secrecy::ExposeSecret as _;

use crate::fetch_error::{FetchError, classify_sdk_error};
use crate::read_access::ReadAccess;

/// How long opening a connection to the origin may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one attempt (until the response headers) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole `GetObject`, retries included, may take before its
/// body starts streaming.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per `GetObject`, the first included (standard retry mode, with
/// exponential backoff and jitter).
const MAX_ATTEMPTS: u32 = 3;
/// The name the SDK records as the credentials' provider.
const CREDENTIALS_PROVIDER: &str = "imgmesh-registry";

/// The SDK config for reading the Source described by `access`.
pub(crate) fn s3_config(access: &ReadAccess) -> aws_sdk_s3::Config {
    let credentials = Credentials::new(
        access.access_key_id.clone(),
        access.secret_access_key.expose_secret(),
        None,
        None,
        CREDENTIALS_PROVIDER,
    );
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(access.region.clone()))
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(endpoint) = &access.endpoint {
        // S3-compatible stores rarely have wildcard DNS for
        // `<bucket>.<host>`: address the bucket in the path.
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    builder.build()
}

/// A client for the Source described by `access`.
pub(crate) fn s3_client(access: &ReadAccess) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config(access))
}

/// Starts reading `key` from `bucket`: resolves once the origin has sent
/// the response headers; the body streams afterwards.
#[tracing::instrument(
    name = "s3.get_object",
    skip_all,
    fields(
        source_id = %source_id,
        otel.kind = "client",
        rpc.system = "aws-api",
        rpc.service = "S3",
        rpc.method = "GetObject",
        aws.s3.bucket = %bucket,
        aws.s3.key = %key,
    )
)]
pub(crate) async fn get_object(
    s3: &aws_sdk_s3::Client,
    source_id: &str,
    bucket: &str,
    key: &str,
) -> Result<GetObjectOutput, FetchError> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| classify_sdk_error(source_id, &err))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_s3::error::BoxError;
    use secrecy::SecretString;

    use super::*;

    /// Records the request the SDK is about to send, then stops it so no
    /// network is touched.
    #[derive(Debug, Clone, Default)]
    struct CaptureRequest {
        seen: Arc<Mutex<Option<(String, String)>>>,
    }

    impl Intercept for CaptureRequest {
        fn name(&self) -> &'static str {
            "CaptureRequest"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let request = context.request();
            let authorization = request
                .headers()
                .get("authorization")
                .unwrap_or_default()
                .to_owned();
            // Drop the query (`?x-id=GetObject`): only where the request goes matters here.
            let uri = request
                .uri()
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            *self.seen.lock().unwrap() = Some((uri, authorization));
            Err("stopped before transmit".into())
        }
    }

    fn access(endpoint: Option<&str>) -> ReadAccess {
        ReadAccess {
            source_id: "src-1".to_owned(),
            config_version: 1,
            bucket: "images".to_owned(),
            region: "eu-west-1".to_owned(),
            endpoint: endpoint.map(str::to_owned),
            path_prefix: String::new(),
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: SecretString::from("canary-secret-8c1f"),
        }
    }

    /// Sends a GetObject that never leaves the process; returns URI and
    /// Authorization header as signed.
    async fn signed_request(access: &ReadAccess) -> (String, String) {
        let capture = CaptureRequest::default();
        let result = s3_client(access)
            .get_object()
            .bucket("images")
            .key("photos/cat.jpg")
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        assert!(result.is_err(), "the interceptor stops every request");
        let seen = capture.seen.lock().unwrap().take();
        seen.expect("the request reached the transmit stage")
    }

    /// A Source with an endpoint is addressed path-style at that endpoint.
    #[tokio::test]
    async fn endpoint_uses_path_style() {
        let (uri, _) = signed_request(&access(Some("http://127.0.0.1:9000"))).await;
        assert_eq!(uri, "http://127.0.0.1:9000/images/photos/cat.jpg");
    }

    /// An AWS Source is addressed virtual-hosted style in its region.
    #[tokio::test]
    async fn aws_uses_virtual_hosted_style() {
        let (uri, _) = signed_request(&access(None)).await;
        assert_eq!(
            uri,
            "https://images.s3.eu-west-1.amazonaws.com/photos/cat.jpg"
        );
    }

    /// Requests are signed with the Source's key id and region, never carrying the secret.
    #[tokio::test]
    async fn requests_are_signed_with_the_sources_credentials() {
        let (_, authorization) = signed_request(&access(Some("http://127.0.0.1:9000"))).await;
        assert!(
            authorization.contains("Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/s3/aws4_request"),
            "{authorization}"
        );
        assert!(!authorization.contains("canary-secret-8c1f"));
    }

    /// Timeouts and retries are bounded as documented.
    #[test]
    fn timeouts_and_retries_are_bounded() {
        let config = s3_config(&access(None));
        let timeouts = config.timeout_config().expect("timeouts are set");
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        let retries = config.retry_config().expect("retries are set");
        assert_eq!(retries.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
    }
}
