//! Runs a parsed command against the source registry and returns what to
//! print.

use std::time::Duration;

use bytes::Bytes;
use imgmesh_proto::json::api_key as api_key_json;
use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::CacheTtlBehavior;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::registry::v1::upload_object_request;
use imgmesh_runtime::GrpcChannel;
use secrecy::ExposeSecret as _;
use tokio::time::Instant;

use crate::args::{Cli, Command, CreateArgs, OnOff, SourcesCommand, UpdateArgs, UploadArgs};
use crate::error::CliError;
use crate::grpc_clients::registry_client;
use crate::source_output::{
    render_deleted, render_list, render_rotated_token, render_source, render_uploaded, to_json,
};
use crate::url_signing::sign_url;

/// Runs `cli` and returns the text for stdout.
pub async fn run(cli: &Cli) -> Result<String, CliError> {
    match &cli.command {
        Command::Sign(args) => {
            let signed = sign_url(&args.url, &args.token)?;
            Ok(if cli.json {
                to_json(&serde_json::json!({ "url": signed }))
            } else {
                format!("{signed}\n")
            })
        }
        Command::Upload(args) => upload(cli, args).await,
        Command::Purge(args) => crate::purge::purge(cli, args).await,
        Command::Sources(command) => sources(cli, command).await,
        Command::Keys(command) => keys(cli, command).await,
        Command::AdminTokens(command) => crate::admin_access::admin_tokens(cli, command).await,
        Command::Audit(args) => crate::admin_access::audit(cli, args).await,
        Command::DevCerts(args) => dev_certs(cli, args),
    }
}

/// Runs `imgmesh keys …`.
async fn keys(cli: &Cli, command: &crate::args::KeysCommand) -> Result<String, CliError> {
    use crate::args::KeysCommand;

    let mut client = registry_client(cli)?;
    let failed = |status| CliError::from_status(&cli.registry.registry_url, status);
    match command {
        KeysCommand::Create(args) => {
            let response = client
                .create_api_key(proto::CreateApiKeyRequest {
                    name: args.name.clone(),
                    operations: args.operations.clone(),
                    all_sources: args.sources.is_empty(),
                    source_ids: args.sources.clone(),
                })
                .await
                .map_err(failed)?
                .into_inner();
            let key = response.api_key.ok_or(CliError::EmptyResponse)?;
            Ok(if cli.json {
                let mut json = api_key_json(&key);
                json["key"] = serde_json::Value::String(response.secret);
                to_json(&json)
            } else {
                format!(
                    "{}key: {}\n(store it now: it is never shown again)\n",
                    api_key_text(&key),
                    response.secret
                )
            })
        }
        KeysCommand::List => {
            let keys = client
                .list_api_keys(proto::ListApiKeysRequest {})
                .await
                .map_err(failed)?
                .into_inner()
                .api_keys;
            Ok(if cli.json {
                let keys: Vec<_> = keys.iter().map(api_key_json).collect();
                to_json(&serde_json::json!({ "api_keys": keys }))
            } else {
                keys.iter().map(api_key_text).collect::<Vec<_>>().join("\n")
            })
        }
        KeysCommand::Revoke { id } => {
            let key = client
                .revoke_api_key(proto::RevokeApiKeyRequest { id: id.clone() })
                .await
                .map_err(failed)?
                .into_inner()
                .api_key
                .ok_or(CliError::EmptyResponse)?;
            Ok(if cli.json {
                to_json(&api_key_json(&key))
            } else {
                api_key_text(&key)
            })
        }
    }
}

/// An API key as `key: value` lines.
fn api_key_text(key: &proto::ApiKey) -> String {
    let sources = if key.all_sources {
        "every source".to_owned()
    } else {
        key.source_ids.join(", ")
    };
    let revoked = if key.revoked_at_unix == 0 {
        "no".to_owned()
    } else {
        key.revoked_at_unix.to_string()
    };
    format!(
        "id: {}\nname: {}\noperations: {}\nsources: {sources}\ncreated_at: {}\nrevoked_at: {revoked}\n",
        key.id,
        key.name,
        key.operations.join(", "),
        key.created_at_unix
    )
}

