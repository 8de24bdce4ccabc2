//! Starting libvips once per process, locked down for untrusted input.
//!
//! - no operation cache (every render is unique work; the cache would only
//!   hold memory),
//! - one libvips worker thread per pipeline: parallelism comes from running
//!   several renders at once on the blocking pool,
//! - every loader blocked except JPEG, PNG, WebP, GIF and HEIF/AVIF, on top
//!   of libvips' own list of untrusted loaders (which, in 8.14, does not
//!   include MATLAB, TIFF or the matrix loader),
//! - glibc's malloc told to give every allocation from 128 KiB up its own
//!   mapping ([`return_large_buffers_to_the_kernel`]), so a render's large
//!   decode buffers go back to the kernel when it ends.
//!
//! [`thumbnail_shared`] runs libvips' `thumbnail_buffer` on bytes it shares
//! with its caller instead of a copy.
//!
//! It also holds [`RenderBudget`], the time limit of one render, enforced
//! inside libvips' evaluation: a render past its budget is killed where it
//! stands instead of running to the end.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rs_vips::{Vips, VipsImage, bindings};

use crate::error::RenderError;
use crate::pipeline::load::input_format::{self, InputFormat};

/// The libvips loader classes imgmesh allows; every other loader is blocked.
const ALLOWED_LOADERS: [&CStr; 5] = [
    c"VipsForeignLoadJpeg",
    c"VipsForeignLoadPng",
    c"VipsForeignLoadWebp",
    c"VipsForeignLoadNsgif",
    c"VipsForeignLoadHeif",
];

static STARTED: OnceLock<bool> = OnceLock::new();

/// The size from which glibc's malloc maps each allocation on its own
/// (and unmaps it when freed): its initial default, kept fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: c_int = 128 * 1024;

/// Starts and locks down libvips; later calls are free. Every render calls
/// this, so callers (tests, benchmarks) need not.
pub fn init() -> Result<(), RenderError> {
    let started = *STARTED.get_or_init(|| {
        if let Err(error) = Vips::init("imgmesh-renderer") {
            tracing::error!(%error, "libvips failed to start");
            return false;
        }
        // SAFETY: registers a handler with the signature GLib expects; it
        // lives for the whole process (a plain fn item).
        unsafe {
            bindings::g_log_set_handler(
                c"VIPS".as_ptr(),
                bindings::GLogLevelFlags_G_LOG_LEVEL_CRITICAL
                    | bindings::GLogLevelFlags_G_LOG_LEVEL_WARNING
                    | bindings::GLogLevelFlags_G_LOG_LEVEL_MESSAGE
                    | bindings::GLogLevelFlags_G_LOG_LEVEL_INFO
                    | bindings::GLogLevelFlags_G_LOG_LEVEL_DEBUG,
                Some(forward_glib_log),
                std::ptr::null_mut(),
            );
        }
        Vips::cache_set_max(0);
        Vips::cache_set_max_files(0);
        Vips::cache_set_max_mem(0);
        Vips::concurrency_set(1);
        return_large_buffers_to_the_kernel();
        // SAFETY: plain setters on libvips' global operation table, called
        // after a successful vips_init and with NUL-terminated class names.
        unsafe {
            bindings::vips_block_untrusted_set(1);
            bindings::vips_operation_block_set(c"VipsForeignLoad".as_ptr(), 1);
            for loader in ALLOWED_LOADERS {
                bindings::vips_operation_block_set(loader.as_ptr(), 0);
            }
        }
        tracing::info!(
            version = Vips::version_string().unwrap_or_default(),
            "libvips started"
        );
        true
    });
    if started {
        Ok(())
    } else {
        Err(RenderError::Internal {
            context: "starting libvips",
        })
    }
}

/// The libvips modules imgmesh uses: `vips-heif` (HEIF/AVIF load and
/// save). The others a distribution ships (ImageMagick, Poppler,
/// OpenSlide, libjxl) only add loaders the renderer blocks and savers it
/// never calls.
const NEEDED_MODULES: [&str; 1] = ["vips-heif"];

