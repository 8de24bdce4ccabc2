//! One HTTP/1.1 response read off a keep-alive connection, for the load
//! clients that send one request at a time on it (`imgmesh-load`,
//! `imgmesh-purge-window`): its status and headers, with its
//! `Content-Length` body read and dropped, so the next response starts
//! where this one ended.

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;

/// What a response's head said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The status code.
    pub(crate) status: u16,
    /// Whether the server keeps the connection open (no `Connection: close`).
    pub(crate) keep_alive: bool,
    /// The header fields, names and values lowercased, values trimmed.
    headers: Vec<(String, String)>,
}

// === impl ResponseHead ===

impl ResponseHead {
    /// The value of header `name` (lowercase), when the response has it.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads one response from `stream` and its body, which is dropped. The
/// body must have a `Content-Length` (none means empty); a chunked one, or
/// bytes past the body (only one request may be in flight), are errors.
pub(crate) async fn read_response<S>(stream: &mut S) -> anyhow::Result<ResponseHead>
where
    S: AsyncRead + Unpin,
{
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        anyhow::ensure!(head.len() < MAX_HEAD, "response head too large");
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        head.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let response = ResponseHead {
        status,
        keep_alive: true,
        headers,
    };
    anyhow::ensure!(
        response.header("transfer-encoding").is_none(),
        "chunked responses are not expected"
    );
    let length: usize = response
        .header("content-length")
        .map(str::parse)
        .transpose()
        .context("content-length")?
        .unwrap_or(0);
    let mut have = head.len() - end;
    while have < length {
        let wanted = chunk.len().min(length - have);
        let n = stream.read(&mut chunk[..wanted]).await?;
        anyhow::ensure!(n > 0, "connection closed in the body");
        have += n;
    }
    anyhow::ensure!(have == length, "bytes past the response's body");
    let keep_alive = response.header("connection") != Some("close");
    Ok(ResponseHead {
        keep_alive,
        ..response
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    /// A response whose body spans several reads is read to its end, so
    /// the response sent next on the connection is read whole too.
    #[tokio::test]
    async fn responses_are_read_one_after_another() {
        let (mut server, mut client) = tokio::io::duplex(4096);
        let body = vec![b'x'; 40_000];
        let writer = tokio::spawn(async move {
            let first = format!(
                "HTTP/1.1 200 OK\r\nX-Imgmesh-Cache: HIT\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            server.write_all(first.as_bytes()).await.unwrap();
            server.write_all(&body).await.unwrap();
            server
        });
        let first = read_response(&mut client).await.unwrap();
        assert_eq!(first.status, 200);
        assert_eq!(first.header("x-imgmesh-cache"), Some("hit"));
        assert!(first.keep_alive);

        let mut server = writer.await.unwrap();
        server
            .write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: Close\r\n\
                  content-length: 2\r\n\r\nno",
            )
            .await
            .unwrap();
        let second = read_response(&mut client).await.unwrap();
        assert_eq!(second.status, 503);
        assert_eq!(second.header("retry-after"), Some("1"));
        assert_eq!(second.header("x-imgmesh-cache"), None);
        assert!(!second.keep_alive);
    }

    /// A response without `Content-Length` has no body.
    #[tokio::test]
    async fn no_content_length_is_an_empty_body() {
        let mut input: &[u8] = b"HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\n\r\n";
        let head = read_response(&mut input).await.unwrap();
        assert_eq!(head.status, 304);
        assert_eq!(head.header("etag"), Some("\"a\""));
    }

    /// Chunked bodies, a missing status line, a connection closed in the
    /// head or the body, bytes past the body and an endless head are errors.
    #[tokio::test]
    async fn broken_responses_are_errors() {
        let endless = format!("HTTP/1.1 200 OK\r\n{}", "x-pad: y\r\n".repeat(8_000));
        let cases: [(&[u8], &str); 6] = [
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
                "chunked",
            ),
            (b"\r\n\r\n", "no status line"),
            (b"HTTP/1.1 200 OK\r\ncontent-le", "connection closed"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab",
                "connection closed in the body",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nabHTTP/1.1",
                "bytes past",
            ),
            (endless.as_bytes(), "too large"),
        ];
        for (mut input, expected) in cases {
            let error = read_response(&mut input).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
