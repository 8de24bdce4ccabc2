//! The gRPC face of the registry: `SourceRegistryService` for admins and the
//! gateway, `SourceCredentialsService` for the fetcher.
//!
//! Handlers only translate between messages and [`Registry`] calls. Each one
//! opens a span with safe fields (source id, name or host, never a secret or
//! a whole request), so registry work shows up in traces.

use futures::StreamExt as _;
use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::source_credentials_service_server::SourceCredentialsService;
use imgmesh_proto::registry::v1::source_registry_service_server::SourceRegistryService;
use imgmesh_s3_client::BucketAccess;
use secrecy::ExposeSecret as _;
use secrecy::zeroize::Zeroize as _;
use tonic::{Request, Response, Status};
use tracing::field;

use crate::api_key_store::{ApiKey, ApiKeyStore, SourceScope};
use crate::clock::{unix_now, unix_now_micros};
use crate::registry::Registry;
use crate::store::{AdminScope, AdminToken, AuditEvent};
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
        mut request: Request<proto::CreateSourceRequest>,
    ) -> Result<Response<proto::CreateSourceResponse>, Status> {
        let created = self.registry.create_source(request.get_ref()).await;
        let asked = request.get_mut();
        wipe_secrets([&mut asked.access_key, &mut asked.upload_access_key]);
        let source = self
            .cli_audited(
                Caller::of(&request),
                "source.create",
                "",
                Vec::new(),
                created,
                |source| (source.id.clone(), String::new()),
            )
            .await?;
        record_source_id(&source.id);
        tracing::info!(
            source.id = %source.id,
            source.subdomain = %source.routing().subdomain,
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
        mut request: Request<proto::UpdateSourceRequest>,
    ) -> Result<Response<proto::UpdateSourceResponse>, Status> {
        let updated = self.registry.update_source(request.get_ref()).await;
        if let Some(asked) = &mut request.get_mut().source {
            wipe_secrets([&mut asked.access_key, &mut asked.upload_access_key]);
        }
        let source = self
            .cli_audited(
                Caller::of(&request),
                "source.update",
                &request.get_ref().id_or_name,
                request
                    .get_ref()
                    .update_mask
                    .as_ref()
                    .map(|mask| mask.paths.clone())
                    .unwrap_or_default(),
                updated,
                |source| (source.id.clone(), String::new()),
            )
            .await?;
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
        let deleted = self
            .registry
            .delete_source(&request.get_ref().id_or_name)
            .await;
        let id = self
            .cli_audited(
                Caller::of(&request),
                "source.delete",
                &request.get_ref().id_or_name,
                Vec::new(),
                deleted,
                |id| (id.clone(), String::new()),
            )
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
        let deployed = self
            .registry
            .deploy_source(&request.get_ref().id_or_name)
            .await;
        let source = self
            .cli_audited(
                Caller::of(&request),
                "source.deploy",
                &request.get_ref().id_or_name,
                Vec::new(),
                deployed,
                |source| (source.id.clone(), String::new()),
            )
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
        let rotated = self
            .registry
            .rotate_secure_token(
                &request.get_ref().id_or_name,
                request.get_ref().grace_period_seconds,
            )
            .await;
        let (token, source) = self
            .cli_audited(
                Caller::of(&request),
                "source.rotate_token",
                &request.get_ref().id_or_name,
                Vec::new(),
                rotated,
                |(_, source)| (source.id.clone(), String::new()),
            )
            .await?;
        let request = request.get_ref();
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
        let caller = Caller::of(&request);
        let mut parts = request.into_inner();
        // The header names the Source: read here for the audit record, then
        // handed on with the rest of the stream.
        let first = parts.message().await.transpose();
        let source = match &first {
            Some(Ok(proto::UploadObjectRequest {
                part: Some(proto::upload_object_request::Part::Header(header)),
            })) => header.id_or_name.clone(),
            _ => String::new(),
        };
        let parts = futures::stream::iter(first).chain(parts);
        let uploaded = object_upload::upload_object(&self.registry, parts).await;
        // Recorded under the Source's id, as the gateway's uploads are.
        let source_id = match (caller, &uploaded) {
            (Caller::Cli, Ok(_)) => self
                .registry
                .find(&source)
                .await
                .map_or_else(|_| source.clone(), |record| record.id),
            _ => source.clone(),
        };
        let stored = self
            .cli_audited(
                caller,
                "object.upload",
                &source,
                Vec::new(),
                uploaded,
                |_| (source_id, String::new()),
            )
            .await?;
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
        let caller = Caller::of(&request);
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
        let created = self
            .api_keys
            .create(&request.name, &request.operations, sources, unix_now())
            .await;
        let (key, secret) = self
            .cli_audited(
                caller,
                "api_key.create",
                "",
                Vec::new(),
                created,
                |(key, _)| (String::new(), key.id.clone()),
            )
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
        let revoked = match self.api_keys.revoke(id, unix_now()).await {
            Ok(Some(key)) => Ok(key),
            Ok(None) => Err(imgmesh_errors::ErrorCode::ApiKeyNotFound.status_with(
                format!("api key {id:?} not found"),
                [("api_key_id", id.clone())],
            )),
            Err(error) => Err(Status::from(error)),
        };
        let key = self
            .cli_audited(
                Caller::of(&request),
                "api_key.revoke",
                "",
                Vec::new(),
                revoked,
                |key| (String::new(), key.id.clone()),
            )
            .await?;
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

    #[tracing::instrument(
        name = "registry.create_admin_token",
        skip_all,
        fields(admin_token.id = field::Empty)
    )]
    async fn create_admin_token(
        &self,
        request: Request<proto::CreateAdminTokenRequest>,
    ) -> Result<Response<proto::CreateAdminTokenResponse>, Status> {
        let actor = actor(&request, &request.get_ref().actor);
        let request = request.into_inner();
        let created = match admin_scope(request.scope, request.source_ids) {
            Ok(scope) => {
                self.registry
                    .store()
                    .create_admin_token(&request.name, scope, request.expires_at_unix, unix_now())
                    .await
            }
            Err(refused) => Err(refused),
        };
        let (token, secret) = self
            .audited(actor, "admin_token.create", created, |(token, _)| {
                token.id.clone()
            })
            .await?;
        tracing::Span::current().record("admin_token.id", token.id.as_str());
        tracing::info!(admin_token.id = %token.id, admin_token.name = %token.name, "admin token created");
        // The only time a token leaves the registry: once, in this response.
        Ok(Response::new(proto::CreateAdminTokenResponse {
            admin_token: Some(admin_token_message(token)),
            secret,
        }))
    }

    #[tracing::instrument(name = "registry.list_admin_tokens", skip_all, fields(count = field::Empty))]
    async fn list_admin_tokens(
        &self,
        _request: Request<proto::ListAdminTokensRequest>,
    ) -> Result<Response<proto::ListAdminTokensResponse>, Status> {
        let tokens = self.registry.store().list_admin_tokens().await?;
        tracing::Span::current().record("count", tokens.len());
        Ok(Response::new(proto::ListAdminTokensResponse {
            admin_tokens: tokens.into_iter().map(admin_token_message).collect(),
        }))
    }

    #[tracing::instrument(
        name = "registry.revoke_admin_token",
        skip_all,
        fields(admin_token.id = %request.get_ref().id)
    )]
    async fn revoke_admin_token(
        &self,
        request: Request<proto::RevokeAdminTokenRequest>,
    ) -> Result<Response<proto::RevokeAdminTokenResponse>, Status> {
        let actor = actor(&request, &request.get_ref().actor);
        let id = &request.get_ref().id;
        let revoked = match self
            .registry
            .store()
            .revoke_admin_token(id, unix_now())
            .await
        {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(crate::error::RegistryError::invalid(
                "id",
                format!("no admin token has id {id:?}"),
            )),
            Err(error) => Err(error),
        };
        let token = self
            .audited(actor, "admin_token.revoke", revoked, |token| {
                token.id.clone()
            })
            .await?;
        tracing::info!(admin_token.id = %token.id, "admin token revoked");
        Ok(Response::new(proto::RevokeAdminTokenResponse {
            admin_token: Some(admin_token_message(token)),
        }))
    }

    #[tracing::instrument(
        name = "registry.authenticate_admin_token",
        skip_all,
        fields(admin_token.id = field::Empty)
    )]
    async fn authenticate_admin_token(
        &self,
        request: Request<proto::AuthenticateAdminTokenRequest>,
    ) -> Result<Response<proto::AuthenticateAdminTokenResponse>, Status> {
        let token = self
            .registry
            .store()
            .authenticate_admin_token(&request.get_ref().secret, unix_now())
            .await?;
        if let Some(token) = &token {
            tracing::Span::current().record("admin_token.id", token.id.as_str());
        }
        Ok(Response::new(proto::AuthenticateAdminTokenResponse {
            admin_token: token.map(admin_token_message),
        }))
    }

    #[tracing::instrument(
        name = "registry.record_audit_event",
        skip_all,
        fields(audit.action = field::Empty, audit.result = field::Empty)
    )]
    async fn record_audit_event(
        &self,
        request: Request<proto::RecordAuditEventRequest>,
    ) -> Result<Response<proto::RecordAuditEventResponse>, Status> {
        // The CLI records its own purges; it is filed under its identity
        // whatever name it gives.
        let caller = Caller::of(&request);
        let mut event = request.into_inner().event.unwrap_or_default();
        if caller == Caller::Cli {
            CLI_IDENTITY.clone_into(&mut event.credential);
        }
        let span = tracing::Span::current();
        span.record("audit.action", event.action.as_str());
        span.record("audit.result", event.result.as_str());
        let stored = self
            .registry
            .store()
            .record_audit_event(
                AuditEvent {
                    id: String::new(),
                    at_micros: 0,
                    credential: event.credential,
                    action: event.action,
                    source_id: event.source_id,
                    fields: event.fields,
                    target_id: event.target_id,
                    result: event.result,
                },
                unix_now_micros(),
            )
            .await?;
        Ok(Response::new(proto::RecordAuditEventResponse {
            event: Some(audit_event_message(stored)),
        }))
    }

    #[tracing::instrument(
        name = "registry.list_audit_events",
        skip_all,
        fields(source.id = %request.get_ref().source_id, count = field::Empty)
    )]
    async fn list_audit_events(
        &self,
        request: Request<proto::ListAuditEventsRequest>,
    ) -> Result<Response<proto::ListAuditEventsResponse>, Status> {
        let request = request.get_ref();
        let events = self
            .registry
            .store()
            .list_audit_events(&request.source_id, request.limit)
            .await?;
        tracing::Span::current().record("count", events.len());
        Ok(Response::new(proto::ListAuditEventsResponse {
            events: events.into_iter().map(audit_event_message).collect(),
        }))
    }
}

