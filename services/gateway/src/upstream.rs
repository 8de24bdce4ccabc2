//! The gateway's two gRPC peers: the source registry (host → Source) and the
//! renderer. Every call carries the current trace context, has a deadline,
//! runs in its own client span and comes back as a [`GatewayError`] on failure.

use std::future::Future;
use std::time::Duration;

use imgmesh_errors::{ErrorCode, MEMORY_SHORTAGE, PublicError, SHORTAGE_KEY};
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::registry::v1::{
    ApiKey, AuthenticateApiKeyRequest, GetSourceRequest, ResolveHostRequest, ResolveHostResponse,
    Source,
};
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_proto::renderer::v1::{
    MeasureRequest, MeasureResponse, RenderBytesRequest, RenderRequest, RenderResponse,
    RenderSetRequest,
};
use imgmesh_runtime::GrpcChannel;
use imgmesh_telemetry::TraceContextInterceptor;
use tonic::service::interceptor::InterceptedService;
use tracing::Instrument as _;

use crate::error::GatewayError;
use crate::host_routing::SourceHost;

use crate::signing::SigningKey;
use crate::source_cache::{Lookup, ResolvedSource};

mod render_limit;

use render_limit::{Answer, RenderLimit};

tokio::task_local! {
    /// The HTTP/1 client connection (its peer address) a public request
    /// came on, set around each request's handling by the public listener
    /// (`http_listener`). A connection carries one request at a time, so a
    /// refused miss is counted in the render limit's demand by its
    /// connection: a client that moves on to its next URL after a 503 is
    /// one client waiting, not a new one per URL. Unset (HTTP/2, whose one
    /// connection carries many requests at once, and the gRPC API), a
    /// refused miss counts by what it asks for ([`demand_key`]).
    pub(crate) static HTTP1_CLIENT: std::net::SocketAddr;
}

/// Deadline for a host lookup in the registry.
pub(crate) const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time the gateway waits past a deadline it sent, so the peer's own
/// deadline error (with its message) usually wins over ours.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// A gRPC channel whose calls carry the current span's trace context.
pub(crate) type TracedChannel = InterceptedService<GrpcChannel, TraceContextInterceptor>;

/// Clients for the registry and the renderer (cheap to clone: they share
/// one HTTP/2 connection per peer, which reconnects on its own).
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    registry: SourceRegistryServiceClient<TracedChannel>,
    renderer: RendererServiceClient<TracedChannel>,
    /// Deadline for a render, sent to the renderer as `grpc-timeout`
    /// (`--render-timeout-ms`).
    render_timeout: Duration,
    /// The renders asked of the renderer tier at once, learnt from its
    /// refusals (see the `render_limit` module).
    render_limit: RenderLimit,
}

/// The request metadata asking the renderer to start a render at once or
/// refuse it, never queue it (the renderer's `grpc` module reads the same
/// name and value): sent for renders started during a storm
/// ([`render_limit::RenderPermit::start_now`]).
const ADMISSION_METADATA: &str = "imgmesh-admission";

/// [`ADMISSION_METADATA`]'s value: start at once or refuse.
const START_NOW: &str = "start-now";

/// The most renders one gateway asks of the renderer tier at once: the
/// render limit's start and ceiling (the default `--max-in-flight`).
const MAX_RENDERS_IN_FLIGHT: usize = 1024;

/// Largest Render response the gateway accepts. tonic's 4 MiB default is too
/// small for big outputs (an 8192 px PNG can reach tens of MiB); this still
/// bounds what one response may make the gateway buffer.
const MAX_DERIVATIVE_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

// === impl Upstream ===

impl Upstream {
    /// Clients over lazily connecting channels; renders get `render_timeout`.
    pub(crate) fn new(
        registry: GrpcChannel,
        renderer: GrpcChannel,
        render_timeout: Duration,
    ) -> Upstream {
        Upstream {
            registry: SourceRegistryServiceClient::with_interceptor(
                registry,
                TraceContextInterceptor,
            ),
            renderer: RendererServiceClient::with_interceptor(renderer, TraceContextInterceptor)
                .max_decoding_message_size(MAX_DERIVATIVE_MESSAGE_BYTES),
            render_timeout,
            render_limit: RenderLimit::new(MAX_RENDERS_IN_FLIGHT),
        }
    }

