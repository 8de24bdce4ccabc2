//! Sources on real processes: deploys verified against the real S3 server
//! (`s3s-fs`, checking SigV4), uploads through the CLI rendered back through
//! the gateway, and database dumps (SQLite files, PostgreSQL's `pg_dump`)
//! holding no plaintext secret.

use std::process::Output;

use anyhow::{Context as _, bail};
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{
    ChildProcess, Mesh, MeshCerts, MeshOptions, PostgresDatabase, S3_ACCESS_KEY, S3_SECRET_KEY,
    binary_path,
};

/// An upload secret the tests look for in dumps.
const UPLOAD_SECRET: &str = "imgmesh-upload-secret-canary-51c0e9";

/// Starts a mesh with a 1200×800 JPEG at `photos/cat.jpg`.
async fn mesh_with_cat() -> Mesh {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(1200, 800).unwrap())
        .unwrap();
    mesh
}

/// A created Source is pending and 404 at the gateway; `sources deploy
/// --wait` verifies it against S3 and then it serves.
#[tokio::test]
async fn deploy_makes_a_source_serve() {
    let mesh = mesh_with_cat().await;
    let created = mesh
        .create_source_undeployed("demo", S3_SECRET_KEY, &[])
        .await
        .unwrap();
    assert_eq!(created["status"], "pending");
    let pending = mesh.get("demo", "/photos/cat.jpg?w=100").await.unwrap();
    assert_eq!(pending.status, 404, "{}", pending.text());

    let deployed = mesh.deploy_source("demo").await.unwrap();
    assert_eq!(deployed["status"], "deployed", "{deployed}");
    assert!(
        deployed["last_deployed_at"].as_i64().unwrap() >= created["created_at"].as_i64().unwrap()
    );
    // s3s-fs reports no bucket region: noted, not failed.
    assert_eq!(
        deployed["status_message"],
        "the endpoint reports no bucket region; region not checked"
    );
    let served = mesh.get("demo", "/photos/cat.jpg?w=100").await.unwrap();
    assert_eq!(served.status, 200, "{}", served.text());
    fixtures::expect_image(&served.body, Format::Jpeg, 100, 67).unwrap();
}

/// Deploys fail against the real S3 server with the precise reason: a
/// wrong secret, a missing bucket; nothing under the prefix deploys with a
/// note. The CLI exits 1 naming the reason, never the secret.
#[tokio::test]
async fn deploy_reports_why_it_failed() {
    let mesh = mesh_with_cat().await;
    let wrong_secret = "wrong-secret-canary-8d31f0a2";
    for (name, secret, update, reason) in [
        (
            "wrong-secret",
            wrong_secret,
            None,
            "the credentials were rejected",
        ),
        (
            "no-bucket",
            S3_SECRET_KEY,
            Some("--bucket=no-such-bucket"),
            "bucket not found",
        ),
    ] {
        mesh.create_source_undeployed(name, secret, &[])
            .await
            .unwrap();
        if let Some(update) = update {
            mesh.cli_json(&["sources", "update", name, update])
                .await
                .unwrap();
        }
        let output = mesh
            .cli(&["sources", "deploy", name, "--wait"])
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim(),
            format!("error: deploy of {name} failed: {reason}"),
            "{name}"
        );
        let source = mesh.cli_json(&["sources", "get", name]).await.unwrap();
        assert_eq!(source["status"], "failed");
        assert_eq!(source["status_message"], reason);
        let response = mesh.get(name, "/photos/cat.jpg").await.unwrap();
        assert_eq!(response.status, 404, "{name}: {}", response.text());
    }

    mesh.create_source_undeployed("empty", S3_SECRET_KEY, &["--path-prefix=nothing/here"])
        .await
        .unwrap();
    let deployed = mesh.deploy_source("empty").await.unwrap();
    assert_eq!(deployed["status"], "deployed");
    let note = deployed["status_message"].as_str().unwrap();
    assert!(
        note.contains("bucket has no objects under prefix \"nothing/here/\""),
        "{note}"
    );
    assert!(
        !mesh.all_logs().contains(wrong_secret),
        "secret leaked into logs"
    );
}

