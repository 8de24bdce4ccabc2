//! Command-line and environment configuration of the registry process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use imgmesh_runtime::{HealthArgs, MetricsArgs};
use imgmesh_telemetry::TelemetryArgs;
use secrecy::{ExposeSecret as _, SecretString};

use crate::credentials_crypto::{MasterKey, MasterKeys};
use crate::database::Database;

/// Where the registry serves `GET /metrics` unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9091";

/// Default cap on the size of one upload: 32 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 32 * 1024 * 1024;

/// How the registry process is configured.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-source-registry",
    version,
    about = "Owns imgmesh Sources: settings, encrypted credentials and host routing.",
    mut_arg("metrics_listen", |arg| arg.default_value(DEFAULT_METRICS_LISTEN))
)]
pub struct Config {
    /// A maintenance task to run instead of serving.
    #[command(subcommand)]
    pub command: Option<RegistryCommand>,

    /// Address the gRPC server listens on (port 0 picks a free port):
    /// SourceRegistryService (the gateways, the `imgmesh` CLI) and health.
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// Address of the internal credentials gRPC server (port 0 picks a free
    /// port): SourceCredentialsService, which hands Sources' decrypted read
    /// credentials to the fetchers (their `--registry-url`), and health.
    /// A port of its own, so that a firewall or NetworkPolicy can let the
    /// fetchers alone reach it.
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_CREDENTIALS_LISTEN",
        default_value = "127.0.0.1:50054"
    )]
    pub credentials_listen: SocketAddr,

    /// SQLite database file; created if missing. Ignored with
    /// --database-url.
    #[arg(
        long,
        global = true,
        env = "IMGMESH_REGISTRY_DATABASE",
        default_value = "imgmesh-registry.db"
    )]
    pub database: PathBuf,

    /// PostgreSQL database instead of SQLite:
    /// postgres://user[:password]@host[:port]/database. Several registries
    /// may share one.
    #[arg(
        long,
        global = true,
        env = "IMGMESH_REGISTRY_DATABASE_URL",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub database_url: Option<SecretString>,

    /// File holding the current 32-byte master key, which wraps every new
    /// secret's data key: 64 hex characters or base64, surrounding
    /// whitespace ignored.
    #[arg(long, global = true, env = "IMGMESH_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// File holding a previous master key, still used to open secrets it
    /// wrapped until `rotate-master-key` has re-wrapped them; repeatable.
    #[arg(
        long = "previous-master-key-file",
        global = true,
        env = "IMGMESH_PREVIOUS_MASTER_KEY_FILES",
        value_delimiter = ','
    )]
    pub previous_master_key_files: Vec<PathBuf>,

    /// Largest object UploadObject accepts, in bytes.
    #[arg(
        long,
        env = "IMGMESH_MAX_UPLOAD_BYTES",
        default_value_t = DEFAULT_MAX_UPLOAD_BYTES
    )]
    pub max_upload_bytes: u64,

    /// The master key itself (64 hex characters or base64 of 32 bytes).
    /// Prefer the environment variable or a key file: command lines are
    /// visible to other users of the machine.
    #[arg(
        long,
        global = true,
        env = "IMGMESH_MASTER_KEY",
        hide_env_values = true,
        conflicts_with = "master_key_file",
        value_parser = secret_text
    )]
    pub master_key: Option<SecretString>,

    /// Where Prometheus scrapes `GET /metrics` (`--metrics-listen`).
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// How often and how patiently the database is checked for health.
    #[command(flatten)]
    pub health: HealthArgs,

    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Mutual TLS: this registry's certificate and the mesh CA, or
    /// `--insecure-plaintext`.
    #[command(flatten)]
    pub tls: imgmesh_runtime::TlsArgs,
}

