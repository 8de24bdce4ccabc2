//! Decoded originals kept for a moment, so that the widths of a srcset do
//! not each decode the same original again.
//!
//! A page's `srcset` asks for one original at many widths within the same
//! second. Each render would load it with `thumbnail_buffer`: libjpeg
//! decodes the file at 1/8, 1/4, 1/2 or full scale (shrink-on-load), and
//! libvips resizes that to the target. The decode is a large part of a
//! render's cost, and every width pays it again. [`Intermediates`] keeps
//! the decode itself — the JPEG at its shrink-on-load scale, in memory,
//! before the resize — so that another render of the same original whose
//! own shrink-on-load is at that same scale resizes from memory
//! (`thumbnail_image`) instead of decoding.
//!
//! **Exactness.** libvips 8.14's `thumbnail` picks the JPEG scale `k` from
//! the smaller of the two shrink factors `s` (stored size ÷ target), always
//! leaving at least a factor of two to its own resize: `k` = 8 when
//! `s ≥ 16`, 4 when `s ≥ 8`, 2 when `s ≥ 4`, else 1 ([`jpeg_shrink`]); it
//! then resizes the loaded image to the target exactly as
//! `thumbnail_image` resizes an image in memory. So a render served from
//! a kept decode of its own `k` gives the same pixels as a fresh one (the
//! tests compare the encoded bytes). Only a decode of the render's own `k`
//! serves it. A finer one would be as good or better in quality, but not
//! cheaper: measured with the vips CLI on a 3840 × 2400 corpus JPEG (one
//! thread), `thumbnail_image` from the full-scale decode to 960 wide took
//! 0.63 s of CPU where `thumbnail_buffer` from the file took 0.09 s (to
//! 320 wide, 0.28 s against 0.06 s): resizing a large image in memory by 4
//! to 12 costs more than decoding the file again at a smaller scale. From
//! the render's own scale (a factor of 2 to 4 left) it costs what the
//! resize inside `thumbnail_buffer` costs.
//!
//! Only renders where this holds take part (everything else loads as
//! before): a JPEG, one page, the whole upright original resized (no
//! `trim`, `rect` or cropping fit), not JSON, within the thumbnail side
//! limit. Orientation and colour handling (`orient`, `cs`, ICC and CMYK
//! conversion) come after the load in both paths, so they are not part of
//! the key; the key is the SHA-256 of the original's bytes and the scale,
//! so a changed original (another ETag, a purge, a different file under
//! the same name) never meets an old decode, and identical bytes under two
//! names or Sources share one, as they decode identically.
//!
//! **When to keep.** Keeping costs the decode's pixels in memory (a
//! 3840 × 2400 JPEG at full scale is 27.6 MB) where a streaming thumbnail
//! holds a few rows. An original is only kept the second time it is
//! decoded within the time to live: the first render of an original loads
//! it as before and leaves only its digest behind, so traffic that asks
//! for each original once (a long-tail page, a crawler) keeps nothing. A
//! render that finds no kept decode of its scale decodes at that scale
//! (never finer: no render decodes more than it did) and keeps it, beside
//! the original's decodes at other scales. A srcset thus decodes its
//! original once, plus once per JPEG scale its widths span: four times for
//! W6's ten widths of a corpus JPEG instead of ten (docs/benchmarks.md,
//! section w6).
//!
//! Renders of one original arrive together (a page's srcset), so a decode
//! that will be kept is announced first: a render of the same original
//! and scale waits for it (within its own time budget) instead of decoding
//! beside it; if the decode fails, the waiting renders decode themselves.
//!
//! The render pool's batches (`--render-batch-max`, `service::render_pool`,
//! step 6; [`crate::pipeline::render_set`]) serve the widths of a srcset
//! that wait for a worker together from one decode of their own; the
//! decodes kept here serve renders outside batches (batching off, or
//! overlays).
//!
//! **Bounds.** The kept decodes stay within a byte budget
//! (`--render-intermediate-bytes`; 0 turns reuse off)
//! and a time to live (`--render-intermediate-ttl-ms`, 5 s), least
//! recently used first out. They also hold their size from the render
//! pool's running memory, which bounds the renderer's peak RSS: a decode
//! is only kept when the running renders leave room for it, and a render
//! that needs the room back evicts them before it waits
//! ([`Intermediates::make_room`]). Metrics: `imgmesh_render_intermediate_hits_total`,
//! `_misses_total`, `_stored_total`, `_evictions_total{reason}` and the
//! `imgmesh_render_intermediate_bytes` gauge; `imgmesh_originals_decoded_total`
//! counts the decodes that remain.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use imgmesh_proto::renderer::v1::OutputFormat;
use rs_vips::VipsImage;
use rs_vips::enums::{Access, FailOn, Size};
use rs_vips::voption::{Setter as _, VOption};
use sha2::Digest as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::geometry::Layout;
use crate::pipeline::libvips::RenderBudget;
use crate::pipeline::load::input_format::{self, InputFormat};
use crate::pipeline::load::source_image::{self, Frames, Header, LoadOptions, Pages};
use crate::pipeline::load::{self, CheckedOriginal};
use crate::pipeline::plan::ResolvedPlan;

