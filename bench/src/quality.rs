//! Quality held equal (issue 16): SSIM of the mesh's outputs against a
//! full-decode Lanczos3 reference, beside the libvips floor's outputs for
//! the same images and widths, and the cost of the floor's and the
//! renderer's libvips settings measured in one process.
//!
//! - `measure`: fetches a sample of W1's, W5's and W6's URLs from the
//!   gateway, decodes each output and scores its luma with SSIM (Gaussian
//!   11 × 11, σ = 1.5; see `ssim`) against the original decoded at full
//!   size (no shrink-on-load) and resized with Lanczos3 to exactly the
//!   output's size. The floor's output for the same (image, width) —
//!   `thumbnail_buffer` + `jpegsave_buffer` Q 80, what `libvips-floor`
//!   loops on — is scored the same way; one `row` line per workload, and a
//!   `WARNING` line when the mesh's mean falls more than `--threshold`
//!   below the floor's, or one output more than `--pair-threshold` below
//!   the floor's output of the same pair.
//! - `settings`: one thread, libvips as the renderer sets it up; for a
//!   sample of W1's (image, width) pairs, the CPU-ms per render, bytes and
//!   SSIM of the floor's calls, of the renderer's (its thumbnail options
//!   and its JPEG options), of each JPEG option alone on the same
//!   thumbnails, and of the renderer's own pipeline (`render_image`), with
//!   glibc's mmap threshold as the floor has it or fixed as the renderer
//!   fixes it (`--mmap-threshold`).

mod cpu;
#[path = "quality/http.rs"]
mod http;
#[path = "quality/pipelines.rs"]
mod pipelines;
#[path = "quality/ssim.rs"]
mod ssim;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use clap::{Parser, Subcommand};
use rs_vips::{Vips, VipsImage};

use imgmesh_renderer::pipeline::load::input_format::jpeg_scan_count;

use crate::cpu::process_cpu_ms;
use imgmesh_renderer::pipeline::{RenderInput, RenderLimits, render_image};
use pipelines::{JpegSettings, Original};

/// SSIM of the mesh's outputs and of the libvips floor's, against a
/// full-decode Lanczos3 reference.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to measure.
#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch W1, W5 and W6 outputs from the gateway and score them.
    Measure(MeasureArgs),
    /// CPU-ms, bytes and SSIM of the floor's and the renderer's libvips
    /// settings, in this process.
    Settings(SettingsArgs),
}

/// `measure`'s arguments.
#[derive(Debug, clap::Args)]
struct MeasureArgs {
    /// The gateway's public HTTP listener (host:port).
    #[arg(long)]
    gateway: String,
    /// The Host header (the Source's subdomain).
    #[arg(long, default_value = "demo.localhost")]
    host: String,
    /// URLs sampled from W1 and from W5.
    #[arg(long, default_value_t = 40)]
    samples: usize,
    /// W6's srcset widths, fetched concurrently for each original.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "160,320,480,640,800,960,1120,1280,1600,1920"
    )]
    w6_widths: Vec<i32>,
    /// W6's query after `w=` (format and quality).
    #[arg(long, default_value = "q=80&fm=jpg")]
    w6_query: String,
    /// Prefix of the names W6 asks for (copies of the corpus files under
    /// names never asked for, so every width is rendered from cold).
    #[arg(long, default_value = "")]
    w6_prefix: String,
    /// Workloads to score.
    #[arg(long, value_delimiter = ',', default_value = "w1,w5,w6")]
    workloads: Vec<String>,
    /// How far the mesh's mean SSIM may fall below the floor's.
    #[arg(long, default_value_t = 0.005)]
    threshold: f64,
    /// How far one output's SSIM may fall below the floor's output of the
    /// same image and width.
    #[arg(long, default_value_t = 0.02)]
    pair_threshold: f64,
    /// The corpus JPEGs, served by the gateway under their file names.
    #[arg(required = true)]
    corpus: Vec<PathBuf>,
}

