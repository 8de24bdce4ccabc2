//! The `imgmesh` binary: parse the command line (usage errors exit with 2),
//! run it, print the result or one `error:` line and exit with 1.

use std::process::ExitCode;

use clap::Parser as _;
use imgmesh_cli::{Cli, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
