//! Waiting for something to become true — a port that accepts, a server
//! that answers — by polling it until a deadline, never by a fixed sleep.

use std::future::Future;
use std::time::Duration;

use anyhow::bail;

/// How often a condition is checked again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Checks `ready` every 20 ms until it returns true, or fails saying
/// `what` did not happen within `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not happen within {timeout:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    wait_until(
        &format!("a listener on port {port}"),
        timeout,
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A condition that never holds fails once the deadline passes.
    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let error = wait_until("nothing", Duration::from_millis(50), || async { false })
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("nothing did not happen"),
            "{error}"
        );
    }

    /// A port with a listener is ready at once.
    #[tokio::test]
    async fn a_listening_port_is_ready() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        wait_for_port(port, Duration::from_secs(1)).await.unwrap();
    }
}