/// `settings`' arguments.
#[derive(Debug, clap::Args)]
struct SettingsArgs {
    /// W1 (image, width) pairs rendered by each setting.
    #[arg(long, default_value_t = 60)]
    renders: usize,
    /// Fix glibc's mmap threshold at this many bytes first, as the renderer
    /// does (`pipeline/load/libvips.rs`, 131072); 0 leaves glibc's
    /// default, which rises to the largest block freed (the floor's case).
    #[arg(long, default_value_t = 0)]
    mmap_threshold: i32,
    /// The corpus JPEGs.
    #[arg(required = true)]
    corpus: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    Vips::init("imgmesh-quality").context("initialising libvips")?;
    // As the renderer and the floor: one thread per job, no operation cache.
    Vips::concurrency_set(1);
    Vips::cache_set_max(0);
    match cli.command {
        Command::Measure(args) => measure(&args),
        Command::Settings(args) => settings(&args),
    }
}

/// The corpus, decoded, in W1's order (file names sorted).
fn load_corpus(paths: &[PathBuf]) -> anyhow::Result<Vec<Original>> {
    let mut paths = paths.to_vec();
    paths.sort();
    paths.iter().map(|p| Original::load(p)).collect()
}

/// W1's request `i`: original `i % n`, width 300 + ((i / n) · 493) % 800
/// (bench/w1.lua).
fn w1_pair(i: usize, originals: usize) -> (usize, i32) {
    (i % originals, 300 + ((i / originals) * 493 % 800) as i32)
}

/// `samples` of W1's first 800 × n requests, spread evenly (a stride
/// coprime with the number of originals, so each is sampled).
fn w1_sample(samples: usize, originals: usize) -> Vec<(usize, i32)> {
    let cycle = 800 * originals;
    let mut stride = (cycle / samples.max(1)).max(1);
    while gcd(stride, originals) != 1 {
        stride += 1;
    }
    (0..samples)
        .map(|k| w1_pair(k * stride % cycle, originals))
        .collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One URL to fetch.
#[derive(Debug, Clone)]
struct Request {
    /// Index into the corpus.
    original: usize,
    /// The width asked for.
    width: i32,
    /// Path and query.
    path: String,
    /// The Accept header, if any.
    accept: Option<&'static str>,
}

/// One output scored, with the floor's for the same pair.
#[derive(Debug, Clone)]
struct Scored {
    content_type: String,
    ssim: f64,
    bytes: usize,
    floor_ssim: f64,
    floor_bytes: usize,
}

/// References already made, by (original, width, height).
#[derive(Debug, Default)]
struct References(HashMap<(usize, usize, usize), ssim::Plane>);

impl References {
    /// SSIM of `plane` (an output of `original`) against its reference.
    fn score(
        &mut self,
        originals: &[Original],
        original: usize,
        plane: &ssim::Plane,
    ) -> anyhow::Result<f64> {
        let key = (original, plane.width, plane.height);
        let reference = match self.0.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(
                originals[original]
                    .reference(i32::try_from(plane.width)?, i32::try_from(plane.height)?)?,
            ),
        };
        ssim::ssim(plane, reference)
    }
}

fn measure(args: &MeasureArgs) -> anyhow::Result<()> {
    let originals = load_corpus(&args.corpus)?;
    let n = originals.len();
    let mut references = References::default();
    let mut below = false;
    for workload in &args.workloads {
        let (requests, concurrent): (Vec<Request>, bool) = match workload.as_str() {
            "w1" => (
                w1_sample(args.samples, n)
                    .into_iter()
                    .map(|(original, width)| Request {
                        original,
                        width,
                        path: format!("/{}?w={width}&q=80&fm=jpg", originals[original].name),
                        accept: None,
                    })
                    .collect(),
                false,
            ),
            "w5" => (
                w1_sample(args.samples, n)
                    .into_iter()
                    .map(|(original, width)| Request {
                        original,
                        width,
                        path: format!("/{}?w={width}&q=80&auto=format", originals[original].name),
                        accept: Some("image/avif,image/webp"),
                    })
                    .collect(),
                false,
            ),
            "w6" => (
                (0..n)
                    .flat_map(|original| args.w6_widths.iter().map(move |&width| (original, width)))
                    .map(|(original, width)| Request {
                        original,
                        width,
                        path: format!(
                            "/{}{}?w={width}&{}",
                            args.w6_prefix, originals[original].name, args.w6_query
                        ),
                        accept: None,
                    })
                    .collect(),
                true,
            ),
            other => anyhow::bail!("unknown workload {other} (w1, w5, w6)"),
        };
        let fetched = fetch_all(args, &requests, concurrent)?;
        let mut scored = Vec::with_capacity(requests.len());
        for (request, response) in requests.iter().zip(fetched) {
            let plane = pipelines::decode_luma(&response.body)
                .with_context(|| format!("decoding {}", request.path))?;
            ensure!(
                i32::try_from(plane.width)? == request.width,
                "{} came back {} px wide",
                request.path,
                plane.width
            );
            let ssim = references.score(&originals, request.original, &plane)?;
            let floor = pipelines::jpeg(
                &pipelines::floor_thumbnail(&originals[request.original], request.width)?,
                JpegSettings::FLOOR,
            )?;
            let floor_plane = pipelines::decode_luma(&floor)?;
            let floor_ssim = references.score(&originals, request.original, &floor_plane)?;
            scored.push(Scored {
                content_type: response.content_type,
                ssim,
                bytes: response.body.len(),
                floor_ssim,
                floor_bytes: floor.len(),
            });
        }
        below |= report(workload, &scored, args.threshold, args.pair_threshold);
    }
    if below {
        println!("quality_below_floor 1");
    }
    Ok(())
}

