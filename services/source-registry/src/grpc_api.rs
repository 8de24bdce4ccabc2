//! The gRPC face of the registry: `SourceRegistryService` for admins and the
//! gateway, `SourceCredentialsService` for the fetcher.
//!
//! Handlers only translate between messages and [`Registry`] calls. Each one
//! opens a span with safe fields (source id, name or host, never a secret or
//! a whole request), so registry work shows up in traces.

use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::source_credentials_service_server::SourceCredentialsService;
use imgmesh_proto::registry::v1::source_registry_service_server::SourceRegistryService;
use imgmesh_s3_client::BucketAccess;
use secrecy::ExposeSecret as _;
use tonic::{Request, Response, Status};
use tracing::field;

use crate::api_key_store::{ApiKey, ApiKeyStore, SourceScope};
use crate::clock::unix_now;
use crate::registry::Registry;
use crate::{object_listing, object_upload};

/// Serves `imgmesh.registry.v1.SourceRegistryService`.
#[derive(Debug, Clone)]
pub(crate) struct SourceRegistryApi {
    registry: Registry,
    api_keys: ApiKeyStore,
}

// === impl SourceRegistryApi ===

impl SourceRegistryApi {
    /// The service backed by `registry`.
    pub(crate) fn new(registry: Registry) -> Self {
        let api_keys = ApiKeyStore::new(registry.store().pool().clone());
        SourceRegistryApi { registry, api_keys }
    }
}