/// `imgmesh upload` puts a file under the Source's prefix with the upload
/// credentials, and the gateway renders it at once; a Source without upload
/// credentials refuses uploads, saying so.
#[tokio::test]
async fn upload_through_the_cli_then_render() {
    let mesh = mesh_with_cat().await;
    mesh.create_source(
        "shop",
        S3_SECRET_KEY,
        &[
            "--path-prefix=photos",
            &format!("--upload-access-key-id={S3_ACCESS_KEY}"),
            &format!("--upload-secret-access-key={S3_SECRET_KEY}"),
        ],
    )
    .await
    .unwrap();
    let file = mesh.dir.path().join("dog.png");
    std::fs::write(&file, fixtures::png(300, 200).unwrap()).unwrap();
    let file = file.display().to_string();

    let stored = mesh
        .cli_json(&["upload", "shop", &file, "--key=new/dog.png"])
        .await
        .unwrap();
    assert_eq!(stored["key"], "photos/new/dog.png");
    assert!(mesh.bucket_dir().join("photos/new/dog.png").is_file());
    let rendered = mesh.get("shop", "/new/dog.png?w=150").await.unwrap();
    assert_eq!(rendered.status, 200, "{}", rendered.text());
    fixtures::expect_image(&rendered.body, Format::Png, 150, 100).unwrap();

    mesh.create_source("plain", S3_SECRET_KEY, &[])
        .await
        .unwrap();
    let output = mesh.cli(&["upload", "plain", &file]).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "error: the source has no upload credentials"
    );
    assert!(!mesh.bucket_dir().join("dog.png").exists());
}

/// Creates a Source with read and upload secrets on the registry at
/// `registry_url` (as the `cli` identity of `certs`) and rotates its token
/// twice; returns the tokens.
async fn store_secrets(
    registry_url: &str,
    certs: &MeshCerts,
    s3_endpoint: &str,
) -> anyhow::Result<Vec<String>> {
    cli(
        registry_url,
        certs,
        &[
            "sources",
            "create",
            "--name=vault",
            "--subdomain=vault",
            "--bucket=images",
            "--region=us-east-1",
            &format!("--endpoint={s3_endpoint}"),
            &format!("--access-key-id={S3_ACCESS_KEY}"),
            &format!("--secret-access-key={S3_SECRET_KEY}"),
            &format!("--upload-access-key-id={S3_ACCESS_KEY}"),
            &format!("--upload-secret-access-key={UPLOAD_SECRET}"),
            "--secure-urls=on",
        ],
    )
    .await?;
    let mut tokens = Vec::new();
    for grace in ["--grace=600", "--grace=600"] {
        let output = cli(
            registry_url,
            certs,
            &["sources", "rotate-token", "vault", grace],
        )
        .await?;
        let rotated: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        tokens.push(rotated["token"].as_str().context("a token")?.to_owned());
    }
    Ok(tokens)
}

/// Asserts no secret of [`store_secrets`] is anywhere in `dump`.
fn assert_no_secret(dump: &[u8], tokens: &[String], what: &str) {
    assert!(dump.len() > 1000, "{what} is suspiciously small");
    let mut secrets = vec![S3_SECRET_KEY.to_owned(), UPLOAD_SECRET.to_owned()];
    secrets.extend(tokens.iter().cloned());
    for secret in secrets {
        assert!(
            !dump.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a plaintext secret is in {what}"
        );
    }
}

/// The SQLite database of a running registry (file, WAL and shared memory)
/// holds no plaintext read secret, upload secret or secure URL token.
#[tokio::test]
async fn sqlite_files_hold_no_plaintext_secret() {
    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    let tokens = store_secrets(&mesh.registry_url, &mesh.certs, &mesh.s3_endpoint)
        .await
        .unwrap();
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(mesh.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("registry.db") {
            dump.extend(std::fs::read(&path).unwrap());
        }
    }
    assert_no_secret(&dump, &tokens, "the SQLite files");
}

/// A registry process on PostgreSQL serves the same CLI, and `pg_dump` of
/// its database holds no plaintext read secret, upload secret or token.
#[tokio::test]
async fn postgres_dump_holds_no_plaintext_secret() {
    let database = PostgresDatabase::create("imgmesh_it").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, fixtures::TEST_MASTER_KEY_HEX).unwrap();
    let certs = MeshCerts::write(&dir.path().join("certs")).unwrap();
    let mut registry = ChildProcess::spawn(
        "source-registry-postgres",
        std::process::Command::new(binary_path("imgmesh-source-registry").unwrap())
            .env_clear()
            .args(certs.tls_args("source-registry"))
            .arg("--listen=127.0.0.1:0")
            .arg("--credentials-listen=127.0.0.1:0")
            .arg("--metrics-listen=127.0.0.1:0")
            .arg(format!("--database-url={}", database.url))
            .arg(format!("--master-key-file={}", key.display())),
        dir.path(),
    )
    .unwrap();
    let addr = registry.listening("grpc").await.unwrap();
    let registry_url = format!("http://{addr}");
    let tokens = store_secrets(&registry_url, &certs, "http://127.0.0.1:9")
        .await
        .unwrap();
    let listed = cli(&registry_url, &certs, &["sources", "list"])
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"vault\""));

    let dump = tokio::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(&database.url)
        .output()
        .await
        .expect("pg_dump runs (it comes with the postgresql package `make test` installs)");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(
        String::from_utf8_lossy(&dump.stdout).contains("source_secrets"),
        "the dump has the secrets table"
    );
    assert_no_secret(&dump.stdout, &tokens, "pg_dump's output");
    drop(registry);
}

