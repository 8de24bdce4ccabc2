//! The audit log (`audit_log`, migration 0005): one row per change made
//! through the admin API, or to an admin token by the CLI. A row names the
//! credential, the action, the Source, the fields the change set (names,
//! never values) and the result; it holds no secret by construction.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::SourceStore;
use crate::error::RegistryError;

/// Events one query returns unless asked otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 100;

/// Most events one query returns.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// Longest text kept in any one column (credential, action, Source, field
/// name, target, result): the gateway sends short names, and a caller that
/// sends more cannot grow a row without bound.
const MAX_COLUMN_CHARS: usize = 200;

/// Most field names one event keeps.
const MAX_FIELDS: usize = 64;

/// One change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct AuditEvent {
    /// Random id.
    pub(crate) id: String,
    /// When, Unix microseconds.
    pub(crate) at_micros: i64,
    /// The name of the credential that asked.
    pub(crate) credential: String,
    /// What it asked, e.g. `source.update`.
    pub(crate) action: String,
    /// The Source it touched; empty for none.
    pub(crate) source_id: String,
    /// The names of the fields it set.
    pub(crate) fields: Vec<String>,
    /// The key or token it created or revoked; empty for none.
    pub(crate) target_id: String,
    /// `ok`, or the error code it was refused with.
    pub(crate) result: String,
}

// === impl SourceStore: audit log ===

impl SourceStore {
    /// Appends `event` at `at_micros` with a fresh id; returns it as stored.
    pub(crate) async fn record_audit_event(
        &self,
        event: AuditEvent,
        at_micros: i64,
    ) -> Result<AuditEvent, RegistryError> {
        if event.credential.trim().is_empty() || event.action.trim().is_empty() {
            return Err(RegistryError::invalid(
                "event",
                "must name its credential and action",
            ));
        }
        if event.result.trim().is_empty() {
            return Err(RegistryError::invalid("event.result", "must not be empty"));
        }
        let fields: Vec<String> = event
            .fields
            .iter()
            .take(MAX_FIELDS)
            .map(|field| bounded(&field.replace(' ', "_")))
            .collect();
        let event = AuditEvent {
            id: format!("aud_{}", hex::encode(rand::random::<[u8; 8]>())),
            at_micros,
            credential: bounded(&event.credential),
            action: bounded(&event.action),
            source_id: bounded(&event.source_id),
            fields,
            target_id: bounded(&event.target_id),
            result: bounded(&event.result),
        };
        sqlx::query(
            "INSERT INTO audit_log (id, at_micros, credential, action, source_id, fields, \
             target_id, result) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&event.id)
        .bind(event.at_micros)
        .bind(&event.credential)
        .bind(&event.action)
        .bind(&event.source_id)
        .bind(event.fields.join(" "))
        .bind(&event.target_id)
        .bind(&event.result)
        .execute(&self.pool)
        .await?;
        Ok(event)
    }

    /// The newest `limit` events (0: [`DEFAULT_LIMIT`], at most
    /// [`MAX_LIMIT`]), only Source `source_id`'s when it is not empty,
    /// newest first.
    pub(crate) async fn list_audit_events(
        &self,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RegistryError> {
        let limit = i64::from(match limit {
            0 => DEFAULT_LIMIT,
            limit => limit.min(MAX_LIMIT),
        });
        let rows = if source_id.is_empty() {
            sqlx::query(
                "SELECT id, at_micros, credential, action, source_id, fields, target_id, result \
                 FROM audit_log ORDER BY at_micros DESC, id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query(
                "SELECT id, at_micros, credential, action, source_id, fields, target_id, result \
                 FROM audit_log WHERE source_id = $1 ORDER BY at_micros DESC, id DESC LIMIT $2",
            )
            .bind(source_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        };
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }
}

/// `text` cut to [`MAX_COLUMN_CHARS`] characters.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_COLUMN_CHARS).collect()
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    let fields: String = row.try_get("fields")?;
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at_micros: row.try_get("at_micros")?,
        credential: row.try_get("credential")?,
        action: row.try_get("action")?,
        source_id: row.try_get("source_id")?,
        fields: fields
            .split(' ')
            .filter(|field| !field.is_empty())
            .map(str::to_owned)
            .collect(),
        target_id: row.try_get("target_id")?,
        result: row.try_get("result")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db::{TestDb, on_both_backends};

    on_both_backends!(
        records_and_lists_newest_first,
        incomplete_events_are_refused
    );

    fn event(credential: &str, action: &str, source_id: &str) -> AuditEvent {
        AuditEvent {
            credential: credential.to_owned(),
            action: action.to_owned(),
            source_id: source_id.to_owned(),
            fields: vec!["access_key".to_owned(), "cache_ttl".to_owned()],
            result: "ok".to_owned(),
            ..AuditEvent::default()
        }
    }

    /// Events come back newest first, filtered by Source and limited.
    async fn records_and_lists_newest_first(db: TestDb) {
        let store = SourceStore::open(&db.database()).await.unwrap();
        let first = store
            .record_audit_event(event("bootstrap", "source.update", "src_a"), 10)
            .await
            .unwrap();
        let second = store
            .record_audit_event(event("ci", "source.deploy", "src_b"), 20)
            .await
            .unwrap();
        let third = store
            .record_audit_event(event("ci", "api_key.create", ""), 30)
            .await
            .unwrap();
        assert_eq!(first.fields, vec!["access_key", "cache_ttl"]);
        assert_eq!(
            store.list_audit_events("", 0).await.unwrap(),
            vec![third.clone(), second.clone(), first.clone()]
        );
        assert_eq!(
            store.list_audit_events("src_a", 0).await.unwrap(),
            vec![first]
        );
        assert_eq!(store.list_audit_events("", 1).await.unwrap(), vec![third]);
    }

    /// An event must name its credential, action and result.
    async fn incomplete_events_are_refused(db: TestDb) {
        let store = SourceStore::open(&db.database()).await.unwrap();
        for incomplete in [
            event("", "source.update", "src_a"),
            event("ci", " ", "src_a"),
            AuditEvent {
                result: String::new(),
                ..event("ci", "source.update", "src_a")
            },
        ] {
            let refused = store.record_audit_event(incomplete, 1).await;
            assert!(
                matches!(refused, Err(RegistryError::InvalidField { .. })),
                "{refused:?}"
            );
        }
        assert!(store.list_audit_events("", 0).await.unwrap().is_empty());
    }
}