/// Maintenance tasks of the registry binary.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RegistryCommand {
    /// Re-wrap every stored secret's data key with the current master key.
    ///
    /// Give the new key as --master-key-file and the old one as
    /// --previous-master-key-file. Run the registries with both keys first
    /// (new current, old previous), then this; it works one record at a time,
    /// so it can be interrupted and run again, and it skips records already
    /// under the new key. Afterwards the old key can be dropped.
    RotateMasterKey,

    /// Ask the registry running on this machine whether it serves (its
    /// database answers), and exit 0 if it does, 1 if not: for container
    /// healthchecks and exec probes.
    ///
    /// It asks grpc.health.v1 on --listen (given before `health`, or
    /// IMGMESH_REGISTRY_LISTEN; 0.0.0.0 or :: means this machine's
    /// loopback) and prints what the registry reported.
    Health,
}

// === impl Config ===

impl Config {
    /// The database to use: PostgreSQL when --database-url is set, else the
    /// SQLite file.
    pub fn database(&self) -> anyhow::Result<Database> {
        match &self.database_url {
            Some(url) => Ok(Database::postgres(url.expose_secret())
                .context("in --database-url (IMGMESH_REGISTRY_DATABASE_URL)")?),
            None => Ok(Database::Sqlite(self.database.clone())),
        }
    }

    /// The current master key and every previous one.
    pub fn load_master_keys(&self) -> anyhow::Result<MasterKeys> {
        let mut keys = MasterKeys::new(self.load_master_key()?);
        for path in &self.previous_master_key_files {
            keys = keys.with_previous(read_key_file(path)?);
        }
        Ok(keys)
    }

    /// Loads the current master key from the key file or the key text;
    /// neither is an error telling the operator what to set. Errors never
    /// show the key.
    pub fn load_master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(path) = &self.master_key_file {
            return read_key_file(path);
        }
        if let Some(text) = &self.master_key {
            return MasterKey::parse(text.expose_secret()).context("in IMGMESH_MASTER_KEY");
        }
        anyhow::bail!(
            "no master key: set --master-key-file (IMGMESH_MASTER_KEY_FILE) or \
             IMGMESH_MASTER_KEY to 64 hex characters or base64 of 32 random bytes, \
             e.g. from `openssl rand -hex 32`"
        )
    }
}

/// Reads and parses a master key file; errors never show its content.
fn read_key_file(path: &std::path::Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the master key file {}", path.display()))?;
    MasterKey::parse(&text).with_context(|| format!("in the master key file {}", path.display()))
}

