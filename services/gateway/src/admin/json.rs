//! The admin API's JSON: request bodies read field by field into registry
//! requests (so every error names its field), and Sources written out.
//!
//! Secrets (`secret_access_key`, `upload_secret_access_key`) are accepted in
//! bodies and passed on; the [`Source`] message has none, so nothing written
//! out can carry one.

use imgmesh_proto::prost_types::FieldMask;
use imgmesh_proto::registry::v1::{
    AccessKey, CachePolicy, CacheTtlBehavior, CreateSourceRequest, FallbackImage, FallbackImages,
    Location, Routing, SourceUpdate, UpdateSourceRequest,
};
use serde_json::{Map, Value};

use super::error::AdminError;

/// Fields a `POST /v1/sources` body may have.
const CREATE_FIELDS: &[&str] = &[
    "name",
    "subdomain",
    "bucket",
    "region",
    "endpoint",
    "path_prefix",
    "access_key_id",
    "secret_access_key",
    "default_params",
    "cache_ttl_seconds",
    "custom_domains",
    "cache_ttl_behavior",
    "cache_ttl_error_seconds",
    "image_missing",
    "image_missing_append_params",
    "image_error",
    "image_error_append_params",
    "secure_url_enabled",
    "upload_access_key_id",
    "upload_secret_access_key",
    "enabled",
];

/// A JSON object body, taken apart one field at a time.
#[derive(Debug)]
pub(crate) struct JsonBody {
    fields: Map<String, Value>,
}

// === impl JsonBody ===

impl JsonBody {
    /// Parses `bytes` as a JSON object whose keys are all in `allowed`.
    /// An empty body is an empty object.
    pub(crate) fn parse(bytes: &[u8], allowed: &[&str]) -> Result<JsonBody, AdminError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody { fields: Map::new() });
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|error| AdminError::invalid_field("body", json_problem(&error)))?;
        let Value::Object(fields) = value else {
            return Err(AdminError::invalid_field("body", "must be a JSON object"));
        };
        if let Some(unknown) = fields.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(AdminError::invalid_field(unknown, "unknown field"));
        }
        Ok(JsonBody { fields })
    }

    /// A string field; `null` or absent is `None`.
    pub(crate) fn string(&mut self, field: &str) -> Result<Option<String>, AdminError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(AdminError::invalid_field(field, "must be a string")),
        }
    }

    /// A string field; `null` or absent is empty.
    pub(crate) fn text(&mut self, field: &str) -> Result<String, AdminError> {
        self.string(field).map(Option::unwrap_or_default)
    }

    /// A non-negative integer field that fits 32 bits.
    pub(crate) fn u32(&mut self, field: &str) -> Result<Option<u32>, AdminError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Number(number)) => number
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    AdminError::invalid_field(field, "must be an integer from 0 to 4294967295")
                }),
            Some(_) => Err(AdminError::invalid_field(field, "must be an integer")),
        }
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, field: &str) -> Result<Option<bool>, AdminError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(flag)),
            Some(_) => Err(AdminError::invalid_field(field, "must be true or false")),
        }
    }

    /// An array of strings.
    pub(crate) fn strings(&mut self, field: &str) -> Result<Option<Vec<String>>, AdminError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(AdminError::invalid_field(
                        &format!("{field}[{i}]"),
                        "must be a string",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(AdminError::invalid_field(
                field,
                "must be an array of strings",
            )),
        }
    }

    /// `cache_ttl_behavior`: one of imgix's three names.
    pub(crate) fn cache_ttl_behavior(
        &mut self,
        field: &str,
    ) -> Result<Option<CacheTtlBehavior>, AdminError> {
        let Some(name) = self.string(field)? else {
            return Ok(None);
        };
        match name.as_str() {
            "respect_origin" => Ok(Some(CacheTtlBehavior::RespectOrigin)),
            "override_origin" => Ok(Some(CacheTtlBehavior::OverrideOrigin)),
            "enforce_minimum" => Ok(Some(CacheTtlBehavior::EnforceMinimum)),
            _ => Err(AdminError::invalid_field(
                field,
                "must be respect_origin, override_origin or enforce_minimum",
            )),
        }
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.fields.remove(field).filter(|value| !value.is_null())
    }
}

