//! Command-line and environment configuration of the registry process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use imgmesh_telemetry::TelemetryArgs;
use secrecy::{ExposeSecret as _, SecretString};

use crate::credentials_crypto::MasterKey;

/// How the registry process is configured.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-source-registry",
    version,
    about = "Owns imgmesh Sources: settings, encrypted credentials and host routing."
)]
pub struct Config {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// SQLite database file; created if missing.
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_DATABASE",
        default_value = "imgmesh-registry.db"
    )]
    pub database: PathBuf,

    /// File holding the 32-byte master key that encrypts secrets at rest:
    /// 64 hex characters or base64, surrounding whitespace ignored.
    #[arg(long, env = "IMGMESH_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// The master key itself (64 hex characters or base64 of 32 bytes).
    /// Prefer the environment variable or a key file: command lines are
    /// visible to other users of the machine.
    #[arg(
        long,
        env = "IMGMESH_MASTER_KEY",
        hide_env_values = true,
        conflicts_with = "master_key_file",
        value_parser = secret_text
    )]
    pub master_key: Option<SecretString>,

    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

// === impl Config ===

impl Config {
    /// Loads the master key from the key file or the key text; neither is an
    /// error telling the operator what to set. Errors never show the key.
    pub fn load_master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(path) = &self.master_key_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the master key file {}", path.display()))?;
            return MasterKey::parse(&text)
                .with_context(|| format!("in the master key file {}", path.display()));
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

/// Keeps a secret command-line value out of `Debug` output.
fn secret_text(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
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