/// Fetches every request (W6's ten widths of one original at once, as a
/// browser reading a srcset from cold; the others one after the other).
fn fetch_all(
    args: &MeasureArgs,
    requests: &[Request],
    concurrent: bool,
) -> anyhow::Result<Vec<http::Response>> {
    let get = |request: &Request| -> anyhow::Result<http::Response> {
        // A render shed by admission control (503) is asked again, as a
        // browser would reload it: the quality of what is served counts.
        for _ in 0..50 {
            let response = http::get(&args.gateway, &args.host, &request.path, request.accept)?;
            if response.status != 503 {
                ensure!(
                    response.status == 200,
                    "{} answered {}",
                    request.path,
                    response.status
                );
                return Ok(response);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        anyhow::bail!("{} answered 503 50 times", request.path)
    };
    if !concurrent {
        return requests.iter().map(get).collect();
    }
    let per_original = args.w6_widths.len().max(1);
    let mut responses = Vec::with_capacity(requests.len());
    for group in requests.chunks(per_original) {
        let fetched: Vec<anyhow::Result<http::Response>> = std::thread::scope(|scope| {
            let handles: Vec<_> = group.iter().map(|r| scope.spawn(move || get(r))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("fetch thread panicked")))
                })
                .collect()
        });
        for response in fetched {
            responses.push(response?);
        }
    }
    Ok(responses)
}

/// Prints a workload's row (and a WARNING when its quality is below the
/// floor's); returns whether it is.
///
/// `row WORKLOAD URLS FORMATS MEAN_SSIM MIN_SSIM MEAN_BYTES FLOOR_MEAN_SSIM
/// FLOOR_MIN_SSIM FLOOR_MEAN_BYTES WORST_PAIR_DELTA VERDICT`
fn report(workload: &str, scored: &[Scored], threshold: f64, pair_threshold: f64) -> bool {
    let n = scored.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Scored) -> f64| scored.iter().map(f).sum::<f64>() / n;
    let min = |f: &dyn Fn(&Scored) -> f64| scored.iter().map(f).fold(f64::INFINITY, f64::min);
    let mean_ssim = mean(&|s| s.ssim);
    let floor_mean = mean(&|s| s.floor_ssim);
    let worst_delta = min(&|s| s.ssim - s.floor_ssim);
    let mut formats: Vec<&str> = scored
        .iter()
        .map(|s| s.content_type.trim_start_matches("image/"))
        .collect();
    formats.sort_unstable();
    formats.dedup();
    let below = mean_ssim < floor_mean - threshold || worst_delta < -pair_threshold;
    println!(
        "row {workload} {} {} {mean_ssim:.4} {:.4} {:.0} {floor_mean:.4} {:.4} {:.0} {worst_delta:+.4} {}",
        scored.len(),
        formats.join("+"),
        min(&|s| s.ssim),
        mean(&|s| s.bytes as f64),
        min(&|s| s.floor_ssim),
        mean(&|s| s.floor_bytes as f64),
        if below { "BELOW" } else { "ok" },
    );
    if below {
        let line = format!(
            "WARNING: quality: {workload}'s mean SSIM {mean_ssim:.4} (worst pair {worst_delta:+.4}) is below the libvips floor's {floor_mean:.4} by more than {threshold} (pairs: {pair_threshold})"
        );
        println!("{line}");
        eprintln!("{line}");
    }
    below
}

