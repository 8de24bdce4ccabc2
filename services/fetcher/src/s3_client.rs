//! The S3 client for one Source, and the `GetObject` call made with it.
//!
//! The client comes from `imgmesh-s3-client`, configured only from the
//! Source's read access: static credentials, its region and, for
//! S3-compatible stores, its endpoint with path-style addressing. Nothing is
//! loaded from the environment or from `~/.aws`, so a fetcher running with
//! ambient AWS credentials can never read a bucket with them by accident.
//! AWS buckets in us-east-1 are read through the regional hostname first and
//! the global one when that cannot be reached.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use imgmesh_s3_client::{BucketClient, ClientTuning};

use crate::fetch_error::{FetchError, classify_sdk_error};
use crate::metrics::{METRICS, S3Result};
use crate::read_access::ReadAccess;

/// A client for the Source described by `access` (built by
/// `imgmesh-s3-client`: static credentials, path-style for S3-compatible
/// endpoints, regional-then-global in us-east-1), with the fetcher's
/// timeouts and retries `tuning`.
pub(crate) fn s3_client(access: &ReadAccess, tuning: ClientTuning) -> BucketClient {
    BucketClient::with_tuning(&access.bucket, tuning)
}

/// Counts every HTTP attempt of a call (`imgmesh_s3_attempts_total`), so
/// the SDK's retries show in the metrics.
#[derive(Debug)]
struct CountAttempts;

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "imgmesh-count-attempts"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        METRICS.s3_attempt();
        Ok(())
    }
}

/// What a (conditional) `GetObject` found.
#[derive(Debug)]
pub(crate) enum ObjectRead {
    /// The object, its body still to be read.
    Object(Box<GetObjectOutput>),
    /// `If-None-Match` matched: the copy the caller holds is current. The
    /// origin's caching headers come with the answer (RFC 9110 §15.4.5).
    NotModified(OriginCaching),
}

/// What the origin said about how long an object may be cached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OriginCaching {
    /// `Cache-Control`, verbatim; empty when none.
    pub(crate) cache_control: String,
    /// `Expires`, Unix seconds; 0 when none or not an HTTP date.
    pub(crate) expires: i64,
}

// === impl OriginCaching ===

impl OriginCaching {
    /// The caching headers of a full `GetObject` answer.
    pub(crate) fn of_object(object: &GetObjectOutput) -> OriginCaching {
        OriginCaching {
            cache_control: object.cache_control().unwrap_or_default().to_owned(),
            expires: object.expires_string().map_or(0, http_date_seconds),
        }
    }

    /// The caching headers of a raw (304) response.
    fn of_response(response: &HttpResponse) -> OriginCaching {
        let headers = response.headers();
        OriginCaching {
            cache_control: headers.get("cache-control").unwrap_or_default().to_owned(),
            expires: headers.get("expires").map_or(0, http_date_seconds),
        }
    }
}

/// An HTTP date as Unix seconds; 0 when it is not one (RFC 9111 §5.3:
/// an invalid `Expires` means "already expired", and 0 is in the past).
fn http_date_seconds(value: &str) -> i64 {
    DateTime::from_str(value.trim(), DateTimeFormat::HttpDate).map_or(0, |date| date.secs())
}

/// Starts reading `key` from `bucket`: resolves once the origin has sent
/// the response headers; the body streams afterwards. With `if_none_match`
/// (a stored ETag) an unchanged object answers [`ObjectRead::NotModified`]
/// without its body. Every call is counted in `imgmesh_s3_requests_total`.
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
    s3: &BucketClient,
    source_id: &str,
    bucket: &str,
    key: &str,
    if_none_match: Option<&str>,
) -> Result<ObjectRead, FetchError> {
    let result = s3
        .send(|client| {
            client
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_if_none_match(if_none_match.map(str::to_owned))
                .customize()
                .interceptor(CountAttempts)
                .send()
        })
        .await;
    let read = match result {
        Ok(object) => Ok(ObjectRead::Object(Box::new(object))),
        Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(304) => {
            let caching = err
                .raw_response()
                .map(OriginCaching::of_response)
                .unwrap_or_default();
            Ok(ObjectRead::NotModified(caching))
        }
        Err(err) => Err(classify_sdk_error(source_id, &err)),
    };
    METRICS.s3_request(metric_result(&read));
    if let Err(error) = &read {
        METRICS.s3_error("headers", error);
    }
    read
}

/// The `result` label of a `GetObject` call that ended with `read`.
fn metric_result(read: &Result<ObjectRead, FetchError>) -> S3Result {
    match read {
        Ok(ObjectRead::Object(_)) => S3Result::Ok,
        Ok(ObjectRead::NotModified { .. }) => S3Result::NotModified,
        Err(FetchError::ObjectNotFound) => S3Result::NotFound,
        Err(_) => S3Result::Error,
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_s3_client::{AccessKey, BucketAccess, BucketLocation, EndpointChoice};

    use super::*;

    fn access(region: &str, endpoint: Option<&str>) -> ReadAccess {
        ReadAccess {
            source_id: "src-1".to_owned(),
            config_version: 1,
            bucket: BucketAccess {
                location: BucketLocation {
                    bucket: "images".to_owned(),
                    region: region.to_owned(),
                    endpoint: endpoint.map(str::to_owned),
                    path_prefix: String::new(),
                },
                key: AccessKey::new("AKIDEXAMPLE", "canary-secret-8c1f"),
            },
        }
    }

    /// The read access's bucket, region and endpoint decide the client's
    /// endpoints (the addressing itself is tested in imgmesh-s3-client).
    #[test]
    fn client_follows_the_read_access() {
        let custom = s3_client(
            &access("eu-west-1", Some("http://127.0.0.1:9000")),
            ClientTuning::default(),
        );
        assert_eq!(custom.bucket(), "images");
        assert_eq!(
            custom.endpoints().cloned().collect::<Vec<_>>(),
            [EndpointChoice {
                url: Some("http://127.0.0.1:9000".to_owned()),
                force_path_style: true,
            }]
        );
        let us_east_1 = s3_client(&access("us-east-1", None), ClientTuning::default());
        assert_eq!(us_east_1.endpoints().count(), 2);
        assert_eq!(
            us_east_1.primary().config().region().map(|r| r.as_ref()),
            Some("us-east-1")
        );
        assert!(!format!("{us_east_1:?}").contains("canary-secret-8c1f"));
    }
}
