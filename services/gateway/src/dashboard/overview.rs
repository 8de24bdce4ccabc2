//! The Overview page: request rate, derivative cache hit ratio, renders
//! and error responses over the last hour, for the whole gateway or for one
//! Source (picked on the page, `?source=<id>`), drawn as small SVG charts
//! on the server.
//!
//! The numbers are the gateway's own Prometheus counters, read from the
//! process registry ([`imgmesh_metrics::encode`], the text `/metrics`
//! serves) — no Prometheus server needed. A task samples them every
//! [`SAMPLE_EVERY`] into a ring of [`POINTS`] samples (an hour); the page
//! adds one sample taken as it is drawn, so it is never older than the
//! request. A Source's figures come from the counters the image handler
//! keeps per Source id (`imgmesh_source_requests_total`,
//! `imgmesh_source_derivative_lookups_total`); past the first
//! [`MAX_LABELLED_SOURCES`] Sources the process sees, later ones share the
//! `other` series, which the picker then offers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use imgmesh_proto::registry::v1::ListSourcesRequest;

use super::html::{escape, html_response, page};
use super::{Dashboard, LoggedIn};
use crate::admin::registry_call::{call, timed};
use crate::metrics::{MAX_LABELLED_SOURCES, OTHER_SOURCES};

/// How often the counters are sampled.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// Samples kept: an hour at [`SAMPLE_EVERY`].
pub(super) const POINTS: usize = 120;

/// Counters of one scope (the whole gateway, or one Source) at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    /// Public requests answered.
    requests: f64,
    /// Of those, answered with a 4xx or 5xx status.
    errors: f64,
    /// Derivatives answered from Redis.
    hits: f64,
    /// Derivatives left to the renderer (a Redis miss or expired entry).
    renders: f64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Sample {
    /// Unix seconds.
    at: f64,
    /// The whole gateway's.
    all: Counts,
    /// Each Source's, by the `source` label (its id, or `other`).
    by_source: BTreeMap<String, Counts>,
}

// === impl Sample ===

impl Sample {
    /// The counters in an OpenMetrics text at `at`.
    fn parse(text: &str, at: f64) -> Sample {
        let mut sample = Sample {
            at,
            ..Sample::default()
        };
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let label = |wanted: &str| {
                labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(key, _)| *key == wanted)
                    .map(|(_, value)| value.trim_matches('"'))
            };
            let lookup = |counts: &mut Counts| match label("result") {
                Some("hit") => counts.hits += value,
                Some("miss" | "expired") => counts.renders += value,
                _ => {}
            };
            match name {
                "imgmesh_http_requests_total" => {
                    sample.all.requests += value;
                    if label("status").and_then(|status| status.parse::<u16>().ok()) >= Some(400) {
                        sample.all.errors += value;
                    }
                }
                "imgmesh_cache_lookups_total" if label("tier") == Some("derivative") => {
                    lookup(&mut sample.all);
                }
                "imgmesh_source_requests_total" => {
                    let Some(source) = label("source") else {
                        continue;
                    };
                    let counts = sample.by_source.entry(source.to_owned()).or_default();
                    counts.requests += value;
                    if matches!(label("class"), Some("4xx" | "5xx")) {
                        counts.errors += value;
                    }
                }
                "imgmesh_source_derivative_lookups_total" => {
                    let Some(source) = label("source") else {
                        continue;
                    };
                    lookup(sample.by_source.entry(source.to_owned()).or_default());
                }
                _ => {}
            }
        }
        sample
    }

    /// The counters of `source` (`None`: the whole gateway); a Source not
    /// counted yet has zeros.
    fn counts(&self, source: Option<&str>) -> Counts {
        match source {
            None => self.all,
            Some(source) => self.by_source.get(source).copied().unwrap_or_default(),
        }
    }

    /// The process's counters now.
    fn now() -> Sample {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        Sample::parse(&imgmesh_metrics::encode(), at)
    }
}

/// The last [`POINTS`] samples, oldest first.
#[derive(Debug, Default)]
pub(super) struct Ring {
    samples: VecDeque<Sample>,
}

// === impl Ring ===

