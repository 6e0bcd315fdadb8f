//! Digest authentication for SIP (RFC 8760, which brings RFC 7616's SHA-256
//! digest to RFC 3261): the computation ([`digest`]), a client that answers
//! 401/407 ([`client`]), and a server that challenges and verifies
//! ([`server`]).
//!
//! Why it looks the way it does:
//! - **Stateless, tamper-proof nonces.** A nonce carries its issue time and
//!   an HMAC-SHA256 over that time and the realm, keyed by the server's
//!   secret. Any server instance sharing the secret can tell a genuine
//!   nonce from a forged or foreign one and how old it is, with no table
//!   to keep, replicate or flood. A genuine but expired nonce with a right
//!   password is [`VerifyError::Stale`], so the client retries silently.
//! - **Constant-time verification.** The nonce MAC and the response digest
//!   are compared with `subtle`, so timing does not leak how much of a
//!   guess was right.
//! - **Sans-IO.** Time comes in as Unix seconds; only the client's cnonce
//!   reads the OS random source, and that can be replaced for tests.
//!
//! ```
//! use std::time::Duration;
//! use sip::{ChallengeStatus, DigestClient, DigestServer, HeaderName, Message, MessageBuilder, Method};
//!
//! let register = MessageBuilder::request(Method::Register, "sip:example.com")
//!     .header("Via", "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1")
//!     .header("Max-Forwards", "70")
//!     .header("From", "<sip:alice@example.com>;tag=a")
//!     .header("To", "<sip:alice@example.com>")
//!     .header("Call-ID", "c1@192.0.2.10")
//!     .header("CSeq", "1 REGISTER");
//! let server = DigestServer::new("example.com", [9; 32], Duration::from_secs(300));
//! let now = 1_700_000_000;
//!
//! // The registrar challenges …
//! let unauthorized: Message = server
//!     .challenge_response(&register.build()?, ChallengeStatus::Unauthorized, now, false)
//!     .build()?;
//! // … the user agent answers with the next CSeq …
//! let mut client = DigestClient::new("alice", "wonderland");
//! let (name, value) = client.authorize(&unauthorized, &register).unwrap();
//! let mut retry = register.clone();
//! retry.set("CSeq", "2 REGISTER");
//! let retry = retry.header(name.as_str(), value).build()?;
//! // … and the registrar verifies.
//! let creds = &retry.auth(HeaderName::Authorization)[0];
//! let user = server.verify(now + 1, "REGISTER", creds, |u| (u == "alice").then(|| "wonderland".into()));
//! assert_eq!(user, Ok("alice".to_owned()));
//! # Ok::<(), sip::ParseError>(())
//! ```

pub mod client;
pub mod digest;
pub mod server;

pub use client::{AuthError, Challenge, DigestClient};
pub use digest::{Algorithm, DigestInput, NonceCount, QopAuth, SessionNeedsQop, UnknownAlgorithm};
pub use server::{ChallengeStatus, DigestServer, VerifyError};
