//! Mutual TLS between imgmesh processes.
//!
//! Every process presents its own certificate (`--tls-cert`, `--tls-key`)
//! and accepts a peer only if the peer's certificate chains to the mesh CA
//! (`--tls-ca`): servers require a client certificate, clients check the
//! server's name against the host of the URL they dial. The certificate and
//! key are read again when their files change (see [`ReloadingIdentity`]),
//! so a certificate rotated by cert-manager or a SPIFFE agent is presented
//! on the next new connection without a restart; connections already open
//! keep the certificate they were made with.
//!
//! A peer's service identity is the `spiffe://imgmesh/<service>` URI in its
//! certificate's subject alternative names ([`peer_identity`]); the
//! authorisation layer ([`crate::grpc_authz`]) decides from it what the
//! peer may call.
//!
//! Plaintext is possible only when asked for by name
//! (`--insecure-plaintext`), and then logged as a warning at start.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tonic::transport::Uri;

/// The URI prefix of a service identity in a certificate's SAN.
pub const IDENTITY_PREFIX: &str = "spiffe://imgmesh/";

/// How often, at most, the certificate files' modification times are checked.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The transport flags every imgmesh process shares, for `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM certificate chain this process presents to its peers (its SAN
    /// carries the service identity `spiffe://imgmesh/<service>`); re-read
    /// when the file changes.
    #[arg(long = "tls-cert", env = "IMGMESH_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`; re-read when the file changes.
    #[arg(long = "tls-key", env = "IMGMESH_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate(s) of the mesh CA that peers' certificates must chain to.
    #[arg(long = "tls-ca", env = "IMGMESH_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Speak plaintext gRPC with no peer authentication (anyone who reaches
    /// a port can call anything); only for a trusted single-host setup.
    #[arg(
        long = "insecure-plaintext",
        env = "IMGMESH_INSECURE_PLAINTEXT",
        conflicts_with_all = ["tls_cert", "tls_key", "tls_ca"]
    )]
    pub insecure_plaintext: bool,
}

/// How a process talks to its peers: mutual TLS, or plaintext by explicit
/// choice.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Unauthenticated plaintext (`--insecure-plaintext`).
    Plaintext,
    /// Mutual TLS with the process's own identity.
    Mtls(MeshTls),
}

/// A process's TLS settings, both as a server and as a client.
#[derive(Clone)]
pub struct MeshTls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

/// This process's certificate and key, re-read when their files change.
#[derive(Debug)]
pub struct ReloadingIdentity {
    cert_path: PathBuf,
    key_path: PathBuf,
    state: Mutex<LoadedIdentity>,
}

/// The identity last loaded and when the files were last looked at.
#[derive(Debug)]
struct LoadedIdentity {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

// === impl TlsArgs ===

impl TlsArgs {
    /// The transport these flags ask for. Without certificates and without
    /// `--insecure-plaintext` this is an error that says what to pass; with
    /// `--insecure-plaintext` it logs a warning.
    pub fn transport(&self) -> anyhow::Result<Transport> {
        if self.insecure_plaintext {
            tracing::warn!(
                "--insecure-plaintext: gRPC peers are not authenticated and traffic is not encrypted; anyone who can reach this process's ports can call it"
            );
            return Ok(Transport::Plaintext);
        }
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Ok(Transport::Mtls(MeshTls::load(cert, key, ca)?)),
            (None, None, None) => anyhow::bail!(
                "no TLS certificate configured: pass --tls-cert, --tls-key and --tls-ca (IMGMESH_TLS_CERT, IMGMESH_TLS_KEY, IMGMESH_TLS_CA), or --insecure-plaintext (IMGMESH_INSECURE_PLAINTEXT=true) to run without authentication"
            ),
            _ => anyhow::bail!("--tls-cert, --tls-key and --tls-ca must be given together"),
        }
    }
}

// === impl MeshTls ===

