//! The command line of `imgmesh`: global flags and one subcommand per
//! operation.

use std::convert::Infallible;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imgmesh_proto::registry::v1::CacheTtlBehavior;
use secrecy::SecretString;

/// Default gRPC URL of a renderer.
pub const DEFAULT_RENDERER_URL: &str = "http://127.0.0.1:50053";

/// The imgmesh admin command line.
#[derive(Debug, Parser)]
#[command(
    name = "imgmesh",
    version,
    about = "Manage imgmesh Sources, sign URLs and upload objects.",
    mut_arg("registry_url", |arg| arg.global(true))
)]
pub struct Cli {
    /// The source registry's gRPC API: `--registry-url`, as every service
    /// that calls it spells it (given before or after the subcommand).
    #[command(flatten)]
    pub registry: imgmesh_runtime::RegistryArgs,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Mutual TLS to the registry and renderers with the operator's
    /// certificate (identity `cli`). A command that dials refuses to run
    /// without them unless `--insecure-plaintext` is given (which only a
    /// registry run with `--insecure-plaintext` accepts).
    #[command(flatten)]
    pub tls: imgmesh_runtime::TlsArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage Sources: the S3 buckets imgmesh renders from.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Sign a URL for a Source with secure URLs on (imgix's `s` parameter).
    Sign(SignArgs),
    /// Upload a file into a Source's bucket, under its prefix, with the
    /// Source's upload credentials.
    Upload(UploadArgs),
    /// Drop the cached derivatives of one asset, of every asset under a
    /// directory, or of a whole Source (at once, on every replica).
    Purge(PurgeArgs),
    /// Manage API keys of the public gRPC render API.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the admin API's named, scoped credentials.
    #[command(subcommand)]
    AdminTokens(AdminTokensCommand),
    /// Show the audit log of changes, newest first.
    Audit(AuditArgs),
    /// Write a throwaway CA and a certificate per imgmesh identity (for
    /// `--tls-cert`/`--tls-key`/`--tls-ca`) into a directory; for
    /// development and tests only, never production.
    DevCerts(DevCertsArgs),
}

/// Flags of `imgmesh dev-certs`.
#[derive(Debug, Args)]
pub struct DevCertsArgs {
    /// Directory to write `ca.pem`, `<service>.pem` and `<service>-key.pem`
    /// into (created if missing; existing files are replaced).
    pub dir: PathBuf,
}

/// Flags of `imgmesh purge`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["path", "prefix", "all"])))]
pub struct PurgeArgs {
    /// Source id (src_…) or name.
    pub id_or_name: String,

    /// One asset, every rendering of it: its path (`/photos/cat.jpg`) or an
    /// image URL (only its path counts).
    #[arg(long)]
    pub path: Option<String>,

    /// Every asset under this directory (`photos/2024/`).
    #[arg(long)]
    pub prefix: Option<String>,

    /// Every derivative of the Source.
    #[arg(long)]
    pub all: bool,

    /// gRPC URL of a renderer (any one: purges reach every replica).
    #[arg(long, env = "IMGMESH_RENDERER_URL", default_value = DEFAULT_RENDERER_URL)]
    pub renderer_url: String,
}

/// Flags of `imgmesh sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The URL to sign: `/path?query` or `https://host/path?query`, exactly
    /// as it will be requested.
    pub url: String,

    /// The Source's secure URL token.
    #[arg(
        long,
        env = "IMGMESH_SECURE_URL_TOKEN",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub token: SecretString,
}

/// Flags of `imgmesh upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Source id (src_…) or name.
    pub source: String,

    /// The file to upload.
    pub file: PathBuf,

    /// Object key under the Source's prefix (default: the file's name).
    #[arg(long, value_name = "PATH")]
    pub key: Option<String>,

    /// Content-Type to store (default: recognised from the file's bytes).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
}

/// Flags of `imgmesh sources rotate-token`.
#[derive(Debug, Args)]
pub struct RotateTokenArgs {
    /// Source id (src_…) or name.
    pub id_or_name: String,

    /// How long the tokens in use now keep working, in seconds (0: stop
    /// them at once).
    #[arg(long = "grace", value_name = "SECONDS")]
    pub grace_seconds: u32,
}