/// What is wrong with a body that is not JSON, without echoing it (it may
/// hold a secret).
fn json_problem(error: &serde_json::Error) -> String {
    format!(
        "invalid JSON at line {} column {}",
        error.line(),
        error.column()
    )
}

/// The registry request for a `POST /v1/sources` body.
pub(crate) fn create_request(bytes: &[u8]) -> Result<CreateSourceRequest, AdminError> {
    let mut body = JsonBody::parse(bytes, CREATE_FIELDS)?;
    // Read in this order, so a body with several bad fields is refused
    // naming the same one as always.
    let name = body.text("name")?;
    let subdomain = body.text("subdomain")?;
    let location = Location {
        bucket: body.text("bucket")?,
        region: body.text("region")?,
        endpoint: body.text("endpoint")?,
        path_prefix: body.text("path_prefix")?,
    };
    let access_key = AccessKey {
        id: body.text("access_key_id")?,
        secret: body.text("secret_access_key")?,
    };
    let default_params = body.text("default_params")?;
    let image_missing = body.text("image_missing")?;
    let image_error = body.text("image_error")?;
    let upload_access_key = AccessKey {
        id: body.text("upload_access_key_id")?,
        secret: body.text("upload_secret_access_key")?,
    };
    let ttl_seconds = body.u32("cache_ttl_seconds")?.unwrap_or_default();
    let routing = Routing {
        subdomain,
        custom_domains: body.strings("custom_domains")?.unwrap_or_default(),
    };
    let cache_policy = CachePolicy {
        ttl_seconds,
        behavior: body
            .cache_ttl_behavior("cache_ttl_behavior")?
            .unwrap_or_default()
            .into(),
        error_ttl_seconds: body.u32("cache_ttl_error_seconds")?.unwrap_or_default(),
    };
    let fallback_images = FallbackImages {
        missing: Some(FallbackImage {
            path: image_missing,
            append_params: body
                .bool("image_missing_append_params")?
                .unwrap_or_default(),
        }),
        error: Some(FallbackImage {
            path: image_error,
            append_params: body.bool("image_error_append_params")?.unwrap_or_default(),
        }),
    };
    Ok(CreateSourceRequest {
        name,
        routing: Some(routing),
        location: Some(location),
        access_key: Some(access_key),
        default_params,
        cache_policy: Some(cache_policy),
        fallback_images: Some(fallback_images),
        secure_url_enabled: body.bool("secure_url_enabled")?.unwrap_or_default(),
        upload_access_key: Some(upload_access_key),
        disabled: !body.bool("enabled")?.unwrap_or(true),
    })
}

/// An update being built from a body: each field present sets its value
/// and adds its path to the mask, so the registry changes only those.
#[derive(Debug, Default)]
struct MaskedUpdate {
    source: SourceUpdate,
    paths: Vec<String>,
}

// === impl MaskedUpdate ===

impl MaskedUpdate {
    /// Sets the field `field` picks to `value`, naming `path`, when the
    /// body had one.
    fn set<T>(
        &mut self,
        path: &str,
        value: Option<T>,
        field: impl FnOnce(&mut SourceUpdate) -> &mut T,
    ) {
        if let Some(value) = value {
            *field(&mut self.source) = value;
            self.paths.push(path.to_owned());
        }
    }
}

