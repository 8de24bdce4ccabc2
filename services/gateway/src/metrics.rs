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

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Instant;

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

/// One Source's series of `imgmesh_source_requests_total` and
/// `imgmesh_source_derivative_lookups_total`, resolved once per Source
/// (see [`GatewayMetrics::source_series`]) so that counting builds no
/// label and looks nothing up in the families. Each series is created in
/// its family on its first count, as a lookup there would, so a Source
/// exports only the classes and results it has seen.
#[derive(Debug)]
pub(crate) struct SourceSeries {
    /// The `source` label: the Source's id, or [`OTHER_SOURCES`].
    source: String,
    /// Requests by status class: `2xx`, `3xx`, `4xx`, `5xx`.
    requests: [OnceLock<Counter>; 4],
    /// Derivative lookups: `hit`, `miss`, `expired`.
    lookups: [OnceLock<Counter>; 3],
    /// The same results in `imgmesh_cache_lookups_total{tier="derivative"}`.
    all_lookups: [Counter; 3],
    request_family: Family<SourceRequestLabels, Counter>,
    lookup_family: Family<SourceLookupLabels, Counter>,
}

/// The status classes of [`SourceSeries::requests`], in order.
const STATUS_CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// The results of a derivative lookup, in the order of
/// [`SourceSeries::lookups`] and `GatewayMetrics::derivative_lookups`.
const DERIVATIVE_RESULTS: [&str; 3] = ["hit", "miss", "expired"];

/// How a derivative lookup in Redis ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerivativeLookup {
    /// A fresh entry (or hot copy) answered.
    Hit = 0,
    /// Nothing under the key: the renderer is asked.
    Miss = 1,
    /// An entry past its lifetime: the renderer revalidates it.
    Expired = 2,
}

// === impl SourceSeries ===

impl SourceSeries {
    /// Counts one public image request answered with `status`.
    pub(crate) fn request(&self, status: http::StatusCode) {
        let class = match status.as_u16() {
            500.. => 3,
            400..500 => 2,
            300..400 => 1,
            _ => 0,
        };
        self.requests[class]
            .get_or_init(|| {
                self.request_family
                    .get_or_create(&SourceRequestLabels {
                        source: self.source.clone(),
                        class: STATUS_CLASSES[class],
                    })
                    .clone()
            })
            .inc();
    }

    /// Counts one derivative lookup in Redis that ended as `result`, here
    /// and in the all-Sources `imgmesh_cache_lookups_total`.
    pub(crate) fn derivative_lookup(&self, result: DerivativeLookup) {
        let index = result as usize;
        self.all_lookups[index].inc();
        self.lookups[index]
            .get_or_init(|| {
                self.lookup_family
                    .get_or_create(&SourceLookupLabels {
                        source: self.source.clone(),
                        result: DERIVATIVE_RESULTS[index],
                    })
                    .clone()
            })
            .inc();
    }
}

/// The metric handles; updating them needs no lock.
#[derive(Debug)]
pub(crate) struct GatewayMetrics {
    http_requests: Family<StatusLabels, Counter>,
    http_duration: Histogram,
    /// `imgmesh_cache_lookups_total`'s series for `tier="source"`: hit,
    /// miss, stale (the registry holds the family).
    source_cache_lookups: [Counter; 3],
    /// Its series for `tier="derivative"`, in the order of
    /// [`DERIVATIVE_RESULTS`].
    derivative_lookups: [Counter; 3],
    /// `http_requests`' series for the statuses a hit answers with (200,
    /// 304), resolved once.
    common_statuses: [(u16, Counter); 2],
    admin_auth_refusals: Family<RefusalLabels, Counter>,
    in_flight: Gauge,
    shed: Counter,
    render_limit: Gauge<f64, AtomicU64>,
    renders_shed_locally: Counter,
    source_requests: Family<SourceRequestLabels, Counter>,
    source_lookups: Family<SourceLookupLabels, Counter>,
    /// The Sources with a `source` label of their own, and their series.
    labelled_sources: Mutex<HashMap<String, Arc<SourceSeries>>>,
    /// The series every Source past [`MAX_LABELLED_SOURCES`] shares.
    other_sources: OnceLock<Arc<SourceSeries>>,
}