    /// Asks the registry which Source serves `host`: by its subdomain, or
    /// by an exact custom domain for hosts outside the base domain.
    pub(crate) async fn resolve_host(&self, host: &SourceHost) -> Result<Lookup, GatewayError> {
        let mut client = self.registry.clone();
        let mut request = tonic::Request::new(ResolveHostRequest {
            host: host.as_str().to_owned(),
            custom_domain: host.is_custom_domain(),
        });
        request.set_timeout(RESOLVE_TIMEOUT);
        match with_deadline("registry", RESOLVE_TIMEOUT, client.resolve_host(request)).await {
            Ok(response) => Ok(lookup_of(response.into_inner())),
            Err(GatewayError::Upstream {
                code: ErrorCode::SourceNotFound | ErrorCode::ObjectNotFound,
                ..
            }) => Ok(Lookup::Unknown),
            Err(GatewayError::Upstream {
                code: ErrorCode::SourceDisabled,
                ..
            }) => Ok(Lookup::Disabled),
            Err(error) => Err(error),
        }
    }

    /// The deadline of a render (`--render-timeout-ms`).
    pub(crate) fn render_timeout(&self) -> Duration {
        self.render_timeout
    }

    /// The Source whose id or name is `id_or_name`; `None` when there is none.
    pub(crate) async fn get_source(
        &self,
        id_or_name: &str,
    ) -> Result<Option<Source>, GatewayError> {
        let mut client = self.registry.clone();
        let mut request = tonic::Request::new(GetSourceRequest {
            id_or_name: id_or_name.to_owned(),
        });
        request.set_timeout(RESOLVE_TIMEOUT);
        match with_deadline("registry", RESOLVE_TIMEOUT, client.get_source(request)).await {
            Ok(response) => Ok(response.into_inner().source),
            Err(GatewayError::Upstream {
                code: ErrorCode::SourceNotFound,
                ..
            }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The live API key whose secret is `secret`; `None` for an unknown or
    /// revoked one.
    pub(crate) async fn authenticate_api_key(
        &self,
        secret: &str,
    ) -> Result<Option<ApiKey>, GatewayError> {
        let mut client = self.registry.clone();
        let mut request = tonic::Request::new(AuthenticateApiKeyRequest {
            secret: secret.to_owned(),
        });
        request.set_timeout(RESOLVE_TIMEOUT);
        let response = with_deadline(
            "registry",
            RESOLVE_TIMEOUT,
            client.authenticate_api_key(request),
        )
        .await?;
        Ok(response.into_inner().api_key)
    }

    /// Renders a derivative within `--render-timeout-ms`, in a
    /// `renderer.render` span.
    pub(crate) async fn render(
        &self,
        render: RenderRequest,
    ) -> Result<RenderResponse, GatewayError> {
        self.render_within(render, self.render_timeout).await
    }

    /// Renders a derivative within `timeout` (sent to the renderer as its
    /// deadline), in a `renderer.render` span. Refused here as overloaded,
    /// without a call, while the renderer tier's learnt limit of renders
    /// is in flight (the `render_limit` module).
    pub(crate) async fn render_within(
        &self,
        render: RenderRequest,
        timeout: Duration,
    ) -> Result<RenderResponse, GatewayError> {
        let Some(permit) = self.render_limit.try_start() else {
            if let Some(pace) = self.render_limit.note_refused(refusal_key(&render)) {
                tokio::time::sleep(pace).await;
            }
            return Err(GatewayError::Overloaded);
        };
        let (rendered, answer) = self.call_render(render, timeout, permit.start_now()).await;
        permit.finished(answer);
        rendered
    }

    /// One Render call within `timeout`, in a `renderer.render` span;
    /// with `start_now`, the renderer is asked to start it at once or
    /// refuse it. Returns what the answer teaches the learnt limit beside
    /// the answer.
    async fn call_render(
        &self,
        render: RenderRequest,
        timeout: Duration,
        start_now: bool,
    ) -> (Result<RenderResponse, GatewayError>, Answer) {
        let span = tracing::info_span!(
            "renderer.render",
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = "imgmesh.renderer.v1.RendererService",
            rpc.method = "Render",
            imgmesh.source_id = %render.source_id,
            imgmesh.cache_hit = tracing::field::Empty,
        );
        let mut client = self.renderer.clone();
        let request = render_request(render, timeout, start_now);
        let mut answer = Answer::Taken;
        let call = async {
            let response = client.render(request).await;
            if let Err(status) = &response {
                answer = limit_answer(status);
            }
            response
        };
        let rendered = with_deadline("renderer", timeout, call)
            .instrument(span.clone())
            .await
            .map(|response| {
                let response = response.into_inner();
                span.record("imgmesh.cache_hit", response.cache_hit);
                response
            });
        (rendered, answer)
    }
}

// === impl Upstream: the public API's renders ===

impl Upstream {
    /// Renders several derivatives of one original within `timeout`, in a
    /// `renderer.render_set` span: one response per plan, in order.
    pub(crate) async fn render_set_within(
        &self,
        set: RenderSetRequest,
        timeout: Duration,
    ) -> Result<Vec<RenderResponse>, GatewayError> {
        let span = tracing::info_span!(
            "renderer.render_set",
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = "imgmesh.renderer.v1.RendererService",
            rpc.method = "RenderSet",
            imgmesh.source_id = %set.source_id,
        );
        let mut client = self.renderer.clone();
        let mut request = tonic::Request::new(set);
        request.set_timeout(timeout);
        let collect = async move {
            let mut stream = client.render_set(request).await?.into_inner();
            let mut derivatives = Vec::new();
            while let Some(message) = stream.message().await? {
                derivatives.extend(message.derivative);
            }
            Ok(tonic::Response::new(derivatives))
        };
        let response = with_deadline("renderer", timeout, collect)
            .instrument(span)
            .await?;
        Ok(response.into_inner())
    }

    /// Measures what a render would output (from the original's header,
    /// nothing rendered) within `timeout`, in a `renderer.measure` span.
    pub(crate) async fn measure_within(
        &self,
        measure: MeasureRequest,
        timeout: Duration,
    ) -> Result<MeasureResponse, GatewayError> {
        let span = tracing::info_span!(
            "renderer.measure",
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = "imgmesh.renderer.v1.RendererService",
            rpc.method = "Measure",
            imgmesh.source_id = %measure.source_id,
        );
        let mut client = self.renderer.clone();
        let mut request = tonic::Request::new(measure);
        request.set_timeout(timeout);
        let response = with_deadline("renderer", timeout, client.measure(request))
            .instrument(span)
            .await?;
        Ok(response.into_inner())
    }

    /// Renders the original `messages` stream (a plan, then chunks) within
    /// `timeout`, in a `renderer.render_bytes` span.
    pub(crate) async fn render_bytes_within(
        &self,
        messages: impl tokio_stream::Stream<Item = RenderBytesRequest> + Send + 'static,
        timeout: Duration,
    ) -> Result<RenderResponse, GatewayError> {
        let span = tracing::info_span!(
            "renderer.render_bytes",
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = "imgmesh.renderer.v1.RendererService",
            rpc.method = "RenderBytes",
        );
        let mut client = self.renderer.clone();
        let mut request = tonic::Request::new(messages);
        request.set_timeout(timeout);
        let response = with_deadline("renderer", timeout, client.render_bytes(request))
            .instrument(span)
            .await?;
        response
            .into_inner()
            .derivative
            .ok_or_else(|| GatewayError::Upstream {
                code: ErrorCode::Internal,
                message: "internal error".to_owned(),
            })
    }
}

/// The Render call of `render` with its deadline, asking to start at once
/// or be refused when `start_now`.
fn render_request(
    render: RenderRequest,
    timeout: Duration,
    start_now: bool,
) -> tonic::Request<RenderRequest> {
    let mut request = tonic::Request::new(render);
    request.set_timeout(timeout);
    if start_now {
        request.metadata_mut().insert(
            ADMISSION_METADATA,
            tonic::metadata::MetadataValue::from_static(START_NOW),
        );
    }
    request
}

/// What tells one render request from another in the render limit's
/// demand: the same for the same request resent, different for another
/// derivative (a hash of its Source, path and plan).
/// The key a refused miss is counted under in the render limit's demand:
/// its HTTP/1 connection ([`HTTP1_CLIENT`]) when it came on one, else what
/// it asks for ([`demand_key`]). Keyed by URL alone, four HTTP/1
/// connections that each ask for the next URL as soon as one is refused
/// (wrk, a crawler) made hundreds of distinct keys a second, read as a
/// storm of clients: after one refusal by the renderer (a render that did
/// not fit its running memory) the learnt limit held for as long as they
/// sent, and `make bench`'s bad-bytes rows at four connections were 503
/// by the tens of thousands.
fn refusal_key(render: &RenderRequest) -> u64 {
    use std::hash::{Hash as _, Hasher};

    HTTP1_CLIENT
        .try_with(|client| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            client.hash(&mut hasher);
            hasher.finish()
        })
        .unwrap_or_else(|_| demand_key(render))
}

fn demand_key(render: &RenderRequest) -> u64 {
    use std::fmt::Write as _;
    use std::hash::{Hash as _, Hasher};

    /// Feeds what is formatted into the hasher, with no allocation.
    struct Feed<'a>(&'a mut std::collections::hash_map::DefaultHasher);
    impl std::fmt::Write for Feed<'_> {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0.write(text.as_bytes());
            Ok(())
        }
    }

    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    render.source_id.hash(&mut hasher);
    render.path.hash(&mut hasher);
    // The plan's fields as text: it has no Hash of its own.
    let _ = write!(Feed(&mut hasher), "{:?}", render.plan);
    hasher.finish()
}

