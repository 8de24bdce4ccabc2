//! S3 misbehaving under the whole mesh: a fault proxy between the fetcher
//! and the S3 server throttles, fails, refuses, loses objects, resets
//! connections, stalls and trickles. For each fault the client gets the
//! documented status (docs/failure-modes.md) within a bounded time, the
//! fetcher counts the failure (and its retries) in its metrics, and nothing
//! is cached as a success: once the fault clears the same URL renders (a
//! miss) and then hits.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use imgmesh_integration_tests::fault_proxy::{Fault, FaultProxy};
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{BUCKET, Mesh, MeshOptions, S3_ACCESS_KEY, S3_SECRET_KEY};

/// The Source reading through the proxy.
const SOURCE: &str = "faulty";
/// The object every test asks for (640×480 JPEG).
const KEY: &str = "photo.jpg";
/// The URL asked for: 200 px wide, so 200×150.
const URL: &str = "/photo.jpg?w=200";

/// Fetcher bounds short enough for tests: 1.5 s of silence per attempt or
/// mid-body, 6 s for a whole read (3 attempts with backoff fit).
const FAST: [&str; 2] = [
    "--origin-timeout-ms=6000",
    "--origin-attempt-timeout-ms=1500",
];

/// A mesh whose Source `faulty` reads [`BUCKET`] through a fault proxy.
struct Setup {
    mesh: Mesh,
    proxy: FaultProxy,
}

async fn setup(fetcher_args: &[&str]) -> Setup {
    let mesh = Mesh::start(MeshOptions {
        fetcher_args: fetcher_args.iter().map(|a| (*a).to_owned()).collect(),
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    let proxy = FaultProxy::start(&mesh.s3_endpoint)
        .await
        .expect("proxy starts");
    mesh.put_object(KEY, &fixtures::jpeg(640, 480).unwrap())
        .unwrap();
    let endpoint = format!("--endpoint={}", proxy.endpoint());
    let name = format!("--name={SOURCE}");
    let subdomain = format!("--subdomain={SOURCE}");
    let bucket = format!("--bucket={BUCKET}");
    let access_key = format!("--access-key-id={S3_ACCESS_KEY}");
    let secret = format!("--secret-access-key={S3_SECRET_KEY}");
    mesh.cli_json(&[
        "sources",
        "create",
        &name,
        &subdomain,
        &bucket,
        "--region=us-east-1",
        &endpoint,
        &access_key,
        &secret,
    ])
    .await
    .expect("source is created");
    mesh.deploy_source(SOURCE)
        .await
        .expect("source deploys through the proxy");
    Setup { mesh, proxy }
}

/// What one fault must look like to the client and in the metrics.
#[derive(Debug)]
struct Expect {
    /// The gateway's status.
    status: u16,
    /// Whether the answer carries `Retry-After`.
    retry_after: bool,
    /// Part of the body (the reason).
    reason: &'static str,
    /// The `imgmesh_s3_errors_total` stages one of which counts it (a
    /// stall can end on its last attempt's timeout or on the whole-read
    /// deadline, whichever a loaded machine reaches first).
    stages: &'static [&'static str],
    /// The `kind` of that series.
    kind: &'static str,
    /// How many requests reached the proxy (the fetcher's retries).
    requests: RangeInclusive<u64>,
    /// Longest the client may wait.
    within: Duration,
}

async fn metric(mesh: &Mesh, name: &str, labels: &str) -> f64 {
    mesh.metric("fetcher", name, labels)
        .await
        .unwrap_or_else(|e| panic!("scraping {name}: {e}"))
}

/// The failures `expect` names, summed over its stages.
async fn errors_counted(mesh: &Mesh, expect: &Expect) -> f64 {
    let mut sum = 0.0;
    for stage in expect.stages {
        let series = format!("stage=\"{stage}\",kind=\"{}\"", expect.kind);
        sum += metric(mesh, "imgmesh_s3_errors_total", &series).await;
    }
    sum
}

/// Switches `fault` on, asks for [`URL`] and checks `expect`; then clears
/// the fault and checks the URL renders (a miss) and then hits.
async fn check_fault(setup: &Setup, fault: Fault, expect: Expect) {
    let Setup { mesh, proxy } = setup;
    let errors_before = errors_counted(mesh, &expect).await;
    let attempts_before = metric(mesh, "imgmesh_s3_attempts_total", "").await;
    let requests_before = proxy.requests();

    proxy.set(fault);
    let started = Instant::now();
    let response = mesh.get(SOURCE, URL).await.unwrap();
    let took = started.elapsed();
    let asked = proxy.requests() - requests_before;
    // Release held stalls before any assertion can fail.
    proxy.set(Fault::Pass);

    let context = format!(
        "{fault:?}: {} {:?} after {took:?}, {asked} requests to S3\n{}",
        response.status,
        response.text(),
        mesh.log_tail()
    );
    assert_eq!(response.status, expect.status, "{context}");
    assert!(response.text().contains(expect.reason), "{context}");
    assert_eq!(
        response.header("retry-after").is_some(),
        expect.retry_after,
        "{context}"
    );
    if expect.status >= 500 {
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{context}"
        );
    }
    assert!(took <= expect.within, "{context}");
    assert!(expect.requests.contains(&asked), "{context}");

    let errors = errors_counted(mesh, &expect).await - errors_before;
    assert_eq!(
        errors, 1.0,
        "one kind=\"{}\" failure counted in stages {:?}; {context}",
        expect.kind, expect.stages
    );
    // Every request the proxy saw was an attempt the fetcher counted (one
    // more may have started just as the whole-read deadline fired).
    let attempts = metric(mesh, "imgmesh_s3_attempts_total", "").await - attempts_before;
    assert!(
        attempts >= asked as f64 && attempts <= asked as f64 + 1.0,
        "{attempts} attempts counted; {context}"
    );

    let after = mesh.get(SOURCE, URL).await.unwrap();
    assert_eq!(after.status, 200, "{fault:?} cleared: {}", after.text());
    assert_eq!(
        after.header("x-imgmesh-cache"),
        Some("miss"),
        "{fault:?}: the failure was not cached"
    );
    fixtures::expect_image(&after.body, Format::Jpeg, 200, 150).unwrap();
    let again = mesh.get(SOURCE, URL).await.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-imgmesh-cache"), Some("hit"), "{fault:?}");
    assert_eq!(again.body, after.body);
}