/// Starts libvips as [`init`] does, with only [`NEEDED_MODULES`] loaded:
/// libvips loads every module in its `vips-modules-<major>.<minor>`
/// directory when it starts, and each pulls its libraries into the process
/// (ImageMagick, Poppler and OpenSlide: about 6 MB of resident pages that
/// never serve a render, and code hostile input cannot reach if it is not
/// there). libvips looks for that directory under `$VIPSHOME`, so for its
/// start this points `VIPSHOME` at a new, empty private directory (mode
/// 0700, removed right after) where it finds none; then it loads the
/// needed modules from libvips' own module directory itself, through GLib
/// (`g_module_open`, which runs the module's initialiser as libvips
/// would). Returns the modules loaded.
///
/// An operator's own `VIPSHOME`, or a libvips without a module directory
/// beside it, start libvips as [`init`] does, with whatever modules it
/// finds. A needed module that is there but fails to load is an error.
///
/// Call it before the process starts other threads: it sets an environment
/// variable.
#[expect(
    clippy::disallowed_methods,
    reason = "VIPSHOME is set for libvips' start only, before the process starts other threads"
)]
pub fn init_with_needed_modules() -> Result<Vec<String>, RenderError> {
    if STARTED.get().is_some() || std::env::var_os("VIPSHOME").is_some() {
        return init().map(|()| Vec::new());
    }
    let Some(system) = system_modules_dir() else {
        return init().map(|()| Vec::new());
    };
    let home = match empty_private_dir() {
        Ok(home) => home,
        Err(error) => {
            tracing::warn!(%error, "libvips starts with every module it finds");
            return init().map(|()| Vec::new());
        }
    };
    // SAFETY: called before the process starts other threads (see above),
    // so nothing reads the environment while it changes.
    unsafe { std::env::set_var("VIPSHOME", &home) };
    let started = init();
    // SAFETY: as above.
    unsafe { std::env::remove_var("VIPSHOME") };
    if let Err(error) = std::fs::remove_dir(&home) {
        tracing::warn!(%error, "removing libvips' private VIPSHOME");
    }
    started?;
    let mut loaded = Vec::new();
    for module in NEEDED_MODULES {
        let path = system.join(format!("{module}.so"));
        if !path.is_file() {
            continue;
        }
        let Ok(file) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: a NUL-terminated path; GLib loads the module and runs its
        // g_module_check_init, which registers its operations with libvips
        // (started above) and makes the module resident.
        let opened = unsafe { g_module_open(file.as_ptr(), G_MODULE_BIND_LAZY) };
        if opened.is_null() {
            return Err(RenderError::Internal {
                context: "loading a libvips module",
            });
        }
        loaded.push(module.to_owned());
    }
    Ok(loaded)
}

/// GLib's flag for [`g_module_open`]: resolve symbols when first used.
const G_MODULE_BIND_LAZY: c_int = 1;

#[link(name = "gmodule-2.0")]
unsafe extern "C" {
    /// GLib's module loader (libvips loads its modules with it).
    fn g_module_open(file_name: *const c_char, flags: c_int) -> *mut c_void;
}

/// libvips' module directory: `vips-modules-<major>.<minor>` beside the
/// libvips library this process mapped; `None` when there is none.
fn system_modules_dir() -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let libvips = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            std::path::Path::new(path)
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("libvips.so"))
        })?;
    let version = Vips::version_string().ok()?;
    let mut parts = version.split('.');
    let name = format!("vips-modules-{}.{}", parts.next()?, parts.next()?);
    let dir = std::path::Path::new(libvips).parent()?.join(name);
    dir.is_dir().then_some(dir)
}

/// A new directory of this process's own under the temporary directory,
/// mode 0700: no other user can place a module in it.
fn empty_private_dir() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;

    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let home = std::env::temp_dir().join(format!(
        "imgmesh-renderer-vips-{}-{nonce:x}",
        std::process::id()
    ));
    // create fails if the name exists.
    std::fs::DirBuilder::new().mode(0o700).create(&home)?;
    Ok(home)
}

