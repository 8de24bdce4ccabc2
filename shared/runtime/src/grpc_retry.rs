//! One retry on another replica for idempotent gRPC calls.
//!
//! [`GrpcChannel`] is what [`grpc_channel`](crate::grpc_channel) returns:
//! a tonic channel (balanced over a target's endpoints, see
//! [`crate::grpc_balance`]) that retries a call once when
//!
//! - its method is idempotent ([`IDEMPOTENT_METHODS`]: render, fetch,
//!   Source lookups, health checks — never a write or an upload), and
//! - it failed before a whole answer came back: the connection was refused
//!   or broke before the end of a unary answer (a replica killed while its
//!   response was on the wire; unary answers are read in full here before
//!   they are passed on, streamed ones are not), or the server answered
//!   `UNAVAILABLE` at once (a replica draining on SIGTERM), and
//! - the channel balances over endpoints that can be told apart (a list, or
//!   a name; one IP address has no other replica to go to), and
//! - the retry budget has a token, and the caller's deadline
//!   (`grpc-timeout`) leaves at least [`MIN_RETRY_TIME`].
//!
//! Before retrying, the channel asks its endpoint task for a probe round
//! (waiting at most [`PROBE_WAIT`]), so an endpoint that stopped accepting
//! is out of the balancer and the retry goes to another replica. The retry
//! carries what is left of the deadline, never more.
//!
//! The budget is Linkerd's and Finagle's: each call deposits a fifth of a
//! token, each retry takes one, and the balance is capped at
//! [`BUDGET_CAP`] tokens (also where it starts), so retries add at most
//! about 20 % to the load once the reserve is spent: a tier that is down
//! for good is not called twice for every request.
//!
//! A duplicated render cannot result: the renderer's single flight and its
//! Redis lease make the second attempt wait for the first one's entry.
//!
//! Metrics: `imgmesh_grpc_client_retries_total{method}` counts retries made,
//! `imgmesh_grpc_client_retries_skipped_total{reason}` those not made
//! (`budget`, `deadline`). Every call, retried or not, is counted once in
//! the grpc-ecosystem client metrics (`grpc_client_started_total`,
//! `grpc_client_handled_total{grpc_code}`, `grpc_client_handling_seconds`;
//! see [`imgmesh_metrics::GrpcClientCall`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::ServiceExt as _;

use crate::grpc_balance::{BalancedService, Prober};

/// Methods a failed call of which may be sent again (`/<service>/<method>`).
pub const IDEMPOTENT_METHODS: &[&str] = &[
    "/imgmesh.renderer.v1.RendererService/Render",
    "/imgmesh.fetcher.v1.FetcherService/FetchObject",
    "/imgmesh.registry.v1.SourceCredentialsService/GetReadAccess",
    "/imgmesh.registry.v1.SourceRegistryService/ResolveHost",
    "/imgmesh.registry.v1.SourceRegistryService/GetSource",
    "/imgmesh.registry.v1.SourceRegistryService/ListSources",
    "/grpc.health.v1.Health/Check",
];

/// Idempotent methods whose answer streams: their responses are passed on
/// as they come, so a failure part way through the stream is not retried.
/// Every other idempotent method is unary: its answer is read in full here,
/// so a connection that breaks while the answer is arriving (a replica
/// killed mid-response) is retried like one that broke before it.
const STREAMING_METHODS: &[&str] = &["/imgmesh.fetcher.v1.FetcherService/FetchObject"];

/// Least time the deadline must leave for a retry to be worth sending.
pub const MIN_RETRY_TIME: Duration = Duration::from_millis(50);

/// Longest wait for the probe round before a retry.
pub const PROBE_WAIT: Duration = Duration::from_millis(600);

/// Most retry tokens saved up (and the starting balance).
pub const BUDGET_CAP: i64 = 10;

/// Largest request body kept for a retry; larger ones are sent once.
const MAX_RETRY_BODY: usize = 64 * 1024;

/// A budget token, in thousandths.
const TOKEN: i64 = 1000;

/// What one call deposits, in thousandths of a token (20 %).
const DEPOSIT: i64 = 200;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A gRPC client channel that retries idempotent calls once on another
/// replica (see the module docs). Cheap to clone; clones share the budget.
#[derive(Clone, Debug)]
pub struct GrpcChannel {
    channel: BalancedService,
    retry: Option<Arc<Retry>>,
}

