//! Overload on real processes: a renderer with one worker and a queue of
//! one, asked for many cold renders at once, renders what it admitted and
//! refuses the rest at once with 503 and `Retry-After` — never a 500, never
//! a long wait — and afterwards holds no admission, worker or memory; the
//! gateway has learnt from the refusals to refuse without a call. An
//! original too big for the whole memory budget is refused as too large.

use std::time::{Duration, Instant};

use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{Mesh, MeshOptions, S3_SECRET_KEY};

/// Concurrent cold renders sent at once: six times the renderer's capacity.
const REQUESTS: usize = 12;

/// Starts a mesh whose renderer has one worker and one queue place, with
/// `REQUESTS` distinct large originals and a deployed Source `busy`.
async fn overloaded_mesh() -> Mesh {
    let mesh = Mesh::start(MeshOptions {
        renderer_args: vec!["--workers=1".into(), "--render-queue-depth=1".into()],
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    // Big enough that a render (decode, resize, PNG encode) outlasts the
    // time it takes every request to arrive.
    let original = fixtures::png(3000, 2000).unwrap();
    for n in 0..REQUESTS {
        mesh.put_object(&format!("big/{n}.png"), &original).unwrap();
    }
    mesh.create_source("busy", S3_SECRET_KEY, &[])
        .await
        .expect("source is deployed");
    mesh
}

/// Polls the renderer's gauge `name` until it reads zero (bounded).
async fn settles_to_zero(mesh: &Mesh, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = mesh.metric("renderer", name, "").await.unwrap();
        if value == 0.0 {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stays at {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// At six times capacity the cold render that got the worker answers 200
/// and the rest 503 with `Retry-After` — the one queued before the first
/// refusal too — each refusal in well under a second and none a 500; the
/// refusals are counted as shed, and afterwards the queue, in-flight and
/// admitted-memory gauges are back at zero.
#[tokio::test]
async fn excess_cold_renders_are_shed_fast_with_retry_after() {
    let mesh = overloaded_mesh().await;
    // The Source resolves before the burst, so every request reaches the
    // renderer together.
    let warm = mesh.get("busy", "/missing.png").await.unwrap();
    assert_eq!(warm.status, 404, "{}", warm.text());

    let requests = (0..REQUESTS).map(|n| {
        let mesh = &mesh;
        async move {
            let started = Instant::now();
            let response = mesh
                .get("busy", &format!("/big/{n}.png?w=2800&fm=png"))
                .await
                .unwrap();
            (response, started.elapsed())
        }
    });
    let answers = futures::future::join_all(requests).await;

    let mut rendered = 0;
    let mut shed = 0;
    for (n, (response, elapsed)) in answers.iter().enumerate() {
        match response.status {
            200 => rendered += 1,
            503 => {
                shed += 1;
                assert_eq!(
                    response.header("retry-after"),
                    Some("1"),
                    "request {n}: {:?}",
                    response.headers
                );
                assert!(
                    *elapsed < Duration::from_secs(2),
                    "request {n} was refused only after {elapsed:?}"
                );
            }
            status => panic!(
                "request {n}: {status} after {elapsed:?}: {}\n{}",
                response.text(),
                mesh.log_tail()
            ),
        }
    }
    // One render: the one that got the worker. The one admitted to the
    // queue place before the first refusal is refused when that refusal
    // closes the queue, instead of waiting behind the running one.
    assert_eq!(rendered, 1, "renders of {REQUESTS} at once on one worker");
    assert!(shed >= 1, "nothing shed: {rendered} rendered");
    // Every 503 is a refusal by admission control: the renderer's (no
    // place, or past its adaptive limit), or the gateway's own, which
    // refuses without calling the renderer once the renderer has refused
    // (so it learnt a limit below its --max-in-flight of 1024).
    let by_renderer = mesh
        .metric("renderer", "imgmesh_render_shed_total", "")
        .await
        .unwrap();
    let by_gateway = mesh
        .metric("gateway", "imgmesh_renders_shed_locally_total", "")
        .await
        .unwrap();
    assert_eq!(
        by_renderer + by_gateway,
        shed as f64,
        "every 503 is a shed render ({by_renderer} by the renderer, {by_gateway} by the gateway)"
    );
    assert!(by_renderer >= 1.0, "the renderer refused first");
    let learnt = mesh
        .metric("gateway", "imgmesh_render_limit", "")
        .await
        .unwrap();
    assert!(
        (1.0..1024.0).contains(&learnt),
        "the gateway's render limit after {by_renderer} refusals: {learnt}"
    );

    for gauge in [
        "imgmesh_render_queue_depth",
        "imgmesh_renders_in_flight",
        "imgmesh_render_admitted_bytes",
    ] {
        settles_to_zero(&mesh, gauge).await;
    }

    // Capacity is back: a refused image now renders.
    let (refused, _) = answers
        .iter()
        .enumerate()
        .find(|(_, (response, _))| response.status == 503)
        .unwrap();
    let retried = mesh
        .get("busy", &format!("/big/{refused}.png?w=2800&fm=png"))
        .await
        .unwrap();
    assert_eq!(retried.status, 200, "{}", retried.text());
}

/// With a small memory budget, an original whose estimated decode exceeds
/// the whole budget is refused as too large (413, fast, no retry hint)
/// while a small one still renders, and no memory stays reserved.
#[tokio::test]
async fn originals_over_the_memory_budget_are_too_large() {
    let mesh = Mesh::start(MeshOptions {
        renderer_args: vec!["--render-memory-budget-bytes=8000000".into()],
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    mesh.put_object("big.png", &fixtures::png(3000, 2000).unwrap())
        .unwrap();
    mesh.put_object("small.jpg", &fixtures::jpeg(400, 300).unwrap())
        .unwrap();
    mesh.create_source("tight", S3_SECRET_KEY, &[])
        .await
        .expect("source is deployed");

    let started = Instant::now();
    let big = mesh.get("tight", "/big.png?w=2800&fm=png").await.unwrap();
    assert_eq!(big.status, 413, "{}", big.text());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(big.header("retry-after"), None);

    let small = mesh.get("tight", "/small.jpg?w=200").await.unwrap();
    assert_eq!(small.status, 200, "{}", small.text());
    settles_to_zero(&mesh, "imgmesh_render_admitted_bytes").await;
    settles_to_zero(&mesh, "imgmesh_render_queue_depth").await;
}

/// Clients that ask for their next URL as soon as one is refused (wrk, a
/// crawler), each on its own keep-alive HTTP/1 connection, count once each
/// in the gateway's demand. After a burst has taught the gateway a low
/// render limit, two such clients — as many as the renderer has places
/// for (one worker, one queue place) — are refused by the gateway only
/// until the learnt limit's hold (1 s) passes, then served. Counted by URL,
/// their hundreds of distinct URLs a second read as a storm that held the
/// limit for as long as they sent (`make bench`'s bad-bytes rows at four
/// connections were 503 by the tens of thousands).
#[tokio::test]
async fn clients_stepping_through_urls_are_served_once_the_hold_passes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mesh = overloaded_mesh().await;
    mesh.put_object("small.jpg", &fixtures::jpeg(400, 300).unwrap())
        .unwrap();
    let warm = mesh.get("busy", "/small.jpg?w=10").await.unwrap();
    assert_eq!(warm.status, 200, "{}", warm.text());
    // The burst: the renderer refuses, and the gateway learns a limit.
    let paths: Vec<_> = (0..REQUESTS)
        .map(|n| format!("/big/{n}.png?w=2800&fm=png"))
        .collect();
    let burst = futures::future::join_all(paths.iter().map(|path| mesh.get("busy", path))).await;
    assert!(
        burst
            .iter()
            .any(|r| r.as_ref().is_ok_and(|r| r.status == 503)),
        "the burst was not shed"
    );
    let learnt = mesh
        .metric("gateway", "imgmesh_render_limit", "")
        .await
        .unwrap();
    assert!(learnt < 1024.0, "no limit learnt: {learnt}");

    // Two clients, each on one connection, each asking for a new width of
    // the small original as soon as it has an answer, for 4 s.
    let started = Instant::now();
    let client = |first: u32| {
        let addr = mesh.gateway_addr;
        async move {
            let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut answers = Vec::new();
            let mut width = first;
            while started.elapsed() < Duration::from_secs(4) {
                width += 2;
                let request =
                    format!("GET /small.jpg?w={width} HTTP/1.1\r\nhost: busy.localhost\r\n\r\n");
                connection.write_all(request.as_bytes()).await.unwrap();
                let status = read_response(&mut connection).await;
                answers.push((started.elapsed(), status));
            }
            answers
        }
    };
    let answers = futures::future::join(client(11), client(12)).await;
    for (name, answers) in [("first", answers.0), ("second", answers.1)] {
        let late: Vec<_> = answers
            .iter()
            .filter(|(at, _)| *at > Duration::from_millis(2500))
            .collect();
        assert!(
            !late.is_empty() && late.iter().all(|(_, status)| *status == 200),
            "the {name} client's answers after 2.5 s (a limit of {learnt} learnt, held 1 s): \
             {} answers, {} of them 503",
            late.len(),
            late.iter().filter(|(_, status)| *status == 503).count()
        );
    }

    /// Reads one HTTP/1 response (its body by `content-length`) and
    /// returns its status.
    async fn read_response(connection: &mut tokio::net::TcpStream) -> u16 {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(connection.read(&mut byte).await.unwrap(), 1, "closed");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no content-length:\n{head}"));
        let mut body = vec![0u8; length];
        connection.read_exact(&mut body).await.unwrap();
        status
    }
}