/// Keeps glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`]. glibc raises
/// it, by default, to the size of each mapped block that is freed (up to
/// 32 MiB), so after the first render libjpeg's coefficient buffer (18 MB
/// per component of a 3840 × 2400 progressive JPEG), its saved metadata
/// and the decoded frames come from the heap instead, where freed memory
/// stays in the process: the renderer's RSS then grows to the sum of the
/// largest renders that ever ran side by side and stays there. With the
/// threshold fixed, each such buffer is mapped for its render and unmapped
/// after it (measured on W1 in docs/benchmarks.md: peak and after-load
/// RSS).
fn return_large_buffers_to_the_kernel() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's malloc.h.
        const M_MMAP_THRESHOLD: c_int = -3;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // SAFETY: mallopt only changes allocator tuning, and
        // M_MMAP_THRESHOLD accepts any size up to 32 MiB; it is safe to
        // call with threads running (glibc takes its own lock).
        unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        }
    }
}

/// glibc's malloc tunable asking for transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`) on the memory malloc maps: glibc 2.35 and
/// later; older ones ignore it.
pub const HUGE_PAGE_TUNABLE: &str = "glibc.malloc.hugetlb=1";

/// The `GLIBC_TUNABLES` value that adds [`HUGE_PAGE_TUNABLE`] to `current`
/// (the process's own value, if any), or `None` when `current` already
/// sets `glibc.malloc.hugetlb` (an operator's choice, or this process
/// after [`exec_with_huge_page_malloc`]).
pub fn tunables_with_huge_pages(current: Option<&std::ffi::OsStr>) -> Option<std::ffi::OsString> {
    let current = current.map(|value| value.to_string_lossy().into_owned());
    match current.as_deref() {
        Some(value)
            if value
                .split(':')
                .any(|tunable| tunable.starts_with("glibc.malloc.hugetlb=")) =>
        {
            None
        }
        Some(value) if !value.is_empty() => Some(format!("{value}:{HUGE_PAGE_TUNABLE}").into()),
        _ => Some(HUGE_PAGE_TUNABLE.into()),
    }
}

/// Runs this program again, with the same arguments and process id, with
/// [`HUGE_PAGE_TUNABLE`] added to `GLIBC_TUNABLES` (read only when a
/// process starts); returns, doing nothing, when it is set already, and
/// returns the error when the exec fails (the process then goes on with
/// 4 KiB pages). With it glibc advises huge pages on the blocks it maps
/// (every allocation from the mmap threshold up) and on its main heap:
/// a progressive JPEG's coefficient buffer (55 MB for 3840 × 2400) then
/// faults in 2 MiB at a time instead of 4 KiB (about 28 faults instead of
/// 13,500). Call it first thing in `main`, before any thread starts.
pub fn exec_with_huge_page_malloc() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt as _;

    let Some(tunables) = tunables_with_huge_pages(std::env::var_os("GLIBC_TUNABLES").as_deref())
    else {
        return Ok(());
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    Err(command.args(args).env("GLIBC_TUNABLES", tunables).exec())
}

/// Hands the heap's free pages back to the kernel (glibc's
/// `malloc_trim(0)`): what renders free below the mmap threshold
/// (libvips' tile buffers, the original's header reads) stays in the
/// process's two arenas, scattered between live blocks, and adds up to
/// tens of MB over a load. Called when the render pool falls idle, so the
/// renderer returns near its resting size once a load stops.
pub(crate) fn release_free_memory() {
    #[cfg(test)]
    HEAP_TRIMS.fetch_add(1, Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> c_int;
        }
        // SAFETY: malloc_trim only returns free memory to the kernel and is
        // thread-safe (it locks each arena in turn).
        unsafe {
            malloc_trim(0);
        }
    }
}

/// How many times this process trimmed its heap: tests read it to tell
/// which renders trimmed.
#[cfg(test)]
pub(crate) static HEAP_TRIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A libvips `*load_buffer` function (variadic: `name, value, ..., NULL`).
type BufferLoader = unsafe extern "C" fn(
    buf: *mut c_void,
    len: usize,
    out: *mut *mut bindings::VipsImage,
    ...
) -> c_int;

/// Opens `input` with `format`'s own loader, reading only the header, and
/// hands the (undecoded) image to `inspect`.
///
/// Unlike rs-vips' loaders this does not copy `input`: libvips reads the
/// caller's bytes in place. The image borrows them, so it never leaves this
/// function. A JPEG whose metadata no render reads is a large part of it
/// is read from its header segments without that metadata
/// ([`input_format::jpeg_for_header`]): libjpeg and libvips would
/// otherwise each hold a copy of it (14.7 MB for rhythm.jpg's XMP) at every
/// admission.
pub(crate) fn inspect_header<T>(
    input: &[u8],
    format: InputFormat,
    inspect: impl FnOnce(&VipsImage) -> T,
) -> Result<T, RenderError> {
    open_header(input, format, false, |image, _| inspect(image))
}