/// The registry request for a `PATCH /v1/sources/{id_or_name}` body: only
/// the fields present change (the update mask names them).
pub(crate) fn update_request(
    id_or_name: String,
    bytes: &[u8],
) -> Result<UpdateSourceRequest, AdminError> {
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(bytes)
        && fields.contains_key("name")
    {
        return Err(AdminError::invalid_field("name", "cannot be changed"));
    }
    let allowed: Vec<&str> = CREATE_FIELDS
        .iter()
        .copied()
        .filter(|field| *field != "name")
        .collect();
    let mut body = JsonBody::parse(bytes, &allowed)?;
    let mut update = MaskedUpdate::default();
    update.set("routing.subdomain", body.string("subdomain")?, |s| {
        &mut s.routing.get_or_insert_default().subdomain
    });
    update.set("location.bucket", body.string("bucket")?, |s| {
        &mut s.location.get_or_insert_default().bucket
    });
    update.set("location.region", body.string("region")?, |s| {
        &mut s.location.get_or_insert_default().region
    });
    update.set("location.endpoint", body.string("endpoint")?, |s| {
        &mut s.location.get_or_insert_default().endpoint
    });
    update.set("location.path_prefix", body.string("path_prefix")?, |s| {
        &mut s.location.get_or_insert_default().path_prefix
    });
    update.set("access_key.id", body.string("access_key_id")?, |s| {
        &mut s.access_key.get_or_insert_default().id
    });
    update.set(
        "access_key.secret",
        body.string("secret_access_key")?,
        |s| &mut s.access_key.get_or_insert_default().secret,
    );
    update.set("default_params", body.string("default_params")?, |s| {
        &mut s.default_params
    });
    update.set(
        "cache_policy.ttl_seconds",
        body.u32("cache_ttl_seconds")?,
        |s| &mut s.cache_policy.get_or_insert_default().ttl_seconds,
    );
    update.set(
        "routing.custom_domains",
        body.strings("custom_domains")?,
        |s| &mut s.routing.get_or_insert_default().custom_domains,
    );
    update.set(
        "cache_policy.behavior",
        body.cache_ttl_behavior("cache_ttl_behavior")?
            .map(i32::from),
        |s| &mut s.cache_policy.get_or_insert_default().behavior,
    );
    update.set(
        "cache_policy.error_ttl_seconds",
        body.u32("cache_ttl_error_seconds")?,
        |s| &mut s.cache_policy.get_or_insert_default().error_ttl_seconds,
    );
    update.set(
        "fallback_images.missing.path",
        body.string("image_missing")?,
        |s| &mut missing_image(s).path,
    );
    update.set(
        "fallback_images.missing.append_params",
        body.bool("image_missing_append_params")?,
        |s| &mut missing_image(s).append_params,
    );
    update.set(
        "fallback_images.error.path",
        body.string("image_error")?,
        |s| &mut error_image(s).path,
    );
    update.set(
        "fallback_images.error.append_params",
        body.bool("image_error_append_params")?,
        |s| &mut error_image(s).append_params,
    );
    update.set(
        "secure_url_enabled",
        body.bool("secure_url_enabled")?,
        |s| &mut s.secure_url_enabled,
    );
    update.set(
        "upload_access_key.id",
        body.string("upload_access_key_id")?,
        |s| &mut s.upload_access_key.get_or_insert_default().id,
    );
    update.set(
        "upload_access_key.secret",
        body.string("upload_secret_access_key")?,
        |s| &mut s.upload_access_key.get_or_insert_default().secret,
    );
    update.set("enabled", body.bool("enabled")?, |s| &mut s.enabled);
    Ok(UpdateSourceRequest {
        id_or_name,
        source: Some(update.source),
        update_mask: Some(FieldMask {
            paths: update.paths,
        }),
    })
}

/// The missing-asset fallback image of `source`, created if unset.
fn missing_image(source: &mut SourceUpdate) -> &mut FallbackImage {
    let images = source.fallback_images.get_or_insert_default();
    images.missing.get_or_insert_default()
}

/// The render-error fallback image of `source`, created if unset.
fn error_image(source: &mut SourceUpdate) -> &mut FallbackImage {
    let images = source.fallback_images.get_or_insert_default();
    images.error.get_or_insert_default()
}