/// One setting's totals.
#[derive(Debug, Default)]
struct Totals {
    cpu_ms: f64,
    wall_ms: f64,
    bytes: usize,
    ssim: f64,
    renders: usize,
}

impl Totals {
    fn print(&self, name: &str) {
        let n = self.renders.max(1) as f64;
        println!(
            "setting {name} cpu_ms_per_render {:.2} wall_ms_per_render {:.2} mean_bytes {:.0} mean_ssim {:.4}",
            self.cpu_ms / n,
            self.wall_ms / n,
            self.bytes as f64 / n,
            self.ssim / n
        );
    }
}

/// One timed render: (pair index, original, width) → encoded bytes.
type Render<'a> = dyn Fn(usize, &Original, i32) -> anyhow::Result<Vec<u8>> + 'a;

/// Runs `work` over every pair, timing it (CPU of the whole process:
/// libvips' worker threads included), then scores its JPEGs.
fn timed(
    originals: &[Original],
    pairs: &[(usize, i32)],
    references: &mut References,
    work: &Render<'_>,
) -> anyhow::Result<Totals> {
    let cpu_before = process_cpu_ms()?;
    let started = Instant::now();
    let outputs: Vec<Vec<u8>> = pairs
        .iter()
        .enumerate()
        .map(|(k, &(original, width))| work(k, &originals[original], width))
        .collect::<anyhow::Result<_>>()?;
    let mut totals = Totals {
        cpu_ms: process_cpu_ms()? - cpu_before,
        wall_ms: started.elapsed().as_secs_f64() * 1000.0,
        renders: pairs.len(),
        ..Totals::default()
    };
    for (output, &(original, _)) in outputs.iter().zip(pairs) {
        totals.bytes += output.len();
        totals.ssim += references.score(originals, original, &pipelines::decode_luma(output)?)?;
    }
    Ok(totals)
}

