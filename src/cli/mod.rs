//! The subcommands of the `callkit-voip` binary, one module each.

pub mod control;
pub mod ctl;
pub mod demo;
pub mod directory;
pub mod phone;
pub mod push_device;
pub mod push_service;
pub mod server;
pub mod simulate;
pub mod sip;
pub mod tui;
pub mod user;

/// Writes one line to standard output and says whether it got there. Unlike
/// `println!` it does not panic when the reader has gone away (a closed pipe,
/// e.g. `callkit-voip push-service | head -1`): a long-running command keeps
/// serving, or ends quietly, as it chooses.
pub fn say(line: std::fmt::Arguments<'_>) -> bool {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}
