//! Child processes that die with the test: spawn, learn their ports from
//! the `listening on` line they print (or from `/proc`), read their logs,
//! kill them on drop.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::ports::listening_ports;

/// How long a process may take to announce, or open, its listeners.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a starting process is checked again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A child process killed when dropped; its stdout and stderr go to a log
/// file and the announcements on stdout are kept for [`ChildProcess::listening`].
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
    announcements: Arc<Mutex<Vec<String>>>,
}

// === impl ChildProcess ===

impl ChildProcess {
    /// Spawns `command`, logging to `<logs>/<name>.log`.
    pub fn spawn(name: &str, command: &mut Command, logs: &Path) -> anyhow::Result<ChildProcess> {
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone()?)
            .spawn()
            .with_context(|| format!("spawning {name}: {command:?}"))?;
        let stdout = child.stdout.take().context("stdout was piped")?;
        let announcements = Arc::new(Mutex::new(Vec::new()));
        let seen = announcements.clone();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut log = log;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if line.contains(" listening on ") {
                    seen.lock().expect("announcements lock").push(line);
                }
            }
        });
        Ok(ChildProcess {
            name: name.to_owned(),
            child: Some(child),
            log_path,
            announcements,
        })
    }

    /// Waits for the process to print `imgmesh <service> <role> listening on
    /// <addr>` and returns the address.
    pub async fn listening(&mut self, role: &str) -> anyhow::Result<SocketAddr> {
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(addr) = self.announced(role) {
                return Ok(addr);
            }
            self.fail_if_exited("listening")?;
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} did not announce {role} in time:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the process itself listens on a TCP port (as `/proc`
    /// shows, so it cannot be another process's listener) and returns the
    /// port: for servers that bind port 0 and do not say which port they got.
    pub async fn listening_port(&mut self) -> anyhow::Result<u16> {
        self.wait_for_own_listener(|ports| ports.first().copied())
            .await
    }

    /// Waits until the process itself listens on `port` (as `/proc` shows);
    /// fails when it exits first (e.g. because the port was taken).
    pub async fn listening_on(&mut self, port: u16) -> anyhow::Result<()> {
        self.wait_for_own_listener(|ports| ports.contains(&port).then_some(port))
            .await
            .map(|_| ())
    }

    async fn wait_for_own_listener(
        &mut self,
        found: impl Fn(&[u16]) -> Option<u16>,
    ) -> anyhow::Result<u16> {
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(pid) = self.pid()
                && let Some(port) = found(&listening_ports(pid))
            {
                return Ok(port);
            }
            self.fail_if_exited("listening")?;
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} did not listen within {STARTUP_TIMEOUT:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// An error carrying the log when the process has exited (or was killed).
    fn fail_if_exited(&mut self, before: &str) -> anyhow::Result<()> {
        match self.exit_status() {
            Some(status) => bail!(
                "{} exited with {status} before {before}:\n{}",
                self.name,
                self.log()
            ),
            None if self.child.is_none() => bail!("{} was killed before {before}", self.name),
            None => Ok(()),
        }
    }

    /// How the process ended, once it has (and was not killed by us).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// The address the process announced for `role`, if it did (also
    /// after it was killed, e.g. to start another on the same port).
    pub fn announced(&self, role: &str) -> Option<SocketAddr> {
        self.announcements
            .lock()
            .expect("announcements lock")
            .iter()
            .find_map(|line| parse_announcement(line, role))
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Asks the process to stop (SIGTERM), as Kubernetes does on scale-in,
    /// and waits up to `grace` for it to exit before killing it; returns
    /// whether it exited on its own.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        if self.pid().is_none() {
            return true;
        }
        let _ = self.signal("TERM");
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if self.exit_status().is_some() {
                self.child = None;
                return true;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        self.kill();
        false
    }

    /// Sends `signal` (a name `kill` knows: `STOP`, `CONT`, `TERM`…) to
    /// the process without waiting for it, e.g. to freeze it and thaw it.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.name))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address in `imgmesh <service> <role> listening on <addr>`, when the
/// line announces `role`.
fn parse_announcement(line: &str, role: &str) -> Option<SocketAddr> {
    let mut words = line.split_whitespace();
    if words.next()? != "imgmesh" {
        return None;
    }
    let _service = words.next()?;
    if words.next()? != role {
        return None;
    }
    words.last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The announcement line is parsed for the asked role only.
    #[test]
    fn parses_announcements() {
        let line = "imgmesh gateway ops listening on 127.0.0.1:4242";
        assert_eq!(
            parse_announcement(line, "ops"),
            Some("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(parse_announcement(line, "http"), None);
        assert_eq!(parse_announcement("something else", "ops"), None);
    }

    /// A process that exits before listening is an error carrying its log,
    /// not a wait until the deadline.
    #[tokio::test]
    async fn an_exited_process_fails_fast_with_its_log() {
        let logs = tempfile::tempdir().unwrap();
        let mut process = ChildProcess::spawn(
            "early-exit",
            Command::new("sh").args(["-c", "echo cannot bind >&2; exit 3"]),
            logs.path(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let error = process.listening_port().await.unwrap_err().to_string();
        assert!(started.elapsed() < STARTUP_TIMEOUT);
        assert!(error.contains("cannot bind"), "{error}");
    }
}