/// A byte budget for srcset traffic: 64 MiB (two full-scale 3840 × 2400
/// decodes, or many shrunk ones), what W6 was measured with. Reuse is off
/// unless `--render-intermediate-bytes` turns it on: kept decodes raise
/// the renderer's peak RSS (W1: 215 MB against 178 MB without) for no gain
/// where originals are not asked for at many widths at once.
pub const SRCSET_INTERMEDIATE_BYTES: u64 = 64 * 1024 * 1024;

/// The default time a kept decode (and a first decode's digest) lives: a
/// page's srcset arrives within a second or two.
pub const DEFAULT_INTERMEDIATE_TTL: Duration = Duration::from_secs(5);

/// The most digests of once-decoded originals remembered (32 bytes and an
/// instant each); the oldest are forgotten first.
const MAX_SEEN: usize = 4096;

/// The largest side a whole-source thumbnail may have (as
/// `source_image::load`'s limit, past which it decodes differently).
const MAX_THUMBNAIL_SIDE: u32 = 65_535;

/// An original's identity: the SHA-256 of its bytes.
type Digest = [u8; 32];

/// Decoded originals kept for reuse (see the module docs).
#[derive(Debug)]
pub struct Intermediates {
    budget: u64,
    ttl: Duration,
    /// The render pool's running memory, which kept decodes hold their
    /// size from (in KiB permits); `None` when the pool has none.
    running_memory: Option<Arc<Semaphore>>,
    state: Mutex<State>,
}

/// What the cache holds.
#[derive(Debug, Default)]
struct State {
    /// Kept decodes, least recently used first.
    entries: Vec<Entry>,
    /// Originals decoded once and not kept, oldest first.
    seen: Vec<Seen>,
    /// Decodes under way that will be kept.
    pending: Vec<Pending>,
    /// Bytes of `entries`.
    bytes: u64,
}

/// One kept decode: a lone render's JPEG decode at its shrink-on-load
/// scale (1, 2, 4 or 8), before its resize and colour handling.
#[derive(Debug)]
struct Entry {
    digest: Digest,
    shrink: u32,
    image: VipsImage,
    bytes: u64,
    kept_at: Instant,
    /// Its share of the running memory, given back when it goes.
    _memory: Option<OwnedSemaphorePermit>,
}

/// A decode under way that will be kept: renders of the same original
/// that it serves wait for it instead of decoding too.
#[derive(Debug)]
struct Pending {
    digest: Digest,
    shrink: u32,
    slot: Arc<Slot<VipsImage>>,
}

/// Where a value one thread is making (a pending decode, a batch's
/// cascade source) is handed to the threads waiting for it.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    /// `None` while decoding; then the decode, or `None` if it failed.
    decoded: Mutex<Option<Option<T>>>,
    ready: Condvar,
}

/// Where a render that can take part gets its decode.
#[derive(Debug)]
enum Claim {
    /// A kept decode serves it.
    Kept(VipsImage),
    /// The original's first decode within the time to live: decode as
    /// usual, keep nothing.
    First,
    /// Another render is decoding it at a scale that serves this one.
    Wait(Arc<Slot<VipsImage>>),
    /// Decode it, keep it, and hand it to the renders that wait.
    Decode(Arc<Slot<VipsImage>>),
}

