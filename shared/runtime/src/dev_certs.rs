//! A throwaway certificate authority for development, tests and
//! benchmarks: a CA and one certificate per imgmesh identity, each with the
//! SAN `spiffe://imgmesh/<service>` plus `localhost` and `127.0.0.1`, so
//! `make dev`, the integration tests and `make bench` run with mutual TLS
//! without anyone making certificates by hand. Never for production: the
//! CA key sits next to the certificates it signs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::mesh_tls::IDENTITY_PREFIX;

/// A CA that can issue service certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// Where [`write_mesh`] put a service's files.
#[derive(Debug, Clone)]
pub struct CertPaths {
    /// The certificate (`--tls-cert`).
    pub cert: PathBuf,
    /// Its key (`--tls-key`).
    pub key: PathBuf,
    /// The CA certificate (`--tls-ca`).
    pub ca: PathBuf,
}

/// Validity of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from yesterday for a year.
    Current,
    /// Expired: valid only during 2020.
    Expired,
}

// === impl DevCa ===

impl DevCa {
    /// A new CA with a fresh ECDSA P-256 key, named `name`.
    pub fn new(name: &str) -> anyhow::Result<DevCa> {
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).context("signing the CA")?;
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// The CA certificate, for `--tls-ca`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `identity` (SAN `spiffe://imgmesh/<identity>`,
    /// DNS `localhost` and `<identity>`, IP `127.0.0.1`), usable as both a
    /// server and a client certificate.
    pub fn issue(&self, identity: &str, validity: Validity) -> anyhow::Result<IssuedCert> {
        let key = KeyPair::generate().context("generating a service key")?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), identity.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, identity);
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        params.subject_alt_names.push(SanType::URI(
            format!("{IDENTITY_PREFIX}{identity}").try_into()?,
        ));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        match validity {
            Validity::Current => {
                let now = std::time::SystemTime::now();
                let day = std::time::Duration::from_secs(24 * 3600);
                params.not_before = (now - day).into();
                params.not_after = (now + 365 * day).into();
            }
            Validity::Expired => {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2020, 12, 31);
            }
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing the certificate of {identity}"))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

// === impl IssuedCert ===

impl IssuedCert {
    /// Writes `<name>.pem` and `<name>-key.pem` (mode 0600) into `dir`,
    /// each replaced in one rename so a reader never sees half a file.
    pub fn write(&self, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        write_atomically(&key, &self.key_pem, true)?;
        write_atomically(&cert, &self.cert_pem, false)?;
        Ok((cert, key))
    }
}

fn write_atomically(path: &Path, contents: &str, secret: bool) -> anyhow::Result<()> {
    let staging = path.with_extension("pem.tmp");
    std::fs::write(&staging, contents).with_context(|| format!("writing {}", staging.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    std::fs::rename(&staging, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes a fresh CA (`ca.pem`) and a certificate per imgmesh identity
/// (`<service>.pem`, `<service>-key.pem`) into `dir`, creating it; returns
/// the paths of each identity's files.
pub fn write_mesh(dir: &Path) -> anyhow::Result<Vec<(String, CertPaths)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = DevCa::new("imgmesh dev CA")?;
    let ca_path = dir.join("ca.pem");
    write_atomically(&ca_path, ca.cert_pem(), false)?;
    crate::grpc_authz::IDENTITIES
        .iter()
        .map(|identity| {
            let (cert, key) = ca
                .issue(identity, Validity::Current)?
                .write(dir, identity)?;
            Ok((
                (*identity).to_owned(),
                CertPaths {
                    cert,
                    key,
                    ca: ca_path.clone(),
                },
            ))
        })
        .collect()
}
