//! Command-line and environment configuration of the renderer.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use imgmesh_runtime::{HealthArgs, HealthCommand, MetricsArgs};
use imgmesh_telemetry::TelemetryArgs;
use secrecy::SecretString;

use crate::pipeline::intermediate::DEFAULT_INTERMEDIATE_TTL;
use crate::pipeline::limits::{
    DEFAULT_MAX_FRAMES, DEFAULT_MAX_OBJECT_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_RENDER,
    RenderLimits,
};
use crate::service::render_pool::RENDER_NICE;

/// Where the renderer serves `GET /metrics` unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9093";

/// The default memory budget of all admitted renders: 1 GiB.
pub const DEFAULT_MEMORY_BUDGET_BYTES: u64 = 1024 * 1024 * 1024;

/// The default estimated memory of the renders running at once, per
/// worker: 48 MiB. One progressive 3840 × 2400 JPEG's render is estimated
/// at 59–69 MB (its 55 MB coefficient buffer included; the original cut of
/// its unused metadata), so two workers run one such render beside smaller
/// ones, never two at once; and the renders of two workers add at most
/// about 100 MB to the renderer's resting 44 MB.
pub const DEFAULT_RUNNING_MEMORY_PER_WORKER: u64 = 48 * 1024 * 1024;

/// The default stretch tolerance of render admission: none (the adaptive
/// limit is off). It reads contention from anything on the machine, a
/// noisy neighbour included, so it is the operator's choice; 1.5 is the
/// value to try (renders whose threads wait for cores half as long as they
/// run take 1.5 times as long as they could, issue 18's bar for admitted
/// requests under overload).
pub const DEFAULT_STRETCH_TOLERANCE: f64 = f64::INFINITY;

/// How `imgmesh-renderer` is configured (flags, or `IMGMESH_*` variables).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-renderer",
    version,
    about = "Renders imgmesh derivatives with libvips, cached in Redis.",
    mut_arg("metrics_listen", |arg| arg.default_value(DEFAULT_METRICS_LISTEN))
)]
pub struct RendererConfig {
    /// Instead of serving: `health` asks the running renderer.
    #[command(subcommand)]
    pub command: Option<HealthCommand>,

