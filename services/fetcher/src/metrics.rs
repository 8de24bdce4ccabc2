//! The fetcher's Prometheus metrics, registered in the process registry on
//! first use and served on `--metrics-listen`:
//!
//! - `imgmesh_s3_requests_total{result}`: `GetObject` calls by outcome
//!   (`ok`, `not_modified`, `not_found`, `error`);
//! - `imgmesh_s3_attempts_total`: HTTP attempts those calls made, retries
//!   included (attempts minus calls is the number of retries);
//! - `imgmesh_s3_errors_total{stage,kind}`: origin failures, by where they
//!   happened (`headers`: the `GetObject` call; `body`: reading the body)
//!   and kind (`not_found`, `access_denied`, `throttled`, `unavailable`,
//!   `timeout`, `bucket_not_found`, `too_large`, `other`);
//! - `imgmesh_s3_bytes_read_total`: object bytes received from origins;
//! - `imgmesh_cache_lookups_total{tier="original",result}`: original cache
//!   lookups (`hit` fresh copy, `stale` copy to revalidate, `miss`);
//! - `imgmesh_original_stale_served_total`: held originals served because
//!   the origin was slow or failing when they were revalidated;
//! - `imgmesh_original_cache_bytes`, `imgmesh_original_cache_capacity_bytes`:
//!   bytes of originals the original cache holds, and may hold.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Unit;

/// The fetcher's metrics (see the module documentation).
pub(crate) static METRICS: LazyLock<FetcherMetrics> = LazyLock::new(FetcherMetrics::register);

/// The `stage` label of `imgmesh_s3_errors_total`: where a GetObject failed.
const S3_ERROR_STAGES: [&str; 3] = ["headers", "body", "total"];

/// The `kind` label of `imgmesh_s3_errors_total`: every value of
/// `FetchError::metric_kind`.
const S3_ERROR_KINDS: [&str; 8] = [
    "not_found",
    "bucket_not_found",
    "access_denied",
    "throttled",
    "timeout",
    "unavailable",
    "too_large",
    "other",
];

/// How a `GetObject` call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum S3Result {
    /// The object's headers arrived; its body follows.
    Ok,
    /// `If-None-Match` matched (304).
    NotModified,
    /// No such key.
    NotFound,
    /// Anything else: denied, missing bucket, throttled, unreachable, …
    Error,
}

// === impl S3Result ===

impl S3Result {
    fn as_str(self) -> &'static str {
        match self {
            S3Result::Ok => "ok",
            S3Result::NotModified => "not_modified",
            S3Result::NotFound => "not_found",
            S3Result::Error => "error",
        }
    }
}

/// Labels of `imgmesh_s3_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct S3RequestLabels {
    result: &'static str,
}

/// Labels of `imgmesh_s3_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct S3ErrorLabels {
    stage: &'static str,
    kind: &'static str,
}

/// Labels of `imgmesh_cache_lookups_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLookupLabels {
    tier: &'static str,
    result: &'static str,
}

/// The counters one cache's lookups go to, by result.
#[derive(Debug, Clone, Default)]
pub(crate) struct LookupCounters {
    /// A fresh cached copy answered.
    pub(crate) hit: Counter,
    /// A cached copy was found but must be revalidated.
    pub(crate) stale: Counter,
    /// Nothing cached: the original is loaded.
    pub(crate) miss: Counter,
}

/// The metric handles; updating them needs no lock.
#[derive(Debug)]
pub(crate) struct FetcherMetrics {
    s3_requests: Family<S3RequestLabels, Counter>,
    s3_attempts: Counter,
    s3_errors: Family<S3ErrorLabels, Counter>,
    s3_bytes_read: Counter,
    cache_lookups: Family<CacheLookupLabels, Counter>,
    stale_served: Counter,
    original_cache_bytes: Gauge,
    original_cache_capacity_bytes: Gauge,
}

// === impl FetcherMetrics ===