/// 503 `SlowDown` is throttling: retried (3 attempts, backoff with
/// jitter), then 503 with `Retry-After`, never cached.
#[tokio::test]
async fn slow_down_is_503_with_retry_after() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::SlowDown,
        Expect {
            status: 503,
            retry_after: true,
            reason: "the origin is throttling requests",
            stages: &["headers"],
            kind: "throttled",
            requests: 3..=3,
            within: Duration::from_secs(8),
        },
    )
    .await;
}

/// 500 `InternalError` is retried, then a 502: the origin failed.
#[tokio::test]
async fn internal_error_is_502() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::InternalError,
        Expect {
            status: 502,
            retry_after: false,
            reason: "the origin is unavailable",
            stages: &["headers"],
            kind: "unavailable",
            requests: 3..=3,
            within: Duration::from_secs(8),
        },
    )
    .await;
}

/// 403 `AccessDenied` is an answer, not a failure: asked once, 502 naming
/// the credentials (the origin refused us, not the client).
#[tokio::test]
async fn access_denied_is_502_and_not_retried() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::AccessDenied,
        Expect {
            status: 502,
            retry_after: false,
            reason: "the origin rejected the source's credentials",
            stages: &["headers"],
            kind: "access_denied",
            requests: 1..=1,
            within: Duration::from_secs(3),
        },
    )
    .await;
}

/// 404 `NoSuchKey` is asked once and answered 404; the object renders as
/// soon as S3 has it again.
#[tokio::test]
async fn no_such_key_is_404_and_not_retried() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::NoSuchKey,
        Expect {
            status: 404,
            retry_after: false,
            reason: "object not found",
            stages: &["headers"],
            kind: "not_found",
            requests: 1..=1,
            within: Duration::from_secs(3),
        },
    )
    .await;
}

