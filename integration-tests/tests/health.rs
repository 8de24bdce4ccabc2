//! Health that tells the truth, on the real processes: each service's
//! `grpc.health.v1` status (the gateway's `/ready`) follows what it needs
//! to serve, with the reason in its log and in
//! `imgmesh_health_status{dependency}`, and the binaries' `health`
//! subcommand exits 0 or 1 with it.
//!
//! - the registry's PostgreSQL database stops accepting connections: the
//!   registry reports NOT_SERVING (reason `database`), the fetcher too
//!   (reason `registry`); both SERVING again once the database accepts;
//! - Redis frozen (SIGSTOP): the renderer stays SERVING, degraded (reason
//!   `redis`), and says so again once Redis is thawed;
//! - the fetcher killed: the renderer reports NOT_SERVING (reason
//!   `fetcher`) and the gateway's `/ready` is 503 naming the renderer;
//!   a fetcher started again on the same address brings both back.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use imgmesh_integration_tests::{Mesh, MeshOptions, binary_path, get};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a change may take to show: two rounds of the default checks
/// (every 2 s, 1 s each) and the peers' own, on a loaded machine.
const WITHIN: Duration = Duration::from_secs(20);

/// What `url`'s `grpc.health.v1` reports for the whole server, asked over
/// mutual TLS as the gateway; `None` when it does not answer.
async fn status_of(mesh: &Mesh, url: &str) -> Option<ServingStatus> {
    let ask = async {
        let channel = mesh.grpc_channel(url, "gateway").ok()?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        Some(response.into_inner().status())
    };
    tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .ok()
        .flatten()
}

