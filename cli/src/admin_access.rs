//! `imgmesh admin-tokens …` and `imgmesh audit`: the admin API's named,
//! scoped credentials and the audit log of changes, straight from the
//! registry. Token changes made here are recorded in the audit log by the
//! registry under the CLI's own identity (`cli`).

use std::time::{SystemTime, UNIX_EPOCH};

use imgmesh_proto::json::{admin_scope_name, admin_token as token_json, audit_event as event_json};
use imgmesh_proto::registry::v1 as proto;

use crate::args::{AdminScopeArg, AdminTokensCommand, AuditArgs, Cli};
use crate::error::CliError;
use crate::grpc_clients::registry_client;
use crate::source_output::{format_unix_time, to_json};

/// Runs `imgmesh admin-tokens …`.
pub(crate) async fn admin_tokens(
    cli: &Cli,
    command: &AdminTokensCommand,
) -> Result<String, CliError> {
    let mut client = registry_client(cli)?;
    let failed = |status| CliError::from_status(&cli.registry.registry_url, status);
    match command {
        AdminTokensCommand::Create(args) => {
            let expires_at_unix = args.expires_in_seconds.map_or(0, |seconds| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs());
                i64::try_from(now.saturating_add(seconds)).unwrap_or(i64::MAX)
            });
            let scope = match args.scope {
                AdminScopeArg::ReadOnly => proto::AdminScope::ReadOnly,
                AdminScopeArg::SourceAdmin => proto::AdminScope::SourceAdmin,
                AdminScopeArg::FullAdmin => proto::AdminScope::FullAdmin,
            };
            let response = client
                .create_admin_token(proto::CreateAdminTokenRequest {
                    name: args.name.clone(),
                    scope: scope.into(),
                    source_ids: args.sources.clone(),
                    expires_at_unix,
                    actor: String::new(),
                })
                .await
                .map_err(failed)?
                .into_inner();
            let token = response.admin_token.ok_or(CliError::EmptyResponse)?;
            Ok(if cli.json {
                let mut json = token_json(&token);
                json["token"] = serde_json::Value::String(response.secret);
                to_json(&json)
            } else {
                format!(
                    "{}token: {}\n(store it now: it is never shown again)\n",
                    token_text(&token),
                    response.secret
                )
            })
        }
        AdminTokensCommand::List => {
            let tokens = client
                .list_admin_tokens(proto::ListAdminTokensRequest {})
                .await
                .map_err(failed)?
                .into_inner()
                .admin_tokens;
            Ok(if cli.json {
                let tokens: Vec<_> = tokens.iter().map(token_json).collect();
                to_json(&serde_json::json!({ "admin_tokens": tokens }))
            } else {
                tokens.iter().map(token_text).collect::<Vec<_>>().join("\n")
            })
        }
        AdminTokensCommand::Revoke { id } => {
            let token = client
                .revoke_admin_token(proto::RevokeAdminTokenRequest {
                    id: id.clone(),
                    actor: String::new(),
                })
                .await
                .map_err(failed)?
                .into_inner()
                .admin_token
                .ok_or(CliError::EmptyResponse)?;
            Ok(if cli.json {
                to_json(&token_json(&token))
            } else {
                token_text(&token)
            })
        }
    }
}

/// Runs `imgmesh audit`.
pub(crate) async fn audit(cli: &Cli, args: &AuditArgs) -> Result<String, CliError> {
    let events = registry_client(cli)?
        .list_audit_events(proto::ListAuditEventsRequest {
            source_id: args.source.clone().unwrap_or_default(),
            limit: args.limit,
        })
        .await
        .map_err(|status| CliError::from_status(&cli.registry.registry_url, status))?
        .into_inner()
        .events;
    Ok(if cli.json {
        let events: Vec<_> = events.iter().map(event_json).collect();
        to_json(&serde_json::json!({ "events": events }))
    } else {
        events.iter().map(event_line).collect()
    })
}

/// An admin token as `key: value` lines.
fn token_text(token: &proto::AdminToken) -> String {
    let when = |seconds: i64, none: &str| {
        if seconds == 0 {
            none.to_owned()
        } else {
            format_unix_time(seconds)
        }
    };
    format!(
        "id: {}\nname: {}\nscope: {}\nsources: {}\ncreated_at: {}\nexpires_at: {}\nrevoked_at: {}\n",
        token.id,
        token.name,
        admin_scope_name(token.scope()),
        if token.source_ids.is_empty() {
            "-".to_owned()
        } else {
            token.source_ids.join(", ")
        },
        format_unix_time(token.created_at_unix),
        when(token.expires_at_unix, "never"),
        when(token.revoked_at_unix, "no"),
    )
}

/// An audit event as one line: when, credential, action, Source or target,
/// fields, result.
fn event_line(event: &proto::AuditEvent) -> String {
    let subject = [event.source_id.as_str(), event.target_id.as_str()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let fields = if event.fields.is_empty() {
        String::new()
    } else {
        format!(" [{}]", event.fields.join(","))
    };
    format!(
        "{}  {}  {}  {}{}  {}\n",
        format_unix_time(event.at_unix_micros.div_euclid(1_000_000)),
        event.credential,
        event.action,
        if subject.is_empty() { "-" } else { &subject },
        fields,
        event.result,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event's line names when, who, what, on what, which fields and the result.
    #[test]
    fn event_lines() {
        let line = event_line(&proto::AuditEvent {
            id: "aud_1".to_owned(),
            at_unix_micros: 86_400_000_000,
            credential: "shop team".to_owned(),
            action: "source.update".to_owned(),
            source_id: "src_1".to_owned(),
            fields: vec!["access_key".to_owned(), "routing".to_owned()],
            target_id: String::new(),
            result: "ok".to_owned(),
        });
        assert!(line.starts_with("1970-01-02"), "{line}");
        assert!(
            line.ends_with("  shop team  source.update  src_1 [access_key,routing]  ok\n"),
            "{line}"
        );
    }
}
