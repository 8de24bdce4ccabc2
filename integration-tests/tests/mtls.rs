//! Mutual TLS and the service-identity policy on real processes: who gets
//! a Source's decrypted credentials over real TLS, each tier dialling and
//! serving with its own certificate, and the whole mesh (as the harness
//! runs it for every test) serving an image with every hop on mutual TLS.

use std::time::Duration;

use imgmesh_integration_tests::{binary_path, fixtures, process::ChildProcess};
use imgmesh_proto::fetcher::v1::FetchObjectRequest;
use imgmesh_proto::fetcher::v1::fetcher_service_client::FetcherServiceClient;
use imgmesh_proto::registry::v1::source_credentials_service_client::SourceCredentialsServiceClient;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::registry::v1::{
    AccessKey, CreateSourceRequest, GetReadAccessRequest, Location, Routing,
};
use imgmesh_runtime::Transport;
use imgmesh_runtime::dev_certs::{DevCa, IssuedCert, Validity};
use imgmesh_runtime::mesh_tls::MeshTls;

/// The secret access key stored in the test Source; no refused caller may
/// ever see it.
const SECRET: &str = "mtls-test-secret-0f3c9a";

/// A registry running with mutual TLS, its CA and its addresses.
struct TlsRegistry {
    dir: tempfile::TempDir,
    ca: DevCa,
    _process: ChildProcess,
    api_url: String,
    credentials_url: String,
}

impl TlsRegistry {
    async fn start() -> anyhow::Result<TlsRegistry> {
        let dir = tempfile::tempdir()?;
        let ca = DevCa::new("mesh CA")?;
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert_pem())?;
        let (cert, key) = ca
            .issue("source-registry", Validity::Current)?
            .write(dir.path(), "source-registry")?;
        let master_key = dir.path().join("master.key");
        std::fs::write(&master_key, fixtures::TEST_MASTER_KEY_HEX)?;
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs)?;
        let mut process = ChildProcess::spawn(
            "source-registry",
            std::process::Command::new(binary_path("imgmesh-source-registry")?)
                .env_clear()
                .arg("--listen=127.0.0.1:0")
                .arg("--credentials-listen=127.0.0.1:0")
                .arg("--metrics-listen=127.0.0.1:0")
                .arg(format!(
                    "--database={}",
                    dir.path().join("registry.db").display()
                ))
                .arg(format!("--master-key-file={}", master_key.display()))
                .arg(format!("--tls-cert={}", cert.display()))
                .arg(format!("--tls-key={}", key.display()))
                .arg(format!("--tls-ca={}", ca_path.display())),
            &logs,
        )?;
        let api_url = format!("http://{}", process.listening("grpc").await?);
        let credentials_url = format!("http://{}", process.listening("credentials").await?);
        Ok(TlsRegistry {
            dir,
            ca,
            _process: process,
            api_url,
            credentials_url,
        })
    }

    /// Starts a fetcher presenting `cert` (saved as `name`) and trusting
    /// this mesh's CA, dialling this registry's credentials port over mutual
    /// TLS; returns it and its URL.
    async fn start_fetcher(
        &self,
        name: &str,
        cert: &IssuedCert,
    ) -> anyhow::Result<(ChildProcess, String)> {
        let (cert, key) = cert.write(self.dir.path(), name)?;
        let mut process = ChildProcess::spawn(
            "fetcher",
            std::process::Command::new(binary_path("imgmesh-fetcher")?)
                .env_clear()
                .arg("--listen=127.0.0.1:0")
                .arg("--metrics-listen=127.0.0.1:0")
                .arg("--health-check-interval-ms=200")
                .arg(format!("--registry-url={}", self.credentials_url))
                .arg(format!("--tls-cert={}", cert.display()))
                .arg(format!("--tls-key={}", key.display()))
                .arg(format!(
                    "--tls-ca={}",
                    self.dir.path().join("ca.pem").display()
                )),
            &self.dir.path().join("logs"),
        )?;
        let url = format!("http://{}", process.listening("grpc").await?);
        Ok((process, url))
    }

    /// A client transport presenting `cert` and trusting this mesh's CA.
    fn client(&self, name: &str, cert: &IssuedCert) -> Transport {
        let (cert, key) = cert.write(self.dir.path(), name).unwrap();
        Transport::Mtls(MeshTls::load(&cert, &key, &self.dir.path().join("ca.pem")).unwrap())
    }

    /// Creates a Source as the operator's CLI; returns its id.
    async fn create_source(&self) -> String {
        let cli = self.client("cli", &self.ca.issue("cli", Validity::Current).unwrap());
        let channel = imgmesh_runtime::grpc_channel_over(&self.api_url, &cli).unwrap();
        let created = SourceRegistryServiceClient::new(channel)
            .create_source(CreateSourceRequest {
                name: "mtls".to_owned(),
                routing: Some(Routing {
                    subdomain: "mtls".to_owned(),
                    custom_domains: Vec::new(),
                }),
                location: Some(Location {
                    bucket: "images".to_owned(),
                    region: "us-east-1".to_owned(),
                    ..Default::default()
                }),
                access_key: Some(AccessKey {
                    id: "AKIAMTLSTEST".to_owned(),
                    secret: SECRET.to_owned(),
                }),
                ..Default::default()
            })
            .await
            .expect("the CLI's identity may create Sources")
            .into_inner();
        created.source.expect("a created Source").id
    }

    /// GetReadAccess for `source_id` as `client`, within 10 s.
    async fn read_access(
        &self,
        client: &Transport,
        source_id: &str,
    ) -> Result<String, tonic::Status> {
        let channel = imgmesh_runtime::grpc_channel_over(&self.credentials_url, client).unwrap();
        let mut client = SourceCredentialsServiceClient::new(channel);
        let call = client.get_read_access(GetReadAccessRequest {
            source_id: source_id.to_owned(),
        });
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("GetReadAccess answers within 10 s")
            .map(|response| response.into_inner().secret_access_key)
    }
}

