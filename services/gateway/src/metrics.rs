//! The gateway's Prometheus metrics, registered in the process registry on
//! first use and served by the ops listener's `GET /metrics`:
//!
//! - `imgmesh_http_requests_total{status}`: public requests answered, by
//!   HTTP status code;
//! - `imgmesh_http_request_duration_seconds`: time from a public request's
//!   arrival to its response head (bodies are in memory by then, so this is
//!   the whole request);
//! - `imgmesh_cache_lookups_total{tier="source",result}`: host → Source
//!   lookups answered from the source cache (`hit`) or not (`miss`), and
//!   expired answers served because the registry failed (`stale`);
//! - `imgmesh_http_requests_in_flight`: public requests being worked on;
//! - `imgmesh_http_requests_shed_total`: public requests refused with 503
//!   because `--max-in-flight` were already in flight;
//! - `imgmesh_admin_auth_refusals_total{reason}`: admin requests refused
//!   for a `missing_token`, an `invalid_token`, or because their address is
//!   `rate_limited` after too many wrong tokens;
//! - `imgmesh_cache_lookups_total{tier="derivative",result}`: with
//!   `--redis-url`, derivatives answered from Redis (`hit`), or left to the
//!   renderer (`miss`, `expired`).

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

/// The gateway's metrics (see the module documentation).
pub(crate) static METRICS: LazyLock<GatewayMetrics> = LazyLock::new(GatewayMetrics::register);

/// Labels of `imgmesh_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    /// The response's status code.
    status: u16,
}

/// Labels of `imgmesh_admin_auth_refusals_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    /// `missing_token`, `invalid_token` or `rate_limited`.
    reason: &'static str,
}

/// Labels of `imgmesh_cache_lookups_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLookupLabels {
    /// Which cache: `source`, or `derivative` (Redis, read directly).
    tier: &'static str,
    /// `hit` or `miss` (and `expired` for derivatives left to the renderer
    /// to revalidate).
    result: &'static str,
}

// === impl CacheLookupLabels ===

impl CacheLookupLabels {
    /// The labels of a source cache lookup that went `lookup`.
    fn source(lookup: SourceLookup) -> CacheLookupLabels {
        let result = match lookup {
            SourceLookup::Hit => "hit",
            SourceLookup::Miss => "miss",
            SourceLookup::Stale => "stale",
        };
        CacheLookupLabels {
            tier: "source",
            result,
        }
    }
}

/// How a source cache lookup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceLookup {
    /// A live cached answer.
    Hit,
    /// Nothing cached (or it expired): the registry is asked.
    Miss,
    /// The registry failed; an expired answer within its stale window was
    /// served instead.
    Stale,
}

/// The metric handles; updating them needs no lock.
#[derive(Debug)]
pub(crate) struct GatewayMetrics {
    http_requests: Family<StatusLabels, Counter>,
    http_duration: Histogram,
    cache_lookups: Family<CacheLookupLabels, Counter>,
    admin_auth_refusals: Family<RefusalLabels, Counter>,
    in_flight: Gauge,
    shed: Counter,
}

// === impl GatewayMetrics ===

impl GatewayMetrics {
    fn register() -> GatewayMetrics {
        let metrics = imgmesh_metrics::register(|metrics| GatewayMetrics {
            http_requests: metrics.metric(
                "imgmesh_http_requests",
                "Public HTTP requests answered, by status code",
                Family::default(),
            ),
            http_duration: metrics.metric_with_unit(
                "imgmesh_http_request_duration",
                "Time from a public HTTP request's arrival to its response",
                Unit::Seconds,
                imgmesh_metrics::latency_histogram(),
            ),
            cache_lookups: metrics.metric(
                "imgmesh_cache_lookups",
                "Cache lookups, by cache tier and result",
                Family::default(),
            ),
            in_flight: metrics.metric(
                "imgmesh_http_requests_in_flight",
                "Public HTTP requests being worked on",
                Gauge::default(),
            ),
            shed: metrics.metric(
                "imgmesh_http_requests_shed",
                "Public HTTP requests refused at once because --max-in-flight were in flight",
                Counter::default(),
            ),
            admin_auth_refusals: metrics.metric(
                "imgmesh_admin_auth_refusals",
                "Admin API requests refused before authentication, by reason",
                Family::default(),
            ),
        });
        // Every result starts at 0, so rates work from the first scrape.
        imgmesh_metrics::start_at_zero(
            &metrics.cache_lookups,
            [SourceLookup::Hit, SourceLookup::Miss, SourceLookup::Stale]
                .map(CacheLookupLabels::source),
        );
        // Every labelled series at zero from the start, so dashboards and
        // alerts see them before the first event (and without Redis).
        imgmesh_metrics::start_at_zero(
            &metrics.cache_lookups,
            ["hit", "miss", "expired"].map(|result| CacheLookupLabels {
                tier: "derivative",
                result,
            }),
        );
        imgmesh_derivative_cache::register_metrics();
        metrics
    }

    /// Counts one source cache lookup.
    pub(crate) fn source_lookup(&self, lookup: SourceLookup) {
        self.cache_lookups
            .get_or_create(&CacheLookupLabels::source(lookup))
            .inc();
    }

    /// One more public request in flight.
    pub(crate) fn in_flight_started(&self) {
        self.in_flight.inc();
    }

    /// One public request fewer in flight.
    pub(crate) fn in_flight_ended(&self) {
        self.in_flight.dec();
    }

    /// Counts one public request shed for overload.
    pub(crate) fn request_shed(&self) {
        self.shed.inc();
    }

    /// Counts one admin request refused for `reason` (`missing_token`,
    /// `invalid_token` or `rate_limited`).
    pub(crate) fn admin_auth_refused(&self, reason: &'static str) {
        self.admin_auth_refusals
            .get_or_create(&RefusalLabels { reason })
            .inc();
    }

    /// Counts one derivative lookup in Redis that ended as `result`.
    pub(crate) fn derivative_lookup(&self, result: &'static str) {
        self.cache_lookups
            .get_or_create(&CacheLookupLabels {
                tier: "derivative",
                result,
            })
            .inc();
    }
}

/// Registers the gateway's metrics now rather than on the first request, so
/// a scrape before any traffic already shows them.
pub(crate) fn register() {
    LazyLock::force(&METRICS);
}

/// Middleware of the public router: counts and times every request.
pub(crate) async fn count_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    METRICS
        .http_duration
        .observe(started.elapsed().as_secs_f64());
    METRICS
        .http_requests
        .get_or_create(&StatusLabels {
            status: response.status().as_u16(),
        })
        .inc();
    response
}
