//! Harness for tests that cross imgmesh services.
//!
//! Everything here is real: [`Mesh::start`] runs `redis-server`, the `s3s-fs`
//! S3 server (which checks SigV4 signatures) and the four imgmesh service
//! binaries as separate processes on ephemeral loopback ports, each with its
//! own temporary directory. Dropping the [`Mesh`] stops them all.
//!
//! Every internal hop speaks mutual TLS, as in production: each mesh makes
//! a throwaway CA and a certificate per identity ([`MeshCerts`]), every
//! service presents its own, and the CLI and the tests' own gRPC clients
//! present the identity they act as ([`Mesh::cli`] is `cli`,
//! [`Mesh::grpc_channel`] takes one).
//!
//! The service binaries must be built first (`cargo build --workspace`, which
//! `make test` does); they are found next to the test executable.

pub mod admin;
pub mod fault_proxy;
pub mod fixtures;
pub mod hostile_originals;
pub mod http_client;
pub mod otlp_receiver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use imgmesh_runtime::mesh_tls::MeshTls;
use imgmesh_runtime::{GrpcChannel, Transport};

pub use crate::http_client::{HttpResponse, get, request_with_body};
pub use crate::otlp_receiver::OtlpReceiver;
pub use imgmesh_test_support::process;
pub use imgmesh_test_support::{ChildProcess, PostgresDatabase, find_tool, unused_port};
use imgmesh_test_support::{RedisCluster, RedisServer, S3Server};

/// The access key the test S3 server accepts.
pub const S3_ACCESS_KEY: &str = "IMGMESHTESTACCESSKEY";
/// The secret the test S3 server accepts; tests grep logs for it.
pub const S3_SECRET_KEY: &str = "imgmesh-test-secret-3f9a1c77d2b84e06";
/// The bucket every mesh starts with.
pub const BUCKET: &str = "images";
/// The gateway's base domain in tests.
pub const BASE_DOMAIN: &str = "localhost";
/// The bearer token of the gateway's admin API in tests; tests grep logs for it.
pub const ADMIN_TOKEN: &str = "imgmesh-test-admin-token-5d0c8e14b7a2";

/// Options for [`Mesh::start`].
#[derive(Debug, Clone, Default)]
pub struct MeshOptions {
    /// OTLP endpoint every service exports spans to.
    pub otlp_endpoint: Option<String>,
    /// Extra `IMGMESH_LOG` filter for every service (default `info`).
    pub log_filter: Option<String>,
    /// Extra flags for the fetcher.
    pub fetcher_args: Vec<String>,
    /// Extra flags for the renderer.
    pub renderer_args: Vec<String>,
    /// Run the derivative cache on a Redis Cluster (three masters, three
    /// replicas) instead of one server.
    pub redis_cluster: bool,
    /// Keep the registry's Sources in a fresh PostgreSQL database (on the
    /// server `make test` starts; `IMGMESH_TEST_POSTGRES_URL` overrides)
    /// instead of SQLite, so several registries can share them.
    pub postgres: bool,
}

/// A mesh's throwaway PKI: a CA and, for every imgmesh identity
/// (`gateway`, `renderer`, `fetcher`, `source-registry`, `cli`), a
/// certificate with its `spiffe://imgmesh/<identity>` URI and the SANs
/// `localhost` and `127.0.0.1`, written by `imgmesh_runtime::dev_certs`.
#[derive(Debug, Clone)]
pub struct MeshCerts {
    dir: PathBuf,
}

// === impl MeshCerts ===

impl MeshCerts {
    /// Writes a fresh CA and a certificate per identity into `dir`.
    pub fn write(dir: &Path) -> anyhow::Result<MeshCerts> {
        imgmesh_runtime::dev_certs::write_mesh(dir)?;
        Ok(MeshCerts {
            dir: dir.to_owned(),
        })
    }