// === impl GatewayMetrics ===

impl GatewayMetrics {
    fn register() -> GatewayMetrics {
        let metrics = imgmesh_metrics::register(|metrics| {
            let http_requests: Family<StatusLabels, Counter> = metrics.metric(
                "imgmesh_http_requests",
                "Public HTTP requests answered, by status code",
                Family::default(),
            );
            let cache_lookups: Family<CacheLookupLabels, Counter> = metrics.metric(
                "imgmesh_cache_lookups",
                "Cache lookups, by cache tier and result",
                Family::default(),
            );
            // Every result starts at 0, so rates work from the first scrape
            // (and dashboards see the derivative series without Redis).
            let source_cache_lookups = [SourceLookup::Hit, SourceLookup::Miss, SourceLookup::Stale]
                .map(|lookup| {
                    cache_lookups
                        .get_or_create(&CacheLookupLabels::source(lookup))
                        .clone()
                });
            let derivative_lookups = DERIVATIVE_RESULTS.map(|result| {
                cache_lookups
                    .get_or_create(&CacheLookupLabels {
                        tier: "derivative",
                        result,
                    })
                    .clone()
            });
            let common_statuses = [200, 304].map(|status| {
                let counter = http_requests
                    .get_or_create(&StatusLabels { status })
                    .clone();
                (status, counter)
            });
            GatewayMetrics {
                http_requests,
                http_duration: metrics.metric_with_unit(
                    "imgmesh_http_request_duration",
                    "Time from a public HTTP request's arrival to its response",
                    Unit::Seconds,
                    imgmesh_metrics::latency_histogram(),
                ),
                source_cache_lookups,
                derivative_lookups,
                common_statuses,
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
                other_sources: OnceLock::new(),
            }
        });
        imgmesh_derivative_cache::register_metrics();
        metrics
    }

    /// Counts one source cache lookup.
    pub(crate) fn source_lookup(&self, lookup: SourceLookup) {
        let index = match lookup {
            SourceLookup::Hit => 0,
            SourceLookup::Miss => 1,
            SourceLookup::Stale => 2,
        };
        self.source_cache_lookups[index].inc();
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

    /// The series of Source `source_id` (see [`SourceSeries`]): its own
    /// while fewer than [`MAX_LABELLED_SOURCES`] have one, else the one
    /// they share. One lock and no allocation once the Source has been
    /// seen; resolve it once per request.
    pub(crate) fn source_series(&self, source_id: &str) -> Arc<SourceSeries> {
        let mut labelled = self
            .labelled_sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(series) = labelled.get(source_id) {
            return series.clone();
        }
        if labelled.len() < MAX_LABELLED_SOURCES && source_id != OTHER_SOURCES {
            let series = Arc::new(self.resolve_series(source_id));
            labelled.insert(source_id.to_owned(), series.clone());
            return series;
        }
        drop(labelled);
        self.other_sources
            .get_or_init(|| Arc::new(self.resolve_series(OTHER_SOURCES)))
            .clone()
    }

    /// The series labelled `source`.
    fn resolve_series(&self, source: &str) -> SourceSeries {
        SourceSeries {
            source: source.to_owned(),
            requests: Default::default(),
            lookups: Default::default(),
            all_lookups: self.derivative_lookups.clone(),
            request_family: self.source_requests.clone(),
            lookup_family: self.source_lookups.clone(),
        }
    }

    /// Counts one public request answered with `status` (a hit's 200 and
    /// 304 without a lookup in the family).
    fn http_request(&self, status: http::StatusCode) {
        let status = status.as_u16();
        match self
            .common_statuses
            .iter()
            .find(|(common, _)| *common == status)
        {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                self.http_requests
                    .get_or_create(&StatusLabels { status })
                    .inc();
            }
        }
    }
}

/// Registers the gateway's metrics now rather than on the first request, so
/// a scrape before any traffic already shows them.
pub(crate) fn register() {
    LazyLock::force(&METRICS);
}