/// Only the fetcher's certificate gets a Source's credentials: a client
/// with a certificate from another CA, with an expired one, with the
/// renderer's valid certificate (PERMISSION_DENIED), or with the
/// gateway's, are all refused and never see the secret.
#[tokio::test]
async fn only_the_fetcher_identity_gets_read_access() {
    let registry = TlsRegistry::start().await.unwrap();
    let source_id = registry.create_source().await;

    let fetcher = registry.client(
        "fetcher",
        &registry.ca.issue("fetcher", Validity::Current).unwrap(),
    );
    assert_eq!(
        registry.read_access(&fetcher, &source_id).await.unwrap(),
        SECRET
    );

    let other_ca = DevCa::new("other CA").unwrap();
    let refused = [
        (
            "other-ca",
            other_ca.issue("fetcher", Validity::Current).unwrap(),
            None,
        ),
        (
            "expired",
            registry.ca.issue("fetcher", Validity::Expired).unwrap(),
            None,
        ),
        (
            "renderer",
            registry.ca.issue("renderer", Validity::Current).unwrap(),
            Some(tonic::Code::PermissionDenied),
        ),
        (
            "gateway",
            registry.ca.issue("gateway", Validity::Current).unwrap(),
            Some(tonic::Code::PermissionDenied),
        ),
    ];
    for (name, cert, code) in refused {
        let client = registry.client(name, &cert);
        let status = registry
            .read_access(&client, &source_id)
            .await
            .expect_err(name);
        if let Some(code) = code {
            assert_eq!(status.code(), code, "{name}: {status:?}");
        }
        assert!(!format!("{status:?}").contains(SECRET), "{name}");
    }
}

/// A client with no certificate at all (plaintext to the TLS port) gets
/// nothing.
#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let registry = TlsRegistry::start().await.unwrap();
    let source_id = registry.create_source().await;
    let status = registry
        .read_access(&Transport::Plaintext, &source_id)
        .await
        .expect_err("plaintext is refused");
    assert!(!format!("{status:?}").contains(SECRET));
}

/// A registry with neither certificates nor `--insecure-plaintext` refuses
/// to start and says what to pass.
#[tokio::test]
async fn registry_without_certificates_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let master_key = dir.path().join("master.key");
    std::fs::write(&master_key, fixtures::TEST_MASTER_KEY_HEX).unwrap();
    let output = std::process::Command::new(binary_path("imgmesh-source-registry").unwrap())
        .env_clear()
        .arg("--listen=127.0.0.1:0")
        .arg("--credentials-listen=127.0.0.1:0")
        .arg("--metrics-listen=127.0.0.1:0")
        .arg(format!(
            "--database={}",
            dir.path().join("registry.db").display()
        ))
        .arg(format!("--master-key-file={}", master_key.display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("--insecure-plaintext"),
        "{stderr}"
    );
}