impl MeshTls {
    /// Loads this process's certificate and key and the mesh CA, and builds
    /// the server and client configurations (HTTP/2 by ALPN, TLS 1.2+).
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<MeshTls> {
        install_crypto_provider();
        let mut roots = RootCertStore::empty();
        let ca_certs = read_certs(ca)?;
        let (added, _ignored) = roots.add_parsable_certificates(ca_certs);
        anyhow::ensure!(added > 0, "{} holds no usable CA certificate", ca.display());
        let roots = Arc::new(roots);
        let identity = Arc::new(ReloadingIdentity::load(cert, key)?);

        let verifier = WebPkiClientVerifier::builder(roots.clone())
            .build()
            .context("building the client certificate verifier")?;
        let mut server = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(identity.clone());
        server.alpn_protocols = vec![b"h2".to_vec()];
        // No session resumption: every new connection runs the full
        // handshake, so a rotated certificate (ours or a peer's) and the
        // peer's expiry are checked on each, never skipped for a resumed
        // session. Connections are long-lived HTTP/2, so this costs little.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        let mut client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_cert_resolver(identity);
        client.alpn_protocols = vec![b"h2".to_vec()];

        Ok(MeshTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The acceptor for this process's listeners.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The connector for this process's gRPC channels: the server's
    /// certificate must name the host of the URI dialled.
    pub(crate) fn connector(&self) -> MeshConnector {
        self.connector_for(None)
    }

    /// A connector whose server certificate must name `server_name` when
    /// given (a balanced target's DNS name, dialled at one of the addresses
    /// it resolved to), else the host of the URI dialled.
    pub(crate) fn connector_for(&self, server_name: Option<String>) -> MeshConnector {
        MeshConnector {
            config: self.client.clone(),
            server_name,
        }
    }
}

impl std::fmt::Debug for MeshTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshTls").finish_non_exhaustive()
    }
}

/// Makes aws-lc the process's rustls provider (the one the S3 client
/// builds); a no-op when one is installed already.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

// === impl ReloadingIdentity ===

impl ReloadingIdentity {
    /// Reads the certificate chain and key; fails if they don't match.
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<ReloadingIdentity> {
        let key = load_certified_key(cert_path, key_path)?;
        Ok(ReloadingIdentity {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            state: Mutex::new(LoadedIdentity {
                key,
                modified: modification_times(cert_path, key_path),
                checked: Instant::now(),
            }),
        })
    }

    /// The current certificate and key: if the files changed since the
    /// last look (at most once per [`RELOAD_CHECK_INTERVAL`]), they are read
    /// again; a pair that fails to load (a rotation half written, a key that
    /// does not match the certificate) keeps the previous one in use until
    /// the next look.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            state.checked = Instant::now();
            let modified = modification_times(&self.cert_path, &self.key_path);
            if modified != state.modified {
                match load_certified_key(&self.cert_path, &self.key_path) {
                    Ok(key) => {
                        tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                        state.key = key;
                        state.modified = modified;
                    }
                    Err(error) => tracing::warn!(
                        cert = %self.cert_path.display(),
                        error = format!("{error:#}"),
                        "TLS certificate changed but could not be loaded; keeping the previous one"
                    ),
                }
            }
        }
        state.key.clone()
    }
}

impl ResolvesServerCert for ReloadingIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for ReloadingIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn modification_times(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

fn load_certified_key(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = read_certs(cert)?;
    // The key's text is never put in an error.
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|_| anyhow::anyhow!("{} holds no readable PEM private key", key.display()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key_der, &provider)
        .map_err(|error| anyhow::anyhow!("{} and {}: {error}", cert.display(), key.display()))?;
    Ok(Arc::new(certified))
}

// === peer identity ===

/// The service identity (`<service>` of a `spiffe://imgmesh/<service>` URI
/// SAN) of a verified peer certificate, if it has exactly one.
pub fn peer_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let mut found = subject_alt_uris(cert.as_ref())?
        .into_iter()
        .filter_map(|uri| uri.strip_prefix(IDENTITY_PREFIX).map(str::to_owned))
        .filter(|name| !name.is_empty() && !name.contains('/'));
    let identity = found.next()?;
    found.next().is_none().then_some(identity)
}