/// `imgmesh keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, only its hash is stored.
    Create(KeysCreateArgs),
    /// List every key, revoked ones included, without the keys themselves.
    List,
    /// Revoke a key (gateways stop accepting it within 5 seconds).
    Revoke {
        /// Key id (key_…).
        id: String,
    },
}

/// Flags of `imgmesh keys create`.
#[derive(Debug, Args)]
pub struct KeysCreateArgs {
    /// What the key is for.
    #[arg(long)]
    pub name: String,

    /// Operations the key may perform: render, describe (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub operations: Vec<String>,

    /// A Source id the key may use (repeatable); none for every Source.
    #[arg(long = "source")]
    pub sources: Vec<String>,
}

/// `imgmesh admin-tokens …`.
#[derive(Debug, Subcommand)]
pub enum AdminTokensCommand {
    /// Create an admin token; it is printed once, only its hash is stored.
    Create(AdminTokensCreateArgs),
    /// List every admin token, revoked and expired ones included, without
    /// the tokens themselves.
    List,
    /// Revoke an admin token (the admin API refuses it from the next request).
    Revoke {
        /// Token id (adm_…).
        id: String,
    },
}

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminScopeArg {
    /// Read everything, change nothing.
    ReadOnly,
    /// Read and change only the Sources given with --source.
    SourceAdmin,
    /// Everything.
    FullAdmin,
}

/// Flags of `imgmesh admin-tokens create`.
#[derive(Debug, Args)]
pub struct AdminTokensCreateArgs {
    /// Who or what holds it; the audit log names changes by it.
    #[arg(long)]
    pub name: String,

    /// What it may do.
    #[arg(long, value_enum)]
    pub scope: AdminScopeArg,

    /// A Source id a source-admin token may act on (repeatable).
    #[arg(long = "source")]
    pub sources: Vec<String>,

    /// Seconds from now until it stops working; never when left out.
    #[arg(long)]
    pub expires_in_seconds: Option<u64>,
}

/// Flags of `imgmesh audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only changes to this Source id.
    #[arg(long)]
    pub source: Option<String>,

    /// Most events shown (at most 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// `imgmesh sources …`.
#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Register a new Source.
    Create(Box<CreateArgs>),
    /// List every Source, ordered by name.
    List,
    /// Show one Source.
    Get {
        /// Source id (src_…) or name.
        id_or_name: String,
    },
    /// Change a Source's settings; flags left out keep their value.
    Update(Box<UpdateArgs>),
    /// Remove a Source.
    Delete {
        /// Source id (src_…) or name.
        id_or_name: String,
    },
    /// Verify a Source's bucket and permissions; only deployed Sources serve.
    Deploy(DeployArgs),
    /// Add a new secure URL token (printed once) and retire the others
    /// after a grace period.
    RotateToken(RotateTokenArgs),
}

/// Flags of `imgmesh sources deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Source id (src_…) or name.
    pub id_or_name: String,

    /// Wait until the deploy has finished; exit 1 if it failed.
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, requires = "wait")]
    pub wait_timeout: u64,
}

/// imgix's cache_ttl_behavior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TtlBehavior {
    /// Use the original's Cache-Control/Expires, else the Source's TTL.
    RespectOrigin,
    /// Always use the Source's TTL.
    OverrideOrigin,
    /// Use the original's lifetime but never less than the Source's TTL.
    EnforceMinimum,
}

// === impl TtlBehavior ===

impl From<TtlBehavior> for CacheTtlBehavior {
    fn from(behavior: TtlBehavior) -> Self {
        match behavior {
            TtlBehavior::RespectOrigin => CacheTtlBehavior::RespectOrigin,
            TtlBehavior::OverrideOrigin => CacheTtlBehavior::OverrideOrigin,
            TtlBehavior::EnforceMinimum => CacheTtlBehavior::EnforceMinimum,
        }
    }
}

/// A switch given as `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Turned on.
    On,
    /// Turned off.
    Off,
}

// === impl OnOff ===

