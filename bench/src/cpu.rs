//! This process's CPU time, shared by the benchmark binaries that time
//! their own work (`libvips-floor`, `imgmesh-quality`).

use anyhow::Context as _;

/// This process's user + system CPU time so far, in milliseconds, from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks of 1/100 s on Linux).
pub(crate) fn process_cpu_ms() -> anyhow::Result<f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The command name (field 2) may contain spaces; fields after it are plain.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/self/stat format")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3, so utime (14) is index 11, stime (15) 12.
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) * 1000.0 / TICKS_PER_SECOND)
}
