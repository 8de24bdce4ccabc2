//! Tests of the registry's operations, most of them on both SQLite and
//! PostgreSQL (see [`crate::test_db`]).

mod crud;
mod deploys;
mod listing;
mod opening;
mod routing;
mod secrets;
mod secure_tokens;
mod uploads;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt as _;
use secrecy::ExposeSecret;

use super::*;
use crate::credentials_crypto::MasterKey;
use crate::source::update_mask::TestValue::{Flag, List, Number, Text};
use crate::source::update_mask::test_update;
use crate::test_db::{TestDb, on_both_backends, test_keys};
use imgmesh_test_support::s3::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server};
use imgmesh_test_support::s3_policy::{Policy, PolicyFront, S3Operation};

/// The read secret every test Source is created with.
const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzSECRET";
/// The upload secret tests give a Source.
const UPLOAD_SECRET: &str = "upload-secret-9f8e7d6c5b4a";

/// A create request for a Source named and routed `name`, on a bucket
/// nobody serves (deploys of it fail).
fn create_request(name: &str) -> proto::CreateSourceRequest {
    proto::CreateSourceRequest {
        name: name.into(),
        routing: Some(proto::Routing {
            subdomain: name.into(),
            custom_domains: Vec::new(),
        }),
        location: Some(proto::Location {
            bucket: "images".into(),
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9000".into(),
            path_prefix: "photos".into(),
        }),
        access_key: Some(proto::AccessKey {
            id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: SECRET.into(),
        }),
        default_params: "auto=format".into(),
        cache_policy: Some(proto::CachePolicy {
            ttl_seconds: 3600,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether `error` is SOURCE_NOT_FOUND.
fn is_not_found(error: &RegistryError) -> bool {
    matches!(error, RegistryError::NotFound(_))
}

/// Awaits every task, panicking if one panicked.
async fn join_handles<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}

/// A create request for a Source on `s3`'s bucket `images`.
fn s3_request(name: &str, s3: &S3Server, secret: &str) -> proto::CreateSourceRequest {
    let mut request = create_request(name);
    request.location.get_or_insert_default().endpoint = s3.endpoint.clone();
    request.access_key = Some(proto::AccessKey {
        id: S3_ACCESS_KEY.into(),
        secret: secret.into(),
    });
    request
}

/// Polls until the Source's deploy is no longer in flight.
async fn deployed(registry: &Registry, name: &str) -> proto::Source {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let source = registry.get_source(name).await.unwrap();
        if source.deploy_state().status() != proto::SourceStatus::Deploying {
            return source;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deploy of {name} still running after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Marks Source `name` deployed without touching S3 (for tests of what
/// only a deployed Source may do).
async fn mark_deployed(registry: &Registry, name: &str) {
    let record = registry
        .store
        .start_deploy(name, "test", unix_now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        registry
            .store
            .finish_deploy(
                &record.id,
                "test",
                proto::SourceStatus::Deployed,
                "",
                unix_now()
            )
            .await
            .unwrap()
    );
}
