//! A minimal HTTP/1.1 client for talking to the gateway with an explicit
//! `Host` header (the gateway routes by host, the socket is loopback).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};

/// A response with its headers lowercased and body collected.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lowercase names; the last value wins.
    pub headers: HashMap<String, String>,
    /// The whole body.
    pub body: bytes::Bytes,
}

// === impl HttpResponse ===

impl HttpResponse {
    /// A header value, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as text (lossy), for assertions on error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `GET path_and_query` to `addr` with `Host: host` and extra headers.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    request("GET", addr, host, path_and_query, headers).await
}

/// Sends a request with an empty body.
pub async fn request(
    method: &str,
    addr: SocketAddr,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    request_with_body(method, addr, host, path_and_query, headers, Vec::new()).await
}

/// Sends a request with `body` (sent with its `Content-Length`).
pub async fn request_with_body(
    method: &str,
    addr: SocketAddr,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<HttpResponse> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(bytes::Bytes::from(body)))?;
    let response = tokio::time::timeout(Duration::from_secs(60), sender.send_request(request))
        .await
        .context("gateway did not answer within 60 s")??;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}
