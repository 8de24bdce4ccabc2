//! In-test gRPC peers: tonic routes (a fake registry, a fake renderer…)
//! served by a real tonic server on `127.0.0.1:0` until dropped.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

/// A tonic server on a loopback port it picked itself; stops (and refuses
/// connections from then on) when dropped.
#[derive(Debug)]
pub struct GrpcPeer {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

// === impl GrpcPeer ===

impl GrpcPeer {
    /// Serves `routes` on `127.0.0.1:0`. The listener is bound before this
    /// returns, so clients may connect at once.
    pub async fn serve(routes: tonic::service::Routes) -> GrpcPeer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound listener's address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(server);
        GrpcPeer { addr, _stop: stop }
    }

    /// Where the peer listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, as a client flag takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