/// Like [`inspect_header`], also handing over the names of every metadata
/// field the loader found (EXIF tags, ICC profile, ...).
pub(crate) fn inspect_header_fields<T>(
    input: &[u8],
    format: InputFormat,
    inspect: impl FnOnce(&VipsImage, &[String]) -> T,
) -> Result<T, RenderError> {
    open_header(input, format, true, inspect)
}

fn open_header<T>(
    input: &[u8],
    format: InputFormat,
    with_fields: bool,
    inspect: impl FnOnce(&VipsImage, &[String]) -> T,
) -> Result<T, RenderError> {
    let loader: BufferLoader = match format {
        InputFormat::Jpeg => bindings::vips_jpegload_buffer,
        InputFormat::Png => bindings::vips_pngload_buffer,
        InputFormat::Webp => bindings::vips_webpload_buffer,
        InputFormat::Gif => bindings::vips_gifload_buffer,
        InputFormat::Heif => bindings::vips_heifload_buffer,
    };
    let input = match format {
        InputFormat::Jpeg => input_format::jpeg_for_header(input),
        _ => Cow::Borrowed(input),
    };
    let mut out: *mut bindings::VipsImage = std::ptr::null_mut();
    // SAFETY: libvips only reads `input` (the pointer is `*mut` in the C
    // signature only) and the image that refers to it is dropped below,
    // before the borrow ends. The options are one (name, int) pair and the
    // terminating NULL, as the variadic API requires.
    let status = unsafe {
        loader(
            input.as_ptr().cast_mut().cast(),
            input.len(),
            &mut out,
            c"access".as_ptr(),
            bindings::VipsAccess_VIPS_ACCESS_SEQUENTIAL as c_int,
            std::ptr::null::<c_char>(),
        )
    };
    if status != 0 || out.is_null() {
        log_failure("header", &Vips::error_buffer().unwrap_or_default());
        return Err(RenderError::CorruptInput);
    }
    let fields = if with_fields {
        // SAFETY: `out` is a valid image; libvips returns a NULL-terminated
        // array of NUL-terminated strings that the caller frees with
        // g_strfreev, which happens right after copying them.
        unsafe {
            let names = bindings::vips_image_get_fields(out);
            let mut fields = Vec::new();
            if !names.is_null() {
                let mut at = names;
                while !(*at).is_null() {
                    fields.push(CStr::from_ptr(*at).to_string_lossy().into_owned());
                    at = at.add(1);
                }
                bindings::g_strfreev(names);
            }
            fields
        }
    } else {
        Vec::new()
    };
    // Takes over the reference `out` holds; dropping it unrefs the image.
    let image = VipsImage::from(out);
    let inspected = inspect(&image, &fields);
    drop(image);
    Ok(inspected)
}

/// One optional argument of a libvips operation, as its C API takes it:
/// ints, enums and booleans as an int, strings NUL-terminated.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Argument<'a> {
    /// An int, an enum's value or a boolean (0 or 1).
    Int(i32),
    /// A string.
    Str(&'a CStr),
}

