//! The registry's operations, independent of the transport: validate,
//! seal secrets, store, deploy, and hand back the public view.

use std::sync::Arc;

use imgmesh_proto::registry::v1 as proto;
use imgmesh_s3_client::{AccessKey, BucketAccess, BucketClient};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::clock::{unix_now, unix_now_ceil};
use crate::config::DEFAULT_MAX_UPLOAD_BYTES;
use crate::credentials_crypto::{MasterKeys, SealedSecret};
use crate::database::Database;
use crate::deploy_checks::{self, DeployOutcome};
use crate::error::RegistryError;
use crate::source::routing;
use crate::source::{
    NewSource, ReadAccess, SECRET_ACCESS_KEY_FIELD, SourceChanges, SourceRecord,
    UPLOAD_SECRET_ACCESS_KEY_FIELD, UploadChange, secure_token_field,
};
use crate::source_fields::SOURCE_ID_PREFIX;
use crate::store::{Inserted, SourceStore, TokenRow, UpdateWrites};

/// How often a create draws a new id after a collision, and how often an
/// update retries after losing a race, before giving up.
const MAX_ATTEMPTS: usize = 5;

/// How many deploys check their buckets at the same time.
const MAX_CONCURRENT_DEPLOYS: usize = 4;

/// The Source registry: every Source operation the gRPC services expose.
/// Cheap to clone; clones share the database pool and the master keys.
#[derive(Debug, Clone)]
pub struct Registry {
    store: SourceStore,
    keys: Arc<MasterKeys>,
    /// Bounds how many deploys check their buckets at once.
    deploy_slots: Arc<Semaphore>,
    /// Largest upload accepted, in bytes.
    max_upload_bytes: u64,
}

// === impl Registry ===

impl Registry {
    /// Opens `database` (a SQLite path or a PostgreSQL URL), applies
    /// migrations, converts secrets stored before envelope encryption,
    /// checks that `keys` open every stored secret, and queues again the
    /// deploys a previous run left in flight.
    pub async fn open(
        database: impl Into<Database>,
        keys: impl Into<MasterKeys>,
    ) -> Result<Registry, RegistryError> {
        let registry = Registry::open_for_maintenance(database.into(), keys.into()).await?;
        registry.resume_deploys().await?;
        Ok(registry)
    }