// === impl SourceRegistryApi: audit ===

impl SourceRegistryApi {
    /// Records `outcome` of `action` by `actor` in the audit log (the key or
    /// token id from `target` when it succeeded), then returns it. A change
    /// that cannot be recorded is answered with the recording's error,
    /// never silently kept unaudited.
    async fn audited<T>(
        &self,
        actor: String,
        action: &str,
        outcome: Result<T, crate::error::RegistryError>,
        target: impl FnOnce(&T) -> String,
    ) -> Result<T, Status> {
        let event = AuditEvent {
            credential: actor,
            action: action.to_owned(),
            ..AuditEvent::default()
        };
        self.record(event, outcome.map_err(Status::from), |value| {
            (String::new(), target(value))
        })
        .await
    }

    /// Records `outcome` of `action`, which set `fields` (their names), in
    /// the audit log under `cli` when the CLI asked for it, then returns it;
    /// other callers' changes pass unrecorded (the gateway records them).
    /// `ids` gives a success's Source and key ids; a failure is recorded
    /// with the Source as `asked`. A change that cannot be recorded is
    /// answered with the recording's error, as [`Self::audited`]'s.
    async fn cli_audited<T, E>(
        &self,
        caller: Caller,
        action: &str,
        asked: &str,
        fields: Vec<String>,
        outcome: Result<T, E>,
        ids: impl FnOnce(&T) -> (String, String),
    ) -> Result<T, Status>
    where
        Status: From<E>,
    {
        let outcome = outcome.map_err(Status::from);
        if caller != Caller::Cli {
            return outcome;
        }
        let event = AuditEvent {
            credential: CLI_IDENTITY.to_owned(),
            action: action.to_owned(),
            source_id: asked.to_owned(),
            fields,
            ..AuditEvent::default()
        };
        self.record(event, outcome, ids).await
    }

