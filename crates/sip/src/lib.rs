//! A strict, fast, sans-IO SIP stack (RFC 3261 and friends).
//!
//! The message layer parses requests and responses over [`bytes::Bytes`]
//! without copying header text, validates what a proxy and a user agent rely
//! on, and answers malformed input with an error whose text is the reason
//! phrase of the `400` a server should send.
//!
//! [`auth`] adds digest authentication (RFC 8760: SHA-256 and MD5) with
//! stateless, tamper-proof nonces and constant-time verification.
//!
//! ```
//! let raw = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
//!            Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
//!            Max-Forwards: 70\r\n\
//!            To: Bob <sip:bob@biloxi.example.com>\r\n\
//!            From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
//!            Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
//!            CSeq: 314159 INVITE\r\n\
//!            Content-Length: 0\r\n\r\n";
//! let msg = sip::Message::parse(raw.as_bytes().to_vec()).unwrap();
//! assert_eq!(msg.method(), Some(&sip::Method::Invite));
//! assert_eq!(msg.from().unwrap().tag(), Some("1928301774"));
//! assert_eq!(msg.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
//! ```
//!
//! [`transport`] carries messages over UDP, TCP and TLS. Its framing of
//! streams and its Via rules (`received`/`rport`, where a response goes) are
//! sans-IO functions tested byte by byte; the tokio `TransportLayer` around
//! them only owns sockets, connections and timers, so it stays thin enough
//! to need no logic of its own.

pub mod auth;
pub mod builder;
mod charclass;
pub mod dialog;
#[cfg(feature = "net")]
pub mod endpoint;
pub mod error;
pub mod header;
pub mod message;
pub mod method;
mod scan;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod uri;

pub use auth::{AuthError, ChallengeStatus, DigestClient, DigestServer, VerifyError};
pub use builder::{default_reason, MessageBuilder};
pub use error::ParseError;
pub use header::{HeaderName, NameAddr, Params, Via};
pub use message::{error_response, split_commas, Limits, Message};
pub use method::Method;
pub use scan::{unescape, unquote};
pub use transport::{response_target, ConnectionId, Incoming, StreamFramer, Target, Transport};
#[cfg(feature = "net")]
pub use transport::{TransportConfig, TransportLayer};
pub use uri::{Host, SipUri, TelUri, Uri, UriError};
