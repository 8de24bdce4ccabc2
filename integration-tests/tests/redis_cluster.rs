//! The whole mesh on a real Redis Cluster (three masters, three replicas,
//! made with `redis-cli --cluster create`): hits, purges and the stampede
//! guard work as on one server, one Source's entries land on more than one
//! shard, and when a master is killed under load every request is still
//! answered (as a miss at worst) and hits return once its replica has
//! taken over.

use std::time::{Duration, Instant};

use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{HttpResponse, Mesh, MeshOptions, S3_SECRET_KEY};
use serde_json::json;

async fn cluster_mesh() -> Mesh {
    let mesh = Mesh::start(MeshOptions {
        redis_cluster: true,
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts on a Redis Cluster");
    for i in 0..12 {
        mesh.put_object(
            &format!("photos/img-{i}.jpg"),
            &fixtures::jpeg(400 + i, 300).unwrap(),
        )
        .unwrap();
    }
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    mesh
}

async fn get(mesh: &Mesh, path: &str) -> HttpResponse {
    let response = mesh.get("demo", path).await.unwrap();
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response
}

fn cache_status(response: &HttpResponse) -> String {
    response
        .header("x-imgmesh-cache")
        .unwrap_or_default()
        .to_owned()
}

async fn renders(mesh: &Mesh) -> f64 {
    mesh.metric("renderer", "imgmesh_renders_total", "")
        .await
        .unwrap()
}

/// Misses then hits for twelve assets, their entries on at least two of
/// the three masters; a purge of one asset and of a directory make the
/// next request a miss; fifty concurrent cold requests render once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_caches_purges_and_renders_once_on_a_cluster() {
    let mesh = cluster_mesh().await;
    let paths: Vec<String> = (0..12)
        .map(|i| format!("/photos/img-{i}.jpg?w=64"))
        .collect();
    for path in &paths {
        assert_eq!(cache_status(&get(&mesh, path).await), "miss", "{path}");
    }
    for path in &paths {
        assert_eq!(cache_status(&get(&mesh, path).await), "hit", "{path}");
    }
    let cluster = mesh.redis_cluster.as_ref().unwrap();
    let mut shards = 0;
    for port in cluster.masters().await {
        if cluster.keys_on(port, "imgmesh:*:d:*").await > 0 {
            shards += 1;
        }
    }
    assert!(shards >= 2, "one Source's entries sit on {shards} shard(s)");

    let purged = mesh
        .admin(
            "POST",
            "/v1/sources/demo/purge",
            Some(&json!({"path": "/photos/img-3.jpg"})),
        )
        .await
        .unwrap();
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert_eq!(cache_status(&get(&mesh, &paths[3]).await), "miss");
    assert_eq!(cache_status(&get(&mesh, &paths[4]).await), "hit");
    let purged = mesh
        .admin(
            "POST",
            "/v1/sources/demo/purge",
            Some(&json!({"prefix": "photos/"})),
        )
        .await
        .unwrap();
    assert_eq!(purged.status, 200, "{}", purged.text());
    for path in &paths {
        assert_eq!(
            cache_status(&get(&mesh, path).await),
            "miss",
            "{path} after the directory purge"
        );
    }

    let before = renders(&mesh).await;
    let requests = (0..50).map(|_| mesh.get("demo", "/photos/img-0.jpg?w=300&fm=webp"));
    let answers = futures::future::join_all(requests).await;
    for answer in &answers {
        let answer = answer.as_ref().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(
        renders(&mesh).await - before,
        1.0,
        "fifty concurrent cold requests, renders"
    );
}

/// Kill the master holding some entries while requests keep coming: every
/// request is answered 200 (misses while its slots have no master), and
/// every path is a hit again once a replica has been promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_costs_hits_not_requests() {
    let mut mesh = cluster_mesh().await;
    let paths: Vec<String> = (0..12)
        .map(|i| format!("/photos/img-{i}.jpg?w=80"))
        .collect();
    for path in &paths {
        get(&mesh, path).await;
    }
    let cluster = mesh.redis_cluster.as_mut().unwrap();
    let mut victim = None;
    for port in cluster.masters().await {
        if cluster.keys_on(port, "imgmesh:*:d:*").await > 0 {
            victim = Some(port);
            break;
        }
    }
    cluster.kill(victim.expect("some master holds entries"));

    let killed = Instant::now();
    let mut answered = 0;
    let mut misses = 0;
    loop {
        let mut all_hit = true;
        for path in &paths {
            let answer = get(&mesh, path).await;
            answered += 1;
            if cache_status(&answer) != "hit" {
                all_hit = false;
                misses += 1;
            }
        }
        if all_hit {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "hits never came back after the failover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "after killing a master: {answered} requests answered 200, {misses} as misses, all hits again {:?} after the kill",
        killed.elapsed()
    );
    let cluster = mesh.redis_cluster.as_ref().unwrap();
    assert_eq!(cluster.masters().await.len(), 3, "a replica took over");
}
