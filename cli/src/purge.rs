//! `imgmesh purge`: finds the Source in the registry, then asks a renderer
//! to bump the purge counter of one asset, a directory or the whole Source
//! (one `INCR` in the Redis every renderer shares, so it takes effect on
//! every replica at once). The renderer keeps no audit log, so the CLI
//! records the purge in the registry's (`RecordAuditEvent`; the registry
//! files it under the CLI's mesh identity `cli`, whatever it is told).

use imgmesh_proto::registry::v1::{AuditEvent, GetSourceRequest, RecordAuditEventRequest};
use imgmesh_proto::renderer::v1::{PurgeRequest, purge_request};
use percent_encoding::percent_decode_str;

use crate::args::{Cli, PurgeArgs};
use crate::error::CliError;
use crate::grpc_clients::{registry_client, renderer_client};
use crate::source_output::to_json;

/// Runs `imgmesh purge`.
pub(crate) async fn purge(cli: &Cli, args: &PurgeArgs) -> Result<String, CliError> {
    let (target, scope, shown) = match (&args.path, &args.prefix) {
        (Some(path), _) => {
            let path = asset_path(path)?;
            (
                Some(purge_request::Target::Path(path.clone())),
                "path",
                serde_json::json!(path),
            )
        }
        (None, Some(prefix)) => (
            Some(purge_request::Target::Prefix(prefix.clone())),
            "prefix",
            serde_json::json!(prefix),
        ),
        (None, None) => (None, "all", serde_json::json!(true)),
    };
    let source = registry_client(cli)?
        .get_source(GetSourceRequest {
            id_or_name: args.id_or_name.clone(),
        })
        .await
        .map_err(|status| CliError::from_status(&cli.registry.registry_url, status))?
        .into_inner()
        .source
        .ok_or(CliError::EmptyResponse)?;
    let answer = renderer_client(cli, &args.renderer_url)?
        .purge(PurgeRequest {
            source_id: source.id.clone(),
            target,
        })
        .await;
    let result = match &answer {
        Ok(_) => "ok".to_owned(),
        Err(status) => imgmesh_errors::ErrorCode::of_status(status)
            .reason()
            .to_owned(),
    };
    record_purge(cli, &source.id, scope, result).await;
    let purged = answer
        .map_err(|status| CliError::from_renderer_status(&args.renderer_url, status))?
        .into_inner();
    Ok(if cli.json {
        to_json(&serde_json::json!({
            "source_id": source.id,
            "purged": { scope: shown },
            "generation": purged.generation,
        }))
    } else {
        let what = match scope {
            "all" => "every derivative".to_owned(),
            _ => format!("{scope} {}", shown.as_str().unwrap_or_default()),
        };
        format!(
            "purged {what} of {} ({}); generation {}\n",
            source.name, source.id, purged.generation
        )
    })
}

/// Records the purge of `scope` on Source `source_id` in the registry's
/// audit log. The purge has happened (or been refused) by now, so a failure
/// to record it is said on stderr rather than hiding the purge's answer.
async fn record_purge(cli: &Cli, source_id: &str, scope: &str, result: String) {
    let event = AuditEvent {
        credential: "cli".to_owned(),
        action: "source.purge".to_owned(),
        source_id: source_id.to_owned(),
        fields: vec![scope.to_owned()],
        result,
        ..AuditEvent::default()
    };
    let recorded = match registry_client(cli) {
        Ok(mut registry) => registry
            .record_audit_event(RecordAuditEventRequest { event: Some(event) })
            .await
            .map_err(|status| CliError::from_status(&cli.registry.registry_url, status)),
        Err(error) => Err(error),
    };
    if let Err(error) = recorded {
        eprintln!("warning: the purge is not in the audit log: {error}");
    }
}

/// The asset path `given` names: an image URL's path, or a path; decoded,
/// without leading `/`, query or fragment.
fn asset_path(given: &str) -> Result<String, CliError> {
    let path = match url::Url::parse(given) {
        Ok(url) if url.has_host() => url.path().to_owned(),
        _ => given
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let decoded = percent_decode_str(&path)
        .decode_utf8()
        .map_err(|_| CliError::PurgePath(given.to_owned()))?;
    let trimmed = decoded.trim_start_matches('/');
    if trimmed.is_empty() || trimmed.ends_with('/') {
        return Err(CliError::PurgePath(given.to_owned()));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URLs and paths name the same asset; directories and nothing are refused.
    #[test]
    fn paths_and_urls_name_assets() {
        for given in [
            "photos/café.jpg",
            "/photos/caf%C3%A9.jpg",
            "/photos/café.jpg?w=100",
            "https://demo.imgmesh.test/photos/caf%C3%A9.jpg?w=100&s=abc",
        ] {
            assert_eq!(asset_path(given).unwrap(), "photos/café.jpg", "{given}");
        }
        for given in ["", "/", "https://demo.imgmesh.test", "photos/", "/%FF.jpg"] {
            assert!(
                matches!(asset_path(given), Err(CliError::PurgePath(_))),
                "{given}"
            );
        }
    }
}