/// The retry state shared by every clone of one channel.
#[derive(Debug)]
struct Retry {
    prober: Prober,
    /// Tokens in thousandths.
    budget: AtomicI64,
}

// === impl GrpcChannel ===

impl GrpcChannel {
    /// A channel that never retries (one endpoint, or a channel made
    /// elsewhere, e.g. in a test).
    pub fn without_retries(channel: Channel) -> GrpcChannel {
        GrpcChannel {
            channel: BalancedService::new(channel.map_err(BoxError::from)),
            retry: None,
        }
    }

    /// A balanced channel whose failed idempotent calls are retried after a
    /// probe round of `prober`.
    pub(crate) fn balanced(channel: BalancedService, prober: Prober) -> GrpcChannel {
        GrpcChannel {
            channel,
            retry: Some(Arc::new(Retry {
                prober,
                budget: AtomicI64::new(BUDGET_CAP * TOKEN),
            })),
        }
    }
}

impl From<BalancedService> for GrpcChannel {
    fn from(channel: BalancedService) -> GrpcChannel {
        GrpcChannel {
            channel,
            retry: None,
        }
    }
}

impl From<Channel> for GrpcChannel {
    fn from(channel: Channel) -> GrpcChannel {
        GrpcChannel::without_retries(channel)
    }
}

impl tower::Service<http::Request<Body>> for GrpcChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each call waits for the inner channel's readiness itself
        // (`oneshot`), so a retry can too.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        // Counted once in the grpc-ecosystem client metrics, retry or not.
        let metered = imgmesh_metrics::GrpcClientCall::start(request.uri().path());
        let sent: Self::Future = match &self.retry {
            Some(retry) if IDEMPOTENT_METHODS.contains(&request.uri().path()) => {
                Box::pin(retry.clone().call(channel, request))
            }
            _ => Box::pin(channel.oneshot(request)),
        };
        Box::pin(async move {
            match sent.await {
                Ok(response) => Ok(metered.response(response).map(Body::new)),
                Err(error) => {
                    // The status the tonic client turns this error into
                    // (it finds the same one again in the box).
                    let status = tonic::Status::from_error(error);
                    metered.failed(status.code() as i32);
                    Err(BoxError::from(status))
                }
            }
        })
    }
}

// === impl Retry ===

impl Retry {
    /// Sends `request`, and once more after a probe round when it failed
    /// in a way a retry can fix and the budget and deadline allow.
    async fn call(
        self: Arc<Self>,
        channel: BalancedService,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, BoxError> {
        let started = Instant::now();
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        self.deposit();
        let mut first = channel.clone().oneshot(rebuild(&parts, body.clone())).await;
        if !STREAMING_METHODS.contains(&parts.uri.path())
            && let Ok(response) = first
        {
            first = read_in_full(response).await;
        }
        let retryable = match &first {
            Err(_) => true,
            Ok(response) => grpc_status(response) == Some(tonic::Code::Unavailable),
        };
        if !retryable || body.len() > MAX_RETRY_BODY {
            return first;
        }
        let left = |now: Instant| timeout.map(|timeout| timeout.saturating_sub(now - started));
        if left(Instant::now()).is_some_and(|left| left < MIN_RETRY_TIME + MIN_RETRY_TIME) {
            skipped("deadline");
            return first;
        }
        if !self.withdraw() {
            skipped("budget");
            return first;
        }
        let wait = left(Instant::now()).map_or(PROBE_WAIT, |left| {
            PROBE_WAIT.min(left.saturating_sub(MIN_RETRY_TIME))
        });
        self.prober.probe_now(wait).await;
        let mut retry = rebuild(&parts, body);
        if let Some(left) = left(Instant::now()) {
            if left < MIN_RETRY_TIME {
                skipped("deadline");
                return first;
            }
            if let Ok(value) = http::HeaderValue::from_str(&format!("{}m", left.as_millis())) {
                retry.headers_mut().insert("grpc-timeout", value);
            }
        }
        METRICS
            .retries
            .get_or_create(&RetryLabels {
                method: parts.uri.path().to_owned(),
            })
            .inc();
        tracing::debug!(
            method = parts.uri.path(),
            "retrying a failed call on another replica"
        );
        channel.oneshot(retry).await
    }

    fn deposit(&self) {
        let cap = BUDGET_CAP * TOKEN;
        let _ = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| {
                (tokens < cap).then(|| (tokens + DEPOSIT).min(cap))
            });
    }