/// An original decoded (and not kept) within the time to live.
#[derive(Debug)]
struct Seen {
    digest: Digest,
    /// Its latest decode.
    at: Instant,
}

/// A render that can take part: what its own load would be.
#[derive(Debug, Clone, Copy)]
struct Target {
    /// The resize target, as stored (before orientation).
    width: u32,
    height: u32,
    /// The scale its own `thumbnail_buffer` would decode at.
    shrink: u32,
}

// === impl Intermediates ===

impl Intermediates {
    /// Kept decodes within `budget` bytes, each for at most `ttl`, holding
    /// their size from `running_memory` (KiB permits) when given.
    pub fn new(
        budget: u64,
        ttl: Duration,
        running_memory: Option<Arc<Semaphore>>,
    ) -> Intermediates {
        Intermediates {
            budget,
            ttl,
            running_memory,
            state: Mutex::new(State::default()),
        }
    }

    /// The byte budget (0: reuse is off).
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// How long a kept decode lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Decodes kept now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every decode (and digest) older than the time to live.
    pub fn expire(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        state
            .seen
            .retain(|seen| now.duration_since(seen.at) < self.ttl);
        state.remove_where(|entry| now.duration_since(entry.kept_at) >= self.ttl, "ttl");
    }

    /// Evicts kept decodes, least recently used first, until the running
    /// memory has `kib` free or nothing is kept: a render about to wait for
    /// running memory comes before kept decodes.
    pub fn make_room(&self, kib: u32) {
        let Some(running) = &self.running_memory else {
            return;
        };
        let mut state = self.lock();
        while running.available_permits() < kib as usize && !state.entries.is_empty() {
            state.remove_at(0, "room");
        }
    }

    /// Loads `original` for `layout` as [`load::load`] does, from a kept
    /// decode when one serves it exactly (see the module docs), else by
    /// decoding it — and keeping that decode when it is the original's
    /// second within the time to live.
    pub(crate) fn load(
        &self,
        original: &CheckedOriginal<'_>,
        plan: &ResolvedPlan,
        layout: &Layout,
        options: &LoadOptions,
        budget: &RenderBudget,
    ) -> Result<Frames, RenderError> {
        let target = match Target::of(original, plan, layout, options) {
            Some(target) if self.budget > 0 => target,
            _ => return decode(original, layout, options, budget),
        };
        let mut digest: Digest = [0; 32];
        digest.copy_from_slice(&sha2::Sha256::digest(original.bytes));
        let shrink = target.shrink;
        let keepable = decoded_bytes(&original.header, shrink) <= self.budget;
        let slot = match self.claim(&digest, shrink, keepable) {
            Claim::Kept(kept) => {
                METRICS.intermediate_hit();
                let _span = tracing::info_span!("vips.thumbnail", reused = true).entered();
                return target.resize(&kept, &original.header, options, budget);
            }
            Claim::First => {
                METRICS.intermediate_miss();
                return decode(original, layout, options, budget);
            }
            Claim::Wait(slot) => match slot.wait(budget)? {
                Some(decoded) => {
                    METRICS.intermediate_hit();
                    let _span = tracing::info_span!("vips.thumbnail", reused = true).entered();
                    return target.resize(&decoded, &original.header, options, budget);
                }
                None => {
                    METRICS.intermediate_miss();
                    return decode(original, layout, options, budget);
                }
            },
            Claim::Decode(slot) => slot,
        };
        METRICS.intermediate_miss();
        METRICS.original_decoded();
        let _span = tracing::info_span!("vips.thumbnail", kept = true, shrink).entered();
        let decoded = decode_at(original.bytes, shrink, budget);
        self.settle(&slot, digest, shrink, decoded.as_ref().ok());
        target.resize(&decoded?, &original.header, options, budget)
    }

    /// Where a render of `digest` at `shrink` gets its decode (see
    /// [`Claim`]); remembers the original's decode. A decode over the
    /// budget (`keepable` false) is never kept.
    fn claim(&self, digest: &Digest, shrink: u32, keepable: bool) -> Claim {
        let mut state = self.lock();
        if let Some(kept) = state.find(digest, shrink, self.ttl) {
            return Claim::Kept(kept);
        }
        if let Some(pending) = state
            .pending
            .iter()
            .find(|pending| pending.digest == *digest && pending.shrink == shrink)
        {
            return Claim::Wait(Arc::clone(&pending.slot));
        }
        if !state.seen_before(digest, self.ttl) || !keepable {
            return Claim::First;
        }
        let slot = Arc::new(Slot::new());
        state.pending.push(Pending {
            digest: *digest,
            shrink,
            slot: Arc::clone(&slot),
        });
        Claim::Decode(slot)
    }

