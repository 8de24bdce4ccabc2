//! The fetcher against a real S3 server (`s3s-fs`, which verifies SigV4),
//! with an in-test registry handing out read access.

use imgmesh_errors::ErrorCode;
use imgmesh_proto::fetcher::v1::FetchObjectRequest;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imgmesh_test_support::log_capture::captured_logs;

use crate::harness::{
    Harness, SECRET_KEY, ScriptedOrigin, assert_status, chunked_response, not_found_response,
    not_modified_response, object_response, patterned_bytes, read_access,
};

/// The fetcher's cap in tests that do not test the cap.
const LARGE_CAP: u64 = 32 * 1024 * 1024;
/// An object larger than two 256 KiB chunks.
const OBJECT_LEN: usize = 700 * 1024;

/// An object several chunks long streams back byte for byte, metadata first.
#[tokio::test]
async fn streams_object_bytes_and_metadata_intact() {
    let harness = Harness::start(LARGE_CAP).await;
    let object = patterned_bytes(OBJECT_LEN);
    harness.put_object("tenant-a/photos/big.bin", &object);
    harness.add_source("src-a", "tenant-a", SECRET_KEY);

    let fetched = harness.fetch("src-a", "photos/big.bin").await.unwrap();

    assert_eq!(fetched.metadata.size, OBJECT_LEN as u64);
    assert!(
        fetched.metadata.etag.starts_with('"') && fetched.metadata.etag.len() > 2,
        "{:?}",
        fetched.metadata.etag
    );
    assert!(fetched.metadata.last_modified > 1_600_000_000);
    assert!(fetched.chunk_sizes.len() >= 3, "{:?}", fetched.chunk_sizes);
    assert!(fetched.chunk_sizes.iter().all(|&n| n <= 256 * 1024));
    assert!(
        fetched.bytes == object,
        "bytes differ from the stored object"
    );
}

/// The Source's prefix is put in front of the path; the same path outside it is not read.
#[tokio::test]
async fn prefix_is_applied() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.put_object("tenant-a/cat.jpg", b"inside the prefix");
    harness.put_object("cat.jpg", b"bucket root");
    harness.add_source("src-a", "tenant-a", SECRET_KEY);
    harness.add_source("src-root", "", SECRET_KEY);

    let prefixed = harness.fetch("src-a", "cat.jpg").await.unwrap();
    assert_eq!(prefixed.bytes, b"inside the prefix");
    let unprefixed = harness.fetch("src-root", "cat.jpg").await.unwrap();
    assert_eq!(unprefixed.bytes, b"bucket root");
}

/// A key that does not exist is NOT_FOUND with reason OBJECT_NOT_FOUND.
#[tokio::test]
async fn missing_key_is_object_not_found() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.add_source("src-a", "tenant-a", SECRET_KEY);

    let status = harness.fetch("src-a", "nope.jpg").await.unwrap_err();

    assert_status(&status, ErrorCode::ObjectNotFound);
    assert_eq!(status.message(), "object not found");
}

/// A wrong secret is PERMISSION_DENIED / ORIGIN_ACCESS_DENIED, and no secret reaches the caller.
#[tokio::test]
async fn wrong_secret_is_origin_access_denied() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.put_object("cat.jpg", b"meow");
    let wrong_secret = "fetcher-wrong-secret-0a7c3e55";
    harness.add_source("src-bad", "", wrong_secret);

    let status = harness.fetch("src-bad", "cat.jpg").await.unwrap_err();

    assert_status(&status, ErrorCode::OriginAccessDenied);
    assert_eq!(
        status.message(),
        "the origin rejected the source's credentials"
    );
    assert!(!status.message().contains(wrong_secret));
    assert!(!format!("{status:?}").contains(wrong_secret));
}

/// An object over the fetcher's cap is RESOURCE_EXHAUSTED / INPUT_TOO_LARGE, even if the caller asks for more.
#[tokio::test]
async fn object_over_the_fetcher_cap_is_too_large() {
    let harness = Harness::start(100_000).await;
    harness.put_object("big.bin", &patterned_bytes(OBJECT_LEN));
    harness.put_object("small.bin", &patterned_bytes(100_000));
    harness.add_source("src-a", "", SECRET_KEY);

    let status = harness.fetch("src-a", "big.bin").await.unwrap_err();
    assert_status(&status, ErrorCode::InputTooLarge);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);

    let asked_for_more = harness
        .fetch_with(FetchObjectRequest {
            source_id: "src-a".to_owned(),
            path: "big.bin".to_owned(),
            max_bytes: LARGE_CAP,
            source_config_version: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&asked_for_more, ErrorCode::InputTooLarge);

    let at_the_cap = harness.fetch("src-a", "small.bin").await.unwrap();
    assert_eq!(at_the_cap.bytes.len(), 100_000);
}

