//! The operations listener of a service whose other listeners speak gRPC:
//! `GET /metrics`, and the probes `GET /ready` and `GET /live` in plaintext
//! HTTP. Bound and announced like the gRPC listeners, served in the
//! background, stopped after the main server has drained (so a drain can
//! still be watched).
//!
//! The gRPC ports speak mutual TLS only, which Kubernetes' gRPC probes and a
//! container healthcheck cannot; like Linkerd's proxy admin port, this
//! listener answers them without a certificate and tells nothing secret:
//! `/ready` is 200 `SERVING` exactly while the process's `grpc.health.v1`
//! reports SERVING for the whole server ([`process_status`]), else 503 with
//! the status name (`NOT_SERVING`, or `UNKNOWN` before the gRPC server
//! starts); `/live` is 200 while the process answers at all (a dependency
//! failing is a reason to stop routing to it, not to restart it).

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use imgmesh_metrics::MetricsArgs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;

use crate::{DRAIN_TIMEOUT, bind, process_status};

/// A running (or, with `--metrics-listen=off`, absent) metrics listener.
/// Dropping it stops the listener without waiting; [`MetricsServer::stop`]
/// waits.
#[derive(Debug)]
pub struct MetricsServer {
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

// === impl MetricsServer ===

impl MetricsServer {
    /// Binds the address `args` names, announces it as `imgmesh <service>
    /// metrics listening on <addr>` and serves `GET /metrics`, `GET /ready`
    /// and `GET /live` there in the background; does nothing when metrics
    /// are off.
    pub async fn start(service: &str, args: &MetricsArgs) -> anyhow::Result<MetricsServer> {
        let Some(addr) = args.addr() else {
            tracing::info!("metrics listener off (--metrics-listen=off)");
            return Ok(MetricsServer { running: None });
        };
        let listener = bind(service, "metrics", addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = imgmesh_metrics::router()
            .route_service("/ready", tower::service_fn(ready))
            .route_service("/live", tower::service_fn(live));
        let task = tokio::spawn(imgmesh_metrics::serve_router(listener, routes, async {
            let _ = stopped.await;
        }));
        Ok(MetricsServer {
            running: Some(Running { addr, stop, task }),
        })
    }

    /// The bound address, when the listener runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(|running| running.addr)
    }

    /// Stops accepting scrapes and lets in-flight ones finish (at most
    /// [`DRAIN_TIMEOUT`]); an error if the listener had failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(Running { stop, mut task, .. }) = self.running.take() else {
            return Ok(());
        };
        let _ = stop.send(());
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await {
            Ok(joined) => joined.context("metrics server task failed")?,
            Err(_) => {
                task.abort();
                tracing::warn!("metrics drain timed out; dropping remaining scrapes");
                Ok(())
            }
        }
    }
}

/// `GET /ready`: 200 `SERVING` while the process's gRPC health reports
/// SERVING, else 503 with the status it reports.
async fn ready<B>(_request: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let status = process_status();
    let code = if status == ServingStatus::Serving {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(probe_answer(code, status_name(status)))
}

/// `GET /live`: 200 while the process answers.
async fn live<B>(_request: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    Ok(probe_answer(http::StatusCode::OK, "live"))
}

/// The `grpc.health.v1` name of `status`.
fn status_name(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
        ServingStatus::Unknown => "UNKNOWN",
    }
}

/// A probe's answer: `body` and a newline, as plain text never cached.
fn probe_answer(code: http::StatusCode, body: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        metrics: MetricsArgs,
    }

    fn args(flag: &str) -> MetricsArgs {
        Flags::try_parse_from(["service", flag]).unwrap().metrics
    }

    /// The listener serves `/metrics` on the port it picked, then stops.
    #[tokio::test]
    async fn serves_on_a_free_port_until_stopped() {
        let server = MetricsServer::start("test", &args("--metrics-listen=127.0.0.1:0"))
            .await
            .unwrap();
        let addr = server.local_addr().expect("listening");
        assert_ne!(addr.port(), 0);

        let response = imgmesh_metrics::scrape(addr).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("# EOF\n"), "{response}");

        server.stop().await.unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// `/ready` answers what the process's gRPC health reports (200
    /// `SERVING`, then 503 `NOT_SERVING` once shutdown starts) and `/live`
    /// stays 200 throughout, in plaintext HTTP with no certificate.
    #[tokio::test]
    async fn probes_follow_the_process_health() {
        let server = MetricsServer::start("test", &args("--metrics-listen=127.0.0.1:0"))
            .await
            .unwrap();
        let addr = server.local_addr().expect("listening");
        let get = |path: &'static str| crate::service_health::http_get(addr, path);

        let health = crate::ServiceHealth::new();
        health.start().await;
        assert_eq!(get("/ready").await.unwrap(), (200, "SERVING\n".to_owned()));
        assert_eq!(get("/live").await.unwrap(), (200, "live\n".to_owned()));

        health.shut_down().await;
        assert_eq!(
            get("/ready").await.unwrap(),
            (503, "NOT_SERVING\n".to_owned())
        );
        assert_eq!(get("/live").await.unwrap(), (200, "live\n".to_owned()));
        server.stop().await.unwrap();
    }

    /// With `--metrics-listen=off` nothing is bound and stopping is a no-op.
    #[tokio::test]
    async fn off_binds_nothing() {
        let server = MetricsServer::start("test", &args("--metrics-listen=off"))
            .await
            .unwrap();
        assert_eq!(server.local_addr(), None);
        server.stop().await.unwrap();
    }
}