/// The registry's answer for a host, with the tokens moved into redacting
/// [`SigningKey`]s.
fn lookup_of(response: ResolveHostResponse) -> Lookup {
    let Some(source) = response.source else {
        return Lookup::Unknown;
    };
    let signing_keys = response
        .secure_url_tokens
        .into_iter()
        .map(|token| SigningKey::new(token.token, token.expires_at))
        .collect();
    Lookup::Source(std::sync::Arc::new(ResolvedSource {
        source,
        signing_keys,
    }))
}

/// Runs a call, turning its status — or the gateway's own deadline, for a
/// peer that accepted the connection but never answers — into a [`GatewayError`].
/// What a refused render teaches the renderer tier's learnt limit: an
/// OVERLOADED refusal for room to run lowers it; one for a render that did
/// not fit the memory free now ([`SHORTAGE_KEY`]) leaves it be, since the
/// tier would take another render (a single large original beside another
/// once lowered it below four connections and shed them by the thousand,
/// `scripts/bench.sh badbytes`). Any other answer is a render taken.
fn limit_answer(status: &tonic::Status) -> Answer {
    let refusal = PublicError::of("renderer", status);
    match (refusal.code(), refusal.metadata(SHORTAGE_KEY)) {
        (ErrorCode::Overloaded, Some(MEMORY_SHORTAGE)) => Answer::Unfit,
        (ErrorCode::Overloaded, _) => Answer::Refused,
        _ => Answer::Taken,
    }
}