    /// The CA certificate (`--tls-ca`).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `identity`'s certificate and key (`--tls-cert`, `--tls-key`).
    pub fn identity(&self, identity: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{identity}.pem")),
            self.dir.join(format!("{identity}-key.pem")),
        )
    }

    /// `--tls-cert`, `--tls-key` and `--tls-ca` for `identity`.
    pub fn tls_args(&self, identity: &str) -> Vec<String> {
        let (cert, key) = self.identity(identity);
        vec![
            format!("--tls-cert={}", cert.display()),
            format!("--tls-key={}", key.display()),
            format!("--tls-ca={}", self.ca().display()),
        ]
    }

    /// `IMGMESH_TLS_CERT`, `IMGMESH_TLS_KEY` and `IMGMESH_TLS_CA` for
    /// `identity`, for a service process's environment.
    pub fn tls_env(&self, identity: &str) -> Vec<(String, String)> {
        let (cert, key) = self.identity(identity);
        [
            ("IMGMESH_TLS_CERT", cert),
            ("IMGMESH_TLS_KEY", key),
            ("IMGMESH_TLS_CA", self.ca()),
        ]
        .into_iter()
        .map(|(var, path)| (var.to_owned(), path.display().to_string()))
        .collect()
    }

    /// A client transport presenting `identity`'s certificate and trusting
    /// the mesh CA.
    pub fn transport(&self, identity: &str) -> anyhow::Result<Transport> {
        let (cert, key) = self.identity(identity);
        Ok(Transport::Mtls(MeshTls::load(&cert, &key, &self.ca())?))
    }
}

/// A running mesh: Redis, S3 and the four services.
#[derive(Debug)]
pub struct Mesh {
    /// Temporary directory holding the registry database, the master key,
    /// the certificates (`certs/`) and the services' logs.
    pub dir: tempfile::TempDir,
    /// The mesh's CA and every identity's certificate.
    pub certs: MeshCerts,
    /// The Redis server.
    pub redis: RedisServer,
    /// The registry's `--database…` flag.
    registry_database: String,
    /// The Redis Cluster, with [`MeshOptions::redis_cluster`].
    pub redis_cluster: Option<RedisCluster>,
    /// The `--redis-url` every service gets: the server, or the cluster's
    /// seed list.
    pub redis_url: String,
    /// The S3 server.
    pub s3: S3Server,
    /// The S3 server's endpoint URL.
    pub s3_endpoint: String,
    /// The source-registry process.
    pub registry: ChildProcess,
    /// The fetcher process.
    pub fetcher: ChildProcess,
    /// The renderer process.
    pub renderer: ChildProcess,
    /// The gateway process.
    pub gateway: ChildProcess,
    /// The registry's gRPC URL.
    pub registry_url: String,
    /// The registry's credentials gRPC URL (its `--credentials-listen`),
    /// what fetchers get as `--registry-url`.
    pub registry_credentials_url: String,
    /// The fetcher's gRPC URL.
    pub fetcher_url: String,
    /// The renderer's gRPC URL.
    pub renderer_url: String,
    /// The gateway's public HTTP address.
    pub gateway_addr: SocketAddr,
    /// The gateway's ops (health) address.
    pub gateway_ops_addr: SocketAddr,
    /// The gateway's admin API address (bearer [`ADMIN_TOKEN`]).
    pub gateway_admin_addr: SocketAddr,
    /// The registry's `GET /metrics` address.
    pub registry_metrics_addr: SocketAddr,
    /// The fetcher's `GET /metrics` address.
    pub fetcher_metrics_addr: SocketAddr,
    /// The renderer's `GET /metrics` address.
    pub renderer_metrics_addr: SocketAddr,
    /// The registry's PostgreSQL database, with [`MeshOptions::postgres`]
    /// (last, so it is dropped after the processes using it).
    pub postgres: Option<PostgresDatabase>,
}

// === impl Mesh ===

impl Mesh {
    /// Starts Redis, S3 (with an empty bucket [`BUCKET`]) and the four
    /// services, and waits until the gateway reports ready.
    pub async fn start(options: MeshOptions) -> anyhow::Result<Mesh> {
        let dir = tempfile::Builder::new().prefix("imgmesh-it-").tempdir()?;
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs)?;
        let certs = MeshCerts::write(&dir.path().join("certs"))?;