/// Starts `imgmesh-source-registry` on SQLite `database` with the master
/// key in `key`, presenting its certificate from `certs`.
async fn start_registry(
    name: &str,
    database: &std::path::Path,
    key: &std::path::Path,
    certs: &MeshCerts,
    logs: &std::path::Path,
) -> anyhow::Result<(ChildProcess, String)> {
    let mut registry = ChildProcess::spawn(
        name,
        std::process::Command::new(binary_path("imgmesh-source-registry")?)
            .env_clear()
            .args(certs.tls_args("source-registry"))
            .arg("--listen=127.0.0.1:0")
            .arg("--credentials-listen=127.0.0.1:0")
            .arg("--metrics-listen=127.0.0.1:0")
            .arg(format!("--database={}", database.display()))
            .arg(format!("--master-key-file={}", key.display())),
        logs,
    )?;
    let addr = registry.listening("grpc").await?;
    Ok((registry, format!("http://{addr}")))
}

/// `imgmesh-source-registry rotate-master-key` re-wraps every secret with
/// the new key, printing progress; afterwards the registry starts with the
/// new key alone and opens them, and refuses the old key alone, naming it.
#[tokio::test]
async fn rotate_master_key_command() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("registry.db");
    let old = dir.path().join("old.key");
    let new = dir.path().join("new.key");
    std::fs::write(&old, fixtures::TEST_MASTER_KEY_HEX).unwrap();
    std::fs::write(&new, "5a".repeat(32)).unwrap();
    let certs = MeshCerts::write(&dir.path().join("certs")).unwrap();

    let (registry, url) = start_registry("registry-old", &database, &old, &certs, dir.path())
        .await
        .unwrap();
    let tokens = store_secrets(&url, &certs, "http://127.0.0.1:9")
        .await
        .unwrap();
    drop(registry);

    let rotated = std::process::Command::new(binary_path("imgmesh-source-registry").unwrap())
        .env_clear()
        .arg("rotate-master-key")
        .arg(format!("--database={}", database.display()))
        .arg(format!("--master-key-file={}", new.display()))
        .arg(format!("--previous-master-key-file={}", old.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    // Read secret, upload secret and two tokens.
    assert!(
        stdout.contains("re-wrapped 1 of 4 secret(s); 3 left\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("re-wrapped 4 of 4 secret(s); 0 left\n"),
        "{stdout}"
    );
    assert!(stdout.contains("done: 4 secret(s) re-wrapped"), "{stdout}");

    let (_registry, url) = start_registry("registry-new", &database, &new, &certs, dir.path())
        .await
        .unwrap();
    // The deploy decrypts the read secret (the endpoint is unreachable on
    // purpose: a secret that did not open would fail differently).
    let deploy = tokio::process::Command::new(binary_path("imgmesh").unwrap())
        .arg(format!("--registry-url={url}"))
        .args(certs.tls_args("cli"))
        .args(["sources", "deploy", "vault", "--wait"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&deploy.stderr).trim(),
        "error: deploy of vault failed: could not connect to the s3 endpoint"
    );
    assert_eq!(tokens.len(), 2);

    let refused = std::process::Command::new(binary_path("imgmesh-source-registry").unwrap())
        .env_clear()
        .args(certs.tls_args("source-registry"))
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--database={}", database.display()))
        .arg(format!("--master-key-file={}", old.display()))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("4 stored secret(s) are wrapped by master key(s)")
            && stderr.contains("--previous-master-key-file"),
        "{stderr}"
    );
}

/// Runs `imgmesh --json <args>` against `registry_url` as the `cli`
/// identity of `certs`; non-zero exit is an error carrying stderr.
async fn cli(registry_url: &str, certs: &MeshCerts, args: &[&str]) -> anyhow::Result<Output> {
    let output = tokio::process::Command::new(binary_path("imgmesh")?)
        .arg(format!("--registry-url={registry_url}"))
        .args(certs.tls_args("cli"))
        .arg("--json")
        .args(args)
        .env_remove("IMGMESH_SECRET_ACCESS_KEY")
        .env_remove("IMGMESH_UPLOAD_SECRET_ACCESS_KEY")
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "imgmesh {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}