/// libvips' `thumbnail_buffer` of `input` to `width`, with `arguments`,
/// reading `input` in place: libvips holds a reference to it (a blob whose
/// free function drops that reference) for as long as any image made from
/// the thumbnail lives, so the caller may drop its own at any time.
///
/// rs-vips' `thumbnail_buffer` instead copies the buffer and keeps the copy
/// with the image, through the encode: the original and its copy were
/// both held for the whole render (1.4–3 MB each for the benchmark's
/// JPEGs).
pub(crate) fn thumbnail_shared(
    input: &Arc<Vec<u8>>,
    width: i32,
    arguments: &[(&CStr, Argument<'_>)],
) -> rs_vips::Result<VipsImage> {
    let failed = || {
        let detail = Vips::error_buffer().unwrap_or_default();
        rs_vips::error::Error::OperationError(format!("thumbnail_buffer failed: {detail}"))
    };
    // SAFETY: every pointer handed to libvips is valid for the call: the
    // operation and blob it made, NUL-terminated names and strings, and
    // the values in the types the variadic setters read for these
    // properties (an int for ints, enums and booleans; a pointer for the
    // boxed blob and for strings), each list ended by NULL. The blob's
    // data is `input`'s heap buffer, kept alive by the reference `lend`
    // files under the blob until libvips frees the blob.
    unsafe {
        let mut operation = bindings::vips_operation_new(c"thumbnail_buffer".as_ptr());
        if operation.is_null() {
            return Err(failed());
        }
        let object = operation.cast::<bindings::VipsObject>();
        let blob = lend(input);
        let mut status = bindings::vips_object_set(
            object,
            c"buffer".as_ptr(),
            blob,
            c"width".as_ptr(),
            width as c_int,
            std::ptr::null::<c_char>(),
        );
        // The operation holds its own reference now.
        bindings::vips_area_unref(blob.cast());
        for (name, value) in arguments {
            if status != 0 {
                break;
            }
            status = match value {
                Argument::Int(value) => bindings::vips_object_set(
                    object,
                    name.as_ptr(),
                    *value as c_int,
                    std::ptr::null::<c_char>(),
                ),
                Argument::Str(value) => bindings::vips_object_set(
                    object,
                    name.as_ptr(),
                    value.as_ptr(),
                    std::ptr::null::<c_char>(),
                ),
            };
        }
        if status == 0 {
            status = bindings::vips_cache_operation_buildp(&mut operation);
        }
        let mut out: *mut bindings::VipsImage = std::ptr::null_mut();
        if status == 0 {
            bindings::g_object_get(
                operation.cast(),
                c"out".as_ptr(),
                &mut out,
                std::ptr::null::<c_char>(),
            );
        }
        bindings::vips_object_unref_outputs(operation.cast());
        bindings::g_object_unref(operation.cast());
        if status != 0 || out.is_null() {
            return Err(failed());
        }
        // Takes over the reference g_object_get gave.
        Ok(VipsImage::from(out))
    }
}

/// The references to shared inputs that libvips blobs hold, by the blob's
/// address: dropped when libvips frees the blob ([`give_back`]).
fn lent() -> &'static Mutex<HashMap<usize, Arc<Vec<u8>>>> {
    static LENT: OnceLock<Mutex<HashMap<usize, Arc<Vec<u8>>>>> = OnceLock::new();
    LENT.get_or_init(Mutex::default)
}

/// A new blob over `input`'s bytes (one reference, the caller's), holding
/// a reference to `input` until libvips frees it.
///
/// # Safety
///
/// libvips must be started.
unsafe fn lend(input: &Arc<Vec<u8>>) -> *mut bindings::VipsBlob {
    // SAFETY: the data pointer and length describe `input`'s buffer, which
    // the reference filed below keeps alive until `give_back` runs.
    let blob =
        unsafe { bindings::vips_blob_new(Some(give_back), input.as_ptr().cast(), input.len()) };
    imgmesh_runtime::lock(lent()).insert(blob as usize, Arc::clone(input));
    blob
}

/// The free function of a blob made by [`lend`]: drops its reference to
/// the shared input (libvips passes the data, then the blob itself).
unsafe extern "C" fn give_back(_data: *mut c_void, blob: *mut c_void) -> c_int {
    let returned = imgmesh_runtime::lock(lent()).remove(&(blob as usize));
    drop(returned);
    0
}

/// Sends libvips' GLib log messages to `tracing` instead of raw stderr. Its
/// warnings are about the input being rendered ("premature end of JPEG
/// file"), so they go to debug like its error text; criticals are bugs.
unsafe extern "C" fn forward_glib_log(
    _domain: *const c_char,
    level: bindings::GLogLevelFlags,
    message: *const c_char,
    _user_data: *mut c_void,
) {
    if message.is_null() {
        return;
    }
    // SAFETY: GLib passes a NUL-terminated message valid for this call.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if level & bindings::GLogLevelFlags_G_LOG_LEVEL_CRITICAL != 0 {
        tracing::warn!(target: "libvips", %message, "libvips critical");
    } else {
        tracing::debug!(target: "libvips", %message, "libvips");
    }
}