/// `imgmesh dev-certs`: a fresh CA and one certificate per identity.
fn dev_certs(cli: &Cli, args: &crate::args::DevCertsArgs) -> Result<String, CliError> {
    let written = imgmesh_runtime::dev_certs::write_mesh(&args.dir)
        .map_err(|error| CliError::DevCerts(format!("{error:#}")))?;
    let files: Vec<serde_json::Value> = written
        .iter()
        .map(|(identity, paths)| {
            serde_json::json!({
                "identity": identity,
                "cert": paths.cert.display().to_string(),
                "key": paths.key.display().to_string(),
                "ca": paths.ca.display().to_string(),
            })
        })
        .collect();
    Ok(if cli.json {
        to_json(&serde_json::json!({ "certificates": files }))
    } else {
        written
            .iter()
            .map(|(identity, paths)| {
                format!(
                    "{identity}: --tls-cert={} --tls-key={} --tls-ca={}\n",
                    paths.cert.display(),
                    paths.key.display(),
                    paths.ca.display()
                )
            })
            .collect()
    })
}

/// Runs `imgmesh sources …`.
async fn sources(cli: &Cli, command: &SourcesCommand) -> Result<String, CliError> {
    let mut client = registry_client(cli)?;
    let failed = |status| CliError::from_status(&cli.registry.registry_url, status);
    match command {
        SourcesCommand::Create(args) => {
            let response = client
                .create_source(create_request(args))
                .await
                .map_err(failed)?;
            let source = response
                .into_inner()
                .source
                .ok_or(CliError::EmptyResponse)?;
            Ok(render_source(&source, cli.json))
        }
        SourcesCommand::List => {
            let response = client
                .list_sources(proto::ListSourcesRequest {})
                .await
                .map_err(failed)?;
            Ok(render_list(&response.into_inner().sources, cli.json))
        }
        SourcesCommand::Get { id_or_name } => {
            let request = proto::GetSourceRequest {
                id_or_name: id_or_name.clone(),
            };
            let response = client.get_source(request).await.map_err(failed)?;
            let source = response
                .into_inner()
                .source
                .ok_or(CliError::EmptyResponse)?;
            Ok(render_source(&source, cli.json))
        }
        SourcesCommand::Update(args) => {
            let response = client
                .update_source(update_request(args))
                .await
                .map_err(failed)?;
            let source = response
                .into_inner()
                .source
                .ok_or(CliError::EmptyResponse)?;
            Ok(render_source(&source, cli.json))
        }
        SourcesCommand::Delete { id_or_name } => {
            let request = proto::DeleteSourceRequest {
                id_or_name: id_or_name.clone(),
            };
            client.delete_source(request).await.map_err(failed)?;
            Ok(render_deleted(id_or_name, cli.json))
        }
        SourcesCommand::Deploy(args) => {
            let request = proto::DeploySourceRequest {
                id_or_name: args.id_or_name.clone(),
            };
            let response = client.deploy_source(request).await.map_err(failed)?;
            let mut source = response
                .into_inner()
                .source
                .ok_or(CliError::EmptyResponse)?;
            if args.wait {
                source = wait_for_deploy(&mut client, source, args.wait_timeout)
                    .await
                    .map_err(|error| match error {
                        WaitError::Call(status) => failed(status),
                        WaitError::Cli(error) => error,
                    })?;
            }
            Ok(render_source(&source, cli.json))
        }
        SourcesCommand::RotateToken(args) => {
            let request = proto::RotateSecureTokenRequest {
                id_or_name: args.id_or_name.clone(),
                grace_period_seconds: args.grace_seconds,
            };
            let response = client
                .rotate_secure_token(request)
                .await
                .map_err(failed)?
                .into_inner();
            let source = response.source.ok_or(CliError::EmptyResponse)?;
            Ok(render_rotated_token(
                &response.token,
                &source,
                args.grace_seconds,
                cli.json,
            ))
        }
    }
}

/// Size of the chunks `imgmesh upload` streams.
const UPLOAD_CHUNK_BYTES: usize = 256 * 1024;

