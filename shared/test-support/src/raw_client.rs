//! A raw TCP client, for tests of how a server treats clients that
//! misbehave: send exactly these bytes (half a request head, say), then read
//! whatever comes back until the server closes the connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Writes `bytes` on a new connection to `addr`, then reads until the
/// server closes it and returns what it sent (lossily as text); panics when
/// the server keeps the connection open longer than `within`.
pub async fn send_and_read(addr: SocketAddr, bytes: &[u8], within: Duration) -> String {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    stream.write_all(bytes).await.expect("send the bytes");
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .expect("the server kept a stalled connection open")
        .expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server answers before closing is read back whole.
    #[tokio::test]
    async fn reads_until_the_server_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4];
            socket.read_exact(&mut head).await.unwrap();
            socket.write_all(b"HTTP/1.1 408 ").await.unwrap();
        });
        let answer = send_and_read(addr, b"GET ", Duration::from_secs(5)).await;
        assert_eq!(answer, "HTTP/1.1 408 ");
    }
}
