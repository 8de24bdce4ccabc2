//! W4's load generator: W1's miss URLs sent by N keep-alive HTTP/1.1
//! connections for a fixed time, with every response's latency recorded by
//! its kind — rendered (200 and `X-Imgmesh-Cache: miss`), a cache hit (a
//! URL met again, or left cached by an earlier workload), shed (503 with
//! `Retry-After`) or other — because wrk reports one latency distribution
//! for all of them and W4 needs them apart.
//!
//! The URLs are bench/w1.lua's: number `i` is image `i % 5` at width
//! `300 + ((i / 5) * 493) % 800`, so any 4000 consecutive numbers are the
//! 4000 distinct URLs. A connection whose request was shed sends the same
//! number again (a shed request rendered nothing), so numbers are used up
//! by answers alone and an overloaded run does not wrap around into hits.
//!
//! Prints `key value` lines: `requests`, `rps`, `ok` (rendered), `ok_p50_ms`,
//! `ok_p99_ms`, `hits`, `shed`, `shed_p50_ms`, `shed_p99_ms`, `other`.
//! With `--latencies FILE` it also appends every rendered request's
//! latency (ms, one a line) to FILE, so that several runs' tails can be
//! read together: a p99 of one run's 40 unloaded renders is their maximum.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

mod response_head;

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
    /// A file to append each rendered request's latency to (ms, one a
    /// line).
    #[arg(long)]
    latencies: Option<std::path::PathBuf>,
}

/// The corpus images W1 rotates through.
const IMAGES: [&str; 5] = [
    "2004default.jpg",
    "firstgeneration.jpg",
    "rhythm.jpg",
    "string.jpg",
    "the-mouse.jpg",
];

/// How many widths W1 asks for (300 … 1099).
const WIDTHS: u64 = 800;

/// The step between the widths of consecutive URL numbers of one image:
/// prime to [`WIDTHS`], so 800 consecutive steps visit every width once,
/// and near 800 ÷ the golden ratio, so any short run of numbers asks for
/// widths spread over the whole range.
const WIDTH_STRIDE: u64 = 493;

/// The path of W1 URL number `i` (bench/w1.lua builds the same).
fn url_path(i: u64) -> String {
    let image = IMAGES[(i % IMAGES.len() as u64) as usize];
    let width = 300 + ((i / IMAGES.len() as u64) * WIDTH_STRIDE) % WIDTHS;
    format!("/{image}?w={width}&q=80&fm=jpg")
}

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
    if let Some(path) = &args.latencies {
        append_latencies(path, &ok)?;
    }
    Ok(())
}

/// Appends `latencies` to the file at `path` in milliseconds, one a line.
fn append_latencies(path: &std::path::Path, latencies: &[Duration]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut lines = String::new();
    for latency in latencies {
        lines.push_str(&format!("{:.2}\n", latency.as_secs_f64() * 1000.0));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(lines.as_bytes()))
        .with_context(|| format!("appending latencies to {}", path.display()))
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
    // The URL number of a request that was shed, sent again next.
    let mut shed_number: Option<u64> = None;
    while Instant::now() < until {
        let i = shed_number
            .take()
            .unwrap_or_else(|| counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n\r\n", url_path(i));
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
                if outcome == Outcome::Shed {
                    shed_number = Some(i);
                }
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
    let head = response_head::read_response(stream).await?;
    let hit = head
        .header("x-imgmesh-cache")
        .is_some_and(|status| status != "miss");
    let outcome = match head.status {
        200 if hit => Outcome::Hit,
        200 => Outcome::Ok,
        503 if head.header("retry-after").is_some() => Outcome::Shed,
        _ => Outcome::Other,
    };
    Ok((outcome, head.keep_alive))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::url_path;

    /// Any 4000 consecutive URL numbers are 4000 different URLs (the old
    /// `i % 5`, `i % 800` pairing gave 800), whatever the offset.
    #[test]
    fn any_4000_consecutive_numbers_are_distinct_urls() {
        for offset in [0, 1, 4321, 100_000, 160_000] {
            let urls: HashSet<String> = (offset..offset + 4000).map(url_path).collect();
            assert_eq!(urls.len(), 4000, "offset {offset}");
        }
        assert_eq!(
            url_path(0),
            url_path(4000),
            "the sequence repeats after 4000"
        );
    }

    /// A shed request's URL number is sent again on the same connection
    /// (it rendered nothing), so only answered requests use numbers up: a
    /// server that sheds every other request still sees each URL answered
    /// once, in order, with no number skipped.
    #[tokio::test]
    async fn a_shed_request_is_sent_again_with_the_same_url() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let target = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a connection");
            let mut asked = Vec::new();
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 1024];
            while asked.len() < 20 {
                let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                    let n = stream.read(&mut chunk).await.expect("a request");
                    assert!(n > 0, "the client closed early");
                    buffer.extend_from_slice(&chunk[..n]);
                    continue;
                };
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                buffer.drain(..end + 4);
                let path = head.split(' ').nth(1).expect("a path").to_owned();
                let answer: &[u8] = if asked.len() % 2 == 0 {
                    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nx-imgmesh-cache: miss\r\ncontent-length: 2\r\n\r\nok"
                };
                asked.push(path);
                stream.write_all(answer).await.expect("an answer");
            }
            asked
        });
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(7));
        let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
        // The client errs once the server stops answering; what it asked is
        // what the server recorded.
        let _ = super::connection(target, "demo.localhost".to_owned(), counter, until).await;
        let asked = server.await.expect("the server task");
        let expected: Vec<String> = (7..17).flat_map(|i| [url_path(i), url_path(i)]).collect();
        assert_eq!(asked, expected);
    }

    /// Latencies are appended in milliseconds, one a line, after what the
    /// file held.
    #[test]
    fn latencies_are_appended_in_milliseconds() {
        use std::time::Duration;
        let path = std::env::temp_dir().join(format!("imgmesh-load-{}.txt", std::process::id()));
        std::fs::write(&path, "1.00\n").expect("a first line");
        super::append_latencies(
            &path,
            &[Duration::from_micros(2500), Duration::from_millis(300)],
        )
        .expect("appended");
        assert_eq!(
            std::fs::read_to_string(&path).expect("the file"),
            "1.00\n2.50\n300.00\n"
        );
        std::fs::remove_file(&path).expect("removed");
    }

    /// A short slice of numbers asks for widths spread over 300 … 1099, not
    /// a narrow band: 500 numbers reach below 400 and above 1000.
    #[test]
    fn a_slice_spreads_its_widths() {
        let widths: Vec<u64> = (1000..1500)
            .map(|i| {
                let path = url_path(i);
                let (_, query) = path.split_once("?w=").expect("a width");
                query
                    .split('&')
                    .next()
                    .expect("a value")
                    .parse()
                    .expect("a number")
            })
            .collect();
        assert!(widths.iter().any(|w| *w < 400), "{widths:?}");
        assert!(widths.iter().any(|w| *w > 1000), "{widths:?}");
        assert!(widths.iter().all(|w| (300..1100).contains(w)), "{widths:?}");
    }
}