pub(crate) fn grace_period_seconds(bytes: &[u8]) -> Result<u32, AdminError> {
    let mut body = JsonBody::parse(bytes, &["grace_period_seconds"])?;
    body.u32("grace_period_seconds")?
        .ok_or_else(|| AdminError::invalid_field("grace_period_seconds", "is required"))
}

/// A Source as the admin API shows it: every field of the message, enums
/// by their lowercase names (imgmesh_proto::json, the shape `imgmesh --json`
/// prints too). There is no secret in it to leak.
pub(crate) use imgmesh_proto::json::source as source_json;

#[cfg(test)]
mod tests {
    use imgmesh_proto::registry::v1::{DeployState, Source, SourceStatus};
    use serde_json::json;

    use super::*;

    fn field_of(error: AdminError) -> String {
        format!("{error:?}")
    }

    /// A full create body fills every request field; `enabled: false` starts the Source disabled.
    #[test]
    fn create_body_fills_the_request() {
        let body = json!({
            "name": "demo", "subdomain": "demo", "bucket": "images", "region": "eu-west-1",
            "endpoint": "http://127.0.0.1:9000", "path_prefix": "photos",
            "access_key_id": "AKIA1234", "secret_access_key": "secret-1",
            "default_params": "auto=format", "cache_ttl_seconds": 3600,
            "custom_domains": ["img.example.com"], "cache_ttl_behavior": "override_origin",
            "cache_ttl_error_seconds": 60, "image_missing": "missing.png",
            "image_missing_append_params": true, "image_error": "error.png",
            "image_error_append_params": true, "secure_url_enabled": true,
            "upload_access_key_id": "AKIAUP", "upload_secret_access_key": "secret-2",
            "enabled": false,
        });
        let request = create_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            request,
            CreateSourceRequest {
                name: "demo".to_owned(),
                routing: Some(Routing {
                    subdomain: "demo".to_owned(),
                    custom_domains: vec!["img.example.com".to_owned()],
                }),
                location: Some(Location {
                    bucket: "images".to_owned(),
                    region: "eu-west-1".to_owned(),
                    endpoint: "http://127.0.0.1:9000".to_owned(),
                    path_prefix: "photos".to_owned(),
                }),
                access_key: Some(AccessKey {
                    id: "AKIA1234".to_owned(),
                    secret: "secret-1".to_owned(),
                }),
                default_params: "auto=format".to_owned(),
                cache_policy: Some(CachePolicy {
                    ttl_seconds: 3600,
                    behavior: CacheTtlBehavior::OverrideOrigin.into(),
                    error_ttl_seconds: 60,
                }),
                fallback_images: Some(FallbackImages {
                    missing: Some(FallbackImage {
                        path: "missing.png".to_owned(),
                        append_params: true,
                    }),
                    error: Some(FallbackImage {
                        path: "error.png".to_owned(),
                        append_params: true,
                    }),
                }),
                secure_url_enabled: true,
                upload_access_key: Some(AccessKey {
                    id: "AKIAUP".to_owned(),
                    secret: "secret-2".to_owned(),
                }),
                disabled: true,
            }
        );
        let minimal = create_request(br#"{"name":"x"}"#).unwrap();
        assert!(!minimal.disabled, "Sources start enabled");
    }

