//! An S3 front that answers like AWS S3 answers credentials whose IAM
//! policy lacks one permission (which `s3s-fs` cannot express): per
//! [`Policy`], one operation is refused with 403 AccessDenied and the
//! others answer with canned, well-formed replies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The operations a deploy makes, as the policy front tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Operation {
    /// `GET /<bucket>?location`.
    GetBucketLocation,
    /// `GET /<bucket>?list-type=2…`.
    ListObjectsV2,
    /// `GET /<bucket>/<key>`.
    GetObject,
    /// `PUT /<bucket>/<key>`.
    PutObject,
}

/// What the policy front answers to each operation.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The operation refused with 403 AccessDenied, if any.
    pub denied: Option<S3Operation>,
    /// The bucket's region as GetBucketLocation reports it ("" = us-east-1).
    pub location: &'static str,
    /// The key ListObjectsV2 returns, if any.
    pub listed_key: Option<&'static str>,
}

/// A path-style S3 front on a loopback port answering per [`Policy`], like
/// AWS S3 answers credentials whose IAM policy lacks a permission.
#[derive(Debug)]
pub struct PolicyFront {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

// === impl PolicyFront ===

impl PolicyFront {
    /// Starts the front on a loopback port it picked itself.
    pub async fn start(policy: Policy) -> PolicyFront {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let policy = policy.clone();
                tokio::spawn(async move {
                    let head = read_head(&mut stream).await;
                    let response = answer(&policy, &head);
                    let _ = stream.write_all(&response).await;
                });
            }
        });
        PolicyFront {
            endpoint,
            requests,
            task,
        }
    }

    /// How many connections it accepted.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for PolicyFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a request's head and, per its Content-Length, its body; returns
/// the head.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let body_len: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body_read = received.len() - head_end;
    while body_read < body_len {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body_read += n,
        }
    }
    head
}

/// The full HTTP response to a request whose head is `head`.
fn answer(policy: &Policy, head: &str) -> Vec<u8> {
    let mut request_line = head.split_whitespace();
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let operation = if method == "PUT" {
        S3Operation::PutObject
    } else if query
        .split('&')
        .any(|p| p == "location" || p == "location=")
    {
        S3Operation::GetBucketLocation
    } else if query.contains("list-type=2") {
        S3Operation::ListObjectsV2
    } else {
        S3Operation::GetObject
    };
    if policy.denied == Some(operation) {
        return response(
            "403 Forbidden",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>Access Denied</Message></Error>",
        );
    }
    match operation {
        S3Operation::GetBucketLocation => response(
            "200 OK",
            &format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint \
                 xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</LocationConstraint>",
                policy.location
            ),
        ),
        S3Operation::ListObjectsV2 => {
            let bucket = path.trim_start_matches('/');
            let contents = policy
                .listed_key
                .map(|key| format!("<Contents><Key>{key}</Key><Size>1</Size></Contents>"))
                .unwrap_or_default();
            let count = usize::from(policy.listed_key.is_some());
            response(
                "200 OK",
                &format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult \
                     xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name>\
                     <KeyCount>{count}</KeyCount><MaxKeys>1</MaxKeys>\
                     <IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
                ),
            )
        }
        S3Operation::PutObject => {
            b"HTTP/1.1 200 OK\r\netag: \"0123\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .to_vec()
        }
        S3Operation::GetObject => {
            b"HTTP/1.1 206 Partial Content\r\ncontent-length: 1\r\ncontent-range: bytes 0-0/1\r\n\
              connection: close\r\n\r\nx"
                .to_vec()
        }
    }
}

/// A whole `application/xml` response with `body`.
fn response(status_line: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
