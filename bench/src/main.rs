//! The libvips floor of BENCHMARKS.md: what rendering costs on this machine
//! with no HTTP, no RPC and no cache — N threads, each looping
//! `thumbnail_buffer` (shrink-on-load) + `jpegsave_buffer` (Q 80) over the
//! same in-memory images and the W1 widths. Prints renders per second.
//!
//! `--pipeline renderer` runs the renderer's own pipeline (`render_image`
//! for W1's `w=…&q=80&fm=jpg`) in the same loop instead, and
//! `--mmap-threshold` fixes glibc's mmap threshold first: what the renderer
//! costs per image without its service around it, and what its malloc
//! setting costs the floor (the cpu-breakdown section of docs/benchmarks.md).

mod cpu;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use imgmesh_renderer::pipeline::{RenderInput, RenderLimits, render_image};
use rs_vips::voption::{Setter as _, VOption};
use rs_vips::{Vips, VipsImage};

use crate::cpu::process_cpu_ms;

/// Measures libvips' thumbnail + JPEG encode throughput.
#[derive(Debug, Parser)]
struct Args {
    /// JPEG files to render (the benchmark corpus).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// JPEG quality.
    #[arg(long, default_value_t = 80)]
    quality: i32,
    /// What each render runs.
    #[arg(long, value_enum, default_value_t = Pipeline::Floor)]
    pipeline: Pipeline,
    /// Fix glibc's mmap threshold at this many bytes before anything is
    /// allocated (0: glibc's default, a threshold that rises to the largest
    /// mapped block freed). The renderer's pipeline fixes it at 128 KiB
    /// itself when libvips starts.
    #[arg(long, default_value_t = 0)]
    mmap_threshold: i32,
}

/// The work of one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pipeline {
    /// `thumbnail_buffer(width)` + `jpegsave_buffer(Q)`.
    Floor,
    /// The renderer's `render_image` for `w=<width>&q=<Q>&fm=jpg`.
    Renderer,
}

/// Renders `image` at `width` as `pipeline` does; returns the JPEG.
fn render_once(
    pipeline: Pipeline,
    image: &[u8],
    width: i32,
    quality: i32,
) -> anyhow::Result<Vec<u8>> {
    match pipeline {
        Pipeline::Floor => {
            let thumb = VipsImage::thumbnail_buffer(image, width)?;
            Ok(thumb.jpegsave_buffer_with_opts(VOption::new().set("Q", quality))?)
        }
        Pipeline::Renderer => {
            let plan = imgmesh_imgix_params::parse_render_plan(
                "",
                &format!("w={width}&q={quality}&fm=jpg"),
                None,
            )?
            .plan;
            let input = RenderInput {
                original: image,
                ..RenderInput::default()
            };
            Ok(render_image(&input, &plan, &RenderLimits::default())?.data)
        }
    }
}

/// Fixes glibc's mmap threshold at `bytes` (0 leaves glibc's default).
fn fix_mmap_threshold(bytes: i32) -> anyhow::Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    /// glibc's malloc.h.
    const M_MMAP_THRESHOLD: libc::c_int = -3;
    // SAFETY: a plain setter of glibc's malloc, called before any other
    // thread of this process exists.
    let set = unsafe { libc::mallopt(M_MMAP_THRESHOLD, bytes) };
    anyhow::ensure!(set == 1, "mallopt(M_MMAP_THRESHOLD, {bytes}) failed");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    fix_mmap_threshold(args.mmap_threshold)?;
    Vips::init("imgmesh-libvips-floor").context("initialising libvips")?;
    // The same libvips settings as the renderer: one thread per job, no
    // operation cache.
    Vips::concurrency_set(1);
    Vips::cache_set_max(0);
    let images: Vec<Vec<u8>> = args
        .images
        .iter()
        .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .collect::<anyhow::Result<_>>()?;

    let cpu_before = process_cpu_ms()?;
    let renders = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..args.threads)
            .map(|thread| {
                let images = &images;
                let renders = &renders;
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut i = thread * 7919;
                    while Instant::now() < deadline {
                        let image = &images[i % images.len()];
                        // W1's widths: 300..=1099.
                        let width = 300 + (i % 800) as i32;
                        let encoded = render_once(args.pipeline, image, width, args.quality)?;
                        anyhow::ensure!(!encoded.is_empty(), "empty JPEG");
                        renders.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker thread panicked")?;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ms = process_cpu_ms()? - cpu_before;
    let total = renders.load(Ordering::Relaxed);
    println!("pipeline {:?}", args.pipeline);
    println!("renders {total}");
    println!("seconds {elapsed:.2}");
    println!("renders_per_second {:.2}", total as f64 / elapsed);
    // CPU time per render is far steadier than throughput on a shared machine.
    println!("cpu_ms_per_render {:.1}", cpu_ms / total.max(1) as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1600 × 1000 baseline JPEG of a gradient, made with libvips.
    fn original() -> Vec<u8> {
        Vips::init("imgmesh-libvips-floor-test").expect("libvips starts");
        let gradient = VipsImage::xyz(1600, 1000)
            .and_then(|xy| xy.extract_band(0))
            .and_then(|x| x.linear(&[0.15], &[10.0]))
            .and_then(|x| x.bandjoin_const(&[90.0, 160.0]))
            .and_then(|rgb| rgb.cast(rs_vips::enums::BandFormat::Uchar))
            .expect("gradient");
        gradient
            .jpegsave_buffer_with_opts(VOption::new().set("Q", 90))
            .expect("JPEG")
    }

    /// Whether `jpeg` has a progressive frame header (SOF2).
    fn progressive(jpeg: &[u8]) -> bool {
        jpeg.windows(2).any(|marker| marker == [0xFF, 0xC2])
    }

    /// Both pipelines render a JPEG of the asked width; only the renderer's
    /// is progressive (imgix's default), as the floor's is baseline.
    #[test]
    fn each_pipeline_renders_its_own_jpeg() {
        let original = original();
        for pipeline in [Pipeline::Floor, Pipeline::Renderer] {
            let jpeg = render_once(pipeline, &original, 480, 80).expect("render");
            let image = VipsImage::new_from_buffer(&jpeg, "").expect("decodes");
            assert_eq!(image.get_width(), 480, "{pipeline:?}");
            assert_eq!(image.get_height(), 300, "{pipeline:?}");
            assert_eq!(
                progressive(&jpeg),
                pipeline == Pipeline::Renderer,
                "{pipeline:?}"
            );
        }
    }
}