/// A caller's smaller `max_bytes` caps the object below the fetcher's own limit.
#[tokio::test]
async fn callers_max_bytes_caps_the_object() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.put_object("cat.jpg", &patterned_bytes(5_000));
    harness.add_source("src-a", "", SECRET_KEY);

    let request = |max_bytes| FetchObjectRequest {
        source_id: "src-a".to_owned(),
        path: "cat.jpg".to_owned(),
        max_bytes,
        source_config_version: 1,
        ..Default::default()
    };
    let status = harness.fetch_with(request(4_999)).await.unwrap_err();
    assert_status(&status, ErrorCode::InputTooLarge);
    let fetched = harness.fetch_with(request(5_000)).await.unwrap();
    assert_eq!(fetched.bytes.len(), 5_000);
}

/// Bytes are counted while reading: a body without Content-Length that passes the cap is refused, and none of it is sent.
#[tokio::test]
async fn undeclared_length_is_counted_while_reading() {
    let harness = Harness::start(100_000).await;
    let origin = ScriptedOrigin::start(chunked_response(300_000)).await;
    harness
        .registry
        .put(read_access("src-chunked", &origin.endpoint, "", SECRET_KEY));

    let streamed = harness
        .stream(FetchObjectRequest {
            source_id: "src-chunked".to_owned(),
            path: "big.bin".to_owned(),
            max_bytes: 0,
            source_config_version: 1,
            ..Default::default()
        })
        .await;

    assert!(streamed.bytes.is_empty(), "{} bytes", streamed.bytes.len());
    let status = streamed.error.expect("the fetch failed");
    assert_status(&status, ErrorCode::InputTooLarge);
    assert_eq!(origin.requests(), 1);
}

/// A second read of one object is answered from the original cache without asking the origin.
#[tokio::test]
async fn repeated_reads_are_served_from_memory() {
    let harness = Harness::start(LARGE_CAP).await;
    let body = patterned_bytes(OBJECT_LEN);
    let origin = ScriptedOrigin::start(object_response(&body, "\"v1\"")).await;
    harness
        .registry
        .put(read_access("src-cached", &origin.endpoint, "", SECRET_KEY));
    for _ in 0..3 {
        let fetched = harness.fetch("src-cached", "hero.jpg").await.unwrap();
        assert_eq!(fetched.bytes, body);
        assert_eq!(fetched.metadata.etag, "\"v1\"");
    }
    assert_eq!(origin.requests(), 1);
}

/// Concurrent reads of one object share one origin read, even with the cache off.
#[tokio::test]
async fn concurrent_reads_share_one_origin_read() {
    let harness = Harness::start_with(LARGE_CAP, &["--original-cache-bytes=0"]).await;
    let body = patterned_bytes(64 * 1024);
    let response = object_response(&body, "\"v1\"");
    // Slow enough that every request arrives while the first read runs.
    let origin =
        ScriptedOrigin::start_with(Duration::from_millis(500), move |_| response.clone()).await;
    harness
        .registry
        .put(read_access("src-hot", &origin.endpoint, "", SECRET_KEY));
    let fetches = (0..20).map(|_| harness.fetch("src-hot", "hot.jpg"));
    for fetched in futures::future::join_all(fetches).await {
        assert_eq!(fetched.unwrap().bytes, body);
    }
    assert_eq!(origin.requests(), 1);
}

