//! The libvips floor of BENCHMARKS.md: what rendering costs on this machine
//! with no HTTP, no RPC and no cache — N threads, each looping
//! `thumbnail_buffer` (shrink-on-load) + `jpegsave_buffer` (Q 80) over the
//! same in-memory images and the W1 widths. Prints renders per second.

mod cpu;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
                        let thumb = VipsImage::thumbnail_buffer(image, width)?;
                        let encoded = thumb
                            .jpegsave_buffer_with_opts(VOption::new().set("Q", args.quality))?;
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
    println!("renders {total}");
    println!("seconds {elapsed:.2}");
    println!("renders_per_second {:.2}", total as f64 / elapsed);
    // CPU time per render is far steadier than throughput on a shared machine.
    println!("cpu_ms_per_render {:.1}", cpu_ms / total.max(1) as f64);
    Ok(())
}