    /// Completes `event` with `outcome` (a success's Source and key ids from
    /// `ids`, else the refusal's code), stores it, then returns `outcome`,
    /// or the recording's error when it could not be stored.
    async fn record<T>(
        &self,
        mut event: AuditEvent,
        outcome: Result<T, Status>,
        ids: impl FnOnce(&T) -> (String, String),
    ) -> Result<T, Status> {
        match &outcome {
            Ok(value) => {
                (event.source_id, event.target_id) = ids(value);
                "ok".clone_into(&mut event.result);
            }
            Err(status) => {
                imgmesh_errors::ErrorCode::of_status(status)
                    .reason()
                    .clone_into(&mut event.result);
            }
        }
        self.registry
            .store()
            .record_audit_event(event, unix_now_micros())
            .await?;
        outcome
    }
}

/// Wipes the secrets of the access keys a request carried, once the
/// registry has sealed its own copies: the decoded message must not keep
/// them in freed memory.
fn wipe_secrets<const N: usize>(keys: [&mut Option<proto::AccessKey>; N]) {
    for key in keys.into_iter().flatten() {
        key.secret.zeroize();
    }
}

/// Who asked for a change, as far as the registry's audit log cares: the
/// operator's CLI (mesh identity `cli`), whose changes the registry records
/// itself, or anyone else (the gateway records the changes it makes, under
/// the admin credential that asked it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// The operator's CLI.
    Cli,
    /// The gateway (or, on plaintext, a caller with no identity).
    Other,
}