    /// A patch sets only the fields present and names exactly those in its
    /// update mask; `null` leaves a field unchanged.
    #[test]
    fn patch_sets_only_present_fields() {
        let request = update_request(
            "demo".to_owned(),
            br#"{"enabled": false, "custom_domains": [], "endpoint": "", "cache_ttl_seconds": null}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            UpdateSourceRequest {
                id_or_name: "demo".to_owned(),
                source: Some(SourceUpdate {
                    routing: Some(Routing::default()),
                    location: Some(Location::default()),
                    enabled: false,
                    ..SourceUpdate::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec![
                        "location.endpoint".to_owned(),
                        "routing.custom_domains".to_owned(),
                        "enabled".to_owned(),
                    ],
                }),
            }
        );
    }

    /// Every body error names its field, and none echoes the body.
    #[test]
    fn body_errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"secret_access_key": "hunter2-canary""#, "body"),
            (b"[1, 2]", "body"),
            (br#"{"bukket": "x"}"#, "bukket"),
            (br#"{"name": 7}"#, "name"),
            (br#"{"cache_ttl_seconds": -1}"#, "cache_ttl_seconds"),
            (br#"{"cache_ttl_seconds": 1.5}"#, "cache_ttl_seconds"),
            (br#"{"cache_ttl_seconds": "60"}"#, "cache_ttl_seconds"),
            (
                br#"{"cache_ttl_error_seconds": 4294967296}"#,
                "cache_ttl_error_seconds",
            ),
            (br#"{"enabled": "no"}"#, "enabled"),
            (br#"{"custom_domains": "a.example.com"}"#, "custom_domains"),
            (
                br#"{"custom_domains": ["a.example.com", 3]}"#,
                "custom_domains[1]",
            ),
            (
                br#"{"cache_ttl_behavior": "forever"}"#,
                "cache_ttl_behavior",
            ),
        ];
        for (body, field) in cases {
            let error = create_request(body).unwrap_err();
            let debug = field_of(error.clone());
            assert!(
                debug.contains(&format!("field: Some(\"{field}\")")),
                "{}: {debug}",
                String::from_utf8_lossy(body)
            );
            assert!(!debug.contains("hunter2-canary"), "{debug}");
            assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        }
        let renamed = update_request("demo".to_owned(), br#"{"name": "other"}"#).unwrap_err();
        assert!(field_of(renamed).contains("name: cannot be changed"));
    }

    /// A rotation needs an explicit grace period.
    #[test]
    fn rotation_needs_a_grace_period() {
        assert_eq!(
            grace_period_seconds(br#"{"grace_period_seconds": 3600}"#),
            Ok(3600)
        );
        assert_eq!(
            grace_period_seconds(br#"{"grace_period_seconds": 0}"#),
            Ok(0)
        );
        let missing = grace_period_seconds(b"").unwrap_err();
        assert!(field_of(missing).contains("grace_period_seconds: is required"));
        // Found by the admin_body fuzz target: a body of ASCII whitespace
        // that JSON does not count as whitespace (form feeds) is blank too,
        // not a JSON error.
        let blank = grace_period_seconds(b"\x0c\x0c\x0c").unwrap_err();
        assert!(field_of(blank).contains("grace_period_seconds: is required"));
        let extra = grace_period_seconds(br#"{"grace_period_seconds": 1, "token": "x"}"#);
        assert!(field_of(extra.unwrap_err()).contains("token: unknown field"));
    }

    /// A Source is written with every field and enums by name.
    #[test]
    fn source_is_written_with_enum_names() {
        let source = Source {
            id: "src_1".to_owned(),
            deploy_state: Some(DeployState {
                status: SourceStatus::Deployed.into(),
                ..DeployState::default()
            }),
            cache_policy: Some(CachePolicy {
                behavior: CacheTtlBehavior::EnforceMinimum.into(),
                ..CachePolicy::default()
            }),
            routing: Some(Routing {
                custom_domains: vec!["img.example.com".to_owned()],
                ..Routing::default()
            }),
            enabled: true,
            ..Source::default()
        };
        let json = source_json(&source);
        assert_eq!(json["status"], "deployed");
        assert_eq!(json["cache_ttl_behavior"], "enforce_minimum");
        assert_eq!(json["custom_domains"], json!(["img.example.com"]));
        assert_eq!(json["enabled"], true);
        assert_eq!(json.as_object().unwrap().len(), 27);
        let unset = source_json(&Source::default());
        assert_eq!(unset["cache_ttl_behavior"], "respect_origin");
    }
}
