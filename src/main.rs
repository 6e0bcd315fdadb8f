//! `callkit-voip`: the one binary.

use clap::Parser;

#[derive(Parser)]
#[command(name = "callkit-voip", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