    /// Address the gRPC server (RendererService + health) listens on.
    #[arg(
        long,
        global = true,
        env = "IMGMESH_RENDERER_LISTEN",
        default_value = "127.0.0.1:50053"
    )]
    pub listen: SocketAddr,

    /// gRPC endpoint of the fetcher. The renderer reports NOT_SERVING while
    /// no fetcher there reports SERVING; a Redis that does not answer only
    /// degrades it (every request renders) and it keeps serving.
    #[arg(
        long,
        env = "IMGMESH_FETCHER_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub fetcher_url: String,

    /// Redis URL of the derivative cache, e.g. `redis://127.0.0.1:6379`,
    /// or a comma-separated list of Redis Cluster seed nodes (may carry a
    /// password, so it is never logged).
    #[arg(
        long,
        env = "IMGMESH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        value_parser = parse_secret
    )]
    pub redis_url: SecretString,

    /// Largest width × height × pages an original may declare in its header.
    #[arg(long, env = "IMGMESH_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,

    /// Largest original accepted, in bytes.
    #[arg(long, env = "IMGMESH_MAX_OBJECT_BYTES", default_value_t = DEFAULT_MAX_OBJECT_BYTES)]
    pub max_object_bytes: u64,

    /// Most frames a render may decode (an animated output decodes them
    /// all; `frame=n` decodes n); over it the render is refused from the
    /// header, before decoding.
    #[arg(long, env = "IMGMESH_MAX_FRAMES", default_value_t = DEFAULT_MAX_FRAMES)]
    pub max_frames: u32,

    /// Longest one render may run, in milliseconds; libvips is stopped
    /// mid-evaluation past it and the request fails as too expensive.
    #[arg(
        long,
        env = "IMGMESH_MAX_RENDER_MS",
        default_value_t = DEFAULT_MAX_RENDER.as_millis() as u64
    )]
    pub max_render_ms: u64,

    /// Renders run at once (libvips blocking workers); default: the number
    /// of cores.
    #[arg(long, env = "IMGMESH_RENDER_WORKERS")]
    pub workers: Option<NonZeroUsize>,

    /// Renders admitted to wait for a busy worker (their originals fetched
    /// meanwhile); past `workers` + this, requests are refused at once as
    /// overloaded (gRPC RESOURCE_EXHAUSTED with `retry-after`). Default:
    /// twice the workers — enough that a worker finishing always finds the
    /// next original fetched (fetch and render take the same order of
    /// time), while a full queue still waits no longer than about two
    /// render times.
    #[arg(long, env = "IMGMESH_RENDER_QUEUE_DEPTH")]
    pub render_queue_depth: Option<usize>,

    /// How much slower than they can renders may run before fewer are
    /// admitted: when the renders that finish ran more than this many times
    /// as long as the renderer's threads were on a core (they waited for
    /// cores the rest), the admission limit within `workers` +
    /// `--render-queue-depth` comes down one place per round of renders,
    /// to one render at least, and climbs back once they run at speed
    /// (docs/caching.md, "Admission control"). Default `inf`: off; 1.5 is
    /// the value to try.
    #[arg(
        long,
        env = "IMGMESH_RENDER_STRETCH_TOLERANCE",
        default_value_t = DEFAULT_STRETCH_TOLERANCE,
        value_parser = parse_tolerance
    )]
    pub render_stretch_tolerance: f64,

    /// Estimated memory all admitted renders may hold at once, in bytes
    /// (decoded pixels from the image headers, plus the compressed bytes);
    /// a render that does not fit what is left is refused as overloaded,
    /// one over the whole budget as too large.
    #[arg(
        long,
        env = "IMGMESH_RENDER_MEMORY_BUDGET_BYTES",
        default_value_t = DEFAULT_MEMORY_BUDGET_BYTES
    )]
    pub render_memory_budget_bytes: u64,

    /// Estimated memory the renders running at once may hold, in bytes: a
    /// render whose estimate does not fit what the running ones leave
    /// waits, on its worker and within its deadline, until they finish;
    /// one larger than the whole amount runs alone. It bounds the
    /// renderer's peak RSS (the memory budget above bounds what is
    /// admitted, queued renders included). Default: 48 MiB per worker; 0
    /// turns it off.
    #[arg(long, env = "IMGMESH_RENDER_RUNNING_MEMORY_BYTES")]
    pub render_running_memory_bytes: Option<u64>,

    /// Whether glibc's malloc advises transparent huge pages on the memory
    /// it maps (the renderer runs itself again at start with
    /// `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` added; an operator's own
    /// `glibc.malloc.hugetlb` is kept). Off by default. On a machine whose
    /// transparent huge pages are `madvise`, W1 measured about 7 % less
    /// renderer CPU per request and 62 % fewer page faults (a progressive
    /// JPEG's 55 MB coefficient buffer faults in 2 MiB at a time), but a
    /// peak RSS about 10 MB higher and up to 8 MB more at rest: glibc also
    /// advises huge pages on its main heap, where small allocations then
    /// hold whole 2 MiB pages.
    #[arg(long, env = "IMGMESH_MALLOC_HUGE_PAGES", default_value_t = false)]
    pub malloc_huge_pages: bool,

    /// Bytes of decoded originals kept for reuse: an original decoded twice
    /// within the time to live is kept decoded, and its other widths (a
    /// srcset) resize that instead of decoding it again (see
    /// `pipeline::intermediate`). They hold their bytes from the running
    /// memory and give them back to renders that need them. 0 (the default)
    /// turns reuse off: kept decodes raise the peak RSS; 64 MiB (67108864)
    /// is what the W6 benchmark ran with.
    #[arg(long, env = "IMGMESH_RENDER_INTERMEDIATE_BYTES", default_value_t = 0)]
    pub render_intermediate_bytes: u64,

    /// How long a decoded original is kept for reuse, in milliseconds.
    #[arg(
        long,
        env = "IMGMESH_RENDER_INTERMEDIATE_TTL_MS",
        default_value_t = DEFAULT_INTERMEDIATE_TTL.as_millis() as u64
    )]
    pub render_intermediate_ttl_ms: u64,

    /// The most renders of one original run as one batch: renders of the
    /// same original that wait for a worker together (a page's srcset)
    /// are rendered with one decode, each smaller width resized from a
    /// larger one, on the batch's worker and any worker free after the
    /// decode (see `service::render_pool`). 1 turns
    /// batching off: every render decodes its original on its own.
    #[arg(long, env = "IMGMESH_RENDER_BATCH_MAX", default_value_t = 1)]
    pub render_batch_max: usize,

    /// The niceness render threads (and the libvips threads they start) run
    /// at, 0–19. 0 by default: renders share the cores equally with other
    /// processes on the machine. A higher value keeps the renderer's own
    /// async threads (answers, refusals, health checks) prompt while
    /// renders fill the cores, but on a machine shared with busy processes
    /// renders then get only what those leave.
    #[arg(long, env = "IMGMESH_RENDER_NICE", default_value_t = RENDER_NICE,
        value_parser = clap::value_parser!(i32).range(0..=19))]
    pub render_nice: i32,

    /// Timeout of each Redis operation in milliseconds; a slower Redis is a
    /// cache miss.
    #[arg(long, env = "IMGMESH_REDIS_TIMEOUT_MS", default_value_t = 50)]
    pub redis_timeout_ms: u64,

    /// How long Redis keeps a derivative after it stops being fresh, in
    /// seconds, so that it can be revalidated with the origin (an unchanged
    /// original extends it without rendering) instead of rendered again.
    #[arg(
        long,
        env = "IMGMESH_REVALIDATE_WINDOW_SECONDS",
        default_value_t = 86_400
    )]
    pub revalidate_window_seconds: u32,

    /// Lifetime of a render lease in Redis, in milliseconds: concurrent
    /// misses on other replicas wait for the holder instead of rendering.
    /// The holder renews it while it works; a holder that dies frees it
    /// within this time.
    #[arg(long, env = "IMGMESH_RENDER_LEASE_MS", default_value_t = 3_000)]
    pub render_lease_ms: u64,

    /// Longest a request waits for another replica's render before
    /// rendering itself, in milliseconds (less when its deadline is nearer).
    #[arg(long, env = "IMGMESH_LEASE_WAIT_MS", default_value_t = 15_000)]
    pub lease_wait_ms: u64,

    /// Where Prometheus scrapes `GET /metrics` (`--metrics-listen`).
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// How often and how patiently the fetcher and Redis are checked for
    /// health.
    #[command(flatten)]
    pub health: HealthArgs,

    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Mutual TLS: this renderer's certificate and the mesh CA, or
    /// `--insecure-plaintext`.
    #[command(flatten)]
    pub tls: imgmesh_runtime::TlsArgs,
}