impl OnOff {
    /// `true` for `on`.
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

/// Flags of `imgmesh sources create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Unique name: 1 to 64 of a-z, 0-9, '-' and '_'.
    #[arg(long)]
    pub name: String,

    /// DNS label the gateway routes by: <subdomain>.<base-domain>.
    #[arg(long)]
    pub subdomain: String,

    /// S3 bucket name.
    #[arg(long)]
    pub bucket: String,

    /// S3 region, e.g. us-east-1.
    #[arg(long)]
    pub region: String,

    /// Endpoint URL of an S3-compatible store; leave out for AWS S3.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Prefix prepended to every asset path, e.g. photos.
    #[arg(long, value_name = "P")]
    pub path_prefix: Option<String>,

    /// Read-only access key id.
    #[arg(long)]
    pub access_key_id: String,

    /// Secret access key; stored encrypted, never shown again. Prefer the
    /// environment variable: command lines are visible to other users.
    #[arg(
        long,
        env = "IMGMESH_SECRET_ACCESS_KEY",
        hide_env_values = true,
        value_parser = secret_text
    )]
    pub secret_access_key: SecretString,

    /// imgix query applied to every request unless the URL overrides it,
    /// e.g. "auto=format&q=75".
    #[arg(long, value_name = "Q")]
    pub default_params: Option<String>,

    /// Lifetime of derivatives in seconds (default one year).
    #[arg(long = "cache-ttl", value_name = "SECONDS")]
    pub cache_ttl: Option<u32>,

    /// Extra host name routed to this Source; repeat for more.
    #[arg(long = "custom-domain", value_name = "HOST")]
    pub custom_domains: Vec<String>,

    /// How the derivative lifetime relates to the original's caching headers
    /// (default respect_origin).
    #[arg(long, value_enum, value_name = "BEHAVIOR")]
    pub cache_ttl_behavior: Option<TtlBehavior>,

    /// Lifetime of error responses in seconds (default 300).
    #[arg(long = "cache-ttl-error", value_name = "SECONDS")]
    pub cache_ttl_error: Option<u32>,

    /// Path on this Source served instead of a missing asset.
    #[arg(long, value_name = "PATH")]
    pub image_missing: Option<String>,

    /// Apply the request's params to --image-missing.
    #[arg(long)]
    pub image_missing_append_params: bool,

    /// Path on this Source served instead of an asset that fails to render.
    #[arg(long, value_name = "PATH")]
    pub image_error: Option<String>,

    /// Apply the request's params to --image-error.
    #[arg(long)]
    pub image_error_append_params: bool,

    /// Require signed URLs (the `s` parameter); default off.
    #[arg(long, value_enum, value_name = "on|off")]
    pub secure_urls: Option<OnOff>,

    /// Upload (write) access key id; never used for reads.
    #[arg(long, requires = "upload_secret_access_key")]
    pub upload_access_key_id: Option<String>,

    /// Upload secret access key; stored encrypted, never shown again.
    #[arg(
        long,
        env = "IMGMESH_UPLOAD_SECRET_ACCESS_KEY",
        hide_env_values = true,
        value_parser = secret_text,
        requires = "upload_access_key_id"
    )]
    pub upload_secret_access_key: Option<SecretString>,

    /// Create the Source disabled (it answers 410 Gone).
    #[arg(long)]
    pub disabled: bool,
}

