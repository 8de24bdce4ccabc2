//! The purge window: how long after a purge through the admin API returns
//! a gateway may still serve the derivative it purged from its hot copy.
//!
//! Each round warms every gateway on one derivative (three hits in a row,
//! so each holds a trusted copy), starts one poller per gateway sending
//! GETs back to back on a keep-alive connection, purges the asset through
//! the admin API, and records, per gateway, when the last hit of the old
//! copy was received relative to the moment the purge's response was read
//! (0 when the last hit came before it). A poller stops at its first
//! non-hit sent after the purge was sent: the gateway refused the old copy.
//!
//! Prints `key value` lines: `samples` (rounds × gateways), `p50_ms`,
//! `p99_ms`, `max_ms` of the window, `late_hits` (samples in which a hit
//! was received after the purge returned) and `purge_p50_ms` (the purge
//! call's own latency).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

#[path = "../response_head.rs"]
mod response_head;

/// Measures how long gateways serve a purged hot copy.
#[derive(Debug, Parser)]
struct Args {
    /// The gateways' HTTP addresses, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    gateways: Vec<SocketAddr>,
    /// The admin API's address.
    #[arg(long)]
    admin: SocketAddr,
    /// A file holding the admin token.
    #[arg(long)]
    admin_token_file: PathBuf,
    /// The Source's name (for the purge) and subdomain (for the `Host`).
    #[arg(long, default_value = "demo")]
    source: String,
    /// The base domain the gateways serve.
    #[arg(long, default_value = "localhost")]
    base_domain: String,
    /// The asset purged each round.
    #[arg(long, default_value = "rhythm.jpg")]
    asset: String,
    /// The query of the derivative asked for.
    #[arg(long, default_value = "w=400&q=80&fm=jpg")]
    query: String,
    /// Rounds (each gives one sample per gateway).
    #[arg(long, default_value_t = 40)]
    rounds: usize,
}

/// Longest a response may take (a miss renders).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// One response: its status and whether it was a cache hit.
#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    hit: bool,
}

/// A keep-alive HTTP/1.1 connection, opened again when the server
/// closes it.
struct Connection {
    addr: SocketAddr,
    stream: TcpStream,
    host: String,
    /// The server said `Connection: close` in its last response.
    closed: bool,
}

// === impl Connection ===

impl Connection {
    async fn open(addr: SocketAddr, host: &str) -> anyhow::Result<Connection> {
        Ok(Connection {
            addr,
            stream: connect(addr).await?,
            host: host.to_owned(),
            closed: false,
        })
    }

    /// Sends one request and reads its whole response.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> anyhow::Result<Answer> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        if self.closed {
            self.stream = connect(self.addr).await?;
            self.closed = false;
        }
        self.stream.write_all(request.as_bytes()).await?;
        let head = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            response_head::read_response(&mut self.stream),
        )
        .await
        .context("response timed out")??;
        self.closed = !head.keep_alive;
        Ok(Answer {
            status: head.status,
            hit: head.header("x-imgmesh-cache") == Some("hit"),
        })
    }
}

/// A TCP connection to `addr` with Nagle's delay off.
async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// When the purge was sent, once it was.
#[derive(Debug, Default, Clone, Copy)]
struct PurgeTimes {
    sent: Option<Instant>,
}