    /// Opens like [`Registry::open`] but runs no background work (no
    /// deploys): for maintenance commands.
    pub(crate) async fn open_for_maintenance(
        database: Database,
        keys: MasterKeys,
    ) -> Result<Registry, RegistryError> {
        let store = SourceStore::open(&database).await?;
        let registry = Registry {
            store,
            keys: Arc::new(keys),
            deploy_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_DEPLOYS)),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        };
        if let Err(error) = registry.check_master_keys().await {
            registry.close().await;
            return Err(error);
        }
        registry.convert_legacy_secrets().await?;
        Ok(registry)
    }

    /// The same registry refusing uploads over `max_upload_bytes`.
    pub fn with_max_upload_bytes(mut self, max_upload_bytes: u64) -> Registry {
        self.max_upload_bytes = max_upload_bytes;
        self
    }

    /// Largest upload accepted, in bytes.
    pub(crate) fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    /// Closes the database pool.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Whether the database answers a query now (the registry's health
    /// check); the error says why not, without the database's URL.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.store.ping().await
    }

    /// The master keys the registry runs with.
    pub(crate) fn keys(&self) -> &MasterKeys {
        &self.keys
    }

    /// The store (for the master-key rotation).
    pub(crate) fn store(&self) -> &SourceStore {
        &self.store
    }

    /// Refuses keys that cannot open every stored secret.
    async fn check_master_keys(&self) -> Result<(), RegistryError> {
        let loaded = self.keys.ids();
        let unknown: Vec<(String, i64)> = self
            .store
            .kek_usage()
            .await?
            .into_iter()
            .filter(|(kek_id, _)| !loaded.contains(kek_id))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(RegistryError::MasterKeyMismatch {
            count: unknown.iter().map(|(_, count)| count).sum(),
            unknown_ids: unknown
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            loaded_ids: loaded.join(", "),
        })
    }

    /// Moves secrets sealed directly by a master key (before envelope
    /// encryption) into envelopes, one Source at a time.
    async fn convert_legacy_secrets(&self) -> Result<(), RegistryError> {
        for (source_id, sealed, key_id) in self.store.legacy_secrets().await? {
            let secret =
                self.keys
                    .open_legacy(&sealed, &key_id, &source_id, SECRET_ACCESS_KEY_FIELD)?;
            let envelope = self
                .keys
                .seal(&secret, &source_id, SECRET_ACCESS_KEY_FIELD)?;
            self.store
                .replace_legacy_secret(&source_id, SECRET_ACCESS_KEY_FIELD, &envelope)
                .await?;
            tracing::info!(source.id = %source_id, "converted a secret to envelope encryption");
        }
        Ok(())
    }

    /// Registers a new Source, pending until deployed.
    pub async fn create_source(
        &self,
        request: &proto::CreateSourceRequest,
    ) -> Result<proto::Source, RegistryError> {
        let new = NewSource::validate(request)?;
        let now = unix_now();
        for _ in 0..MAX_ATTEMPTS {
            let id = new_source_id();
            let sealed = self
                .keys
                .seal(&new.key.secret, &id, SECRET_ACCESS_KEY_FIELD)?;
            let sealed_upload = new
                .upload
                .as_ref()
                .map(|upload| {
                    self.keys
                        .seal(&upload.secret, &id, UPLOAD_SECRET_ACCESS_KEY_FIELD)
                })
                .transpose()?;
            let record = SourceRecord::new(id, &new, now);
            let mut secrets: Vec<(&str, &SealedSecret)> = vec![(SECRET_ACCESS_KEY_FIELD, &sealed)];
            if let Some(sealed_upload) = &sealed_upload {
                secrets.push((UPLOAD_SECRET_ACCESS_KEY_FIELD, sealed_upload));
            }
            match self.store.insert(&record, &secrets).await? {
                Inserted::Yes => return Ok(record.to_public()),
                Inserted::IdTaken => continue,
            }
        }
        Err(RegistryError::NoUnusedId)
    }

    /// The Source whose id or name is `id_or_name`.
    pub async fn get_source(&self, id_or_name: &str) -> Result<proto::Source, RegistryError> {
        Ok(self.find(id_or_name).await?.to_public())
    }

    /// Every Source, ordered by name.
    pub async fn list_sources(&self) -> Result<Vec<proto::Source>, RegistryError> {
        let records = self.store.list(unix_now()).await?;
        Ok(records.iter().map(SourceRecord::to_public).collect())
    }

    /// Changes the fields present in `request` and bumps the config version;
    /// a change of what a deploy verifies makes the Source pending again.
    /// Concurrent updates of one Source are serialised by retrying against
    /// the version read, so none is lost.
    pub async fn update_source(
        &self,
        request: &proto::UpdateSourceRequest,
    ) -> Result<proto::Source, RegistryError> {
        let changes = SourceChanges::validate(request)?;
        for _ in 0..MAX_ATTEMPTS {
            let current = self.find(&request.id_or_name).await?;
            let mut updated = current.clone();
            changes.apply_settings(&mut updated);
            if changes.needs_redeploy(&current) {
                updated.deploy.needs_redeploy();
            }
            let mut writes = UpdateWrites {
                domains: changes.routing.custom_domains.is_some(),
                secrets: Vec::new(),
            };
            if let Some(secret) = &changes.key.secret {
                let sealed = self
                    .keys
                    .seal(secret, &updated.id, SECRET_ACCESS_KEY_FIELD)?;
                writes.secrets.push((SECRET_ACCESS_KEY_FIELD, Some(sealed)));
            }
            match &changes.upload {
                Some(UploadChange::Set(upload)) => {
                    let sealed = self.keys.seal(
                        &upload.secret,
                        &updated.id,
                        UPLOAD_SECRET_ACCESS_KEY_FIELD,
                    )?;
                    writes
                        .secrets
                        .push((UPLOAD_SECRET_ACCESS_KEY_FIELD, Some(sealed)));
                }
                Some(UploadChange::Remove) => {
                    writes.secrets.push((UPLOAD_SECRET_ACCESS_KEY_FIELD, None));
                }
                None => {}
            }
            updated.config_version = current.config_version + 1;
            updated.updated_at = unix_now().max(current.updated_at);
            if self
                .store
                .update(&updated, current.config_version, &writes)
                .await?
            {
                return Ok(updated.to_public());
            }
        }
        Err(RegistryError::UpdateConflict)
    }

    /// Removes the Source whose id or name is `id_or_name`; returns its id.
    pub async fn delete_source(&self, id_or_name: &str) -> Result<String, RegistryError> {
        self.store
            .delete(id_or_name)
            .await?
            .ok_or_else(|| RegistryError::NotFound(id_or_name.to_owned()))
    }

    /// The Source serving HTTP host `host`, whatever its status (the
    /// gateway decides what a disabled or undeployed Source answers), with
    /// the tokens it accepts when it requires signed URLs.
    ///
    /// With `custom_domain` false the host is `<subdomain>.<base-domain>`;
    /// the registry does not know the base domain, so the Source is found by
    /// the host's first DNS label: `demo.localhost` → subdomain `demo`, and a
    /// bare `demo` → `demo`. With `custom_domain` true the whole host must
    /// equal one of a Source's custom domains. The host is lowercased and a
    /// trailing dot ignored first.
    pub async fn resolve_host(
        &self,
        host: &str,
        custom_domain: bool,
    ) -> Result<ResolvedHost, RegistryError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(RegistryError::invalid("host", "must not be empty"));
        }
        let record = if custom_domain {
            self.store.find_by_custom_domain(&host).await?
        } else {
            let label = host.split('.').next().unwrap_or_default();
            if !routing::is_dns_label(label) {
                return Err(RegistryError::NotFound(host));
            }
            self.store.find_by_subdomain(label).await?
        };
        let record = record.ok_or(RegistryError::NotFound(host))?;
        let secure_url_tokens = if record.secure_url_enabled {
            self.open_tokens(&record.id).await?
        } else {
            Vec::new()
        };
        Ok(ResolvedHost {
            source: record.to_public(),
            secure_url_tokens,
        })
    }

    /// The decrypted tokens Source `source_id` accepts now.
    async fn open_tokens(
        &self,
        source_id: &str,
    ) -> Result<Vec<proto::SecureUrlToken>, RegistryError> {
        let rows = self.store.active_tokens(source_id, unix_now()).await?;
        rows.iter()
            .map(|row| {
                let token = self
                    .keys
                    .open(&row.sealed, source_id, &secure_token_field(&row.id))?;
                Ok(proto::SecureUrlToken {
                    token: token.expose_secret().to_owned(),
                    expires_at: row.expires_at,
                })
            })
            .collect()
    }

    /// Adds a fresh secure URL token to the Source whose id or name is
    /// `id_or_name` and retires every other token `grace_period_seconds`
    /// from now (0: at once). Returns the token, shown only here, and the
    /// Source.
    pub async fn rotate_secure_token(
        &self,
        id_or_name: &str,
        grace_period_seconds: u32,
    ) -> Result<(SecretString, proto::Source), RegistryError> {
        let source = self.find(id_or_name).await?;
        let token = SecretString::from(hex::encode(rand::random::<[u8; 16]>()));
        let token_id = hex::encode(rand::random::<[u8; 8]>());
        let sealed = self
            .keys
            .seal(&token, &source.id, &secure_token_field(&token_id))?;
        let now = unix_now();
        let row = TokenRow {
            id: token_id,
            sealed,
            created_at: now,
            expires_at: 0,
        };
        // Expiry times are whole seconds: round up, so the old tokens stay
        // valid for at least the whole grace period (and none at all for 0).
        let retire_at = if grace_period_seconds == 0 {
            now
        } else {
            unix_now_ceil().saturating_add(i64::from(grace_period_seconds))
        };
        if !self
            .store
            .rotate_token(&source.id, &row, retire_at, now)
            .await?
        {
            return Err(RegistryError::NotFound(id_or_name.to_owned()));
        }
        Ok((token, self.find(&source.id).await?.to_public()))
    }

    /// The decrypted read credentials of Source `source_id` (by id only).
    pub async fn read_access(&self, source_id: &str) -> Result<ReadAccess, RegistryError> {
        let record = self
            .store
            .find_by_id(source_id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(source_id.to_owned()))?;
        let secret = self
            .open_secret(&record.id, SECRET_ACCESS_KEY_FIELD)
            .await?;
        Ok(ReadAccess {
            serving: record.serving(),
            bucket: BucketAccess {
                location: record.location.clone(),
                key: AccessKey::new(record.access_key_id, secret),
            },
            source_id: record.id,
            config_version: record.config_version,
        })
    }

    /// The decrypted upload credentials of `record`, if it has any.
    pub(crate) async fn upload_credentials(
        &self,
        record: &SourceRecord,
    ) -> Result<Option<AccessKey>, RegistryError> {
        if record.upload_access_key_id.is_empty() {
            return Ok(None);
        }
        let secret = self
            .open_secret(&record.id, UPLOAD_SECRET_ACCESS_KEY_FIELD)
            .await?;
        Ok(Some(AccessKey::new(
            record.upload_access_key_id.clone(),
            secret,
        )))
    }

    /// Opens secret `field` of Source `source_id`.
    async fn open_secret(
        &self,
        source_id: &str,
        field: &str,
    ) -> Result<SecretString, RegistryError> {
        let sealed =
            self.store
                .secret(source_id, field)
                .await?
                .ok_or(RegistryError::SecretMissing {
                    source_id: source_id.to_owned(),
                    field: field.to_owned(),
                })?;
        Ok(self.keys.open(&sealed, source_id, field)?)
    }

    /// Queues a deploy of the Source whose id or name is `id_or_name` and
    /// returns it with status DEPLOYING; the deploy runs in the background
    /// (poll [`Registry::get_source`] for its result). A deploy in flight is
    /// superseded.
    pub async fn deploy_source(&self, id_or_name: &str) -> Result<proto::Source, RegistryError> {
        let deploy_id = hex::encode(rand::random::<[u8; 8]>());
        let record = self
            .store
            .start_deploy(id_or_name, &deploy_id, unix_now())
            .await?
            .ok_or_else(|| RegistryError::NotFound(id_or_name.to_owned()))?;
        self.spawn_deploy(record.id.clone(), deploy_id);
        Ok(record.to_public())
    }

    /// Queues again every deploy a previous run left in flight.
    async fn resume_deploys(&self) -> Result<(), RegistryError> {
        for (source_id, deploy_id) in self.store.deploys_in_flight().await? {
            tracing::info!(source.id = %source_id, "resuming an interrupted deploy");
            self.spawn_deploy(source_id, deploy_id);
        }
        Ok(())
    }

    /// Runs deploy `deploy_id` of Source `source_id` in a background task.
    fn spawn_deploy(&self, source_id: String, deploy_id: String) {
        let registry = self.clone();
        let span = tracing::info_span!("registry.deploy", source.id = %source_id);
        tokio::spawn(
            async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _slot = registry.deploy_slots.clone().acquire_owned().await;
                if let Err(error) = registry.run_deploy(&source_id, &deploy_id).await {
                    // Left DEPLOYING: the next start of the registry retries it.
                    tracing::warn!(error = %error, "deploy could not be recorded");
                }
            }
            .instrument(span),
        );
    }

    /// Checks the Source's bucket with its read credentials and records the
    /// outcome, unless the deploy was superseded meanwhile.
    async fn run_deploy(&self, source_id: &str, deploy_id: &str) -> Result<(), RegistryError> {
        let Some(record) = self.store.find_by_id(source_id).await? else {
            return Ok(());
        };
        let outcome = match self.open_secret(&record.id, SECRET_ACCESS_KEY_FIELD).await {
            Ok(secret) => {
                let client = BucketClient::new(&BucketAccess {
                    location: record.location.clone(),
                    key: AccessKey::new(record.access_key_id.clone(), secret),
                });
                deploy_checks::verify(
                    &client,
                    &record.location.region,
                    &record.location.path_prefix,
                    record.location.endpoint.is_some(),
                    &record.id,
                )
                .await
            }
            Err(error) => {
                tracing::error!(error = %error, "stored credentials could not be read");
                DeployOutcome {
                    deployed: false,
                    message: "internal error: the stored credentials could not be read".into(),
                }
            }
        };
        let status = if outcome.deployed {
            proto::SourceStatus::Deployed
        } else {
            proto::SourceStatus::Failed
        };
        let recorded = self
            .store
            .finish_deploy(source_id, deploy_id, status, &outcome.message, unix_now())
            .await?;
        if recorded {
            tracing::info!(
                status = crate::source::deploy_state::status_to_db(status),
                message = %outcome.message,
                "deploy finished"
            );
        } else {
            tracing::info!("deploy superseded by an edit or a newer deploy");
        }
        Ok(())
    }

    /// The stored record of the Source whose id or name is `id_or_name`.
    pub(crate) async fn find(&self, id_or_name: &str) -> Result<SourceRecord, RegistryError> {
        self.store
            .find(id_or_name)
            .await?
            .ok_or_else(|| RegistryError::NotFound(id_or_name.to_owned()))
    }
}

/// What ResolveHost answers: the Source and, when it requires signed URLs,
/// the tokens currently accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedHost {
    /// The Source serving the host.
    pub source: proto::Source,
    /// Tokens accepted for `s` signatures; empty unless secure URLs are on.
    pub secure_url_tokens: Vec<proto::SecureUrlToken>,
}

impl std::fmt::Debug for ResolvedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedHost")
            .field("source", &self.source)
            .field("secure_url_tokens", &self.secure_url_tokens.len())
            .finish()
    }
}

/// A fresh id: `src_` and 12 random hex digits.
fn new_source_id() -> String {
    format!(
        "{SOURCE_ID_PREFIX}{}",
        hex::encode(rand::random::<[u8; 6]>())
    )
}

#[cfg(test)]
mod tests;