fn settings(args: &SettingsArgs) -> anyhow::Result<()> {
    if args.mmap_threshold > 0 {
        /// glibc's malloc.h.
        const M_MMAP_THRESHOLD: libc::c_int = -3;
        // SAFETY: a plain setter of glibc's malloc; no allocation is in
        // flight on another thread of this process yet.
        let set = unsafe { libc::mallopt(M_MMAP_THRESHOLD, args.mmap_threshold) };
        ensure!(
            set == 1,
            "mallopt(M_MMAP_THRESHOLD, {}) failed",
            args.mmap_threshold
        );
    }
    println!("mmap_threshold {}", args.mmap_threshold);
    let originals = load_corpus(&args.corpus)?;
    let pairs = w1_sample(args.renders, originals.len());
    let mut references = References::default();
    let mesh_thumbnail = |original: &Original, width: i32| {
        pipelines::mesh_thumbnail(
            original,
            width,
            pipelines::mesh_height(original, width),
            true,
        )
    };
    // End to end, streaming (as the floor and the renderer run).
    timed(
        &originals,
        &pairs,
        &mut references,
        &|_, original, width| {
            pipelines::jpeg(
                &pipelines::floor_thumbnail(original, width)?,
                JpegSettings::FLOOR,
            )
        },
    )?
    .print("floor");
    timed(
        &originals,
        &pairs,
        &mut references,
        &|_, original, width| {
            pipelines::jpeg(&mesh_thumbnail(original, width)?, JpegSettings::MESH)
        },
    )?
    .print("mesh");
    timed(
        &originals,
        &pairs,
        &mut references,
        &|_, original, width| {
            pipelines::jpeg(&mesh_thumbnail(original, width)?, JpegSettings::FLOOR)
        },
    )?
    .print("mesh_thumbnail+floor_jpeg");
    // The renderer's calls without the ICC import/export (the corpus's one
    // embedded profile is sRGB IEC61966-2.1: sRGB to sRGB).
    timed(
        &originals,
        &pairs,
        &mut references,
        &|_, original, width| {
            let height = pipelines::mesh_height(original, width);
            pipelines::jpeg(
                &pipelines::mesh_thumbnail(original, width, height, false)?,
                JpegSettings::MESH,
            )
        },
    )?
    .print("mesh_without_export_profile");
    timed(
        &originals,
        &pairs,
        &mut references,
        &|_, original, width| {
            pipelines::jpeg(
                &pipelines::floor_thumbnail(original, width)?,
                JpegSettings::MESH,
            )
        },
    )?
    .print("floor_thumbnail+mesh_jpeg");
    // Decode + resize alone, and each JPEG option on the same pixels.
    let cpu_before = process_cpu_ms()?;
    let thumbnails: Vec<VipsImage> = pairs
        .iter()
        .map(|&(original, width)| {
            mesh_thumbnail(&originals[original], width)?
                .copy_memory()
                .context("thumbnail")
        })
        .collect::<anyhow::Result<_>>()?;
    println!(
        "setting decode+resize(mesh_thumbnail) cpu_ms_per_render {:.2}",
        (process_cpu_ms()? - cpu_before) / pairs.len().max(1) as f64
    );
    let cpu_before = process_cpu_ms()?;
    let floor_thumbnails: Vec<VipsImage> = pairs
        .iter()
        .map(|&(original, width)| {
            pipelines::floor_thumbnail(&originals[original], width)?
                .copy_memory()
                .context("thumbnail")
        })
        .collect::<anyhow::Result<_>>()?;
    println!(
        "setting decode+resize(floor_thumbnail) cpu_ms_per_render {:.2}",
        (process_cpu_ms()? - cpu_before) / pairs.len().max(1) as f64
    );
    drop(floor_thumbnails);
    for (name, settings) in [
        ("encode:baseline", JpegSettings::FLOOR),
        (
            "encode:baseline+strip",
            JpegSettings {
                strip: true,
                ..JpegSettings::FLOOR
            },
        ),
        (
            "encode:optimize_coding",
            JpegSettings {
                optimize_coding: true,
                ..JpegSettings::FLOOR
            },
        ),
        (
            "encode:interlace",
            JpegSettings {
                interlace: true,
                ..JpegSettings::FLOOR
            },
        ),
        ("encode:mesh(optimize+interlace+strip)", JpegSettings::MESH),
    ] {
        timed(&originals, &pairs, &mut references, &|k, _, _| {
            pipelines::jpeg(&thumbnails[k], settings)
        })?
        .print(name);
    }
    drop(thumbnails);
    // The renderer's walk over the file before it decodes (Header::read
    // counts scans up to 100; the admission estimate looks for a second
    // one), repeated 10 times for a readable CPU time.
    let cpu_before = process_cpu_ms()?;
    let mut scans = 0;
    for _ in 0..10 {
        for &(original, _) in &pairs {
            scans += jpeg_scan_count(&originals[original].bytes, 100);
            scans += jpeg_scan_count(&originals[original].bytes, 1);
        }
    }
    ensure!(scans > 0, "no scans counted");
    println!(
        "setting scan_count(jpeg_scan_count,100+1) cpu_ms_per_render {:.2}",
        (process_cpu_ms()? - cpu_before) / (10 * pairs.len().max(1)) as f64
    );
    // The renderer's own pipeline for W1's query, last: its libvips start
    // fixes the mmap threshold at the renderer's for the rest of the process.
    timed(
        &originals,
        &pairs,
        &mut references,
        &|_, original, width| {
            let plan = imgmesh_imgix_params::parse_render_plan(
                "",
                &format!("w={width}&q=80&fm=jpg"),
                None,
            )?
            .plan;
            let input = RenderInput {
                original: &original.bytes,
                ..RenderInput::default()
            };
            Ok(render_image(&input, &plan, &RenderLimits::default())?.data)
        },
    )?
    .print("renderer_pipeline(render_image)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_pairs_follow_w1_lua() {
        assert_eq!(w1_pair(0, 5), (0, 300));
        assert_eq!(w1_pair(4, 5), (4, 300));
        assert_eq!(w1_pair(5, 5), (0, 793));
        assert_eq!(w1_pair(10, 5), (0, 486));
        assert_eq!(w1_pair(4003, 5), (3, 300));
    }

    /// The sample visits every original and spreads over the widths.
    #[test]
    fn the_w1_sample_covers_every_original_and_many_widths() {
        let sample = w1_sample(40, 5);
        assert_eq!(sample.len(), 40);
        for original in 0..5 {
            assert!(
                sample.iter().any(|&(o, _)| o == original),
                "original {original}"
            );
        }
        let (low, high) = sample
            .iter()
            .fold((i32::MAX, i32::MIN), |(l, h), &(_, w)| (l.min(w), h.max(w)));
        assert!(low < 400 && high > 1000, "widths {low}..{high}");
    }
}
