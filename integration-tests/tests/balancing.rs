//! A gateway given three renderers in one comma-separated `--renderer-url`
//! spreads renders evenly over them per request (tonic's balanced channel,
//! power of two choices), and when one renderer is killed, requests keep
//! succeeding on the other two (retried once on another replica); replicas
//! killed, restarted, added to an endpoint file or SIGTERMed under load
//! cost no failed request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{BASE_DOMAIN, Mesh, MeshOptions, S3_SECRET_KEY, binary_path, get};

/// Distinct cold renders sent for the spread check.
const RENDERS: usize = 900;

/// Requests in flight at once.
const CONCURRENCY: usize = 8;

/// Requests in flight in the scaling test: fewer than one renderer admits
/// on two cores (2 workers + a queue of 4), so no request is shed however
/// p2c spreads them, and a failure can only be a request lost with a
/// replica.
const SURVIVOR_LOAD: usize = 4;

/// Renders `/wide.jpg` at each width in `widths` through the gateway at
/// `gateway`, `CONCURRENCY` at a time; returns each request's status in
/// order of completion. A 503 with `Retry-After` (a renderer shedding a
/// burst that p2c happened to send its way, see admission control) is
/// retried up to three times after a growing pause, as a client honouring
/// `Retry-After` would: on two loaded cores one renderer can be full twice
/// in a row, and shedding is tested on its own in `overload`.
async fn render_widths(gateway: SocketAddr, widths: impl Iterator<Item = usize>) -> Vec<u16> {
    render_widths_at(gateway, widths, CONCURRENCY).await
}