/// Runs `imgmesh upload`: reads the file and streams it to the registry.
async fn upload(cli: &Cli, args: &UploadArgs) -> Result<String, CliError> {
    let unreadable = |reason: String| CliError::File {
        path: args.file.display().to_string(),
        reason,
    };
    let key = match &args.key {
        Some(key) => key.clone(),
        None => args
            .file
            .file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned)
            .ok_or_else(|| unreadable("it has no usable file name: pass --key".to_owned()))?,
    };
    let body = Bytes::from(
        tokio::fs::read(&args.file)
            .await
            .map_err(|error| unreadable(error.to_string()))?,
    );
    let header = proto::UploadObjectHeader {
        id_or_name: args.source.clone(),
        key,
        content_type: args.content_type.clone().unwrap_or_default(),
        size: body.len() as u64,
    };
    let mut messages = vec![proto::UploadObjectRequest {
        part: Some(upload_object_request::Part::Header(header)),
    }];
    let mut offset = 0;
    while offset < body.len() {
        let end = (offset + UPLOAD_CHUNK_BYTES).min(body.len());
        messages.push(proto::UploadObjectRequest {
            part: Some(upload_object_request::Part::Chunk(body.slice(offset..end))),
        });
        offset = end;
    }
    let mut client = registry_client(cli)?;
    let stored = client
        .upload_object(tokio_stream::iter(messages))
        .await
        .map_err(|status| CliError::from_status(&cli.registry.registry_url, status))?
        .into_inner();
    Ok(render_uploaded(&args.source, &stored, cli.json))
}

/// Why waiting for a deploy stopped.
enum WaitError {
    Call(tonic::Status),
    Cli(CliError),
}

/// How often `--wait` asks for the deploy's state.
const DEPLOY_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls the Source until its deploy is no longer in flight: DEPLOYED is
/// returned, anything else is an error naming why.
async fn wait_for_deploy(
    client: &mut SourceRegistryServiceClient<GrpcChannel>,
    mut source: proto::Source,
    timeout_seconds: u64,
) -> Result<proto::Source, WaitError> {
    let deadline = Instant::now() + Duration::from_secs(timeout_seconds);
    while source.deploy_state().status() == proto::SourceStatus::Deploying {
        if Instant::now() >= deadline {
            return Err(WaitError::Cli(CliError::DeployTimeout {
                name: source.name,
                seconds: timeout_seconds,
            }));
        }
        tokio::time::sleep(DEPLOY_POLL_INTERVAL).await;
        let request = proto::GetSourceRequest {
            id_or_name: source.id.clone(),
        };
        let response = client.get_source(request).await.map_err(WaitError::Call)?;
        source = response
            .into_inner()
            .source
            .ok_or(WaitError::Cli(CliError::EmptyResponse))?;
    }
    match source.deploy_state().status() {
        proto::SourceStatus::Deployed => Ok(source),
        proto::SourceStatus::Failed => Err(WaitError::Cli(CliError::DeployFailed {
            name: source.name,
            reason: source.deploy_state.unwrap_or_default().message,
        })),
        _ => Err(WaitError::Cli(CliError::DeploySuperseded {
            name: source.name,
        })),
    }
}

/// The CreateSource request for `imgmesh sources create`.
fn create_request(args: &CreateArgs) -> proto::CreateSourceRequest {
    let upload_secret = args
        .upload_secret_access_key
        .as_ref()
        .map(|secret| secret.expose_secret().to_owned())
        .unwrap_or_default();
    proto::CreateSourceRequest {
        name: args.name.clone(),
        routing: Some(proto::Routing {
            subdomain: args.subdomain.clone(),
            custom_domains: args.custom_domains.clone(),
        }),
        location: Some(proto::Location {
            bucket: args.bucket.clone(),
            region: args.region.clone(),
            endpoint: args.endpoint.clone().unwrap_or_default(),
            path_prefix: args.path_prefix.clone().unwrap_or_default(),
        }),
        access_key: Some(proto::AccessKey {
            id: args.access_key_id.clone(),
            secret: args.secret_access_key.expose_secret().to_owned(),
        }),
        default_params: args.default_params.clone().unwrap_or_default(),
        cache_policy: Some(proto::CachePolicy {
            ttl_seconds: args.cache_ttl.unwrap_or(0),
            behavior: args
                .cache_ttl_behavior
                .map_or(CacheTtlBehavior::Unspecified, CacheTtlBehavior::from)
                .into(),
            error_ttl_seconds: args.cache_ttl_error.unwrap_or(0),
        }),
        fallback_images: Some(proto::FallbackImages {
            missing: Some(proto::FallbackImage {
                path: args.image_missing.clone().unwrap_or_default(),
                append_params: args.image_missing_append_params,
            }),
            error: Some(proto::FallbackImage {
                path: args.image_error.clone().unwrap_or_default(),
                append_params: args.image_error_append_params,
            }),
        }),
        secure_url_enabled: args.secure_urls.is_some_and(OnOff::is_on),
        upload_access_key: Some(proto::AccessKey {
            id: args.upload_access_key_id.clone().unwrap_or_default(),
            secret: upload_secret,
        }),
        disabled: args.disabled,
    }
}

