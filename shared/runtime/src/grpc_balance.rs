//! Client-side load balancing for gRPC targets.
//!
//! A target is one URL, a comma-separated list of URLs, a URL whose host
//! is a DNS name that resolves to several addresses (a Kubernetes headless
//! Service), or `file:<path>` naming a file that lists URLs (separated by
//! commas, spaces or newlines; `#` starts a comment), re-read like a name
//! is re-resolved — for hosts without DNS-based discovery, the way
//! Prometheus' `file_sd` works. Entries of each kind can be mixed. [`grpc_channel`](crate::grpc_channel) turns anything but a
//! single IP-literal URL into a tonic balanced channel
//! ([`Channel::balance_channel`]): tower's power-of-two-choices balancer
//! sends each *request* to the less loaded (fewer in-flight requests) of two
//! random endpoints, so ten renderer pods share the load instead of one pod
//! getting every render over one HTTP/2 connection.
//!
//! The balancer is tower's p2c over one tonic channel per address, each
//! wrapped in [`PendingRequests`](tower::load::PendingRequests), rather than tonic's
//! `Channel::balance_channel`: tonic's balanced connections report a load
//! of 0 (so its p2c picks between two endpoints blindly), and they can only
//! dial with tonic's own connector, not the mesh's mutual TLS
//! ([`crate::mesh_tls`]). Here each address is dialled over the process's
//! [`Transport`]; for a URL whose host is a name, the TLS server name is
//! that name while the TCP connection goes to the resolved address.
//!
//! A background task keeps the balancer's endpoint set current:
//!
//! - every [`RESOLVE_INTERVAL`] it reads each file and resolves each name
//!   again, so new addresses join and gone ones leave without a restart (a
//!   name that fails to resolve, or a file that cannot be read or parsed,
//!   keeps its last addresses);
//! - every [`PROBE_INTERVAL`] it opens a TCP connection to each address and
//!   keeps in the balancer only those that accept. This is needed because
//!   tonic's lazy connections report *ready* after a failed connect and then
//!   fail the next request with the stored error, so the balancer would keep
//!   picking a dead endpoint (with no requests in flight it even looks the
//!   least loaded; about a third of requests failed for good in a test with
//!   one of two endpoints dead). A removed address is put back as soon as a probe
//!   connects again. When no address accepts, all of them stay in the set,
//!   so requests fail fast with the connection error instead of waiting;
//! - a failed call can ask it for a probe round at once ([`Prober`]), so a
//!   retry (see [`crate::grpc_retry`]) does not land on the endpoint that
//!   just failed;
//! - it stops when the channel (every clone of it) is dropped, so it never
//!   keeps a process alive.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use tokio::sync::mpsc::Sender;
use tokio::sync::{Notify, watch};
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
use tower::util::BoxCloneSyncService;

use crate::mesh_tls::Transport;

/// How often names in a target are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);

/// How often each resolved address is probed with a TCP connect.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a probe's TCP connect may take before the address counts as
/// unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How many endpoint changes may wait for the balancer at once.
const CHANGE_CAPACITY: usize = 64;

/// How many requests may wait for the balancer's worker at once (tonic's
/// own default for a channel).
const REQUEST_BUFFER: usize = 1024;

/// A balanced channel: requests in, responses out, cheap to clone (every
/// clone shares the balancer).
pub(crate) type BalancedService = BoxCloneSyncService<
    http::Request<Body>,
    http::Response<Body>,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// Resolves `(host, port)` to socket addresses; injectable so tests can
