//! `imgmesh dev-certs`: the throwaway PKI that development and tests use.

use clap::Parser as _;
use imgmesh_cli::{Cli, run};
use imgmesh_runtime::mesh_tls::MeshTls;

/// `imgmesh dev-certs <dir>` writes a CA and, for every imgmesh identity, a
/// certificate and matching key that load as a mutual-TLS identity (the
/// key file readable by its owner only).
#[tokio::test]
async fn dev_certs_writes_a_loadable_identity_per_service() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let cli =
        Cli::try_parse_from(["imgmesh", "--json", "dev-certs", out.to_str().unwrap()]).unwrap();
    let printed: serde_json::Value = serde_json::from_str(&run(&cli).await.unwrap()).unwrap();
    let certificates = printed["certificates"].as_array().unwrap();
    let identities: Vec<&str> = certificates
        .iter()
        .map(|entry| entry["identity"].as_str().unwrap())
        .collect();
    assert_eq!(
        identities,
        imgmesh_runtime::grpc_authz::IDENTITIES,
        "one certificate per identity"
    );
    for entry in certificates {
        let path = |field: &str| std::path::PathBuf::from(entry[field].as_str().unwrap());
        MeshTls::load(&path("cert"), &path("key"), &path("ca"))
            .unwrap_or_else(|error| panic!("{entry}: {error:#}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path("key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{entry}: key readable by others");
        }
    }
}
