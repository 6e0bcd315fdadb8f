//! The server: a SIP registrar and proxy that wakes sleeping phones with
//! VoIP pushes (RFC 8599).
pub mod config;
pub mod pn;
pub mod store;