/// A step of every public request: counts and times its `response`.
pub(crate) async fn count_request(response: impl Future<Output = Response>) -> Response {
    let started = Instant::now();
    let response = response.await;
    METRICS
        .http_duration
        .observe(started.elapsed().as_secs_f64());
    METRICS.http_request(response.status());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the exported series `series` (name and labels as
    /// `GET /metrics` writes them).
    fn exported(series: &str) -> u64 {
        let text = imgmesh_metrics::encode();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} is not exported:\n{text}"))
    }

    /// Past MAX_LABELLED_SOURCES distinct ids every new one is `other`; ids
    /// already labelled keep theirs, and an id spelled `other` cannot take
    /// a slot of its own.
    #[test]
    fn source_labels_are_bounded() {
        let metrics = GatewayMetrics {
            http_requests: Family::default(),
            http_duration: imgmesh_metrics::latency_histogram(),
            source_cache_lookups: Default::default(),
            derivative_lookups: Default::default(),
            common_statuses: Default::default(),
            admin_auth_refusals: Family::default(),
            in_flight: Gauge::default(),
            shed: Counter::default(),
            render_limit: Gauge::default(),
            renders_shed_locally: Counter::default(),
            source_requests: Family::default(),
            source_lookups: Family::default(),
            labelled_sources: Mutex::default(),
            other_sources: OnceLock::new(),
        };
        let ok = http::StatusCode::OK;
        let answered = |label: &str| {
            metrics
                .source_requests
                .get_or_create(&SourceRequestLabels {
                    source: label.to_owned(),
                    class: "2xx",
                })
                .get()
        };
        metrics.source_series(OTHER_SOURCES).request(ok);
        assert_eq!(answered(OTHER_SOURCES), 1);
        for index in 0..MAX_LABELLED_SOURCES {
            let id = format!("src_{index}");
            metrics.source_series(&id).request(ok);
            assert_eq!(answered(&id), 1);
        }
        metrics.source_series("src_late").request(ok);
        assert_eq!(answered(OTHER_SOURCES), 2);
        assert_eq!(answered("src_late"), 0);
        metrics.source_series("src_0").request(ok);
        assert_eq!(answered("src_0"), 2);
        metrics
            .source_series("src_late")
            .request(http::StatusCode::NOT_FOUND);
        let late = SourceRequestLabels {
            source: OTHER_SOURCES.to_owned(),
            class: "4xx",
        };
        assert_eq!(metrics.source_requests.get_or_create(&late).get(), 1);
    }

    /// The handles resolved ahead (a Source's series, the tiers' lookups,
    /// the common statuses) count in the exported families, under the
    /// labels a lookup in the family would have used.
    #[test]
    fn resolved_handles_count_in_the_families() {
        let series = METRICS.source_series("src_handles");
        let derivative_expired =
            || exported(r#"imgmesh_cache_lookups_total{tier="derivative",result="expired"}"#);
        let before = derivative_expired();
        series.derivative_lookup(DerivativeLookup::Expired);
        series.request(http::StatusCode::NOT_MODIFIED);
        series.request(http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(derivative_expired(), before + 1);
        let lookups = SourceLookupLabels {
            source: "src_handles".to_owned(),
            result: "expired",
        };
        assert_eq!(METRICS.source_lookups.get_or_create(&lookups).get(), 1);
        for (class, count) in [("2xx", 0), ("3xx", 1), ("5xx", 1)] {
            let labels = SourceRequestLabels {
                source: "src_handles".to_owned(),
                class,
            };
            assert_eq!(METRICS.source_requests.get_or_create(&labels).get(), count);
        }

        let source_stale =
            || exported(r#"imgmesh_cache_lookups_total{tier="source",result="stale"}"#);
        let before = source_stale();
        METRICS.source_lookup(SourceLookup::Stale);
        assert_eq!(source_stale(), before + 1);

        let status = |status: u16| {
            METRICS
                .http_requests
                .get_or_create(&StatusLabels { status })
                .get()
        };
        let (ok, not_modified, teapot) = (status(200), status(304), status(418));
        METRICS.http_request(http::StatusCode::OK);
        METRICS.http_request(http::StatusCode::NOT_MODIFIED);
        METRICS.http_request(http::StatusCode::IM_A_TEAPOT);
        assert_eq!(
            (status(200), status(304), status(418)),
            (ok + 1, not_modified + 1, teapot + 1)
        );
    }
}
