//! Real Redis for tests: one `redis-server` without persistence, or a Redis
//! Cluster of six, made with `redis-cli --cluster create` as an operator
//! makes one. Killed, with their directories removed, on drop.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::ports::unused_port;
use crate::process::ChildProcess;
use crate::readiness::wait_until;
use crate::tools::find_tool;

/// How many ports a server is tried on before giving up: a chosen port can
/// be taken (by another test's server) between choosing and binding.
const PORT_ATTEMPTS: usize = 5;

/// How long a fresh `redis-server` may take to answer PING.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// How long the cluster may take to agree on its slots after creation.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

/// A running `redis-server` on a loopback port, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    /// Declared first, so the process is gone before its directory.
    process: ChildProcess,
    port: u16,
    /// Holds the log and whatever Redis writes (a cluster node's config).
    dir: tempfile::TempDir,
}

// === impl RedisServer ===

impl RedisServer {
    /// Starts Redis on a free port and waits until it answers PING.
    ///
    /// `redis-server` cannot bind port 0 and say which port it got, so a
    /// port nobody listens on is chosen, and the server counts as started
    /// only once `/proc` shows the listener on it is the server's own; if
    /// it is not (the port was taken meanwhile), another port is tried.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// Starts Redis on `port` (e.g. one a cache was pointed at before its
    /// server existed) and waits until it answers PING; panics when the
    /// port is taken.
    pub async fn start_on(port: u16) -> RedisServer {
        RedisServer::try_start(port, &[])
            .await
            .unwrap_or_else(|error| panic!("redis-server did not start: {error:#}"))
    }

    /// [`RedisServer::start`] with `extra` arguments for `redis-server`.
    pub async fn start_with(extra: &[&str]) -> RedisServer {
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            match RedisServer::try_start(unused_port(), extra).await {
                Ok(server) => return server,
                Err(error) => failures.push(format!("{error:#}")),
            }
        }
        panic!(
            "redis-server did not start on {PORT_ATTEMPTS} ports:\n{}",
            failures.join("\n")
        );
    }

    async fn try_start(port: u16, extra: &[&str]) -> anyhow::Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("imgmesh-redis-")
            .tempdir()?;
        let mut process = ChildProcess::spawn(
            "redis",
            Command::new(find_tool("redis-server")?)
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(extra),
            dir.path(),
        )?;
        process.listening_on(port).await?;
        let server = RedisServer { process, port, dir };
        wait_until("redis-server answering PING", STARTUP_DEADLINE, || {
            let server = &server;
            async move { server.command(&["PING"]).await.as_deref() == Some("+PONG") }
        })
        .await?;
        Ok(server)
    }

    /// The port this server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `redis://` URL of this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether the server process is still ours and running (not killed).
    pub fn is_running(&self) -> bool {
        self.process.pid().is_some()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Sends `signal` (`STOP`, `CONT`…) to the server, e.g. to freeze it so
    /// connections hang rather than fail.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        self.process.signal(signal)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Everything the server has logged.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The TTL Redis reports for `key` (-2 when absent, -1 when persistent).
    pub async fn ttl(&self, key: &str) -> i64 {
        let reply = self
            .command(&["TTL", key])
            .await
            .expect("redis answers TTL");
        reply
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected TTL reply {reply:?}"))
    }

    /// Sends one command and returns the first reply line (e.g. `+PONG`,
    /// `:42`), or `None` when Redis is not reachable.
    pub async fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            if stream.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            reply.push(byte[0]);
        }
        reply.truncate(reply.len() - 2);
        String::from_utf8(reply).ok()
    }

    /// `redis-cli -p <port> args…` without following redirects: its output
    /// lines, or `None` when the server does not answer.
    pub async fn cli(&self, args: &[&str]) -> Option<Vec<String>> {
        let output = tokio::process::Command::new(find_tool("redis-cli").ok()?)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .await
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8(output.stdout).ok()?;
        if text.starts_with("Could not connect") {
            return None;
        }
        Some(text.lines().map(str::to_owned).collect())
    }

    /// Where this server keeps its log and files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// A Redis Cluster of three masters, each with one replica, on free
/// loopback ports. Nodes declare a failed master after one second.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

// === impl RedisCluster ===

impl RedisCluster {
    /// Starts six nodes, joins them into a cluster, and waits until every
    /// node reports `cluster_state:ok` and every replica has synced.
    pub async fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            // Each node's config file lands in its own directory (`--dir`).
            nodes.push(
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ])
                .await,
            );
        }
        let cluster = RedisCluster { nodes };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new(find_tool("redis-cli").expect("redis-cli is installed"))
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        // A replica that never synced is too stale to take over, so wait
        // for every replica's link too.
        wait_until("the cluster becoming ok", CLUSTER_DEADLINE, || {
            let cluster = &cluster;
            async move { cluster.is_ok().await && cluster.synced_replicas().await >= 3 }
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        cluster
    }

    /// The seed-node list for `--redis-url`: every node, comma-separated.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }

    /// The ports of the running nodes that are masters now.
    pub async fn masters(&self) -> Vec<u16> {
        let mut masters = Vec::new();
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            if let Some(role) = node.cli(&["ROLE"]).await
                && role.first().map(String::as_str) == Some("master")
            {
                masters.push(node.port);
            }
        }
        masters
    }

    /// How many replicas are connected to their master.
    async fn synced_replicas(&self) -> usize {
        let mut synced = 0;
        for node in &self.nodes {
            if let Some(role) = node.cli(&["ROLE"]).await
                && role.first().map(String::as_str) == Some("slave")
                && role.iter().any(|line| line == "connected")
            {
                synced += 1;
            }
        }
        synced
    }

    /// How many keys matching `pattern` the node on `port` holds.
    pub async fn keys_on(&self, port: u16, pattern: &str) -> usize {
        let Some(node) = self.nodes.iter().find(|node| node.port == port) else {
            return 0;
        };
        node.cli(&["KEYS", pattern])
            .await
            .map_or(0, |keys| keys.len())
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|node| node.port == port) {
            node.kill();
        }
    }

    /// Whether every running node reports `cluster_state:ok`.
    pub async fn is_ok(&self) -> bool {
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            let Some(info) = node.cli(&["CLUSTER", "INFO"]).await else {
                return false;
            };
            if !info.iter().any(|line| line.trim() == "cluster_state:ok") {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server answers on its own port, two servers never share one, and
    /// a killed server stops answering.
    #[tokio::test]
    async fn servers_get_ports_of_their_own() {
        let mut first = RedisServer::start().await;
        let second = RedisServer::start().await;
        assert_ne!(first.port(), second.port());
        assert_eq!(first.command(&["PING"]).await.as_deref(), Some("+PONG"));
        first.kill();
        assert!(!first.is_running());
        assert_eq!(first.command(&["PING"]).await, None);
        assert_eq!(second.command(&["PING"]).await.as_deref(), Some("+PONG"));
    }

    /// Starting on a port another server holds fails instead of talking
    /// to the other server.
    #[tokio::test]
    async fn a_taken_port_is_refused() {
        let holder = RedisServer::start().await;
        let error = RedisServer::try_start(holder.port(), &[])
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("exited"), "{error:#}");
    }
}
