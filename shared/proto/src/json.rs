//! The JSON views of the registry's messages: what the admin API answers
//! and what `imgmesh --json` prints, written once so a script reads the
//! same fields by the same names from either. None carries a secret,
//! because the messages carry none: keys and tokens show ids and hints.

use serde::Serialize;
use serde_json::{Value, json};

use crate::registry::v1::{
    AdminScope, AdminToken, ApiKey, AuditEvent, CacheTtlBehavior, Source, SourceStatus,
};

/// A Source as JSON: every field of the `Source` message, its groups
/// flattened under the names scripts have always read, enums by their
/// lowercase names. Fields serialise in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceJson {
    /// Stable id, e.g. `src_4f0c2a9d1b7e`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// DNS label the gateway routes by.
    pub subdomain: String,
    /// S3 bucket.
    pub bucket: String,
    /// S3 region.
    pub region: String,
    /// Endpoint of an S3-compatible store; empty for AWS S3.
    pub endpoint: String,
    /// Normalised path prefix.
    pub path_prefix: String,
    /// `…` and the last four characters of the access key id.
    pub access_key_id_hint: String,
    /// imgix query applied to every request.
    pub default_params: String,
    /// Lifetime of derivatives in seconds.
    pub cache_ttl_seconds: u32,
    /// Increases on every change.
    pub config_version: u64,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// Extra host names routed to this Source.
    pub custom_domains: Vec<String>,
    /// `respect_origin`, `override_origin` or `enforce_minimum`.
    pub cache_ttl_behavior: &'static str,
    /// Lifetime of error responses in seconds.
    pub cache_ttl_error_seconds: u32,
    /// Path served instead of a missing asset; empty for none.
    pub image_missing: String,
    /// Whether the request's params are applied to image_missing.
    pub image_missing_append_params: bool,
    /// Path served instead of an asset that fails to render.
    pub image_error: String,
    /// Whether the request's params are applied to image_error.
    pub image_error_append_params: bool,
    /// Whether requests must be signed.
    pub secure_url_enabled: bool,
    /// Whether the Source serves at all (a disabled one answers 410).
    pub enabled: bool,
    /// `pending`, `deploying`, `deployed` or `failed`.
    pub status: &'static str,
    /// Why the last deploy failed, or a note on its success.
    pub status_message: String,
    /// When the last deploy finished, Unix seconds; 0 when never.
    pub last_deployed_at: i64,
    /// `…` and the last four characters of the upload access key id; empty
    /// when the Source has no upload credentials.
    pub upload_access_key_id_hint: String,
    /// Secure URL tokens currently accepted (two during a rotation).
    pub active_secure_tokens: u32,
}

impl From<&Source> for SourceJson {
    fn from(source: &Source) -> Self {
        SourceJson {
            id: source.id.clone(),
            name: source.name.clone(),
            subdomain: source.routing().subdomain.clone(),
            bucket: source.location().bucket.clone(),
            region: source.location().region.clone(),
            endpoint: source.location().endpoint.clone(),
            path_prefix: source.location().path_prefix.clone(),
            access_key_id_hint: source.access_key().id_hint.clone(),
            default_params: source.default_params.clone(),
            cache_ttl_seconds: source.cache_policy().ttl_seconds,
            config_version: source.config_version,
            created_at: source.created_at,
            updated_at: source.updated_at,
            custom_domains: source.routing().custom_domains.clone(),
            cache_ttl_behavior: cache_ttl_behavior_name(source.cache_policy().behavior()),
            cache_ttl_error_seconds: source.cache_policy().error_ttl_seconds,
            image_missing: source.fallback_images().missing().path.clone(),
            image_missing_append_params: source.fallback_images().missing().append_params,
            image_error: source.fallback_images().error().path.clone(),
            image_error_append_params: source.fallback_images().error().append_params,
            secure_url_enabled: source.secure_url_enabled,
            enabled: source.enabled,
            status: status_name(source.deploy_state().status()),
            status_message: source.deploy_state().message.clone(),
            last_deployed_at: source.deploy_state().last_deployed_at,
            upload_access_key_id_hint: source.upload_access_key().id_hint.clone(),
            active_secure_tokens: source.active_secure_tokens,
        }
    }
}

/// A Source as a JSON value (see [`SourceJson`]).
pub fn source(source: &Source) -> Value {
    serde_json::to_value(SourceJson::from(source)).unwrap_or(Value::Null)
}

/// The lowercase name of a deploy status.
pub fn status_name(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Unspecified => "unspecified",
        SourceStatus::Pending => "pending",
        SourceStatus::Deploying => "deploying",
        SourceStatus::Deployed => "deployed",
        SourceStatus::Failed => "failed",
    }
}

