//! Child processes that die with the test: spawn, learn their ports from the
//! `listening on` line they print, read their logs, kill them on drop.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How long a service may take to announce its listeners.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

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
        let log = std::fs::File::create(&log_path)?;
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
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{} exited with {status} before listening:\n{}",
                    self.name,
                    self.log()
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} did not announce {role} in time:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
        let Some(pid) = self.pid() else {
            return true;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
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

fn parse_announcement(line: &str, role: &str) -> Option<SocketAddr> {
    // imgmesh <service> <role> listening on <addr>
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

/// A loopback port that was free a moment ago (for servers that cannot
/// announce a port they picked themselves).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls until something accepts connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("nothing listens on port {port} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
}