/// An update being built from arguments: each option given sets its value
/// and adds its path to the update mask, so the registry changes only
/// those.
#[derive(Debug, Default)]
struct MaskedUpdate {
    source: proto::SourceUpdate,
    paths: Vec<String>,
}

// === impl MaskedUpdate ===

impl MaskedUpdate {
    /// Sets the field `field` picks to `value`, naming `path`, when the
    /// option was given.
    fn set<T>(
        &mut self,
        path: &str,
        value: Option<T>,
        field: impl FnOnce(&mut proto::SourceUpdate) -> &mut T,
    ) {
        if let Some(value) = value {
            *field(&mut self.source) = value;
            self.paths.push(path.to_owned());
        }
    }
}

/// The UpdateSource request for `imgmesh sources update`.
fn update_request(args: &UpdateArgs) -> proto::UpdateSourceRequest {
    let secret = |secret: &Option<secrecy::SecretString>| {
        secret
            .as_ref()
            .map(|secret| secret.expose_secret().to_owned())
    };
    let mut update = MaskedUpdate::default();
    update.set("routing.subdomain", args.subdomain.clone(), |s| {
        &mut s.routing.get_or_insert_default().subdomain
    });
    let domains_given = args.clear_custom_domains || !args.custom_domains.is_empty();
    update.set(
        "routing.custom_domains",
        domains_given.then(|| args.custom_domains.clone()),
        |s| &mut s.routing.get_or_insert_default().custom_domains,
    );
    update.set("location.bucket", args.bucket.clone(), |s| {
        &mut s.location.get_or_insert_default().bucket
    });
    update.set("location.region", args.region.clone(), |s| {
        &mut s.location.get_or_insert_default().region
    });
    update.set("location.endpoint", args.endpoint.clone(), |s| {
        &mut s.location.get_or_insert_default().endpoint
    });
    update.set("location.path_prefix", args.path_prefix.clone(), |s| {
        &mut s.location.get_or_insert_default().path_prefix
    });
    update.set("access_key.id", args.access_key_id.clone(), |s| {
        &mut s.access_key.get_or_insert_default().id
    });
    update.set("access_key.secret", secret(&args.secret_access_key), |s| {
        &mut s.access_key.get_or_insert_default().secret
    });
    update.set("default_params", args.default_params.clone(), |s| {
        &mut s.default_params
    });
    update.set("cache_policy.ttl_seconds", args.cache_ttl, |s| {
        &mut s.cache_policy.get_or_insert_default().ttl_seconds
    });
    update.set(
        "cache_policy.behavior",
        args.cache_ttl_behavior
            .map(|behavior| CacheTtlBehavior::from(behavior).into()),
        |s| &mut s.cache_policy.get_or_insert_default().behavior,
    );
    update.set(
        "cache_policy.error_ttl_seconds",
        args.cache_ttl_error,
        |s| &mut s.cache_policy.get_or_insert_default().error_ttl_seconds,
    );
    update.set(
        "fallback_images.missing.path",
        args.image_missing.clone(),
        |s| &mut missing_image(s).path,
    );
    update.set(
        "fallback_images.missing.append_params",
        args.image_missing_append_params,
        |s| &mut missing_image(s).append_params,
    );
    update.set(
        "fallback_images.error.path",
        args.image_error.clone(),
        |s| &mut error_image(s).path,
    );
    update.set(
        "fallback_images.error.append_params",
        args.image_error_append_params,
        |s| &mut error_image(s).append_params,
    );
    update.set(
        "secure_url_enabled",
        args.secure_urls.map(OnOff::is_on),
        |s| &mut s.secure_url_enabled,
    );
    update.set(
        "upload_access_key.id",
        args.upload_access_key_id.clone(),
        |s| &mut s.upload_access_key.get_or_insert_default().id,
    );
    update.set(
        "upload_access_key.secret",
        secret(&args.upload_secret_access_key),
        |s| &mut s.upload_access_key.get_or_insert_default().secret,
    );
    update.set("enabled", args.enabled, |s| &mut s.enabled);
    proto::UpdateSourceRequest {
        id_or_name: args.id_or_name.clone(),
        source: Some(update.source),
        update_mask: Some(imgmesh_proto::prost_types::FieldMask {
            paths: update.paths,
        }),
    }
}

