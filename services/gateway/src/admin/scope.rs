//! What an admin credential may do: the scope of the named token (or the
//! bootstrap token) a request presented, checked before the handler runs.
//!
//! | scope | reads | changes |
//! |---|---|---|
//! | full admin (`bootstrap` is one) | everything | everything |
//! | read-only | everything | nothing |
//! | Source admin of a list of Sources | its Sources, their audit log | its Sources: edit, delete, deploy, rotate, purge, upload |
//!
//! A Source admin cannot create Sources, nor see or touch API keys or admin
//! tokens; `GET /v1/sources` lists only its Sources (the handler filters
//! with [`AdminCredential::may_act_on`]). A refusal is a 403 `FORBIDDEN`
//! naming the credential and what it lacks; refused changes are audited
//! like the others.

use http::Method;
use imgmesh_proto::registry::v1::GetSourceRequest;

use super::access::AdminApi;
use super::credential::{AdminCredential, Scope};
use super::error::AdminError;
use super::registry_call::{call, timed};
use crate::asset_path::percent_decoded;

/// What a request's path addresses, as far as scopes care.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `/v1/sources` itself (list or create).
    Sources,
    /// `/v1/sources/{id_or_name}` or below it (decoded).
    Source(String),
    /// `/v1/audit`, with its `source` query parameter (empty when absent).
    Audit(String),
    /// `/v1/api-keys…` or `/v1/admin-tokens…`: credentials.
    Credentials,
    /// Anything else (answered 404 or 405 by the router).
    Other,
}

/// Checks that `credential` may make the request `method path?query`;
/// for a Source admin, resolves the Source the path names (by id or name)
/// through the registry. Returns the Source id it resolved, if any.
pub(crate) async fn authorize(
    admin: &AdminApi,
    credential: &AdminCredential,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<Option<String>, AdminError> {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let name = &credential.name;
    match &credential.scope {
        Scope::FullAdmin => Ok(None),
        Scope::ReadOnly if reads => Ok(None),
        Scope::ReadOnly => Err(AdminError::forbidden(format!(
            "admin token {name:?} is read-only: it cannot change anything"
        ))),
        Scope::SourceAdmin(_) => match target(path, query) {
            Target::Source(id_or_name) => {
                let id = source_id(admin, &id_or_name).await?;
                if id.as_deref().is_some_and(|id| credential.may_act_on(id)) {
                    Ok(id)
                } else {
                    Err(not_its_source(credential, &id_or_name))
                }
            }
            Target::Sources if reads => Ok(None),
            Target::Sources => Err(AdminError::forbidden(format!(
                "admin token {name:?} is {}: it cannot create Sources",
                credential.scope_words()
            ))),
            Target::Audit(source) if source.is_empty() => Err(AdminError::forbidden(format!(
                "admin token {name:?} is {}: ask for one of its Sources' audit log with ?source=<id>",
                credential.scope_words()
            ))),
            Target::Audit(source) => {
                let id = source_id(admin, &source).await?;
                if id.as_deref().is_some_and(|id| credential.may_act_on(id))
                    || credential.may_act_on(&source)
                {
                    Ok(id)
                } else {
                    Err(not_its_source(credential, &source))
                }
            }
            Target::Credentials => Err(AdminError::forbidden(format!(
                "admin token {name:?} is {}: API keys and admin tokens need a full admin",
                credential.scope_words()
            ))),
            Target::Other => Ok(None),
        },
    }
}

/// The refusal of a Source outside a Source admin's list (the same whether
/// or not the Source exists, so a scoped token learns nothing of others).
fn not_its_source(credential: &AdminCredential, id_or_name: &str) -> AdminError {
    AdminError::forbidden(format!(
        "admin token {:?} may not act on Source {id_or_name:?}",
        credential.name
    ))
}

/// The id of the Source `id_or_name` names; `None` when there is none.
async fn source_id(admin: &AdminApi, id_or_name: &str) -> Result<Option<String>, AdminError> {
    let answer = call(admin.registry().get_source(timed(GetSourceRequest {
        id_or_name: id_or_name.to_owned(),
    })))
    .await;
    match answer {
        Ok(response) => Ok(response.source.map(|source| source.id)),
        Err(error) if error.status() == http::StatusCode::NOT_FOUND => Ok(None),
        Err(error) => Err(error),
    }
}

/// What `path` addresses.
fn target(path: &str, query: Option<&str>) -> Target {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "sources"] => Target::Sources,
        ["v1", "sources", id_or_name, ..] => {
            percent_decoded(id_or_name).map_or(Target::Other, Target::Source)
        }
        ["v1", "audit"] => Target::Audit(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .find(|(name, _)| name == "source")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default(),
        ),
        ["v1", "api-keys" | "admin-tokens", ..] => Target::Credentials,
        _ => Target::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths map to what they address; Source names are percent-decoded and
    /// the audit log's `source` parameter is read from the query.
    #[test]
    fn targets() {
        assert_eq!(target("/v1/sources", None), Target::Sources);
        assert_eq!(
            target("/v1/sources/my%20shop/deploy", None),
            Target::Source("my shop".to_owned())
        );
        assert_eq!(
            target("/v1/audit", Some("limit=3&source=src_1")),
            Target::Audit("src_1".to_owned())
        );
        assert_eq!(target("/v1/audit", None), Target::Audit(String::new()));
        assert_eq!(target("/v1/admin-tokens/adm_1", None), Target::Credentials);
        assert_eq!(target("/v1/api-keys", None), Target::Credentials);
        assert_eq!(target("/v2/x", None), Target::Other);
    }
}