        let redis = RedisServer::start().await;
        let redis_cluster = if options.redis_cluster {
            Some(RedisCluster::start().await)
        } else {
            None
        };
        let redis_url = redis_cluster
            .as_ref()
            .map_or_else(|| redis.url(), RedisCluster::url);

        let s3 = S3Server::start_with_keys(S3_ACCESS_KEY, S3_SECRET_KEY, &[BUCKET]).await;
        let s3_endpoint = s3.endpoint.clone();

        let env = service_env(&options);
        let master_key = dir.path().join("master.key");
        std::fs::write(&master_key, fixtures::TEST_MASTER_KEY_HEX)?;

        let postgres = if options.postgres {
            Some(PostgresDatabase::create("imgmesh_it")?)
        } else {
            None
        };
        let registry_database = postgres.as_ref().map_or_else(
            || format!("--database={}", dir.path().join("registry.db").display()),
            |db| format!("--database-url={}", db.url),
        );
        let mut registry = ChildProcess::spawn(
            "source-registry",
            service_command("imgmesh-source-registry", &env, &certs)?
                .arg("--listen=127.0.0.1:0")
                .arg(&registry_database)
                .arg(format!("--master-key-file={}", master_key.display())),
            &logs,
        )?;
        let registry_addr = registry.listening("grpc").await?;
        let registry_credentials_url =
            format!("http://{}", registry.listening("credentials").await?);
        let registry_metrics_addr = registry.listening("metrics").await?;
        let registry_url = format!("http://{registry_addr}");

        let mut fetcher = ChildProcess::spawn(
            "fetcher",
            service_command("imgmesh-fetcher", &env, &certs)?
                .arg("--listen=127.0.0.1:0")
                .arg(format!("--registry-url={registry_credentials_url}"))
                .args(&options.fetcher_args),
            &logs,
        )?;
        let fetcher_addr = fetcher.listening("grpc").await?;
        let fetcher_metrics_addr = fetcher.listening("metrics").await?;

        let mut renderer = ChildProcess::spawn(
            "renderer",
            service_command("imgmesh-renderer", &env, &certs)?
                .arg("--listen=127.0.0.1:0")
                .arg(format!("--fetcher-url=http://{fetcher_addr}"))
                .arg(format!("--redis-url={redis_url}"))
                // Debug builds on two loaded cores: the 50 ms production
                // default would count a healthy Redis as down.
                .arg("--redis-timeout-ms=250")
                .args(&options.renderer_args),
            &logs,
        )?;
        let renderer_addr = renderer.listening("grpc").await?;
        let renderer_metrics_addr = renderer.listening("metrics").await?;

        let mut gateway = ChildProcess::spawn(
            "gateway",
            service_command("imgmesh-gateway", &env, &certs)?
                .arg("--listen=127.0.0.1:0")
                .arg("--ops-listen=127.0.0.1:0")
                .arg(format!("--registry-url={registry_url}"))
                .arg(format!("--renderer-url=http://{renderer_addr}"))
                .arg(format!("--base-domain={BASE_DOMAIN}"))
                .arg("--source-cache-ttl-ms=200")
                .arg(format!("--redis-url={redis_url}"))
                .arg("--redis-timeout-ms=250")
                .arg("--admin-listen=127.0.0.1:0")
                .env("IMGMESH_ADMIN_TOKEN", ADMIN_TOKEN),
            &logs,
        )?;
        let gateway_addr = gateway.listening("http").await?;
        let gateway_ops_addr = gateway.listening("ops").await?;
        let gateway_admin_addr = gateway.listening("admin").await?;

