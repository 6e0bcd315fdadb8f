//! The server: a SIP registrar and proxy that wakes sleeping phones with
//! VoIP pushes (RFC 8599).
//!
//! A request passes a chain of stages, each a module with one entry point:
//! the transaction layer (`sip`), then [`auth`] (digest against stored HA1s),
//! then the [`registrar`] for a REGISTER or the [`proxy`] router for
//! anything else, which forks to every binding and parks the requests for
//! sleeping phones in the [`bucket`] until their refresh REGISTER — with
//! [`pn`] reading the RFC 8599 parameters and [`store`] keeping users and
//! bindings (SQLite, durable before acknowledged). All of that is sans-IO
//! with an explicit `now`; [`driver`] is the tokio shell with sockets, the
//! APNs client, the in-process push service and `/metrics`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use server::{Authenticator, Domains, Proxy, ProxyConfig, Registrar, RegistrarConfig, SqliteStore};
//!
//! let config = ProxyConfig {
//!     local: "127.0.0.1:5060".parse().unwrap(),
//!     local_tcp: None,
//!     local_tls: None,
//!     domains: Domains::new("127.0.0.1", &["localhost".into()]),
//!     bucket_timeout: Duration::from_secs(30),
//!     timers: Default::default(),
//! };
//! let auth = Authenticator::new("callkit-voip", [7; 32], Duration::from_secs(300), &[]);
//! let store = SqliteStore::in_memory()?;
//! let mut proxy = Proxy::new(config, Box::new(store), auth, Registrar::new(RegistrarConfig::default()));
//! // The driver loop: feed messages and timeouts, carry out the outputs.
//! proxy.handle_timeout(Instant::now());
//! assert!(proxy.poll_output().is_none());
//! # Ok::<(), server::StoreError>(())
//! ```

pub mod auth;
pub mod bucket;
pub mod config;
pub mod driver;
pub mod metrics;
pub mod pn;
pub mod proxy;
pub mod registrar;
pub mod store;

pub use auth::Authenticator;
pub use config::Config;
pub use pn::{PnError, PushProvider, PushTarget};
pub use proxy::{Domains, Output, Proxy, ProxyConfig, PushJob, PushResult, StoreWrite, WriteId};
pub use registrar::{Registrar, RegistrarConfig};
pub use store::{Binding, SqliteStore, Store, StoreError, User, WriteOp};