/// What one poller saw: when it last received a hit.
#[derive(Debug)]
struct Polled {
    last_hit: Option<Instant>,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&args.admin_token_file)
        .context("reading the admin token")?
        .trim()
        .to_owned();
    let host = format!("{}.{}", args.source, args.base_domain);
    let path = format!("/{}?{}", args.asset.trim_start_matches('/'), args.query);
    let purge_body = serde_like_json(&args.asset);
    let mut admin = Connection::open(args.admin, "localhost").await?;
    let mut windows: Vec<Duration> = Vec::new();
    let mut late_hits = 0usize;
    let mut purge_latencies: Vec<Duration> = Vec::new();
    for _ in 0..args.rounds {
        for &gateway in &args.gateways {
            warm(gateway, &host, &path).await?;
        }
        let times = Arc::new(Mutex::new(PurgeTimes::default()));
        let pollers: Vec<_> = args
            .gateways
            .iter()
            .map(|&gateway| {
                let (host, path, times) = (host.clone(), path.clone(), times.clone());
                tokio::spawn(async move { poll(gateway, &host, &path, &times).await })
            })
            .collect();
        // Let every poller have a request or two in flight first.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = Instant::now();
        times.lock().unwrap_or_else(|e| e.into_inner()).sent = Some(sent);
        let answer = admin
            .send(
                "POST",
                &format!("/v1/sources/{}/purge", args.source),
                &format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"),
                &purge_body,
            )
            .await?;
        let returned = Instant::now();
        anyhow::ensure!(answer.status == 200, "purge answered {}", answer.status);
        purge_latencies.push(returned - sent);
        for poller in pollers {
            let polled = poller.await.context("poller panicked")??;
            let window = polled.last_hit.map_or(Duration::ZERO, |last| {
                last.saturating_duration_since(returned)
            });
            if !window.is_zero() {
                late_hits += 1;
            }
            windows.push(window);
        }
    }
    windows.sort();
    purge_latencies.sort();
    println!("samples {}", windows.len());
    println!("p50_ms {:.3}", percentile_ms(&windows, 0.50));
    println!("p99_ms {:.3}", percentile_ms(&windows, 0.99));
    println!("max_ms {:.3}", percentile_ms(&windows, 1.0));
    println!("late_hits {late_hits}");
    println!("purge_p50_ms {:.3}", percentile_ms(&purge_latencies, 0.50));
    Ok(())
}

/// The admin API's purge body for one asset.
fn serde_like_json(asset: &str) -> String {
    let escaped: String = asset
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("{{\"path\":\"{escaped}\"}}")
}

/// Asks `gateway` until three answers in a row are hits (the last ones
/// from its hot copy).
async fn warm(gateway: SocketAddr, host: &str, path: &str) -> anyhow::Result<()> {
    let mut connection = Connection::open(gateway, host).await?;
    let mut in_a_row = 0;
    for _ in 0..50 {
        let answer = connection.send("GET", path, "", "").await?;
        anyhow::ensure!(answer.status == 200, "{gateway}: status {}", answer.status);
        in_a_row = if answer.hit { in_a_row + 1 } else { 0 };
        if in_a_row == 3 {
            return Ok(());
        }
    }
    anyhow::bail!("{gateway} never answered three hits in a row")
}

/// Sends GETs back to back until a non-hit sent after the purge was sent;
/// returns when the last hit was received.
async fn poll(
    gateway: SocketAddr,
    host: &str,
    path: &str,
    times: &Mutex<PurgeTimes>,
) -> anyhow::Result<Polled> {
    let mut connection = Connection::open(gateway, host).await?;
    let mut last_hit = None;
    let deadline = Instant::now() + RESPONSE_TIMEOUT;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{gateway} never refused the copy"
        );
        let sent_at = Instant::now();
        let answer = connection.send("GET", path, "", "").await?;
        let received = Instant::now();
        anyhow::ensure!(answer.status == 200, "{gateway}: status {}", answer.status);
        let purge_sent = times.lock().unwrap_or_else(|e| e.into_inner()).sent;
        if answer.hit {
            last_hit = Some(received);
        } else if purge_sent.is_some_and(|purge| sent_at >= purge) {
            return Ok(Polled { last_hit });
        }
    }
}

/// The `q` quantile of sorted `values`, in milliseconds.
fn percentile_ms(values: &[Duration], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((values.len() as f64) * q).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quantiles are nearest-rank over the sorted samples.
    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&values, 0.5), 50.0);
        assert_eq!(percentile_ms(&values, 0.99), 99.0);
        assert_eq!(percentile_ms(&values, 1.0), 100.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    /// The purge body names the asset, quotes escaped.
    #[test]
    fn the_purge_body_is_json() {
        assert_eq!(serde_like_json("a/b.jpg"), r#"{"path":"a/b.jpg"}"#);
        assert_eq!(serde_like_json(r#"a"b"#), r#"{"path":"a\"b"}"#);
    }
}
