//! A real `redis-server` on a free loopback port, for tests; killed on drop.

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
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
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
