//! Master-key rotation while serving (docs/operations.md's rollout): the
//! registries run with the new key and the old one as previous,
//! `imgmesh-source-registry rotate-master-key` re-wraps every secret while
//! image requests and credential reads keep coming, none fails, and
//! afterwards the old key alone opens no record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use imgmesh_integration_tests::{
    BASE_DOMAIN, Mesh, MeshOptions, S3_SECRET_KEY, binary_path, fixtures, get,
};
use imgmesh_proto::registry::v1::GetReadAccessRequest;
use imgmesh_proto::registry::v1::source_credentials_service_client::SourceCredentialsServiceClient;

/// The Sources the load spreads over.
const SOURCES: [&str; 3] = ["rekey-a", "rekey-b", "rekey-c"];

/// Requests each load worker sends at most (the load is bounded even if the
/// rotation hangs).
const MAX_REQUESTS_PER_WORKER: u64 = 400;

/// Image requests and credential reads running at once.
const WORKERS: u64 = 4;

/// Requests that must succeed after the rotation before the load stops.
const REQUESTS_AFTER_ROTATION: u64 = 20;

/// While four workers request images through a gateway whose registry runs
/// with the new master key (the old as previous) and read credentials from
/// that registry as the fetcher, `rotate-master-key` re-wraps every secret:
/// no request fails, every Source serves with the new key alone afterwards,
/// and a registry given only the old key refuses to start because every
/// stored secret is wrapped by a key it does not have.
#[tokio::test]
async fn master_key_rotation_under_load() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photo.jpg", &fixtures::jpeg(640, 480).unwrap())
        .unwrap();
    let mut ids = Vec::new();
    for name in SOURCES {
        let created = mesh.create_source(name, S3_SECRET_KEY, &[]).await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    // The rollout: master.key becomes the new key, the old one is kept as
    // previous; a registry, fetcher, renderer and gateway run on them.
    let master_key = mesh.dir.path().join("master.key");
    let old_key = mesh.dir.path().join("old.key");
    std::fs::copy(&master_key, &old_key).unwrap();
    std::fs::write(&master_key, "6b".repeat(32)).unwrap();
    let previous = format!("--previous-master-key-file={}", old_key.display());
    let (mut registry, registry_url, _) = mesh
        .spawn_registry_on(
            "127.0.0.1:0",
            &[
                previous.clone(),
                "--credentials-listen=127.0.0.1:0".to_owned(),
            ],
        )
        .await
        .unwrap();
    let credentials_url = format!(
        "http://{}",
        registry.listening("credentials").await.unwrap()
    );
    let (_fetcher, fetcher_url, _) = mesh.spawn_fetcher_with(&credentials_url).await.unwrap();
    let (_renderer, renderer_url, _) = mesh
        .spawn_renderer_with("127.0.0.1:0", &fetcher_url)
        .await
        .unwrap();
    let (_gateway, gateway_addr, _) = mesh
        .spawn_gateway_with(&registry_url, &renderer_url, &["--source-cache-ttl-ms=50"])
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (stop, succeeded, ids) = (stop.clone(), succeeded.clone(), ids.clone());
        let credentials = SourceCredentialsServiceClient::new(
            mesh.grpc_channel(&credentials_url, "fetcher").unwrap(),
        );
        workers.push(tokio::spawn(async move {
            let mut credentials = credentials;
            let mut failures = Vec::new();
            for n in 0..MAX_REQUESTS_PER_WORKER {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let source = usize::try_from(n % 3).unwrap();
                let outcome = if worker % 2 == 0 {
                    // A new width each time: a miss, so the renderer fetches.
                    let path = format!("/photo.jpg?w={}", 40 + worker * 1_000 + n);
                    let host = format!("{}.{BASE_DOMAIN}", SOURCES[source]);
                    match get(gateway_addr, &host, &path, &[]).await {
                        Ok(response) if response.status == 200 => Ok(()),
                        Ok(response) => Err(format!("{path}: {}", response.status)),
                        Err(error) => Err(format!("{path}: {error:#}")),
                    }
                } else {
                    let read = credentials
                        .get_read_access(GetReadAccessRequest {
                            source_id: ids[source].clone(),
                        })
                        .await;
                    match read {
                        Ok(access) if access.get_ref().secret_access_key == S3_SECRET_KEY => Ok(()),
                        Ok(_) => Err("GetReadAccess: a wrong secret".to_owned()),
                        Err(status) => Err(format!("GetReadAccess: {status}")),
                    }
                };
                match outcome {
                    Ok(()) => {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => failures.push(failure),
                }
            }
            failures
        }));
    }

    // Rotate once the load is flowing.
    wait_for(&succeeded, WORKERS * 5).await;
    let rotated = tokio::process::Command::new(binary_path("imgmesh-source-registry").unwrap())
        .env_clear()
        .arg("rotate-master-key")
        .arg(format!(
            "--database={}",
            mesh.dir.path().join("registry.db").display()
        ))
        .arg(format!("--master-key-file={}", master_key.display()))
        .arg(&previous)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    // One read secret per Source.
    assert!(stdout.contains("done: 3 secret(s) re-wrapped"), "{stdout}");
    let at_rotation = succeeded.load(Ordering::Relaxed);
    wait_for(&succeeded, at_rotation + REQUESTS_AFTER_ROTATION).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    assert!(failures.is_empty(), "failed during rotation: {failures:?}");
    drop(registry);

    // The new key alone opens every Source's secret.
    let (mut registry, _, _) = mesh
        .spawn_registry_on(
            "127.0.0.1:0",
            &["--credentials-listen=127.0.0.1:0".to_owned()],
        )
        .await
        .unwrap();
    let credentials_url = format!(
        "http://{}",
        registry.listening("credentials").await.unwrap()
    );
    let mut credentials = SourceCredentialsServiceClient::new(
        mesh.grpc_channel(&credentials_url, "fetcher").unwrap(),
    );
    for id in &ids {
        let access = credentials
            .get_read_access(GetReadAccessRequest {
                source_id: id.clone(),
            })
            .await
            .expect("the new key opens the secret");
        assert_eq!(access.get_ref().secret_access_key, S3_SECRET_KEY);
    }

    // The old key alone opens nothing: every stored secret is wrapped by
    // the new one.
    let refused = tokio::process::Command::new(binary_path("imgmesh-source-registry").unwrap())
        .env_clear()
        .args(mesh.certs.tls_args("source-registry"))
        .arg("--listen=127.0.0.1:0")
        .arg("--credentials-listen=127.0.0.1:0")
        .arg("--metrics-listen=127.0.0.1:0")
        .arg(format!(
            "--database={}",
            mesh.dir.path().join("registry.db").display()
        ))
        .arg(format!("--master-key-file={}", old_key.display()))
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("3 stored secret(s) are wrapped by master key(s)"),
        "{stderr}"
    );
}

/// Waits (at most 120 s) until `succeeded` reaches `count`.
async fn wait_for(succeeded: &AtomicU64, count: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while succeeded.load(Ordering::Relaxed) < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} requests succeeded in time",
            succeeded.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