impl Ring {
    /// Adds `sample`, dropping the oldest past [`POINTS`].
    fn push(&mut self, sample: Sample) {
        if self.samples.len() == POINTS {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Per interval between consecutive samples (and `latest`, when given),
    /// for `source` (`None`: the whole gateway): requests per second, hit
    /// ratio in percent (`None` without lookups), renders and error
    /// responses per minute. A counter that went down (a restart) counts as
    /// starting again from zero.
    fn series(&self, source: Option<&str>, latest: Option<&Sample>) -> Series {
        let samples: Vec<(f64, Counts)> = self
            .samples
            .iter()
            .chain(latest)
            .map(|sample| (sample.at, sample.counts(source)))
            .collect();
        let mut series = Series::default();
        for pair in samples.windows(2) {
            let ((then, before), (now, after)) = (pair[0], pair[1]);
            let seconds = (now - then).max(1.0);
            let delta = |now: f64, then: f64| if now >= then { now - then } else { now };
            let hits = delta(after.hits, before.hits);
            let renders = delta(after.renders, before.renders);
            series
                .request_rate
                .push(delta(after.requests, before.requests) / seconds);
            series
                .hit_ratio
                .push((hits + renders > 0.0).then(|| 100.0 * hits / (hits + renders)));
            series.renders.push(renders * 60.0 / seconds);
            series
                .errors
                .push(delta(after.errors, before.errors) * 60.0 / seconds);
        }
        series
    }
}

/// The charts' values, one per interval, oldest first.
#[derive(Debug, Default, PartialEq)]
struct Series {
    request_rate: Vec<f64>,
    hit_ratio: Vec<Option<f64>>,
    renders: Vec<f64>,
    errors: Vec<f64>,
}

/// The shared ring of samples.
pub(super) type Samples = Arc<Mutex<Ring>>;

/// Starts sampling into a new ring when a Tokio runtime runs this thread
/// (the admin listener's router is built in one); the task ends once the
/// ring is dropped with the router.
pub(super) fn start_sampling() -> Samples {
    let samples = Samples::default();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let weak: Weak<Mutex<Ring>> = Arc::downgrade(&samples);
        runtime.spawn(async move {
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            loop {
                every.tick().await;
                let Some(samples) = weak.upgrade() else {
                    return;
                };
                imgmesh_runtime::lock(&samples).push(Sample::now());
            }
        });
    }
    samples
}

/// Chart size in SVG units.
const CHART_WIDTH: f64 = 240.0;
const CHART_HEIGHT: f64 = 60.0;

/// A small line chart of `values` (`None`: no value in that interval, a gap)
/// over the hour's [`POINTS`] slots, right-aligned so the newest is at the
/// right edge, with its range in the accessible name. No script, no style:
/// presentation attributes only, as the CSP allows.
fn chart(id: &str, title: &str, unit: &str, values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { max } else { 1.0 };
    let step = CHART_WIDTH / (POINTS - 1) as f64;
    let first_slot = POINTS.saturating_sub(values.len());
    let mut lines = Vec::new();
    let mut line = String::new();
    for (index, value) in values.iter().enumerate() {
        match value {
            Some(value) => {
                let x = (first_slot + index) as f64 * step;
                let y = CHART_HEIGHT - value / scale * (CHART_HEIGHT - 2.0) - 1.0;
                let _ = write!(line, "{x:.1},{y:.1} ");
            }
            None if !line.is_empty() => lines.push(std::mem::take(&mut line)),
            None => {}
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    let latest = values.last().copied().flatten();
    let summary = match latest {
        Some(latest) => format!("latest {latest:.2} {unit}, highest {max:.2} {unit}"),
        None => "no data yet".to_owned(),
    };
    let mut svg = format!(
        "<figure class=\"chart\" id=\"{id}\"><figcaption>{title}: <span class=\"chart-summary\">\
         {summary}</span></figcaption>\
         <svg viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" width=\"{CHART_WIDTH}\" \
         height=\"{CHART_HEIGHT}\" role=\"img\" aria-label=\"{title}: {summary}\">\
         <line x1=\"0\" y1=\"{bottom}\" x2=\"{CHART_WIDTH}\" y2=\"{bottom}\" \
         stroke=\"#999\" stroke-width=\"1\"/>",
        id = escape(id),
        title = escape(title),
        summary = escape(&summary),
        bottom = CHART_HEIGHT - 0.5,
    );
    for points in lines {
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.trim_end()
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// `GET /ui/overview[?source=<id>]`: the charts, of the whole gateway or of
/// one Source, with a picker of the Sources.
pub(super) async fn overview(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let picked = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "source")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty());
    // The picker names the Sources; without the registry it offers the
    // ids the counters know.
    let mut sources: Vec<(String, String)> = match call(
        dashboard
            .admin
            .registry()
            .list_sources(timed(ListSourcesRequest {})),
    )
    .await
    {
        Ok(listed) => listed
            .sources
            .into_iter()
            .map(|source| (source.id, source.name))
            .collect(),
        Err(_) => Vec::new(),
    };
    let latest = Sample::now();
    for id in latest.by_source.keys() {
        if !sources.iter().any(|(known, _)| known == id) {
            let name = if id == OTHER_SOURCES {
                format!("Other Sources (past the first {MAX_LABELLED_SOURCES})")
            } else {
                id.clone()
            };
            sources.push((id.clone(), name));
        }
    }
    sources.sort_by(|a, b| a.1.cmp(&b.1));
    // A Source picked by name is shown by its id.
    let picked = picked.map(|picked| {
        sources
            .iter()
            .find(|(id, name)| *id == picked || *name == picked)
            .map_or(picked, |(id, _)| id.clone())
    });
    let series = imgmesh_runtime::lock(&dashboard.samples).series(picked.as_deref(), Some(&latest));
    let name = picked.as_ref().map(|picked| {
        sources
            .iter()
            .find(|(id, _)| id == picked)
            .map_or(picked.as_str(), |(_, name)| name.as_str())
    });
    let mut options = format!(
        "<option value=\"\"{}>All Sources (the whole gateway)</option>",
        if picked.is_none() { " selected" } else { "" }
    );
    for (id, source_name) in &sources {
        let _ = write!(
            options,
            "<option value=\"{id}\"{selected}>{name}</option>",
            id = escape(id),
            selected = if picked.as_ref() == Some(id) {
                " selected"
            } else {
                ""
            },
            name = escape(source_name),
        );
    }
    let scope = match name {
        Some(name) => format!(
            "Source <strong id=\"overview-scope\">{}</strong>: its image requests on this \
             gateway process",
            escape(name)
        ),
        None => "<strong id=\"overview-scope\">all Sources together</strong>".to_owned(),
    };
    let some = |values: &[f64]| values.iter().copied().map(Some).collect::<Vec<_>>();
    let main = format!(
        "<h1>Overview</h1>\
         <form method=\"get\" action=\"/ui/overview\" class=\"inline\" id=\"overview-picker\">\
         <label for=\"overview-source\">Source</label>\
         <select id=\"overview-source\" name=\"source\">{options}</select>\
         <button type=\"submit\" id=\"overview-show\">Show</button></form>\
         <p class=\"hint\">The last hour of {scope}, sampled every {every} s \
         from its own metrics. Renders are derivatives the renderer \
         made or revalidated after Redis had no fresh copy; the hit ratio is of Redis \
         lookups. Each Source is counted by its id for the first {cap} Sources the \
         process sees; later ones are counted together as \u{201c}other\u{201d}.</p>\
         <div class=\"charts\">{requests}{ratio}{renders}{errors}</div>",
        every = SAMPLE_EVERY.as_secs(),
        cap = MAX_LABELLED_SOURCES,
        requests = chart(
            "chart-requests",
            "Requests",
            "per second",
            &some(&series.request_rate)
        ),
        ratio = chart("chart-hit-ratio", "Cache hit ratio", "%", &series.hit_ratio),
        renders = chart(
            "chart-renders",
            "Renders",
            "per minute",
            &some(&series.renders)
        ),
        errors = chart(
            "chart-errors",
            "Error responses (4xx and 5xx)",
            "per minute",
            &some(&series.errors)
        ),
    );
    let title = name.map_or_else(|| "Overview".to_owned(), |name| format!("Overview: {name}"));
    html_response(StatusCode::OK, page(&title, Some(&session.csrf), &main))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE imgmesh_http_requests counter\n\
        imgmesh_http_requests_total{status=\"200\"} 10\n\
        imgmesh_http_requests_total{status=\"404\"} 2\n\
        imgmesh_http_requests_total{status=\"502\"} 1\n\
        imgmesh_cache_lookups_total{tier=\"source\",result=\"hit\"} 99\n\
        imgmesh_cache_lookups_total{tier=\"derivative\",result=\"hit\"} 6\n\
        imgmesh_cache_lookups_total{tier=\"derivative\",result=\"miss\"} 3\n\
        imgmesh_cache_lookups_total{tier=\"derivative\",result=\"expired\"} 1\n\
        imgmesh_source_requests_total{source=\"src_a\",class=\"2xx\"} 8\n\
        imgmesh_source_requests_total{source=\"src_a\",class=\"4xx\"} 2\n\
        imgmesh_source_requests_total{source=\"other\",class=\"5xx\"} 1\n\
        imgmesh_source_derivative_lookups_total{source=\"src_a\",result=\"hit\"} 6\n\
        imgmesh_source_derivative_lookups_total{source=\"src_a\",result=\"expired\"} 1\n\
        imgmesh_http_request_duration_seconds_sum 0.5\n";

    fn counts(requests: f64, errors: f64, hits: f64, renders: f64) -> Counts {
        Counts {
            requests,
            errors,
            hits,
            renders,
        }
    }

    /// The sums of the OpenMetrics text: every status for requests, 4xx
    /// and 5xx for errors, only the derivative tier for hits and renders;
    /// per Source from the per-Source counters, `other` among them.
    #[test]
    fn reads_the_counters() {
        let sample = Sample::parse(TEXT, 7.0);
        assert_eq!(sample.at, 7.0);
        assert_eq!(sample.all, counts(13.0, 3.0, 6.0, 4.0));
        assert_eq!(sample.counts(Some("src_a")), counts(10.0, 2.0, 6.0, 1.0));
        assert_eq!(sample.counts(Some("other")), counts(1.0, 1.0, 0.0, 0.0));
        assert_eq!(sample.counts(Some("src_unseen")), Counts::default());
        assert_eq!(sample.by_source.len(), 2);
    }

    /// The ring keeps the newest POINTS samples; series are per-interval
    /// rates, a counter reset starts again from zero, and an interval
    /// without lookups has no hit ratio; a Source's series reads its own
    /// counters, zero before it first appears.
    #[test]
    fn ring_keeps_an_hour_of_rates() {
        let mut ring = Ring::default();
        for index in 0..POINTS + 5 {
            ring.push(Sample {
                at: index as f64 * 30.0,
                all: counts(index as f64 * 60.0, 0.0, 0.0, 0.0),
                ..Sample::default()
            });
        }
        assert_eq!(ring.samples.len(), POINTS);
        assert_eq!(ring.samples[0].at, 150.0);
        let series = ring.series(None, None);
        assert_eq!(series.request_rate.len(), POINTS - 1);
        assert!(series.request_rate.iter().all(|&rate| rate == 2.0));
        assert!(series.hit_ratio.iter().all(Option::is_none));

        let mut ring = Ring::default();
        let at = |at: f64, all: Counts, source: Option<Counts>| Sample {
            at,
            all,
            by_source: source
                .map(|counts| ("src_a".to_owned(), counts))
                .into_iter()
                .collect(),
        };
        ring.push(at(0.0, counts(100.0, 0.0, 0.0, 0.0), None));
        ring.push(at(
            30.0,
            counts(130.0, 0.0, 3.0, 1.0),
            Some(counts(15.0, 3.0, 1.0, 1.0)),
        ));
        let latest = at(
            60.0,
            counts(6.0, 0.0, 3.0, 1.0),
            Some(counts(45.0, 3.0, 1.0, 1.0)),
        );
        let series = ring.series(None, Some(&latest));
        assert_eq!(series.request_rate, vec![1.0, 0.2]);
        assert_eq!(series.hit_ratio, vec![Some(75.0), None]);
        assert_eq!(series.renders, vec![2.0, 0.0]);
        let source = ring.series(Some("src_a"), Some(&latest));
        assert_eq!(source.request_rate, vec![0.5, 1.0]);
        assert_eq!(source.hit_ratio, vec![Some(50.0), None]);
        assert_eq!(source.errors, vec![6.0, 0.0]);
        let other = ring.series(Some("src_b"), Some(&latest));
        assert_eq!(other.request_rate, vec![0.0, 0.0]);
    }

    /// The chart is right-aligned (the newest value at the right edge), the
    /// highest value touches the top, a missing value breaks the line, and
    /// the accessible name carries the figures.
    #[test]
    fn chart_draws_the_values() {
        let svg = chart("c", "Requests", "per second", &[Some(1.0), Some(2.0)]);
        assert!(svg.contains("points=\"238.0,30.0 240.0,1.0\""), "{svg}");
        assert!(
            svg.contains(
                "aria-label=\"Requests: latest 2.00 per second, highest 2.00 per second\""
            )
        );
        assert!(!svg.contains("style"), "no inline style under the CSP");
        let gapped = chart("c", "Ratio", "%", &[Some(1.0), None, Some(1.0)]);
        assert_eq!(gapped.matches("<polyline").count(), 2);
        let empty = chart("c", "<b>", "x", &[]);
        assert!(empty.contains("no data yet"));
        assert!(empty.contains("&lt;b&gt;"));
        assert!(!empty.contains("<polyline"));
    }
}