/// How derivatives are kept and renders shared across replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caching {
    /// How long Redis keeps an entry past its freshness, for revalidation.
    pub revalidate_window_seconds: u32,
    /// Lifetime of a render lease (renewed while the holder works).
    pub lease_ttl: Duration,
    /// Longest wait for another replica's render.
    pub lease_wait: Duration,
}

// === impl RendererConfig ===

impl RendererConfig {
    /// The limits every render enforces.
    pub fn limits(&self) -> RenderLimits {
        RenderLimits {
            max_pixels: self.max_pixels,
            max_object_bytes: self.max_object_bytes,
            max_frames: self.max_frames,
            max_render: Duration::from_millis(self.max_render_ms),
        }
    }

    /// Renders that run at once: `--workers`, or the number of cores.
    pub fn worker_count(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }

    /// Renders that may wait for a worker: `--render-queue-depth`, or twice
    /// the workers.
    pub fn render_queue_depth(&self) -> usize {
        self.render_queue_depth
            .unwrap_or_else(|| self.worker_count().saturating_mul(2))
    }

    /// Estimated memory the running renders may hold:
    /// `--render-running-memory-bytes`, or 48 MiB per worker.
    pub fn running_memory_bytes(&self) -> u64 {
        self.render_running_memory_bytes.unwrap_or_else(|| {
            DEFAULT_RUNNING_MEMORY_PER_WORKER.saturating_mul(self.worker_count() as u64)
        })
    }

    /// How long a decoded original is kept for reuse (at least 1 ms).
    pub fn intermediate_ttl(&self) -> Duration {
        Duration::from_millis(self.render_intermediate_ttl_ms.max(1))
    }

    /// The timeout of each Redis operation.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// How derivatives are kept and renders shared.
    pub fn caching(&self) -> Caching {
        Caching {
            revalidate_window_seconds: self.revalidate_window_seconds,
            lease_ttl: Duration::from_millis(self.render_lease_ms.max(100)),
            lease_wait: Duration::from_millis(self.lease_wait_ms),
        }
    }
}

// === impl Caching ===

impl Default for Caching {
    fn default() -> Caching {
        Caching {
            revalidate_window_seconds: 86_400,
            lease_ttl: Duration::from_secs(3),
            lease_wait: Duration::from_secs(15),
        }
    }
}

impl Caching {
    /// How long Redis keeps an entry fresh for `max_age` seconds.
    pub(crate) fn redis_ttl(&self, max_age: u32) -> u32 {
        max_age.saturating_add(self.revalidate_window_seconds)
    }
}