/// The imgix name of a cache TTL behaviour.
pub fn cache_ttl_behavior_name(behavior: CacheTtlBehavior) -> &'static str {
    match behavior {
        CacheTtlBehavior::Unspecified | CacheTtlBehavior::RespectOrigin => "respect_origin",
        CacheTtlBehavior::OverrideOrigin => "override_origin",
        CacheTtlBehavior::EnforceMinimum => "enforce_minimum",
    }
}

/// The name of an admin token's scope.
pub fn admin_scope_name(scope: AdminScope) -> &'static str {
    match scope {
        AdminScope::ReadOnly => "read_only",
        AdminScope::SourceAdmin => "source_admin",
        AdminScope::FullAdmin => "full_admin",
        AdminScope::Unspecified => "unspecified",
    }
}

/// An admin token as JSON; its secret is never in the message.
pub fn admin_token(token: &AdminToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "scope": admin_scope_name(token.scope()),
        "source_ids": token.source_ids,
        "created_at": token.created_at_unix,
        "expires_at": (token.expires_at_unix != 0).then_some(token.expires_at_unix),
        "revoked_at": (token.revoked_at_unix != 0).then_some(token.revoked_at_unix),
    })
}

/// An API key of the public render API as JSON; its secret is never in
/// the message.
pub fn api_key(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "operations": key.operations,
        "all_sources": key.all_sources,
        "source_ids": key.source_ids,
        "created_at": key.created_at_unix,
        "revoked_at": (key.revoked_at_unix != 0).then_some(key.revoked_at_unix),
    })
}

/// An audit event as JSON.
pub fn audit_event(event: &AuditEvent) -> Value {
    json!({
        "id": event.id,
        "at_unix_micros": event.at_unix_micros,
        "credential": event.credential,
        "action": event.action,
        "source_id": event.source_id,
        "fields": event.fields,
        "target_id": event.target_id,
        "result": event.result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::v1::{CachePolicy, DeployState, Location, Routing};

    /// Every group of the message lands under its flat name, enums by name.
    #[test]
    fn a_source_flattens_its_groups() {
        let source = Source {
            id: "src_1".to_owned(),
            routing: Some(Routing {
                subdomain: "demo".to_owned(),
                custom_domains: vec!["img.example.com".to_owned()],
            }),
            location: Some(Location {
                bucket: "images".to_owned(),
                path_prefix: "photos".to_owned(),
                ..Location::default()
            }),
            cache_policy: Some(CachePolicy {
                behavior: CacheTtlBehavior::EnforceMinimum.into(),
                ttl_seconds: 60,
                error_ttl_seconds: 5,
            }),
            deploy_state: Some(DeployState {
                status: SourceStatus::Failed.into(),
                message: "missing s3:ListBucket".to_owned(),
                last_deployed_at: 7,
            }),
            ..Source::default()
        };
        let value = super::source(&source);
        assert_eq!(value["subdomain"], "demo");
        assert_eq!(value["custom_domains"], json!(["img.example.com"]));
        assert_eq!(value["bucket"], "images");
        assert_eq!(value["path_prefix"], "photos");
        assert_eq!(value["cache_ttl_behavior"], "enforce_minimum");
        assert_eq!(value["cache_ttl_seconds"], 60);
        assert_eq!(value["cache_ttl_error_seconds"], 5);
        assert_eq!(value["status"], "failed");
        assert_eq!(value["status_message"], "missing s3:ListBucket");
        assert_eq!(value["last_deployed_at"], 7);
        // An unset Source still has every field, with empty values.
        let unset = super::source(&Source::default());
        assert_eq!(unset.as_object().unwrap().len(), 27);
        assert_eq!(unset["status"], "unspecified");
        assert_eq!(unset["cache_ttl_behavior"], "respect_origin");
    }

    /// Unset times are null, set ones are numbers; the scope is by name.
    #[test]
    fn tokens_and_keys_show_unset_times_as_null() {
        let token = AdminToken {
            id: "adm_1".to_owned(),
            scope: AdminScope::SourceAdmin.into(),
            expires_at_unix: 10,
            ..AdminToken::default()
        };
        let value = admin_token(&token);
        assert_eq!(value["scope"], "source_admin");
        assert_eq!(value["expires_at"], 10);
        assert_eq!(value["revoked_at"], Value::Null);
        let key = ApiKey {
            id: "key_1".to_owned(),
            revoked_at_unix: 3,
            ..ApiKey::default()
        };
        let value = api_key(&key);
        assert_eq!(value["revoked_at"], 3);
        assert_eq!(value["all_sources"], false);
    }
}
