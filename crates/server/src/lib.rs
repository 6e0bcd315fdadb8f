//! The server: a SIP registrar and proxy that wakes sleeping phones with
//! VoIP pushes (RFC 8599).
pub mod auth;
pub mod bucket;
pub mod config;
pub mod driver;
pub mod metrics;
pub mod pn;
pub mod proxy;
pub mod registrar;
pub mod store;