/// change the address set without real DNS.
pub(crate) type Resolver = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The resolver used outside tests: the system's, via
/// [`tokio::net::lookup_host`].
pub(crate) fn system_resolver() -> Resolver {
    Arc::new(|host, port| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// One URL of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetUrl {
    /// `http` or `https`.
    pub(crate) scheme: String,
    /// The host as written: an IP literal (IPv6 without brackets) or a name.
    pub(crate) host: String,
    /// The port, explicit or the scheme's default.
    pub(crate) port: u16,
}

// === impl TargetUrl ===

impl TargetUrl {
    /// The host as an IP address, when it is an IP literal.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `scheme://host:port`, the origin requests to this URL carry.
    fn origin(&self) -> String {
        match self.ip() {
            Some(ip) => format!("{}://{}", self.scheme, SocketAddr::new(ip, self.port)),
            None => format!("{}://{}:{}", self.scheme, self.host, self.port),
        }
    }

    /// The endpoint for one resolved `addr` of this URL: it connects to
    /// `addr`, and when the host was a name, `:authority` stays the name.
    fn endpoint(&self, addr: SocketAddr) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(format!("{}://{addr}", self.scheme))
            .with_context(|| format!("invalid gRPC endpoint for {addr}"))?;
        let endpoint = if self.ip().is_none() {
            let origin: Uri = self
                .origin()
                .parse()
                .with_context(|| format!("invalid gRPC origin {:?}", self.origin()))?;
            endpoint.origin(origin)
        } else {
            endpoint
        };
        Ok(crate::configure_endpoint(endpoint))
    }

    /// A lazily connecting channel to one resolved `addr` of this URL over
    /// `transport`; with mutual TLS the server's certificate must name this
    /// URL's host (the name, when the host was one).
    fn channel(&self, addr: SocketAddr, transport: &Transport) -> anyhow::Result<Channel> {
        let endpoint = self.endpoint(addr)?;
        Ok(match transport {
            Transport::Plaintext => endpoint.connect_lazy(),
            Transport::Mtls(tls) => {
                let server_name = self.ip().is_none().then(|| self.host.clone());
                endpoint.connect_with_connector_lazy(tls.connector_for(server_name))
            }
        })
    }
}

/// A parsed target: its URLs, and the files that list more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// URLs written in the target itself.
    pub(crate) urls: Vec<TargetUrl>,
    /// `file:` entries, read again at every resolution.
    pub(crate) files: Vec<PathBuf>,
}

/// Splits `target` at commas and parses each entry as an `http://` or
/// `https://` URL with a host and no path, or as `file:<path>` (whose file
/// must be readable and list valid URLs now); an error names the bad entry.
pub(crate) fn parse_target(target: &str) -> anyhow::Result<Target> {
    let entries: Vec<&str> = target.split(',').map(str::trim).collect();
    let count = entries.len();
    let mut parsed = Target {
        urls: Vec::new(),
        files: Vec::new(),
    };
    for (index, entry) in entries.into_iter().enumerate() {
        let place = || {
            format!(
                "invalid gRPC endpoint {entry:?} (entry {} of {count} in {target:?})",
                index + 1
            )
        };
        if let Some(path) = entry.strip_prefix("file:") {
            let path = PathBuf::from(path);
            read_target_file(&path).with_context(place)?;
            parsed.files.push(path);
        } else {
            parsed.urls.push(parse_url(entry).with_context(place)?);
        }
    }
    Ok(parsed)
}

/// The URLs listed in the file at `path`: separated by commas or white
/// space, `#` to the end of a line a comment.
pub(crate) fn read_target_file(path: &std::path::Path) -> anyhow::Result<Vec<TargetUrl>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading endpoint file {}", path.display()))?;
    let mut urls = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for entry in line.split(|c: char| c == ',' || c.is_whitespace()) {
            if entry.is_empty() {
                continue;
            }
            urls.push(parse_url(entry).with_context(|| {
                format!("invalid gRPC endpoint {entry:?} in {}", path.display())
            })?);
        }
    }
    anyhow::ensure!(!urls.is_empty(), "{} lists no endpoint", path.display());
    Ok(urls)
}