    /// Ends the pending decode `slot` of `digest` at `shrink`: keeps
    /// `decoded` (when it succeeded) and hands it to the waiting renders.
    fn settle(
        &self,
        slot: &Arc<Slot<VipsImage>>,
        digest: Digest,
        shrink: u32,
        decoded: Option<&VipsImage>,
    ) {
        if let Some(decoded) = decoded {
            self.keep(digest, shrink, decoded.clone());
        }
        self.lock()
            .pending
            .retain(|pending| !Arc::ptr_eq(&pending.slot, slot));
        slot.hand(decoded.cloned());
    }

    /// Keeps `image`, `digest`'s decode at `shrink`, if it fits the budget
    /// (evicting the least recently used) and the running memory; drops
    /// the coarser decodes of the same original, which it replaces.
    fn keep(&self, digest: Digest, shrink: u32, image: VipsImage) {
        let bytes = image_bytes(&image);
        let mut state = self.lock();
        // A decode of the same original and scale kept meanwhile (its
        // render began before this one was announced) is the same pixels.
        state.remove_where(
            |entry| entry.digest == digest && entry.shrink == shrink,
            "replaced",
        );
        let Some(memory) = self.room_for(&mut state, bytes) else {
            return;
        };
        state.push(Entry {
            digest,
            shrink,
            image,
            bytes,
            kept_at: Instant::now(),
            _memory: memory,
        });
    }

    /// Makes room for `bytes` more within the budget and takes their
    /// share of the running memory (when the pool has one), evicting the
    /// least recently used: the share (`Some(None)` without running
    /// memory), or `None` when they do not fit.
    fn room_for(&self, state: &mut State, bytes: u64) -> Option<Option<OwnedSemaphorePermit>> {
        while state.bytes + bytes > self.budget && !state.entries.is_empty() {
            state.remove_at(0, "lru");
        }
        if state.bytes + bytes > self.budget {
            return None;
        }
        let Some(running) = &self.running_memory else {
            return Some(None);
        };
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        loop {
            match Arc::clone(running).try_acquire_many_owned(kib) {
                Ok(permit) => return Some(Some(permit)),
                Err(_) if !state.entries.is_empty() => state.remove_at(0, "room"),
                Err(_) => return None,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        imgmesh_runtime::lock(&self.state)
    }
}

impl Drop for Intermediates {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        METRICS.intermediate_bytes(-gauge(state.bytes));
    }
}

// === impl State ===

impl State {
    /// Keeps `entry` (its bytes already made room for), most recently used.
    fn push(&mut self, entry: Entry) {
        self.bytes += entry.bytes;
        METRICS.intermediate_bytes(gauge(entry.bytes));
        METRICS.intermediate_stored();
        self.entries.push(entry);
    }

    /// The kept decode of `digest` at scale `shrink`, younger than `ttl`.
    /// Marks it used.
    fn find(&mut self, digest: &Digest, shrink: u32, ttl: Duration) -> Option<VipsImage> {
        let now = Instant::now();
        let (index, image) = self.entries.iter().enumerate().find_map(|(index, entry)| {
            let young = entry.digest == *digest && now.duration_since(entry.kept_at) < ttl;
            (young && entry.shrink == shrink).then(|| (index, entry.image.clone()))
        })?;
        self.touch(index);
        Some(image)
    }

    /// Marks entry `index` the most recently used (the last).
    fn touch(&mut self, index: usize) {
        let entry = self.entries.remove(index);
        self.entries.push(entry);
    }

    /// Records a decode of `digest` that found nothing kept, and tells
    /// whether `digest` was decoded before within `ttl` (then this decode
    /// is kept).
    fn seen_before(&mut self, digest: &Digest, ttl: Duration) -> bool {
        let now = Instant::now();
        self.seen.retain(|seen| now.duration_since(seen.at) < ttl);
        if let Some(seen) = self.seen.iter_mut().find(|seen| seen.digest == *digest) {
            seen.at = now;
            return true;
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.remove(0);
        }
        self.seen.push(Seen {
            digest: *digest,
            at: now,
        });
        false
    }

