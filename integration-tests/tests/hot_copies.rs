//! The gateways' hot copies and the purge feed, across the real mesh: two
//! gateways sharing one Redis stop serving a purged derivative within the
//! bound once the admin API's purge returns; a copy read before a purge is
//! never served again after Redis loses its data (FLUSHALL, then a Source
//! purge); and a gateway whose subscription breaks (its connection killed
//! together with an unannounced purge, or Redis restarted empty) drops its
//! copies instead of serving them. Around them: after Redis loses its
//! data, a render never reads an original the fetcher cached before a
//! purge (the fetch's generation carries the Source's epoch); and a Source
//! edit reaches gateways that trust their copies within the Source cache's
//! TTL, however long the trust.
//!
//! Each original has two versions of different shapes (v1 1200×800, v2
//! 600×600), so a response tells which original it was rendered from: v1
//! after v2 was purged in is a stale copy.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{ChildProcess, Mesh, MeshOptions, S3_SECRET_KEY, get};
use imgmesh_test_support::RedisServer;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The derivative every test asks for: 64 px wide, so v1 is 64×43, v2 64×64.
const PATH: &str = "/photos/cat.jpg?w=64";

/// How long after a purge returns a gateway may still serve the old copy
/// in these tests (debug builds on two loaded cores; the bench measures the
/// real window, docs/caching.md).
const BOUND: Duration = Duration::from_secs(1);

/// Which original a derivative was rendered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Puts version `version` of the original in the bucket.
fn put_original(mesh: &Mesh, version: Version) {
    let bytes = match version {
        Version::V1 => fixtures::jpeg(1200, 800),
        Version::V2 => fixtures::jpeg(600, 600),
    };
    mesh.put_object("photos/cat.jpg", &bytes.unwrap()).unwrap();
}

/// A mesh with v1 of the original, the Source `demo`, and a second gateway
/// on the same Redis (with `extra` flags); returns the Source's id too.
async fn two_gateways(extra: &[&str]) -> (Mesh, ChildProcess, SocketAddr, String) {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    put_original(&mesh, Version::V1);
    let created = mesh
        .create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let id = created["id"].as_str().unwrap().to_owned();
    let redis_url = format!("--redis-url={}", mesh.redis_url);
    let mut flags = vec![
        redis_url.as_str(),
        "--redis-timeout-ms=250",
        "--source-cache-ttl-ms=200",
    ];
    flags.extend_from_slice(extra);
    let (second, second_addr, _admin) = mesh
        .spawn_gateway(&mesh.renderer_url, &flags)
        .await
        .expect("second gateway starts");
    (mesh, second, second_addr, id)
}

/// One GET of [`PATH`] at `gateway`: the version it was rendered from and
/// the cache status.
async fn ask(gateway: SocketAddr) -> (Version, String) {
    let (version, size, status) = ask_for(gateway, PATH).await;
    assert_eq!(size.0, 64, "{PATH} is 64 px wide");
    (version, status)
}

/// One GET of `path` at `gateway`: the version it was rendered from (v1
/// is wider than high, v2 square), its size and the cache status.
async fn ask_for(gateway: SocketAddr, path: &str) -> (Version, (i32, i32), String) {
    let response = get(gateway, "demo.localhost", path, &[]).await.unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    let decoded = fixtures::decode(&response.body).unwrap();
    let size = (decoded.width, decoded.height);
    let version = match size {
        (width, height) if width == height => Version::V2,
        (width, height) if height < width => Version::V1,
        other => panic!("{path}: unexpected size {other:?}"),
    };
    let status = response.header("x-imgmesh-cache").unwrap_or("").to_owned();
    (version, size, status)
}

/// Asks `gateway` until it answers a hit from the copy it now holds
/// (miss, then a hit read from Redis into the copy, then the copy).
async fn warm(gateway: SocketAddr, version: Version) {
    for _ in 0..3 {
        ask(gateway).await;
    }
    assert_eq!(ask(gateway).await, (version, "hit".to_owned()));
}

/// Asks `gateway` until it answers `version`, which it must within
/// [`BOUND`] of `since`; then five more answers must be `version` too.
async fn answers_within_bound(gateway: SocketAddr, version: Version, since: Instant) {
    loop {
        let sent = Instant::now();
        if ask(gateway).await.0 == version {
            break;
        }
        assert!(
            sent.duration_since(since) < BOUND,
            "{gateway} still served the old copy {:?} after the purge",
            sent.duration_since(since)
        );
    }
    for _ in 0..5 {
        assert_eq!(ask(gateway).await.0, version, "{gateway} went back");
    }
}

