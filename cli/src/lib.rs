//! The imgmesh admin command line: create, list, show, change, deploy and
//! remove Sources, rotate their secure URL tokens and upload objects, by
//! talking gRPC to the source registry; purge cached derivatives through a
//! renderer; manage API keys and the admin API's scoped tokens, and read
//! the audit log; and sign URLs (offline).
//!
//! [`Cli`] is the parsed command line, [`run`] executes it and returns what
//! to print; `main` only prints that or `error: <message>`.

mod admin_access;
mod args;
mod commands;
mod error;
mod grpc_clients;
mod purge;
mod source_output;
mod url_signing;

pub use crate::args::{
    Cli, Command, CreateArgs, DEFAULT_RENDERER_URL, DeployArgs, DevCertsArgs, OnOff, PurgeArgs,
    SourcesCommand, TtlBehavior, UpdateArgs,
};
pub use crate::commands::run;
pub use crate::error::CliError;
pub use crate::source_output::{
    SourceJson, cache_ttl_behavior_name, format_unix_time, render_deleted, render_list,
    render_rotated_token, render_source, render_uploaded, status_name,
};
pub use crate::url_signing::{SignError, sign_url};
pub use imgmesh_runtime::DEFAULT_REGISTRY_URL;