/// A stale original is revalidated with its ETag: an unchanged object is not read again, a changed one is.
#[tokio::test]
async fn stale_originals_are_revalidated_with_their_etag() {
    let harness = Harness::start_with(LARGE_CAP, &["--original-fresh-seconds=0"]).await;
    let current_etag = Arc::new(Mutex::new("\"v1\"".to_owned()));
    let conditional = Arc::new(AtomicUsize::new(0));
    let (etag, seen) = (current_etag.clone(), conditional.clone());
    let origin = ScriptedOrigin::start_with(Duration::ZERO, move |head| {
        let etag = etag.lock().unwrap().clone();
        let asked = head
            .lines()
            .find_map(|line| line.strip_prefix("if-none-match: "))
            .map(str::trim);
        if asked.is_some() {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        if asked == Some(etag.as_str()) {
            not_modified_response(&etag)
        } else {
            object_response(etag.as_bytes(), &etag)
        }
    })
    .await;
    harness
        .registry
        .put(read_access("src-reval", &origin.endpoint, "", SECRET_KEY));

    let first = harness.fetch("src-reval", "a.jpg").await.unwrap();
    assert_eq!(first.bytes, b"\"v1\"");
    let second = harness.fetch("src-reval", "a.jpg").await.unwrap();
    assert_eq!(second.bytes, b"\"v1\"", "kept after a 304");
    assert_eq!(conditional.load(Ordering::SeqCst), 1);

    *current_etag.lock().unwrap() = "\"v2\"".to_owned();
    let third = harness.fetch("src-reval", "a.jpg").await.unwrap();
    assert_eq!(third.bytes, b"\"v2\"", "a changed object is read again");
    assert_eq!(third.metadata.etag, "\"v2\"");
    assert_eq!(origin.requests(), 3);
}

/// A stalled origin does not stall revalidation of a held original: after
/// the revalidation timeout the held copy answers (stale-if-error), later
/// requests get it at once without asking the origin again for a while, and
/// a missing object is still an answer, never covered by the held copy.
#[tokio::test]
async fn stalled_origin_serves_the_held_original() {
    let harness = Harness::start_with(
        LARGE_CAP,
        &[
            "--original-fresh-seconds=0",
            "--origin-revalidate-timeout-ms=300",
        ],
    )
    .await;
    // 0: answer at once, 1: stall far past every timeout, 2: say 404.
    let mode = Arc::new(AtomicUsize::new(0));
    let current = mode.clone();
    let origin = ScriptedOrigin::start_paced(move |_| match current.load(Ordering::SeqCst) {
        0 => (Duration::ZERO, object_response(b"held bytes", "\"v1\"")),
        1 => (Duration::from_secs(60), object_response(b"late", "\"v2\"")),
        _ => (Duration::ZERO, not_found_response()),
    })
    .await;
    harness
        .registry
        .put(read_access("src-stall", &origin.endpoint, "", SECRET_KEY));
    let first = harness.fetch("src-stall", "a.jpg").await.unwrap();
    assert_eq!(first.bytes, b"held bytes");

    mode.store(1, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let stalled = harness.fetch("src-stall", "a.jpg").await.unwrap();
    let waited = started.elapsed();
    assert_eq!(stalled.bytes, b"held bytes", "the held copy answers");
    assert!(
        waited < Duration::from_secs(5),
        "waited {waited:?} for a stalled origin"
    );
    let asked = origin.requests();
    let again = harness.fetch("src-stall", "a.jpg").await.unwrap();
    assert_eq!(again.bytes, b"held bytes");
    assert_eq!(
        origin.requests(),
        asked,
        "a copy just served on error is not revalidated again at once"
    );

    // A 404 is the origin's answer: a held copy does not hide it.
    mode.store(0, Ordering::SeqCst);
    let held = harness.fetch("src-stall", "c.jpg").await.unwrap();
    assert_eq!(held.bytes, b"held bytes");
    mode.store(2, Ordering::SeqCst);
    let gone = harness.fetch("src-stall", "c.jpg").await.unwrap_err();
    assert_eq!(ErrorCode::of_status(&gone), ErrorCode::ObjectNotFound);
}

/// A caller holding a copy asks with its ETag: the origin is asked
/// conditionally, a 304 (or, from a store that ignores the condition, the
/// same ETag) answers `not_modified` with the origin's caching headers and
/// no bytes; a changed object streams in full with its own headers.
#[tokio::test]
async fn conditional_fetch_answers_not_modified_without_the_body() {
    let harness = Harness::start_with(LARGE_CAP, &["--original-fresh-seconds=0"]).await;
    let current_etag = Arc::new(Mutex::new("\"v1\"".to_owned()));
    let honours_condition = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (etag, honours) = (current_etag.clone(), honours_condition.clone());
    let origin = ScriptedOrigin::start_with(Duration::ZERO, move |head| {
        let etag = etag.lock().unwrap().clone();
        let asked = head
            .lines()
            .find_map(|line| line.strip_prefix("if-none-match: "))
            .map(str::trim);
        let caching = "Cache-Control: public, max-age=120\r\nExpires: Wed, 21 Oct 2037 07:28:00 GMT\r\n";
        if asked == Some(etag.as_str()) && honours.load(Ordering::SeqCst) {
            format!(
                "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n{caching}Connection: close\r\n\r\n"
            )
            .into_bytes()
        } else {
            let body = etag.as_bytes();
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\n{caching}Content-Type: image/jpeg\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(body);
            response
        }
    })
    .await;
    harness
        .registry
        .put(read_access("src-cond", &origin.endpoint, "", SECRET_KEY));
    let conditional = |etag: &str| FetchObjectRequest {
        source_id: "src-cond".to_owned(),
        path: "a.jpg".to_owned(),
        source_config_version: 1,
        if_none_match: etag.to_owned(),
        ..Default::default()
    };

    let full = harness.fetch("src-cond", "a.jpg").await.unwrap();
    assert_eq!(full.bytes, b"\"v1\"");
    assert_eq!(full.metadata.cache_control, "public, max-age=120");
    assert_eq!(full.metadata.expires, 2_139_722_880);
    assert!(!full.metadata.not_modified);

    // The cached copy is stale (fresh for 0 s): revalidated with a 304.
    let unchanged = harness.fetch_with(conditional("\"v1\"")).await.unwrap();
    assert!(unchanged.metadata.not_modified);
    assert!(unchanged.bytes.is_empty());
    assert_eq!(unchanged.metadata.etag, "\"v1\"");
    assert_eq!(unchanged.metadata.cache_control, "public, max-age=120");

    // No cached copy under this generation: the caller's ETag goes to the origin.
    let other_generation = FetchObjectRequest {
        cache_generation: "purged-1".to_owned(),
        ..conditional("\"v1\"")
    };
    let requests = origin.requests();
    let unchanged = harness.fetch_with(other_generation.clone()).await.unwrap();
    assert!(unchanged.metadata.not_modified);
    assert_eq!(unchanged.metadata.expires, 2_139_722_880);
    assert_eq!(origin.requests(), requests + 1);

    // A store that ignores If-None-Match: the same ETag still means unchanged.
    honours_condition.store(false, Ordering::SeqCst);
    let unchanged = harness.fetch_with(other_generation.clone()).await.unwrap();
    assert!(unchanged.metadata.not_modified);
    assert!(unchanged.bytes.is_empty());

    *current_etag.lock().unwrap() = "\"v2\"".to_owned();
    let changed = harness.fetch_with(other_generation).await.unwrap();
    assert!(!changed.metadata.not_modified);
    assert_eq!(changed.bytes, b"\"v2\"");
    assert_eq!(changed.metadata.etag, "\"v2\"");
}

/// Escape attempts answer OBJECT_NOT_FOUND without the registry or the origin being asked.
#[tokio::test]
async fn escape_paths_never_reach_the_origin() {
    let harness = Harness::start(LARGE_CAP).await;
    let origin = ScriptedOrigin::start(not_found_response()).await;
    harness.registry.put(read_access(
        "src-trip",
        &origin.endpoint,
        "tenant-a",
        SECRET_KEY,
    ));

    for path in [
        "../tenant-b/secret.jpg",
        "a/../../secret.jpg",
        "/cat.jpg",
        "//evil.example/cat.jpg",
        "\\cat.jpg",
        "",
        "..\\secret.jpg",
        "a\\..\\..\\secret.jpg",
        "cat\0.jpg",
        "cat\r\n.jpg",
    ] {
        let status = harness.fetch("src-trip", path).await.unwrap_err();
        assert_status(&status, ErrorCode::ObjectNotFound);
        assert_eq!(status.message(), "object not found", "{path:?}");
    }
    assert_eq!(origin.requests(), 0, "an escape path reached the origin");
    assert_eq!(harness.registry.calls_for("src-trip"), 0);

    // The same Source with an ordinary path does reach the origin, so the
    // zero above is not because the origin is unreachable.
    let status = harness.fetch("src-trip", "cat.jpg").await.unwrap_err();
    assert_status(&status, ErrorCode::ObjectNotFound);
    assert_eq!(origin.requests(), 1);
}

/// A Source the registry does not know is NOT_FOUND with reason SOURCE_NOT_FOUND.
#[tokio::test]
async fn unknown_source_is_source_not_found() {
    let harness = Harness::start(LARGE_CAP).await;

    let status = harness.fetch("src-nobody", "cat.jpg").await.unwrap_err();

    assert_status(&status, ErrorCode::SourceNotFound);
}

/// A Source the registry reports as disabled is FAILED_PRECONDITION with reason SOURCE_DISABLED.
#[tokio::test]
async fn disabled_source_is_source_disabled() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.registry.disable("src-off");

    let status = harness.fetch("src-off", "cat.jpg").await.unwrap_err();

    assert_status(&status, ErrorCode::SourceDisabled);
}

/// A Source the registry says does not serve is SOURCE_NOT_FOUND, and the origin is never asked.
#[tokio::test]
async fn not_serving_source_is_source_not_found_without_s3() {
    let harness = Harness::start(LARGE_CAP).await;
    let origin = ScriptedOrigin::start(not_found_response()).await;
    let mut off = read_access("src-off", &origin.endpoint, "", SECRET_KEY);
    off.serving = false;
    harness.registry.put(off);

    let status = harness.fetch("src-off", "cat.jpg").await.unwrap_err();

    assert_status(&status, ErrorCode::SourceNotFound);
    assert_eq!(status.message(), "source not found");
    assert_eq!(origin.requests(), 0, "a non-serving Source reached S3");
}

/// A Source that stops serving at a new config version is refused at once, also to callers still on the old version.
#[tokio::test]
async fn source_that_stops_serving_drops_its_client() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.put_object("cat.jpg", b"meow");
    harness.add_source("src-a", "", SECRET_KEY);
    let request = |version| FetchObjectRequest {
        source_id: "src-a".to_owned(),
        path: "cat.jpg".to_owned(),
        max_bytes: 0,
        source_config_version: version,
        ..Default::default()
    };
    assert_eq!(harness.fetch_with(request(1)).await.unwrap().bytes, b"meow");

    let mut disabled = read_access("src-a", &harness.s3.endpoint, "", SECRET_KEY);
    disabled.config_version = 2;
    disabled.serving = false;
    harness.registry.put(disabled);

    let status = harness.fetch_with(request(2)).await.unwrap_err();
    assert_status(&status, ErrorCode::SourceNotFound);
    let status = harness.fetch_with(request(1)).await.unwrap_err();
    assert_status(&status, ErrorCode::SourceNotFound);
}

