//! Deploys: queued, verified against a real S3 server, superseded by
//! edits or newer deploys, resumed after a restart.

use super::*;

/// A Source that is not deployed does not serve.
async fn undeployed_source_does_not_serve(db: TestDb) {
    let registry = db.open().await;
    let demo = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    assert!(!registry.read_access(&demo.id).await.unwrap().serving);
}

/// Deploy queues (DEPLOYING, new version), verifies the bucket in the
/// background and records DEPLOYED with its time; then the Source serves.
async fn deploy_succeeds_and_the_source_serves(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3Server::start(&["images"]).await;
    s3.put_object("images", "photos/cat.jpg", b"jpeg");
    let created = registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();
    let queued = registry.deploy_source("demo").await.unwrap();
    assert_eq!(
        queued.deploy_state().status(),
        proto::SourceStatus::Deploying
    );
    assert_eq!(queued.config_version, created.config_version + 1);
    let done = deployed(&registry, "demo").await;
    assert_eq!(
        done.deploy_state().status(),
        proto::SourceStatus::Deployed,
        "{}",
        done.deploy_state().message
    );
    assert!(done.deploy_state().last_deployed_at >= created.created_at);
    assert_eq!(done.config_version, queued.config_version + 1);
    assert!(registry.read_access(&created.id).await.unwrap().serving);
}

/// A failed deploy records FAILED with the reason; the Source does not
/// serve, and the reason never holds the secret.
async fn deploy_failure_records_the_reason(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3Server::start(&["images"]).await;
    let created = registry
        .create_source(&s3_request("demo", &s3, "wrong-secret-canary"))
        .await
        .unwrap();
    registry.deploy_source(&created.id).await.unwrap();
    let done = deployed(&registry, "demo").await;
    assert_eq!(done.deploy_state().status(), proto::SourceStatus::Failed);
    assert_eq!(done.deploy_state().message, "the credentials were rejected");
    assert!(done.deploy_state().last_deployed_at > 0);
    assert!(!registry.read_access(&created.id).await.unwrap().serving);
    assert!(is_not_found(
        &registry.deploy_source("nobody").await.unwrap_err()
    ));
}

/// Editing what a deploy verifies makes the Source pending (not
/// serving); other edits keep it deployed; every edit bumps the version;
/// a disabled Source does not serve.
async fn edits_that_need_a_deploy_make_the_source_pending(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3Server::start(&["images"]).await;
    let created = registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();
    registry.deploy_source("demo").await.unwrap();
    let live = deployed(&registry, "demo").await;
    assert_eq!(live.deploy_state().status(), proto::SourceStatus::Deployed);

    let update = |request: proto::UpdateSourceRequest| {
        let registry = registry.clone();
        async move { registry.update_source(&request).await.unwrap() }
    };
    let kept = update(test_update(
        "demo",
        &[("default_params", Text("w=100".into()))],
    ))
    .await;
    assert_eq!(kept.deploy_state().status(), proto::SourceStatus::Deployed);
    assert_eq!(kept.config_version, live.config_version + 1);

    let disabled = update(test_update("demo", &[("enabled", Flag(false))])).await;
    assert_eq!(
        disabled.deploy_state().status(),
        proto::SourceStatus::Deployed
    );
    assert!(!registry.read_access(&created.id).await.unwrap().serving);
    update(test_update("demo", &[("enabled", Flag(true))])).await;
    assert!(registry.read_access(&created.id).await.unwrap().serving);

    let pending = update(test_update(
        "demo",
        &[("location.path_prefix", Text("other".into()))],
    ))
    .await;
    assert_eq!(
        pending.deploy_state().status(),
        proto::SourceStatus::Pending
    );
    assert!(
        pending.deploy_state().message.contains("deploy"),
        "{}",
        pending.deploy_state().message
    );
    assert_eq!(
        pending.deploy_state().last_deployed_at,
        live.deploy_state().last_deployed_at
    );
    assert!(!registry.read_access(&created.id).await.unwrap().serving);
}

/// A deploy superseded by an edit that needs a new deploy, or by a newer
/// deploy, records nothing.
async fn superseded_deploys_record_nothing(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let store = &registry.store;
    store
        .start_deploy("demo", "first", 10)
        .await
        .unwrap()
        .unwrap();
    store
        .start_deploy("demo", "second", 11)
        .await
        .unwrap()
        .unwrap();
    let first = store
        .finish_deploy(&created.id, "first", proto::SourceStatus::Deployed, "", 12)
        .await
        .unwrap();
    assert!(!first, "a newer deploy supersedes the first");
    registry
        .update_source(&test_update(
            "demo",
            &[("location.bucket", Text("other-bucket".into()))],
        ))
        .await
        .unwrap();
    let second = store
        .finish_deploy(&created.id, "second", proto::SourceStatus::Deployed, "", 12)
        .await
        .unwrap();
    assert!(!second, "an edit of the bucket supersedes the second");
    let source = registry.get_source("demo").await.unwrap();
    assert_eq!(source.deploy_state().status(), proto::SourceStatus::Pending);
    assert_eq!(source.deploy_state().last_deployed_at, 0);
}

/// A deploy left in flight by a stopped registry runs when it reopens.
async fn interrupted_deploys_resume_at_open(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3Server::start(&["images"]).await;
    registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();
    // Queued in the database, but never run by this instance.
    registry
        .store
        .start_deploy("demo", "interrupted", unix_now())
        .await
        .unwrap();
    registry.close().await;
    let reopened = db.open().await;
    let done = deployed(&reopened, "demo").await;
    assert_eq!(
        done.deploy_state().status(),
        proto::SourceStatus::Deployed,
        "{}",
        done.deploy_state().message
    );
}

on_both_backends!(
    undeployed_source_does_not_serve,
    deploy_succeeds_and_the_source_serves,
    deploy_failure_records_the_reason,
    edits_that_need_a_deploy_make_the_source_pending,
    superseded_deploys_record_nothing,
    interrupted_deploys_resume_at_open,
);