/// A stretch tolerance: a number of at least 1 (`inf` for none).
fn parse_tolerance(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(tolerance) if tolerance >= 1.0 => Ok(tolerance),
        _ => Err(format!(
            "{value:?} is not a stretch tolerance (a number of at least 1, or inf)"
        )),
    }
}

fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use secrecy::ExposeSecret as _;

    use super::*;

    /// With no flags the renderer uses the documented defaults.
    #[test]
    fn defaults_match_the_flags_contract() {
        let config = RendererConfig::try_parse_from(["imgmesh-renderer"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:50053".parse().unwrap());
        assert_eq!(config.fetcher_url, "http://127.0.0.1:50052");
        assert_eq!(config.redis_url.expose_secret(), "redis://127.0.0.1:6379");
        assert_eq!(
            config.metrics.addr(),
            Some("127.0.0.1:9093".parse().unwrap())
        );
        assert_eq!(config.health.timeout(), Duration::from_secs(1));
        assert!(config.command.is_none());
        assert_eq!(config.max_pixels, 50_000_000);
        assert_eq!(config.max_object_bytes, 33_554_432);
        assert_eq!(config.max_frames, 500);
        assert_eq!(config.max_render_ms, 10_000);
        assert_eq!(config.limits(), RenderLimits::default());
        assert_eq!(config.redis_timeout(), Duration::from_millis(50));
        assert_eq!(config.caching(), Caching::default());
        assert!(config.worker_count() >= 1);
        assert_eq!(config.render_queue_depth(), 2 * config.worker_count());
        assert_eq!(config.render_stretch_tolerance, f64::INFINITY);
        assert_eq!(config.render_nice, 0);
        assert_eq!(config.render_memory_budget_bytes, 1 << 30);
        assert_eq!(
            config.running_memory_bytes(),
            (48 << 20) * config.worker_count() as u64
        );
    }

    /// Flags override every default.
    #[test]
    fn flags_override_defaults() {
        let config = RendererConfig::try_parse_from([
            "imgmesh-renderer",
            "--listen=127.0.0.1:0",
            "--fetcher-url=http://127.0.0.1:9",
            "--redis-url=redis://:hunter2@127.0.0.1:7",
            "--max-pixels=100",
            "--max-object-bytes=200",
            "--max-frames=7",
            "--max-render-ms=300",
            "--workers=3",
            "--render-queue-depth=0",
            "--render-stretch-tolerance=1.5",
            "--render-nice=5",
            "--render-memory-budget-bytes=4096",
            "--render-running-memory-bytes=2048",
            "--redis-timeout-ms=20",
            "--metrics-listen=0.0.0.0:9464",
        ])
        .unwrap();
        assert_eq!(config.fetcher_url, "http://127.0.0.1:9");
        assert_eq!(
            config.limits(),
            RenderLimits {
                max_pixels: 100,
                max_object_bytes: 200,
                max_frames: 7,
                max_render: Duration::from_millis(300),
            }
        );
        assert_eq!(config.worker_count(), 3);
        assert_eq!(config.render_queue_depth(), 0);
        assert_eq!(config.render_stretch_tolerance, 1.5);
        assert_eq!(config.render_nice, 5);
        assert_eq!(config.render_memory_budget_bytes, 4096);
        assert_eq!(config.running_memory_bytes(), 2048);
        assert_eq!(config.redis_timeout(), Duration::from_millis(20));
        assert_eq!(config.metrics.addr(), Some("0.0.0.0:9464".parse().unwrap()));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    /// A niceness outside 0–19 is refused: a process can lower its threads'
    /// priority, not raise it, and 19 is the lowest.
    #[test]
    fn niceness_outside_zero_to_nineteen_is_refused() {
        for bad in ["-1", "20", "low"] {
            let flag = format!("--render-nice={bad}");
            assert!(
                RendererConfig::try_parse_from(["imgmesh-renderer", flag.as_str()]).is_err(),
                "{bad} accepted"
            );
        }
    }

    /// A tolerance under 1 (renders faster than they can run) is refused.
    #[test]
    fn tolerances_under_one_are_refused() {
        for bad in ["0.5", "0", "-1", "fast", "NaN"] {
            let flag = format!("--render-stretch-tolerance={bad}");
            assert!(
                RendererConfig::try_parse_from(["imgmesh-renderer", flag.as_str()]).is_err(),
                "{bad}"
            );
        }
    }

    /// Zero workers is refused rather than deadlocking every render.
    #[test]
    fn zero_workers_is_refused() {
        assert!(RendererConfig::try_parse_from(["imgmesh-renderer", "--workers=0"]).is_err());
    }
}