/// Flags of `imgmesh sources update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Source id (src_…) or name.
    pub id_or_name: String,

    /// New subdomain.
    #[arg(long)]
    pub subdomain: Option<String>,

    /// New bucket.
    #[arg(long)]
    pub bucket: Option<String>,

    /// New region.
    #[arg(long)]
    pub region: Option<String>,

    /// New endpoint URL; an empty value switches back to AWS S3.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// New path prefix; an empty value removes it.
    #[arg(long, value_name = "P")]
    pub path_prefix: Option<String>,

    /// New access key id.
    #[arg(long)]
    pub access_key_id: Option<String>,

    /// New secret access key. Unlike `create`, this does not read
    /// IMGMESH_SECRET_ACCESS_KEY, so an exported variable never replaces a
    /// secret by accident.
    #[arg(long, value_parser = secret_text)]
    pub secret_access_key: Option<SecretString>,

    /// New default params; an empty value removes them.
    #[arg(long, value_name = "Q")]
    pub default_params: Option<String>,

    /// New lifetime of derivatives in seconds; 0 restores the default.
    #[arg(long = "cache-ttl", value_name = "SECONDS")]
    pub cache_ttl: Option<u32>,

    /// Replace the custom domains with these; repeat for more.
    #[arg(long = "custom-domain", value_name = "HOST")]
    pub custom_domains: Vec<String>,

    /// Remove every custom domain.
    #[arg(long, conflicts_with = "custom_domains")]
    pub clear_custom_domains: bool,

    /// New cache TTL behaviour.
    #[arg(long, value_enum, value_name = "BEHAVIOR")]
    pub cache_ttl_behavior: Option<TtlBehavior>,

    /// New lifetime of error responses in seconds; 0 restores 300.
    #[arg(long = "cache-ttl-error", value_name = "SECONDS")]
    pub cache_ttl_error: Option<u32>,

    /// New image_missing path; an empty value removes it.
    #[arg(long, value_name = "PATH")]
    pub image_missing: Option<String>,

    /// Whether the request's params are applied to image_missing.
    #[arg(long, value_name = "true|false")]
    pub image_missing_append_params: Option<bool>,

    /// New image_error path; an empty value removes it.
    #[arg(long, value_name = "PATH")]
    pub image_error: Option<String>,

    /// Whether the request's params are applied to image_error.
    #[arg(long, value_name = "true|false")]
    pub image_error_append_params: Option<bool>,

    /// Turn signed URLs on or off.
    #[arg(long, value_enum, value_name = "on|off")]
    pub secure_urls: Option<OnOff>,

    /// New upload access key id (with --upload-secret-access-key); an
    /// empty value removes the upload credentials.
    #[arg(long)]
    pub upload_access_key_id: Option<String>,

    /// New upload secret access key. Like --secret-access-key on update, it
    /// is not read from the environment.
    #[arg(long, value_parser = secret_text, requires = "upload_access_key_id")]
    pub upload_secret_access_key: Option<SecretString>,

    /// Enable (true) or disable (false) the Source.
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
}