/// Parses one entry of a target.
fn parse_url(entry: &str) -> anyhow::Result<TargetUrl> {
    anyhow::ensure!(!entry.is_empty(), "empty entry");
    let uri: Uri = entry.parse().context("not a URL")?;
    let scheme = match uri.scheme_str() {
        Some(scheme @ ("http" | "https")) => scheme.to_owned(),
        Some(other) => anyhow::bail!("scheme {other:?} is not http or https"),
        None => anyhow::bail!("no scheme (expected http://host:port)"),
    };
    let host = uri.host().context("no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    anyhow::ensure!(!host.is_empty(), "no host");
    anyhow::ensure!(
        matches!(uri.path(), "" | "/") && uri.query().is_none(),
        "a path or query is not allowed"
    );
    let authority = uri.authority().map_or("", |authority| authority.as_str());
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    let port = match uri.port_u16() {
        Some(port) => port,
        None if after_host.contains(':') => anyhow::bail!("invalid port in {authority:?}"),
        None if scheme == "https" => 443,
        None => 80,
    };
    Ok(TargetUrl { scheme, host, port })
}

/// A balanced channel over `urls`, kept current by a background task that
/// resolves names with `resolver` every `resolve_interval` and probes
/// addresses every `probe_interval` (or at once when the [`Prober`] asks);
/// the returned handle is that task's, which ends once the channel is
/// dropped.
pub(crate) fn balanced_channel(
    target: Target,
    transport: Transport,
    resolver: Resolver,
    resolve_interval: Duration,
    probe_interval: Duration,
) -> (BalancedService, Prober, tokio::task::JoinHandle<()>) {
    let (changes, received) = tokio::sync::mpsc::channel(CHANGE_CAPACITY);
    let discover = tokio_stream::wrappers::ReceiverStream::new(received)
        .map(Ok::<_, std::convert::Infallible>);
    let discover = PendingRequestsDiscover::new(discover, CompleteOnResponse::default());
    let channel = BoxCloneSyncService::new(Buffer::new(Balance::new(discover), REQUEST_BUFFER));
    let (finished, finished_rounds) = watch::channel(0);
    let prober = Prober {
        wake: Arc::new(Notify::new()),
        started: Arc::new(AtomicU64::new(0)),
        finished: finished_rounds,
    };
    let maintainer = EndpointSet {
        target,
        transport,
        listed: HashMap::new(),
        resolver,
        resolved: HashMap::new(),
        inserted: HashSet::new(),
        changes,
        wake: prober.wake.clone(),
        started: prober.started.clone(),
        finished,
    };
    let task = tokio::spawn(maintainer.run(resolve_interval, probe_interval));
    (channel, prober, task)
}

/// Asks a balanced channel's background task for a probe round now.
#[derive(Debug, Clone)]
pub(crate) struct Prober {
    wake: Arc<Notify>,
    /// Number of the last probe round started.
    started: Arc<AtomicU64>,
    /// Number of the last probe round finished.
    finished: watch::Receiver<u64>,
}

// === impl Prober ===

impl Prober {
    /// Asks for a probe round and waits, at most `within`, until a round
    /// that started after this call has finished and its changes have
    /// reached the balancer: an endpoint that stopped accepting before
    /// the call is then out of the set.
    pub(crate) async fn probe_now(&self, within: Duration) {
        let wanted = self.started.load(Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let mut finished = self.finished.clone();
        let _ = tokio::time::timeout(within, finished.wait_for(|&round| round >= wanted)).await;
    }
}

/// The background task's state: what each URL resolved to last and which
/// addresses the balancer has.
struct EndpointSet {
    target: Target,
    /// How each address is dialled.
    transport: Transport,
    /// What each of the target's files listed when last read well.
    listed: HashMap<PathBuf, Vec<TargetUrl>>,
    resolver: Resolver,
    /// Last successful resolution of each current URL, by its origin.
    resolved: HashMap<String, (TargetUrl, Vec<SocketAddr>)>,
    /// Addresses currently in the balancer.
    inserted: HashSet<SocketAddr>,
    changes: Sender<Change<SocketAddr, Channel>>,
    /// Woken by [`Prober::probe_now`].
    wake: Arc<Notify>,
    /// See [`Prober`].
    started: Arc<AtomicU64>,
    finished: watch::Sender<u64>,
}

// === impl EndpointSet ===

impl EndpointSet {
    /// Resolves and probes until the balancer (the channel) is gone.
    async fn run(mut self, resolve_interval: Duration, probe_interval: Duration) {
        let mut last_resolve: Option<tokio::time::Instant> = None;
        loop {
            if last_resolve.is_none_or(|at| at.elapsed() >= resolve_interval) {
                self.resolve().await;
                last_resolve = Some(tokio::time::Instant::now());
            }
            let round = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            if self.update().await.is_err() {
                return;
            }
            self.finished.send_replace(round);
            tokio::select! {
                () = self.changes.closed() => return,
                () = tokio::time::sleep(probe_interval) => {},
                () = self.wake.notified() => {},
            }
        }
    }

    /// Reads every file and resolves every URL; a file that cannot be read
    /// or parsed keeps what it listed last, a name that fails or resolves
    /// to nothing keeps its previous addresses, and URLs no longer listed
    /// are forgotten.
    async fn resolve(&mut self) {
        for path in &self.target.files {
            match read_target_file(path) {
                Ok(urls) => {
                    self.listed.insert(path.clone(), urls);
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "keeping the last endpoint list"
                    );
                }
            }
        }
        let mut current: Vec<TargetUrl> = self.target.urls.clone();
        for path in &self.target.files {
            current.extend(self.listed.get(path).into_iter().flatten().cloned());
        }
        let origins: HashSet<String> = current.iter().map(TargetUrl::origin).collect();
        self.resolved.retain(|origin, _| origins.contains(origin));
        for url in current {
            if let Some(ip) = url.ip() {
                let addrs = vec![SocketAddr::new(ip, url.port)];
                self.resolved.insert(url.origin(), (url, addrs));
                continue;
            }
            match (self.resolver)(url.host.clone(), url.port).await {
                Ok(addrs) if !addrs.is_empty() => {
                    self.resolved.insert(url.origin(), (url, addrs));
                }
                Ok(_) => tracing::warn!(host = %url.host, "gRPC target resolved to no address"),
                Err(error) => {
                    tracing::warn!(host = %url.host, %error, "resolving gRPC target failed");
                }
            }
        }
    }

    /// Probes every resolved address and sends the balancer the changes;
    /// an error means the balancer is gone.
    async fn update(&mut self) -> Result<(), ()> {
        let mut all: HashMap<SocketAddr, &TargetUrl> = HashMap::new();
        for (url, addrs) in self.resolved.values() {
            for addr in addrs {
                all.entry(*addr).or_insert(url);
            }
        }
        let mut probes = tokio::task::JoinSet::new();
        for addr in all.keys().copied() {
            probes.spawn(async move { (addr, reachable(addr).await) });
        }
        let mut wanted = HashSet::new();
        while let Some(Ok((addr, ok))) = probes.join_next().await {
            if ok {
                wanted.insert(addr);
            }
        }
        if wanted.is_empty() {
            // Nothing accepts: keep every address so requests fail fast
            // with the connection error rather than wait for an endpoint.
            wanted = all.keys().copied().collect();
        }
        let gone: Vec<SocketAddr> = self.inserted.difference(&wanted).copied().collect();
        for addr in gone {
            tracing::info!(%addr, "gRPC endpoint leaves the balancer");
            self.changes
                .send(Change::Remove(addr))
                .await
                .map_err(drop)?;
            self.inserted.remove(&addr);
        }
        for addr in wanted {
            if self.inserted.contains(&addr) {
                continue;
            }
            let url = all[&addr];
            match url.channel(addr, &self.transport) {
                Ok(channel) => {
                    tracing::info!(%addr, host = %url.host, "gRPC endpoint joins the balancer");
                    self.changes
                        .send(Change::Insert(addr, channel))
                        .await
                        .map_err(drop)?;
                    self.inserted.insert(addr);
                }
                Err(error) => tracing::warn!(%addr, %error, "skipping gRPC endpoint"),
            }
        }
        Ok(())
    }
}

/// Whether `addr` accepts a TCP connection within [`PROBE_TIMEOUT`].
async fn reachable(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    /// One URL parses into its scheme, host and port.
    #[test]
    fn parses_one_url() {
        let urls = parse_target("http://127.0.0.1:50051").unwrap().urls;
        assert_eq!(
            urls,
            vec![TargetUrl {
                scheme: "http".into(),
                host: "127.0.0.1".into(),
                port: 50051
            }]
        );
        assert!(urls[0].ip().is_some());
    }

    /// A comma-separated list parses entry by entry, names and IPv6
    /// literals included, and a missing port is the scheme's default.
    #[test]
    fn parses_a_list() {
        let urls =
            parse_target("http://10.0.0.1:1, http://renderer.svc:2,http://[::1]:3,https://x")
                .unwrap()
                .urls;
        let hosts: Vec<(&str, u16)> = urls.iter().map(|u| (u.host.as_str(), u.port)).collect();
        assert_eq!(
            hosts,
            vec![("10.0.0.1", 1), ("renderer.svc", 2), ("::1", 3), ("x", 443)]
        );
        assert!(urls[1].ip().is_none());
        assert!(urls[2].ip().is_some());
    }

    /// A bad entry is refused with an error naming the entry and its place.
    #[test]
    fn bad_entries_are_named() {
        for (target, bad, reason) in [
            ("http://a:1,,http://b:2", "\"\" (entry 2 of 3", "empty"),
            (
                "http://a:1,ftp://b:2",
                "\"ftp://b:2\" (entry 2 of 2",
                "scheme",
            ),
            ("a:1", "\"a:1\" (entry 1 of 1", "scheme"),
            ("http://a:1/path", "\"http://a:1/path\"", "path"),
            ("http://a:1,http://b:x", "\"http://b:x\"", "port"),
        ] {
            let error = format!("{:#}", parse_target(target).unwrap_err());
            assert!(error.contains(bad), "{target}: {error}");
            assert!(error.contains(reason), "{target}: {error}");
        }
    }

    /// An endpoint for a name connects to the resolved address and keeps
    /// the name as its origin.
    #[test]
    fn name_endpoints_keep_the_name_as_origin() {
        let url = &parse_target("http://renderer.svc:7000").unwrap().urls[0];
        let endpoint = url.endpoint("10.1.2.3:7000".parse().unwrap()).unwrap();
        assert_eq!(endpoint.uri().to_string(), "http://10.1.2.3:7000/");
        assert_eq!(url.origin(), "http://renderer.svc:7000");
    }

    /// A health server on `addr` that counts the requests it receives;
    /// dropping the returned sender stops it.
    async fn counting_server_on(
        addr: &str,
    ) -> (
        SocketAddr,
        Arc<AtomicUsize>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        delayed_counting_server_on(addr, Duration::ZERO).await
    }

    /// A service that waits `delay` before passing each request on.
    #[derive(Clone)]
    struct Delayed<S> {
        inner: S,
        delay: Duration,
    }

    impl<S, R> tower::Service<R> for Delayed<S>
    where
        S: tower::Service<R> + Clone + Send + 'static,
        S::Future: Send,
        R: Send + 'static,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: R) -> Self::Future {
            let inner = self.inner.clone();
            let delay = self.delay;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                tower::ServiceExt::oneshot(inner, request).await
            })
        }
    }

    /// [`counting_server_on`] whose every answer takes `delay` (counted on
    /// arrival).
    async fn delayed_counting_server_on(
        addr: &str,
        delay: Duration,
    ) -> (
        SocketAddr,
        Arc<AtomicUsize>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let listener = bind_again(addr).await;
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .trace_fn(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tracing::Span::none()
                })
                .layer(tower::layer::layer_fn(move |inner| Delayed {
                    inner,
                    delay,
                }))
                .add_service(health)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
                .unwrap();
        });
        (addr, count, stop)
    }

    /// Binds `addr`, retrying for a while: a port given up a moment ago
    /// is free only once the stopped server has dropped its listener, and
    /// another process's outgoing connection may hold it briefly.
    async fn bind_again(addr: &str) -> tokio::net::TcpListener {
        let mut last = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => return listener,
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    last = Some(error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("bind {addr}: {error}"),
            }
        }
        panic!("bind {addr}: still in use after 10 s: {last:?}");
    }

    /// A resolver answering with whatever `addrs` holds at the time.
    fn fixed_resolver(addrs: Arc<Mutex<Vec<SocketAddr>>>) -> Resolver {
        Arc::new(move |_, _| {
            let addrs = addrs.lock().unwrap().clone();
            Box::pin(async move { Ok(addrs) })
        })
    }

    /// Sends `n` health checks through `channel`, each within a deadline,
    /// and returns how many succeeded.
    async fn checks<C: Clone + Into<crate::GrpcChannel>>(channel: &C, n: usize) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            let mut client = HealthClient::new(channel.clone().into());
            let call = client.check(HealthCheckRequest::default());
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), call).await {
                ok += 1;
            }
        }
        ok
    }

    /// Polls `condition` every 20 ms until it holds, for at most 5 s.
    async fn eventually_async<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !condition().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition never held"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A re-resolved name moves traffic: addresses that appear get
    /// requests, addresses that disappear stop getting them.
    #[tokio::test]
    async fn re_resolution_adds_and_removes_endpoints() {
        let (a, a_count, _stop_a) = counting_server_on("127.0.0.1:0").await;
        let (b, b_count, _stop_b) = counting_server_on("127.0.0.1:0").await;
        let addrs = Arc::new(Mutex::new(vec![a]));
        let url = parse_target(&format!("http://renderer.test:{}", a.port())).unwrap();
        let interval = Duration::from_millis(50);
        let (channel, _prober, _task) = balanced_channel(
            url,
            Transport::Plaintext,
            fixed_resolver(addrs.clone()),
            interval,
            interval,
        );

        assert_eq!(checks(&channel, 10).await, 10);
        assert_eq!(b_count.load(Ordering::SeqCst), 0);

        *addrs.lock().unwrap() = vec![a, b];
        let mut seen_b = false;
        for _ in 0..100 {
            assert_eq!(checks(&channel, 5).await, 5);
            if b_count.load(Ordering::SeqCst) > 0 {
                seen_b = true;
                break;
            }
            tokio::time::sleep(interval).await;
        }
        assert!(seen_b, "the new address never got a request");

        *addrs.lock().unwrap() = vec![b];
        tokio::time::sleep(interval * 6).await;
        let before = a_count.load(Ordering::SeqCst);
        assert_eq!(checks(&channel, 20).await, 20);
        assert_eq!(
            a_count.load(Ordering::SeqCst),
            before,
            "removed address got requests"
        );
    }

    /// Requests spread over every address of a list, per request.
    #[tokio::test]
    async fn a_list_spreads_requests() {
        let (a, a_count, _stop_a) = counting_server_on("127.0.0.1:0").await;
        let (b, b_count, _stop_b) = counting_server_on("127.0.0.1:0").await;
        let target = parse_target(&format!("http://{a},http://{b}")).unwrap();
        let interval = Duration::from_millis(50);
        let (channel, _prober, _task) = balanced_channel(
            target,
            Transport::Plaintext,
            system_resolver(),
            interval,
            interval,
        );
        assert_eq!(checks(&channel, 60).await, 60);
        let (a_n, b_n) = (
            a_count.load(Ordering::SeqCst),
            b_count.load(Ordering::SeqCst),
        );
        assert!(a_n >= 10 && b_n >= 10, "spread {a_n}/{b_n}");
    }

    /// The balancer weighs endpoints by requests in flight: with one of two
    /// replicas answering only after a second, requests sent one after the
    /// other go to the quick one once the slow one holds a request (tonic's
    /// own balanced channel reports every endpoint's load as 0 and would
    /// send about half to the slow one).
    #[tokio::test]
    async fn requests_go_to_the_endpoint_with_fewer_in_flight() {
        let (slow, slow_count, _stop_slow) =
            delayed_counting_server_on("127.0.0.1:0", Duration::from_secs(1)).await;
        let (quick, quick_count, _stop_quick) = counting_server_on("127.0.0.1:0").await;
        let target = parse_target(&format!("http://{slow},http://{quick}")).unwrap();
        let hour = Duration::from_secs(3600);
        let (channel, _prober, _task) =
            balanced_channel(target, Transport::Plaintext, system_resolver(), hour, hour);
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let mut client = HealthClient::new(crate::GrpcChannel::from(channel.clone()));
            calls.spawn(async move { client.check(HealthCheckRequest::default()).await });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while let Some(call) = calls.join_next().await {
            call.unwrap().expect("every call is answered");
        }
        let (slow_n, quick_n) = (
            slow_count.load(Ordering::SeqCst),
            quick_count.load(Ordering::SeqCst),
        );
        assert_eq!(slow_n + quick_n, 30);
        assert!(slow_n <= 3, "the slow replica got {slow_n} of 30");
    }

    /// An address that stops accepting leaves the balancer, so requests
    /// keep succeeding on the others; it rejoins when it serves again.
    #[tokio::test]
    async fn dead_endpoints_leave_and_rejoin() {
        let (a, _a_count, _stop_a) = counting_server_on("127.0.0.1:0").await;
        let (b, _b_count, stop_b) = counting_server_on("127.0.0.1:0").await;
        let target = parse_target(&format!("http://{a},http://{b}")).unwrap();
        let interval = Duration::from_millis(50);
        let (channel, _prober, _task) = balanced_channel(
            target,
            Transport::Plaintext,
            system_resolver(),
            interval,
            interval,
        );
        assert_eq!(checks(&channel, 10).await, 10);

        drop(stop_b);
        // Within a few probe intervals every request goes to `a` again.
        tokio::time::sleep(interval * 6).await;
        assert_eq!(checks(&channel, 30).await, 30);

        let (_, b_count, _stop_b) = counting_server_on(&b.to_string()).await;
        eventually_async(|| {
            let channel = channel.clone();
            let b_count = b_count.clone();
            async move {
                checks(&channel, 5).await;
                b_count.load(Ordering::SeqCst) > 0
            }
        })
        .await;
    }

    /// Why probes exist: without them tonic's balancer keeps a dead
    /// endpoint and keeps failing a share of requests on it (a lazy
    /// connection reports ready after a failed connect). If this starts
    /// failing, tonic skips dead endpoints itself and probes could go.
    #[tokio::test]
    async fn without_probes_a_dead_endpoint_keeps_failing_requests() {
        let (a, _a_count, _stop_a) = counting_server_on("127.0.0.1:0").await;
        let (b, _b_count, stop_b) = counting_server_on("127.0.0.1:0").await;
        let target = parse_target(&format!("http://{a},http://{b}")).unwrap();
        let hour = Duration::from_secs(3600);
        let (channel, _prober, _task) =
            balanced_channel(target, Transport::Plaintext, system_resolver(), hour, hour);
        assert_eq!(checks(&channel, 10).await, 10);
        drop(stop_b);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(checks(&channel, 100).await < 100);
        assert!(
            checks(&channel, 100).await < 100,
            "the dead endpoint stopped failing"
        );
    }

    /// A `file:` entry must name a readable file listing valid URLs; each
    /// error names the entry and what is wrong.
    #[test]
    fn endpoint_files_are_checked_at_start() {
        let dir = tempdir_for("targets");
        let good = dir.join("good.txt");
        std::fs::write(
            &good,
            "# renderers\nhttp://127.0.0.1:1, http://127.0.0.1:2\n  http://r.svc:3 # third\n",
        )
        .unwrap();
        let target = parse_target(&format!("http://10.0.0.1:9,file:{}", good.display())).unwrap();
        assert_eq!(target.urls.len(), 1);
        assert_eq!(target.files, vec![good.clone()]);
        let listed: Vec<u16> = read_target_file(&good)
            .unwrap()
            .iter()
            .map(|url| url.port)
            .collect();
        assert_eq!(listed, vec![1, 2, 3]);

        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "http://127.0.0.1:1\nftp://x:2\n").unwrap();
        let empty = dir.join("empty.txt");
        std::fs::write(&empty, "# nothing yet\n").unwrap();
        let missing = dir.join("missing.txt");
        for (path, reason) in [
            (&bad, "\"ftp://x:2\""),
            (&empty, "lists no endpoint"),
            (&missing, "reading endpoint file"),
        ] {
            let error = format!(
                "{:#}",
                parse_target(&format!("file:{}", path.display())).unwrap_err()
            );
            assert!(error.contains("entry 1 of 1"), "{error}");
            assert!(error.contains(reason), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Editing an endpoint file moves traffic at the next resolution: an
    /// added address gets requests, a removed one stops getting them.
    #[tokio::test]
    async fn an_endpoint_file_is_read_again() {
        let (a, _a_count, _stop_a) = counting_server_on("127.0.0.1:0").await;
        let (b, b_count, _stop_b) = counting_server_on("127.0.0.1:0").await;
        let dir = tempdir_for("file-reread");
        let list = dir.join("renderers.txt");
        std::fs::write(&list, format!("http://{a}\n")).unwrap();
        let interval = Duration::from_millis(50);
        let target = parse_target(&format!("file:{}", list.display())).unwrap();
        let (channel, _prober, _task) = balanced_channel(
            target,
            Transport::Plaintext,
            system_resolver(),
            interval,
            interval,
        );
        assert_eq!(checks(&channel, 10).await, 10);
        assert_eq!(b_count.load(Ordering::SeqCst), 0);

        std::fs::write(&list, format!("http://{a}\nhttp://{b}\n")).unwrap();
        eventually_async(|| {
            let channel = channel.clone();
            let b_count = b_count.clone();
            async move {
                assert_eq!(checks(&channel, 5).await, 5);
                b_count.load(Ordering::SeqCst) > 0
            }
        })
        .await;

        std::fs::write(&list, format!("http://{b}\n")).unwrap();
        tokio::time::sleep(interval * 6).await;
        let before = b_count.load(Ordering::SeqCst);
        assert_eq!(checks(&channel, 20).await, 20);
        assert_eq!(
            b_count.load(Ordering::SeqCst),
            before + 20,
            "a still got requests"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory under the system's temp dir for one test.
    fn tempdir_for(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("imgmesh-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A failed idempotent call is retried once after a probe round, which
    /// takes the dead endpoint out first: with one of two endpoints dead
    /// and no periodic probe to eject it, every request still succeeds
    /// (the test above shows the same channel failing without the retry).
    #[tokio::test]
    async fn retries_go_to_another_replica() {
        let (channel, a_count, _stop_a) = one_of_two_dead().await;
        let before = a_count.load(Ordering::SeqCst);
        assert_eq!(checks(&channel, 100).await, 100);
        assert!(a_count.load(Ordering::SeqCst) >= before + 100);
        let retried = counter(
            "imgmesh_grpc_client_retries_total",
            "/grpc.health.v1.Health/Check",
        );
        assert!(retried >= 1.0, "{}", imgmesh_metrics::encode());
    }

    /// A call whose deadline leaves too little time is not retried: with a
    /// dead endpoint left in the balancer, calls with a 60 ms deadline that
    /// land on it fail (counted as skipped for the deadline) rather than
    /// being sent again past the caller's deadline.
    #[tokio::test]
    async fn retries_never_outlive_the_deadline() {
        let (channel, _a_count, _stop_a) = one_of_two_dead().await;
        let skipped_for_deadline = || {
            counter(
                "imgmesh_grpc_client_retries_skipped_total",
                "reason=\"deadline\"",
            )
        };
        let skipped_before = skipped_for_deadline();
        let mut failed = 0;
        for _ in 0..100 {
            let mut client = HealthClient::new(channel.clone());
            let mut request = tonic::Request::new(HealthCheckRequest::default());
            request.set_timeout(Duration::from_millis(60));
            if tokio::time::timeout(Duration::from_secs(2), client.check(request))
                .await
                .expect("a call outlived its deadline by far")
                .is_err()
            {
                failed += 1;
            }
        }
        assert!(failed > 0, "no call landed on the dead endpoint");
        assert!(skipped_for_deadline() >= skipped_before + 1.0);
    }

    /// A retrying channel over two health servers whose second has just
    /// stopped, with no periodic probe to eject it (it stays in the
    /// balancer); returns the channel with the live server's request count
    /// and its stop guard.
    async fn one_of_two_dead() -> (
        crate::GrpcChannel,
        Arc<AtomicUsize>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (a, a_count, stop_a) = counting_server_on("127.0.0.1:0").await;
        let (b, _b_count, stop_b) = counting_server_on("127.0.0.1:0").await;
        let target = parse_target(&format!("http://{a},http://{b}")).unwrap();
        let hour = Duration::from_secs(3600);
        let (channel, prober, _task) =
            balanced_channel(target, Transport::Plaintext, system_resolver(), hour, hour);
        let channel = crate::GrpcChannel::balanced(channel, prober);
        assert_eq!(checks(&channel, 10).await, 10);
        drop(stop_b);
        tokio::time::sleep(Duration::from_millis(200)).await;
        (channel, a_count, stop_a)
    }

    /// The value of counter `name` in this process's registry, on the line
    /// whose labels contain `labels` (0 when there is none yet).
    fn counter(name: &str, labels: &str) -> f64 {
        imgmesh_metrics::encode()
            .lines()
            .find(|line| line.starts_with(&format!("{name}{{")) && line.contains(labels))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The background task ends once every clone of the channel is gone.
    #[tokio::test]
    async fn the_task_ends_with_the_channel() {
        let (a, _count, _stop) = counting_server_on("127.0.0.1:0").await;
        let target = parse_target(&format!("http://{a},http://{a}")).unwrap();
        let interval = Duration::from_millis(20);
        let (channel, _prober, task) = balanced_channel(
            target,
            Transport::Plaintext,
            system_resolver(),
            interval,
            interval,
        );
        assert_eq!(checks(&channel, 3).await, 3);
        let clone = channel.clone();
        drop(channel);
        assert!(!task.is_finished());
        drop(clone);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task outlived its channel")
            .unwrap();
    }
}