/// Keeps a secret command-line value out of `Debug` output.
fn secret_text(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser as _;

    use super::*;
    use crate::credentials_crypto::tests::TEST_KEY_HEX;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(
            std::iter::once("imgmesh-source-registry").chain(args.iter().copied()),
        )
    }

    /// The defaults match the flags contract.
    #[test]
    fn defaults_match_the_contract() {
        let config = parse(&["--master-key-file=/k"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(config.database, PathBuf::from("imgmesh-registry.db"));
        assert_eq!(config.master_key_file, Some(PathBuf::from("/k")));
        assert_eq!(config.max_upload_bytes, 33_554_432);
        assert!(config.database_url.is_none() && config.previous_master_key_files.is_empty());
        assert_eq!(
            config.metrics.addr(),
            Some("127.0.0.1:9091".parse().unwrap())
        );
        assert_eq!(
            config.credentials_listen,
            "127.0.0.1:50054".parse().unwrap()
        );
        assert_eq!(config.health.interval(), Duration::from_secs(2));
        assert_eq!(config.health.timeout(), Duration::from_secs(1));
    }

    /// `health` takes the listen address the server does, before it.
    #[test]
    fn health_subcommand_parses() {
        let config = parse(&["--listen=127.0.0.1:7", "health"]).unwrap();
        assert!(matches!(config.command, Some(RegistryCommand::Health)));
        assert_eq!(config.listen, "127.0.0.1:7".parse().unwrap());
    }

    /// Flags override the defaults.
    #[test]
    fn flags_are_parsed() {
        let config = parse(&[
            "--listen=127.0.0.1:0",
            "--database=/tmp/r.db",
            &format!("--master-key={TEST_KEY_HEX}"),
        ])
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.database, PathBuf::from("/tmp/r.db"));
        assert!(config.load_master_key().is_ok());
        let config = parse(&["--metrics-listen=off"]).unwrap();
        assert_eq!(config.metrics.addr(), None);
    }

    /// --database-url selects PostgreSQL and hides its password; without it
    /// the SQLite file is used.
    #[test]
    fn database_url_selects_postgres() {
        let config = parse(&["--database-url=postgres://app:hunter2@127.0.0.1/imgmesh"]).unwrap();
        let database = config.database().unwrap();
        assert!(database.is_postgres());
        assert!(!format!("{config:?} {database}").contains("hunter2"));
        let config = parse(&["--database=/tmp/r.db"]).unwrap();
        assert_eq!(
            config.database().unwrap(),
            Database::Sqlite("/tmp/r.db".into())
        );
        let config = parse(&["--database-url=mysql://x/y"]).unwrap();
        assert!(config.database().is_err());
    }

    /// Previous key files are repeatable and load next to the current key.
    #[test]
    fn previous_master_keys_load() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current.key");
        let old = dir.path().join("old.key");
        std::fs::write(&current, TEST_KEY_HEX).unwrap();
        std::fs::write(&old, "11".repeat(32)).unwrap();
        let config = parse(&[
            &format!("--master-key-file={}", current.display()),
            &format!("--previous-master-key-file={}", old.display()),
            &format!("--previous-master-key-file={}", current.display()),
        ])
        .unwrap();
        let keys = config.load_master_keys().unwrap();
        assert_eq!(keys.ids().len(), 2);
        let missing = dir.path().join("missing.key");
        let config = parse(&[
            &format!("--master-key-file={}", current.display()),
            &format!("--previous-master-key-file={}", missing.display()),
        ])
        .unwrap();
        assert!(config.load_master_keys().is_err());
    }

    /// `rotate-master-key` takes the database and key flags after it too.
    #[test]
    fn rotate_master_key_subcommand_parses() {
        let config = parse(&[
            "rotate-master-key",
            "--database=/tmp/r.db",
            "--master-key-file=/new.key",
            "--previous-master-key-file=/old.key",
        ])
        .unwrap();
        assert!(matches!(
            config.command,
            Some(RegistryCommand::RotateMasterKey)
        ));
        assert_eq!(config.database, PathBuf::from("/tmp/r.db"));
        assert_eq!(
            config.previous_master_key_files,
            [PathBuf::from("/old.key")]
        );
        assert!(parse(&[]).unwrap().command.is_none());
    }

    /// A key file and key text together are a usage error.
    #[test]
    fn key_file_and_key_text_conflict() {
        let error = parse(&[
            "--master-key-file=/k",
            &format!("--master-key={TEST_KEY_HEX}"),
        ])
        .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    /// A bad listen address is a usage error.
    #[test]
    fn bad_listen_address_is_refused() {
        let error = parse(&["--listen=nowhere"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    }

    /// Debug output of the config never shows the key text.
    #[test]
    fn debug_hides_the_key() {
        let config = parse(&[&format!("--master-key={TEST_KEY_HEX}")]).unwrap();
        assert!(!format!("{config:?}").contains(TEST_KEY_HEX));
    }

    /// Without any key the registry refuses to start, saying what to set.
    #[test]
    fn missing_key_is_a_clear_error() {
        let config = parse(&[]).unwrap();
        let message = config.load_master_key().unwrap_err().to_string();
        assert!(message.contains("no master key"), "{message}");
        assert!(message.contains("IMGMESH_MASTER_KEY"), "{message}");
    }

    /// A key file is read and trimmed; a missing or malformed one is an error
    /// that does not echo its content.
    #[test]
    fn key_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.key");
        std::fs::write(&good, format!("{TEST_KEY_HEX}\n")).unwrap();
        let config = parse(&[&format!("--master-key-file={}", good.display())]).unwrap();
        assert!(config.load_master_key().is_ok());

        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not-a-key-1234").unwrap();
        let config = parse(&[&format!("--master-key-file={}", bad.display())]).unwrap();
        let message = format!("{:#}", config.load_master_key().unwrap_err());
        assert!(message.contains("64 hex characters"), "{message}");
        assert!(!message.contains("not-a-key-1234"), "{message}");

        let missing = dir.path().join("missing.key");
        let config = parse(&[&format!("--master-key-file={}", missing.display())]).unwrap();
        assert!(config.load_master_key().is_err());
    }
}