impl FetcherMetrics {
    fn register() -> FetcherMetrics {
        let metrics = imgmesh_metrics::register(|metrics| FetcherMetrics {
            s3_requests: metrics.metric(
                "imgmesh_s3_requests",
                "S3 GetObject calls, by result",
                Family::default(),
            ),
            s3_attempts: metrics.metric(
                "imgmesh_s3_attempts",
                "HTTP attempts of S3 GetObject calls, retries included",
                Counter::default(),
            ),
            s3_errors: metrics.metric(
                "imgmesh_s3_errors",
                "S3 origin failures, by stage (headers, body) and kind",
                Family::default(),
            ),
            s3_bytes_read: metrics.metric(
                "imgmesh_s3_bytes_read",
                "Object bytes received from S3 origins",
                Counter::default(),
            ),
            cache_lookups: metrics.metric(
                "imgmesh_cache_lookups",
                "Cache lookups, by cache tier and result",
                Family::default(),
            ),
            stale_served: metrics.metric(
                "imgmesh_original_stale_served",
                "Held originals served because the origin failed their revalidation",
                Counter::default(),
            ),
            original_cache_bytes: metrics.metric_with_unit(
                "imgmesh_original_cache",
                "Bytes of originals held in the in-memory original cache",
                Unit::Bytes,
                Gauge::default(),
            ),
            original_cache_capacity_bytes: metrics.metric_with_unit(
                "imgmesh_original_cache_capacity",
                "Most bytes of originals the original cache may hold (--original-cache-bytes)",
                Unit::Bytes,
                Gauge::default(),
            ),
        });
        // Every result starts at 0, so rates work from the first scrape.
        imgmesh_metrics::start_at_zero(
            &metrics.s3_requests,
            [
                S3Result::Ok,
                S3Result::NotModified,
                S3Result::NotFound,
                S3Result::Error,
            ]
            .map(|result| S3RequestLabels {
                result: result.as_str(),
            }),
        );
        // Origin failures at zero from the start, so dashboards and alerts
        // see the series before the first one.
        imgmesh_metrics::start_at_zero(
            &metrics.s3_errors,
            S3_ERROR_STAGES
                .into_iter()
                .flat_map(|stage| S3_ERROR_KINDS.map(|kind| S3ErrorLabels { stage, kind })),
        );
        metrics
    }

    /// Counts one `GetObject` call.
    pub(crate) fn s3_request(&self, result: S3Result) {
        self.s3_requests
            .get_or_create(&S3RequestLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// Counts one HTTP attempt of a `GetObject` call.
    pub(crate) fn s3_attempt(&self) {
        self.s3_attempts.inc();
    }

    /// Counts one origin failure at `stage` (`headers` or `body`).
    pub(crate) fn s3_error(&self, stage: &'static str, error: &crate::fetch_error::FetchError) {
        self.s3_errors
            .get_or_create(&S3ErrorLabels {
                stage,
                kind: error.metric_kind(),
            })
            .inc();
    }

    /// Counts one held original served in place of a failing origin.
    pub(crate) fn stale_served(&self) {
        self.stale_served.inc();
    }

    /// Counts `bytes` received from an origin.
    pub(crate) fn s3_bytes_read(&self, bytes: usize) {
        self.s3_bytes_read.inc_by(bytes as u64);
    }

    /// The original cache now holds `bytes` of at most `capacity` bytes.
    pub(crate) fn original_cache_held(&self, bytes: u64, capacity: u64) {
        self.original_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.original_cache_capacity_bytes
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    /// The counters of the original cache's lookups.
    pub(crate) fn original_lookups(&self) -> LookupCounters {
        let counter = |result| {
            self.cache_lookups.get_or_create_owned(&CacheLookupLabels {
                tier: "original",
                result,
            })
        };
        LookupCounters {
            hit: counter("hit"),
            stale: counter("stale"),
            miss: counter("miss"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_error::FetchError;

    /// Every kind an origin failure is counted under is one of the kinds
    /// pre-created at zero, so no dashboard series appears only later.
    #[test]
    fn every_error_kind_is_pre_created() {
        for error in [
            FetchError::ObjectNotFound,
            FetchError::BucketNotFound,
            FetchError::OriginAccessDenied,
            FetchError::OriginThrottled,
            FetchError::OriginTimeout,
            FetchError::OriginUnavailable,
            FetchError::TooLarge { cap: 1 },
            FetchError::SourceNotFound,
            FetchError::Internal,
        ] {
            assert!(
                S3_ERROR_KINDS.contains(&error.metric_kind()),
                "{error:?} counts as {}",
                error.metric_kind()
            );
        }
        LazyLock::force(&METRICS);
        let text = imgmesh_metrics::encode();
        for stage in S3_ERROR_STAGES {
            let series = format!("imgmesh_s3_errors_total{{stage=\"{stage}\",kind=\"timeout\"}} ");
            assert!(text.contains(&series), "{series} missing:\n{text}");
        }
    }
}
