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
pub mod user;
