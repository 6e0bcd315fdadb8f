//! SIP transports: UDP, TCP and TLS (RFC 3261 §18, RFC 3581, RFC 5626 §4.4.1).
//!
//! Everything that decides something is sans-IO and tested without sockets:
//! [`StreamFramer`] cuts a byte stream into messages and keep-alives,
//! [`KeepAlive`] times the pings a client sends on the flows it opened,
//! [`stamp_received`] writes `received`/`rport` into a request's top Via, and
//! [`response_target`] says where a response goes. [`TransportLayer`] is the
//! thin tokio driver around them: it owns the sockets, the connection table
//! (connections are reused in both directions and closed when idle) and
//! hands every received message out as an [`Incoming`]. The drivers come
//! with the default `net` feature; without it only the sans-IO parts build.
//!
//! A server that answers every request with `200 OK`, and one request to it:
//!
//! ```
//! use sip::transport::{response_target, Transport, TransportConfig, TransportLayer};
//! use sip::{Message, MessageBuilder};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (layer, mut incoming) = TransportLayer::bind(TransportConfig::new("127.0.0.1:0".parse()?)).await?;
//! let server = layer.local_addr(Transport::Udp).unwrap();
//! # let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! # client.send_to(b"OPTIONS sip:s@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP client.invalid;rport;branch=z9hG4bK1\r\n\
//! #   From: <sip:a@b>;tag=1\r\nTo: <sip:s@127.0.0.1>\r\nCall-ID: doc\r\nCSeq: 1 OPTIONS\r\n\r\n", server).await?;
//! // The whole driver loop of a stateless server:
//! if let Some(request) = incoming.recv().await {
//!     let ok = MessageBuilder::response_to(&request.message, 200, Some("t1")).to_bytes();
//!     if let Some(target) = response_target(&Message::parse(ok.clone())?) {
//!         layer.send(&target, ok).await?; // to received:rport, stamped on the way in
//!     }
//! }
//! # let mut buf = [0u8; 2048];
//! # let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), client.recv_from(&mut buf)).await??;
//! # assert_eq!(Message::parse(buf[..n].to_vec())?.status(), Some(200));
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;

use crate::message::Message;

mod framing;
mod keepalive;
#[cfg(feature = "net")]
mod layer;
#[cfg(feature = "net")]
mod tls;
mod via;

pub use framing::{Frame, FramingError, StreamFramer, PING, PONG};
pub use keepalive::{KeepAlive, KeepAliveAction, KeepAliveConfig};
#[cfg(feature = "net")]
pub use layer::{SendError, TransportConfig, TransportError, TransportLayer};
#[cfg(feature = "net")]
pub use tls::{client_config_trusting_pem, server_config_from_pem, TlsConfigError};
pub use via::{response_target, stamp_received};

/// The transports this layer speaks, as named in a Via's sent-protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// From a Via transport token (case-insensitive); `None` for the ones
    /// this layer does not speak (SCTP, WS, …).
    pub fn from_via(token: &str) -> Option<Transport> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(token))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// 5061 for TLS (`sips:`), 5060 otherwise (RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }

    /// TCP and TLS: a connection carries the messages.
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to send: a transport and an address. For TLS, `server_name` is the
/// name the certificate must carry (SNI); without it the IP address is
/// checked against the certificate's IP SANs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub server_name: Option<String>,
}

impl Target {
    pub fn new(transport: Transport, addr: SocketAddr) -> Self {
        Target {
            transport,
            addr,
            server_name: None,
        }
    }
    pub fn udp(addr: SocketAddr) -> Self {
        Self::new(Transport::Udp, addr)
    }
    pub fn tcp(addr: SocketAddr) -> Self {
        Self::new(Transport::Tcp, addr)
    }
    /// TLS to `addr`, verifying the certificate against `server_name` (the
    /// target's host name), or against the IP address when `None`.
    pub fn tls(addr: SocketAddr, server_name: Option<&str>) -> Self {
        Target {
            transport: Transport::Tls,
            addr,
            server_name: server_name.map(str::to_owned),
        }
    }
}

/// Names one TCP or TLS connection for as long as the layer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A message the layer received. Requests already carry `received`/`rport`
/// in their top Via (see [`stamp_received`]).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message: Message,
    /// The peer's address.
    pub source: SocketAddr,
    /// Our address it arrived on.
    pub local: SocketAddr,
    pub transport: Transport,
    /// The TCP/TLS connection it came on; `None` for UDP.
    pub connection: Option<ConnectionId>,
}
