//! Which service identity may call which gRPC method.
//!
//! [`POLICY`] is the whole policy: one row per gRPC service or method, with
//! the identities (the `<service>` of a peer certificate's
//! `spiffe://imgmesh/<service>` SAN, see [`crate::mesh_tls`]) allowed to
//! call it. A method's own row wins over its service's row; a path no row
//! names is refused. [`GrpcAuthzLayer`] enforces it in every mTLS server's
//! stack: a refused call gets `PERMISSION_DENIED` without reaching the
//! service and is counted in
//! `imgmesh_grpc_authz_denied_total{grpc_service,grpc_method,peer}`.
//! docs/security.md shows the same table; a test keeps the two equal.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Any authenticated peer (a certificate from the mesh CA).
pub const ANY_PEER: &str = "*";

/// The identities imgmesh's own processes present.
pub const IDENTITIES: &[&str] = &["gateway", "renderer", "fetcher", "source-registry", "cli"];

/// gRPC service or `service/method` → the identities allowed to call it.
/// imgmesh's own methods are listed one by one (a test checks every `rpc`
/// in proto/ has its row), so a method added later is refused until it is
/// given one.
pub const POLICY: &[(&str, &[&str])] = &[
    // Decrypted S3 credentials: only the fetcher needs them.
    (
        "imgmesh.registry.v1.SourceCredentialsService/GetReadAccess",
        &["fetcher"],
    ),
    // Source reads: the gateway resolves hosts and serves the admin API; the
    // CLI lists and shows.
    (
        "imgmesh.registry.v1.SourceRegistryService/GetSource",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/ListSources",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/ResolveHost",
        &["gateway", "cli"],
    ),
    // Source writes: the gateway's admin API and the operator's CLI.
    (
        "imgmesh.registry.v1.SourceRegistryService/CreateSource",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/UpdateSource",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/DeleteSource",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/DeploySource",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/RotateSecureToken",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/UploadObject",
        &["gateway", "cli"],
    ),
    // Listing a Source's objects: the gateway's dashboard (Assets page).
    (
        "imgmesh.registry.v1.SourceRegistryService/ListObjects",
        &["gateway"],
    ),
    // API keys of the public render API: the gateway authenticates callers;
    // the gateway's admin API and the operator's CLI manage them.
    (
        "imgmesh.registry.v1.SourceRegistryService/AuthenticateApiKey",
        &["gateway"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/CreateApiKey",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/ListApiKeys",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/RevokeApiKey",
        &["gateway", "cli"],
    ),
    // The admin API's named credentials: the gateway authenticates them and
    // manages them for its callers; the operator's CLI manages them.
    (
        "imgmesh.registry.v1.SourceRegistryService/AuthenticateAdminToken",
        &["gateway"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/CreateAdminToken",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/ListAdminTokens",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/RevokeAdminToken",
        &["gateway", "cli"],
    ),
    // The audit log: the gateway's admin API writes every change and reads
    // the log for its callers; the CLI reads it and writes the purges it
    // asks a renderer for (filed under `cli` whatever it names).
    (
        "imgmesh.registry.v1.SourceRegistryService/RecordAuditEvent",
        &["gateway", "cli"],
    ),
    (
        "imgmesh.registry.v1.SourceRegistryService/ListAuditEvents",
        &["gateway", "cli"],
    ),
    // The renderer's internal protocol: the gateway renders and purges; the
    // operator's CLI purges.
    ("imgmesh.renderer.v1.RendererService/Render", &["gateway"]),
    (
        "imgmesh.renderer.v1.RendererService/RenderSet",
        &["gateway"],
    ),
    (
        "imgmesh.renderer.v1.RendererService/RenderBytes",
        &["gateway"],
    ),
    ("imgmesh.renderer.v1.RendererService/Measure", &["gateway"]),
    (
        "imgmesh.renderer.v1.RendererService/Purge",
        &["gateway", "cli"],
    ),
    // Origin bytes: only the renderer fetches.
    (
        "imgmesh.fetcher.v1.FetcherService/FetchObject",
        &["renderer"],
    ),
    // The public render API (the gateway's, on its public listener): any
    // peer a listener lets in.
    ("imgmesh.image.v1.ImageService/Render", &[ANY_PEER]),
    ("imgmesh.image.v1.ImageService/Describe", &[ANY_PEER]),
    ("imgmesh.image.v1.ImageService/RenderSet", &[ANY_PEER]),
    ("imgmesh.image.v1.ImageService/RenderBytes", &[ANY_PEER]),
    // Health and reflection: any authenticated peer.
    ("grpc.health.v1.Health", &[ANY_PEER]),
    ("grpc.reflection.v1.ServerReflection", &[ANY_PEER]),
    ("grpc.reflection.v1alpha.ServerReflection", &[ANY_PEER]),
];

/// Whether `identity` may call the method at `path` (`/<service>/<method>`);
/// `""` stands for a verified certificate that names no identity.
pub fn allowed(path: &str, identity: &str) -> bool {
    let Some((service, method)) = split_path(path) else {
        return false;
    };
    let qualified = format!("{service}/{method}");
    let row = POLICY
        .iter()
        .find(|(name, _)| *name == qualified)
        .or_else(|| POLICY.iter().find(|(name, _)| *name == service));
    row.is_some_and(|(_, identities)| {
        identities
            .iter()
            .any(|allowed| *allowed == ANY_PEER || *allowed == identity)
    })
}

fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// What a server knows of the peer of a connection: its service identity
/// when the connection is mutual TLS. Put in each request's extensions by
/// the connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer's address.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// The peer certificate's service identity; `None` on plaintext, or
    /// when a verified certificate names no (or more than one) identity.
    pub identity: Option<String>,
    /// Whether the connection is mutual TLS (and the policy applies).
    pub mtls: bool,
}

// === metrics ===

type DeniedLabels = [(&'static str, String); 3];

static DENIED: LazyLock<Family<DeniedLabels, Counter>> = LazyLock::new(|| {
    let family: Family<DeniedLabels, Counter> = imgmesh_metrics::register(|metrics| {
        metrics.metric(
            "imgmesh_grpc_authz_denied",
            "gRPC calls refused by the service-identity policy, by method and peer identity",
            Family::default(),
        )
    });
    for (name, identities) in POLICY {
        let Some((service, method)) = name.split_once('/') else {
            continue;
        };
        for peer in IDENTITIES {
            if !identities.iter().any(|id| id == peer || *id == ANY_PEER) {
                let _ = family.get_or_create(&labels(service, method, peer));
            }
        }
    }
    family
});

fn labels(service: &str, method: &str, peer: &str) -> DeniedLabels {
    [
        ("grpc_service", service.to_owned()),
        ("grpc_method", method.to_owned()),
        ("peer", peer.to_owned()),
    ]
}

/// Creates `imgmesh_grpc_authz_denied_total` (every refusable pair of a
/// policy method and an imgmesh identity at zero) so it is exported before
/// any refusal.
pub fn register_metrics() {
    LazyLock::force(&DENIED);
}

// === impl GrpcAuthzLayer ===

/// The tower layer that enforces [`POLICY`] on mTLS connections (on
/// plaintext ones there is no identity to check, and it lets calls pass).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcAuthzLayer;

/// The service [`GrpcAuthzLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct GrpcAuthz<S> {
    inner: S,
}

impl<S> tower::Layer<S> for GrpcAuthzLayer {
    type Service = GrpcAuthz<S>;

    fn layer(&self, inner: S) -> GrpcAuthz<S> {
        register_metrics();
        GrpcAuthz { inner }
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for GrpcAuthz<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let peer = request.extensions().get::<PeerInfo>();
        if let Some(peer) = peer.filter(|peer| peer.mtls) {
            let path = request.uri().path();
            let identity = peer.identity.as_deref();
            // A verified certificate without an identity may still call
            // what any authenticated peer may.
            if !allowed(path, identity.unwrap_or("")) {
                let (service, method) = split_path(path).unwrap_or(("other", "other"));
                let peer_label = identity.unwrap_or("none");
                // Unknown services and identities share one label so a
                // probing client cannot grow the registry without bound.
                let known = POLICY.iter().any(|(name, _)| {
                    *name == service || name.split_once('/').is_some_and(|(s, _)| s == service)
                });
                let (service, method) = if known {
                    (service, method)
                } else {
                    ("other", "other")
                };
                let peer_label = if IDENTITIES.contains(&peer_label) {
                    peer_label
                } else {
                    "other"
                };
                DENIED
                    .get_or_create(&labels(service, method, peer_label))
                    .inc();
                tracing::warn!(
                    grpc_service = service,
                    grpc_method = method,
                    peer = peer_label,
                    "gRPC call refused by the identity policy"
                );
                let status = tonic::Status::permission_denied(format!(
                    "identity {peer_label:?} may not call {service}/{method}"
                ));
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy reads as the issue asks: only the fetcher gets
    /// credentials, writes come from the gateway and the CLI only, renders
    /// from the gateway only, health from anyone, unknown paths from no one.
    #[test]
    fn policy_rows_decide_as_specified() {
        let creds = "/imgmesh.registry.v1.SourceCredentialsService/GetReadAccess";
        assert!(allowed(creds, "fetcher"));
        for other in ["renderer", "gateway", "cli", "source-registry"] {
            assert!(!allowed(creds, other), "{other}");
        }
        let create = "/imgmesh.registry.v1.SourceRegistryService/CreateSource";
        assert!(allowed(create, "gateway") && allowed(create, "cli"));
        assert!(!allowed(create, "renderer") && !allowed(create, "fetcher"));
        let render = "/imgmesh.renderer.v1.RendererService/Render";
        assert!(allowed(render, "gateway") && !allowed(render, "cli"));
        assert!(allowed("/imgmesh.renderer.v1.RendererService/Purge", "cli"));
        assert!(allowed("/grpc.health.v1.Health/Check", "fetcher"));
        assert!(
            allowed("/grpc.health.v1.Health/Check", ""),
            "no identity, health"
        );
        assert!(!allowed(creds, ""), "no identity, credentials");
        assert!(!allowed("/unknown.Service/Call", "gateway"));
        assert!(!allowed("not-a-path", "gateway"));
    }
}

#[cfg(test)]
mod proto_tests {
    use super::*;

    /// Every `rpc` of every service in proto/ has a row of its own in
    /// [`POLICY`], and every imgmesh row names a method that exists.
    #[test]
    fn every_rpc_has_a_policy_row() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/imgmesh");
        let mut methods = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "proto") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let package = text
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("package "))
                    .map(|package| package.trim_end_matches(';').to_owned());
                let mut service = None;
                for line in text.lines().map(str::trim) {
                    if let Some(rest) = line.strip_prefix("service ") {
                        service = rest.split_whitespace().next().map(str::to_owned);
                    } else if let Some(rest) = line.strip_prefix("rpc ") {
                        let method = rest.split('(').next().unwrap().trim();
                        methods.push(format!(
                            "{}.{}/{method}",
                            package.as_deref().unwrap(),
                            service.as_deref().unwrap()
                        ));
                    }
                }
            }
        }
        assert!(methods.len() >= 10, "found {methods:?}");
        for method in &methods {
            assert!(
                POLICY.iter().any(|(name, _)| name == method),
                "{method} has no row in grpc_authz::POLICY"
            );
        }
        for (name, _) in POLICY
            .iter()
            .filter(|(name, _)| name.starts_with("imgmesh."))
        {
            assert!(
                methods.iter().any(|method| method == name),
                "{name} is no rpc"
            );
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// The identity table in docs/security.md, as [`POLICY`] says it.
    fn table() -> String {
        let mut table =
            String::from("| gRPC service or method | Allowed identities |\n|---|---|\n");
        for (name, identities) in POLICY {
            let allowed = identities
                .iter()
                .map(|id| match *id {
                    ANY_PEER => "any authenticated peer".to_owned(),
                    id => format!("`{id}`"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            table.push_str(&format!("| `{name}` | {allowed} |\n"));
        }
        table
    }

    /// docs/security.md shows exactly the policy the servers enforce.
    #[test]
    fn security_page_shows_the_policy_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
        let page = std::fs::read_to_string(path).unwrap();
        let expected = table();
        assert!(
            page.contains(&expected),
            "docs/security.md's identity table differs from grpc_authz::POLICY; it should read:\n{expected}"
        );
    }
}
