//! The client for one Source's bucket: one aws-sdk-s3 client per endpoint
//! choice, and [`BucketClient::send`], which moves on to the next endpoint
//! only when the current one cannot be reached or redirects.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use secrecy::ExposeSecret as _;

use crate::bucket_access::BucketAccess;
use crate::endpoint_choice::{EndpointChoice, endpoint_choices};

/// The name the SDK records as the credentials' provider.
const CREDENTIALS_PROVIDER: &str = "imgmesh-registry";

/// Timeouts and retries of every client, per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTuning {
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long one attempt (until the response headers) may take.
    pub attempt_timeout: Duration,
    /// How long a whole operation, retries included, may take before its
    /// response body starts streaming.
    pub operation_timeout: Duration,
    /// Attempts per operation, the first included (standard retry mode,
    /// exponential backoff with jitter).
    pub max_attempts: u32,
}

impl Default for ClientTuning {
    /// 3 s to connect, 10 s per attempt, 30 s per operation, 3 attempts.
    fn default() -> Self {
        ClientTuning {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }
}

/// A client for one bucket, reaching it through one or more endpoints in
/// order of preference. Cheap to clone; its `Debug` shows no credentials.
#[derive(Clone)]
pub struct BucketClient {
    bucket: String,
    clients: Vec<(EndpointChoice, aws_sdk_s3::Client)>,
}

// === impl BucketClient ===

impl BucketClient {
    /// A client for the bucket `access` describes, with default tuning and
    /// the endpoints [`endpoint_choices`] picks.
    pub fn new(access: &BucketAccess) -> BucketClient {
        BucketClient::with_tuning(access, ClientTuning::default())
    }

    /// Like [`BucketClient::new`] with other timeouts and retries.
    pub fn with_tuning(access: &BucketAccess, tuning: ClientTuning) -> BucketClient {
        let choices =
            endpoint_choices(&access.location.region, access.location.endpoint.as_deref());
        BucketClient::for_endpoints(access, tuning, choices)
    }

    /// A client trying exactly `choices`, in order (tests and tools that pin
    /// endpoints). An empty list falls back on [`endpoint_choices`].
    pub fn for_endpoints(
        access: &BucketAccess,
        tuning: ClientTuning,
        choices: Vec<EndpointChoice>,
    ) -> BucketClient {
        let choices = if choices.is_empty() {
            endpoint_choices(&access.location.region, access.location.endpoint.as_deref())
        } else {
            choices
        };
        let clients = choices
            .into_iter()
            .map(|choice| {
                let client = aws_sdk_s3::Client::from_conf(s3_config(access, &choice, tuning));
                (choice, client)
            })
            .collect();
        BucketClient {
            bucket: access.location.bucket.clone(),
            clients,
        }
    }

    /// The bucket this client reads and writes.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The endpoints tried, in order.
    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointChoice> {
        self.clients.iter().map(|(choice, _)| choice)
    }

    /// The client of the preferred endpoint.
    pub fn primary(&self) -> &aws_sdk_s3::Client {
        &self.clients[0].1
    }

