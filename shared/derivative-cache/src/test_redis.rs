//! A real `redis-server` on a free loopback port, or a real Redis Cluster
//! of six of them, for tests; killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long a fresh `redis-server` may take to accept connections.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// A running `redis-server` without persistence.
#[derive(Debug)]
pub struct RedisProcess {
    child: Option<Child>,
    port: u16,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

// === impl RedisProcess ===

impl RedisProcess {
    /// Starts Redis on a free port and waits until it answers PING.
    pub async fn start() -> RedisProcess {
        RedisProcess::start_on(free_port()).await
    }

    /// Starts Redis on `port` and waits until it answers PING.
    pub async fn start_on(port: u16) -> RedisProcess {
        RedisProcess::start_with(port, &[]).await
    }

    /// Starts Redis on `port` with `extra` arguments and waits until it
    /// answers PING.
    pub async fn start_with(port: u16, extra: &[&str]) -> RedisProcess {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(extra)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let redis = RedisProcess {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while redis.command(&["PING"]).await.as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        redis
    }

    /// The port this server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is still ours and running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The `redis://` URL of this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one inline command and returns the first reply line, or `None`
    /// when Redis is not reachable.
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
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters, each with one replica, on free
/// loopback ports: made with `redis-cli --cluster create`, as an operator
/// makes one. Nodes declare a failed master after one second.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisProcess>,
    dir: PathBuf,
}

/// How long the cluster may take to agree on its slots after creation.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

// === impl RedisCluster ===

impl RedisCluster {
    /// Starts six nodes, joins them into a cluster, and waits until every
    /// node reports `cluster_state:ok`.
    pub async fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "imgmesh-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let config = dir.join(format!("nodes-{port}.conf"));
            let dir_arg = dir.to_string_lossy().into_owned();
            let config_arg = config.to_string_lossy().into_owned();
            nodes.push(
                RedisProcess::start_with(
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &config_arg,
                        "--cluster-node-timeout",
                        "1000",
                        "--dir",
                        &dir_arg,
                    ],
                )
                .await,
            );
        }
        let cluster = RedisCluster { nodes, dir };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + CLUSTER_DEADLINE;
        // A replica that never synced is too stale to take over, so wait
        // for every replica's link too.
        while !cluster.is_ok().await || cluster.synced_replicas().await < 3 {
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    /// The seed-node list for `--redis-url`: every node, comma-separated.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisProcess::url).collect();
        urls.join(",")
    }

    /// The ports of the running nodes that are masters now.
    pub async fn masters(&self) -> Vec<u16> {
        let mut masters = Vec::new();
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            if let Some(info) = node_query(node.port, &["ROLE"]).await
                && info.first().map(String::as_str) == Some("master")
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
            if let Some(role) = node_query(node.port, &["ROLE"]).await
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
        node_query(port, &["KEYS", pattern])
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
            let Some(info) = node_query(node.port, &["CLUSTER", "INFO"]).await else {
                return false;
            };
            if !info.iter().any(|line| line.trim() == "cluster_state:ok") {
                return false;
            }
        }
        true
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli -p port args…` without following redirects: its output
/// lines, or `None` when the node does not answer.
async fn node_query(port: u16, args: &[&str]) -> Option<Vec<String>> {
    let output = tokio::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
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
