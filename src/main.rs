//! `callkit-voip`: the one binary.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "callkit-voip", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Call Directory: blocked numbers and caller labels.
    Directory {
        #[command(subcommand)]
        cmd: cli::directory::DirectoryCommand,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Directory { cmd } => cli::directory::run(cmd),
    }
}
