//! W4's load generator: W1's miss URLs sent by N keep-alive HTTP/1.1
//! connections for a fixed time, with every response's latency recorded by
//! its kind — rendered (200 and `X-Imgmesh-Cache: miss`), a cache hit (a
//! URL met again: W1 has 4000 distinct URLs and shed requests use them up
//! too), shed (503 with `Retry-After`) or other — because wrk reports one
//! latency distribution for all of them and W4 needs them apart.
//!
//! Prints `key value` lines: `requests`, `rps`, `ok` (rendered), `ok_p50_ms`,
//! `ok_p99_ms`, `hits`, `shed`, `shed_p50_ms`, `shed_p99_ms`, `other`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Sends W1 miss traffic and reports latencies by outcome.
#[derive(Debug, Parser)]
struct Args {
    /// The gateway's HTTP address.
    #[arg(long)]
    target: SocketAddr,
    /// The `Host` header (the Source's subdomain).
    #[arg(long, default_value = "demo.localhost")]
    host: String,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// First URL number, so repetitions never repeat a URL.
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

/// The corpus images W1 rotates through.
const IMAGES: [&str; 5] = [
    "2004default.jpg",
    "firstgeneration.jpg",
    "rhythm.jpg",
    "string.jpg",
    "the-mouse.jpg",
];

/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Hit,
    Shed,
    Other,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(args.offset));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (host, target, counter) = (args.host.clone(), args.target, counter.clone());
        tasks.spawn(async move { connection(target, host, counter, until).await });
    }
    let mut samples: Vec<(Outcome, Duration)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done.context("a load task panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let of = |kind: Outcome| -> Vec<Duration> {
        let mut picked: Vec<Duration> = samples
            .iter()
            .filter(|(outcome, _)| *outcome == kind)
            .map(|(_, latency)| *latency)
            .collect();
        picked.sort();
        picked
    };
    let (ok, shed, other) = (of(Outcome::Ok), of(Outcome::Shed), of(Outcome::Other));
    println!("requests {}", samples.len());
    println!("rps {:.2}", samples.len() as f64 / elapsed);
    println!("ok {}", ok.len());
    println!("ok_p50_ms {:.2}", percentile_ms(&ok, 0.50));
    println!("ok_p99_ms {:.2}", percentile_ms(&ok, 0.99));
    println!("hits {}", of(Outcome::Hit).len());
    println!("shed {}", shed.len());
    println!("shed_p50_ms {:.2}", percentile_ms(&shed, 0.50));
    println!("shed_p99_ms {:.2}", percentile_ms(&shed, 0.99));
    println!("other {}", other.len());
    Ok(())
}

/// The `q` quantile of sorted `latencies` in milliseconds (0 when empty).
fn percentile_ms(latencies: &[Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[index].as_secs_f64() * 1000.0
}

/// One keep-alive connection sending requests one after another until
/// `until`; reconnects when the server closes.
async fn connection(
    target: SocketAddr,
    host: String,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    until: Instant,
) -> anyhow::Result<Vec<(Outcome, Duration)>> {
    let mut samples = Vec::new();
    let mut stream: Option<TcpStream> = None;
    while Instant::now() < until {
        let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = format!(
            "/{}?w={}&q=80&fm=jpg",
            IMAGES[(i % 5) as usize],
            300 + (i % 800)
        );
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let sent = Instant::now();
        if stream.is_none() {
            let connected = TcpStream::connect(target).await?;
            connected.set_nodelay(true)?;
            stream = Some(connected);
        }
        let Some(open) = stream.as_mut() else {
            continue;
        };
        let answer = async {
            open.write_all(request.as_bytes()).await?;
            read_response(open).await
        }
        .await;
        match answer {
            Ok((outcome, keep_alive)) => {
                samples.push((outcome, sent.elapsed()));
                if !keep_alive {
                    stream = None;
                }
            }
            Err(_) => {
                samples.push((Outcome::Other, sent.elapsed()));
                stream = None;
            }
        }
    }
    Ok(samples)
}

/// Reads one response; returns its outcome and whether the connection
/// stays open.
async fn read_response(stream: &mut TcpStream) -> anyhow::Result<(Outcome, bool)> {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 4096];
    let end = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        anyhow::ensure!(head.len() < MAX_HEAD, "response head too large");
        let n = stream.read(&mut byte).await?;
        anyhow::ensure!(n > 0, "connection closed");
        head.extend_from_slice(&byte[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let mut length = 0usize;
    let mut keep_alive = true;
    let mut retry_after = false;
    let mut hit = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim() {
                "content-length" => length = value.trim().parse().context("content-length")?,
                "connection" if value.trim() == "close" => keep_alive = false,
                "retry-after" => retry_after = true,
                "x-imgmesh-cache" => hit = value.trim() != "miss",
                "transfer-encoding" => anyhow::bail!("chunked responses are not expected"),
                _ => {}
            }
        }
    }
    let mut have = head.len() - end;
    while have < length {
        let n = stream.read(&mut byte).await?;
        anyhow::ensure!(n > 0, "connection closed in the body");
        have += n;
    }
    let outcome = match status {
        200 if hit => Outcome::Hit,
        200 => Outcome::Ok,
        503 if retry_after => Outcome::Shed,
        _ => Outcome::Other,
    };
    Ok((outcome, keep_alive))
}