/// A request without a source id is INVALID_ARGUMENT naming the field.
#[tokio::test]
async fn empty_source_id_is_invalid_argument() {
    let harness = Harness::start(LARGE_CAP).await;

    let status = harness.fetch("", "cat.jpg").await.unwrap_err();

    assert_status(&status, ErrorCode::InvalidArgument);
    assert!(status.message().starts_with("source_id:"), "{status:?}");
}

/// Read access is loaded once per config version and reloaded when a newer version is asked for.
#[tokio::test]
async fn read_access_is_cached_per_config_version() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.put_object("old/cat.jpg", b"old prefix");
    harness.put_object("new/cat.jpg", b"new prefix");
    harness.add_source("src-a", "old", SECRET_KEY);

    let request = |version| FetchObjectRequest {
        source_id: "src-a".to_owned(),
        path: "cat.jpg".to_owned(),
        max_bytes: 0,
        source_config_version: version,
        ..Default::default()
    };
    assert_eq!(
        harness.fetch_with(request(1)).await.unwrap().bytes,
        b"old prefix"
    );
    assert_eq!(
        harness.fetch_with(request(1)).await.unwrap().bytes,
        b"old prefix"
    );
    assert_eq!(harness.registry.calls_for("src-a"), 1);

    let mut changed = read_access("src-a", &harness.s3.endpoint, "new", SECRET_KEY);
    changed.config_version = 2;
    harness.registry.put(changed);
    // A caller still on version 1 keeps the cached client.
    assert_eq!(
        harness.fetch_with(request(1)).await.unwrap().bytes,
        b"old prefix"
    );
    assert_eq!(harness.registry.calls_for("src-a"), 1);
    // A caller that knows version 2 makes the fetcher reload.
    assert_eq!(
        harness.fetch_with(request(2)).await.unwrap().bytes,
        b"new prefix"
    );
    assert_eq!(
        harness.fetch_with(request(1)).await.unwrap().bytes,
        b"new prefix"
    );
    assert_eq!(harness.registry.calls_for("src-a"), 2);
}

/// The secret never appears in anything logged at TRACE, through successes and refusals.
#[tokio::test]
async fn secret_never_reaches_the_logs() {
    let harness = Harness::start(LARGE_CAP).await;
    harness.put_object("cat.jpg", b"meow");
    harness.add_source("src-a", "", SECRET_KEY);
    let wrong_secret = "fetcher-wrong-secret-91d0b6f2";
    harness.registry.put(read_access(
        "src-bad",
        &harness.s3.endpoint,
        "",
        wrong_secret,
    ));

    harness.fetch("src-a", "cat.jpg").await.unwrap();
    harness.fetch("src-bad", "cat.jpg").await.unwrap_err();
    harness.fetch("src-a", "missing.jpg").await.unwrap_err();

    let logs = captured_logs();
    // The capture works: the S3 GET span is in there.
    assert!(
        logs.contains("s3.get_object"),
        "no fetcher logs were captured"
    );
    assert!(!logs.contains(SECRET_KEY), "the S3 secret was logged");
    assert!(!logs.contains(wrong_secret), "the wrong secret was logged");
}
