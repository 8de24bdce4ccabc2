//! A real S3 server for tests: `s3s-fs`, which checks SigV4 signatures and
//! serves each bucket as a directory of plain files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::ChildProcess;
use crate::tools::find_tool;

/// The access key id [`S3Server::start`] accepts.
pub const S3_ACCESS_KEY: &str = "AKIAIMGMESHTESTKEY";
/// The secret key [`S3Server::start`] accepts.
pub const S3_SECRET_KEY: &str = "imgmesh-test-s3-secret-key";

/// A running `s3s-fs` over a temporary directory (each bucket a
/// subdirectory); killed, and its directory removed, on drop.
#[derive(Debug)]
pub struct S3Server {
    /// The endpoint URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    /// Declared before `dir`, so the process is gone before its directory.
    process: ChildProcess,
    /// Holds `data/` (the buckets) and `s3s-fs.log`.
    dir: tempfile::TempDir,
}

// === impl S3Server ===

impl S3Server {
    /// Starts `s3s-fs` accepting [`S3_ACCESS_KEY`] / [`S3_SECRET_KEY`] with
    /// the empty buckets `buckets` (see [`S3Server::start_with_keys`]).
    pub async fn start(buckets: &[&str]) -> S3Server {
        S3Server::start_with_keys(S3_ACCESS_KEY, S3_SECRET_KEY, buckets).await
    }

    /// Starts `s3s-fs` accepting only `access_key` / `secret_key` (a test's
    /// own, e.g. a canary it looks for in logs), with the empty buckets
    /// `buckets`, on a port it picks itself, and waits until it listens.
    /// Panics when `s3s-fs` is not installed or does not start.
    pub async fn start_with_keys(access_key: &str, secret_key: &str, buckets: &[&str]) -> S3Server {
        let dir = tempfile::Builder::new()
            .prefix("imgmesh-s3-")
            .tempdir()
            .expect("create the S3 server's directory");
        let data = dir.path().join("data");
        for bucket in buckets {
            std::fs::create_dir_all(data.join(bucket)).expect("create a bucket directory");
        }
        let binary = find_tool("s3s-fs").unwrap_or_else(|error| {
            panic!("{error} (or: cargo install s3s-fs --version 0.14.1 --features binary --locked)")
        });
        // Port 0: s3s-fs binds whatever port is free, and /proc tells which.
        let mut process = ChildProcess::spawn(
            "s3s-fs",
            Command::new(binary)
                .args(["--host", "127.0.0.1", "--port", "0"])
                .args(["--access-key", access_key, "--secret-key", secret_key])
                .arg(&data),
            dir.path(),
        )
        .expect("spawn s3s-fs");
        let port = process
            .listening_port()
            .await
            .unwrap_or_else(|error| panic!("s3s-fs did not start: {error:#}"));
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            process,
            dir,
        }
    }

    /// The directory holding every bucket (each a subdirectory).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory of `bucket`, whose files are its objects.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root().join(bucket)
    }

    /// Stores `bytes` as object `key` of `bucket`, straight on disk (the
    /// bucket is created if it does not exist).
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let path = self.bucket_dir(bucket).join(key);
        let stored = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, bytes));
        if let Err(error) = stored {
            panic!("writing {}: {error}", path.display());
        }
    }

    /// Object `key` of `bucket` as stored, if it exists.
    pub fn read_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.bucket_dir(bucket).join(key)).ok()
    }

    /// Everything `s3s-fs` has logged.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The server's process (to kill or freeze it).
    pub fn process(&mut self) -> &mut ChildProcess {
        &mut self.process
    }

    /// Where the server keeps its data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server listens on the port it picked, serves what was put on
    /// disk, and is gone — process and directory — once dropped.
    #[tokio::test]
    async fn starts_serves_and_cleans_up() {
        let server = S3Server::start(&["images"]).await;
        server.put_object("images", "a/b.txt", b"bytes");
        assert_eq!(server.read_object("images", "a/b.txt").unwrap(), b"bytes");
        let port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        );
        let dir = server.dir().to_path_buf();
        drop(server);
        assert!(!dir.exists());
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
        );
    }
}