async fn with_deadline<T>(
    service: &'static str,
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, GatewayError> {
    match tokio::time::timeout(deadline + DEADLINE_GRACE, call).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(status)) => Err(GatewayError::from_status(service, &status)),
        Err(_elapsed) => Err(GatewayError::timed_out(service)),
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::RenderPlan;

    use super::*;

    fn render(path: &str, width: u32) -> RenderRequest {
        RenderRequest {
            source_id: "source".to_owned(),
            path: path.to_owned(),
            plan: Some(RenderPlan {
                width,
                ..RenderPlan::default()
            }),
            ..RenderRequest::default()
        }
    }

    /// A render started in a storm carries `imgmesh-admission: start-now`
    /// and its deadline; one started outside a storm carries no admission
    /// metadata.
    #[test]
    fn storm_renders_ask_to_start_now() {
        let timeout = Duration::from_millis(1500);
        let storm = render_request(render("a.jpg", 300), timeout, true);
        assert_eq!(
            storm.metadata().get("imgmesh-admission").unwrap(),
            "start-now"
        );
        assert!(
            storm.metadata().get("grpc-timeout").is_some(),
            "its deadline"
        );
        let calm = render_request(render("a.jpg", 300), timeout, false);
        assert!(calm.metadata().get("imgmesh-admission").is_none());
        assert_eq!(calm.get_ref().path, "a.jpg");
    }

    /// A refusal for room to run lowers the learnt limit, a refusal for
    /// memory does not, and any other answer is a render taken.
    #[test]
    fn refusals_teach_the_limit_by_their_shortage() {
        let queue_full = ErrorCode::Overloaded.status_with(
            "the renderer is overloaded (render queue full), retry shortly",
            [("cause", "render queue full".to_owned())],
        );
        assert_eq!(limit_answer(&queue_full), Answer::Refused);
        let memory = ErrorCode::Overloaded.status_with(
            "the renderer is overloaded (render memory budget spent), retry shortly",
            [(SHORTAGE_KEY, MEMORY_SHORTAGE.to_owned())],
        );
        assert_eq!(limit_answer(&memory), Answer::Unfit);
        let other_shortage =
            ErrorCode::Overloaded.status_with("overloaded", [(SHORTAGE_KEY, "disk".to_owned())]);
        assert_eq!(limit_answer(&other_shortage), Answer::Refused);
        let corrupt = ErrorCode::CorruptInput.status("image could not be decoded");
        assert_eq!(limit_answer(&corrupt), Answer::Taken);
        let bare = tonic::Status::resource_exhausted("a proxy's own refusal");
        assert_eq!(limit_answer(&bare), Answer::Refused);
    }

    /// A request resent has the demand key it had; another path or another
    /// plan has another.
    #[test]
    fn demand_keys_tell_requests_apart() {
        let first = demand_key(&render("a.jpg", 300));
        assert_eq!(first, demand_key(&render("a.jpg", 300)));
        assert_ne!(first, demand_key(&render("b.jpg", 300)));
        assert_ne!(first, demand_key(&render("a.jpg", 301)));
    }

    /// On an HTTP/1 connection a refused miss counts as its connection,
    /// whatever it asks for; another connection counts apart; outside one
    /// (HTTP/2, the gRPC API) it counts by what it asks for.
    #[tokio::test]
    async fn refusals_on_one_http1_connection_count_once() {
        let (one, two) = (
            "127.0.0.1:40001".parse().unwrap(),
            "127.0.0.1:40002".parse().unwrap(),
        );
        let on = |client, path, width| {
            HTTP1_CLIENT.scope(client, async move { refusal_key(&render(path, width)) })
        };
        let first = on(one, "a.jpg", 300).await;
        assert_eq!(
            first,
            on(one, "b.jpg", 301).await,
            "the next URL, same client"
        );
        assert_ne!(first, on(two, "a.jpg", 300).await, "another connection");
        assert_eq!(
            refusal_key(&render("a.jpg", 300)),
            demand_key(&render("a.jpg", 300))
        );
        assert_ne!(
            refusal_key(&render("a.jpg", 300)),
            refusal_key(&render("b.jpg", 300))
        );
    }
}