#[tonic::async_trait]
impl SourceRegistryService for SourceRegistryApi {
    #[tracing::instrument(
        name = "registry.create_source",
        skip_all,
        fields(source.name = %request.get_ref().name, source.id = field::Empty)
    )]
    async fn create_source(
        &self,
        request: Request<proto::CreateSourceRequest>,
    ) -> Result<Response<proto::CreateSourceResponse>, Status> {
        let source = self.registry.create_source(request.get_ref()).await?;
        record_source_id(&source.id);
        tracing::info!(
            source.id = %source.id,
            source.subdomain = %source.subdomain,
            "source created"
        );
        Ok(Response::new(proto::CreateSourceResponse {
            source: Some(source),
        }))
    }

    #[tracing::instrument(
        name = "registry.get_source",
        skip_all,
        fields(source.id_or_name = %request.get_ref().id_or_name, source.id = field::Empty)
    )]
    async fn get_source(
        &self,
        request: Request<proto::GetSourceRequest>,
    ) -> Result<Response<proto::GetSourceResponse>, Status> {
        let source = self
            .registry
            .get_source(&request.get_ref().id_or_name)
            .await?;
        record_source_id(&source.id);
        Ok(Response::new(proto::GetSourceResponse {
            source: Some(source),
        }))
    }

    #[tracing::instrument(name = "registry.list_sources", skip_all, fields(count = field::Empty))]
    async fn list_sources(
        &self,
        _request: Request<proto::ListSourcesRequest>,
    ) -> Result<Response<proto::ListSourcesResponse>, Status> {
        let sources = self.registry.list_sources().await?;
        tracing::Span::current().record("count", sources.len());
        Ok(Response::new(proto::ListSourcesResponse { sources }))
    }

    #[tracing::instrument(
        name = "registry.update_source",
        skip_all,
        fields(source.id_or_name = %request.get_ref().id_or_name, source.id = field::Empty)
    )]
    async fn update_source(
        &self,
        request: Request<proto::UpdateSourceRequest>,
    ) -> Result<Response<proto::UpdateSourceResponse>, Status> {
        let source = self.registry.update_source(request.get_ref()).await?;
        record_source_id(&source.id);
        tracing::info!(
            source.id = %source.id,
            config_version = source.config_version,
            "source updated"
        );
        Ok(Response::new(proto::UpdateSourceResponse {
            source: Some(source),
        }))
    }

    #[tracing::instrument(
        name = "registry.delete_source",
        skip_all,
        fields(source.id_or_name = %request.get_ref().id_or_name, source.id = field::Empty)
    )]
    async fn delete_source(
        &self,
        request: Request<proto::DeleteSourceRequest>,
    ) -> Result<Response<proto::DeleteSourceResponse>, Status> {
        let id = self
            .registry
            .delete_source(&request.get_ref().id_or_name)
            .await?;
        record_source_id(&id);
        tracing::info!(source.id = %id, "source deleted");
        Ok(Response::new(proto::DeleteSourceResponse {}))
    }

    #[tracing::instrument(
        name = "registry.resolve_host",
        skip_all,
        fields(host = %request.get_ref().host, source.id = field::Empty)
    )]
    async fn resolve_host(
        &self,
        request: Request<proto::ResolveHostRequest>,
    ) -> Result<Response<proto::ResolveHostResponse>, Status> {
        let request = request.get_ref();
        let resolved = self
            .registry
            .resolve_host(&request.host, request.custom_domain)
            .await?;
        record_source_id(&resolved.source.id);
        Ok(Response::new(proto::ResolveHostResponse {
            source: Some(resolved.source),
            secure_url_tokens: resolved.secure_url_tokens,
        }))
    }

    #[tracing::instrument(
        name = "registry.deploy_source",
        skip_all,
        fields(source.id_or_name = %request.get_ref().id_or_name, source.id = field::Empty)
    )]
    async fn deploy_source(
        &self,
        request: Request<proto::DeploySourceRequest>,
    ) -> Result<Response<proto::DeploySourceResponse>, Status> {
        let source = self
            .registry
            .deploy_source(&request.get_ref().id_or_name)
            .await?;
        record_source_id(&source.id);
        tracing::info!(source.id = %source.id, "deploy queued");
        Ok(Response::new(proto::DeploySourceResponse {
            source: Some(source),
        }))
    }

    #[tracing::instrument(
        name = "registry.rotate_secure_token",
        skip_all,
        fields(source.id_or_name = %request.get_ref().id_or_name, source.id = field::Empty)
    )]
    async fn rotate_secure_token(
        &self,
        request: Request<proto::RotateSecureTokenRequest>,
    ) -> Result<Response<proto::RotateSecureTokenResponse>, Status> {
        let request = request.get_ref();
        let (token, source) = self
            .registry
            .rotate_secure_token(&request.id_or_name, request.grace_period_seconds)
            .await?;
        record_source_id(&source.id);
        tracing::info!(
            source.id = %source.id,
            grace_period_seconds = request.grace_period_seconds,
            active_secure_tokens = source.active_secure_tokens,
            "secure url token rotated"
        );
        // The only time a token leaves the registry for an admin: once, in
        // this response.
        Ok(Response::new(proto::RotateSecureTokenResponse {
            token: token.expose_secret().to_owned(),
            source: Some(source),
        }))
    }

    #[tracing::instrument(
        name = "registry.upload_object",
        skip_all,
        fields(object.key = field::Empty, object.size = field::Empty)
    )]
    async fn upload_object(
        &self,
        request: Request<tonic::Streaming<proto::UploadObjectRequest>>,
    ) -> Result<Response<proto::UploadObjectResponse>, Status> {
        let stored = object_upload::upload_object(&self.registry, request.into_inner()).await?;
        let span = tracing::Span::current();
        span.record("object.key", stored.key.as_str());
        span.record("object.size", stored.size);
        tracing::info!(object.key = %stored.key, object.size = stored.size, "object uploaded");
        Ok(Response::new(stored))
    }

    #[tracing::instrument(
        name = "registry.list_objects",
        skip_all,
        fields(source.id_or_name = %request.get_ref().id_or_name, objects = field::Empty)
    )]
    async fn list_objects(
        &self,
        request: Request<proto::ListObjectsRequest>,
    ) -> Result<Response<proto::ListObjectsResponse>, Status> {
        let page = object_listing::list_objects(&self.registry, request.get_ref()).await?;
        tracing::Span::current().record("objects", page.objects.len());
        Ok(Response::new(page))
    }

    #[tracing::instrument(
        name = "registry.create_api_key",
        skip_all,
        fields(api_key.id = field::Empty)
    )]
    async fn create_api_key(
        &self,
        request: Request<proto::CreateApiKeyRequest>,
    ) -> Result<Response<proto::CreateApiKeyResponse>, Status> {
        let request = request.into_inner();
        let sources = if request.all_sources {
            if !request.source_ids.is_empty() {
                return Err(imgmesh_errors::invalid_field(
                    "source_ids",
                    "must be empty when all_sources is set",
                ));
            }
            SourceScope::All
        } else {
            SourceScope::Only(request.source_ids)
        };
        let (key, secret) = self
            .api_keys
            .create(&request.name, &request.operations, sources, unix_now())
            .await?;
        tracing::Span::current().record("api_key.id", key.id.as_str());
        tracing::info!(api_key.id = %key.id, api_key.name = %key.name, "api key created");
        // The only time a key leaves the registry: once, in this response.
        Ok(Response::new(proto::CreateApiKeyResponse {
            api_key: Some(api_key_message(key)),
            secret,
        }))
    }

    #[tracing::instrument(name = "registry.list_api_keys", skip_all, fields(count = field::Empty))]
    async fn list_api_keys(
        &self,
        _request: Request<proto::ListApiKeysRequest>,
    ) -> Result<Response<proto::ListApiKeysResponse>, Status> {
        let keys = self.api_keys.list().await?;
        tracing::Span::current().record("count", keys.len());
        Ok(Response::new(proto::ListApiKeysResponse {
            api_keys: keys.into_iter().map(api_key_message).collect(),
        }))
    }

    #[tracing::instrument(
        name = "registry.revoke_api_key",
        skip_all,
        fields(api_key.id = %request.get_ref().id)
    )]
    async fn revoke_api_key(
        &self,
        request: Request<proto::RevokeApiKeyRequest>,
    ) -> Result<Response<proto::RevokeApiKeyResponse>, Status> {
        let id = &request.get_ref().id;
        let Some(key) = self.api_keys.revoke(id, unix_now()).await? else {
            return Err(imgmesh_errors::ErrorCode::ApiKeyNotFound.status_with(
                format!("api key {id:?} not found"),
                [("api_key_id", id.clone())],
            ));
        };
        tracing::info!(api_key.id = %key.id, "api key revoked");
        Ok(Response::new(proto::RevokeApiKeyResponse {
            api_key: Some(api_key_message(key)),
        }))
    }

    #[tracing::instrument(
        name = "registry.authenticate_api_key",
        skip_all,
        fields(api_key.id = field::Empty)
    )]
    async fn authenticate_api_key(
        &self,
        request: Request<proto::AuthenticateApiKeyRequest>,
    ) -> Result<Response<proto::AuthenticateApiKeyResponse>, Status> {
        let key = self
            .api_keys
            .authenticate(&request.get_ref().secret)
            .await?;
        if let Some(key) = &key {
            tracing::Span::current().record("api_key.id", key.id.as_str());
        }
        Ok(Response::new(proto::AuthenticateApiKeyResponse {
            api_key: key.map(api_key_message),
        }))
    }
}