/// Keeps a secret flag value out of `Debug` output.
fn secret_text(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use imgmesh_runtime::DEFAULT_REGISTRY_URL;
    use secrecy::ExposeSecret as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("imgmesh").chain(args.iter().copied()))
    }

    /// `keys create` splits `--operations` on commas and repeats `--source`;
    /// no `--source` means every Source, and `--operations` is required.
    #[test]
    fn keys_create_flags() {
        let cli = parse(&[
            "keys",
            "create",
            "--name=mailer",
            "--operations=render,describe",
            "--source=src_a",
            "--source=src_b",
        ])
        .unwrap();
        let Command::Keys(KeysCommand::Create(args)) = cli.command else {
            panic!("not keys create");
        };
        assert_eq!(args.name, "mailer");
        assert_eq!(args.operations, ["render", "describe"]);
        assert_eq!(args.sources, ["src_a", "src_b"]);
        let cli = parse(&["keys", "create", "--name=m", "--operations=render"]).unwrap();
        let Command::Keys(KeysCommand::Create(args)) = cli.command else {
            panic!("not keys create");
        };
        assert!(args.sources.is_empty());
        let missing = parse(&["keys", "create", "--name=m"]).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::MissingRequiredArgument);
        let cli = parse(&["keys", "revoke", "key_1"]).unwrap();
        assert!(matches!(cli.command, Command::Keys(KeysCommand::Revoke { id }) if id == "key_1"));
    }

    /// `admin-tokens create` takes a scope by name, repeats `--source` and
    /// an optional expiry; `audit` takes a Source and a limit.
    #[test]
    fn admin_tokens_and_audit_flags() {
        let cli = parse(&[
            "admin-tokens",
            "create",
            "--name=shop team",
            "--scope=source-admin",
            "--source=src_a",
            "--expires-in-seconds=3600",
        ])
        .unwrap();
        let Command::AdminTokens(AdminTokensCommand::Create(args)) = cli.command else {
            panic!("not admin-tokens create");
        };
        assert_eq!(args.scope, AdminScopeArg::SourceAdmin);
        assert_eq!(args.sources, ["src_a"]);
        assert_eq!(args.expires_in_seconds, Some(3600));
        let bad = parse(&["admin-tokens", "create", "--name=x", "--scope=root"]).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidValue);
        let cli = parse(&["audit", "--source=src_a", "--limit=5"]).unwrap();
        let Command::Audit(args) = cli.command else {
            panic!("not audit");
        };
        assert_eq!((args.source.as_deref(), args.limit), (Some("src_a"), 5));
    }

    const CREATE: &[&str] = &[
        "sources",
        "create",
        "--name=demo",
        "--subdomain=demo",
        "--bucket=images",
        "--region=us-east-1",
        "--access-key-id=AKIA",
        "--secret-access-key=s3cret",
    ];

    /// `sources create` parses every flag, optional ones as None.
    #[test]
    fn create_parses_required_flags() {
        let cli = parse(CREATE).unwrap();
        assert_eq!(cli.registry.registry_url, DEFAULT_REGISTRY_URL);
        assert!(!cli.json);
        let Command::Sources(SourcesCommand::Create(args)) = cli.command else {
            panic!("not create");
        };
        assert_eq!(args.name, "demo");
        assert_eq!(args.subdomain, "demo");
        assert_eq!(args.bucket, "images");
        assert_eq!(args.region, "us-east-1");
        assert_eq!(args.access_key_id, "AKIA");
        assert_eq!(args.secret_access_key.expose_secret(), "s3cret");
        assert!(args.endpoint.is_none() && args.path_prefix.is_none());
        assert!(args.default_params.is_none() && args.cache_ttl.is_none());
    }

    /// Optional create flags and global flags (before or after the
    /// subcommand) are parsed.
    #[test]
    fn create_parses_optional_and_global_flags() {
        let mut args = vec!["--registry-url=http://10.0.0.1:1", "sources", "create"];
        args.extend_from_slice(&CREATE[2..]);
        args.extend_from_slice(&[
            "--endpoint=http://127.0.0.1:9000",
            "--path-prefix=photos",
            "--default-params=auto=format&q=75",
            "--cache-ttl=3600",
            "--json",
        ]);
        let cli = parse(&args).unwrap();
        assert_eq!(cli.registry.registry_url, "http://10.0.0.1:1");
        assert!(cli.json);
        let Command::Sources(SourcesCommand::Create(args)) = cli.command else {
            panic!("not create");
        };
        assert_eq!(args.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(args.path_prefix.as_deref(), Some("photos"));
        assert_eq!(args.default_params.as_deref(), Some("auto=format&q=75"));
        assert_eq!(args.cache_ttl, Some(3600));
    }

    /// `--registry-url` (the services' shared flag group) is global: it is
    /// read after the subcommand as well as before it.
    #[test]
    fn registry_url_is_read_after_the_subcommand() {
        let cli = parse(&["sources", "list", "--registry-url=http://10.0.0.2:7"]).unwrap();
        assert_eq!(cli.registry.registry_url, "http://10.0.0.2:7");
    }

    /// A create without a required flag is a usage error (exit code 2).
    #[test]
    fn create_requires_its_flags() {
        // The secret (last) is left in: it may also come from the environment.
        for missing in 2..CREATE.len() - 1 {
            let args: Vec<&str> = CREATE
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, a)| *a)
                .collect();
            let error = parse(&args).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument, "{args:?}");
            assert_eq!(error.exit_code(), 2);
        }
    }

    /// A non-numeric or negative TTL is a usage error.
    #[test]
    fn cache_ttl_must_be_a_number() {
        for ttl in ["--cache-ttl=soon", "--cache-ttl=-1"] {
            let mut args = CREATE.to_vec();
            args.push(ttl);
            assert_eq!(parse(&args).unwrap_err().kind(), ErrorKind::ValueValidation);
        }
    }

    /// `sources update` takes the id or name and only the given flags.
    #[test]
    fn update_parses_given_flags_only() {
        let cli = parse(&[
            "sources",
            "update",
            "demo",
            "--bucket=other",
            "--endpoint=",
            "--secret-access-key=new",
        ])
        .unwrap();
        let Command::Sources(SourcesCommand::Update(args)) = cli.command else {
            panic!("not update");
        };
        assert_eq!(args.id_or_name, "demo");
        assert_eq!(args.bucket.as_deref(), Some("other"));
        assert_eq!(args.endpoint.as_deref(), Some(""));
        assert_eq!(args.secret_access_key.unwrap().expose_secret(), "new");
        assert!(args.subdomain.is_none() && args.region.is_none() && args.cache_ttl.is_none());
    }

    /// get, delete and list parse; get without an argument is a usage error.
    #[test]
    fn get_list_delete_parse() {
        assert!(matches!(
            parse(&["sources", "get", "demo"]).unwrap().command,
            Command::Sources(SourcesCommand::Get { id_or_name }) if id_or_name == "demo"
        ));
        assert!(matches!(
            parse(&["sources", "delete", "src_0123456789ab"]).unwrap().command,
            Command::Sources(SourcesCommand::Delete { id_or_name }) if id_or_name == "src_0123456789ab"
        ));
        assert!(matches!(
            parse(&["--json", "sources", "list"]).unwrap().command,
            Command::Sources(SourcesCommand::List)
        ));
        assert_eq!(
            parse(&["sources", "get"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["sources", "frobnicate"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
    }

    /// Every new create flag is parsed; the upload secret may come from the
    /// environment-backed flag and never shows in Debug.
    #[test]
    fn create_parses_source_settings() {
        let mut args = CREATE.to_vec();
        args.extend_from_slice(&[
            "--custom-domain=img.example.com",
            "--custom-domain=cdn.example.com",
            "--cache-ttl-behavior=enforce_minimum",
            "--cache-ttl-error=60",
            "--image-missing=/missing.png",
            "--image-missing-append-params",
            "--image-error=/error.png",
            "--secure-urls=on",
            "--upload-access-key-id=AKIAUPLOAD",
            "--upload-secret-access-key=upload-s3cret",
            "--disabled",
        ]);
        let cli = parse(&args).unwrap();
        assert!(!format!("{cli:?}").contains("upload-s3cret"));
        let Command::Sources(SourcesCommand::Create(args)) = cli.command else {
            panic!("not create");
        };
        assert_eq!(args.custom_domains, ["img.example.com", "cdn.example.com"]);
        assert_eq!(args.cache_ttl_behavior, Some(TtlBehavior::EnforceMinimum));
        assert_eq!(args.cache_ttl_error, Some(60));
        assert_eq!(args.image_missing.as_deref(), Some("/missing.png"));
        assert!(args.image_missing_append_params && !args.image_error_append_params);
        assert_eq!(args.image_error.as_deref(), Some("/error.png"));
        assert_eq!(args.secure_urls, Some(OnOff::On));
        assert_eq!(args.upload_access_key_id.as_deref(), Some("AKIAUPLOAD"));
        assert_eq!(
            args.upload_secret_access_key.unwrap().expose_secret(),
            "upload-s3cret"
        );
        assert!(args.disabled);

        let plain = parse(CREATE).unwrap();
        let Command::Sources(SourcesCommand::Create(plain)) = plain.command else {
            panic!("not create");
        };
        assert!(plain.custom_domains.is_empty() && !plain.disabled);
        assert!(plain.secure_urls.is_none() && plain.upload_access_key_id.is_none());
    }

    /// Bad values and half-given upload credentials are usage errors.
    #[test]
    fn create_refuses_bad_settings() {
        for (extra, kind) in [
            ("--cache-ttl-behavior=sometimes", ErrorKind::InvalidValue),
            ("--secure-urls=maybe", ErrorKind::InvalidValue),
            ("--cache-ttl-error=-5", ErrorKind::ValueValidation),
            (
                "--upload-access-key-id=AKIAUPLOAD",
                ErrorKind::MissingRequiredArgument,
            ),
            (
                "--upload-secret-access-key=x",
                ErrorKind::MissingRequiredArgument,
            ),
        ] {
            let mut args = CREATE.to_vec();
            args.push(extra);
            assert_eq!(parse(&args).unwrap_err().kind(), kind, "{extra}");
        }
    }

    /// Update takes every new setting as an explicit value.
    #[test]
    fn update_parses_source_settings() {
        let cli = parse(&[
            "sources",
            "update",
            "demo",
            "--custom-domain=img.example.com",
            "--cache-ttl-behavior=override_origin",
            "--image-missing=",
            "--image-error-append-params=true",
            "--secure-urls=off",
            "--enabled=false",
            "--upload-access-key-id=",
        ])
        .unwrap();
        let Command::Sources(SourcesCommand::Update(args)) = cli.command else {
            panic!("not update");
        };
        assert_eq!(args.custom_domains, ["img.example.com"]);
        assert!(!args.clear_custom_domains);
        assert_eq!(args.cache_ttl_behavior, Some(TtlBehavior::OverrideOrigin));
        assert_eq!(args.image_missing.as_deref(), Some(""));
        assert_eq!(args.image_error_append_params, Some(true));
        assert_eq!(args.image_missing_append_params, None);
        assert_eq!(args.secure_urls, Some(OnOff::Off));
        assert_eq!(args.enabled, Some(false));
        assert_eq!(args.upload_access_key_id.as_deref(), Some(""));

        let error = parse(&[
            "sources",
            "update",
            "demo",
            "--custom-domain=a.example.com",
            "--clear-custom-domains",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
        let error = parse(&["sources", "update", "demo", "--enabled=perhaps"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidValue);
    }

    /// `sources deploy` takes the Source and an optional wait with timeout.
    #[test]
    fn deploy_parses() {
        let cli = parse(&["sources", "deploy", "demo"]).unwrap();
        let Command::Sources(SourcesCommand::Deploy(args)) = cli.command else {
            panic!("not deploy");
        };
        assert_eq!(args.id_or_name, "demo");
        assert!(!args.wait);
        assert_eq!(args.wait_timeout, 120);
        let cli = parse(&["sources", "deploy", "demo", "--wait", "--wait-timeout=5"]).unwrap();
        let Command::Sources(SourcesCommand::Deploy(args)) = cli.command else {
            panic!("not deploy");
        };
        assert!(args.wait);
        assert_eq!(args.wait_timeout, 5);
        let error = parse(&["sources", "deploy", "demo", "--wait-timeout=5"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
    }

    /// `sign` takes the URL and a token from the flag; `upload` the Source,
    /// the file and an optional key; `rotate-token` needs --grace.
    #[test]
    fn sign_upload_and_rotate_token_parse() {
        let cli = parse(&["sign", "/users/1.png?w=400", "--token=FOO123bar"]).unwrap();
        assert!(!format!("{cli:?}").contains("FOO123bar"));
        let Command::Sign(args) = cli.command else {
            panic!("not sign");
        };
        assert_eq!(args.url, "/users/1.png?w=400");
        assert_eq!(args.token.expose_secret(), "FOO123bar");

        let cli = parse(&["upload", "demo", "/tmp/dog.png", "--key=new/dog.png"]).unwrap();
        let Command::Upload(args) = cli.command else {
            panic!("not upload");
        };
        assert_eq!(args.source, "demo");
        assert_eq!(args.file, PathBuf::from("/tmp/dog.png"));
        assert_eq!(args.key.as_deref(), Some("new/dog.png"));
        assert!(args.content_type.is_none());
        assert_eq!(
            parse(&["upload", "demo"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );

        let cli = parse(&["sources", "rotate-token", "demo", "--grace=3600"]).unwrap();
        let Command::Sources(SourcesCommand::RotateToken(args)) = cli.command else {
            panic!("not rotate-token");
        };
        assert_eq!(
            (args.id_or_name.as_str(), args.grace_seconds),
            ("demo", 3600)
        );
        assert_eq!(
            parse(&["sources", "rotate-token", "demo"])
                .unwrap_err()
                .kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    /// Debug output of parsed arguments never shows the secret.
    #[test]
    fn debug_hides_the_secret() {
        let cli = parse(CREATE).unwrap();
        assert!(!format!("{cli:?}").contains("s3cret"));
    }

    /// The clap definition is internally consistent.
    #[test]
    fn command_definition_is_valid() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
