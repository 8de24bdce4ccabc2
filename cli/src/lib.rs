//! The imgmesh admin command line: create, list, show, change and remove
//! Sources by talking gRPC to the source registry.
//!
//! [`Cli`] is the parsed command line, [`run`] executes it and returns what
//! to print; `main` only prints that or `error: <message>`.

mod args;
mod commands;
mod source_output;

pub use crate::args::{
    Cli, Command, CreateArgs, DEFAULT_REGISTRY_URL, DeployArgs, OnOff, SourcesCommand, TtlBehavior,
    UpdateArgs,
};
pub use crate::commands::{CliError, run};
pub use crate::source_output::{
    SourceJson, cache_ttl_behavior_name, format_unix_time, render_deleted, render_list,
    render_source, status_name,
};