    /// Runs `operation` with the preferred endpoint's client and, while it
    /// fails in a way [`should_try_next_endpoint`] accepts and another
    /// endpoint is left, with the next one. Returns the last result.
    pub async fn send<T, E, F, Fut>(&self, operation: F) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: Fn(aws_sdk_s3::Client) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata,
    {
        let mut clients = self.clients.iter().peekable();
        loop {
            let Some((choice, client)) = clients.next() else {
                unreachable!("a bucket client has at least one endpoint");
            };
            match operation(client.clone()).await {
                Err(error) if clients.peek().is_some() && should_try_next_endpoint(&error) => {
                    tracing::debug!(
                        aws.s3.bucket = %self.bucket,
                        endpoint = choice.url.as_deref().unwrap_or("regional"),
                        "endpoint unreachable or redirecting; trying the next one"
                    );
                }
                result => return result,
            }
        }
    }
}

impl fmt::Debug for BucketClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketClient")
            .field("bucket", &self.bucket)
            .field("endpoints", &self.endpoints().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Whether a failure at one endpoint is worth retrying at the next: the
/// request never got an answer (connection refused, DNS failure, connect
/// timeout) or S3 answered with a permanent redirect (301 or
/// `PermanentRedirect`). Answers such as 403 or 404 are the bucket's
/// answer, the same through any endpoint.
pub fn should_try_next_endpoint<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> bool {
    match error {
        SdkError::DispatchFailure(failure) => !failure.is_user(),
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() == 301
                || service.err().code() == Some("PermanentRedirect")
        }
        SdkError::ResponseError(response) => response.raw().status().as_u16() == 301,
        _ => false,
    }
}

/// The SDK config for `access` through `choice`: static credentials only,
/// bounded timeouts and retries.
fn s3_config(
    access: &BucketAccess,
    choice: &EndpointChoice,
    tuning: ClientTuning,
) -> aws_sdk_s3::Config {
    let credentials = Credentials::new(
        access.key.id.clone(),
        access.key.secret.expose_secret(),
        None,
        None,
        CREDENTIALS_PROVIDER,
    );
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(tuning.connect_timeout)
        .operation_attempt_timeout(tuning.attempt_timeout)
        .operation_timeout(tuning.operation_timeout)
        .build();
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(access.location.region.clone()))
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(tuning.max_attempts))
        .force_path_style(choice.force_path_style);
    if let Some(url) = &choice.url {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_s3::error::BoxError;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::bucket_access::{AccessKey, BucketLocation};

    const SECRET: &str = "canary-secret-8c1f";

    fn access(region: &str, endpoint: Option<&str>) -> BucketAccess {
        BucketAccess {
            location: BucketLocation {
                bucket: "images".to_owned(),
                region: region.to_owned(),
                endpoint: endpoint.map(str::to_owned),
                path_prefix: String::new(),
            },
            key: AccessKey::new("AKIDEXAMPLE", SECRET),
        }
    }

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

    /// Where each endpoint's client would send a GetObject, and how it signs.
    async fn signed_requests(access: &BucketAccess) -> Vec<(String, String)> {
        let client = BucketClient::new(access);
        let mut seen = Vec::new();
        for (_, s3) in &client.clients {
            let capture = CaptureRequest::default();
            let result = s3
                .get_object()
                .bucket("images")
                .key("photos/cat.jpg")
                .customize()
                .interceptor(capture.clone())
                .send()
                .await;
            assert!(result.is_err(), "the interceptor stops every request");
            seen.push(
                capture
                    .seen
                    .lock()
                    .unwrap()
                    .take()
                    .expect("reached transmit"),
            );
        }
        seen
    }

    /// A Source with an endpoint is addressed path-style at that endpoint.
    #[tokio::test]
    async fn endpoint_uses_path_style() {
        let seen = signed_requests(&access("eu-west-1", Some("http://127.0.0.1:9000"))).await;
        let uris: Vec<&str> = seen.iter().map(|(uri, _)| uri.as_str()).collect();
        assert_eq!(uris, ["http://127.0.0.1:9000/images/photos/cat.jpg"]);
    }

    /// An AWS Source is addressed virtual-hosted style in its region.
    #[tokio::test]
    async fn aws_uses_virtual_hosted_style() {
        let seen = signed_requests(&access("eu-west-1", None)).await;
        let uris: Vec<&str> = seen.iter().map(|(uri, _)| uri.as_str()).collect();
        assert_eq!(
            uris,
            ["https://images.s3.eu-west-1.amazonaws.com/photos/cat.jpg"]
        );
    }

    /// An AWS Source in us-east-1 has the regional then the global host,
    /// both signed for us-east-1.
    #[tokio::test]
    async fn us_east_1_has_regional_and_global_hosts() {
        let seen = signed_requests(&access("us-east-1", None)).await;
        let uris: Vec<&str> = seen.iter().map(|(uri, _)| uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "https://images.s3.us-east-1.amazonaws.com/photos/cat.jpg",
                "https://images.s3.amazonaws.com/photos/cat.jpg",
            ]
        );
        for (_, authorization) in &seen {
            assert!(
                authorization.contains("/us-east-1/s3/aws4_request"),
                "{authorization}"
            );
        }
    }

    /// Requests are signed with the Source's key id and region, never
    /// carrying the secret.
    #[tokio::test]
    async fn requests_are_signed_with_the_sources_credentials() {
        let seen = signed_requests(&access("eu-west-1", Some("http://127.0.0.1:9000"))).await;
        let (_, authorization) = &seen[0];
        assert!(
            authorization.contains("Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/s3/aws4_request"),
            "{authorization}"
        );
        assert!(!authorization.contains(SECRET));
    }

    /// Timeouts and retries are bounded as tuned.
    #[test]
    fn timeouts_and_retries_are_bounded() {
        let tuning = ClientTuning::default();
        let client = BucketClient::new(&access("eu-west-1", None));
        let config = client.primary().config();
        let timeouts = config.timeout_config().expect("timeouts are set");
        assert_eq!(timeouts.connect_timeout(), Some(tuning.connect_timeout));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(tuning.attempt_timeout)
        );
        assert_eq!(timeouts.operation_timeout(), Some(tuning.operation_timeout));
        let retries = config.retry_config().expect("retries are set");
        assert_eq!(retries.max_attempts(), 3);
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
    }

    /// Debug output of the access and the client never shows credentials.
    #[test]
    fn debug_hides_credentials() {
        let access = access("us-east-1", None);
        let shown = format!("{access:?} {:?}", BucketClient::new(&access));
        assert!(
            !shown.contains(SECRET) && !shown.contains("AKIDEXAMPLE"),
            "{shown}"
        );
        assert!(shown.contains("s3.amazonaws.com"), "{shown}");
    }

    /// A local HTTP server answering every request with one canned status,
    /// counting the requests it got.
    struct CannedServer {
        url: String,
        requests: Arc<AtomicUsize>,
    }

    impl CannedServer {
        async fn start(status_line: &'static str) -> CannedServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(AtomicUsize::new(0));
            let counter = requests.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 {status_line}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                }
            });
            CannedServer { url, requests }
        }

        fn count(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    /// A URL nothing listens on: connecting is refused.
    fn closed_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn path_style(url: &str) -> EndpointChoice {
        EndpointChoice {
            url: Some(url.to_owned()),
            force_path_style: true,
        }
    }

    fn one_attempt() -> ClientTuning {
        ClientTuning {
            max_attempts: 1,
            ..ClientTuning::default()
        }
    }

    /// HEAD of one object through `client`; the HTTP status S3 answered.
    async fn head_status(client: &BucketClient) -> Option<u16> {
        let result = client
            .send(|s3| async move { s3.head_object().bucket("images").key("a.jpg").send().await })
            .await;
        match result {
            Ok(_) => Some(200),
            Err(SdkError::ServiceError(service)) => Some(service.raw().status().as_u16()),
            Err(_) => None,
        }
    }

    /// An endpoint that refuses connections is skipped for the next one.
    #[tokio::test]
    async fn unreachable_endpoint_falls_back() {
        let global = CannedServer::start("404 Not Found").await;
        let client = BucketClient::for_endpoints(
            &access("us-east-1", None),
            one_attempt(),
            vec![path_style(&closed_url()), path_style(&global.url)],
        );
        assert_eq!(head_status(&client).await, Some(404));
        assert_eq!(global.count(), 1);
    }

    /// A permanent redirect (301) moves on to the next endpoint.
    #[tokio::test]
    async fn redirect_falls_back() {
        let regional = CannedServer::start("301 Moved Permanently").await;
        let global = CannedServer::start("404 Not Found").await;
        let client = BucketClient::for_endpoints(
            &access("us-east-1", None),
            one_attempt(),
            vec![path_style(&regional.url), path_style(&global.url)],
        );
        assert_eq!(head_status(&client).await, Some(404));
        assert_eq!((regional.count(), global.count()), (1, 1));
    }

    /// Any other answer (403, 404) is the bucket's: no fallback.
    #[tokio::test]
    async fn other_answers_do_not_fall_back() {
        for status_line in ["403 Forbidden", "404 Not Found"] {
            let regional = CannedServer::start(status_line).await;
            let global = CannedServer::start("200 OK").await;
            let client = BucketClient::for_endpoints(
                &access("us-east-1", None),
                one_attempt(),
                vec![path_style(&regional.url), path_style(&global.url)],
            );
            let expected = status_line[..3].parse().ok();
            assert_eq!(head_status(&client).await, expected, "{status_line}");
            assert_eq!(global.count(), 0, "{status_line}");
        }
    }

    /// With no endpoint left, the last failure is returned.
    #[tokio::test]
    async fn last_failure_is_returned() {
        let client = BucketClient::for_endpoints(
            &access("us-east-1", None),
            one_attempt(),
            vec![path_style(&closed_url()), path_style(&closed_url())],
        );
        let result = client
            .send(|s3| async move { s3.head_object().bucket("images").key("a.jpg").send().await })
            .await;
        assert!(
            matches!(result, Err(SdkError::DispatchFailure(_))),
            "{result:?}"
        );
    }
}