/// The URI entries of an X.509 certificate's subjectAltName extension
/// (RFC 5280 §4.2.1.6), read with a minimal DER walker; `None` if the
/// certificate does not parse.
fn subject_alt_uris(cert: &[u8]) -> Option<Vec<String>> {
    // Certificate ::= SEQUENCE { tbsCertificate, ... }
    let (_, certificate, _) = der_read(cert)?;
    let (_, mut tbs, _) = der_read(certificate)?;
    let mut uris = Vec::new();
    while !tbs.is_empty() {
        let (tag, value, rest) = der_read(tbs)?;
        tbs = rest;
        // extensions [3] EXPLICIT SEQUENCE OF Extension
        if tag != 0xa3 {
            continue;
        }
        let (_, mut extensions, _) = der_read(value)?;
        while !extensions.is_empty() {
            let (_, extension, rest) = der_read(extensions)?;
            extensions = rest;
            let (_, oid, mut fields) = der_read(extension)?;
            // id-ce-subjectAltName 2.5.29.17
            if oid != [0x55, 0x1d, 0x11] {
                continue;
            }
            let mut value = None;
            while !fields.is_empty() {
                let (tag, field, rest) = der_read(fields)?;
                fields = rest;
                if tag == 0x04 {
                    value = Some(field);
                }
            }
            let (_, mut names, _) = der_read(value?)?;
            while !names.is_empty() {
                let (tag, name, rest) = der_read(names)?;
                names = rest;
                // uniformResourceIdentifier [6] IA5String
                if tag == 0x86 {
                    uris.push(std::str::from_utf8(name).ok()?.to_owned());
                }
            }
        }
    }
    Some(uris)
}

/// One DER TLV: (tag, value, the bytes after it). Single-byte tags only,
/// which is all X.509 uses.
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
    };
    if rest.len() < len {
        return None;
    }
    let (value, after) = rest.split_at(len);
    Some((tag, value, after))
}

// === impl MeshConnector ===

/// Dials a gRPC peer over mutual TLS, checking its certificate against the
/// host of the URI dialled (an IP address or a DNS name), or against the
/// name it was made for.
#[derive(Clone)]
pub(crate) struct MeshConnector {
    config: Arc<ClientConfig>,
    /// The name the server's certificate must carry, when not the URI's host.
    server_name: Option<String>,
}

impl std::fmt::Debug for MeshConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshConnector").finish_non_exhaustive()
    }
}

type ConnectFuture = Pin<
    Box<
        dyn Future<Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>>
            + Send,
    >,
>;