/// Logs a libvips failure at debug (its text is for operators, never for
/// callers) and clears libvips' error buffer so it cannot grow or leak into
/// a later, unrelated error.
pub(crate) fn log_failure(stage: &'static str, error: &dyn std::fmt::Display) {
    tracing::debug!(stage, %error, "libvips failed");
    Vips::error_clear();
}

/// The time limit of one render (`--max-render-ms`), enforced two ways:
///
/// - between stages and frames, the render asks [`RenderBudget::check`];
/// - while libvips evaluates, every image handed to [`RenderBudget::watch`]
///   signals progress after each tile, and once the budget is spent the
///   handler sets libvips' kill flag on it (`vips_image_set_kill`): the next
///   region libvips prepares on that image fails, so the evaluation (a
///   thumbnail, a copy to memory, an encoder) stops within one tile.
///
/// libvips' per-image kill flag is what stops the work; nothing is left
/// running on the worker thread and no global libvips state is touched, so
/// the next render on the same thread starts clean.
#[derive(Debug)]
pub(crate) struct RenderBudget {
    state: Arc<BudgetState>,
    limit: Duration,
}

/// What the eval handlers share with the render.
#[derive(Debug)]
struct BudgetState {
    deadline: Instant,
    expired: AtomicBool,
}

// === impl RenderBudget ===

impl RenderBudget {
    /// A budget of `limit`, starting now.
    pub(crate) fn start(limit: Duration) -> RenderBudget {
        let now = Instant::now();
        RenderBudget {
            state: Arc::new(BudgetState {
                deadline: now
                    .checked_add(limit)
                    .unwrap_or(now + Duration::from_secs(86_400)),
                expired: AtomicBool::new(false),
            }),
            limit,
        }
    }

