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
//! - `imgmesh_render_limit`: the renders the gateway asks of the renderer
//!   tier at once, lowered by the tier's refusals (`render_limit`);
//! - `imgmesh_renders_shed_locally_total`: misses refused with 503 by the
//!   gateway itself because that limit was in flight;
//! - `imgmesh_admin_auth_refusals_total{reason}`: admin requests refused
//!   for a `missing_token`, an `invalid_token`, or because their address is
//!   `rate_limited` after too many wrong tokens;
//! - `imgmesh_cache_lookups_total{tier="derivative",result}`: with
//!   `--redis-url`, derivatives answered from Redis (`hit`), or left to the
//!   renderer (`miss`, `expired`);
//! - `imgmesh_source_requests_total{source,class}`: public image requests
//!   answered for a known Source (its id), by status class (`2xx`, `3xx`,
//!   `4xx`, `5xx`);
//! - `imgmesh_source_derivative_lookups_total{source,result}`: the
//!   derivative lookups in Redis above, by Source.
//!
//! The `source` label is bounded: the first [`MAX_LABELLED_SOURCES`]
//! Sources seen since the process started get their own id; any later one
//! is counted under `source="other"`, so a gateway in front of thousands of
//! Sources exports at most that many series per label set. A deleted
//! Source's series stay until the process restarts.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};
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

/// How many Sources get a `source` label of their own; later ones share
/// [`OTHER_SOURCES`].
pub(crate) const MAX_LABELLED_SOURCES: usize = 200;

/// The `source` label of every Source past [`MAX_LABELLED_SOURCES`].
pub(crate) const OTHER_SOURCES: &str = "other";

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

/// Labels of `imgmesh_source_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceRequestLabels {
    /// The Source's id, or [`OTHER_SOURCES`].
    source: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    class: &'static str,
}

/// Labels of `imgmesh_source_derivative_lookups_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLookupLabels {
    /// The Source's id, or [`OTHER_SOURCES`].
    source: String,
    /// `hit`, `miss` or `expired`.
    result: &'static str,
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
    render_limit: Gauge<f64, AtomicU64>,
    renders_shed_locally: Counter,
    source_requests: Family<SourceRequestLabels, Counter>,
    source_lookups: Family<SourceLookupLabels, Counter>,
    /// The Sources with a `source` label of their own.
    labelled_sources: Mutex<HashSet<String>>,
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
            render_limit: metrics.metric(
                "imgmesh_render_limit",
                "Renders asked of the renderer tier at once, learnt from its refusals",
                Gauge::default(),
            ),
            renders_shed_locally: metrics.metric(
                "imgmesh_renders_shed_locally",
                "Misses refused with 503 without a call, at the render limit",
                Counter::default(),
            ),
            admin_auth_refusals: metrics.metric(
                "imgmesh_admin_auth_refusals",
                "Admin API requests refused before authentication, by reason",
                Family::default(),
            ),
            source_requests: metrics.metric(
                "imgmesh_source_requests",
                "Public image requests answered for a known Source, by Source id and status class",
                Family::default(),
            ),
            source_lookups: metrics.metric(
                "imgmesh_source_derivative_lookups",
                "Derivative lookups in Redis, by Source id and result",
                Family::default(),
            ),
            labelled_sources: Mutex::default(),
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

    /// The render limit is now `limit`.
    pub(crate) fn render_limit(&self, limit: f64) {
        self.render_limit.set(limit);
    }

    /// Counts one miss refused without calling the renderer tier.
    pub(crate) fn render_shed_locally(&self) {
        self.renders_shed_locally.inc();
    }

    /// Counts one admin request refused for `reason` (`missing_token`,
    /// `invalid_token` or `rate_limited`).
    pub(crate) fn admin_auth_refused(&self, reason: &'static str) {
        self.admin_auth_refusals
            .get_or_create(&RefusalLabels { reason })
            .inc();
    }

    /// Counts one derivative lookup in Redis for Source `source_id` that
    /// ended as `result`.
    pub(crate) fn derivative_lookup(&self, source_id: &str, result: &'static str) {
        self.cache_lookups
            .get_or_create(&CacheLookupLabels {
                tier: "derivative",
                result,
            })
            .inc();
        self.source_lookups
            .get_or_create(&SourceLookupLabels {
                source: self.source_label(source_id),
                result,
            })
            .inc();
    }

    /// Counts one public image request answered with `status` for Source
    /// `source_id`.
    pub(crate) fn source_request(&self, source_id: &str, status: http::StatusCode) {
        let class = match status.as_u16() {
            500.. => "5xx",
            400..500 => "4xx",
            300..400 => "3xx",
            _ => "2xx",
        };
        self.source_requests
            .get_or_create(&SourceRequestLabels {
                source: self.source_label(source_id),
                class,
            })
            .inc();
    }

    /// The `source` label of `source_id`: the id itself while fewer than
    /// [`MAX_LABELLED_SOURCES`] have one, else [`OTHER_SOURCES`].
    fn source_label(&self, source_id: &str) -> String {
        let mut labelled = self
            .labelled_sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if labelled.contains(source_id) {
            return source_id.to_owned();
        }
        if labelled.len() < MAX_LABELLED_SOURCES && source_id != OTHER_SOURCES {
            labelled.insert(source_id.to_owned());
            return source_id.to_owned();
        }
        OTHER_SOURCES.to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Past MAX_LABELLED_SOURCES distinct ids every new one is `other`; ids
    /// already labelled keep theirs, and an id spelled `other` cannot take
    /// a slot of its own.
    #[test]
    fn source_labels_are_bounded() {
        let metrics = GatewayMetrics {
            http_requests: Family::default(),
            http_duration: imgmesh_metrics::latency_histogram(),
            cache_lookups: Family::default(),
            admin_auth_refusals: Family::default(),
            in_flight: Gauge::default(),
            shed: Counter::default(),
            render_limit: Gauge::default(),
            renders_shed_locally: Counter::default(),
            source_requests: Family::default(),
            source_lookups: Family::default(),
            labelled_sources: Mutex::default(),
        };
        assert_eq!(metrics.source_label(OTHER_SOURCES), OTHER_SOURCES);
        for index in 0..MAX_LABELLED_SOURCES {
            assert_eq!(
                metrics.source_label(&format!("src_{index}")),
                format!("src_{index}")
            );
        }
        assert_eq!(metrics.source_label("src_late"), OTHER_SOURCES);
        assert_eq!(metrics.source_label("src_0"), "src_0");
        metrics.source_request("src_late", http::StatusCode::NOT_FOUND);
        metrics.source_request("src_1", http::StatusCode::OK);
        let late = SourceRequestLabels {
            source: OTHER_SOURCES.to_owned(),
            class: "4xx",
        };
        assert_eq!(metrics.source_requests.get_or_create(&late).get(), 1);
    }
}