// === impl Caller ===

impl Caller {
    /// The caller of `request`, from its mutual TLS identity.
    fn of<T>(request: &Request<T>) -> Caller {
        let identity = request
            .extensions()
            .get::<imgmesh_runtime::grpc_authz::PeerInfo>()
            .and_then(|peer| peer.identity.as_deref());
        if identity == Some(CLI_IDENTITY) {
            Caller::Cli
        } else {
            Caller::Other
        }
    }
}

/// The mesh identity (and audit log name) of the operator's CLI.
const CLI_IDENTITY: &str = "cli";

/// The credential a token change is recorded under: the `actor` the
/// gateway names, else the caller's mesh identity, else `cli` (only the
/// gateway and the operator's CLI may call these methods).
fn actor<T>(request: &Request<T>, named: &str) -> String {
    if !named.trim().is_empty() {
        return named.trim().to_owned();
    }
    request
        .extensions()
        .get::<imgmesh_runtime::grpc_authz::PeerInfo>()
        .and_then(|peer| peer.identity.clone())
        .unwrap_or_else(|| "cli".to_owned())
}

/// The scope of a create request.
fn admin_scope(
    scope: i32,
    source_ids: Vec<String>,
) -> Result<AdminScope, crate::error::RegistryError> {
    let scope = proto::AdminScope::try_from(scope).unwrap_or(proto::AdminScope::Unspecified);
    if scope != proto::AdminScope::SourceAdmin && !source_ids.is_empty() {
        return Err(crate::error::RegistryError::invalid(
            "source_ids",
            "only a Source admin token lists Sources",
        ));
    }
    match scope {
        proto::AdminScope::ReadOnly => Ok(AdminScope::ReadOnly),
        proto::AdminScope::SourceAdmin => Ok(AdminScope::SourceAdmin(source_ids)),
        proto::AdminScope::FullAdmin => Ok(AdminScope::FullAdmin),
        proto::AdminScope::Unspecified => Err(crate::error::RegistryError::invalid(
            "scope",
            "must be read_only, source_admin or full_admin",
        )),
    }
}

/// The wire form of a stored admin token.
fn admin_token_message(token: AdminToken) -> proto::AdminToken {
    let (scope, source_ids) = match token.scope {
        AdminScope::ReadOnly => (proto::AdminScope::ReadOnly, Vec::new()),
        AdminScope::SourceAdmin(ids) => (proto::AdminScope::SourceAdmin, ids),
        AdminScope::FullAdmin => (proto::AdminScope::FullAdmin, Vec::new()),
    };
    proto::AdminToken {
        id: token.id,
        name: token.name,
        scope: scope.into(),
        source_ids,
        created_at_unix: token.created_at,
        expires_at_unix: token.expires_at,
        revoked_at_unix: token.revoked_at,
    }
}

/// The wire form of a stored audit event.
fn audit_event_message(event: AuditEvent) -> proto::AuditEvent {
    proto::AuditEvent {
        id: event.id,
        at_unix_micros: event.at_micros,
        credential: event.credential,
        action: event.action,
        source_id: event.source_id,
        fields: event.fields,
        result: event.result,
        target_id: event.target_id,
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