    /// The budget, in milliseconds (for the error).
    pub(crate) fn limit_ms(&self) -> u64 {
        u64::try_from(self.limit.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the budget is spent (and libvips was, or will be, stopped).
    pub(crate) fn expired(&self) -> bool {
        self.state.expired()
    }

    /// Fails with [`RenderError::RenderTooSlow`] once the budget is spent.
    pub(crate) fn check(&self) -> Result<(), RenderError> {
        if self.expired() {
            Err(self.too_slow())
        } else {
            Ok(())
        }
    }

    /// The error of a render stopped by this budget.
    pub(crate) fn too_slow(&self) -> RenderError {
        RenderError::RenderTooSlow {
            limit_ms: self.limit_ms(),
        }
    }

    /// Maps a libvips failure at `stage`: a failure after the budget ran out
    /// is the kill switch at work (RENDER_TOO_SLOW); any other is the
    /// input's fault (CORRUPT_INPUT). libvips' text is logged for operators
    /// only.
    pub(crate) fn failure(
        &self,
        stage: &'static str,
    ) -> impl Fn(rs_vips::error::Error) -> RenderError + '_ {
        move |error| {
            log_failure(stage, &error);
            if self.expired() {
                self.too_slow()
            } else {
                RenderError::CorruptInput
            }
        }
    }

    /// Puts `image` under the budget: libvips reports evaluation progress
    /// on it (for every image computed from it, until a later image is
    /// watched) and the handler kills it once the budget is spent.
    pub(crate) fn watch(&self, image: &VipsImage) {
        let state = Arc::into_raw(Arc::clone(&self.state));
        // SAFETY: `image` is a live VipsImage. The handler has the "eval"
        // signature (image, progress, user data). The user data is one
        // strong count of `state`, released by `release_budget` when the
        // handler is disconnected (the image is finalised), so the handler
        // never sees a dangling pointer. Turning progress off first makes
        // `image` its own signaller: libvips only sets `progress_signal`
        // when it is unset, and images inherit their input's.
        unsafe {
            let image = image.as_mut_ptr();
            bindings::g_signal_connect_data(
                image.cast(),
                c"eval".as_ptr(),
                Some(std::mem::transmute::<
                    unsafe extern "C" fn(*mut bindings::VipsImage, *mut c_void, *mut c_void),
                    unsafe extern "C" fn(),
                >(on_eval)),
                state.cast_mut().cast(),
                Some(release_budget),
                bindings::GConnectFlags_G_CONNECT_DEFAULT,
            );
            bindings::vips_image_set_progress(image, 0);
            bindings::vips_image_set_progress(image, 1);
        }
    }
}

// === impl BudgetState ===

impl BudgetState {
    fn expired(&self) -> bool {
        if self.expired.load(Ordering::Relaxed) {
            return true;
        }
        if Instant::now() >= self.deadline {
            self.expired.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// libvips' "eval" handler: kills the evaluation once the budget is spent.
unsafe extern "C" fn on_eval(
    image: *mut bindings::VipsImage,
    _progress: *mut c_void,
    state: *mut c_void,
) {
    // SAFETY: `state` is the pointer `watch` connected, kept alive until
    // `release_budget` runs, which GLib does only after the last emission.
    let state = unsafe { &*state.cast::<BudgetState>() };
    if state.expired() {
        // SAFETY: GLib passes the live image the signal is emitted on.
        unsafe { bindings::vips_image_set_kill(image, 1) };
    }
}

/// Releases the budget reference an "eval" handler held.
unsafe extern "C" fn release_budget(state: *mut c_void, _closure: *mut bindings::GClosure) {
    // SAFETY: `state` came from `Arc::into_raw` in `watch`, released once.
    drop(unsafe { Arc::from_raw(state.cast_const().cast::<BudgetState>()) });
}

#[cfg(test)]
mod module_tests {
    use super::*;

    /// The huge-page tunable is added to what the process has, once: an
    /// operator's own `glibc.malloc.hugetlb` (or this process after its
    /// exec) is left alone, so the exec cannot loop.
    #[test]
    fn the_huge_page_tunable_is_added_once() {
        use std::ffi::OsStr;
        assert_eq!(
            tunables_with_huge_pages(None),
            Some("glibc.malloc.hugetlb=1".into())
        );
        assert_eq!(
            tunables_with_huge_pages(Some(OsStr::new(""))),
            Some("glibc.malloc.hugetlb=1".into())
        );
        assert_eq!(
            tunables_with_huge_pages(Some(OsStr::new("glibc.malloc.arena_max=2"))),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1".into())
        );
        let added = tunables_with_huge_pages(Some(OsStr::new("glibc.malloc.arena_max=2"))).unwrap();
        assert_eq!(tunables_with_huge_pages(Some(&added)), None);
        assert_eq!(
            tunables_with_huge_pages(Some(OsStr::new("glibc.malloc.hugetlb=0"))),
            None
        );
        assert_eq!(
            tunables_with_huge_pages(Some(OsStr::new(
                "glibc.malloc.trim_threshold=1:glibc.malloc.hugetlb=2"
            ))),
            None
        );
    }

    /// The libraries mapped into this process.
    fn mapped() -> String {
        std::fs::read_to_string("/proc/self/maps").unwrap()
    }

    /// Started so, libvips loads the HEIF module (AVIF still encodes) and
    /// none of the others this machine's libvips has, and leaves no
    /// directory or variable behind. Each test runs in its own process
    /// (nextest), so libvips starts here.
    #[test]
    fn only_the_needed_modules_are_loaded() {
        let home_before = std::env::var_os("VIPSHOME");
        assert!(home_before.is_none(), "the test needs VIPSHOME unset");
        let loaded = init_with_needed_modules().unwrap();
        let maps = mapped();
        let system = system_modules_dir().expect("this machine's libvips has modules");
        let shipped: Vec<String> = std::fs::read_dir(&system)
            .map(|dir| {
                dir.filter_map(|entry| {
                    let name = entry.ok()?.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".so").map(str::to_owned)
                })
                .collect()
            })
            .unwrap_or_default();
        for module in &shipped {
            let is_mapped = maps.contains(&format!("/{module}.so"));
            assert_eq!(
                is_mapped,
                NEEDED_MODULES.contains(&module.as_str()),
                "{module}: mapped {is_mapped}"
            );
        }
        if shipped.iter().any(|module| module == "vips-heif") {
            assert_eq!(loaded, ["vips-heif"]);
            // An AVIF encodes (heifsave) and decodes (heifload).
            let avif = crate::test_images::avif(16, 16);
            let image = VipsImage::new_from_buffer(&avif, "").unwrap();
            assert_eq!(image.get_width(), 16);
        }
        assert!(std::env::var_os("VIPSHOME").is_none());
        let leftovers = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("imgmesh-renderer-vips-{}-", std::process::id()))
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