impl tower::Service<Uri> for MeshConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.config.clone();
        let expected_name = self.server_name.clone();
        Box::pin(async move {
            let invalid =
                |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
            let host = uri.host().ok_or_else(|| invalid("gRPC URL has no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let server_name = ServerName::try_from(expected_name.unwrap_or_else(|| host.clone()))
                .map_err(|_| invalid("gRPC URL host is not a valid TLS name"))?;
            let tcp = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => TcpStream::connect(SocketAddr::new(ip, port)).await?,
                Err(_) => TcpStream::connect((host.as_str(), port)).await?,
            };
            let _ = tcp.set_nodelay(true);
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

// === impl MeshConnection ===

/// An accepted server connection: plaintext, or mutual TLS over it. Either
/// way it closes with a linger (see `lingering_close`).
pub(crate) enum MeshConnection {
    Plain(crate::lingering_close::LingeringClose),
    Tls(Box<tokio_rustls::server::TlsStream<crate::lingering_close::LingeringClose>>),
}

impl tonic::transport::server::Connected for MeshConnection {
    type ConnectInfo = crate::grpc_authz::PeerInfo;

    fn connect_info(&self) -> crate::grpc_authz::PeerInfo {
        match self {
            MeshConnection::Plain(io) => crate::grpc_authz::PeerInfo {
                remote_addr: io.connect_info().remote_addr(),
                identity: None,
                mtls: false,
            },
            MeshConnection::Tls(tls) => {
                let (io, session) = tls.get_ref();
                crate::grpc_authz::PeerInfo {
                    remote_addr: io.connect_info().remote_addr(),
                    identity: session
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(peer_identity),
                    mtls: true,
                }
            }
        }
    }
}

impl tokio::io::AsyncRead for MeshConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MeshConnection::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MeshConnection::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for MeshConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MeshConnection::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MeshConnection::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MeshConnection::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            MeshConnection::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MeshConnection::Plain(io) => io.is_write_vectored(),
            MeshConnection::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MeshConnection::Plain(io) => Pin::new(io).poll_flush(cx),
            MeshConnection::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MeshConnection::Plain(io) => Pin::new(io).poll_shutdown(cx),
            MeshConnection::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections accepted on `listener`, as a stream for tonic. With TLS,
/// each handshake runs in a task of its own (a slow or failing client holds
/// up no one); a failed one is logged at debug and the connection dropped.
/// The accept loop ends when the stream is dropped.
pub(crate) fn incoming(
    listener: tokio::net::TcpListener,
    transport: &Transport,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<MeshConnection>> {
    let acceptor = match transport {
        Transport::Plaintext => None,
        Transport::Mtls(tls) => Some(tls.acceptor()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    if tx.send(Err(error)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            // TCP_NODELAY is set here: tonic ignores its builder's
            // `tcp_nodelay` with a caller's own incoming stream.
            let _ = stream.set_nodelay(true);
            let io = crate::lingering_close::LingeringClose::new(stream);
            match &acceptor {
                None => {
                    if tx.send(Ok(MeshConnection::Plain(io))).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let handshake = acceptor.accept(io);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(tls)) => {
                                let _ = tx.send(Ok(MeshConnection::Tls(Box::new(tls)))).await;
                            }
                            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::dev_certs::{DevCa, IssuedCert, Validity};

    /// A server on 127.0.0.1:0 presenting `registry`'s files, with mTLS
    /// against `ca`; stops when the returned sender is dropped.
    async fn tls_server(
        dir: &Path,
        ca: &DevCa,
        registry: &IssuedCert,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let (cert, key) = registry.write(dir, "server").unwrap();
        let ca_path = dir.join("server-ca.pem");
        std::fs::write(&ca_path, ca.cert_pem()).unwrap();
        let transport = Transport::Mtls(MeshTls::load(&cert, &key, &ca_path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let health = crate::ServiceHealth::new();
        health.start().await;
        tokio::spawn(async move {
            crate::serve_grpc_over(
                listener,
                &transport,
                tonic::service::Routes::default(),
                health,
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        (addr, stop_tx)
    }

    /// A client transport presenting `identity` (if any) and trusting `ca`.
    fn client(dir: &Path, name: &str, ca: &DevCa, identity: Option<&IssuedCert>) -> Transport {
        let ca_path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_path, ca.cert_pem()).unwrap();
        match identity {
            Some(identity) => {
                let (cert, key) = identity.write(dir, name).unwrap();
                Transport::Mtls(MeshTls::load(&cert, &key, &ca_path).unwrap())
            }
            None => {
                // A client with the right CA but no certificate to present.
                let unused = ca.issue("unused", Validity::Current).unwrap();
                let (cert, key) = unused.write(dir, name).unwrap();
                let mut tls = MeshTls::load(&cert, &key, &ca_path).unwrap();
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(read_certs(&ca_path).unwrap());
                let mut config = ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"h2".to_vec()];
                tls.client = Arc::new(config);
                Transport::Mtls(tls)
            }
        }
    }

    /// Calls `grpc.health.v1.Health/Check` on a fresh channel.
    async fn health_check(addr: SocketAddr, transport: &Transport) -> Result<(), tonic::Status> {
        let channel = crate::grpc_channel_over(&format!("http://{addr}"), transport).unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            HealthClient::new(channel).check(HealthCheckRequest::default()),
        )
        .await
        .expect("a health check answers within 10 s")
        .map(drop)
    }

    /// The `grpc-status` a bodiless call to `path` gets on a fresh channel.
    async fn call_status(addr: SocketAddr, transport: &Transport, path: &str) -> Option<String> {
        use tower::ServiceExt as _;
        let channel = crate::grpc_channel_over(&format!("http://{addr}"), transport).unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::empty())
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), channel.oneshot(request))
            .await
            .expect("answers within 10 s")
            .ok()?;
        response
            .headers()
            .get("grpc-status")
            .map(|value| value.to_str().unwrap().to_owned())
    }

    /// The identity read from a dev certificate is its `spiffe://imgmesh/`
    /// name; a certificate without such a URI has none.
    #[test]
    fn identity_is_read_from_the_uri_san() {
        let ca = DevCa::new("test CA").unwrap();
        let cert = ca.issue("fetcher", Validity::Current).unwrap();
        let der = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        assert_eq!(peer_identity(&der).as_deref(), Some("fetcher"));
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        assert_eq!(peer_identity(&ca_der), None);
        assert_eq!(subject_alt_uris(&[0x30, 0x05, 0x01]), None, "truncated DER");
    }

    /// Balanced targets speak mutual TLS too: a list of two TLS servers
    /// serves every call, and a DNS name's resolved addresses are dialled
    /// with that name as the TLS server name, so the same servers reached
    /// under a name their certificate carries are served and under one it
    /// does not carry are refused.
    #[tokio::test]
    async fn balanced_targets_speak_mutual_tls() {
        use crate::grpc_balance::{Resolver, balanced_channel, parse_target};

        let dir = tempdir();
        let ca = DevCa::new("mesh CA").unwrap();
        let renderer = ca.issue("renderer", Validity::Current).unwrap();
        let (a, _stop_a) = tls_server(dir.path(), &ca, &renderer).await;
        let (b, _stop_b) = tls_server(dir.path(), &ca, &renderer).await;
        let gateway = ca.issue("gateway", Validity::Current).unwrap();
        let transport = client(dir.path(), "gateway", &ca, Some(&gateway));
        let check = |channel: crate::GrpcChannel| async move {
            tokio::time::timeout(
                Duration::from_secs(10),
                HealthClient::new(channel).check(HealthCheckRequest::default()),
            )
            .await
            .expect("a health check answers within 10 s")
            .map(drop)
        };

        let list = crate::grpc_channel_over(&format!("https://{a},https://{b}"), &transport)
            .expect("a list is accepted with mutual TLS");
        for _ in 0..10 {
            check(list.clone()).await.expect("served over mTLS");
        }

        let both: Resolver = Arc::new(move |_, _| Box::pin(async move { Ok(vec![a, b]) }));
        let hour = Duration::from_secs(3600);
        let named = |host: &str| {
            let target = parse_target(&format!("https://{host}:{}", a.port())).unwrap();
            let (channel, _prober, _task) =
                balanced_channel(target, transport.clone(), both.clone(), hour, hour);
            crate::GrpcChannel::from(channel)
        };
        let served = named("renderer");
        for _ in 0..10 {
            check(served.clone())
                .await
                .expect("the certificate names `renderer`");
        }
        let status = check(named("renderer.elsewhere.test"))
            .await
            .expect_err("the certificate does not name the host");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }

    /// Over real TLS on loopback: a client with a certificate from the mesh
    /// CA is served; one with no certificate, one from another CA and one
    /// with an expired certificate are all refused.
    #[tokio::test]
    async fn only_clients_with_a_valid_mesh_certificate_are_served() {
        let dir = tempdir();
        let ca = DevCa::new("mesh CA").unwrap();
        let registry = ca.issue("source-registry", Validity::Current).unwrap();
        let (addr, _stop) = tls_server(dir.path(), &ca, &registry).await;

        let fetcher = ca.issue("fetcher", Validity::Current).unwrap();
        let good = client(dir.path(), "fetcher", &ca, Some(&fetcher));
        health_check(addr, &good)
            .await
            .expect("valid certificate served");

        let anonymous = client(dir.path(), "anonymous", &ca, None);
        assert!(
            health_check(addr, &anonymous).await.is_err(),
            "no certificate"
        );

        let other_ca = DevCa::new("other CA").unwrap();
        let stranger = other_ca.issue("fetcher", Validity::Current).unwrap();
        // It trusts the mesh CA (so only the server's check can refuse it).
        let stranger = client(dir.path(), "stranger", &ca, Some(&stranger));
        assert!(health_check(addr, &stranger).await.is_err(), "other CA");

        let expired = ca.issue("fetcher", Validity::Expired).unwrap();
        let expired = client(dir.path(), "expired", &ca, Some(&expired));
        assert!(health_check(addr, &expired).await.is_err(), "expired");
    }

    /// The identity policy runs in the TLS server's stack: the renderer's
    /// certificate calling GetReadAccess gets PERMISSION_DENIED (7) and is
    /// counted, while the fetcher's passes the policy (and, no such route
    /// being served here, reaches the router's UNIMPLEMENTED, 12).
    #[tokio::test]
    async fn wrong_identity_is_refused_before_the_service() {
        let dir = tempdir();
        let ca = DevCa::new("mesh CA").unwrap();
        let registry = ca.issue("source-registry", Validity::Current).unwrap();
        let (addr, _stop) = tls_server(dir.path(), &ca, &registry).await;
        let path = "/imgmesh.registry.v1.SourceCredentialsService/GetReadAccess";

        let renderer = ca.issue("renderer", Validity::Current).unwrap();
        let renderer = client(dir.path(), "renderer", &ca, Some(&renderer));
        assert_eq!(
            call_status(addr, &renderer, path).await.as_deref(),
            Some("7")
        );
        let metrics = imgmesh_metrics::encode();
        assert!(
            metrics.contains(
                "imgmesh_grpc_authz_denied_total{grpc_service=\"imgmesh.registry.v1.SourceCredentialsService\",grpc_method=\"GetReadAccess\",peer=\"renderer\"} 1"
            ),
            "{metrics}"
        );

        let fetcher = ca.issue("fetcher", Validity::Current).unwrap();
        let fetcher = client(dir.path(), "fetcher", &ca, Some(&fetcher));
        assert_eq!(
            call_status(addr, &fetcher, path).await.as_deref(),
            Some("12")
        );
    }

    /// Rotation: the server's certificate files are replaced by ones from a
    /// new CA while a client keeps calling over its open connection; every
    /// call succeeds, and a new connection presents the new certificate (a
    /// client trusting only the new CA gets in, one trusting only the old
    /// CA no longer does).
    #[tokio::test]
    async fn rotated_certificate_is_used_by_new_connections() {
        let dir = tempdir();
        let old_ca = DevCa::new("old CA").unwrap();
        let new_ca = DevCa::new("new CA").unwrap();
        // The server trusts clients of both CAs during the rotation.
        let registry = old_ca.issue("source-registry", Validity::Current).unwrap();
        let (cert, key) = registry.write(dir.path(), "server").unwrap();
        let ca_path = dir.path().join("both-ca.pem");
        std::fs::write(
            &ca_path,
            format!("{}{}", old_ca.cert_pem(), new_ca.cert_pem()),
        )
        .unwrap();
        let transport = Transport::Mtls(MeshTls::load(&cert, &key, &ca_path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = crate::ServiceHealth::new();
        health.start().await;
        let (_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            crate::serve_grpc_over(
                listener,
                &transport,
                tonic::service::Routes::default(),
                health,
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
        });

        let old_client = client(
            dir.path(),
            "old-client",
            &old_ca,
            Some(&old_ca.issue("gateway", Validity::Current).unwrap()),
        );
        let new_client = client(
            dir.path(),
            "new-client",
            &new_ca,
            Some(&new_ca.issue("gateway", Validity::Current).unwrap()),
        );
        assert!(
            health_check(addr, &new_client).await.is_err(),
            "not rotated yet"
        );

        // Bounded load over one open connection through the rotation.
        let channel = crate::grpc_channel_over(&format!("http://{addr}"), &old_client).unwrap();
        let mut steady = HealthClient::new(channel);
        let load = tokio::spawn(async move {
            let mut failures = 0;
            for _ in 0..300 {
                if steady.check(HealthCheckRequest::default()).await.is_err() {
                    failures += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        new_ca
            .issue("source-registry", Validity::Current)
            .unwrap()
            .write(dir.path(), "server")
            .unwrap();

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while health_check(addr, &new_client).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "new certificate never presented"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            health_check(addr, &old_client).await.is_err(),
            "old certificate still presented"
        );
        assert_eq!(load.await.unwrap(), 0, "calls failed during the rotation");
    }

    /// Without certificates and without `--insecure-plaintext` the flags are
    /// refused with a message naming both ways out; the flag alone gives
    /// plaintext, and it cannot be combined with certificates.
    #[test]
    fn plaintext_only_when_asked_for() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            tls: TlsArgs,
        }
        let error = Cli::try_parse_from(["x"])
            .unwrap()
            .tls
            .transport()
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("--tls-cert") && message.contains("--insecure-plaintext"),
            "{message}"
        );
        let plain = Cli::try_parse_from(["x", "--insecure-plaintext"]).unwrap();
        assert!(matches!(
            plain.tls.transport().unwrap(),
            Transport::Plaintext
        ));
        assert!(Cli::try_parse_from(["x", "--insecure-plaintext", "--tls-cert", "c.pem"]).is_err());
    }

    /// A temporary directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "imgmesh-mesh-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
