//! The `GET /metrics` listener of a service whose other listeners speak
//! gRPC: bound and announced like them, served in the background, stopped
//! after the main server has drained (so a drain can still be watched).

use std::net::SocketAddr;

use anyhow::Context as _;
use imgmesh_metrics::MetricsArgs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{DRAIN_TIMEOUT, bind};

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
    /// metrics listening on <addr>` and serves `GET /metrics` there in the
    /// background; does nothing when metrics are off.
    pub async fn start(service: &str, args: &MetricsArgs) -> anyhow::Result<MetricsServer> {
        let Some(addr) = args.addr() else {
            tracing::info!("metrics listener off (--metrics-listen=off)");
            return Ok(MetricsServer { running: None });
        };
        let listener = bind(service, "metrics", addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(imgmesh_metrics::serve(listener, async {
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