/// The missing-asset fallback image of `source`, created if unset.
fn missing_image(source: &mut proto::SourceUpdate) -> &mut proto::FallbackImage {
    let images = source.fallback_images.get_or_insert_default();
    images.missing.get_or_insert_default()
}

/// The render-error fallback image of `source`, created if unset.
fn error_image(source: &mut proto::SourceUpdate) -> &mut proto::FallbackImage {
    let images = source.fallback_images.get_or_insert_default();
    images.error.get_or_insert_default()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use imgmesh_source_registry::{MasterKey, Registry, serve};
    use tokio::sync::oneshot;

    use super::*;
    use crate::url_signing::SignError;

    const SECRET: &str = "cli-test-secret-never-shown";

    /// A real registry served in-process on a loopback port.
    struct TestRegistry {
        url: String,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
        _dir: tempfile::TempDir,
    }

    impl TestRegistry {
        async fn start() -> TestRegistry {
            let dir = tempfile::tempdir().unwrap();
            let key = MasterKey::from_bytes([3; 32]);
            let registry = Registry::open(dir.path().join("registry.db"), key)
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(serve(registry, listener, async {
                let _ = stopped.await;
            }));
            TestRegistry {
                url,
                stop,
                task,
                _dir: dir,
            }
        }

        /// Runs `imgmesh --insecure-plaintext --registry-url=<this> <args>`
        /// (the fake registry serves plaintext).
        async fn cli(&self, args: &[&str]) -> Result<String, CliError> {
            let url = format!("--registry-url={}", self.url);
            let argv = ["imgmesh", "--insecure-plaintext", url.as_str()]
                .into_iter()
                .chain(args.iter().copied());
            run(&Cli::try_parse_from(argv).unwrap()).await
        }

        async fn cli_json(&self, args: &[&str]) -> serde_json::Value {
            let mut with_json = vec!["--json"];
            with_json.extend_from_slice(args);
            serde_json::from_str(&self.cli(&with_json).await.unwrap()).unwrap()
        }

        async fn stop(self) {
            self.stop.send(()).unwrap();
            self.task.await.unwrap().unwrap();
        }
    }

    fn create_args(name: &str) -> Vec<String> {
        [
            "sources",
            "create",
            &format!("--name={name}"),
            &format!("--subdomain={name}"),
            "--bucket=images",
            "--region=us-east-1",
            "--access-key-id=AKIAIOSFODNN7EXAMPLE",
            &format!("--secret-access-key={SECRET}"),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }

    /// Create, list, get, update and delete work end to end, and no output
    /// shows the secret.
    #[tokio::test]
    async fn manages_sources_end_to_end() {
        let registry = TestRegistry::start().await;
        let mut args = create_args("demo");
        args.push("--path-prefix=/photos/".into());
        let created = registry.cli_json(&strs(&args)).await;
        assert_eq!(created["name"], "demo");
        assert_eq!(created["path_prefix"], "photos");
        assert_eq!(created["access_key_id_hint"], "…MPLE");
        assert_eq!(created["config_version"], 1);

        let text = registry.cli(&strs(&create_args("shop"))).await.unwrap();
        assert!(text.contains("name:           shop\n"), "{text}");

        let listed = registry.cli_json(&["sources", "list"]).await;
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["demo", "shop"]);
        let table = registry.cli(&["sources", "list"]).await.unwrap();
        assert_eq!(table.lines().count(), 3, "{table}");

        let fetched = registry.cli_json(&["sources", "get", "demo"]).await;
        assert_eq!(fetched["id"], created["id"]);

        let id = created["id"].as_str().unwrap();
        let updated = registry
            .cli_json(&["sources", "update", id, "--bucket=other", "--cache-ttl=60"])
            .await;
        assert_eq!(updated["bucket"], "other");
        assert_eq!(updated["cache_ttl_seconds"], 60);
        assert_eq!(updated["config_version"], 2);

        let shown = format!("{created}{text}{listed}{table}{fetched}{updated}");
        assert!(!shown.contains(SECRET));

        let deleted = registry.cli(&["sources", "delete", "demo"]).await.unwrap();
        assert_eq!(deleted, "deleted source demo\n");
        let gone = registry.cli(&["sources", "get", "demo"]).await.unwrap_err();
        assert!(gone.to_string().contains("not found"), "{gone}");
        registry.stop().await;
    }

    /// A bad field is reported with the field's name, a taken subdomain as
    /// "already exists", and neither shows the secret.
    #[tokio::test]
    async fn reports_registry_errors() {
        let registry = TestRegistry::start().await;
        let mut bad = create_args("bad");
        bad[3] = "--subdomain=Not_A_Label".into();
        let error = registry.cli(&strs(&bad)).await.unwrap_err();
        assert!(matches!(error, CliError::Registry(_)));
        assert!(error.to_string().starts_with("subdomain: "), "{error}");

        registry.cli(&strs(&create_args("demo"))).await.unwrap();
        let mut duplicate = create_args("demo");
        duplicate[2] = "--name=demo-2".into();
        let error = registry.cli(&strs(&duplicate)).await.unwrap_err();
        assert!(error.to_string().contains("already exists"), "{error}");
        assert!(!error.to_string().contains(SECRET));
        registry.stop().await;
    }

    /// New settings go through create and update and come back in the JSON.
    #[tokio::test]
    async fn manages_source_settings() {
        let registry = TestRegistry::start().await;
        let mut args = create_args("demo");
        args.extend(
            [
                "--custom-domain=IMG.example.com",
                "--cache-ttl-behavior=override_origin",
                "--cache-ttl-error=60",
                "--image-missing=missing.png",
                "--image-missing-append-params",
                "--secure-urls=on",
                "--disabled",
            ]
            .map(str::to_owned),
        );
        let created = registry.cli_json(&strs(&args)).await;
        assert_eq!(
            created["custom_domains"],
            serde_json::json!(["img.example.com"])
        );
        assert_eq!(created["cache_ttl_behavior"], "override_origin");
        assert_eq!(created["cache_ttl_error_seconds"], 60);
        assert_eq!(created["image_missing"], "/missing.png");
        assert_eq!(created["image_missing_append_params"], true);
        assert_eq!(created["secure_url_enabled"], true);
        assert_eq!(created["enabled"], false);
        assert_eq!(created["status"], "pending");

        let updated = registry
            .cli_json(&[
                "sources",
                "update",
                "demo",
                "--clear-custom-domains",
                "--enabled=true",
                "--secure-urls=off",
                "--image-missing=",
            ])
            .await;
        assert_eq!(updated["custom_domains"], serde_json::json!([]));
        assert_eq!(updated["enabled"], true);
        assert_eq!(updated["secure_url_enabled"], false);
        assert_eq!(updated["image_missing"], "");
        assert_eq!(updated["config_version"], 2);

        let error = registry
            .cli(&["sources", "update", "demo", "--default-params=frobnicate=1"])
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "default_params: unknown parameter \"frobnicate\""
        );
        registry.stop().await;
    }

    /// `deploy --wait` on a Source whose endpoint is unreachable exits with
    /// the registry's reason; without --wait it returns at once, deploying.
    #[tokio::test]
    async fn deploy_wait_reports_failure() {
        let registry = TestRegistry::start().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut args = create_args("demo");
        args.push(format!("--endpoint=http://127.0.0.1:{port}"));
        registry.cli(&strs(&args)).await.unwrap();

        let queued = registry.cli_json(&["sources", "deploy", "demo"]).await;
        assert_eq!(queued["status"], "deploying");
        let error = registry
            .cli(&["sources", "deploy", "demo", "--wait"])
            .await
            .unwrap_err();
        assert!(matches!(error, CliError::DeployFailed { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "deploy of demo failed: could not connect to the s3 endpoint"
        );
        let shown = registry.cli(&["sources", "get", "demo"]).await.unwrap();
        assert!(
            shown.contains("status:         failed (could not connect to the s3 endpoint)"),
            "{shown}"
        );
        let unknown = registry
            .cli(&["sources", "deploy", "nobody", "--wait"])
            .await
            .unwrap_err();
        assert!(unknown.to_string().contains("not found"), "{unknown}");
        registry.stop().await;
    }

    /// `rotate-token` prints the new token once; get never shows it, and
    /// a second rotation with a grace period leaves two active.
    #[tokio::test]
    async fn rotate_token_prints_the_token_once() {
        let registry = TestRegistry::start().await;
        registry.cli(&strs(&create_args("demo"))).await.unwrap();
        let text = registry
            .cli(&["sources", "rotate-token", "demo", "--grace=0"])
            .await
            .unwrap();
        let token = text.lines().nth(1).unwrap().to_owned();
        assert_eq!(token.len(), 32, "{text}");
        assert!(
            text.contains("stopped working now; 1 token(s) active"),
            "{text}"
        );
        let rotated = registry
            .cli_json(&["sources", "rotate-token", "demo", "--grace=600"])
            .await;
        let second = rotated["token"].as_str().unwrap();
        assert_ne!(second, token);
        assert_eq!(rotated["source"]["active_secure_tokens"], 2);
        let shown = registry.cli(&["sources", "get", "demo"]).await.unwrap();
        assert!(
            !shown.contains(&token) && !shown.contains(second),
            "{shown}"
        );
        assert!(shown.contains("(2 active token(s))"), "{shown}");
        registry.stop().await;
    }

    /// `upload` names why the registry refused, and a missing file.
    #[tokio::test]
    async fn upload_reports_refusals() {
        let registry = TestRegistry::start().await;
        registry.cli(&strs(&create_args("demo"))).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dog.png");
        std::fs::write(&file, b"\x89PNG\r\n\x1a\n").unwrap();
        let file = file.display().to_string();
        let error = registry.cli(&["upload", "demo", &file]).await.unwrap_err();
        assert_eq!(error.to_string(), "the source is not deployed");
        let error = registry
            .cli(&["upload", "demo", &file, "--key=../escape.png"])
            .await
            .unwrap_err();
        assert!(error.to_string().starts_with("key: "), "{error}");
        let missing = dir.path().join("missing.png").display().to_string();
        let error = registry
            .cli(&["upload", "demo", &missing])
            .await
            .unwrap_err();
        assert!(matches!(error, CliError::File { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot read {missing}"))
        );
        registry.stop().await;
    }

    /// `sign` works offline and prints the signed URL, as JSON with --json.
    #[tokio::test]
    async fn sign_prints_the_signed_url() {
        let cli = |args: &[&str]| {
            Cli::try_parse_from(
                ["imgmesh", "--registry-url=http://127.0.0.1:1"]
                    .into_iter()
                    .chain(args.iter().copied()),
            )
            .unwrap()
        };
        let text = run(&cli(&[
            "sign",
            "/images/demo.png?w=200",
            "--token=10adc394",
        ]))
        .await
        .unwrap();
        assert_eq!(
            text,
            "/images/demo.png?w=200&s=da421114ca238d1f4a927b889f67c34e\n"
        );
        let json = run(&cli(&[
            "--json",
            "sign",
            "/users/1.png",
            "--token=FOO123bar",
        ]))
        .await
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["url"],
            "/users/1.png?s=6797c24146142d5b40bde3141fd3600c"
        );
        let error = run(&cli(&["sign", "users/1.png", "--token=x"]))
            .await
            .unwrap_err();
        assert!(matches!(error, CliError::Sign(SignError::NoPath)));
    }

    /// A registry that is not listening is reported as unreachable, naming
    /// the URL.
    #[tokio::test]
    async fn reports_an_unreachable_registry() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let cli = Cli::try_parse_from([
            "imgmesh",
            "--insecure-plaintext",
            "--registry-url",
            &url,
            "sources",
            "list",
        ])
        .unwrap();
        let error = run(&cli).await.unwrap_err();
        assert!(matches!(error, CliError::Unreachable { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot reach the registry at {url}")),
            "{error}"
        );
    }

    /// A registry URL that is not a URI is reported as such.
    #[tokio::test]
    async fn reports_an_invalid_registry_url() {
        let cli = Cli::try_parse_from([
            "imgmesh",
            "--insecure-plaintext",
            "--registry-url=http://bad host",
            "sources",
            "list",
        ])
        .unwrap();
        let error = run(&cli).await.unwrap_err();
        assert!(matches!(error, CliError::RegistryUrl { .. }), "{error:?}");
    }
}