    /// Drops entry `index`, counting it as evicted for `reason`.
    fn remove_at(&mut self, index: usize, reason: &'static str) {
        let entry = self.entries.remove(index);
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        METRICS.intermediate_bytes(-gauge(entry.bytes));
        METRICS.intermediate_evicted(reason);
    }

    /// Drops every entry `drop` picks, counting them for `reason`.
    fn remove_where(&mut self, drop: impl Fn(&Entry) -> bool, reason: &'static str) {
        let mut index = 0;
        while index < self.entries.len() {
            if drop(&self.entries[index]) {
                self.remove_at(index, reason);
            } else {
                index += 1;
            }
        }
    }
}

// === impl Slot ===

impl<T: Clone> Slot<T> {
    pub(crate) fn new() -> Slot<T> {
        Slot {
            decoded: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    /// Hands `decoded` (`None`: the decode failed) to the waiting renders
    /// (and to later ones).
    pub(crate) fn hand(&self, decoded: Option<T>) {
        let mut handed = imgmesh_runtime::lock(&self.decoded);
        *handed = Some(decoded);
        self.ready.notify_all();
    }

    /// The value once handed (`None`: it could not be made), however long
    /// that takes: for a caller whose maker always hands something (a
    /// batch's cascade, whose sources are handed even when their resize
    /// fails).
    pub(crate) fn wait_handed(&self) -> Option<T> {
        let mut decoded = imgmesh_runtime::lock(&self.decoded);
        loop {
            if let Some(decoded) = decoded.as_ref() {
                return decoded.clone();
            }
            decoded = self.ready.wait(decoded).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits for the pending decode, within the render's time budget:
    /// the decode, or `None` if it failed (the caller decodes itself).
    fn wait(&self, budget: &RenderBudget) -> Result<Option<T>, RenderError> {
        let mut decoded = imgmesh_runtime::lock(&self.decoded);
        loop {
            if let Some(decoded) = decoded.as_ref() {
                return Ok(decoded.clone());
            }
            budget.check()?;
            decoded = self
                .ready
                .wait_timeout(decoded, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

// === impl Target ===

impl Target {
    /// What `plan`'s load of `original` would be, when the render can take
    /// part (see the module docs): `None` otherwise.
    fn of(
        original: &CheckedOriginal<'_>,
        plan: &ResolvedPlan,
        layout: &Layout,
        options: &LoadOptions,
    ) -> Option<Target> {
        let header = &original.header;
        let eligible = original.format == InputFormat::Jpeg
            && header.pages == 1
            && options.pages == Pages::One(0)
            && plan.format() != OutputFormat::Json
            && plan.canonical().trim.is_none();
        let (upright_width, upright_height) = header.upright(options.orientation);
        if !eligible || !layout.uses_whole_source(upright_width, upright_height) {
            return None;
        }
        let (resize_width, resize_height) = layout.resize;
        if resize_width.max(resize_height) > MAX_THUMBNAIL_SIDE {
            return None;
        }
        let (width, height) = if source_image::swaps_axes(options.orientation) {
            (resize_height, resize_width)
        } else {
            (resize_width, resize_height)
        };
        Some(Target {
            width,
            height,
            shrink: jpeg_shrink(header.width, header.height, width, height),
        })
    }

    /// The frame from `decoded` (the original at some shrink-on-load
    /// scale): resized to the target as `thumbnail_buffer` resizes what it
    /// loads, with the same colour handling, then turned upright.
    fn resize(
        &self,
        decoded: &VipsImage,
        header: &Header,
        options: &LoadOptions,
        budget: &RenderBudget,
    ) -> Result<Frames, RenderError> {
        let failed = budget.failure("thumbnail");
        let mut thumbnail = decoded
            .thumbnail_image_with_opts(
                self.width as i32,
                colour_options(
                    VOption::new()
                        .set("height", self.height as i32)
                        .set("size", Size::Force as i32)
                        .set("no_rotate", true),
                    header,
                    options,
                ),
            )
            .map_err(&failed)?;
        budget.watch(&thumbnail);
        if options.orientation != 1 {
            // Turning reads out of order; the thumbnail streams.
            thumbnail = thumbnail.copy_memory().map_err(&failed)?;
            budget.watch(&thumbnail);
        }
        let image = source_image::orient(&thumbnail, options.orientation).map_err(&failed)?;
        Ok(Frames {
            images: vec![image],
            delays: None,
            loop_count: None,
        })
    }
}

/// The load of every render that does not reuse: [`load::load`], counted.
fn decode(
    original: &CheckedOriginal<'_>,
    layout: &Layout,
    options: &LoadOptions,
    budget: &RenderBudget,
) -> Result<Frames, RenderError> {
    METRICS.original_decoded();
    load::load(original, layout, options, budget)
}

/// The JPEG `bytes` decoded at 1/`shrink` scale into memory, as
/// `thumbnail_buffer` loads it (first page, stored orientation, its own
/// colour space and profile, truncated files refused), from the same
/// bytes: without the metadata no render reads when that is a large part
/// of the file (`input_format::jpeg_for_decoding`; rhythm.jpg's XMP would
/// otherwise be held twice while decoding and once for as long as the
/// decode is kept).
fn decode_at(bytes: &[u8], shrink: u32, budget: &RenderBudget) -> Result<VipsImage, RenderError> {
    let failed = budget.failure("thumbnail");
    let loaded = VipsImage::jpegload_buffer_with_opts(
        &input_format::jpeg_for_decoding(bytes),
        VOption::new()
            .set("shrink", shrink as i32)
            .set("fail_on", FailOn::Truncated as i32)
            // Streamed into the one buffer `copy_memory` makes: a random
            // access load decodes into a buffer of its own first, and the
            // copy doubled the page faults and added a memmove (perf on W6:
            // 29 % of the renderer's samples in the kernel, against 11 %
            // without reuse).
            .set("access", Access::Sequential as i32),
    )
    .map_err(&failed)?;
    budget.watch(&loaded);
    loaded.copy_memory().map_err(&failed)
}

/// The colour handling of `source_image::load`'s thumbnail, added to
/// `thumbnail`: the embedded profile (or a generic CMYK one) converted to
/// sRGB unless the plan keeps the source's RGB colour space. Kept equal by
/// the test that compares reused renders with fresh ones byte for byte.
fn colour_options<'a>(
    thumbnail: VOption<'a>,
    header: &Header,
    options: &LoadOptions,
) -> VOption<'a> {
    let keep = options.keep_color_space && !header.cmyk;
    let mut thumbnail = thumbnail;
    if (header.has_icc_profile || header.cmyk) && !keep {
        thumbnail = thumbnail.set("export_profile", "srgb");
    }
    if header.cmyk && !header.has_icc_profile {
        thumbnail = thumbnail.set("import_profile", "cmyk");
    }
    thumbnail
}

/// libvips 8.14's JPEG shrink-on-load scale for a `width × height` image
/// thumbnailed to exactly `target_width × target_height` (`size=force`):
/// from the smaller shrink factor, leaving at least 2 for the resize
/// (`vips_thumbnail_find_jpegshrink`).
pub(crate) fn jpeg_shrink(width: u32, height: u32, target_width: u32, target_height: u32) -> u32 {
    let shrink = (f64::from(width) / f64::from(target_width.max(1)))
        .min(f64::from(height) / f64::from(target_height.max(1)));
    if shrink >= 16.0 {
        8
    } else if shrink >= 8.0 {
        4
    } else if shrink >= 4.0 {
        2
    } else {
        1
    }
}

/// The bytes of `header`'s image decoded at 1/`shrink` (libjpeg rounds
/// the sides up), at most 4 bands of one byte.
fn decoded_bytes(header: &Header, shrink: u32) -> u64 {
    let bands = if header.cmyk { 4 } else { 3 };
    u64::from(header.width.div_ceil(shrink)) * u64::from(header.height.div_ceil(shrink)) * bands
}

/// The bytes an image in memory holds.
fn image_bytes(image: &VipsImage) -> u64 {
    let pixels = u64::from(source_image::dimension(image.get_width()))
        * u64::from(source_image::dimension(image.get_height()));
    pixels * u64::from(source_image::dimension(image.get_bands()))
}

/// `bytes` for a gauge.
fn gauge(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