/// Purges through the admin API with `body`.
async fn purge(mesh: &Mesh, body: serde_json::Value) {
    let purged = mesh
        .admin("POST", "/v1/sources/demo/purge", Some(&body))
        .await
        .unwrap();
    assert_eq!(purged.status, 200, "{}", purged.text());
}

/// Waits until `subscribers` gateways follow the purge channel.
async fn wait_for_feeds(redis: &RedisServer, subscribers: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let numsub = redis
            .cli(&["PUBSUB", "NUMSUB", "imgmesh:purges"])
            .await
            .unwrap_or_default();
        if numsub.get(1).and_then(|n| n.parse().ok()) == Some(subscribers) {
            return;
        }
        assert!(Instant::now() < deadline, "purge feeds: {numsub:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A purge through the admin API stops both gateways serving their hot
/// copies within the bound of its return, for one asset and for the whole
/// Source.
#[tokio::test]
async fn purges_reach_every_gateway_within_the_bound() {
    let (mesh, _second, second, _id) = two_gateways(&[]).await;
    wait_for_feeds(&mesh.redis, 2).await;
    let gateways = [mesh.gateway_addr, second];
    for gateway in gateways {
        warm(gateway, Version::V1).await;
    }
    put_original(&mesh, Version::V2);
    purge(&mesh, json!({"path": "photos/cat.jpg"})).await;
    let returned = Instant::now();
    for gateway in gateways {
        answers_within_bound(gateway, Version::V2, returned).await;
    }

    put_original(&mesh, Version::V1);
    for gateway in gateways {
        warm(gateway, Version::V2).await;
    }
    purge(&mesh, json!({"all": true})).await;
    let returned = Instant::now();
    for gateway in gateways {
        answers_within_bound(gateway, Version::V1, returned).await;
    }
}

/// Redis loses its data after a purge, so the purge counters are back at
/// the values of copies read before it: after the Source purge that
/// follows, neither a gateway following the feed nor one confirming every
/// copy with Redis (`--hot-trust-ms=0`) serves such a copy.
#[tokio::test]
async fn copies_from_before_a_purge_never_return_after_a_flushall() {
    let (mesh, _second, confirming, _id) = two_gateways(&["--hot-trust-ms=0"]).await;
    wait_for_feeds(&mesh.redis, 1).await;
    let gateways = [mesh.gateway_addr, confirming];
    for gateway in gateways {
        warm(gateway, Version::V1).await;
    }
    put_original(&mesh, Version::V2);
    purge(&mesh, json!({"path": "photos/cat.jpg"})).await;
    let returned = Instant::now();
    for gateway in gateways {
        answers_within_bound(gateway, Version::V2, returned).await;
        warm(gateway, Version::V2).await;
    }

    // Between the FLUSHALL and the Source purge nothing is asked: the
    // epoch's refusal of a gateway's copy in that gap is tested by
    // `hot_entries_need_the_counters_confirmed` (shared/derivative-cache),
    // and a render's in `renders_after_a_flushall_never_reuse_an_original_from_before_a_purge`.
    mesh.redis_cli(&["FLUSHALL"]).await.unwrap();
    purge(&mesh, json!({"all": true})).await;
    for _ in 0..3 {
        for gateway in gateways {
            assert_eq!(
                ask(gateway).await.0,
                Version::V2,
                "{gateway} after FLUSHALL and a Source purge"
            );
        }
    }
}

/// Kills every subscriber connection in the same transaction as a purge
/// that announces nothing (the Source's counter bumped by hand): a gateway
/// that kept trusting its copies would serve v1 for its whole trust age.
async fn kill_feeds_with_a_silent_purge(redis: &RedisServer, source_id: &str) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", redis.port()))
        .await
        .unwrap();
    let commands =
        format!("MULTI\r\nCLIENT KILL TYPE pubsub\r\nINCR imgmesh:{{{source_id}}}:g\r\nEXEC\r\n");
    stream.write_all(commands.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 256];
    // +OK, +QUEUED, +QUEUED, then EXEC's array of two integers.
    while reply.iter().filter(|&&byte| byte == b'\n').count() < 6 {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(
            read > 0,
            "redis closed: {}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&chunk[..read]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("*2\r\n:"), "EXEC: {reply}");
}

/// A gateway whose subscription is killed drops its copies (it could have
/// missed a purge) and is subscribed again; one whose Redis restarts empty
/// does the same. No stale copy is served either time.
#[tokio::test]
async fn a_lost_feed_drops_the_copies() {
    let (mut mesh, _second, second, id) = two_gateways(&[]).await;
    wait_for_feeds(&mesh.redis, 2).await;
    let gateways = [mesh.gateway_addr, second];
    for gateway in gateways {
        warm(gateway, Version::V1).await;
    }
    put_original(&mesh, Version::V2);
    kill_feeds_with_a_silent_purge(&mesh.redis, &id).await;
    let killed = Instant::now();
    for gateway in gateways {
        answers_within_bound(gateway, Version::V2, killed).await;
    }
    wait_for_feeds(&mesh.redis, 2).await;
    for gateway in gateways {
        warm(gateway, Version::V2).await;
    }

    // Redis restarts without its data; v1 is back in the bucket, so a
    // render gives v1 and a copy kept from before gives v2.
    put_original(&mesh, Version::V1);
    let port = mesh.redis.port();
    mesh.redis.kill();
    mesh.redis = RedisServer::start_on(port).await;
    let restarted = Instant::now();
    for gateway in gateways {
        answers_within_bound(gateway, Version::V1, restarted).await;
    }
    wait_for_feeds(&mesh.redis, 2).await;
}

/// Redis loses its data after an asset purge, so the purge counters are
/// back at the values under which the fetcher cached the original from
/// before the purge (it keeps originals fresh for an hour here, asking S3
/// nothing): a render after the FLUSHALL, of a derivative never asked for
/// (so no gateway copy or Redis entry answers), reads the original again
/// instead of that copy, because the fetch's generation carries the
/// Source's epoch, which the FLUSHALL renewed.
#[tokio::test]
async fn renders_after_a_flushall_never_reuse_an_original_from_before_a_purge() {
    let mesh = Mesh::start(MeshOptions {
        fetcher_args: vec!["--original-fresh-seconds=3600".to_owned()],
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    put_original(&mesh, Version::V1);
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let gateway = mesh.gateway_addr;
    assert_eq!(ask(gateway).await.0, Version::V1);

    put_original(&mesh, Version::V2);
    purge(&mesh, json!({"path": "photos/cat.jpg"})).await;
    assert_eq!(
        ask(gateway).await.0,
        Version::V2,
        "rendered after the purge"
    );

    mesh.redis_cli(&["FLUSHALL"]).await.unwrap();
    let s3_gets = || async {
        mesh.metric("fetcher", "imgmesh_s3_requests_total", "")
            .await
            .unwrap()
    };
    let before = s3_gets().await;
    let (version, size, status) = ask_for(gateway, "/photos/cat.jpg?w=32").await;
    assert_eq!((size.0, status.as_str()), (32, "miss"));
    assert_eq!(
        version,
        Version::V2,
        "rendered from the fetcher's copy from before the purge"
    );
    assert_eq!(s3_gets().await, before + 1.0, "the original is read again");
}

/// A Source edit that changes its renders (its default params, through
/// the admin API) is served by every gateway within the Source cache's TTL
/// (200 ms here) of the edit returning, though both trust their hot copies
/// for a minute: the Source's config version is part of every key, so no
/// copy of the old settings is looked up once a gateway has read the edit.
#[tokio::test]
async fn source_edits_reach_gateways_that_trust_their_copies() {
    let (mesh, _second, second, _id) = two_gateways(&["--hot-trust-ms=60000"]).await;
    wait_for_feeds(&mesh.redis, 2).await;
    set_default_params(&mesh, "w=48").await;
    let gateways = [mesh.gateway_addr, second];
    for gateway in gateways {
        let deadline = Instant::now() + Duration::from_secs(10);
        while width(gateway).await != 48 {
            assert!(Instant::now() < deadline, "{gateway} never read the edit");
        }
        for _ in 0..3 {
            width(gateway).await;
        }
        assert_eq!(
            ask_for(gateway, "/photos/cat.jpg").await,
            (Version::V1, (48, 32), "hit".to_owned()),
            "{gateway} holds a copy"
        );
    }

    let returned = set_default_params(&mesh, "w=40").await;
    for gateway in gateways {
        loop {
            let sent = Instant::now();
            if width(gateway).await == 40 {
                break;
            }
            assert!(
                sent.duration_since(returned) < BOUND,
                "{gateway} still served the copy from before the edit {:?} after it",
                sent.duration_since(returned)
            );
        }
        for _ in 0..5 {
            assert_eq!(width(gateway).await, 40, "{gateway} went back");
        }
    }
}

/// Edits the Source's default params through the admin API; returns when
/// the edit returned.
async fn set_default_params(mesh: &Mesh, params: &str) -> Instant {
    let body = json!({ "default_params": params });
    let response = mesh
        .admin("PATCH", "/v1/sources/demo", Some(&body))
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    Instant::now()
}

/// The width `gateway` renders the original at without params (the
/// Source's default params decide it).
async fn width(gateway: SocketAddr) -> i32 {
    ask_for(gateway, "/photos/cat.jpg").await.1.0
}