    fn withdraw(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| {
                (tokens >= TOKEN).then_some(tokens - TOKEN)
            })
            .is_ok()
    }
}

/// The request `parts` with `body`, ready to send.
fn rebuild(parts: &http::request::Parts, body: Bytes) -> http::Request<Body> {
    http::Request::from_parts(
        parts.clone(),
        Body::new(http_body_util::Full::new(body).map_err(|never| match never {})),
    )
}

/// `response` with its body read in full (message and trailers): an error
/// if the connection broke before the end. A trailers-only answer (an
/// error before any message) is passed on as it is.
async fn read_in_full(response: http::Response<Body>) -> Result<http::Response<Body>, BoxError> {
    if response.headers().contains_key("grpc-status") {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.map_err(BoxError::from)?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let mut frames = vec![Ok::<_, std::convert::Infallible>(http_body::Frame::data(
        data,
    ))];
    if let Some(trailers) = trailers {
        frames.push(Ok(http_body::Frame::trailers(trailers)));
    }
    let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
    Ok(http::Response::from_parts(
        parts,
        Body::new(body.map_err(|never| match never {})),
    ))
}

/// The status of a trailers-only response (an error before any message).
fn grpc_status(response: &http::Response<Body>) -> Option<tonic::Code> {
    let value = response.headers().get("grpc-status")?.to_str().ok()?;
    Some(tonic::Code::from_i32(value.parse().ok()?))
}

/// A `grpc-timeout` header value as a duration, per the gRPC over HTTP/2
/// spec: up to 8 digits and a unit, one of `H M S m u n`.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(unit_at);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    /// `/<service>/<method>` (one of [`IDEMPOTENT_METHODS`]).
    method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SkippedLabels {
    /// `budget` or `deadline`.
    reason: &'static str,
}

struct RetryMetrics {
    retries: Family<RetryLabels, Counter>,
    skipped: Family<SkippedLabels, Counter>,
}

static METRICS: LazyLock<RetryMetrics> = LazyLock::new(|| {
    imgmesh_metrics::register(|metrics| RetryMetrics {
        retries: metrics.metric(
            "imgmesh_grpc_client_retries",
            "Failed idempotent gRPC calls sent once more, to another replica",
            Family::default(),
        ),
        skipped: metrics.metric(
            "imgmesh_grpc_client_retries_skipped",
            "Failed idempotent gRPC calls not retried, by reason (budget, deadline)",
            Family::default(),
        ),
    })
});

fn skipped(reason: &'static str) {
    METRICS
        .skipped
        .get_or_create(&SkippedLabels { reason })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unit of `grpc-timeout` parses; malformed values do not.
    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("30S"), Some(Duration::from_secs(30)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "m", "10", "10x", "-1m", "123456789m", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    /// The budget starts with BUDGET_CAP tokens; once spent, five calls
    /// earn one more retry.
    #[tokio::test]
    async fn the_budget_allows_a_fifth_more_calls() {
        let (channel, prober, _task) = crate::grpc_balance::balanced_channel(
            crate::grpc_balance::parse_target("http://127.0.0.1:1,http://127.0.0.1:2").unwrap(),
            crate::Transport::Plaintext,
            crate::grpc_balance::system_resolver(),
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        );
        let GrpcChannel {
            retry: Some(retry), ..
        } = GrpcChannel::balanced(channel, prober)
        else {
            unreachable!()
        };
        for _ in 0..BUDGET_CAP {
            assert!(retry.withdraw());
        }
        assert!(!retry.withdraw(), "the budget is spent");
        for _ in 0..4 {
            retry.deposit();
        }
        assert!(!retry.withdraw(), "four calls earn no retry");
        retry.deposit();
        assert!(retry.withdraw(), "five calls earn one");
        for _ in 0..1000 {
            retry.deposit();
        }
        let saved = (0..100).take_while(|_| retry.withdraw()).count();
        assert_eq!(saved, usize::try_from(BUDGET_CAP).unwrap());
    }
}