        let mesh = Mesh {
            dir,
            certs,
            redis,
            redis_cluster,
            redis_url,
            postgres,
            registry_database,
            s3,
            s3_endpoint,
            registry,
            fetcher,
            renderer,
            gateway,
            registry_url,
            registry_credentials_url,
            fetcher_url: format!("http://{fetcher_addr}"),
            renderer_url: format!("http://{renderer_addr}"),
            gateway_addr,
            gateway_ops_addr,
            gateway_admin_addr,
            registry_metrics_addr,
            fetcher_metrics_addr,
            renderer_metrics_addr,
        };
        mesh.wait_ready(Duration::from_secs(30)).await?;
        Ok(mesh)
    }

    /// Where `service` (`source-registry`, `fetcher`, `renderer` or
    /// `gateway`) serves `GET /metrics`: the gateway on its ops listener, the
    /// others on their `--metrics-listen` one.
    pub fn metrics_addr(&self, service: &str) -> SocketAddr {
        match service {
            "source-registry" => self.registry_metrics_addr,
            "fetcher" => self.fetcher_metrics_addr,
            "renderer" => self.renderer_metrics_addr,
            "gateway" => self.gateway_ops_addr,
            other => panic!("no service {other:?} in the mesh"),
        }
    }

    /// The URL of `service`'s `GET /metrics` (see [`Mesh::metrics_addr`]).
    pub fn metrics_url(&self, service: &str) -> String {
        format!("http://{}/metrics", self.metrics_addr(service))
    }

    /// Polls the gateway's `/ready` until it answers 200 or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(response) = get(self.gateway_ops_addr, "localhost", "/ready", &[]).await
                && response.status == 200
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "gateway not ready after {timeout:?}; logs:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Path of the S3 server's directory for [`BUCKET`].
    pub fn bucket_dir(&self) -> PathBuf {
        self.s3.bucket_dir(BUCKET)
    }

    /// Stores `bytes` as object `key` in [`BUCKET`].
    pub fn put_object(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.bucket_dir().join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// Runs the `imgmesh` admin CLI against this mesh's registry with `--json`
    /// and returns its parsed JSON output; a non-zero exit is an error
    /// carrying stderr.
    pub async fn cli_json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let output = self.cli(args).await?;
        if !output.status.success() {
            bail!(
                "imgmesh {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "imgmesh {args:?} printed no JSON: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs the `imgmesh` admin CLI with `--json`, as the operator's `cli`
    /// identity, and returns its raw output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let mut command = tokio::process::Command::new(binary_path("imgmesh")?);
        command
            .arg(format!("--registry-url={}", self.registry_url))
            .args(self.certs.tls_args("cli"))
            .arg("--json")
            .args(args)
            .env_remove("IMGMESH_SECRET_ACCESS_KEY")
            .env_remove("IMGMESH_UPLOAD_SECRET_ACCESS_KEY");
        Ok(command.output().await?)
    }

    /// A gRPC channel to `url` (one of the mesh's gRPC URLs, or a list)
    /// over mutual TLS, presenting `identity`'s certificate: what a peer of
    /// that identity may call, the policy decides.
    pub fn grpc_channel(&self, url: &str, identity: &str) -> anyhow::Result<GrpcChannel> {
        imgmesh_runtime::grpc_channel_over(url, &self.certs.transport(identity)?)
    }

    /// Creates a Source named `name` (subdomain = name) on [`BUCKET`] with the
    /// given secret and deploys it (`imgmesh sources deploy --wait`), so it
    /// serves; returns the CLI's JSON for the deployed Source. A failed
    /// deploy is an error carrying the registry's reason.
    pub async fn create_source(
        &self,
        name: &str,
        secret: &str,
        extra: &[&str],
    ) -> anyhow::Result<serde_json::Value> {
        self.create_source_undeployed(name, secret, extra).await?;
        self.deploy_source(name).await
    }

    /// Creates a Source like [`Mesh::create_source`] without deploying it:
    /// it stays pending and does not serve.
    pub async fn create_source_undeployed(
        &self,
        name: &str,
        secret: &str,
        extra: &[&str],
    ) -> anyhow::Result<serde_json::Value> {
        let mut args = vec![
            "sources".to_owned(),
            "create".to_owned(),
            format!("--name={name}"),
            format!("--subdomain={name}"),
            format!("--bucket={BUCKET}"),
            "--region=us-east-1".to_owned(),
            format!("--endpoint={}", self.s3_endpoint),
            format!("--access-key-id={S3_ACCESS_KEY}"),
            format!("--secret-access-key={secret}"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cli_json(&args).await
    }

    /// Deploys Source `name` and waits for the result; the deployed
    /// Source's JSON, or an error carrying why the deploy failed.
    pub async fn deploy_source(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        self.cli_json(&["sources", "deploy", name, "--wait", "--wait-timeout=60"])
            .await
    }

    /// Sends `GET path_and_query` to the gateway for `<subdomain>.localhost`.
    pub async fn get(&self, subdomain: &str, path_and_query: &str) -> anyhow::Result<HttpResponse> {
        self.get_with(subdomain, path_and_query, &[]).await
    }

    /// Like [`Mesh::get`] with extra request headers.
    pub async fn get_with(
        &self,
        subdomain: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<HttpResponse> {
        let host = format!("{subdomain}.{BASE_DOMAIN}");
        get(self.gateway_addr, &host, path_and_query, headers).await
    }

    /// Sends `method path` to the gateway's admin API with [`ADMIN_TOKEN`]
    /// and, when given, a JSON body.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<HttpResponse> {
        let authorization = format!("Bearer {ADMIN_TOKEN}");
        let mut headers = vec![("authorization", authorization.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body
            .map(|json| json.to_string().into_bytes())
            .unwrap_or_default();
        request_with_body(
            method,
            self.gateway_admin_addr,
            "localhost",
            path,
            &headers,
            body,
        )
        .await
    }

    /// Number of keys in this mesh's Redis, leaving out the Sources'
    /// epochs (`imgmesh:{<source>}:epoch`, one per Source a gateway looked
    /// up: bookkeeping, not cached data).
    pub async fn redis_dbsize(&self) -> anyhow::Result<u64> {
        let output = tokio::process::Command::new(find_tool("redis-cli")?)
            .arg("-p")
            .arg(self.redis.port().to_string())
            .arg("DBSIZE")
            .output()
            .await?;
        let text = String::from_utf8_lossy(&output.stdout);
        let keys: u64 = text
            .trim()
            .parse()
            .with_context(|| format!("unexpected DBSIZE answer {text:?}"))?;
        let epochs = self
            .redis_cli(&["--scan", "--pattern", "imgmesh:{*}:epoch"])
            .await?
            .lines()
            .filter(|line| !line.is_empty())
            .count();
        Ok(keys.saturating_sub(u64::try_from(epochs)?))
    }

    /// Stores `bytes` as object `key` in [`BUCKET`] through the S3 API, with
    /// the `Cache-Control` header S3 will answer with.
    pub async fn put_object_with_cache_control(
        &self,
        key: &str,
        bytes: &[u8],
        cache_control: &str,
    ) -> anyhow::Result<()> {
        let client = imgmesh_s3_client::BucketClient::new(&imgmesh_s3_client::BucketAccess {
            location: imgmesh_s3_client::BucketLocation {
                bucket: BUCKET.to_owned(),
                region: "us-east-1".to_owned(),
                endpoint: Some(self.s3_endpoint.clone()),
                path_prefix: String::new(),
            },
            key: imgmesh_s3_client::AccessKey::new(S3_ACCESS_KEY, S3_SECRET_KEY),
        });
        client
            .primary()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(bytes.to_vec().into())
            .cache_control(cache_control)
            .send()
            .await
            .with_context(|| format!("PutObject {key}"))?;
        Ok(())
    }

    /// Runs `redis-cli` against the mesh's Redis and returns its output.
    pub async fn redis_cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = tokio::process::Command::new(find_tool("redis-cli")?)
            .arg("-p")
            .arg(self.redis.port().to_string())
            .args(args)
            .output()
            .await?;
        anyhow::ensure!(output.status.success(), "redis-cli {args:?} failed");
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts one more renderer sharing the mesh's fetcher and Redis, as a
    /// second replica; returns it with its gRPC URL and metrics address.
    pub async fn spawn_renderer(&self) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        self.spawn_renderer_with("127.0.0.1:0", &self.fetcher_url)
            .await
    }

    /// Starts one more renderer on `listen` (e.g. a port a killed one
    /// used) with `--fetcher-url=<fetcher_url>` (one URL or a list) and
    /// the mesh's Redis; returns it with its gRPC URL and metrics address.
    pub async fn spawn_renderer_with(
        &self,
        listen: &str,
        fetcher_url: &str,
    ) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        let logs = self.dir.path().join("logs");
        let mut renderer = ChildProcess::spawn(
            "renderer-2",
            service_command(
                "imgmesh-renderer",
                &service_env(&MeshOptions::default()),
                &self.certs,
            )?
            .arg(format!("--listen={listen}"))
            .arg(format!("--fetcher-url={fetcher_url}"))
            .arg(format!("--redis-url={}", self.redis_url))
            .arg("--redis-timeout-ms=250"),
            &logs,
        )?;
        let addr = renderer.listening("grpc").await?;
        let metrics = renderer.listening("metrics").await?;
        Ok((renderer, format!("http://{addr}"), metrics))
    }

    /// Starts one more fetcher on the mesh's registry, as a second
    /// replica; returns it with its gRPC URL and metrics address.
    pub async fn spawn_fetcher(&self) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        self.spawn_fetcher_with(&self.registry_credentials_url)
            .await
    }

    /// Starts one more fetcher with `--registry-url=<registry_url>` (one
    /// registry credentials URL or a list); returns it with its gRPC URL and metrics address.
    pub async fn spawn_fetcher_with(
        &self,
        registry_url: &str,
    ) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        self.spawn_fetcher_on("127.0.0.1:0", registry_url).await
    }

    /// Starts one more fetcher on `listen` (e.g. the address of one that
    /// was killed, so its callers find it again) with
    /// `--registry-url=<registry_url>`; returns it with its gRPC URL and
    /// metrics address.
    pub async fn spawn_fetcher_on(
        &self,
        listen: &str,
        registry_url: &str,
    ) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        let logs = self.dir.path().join("logs");
        let mut fetcher = ChildProcess::spawn(
            "fetcher-2",
            service_command(
                "imgmesh-fetcher",
                &service_env(&MeshOptions::default()),
                &self.certs,
            )?
            .arg(format!("--listen={listen}"))
            .arg(format!("--registry-url={registry_url}")),
            &logs,
        )?;
        let addr = fetcher.listening("grpc").await?;
        let metrics = fetcher.listening("metrics").await?;
        Ok((fetcher, format!("http://{addr}"), metrics))
    }

    /// Starts one more registry on the mesh's database and master key (a
    /// second replica when the mesh runs on PostgreSQL); returns it with
    /// its gRPC URL and metrics address.
    pub async fn spawn_registry(&self) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        self.spawn_registry_on("127.0.0.1:0", &[]).await
    }

    /// Starts one more registry on `listen` (e.g. the address of one that
    /// was killed, so its callers find it again) with `extra` flags, on the
    /// mesh's database and master key; returns it with its gRPC URL and
    /// metrics address.
    pub async fn spawn_registry_on(
        &self,
        listen: &str,
        extra: &[String],
    ) -> anyhow::Result<(ChildProcess, String, SocketAddr)> {
        let mut registry = ChildProcess::spawn(
            "source-registry-2",
            service_command(
                "imgmesh-source-registry",
                &service_env(&MeshOptions::default()),
                &self.certs,
            )?
            .arg(format!("--listen={listen}"))
            .arg(&self.registry_database)
            .arg(format!(
                "--master-key-file={}",
                self.dir.path().join("master.key").display()
            ))
            .args(extra),
            &self.dir.path().join("logs"),
        )?;
        let addr = registry.listening("grpc").await?;
        let metrics = registry.listening("metrics").await?;
        Ok((registry, format!("http://{addr}"), metrics))
    }

    /// Starts one more gateway on the mesh's registry with
    /// `--renderer-url=<renderer_url>` (one URL or a comma-separated list),
    /// no Redis (so every image request reaches a renderer) and `extra`
    /// flags; returns it with its public HTTP and admin addresses.
    pub async fn spawn_gateway(
        &self,
        renderer_url: &str,
        extra: &[&str],
    ) -> anyhow::Result<(ChildProcess, SocketAddr, SocketAddr)> {
        self.spawn_gateway_with(&self.registry_url, renderer_url, extra)
            .await
    }

    /// [`Mesh::spawn_gateway`] with `--registry-url=<registry_url>` (one
    /// URL or a list).
    pub async fn spawn_gateway_with(
        &self,
        registry_url: &str,
        renderer_url: &str,
        extra: &[&str],
    ) -> anyhow::Result<(ChildProcess, SocketAddr, SocketAddr)> {
        let mut command = std::process::Command::new(binary_path("imgmesh-gateway")?);
        command
            .env_clear()
            .env("IMGMESH_LOG", "info")
            .env("IMGMESH_ADMIN_TOKEN", ADMIN_TOKEN)
            .envs(self.certs.tls_env("gateway"))
            .arg("--listen=127.0.0.1:0")
            .arg("--ops-listen=127.0.0.1:0")
            .arg("--admin-listen=127.0.0.1:0")
            .arg(format!("--registry-url={registry_url}"))
            .arg(format!("--renderer-url={renderer_url}"))
            .arg(format!("--base-domain={BASE_DOMAIN}"))
            .args(extra);
        let mut gateway =
            ChildProcess::spawn("gateway-2", &mut command, &self.dir.path().join("logs"))?;
        let http = gateway.listening("http").await?;
        let admin = gateway.listening("admin").await?;
        Ok((gateway, http, admin))
    }

    /// The sum of every sample of metric `name` (e.g.
    /// `imgmesh_renders_total`) whose labels contain `labels` (e.g.
    /// `result="ok"`, or empty for all), scraped from `GET /metrics` at
    /// `addr`.
    pub async fn metric_at(addr: SocketAddr, name: &str, labels: &str) -> anyhow::Result<f64> {
        let response = get(addr, "localhost", "/metrics", &[]).await?;
        anyhow::ensure!(response.status == 200, "GET /metrics: {}", response.status);
        let text = response.text();
        let mut sum = 0.0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            let (series, value) = match rest.rsplit_once(' ') {
                Some(split) => split,
                None => continue,
            };
            if !(series.is_empty() || series.starts_with('{')) || !series.contains(labels) {
                continue;
            }
            sum += value.parse::<f64>().unwrap_or(0.0);
        }
        Ok(sum)
    }

    /// [`Mesh::metric_at`] for one of the mesh's services.
    pub async fn metric(&self, service: &str, name: &str, labels: &str) -> anyhow::Result<f64> {
        Mesh::metric_at(self.metrics_addr(service), name, labels).await
    }

    /// Every service's log, concatenated (for failure messages and secret
    /// leak checks).
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        for process in [&self.registry, &self.fetcher, &self.renderer, &self.gateway] {
            out.push_str(&process.log());
        }
        out
    }

    /// The last lines of every service's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let logs = self.all_logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