/// The fetcher→registry hop over mutual TLS between real processes: a
/// fetcher with the fetcher's certificate finds the registry healthy (its
/// health follows the registry's, checked over mTLS) and so reports
/// SERVING; one given a certificate from another CA is refused by the
/// registry's handshake and stays NOT_SERVING. The fetcher itself takes calls only from the renderer's
/// identity: the gateway's gets PERMISSION_DENIED.
#[tokio::test]
async fn fetcher_dials_the_registry_over_mtls() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let registry = TlsRegistry::start().await.unwrap();
    let renderer = registry.client(
        "renderer",
        &registry.ca.issue("renderer", Validity::Current).unwrap(),
    );
    let serving = |url: String| {
        let renderer = renderer.clone();
        async move {
            let channel = imgmesh_runtime::grpc_channel_over(&url, &renderer).unwrap();
            HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
        }
    };

    let fetcher_cert = registry.ca.issue("fetcher", Validity::Current).unwrap();
    let (_fetcher, fetcher_url) = registry
        .start_fetcher("fetcher-process", &fetcher_cert)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !serving(fetcher_url.clone()).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fetcher never reached the registry over mTLS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let other_ca = DevCa::new("other CA").unwrap();
    let impostor_cert = other_ca.issue("fetcher", Validity::Current).unwrap();
    let (_impostor, impostor_url) = registry
        .start_fetcher("impostor-process", &impostor_cert)
        .await
        .unwrap();
    // It reports SERVING at start until its first check of the registry
    // (refused) lands; from then on every round (200 ms) is refused too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while serving(impostor_url.clone()).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a fetcher with another CA's certificate was let into the registry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        assert!(
            !serving(impostor_url.clone()).await,
            "a fetcher with another CA's certificate passed a registry check"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let gateway = registry.client(
        "gateway",
        &registry.ca.issue("gateway", Validity::Current).unwrap(),
    );
    let channel = imgmesh_runtime::grpc_channel_over(&fetcher_url, &gateway).unwrap();
    let status = FetcherServiceClient::new(channel)
        .fetch_object(FetchObjectRequest {
            source_id: "any".to_owned(),
            path: "a.jpg".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("the gateway may not fetch");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
}

/// The renderer and the gateway on mutual TLS between real processes: a
/// registry, a fetcher and a renderer each with its own certificate, the
/// renderer reaching the fetcher (it reports SERVING only once its fetcher
/// check over mTLS succeeds) and a gateway with the gateway's certificate
/// whose `/ready` answers 200 (the registry and the renderer both checked
/// over mTLS). The renderer takes Render only from the gateway: the
/// fetcher's certificate gets PERMISSION_DENIED. The `imgmesh` CLI with the
/// operator's `cli` certificate creates a Source on the mTLS registry.
#[tokio::test]
async fn renderer_gateway_and_cli_speak_mtls() {
    use imgmesh_proto::renderer::v1::RenderRequest;
    use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let registry = TlsRegistry::start().await.unwrap();
    let dir = registry.dir.path();
    let ca_path = dir.join("ca.pem");
    let tls_args = |name: &str| -> Vec<String> {
        let (cert, key) = registry
            .ca
            .issue(name, Validity::Current)
            .unwrap()
            .write(dir, &format!("{name}-process"))
            .unwrap();
        vec![
            format!("--tls-cert={}", cert.display()),
            format!("--tls-key={}", key.display()),
            format!("--tls-ca={}", ca_path.display()),
        ]
    };
    let fetcher_cert = registry.ca.issue("fetcher", Validity::Current).unwrap();
    let (_fetcher, fetcher_url) = registry
        .start_fetcher("fetcher-process", &fetcher_cert)
        .await
        .unwrap();
    let mut renderer = ChildProcess::spawn(
        "renderer",
        std::process::Command::new(binary_path("imgmesh-renderer").unwrap())
            .env_clear()
            .arg("--listen=127.0.0.1:0")
            .arg("--metrics-listen=127.0.0.1:0")
            .arg("--health-check-interval-ms=200")
            .arg(format!("--fetcher-url={fetcher_url}"))
            .arg("--redis-url=redis://127.0.0.1:1")
            .args(tls_args("renderer")),
        &dir.join("logs"),
    )
    .unwrap();
    let renderer_url = format!("http://{}", renderer.listening("grpc").await.unwrap());

    let gateway_client = registry.client(
        "gateway",
        &registry.ca.issue("gateway", Validity::Current).unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let channel = imgmesh_runtime::grpc_channel_over(&renderer_url, &gateway_client).unwrap();
        let serving = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
        if serving {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renderer never reached the fetcher over mTLS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let fetcher_client = registry.client("fetcher-as-client", &fetcher_cert);
    let channel = imgmesh_runtime::grpc_channel_over(&renderer_url, &fetcher_client).unwrap();
    let status = RendererServiceClient::new(channel)
        .render(RenderRequest::default())
        .await
        .expect_err("the fetcher may not render");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    let mut gateway = ChildProcess::spawn(
        "gateway",
        std::process::Command::new(binary_path("imgmesh-gateway").unwrap())
            .env_clear()
            .arg("--listen=127.0.0.1:0")
            .arg("--ops-listen=127.0.0.1:0")
            .arg("--health-check-interval-ms=200")
            .arg(format!("--registry-url={}", registry.api_url))
            .arg(format!("--renderer-url={renderer_url}"))
            .arg("--base-domain=localhost")
            .args(tls_args("gateway")),
        &dir.join("logs"),
    )
    .unwrap();
    let ops = gateway.listening("ops").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = imgmesh_integration_tests::http_client::get(ops, "localhost", "/ready", &[])
            .await
            .is_ok_and(|response| response.status == 200);
        if ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never found the registry and the renderer over mTLS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let output = tokio::process::Command::new(binary_path("imgmesh").unwrap())
        .env_clear()
        .arg(format!("--registry-url={}", registry.api_url))
        .args(tls_args("cli"))
        .args([
            "--json",
            "sources",
            "create",
            "--name=from-cli",
            "--subdomain=from-cli",
            "--bucket=images",
            "--region=us-east-1",
            "--access-key-id=AKIAMTLSCLI",
            "--secret-access-key=cli-secret-1234",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["name"], "from-cli", "{created}");
}

/// A renderer and a gateway with neither certificates nor
/// `--insecure-plaintext` refuse to start and say what to pass.
#[tokio::test]
async fn renderer_and_gateway_without_certificates_refuse_to_start() {
    for (binary, args) in [
        (
            "imgmesh-renderer",
            &["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"][..],
        ),
        (
            "imgmesh-gateway",
            &["--listen=127.0.0.1:0", "--ops-listen=127.0.0.1:0"][..],
        ),
    ] {
        let output = std::process::Command::new(binary_path(binary).unwrap())
            .env_clear()
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{binary} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--tls-cert") && stderr.contains("--insecure-plaintext"),
            "{binary}: {stderr}"
        );
    }
}

/// The whole mesh on mutual TLS, as the harness runs it for every test: an
/// image request through the gateway renders (gateway → registry,
/// gateway → renderer, renderer → fetcher, fetcher → registry, each hop
/// with its own certificate); no service was started with
/// `--insecure-plaintext`, and every internal gRPC port refuses a client
/// without a certificate. On that mesh the renderer's identity asking the
/// registry for a Source's credentials gets PERMISSION_DENIED and never the
/// secret, while the fetcher's gets it.
#[tokio::test]
async fn an_image_request_crosses_every_hop_over_mtls() {
    use imgmesh_integration_tests::fixtures::{self, Format};
    use imgmesh_integration_tests::{Mesh, MeshOptions, S3_SECRET_KEY};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(600, 400).unwrap())
        .unwrap();
    let created = mesh.create_source("tls", S3_SECRET_KEY, &[]).await.unwrap();
    let source_id = created["id"].as_str().unwrap().to_owned();

    let served = mesh.get("tls", "/photos/cat.jpg?w=120").await.unwrap();
    assert_eq!(served.status, 200, "{}", served.text());
    fixtures::expect_image(&served.body, Format::Jpeg, 120, 80).unwrap();
    let logs = mesh.all_logs();
    assert!(!logs.contains("--insecure-plaintext"), "{logs}");

    for url in [
        &mesh.registry_url,
        &mesh.registry_credentials_url,
        &mesh.fetcher_url,
        &mesh.renderer_url,
    ] {
        let channel = imgmesh_runtime::grpc_channel_over(url, &Transport::Plaintext).unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            HealthClient::new(channel).check(HealthCheckRequest::default()),
        )
        .await
        .expect("a refusal within 10 s");
        assert!(
            answer.is_err(),
            "{url} answered a client without a certificate"
        );
    }

    let read_access = |identity: &'static str| {
        let channel = mesh
            .grpc_channel(&mesh.registry_credentials_url, identity)
            .unwrap();
        let source_id = source_id.clone();
        async move {
            SourceCredentialsServiceClient::new(channel)
                .get_read_access(GetReadAccessRequest { source_id })
                .await
                .map(|response| response.into_inner().secret_access_key)
        }
    };
    let refused = read_access("renderer")
        .await
        .expect_err("the renderer may not read credentials");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(!format!("{refused:?}").contains(S3_SECRET_KEY));
    assert_eq!(read_access("fetcher").await.unwrap(), S3_SECRET_KEY);

    // With its metrics listener off, `health` asks grpc.health.v1 on the
    // mTLS port with the service's own certificate; plaintext is refused.
    let health = |tls: Vec<String>| {
        let output = std::process::Command::new(binary_path("imgmesh-fetcher").unwrap())
            .env_clear()
            .arg(format!(
                "--listen={}",
                mesh.fetcher_url.trim_start_matches("http://")
            ))
            .arg("--metrics-listen=off")
            .args(tls)
            .arg("health")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), said)
    };
    let (serving, said) = health(mesh.certs.tls_args("fetcher"));
    assert!(serving && said.contains("SERVING"), "{said}");
    let (serving, said) = health(vec!["--insecure-plaintext".to_owned()]);
    assert!(!serving, "plaintext health passed on an mTLS port: {said}");
}