/// Polls until `url` reports `wanted`, failing with `context` after
/// [`WITHIN`].
async fn wait_for_status(mesh: &Mesh, url: &str, wanted: ServingStatus, context: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let seen = status_of(mesh, url).await;
        if seen == Some(wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{context}: {url} reports {seen:?}, not {wanted:?}, after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `imgmesh_health_status{dependency="<dependency>"}` at
/// `metrics` is `wanted` (1 answering, 0 not).
async fn wait_for_gauge(metrics: SocketAddr, dependency: &str, wanted: f64) {
    let labels = format!("dependency=\"{dependency}\"");
    let deadline = Instant::now() + WITHIN;
    loop {
        let seen = Mesh::metric_at(metrics, "imgmesh_health_status", &labels).await;
        if seen.as_ref().ok() == Some(&wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "imgmesh_health_status{{{labels}}} is {seen:?}, not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until the gateway's `/ready` answers `status`; returns its body.
async fn wait_for_ready(mesh: &Mesh, status: u16) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        let response = get(mesh.gateway_ops_addr, "localhost", "/ready", &[]).await;
        if let Ok(response) = &response
            && response.status == status
        {
            return response.text();
        }
        assert!(
            Instant::now() < deadline,
            "/ready never answered {status}: {:?}",
            response.map(|r| (r.status, r.text()))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `log()` contains `needle`.
async fn wait_for_log(log: impl Fn() -> String, needle: &str) {
    let deadline = Instant::now() + WITHIN;
    while !log().contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `<binary> <listen flag>=<addr> health`, in a clean environment: whether
/// it exited 0, and what it printed. A gRPC service's `health` asks its
/// metrics listener's plaintext `/ready` (`--metrics-listen`), so it needs
/// no certificate; the gateway's asks its ops listener.
fn health_command(binary: &str, listen_flag: &str, addr: &str) -> (bool, String) {
    let output = Command::new(binary_path(binary).unwrap())
        .env_clear()
        .arg(format!("{listen_flag}={addr}"))
        .arg("health")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
}

/// `host:port` of an `http://host:port` URL.
fn authority(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// The registry reports NOT_SERVING while its PostgreSQL database refuses
/// connections, and so does the fetcher, which needs the registry; each
/// logs the reason, the gauges and `health` subcommands say the same, and
/// both report SERVING again once the database accepts connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_and_fetcher_follow_the_database() {
    let mesh = Mesh::start(MeshOptions {
        postgres: true,
        ..MeshOptions::default()
    })
    .await
    .unwrap();
    let database = mesh.postgres.as_ref().expect("a PostgreSQL mesh");
    let registry = mesh.metrics_addr("source-registry").to_string();
    let fetcher = mesh.metrics_addr("fetcher").to_string();
    wait_for_gauge(mesh.metrics_addr("source-registry"), "database", 1.0).await;
    wait_for_gauge(mesh.metrics_addr("fetcher"), "registry", 1.0).await;
    let (serving, said) = health_command("imgmesh-source-registry", "--metrics-listen", &registry);
    assert!(serving, "{said}");
    assert!(said.contains("SERVING"), "{said}");

    // The database goes away under the registry: no new connection, and
    // the ones its pool holds are ended.
    database
        .admin_sql(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            database.name
        ))
        .unwrap();
    database
        .admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            database.name
        ))
        .unwrap();
    wait_for_status(
        &mesh,
        &mesh.registry_url,
        ServingStatus::NotServing,
        "database refusing",
    )
    .await;
    wait_for_status(
        &mesh,
        &mesh.registry_credentials_url,
        ServingStatus::NotServing,
        "database refusing, credentials port",
    )
    .await;
    wait_for_status(
        &mesh,
        &mesh.fetcher_url,
        ServingStatus::NotServing,
        "registry not serving",
    )
    .await;
    wait_for_gauge(mesh.metrics_addr("source-registry"), "database", 0.0).await;
    wait_for_gauge(mesh.metrics_addr("fetcher"), "registry", 0.0).await;
    wait_for_log(|| mesh.registry.log(), "dependency database failing").await;
    wait_for_log(|| mesh.fetcher.log(), "dependency registry failing").await;
    let (serving, said) = health_command("imgmesh-source-registry", "--metrics-listen", &registry);
    assert!(
        !serving,
        "the registry's health passed without its database"
    );
    assert!(said.contains("NOT_SERVING"), "{said}");
    let (serving, said) = health_command("imgmesh-fetcher", "--metrics-listen", &fetcher);
    assert!(!serving, "the fetcher's health passed without a registry");
    assert!(said.contains("NOT_SERVING"), "{said}");

    database
        .admin_sql(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            database.name
        ))
        .unwrap();
    wait_for_status(
        &mesh,
        &mesh.registry_url,
        ServingStatus::Serving,
        "database back",
    )
    .await;
    wait_for_status(
        &mesh,
        &mesh.fetcher_url,
        ServingStatus::Serving,
        "registry back",
    )
    .await;
    wait_for_gauge(mesh.metrics_addr("source-registry"), "database", 1.0).await;
    wait_for_log(|| mesh.registry.log(), "dependency database answers again").await;
    let (serving, said) = health_command("imgmesh-fetcher", "--metrics-listen", &fetcher);
    assert!(serving, "{said}");
}

/// With Redis frozen (SIGSTOP) the renderer stays SERVING but says it is
/// degraded: its log names Redis and `imgmesh_health_status{dependency=
/// "redis"}` drops to 0; once Redis is thawed the gauge is 1 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renderer_serves_degraded_while_redis_is_frozen() {
    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    let renderer_metrics = mesh.metrics_addr("renderer");
    wait_for_gauge(renderer_metrics, "redis", 1.0).await;

    mesh.redis.signal("STOP").unwrap();
    wait_for_gauge(renderer_metrics, "redis", 0.0).await;
    wait_for_log(
        || mesh.renderer.log(),
        "dependency redis failing: degraded, still serving",
    )
    .await;
    assert_eq!(
        status_of(&mesh, &mesh.renderer_url).await,
        Some(ServingStatus::Serving),
        "a frozen Redis took the renderer out of service"
    );
    let (serving, said) = health_command(
        "imgmesh-renderer",
        "--metrics-listen",
        &mesh.metrics_addr("renderer").to_string(),
    );
    assert!(serving, "{said}");

    mesh.redis.signal("CONT").unwrap();
    wait_for_gauge(renderer_metrics, "redis", 1.0).await;
    wait_for_log(|| mesh.renderer.log(), "dependency redis answers again").await;
    assert_eq!(
        status_of(&mesh, &mesh.renderer_url).await,
        Some(ServingStatus::Serving)
    );
}

/// With the fetcher killed the renderer reports NOT_SERVING (reason
/// `fetcher`) and the gateway's `/ready` is 503 naming the renderer, as
/// both `health` subcommands say; a fetcher started again on the same
/// address brings both back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renderer_and_gateway_follow_the_fetcher() {
    let mut mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    let renderer = mesh.metrics_addr("renderer").to_string();
    let ops = mesh.gateway_ops_addr.to_string();
    let (ready, said) = health_command("imgmesh-gateway", "--ops-listen", &ops);
    assert!(ready, "{said}");
    wait_for_gauge(mesh.metrics_addr("renderer"), "fetcher", 1.0).await;

    mesh.fetcher.kill();
    wait_for_status(
        &mesh,
        &mesh.renderer_url,
        ServingStatus::NotServing,
        "fetcher killed",
    )
    .await;
    wait_for_gauge(mesh.metrics_addr("renderer"), "fetcher", 0.0).await;
    wait_for_log(
        || mesh.renderer.log(),
        "dependency fetcher failing: not serving",
    )
    .await;
    let body = wait_for_ready(&mesh, 503).await;
    assert!(body.contains("renderer not serving"), "{body}");
    let (serving, said) = health_command("imgmesh-renderer", "--metrics-listen", &renderer);
    assert!(!serving, "the renderer's health passed without a fetcher");
    assert!(said.contains("NOT_SERVING"), "{said}");
    let (ready, said) = health_command("imgmesh-gateway", "--ops-listen", &ops);
    assert!(!ready, "the gateway's health passed without a renderer");
    assert!(said.contains("503"), "{said}");

    let (fetcher, _, _) = mesh
        .spawn_fetcher_on(authority(&mesh.fetcher_url), &mesh.registry_credentials_url)
        .await
        .unwrap();
    mesh.fetcher = fetcher;
    wait_for_status(
        &mesh,
        &mesh.renderer_url,
        ServingStatus::Serving,
        "fetcher back",
    )
    .await;
    assert_eq!(wait_for_ready(&mesh, 200).await, "ok");
    wait_for_log(|| mesh.renderer.log(), "dependency fetcher answers again").await;
    let (ready, said) = health_command("imgmesh-gateway", "--ops-listen", &ops);
    assert!(ready, "{said}");
}

/// Nothing listening: the `health` subcommand of every binary exits 1
/// and says why, in one line.
#[test]
fn health_command_fails_without_a_server() {
    let port = imgmesh_integration_tests::unused_port();
    let addr = format!("127.0.0.1:{port}");
    for (binary, flag) in [
        ("imgmesh-source-registry", "--metrics-listen"),
        ("imgmesh-fetcher", "--metrics-listen"),
        ("imgmesh-renderer", "--metrics-listen"),
        ("imgmesh-gateway", "--ops-listen"),
    ] {
        let (serving, said) = health_command(binary, flag, &addr);
        assert!(!serving, "{binary}: {said}");
        assert!(said.contains(&addr), "{binary}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "{binary}: {said}");
    }
}