/// [`render_widths`] with `concurrency` requests in flight.
async fn render_widths_at(
    gateway: SocketAddr,
    widths: impl Iterator<Item = usize>,
    concurrency: usize,
) -> Vec<u16> {
    let host = format!("bal.{BASE_DOMAIN}");
    futures::stream::iter(widths)
        .map(|width| {
            let host = host.clone();
            async move {
                let path = format!("/wide.jpg?w={width}&fm=jpg");
                for attempt in 0..4 {
                    match get(gateway, &host, &path, &[]).await {
                        Ok(response)
                            if attempt < 3
                                && response.status == 503
                                && response.header("retry-after").is_some() =>
                        {
                            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                        }
                        Ok(response) => return response.status,
                        Err(_) => return 0,
                    }
                }
                0
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Each renderer's `imgmesh_renders_total`.
async fn renders(metrics: &[SocketAddr]) -> Vec<f64> {
    let mut counts = Vec::new();
    for addr in metrics {
        counts.push(
            Mesh::metric_at(*addr, "imgmesh_renders_total", "")
                .await
                .unwrap(),
        );
    }
    counts
}

/// Cold renders through one gateway are spread within ±15 % of a third
/// over three renderers, and after one renderer is killed the requests
/// that follow succeed on the other two (only the first moments may fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_spread_over_renderers_and_survive_one_dying() {
    let started = Instant::now();
    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    mesh.put_object("wide.jpg", &fixtures::jpeg(2000, 40).unwrap())
        .unwrap();
    mesh.create_source("bal", S3_SECRET_KEY, &[]).await.unwrap();
    let (_second, second_url, second_metrics) = mesh.spawn_renderer().await.unwrap();
    let (mut third, third_url, third_metrics) = mesh.spawn_renderer().await.unwrap();
    let metrics = [mesh.metrics_addr("renderer"), second_metrics, third_metrics];
    let (_gateway, gateway, _) = mesh
        .spawn_gateway(
            &format!("{},{second_url},{third_url}", mesh.renderer_url),
            &[],
        )
        .await
        .unwrap();
    let before = renders(&metrics).await;

    // Widths 16.. are distinct derivatives: every request is a cold render.
    let statuses = render_widths(gateway, 16..16 + RENDERS).await;
    assert!(
        statuses.iter().all(|status| *status == 200),
        "statuses {statuses:?}\n{}",
        mesh.log_tail()
    );
    let after = renders(&metrics).await;
    let counts: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: f64 = counts.iter().sum();
    assert_eq!(total, RENDERS as f64, "renders {counts:?}");
    let third_share = total / 3.0;
    eprintln!(
        "spread over three renderers: {counts:?} of {total} (ideal {third_share:.0}), {:?} in",
        started.elapsed()
    );
    for count in &counts {
        assert!(
            (count - third_share).abs() <= third_share * 0.15,
            "renders {counts:?} are not within 15 % of {third_share}"
        );
    }

    // Kill one renderer and keep sending, one request at a time.
    third.kill();
    let killed = Instant::now();
    let mut failures = 0;
    let mut last_failure = None;
    let first = 16 + RENDERS;
    for width in first..first + 150 {
        let status = render_widths(gateway, std::iter::once(width)).await[0];
        if status != 200 {
            failures += 1;
            last_failure = Some(killed.elapsed());
        }
    }
    eprintln!(
        "after killing one renderer: {failures} of 150 failed, the last {last_failure:?} after the kill ({:?} for all 150)",
        killed.elapsed()
    );
    // The dead renderer leaves the balancer within a probe interval or two.
    assert!(
        last_failure.is_none_or(|at| at < Duration::from_secs(3)),
        "a request failed {last_failure:?} after the kill"
    );
    let still_alive = render_widths_at(gateway, first + 150..first + 210, SURVIVOR_LOAD).await;
    assert!(
        still_alive.iter().all(|status| *status == 200),
        "statuses {still_alive:?}"
    );
    eprintln!("whole test: {:?}", started.elapsed());
}

/// The gateway's counter `name` (summed over its labels).
async fn gateway_metric(ops: SocketAddr, name: &str) -> f64 {
    Mesh::metric_at(ops, name, "").await.unwrap_or(0.0)
}

/// Waits (at most `within`) until the renderer whose metrics are at
/// `metrics` has rendered something more than `before`, sending cold
/// renders meanwhile; returns how long that took.
async fn until_it_renders(
    gateway: SocketAddr,
    metrics: SocketAddr,
    widths: &mut std::ops::RangeFrom<usize>,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let before = renders(&[metrics]).await[0];
    loop {
        let batch: Vec<usize> = widths.take(SURVIVOR_LOAD).collect();
        let statuses = render_widths_at(gateway, batch.into_iter(), SURVIVOR_LOAD).await;
        assert!(statuses.iter().all(|s| *s == 200), "statuses {statuses:?}");
        if renders(&[metrics]).await[0] > before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the renderer got no traffic within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scaling in and out with no failed request, on the topology:
/// two registries on one PostgreSQL database (the gateway, the fetchers and
/// the CLI balance over both), two fetchers (every renderer balances over
/// them), and renderers the gateway reads from an endpoint file
/// (`--renderer-url=file:…`):
///
/// - the CLI's calls spread over both registries;
/// - kill -9 one renderer under concurrent load: every request still
///   succeeds (calls that failed on it are retried once on another);
/// - start it again on the same port: it gets traffic within a probe
///   interval or two;
/// - add a fourth renderer to the file at run time: it gets traffic
///   within one re-resolution period, with no restart;
/// - SIGTERM one fetcher under load: every request still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_join_and_leave_without_failed_requests() {
    let started = Instant::now();
    let mesh = Mesh::start(MeshOptions {
        postgres: true,
        ..MeshOptions::default()
    })
    .await
    .unwrap();
    mesh.put_object("wide.jpg", &fixtures::jpeg(2000, 40).unwrap())
        .unwrap();
    mesh.create_source("bal", S3_SECRET_KEY, &[]).await.unwrap();
    let (mut second_registry, second_registry_url, second_registry_metrics) =
        mesh.spawn_registry().await.unwrap();
    let registries = format!("{},{second_registry_url}", mesh.registry_url);
    // Fetchers call the registries' credentials port.
    let credential_registries = format!(
        "{},http://{}",
        mesh.registry_credentials_url,
        second_registry.listening("credentials").await.unwrap()
    );
    let registry_metrics = [
        mesh.metrics_addr("source-registry"),
        second_registry_metrics,
    ];
    let calls = |addrs: [SocketAddr; 2]| async move {
        let mut counts = Vec::new();
        for addr in addrs {
            counts.push(
                Mesh::metric_at(addr, "imgmesh_grpc_requests_total", "SourceRegistryService")
                    .await
                    .unwrap_or(0.0),
            );
        }
        counts
    };
    let before = calls(registry_metrics).await;
    for _ in 0..20 {
        let listed = tokio::process::Command::new(binary_path("imgmesh").unwrap())
            .arg(format!("--registry-url={registries}"))
            .args(mesh.certs.tls_args("cli"))
            .args(["--json", "sources", "get", "bal"])
            .output()
            .await
            .unwrap();
        assert!(listed.status.success(), "{listed:?}");
    }
    let after = calls(registry_metrics).await;
    let spread: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    eprintln!("20 CLI calls over two registries on PostgreSQL: {spread:?}");
    assert!(
        spread.iter().all(|n| *n >= 1.0),
        "a registry got no call: {spread:?}"
    );
    let (mut second_fetcher, second_fetcher_url, _) = mesh
        .spawn_fetcher_with(&credential_registries)
        .await
        .unwrap();
    let fetchers = format!("{},{second_fetcher_url}", mesh.fetcher_url);
    let (_r2, r2_url, _) = mesh
        .spawn_renderer_with("127.0.0.1:0", &fetchers)
        .await
        .unwrap();
    let (mut r3, r3_url, r3_metrics) = mesh
        .spawn_renderer_with("127.0.0.1:0", &fetchers)
        .await
        .unwrap();
    let list = mesh.dir.path().join("renderers.txt");
    std::fs::write(&list, format!("# renderers\n{r2_url}\n{r3_url}\n")).unwrap();
    let (mut gateway_process, gateway, _) = mesh
        .spawn_gateway_with(&registries, &format!("file:{}", list.display()), &[])
        .await
        .unwrap();
    let ops = gateway_process.listening("ops").await.unwrap();
    let mut widths = 16usize..;

    // Warm both renderers' connections, then kill one in the middle of a
    // concurrent burst.
    let statuses = render_widths_at(gateway, widths.by_ref().take(16), SURVIVOR_LOAD).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{statuses:?}\n{}",
        warnings(&gateway_process.log())
    );
    assert!(
        renders(&[r3_metrics]).await[0] > 0.0,
        "the renderer to kill got no traffic"
    );
    let burst: Vec<usize> = widths.by_ref().take(80).collect();
    let load = tokio::spawn(render_widths_at(gateway, burst.into_iter(), SURVIVOR_LOAD));
    tokio::time::sleep(Duration::from_millis(300)).await;
    r3.kill();
    let statuses = load.await.unwrap();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    eprintln!("kill -9 of one renderer during 80 renders: {failed} failed");
    assert_eq!(
        failed,
        0,
        "statuses {statuses:?}\n{}",
        warnings(&gateway_process.log())
    );

    // Back on the same port: it rejoins.
    let r3_listen = r3_url.trim_start_matches("http://").to_owned();
    let mut restarted = None;
    for _ in 0..50 {
        match mesh.spawn_renderer_with(&r3_listen, &fetchers).await {
            Ok(renderer) => {
                restarted = Some(renderer);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let (_r3_again, _, r3_again_metrics) = restarted.expect("the renderer could not start again");
    let rejoined = until_it_renders(
        gateway,
        r3_again_metrics,
        &mut widths,
        Duration::from_secs(10),
    )
    .await;
    eprintln!("the restarted renderer got traffic {rejoined:?} after it started");

    // A fourth renderer, added to the file while the gateway runs.
    let (_r4, r4_url, r4_metrics) = mesh
        .spawn_renderer_with("127.0.0.1:0", &fetchers)
        .await
        .unwrap();
    std::fs::write(&list, format!("{r2_url}\n{r3_url}\n{r4_url}\n")).unwrap();
    let joined = until_it_renders(gateway, r4_metrics, &mut widths, Duration::from_secs(15)).await;
    eprintln!("the added renderer got traffic {joined:?} after the file changed");

    // SIGTERM one fetcher in the middle of a burst.
    let burst: Vec<usize> = widths.by_ref().take(80).collect();
    let load = tokio::spawn(render_widths_at(gateway, burst.into_iter(), SURVIVOR_LOAD));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exited = second_fetcher.terminate(Duration::from_secs(15)).await;
    let statuses = load.await.unwrap();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    eprintln!(
        "SIGTERM of one fetcher during 80 renders: {failed} failed (exited in time: {exited})"
    );
    assert_eq!(failed, 0, "statuses {statuses:?}\n{}", mesh.log_tail());
    assert!(
        exited,
        "the fetcher did not drain and exit within its grace"
    );

    let retries = gateway_metric(ops, "imgmesh_grpc_client_retries_total").await;
    eprintln!("gateway retries on another renderer: {retries}");
    eprintln!("whole test: {:?}", started.elapsed());
}

/// The warning and error lines of a log.
fn warnings(log: &str) -> String {
    log.lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Graceful scale-in of a renderer, as Kubernetes does it: on SIGTERM the
/// renderer reports NOT_SERVING on `grpc.health.v1` at once (seen on a
/// health watch opened before the signal, while a slow render is still
/// running on it), finishes that render (the client gets its 200), and its
/// gateway moves the other requests to the second renderer without a
/// failed request; the renderer then exits on its own within its grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_renderer_turns_unready_finishes_its_render_and_loses_nothing() {
    use tonic_health::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    mesh.put_object("wide.jpg", &fixtures::jpeg(2000, 40).unwrap())
        .unwrap();
    mesh.put_object("big.jpg", &fixtures::jpeg(4000, 3000).unwrap())
        .unwrap();
    mesh.create_source("bal", S3_SECRET_KEY, &[]).await.unwrap();
    let (first, first_url, first_metrics) = mesh
        .spawn_renderer_with("127.0.0.1:0", &mesh.fetcher_url)
        .await
        .unwrap();
    let (second, second_url, second_metrics) = mesh
        .spawn_renderer_with("127.0.0.1:0", &mesh.fetcher_url)
        .await
        .unwrap();
    let (gateway_process, gateway, _) = mesh
        .spawn_gateway_with(
            &mesh.registry_url,
            &format!("{first_url},{second_url}"),
            &[],
        )
        .await
        .unwrap();
    let mut widths = 16usize..;
    let statuses = render_widths_at(gateway, widths.by_ref().take(16), SURVIVOR_LOAD).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{statuses:?}\n{}",
        warnings(&gateway_process.log())
    );

    // A slow render (a 12 MP original, enlarged and blurred), and the
    // renderer it landed on.
    let slow = tokio::spawn(async move {
        let host = format!("bal.{BASE_DOMAIN}");
        get(gateway, &host, "/big.jpg?w=5000&blur=400&fm=png", &[]).await
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut victim, victim_url) = loop {
        let in_flight = |addr| Mesh::metric_at(addr, "imgmesh_renders_in_flight", "");
        if in_flight(first_metrics).await.unwrap_or(0.0) > 0.0 {
            break ((first, second), first_url);
        }
        if in_flight(second_metrics).await.unwrap_or(0.0) > 0.0 {
            break ((second, first), second_url);
        }
        assert!(
            Instant::now() < deadline && !slow.is_finished(),
            "the slow render never showed in flight on either renderer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let channel = mesh.grpc_channel(&victim_url, "gateway").unwrap();
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first_status = watch.message().await.unwrap().unwrap().status;
    assert_eq!(first_status, ServingStatus::Serving as i32);

    let burst: Vec<usize> = widths.by_ref().take(60).collect();
    let load = tokio::spawn(render_widths_at(gateway, burst.into_iter(), SURVIVOR_LOAD));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pid = victim.0.pid().expect("the renderer runs");
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let unready = tokio::time::timeout(Duration::from_secs(2), watch.message())
        .await
        .expect("no health change within 2 s of SIGTERM")
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(
        unready,
        ServingStatus::NotServing as i32,
        "SIGTERM turns the renderer unready"
    );
    let still_rendering = !slow.is_finished();
    assert!(
        still_rendering,
        "the slow render ended before the renderer turned unready: nothing was left to drain"
    );
    drop(watch);

    let slow = slow.await.unwrap().unwrap();
    assert_eq!(
        slow.status,
        200,
        "the render in flight at SIGTERM finishes: {}\ngateway: {}\nrenderer: {}",
        slow.text(),
        warnings(&gateway_process.log()),
        warnings(&victim.0.log())
    );
    let statuses = load.await.unwrap();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    eprintln!(
        "SIGTERM of a renderer with a render in flight: {failed} of {} other requests failed",
        statuses.len()
    );
    assert_eq!(
        failed,
        0,
        "statuses {statuses:?}\n{}",
        warnings(&gateway_process.log())
    );
    assert!(
        victim.0.terminate(Duration::from_secs(15)).await,
        "the renderer did not drain and exit within its grace"
    );
    let after: Vec<usize> = widths.by_ref().take(8).collect();
    let statuses = render_widths_at(gateway, after.into_iter(), SURVIVOR_LOAD).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the survivor serves everything: {statuses:?}"
    );
    drop(victim.1);
}