fn service_env(options: &MeshOptions) -> Vec<(String, String)> {
    let mut env = vec![(
        "IMGMESH_LOG".to_owned(),
        options
            .log_filter
            .clone()
            .unwrap_or_else(|| "info".to_owned()),
    )];
    // The binaries' metrics and credentials ports are fixed (9091…, 50054):
    // many meshes run side by side, so each process picks free ones.
    for var in [
        "IMGMESH_METRICS_LISTEN",
        "IMGMESH_REGISTRY_CREDENTIALS_LISTEN",
    ] {
        env.push((var.to_owned(), "127.0.0.1:0".to_owned()));
    }
    if let Some(endpoint) = &options.otlp_endpoint {
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()));
        // Export quickly so tests need not wait for the default 5 s batch.
        env.push(("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()));
    }
    env
}

/// `imgmesh-<service>` in a clean environment with `env` and its own
/// identity's certificate from `certs` (`IMGMESH_TLS_*`).
fn service_command(
    binary: &str,
    env: &[(String, String)],
    certs: &MeshCerts,
) -> anyhow::Result<std::process::Command> {
    let mut command = std::process::Command::new(binary_path(binary)?);
    // A clean environment: nothing from the developer's shell leaks in.
    command.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let identity = binary.strip_prefix("imgmesh-").unwrap_or(binary);
    command.envs(certs.tls_env(identity));
    Ok(command)
}

/// Path of a workspace binary built next to the running test executable.
pub fn binary_path(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target directory")?;
    let path = profile_dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the workspace binaries first (`cargo build --workspace`)",
            path.display()
        );
    }
    Ok(path)
}