/// A connection reset is retried, then a 502.
#[tokio::test]
async fn connection_reset_is_retried_then_502() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::Reset,
        Expect {
            status: 502,
            retry_after: false,
            reason: "the origin is unavailable",
            stages: &["headers"],
            kind: "unavailable",
            requests: 3..=3,
            within: Duration::from_secs(8),
        },
    )
    .await;
}

/// An origin that never sends headers: each attempt times out and is
/// retried; the whole read ends at `--origin-timeout-ms` (6 s) as a 504
/// with `Retry-After`.
#[tokio::test]
async fn stall_before_headers_is_504_within_the_origin_timeout() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::StallBeforeHeaders,
        Expect {
            status: 504,
            retry_after: true,
            reason: "the origin did not answer in time",
            stages: &["headers", "total"],
            kind: "timeout",
            requests: 2..=3,
            within: Duration::from_secs(9),
        },
    )
    .await;
}

/// An origin that stops mid-body: 504 with `Retry-After` once it has been
/// silent for the attempt timeout (1.5 s).
#[tokio::test]
async fn stall_mid_body_is_504_after_the_idle_timeout() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::StallMidBody,
        Expect {
            status: 504,
            retry_after: true,
            reason: "the origin did not answer in time",
            stages: &["body"],
            kind: "timeout",
            requests: 1..=1,
            within: Duration::from_secs(5),
        },
    )
    .await;
}

/// A body trickling in (never silent long enough for the idle timeout) is
/// cut at the whole-read deadline (6 s): 504 with `Retry-After`.
#[tokio::test]
async fn trickled_body_is_504_at_the_origin_timeout() {
    let setup = setup(&FAST).await;
    check_fault(
        &setup,
        Fault::Trickle {
            chunk: 16,
            interval: Duration::from_millis(100),
        },
        Expect {
            status: 504,
            retry_after: true,
            reason: "the origin did not answer in time",
            stages: &["total"],
            kind: "timeout",
            requests: 1..=1,
            within: Duration::from_secs(9),
        },
    )
    .await;
}

/// A slow body that arrives within the bounds still renders.
#[tokio::test]
async fn slow_but_steady_body_still_renders() {
    let setup = setup(&FAST).await;
    setup.proxy.set(Fault::Trickle {
        chunk: 4096,
        interval: Duration::from_millis(50),
    });
    let response = setup.mesh.get(SOURCE, URL).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    fixtures::expect_image(&response.body, Format::Jpeg, 200, 150).unwrap();
}

/// With the production defaults an origin that never answers is a 504
/// from the fetcher (its 20 s `--origin-timeout-ms`) before the gateway's
/// own 30 s render deadline, and a body that stalls is a 504 once the SDK's
/// stalled-stream guard (5 s) or the 10 s idle timeout fires.
#[tokio::test]
async fn default_bounds_answer_before_the_gateway_gives_up() {
    let setup = setup(&[]).await;
    let started = Instant::now();
    setup.proxy.set(Fault::StallBeforeHeaders);
    let response = setup.mesh.get(SOURCE, URL).await.unwrap();
    let took = started.elapsed();
    setup.proxy.set(Fault::Pass);
    assert_eq!(response.status, 504, "{}", response.text());
    assert!(
        response
            .text()
            .contains("the origin did not answer in time"),
        "{}",
        response.text()
    );
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        took >= Duration::from_secs(15) && took < Duration::from_secs(27),
        "{took:?}"
    );

    setup
        .mesh
        .put_object("other.jpg", &fixtures::jpeg(64, 64).unwrap())
        .unwrap();
    let started = Instant::now();
    setup.proxy.set(Fault::StallMidBody);
    let response = setup.mesh.get(SOURCE, "/other.jpg?w=32").await.unwrap();
    let took = started.elapsed();
    setup.proxy.set(Fault::Pass);
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(took < Duration::from_secs(14), "{took:?}");
}
