//! Every log line a test process writes, kept in memory at TRACE so tests
//! can prove what was — and what was never — logged (a secret, say).
//!
//! The subscriber is process-wide: under nextest each test is a process of
//! its own, so what [`captured_logs`] returns is that test's logs.

use std::sync::{Mutex, OnceLock};

/// Everything logged since [`capture_logs`] was first called.
fn buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(Default::default)
}

/// A `tracing` writer appending to [`buffer`].
#[derive(Debug, Clone, Copy)]
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        buffer()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of this process, at TRACE and without colours, to
/// the buffer [`captured_logs`] reads; installed once, later calls do
/// nothing.
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| CaptureWriter)
            .try_init();
    });
}

/// Everything logged since [`capture_logs`].
pub fn captured_logs() -> String {
    String::from_utf8_lossy(
        &buffer()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line logged after capture starts is read back, fields and all.
    #[test]
    fn logged_lines_are_read_back() {
        capture_logs();
        tracing::trace!(canary = "c4n4ry", "something happened");
        let logs = captured_logs();
        assert!(logs.contains("something happened"), "{logs}");
        assert!(logs.contains("c4n4ry"), "{logs}");
    }
}