/// The wire form of a stored key.
fn api_key_message(key: ApiKey) -> proto::ApiKey {
    let (all_sources, source_ids) = match key.sources {
        SourceScope::All => (true, Vec::new()),
        SourceScope::Only(ids) => (false, ids),
    };
    proto::ApiKey {
        id: key.id,
        name: key.name,
        operations: key.operations,
        all_sources,
        source_ids,
        created_at_unix: key.created_at,
        revoked_at_unix: key.revoked_at,
    }
}

/// Serves `imgmesh.registry.v1.SourceCredentialsService` (internal only).
#[derive(Debug, Clone)]
pub(crate) struct SourceCredentialsApi {
    registry: Registry,
}

// === impl SourceCredentialsApi ===

impl SourceCredentialsApi {
    /// The service backed by `registry`.
    pub(crate) fn new(registry: Registry) -> Self {
        SourceCredentialsApi { registry }
    }
}

#[tonic::async_trait]
impl SourceCredentialsService for SourceCredentialsApi {
    #[tracing::instrument(
        name = "registry.get_read_access",
        skip_all,
        fields(source.id = %request.get_ref().source_id, config_version = field::Empty)
    )]
    async fn get_read_access(
        &self,
        request: Request<proto::GetReadAccessRequest>,
    ) -> Result<Response<proto::GetReadAccessResponse>, Status> {
        let access = self
            .registry
            .read_access(&request.get_ref().source_id)
            .await?;
        tracing::Span::current().record("config_version", access.config_version);
        // The only place a secret leaves the registry: into the response to
        // the fetcher, never into a log or span.
        let BucketAccess { location, key } = access.bucket;
        Ok(Response::new(proto::GetReadAccessResponse {
            secret_access_key: key.secret.expose_secret().to_owned(),
            source_id: access.source_id,
            config_version: access.config_version,
            bucket: location.bucket,
            region: location.region,
            endpoint: location.endpoint.unwrap_or_default(),
            path_prefix: location.path_prefix,
            access_key_id: key.id,
            serving: access.serving,
        }))
    }
}

/// Records the Source id on the current span once it is known.
fn record_source_id(id: &str) {
    tracing::Span::current().record("source.id", id);
}
